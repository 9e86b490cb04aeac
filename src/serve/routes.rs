//! The HTTP surface: the router, `/v1/adapt` (body under its deadline and limit,
//! decision, metrics, readiness windows), `/metrics` (0.0.4 or OpenMetrics),
//! `/healthz` and `/readyz`, and the JSON error bodies.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
use serde_json::json;

use super::auth::{guard_adapt, guard_metrics};
use super::body::{MAX_BODY_BYTES, parse_body};
use super::conn::Conn;
use super::response::{ROUTE_ADAPT, ROUTE_METRICS, count, error_response, json_response};
use super::{App, metrics, openmetrics};
use crate::orchestrator::metrics::{Observation, render_registry};
use crate::orchestrator::{DecideOptions, Request as DecideRequest, Scratch, decide};

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
        .with_state(app.clone())
        // Outermost: from the end of a request's head to its answer the connection's
        // header/idle deadline is suspended (the work is the server's, not the client's).
        .layer(middleware::from_fn_with_state(app, hold_deadline))
}

/// Suspends the connection's socket deadline while the request is handled, and
/// counts it as in flight (for the shutdown messages).
async fn hold_deadline(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let _busy = req
        .extensions()
        .get::<ConnectInfo<Conn>>()
        .map(|c| c.0.busy());
    let _in_flight = InFlight::enter(&app);
    next.run(req).await
}

/// One request being handled; see [`App::in_flight`].
struct InFlight(Arc<App>);

impl InFlight {
    fn enter(app: &Arc<App>) -> InFlight {
        app.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(app.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

async fn adapt_handler(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = adapt_request(&app, req).await;
    count(&app, ROUTE_ADAPT, &r);
    r
}

/// Bodies up to this size are parsed and evaluated on the serving thread: at the
/// sizes live callers send (load.sh's records are ~490 bytes) a thread hop would cost
/// more than the work. Larger ones go to the evaluation pool, so a 1 MiB adversarial
/// body never holds an event loop (its `/healthz`, its other connections, the shutdown
/// deadline).
pub const INLINE_BODY_BYTES: usize = 16 << 10;

/// Reads the body under `--body-timeout` and the size limit, then decides it.
async fn adapt_request(app: &Arc<App>, req: Request) -> Response {
    // An announced length over the limit is refused before any body byte is awaited
    // (it would otherwise sit out the body timeout and get 408).
    if let Some(n) = announced_length(req.headers())
        && n > MAX_BODY_BYTES as u64
    {
        let mut r = too_large();
        // The body may be on its way: do not read it, do not reuse the connection.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    // The socket deadline is suspended (`hold_deadline`); the body has its own.
    let limit = Duration::from_millis(app.cfg.body_timeout_ms);
    let body = match tokio::time::timeout(limit, Bytes::from_request(req, &())).await {
        Ok(Ok(b)) => b,
        Ok(Err(rej)) => return refused(app, rej),
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
            return r;
        }
    };
    if body.len() <= INLINE_BODY_BYTES {
        return adapt(app, &body);
    }
    // At most --threads evaluations run in the pool at once; the others wait here
    // without holding their event loop.
    let Ok(_permit) = app.eval_slots.acquire().await else {
        return internal(app, "the evaluation pool is closed");
    };
    let a = app.clone();
    match tokio::task::spawn_blocking(move || adapt(&a, &body)).await {
        Ok(r) => r,
        Err(e) => internal(app, &format!("evaluation failed: {e}")),
    }
}

/// The `Content-Length` a request announces, if it is a valid one.
fn announced_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        None,
        &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// A 500: counts against success, not as a drift observation.
fn internal(app: &App, message: &str) -> Response {
    app.windows.record(false, None);
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", None, message)
}

/// The answer to a body axum refused to read (too large when sent chunked, a broken
/// transfer).
fn refused(app: &App, rej: BytesRejection) -> Response {
    let status = rej.status();
    if status.is_server_error() {
        app.windows.record(false, None);
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        error_response(status, "bad_body", None, &rej.body_text())
    }
}

/// Answers one `/v1/adapt` request whose body has been read: parse, decide, count.
///
/// Client errors (4xx) are kept out of the readiness windows: they say nothing about
/// the server's health, so `success_ratio` is 2xx over 2xx + 5xx (docs/serve.md).
fn adapt(app: &App, body: &[u8]) -> Response {
    let rec = match parse_body(body) {
        Ok(r) => r,
        Err(e) => return e.response(),
    };
    let loaded = app.policy.get();
    let options = app.cfg.options;
    let mut key_buf = String::new();
    let bucket_key = app
        .cfg
        .bucket_key
        .as_ref()
        .and_then(|k| crate::engine::key::key_text(k.walk(&rec.context)?, &mut key_buf));
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
                bucket_key,
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
        Err(e) => internal(app, &format!("encoding the answer: {e}")),
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
