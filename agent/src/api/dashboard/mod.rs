//! The web dashboard at `/dashboard/`: one HTML page, a stylesheet and a script, embedded in
//! the binary and served by managers on the Engine API listeners. The page reads everything
//! from `/berth/v1/` (lists, then the event stream) and writes through its action routes;
//! nothing is rendered on the server except the page for nodes that are not managers.

use super::berth_v1;
use crate::daemon::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const NOT_MANAGER: &str = include_str!("assets/not-manager.html");

/// Everything the page loads comes from this origin; no inline script, no frames around it
/// (its buttons change the cluster, so it must not be clickjacked).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The dashboard routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(index))
        .route(
            "/dashboard/app.js",
            get(|| async { asset(APP_JS, "text/javascript") }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { asset(STYLE_CSS, "text/css") }),
        )
}

/// A response with the headers every dashboard file carries. `no-cache` makes browsers
/// revalidate, so a berthd upgrade never runs an old script against a new API.
fn page(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let content_type = match content_type {
        "text/css" => "text/css; charset=utf-8",
        _ => "text/javascript; charset=utf-8",
    };
    page(StatusCode::OK, body.to_string(), content_type)
}

/// The page on managers; on other nodes a 503 page saying why, so a browser pointed at a
/// worker shows a sentence instead of a blank dashboard.
async fn index(State(s): State<AppState>) -> Response {
    match berth_v1::serving_manager(&s, "the dashboard").await {
        Ok(_) => page(
            StatusCode::OK,
            INDEX.to_string(),
            "text/html; charset=utf-8",
        ),
        Err(e) => page(
            e.status,
            NOT_MANAGER.replace("{{message}}", &escape_html(&e.message)),
            "text/html; charset=utf-8",
        ),
    }
}

/// Text made safe for HTML element content and quoted attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<b a="1">&'x'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;x&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn assets_reference_each_other() {
        assert!(INDEX.contains(r#"src="app.js""#), "index loads app.js");
        assert!(
            INDEX.contains(r#"href="style.css""#),
            "index loads style.css"
        );
        assert!(NOT_MANAGER.contains("{{message}}"));
        // Names are user input: the script builds text nodes, never HTML from strings.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
        // The CSP forbids inline code, so the pages must carry none.
        for html in [INDEX, NOT_MANAGER] {
            assert!(
                !html.contains("<script>") && !html.contains(" style=") && !html.contains("<style")
            );
        }
    }
}
