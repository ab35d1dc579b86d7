//! TLS 1.3 servers that behave as real servers may (issue 18): a rustls 0.23 server with the
//! switches rustls has (`max_fragment_size`, a large certificate chain, many and large
//! NewSessionTickets from a ticketer of ours, `refresh_traffic_keys` every N records), and a
//! record layer of our own for what rustls has no switch for (a post-handshake
//! CertificateRequest, a KeyUpdate without update_requested, a record split across TCP writes,
//! NewSessionTickets coalesced so that one spans two records).
//!
//! The record layer: the handshake is rustls's, fed one record at a time so that rustls never
//! reads past the client's Finished; then the traffic secrets (from rustls's key log) and the
//! sequence numbers (from `dangerous_extract_secrets`) go to [`RawSession`], which encrypts and
//! decrypts TLS_AES_128_GCM_SHA256 records with ring (RFC 8446 §5.2, §7.1, §7.3). Every
//! behaviour is checked against a rustls client in `tests/tls_servers.rs`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::hkdf;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Record content types (RFC 8446 §5.1).
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;

/// Handshake message types (RFC 8446 §4).
pub const NEW_SESSION_TICKET: u8 = 4;
pub const CERTIFICATE_REQUEST: u8 = 13;
pub const KEY_UPDATE: u8 = 24;

/// What the rustls server does beyond a plain TLS 1.3 handshake.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// rustls `max_fragment_size` (32 at least: records of at most 27 bytes of data).
    pub max_fragment: Option<usize>,
    /// NewSessionTickets sent after the handshake (rustls `send_tls13_tickets`; rustls's
    /// default is 2).
    pub tickets: Option<usize>,
    /// The length of each ticket, from a ticketer of ours (rustls's own makes ~100 bytes).
    pub ticket_len: Option<usize>,
    /// A KeyUpdate (rustls `refresh_traffic_keys`, update_requested) before every this-many
    /// application data records the server writes.
    pub key_update_every: Option<usize>,
}

/// A ticketer whose tickets are `len` bytes of a fixed pattern (never accepted back).
#[derive(Debug)]
struct BigTickets {
    len: usize,
}

impl rustls::server::ProducesTickets for BigTickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        3600
    }

    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        Some((0..self.len).map(|i| (i % 251) as u8).collect())
    }

    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Keeps the traffic secrets rustls logs, by label.
#[derive(Debug, Default)]
struct Secrets(Mutex<HashMap<String, Vec<u8>>>);

impl rustls::KeyLog for Secrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .insert(label.to_string(), secret.to_vec());
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// A rustls TLS 1.3 server config (ring) for `chain`/`key` with `behaviour`'s switches.
pub fn config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    behaviour: &Behaviour,
) -> rustls::ServerConfig {
    // The one cipher suite embedded-tls offers, and the one our record layer speaks.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.max_fragment_size = behaviour.max_fragment;
    if let Some(n) = behaviour.tickets {
        config.send_tls13_tickets = n;
    }
    if let Some(len) = behaviour.ticket_len {
        config.ticketer = Arc::new(BigTickets { len });
    }
    config
}

// --- the ledger of an HTTP echo server ----------------------------------------------------------

/// What an echo server saw: the body of every request it read completely, in order, per
/// connection.
#[derive(Clone, Default)]
pub struct Ledger(Entries, Arc<std::sync::atomic::AtomicUsize>);

/// The requests read: connection number and body.
type Entries = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

