//! rawpost against a real server: the scenarios of `.ci/interop`, run against nginx on loopback
//! over plain TCP, over TLS 1.3 (embedded-tls), and over TLS 1.2 (rustls, through
//! examples/support/rustls_stream.rs).
//!
//! ```text
//! cargo run --example interop -- --plain PORT --plain-idle PORT \
//!     [--tls PORT --tls-idle PORT --ca ROOT.pem] [--tls12 PORT --tls12-idle PORT --ca ROOT.pem]
//! ```
//!
//! `--plain`/`--tls` serve the locations below with a long keep-alive timeout; `--plain-idle`
//! and `--tls-idle` the same with `keepalive_timeout 1s`, to see a server close an idle
//! connection. `--tls12`/`--tls12-idle` are the same over TLS 1.2 only (`ssl_protocols
//! TLSv1.2`): rawpost runs there over rustls, root pinned through rustls's verifier, and
//! embedded-tls (TLS 1.3 only) must be refused with rawpost's explanation. The server is
//! `api.example.test` on 127.0.0.1; `--ca` is the root to pin.
//!
//! | location | what nginx does |
//! |---|---|
//! | `/echo` | echoes the request body (chunked response) |
//! | `/close` | echoes it with `chunked_transfer_encoding off`: delimited by closing the connection |
//! | `/small` | `client_max_body_size 1k`: a larger body is refused with 413 |
//! | `/hello` | `hello` and a Content-Length |
//!
//! It prints one line per scenario (`ok <transport> <scenario>: <detail>` or `FAIL …`) and exits
//! with 1 if any failed. `.ci/interop` also checks nginx's access log (one connection for the
//! 20 keep-alive POSTs; TLS 1.3 on the `--tls` port, TLS 1.2 on the `--tls12` port).

#[path = "support/rustls_stream.rs"]
mod rustls_stream;
#[path = "support/tokio_tcp.rs"]
mod tokio_tcp;
#[path = "support/tokio_timer.rs"]
mod tokio_timer;

use std::cell::Cell;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use embedded_io_async::{ErrorType, Read, ReadReady, Write};
use rand_core::OsRng;
use rawpost::tls::{PinnedProvider, TimeSource, TlsConnector, TrustAnchor};
use rawpost::{
    Attempt, Client, ClientError, Connect, Connection, ConnectionError, Error, Exchange, Framing,
    Host, Request, Response, Timeouts, Timer,
};
use rustls_stream::{PinnedCa, RustlsStream};
use tokio_tcp::TokioTcp;
use tokio_timer::TokioTimer;

