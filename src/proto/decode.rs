//! Response body decoding: fixed length, chunked, until close.
//!
//! Chunk-size lines follow RFC 9112 §7.1 with two deliberate leniencies, the same as hyper's
//! and httparse's: white space after the size that is not followed by an extension
//! (`Ff   CRLF`), and empty or malformed extensions (`1;;`). Extensions carry nothing a client
//! uses and §7.1.1 says a recipient MUST ignore unrecognized ones, so their bytes are skipped
//! (bounded by [`MAX_CHUNK_LINE`], control characters refused); neither leniency can change
//! where a chunk ends, which is what the size and the CRLFs decide, strictly.
//!
//! A decoder is fed bytes from the connection buffer and writes body bytes to the caller's
//! slice. When no bytes are buffered, [`BodyDecoder::direct_limit`] says how many raw body bytes
//! the next read may put straight into the caller's slice, so the common case costs no copy.

use crate::error::ResponseError;
use crate::proto::framing::Framing;

/// The longest chunk-size line (size, extensions and CRLF) accepted.
pub const MAX_CHUNK_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Chunk {
    /// At the start of a chunk-size line.
    SizeStart,
    /// In the hex digits.
    Size { value: u64 },
    /// After the digits: white space before `;` (`in_ext` false), or inside extensions.
    Ext { value: u64, in_ext: bool },
    /// Expecting the LF that ends the chunk-size line.
    SizeLf { value: u64 },
    /// In the chunk's data.
    Data { remaining: u64 },
    /// Expecting the CR after the data.
    DataCr,
    /// Expecting the LF after the data.
    DataLf,
    /// The last chunk was read; the trailer section (possibly empty) follows.
    Trailers,
}

/// A chunked transfer-coding decoder (RFC 9112 §7.1) for the bytes up to the trailer section.
///
/// Chunk extensions are ignored (bounded by [`MAX_CHUNK_LINE`]); sizes that overflow `u64`,
/// non-hex digits and a missing CRLF after the data are errors. Only CRLF line endings are
/// accepted inside the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChunkedDecoder {
    state: Chunk,
    line_len: u16,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of the first chunk.
    pub const fn new() -> Self {
        Self {
            state: Chunk::SizeStart,
            line_len: 0,
        }
    }

    /// Whether the last chunk has been read and the trailer section comes next.
    pub fn at_trailers(&self) -> bool {
        self.state == Chunk::Trailers
    }

    /// Data bytes left in the current chunk, when inside one.
    pub fn data_remaining(&self) -> Option<u64> {
        match self.state {
            Chunk::Data { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Records `n` data bytes of the current chunk as read (by `decode` or by a direct read).
    pub fn advance_data(&mut self, n: u64) {
        if let Chunk::Data { remaining } = self.state {
            let remaining = remaining.saturating_sub(n);
            self.state = if remaining == 0 {
                Chunk::DataCr
            } else {
                Chunk::Data { remaining }
            };
        }
    }

    /// One byte of a chunk-size line after the first digit.
    fn size_line_byte(&mut self, c: u8) -> Result<Chunk, ResponseError> {
        self.line_len = self.line_len.saturating_add(1);
        // The LF that ends the line counts too: a line of exactly MAX_CHUNK_LINE bytes,
        // CRLF included, is the longest accepted.
        if usize::from(self.line_len) + 1 > MAX_CHUNK_LINE {
            return Err(ResponseError::ChunkSizeOverflow);
        }
        Ok(match (self.state, c) {
            (Chunk::Size { value }, _) if hex(c).is_some() => {
                let digit = u64::from(hex(c).unwrap_or(0));
                let value = value
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(ResponseError::ChunkSizeOverflow)?;
                Chunk::Size { value }
            }
            (Chunk::Size { value } | Chunk::Ext { value, .. }, b'\r') => Chunk::SizeLf { value },
            (
                Chunk::Size { value }
                | Chunk::Ext {
                    value,
                    in_ext: false,
                },
                b' ' | b'\t',
            ) => Chunk::Ext {
                value,
                in_ext: false,
            },
            (Chunk::Size { value } | Chunk::Ext { value, .. }, b';') => Chunk::Ext {
                value,
                in_ext: true,
            },
            // Extension bytes are ignored, but control characters (a bare LF among them)
            // are not allowed.
            (
                Chunk::Ext {
                    value,
                    in_ext: true,
                },
                _,
            ) if c == b'\t' || (c >= 0x20 && c != 0x7f) => Chunk::Ext {
                value,
                in_ext: true,
            },
            _ => return Err(ResponseError::InvalidChunk),
        })
    }

    /// Decodes from `input` into `out`; returns `(consumed, produced)`.
    ///
    /// It stops when the input is used up, when `out` is full and data is next, or at the
    /// trailer section. Framing bytes are consumed even when `out` is full, so a body whose
    /// data has all been read reaches its end without another call.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), ResponseError> {
        let mut i = 0;
        let mut o = 0;
        while let Some(&c) = input.get(i) {
            self.state = match self.state {
                Chunk::Data { remaining } => {
                    let n = (input.len() - i).min(out.len() - o);
                    let n = usize::try_from(remaining).map_or(n, |r| r.min(n));
                    if n == 0 {
                        break;
                    }
                    out[o..o + n].copy_from_slice(&input[i..i + n]);
                    i += n;
                    o += n;
                    self.advance_data(n as u64);
                    continue;
                }
                Chunk::Trailers => break,
                Chunk::SizeStart => {
                    let digit = hex(c).ok_or(ResponseError::InvalidChunk)?;
                    self.line_len = 1;
                    Chunk::Size {
                        value: u64::from(digit),
                    }
                }
                Chunk::Size { .. } | Chunk::Ext { .. } => self.size_line_byte(c)?,
                Chunk::SizeLf { value } if c == b'\n' => {
                    if value == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data { remaining: value }
                    }
                }
                Chunk::DataCr if c == b'\r' => Chunk::DataLf,
                Chunk::DataLf if c == b'\n' => Chunk::SizeStart,
                Chunk::SizeLf { .. } | Chunk::DataCr | Chunk::DataLf => {
                    return Err(ResponseError::InvalidChunk)
                }
            };
            i += 1;
        }
        Ok((i, o))
    }
}

