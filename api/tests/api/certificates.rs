//! `/v1/certificates`: uploaded, listed with what the leaf says, rotated and deleted; the key
//! never comes back, and every fault names its field.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tern_testkit::tls_files::TestCertificate;

use super::Api;

/// An upload body for a fresh self-signed certificate.
pub(super) fn upload(name: &str, hosts: &[&str]) -> Value {
    let made = TestCertificate::self_signed(hosts);
    json!({"name": name, "chain_pem": made.cert_pem, "key_pem": made.key_pem})
}

#[tokio::test]
async fn certificates_are_checked_and_their_keys_never_come_back() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let body = upload("mx", &["mx.tern.test", "*.mx.tern.test"]);
    let key = body["key_pem"].as_str().expect("key").to_owned();
    let (status, created) = api
        .call(Method::POST, "/v1/certificates", w, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["hostnames"],
        json!(["mx.tern.test", "*.mx.tern.test"])
    );
    assert_eq!(created["source"], "database");
    assert_eq!(created["owner"], "api");
    assert!(created["subject"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(created["not_after"].as_str().is_some());

    let (status, problem) = api
        .call(Method::POST, "/v1/certificates", w, Some(body))
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("api"))
    );

    let (_, listed) = api
        .call(Method::GET, "/v1/certificates", Some(&api.read), None)
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let key_line = key.lines().nth(1).expect("a key line");
    assert!(!listed.to_string().contains(key_line), "no key in {listed}");
    assert!(!listed.to_string().contains("key_pem"), "{listed}");

    let rotated = upload("ignored", &["mail.tern.test"]);
    let (status, shown) = api
        .call(
            Method::PUT,
            "/v1/certificates/mx",
            w,
            Some(json!({"chain_pem": rotated["chain_pem"], "key_pem": rotated["key_pem"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["hostnames"], json!(["mail.tern.test"]));
    let (_, shown) = api
        .call(Method::GET, "/v1/certificates/mx", Some(&api.read), None)
        .await;
    assert_eq!(shown["hostnames"], json!(["mail.tern.test"]));

    sqlx::query("UPDATE certificates SET owner = 'crd' WHERE name = 'mx'")
        .execute(&api.db.pool)
        .await
        .expect("hand to the operator");
    let (status, problem) = api
        .call(Method::DELETE, "/v1/certificates/mx", w, None)
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("crd"))
    );
    sqlx::query("UPDATE certificates SET owner = 'api' WHERE name = 'mx'")
        .execute(&api.db.pool)
        .await
        .expect("take back");
    let (status, _) = api
        .call(Method::DELETE, "/v1/certificates/mx", w, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let (status, problem) = api
            .call(method.clone(), "/v1/certificates/mx", w, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {problem}");
    }
}

#[tokio::test]
async fn a_certificate_the_ingress_could_not_serve_is_refused_naming_the_field() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let good = TestCertificate::self_signed(&["mx.tern.test"]);
    let other = TestCertificate::self_signed(&["other.tern.test"]);
    let expired = TestCertificate::expired(&["old.tern.test"]);
    let no_dns = TestCertificate::self_signed(&["192.0.2.7"]);
    let cases = [
        (
            "bad name",
            good.cert_pem.as_str(),
            good.key_pem.as_str(),
            "name",
        ),
        ("x", "not pem at all", good.key_pem.as_str(), "chain_pem"),
        ("x", good.cert_pem.as_str(), "not a key", "key_pem"),
        (
            "x",
            good.cert_pem.as_str(),
            other.key_pem.as_str(),
            "key_pem",
        ),
        (
            "x",
            expired.cert_pem.as_str(),
            expired.key_pem.as_str(),
            "chain_pem",
        ),
        (
            "x",
            no_dns.cert_pem.as_str(),
            no_dns.key_pem.as_str(),
            "chain_pem",
        ),
    ];
    for (name, chain, key, field) in cases {
        let (status, problem) = api
            .call(
                Method::POST,
                "/v1/certificates",
                w,
                Some(json!({"name": name, "chain_pem": chain, "key_pem": key})),
            )
            .await;
        assert_eq!(
            (status, problem["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{problem}"
        );
    }
    let (status, problem) = api
        .call(
            Method::PUT,
            "/v1/certificates/absent",
            w,
            Some(json!({"chain_pem": good.cert_pem, "key_pem": good.key_pem})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/certificates",
            w,
            Some(json!({"name": "x", "chain_pem": good.cert_pem, "key_pem": good.key_pem, "subject": "x"})),
        )
        .await;
    assert!(
        status.is_client_error(),
        "unknown fields are refused: {status}"
    );
    let (_, listed) = api
        .call(Method::GET, "/v1/certificates", Some(&api.read), None)
        .await;
    assert_eq!(listed, json!([]), "nothing refused was stored");
}
