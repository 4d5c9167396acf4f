//! A scripted Kubernetes API for the reconcilers' scenario tests: each request must be the next
//! one expected (method and path), its body is handed to the expectation's check, and its
//! answer is the expectation's JSON. What a reconciler asks of Kubernetes is then exactly the
//! list of expectations, in order; the database behind it stays the real one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use kube::client::Body;

/// One request the API expects, and how it answers.
pub struct Expect {
    pub method: &'static str,
    pub path: String,
    pub check: Box<dyn Fn(&serde_json::Value) + Send>,
    pub status: StatusCode,
    pub answer: serde_json::Value,
}

impl Expect {
    pub fn new(method: &'static str, path: impl Into<String>, answer: serde_json::Value) -> Self {
        Self {
            method,
            path: path.into(),
            check: Box::new(|_| {}),
            status: StatusCode::OK,
            answer,
        }
    }

    /// Checks the request's JSON body too.
    pub fn body(mut self, check: impl Fn(&serde_json::Value) + Send + 'static) -> Self {
        self.check = Box::new(check);
        self
    }
}

/// What the script still expects.
pub struct Remaining(Arc<Mutex<VecDeque<Expect>>>);

impl Remaining {
    /// Fails the test, naming them, when expected requests were not made.
    pub fn assert_done(&self) {
        let left: Vec<String> = self
            .0
            .lock()
            .expect("script")
            .iter()
            .map(|expect| format!("{} {}", expect.method, expect.path))
            .collect();
        assert!(left.is_empty(), "not asked: {left:?}");
    }
}

/// A client whose every request goes to the script, and what the script has left.
pub fn client(script: Vec<Expect>) -> (kube::Client, Remaining) {
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let expected = Arc::clone(&script);
    let service = tower::service_fn(move |request: Request<Body>| {
        let expected = Arc::clone(&expected);
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|body| body.to_bytes())
                .unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let next = expected.lock().expect("script").pop_front();
            let Some(next) = next else {
                panic!("unexpected request: {} {}", parts.method, parts.uri);
            };
            assert_eq!(
                (parts.method.as_str(), parts.uri.path()),
                (next.method, next.path.as_str()),
                "the next request"
            );
            (next.check)(&json);
            // A null answer echoes the request (what a create answers).
            let answer = if next.answer.is_null() {
                &json
            } else {
                &next.answer
            };
            let answer = serde_json::to_vec(answer).expect("json");
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(next.status)
                    .header("content-type", "application/json")
                    .body(Body::from(answer))
                    .expect("response"),
            )
        }
    });
    (kube::Client::new(service, "default"), Remaining(script))
}
