//! A memo of certificate signature checks, so that a reconnect does not verify again what
//! cannot have changed.
//!
//! Whether `signature` is a valid signature of `message` under `public_key` with a given
//! algorithm is a pure function of those four: the answer found once is the answer forever.
//! [`SignatureCache`] remembers the inputs of the checks that succeeded, as a SHA-256 digest,
//! and the verifier consults it before running one. Everything else in the chain (validity
//! dates, names, CA flags, key usage, path length, name constraints) is checked on every
//! handshake as before; only the arithmetic of a signature already seen is skipped.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use heapless::Vec;
use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use sha2::{Digest, Sha256};

use super::PinnedProvider;

/// Certificate signatures already verified, so that reconnecting to the same server does not
/// verify them again; its owner keeps it between connections and lends it to each
/// [`PinnedProvider`] with [`PinnedProvider::with_signature_cache`].
///
/// Each entry is the SHA-256 digest of one successful check: the algorithm, the issuer's
/// public key, the signed bytes (the certificate's `tbsCertificate`) and the signature, each
/// with its length. A check whose digest is present is answered "valid" without the elliptic
/// curve arithmetic (13.5 M instructions for a P-256 signature on an RV32IMC core, 62.7 M for
/// P-384); any other is verified in full, and remembered if valid. A certificate that changes
/// in any byte that its issuer signed, a new issuer key, or another signature, gives another
/// digest and is verified again; a failed check is never remembered. Finding two inputs with
/// the same digest means breaking SHA-256's collision resistance.
///
/// Only certificate signatures are remembered: the server's CertificateVerify signature, which
/// covers this handshake's fresh randomness, is verified every time, and so are the validity
/// dates, host names and every constraint of the chain.
///
/// `N` entries of 32 bytes: a chain root → intermediate → leaf has two signatures, so `N = 2`
/// serves one server and `N = 4` two. When full, the oldest entry makes room (a chain with more
/// signatures than `N` gains nothing).
///
/// ```no_run
/// # async fn demo<S, R>(mut tcp: impl FnMut() -> S, mut rng: R, anchor: rawpost::tls::TrustAnchor<'_>)
/// # where S: embedded_io_async::Read + embedded_io_async::Write, R: rawpost::tls::embedded_tls::CryptoRngCore {
/// use rawpost::tls::{connect, PinnedProvider, SignatureCache, TimeSource};
/// use rawpost::Host;
///
/// let mut cache = SignatureCache::<2>::new(); // kept between connections
/// let (mut tls_read, mut tls_write, mut http) = ([0u8; 16640], [0u8; 4096], [0u8; 2048]);
/// for _ in 0..2 {
///     let time = TimeSource::floor(1_767_225_600); // a clock, or at least a floor
///     let mut provider = PinnedProvider::new(&mut rng, anchor.clone(), time)
///         .with_signature_cache(&mut cache);
///     let host = Host::new("api.example.com");
///     let opened = connect(tcp(), &mut tls_read, &mut tls_write, host, &mut provider, &mut http);
///     if let Ok(conn) = opened.await {
///         // ... requests ...
///         let _ = conn.into_inner().close().await;
///     }
/// }
/// // The second handshake verified the server's CertificateVerify signature, not its chain's.
/// println!("{} signatures verified, {} from the cache", cache.misses(), cache.hits());
/// # }
/// ```
pub struct SignatureCache<const N: usize> {
    slots: [Slot; N],
    state: State,
}

/// One remembered check: a SHA-256 digest, all zeros when empty.
///
/// The words are atomics only because rustls-webpki requires its signature algorithms to be
/// `Sync`: the cache is used by one handshake at a time (the provider borrows it mutably), and
/// plain loads and stores are all that is used (RV32IMC has no atomic read-modify-write).
struct Slot([AtomicU32; 8]);

struct State {
    next: AtomicU32,
    hits: AtomicU32,
    misses: AtomicU32,
}

const EMPTY: [u32; 8] = [0; 8];

impl Slot {
    const fn new() -> Self {
        Slot([const { AtomicU32::new(0) }; 8])
    }

    fn get(&self) -> [u32; 8] {
        core::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }

    fn set(&self, words: [u32; 8]) {
        for (slot, word) in self.0.iter().zip(words) {
            slot.store(word, Ordering::Relaxed);
        }
    }
}

fn bump(counter: &AtomicU32) {
    counter.store(
        counter.load(Ordering::Relaxed).saturating_add(1),
        Ordering::Relaxed,
    );
}

impl<const N: usize> SignatureCache<N> {
    /// An empty cache.
    pub const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; N],
            state: State {
                next: AtomicU32::new(0),
                hits: AtomicU32::new(0),
                misses: AtomicU32::new(0),
            },
        }
    }

    /// How many checks are remembered.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.get() != EMPTY).count()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every check, and resets the counters.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Certificate signatures answered from the cache (not verified again) since
    /// [`SignatureCache::new`] or [`SignatureCache::clear`].
    pub fn hits(&self) -> u32 {
        self.state.hits.load(Ordering::Relaxed)
    }

    /// Certificate signatures verified in full (valid or not) since [`SignatureCache::new`] or
    /// [`SignatureCache::clear`].
    pub fn misses(&self) -> u32 {
        self.state.misses.load(Ordering::Relaxed)
    }

    fn view(&self) -> CacheRef<'_> {
        CacheRef {
            slots: &self.slots,
            state: &self.state,
        }
    }
}

