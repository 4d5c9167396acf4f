//! The router: every `/v1` resource, the OpenAPI document, and the fallback problem.

mod certificates;
mod cluster;
mod control;
mod dkim;
mod limits;
mod policy;
mod problems;
mod queue;
mod tokens;
mod troubleshoot;
mod users;

use axum::Router;
use axum::routing::{delete, get, post};
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::ApiState;
use problems::ProblemResponses;

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY: usize = 256 * 1024;

pub fn v1() -> Router<ApiState> {
    Router::new()
        .route("/v1/queue/summary", get(queue::summary))
        .route("/v1/queue", get(queue::list))
        .route("/v1/queue/{action}", post(queue::bulk))
        .route("/v1/messages", get(queue::search))
        .route(
            "/v1/messages/{queue_id}",
            get(queue::detail).delete(queue::delete_message),
        )
        .route("/v1/messages/{queue_id}/raw", get(queue::raw))
        .route(
            "/v1/messages/{queue_id}/{action}",
            post(queue::message_action),
        )
        .route(
            "/v1/domains",
            get(control::list_domains).post(control::create_domain),
        )
        .route(
            "/v1/domains/{name}",
            get(control::get_domain)
                .put(control::put_domain)
                .delete(control::delete_domain),
        )
        .route(
            "/v1/networks",
            get(control::list_networks).post(control::create_network),
        )
        .route("/v1/networks/{id}", delete(control::delete_network))
        .route(
            "/v1/blocklist",
            get(control::list_blocklist).post(control::create_block),
        )
        .route("/v1/blocklist/{id}", delete(control::delete_block))
        .route("/v1/destination-limits", get(limits::list))
        .route(
            "/v1/destination-limits/{destination}",
            axum::routing::put(limits::put).delete(limits::delete),
        )
        .route("/v1/suspensions", get(control::list_suspensions))
        .route(
            "/v1/suspensions/{domain}",
            axum::routing::put(control::put_suspension).delete(control::delete_suspension),
        )
        .route(
            "/v1/certificates",
            get(certificates::list).post(certificates::create),
        )
        .route(
            "/v1/certificates/{name}",
            get(certificates::get)
                .put(certificates::rotate)
                .delete(certificates::delete),
        )
        .route("/v1/dkim-keys", get(dkim::list).post(dkim::create))
        .route(
            "/v1/dkim-keys/{domain}/{selector}",
            get(dkim::get).patch(dkim::change).delete(dkim::delete),
        )
        .route(
            "/v1/policy",
            get(policy::get).put(policy::put).delete(policy::delete),
        )
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{login}", get(users::get).delete(users::delete))
        .route(
            "/v1/users/{login}/password",
            axum::routing::put(users::password),
        )
        .route(
            "/v1/users/{login}/senders",
            axum::routing::put(users::set_senders),
        )
        .route("/v1/users/{login}/{action}", post(users::switch))
        .route("/v1/troubleshoot/policy", post(troubleshoot::policy))
        .route("/v1/troubleshoot/smtp", get(troubleshoot::smtp))
        .route("/v1/cluster", get(cluster::cluster))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{name}", delete(tokens::revoke))
        .route("/openapi.json", get(openapi_json))
        .fallback(|| async { ApiError::NotFound("resource") })
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tern admin API", description = "The live control plane and the queue of a Tern cluster. Errors are RFC 9457 problem documents."),
    modifiers(&BearerAuth, &ProblemResponses),
    paths(
        queue::summary, queue::list, queue::bulk, queue::search, queue::detail, queue::raw,
        queue::message_action, queue::delete_message,
        control::list_domains, control::get_domain, control::create_domain, control::put_domain,
        control::delete_domain, control::list_networks, control::create_network,
        control::delete_network, control::list_blocklist, control::create_block,
        control::delete_block, control::list_suspensions, control::put_suspension,
        control::delete_suspension,
        limits::list, limits::put, limits::delete,
        tokens::list, tokens::create, tokens::revoke, cluster::cluster,
        users::list, users::get, users::create, users::password, users::set_senders,
        users::switch, users::delete,
        certificates::list, certificates::get, certificates::create, certificates::rotate,
        certificates::delete,
        dkim::list, dkim::get, dkim::create, dkim::change, dkim::delete,
        policy::get, policy::put, policy::delete,
        troubleshoot::policy, troubleshoot::smtp,
    ),
    components(schemas(crate::error::Problem))
)]
pub struct ApiDoc;
