//! The outbound SMTP/LMTP client against the scriptable sink: per-recipient replies with and
//! without pipelining, refusals at every stage, what is synthesized locally (SIZE, SMTPUTF8),
//! DSN parameters, dot-stuffing, connection reuse, STARTTLS, and connection-level failures.

use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tern_smtp::client::RemoteReply;
use tern_smtp::{Notify, Ret};
use tern_testkit::sink::{SinkConfig, SinkServer};
use tern_worker::delivery::DeliveryError;
use tern_worker::delivery::client::{
    ClientConfig, ConnectError, Connection, Envelope, EnvelopeRecipient, Protocol, Timeouts,
    TlsMode,
};
use tern_worker::delivery::tls;

mod starttls;

const BODY: &[u8] = b"Subject: test\r\n\r\nhello\r\n";

/// Long enough that a loaded CI machine never trips them, short enough that a hang fails the
/// test instead of stalling the run.
fn timeouts() -> Timeouts {
    let limit = Duration::from_secs(10);
    Timeouts {
        connect: limit,
        greeting: limit,
        helo: limit,
        mail: limit,
        rcpt: limit,
        data_init: limit,
        data_block: limit,
        data_end: limit,
        other: limit,
    }
}

fn client_config(timeouts: Timeouts) -> ClientConfig {
    client_config_trusting(timeouts, &[])
}

fn client_config_trusting(timeouts: Timeouts, roots: &[CertificateDer<'static>]) -> ClientConfig {
    ClientConfig {
        helo_name: "client.test".to_owned(),
        timeouts,
        tls_opportunistic: tls::opportunistic().expect("opportunistic TLS configuration"),
        tls_verified: tls::verified(roots).expect("verified TLS configuration"),
    }
}

fn recipients<'a>(addresses: &[&'a str]) -> Vec<EnvelopeRecipient<'a>> {
    addresses
        .iter()
        .map(|&address| EnvelopeRecipient {
            address,
            notify: None,
            orcpt: None,
        })
        .collect()
}

fn envelope<'a>(addresses: &[&'a str]) -> Envelope<'a> {
    Envelope {
        mail_from: "sender@origin.test",
        smtputf8: false,
        eight_bit: false,
        ret: None,
        envid: None,
        recipients: recipients(addresses),
    }
}

async fn try_connect(
    sink: &SinkServer,
    host: &str,
    protocol: Protocol,
    mode: TlsMode,
    config: &ClientConfig,
) -> Result<Connection, ConnectError> {
    Connection::connect(sink.addr(), host, protocol, mode, config).await
}

async fn connect(sink: &SinkServer, protocol: Protocol) -> Connection {
    let config = client_config(timeouts());
    try_connect(sink, "sink.test", protocol, TlsMode::Disabled, &config)
        .await
        .unwrap_or_else(|error| panic!("connect to the sink: {error:?}"))
}

/// `Connection` is not `Debug`, so `unwrap_err` is not available.
fn connect_error(result: Result<Connection, ConnectError>) -> ConnectError {
    match result {
        Ok(_) => panic!("the connection was established"),
        Err(error) => error,
    }
}

fn codes(replies: &[RemoteReply]) -> Vec<u16> {
    replies.iter().map(|reply| reply.code).collect()
}

fn reply(code: u16, status: &str, text: &str) -> RemoteReply {
    RemoteReply::new(code, Some(status), text)
}

async fn one_recipient_refused_at_rcpt(pipelining: bool) {
    let sink = SinkServer::start(
        SinkConfig {
            pipelining,
            ..SinkConfig::default()
        }
        .rcpt_rule("nobody@", "550 5.1.1 no such user"),
    )
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    assert_eq!(connection.capabilities().pipelining, pipelining);

    let rcpts = ["a@dest.test", "nobody@dest.test", "c@dest.test"];
    let replies = connection
        .send(&envelope(&rcpts), BODY)
        .await
        .expect("the transaction");

    let queued = reply(250, "2.0.0", "ok: queued");
    assert_eq!(
        replies,
        vec![queued.clone(), reply(550, "5.1.1", "no such user"), queued]
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "sender@origin.test");
    assert_eq!(message.rcpt_to, vec!["a@dest.test", "c@dest.test"]);
    assert_eq!(message.data, BODY);
    let size = BODY.len().to_string();
    assert_eq!(message.mail_param("SIZE"), Some(size.as_str()));
}

