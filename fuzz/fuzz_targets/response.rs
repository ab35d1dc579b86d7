//! A response byte stream played through the async `Connection` and the blocking
//! `blocking::Connection`, whole and split at points derived from the input: no panic, no hang
//! (bounded reads and polls), the same result either way, and — the two shells being one
//! client — the same results and the same bytes written, write call by write call.
//!
//! Input layout: `[flags, nsizes, out_step, sizes.., script..]`.
//! - `flags` bit 0: the first request is `HEAD`; bits 1-2: buffer size (128/256/512/1024);
//!   bit 3: the later requests are `POST`s with a padded header (so that a head crowded by
//!   bytes of the next response goes out in parts).
//! - `nsizes & 15` read sizes follow, used in turn (cycled) for the split delivery.
//! - `out_step`: the size of the caller's slice for each body `read` in the split delivery.
//! - the rest is what the server sends, in turns separated by the two bytes `FF FE`: a turn is
//!   sent only once the client has written after reading all of the last one (a server answers
//!   requests, never ahead of them); a read past what was sent is the server closing. Up to 3
//!   exchanges run on one connection while it stays reusable, each shell checking it before
//!   writing (`check_before_send`: bytes left in a turn answer no request).
#![no_main]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, ReadReady, Write};
use libfuzzer_sys::fuzz_target;
use rawpost::{Connection, Error, Host, Request};

struct Stream<'a> {
    script: Vec<u8>,
    /// Where each turn of the script ends.
    turns: Vec<usize>,
    /// Turns sent so far, and the script bytes they hold.
    turn: usize,
    sent: usize,
    pos: usize,
    sizes: &'a [u8],
    next: usize,
    reads: usize,
    writes: Vec<Vec<u8>>,
}

/// The turns of `script`, separated by `FF FE`: the bytes and where each turn ends.
fn turns(script: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    let mut rest = script;
    loop {
        match rest.windows(2).position(|w| w == [0xff, 0xfe]) {
            Some(i) => {
                bytes.extend_from_slice(&rest[..i]);
                ends.push(bytes.len());
                rest = &rest[i + 2..];
            }
            None => {
                bytes.extend_from_slice(rest);
                ends.push(bytes.len());
                return (bytes, ends);
            }
        }
    }
}

impl ErrorType for Stream<'_> {
    type Error = ErrorKind;
}

impl Stream<'_> {
    fn read_now(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.reads += 1;
        // Every read either delivers a byte or reports EOF, which ends the exchange: more
        // reads than this means the client loops.
        assert!(
            self.reads <= 2 * self.script.len() + 16,
            "too many reads: the client does not stop at EOF"
        );
        let rest = &self.script[self.pos..self.sent];
        let mut n = rest.len().min(buf.len());
        if !self.sizes.is_empty() {
            let s = usize::from(self.sizes[self.next % self.sizes.len()]).max(1);
            self.next += 1;
            n = n.min(s);
        }
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Stream<'_> {
    fn write_now(&mut self, buf: &[u8]) -> usize {
        if self.pos >= self.sent && self.turn < self.turns.len() {
            self.sent = self.turns[self.turn];
            self.turn += 1;
        }
        self.writes.push(buf.to_vec());
        buf.len()
    }
}

/// Bytes of the turn sent are waiting, or the server closed (every turn sent and read).
impl ReadReady for Stream<'_> {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        Ok(self.pos < self.sent || (self.turn == self.turns.len() && self.pos == self.sent))
    }
}

impl Read for Stream<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.read_now(buf)
    }
}

impl Write for Stream<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(self.write_now(buf))
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl embedded_io::Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.read_now(buf)
    }
}

impl embedded_io::Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(self.write_now(buf))
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the exchange never completes");
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    reason: Vec<u8>,
    headers: Fields,
    body: Vec<u8>,
    trailers: Fields,
    complete: bool,
}

fn fields(it: rawpost::Fields<'_>) -> Fields {
    it.map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
        .collect()
}

async fn one<S: Read + Write<Error = ErrorKind>>(
    conn: &mut Connection<'_, S>,
    req: &Request<'_>,
    out_step: usize,
    limit: usize,
) -> Result<Outcome, Error<ErrorKind>> {
    let mut resp = conn.send(req).await?;
    let mut body = Vec::new();
    let mut chunk = vec![0u8; out_step];
    for _ in 0..limit {
        let n = resp.read(&mut chunk).await?;
        if n == 0 {
            let head = Outcome {
                status: resp.status(),
                reason: resp.reason().as_bytes().to_vec(),
                headers: fields(resp.headers()),
                body,
                trailers: fields(resp.trailers()),
                complete: resp.is_complete(),
            };
            assert!(head.complete, "read returned 0 before the body's end");
            return Ok(head);
        }
        assert!(n <= out_step);
        body.extend_from_slice(&chunk[..n]);
    }
    panic!("the body never ends");
}

