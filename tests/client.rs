//! The reconnect helper over scripted servers, one per connection, each answering its requests
//! in turn and then closing: it keeps a connection while the server does, finds a closed or
//! expired one before writing into it, resends only what RFC 9112 §9.3.1 allows and only the
//! request that failed, reports what it cannot mend with whether the request may have been
//! processed, and backs off when connecting fails.

mod support;

use core::ops::ControlFlow;

use rawpost::{
    Attempt, Backoff, Client, ClientError, Connect, Connection, ConnectionError, Error, Exchange,
    Host, Request, Timeouts, Timer,
};
use support::{block_on, block_on_clock, FakeClock, Injected, Peer};

const HOST: Host<'static> = Host::new("api.example.com");
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Opens the scripted servers in turn; `connects` counts the connections opened.
struct Servers {
    peers: Vec<Peer>,
    connects: usize,
}

impl Servers {
    /// Each server answers these responses, one per request, then closes.
    fn new(servers: &[&[&[u8]]]) -> Self {
        let clock = FakeClock::default();
        Self {
            peers: servers
                .iter()
                .map(|turns| Peer::turns(turns, &[], &clock))
                .collect(),
            connects: 0,
        }
    }

    fn written(&self, i: usize) -> Vec<u8> {
        self.peers[i].written()
    }
}

impl Connect for Servers {
    type StreamError = Injected;
    type Stream<'c> = &'c mut Peer;
    type Error = &'static str;

    async fn connect(&mut self, host: Host<'_>) -> Result<&mut Peer, &'static str> {
        assert_eq!(host, HOST);
        let peer = self.peers.get_mut(self.connects).ok_or("no server left")?;
        self.connects += 1;
        Ok(peer)
    }
}

/// Sends requests numbered 1, 2, ... (the number in the path), one per exchange, until
/// `times` were answered, recording each attempt by number.
struct Numbered {
    method: rawpost::Method,
    idempotent: bool,
    times: usize,
    seq: usize,
    attempts: Vec<(usize, Attempt)>,
}

impl Numbered {
    fn new(req: Request<'_>, times: usize) -> Self {
        Self {
            method: req.method(),
            idempotent: req.is_idempotent(),
            times,
            seq: 0,
            attempts: Vec::new(),
        }
    }
}

impl Exchange for Numbered {
    type Output = usize;

    async fn exchange<S, T>(
        &mut self,
        conn: &mut Connection<'_, S, T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<usize>, Error<S::Error>>
    where
        S: embedded_io_async::Read + embedded_io_async::Write,
        T: Timer,
    {
        if attempt == Attempt::New {
            self.seq += 1;
        }
        self.attempts.push((self.seq, attempt));
        let path = format!("/r/{}", self.seq);
        let mut req = Request::new(self.method, &path).with_body(b"{}");
        if self.idempotent {
            req = req.idempotent();
        }
        let mut resp = conn.send(&req).await?;
        assert_eq!(resp.status(), 200);
        resp.discard().await?;
        Ok(if self.seq == self.times {
            ControlFlow::Break(self.seq)
        } else {
            ControlFlow::Continue(())
        })
    }
}

type Outcome<E> = (
    Result<usize, ClientError<&'static str, E>>,
    Vec<(usize, Attempt)>,
);

/// Sends `times` requests like `req` through a client over `servers`.
fn post_n<C: Connect<StreamError = E, Error = &'static str>, E: embedded_io::Error>(
    servers: C,
    req: Request<'_>,
    times: usize,
) -> Outcome<E> {
    let mut buf = [0u8; 256];
    let mut job = Numbered::new(req, times);
    let r = block_on(Client::new(servers, &mut buf, HOST).run(&mut job));
    (r, job.attempts)
}

fn post() -> Request<'static> {
    Request::post("/t").with_body(b"{}")
}

/// The paths a server was sent, in order.
fn paths(written: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(written)
        .split("\r\n\r\n")
        .filter_map(|head| head.split(' ').nth(1).map(str::to_string))
        .filter(|p| p.starts_with('/'))
        .collect()
}

#[test]
fn one_connection_carries_every_request_while_the_server_keeps_it() {
    let mut servers = Servers::new(&[&[OK, OK, OK]]);
    let (r, attempts) = post_n(&mut servers, post(), 3);
    assert_eq!(r, Ok(3));
    assert_eq!(
        attempts,
        [(1, Attempt::New), (2, Attempt::New), (3, Attempt::New)]
    );
    assert_eq!(servers.connects, 1);
}

