//! The embedded-tls `CryptoProvider` that hands out the pinned-CA verifier.

use core::marker::PhantomData;

use embedded_tls::{
    Aes128GcmSha256, CryptoProvider, CryptoRngCore, TlsCipherSuite, TlsError, TlsVerifier,
};

use super::verifier::{Clock, PinnedVerifier};
use super::{CertError, Explain, TrustAnchor};

/// An embedded-tls [`CryptoProvider`] whose verifier only trusts servers whose certificate
/// chain leads to one pinned certificate.
///
/// Checks made, by rustls-webpki (the validator rustls uses) and then by this type:
/// - a path from the server's certificate (the first one it sends) through the other
///   certificates it sends (any order; unrelated extras are ignored) up to the pinned one,
///   which may be a root or an intermediate CA;
/// - every issuing certificate is a CA (basicConstraints cA=true), its keyUsage (when present)
///   includes keyCertSign, and its pathLenConstraint is respected; issuer and subject names chain; every signature verifies (ECDSA P-256, and
///   P-384 with the `p384` feature, each with SHA-256 or SHA-384);
/// - the server certificate is not a CA, and its extendedKeyUsage (when present) allows
///   serverAuth; name constraints of the CAs hold;
/// - the configured server name (`TlsConfig::with_server_name`) is one of the server
///   certificate's subject alternative names (DNS or IP; the common name is never used;
///   a wildcard covers one left-most label); without a server name every server is refused;
/// - the validity dates of every certificate below the pinned one, against the clock (see
///   [`PinnedProvider::with_clock`]);
/// - the server's CertificateVerify signature over the handshake transcript, with the server
///   certificate's key: proof that the server holds that key.
///
/// Not checked: revocation (no CRL/OCSP), the pinned certificate's own dates and CA flag (it is
/// trusted as given).
///
/// # Use
/// Pass it by `&mut` so the failure reason can be read after `open`:
/// ```no_run
/// # async fn demo<S, R>(mut tls: rawpost::tls::embedded_tls::TlsConnection<'_, S, rawpost::tls::embedded_tls::Aes128GcmSha256>, rng: R, anchor: rawpost::tls::TrustAnchor<'_>, now: fn() -> Option<u64>)
/// # where S: embedded_io_async::Read + embedded_io_async::Write, R: rawpost::tls::embedded_tls::CryptoRngCore {
/// use rawpost::tls::embedded_tls::{TlsConfig, TlsContext};
/// use rawpost::tls::PinnedProvider;
///
/// let config = TlsConfig::new().with_server_name("api.example.com");
/// let mut provider = PinnedProvider::new(rng, anchor).with_clock(now);
/// let opened = tls.open(TlsContext::new(&config, &mut provider)).await;
/// // Also catches a server that skipped authentication:
/// if let Err(why) = provider.check(opened) {
///     println!("refused: {why:?}");
/// }
/// # }
/// ```
///
/// embedded-tls lets a handshake finish without the server ever sending Certificate and
/// CertificateVerify (it only verifies what arrives), so a successful `open` is not enough:
/// always call [`PinnedProvider::check`] (or [`PinnedProvider::server_authenticated`]) after it.
pub struct PinnedProvider<'a, Rng, CipherSuite = Aes128GcmSha256> {
    rng: Rng,
    pub(super) verifier: PinnedVerifier<'a>,
    _suite: PhantomData<CipherSuite>,
}

impl<'a, Rng: CryptoRngCore> PinnedProvider<'a, Rng> {
    /// A provider for the `TLS_AES_128_GCM_SHA256` cipher suite trusting `anchor`, drawing
    /// handshake randomness from `rng`. No clock: see [`PinnedProvider::with_clock`].
    pub fn new(rng: Rng, anchor: TrustAnchor<'a>) -> Self {
        Self::with_cipher_suite(rng, anchor)
    }
}

