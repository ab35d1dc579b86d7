//! rawpost on a RISC-V core (RV32IMC, the ESP32-C3's instruction set), under QEMU.
//!
//! One async task, like a firmware's: three TLS 1.3 sessions, one after the other, over the UART
//! (which QEMU connects to the host's rustls server, ../qemu-riscv32-server). The pinned
//! certificate comes from the run script. The first session POSTs JSON twice, the second (a
//! reconnect) and the third (after the server renewed its certificate) once each, and each
//! session ends with close_notify. Each step is measured: instructions (`minstret`, without the
//! UART driver) and the stack it needs below the task (painting). One JSON line reports it all
//! through semihosting; the exit status says how it ended (see [`Exit`]).
//!
//! Mode (from the run script): 1 = the sessions, with a `SignatureCache` kept between them;
//! 2 = the same without it (the baseline for the reconnect).
//!
//! **Test only:** the TLS randomness is a fixed-seed generator (src/rng.rs), so the figures
//! repeat exactly; a device uses its true random number generator.
#![no_std]
#![no_main]

mod board;
mod client;
mod report;
mod rng;

use core::future::Future;
use core::pin::{pin, Pin};
use core::ptr::{addr_of, addr_of_mut};
use core::task::{Context, Poll, Waker};

use board::{Call, IoEvent, Uart, CALLS_LEN, IO_LOG_LEN};
use client::{Failure, Reading};
use report::Json;

// ---------------------------------------------------------------------------------------------
// The statics a firmware needs (counted as static RAM; see .ci/qemu)

/// A whole TLS record of 16 KiB plaintext plus overhead: servers send records that large
/// whatever the client asks.
const TLS_READ_LEN: usize = 16_640;
/// Records the client writes: the ClientHello, Finished, the requests (split into several
/// records when larger).
const TLS_WRITE_LEN: usize = 4096;
/// rawpost's one buffer: the request (head and JSON body), then the response head.
const HTTP_LEN: usize = 2048;
/// The response body.
const BODY_LEN: usize = 512;

static mut TLS_READ: [u8; TLS_READ_LEN] = [0; TLS_READ_LEN];
static mut TLS_WRITE: [u8; TLS_WRITE_LEN] = [0; TLS_WRITE_LEN];
static mut HTTP: [u8; HTTP_LEN] = [0; HTTP_LEN];
static mut BODY: [u8; BODY_LEN] = [0; BODY_LEN];
/// Certificate signatures already verified, kept between sessions (mode 1).
static mut SIGNATURES: client::Signatures = client::Signatures::new();

struct Buffers {
    tls_read: &'static mut [u8],
    tls_write: &'static mut [u8],
    http: &'static mut [u8],
    body: &'static mut [u8],
    signatures: &'static mut client::Signatures,
}

