//! PostgreSQL going away mid-session: the client hears 451 4.3.0 and nothing partial remains.

use tern_testkit::{PgCluster, TestDatabase};

use crate::harness::{TestIngress, queue_id, send_message};

#[tokio::test]
async fn postgres_stopped_mid_session_gives_451_and_no_partial_rows() {
    let cluster = PgCluster::start();
    let db = TestDatabase::create_on(&cluster.admin_url()).await;
    let ingress = TestIngress::start_on(db, &[]).await;
    let (mut client, _) = ingress.client().await;
    let before = send_message(
        &mut client,
        "a@example.org",
        &["b@tern.test"],
        b"Subject: 1\r\n\r\nx\r\n",
    )
    .await;
    queue_id(&before);

    cluster.stop();
    let many: Vec<String> = (0..10).map(|n| format!("r{n}@tern.test")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let during = send_message(
        &mut client,
        "a@example.org",
        &many,
        b"Subject: 2\r\n\r\ny\r\n",
    )
    .await;
    assert_eq!(during.code, 451, "{during:?}");
    assert!(during.text().starts_with("4.3.0"), "{during:?}");

    cluster.start_server();
    let after = send_message(
        &mut client,
        "a@example.org",
        &["c@tern.test"],
        b"Subject: 3\r\n\r\nz\r\n",
    )
    .await;
    queue_id(&after);
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 2);
    assert_eq!(ingress.count("SELECT count(*) FROM jobs").await, 2);
    assert_eq!(ingress.count("SELECT count(*) FROM jobs j LEFT JOIN messages m ON m.id = j.message_id WHERE m.id IS NULL").await, 0);
}
