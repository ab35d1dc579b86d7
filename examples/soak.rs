//! The driver of the device-life soak (`.ci/soak`, described in `docs/reliability.md`): three
//! devices, each a `rawpost::Client` that keeps one connection for its life, POST readings to
//! nginx over TLS 1.3, nginx over plain TCP and Apache over TLS 1.3 at random intervals, and
//! write down what the caller saw for each reading.
//!
//! ```text
//! cargo run --example soak --features embedded-tls -- --nginx-tls PORT --nginx-tcp PORT \
//!     --apache-tls PORT --ca ROOT.pem --out RESULTS.jsonl [--seed N] [--per-device N] \
//!     [--reload CMD]
//! ```
//!
//! - Reading `i` (from 0) of a device has the sequence number `base + 1 + i` (nginx-tls 1001…,
//!   nginx-tcp 2001…, apache-tls 3001…); it goes in the query (`POST /soak?seq=N`) and in the
//!   JSON body, which the servers echo. Before each reading the device waits 50–1,200 ms, drawn
//!   from a seeded generator (the seed is printed), so the waits straddle the servers' 500 ms
//!   keep-alive timeout. No POST is marked idempotent.
//! - When half of all readings have been taken, `--reload CMD` runs once (`.ci/soak` reloads
//!   both servers gracefully), run by the first device then about to wait for its next reading
//!   on a kept connection, right after its last response; that device then waits only
//!   100–250 ms, so its next reading goes into a connection the reload closed, not the
//!   keep-alive timeout.
//! - Each reading's fate goes to `--out`, one JSON object a line: `delivered` (a 2xx whose echo
//!   carries its sequence number), `reported` (the client returned an error: its text, and
//!   whether it says the server may have processed the request), `status` (a response that is
//!   not 2xx) or `mismatched` (a 2xx that echoes another body). With it, where the request was
//!   written: which connection (its client port, which the servers log too), the how-manyth
//!   request on it, and how long it had been idle. `.ci/soak` compares this with the servers'
//!   access logs.
//!
//! Everything that touches rawpost's `Client` API is in [`device`]'s module `port`; the rest
//! (connectors, timer, plan, bookkeeping) stays as it is when that API changes.

#[path = "support/tokio_timer.rs"]
mod tokio_timer;

use std::cell::{Cell, RefCell};
use std::fmt::{Debug, Display, Write as _};
use std::io::Write as _;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, ReadReady, Write};
use rand_core::OsRng;
use rawpost::tls::{PinnedProvider, TimeSource, TlsConnector, TrustAnchor};
use rawpost::{Connect, Host};
use tokio::net::TcpStream;
use tokio_timer::TokioTimer;

const HOST: Host<'static> = Host::new("api.example.test");
/// The shortest and longest wait before a reading.
const WAIT_MS: (u64, u64) = (50, 1_200);
/// The wait before the reading that follows the reload, on the device that ran it (the reload
/// itself takes 40–150 ms here).
const AFTER_RELOAD_MS: (u64, u64) = (100, 250);
/// No reading is taken after this long; the ones left count as not sent (and fail the soak).
const BUDGET: Duration = Duration::from_secs(150);

// --- the one place that uses rawpost's Client API ---------------------------------------------

/// A device's life: every reading of `plan`, posted through one `rawpost::Client` over
/// `connector`, each fate told to `sink`. **This module is the only one that uses the `Client`
/// API**; port it when that API changes.
mod port {
    use core::ops::ControlFlow;

    use embedded_io_async::{Read, Write};
    use rawpost::{
        Attempt, Client, Connect, Connection, Error, Exchange, Request, Timeouts, Timer,
    };

    use super::{Plan, Sink, TokioTimer, HOST};

