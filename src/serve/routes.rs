//! The HTTP surface: the router, `/v1/adapt` (body under its deadline and limit,
//! decision, metrics, readiness windows), `/metrics` (0.0.4 or OpenMetrics),
//! `/healthz` and `/readyz`, and the JSON error bodies.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth::{guard_adapt, guard_metrics};
use super::body::{MAX_BODY_BYTES, parse_body};
use super::conn::Conn;
use super::{App, metrics, openmetrics};
use crate::orchestrator::metrics::{Observation, render_registry};
use crate::orchestrator::{DecideOptions, Request as DecideRequest, Scratch, decide};

/// Route names as they appear in metric labels.
pub(super) const ROUTE_ADAPT: &str = "/v1/adapt";
/// See [`ROUTE_ADAPT`].
pub(super) const ROUTE_METRICS: &str = "/metrics";

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(bytes),
    )
        .into_response()
}

pub(super) fn error_response(
    status: StatusCode,
    error: &str,
    field: Option<&str>,
    message: &str,
) -> Response {
    let mut body = json!({"error": error, "message": message});
    if let Some(f) = field {
        body["field"] = Value::String(f.to_string());
    }
    json_response(status, &body)
}

/// The router of one server instance.
pub fn router(app: Arc<App>) -> Router {
    let mut adapt = post(adapt_handler).layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let mut metrics = get(metrics_handler);
    // The guards run before the body is read; without an access map there is none.
    if app.access.is_some() {
        adapt = adapt.route_layer(middleware::from_fn_with_state(app.clone(), guard_adapt));
        metrics = metrics.route_layer(middleware::from_fn_with_state(app.clone(), guard_metrics));
    }
    Router::new()
        .route(ROUTE_ADAPT, adapt)
        .route(ROUTE_METRICS, metrics)
        .route(
            "/healthz",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz_handler))
        .with_state(app)
        // Outermost: from the end of a request's head to its answer the connection's
        // header/idle deadline is suspended (the work is the server's, not the client's).
        .layer(middleware::from_fn(hold_deadline))
}

/// Suspends the connection's socket deadline while the request is handled.
async fn hold_deadline(req: Request, next: Next) -> Response {
    let _busy = req
        .extensions()
        .get::<ConnectInfo<Conn>>()
        .map(|c| c.0.busy());
    next.run(req).await
}

pub(super) fn count(app: &App, route: &str, r: &Response) {
    app.metrics.count_response(route, r.status().as_u16());
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

async fn adapt_handler(State(app): State<Arc<App>>, req: Request) -> Response {
    // The socket deadline is suspended (`hold_deadline`); the body has its own.
    let limit = Duration::from_millis(app.cfg.body_timeout_ms);
    let body = tokio::time::timeout(limit, Bytes::from_request(req, &())).await;
    let r = match body {
        Ok(body) => adapt(&app, body),
        Err(_) => {
            let mut r = error_response(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                None,
                &format!(
                    "the body did not arrive within {} (--body-timeout)",
                    crate::policy::time::format_span(app.cfg.body_timeout_ms as i64)
                ),
            );
            // The rest of the body may still be on its way: do not reuse the connection.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
    };
    count(&app, ROUTE_ADAPT, &r);
    r
}

/// Answers one `/v1/adapt` request whose body has been read (or refused).
///
/// Client errors (4xx) are kept out of the readiness windows: they say nothing about
/// the server's health, so `success_ratio` is 2xx over 2xx + 5xx (docs/serve.md).
fn adapt(app: &App, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rej) => {
            let status = rej.status();
            if status.is_server_error() {
                app.windows.record(false, None);
            }
            return if status == StatusCode::PAYLOAD_TOO_LARGE {
                error_response(
                    status,
                    "too_large",
                    None,
                    &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                error_response(status, "bad_body", None, &rej.body_text())
            };
        }
    };
    let rec = match parse_body(&body) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let loaded = app.policy.get();
    let options = app.cfg.options;
    let (out, latency) = SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        decide(
            &loaded.engine,
            DecideOptions {
                enforce: options,
                dry_run: false,
            },
            DecideRequest {
                ts_ms: rec.ts_ms,
                request_id: &rec.request_id,
                context: &rec.context,
            },
            &mut s,
        )
    });
    let counters = loaded.counters.get_or_init(|| {
        metrics::PolicyCounters::new(&app.metrics.adapt, loaded.baseline_id(), loaded.policy_id())
    });
    counters.observe(&Observation {
        options,
        shadow_policy: loaded.baseline_id(),
        enforced_policy: loaded.policy_id(),
        shadow: out.shadow.verdict,
        enforced: out.enforced.verdict,
        applied: out.enforced_applied,
        drift: out.drift,
        latency_seconds: latency,
    });
    let mut buf = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut buf, &out).map(|()| buf) {
        Ok(mut bytes) => {
            app.windows.record(true, Some(out.drift));
            bytes.push(b'\n');
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Bytes::from(bytes),
            )
                .into_response()
        }
        Err(e) => {
            // Answered 500: counts against success, not as a drift observation.
            app.windows.record(false, None);
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                None,
                &format!("encoding the answer: {e}"),
            )
        }
    }
}

async fn metrics_handler(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    // Counted before rendering, so a scrape sees itself, as the rbac counters do.
    app.metrics.count_response(ROUTE_METRICS, 200);
    metrics::export_ratios(&app.metrics, &app.windows.ratios());
    let om = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(openmetrics::wants_openmetrics);
    if om {
        let text = openmetrics::encode(&app.metrics.registry.gather());
        ([(header::CONTENT_TYPE, openmetrics::CONTENT_TYPE)], text).into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render_registry(&app.metrics.registry),
        )
            .into_response()
    }
}

async fn readyz_handler(State(app): State<Arc<App>>) -> Response {
    let (status, body) = app.readiness();
    json_response(status, &body)
}
