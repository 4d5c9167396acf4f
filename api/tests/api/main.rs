//! The router called with `oneshot` against a real per-test PostgreSQL: who may call what, every
//! kind of bad input, pagination while rows arrive, the filters, and the queue actions, including
//! one that races a worker's lease.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tern_api::ApiState;
use tern_api::auth::{Scope, TokenStore};
use tern_common::control::heartbeat::Processes;
use tern_common::control::{ConfigRows, PgControlStore};
use tern_common::queue::{
    Finished, JobState, NewMessage, NewRecipient, PgJobStore, PgQueueStore, QueueActions,
    QueueInspector, QueueStore,
};
use tern_common::users::{LockoutPolicy, UserStore};
use tern_testkit::TestDatabase;
use tower::ServiceExt as _;

mod certificates;
mod dkim;
mod limits;
mod policy;
mod users;

const BOOTSTRAP: &str = "bootstrap-token-of-the-test";

struct Api {
    db: TestDatabase,
    router: Router,
    read: String,
    write: String,
    admin: String,
}

impl Api {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let tokens = TokenStore::new(db.pool.clone(), Some(BOOTSTRAP));
        let read = tokens
            .create("reader", &[Scope::Read])
            .await
            .expect("token");
        let write = tokens
            .create("writer", &[Scope::Write])
            .await
            .expect("token");
        let admin = tokens
            .create("admin", &[Scope::Admin])
            .await
            .expect("token");
        let state = ApiState {
            tokens,
            control: PgControlStore::new(db.pool.clone(), None),
            inspector: QueueInspector::new(db.pool.clone()),
            actions: QueueActions::new(db.pool.clone()),
            processes: Processes::new(db.pool.clone()),
            users: UserStore::new(db.pool.clone(), LockoutPolicy::default()),
            trace_url: Some("http://jaeger.test/trace/{trace_id}".into()),
            bus: None,
        };
        Self {
            router: tern_api::app(state),
            db,
            read,
            write,
            admin,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let problem = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/problem+json");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert!(
                problem,
                "{status}: an error is a problem document: {bytes:?}"
            );
        }
        (status, value)
    }

    async fn queue(&self, from: &str, recipients: &[&str]) -> NewMessage {
        let recipients = recipients.iter().map(|r| NewRecipient::new(r)).collect();
        let message = NewMessage::local(
            "client.test",
            from,
            recipients,
            format!(
                "Message-ID: <{}@test>\r\nSubject: x\r\n\r\nbody\r\n",
                uuid::Uuid::new_v4()
            )
            .into_bytes(),
        );
        PgQueueStore::new(self.db.pool.clone(), std::time::Duration::from_secs(10))
            .commit(&message)
            .await
            .expect("commit");
        message
    }

    async fn statuses(&self, id: tern_common::queue::QueueId) -> Vec<String> {
        sqlx::query_scalar("SELECT status FROM jobs WHERE message_id = $1 ORDER BY rcpt_index")
            .bind(id)
            .fetch_all(&self.db.pool)
            .await
            .expect("statuses")
    }
}

