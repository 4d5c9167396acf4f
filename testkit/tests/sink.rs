//! The sink against real clients: swaks for ordinary SMTP and LMTP sessions, the byte-exact
//! test client for framing and pipelining. STARTTLS is in `sink_starttls.rs`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;
use std::time::Duration;

use tern_testkit::SmtpClient;
use tern_testkit::sink::{SinkConfig, SinkServer};

const LIMIT: Duration = Duration::from_secs(10);

async fn swaks(server: SocketAddr, args: &[&str]) -> Output {
    let output = tokio::process::Command::new("swaks")
        .arg("--server")
        .arg(server.to_string())
        .args(["--helo", "client.test", "--from", "sender@client.test"])
        .args(args)
        .output()
        .await
        .expect("run swaks (apt-get install swaks)");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    output
}

#[tokio::test]
async fn a_message_sent_by_swaks_is_recorded() {
    let sink = SinkServer::start(SinkConfig::at(Ipv4Addr::new(127, 0, 0, 2), 0)).await;
    let output = swaks(
        sink.addr(),
        &[
            "--to",
            "rcpt@example.test",
            "--header",
            "Subject: hello",
            "--body",
            "line one",
        ],
    )
    .await;
    assert!(output.status.success());
    let received = sink.wait_for(1, LIMIT).await;
    let message = &received[0];
    assert_eq!(message.helo, "client.test");
    assert_eq!(message.mail_from, "sender@client.test");
    assert_eq!(message.rcpt_to, vec!["rcpt@example.test"]);
    assert!(!message.tls);
    let data = String::from_utf8_lossy(&message.data);
    assert!(data.contains("Subject: hello\r\n"), "{data}");
    assert!(data.contains("\r\n\r\nline one\r\n"), "{data:?}");
    assert_eq!((sink.connections(), sink.transactions()), (1, 1));
}

#[tokio::test]
async fn a_rejected_recipient_is_left_out_and_the_others_delivered() {
    let config = SinkConfig::default()
        .rcpt_rule("reject@", "550 5.1.1 no such user")
        .rcpt_rule("defer@", "451 4.3.0 try later");
    let sink = SinkServer::start(config).await;
    let output = swaks(
        sink.addr(),
        &[
            "--pipeline",
            "--to",
            "ok@example.test,reject@example.test,defer@example.test",
        ],
    )
    .await;
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        transcript.contains("550 5.1.1 no such user"),
        "{transcript}"
    );
    assert!(transcript.contains("451 4.3.0 try later"), "{transcript}");
    let received = sink.wait_for(1, LIMIT).await;
    assert_eq!(received[0].rcpt_to, vec!["ok@example.test"]);
}

#[tokio::test]
async fn lmtp_answers_every_recipient_after_data() {
    let config = SinkConfig {
        lmtp: true,
        ..SinkConfig::default()
    }
    .data_rule("full@", "452 4.2.2 mailbox full");
    let sink = SinkServer::start(config).await;
    let output = swaks(
        sink.addr(),
        &[
            "--protocol",
            "LMTP",
            "--to",
            "a@example.test,full@example.test",
        ],
    )
    .await;
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(
        transcript.contains("452 4.2.2 mailbox full"),
        "{transcript}"
    );
    let received = sink.wait_for(1, LIMIT).await;
    assert_eq!(received[0].rcpt_to, vec!["a@example.test"]);
}

#[tokio::test]
async fn dot_stuffed_lines_are_recorded_unstuffed() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let (mut client, greeting) = SmtpClient::connect(sink.addr()).await;
    assert_eq!(greeting.code, 220);
    // One pipelined group: replies must come back one per command, in order.
    client
        .send(b"EHLO c.test\r\nMAIL FROM:<> RET=HDRS\r\nRCPT TO:<x@example.test> NOTIFY=NEVER\r\nDATA\r\n")
        .await;
    let codes = [
        client.reply().await.code,
        client.reply().await.code,
        client.reply().await.code,
        client.reply().await.code,
    ];
    assert_eq!(codes, [250, 250, 250, 354]);
    client.send(b"a\r\n..b\r\n..\r\n...\r\nend\r\n.\r\n").await;
    assert_eq!(client.reply().await.code, 250);
    let message = &sink.wait_for(1, LIMIT).await[0];
    assert_eq!(message.data, b"a\r\n.b\r\n.\r\n..\r\nend\r\n");
    assert_eq!(message.mail_from, "");
    assert_eq!(message.mail_param("ret"), Some("HDRS"));
    assert_eq!(message.rcpt_param(0, "NOTIFY"), Some("NEVER"));
}