impl Ledger {
    /// Waits until `n` connections have ended on the server's side (everything they carried is
    /// then in the ledger).
    pub async fn settled(&self, n: usize) {
        while self.1.load(std::sync::atomic::Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many connections have ended on the server's side.
    pub fn ended(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn push(&self, connection: usize, body: Vec<u8>) {
        self.0.lock().unwrap().push((connection, body));
    }

    /// Every body read, in order.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// How many requests were read.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// How many connections carried at least one request.
    pub fn connections(&self) -> usize {
        let mut ids: Vec<usize> = self.0.lock().unwrap().iter().map(|(c, _)| *c).collect();
        ids.dedup();
        ids.len()
    }
}

/// Splits one HTTP/1.1 request with a `Content-Length` body off the front of `buf`.
pub fn take_request(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap())
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    let body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    Some(body)
}

/// The echo server's answer to a request body.
pub fn echo_response(body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

/// A keep-alive HTTP/1.1 echo server over rustls (tokio-rustls) with `behaviour`, for any
/// number of connections: every request body is written to the ledger once read, and answered
/// with itself. Each response is one application data record; with
/// `behaviour.key_update_every = Some(n)`, rustls sends a KeyUpdate before every `n`-th record of
/// a connection.
pub async fn echo_server(
    config: rustls::ServerConfig,
    behaviour: Behaviour,
) -> (SocketAddr, Ledger, tokio::task::JoinHandle<()>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ledger = Ledger::default();
    let kept = ledger.clone();
    let handle = tokio::spawn(async move {
        let mut id = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tcp.set_nodelay(true).unwrap();
            id += 1;
            let acceptor = acceptor.clone();
            let ledger = kept.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                serve_echo(acceptor, tcp, id, &ledger, &behaviour).await;
                ledger.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    (addr, ledger, handle)
}

/// One connection of [`echo_server`].
async fn serve_echo(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    id: usize,
    ledger: &Ledger,
    behaviour: &Behaviour,
) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let mut records = 0usize;
    loop {
        while let Some(body) = take_request(&mut buf) {
            ledger.push(id, body.clone());
            records += 1;
            if let Some(n) = behaviour.key_update_every {
                if records.is_multiple_of(n) {
                    tls.get_mut().1.refresh_traffic_keys().unwrap();
                }
            }
            if tls.write_all(&echo_response(&body)).await.is_err() {
                return;
            }
            if tls.flush().await.is_err() {
                return;
            }
        }
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// --- the record layer of our own ---------------------------------------------------------------

/// HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256.
fn expand_label(secret: &[u8], label: &str, out: &mut [u8]) {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let full = format!("tls13 {label}");
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [full.len() as u8];
    let context_len = [0u8];
    let info: [&[u8]; 4] = [&length, &label_len, full.as_bytes(), &context_len];
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    prk.expand(&info, Len(out.len()))
        .unwrap()
        .fill(out)
        .unwrap();
}

/// One direction of a TLS_AES_128_GCM_SHA256 session: its traffic secret, key, IV and sequence
/// number.
struct Direction {
    secret: Vec<u8>,
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new(secret: Vec<u8>, seq: u64) -> Self {
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        expand_label(&secret, "key", &mut key);
        expand_label(&secret, "iv", &mut iv);
        Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap()),
            iv,
            secret,
            seq,
        }
    }

    /// The next generation of traffic keys (RFC 8446 §7.2).
    fn update(&mut self) {
        let mut next = vec![0u8; 32];
        expand_label(&self.secret, "traffic upd", &mut next);
        *self = Self::new(next, 0);
    }

    fn nonce(&mut self) -> Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        Nonce::assume_unique_for_key(nonce)
    }
}

/// A record as it arrived: its content type (the inner type once decrypted) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub content_type: u8,
    pub data: Vec<u8>,
    /// Sent in clear (its header's type), not encrypted.
    pub was_plaintext: bool,
}

impl Record {
    /// An encrypted record of `content_type` holding `data`.
    pub fn encrypted(content_type: u8, data: &[u8]) -> Self {
        Self {
            content_type,
            data: data.to_vec(),
            was_plaintext: false,
        }
    }
}

/// A TLS 1.3 session after a rustls handshake, driven record by record by the test: what to
/// send, in which records, split how, and when.
pub struct RawSession {
    pub tcp: TcpStream,
    tx: Direction,
    rx: Direction,
    /// Application data received and not yet taken.
    pub inbox: Vec<u8>,
    /// KeyUpdate messages the client sent (their update_requested byte).
    pub client_key_updates: Vec<u8>,
}

/// A handshake message: type, 24-bit length, body.
pub fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_be_bytes();
    let mut m = vec![kind, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

/// A NewSessionTicket message (RFC 8446 §4.6.1) with a ticket of `ticket_len` bytes.
pub fn new_session_ticket(ticket_len: usize) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&3600u32.to_be_bytes()); // ticket_lifetime
    body.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // ticket_age_add
    body.extend_from_slice(&[8, 1, 2, 3, 4, 5, 6, 7, 8]); // ticket_nonce
    body.extend_from_slice(&(ticket_len as u16).to_be_bytes());
    body.extend((0..ticket_len).map(|i| (i % 253) as u8));
    body.extend_from_slice(&[0, 0]); // no extensions
    handshake_message(NEW_SESSION_TICKET, &body)
}

/// A CertificateRequest (RFC 8446 §4.3.2) with an empty context and the one extension it must
/// carry, signature_algorithms (ecdsa_secp256r1_sha256).
pub fn certificate_request() -> Vec<u8> {
    let body = [
        1, 0x2a, // certificate_request_context: 1 byte (post-handshake: non-empty)
        0, 8, // extensions
        0, 13, 0, 4, 0, 2, 4, 3, // signature_algorithms: ecdsa_secp256r1_sha256
    ];
    handshake_message(CERTIFICATE_REQUEST, &body)
}

/// A KeyUpdate message (RFC 8446 §4.6.3).
pub fn key_update(update_requested: bool) -> Vec<u8> {
    handshake_message(KEY_UPDATE, &[u8::from(update_requested)])
}

impl RawSession {
    /// Encrypts one record of `content_type` holding `data` (RFC 8446 §5.2), without padding.
    pub fn seal(&mut self, content_type: u8, data: &[u8]) -> Vec<u8> {
        let mut inner = data.to_vec();
        inner.push(content_type);
        let len = (inner.len() + 16) as u16;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        let nonce = self.tx.nonce();
        self.tx
            .key
            .seal_in_place_append_tag(nonce, Aad::from(header), &mut inner)
            .unwrap();
        let mut record = header.to_vec();
        record.extend_from_slice(&inner);
        record
    }

