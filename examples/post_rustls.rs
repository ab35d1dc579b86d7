//! The `cargo post` demo over rustls instead of embedded-tls: the same rawpost `Connection`,
//! over a rustls 0.23 client session (TLS 1.3 or TLS 1.2), the root pinned through rustls's own
//! verifier.
//!
//! ```text
//! cargo post-rustls
//! cargo post-rustls -- https://host[:port]/path --ca root.pem [--ca-index N] \
//!     [--json '{"a":1}'] [--header 'K: V']... [--tls12 | --tls13]
//! ```
//!
//! (`cargo post-rustls` is an alias, in `.cargo/config.toml`, for `cargo run --example
//! post-rustls` with features `embedded-tls,wire-trace,log`: the wire trace, and rawpost's
//! explanation of a refused chain. Without features the example runs as well, without either.)
//!
//! With no arguments it starts the demo server of `cargo post` (examples/support/https_server.rs:
//! a Cloudflare-like token endpoint, SNI required, 421 when `Host` differs from SNI) twice, once
//! speaking TLS 1.3 only and once TLS 1.2 only, and against each: pins the root from its PEM in a
//! `RootCertStore` holding only it (rustls's `WebPkiServerVerifier`), opens a session whose SNI
//! is `Host::name()`, POSTs JSON, checks the echo, POSTs again on the same session, and prints
//! the TLS version negotiated. Then it pins the leaf instead, shows rustls's refusal and
//! rawpost's explanation of the same chain.
//!
//! The adapter is examples/support/rustls_stream.rs; docs/rustls.md explains it.
//!
//! Exit status: 0 when every exchange succeeded (with a URL: a response was read), 1 when
//! connecting, the handshake or an exchange failed, 2 for bad arguments or an unusable `--ca`.

#[path = "support/https_server.rs"]
mod https_server;
#[path = "support/rustls_stream.rs"]
mod rustls_stream;
#[path = "support/tokio_timer.rs"]
mod tokio_timer;
#[path = "support/wire_trace.rs"]
mod wire_trace;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use embedded_io_async::{Read, Write};
use https_server::{HttpsServer, RootKey, Versions, HOST};
use rawpost::{Connection, Host, Request, Timeouts, Timer};
use rustls::SupportedProtocolVersion;
use rustls_stream::{PinnedCa, RustlsStream, ALL_VERSIONS};
use tokio_timer::TokioTimer;

/// How long connecting and the handshake may take (rawpost's deadlines bound the exchanges).
const TIMEOUT: Duration = Duration::from_secs(10);

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
usage: cargo post-rustls
       cargo post-rustls -- https://host[:port]/path --ca FILE [--ca-index N] [OPTIONS]

With no arguments: the demo server of `cargo post`, speaking TLS 1.3 only and then TLS 1.2
only; a JSON POST and a second one on the same session to each, over rustls, root pinned.
  --ca FILE          the CA certificate to pin, PEM (required)
  --ca-index N       pin the N-th CERTIFICATE block of FILE, from 0 (default 0)
  --json '<json>'    the request body (default: {}), sent as application/json
  --header 'K: V'    an extra request header (repeatable; -H for short)
  --tls12, --tls13   offer only this TLS version (default: both)
Exit status: 0 when a response was read, 1 when the connection, the handshake or the
exchange failed, 2 for bad arguments or an unusable --ca file.";

enum Failure {
    Usage(String),
    Failed(String),
}

fn failed(message: impl Into<String>) -> Failure {
    Failure::Failed(message.into())
}

async fn within<T>(what: &str, step: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(TIMEOUT, step)
        .await
        .map_err(|_| failed(format!("{what}: no answer within {TIMEOUT:?}")))
}

/// Why a handshake failed: rustls's reason and, with the `embedded-tls` feature, rawpost's
/// explanation of the chain rustls refused.
fn handshake_failed(e: std::io::Error, pin: &PinnedCa, host: Host<'_>) -> Failure {
    let mut message = format!("TLS handshake failed (rustls): {e}");
    if let Some(refused) = pin.verifier.take_refused() {
        message.push_str(&format!("\n  {}", explanation(pin, host, &refused)));
    }
    failed(message)
}

/// rawpost's explanation of a chain rustls refused.
#[cfg(feature = "embedded-tls")]
fn explanation(pin: &PinnedCa, host: Host<'_>, refused: &rustls_stream::Refused) -> String {
    match rustls_stream::explain(pin, host, refused) {
        Err(e) => format!("rawpost's verifier on the same chain: {e}"),
        Ok(()) => "rawpost's verifier accepts this chain; rustls's reason is above".to_owned(),
    }
}

