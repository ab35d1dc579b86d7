//! The firmware shared by the ESP32-C3 and ESP32-C6 examples: join a Wi-Fi network, get the
//! time by SNTP (or fall back to the build time), resolve the host (or use the address given),
//! open TCP (bounded retries), open TLS 1.3 with the server name taken from the same
//! `rawpost::Host` as the `Host` header, POST a JSON body serialized straight into rawpost's
//! buffer, print the status and the body, and do it again a minute later — on the same TLS
//! session for as long as the server keeps it: `rawpost::Client` keeps the connection and opens
//! a new one when the server has closed it (its keep-alive timeout), sending the reading again
//! when that is safe.
//!
//! Each chip's `src/main.rs` sets the crate attributes and `CHIP`, then includes this file as a
//! module. Configuration is read at build time (see the README, "On an ESP32"):
//!
//! | variable | default |
//! |---|---|
//! | `RAWPOST_WIFI_SSID` | none: the firmware says so at run time and waits |
//! | `RAWPOST_WIFI_PASSWORD` | none (set it to an empty string for an open network) |
//! | `RAWPOST_HOST` | `api.example.test` (the committed test PKI's name) |
//! | `RAWPOST_ADDRESS` | none: look the host up in DNS; an IPv4 address connects there instead, with the host name still the TLS server name and `Host` |
//! | `RAWPOST_PATH` | `/post` |
//! | `RAWPOST_PORT` | `8443` (`cargo post -- --serve 0.0.0.0:8443`) |
//! | `RAWPOST_NTP_SERVER` | `pool.ntp.org` |
//!
//! Every failure ends in one printed line that says which step failed and why, then a retry
//! after a delay. Nothing here panics on a network or server fault.

use core::fmt;
use core::ops::ControlFlow;

use embassy_executor::Spawner;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{ConnectError, State as TcpState, TcpSocket};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, Ipv4Address, Runner, Stack, StackResources};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use embedded_tls::Aes128GcmSha256;
use esp_hal::clock::CpuClock;
use esp_hal::ram;
use esp_hal::rng::Trng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig, Interface, Password, Ssid,
    WifiController,
};
use rawpost::tls::{
    Clock, OpenError, PinnedProvider, SignatureCache, TimeSource, TimeUsed, TlsStream, TrustAnchor,
};
use rawpost::{
    Attempt, Client, ClientError, Connect, Connection, EmbassyTimer, Exchange, Host, Request,
    Timeouts,
};
use serde::Serialize;
use static_cell::{ConstStaticCell, StaticCell};

use esp_backtrace as _;
#[cfg(feature = "defmt")]
use esp_println as _;

use super::CHIP;

#[cfg(all(feature = "println", feature = "defmt"))]
compile_error!("build the defmt firmware with `--no-default-features --features defmt` (README, \"On an ESP32\", \"Flash and monitor\")");
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
const HOST_NAME: &str = env_or(option_env!("RAWPOST_HOST"), "api.example.test");
const PATH: &str = env_or(option_env!("RAWPOST_PATH"), "/post");
const PORT: u16 = parse_port(option_env!("RAWPOST_PORT"));
/// Where to connect instead of the host's DNS address: an IPv4 address (the computer running
/// `cargo post -- --serve 0.0.0.0:8443`). The TLS server name and the `Host`
/// header stay `HOST_NAME`.
const ADDRESS: Option<&str> = match option_env!("RAWPOST_ADDRESS") {
    Some(a) if !a.is_empty() => Some(a),
    _ => None,
};
const NTP_SERVER: &str = env_or(option_env!("RAWPOST_NTP_SERVER"), "pool.ntp.org");
/// When this firmware was built (Unix seconds, from `build.rs`): a time known to have passed.
/// Certificate dates are checked against it while SNTP has not answered.
const BUILD_TIME: u64 = parse_u64(env!("RAWPOST_BUILD_TIME"));

/// The one host value: the `Host` header and the TLS server name (SNI) both come from it. The
/// port is written into the `Host` header only when it is not the default 443 (the default
/// here is the demo server's 8443).
const HOST: Host<'static> = if PORT == 443 {
    Host::new(HOST_NAME)
} else {
    Host::new(HOST_NAME).with_port(PORT)
};

/// The root certificate the server's chain must end in. The committed one is the TEST-ONLY
/// root of `cargo post -- --serve` (see the README to replace it).
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
/// One SNTP exchange (DNS lookup included) may take this long.
const SNTP_TIMEOUT: Duration = Duration::from_secs(5);
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

