//! The async runtime: runs one call's future to completion on `wasi:io/poll`, so that
//! independent requests to the sidecar are in flight at once.
//!
//! A call is one future (the operation, with any requests it runs concurrently through
//! [`crate::join`]). Whatever it waits on is a `wasi:io` pollable: a future that finds its
//! pollable not ready registers it here and returns `Pending`; [`block_on`] then blocks in
//! `wasi:io/poll.poll` until one of the registered pollables is ready, and polls the whole
//! future again (every future here re-checks its pollable when polled, so no waker is
//! needed).

use std::cell::RefCell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{OutputStream, StreamError};

thread_local! {
    /// The pollables the pending futures of the current call wait on. Weak: a future dropped
    /// while waiting (a timeout) must take its pollable with it, before the resource the
    /// pollable belongs to.
    static WAITING: RefCell<Vec<Weak<Pollable>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `future` to completion, blocking in `wasi:io/poll` while it waits.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            WAITING.with_borrow_mut(Vec::clear);
            return out;
        }
        let waiting: Vec<Rc<Pollable>> = WAITING
            .with_borrow_mut(std::mem::take)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        if !waiting.is_empty() {
            let refs: Vec<&Pollable> = waiting.iter().map(|p| &**p).collect();
            poll(&refs);
        }
    }
}

/// Waits until `pollable` is ready.
pub struct Wait(Rc<Pollable>);

impl Wait {
    /// A future ready when `pollable` is.
    pub fn new(pollable: Pollable) -> Self {
        Wait(Rc::new(pollable))
    }
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0.ready() {
            return Poll::Ready(());
        }
        WAITING.with_borrow_mut(|w| w.push(Rc::downgrade(&self.0)));
        Poll::Pending
    }
}

/// Waits `duration`.
pub fn sleep(duration: Duration) -> Wait {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    Wait::new(monotonic_clock::subscribe_duration(nanos))
}

/// `future`, or `Err(TimedOut)` once `duration` has passed without it finishing.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, TimedOut> {
    let mut future = pin!(future);
    let mut timer = pin!(sleep(duration));
    std::future::poll_fn(|cx| {
        // The timer first: once it has fired, the future is dropped without being polled
        // again.
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(TimedOut));
        }
        future.as_mut().poll(cx).map(Ok)
    })
    .await
}

/// A [`timeout`] that expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// Writes all of `bytes` to `stream` and flushes it, waiting whenever the host's buffer is
/// full.
pub async fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let room = stream.check_write()?;
        if room == 0 {
            Wait::new(stream.subscribe()).await;
            continue;
        }
        let n = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        let (now, rest) = bytes.split_at(n);
        stream.write(now)?;
        bytes = rest;
    }
    stream.flush()?;
    // The flush is done once the stream takes writes again.
    while stream.check_write()? == 0 {
        Wait::new(stream.subscribe()).await;
    }
    Ok(())
}

/// Fills `buf` with random bytes from `wasi:random/random`.
pub fn random(buf: &mut [u8]) {
    let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
    for (b, r) in buf.iter_mut().zip(bytes) {
        *b = r;
    }
}
