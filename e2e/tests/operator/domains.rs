//! MailDomain: the domain is ours while the resource exists; its DKIM keys and DNS records.

use super::*;

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
    let field = |path: &str| stack.get("maildomain/example-org", path);
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
    let (dkim_name, dkim_value) = dkim_record(&stack, &selector);
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

/// The DKIM record example-org's status lists for `selector`: its name and its Ed25519 text.
fn dkim_record(stack: &Stack, selector: &str) -> (String, String) {
    let name = format!("{selector}._domainkey.example.org");
    let value = stack.get(
        "maildomain/example-org",
        &format!("{{.status.dnsRecords[?(@.name==\"{name}\")].value}}"),
    );
    assert!(value.starts_with("v=DKIM1; k=ed25519; p="), "{value}");
    (name, value)
}

/// Moves the DKIM keyring's clock back for the keys in `phase`: their phase began `days` earlier,
/// as if that time had passed.
fn backdate(stack: &Stack, phase: &str, days: i64) {
    let annotation = stack.cluster.kubectl_ok(&[
        "get",
        "secret",
        "example-org-dkim",
        "-n",
        "mail",
        "-o",
        "jsonpath={.metadata.annotations.tern\\.dev/dkim-keys}",
    ]);
    let mut keys: Vec<serde_json::Value> = serde_json::from_str(&annotation).expect("the state");
    let earlier = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    let earlier = earlier
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    for key in keys.iter_mut().filter(|key| key["phase"] == phase) {
        key["since"] = serde_json::Value::String(earlier.clone());
    }
    let annotation = serde_json::to_string(&keys).expect("json");
    stack.cluster.kubectl_ok(&[
        "annotate",
        "--overwrite",
        "secret",
        "example-org-dkim",
        "-n",
        "mail",
        &format!("tern.dev/dkim-keys={annotation}"),
    ]);
}

/// Relays a message from `a@example.org` through the trusted network: the selectors of its
/// DKIM signatures.
async fn signed_by(stack: &Stack) -> Vec<String> {
    let addr = format!("127.0.0.1:{}", stack.smtp).parse().expect("addr");
    let (mut client, _) = SmtpClient::connect(addr).await;
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(client.command("MAIL FROM:<a@example.org>").await.code, 250);
    assert_eq!(
        client.command("RCPT TO:<b@elsewhere.example>").await.code,
        250
    );
    assert_eq!(client.command("DATA").await.code, 354);
    client
        .send(b"From: a@example.org\r\nTo: b@elsewhere.example\r\nSubject: rotation\r\n\r\nhi\r\n.\r\n")
        .await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let id = reply
        .text()
        .rsplit(' ')
        .next()
        .expect("queue id")
        .to_owned();
    let body: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM messages WHERE replace(id::text, '-', '') = $1")
            .bind(&id)
            .fetch_one(&stack.db.pool)
            .await
            .expect("the message");
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("DKIM-Signature:")
        .skip(1)
        .filter_map(|signature| {
            let tag = signature
                .split(';')
                .find(|tag| tag.trim().starts_with("s="))?;
            Some(tag.trim()["s=".len()..].to_owned())
        })
        .collect()
}

/// The control plane's keys of example.org: (selector, signing).
async fn control_keys(stack: &Stack) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT selector, signing FROM dkim_keys WHERE domain = 'example.org' ORDER BY selector",
    )
    .fetch_all(&stack.db.pool)
    .await
    .expect("the keys")
}

#[tokio::test]
async fn a_dkim_key_rotates_only_once_dns_serves_the_next_one() {
    let dns = tern_testkit::dns::TestDns::start().await;
    let stack = Stack::start_with_both(
        &[
            ("TERN_OPERATOR_RESYNC_INTERVAL", "2s".into()),
            ("TERN_OPERATOR_NAMESERVER", dns.addr().to_string()),
        ],
        &[("TERN_INGRESS_TRUSTED_NETWORKS", "127.0.0.1/32".into())],
    )
    .await;
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local, dkim: {algorithm: Ed25519Sha256, \
         rotation: Every, rotateDays: 30, overlapDays: 2}}\n",
    );
    let field = |path: &str| stack.get("maildomain/example-org", path);
    let first = eventually("a DKIM selector", Duration::from_secs(15), || async {
        let selector = field("{.status.dkim.activeSelector}");
        selector.starts_with("tern-").then_some(selector)
    })
    .await;
    eventually("mail signed with it", Duration::from_secs(10), || async {
        (signed_by(&stack).await == [first.clone()]).then_some(())
    })
    .await;
    assert!(!field("{.status.dkim.nextStepAt}").is_empty());

    // Thirty days on: the next key is made and published, but signing waits for DNS.
    backdate(&stack, "Active", 31);
    let next = eventually("a next key", Duration::from_secs(15), || async {
        let next = field("{.status.dkim.nextSelector}");
        (!next.is_empty()).then_some(next)
    })
    .await;
    assert_eq!(next, format!("{first}-2"), "made on the same day");
    assert_eq!(
        control_keys(&stack).await,
        [(first.clone(), true), (next.clone(), false)]
    );
    let (next_name, next_value) = dkim_record(&stack, &next);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        field("{.status.dkim.activeSelector}"),
        first,
        "DNS does not serve it yet"
    );
    assert_eq!(signed_by(&stack).await, std::slice::from_ref(&first));

    // DNS serves it: signing moves, and the old key stays published for the overlap.
    dns.add_txt(&next_name, &next_value);
    eventually("signing moved", Duration::from_secs(15), || async {
        (field("{.status.dkim.activeSelector}") == next).then_some(())
    })
    .await;
    assert_eq!(
        field("{.status.dkim.retiringSelectors}"),
        format!("[\"{first}\"]")
    );
    assert_eq!(
        control_keys(&stack).await,
        [(first.clone(), false), (next.clone(), true)]
    );
    eventually(
        "mail signed with the new key",
        Duration::from_secs(10),
        || async { (signed_by(&stack).await == [next.clone()]).then_some(()) },
    )
    .await;
    let reasons = stack.cluster.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "mail",
        "--field-selector",
        "involvedObject.name=example-org",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(reasons.contains("DkimSigningSwitched"), "{reasons}");

    // The overlap over: the old key leaves DNS's list, the control plane and the Secret.
    backdate(&stack, "Retiring", 3);
    eventually("the old key removed", Duration::from_secs(15), || async {
        field("{.status.dkim.retiringSelectors}")
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(control_keys(&stack).await, [(next.clone(), true)]);
    let data = stack.cluster.kubectl_ok(&[
        "get",
        "secret",
        "example-org-dkim",
        "-n",
        "mail",
        "-o",
        "jsonpath={.data}",
    ]);
    assert!(
        !data.contains(&format!("\"{first}.private-key.der\"")),
        "{data}"
    );
    assert!(
        data.contains(&format!("\"{next}.private-key.der\"")),
        "{data}"
    );
    let names = field("{.status.dnsRecords[*].name}");
    assert!(!names.contains(&format!("{first}._domainkey")), "{names}");
}