#[cfg(not(feature = "embedded-tls"))]
fn explanation(_: &PinnedCa, _: Host<'_>, refused: &rustls_stream::Refused) -> String {
    format!(
        "the server sent {} certificate(s); build with --features embedded-tls for rawpost's \
         explanation",
        refused.chain.len()
    )
}

// -------------------------------------------------------------------------------------------
// The demo
// -------------------------------------------------------------------------------------------

async fn demo() -> Result<(), Failure> {
    println!(
        "rawpost over rustls: the `cargo post` demo, the same Connection on another TLS stack"
    );
    let mut ok = true;
    for versions in [Versions::Tls13Only, Versions::Tls12Only] {
        let server = https_server::start_versions(RootKey::P256, versions)
            .await
            .map_err(|e| failed(format!("cannot start the demo server: {e}")))?;
        ok &= demo_against(&server, versions).await?;
    }
    show_leaf_pin().await?;
    if ok {
        Ok(())
    } else {
        Err(failed("the demo server did not answer as expected"))
    }
}

/// Two POSTs over one rustls session to `server`; whether both echoes were exact.
async fn demo_against(server: &HttpsServer, versions: Versions) -> Result<bool, Failure> {
    println!();
    println!(
        "== demo server on {} speaking {versions:?} (chain: leaf {HOST:?} <- {:?} <- root {:?})",
        server.addr, server.intermediate.name, server.root.name
    );
    // The pin: the root's PEM, alone in a RootCertStore, checked by rustls's webpki verifier.
    // The client offers both versions; the server decides.
    let pin = PinnedCa::from_pem(server.root.pem.as_bytes(), 0, ALL_VERSIONS)
        .map_err(|e| failed(format!("the demo root does not load: {e}")))?;
    let host = Host::new(HOST);
    let opened = within(
        "the TLS handshake",
        rustls_stream::connect_tcp(server.addr, host, &pin),
    )
    .await?;
    let tls = opened.map_err(|e| handshake_failed(e, &pin, host))?;
    println!(
        "   negotiated {} ({}); SNI {:?}, the Host header's name; chain verified by rustls",
        version(&tls),
        tls.cipher_suite()
            .map_or("(none)".to_owned(), |s| format!("{:?}", s.suite())),
        host.name()
    );
    let mut http_buf = [0u8; 2048];
    let mut conn =
        Connection::new(tls, &mut http_buf, host).timed(TokioTimer::new(), Timeouts::default());

    let first = br#"{"grant_type":"client_credentials","scope":"telemetry:write"}"#;
    let (status, body) = exchange(&mut conn, "/oauth/token", &[], first).await?;
    let echoed = echoes(&body, first);
    println!(
        "   POST 1: {status}, the server received our JSON byte for byte: {}",
        yes_no(echoed)
    );
    wire_trace::set(false);
    let second = br#"{"grant_type":"client_credentials","scope":"telemetry:read"}"#;
    let (status2, body2) = exchange(&mut conn, "/oauth/token", &[], second).await?;
    wire_trace::set(true);
    let echoed2 = echoes(&body2, second);
    println!(
        "   POST 2 on the same session: {status2}, echo exact: {}; TLS sessions the server \
         accepted: {}, requests answered: {}",
        yes_no(echoed2),
        server.sessions(),
        server.requests()
    );
    // close_notify, then the socket.
    let _ = conn.into_inner().close().await;
    Ok(echoed && echoed2 && status == 200 && status2 == 200 && server.sessions() == 1)
}

/// The mistake of the ESP32 story, pinning the leaf, as rustls and rawpost see it.
async fn show_leaf_pin() -> Result<(), Failure> {
    let server = https_server::start(RootKey::P256)
        .await
        .map_err(|e| failed(format!("cannot start the demo server: {e}")))?;
    println!();
    println!("== had we pinned the leaf (the first block `openssl s_client -showcerts` prints):");
    let pin = PinnedCa::from_pem(server.leaf.pem.as_bytes(), 0, ALL_VERSIONS)
        .map_err(|e| failed(format!("the demo leaf does not load: {e}")))?;
    let host = Host::new(HOST);
    match within(
        "the TLS handshake",
        rustls_stream::connect_tcp(server.addr, host, &pin),
    )
    .await?
    {
        Ok(_) => Err(failed("the leaf pin was accepted")),
        Err(e) => {
            println!("   rustls refuses: {e}");
            match pin.verifier.take_refused() {
                Some(refused) => println!("   {}", explanation(&pin, host, &refused)),
                None => return Err(failed("the verifier noted no refused chain")),
            }
            Ok(())
        }
    }
}

