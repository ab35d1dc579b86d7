//! POST JSON over TLS with the right certificate pinned, and see what went over the wire.
//!
//! ```text
//! cargo post
//! ```
//!
//! (`cargo post` is an alias, in `.cargo/config.toml`, for `cargo run --example post` with
//! features `embedded-tls,p384,ed25519,rsa,wire-trace,log`.)
//!
//! With no arguments this replays the ESP32 story on loopback: a device must POST JSON to a
//! Cloudflare-fronted API. The example starts an in-process HTTPS server that behaves like one
//! (TLS 1.3 only, SNI required, `421 Misdirected Request` when `Host` differs from the SNI name,
//! JSON in, JSON and a token out) with a certificate chain generated a moment before
//! (root CA → intermediate CA → leaf for `api.example.test`). Then, as firmware would:
//!
//! 1. it pins the **root** CA, decoded from PEM, with a clock so dates are checked too;
//! 2. opens TLS with embedded-tls through `rawpost::tls::connect`, which sends
//!    `api.example.test` as the server name and uses the same value for the `Host` header;
//! 3. POSTs JSON serialized by serde-json-core straight into rawpost's buffer, with the wire
//!    trace on (feature `wire-trace`, through `log`; `Authorization` is redacted);
//! 4. prints the status, the headers and the body, sends a second POST over the same TLS
//!    session, and shows the error a wrongly pinned (leaf) certificate gives.
//!
//! To POST to a server of your choice:
//!
//! ```text
//! cargo post -- https://host[:port]/path --ca root.pem [--ca-index N] \
//!     [--json '{"a":1}'] [--header 'K: V']...
//! cargo post -- http://host[:port]/path [--json '{"a":1}'] [--header 'K: V']...
//! ```
//!
//! To serve the demo on your network with the committed test-only PKI that the ESP32 firmware
//! pins (its first flash talks to this), until Ctrl-C:
//!
//! ```text
//! cargo post -- --serve 0.0.0.0:8443
//! ```
//!
//! `--ca FILE` is the certificate to pin: PEM (any number of blocks, text around them ignored,
//! exactly as `openssl s_client -showcerts` prints) or DER. `--ca-index N` picks the N-th
//! `CERTIFICATE` block (from 0). In `s_client` output block 0 is the server's own certificate,
//! which rawpost refuses (`PinnedIsLeaf`): pin the root CA named on the last block's `i:` line.
//! The request goes over a tokio `TcpStream` wrapped in `embedded_io_adapters::tokio_1::FromTokio`;
//! rawpost itself is `no_std` and takes any `embedded_io_async` stream.
//!
//! Exit status: 0 once a response has been read (whatever its status; the demo wants 200), 1
//! when connecting, the TLS handshake (the certificate check's explanation is printed) or the
//! exchange fails, 2 for bad arguments, including an unreadable or unusable `--ca` file.

#[path = "support/https_server.rs"]
mod https_server;
#[path = "support/tokio_timer.rs"]
mod tokio_timer;
#[path = "support/wire_trace.rs"]
mod wire_trace;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{Read, Write};
use https_server::{HttpsServer, RootKey, HOST};
use rand_core::OsRng;
use rawpost::tls::{
    pem_certificate_count, OpenError, PinnedProvider, TimeSource, TimeUsed, TrustAnchor,
};
use rawpost::{Connection, Host, Request, Response, Timeouts, Timer};
use tokio::net::TcpStream;
use tokio_timer::TokioTimer;

/// How long connecting and the TLS handshake may take (rawpost's own deadlines,
/// `Timeouts::default()`, bound the HTTP exchange).
const TIMEOUT: Duration = Duration::from_secs(10);

