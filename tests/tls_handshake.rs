//! Handshakes of embedded-tls + the pinned-CA verifier against a real rustls TLS 1.3 server.
//!
//! Most cases are rows of a table: what the server sends, what the client pins, the host it
//! asks for, where its verifier gets the time, and what must come of it — the exchange
//! completes, or the exact refusal, with its explanation, the time the dates were checked
//! against and the alert the server received. One runner plays every row on a server of its
//! own. The tests after the tables check what a row cannot say.

mod tls_support;

use rawpost::tls::{CertError, TimeUsed, TrustAnchor};
use rcgen::BasicConstraints::{Constrained, Unconstrained};
use rcgen::KeyUsagePurpose::{CrlSign, KeyCertSign};
use rcgen::{ExtendedKeyUsagePurpose as Eku, PKCS_RSA_SHA256 as RSA};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::AlertDescription;
use tls_support::*;

/// One case: a server, a client, and what must come of their handshake.
struct Case {
    /// Says which case failed.
    name: &'static str,
    /// What the server sends and what the client pins, made with fresh keys for each case;
    /// given the standard PKI ([`Pki::new`]`(&P256, &P256)`), which most cases use.
    certs: fn(&Pki) -> Certs,
    /// The host the client asks for: its SNI, and the name checked against the certificate.
    host: &'static str,
    /// Where the client's verifier gets the time.
    time: Time,
    /// `Ok`: the handshake completes and the server's reply arrives; `Err`: refused with this.
    want: Result<(), CertError>,
    /// What else must hold.
    checks: &'static [Check],
}

/// What the server sends and what the client pins.
struct Certs {
    /// The certificates the server sends, its own first.
    chain: Vec<CertificateDer<'static>>,
    /// The key of the server's certificate.
    key: PrivateKeyDer<'static>,
    /// The certificate the client pins.
    pin: CertificateDer<'static>,
}

/// The server sends `server`'s certificate, then `rest`; the client pins `pin`.
fn sends(server: &Cert, rest: &[&Cert], pin: &Cert) -> Certs {
    let mut chain = vec![server.der.clone()];
    chain.extend(rest.iter().map(|c| c.der.clone()));
    Certs {
        chain,
        key: server.key_der(),
        pin: pin.der.clone(),
    }
}

/// A PKI's usual chain: the leaf and the intermediate sent, the root pinned.
fn standard(pki: &Pki) -> Certs {
    sends(&pki.leaf, &[&pki.inter], &pki.root)
}

/// `server` (issued by the PKI's intermediate) and the intermediate sent, the root pinned.
fn serving(pki: &Pki, server: Cert) -> Certs {
    sends(&server, &[&pki.inter], &pki.root)
}

/// Root → intermediate → leaf for [`HOST`], all `alg`; the root pinned.
#[cfg(any(feature = "ed25519", feature = "rsa"))]
fn all_of(alg: &'static rcgen::SignatureAlgorithm, root_cn: &str, inter_cn: &str) -> Certs {
    let root = root(root_cn, alg);
    let inter = intermediate(inter_cn, alg, &root);
    let server = leaf(HOST, alg, &[HOST], &inter);
    sends(&server, &[&inter], &root)
}

/// A P-256 certificate for `cn` with `sans`, issued by `parent`, valid 2024–2050, without
/// extendedKeyUsage; `ca` as in [`make`].
fn plain(cn: &str, ca: Option<bool>, sans: &[&str], parent: &Cert) -> Cert {
    make(cn, &P256, ca, sans, Some(parent), (2024, 2050), None)
}

/// A leaf for [`HOST`] under the PKI's intermediate, valid `years` (from January 1st to
/// January 1st), for the extended key usage `eku`.
fn dated(pki: &Pki, years: (i32, i32), eku: Eku) -> Cert {
    make(
        HOST,
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        years,
        Some(eku),
    )
}

/// A leaf that expired on 2023-01-01, named `expired.example.test` (SAN: [`HOST`]).
fn expired(pki: &Pki) -> Cert {
    let eku = Some(Eku::ServerAuth);
    make(
        "expired.example.test",
        &P256,
        None,
        &[HOST],
        Some(&pki.inter),
        (2022, 2023),
        eku,
    )
}

