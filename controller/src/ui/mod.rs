//! The read-only web view at `GET /ui/` on the API listener: a page, one script and one
//! stylesheet compiled into the binary (no CDN, no build step), served by tower HTTP
//! middleware in front of the bearer-token check; every other request passes through
//! untouched. Imports nothing else of Weft.
//!
//! The assets are served without a token, on purpose: a browser cannot send an
//! `Authorization` header when it navigates to a URL, and the files are the same bytes in
//! every weftd binary of a version, holding no state, configuration or secret, so they
//! tell an unauthenticated client nothing that the API's own `401` (`WWW-Authenticate:
//! Bearer`) does not. Everything the page shows it reads through the API, with the token
//! the user gives it (`#token=` in the URL fragment, which browsers never send, or a
//! prompt); the events WebSocket carries it as a subprotocol (see [`crate::api::auth`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

/// Where the page lives. `/ui` alone is redirected here.
pub const UI_PATH: &str = "/ui/";

/// One file of the web view.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the view has; any other path under `/ui/` is a 404.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/ui/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("index.html"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("app.js"),
    },
    Asset {
        path: "/ui/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("style.css"),
    },
];

/// The page may load only its own script and style and talk only to its own origin (the
/// API and its WebSocket), and may not be framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

#[derive(Clone, Debug, Default)]
pub struct UiLayer;

impl<S> Layer<S> for UiLayer {
    type Service = UiRoute<S>;
    fn layer(&self, inner: S) -> Self::Service {
        UiRoute { inner }
    }
}

#[derive(Clone, Debug)]
pub struct UiRoute<S> {
    inner: S,
}

fn plain(status: http::StatusCode, text: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The answer for a request under `/ui`, or `None` when the path is not the view's.
fn route(method: &http::Method, path: &str) -> Option<HttpResponse> {
    if path == "/ui" {
        let mut resp = plain(http::StatusCode::PERMANENT_REDIRECT, "see /ui/\n");
        resp.headers_mut().insert(
            http::header::LOCATION,
            http::HeaderValue::from_static(UI_PATH),
        );
        return Some(resp);
    }
    if !path.starts_with(UI_PATH) {
        return None;
    }
    if method != http::Method::GET && method != http::Method::HEAD {
        let mut resp = plain(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "the view is read-only\n",
        );
        resp.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return Some(resp);
    }
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return Some(plain(
            http::StatusCode::NOT_FOUND,
            "no such file in the view\n",
        ));
    };
    let body = if method == http::Method::HEAD {
        HttpBody::from("")
    } else {
        HttpBody::from(asset.body)
    };
    let mut resp = HttpResponse::new(body);
    let headers = resp.headers_mut();
    let mut set = |name: http::HeaderName, value: &'static str| {
        headers.insert(name, http::HeaderValue::from_static(value));
    };
    set(http::header::CONTENT_TYPE, asset.content_type);
    // The assets change with the binary; a restarted weftd must not be shown stale code.
    set(http::header::CACHE_CONTROL, "no-cache");
    set(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(http::header::REFERRER_POLICY, "no-referrer");
    set(http::header::CONTENT_SECURITY_POLICY, CSP);
    Some(resp)
}

impl<S, B> Service<HttpRequest<B>> for UiRoute<S>
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
        match route(req.method(), req.uri().path()) {
            Some(resp) => Box::pin(async { Ok(resp) }),
            None => Box::pin(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<HttpResponse> {
        route(&http::Method::GET, path)
    }

    fn header(r: &HttpResponse, name: http::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn the_page_and_its_assets_are_served_with_their_types() {
        for (path, ty, needle) in [
            ("/ui/", "text/html; charset=utf-8", "<svg"),
            (
                "/ui/app.js",
                "text/javascript; charset=utf-8",
                "events_subscribe",
            ),
            ("/ui/style.css", "text/css; charset=utf-8", "svg"),
        ] {
            let r = get(path).unwrap();
            assert_eq!(r.status(), http::StatusCode::OK, "{path}");
            assert_eq!(header(&r, http::header::CONTENT_TYPE), ty, "{path}");
            assert_eq!(header(&r, http::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert!(header(&r, http::header::CONTENT_SECURITY_POLICY).contains("'self'"));
            let asset = ASSETS.iter().find(|a| a.path == path).unwrap();
            assert!(asset.body.contains(needle), "{path} lacks {needle}");
        }
        // The page names the script and stylesheet that are served.
        let page = ASSETS[0].body;
        assert!(page.contains(r#"src="app.js""#) && page.contains(r#"href="style.css""#));
    }

    #[test]
    fn unknown_paths_under_the_view_are_404_and_others_pass_through() {
        for path in [
            "/ui/nope",
            "/ui/app.js/",
            "/ui/../metrics",
            "/ui/index.html",
        ] {
            assert_eq!(
                get(path).unwrap().status(),
                http::StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        for path in ["/", "/metrics", "/uix", "/u"] {
            assert!(get(path).is_none(), "{path} is not the view's");
        }
        let r = get("/ui").unwrap();
        assert_eq!(r.status(), http::StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&r, http::header::LOCATION), "/ui/");
    }

    #[test]
    fn the_view_is_read_only() {
        let r = route(&http::Method::POST, "/ui/").unwrap();
        assert_eq!(r.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        let r = route(&http::Method::HEAD, "/ui/app.js").unwrap();
        assert_eq!(r.status(), http::StatusCode::OK);
    }
}
