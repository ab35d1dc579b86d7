//! ECDSA signature verification for rustls-webpki, built on the RustCrypto `p256`/`p384` crates
//! (no ring, no alloc).

use core::fmt;

use ecdsa::signature::hazmat::PrehashVerifier;
use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm,
};
use sha2::Digest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    #[cfg(feature = "p384")]
    P384,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
}

/// One ECDSA curve + hash combination, as webpki's `SignatureVerificationAlgorithm`.
///
/// The signature is the DER `Ecdsa-Sig-Value` used both in X.509 and in TLS 1.3
/// `CertificateVerify`; the public key is the SEC1 point from the SubjectPublicKeyInfo.
pub struct Ecdsa {
    curve: Curve,
    hash: Hash,
}

impl fmt::Debug for Ecdsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ECDSA {:?} {:?}", self.curve, self.hash)
    }
}

/// ECDSA with a P-256 key and SHA-256.
pub static ECDSA_P256_SHA256: Ecdsa = Ecdsa {
    curve: Curve::P256,
    hash: Hash::Sha256,
};
/// ECDSA with a P-256 key and SHA-384.
pub static ECDSA_P256_SHA384: Ecdsa = Ecdsa {
    curve: Curve::P256,
    hash: Hash::Sha384,
};
/// ECDSA with a P-384 key and SHA-256.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA256: Ecdsa = Ecdsa {
    curve: Curve::P384,
    hash: Hash::Sha256,
};
/// ECDSA with a P-384 key and SHA-384.
#[cfg(feature = "p384")]
pub static ECDSA_P384_SHA384: Ecdsa = Ecdsa {
    curve: Curve::P384,
    hash: Hash::Sha384,
};

/// Every algorithm accepted for certificate signatures: webpki's standard ECDSA set minus P-521,
/// and Ed25519 with the `ed25519` feature.
pub static ALL: &[&dyn SignatureVerificationAlgorithm] = &[
    &ECDSA_P256_SHA256,
    &ECDSA_P256_SHA384,
    #[cfg(feature = "p384")]
    &ECDSA_P384_SHA256,
    #[cfg(feature = "p384")]
    &ECDSA_P384_SHA384,
    #[cfg(feature = "ed25519")]
    &ED25519,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA256,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA384,
    #[cfg(feature = "rsa")]
    &RSA_PKCS1_SHA512,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA256,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA384,
    #[cfg(feature = "rsa")]
    &RSA_PSS_SHA512,
];

/// RSA signatures (feature `rsa`, which needs an allocator): PKCS#1 v1.5 for certificates,
/// PSS for certificates and TLS 1.3 `CertificateVerify`, keys of 2048 to 8192 bits as webpki's
/// standard set allows.
#[cfg(feature = "rsa")]
#[derive(Debug)]
pub struct Rsa {
    pss: bool,
    hash: RsaHash,
}

#[cfg(feature = "rsa")]
#[derive(Debug, Clone, Copy)]
enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

/// RSA PKCS#1 v1.5 with SHA-256.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA256: Rsa = Rsa {
    pss: false,
    hash: RsaHash::Sha256,
};
/// RSA PKCS#1 v1.5 with SHA-384.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA384: Rsa = Rsa {
    pss: false,
    hash: RsaHash::Sha384,
};
/// RSA PKCS#1 v1.5 with SHA-512.
#[cfg(feature = "rsa")]
pub static RSA_PKCS1_SHA512: Rsa = Rsa {
    pss: false,
    hash: RsaHash::Sha512,
};
/// RSA-PSS (RSAE) with SHA-256.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA256: Rsa = Rsa {
    pss: true,
    hash: RsaHash::Sha256,
};
/// RSA-PSS (RSAE) with SHA-384.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA384: Rsa = Rsa {
    pss: true,
    hash: RsaHash::Sha384,
};
/// RSA-PSS (RSAE) with SHA-512.
#[cfg(feature = "rsa")]
pub static RSA_PSS_SHA512: Rsa = Rsa {
    pss: true,
    hash: RsaHash::Sha512,
};

