//! `proof serve`: the shadow/enforced engine of `proof adapt` behind HTTP, with
//! Prometheus metrics, readiness windows, hot reload and bearer-token access control.
//!
//! Owns the HTTP surface (routes, status codes, bodies), the reload loop and the
//! process lifecycle (bind, signals, graceful shutdown). Decisions come from
//! `orchestrator::facade::decide` so a record gets the same answer from `adapt`, `replay` and
//! `serve`; metric families come from `orchestrator::metrics` plus `serve::metrics`.
//! Never logs request bodies, request ids, tokens or context values.

pub mod conn;
pub mod metrics;
pub mod openmetrics;
pub mod rbac;
pub mod state;

use std::cell::RefCell;
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

use crate::error::ProofError;
use crate::orchestrator::metrics::{Observation, render_registry};
use crate::orchestrator::{DecideOptions, Request as DecideRequest, Scratch, decide};
use crate::replay::record::{self, Reason};
use conn::{Accepted, Conn, Handoff};
pub use metrics::{Ratios, RbacMetrics, ServeMetrics, Windows};
use rbac::{AccessMap, Decision, Scope};
pub use state::ServeConfig;
use state::{Loaded, Reload, Swappable};

/// Largest `/v1/adapt` body accepted, in bytes (1 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Route names as they appear in metric labels.
const ROUTE_ADAPT: &str = "/v1/adapt";
const ROUTE_METRICS: &str = "/metrics";

/// Shared state of one server instance.
pub struct App {
    cfg: ServeConfig,
    policy: Swappable<Loaded>,
    access: Option<(Swappable<AccessMap>, RbacMetrics)>,
    metrics: ServeMetrics,
    windows: Windows,
}

impl App {
    /// Loads everything the configuration names; errors are exit code 2.
    pub fn new(cfg: ServeConfig) -> Result<Arc<App>, ProofError> {
        let loaded = cfg.load_policy()?;
        let metrics = ServeMetrics::new().map_err(metrics_err)?;
        loaded.export_info(&metrics);
        metrics
            .adapt
            .rollout_percent
            .set(f64::from(cfg.options.rollout_percent.get()));
        let access = match cfg.load_access()? {
            Some(map) => {
                let rm = RbacMetrics::register(&metrics.registry).map_err(metrics_err)?;
                rm.set_etag(&map.etag);
                Some((Swappable::new(map, state::access_fingerprint(&cfg)), rm))
            }
            None => None,
        };
        let fp = loaded.fingerprint;
        Ok(Arc::new(App {
            windows: Windows::new(cfg.window_scale),
            policy: Swappable::new(loaded, fp),
            access,
            metrics,
            cfg,
        }))
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &ServeMetrics {
        &self.metrics
    }

    /// One reload check of the policy files and the access map (blocking I/O).
    pub fn reload_tick(&self) {
        match state::reload_policy(&self.cfg, &self.policy, &self.metrics) {
            Reload::Unchanged => {}
            Reload::Swapped => {
                let p = self.policy.get();
                eprintln!("proof serve: reloaded policy {}", p.describe());
            }
            Reload::Refused(e) => {
                let p = self.policy.get();
                eprintln!(
                    "proof serve: reload refused, still serving {}: {e}",
                    p.describe()
                );
            }
        }
        if let Some((slot, rm)) = &self.access {
            match state::reload_access(&self.cfg, slot, rm) {
                Reload::Unchanged => {}
                Reload::Swapped => eprintln!(
                    "proof serve: reloaded access map ({} tokens, etag {})",
                    slot.get().len(),
                    slot.get().etag
                ),
                Reload::Refused(e) => {
                    eprintln!("proof serve: access map reload refused, previous map kept: {e}")
                }
            }
        }
    }

    /// The readiness answer: status code and JSON body. Without `--confidence` the gate
    /// compares the 5-minute point ratio with `drift_max`; with it, the window's
    /// one-sided Wilson lower bound (SPEC §8's breach rule, so `/readyz` and replay's
    /// gate judge a window alike).
    pub fn readiness(&self) -> (StatusCode, Value) {
        let (r, counts) = self.windows.snapshot();
        let max = self.cfg.options.drift_max_ratio;
        let bounds = match self.cfg.confidence {
            Some(c) if counts.evaluated > 0 => Some(c.wilson(counts.drifting, counts.evaluated)),
            _ => None,
        };
        let breach = self.cfg.readiness_gate
            && match (self.cfg.confidence, bounds) {
                (None, _) => r.drift_ratio_5m > max,
                (Some(_), Some((lower, _))) => lower > max,
                (Some(_), None) => false,
            };
        let mut body = json!({
            "status": if breach { "not_ready" } else { "ready" },
            "success_ratio_1m": r.success_ratio_1m,
            "success_ratio_5m": r.success_ratio_5m,
            "drift_ratio_1m": r.drift_ratio_1m,
            "drift_ratio_5m": r.drift_ratio_5m,
            "drift_max": max,
            "readiness_gate": self.cfg.readiness_gate,
        });
        if let Some(c) = self.cfg.confidence {
            body["confidence"] = json!(c.level());
            body["requests_5m"] = json!(counts.evaluated);
            body["drift_events_5m"] = json!(counts.drifting);
            body["drift_lower_5m"] = json!(bounds.map(|b| b.0));
            body["drift_upper_5m"] = json!(bounds.map(|b| b.1));
        }
        if breach {
            let reason = match (self.cfg.confidence, bounds) {
                (Some(c), Some((lower, _))) => format!(
                    "drift_lower_5m {lower} > drift_max {max} at confidence {} ({} of {} requests drifting)",
                    c.level(),
                    counts.drifting,
                    counts.evaluated
                ),
                _ => format!("drift_ratio_5m {} > drift_max {max}", r.drift_ratio_5m),
            };
            body["reason"] = Value::String(reason);
            (StatusCode::SERVICE_UNAVAILABLE, body)
        } else {
            (StatusCode::OK, body)
        }
    }
}

fn metrics_err(e: prometheus::Error) -> ProofError {
    ProofError::Usage(format!("registering metrics: {e}"))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(bytes),
    )
        .into_response()
}

