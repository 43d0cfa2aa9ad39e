//! Property tests of the frame codec: arbitrary messages of every type round-trip, and arbitrary
//! bytes never panic.

mod common;

use common::arbitrary::arb_envelope;
use proptest::prelude::*;
use strata_protocol::Envelope;
use strata_protocol::codec::FrameCodec;

proptest! {
    #[test]
    fn envelopes_round_trip(envelope in arb_envelope()) {
        let codec = FrameCodec::new();
        let frame = codec.encode_to_vec(&envelope).unwrap();
        let (back, used) = codec.decode::<Envelope>(&frame).unwrap();
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(back, envelope);
    }

    #[test]
    fn a_stream_of_frames_decodes_in_order(envelopes in proptest::collection::vec(arb_envelope(), 1..8)) {
        let codec = FrameCodec::new();
        let mut stream = Vec::new();
        for envelope in &envelopes {
            codec.encode(envelope, &mut stream).unwrap();
        }
        let mut pos = 0;
        for envelope in &envelopes {
            let (back, used) = codec.decode::<Envelope>(&stream[pos..]).unwrap();
            prop_assert_eq!(&back, envelope);
            pos += used;
        }
        prop_assert_eq!(pos, stream.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let codec = FrameCodec::new().with_frame_len_max(1024);
        match codec.decode::<Envelope>(&bytes) {
            Ok((_, used)) => prop_assert!(used <= bytes.len()),
            // An incomplete frame is a strict prefix of a frame that fits the limit.
            Err(err) if err.is_incomplete() => {
                let announced = bytes.get(..4).map(|h| u32::from_be_bytes(h.try_into().unwrap()));
                if let Some(len) = announced {
                    prop_assert!((len as usize) <= 1024 && bytes.len() < 4 + len as usize);
                } else {
                    prop_assert!(bytes.len() < 4);
                }
            }
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_length_never_panic(body in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        let result = FrameCodec::new().decode::<Envelope>(&frame);
        // The whole frame is present, so the answer is never "incomplete".
        prop_assert!(!result.as_ref().is_err_and(|e| e.is_incomplete()), "{:?}", result);
    }
}
