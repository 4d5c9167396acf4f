//! `/v1/destination-limits`: set, listed, read by the pods' snapshot, removed; a bad value
//! answers 422 naming its field, and the operator's rows are read-only here.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tern_common::control::PgControlStore;

use super::Api;

#[tokio::test]
async fn a_destination_limit_is_set_listed_seen_by_the_pods_and_removed() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let (status, stored) = api
        .call(
            Method::PUT,
            "/v1/destination-limits/Google.COM.",
            w,
            Some(json!({"max_connections": 10, "max_messages_per_minute": 600})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(
        stored,
        json!({"destination": "google.com", "max_connections": 10,
               "max_messages_per_minute": 600, "owner": "api"})
    );
    // Unset fields go back to the workers' defaults.
    let (_, stored) = api
        .call(
            Method::PUT,
            "/v1/destination-limits/google.com",
            w,
            Some(json!({"max_connections": 4})),
        )
        .await;
    assert_eq!(stored["max_messages_per_minute"], json!(null));
    let (status, listed) = api
        .call(Method::GET, "/v1/destination-limits", Some(&api.read), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed, json!([stored]));

    // What a worker's snapshot answers for Gmail's MX hosts.
    let plane = PgControlStore::new(api.db.pool.clone(), None)
        .load()
        .await
        .expect("load");
    let gmail = [
        "gmail-smtp-in.l.google.com".to_owned(),
        "alt1.gmail-smtp-in.l.google.com".to_owned(),
    ];
    assert_eq!(
        plane
            .destination_limit(&gmail)
            .and_then(|l| l.max_connections),
        Some(4)
    );

    sqlx::query("UPDATE destination_limits SET owner = 'crd'")
        .execute(&api.db.pool)
        .await
        .expect("hand to the operator");
    let (status, problem) = api
        .call(Method::DELETE, "/v1/destination-limits/google.com", w, None)
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("crd"))
    );
    sqlx::query("UPDATE destination_limits SET owner = 'api'")
        .execute(&api.db.pool)
        .await
        .expect("back");
    let (status, _) = api
        .call(Method::DELETE, "/v1/destination-limits/google.com", w, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(Method::DELETE, "/v1/destination-limits/google.com", w, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_limits_answer_422_naming_the_field() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    for (path, body, field) in [
        (
            "/v1/destination-limits/a.test",
            json!({"max_connections": 0}),
            "max_connections",
        ),
        (
            "/v1/destination-limits/a.test",
            json!({"max_messages_per_minute": 0}),
            "max_messages_per_minute",
        ),
        (
            "/v1/destination-limits/not%20a%20host",
            json!({}),
            "destination",
        ),
    ] {
        let (status, problem) = api.call(Method::PUT, path, w, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {problem}"
        );
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (status, _) = api
        .call(
            Method::PUT,
            "/v1/destination-limits/a.test",
            w,
            Some(json!({"max_connections": -1})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
}
