//! One POST through reqwless 0.14 over a plain stream.
#![no_std]
#![no_main]

use rawpost_size::{block_on, halt, sink, Dummy, BODY, HOST, PATH, USER_AGENT};
use reqwless::headers::ContentType;
use reqwless::request::{Request, RequestBuilder};

/// The whole exchange: send the POST, read the body. Its future's size is read from
/// `-Zprint-type-sizes` (`{async fn body of exchange()}`).
async fn exchange(stream: &mut Dummy, rx: &mut [u8]) -> usize {
    let headers = [("User-Agent", USER_AGENT)];
    let mut conn = reqwless::client::HttpConnection::Plain(stream);
    let req = Request::post(PATH)
        .host(HOST)
        .content_type(ContentType::ApplicationJson)
        .accept(ContentType::ApplicationJson)
        .headers(&headers)
        .body(&BODY[..])
        .build();
    let Ok(resp) = conn.send(req, rx).await else {
        return 0;
    };
    if resp.status.0 != 200 {
        return 0;
    }
    match resp.body().read_to_end().await {
        Ok(body) => body.len(),
        Err(_) => 0,
    }
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
