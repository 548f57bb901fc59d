//! `GET /metrics` on the API listener: tower HTTP middleware in front of jsonrpsee that
//! answers that one route and passes every other request (JSON-RPC POSTs, WebSocket
//! upgrades) through untouched. It sits behind the bearer-token check, so it follows the
//! API's token rules: open on a loopback API without a token, the token otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use super::text::CONTENT_TYPE;

/// The path Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

/// Writes the whole scrape answer (text format) when called.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct MetricsLayer {
    render: Render,
}

impl MetricsLayer {
    pub fn new(render: Render) -> Self {
        MetricsLayer { render }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsRoute<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsRoute {
            inner,
            render: self.render.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsRoute<S> {
    inner: S,
    render: Render,
}

fn answer(render: &Render) -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(render()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    resp
}

fn method_not_allowed() -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from("use GET for /metrics\n"));
    *resp.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
    resp
}

impl<S, B> Service<HttpRequest<B>> for MetricsRoute<S>
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
        if req.uri().path() != METRICS_PATH {
            return Box::pin(self.inner.call(req));
        }
        if req.method() != http::Method::GET {
            return Box::pin(async { Ok(method_not_allowed()) });
        }
        let resp = answer(&self.render);
        Box::pin(async { Ok(resp) })
    }
}
