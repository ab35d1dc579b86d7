//! Everything this program does with rawpost's and mbedtls-rs's public APIs, in one module: when
//! either changes, this file is the one to adapt. rawpost's part is the same as in
//! ../qemu-riscv32/src/client.rs: `Host`, `Connection::new`, `Request::post`, `send_with`,
//! `read_to_end`, `into_inner`.

use core::ffi::CStr;

use mbedtls_rs::sys::MbedtlsError;
use mbedtls_rs::{
    AuthMode, Certificate, ClientSessionConfig, Session as TlsSession, SessionConfig, SessionError,
    TlsGroup, TlsReference, TlsVersion,
};
use rawpost::{Connection, Host, Request};
use serde::Serialize;

use crate::probe::ProbeUart;
use crate::stream::MbedtlsStream;

/// The one host value: the `Host` header, and the TLS server name (SNI, and the name the
/// certificate must carry) through [`server_name`].
pub const HOST: Host<'static> = Host::new("api.example.test");

/// The host's name as the C string Mbed TLS takes, written into `buf`: the same value as the
/// `Host` header, so the two cannot disagree.
pub fn server_name<'b>(host: Host<'_>, buf: &'b mut [u8]) -> Option<&'b CStr> {
    let name = host.name().as_bytes();
    let out = buf.get_mut(..=name.len())?;
    out[..name.len()].copy_from_slice(name);
    out[name.len()] = 0;
    CStr::from_bytes_with_nul(out).ok()
}

/// The TLS session over the UART, as the firmware's stream (`ReadReady` added,
/// ../esp32c3-mbedtls/src/stream.rs), with rawpost's connection over it.
pub type Session<'a> = Connection<'a, MbedtlsStream<'a, &'a mut ProbeUart>>;

/// What went wrong, as the report names it.
pub enum Failure {
    /// The bytes given to pin are not a certificate Mbed TLS can parse.
    Anchor(MbedtlsError),
    /// The session could not be set up or the handshake failed; `verify` is Mbed TLS's
    /// certificate verification result (`MBEDTLS_X509_BADCERT_*` flags, 0 if the chain was
    /// not what failed).
    Handshake { error: SessionError, verify: u32 },
    /// An HTTP exchange failed (`rawpost::Error::name`).
    Http(&'static str),
}

/// The pinned root, parsed once (Mbed TLS keeps it on the heap; the DER stays where it is).
pub fn anchor(der: &[u8]) -> Result<Certificate<'_>, Failure> {
    Certificate::new_no_copy(der).map_err(|e| match e {
        SessionError::MbedTls(e) => Failure::Anchor(e),
        other => Failure::Handshake {
            error: other,
            verify: 0,
        },
    })
}

/// The key exchange groups offered: P-256 alone, as embedded-tls offers, so the two stacks
/// run the same ECDHE (Mbed TLS's default list starts with X25519, which the test server does
/// not take: it would answer with a HelloRetryRequest).
const GROUPS: &[TlsGroup] = &[TlsGroup::Secp256r1];

/// Opens TLS (1.3 or 1.2, as the server chooses) to [`HOST`] over `uart` with `anchor` pinned,
/// the certificate chain and the server name verified, and returns rawpost's connection over
/// the session.
pub async fn open<'a>(
    tls: TlsReference<'a>,
    uart: &'a mut ProbeUart,
    http: &'a mut [u8],
    anchor: &Certificate<'a>,
    sni: &'a CStr,
) -> Result<Session<'a>, Failure> {
    let config = ClientSessionConfig {
        ca_chain: Some(anchor.clone()),
        server_name: Some(sni),
        auth_mode: AuthMode::Required,
        min_version: TlsVersion::Tls1_2,
        key_exchange_groups: Some(GROUPS),
        ..ClientSessionConfig::new()
    };
    let mut session = TlsSession::new(tls, uart, &SessionConfig::Client(config))
        .map_err(|error| Failure::Handshake { error, verify: 0 })?;
    if let Err(error) = session.connect().await {
        return Err(Failure::Handshake {
            error,
            verify: session.tls_verification_details(),
        });
    }
    Ok(Connection::new(MbedtlsStream::new(session), http, HOST))
}

/// The negotiated protocol version of an open session.
pub fn version(conn: &Session<'_>) -> Option<TlsVersion> {
    conn.stream().session().tls_version()
}

/// The JSON body of each POST.
#[derive(Serialize)]
pub struct Reading<'s> {
    pub device: &'s str,
    pub session: u32,
    pub seq: u32,
    pub message: &'s str,
}

/// POSTs `reading` as JSON to `path` (`/echo`; `/echo-close` makes the server close the
/// session after its answer), serialized by serde-json-core straight into rawpost's buffer, and
/// reads the response body into `body`: the status and the body's length.
pub async fn post(
    conn: &mut Session<'_>,
    path: &str,
    reading: &Reading<'_>,
    body: &mut [u8],
) -> Result<(u16, usize), Failure> {
    let request = Request::post(path).with_headers(&[("Content-Type", "application/json")]);
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

/// Whether the server has closed the idle session (rawpost's `check_closed`, which asks the
/// stream's `ReadReady` first): 1 if it has, 0 if not, 2 if the check failed.
pub async fn check_closed(conn: &mut Session<'_>) -> u8 {
    match conn.check_closed().await {
        Ok(true) => 1,
        Ok(false) => 0,
        Err(_) => 2,
    }
}

/// Ends the TLS session (close_notify) and frees it; the UART stays open for the next one.
pub async fn close(conn: Session<'_>) -> Result<(), Failure> {
    let mut session = conn.into_inner().into_session();
    session
        .close()
        .await
        .map_err(|error| Failure::Handshake { error, verify: 0 })
}
