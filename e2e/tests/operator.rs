//! `tern operator` against a real Kubernetes API server (etcd and kube-apiserver built from their
//! Go modules), with exactly the permissions of `deploy/operator/rbac.yaml`, and a running `tern
//! ingress`: a MailUser with its Secret makes SMTP AUTH succeed, a change to the Secret changes
//! the password, and deleting the MailUser makes AUTH fail; a MailDomain makes its domain one
//! the ingress takes mail for, until it is deleted.

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
        let ingress = Tern::start(
            "ingress",
            &db.url,
            &[
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
            ],
        )
        .await;
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

    /// The `Ready` condition's status of `resource` (`mailuser/alice`).
    fn ready(&self, resource: &str) -> String {
        self.cluster.kubectl_ok(&[
            "get",
            resource,
            "-n",
            "mail",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
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

#[tokio::test]
async fn a_mail_user_and_its_secret_decide_smtp_auth() {
    let stack = Stack::start().await;
    let (submission, certificate) = (stack.submission, &stack.certificate);
    let first = "the first password, long enough";
    stack.apply(&secret(first));
    stack.apply(USER);
    login_becomes(submission, certificate, first, OK).await;
    assert_eq!(stack.ready("mailuser/alice"), "True");
    // The transition is an event `kubectl describe` shows.
    eventually("an event for alice", Duration::from_secs(10), || async {
        let reasons = stack.cluster.kubectl_ok(&[
            "get",
            "events",
            "-n",
            "mail",
            "--field-selector",
            "involvedObject.name=alice",
            "-o",
            "jsonpath={.items[*].reason}",
        ]);
        reasons.contains("Reconciled").then_some(())
    })
    .await;

    // A new password in the Secret replaces the old one.
    let second = "the second password, longer still";
    stack.apply(&secret(second));
    login_becomes(submission, certificate, second, OK).await;
    assert_eq!(login(submission, certificate, first).await, BAD);

    // Settled: nothing reconciles again until something changes (no loop on its own status).
    let before = stack.reconciles("MailUser").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.reconciles("MailUser").await, before);

    // Deleting the MailUser removes the user (the finalizer runs first).
    stack.delete("mailuser", "alice");
    login_becomes(submission, certificate, second, BAD).await;
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

#[tokio::test]
async fn a_mail_domain_makes_its_domain_ours_until_it_is_deleted() {
    let stack = Stack::start().await;
    // Not our domain yet: relaying for a stranger is refused.
    assert_eq!(rcpt(stack.smtp).await, 554);

    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local}\n",
    );
    eventually("the domain to be ours", Duration::from_secs(10), || async {
        (rcpt(stack.smtp).await == 250).then_some(())
    })
    .await;
    assert_eq!(stack.ready("maildomain/example-org"), "True");

    stack.delete("maildomain", "example-org");
    eventually("the domain to be gone", Duration::from_secs(10), || async {
        (rcpt(stack.smtp).await == 554).then_some(())
    })
    .await;
}

/// The Lease's holder, or `""` when nobody holds it.
fn holder(cluster: &KubeCluster) -> String {
    let output = cluster.kubectl(&[
        "get",
        "lease",
        "tern-operator",
        "-n",
        OPERATOR_NAMESPACE,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_hand_over_when_it_stops() {
    let stack = Stack::start().await;
    // The stack's operator is replica "first"; a second one joins.
    let second = Tern::start(
        "operator",
        &stack.db.url,
        &[
            ("TERN_OPERATOR_ID", "second".into()),
            (
                "KUBECONFIG",
                stack.cluster.kubeconfig("operator").display().to_string(),
            ),
        ],
    )
    .await;
    eventually("a leader", Duration::from_secs(10), || async {
        (holder(&stack.cluster) == "first").then_some(())
    })
    .await;

    // Only the leader reconciles.
    stack.apply(&secret("a password for the election"));
    stack.apply(USER);
    eventually("alice ready", Duration::from_secs(20), || async {
        (stack.ready("mailuser/alice") == "True").then_some(())
    })
    .await;
    let reconciles = |tern: &Tern| {
        let admin = tern.admin;
        async move {
            let (_, response) = http_get(admin, "/metrics").await;
            let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
            Scrape::parse(body)
                .expect("metrics")
                .sum("tern_operator_reconciliations_total", &[])
        }
    };
    assert!(reconciles(&stack.operator).await > 0.0);
    assert_eq!(reconciles(&second).await, 0.0);

    // SIGTERM: the leader hands the lease over, and the other replica takes it at once rather
    // than after the lease's 15 s.
    stack.operator.signal("TERM").await;
    eventually(
        "the second replica to lead",
        Duration::from_secs(8),
        || async { (holder(&stack.cluster) == "second").then_some(()) },
    )
    .await;
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local}\n",
    );
    eventually(
        "the new leader to reconcile",
        Duration::from_secs(20),
        || async { (stack.ready("maildomain/example-org") == "True").then_some(()) },
    )
    .await;
    assert!(reconciles(&second).await > 0.0);
}

#[tokio::test]
async fn a_mail_blocklist_refuses_its_clients_until_it_is_deleted() {
    let stack = Stack::start().await;
    let greeting = || async {
        let addr = format!("127.0.0.1:{}", stack.smtp).parse().expect("addr");
        SmtpClient::connect(addr).await.1.code
    };
    assert_eq!(greeting().await, 220);

    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailBlocklist\nmetadata: {name: local}\n\
         spec: {entries: [{type: Cidr, value: 127.0.0.0/8, reason: test}, \
                          {type: SenderDomain, value: spam.example}]}\n",
    );
    eventually(
        "the client to be refused",
        Duration::from_secs(10),
        || async { (greeting().await == 554).then_some(()) },
    )
    .await;
    assert_eq!(stack.ready("mailblocklist/local"), "True");
    let entries = stack.cluster.kubectl_ok(&[
        "get",
        "mailblocklist",
        "local",
        "-n",
        "mail",
        "-o",
        "jsonpath={.status.entries}",
    ]);
    assert_eq!(entries, "2");

    stack.delete("mailblocklist", "local");
    eventually(
        "the client to be let in again",
        Duration::from_secs(10),
        || async { (greeting().await == 220).then_some(()) },
    )
    .await;
}

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

#[tokio::test]
async fn rows_changed_behind_the_operators_back_are_put_back() {
    let stack = Stack::start_with(&[("TERN_OPERATOR_RESYNC_INTERVAL", "2s".into())]).await;
    let password = "a password that drifts away";
    stack.apply(&secret(password));
    stack.apply(USER);
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local}\n",
    );
    login_becomes(stack.submission, &stack.certificate, password, OK).await;
    eventually("the domain to be ours", Duration::from_secs(10), || async {
        (rcpt(stack.smtp).await == 250).then_some(())
    })
    .await;

    // Someone deletes the user and the domain in the database itself.
    sqlx::query("DELETE FROM users WHERE login = 'alice@example.org'")
        .execute(&stack.db.pool)
        .await
        .expect("delete the user");
    sqlx::query("DELETE FROM domains WHERE name = 'example.org'")
        .execute(&stack.db.pool)
        .await
        .expect("delete the domain");
    sqlx::query("UPDATE control_revision SET revision = revision + 1")
        .execute(&stack.db.pool)
        .await
        .expect("bump the revision");
    // The next resync puts both back.
    login_becomes(stack.submission, &stack.certificate, password, OK).await;
    eventually("the domain to be back", Duration::from_secs(15), || async {
        (rcpt(stack.smtp).await == 250).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_mail_domain_gets_a_dkim_key_and_says_which_records_dns_serves() {
    let dns = tern_testkit::dns::TestDns::start().await;
    let stack = Stack::start_with(&[
        ("TERN_OPERATOR_RESYNC_INTERVAL", "2s".into()),
        ("TERN_OPERATOR_NAMESERVER", dns.addr().to_string()),
        ("TERN_OPERATOR_MX_HOST", "mx.tern.test".into()),
    ])
    .await;
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local, dkim: {algorithm: Ed25519Sha256}}\n",
    );
    let field = |path: &str| {
        stack.cluster.kubectl_ok(&[
            "get",
            "maildomain",
            "example-org",
            "-n",
            "mail",
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    let selector = eventually("a DKIM selector", Duration::from_secs(15), || async {
        let selector = field("{.status.dkim.activeSelector}");
        selector.starts_with("tern-").then_some(selector)
    })
    .await;
    assert_eq!(stack.ready("maildomain/example-org"), "True");
    // The key pair is in a Secret the MailDomain owns, and in the control plane for signing.
    let owner = stack.cluster.kubectl_ok(&[
        "get",
        "secret",
        "example-org-dkim",
        "-n",
        "mail",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(owner, "MailDomain");
    let (stored, owner, signing): (String, String, bool) = sqlx::query_as(
        "SELECT selector, owner, signing FROM dkim_keys WHERE domain = 'example.org'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .expect("the key in the control plane");
    assert_eq!(
        (stored.as_str(), owner.as_str(), signing),
        (selector.as_str(), "crd", true)
    );

    // Nothing is published yet; then the MX and the DKIM record are.
    assert_eq!(
        field("{.status.dnsRecords[*].published}"),
        "false false false false"
    );
    let dkim_name = format!("{selector}._domainkey.example.org");
    let dkim_value = field(&format!(
        "{{.status.dnsRecords[?(@.name==\"{dkim_name}\")].value}}"
    ));
    assert!(
        dkim_value.starts_with("v=DKIM1; k=ed25519; p="),
        "{dkim_value}"
    );
    dns.add_txt(&dkim_name, &dkim_value);
    dns.add_mx("example.org", 20, "mx.tern.test");
    eventually(
        "the MX and DKIM records seen",
        Duration::from_secs(15),
        || async {
            (field("{.status.dnsRecords[*].published}") == "true false true false").then_some(())
        },
    )
    .await;

    // Deleted: the key leaves the control plane with the domain.
    stack.delete("maildomain", "example-org");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM dkim_keys")
        .fetch_one(&stack.db.pool)
        .await
        .expect("count");
    assert_eq!(keys, 0);
}