const HOST: Host<'static> = Host::new("api.example.test");

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |flag: &str| -> Option<u16> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1)?.parse().ok()
    };
    let (Some(plain), Some(plain_idle)) = (port("--plain"), port("--plain-idle")) else {
        eprintln!(
            "usage: interop --plain PORT --plain-idle PORT [--tls PORT --tls-idle PORT] \
             [--tls12 PORT --tls12-idle PORT] [--ca ROOT.pem]"
        );
        return ExitCode::from(2);
    };
    let mut failures = 0;
    let counter = Counter::default();
    failures += scenarios(
        "tcp",
        &mut Tcp(plain, counter.clone()),
        Some(&mut Tcp(plain_idle, counter.clone())),
    )
    .await;
    let tls_ports = (port("--tls"), port("--tls-idle"));
    let tls12_ports = (port("--tls12"), port("--tls12-idle"));
    let pem = if tls_ports.0.is_some() || tls12_ports.0.is_some() {
        let Some(ca) = args
            .iter()
            .position(|a| a == "--ca")
            .and_then(|i| args.get(i + 1))
        else {
            eprintln!("--tls and --tls12 need --ca ROOT.pem");
            return ExitCode::from(2);
        };
        match std::fs::read(ca) {
            Ok(pem) => pem,
            Err(e) => {
                eprintln!("--ca {ca}: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        Vec::new()
    };
    if let (Some(tls), Some(tls_idle)) = tls_ports {
        let (mut der, mut der2) = (vec![0u8; 2048], vec![0u8; 2048]);
        let anchors = TrustAnchor::from_pem(&pem, &mut der)
            .and_then(|a| TrustAnchor::from_pem(&pem, &mut der2).map(|b| (a, b)));
        let (anchor, anchor2) = match anchors {
            Ok(anchors) => anchors,
            Err(e) => {
                eprintln!("--ca: {e}");
                return ExitCode::from(2);
            }
        };
        let clock: fn() -> Option<u64> = unix_now;
        let (mut r1, mut w1, mut r2, mut w2) = (
            vec![0; 16_640],
            vec![0; 4096],
            vec![0; 16_640],
            vec![0; 4096],
        );
        failures += scenarios(
            "tls",
            &mut Tls::new(
                Tcp(tls, counter.clone()),
                &mut r1,
                &mut w1,
                PinnedProvider::new(OsRng, anchor, TimeSource::clock(clock)),
            ),
            Some(&mut Tls::new(
                Tcp(tls_idle, counter.clone()),
                &mut r2,
                &mut w2,
                PinnedProvider::new(OsRng, anchor2, TimeSource::clock(clock)),
            )),
        )
        .await;
    }
    if let (Some(tls12), Some(tls12_idle)) = tls12_ports {
        // The same root, in a rustls RootCertStore of its own; the client offers TLS 1.3 and
        // 1.2, the server speaks 1.2 only.
        let pin = match PinnedCa::from_pem(&pem, 0, rustls_stream::ALL_VERSIONS) {
            Ok(pin) => pin,
            Err(e) => {
                eprintln!("--ca: {e}");
                return ExitCode::from(2);
            }
        };
        let mut rustls = Rustls {
            port: tls12,
            pin: pin.clone(),
            counter: counter.clone(),
        };
        failures += scenarios("rustls-tls12", &mut rustls, None::<&mut Tcp>).await;
        failures += report(
            "rustls-tls12",
            "idle close seen before writing (ReadReady)",
            idle_close_seen_first(tls12_idle, &pin).await,
        );
        failures += report(
            "tls12",
            "embedded-tls refused with its explanation",
            embedded_tls_refused(tls12, &pem).await,
        );
    }
    if failures > 0 {
        println!("{failures} scenario(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Counts the bytes written to the connections a connector opened last.
type Counter = Rc<Cell<usize>>;

/// A connector whose streams count what is written to them.
trait Counts {
    /// The counter of the last connection opened.
    fn counter(&self) -> Counter;
}

/// Opens plain TCP connections to 127.0.0.1:port (with `TCP_NODELAY`, as a device's stack
/// sends small segments at once).
struct Tcp(u16, Counter);

impl Connect for Tcp {
    type StreamError = std::io::Error;
    type Stream<'c> = Counted<TokioTcp>;
    type Error = std::io::Error;

    async fn connect(&mut self, _host: Host<'_>) -> Result<Self::Stream<'_>, std::io::Error> {
        let tcp = TokioTcp::connect(("127.0.0.1", self.0)).await?;
        self.1.set(0);
        Ok(Counted {
            inner: tcp,
            written: self.1.clone(),
        })
    }
}

impl Counts for Tcp {
    fn counter(&self) -> Counter {
        self.1.clone()
    }
}

fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// TLS 1.3 over the TCP connector: `rawpost::tls::TlsConnector`, root pinned, system clock.
type Tls<'b> = TlsConnector<'b, Tcp, OsRng, fn() -> Option<u64>>;

impl Counts for Tls<'_> {
    fn counter(&self) -> Counter {
        self.transport_ref().counter()
    }
}

/// A stream that counts the bytes written through it.
struct Counted<S> {
    inner: S,
    written: Counter,
}

impl<S: ErrorType> ErrorType for Counted<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Counted<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        self.inner.read(buf).await
    }
}

impl<S: ReadReady> ReadReady for Counted<S> {
    fn read_ready(&mut self) -> Result<bool, S::Error> {
        self.inner.read_ready()
    }
}

impl<S: Write> Write for Counted<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        let n = self.inner.write(buf).await?;
        self.written.set(self.written.get() + n);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), S::Error> {
        self.inner.flush().await
    }
}

type Outcome = Result<String, String>;

fn report(transport: &str, name: &str, outcome: Outcome) -> usize {
    match outcome {
        Ok(detail) => {
            println!("ok {transport} {name}: {detail}");
            0
        }
        Err(why) => {
            println!("FAIL {transport} {name}: {why}");
            1
        }
    }
}

/// A body of `n` bytes that differs at every position, so that a shifted or truncated echo
/// shows.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 36) % 36])
        .collect()
}

