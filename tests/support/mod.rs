//! An in-memory peer for the I/O shells: the server's side of an exchange is a script of bytes,
//! delivered in scripted read sizes, with EOF or an I/O error injected at a chosen offset, and
//! every write captured. A script may be cut into turns, each released only when the client
//! writes after reading all of the last one (a server answers a request, never ahead of it),
//! after a delay on a [`FakeClock`] that both shells share. And what a caller observes of a
//! response, through either shell ([`outcome::Outcome`]), with the loops that read a body to
//! its end; and, for the tests against real servers, what they share ([`net`]).
#![allow(dead_code)]

pub mod net;
pub mod outcome;

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// The stream's error: an injected fault. Its kind is `Other`, a failure that says nothing
/// about the connection having ended (see [`Resets`] for one that does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected;

impl core::fmt::Display for Injected {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("injected fault")
    }
}

impl core::error::Error for Injected {}

impl embedded_io::Error for Injected {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

/// How many bytes each read delivers (at most what the client asks for).
#[derive(Debug, Clone)]
pub enum Reads {
    /// As many as asked.
    Whole,
    /// At most `n` per read.
    Max(usize),
    /// These sizes in turn, then as many as asked.
    Sizes(Vec<usize>),
}

/// A scripted server.
#[derive(Debug)]
pub struct Peer {
    pub script: Vec<u8>,
    pub pos: usize,
    pub reads: Reads,
    pub read_calls: usize,
    /// Reads end (EOF) once this many script bytes were delivered.
    pub eof_at: Option<usize>,
    /// Reads fail once this many script bytes were delivered.
    pub error_at: Option<usize>,
    /// The nth write call (0-based) fails.
    pub write_error_at: Option<usize>,
    /// Each write accepts at most this many bytes.
    pub write_max: Option<usize>,
    pub writes: Vec<Vec<u8>>,
    pub flushes: usize,
    /// The nth flush call (0-based) fails.
    pub flush_error_at: Option<usize>,
    /// Where each turn of the script ends (empty: the whole script is there from the start).
    pub turns: Vec<usize>,
    /// Script bytes the client may read so far.
    pub released: usize,
    /// Turns released so far.
    pub turn: usize,
    /// Per turn, how long after its release (ms on the clock) its bytes arrive.
    pub delays: Vec<u64>,
    /// The clock the delays are on.
    pub clock: Option<FakeClock>,
    /// When the released bytes arrive.
    pub ready_at: u64,
    /// The deadline a blocking shell put on the next call.
    pub bound: Option<u64>,
}

impl Peer {
    pub fn new(script: &[u8]) -> Self {
        Self {
            script: script.to_vec(),
            pos: 0,
            reads: Reads::Whole,
            read_calls: 0,
            eof_at: None,
            error_at: None,
            write_error_at: None,
            write_max: None,
            writes: Vec::new(),
            flushes: 0,
            flush_error_at: None,
            turns: Vec::new(),
            released: script.len(),
            turn: 0,
            delays: Vec::new(),
            clock: None,
            ready_at: 0,
            bound: None,
        }
    }

    /// A server that answers turn by turn: each part is released when the client writes after
    /// having read all of the last (a request), `delays[k]` ms after that write.
    pub fn turns(parts: &[&[u8]], delays: &[u64], clock: &FakeClock) -> Self {
        let mut peer = Self::new(&parts.concat());
        let mut end = 0;
        peer.turns = parts
            .iter()
            .map(|p| {
                end += p.len();
                end
            })
            .collect();
        peer.released = 0;
        peer.delays = delays.to_vec();
        peer.clock = Some(clock.clone());
        peer
    }

    fn now(&self) -> u64 {
        self.clock.as_ref().map_or(0, |c| c.0.get())
    }

    /// Whether a read now returns at once: bytes arrived, or the script (or the stream) is over.
    fn readable(&self) -> bool {
        // The script is over once every turn was released and read: the server closes. (An
        // empty last turn: it closes once it has read the next request.)
        let over = (self.turn >= self.turns.len() && self.pos >= self.script.len())
            || self.eof_at.is_some_and(|e| self.pos >= e)
            || self.error_at.is_some_and(|e| self.pos >= e);
        over || (self.pos < self.released && self.now() >= self.ready_at)
    }

