//! Deleting a namespace removes the rows of every resource in it, and nothing else; an object the
//! operator made goes with its owner. The controller manager's namespace and garbage collector
//! controllers run beside the API server here, as in a cluster.

use tern_common::control::{Domain, DomainKind, Owner, PgControlStore};

use super::*;

/// Applies `manifest` into `namespace` as the administrator.
fn apply_in(stack: &Stack, namespace: &str, manifest: &str) {
    let output = stack.cluster.kubectl_as(
        "admin",
        &["apply", "-n", namespace, "-f", "-"],
        Some(manifest),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn domain(name: &str, domain: &str) -> String {
    format!(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {{name: {name}}}\n\
         spec: {{domain: {domain}, kind: Local, dkim: {{algorithm: Ed25519Sha256}}}}\n"
    )
}

async fn count(stack: &Stack, query: &'static str) -> i64 {
    sqlx::query_scalar(query)
        .fetch_one(&stack.db.pool)
        .await
        .expect(query)
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_rows_and_nothing_else() {
    let mut stack = Stack::start().await;
    stack.cluster.start_controllers();
    stack.cluster.kubectl_ok(&["create", "namespace", "other"]);
    // A domain the admin API made: not the operator's to touch.
    PgControlStore::new(stack.db.pool.clone(), None)
        .put_domain(
            Owner::Api,
            &Domain {
                name: "api.example".into(),
                kind: DomainKind::Relay,
                route: None,
                owner: Owner::Api,
            },
        )
        .await
        .expect("the API's domain");

    stack.apply(&secret("a password, long enough"));
    stack.apply(USER);
    stack.apply(&domain("example-org", "example.org"));
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailBlocklist\nmetadata: {name: abuse}\n\
         spec: {entries: [{type: Cidr, value: 192.0.2.0/24}]}\n",
    );
    apply_in(&stack, "other", &domain("example-net", "example.net"));
    let rows = || async {
        (
            count(&stack, "SELECT count(*) FROM users").await,
            count(&stack, "SELECT count(*) FROM domains WHERE owner = 'crd'").await,
            count(&stack, "SELECT count(*) FROM dkim_keys").await,
            count(&stack, "SELECT count(*) FROM blocklist").await,
        )
    };
    eventually("every resource's rows", Duration::from_secs(20), || async {
        (rows().await == (1, 2, 2, 1)).then_some(())
    })
    .await;

    // The namespace goes, and its finalizers run first: its rows go, the others stay.
    stack
        .cluster
        .kubectl_ok(&["delete", "namespace", "mail", "--timeout=90s"]);
    assert_eq!(rows().await, (0, 1, 1, 0));
    let domains: Vec<String> = sqlx::query_scalar("SELECT name FROM domains ORDER BY name")
        .fetch_all(&stack.db.pool)
        .await
        .expect("domains");
    assert!(domains.contains(&"api.example".to_owned()), "{domains:?}");
    assert!(domains.contains(&"example.net".to_owned()), "{domains:?}");
    assert!(!domains.contains(&"example.org".to_owned()), "{domains:?}");

    // A MailDomain's DKIM Secret is owned by it: the garbage collector takes it along.
    let secret = ["get", "secret", "example-net-dkim", "-n", "other"];
    assert!(stack.cluster.kubectl(&secret).status.success());
    stack.cluster.kubectl_ok(&[
        "delete",
        "maildomain",
        "example-net",
        "-n",
        "other",
        "--timeout=30s",
    ]);
    eventually("the Secret collected", Duration::from_secs(30), || async {
        (!stack.cluster.kubectl(&secret).status.success()).then_some(())
    })
    .await;
}
