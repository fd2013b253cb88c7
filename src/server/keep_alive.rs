//! A short deadline for request heads, a long one for idle keep-alive connections.
//!
//! hyper has a single timer for both: its header read timeout also closes a
//! keep-alive connection once it has been idle that long. Closing after 10 s
//! races every client that keeps connections longer (an AWS load balancer
//! keeps them 60 s, Go's and reqwest's pools 90 s): a request sent just as the
//! server closes fails with "connection closed before message completed".
//!
//! So each connection gets its own `HeadTimer` and a `WatchedStream` that notes
//! when the first byte of a request head arrives. hyper asks the timer for a
//! deadline each time it starts waiting for a head; that deadline is
//! - on a new connection: the header timeout, as hyper asked;
//! - on a kept-alive connection: the idle timeout, until a byte arrives, then
//!   the header timeout from that byte.
//!
//! A head whose first bytes came in the same read as the previous request
//! (pipelining) is held to the idle timeout: still bounded.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// A request head must be complete this long after its first byte (or after connecting).
    pub header: Duration,
    /// An idle keep-alive connection is closed after this long.
    pub idle: Duration,
}

/// What a connection's stream and timer share.
#[derive(Default)]
struct HeadWatch {
    /// When the first byte of the head being waited for arrived.
    first_byte_at: Mutex<Option<Instant>>,
    /// Whether hyper has waited for a head before (the connection is kept alive).
    kept_alive: AtomicBool,
}

/// Wraps a new connection; hand the stream to hyper and the timer to its builder.
pub fn watch<S>(stream: S, timeouts: HttpTimeouts) -> (WatchedStream<S>, HeadTimer) {
    let watch = Arc::new(HeadWatch::default());
    (WatchedStream { inner: stream, watch: watch.clone() }, HeadTimer { watch, timeouts })
}

pub struct WatchedStream<S> {
    inner: S,
    watch: Arc<HeadWatch>,
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.first_byte_at.lock().unwrap().get_or_insert_with(Instant::now);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

/// hyper's timer for one connection. hyper's HTTP/1 server only asks it for the
/// header read deadline (set to `timeouts.header` on the builder).
pub struct HeadTimer {
    watch: Arc<HeadWatch>,
    timeouts: HttpTimeouts,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadDeadline::fixed(Instant::now() + duration))
    }

    /// Called when hyper starts waiting for a request head.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        *self.watch.first_byte_at.lock().unwrap() = None;
        if !self.watch.kept_alive.swap(true, Ordering::Relaxed) {
            return Box::pin(HeadDeadline::fixed(deadline));
        }
        let idle_until = Instant::now() + self.timeouts.idle;
        Box::pin(HeadDeadline {
            sleep: Box::pin(tokio::time::sleep_until(idle_until.into())),
            idle: Some(IdleWait { watch: self.watch.clone(), idle_until, header: self.timeouts.header }),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}

struct HeadDeadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Set while waiting on a kept-alive connection: the deadline moves once a byte arrives.
    idle: Option<IdleWait>,
}

struct IdleWait {
    watch: Arc<HeadWatch>,
    idle_until: Instant,
    header: Duration,
}

impl HeadDeadline {
    fn fixed(deadline: Instant) -> Self {
        HeadDeadline { sleep: Box::pin(tokio::time::sleep_until(deadline.into())), idle: None }
    }
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(idle) = &self.idle {
            let first_byte_at = *idle.watch.first_byte_at.lock().unwrap();
            let deadline = first_byte_at.map_or(idle.idle_until, |at| at + idle.header);
            if self.sleep.deadline().into_std() != deadline {
                self.sleep.as_mut().reset(deadline.into());
            }
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadDeadline {}