    /// A blocking read: waits (moves the clock) until the bytes arrive, or until the deadline
    /// the shell set, and then fails (a timeout).
    fn read_blocking(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        if !self.readable() {
            let arrives = (self.pos < self.released).then_some(self.ready_at);
            match (arrives, self.bound) {
                (Some(at), None) => self.clock.as_ref().expect("a clock").set(at),
                (Some(at), Some(b)) if at <= b => self.clock.as_ref().expect("a clock").set(at),
                (_, Some(b)) => {
                    self.clock.as_ref().expect("a clock").set(b.max(self.now()));
                    return Err(Injected);
                }
                (None, None) => panic!("a blocking read that would wait forever"),
            }
        }
        self.read_now(buf)
    }

    pub fn reads(mut self, reads: Reads) -> Self {
        self.reads = reads;
        self
    }

    /// Everything the client wrote, concatenated.
    pub fn written(&self) -> Vec<u8> {
        self.writes.concat()
    }

    fn read_now(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        self.read_calls += 1;
        if self.error_at.is_some_and(|e| self.pos >= e) {
            return Err(Injected);
        }
        let end = self.eof_at.unwrap_or(usize::MAX).min(self.script.len());
        let end = self.error_at.map_or(end, |e| end.min(e));
        let end = end.min(self.released);
        let avail = end.saturating_sub(self.pos);
        let mut n = buf.len().min(avail);
        match &mut self.reads {
            Reads::Whole => {}
            Reads::Max(m) => n = n.min(*m),
            Reads::Sizes(sizes) => {
                if !sizes.is_empty() {
                    n = n.min(sizes.remove(0));
                }
            }
        }
        if n == 0 && avail > 0 && !buf.is_empty() {
            // A scripted size of 0 must not look like EOF.
            n = 1;
        }
        buf[..n].copy_from_slice(&self.script[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn flush_now(&mut self) -> Result<(), Injected> {
        self.flushes += 1;
        match self.flush_error_at == Some(self.flushes - 1) {
            true => Err(Injected),
            false => Ok(()),
        }
    }

    fn write_now(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        if self.pos >= self.released && self.turn < self.turns.len() && !buf.is_empty() {
            self.released = self.turns[self.turn];
            self.ready_at = self.now() + self.delays.get(self.turn).copied().unwrap_or(0);
            self.turn += 1;
        }
        if self.write_error_at == Some(self.writes.len()) {
            self.writes.push(Vec::new());
            return Err(Injected);
        }
        let n = self.write_max.map_or(buf.len(), |m| m.min(buf.len()));
        self.writes.push(buf[..n].to_vec());
        Ok(n)
    }
}

impl embedded_io::ErrorType for Peer {
    type Error = Injected;
}

impl embedded_io_async::Read for Peer {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        core::future::poll_fn(|_| match self.readable() {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await;
        self.read_now(buf)
    }
}

impl embedded_io_async::Write for Peer {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.write_now(buf)
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        self.flush_now()
    }
}

impl embedded_io::Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        self.read_blocking(buf)
    }
}

impl embedded_io::Write for Peer {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.write_now(buf)
    }

    fn flush(&mut self) -> Result<(), Injected> {
        self.flush_now()
    }
}

impl<T: embedded_io::ErrorType> embedded_io::ErrorType for Pending<T> {
    type Error = T::Error;
}

/// A stream whose reads are never ready, to abandon an exchange part-way.
pub struct Pending<T>(pub T);

impl<T: embedded_io_async::Read> embedded_io_async::Read for Pending<T> {
    async fn read(&mut self, _buf: &mut [u8]) -> Result<usize, T::Error> {
        core::future::pending().await
    }
}

impl<T: embedded_io_async::Write> embedded_io_async::Write for Pending<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, T::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), T::Error> {
        self.0.flush().await
    }
}

/// Runs a future that never waits on real I/O to completion.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future did not complete: something waits forever");
}

/// Polls a future once and drops it: the exchange is abandoned part-way.
pub fn poll_once_then_drop<F: Future>(f: F) -> bool {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    f.as_mut().poll(&mut cx).is_ready()
}

/// A small deterministic random number generator for read splits.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// A clock the test moves by hand: deadlines fire exactly when it says, and no test sleeps.
#[derive(Debug, Clone, Default)]
pub struct FakeClock(pub std::rc::Rc<std::cell::Cell<u64>>);

