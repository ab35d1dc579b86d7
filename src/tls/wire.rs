//! The transport under a TLS session: bytes pass through unchanged, but it sees every record
//! header (the type and length of a TLS record are in clear), hands a header to embedded-tls only
//! when all 5 bytes are in, and can be asked not to wait (a probe). What it saw is kept in a
//! few cells shared with the [`TlsStream`](super::TlsStream) and read by the explanations.

use core::cell::Cell;
use core::future::Future;
use core::pin::pin;
use core::task::Poll;

use embedded_io::ErrorKind;
use embedded_io_async::{ErrorType, Read, Write};

/// The bytes of the cells shared between a [`Transport`] and its session, taken from the end of
/// the write buffer by [`TlsStream::open`](super::TlsStream::open).
pub(crate) const LINK_LEN: usize = 12;

// The cells: flags, then what was seen.
const FLAGS: usize = 0;
/// The length of the first plaintext handshake record (u16).
const FIRST_HS_RECORD: usize = 1;
/// The length of the ServerHello message, from its header (u24).
const HELLO_LEN: usize = 3;
/// The last record header read: type, then length (u16).
const LAST_TYPE: usize = 6;
const LAST_LEN: usize = 7;
/// The ServerHello's legacy_version (u16).
const HELLO_VERSION: usize = 9;

// Flags.
/// The session asks the transport not to wait: return `NotReady` instead.
const PROBE: u8 = 1;
/// The server's first bytes were `HTTP/`.
const HTTP: u8 = 2;
/// A whole ServerHello was seen, without a supported_versions extension.
const NO_SUPPORTED_VERSIONS: u8 = 4;
/// The first handshake message (the ServerHello) did not end in its first record.
const HELLO_SPANS: u8 = 8;
/// An encrypted record (application_data) was read.
const ENCRYPTED: u8 = 16;
/// The body of the last record was delivered whole.
const LAST_COMPLETE: u8 = 32;
/// A ServerHello header was seen.
const HELLO: u8 = 64;

/// The cells a transport shares with its session (none for a transport made by
/// [`Transport::new`]).
#[derive(Clone, Copy)]
pub(crate) struct Link<'b>(Option<&'b [Cell<u8>; LINK_LEN]>);

impl<'b> Link<'b> {
    /// Takes [`LINK_LEN`] bytes from the end of `buf` for the link, if it is large enough to
    /// spare them (a write buffer must also hold the ClientHello, 185 bytes at least).
    pub(crate) fn carve(buf: &'b mut [u8]) -> (&'b mut [u8], Self) {
        if buf.len() < 512 {
            return (buf, Self(None));
        }
        let at = buf.len() - LINK_LEN;
        let (rest, cells) = buf.split_at_mut(at);
        let cells = Cell::from_mut(cells).as_slice_of_cells();
        let cells = <&[Cell<u8>; LINK_LEN]>::try_from(cells).ok();
        if let Some(cells) = cells {
            for c in cells {
                c.set(0);
            }
        }
        (rest, Self(cells))
    }

    pub(crate) const fn none() -> Self {
        Self(None)
    }

    fn get(&self, i: usize) -> u8 {
        self.0.map_or(0, |c| c[i].get())
    }

    fn set(&self, i: usize, v: u8) {
        if let Some(c) = self.0 {
            c[i].set(v);
        }
    }

    fn flag(&self, f: u8) -> bool {
        self.get(FLAGS) & f != 0
    }

    fn set_flag(&self, f: u8, on: bool) {
        let v = self.get(FLAGS);
        self.set(FLAGS, if on { v | f } else { v & !f });
    }