/// Issue 17 item 3: the server closed the idle connection (its keep-alive timeout). The client
/// sees it before writing, opens a new connection and sends the request there — a POST too:
/// nothing is lost, nothing reported, nothing resent.
#[test]
fn a_connection_closed_while_idle_is_found_before_writing() {
    let mut servers = Servers::new(&[&[OK], &[OK]]);
    let (r, attempts) = post_n(&mut servers, post(), 2);
    assert_eq!(r, Ok(2));
    assert_eq!(attempts, [(1, Attempt::New), (2, Attempt::New)]);
    assert_eq!(servers.connects, 2);
    assert_eq!(paths(&servers.written(0)), ["/r/1"]);
    assert_eq!(paths(&servers.written(1)), ["/r/2"]);
}

/// The server read the request and closed without answering (nginx `return 444`): the request
/// may have been processed. An idempotent one is sent again on a new connection — only it, not
/// the ones before; a POST is reported, saying it may have been processed.
#[test]
fn a_request_dropped_after_writing_is_resent_only_when_idempotent() {
    for req in [Request::get("/status"), post().idempotent()] {
        let mut servers = Servers::new(&[&[OK, b""], &[OK, OK]]);
        let (r, attempts) = post_n(&mut servers, req, 3);
        assert_eq!(r, Ok(3), "{:?}", req.method());
        assert_eq!(
            attempts,
            [
                (1, Attempt::New),
                (2, Attempt::New),
                (2, Attempt::Resend),
                (3, Attempt::New)
            ]
        );
        assert_eq!(paths(&servers.written(0)), ["/r/1", "/r/2"]);
        assert_eq!(paths(&servers.written(1)), ["/r/2", "/r/3"]);
    }
    let mut servers = Servers::new(&[&[OK, b""], &[OK]]);
    let (r, attempts) = post_n(&mut servers, post(), 3);
    let e = r.unwrap_err();
    assert_eq!(
        e,
        ClientError::Exchange(Error::Connection(ConnectionError::Dropped))
    );
    assert!(e.may_have_been_processed());
    assert_eq!(attempts, [(1, Attempt::New), (2, Attempt::New)]);
    assert_eq!(servers.connects, 1);
}