#[tokio::test]
async fn every_route_needs_a_token_with_its_scope() {
    let api = Api::start().await;
    let message = api.queue("a@origin.test", &["b@dest.test"]).await;
    let id = message.id.to_string();
    let routes: Vec<(Method, String, Scope, Option<Value>)> = vec![
        (Method::GET, "/v1/queue/summary".into(), Scope::Read, None),
        (Method::GET, "/v1/queue".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/queue/retry".into(),
            Scope::Write,
            Some(json!({})),
        ),
        (Method::GET, "/v1/messages".into(), Scope::Read, None),
        (Method::GET, format!("/v1/messages/{id}"), Scope::Read, None),
        (
            Method::GET,
            format!("/v1/messages/{id}/raw"),
            Scope::Admin,
            None,
        ),
        (
            Method::POST,
            format!("/v1/messages/{id}/retry"),
            Scope::Write,
            None,
        ),
        (Method::GET, "/v1/domains".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/domains".into(),
            Scope::Write,
            Some(json!({"name": "x.test", "kind": "local"})),
        ),
        (
            Method::PUT,
            "/v1/domains/y.test".into(),
            Scope::Write,
            Some(json!({"kind": "relay"})),
        ),
        (
            Method::DELETE,
            "/v1/domains/y.test".into(),
            Scope::Write,
            None,
        ),
        (Method::GET, "/v1/networks".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/networks".into(),
            Scope::Write,
            Some(json!({"network": "10.9.0.0/16"})),
        ),
        (Method::GET, "/v1/blocklist".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/blocklist".into(),
            Scope::Write,
            Some(json!({"kind": "ip", "value": "192.0.2.1", "action": "reject"})),
        ),
        (
            Method::GET,
            "/v1/destination-limits".into(),
            Scope::Read,
            None,
        ),
        (
            Method::PUT,
            "/v1/destination-limits/scope.test".into(),
            Scope::Write,
            Some(json!({"max_connections": 2})),
        ),
        (Method::GET, "/v1/suspensions".into(), Scope::Read, None),
        (
            Method::PUT,
            "/v1/suspensions/slow.test".into(),
            Scope::Write,
            Some(json!({"until": "2999-01-01T00:00:00Z"})),
        ),
        (Method::GET, "/v1/tokens".into(), Scope::Admin, None),
        (Method::GET, "/v1/cluster".into(), Scope::Read, None),
        (Method::GET, "/v1/users".into(), Scope::Read, None),
        (Method::GET, "/v1/certificates".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/certificates".into(),
            Scope::Write,
            Some(certificates::upload("scope-matrix", &["scope.tern.test"])),
        ),
        (Method::GET, "/v1/policy".into(), Scope::Read, None),
        (
            Method::PUT,
            "/v1/policy".into(),
            Scope::Write,
            Some(json!({"spf": "record"})),
        ),
        (Method::DELETE, "/v1/policy".into(), Scope::Write, None),
        (Method::GET, "/v1/dkim-keys".into(), Scope::Read, None),
        (
            Method::POST,
            "/v1/dkim-keys".into(),
            Scope::Write,
            Some(json!({"domain": "scope.test", "selector": "s1", "algorithm": "ed25519-sha256"})),
        ),
        (
            Method::PATCH,
            "/v1/dkim-keys/scope.test/s1".into(),
            Scope::Write,
            Some(json!({"signing": false})),
        ),
        (
            Method::DELETE,
            "/v1/dkim-keys/scope.test/s1".into(),
            Scope::Write,
            None,
        ),
        (
            Method::POST,
            "/v1/users".into(),
            Scope::Write,
            Some(json!({"login": "u@tern.test", "password": "a long enough password"})),
        ),
        (
            Method::POST,
            "/v1/tokens".into(),
            Scope::Admin,
            Some(json!({"name": "new", "scopes": ["read"]})),
        ),
        (
            Method::DELETE,
            format!("/v1/messages/{id}"),
            Scope::Write,
            None,
        ),
    ];
    for (method, uri, needed, body) in routes {
        let (status, problem) = api.call(method.clone(), &uri, None, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri}: {problem}"
        );
        let (status, _) = api
            .call(method.clone(), &uri, Some("tern_not-a-token"), body.clone())
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri} with a bad token"
        );
        for (token, scope) in [(&api.read, Scope::Read), (&api.write, Scope::Write)] {
            if scope < needed {
                let (status, problem) = api
                    .call(method.clone(), &uri, Some(token), body.clone())
                    .await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {uri} as {scope}: {problem}"
                );
            }
        }
        let (status, problem) = api.call(method.clone(), &uri, Some(&api.admin), body).await;
        assert!(
            status.is_success(),
            "{method} {uri} as admin: {status} {problem}"
        );
    }
    let (status, _) = api
        .call(Method::GET, "/v1/tokens", Some(BOOTSTRAP), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the bootstrap token is an admin token"
    );
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get("/v1/domains")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

/// A request, the status it must get, and the field its problem must name.
type BadInput = (
    Method,
    &'static str,
    Option<Value>,
    StatusCode,
    Option<&'static str>,
);

