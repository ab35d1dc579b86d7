//! The host side of `.ci/measure`: runs the reference exchange of `rawpost_size` through each
//! crate over the same in-memory stream (`rawpost_size::Dummy`, the stream of the riscv32imc
//! size binaries), for callgrind to count.
//!
//! ```text
//! instructions calls  CASE        the stream calls of one exchange: writes, reads, flushes
//! instructions run    CASE N      warm-up, then N exchanges in `measured_exchange`
//! instructions replay CASE N      warm-up, then N replays of CASE's stream calls on the
//!                                 stream alone, in `measured_replay`
//! instructions sizes              size_of_val of each future, size_of of each connection
//! ```
//!
//! CASE is `rawpost`, `rawpost-blocking`, `rawpost-send-with`, `reqwless` or
//! `reqwless-buffered`. Under `valgrind --tool=callgrind --toggle-collect=*measured_exchange*`
//! (or `*measured_replay*`) only the N exchanges (or replays) are counted; `.ci/measure` runs
//! N and 2N and divides the difference by N, so what is counted once (the call, the first
//! exchange's lazy symbol binding) cancels out.
//!
//! A replay makes exactly the calls CASE made in one exchange (recorded through
//! [`Recorder`]), with the same lengths, in the same order, on a fresh stream, inside one
//! `block_on` (async) or a plain loop (blocking), as the exchange does: the exchange's
//! instructions minus the replay's are the HTTP crate's own work.

use core::hint::black_box;
use std::process::ExitCode;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use rawpost_size::{
    block_on, rawpost_exchange, rawpost_exchange_blocking, rawpost_exchange_send_with,
    reqwless_exchange, reqwless_exchange_buffered, Dummy, REQUEST_LEN, RESPONSE, RESPONSE_BODY_LEN,
};

/// Exchanges run before the measured ones.
const WARM_UP: u32 = 10;

/// Which crate and entry point runs the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// rawpost's async shell: `send`, `read_to_end`.
    Rawpost,
    /// rawpost's blocking shell: `send`, `read_to_end`.
    RawpostBlocking,
    /// rawpost's async shell: `send_with`, `Read::read` until the end.
    RawpostSendWith,
    /// reqwless over `HttpConnection::Plain`: `send`, `body().read_to_end()`.
    Reqwless,
    /// reqwless over `into_buffered`: the request gathered in a buffer, written once.
    ReqwlessBuffered,
}

impl Case {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rawpost" => Self::Rawpost,
            "rawpost-blocking" => Self::RawpostBlocking,
            "rawpost-send-with" => Self::RawpostSendWith,
            "reqwless" => Self::Reqwless,
            "reqwless-buffered" => Self::ReqwlessBuffered,
            _ => return None,
        })
    }

    fn blocking(self) -> bool {
        self == Self::RawpostBlocking
    }
}

/// The buffers every exchange gets: rawpost's one buffer and output slice; reqwless's receive
/// buffer (and transmit buffer, buffered).
struct Buffers {
    buf: [u8; 1024],
    tx: [u8; 1024],
    out: [u8; 512],
}

/// One exchange of `case` over `stream`; returns the body's length.
fn exchange<S>(case: Case, stream: S, b: &mut Buffers) -> usize
where
    S: Read + Write + embedded_io::Read + embedded_io::Write,
{
    match case {
        Case::Rawpost => block_on(rawpost_exchange(stream, &mut b.buf, &mut b.out)),
        Case::RawpostBlocking => rawpost_exchange_blocking(stream, &mut b.buf, &mut b.out),
        Case::RawpostSendWith => {
            block_on(rawpost_exchange_send_with(stream, &mut b.buf, &mut b.out))
        }
        Case::Reqwless => block_on(reqwless_exchange(stream, &mut b.buf)),
        Case::ReqwlessBuffered => {
            block_on(reqwless_exchange_buffered(stream, &mut b.tx, &mut b.buf))
        }
    }
}

/// One stream call: the length of the slice passed, and what the stream returned.
#[derive(Debug, Clone, Copy)]
enum Call {
    Read { len: usize, got: usize },
    Write { len: usize, took: usize },
    Flush,
}

/// [`Dummy`] that records every call made on it.
struct Recorder {
    inner: Dummy,
    calls: Vec<Call>,
}

impl ErrorType for Recorder {
    type Error = ErrorKind;
}

impl Read for Recorder {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let len = buf.len();
        let got = Read::read(&mut self.inner, buf).await?;
        self.calls.push(Call::Read { len, got });
        Ok(got)
    }
}

impl Write for Recorder {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let took = Write::write(&mut self.inner, buf).await?;
        self.calls.push(Call::Write {
            len: buf.len(),
            took,
        });
        Ok(took)
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Write::flush(&mut self.inner).await?;
        self.calls.push(Call::Flush);
        Ok(())
    }
}

