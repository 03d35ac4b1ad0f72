//! The connections under axum: the deadlines hyper keeps none of here, and JSON bodies for the
//! errors hyper answers by itself.
//!
//! - Once the first byte of a request arrives, its line and headers must be complete within
//!   `header_read`; a connection with no request in flight and no byte of the next one may sit
//!   idle at most `idle`. Past either, its reads fail and hyper closes it.
//! - hyper answers a request it cannot parse (malformed: 400, URI over 64 KiB: 414, too many or
//!   too large headers: 431) itself, before any handler, with no body. Every response that
//!   starts a write with an error status and `content-length: 0` gets `{"error": "..."}`
//!   instead, and is counted in the metrics as route `unparsed`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// How long a request's head may take, and a connection may sit idle.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header_read: Duration,
    pub idle: Duration,
}

/// A TCP listener whose connections keep [`Deadlines`] and give hyper's own error answers a
/// JSON body.
#[derive(Debug)]
pub struct TimedListener {
    inner: TcpListener,
    deadlines: Deadlines,
    metrics: Arc<Metrics>,
}

impl TimedListener {
    pub fn new(inner: TcpListener, deadlines: Deadlines, metrics: Arc<Metrics>) -> Self {
        Self { inner, deadlines, metrics }
    }
}

impl Listener for TimedListener {
    type Io = TimedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimedIo, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let io = TimedIo {
            stream,
            activity: Activity::default(),
            deadlines: self.deadlines,
            timer: Box::pin(tokio::time::sleep(self.deadlines.idle)),
            metrics: self.metrics.clone(),
            unwritten: Vec::new(),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// What a connection is doing, shared by its IO and, through `ConnectInfo`, its requests.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Mutex<State>>);

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the last request finished (or the connection opened).
    idle_since: Instant,
    /// When the first byte of the next request arrived.
    head_since: Option<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(State { in_flight: 0, idle_since: Instant::now(), head_since: None })))
    }
}

impl Activity {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request's head was read: no deadline runs until the returned guard drops.
    fn begin(&self) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.head_since = None;
        InFlight(self.clone())
    }

    /// Bytes arrived; with no request in flight they start the next one's head.
    fn arrived(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
        }
    }

    /// When reads start failing and why, unless a request is in flight.
    fn deadline(&self, deadlines: &Deadlines) -> Option<(Instant, &'static str)> {
        let state = self.lock();
        match (state.in_flight, state.head_since) {
            (0, Some(since)) => Some((since + deadlines.header_read, "the request's line and headers took too long")),
            (0, None) => Some((state.idle_since + deadlines.idle, "the connection was idle too long")),
            _ => None,
        }
    }
}

impl Connected<IncomingStream<'_, TimedListener>> for Activity {
    fn connect_info(stream: IncomingStream<'_, TimedListener>) -> Self {
        stream.io().activity.clone()
    }
}

/// A request in flight on its connection; dropping it starts the idle clock.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        state.idle_since = Instant::now();
    }
}

/// Middleware: marks the request in flight on its connection while its handler runs.
pub async fn track(req: Request, next: Next) -> Response {
    let _in_flight = req.extensions().get::<ConnectInfo<Activity>>().map(|info| info.0.begin());
    next.run(req).await
}

/// A TCP connection keeping the deadlines and rewriting body-less error answers.
#[derive(Debug)]
pub struct TimedIo {
    stream: TcpStream,
    activity: Activity,
    deadlines: Deadlines,
    timer: Pin<Box<Sleep>>,
    metrics: Arc<Metrics>,
    /// Bytes of a rewritten answer not yet written; they go before anything else.
    unwritten: Vec<u8>,
}

impl TimedIo {
    fn poll_unwritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.unwritten.is_empty() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.unwritten))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unwritten.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.activity.arrived();
                return Poll::Ready(Ok(()));
            }
            ready => return ready,
        }
        let Some((deadline, why)) = this.activity.deadline(&this.deadlines) else { return Poll::Pending };
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        ready!(this.timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)))
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_unwritten(cx))?;
        let Some((status, head_len)) = bodiless_error(buf) else {
            return Pin::new(&mut this.stream).poll_write(cx, buf);
        };
        this.metrics.http_requests.with_label_values(&["unparsed", "", status.as_str()]).inc();
        this.unwritten = with_json_body(status, &buf[..head_len]);
        // The answer is taken whole; what of it the socket does not take now goes first later.
        let _ = this.poll_unwritten(cx)?;
        Poll::Ready(Ok(head_len))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_unwritten(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_unwritten(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// When `buf` starts with a whole response head with an error status and `content-length: 0`:
/// the status and the head's length.
fn bodiless_error(buf: &[u8]) -> Option<(StatusCode, usize)> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ").or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?).ok().filter(|s| s.is_client_error() || s.is_server_error())?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let empty = buf[..head_len]
        .split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.split_once(':'))
        .any(|(name, value)| name.trim().eq_ignore_ascii_case("content-length") && value.trim() == "0");
    empty.then_some((status, head_len))
}

/// `head` (ending in a blank line) with `content-length` and `content-type` for a JSON body,
/// and the body.
fn with_json_body(status: StatusCode, head: &[u8]) -> Vec<u8> {
    let message = match status {
        StatusCode::BAD_REQUEST => "the request is not valid HTTP/1.1".to_string(),
        StatusCode::URI_TOO_LONG => "the request's URI is too long".to_string(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request's headers are too many or too large".to_string(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let text = String::from_utf8_lossy(&head[..head.len() - 2]);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        let name = line.split_once(':').map(|(n, _)| n.trim().to_ascii_lowercase());
        if !matches!(name.as_deref(), Some("content-length" | "content-type")) {
            out.push_str(line);
        }
    }
    out.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}
