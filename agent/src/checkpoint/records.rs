//! The on-disk framing shared by every checkpoint file that holds structured data.
//!
//! A file is a sequence of records; an info file holds exactly one, an updates log any number.
//! Each record is a 12-byte header followed by its payload, a MessagePack value written with
//! named fields (so that adding an optional field keeps old files readable):
//!
//! ```text
//! payload length (u32 LE) | CRC-32 of the payload (u32 LE) | CRC-32 of the first 8 bytes (u32 LE)
//! ```
//!
//! The header has its own checksum so that a flipped bit in a length is caught as corruption
//! rather than mistaken for a record cut short, which would silently drop every later record.
//!
//! Logs are preallocated: zeros follow their last record, space the next records are written
//! into (see `fsio`). Reading stops at the first record that is not there:
//! - *free space*: only zeros are left (preallocated, or a file that grew before its data
//!   reached the disk);
//! - a *torn tail*, what a crash in the middle of an append leaves: less than a header at the
//!   end of the file, a payload shorter than its header declares, or a last record that fails
//!   a check and is followed by zeros only (its later sectors never reached the disk);
//! - anything else that fails a check is corruption, an error: a torn tail can only be a record
//!   whose append never returned, so dropping it loses nothing the agent relied on, while
//!   corruption elsewhere would lose acknowledged data. Where nothing follows a damaged last
//!   record (a log that was not preallocated) it is corruption too.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The size of a record header in bytes.
pub(crate) const HEADER_LEN: usize = 12;

/// The largest payload accepted. A status update is a few hundred bytes and an executor info a
/// few kilobytes; anything near this limit is a damaged header, not data.
pub(crate) const PAYLOAD_LEN_MAX: usize = 64 * 1024 * 1024;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordError {
    /// Where the bad record starts.
    pub offset: u64,
    pub reason: String,
}

/// The records read from a file, and what had to be ignored at its end.
#[derive(Debug)]
pub(crate) struct Records<T> {
    pub records: Vec<T>,
    /// The length of the well-formed prefix: where the next record goes.
    pub valid_len: u64,
    /// Whether a torn record follows the valid ones (rather than nothing, or zeros only).
    pub torn: bool,
}

/// Encodes `value` as one framed record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut buf = vec![0; HEADER_LEN];
    rmp_serde::encode::write_named(&mut buf, value)?;
    let payload_len = buf.len() - HEADER_LEN;
    // Refusing here keeps the reader's limit a true invariant of what was written.
    if payload_len > PAYLOAD_LEN_MAX {
        return Err(rmp_serde::encode::Error::Syntax(format!(
            "record of {payload_len} bytes exceeds the limit of {PAYLOAD_LEN_MAX}"
        )));
    }
    let payload_crc = crc32fast::hash(&buf[HEADER_LEN..]);
    buf[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[4..8].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&buf[0..8]);
    buf[8..12].copy_from_slice(&header_crc.to_le_bytes());
    Ok(buf)
}

/// Decodes every record in `bytes`, dropping a torn tail.
pub(crate) fn decode_all<T: DeserializeOwned>(bytes: &[u8]) -> Result<Records<T>, RecordError> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        match decode_at(bytes, offset)? {
            Some((value, next)) => {
                records.push(value);
                offset = next;
            }
            None => break,
        }
    }
    Ok(Records {
        records,
        valid_len: offset as u64,
        torn: !zeros(&bytes[offset..]),
    })
}

/// Decodes a file that must hold exactly one record, as info files do. Info files are replaced
/// by rename, so even a torn record is corruption here.
pub(crate) fn decode_one<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    let corrupt = |reason: &str| RecordError {
        offset: 0,
        reason: reason.to_owned(),
    };
    match decode_at(bytes, 0)? {
        Some((value, end)) if end == bytes.len() => Ok(value),
        Some(_) => Err(corrupt("trailing bytes after the record")),
        None => Err(corrupt("the file is empty or cut short")),
    }
}