    /// Posts every reading of `plan` through one `Client` on `connector` and tells `sink` the
    /// fate of each: [`Sink::answered`] or [`Sink::reported`].
    ///
    /// The client checks a kept connection before each request (the stream's `ReadReady`, and
    /// `max_idle`: nginx announces no keep-alive timeout, 400 ms is below its 500 ms), opens a
    /// new one and sends the reading there when the last one is over, and ends `run` only with
    /// a failure it could not mend: the reading in flight is then reported, with whether the
    /// server may have processed it, and `run` is called again for the next one.
    pub async fn device<C: Connect>(connector: C, plan: &mut Plan, sink: &Sink) {
        let mut buf = vec![0u8; 4096];
        let mut client = Client::new(connector, &mut buf, HOST)
            .timed(TokioTimer::new(), Timeouts::default())
            .max_idle(Some(400));
        let mut job = Readings {
            plan,
            sink,
            pending: None,
        };
        let mut connect_failures = 0;
        loop {
            match client.run(&mut job).await {
                Ok(()) => return,
                Err(e) => match job.pending.take() {
                    Some(seq) => sink.reported(seq, &e, &e, Some(e.may_have_been_processed())),
                    // No reading in flight: the connection for the next one failed to open (the
                    // next `run` waits the client's backoff first).
                    None => {
                        sink.connect_failed(&e);
                        connect_failures += 1;
                        if connect_failures > 20 {
                            return;
                        }
                    }
                },
            }
        }
    }

    /// One reading per exchange; a resend carries the reading in flight.
    struct Readings<'p, 's> {
        plan: &'p mut Plan,
        sink: &'s Sink,
        /// The reading in flight.
        pending: Option<u64>,
    }

    impl Exchange for Readings<'_, '_> {
        type Output = ();

        async fn exchange<S: Read + Write, T: Timer>(
            &mut self,
            conn: &mut Connection<'_, S, T>,
            attempt: Attempt,
        ) -> Result<ControlFlow<()>, Error<S::Error>> {
            let seq = match (attempt, self.pending) {
                (Attempt::Resend, Some(seq)) => seq,
                _ => match self.plan.next().await {
                    Some(seq) => seq,
                    None => return Ok(ControlFlow::Break(())),
                },
            };
            self.pending = Some(seq);
            let (path, body) = (self.plan.path(seq), self.plan.body(seq));
            let req = Request::post(&path)
                .with_headers(&[("Content-Type", "application/json")])
                .with_body(&body);
            let mut resp = conn.send(&req).await?;
            let status = resp.status();
            let mut echo = [0u8; 1024];
            let n = resp.read_to_end(&mut echo).await?;
            self.pending = None;
            self.sink.answered(seq, status, &echo[..n]);
            Ok(ControlFlow::Continue(()))
        }
    }
}

use port::device;

// --- the run ----------------------------------------------------------------------------------

struct Args {
    nginx_tls: u16,
    nginx_tcp: u16,
    apache_tls: u16,
    ca: String,
    out: String,
    seed: u64,
    per_device: u64,
    reload: Option<String>,
}

