//! The chunked decoder fed the whole input at once and one byte at a time (with a one-byte
//! output window) must agree: same data, same bytes consumed up to the trailer section, same
//! error. No panic either way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawpost::proto::decode::ChunkedDecoder;
use rawpost::ResponseError;

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The last chunk was read after this many input bytes.
    Trailers {
        consumed: usize,
        data: Vec<u8>,
    },
    /// The input ran out first.
    NeedMore {
        data: Vec<u8>,
    },
    Failed(ResponseError),
}

fn whole(input: &[u8]) -> End {
    let mut d = ChunkedDecoder::new();
    let mut out = vec![0u8; input.len()];
    match d.decode(input, &mut out) {
        Err(e) => End::Failed(e),
        Ok((consumed, produced)) => {
            assert!(consumed <= input.len() && produced <= consumed);
            let data = out[..produced].to_vec();
            if d.at_trailers() {
                End::Trailers { consumed, data }
            } else {
                assert_eq!(consumed, input.len(), "stopped early without a reason");
                End::NeedMore { data }
            }
        }
    }
}

fn byte_by_byte(input: &[u8]) -> End {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    for (i, b) in input.iter().enumerate() {
        if d.at_trailers() {
            return End::Trailers { consumed: i, data };
        }
        let mut out = [0u8; 1];
        match d.decode(core::slice::from_ref(b), &mut out) {
            Err(e) => return End::Failed(e),
            Ok((1, p)) => data.extend_from_slice(&out[..p]),
            Ok(other) => panic!("a byte with room for it was not consumed: {other:?}"),
        }
    }
    if d.at_trailers() {
        End::Trailers {
            consumed: input.len(),
            data,
        }
    } else {
        End::NeedMore { data }
    }
}

fuzz_target!(|input: &[u8]| {
    assert_eq!(whole(input), byte_by_byte(input));
});
