//! The QEMU `virt` board as this program uses it, and every `unsafe` line of the program:
//!
//! - the NS16550A UART at 0x1000_0000, polled, as an `embedded-io-async` byte stream (QEMU
//!   connects it to the host's TLS server over TCP);
//! - the instruction counter `minstret` (exact under `-icount shift=0`), without the
//!   instructions spent inside the UART driver: they stand for the network stack, which a real
//!   firmware has instead, and their number depends on when the host's bytes arrive;
//! - stack painting, to find how deep the stack went;
//! - semihosting `SYS_WRITE0`, for the one result line, and the `sifive_test` finisher at
//!   0x10_0000, for the exit code;
//! - the run's configuration, written into memory by QEMU's `-device loader`.

use core::arch::asm;
use core::convert::Infallible;
use core::fmt;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

// ---------------------------------------------------------------------------------------------
// Configuration from `-device loader`

/// Where `.ci/qemu` puts the configuration: the mode (u32), the pinned certificate's length
/// (u32), the address of the function to profile (u32, 0 for none), and at [`ANCHOR_ADDR`] the
/// pinned certificate (DER). Outside every section of the program (see memory.x).
const CONFIG_ADDR: usize = 0x8100_0000;
const ANCHOR_ADDR: usize = 0x8100_1000;
const ANCHOR_MAX: usize = 0x1000;

/// What the run script asked for.
pub struct Config {
    pub mode: u32,
    /// The certificate to pin, DER. A firmware keeps it in flash (`include_bytes!`).
    pub anchor: &'static [u8],
    /// The entry address of a function whose calls [`profile`] times (0: none).
    pub profile: usize,
}