fn error_response(status: StatusCode, error: &str, field: Option<&str>, message: &str) -> Response {
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

fn count(app: &App, route: &str, r: &Response) {
    app.metrics.count_response(route, r.status().as_u16());
}

async fn guard_adapt(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match authorize(&app, req.headers(), Scope::AdaptRun, ROUTE_ADAPT) {
        Some(denied) => {
            count(&app, ROUTE_ADAPT, &denied);
            denied
        }
        None => next.run(req).await,
    }
}

async fn guard_metrics(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match authorize(&app, req.headers(), Scope::MetricsRead, ROUTE_METRICS) {
        Some(denied) => {
            count(&app, ROUTE_METRICS, &denied);
            denied
        }
        None => next.run(req).await,
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Why a body is not a record: the SPEC §4 reason, the field (if one) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// Rejection reason (`malformed`, `bad_ts`, …).
    pub error: &'static str,
    /// The offending field, when one is to blame.
    pub field: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl BodyError {
    fn response(&self) -> Response {
        error_response(
            StatusCode::BAD_REQUEST,
            self.error,
            self.field,
            &self.message,
        )
    }
}

impl From<record::Rejection> for BodyError {
    fn from(r: record::Rejection) -> Self {
        BodyError {
            error: r.reason.as_str(),
            field: r.field,
            message: r.message,
        }
    }
}

/// Parses and checks a body with replay's reader (`record::read_document`, SPEC §4),
/// so the same bytes get the same outcome; the one difference is that `ts` may be
/// absent or null, meaning now. The body is parsed once (twice on an error, to explain).
pub fn parse_body(body: &[u8]) -> Result<record::Record, BodyError> {
    let explain = |r: Reason| BodyError::from(record::explain(body, r));
    let doc = record::read_document(body, crate::policy::time::now_ms(), false).map_err(explain)?;
    let request_id = doc
        .request_id
        .ok_or_else(|| explain(Reason::MissingRequestId))?;
    Ok(record::Record {
        ts_ms: doc.ts_ms,
        request_id,
        policy_id: doc.policy_id,
        context: doc.context,
    })
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

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The bound on open connections, shared by the acceptor and the serving threads.
struct Limits {
    open: Arc<tokio::sync::Semaphore>,
    max: usize,
    /// The acceptor holds a permit while it waits for the next connection; that
    /// permit is no open connection.
    acceptor_waits: AtomicBool,
    /// Set once the shutdown deadline has been reported.
    deadline_reported: AtomicBool,
}

impl Limits {
    fn open_now(&self) -> usize {
        let held = self.max.saturating_sub(self.open.available_permits());
        held.saturating_sub(usize::from(self.acceptor_waits.load(Ordering::Relaxed)))
    }
}

/// Runs the server until SIGINT or SIGTERM; the result is the exit code.
pub fn run(cfg: ServeConfig) -> anyhow::Result<i32> {
    if cfg.rbac.is_none() && !cfg.listen.ip().is_loopback() {
        return Err(ProofError::Usage(format!(
            "refusing to listen on {} without --rbac: anyone who reaches that address could \
             run the engine and read its metrics. Pass --rbac FILE (bearer tokens with scopes, \
             see docs/serve.md) or listen on a loopback address such as 127.0.0.1:9464",
            cfg.listen
        ))
        .into());
    }
    let app = App::new(cfg)?;
    let listener = std::net::TcpListener::bind(app.cfg.listen)
        .map_err(|e| ProofError::Usage(format!("cannot listen on {}: {e}", app.cfg.listen)))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let threads = app.cfg.threads.max(1);
    let max = app
        .cfg
        .max_connections
        .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
    let limits = Arc::new(Limits {
        open: Arc::new(tokio::sync::Semaphore::new(max)),
        max,
        acceptor_waits: AtomicBool::new(false),
        deadline_reported: AtomicBool::new(false),
    });
    let header_timeout = Duration::from_millis(app.cfg.header_timeout_ms);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // One current-thread runtime per serving thread; the acceptor deals connections
    // out in turn, and a connection stays on its thread, so a request never crosses
    // threads (no work-stealing wake-ups, which dominate on small machines).
    let mut handoffs = Vec::new();
    let mut shards = Vec::new();
    for i in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        handoffs.push(tx);
        let h = Handoff {
            rx,
            local: bound,
            timeout: header_timeout,
        };
        if i == 0 {
            shards.push(Err(h));
            continue;
        }
        let (app, stop, limits) = (app.clone(), stop_rx.clone(), limits.clone());
        shards.push(Ok(std::thread::Builder::new()
            .name(format!("proof-serve-{i}"))
            .spawn(move || serve_shard(app, h, stop, limits))?));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let mut first = None;
    let mut others = Vec::new();
    for s in shards {
        match s {
            Err(h) => first = Some(h),
            Ok(t) => others.push(t),
        }
    }
    let main = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let loaded = app.policy.get();
        eprintln!(
            "proof serve: policy {}, selector {}, enforce {}, rollout {} %, access control {}, {threads} threads",
            loaded.describe(),
            app.cfg.engine.selector.as_str(),
            app.cfg.options.enforce,
            app.cfg.options.rollout_percent,
            if app.access.is_some() { "on" } else { "off" }
        );
        eprintln!("proof serve: listening on {bound}");
        drop(loaded);
        let reloader = tokio::spawn(reload_loop(app.clone()));
        tokio::spawn(accept_loop(listener, handoffs, stop_rx.clone(), limits.clone()));
        let (l, span) = (limits.clone(), app.cfg.shutdown_timeout_ms);
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!(
                "proof serve: stopping: no new connections, up to {} for {} open ones",
                crate::policy::time::format_span(span as i64),
                l.open_now()
            );
            let _ = stop_tx.send(true);
        });
        let served = match first {
            Some(h) => serve_on(app, h, stop_rx, limits).await,
            None => Ok(()),
        };
        reloader.abort();
        served
    });
    // Dropping a runtime drops its tasks: connections still open past the shutdown
    // deadline are closed here.
    drop(runtime);
    for t in others {
        match t.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("a serving thread panicked"),
        }
    }
    main?;
    eprintln!("proof serve: shut down");
    Ok(0)
}

