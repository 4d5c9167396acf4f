//! Scenario tests of the MailDomain reconciler against a scripted Kubernetes API: the exact
//! calls for a new domain (its first key made into a Secret, signing at once), a rotation's
//! switch (one Secret write, then the status and one event), and a delete. The database and the
//! DNS server are real.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use k8s_openapi::ByteString;
use serde_json::json;
use tern_common::control::{DkimAlgorithm, DkimKey, generate_dkim_key_pair};
use tern_common::dns::Resolver;
use tern_testkit::TestDatabase;
use tern_testkit::dns::TestDns;

use super::*;
use crate::dkim::KEYS_ANNOTATION;
use crate::mock_api::{self, Expect};

const DOMAIN: &str = "/apis/tern.dev/v1alpha1/namespaces/mail/maildomains/example-org";
const SECRET: &str = "/api/v1/namespaces/mail/secrets/example-org-dkim";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/mail/events";

fn domain(deleting: bool, ready: bool) -> serde_json::Value {
    let mut metadata = json!({
        "name": "example-org", "namespace": "mail", "uid": "u-3", "generation": 2,
        "resourceVersion": "20", "finalizers": [FINALIZER],
    });
    if deleting {
        metadata["deletionTimestamp"] = json!("2026-12-07T12:00:00Z");
    }
    let mut object = json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "MailDomain", "metadata": metadata,
        "spec": {"domain": "example.org", "kind": "Local",
                 "dkim": {"algorithm": "Ed25519Sha256", "rotation": "Every",
                          "rotateDays": 30, "overlapDays": 2}},
    });
    if ready {
        object["status"] = json!({"conditions": [{
            "type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
            "lastTransitionTime": "2026-11-01T00:00:00Z"}]});
    }
    object
}

struct Setup {
    db: TestDatabase,
    control: PgControlStore,
    dns: TestDns,
}

async fn setup() -> Setup {
    let db = TestDatabase::create().await;
    let control = PgControlStore::new(db.pool.clone(), None);
    Setup {
        db,
        control,
        dns: TestDns::start().await,
    }
}

async fn run(object: serde_json::Value, script: Vec<Expect>, setup: &Setup) -> Action {
    let (client, left) = mock_api::client(script);
    let context = Arc::new(Context {
        client: client.clone(),
        resync: Duration::from_secs(300),
        recorder: crate::events::recorder(client),
        control: setup.control.clone(),
        resolver: Resolver::with_nameserver(setup.dns.addr()).expect("a resolver"),
        mx_host: None,
    });
    let object: MailDomain = serde_json::from_value(object).expect("a MailDomain");
    let action = reconcile(Arc::new(object), context)
        .await
        .expect("reconciled");
    left.assert_done();
    action
}