#[tokio::test]
async fn a_deferred_data_phase_is_counted_but_not_recorded() {
    let sink = SinkServer::start(SinkConfig {
        data_reply: "451 4.3.0 try later".to_owned(),
        ..SinkConfig::default()
    })
    .await;
    let (mut client, _) = SmtpClient::connect(sink.addr()).await;
    client.command("EHLO c.test").await;
    client.command("MAIL FROM:<a@c.test>").await;
    client.command("RCPT TO:<b@example.test>").await;
    client.command("DATA").await;
    assert_eq!(client.command("body\r\n.").await.code, 451);
    assert_eq!(sink.transactions(), 1);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn the_sink_hangs_up_in_the_middle_of_the_data_when_told_to() {
    let sink = SinkServer::start(SinkConfig {
        drop_mid_data: Some(10),
        ..SinkConfig::default()
    })
    .await;
    let (mut client, _) = SmtpClient::connect(sink.addr()).await;
    client.command("EHLO c.test").await;
    client.command("MAIL FROM:<a@c.test>").await;
    client.command("RCPT TO:<b@example.test>").await;
    assert_eq!(client.command("DATA").await.code, 354);
    client.send(b"0123456789abcdef\r\n.\r\n").await;
    assert_eq!(client.try_reply().await, None);
    assert_eq!(sink.transactions(), 0);
}

#[tokio::test]
async fn parameters_of_extensions_not_advertised_are_refused() {
    let sink = SinkServer::start(SinkConfig {
        eight_bit_mime: false,
        size: Some(100),
        ..SinkConfig::default()
    })
    .await;
    let (mut client, _) = SmtpClient::connect(sink.addr()).await;
    let ehlo = client.command("EHLO c.test").await.text();
    assert!(
        !ehlo.contains("8BITMIME") && ehlo.contains("SIZE 100"),
        "{ehlo}"
    );
    assert_eq!(
        client
            .command("MAIL FROM:<a@c.test> BODY=8BITMIME")
            .await
            .code,
        555
    );
    assert_eq!(
        client.command("MAIL FROM:<a@c.test> SIZE=101").await.code,
        552
    );
    assert_eq!(
        client.command("MAIL FROM:<a@c.test> SIZE=99").await.code,
        250
    );
}

#[tokio::test]
async fn a_slow_sink_still_answers_every_command() {
    let sink = SinkServer::start(SinkConfig {
        reply_delay: Duration::from_millis(50),
        ..SinkConfig::default()
    })
    .await;
    let output = swaks(sink.addr(), &["--to", "slow@example.test"]).await;
    assert!(output.status.success());
    assert_eq!(sink.wait_for(1, LIMIT).await.len(), 1);
}

#[tokio::test]
async fn sinks_on_two_loopback_addresses_share_one_port() {
    let first = SinkServer::start(SinkConfig::at(Ipv4Addr::new(127, 0, 0, 2), 0)).await;
    let port = first.addr().port();
    let second = SinkServer::start(SinkConfig::at(Ipv4Addr::new(127, 0, 0, 3), port)).await;
    assert_eq!(second.addr(), SocketAddr::from(([127, 0, 0, 3], port)));
    swaks(second.addr(), &["--to", "b@example.test"]).await;
    assert_eq!(second.wait_for(1, LIMIT).await.len(), 1);
    assert!(first.received().is_empty());
}

#[tokio::test]
async fn a_message_is_recorded_before_a_delayed_data_reply() {
    let sink = SinkServer::start(SinkConfig {
        data_delay: Duration::from_secs(3600),
        ..SinkConfig::default()
    })
    .await;
    let (mut client, _) = SmtpClient::connect(sink.addr()).await;
    client.command("EHLO c.test").await;
    client.command("MAIL FROM:<a@c.test>").await;
    client.command("RCPT TO:<b@example.test>").await;
    client.command("DATA").await;
    client.send(b"body\r\n.\r\n").await;
    let received = sink.wait_for(1, LIMIT).await;
    assert_eq!(received[0].data, b"body\r\n");
}

#[tokio::test]
async fn non_ascii_addresses_need_smtputf8() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let (mut client, _) = SmtpClient::connect(sink.addr()).await;
    client.command("EHLO c.test").await;
    assert_eq!(client.command("MAIL FROM:<jörg@c.test>").await.code, 553);
    assert_eq!(client.command("MAIL FROM:<a@c.test>").await.code, 250);
    assert_eq!(client.command("RCPT TO:<zoë@example.test>").await.code, 553);
    client.command("RSET").await;
    assert_eq!(
        client
            .command("MAIL FROM:<jörg@c.test> SMTPUTF8")
            .await
            .code,
        250
    );
    assert_eq!(client.command("RCPT TO:<zoë@example.test>").await.code, 250);
}
