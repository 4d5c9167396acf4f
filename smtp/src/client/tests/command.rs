use super::*;

fn every_extension() -> Capabilities {
    Capabilities {
        pipelining: true,
        size: Some(1_000_000),
        eightbitmime: true,
        smtputf8: true,
        dsn: true,
        starttls: true,
        chunking: true,
        enhancedstatuscodes: true,
    }
}

fn mail<'a>(reverse_path: &'a str, ret: Option<&'a str>, envid: Option<&'a str>) -> Command<'a> {
    Command::Mail(MailFrom {
        reverse_path,
        size: 1234,
        eight_bit: true,
        smtputf8: true,
        ret: ret.map(|ret| ret.parse().expect("a RET value")),
        envid,
    })
}

fn rcpt<'a>(forward_path: &'a str, notify: Option<&'a str>, orcpt: Option<&'a str>) -> Command<'a> {
    Command::Rcpt(RcptTo {
        forward_path,
        notify: notify.map(|notify| notify.parse().expect("a NOTIFY value")),
        orcpt,
    })
}

fn written(command: &Command<'_>, peer: &Capabilities) -> Result<String, CommandError> {
    let mut out = Vec::new();
    command.write(peer, &mut out)?;
    Ok(String::from_utf8(out).expect("commands are UTF-8"))
}

#[test]
fn commands_carry_parameters_only_for_extensions_the_server_announced() {
    let all = every_extension();
    let none = Capabilities::default();
    let table: Vec<(Command<'_>, &Capabilities, &str)> = vec![
        (
            Command::Hello(Hello::Ehlo, "client.test"),
            &none,
            "EHLO client.test\r\n",
        ),
        (
            Command::Hello(Hello::Helo, "client.test"),
            &none,
            "HELO client.test\r\n",
        ),
        (
            Command::Hello(Hello::Lhlo, "[192.0.2.1]"),
            &none,
            "LHLO [192.0.2.1]\r\n",
        ),
        (
            mail("a@b.test", Some("HDRS"), Some("id+1= x")),
            &all,
            "MAIL FROM:<a@b.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3D+20x\r\n",
        ),
        (
            mail("a@b.test", Some("HDRS"), Some("id")),
            &none,
            "MAIL FROM:<a@b.test>\r\n",
        ),
        (mail("", None, None), &none, "MAIL FROM:<>\r\n"),
        (
            mail("jörg@b.test", None, Some("é")),
            &all,
            "MAIL FROM:<jörg@b.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 ENVID=+C3+A9\r\n",
        ),
        (
            rcpt(
                "c@d.test",
                Some("SUCCESS,FAILURE"),
                Some("rfc822;c+x@d.test"),
            ),
            &all,
            "RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Bx@d.test\r\n",
        ),
        (
            rcpt("c@d.test", Some("never"), None),
            &all,
            "RCPT TO:<c@d.test> NOTIFY=NEVER\r\n",
        ),
        (
            rcpt("c@d.test", Some("NEVER"), Some("rfc822;c@d.test")),
            &none,
            "RCPT TO:<c@d.test>\r\n",
        ),
        (Command::Data, &none, "DATA\r\n"),
        (Command::Rset, &none, "RSET\r\n"),
        (Command::Quit, &none, "QUIT\r\n"),
        (Command::StartTls, &none, "STARTTLS\r\n"),
    ];
    for (command, peer, expected) in table {
        assert_eq!(
            written(&command, peer).as_deref(),
            Ok(expected),
            "{command:?}"
        );
    }
    let only_size = Capabilities {
        size: Some(10),
        ..Capabilities::default()
    };
    assert_eq!(
        written(&mail("a@b.test", None, None), &only_size).as_deref(),
        Ok("MAIL FROM:<a@b.test> SIZE=1234\r\n")
    );
}

#[test]
fn values_that_would_change_the_command_are_refused() {
    let all = every_extension();
    let table: Vec<(Command<'_>, CommandError)> = vec![
        (Command::Hello(Hello::Ehlo, ""), CommandError::HeloName),
        (Command::Hello(Hello::Ehlo, "a b"), CommandError::HeloName),
        (
            Command::Hello(Hello::Ehlo, "a\r\nMAIL"),
            CommandError::HeloName,
        ),
        (
            mail("a@b.test>\r\nRSET", None, None),
            CommandError::ReversePath,
        ),
        (mail("a\0@b.test", None, None), CommandError::ReversePath),
        (
            rcpt("c@d.test\r\nDATA", None, None),
            CommandError::ForwardPath,
        ),
        (rcpt("c@d.test\n", None, None), CommandError::ForwardPath),
    ];
    for (command, expected) in table {
        let mut out = b"kept".to_vec();
        assert_eq!(command.write(&all, &mut out), Err(expected), "{command:?}");
        assert_eq!(out, b"kept", "{command:?} left part of itself behind");
    }
}