/// A P-256 CA certificate under `parent` with these basic constraints and a keyUsage of
/// exactly `usage`.
fn custom_ca(
    cn: &str,
    constraints: rcgen::BasicConstraints,
    usage: rcgen::KeyUsagePurpose,
    parent: &Cert,
) -> Cert {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(constraints);
    params.key_usages = vec![usage];
    params.not_before = rcgen::date_time_ymd(2021, 1, 1);
    params.not_after = rcgen::date_time_ymd(2055, 1, 1);
    let key = rcgen::KeyPair::generate_for(&P256).unwrap();
    let cert = params.signed_by(&key, &parent.issuer()).unwrap();
    Cert {
        pem: cert.pem(),
        der: cert.der().clone(),
        params,
        key,
    }
}

/// What else must hold of a case.
#[derive(Debug)]
enum Check {
    /// The refusal's explanation (the error's `Display`), word for word.
    Says(&'static str),
    /// The explanation begins so.
    SaysFirst(&'static str),
    /// The explanation never holds this.
    NeverSays(&'static str),
    /// The dates were checked against the clock.
    UsedClock,
    /// The dates were checked against this time.
    CheckedAgainst(TimeUsed),
    /// The dates were not checked (`TimeSource::dangerous_no_expiry_check`).
    DatesNotChecked,
    /// The server received this alert.
    Alert(AlertDescription),
}

use Check::*;

/// What a row does not say: the host is [`HOST`], the verifier's time the fixed clock
/// ([`Time::Fixed`]), and nothing else is checked. Every row says its name, its certificates
/// and what it wants.
const USUAL: Case = Case {
    name: "",
    certs: standard,
    host: HOST,
    time: Time::Fixed,
    want: Ok(()),
    checks: &[],
};

fn assert_ok(outcome: &Outcome, what: &str) {
    assert_eq!(outcome.result, Ok(()), "{what}: {outcome:?}");
    let reply = outcome.reply.as_deref().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{what}: {reply}");
    assert!(reply.ends_with("\r\n\r\nhello"), "{what}: {reply}");
}

fn assert_err(outcome: &Outcome, error: CertError, what: &str) {
    assert_eq!(outcome.result, Err(Some(error)), "{what}: {outcome:?}");
    assert!(outcome.reply.is_none(), "{what}");
}

/// Plays one case.
async fn play(case: &Case) {
    let name = case.name;
    let certs = (case.certs)(&Pki::new(&P256, &P256));
    let anchor = TrustAnchor::from_der(certs.pin.as_ref()).unwrap();
    let (out, served) = run_served(certs.chain, certs.key, anchor, case.host, case.time).await;
    match case.want {
        Ok(()) => assert_ok(&out, name),
        Err(error) => assert_err(&out, error, name),
    }
    let explained = out.explained.as_deref();
    for check in case.checks {
        match *check {
            Says(text) => assert_eq!(explained, Some(text), "{name}"),
            SaysFirst(text) => assert!(
                explained.is_some_and(|e| e.starts_with(text)),
                "{name}: {explained:?}"
            ),
            NeverSays(text) => assert!(!explained.unwrap().contains(text), "{name}: {explained:?}"),
            UsedClock => assert!(out.used_clock(), "{name}: {:?}", out.time_used),
            CheckedAgainst(time) => assert_eq!(out.time_used, Some(time), "{name}"),
            DatesNotChecked => assert!(
                matches!(out.time_used, Some(TimeUsed::NotChecked(_))),
                "{name}: {:?}",
                out.time_used
            ),
            Alert(alert) => assert_eq!(served.alert_received(), Some(alert), "{name}"),
        }
    }
}

/// Plays every case at once, each on a server of its own; names every case that failed.
async fn play_all(cases: &'static [Case]) {
    // The client's futures are not `Send`: the cases run as local tasks on the test's thread.
    let failed = tokio::task::LocalSet::new()
        .run_until(async {
            let playing: Vec<_> = cases
                .iter()
                .map(|case| (case.name, tokio::task::spawn_local(play(case))))
                .collect();
            let mut failed = Vec::new();
            for (name, task) in playing {
                if task.await.is_err() {
                    failed.push(name);
                }
            }
            failed
        })
        .await;
    assert!(failed.is_empty(), "failed: {failed:?}");
    // One line per case played (`--show-output`): CI checks by name that the cases that exist
    // only without a feature ran.
    for case in cases {
        println!("case {:?} ... ok", case.name);
    }
}

/// The refusal of `host` by a certificate whose only name is `*.example.test`.
macro_rules! wildcard_refusal {
    ($host:literal) => {
        concat!(
            "TLS certificate refused: the host \"",
            $host,
            "\" is not among the certificate's names: \"*.example.test\"; a wildcard covers \
             exactly one left-most label (\"*.example.com\" matches \"api.example.com\", not \
             \"example.com\" nor \"a.api.example.com\")"
        )
    };
}

/// Which certificate the client pins.
const PINS: &[Case] = &[
    Case {
        // Also what `root_pinned_with_clock_ok` was: the same test word for word.
        name: "the root: the reply arrives, the dates checked against the clock",
        certs: standard,
        want: Ok(()),
        checks: &[UsedClock],
        ..USUAL
    },
    Case {
        name: "the intermediate",
        certs: |p| sends(&p.leaf, &[&p.inter], &p.inter),
        want: Ok(()),
        ..USUAL
    },
    Case {
        name: "the server's own leaf: refused, with the advice to pin the root",
        certs: |p| sends(&p.leaf, &[&p.inter], &p.leaf),
        want: Err(CertError::PinnedIsLeaf),
        checks: &[Says(
            "TLS certificate refused: the pinned certificate is the server's own leaf: pin the \
             root CA that issued its chain; the chain the server sent ends with a certificate \
             issued by \"Test Root CA\"",
        )],
        ..USUAL
    },
    Case {
        name: "an old leaf (since renewed with a new key): refused as a pinned leaf",
        certs: |p| sends(&p.leaf, &[&p.inter], &leaf(HOST, &P256, &[HOST], &p.inter)),
        want: Err(CertError::PinnedIsLeaf),
        ..USUAL
    },
    Case {
        name: "an unrelated root: the real issuer is named",
        certs: |p| sends(&p.leaf, &[&p.inter], &root("Other Root CA", &P256)),
        want: Err(CertError::ChainNotToPin),
        checks: &[Says(
            "TLS certificate refused: the chain does not lead to the pinned certificate \
             \"Other Root CA\"; its top certificate \"Test Intermediate CA\" was issued by \
             \"Test Root CA\": pin \"Test Root CA\" if that is the CA you trust for this server",
        )],
        ..USUAL
    },
    Case {
        name: "a root of the same name with another key: a bad signature",
        certs: |p| sends(&p.leaf, &[&p.inter], &root("Test Root CA", &P256)),
        want: Err(CertError::BadChainSignature),
        ..USUAL
    },
    Case {
        name: "another root than the one the server sends too: the root sent is named",
        certs: |p| sends(&p.leaf, &[&p.inter, &p.root], &root("Other Root CA", &P256)),
        want: Err(CertError::ChainNotToPin),
        checks: &[Says(
            "TLS certificate refused: the chain ends at the root \"Test Root CA\" (sent by the \
             server), not at the pinned certificate \"Other Root CA\": pin \"Test Root CA\" if \
             that is the CA you trust for this server",
        )],
        ..USUAL
    },
];

/// The host against the certificate's names.
const NAMES: &[Case] = &[
    Case {
        name: "another host (SNI): a name error",
        certs: standard,
        host: "other.example.test",
        want: Err(CertError::NameMismatch),
        checks: &[Says(
            "TLS certificate refused: the host \"other.example.test\" is not among the \
             certificate's names: \"api.example.test\"",
        )],
        ..USUAL
    },
    Case {
        // CN = api.example.test, but the only SAN is another name: the CN is never used.
        name: "the host only in the common name",
        certs: |p| serving(p, leaf(HOST, &P256, &["www.example.test"], &p.inter)),
        want: Err(CertError::NameMismatch),
        checks: &[Says(
            "TLS certificate refused: the host \"api.example.test\" is not among the \
             certificate's names: \"www.example.test\"",
        )],
        ..USUAL
    },
    Case {
        name: "no subjectAltName at all, only CN = the host: explained, bad_certificate sent",
        certs: |p| serving(p, leaf(HOST, &P256, &[], &p.inter)),
        want: Err(CertError::NoSubjectAltName),
        checks: &[
            Says(
                "TLS certificate refused: the server's certificate has no subjectAltName \
                 extension, only the common name \"api.example.test\", which is not used to \
                 match host names (as in browsers and rustls): reissue it with subjectAltName \
                 DNS:api.example.test",
            ),
            Alert(AlertDescription::BadCertificate),
        ],
        ..USUAL
    },
    Case {
        name: "a wildcard covers one label",
        certs: |p| serving(p, leaf("wild", &P256, &["*.example.test"], &p.inter)),
        want: Ok(()),
        ..USUAL
    },
    Case {
        name: "a wildcard does not cover two labels",
        certs: |p| serving(p, leaf("wild", &P256, &["*.example.test"], &p.inter)),
        host: "a.api.example.test",
        want: Err(CertError::NameMismatch),
        checks: &[Says(wildcard_refusal!("a.api.example.test"))],
        ..USUAL
    },
    Case {
        name: "a wildcard does not cover the domain itself",
        certs: |p| serving(p, leaf("wild", &P256, &["*.example.test"], &p.inter)),
        host: "example.test",
        want: Err(CertError::NameMismatch),
        checks: &[Says(wildcard_refusal!("example.test"))],
        ..USUAL
    },
    Case {
        name: "an IP address as the server name matches an IP SAN",
        certs: |p| serving(p, leaf("device", &P256, &["127.0.0.1"], &p.inter)),
        host: "127.0.0.1",
        want: Ok(()),
        ..USUAL
    },
    Case {
        name: "another IP address does not",
        certs: |p| serving(p, leaf("device", &P256, &["127.0.0.1"], &p.inter)),
        host: "127.0.0.2",
        want: Err(CertError::NameMismatch),
        ..USUAL
    },
];

/// The chain the server sends, and the certificates in it.
const CHAINS: &[Case] = &[
    Case {
        // An ordinary server certificate (no basicConstraints) under the pinned root signs a
        // certificate for our host.
        name: "forged under a certificate without basicConstraints",
        certs: |p| {
            let fake_ca = leaf("evil.example.test", &P256, &["evil.example.test"], &p.inter);
            let forged = leaf(HOST, &P256, &[HOST], &fake_ca);
            sends(&forged, &[&fake_ca, &p.inter], &p.root)
        },
        want: Err(CertError::IssuerNotCa),
        ..USUAL
    },
    Case {
        name: "forged under a certificate with cA=false",
        certs: |p| {
            let evil = "evil.example.test";
            let fake_ca = plain(evil, Some(false), &[evil], &p.root);
            let forged = leaf(HOST, &P256, &[HOST], &fake_ca);
            sends(&forged, &[&fake_ca], &p.root)
        },
        want: Err(CertError::IssuerNotCa),
        ..USUAL
    },
    Case {
        name: "a CA certificate as the server's",
        certs: |p| serving(p, plain(HOST, Some(true), &[HOST], &p.inter)),
        want: Err(CertError::LeafIsCa),
        checks: &[Says(
            "TLS certificate refused: the server's certificate \"api.example.test\" is a CA \
             certificate (basicConstraints cA=true), not a server certificate: issue the server \
             a certificate without cA",
        )],
        ..USUAL
    },
    Case {
        name: "a certificate for TLS clients only (extendedKeyUsage clientAuth)",
        certs: |p| serving(p, dated(p, (2024, 2050), Eku::ClientAuth)),
        want: Err(CertError::NotForServers),
        checks: &[Says(
            "TLS certificate refused: the server's certificate \"api.example.test\" is \
             restricted by extendedKeyUsage to uses other than TLS servers: reissue it with \
             serverAuth",
        )],
        ..USUAL
    },
    Case {
        name: "unrelated extra certificates, out of order, are tolerated",
        certs: |p| {
            let junk_root = root("Junk Root", &P256);
            let junk = intermediate("Junk Intermediate", &P256, &junk_root);
            sends(&p.leaf, &[&junk, &junk_root, &p.inter, &p.root], &p.root)
        },
        want: Ok(()),
        ..USUAL
    },
    Case {
        // The fault is the server's incomplete chain: the message names the missing
        // intermediate and says to pin it or fix the server, never that it is the root.
        name: "only the leaf sent, the root pinned: an incomplete chain, unknown_ca sent",
        certs: |p| sends(&p.leaf, &[], &p.root),
        want: Err(CertError::IncompleteChain),
        checks: &[
            Says(
                "TLS certificate refused: the server sent only its own certificate \
                 \"api.example.test\", not the intermediate \"Test Intermediate CA\" that \
                 issued it: pin \"Test Intermediate CA\" (or the root CA above it), or make the \
                 server send its full chain (leaf and intermediate)",
            ),
            Alert(AlertDescription::UnknownCA),
        ],
        ..USUAL
    },
    Case {
        name: "only the leaf sent, the intermediate named above pinned",
        certs: |p| sends(&p.leaf, &[], &p.inter),
        want: Ok(()),
        ..USUAL
    },
    Case {
        // The server's chain file is wrong: the issuer is named, and pinning it is never
        // suggested.
        name: "the leaf's issuer is none of the certificates sent: an unknown issuer",
        certs: |p| {
            let strangers_root = root("Test Root CA", &P256); // another PKI's
            let wrong = intermediate("Some Other Intermediate", &P256, &strangers_root);
            sends(&p.leaf, &[&wrong], &p.root)
        },
        want: Err(CertError::UnknownIssuer),
        checks: &[
            Says(
                "TLS certificate refused: the server's certificate \"api.example.test\" names \
                 \"Test Intermediate CA\" as its issuer, but no certificate the server sent, \
                 nor the pinned one, is \"Test Intermediate CA\": the server is configured \
                 with the wrong chain; fix the server's certificate chain file",
            ),
            NeverSays("pin \""),
            Alert(AlertDescription::UnknownCA),
        ],
        ..USUAL
    },
    Case {
        // A CA certificate (cA=true) whose keyUsage allows only CRL signing: it may not issue
        // certificates (RFC 5280 §4.2.1.3), which webpki alone does not check.
        name: "an issuing CA without keyCertSign",
        certs: |p| {
            let crl_only = custom_ca("CRL-only CA", Unconstrained, CrlSign, &p.root);
            let server = leaf(HOST, &P256, &[HOST], &crl_only);
            sends(&server, &[&crl_only], &p.root)
        },
        want: Err(CertError::IssuerCannotSign),
        ..USUAL
    },
    Case {
        name: "the same chain with keyCertSign",
        certs: |p| {
            let good = intermediate("Signing CA", &P256, &p.root);
            let server = leaf(HOST, &P256, &[HOST], &good);
            sends(&server, &[&good], &p.root)
        },
        want: Ok(()),
        ..USUAL
    },
    Case {
        // Root → "Constrained CA" (pathLenConstraint 0) → "Sub CA" → leaf.
        name: "one CA too many below a pathLenConstraint of 0",
        certs: |p| {
            let constrained = custom_ca("Constrained CA", Constrained(0), KeyCertSign, &p.root);
            let sub = intermediate("Sub CA", &P256, &constrained);
            let server = leaf(HOST, &P256, &[HOST], &sub);
            sends(&server, &[&sub, &constrained], &p.root)
        },
        want: Err(CertError::PathTooLong),
        ..USUAL
    },
    Case {
        name: "the leaf directly below a pathLenConstraint of 0",
        certs: |p| {
            let constrained = custom_ca("Constrained CA", Constrained(0), KeyCertSign, &p.root);
            let server = leaf(HOST, &P256, &[HOST], &constrained);
            sends(&server, &[&constrained], &p.root)
        },
        want: Ok(()),
        ..USUAL
    },
];

/// 2025-01-01, a floor.
const FLOOR_2025: u64 = 1_735_689_600;

/// The certificates' dates, and the time they are checked against.
const DATES: &[Case] = &[
    Case {
        name: "expired, checked against the clock",
        certs: |p| serving(p, expired(p)),
        want: Err(CertError::Expired),
        checks: &[
            UsedClock,
            SaysFirst(
                "TLS certificate refused: the certificate \"expired.example.test\" expired on \
                 2023-01-01 (checked against 20",
            ),
        ],
        ..USUAL
    },
    Case {
        // Only the loudly named opt-out accepts an expired certificate.
        name: "expired, accepted with dangerous_no_expiry_check",
        certs: |p| serving(p, expired(p)),
        time: Time::NoExpiry,
        want: Ok(()),
        checks: &[DatesNotChecked],
        ..USUAL
    },
    Case {
        // No clock, a floor (e.g. the build time): a certificate that expired before it.
        name: "expired before the floor, no clock",
        certs: |p| serving(p, expired(p)),
        time: Time::Floor(FLOOR_2025),
        want: Err(CertError::Expired),
        checks: &[
            CheckedAgainst(TimeUsed::Floor(FLOOR_2025)),
            Says(EXPIRED_BEFORE_2025),
        ],
        ..USUAL
    },
    Case {
        name: "expired before the floor, the clock not set",
        certs: |p| serving(p, expired(p)),
        time: Time::Unset { floor: FLOOR_2025 },
        want: Err(CertError::Expired),
        checks: &[
            CheckedAgainst(TimeUsed::Floor(FLOOR_2025)),
            Says(EXPIRED_BEFORE_2025),
        ],
        ..USUAL
    },
    // A clock that is not set and no floor: refused, never checked silently without dates. A
    // clock reading before 2025 (an unset RTC counting from 1970) counts as not set.
    Case {
        name: "the clock not set, no floor",
        certs: standard,
        time: Time::Unset { floor: 0 },
        want: Err(CertError::ClockNotSet),
        checks: &[Alert(AlertDescription::InternalError)],
        ..USUAL
    },
    Case {
        name: "a clock reading 1970, no floor",
        certs: standard,
        time: Time::Clock(|| Some(42)),
        want: Err(CertError::ClockNotSet),
        checks: &[Alert(AlertDescription::InternalError)],
        ..USUAL
    },
    Case {
        name: "no clock, a floor of 0",
        certs: standard,
        time: Time::Floor(0),
        want: Err(CertError::ClockNotSet),
        checks: &[Alert(AlertDescription::InternalError)],
        ..USUAL
    },
    Case {
        name: "no clock, a floor just before MIN_TIME",
        certs: standard,
        time: Time::Floor(rawpost::tls::MIN_TIME - 1),
        want: Err(CertError::ClockNotSet),
        checks: &[Alert(AlertDescription::InternalError)],
        ..USUAL
    },
    Case {
        // The floor is used, and said so.
        name: "the clock not set falls back to the floor",
        certs: standard,
        time: Time::Unset {
            floor: 1_765_000_000, // 2025-12-06
        },
        want: Ok(()),
        checks: &[CheckedAgainst(TimeUsed::Floor(1_765_000_000))],
        ..USUAL
    },
    Case {
        name: "not yet valid, checked against the clock",
        certs: |p| serving(p, dated(p, (2040, 2050), Eku::ServerAuth)),
        want: Err(CertError::NotYetValid),
        checks: &[SaysFirst(
            "TLS certificate refused: the certificate \"api.example.test\" is valid only from \
             2040-01-01, and the time used was 20",
        )],
        ..USUAL
    },
];

/// What the expired leaf's refusal says when checked against [`FLOOR_2025`].
const EXPIRED_BEFORE_2025: &str = "TLS certificate refused: the certificate \
    \"expired.example.test\" expired on 2023-01-01 (checked against 2025-01-01): the server \
    must renew it";

/// Certificate algorithms, with and without their features (`cargo test-all` turns on `p384`,
/// `ed25519` and `rsa`; the rows for a feature that is off run without it).
const ALGORITHMS: &[Case] = &[
    #[cfg(feature = "p384")]
    Case {
        name: "a P-384 root over a P-256 chain",
        certs: |_| standard(&Pki::new(&P384, &P256)),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "p384")]
    Case {
        name: "a P-384 root signing the P-256 leaf directly",
        certs: |_| {
            let root = root("P-384 Root", &P384);
            sends(&leaf(HOST, &P256, &[HOST], &root), &[], &root)
        },
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "p384")]
    Case {
        name: "a P-384 leaf: the handshake signature",
        certs: |_| standard(&Pki::new(&P384, &P384)),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(not(feature = "p384"))]
    Case {
        name: "a P-384 root without the feature p384 says so",
        certs: |_| standard(&Pki::new(&P384, &P256)),
        want: Err(CertError::NeedsP384),
        checks: &[Says(
            "TLS certificate refused: certificate algorithm needs feature p384: \"Test Root CA\" \
             uses ECDSA P-384",
        )],
        ..USUAL
    },
    #[cfg(not(feature = "ed25519"))]
    Case {
        name: "an Ed25519 leaf without the feature ed25519",
        certs: |p| serving(p, leaf(HOST, &ED25519, &[HOST], &p.inter)),
        want: Err(CertError::UnsupportedAlgorithm),
        ..USUAL
    },
    #[cfg(not(feature = "rsa"))]
    Case {
        name: "an RSA root over a P-256 chain without the feature rsa",
        certs: |_| standard(&Pki::new(&RSA, &P256)),
        want: Err(CertError::UnsupportedAlgorithm),
        ..USUAL
    },
    // With `ed25519`: certificate signatures and the handshake signature alike.
    #[cfg(feature = "ed25519")]
    Case {
        name: "an Ed25519 leaf under a P-256 intermediate",
        certs: |_| standard(&Pki::new(&P256, &ED25519)),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "ed25519")]
    Case {
        name: "an all-Ed25519 chain",
        certs: |_| all_of(&ED25519, "Ed25519 Root", "Ed25519 Issuing CA"),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "ed25519")]
    Case {
        name: "an all-Ed25519 chain for another host: still a name error",
        certs: |_| all_of(&ED25519, "Ed25519 Root", "Ed25519 Issuing CA"),
        host: "other.example.test",
        want: Err(CertError::NameMismatch),
        ..USUAL
    },
    // With `rsa`: an RSA PKCS#1 certificate signature, and an RSA-PSS handshake signature.
    #[cfg(feature = "rsa")]
    Case {
        name: "an RSA root over a P-256 chain",
        certs: |_| standard(&Pki::new(&RSA, &P256)),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "rsa")]
    Case {
        name: "an all-RSA chain",
        certs: |_| all_of(&RSA, "RSA Root", "RSA Issuing CA"),
        want: Ok(()),
        ..USUAL
    },
    #[cfg(feature = "rsa")]
    Case {
        name: "an all-RSA chain for another host: still a name error",
        certs: |_| all_of(&RSA, "RSA Root", "RSA Issuing CA"),
        host: "other.example.test",
        want: Err(CertError::NameMismatch),
        ..USUAL
    },
];

