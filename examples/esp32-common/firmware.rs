//! The firmware shared by the ESP32-C3 and ESP32-C6 examples: join a Wi-Fi network, resolve the
//! host, open TCP (bounded retries), open TLS 1.3 with the server name taken from the same
//! `rawpost::Host` as the `Host` header, POST a JSON body serialized straight into rawpost's
//! buffer, print the status and the body, and do it again.
//!
//! Each chip's `src/main.rs` sets the crate attributes and `CHIP`, then includes this file as a
//! module. Configuration is read at build time (see `examples/ESP32.md`):
//!
//! | variable | default |
//! |---|---|
//! | `RAWPOST_WIFI_SSID` | none: the firmware says so at run time and waits |
//! | `RAWPOST_WIFI_PASSWORD` | none (set it to an empty string for an open network) |
//! | `RAWPOST_HOST` | `httpbingo.org` |
//! | `RAWPOST_PATH` | `/post` |
//! | `RAWPOST_PORT` | `443` |
//!
//! Every failure ends in one printed line that says which step failed and why, then a retry
//! after a delay. Nothing here panics on a network or server fault.

use core::fmt;

use embassy_executor::Spawner;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::{IpAddress, Runner, Stack, StackResources};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use embedded_tls::{Aes128GcmSha256, TlsConnection, TlsError};
use esp_hal::clock::CpuClock;
use esp_hal::ram;
use esp_hal::rng::Trng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig, Interface, Password, Ssid,
    WifiController,
};
use rawpost::tls::{CertError, OpenError, PinnedProvider, SignatureCache, TrustAnchor};
use rawpost::{Connection, EmbassyTimer, Host, Request, Timeouts};
use serde::Serialize;
use static_cell::{ConstStaticCell, StaticCell};

use esp_backtrace as _;
#[cfg(feature = "defmt")]
use esp_println as _;

use super::CHIP;

#[cfg(all(feature = "println", feature = "defmt"))]
compile_error!("build the defmt firmware with `--no-default-features --features defmt` (see examples/ESP32.md)");
#[cfg(not(any(feature = "println", feature = "defmt")))]
compile_error!("enable one of the features `println` (the default) or `defmt`");

esp_bootloader_esp_idf::esp_app_desc!();

// ---------------------------------------------------------------------------------------------
// Logging: the same call sites print through esp-println or defmt. Format strings use only `{}`
// with `&str`, integers, or a `Show`/`Dbg` wrapper, which both backends accept.

#[cfg(not(feature = "defmt"))]
macro_rules! info {
    ($($t:tt)*) => { esp_println::println!($($t)*) };
}
#[cfg(feature = "defmt")]
macro_rules! info {
    ($($t:tt)*) => { defmt::info!($($t)*) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! warn {
    ($fmt:literal $($t:tt)*) => { esp_println::println!(concat!("WARN  ", $fmt) $($t)*) };
}
#[cfg(feature = "defmt")]
macro_rules! warn {
    ($($t:tt)*) => { defmt::warn!($($t)*) };
}
#[cfg(not(feature = "defmt"))]
macro_rules! error {
    ($fmt:literal $($t:tt)*) => { esp_println::println!(concat!("ERROR ", $fmt) $($t)*) };
}
#[cfg(feature = "defmt")]
macro_rules! error {
    ($($t:tt)*) => { defmt::error!($($t)*) };
}

/// Prints a value through its `Display` implementation, with either backend.
struct Show<'a, T: ?Sized>(&'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Show<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl<T: fmt::Display + ?Sized> defmt::Format for Show<'_, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self.0))
    }
}

/// Prints a value through its `Debug` implementation, with either backend.
struct Dbg<'a, T: ?Sized>(&'a T);

impl<T: fmt::Debug + ?Sized> fmt::Display for Dbg<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl<T: fmt::Debug + ?Sized> defmt::Format for Dbg<'_, T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Debug2Format(self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// Build-time configuration.

