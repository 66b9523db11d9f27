//! Security headers of every web response: a Content-Security-Policy that
//! admits only this origin's script and style (no inline code, so an
//! injected `<script>` or `onerror=` cannot run), no framing, no sniffing,
//! no referrer, and no caching of pages (they show secrets once).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// An origin a page's images may come from besides this one (a portal's
/// configured logo), set by a handler as a response extension.
#[derive(Debug, Clone)]
pub struct ExtraImgSrc(pub String);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{extra}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn csp(extra: Option<&ExtraImgSrc>) -> Option<HeaderValue> {
    let extra = extra
        .map(|e| e.0.as_str())
        // Only a bare origin: anything else could widen the policy.
        .filter(|o| {
            (o.starts_with("https://") || o.starts_with("http://"))
                && !o.contains([';', ',', ' ', '\'', '"', '\n', '\r'])
        })
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    HeaderValue::from_str(&CSP.replace("{extra}", &extra)).ok()
}

pub async fn secure(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    apply(&mut resp);
    resp
}

/// Sets the headers on a response (also used for error pages the stack
/// renders outside the web routes' middleware).
pub fn apply(resp: &mut Response) {
    let extra = resp.extensions().get::<ExtraImgSrc>().cloned();
    let h = resp.headers_mut();
    if let Some(v) = csp(extra.as_ref()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_admits_an_extra_image_origin_but_nothing_that_widens_it() {
        let base = csp(None).unwrap();
        assert!(base.to_str().unwrap().contains("img-src 'self' data:;"));
        let logo = csp(Some(&ExtraImgSrc("https://cdn.example.com".into()))).unwrap();
        assert!(
            logo.to_str()
                .unwrap()
                .contains("img-src 'self' data: https://cdn.example.com;")
        );
        let evil = csp(Some(&ExtraImgSrc(
            "https://x; script-src 'unsafe-inline'".into(),
        )))
        .unwrap();
        assert!(!evil.to_str().unwrap().contains("unsafe-inline"));
    }
}
