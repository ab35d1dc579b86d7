//! One POST through rawpost's blocking shell over a plain stream
//! (`rawpost_size::rawpost_exchange_blocking`): the same sans-IO core as the async one, without
//! coroutines, so every panic path left in it is the core's (or a dependency's).
//! `.ci/panic-check` checks that none is rawpost's.
#![no_std]
#![no_main]

use rawpost_size::{rawpost_exchange_blocking, sink, Dummy};

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 512];
    sink(rawpost_exchange_blocking(&mut stream, &mut buf, &mut out));
    rawpost_size::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
