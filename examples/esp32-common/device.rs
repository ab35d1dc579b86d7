//! The parts of the ESP32 firmware that do not depend on the TLS stack, shared by the
//! embedded-tls firmware (`firmware.rs`, for the ESP32-C3 and ESP32-C6 examples) and the
//! mbedtls-rs firmware (`examples/esp32c3-mbedtls`): logging, the build-time configuration,
//! Wi-Fi and the network stack, DNS and TCP with bounded retries, SNTP, and what is done over
//! the kept connection — the JSON POST, through rawpost's `Client`, `Connection` and `Request`
//! (the one place those are used). Each firmware includes this file as a module
//! (`#[macro_use] mod device;`) and adds its TLS session: a `Connect` built on [`Tcp`], which
//! it hands to [`post_forever`].

use core::fmt;
use core::ops::ControlFlow;

use embassy_executor::Spawner;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::{ConnectError, State as TcpState, TcpSocket};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpAddress, Ipv4Address, Runner, Stack, StackResources};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use esp_hal::rng::Trng;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig, Interface, Password, Ssid,
    WifiController,
};
use rawpost::{
    Attempt, Client, ClientError, Connect, Connection, EmbassyTimer, Exchange, Host, Request,
    Timeouts,
};
use serde::Serialize;
use static_cell::StaticCell;

use super::CHIP;

#[cfg(all(feature = "println", feature = "defmt"))]
compile_error!("build the defmt firmware with `--no-default-features --features defmt` (README, \"On an ESP32\", \"Flash and monitor\")");
#[cfg(not(any(feature = "println", feature = "defmt")))]
compile_error!("enable one of the features `println` (the default) or `defmt`");

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
pub struct Show<'a, T: ?Sized>(pub &'a T);

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
pub struct Dbg<'a, T: ?Sized>(pub &'a T);

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

pub const WIFI_SSID: Option<&str> = option_env!("RAWPOST_WIFI_SSID");
pub const WIFI_PASSWORD: Option<&str> = option_env!("RAWPOST_WIFI_PASSWORD");
pub const HOST_NAME: &str = env_or(option_env!("RAWPOST_HOST"), "api.example.test");
pub const PATH: &str = env_or(option_env!("RAWPOST_PATH"), "/post");
pub const PORT: u16 = parse_port(option_env!("RAWPOST_PORT"));
/// Where to connect instead of the host's DNS address: an IPv4 address (the computer running
/// `cargo post -- --serve 0.0.0.0:8443`). The TLS server name and the `Host`
/// header stay `HOST_NAME`.
pub const ADDRESS: Option<&str> = match option_env!("RAWPOST_ADDRESS") {
    Some(a) if !a.is_empty() => Some(a),
    _ => None,
};
pub const NTP_SERVER: &str = env_or(option_env!("RAWPOST_NTP_SERVER"), "pool.ntp.org");
/// When this firmware was built (Unix seconds, from `build.rs`): a time known to have passed.
/// Certificate dates are checked against it while SNTP has not answered.
pub const BUILD_TIME: u64 = parse_u64(env!("RAWPOST_BUILD_TIME"));

/// The one host value: the `Host` header and the TLS server name (SNI) both come from it. The
/// port is written into the `Host` header only when it is not the default 443 (the default
/// here is the demo server's 8443).
pub const HOST: Host<'static> = if PORT == 443 {
    Host::new(HOST_NAME)
} else {
    Host::new(HOST_NAME).with_port(PORT)
};

/// The root certificate the server's chain must end in. The committed one is the TEST-ONLY
/// root of `cargo post -- --serve` (see the README to replace it).
pub const ROOT_CA_PEM: &str = include_str!("root-ca.pem");