/// embedded-tls's buffers: the read buffer must hold a whole 16 KiB TLS record.
const TLS_READ: usize = 16_640;
const TLS_WRITE: usize = 4096;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    wire_trace::install();
    let result = if args.is_empty() {
        demo().await
    } else if args[0] == "--serve" {
        match args.as_slice() {
            [_, addr] => serve(addr).await,
            _ => Err(Failure::Usage(
                "--serve needs an address, e.g. 0.0.0.0:8443".into(),
            )),
        }
    } else if args[0] == "--make-test-pki" {
        match args.as_slice() {
            [_, dir] => https_server::write_test_pki(std::path::Path::new(dir)).map_err(failed),
            _ => Err(Failure::Usage("--make-test-pki needs a directory".into())),
        }
    } else {
        match Target::parse(&args) {
            Ok(target) => post(&target).await,
            Err(message) => Err(Failure::Usage(message)),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}\n(run with --help for usage)");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
usage: cargo post
       cargo post -- https://host[:port]/path --ca FILE [--ca-index N] [OPTIONS]
       cargo post -- http://host[:port]/path [OPTIONS]
       cargo post -- --serve ADDR
       cargo post -- --make-test-pki DIR

--serve ADDR: the demo server with the committed TEST-ONLY PKI (the root the ESP32 firmware
pins, examples/esp32-common/root-ca.pem) on ADDR, e.g. 0.0.0.0:8443, until interrupted.
--make-test-pki DIR: writes a new test PKI (root-ca.pem, test-pki/) into DIR.

With no arguments: the demo (an in-process HTTPS server; a JSON POST to it, root CA pinned).
  --ca FILE          the CA certificate to pin, PEM or DER (required for https://)
  --ca-index N       pin the N-th CERTIFICATE block of FILE, from 0 (default 0). In
                     `openssl s_client -showcerts` output block 0 is the server's own
                     certificate, which is refused: pin the root CA that issued the chain
  --json '<json>'    the request body (default: {}), sent as application/json
  --header 'K: V'    an extra request header (repeatable; -H for short)
Exit status: 0 when a response was read, 1 when the connection, the TLS handshake or the
exchange failed, 2 for bad arguments or an unusable --ca file.";

/// Why the example stopped.
enum Failure {
    /// Bad arguments: exit status 2.
    Usage(String),
    /// Connecting, the handshake or the exchange failed: exit status 1.
    Failed(String),
}

fn failed(message: impl Into<String>) -> Failure {
    Failure::Failed(message.into())
}

/// A rawpost error, with its variant name (e.g. `TruncatedBody`).
fn rawpost_failed<E: std::fmt::Debug>(e: rawpost::Error<E>) -> Failure {
    failed(format!("{e} ({})", e.name()))
}

/// Runs `step`, failing if it takes longer than [`TIMEOUT`].
async fn within<T>(what: &str, step: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(TIMEOUT, step)
        .await
        .map_err(|_| failed(format!("{what}: no answer within {TIMEOUT:?}")))
}

/// The wall clock in Unix seconds: the verifier's clock hook, so validity dates are checked.
/// (On a device: SNTP or an RTC; `None` until synced.)
fn unix_now() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

// -------------------------------------------------------------------------------------------
// The demo
// -------------------------------------------------------------------------------------------

/// What the device asks for. Serialized by serde-json-core, no allocation.
#[derive(serde::Serialize)]
struct TokenRequest<'a> {
    grant_type: &'a str,
    scope: &'a str,
    device: &'a str,
}

/// `sensor-17:demo-secret`, as HTTP Basic credentials (the trace shows `<redacted>`).
const CREDENTIALS: &str = "Basic c2Vuc29yLTE3OmRlbW8tc2VjcmV0";

async fn demo() -> Result<(), Failure> {
    let server = https_server::start(RootKey::P256)
        .await
        .map_err(|e| failed(format!("cannot start the demo server: {e}")))?;
    let port = server.addr.port();

    print_intro(&server);

    // The pin: the root, from its PEM text, decoded into a buffer (no allocation).
    let mut pem_buf = [0u8; 2048];
    let anchor = TrustAnchor::from_pem(server.root.pem.as_bytes(), &mut pem_buf)
        .map_err(|e| failed(format!("the demo root does not load: {e}")))?;
    println!();
    println!(
        "2. The pin: the ROOT, {:?} ({} bytes of DER from its PEM).",
        server.root.name,
        anchor.der().len()
    );
    println!("   Not the leaf: it is the server's own certificate, renewed every few months, and");
    println!("   rawpost refuses it (PinnedIsLeaf). The intermediate would work but rotates every");
    println!(
        "   few years. The root lives for decades and every chain the server sends leads to it."
    );
    println!("   A clock is set, so validity dates are checked too.");
    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now));

    // One host value: the TLS server name (SNI) and the `Host` header.
    let host = Host::new(HOST);
    println!();
    println!("3. One host value: Host::new({HOST:?}) is both the TLS server name (SNI) and");
    println!("   the Host header, so they cannot disagree (no 421).");

    println!();
    println!("4. TCP to 127.0.0.1:{port}, then the TLS 1.3 handshake (embedded-tls)...");
    let tcp = within("connecting", TcpStream::connect(server.addr))
        .await?
        .map_err(|e| failed(format!("cannot connect to {}: {e}", server.addr)))?;
    let mut tls_read = vec![0u8; TLS_READ];
    let mut tls_write = vec![0u8; TLS_WRITE];
    let mut http_buf = [0u8; 2048];
    let opened = within(
        "the TLS handshake",
        rawpost::tls::connect(
            FromTokio::new(tcp),
            &mut tls_read,
            &mut tls_write,
            host,
            &mut provider,
            &mut http_buf,
        ),
    )
    .await?;
    let conn = opened.map_err(handshake_failed)?;
    println!("   ok: the chain leads to the pinned root, the leaf names {HOST}, the server");
    println!(
        "   proved it holds the leaf's key; dates checked against the clock: {}.",
        yes_no(matches!(provider.last_time(), Some(TimeUsed::Clock(_))))
    );
    // rawpost's deadlines (first byte 10 s, idle 5 s, exchange 30 s), here on tokio's clock.
    let mut conn = conn.timed(TokioTimer::new(), Timeouts::default());

    let token_request = TokenRequest {
        grant_type: "client_credentials",
        scope: "telemetry:write",
        device: "esp32-c3/sensor-17",
    };
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "rawpost-demo/0.1"),
        ("Authorization", CREDENTIALS),
    ];
    let request = Request::post("/oauth/token").with_headers(&headers);
    println!();
    println!("5. The POST, its JSON serialized straight into rawpost's 2048-byte buffer. The wire");
    println!("   trace (feature `wire-trace`, through `log`) shows both heads:");
    if !wire_trace::compiled_in() {
        println!("     (off in this build: add `--features wire-trace,log`)");
    }
    let mut response = conn
        .send_with(&request, |buf| {
            serde_json_core::to_slice(&token_request, buf)
        })
        .await
        .map_err(rawpost_failed)?;
    let body = read_body(&mut response).await.map_err(rawpost_failed)?;
    println!();
    println!("6. The response, through rawpost's API:");
    print_response(&response, &body);
    let mut sent = [0u8; 256];
    let sent_len = serde_json_core::to_slice(&token_request, &mut sent)
        .map_err(|e| failed(format!("serializing: {e}")))?;
    let echoed = body
        .strip_prefix(br#"{"received":"#)
        .is_some_and(|rest| rest.starts_with(&sent[..sent_len]));
    println!(
        "   The server received our JSON byte for byte: {}.",
        yes_no(echoed)
    );

    // The same TLS session carries the next request: no second handshake on the device.
    wire_trace::set(false);
    let again = Request::post("/oauth/token")
        .with_headers(&headers)
        .with_body(br#"{"grant_type":"client_credentials","scope":"telemetry:read"}"#);
    let mut second = conn.send(&again).await.map_err(rawpost_failed)?;
    let status = second.status();
    let second_body = read_body(&mut second).await.map_err(rawpost_failed)?;
    wire_trace::set(true);
    println!();
    println!(
        "7. A second POST over the same TLS session: {status}, token {}.",
        token_in(&second_body)
    );
    println!(
        "   TLS sessions the server accepted: {}; requests it answered: {}.",
        server.sessions(),
        server.requests()
    );
    // Close the session properly (close_notify), then the socket.
    let _ = conn.into_inner().close().await;

    // The mistake from the story: pinning the first certificate `s_client` shows.
    show_leaf_pin(&server).await?;
    println!();
    println!("Your own server:");
    println!("  cargo post -- https://host/path --ca root.pem --json '{{...}}'");

    if echoed && status == 200 {
        Ok(())
    } else {
        Err(failed("the demo server did not answer as expected"))
    }
}

/// `--serve ADDR`: the demo server with the committed test PKI, for the ESP32 firmware's
/// first run (it pins `examples/esp32-common/root-ca.pem`), until interrupted.
async fn serve(addr: &str) -> Result<(), Failure> {
    let server = https_server::start_committed(addr, true)
        .await
        .map_err(|e| failed(format!("cannot serve on {addr}: {e}")))?;
    let port = server.addr.port();
    println!(
        "Serving https://{HOST}:{port}/post and /oauth/token on {}",
        server.addr
    );
    println!("with the committed TEST-ONLY PKI (its server key is public: never pin this root in");
    println!("production). The firmware pins examples/esp32-common/root-ca.pem, the root of it.");
    println!();
    println!("Flash the firmware pointed at this computer (its LAN address, e.g. 192.168.1.23):");
    println!("  cd examples/esp32c3");
    let port_var = if port == 8443 {
        String::new()
    } else {
        format!("RAWPOST_PORT={port} ")
    };
    println!("  RAWPOST_WIFI_SSID=... RAWPOST_WIFI_PASSWORD=... RAWPOST_ADDRESS=192.168.1.23 \\");
    println!("  {port_var}cargo run --release");
    println!("It connects to that address, with {HOST} as the TLS server name and Host header.");
    println!("Requests appear below; Ctrl-C stops.");
    println!();
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| failed(format!("waiting for Ctrl-C: {e}")))?;
    println!(
        "{} TLS sessions, {} requests.",
        server.sessions(),
        server.requests()
    );
    Ok(())
}

