//! Decoding hostile bytes never allocates more than the frame limit.
//!
//! This test binary installs a counting global allocator, so it holds a single test: a second
//! test running on another thread would disturb the counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use strata_protocol::codec::FrameCodec;
use strata_protocol::internal::{Message, Ping};
use strata_protocol::{Body, Envelope, Epoch, Pid};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Returns the most memory held at once, above what was held before, while decoding `bytes`.
fn peak_while_decoding(codec: &FrameCodec, bytes: &[u8]) -> usize {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = codec.decode::<Envelope>(bytes);
    let peak = PEAK.load(Ordering::SeqCst);
    drop(result);
    peak - before
}

fn valid_frame(codec: &FrameCodec) -> Vec<u8> {
    let envelope = Envelope {
        from: Pid::new("scheduler(1)", "127.0.0.1", 40000).unwrap(),
        to: Pid::new("master", "127.0.0.1", 5050).unwrap(),
        epoch: Epoch(9),
        body: Body::Internal(Message::Ping(Ping { seq: 42 })),
    };
    codec.encode_to_vec(&envelope).unwrap()
}

/// Frames whose headers claim huge sizes at every nesting position of an envelope.
fn crafted_claims() -> Vec<Vec<u8>> {
    let headers: [&[u8]; 6] = [
        b"\xdd\xff\xff\xff\xff",
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff",
        b"\xdc\xff\xff",
        b"\xde\xff\xff",
    ];
    let mut frames = Vec::new();
    for header in headers {
        // At the top, as the value of `body`, as the payload of `Internal`, and where a
        // `Vec<Offer>` is decoded: the place where a decoder that trusted the header would
        // reserve memory for the elements it announces.
        let prefixes: [&[u8]; 4] = [
            b"",
            b"\x84\xa4body",
            b"\x84\xa4body\x81\xa8Internal\x81\xa4Ping",
            b"\x84\xa4body\x81\xaeSchedulerEvent\x82\xa4type\xa6OFFERS\xa6offers\x81\xa6offers",
        ];
        for prefix in prefixes {
            let mut body = prefix.to_vec();
            body.extend_from_slice(header);
            body.extend(std::iter::repeat_n(0xc0u8, 4096));
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend(body);
            frames.push(frame);
        }
    }
    frames
}

#[test]
fn decoding_hostile_input_stays_within_the_frame_limit() {
    // A limit far below the 4 MiB default, so that an allocation sized from a hostile header
    // (even one capped the way serde caps `Vec` pre-allocation, at 1 MiB) would exceed it.
    let codec = FrameCodec::new().with_frame_len_max(16 * 1024);
    let limit = codec.frame_len_max();
    let mut inputs: Vec<Vec<u8>> = crafted_claims();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for entry in std::fs::read_dir(corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            inputs.push(std::fs::read(path).unwrap());
        }
    }
    for input in &inputs {
        let peak = peak_while_decoding(&codec, input);
        assert!(
            peak <= limit,
            "peak {peak} bytes over the {limit}-byte limit for {input:02x?}"
        );
    }

    // Random bytes behind a valid length, and valid frames with random bytes overwritten.
    let valid = valid_frame(&codec);
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..4096).prop_map(|body| {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend(body);
            frame
        }),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(
            move |edits| {
                let mut frame = valid.clone();
                for (idx, byte) in edits {
                    let at = idx.index(frame.len() - 4) + 4;
                    frame[at] = byte;
                }
                frame
            }
        ),
    ];
    runner
        .run(&strategy, |input| {
            let peak = peak_while_decoding(&codec, &input);
            prop_assert!(peak <= limit, "peak {} bytes for {:02x?}", peak, input);
            Ok(())
        })
        .unwrap();
}
