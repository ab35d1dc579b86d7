//! Small text rules shared by the response parser and the framing decision (RFC 9110 §5.6).

/// Trims optional white space (SP, HTAB) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Iterates the elements of a comma-separated list value, trimmed, skipping empty elements
/// (RFC 9110 §5.6.1).
pub fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&c| c == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_splits() {
        assert_eq!(trim_ows(b" \ta b\t "), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        let items: Vec<&[u8]> = list(b" gzip ,, chunked ,").collect();
        assert_eq!(items, [&b"gzip"[..], b"chunked"]);
    }
}
