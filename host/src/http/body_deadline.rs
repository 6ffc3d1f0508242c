//! A deadline for the whole request body, counted from the request head
//! (`server.body_read_timeout`). tower-http's `RequestBodyTimeoutLayer`
//! times each frame separately, so a body trickling one byte just inside
//! the timeout would hold its connection until `api.max_body_bytes`;
//! this bounds the body's total time instead.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::{Instant, Sleep};

/// When the body of this request must have arrived (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline(Instant);

impl BodyDeadline {
    pub fn has_passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// Puts the deadline on the request and on its body.
pub async fn limit_body_time(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = Instant::now() + timeout;
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(BodyDeadline(deadline));
    let body = Body::new(DeadlineBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
    });
    next.run(Request::from_parts(parts, body)).await
}

/// The body read past the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_read_timeout")]
pub struct BodyDeadlineExceeded;

struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        // Data already received wins over a deadline that just passed.
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