const WIFI_SSID: Option<&str> = option_env!("RAWPOST_WIFI_SSID");
const WIFI_PASSWORD: Option<&str> = option_env!("RAWPOST_WIFI_PASSWORD");
const HOST_NAME: &str = env_or(option_env!("RAWPOST_HOST"), "httpbingo.org");
const PATH: &str = env_or(option_env!("RAWPOST_PATH"), "/post");
const PORT: u16 = parse_port(option_env!("RAWPOST_PORT"));

/// The one host value: the `Host` header and the TLS server name (SNI) both come from it. The
/// port is written into the `Host` header only when it is not the default 443.
const HOST: Host<'static> = if PORT == 443 {
    Host::new(HOST_NAME)
} else {
    Host::new(HOST_NAME).with_port(PORT)
};

/// The root certificate the server's chain must end in (see `examples/ESP32.md` to replace it).
const ROOT_CA_PEM: &str = include_str!("root-ca.pem");

/// TCP connect: this many attempts, this long apart (the story's hand-written code: 10 × 500 ms).
const CONNECT_TRIES: u32 = 10;
const CONNECT_BACKOFF: Duration = Duration::from_millis(500);
/// One TCP connect attempt may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The TCP socket gives up when the peer acknowledges nothing for this long.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(15);
const DNS_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the firmware says it is still waiting for Wi-Fi and DHCP.
const NETWORK_WAIT_REPORT: Duration = Duration::from_secs(15);
/// Between two successful POSTs.
const POST_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed POST.
const RETRY_DELAY: Duration = Duration::from_secs(10);
/// Between two reminders when the firmware cannot go on (missing credentials, …).
const IDLE_REPORT: Duration = Duration::from_secs(30);

const fn env_or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => default,
    }
}

/// `RAWPOST_PORT` as a number; a value that is not one fails the build, not the device.
const fn parse_port(value: Option<&str>) -> u16 {
    let digits = match value {
        Some(v) if !v.is_empty() => v.as_bytes(),
        _ => return 443,
    };
    let mut port: u32 = 0;
    let mut i = 0;
    while i < digits.len() {
        let d = digits[i];
        assert!(
            d.is_ascii_digit() && digits.len() <= 5,
            "RAWPOST_PORT must be a number from 1 to 65535"
        );
        port = port * 10 + (d - b'0') as u32;
        i += 1;
    }
    assert!(
        port >= 1 && port <= 65535,
        "RAWPOST_PORT must be a number from 1 to 65535"
    );
    port as u16
}

// ---------------------------------------------------------------------------------------------
// The large buffers are one static (`.bss`), taken once: they live on no stack and in no future.

/// A whole TLS record (16 KiB of plaintext plus record overhead) must fit the TLS read buffer.
const TLS_READ_BUF: usize = 16_640;

struct Buffers {
    tcp_rx: [u8; 4096],
    tcp_tx: [u8; 2048],
    tls_rx: [u8; TLS_READ_BUF],
    tls_tx: [u8; 4096],
    /// rawpost's one buffer: the request (head and JSON body), then the response head.
    http: [u8; 2048],
    /// The response body.
    body: [u8; 4096],
    /// The pinned root CA, decoded from `ROOT_CA_PEM` (DER).
    anchor: [u8; 2048],
    /// Certificate signatures already verified: each POST's new TLS session verifies the
    /// server's chain again (dates, names, constraints) but not the signatures it verified
    /// before (the root's on the intermediate, the intermediate's on the leaf).
    signatures: SignatureCache<4>,
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    tcp_rx: [0; 4096],
    tcp_tx: [0; 2048],
    tls_rx: [0; TLS_READ_BUF],
    tls_tx: [0; 4096],
    http: [0; 2048],
    body: [0; 4096],
    anchor: [0; 2048],
    signatures: SignatureCache::new(),
});

// ---------------------------------------------------------------------------------------------
// The main stack. Everything here runs in the main task, on the main stack (the RAM left after
// the statics). Its deepest point is the TLS handshake, inside the certificate check.

