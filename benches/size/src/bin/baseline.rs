//! The size binaries' program without an HTTP crate: the same stream, executor, entry point
//! and panic handler as `size-rawpost` and `size-reqwless`, with one write of the body and
//! reads of the response in place of the exchange (`rawpost_size::baseline_exchange`). An HTTP
//! binary's flash minus this one's is what the HTTP crate costs.
#![no_std]
#![no_main]

use rawpost_size::{baseline_exchange, block_on, halt, sink, Dummy};

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut buf = [0u8; 1024];
    sink(block_on(baseline_exchange(&mut stream, &mut buf)));
    halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