impl<'a, Rng: CryptoRngCore, CipherSuite: TlsCipherSuite> PinnedProvider<'a, Rng, CipherSuite> {
    /// Like [`PinnedProvider::new`], for another embedded-tls cipher suite
    /// (e.g. `Aes256GcmSha384`).
    pub fn with_cipher_suite(rng: Rng, anchor: TrustAnchor<'a>) -> Self {
        Self {
            rng,
            verifier: PinnedVerifier::new(anchor),
            _suite: PhantomData,
        }
    }

    /// Checks validity dates against `clock` (Unix seconds).
    ///
    /// When there is no clock, or it returns `None` (not synced yet), the chain is checked as
    /// of the moment the server's certificate was issued (its notBefore), or the
    /// [time floor](PinnedProvider::with_time_floor) if that is later. That proves the chain
    /// was consistent when the certificate was issued (no certificate used before its start
    /// or after its end at that moment), but **an expired certificate is accepted** unless it
    /// expired before the time floor. [`PinnedProvider::used_clock`] tells which mode the last
    /// handshake used.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.verifier.set_clock(clock);
        self
    }

    /// A time (Unix seconds) known to have passed, e.g. the firmware's build time: the time
    /// used for validity checks is never earlier, with or without a clock. Certificates that
    /// expired before it are refused even without a clock.
    #[must_use]
    pub fn with_time_floor(mut self, unix_secs: u64) -> Self {
        self.verifier.set_time_floor(unix_secs);
        self
    }

    /// Turns `open`'s result into ours: `Ok` only if the handshake succeeded *and* the server
    /// was authenticated; `Err(Some(reason))` when the certificate check failed,
    /// `Err(None)` when the handshake failed for another reason (I/O, protocol; see the
    /// embedded-tls error for that).
    pub fn check(&self, opened: Result<(), TlsError>) -> Result<(), Option<CertError>> {
        match opened {
            Err(_) => Err(self.last_error()),
            Ok(()) if self.server_authenticated() => Ok(()),
            Ok(()) => Err(Some(CertError::NoCertificate)),
        }
    }

    /// Forgets the last handshake (result and host name). Not needed between handshakes
    /// (each ClientHello starts afresh) but clears a host name left by a handshake that failed
    /// before the server's certificate arrived.
    pub fn reset(&mut self) {
        self.verifier.reset();
    }
}

impl<Rng, CipherSuite> PinnedProvider<'_, Rng, CipherSuite> {
    /// Why the last handshake's server was refused, if it was.
    pub fn last_error(&self) -> Option<CertError> {
        self.verifier.error()
    }

    /// A name the last failure is about (the issuer of the chain's top certificate, a name the
    /// certificate is for, the expired certificate...), or `""`.
    pub fn last_error_detail(&self) -> &str {
        self.verifier.detail()
    }

    /// The last failure with its detail, ready to print; `None` if there was none.
    pub fn explain(&self) -> Option<Explain<'_>> {
        self.last_error().map(|error| Explain {
            error,
            detail: self.last_error_detail(),
        })
    }

    /// Whether the last handshake verified the server's chain and its CertificateVerify
    /// signature. Must be true after `open` before any data is trusted.
    pub fn server_authenticated(&self) -> bool {
        self.verifier.authenticated()
    }

    /// Whether the last handshake's dates were checked against the clock (rather than against
    /// the server certificate's issuance time; see [`PinnedProvider::with_clock`]).
    pub fn used_clock(&self) -> bool {
        self.verifier.used_clock()
    }
}

impl<Rng: CryptoRngCore, CipherSuite: TlsCipherSuite> CryptoProvider
    for PinnedProvider<'_, Rng, CipherSuite>
{
    type CipherSuite = CipherSuite;
    type Signature = p256::ecdsa::DerSignature;

    /// embedded-tls draws randomness only to build the ClientHello, which starts every
    /// handshake: the verifier forgets the previous handshake's result here, so a provider
    /// reused for a new connection never reports a stale success.
    fn rng(&mut self) -> impl CryptoRngCore {
        self.verifier.begin_handshake();
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Self::CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }
}
