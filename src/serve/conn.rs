//! Connections: the bound on how many are open, the deadline a connection has to
//! send its request headers (and to take an answer), and the hand-off from the
//! acceptor to the serving threads.
//!
//! axum's `serve` runs hyper without a timer, so hyper's own `header_read_timeout`
//! never fires. The deadline lives in the socket wrapper instead: it starts when the
//! server first waits on a read after the connection opened or after it last wrote
//! (the previous answer), and reads past it fail with `TimedOut`, which makes hyper
//! drop the connection. That covers a slow or partial request head (slowloris) and
//! an idle keep-alive connection alike. A write that makes no progress for as long
//! fails the same way. From the end of a request's head to its answer the deadline
//! is suspended ([`Conn::busy`], held by a router-wide middleware): the handler's work
//! is not the client's delay, and `/v1/adapt` reads its body under its own deadline
//! (408).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// A connection accepted by the acceptor, with its place under `--max-connections`.
pub struct Accepted {
    /// The socket, not yet registered with any event loop.
    pub stream: std::net::TcpStream,
    /// Released when the connection is dropped.
    pub permit: OwnedSemaphorePermit,
}

/// State a connection shares with the requests it carries.
#[derive(Debug, Default)]
struct Shared {
    /// A request is being handled: the socket deadline waits.
    busy: AtomicBool,
}

/// Per-connection handle given to handlers (as axum connect info).
#[derive(Debug, Clone)]
pub struct Conn(Arc<Shared>);

impl Conn {
    /// Suspends the socket deadline until the guard drops (a request is being
    /// handled); the next wait after it starts a fresh deadline.
    pub fn busy(&self) -> Busy {
        self.0.busy.store(true, Ordering::Relaxed);
        Busy(self.0.clone())
    }
}

/// See [`Conn::busy`].
pub struct Busy(Arc<Shared>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, Handoff>> for Conn {
    fn connect_info(s: IncomingStream<'_, Handoff>) -> Self {
        Conn(s.io().shared.clone())
    }
}

/// A TCP stream with an idle/header deadline and a connection permit.
pub struct GuardedStream {
    inner: TcpStream,
    timeout: Duration,
    /// When the current wait must end; `None` until the server waits.
    deadline: Option<Instant>,
    /// Fires at or before `deadline` (reset lazily, so a busy connection does not
    /// touch the timer wheel on every request).
    sleep: Option<Pin<Box<Sleep>>>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl GuardedStream {
    fn new(inner: TcpStream, timeout: Duration, permit: OwnedSemaphorePermit) -> Self {
        GuardedStream {
            inner,
            timeout,
            deadline: None,
            sleep: None,
            shared: Arc::default(),
            _permit: permit,
        }
    }

    /// Called when an operation is pending: starts the deadline if none runs, and
    /// resolves to an error once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.shared.busy.load(Ordering::Relaxed) {
            self.deadline = None;
            return Poll::Pending;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + self.timeout);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection deadline passed",
                ));
            }
            // An earlier wait's timer: move it to this wait's deadline.
            sleep.as_mut().reset(deadline);
        }
    }

    /// Progress on a write: the next wait gets a fresh deadline.
    fn progressed(&mut self) {
        self.deadline = None;
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            ready => ready,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            ready => {
                this.progressed();
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            ready => {
                this.progressed();
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connections handed to one serving thread by the acceptor.
pub struct Handoff {
    /// Connections from the acceptor.
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Accepted>,
    /// The bound address.
    pub local: std::net::SocketAddr,
    /// `--header-timeout`.
    pub timeout: Duration,
}

impl axum::serve::Listener for Handoff {
    type Io = GuardedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(a) = self.rx.recv().await else {
                // The acceptor has stopped: shutdown is under way.
                return std::future::pending().await;
            };
            let Ok(peer) = a.stream.peer_addr() else {
                continue;
            };
            // Registers the socket with this thread's event loop.
            if let Ok(t) = TcpStream::from_std(a.stream) {
                return (GuardedStream::new(t, self.timeout, a.permit), peer);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