/// A decimal number known at build time.
const fn parse_u64(digits: &str) -> u64 {
    let digits = digits.as_bytes();
    let mut value: u64 = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit(), "not a number");
        value = value * 10 + (digits[i] - b'0') as u64;
        i += 1;
    }
    value
}

/// `RAWPOST_PORT` as a number; a value that is not one fails the build, not the device.
const fn parse_port(value: Option<&str>) -> u16 {
    let digits = match value {
        Some(v) if !v.is_empty() => v.as_bytes(),
        _ => return 8443,
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
    /// Certificate signatures already verified: a new TLS session (after the server closed the
    /// last one) verifies the server's chain again (dates, names, constraints) but not the
    /// signatures it verified before (the root's on the intermediate, the intermediate's on
    /// the leaf).
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
const TLS_HANDSHAKE_STACK: usize = 19_732;

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
    let address = match ADDRESS.map(|a| a.parse::<Ipv4Address>()) {
        None => None,
        Some(Ok(address)) => {
            info!(
                "connecting to {} (RAWPOST_ADDRESS) as {}",
                Show(&address),
                HOST_NAME
            );
            Some(IpAddress::Ipv4(address))
        }
        Some(Err(_)) => {
            idle_forever("RAWPOST_ADDRESS is not an IPv4 address (e.g. 192.168.1.23)").await
        }
    };
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
    let trng = match Trng::try_new() {
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
    let anchor = match TrustAnchor::from_pem(ROOT_CA_PEM.as_bytes(), &mut bufs.anchor) {
        Ok(anchor) => anchor,
        Err(e) => idle_forever(e.message()).await,
    };
    info!("pinned root CA: {} bytes of DER", anchor.der().len());
    info!(
        "main stack: {} bytes (the TLS handshake needs {} with the margin)",
        main_stack_size(),
        MAIN_STACK_NEEDED
    );
    // Certificate dates: the SNTP time once there is one, the build time until then. The
    // signature cache spares each new session the signatures it verified before.
    let time = TimeSource::clock(DeviceClock::default()).with_floor(BUILD_TIME);
    let provider =
        PinnedProvider::new(trng, anchor, time).with_signature_cache(&mut bufs.signatures);
    let mut socket = TcpSocket::new(stack, &mut bufs.tcp_rx, &mut bufs.tcp_tx);
    socket.set_timeout(Some(SOCKET_TIMEOUT));
    let net = Net {
        stack,
        address,
        socket,
        tls_rx: &mut bufs.tls_rx,
        tls_tx: &mut bufs.tls_tx,
        provider,
        opened: 0,
    };
    // Default deadlines for each exchange: 10 s to the first response byte, 5 s between reads,
    // 30 s in all. Opening a connection is bounded step by step by `Net` itself.
    let mut client = Client::new(net, &mut bufs.http, HOST)
        .timed(EmbassyTimer, Timeouts::default())
        .connect_timeout(None);
    let mut report = Report {
        seq: 0,
        body: &mut bufs.body,
    };
    loop {
        wait_for_network(stack).await;
        // Returns only on a failure that reconnecting or resending could not mend.
        let failure = match client.run(&mut report).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        match failure {
            ClientError::Connect(e) => error!("POST #{}: {}", report.seq, Show(&e)),
            ClientError::Exchange(e) => error!(
                "POST #{}: HTTP exchange failed: {} [{}]",
                report.seq,
                Show(&e),
                e.name()
            ),
            other => error!("POST #{}: {}", report.seq, Show(&other)),
        }
        client.connector().hang_up().await;
        info!("trying again in {} s", RETRY_DELAY.as_secs());
        Timer::after(RETRY_DELAY).await;
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

/// Which step of opening a connection failed, and why.
#[derive(Debug)]
enum Failure {
    DnsTimeout,
    Dns(embassy_net::dns::Error),
    NoAddress,
    Connect(ConnectFailure),
    TlsTimeout,
    Tls(OpenError),
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
            Self::Tls(e @ OpenError::Certificate { .. }) => write!(
                f,
                "{e} (the pinned root is examples/esp32-common/root-ca.pem, built in)"
            ),
            Self::Tls(e) => write!(f, "{e}"),
        }
    }
}

/// Opens the connections `rawpost::Client` keeps: a DNS lookup (unless `RAWPOST_ADDRESS` is
/// set), TCP on the one socket with bounded retries, then TLS 1.3 through `rawpost::tls::open`
/// (server name from the same `Host` as the header, the chain checked against the pinned root).
/// Each step is bounded, and a failure names its step.
struct Net<'b> {
    stack: Stack<'b>,
    address: Option<IpAddress>,
    socket: TcpSocket<'b>,
    tls_rx: &'b mut [u8],
    tls_tx: &'b mut [u8],
    provider: PinnedProvider<'b, Trng, DeviceClock>,
    /// Connections opened so far.
    opened: u32,
}

type Tls<'c, 'b> = TlsStream<'c, &'c mut TcpSocket<'b>, Aes128GcmSha256>;

impl<'b> Net<'b> {
    /// The clock the certificate dates are checked against.
    fn clock(&mut self) -> &mut DeviceClock {
        self.provider.time_source_mut().clock_mut()
    }

    /// Ends the TCP connection, whatever state it is in: a FIN within a second, then back to
    /// the closed state (dropping or reusing an embassy-net socket sends nothing by itself).
    /// Errors are ignored: the server may have closed its side already.
    async fn hang_up(&mut self) {
        if self.socket.state() != TcpState::Closed {
            self.socket.close();
            let _ = with_timeout(Duration::from_secs(1), self.socket.flush()).await;
            self.socket.abort();
        }
    }
}

impl<'b> Connect for Net<'b> {
    type StreamError = rawpost::tls::SessionError;
    type Stream<'c>
        = Tls<'c, 'b>
    where
        Self: 'c;
    type Error = Failure;

    async fn connect(&mut self, host: Host<'_>) -> Result<Tls<'_, 'b>, Failure> {
        // Certificate dates are checked in the handshake: the time is needed now. SNTP is asked
        // before each new connection until it answers (the build time is the floor until then).
        if !self.clock().is_synced() {
            let stack = self.stack;
            sync_time(stack, self.clock()).await;
        }
        let address = match self.address {
            Some(address) => address,
            None => {
                let addresses = with_timeout(
                    DNS_TIMEOUT,
                    self.stack.dns_query(host.name(), DnsQueryType::A),
                )
                .await
                .map_err(|_| Failure::DnsTimeout)?
                .map_err(Failure::Dns)?;
                let address: IpAddress = *addresses.first().ok_or(Failure::NoAddress)?;
                info!("{} is {}", HOST_NAME, Show(&address));
                address
            }
        };
        // The last connection (the server closed it, or an exchange failed) ends first.
        self.hang_up().await;
        connect(&mut self.socket, address)
            .await
            .map_err(Failure::Connect)?;
        self.opened += 1;
        let opened = with_timeout(
            TLS_HANDSHAKE_TIMEOUT,
            rawpost::tls::open(
                &mut self.socket,
                &mut *self.tls_rx,
                &mut *self.tls_tx,
                host,
                &mut self.provider,
            ),
        )
        .await;
        match self.provider.last_time() {
            Some(TimeUsed::Clock(t)) => info!("certificate dates checked against SNTP time {}", t),
            Some(TimeUsed::Floor(t)) => warn!(
                "certificate dates checked against the build time {} (no SNTP time): a certificate that expired after it is not detected",
                t
            ),
            Some(TimeUsed::NotChecked(_)) | None => {}
        }
        match opened {
            Ok(Ok(session)) => {
                info!("connection #{}: TLS 1.3 to {} open", self.opened, HOST_NAME);
                Ok(session)
            }
            Ok(Err(e)) => Err(Failure::Tls(e)),
            Err(_) => Err(Failure::TlsTimeout),
        }
    }
}

/// What the firmware does over the kept connection, each time `Client::run` calls it: one
/// reading POSTed as JSON (serialized by serde-json-core straight into rawpost's buffer), the
/// answer printed, then a wait until the next one.
struct Report<'b> {
    seq: u32,
    body: &'b mut [u8],
}

