//! `roster portal link`: a one-time Admin Portal link, built from
//! `public_url`, audited with the actor `cli`.

use crate::support::Roster;

#[test]
fn a_portal_link_is_printed_and_audited() {
    let r = Roster::new();
    let d = r.json(&["directory", "create", "acme"]);
    let dir = d["id"].as_str().unwrap().to_owned();
    let link = r.json_with(
        &[
            "portal",
            "link",
            &dir,
            "--return-url",
            "https://app.example.com/sso",
        ],
        &[("ROSTER_PUBLIC_URL", "https://roster.example.com/")],
    );
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://roster.example.com/portal/open/rpl_"),
        "{url}"
    );
    assert!(link["expires_at"].as_str().unwrap().ends_with('Z'));

    let out = r.run(&["audit", "tail", "--json"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("portal_link.created"), "{text}");
    let secret = url.rsplit('/').next().unwrap();
    assert!(
        !text.contains(secret),
        "the link's secret reached the audit log"
    );

    for bad in [
        vec!["portal", "link", "nope"],
        vec![
            "portal",
            "link",
            &dir,
            "--return-url",
            "javascript:alert(1)",
        ],
        vec!["portal", "link", &dir, "--expires-in", "0"],
    ] {
        let out = r.run(&bad);
        assert!(!out.status.success(), "{bad:?}");
    }
    let out = r.run(&["portal", "link", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no directory nope"));
}
