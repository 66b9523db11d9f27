//! `roster healthcheck`: exit 0 when a running server is ready, 1 when
//! nothing answers, with one line saying why.

use crate::support::Roster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_against_a_ready_server() {
    let r = Roster::new();
    let server = r.serve(None, "info");
    let url = format!("http://{}/health/ready", server.addr());
    let out = r.run(&["healthcheck", "--url", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ready:"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_1_when_nothing_listens() {
    let r = Roster::new();
    // A port that was free a moment ago and is closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let out = r.run(&["healthcheck", "--url", &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("not ready:"), "{stdout}");
    // It never opened (or created) the database.
    assert!(!r.dir.path().join("roster.db").exists());
}