/// TCP connect: this many attempts, this long apart (the story's hand-written code: 10 × 500 ms).
pub const CONNECT_TRIES: u32 = 10;
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(500);
/// One TCP connect attempt may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The TCP socket gives up when the peer acknowledges nothing for this long.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(15);
pub const DNS_TIMEOUT: Duration = Duration::from_secs(10);
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// One SNTP exchange (DNS lookup included) may take this long.
pub const SNTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the firmware says it is still waiting for Wi-Fi and DHCP.
pub const NETWORK_WAIT_REPORT: Duration = Duration::from_secs(15);
/// Between two successful POSTs.
pub const POST_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed POST.
pub const RETRY_DELAY: Duration = Duration::from_secs(10);
/// Between two reminders when the firmware cannot go on (missing credentials, …).
pub const IDLE_REPORT: Duration = Duration::from_secs(30);

pub const fn env_or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => default,
    }
}

/// A decimal number known at build time.
pub const fn parse_u64(digits: &str) -> u64 {
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
pub const fn parse_port(value: Option<&str>) -> u16 {
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

pub const fn parse_size(digits: &str) -> usize {
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
pub fn main_stack_size() -> usize {
    extern "C" {
        static _stack_start_cpu0: u8;
        static _stack_end_cpu0: u8;
    }
    (&raw const _stack_start_cpu0) as usize - (&raw const _stack_end_cpu0) as usize
}

/// The JSON body, serialized by serde-json-core straight into rawpost's buffer.
#[derive(Serialize)]
pub struct Reading<'a> {
    device: &'a str,
    seq: u32,
    uptime_ms: u64,
    message: &'a str,
}

// ---------------------------------------------------------------------------------------------
// Start: Wi-Fi and the network stack

/// Says what the firmware will do, joins the Wi-Fi network given at build time (in a task that
/// keeps it joined) and starts the network stack (DHCP): the stack, the TRNG (for TLS), and
/// the address to connect to instead of DNS, if `RAWPOST_ADDRESS` gives one. Waits forever,
/// saying why, when it cannot (credentials missing, the Wi-Fi driver failing).
pub async fn start_network(
    spawner: Spawner,
    wifi: esp_hal::peripherals::WIFI<'static>,
) -> (Stack<'static>, Trng, Option<IpAddress>) {
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
        wifi,
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
    (stack, trng, address)
}

/// The TLS part of a firmware's connector can end its TCP connection (see [`Tcp::hang_up`]).
#[allow(async_fn_in_trait)]
pub trait HangUp {
    async fn hang_up(&mut self);
}

impl<T: HangUp> HangUp for &mut T {
    async fn hang_up(&mut self) {
        T::hang_up(self).await
    }
}

/// POSTs a reading every minute for ever over `net`'s connections: rawpost's `Client` keeps
/// one open and opens a new one when the server has closed it. Every failure is printed, then
/// tried again after [`RETRY_DELAY`]. Pass the connector by `&mut`: it then stays in the
/// caller's future instead of being moved into this one (which would hold it twice).
pub async fn post_forever<C>(stack: Stack<'_>, net: C, http: &mut [u8], body: &mut [u8]) -> !
where
    C: Connect + HangUp,
    C::Error: fmt::Display,
{
    // Default deadlines for each exchange: 10 s to the first response byte, 5 s between reads,
    // 30 s in all. Opening a connection is bounded step by step by the connector itself.
    let mut client = Client::new(net, http, HOST)
        .timed(EmbassyTimer, Timeouts::default())
        .connect_timeout(None);
    let mut report = Report { seq: 0, body };
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
                "POST #{}: HTTP exchange failed: {} [{}]; {}",
                report.seq,
                Show(&e),
                e.name(),
                if e.may_have_been_processed() {
                    "the server may have it"
                } else {
                    "it did not reach the server"
                }
            ),
            other => error!("POST #{}: {}", report.seq, Show(&other)),
        }
        client.connector().hang_up().await;
        info!("trying again in {} s", RETRY_DELAY.as_secs());
        Timer::after(RETRY_DELAY).await;
    }
}