    fn get_u16(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.get(i), self.get(i + 1)])
    }

    fn set_u16(&self, i: usize, v: u16) {
        let [a, b] = v.to_be_bytes();
        self.set(i, a);
        self.set(i + 1, b);
    }

    /// Asks the transport not to wait (`NotReady`) until the probe ends.
    pub(crate) fn probe(&self, on: bool) {
        self.set_flag(PROBE, on);
    }

    /// What was seen so far.
    pub(crate) fn seen(&self) -> Seen {
        let flags = self.get(FLAGS);
        let hello_len = u32::from_be_bytes([
            0,
            self.get(HELLO_LEN),
            self.get(HELLO_LEN + 1),
            self.get(HELLO_LEN + 2),
        ]);
        let hello_len = u16::try_from(hello_len).unwrap_or(u16::MAX);
        Seen {
            linked: self.0.is_some(),
            flags,
            first_handshake_record: self.get_u16(FIRST_HS_RECORD),
            hello_len,
            hello_version: self.get_u16(HELLO_VERSION),
            last_type: self.get(LAST_TYPE),
            last_len: self.get_u16(LAST_LEN),
        }
    }
}

/// What the transport saw of the server's records: enough to explain a failure from what was
/// on the wire (the type and length of every record are in clear; the content of encrypted
/// records is not seen). [`OpenError`](super::OpenError) and
/// [`SessionError`](super::SessionError) carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seen {
    linked: bool,
    flags: u8,
    first_handshake_record: u16,
    hello_len: u16,
    hello_version: u16,
    last_type: u8,
    last_len: u16,
}

/// The largest encrypted record a TLS 1.3 server sends without padding: 16,384 bytes of data,
/// the content type and the 16-byte AEAD tag (RFC 8446 §5.2).
pub const FULL_RECORD: u16 = 16_384 + 1 + 16;

impl Seen {
    /// Whether anything was recorded (a session opened by [`TlsStream::open`](super::TlsStream::open); one wrapped
    /// with [`Transport::new`] records nothing).
    pub fn is_recorded(&self) -> bool {
        self.linked
    }

    /// The server's first bytes were `HTTP/`: it answered in plain HTTP.
    pub fn plain_http(&self) -> bool {
        self.flags & HTTP != 0
    }

    /// The server's ServerHello was read whole, and it has no supported_versions extension:
    /// its version is the legacy_version field (TLS 1.2 for 0x0303, older below), not TLS 1.3.
    pub fn hello_without_supported_versions(&self) -> Option<u16> {
        (self.flags & NO_SUPPORTED_VERSIONS != 0).then_some(self.hello_version)
    }

    /// The length of the first plaintext handshake record, and of the ServerHello message's
    /// body (from its header; 65,535 for more), when the message did not end in that record.
    pub fn hello_spanning(&self) -> Option<(u16, u16)> {
        (self.flags & HELLO_SPANS != 0).then_some((self.first_handshake_record, self.hello_len))
    }

    /// The last record header read: content type and length; and whether its body was read
    /// whole.
    pub fn last_record(&self) -> Option<(u8, u16, bool)> {
        (self.last_type != 0).then_some((
            self.last_type,
            self.last_len,
            self.flags & LAST_COMPLETE != 0,
        ))
    }

    /// Whether an encrypted record was read.
    pub fn encrypted(&self) -> bool {
        self.flags & ENCRYPTED != 0
    }

    /// Whether the last record read was an encrypted record of the largest size a server
    /// sends without padding ([`FULL_RECORD`]): a message that did not end in it continues in
    /// the next record.
    pub fn last_record_full(&self) -> bool {
        matches!(self.last_record(), Some((23, n, _)) if n >= FULL_RECORD)
    }
}

/// The scan of the ServerHello as it passes (RFC 8446 §4.1.3): its length, version, and
/// whether it has a supported_versions extension. Positions count from the message's first
/// byte (its type).
#[derive(Clone, Copy, Default)]
struct Hello {
    /// Bytes of the first handshake message seen so far.
    pos: u16,
    /// Its length from its header, plus the 4 header bytes (0 until known).
    end: u16,
    /// Where the extensions start and where the next extension header is.
    next_ext: u16,
    /// The extension type being read (its first byte, then both).
    ext_type: u16,
    /// Session id length, then other small fields.
    sid_len: u8,
    ext_len: u16,
    done: bool,
}

