//! Scenario tests of the MailCertificate reconciler against a scripted Kubernetes API: the exact
//! calls for a certificate from a TLS Secret, for one from a cert-manager issuer that has not
//! issued yet, and for a delete. The database is real.

use std::collections::BTreeMap;

use http::StatusCode;
use k8s_openapi::ByteString;
use serde_json::json;
use tern_testkit::TestDatabase;
use tern_testkit::tls_files::TestCertificate;

use super::*;
use crate::mock_api::{self, Expect};

const CERTIFICATE: &str = "/apis/tern.dev/v1alpha1/namespaces/mail/mailcertificates/mx";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/mail/events";
const HOST: &str = "mx.example.org";

fn certificate(source: serde_json::Value, deleting: bool) -> serde_json::Value {
    let mut metadata = json!({
        "name": "mx", "namespace": "mail", "uid": "u-4", "generation": 1,
        "resourceVersion": "30", "finalizers": [FINALIZER],
    });
    if deleting {
        metadata["deletionTimestamp"] = json!("2026-12-07T12:00:00Z");
    }
    let mut spec = json!({"hostnames": [HOST]});
    spec.as_object_mut()
        .expect("spec")
        .extend(source.as_object().expect("a source").clone());
    json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "MailCertificate", "metadata": metadata,
        "spec": spec,
    })
}

async fn run(object: serde_json::Value, script: Vec<Expect>, db: &TestDatabase) {
    let (client, left) = mock_api::client(script);
    let context = Arc::new(Context {
        client: client.clone(),
        resync: Duration::from_secs(300),
        recorder: crate::events::recorder(client),
        control: PgControlStore::new(db.pool.clone(), None),
        processes: Processes::new(db.pool.clone()),
    });
    let object: MailCertificate = serde_json::from_value(object).expect("a MailCertificate");
    reconcile(Arc::new(object), context)
        .await
        .expect("reconciled");
    left.assert_done();
}

fn tls_secret(name: &str, certificate: &TestCertificate) -> serde_json::Value {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("mail".into()),
            resource_version: Some("5".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                "tls.crt".to_owned(),
                ByteString(certificate.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(certificate.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    };
    serde_json::to_value(secret).expect("json")
}

#[tokio::test]
async fn a_tls_secret_is_stored_and_its_facts_go_in_the_status() {
    let db = TestDatabase::create().await;
    let issued = TestCertificate::self_signed(&[HOST]);
    let fingerprint = leaf_fingerprint(&issued.cert_pem).expect("a fingerprint");
    let object = certificate(json!({"secretName": "mx-tls"}), false);
    let script = vec![
        Expect::new(
            "GET",
            "/api/v1/namespaces/mail/secrets/mx-tls",
            tls_secret("mx-tls", &issued),
        ),
        Expect::new("PATCH", format!("{CERTIFICATE}/status"), object.clone()).body(move |patch| {
            let status = &patch["status"];
            assert_eq!(status["conditions"][0]["status"], "True", "{status}");
            assert_eq!(status["fingerprint"], fingerprint.as_str());
            assert_eq!(status["secretVersion"], "5");
            assert!(status["notAfter"].is_string(), "{status}");
            assert!(!patch.to_string().contains("PRIVATE KEY"), "{patch}");
        }),
        Expect::new("POST", EVENTS, json!(null))
            .body(|event| assert_eq!(event["reason"], "Reconciled")),
    ];
    run(object, script, &db).await;
    let stored = PgControlStore::new(db.pool.clone(), None)
        .certificate("crd.mail.mx")
        .await
        .expect("the certificate");
    assert_eq!(stored.owner, Owner::Crd);
}

#[tokio::test]
async fn an_issuer_ref_applies_a_cert_manager_certificate_and_waits_for_its_secret() {
    let db = TestDatabase::create().await;
    let object = certificate(json!({"issuerRef": {"name": "tern-ca"}}), false);
    let pending = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "mx", "namespace": "mail"},
        "status": {"conditions": [{"type": "Ready", "status": "False",
                                   "message": "Issuing certificate as Secret does not exist"}]},
    });
    let not_found = Expect {
        status: StatusCode::NOT_FOUND,
        ..Expect::new(
            "GET",
            "/api/v1/namespaces/mail/secrets/mx-tls",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    };
    let script = vec![
        Expect::new(
            "PATCH",
            "/apis/cert-manager.io/v1/namespaces/mail/certificates/mx",
            pending,
        )
        .body(|applied| {
            assert_eq!(applied["spec"]["secretName"], "mx-tls");
            assert_eq!(applied["spec"]["dnsNames"], json!([HOST]));
            assert_eq!(
                applied["spec"]["issuerRef"],
                json!({"name": "tern-ca", "kind": "Issuer", "group": "cert-manager.io"})
            );
        }),
        not_found,
        Expect::new("PATCH", format!("{CERTIFICATE}/status"), object.clone()).body(|patch| {
            let ready = &patch["status"]["conditions"][0];
            assert_eq!(ready["status"], "False");
            assert_eq!(ready["reason"], "Issuing");
            let message = ready["message"].as_str().unwrap_or_default();
            assert!(message.contains("Secret does not exist"), "{message}");
        }),
        Expect::new("POST", EVENTS, json!(null)).body(|event| {
            assert_eq!(event["reason"], "Issuing");
            assert_eq!(event["type"], "Warning");
        }),
    ];
    run(object, script, &db).await;
    let stored = PgControlStore::new(db.pool.clone(), None)
        .certificate("crd.mail.mx")
        .await;
    assert!(matches!(stored, Err(ControlError::NotFound)), "{stored:?}");
}

#[tokio::test]
async fn delete_removes_the_certificate_then_the_finalizer() {
    let db = TestDatabase::create().await;
    let issued = TestCertificate::self_signed(&[HOST]);
    let control = PgControlStore::new(db.pool.clone(), None);
    control
        .add_certificate(
            Owner::Crd,
            &NewCertificate {
                name: "crd.mail.mx".into(),
                chain_pem: issued.cert_pem.clone(),
                key_pem: issued.key_pem.clone(),
            },
        )
        .await
        .expect("the certificate");
    let object = certificate(json!({"secretName": "mx-tls"}), true);
    let script = vec![
        Expect::new("PATCH", CERTIFICATE, object.clone()).body(|patch| {
            assert!(patch.to_string().contains("remove"), "{patch}");
        }),
    ];
    run(object, script, &db).await;
    assert!(matches!(
        control.certificate("crd.mail.mx").await,
        Err(ControlError::NotFound)
    ));
}
