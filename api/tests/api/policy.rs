//! `/v1/policy`: the policy document is read, replaced and removed; every bad value answers 422
//! naming its field, and the operator's document is read-only here.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::Api;

#[tokio::test]
async fn the_document_is_replaced_whole_and_removed() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let (status, empty) = api
        .call(Method::GET, "/v1/policy", Some(&api.read), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["owner"], json!(null));
    assert_eq!(empty["document"]["spf"], json!(null));

    let document = json!({
        "spf": "reject",
        "dmarc": "quarantine",
        "dnsbl_sites": ["zen.example*2", "wl.example*-1"],
        "dnsbl_threshold": 2,
        "rate_limit_user": "100/1h"
    });
    let (status, stored) = api.call(Method::PUT, "/v1/policy", w, Some(document)).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["owner"], "api");
    assert_eq!(stored["document"]["spf"], "reject");
    assert_eq!(stored["document"]["dnsbl_sites"][1], "wl.example*-1");

    // Replaced whole: what the new document leaves out goes back to the pods' settings.
    let (_, stored) = api
        .call(
            Method::PUT,
            "/v1/policy",
            w,
            Some(json!({"greylist": true})),
        )
        .await;
    assert_eq!(stored["document"]["spf"], json!(null));
    assert_eq!(stored["document"]["greylist"], true);
    let (_, read) = api
        .call(Method::GET, "/v1/policy", Some(&api.read), None)
        .await;
    assert_eq!(read["document"], stored["document"]);

    sqlx::query("UPDATE policy SET owner = 'crd'")
        .execute(&api.db.pool)
        .await
        .expect("hand to the operator");
    let (status, problem) = api
        .call(Method::PUT, "/v1/policy", w, Some(json!({})))
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("crd"))
    );
    sqlx::query("UPDATE policy SET owner = 'api'")
        .execute(&api.db.pool)
        .await
        .expect("take back");
    let (status, _) = api.call(Method::DELETE, "/v1/policy", w, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.call(Method::DELETE, "/v1/policy", w, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_value_names_its_field() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let cases = [
        (json!({"spf": "sometimes"}), "spf"),
        (json!({"dnsbl_sites": ["not a zone!"]}), "dnsbl_sites"),
        (json!({"dnsbl_threshold": 0}), "dnsbl_threshold"),
        (
            json!({"greylist_delay_seconds": 0}),
            "greylist_delay_seconds",
        ),
        (
            json!({"greylist_delay_seconds": -5}),
            "greylist_delay_seconds",
        ),
        (json!({"rate_limit_client": "often"}), "rate_limit_client"),
        (json!({"colour": "blue"}), "colour"),
    ];
    for (body, field) in cases {
        let (status, problem) = api
            .call(Method::PUT, "/v1/policy", w, Some(body.clone()))
            .await;
        assert_eq!(
            (status, problem["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field)),
            "{body}: {problem}"
        );
    }
}

#[tokio::test]
async fn troubleshooting_needs_a_token_and_an_ingress_to_ask() {
    let api = Api::start().await;
    let question =
        json!({"client": "192.0.2.1", "helo": "h.example", "sender": "", "recipients": []});
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/troubleshoot/policy",
            None,
            Some(question.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // This router has no NATS to ask a pod through: 503, not an answer made up.
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/troubleshoot/policy",
            Some(&api.read),
            Some(question),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/troubleshoot/policy",
            Some(&api.read),
            Some(json!({"client": "not an address", "helo": "h", "sender": "", "recipients": []})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("client")),
        "{problem}"
    );

    let watch = "/v1/troubleshoot/smtp?client=192.0.2.0/24";
    let (status, _) = api.call(Method::GET, watch, Some(&api.write), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "transcripts need the admin scope"
    );
    let (status, _) = api.call(Method::GET, watch, Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, problem) = api
        .call(
            Method::GET,
            "/v1/troubleshoot/smtp?client=300.1.1.1",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("client")),
        "{problem}"
    );
}
