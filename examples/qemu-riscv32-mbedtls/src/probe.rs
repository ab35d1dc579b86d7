//! The UART as the TLS session's transport, with one addition for the readiness case (mode 3):
//! while a probe runs, a read that finds no byte waiting returns `Pending` instead of waiting
//! for one, as a network socket's read does. Outside probes it is the board's UART unchanged
//! (its read waits until the bytes it was asked for are there, which keeps the measured
//! instruction counts independent of when the host's bytes arrive).

use core::convert::Infallible;
use core::future::poll_fn;
use core::ptr::{addr_of, addr_of_mut, read_volatile};
use core::task::Poll;

use crate::board::Uart;

/// The NS16550A's line status register (board.rs): bit 0, a received byte is waiting.
const UART_LSR: usize = 0x1000_0005;

fn rx_ready() -> bool {
    // SAFETY: a register of QEMU's virt machine UART; reading LSR has no side effect.
    unsafe { read_volatile(UART_LSR as *const u8) & 1 != 0 }
}

/// Waits, at most `polls` times, for a received byte: outside any measurement, so that a probe
/// sees what the server has sent rather than what has arrived so far.
pub fn wait_for_byte(polls: u32) -> bool {
    (0..polls).any(|_| rx_ready())
}

#[link_section = ".harness"]
static mut PROBING: bool = false;

/// Starts or ends a probe.
pub fn probing(on: bool) {
    // SAFETY: one hart, no interrupts.
    unsafe { *addr_of_mut!(PROBING) = on }
}

fn is_probing() -> bool {
    // SAFETY: as above.
    unsafe { *addr_of!(PROBING) }
}

pub struct ProbeUart(pub Uart);

impl embedded_io::ErrorType for ProbeUart {
    type Error = Infallible;
}

impl embedded_io_async::Read for ProbeUart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if is_probing() && !rx_ready() {
            poll_fn(|_| Poll::<()>::Pending).await;
        }
        self.0.read(buf).await
    }
}

impl embedded_io_async::Write for ProbeUart {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        self.0.flush().await
    }
}
