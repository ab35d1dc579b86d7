//! The signature cache (`PinnedProvider::with_signature_cache`): a reconnect skips the
//! signatures it has verified, a changed certificate is verified in full again, and dates,
//! names and constraints are checked on every handshake.

mod tls_support;

use rand_core::OsRng;
use rawpost::tls::{CertError, PinnedProvider, SignatureCache, TimeSource, TrustAnchor};
use rawpost::Host;
use rcgen::{GeneralSubtree, NameConstraints, SerialNumber};
use tls_support::*;

/// 2051-01-01: after the test leaves' notAfter (2050), before their CAs' (2055, 2060).
fn after_the_leaf_expired() -> Option<u64> {
    Some(2_556_144_000)
}

/// Checks `chain` (leaf first) for `host` against `anchor` with a provider that uses `cache`
/// (`PinnedProvider::verify_chain`: a handshake's checks without a server); `None` when it is
/// accepted. Dates are checked against `clock`, or the fixed test clock.
fn verify<const N: usize>(
    anchor: &[u8],
    chain: &[&[u8]],
    host: &str,
    clock: Option<fn() -> Option<u64>>,
    cache: &mut SignatureCache<N>,
) -> Option<CertError> {
    let anchor = TrustAnchor::from_der(anchor).unwrap();
    let time = TimeSource::clock(clock.unwrap_or(fixed_clock));
    let mut provider = PinnedProvider::new(OsRng, anchor, time).with_signature_cache(cache);
    provider
        .verify_chain(Host::new(host), chain)
        .err()
        .map(|e| e.cert_error().expect("a certificate error"))
}

fn counts<const N: usize>(cache: &SignatureCache<N>) -> (u32, u32, usize) {
    (cache.hits(), cache.misses(), cache.len())
}

/// The intermediate issued again by the same root, with the same key and name: another
/// serial number and other dates (as CAs re-issue intermediates), so other signed bytes.
fn reissued_intermediate(pki: &Pki) -> Vec<u8> {
    let mut params = pki.inter.params.clone();
    params.serial_number = Some(SerialNumber::from(0x5eed_u64));
    params.not_before = rcgen::date_time_ymd(2022, 6, 1);
    params.not_after = rcgen::date_time_ymd(2054, 6, 1);
    params
        .signed_by(&pki.inter.key, &pki.root.issuer())
        .unwrap()
        .der()
        .to_vec()
}

/// The intermediate with one signed byte changed (its notAfter year, 2055 → 2054) and its
/// original signature: same issuer key, same signature, other signed bytes.
fn tampered_intermediate(pki: &Pki) -> Vec<u8> {
    let mut der = pki.inter.der.to_vec();
    let at = der
        .windows(15)
        .position(|w| w == b"20550101000000Z")
        .expect("the intermediate's notAfter");
    der[at + 3] = b'4';
    assert_ne!(der, pki.inter.der.as_ref());
    der
}

#[test]
fn a_reconnect_verifies_no_certificate_signature_again() {
    for root_alg in [&P256, &P384] {
        let pki = Pki::new(root_alg, &P256);
        let chain = [pki.leaf.der.as_ref(), pki.inter.der.as_ref()];
        let mut cache = SignatureCache::<4>::new();
        assert_eq!(
            verify(pki.root.der.as_ref(), &chain, HOST, None, &mut cache),
            None
        );
        // Both signatures of root → intermediate → leaf verified and remembered.
        assert_eq!(counts(&cache), (0, 2, 2));
        assert_eq!(
            verify(pki.root.der.as_ref(), &chain, HOST, None, &mut cache),
            None
        );
        assert_eq!(counts(&cache), (2, 2, 2));
        assert_eq!(
            verify(pki.root.der.as_ref(), &chain, HOST, None, &mut cache),
            None
        );
        assert_eq!(counts(&cache), (4, 2, 2));
    }
}

#[test]
fn a_changed_intermediate_is_fully_verified_again() {
    let pki = Pki::new(&P384, &P256);
    let root = pki.root.der.as_ref();
    let leaf = pki.leaf.der.as_ref();
    let mut cache = SignatureCache::<4>::new();
    assert_eq!(
        verify(
            root,
            &[leaf, pki.inter.der.as_ref()],
            HOST,
            None,
            &mut cache
        ),
        None
    );
    assert_eq!(counts(&cache), (0, 2, 2));

    // Same issuer key and same signature as a remembered check, one signed byte changed: the
    // root's signature is verified again, and it does not hold.
    let tampered = tampered_intermediate(&pki);
    assert_eq!(
        verify(root, &[leaf, &tampered], HOST, None, &mut cache),
        Some(CertError::BadChainSignature)
    );
    assert_eq!(cache.misses(), 3);
    assert_eq!(cache.len(), 2, "a failed check is not remembered");
    // Again: still verified, still refused.
    assert_eq!(
        verify(root, &[leaf, &tampered], HOST, None, &mut cache),
        Some(CertError::BadChainSignature)
    );
    assert_eq!(cache.misses(), 4);

    // Re-issued with the same key: the root's signature on it is new and verified in full;
    // the intermediate's signature on the unchanged leaf is the remembered one.
    let (hits, misses, _) = counts(&cache);
    let reissued = reissued_intermediate(&pki);
    assert_eq!(
        verify(root, &[leaf, &reissued], HOST, None, &mut cache),
        None
    );
    assert_eq!(counts(&cache), (hits + 1, misses + 1, 3));

    // A new intermediate key (and a leaf issued by it): both signatures verified in full.
    let inter = intermediate("Test Intermediate CA", &P256, &pki.root);
    let new_leaf = tls_support::leaf(HOST, &P256, &[HOST], &inter);
    let (hits, misses, _) = counts(&cache);
    assert_eq!(
        verify(
            root,
            &[new_leaf.der.as_ref(), inter.der.as_ref()],
            HOST,
            None,
            &mut cache
        ),
        None
    );
    assert_eq!(counts(&cache), (hits, misses + 2, 4));
}

