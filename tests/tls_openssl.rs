//! The second witness for the servers of `tests/tls_servers.rs`: OpenSSL's client
//! (`openssl s_client`, TLS 1.3) accepts each behaviour the way RFC 8446 says a client must, or
//! refuses it as RFC 8446 says — so that what rawpost over embedded-tls does there is judged
//! against two independent TLS stacks, not one.

mod tls_support;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tls_support::wild::*;
use tls_support::*;

/// Every test must finish well within this.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test took too long")
}

/// `openssl s_client` for `HOST` at `addr`, TLS 1.3, verifying the chain against `pki`'s root
/// (and failing on a verification error), with the application data on stdin and stdout.
fn s_client(addr: std::net::SocketAddr, pki: &Pki) -> Child {
    static N: AtomicUsize = AtomicUsize::new(0);
    let ca = std::env::temp_dir().join(format!(
        "rawpost-openssl-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&ca, &pki.root.pem).unwrap();
    let child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            HOST,
        ])
        .arg("-CAfile")
        .arg(&ca)
        .args(["-verify_return_error", "-tls1_3", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl (the command) must be installed");
    child
}

/// POSTs `bodies` through `openssl s_client` on one session and returns what came back on
/// stdout once every echo is in (or the client ended), and what it said on stderr.
async fn openssl_posts(
    addr: std::net::SocketAddr,
    pki: &Pki,
    bodies: &'static [&'static [u8]],
) -> (Vec<u8>, String) {
    let mut child = s_client(addr, pki);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let got = tokio::task::spawn_blocking(move || {
        // One request at a time, the next once the last echo is in (as a client that waits for
        // its answers does; RFC 8446 §4.6.3 wants a KeyUpdate answered before the next data).
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut expected = 0;
        for body in bodies {
            let head = format!(
                "POST /r HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if stdin.write_all(head.as_bytes()).is_err() || stdin.write_all(body).is_err() {
                break;
            }
            let _ = stdin.flush();
            expected += echo_response(body).len();
            while got.len() < expected {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        }
        drop(stdin);
        got
    })
    .await
    .unwrap();
    // Done with it: end the client we started.
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    (got, err)
}

fn echoes(bodies: &[&[u8]]) -> Vec<u8> {
    bodies.iter().flat_map(|b| echo_response(b)).collect()
}

#[tokio::test]
async fn openssl_accepts_a_handshake_in_small_records() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let b = Behaviour {
            max_fragment: Some(32),
            ..Behaviour::default()
        };
        let (server, ledger, _h) =
            echo_server(config(pki.chain(), pki.leaf.key_der(), &b), b).await;
        let (got, err) = openssl_posts(server, &pki, &[b"one", b"two"]).await;
        assert_eq!(got, echoes(&[b"one", b"two"]), "{err}");
        assert_eq!(ledger.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn openssl_accepts_a_19_kb_chain() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let leaf = padded_leaf(&pki, 18_600);
        let b = Behaviour::default();
        let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
        let (server, _, _h) = echo_server(config(chain, leaf.key_der(), &b), b).await;
        let (got, err) = openssl_posts(server, &pki, &[b"x"]).await;
        assert_eq!(got, echoes(&[b"x"]), "{err}");
    })
    .await;
}

#[tokio::test]
async fn openssl_accepts_large_coalesced_tickets() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let b = Behaviour {
            tickets: Some(4),
            ticket_len: Some(16_000),
            ..Behaviour::default()
        };
        let (server, _, _h) = echo_server(config(pki.chain(), pki.leaf.key_der(), &b), b).await;
        let (got, err) = openssl_posts(server, &pki, &[b"a", b"b"]).await;
        assert_eq!(got, echoes(&[b"a", b"b"]), "{err}");
    })
    .await;
}

#[tokio::test]
async fn openssl_accepts_key_updates_from_rustls() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let b = Behaviour {
            key_update_every: Some(1),
            ..Behaviour::default()
        };
        let (server, ledger, _h) =
            echo_server(config(pki.chain(), pki.leaf.key_der(), &b), b).await;
        let (got, err) = openssl_posts(server, &pki, &[b"1", b"2", b"3"]).await;
        assert_eq!(got, echoes(&[b"1", b"2", b"3"]), "{err}");
        assert_eq!(ledger.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn openssl_answers_update_requested_with_its_own_key_update() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        for requested in [false, true] {
            let b = Behaviour::default();
            let (server, handle) = raw_server(
                config(pki.chain(), pki.leaf.key_der(), &b),
                move |mut s| async move {
                    let mut served = 0;
                    while let Ok(Some(body)) = s.recv_request().await {
                        if served == 0 {
                            s.send_key_update(requested).await.unwrap();
                        }
                        s.respond(&body).await.unwrap();
                        served += 1;
                    }
                    (s.client_key_updates.clone(), served)
                },
            )
            .await;
            let (got, err) = openssl_posts(server, &pki, &[b"1", b"2"]).await;
            assert_eq!(got, echoes(&[b"1", b"2"]), "{err}");
            let (answers, served) = handle.await.unwrap().unwrap();
            assert_eq!(served, 2);
            assert_eq!(answers, if requested { vec![0] } else { vec![] });
        }
    })
    .await;
}

#[tokio::test]
async fn openssl_refuses_a_post_handshake_certificate_request_with_unexpected_message() {
    bounded(async {
        let pki = Pki::new(&P256, &P256);
        let b = Behaviour::default();
        let (server, handle) = raw_server(
            config(pki.chain(), pki.leaf.key_der(), &b),
            |mut s| async move {
                let _ = s.recv_request().await;
                s.send(HANDSHAKE, &certificate_request()).await.unwrap();
                let mut back = Vec::new();
                while let Ok(Some(r)) = s.recv().await {
                    back.push(r);
                }
                back
            },
        )
        .await;
        let (got, _) = openssl_posts(server, &pki, &[b"x"]).await;
        assert_eq!(got, b"");
        // RFC 8446 §4.6.2: unexpected_message, fatal, encrypted.
        let back = handle.await.unwrap().unwrap();
        assert_eq!(back, [Record::encrypted(ALERT, &[2, 10])]);
    })
    .await;
}
