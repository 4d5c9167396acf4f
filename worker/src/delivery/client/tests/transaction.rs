//! Transactions: pipelined and not, refusals at every stage, LMTP, local refusals, the bytes
//! of the message, reuse, and connections that fail on the way.

use super::*;

const BODY: &[u8] = b"Subject: test\r\n\r\nhello\r\n";
const MAIL_OK: &str = "250 2.1.0 ok\r\n";
const RCPT_OK: &str = "250 2.1.5 ok\r\n";
const GO_AHEAD: &str = "354 go ahead\r\n";
const QUEUED: &str = "250 2.0.0 queued as 1\r\n";
const UNKNOWN: &str = "550 5.1.1 no such user\r\n";

fn queued() -> RemoteReply {
    reply(250, "2.0.0", "queued as 1")
}

fn unknown() -> RemoteReply {
    reply(550, "5.1.1", "no such user")
}

#[tokio::test]
async fn a_pipelined_transaction_sends_the_envelope_in_one_write_and_answers_each_recipient() {
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        UNKNOWN,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(
            &envelope(&["b@dest.test", "c@dest.test", "d@dest.test"]),
            BODY,
        )
        .await
        .expect("transaction");
    assert_eq!(replies, [queued(), unknown(), queued()]);
    let received = finish(connection, received).await;
    assert_eq!(
        received.writes,
        [
            "EHLO client.test\r\n",
            "MAIL FROM:<a@origin.test>\r\nRCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\n\
             RCPT TO:<d@dest.test>\r\nDATA\r\n",
            "Subject: test\r\n\r\nhello\r\n.\r\n",
        ]
    );
}

