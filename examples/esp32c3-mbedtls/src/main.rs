//! rawpost on the ESP32-C3 over mbedtls-rs: Wi-Fi → DHCP → DNS → TCP → TLS 1.3 or 1.2 (Mbed TLS
//! 3.6, as the server chooses) → JSON POST, every minute, on one TLS session for as long as the
//! server keeps it, a new one when it has closed it. The same job as `examples/esp32c3`
//! (embedded-tls), sharing its TLS-independent half, `../esp32-common/device.rs`: only the TLS
//! session differs (the [`Net`] connector below). See docs/tls-stacks.md for when to choose
//! which, and the README's "On an ESP32" for configuration (the same `RAWPOST_*` variables) and
//! flashing (`cargo run --release` here).
//!
//! - The pinned root is the same PEM (`../esp32-common/root-ca.pem`), parsed once at boot by
//!   Mbed TLS, which verifies the chain (signatures, basicConstraints, key usage), the server
//!   name and the validity dates (against the SNTP time, the build time until SNTP answers).
//! - SNI and the `Host` header come from one value, `device::HOST`.
//! - The SHA, RSA (big-number) and AES accelerators are hooked into Mbed TLS (the C3 has no ECC
//!   accelerator: ECDHE and ECDSA run in software).
//! - Mbed TLS allocates its record buffers (16 KiB in, 16 KiB out) and its state from the heap
//!   (esp-alloc, through `calloc`/`free`).
#![no_std]
#![no_main]

extern crate alloc;

/// The chip, printed at start and sent in the JSON body.
const CHIP: &str = "esp32c3";

#[macro_use]
#[path = "../../esp32-common/device.rs"]
mod device;
mod stream;

use core::ffi::CStr;
use core::fmt;

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{with_timeout, Instant};
use esp_hal::clock::CpuClock;
use esp_hal::ram;
use esp_hal::rng::Trng;
use esp_hal::timer::timg::TimerGroup;
use mbedtls_rs::sys::hook::backend::embassy::timer::EmbassyTimer;
use mbedtls_rs::sys::hook::backend::esp::EspAccel;
use mbedtls_rs::sys::hook::wall_clock::MbedtlsWallClock;
use mbedtls_rs::sys::{tm, MbedtlsError};
use mbedtls_rs::{
    Certificate, ClientSessionConfig, Session, SessionConfig, SessionError, Tls, TlsReference,
    TlsVersion, X509,
};
use rawpost::{Connect, Host};
use static_cell::{ConstStaticCell, StaticCell};

use device::*;
use stream::MbedtlsStream;

use esp_backtrace as _;
#[cfg(feature = "defmt")]
use esp_println as _;

esp_bootloader_esp_idf::esp_app_desc!();

// ---------------------------------------------------------------------------------------------
// The buffers rawpost and TCP use: one static (`.bss`), taken once. Mbed TLS's are on the heap.

struct Buffers {
    tcp_rx: [u8; 4096],
    tcp_tx: [u8; 2048],
    /// rawpost's one buffer: the request (head and JSON body), then the response head.
    http: [u8; 2048],
    /// The response body.
    body: [u8; 4096],
    /// The pinned root CA as Mbed TLS parses it: the PEM with a terminating NUL.
    anchor: [u8; ROOT_CA_PEM.len() + 1],
}

static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    tcp_rx: [0; 4096],
    tcp_tx: [0; 2048],
    http: [0; 2048],
    body: [0; 4096],
    anchor: [0; ROOT_CA_PEM.len() + 1],
});

/// The heap Mbed TLS takes for one TLS session, on top of the Wi-Fi driver's: the high-water
/// mark measured under QEMU with software cryptography (`bash .ci/qemu`, `mbedtls_heap_peak`;
/// docs/tls-stacks.md) plus room for the accelerators' contexts and the allocator's own
/// overhead. Not measured on a device.
const TLS_HEAP: usize = 72 * 1024;

// ---------------------------------------------------------------------------------------------
// The main stack. Everything here runs in the main task, on the main stack (the RAM left after
// the statics).

/// The stack Mbed TLS's handshake takes below the task that runs it, measured on RV32IMC under
/// QEMU by `bash .ci/qemu` (docs/tls-stacks.md, "stack of the handshake, below the task", the
/// larger of TLS 1.3 and TLS 1.2; `.ci/qemu` keeps this number equal to its measurement).
const MBEDTLS_HANDSHAKE_STACK: usize = 3_912;

