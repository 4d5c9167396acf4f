//! The generated CustomResourceDefinitions against a real Kubernetes API server (etcd and
//! kube-apiserver from their Go modules): installed from `deploy/crds/`, the examples under
//! `deploy/examples/` applied with kubectl, the printer columns shown by `kubectl get`, and
//! invalid resources refused by the schema or the CEL rules with a message that names the field.

use std::path::Path;

use tern_testkit::KubeCluster;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

/// A cluster with the CRDs installed and established, and a namespace `mail`.
fn cluster_with_crds() -> KubeCluster {
    let cluster = KubeCluster::start();
    cluster.install_crds();
    cluster.kubectl_ok(&["create", "namespace", "mail"]);
    cluster
}

/// Applies `manifest` in namespace `mail`; the error output when the API server refuses it.
fn refused(cluster: &KubeCluster, manifest: &str) -> String {
    let output = cluster.kubectl_as("admin", &["apply", "-n", "mail", "-f", "-"], Some(manifest));
    assert!(
        !output.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_examples_are_accepted_and_kubectl_get_shows_the_columns() {
    let cluster = cluster_with_crds();
    cluster.kubectl_ok(&["apply", "-n", "mail", "-f", &repo("deploy/examples")]);

    let users = cluster.kubectl_ok(&["get", "mailusers", "-n", "mail"]);
    let header: Vec<&str> = users
        .lines()
        .next()
        .expect("a header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "LOGIN", "ENABLED", "READY", "AGE"],
        "{users}"
    );
    assert!(users.contains("alice@example.org"), "{users}");

    // Short names and the category.
    let domains = cluster.kubectl_ok(&["get", "md", "-n", "mail"]);
    assert!(
        domains.contains("example.org") && domains.contains("Local"),
        "{domains}"
    );
    let everything = cluster.kubectl_ok(&["get", "tern", "-n", "mail", "-o", "name"]);
    for name in [
        "maildomain.tern.dev/example-org",
        "mailuser.tern.dev/alice",
        "mailblocklist.tern.dev/abuse-desk",
        "mailcertificate.tern.dev/mx-example-org",
    ] {
        assert!(everything.contains(name), "{name} not in: {everything}");
    }
}

#[test]
fn invalid_resources_are_refused_naming_the_field() {
    let cluster = cluster_with_crds();

    let both = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailCertificate\nmetadata: {name: both}\n\
         spec: {hostnames: [mx.example.org], secretName: tls, issuerRef: {name: letsencrypt}}\n",
    );
    assert!(
        both.contains("set exactly one of secretName and issuerRef"),
        "{both}"
    );

    let neither = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailCertificate\nmetadata: {name: neither}\n\
         spec: {hostnames: [mx.example.org]}\n",
    );
    assert!(
        neither.contains("set exactly one of secretName and issuerRef"),
        "{neither}"
    );

    let domain = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: bad}\n\
         spec: {domain: 'not a domain!', kind: Local}\n",
    );
    assert!(
        domain.contains("spec.domain") && domain.contains("must be a domain name"),
        "{domain}"
    );

    let kind = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: bad-kind}\n\
         spec: {domain: example.net, kind: Mailbox}\n",
    );
    assert!(
        kind.contains("spec.kind") && kind.contains("Unsupported value"),
        "{kind}"
    );

    let rotation = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: bad-rotation}\n\
         spec: {domain: example.net, kind: Local, dkim: {rotation: Every}}\n",
    );
    assert!(
        rotation.contains("spec.dkim") && rotation.contains("rotateDays is required"),
        "{rotation}"
    );

    let entry = refused(
        &cluster,
        "apiVersion: tern.dev/v1alpha1\nkind: MailBlocklist\nmetadata: {name: bad}\n\
         spec: {entries: [{type: Network, value: 192.0.2.0/24}]}\n",
    );
    assert!(entry.contains("spec.entries[0].type"), "{entry}");

    // Immutable fields: the login of a MailUser that exists.
    let user = "apiVersion: tern.dev/v1alpha1\nkind: MailUser\nmetadata: {name: bob}\n\
                spec: {login: bob@example.org, passwordSecretRef: {name: bob, key: password}}\n";
    let output = cluster.kubectl_as("admin", &["apply", "-n", "mail", "-f", "-"], Some(user));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let renamed = refused(
        &cluster,
        &user.replace("bob@example.org", "robert@example.org"),
    );
    assert!(
        renamed.contains("spec.login") && renamed.contains("login is immutable"),
        "{renamed}"
    );
}