/// Step 1: the story and the server's certificates.
fn print_intro(server: &HttpsServer) {
    let port = server.addr.port();
    println!("rawpost demo: JSON over TLS to a Cloudflare-like service, root CA pinned");
    println!("=========================================================================");
    println!("An ESP32 had to POST JSON to a Cloudflare-fronted API. The service never saw the");
    println!("request, and four days went by. This is the same exchange done right, on loopback.");
    println!();
    println!("1. The service: https://{HOST}/oauth/token, played by a server on 127.0.0.1:{port}.");
    println!("   TLS 1.3 only; no SNI, no handshake; 421 when Host differs from SNI; JSON only.");
    println!("   Its certificates were generated a moment ago:");
    println!(
        "     root          {:<28} {}, kept by the CA: never sent",
        quoted(&server.root.name),
        RootKey::P256.label()
    );
    println!(
        "     intermediate  {:<28} sent by the server",
        quoted(&server.intermediate.name)
    );
    println!(
        "     leaf          {:<28} sent by the server: its own certificate",
        quoted(&server.leaf.name)
    );
}

/// Step 8: the same connection with the leaf pinned, and what rawpost says about it.
async fn show_leaf_pin(server: &HttpsServer) -> Result<(), Failure> {
    println!();
    println!("8. Had we pinned the leaf (the first block `openssl s_client -showcerts` prints):");
    let mut leaf_buf = [0u8; 2048];
    let leaf = TrustAnchor::from_pem(server.leaf.pem.as_bytes(), &mut leaf_buf)
        .map_err(|e| failed(format!("the demo leaf does not load: {e}")))?;
    let mut wrong = PinnedProvider::new(OsRng, leaf, TimeSource::clock(unix_now));
    let tcp = within("connecting", TcpStream::connect(server.addr))
        .await?
        .map_err(|e| failed(format!("cannot connect to {}: {e}", server.addr)))?;
    let mut tls_read = vec![0u8; TLS_READ];
    let mut tls_write = vec![0u8; TLS_WRITE];
    let mut http_buf = [0u8; 512];
    let refused = within(
        "the TLS handshake",
        rawpost::tls::connect(
            FromTokio::new(tcp),
            &mut tls_read,
            &mut tls_write,
            Host::new(HOST),
            &mut wrong,
            &mut http_buf,
        ),
    )
    .await?;
    match refused {
        Err(e) => print_wrapped(&format!("refused ({:?}): {e}", e.cert_error()), "   "),
        Ok(_) => return Err(failed("the leaf pin was accepted")),
    }
    Ok(())
}

