use super::*;
use crate::SessionConfig;
use crate::testing::{Driver, small_config};

#[test]
fn mail_parameters_are_decoded() {
    let params = parse_mail_params(
        " size=500 Body=8bitmime SMTPUTF8 ret=hdrs ENVID=QQ+2B1",
        true,
    );
    assert_eq!(
        params,
        Ok(MailParams {
            size: Some(500),
            body: Body::EightBitMime,
            smtputf8: true,
            ret: Some(Ret::Hdrs),
            envid: Some("QQ+1".to_string()),
        })
    );
    assert_eq!(parse_mail_params("", true), Ok(MailParams::default()));
    assert_eq!(MailParams::default().body, Body::SevenBit);
}

#[test]
fn rcpt_parameters_are_decoded() {
    let params = parse_rcpt_params(" NOTIFY=success,Delay ORCPT=RFC822;a+2Bb@c.example", true);
    assert_eq!(
        params,
        Ok(RcptParams {
            notify: Some(Notify {
                never: false,
                success: true,
                failure: false,
                delay: true,
            }),
            orcpt: Some(Orcpt {
                addr_type: "rfc822".to_string(),
                addr: "a+b@c.example".to_string(),
            }),
        })
    );
    let never = parse_rcpt_params(" NOTIFY=NEVER", true).map(|p| p.notify);
    assert_eq!(
        never,
        Ok(Some(Notify {
            never: true,
            ..Notify::default()
        }))
    );
}