#[tokio::test]
async fn a_pipelined_transaction_answers_each_recipient_in_order() {
    one_recipient_refused_at_rcpt(true).await;
}

#[tokio::test]
async fn a_transaction_without_pipelining_answers_each_recipient_in_order() {
    one_recipient_refused_at_rcpt(false).await;
}

#[tokio::test]
async fn a_refused_mail_from_is_every_recipients_reply_and_no_data_is_sent() {
    let mut config = SinkConfig::default();
    config.mail_rules.push((
        "sender@origin.test".to_owned(),
        "550 5.7.1 sender refused".to_owned(),
    ));
    let sink = SinkServer::start(config).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let replies = connection
        .send(&envelope(&["a@dest.test", "b@dest.test"]), BODY)
        .await
        .expect("the transaction");

    let refused = reply(550, "5.7.1", "sender refused");
    assert_eq!(replies, vec![refused.clone(), refused]);
    assert_eq!(sink.transactions(), 0);
    assert!(sink.received().is_empty());
    // The pipelined RCPT replies (503 at the sink) were all read: the connection stays in step.
    connection.reset().await.expect("RSET after a refused MAIL");
}

#[tokio::test]
async fn when_every_recipient_is_refused_no_data_is_sent() {
    let sink = SinkServer::start(
        SinkConfig::default()
            .rcpt_rule("a@", "550 5.1.1 no such user")
            .rcpt_rule("b@", "452 4.2.2 mailbox full"),
    )
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let replies = connection
        .send(&envelope(&["a@dest.test", "b@dest.test"]), BODY)
        .await
        .expect("the transaction");

    assert_eq!(
        replies,
        vec![
            reply(550, "5.1.1", "no such user"),
            reply(452, "4.2.2", "mailbox full")
        ]
    );
    assert_eq!(sink.transactions(), 0);
    assert!(sink.received().is_empty());

    // The refused transaction is still open on the server (MAIL was accepted): the next one
    // must start with RSET, or its MAIL would be refused as nested.
    let replies = connection
        .send(&envelope(&["c@dest.test"]), BODY)
        .await
        .expect("the next transaction");
    assert_eq!(codes(&replies), vec![250]);
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_refusal_at_the_end_of_data_is_every_accepted_recipients_reply() {
    let sink = SinkServer::start(
        SinkConfig {
            data_reply: "554 5.7.1 looks like spam".to_owned(),
            ..SinkConfig::default()
        }
        .rcpt_rule("nobody@", "550 5.1.1 no such user"),
    )
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let replies = connection
        .send(
            &envelope(&["a@dest.test", "nobody@dest.test", "c@dest.test"]),
            BODY,
        )
        .await
        .expect("the transaction");

    let spam = reply(554, "5.7.1", "looks like spam");
    assert_eq!(
        replies,
        vec![spam.clone(), reply(550, "5.1.1", "no such user"), spam]
    );
    assert_eq!(sink.transactions(), 1);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn lmtp_gives_each_accepted_recipient_its_own_reply_after_data() {
    let sink = SinkServer::start(
        SinkConfig {
            lmtp: true,
            ..SinkConfig::default()
        }
        .rcpt_rule("nobody@", "550 5.1.1 no such user")
        .data_rule("full@", "452 4.2.2 mailbox full"),
    )
    .await;
    let mut connection = connect(&sink, Protocol::Lmtp).await;

    let rcpts = [
        "a@dest.test",
        "nobody@dest.test",
        "full@dest.test",
        "d@dest.test",
    ];
    let replies = connection
        .send(&envelope(&rcpts), BODY)
        .await
        .expect("the transaction");

    let queued = reply(250, "2.0.0", "ok: queued");
    assert_eq!(
        replies,
        vec![
            queued.clone(),
            reply(550, "5.1.1", "no such user"),
            reply(452, "4.2.2", "mailbox full"),
            queued,
        ]
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, vec!["a@dest.test", "d@dest.test"]);
    assert_eq!(received[0].helo, "client.test");
}

#[tokio::test]
async fn lines_starting_with_a_dot_arrive_unchanged() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    // A lone dot in the middle would end the message early if it were not stuffed.
    let body: &[u8] = b".first line\r\n..two dots\r\n.\r\nmiddle\r\n...\r\n. space\r\nlast\r\n";

    let replies = connection
        .send(&envelope(&["a@dest.test"]), body)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250]);
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&received[0].data),
        String::from_utf8_lossy(body)
    );
}

