//! One POST through reqwless 0.14 over a plain stream: the reference exchange of
//! `rawpost_size`.
#![no_std]
#![no_main]

use rawpost_size::{block_on, halt, sink, Dummy};

/// The whole exchange: send the POST, read the body. The same code as
/// `rawpost_size::reqwless_exchange` (one macro); its future's size is read from
/// `-Zprint-type-sizes` (`{async fn body of exchange()}`).
async fn exchange(stream: &mut Dummy, rx: &mut [u8]) -> usize {
    rawpost_size::reqwless_exchange_body!(stream, rx)
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut rx = [0u8; 1024];
    sink(block_on(exchange(&mut stream, &mut rx)));
    halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