#[tokio::test]
async fn pins() {
    play_all(PINS).await;
}

#[tokio::test]
async fn names() {
    play_all(NAMES).await;
}

#[tokio::test]
async fn chains() {
    play_all(CHAINS).await;
}

#[tokio::test]
async fn dates() {
    play_all(DATES).await;
}

#[tokio::test]
async fn algorithms() {
    play_all(ALGORITHMS).await;
}

// ---- What a row cannot say: the detail an error carries (how many names it lists), two
// anchors compared, one provider over two servers, `tls::connect` refusing a host before any
// handshake, and a clock with state.

fn anchor(cert: &Cert) -> TrustAnchor<'_> {
    TrustAnchor::from_der(cert.der.as_ref()).unwrap()
}

/// Every SAN is listed (DNS names and IP addresses), up to what the detail holds, then a count.
#[tokio::test]
async fn name_mismatch_lists_the_names_bounded() {
    let pki = Pki::new(&P256, &P256);
    let names: Vec<String> = (1..=20).map(|i| format!("host-{i}.example.test")).collect();
    let mut sans: Vec<&str> = vec!["10.1.2.3", "*.svc.example.test"];
    sans.extend(names.iter().map(String::as_str));
    let leaf = leaf("many", &P256, &sans, &pki.inter);
    let chain = vec![leaf.der.clone(), pki.inter.der.clone()];
    let out = run(chain, leaf.key_der(), anchor(&pki.root), HOST, Time::Fixed).await;
    assert_err(&out, CertError::NameMismatch, "many names");
    let explained = out.explained.unwrap();
    assert!(
        explained.starts_with(
            "TLS certificate refused: the host \"api.example.test\" is not among the \
             certificate's names: \"10.1.2.3\", \"*.svc.example.test\", \"host-1.example.test\", "
        ),
        "{explained}"
    );
    assert!(
        explained.contains(" more; a wildcard covers exactly one left-most label"),
        "{explained}"
    );
    let Some(rawpost::tls::OpenError::Certificate { detail, .. }) = out.error else {
        panic!("not a certificate error")
    };
    let shown = detail.names().count();
    assert_eq!(shown - 1 + detail.left_out(), sans.len(), "{detail:?}");
    assert!(detail.left_out() > 0);
}