#[tokio::test]
async fn a_body_without_a_final_line_break_arrives_with_one() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let body: &[u8] = b"Subject: x\r\n\r\n.dotted\r\nno line break at the end.";

    let replies = connection
        .send(&envelope(&["a@dest.test"]), body)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250]);
    let mut expected = body.to_vec();
    expected.extend_from_slice(b"\r\n");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&received[0].data),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_during_data_loses_the_connection() {
    let sink = SinkServer::start(SinkConfig {
        drop_mid_data: Some(64),
        ..SinkConfig::default()
    })
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let body = b"a line of the message body\r\n".repeat(100);

    let result = connection.send(&envelope(&["a@dest.test"]), &body).await;

    // Whether the write or the read of the final reply notices first depends on the kernel;
    // either way it is the connection that failed, not a recipient.
    match result {
        Err(DeliveryError::ConnectionLost { host, .. }) => assert_eq!(host, "sink.test"),
        other => panic!("expected a lost connection, got {other:?}"),
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_554_greeting_refuses_the_connection_with_that_reply() {
    let sink = SinkServer::start(SinkConfig {
        greeting: Some("554 5.3.2 no service for you".to_owned()),
        ..SinkConfig::default()
    })
    .await;
    let config = client_config(timeouts());

    let result = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Opportunistic,
        &config,
    )
    .await;

    match connect_error(result) {
        ConnectError::Refused(refusal) => {
            assert_eq!(refusal, reply(554, "5.3.2", "no service for you"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_larger_than_the_advertised_size_is_refused_without_sending_it() {
    let sink = SinkServer::start(SinkConfig {
        size: Some(100),
        ..SinkConfig::default()
    })
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    assert_eq!(connection.capabilities().size, Some(100));
    let body = vec![b'x'; 1000];

    let replies = connection
        .send(&envelope(&["a@dest.test", "b@dest.test"]), &body)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![552, 552]);
    assert!(
        replies
            .iter()
            .all(|reply| reply.status.as_deref() == Some("5.3.4"))
    );
    assert_eq!(sink.transactions(), 0);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_message_that_needs_smtputf8_is_refused_by_a_server_without_it() {
    let sink = SinkServer::start(SinkConfig {
        smtputf8: false,
        ..SinkConfig::default()
    })
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let envelope = Envelope {
        smtputf8: true,
        ..envelope(&["jörg@dest.test", "b@dest.test"])
    };

    let replies = connection
        .send(&envelope, BODY)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![550, 550]);
    assert!(
        replies
            .iter()
            .all(|reply| reply.status.as_deref() == Some("5.6.7"))
    );
    assert_eq!(sink.transactions(), 0);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_message_that_needs_smtputf8_asks_for_it_when_offered() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;
    let envelope = Envelope {
        smtputf8: true,
        eight_bit: true,
        ..envelope(&["jörg@dest.test"])
    };

    let replies = connection
        .send(&envelope, BODY)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250]);
    let received = sink.received();
    assert_eq!(received[0].rcpt_to, vec!["jörg@dest.test"]);
    assert_eq!(received[0].mail_param("SMTPUTF8"), Some(""));
    assert_eq!(received[0].mail_param("BODY"), Some("8BITMIME"));
}

fn dsn_envelope() -> Envelope<'static> {
    Envelope {
        ret: Some(Ret::Hdrs),
        envid: Some("id=42 x"),
        recipients: vec![
            EnvelopeRecipient {
                address: "a@dest.test",
                notify: Some(Notify {
                    success: true,
                    failure: true,
                    ..Notify::default()
                }),
                orcpt: Some("rfc822;a+tag@dest.test"),
            },
            EnvelopeRecipient {
                address: "b@dest.test",
                notify: Some(Notify {
                    never: true,
                    ..Notify::default()
                }),
                orcpt: None,
            },
        ],
        ..envelope(&[])
    }
}

#[tokio::test]
async fn dsn_parameters_are_sent_xtext_encoded_to_a_server_with_dsn() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let replies = connection
        .send(&dsn_envelope(), BODY)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250, 250]);
    let received = sink.received();
    let message = &received[0];
    assert_eq!(message.mail_param("RET"), Some("HDRS"));
    assert_eq!(message.mail_param("ENVID"), Some("id+3D42+20x"));
    assert_eq!(message.rcpt_param(0, "NOTIFY"), Some("SUCCESS,FAILURE"));
    assert_eq!(
        message.rcpt_param(0, "ORCPT"),
        Some("rfc822;a+2Btag@dest.test")
    );
    assert_eq!(message.rcpt_param(1, "NOTIFY"), Some("NEVER"));
    assert_eq!(message.rcpt_param(1, "ORCPT"), None);
}

