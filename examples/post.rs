//! POST JSON with rawpost and see every byte that goes over the wire.
//!
//! ```text
//! cargo run --example post
//! ```
//!
//! With no arguments, the example starts a small auth server in-process (hyper, on a random
//! port of 127.0.0.1), POSTs a JSON token request to it through rawpost over a plain TCP
//! stream, and prints:
//!
//! 1. the exact bytes rawpost wrote: your headers, plus `Host` and `Content-Length`, nothing
//!    else;
//! 2. the status line and header fields of the response;
//! 3. the response body: the server echoes the JSON it received next to a token.
//!
//! The demo server answers `421 Misdirected Request` when the `Host` header is not the one it
//! expects and `415 Unsupported Media Type` without `Content-Type: application/json`.
//!
//! To POST to another server instead:
//!
//! ```text
//! cargo run --example post -- http://host[:port]/path --json '{"a":1}' [--header 'K: V']...
//! ```
//!
//! Only `http://` works for now: TLS is coming with the `embedded-tls` feature, and this example
//! refuses `https://` URLs rather than sending your request in cleartext.
//!
//! Exit status: 0 once a response has been read (whatever its status; the demo wants 200),
//! 1 when connecting or the exchange fails (rawpost's error is printed with its name, e.g.
//! `TruncatedBody`), 2 for bad arguments, `https://` included.
//!
//! rawpost itself is `no_std` and takes any `embedded_io_async` stream; here the stream is a
//! tokio `TcpStream` wrapped in `embedded_io_adapters::tokio_1::FromTokio`.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, Write};
use rawpost::{Connection, Host, Request};
use tokio::net::TcpStream;

/// How long each step (connecting, the response head, the body) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return demo().await;
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let target = match Target::parse(&args) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("error: {message}\n(run with --help for usage)");
            return ExitCode::from(2);
        }
    };
    match post(&target).await {
        Ok(_status) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
usage: cargo run --example post
       cargo run --example post -- http://host[:port]/path [--json '<json>'] [--header 'K: V']...

With no arguments, POSTs to an in-process demo server and prints the exchange.
  --json '<json>'      the request body (default: {}), sent as application/json
  --header 'K: V'      an extra request header (repeatable; -H for short)";

// -------------------------------------------------------------------------------------------
// The exchange: the part that uses rawpost
// -------------------------------------------------------------------------------------------

/// What to POST, and where.
struct Target {
    /// The host as written in the URL (brackets kept for IPv6), for the `Host` header.
    host: String,
    /// The port given in the URL, if any (the `Host` header leaves the default port out).
    port: Option<u16>,
    path: String,
    headers: Vec<(String, String)>,
    json: String,
}

/// POSTs `target.json` and prints the request bytes, the response head and the body. Returns
/// the response status.
async fn post(target: &Target) -> Result<u16, Failure> {
    let port = target.port.unwrap_or(80);
    let address = target.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = within(TIMEOUT, TcpStream::connect((address, port)))
        .await?
        .map_err(|e| Failure::Other(format!("cannot connect to {}:{port}: {e}", target.host)))?;

    // The stream rawpost writes to and reads from, with a copy of every byte it writes.
    let (stream, written) = Recording::new(FromTokio::new(tcp));

    // The host goes in the `Host` header (and, with TLS, would be the server name).
    let host = match target.port {
        Some(port) => Host::new(&target.host).with_port(port),
        None => Host::new(&target.host),
    };

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

    // One buffer for the request head and the response head; bodies stream through it.
    let mut buf = [0u8; 4096];
    let mut conn = Connection::new(stream, &mut buf, host);
    let request = Request::post(&target.path)
        .headers(&headers)
        .body(target.json.as_bytes());
    let sent = within(TIMEOUT, conn.send(&request)).await;

    // Whatever happened, show what went out.
    print_request(&written.borrow());
    let mut response = sent??;

    println!(
        "<-- HTTP/1.{} {} {}",
        response.minor_version(),
        response.status(),
        response.reason()
    );
    for field in response.headers() {
        println!(
            "    {}: {}",
            field.name,
            String::from_utf8_lossy(field.value)
        );
    }
    println!();

    let body = within(TIMEOUT, read_body(&mut response)).await??;
    println!("<-- body ({} bytes):", body.len());
    for line in String::from_utf8_lossy(&body).lines() {
        println!("    {line}");
    }
    Ok(response.status())
}

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

/// Runs `step`, failing if it takes longer than `limit`.
async fn within<T>(limit: Duration, step: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| Failure::Other(format!("no answer within {limit:?}")))
}

/// Prints the request as written: each line of the head with its CRLF made visible, then
/// the body.
fn print_request(bytes: &[u8]) {
    if bytes.is_empty() {
        println!("--> nothing was written\n");
        return;
    }
    println!("--> request: {} bytes written, exactly:", bytes.len());
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4);
    let (head, body) = bytes.split_at(head_end);
    for line in head.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        println!("    {}\\r\\n", escape(text));
    }
    if !body.is_empty() {
        println!("    {}", escape(body));
    }
    println!();
}

/// Text as is, other bytes as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b' '..=b'~' => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// A stream that passes everything through and keeps a copy of the bytes written.
struct Recording<S> {
    inner: S,
    written: Rc<RefCell<Vec<u8>>>,
}

impl<S> Recording<S> {
    /// The stream, and a handle to the bytes written through it.
    fn new(inner: S) -> (Self, Rc<RefCell<Vec<u8>>>) {
        let written = Rc::new(RefCell::new(Vec::new()));
        let stream = Self {
            inner,
            written: written.clone(),
        };
        (stream, written)
    }
}