#[tokio::test]
async fn pem_and_der_anchor_give_same_result() {
    let pki = Pki::new(&P256, &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(pki.root.pem.as_bytes(), &mut buf).unwrap();
    assert_eq!(from_pem.der(), pki.root.der.as_ref());
    let out = run(pki.chain(), pki.leaf.key_der(), from_pem, HOST, Time::Fixed).await;
    assert_ok(&out, "the root from PEM");

    let other = root("Other Root CA", &P256);
    let mut buf = [0u8; 2048];
    let from_pem = TrustAnchor::from_pem(other.pem.as_bytes(), &mut buf).unwrap();
    let via_pem = run(pki.chain(), pki.leaf.key_der(), from_pem, HOST, Time::Fixed).await;
    let via_der = run(
        pki.chain(),
        pki.leaf.key_der(),
        anchor(&other),
        HOST,
        Time::Fixed,
    )
    .await;
    assert_eq!(via_pem.result, via_der.result);
    assert_eq!(via_pem.explained, via_der.explained);
}

#[tokio::test]
async fn provider_reused_for_second_connection() {
    let pki = Pki::new(&P256, &P256);
    let other = Pki::new(&P256, &P256);
    let mut provider = rawpost::tls::PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(fixed_clock),
    );

    let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
    assert_ok(&connect(addr, HOST, &mut provider).await, "first server");
    server.await.unwrap().request.unwrap();

    // Second server is under another root: the earlier success must not leak.
    let (addr, server) = serve(other.chain(), other.leaf.key_der()).await;
    let out = connect(addr, HOST, &mut provider).await;
    let _ = server.await;
    assert_err(&out, CertError::BadChainSignature, "second server");
}

