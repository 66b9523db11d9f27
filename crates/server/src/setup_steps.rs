//! Each identity provider's setup steps as the Admin Portal shows them,
//! taken from the same pages as the documentation (`docs/idp/*.md`,
//! compiled in): the parts between `<!-- portal -->` and `<!-- /portal -->`,
//! rendered from Markdown with any HTML in them shown as text.

use pulldown_cmark::{Event, Options, Parser};

/// A provider the portal offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// In URLs: `okta`, `entra-id`, ...
    pub slug: &'static str,
    pub name: &'static str,
    doc: &'static str,
}

pub const PROVIDERS: &[Provider] = &[
    Provider {
        slug: "entra-id",
        name: "Microsoft Entra ID",
        doc: include_str!("../../../docs/idp/entra-id.md"),
    },
    Provider {
        slug: "okta",
        name: "Okta",
        doc: include_str!("../../../docs/idp/okta.md"),
    },
    Provider {
        slug: "onelogin",
        name: "OneLogin",
        doc: include_str!("../../../docs/idp/onelogin.md"),
    },
    Provider {
        slug: "jumpcloud",
        name: "JumpCloud",
        doc: include_str!("../../../docs/idp/jumpcloud.md"),
    },
    Provider {
        slug: "google",
        name: "Google Workspace",
        doc: include_str!("../../../docs/idp/google.md"),
    },
    Provider {
        slug: "generic",
        name: "Another SCIM 2.0 client",
        doc: include_str!("../../../docs/idp/generic.md"),
    },
];

const START: &str = "<!-- portal -->";
const END: &str = "<!-- /portal -->";

/// The provider named by `slug`.
pub fn provider(slug: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.slug == slug)
}

/// The Markdown of the marked parts of a page, in order.
fn marked(doc: &str) -> String {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(start) = rest.find(START) {
        let after = &rest[start + START.len()..];
        let end = after.find(END).unwrap_or(after.len());
        out.push_str(&after[..end]);
        out.push_str("\n\n");
        rest = &after[(end + END.len()).min(after.len())..];
    }
    out
}

/// Markdown to HTML with raw HTML escaped: a page can add no markup,
/// script or style of its own.
pub fn markdown_html(md: &str) -> String {
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

impl Provider {
    /// The steps as HTML (escaped, no raw HTML).
    pub fn steps_html(&self) -> String {
        markdown_html(&marked(self.doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_steps_naming_the_url_and_the_token() {
        for p in PROVIDERS {
            let html = p.steps_html();
            assert!(html.contains("<ol>"), "{}: {html}", p.slug);
            assert!(html.contains("SCIM base URL"), "{}", p.slug);
            assert!(html.contains("token"), "{}", p.slug);
            assert!(!html.contains("roster directory create"), "{}", p.slug);
        }
    }

    #[test]
    fn okta_steps_name_okta_fields() {
        let html = provider("okta").unwrap().steps_html();
        assert!(html.contains("<strong>SCIM connector base URL</strong>"));
        assert!(html.contains("<strong>Test Connector Configuration</strong>"));
    }

    #[test]
    fn raw_html_in_a_page_is_text() {
        let html = markdown_html(
            "a <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n<div>x</div>",
        );
        assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<div>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn only_marked_parts_are_taken() {
        let md = "before\n<!-- portal -->\none\n<!-- /portal -->\nmiddle\n<!-- portal -->\ntwo\n<!-- /portal -->\nafter";
        let m = marked(md);
        assert!(m.contains("one") && m.contains("two"));
        assert!(!m.contains("before") && !m.contains("middle") && !m.contains("after"));
    }
}