/// Says why the firmware cannot go on, again and again, without spinning or panicking.
pub async fn idle_forever(why: &str) -> ! {
    loop {
        error!("{}", why);
        Timer::after(IDLE_REPORT).await;
    }
}

pub fn station_config(ssid: &str, password: &str) -> Result<StationConfig, &'static str> {
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
pub async fn wait_for_network(stack: Stack<'_>) {
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

// ---------------------------------------------------------------------------------------------
// Opening a connection: DNS and TCP here, TLS in each firmware

/// Which step of opening a connection failed, and why; `E` is the TLS stack's failure.
#[derive(Debug)]
pub enum Failure<E> {
    DnsTimeout,
    Dns(embassy_net::dns::Error),
    NoAddress,
    Connect(ConnectFailure),
    TlsTimeout,
    Tls(E),
}

#[derive(Debug)]
pub enum ConnectFailure {
    Refused(ConnectError),
    TimedOut,
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
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
            Self::Tls(e) => write!(f, "{e}"),
        }
    }
}

/// The TCP half of a connector: a DNS lookup (unless `RAWPOST_ADDRESS` is set), then TCP on
/// the one socket with bounded retries. Each step is bounded, and a failure names its step.
pub struct Tcp<'b> {
    pub stack: Stack<'b>,
    pub address: Option<IpAddress>,
    pub socket: TcpSocket<'b>,
    /// Connections opened so far.
    pub opened: u32,
}

impl<'b> Tcp<'b> {
    /// The one socket, over `rx` and `tx`, with [`SOCKET_TIMEOUT`].
    pub fn new(
        stack: Stack<'b>,
        address: Option<IpAddress>,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
    ) -> Self {
        let mut socket = TcpSocket::new(stack, rx, tx);
        socket.set_timeout(Some(SOCKET_TIMEOUT));
        Self {
            stack,
            address,
            socket,
            opened: 0,
        }
    }

    /// Resolves `host` (or takes `RAWPOST_ADDRESS`), ends the last connection and opens a new
    /// one.
    pub async fn open<E>(&mut self, host: Host<'_>) -> Result<(), Failure<E>> {
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
        Ok(())
    }

    /// Ends the TCP connection, whatever state it is in: a FIN within a second, then back to
    /// the closed state (dropping or reusing an embassy-net socket sends nothing by itself).
    /// Errors are ignored: the server may have closed its side already.
    pub async fn hang_up(&mut self) {
        if self.socket.state() != TcpState::Closed {
            self.socket.close();
            let _ = with_timeout(Duration::from_secs(1), self.socket.flush()).await;
            self.socket.abort();
        }
    }
}

/// What the firmware does over the kept connection, each time `Client::run` calls it: one
/// reading POSTed as JSON (serialized by serde-json-core straight into rawpost's buffer), the
/// answer printed, then a wait until the next one.
pub struct Report<'b> {
    seq: u32,
    body: &'b mut [u8],
}

impl Exchange for Report<'_> {
    type Output = core::convert::Infallible;

    async fn exchange<S, T>(
        &mut self,
        conn: &mut Connection<'_, S, T>,
        attempt: Attempt,
    ) -> Result<ControlFlow<Self::Output>, rawpost::Error<S::Error>>
    where
        S: embedded_io_async::Read + embedded_io_async::Write,
        T: rawpost::Timer,
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
            .with_headers(&[
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
pub struct DeviceClock {
    synced: Option<(u64, Instant)>,
}

impl DeviceClock {
    pub fn is_synced(&self) -> bool {
        self.synced.is_some()
    }

    /// The Unix time now, once SNTP has answered.
    pub fn now(&self) -> Option<u64> {
        self.synced.map(|(unix, at)| unix + at.elapsed().as_secs())
    }
}

/// Asks `NTP_SERVER` for the time (bounded by `SNTP_TIMEOUT`) and says which time certificate
/// dates will be checked against.
pub async fn sync_time(stack: Stack<'_>, clock: &mut DeviceClock) {
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