#[test]
fn a_signature_from_the_cache_does_not_excuse_the_dates_or_the_name() {
    let pki = Pki::new(&P256, &P256);
    let root = pki.root.der.as_ref();
    let chain = [pki.leaf.der.as_ref(), pki.inter.der.as_ref()];
    let mut cache = SignatureCache::<4>::new();
    assert_eq!(
        verify(root, &chain, HOST, Some(fixed_clock), &mut cache),
        None
    );
    assert_eq!(counts(&cache), (0, 2, 2));

    // The same chain later, after the leaf expired: refused, though its signatures are known.
    assert_eq!(
        verify(root, &chain, HOST, Some(after_the_leaf_expired), &mut cache),
        Some(CertError::Expired)
    );
    // Another host name: refused.
    assert_eq!(
        verify(
            root,
            &chain,
            "other.example.test",
            Some(fixed_clock),
            &mut cache
        ),
        Some(CertError::NameMismatch)
    );
    // And accepted again, from the cache, when everything else holds.
    let (hits, misses, _) = counts(&cache);
    assert_eq!(
        verify(root, &chain, HOST, Some(fixed_clock), &mut cache),
        None
    );
    assert_eq!(counts(&cache), (hits + 2, misses, 2));
}

#[test]
fn a_signature_from_the_cache_does_not_excuse_the_constraints() {
    let pki = Pki::new(&P256, &P256);
    let chain = [pki.leaf.der.as_ref(), pki.inter.der.as_ref()];
    let mut cache = SignatureCache::<4>::new();
    assert_eq!(
        verify(pki.root.der.as_ref(), &chain, HOST, None, &mut cache),
        None
    );

    // The root again, same key and name, now with a name constraint that excludes the
    // server's domain. Its signature on the intermediate is the remembered one (same key,
    // same bytes, same signature), yet the chain is refused.
    let mut params = pki.root.params.clone();
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![],
        excluded_subtrees: vec![GeneralSubtree::DnsName("example.test".into())],
    });
    let constrained = params.self_signed(&pki.root.key).unwrap();
    let (hits, misses, _) = counts(&cache);
    assert_eq!(
        verify(constrained.der().as_ref(), &chain, HOST, None, &mut cache),
        Some(CertError::Rejected)
    );
    assert_eq!(cache.misses(), misses, "no signature needed verifying");
    assert!(cache.hits() > hits, "the cached signatures were used");
}

#[test]
fn a_cache_smaller_than_the_chain_still_verifies_correctly() {
    let pki = Pki::new(&P256, &P256);
    let chain = [pki.leaf.der.as_ref(), pki.inter.der.as_ref()];
    let mut cache = SignatureCache::<1>::new();
    for _ in 0..3 {
        assert_eq!(
            verify(pki.root.der.as_ref(), &chain, HOST, None, &mut cache),
            None
        );
    }
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.hits() + cache.misses(), 6);
}

/// End to end: two connections to real rustls servers through `tls::connect`, one cache.
#[tokio::test]
async fn reconnect_through_tls_connect_uses_the_cache() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rawpost::tls::connect;
    use rawpost::Request;

    let pki = Pki::new(&P384, &P256);
    let anchor = TrustAnchor::from_der(pki.root.der.as_ref()).unwrap();
    let mut cache = SignatureCache::<2>::new();
    for round in 1..=2u32 {
        let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read_buf, mut write_buf, mut http) =
            (vec![0u8; 16_640], vec![0u8; 4096], [0u8; 1024]);
        let time = TimeSource::clock(fixed_clock);
        let mut provider =
            PinnedProvider::new(OsRng, anchor.clone(), time).with_signature_cache(&mut cache);
        let mut conn = connect(
            FromTokio::new(tcp),
            &mut read_buf,
            &mut write_buf,
            Host::new(HOST),
            &mut provider,
            &mut http,
        )
        .await
        .unwrap();
        let mut response = conn.send(&Request::get("/")).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = [0u8; 16];
        let n = response.read_to_end(&mut body).await.unwrap();
        assert_eq!(&body[..n], b"hello");
        let served = server.await.unwrap();
        assert_eq!(
            served.request.as_deref().map(|r| r.starts_with("GET / ")),
            Ok(true)
        );
        // First round: the P-384 root's and the intermediate's signatures verified; second:
        // both answered from the cache (the server's CertificateVerify is never cached).
        let expected = if round == 1 { (0, 2, 2) } else { (2, 2, 2) };
        assert_eq!(counts(&cache), expected, "round {round}");
    }
}