/// The stack the TLS handshake takes below the task that runs it, measured on RV32IMC under
/// QEMU by `bash .ci/qemu` (README, "Measured on a RISC-V core": "stack of the handshake,
/// below the task", with a P-384 root, the larger of the two, so that enabling rawpost's
/// `p384` feature needs no change here; `.ci/qemu` keeps this number equal to its measurement).
const TLS_HANDSHAKE_STACK: usize = 21_892;

/// The main stack this firmware needs: the handshake's stack plus a 50 % margin for what the
/// QEMU figure does not cover: this build's own inlining and frames (the executor, this task,
/// embassy-net's socket calls instead of a UART) and the interrupt handlers (the Wi-Fi
/// driver's) that run on the same stack.
const MAIN_STACK_NEEDED: usize = TLS_HANDSHAKE_STACK * 3 / 2;

/// The smallest main stack esp-hal lets this firmware link with: set in `.cargo/config.toml`
/// (`[env]`), enforced by esp-hal's linker script; checked here to cover `MAIN_STACK_NEEDED`.
const MAIN_STACK_MINIMUM: usize = parse_size(env!("ESP_HAL_CONFIG_ENSURE_MAIN_STACK_MINIMUM"));
const _: () = assert!(
    MAIN_STACK_MINIMUM >= MAIN_STACK_NEEDED,
    "raise ESP_HAL_CONFIG_ENSURE_MAIN_STACK_MINIMUM in .cargo/config.toml to cover MAIN_STACK_NEEDED"
);

const fn parse_size(digits: &str) -> usize {
    let digits = digits.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit(), "a size in bytes");
        value = value * 10 + (digits[i] - b'0') as usize;
        i += 1;
    }
    value
}

/// The main stack's size, from esp-hal's linker script.
fn main_stack_size() -> usize {
    extern "C" {
        static _stack_start_cpu0: u8;
        static _stack_end_cpu0: u8;
    }
    (&raw const _stack_start_cpu0) as usize - (&raw const _stack_end_cpu0) as usize
}

/// The JSON body, serialized by serde-json-core straight into rawpost's buffer.
#[derive(Serialize)]
struct Reading<'a> {
    device: &'a str,
    seq: u32,
    uptime_ms: u64,
    message: &'a str,
}

// ---------------------------------------------------------------------------------------------

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // esp-radio allocates its buffers from this heap; rawpost and the TLS session do not.
    esp_alloc::heap_allocator!(#[ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    info!(
        "rawpost on {}: POST https://{}:{}{}",
        CHIP, HOST_NAME, PORT, PATH
    );
    // `black_box`: a build without credentials still compiles and links the whole firmware
    // (the compiler would otherwise drop everything after this check).
    let (Some(ssid), Some(password)) = core::hint::black_box((WIFI_SSID, WIFI_PASSWORD)) else {
        idle_forever(
            "Wi-Fi credentials missing: build with RAWPOST_WIFI_SSID and RAWPOST_WIFI_PASSWORD set \
             (an empty password for an open network), e.g. \
             RAWPOST_WIFI_SSID=my-net RAWPOST_WIFI_PASSWORD=secret cargo run --release",
        )
        .await
    };
    let station = match station_config(ssid, password) {
        Ok(config) => config,
        Err(why) => idle_forever(why).await,
    };

    let controller = match WifiController::new(
        peripherals.WIFI,
        ControllerConfig::default().with_initial_config(WifiConfig::Station(station)),
    ) {
        Ok(controller) => controller,
        Err(e) => {
            error!("Wi-Fi driver failed to start: {}", Show(&e));
            idle_forever("Wi-Fi is unavailable; reset the board to try again").await
        }
    };
    let Some(interface) = Interface::try_station() else {
        idle_forever("the Wi-Fi station interface is already in use").await
    };
    // The radio feeds the TRNG's entropy source, so the TRNG is ready once Wi-Fi is up.
    let mut trng = match Trng::try_new() {
        Ok(trng) => trng,
        Err(e) => {
            error!("the TRNG is not available: {}", Dbg(&e));
            idle_forever("no randomness for TLS; reset the board to try again").await
        }
    };

    let seed = (u64::from(trng.random()) << 32) | u64::from(trng.random());
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        interface,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );

    match (wifi_task(controller, ssid), net_task(runner)) {
        (Ok(wifi), Ok(net)) => {
            spawner.spawn(wifi);
            spawner.spawn(net);
        }
        _ => idle_forever("could not start the Wi-Fi and network tasks").await,
    }

    let bufs = BUFFERS.take();
    // The pinned root CA: checked once at boot, so a damaged PEM file is reported at once.
    let anchor_len = match TrustAnchor::from_pem(ROOT_CA_PEM.as_bytes(), &mut bufs.anchor) {
        Ok(anchor) => anchor.der().len(),
        Err(e) => idle_forever(e.message()).await,
    };
    info!("pinned root CA: {} bytes of DER", anchor_len);
    info!(
        "main stack: {} bytes (the TLS handshake needs {} with the margin)",
        main_stack_size(),
        MAIN_STACK_NEEDED
    );
    let mut seq: u32 = 0;
    loop {
        wait_for_network(stack).await;
        seq = seq.wrapping_add(1);
        match post_once(stack, &mut trng, bufs, seq).await {
            Ok(()) => {
                info!("next POST in {} s", POST_INTERVAL.as_secs());
                Timer::after(POST_INTERVAL).await;
            }
            Err(e) => {
                error!(
                    "POST #{} failed: {}; retrying in {} s",
                    seq,
                    Show(&e),
                    RETRY_DELAY.as_secs()
                );
                Timer::after(RETRY_DELAY).await;
            }
        }
    }
}

