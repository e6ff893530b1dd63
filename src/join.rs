//! Running several requests to the sidecar at once, on the component's single-threaded
//! runtime ([`crate::runtime`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls every future concurrently; resolves to their outputs, in order.
pub fn join_all<F: Future>(futures: Vec<F>) -> JoinAll<F> {
    let outputs = futures.iter().map(|_| None).collect();
    JoinAll {
        futures: futures.into_iter().map(|f| Some(Box::pin(f))).collect(),
        outputs,
    }
}

/// The future [`join_all`] returns.
pub struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

// Nothing is pinned in place: the futures are boxed and the outputs only moved out.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pending = false;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
        }
    }
}

/// Like [`join_all`] for fallible futures: every one runs to completion; the first error
/// (in order) is returned.
pub async fn try_join_all<T, E, F: Future<Output = Result<T, E>>>(
    futures: Vec<F>,
) -> Result<Vec<T>, E> {
    join_all(futures).await.into_iter().collect()
}

/// Polls two futures concurrently; resolves to both outputs.
pub async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    Join2 {
        a: Box::pin(a),
        b: Box::pin(b),
        ra: None,
        rb: None,
    }
    .await
}

struct Join2<A: Future, B: Future> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
    // Boxed so `Join2` is `Unpin` whatever the outputs are.
    ra: Option<Box<A::Output>>,
    rb: Option<Box<B::Output>>,
}

impl<A: Future, B: Future> Unpin for Join2<A, B> {}

impl<A: Future, B: Future> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.ra.is_none()
            && let Poll::Ready(v) = this.a.as_mut().poll(cx)
        {
            this.ra = Some(Box::new(v));
        }
        if this.rb.is_none()
            && let Poll::Ready(v) = this.b.as_mut().poll(cx)
        {
            this.rb = Some(Box::new(v));
        }
        if this.ra.is_some() && this.rb.is_some() {
            match (this.ra.take(), this.rb.take()) {
                (Some(a), Some(b)) => Poll::Ready((*a, *b)),
                _ => Poll::Pending,
            }
        } else {
            Poll::Pending
        }
    }
}
