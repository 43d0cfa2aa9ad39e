//! Length-prefixed MessagePack frames.
//!
//! A frame is a `u32` big-endian body length followed by that many bytes of MessagePack, written
//! with named fields (`rmp_serde::to_vec_named`) so that a peer with an extra optional field still
//! decodes our messages.
//!
//! Decoding is pure: [`FrameCodec::decode`] looks at a byte slice and either returns one message
//! and the number of bytes it used, says the frame is [`FrameError::Incomplete`] (read more and
//! call again), or says the input is invalid (close the connection). Before serde sees a body, a
//! single non-recursive pass checks its structure: every length fits in the bytes that remain, the
//! nesting stays under the depth limit, and exactly one value fills the body. That pass is what
//! keeps hostile input cheap: an array header that claims 2^32 elements in a 20-byte frame is
//! refused before anything is allocated for it, and 10,000 nested arrays never recurse.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;
/// The default limit on a frame body, in bytes.
pub const FRAME_LEN_MAX_DEFAULT: usize = 4 * 1024 * 1024;
/// The default limit on nested arrays and maps in a body. Strata's deepest message nests about
/// fifteen levels; the margin is for fields added later.
pub const DEPTH_MAX_DEFAULT: usize = 64;

/// Why bytes could not be decoded into a frame. Every variant except
/// [`FrameError::Incomplete`] means the input is invalid and the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed; `needed` is the size of the whole frame when the header is known.
    #[error("incomplete frame: have {have} bytes, need {needed}")]
    Incomplete { have: usize, needed: usize },
    /// The header announces a body over the limit.
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The header announces an empty body, which no message encodes to.
    #[error("frame body is empty")]
    Empty,
    /// Arrays and maps nest deeper than the limit.
    #[error("frame nests deeper than {max} levels")]
    TooDeep { max: usize },
    /// The body is not well-formed MessagePack.
    #[error("malformed frame body at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    /// The body holds one complete value and then more bytes.
    #[error("frame body has {count} trailing bytes after its message")]
    TrailingBytes { count: usize },
    /// The body is well-formed MessagePack but not a message of the expected type (an unknown
    /// message type, a missing field, an invalid ID...).
    #[error("frame body is not a valid message: {0}")]
    Decode(String),
}

impl FrameError {
    /// Tells "wait for more bytes" apart from "this input is invalid".
    pub fn is_incomplete(&self) -> bool {
        matches!(self, FrameError::Incomplete { .. })
    }
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoded message of {len} bytes exceeds the frame limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("message cannot be encoded: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Encodes and decodes frames under a size and a depth limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCodec {
    frame_len_max: usize,
    depth_max: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self {
            frame_len_max: FRAME_LEN_MAX_DEFAULT,
            depth_max: DEPTH_MAX_DEFAULT,
        }
    }
}

impl FrameCodec {
    /// Returns a codec with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest body accepted or produced, in bytes (at most `u32::MAX`).
    pub fn with_frame_len_max(mut self, frame_len_max: usize) -> Self {
        self.frame_len_max = frame_len_max.min(u32::MAX as usize);
        self
    }

    /// Sets the deepest nesting of arrays and maps accepted.
    pub fn with_depth_max(mut self, depth_max: usize) -> Self {
        self.depth_max = depth_max;
        self
    }

    /// Returns the largest body accepted or produced, in bytes.
    pub fn frame_len_max(&self) -> usize {
        self.frame_len_max
    }

