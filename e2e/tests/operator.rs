//! `tern operator` against a real Kubernetes API server (etcd and kube-apiserver built from their
//! Go modules), with exactly the permissions of `deploy/operator/rbac.yaml`, and a running `tern
//! ingress`: a MailUser with its Secret makes SMTP AUTH succeed, a change to the Secret changes
//! the password, and deleting the MailUser makes AUTH fail.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tern_e2e::prometheus::Scrape;
use tern_e2e::{Tern, free_port, http_get, migrate};
use tern_testkit::kube_cluster::OPERATOR_NAMESPACE;
use tern_testkit::tls_files::{SecretMount, TestCertificate};
use tern_testkit::wait::eventually;
use tern_testkit::{KubeCluster, SmtpClient, TestDatabase};

const LOGIN: &str = "alice@example.org";
const NAME: &str = "mx.tern.test";
const OK: &str = "235 2.7.0 Authentication successful";
const BAD: &str = "535 5.7.8 Authentication credentials invalid";

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

/// STARTTLS and one `AUTH PLAIN` on the submission port; the reply line.
async fn login(port: u16, certificate: &TestCertificate, password: &str) -> String {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut client, greeting) = SmtpClient::connect(addr).await;
    assert_eq!(greeting.code, 220);
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("STARTTLS").await.code, 220);
    let mut client = client
        .start_tls(NAME, &certificate.cert_pem)
        .await
        .expect("TLS handshake");
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    let plain = STANDARD.encode(format!("\0{LOGIN}\0{password}"));
    let reply = client.command(&format!("AUTH PLAIN {plain}")).await;
    format!("{} {}", reply.code, reply.text())
}

/// Waits (up to 20 s) until logging in with `password` answers `expected`.
async fn login_becomes(port: u16, certificate: &TestCertificate, password: &str, expected: &str) {
    let what = format!("AUTH with {password:?} to answer {expected:?}");
    eventually(&what, Duration::from_secs(20), || async {
        (login(port, certificate, password).await == expected).then_some(())
    })
    .await;
}

fn secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: alice-password}}\n\
         stringData: {{password: '{password}'}}\n"
    )
}

const USER: &str = "apiVersion: tern.dev/v1alpha1\nkind: MailUser\nmetadata: {name: alice}\n\
    spec: {login: alice@example.org, passwordSecretRef: {name: alice-password, key: password}}\n";

#[tokio::test]
async fn a_mail_user_and_its_secret_decide_smtp_auth() {
    let cluster = tokio::task::spawn_blocking(KubeCluster::start)
        .await
        .expect("start the API server");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", &repo("deploy/crds")]);
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
    cluster.kubectl_ok(&["create", "namespace", OPERATOR_NAMESPACE]);
    cluster.kubectl_ok(&["apply", "-f", &repo("deploy/operator/rbac.yaml")]);
    cluster.kubectl_ok(&["create", "namespace", "mail"]);

    let db = TestDatabase::create().await;
    migrate(&db.url).await;
    let certificate = TestCertificate::self_signed(&[NAME]);
    let mount = SecretMount::new(&certificate);
    let submission = free_port();
    let _ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            (
                "TERN_INGRESS_SMTP_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "TERN_INGRESS_SUBMISSION_LISTEN",
                format!("127.0.0.1:{submission}"),
            ),
            ("TERN_INGRESS_SUBMISSIONS_LISTEN", String::new()),
            ("TERN_INGRESS_TLS_CERTIFICATES", mount.setting()),
            // Waiting for the operator means failing until it has acted: no lockout for that.
            ("TERN_INGRESS_AUTH_MAX_FAILURES_PER_LOGIN", "10000".into()),
            ("TERN_INGRESS_AUTH_MAX_FAILURES_PER_IP", "10000".into()),
        ],
    )
    .await;
    // The operator signs in as its service account: only what the RBAC grants.
    let operator = Tern::start(
        "operator",
        &db.url,
        &[(
            "KUBECONFIG",
            cluster.kubeconfig("operator").display().to_string(),
        )],
    )
    .await;

    let first = "the first password, long enough";
    let apply = |manifest: String| {
        let output = cluster.kubectl_as(
            "admin",
            &["apply", "-n", "mail", "-f", "-"],
            Some(&manifest),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    apply(secret(first));
    apply(USER.to_owned());
    login_becomes(submission, &certificate, first, OK).await;
    let ready = cluster.kubectl_ok(&[
        "get",
        "mailuser",
        "alice",
        "-n",
        "mail",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready, "True");

    // A new password in the Secret replaces the old one.
    let second = "the second password, longer still";
    apply(secret(second));
    login_becomes(submission, &certificate, second, OK).await;
    assert_eq!(login(submission, &certificate, first).await, BAD);

    // Settled: nothing reconciles again until something changes (no loop on its own status).
    let reconciles = || async {
        let (_, response) = http_get(operator.admin, "/metrics").await;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Scrape::parse(body).expect("metrics").sum(
            "tern_operator_reconciliations_total",
            &[("kind", "MailUser")],
        )
    };
    let before = reconciles().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!("reconciles: {before} then {}", reconciles().await);
    assert_eq!(reconciles().await, before);

    // Deleting the MailUser removes the user (the finalizer runs first).
    cluster.kubectl_ok(&["delete", "mailuser", "alice", "-n", "mail", "--timeout=30s"]);
    login_becomes(submission, &certificate, second, BAD).await;
}