/// How far a response body has been decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BodyDecoder {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// Chunked.
    Chunked(ChunkedDecoder),
    /// Until the connection closes.
    UntilClose,
    /// The body has ended (for chunked: the trailer section is still to be read by the
    /// caller of [`BodyDecoder::at_trailers`]).
    Done,
}

impl BodyDecoder {
    /// A decoder for a body with this framing.
    pub const fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => Self::UntilClose,
        }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// Whether the chunked body's last chunk was read and its trailer section comes next.
    pub fn at_trailers(&self) -> bool {
        matches!(self, Self::Chunked(c) if c.at_trailers())
    }

    /// How many raw body bytes may be read straight into the caller's slice when nothing is
    /// buffered: bytes that cannot belong to framing or to the next response.
    pub fn direct_limit(&self) -> u64 {
        match self {
            Self::Length(n) => *n,
            Self::Chunked(c) => c.data_remaining().unwrap_or(0),
            Self::UntilClose => u64::MAX,
            Self::Done => 0,
        }
    }

    /// Records `n` bytes read straight into the caller's slice (at most [`direct_limit`]).
    ///
    /// [`direct_limit`]: BodyDecoder::direct_limit
    pub fn advance_direct(&mut self, n: usize) {
        let n = n as u64;
        match self {
            Self::Length(left) => {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    *self = Self::Done;
                }
            }
            Self::Chunked(c) => c.advance_data(n),
            Self::UntilClose | Self::Done => {}
        }
    }

    /// Decodes buffered bytes from `input` into `out`; returns `(consumed, produced)`.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), ResponseError> {
        match self {
            Self::Length(_) | Self::UntilClose => {
                let limit = usize::try_from(self.direct_limit()).unwrap_or(usize::MAX);
                let n = input.len().min(out.len()).min(limit);
                out[..n].copy_from_slice(&input[..n]);
                self.advance_direct(n);
                Ok((n, n))
            }
            Self::Chunked(c) => c.decode(input, out),
            Self::Done => Ok((0, 0)),
        }
    }

    /// Consumes body bytes (and chunk framing) from `input` without keeping them (an unread
    /// body skipped before the next request, or discarded); returns the bytes consumed and how
    /// many of them were body data.
    pub fn skip(&mut self, input: &[u8]) -> Result<(usize, usize), ResponseError> {
        match self {
            Self::Length(_) | Self::UntilClose => {
                let limit = usize::try_from(self.direct_limit()).unwrap_or(usize::MAX);
                let n = input.len().min(limit);
                self.advance_direct(n);
                Ok((n, n))
            }
            Self::Chunked(c) => {
                // Decoded through a scratch slice: skipping is rare (a body left unread), and
                // one decoder is less code than two.
                let mut scratch = [0u8; 32];
                let (mut used, mut data) = (0, 0);
                loop {
                    let (n, d) = c.decode(input.get(used..).unwrap_or(&[]), &mut scratch)?;
                    used += n;
                    data += d;
                    if n == 0 || used == input.len() {
                        return Ok((used, data));
                    }
                }
            }
            Self::Done => Ok((0, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseError::*;

    /// Decodes `input` delivering at most `step` bytes per call and an output window of at
    /// most `out_step` bytes; returns the data and what followed the last chunk.
    fn run(input: &[u8], step: usize, out_step: usize) -> Result<(Vec<u8>, usize), ResponseError> {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut pos = 0;
        let mut stalled = 0;
        while !d.at_trailers() {
            if pos == input.len() {
                return Err(TruncatedBody);
            }
            let end = (pos + step).min(input.len());
            let mut out = vec![0u8; out_step];
            let (c, p) = d.decode(&input[pos..end], &mut out)?;
            data.extend_from_slice(&out[..p]);
            pos += c;
            stalled = if c == 0 { stalled + 1 } else { 0 };
            assert!(stalled < 2, "no progress");
        }
        Ok((data, pos))
    }

    /// Input, and the data and bytes consumed up to the trailer section (or the error).
    type Case = (&'static [u8], Result<(&'static [u8], usize), ResponseError>);

    const CASES: &[Case] = &[
        (b"5\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 13))),
        (
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nX: y\r\n\r\n",
            Ok((b"hello world", 24)),
        ),
        (b"A\r\n0123456789\r\n0\r\n", Ok((b"0123456789", 18))),
        (
            b"a;name=value;x=\"q\"\r\n0123456789\r\n000\r\n",
            Ok((b"0123456789", 37)),
        ),
        (b"5 ;ext\r\nhello\r\n0 \r\n", Ok((b"hello", 19))),
        (b"0\r\n\r\n", Ok((b"", 3))),
        (
            b"00000000000000000000005\r\nhello\r\n0\r\n",
            Ok((b"hello", 35)),
        ),
        (b"x\r\n", Err(InvalidChunk)),
        (b"\r\n", Err(InvalidChunk)),
        (b" 5\r\nhello\r\n", Err(InvalidChunk)),
        (b"5\nhello\r\n", Err(InvalidChunk)),
        (b"5\r\nhelloXX0\r\n", Err(InvalidChunk)),
        (b"5\r\nhello\n0\r\n", Err(InvalidChunk)),
        (b"5 x\r\nhello\r\n", Err(InvalidChunk)),
        (b"5;a\nb\r\nhello\r\n", Err(InvalidChunk)),
        (b"5;a\x00\r\nhello\r\n", Err(InvalidChunk)),
        (b"-5\r\n", Err(InvalidChunk)),
        (b"0x5\r\n", Err(InvalidChunk)),
        (b"10000000000000000\r\n", Err(ChunkSizeOverflow)),
        (b"5\r\nhel", Err(TruncatedBody)),
        // RFC 9112 §7.1 leniencies (see the module documentation): BWS after the size without
        // an extension, and empty extensions.
        (b"Ff   \r\n", Err(TruncatedBody)),
        (b"1   \r\na\r\n0\t\r\n", Ok((b"a", 13))),
        (b"1;;\r\na\r\n0;\r\n", Ok((b"a", 12))),
        (b"1 ; a = \"b\" ;\r\na\r\n0\r\n", Ok((b"a", 21))),
        // Still strict: a bare LF, white space inside the digits, nothing after `;` but LF.
        (b"1 1\r\na\r\n", Err(InvalidChunk)),
        (b"1\r\na\n0\r\n", Err(InvalidChunk)),
        (b"1;\n", Err(InvalidChunk)),
    ];

    #[test]
    fn whole_and_byte_by_byte_agree() {
        for &(input, want) in CASES {
            let want = want.map(|(d, n)| (d.to_vec(), n));
            for step in [input.len().max(1), 1, 2, 3, 7] {
                for out_step in [64, 1, 4] {
                    assert_eq!(
                        run(input, step, out_step),
                        want,
                        "{:?} step {step} out {out_step}",
                        String::from_utf8_lossy(input)
                    );
                }
            }
        }
    }

    #[test]
    fn long_extension_is_bounded() {
        let mut line = b"1;".to_vec();
        line.resize(MAX_CHUNK_LINE - 2, b'a');
        line.extend_from_slice(b"\r\nx\r\n0\r\n");
        assert_eq!(run(&line, 5, 8), Ok((b"x".to_vec(), line.len())));
        let mut line = b"1;".to_vec();
        line.resize(MAX_CHUNK_LINE + 1, b'a');
        assert_eq!(run(&line, 5, 8), Err(ChunkSizeOverflow));
    }

    #[test]
    fn framing_bytes_are_consumed_even_when_out_is_full() {
        let mut d = ChunkedDecoder::new();
        let mut out = [0u8; 5];
        let input = b"5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(d.decode(input, &mut out), Ok((13, 5)));
        assert!(d.at_trailers());
    }

    #[test]
    fn length_and_until_close() {
        let mut d = BodyDecoder::new(Framing::Length(5));
        let mut out = [0u8; 16];
        assert_eq!(d.decode(b"helloHTTP/1.1", &mut out), Ok((5, 5)));
        assert!(d.is_done());
        let mut d = BodyDecoder::new(Framing::Length(5));
        assert_eq!(d.decode(b"hel", &mut out), Ok((3, 3)));
        assert_eq!(d.direct_limit(), 2);
        let mut d = BodyDecoder::new(Framing::UntilClose);
        assert_eq!(d.decode(b"abc", &mut out), Ok((3, 3)));
        assert!(!d.is_done());
        assert!(BodyDecoder::new(Framing::Empty).is_done());
        assert!(BodyDecoder::new(Framing::Length(0)).is_done());
    }

    /// Skipping consumes exactly what decoding would, byte by byte and whole, without output.
    #[test]
    fn skip_agrees_with_decode() {
        for &(input, want) in CASES {
            for step in [input.len().max(1), 1, 3] {
                let mut d = BodyDecoder::new(Framing::Chunked);
                let mut pos = 0;
                let got = loop {
                    if d.at_trailers() {
                        break Ok(pos);
                    }
                    if pos == input.len() {
                        break Err(TruncatedBody);
                    }
                    let end = (pos + step).min(input.len());
                    match d.skip(&input[pos..end]) {
                        Ok((n, _)) => pos += n,
                        Err(e) => break Err(e),
                    }
                };
                assert_eq!(got, want.map(|(_, n)| n), "{input:?} step {step}");
            }
        }
        let mut d = BodyDecoder::new(Framing::Length(5));
        assert_eq!(d.skip(b"helloHTTP"), Ok((5, 5)));
        assert!(d.is_done());
        let mut d = BodyDecoder::new(Framing::UntilClose);
        assert_eq!(d.skip(b"abc"), Ok((3, 3)));
        assert_eq!(BodyDecoder::Done.skip(b"abc"), Ok((0, 0)));
        let mut d = BodyDecoder::new(Framing::Chunked);
        assert_eq!(d.skip(b"5\r\nhello\r\n0\r\n\r\n"), Ok((13, 5)));
    }
}
