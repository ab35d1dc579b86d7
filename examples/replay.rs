//! What does rawpost make of this captured response?
//!
//! ```text
//! cargo run --example replay -- FILE [--head] [--read-size N]
//! ```
//!
//! Plays FILE's bytes as the server's entire side of one exchange (then EOF), after the client
//! has written a `POST /` (a `HEAD /` with `--head`), delivering at most N bytes per read
//! (default: as many as the client asks for). Prints exactly one JSON line:
//!
//! ```text
//! {"ok":true,"status":200,"reason":"OK","version":"1.1","headers":[["Content-Type","application/json"]],"body_b64":"…","trailers":[],"reusable":false}
//! {"ok":false,"error":"TruncatedBody","message":"the connection closed before the response body was complete"}
//! ```
//!
//! Exit status 0 in both cases; 2 for usage errors. The client's buffer is 16 KiB.

use std::process::ExitCode;

use embedded_io_async::Read;
use rawpost::{Connection, Host, Request};

const USAGE: &str = "usage: replay FILE [--head] [--read-size N]";

/// The server's side: the file's bytes, at most `max` per read, then EOF. Writes are accepted
/// and dropped.
struct Replay {
    bytes: Vec<u8>,
    pos: usize,
    max: usize,
}

impl embedded_io_async::ErrorType for Replay {
    type Error = core::convert::Infallible;
}

impl embedded_io_async::Read for Replay {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.max).min(self.bytes.len() - self.pos);
        buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io_async::Write for Replay {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct Args {
    file: String,
    head: bool,
    read_size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut file = None;
    let mut head = false;
    let mut read_size = usize::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--head" => head = true,
            "--read-size" => {
                let v = args.next().ok_or("--read-size needs a value")?;
                read_size = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--read-size must be a positive integer, not {v:?}")),
                };
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => {
                if file.replace(s.to_string()).is_some() {
                    return Err("only one FILE".into());
                }
            }
        }
    }
    Ok(Args {
        file: file.ok_or("FILE is missing")?,
        head,
        read_size,
    })
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_fields<'a>(fields: impl Iterator<Item = rawpost::Header<'a>>) -> String {
    let items: Vec<String> = fields
        .map(|h| {
            format!(
                "[{},{}]",
                json_str(h.name),
                json_str(&String::from_utf8_lossy(h.value))
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn replay(stream: Replay, head: bool) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let mut conn = Connection::new(stream, &mut buf, Host::new("replay.invalid"));
    let req = if head {
        Request::head("/")
    } else {
        Request::post("/")
    };
    let result = async {
        let mut resp = conn.send(&req).await?;
        let mut body = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match resp.read(&mut chunk).await? {
                0 => break,
                n => body.extend_from_slice(&chunk[..n]),
            }
        }
        let line = format!(
            "{{\"ok\":true,\"status\":{},\"reason\":{},\"version\":\"1.{}\",\"headers\":{},\"body_b64\":\"{}\",\"trailers\":{},",
            resp.status(),
            json_str(resp.reason()),
            resp.minor_version(),
            json_fields(resp.headers()),
            base64(&body),
            json_fields(resp.trailers()),
        );
        Ok::<_, rawpost::Error<core::convert::Infallible>>(line)
    }
    .await;
    match result {
        Ok(line) => format!("{line}\"reusable\":{}}}", conn.is_reusable()),
        Err(e) => format!(
            "{{\"ok\":false,\"error\":{},\"message\":{}}}",
            json_str(e.name()),
            json_str(&e.to_string())
        ),
    }
}

/// Runs a future whose I/O is always ready.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("replay: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("replay: cannot read {}: {e}", args.file);
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stream = Replay {
        bytes,
        pos: 0,
        max: args.read_size,
    };
    println!("{}", block_on(replay(stream, args.head)));
    ExitCode::SUCCESS
}