    /// Sends one record.
    pub async fn send(&mut self, content_type: u8, data: &[u8]) -> std::io::Result<()> {
        let record = self.seal(content_type, data);
        self.tcp.write_all(&record).await
    }

    /// Sends `data` as handshake records of at most `max` bytes each (a message may span them).
    pub async fn send_handshake(&mut self, data: &[u8], max: usize) -> std::io::Result<()> {
        for piece in data.chunks(max) {
            self.send(HANDSHAKE, piece).await?;
        }
        Ok(())
    }

    /// Sends a KeyUpdate and switches to the next write keys.
    pub async fn send_key_update(&mut self, update_requested: bool) -> std::io::Result<()> {
        self.send(HANDSHAKE, &key_update(update_requested)).await?;
        self.tx.update();
        Ok(())
    }

    /// Sends close_notify (encrypted, as RFC 8446 §6.1 wants after the handshake).
    pub async fn send_close_notify(&mut self) -> std::io::Result<()> {
        self.send(ALERT, &[1, 0]).await
    }

    /// Reads and decrypts one record; a client KeyUpdate is noted and its new keys taken. `None`
    /// at the end of the stream.
    pub async fn recv(&mut self) -> std::io::Result<Option<Record>> {
        let mut header = [0u8; 5];
        match self.tcp.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut data = vec![0u8; len];
        self.tcp.read_exact(&mut data).await?;
        if header[0] != APPLICATION_DATA {
            // A plaintext record (an alert sent in clear).
            return Ok(Some(Record {
                content_type: header[0],
                data,
                was_plaintext: true,
            }));
        }
        let nonce = self.rx.nonce();
        let plain = self
            .rx
            .key
            .open_in_place(nonce, Aad::from(header), &mut data)
            .map_err(|_| std::io::Error::other("bad_record_mac"))?;
        let end = plain.iter().rposition(|b| *b != 0).unwrap_or(0);
        let content_type = plain[end];
        let data = plain[..end].to_vec();
        if content_type == HANDSHAKE && data.first() == Some(&KEY_UPDATE) && data.len() == 5 {
            self.client_key_updates.push(data[4]);
            self.rx.update();
        }
        Ok(Some(Record {
            content_type,
            data,
            was_plaintext: false,
        }))
    }