impl FakeClock {
    pub fn set(&self, ms: u64) {
        self.0.set(ms);
    }
}

impl rawpost::Timer for FakeClock {
    fn now_ms(&mut self) -> u64 {
        self.0.get()
    }

    fn wait_until(&mut self, deadline_ms: u64) -> impl Future<Output = ()> {
        let clock = self.0.clone();
        core::future::poll_fn(move |_| {
            if clock.get() >= deadline_ms {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// A stream whose reads stay pending until the client has made `open_after` write calls, or
/// the test opens it.
pub struct Gated {
    pub peer: Peer,
    pub open_after: usize,
}

impl embedded_io::ErrorType for Gated {
    type Error = Injected;
}

impl embedded_io_async::Read for Gated {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        let open_after = self.open_after;
        let peer = &mut self.peer;
        core::future::poll_fn(|_| {
            if peer.writes.len() >= open_after {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        self.peer.read_now(buf)
    }
}

impl embedded_io_async::Write for Gated {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.peer.write_now(buf)
    }

    async fn flush(&mut self) -> Result<(), Injected> {
        Ok(())
    }
}

/// Runs a future to completion on a fake clock: whenever it waits, the clock moves on by 1 ms
/// (so timers and delayed peers fire exactly when the clock says).
pub fn block_on_clock<F: Future>(f: F, clock: &FakeClock) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        clock.set(clock.0.get() + 1);
    }
    panic!("the future did not complete: something waits forever");
}

/// The fake clock bounds a blocking peer's calls as a std socket's timeouts would.
impl rawpost::blocking::Clock<&mut Peer> for FakeClock {
    fn now_ms(&mut self) -> u64 {
        self.0.get()
    }

    fn bound(&mut self, stream: &mut &mut Peer, until: Option<u64>) {
        stream.bound = until;
    }
}

/// Polls `f` once; returns its output if it is ready.
pub fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match core::pin::Pin::new(f).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// An injected fault that ends the connection: a reset (kind `ConnectionReset`), as a TCP RST
/// or a TLS session that ends without `close_notify` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset;

impl core::fmt::Display for Reset {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("connection reset")
    }
}

impl core::error::Error for Reset {}

impl embedded_io::Error for Reset {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::ConnectionReset
    }
}

/// A [`Peer`] whose injected faults are resets.
#[derive(Debug)]
pub struct Resets(pub Peer);

impl embedded_io::ErrorType for Resets {
    type Error = Reset;
}

impl embedded_io_async::Read for Resets {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Reset> {
        self.0.read_now(buf).map_err(|_| Reset)
    }
}

impl embedded_io_async::Write for Resets {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Reset> {
        self.0.write_now(buf).map_err(|_| Reset)
    }

    async fn flush(&mut self) -> Result<(), Reset> {
        Ok(())
    }
}

impl embedded_io::Read for Resets {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Reset> {
        self.0.read_now(buf).map_err(|_| Reset)
    }
}

impl embedded_io::ReadReady for Resets {
    fn read_ready(&mut self) -> Result<bool, Reset> {
        Ok(self.0.readable())
    }
}

impl embedded_io::Write for Resets {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Reset> {
        self.0.write_now(buf).map_err(|_| Reset)
    }

    fn flush(&mut self) -> Result<(), Reset> {
        Ok(())
    }
}

/// Ready when a read returns at once: bytes arrived, or the end of the stream once its script is
/// delivered (a server closes when its script is over).
impl embedded_io::ReadReady for Peer {
    fn read_ready(&mut self) -> Result<bool, Injected> {
        Ok(self.readable())
    }
}

/// A peer that keeps the connection open after its script: ready only while bytes are left
/// (a read past them would wait).
pub struct Open<'p>(pub &'p mut Peer);

impl embedded_io::ErrorType for Open<'_> {
    type Error = Injected;
}

impl embedded_io::ReadReady for Open<'_> {
    fn read_ready(&mut self) -> Result<bool, Injected> {
        Ok(self.0.pos < self.0.script.len())
    }
}

impl embedded_io::Read for Open<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Injected> {
        assert!(
            self.0.pos < self.0.script.len(),
            "a read that would wait forever"
        );
        self.0.read_now(buf)
    }
}

impl embedded_io::Write for Open<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Injected> {
        self.0.write_now(buf)
    }

    fn flush(&mut self) -> Result<(), Injected> {
        Ok(())
    }
}