impl<C: Connect, T: rawpost::Timer> Exchange<C, T> for Report<'_> {
    type Output = core::convert::Infallible;

    async fn exchange<'s>(
        &mut self,
        conn: &mut Connection<'_, C::Stream<'s>, &mut T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<Self::Output>, rawpost::Error<C::StreamError>>
    where
        C: 's,
    {
        match attempt {
            Attempt::New => self.seq = self.seq.wrapping_add(1),
            // The server had closed the kept connection: the same reading, on a new one.
            Attempt::Resend => info!("POST #{}: sent again on a new connection", self.seq),
        }
        let reading = Reading {
            device: CHIP,
            seq: self.seq,
            uptime_ms: Instant::now().as_millis(),
            message: "hello from rawpost",
        };
        // A reading carries its sequence number, so a server that sees it twice can drop the
        // second: safe to send again automatically (RFC 9112 §9.3.1), hence `idempotent`.
        let request = Request::post(PATH)
            .headers(&[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
                ("User-Agent", "rawpost-esp32/0.1"),
            ])
            .idempotent();
        let mut response = conn
            .send_with(&request, |buf| serde_json_core::to_slice(&reading, buf))
            .await?;
        let status = response.status();
        let n = response.read_to_end(self.body).await?;
        info!(
            "POST #{}: HTTP {} {}, {} body bytes",
            self.seq,
            status,
            response.reason(),
            n
        );
        match core::str::from_utf8(&self.body[..n]) {
            Ok(text) => info!("{}", text),
            Err(_) => info!("(the body is not UTF-8)"),
        }
        info!(
            "next POST in {} s, on this connection while the server keeps it",
            POST_INTERVAL.as_secs()
        );
        Timer::after(POST_INTERVAL).await;
        Ok(ControlFlow::Continue(()))
    }
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

