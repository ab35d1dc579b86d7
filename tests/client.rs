//! The reconnect helper over scripted servers, one script per connection: it keeps a
//! connection while the server does, opens a new one when the server closed it, resends only
//! what RFC 9112 §9.3.1 allows, and reports what it cannot mend.

mod support;

use core::ops::ControlFlow;

use rawpost::{
    Attempt, Client, ClientError, Connect, Connection, ConnectionError, Error, Exchange, Host,
    Request, Timer,
};
use support::{block_on, Injected, Peer};

const HOST: Host<'static> = Host::new("api.example.com");
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Opens the scripted servers in turn; `connects` counts the connections opened.
struct Servers {
    peers: Vec<Peer>,
    connects: usize,
}

impl Servers {
    fn new(scripts: &[&[u8]]) -> Self {
        Self {
            peers: scripts.iter().map(|s| Peer::new(s)).collect(),
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

/// Sends one request per exchange until it has been answered `times` times, recording each
/// attempt.
struct Repeat<'r> {
    req: Request<'r>,
    times: usize,
    done: usize,
    attempts: Vec<Attempt>,
}

impl<C: Connect, T: Timer> Exchange<C, T> for Repeat<'_> {
    type Output = usize;

    async fn exchange<'s>(
        &mut self,
        conn: &mut Connection<'_, C::Stream<'s>, &mut T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<usize>, Error<C::StreamError>>
    where
        C: 's,
    {
        self.attempts.push(attempt);
        let mut resp = conn.send(&self.req).await?;
        assert_eq!(resp.status(), 200);
        resp.discard().await?;
        self.done += 1;
        Ok(if self.done == self.times {
            ControlFlow::Break(self.done)
        } else {
            ControlFlow::Continue(())
        })
    }
}

/// Sends `req` `times` times through a client over `servers`; returns the run's result and
/// the attempts.
fn post_n<C: Connect<StreamError = E, Error = &'static str>, E: embedded_io::Error>(
    servers: C,
    req: Request<'_>,
    times: usize,
) -> (Result<usize, ClientError<&'static str, E>>, Vec<Attempt>) {
    let mut buf = [0u8; 256];
    let mut job = Repeat {
        req,
        times,
        done: 0,
        attempts: Vec::new(),
    };
    let r = block_on(Client::new(servers, &mut buf, HOST).run(&mut job));
    (r, job.attempts)
}

#[test]
fn one_connection_carries_every_request_while_the_server_keeps_it() {
    let mut servers = Servers::new(&[&[OK, OK, OK].concat()]);
    let (r, attempts) = post_n(&mut servers, Request::post("/t").body(b"{}"), 3);
    assert_eq!(r, Ok(3));
    assert_eq!(attempts, [Attempt::New; 3]);
    assert_eq!(servers.connects, 1);
}

#[test]
fn an_idempotent_request_is_resent_on_a_new_connection() {
    // The first server closes the connection after one response (its keep-alive timeout).
    for req in [
        Request::get("/status"),
        Request::post("/t").body(b"{}").idempotent(),
    ] {
        let mut servers = Servers::new(&[OK, OK]);
        let (r, attempts) = post_n(&mut servers, req, 2);
        assert_eq!(r, Ok(2), "{:?}", req.method());
        assert_eq!(attempts, [Attempt::New, Attempt::New, Attempt::Resend]);
        assert_eq!(servers.connects, 2);
        // The request went to the closed connection, then whole to the new one.
        let mut one = [0u8; 128];
        let n = req.encode_head(&HOST, &mut one).unwrap();
        let bytes = [&one[..n], req.body_bytes()].concat();
        assert_eq!(servers.written(0), [&bytes[..], &bytes[..]].concat());
        assert_eq!(servers.written(1), bytes);
    }
}

#[test]
fn a_post_that_reached_the_closed_connection_is_not_resent() {
    let mut servers = Servers::new(&[OK, OK]);
    let (r, attempts) = post_n(&mut servers, Request::post("/t").body(b"{}"), 2);
    assert_eq!(
        r,
        Err(ClientError::Exchange(Error::Connection(
            ConnectionError::ClosedByServer
        )))
    );
    assert_eq!(attempts, [Attempt::New, Attempt::New]);
    assert_eq!(servers.connects, 1);
}

#[test]
fn a_post_that_never_reached_the_server_is_resent() {
    // The server closed the connection; the next write is refused, so nothing was sent.
    let mut first = Peer::new(OK);
    first.write_error_at = Some(1);
    let servers = Servers {
        peers: vec![first, Peer::new(OK)],
        connects: 0,
    };
    // A refused write that says the connection ended: a reset.
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
    let (r, attempts) = post_n(&mut resetting, Request::post("/t").body(b"{}"), 2);
    assert_eq!(r, Ok(2));
    assert_eq!(attempts, [Attempt::New, Attempt::New, Attempt::Resend]);
    assert_eq!(resetting.0.connects, 2);
}

#[test]
fn connection_close_means_the_next_request_opens_a_new_connection() {
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let mut servers = Servers::new(&[close, OK]);
    let (r, attempts) = post_n(&mut servers, Request::post("/t").body(b"{}"), 2);
    assert_eq!(r, Ok(2));
    assert_eq!(attempts, [Attempt::New, Attempt::New]);
    assert_eq!(servers.connects, 2);
}

#[test]
fn failures_it_cannot_mend_are_reported() {
    // No server to connect to.
    let mut servers = Servers::new(&[]);
    let (r, _) = post_n(&mut servers, Request::get("/"), 1);
    assert_eq!(r, Err(ClientError::Connect("no server left")));
    // A malformed response is not retried.
    let mut servers = Servers::new(&[b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", OK]);
    let (r, attempts) = post_n(&mut servers, Request::get("/"), 1);
    assert_eq!(
        r,
        Err(ClientError::Exchange(Error::Response(
            rawpost::ResponseError::InvalidContentLength
        )))
    );
    assert_eq!(attempts, [Attempt::New]);
    // A resend that meets a closed connection again is not resent twice.
    let mut servers = Servers::new(&[OK, b""]);
    let (r, attempts) = post_n(&mut servers, Request::get("/"), 2);
    assert_eq!(attempts, [Attempt::New, Attempt::New, Attempt::Resend]);
    assert_eq!(
        r,
        Err(ClientError::Exchange(Error::Response(
            rawpost::ResponseError::UnexpectedEof
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
    let clock = support::FakeClock::default();
    clock.set(1_000);
    let mut buf = [0u8; 256];
    let mut job = Repeat {
        req: Request::get("/"),
        times: 1,
        done: 0,
        attempts: Vec::new(),
    };
    let mut client = Client::new(Never, &mut buf, HOST)
        .timed(clock.clone(), rawpost::Timeouts::default())
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