    /// Reads records until one whole HTTP request is in; returns its body (`None` if the client
    /// closed or sent something else first, which is returned in `Err`).
    pub async fn recv_request(&mut self) -> Result<Option<Vec<u8>>, Record> {
        loop {
            if let Some(body) = take_request(&mut self.inbox) {
                return Ok(Some(body));
            }
            match self.recv().await {
                Ok(Some(r)) if r.content_type == APPLICATION_DATA => {
                    self.inbox.extend_from_slice(&r.data)
                }
                Ok(Some(r))
                    if r.content_type == HANDSHAKE && r.data.first() == Some(&KEY_UPDATE) => {}
                Ok(Some(r)) => return Err(r),
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    }

    /// Answers a request body with its echo, in one record.
    pub async fn respond(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.send(APPLICATION_DATA, &echo_response(body)).await
    }
}

/// Runs a rustls server handshake on `tcp`, feeding rustls one record at a time so that it reads
/// nothing after the client's Finished, and writing everything rustls sends (its tickets too).
/// Returns the session for our record layer, or the rustls error.
pub async fn raw_handshake(
    mut tcp: TcpStream,
    mut config: rustls::ServerConfig,
) -> Result<RawSession, String> {
    let secrets = Arc::new(Secrets::default());
    config.key_log = secrets.clone();
    config.enable_secret_extraction = true;
    let mut conn = rustls::ServerConnection::new(Arc::new(config)).map_err(|e| e.to_string())?;
    loop {
        while conn.wants_write() {
            let mut out = Vec::new();
            conn.write_tls(&mut out).map_err(|e| e.to_string())?;
            tcp.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        if !conn.is_handshaking() {
            break;
        }
        let mut record = vec![0u8; 5];
        tcp.read_exact(&mut record)
            .await
            .map_err(|e| e.to_string())?;
        let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
        record.resize(5 + len, 0);
        tcp.read_exact(&mut record[5..])
            .await
            .map_err(|e| e.to_string())?;
        conn.read_tls(&mut &record[..]).map_err(|e| e.to_string())?;
        if let Err(e) = conn.process_new_packets() {
            let mut out = Vec::new();
            let _ = conn.write_tls(&mut out);
            let _ = tcp.write_all(&out).await;
            return Err(e.to_string());
        }
    }
    let extracted = conn
        .dangerous_extract_secrets()
        .map_err(|e| e.to_string())?;
    let logged = secrets.0.lock().unwrap();
    let server = logged["SERVER_TRAFFIC_SECRET_0"].clone();
    let client = logged["CLIENT_TRAFFIC_SECRET_0"].clone();
    Ok(RawSession {
        tcp,
        tx: Direction::new(server, extracted.tx.0),
        rx: Direction::new(client, extracted.rx.0),
        inbox: Vec::new(),
        client_key_updates: Vec::new(),
    })
}

/// A server for one connection: a rustls handshake with `config`, then `script` on the
/// session. Returns the address and the script's result.
pub async fn raw_server<F, Fut, T>(
    config: rustls::ServerConfig,
    script: F,
) -> (SocketAddr, tokio::task::JoinHandle<Result<T, String>>)
where
    F: FnOnce(RawSession) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let session = raw_handshake(tcp, config).await?;
        Ok(script(session).await)
    });
    (addr, handle)
}

/// Pauses the server between two writes, long enough for the client to read the first part.
pub async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

// --- what lands on the wire ------------------------------------------------------------------

/// A TCP relay between a client and `server` that records the header of every record the server
/// sends (content type and length), for tests that state what really lands on the wire.
pub async fn record_tap(server: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<(u8, u16)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(server).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut uw).await;
            let _ = uw.shutdown().await;
        });
        loop {
            let mut header = [0u8; 5];
            if ur.read_exact(&mut header).await.is_err() {
                let _ = cw.shutdown().await;
                return;
            }
            let len = u16::from_be_bytes([header[3], header[4]]);
            log.lock().unwrap().push((header[0], len));
            let mut body = vec![0u8; usize::from(len)];
            if ur.read_exact(&mut body).await.is_err() {
                return;
            }
            if cw.write_all(&header).await.is_err() || cw.write_all(&body).await.is_err() {
                return;
            }
        }
    });
    (addr, seen)
}

// --- a large certificate chain -----------------------------------------------------------------

/// A leaf for [`super::HOST`] under `pki`'s intermediate that carries `pad` bytes in a
/// non-critical private extension (ignored by every verifier), so that the chain the server sends
/// is as large as a long real one.
pub fn padded_leaf(pki: &super::Pki, pad: usize) -> super::Cert {
    let key = super::new_key(&super::P256);
    let mut params = rcgen::CertificateParams::new(vec![super::HOST.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, super::HOST);
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2050, 1, 1);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 32473, 18],
        (0..pad).map(|i| (i % 200) as u8 + 1).collect(),
    )];
    let cert = params.signed_by(&key, &pki.inter.issuer()).unwrap();
    super::Cert {
        pem: cert.pem(),
        der: cert.der().clone(),
        params,
        key,
    }
}

// --- a tokio transport with ReadReady -----------------------------------------------------------

/// A tokio TCP stream as an embedded-io-async stream that implements `ReadReady` (a peek with a
/// waker that does nothing: bytes or the end of the stream are there, or not).
pub struct ReadyTcp(pub embedded_io_adapters::tokio_1::FromTokio<TcpStream>);

impl ReadyTcp {
    pub fn new(tcp: TcpStream) -> Self {
        Self(embedded_io_adapters::tokio_1::FromTokio::new(tcp))
    }
}

impl embedded_io_async::ErrorType for ReadyTcp {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for ReadyTcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        embedded_io_async::Read::read(&mut self.0, buf).await
    }
}

impl embedded_io_async::Write for ReadyTcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        embedded_io_async::Write::write(&mut self.0, buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        embedded_io_async::Write::flush(&mut self.0).await
    }
}

impl embedded_io_async::ReadReady for ReadyTcp {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        match self.0.inner().poll_peek(&mut cx, &mut buf) {
            std::task::Poll::Ready(Ok(_)) => Ok(true),
            std::task::Poll::Ready(Err(e)) => Err(e),
            std::task::Poll::Pending => Ok(false),
        }
    }
}