/// The transport under a [`TlsStream`](super::TlsStream) (a TCP socket, ...): bytes pass
/// through unchanged, except one record that embedded-tls 0.19 gets wrong; and it follows the
/// record framing of what it reads.
///
/// **The alert record.** When a handshake is aborted (rawpost's verifier refusing the server's
/// certificate, for example), embedded-tls 0.19 writes its alert as a 7-byte record whose
/// header says `change_cipher_spec` (type 20, version 0x0301) around the 2-byte alert. Servers
/// reject that as a malformed ChangeCipherSpec (rustls: "illegal middlebox change cipher spec")
/// and never see the alert. `Transport` rewrites exactly that record into an `alert` record
/// (type 21, version 0x0303) with the same level and description, so the server logs why it
/// was refused (bad_certificate, unknown_ca, certificate_expired...). The alert is sent
/// unencrypted, before the client's first encrypted record, which TLS 1.3 servers (rustls,
/// OpenSSL) accept. embedded-tls never sends a real ChangeCipherSpec, so nothing else can match.
///
/// **The records it reads.** A record header (5 bytes) is handed to embedded-tls only when all
/// 5 bytes have arrived, and a record's body is never read past its end, so the transport always
/// knows where the next record starts. A session made by [`TlsStream::open`](super::TlsStream::open) shares a few
/// bytes with it (taken from the end of the write buffer): the type and length of the last
/// record, the ServerHello's length and version, whether the first bytes were `HTTP/` — what the
/// error explanations use ([`Seen`]) — and a *probe* switch: while
/// [`TlsStream::read_ready`](super::TlsStream) probes, a read of the inner stream that would
/// wait is dropped and reported as `NotReady`, and the header of a record whose body was
/// interrupted is handed out again when embedded-tls starts that record over. The inner
/// stream's `read` must therefore be cancel-safe (dropping a pending read loses no byte), as
/// embedded-io-async asks of implementations (embassy-net's TCP socket and tokio's are).
pub struct Transport<'b, S> {
    inner: S,
    link: Link<'b>,
    /// The header of the current record.
    header: [u8; 5],
    /// Header bytes read from the inner stream (5: complete).
    have: u8,
    /// Header bytes handed to the reader (0 after an interrupted body: hand it again).
    given: u8,
    /// Body bytes of the current record not yet handed out.
    left: u16,
    /// Bytes read in all (saturating), to tell the first bytes.
    total: u8,
    hello: Hello,
}

/// What embedded-tls 0.19 writes for an unencrypted alert: content type 20
/// (change_cipher_spec), version 0x0301, length 2, then level and description.
const BROKEN_ALERT_HEADER: [u8; 5] = [20, 0x03, 0x01, 0x00, 0x02];
/// A TLS 1.3 plaintext alert record header: content type 21 (alert), version 0x0303, length 2.
const ALERT_HEADER: [u8; 5] = [21, 0x03, 0x03, 0x00, 0x02];

/// The error of a [`Transport`]: the inner stream's, or [`NotReady`](Self::NotReady) when a
/// probe found nothing ready (embedded-tls sees only its [`kind`](embedded_io::Error::kind):
/// `Interrupted`, as embedded-io 0.7 has no `WouldBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransportError<E> {
    /// The inner stream's error.
    Inner(E),
    /// A probe found no byte ready; the read would have waited (kind `Interrupted`).
    NotReady,
}

