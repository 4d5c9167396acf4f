//! What a 250 means: the message and one job per recipient are in PostgreSQL, the body is stored
//! byte for byte behind a Received: header, and a notice is on the work-queue stream.

use crate::harness::{TestIngress, queue_id, send_message};

#[tokio::test]
async fn accepted_message_is_committed_with_one_job_per_recipient_and_a_notice() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    let data = b"Subject: hello\r\n\r\nline one\r\n..leading dot\r\nlast line\r\n";
    let reply = send_message(
        &mut client,
        "alice@example.org",
        &["bob@tern.test", "carol@TERN.test"],
        data,
    )
    .await;
    let id = queue_id(&reply);

    let row: (String, String, i64, Vec<u8>, String, bool) = sqlx::query_as(
        "SELECT mail_from, helo, size, body, body_type, smtputf8 FROM messages WHERE id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&ingress.db.pool)
    .await
    .expect("message row");
    assert_eq!(row.0, "alice@example.org");
    assert_eq!(row.1, "client.example");
    assert_eq!(row.2 as usize, row.3.len());
    let body = row.3;
    let header_end = body
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("header line");
    assert!(body.starts_with(
        b"Received: from client.example ([127.0.0.1])\r\n\tby mx.tern.test (Tern) with ESMTP id "
    ));
    let received_len = body
        .windows(3)
        .position(|w| w == b"\r\nS")
        .expect("end of Received")
        + 2;
    assert!(received_len > header_end);
    assert_eq!(
        &body[received_len..],
        b"Subject: hello\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n"
    );
    assert_eq!(row.4, "7BIT");
    assert!(!row.5);

    let jobs: Vec<(i32, String, String, String)> =
        sqlx::query_as("SELECT rcpt_index, recipient, domain, status FROM jobs WHERE message_id = $1::uuid ORDER BY rcpt_index")
            .bind(&id)
            .fetch_all(&ingress.db.pool)
            .await
            .expect("jobs");
    assert_eq!(
        jobs,
        vec![
            (
                0,
                "bob@tern.test".into(),
                "tern.test".into(),
                "queued".into()
            ),
            // domains are case-insensitive and stored lowercased; local parts are kept as given
            (
                1,
                "carol@tern.test".into(),
                "tern.test".into(),
                "queued".into()
            ),
        ]
    );
    let due: bool = sqlx::query_scalar("SELECT bool_and(next_attempt_at <= now()) FROM jobs")
        .fetch_one(&ingress.db.pool)
        .await
        .expect("due");
    assert!(due, "new jobs are due at once");

    assert_eq!(ingress.notices(1).await, vec![id]);
    ingress.stop().await;
}

#[tokio::test]
async fn dsn_parameters_are_stored_with_the_message_and_jobs() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    let mail = client
        .command("MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2Bid BODY=8BITMIME")
        .await;
    assert_eq!(mail.code, 250, "{mail:?}");
    let rcpt = client
        .command("RCPT TO:<b@tern.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40orig.example")
        .await;
    assert_eq!(rcpt.code, 250, "{rcpt:?}");
    let rcpt = client.command("RCPT TO:<c@tern.test> NOTIFY=NEVER").await;
    assert_eq!(rcpt.code, 250, "{rcpt:?}");
    assert_eq!(client.command("DATA").await.code, 354);
    client
        .send(b"Subject: dsn\r\n\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n")
        .await;
    let id = queue_id(&client.reply().await);

    let (ret, envid, body_type): (Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT dsn_ret, dsn_envid, body_type FROM messages WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&ingress.db.pool)
            .await
            .expect("row");
    assert_eq!(ret.as_deref(), Some("HDRS"));
    assert_eq!(envid.as_deref(), Some("QQ+id"));
    assert_eq!(body_type, "8BITMIME");
    let jobs: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT dsn_notify, dsn_orcpt FROM jobs WHERE message_id = $1::uuid ORDER BY rcpt_index",
    )
    .bind(&id)
    .fetch_all(&ingress.db.pool)
    .await
    .expect("jobs");
    assert_eq!(
        jobs,
        vec![
            (
                Some("SUCCESS,FAILURE".into()),
                Some("rfc822;b@orig.example".into())
            ),
            (Some("NEVER".into()), None)
        ]
    );
}

#[tokio::test]
async fn several_messages_on_one_session_each_get_their_own_queue_id() {
    let ingress = TestIngress::start().await;
    let (mut client, _) = ingress.client().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let reply = send_message(
            &mut client,
            "",
            &["postmaster"],
            format!("Subject: {n}\r\n\r\nbody\r\n").as_bytes(),
        )
        .await;
        ids.push(queue_id(&reply));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM messages WHERE mail_from = ''")
            .await,
        5
    );
    assert_eq!(
        ingress
            .count("SELECT count(*) FROM jobs WHERE recipient = 'postmaster'")
            .await,
        5
    );
}

#[tokio::test]
async fn bdat_chunks_make_one_message_stored_exactly() {
    let ingress = TestIngress::start().await;
    let (mut client, ehlo) = ingress.client().await;
    assert!(ehlo.lines.iter().any(|l| l == "CHUNKING"), "{ehlo:?}");
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    assert_eq!(client.command("RCPT TO:<b@tern.test>").await.code, 250);
    let first = b"Subject: chunked\r\n\r\n.not stuffed\r\n";
    client
        .send(format!("BDAT {}\r\n", first.len()).as_bytes())
        .await;
    client.send(first).await;
    assert_eq!(client.reply().await.code, 250);
    let last = b"bare\nLF is binary-safe in BDAT\r\n";
    client
        .send(format!("BDAT {} LAST\r\n", last.len()).as_bytes())
        .await;
    client.send(last).await;
    let id = queue_id(&client.reply().await);
    let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM messages WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&ingress.db.pool)
        .await
        .expect("row");
    assert!(body.ends_with(
        b"\r\nSubject: chunked\r\n\r\n.not stuffed\r\nbare\nLF is binary-safe in BDAT\r\n"
    ));
}
