//! Not a size figure: every exchange of `rawpost_size` in one binary, over the same stream
//! type as the size binaries, so that one `-Zprint-type-sizes` report of this crate gives the
//! riscv32imc layout of every future measured (rawpost's `send`, `send_with`, `Response::read`,
//! `read_to_end`, `drive`, the connections; reqwless's `send`, body `read_to_end` and `read`; each whole
//! exchange). See `.ci/measure`.
#![no_std]
#![no_main]

use rawpost_size::{
    block_on, halt, rawpost_exchange, rawpost_exchange_blocking, rawpost_exchange_send_with,
    reqwless_exchange, reqwless_exchange_buffered, reqwless_exchange_read, sink, Dummy,
};

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut buf = [0u8; 1024];
    let mut tx = [0u8; 1024];
    let mut out = [0u8; 512];
    sink(block_on(rawpost_exchange(
        &mut Dummy::new(),
        &mut buf,
        &mut out,
    )));
    sink(block_on(rawpost_exchange_send_with(
        &mut Dummy::new(),
        &mut buf,
        &mut out,
    )));
    sink(rawpost_exchange_blocking(
        &mut Dummy::new(),
        &mut buf,
        &mut out,
    ));
    sink(block_on(reqwless_exchange(&mut Dummy::new(), &mut buf)));
    sink(block_on(reqwless_exchange_buffered(
        &mut Dummy::new(),
        &mut tx,
        &mut buf,
    )));
    sink(block_on(reqwless_exchange_read(
        &mut Dummy::new(),
        &mut buf,
        &mut out,
    )));
    halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
