//! Everything this program does with rawpost's public API, in one module: when that API
//! changes, this file is the one to adapt.

use embedded_tls::{Aes128GcmSha256, TlsError};
use rawpost::tls::{
    connect, CertError, OpenError, PinnedProvider, SignatureCache, TimeSource, TlsStream,
    TrustAnchor,
};
use rawpost::{Connection, Host, Request};
use serde::Serialize;

use crate::board::Uart;
use crate::rng::TestRng;

/// The one host value: TLS server name (SNI) and `Host` header.
pub const HOST: Host<'static> = Host::new("api.example.test");

/// The fixed test clock, 2026-06-01T00:00:00Z. The test server writes fixed validity dates
/// around it into its certificates (see ../qemu-riscv32-server), so the run gives the same
/// result whatever the date: nothing here expires.
pub const TEST_NOW: u64 = 1_780_272_000;

fn test_clock() -> Option<u64> {
    Some(TEST_NOW)
}

/// The TLS session with rawpost's connection over it.
pub type Session<'a> = Connection<'a, TlsStream<'a, Uart, Aes128GcmSha256>>;

/// What went wrong, as the report names it.
pub enum Failure {
    /// The bytes given to pin are not a certificate.
    Anchor(CertError),
    /// The server's certificate was refused; `detail` is the first name the refusal is about.
    Certificate {
        error: CertError,
        detail: heapless::String<64>,
    },
    /// The handshake failed for another reason.
    Handshake(TlsError),
    /// An HTTP exchange failed (`rawpost::Error::name`).
    Http(&'static str),
}

/// Certificate signatures kept between sessions: 4 of 32 bytes (a chain root → intermediate →
/// leaf has 2; a renewed leaf adds 1).
pub type Signatures = SignatureCache<4>;

/// Opens TLS 1.3 to [`HOST`] over `uart` with `anchor` pinned, the test clock and, if given,
/// the signature cache, and returns rawpost's connection over the session.
pub async fn open<'a>(
    uart: Uart,
    tls_read: &'a mut [u8],
    tls_write: &'a mut [u8],
    http: &'a mut [u8],
    anchor: &'a [u8],
    rng: &mut TestRng,
    signatures: Option<&mut Signatures>,
) -> Result<Session<'a>, Failure> {
    let anchor = TrustAnchor::from_der(anchor).map_err(Failure::Anchor)?;
    let mut provider = PinnedProvider::new(rng, anchor, TimeSource::clock(test_clock));
    if let Some(signatures) = signatures {
        provider = provider.with_signature_cache(signatures);
    }
    match connect(uart, tls_read, tls_write, HOST, &mut provider, http).await {
        Ok(conn) => Ok(conn),
        Err(OpenError::Certificate { error, detail }) => {
            let mut first = heapless::String::new();
            for c in detail.name(0).unwrap_or("").chars() {
                if first.push(c).is_err() {
                    break;
                }
            }
            Err(Failure::Certificate {
                error,
                detail: first,
            })
        }
        Err(OpenError::Handshake { error, .. }) => Err(Failure::Handshake(error)),
    }
}

/// The JSON body of each POST.
#[derive(Serialize)]
pub struct Reading<'s> {
    pub device: &'s str,
    pub session: u32,
    pub seq: u32,
    pub message: &'s str,
}

/// POSTs `reading` as JSON, serialized by serde-json-core straight into rawpost's buffer, and
/// reads the response body into `body`: the status and the body's length.
pub async fn post(
    conn: &mut Session<'_>,
    reading: &Reading<'_>,
    body: &mut [u8],
) -> Result<(u16, usize), Failure> {
    let request = Request::post("/echo").with_headers(&[("Content-Type", "application/json")]);
    let mut response = conn
        .send_with(&request, |buf| serde_json_core::to_slice(reading, buf))
        .await
        .map_err(|e| Failure::Http(e.name()))?;
    let status = response.status();
    let n = response
        .read_to_end(body)
        .await
        .map_err(|e| Failure::Http(e.name()))?;
    Ok((status, n))
}

/// Ends the TLS session (close_notify); the byte stream stays open for the next one.
pub async fn close(conn: Session<'_>) -> Result<Uart, Failure> {
    conn.into_inner()
        .close()
        .await
        .map_err(|(_, e)| Failure::Handshake(e.tls_error()))
}
