//! The process lifecycle of `proof serve`: the loopback rule, binding, one
//! single-threaded event loop per serving thread, the acceptor under
//! `--max-connections`, SIGINT/SIGTERM and the graceful shutdown under
//! `--shutdown-timeout`.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::conn::{Accepted, Conn, Handoff};
use super::reload::reload_loop;
use super::routes::router;
use super::{App, ServeConfig};
use crate::error::ProofError;

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
        crate::say!(
            "proof serve: policy {}, selector {}, enforce {}, rollout {} %, access control {}, {threads} threads",
            loaded.describe(),
            app.cfg.engine.selector.as_str(),
            app.cfg.options.enforce,
            app.cfg.options.rollout_percent,
            if app.access.is_some() { "on" } else { "off" }
        );
        crate::say!("proof serve: listening on {bound}");
        drop(loaded);
        let reloader = tokio::spawn(reload_loop(app.clone()));
        tokio::spawn(accept_loop(listener, handoffs, stop_rx.clone(), limits.clone()));
        let (l, a, span) = (limits.clone(), app.clone(), app.cfg.shutdown_timeout_ms);
        tokio::spawn(async move {
            shutdown_signal().await;
            crate::say!(
                "proof serve: stopping: no new connections, up to {} for {}",
                crate::policy::time::format_span(span as i64),
                open(&l, &a)
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
    // Shutting a runtime down drops its tasks: connections still open past the
    // shutdown deadline are closed here. In the background: an evaluation still
    // running in the pool is not waited for (dropping the runtime would join it), and
    // ends with the process.
    runtime.shutdown_background();
    for t in others {
        match t.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("a serving thread panicked"),
        }
    }
    main?;
    crate::say!("proof serve: shut down");
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
                    crate::say!(
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
                crate::say!("proof serve: accept failed: {e}");
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
    let service = router(app.clone()).into_make_service_with_connect_info::<Conn>();
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
                crate::say!(
                    "proof serve: shutdown deadline passed (--shutdown-timeout {}): closing {}",
                    crate::policy::time::format_span(grace.as_millis() as i64),
                    open(&limits, &app)
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let r = rt.block_on(serve_on(app, handoff, stop, limits));
    // As for the main runtime: never join an evaluation past the deadline.
    rt.shutdown_background();
    r
}

/// "N open connections (M requests in flight)", for the shutdown messages.
fn open(limits: &Limits, app: &App) -> String {
    let (n, m) = (limits.open_now(), app.in_flight());
    format!(
        "{n} open connection{} ({m} request{} in flight)",
        if n == 1 { "" } else { "s" },
        if m == 1 { "" } else { "s" }
    )
}