#[tokio::test]
async fn without_pipelining_each_command_waits_for_its_reply() {
    let script = [
        GREETING, EHLO_PLAIN, MAIL_OK, UNKNOWN, RCPT_OK, GO_AHEAD, QUEUED,
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(&envelope(&["b@dest.test", "c@dest.test"]), BODY)
        .await
        .expect("transaction");
    assert_eq!(replies, [unknown(), queued()]);
    let received = finish(connection, received).await;
    assert_eq!(
        received.writes,
        [
            "EHLO client.test\r\n",
            "MAIL FROM:<a@origin.test>\r\n",
            "RCPT TO:<b@dest.test>\r\n",
            "RCPT TO:<c@dest.test>\r\n",
            "DATA\r\n",
            "Subject: test\r\n\r\nhello\r\n.\r\n",
        ]
    );
}

#[tokio::test]
async fn a_refused_mail_is_every_recipients_reply_and_no_rcpt_follows_it() {
    let refused = "451 4.3.0 sender check failed\r\n";
    let (mut connection, received) = smtp(&[GREETING, EHLO_PLAIN, refused]).await;
    let replies = connection
        .send(&envelope(&["b@dest.test", "c@dest.test"]), BODY)
        .await
        .expect("transaction");
    let expected = reply(451, "4.3.0", "sender check failed");
    assert_eq!(replies, [expected.clone(), expected]);
    let received = finish(connection, received).await;
    assert_eq!(
        received.all,
        "EHLO client.test\r\nMAIL FROM:<a@origin.test>\r\n"
    );
}

#[tokio::test]
async fn a_refused_pipelined_mail_reads_every_reply_and_keeps_the_connection_usable() {
    let bad = "503 5.5.1 no MAIL\r\n";
    let refused = "550 5.7.1 sender refused\r\n";
    let script = [
        GREETING,
        EHLO_PIPELINING,
        refused,
        bad,
        bad,
        "250 2.0.0 reset\r\n",
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(&envelope(&["b@dest.test"]), BODY)
        .await
        .expect("transaction");
    assert_eq!(replies, [reply(550, "5.7.1", "sender refused")]);
    connection.reset().await.expect("RSET reads its own reply");
    let received = finish(connection, received).await;
    assert!(
        received.all.ends_with("DATA\r\nRSET\r\n"),
        "{}",
        received.all
    );
}

#[tokio::test]
async fn when_no_recipient_is_accepted_rset_is_sent_instead_of_data() {
    let script = [
        GREETING,
        EHLO_PLAIN,
        MAIL_OK,
        UNKNOWN,
        "250 2.0.0 reset\r\n",
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(&envelope(&["b@dest.test"]), BODY)
        .await
        .expect("transaction");
    assert_eq!(replies, [unknown()]);
    let received = finish(connection, received).await;
    assert_eq!(
        received.all,
        "EHLO client.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<b@dest.test>\r\nRSET\r\n"
    );
}

#[tokio::test]
async fn a_pipelined_data_accepted_without_recipients_is_ended_with_an_empty_message() {
    let reset = "250 2.0.0 reset\r\n";
    let empty = "554 5.5.1 no recipients\r\n";
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        UNKNOWN,
        GO_AHEAD,
        empty,
        reset,
        reset,
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(&envelope(&["b@dest.test"]), BODY)
        .await
        .expect("transaction");
    assert_eq!(replies, [unknown()]);
    connection
        .reset()
        .await
        .expect("still in step with the server");
    let received = finish(connection, received).await;
    assert!(
        received.all.ends_with("DATA\r\n.\r\nRSET\r\nRSET\r\n"),
        "{}",
        received.all
    );
    assert!(!received.all.contains("hello"));
}

#[tokio::test]
async fn a_refused_data_is_the_reply_of_every_accepted_recipient() {
    let later = "451 4.3.0 not now\r\n";
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        UNKNOWN,
        later,
        "250 2.0.0 reset\r\n",
    ];
    let (mut connection, received) = smtp(&script).await;
    let replies = connection
        .send(&envelope(&["b@dest.test", "c@dest.test"]), BODY)
        .await
        .expect("transaction");
    assert_eq!(replies, [reply(451, "4.3.0", "not now"), unknown()]);
    let received = finish(connection, received).await;
    assert!(
        received.all.ends_with("DATA\r\nRSET\r\n"),
        "{}",
        received.all
    );
}

#[tokio::test]
async fn lmtp_gives_each_accepted_recipient_its_own_reply_after_data() {
    // One reply per accepted recipient, both written after the final dot.
    let per_recipient = "250 2.0.0 queued as 1\r\n452 4.2.2 mailbox full\r\n";
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        UNKNOWN,
        RCPT_OK,
        GO_AHEAD,
        per_recipient,
    ];
    let (connection, received) =
        start_with(&script, Protocol::Lmtp, TlsMode::Disabled, timeouts()).await;
    let mut connection = connection.expect("LMTP connection");
    let replies = connection
        .send(
            &envelope(&["b@dest.test", "c@dest.test", "d@dest.test"]),
            BODY,
        )
        .await
        .expect("transaction");
    assert_eq!(
        replies,
        [queued(), unknown(), reply(452, "4.2.2", "mailbox full")]
    );
    let received = finish(connection, received).await;
    assert!(received.all.starts_with("LHLO client.test\r\n"));
}

#[tokio::test]
async fn a_server_that_hangs_up_during_data_loses_the_connection() {
    let script = [GREETING, EHLO_PIPELINING, MAIL_OK, RCPT_OK, GO_AHEAD, CLOSE];
    let (mut connection, _received) = smtp(&script).await;
    let result = connection.send(&envelope(&["b@dest.test"]), BODY).await;
    assert!(
        matches!(result, Err(DeliveryError::ConnectionLost { ref host, .. }) if host == "mx.dest.test"),
        "{result:?}"
    );
    assert!(
        connection.reset().await.is_err(),
        "a lost connection stays lost"
    );
}

#[tokio::test]
async fn a_server_slow_to_confirm_the_data_times_out_and_the_connection_is_unusable() {
    let waiting = Timeouts {
        data_end: Duration::from_millis(50),
        ..timeouts()
    };
    let script = [GREETING, EHLO_PIPELINING, MAIL_OK, RCPT_OK, GO_AHEAD, ""];
    let (connection, _received) =
        start_with(&script, Protocol::Smtp, TlsMode::Disabled, waiting).await;
    let mut connection = connection.expect("connection");
    let result = connection.send(&envelope(&["b@dest.test"]), BODY).await;
    assert!(
        matches!(
            result,
            Err(DeliveryError::Timeout {
                stage: "DATA end",
                ..
            })
        ),
        "{result:?}"
    );
    // A late reply would otherwise be read as the answer to RSET.
    let again = connection.reset().await;
    assert!(
        matches!(
            again,
            Err(DeliveryError::Timeout {
                stage: "DATA end",
                ..
            })
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_421_during_the_envelope_is_the_reply_of_every_recipient_not_refused() {
    let closing = "421 4.3.2 shutting down\r\n";
    let script = [GREETING, EHLO_PLAIN, MAIL_OK, RCPT_OK, UNKNOWN, closing];
    let (mut connection, _received) = smtp(&script).await;
    let replies = connection
        .send(
            &envelope(&["b@dest.test", "c@dest.test", "d@dest.test", "e@dest.test"]),
            BODY,
        )
        .await
        .expect("transaction");
    let closing = reply(421, "4.3.2", "shutting down");
    assert_eq!(
        replies,
        [closing.clone(), unknown(), closing.clone(), closing]
    );
    assert!(connection.reset().await.is_err(), "the server is closing");
}

#[tokio::test]
async fn a_message_larger_than_the_announced_size_is_refused_without_sending() {
    let ehlo = "250-mx.dest.test\r\n250 SIZE 10\r\n";
    let (mut connection, received) = smtp(&[GREETING, ehlo]).await;
    let replies = connection
        .send(&envelope(&["b@dest.test", "c@dest.test"]), BODY)
        .await
        .expect("refused locally");
    assert_eq!(replies.len(), 2);
    assert!(
        replies
            .iter()
            .all(|r| r.code == 552 && r.status.as_deref() == Some("5.3.4"))
    );
    assert_eq!(
        finish(connection, received).await.all,
        "EHLO client.test\r\n"
    );
}

#[tokio::test]
async fn a_message_that_needs_smtputf8_is_refused_by_a_server_without_it() {
    let (mut connection, received) = smtp(&[GREETING, EHLO_PIPELINING]).await;
    let mut flagged = envelope(&["b@dest.test"]);
    flagged.smtputf8 = true;
    let by_address = envelope(&["jörg@dest.test"]);
    for envelope in [flagged, by_address] {
        let replies = connection
            .send(&envelope, BODY)
            .await
            .expect("refused locally");
        assert_eq!(replies.len(), 1);
        assert_eq!(
            (replies[0].code, replies[0].status.as_deref()),
            (550, Some("5.6.7"))
        );
    }
    assert_eq!(
        finish(connection, received).await.all,
        "EHLO client.test\r\n"
    );
}

#[tokio::test]
async fn parameters_go_out_for_the_extensions_the_server_announced() {
    let ehlo = "250-mx.dest.test\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 DSN\r\n";
    let script = [GREETING, ehlo, MAIL_OK, RCPT_OK, GO_AHEAD, QUEUED];
    let (mut connection, received) = smtp(&script).await;
    let mut envelope = envelope(&["jörg@dest.test"]);
    envelope.eight_bit = true;
    envelope.ret = Some(tern_smtp::Ret::Hdrs);
    envelope.envid = Some("id=1 +x");
    envelope.recipients[0].notify = Some("SUCCESS,FAILURE".parse().expect("NOTIFY"));
    envelope.recipients[0].orcpt = Some("rfc822;jörg@dest.test");
    connection.send(&envelope, BODY).await.expect("transaction");
    let received = finish(connection, received).await;
    assert!(
        received.all.contains(
            "MAIL FROM:<a@origin.test> SIZE=24 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+3D1+20+2Bx\r\n\
             RCPT TO:<jörg@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;j+C3+B6rg@dest.test\r\n"
        ),
        "{}",
        received.all
    );
}

#[tokio::test]
async fn an_eight_bit_body_goes_as_it_is_to_a_server_without_8bitmime() {
    let script = [GREETING, EHLO_PLAIN, MAIL_OK, RCPT_OK, GO_AHEAD, QUEUED];
    let (mut connection, received) = smtp(&script).await;
    let mut envelope = envelope(&["b@dest.test"]);
    envelope.eight_bit = true;
    let body = "Subject: café\r\n\r\nnaïve\r\n".as_bytes();
    let replies = connection.send(&envelope, body).await.expect("transaction");
    assert_eq!(replies, [queued()]);
    let received = finish(connection, received).await;
    assert!(received.all.contains("MAIL FROM:<a@origin.test>\r\n"));
    assert!(received.all.contains("Subject: café\r\n\r\nnaïve\r\n.\r\n"));
}

#[tokio::test]
async fn an_address_that_would_inject_a_command_is_refused_locally_and_never_sent() {
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
    ];
    let (mut connection, received) = smtp(&script).await;
    let envelope = envelope(&[
        "b@dest.test>\r\nRSET\r\nRCPT TO:<evil@x.test",
        "c@dest.test",
    ]);
    let replies = connection.send(&envelope, BODY).await.expect("transaction");
    assert_eq!(
        (replies[0].code, replies[0].status.as_deref()),
        (553, Some("5.1.3"))
    );
    assert_eq!(replies[1], queued());
    let received = finish(connection, received).await;
    assert!(!received.all.contains("evil"), "{}", received.all);
}

#[tokio::test]
async fn dots_at_line_starts_are_stuffed_and_a_final_line_break_is_added() {
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
    ];
    let (mut connection, received) = smtp(&script).await;
    let body = b".leading\r\n.\r\nmiddle.dot\r\n..two\r\nno final break";
    connection
        .send(&envelope(&["b@dest.test"]), body)
        .await
        .expect("transaction");
    let received = finish(connection, received).await;
    assert_eq!(
        received.writes.last().map(String::as_str),
        Some("..leading\r\n..\r\nmiddle.dot\r\n...two\r\nno final break\r\n.\r\n")
    );
}

#[tokio::test]
async fn a_large_body_arrives_whole_in_several_blocks() {
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
    ];
    let (mut connection, received) = smtp(&script).await;
    let body = b"0123456789 abcdefghijklmnopqrstuvwxyz\r\n.dot\r\n".repeat(20_000);
    let replies = connection
        .send(&envelope(&["b@dest.test"]), &body)
        .await
        .expect("transaction");
    assert_eq!(replies, [queued()]);
    let received = finish(connection, received).await;
    let expected = tern_smtp::client::dot_stuff(&body);
    assert!(
        received
            .all
            .ends_with(std::str::from_utf8(&expected).expect("ASCII"))
    );
}

#[tokio::test]
async fn one_connection_carries_several_transactions_with_rset_between() {
    let reset = "250 2.0.0 reset\r\n";
    let script = [
        GREETING,
        EHLO_PIPELINING,
        MAIL_OK,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
        reset,
        MAIL_OK,
        RCPT_OK,
        GO_AHEAD,
        QUEUED,
        "221 bye\r\n",
    ];
    let (mut connection, received) = smtp(&script).await;
    let first = connection
        .send(&envelope(&["b@dest.test"]), b"first\r\n")
        .await;
    connection.reset().await.expect("RSET");
    let second = connection
        .send(&envelope(&["c@dest.test"]), b"second\r\n")
        .await;
    assert_eq!(first.expect("first"), [queued()]);
    assert_eq!(second.expect("second"), [queued()]);
    connection.quit().await;
    let received = received.await.expect("peer");
    assert!(
        received.all.contains("first\r\n.\r\nRSET\r\nMAIL"),
        "{}",
        received.all
    );
    assert!(
        received.all.ends_with("second\r\n.\r\nQUIT\r\n"),
        "{}",
        received.all
    );
}

#[tokio::test]
async fn a_refused_rset_makes_the_connection_unusable() {
    let script = [GREETING, EHLO_PLAIN, "500 5.5.1 what\r\n"];
    let (mut connection, _received) = smtp(&script).await;
    assert!(matches!(
        connection.reset().await,
        Err(DeliveryError::Protocol { .. })
    ));
    let result = connection.send(&envelope(&["b@dest.test"]), BODY).await;
    assert!(
        matches!(result, Err(DeliveryError::Protocol { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_envelope_without_recipients_sends_nothing() {
    let (mut connection, received) = smtp(&[GREETING, EHLO_PIPELINING]).await;
    let replies = connection
        .send(&envelope(&[]), BODY)
        .await
        .expect("nothing to do");
    assert!(replies.is_empty());
    assert_eq!(
        finish(connection, received).await.all,
        "EHLO client.test\r\n"
    );
}
