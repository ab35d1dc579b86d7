//! The connection's state machine driven directly, h11-style: no shell, no stream, no executor —
//! byte scripts in, steps out, and a clock that is a number. Each test names the steps and
//! deadlines the core asks for and what each event does to it.

use rawpost::proto::conn::{Core, ReadMode, Step};
use rawpost::proto::encode::RequestHead;
use rawpost::{
    Broken, ConnectionError, Error, Host, Method, ResponseError, TimeoutPhase, Timeouts,
};

const HOST: Host<'static> = Host::new("h");

/// An I/O error that is not an end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OtherErr;

/// A reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResetErr;

impl core::fmt::Display for OtherErr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("failed")
    }
}

impl core::fmt::Display for ResetErr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("reset")
    }
}

impl core::error::Error for OtherErr {}
impl core::error::Error for ResetErr {}

impl embedded_io::Error for OtherErr {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::Error for ResetErr {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::ConnectionReset
    }
}

type R<T> = Result<T, Error<OtherErr>>;

const TIMEOUTS: Timeouts = Timeouts {
    first_byte_ms: Some(100),
    idle_ms: Some(10),
    response_ms: Some(1_000),
    continue_ms: Some(50),
};

fn post(headers: &'static [(&'static str, &'static str)]) -> RequestHead<'static> {
    RequestHead {
        method: Method::Post,
        path: "/p",
        headers,
    }
}

/// A connection with a 256-byte buffer and the test timeouts.
struct Conn {
    core: Core,
    buf: Vec<u8>,
}

impl Conn {
    fn new() -> Self {
        Self {
            core: Core::new(TIMEOUTS),
            buf: vec![0u8; 256],
        }
    }

    /// The next step and its deadline, at `now`.
    fn poll(&mut self, now: u64) -> R<(Step, Option<u64>)> {
        let step = self.core.poll(&mut self.buf, &mut [], Some(now))?;
        Ok((step, self.core.until(now)))
    }

    /// The next step, at `now`.
    fn step(&mut self, now: u64) -> R<Step> {
        self.poll(now).map(|(step, _)| step)
    }

    fn send(&mut self, head: &RequestHead<'_>, body: &[u8], now: u64) -> R<()> {
        self.core
            .begin_send(&mut self.buf, head, &HOST, body, false, Some(now))
    }

    /// The server's bytes arrive for a `Read` step at `range.start`.
    fn arrive(&mut self, step: &(Step, Option<u64>), bytes: &[u8], now: u64) -> R<()> {
        let step = &step.0;
        let Step::Read(range) = step else {
            panic!("not a read: {step:?}")
        };
        assert!(range.len() >= bytes.len(), "{range:?} for {}", bytes.len());
        self.buf[range.start..range.start + bytes.len()].copy_from_slice(bytes);
        self.core.on_read::<OtherErr>(Ok(bytes.len()), Some(now))
    }

    /// Writes every `Write` step whole and flushes, up to the first read; returns the bytes.
    fn write_all(&mut self, now: u64) -> (Vec<u8>, (Step, Option<u64>)) {
        let mut written = Vec::new();
        loop {
            match self.poll(now).unwrap() {
                (Step::Write(range), _) => {
                    written.extend_from_slice(&self.buf[range.clone()]);
                    self.core
                        .on_write::<OtherErr>(Ok(range.len()), Some(now))
                        .unwrap();
                }
                (Step::Flush, _) => self.core.on_flush::<OtherErr>(Ok(()), Some(now)).unwrap(),
                other => return (written, other),
            }
        }
    }
}

const OK2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A POST: one write of head and body with the idle deadline, a flush, a read with the
/// first-byte deadline; the head parsed, the body read into the caller's slice, the connection
/// idle again.
#[test]
fn a_post_step_by_step() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"{}", 1_000).unwrap();
    let head = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(c.poll(1_000), Ok((Step::Write(0..head.len()), Some(1_010))));
    c.core
        .on_write::<OtherErr>(Ok(head.len()), Some(1_001))
        .unwrap();
    assert_eq!(c.poll(1_001), Ok((Step::Flush, Some(1_011))));
    c.core.on_flush::<OtherErr>(Ok(()), Some(1_002)).unwrap();
    // The response: the first byte within 100 ms of the flush, all of it within 1 s.
    let read = c.poll(1_050).unwrap();
    assert_eq!(read, (Step::Read(0..256), Some(1_102)));
    c.arrive(&read, &OK2[..20], 1_060).unwrap();
    // The rest of the head: the idle deadline from now.
    assert_eq!(c.poll(1_060), Ok((Step::Read(20..256), Some(1_070))));
    c.arrive(&(Step::Read(20..256), None), &OK2[20..], 1_065)
        .unwrap();
    assert_eq!(c.step(1_065), Ok(Step::Done(0)));
    assert_eq!(c.core.head().map(|h| h.status()), Some(200));
    assert!(!c.core.body_done());
    // The body was buffered with the head: decoded into the caller's slice.
    c.core.begin_read(ReadMode::ToEnd).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(
        c.core.poll::<OtherErr>(&mut c.buf, &mut out, Some(1_070)),
        Ok(Step::Done(2))
    );
    assert_eq!(&out[..2], b"ok");
    assert!(c.core.body_done());
    assert!(c.core.is_reusable(Some(1_070)));
    // One exchange completed: a kept connection, to be asked before the next request.
    assert!(c.core.wants_probe());
}