/// The TLS version negotiated, as people write it.
fn version(tls: &RustlsStream) -> String {
    match tls.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

fn echoes(body: &[u8], sent: &[u8]) -> bool {
    body.strip_prefix(br#"{"received":"#)
        .is_some_and(|rest| rest.starts_with(sent))
}

fn yes_no(yes: bool) -> &'static str {
    if yes {
        "yes"
    } else {
        "no"
    }
}

// -------------------------------------------------------------------------------------------
// rawpost's part: the same on every stack
// -------------------------------------------------------------------------------------------

/// POSTs `json` to `path` and returns the status and the body. This and `Connection::new`
/// above are the only places the example uses rawpost's API.
async fn exchange<S, T>(
    conn: &mut Connection<'_, S, T>,
    path: &str,
    extra: &[(&str, &str)],
    json: &[u8],
) -> Result<(u16, Vec<u8>), Failure>
where
    S: Read + Write,
    S::Error: std::fmt::Debug,
    T: Timer,
{
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    let request = Request::post(path).with_headers(&headers).with_body(json);
    let fail = |e: rawpost::Error<S::Error>| failed(format!("{e} ({})", e.name()));
    let mut response = conn.send(&request).await.map_err(fail)?;
    let status = response.status();
    let mut body = Vec::new();
    let mut piece = [0u8; 1024];
    loop {
        match response.read(&mut piece).await.map_err(fail)? {
            0 => break,
            n => body.extend_from_slice(&piece[..n]),
        }
    }
    Ok((status, body))
}

// -------------------------------------------------------------------------------------------
// A server of your choice
// -------------------------------------------------------------------------------------------

struct Target {
    host: String,
    port: u16,
    path: String,
    headers: Vec<(String, String)>,
    json: String,
    ca: String,
    ca_index: usize,
    versions: &'static [&'static SupportedProtocolVersion],
}

impl Target {
    fn parse(args: &[String]) -> Result<Self, String> {
        let (mut url, mut json, mut ca, mut ca_index) = (None, None, None, 0);
        let mut headers = Vec::new();
        let mut versions = ALL_VERSIONS;
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
                    ca_index = n
                        .parse()
                        .map_err(|_| format!("--ca-index {n:?} is not a number"))?;
                }
                "--header" | "-H" => {
                    let header = value("a value, e.g. 'K: V'")?;
                    let (k, v) = header
                        .split_once(':')
                        .ok_or_else(|| format!("header {header:?} has no ':'"))?;
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                "--tls12" => versions = rustls_stream::TLS12_ONLY,
                "--tls13" => versions = rustls_stream::TLS13_ONLY,
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                _ if url.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => url = Some(arg.clone()),
            }
        }
        let url = url.ok_or("missing the URL")?;
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{url:?} is not an https:// URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => {
                let p = &authority[i + 1..];
                let port = p.parse().map_err(|_| format!("invalid port {p:?}"))?;
                (&authority[..i], port)
            }
            _ => (authority, 443),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
            headers,
            json: json.unwrap_or_else(|| "{}".to_owned()),
            ca: ca.ok_or("https:// needs --ca FILE, the CA certificate to pin (PEM)")?,
            ca_index,
            versions,
        })
    }
}

async fn post(target: &Target) -> Result<(), Failure> {
    let pem = std::fs::read(&target.ca)
        .map_err(|e| Failure::Usage(format!("cannot read --ca {}: {e}", target.ca)))?;
    let pin = PinnedCa::from_pem(&pem, target.ca_index, target.versions)
        .map_err(|e| Failure::Usage(format!("--ca {}: {e}", target.ca)))?;
    let host = match target.port {
        443 => Host::new(&target.host),
        port => Host::new(&target.host).with_port(port),
    };
    let address = target.host.trim_start_matches('[').trim_end_matches(']');
    let opened = within(
        "connecting and the TLS handshake",
        rustls_stream::connect_tcp((address, target.port), host, &pin),
    )
    .await?;
    let tls: RustlsStream = opened.map_err(|e| handshake_failed(e, &pin, host))?;
    println!(
        "{} with {}: chain verified by rustls up to the pinned certificate\n",
        version(&tls),
        host.name()
    );
    let mut http_buf = vec![0u8; 4096];
    let mut conn =
        Connection::new(tls, &mut http_buf, host).timed(TokioTimer::new(), Timeouts::default());
    let extra: Vec<(&str, &str)> = target
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, body) = exchange(&mut conn, &target.path, &extra, target.json.as_bytes()).await?;
    println!("\nstatus {status}, {} bytes of body:", body.len());
    println!("{}", String::from_utf8_lossy(&body));
    let _ = conn.into_inner().close().await;
    Ok(())
}
