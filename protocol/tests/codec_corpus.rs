//! Replays the hostile-input corpus in `tests/corpus/` through the frame codec.

use std::path::Path;

use strata_protocol::codec::FrameCodec;
use strata_protocol::internal::{Message, Ping};
use strata_protocol::{Body, Envelope, FrameError};

/// The error class each corpus file must produce (`None`: it must decode).
fn expected(name: &str) -> Option<&'static str> {
    let class = match name {
        "valid_ping.bin" => return None,
        "length_ffffffff.bin" => "TooLarge",
        "length_zero.bin" => "Empty",
        "truncated_frame.bin" => "Incomplete",
        "nested_10000_arrays.bin" => "TooDeep",
        "array_2pow32_header_in_20_bytes.bin"
        | "map_2pow32_header.bin"
        | "str32_huge_length.bin"
        | "bin32_huge_length.bin"
        | "ext32_huge_length.bin"
        | "reserved_marker_c1.bin" => "Malformed",
        "trailing_bytes.bin" => "TrailingBytes",
        "unknown_message_type.bin"
        | "unknown_internal_message.bin"
        | "invalid_pid.bin"
        | "invalid_utf8_string.bin"
        | "wrong_field_type.bin"
        | "missing_body.bin"
        | "not_a_map.bin" => "Decode",
        other => panic!("corpus file {other} has no expectation in codec_corpus.rs"),
    };
    Some(class)
}

fn class(err: &FrameError) -> &'static str {
    match err {
        FrameError::Incomplete { .. } => "Incomplete",
        FrameError::TooLarge { .. } => "TooLarge",
        FrameError::Empty => "Empty",
        FrameError::TooDeep { .. } => "TooDeep",
        FrameError::Malformed { .. } => "Malformed",
        FrameError::TrailingBytes { .. } => "TrailingBytes",
        FrameError::Decode(_) => "Decode",
    }
}

#[test]
fn corpus_gives_the_expected_error_for_every_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let codec = FrameCodec::new();
    let mut n_files = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
    {
        let name = path.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let got = codec.decode::<Envelope>(&bytes);
        match (expected(name), got) {
            (None, Ok((envelope, used))) => {
                assert_eq!(used, bytes.len(), "{name}");
                assert_eq!(
                    envelope.body,
                    Body::Internal(Message::Ping(Ping { seq: 1 })),
                    "{name}"
                );
                assert_eq!(envelope.to.to_string(), "master@127.0.0.1:5050");
                assert_eq!(envelope.epoch.0, 3);
            }
            (None, Err(err)) => panic!("{name} should decode but gave {err}"),
            (Some(want), Ok(_)) => panic!("{name} should give {want} but decoded"),
            (Some(want), Err(err)) => {
                assert_eq!(class(&err), want, "{name} gave {err}");
                // Every error must explain itself for the log line that closes the connection.
                assert!(!err.to_string().is_empty());
            }
        }
        n_files += 1;
    }
    assert!(
        n_files >= 19,
        "only {n_files} corpus files found in {}",
        dir.display()
    );
}

#[test]
fn decode_errors_name_the_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let decode = |name: &str| {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        FrameCodec::new()
            .decode::<Envelope>(&bytes)
            .unwrap_err()
            .to_string()
    };
    assert!(decode("unknown_message_type.bin").contains("Frobnicate"));
    assert!(decode("invalid_pid.bin").contains("name@host:port"));
    assert!(decode("length_ffffffff.bin").contains("exceeds the limit"));
    assert!(decode("nested_10000_arrays.bin").contains("deeper than 64"));
}

/// A truncated frame is only "incomplete": once the rest arrives it decodes, so a reader that
/// sees it must wait rather than close the connection.
#[test]
fn incomplete_frame_completes_when_the_rest_arrives() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let valid = std::fs::read(dir.join("valid_ping.bin")).unwrap();
    let codec = FrameCodec::new();
    let mut stream = Vec::new();
    for (idx, byte) in valid.iter().enumerate() {
        let err = codec.decode::<Envelope>(&stream).unwrap_err();
        assert!(err.is_incomplete(), "after {idx} bytes: {err}");
        stream.push(*byte);
    }
    assert!(codec.decode::<Envelope>(&stream).is_ok());
}