    /// Appends one frame holding `message` to `dst`. On error `dst` is left as it was.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        message: &T,
        dst: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.extend_from_slice(&[0; HEADER_LEN]);
        if let Err(err) = rmp_serde::encode::write_named(dst, message) {
            dst.truncate(start);
            return Err(err.into());
        }
        let len = dst.len() - start - HEADER_LEN;
        if len > self.frame_len_max {
            dst.truncate(start);
            return Err(EncodeError::TooLarge {
                len,
                max: self.frame_len_max,
            });
        }
        let len = u32::try_from(len).expect("frame_len_max fits in u32");
        dst[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Returns one frame holding `message`.
    pub fn encode_to_vec<T: Serialize + ?Sized>(
        &self,
        message: &T,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut dst = Vec::new();
        self.encode(message, &mut dst)?;
        Ok(dst)
    }

    /// Checks the frame at the start of `src` without decoding it into a type, and returns the
    /// length of the whole frame (header and body).
    pub fn check(&self, src: &[u8]) -> Result<usize, FrameError> {
        let body_len = self.body_len(src)?;
        let total = HEADER_LEN + body_len;
        if src.len() < total {
            return Err(FrameError::Incomplete {
                have: src.len(),
                needed: total,
            });
        }
        scan(&src[HEADER_LEN..total], self.depth_max)?;
        Ok(total)
    }

    /// Decodes the frame at the start of `src`, returning the message and the number of bytes the
    /// frame took. Bytes after the frame are left for the next call.
    pub fn decode<T: DeserializeOwned>(&self, src: &[u8]) -> Result<(T, usize), FrameError> {
        let total = self.check(src)?;
        let message = rmp_serde::from_slice(&src[HEADER_LEN..total])
            .map_err(|err| FrameError::Decode(err.to_string()))?;
        Ok((message, total))
    }

    /// Reads and checks the length prefix.
    fn body_len(&self, src: &[u8]) -> Result<usize, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Err(FrameError::Incomplete {
                have: src.len(),
                needed: HEADER_LEN,
            });
        };
        let len = u32::from_be_bytes(header.try_into().expect("header is 4 bytes")) as usize;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > self.frame_len_max {
            return Err(FrameError::TooLarge {
                len,
                max: self.frame_len_max,
            });
        }
        Ok(len)
    }
}

/// Checks that `body` is exactly one well-formed MessagePack value nested at most `depth_max`
/// levels deep, without recursion and without allocating more than `depth_max` counters.
fn scan(body: &[u8], depth_max: usize) -> Result<(), FrameError> {
    let mut reader = Reader { body, pos: 0 };
    // Values still to read at each open level; the bottom entry is the single top-level value.
    let mut pending: Vec<u64> = Vec::with_capacity(depth_max.min(64) + 1);
    pending.push(1);
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let offset = reader.pos;
        let items = reader.value_header()?;
        if items > 0 {
            if pending.len() > depth_max {
                return Err(FrameError::TooDeep { max: depth_max });
            }
            // Every item takes at least one byte, so a count beyond the remaining bytes is a lie.
            if items > (body.len() - reader.pos) as u64 {
                return Err(FrameError::Malformed {
                    offset,
                    reason: "container declares more items than bytes remain",
                });
            }
            pending.push(items);
        }
    }
    if reader.pos < body.len() {
        return Err(FrameError::TrailingBytes {
            count: body.len() - reader.pos,
        });
    }
    Ok(())
}

struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn truncated(&self) -> FrameError {
        FrameError::Malformed {
            offset: self.pos,
            reason: "value runs past the end of the frame",
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.body.len());
        let Some(end) = end else {
            return Err(self.truncated());
        };
        let bytes = &self.body[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn uint(&mut self, width: usize) -> Result<u64, FrameError> {
        let bytes = self.take(width)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn skip(&mut self, n: u64) -> Result<(), FrameError> {
        let n = usize::try_from(n).map_err(|_| self.truncated())?;
        self.take(n).map(drop)
    }

    /// Consumes one value's header and any scalar payload. Returns how many nested values follow
    /// (the elements of an array, or keys plus values of a map), or 0 for a scalar.
    fn value_header(&mut self) -> Result<u64, FrameError> {
        let offset = self.pos;
        let marker = self.take(1)?[0];
        let items = match marker {
            // Positive and negative fixint, nil, false, true.
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => u64::from(marker & 0x0f) * 2,
            0x90..=0x9f => u64::from(marker & 0x0f),
            0xa0..=0xbf => {
                self.skip(u64::from(marker & 0x1f))?;
                0
            }
            0xc1 => {
                return Err(FrameError::Malformed {
                    offset,
                    reason: "reserved marker 0xc1",
                });
            }
            // bin 8/16/32 and str 8/16/32.
            0xc4 | 0xd9 => self.sized(1)?,
            0xc5 | 0xda => self.sized(2)?,
            0xc6 | 0xdb => self.sized(4)?,
            // ext 8/16/32: a length, a type byte, then the data.
            0xc7 => self.sized_ext(1)?,
            0xc8 => self.sized_ext(2)?,
            0xc9 => self.sized_ext(4)?,
            0xca => self.fixed(4)?,
            0xcb => self.fixed(8)?,
            0xcc | 0xd0 => self.fixed(1)?,
            0xcd | 0xd1 => self.fixed(2)?,
            0xce | 0xd2 => self.fixed(4)?,
            0xcf | 0xd3 => self.fixed(8)?,
            // fixext 1/2/4/8/16, each with a type byte.
            0xd4 => self.fixed(2)?,
            0xd5 => self.fixed(3)?,
            0xd6 => self.fixed(5)?,
            0xd7 => self.fixed(9)?,
            0xd8 => self.fixed(17)?,
            0xdc => self.uint(2)?,
            0xdd => self.uint(4)?,
            0xde => self.uint(2)? * 2,
            0xdf => self.uint(4)? * 2,
        };
        Ok(items)
    }

    fn fixed(&mut self, n: usize) -> Result<u64, FrameError> {
        self.take(n)?;
        Ok(0)
    }

    fn sized(&mut self, width: usize) -> Result<u64, FrameError> {
        let len = self.uint(width)?;
        self.skip(len)?;
        Ok(0)
    }

    fn sized_ext(&mut self, width: usize) -> Result<u64, FrameError> {
        let len = self.uint(width)?;
        self.skip(len.saturating_add(1))?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Small {
        seq: u64,
        text: String,
    }

    fn small() -> Small {
        Small {
            seq: 7,
            text: "hello".into(),
        }
    }

    #[test]
    fn round_trip_and_leaves_following_bytes() {
        let codec = FrameCodec::new();
        let mut buf = codec.encode_to_vec(&small()).unwrap();
        let first_len = buf.len();
        codec
            .encode(
                &Small {
                    seq: 8,
                    text: String::new(),
                },
                &mut buf,
            )
            .unwrap();
        let (first, used) = codec.decode::<Small>(&buf).unwrap();
        assert_eq!((first, used), (small(), first_len));
        let (second, _) = codec.decode::<Small>(&buf[used..]).unwrap();
        assert_eq!(second.seq, 8);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let codec = FrameCodec::new();
        let buf = codec.encode_to_vec(&small()).unwrap();
        for cut in 0..buf.len() {
            let err = codec.decode::<Small>(&buf[..cut]).unwrap_err();
            assert!(err.is_incomplete(), "prefix of {cut} bytes gave {err}");
        }
    }

    #[test]
    fn encode_refuses_oversized_and_leaves_buffer() {
        let codec = FrameCodec::new().with_frame_len_max(16);
        let mut buf = vec![1, 2, 3];
        let big = Small {
            seq: 1,
            text: "x".repeat(64),
        };
        assert!(matches!(
            codec.encode(&big, &mut buf),
            Err(EncodeError::TooLarge { .. })
        ));
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn header_limits() {
        let codec = FrameCodec::new().with_frame_len_max(1024);
        assert_eq!(
            codec.decode::<Small>(&[0, 0, 0, 0]).unwrap_err(),
            FrameError::Empty
        );
        assert_eq!(
            codec.decode::<Small>(&[0, 0, 4, 1]).unwrap_err(),
            FrameError::TooLarge {
                len: 1025,
                max: 1024
            }
        );
    }

    #[test]
    fn depth_limit_counts_containers() {
        let codec = FrameCodec::new().with_depth_max(3);
        // [[[1]]] is three levels deep; [[[[1]]]] is four.
        let ok = [0, 0, 0, 4, 0x91, 0x91, 0x91, 0x01];
        assert!(codec.check(&ok).is_ok());
        let deep = [0, 0, 0, 5, 0x91, 0x91, 0x91, 0x91, 0x01];
        assert_eq!(
            codec.check(&deep).unwrap_err(),
            FrameError::TooDeep { max: 3 }
        );
    }
}
