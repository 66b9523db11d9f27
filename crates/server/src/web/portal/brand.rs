//! The portal's branding from configuration: the product name, a logo and an
//! accent colour. The colour reaches the page through a stylesheet of its
//! own (`/portal/brand.css`), since the CSP admits no inline style; the
//! logo's origin is added to the page's `img-src`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::web::headers::ExtraImgSrc;

/// What a portal page shows of the configured brand.
pub struct Brand {
    pub product: String,
    pub logo: Option<String>,
}

impl Brand {
    pub fn of(state: &AppState) -> Self {
        Brand {
            product: state.config.portal_product_name.clone(),
            logo: logo_url(state.config.portal_logo_url.as_deref()).map(str::to_owned),
        }
    }

    /// The logo's origin, for the page's Content-Security-Policy.
    pub fn img_src(&self) -> Option<ExtraImgSrc> {
        let logo = reqwest::Url::parse(self.logo.as_deref()?).ok()?;
        Some(ExtraImgSrc(logo.origin().ascii_serialization()))
    }
}

/// A logo URL the page may show: absolute https (or http), else none.
fn logo_url(url: Option<&str>) -> Option<&str> {
    let url = url?;
    let parsed = reqwest::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "https" | "http").then_some(url)
}

/// `#rgb` or `#rrggbb`, else the default accent.
pub fn accent(color: &str) -> &str {
    let hex = color.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        color
    } else {
        "#0b5cad"
    }
}

pub async fn css(State(s): State<AppState>) -> Response {
    let body = format!(
        ":root {{ --accent: {}; }}\n",
        accent(&s.config.portal_accent_color)
    );
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_colours_reach_the_stylesheet() {
        assert_eq!(accent("#123abc"), "#123abc");
        assert_eq!(accent("#fff"), "#fff");
        assert_eq!(accent("red; } body { display:none"), "#0b5cad");
        assert_eq!(accent("#12345g"), "#0b5cad");
    }

    #[test]
    fn only_absolute_web_urls_are_logos() {
        assert_eq!(
            logo_url(Some("https://cdn.example.com/a.png")),
            Some("https://cdn.example.com/a.png")
        );
        assert_eq!(logo_url(Some("javascript:alert(1)")), None);
        assert_eq!(logo_url(Some("/logo.png")), None);
    }
}