#[tokio::test]
async fn bad_input_gets_a_4xx_problem_naming_what_is_wrong() {
    let api = Api::start().await;
    let w = Some(api.write.as_str());
    let cases: Vec<BadInput> = vec![
        (
            Method::POST,
            "/v1/domains",
            Some(json!({"name": "not a domain", "kind": "local"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            Method::POST,
            "/v1/domains",
            Some(json!({"name": "a.test", "kind": "mailbox"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("kind"),
        ),
        (
            Method::POST,
            "/v1/domains",
            Some(json!({"name": "a.test", "kind": "local", "route": "smtp:[bad host]"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("route"),
        ),
        (
            Method::POST,
            "/v1/domains",
            Some(json!({"name": "a.test", "kind": "local", "colour": "blue"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("colour"),
        ),
        (
            Method::POST,
            "/v1/domains",
            Some(json!({"name": 7, "kind": "local"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("name"),
        ),
        (
            Method::POST,
            "/v1/networks",
            Some(json!({"network": "10.0.0.0/33"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("network"),
        ),
        (
            Method::POST,
            "/v1/blocklist",
            Some(json!({"kind": "ip", "value": "not-an-ip", "action": "reject"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("value"),
        ),
        (
            Method::POST,
            "/v1/blocklist",
            Some(json!({"kind": "ip", "value": "192.0.2.1", "action": "drop"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("action"),
        ),
        (
            Method::POST,
            "/v1/blocklist",
            Some(
                json!({"kind": "ip", "value": "192.0.2.1", "action": "reject", "expires_at": "2001-01-01T00:00:00Z"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("expires_at"),
        ),
        (
            Method::PUT,
            "/v1/suspensions/a.test",
            Some(json!({"until": "yesterday"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("until"),
        ),
        (
            Method::POST,
            "/v1/queue/retry",
            Some(json!({"status": "lost"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("status"),
        ),
        (
            Method::POST,
            "/v1/queue/explode",
            Some(json!({})),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            "/v1/queue?cursor=garbage",
            None,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::GET,
            "/v1/queue?limit=0",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("limit"),
        ),
        (
            Method::GET,
            "/v1/queue?limit=ten",
            None,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::GET,
            "/v1/messages/0198d1e2-0000-7000-8000-000000000000",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            "/v1/messages/not-a-queue-id",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/v1/blocklist/999999",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/v1/blocklist/abc",
            None,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::GET,
            "/v1/nothing-here",
            None,
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (method, uri, body, expected, field) in cases {
        let (status, problem) = api.call(method.clone(), uri, w, body.clone()).await;
        assert_eq!(status, expected, "{method} {uri} {body:?}: {problem}");
        assert_eq!(problem["status"], expected.as_u16(), "{problem}");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:tern:problem:"))
        );
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{method} {uri}: {problem}");
        }
    }
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&api.admin),
            Some(json!({"name": "x", "scopes": ["root"]})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("scopes[0]"))
    );
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/domains",
            w,
            Some(json!({"kind": "local"})),
        )
        .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("name")),
        "{problem}"
    );
    // Malformed JSON, a wrong content type, an oversize body.
    let raw = |body: &'static str, content_type: &str| {
        Request::post("/v1/domains")
            .header(header::AUTHORIZATION, format!("Bearer {}", api.write))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request")
    };
    assert_eq!(
        api.send(raw("{\"name\": ", "application/json")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.send(raw("name=x", "application/x-www-form-urlencoded"))
            .await
            .0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let huge = format!(
        "{{\"name\": \"{}\", \"kind\": \"local\"}}",
        "a".repeat(tern_api::MAX_BODY)
    );
    let request = Request::post("/v1/domains")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.write))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .expect("request");
    assert_eq!(api.send(request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn rows_owned_by_the_environment_or_the_operator_are_read_only() {
    let api = Api::start().await;
    let control = PgControlStore::new(api.db.pool.clone(), None);
    control
        .sync_config(&ConfigRows {
            local_domains: vec!["env.test".into()],
            trusted_networks: vec![],
        })
        .await
        .expect("sync");
    let (status, problem) = api
        .call(
            Method::PUT,
            "/v1/domains/env.test",
            Some(&api.write),
            Some(json!({"kind": "relay"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["owner"], "config");
    let (status, problem) = api
        .call(
            Method::DELETE,
            "/v1/domains/env.test",
            Some(&api.write),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("config"))
    );
    let (status, problem) = api
        .call(
            Method::POST,
            "/v1/domains",
            Some(&api.write),
            Some(json!({"name": "ENV.test.", "kind": "local"})),
        )
        .await;
    assert_eq!(
        (status, problem["owner"].clone()),
        (StatusCode::CONFLICT, json!("config"))
    );

    let (status, created) = api
        .call(
            Method::POST,
            "/v1/domains",
            Some(&api.write),
            Some(json!({"name": "Mine.Test", "kind": "local", "route": "lmtp:[10.0.0.5]:24"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created,
        json!({"name": "mine.test", "kind": "local", "route": "lmtp:[10.0.0.5]:24", "owner": "api"})
    );
    let (_, listed) = api
        .call(Method::GET, "/v1/domains", Some(&api.read), None)
        .await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["env.test", "mine.test"]);
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_rows_inserted_between_them_and_filters_apply() {
    let api = Api::start().await;
    let mut expected = Vec::new();
    for n in 0..25 {
        let domain = if n % 2 == 0 { "even.test" } else { "odd.test" };
        let m = api
            .queue(&format!("s{n}@origin.test"), &[&format!("r{n}@{domain}")])
            .await;
        expected.push(m.id.to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            None => "/v1/queue?limit=10".to_owned(),
            Some(c) => format!("/v1/queue?limit=10&cursor={c}"),
        };
        let (status, page) = api.call(Method::GET, &uri, Some(&api.read), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["queue_id"].as_str().expect("id").to_owned());
        }
        pages += 1;
        // Rows arriving between pages come after every row already listed.
        if pages == 1 {
            let m = api.queue("late@origin.test", &["late@even.test"]).await;
            expected.push(m.id.to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every row once, in order");

    let count = |uri: String| {
        let api = &api;
        async move {
            let (status, page) = api.call(Method::GET, &uri, Some(&api.read), None).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {page}");
            page["items"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(
        count("/v1/queue?domain=ODD.test&limit=500".into()).await,
        12
    );
    assert_eq!(count("/v1/queue?status=queued&limit=500".into()).await, 26);
    assert_eq!(count("/v1/queue?status=held".into()).await, 0);
    assert_eq!(count("/v1/queue?sender=S3@origin.test".into()).await, 1);
    assert_eq!(count("/v1/queue?recipient=r4@even.test".into()).await, 1);
    assert_eq!(
        count("/v1/queue?received_after=2999-01-01T00:00:00Z".into()).await,
        0
    );
    assert_eq!(
        count("/v1/queue?received_before=2999-01-01T00:00:00Z&limit=500".into()).await,
        26
    );

    let (_, summary) = api
        .call(Method::GET, "/v1/queue/summary", Some(&api.read), None)
        .await;
    assert_eq!(summary["by_status"]["queued"], 26);
    assert_eq!(summary["destinations"][0]["domain"], "even.test");
    assert_eq!(summary["destinations"][0]["queued"], 14);

    let (_, found) = api
        .call(
            Method::GET,
            "/v1/messages?sender=s7@origin.test",
            Some(&api.read),
            None,
        )
        .await;
    let found = found["items"].as_array().expect("items");
    assert_eq!(found.len(), 1);
    let message_id = found[0]["message_id"]
        .as_str()
        .expect("Message-ID")
        .to_owned();
    let (_, by_header) = api
        .call(
            Method::GET,
            &format!(
                "/v1/messages?message_id={}",
                message_id
                    .replace('@', "%40")
                    .replace('<', "%3C")
                    .replace('>', "%3E")
            ),
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(by_header["items"][0]["queue_id"], found[0]["queue_id"]);
}

#[tokio::test]
async fn actions_change_what_they_say_and_a_leased_job_is_taken_from_its_worker_safely() {
    let api = Api::start().await;
    let m = api
        .queue("a@origin.test", &["b@dest.test", "c@dest.test"])
        .await;
    let id = m.id.to_string();
    let jobs = PgJobStore::new(api.db.pool.clone());
    let claimed = jobs
        .claim("worker-1", std::time::Duration::from_secs(60), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);

    // Hold while a worker holds the lease: its finish must not overwrite the hold.
    let (status, changed) = api
        .call(
            Method::POST,
            &format!("/v1/messages/{id}/hold"),
            Some(&api.write),
            None,
        )
        .await;
    assert_eq!(
        (status, changed["changed"].clone()),
        (StatusCode::OK, json!(2))
    );
    let finished: Vec<Finished> = claimed
        .iter()
        .map(|job| Finished {
            job: job.key(),
            state: JobState::Delivered,
            status: "2.0.0",
            reply: "250 ok",
            mx_host: None,
            remote_ip: None,
            tls_version: None,
            tls_cipher: None,
            dsn: None,
        })
        .collect();
    assert_eq!(jobs.finish("worker-1", &finished).await.expect("finish"), 0);
    assert_eq!(api.statuses(m.id).await, ["held", "held"]);
    assert!(
        jobs.claim("worker-2", std::time::Duration::from_secs(60), 10)
            .await
            .expect("claim")
            .is_empty(),
        "held jobs are claimed by nobody"
    );

    let (_, changed) = api
        .call(
            Method::POST,
            &format!("/v1/messages/{id}/release"),
            Some(&api.write),
            None,
        )
        .await;
    assert_eq!(changed["changed"], 2);
    assert_eq!(api.statuses(m.id).await, ["queued", "queued"]);

    // Retry makes a deferred job due now.
    sqlx::query("UPDATE jobs SET status = 'deferred', attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE message_id = $1")
        .bind(m.id)
        .execute(&api.db.pool)
        .await
        .expect("defer");
    let (_, changed) = api
        .call(
            Method::POST,
            "/v1/queue/retry",
            Some(&api.write),
            Some(json!({"domain": "dest.test"})),
        )
        .await;
    assert_eq!(changed["changed"], 2);
    let due: bool = sqlx::query_scalar(
        "SELECT bool_and(next_attempt_at <= now()) FROM jobs WHERE message_id = $1",
    )
    .bind(m.id)
    .fetch_one(&api.db.pool)
    .await
    .expect("due");
    assert!(due);

    // Bounce ends them with a report owed to the sender.
    let (_, changed) = api
        .call(
            Method::POST,
            &format!("/v1/messages/{id}/bounce"),
            Some(&api.write),
            Some(json!({"reason": "spam run"})),
        )
        .await;
    assert_eq!(changed["changed"], 2);
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT status, dsn_pending, last_reply FROM jobs WHERE message_id = $1 ORDER BY rcpt_index",
    )
    .bind(m.id)
    .fetch_all(&api.db.pool)
    .await
    .expect("rows");
    for (status, dsn, reply) in rows {
        assert_eq!(
            (status.as_str(), dsn.as_deref()),
            ("bounced", Some("failed"))
        );
        assert!(reply.is_some_and(|r| r.contains("spam run")));
    }
    let (_, detail) = api
        .call(
            Method::GET,
            &format!("/v1/messages/{id}"),
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(detail["recipients"][0]["status"], "bounced");
    assert_eq!(detail["headers"][1][0], "Subject");

    // Delete removes another message whole, its attempts too, without a report.
    let other = api.queue("x@origin.test", &["y@dest.test"]).await;
    sqlx::query(
        "INSERT INTO attempts (job_id, message_id, worker, outcome, status, reply)
         SELECT id, message_id, 'test', 'deferred', '4.0.0', 'an earlier try' FROM jobs
          WHERE message_id = $1",
    )
    .bind(other.id)
    .execute(&api.db.pool)
    .await
    .expect("an attempt");
    let (_, changed) = api
        .call(
            Method::DELETE,
            &format!("/v1/messages/{}", other.id),
            Some(&api.write),
            None,
        )
        .await;
    assert_eq!(changed["changed"], 1);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts WHERE message_id = $1")
        .bind(other.id)
        .fetch_one(&api.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "the deleted message's attempts went with it");
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/messages/{}", other.id),
            Some(&api.read),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let raw = Request::get(format!("/v1/messages/{id}/raw"))
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .body(Body::empty())
        .expect("request");
    let response = api.router.clone().oneshot(raw).await.expect("response");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "message/rfc822");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(bytes.ends_with(b"\r\n\r\nbody\r\n"));
}

#[test]
fn the_committed_openapi_document_is_current() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap_or_default();
    assert!(
        committed.trim() == tern_api::openapi().trim(),
        "docs/openapi.json is stale: run `make generate`"
    );
}