impl embedded_io::Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let len = buf.len();
        let got = embedded_io::Read::read(&mut self.inner, buf)?;
        self.calls.push(Call::Read { len, got });
        Ok(got)
    }
}

impl embedded_io::Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let took = embedded_io::Write::write(&mut self.inner, buf)?;
        self.calls.push(Call::Write {
            len: buf.len(),
            took,
        });
        Ok(took)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        embedded_io::Write::flush(&mut self.inner)?;
        self.calls.push(Call::Flush);
        Ok(())
    }
}

/// The stream calls of one exchange of `case`, checked: the whole request written, the whole
/// response read, the whole body returned.
fn record(case: Case, b: &mut Buffers) -> Result<Vec<Call>, String> {
    let mut rec = Recorder {
        inner: Dummy::new(),
        calls: Vec::new(),
    };
    let body = exchange(case, &mut rec, b);
    let written: usize = rec
        .calls
        .iter()
        .map(|c| match c {
            Call::Write { took, .. } => *took,
            _ => 0,
        })
        .sum();
    let read: usize = rec
        .calls
        .iter()
        .map(|c| match c {
            Call::Read { got, .. } => *got,
            _ => 0,
        })
        .sum();
    if body != RESPONSE_BODY_LEN || written != REQUEST_LEN || read != RESPONSE.len() {
        return Err(format!(
            "{case:?}: body {body} B (expected {RESPONSE_BODY_LEN}), wrote {written} B \
             (expected {REQUEST_LEN}), read {read} B (expected {})",
            RESPONSE.len()
        ));
    }
    Ok(rec.calls)
}

/// The calls of `calls` on `stream`, awaited in one future as an exchange awaits them.
async fn replay_async(mut stream: Dummy, calls: &[Call], scratch: &mut [u8]) {
    for call in calls {
        match *call {
            Call::Read { len, .. } => {
                let _ = Read::read(&mut stream, scratch.get_mut(..len).unwrap_or(&mut [])).await;
            }
            Call::Write { len, .. } => {
                let _ = Write::write(&mut stream, scratch.get(..len).unwrap_or(&[])).await;
            }
            Call::Flush => {
                let _ = Write::flush(&mut stream).await;
            }
        }
    }
}

/// The calls of `calls` on `stream`, blocking.
fn replay_blocking(mut stream: Dummy, calls: &[Call], scratch: &mut [u8]) {
    for call in calls {
        match *call {
            Call::Read { len, .. } => {
                let _ =
                    embedded_io::Read::read(&mut stream, scratch.get_mut(..len).unwrap_or(&mut []));
            }
            Call::Write { len, .. } => {
                let _ = embedded_io::Write::write(&mut stream, scratch.get(..len).unwrap_or(&[]));
            }
            Call::Flush => {
                let _ = embedded_io::Write::flush(&mut stream);
            }
        }
    }
}

/// `n` exchanges of `case`, each over a fresh stream. Callgrind counts what runs in here.
#[inline(never)]
fn measured_exchange(case: Case, n: u32, b: &mut Buffers) -> usize {
    let mut total = 0;
    for _ in 0..n {
        total += exchange(case, &mut Dummy::new(), b);
    }
    total
}

/// `n` replays of `calls`, each on a fresh stream. Callgrind counts what runs in here.
#[inline(never)]
fn measured_replay(blocking: bool, calls: &[Call], n: u32, scratch: &mut [u8]) {
    for _ in 0..n {
        if blocking {
            replay_blocking(Dummy::new(), calls, scratch);
        } else {
            block_on(replay_async(Dummy::new(), calls, scratch));
        }
    }
}

