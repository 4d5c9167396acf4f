//! `tern operator` against a real Kubernetes API server (etcd and kube-apiserver built from their
//! Go modules), with exactly the permissions of `deploy/operator/rbac.yaml`, and a running `tern
//! ingress`: a MailUser with its Secret makes SMTP AUTH succeed, a change to the Secret changes
//! the password, and deleting the MailUser makes AUTH fail; a MailDomain makes its domain one
//! the ingress takes mail for, until it is deleted.

mod blocklists;
mod certificates;
mod domains;
mod leader;
mod namespaces;
mod users;

use std::path::Path;
use std::time::Duration;

use tern_e2e::prometheus::Scrape;
use tern_e2e::{Tern, auth_plain, free_port, http_get, migrate};
use tern_testkit::kube_cluster::OPERATOR_NAMESPACE;
use tern_testkit::services;
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

/// STARTTLS and one `AUTH PLAIN` as alice on the submission port; the reply line.
async fn login(port: u16, certificate: &TestCertificate, password: &str) -> String {
    auth_plain(port, NAME, certificate, LOGIN, password).await
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

/// A Kubernetes API server with the CRDs and the operator's RBAC, and `tern ingress` and `tern
/// operator` on one database and one NATS prefix (so the operator's change notices reach the
/// ingress).
struct Stack {
    cluster: KubeCluster,
    certificate: TestCertificate,
    smtp: u16,
    submission: u16,
    operator: Tern,
    _ingress: Tern,
    _mount: SecretMount,
    db: TestDatabase,
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With `operator` added to the operator's environment.
    async fn start_with(operator: &[(&str, String)]) -> Self {
        Self::start_with_both(operator, &[]).await
    }

    /// With `operator` and `ingress` added to the operator's and the ingress's environments.
    async fn start_with_both(operator: &[(&str, String)], ingress: &[(&str, String)]) -> Self {
        let cluster = tokio::task::spawn_blocking(KubeCluster::start)
            .await
            .expect("start the API server");
        cluster.install_crds();
        cluster.kubectl_ok(&["create", "namespace", OPERATOR_NAMESPACE]);
        cluster.kubectl_ok(&["apply", "-f", &repo("deploy/operator/rbac.yaml")]);
        cluster.kubectl_ok(&["create", "namespace", "mail"]);

        let db = TestDatabase::create().await;
        migrate(&db.url).await;
        let certificate = TestCertificate::self_signed(&[NAME]);
        let mount = SecretMount::new(&certificate);
        let prefix = ("TERN_NATS_PREFIX", services::unique_nats_prefix());
        let (smtp, submission) = (free_port(), free_port());
        let mut ingress_env = vec![
            prefix.clone(),
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            (
                "TERN_INGRESS_SUBMISSION_LISTEN",
                format!("127.0.0.1:{submission}"),
            ),
            ("TERN_INGRESS_SUBMISSIONS_LISTEN", String::new()),
            ("TERN_INGRESS_TLS_CERTIFICATES", mount.setting()),
            // Waiting for the operator means failing until it has acted: no lockout for it.
            ("TERN_INGRESS_AUTH_MAX_FAILURES_PER_LOGIN", "10000".into()),
            ("TERN_INGRESS_AUTH_MAX_FAILURES_PER_IP", "10000".into()),
            // Only the change notice can make a change arrive within the test's wait.
            ("TERN_CONTROL_POLL_INTERVAL", "1h".into()),
        ];
        ingress_env.extend_from_slice(ingress);
        let ingress = Tern::start("ingress", &db.url, &ingress_env).await;
        // The operator signs in as its service account: only what the RBAC grants.
        let mut env = vec![
            prefix,
            ("TERN_OPERATOR_ID", "first".into()),
            (
                "KUBECONFIG",
                cluster.kubeconfig("operator").display().to_string(),
            ),
        ];
        env.extend_from_slice(operator);
        let operator = Tern::start("operator", &db.url, &env).await;
        Self {
            cluster,
            certificate,
            smtp,
            submission,
            operator,
            _ingress: ingress,
            _mount: mount,
            db,
        }
    }

    fn apply(&self, manifest: &str) {
        let output =
            self.cluster
                .kubectl_as("admin", &["apply", "-n", "mail", "-f", "-"], Some(manifest));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Deletes `kind` `name` in namespace `mail`, waiting until it is gone (its finalizer run).
    fn delete(&self, kind: &str, name: &str) {
        self.cluster
            .kubectl_ok(&["delete", kind, name, "-n", "mail", "--timeout=30s"]);
    }

    /// `path` (a jsonpath) of `resource` (`maildomain/example-org`) in namespace `mail`; empty
    /// while there is no such resource.
    fn get(&self, resource: &str, path: &str) -> String {
        let output = self.cluster.kubectl(&[
            "get",
            resource,
            "-n",
            "mail",
            "-o",
            &format!("jsonpath={path}"),
        ]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The `Ready` condition's status of `resource` (`mailuser/alice`).
    fn ready(&self, resource: &str) -> String {
        self.get(
            resource,
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        )
    }

    /// How many times the operator has reconciled `kind`.
    async fn reconciles(&self, kind: &str) -> f64 {
        let (_, response) = http_get(self.operator.admin, "/metrics").await;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Scrape::parse(body)
            .expect("metrics")
            .sum("tern_operator_reconciliations_total", &[("kind", kind)])
    }
}

/// RCPT to `user@example.org` from a stranger on port 25: its reply code.
async fn rcpt(port: u16) -> u16 {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut client, _) = SmtpClient::connect(addr).await;
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(
        client.command("MAIL FROM:<a@sender.example>").await.code,
        250
    );
    client.command("RCPT TO:<user@example.org>").await.code
}
