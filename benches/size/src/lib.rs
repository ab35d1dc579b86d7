//! What every size binary shares: the reference exchange (`benches/reference/exchange.rs`), a
//! plain in-memory stream, an executor that polls a future that never waits, the entry point
//! glue, and the exchange itself through each crate (features `rawpost`, `reqwless`), generic
//! over the stream so that the host measurement (`benches/instructions`) runs the very same
//! functions over a recording stream.
#![no_std]

use core::future::Future;
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

#[path = "../../reference/exchange.rs"]
mod reference;
pub use reference::*;

/// A plain stream: reads replay [`RESPONSE`], writes are consumed. `black_box` keeps the
/// compiler from evaluating the exchange at compile time.
pub struct Dummy {
    pos: usize,
}

impl Dummy {
    pub const fn new() -> Self {
        Self { pos: 0 }
    }
}

impl Default for Dummy {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorType for Dummy {
    type Error = ErrorKind;
}

impl Read for Dummy {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        Ok(self.read_now(buf))
    }
}

impl Write for Dummy {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(black_box(buf).len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl Dummy {
    fn read_now(&mut self, buf: &mut [u8]) -> usize {
        let script = black_box(RESPONSE);
        let rest = script.get(self.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        n
    }
}

impl embedded_io::Read for Dummy {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        Ok(self.read_now(buf))
    }
}

impl embedded_io::Write for Dummy {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(black_box(buf).len())
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Polls a future that never waits until it completes.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Where the result goes, so the exchange is not optimized away.
pub fn sink(v: usize) {
    black_box(v);
}

#[cfg(feature = "panic-free")]
extern "C" {
    /// Defined nowhere: with feature `panic-free`, a panic that survives optimization makes the
    /// link fail, naming this symbol.
    fn a_panic_path_survived_optimization() -> !;
}

/// Where a panic goes: nowhere with feature `panic-free` (the link fails if any panic path is
/// left), an endless loop otherwise.
pub fn panicked() -> ! {
    #[cfg(feature = "panic-free")]
    // SAFETY: never called in a binary that links; the symbol does not exist.
    unsafe {
        a_panic_path_survived_optimization()
    }
    #[cfg(not(feature = "panic-free"))]
    halt()
}

/// Where the program ends.
pub fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// What the baseline binaries do instead of an HTTP exchange: one write of the body, then reads
/// of the response into `buf` until the stream ends. The same stream, executor and harness as
/// the HTTP binaries, so that their difference is the HTTP crate.
pub async fn baseline_exchange<S: Read + Write>(mut stream: S, buf: &mut [u8]) -> usize {
    if stream.write(BODY).await.is_err() {
        return 0;
    }
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        match stream.read(rest).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// [`baseline_exchange`] without `.await`.
pub fn baseline_exchange_blocking<S: embedded_io::Read + embedded_io::Write>(
    mut stream: S,
    buf: &mut [u8],
) -> usize {
    if stream.write(BODY).is_err() {
        return 0;
    }
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        match stream.read(rest) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// The request's header fields for rawpost, after the `Host` it adds.
#[cfg(feature = "rawpost")]
pub const RAWPOST_HEADERS: [(&str, &str); 3] = [
    ("Content-Type", CONTENT_TYPE),
    ("Accept", CONTENT_TYPE),
    ("User-Agent", USER_AGENT),
];

/// The body of [`rawpost_exchange`], as a macro so that the size binary defines the very same
/// code as its own `async fn exchange` (whose future `.ci/bench-check` reads from
/// `-Zprint-type-sizes` as `{async fn body of exchange()}`), without a wrapper around it.
#[cfg(feature = "rawpost")]
#[macro_export]
macro_rules! rawpost_exchange_body {
    ($stream:expr, $buf:expr, $out:expr) => {{
        let mut conn = rawpost::Connection::new($stream, $buf, rawpost::Host::new($crate::HOST));
        let req = rawpost::Request::post($crate::PATH)
            .with_headers(&$crate::RAWPOST_HEADERS)
            .with_body($crate::BODY);
        let Ok(mut resp) = conn.send(&req).await else {
            return 0;
        };
        if resp.status() != 200 {
            return 0;
        }
        resp.read_to_end($out).await.unwrap_or(0)
    }};
}

/// The reference exchange through rawpost's async shell: send the POST, read the body to its
/// end into `out`. Returns the body's length (0 on any error).
#[cfg(feature = "rawpost")]
pub async fn rawpost_exchange<S: Read + Write>(stream: S, buf: &mut [u8], out: &mut [u8]) -> usize {
    rawpost_exchange_body!(stream, buf, out)
}

/// The reference exchange through rawpost's blocking shell.
#[cfg(feature = "rawpost")]
pub fn rawpost_exchange_blocking<S: embedded_io::Read + embedded_io::Write>(
    stream: S,
    buf: &mut [u8],
    out: &mut [u8],
) -> usize {
    let mut conn = rawpost::blocking::Connection::new(stream, buf, rawpost::Host::new(HOST));
    let req = rawpost::Request::post(PATH)
        .with_headers(&RAWPOST_HEADERS)
        .with_body(BODY);
    let Ok(mut resp) = conn.send(&req) else {
        return 0;
    };
    if resp.status() != 200 {
        return 0;
    }
    resp.read_to_end(out).unwrap_or(0)
}

/// The buffer handed to [`write_body`] is smaller than [`BODY`].
#[cfg(feature = "rawpost")]
#[derive(Debug)]
pub struct NoRoom;

/// Writes [`BODY`] into the buffer rawpost's `send_with` hands over; returns its length.
#[cfg(feature = "rawpost")]
pub fn write_body(buf: &mut [u8]) -> Result<usize, NoRoom> {
    let dst = buf.get_mut(..BODY.len()).ok_or(NoRoom)?;
    dst.copy_from_slice(BODY);
    Ok(BODY.len())
}

/// The same exchange through rawpost's other entry points: the body written into the
/// connection's buffer by `send_with` (with [`write_body`]), the response body read with
/// `Read::read`. Used for the sizes of those futures.
#[cfg(feature = "rawpost")]
pub async fn rawpost_exchange_send_with<S: Read + Write>(
    stream: S,
    buf: &mut [u8],
    out: &mut [u8],
) -> usize {
    let mut conn = rawpost::Connection::new(stream, buf, rawpost::Host::new(HOST));
    let req = rawpost::Request::post(PATH).with_headers(&RAWPOST_HEADERS);
    let Ok(mut resp) = conn.send_with(&req, write_body).await else {
        return 0;
    };
    if resp.status() != 200 {
        return 0;
    }
    let mut n = 0;
    while let Some(rest) = out.get_mut(n..) {
        match resp.read(rest).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// The request's extra header fields for reqwless (it adds `Host`, `Content-Type` and `Accept`
/// from its builder).
#[cfg(feature = "reqwless")]
pub const REQWLESS_HEADERS: [(&str, &str); 1] = [("User-Agent", USER_AGENT)];

/// The reference request built with reqwless's builder.
#[cfg(feature = "reqwless")]
pub fn reqwless_request() -> reqwless::request::Request<'static, &'static [u8]> {
    use reqwless::headers::ContentType;
    use reqwless::request::{Request, RequestBuilder};
    Request::post(PATH)
        .host(HOST)
        .content_type(ContentType::ApplicationJson)
        .accept(ContentType::ApplicationJson)
        .headers(&REQWLESS_HEADERS)
        .body(&BODY[..])
        .build()
}

/// The body of [`reqwless_exchange`], as a macro for the size binary's `async fn exchange`
/// (see [`rawpost_exchange_body`]).
#[cfg(feature = "reqwless")]
#[macro_export]
macro_rules! reqwless_exchange_body {
    ($stream:expr, $rx:expr) => {{
        let mut conn = reqwless::client::HttpConnection::Plain($stream);
        let Ok(resp) = conn.send($crate::reqwless_request(), $rx).await else {
            return 0;
        };
        if resp.status.0 != 200 {
            return 0;
        }
        match resp.body().read_to_end().await {
            Ok(body) => body.len(),
            Err(_) => 0,
        }
    }};
}

/// The reference exchange through reqwless 0.14 over a plain connection (what its
/// `HttpClient` uses for `http://`): send the POST, read the body to its end (into the receive
/// buffer `rx`, which is how its `read_to_end` works).
#[cfg(feature = "reqwless")]
pub async fn reqwless_exchange<S: Read + Write>(stream: S, rx: &mut [u8]) -> usize {
    reqwless_exchange_body!(stream, rx)
}

/// The same through reqwless's `into_buffered` connection, which gathers the request's writes
/// in `tx` and writes once.
#[cfg(feature = "reqwless")]
pub async fn reqwless_exchange_buffered<S: Read + Write>(
    stream: S,
    tx: &mut [u8],
    rx: &mut [u8],
) -> usize {
    let mut conn = reqwless::client::HttpConnection::Plain(stream).into_buffered(tx);
    let Ok(resp) = conn.send(reqwless_request(), rx).await else {
        return 0;
    };
    if resp.status.0 != 200 {
        return 0;
    }
    match resp.body().read_to_end().await {
        Ok(body) => body.len(),
        Err(_) => 0,
    }
}

/// The reference exchange through reqwless with the body read by `Read::read` on its body
/// reader into `out`. Used for the size of that future.
#[cfg(feature = "reqwless")]
pub async fn reqwless_exchange_read<S: Read + Write>(
    stream: S,
    rx: &mut [u8],
    out: &mut [u8],
) -> usize {
    let mut conn = reqwless::client::HttpConnection::Plain(stream);
    let Ok(resp) = conn.send(reqwless_request(), rx).await else {
        return 0;
    };
    if resp.status.0 != 200 {
        return 0;
    }
    let mut body = resp.body().reader();
    let mut n = 0;
    while let Some(rest) = out.get_mut(n..) {
        match body.read(rest).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}
