//! Two replicas: one leader, and a hand-over when it stops.

use super::*;

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
