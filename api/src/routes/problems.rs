//! The error side of the OpenAPI document, written once for every operation rather than in
//! each handler's annotation: every error is an RFC 9457 problem (`application/problem+json`),
//! and every operation lists the errors the router can give it, so a client generated from the
//! document (or Schemathesis checking it) knows every status it may see.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Adds the shared problem responses and gives every error response the problem media type.
pub struct ProblemResponses;

/// What the router may answer any operation, besides what the handler documents.
const ANY: &[(&str, &str)] = &[
    ("400", "malformed query, path or cursor"),
    ("401", "no bearer token, or an unknown one"),
    ("403", "the token lacks the scope"),
    (
        "422",
        "a parameter or field is unusable; the problem names it",
    ),
    (
        "500",
        "internal error; the problem carries a correlation id that is logged",
    ),
    ("503", "the database is unavailable"),
];
/// Also for an operation with a request body.
const WITH_BODY: &[(&str, &str)] = &[
    ("400", "the body is not JSON"),
    ("413", "the body is larger than the limit"),
    ("415", "the body is not application/json"),
];
/// Also for an operation with a path parameter.
const WITH_PATH: &[(&str, &str)] = &[("404", "no such object")];

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn complete(operation: &mut Operation) {
    let has_path = operation.parameters.iter().flatten().any(|parameter| {
        matches!(parameter, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
    });
    let mut shared: Vec<(&str, &str)> = ANY.to_vec();
    if operation.request_body.is_some() {
        shared.extend_from_slice(WITH_BODY);
    }
    if has_path {
        shared.extend_from_slice(WITH_PATH);
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem(description)));
    }
    for (status, response) in responses.iter_mut() {
        if !status.starts_with(['4', '5']) {
            continue;
        }
        if let RefOr::T(response) = response {
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_owned(), content);
            }
            if response.description.is_empty() {
                response.description = "a problem".to_owned();
            }
        }
    }
}

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                complete(operation);
            }
        }
    }
}