/// Says why the firmware cannot go on, again and again, without spinning or panicking.
async fn idle_forever(why: &str) -> ! {
    loop {
        error!("{}", why);
        Timer::after(IDLE_REPORT).await;
    }
}

fn station_config(ssid: &str, password: &str) -> Result<StationConfig, &'static str> {
    let ssid = Ssid::try_from(ssid).map_err(|_| "RAWPOST_WIFI_SSID is longer than 32 bytes")?;
    let auth = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        let password = Password::try_from(password)
            .map_err(|_| "RAWPOST_WIFI_PASSWORD is longer than 64 bytes")?;
        AuthenticationMethodConfig::Wpa2Personal(password)
    };
    Ok(StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(auth))
}

/// Keeps the station connected: reconnects after a disconnect, with a growing delay (1 s to
/// 30 s) after failed attempts.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>, ssid: &'static str) {
    const CONNECT_LIMIT: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_secs(1);
    loop {
        info!("Wi-Fi: connecting to \"{}\"", ssid);
        match with_timeout(CONNECT_LIMIT, controller.connect_async()).await {
            Ok(Ok(_)) => {
                info!("Wi-Fi: connected to \"{}\"", ssid);
                backoff = Duration::from_secs(1);
                match controller.wait_for_disconnect_async().await {
                    Ok(info) => warn!("Wi-Fi: disconnected: {}", Dbg(&info)),
                    Err(e) => warn!("Wi-Fi: disconnected: {}", Show(&e)),
                }
                Timer::after(Duration::from_secs(1)).await;
            }
            Ok(Err(e)) => {
                error!(
                    "Wi-Fi: could not connect: {}; retrying in {} s",
                    Show(&e),
                    backoff.as_secs()
                );
                Timer::after(backoff).await;
                backoff = Duration::from_secs((backoff.as_secs() * 2).min(30));
            }
            Err(_) => {
                error!(
                    "Wi-Fi: no connection after {} s; retrying",
                    CONNECT_LIMIT.as_secs()
                );
            }
        }
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// Waits for a link and a DHCP lease, saying so every few seconds rather than hanging silently.
async fn wait_for_network(stack: Stack<'_>) {
    if stack.is_config_up() {
        return;
    }
    let started = Instant::now();
    while with_timeout(NETWORK_WAIT_REPORT, stack.wait_config_up())
        .await
        .is_err()
    {
        warn!(
            "still waiting for Wi-Fi and a DHCP lease ({} s)",
            started.elapsed().as_secs()
        );
    }
    if let Some(config) = stack.config_v4() {
        info!("network up: address {}", Show(&config.address));
    }
}

/// Which step of one POST failed, and why.
enum Failure {
    DnsTimeout,
    Dns(embassy_net::dns::Error),
    NoAddress,
    Connect(ConnectFailure),
    TlsTimeout,
    Tls(TlsError),
    Certificate(CertError),
    Http(rawpost::Error<TlsError>),
}

#[derive(Debug)]
enum ConnectFailure {
    Refused(ConnectError),
    TimedOut,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DnsTimeout => write!(f, "DNS lookup of {HOST_NAME} timed out"),
            Self::Dns(e) => write!(f, "DNS lookup of {HOST_NAME} failed: {e:?}"),
            Self::NoAddress => write!(f, "DNS lookup of {HOST_NAME} returned no IPv4 address"),
            Self::Connect(ConnectFailure::Refused(e)) => write!(
                f,
                "TCP connect to {HOST_NAME}:{PORT} failed {CONNECT_TRIES} times, last: {e:?}"
            ),
            Self::Connect(ConnectFailure::TimedOut) => write!(
                f,
                "TCP connect to {HOST_NAME}:{PORT} failed {CONNECT_TRIES} times, last: timed out"
            ),
            Self::TlsTimeout => write!(f, "TLS handshake with {HOST_NAME} timed out"),
            Self::Tls(e) => write!(f, "TLS handshake with {HOST_NAME} failed: {e} ({e:?})"),
            Self::Certificate(e) => write!(
                f,
                "TLS certificate of {HOST_NAME} refused: {e} (replace examples/esp32-common/root-ca.pem with the root CA of {HOST_NAME}'s chain)"
            ),
            Self::Http(e) => write!(f, "HTTP exchange failed: {e} [{}]", e.name()),
        }
    }
}

