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
//! Reading tells a *torn tail* (what a crash in the middle of an append leaves: the end of the
//! file holds less than a header, a payload shorter than its header declares, or only zeros where
//! a header should be) apart from corruption (anything else that fails a check), which is an
//! error: a torn tail can only be a record whose append never returned, so dropping it loses
//! nothing the agent relied on, while corruption elsewhere would lose acknowledged data.

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
    /// The length of the well-formed prefix; shorter than the input when the tail was torn.
    pub valid_len: u64,
}

impl<T> Records<T> {
    /// Tells whether a torn tail follows the valid records.
    pub fn torn(&self, total_len: usize) -> bool {
        self.valid_len < total_len as u64
    }
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
        // A crash after the file grew but before its data reached the disk leaves zeros.
        if rest.iter().all(|&b| b == 0) {
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
        return Err(corrupt("record payload checksum mismatch".to_owned()));
    }
    let value = rmp_serde::from_slice(payload)
        .map_err(|err| corrupt(format!("record does not decode: {err}")))?;
    Ok(Some((value, offset + end)))
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
        assert!(!read.torn(bytes.len()));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let whole = log(&["first", "second"]);
        let first_len = encode(&"first").unwrap().len();
        for cut in first_len..whole.len() {
            let read = decode_all::<String>(&whole[..cut]).unwrap();
            assert_eq!(read.records, ["first"], "cut at {cut}");
            assert_eq!(read.valid_len, first_len as u64);
        }
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail() {
        let mut bytes = log(&["first"]);
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 40]);
        let read = decode_all::<String>(&bytes).unwrap();
        assert_eq!(read.records, ["first"]);
        assert_eq!(read.valid_len, len as u64);
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