/// Each MAIL line is sent after EHLO (or HELO where it says so) and must
/// get exactly this reply. The size limit in `small_config` is 1000.
#[test]
fn mail_parameter_table_gives_the_exact_reply() {
    let long_envid = format!("MAIL FROM:<a@b.example> ENVID={}", "x".repeat(101));
    let max_envid = format!("MAIL FROM:<a@b.example> ENVID={}", "x".repeat(100));
    let table: Vec<(&str, &str)> = vec![
        ("MAIL FROM:<a@b.example> SIZE=1000", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example> SIZE=1001",
            "552 5.3.4 Message size exceeds fixed limit",
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=99999999999999999999999",
            "552 5.3.4 Message size exceeds fixed limit",
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=12k",
            "501 5.5.4 Bad SIZE parameter value",
        ),
        (
            "MAIL FROM:<a@b.example> SIZE",
            "501 5.5.4 Bad SIZE parameter value",
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=",
            "501 5.5.4 Bad parameter syntax",
        ),
        (
            "MAIL FROM:<a@b.example> SIZE=1 size=2",
            "501 5.5.4 Duplicate parameter",
        ),
        ("MAIL FROM:<a@b.example> BODY=7BIT", "250 2.1.0 Ok"),
        ("MAIL FROM:<a@b.example> body=8bitmime", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example> BODY=BINARYMIME",
            "501 5.5.4 Bad BODY parameter value",
        ),
        ("MAIL FROM:<a@b.example> SMTPUTF8", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example> SMTPUTF8=yes",
            "501 5.5.4 Bad SMTPUTF8 parameter value",
        ),
        ("MAIL FROM:<a@b.example> RET=FULL", "250 2.1.0 Ok"),
        ("MAIL FROM:<a@b.example> RET=hdrs", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example> RET=ALL",
            "501 5.5.4 Bad RET parameter value",
        ),
        ("MAIL FROM:<a@b.example> ENVID=abc+2B", "250 2.1.0 Ok"),
        (max_envid.as_str(), "250 2.1.0 Ok"),
        (long_envid.as_str(), "501 5.5.4 Bad ENVID parameter value"),
        (
            "MAIL FROM:<a@b.example> ENVID=a+",
            "501 5.5.4 Bad ENVID parameter value",
        ),
        (
            "MAIL FROM:<a@b.example> ENVID=a=b",
            "501 5.5.4 Bad parameter syntax",
        ),
        (
            "MAIL FROM:<a@b.example> AUTH=<>",
            "555 5.5.4 Unsupported parameter AUTH",
        ),
        (
            "MAIL FROM:<a@b.example> x-custom",
            "555 5.5.4 Unsupported parameter X-CUSTOM",
        ),
        (
            "MAIL FROM:<a@b.example> -bad",
            "501 5.5.4 Bad parameter syntax",
        ),
        ("MAIL FROM:<a@b.example>  SIZE=10", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example>SIZE=10",
            "501 5.1.7 Bad sender address syntax",
        ),
    ];
    for (line, reply) in table {
        let mut driver = Driver::after_ehlo(small_config());
        driver.feed(format!("{line}\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{line}");
    }
}

#[test]
fn rcpt_parameter_table_gives_the_exact_reply() {
    let long_orcpt = format!("RCPT TO:<c@d.example> ORCPT=rfc822;{}", "x".repeat(500));
    let table: Vec<(&str, &str)> = vec![
        ("RCPT TO:<c@d.example> NOTIFY=NEVER", "250 2.1.5 Ok"),
        (
            "RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE,DELAY",
            "250 2.1.5 Ok",
        ),
        ("RCPT TO:<c@d.example> notify=failure", "250 2.1.5 Ok"),
        (
            "RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS",
            "501 5.5.4 Bad NOTIFY parameter value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=SOMETIMES",
            "501 5.5.4 Bad NOTIFY parameter value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=SUCCESS,",
            "501 5.5.4 Bad NOTIFY parameter value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY",
            "501 5.5.4 Bad NOTIFY parameter value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=NEVER NOTIFY=NEVER",
            "501 5.5.4 Duplicate parameter",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;c@d.example",
            "250 2.1.5 Ok",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;c+40d.example",
            "250 2.1.5 Ok",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822",
            "501 5.5.4 Bad ORCPT parameter value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=;c@d.example",
            "501 5.5.4 Bad ORCPT parameter value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;",
            "501 5.5.4 Bad ORCPT parameter value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;a+zz",
            "501 5.5.4 Bad ORCPT parameter value",
        ),
        (long_orcpt.as_str(), "501 5.5.4 Bad ORCPT parameter value"),
        (
            "RCPT TO:<c@d.example> SIZE=10",
            "555 5.5.4 Unsupported parameter SIZE",
        ),
        (
            "RCPT TO:<c@d.example> FOO=bar",
            "555 5.5.4 Unsupported parameter FOO",
        ),
    ];
    for (line, reply) in table {
        // Room for the overlong ORCPT on the command line itself.
        let config = SessionConfig {
            max_command_line: 2048,
            ..small_config()
        };
        let mut driver = Driver::after_ehlo(config);
        driver.feed(format!("MAIL FROM:<a@b.example>\r\n{line}\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{line}");
    }
}

#[test]
fn parameters_after_helo_are_unsupported() {
    let table = [
        ("MAIL FROM:<a@b.example>", "250 2.1.0 Ok"),
        (
            "MAIL FROM:<a@b.example> SIZE=10",
            "555 5.5.4 Unsupported parameter SIZE",
        ),
        (
            "MAIL FROM:<a@b.example> BODY=8BITMIME",
            "555 5.5.4 Unsupported parameter BODY",
        ),
        (
            "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example> NOTIFY=NEVER",
            "555 5.5.4 Unsupported parameter NOTIFY",
        ),
    ];
    for (lines, reply) in table {
        let mut driver = Driver::new(small_config());
        driver.feed(format!("HELO client\r\n{lines}\r\n").as_bytes());
        assert_eq!(driver.last(), reply, "{lines}");
    }
}

#[test]
fn accepted_parameters_reach_the_envelope() {
    let mut driver = Driver::after_ehlo(small_config());
    driver.feed(
        b"MAIL FROM:<a@b.example> RET=FULL ENVID=id+2B1\r\n\
          RCPT TO:<c@d.example> NOTIFY=NEVER ORCPT=rfc822;c@d.example\r\n\
          BDAT 0 LAST\r\n",
    );
    let [message] = driver.messages.as_slice() else {
        panic!("expected one message: {:?}", driver.transcript);
    };
    let envelope = &message.envelope;
    assert_eq!(envelope.params.ret, Some(Ret::Full));
    assert_eq!(envelope.params.envid.as_deref(), Some("id+1"));
    let params = &envelope.recipients[0].params;
    assert!(params.notify.is_some_and(|n| n.never));
    assert_eq!(
        params.orcpt.as_ref().map(|o| o.addr.as_str()),
        Some("c@d.example")
    );
}
