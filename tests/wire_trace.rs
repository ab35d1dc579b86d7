//! The wire trace (features `wire-trace` and `log`, its `required-features`; `cargo test-all`
//! turns them on): exact heads, secrets redacted (credentials, API keys, tokens, headers the
//! program marks, query strings), nothing of the body.

mod support;

use std::sync::Mutex;

use rawpost::{Connection, Host, Request};
use support::{block_on, Peer};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Info {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

#[test]
fn heads_are_traced_with_credentials_redacted() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let mut peer = Peer::new(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: session=s3cr3t\r\nContent-Length: 6\r\n\r\nsecret",
    );
    let mut buf = [0u8; 512];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, Host::new("api.example.com"));
        let req = Request::post("/token")
            .with_headers(&[
                ("Authorization", "Bearer hunter2"),
                ("Cookie", "a=b"),
                ("Content-Type", "application/json"),
            ])
            .with_body(b"{\"pw\":\"body\"}");
        let mut resp = conn.send(&req).await.unwrap();
        resp.discard().await.unwrap();
    });
    let lines = LINES.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "rawpost > POST /token HTTP/1.1",
            "rawpost > Host: api.example.com",
            "rawpost > Authorization: <redacted>",
            "rawpost > Cookie: <redacted>",
            "rawpost > Content-Type: application/json",
            "rawpost > Content-Length: 13",
            "rawpost < HTTP/1.1 100 Continue",
            "rawpost < HTTP/1.1 200 OK",
            "rawpost < Set-Cookie: <redacted>",
            "rawpost < Content-Length: 6",
        ]
    );
    let all = lines.concat();
    for secret in ["hunter2", "a=b", "s3cr3t", "secret", "body"] {
        assert!(!all.contains(secret), "{secret} leaked into the trace");
    }

    // API keys and tokens by default, headers the program marks, the query string, and the
    // folded continuation of a secret field.
    LINES.lock().unwrap().clear();
    rawpost::trace::redact_headers(&["X-Device-Secret"]);
    let mut peer = Peer::new(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1;\r\n  folded-s3cr3t=2\r\nX-Auth-Token: t0k3n\r\nContent-Length: 0\r\n\r\n",
    );
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, Host::new("api.example.com"));
        let req = Request::get("/v1/data?api_key=k3y&user=me").with_headers(&[
            ("X-Api-Key", "k3y-header"),
            ("X-Amz-Security-Token", "amz-t0k3n"),
            ("x-device-secret", "d3v1ce"),
            ("Accept", "application/json"),
        ]);
        let mut resp = conn.send(&req).await.unwrap();
        resp.discard().await.unwrap();
    });
    rawpost::trace::redact_headers(&[]);
    let lines = LINES.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "rawpost > GET /v1/data?<redacted> HTTP/1.1",
            "rawpost > Host: api.example.com",
            "rawpost > X-Api-Key: <redacted>",
            "rawpost > X-Amz-Security-Token: <redacted>",
            "rawpost > x-device-secret: <redacted>",
            "rawpost > Accept: application/json",
            "rawpost < HTTP/1.1 200 OK",
            // Traced after unfolding: the folded continuation is part of the redacted line.
            "rawpost < Set-Cookie: <redacted>",
            "rawpost < X-Auth-Token: <redacted>",
            "rawpost < Content-Length: 0",
        ]
    );
    let all = lines.concat();
    for secret in ["k3y", "user=me", "amz-t0k3n", "d3v1ce", "folded", "t0k3n"] {
        assert!(!all.contains(secret), "{secret} leaked into the trace");
    }
}
