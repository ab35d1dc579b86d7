//! The pinned-CA provider and where it gets the time from.

use core::marker::PhantomData;

use embedded_tls::{Aes128GcmSha256, CryptoRngCore, TlsCipherSuite};

use embedded_tls::CertificateRef;

use super::connect::expected;
use super::verifier::{PinnedVerifier, TimeInput};
use super::{CertError, Detail, OpenError, TrustAnchor};
use crate::Host;

/// 2025-01-01T00:00:00Z in Unix seconds. A clock reading or a time floor before it is taken
/// as "not set" (an unsynced clock counts from 1970 or from boot), never as a time to check
/// certificate dates against.
pub const MIN_TIME: u64 = 1_735_689_600;

/// A source of the current time, for certificate validity dates.
///
/// Implement it for the device's time keeping (an SNTP result plus a monotonic timer, an RTC);
/// any `Fn() -> Option<u64>` closure or function is one too. Return `None` while the time is
/// not known (not synced yet).
pub trait Clock {
    /// The current Unix time in seconds, or `None` while it is not known.
    fn now(&self) -> Option<u64>;
}

impl<F: Fn() -> Option<u64>> Clock for F {
    fn now(&self) -> Option<u64> {
        self()
    }
}

/// The clock of a [`TimeSource`] made without one: it never knows the time.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> Option<u64> {
        None
    }
}

/// Where a [`PinnedProvider`] gets the time that certificate validity dates are checked
/// against. There is no default: every provider is made with one of these.
///
/// | made with | dates checked against | an expired certificate is |
/// |---|---|---|
/// | [`TimeSource::clock`] | the clock | refused |
/// | [`TimeSource::clock`] + [`with_floor`](TimeSource::with_floor), clock not set | the floor, or the server certificate's notBefore if later | refused if it expired before the floor; **accepted** if it expired after it |
/// | [`TimeSource::floor`] | the same | the same |
/// | [`TimeSource::dangerous_no_expiry_check`] | the server certificate's notBefore | **accepted**, whenever it expired |
///
/// A clock that returns `None` (or a time before [`MIN_TIME`]) with no floor makes the
/// handshake fail with [`CertError::ClockNotSet`](super::CertError::ClockNotSet): never a
/// silent skip. [`PinnedProvider::last_time`] tells what the last handshake used.
#[derive(Clone, Copy, Debug)]
pub struct TimeSource<C = NoClock> {
    clock: C,
    floor: u64,
    check_expiry: bool,
}

impl<C: Clock> TimeSource<C> {
    /// Dates are checked against `clock` (Unix seconds). While it returns `None`, handshakes
    /// fail with `ClockNotSet` unless a floor is added with [`TimeSource::with_floor`].
    pub const fn clock(clock: C) -> Self {
        Self {
            clock,
            floor: 0,
            check_expiry: true,
        }
    }

    /// A time (Unix seconds) known to have passed, e.g. the firmware's build time: dates are
    /// never checked against an earlier time, and while the clock is not set they are checked
    /// against it (or the server certificate's notBefore, if later), so that certificates
    /// that expired before it are refused. A floor before [`MIN_TIME`] is ignored.
    pub const fn with_floor(mut self, unix_secs: u64) -> Self {
        self.floor = unix_secs;
        self
    }

    /// The clock, e.g. to give it a fresh SNTP result.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }
}

impl TimeSource<NoClock> {
    /// No clock, only a time known to have passed (e.g. the firmware's build time; before
    /// [`MIN_TIME`] it is ignored and handshakes fail with `ClockNotSet`). Dates are checked
    /// against the floor, or the server certificate's notBefore if later: a certificate that
    /// expired before the floor is refused, one that expired after it is **accepted**. Prefer
    /// a clock with this floor: [`TimeSource::clock`] and [`TimeSource::with_floor`].
    pub const fn floor(unix_secs: u64) -> Self {
        Self {
            clock: NoClock,
            floor: unix_secs,
            check_expiry: true,
        }
    }