/// Prints `text` in lines of at most 90 columns, each starting with `indent`.
fn print_wrapped(text: &str, indent: &str) {
    let mut line = String::from(indent);
    for word in text.split(' ') {
        if line.len() > indent.len() && line.len() + 1 + word.len() > 90 {
            println!("{line}");
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    println!("{line}");
}

fn quoted(name: &str) -> String {
    format!("{name:?}")
}

fn yes_no(yes: bool) -> &'static str {
    if yes {
        "yes"
    } else {
        "no"
    }
}

/// The `access_token` value in the demo server's answer.
fn token_in(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split(r#""access_token":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("(none)")
        .to_owned()
}

/// Why the handshake failed: rawpost's explanation names the certificates involved, or says
/// what the server must offer.
fn handshake_failed(e: OpenError) -> Failure {
    failed(e.to_string())
}

// -------------------------------------------------------------------------------------------
// The exchange, over any stream
// -------------------------------------------------------------------------------------------

/// Reads a body to its end in pieces, whatever its size or framing.
async fn read_body<R: Read>(body: &mut R) -> Result<Vec<u8>, R::Error> {
    let mut all = Vec::new();
    let mut piece = [0u8; 1024];
    loop {
        match body.read(&mut piece).await? {
            0 => return Ok(all),
            n => all.extend_from_slice(&piece[..n]),
        }
    }
}

fn print_response<S, T>(response: &Response<'_, '_, S, T>, body: &[u8]) {
    println!(
        "   status   {} {} (HTTP/1.{})",
        response.status(),
        response.reason(),
        response.minor_version()
    );
    for (i, field) in response.headers().enumerate() {
        // Credentials stay hidden here too, as in the wire trace.
        let secret = rawpost::trace::is_redacted(field.name);
        let value = if secret {
            "<redacted>".into()
        } else {
            String::from_utf8_lossy(field.value)
        };
        let label = if i == 0 { "headers" } else { "" };
        println!("   {label:<8} {}: {value}", field.name);
    }
    println!("   body     {} bytes:", body.len());
    for line in String::from_utf8_lossy(body).lines() {
        println!("            {line}");
    }
}

/// POSTs `target.json` over `conn` and prints the response.
async fn exchange<S, T>(conn: &mut Connection<'_, S, T>, target: &Target) -> Result<(), Failure>
where
    S: Read + Write,
    S::Error: std::fmt::Debug,
    T: Timer,
{
    // Our headers, in order. rawpost adds `Host` first and `Content-Length` last, nothing else.
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if !target
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type", "application/json"));
    }
    headers.extend(target.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let request = Request::post(&target.path)
        .with_headers(&headers)
        .with_body(target.json.as_bytes());
    if wire_trace::compiled_in() {
        println!("wire trace:");
    }
    let mut response = conn.send(&request).await.map_err(rawpost_failed)?;
    let body = read_body(&mut response).await.map_err(rawpost_failed)?;
    println!();
    print_response(&response, &body);
    Ok(())
}

/// POSTs to the URL given on the command line.
async fn post(target: &Target) -> Result<(), Failure> {
    // Load the pin first: a bad --ca file is an argument error, found before any connection.
    let ca = match &target.ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| Failure::Usage(format!("cannot read --ca {path}: {e}")))?,
        ),
        None => None,
    };
    let mut ca_buf = vec![0u8; 8192];
    let anchor = match &ca {
        Some(bytes) => Some(load_anchor(bytes, target, &mut ca_buf)?),
        None => None,
    };

    let address = target.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = within("connecting", TcpStream::connect((address, target.port)))
        .await?
        .map_err(|e| {
            failed(format!(
                "cannot connect to {}:{}: {e}",
                target.host, target.port
            ))
        })?;
    let stream = FromTokio::new(tcp);

    // The `Host` header leaves the scheme's default port out; SNI never has a port.
    let default_port = if target.https { 443 } else { 80 };
    let host = if target.port == default_port {
        Host::new(&target.host)
    } else {
        Host::new(&target.host).with_port(target.port)
    };
    let mut http_buf = vec![0u8; 4096];

    let Some(anchor) = anchor else {
        println!(
            "POST http://{}:{}{} in cleartext\n",
            target.host, target.port, target.path
        );
        let mut conn = Connection::new(stream, &mut http_buf, host)
            .timed(TokioTimer::new(), Timeouts::default());
        return exchange(&mut conn, target).await;
    };

    let mut provider = PinnedProvider::new(OsRng, anchor, TimeSource::clock(unix_now));
    let mut tls_read = vec![0u8; TLS_READ];
    let mut tls_write = vec![0u8; TLS_WRITE];
    let opened = within(
        "the TLS handshake",
        rawpost::tls::connect(
            stream,
            &mut tls_read,
            &mut tls_write,
            host,
            &mut provider,
            &mut http_buf,
        ),
    )
    .await?;
    let conn = opened.map_err(handshake_failed)?;
    println!(
        "TLS 1.3 with {}: chain verified up to the pinned certificate, dates checked: {}\n",
        host.name(),
        yes_no(matches!(provider.last_time(), Some(TimeUsed::Clock(_))))
    );
    let mut conn = conn.timed(TokioTimer::new(), Timeouts::default());
    exchange(&mut conn, target).await?;
    let _ = conn.into_inner().close().await;
    Ok(())
}