/// Accepts connections while fewer than `--max-connections` are open and deals them
/// out to the serving threads in turn; at the bound, new connections wait in the
/// listen backlog.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    shards: Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    limits: Arc<Limits>,
) {
    let mut next = 0usize;
    // When the bound was last reported: at most once a minute.
    let mut reported: Option<tokio::time::Instant> = None;
    loop {
        let permit = match limits.open.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if reported.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    reported = Some(tokio::time::Instant::now());
                    eprintln!(
                        "proof serve: {} connections open (--max-connections): new ones wait",
                        limits.max
                    );
                }
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    p = limits.open.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                }
            }
        };
        limits.acceptor_waits.store(true, Ordering::Relaxed);
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => None,
            r = listener.accept() => Some(r),
        };
        limits.acceptor_waits.store(false, Ordering::Relaxed);
        let Some(r) = accepted else { return };
        match r {
            Ok((s, _)) => {
                // Answers are one small write each: do not let Nagle hold them back.
                let _ = s.set_nodelay(true);
                if let Ok(stream) = s.into_std() {
                    let _ = shards[next % shards.len()].send(Accepted { stream, permit });
                    next = next.wrapping_add(1);
                }
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("proof serve: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Resolves once shutdown has been asked for.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it before yielding.
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

/// Serves the connections handed to this thread until `stop` turns true and its open
/// requests have finished, or the shutdown deadline has passed.
async fn serve_on(
    app: Arc<App>,
    handoff: Handoff,
    stop: tokio::sync::watch::Receiver<bool>,
    limits: Arc<Limits>,
) -> anyhow::Result<()> {
    let grace = Duration::from_millis(app.cfg.shutdown_timeout_ms);
    let (mut s1, mut s2) = (stop.clone(), stop);
    let service = router(app).into_make_service_with_connect_info::<Conn>();
    let serve = axum::serve(handoff, service)
        .with_graceful_shutdown(async move { stopped(&mut s1).await })
        .into_future();
    tokio::select! {
        r = serve => r?,
        () = async move {
            stopped(&mut s2).await;
            tokio::time::sleep(grace).await;
        } => {
            if !limits.deadline_reported.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "proof serve: shutdown deadline passed (--shutdown-timeout {}): closing {} open connections",
                    crate::policy::time::format_span(grace.as_millis() as i64),
                    limits.open_now()
                );
            }
        }
    }
    Ok(())
}

fn serve_shard(
    app: Arc<App>,
    handoff: Handoff,
    stop: tokio::sync::watch::Receiver<bool>,
    limits: Arc<Limits>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?
        .block_on(serve_on(app, handoff, stop, limits))
}

async fn reload_loop(app: Arc<App>) {
    let period = Duration::from_millis(app.cfg.reload_interval_ms.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let a = app.clone();
        // File reads and IR compilation are blocking work: keep them off the workers.
        let _ = tokio::task::spawn_blocking(move || a.reload_tick()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        // The record object is level 1 and the context level 2.
        let inner = depth - 2;
        format!(
            r#"{{"ts":1,"request_id":"r","context":{{"x":{}{}}}}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
        .into_bytes()
    }

    #[test]
    fn depth_limit_is_named_and_shared_with_replay() {
        let ok = nested(crate::error::JSON_MAX_DEPTH - 1);
        assert!(record::parse_line(&ok).is_ok());
        assert!(parse_body(&ok).is_ok());
        let deep = nested(crate::error::JSON_MAX_DEPTH);
        assert_eq!(record::parse_line(&deep), Err(Reason::Malformed));
        let e = parse_body(&deep).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", None));
        assert!(
            e.message.contains("recursion limit is 128 levels"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 1 column"), "{}", e.message);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_body(br#"{"request_id":"a","context":{},"context":{"x":1}}"#).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", Some("context")));
        assert!(
            e.message
                .starts_with("duplicate key 'context': a record names each field once")
        );
        let e = parse_body(b"{\"request_id\":\"a\",\"k\":\"\xff\",\"context\":{}}").unwrap_err();
        assert_eq!(e.message, "invalid UTF-8 at byte 23");
        let e = parse_body(b"[]").unwrap_err();
        assert!(e.message.starts_with("the body must be a JSON object"));
        let e = parse_body(br#"{"request_id":"a","context":{},"policy_id":1}"#).unwrap_err();
        assert_eq!((e.error, e.field), ("malformed", Some("policy_id")));
        let e = parse_body(br#"{"request_id":"a"}"#).unwrap_err();
        assert_eq!(
            (e.error, e.field, e.message.as_str()),
            (
                "missing_context",
                Some("context"),
                "field 'context': expected a JSON object"
            )
        );
        let e = parse_body(br#"{"request_id":"a","context":{}"#).unwrap_err();
        assert!(
            e.message.starts_with("invalid JSON at line 1 column"),
            "{}",
            e.message
        );
    }

    #[test]
    fn absent_or_null_ts_is_now() {
        let before = crate::policy::time::now_ms();
        for body in [
            &br#"{"request_id":"a","context":{"x":1,"x":2}}"#[..],
            br#"{"ts":null,"request_id":"a","context":{}}"#,
        ] {
            let r = parse_body(body).unwrap();
            assert!(r.ts_ms >= before && r.ts_ms <= crate::policy::time::now_ms());
        }
        let r = parse_body(br#"{"ts":5,"request_id":"a","context":{}}"#).unwrap();
        assert_eq!(r.ts_ms, 5);
    }
}