    /// **Expired certificates are accepted.** Dates are checked as of the server
    /// certificate's notBefore: that proves only that the chain was consistent when the
    /// certificate was issued. Any certificate ever issued for the host under the pinned CA
    /// is accepted, forever, including one whose key leaked years ago. For tests, and for
    /// devices that truly have no notion of time.
    pub const fn dangerous_no_expiry_check() -> Self {
        Self {
            clock: NoClock,
            floor: 0,
            check_expiry: false,
        }
    }
}

/// Which time the last handshake checked certificate dates against (Unix seconds), and where
/// it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimeUsed {
    /// The clock's time (raised to the floor if it was behind it).
    Clock(u64),
    /// The floor, or the server certificate's notBefore if later: the clock was not set.
    Floor(u64),
    /// The server certificate's notBefore: expiry was not checked
    /// ([`TimeSource::dangerous_no_expiry_check`]).
    NotChecked(u64),
}

/// The pinned-CA verification of [`connect`](super::connect) and [`TlsStream::open`](super::TlsStream::open): only
/// servers whose certificate chain leads to one pinned certificate are trusted.
///
/// Checks made, by rustls-webpki (the validator rustls uses) and then by rawpost:
/// - a path from the server's certificate (the first one it sends) through the other
///   certificates it sends (any order; unrelated extras are ignored) up to the pinned one,
///   which may be a root or an intermediate CA;
/// - every issuing certificate is a CA (basicConstraints cA=true), its keyUsage (when present)
///   includes keyCertSign, and its pathLenConstraint is respected; issuer and subject names
///   chain; every signature verifies (ECDSA P-256, and P-384 with the `p384` feature, each
///   with SHA-256 or SHA-384; Ed25519 and RSA with their features);
/// - the server certificate is not a CA, and its extendedKeyUsage (when present) allows
///   serverAuth; name constraints of the CAs hold;
/// - the host is one of the server certificate's subject alternative names: a DNS name (a
///   wildcard covers one left-most label), or an IP address for an IP host (no server name is
///   sent then, RFC 6066 §3); the common name is never used;
/// - the validity dates of every certificate below the pinned one, against the
///   [`TimeSource`];
/// - the server's CertificateVerify signature over the handshake transcript, with the server
///   certificate's key: proof that the server holds that key. A handshake in which the server
///   sent no Certificate or no CertificateVerify is refused.
///
/// On a refusal, the server is sent the matching fatal TLS alert (see [`CertError::alert`](super::CertError::alert))
/// and the caller gets an [`OpenError`](super::OpenError) naming the certificates involved.
///
/// Not checked: revocation (no CRL/OCSP), the pinned certificate's own dates and CA flag (it is
/// trusted as given).
///
/// `PinnedProvider` is deliberately **not** an embedded-tls `CryptoProvider`: embedded-tls
/// completes a handshake in which the server never authenticated, so a session opened with
/// `TlsConnection::open` directly could be used unverified. Sessions are opened through
/// [`TlsStream::open`](super::TlsStream::open) and [`connect`](super::connect) only, which end in a verified session or
/// an error. This does not compile:
///
/// ```compile_fail
/// # async fn demo<S, R>(tcp: S, rng: R, anchor: rawpost::tls::TrustAnchor<'_>)
/// # where S: embedded_io_async::Read + embedded_io_async::Write, R: rawpost::tls::embedded_tls::CryptoRngCore {
/// use rawpost::tls::embedded_tls::{TlsConfig, TlsConnection, TlsContext};
/// use rawpost::tls::{PinnedProvider, TimeSource};
///
/// let (mut rx, mut tx) = ([0u8; 16640], [0u8; 4096]);
/// let mut tls = TlsConnection::new(tcp, &mut rx, &mut tx);
/// let mut provider = PinnedProvider::new(rng, anchor, TimeSource::floor(1_765_000_000));
/// let config = TlsConfig::new().with_server_name("api.example.com");
/// let _ = tls.open(TlsContext::new(&config, &mut provider)).await;
/// # }
/// ```
pub struct PinnedProvider<'a, Rng, C = NoClock, CipherSuite = Aes128GcmSha256> {
    pub(crate) rng: Rng,
    pub(crate) time: TimeSource<C>,
    pub(crate) verifier: PinnedVerifier<'a>,
    _suite: PhantomData<CipherSuite>,
}