impl<const N: usize> Default for SignatureCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for SignatureCache<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureCache")
            .field("capacity", &N)
            .field("len", &self.len())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

/// A provider's borrow of a [`SignatureCache`], whatever its size.
#[derive(Clone, Copy)]
pub(crate) struct CacheRef<'c> {
    slots: &'c [Slot],
    state: &'c State,
}

impl CacheRef<'_> {
    fn contains(&self, digest: &[u32; 8]) -> bool {
        self.slots.iter().any(|s| s.get() == *digest)
    }

    fn insert(&self, digest: [u32; 8]) {
        if self.slots.is_empty() || self.contains(&digest) {
            return;
        }
        let next = self.state.next.load(Ordering::Relaxed) as usize % self.slots.len();
        self.slots[next].set(digest);
        self.state
            .next
            .store(((next + 1) % self.slots.len()) as u32, Ordering::Relaxed);
    }
}

/// What a check is remembered by: SHA-256 over a label, then the algorithm's two identifiers,
/// the public key, the message and the signature, each preceded by its length (so that no two
/// different inputs are the same byte string). Not inlined: the hash state is gone from the
/// stack before the signature is verified.
#[inline(never)]
fn digest(
    alg: &dyn SignatureVerificationAlgorithm,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> [u32; 8] {
    let mut hash = Sha256::new();
    hash.update(b"rawpost signature memo v1");
    let key_alg = alg.public_key_alg_id();
    let sig_alg = alg.signature_alg_id();
    for part in [
        key_alg.as_ref(),
        sig_alg.as_ref(),
        public_key,
        message,
        signature,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let out = hash.finalize();
    let mut words: [u32; 8] = core::array::from_fn(|i| {
        u32::from_be_bytes([out[4 * i], out[4 * i + 1], out[4 * i + 2], out[4 * i + 3]])
    });
    // All zeros marks an empty slot; a digest of all zeros (never seen in practice) is stored
    // with one bit changed, which still identifies it by 255 bits.
    if words == EMPTY {
        words[0] = 1;
    }
    words
}

/// One signature algorithm, answered from the cache when it can be.
struct Memo<'c> {
    inner: &'static dyn SignatureVerificationAlgorithm,
    cache: &'c CacheRef<'c>,
}

impl fmt::Debug for Memo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (signature cache)", self.inner)
    }
}

impl SignatureVerificationAlgorithm for Memo<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let digest = digest(self.inner, public_key, message, signature);
        if self.cache.contains(&digest) {
            bump(&self.cache.state.hits);
            return Ok(());
        }
        bump(&self.cache.state.misses);
        self.inner
            .verify_signature(public_key, message, signature)?;
        self.cache.insert(digest);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// How many algorithms `algs::ALL` holds with the features built: ECDSA P-256 (2), P-384 (2),
/// Ed25519 (1), RSA (6). A test checks the two agree.
const MAX_ALGS: usize = 2
    + if cfg!(feature = "p384") { 2 } else { 0 }
    + if cfg!(feature = "ed25519") { 1 } else { 0 }
    + if cfg!(feature = "rsa") { 6 } else { 0 };

/// Calls `f` with the certificate signature algorithms: `algs` as they are without a cache,
/// each answered from the cache first with one.
pub(crate) fn with_algorithms<R>(
    algs: &'static [&'static dyn SignatureVerificationAlgorithm],
    cache: Option<CacheRef<'_>>,
    f: impl FnOnce(&[&dyn SignatureVerificationAlgorithm]) -> R,
) -> R {
    match cache {
        None => f(algs),
        Some(cache) => with_memos(algs, &cache, f),
    }
}

/// Not inlined: the wrappers take stack only when a cache is used.
#[inline(never)]
fn with_memos<R>(
    algs: &'static [&'static dyn SignatureVerificationAlgorithm],
    cache: &CacheRef<'_>,
    f: impl FnOnce(&[&dyn SignatureVerificationAlgorithm]) -> R,
) -> R {
    debug_assert!(algs.len() <= MAX_ALGS);
    let memos: Vec<Memo<'_>, MAX_ALGS> = algs
        .iter()
        .take(MAX_ALGS)
        .map(|&inner| Memo { inner, cache })
        .collect();
    let refs: Vec<&dyn SignatureVerificationAlgorithm, MAX_ALGS> = memos
        .iter()
        .map(|m| m as &dyn SignatureVerificationAlgorithm)
        .collect();
    f(&refs)
}

