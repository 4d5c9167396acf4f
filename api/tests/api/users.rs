//! `/v1/users`: managed through the API, their passwords never shown.

use axum::http::{Method, StatusCode};
use serde_json::json;
use tern_common::users::{LockoutPolicy, UserStore};

use super::Api;

#[tokio::test]
async fn users_are_managed_without_their_passwords_ever_coming_back() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/users",
            w,
            Some(json!({"login": "Alice@Tern.test", "password": "correct horse battery", "senders": ["@tern.test"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["login"], "alice@tern.test");
    assert_eq!(created["senders"], json!(["@tern.test"]));
    assert!(
        !created.to_string().contains("horse"),
        "no password in {created}"
    );
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/users",
            w,
            Some(json!({"login": "alice@tern.test", "password": "another long one"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/users",
            w,
            Some(json!({"login": "b@tern.test", "password": "short"})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("password"))
    );
    let (status, problem) = api
        .call(
            Method::PUT,
            "/v1/users/alice@tern.test/senders",
            w,
            Some(json!({"senders": ["not an address"]})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("senders"))
    );

    let (status, _) = api
        .call(
            Method::PUT,
            "/v1/users/alice@tern.test/password",
            w,
            Some(json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let users = UserStore::new(api.db.pool.clone(), LockoutPolicy::default());
    let login = users
        .authenticate(
            "alice@tern.test",
            "a brand new password",
            "192.0.2.1".parse().expect("ip"),
        )
        .await
        .expect("authenticate");
    assert!(matches!(
        login,
        tern_common::users::AuthOutcome::Authenticated(_)
    ));
    let (status, _) = api
        .call(Method::POST, "/v1/users/alice@tern.test/disable", w, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, shown) = api
        .call(
            Method::GET,
            "/v1/users/alice@tern.test",
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(shown["disabled"], true);

    // The operator's users are read-only here.
    sqlx::query("UPDATE users SET owner = 'crd' WHERE login = 'alice@tern.test'")
        .execute(&api.db.pool)
        .await
        .expect("hand to the operator");
    let (status, problem) = api
        .call(Method::DELETE, "/v1/users/alice@tern.test", w, None)
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("crd"))
    );
    let (status, _) = api
        .call(Method::DELETE, "/v1/users/nobody@tern.test", w, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
