//! Bearer-token check for every HTTP request, including the WebSocket upgrade.
//!
//! It runs as tower HTTP middleware in front of jsonrpsee, so an unauthenticated client
//! never reaches a method or opens a subscription. The comparison takes the same time
//! whatever prefix of the token matches.
//!
//! A browser cannot set headers on a WebSocket, so the upgrade may instead offer the token
//! as the subprotocol `weft.bearer.<hex of the token's bytes>` (as Kubernetes does with
//! `base64url.bearer.authorization.k8s.io.<token>`; hex keeps it a valid header token).
//! The accepted upgrade names that subprotocol back, as browsers require.
//!
//! A request that carries an `Origin` other than the API's own (`Host`) is refused
//! before anything else: browsers let any web page open a WebSocket to
//! `127.0.0.1:6690`, and without a token the loopback API would take its writes. The web
//! view at `/ui/` is same-origin; weftctl and other programs send no `Origin`.

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

/// Prefix of the WebSocket subprotocol that carries the token (hex-encoded after it).
pub const WS_TOKEN_PROTOCOL: &str = "weft.bearer.";

/// The token subprotocol a WebSocket upgrade offers, if any: its full name and the
/// token it carries (`None` for the token when the hex is malformed).
fn offered_token(headers: &http::HeaderMap) -> Option<(http::HeaderValue, Option<Vec<u8>>)> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| {
            let hex = p.strip_prefix(WS_TOKEN_PROTOCOL)?;
            let name = http::HeaderValue::from_str(p).ok()?;
            Some((name, decode_hex(hex)))
        })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok(),
            _ => None,
        })
        .collect()
}

/// Requires `Authorization: Bearer <token>` (or, on a WebSocket upgrade, the token
/// subprotocol) when a token is configured.
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

/// Whether a request's `Origin` (sent by browsers) names another site than the API
/// itself. A request without `Origin` comes from a program, not a page, and passes; an
/// `Origin` that cannot be compared (`null`, no `Host`) is foreign.
fn foreign_origin(headers: &http::HeaderMap) -> bool {
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (authority, host) {
        (Some(a), Some(h)) => !a.eq_ignore_ascii_case(h),
        _ => true,
    }
}

fn forbidden_origin() -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(
        "cross-origin requests are refused (Origin does not match Host)\n",
    ));
    *resp.status_mut() = http::StatusCode::FORBIDDEN;
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
        if foreign_origin(req.headers()) {
            return Box::pin(async { Ok(forbidden_origin()) });
        }
        let offered = offered_token(req.headers());
        if let Some(token) = &self.token {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
            let given = match (header, &offered) {
                (Some(h), _) => h,
                (None, Some((_, Some(t)))) => t.as_slice(),
                _ => b"",
            };
            if !constant_time_eq(given, token) {
                return Box::pin(async { Ok(unauthorized()) });
            }
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            // Offered even to a server without a token (the page cannot know): a browser
            // drops an upgrade that does not name one of the subprotocols it offered.
            if let Some((name, _)) = offered
                && resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
            {
                resp.headers_mut()
                    .insert(http::header::SEC_WEBSOCKET_PROTOCOL, name);
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, decode_hex, foreign_origin, offered_token};

    #[test]
    fn origin_must_be_the_api_itself() {
        let h = |origin: Option<&'static str>, host: &'static str| {
            let mut m = http::HeaderMap::new();
            m.insert(http::header::HOST, http::HeaderValue::from_static(host));
            if let Some(o) = origin {
                m.insert(http::header::ORIGIN, http::HeaderValue::from_static(o));
            }
            m
        };
        assert!(!foreign_origin(&h(None, "127.0.0.1:6690")));
        assert!(!foreign_origin(&h(
            Some("http://127.0.0.1:6690"),
            "127.0.0.1:6690"
        )));
        assert!(!foreign_origin(&h(
            Some("https://weft.example:6690"),
            "WEFT.example:6690"
        )));
        assert!(foreign_origin(&h(
            Some("https://evil.example"),
            "127.0.0.1:6690"
        )));
        assert!(foreign_origin(&h(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:6690"
        )));
        assert!(foreign_origin(&h(Some("null"), "127.0.0.1:6690")));
    }

    #[test]
    fn token_subprotocol() {
        let mut h = http::HeaderMap::new();
        assert!(offered_token(&h).is_none());
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("other, weft.bearer.733363726574"),
        );
        let (name, token) = offered_token(&h).unwrap();
        assert_eq!(name, "weft.bearer.733363726574");
        assert_eq!(token.as_deref(), Some(&b"s3cret"[..]));
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("weft.bearer.7g"),
        );
        assert_eq!(offered_token(&h).unwrap().1, None);
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex(""), Some(vec![]));
    }

    #[test]
    fn compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
