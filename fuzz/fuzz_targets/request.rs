//! Request encoding with an arbitrary method, path, host, port, headers and body framing: the
//! result is a typed error, or a head that httparse parses back to exactly the same parts.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rawpost::proto::encode::{encode, validate, BodyFraming, RequestHead};
use rawpost::{Host, Method};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    method: u8,
    path: &'a str,
    host: &'a str,
    port: Option<u16>,
    headers: Vec<(&'a str, &'a str)>,
    chunked: bool,
    body_len: u64,
    slack: u8,
}

const METHODS: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

fn trim(v: &str) -> &str {
    v.trim_matches([' ', '\t'])
}

fuzz_target!(|input: Input<'_>| {
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let mut host = Host::new(input.host);
    if let Some(p) = input.port {
        host = host.with_port(p);
    }
    let head = RequestHead {
        method,
        path: input.path,
        headers: &input.headers,
    };
    let framing = if input.chunked {
        BodyFraming::Chunked
    } else {
        BodyFraming::Length(input.body_len)
    };
    let Ok(len) = validate(&head, &host, framing) else {
        return; // A typed error: nothing is written.
    };
    // Too small by one: a typed error that says how much is needed.
    let mut short = vec![0u8; len.saturating_sub(1)];
    if len > 0 {
        assert_eq!(
            encode(&head, &host, framing, &mut short),
            Err(rawpost::RequestError::BufferTooSmall { needed: len })
        );
    }
    let mut buf = vec![0u8; len + usize::from(input.slack)];
    let n = encode(&head, &host, framing, &mut buf).expect("a validated head encodes");
    assert_eq!(n, len);
    let wire = &buf[..n];

    let mut fields = vec![httparse::EMPTY_HEADER; input.headers.len() + 4];
    let mut req = httparse::Request::new(&mut fields);
    let status = req.parse(wire);
    assert_eq!(
        status,
        Ok(httparse::Status::Complete(n)),
        "httparse rejects {:?}",
        String::from_utf8_lossy(wire)
    );
    assert_eq!(req.method, Some(method.as_str()));
    assert_eq!(req.path, Some(input.path));
    assert_eq!(req.version, Some(1));

    // What must be on the wire: Host first, the caller's fields in order (a caller's Host or
    // Content-Length, which must agree with the automatic one, written once in its place),
    // then the framing field.
    let host_value = match input.port {
        Some(p) => format!("{}:{p}", input.host),
        None => input.host.to_string(),
    };
    let mut want: Vec<(String, String)> = vec![("Host".into(), host_value)];
    for &(name, value) in &input.headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        want.push((name.into(), trim(value).into()));
    }
    match framing {
        BodyFraming::Length(0) if !matches!(method, Method::Post | Method::Put | Method::Patch) => {
        }
        BodyFraming::Length(n) => want.push(("Content-Length".into(), n.to_string())),
        BodyFraming::Chunked => want.push(("Transfer-Encoding".into(), "chunked".into())),
    }
    let got: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let v = core::str::from_utf8(h.value).expect("values were UTF-8");
            (h.name.to_string(), trim(v).to_string())
        })
        .collect();
    assert_eq!(got, want, "wire: {:?}", String::from_utf8_lossy(wire));
});