impl<E: embedded_io::Error> embedded_io::Error for TransportError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Inner(e) => e.kind(),
            Self::NotReady => ErrorKind::Interrupted,
        }
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for TransportError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Inner(e) => write!(f, "{e:?}"),
            Self::NotReady => f.write_str("nothing ready to read (a readiness probe)"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for TransportError<E> {}

impl<'b, S> Transport<'b, S> {
    /// Wraps the transport (a connected TCP socket, ...). A transport made here records
    /// nothing for explanations and cannot be probed; [`TlsStream::open`](super::TlsStream::open) makes one that
    /// can.
    pub fn new(inner: S) -> Self {
        Self::linked(inner, Link::none())
    }

    pub(crate) fn linked(inner: S, link: Link<'b>) -> Self {
        Self {
            inner,
            link,
            header: [0; 5],
            have: 0,
            given: 0,
            left: 0,
            total: 0,
            hello: Hello::default(),
        }
    }

    /// The transport.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The transport, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// A complete header arrived: note what it says.
    #[inline(never)]
    fn on_header(&mut self) {
        let h = self.header;
        let len = u16::from_be_bytes([h[3], h[4]]);
        self.left = len;
        if self.total <= 5 && h == *b"HTTP/" {
            self.link.set_flag(HTTP, true);
        }
        self.link.set(LAST_TYPE, h[0]);
        self.link.set_u16(LAST_LEN, len);
        self.link.set_flag(LAST_COMPLETE, len == 0);
        match h[0] {
            23 => self.link.set_flag(ENCRYPTED, true),
            22 if !self.link.flag(ENCRYPTED) && self.link.get_u16(FIRST_HS_RECORD) == 0 => {
                self.link.set_u16(FIRST_HS_RECORD, len);
            }
            _ => {}
        }
    }

    /// Body bytes of the current record passed: scan the ServerHello.
    fn on_body(&mut self, bytes: &[u8]) {
        if self.header[0] == 22 && !self.hello.done {
            self.scan(bytes);
        }
        if self.left == 0 {
            self.on_record_end();
        }
    }

    /// The plaintext handshake bytes before the first encrypted record: the ServerHello.
    #[cold]
    #[inline(never)]
    fn scan(&mut self, bytes: &[u8]) {
        if self.link.flag(ENCRYPTED) {
            return;
        }
        for &b in bytes {
            self.scan_hello(b);
            if self.hello.done {
                break;
            }
        }
    }

    /// The body of the current record was handed out whole.
    #[inline(never)]
    fn on_record_end(&mut self) {
        self.link.set_flag(LAST_COMPLETE, true);
        if self.header[0] == 22 && !self.hello.done && self.hello.pos > 0 {
            // The first handshake record ended inside the first message.
            self.link.set_flag(HELLO_SPANS, true);
        }
    }

    /// One byte of the first handshake message (RFC 8446 §4.1.3 ServerHello).
    #[inline(always)]
    fn scan_hello(&mut self, b: u8) {
        let h = &mut self.hello;
        let at = h.pos;
        h.pos = h.pos.saturating_add(1);
        match at {
            0 => {
                if b != 2 {
                    h.done = true;
                } else {
                    self.link.set_flag(HELLO, true);
                }
            }
            1..=3 => {
                let i = HELLO_LEN + usize::from(at - 1);
                self.link.set(i, b);
                if at == 3 {
                    let len = u32::from_be_bytes([
                        0,
                        self.link.get(HELLO_LEN),
                        self.link.get(HELLO_LEN + 1),
                        b,
                    ]);
                    h.end = u16::try_from(len.saturating_add(4)).unwrap_or(u16::MAX);
                }
            }
            4 | 5 => self.link.set(HELLO_VERSION + usize::from(at - 4), b),
            38 => h.sid_len = b,
            _ => {
                let sid_end = 39 + u16::from(h.sid_len);
                // suite (2), compression (1), extensions length (2)
                if at == sid_end + 3 {
                    h.ext_len = u16::from(b) << 8;
                } else if at == sid_end + 4 {
                    h.ext_len |= u16::from(b);
                    h.next_ext = at + 1;
                } else if h.next_ext != 0 && at >= h.next_ext {
                    let off = at - h.next_ext;
                    match off {
                        0 => h.ext_type = u16::from(b) << 8,
                        1 => h.ext_type |= u16::from(b),
                        2 => h.ext_len = u16::from(b) << 8,
                        _ => {
                            // off == 3: the extension's length; skip its data.
                            let len = h.ext_len | u16::from(b);
                            if h.ext_type == 43 {
                                // supported_versions: TLS 1.3 (or a HelloRetryRequest).
                                h.done = true;
                                return;
                            }
                            h.next_ext = at.saturating_add(1).saturating_add(len);
                        }
                    }
                }
            }
        }
        if h.end != 0 && h.pos >= h.end {
            h.done = true;
            // The whole message passed without supported_versions.
            self.link.set_flag(NO_SUPPORTED_VERSIONS, true);
        }
    }
}

impl<S: ErrorType> ErrorType for Transport<'_, S> {
    type Error = TransportError<S::Error>;
}

