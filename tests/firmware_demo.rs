//! The ESP32 firmware's first run, on the host: `cargo post -- --serve ADDR`
//! serves the committed test PKI (`examples/esp32-common/test-pki/`), and a client that pins
//! the committed root (`examples/esp32-common/root-ca.pem`, the file the firmware includes)
//! and does what the firmware does — TCP to an address, `api.example.test` as the TLS server
//! name and `Host`, a JSON POST to `/post` — gets `200`. Also: the committed certificates stay
//! valid for years, so the first flash keeps working.

#[path = "../examples/support/https_server.rs"]
mod https_server;

use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use https_server::{committed, HOST};
use rand_core::OsRng;
use rawpost::tls::{PinnedProvider, TimeSource, TimeUsed, TrustAnchor};
use rawpost::{Host, Request};

/// The firmware's JSON body.
#[derive(serde::Serialize)]
struct Reading<'a> {
    device: &'a str,
    seq: u32,
    uptime_ms: u64,
    message: &'a str,
}

/// The tests' fixed clock, 2030-01-01T00:00:00Z: no verdict here depends on the day the tests
/// run (the committed certificates have fixed dates, 2025-01-01 to 2049-12-31).
fn now() -> Option<u64> {
    Some(1_893_456_000)
}

/// Ten years after the fixed clock: 2039-12-29.
fn in_ten_years() -> Option<u64> {
    now().map(|t| t + 10 * 365 * 86_400)
}

/// POSTs a reading as the firmware does, pinning the committed root; returns status and body.
async fn post_like_the_firmware(
    addr: std::net::SocketAddr,
    clock: fn() -> Option<u64>,
) -> (u16, Vec<u8>, Option<TimeUsed>) {
    // The file the firmware includes (`include_str!("root-ca.pem")`).
    let root_pem = include_str!("../examples/esp32-common/root-ca.pem");
    let mut der = [0u8; 2048];
    let anchor = TrustAnchor::from_pem(root_pem.as_bytes(), &mut der).unwrap();
    // The firmware's time source: SNTP when it got an answer, the build time as the floor.
    let time = TimeSource::clock(clock).with_floor(rawpost::tls::MIN_TIME);
    let mut provider = PinnedProvider::new(OsRng, anchor, time);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 4096]);
    let mut http = vec![0u8; 2048];
    let host = Host::new(HOST).with_port(addr.port());
    let mut conn = rawpost::tls::connect(
        FromTokio::new(tcp),
        &mut rx,
        &mut tx,
        host,
        &mut provider,
        &mut http,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let reading = Reading {
        device: "esp32c3",
        seq: 1,
        uptime_ms: 5321,
        message: "hello from rawpost",
    };
    let request = Request::post("/post").with_headers(&[
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "rawpost-esp32/0.1"),
        ("Connection", "close"),
    ]);
    let mut resp = conn
        .send_with(&request, |buf| serde_json_core::to_slice(&reading, buf))
        .await
        .unwrap();
    let status = resp.status();
    let mut body = vec![0u8; 4096];
    let n = resp.read_to_end(&mut body).await.unwrap();
    body.truncate(n);
    (status, body, provider.last_time())
}

#[tokio::test]
async fn serve_answers_a_client_that_pins_the_committed_root() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let server = https_server::start_committed("127.0.0.1:0", false)
            .await
            .unwrap();
        let (status, body, time) = post_like_the_firmware(server.addr, now).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            r#"{"received":{"device":"esp32c3","seq":1,"uptime_ms":5321,"message":"hello from rawpost"},"access_token":"demo-token-1-1"}"#
        );
        assert!(matches!(time, Some(TimeUsed::Clock(_))));

        // Without SNTP the firmware checks against its build-time floor: still accepted.
        let (status, _, time) = post_like_the_firmware(server.addr, || None).await;
        assert_eq!(status, 200);
        assert!(matches!(time, Some(TimeUsed::Floor(_))));
        assert_eq!(server.sessions(), 2);
    })
    .await
    .unwrap();
}

/// The committed PKI is valid from the fixed clock (2030) for ten more years, so a device that
/// syncs its clock keeps working long after it was flashed (the dates are fixed: this is a
/// property of the committed files, not of the day the test runs). To renew it:
/// `cargo post -- --make-test-pki examples/esp32-common`.
#[tokio::test]
async fn committed_pki_is_valid_for_ten_years_after_2030() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let server = https_server::start_committed("127.0.0.1:0", false)
            .await
            .unwrap();
        let (status, _, _) = post_like_the_firmware(server.addr, in_ten_years).await;
        assert_eq!(status, 200);
    })
    .await
    .unwrap();
}

/// The committed files say, before anything else, that they are for tests only.
#[test]
fn committed_files_are_labelled_test_only() {
    for file in [
        committed::ROOT,
        committed::INTERMEDIATE,
        committed::LEAF,
        committed::LEAF_KEY,
    ] {
        let pem = committed::read(file).unwrap();
        assert!(pem.starts_with("TEST ONLY: "), "{file}: {pem}");
    }
}
