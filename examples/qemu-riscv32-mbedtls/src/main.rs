//! rawpost over mbedtls-rs on a RISC-V core (RV32IMC, the ESP32-C3's instruction set), under
//! QEMU: the run of ../qemu-riscv32 with another TLS stack.
//!
//! One async task, like a firmware's: three TLS sessions, one after the other, over the UART
//! (which QEMU connects to the host's rustls server, ../qemu-riscv32-server, in TLS 1.3 or in
//! TLS 1.2-only mode). The pinned root comes from the run script and is parsed once. The first
//! session POSTs JSON twice, the second (a reconnect) and the third (after the server renewed
//! its certificate) once each, and each session ends with close_notify. Mbed TLS verifies the
//! chain (signatures, names, basicConstraints, key usage) and the server name; it checks no
//! validity dates in this build (its prebuilt library has no clock: see docs/tls-stacks.md).
//! Each step is measured: instructions (`minstret`, without the UART driver), the stack it
//! needs below the task (painting), and the heap's high-water mark (src/heap.rs). One JSON
//! line reports it all through semihosting; the exit status says how it ended (see [`Exit`]).
//!
//! Mode (from the run script): 1 = the sessions, with software cryptography (no hook is
//! installed: there is no ESP hardware here). 3 = the same, and in the first session the
//! readiness checks a `Client` makes before writing into a kept session (rawpost's
//! `check_closed` over the firmware's `ReadReady` stream, ../esp32c3-mbedtls/src/stream.rs):
//! right after the handshake, once the server's session tickets have arrived (not closed:
//! tickets are not data), after the first POST (not closed), and after a second POST to
//! `/echo-close`, which the server follows with close_notify (closed).
//!
//! **Test only:** the TLS randomness is a fixed-seed generator (../qemu-riscv32/src/rng.rs),
//! so the figures repeat exactly; a device uses its true random number generator.
#![no_std]
#![no_main]

extern crate alloc;

// The board, the JSON writer and the test RNG of the embedded-tls guest, unchanged. This
// program does not time single functions (the profiler in board.rs stays unused).
#[allow(dead_code)]
#[path = "../../qemu-riscv32/src/board.rs"]
mod board;
mod client;
mod heap;
mod libc;
mod probe;
#[allow(dead_code)]
#[path = "../../qemu-riscv32/src/report.rs"]
mod report;
#[path = "../../qemu-riscv32/src/rng.rs"]
mod rng;
#[path = "../../esp32c3-mbedtls/src/stream.rs"]
mod stream;

use core::convert::Infallible;
use core::future::Future;
use core::pin::{pin, Pin};
use core::ptr::{addr_of, addr_of_mut};
use core::task::{Context, Poll, Waker};

use board::Uart;
use client::{Failure, Reading};
use mbedtls_rs::{SessionError, Tls, TlsVersion};
use probe::ProbeUart;
use report::Json;
use tinyrlibc as _;

// ---------------------------------------------------------------------------------------------
// The statics a firmware needs (counted as static RAM; see .ci/qemu). Mbed TLS keeps its record
// buffers (16 KiB in, 16 KiB out) on the heap (src/heap.rs), not here.

/// rawpost's one buffer: the request (head and JSON body), then the response head.
const HTTP_LEN: usize = 2048;
/// The response body.
const BODY_LEN: usize = 512;
/// The server name as a C string (Mbed TLS's form of [`client::HOST`]).
const SNI_LEN: usize = 64;

static mut HTTP: [u8; HTTP_LEN] = [0; HTTP_LEN];
static mut BODY: [u8; BODY_LEN] = [0; BODY_LEN];
static mut SNI: [u8; SNI_LEN] = [0; SNI_LEN];

struct Buffers {
    http: &'static mut [u8],
    body: &'static mut [u8],
    sni: &'static mut [u8],
}