/// `tls::connect` refuses a host that is not a valid name before a byte of the handshake.
#[tokio::test]
async fn connect_refuses_an_invalid_host_name() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rawpost::tls::PinnedProvider;
    let pki = Pki::new(&P256, &P256);
    let (addr, _server) = serve(pki.chain(), pki.leaf.key_der()).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read_buf, mut write_buf) = (vec![0u8; 16640], vec![0u8; 4096]);
    let mut provider = PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(fixed_clock),
    );
    let mut buf = [0u8; 512];
    let host = rawpost::Host::new("api example test");
    let tcp = FromTokio::new(tcp);
    let err = rawpost::tls::connect(
        tcp,
        &mut read_buf,
        &mut write_buf,
        host,
        &mut provider,
        &mut buf,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.cert_error(),
        Some(CertError::InvalidServerName),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "TLS certificate refused: the host \"api example test\" is neither a DNS name nor an \
         IP address (write IPv6 in brackets, e.g. [::1])"
    );
}

/// A clock with state (an SNTP result and when it arrived), not a `static`: `Clock` is a trait.
#[tokio::test]
async fn a_clock_with_state_is_a_clock() {
    struct Synced {
        unix_at_sync: u64,
        synced_at: std::time::Instant,
    }
    impl rawpost::tls::Clock for Synced {
        fn now(&self) -> Option<u64> {
            Some(self.unix_at_sync + self.synced_at.elapsed().as_secs())
        }
    }
    let pki = Pki::new(&P256, &P256);
    let (addr, server) = serve(pki.chain(), pki.leaf.key_der()).await;
    let clock = Synced {
        unix_at_sync: fixed_clock().unwrap(),
        synced_at: std::time::Instant::now(),
    };
    let mut provider = rawpost::tls::PinnedProvider::new(
        rand_core::OsRng,
        anchor(&pki.root),
        rawpost::tls::TimeSource::clock(clock),
    );
    let out = connect(addr, HOST, &mut provider).await;
    server.await.unwrap();
    assert_ok(&out, "a clock with state");
    assert!(out.used_clock());
    // The clock can be updated in place (a new SNTP result).
    provider.time_source_mut().clock_mut().unix_at_sync = 0;
}