/// The handshake's stack plus a 50 % margin, as for the embedded-tls firmware.
const MAIN_STACK_NEEDED: usize = MBEDTLS_HANDSHAKE_STACK * 3 / 2;

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
    // esp-radio allocates its buffers from this heap, and Mbed TLS its session (TLS_HEAP).
    esp_alloc::heap_allocator!(#[ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024 + TLS_HEAP);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    // The accelerators, hooked into Mbed TLS for as long as the firmware runs.
    let mut accel = EspAccel::new()
        .with_sha(peripherals.SHA)
        .with_rsa(peripherals.RSA)
        .with_aes(peripherals.AES);
    let queue = accel.start();
    // SAFETY: `queue` and the guard live until the end of `main`, which never returns.
    let _hooks = unsafe { queue.hook() };
    // Mbed TLS's monotonic timer and the wall clock its certificate checks read.
    static TIMER: EmbassyTimer = EmbassyTimer;
    // SAFETY: installed before any Mbed TLS call; both are statics.
    unsafe {
        mbedtls_rs::sys::hook::timer::hook_timer(Some(&TIMER));
        mbedtls_rs::sys::hook::wall_clock::hook_wall_clock(Some(&WALL_CLOCK));
    }

    let (stack, trng, address) = start_network(spawner, peripherals.WIFI).await;

    static RNG: StaticCell<Trng> = StaticCell::new();
    let tls = match Tls::new(RNG.init(trng)) {
        Ok(tls) => tls,
        Err(_) => idle_forever("Mbed TLS is already in use").await,
    };

    let bufs = BUFFERS.take();
    // The pinned root CA: parsed once at boot, so a damaged PEM file is reported at once.
    let anchor = match root_certificate(&mut bufs.anchor) {
        Ok(anchor) => anchor,
        Err(e) => {
            error!("the pinned root CA (root-ca.pem): {}", Show(&e));
            idle_forever("the pinned root CA cannot be parsed; rebuild with a valid PEM").await
        }
    };
    info!(
        "main stack: {} bytes (the TLS handshake needs {} with the margin)",
        main_stack_size(),
        MAIN_STACK_NEEDED
    );
    let mut net = Net {
        tcp: Tcp::new(stack, address, &mut bufs.tcp_rx, &mut bufs.tcp_tx),
        tls: tls.reference(),
        anchor,
        clock: DeviceClock::default(),
        sni: [0; 256],
    };
    post_forever(stack, &mut net, &mut bufs.http, &mut bufs.body).await
}

/// `ROOT_CA_PEM` parsed by Mbed TLS (which takes PEM as a NUL-terminated string).
fn root_certificate(buf: &mut [u8]) -> Result<Certificate<'static>, MbedtlsError> {
    let pem = ROOT_CA_PEM.as_bytes();
    buf[..pem.len()].copy_from_slice(pem);
    buf[pem.len()] = 0;
    let pem = CStr::from_bytes_with_nul(&buf[..=pem.len()])
        .map_err(|_| MbedtlsError::new(mbedtls_rs::sys::MBEDTLS_ERR_X509_INVALID_FORMAT))?;
    Certificate::new(X509::PEM(pem))
}

// ---------------------------------------------------------------------------------------------
// Time for certificate dates: the SNTP time once there is one, the build time until then.

/// The time the wall clock hook reads: the Unix time of the last SNTP answer and the uptime it
/// was received at.
static SYNCED: critical_section::Mutex<core::cell::Cell<Option<(u64, Instant)>>> =
    critical_section::Mutex::new(core::cell::Cell::new(None));

struct WallClock;

static WALL_CLOCK: WallClock = WallClock;

impl WallClock {
    /// Unix seconds: the SNTP time, never earlier than the build time.
    fn unix(&self) -> u64 {
        let synced = critical_section::with(|cs| SYNCED.borrow(cs).get());
        match synced {
            Some((unix, at)) => (unix + at.elapsed().as_secs()).max(BUILD_TIME),
            None => BUILD_TIME,
        }
    }
}

impl MbedtlsWallClock for WallClock {
    fn instant(&self) -> Option<tm> {
        Some(broken_down(self.unix()))
    }
}