/// Awaits the inner stream's future `$f` — or, when `$probe` is set, polls it once and reports
/// `NotReady` instead of waiting. A macro, not an async fn, so that the inner future is stored
/// once in the caller's state (an async fn would keep its argument and its pinned copy).
macro_rules! once_or_wait {
    ($probe:expr, $f:expr) => {{
        let probe: bool = $probe;
        let mut f = pin!($f);
        core::future::poll_fn(|cx| match f.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map_err(TransportError::Inner)),
            Poll::Pending if probe => Poll::Ready(Err(TransportError::NotReady)),
            Poll::Pending => Poll::Pending,
        })
        .await
    }};
}

impl<S: Read> Read for Transport<'_, S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let probe = self.link.flag(PROBE);
        loop {
            let header = self.given < 5;
            if header && self.have == 5 {
                // The header is whole: hand it out (again, after an interrupted body).
                let from = usize::from(self.given);
                let n = buf.len().min(5 - from);
                buf[..n].copy_from_slice(&self.header[from..from + n]);
                self.given += n as u8;
                if self.given == 5 && self.left == 0 {
                    // An empty record: the next read is a header.
                    self.have = 0;
                    self.given = 0;
                }
                return Ok(n);
            }
            // One read of the inner stream (one await point, so that its future is stored
            // once): header bytes into the header until all 5 are in, body bytes into `buf`,
            // never past the record's end.
            let target: &mut [u8] = if header {
                &mut self.header[usize::from(self.have)..]
            } else {
                let want = buf.len().min(usize::from(self.left));
                &mut buf[..want]
            };
            let n = match once_or_wait!(probe, self.inner.read(target)) {
                Ok(n) => n,
                Err(e) => {
                    if !header && matches!(e, TransportError::NotReady) {
                        // embedded-tls gives up this record and reads its header again.
                        self.given = 0;
                    }
                    return Err(e);
                }
            };
            if n == 0 {
                return Ok(0);
            }
            if header {
                self.total = self.total.saturating_add(n as u8);
                self.have += n as u8;
                if self.have == 5 {
                    self.on_header();
                }
                continue;
            }
            self.left -= n as u16;
            self.on_body(&buf[..n]);
            if self.left == 0 {
                self.have = 0;
                self.given = 0;
            }
            return Ok(n);
        }
    }
}

