//! The reference exchange of issue 10, defined once for every measurement: the callgrind
//! instruction counts and the future sizes (`benches/instructions`), the riscv32imc size
//! binaries (`benches/size`) and the wall-clock bench (`benches/exchange.rs`) all include this
//! file.
//!
//! The request: `POST /oauth/token` with `Host`, `Content-Type`, `Accept`, `User-Agent` and a
//! 100-byte JSON body — 263 bytes on the wire for rawpost and for reqwless 0.14 (both add
//! `Content-Length: 100`). The response: `200 OK` with `Content-Type` and `Content-Length: 28`,
//! a 71-byte head and a 28-byte JSON body, 99 bytes in all.

/// The `Host` header (and, for TLS, the server name).
pub const HOST: &str = "api.example.com";
/// The request target.
pub const PATH: &str = "/oauth/token";
/// The `User-Agent` header.
pub const USER_AGENT: &str = "rawpost-bench/1.0";
/// The `Content-Type` and `Accept` headers.
pub const CONTENT_TYPE: &str = "application/json";

/// The 100-byte JSON request body.
pub static BODY: &[u8; 100] =
    br#"{"grant_type":"client_credentials","client_id":"esp32-c3-0042","client_secret":"s3cr3t-0123456789a"}"#;

/// The request's length on the wire (head and body), as both crates write it.
pub const REQUEST_LEN: usize = 263;

/// The server's answer: 99 bytes, a 71-byte head and a 28-byte body.
pub static RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"access_token\":\"t0k3n-042\"}";

/// The length of [`RESPONSE`]'s body.
pub const RESPONSE_BODY_LEN: usize = 28;

/// The same answer with the body in two chunks (`Transfer-Encoding: chunked`).
pub static RESPONSE_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"access_token\":\r\nc\r\n\"t0k3n-042\"}\r\n0\r\n\r\n";
