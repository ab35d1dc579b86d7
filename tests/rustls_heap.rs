//! The heap a rustls client session takes under rawpost on the host (docs/rustls.md): a
//! counting allocator counts what the client's thread allocates and frees, from before the TCP
//! connect to after the session is dropped, while the server runs on a thread of its own.
//! rawpost itself allocates nothing (its buffer is the caller's); embedded-tls, for comparison,
//! takes fixed buffers the caller provides (16,640 + 4,096 bytes in the examples).
//!
//! One test in this binary, so no other test's allocations are counted.

#[path = "../examples/support/https_server.rs"]
mod https_server;
#[path = "../examples/support/rustls_stream.rs"]
mod rustls_stream;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use embedded_io_async::Read;
use rawpost::{Connection, Host, Request};
use rustls_stream::{PinnedCa, ALL_VERSIONS};

/// Counts the live bytes allocated by the thread that has `COUNTING` set, and their peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn grow(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is passed to `System` unchanged; only counters are updated around it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && counting() {
            grow(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && counting() {
            grow(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes and the peak since the last reset.
fn snapshot() -> (isize, isize) {
    (LIVE.load(Ordering::SeqCst), PEAK.load(Ordering::SeqCst))
}

fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
}

/// The demo server's answer around the JSON it received: `{"received":` … `,"access_token":
/// "demo-token-1-N"}`.
const ECHO_FRAME: usize = r#"{"received":,"access_token":"demo-token-1-1"}"#.len();

/// What one session took.
#[derive(Debug)]
struct Heap {
    /// Peak live bytes from the TCP connect to the end of the handshake.
    handshake_peak: isize,
    /// Live bytes held by the open, idle session after the handshake.
    session: isize,
    /// Peak live bytes during two small JSON POSTs and their responses (about 100 bytes each
    /// way).
    posts_peak: isize,
    /// Peak live bytes during a POST of 20,000 bytes of JSON, echoed back: records of 16 KiB
    /// each way.
    large_post_peak: isize,
    /// Live bytes left once the session is closed and dropped.
    after_drop: isize,
}

async fn measure(versions: https_server::Versions) -> Heap {
    // The server on a thread of its own, so that its allocations are not counted.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = https_server::start_versions(https_server::RootKey::P256, versions)
                .await
                .unwrap();
            tx.send((server.addr, server.root.der.clone())).unwrap();
            let _ = stop_rx.await;
        });
    });
    let (addr, root) = rx.recv().unwrap();
    let pin = PinnedCa::new(root.into(), ALL_VERSIONS).unwrap();
    let host = Host::new(https_server::HOST);
    let mut http = [0u8; 2048];
    // The test's own buffers, before counting starts.
    let large = format!(r#"{{"reading":"{}"}}"#, "x".repeat(20_000));
    let bodies = [
        br#"{"n":1}"#.to_vec(),
        br#"{"n":2,"more":"x"}"#.to_vec(),
        large.into_bytes(),
    ];
    let mut body = vec![0u8; 32_768];

    COUNTING.with(|c| c.set(true));
    let start = LIVE.load(Ordering::SeqCst);
    reset_peak();
    let tls = rustls_stream::connect_tcp(addr, host, &pin).await.unwrap();
    let (live, peak) = snapshot();
    let (handshake_peak, session) = (peak - start, live - start);
    reset_peak();
    let mut conn = Connection::new(tls, &mut http, host);
    let mut posts_peak = 0;
    for (i, json) in bodies.iter().enumerate() {
        if i == 2 {
            posts_peak = snapshot().1 - start;
            reset_peak();
        }
        let req = Request::post("/oauth/token")
            .with_headers(&[("Content-Type", "application/json")])
            .with_body(json);
        let mut resp = conn.send(&req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut n = 0;
        loop {
            match resp.read(&mut body[n..]).await.unwrap() {
                0 => break,
                k => n += k,
            }
        }
        assert!(body[..n].starts_with(br#"{"received":"#));
        assert_eq!(n, json.len() + ECHO_FRAME);
    }
    let large_post_peak = snapshot().1 - start;
    conn.into_inner().close().await.unwrap();
    let after_drop = LIVE.load(Ordering::SeqCst) - start;
    COUNTING.with(|c| c.set(false));

    stop_tx.send(()).unwrap();
    server_thread.join().unwrap();
    Heap {
        handshake_peak,
        session,
        posts_peak,
        large_post_peak,
        after_drop,
    }
}

/// The figures docs/rustls.md gives, within a margin: the test fails when rustls, the adapter
/// or rawpost start taking noticeably more (or when the counting stops counting).
#[test]
fn a_rustls_session_under_rawpost_takes_this_much_heap() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for versions in [
        https_server::Versions::Tls13Only,
        https_server::Versions::Tls12Only,
    ] {
        let heap = runtime.block_on(measure(versions));
        println!("{versions:?}: {heap:?}");
        // Measured (rustls 0.23.46, ring, tokio 1.54, x86_64): TLS 1.3 9,974 / 8,678 / 11,037 /
        // 55,922 / 3,404 bytes; TLS 1.2 9,622 / 8,946 / 9,213 / 54,098 / 1,973.
        let within = |what: &str, value: isize, range: std::ops::RangeInclusive<isize>| {
            assert!(
                range.contains(&value),
                "{versions:?} {what}: {value} bytes, outside {range:?}: {heap:?}"
            );
        };
        within("handshake peak", heap.handshake_peak, 8_000..=12_000);
        within("idle session", heap.session, 7_000..=11_000);
        within("small POSTs peak", heap.posts_peak, 8_000..=13_000);
        within("large POST peak", heap.large_post_peak, 45_000..=65_000);
        // What stays after the session: the tickets (TLS 1.3) or the session id (TLS 1.2) the
        // ClientConfig keeps for resumption.
        within("after the session", heap.after_drop, 1_000..=5_000);
    }
}
