//! One POST through rawpost over a plain stream: the reference exchange of `rawpost_size`.
#![no_std]
#![no_main]

use rawpost_size::{block_on, halt, sink, Dummy};

/// The whole exchange: send the POST, read the body. The same code as
/// `rawpost_size::rawpost_exchange` (one macro); its future's size is read from
/// `-Zprint-type-sizes` (`{async fn body of exchange()}`).
async fn exchange(stream: &mut Dummy, buf: &mut [u8], out: &mut [u8]) -> usize {
    rawpost_size::rawpost_exchange_body!(stream, buf, out)
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 512];
    sink(block_on(exchange(&mut stream, &mut buf, &mut out)));
    halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
