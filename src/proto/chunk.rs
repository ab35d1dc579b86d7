//! Chunked encoding of a streamed request body: each piece is framed in the buffer so that a
//! chunk costs one write.

use core::ops::Range;

use crate::error::RequestError;

/// The last chunk and the empty trailer section that end a chunked body.
pub const LAST: &[u8] = b"0\r\n\r\n";

/// The most framing bytes a chunk needs: 16 hex digits, CRLF, and CRLF after the data.
const OVERHEAD: usize = 16 + 2 + 2;

/// Frames as much of `data` as fits in `buf[space]` as one chunk (`size CRLF data CRLF`).
/// Returns the frame's range in `buf` and how many bytes of `data` it carries.
///
/// `data` must not be empty (an empty chunk would end the body).
pub fn frame(
    buf: &mut [u8],
    space: Range<usize>,
    data: &[u8],
) -> Result<(Range<usize>, usize), RequestError> {
    let start = space.start;
    let frame = buf.get_mut(space).unwrap_or(&mut []);
    let room = frame.len().saturating_sub(OVERHEAD);
    if room == 0 || data.is_empty() {
        return Err(RequestError::BufferTooSmall {
            needed: start + OVERHEAD + 1,
        });
    }
    let n = data.len().min(room);
    let digits = crate::proto::head::Digits::hex(n as u64);
    let d = digits.as_bytes().len();
    frame[..d].copy_from_slice(digits.as_bytes());
    frame[d..d + 2].copy_from_slice(b"\r\n");
    frame[d + 2..d + 2 + n].copy_from_slice(&data[..n]);
    frame[d + 2 + n..d + 4 + n].copy_from_slice(b"\r\n");
    Ok((start..start + d + 4 + n, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::body::ChunkedDecoder;

    #[test]
    fn frames_decode_back() {
        let mut buf = [0u8; 64];
        let data: Vec<u8> = (0..100u8).collect();
        let mut wire = Vec::new();
        let mut sent = 0;
        while sent < data.len() {
            let (range, n) = frame(&mut buf, 10..64, &data[sent..]).unwrap();
            assert_eq!(n, (data.len() - sent).min(64 - 10 - OVERHEAD));
            wire.extend_from_slice(&buf[range]);
            sent += n;
        }
        wire.extend_from_slice(LAST);
        assert!(wire.starts_with(b"22\r\n\0\x01"));
        let mut d = ChunkedDecoder::new();
        let mut out = vec![0u8; 200];
        let (used, produced) = d.decode(&wire, &mut out).unwrap();
        assert!(d.at_trailers());
        assert_eq!(&out[..produced], &data[..]);
        assert_eq!(&wire[used..], b"\r\n");
    }

    #[test]
    fn too_small() {
        let mut buf = [0u8; 21];
        assert_eq!(frame(&mut buf, 0..21, b"ab"), Ok((0..6, 1)));
        assert_eq!(&buf[..6], b"1\r\na\r\n");
        assert_eq!(
            frame(&mut buf, 1..21, b"ab"),
            Err(RequestError::BufferTooSmall { needed: 22 })
        );
    }
}
