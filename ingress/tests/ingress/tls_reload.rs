//! Certificates chosen by SNI, and replaced on disk (the way the kubelet updates a mounted
//! Secret) while the ingress runs. The test client trusts exactly one certificate per handshake,
//! so a successful handshake names the certificate that was served.

use std::time::Duration;

use tern_common::control::{NewCertificate, Owner, PgControlStore};
use tern_ingress::ListenerKind;
use tern_testkit::SmtpClient;
use tern_testkit::tls_files::{SecretMount, TestCertificate};

use crate::harness::{TestIngress, queue_id, send_message};
use crate::tls::{SERVER_NAME, start_tls_ingress, starttls_client};

async fn handshake_ok(ingress: &TestIngress, name: &str, trusted: &TestCertificate) -> bool {
    let addr = ingress.addr_of(ListenerKind::Submissions);
    match SmtpClient::connect_tls(addr, name, &trusted.cert_pem).await {
        Ok((_, greeting)) => greeting.code == 220,
        Err(_) => false,
    }
}

/// Polls until a handshake trusting only `trusted` succeeds (the reload interval is 100 ms).
async fn wait_for_certificate(ingress: &TestIngress, trusted: &TestCertificate) {
    for _ in 0..200 {
        if handshake_ok(ingress, SERVER_NAME, trusted).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replaced certificate was never served");
}

#[tokio::test]
async fn sni_selects_among_several_certificates() {
    let default = TestCertificate::self_signed(&[SERVER_NAME]);
    let other = TestCertificate::self_signed(&["*.other.test"]);
    let (default_mount, other_mount) = (SecretMount::new(&default), SecretMount::new(&other));
    let setting = format!("{},{}", default_mount.setting(), other_mount.setting());
    let ingress = TestIngress::start_with(&[
        "--tls-certificates",
        &setting,
        "--submissions-listen",
        "127.0.0.1:0",
    ])
    .await;
    assert!(handshake_ok(&ingress, SERVER_NAME, &default).await);
    assert!(handshake_ok(&ingress, "mail.other.test", &other).await);
    assert!(
        !handshake_ok(&ingress, "mail.other.test", &default).await,
        "the wildcard name was served the default certificate"
    );
    // A name no certificate covers gets the default one (which the client then rejects).
    assert!(!handshake_ok(&ingress, "unknown.example", &other).await);
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_a_restart_or_dropped_sessions() {
    let (ingress, mut mount, first) = start_tls_ingress(&["--tls-reload-interval", "100ms"]).await;
    // A session established with the first certificate...
    let (mut session, _) = starttls_client(ingress.addr, &first).await;

    let second = TestCertificate::self_signed(&[SERVER_NAME]);
    mount.update(&second);
    wait_for_certificate(&ingress, &second).await;
    assert!(!handshake_ok(&ingress, SERVER_NAME, &first).await);

    // ...still delivers after the reload.
    let reply = send_message(
        &mut session,
        "sender@example.org",
        &["kept@tern.test"],
        b"Subject: survived a reload\r\n\r\nbody\r\n",
    )
    .await;
    queue_id(&reply);

    // A broken replacement (a key that does not match the certificate, then garbage) is refused
    // and the last good certificate stays in service; a later good one is taken again.
    let mismatched = TestCertificate::self_signed(&[SERVER_NAME]);
    mount.update_raw(&first.cert_pem, &mismatched.key_pem);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(handshake_ok(&ingress, SERVER_NAME, &second).await);
    mount.update_raw("not a certificate", "not a key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(handshake_ok(&ingress, SERVER_NAME, &second).await);
    let third = TestCertificate::self_signed(&[SERVER_NAME]);
    mount.update(&third);
    wait_for_certificate(&ingress, &third).await;
}

/// Polls until a handshake for `name` trusting only `trusted` succeeds (`served`) or fails
/// (not `served`); panics with `why` after five seconds.
async fn wait_for_served(
    ingress: &TestIngress,
    name: &str,
    trusted: &TestCertificate,
    served: bool,
    why: &str,
) {
    for _ in 0..200 {
        if handshake_ok(ingress, name, trusted).await == served {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{why}");
}

fn stored(name: &str, certificate: &TestCertificate) -> NewCertificate {
    NewCertificate {
        name: name.into(),
        chain_pem: certificate.cert_pem.clone(),
        key_pem: certificate.key_pem.clone(),
    }
}

#[tokio::test]
async fn certificates_written_to_the_control_plane_are_served_by_sni_beside_the_files() {
    let (ingress, _mount, file) = start_tls_ingress(&[]).await;
    let control = PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()));
    let first = TestCertificate::self_signed(&["mx.stored.test"]);
    control
        .add_certificate(Owner::Api, &stored("stored", &first))
        .await
        .expect("store the certificate");
    wait_for_served(
        &ingress,
        "mx.stored.test",
        &first,
        true,
        "the stored certificate was never served",
    )
    .await;
    assert!(handshake_ok(&ingress, SERVER_NAME, &file).await);

    // The mounted file wins when both name a host: it is the one configured on the pod.
    let shadow = TestCertificate::self_signed(&[SERVER_NAME]);
    control
        .add_certificate(Owner::Api, &stored("shadow", &shadow))
        .await
        .expect("store the shadow");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(handshake_ok(&ingress, SERVER_NAME, &file).await);
    assert!(!handshake_ok(&ingress, SERVER_NAME, &shadow).await);

    let rotated = TestCertificate::self_signed(&["mx.stored.test"]);
    control
        .replace_certificate(Owner::Api, &stored("stored", &rotated))
        .await
        .expect("rotate");
    wait_for_served(
        &ingress,
        "mx.stored.test",
        &rotated,
        true,
        "the rotated certificate was never served",
    )
    .await;
    assert!(!handshake_ok(&ingress, "mx.stored.test", &first).await);

    control
        .delete_certificate(Owner::Api, "stored")
        .await
        .expect("delete");
    // Without it the name falls back to the default (the file).
    wait_for_served(
        &ingress,
        "mx.stored.test",
        &rotated,
        false,
        "the deleted certificate was still served",
    )
    .await;
}
