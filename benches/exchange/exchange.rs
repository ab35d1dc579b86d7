//! rawpost and reqwless 0.14 side by side: the same POST, the same canned response (the
//! reference exchange of `benches/reference/exchange.rs`), the same in-memory
//! `embedded-io-async` stream. Wall-clock time; the deterministic figures (instructions, calls,
//! future sizes, flash) come from `.ci/measure`.
//!
//! Run with `cargo bench` in `benches/exchange`. After criterion's own output, a summary prints
//! the mean time per exchange of both crates and their ratio (read back from criterion's
//! `estimates.json`), the write and read calls per exchange, and the size of the whole
//! send+receive future on this host. See BENCHMARKS.md.

use core::future::Future;
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// The reference exchange, shared with `benches/instructions` and `benches/size`.
#[path = "../reference/exchange.rs"]
mod reference;
use reference::{
    BODY as BODY_100, CONTENT_TYPE, HOST, PATH, REQUEST_LEN, RESPONSE as RESPONSE_LENGTH,
    RESPONSE_BODY_LEN, RESPONSE_CHUNKED, USER_AGENT,
};

/// The buffer each crate gets: rawpost's one buffer, reqwless's receive buffer.
const BUF: usize = 1024;

/// An in-memory stream that replays a canned response, at most `max_read` bytes per read, and
/// counts calls. Writes are accepted whole and only counted.
struct BenchStream {
    script: &'static [u8],
    pos: usize,
    max_read: usize,
    reads: u32,
    writes: u32,
    written: usize,
}

impl BenchStream {
    fn new(script: &'static [u8], max_read: usize) -> Self {
        Self {
            script,
            pos: 0,
            max_read,
            reads: 0,
            writes: 0,
            written: 0,
        }
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.reads = 0;
        self.writes = 0;
        self.written = 0;
    }
}

impl ErrorType for BenchStream {
    type Error = ErrorKind;
}