pub fn config() -> Config {
    // SAFETY: QEMU's `-device loader` wrote these words before the CPU started, and nothing in
    // the program's sections overlaps them (memory.x); the length is checked before the slice
    // is made.
    unsafe {
        let mode = read_volatile(CONFIG_ADDR as *const u32);
        let len = read_volatile((CONFIG_ADDR + 4) as *const u32) as usize;
        let anchor = core::slice::from_raw_parts(ANCHOR_ADDR as *const u8, len.min(ANCHOR_MAX));
        let profile = read_volatile((CONFIG_ADDR + 8) as *const u32) as usize;
        Config {
            mode,
            anchor,
            profile,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instruction counting

/// Instructions retired inside the UART driver so far.
#[link_section = ".harness"]
static mut IO_INSNS: u64 = 0;

fn minstret() -> u64 {
    riscv::register::minstret::read64()
}

/// Instructions retired so far, not counting those inside the UART driver.
pub fn insns() -> u64 {
    // SAFETY: one hart, no interrupts: nothing else touches the harness statics.
    minstret() - unsafe { *addr_of!(IO_INSNS) }
}

// ---------------------------------------------------------------------------------------------
// I/O log: the instruction count at each UART call of a handshake, to split it into phases.

/// One `read` or `write` call on the UART.
#[derive(Clone, Copy)]
pub struct IoEvent {
    /// `b'r'` or `b'w'`.
    pub kind: u8,
    /// The first byte moved (a TLS record's content type when a record header is read).
    pub first: u8,
    pub len: u16,
    /// [`insns`] when the call began and when it returned.
    pub start: u64,
    pub end: u64,
}

pub const IO_LOG_LEN: usize = 40;

struct IoLog {
    on: bool,
    len: usize,
    events: [IoEvent; IO_LOG_LEN],
}

pub const NO_EVENT: IoEvent = IoEvent {
    kind: 0,
    first: 0,
    len: 0,
    start: 0,
    end: 0,
};

#[link_section = ".harness"]
static mut IO_LOG: IoLog = IoLog {
    on: false,
    len: 0,
    events: [NO_EVENT; IO_LOG_LEN],
};

/// Starts (clears) or stops the I/O log.
pub fn io_log(on: bool) {
    // SAFETY: one hart, no interrupts; no reference to IO_LOG outlives this call.
    unsafe {
        let log = &mut *addr_of_mut!(IO_LOG);
        log.on = on;
        if on {
            log.len = 0;
        }
    }
}

/// The events logged since the log was last started (at most [`IO_LOG_LEN`]).
pub fn io_events(out: &mut [IoEvent; IO_LOG_LEN]) -> usize {
    // SAFETY: as above.
    unsafe {
        let log = &*addr_of!(IO_LOG);
        out.copy_from_slice(&log.events);
        log.len
    }
}

fn log_event(kind: u8, data: &[u8], start: u64, end: u64) {
    // SAFETY: as above.
    unsafe {
        let log = &mut *addr_of_mut!(IO_LOG);
        if log.on && log.len < IO_LOG_LEN {
            log.events[log.len] = IoEvent {
                kind,
                first: data.first().copied().unwrap_or(0),
                len: data.len() as u16,
                start,
                end,
            };
            log.len += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Profiling one function with the debug trigger (Sdtrig): each call's instruction counts at
// entry and return, without changing the code. The trigger fires a breakpoint exception at the
// function's first instruction; the handler notes the count and moves the trigger to the
// return address, then back. The handler's own instructions are not counted (like the UART's);
// the trap entry and exit around it, a few dozen instructions per call, are.

/// One profiled call.
#[derive(Clone, Copy)]
pub struct Call {
    /// [`insns`] at entry and at return.
    pub start: u64,
    pub end: u64,
    /// The third and fifth argument registers at entry (a2, a4): for
    /// `SignatureVerificationAlgorithm::verify_signature(&self, key, message, signature)`,
    /// the lengths of the public key and of the signed message.
    pub a2: usize,
    pub a4: usize,
    /// The stack pointer at entry.
    pub sp: usize,
}

pub const CALLS_LEN: usize = 8;

struct Profile {
    entry: usize,
    /// Inside a call: the trigger waits at its return address.
    inside: bool,
    len: usize,
    calls: [Call; CALLS_LEN],
}

pub const NO_CALL: Call = Call {
    start: 0,
    end: 0,
    a2: 0,
    a4: 0,
    sp: 0,
};

#[link_section = ".harness"]
static mut PROFILE: Profile = Profile {
    entry: 0,
    inside: false,
    len: 0,
    calls: [NO_CALL; CALLS_LEN],
};

/// mcontrol: type 2, action 0 (breakpoint exception), match in M-mode, on execution.
const MCONTROL_EXECUTE_M: usize = (2 << 28) | (1 << 6) | (1 << 2);

fn trigger(addr: Option<usize>) {
    // SAFETY: trigger 0 of the debug module; M-mode owns it (no debugger attached).
    unsafe {
        asm!("csrw tselect, zero", "csrw tdata1, {off}", off = in(reg) 2usize << 28);
        if let Some(addr) = addr {
            asm!("csrw tdata2, {a}", "csrw tdata1, {c}", a = in(reg) addr, c = in(reg) MCONTROL_EXECUTE_M);
        }
    }
}

/// Starts profiling the function at `entry` (0: stops), forgetting earlier calls.
pub fn profile(entry: usize) {
    // SAFETY: one hart; the trap handler only runs while a trigger is armed, not during this.
    unsafe {
        trigger(None);
        let p = &mut *addr_of_mut!(PROFILE);
        p.entry = entry;
        p.inside = false;
        p.len = 0;
    }
    if entry != 0 {
        trigger(Some(entry));
    }
}

/// The calls profiled since [`profile`] (at most [`CALLS_LEN`]).
pub fn profiled_calls(out: &mut [Call; CALLS_LEN]) -> usize {
    // SAFETY: one hart, no trap can be pending while this runs (the trigger is not in here).
    unsafe {
        let p = &*addr_of!(PROFILE);
        out.copy_from_slice(&p.calls);
        p.len
    }
}

/// The trigger fired: at the function's entry or at its return address.
fn on_trigger(frame: &riscv_rt::TrapFrame) {
    let start = minstret();
    let now = insns();
    // SAFETY: one hart; the interrupted code never touches PROFILE.
    unsafe {
        let p = &mut *addr_of_mut!(PROFILE);
        if !p.inside {
            if p.len < CALLS_LEN {
                p.calls[p.len] = Call {
                    start: now,
                    end: 0,
                    a2: frame.a2,
                    a4: frame.a4,
                    // riscv-rt's trap entry put the frame right below the interrupted sp.
                    sp: frame as *const riscv_rt::TrapFrame as usize
                        + core::mem::size_of::<riscv_rt::TrapFrame>(),
                };
            }
            p.inside = true;
            trigger(Some(frame.ra));
        } else {
            if p.len < CALLS_LEN {
                p.calls[p.len].end = now;
                p.len += 1;
            }
            p.inside = false;
            trigger(Some(p.entry));
        }
        *addr_of_mut!(IO_INSNS) += minstret() - start;
    }
}

// ---------------------------------------------------------------------------------------------
// The UART

const UART: usize = 0x1000_0000;
const RBR_THR: usize = 0;
const IER: usize = 1;
const FCR: usize = 2;
const LCR: usize = 3;
const LSR: usize = 5;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

fn reg_read(offset: usize) -> u8 {
    // SAFETY: an NS16550A register of QEMU's virt machine.
    unsafe { read_volatile((UART + offset) as *const u8) }
}

fn reg_write(offset: usize, value: u8) {
    // SAFETY: as above.
    unsafe { write_volatile((UART + offset) as *mut u8, value) }
}

/// The NS16550A UART, polled: the program's only byte stream (to QEMU's `-serial`, which is a
/// TCP connection to the host's server). Reads wait until the whole buffer is filled:
/// embedded-tls asks for exactly a record header, then exactly the record, so this never waits
/// for bytes that are not coming, and the number of calls does not depend on how the host's
/// bytes were split.
pub struct Uart(());

impl Uart {
    /// Resets the UART: FIFOs on and cleared, no interrupts, 8N1.
    pub fn init() -> Self {
        reg_write(IER, 0x00);
        reg_write(FCR, 0x07);
        reg_write(LCR, 0x03);
        Uart(())
    }

    fn account(start: u64) {
        let spent = minstret() - start;
        // SAFETY: one hart, no interrupts.
        unsafe { *addr_of_mut!(IO_INSNS) += spent };
    }
}

impl embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io_async::Read for Uart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let start = minstret();
        let at = insns();
        for byte in buf.iter_mut() {
            while reg_read(LSR) & LSR_DATA_READY == 0 {}
            *byte = reg_read(RBR_THR);
        }
        Self::account(start);
        log_event(b'r', buf, at, insns());
        Ok(buf.len())
    }
}

impl embedded_io_async::Write for Uart {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let start = minstret();
        let at = insns();
        for &byte in buf {
            while reg_read(LSR) & LSR_THR_EMPTY == 0 {}
            reg_write(RBR_THR, byte);
        }
        Self::account(start);
        log_event(b'w', buf, at, insns());
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Stack

const PAINT: u32 = 0x5AA5_C33C;

extern "C" {
    /// The lowest address of the stack region (riscv-rt's link.x).
    static __estack: u32;
    /// The top of the stack region: the stack starts here and grows down.
    static __sstack: u32;
}

pub fn stack_bottom() -> usize {
    addr_of!(__estack) as usize
}

pub fn stack_top() -> usize {
    addr_of!(__sstack) as usize
}

#[inline(always)]
pub fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// Fills the unused stack, from the bottom of the region to a little below this function's
/// frame, with a pattern.
#[inline(never)]
pub fn paint_stack() {
    let end = (sp() - 64) & !3;
    let mut p = stack_bottom();
    while p < end {
        // SAFETY: [stack_bottom, sp - 64) is stack memory that no live frame uses.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// The lowest stack address written since the last [`paint_stack`].
#[inline(never)]
pub fn stack_low_water() -> usize {
    let mut p = stack_bottom();
    let top = sp();
    // SAFETY: reads stack memory below the live frames (and stops at this frame).
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Output and exit

/// Semihosting `SYS_WRITE0`: writes a NUL-terminated string to the host (QEMU's stderr).
fn write0(text: &[u8]) {
    // SAFETY: the semihosting call sequence (slli; ebreak; srai, uncompressed, not crossing a
    // page) with a0 = SYS_WRITE0 and a1 = a NUL-terminated string; QEMU runs with
    // `-semihosting-config enable=on`.
    unsafe {
        asm!(
            ".option push",
            ".option norvc",
            ".balign 16",
            "slli x0, x0, 0x1f",
            "ebreak",
            "srai x0, x0, 7",
            ".option pop",
            inout("a0") 0x04usize => _,
            in("a1") text.as_ptr(),
            options(nostack, readonly),
        );
    }
}

/// Text to the host in pieces of up to 127 bytes, each through [`write0`]: no large buffer
/// (a `Write` for `core::fmt`).
pub struct Host {
    buf: [u8; 128],
    len: usize,
}

impl Host {
    pub fn new() -> Self {
        Host {
            buf: [0; 128],
            len: 0,
        }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            self.buf[self.len] = 0;
            write0(&self.buf[..=self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for Host {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if b == 0 {
                continue;
            }
            if self.len == self.buf.len() - 1 {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Ends QEMU through the `sifive_test` device: exit status `code`.
pub fn exit(code: u16) -> ! {
    let value = if code == 0 {
        0x5555
    } else {
        (u32::from(code) << 16) | 0x3333
    };
    // SAFETY: the sifive_test finisher of QEMU's virt machine.
    unsafe { write_volatile(0x10_0000 as *mut u32, value) };
    loop {
        core::hint::spin_loop();
    }
}

/// A CPU exception: the profiling trigger (breakpoint), or a fault (an illegal instruction,
/// an access fault…), which is reported, then exit 102.
#[export_name = "ExceptionHandler"]
fn exception_handler(frame: &riscv_rt::TrapFrame) {
    let cause = riscv::register::mcause::read().bits();
    // SAFETY: reads the entry address set by `profile`.
    let profiling = unsafe { (*addr_of!(PROFILE)).entry != 0 };
    if cause == 3 && profiling {
        on_trigger(frame);
        return;
    }
    let pc = riscv::register::mepc::read();
    let addr = riscv::register::mtval::read();
    let mut out = Host::new();
    let _ = fmt::write(
        &mut out,
        format_args!(
            "{{\"ok\":false,\"error\":\"exception\",\"mcause\":{cause},\"mepc\":{pc},\"mtval\":{addr}}}\n"
        ),
    );
    out.flush();
    exit(102)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = Host::new();
    let _ = fmt::write(
        &mut out,
        format_args!(
            "\n{{\"ok\":false,\"error\":\"panic\",\"message\":\"{}\"}}\n",
            crate::report::Escaped(info)
        ),
    );
    out.flush();
    exit(101)
}