/// The buffers, taken once.
fn buffers() -> Buffers {
    // SAFETY: called once, from `main`; no other reference to these statics exists.
    unsafe {
        Buffers {
            tls_read: &mut *addr_of_mut!(TLS_READ),
            tls_write: &mut *addr_of_mut!(TLS_WRITE),
            http: &mut *addr_of_mut!(HTTP),
            body: &mut *addr_of_mut!(BODY),
            signatures: &mut *addr_of_mut!(SIGNATURES),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// The lowest stack address seen written in the whole run.
#[link_section = ".harness"]
static mut LOWEST: usize = 0;

fn note_low_water() {
    let low = board::stack_low_water();
    // SAFETY: one hart, no interrupts.
    unsafe {
        let lowest = &mut *addr_of_mut!(LOWEST);
        if *lowest == 0 || low < *lowest {
            *lowest = low;
        }
    }
}

fn lowest() -> usize {
    note_low_water();
    // SAFETY: as above.
    unsafe { *addr_of!(LOWEST) }
}

/// Instructions and stack of one measured step.
#[derive(Clone, Copy)]
struct Cost {
    /// [`board::insns`] when the step began.
    start: u64,
    insns: u64,
    /// The stack pointer from which `stack` is counted: the task's frame at the step.
    base: usize,
    /// Bytes of stack the step used below the task (the step's future is part of the task's
    /// future, not counted here).
    stack: usize,
}

const NO_COST: Cost = Cost {
    start: 0,
    insns: 0,
    base: 0,
    stack: 0,
};

/// The start of a measured step: the stack is painted below the task's frame and the
/// instruction count noted.
struct Mark {
    base: usize,
    start: u64,
}

impl Mark {
    #[inline(always)]
    fn begin() -> Self {
        note_low_water();
        board::paint_stack();
        Mark {
            base: board::sp(),
            start: board::insns(),
        }
    }

    fn end(self) -> Cost {
        let insns = board::insns() - self.start;
        let low = board::stack_low_water();
        note_low_water();
        Cost {
            start: self.start,
            insns,
            base: self.base,
            stack: self.base - low,
        }
    }
}

/// `measured!(future)`, in the task: awaits the future as one measured step, giving its
/// output and its [`Cost`]. The future is pinned in place in the task's own future (no copy)
/// and polled below the mark (see [`Below`]).
macro_rules! measured {
    ($step:expr) => {{
        let mut step = pin!($step);
        let mark = Mark::begin();
        let out = Below(step.as_mut()).await;
        (out, mark.end(), core::mem::size_of_val(&*step))
    }};
}

/// Polls a step in a function of its own, so that none of the step's stack is counted in the
/// task's frame above the mark, whatever the compiler inlines.
struct Below<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for Below<'_, F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// Polls `fut` until it is ready. The UART never makes it wait (it polls the hardware
/// itself), so this returns after the first poll.
#[inline(never)]
fn run_to_end<F: Future>(mut fut: Pin<&mut F>) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run

/// POSTs per session: two on the first, one after the reconnect, one after the renewal.
const PLAN: [usize; 3] = [2, 1, 1];
const MAX_POSTS: usize = 2;

#[derive(Clone, Copy)]
struct PostResult {
    cost: Cost,
    status: u16,
    len: usize,
    echo: bool,
}

const NO_POST: PostResult = PostResult {
    cost: NO_COST,
    status: 0,
    len: 0,
    echo: false,
};

struct SessionResult {
    handshake: Cost,
    io: [IoEvent; IO_LOG_LEN],
    io_len: usize,
    calls: [Call; CALLS_LEN],
    call_count: usize,
    posts: [PostResult; MAX_POSTS],
    post_count: usize,
    close: Cost,
}

const NO_SESSION: SessionResult = SessionResult {
    handshake: NO_COST,
    io: [board::NO_EVENT; IO_LOG_LEN],
    io_len: 0,
    calls: [board::NO_CALL; CALLS_LEN],
    call_count: 0,
    posts: [NO_POST; MAX_POSTS],
    post_count: 0,
    close: NO_COST,
};

/// How the run ended: the exit status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Every session and POST as planned, every echo exact.
    Done = 0,
    /// The server's certificate was refused.
    Refused = 1,
    /// A handshake failed for another reason.
    Handshake = 2,
    /// An HTTP exchange failed.
    Http = 3,
    /// A POST was answered, but not with 200 and the exact echo.
    WrongAnswer = 4,
    /// The run script passed an unknown mode or a bad certificate.
    BadConfig = 5,
}

/// What the run measured: kept in the harness's memory, not on the stack being measured.
struct Run {
    sessions: [SessionResult; PLAN.len()],
    session_count: usize,
    failure: Option<(usize, &'static str, Failure)>,
    task_future: usize,
    open_future: usize,
    post_future: usize,
    close_future: usize,
}

#[link_section = ".harness"]
static mut RUN: Run = Run {
    sessions: [NO_SESSION; PLAN.len()],
    session_count: 0,
    failure: None,
    task_future: 0,
    open_future: 0,
    post_future: 0,
    close_future: 0,
};

/// The harness's record of the run, outside the measured memory.
fn run_record() -> &'static mut Run {
    // SAFETY: one hart, no interrupts; the task and `main` use it one after the other, and no
    // reference is kept across the other's use (each call makes a new one, used briefly).
    unsafe { &mut *addr_of_mut!(RUN) }
}

#[riscv_rt::entry]
fn main() -> ! {
    board::paint_stack();
    let config = board::config();
    let exit = if config.mode == 1 || config.mode == 2 {
        let task = pin!(session_task(&config, buffers()));
        run_record().task_future = core::mem::size_of_val(&*task);
        run_to_end(task)
    } else {
        Exit::BadConfig
    };
    report(run_record(), config.mode, exit);
    board::exit(exit as u16)
}

/// The task: the sessions of [`PLAN`], each measured step by step.
async fn session_task(config: &board::Config, bufs: Buffers) -> Exit {
    let keep_signatures = config.mode == 1;
    let mut rng = rng::fixed_seed_test_rng();
    let mut uart = Uart::init();
    for (index, &posts) in PLAN.iter().enumerate() {
        let session = index as u32 + 1;
        run_record().session_count = index + 1;
        board::io_log(true);
        board::profile(config.profile);
        let (opened, handshake, size) = measured!(client::open(
            uart,
            &mut *bufs.tls_read,
            &mut *bufs.tls_write,
            &mut *bufs.http,
            config.anchor,
            &mut rng,
            keep_signatures.then_some(&mut *bufs.signatures),
        ));
        run_record().open_future = size;
        board::io_log(false);
        let result = &mut run_record().sessions[index];
        result.handshake = handshake;
        result.io_len = board::io_events(&mut result.io);
        result.call_count = board::profiled_calls(&mut result.calls);
        board::profile(0);
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(failure) => {
                let exit = match failure {
                    Failure::Anchor(_) => Exit::BadConfig,
                    Failure::Certificate { .. } => Exit::Refused,
                    _ => Exit::Handshake,
                };
                run_record().failure = Some((index, "handshake", failure));
                return exit;
            }
        };
        for seq in 1..=posts as u32 {
            let reading = Reading {
                device: "qemu-riscv32imc",
                session,
                seq,
                message: "hello from rawpost",
            };
            let (posted, cost, size) =
                measured!(client::post(&mut conn, &reading, &mut *bufs.body));
            run_record().post_future = size;
            let (status, len) = match posted {
                Ok(answer) => answer,
                Err(failure) => {
                    run_record().failure = Some((index, "post", failure));
                    return Exit::Http;
                }
            };
            // The server echoes the body: compare with what was sent (outside the measurement).
            let mut sent = [0u8; 128];
            let echo = serde_json_core::to_slice(&reading, &mut sent)
                .is_ok_and(|n| bufs.body.get(..len) == sent.get(..n));
            let result = &mut run_record().sessions[index];
            result.posts[result.post_count] = PostResult {
                cost,
                status,
                len,
                echo,
            };
            result.post_count += 1;
            if status != 200 || !echo {
                return Exit::WrongAnswer;
            }
        }
        let (closed, cost, size) = measured!(client::close(conn));
        run_record().close_future = size;
        run_record().sessions[index].close = cost;
        uart = match closed {
            Ok(uart) => uart,
            Err(failure) => {
                run_record().failure = Some((index, "close", failure));
                return Exit::Handshake;
            }
        };
    }
    Exit::Done
}

fn cost(json: &mut Json, name: &str, cost: &Cost) {
    json.open(Some(name), "{")
        .num("insns", cost.insns)
        .num("stack", cost.stack)
        .close("}");
}

#[inline(never)]
fn report(run: &Run, mode: u32, exit: Exit) {
    let lowest = lowest();
    let mut json = Json::new();
    json.open(None, "{")
        .num("ok", exit == Exit::Done)
        .num("exit", exit as u16)
        .num("mode", mode)
        .num("stack_peak", board::stack_top() - lowest)
        .num("task_future", run.task_future)
        .num("open_future", run.open_future)
        .num("post_future", run.post_future)
        .num("close_future", run.close_future);
    if let Some((index, phase, failure)) = &run.failure {
        json.num("failed_session", index + 1).str("phase", phase);
        match failure {
            Failure::Anchor(e) => json.str("error", format_args!("{e:?}")),
            Failure::Certificate { error, detail } => json
                .str("error", format_args!("{error:?}"))
                .str("detail", detail),
            Failure::Handshake(e) => json.str("error", format_args!("TLS {e:?}")),
            Failure::Http(name) => json.str("error", name),
        };
    }
    json.open(Some("sessions"), "[");
    for result in &run.sessions[..run.session_count] {
        json.open(None, "{");
        cost(&mut json, "handshake", &result.handshake);
        json.open(Some("io"), "[");
        for e in &result.io[..result.io_len] {
            json.open(None, "[")
                .item(format_args!("\"{}\"", e.kind as char))
                .item(e.first)
                .item(e.len)
                .item(e.start - result.handshake.start)
                .item(e.end - result.handshake.start)
                .close("]");
        }
        json.close("]");
        json.open(Some("calls"), "[");
        for c in &result.calls[..result.call_count] {
            json.open(None, "[")
                .item(c.start - result.handshake.start)
                .item(c.end - result.handshake.start)
                .item(c.a2)
                .item(c.a4)
                .item(result.handshake.base - c.sp)
                .close("]");
        }
        json.close("]");
        json.open(Some("posts"), "[");
        for post in &result.posts[..result.post_count] {
            json.open(None, "{")
                .num("insns", post.cost.insns)
                .num("stack", post.cost.stack)
                .num("status", post.status)
                .num("len", post.len)
                .num("echo", post.echo)
                .close("}");
        }
        json.close("]");
        cost(&mut json, "close", &result.close);
        json.close("}");
    }
    json.close("]").close("}").end();
}