fn one_blocking<S: embedded_io::Read + embedded_io::Write<Error = ErrorKind>>(
    conn: &mut rawpost::blocking::Connection<'_, S>,
    req: &Request<'_>,
    out_step: usize,
    limit: usize,
) -> Result<Outcome, Error<ErrorKind>> {
    let mut resp = conn.send(req)?;
    let mut body = Vec::new();
    let mut chunk = vec![0u8; out_step];
    for _ in 0..limit {
        let n = embedded_io::Read::read(&mut resp, &mut chunk)?;
        if n == 0 {
            return Ok(Outcome {
                status: resp.status(),
                reason: resp.reason().as_bytes().to_vec(),
                headers: fields(resp.headers()),
                body,
                trailers: fields(resp.trailers()),
                complete: resp.is_complete(),
            });
        }
        body.extend_from_slice(&chunk[..n]);
    }
    panic!("the body never ends");
}

type Run = (Vec<(Result<Outcome, Error<ErrorKind>>, bool)>, Vec<Vec<u8>>);

/// Plays the script through one shell; returns each exchange's outcome and whether the
/// connection is reusable after it, and every write call's bytes.
fn play(
    script: &[u8],
    sizes: &[u8],
    buf_len: usize,
    flags: u8,
    out_step: usize,
    blocking: bool,
) -> Run {
    let (script, ends) = turns(script);
    let mut stream = Stream {
        script,
        turns: ends,
        turn: 0,
        sent: 0,
        pos: 0,
        sizes,
        next: 0,
        reads: 0,
        writes: Vec::new(),
    };
    let stream_len = stream.script.len();
    let mut buf = vec![0u8; buf_len];
    let host = Host::new("api.example.com");
    let pad = [("X-Pad", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")];
    let post = Request::post("/oauth/token")
        .with_headers(&[("Content-Type", "application/json")])
        .with_body(br#"{"a":1}"#);
    let head = Request::head("/x");
    let later = if flags & 8 == 8 {
        Request::post("/upload")
            .with_headers(&pad)
            .with_body(b"BODY")
    } else {
        Request::get("/next")
    };
    let mut results = Vec::new();
    let mut async_conn;
    let mut blocking_conn;
    if blocking {
        blocking_conn = Some(
            rawpost::blocking::Connection::new(&mut stream, &mut buf, host).check_before_send(),
        );
        async_conn = None;
    } else {
        async_conn = Some(Connection::new(&mut stream, &mut buf, host).check_before_send());
        blocking_conn = None;
    }
    for i in 0..3 {
        let req = match i {
            0 if flags & 1 == 1 => &head,
            0 => &post,
            _ => &later,
        };
        let limit = stream_len + 16;
        let (r, reusable) = match (&mut async_conn, &mut blocking_conn) {
            // Reusable: what the connection knows after looking at the stream (bytes that
            // came with the response or after it answer no request, whatever the split).
            (Some(conn), _) => {
                let r = block_on(one(conn, req, out_step, limit));
                (r, block_on(conn.check_closed()) == Ok(false))
            }
            (_, Some(conn)) => {
                let r = one_blocking(conn, req, out_step, limit);
                (r, conn.check_closed() == Ok(false))
            }
            _ => unreachable!(),
        };
        let ok = r.is_ok();
        // A request the buffer cannot hold is refused before anything is written and leaves
        // the connection as it was; every other error makes it unusable.
        if !ok && !matches!(r, Err(Error::Request(_))) {
            assert!(
                !reusable,
                "exchange {i}: an error must leave the connection unusable: {r:?}"
            );
        }
        results.push((r, reusable));
        if !ok || !reusable {
            break;
        }
    }
    drop((async_conn, blocking_conn));
    (results, stream.writes)
}

fuzz_target!(|data: &[u8]| {
    let [flags, nsizes, out_step, rest @ ..] = data else {
        return;
    };
    let nsizes = usize::from(nsizes & 15).min(rest.len());
    let (sizes, script) = rest.split_at(nsizes);
    let buf_len = 128 << ((flags >> 1) & 3);
    let sizes = if sizes.is_empty() { &[1][..] } else { sizes };
    let out_step = usize::from(*out_step).max(1);
    let whole = play(script, &[], buf_len, *flags, 4096, false);
    let split = play(script, sizes, buf_len, *flags, out_step, false);
    assert_eq!(whole.0, split.0, "whole and split delivery disagree");
    // What is written never depends on how the server's bytes were split.
    assert_eq!(
        whole.1.concat(),
        split.1.concat(),
        "whole and split delivery wrote different bytes"
    );
    // The blocking shell is the same client: same results, same write calls.
    let blocking = play(script, sizes, buf_len, *flags, out_step, true);
    assert_eq!(split, blocking, "the async and the blocking shell disagree");
});