/// A body not yet buffered goes straight into the caller's slice (`ReadOut`), bounded by the
/// idle deadline and the response deadline.
#[test]
fn a_body_goes_straight_into_the_callers_slice() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    c.arrive(&read, head, 995).unwrap();
    assert_eq!(c.step(995), Ok(Step::Done(0)));
    c.core.begin_read(ReadMode::Some).unwrap();
    let mut out = [0u8; 8];
    // Idle would be 1 005; the response must end by 1 000.
    assert_eq!(
        c.core.poll::<OtherErr>(&mut c.buf, &mut out, Some(995)),
        Ok(Step::ReadOut(0..5))
    );
    assert_eq!(c.core.until(995), Some(1_000));
    out[..3].copy_from_slice(b"hel");
    c.core.on_read::<OtherErr>(Ok(3), Some(996)).unwrap();
    assert_eq!(
        c.core.poll::<OtherErr>(&mut c.buf, &mut out, Some(996)),
        Ok(Step::Done(3))
    );
    // The deadline passes: the phase is the response's.
    c.core.begin_read(ReadMode::Some).unwrap();
    assert!(matches!(
        c.core.poll::<OtherErr>(&mut c.buf, &mut out, Some(996)),
        Ok(Step::ReadOut(_))
    ));
    assert_eq!(
        c.core.on_timeout::<OtherErr>(Some(1_000)),
        Err(Error::Timeout(TimeoutPhase::Response))
    );
    assert_eq!(
        c.core.closed_error(),
        Some(ConnectionError::Broken(Broken::Timeout(
            TimeoutPhase::Response
        )))
    );
    assert!(!c.core.may_resend());
}

/// `Expect: 100-continue`: the head alone, then a read bounded by the continue wait; running
/// out of it sends the body from the caller's slice; a `100` sends it at once.
#[test]
fn expect_waits_for_100_or_the_continue_deadline() {
    const EXPECT: &[(&str, &str)] = &[("Expect", "100-continue")];
    for with_100 in [false, true] {
        let mut c = Conn::new();
        c.send(&post(EXPECT), b"body", 0).unwrap();
        let (written, read) = c.write_all(0);
        assert!(
            written.ends_with(b"Content-Length: 4\r\n\r\n"),
            "{written:?}"
        );
        assert_eq!(read, (Step::Read(0..256), Some(50)));
        if with_100 {
            c.arrive(&read, b"HTTP/1.1 100 Continue\r\n\r\n", 20)
                .unwrap();
        } else {
            c.core.on_timeout::<OtherErr>(Some(50)).unwrap();
        }
        let now = if with_100 { 20 } else { 50 };
        assert_eq!(c.poll(now), Ok((Step::WriteSrc(0..4), Some(now + 10))));
        c.core.on_write::<OtherErr>(Ok(4), Some(now)).unwrap();
        assert_eq!(c.poll(now), Ok((Step::Flush, Some(now + 10))));
        c.core.on_flush::<OtherErr>(Ok(()), Some(now)).unwrap();
        assert_eq!(c.poll(now), Ok((Step::Read(0..256), Some(now + 100))));
    }
    // Without a clock nothing can bound the wait: the body goes with the head.
    let mut c = Conn::new();
    c.core
        .begin_send::<OtherErr>(&mut c.buf, &post(EXPECT), &HOST, b"body", false, None)
        .unwrap();
    let (written, _) = c.write_all(0);
    assert!(written.ends_with(b"\r\n\r\nbody"));
}

