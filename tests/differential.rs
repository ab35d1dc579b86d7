//! The async and the blocking shell are one client: driven through the same scripted server
//! (which answers each request only after it was written, after a delay) on the same fake clock,
//! over multi-exchange programs — HEAD then POST, interim responses, chunked bodies with
//! trailers, a body delimited by the close, `Expect: 100-continue` answered with a `100`,
//! ignored or refused, streamed bodies of known and unknown length, bodies built in the buffer,
//! bodies left unread, responses that come too late — under every two-way read split, byte by
//! byte, with EOF and I/O errors at every offset and a failed write or flush at every call, they
//! return the same results, write the same bytes, write call by write call, and time out at the
//! same moments.

mod support;

use embedded_io::Write as _;
use embedded_io_async::Write as _;
use rawpost::{
    blocking, Connection, ConnectionError, Error, Host, Request, TimeoutPhase, Timeouts,
};
use support::outcome::{read_outcome, read_outcome_blocking, Observe, Outcome};
use support::{block_on_clock, FakeClock, Injected, Peer, Reads};

const HOST: Host<'static> = Host::new("api.example.com");

/// The deadlines of every program, in milliseconds of the fake clock.
const TIMEOUTS: Timeouts = Timeouts {
    first_byte_ms: Some(40),
    idle_ms: Some(20),
    response_ms: Some(100),
    continue_ms: Some(10),
};

