//! Streamed request bodies, through the async and the blocking shell: exact bytes, one write
//! per piece or chunk, and typed errors for a body that breaks its declared length.

mod support;

use embedded_io_async::Write as _;
use rawpost::{blocking, Connection, ConnectionError, Error, Host, Request, RequestError};
use support::{block_on, Peer};

const HOST: Host<'static> = Host::new("logs.example.com");
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn upload() -> Request<'static> {
    Request::post("/upload").with_headers(&[("Content-Type", "text/plain")])
}

#[test]
fn known_length_pieces_go_straight_from_the_callers_slices() {
    let mut peer = Peer::new(OK);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), Some(11)).await.unwrap();
        w.write_all(b"hello").await.unwrap();
        w.write_all(b" ").await.unwrap();
        w.write_all(b"world").await.unwrap();
        let mut resp = w.finish().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.discard().await.unwrap(), 2);
        assert!(conn.is_reusable());
    });
    assert_eq!(
        peer.writes,
        vec![
            b"POST /upload HTTP/1.1\r\nHost: logs.example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n".to_vec(),
            b"hello".to_vec(),
            b" ".to_vec(),
            b"world".to_vec(),
        ]
    );
}

#[test]
fn chunked_pieces_cost_one_write_each() {
    let mut peer = Peer::new(OK);
    let mut buf = [0u8; 128];
    let big = [b'x'; 300];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), None).await.unwrap();
        assert_eq!(w.write(b"hello").await.unwrap(), 5);
        // Larger than the buffer: cut into chunks that fit (128 - 20 = 108 bytes each).
        w.write_all(&big).await.unwrap();
        let resp = w.finish().await.unwrap();
        assert_eq!(resp.status(), 200);
    });
    let mut want: Vec<Vec<u8>> = vec![
        b"POST /upload HTTP/1.1\r\nHost: logs.example.com\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        b"5\r\nhello\r\n".to_vec(),
    ];
    for n in [108usize, 108, 84] {
        let mut chunk = format!("{n:x}\r\n").into_bytes();
        chunk.extend_from_slice(&big[..n]);
        chunk.extend_from_slice(b"\r\n");
        want.push(chunk);
    }
    want.push(b"0\r\n\r\n".to_vec());
    assert_eq!(peer.writes, want);
}

#[test]
fn a_longer_body_is_refused_and_poisons() {
    let mut peer = Peer::new(OK);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), Some(4)).await.unwrap();
        w.write_all(b"abc").await.unwrap();
        let err = w.write(b"de").await.unwrap_err();
        assert_eq!(err, Error::Request(RequestError::BodyLengthMismatch));
        assert_eq!(
            conn.send(&upload()).await.err().unwrap(),
            Error::Connection(ConnectionError::Broken(rawpost::Broken::Request(
                RequestError::BodyLengthMismatch
            )))
        );
    });
    assert_eq!(peer.writes.len(), 2, "head and the piece that fit");
}

#[test]
fn a_shorter_body_is_refused_at_finish() {
    let mut peer = Peer::new(OK);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), Some(4)).await.unwrap();
        w.write_all(b"abc").await.unwrap();
        let err = w.finish().await.err().unwrap();
        assert_eq!(err, Error::Request(RequestError::BodyLengthMismatch));
        assert!(!conn.is_reusable());
    });
}

#[test]
fn an_unfinished_body_poisons() {
    let mut peer = Peer::new(OK);
    let mut buf = [0u8; 256];
    block_on(async {
        let mut conn = Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), None).await.unwrap();
        w.write_all(b"abc").await.unwrap();
        // The writer is abandoned here, without `finish`.
        assert_eq!(
            conn.send(&upload()).await.err().unwrap(),
            Error::Connection(ConnectionError::Broken(rawpost::Broken::Abandoned))
        );
    });
}

#[test]
fn blocking_shell_streams_the_same_bytes() {
    use embedded_io::Write as _;
    for length in [Some(11), None] {
        let mut async_peer = Peer::new(OK);
        let mut blocking_peer = Peer::new(OK);
        let mut buf = [0u8; 256];
        block_on(async {
            let mut conn = Connection::new(&mut async_peer, &mut buf, HOST);
            let mut w = conn.send_streaming(&upload(), length).await.unwrap();
            w.write_all(b"hello world").await.unwrap();
            assert_eq!(w.finish().await.unwrap().status(), 200);
        });
        let mut conn = blocking::Connection::new(&mut blocking_peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), length).unwrap();
        w.write_all(b"hello world").unwrap();
        let mut resp = w.finish().unwrap();
        assert_eq!(resp.status(), 200);
        let mut out = [0u8; 8];
        assert_eq!(resp.read_to_end(&mut out).unwrap(), 2);
        assert!(conn.is_reusable());
        assert_eq!(async_peer.writes, blocking_peer.writes, "{length:?}");

        let mut peer = Peer::new(OK);
        let mut conn = blocking::Connection::new(&mut peer, &mut buf, HOST);
        let mut w = conn.send_streaming(&upload(), Some(3)).unwrap();
        assert_eq!(
            w.write(b"toolong").unwrap_err(),
            Error::Request(RequestError::BodyLengthMismatch)
        );
        assert!(!conn.is_reusable());
    }
}
