//! What both size binaries share: a plain in-memory stream, an executor that polls a future
//! that never waits, and the entry point glue. Nothing here depends on either HTTP crate.
#![no_std]

use core::future::Future;
use core::hint::black_box;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

/// The server's answer, the same for both crates.
pub static RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 87\r\nCache-Control: no-store\r\n\r\n{\"access_token\":\"eyJhbGciOiJIUzI1NiJ9.e30.abc\",\"token_type\":\"Bearer\",\"expires_in\":3600}";

/// The 100-byte JSON request body.
pub static BODY: &[u8; 100] =
    br#"{"grant_type":"client_credentials","client_id":"esp32-c3-0042","client_secret":"s3cr3t-0123456789a"}"#;

pub const HOST: &str = "api.example.com";
pub const PATH: &str = "/oauth/token";
pub const USER_AGENT: &str = "rawpost-bench/1.0";
pub const CONTENT_TYPE: &str = "application/json";

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
