//! Bearer-token check for every HTTP request, including the WebSocket upgrade.
//!
//! It runs as tower HTTP middleware in front of jsonrpsee, so an unauthenticated client
//! never reaches a method or opens a subscription. The comparison takes the same time
//! whatever prefix of the token matches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

/// Requires `Authorization: Bearer <token>` when a token is configured.
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    token: Option<Arc<[u8]>>,
}

impl BearerAuthLayer {
    pub fn new(token: Option<String>) -> Self {
        BearerAuthLayer {
            token: token.map(|t| Arc::from(t.into_bytes().into_boxed_slice())),
        }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: self.token.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BearerAuth<S> {
    inner: S,
    token: Option<Arc<[u8]>>,
}

fn unauthorized() -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(
        "missing or wrong bearer token (Authorization: Bearer <token>)\n",
    ));
    *resp.status_mut() = http::StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    resp
}

impl<S, B> Service<HttpRequest<B>> for BearerAuth<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if let Some(token) = &self.token {
            let given = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                .unwrap_or(b"");
            if !constant_time_eq(given, token) {
                return Box::pin(async { Ok(unauthorized()) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