#[cfg(feature = "rsa")]
fn rsa_verify<D>(pss: bool, key: rsa::RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::FixedOutputReset + rsa::pkcs8::AssociatedOid,
{
    use rsa::signature::Verifier;
    if pss {
        let Ok(sig) = rsa::pss::Signature::try_from(signature) else {
            return false;
        };
        rsa::pss::VerifyingKey::<D>::new(key)
            .verify(message, &sig)
            .is_ok()
    } else {
        let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
            return false;
        };
        rsa::pkcs1v15::VerifyingKey::<D>::new(key)
            .verify(message, &sig)
            .is_ok()
    }
}

#[cfg(feature = "rsa")]
impl SignatureVerificationAlgorithm for Rsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_pkcs1_der(public_key).map_err(|_| InvalidSignature)?;
        if !(2048..=8192).contains(&key.n().bits()) {
            return Err(InvalidSignature);
        }
        let ok = match self.hash {
            RsaHash::Sha256 => rsa_verify::<sha2::Sha256>(self.pss, key, message, signature),
            RsaHash::Sha384 => rsa_verify::<sha2::Sha384>(self.pss, key, message, signature),
            RsaHash::Sha512 => rsa_verify::<sha2::Sha512>(self.pss, key, message, signature),
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidSignature)
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match (self.pss, self.hash) {
            (false, RsaHash::Sha256) => alg_id::RSA_PKCS1_SHA256,
            (false, RsaHash::Sha384) => alg_id::RSA_PKCS1_SHA384,
            (false, RsaHash::Sha512) => alg_id::RSA_PKCS1_SHA512,
            (true, RsaHash::Sha256) => alg_id::RSA_PSS_SHA256,
            (true, RsaHash::Sha384) => alg_id::RSA_PSS_SHA384,
            (true, RsaHash::Sha512) => alg_id::RSA_PSS_SHA512,
        }
    }
}

/// Ed25519 (RFC 8032), for certificates and TLS 1.3 `CertificateVerify`: the message is signed
/// as it is, with no separate hash.
#[cfg(feature = "ed25519")]
#[derive(Debug)]
pub struct Ed25519;

/// Ed25519 with the `ed25519` feature.
#[cfg(feature = "ed25519")]
pub static ED25519: Ed25519 = Ed25519;

#[cfg(feature = "ed25519")]
impl SignatureVerificationAlgorithm for Ed25519 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key: &[u8; 32] = public_key.try_into().map_err(|_| InvalidSignature)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| InvalidSignature)?;
        let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| InvalidSignature)?;
        key.verify_strict(message, &sig)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ED25519
    }
}

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let mut digest = [0u8; 48];
        let digest = match self.hash {
            Hash::Sha256 => {
                digest[..32].copy_from_slice(&sha2::Sha256::digest(message));
                &digest[..32]
            }
            Hash::Sha384 => {
                digest.copy_from_slice(&sha2::Sha384::digest(message));
                &digest[..]
            }
        };
        // `verify_prehash` applies ECDSA's bits2int truncation/padding, so a SHA-384 digest
        // with a P-256 key (and SHA-256 with P-384) is handled as the standard requires.
        let ok = match self.curve {
            Curve::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(digest, &sig).is_ok()
            }
            #[cfg(feature = "p384")]
            Curve::P384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(digest, &sig).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(InvalidSignature)
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            Curve::P256 => alg_id::ECDSA_P256,
            #[cfg(feature = "p384")]
            Curve::P384 => alg_id::ECDSA_P384,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self.hash {
            Hash::Sha256 => alg_id::ECDSA_SHA256,
            Hash::Sha384 => alg_id::ECDSA_SHA384,
        }
    }
}

/// DER of the secp384r1 curve OID (1.3.132.0.34), found in every P-384 SubjectPublicKeyInfo.
const SECP384R1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Whether `der` (a certificate) mentions the P-384 curve.
///
/// Only used to choose between two error messages ("needs feature p384" or "unsupported
/// algorithm"), never to accept anything.
pub(crate) fn mentions_p384(der: &[u8]) -> bool {
    der.windows(SECP384R1.len()).any(|w| w == SECP384R1)
}