/// One step of a program.
#[derive(Clone, Copy)]
enum Op {
    /// `send`, then read the body `out_step` bytes per call.
    Send(Request<'static>),
    /// `send`, and leave the body unread (the next request skips it).
    SendUnread(Request<'static>),
    /// `send_with`, the body written into the buffer.
    SendWith(Request<'static>, &'static [u8]),
    /// `send_streaming` with these pieces, then `finish`.
    Stream(Request<'static>, Option<u64>, &'static [&'static [u8]]),
}

struct Program {
    name: &'static str,
    /// The status each exchange ends with (`0`: an error).
    want: &'static [u16],
    /// The server's answer to each request, in turn.
    turns: &'static [&'static [u8]],
    /// How long after each request its answer arrives (ms).
    delays: &'static [u64],
    ops: &'static [Op],
    buf: usize,
}

/// Per exchange: the result, whether the connection is reusable after it, and the clock then.
type Run = Vec<(Result<Outcome, Error<Injected>>, bool, u64)>;

const PAD: &[(&str, &str)] = &[("X-Pad", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")];
const EXPECT: &[(&str, &str)] = &[("Expect", "100-continue")];
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

const PROGRAMS: &[Program] = &[
    Program {
        name: "head then post",
        want: &[200, 200],
        turns: &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        delays: &[1, 2],
        ops: &[
            Op::Send(Request::head("/")),
            Op::Send(Request::post("/upload").with_headers(PAD).with_body(b"BODY")),
        ],
        buf: 128,
    },
    Program {
        name: "length, interim + chunked with trailers, until close",
        want: &[200, 200, 202],
        turns: &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6;x=y\r\nsecond\r\n0\r\nX-T: 1\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\n\r\nthird",
        ],
        delays: &[0, 3, 5],
        ops: &[
            Op::Send(Request::post("/1").with_headers(JSON).with_body(br#"{"a":1}"#)),
            Op::Send(Request::get("/2")),
            Op::Send(Request::delete("/3")),
        ],
        buf: 256,
    },
    Program {
        name: "expect: 100 within the wait, then the body",
        want: &[201, 204],
        turns: &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ],
        delays: &[4, 1, 0],
        ops: &[
            Op::Send(Request::put("/a").with_headers(EXPECT).with_body(b"payload")),
            Op::Send(Request::get("/b")),
        ],
        buf: 256,
    },
    Program {
        name: "expect ignored by the server: the body after the continue wait",
        want: &[200],
        turns: &[b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"],
        delays: &[30],
        ops: &[Op::Send(Request::post("/a").with_headers(EXPECT).with_body(b"payload"))],
        buf: 256,
    },
    Program {
        name: "expect refused: the body never sent",
        want: &[417, 0],
        turns: &[b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope"],
        delays: &[2],
        ops: &[
            Op::Send(Request::post("/a").with_headers(EXPECT).with_body(b"payload")),
            Op::Send(Request::get("/b")),
        ],
        buf: 256,
    },
    Program {
        name: "streamed: known length, then chunked after a continue wait, then empty",
        want: &[200, 200, 200],
        turns: &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ndone",
        ],
        delays: &[0, 15, 1],
        ops: &[
            Op::Stream(Request::post("/log"), Some(11), &[b"hello", b" ", b"world"]),
            Op::Stream(Request::post("/log").with_headers(EXPECT), None, &[b"abc", &[b'x'; 40]]),
            Op::Stream(Request::post("/log"), Some(0), &[]),
        ],
        buf: 256,
    },
    Program {
        name: "built in the buffer",
        want: &[204, 200, 200],
        turns: &[
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ],
        delays: &[0, 0, 1, 0],
        ops: &[
            Op::Send(Request::get("/")),
            Op::SendWith(Request::post("/json").with_headers(JSON), br#"{"seq":3}"#),
            Op::SendWith(
                Request::post("/json").with_headers(&[("Expect", "100-continue")]),
                br#"{"seq":4}"#,
            ),
        ],
        buf: 128,
    },
    Program {
        name: "large body from the caller's slice",
        want: &[200, 200],
        turns: &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ],
        delays: &[0, 0],
        ops: &[
            Op::Send(Request::post("/big").with_body(&[b'b'; 300])),
            Op::Send(Request::post("/big").with_headers(PAD).with_body(&[b'c'; 300])),
        ],
        buf: 128,
    },
    Program {
        name: "error bodies left unread are skipped",
        want: &[404, 500, 200],
        turns: &[
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4\r\noops\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        delays: &[0, 0, 0],
        ops: &[
            Op::SendUnread(Request::post("/r").with_body(b"1")),
            Op::SendUnread(Request::post("/r").with_body(b"2")),
            Op::Send(Request::post("/r").with_body(b"3")),
        ],
        buf: 256,
    },
];

/// Programs whose answers come too late: the deadlines fire at the same moments in both.
const LATE: &[Program] = &[
    Program {
        name: "no first byte",
        want: &[0],
        turns: &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        delays: &[41],
        ops: &[Op::Send(Request::get("/"))],
        buf: 256,
    },
    Program {
        name: "first byte just in time",
        want: &[200],
        turns: &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        delays: &[40],
        ops: &[Op::Send(Request::get("/"))],
        buf: 256,
    },
    Program {
        name: "the second response is late",
        want: &[200, 0],
        turns: &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        delays: &[3, 90],
        ops: &[Op::Send(Request::get("/")), Op::Send(Request::get("/"))],
        buf: 256,
    },
];

/// Fills the buffer `send_with` gives with `body`.
fn put(body: &'static [u8]) -> impl FnOnce(&mut [u8]) -> Result<usize, ()> {
    move |b: &mut [u8]| {
        let d = b.get_mut(..body.len()).ok_or(())?;
        d.copy_from_slice(body);
        Ok(body.len())
    }
}

async fn run_async(p: &Program, peer: &mut Peer, clock: &FakeClock, out_step: usize) -> Run {
    let mut buf = vec![0u8; p.buf];
    let mut conn = Connection::new(peer, &mut buf, HOST).timed(clock.clone(), TIMEOUTS);
    let mut runs = Run::new();
    for op in p.ops {
        let r = async {
            let resp = match *op {
                Op::Send(req) | Op::SendUnread(req) => conn.send(&req).await?,
                Op::SendWith(req, body) => conn.send_with(&req, put(body)).await?,
                Op::Stream(req, len, pieces) => {
                    let mut w = conn.send_streaming(&req, len).await?;
                    for piece in pieces {
                        w.write_all(piece).await?;
                        w.flush().await?;
                    }
                    w.finish().await?
                }
            };
            match op {
                Op::SendUnread(_) => Ok(resp.outcome(Vec::new())),
                _ => read_outcome(resp, out_step).await,
            }
        }
        .await;
        let failed = r.is_err();
        runs.push((r, conn.is_reusable(), clock.0.get()));
        if failed {
            break;
        }
    }
    runs
}

fn run_blocking(p: &Program, peer: &mut Peer, clock: &FakeClock, out_step: usize) -> Run {
    let mut buf = vec![0u8; p.buf];
    let mut conn = blocking::Connection::new(peer, &mut buf, HOST).timed(clock.clone(), TIMEOUTS);
    let mut runs = Run::new();
    for op in p.ops {
        let r = (|| {
            let resp = match *op {
                Op::Send(req) | Op::SendUnread(req) => conn.send(&req)?,
                Op::SendWith(req, body) => conn.send_with(&req, put(body))?,
                Op::Stream(req, len, pieces) => {
                    let mut w = conn.send_streaming(&req, len)?;
                    for piece in pieces {
                        w.write_all(piece)?;
                        w.flush()?;
                    }
                    w.finish()?
                }
            };
            match op {
                Op::SendUnread(_) => Ok(resp.outcome(Vec::new())),
                _ => read_outcome_blocking(resp, out_step),
            }
        })();
        let failed = r.is_err();
        runs.push((r, conn.is_reusable(), clock.0.get()));
        if failed {
            break;
        }
    }
    runs
}

/// Runs `p` through both shells over identically configured peers on clocks of their own;
/// asserts they agree on results, times and every write, and returns the common run and the
/// writes.
fn both(p: &Program, configure: &dyn Fn(&mut Peer), out_step: usize) -> (Run, Vec<Vec<u8>>) {
    let (ca, cb) = (FakeClock::default(), FakeClock::default());
    let mut a = Peer::turns(p.turns, p.delays, &ca);
    configure(&mut a);
    let mut b = Peer::turns(p.turns, p.delays, &cb);
    configure(&mut b);
    let got_async = block_on_clock(run_async(p, &mut a, &ca, out_step), &ca);
    let got_blocking = run_blocking(p, &mut b, &cb, out_step);
    assert_eq!(got_async, got_blocking, "{}: results differ", p.name);
    assert_eq!(a.writes, b.writes, "{}: writes differ", p.name);
    assert_eq!(a.flushes, b.flushes, "{}: flushes differ", p.name);
    (got_async, a.writes)
}

/// The status of each exchange of a run (`0`: an error).
fn statuses(run: &Run) -> Vec<u16> {
    run.iter()
        .map(|(r, ..)| r.as_ref().map_or(0, |o| o.status))
        .collect()
}

#[test]
fn fault_free_programs_complete_and_agree() {
    for p in PROGRAMS.iter().chain(LATE) {
        let (run, _) = both(p, &|_| {}, 4096);
        assert_eq!(statuses(&run), p.want, "{}: {run:?}", p.name);
    }
}

/// What the programs show, exchange by exchange.
#[test]
fn the_programs_do_what_they_say() {
    let status = statuses;
    let reusable = |run: &Run| -> Vec<bool> { run.iter().map(|(_, k, _)| *k).collect() };
    let find = |name: &str| PROGRAMS.iter().find(|p| p.name.starts_with(name)).unwrap();

    let (run, writes) = both(find("expect: 100"), &|_| {}, 4096);
    assert_eq!(status(&run), [201, 204]);
    // The head alone, then (after the 100, at 4 ms) the body.
    assert!(writes[0].ends_with(b"Expect: 100-continue\r\nContent-Length: 7\r\n\r\n"));
    assert_eq!(writes[1], b"payload");
    assert_eq!(run[0].2, 5, "the 201 came 1 ms after the body");

    let (run, writes) = both(find("expect ignored"), &|_| {}, 4096);
    assert_eq!(status(&run), [200]);
    assert_eq!(writes[1], b"payload");

    let (run, writes) = both(find("expect refused"), &|_| {}, 4096);
    assert_eq!(status(&run), [417, 0]);
    assert_eq!(writes.len(), 1, "the body was never sent: {writes:?}");
    assert_eq!(reusable(&run), [false, false]);
    assert_eq!(
        run[1].0,
        Err(Error::Connection(ConnectionError::Broken(
            rawpost::Broken::BodyNotSent
        )))
    );

    let (run, writes) = both(find("built in the buffer"), &|_| {}, 4096);
    assert_eq!(status(&run), [204, 200, 200]);
    // One write for head and body built in the buffer; with Expect, the head then the body.
    assert_eq!(
        writes[1],
        b"POST /json HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"seq\":3}"
    );
    assert_eq!(writes[3], br#"{"seq":4}"#);

    let (run, _) = both(find("error bodies"), &|_| {}, 4096);
    assert_eq!(status(&run), [404, 500, 200]);
    assert_eq!(run[2].0.as_ref().unwrap().body, b"ok");
    assert_eq!(reusable(&run), [true, true, true]);

    let (run, _) = both(find("length, interim"), &|_| {}, 4096);
    assert_eq!(status(&run), [200, 200, 202]);
    assert_eq!(
        run[1].0.as_ref().unwrap().trailers,
        [("X-T".into(), b"1".to_vec())]
    );
    assert_eq!(run[2].0.as_ref().unwrap().body, b"third");
    assert_eq!(reusable(&run), [true, true, false]);
}

#[test]
fn late_answers_time_out_at_the_same_moment() {
    let (run, _) = both(&LATE[0], &|_| {}, 4096);
    assert_eq!(
        run,
        [(Err(Error::Timeout(TimeoutPhase::FirstByte)), false, 40)]
    );
    let (run, _) = both(&LATE[1], &|_| {}, 4096);
    assert_eq!(run[0].0.as_ref().map(|o| o.status), Ok(200));
    assert_eq!(run[0].2, 40);
    let (run, _) = both(&LATE[2], &|_| {}, 4096);
    assert_eq!(run.len(), 2);
    assert_eq!(
        run[1],
        (Err(Error::Timeout(TimeoutPhase::FirstByte)), false, 43)
    );
}

/// A streamed body's `flush` is a step of the core like any other: a failed flush at every
/// flush call ends the exchange with the stream's error in both shells, and the connection is
/// not reused.
#[test]
fn a_failed_flush_at_every_call_agrees() {
    let mut failed = 0;
    for p in PROGRAMS {
        let clock = FakeClock::default();
        let mut flushes = Peer::turns(p.turns, p.delays, &clock);
        block_on_clock(run_async(p, &mut flushes, &clock, 4096), &clock);
        for k in 0..flushes.flushes {
            let (run, _) = both(p, &|peer| peer.flush_error_at = Some(k), 4096);
            let (last, reusable, _) = run.last().unwrap();
            assert_eq!(
                (last, *reusable),
                (&Err(Error::Io(Injected)), false),
                "{}: flush {k} failed: {run:?}",
                p.name
            );
            failed += 1;
        }
    }
    // The streamed program flushes after each of its pieces (and the request), so some of
    // these failures happen inside a body.
    assert!(failed > 10, "{failed}");
}

#[test]
fn every_read_split_gives_the_same_results_and_writes() {
    for p in PROGRAMS {
        let (want, want_writes) = both(p, &|_| {}, 4096);
        let len = p.turns.iter().map(|t| t.len()).max().unwrap();
        let mut plans = vec![Reads::Max(1), Reads::Max(3)];
        plans.extend((1..len).map(|k| Reads::Sizes(vec![k])));
        for plan in plans {
            for out_step in [4096, 1, 5] {
                let (got, writes) = both(p, &|peer| peer.reads = plan.clone(), out_step);
                assert_eq!(got, want, "{}: reads {plan:?}, out {out_step}", p.name);
                assert_eq!(
                    writes.concat(),
                    want_writes.concat(),
                    "{}: reads {plan:?}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn eof_and_errors_at_every_offset_agree() {
    for p in PROGRAMS {
        let total: usize = p.turns.iter().map(|t| t.len()).sum();
        for at in 0..=total {
            for plan in [Reads::Whole, Reads::Max(1), Reads::Max(7)] {
                let (run, _) = both(
                    p,
                    &|peer| {
                        peer.reads = plan.clone();
                        peer.eof_at = Some(at);
                    },
                    3,
                );
                let (last, reusable, _) = run.last().unwrap();
                if at < total {
                    // Something must have noticed the missing bytes, unless the last response
                    // is delimited by the close.
                    assert!(
                        last.is_err() || !reusable,
                        "{}: EOF at {at}: {run:?}",
                        p.name
                    );
                }
                let (run, _) = both(
                    p,
                    &|peer| {
                        peer.reads = plan.clone();
                        peer.error_at = Some(at);
                    },
                    3,
                );
                if at < total {
                    let (last, reusable, _) = run.last().unwrap();
                    assert!(
                        matches!(
                            last,
                            Err(Error::Io(Injected)
                                | Error::Connection(ConnectionError::BodyLeftUnread { .. }))
                        ) && !reusable,
                        "{}: error at {at}: {run:?}",
                        p.name
                    );
                }
            }
        }
    }
}

#[test]
fn a_failed_write_at_every_call_agrees() {
    for p in PROGRAMS {
        let (_, writes) = both(p, &|_| {}, 4096);
        for call in 0..writes.len() {
            let (run, _) = both(p, &|peer| peer.write_error_at = Some(call), 4096);
            let (last, reusable, _) = run.last().unwrap();
            assert_eq!(
                (last, *reusable),
                (&Err(Error::Io(Injected)), false),
                "{}: write {call}",
                p.name
            );
        }
        // Short writes: the stream takes a few bytes per call.
        let (run, short) = both(p, &|peer| peer.write_max = Some(5), 4096);
        assert_eq!(statuses(&run), p.want, "{}: {run:?}", p.name);
        assert_eq!(short.concat(), writes.concat(), "{}", p.name);
    }
}