// ---------------------------------------------------------------------------------------------
// Time: SNTP over embassy-net UDP, kept with the monotonic timer.

/// The Unix time from the last SNTP answer, and the uptime it was received at.
#[derive(Clone, Copy, Default)]
struct DeviceClock {
    synced: Option<(u64, Instant)>,
}

impl DeviceClock {
    fn is_synced(&self) -> bool {
        self.synced.is_some()
    }
}

impl Clock for DeviceClock {
    fn now(&self) -> Option<u64> {
        self.synced.map(|(unix, at)| unix + at.elapsed().as_secs())
    }
}

/// Asks `NTP_SERVER` for the time (bounded by `SNTP_TIMEOUT`) and says which time certificate
/// dates will be checked against.
async fn sync_time(stack: Stack<'_>, clock: &mut DeviceClock) {
    match with_timeout(SNTP_TIMEOUT, sntp_time(stack)).await {
        Ok(Ok(unix)) => {
            clock.synced = Some((unix, Instant::now()));
            info!("time: {} (Unix seconds) from SNTP server {}", unix, NTP_SERVER);
        }
        Ok(Err(why)) => warn!(
            "time: SNTP via {} failed ({}); certificate dates are checked against the build time {} until it answers",
            NTP_SERVER, why, BUILD_TIME
        ),
        Err(_) => warn!(
            "time: no SNTP answer from {} within {} s; certificate dates are checked against the build time {} until it answers",
            NTP_SERVER,
            SNTP_TIMEOUT.as_secs(),
            BUILD_TIME
        ),
    }
}

/// One SNTP exchange: the server's transmit time, in Unix seconds.
async fn sntp_time(stack: Stack<'_>) -> Result<u64, &'static str> {
    let server = match NTP_SERVER.parse::<Ipv4Address>() {
        Ok(address) => address,
        Err(_) => {
            let addresses = stack
                .dns_query(NTP_SERVER, DnsQueryType::A)
                .await
                .map_err(|_| "DNS lookup failed")?;
            match addresses.first() {
                Some(IpAddress::Ipv4(address)) => *address,
                _ => return Err("no IPv4 address"),
            }
        }
    };
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 1], [PacketMetadata::EMPTY; 1]);
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket.bind(0).map_err(|_| "no UDP port")?;
    let socket = SntpSocket(socket);
    let context = sntpc::NtpContext::new(Uptime::default());
    let server = core::net::SocketAddr::from((server, 123));
    let result = sntpc::get_time(server, &socket, context)
        .await
        .map_err(|_| "no valid answer")?;
    Ok(u64::from(result.sec()))
}

/// embassy-net's UDP socket for sntpc.
struct SntpSocket<'a>(UdpSocket<'a>);

impl sntpc::NtpUdpSocket for SntpSocket<'_> {
    async fn send_to(&self, buf: &[u8], addr: core::net::SocketAddr) -> sntpc::Result<usize> {
        let core::net::SocketAddr::V4(addr) = addr else {
            return Err(sntpc::Error::Network);
        };
        self.0
            .send_to(buf, addr)
            .await
            .map_err(|_| sntpc::Error::Network)?;
        Ok(buf.len())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> sntpc::Result<(usize, core::net::SocketAddr)> {
        let (n, meta) = self
            .0
            .recv_from(buf)
            .await
            .map_err(|_| sntpc::Error::Network)?;
        Ok((n, meta.endpoint.into()))
    }
}

/// sntpc's request timestamps: the uptime (only differences matter for the round trip; the
/// answer's transmit time is the server's clock).
#[derive(Clone, Copy, Default)]
struct Uptime(u64);

impl sntpc::NtpTimestampGenerator for Uptime {
    fn init(&mut self) {
        self.0 = Instant::now().as_micros();
    }

    fn timestamp_sec(&self) -> u64 {
        self.0 / 1_000_000
    }

    fn timestamp_subsec_micros(&self) -> u32 {
        (self.0 % 1_000_000) as u32
    }
}