impl<S: Write> Write for Transport<'_, S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if let [header @ .., level @ (1 | 2), description] = buf {
            if *header == BROKEN_ALERT_HEADER {
                let mut record = [0u8; 7];
                record[..5].copy_from_slice(&ALERT_HEADER);
                record[5] = *level;
                record[6] = *description;
                self.inner
                    .write_all(&record)
                    .await
                    .map_err(TransportError::Inner)?;
                return Ok(buf.len());
            }
        }
        self.inner.write(buf).await.map_err(TransportError::Inner)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await.map_err(TransportError::Inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::{Context, Waker};
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// An inner stream that hands out scripted pieces; `None` is one read that would wait.
    struct Script(VecDeque<Option<Vec<u8>>>);

    impl ErrorType for Script {
        type Error = core::convert::Infallible;
    }

    impl Read for Script {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            match self.0.pop_front() {
                None => Ok(0),
                Some(None) => core::future::pending().await,
                Some(Some(mut piece)) => {
                    let n = piece.len().min(buf.len());
                    buf[..n].copy_from_slice(&piece[..n]);
                    if n < piece.len() {
                        piece.drain(..n);
                        self.0.push_front(Some(piece));
                    }
                    Ok(n)
                }
            }
        }
    }

    fn script(pieces: &[Option<&[u8]>]) -> Script {
        Script(pieces.iter().map(|p| p.map(<[u8]>::to_vec)).collect())
    }

    /// Polls once: `None` if the read would wait.
    fn poll<T>(f: impl Future<Output = T>) -> Option<T> {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    fn cells() -> [u8; 600] {
        [0; 600]
    }

    /// Reads one record the way embedded-tls does: 5 header bytes, then the body.
    fn record<S: Read>(
        t: &mut Transport<'_, S>,
    ) -> Result<(u8, Vec<u8>), TransportError<S::Error>> {
        let mut header = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += poll(t.read(&mut header[got..])).expect("no wait")?;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut body = std::vec![0u8; len];
        let mut at = 0;
        while at < len {
            let n = poll(t.read(&mut body[at..])).expect("no wait")?;
            assert!(n > 0);
            at += n;
        }
        Ok((header[0], body))
    }

    #[test]
    fn a_header_is_handed_out_only_whole_and_a_body_never_past_its_end() {
        let mut buf = cells();
        let (_, link) = Link::carve(&mut buf);
        // The header in 1-byte pieces, two records in one piece.
        let mut t = Transport::linked(
            script(&[
                Some(&[23]),
                Some(&[3]),
                Some(&[3, 0]),
                Some(&[3, 1, 2, 3, 23, 3, 3, 0, 1, 9]),
            ]),
            link,
        );
        let mut header = [0u8; 5];
        assert_eq!(poll(t.read(&mut header)).unwrap().unwrap(), 5);
        assert_eq!(header, [23, 3, 3, 0, 3]);
        let mut body = [0u8; 16];
        assert_eq!(poll(t.read(&mut body)).unwrap().unwrap(), 3);
        assert_eq!(&body[..3], [1, 2, 3]);
        assert_eq!(record(&mut t).unwrap(), (23, std::vec![9]));
        assert_eq!(link.seen().last_record(), Some((23, 1, true)));
    }

    #[test]
    fn a_probe_never_waits_and_the_interrupted_record_starts_over_whole() {
        let mut buf = cells();
        let (_, link) = Link::carve(&mut buf);
        let mut t = Transport::linked(
            script(&[
                Some(&[23, 3]),
                None,
                Some(&[3, 0, 4, 0xa]),
                None,
                Some(&[0xb, 0xc, 0xd]),
                None,
            ]),
            link,
        );
        link.probe(true);
        // Inside the header: not ready, nothing handed out.
        let mut header = [0u8; 5];
        assert_eq!(
            poll(t.read(&mut header)).unwrap(),
            Err(TransportError::NotReady)
        );
        assert_eq!(poll(t.read(&mut header)).unwrap().unwrap(), 5);
        let mut body = [0u8; 4];
        assert_eq!(poll(t.read(&mut body)).unwrap().unwrap(), 1);
        // Inside the body: not ready; the reader starts the record over and gets the same header.
        assert_eq!(
            poll(t.read(&mut body[1..])).unwrap(),
            Err(TransportError::NotReady)
        );
        let mut again = [0u8; 5];
        assert_eq!(poll(t.read(&mut again)).unwrap().unwrap(), 5);
        assert_eq!(again, [23, 3, 3, 0, 4]);
        assert_eq!(poll(t.read(&mut body[1..])).unwrap().unwrap(), 3);
        assert_eq!(body, [0xa, 0xb, 0xc, 0xd]);
        // Not probing: a read that would wait waits.
        link.probe(false);
        assert!(poll(t.read(&mut header)).is_none());
    }

    /// A ServerHello (RFC 8446 §4.1.3) with `extensions`.
    fn hello(version: [u8; 2], extensions: &[u8]) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[2, 0xaa, 0xbb]); // a session id of 2 bytes
        body.extend_from_slice(&[0x13, 0x01, 0]);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
        let len = (body.len() as u32).to_be_bytes();
        let mut m = std::vec![2, len[1], len[2], len[3]];
        m.extend(body);
        m
    }

    /// `message` in plaintext handshake records of `size` bytes, read through a transport.
    fn seen_after(message: &[u8], size: usize) -> Seen {
        let mut wire = Vec::new();
        for piece in message.chunks(size) {
            wire.extend_from_slice(&[22, 3, 3, 0, piece.len() as u8]);
            wire.extend_from_slice(piece);
        }
        let mut buf = cells();
        let (_, link) = Link::carve(&mut buf);
        let mut t = Transport::linked(script(&[Some(&wire)]), link);
        for _ in 0..message.len().div_ceil(size) {
            record(&mut t).unwrap();
        }
        link.seen()
    }

    #[test]
    fn a_server_hello_without_supported_versions_is_seen_with_its_version() {
        // renegotiation_info, then ec_point_formats: what a TLS 1.2 server sends.
        let tls12 = hello([3, 3], &[0xff, 1, 0, 1, 0, 0, 11, 0, 2, 1, 0]);
        for size in [tls12.len(), 10, 1] {
            let seen = seen_after(&tls12, size);
            assert_eq!(
                seen.hello_without_supported_versions(),
                Some(0x0303),
                "{size}"
            );
        }
        let tls10 = hello([3, 1], &[]);
        assert_eq!(
            seen_after(&tls10, 200).hello_without_supported_versions(),
            Some(0x0301)
        );
        // supported_versions (after another extension): TLS 1.3, whatever legacy_version says.
        let tls13 = hello([3, 3], &[0, 11, 0, 2, 1, 0, 0, 43, 0, 2, 3, 4]);
        let seen = seen_after(&tls13, 200);
        assert_eq!(seen.hello_without_supported_versions(), None);
        assert_eq!(seen.hello_spanning(), None);
    }

    #[test]
    fn a_server_hello_spanning_records_is_seen_with_both_sizes() {
        let tls13 = hello([3, 3], &[0, 43, 0, 2, 3, 4]);
        let seen = seen_after(&tls13, 27);
        assert_eq!(seen.hello_spanning(), Some((27, tls13.len() as u16 - 4)));
        assert_eq!(seen_after(&tls13, tls13.len()).hello_spanning(), None);
    }

    #[test]
    fn plain_http_is_seen_only_at_the_start() {
        let mut buf = cells();
        let (_, link) = Link::carve(&mut buf);
        let mut t = Transport::linked(script(&[Some(b"HTTP/1.1 400 Bad Request\r\n")]), link);
        let mut header = [0u8; 5];
        assert_eq!(poll(t.read(&mut header)).unwrap().unwrap(), 5);
        assert!(link.seen().plain_http());

        let mut buf = cells();
        let (_, link) = Link::carve(&mut buf);
        let mut t = Transport::linked(script(&[Some(&[23, 3, 3, 0, 0]), Some(b"HTTP/")]), link);
        record(&mut t).unwrap();
        let mut header = [0u8; 5];
        assert_eq!(poll(t.read(&mut header)).unwrap().unwrap(), 5);
        assert!(!link.seen().plain_http());
    }

    #[test]
    fn a_small_write_buffer_keeps_its_bytes_and_records_nothing() {
        let mut small = [0u8; 511];
        let (rest, link) = Link::carve(&mut small);
        assert_eq!(rest.len(), 511);
        assert!(!link.seen().is_recorded());
        let mut buf = cells();
        let (rest, link) = Link::carve(&mut buf);
        assert_eq!(rest.len(), 600 - LINK_LEN);
        assert!(link.seen().is_recorded());
    }

    #[test]
    fn the_transport_is_small() {
        // What it adds to the stream it wraps: the link, a record header and its counters, and
        // the ServerHello scan.
        let words = core::mem::size_of::<usize>();
        assert_eq!(core::mem::size_of::<Transport<'_, ()>>(), 24 + words);
        // What every SessionError carries.
        assert_eq!(core::mem::size_of::<Seen>(), 12);
    }
}