impl<S: ErrorType> ErrorType for Recording<S> {
    type Error = S::Error;
}

impl<S: Read> Read for Recording<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        self.inner.read(buf).await
    }
}

impl<S: Write> Write for Recording<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        let n = self.inner.write(buf).await?;
        self.written.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), S::Error> {
        self.inner.flush().await
    }
}

/// Why the example failed.
enum Failure {
    /// rawpost's error: shown with its `Display` and its variant name.
    Rawpost(rawpost::Error<std::io::Error>),
    Other(String),
}

impl From<rawpost::Error<std::io::Error>> for Failure {
    fn from(e: rawpost::Error<std::io::Error>) -> Self {
        Self::Rawpost(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rawpost(e) => write!(f, "{e} ({})", e.name()),
            Self::Other(message) => f.write_str(message),
        }
    }
}

// -------------------------------------------------------------------------------------------
// Command line
// -------------------------------------------------------------------------------------------

impl Target {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut url = None;
        let mut json = None;
        let mut headers = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--json" => {
                    let value = args.next().ok_or("--json needs a value")?;
                    json = Some(value.clone());
                }
                "--header" | "-H" => {
                    let value = args.next().ok_or("--header needs a value, e.g. 'K: V'")?;
                    let (name, value) = value
                        .split_once(':')
                        .ok_or_else(|| format!("header {value:?} has no ':' (expected 'K: V')"))?;
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                _ if url.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => url = Some(arg.as_str()),
            }
        }
        let url = url.ok_or("missing the URL")?;
        let (host, port, path) = parse_url(url)?;
        Ok(Self {
            host,
            port,
            path,
            headers,
            json: json.unwrap_or_else(|| "{}".to_owned()),
        })
    }
}

/// Splits `http://host[:port]/path?query` into its parts.
fn parse_url(url: &str) -> Result<(String, Option<u16>, String), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(
            "https:// needs TLS, which is coming with rawpost's `embedded-tls` \
                    feature; this example speaks plain HTTP only and will not send the \
                    request in cleartext"
                .to_owned(),
        );
    }
    if !lower.starts_with("http://") {
        return Err(format!("{url:?} is not an http:// URL"));
    }
    let rest = &url["http://".len()..];
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = path.split('#').next().unwrap_or("/").to_owned();
    if authority.contains('@') {
        return Err("user:password@ in the URL is not supported".to_owned());
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
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} in {url:?}"))?,
        ),
    };
    Ok((host.to_owned(), port, path))
}

// -------------------------------------------------------------------------------------------
// The demo: an in-process auth server, then one POST to it
// -------------------------------------------------------------------------------------------

async fn demo() -> ExitCode {
    let port = match auth_server::start().await {
        Ok(port) => port,
        Err(e) => {
            eprintln!("error: cannot start the demo server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("rawpost demo: an auth server is listening on 127.0.0.1:{port}\n");

    let target = Target {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        path: "/oauth/token".to_owned(),
        headers: vec![
            ("User-Agent".to_owned(), "rawpost-demo/0.1".to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ],
        json: r#"{"grant_type":"client_credentials","client_id":"sensor-17"}"#.to_owned(),
    };
    match post(&target).await {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("error: the demo server answered {status}, expected 200");
            ExitCode::FAILURE
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// A tiny OAuth-like token endpoint, written with hyper.
mod auth_server {
    use super::*;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::header::{CONTENT_TYPE, HOST};
    use hyper::service::service_fn;
    use hyper::{Method, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    /// What the server accepts in the request body.
    #[derive(serde::Deserialize)]
    struct TokenRequest<'a> {
        grant_type: &'a str,
        #[allow(dead_code)]
        client_id: &'a str,
    }

    /// Binds to a random port of 127.0.0.1 and serves in the background; returns the port.
    pub async fn start() -> std::io::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = service_fn(move |req| handle(req, port));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Ok(port)
    }

    fn reply(status: StatusCode, json: String) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(json)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, "application/json".parse().unwrap());
        response
    }

    fn error(status: StatusCode, what: &str) -> hyper::Response<Full<Bytes>> {
        reply(status, format!(r#"{{"error":"{what}"}}"#))
    }

    async fn handle(
        req: hyper::Request<Incoming>,
        port: u16,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        if req.uri().path() != "/oauth/token" {
            return Ok(error(StatusCode::NOT_FOUND, "not_found"));
        }
        if req.method() != Method::POST {
            return Ok(error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
        }
        let expected_host = format!("127.0.0.1:{port}");
        if req.headers().get(HOST).map(|h| h.as_bytes()) != Some(expected_host.as_bytes()) {
            return Ok(error(StatusCode::MISDIRECTED_REQUEST, "wrong_host"));
        }
        if req.headers().get(CONTENT_TYPE).map(|h| h.as_bytes()) != Some(b"application/json") {
            return Ok(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected_json"));
        }
        let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
            return Ok(error(StatusCode::BAD_REQUEST, "unreadable_body"));
        };
        let Ok((token_request, _)) = serde_json_core::from_slice::<TokenRequest>(&body) else {
            return Ok(error(StatusCode::BAD_REQUEST, "invalid_request"));
        };
        if token_request.grant_type != "client_credentials" {
            return Ok(error(StatusCode::BAD_REQUEST, "unsupported_grant_type"));
        }
        // The body parsed as a JSON object, so it can be embedded as it is.
        let received = String::from_utf8_lossy(&body);
        Ok(reply(
            StatusCode::OK,
            format!(
                r#"{{"received":{received},"access_token":"demo-token-123","token_type":"Bearer","expires_in":3600}}"#
            ),
        ))
    }
}