/// Decodes the record at `offset`, returning it and where the next one starts, or `None` if
/// the rest of the input is a torn tail.
fn decode_at<T: DeserializeOwned>(
    bytes: &[u8],
    offset: usize,
) -> Result<Option<(T, usize)>, RecordError> {
    let corrupt = |reason: String| RecordError {
        offset: offset as u64,
        reason,
    };
    let rest = &bytes[offset..];
    if rest.len() < HEADER_LEN {
        return Ok(None);
    }
    let word = |idx: usize| u32::from_le_bytes(rest[idx..idx + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&rest[0..8]) != word(8) {
        // Free space, or a header whose append was cut short in preallocated space.
        if zeros(rest) || (rest.len() > HEADER_LEN && zeros(&rest[HEADER_LEN..])) {
            return Ok(None);
        }
        return Err(corrupt("record header checksum mismatch".to_owned()));
    }
    let payload_len = word(0) as usize;
    if payload_len > PAYLOAD_LEN_MAX {
        return Err(corrupt(format!(
            "record declares {payload_len} bytes, more than the limit of {PAYLOAD_LEN_MAX}"
        )));
    }
    let end = HEADER_LEN + payload_len;
    if rest.len() < end {
        return Ok(None);
    }
    let payload = &rest[HEADER_LEN..end];
    if crc32fast::hash(payload) != word(4) {
        // A payload cut short in preallocated space: what follows was never written.
        if rest.len() > end && zeros(&rest[end..]) {
            return Ok(None);
        }
        return Err(corrupt("record payload checksum mismatch".to_owned()));
    }
    let value = rmp_serde::from_slice(payload)
        .map_err(|err| corrupt(format!("record does not decode: {err}")))?;
    Ok(Some((value, offset + end)))
}

fn zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(values: &[&str]) -> Vec<u8> {
        values.iter().flat_map(|v| encode(v).unwrap()).collect()
    }

    #[test]
    fn round_trips_records() {
        let bytes = log(&["a", "bb", ""]);
        let read = decode_all::<String>(&bytes).unwrap();
        assert_eq!(read.records, ["a", "bb", ""]);
        assert!(!read.torn);
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let whole = log(&["first", "second"]);
        let first_len = encode(&"first").unwrap().len();
        for cut in first_len..whole.len() {
            let read = decode_all::<String>(&whole[..cut]).unwrap();
            assert_eq!(read.records, ["first"], "cut at {cut}");
            assert_eq!(read.valid_len, first_len as u64);
            assert!(read.torn || cut == first_len);
        }
    }

    #[test]
    fn zeros_after_the_last_record_are_free_space() {
        let mut bytes = log(&["first"]);
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 40]);
        let read = decode_all::<String>(&bytes).unwrap();
        assert_eq!(read.records, ["first"]);
        assert_eq!(read.valid_len, len as u64);
        assert!(!read.torn);
    }

    #[test]
    fn a_record_cut_short_in_preallocated_space_is_a_torn_tail() {
        let whole = log(&["first", "second record"]);
        let first_len = encode(&"first").unwrap().len();
        // The append wrote only a prefix of the last record; the zeros after it were never
        // overwritten.
        for cut in first_len + 1..whole.len() {
            let mut bytes = whole[..cut].to_vec();
            bytes.resize(whole.len() + 64, 0);
            let read = decode_all::<String>(&bytes).unwrap();
            assert_eq!(read.records, ["first"], "cut at {cut}");
            assert_eq!(read.valid_len, first_len as u64);
            assert!(read.torn, "cut at {cut}");
        }
    }

    #[test]
    fn a_damaged_record_with_records_after_it_is_corruption_even_before_free_space() {
        let mut bytes = log(&["first", "second", "third"]);
        bytes.extend_from_slice(&[0; 64]);
        let second = encode(&"first").unwrap().len() + HEADER_LEN + 1;
        bytes[second] ^= 0x10;
        let err = decode_all::<String>(&bytes).unwrap_err();
        assert!(err.reason.contains("mismatch"), "{err:?}");
    }

    #[test]
    fn a_flipped_bit_anywhere_but_a_cut_tail_is_corruption() {
        let bytes = log(&["first", "second", "third"]);
        for idx in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[idx] ^= 0x10;
            let err = decode_all::<String>(&damaged).unwrap_err();
            assert!(err.reason.contains("mismatch"), "byte {idx}: {err:?}");
        }
    }

    #[test]
    fn a_single_record_file_must_be_whole() {
        let bytes = encode(&"info").unwrap();
        assert_eq!(decode_one::<String>(&bytes).unwrap(), "info");
        assert!(decode_one::<String>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_one::<String>(&[]).is_err());
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert!(decode_one::<String>(&two).is_err());
    }

    #[test]
    fn a_payload_of_the_wrong_type_is_corruption() {
        let bytes = log(&["text"]);
        let err = decode_all::<u64>(&bytes).unwrap_err();
        assert!(err.reason.contains("does not decode"), "{err:?}");
    }
}