/// Unix seconds as C's `struct tm` (UTC), by the proleptic Gregorian calendar.
fn broken_down(unix: u64) -> tm {
    let days = (unix / 86_400) as i64;
    let secs = (unix % 86_400) as i32;
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    const BEFORE: [i32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = BEFORE[(month - 1) as usize] + day as i32 - 1 + i32::from(leap && month > 2);
    tm {
        tm_sec: secs % 60,
        tm_min: secs / 60 % 60,
        tm_hour: secs / 3_600,
        tm_mday: day as i32,
        tm_mon: month as i32 - 1,
        tm_year: year as i32 - 1900,
        tm_wday: (days + 4).rem_euclid(7) as i32,
        tm_yday: yday,
        tm_isdst: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// TLS 1.3 or 1.2 through mbedtls-rs

/// Why the TLS session could not be opened: Mbed TLS's error and, when the certificate was
/// refused, its verification flags.
#[derive(Debug)]
struct Refusal {
    error: SessionError,
    verify: u32,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake with {HOST_NAME} failed: {}", self.error)?;
        if self.verify != 0 {
            use mbedtls_rs::sys::{
                MBEDTLS_X509_BADCERT_BAD_KEY, MBEDTLS_X509_BADCERT_BAD_MD,
                MBEDTLS_X509_BADCERT_CN_MISMATCH, MBEDTLS_X509_BADCERT_EXPIRED,
                MBEDTLS_X509_BADCERT_FUTURE, MBEDTLS_X509_BADCERT_KEY_USAGE,
                MBEDTLS_X509_BADCERT_NOT_TRUSTED,
            };
            write!(f, "; certificate refused (flags {:#x}):", self.verify)?;
            for (flag, what) in [
                (
                    MBEDTLS_X509_BADCERT_NOT_TRUSTED,
                    " no chain to the pinned root (examples/esp32-common/root-ca.pem, built in)",
                ),
                (
                    MBEDTLS_X509_BADCERT_CN_MISMATCH,
                    " not issued for this host name",
                ),
                (MBEDTLS_X509_BADCERT_EXPIRED, " expired"),
                (MBEDTLS_X509_BADCERT_FUTURE, " not valid yet"),
                (
                    MBEDTLS_X509_BADCERT_KEY_USAGE,
                    " key usage does not allow it",
                ),
                (
                    MBEDTLS_X509_BADCERT_BAD_MD,
                    " a hash this build does not accept",
                ),
                (
                    MBEDTLS_X509_BADCERT_BAD_KEY,
                    " a key this build does not accept",
                ),
            ] {
                if self.verify & flag != 0 {
                    f.write_str(what)?;
                }
            }
        }
        Ok(())
    }
}

/// Opens the connections `rawpost::Client` keeps: DNS and TCP through [`Tcp`], then a TLS
/// session through mbedtls-rs, with the server name from the `Host` that `Client` gives (the
/// header's) and the chain checked against the pinned root. Each step is bounded, and a failure
/// names its step.
struct Net<'b> {
    tcp: Tcp<'b>,
    tls: TlsReference<'b>,
    anchor: Certificate<'static>,
    /// The last SNTP time (the wall clock hook reads the copy in `SYNCED`).
    clock: DeviceClock,
    /// The server name as a NUL-terminated string.
    sni: [u8; 256],
}

impl HangUp for Net<'_> {
    async fn hang_up(&mut self) {
        self.tcp.hang_up().await
    }
}

/// The session over the TCP socket, with `ReadReady` (src/stream.rs).
type TlsSession<'c, 'b> = MbedtlsStream<'c, &'c mut TcpSocket<'b>>;

impl<'b> Connect for Net<'b> {
    type StreamError = SessionError;
    type Stream<'c>
        = TlsSession<'c, 'b>
    where
        Self: 'c;
    type Error = Failure<Refusal>;

    async fn connect(&mut self, host: Host<'_>) -> Result<TlsSession<'_, 'b>, Failure<Refusal>> {
        // Certificate dates are checked in the handshake: the time is needed now. SNTP is asked
        // before each new connection until it answers (the build time is the floor until then).
        if !self.clock.is_synced() {
            sync_time(self.tcp.stack, &mut self.clock).await;
            if let Some(now) = self.clock.now() {
                critical_section::with(|cs| SYNCED.borrow(cs).set(Some((now, Instant::now()))));
            }
        }
        self.tcp.open(host).await?;
        let Net {
            tcp,
            tls,
            anchor,
            sni,
            ..
        } = self;
        let name = host.name().as_bytes();
        let Some(out) = sni.get_mut(..=name.len()) else {
            return Err(Failure::Tls(Refusal {
                error: SessionError::MbedTls(MbedtlsError::new(
                    mbedtls_rs::sys::MBEDTLS_ERR_SSL_BAD_INPUT_DATA,
                )),
                verify: 0,
            }));
        };
        out[..name.len()].copy_from_slice(name);
        out[name.len()] = 0;
        let server_name = CStr::from_bytes_with_nul(out).ok();
        let config = ClientSessionConfig {
            ca_chain: Some(anchor.clone()),
            server_name,
            ..ClientSessionConfig::new()
        };
        let mut session = Session::new(*tls, &mut tcp.socket, &SessionConfig::Client(config))
            .map_err(|error| Failure::Tls(Refusal { error, verify: 0 }))?;
        match with_timeout(TLS_HANDSHAKE_TIMEOUT, session.connect()).await {
            Ok(Ok(())) => {
                let version = match session.tls_version() {
                    Some(TlsVersion::Tls1_3) => "TLS 1.3",
                    Some(TlsVersion::Tls1_2) => "TLS 1.2",
                    None => "TLS",
                };
                info!(
                    "connection #{}: {} to {} open (Mbed TLS)",
                    tcp.opened, version, HOST_NAME
                );
                Ok(MbedtlsStream::new(session))
            }
            Ok(Err(error)) => Err(Failure::Tls(Refusal {
                error,
                verify: session.tls_verification_details(),
            })),
            Err(_) => Err(Failure::TlsTimeout),
        }
    }
}