/// The keys an annotation holds: (selector, phase).
fn phases(secret: &serde_json::Value) -> Vec<(String, String)> {
    let text = secret["metadata"]["annotations"][KEYS_ANNOTATION]
        .as_str()
        .expect("the keys' state");
    let keys: Vec<serde_json::Value> = serde_json::from_str(text).expect("json");
    keys.iter()
        .map(|key| {
            (
                key["selector"].as_str().unwrap_or_default().to_owned(),
                key["phase"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The control plane's keys of example.org: (selector, signing).
async fn signing(control: &PgControlStore) -> Vec<(String, bool)> {
    control
        .dkim_keys(Some("example.org"))
        .await
        .expect("keys")
        .into_iter()
        .map(|key| (key.selector, key.signing))
        .collect()
}

fn reason(expected: &'static str) -> impl Fn(&serde_json::Value) + Send {
    move |event| assert_eq!(event["reason"], expected, "{event}")
}

#[tokio::test]
async fn a_new_domain_gets_a_signing_key_in_a_secret_then_its_status() {
    let setup = setup().await;
    let not_found = Expect {
        status: StatusCode::NOT_FOUND,
        ..Expect::new(
            "GET",
            SECRET,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    };
    let script = vec![
        not_found,
        Expect::new("POST", "/api/v1/namespaces/mail/secrets", json!(null)).body(|secret| {
            assert_eq!(secret["metadata"]["name"], "example-org-dkim");
            assert_eq!(
                secret["metadata"]["ownerReferences"][0]["kind"],
                "MailDomain"
            );
            let keys = phases(secret);
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].1, "Active", "the first key signs at once");
            let data = secret["data"].as_object().expect("data");
            assert!(data.contains_key(&format!("{}.private-key.der", keys[0].0)));
            assert!(data.contains_key(&format!("{}.public-key.der", keys[0].0)));
        }),
        Expect::new("PATCH", format!("{DOMAIN}/status"), domain(false, false)).body(|patch| {
            let status = &patch["status"];
            assert_eq!(status["conditions"][0]["type"], "Ready");
            assert_eq!(status["conditions"][0]["status"], "True");
            assert_eq!(status["conditions"][1]["type"], "DnsPublished");
            assert_eq!(status["conditions"][1]["status"], "False");
            let selector = status["dkim"]["activeSelector"]
                .as_str()
                .expect("a selector");
            assert!(selector.starts_with("tern-"), "{selector}");
            assert!(status["dkim"]["nextStepAt"].is_string(), "{status}");
            // SPF, the DKIM record, DMARC: nothing secret among them.
            assert_eq!(status["dnsRecords"].as_array().map(Vec::len), Some(3));
            assert!(!patch.to_string().contains("private"), "{patch}");
        }),
        Expect::new("POST", EVENTS, json!(null)).body(reason("DkimKeyMade")),
        Expect::new("POST", EVENTS, json!(null)).body(reason("Reconciled")),
    ];
    run(domain(false, false), script, &setup).await;
    let keys = signing(&setup.control).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].1, "{keys:?}");
    let owner: String = sqlx::query_scalar("SELECT owner FROM domains WHERE name = 'example.org'")
        .fetch_one(&setup.db.pool)
        .await
        .expect("the domain");
    assert_eq!(owner, "crd");
}

/// A key pair for `selector`, put into the control plane (signing or not), and the Secret's
/// data for it.
async fn key(
    control: &PgControlStore,
    selector: &str,
    signing: bool,
    data: &mut BTreeMap<String, ByteString>,
) -> String {
    let (private_key, public_key) =
        generate_dkim_key_pair(DkimAlgorithm::Ed25519Sha256).expect("a key pair");
    let key = DkimKey {
        domain: "example.org".into(),
        selector: selector.into(),
        algorithm: DkimAlgorithm::Ed25519Sha256,
        private_key: private_key.clone(),
    };
    control
        .put_dkim_key(Owner::Crd, &key, &public_key, signing)
        .await
        .expect("the key");
    data.insert(
        format!("{selector}.private-key.der"),
        ByteString(private_key),
    );
    data.insert(
        format!("{selector}.public-key.der"),
        ByteString(public_key.clone()),
    );
    tern_common::control::dkim_dns_txt(DkimAlgorithm::Ed25519Sha256, &public_key)
}

#[tokio::test]
async fn a_next_key_dns_serves_takes_over_signing_in_one_secret_write() {
    let setup = setup().await;
    setup
        .control
        .put_domain(
            Owner::Crd,
            &desired(
                &serde_json::from_value::<MailDomain>(domain(false, true))
                    .expect("domain")
                    .spec,
            ),
        )
        .await
        .expect("the domain");
    let mut data = BTreeMap::new();
    key(&setup.control, "tern-old", true, &mut data).await;
    let next_record = key(&setup.control, "tern-new", false, &mut data).await;
    setup
        .dns
        .add_txt("tern-new._domainkey.example.org", &next_record);
    let state = json!([
        {"selector": "tern-old", "algorithm": "Ed25519Sha256", "phase": "Active",
         "created": "2026-10-01T00:00:00Z", "since": "2026-10-01T00:00:00Z"},
        {"selector": "tern-new", "algorithm": "Ed25519Sha256", "phase": "Next",
         "created": "2026-11-01T00:00:00Z", "since": "2026-11-01T00:00:00Z"},
    ]);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("example-org-dkim".into()),
            namespace: Some("mail".into()),
            resource_version: Some("7".into()),
            annotations: Some(BTreeMap::from([(
                KEYS_ANNOTATION.to_owned(),
                state.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    let script = vec![
        Expect::new("GET", SECRET, serde_json::to_value(&secret).expect("json")),
        Expect::new("PUT", SECRET, json!(null)).body(|secret| {
            assert_eq!(
                secret["metadata"]["resourceVersion"], "7",
                "over what was read"
            );
            assert_eq!(
                phases(secret),
                [
                    ("tern-old".to_owned(), "Retiring".to_owned()),
                    ("tern-new".to_owned(), "Active".to_owned())
                ]
            );
            assert_eq!(secret["data"].as_object().map(|data| data.len()), Some(4));
        }),
        Expect::new("PATCH", format!("{DOMAIN}/status"), domain(false, true)).body(|patch| {
            let dkim = &patch["status"]["dkim"];
            assert_eq!(dkim["activeSelector"], "tern-new");
            assert_eq!(dkim["retiringSelectors"], json!(["tern-old"]));
            assert!(dkim["nextSelector"].is_null());
        }),
        // One event, the switch: Ready stayed True.
        Expect::new("POST", EVENTS, json!(null)).body(reason("DkimSigningSwitched")),
    ];
    run(domain(false, true), script, &setup).await;
    assert_eq!(
        signing(&setup.control).await,
        [
            ("tern-new".to_owned(), true),
            ("tern-old".to_owned(), false)
        ]
    );
}

#[tokio::test]
async fn delete_removes_the_keys_and_the_domain_then_the_finalizer() {
    let setup = setup().await;
    let spec = serde_json::from_value::<MailDomain>(domain(false, true))
        .expect("domain")
        .spec;
    setup
        .control
        .put_domain(Owner::Crd, &desired(&spec))
        .await
        .expect("the domain");
    key(&setup.control, "tern-old", true, &mut BTreeMap::new()).await;
    let script = vec![
        Expect::new("PATCH", DOMAIN, domain(true, true)).body(|patch| {
            assert!(patch.to_string().contains("remove"), "{patch}");
        }),
    ];
    run(domain(true, true), script, &setup).await;
    assert!(signing(&setup.control).await.is_empty());
    let domains: i64 =
        sqlx::query_scalar("SELECT count(*) FROM domains WHERE name = 'example.org'")
            .fetch_one(&setup.db.pool)
            .await
            .expect("count");
    assert_eq!(domains, 0);
}