fn args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| -> Option<&String> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1)
    };
    let num = |flag: &str| -> Result<Option<u64>, String> {
        get(flag)
            .map(|v| v.parse().map_err(|_| format!("{flag} {v}: not a number")))
            .transpose()
    };
    let port = |flag: &str| -> Result<u16, String> {
        let v = num(flag)?.ok_or(format!("{flag} PORT is missing"))?;
        u16::try_from(v).map_err(|_| format!("{flag} {v}: not a port"))
    };
    let seed = match num("--seed")? {
        Some(seed) => seed,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000),
    };
    Ok(Args {
        nginx_tls: port("--nginx-tls")?,
        nginx_tcp: port("--nginx-tcp")?,
        apache_tls: port("--apache-tls")?,
        ca: get("--ca").ok_or("--ca ROOT.pem is missing")?.clone(),
        out: get("--out").ok_or("--out FILE is missing")?.clone(),
        seed,
        per_device: num("--per-device")?.unwrap_or(80),
        reload: get("--reload").cloned(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("soak: {e}");
            eprintln!("usage: soak --nginx-tls PORT --nginx-tcp PORT --apache-tls PORT --ca ROOT.pem --out FILE [--seed N] [--per-device N] [--reload CMD]");
            return ExitCode::from(2);
        }
    };
    let pem = match std::fs::read(&args.ca) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("soak: --ca {}: {e}", args.ca);
            return ExitCode::from(2);
        }
    };
    let out = match std::fs::File::create(&args.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("soak: --out {}: {e}", args.out);
            return ExitCode::from(2);
        }
    };
    println!(
        "soak: seed {} (SOAK_SEED={} repeats the waits), {} POSTs per device, waits {}-{} ms",
        args.seed, args.seed, args.per_device, WAIT_MS.0, WAIT_MS.1
    );
    let shared = Rc::new(Shared {
        start: Instant::now(),
        taken: Cell::new(0),
        planned: 3 * args.per_device,
        reload: RefCell::new(args.reload.clone()),
        out: RefCell::new(std::io::BufWriter::new(out)),
    });

    // Each device: its connector (TCP, or TCP + TLS with the root pinned), wired to count the
    // connections and see where each request is written; its plan; its sink.
    let (mut der1, mut der2) = (vec![0u8; 2048], vec![0u8; 2048]);
    let anchors = TrustAnchor::from_pem(&pem, &mut der1)
        .and_then(|a| TrustAnchor::from_pem(&pem, &mut der2).map(|b| (a, b)));
    let (anchor1, anchor2) = match anchors {
        Ok(anchors) => anchors,
        Err(e) => {
            eprintln!("soak: --ca {}: {e}", args.ca);
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
    let devices = [
        ("nginx-tls", 1000),
        ("nginx-tcp", 2000),
        ("apache-tls", 3000),
    ]
    .map(|(name, base)| {
        let index = base / 1000 - 1;
        let sink = Sink::new(name, shared.clone());
        let plan = Plan::new(
            name,
            base,
            args.per_device,
            args.seed,
            index,
            shared.clone(),
            sink.wire.clone(),
        );
        (plan, sink)
    });
    let [(mut p1, s1), (mut p2, s2), (mut p3, s3)] = devices;
    let nginx_tls = Wired::new(
        TlsConnector::new(
            Tcp(args.nginx_tls, s1.wire.clone()),
            &mut r1,
            &mut w1,
            PinnedProvider::new(OsRng, anchor1, TimeSource::clock(clock)),
        ),
        s1.wire.clone(),
    );
    let nginx_tcp = Wired::new(Tcp(args.nginx_tcp, s2.wire.clone()), s2.wire.clone());
    let apache_tls = Wired::new(
        TlsConnector::new(
            Tcp(args.apache_tls, s3.wire.clone()),
            &mut r2,
            &mut w2,
            PinnedProvider::new(OsRng, anchor2, TimeSource::clock(clock)),
        ),
        s3.wire.clone(),
    );
    tokio::join!(
        device(nginx_tls, &mut p1, &s1),
        device(nginx_tcp, &mut p2, &s2),
        device(apache_tls, &mut p3, &s3),
    );

    let mut unsent = 0;
    for (plan, sink) in [(&p1, &s1), (&p2, &s2), (&p3, &s3)] {
        let c = sink.counts.get();
        let wire = sink.wire.borrow();
        println!(
            "soak: {:<10} sent {:>3} delivered {:>3} reported {:>3} status {} mismatched {} connections {:>3} (failed to open {})",
            sink.name, plan.taken, c.delivered, c.reported, c.status, c.mismatched, wire.opened, wire.connect_failures
        );
        if plan.taken < plan.count {
            println!(
                "soak: {}: {} of {} readings not sent (time budget or connections that did not open)",
                sink.name,
                plan.count - plan.taken,
                plan.count
            );
            unsent += plan.count - plan.taken;
            shared.record(&format!(
                r#"{{"event":"unsent","device":"{}","count":{}}}"#,
                sink.name,
                plan.count - plan.taken
            ));
        }
    }
    let opened: u32 = [&s1, &s2, &s3].iter().map(|s| s.wire.borrow().opened).sum();
    shared.record(&format!(
        r#"{{"event":"end","t_ms":{},"connections":{opened}}}"#,
        shared.ms()
    ));
    if let Err(e) = shared.out.borrow_mut().flush() {
        eprintln!("soak: --out {}: {e}", args.out);
        return ExitCode::FAILURE;
    }
    println!(
        "soak: driver done in {:.1} s",
        shared.start.elapsed().as_secs_f64()
    );
    // The verdict is .ci/soak's, from the ledger; the driver fails only if it could not send.
    if unsent > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What the devices share: the clock, the count of readings taken (for the midpoint), the
/// reload command, the results file.
struct Shared {
    start: Instant,
    taken: Cell<u64>,
    planned: u64,
    reload: RefCell<Option<String>>,
    out: RefCell<std::io::BufWriter<std::fs::File>>,
}

impl Shared {
    fn ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn record(&self, line: &str) {
        let mut out = self.out.borrow_mut();
        // A results file that cannot be written fails at the final flush.
        let _ = writeln!(out, "{line}");
    }

    /// Runs the reload command once, when half the readings have been taken; says whether it
    /// ran now. `next` is the reading that will follow it on the device that ran it.
    async fn maybe_reload(&self, device: &str, next: u64) -> bool {
        if self.taken.get() < self.planned / 2 {
            return false;
        }
        let Some(cmd) = self.reload.borrow_mut().take() else {
            return false;
        };
        let at = self.ms();
        let ran = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .output()
        })
        .await;
        let (ok, detail) = match ran {
            Ok(Ok(o)) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            ),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, e.to_string()),
        };
        let took = self.ms() - at;
        println!(
            "soak: reload at {:.1} s after {} readings ({} ms; {device} sends {next} {}-{} ms later){}",
            at as f64 / 1000.0,
            self.taken.get(),
            took,
            AFTER_RELOAD_MS.0,
            AFTER_RELOAD_MS.1,
            if ok {
                String::new()
            } else {
                format!(" FAILED: {detail}")
            }
        );
        self.record(&format!(
            r#"{{"event":"reload","t_ms":{at},"took_ms":{took},"ok":{ok},"device":"{device}","probe":{next},"detail":{}}}"#,
            json_str(&detail)
        ));
        true
    }
}