/// One POST, from the DNS lookup to the closed TLS session.
async fn post_once(
    stack: Stack<'_>,
    trng: &mut Trng,
    bufs: &mut Buffers,
    seq: u32,
) -> Result<(), Failure> {
    let addresses = with_timeout(DNS_TIMEOUT, stack.dns_query(HOST.name(), DnsQueryType::A))
        .await
        .map_err(|_| Failure::DnsTimeout)?
        .map_err(Failure::Dns)?;
    let address: IpAddress = *addresses.first().ok_or(Failure::NoAddress)?;
    info!("POST #{}: {} is {}", seq, HOST_NAME, Show(&address));

    let mut socket = TcpSocket::new(stack, &mut bufs.tcp_rx, &mut bufs.tcp_tx);
    socket.set_timeout(Some(SOCKET_TIMEOUT));
    connect(&mut socket, address)
        .await
        .map_err(Failure::Connect)?;

    let anchor_der = match TrustAnchor::from_pem(ROOT_CA_PEM.as_bytes(), &mut bufs.anchor) {
        Ok(anchor) => anchor.der(),
        Err(e) => return Err(Failure::Certificate(e)),
    };
    let opened = with_timeout(
        TLS_HANDSHAKE_TIMEOUT,
        open_tls(
            socket,
            HOST,
            (&mut bufs.tls_rx, &mut bufs.tls_tx),
            &mut bufs.http,
            anchor_der,
            trng,
            &mut bufs.signatures,
        ),
    )
    .await;
    let conn = match opened {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(Failure::TlsTimeout),
    };

    // Default deadlines: 10 s to the first response byte, 5 s between reads, 30 s in all.
    let mut conn = conn.timed(EmbassyTimer, Timeouts::default());
    let result = exchange(&mut conn, &mut bufs.body, seq).await;
    hang_up(conn.into_inner()).await;
    result
}

