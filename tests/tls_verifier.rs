//! The certificate check runs synchronously inside one poll of the handshake future: it must
//! fit a small stack. The client side of a handshake against a real rustls server (on another
//! thread) runs here on a thread with a bounded stack (256 KiB in debug builds, where the runtime and the
//! unoptimized handshake take most of it; the verification alone is bounded by a unit test in
//! `src/tls/verifier.rs`;
//! `STACK_PROBE=N` to measure). The future itself is boxed: what is measured is the stack used
//! while it is polled.

mod tls_support;

use tls_support::*;

#[test]
fn handshake_fits_in_a_small_stack() {
    let pki = Pki::new(&P256, &P256);
    let stack = std::env::var("STACK_PROBE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256 * 1024);
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, server) = server_runtime.block_on(serve(pki.chain(), pki.leaf.key_der()));
    let root = pki.root.der.clone();
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let anchor = rawpost::tls::TrustAnchor::from_der(root.as_ref()).unwrap();
            let out = runtime.block_on(Box::pin(connect_with(addr, HOST, anchor, Time::Fixed)));
            assert_eq!(out.result, Ok(()), "{out:?}");
        })
        .unwrap()
        .join()
        .unwrap();
    let served = server_runtime.block_on(server).unwrap();
    assert!(served.request.is_ok(), "{served:?}");
}
