//! One POST through rawpost's blocking shell over a plain stream: the same sans-IO core as the
//! async one, without coroutines, so every panic path left in it is the core's (or a
//! dependency's). `.ci/panic-check` checks that none is rawpost's.
#![no_std]
#![no_main]

use rawpost_size::{sink, Dummy, BODY, CONTENT_TYPE, HOST, PATH, USER_AGENT};

fn exchange(stream: &mut Dummy, buf: &mut [u8], out: &mut [u8]) -> usize {
    let headers = [
        ("Content-Type", CONTENT_TYPE),
        ("Accept", CONTENT_TYPE),
        ("User-Agent", USER_AGENT),
    ];
    let mut conn = rawpost::blocking::Connection::new(stream, buf, rawpost::Host::new(HOST));
    let req = rawpost::Request::post(PATH).headers(&headers).body(BODY);
    let Ok(mut resp) = conn.send(&req) else {
        return 0;
    };
    if resp.status() != 200 {
        return 0;
    }
    resp.read_to_end(out).unwrap_or(0)
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut stream = Dummy::new();
    let mut buf = [0u8; 1024];
    let mut out = [0u8; 512];
    sink(exchange(&mut stream, &mut buf, &mut out));
    rawpost_size::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rawpost_size::panicked()
}