impl<'a, Rng, C, CipherSuite> PinnedProvider<'a, Rng, C, CipherSuite> {
    /// Remembers the certificate signatures this provider verifies in `cache`, and answers
    /// those it finds there without verifying them again: a reconnect to the same server
    /// skips the elliptic-curve arithmetic of its chain (two signatures for root →
    /// intermediate → leaf), while dates, names and every constraint are checked as always.
    /// Keep `cache` between connections (a static, or a field of the buffers the firmware
    /// keeps) and lend it to each connection's provider. See [`SignatureCache`].
    #[must_use]
    pub fn with_signature_cache<const N: usize>(
        mut self,
        cache: &'a mut SignatureCache<N>,
    ) -> Self {
        self.verifier.memo = Some(cache.view());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake algorithm: counts its calls; a signature is "valid" when it is `b"ok"`.
    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        sig_alg: &'static [u8],
    }

    impl Counting {
        fn calls(&self) -> u32 {
            self.calls.load(Ordering::Relaxed)
        }
    }

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(
            &self,
            _key: &[u8],
            _message: &[u8],
            signature: &[u8],
        ) -> Result<(), InvalidSignature> {
            bump(&self.calls);
            if signature == b"ok" {
                Ok(())
            } else {
                Err(InvalidSignature)
            }
        }

        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            AlgorithmIdentifier::from_slice(b"key")
        }

        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            AlgorithmIdentifier::from_slice(self.sig_alg)
        }
    }

    fn leak(sig_alg: &'static [u8]) -> &'static Counting {
        Box::leak(Box::new(Counting {
            calls: AtomicU32::new(0),
            sig_alg,
        }))
    }

    fn check<const N: usize>(
        cache: &SignatureCache<N>,
        alg: &'static Counting,
        key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let algs: &'static [&'static dyn SignatureVerificationAlgorithm] =
            Box::leak(Box::new([alg as &dyn SignatureVerificationAlgorithm]));
        with_algorithms(algs, Some(cache.view()), |algs| {
            algs[0].verify_signature(key, message, signature).is_ok()
        })
    }

    #[test]
    fn a_valid_check_is_verified_once_then_answered_from_the_cache() {
        let cache = SignatureCache::<2>::new();
        let alg = leak(b"sig");
        assert!(check(&cache, alg, b"k", b"m", b"ok"));
        assert!(check(&cache, alg, b"k", b"m", b"ok"));
        assert_eq!(alg.calls(), 1);
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 1, 1));
    }

    #[test]
    fn a_change_in_any_input_is_verified_in_full() {
        let cache = SignatureCache::<8>::new();
        let alg = leak(b"sig");
        let other_alg = leak(b"other");
        assert!(check(&cache, alg, b"k", b"m", b"ok"));
        assert!(check(&cache, alg, b"K", b"m", b"ok"));
        assert!(check(&cache, alg, b"k", b"M", b"ok"));
        assert!(check(&cache, other_alg, b"k", b"m", b"ok"));
        assert_eq!(alg.calls(), 3);
        assert_eq!(other_alg.calls(), 1);
        // Same bytes, split differently between message and signature: another input.
        assert!(!check(&cache, alg, b"k", b"mo", b"k"));
        assert_eq!(alg.calls(), 4);
        assert_eq!((cache.hits(), cache.misses()), (0, 5));
    }

    #[test]
    fn an_invalid_signature_is_never_remembered() {
        let cache = SignatureCache::<2>::new();
        let alg = leak(b"sig");
        assert!(!check(&cache, alg, b"k", b"m", b"bad"));
        assert!(!check(&cache, alg, b"k", b"m", b"bad"));
        assert_eq!(alg.calls(), 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_oldest_entry_makes_room() {
        let cache = SignatureCache::<2>::new();
        let alg = leak(b"sig");
        for message in [&b"a"[..], b"b", b"c"] {
            assert!(check(&cache, alg, b"k", message, b"ok"));
        }
        assert_eq!(cache.len(), 2);
        assert!(check(&cache, alg, b"k", b"c", b"ok")); // kept
        assert!(check(&cache, alg, b"k", b"b", b"ok")); // kept
        assert_eq!(alg.calls(), 3);
        assert!(check(&cache, alg, b"k", b"a", b"ok")); // evicted: verified again
        assert_eq!(alg.calls(), 4);
    }

    #[test]
    fn clear_forgets() {
        let mut cache = SignatureCache::<2>::new();
        let alg = leak(b"sig");
        assert!(check(&cache, alg, b"k", b"m", b"ok"));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!((cache.hits(), cache.misses()), (0, 0));
        assert!(check(&cache, alg, b"k", b"m", b"ok"));
        assert_eq!(alg.calls(), 2);
    }

    #[test]
    fn every_algorithm_is_wrapped() {
        assert_eq!(super::super::algs::ALL.len(), MAX_ALGS);
    }

    #[test]
    fn without_a_cache_the_algorithms_are_passed_through() {
        let alg = leak(b"sig");
        let algs: &'static [&'static dyn SignatureVerificationAlgorithm] =
            Box::leak(Box::new([alg as &dyn SignatureVerificationAlgorithm]));
        for _ in 0..2 {
            let ok = with_algorithms(algs, None, |algs| {
                algs[0].verify_signature(b"k", b"m", b"ok").is_ok()
            });
            assert!(ok);
        }
        assert_eq!(alg.calls(), 2);
    }
}