/// The pinned certificate from `--ca` (PEM, or DER when the file has no PEM block).
fn load_anchor<'a>(
    bytes: &'a [u8],
    target: &Target,
    buf: &'a mut [u8],
) -> Result<TrustAnchor<'a>, Failure> {
    let path = target.ca.as_deref().unwrap_or("");
    let blocks = pem_certificate_count(bytes);
    let unusable = |e: rawpost::tls::CertError| Failure::Usage(format!("--ca {path}: {e}"));
    if blocks == 0 {
        return TrustAnchor::from_der(bytes).map_err(|_| {
            Failure::Usage(format!(
                "--ca {path}: neither a PEM certificate (-----BEGIN CERTIFICATE-----) nor DER"
            ))
        });
    }
    let index = target.ca_index.unwrap_or(0);
    if index >= blocks {
        return Err(Failure::Usage(format!(
            "--ca-index {index}: {path} holds {blocks} certificate(s), numbered from 0"
        )));
    }
    if blocks > 1 {
        println!("pinning certificate block {index} of the {blocks} in {path}");
    }
    TrustAnchor::from_pem_nth(bytes, index, buf).map_err(unusable)
}

// -------------------------------------------------------------------------------------------
// Command line
// -------------------------------------------------------------------------------------------

/// What to POST, and where.
struct Target {
    https: bool,
    /// The host as written in the URL (brackets kept for IPv6).
    host: String,
    port: u16,
    path: String,
    headers: Vec<(String, String)>,
    json: String,
    ca: Option<String>,
    ca_index: Option<usize>,
}