/// The buffers, taken once.
fn buffers() -> Buffers {
    // SAFETY: called once, from `main`; no other reference to these statics exists.
    unsafe {
        Buffers {
            http: &mut *addr_of_mut!(HTTP),
            body: &mut *addr_of_mut!(BODY),
            sni: &mut *addr_of_mut!(SNI),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring (as in ../qemu-riscv32/src/main.rs, with the heap added)

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

/// Instructions, stack and heap of one measured step.
#[derive(Clone, Copy)]
struct Cost {
    insns: u64,
    /// Bytes of stack the step used below the task (the step's future is part of the task's
    /// future, not counted here).
    stack: usize,
    /// The heap's high-water mark during the step (bytes in use, everything allocated before
    /// it included), and the bytes in use when it ended.
    heap_peak: usize,
    heap_after: usize,
}

const NO_COST: Cost = Cost {
    insns: 0,
    stack: 0,
    heap_peak: 0,
    heap_after: 0,
};

/// The start of a measured step: the stack is painted below the task's frame, the heap's
/// high-water mark restarted and the instruction count noted.
struct Mark {
    base: usize,
    start: u64,
}

impl Mark {
    #[inline(always)]
    fn begin() -> Self {
        note_low_water();
        board::paint_stack();
        heap::mark();
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
            insns,
            stack: self.base - low,
            heap_peak: heap::peak_since_mark(),
            heap_after: heap::in_use(),
        }
    }
}

/// `measured!(future)`, in the task: awaits the future as one measured step, giving its
/// output, its [`Cost`] and its size. The future is pinned in place in the task's own future
/// (no copy) and polled below the mark (see [`Below`]).
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
    /// Mode 3, first session: `check_closed` after the handshake, after the first POST and
    /// after the POST the server answers and closes (0 open, 1 closed, 2 failed; 9 not run).
    probes: [u8; 3],
    version: Option<TlsVersion>,
    posts: [PostResult; MAX_POSTS],
    post_count: usize,
    close: Cost,
}

const NO_SESSION: SessionResult = SessionResult {
    handshake: NO_COST,
    probes: [9; 3],
    version: None,
    posts: [NO_POST; MAX_POSTS],
    post_count: 0,
    close: NO_COST,
};

/// How the run ended: the exit status (the same values as ../qemu-riscv32's).
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

/// What the run measured: kept in the harness's memory, not in the memory being measured.
struct Run {
    sessions: [SessionResult; PLAN.len()],
    session_count: usize,
    failure: Option<(usize, &'static str, Failure)>,
    /// Heap in use once the pinned root is parsed (it stays for the whole run).
    heap_anchor: usize,
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
    heap_anchor: 0,
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
    heap::init();
    let config = board::config();
    let exit = if config.mode == 1 || config.mode == 3 {
        let task = pin!(session_task(&config, buffers()));
        run_record().task_future = core::mem::size_of_val(&*task);
        run_to_end(task)
    } else {
        Exit::BadConfig
    };
    report(run_record(), config.mode, exit);
    board::exit(exit as u16)
}

/// rand_core 0.10's view of the test RNG (mbedtls-rs takes a `rand_core` 0.10 `CryptoRng`).
struct TestRng(rng::TestRng);

impl rand_core_010::TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand_core::RngCore::next_u32(&mut self.0))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand_core::RngCore::next_u64(&mut self.0))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand_core::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}

impl rand_core_010::TryCryptoRng for TestRng {}