/// After an interim response the final one gets the first-byte deadline again.
#[test]
fn an_interim_response_restarts_the_first_byte_deadline() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    c.arrive(&read, b"HTTP/1.1 102 Processing\r\n\r\n", 90)
        .unwrap();
    assert_eq!(c.poll(90), Ok((Step::Read(0..256), Some(190))));
    assert_eq!(
        c.core.on_timeout::<OtherErr>(Some(190)),
        Err(Error::Timeout(TimeoutPhase::FirstByte))
    );
}

/// Every end of the stream and every stream error, by where it happens.
#[test]
fn faults_are_classified_by_where_they_happen() {
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        Eof,
        Reset,
        Other,
    }
    #[derive(Clone, Copy, Debug)]
    enum Where {
        FirstWrite,
        AfterWrite,
        InHead,
        InBody,
    }
    /// The error with the stream's error replaced by a name.
    fn erase<E>(e: Error<E>, io: &'static str) -> Error<&'static str> {
        match e {
            Error::Io(_) => Error::Io(io),
            Error::Request(e) => Error::Request(e),
            Error::Response(e) => Error::Response(e),
            Error::Connection(e) => Error::Connection(e),
            Error::Timeout(p) => Error::Timeout(p),
            _ => unreachable!(),
        }
    }
    /// The fault, on a write or a read.
    fn inject(core: &mut Core, fault: Fault, write: bool) -> Error<&'static str> {
        let r = match (fault, write) {
            (Fault::Eof, true) => core
                .on_write::<ResetErr>(Ok(0), Some(1))
                .map_err(|e| erase(e, "reset")),
            (Fault::Eof, false) => core
                .on_read::<ResetErr>(Ok(0), Some(1))
                .map_err(|e| erase(e, "reset")),
            (Fault::Reset, true) => core
                .on_write::<ResetErr>(Err(ResetErr), Some(1))
                .map_err(|e| erase(e, "reset")),
            (Fault::Reset, false) => core
                .on_read::<ResetErr>(Err(ResetErr), Some(1))
                .map_err(|e| erase(e, "reset")),
            (Fault::Other, true) => core
                .on_write::<OtherErr>(Err(OtherErr), Some(1))
                .map_err(|e| erase(e, "other")),
            (Fault::Other, false) => core
                .on_read::<OtherErr>(Err(OtherErr), Some(1))
                .map_err(|e| erase(e, "other")),
        };
        r.expect_err("a fault is an error here")
    }
    fn run(at: Where, fault: Fault) -> (Error<&'static str>, bool) {
        let mut c = Conn::new();
        c.send(&post(&[]), b"{}", 0).unwrap();
        let e = match at {
            Where::FirstWrite => {
                assert!(matches!(c.step(0), Ok(Step::Write(_))));
                inject(&mut c.core, fault, true)
            }
            Where::AfterWrite => {
                c.write_all(0);
                inject(&mut c.core, fault, false)
            }
            Where::InHead => {
                let (_, read) = c.write_all(0);
                c.arrive(&read, b"HTTP/1.1 2", 0).unwrap();
                assert!(matches!(c.step(0), Ok(Step::Read(_))));
                inject(&mut c.core, fault, false)
            }
            Where::InBody => {
                let (_, read) = c.write_all(0);
                c.arrive(&read, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0)
                    .unwrap();
                assert_eq!(c.step(0), Ok(Step::Done(0)));
                c.core.begin_read(ReadMode::ToEnd).unwrap();
                let mut out = [0u8; 8];
                assert!(matches!(
                    c.core.poll::<OtherErr>(&mut c.buf, &mut out, Some(0)),
                    Ok(Step::ReadOut(_))
                ));
                inject(&mut c.core, fault, false)
            }
        };
        (e, c.core.may_resend())
    }
    use rawpost::ConnectionError::*;
    use Fault::*;
    use Where::*;
    let table: &[(Where, Fault, Error<&'static str>, bool)] = &[
        (FirstWrite, Eof, Error::Connection(ClosedByServer), true),
        (FirstWrite, Reset, Error::Connection(ClosedByServer), true),
        (FirstWrite, Other, Error::Io("other"), true),
        (AfterWrite, Eof, Error::Connection(Dropped), false),
        (AfterWrite, Reset, Error::Connection(Dropped), false),
        (AfterWrite, Other, Error::Io("other"), false),
        (
            InHead,
            Eof,
            Error::Response(ResponseError::UnexpectedEof),
            false,
        ),
        (
            InHead,
            Reset,
            Error::Response(ResponseError::UnexpectedEof),
            false,
        ),
        (InHead, Other, Error::Io("other"), false),
        (
            InBody,
            Eof,
            Error::Response(ResponseError::TruncatedBody),
            false,
        ),
        (
            InBody,
            Reset,
            Error::Response(ResponseError::TruncatedBody),
            false,
        ),
        (InBody, Other, Error::Io("other"), false),
    ];
    for &(at, fault, ref want, resend) in table {
        assert_eq!(run(at, fault), (*want, resend), "{at:?} {fault:?}");
    }
}

