//! `roster directory set-custom-attributes`: from flags or a file, checked
//! against the schemas, printed in canonical spelling, reset to the default.

use crate::support::Roster;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn set_custom_attributes_checks_stores_and_resets_a_mapping() {
    let r = Roster::new();
    let dir = r.json(&["directory", "create", "acme"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let department = format!("department={ENT}:department");
    let manager = format!("manager_id={ENT}:manager.value");
    let out = r.run(&[
        "directory",
        "set-custom-attributes",
        &dir,
        "--map",
        &department,
        "--map",
        &manager,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("manager.value"), "{}", stdout(&out));

    // From a file, in canonical spelling.
    let file = r.dir.path().join("mapping.json");
    std::fs::write(&file, r#"{"given": "NAME.givenname"}"#).unwrap();
    let out = r.run(&[
        "directory",
        "set-custom-attributes",
        &dir,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("name.givenName"), "{}", stdout(&out));

    // Refusals name what is wrong.
    for args in [
        vec!["--map", "x=costCentre"],
        vec!["--map", "no-equals-sign"],
        vec![],
    ] {
        let mut all = vec!["directory", "set-custom-attributes", dir.as_str()];
        all.extend(args.iter());
        let out = r.run(&all);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = stderr(&out);
        let named = args
            .get(1)
            .map_or("--map", |a| a.split('=').next_back().unwrap_or(a));
        assert!(err.contains(named), "{args:?}: {err}");
    }
    let out = r.run(&["directory", "set-custom-attributes", "nope", "--reset"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no directory nope"),
        "{}",
        stderr(&out)
    );

    let out = r.run(&["directory", "set-custom-attributes", &dir, "--reset"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no mapping"), "{}", stdout(&out));
}

#[test]
fn directory_create_takes_an_organization_a_domain_and_a_type() {
    let r = Roster::new();
    let d = r.json(&[
        "directory",
        "create",
        "acme",
        "--organization",
        "org_acme",
        "--domain",
        "acme.test",
        "--type",
        "okta scim v2.0",
    ]);
    assert_eq!(d["organization_id"], "org_acme");
    assert_eq!(d["domain"], "acme.test");
    assert_eq!(d["type"], "okta scim v2.0");
    let listed = r.json(&["directory", "list"]);
    assert_eq!(listed[0]["organization_id"], "org_acme");
    let plain = r.json(&["directory", "create", "plain"]);
    assert!(plain["organization_id"].is_null());
    assert_eq!(plain["type"], "generic scim v2.0");
    let out = r.run(&["directory", "create", "x", "--type", "fax scim", "--json"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fax scim"), "{}", stderr(&out));
}