/// One device's readings: their sequence numbers and the waits before them.
struct Plan {
    name: &'static str,
    base: u64,
    count: u64,
    taken: u64,
    rng: SplitMix64,
    shared: Rc<Shared>,
    /// The device's connections, to see whether it holds a kept one.
    wire: Rc<RefCell<Wire>>,
}

impl Plan {
    fn new(
        name: &'static str,
        base: u64,
        count: u64,
        seed: u64,
        index: u64,
        shared: Rc<Shared>,
        wire: Rc<RefCell<Wire>>,
    ) -> Self {
        Self {
            name,
            base,
            count,
            taken: 0,
            rng: SplitMix64(seed ^ (index + 1).wrapping_mul(0xA076_1D64_78BD_642F)),
            shared,
            wire,
        }
    }

    /// Waits before the next reading and returns its sequence number; `None` when all are
    /// taken (or the time budget is spent).
    ///
    /// Called right after the last reading's response (or a new connection). The first device
    /// that finds the midpoint reached while it holds a kept connection (one that carried a
    /// response and has not ended) runs the reload at once and sends its next reading
    /// [`AFTER_RELOAD_MS`] later: into a connection the reload closed well before the
    /// keep-alive timeout would have.
    async fn next(&mut self) -> Option<u64> {
        if self.taken == self.count {
            return None;
        }
        let draw = self.rng.next();
        let kept = self.wire.borrow().kept;
        let wait = if kept
            && self
                .shared
                .maybe_reload(self.name, self.base + self.taken + 1)
                .await
        {
            AFTER_RELOAD_MS.0 + draw % (AFTER_RELOAD_MS.1 - AFTER_RELOAD_MS.0 + 1)
        } else {
            WAIT_MS.0 + draw % (WAIT_MS.1 - WAIT_MS.0 + 1)
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if self.shared.start.elapsed() > BUDGET {
            return None;
        }
        self.taken += 1;
        self.shared.taken.set(self.shared.taken.get() + 1);
        Some(self.base + self.taken)
    }

    fn path(&self, seq: u64) -> String {
        format!("/soak?seq={seq}")
    }

    fn body(&self, seq: u64) -> Vec<u8> {
        format!(
            r#"{{"seq":{seq},"device":"{}","reading":{}.{:02}}}"#,
            self.name,
            20 + seq % 7,
            seq % 100
        )
        .into_bytes()
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same waits.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Clone, Copy, Default)]
struct Counts {
    delivered: u64,
    reported: u64,
    status: u64,
    mismatched: u64,
}

/// Where a device's outcomes go: counted here, and one JSON line each in the results file.
struct Sink {
    name: &'static str,
    shared: Rc<Shared>,
    wire: Rc<RefCell<Wire>>,
    counts: Cell<Counts>,
}

impl Sink {
    fn new(name: &'static str, shared: Rc<Shared>) -> Self {
        Self {
            name,
            shared,
            wire: Rc::default(),
            counts: Cell::default(),
        }
    }