impl Read for BenchStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.reads += 1;
        let rest = &self.script[self.pos..];
        let n = rest.len().min(buf.len()).min(self.max_read);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for BenchStream {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.writes += 1;
        self.written += black_box(buf).len();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Runs a future that never waits (the stream is always ready).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// One exchange through rawpost: send the POST, read the whole body into `out`.
async fn rawpost_exchange(
    stream: &mut BenchStream,
    buf: &mut [u8],
    body: &[u8],
    out: &mut [u8],
) -> usize {
    let headers = [
        ("Content-Type", CONTENT_TYPE),
        ("Accept", CONTENT_TYPE),
        ("User-Agent", USER_AGENT),
    ];
    let mut conn = rawpost::Connection::new(stream, buf, rawpost::Host::new(HOST));
    let req = rawpost::Request::post(PATH)
        .with_headers(&headers)
        .with_body(body);
    let mut resp = conn.send(&req).await.expect("rawpost send");
    assert_eq!(resp.status(), 200);
    resp.read_to_end(out).await.expect("rawpost body")
}

/// One exchange through reqwless: send the POST, read the whole body (into the receive buffer,
/// which is how reqwless's `read_to_end` works).
async fn reqwless_exchange(stream: &mut BenchStream, rx: &mut [u8], body: &[u8]) -> usize {
    use reqwless::headers::ContentType;
    use reqwless::request::{Request, RequestBuilder};
    let headers = [("User-Agent", USER_AGENT)];
    let mut conn = reqwless::client::HttpConnection::Plain(stream);
    let req = Request::post(PATH)
        .host(HOST)
        .content_type(ContentType::ApplicationJson)
        .accept(ContentType::ApplicationJson)
        .headers(&headers)
        .body(body)
        .build();
    let resp = conn.send(req, rx).await.expect("reqwless send");
    assert_eq!(resp.status, reqwless::response::StatusCode(200));
    resp.body()
        .read_to_end()
        .await
        .expect("reqwless body")
        .len()
}

struct Variant {
    name: &'static str,
    what: &'static str,
    response: &'static [u8],
    max_read: usize,
    body: &'static [u8],
}

fn variants() -> Vec<Variant> {
    let big: &'static [u8] = Box::leak(
        (0..4096u32)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    vec![
        Variant {
            name: "length",
            what: "100 B body, Content-Length response, one read",
            response: RESPONSE_LENGTH,
            max_read: usize::MAX,
            body: BODY_100,
        },
        Variant {
            name: "length_16b_reads",
            what: "100 B body, Content-Length response, 16-byte reads",
            response: RESPONSE_LENGTH,
            max_read: 16,
            body: BODY_100,
        },
        Variant {
            name: "chunked",
            what: "100 B body, chunked response, one read",
            response: RESPONSE_CHUNKED,
            max_read: usize::MAX,
            body: BODY_100,
        },
        Variant {
            name: "body_4k",
            what: "4 KiB body, Content-Length response, one read",
            response: RESPONSE_LENGTH,
            max_read: usize::MAX,
            body: big,
        },
    ]
}

/// Runs one exchange of each crate outside criterion, checks they agree, and returns
/// `(writes, reads, bytes written)` for rawpost and reqwless.
fn counts(v: &Variant) -> ((u32, u32, usize), (u32, u32, usize)) {
    let mut buf = [0u8; BUF];
    let mut out = [0u8; 512];
    let mut s = BenchStream::new(v.response, v.max_read);
    let a = block_on(rawpost_exchange(&mut s, &mut buf, v.body, &mut out));
    let raw = (s.writes, s.reads, s.written);
    let mut s = BenchStream::new(v.response, v.max_read);
    let b = block_on(reqwless_exchange(&mut s, &mut buf, v.body));
    let req = (s.writes, s.reads, s.written);
    assert_eq!(a, b, "{}: both crates read the same body", v.name);
    assert_eq!(a, RESPONSE_BODY_LEN);
    if v.body.len() == BODY_100.len() {
        assert_eq!(
            (raw.2, req.2),
            (REQUEST_LEN, REQUEST_LEN),
            "{}: bytes written",
            v.name
        );
    }
    (raw, req)
}

fn bench(c: &mut Criterion) {
    for v in variants() {
        let mut g = c.benchmark_group(format!("exchange/{}", v.name));
        g.bench_function("rawpost", |b| {
            let mut stream = BenchStream::new(v.response, v.max_read);
            let mut buf = [0u8; BUF];
            let mut out = [0u8; 512];
            b.iter(|| {
                stream.reset();
                block_on(rawpost_exchange(
                    &mut stream,
                    &mut buf,
                    black_box(v.body),
                    &mut out,
                ))
            })
        });
        g.bench_function("reqwless", |b| {
            let mut stream = BenchStream::new(v.response, v.max_read);
            let mut rx = [0u8; BUF];
            b.iter(|| {
                stream.reset();
                block_on(reqwless_exchange(&mut stream, &mut rx, black_box(v.body)))
            })
        });
        g.finish();
    }
}

/// Time per exchange (ns) of both crates, measured interleaved: 201 alternating batches of
/// 2,000 exchanges each; the median batch of each crate. Interleaving exposes both crates to the
/// same background load, so their ratio is steadier than two separate criterion runs.
fn interleaved(v: &Variant) -> (f64, f64) {
    const BATCH: u32 = 2_000;
    let mut buf = [0u8; BUF];
    let mut out = [0u8; 512];
    let mut s = BenchStream::new(v.response, v.max_read);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..201 {
        let t = std::time::Instant::now();
        for _ in 0..BATCH {
            s.reset();
            black_box(block_on(rawpost_exchange(
                &mut s,
                &mut buf,
                black_box(v.body),
                &mut out,
            )));
        }
        a.push(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
        let t = std::time::Instant::now();
        for _ in 0..BATCH {
            s.reset();
            black_box(block_on(reqwless_exchange(
                &mut s,
                &mut buf,
                black_box(v.body),
            )));
        }
        b.push(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    let median = |mut x: Vec<f64>| {
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    (median(a), median(b))
}

/// The mean (ns) criterion stored for a benchmark, if it ran in this target directory. Looks
/// where criterion writes: `$CRITERION_HOME`, else `criterion/` in the target directory
/// (`$CARGO_TARGET_DIR`, else the one this bench runs from: `<target>/release/deps/exchange-…`).
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let home = match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(target) => PathBuf::from(target),
            None => std::env::current_exe()
                .ok()?
                .ancestors()
                .nth(3)?
                .to_path_buf(),
        }
        .join("criterion"),
    };
    let path = home
        .join(group.replace('/', "_"))
        .join(function)
        .join("new")
        .join("estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let v = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = v.find([',', '}'])?;
    v[..end].trim().parse().ok()
}

fn summary() {
    let mut buf = [0u8; BUF];
    let mut out = [0u8; 512];
    let mut s = BenchStream::new(RESPONSE_LENGTH, usize::MAX);
    let raw_fut = rawpost_exchange(&mut s, &mut buf, BODY_100, &mut out);
    let raw_size = core::mem::size_of_val(&raw_fut);
    drop(raw_fut);
    let mut s = BenchStream::new(RESPONSE_LENGTH, usize::MAX);
    let req_fut = reqwless_exchange(&mut s, &mut buf, BODY_100);
    let req_size = core::mem::size_of_val(&req_fut);
    drop(req_fut);

    println!("\n## rawpost vs reqwless 0.14 (this host)\n");
    println!(
        "| variant | criterion mean rawpost / reqwless | ratio | interleaved median rawpost / reqwless | ratio | writes rawpost / reqwless | reads rawpost / reqwless | bytes written rawpost / reqwless |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for v in variants() {
        let (raw, req) = counts(&v);
        let group = format!("exchange/{}", v.name);
        let (a, b) = (mean_ns(&group, "rawpost"), mean_ns(&group, "reqwless"));
        let fmt = |t: Option<f64>| t.map_or("n/a".to_string(), |t| format!("{t:.0} ns"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "n/a".to_string(),
        };
        let (ia, ib) = interleaved(&v);
        println!(
            "| {} ({}) | {} / {} | {} | {ia:.0} ns / {ib:.0} ns | {:.2} | {} / {} | {} / {} | {} / {} |",
            v.name,
            v.what,
            fmt(a),
            fmt(b),
            ratio,
            ia / ib,
            raw.0,
            req.0,
            raw.1,
            req.1,
            raw.2,
            req.2
        );
    }
    println!(
        "\nsend+receive future, size_of_val on {}: rawpost {raw_size} B, reqwless {req_size} B",
        std::env::consts::ARCH
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary();
}