/// Bytes behind a complete response answer no request; bytes while idle, found by a probe,
/// neither; an end found by a probe is the server's close. None of them is ever parsed.
#[test]
fn bytes_no_request_owes_are_never_parsed() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    c.arrive(&read, &[OK2, b"HTTP/1.1 200 OK\r\n\r\n"].concat(), 1)
        .unwrap();
    assert_eq!(c.step(1), Ok(Step::Done(0)));
    c.core.begin_read(ReadMode::Discard).unwrap();
    assert_eq!(c.step(1), Ok(Step::Done(0)));
    assert_eq!(c.core.skipped(), 2);
    assert_eq!(c.core.closed_error(), Some(ConnectionError::Unsolicited));

    for (event, want) in [
        (Ok(5), ConnectionError::Unsolicited),
        (Ok(0), ConnectionError::ClosedByServer),
        (Err(ResetErr), ConnectionError::ClosedByServer),
    ] {
        let mut c = Conn::new();
        c.send(&post(&[]), b"", 0).unwrap();
        let (_, read) = c.write_all(0);
        c.arrive(&read, OK2, 1).unwrap();
        c.poll(1).unwrap();
        c.core.begin_read(ReadMode::Discard).unwrap();
        c.poll(1).unwrap();
        assert!(c.core.is_reusable(Some(1)));
        assert!(c.core.wants_probe());
        assert!(c.core.begin_probe());
        assert_eq!(c.poll(5), Ok((Step::Read(0..256), Some(15))));
        assert_eq!(c.core.on_read::<ResetErr>(event, Some(5)), Ok(()));
        assert_eq!(c.core.closed_error(), Some(want));
        // The next request is refused unwritten, and may be sent elsewhere.
        assert_eq!(c.send(&post(&[]), b"", 6), Err(Error::Connection(want)));
        assert!(c.core.may_resend());
    }
    // A connection just opened has not been kept: nothing to ask before its first request.
    assert!(!Conn::new().core.wants_probe());
    // A stream that fails (not ends) while idle: the failure is named, the connection closed,
    // and the next request refused unwritten.
    let mut c = Conn::new();
    assert!(c.core.begin_probe());
    c.poll(0).unwrap();
    assert_eq!(
        c.core.on_read::<OtherErr>(Err(OtherErr), Some(1)),
        Err(Error::Io(OtherErr))
    );
    assert_eq!(
        c.core.closed_error(),
        Some(ConnectionError::Broken(Broken::Io))
    );
    assert!(c.core.may_resend());
    // A probe that finds nothing (the stream said ready, then its read waited): still idle.
    let mut c = Conn::new();
    assert!(c.core.begin_probe());
    c.poll(0).unwrap();
    c.core.on_timeout::<OtherErr>(Some(10)).unwrap();
    assert!(c.core.is_reusable(Some(10)));
}