    /// The request `seq` got a response: `status`, and `body` read to its end.
    fn answered(&self, seq: u64, status: u16, body: &[u8]) {
        let echoed = echoed_seq(body);
        let outcome = match (status, echoed) {
            (200..=299, Some(s)) if s == seq => "delivered",
            (200..=299, _) => "mismatched",
            _ => "status",
        };
        let mut c = self.counts.get();
        match outcome {
            "delivered" => c.delivered += 1,
            "mismatched" => c.mismatched += 1,
            _ => c.status += 1,
        }
        self.counts.set(c);
        let mut line = self.head(seq, outcome);
        let _ = write!(
            line,
            r#","status":{status},"echoed":{},"body":{}}}"#,
            echoed.map_or("null".into(), |s| s.to_string()),
            json_str(&String::from_utf8_lossy(&body[..body.len().min(200)]))
        );
        self.shared.record(&line);
    }

    /// The request `seq` failed: `error` (its text and its value), and whether the error says
    /// the server may have processed the request (`None`: it does not say).
    fn reported(
        &self,
        seq: u64,
        error: &dyn Display,
        value: &dyn Debug,
        may_have_been_processed: Option<bool>,
    ) {
        let mut c = self.counts.get();
        c.reported += 1;
        self.counts.set(c);
        let mut line = self.head(seq, "reported");
        let _ = write!(
            line,
            r#","error":{},"error_value":{},"may_have_been_processed":{}}}"#,
            json_str(&error.to_string()),
            json_str(&format!("{value:?}")),
            may_have_been_processed.map_or("null".into(), |b| b.to_string())
        );
        self.shared.record(&line);
    }

    /// Opening a connection failed while no reading was in flight.
    fn connect_failed(&self, error: &dyn Display) {
        self.shared.record(&format!(
            r#"{{"event":"connect_failed","device":"{}","t_ms":{},"error":{}}}"#,
            self.name,
            self.shared.ms(),
            json_str(&error.to_string())
        ));
    }

    /// The start of a result line: the reading, and where its last attempt was written.
    fn head(&self, seq: u64, outcome: &str) -> String {
        let mut line = format!(
            r#"{{"seq":{seq},"device":"{}","outcome":"{outcome}","t_ms":{}"#,
            self.name,
            self.shared.ms()
        );
        let mut wire = self.wire.borrow_mut();
        match wire.last_start.take() {
            Some(s) => {
                let end = match &wire.last_end {
                    Some((conn, how)) if *conn == s.conn => json_str(how),
                    _ => "null".into(),
                };
                let _ = write!(
                    line,
                    r#","written":true,"conn":{},"client_port":{},"nth":{},"idle_ms":{},"sent_ms":{},"stream_end":{end}"#,
                    s.conn,
                    s.client_port,
                    s.nth,
                    s.idle_ms,
                    s.at.duration_since(self.shared.start).as_millis()
                );
            }
            None => line.push_str(r#","written":false"#),
        }
        line
    }
}

/// The number after `"seq":` in an echoed body.
fn echoed_seq(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"seq\":")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// --- connections: opened, counted, watched ----------------------------------------------------

/// What a device's connections did, as seen from its streams.
#[derive(Default)]
struct Wire {
    /// Connections opened (TCP, and the TLS handshake where there is one).
    opened: u32,
    /// Connections that failed to open.
    connect_failures: u32,
    /// The client port of the TCP connection opened last.
    client_port: u16,
    /// Whether the connection opened last has carried a response and not ended.
    kept: bool,
    /// Where the last request began to be written.
    last_start: Option<Start>,
    /// How the last connection that ended ended, as its stream saw it: its number, and `eof`
    /// or the stream's error.
    last_end: Option<(u32, String)>,
}

/// Where a request began to be written.
struct Start {
    conn: u32,
    client_port: u16,
    /// The how-manyth request on the connection (from 1).
    nth: u32,
    /// How long the connection had been idle: since the last byte read, or since it opened.
    idle_ms: u64,
    /// When.
    at: Instant,
}

/// Opens plain TCP connections to 127.0.0.1:port with `TCP_NODELAY` (a device's stack sends
/// small segments at once), and notes each one's client port.
struct Tcp(u16, Rc<RefCell<Wire>>);

impl Connect for Tcp {
    type StreamError = std::io::Error;
    type Stream<'c> = TokioTcp;
    type Error = std::io::Error;