#[tokio::test]
async fn dsn_parameters_are_left_out_for_a_server_without_dsn() {
    // The sink answers 555 to a parameter it did not advertise, so a leak would also show
    // in the replies.
    let sink = SinkServer::start(SinkConfig {
        dsn: false,
        ..SinkConfig::default()
    })
    .await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let replies = connection
        .send(&dsn_envelope(), BODY)
        .await
        .expect("the transaction");

    assert_eq!(codes(&replies), vec![250, 250]);
    let received = sink.received();
    let message = &received[0];
    for key in ["RET", "ENVID"] {
        assert_eq!(message.mail_param(key), None, "{key}");
    }
    for index in 0..2 {
        assert_eq!(message.rcpt_params[index], Vec::<String>::new());
    }
}

#[tokio::test]
async fn one_connection_carries_several_transactions_with_rset_between() {
    let sink = SinkServer::start(SinkConfig::default()).await;
    let mut connection = connect(&sink, Protocol::Smtp).await;

    let first = connection
        .send(&envelope(&["a@dest.test"]), b"first\r\n")
        .await
        .expect("the first transaction");
    connection.reset().await.expect("RSET");
    let second = connection
        .send(&envelope(&["b@dest.test"]), b"second\r\n")
        .await
        .expect("the second transaction");
    connection.quit().await;

    assert_eq!(codes(&first), vec![250]);
    assert_eq!(codes(&second), vec![250]);
    assert_eq!(sink.connections(), 1);
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].data, b"first\r\n");
    assert_eq!(received[1].rcpt_to, vec!["b@dest.test"]);
}

#[tokio::test]
async fn a_server_slow_to_confirm_the_data_times_out() {
    let sink = SinkServer::start(SinkConfig {
        data_delay: Duration::from_secs(30),
        ..SinkConfig::default()
    })
    .await;
    // Only the awaited stage is short, so nothing else can be what timed out.
    let config = client_config(Timeouts {
        data_end: Duration::from_millis(300),
        ..timeouts()
    });
    let mut connection = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Disabled,
        &config,
    )
    .await
    .unwrap_or_else(|error| panic!("connect: {error:?}"));

    let result = connection.send(&envelope(&["a@dest.test"]), BODY).await;

    match result {
        Err(DeliveryError::Timeout { stage, .. }) => assert_eq!(stage, "DATA end"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_slow_to_greet_times_out() {
    let sink = SinkServer::start(SinkConfig {
        reply_delay: Duration::from_secs(30),
        ..SinkConfig::default()
    })
    .await;
    let config = client_config(Timeouts {
        greeting: Duration::from_millis(300),
        ..timeouts()
    });

    let result = try_connect(
        &sink,
        "sink.test",
        Protocol::Smtp,
        TlsMode::Disabled,
        &config,
    )
    .await;

    match connect_error(result) {
        ConnectError::Failed(DeliveryError::Timeout { stage, .. }) => {
            assert_eq!(stage, "greeting");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