/// The task: the sessions of [`PLAN`], each measured step by step.
async fn session_task(config: &board::Config, bufs: Buffers) -> Exit {
    let mut rng = TestRng(rng::fixed_seed_test_rng());
    // SAFETY: `tls` is dropped at the end of this function, before `rng` (declared first); it
    // is never leaked.
    let tls = match unsafe { Tls::new_local_borrows(&mut rng) } {
        Ok(tls) => tls,
        Err(_) => return Exit::BadConfig,
    };
    let Some(sni) = client::server_name(client::HOST, bufs.sni) else {
        return Exit::BadConfig;
    };
    let anchor = match client::anchor(config.anchor) {
        Ok(anchor) => anchor,
        Err(failure) => {
            run_record().failure = Some((0, "anchor", failure));
            return Exit::BadConfig;
        }
    };
    run_record().heap_anchor = heap::in_use();
    let probes = config.mode == 3;
    let mut uart = ProbeUart(Uart::init());
    for (index, &posts) in PLAN.iter().enumerate() {
        let session = index as u32 + 1;
        run_record().session_count = index + 1;
        let (opened, handshake, size) = measured!(client::open(
            tls.reference(),
            &mut uart,
            &mut *bufs.http,
            &anchor,
            sni
        ));
        run_record().open_future = size;
        run_record().sessions[index].handshake = handshake;
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(failure) => {
                let exit = match failure {
                    Failure::Handshake { verify, .. } if verify != 0 => Exit::Refused,
                    _ => Exit::Handshake,
                };
                run_record().failure = Some((index, "handshake", failure));
                return exit;
            }
        };
        run_record().sessions[index].version = client::version(&conn);
        if probes && index == 0 {
            // The server's session tickets (TLS 1.3) follow its Finished: let them arrive.
            probe::wait_for_byte(200_000_000);
            run_record().sessions[0].probes[0] = probe(&mut conn).await;
        }
        for seq in 1..=posts as u32 {
            let reading = Reading {
                device: "qemu-riscv32imc",
                session,
                seq,
                message: "hello from rawpost",
            };
            // Mode 3: the first session's last POST asks the server to close after answering.
            let last = seq == posts as u32;
            let path = if probes && index == 0 && last {
                "/echo-close"
            } else {
                "/echo"
            };
            let (posted, cost, size) =
                measured!(client::post(&mut conn, path, &reading, &mut *bufs.body));
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
            if probes && index == 0 {
                let mut found = 0;
                // The server's close_notify follows the answer: let it arrive. A probe that finds
                // only part of its record finds nothing yet (as it should: the rest is on its
                // way), so on a loaded host the last probe looks again when more bytes are
                // there, a few times at most.
                for _ in 0..if last { 5 } else { 1 } {
                    if last {
                        probe::wait_for_byte(200_000_000);
                    }
                    found = probe(&mut conn).await;
                    if found != 0 {
                        break;
                    }
                }
                run_record().sessions[0].probes[seq as usize] = found;
            }
        }
        let (closed, cost, size) = measured!(client::close(conn));
        run_record().close_future = size;
        run_record().sessions[index].close = cost;
        if let Err(failure) = closed {
            run_record().failure = Some((index, "close", failure));
            return Exit::Handshake;
        }
    }
    Exit::Done
}

/// One readiness check, with the UART's reads not waiting for bytes (src/probe.rs).
async fn probe(conn: &mut client::Session<'_>) -> u8 {
    probe::probing(true);
    let closed = client::check_closed(conn).await;
    probe::probing(false);
    closed
}

fn cost(json: &mut Json, name: &str, cost: &Cost) {
    json.open(Some(name), "{")
        .num("insns", cost.insns)
        .num("stack", cost.stack)
        .num("heap_peak", cost.heap_peak)
        .num("heap_after", cost.heap_after)
        .close("}");
}

fn version_name(version: Option<TlsVersion>) -> &'static str {
    match version {
        Some(TlsVersion::Tls1_3) => "1.3",
        Some(TlsVersion::Tls1_2) => "1.2",
        None => "none",
    }
}

#[inline(never)]
fn report(run: &Run, mode: u32, exit: Exit) {
    let lowest = lowest();
    let (allocations, refused) = heap::allocations();
    let (arena_start, arena_len) = heap::arena();
    let mut json = Json::new();
    json.open(None, "{")
        .num("ok", exit == Exit::Done)
        .num("exit", exit as u16)
        .num("mode", mode)
        .num("stack_peak", board::stack_top() - lowest)
        .num("heap_peak", heap::peak())
        .num("heap_anchor", run.heap_anchor)
        .num("heap_arena_start", arena_start)
        .num("heap_arena", arena_len)
        .num("allocations", allocations)
        .num("allocations_refused", refused)
        .num("task_future", run.task_future)
        .num("open_future", run.open_future)
        .num("post_future", run.post_future)
        .num("close_future", run.close_future);
    if let Some((index, phase, failure)) = &run.failure {
        json.num("failed_session", index + 1).str("phase", phase);
        match failure {
            Failure::Anchor(e) => json.str("error", format_args!("{e}")),
            Failure::Handshake { error, verify } => {
                match error {
                    SessionError::MbedTls(e) => json.str("error", format_args!("{e}")),
                    SessionError::Io(kind) => json.str("error", format_args!("IO {kind:?}")),
                };
                json.num("verify", verify)
            }
            Failure::Http(name) => json.str("error", name),
        };
    }
    json.open(Some("sessions"), "[");
    for result in &run.sessions[..run.session_count] {
        json.open(None, "{")
            .str("version", version_name(result.version));
        json.open(Some("probes"), "[");
        for p in result.probes {
            json.item(p);
        }
        json.close("]");
        cost(&mut json, "handshake", &result.handshake);
        json.open(Some("posts"), "[");
        for post in &result.posts[..result.post_count] {
            json.open(None, "{")
                .num("insns", post.cost.insns)
                .num("stack", post.cost.stack)
                .num("heap_peak", post.cost.heap_peak)
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