/// The HTTP exchange: the JSON body serialized into rawpost's buffer, then the status and the
/// body printed.
async fn exchange(
    conn: &mut Connection<'_, Tls<'_>, EmbassyTimer>,
    body: &mut [u8],
    seq: u32,
) -> Result<(), Failure> {
    let reading = Reading {
        device: CHIP,
        seq,
        uptime_ms: Instant::now().as_millis(),
        message: "hello from rawpost",
    };
    let request = Request::post(PATH).headers(&[
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "rawpost-esp32/0.1"),
        ("Connection", "close"),
    ]);
    let mut response = conn
        .send_with(&request, |buf| serde_json_core::to_slice(&reading, buf))
        .await
        .map_err(Failure::Http)?;
    let status = response.status();
    let n = response.read_to_end(body).await.map_err(Failure::Http)?;
    info!(
        "POST #{}: HTTP {} {}, {} body bytes",
        seq,
        status,
        response.reason(),
        n
    );
    match core::str::from_utf8(&body[..n]) {
        Ok(text) => info!("{}", text),
        Err(_) => info!("(the body is not UTF-8)"),
    }
    Ok(())
}

/// Ends the session, whatever happened: TLS close_notify, then a TCP FIN, within 2 s, so the
/// server is not left with a half-open connection (dropping an embassy-net socket sends
/// nothing). Errors are ignored: the server may already have closed its side.
async fn hang_up(tls: Tls<'_>) {
    let _ = with_timeout(Duration::from_secs(2), async {
        let mut socket = match tls.close().await {
            Ok(socket) | Err((socket, _)) => socket,
        };
        socket.close();
        let _ = socket.flush().await;
    })
    .await;
}

/// Connects the socket: [`CONNECT_TRIES`] attempts, [`CONNECT_BACKOFF`] apart, each bounded.
async fn connect(socket: &mut TcpSocket<'_>, address: IpAddress) -> Result<(), ConnectFailure> {
    let mut attempt = 1;
    loop {
        let failure = match with_timeout(CONNECT_TIMEOUT, socket.connect((address, PORT))).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => ConnectFailure::Refused(e),
            Err(_) => ConnectFailure::TimedOut,
        };
        // Back to the closed state, so the next attempt can start from scratch.
        socket.abort();
        if attempt >= CONNECT_TRIES {
            return Err(failure);
        }
        warn!(
            "TCP connect {}/{} failed: {}; next try in {} ms",
            attempt,
            CONNECT_TRIES,
            Dbg(&failure),
            CONNECT_BACKOFF.as_millis()
        );
        attempt += 1;
        Timer::after(CONNECT_BACKOFF).await;
    }
}

type Tls<'a> = TlsConnection<'a, TcpSocket<'a>, Aes128GcmSha256>;

/// Opens TLS 1.3 over the connected socket with rawpost's pinned-CA verifier, and returns the
/// HTTP connection over it. The server name (SNI) and the `Host` header both come from `host`.
async fn open_tls<'a>(
    socket: TcpSocket<'a>,
    host: Host<'a>,
    tls_bufs: (&'a mut [u8], &'a mut [u8]),
    http_buf: &'a mut [u8],
    anchor_der: &'a [u8],
    trng: &mut Trng,
    signatures: &mut SignatureCache<4>,
) -> Result<Connection<'a, Tls<'a>>, Failure> {
    let anchor = TrustAnchor::from_der(anchor_der).map_err(Failure::Certificate)?;
    // No clock on the board: validity dates are checked as of the server certificate's
    // issuance (see the README); give `with_clock` an SNTP-backed clock to check them for real.
    let mut provider = PinnedProvider::new(trng, anchor).with_signature_cache(signatures);
    let tls = TlsConnection::new(socket, tls_bufs.0, tls_bufs.1);
    rawpost::tls::connect(tls, host, &mut provider, http_buf)
        .await
        .map_err(|e| match e {
            OpenError::Certificate(error) => {
                if let Some(why) = provider.explain() {
                    error!("certificate refused: {}", Show(&why));
                }
                Failure::Certificate(error)
            }
            OpenError::Handshake(e) => Failure::Tls(e),
        })
}
