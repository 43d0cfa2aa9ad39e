//! Splitting a read buffer into frames.
//!
//! One socket read usually holds many frames and ends in the middle of one. [`split_frames`]
//! decodes every complete frame at the front of a buffer and says how many bytes it used, so the
//! reader advances its `BytesMut` once per read rather than once per frame, and keeps the tail
//! for the next read. It stops after a given number of frames, so that the reader can let the
//! receiving actors run before it decodes more: a 256 KiB read holds thousands of small
//! envelopes, and handing them all to mailboxes at once only piles them up in memory.

use serde::de::DeserializeOwned;
use strata_protocol::{FrameCodec, FrameError};

/// What [`split_frames`] found after the frames it decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// Bytes taken by the frames handed to the sink.
    pub consumed: usize,
    /// Frames handed to the sink.
    pub n_frames: usize,
    /// What stopped the split.
    pub stop: Stop,
}

/// Why [`split_frames`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The rest of the buffer is an incomplete frame; `needed` is the size of the whole frame
    /// when its header is there, else the header size.
    NeedMore { needed: usize },
    /// `n_frames_max` frames were decoded; more may follow in the buffer.
    Limit,
    /// The next frame is invalid, and so is the connection.
    Invalid(FrameError),
}

/// Decodes up to `n_frames_max` complete frames at the start of `src`, handing each message to
/// `sink` in order. Frames before an invalid one are still handed over: they were valid, and the
/// peer may depend on them having arrived before it broke.
pub fn split_frames<T: DeserializeOwned>(
    codec: &FrameCodec,
    src: &[u8],
    n_frames_max: usize,
    mut sink: impl FnMut(T),
) -> Split {
    let mut consumed = 0;
    let mut n_frames = 0;
    while n_frames < n_frames_max {
        match codec.decode::<T>(&src[consumed..]) {
            Ok((message, used)) => {
                consumed += used;
                n_frames += 1;
                sink(message);
            }
            Err(FrameError::Incomplete { needed, .. }) => {
                return Split {
                    consumed,
                    n_frames,
                    stop: Stop::NeedMore { needed },
                };
            }
            Err(err) => {
                return Split {
                    consumed,
                    n_frames,
                    stop: Stop::Invalid(err),
                };
            }
        }
    }
    Split {
        consumed,
        n_frames,
        stop: Stop::Limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_protocol::internal::{Message, Ping};

    fn ping(seq: u64) -> Message {
        Message::Ping(Ping { seq })
    }

    fn seqs(messages: &[Message]) -> Vec<u64> {
        messages
            .iter()
            .map(|message| match message {
                Message::Ping(ping) => ping.seq,
                Message::Pong(pong) => pong.seq,
                other => panic!("unexpected message {}", other.name()),
            })
            .collect()
    }

    #[test]
    fn decodes_all_whole_frames_and_keeps_the_tail() {
        let codec = FrameCodec::new();
        let mut buf = Vec::new();
        for seq in 0..3 {
            codec.encode(&ping(seq), &mut buf).unwrap();
        }
        let whole = buf.len();
        codec.encode(&ping(3), &mut buf).unwrap();
        buf.truncate(buf.len() - 1);

        let mut out = Vec::new();
        let split = split_frames::<Message>(&codec, &buf, usize::MAX, |message| out.push(message));
        assert_eq!(seqs(&out), [0, 1, 2]);
        assert_eq!((split.consumed, split.n_frames), (whole, 3));
        assert_eq!(
            split.stop,
            Stop::NeedMore {
                needed: buf.len() - whole + 1
            }
        );
    }

    #[test]
    fn stops_at_the_frame_limit() {
        let codec = FrameCodec::new();
        let mut buf = Vec::new();
        for seq in 0..5 {
            codec.encode(&ping(seq), &mut buf).unwrap();
        }
        let mut out = Vec::new();
        let split = split_frames::<Message>(&codec, &buf, 2, |message| out.push(message));
        assert_eq!(
            (seqs(&out), split.n_frames, split.stop),
            (vec![0, 1], 2, Stop::Limit)
        );
        let rest = &buf[split.consumed..];
        let split = split_frames::<Message>(&codec, rest, 10, |message| out.push(message));
        assert_eq!(seqs(&out), [0, 1, 2, 3, 4]);
        assert_eq!(
            (split.consumed, split.stop),
            (rest.len(), Stop::NeedMore { needed: 4 })
        );
    }

    #[test]
    fn empty_and_partial_header_need_more() {
        let codec = FrameCodec::new();
        let need_header = Split {
            consumed: 0,
            n_frames: 0,
            stop: Stop::NeedMore { needed: 4 },
        };
        let split = split_frames::<Message>(&codec, &[], 8, |_| panic!("no frame"));
        assert_eq!(split, need_header);
        let split = split_frames::<Message>(&codec, &[0, 0], 8, |_| panic!("no frame"));
        assert_eq!(split, need_header);
    }

    #[test]
    fn frames_before_an_invalid_one_are_delivered() {
        let codec = FrameCodec::new().with_frame_len_max(1024);
        let mut buf = codec.encode_to_vec(&ping(9)).unwrap();
        let good = buf.len();
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x00]);
        let mut out = Vec::new();
        let split = split_frames::<Message>(&codec, &buf, 8, |message| out.push(message));
        assert_eq!(seqs(&out), [9]);
        assert_eq!(split.consumed, good);
        assert!(matches!(
            split.stop,
            Stop::Invalid(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_an_error() {
        let codec = FrameCodec::new();
        let mut frame = codec.encode_to_vec(&ping(1)).unwrap();
        let body_len = u32::from_be_bytes(frame[..4].try_into().unwrap()) + 1;
        frame[..4].copy_from_slice(&body_len.to_be_bytes());
        frame.push(0xc0);
        let split = split_frames::<Message>(&codec, &frame, 8, |_| panic!("invalid frame"));
        assert_eq!(split.consumed, 0);
        assert_eq!(
            split.stop,
            Stop::Invalid(FrameError::TrailingBytes { count: 1 })
        );
    }
}