/// `Keep-Alive: timeout=N` and `max_idle` decide when an idle connection is treated as
/// closed, counted from the last byte received.
#[test]
fn idle_limits() {
    let ka: &[u8] = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=4\r\nContent-Length: 0\r\n\r\n";
    for (max_idle, expires_at) in [
        (None, 3_000 + 7),
        (Some(500), 500 + 7),
        (Some(9_000), 3_007),
    ] {
        let mut c = Conn::new();
        c.core.set_max_idle(max_idle);
        c.send(&post(&[]), b"", 0).unwrap();
        let (_, read) = c.write_all(0);
        c.arrive(&read, ka, 7).unwrap();
        c.poll(8).unwrap();
        assert!(c.core.is_reusable(Some(expires_at - 1)));
        assert!(!c.core.is_reusable(Some(expires_at)));
        assert_eq!(
            c.send(&post(&[]), b"", expires_at),
            Err(Error::Connection(ConnectionError::Expired))
        );
        assert!(c.core.may_resend());
    }
}

/// An unread body is skipped before the next request: within the drain budget, read into the
/// buffer with the idle deadline; more than the budget left closes the connection.
#[test]
fn an_unread_body_is_drained_within_its_budget() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n";
    c.arrive(&read, head, 1).unwrap();
    c.poll(1).unwrap();
    c.core.begin_settle();
    let step = c.poll(100).unwrap();
    assert_eq!(step, (Step::Read(head.len()..256), Some(110)));
    c.arrive(&step, &[b'x'; 200], 101).unwrap();
    let step = c.poll(101).unwrap();
    c.arrive(&step, &[b'x'; 100], 102).unwrap();
    assert_eq!(c.step(102), Ok(Step::Done(0)));
    assert!(c.core.is_reusable(Some(102)));
    // Skipped a minute later: each read within the idle time from then (the response's own
    // deadline is long past).
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    c.arrive(&read, head, 1).unwrap();
    c.poll(1).unwrap();
    c.core.begin_settle();
    assert_eq!(
        c.poll(60_000),
        Ok((Step::Read(head.len()..256), Some(60_010)))
    );
    // A drain whose reads run out of time: closed, and said so.
    let mut c = Conn::new();
    c.send(&post(&[]), b"", 0).unwrap();
    let (_, read) = c.write_all(0);
    c.arrive(&read, head, 1).unwrap();
    c.poll(1).unwrap();
    c.core.begin_settle();
    c.poll(100).unwrap();
    assert_eq!(
        c.core.on_timeout::<OtherErr>(Some(110)),
        Err(Error::Connection(ConnectionError::BodyLeftUnread {
            status: 200,
            left: None
        }))
    );
}

/// An operation left part-way (its future dropped) is never resumed.
#[test]
fn an_abandoned_operation_breaks_the_connection() {
    let mut c = Conn::new();
    c.send(&post(&[]), b"{}", 0).unwrap();
    assert!(matches!(c.step(0), Ok(Step::Write(_))));
    c.core.begin_settle();
    assert_eq!(
        c.core.closed_error(),
        Some(ConnectionError::Broken(Broken::Abandoned))
    );
    assert_eq!(
        c.send(&post(&[]), b"", 2),
        Err(Error::Connection(ConnectionError::Broken(
            Broken::Abandoned
        )))
    );
}
