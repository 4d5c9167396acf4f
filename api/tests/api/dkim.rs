//! `/v1/dkim-keys`: Tern makes the key pair, answers with the DNS record that publishes it (which
//! openssl, reading the stored private key, agrees with), never returns the private key, and
//! hands the pods only the keys set to sign.

use std::process::Command;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use tern_common::control::PgControlStore;

use super::Api;

/// The public key openssl derives from the stored private key, as SubjectPublicKeyInfo DER.
fn public_key_of(private_der: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("tern-dkim-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("key.der");
    std::fs::write(&path, private_der).expect("write the key");
    let output = Command::new("openssl")
        .args([
            "pkey", "-inform", "DER", "-pubout", "-outform", "DER", "-in",
        ])
        .arg(&path)
        .output()
        .expect("run openssl");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn p_tag(txt: &str) -> Vec<u8> {
    let p = txt
        .split(';')
        .find_map(|tag| tag.trim().strip_prefix("p="))
        .expect("a p= tag");
    base64::engine::general_purpose::STANDARD
        .decode(p)
        .expect("base64")
}

async fn stored_private_key(api: &Api, domain: &str, selector: &str) -> Vec<u8> {
    sqlx::query_scalar("SELECT private_key FROM dkim_keys WHERE domain = $1 AND selector = $2")
        .bind(domain)
        .bind(selector)
        .fetch_one(&api.db.pool)
        .await
        .expect("the stored key")
}

#[tokio::test]
async fn keys_are_made_here_and_published_by_the_record_they_answer_with() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let (status, rsa) = api
        .call(
            Method::POST,
            "/v1/dkim-keys",
            w,
            Some(json!({"domain": "Example.ORG", "selector": "s2026"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rsa}");
    assert_eq!(rsa["algorithm"], "rsa-sha256");
    assert_eq!(rsa["signing"], true);
    assert_eq!(rsa["dns_name"], "s2026._domainkey.example.org");
    let txt = rsa["dns_txt"].as_str().expect("txt");
    assert!(txt.starts_with("v=DKIM1; k=rsa; p="), "{txt}");
    let private = stored_private_key(&api, "example.org", "s2026").await;
    assert_eq!(p_tag(txt), public_key_of(&private));

    let (status, ed) = api
        .call(
            Method::POST,
            "/v1/dkim-keys",
            w,
            Some(json!({"domain": "example.org", "selector": "ed", "algorithm": "ed25519-sha256", "signing": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ed}");
    let txt = ed["dns_txt"].as_str().expect("txt");
    assert!(txt.starts_with("v=DKIM1; k=ed25519; p="), "{txt}");
    let private = stored_private_key(&api, "example.org", "ed").await;
    // RFC 8463: the record holds the bare 32-octet key, the tail of what openssl gives.
    let spki = public_key_of(&private);
    assert_eq!(p_tag(txt), spki[spki.len() - 32..]);

    // The private key never comes back, in any listing.
    let (_, listed) = api
        .call(
            Method::GET,
            "/v1/dkim-keys?domain=example.org",
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&private);
    assert!(!listed.to_string().contains(&b64[..40]), "{listed}");
    assert!(!listed.to_string().contains("private"), "{listed}");

    // Only keys set to sign reach the pods; switching one on puts it there.
    let control = PgControlStore::new(api.db.pool.clone(), None);
    let plane = control.load().await.expect("snapshot");
    let selectors = |plane: &tern_common::control::ControlPlane| {
        plane
            .dkim_keys("example.org")
            .iter()
            .map(|key| key.selector.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(selectors(&plane), ["s2026"]);
    let (status, changed) = api
        .call(
            Method::PATCH,
            "/v1/dkim-keys/example.org/ed",
            w,
            Some(json!({"signing": true})),
        )
        .await;
    assert_eq!(
        (status, changed["signing"].clone()),
        (StatusCode::OK, json!(true))
    );
    let later = control.load().await.expect("snapshot");
    assert!(later.revision > plane.revision);
    assert_eq!(selectors(&later), ["ed", "s2026"]);

    // A selector in use; the operator's keys are read-only here.
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/dkim-keys",
            w,
            Some(json!({"domain": "example.org", "selector": "s2026"})),
        )
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("api"))
    );
    sqlx::query("UPDATE dkim_keys SET owner = 'crd' WHERE selector = 'ed'")
        .execute(&api.db.pool)
        .await
        .expect("hand to the operator");
    for (method, body) in [
        (Method::PATCH, Some(json!({"signing": false}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) = api
            .call(method.clone(), "/v1/dkim-keys/example.org/ed", w, body)
            .await;
        assert_eq!(
            (status, problem["owner"].clone()),
            (StatusCode::CONFLICT, json!("crd")),
            "{method}"
        );
    }

    let (status, _) = api
        .call(Method::DELETE, "/v1/dkim-keys/example.org/s2026", w, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [Method::GET, Method::DELETE] {
        let (status, problem) = api
            .call(method.clone(), "/v1/dkim-keys/example.org/s2026", w, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {problem}");
    }
}

#[tokio::test]
async fn a_bad_key_request_names_its_field() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let cases: [(Value, &str); 5] = [
        (
            json!({"domain": "example.org", "selector": "a_b"}),
            "selector",
        ),
        (json!({"domain": "example.org", "selector": ""}), "selector"),
        (json!({"domain": "not a domain", "selector": "s"}), "domain"),
        (
            json!({"domain": "example.org", "selector": "s", "algorithm": "rsa-sha1"}),
            "algorithm",
        ),
        (
            json!({"domain": "example.org", "selector": "s", "private_key": "x"}),
            "private_key",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = api
            .call(Method::POST, "/v1/dkim-keys", w, Some(body.clone()))
            .await;
        assert_eq!(
            (status, problem["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{body}: {problem}"
        );
    }
    let (status, _) = api
        .call(
            Method::GET,
            "/v1/dkim-keys?domain=-bad-",
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
