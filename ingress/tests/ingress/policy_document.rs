//! The control plane's policy document in a running ingress: SPF turned on in reject mode, then
//! back off, without a restart; a document that does not combine with the pod's own settings
//! is refused by the pod, which keeps the policy it had.

use std::time::Duration;

use tern_common::control::{Owner, PgControlStore, PolicyDocument, SpfMode};
use tern_testkit::dns::TestDns;
use tern_testkit::wait::eventually;

use crate::harness::TestIngress;

fn writer(ingress: &TestIngress) -> PgControlStore {
    PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()))
}

/// MAIL's reply code for `from`, in a fresh session.
async fn mail(ingress: &TestIngress, from: &str) -> u16 {
    let (mut client, _) = ingress.client().await;
    client.command(&format!("MAIL FROM:<{from}>")).await.code
}

/// Waits (up to 5 s) until MAIL from `from` gets `code`.
async fn mail_becomes(ingress: &TestIngress, from: &str, code: u16) {
    let what = format!("MAIL FROM:<{from}> to get {code}");
    eventually(&what, Duration::from_secs(5), || async {
        (mail(ingress, from).await == code).then_some(())
    })
    .await;
}

#[tokio::test]
async fn spf_is_turned_on_and_off_through_the_control_plane() {
    let dns = TestDns::start().await;
    dns.add_txt("fail.example", "v=spf1 ip4:192.0.2.0/24 -all");
    let nameserver = dns.addr().to_string();
    // SPF is off in the pod's own settings; only the name server is set.
    let ingress = TestIngress::start_with(&["--nameserver", nameserver.as_str()]).await;
    assert_eq!(mail(&ingress, "mallory@fail.example").await, 250);

    let reject = PolicyDocument {
        spf: Some(SpfMode::Reject),
        ..PolicyDocument::default()
    };
    writer(&ingress)
        .put_policy(Owner::Api, &reject)
        .await
        .expect("write the policy");
    mail_becomes(&ingress, "mallory@fail.example", 550).await;

    // Greylisting whose delay outlasts this pod's retry window (2 days) could never pass: the
    // pod refuses the document and keeps SPF in reject mode.
    let impossible = PolicyDocument {
        spf: Some(SpfMode::Off),
        greylist: Some(true),
        greylist_delay_seconds: Some(3 * 24 * 3600),
        ..PolicyDocument::default()
    };
    writer(&ingress)
        .put_policy(Owner::Api, &impossible)
        .await
        .expect("the document itself is valid");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mail(&ingress, "mallory@fail.example").await, 550);

    // Without a document, the pod's own settings (SPF off) apply again.
    writer(&ingress)
        .delete_policy(Owner::Api)
        .await
        .expect("delete the policy");
    mail_becomes(&ingress, "mallory@fail.example", 250).await;
}
