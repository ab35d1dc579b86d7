//! One POST through rawpost over a plain stream.
#![no_std]
#![no_main]

use rawpost_size::{block_on, halt, sink, Dummy, BODY, CONTENT_TYPE, HOST, PATH, USER_AGENT};

/// The whole exchange: send the POST, read the body. Its future's size is read from
/// `-Zprint-type-sizes` (`{async fn body of exchange()}`).
async fn exchange(stream: &mut Dummy, buf: &mut [u8], out: &mut [u8]) -> usize {
    let headers = [
        ("Content-Type", CONTENT_TYPE),
        ("Accept", CONTENT_TYPE),
        ("User-Agent", USER_AGENT),
    ];
    let mut conn = rawpost::Connection::new(stream, buf, rawpost::Host::new(HOST));
    let req = rawpost::Request::post(PATH).headers(&headers).body(BODY);
    let Ok(mut resp) = conn.send(&req).await else {
        return 0;
    };
    if resp.status() != 200 {
        return 0;
    }
    resp.read_to_end(out).await.unwrap_or(0)
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
