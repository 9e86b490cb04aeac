//! Bearer-token access control on the protected routes (`adapt:run` for
//! `/v1/adapt`, `metrics:read` for `/metrics`), checked before a body is read;
//! 401/403 answers and the `rbac_*` counters. The map itself is `rbac`'s.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::App;
use super::rbac::{Decision, Scope};
use super::response::{ROUTE_ADAPT, ROUTE_METRICS, count, error_response};

/// Checks the bearer token against the access map (when there is one).
fn authorize(app: &App, headers: &HeaderMap, scope: Scope, route: &str) -> Option<Response> {
    let (slot, rm) = app.access.as_ref()?;
    rm.route_matches.with_label_values(&[route]).inc();
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match slot.get().check(auth, scope) {
        Decision::Allowed => {
            rm.allowed.with_label_values(&[route]).inc();
            None
        }
        Decision::Unauthenticated => {
            rm.forbidden
                .with_label_values(&[route, "unauthenticated"])
                .inc();
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                None,
                "a valid bearer token is required (Authorization: Bearer TOKEN)",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"proof\""),
            );
            Some(r)
        }
        Decision::MissingScope => {
            rm.forbidden
                .with_label_values(&[route, "missing_scope"])
                .inc();
            let mut r = error_response(
                StatusCode::FORBIDDEN,
                "forbidden",
                None,
                &format!("the token lacks the scope '{}'", scope.as_str()),
            );
            let v = format!(
                "Bearer realm=\"proof\", error=\"insufficient_scope\", scope=\"{}\"",
                scope.as_str()
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            Some(r)
        }
    }
}

pub(super) async fn guard_adapt(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match authorize(&app, req.headers(), Scope::AdaptRun, ROUTE_ADAPT) {
        Some(denied) => {
            count(&app, ROUTE_ADAPT, &denied);
            denied
        }
        None => next.run(req).await,
    }
}

pub(super) async fn guard_metrics(
    State(app): State<Arc<App>>,
    req: Request,
    next: Next,
) -> Response {
    match authorize(&app, req.headers(), Scope::MetricsRead, ROUTE_METRICS) {
        Some(denied) => {
            count(&app, ROUTE_METRICS, &denied);
            denied
        }
        None => next.run(req).await,
    }
}