async fn read_all<S: Read + Write, T: Timer>(
    resp: &mut Response<'_, '_, S, T>,
) -> Result<Vec<u8>, Error<S::Error>> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 1500];
    loop {
        match resp.read(&mut chunk).await? {
            0 => return Ok(body),
            n => body.extend_from_slice(&chunk[..n]),
        }
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn e<E: core::fmt::Debug>(e: Error<E>) -> String {
    format!("{} ({e:?})", e.name())
}

/// Every scenario over the transport `main` opens, and, with `idle` (the server that closes idle
/// connections after a second), the idle-close scenarios. Returns how many failed.
async fn scenarios<C: Connect + Counts, I: Connect>(
    transport: &str,
    main: &mut C,
    idle: Option<&mut I>,
) -> usize
where
    C::StreamError: core::fmt::Debug,
{
    let mut failed = 0;
    let mut buf = vec![0u8; 2048];
    let counter = main.counter();
    macro_rules! scenario {
        ($name:expr, $conn:ident => $body:expr) => {{
            let outcome: Outcome = async {
                let stream = main
                    .connect(HOST)
                    .await
                    .map_err(|e| format!("connect: {e:?}"))?;
                let mut $conn = Connection::new(stream, &mut buf, HOST).timed(
                    TokioTimer::new(),
                    Timeouts {
                        continue_ms: Some(10_000),
                        ..Timeouts::default()
                    },
                );
                $body
            }
            .await;
            failed += report(transport, $name, outcome);
        }};
    }

    scenario!("echo POST, byte-exact", conn => {
        let json = pattern(100);
        let req = Request::post("/echo?s=echo")
            .with_headers(&[("Content-Type", "application/json")])
            .with_body(&json);
        let mut resp = conn.send(&req).await.map_err(e)?;
        check(resp.status() == 200, || format!("status {}", resp.status()))?;
        let framing = resp.framing();
        let body = read_all(&mut resp).await.map_err(e)?;
        check(body == json, || format!("echo differs: {} bytes", body.len()))?;
        check(conn.is_reusable(), || "not reusable".into())?;
        Ok(format!("{} bytes echoed, framing {framing:?}", body.len()))
    });

    scenario!("close-delimited response", conn => {
        let sent = pattern(3000);
        let mut resp = conn.send(&Request::post("/close?s=close").with_body(&sent)).await.map_err(e)?;
        let framing = resp.framing();
        check(framing == Framing::UntilClose, || format!("framing {framing:?}"))?;
        let body = read_all(&mut resp).await.map_err(e)?;
        check(body == sent, || format!("body differs: {} bytes", body.len()))?;
        check(resp.is_complete() && !conn.is_reusable(), || "state".into())?;
        Ok(format!("{} bytes, complete at the close", body.len()))
    });

    scenario!("20 POSTs on one connection", conn => {
        for i in 0..20 {
            let sent = pattern(50 + i);
            let mut resp = conn
                .send(&Request::post("/echo?s=keepalive").with_body(&sent))
                .await
                .map_err(|x| format!("POST {i}: {}", e(x)))?;
            let body = read_all(&mut resp).await.map_err(e)?;
            check(body == sent, || format!("POST {i}: echo differs"))?;
        }
        check(conn.is_reusable(), || "not reusable after 20".into())?;
        Ok("20 echoes, connection still reusable (access log: one connection)".into())
    });

    scenario!("1 MiB chunked upload", conn => {
        let sent = pattern(1 << 20);
        let mut w = conn
            .send_streaming(&Request::post("/echo?s=upload"), None)
            .await
            .map_err(e)?;
        for piece in sent.chunks(4000) {
            w.write_all(piece).await.map_err(e)?;
        }
        let mut resp = w.finish().await.map_err(e)?;
        check(resp.status() == 200, || format!("status {}", resp.status()))?;
        let body = read_all(&mut resp).await.map_err(e)?;
        check(body == sent, || format!("echo differs: {} bytes", body.len()))?;
        Ok(format!("{} bytes up and back", body.len()))
    });

    scenario!("Expect: 100-continue", conn => {
        let sent = pattern(10_000);
        let req = Request::post("/echo?s=expect")
            .with_headers(&[("Expect", "100-continue")])
            .with_body(&sent);
        let start = Instant::now();
        let mut resp = conn.send(&req).await.map_err(e)?;
        let body = read_all(&mut resp).await.map_err(e)?;
        let took = start.elapsed();
        check(body == sent, || "echo differs".into())?;
        // The continue wait is 10 s: the body went after nginx's 100, not after the wait.
        check(took < Duration::from_secs(5), || format!("took {took:?}: no 100 Continue?"))?;
        Ok(format!("body sent after 100 Continue, echoed in {} ms", took.as_millis()))
    });

    scenario!("Expect: 100-continue refused with 413", conn => {
        let sent = pattern(10_000);
        let req = Request::post("/small?s=expect413")
            .with_headers(&[("Expect", "100-continue")])
            .with_body(&sent);
        let resp = conn.send(&req).await.map_err(e)?;
        let (status, keeps) = (resp.status(), resp.keeps_connection());

        check(status == 413, || format!("status {status}"))?;
        check(!keeps && !conn.is_reusable(), || "reusable after an unsent body".into())?;
        let written = counter.get();
        check(written < sent.len(), || format!("{written} bytes written: the body was sent"))?;
        Ok(format!("413 before the body; {written} bytes written (the head only)"))
    });

    scenario!("HEAD then POST", conn => {
        let resp = conn.send(&Request::head("/hello?s=head")).await.map_err(e)?;
        let len = resp.content_length();
        check(resp.status() == 200 && resp.is_complete(), || "HEAD".into())?;

        let sent = pattern(64);
        let mut resp = conn.send(&Request::post("/echo?s=head").with_body(&sent)).await.map_err(e)?;
        let body = read_all(&mut resp).await.map_err(e)?;
        check(body == sent, || "echo differs".into())?;
        Ok(format!("HEAD ({len:?}), then an exact echo on the same connection"))
    });

    let Some(idle) = idle else {
        return failed;
    };
    // The server closes idle connections after 1 s.
    let outcome: Outcome = async {
        let stream = idle
            .connect(HOST)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let mut conn = Connection::new(stream, &mut buf, HOST);
        let req = Request::post("/echo?s=idle").with_body(b"{}");
        let mut resp = conn.send(&req).await.map_err(e)?;
        read_all(&mut resp).await.map_err(e)?;
        check(conn.is_reusable(), || "not reusable".into())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Written into the connection the server closed: the end comes after the request.
        match conn.send(&req).await {
            Err(Error::Connection(ConnectionError::Dropped)) => {}
            Err(other) => return Err(format!("want Dropped, got {}", e(other))),
            Ok(_) => return Err("the server did not close the idle connection".into()),
        }
        check(!conn.may_resend(), || {
            "a POST that may have reached the server may not be resent".into()
        })?;
        Ok("Dropped: written into the connection the server had closed".into())
    }
    .await;
    failed += report(transport, "idle connection closed by the server", outcome);

    // The same, checked before writing: the close is seen, nothing is written.
    let outcome: Outcome = async {
        let stream = idle
            .connect(HOST)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let mut conn = Connection::new(stream, &mut buf, HOST).check_before_send();
        let req = Request::post("/echo?s=idle-checked").with_body(b"{}");
        let mut resp = conn.send(&req).await.map_err(e)?;
        read_all(&mut resp).await.map_err(e)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        match conn.send(&req).await {
            Err(Error::Connection(ConnectionError::ClosedByServer)) => {}
            Err(other) => return Err(format!("want ClosedByServer, got {}", e(other))),
            Ok(_) => return Err("the server did not close the idle connection".into()),
        }
        check(conn.may_resend(), || {
            "a request never written may be resent".into()
        })?;
        Ok("ClosedByServer: found before writing".into())
    }
    .await;
    failed += report(transport, "idle close found before writing", outcome);

    let outcome: Outcome = async {
        let mut job = IdleThenAgain {
            sent: pattern(80),
            done: 0,
            attempts: Vec::new(),
        };
        let mut client = Client::new(&mut *idle, &mut buf, HOST);
        match client.run(&mut job).await {
            Ok(()) => {}
            Err(ClientError::Connect(c)) => return Err(format!("connect: {c:?}")),
            Err(ClientError::Exchange(x)) => return Err(e(x)),
            Err(other) => return Err(format!("{other:?}")),
        }
        check(job.attempts == [Attempt::New, Attempt::New], || {
            format!("attempts {:?}", job.attempts)
        })?;
        check(client.connections_opened() == 2, || {
            format!("{} connections", client.connections_opened())
        })?;
        Ok(
            "the client found the closed connection before writing and sent the POST on a new one"
                .into(),
        )
    }
    .await;
    failed += report(transport, "idle close through Client", outcome);
    failed
}

/// Posts, waits past the server's keep-alive timeout, posts again: the client finds the closed
/// connection before writing the second POST (not idempotent) and sends it on a new one.
struct IdleThenAgain {
    sent: Vec<u8>,
    done: usize,
    attempts: Vec<Attempt>,
}

impl Exchange for IdleThenAgain {
    type Output = ();

    async fn exchange<S: Read + Write, T: Timer>(
        &mut self,
        conn: &mut Connection<'_, S, T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<()>, Error<S::Error>> {
        self.attempts.push(attempt);
        let req = Request::post("/echo?s=client").with_body(&self.sent);
        let mut resp = conn.send(&req).await?;
        let body = read_all(&mut resp).await?;
        assert_eq!(body, self.sent);
        self.done += 1;
        if self.done == 2 {
            return Ok(ControlFlow::Break(()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(ControlFlow::Continue(()))
    }
}

/// rawpost over rustls to 127.0.0.1:port (TCP_NODELAY), root pinned through rustls's verifier;
/// each session must have negotiated TLS 1.2.
struct Rustls {
    port: u16,
    pin: PinnedCa,
    counter: Counter,
}

impl Connect for Rustls {
    type StreamError = std::io::Error;
    type Stream<'c> = Counted<RustlsStream>;
    type Error = std::io::Error;

    async fn connect(&mut self, host: Host<'_>) -> Result<Self::Stream<'_>, std::io::Error> {
        let tls = rustls_stream::connect_tcp(("127.0.0.1", self.port), host, &self.pin).await?;
        tls12(&tls).map_err(std::io::Error::other)?;
        self.counter.set(0);
        Ok(Counted {
            inner: tls,
            written: self.counter.clone(),
        })
    }
}

impl Counts for Rustls {
    fn counter(&self) -> Counter {
        self.counter.clone()
    }
}

/// `Ok` when the session speaks TLS 1.2.
fn tls12(tls: &RustlsStream) -> Result<(), String> {
    match tls.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => Ok(()),
        other => Err(format!("negotiated {other:?}, want TLSv1_2")),
    }
}

/// A POST on a connection the server (keepalive_timeout 1s) then closes while it is idle:
/// `check_closed` (through the stream's `ReadReady`) sees the close before anything is
/// written, so the next POST is refused with `ClosedByServer` and may go on a new connection.
async fn idle_close_seen_first(port: u16, pin: &PinnedCa) -> Outcome {
    let tls = rustls_stream::connect_tcp(("127.0.0.1", port), HOST, pin)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tls12(&tls)?;
    let suite = tls
        .cipher_suite()
        .map_or("(none)".to_owned(), |s| format!("{:?}", s.suite()));
    let mut buf = vec![0u8; 2048];
    let mut conn = Connection::new(tls, &mut buf, HOST);
    let req = Request::post("/echo?s=idle12").with_body(b"{}");
    let mut resp = conn.send(&req).await.map_err(e)?;
    read_all(&mut resp).await.map_err(e)?;
    check(!conn.check_closed().await.map_err(e)?, || {
        "closed right after the exchange".into()
    })?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // nginx ends an idle kept-alive TLS session with close_notify (measured with 1.22): a
    // clean end, `Ok(true)`.
    match conn.check_closed().await {
        Ok(true) => {}
        Ok(false) => return Err("the idle close was not seen".into()),
        Err(other) => return Err(format!("check_closed: {}", e(other))),
    }
    match conn.send(&req).await {
        Err(Error::Connection(ConnectionError::ClosedByServer)) => {}
        Err(other) => return Err(format!("want ClosedByServer, got {}", e(other))),
        Ok(_) => return Err("the request went into the closed connection".into()),
    }
    check(conn.may_resend(), || {
        "no byte was written: the POST may go on a new connection".into()
    })?;
    Ok(format!(
        "TLS 1.2 ({suite}): check_closed saw the close_notify; the next POST was refused before \
         writing, resendable"
    ))
}

/// embedded-tls (TLS 1.3 only) against the TLS 1.2-only server: refused, with rawpost's
/// explanation.
async fn embedded_tls_refused(port: u16, pem: &[u8]) -> Outcome {
    let mut der = vec![0u8; 2048];
    let anchor = TrustAnchor::from_pem(pem, &mut der).map_err(|e| format!("--ca: {e}"))?;
    let clock: fn() -> Option<u64> = unix_now;
    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(clock));
    let tcp = TokioTcp::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 4096]);
    let opened =
        rawpost::tls::TlsStream::open(tcp, &mut read, &mut write, HOST, &mut provider).await;
    let refusal = match opened {
        Ok(_) => return Err("embedded-tls opened a session with the TLS 1.2-only server".into()),
        Err(refusal) => refusal.to_string(),
    };
    check(
        refusal.starts_with("TLS handshake failed: the server does not speak TLS 1.3"),
        || format!("unexpected explanation: {refusal}"),
    )?;
    Ok(refusal)
}
