//! A tiny DER reader for the few certificate fields the verifier reports on.
//!
//! Path validation itself is done by rustls-webpki. This module only extracts what webpki does
//! not expose without `alloc`: the validity window (for the no-clock mode and for naming the
//! expired certificate), the subject public key (kept for the `CertificateVerify` check) and a
//! readable name (common name) for error details. Everything here treats its input as untrusted
//! and returns `None` on anything unexpected.

/// DER tags used below.
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_T61_STRING: u8 = 0x14;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
/// `[0] EXPLICIT` — the optional version field of a TBSCertificate.
pub(crate) const TAG_VERSION: u8 = 0xa0;

/// A cursor over DER-encoded bytes.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads one element (single-byte tags only), returning its tag and contents.
    pub(crate) fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, contents))
    }

    /// Reads one element that must have tag `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }
}

/// The fields of a certificate's TBSCertificate that this crate looks at.
#[derive(Clone, Copy)]
pub(crate) struct CertFields<'a> {
    /// Issuer `Name` contents (without the outer SEQUENCE header).
    pub(crate) issuer: &'a [u8],
    /// Subject `Name` contents (without the outer SEQUENCE header).
    pub(crate) subject: &'a [u8],
    /// notBefore, Unix seconds.
    pub(crate) not_before: u64,
    /// notAfter, Unix seconds.
    pub(crate) not_after: u64,
    /// The whole SubjectPublicKeyInfo, including its SEQUENCE header.
    pub(crate) spki: &'a [u8],
    /// SubjectPublicKeyInfo contents (without the SEQUENCE header), as webpki stores it.
    pub(crate) spki_contents: &'a [u8],
}

/// Parses the interesting fields of a DER certificate.
pub(crate) fn cert_fields(der: &[u8]) -> Option<CertFields<'_>> {
    let cert = Reader::new(der).expect(TAG_SEQUENCE)?;
    let mut tbs = Reader::new(Reader::new(cert).expect(TAG_SEQUENCE)?);
    let mut peek = tbs;
    if let Some((TAG_VERSION, _)) = peek.any() {
        tbs = peek;
    }
    tbs.expect(TAG_INTEGER)?; // serialNumber
    tbs.expect(TAG_SEQUENCE)?; // signature AlgorithmIdentifier
    let issuer = tbs.expect(TAG_SEQUENCE)?;
    let mut validity = Reader::new(tbs.expect(TAG_SEQUENCE)?);
    let not_before = read_time(&mut validity)?;
    let not_after = read_time(&mut validity)?;
    let subject = tbs.expect(TAG_SEQUENCE)?;
    let before_spki = tbs.rest;
    let spki_contents = tbs.expect(TAG_SEQUENCE)?;
    let spki = &before_spki[..before_spki.len() - tbs.rest.len()];
    Some(CertFields {
        issuer,
        subject,
        not_before,
        not_after,
        spki,
        spki_contents,
    })
}

/// The value (the contents of extnValue's OCTET STRING) of the extension `oid` of a DER
/// certificate: `Some(None)` when the certificate has no such extension, `None` when it is
/// malformed.
pub(crate) fn extension<'a>(der: &'a [u8], oid: &[u8]) -> Option<Option<&'a [u8]>> {
    const TAG_EXTENSIONS: u8 = 0xa3;
    const TAG_BOOLEAN: u8 = 0x01;
    const TAG_OCTET_STRING: u8 = 0x04;
    let cert = Reader::new(der).expect(TAG_SEQUENCE)?;
    let mut tbs = Reader::new(Reader::new(cert).expect(TAG_SEQUENCE)?);
    let mut peek = tbs;
    if let Some((TAG_VERSION, _)) = peek.any() {
        tbs = peek;
    }
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
    for tag in [
        TAG_INTEGER,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
        TAG_SEQUENCE,
    ] {
        tbs.expect(tag)?;
    }
    // issuerUniqueID [1], subjectUniqueID [2], then extensions [3].
    while let Some((tag, contents)) = tbs.any() {
        if tag != TAG_EXTENSIONS {
            continue;
        }
        let mut exts = Reader::new(Reader::new(contents).expect(TAG_SEQUENCE)?);
        while let Some(ext) = exts.expect(TAG_SEQUENCE) {
            let mut ext = Reader::new(ext);
            if ext.expect(TAG_OID)? != oid {
                continue;
            }
            let mut value = ext;
            if let Some((TAG_BOOLEAN, _)) = value.any() {
                ext = value;
            }
            return Some(Some(ext.expect(TAG_OCTET_STRING)?));
        }
        return Some(None);
    }
    Some(None)
}

/// The first byte of a certificate's keyUsage bits (`digitalSignature` is 0x80, `keyCertSign`
/// 0x04): `Some(None)` when the certificate has no keyUsage extension, `None` when it is
/// malformed.
pub(crate) fn key_usage(der: &[u8]) -> Option<Option<u8>> {
    const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    let Some(value) = extension(der, OID_KEY_USAGE)? else {
        return Some(None);
    };
    let bits = Reader::new(value).expect(TAG_BIT_STRING)?;
    match bits {
        [_unused, first, ..] => Some(Some(*first)),
        _ => Some(Some(0)),
    }
}