/// The size of each future of interest and of each connection, on this host.
fn sizes() {
    use core::mem::{size_of, size_of_val};
    use rawpost_size::{reqwless_exchange_read, reqwless_request, write_body, RAWPOST_HEADERS};
    let mut d = Dummy::new();
    let mut buf = [0u8; 1024];
    let mut tx = [0u8; 1024];
    let mut out = [0u8; 512];
    let show = |what: &str, n: usize| println!("{what}\t{n}");

    show(
        "rawpost exchange (send + read_to_end)",
        size_of_val(&rawpost_exchange(&mut d, &mut buf, &mut out)),
    );
    show(
        "rawpost exchange (send_with + read)",
        size_of_val(&rawpost_exchange_send_with(&mut d, &mut buf, &mut out)),
    );
    show(
        "reqwless exchange (send + body().read_to_end)",
        size_of_val(&reqwless_exchange(&mut d, &mut buf)),
    );
    show(
        "reqwless exchange, into_buffered",
        size_of_val(&reqwless_exchange_buffered(&mut d, &mut tx, &mut buf)),
    );
    show(
        "reqwless exchange (send + body().reader().read)",
        size_of_val(&reqwless_exchange_read(&mut d, &mut buf, &mut out)),
    );

    show(
        "rawpost Connection<&mut Dummy>",
        size_of::<rawpost::Connection<'static, &mut Dummy>>(),
    );
    show(
        "rawpost blocking::Connection<&mut Dummy>",
        size_of::<rawpost::blocking::Connection<'static, &mut Dummy>>(),
    );
    show(
        "reqwless HttpConnection<&mut Dummy>",
        size_of::<reqwless::client::HttpConnection<'static, &mut Dummy>>(),
    );

    let req = rawpost::Request::post(rawpost_size::PATH)
        .with_headers(&RAWPOST_HEADERS)
        .with_body(rawpost_size::BODY);
    let mut d = Dummy::new();
    let mut conn =
        rawpost::Connection::new(&mut d, &mut buf, rawpost::Host::new(rawpost_size::HOST));
    show("rawpost Connection::send", size_of_val(&conn.send(&req)));
    show(
        "rawpost Connection::send_with",
        size_of_val(&conn.send_with(&req, write_body)),
    );
    match block_on(conn.send(&req)) {
        Ok(mut resp) => {
            show("rawpost Response::read", size_of_val(&resp.read(&mut out)));
            show(
                "rawpost Response::read_to_end",
                size_of_val(&resp.read_to_end(&mut out)),
            );
        }
        Err(e) => eprintln!("rawpost send failed: {e:?}"),
    }

    let mut d = Dummy::new();
    let mut conn = reqwless::client::HttpConnection::Plain(&mut d);
    show(
        "reqwless HttpConnection::send",
        size_of_val(&conn.send(reqwless_request(), &mut buf)),
    );
    let mut d = Dummy::new();
    let mut conn = reqwless::client::HttpConnection::Plain(&mut d);
    match block_on(conn.send(reqwless_request(), &mut buf)) {
        Ok(resp) => show(
            "reqwless ResponseBody::read_to_end",
            size_of_val(&resp.body().read_to_end()),
        ),
        Err(e) => eprintln!("reqwless send failed: {e:?}"),
    }
    let mut d = Dummy::new();
    let mut conn = reqwless::client::HttpConnection::Plain(&mut d);
    match block_on(conn.send(reqwless_request(), &mut buf)) {
        Ok(resp) => {
            let mut reader = resp.body().reader();
            show(
                "reqwless BodyReader::read",
                size_of_val(&reader.read(&mut out)),
            );
        }
        Err(e) => eprintln!("reqwless send failed: {e:?}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let usage = || {
        eprintln!("usage: instructions calls CASE | run CASE N | replay CASE N | sizes");
        ExitCode::from(2)
    };
    let mut b = Box::new(Buffers {
        buf: [0; 1024],
        tx: [0; 1024],
        out: [0; 512],
    });
    match args.as_slice() {
        ["sizes"] => sizes(),
        ["calls", case] => {
            let Some(case) = Case::parse(case) else {
                return usage();
            };
            let calls = match record(case, &mut b) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut line = Vec::new();
            let (mut writes, mut reads, mut flushes) = (0, 0, 0);
            for c in &calls {
                match c {
                    Call::Write { len, took } => {
                        writes += 1;
                        line.push(format!("w{len}:{took}"));
                    }
                    Call::Read { len, got } => {
                        reads += 1;
                        line.push(format!("r{len}:{got}"));
                    }
                    Call::Flush => {
                        flushes += 1;
                        line.push("f".to_string());
                    }
                }
            }
            println!("writes {writes} reads {reads} flushes {flushes}");
            println!("sequence {}", line.join(" "));
        }
        [mode @ ("run" | "replay"), case, n] => {
            let (Some(case), Ok(n)) = (Case::parse(case), n.parse::<u32>()) else {
                return usage();
            };
            let calls = match record(case, &mut b) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            if *mode == "run" {
                let warm = warm_up_exchanges(case, &mut b);
                let total = measured_exchange(case, black_box(n), &mut b);
                if warm + total != (WARM_UP + n) as usize * RESPONSE_BODY_LEN {
                    eprintln!("{case:?}: an exchange failed");
                    return ExitCode::FAILURE;
                }
            } else {
                for _ in 0..WARM_UP {
                    warm_up_replay(case.blocking(), &calls, &mut b.buf);
                }
                measured_replay(case.blocking(), &calls, black_box(n), &mut b.buf);
            }
            black_box(&b.buf);
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

/// The warm-up exchanges, outside `measured_exchange` so that callgrind does not count them.
#[inline(never)]
fn warm_up_exchanges(case: Case, b: &mut Buffers) -> usize {
    (0..WARM_UP)
        .map(|_| exchange(case, &mut Dummy::new(), b))
        .sum()
}

/// One warm-up replay, outside `measured_replay`.
#[inline(never)]
fn warm_up_replay(blocking: bool, calls: &[Call], scratch: &mut [u8]) {
    if blocking {
        replay_blocking(Dummy::new(), calls, scratch);
    } else {
        block_on(replay_async(Dummy::new(), calls, scratch));
    }
}
