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
//! module. What does not depend on the TLS stack (Wi-Fi, DNS, TCP, SNTP, the POST itself) is in
//! `device.rs`, shared with the mbedtls-rs firmware (`examples/esp32c3-mbedtls`); this file adds
//! embedded-tls through `rawpost::tls`. Configuration is read at build time (see the README,
//! "On an ESP32"):
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

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::with_timeout;
use embedded_tls::Aes128GcmSha256;
use esp_hal::clock::CpuClock;
use esp_hal::ram;
use esp_hal::rng::Trng;
use esp_hal::timer::timg::TimerGroup;
use rawpost::tls::{
    Clock, OpenError, PinnedProvider, SignatureCache, TimeSource, TimeUsed, TlsStream, TrustAnchor,
};
use rawpost::{Connect, Host};
use static_cell::ConstStaticCell;

use esp_backtrace as _;
#[cfg(feature = "defmt")]
use esp_println as _;

use super::CHIP;

#[macro_use]
#[path = "device.rs"]
mod device;
use device::*;

esp_bootloader_esp_idf::esp_app_desc!();

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
const TLS_HANDSHAKE_STACK: usize = 19_684;

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

// ---------------------------------------------------------------------------------------------

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // esp-radio allocates its buffers from this heap; rawpost and the TLS session do not.
    esp_alloc::heap_allocator!(#[ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let (stack, trng, address) = start_network(spawner, peripherals.WIFI).await;

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
    let mut net = Net {
        tcp: Tcp::new(stack, address, &mut bufs.tcp_rx, &mut bufs.tcp_tx),
        tls_rx: &mut bufs.tls_rx,
        tls_tx: &mut bufs.tls_tx,
        provider,
    };
    post_forever(stack, &mut net, &mut bufs.http, &mut bufs.body).await
}

// ---------------------------------------------------------------------------------------------
// TLS 1.3 through `rawpost::tls` (embedded-tls)

/// Certificate dates are checked against the SNTP time (`rawpost::tls::Clock`).
impl Clock for DeviceClock {
    fn now(&self) -> Option<u64> {
        DeviceClock::now(self)
    }
}

/// Why the TLS session could not be opened, as rawpost explains it.
#[derive(Debug)]
struct Refusal(OpenError);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            e @ OpenError::Certificate { .. } => write!(
                f,
                "{e} (the pinned root is examples/esp32-common/root-ca.pem, built in)"
            ),
            e => write!(f, "{e}"),
        }
    }
}

/// Opens the connections `rawpost::Client` keeps: DNS and TCP through [`Tcp`], then TLS 1.3
/// through `rawpost::tls::TlsStream::open` (server name from the same `Host` as the header, the chain
/// checked against the pinned root). Each step is bounded, and a failure names its step.
struct Net<'b> {
    tcp: Tcp<'b>,
    tls_rx: &'b mut [u8],
    tls_tx: &'b mut [u8],
    provider: PinnedProvider<'b, Trng, DeviceClock>,
}

type Tls<'c, 'b> = TlsStream<'c, &'c mut TcpSocket<'b>, Aes128GcmSha256>;

impl<'b> Net<'b> {
    /// The clock the certificate dates are checked against.
    fn clock(&mut self) -> &mut DeviceClock {
        self.provider.time_source_mut().clock_mut()
    }
}

impl HangUp for Net<'_> {
    async fn hang_up(&mut self) {
        self.tcp.hang_up().await
    }
}

impl<'b> Connect for Net<'b> {
    type StreamError = rawpost::tls::SessionError;
    type Stream<'c>
        = Tls<'c, 'b>
    where
        Self: 'c;
    type Error = Failure<Refusal>;

    async fn connect(&mut self, host: Host<'_>) -> Result<Tls<'_, 'b>, Failure<Refusal>> {
        // Certificate dates are checked in the handshake: the time is needed now. SNTP is asked
        // before each new connection until it answers (the build time is the floor until then).
        if !self.clock().is_synced() {
            let stack = self.tcp.stack;
            sync_time(stack, self.clock()).await;
        }
        self.tcp.open(host).await?;
        let opened = with_timeout(
            TLS_HANDSHAKE_TIMEOUT,
            rawpost::tls::TlsStream::open(
                &mut self.tcp.socket,
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
                info!(
                    "connection #{}: TLS 1.3 to {} open",
                    self.tcp.opened, HOST_NAME
                );
                Ok(session)
            }
            Ok(Err(e)) => Err(Failure::Tls(Refusal(e))),
            Err(_) => Err(Failure::TlsTimeout),
        }
    }
}