/// A certificate's basicConstraints: (cA, pathLenConstraint); `(false, None)` without the
/// extension, `None` when it is malformed.
pub(crate) fn basic_constraints(der: &[u8]) -> Option<(bool, Option<u64>)> {
    const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    const TAG_BOOLEAN: u8 = 0x01;
    let Some(value) = extension(der, OID_BASIC_CONSTRAINTS)? else {
        return Some((false, None));
    };
    let mut r = Reader::new(Reader::new(value).expect(TAG_SEQUENCE)?);
    let mut ca = false;
    let mut path_len = None;
    while let Some((tag, contents)) = r.any() {
        match tag {
            TAG_BOOLEAN => ca = contents.first().is_some_and(|&b| b != 0),
            TAG_INTEGER if contents.len() <= 8 => {
                path_len = Some(
                    contents
                        .iter()
                        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
                );
            }
            _ => return None,
        }
    }
    Some((ca, path_len))
}

/// One name of a subjectAltName extension that this crate reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SanName<'a> {
    /// dNSName.
    Dns(&'a [u8]),
    /// iPAddress: 4 or 16 bytes.
    Ip(&'a [u8]),
}

/// Calls `f` for each DNS name and IP address of the certificate's subjectAltName. Returns
/// `Some(false)` when the certificate has no subjectAltName extension, `None` when it is
/// malformed.
pub(crate) fn subject_alt_names<'a>(der: &'a [u8], mut f: impl FnMut(SanName<'a>)) -> Option<bool> {
    const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
    const TAG_DNS_NAME: u8 = 0x82;
    const TAG_IP_ADDRESS: u8 = 0x87;
    let Some(value) = extension(der, OID_SAN)? else {
        return Some(false);
    };
    let mut names = Reader::new(Reader::new(value).expect(TAG_SEQUENCE)?);
    while let Some((tag, contents)) = names.any() {
        match tag {
            TAG_DNS_NAME => f(SanName::Dns(contents)),
            TAG_IP_ADDRESS => f(SanName::Ip(contents)),
            _ => {}
        }
    }
    Some(true)
}

/// Splits SubjectPublicKeyInfo contents into (AlgorithmIdentifier contents, key bits).
///
/// The key must be a whole number of bytes (no unused bits), as every supported key type is.
pub(crate) fn spki_parts(spki_contents: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut r = Reader::new(spki_contents);
    let alg = r.expect(TAG_SEQUENCE)?;
    let bits = r.expect(TAG_BIT_STRING)?;
    if !r.is_empty() {
        return None;
    }
    match bits.split_first() {
        Some((0, key)) => Some((alg, key)),
        _ => None,
    }
}

fn read_time(r: &mut Reader<'_>) -> Option<u64> {
    let (tag, s) = r.any()?;
    let (year, rest) = match tag {
        TAG_UTC_TIME => {
            let yy = digits(s.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        TAG_GENERALIZED_TIME => (digits(s.get(..4)?)?, s.get(4..)?),
        _ => return None,
    };
    // MMDDHHMMSSZ, as RFC 5280 requires for both forms.
    if rest.len() != 11 || rest[10] != b'Z' {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    if year < 1970 {
        return Some(0); // before the Unix epoch: as early as we can tell
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn digits(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a Unix time.
pub(crate) fn civil_date(unix_secs: u64) -> (u64, u64, u64) {
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = unix_secs / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// OID 2.5.4.3 (commonName), contents only.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
/// OID 2.5.4.10 (organizationName), contents only.
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
/// OID 2.5.4.11 (organizationalUnitName), contents only.
const OID_OU: &[u8] = &[0x55, 0x04, 0x0b];

/// A readable label for a `Name` (contents without the SEQUENCE header): its common name, or
/// failing that its organization or organizational unit.
pub(crate) fn name_label(name: &[u8]) -> Option<&str> {
    [OID_CN, OID_O, OID_OU]
        .iter()
        .find_map(|oid| name_attribute(name, oid))
}

/// The common name of a `Name` (contents without the SEQUENCE header), if it has one.
pub(crate) fn common_name(name: &[u8]) -> Option<&str> {
    name_attribute(name, OID_CN)
}

fn name_attribute<'a>(name: &'a [u8], wanted: &[u8]) -> Option<&'a str> {
    let mut rdns = Reader::new(name);
    while let Some(set) = rdns.expect(TAG_SET) {
        let mut atvs = Reader::new(set);
        while let Some(atv) = atvs.expect(TAG_SEQUENCE) {
            let mut atv = Reader::new(atv);
            if atv.expect(TAG_OID)? != wanted {
                continue;
            }
            return match atv.any()? {
                (
                    TAG_UTF8_STRING | TAG_PRINTABLE_STRING | TAG_IA5_STRING | TAG_T61_STRING,
                    value,
                ) => core::str::from_utf8(value).ok(),
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn dates_from_unix_times() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_747_094_399), (2025, 5, 12));
        assert_eq!(civil_date(2_524_608_000), (2050, 1, 1));
        for days in [0u64, 59, 60, 365, 11_017, 19_782, 47_481] {
            let (y, m, d) = civil_date(days * 86_400);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn times() {
        let utc = [
            TAG_UTC_TIME,
            13,
            b'2',
            b'5',
            b'0',
            b'5',
            b'1',
            b'2',
            b'2',
            b'3',
            b'5',
            b'9',
            b'5',
            b'9',
            b'Z',
        ];
        assert_eq!(read_time(&mut Reader::new(&utc)), Some(1_747_094_399));
        let gen = *b"\x18\x0f20500101000000Z";
        assert_eq!(read_time(&mut Reader::new(&gen)), Some(2_524_608_000));
        let bad = *b"\x18\x0f2050010100000Z0";
        assert_eq!(read_time(&mut Reader::new(&bad)), None);
    }
}