#[test]
fn a_post_that_never_reached_the_server_is_resent() {
    // The next write is refused with a reset: nothing was sent.
    let mut first = Peer::turns(&[OK, OK], &[], &FakeClock::default());
    first.write_error_at = Some(1);
    let servers = Servers {
        peers: vec![first, Peer::new(OK)],
        connects: 0,
    };
    struct Resetting(Servers);
    impl Connect for Resetting {
        type StreamError = support::Reset;
        type Stream<'c> = support::Resets;
        type Error = &'static str;
        async fn connect(&mut self, host: Host<'_>) -> Result<support::Resets, &'static str> {
            let peer = self.0.connect(host).await?;
            Ok(support::Resets(core::mem::replace(peer, Peer::new(b""))))
        }
    }
    let mut resetting = Resetting(servers);
    let (r, attempts) = post_n(&mut resetting, post(), 2);
    assert_eq!(r, Ok(2));
    assert_eq!(
        attempts,
        [(1, Attempt::New), (2, Attempt::New), (2, Attempt::Resend)]
    );
    assert_eq!(resetting.0.connects, 2);
}

#[test]
fn connection_close_means_the_next_request_opens_a_new_connection() {
    let close: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let mut servers = Servers::new(&[&[close, OK], &[OK]]);
    let (r, attempts) = post_n(&mut servers, post(), 2);
    assert_eq!(r, Ok(2));
    assert_eq!(attempts, [(1, Attempt::New), (2, Attempt::New)]);
    assert_eq!(servers.connects, 2);
}

/// A server that announces `Keep-Alive: timeout=0` keeps no idle connection: with a timer, every
/// request goes on a new connection and none is written into an expired one.
#[test]
fn an_announced_keep_alive_timeout_is_respected() {
    let ka: &[u8] = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=0\r\nContent-Length: 2\r\n\r\nok";
    let mut servers = Servers::new(&[&[ka, ka], &[ka, ka], &[ka, ka]]);
    let clock = FakeClock::default();
    let mut buf = [0u8; 256];
    let mut job = Numbered::new(post(), 3);
    let r = block_on_clock(
        Client::new(&mut servers, &mut buf, HOST)
            .timed(clock.clone(), Timeouts::default())
            .run(&mut job),
        &clock,
    );
    assert_eq!(r, Ok(3));
    assert_eq!(servers.connects, 3);
    for i in 0..3 {
        assert_eq!(paths(&servers.written(i)).len(), 1);
    }
}

#[test]
fn failures_it_cannot_mend_are_reported() {
    // No server to connect to.
    let mut servers = Servers::new(&[]);
    let (r, _) = post_n(&mut servers, Request::get("/"), 1);
    assert_eq!(r, Err(ClientError::Connect("no server left")));
    assert!(!r.unwrap_err().may_have_been_processed());
    // A malformed response is not retried.
    let mut servers = Servers::new(&[&[b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], &[OK]]);
    let (r, attempts) = post_n(&mut servers, Request::get("/"), 1);
    assert_eq!(
        r,
        Err(ClientError::Exchange(Error::Response(
            rawpost::ResponseError::InvalidContentLength
        )))
    );
    assert_eq!(attempts, [(1, Attempt::New)]);
    // A resend that is dropped again is not resent twice.
    let mut servers = Servers::new(&[&[OK, b""], &[b""]]);
    let (r, attempts) = post_n(&mut servers, Request::get("/"), 2);
    assert_eq!(
        attempts,
        [(1, Attempt::New), (2, Attempt::New), (2, Attempt::Resend)]
    );
    assert_eq!(
        r,
        Err(ClientError::Exchange(Error::Connection(
            ConnectionError::Dropped
        )))
    );
}

/// Opening a connection is bounded on the client's timer: a connector that never finishes
/// (a TCP SYN or a TLS handshake left unanswered) ends the run with `ConnectTimedOut` at the
/// deadline, not later, not sooner.
#[test]
fn opening_a_connection_is_bounded() {
    struct Never;
    impl Connect for Never {
        type StreamError = Injected;
        type Stream<'c> = Peer;
        type Error = &'static str;
        async fn connect(&mut self, _host: Host<'_>) -> Result<Peer, &'static str> {
            core::future::pending().await
        }
    }
    let clock = FakeClock::default();
    clock.set(1_000);
    let mut buf = [0u8; 256];
    let mut job = Numbered::new(Request::get("/"), 1);
    let mut client = Client::new(Never, &mut buf, HOST)
        .timed(clock.clone(), Timeouts::default())
        .connect_timeout(Some(5_000));
    let mut run = core::pin::pin!(client.run(&mut job));
    assert!(support::poll_once(&mut run).is_none());
    clock.set(5_999);
    assert!(support::poll_once(&mut run).is_none());
    clock.set(6_000);
    assert_eq!(
        support::poll_once(&mut run),
        Some(Err(ClientError::ConnectTimedOut))
    );
}

/// When connecting fails, the next attempt waits: a capped exponential backoff, jittered from
/// the caller's source (issue 17 item D), so that devices do not reconnect in step.
#[test]
fn failing_connects_back_off_with_jitter() {
    /// Fails `fails` times, then opens a server that answers once.
    struct Flaky {
        fails: usize,
        attempts_at: Vec<u64>,
        clock: FakeClock,
        peer: Peer,
    }
    impl Connect for Flaky {
        type StreamError = Injected;
        type Stream<'c> = &'c mut Peer;
        type Error = &'static str;
        async fn connect(&mut self, _host: Host<'_>) -> Result<&mut Peer, &'static str> {
            self.attempts_at.push(self.clock.0.get());
            if self.attempts_at.len() <= self.fails {
                return Err("refused");
            }
            Ok(&mut self.peer)
        }
    }
    let clock = FakeClock::default();
    let mut flaky = Flaky {
        fails: 4,
        attempts_at: Vec::new(),
        clock: clock.clone(),
        peer: Peer::turns(&[OK], &[], &clock),
    };
    let mut randoms = [0u32, 1_000_000, 7, 3].into_iter().cycle();
    let mut jitter = move || randoms.next().unwrap();
    let mut buf = [0u8; 256];
    let mut job = Numbered::new(post(), 1);
    let mut client = Client::new(&mut flaky, &mut buf, HOST)
        .timed(clock.clone(), Timeouts::default())
        .backoff(Backoff {
            first_ms: 400,
            max_ms: 1_000,
        })
        .jitter(&mut jitter);
    let mut results = Vec::new();
    loop {
        let r = block_on_clock(client.run(&mut job), &clock);
        let done = r.is_ok();
        results.push(r);
        if done {
            break;
        }
    }
    assert_eq!(client.connections_opened(), 1);
    drop(client);
    assert_eq!(
        results,
        [
            Err(ClientError::Connect("refused")),
            Err(ClientError::Connect("refused")),
            Err(ClientError::Connect("refused")),
            Err(ClientError::Connect("refused")),
            Ok(1)
        ]
    );
    // Waits: 400 → 200 + 0 % 201; 800 → 400 + 1e6 % 401; 1 000 (capped) → 500 + 7 % 501;
    // 1 000 → 500 + 3 % 501.
    let waits: Vec<u64> = flaky.attempts_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(waits, [200, 400 + 1_000_000 % 401, 507, 503]);
    assert_eq!(Backoff::default().delay_ms(1), 500);
    assert_eq!(Backoff::default().delay_ms(8), 60_000);
    assert_eq!(Backoff::default().delay_ms(40), 60_000);
}