impl<'a, Rng: CryptoRngCore, C: Clock> PinnedProvider<'a, Rng, C> {
    /// A provider for the `TLS_AES_128_GCM_SHA256` cipher suite trusting `anchor`, drawing
    /// handshake randomness from `rng` (the chip's TRNG on a device), checking dates against
    /// `time`.
    pub fn new(rng: Rng, anchor: TrustAnchor<'a>, time: TimeSource<C>) -> Self {
        Self::with_cipher_suite(rng, anchor, time)
    }
}

impl<'a, Rng: CryptoRngCore, C: Clock, CipherSuite: TlsCipherSuite>
    PinnedProvider<'a, Rng, C, CipherSuite>
{
    /// Like [`PinnedProvider::new`], for another embedded-tls cipher suite
    /// (e.g. `Aes256GcmSha384`). embedded-tls offers exactly one suite per session.
    pub fn with_cipher_suite(rng: Rng, anchor: TrustAnchor<'a>, time: TimeSource<C>) -> Self {
        Self {
            rng,
            time,
            verifier: PinnedVerifier::new(anchor),
            _suite: PhantomData,
        }
    }
}

impl<Rng, C: Clock, CipherSuite> PinnedProvider<'_, Rng, C, CipherSuite> {
    /// Which time the last handshake checked certificate dates against, and where it came
    /// from; `None` before a server certificate was checked.
    pub fn last_time(&self) -> Option<TimeUsed> {
        self.verifier.time_used()
    }

    /// The time source, e.g. to update the clock after an SNTP sync.
    pub fn time_source_mut(&mut self) -> &mut TimeSource<C> {
        &mut self.time
    }

    pub(crate) fn time_input(&self) -> TimeInput {
        TimeInput {
            clock: if self.time.check_expiry {
                self.time.clock.now()
            } else {
                None
            },
            floor: self.time.floor,
            check_expiry: self.time.check_expiry,
        }
    }
}

impl<Rng, C: Clock, CS> PinnedProvider<'_, Rng, C, CS> {
    /// Checks a certificate chain for `host` against the pinned certificate, without a
    /// server: `chain` is what a server sends (DER, its own certificate first, then the
    /// certificates it adds, as `openssl s_client -showcerts` prints them). Every check of a
    /// handshake is made — path, CA flags and constraints, names, dates against the time
    /// source, every signature (through the signature cache, if the provider has one) — but
    /// the server's handshake signature, which needs a live server. Use it to test a pin
    /// against a captured chain on a host before flashing a device.
    // `OpenError` carries its detail inline (no allocation), hence its size.
    #[allow(clippy::result_large_err)]
    pub fn verify_chain(&mut self, host: Host<'_>, chain: &[&[u8]]) -> Result<(), OpenError> {
        self.verifier.begin(expected(host)?);
        let mut certificates = CertificateRef::with_context(&[]);
        for der in chain {
            if certificates
                .add(embedded_tls::CertificateEntryRef::X509(der))
                .is_err()
            {
                return Err(OpenError::certificate(CertError::Rejected, Detail::new()));
            }
        }
        let time = self.time_input();
        match self.verifier.verify_certificate(&[], &certificates, time) {
            Ok(()) => Ok(()),
            Err(error) => {
                let detail = match self.verifier.take_refusal() {
                    Some((_, detail)) => detail,
                    None => Detail::new(),
                };
                Err(OpenError::certificate(error, detail))
            }
        }
    }
}
