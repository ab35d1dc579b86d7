//! `size-baseline` without `.await`: the program of `size-rawpost-blocking` without rawpost
//! (`rawpost_size::baseline_exchange_blocking`).
#![no_std]
#![no_main]

use rawpost_size::{baseline_exchange_blocking, halt, sink, Dummy};

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut buf = [0u8; 1024];
    sink(baseline_exchange_blocking(&mut stream, &mut buf));
    halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
