//! MailCertificate: served by SNI from a TLS Secret.

use super::*;

/// STARTTLS on port 25 asking for `name` by SNI, trusting only `trusted`: whether the handshake
/// succeeded (it does only when the ingress serves that certificate for that name).
async fn serves(port: u16, name: &str, trusted: &TestCertificate) -> bool {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut client, _) = SmtpClient::connect(addr).await;
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    client.start_tls(name, &trusted.cert_pem).await.is_ok()
}

#[tokio::test]
async fn a_mail_certificate_from_a_tls_secret_is_served_by_sni() {
    let stack = Stack::start().await;
    const HOST: &str = "mail.tern.test";
    let certificate = TestCertificate::self_signed(&[HOST]);
    // Before: the ingress answers that name with its own file certificate.
    assert!(!serves(stack.smtp, HOST, &certificate).await);

    let files = SecretMount::new(&certificate);
    stack.cluster.kubectl_ok(&[
        "create",
        "secret",
        "tls",
        "mail-tls",
        "-n",
        "mail",
        "--cert",
        &files.cert().display().to_string(),
        "--key",
        &files.key().display().to_string(),
    ]);
    stack.apply(&format!(
        "apiVersion: tern.dev/v1alpha1\nkind: MailCertificate\nmetadata: {{name: mail}}\n\
         spec: {{hostnames: [{HOST}], secretName: mail-tls}}\n"
    ));
    eventually(
        "the certificate to be served",
        Duration::from_secs(15),
        || async { serves(stack.smtp, HOST, &certificate).await.then_some(()) },
    )
    .await;
    assert_eq!(stack.ready("mailcertificate/mail"), "True");
    eventually(
        "the status to count the serving pod",
        Duration::from_secs(15),
        || async {
            let serving = stack.cluster.kubectl_ok(&[
                "get",
                "mailcertificate",
                "mail",
                "-n",
                "mail",
                "-o",
                "jsonpath={.status.servingPods}",
            ]);
            (serving == "1").then_some(())
        },
    )
    .await;
    let fingerprint = stack.cluster.kubectl_ok(&[
        "get",
        "mailcertificate",
        "mail",
        "-n",
        "mail",
        "-o",
        "jsonpath={.status.fingerprint}",
    ]);
    assert_eq!(
        Some(fingerprint),
        tern_common::control::leaf_fingerprint(&certificate.cert_pem)
    );

    // A hostname the certificate does not name is reported, not served.
    stack.apply(&format!(
        "apiVersion: tern.dev/v1alpha1\nkind: MailCertificate\nmetadata: {{name: mail}}\n\
         spec: {{hostnames: [{HOST}, smtp.tern.test], secretName: mail-tls}}\n"
    ));
    eventually(
        "not ready for a name it lacks",
        Duration::from_secs(10),
        || async { (stack.ready("mailcertificate/mail") == "False").then_some(()) },
    )
    .await;

    // Deleted: the name falls back to the ingress's own certificate.
    stack.delete("mailcertificate", "mail");
    eventually(
        "the certificate to be gone",
        Duration::from_secs(15),
        || async { (!serves(stack.smtp, HOST, &certificate).await).then_some(()) },
    )
    .await;
}