    async fn connect(&mut self, _host: Host<'_>) -> Result<Self::Stream<'_>, std::io::Error> {
        let tcp = TcpStream::connect(("127.0.0.1", self.0)).await?;
        tcp.set_nodelay(true)?;
        self.1.borrow_mut().client_port = tcp.local_addr()?.port();
        Ok(TokioTcp(FromTokio::new(tcp)))
    }
}

/// A tokio TCP stream as an embedded-io-async stream that also implements `ReadReady` (a byte
/// or the end of the stream is waiting), as embassy-net's socket does: what a check of a kept
/// connection before writing into it needs. `read_ready` asks tokio without waiting: it knows
/// what its reactor has seen, which after any wait on the runtime (the device's wait before a
/// reading) includes a close by the server.
struct TokioTcp(FromTokio<TcpStream>);

impl ErrorType for TokioTcp {
    type Error = std::io::Error;
}

impl Read for TokioTcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        self.0.read(buf).await
    }
}

impl Write for TokioTcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), std::io::Error> {
        self.0.flush().await
    }
}

impl ReadReady for TokioTcp {
    fn read_ready(&mut self) -> Result<bool, std::io::Error> {
        let mut byte = [0u8; 1];
        let mut peeked = tokio::io::ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        match self.0.inner_mut().poll_peek(&mut cx, &mut peeked) {
            Poll::Ready(Ok(_)) => Ok(true),
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            // The next read returns the error at once.
            Poll::Ready(Err(_)) => Ok(true),
            Poll::Pending => Ok(false),
        }
    }
}

fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Any connector, with its connections counted and their streams watched ([`Watched`]).
struct Wired<C> {
    inner: C,
    wire: Rc<RefCell<Wire>>,
}

impl<C> Wired<C> {
    fn new(inner: C, wire: Rc<RefCell<Wire>>) -> Self {
        Self { inner, wire }
    }
}

impl<C: Connect> Connect for Wired<C> {
    type StreamError = C::StreamError;
    type Stream<'c>
        = Watched<C::Stream<'c>>
    where
        Self: 'c;
    type Error = C::Error;

    async fn connect(&mut self, host: Host<'_>) -> Result<Self::Stream<'_>, C::Error> {
        match self.inner.connect(host).await {
            Ok(inner) => {
                let mut wire = self.wire.borrow_mut();
                wire.opened += 1;
                wire.kept = false;
                Ok(Watched {
                    inner,
                    wire: self.wire.clone(),
                    conn: wire.opened,
                    client_port: wire.client_port,
                    requests: 0,
                    writing: false,
                    last_read: Instant::now(),
                    ended: false,
                })
            }
            Err(e) => {
                self.wire.borrow_mut().connect_failures += 1;
                Err(e)
            }
        }
    }
}

/// A connection's stream (above TLS, where there is TLS) that notes where each request begins
/// (the first write after a read) and how the stream ended.
struct Watched<S> {
    inner: S,
    wire: Rc<RefCell<Wire>>,
    conn: u32,
    client_port: u16,
    requests: u32,
    writing: bool,
    last_read: Instant,
    ended: bool,
}

impl<S> Watched<S> {
    fn ended(&mut self, how: String) {
        if !self.ended {
            self.ended = true;
            let mut wire = self.wire.borrow_mut();
            wire.last_end = Some((self.conn, how));
            if wire.opened == self.conn {
                wire.kept = false;
            }
        }
    }
}

impl<S: ErrorType> ErrorType for Watched<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Watched<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        let r = self.inner.read(buf).await;
        match &r {
            Ok(0) if !buf.is_empty() => self.ended("read: end of stream".into()),
            Ok(_) => {
                self.last_read = Instant::now();
                self.writing = false;
                if !self.ended {
                    self.wire.borrow_mut().kept = true;
                }
            }
            Err(e) => self.ended(format!("read: {e:?}")),
        }
        r
    }
}

/// Asking whether a byte is waiting reads nothing: only `read` counts as a read here.
impl<S: ReadReady> ReadReady for Watched<S> {
    fn read_ready(&mut self) -> Result<bool, S::Error> {
        self.inner.read_ready()
    }
}

impl<S: Write> Write for Watched<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        if !self.writing {
            self.writing = true;
            self.requests += 1;
            let idle_ms = u64::try_from(self.last_read.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.wire.borrow_mut().last_start = Some(Start {
                conn: self.conn,
                client_port: self.client_port,
                nth: self.requests,
                idle_ms,
                at: Instant::now(),
            });
        }
        let r = self.inner.write(buf).await;
        if let Err(e) = &r {
            self.ended(format!("write: {e:?}"));
        }
        r
    }

    async fn flush(&mut self) -> Result<(), S::Error> {
        let r = self.inner.flush().await;
        if let Err(e) = &r {
            self.ended(format!("flush: {e:?}"));
        }
        r
    }
}
