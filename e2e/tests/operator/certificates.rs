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

/// Plays cert-manager's part once it has issued: the TLS Secret for `certificate`, replaced if
/// there is one.
fn issue(stack: &Stack, certificate: &TestCertificate) {
    let files = SecretMount::new(certificate);
    let secret = stack.cluster.kubectl_ok(&[
        "create",
        "secret",
        "tls",
        "mx-tls",
        "-n",
        "mail",
        "--cert",
        &files.cert().display().to_string(),
        "--key",
        &files.key().display().to_string(),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    stack.apply(&secret);
}

#[tokio::test]
async fn a_mail_certificate_from_a_cert_manager_issuer_is_served_once_issued() {
    let stack = Stack::start().await;
    const HOST: &str = "mx.mail.tern.test";
    // Without cert-manager's kinds, an issuerRef cannot be met, and the condition says so.
    stack.apply(&format!(
        "apiVersion: tern.dev/v1alpha1\nkind: MailCertificate\nmetadata: {{name: mx}}\n\
         spec: {{hostnames: [{HOST}], issuerRef: {{name: tern-ca, kind: ClusterIssuer}}}}\n"
    ));
    let reason = "{.status.conditions[?(@.type==\"Ready\")].reason}";
    eventually("CertManagerMissing", Duration::from_secs(15), || async {
        (stack.get("mailcertificate/mx", reason) == "CertManagerMissing").then_some(())
    })
    .await;

    // With cert-manager's own definitions installed, the operator asks for the Certificate (at
    // the next look, which any change to the MailCertificate brings forward).
    stack.cluster.install_crds_of("cert-manager-crds");
    stack.cluster.kubectl_ok(&[
        "annotate",
        "mailcertificate",
        "mx",
        "-n",
        "mail",
        "tern.test/nudge=1",
    ]);
    let requested = "certificate.cert-manager.io/mx";
    eventually(
        "a cert-manager Certificate",
        Duration::from_secs(15),
        || async { (stack.get(requested, "{.spec.secretName}") == "mx-tls").then_some(()) },
    )
    .await;
    assert_eq!(
        stack.get(requested, "{.spec.dnsNames}"),
        format!("[\"{HOST}\"]")
    );
    assert_eq!(
        stack.get(requested, "{.spec.issuerRef.name} {.spec.issuerRef.kind}"),
        "tern-ca ClusterIssuer"
    );
    assert_eq!(
        stack.get(requested, "{.metadata.ownerReferences[0].kind}"),
        "MailCertificate"
    );
    eventually("Issuing", Duration::from_secs(15), || async {
        (stack.get("mailcertificate/mx", reason) == "Issuing").then_some(())
    })
    .await;

    // cert-manager issues into the Secret: the certificate is served by SNI.
    let issued = |what: &'static str| {
        let stack = &stack;
        async move {
            let certificate = TestCertificate::self_signed(&[HOST]);
            issue(stack, &certificate);
            eventually(what, Duration::from_secs(15), || async {
                serves(stack.smtp, HOST, &certificate).await.then_some(())
            })
            .await;
            certificate
        }
    };
    let first = issued("the issued certificate served").await;
    assert_eq!(stack.ready("mailcertificate/mx"), "True");

    // A renewal (a new key, as the Certificate asks) replaces it within seconds.
    let renewed = issued("the renewed certificate served").await;
    assert!(!serves(stack.smtp, HOST, &first).await);
    assert_eq!(
        Some(stack.get("mailcertificate/mx", "{.status.fingerprint}")),
        tern_common::control::leaf_fingerprint(&renewed.cert_pem)
    );
}