impl Target {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut url = None;
        let mut json = None;
        let mut ca = None;
        let mut ca_index = None;
        let mut headers = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |what: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} needs {what}"))
            };
            match arg.as_str() {
                "--json" => json = Some(value("a value, e.g. '{\"a\":1}'")?),
                "--ca" => ca = Some(value("a file name")?),
                "--ca-index" => {
                    let n = value("a number")?;
                    let n = n
                        .parse::<usize>()
                        .map_err(|_| format!("--ca-index {n:?} is not a number"))?;
                    ca_index = Some(n);
                }
                "--header" | "-H" => {
                    let header = value("a value, e.g. 'K: V'")?;
                    let (name, value) = header
                        .split_once(':')
                        .ok_or_else(|| format!("header {header:?} has no ':' (expected 'K: V')"))?;
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                _ if url.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => url = Some(arg.clone()),
            }
        }
        let url = url.ok_or("missing the URL")?;
        let (https, host, port, path) = parse_url(&url)?;
        if https && ca.is_none() {
            return Err(
                "https:// needs --ca FILE, the CA certificate to pin (PEM or DER); see \
                 \"Which certificate do I pin?\" in the README"
                    .to_owned(),
            );
        }
        if !https && (ca.is_some() || ca_index.is_some()) {
            return Err("--ca and --ca-index are for https:// URLs".to_owned());
        }
        if ca_index.is_some() && ca.is_none() {
            return Err("--ca-index needs --ca".to_owned());
        }
        Ok(Self {
            https,
            host,
            port,
            path,
            headers,
            json: json.unwrap_or_else(|| "{}".to_owned()),
            ca,
            ca_index,
        })
    }
}

/// Splits `http[s]://host[:port]/path?query` into (https, host, port, path).
fn parse_url(url: &str) -> Result<(bool, String, u16, String), String> {
    let lower = url.to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, &url["https://".len()..])
    } else if lower.starts_with("http://") {
        (false, &url["http://".len()..])
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = path.split('#').next().unwrap_or("/").to_owned();
    if authority.contains('@') {
        return Err("user:password@ in the URL is not supported (use --header)".to_owned());
    }
    // `[v6]:port`, `[v6]`, `name:port` or `name`.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in {url:?}"))?,
    };
    Ok((https, host.to_owned(), port, path))
}
