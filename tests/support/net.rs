//! For the tests against real servers on loopback: a bound on a test's time, the system clock,
//! and the JSON POST the demo server answers.

use core::future::Future;
use std::time::Duration;

use rawpost::{Connection, Request};

/// Runs `test` within `limit`, so that a bug cannot hang CI.
pub async fn within<T>(limit: Duration, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, test)
        .await
        .expect("the test took too long")
}

/// The system clock in Unix seconds, for the verifier's date checks (the demo server's
/// certificates are valid around today).
pub fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// POSTs `json` to `/oauth/token`: the status and the body.
pub async fn post_json<S>(conn: &mut Connection<'_, S>, json: &[u8]) -> (u16, Vec<u8>)
where
    S: embedded_io_async::Read + embedded_io_async::Write,
    S::Error: std::fmt::Debug,
{
    let req = Request::post("/oauth/token")
        .with_headers(&[("Content-Type", "application/json")])
        .with_body(json);
    let mut resp = conn.send(&req).await.expect("send");
    let status = resp.status();
    let mut body = vec![0u8; 16_384];
    let n = resp.read_to_end(&mut body).await.expect("body");
    body.truncate(n);
    (status, body)
}
