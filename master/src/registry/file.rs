//! A registry on local disk: an append-only log of operations, compacted into a snapshot.
//!
//! Two files live in the registry directory (`<work_dir>/registry`):
//!
//! - `snapshot`: a header (magic, format version, generation) and one record holding a whole
//!   [`RegistryState`]. It is only ever replaced whole: written to `snapshot.tmp`, synced, renamed
//!   over, and the directory synced, so a crash leaves either the old snapshot or the new one.
//! - `log`: a header (magic, format version, generation) and the operations applied since the
//!   snapshot of the same generation, one record each, synced after every append (admissions are
//!   rare, and an agent must not be told it is registered before the registry says so).
//!
//! A record is a 12-byte header (body length, a CRC-32 of the length, a CRC-32 of the body)
//! followed by the MessagePack body. A record cut short at the end of the log (a crash during
//! an append) is dropped with a warning; any other damage refuses to load, so that a master
//! never starts having silently forgotten agents.
//!
//! A third file, `lock`, is held locked (`flock`) while a registry is open, so that two masters
//! never write the same registry.
//!
//! Compaction writes the next generation's empty log and snapshot to temporary files, renames
//! the snapshot first and the log second. A log older than the snapshot is therefore one whose
//! operations the snapshot already holds, and is ignored.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Registry, RegistryError, RegistryOp, RegistryState};

/// The on-disk format this master writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Operations appended to the log before it is compacted into a snapshot.
pub const COMPACTION_THRESHOLD_DEFAULT: usize = 1000;

const SNAPSHOT_MAGIC: &[u8; 8] = b"STRTSNAP";
const LOG_MAGIC: &[u8; 8] = b"STRTOPLG";
/// Magic, version (u32) and generation (u64).
const FILE_HEADER_LEN: usize = 8 + 4 + 8;
/// Length (u32), CRC-32 of the length, CRC-32 of the body.
const RECORD_HEADER_LEN: usize = 12;
/// The largest record accepted; a longer one is corruption, not a registry.
const RECORD_LEN_MAX: usize = 256 * 1024 * 1024;

/// A registry kept in files under one directory; see the module documentation.
pub struct FileRegistry {
    dir: PathBuf,
    /// Held locked for as long as the registry is open; the lock goes with the handle.
    _lock: File,
    state: RegistryState,
    generation: u64,
    /// The log being appended to; `None` only until the first compaction at open.
    log: Option<File>,
    /// The length of the log's valid contents; a failed append is cut back to it.
    log_len: u64,
    log_records: usize,
    compaction_threshold: usize,
    /// Set when a failure left the files in doubt; no more writes are taken.
    poisoned: Option<String>,
}

impl std::fmt::Debug for FileRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRegistry")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("log_records", &self.log_records)
            .finish_non_exhaustive()
    }
}

impl FileRegistry {
    /// Opens (or creates) the registry in `dir` and loads it: the snapshot, then the log's
    /// operations. The loaded state is then compacted into a fresh snapshot and an empty log.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileRegistry, RegistryError> {
        FileRegistry::open_with_threshold(dir, COMPACTION_THRESHOLD_DEFAULT)
    }

    /// Like [`FileRegistry::open`], compacting whenever the log holds `compaction_threshold`
    /// operations.
    pub fn open_with_threshold(
        dir: impl Into<PathBuf>,
        compaction_threshold: usize,
    ) -> Result<FileRegistry, RegistryError> {
        let dir = dir.into();
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
            // The new directory's entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock_dir(&dir)?;
        for leftover in ["snapshot.tmp", "log.tmp"] {
            let path = dir.join(leftover);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a file left by an interrupted compaction")
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error(&path, source)),
            }
        }
        let (state, generation) = load(&dir)?;
        let mut registry = FileRegistry {
            dir,
            _lock: lock,
            state,
            generation,
            log: None,
            log_len: 0,
            log_records: 0,
            compaction_threshold: compaction_threshold.max(1),
            poisoned: None,
        };
        registry.compact()?;
        tracing::info!(
            dir = %registry.dir.display(),
            generation = registry.generation,
            agents = registry.state.agents.len(),
            unreachable_agents = registry.state.unreachable.len(),
            gone_agents = registry.state.gone.len(),
            "registry loaded"
        );
        Ok(registry)
    }

    /// Returns the directory the registry lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the number of operations in the log since the last snapshot.
    pub fn log_records(&self) -> usize {
        self.log_records
    }

    /// Returns the current generation: how many snapshots were written in the registry's life.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Writes the state as the next generation's snapshot and starts an empty log.
    fn compact(&mut self) -> Result<(), RegistryError> {
        let generation = self.generation + 1;
        let body = rmp_serde::to_vec_named(&self.state)?;
        let mut snapshot = file_header(SNAPSHOT_MAGIC, generation);
        push_record(&mut snapshot, &body);

        let log_tmp = self.dir.join("log.tmp");
        write_synced(&log_tmp, &file_header(LOG_MAGIC, generation))?;
        let snapshot_tmp = self.dir.join("snapshot.tmp");
        write_synced(&snapshot_tmp, &snapshot)?;
        let snapshot_path = self.dir.join("snapshot");
        std::fs::rename(&snapshot_tmp, &snapshot_path)
            .map_err(|source| io_error(&snapshot_path, source))?;
        sync_dir(&self.dir)?;
        // From here the old log is stale: appending to it would lose operations, so a failure
        // stops the registry.
        let log_path = self.dir.join("log");
        let finish = std::fs::rename(&log_tmp, &log_path)
            .map_err(|source| io_error(&log_path, source))
            .and_then(|()| sync_dir(&self.dir))
            .and_then(|()| {
                OpenOptions::new()
                    .append(true)
                    .open(&log_path)
                    .map_err(|source| io_error(&log_path, source))
            });
        match finish {
            Ok(log) => {
                self.log = Some(log);
                self.log_len = FILE_HEADER_LEN as u64;
                self.log_records = 0;
                self.generation = generation;
                Ok(())
            }
            Err(err) => {
                self.poisoned = Some(format!("compaction did not finish: {err}"));
                Err(err)
            }
        }
    }

    fn append(&mut self, op: &RegistryOp) -> Result<(), RegistryError> {
        let body = rmp_serde::to_vec_named(op)?;
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + body.len());
        push_record(&mut record, &body);
        let log_path = self.dir.join("log");
        let Some(log) = self.log.as_mut() else {
            return Err(RegistryError::Poisoned(
                "the registry has no open log".into(),
            ));
        };
        let written = log.write_all(&record).and_then(|()| log.sync_data());
        if let Err(source) = written {
            // Cut a partial record off, or later appends would follow garbage.
            if let Err(err) = log.set_len(self.log_len).and_then(|()| log.sync_data()) {
                self.poisoned = Some(format!(
                    "a failed append could not be undone: {err} (after: {source})"
                ));
            }
            return Err(io_error(&log_path, source));
        }
        self.log_len += record.len() as u64;
        self.log_records += 1;
        Ok(())
    }
}

impl Registry for FileRegistry {
    fn state(&self) -> &RegistryState {
        &self.state
    }

    fn apply(&mut self, op: &RegistryOp) -> Result<(), RegistryError> {
        if let Some(reason) = &self.poisoned {
            return Err(RegistryError::Poisoned(reason.clone()));
        }
        self.append(op)?;
        self.state.apply(op);
        if self.log_records >= self.compaction_threshold
            && let Err(err) = self.compact()
        {
            // The operation is durable in the log; only a failure after the snapshot was
            // replaced (which poisons the registry) matters for the next write.
            tracing::warn!(dir = %self.dir.display(), error = %err, "registry compaction failed");
        }
        Ok(())
    }
}

/// Takes the registry directory's lock, or says who holds it.
fn lock_dir(dir: &Path) -> Result<File, RegistryError> {
    let path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| io_error(&path, source))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(RegistryError::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(io_error(&path, source)),
    }
}

/// Reads the snapshot and replays the log; returns the state and the snapshot's generation.
fn load(dir: &Path) -> Result<(RegistryState, u64), RegistryError> {
    let snapshot_path = dir.join("snapshot");
    let log_path = dir.join("log");
    let snapshot = read_optional(&snapshot_path)?;
    let log = read_optional(&log_path)?;
    let (mut state, generation) = match &snapshot {
        Some(bytes) => {
            let generation = check_header(&snapshot_path, bytes, SNAPSHOT_MAGIC)?;
            let (state, end) = match read_record(bytes, FILE_HEADER_LEN) {
                RecordRead::Complete { body, end } => {
                    (decode(&snapshot_path, body, FILE_HEADER_LEN)?, end)
                }
                RecordRead::Torn { reason } | RecordRead::Damaged { reason } => {
                    return Err(corrupt(&snapshot_path, FILE_HEADER_LEN, reason));
                }
                RecordRead::End => {
                    return Err(corrupt(&snapshot_path, FILE_HEADER_LEN, "no state".into()));
                }
            };
            if end != bytes.len() {
                return Err(corrupt(
                    &snapshot_path,
                    end,
                    "unexpected bytes after the state".into(),
                ));
            }
            (state, generation)
        }
        None => (RegistryState::default(), 0),
    };
    let Some(log) = log else {
        if snapshot.is_some() {
            return Err(corrupt(
                &log_path,
                0,
                "the operation log is missing next to a snapshot".into(),
            ));
        }
        return Ok((state, generation));
    };
    let log_generation = check_header(&log_path, &log, LOG_MAGIC)?;
    if log_generation < generation {
        // Compaction was interrupted after the snapshot was replaced: its operations are in
        // the snapshot.
        tracing::info!(
            log_generation,
            generation,
            "ignoring an operation log older than the snapshot"
        );
        return Ok((state, generation));
    }
    if log_generation > generation {
        return Err(corrupt(
            &log_path,
            8 + 4,
            format!(
                "log generation {log_generation} is newer than snapshot generation {generation}"
            ),
        ));
    }
    let mut offset = FILE_HEADER_LEN;
    let mut replayed = 0usize;
    loop {
        match read_record(&log, offset) {
            RecordRead::End => break,
            RecordRead::Complete { body, end } => {
                let op: RegistryOp = decode(&log_path, body, offset)?;
                state.apply(&op);
                replayed += 1;
                offset = end;
            }
            RecordRead::Torn { reason } => {
                tracing::warn!(
                    path = %log_path.display(),
                    offset,
                    dropped_bytes = log.len() - offset,
                    %reason,
                    "dropping an operation cut short by a crash"
                );
                break;
            }
            RecordRead::Damaged { reason } => return Err(corrupt(&log_path, offset, reason)),
        }
    }
    tracing::debug!(replayed, "registry log replayed");
    Ok((state, generation))
}

/// What is found at one offset of a file of records.
enum RecordRead<'a> {
    /// No bytes left.
    End,
    Complete {
        body: &'a [u8],
        end: usize,
    },
    /// A record cut short at the end of the file.
    Torn {
        reason: String,
    },
    Damaged {
        reason: String,
    },
}

fn read_record<'a>(bytes: &'a [u8], offset: usize) -> RecordRead<'a> {
    let rest = &bytes[offset..];
    if rest.is_empty() {
        return RecordRead::End;
    }
    if rest.len() < RECORD_HEADER_LEN {
        return RecordRead::Torn {
            reason: format!("{} bytes of a record header", rest.len()),
        };
    }
    let len_bytes: [u8; 4] = rest[0..4].try_into().expect("4 bytes");
    let len_crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
    let body_crc = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    if crc32(&len_bytes) != len_crc {
        // A crash can leave the end of a file zero-filled; anything else is damage.
        if rest.iter().all(|&b| b == 0) {
            return RecordRead::Torn {
                reason: "zero-filled record".into(),
            };
        }
        return RecordRead::Damaged {
            reason: "record header checksum mismatch".into(),
        };
    }
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > RECORD_LEN_MAX {
        return RecordRead::Damaged {
            reason: format!("record of {len} bytes is over the limit"),
        };
    }
    let body_end = RECORD_HEADER_LEN + len;
    if rest.len() < body_end {
        return RecordRead::Torn {
            reason: format!("{} of {len} body bytes", rest.len() - RECORD_HEADER_LEN),
        };
    }
    let body = &rest[RECORD_HEADER_LEN..body_end];
    if crc32(body) != body_crc {
        if rest.len() == body_end {
            return RecordRead::Torn {
                reason: "last record's body checksum mismatch".into(),
            };
        }
        return RecordRead::Damaged {
            reason: "record body checksum mismatch".into(),
        };
    }
    RecordRead::Complete {
        body,
        end: offset + body_end,
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    path: &Path,
    body: &[u8],
    offset: usize,
) -> Result<T, RegistryError> {
    rmp_serde::from_slice(body)
        .map_err(|err| corrupt(path, offset, format!("record does not decode: {err}")))
}

/// Checks a file's magic and version and returns its generation.
fn check_header(path: &Path, bytes: &[u8], magic: &[u8; 8]) -> Result<u64, RegistryError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(corrupt(path, 0, "file header is incomplete".into()));
    }
    if &bytes[0..8] != magic {
        return Err(corrupt(path, 0, "not a registry file of this kind".into()));
    }
    let version = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(RegistryError::UnsupportedVersion {
            path: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(u64::from_be_bytes(
        bytes[12..20].try_into().expect("8 bytes"),
    ))
}

fn file_header(magic: &[u8; 8], generation: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(FILE_HEADER_LEN);
    header.extend_from_slice(magic);
    header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    header.extend_from_slice(&generation.to_be_bytes());
    header
}

fn push_record(out: &mut Vec<u8>, body: &[u8]) {
    let len = (body.len() as u32).to_be_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32(&len).to_be_bytes());
    out.extend_from_slice(&crc32(body).to_be_bytes());
    out.extend_from_slice(body);
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, RegistryError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path, source)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| io_error(path, source))?;
    Ok(Some(bytes))
}

/// Creates (or truncates) `path` with `bytes` and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let mut file = File::create(path).map_err(|source| io_error(path, source))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(path, source))
}

/// Syncs a directory, so that a rename in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| io_error(dir, source))
}

fn io_error(path: &Path, source: std::io::Error) -> RegistryError {
    RegistryError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, offset: usize, reason: String) -> RegistryError {
    RegistryError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason,
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and gzip compute it.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = i as u32;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in bytes {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use strata_protocol::AgentId;
    use strata_protocol::mesos::AgentInfo;

    use super::*;
    use crate::registry::{AdmittedAgent, DrainRecord, UnreachableRecord};

    fn agent_info(id: &str) -> AgentInfo {
        serde_json::from_value(json!({
            "hostname": format!("{id}.test"),
            "id": {"value": id},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}}],
        }))
        .unwrap()
    }

    fn admit(id: &str) -> RegistryOp {
        RegistryOp::AdmitAgent(AdmittedAgent {
            info: agent_info(id),
            deactivated: false,
            drain: None,
        })
    }

    fn agent_id(id: &str) -> AgentId {
        AgentId::new(id).unwrap()
    }

    /// A sequence touching every kind of operation.
    fn ops() -> Vec<RegistryOp> {
        vec![
            admit("a1"),
            admit("a2"),
            admit("a3"),
            RegistryOp::AdmitAgent(AdmittedAgent {
                info: agent_info("a2"),
                deactivated: true,
                drain: Some(DrainRecord {
                    config: Default::default(),
                    drained: false,
                }),
            }),
            RegistryOp::MarkUnreachable(UnreachableRecord {
                info: agent_info("a3"),
                since: 1_800_000_123.5,
            }),
            RegistryOp::MarkGone {
                agent_id: agent_id("a1"),
                at: 1_800_000_200.0,
            },
            RegistryOp::UpdateWeights(BTreeMap::from([("dev".to_owned(), 2.5)])),
            RegistryOp::UpdateQuota(BTreeMap::from([(
                "dev".to_owned(),
                BTreeMap::from([("cpus".to_owned(), 4.0)]),
            )])),
        ]
    }

    fn expected(ops: &[RegistryOp]) -> RegistryState {
        let mut state = RegistryState::default();
        for op in ops {
            state.apply(op);
        }
        state
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = FileRegistry::open(dir.path().join("registry")).unwrap();
        for op in ops() {
            registry.apply(&op).unwrap();
        }
        let want = expected(&ops());
        assert_eq!(registry.state(), &want);
        assert_eq!(want.agents.len(), 1, "a2 stays admitted");
        assert!(want.agents[&agent_id("a2")].deactivated);
        assert_eq!(want.unreachable[&agent_id("a3")].since, 1_800_000_123.5);
        assert_eq!(want.gone[&agent_id("a1")], 1_800_000_200.0);
        drop(registry);

        let reopened = FileRegistry::open(dir.path().join("registry")).unwrap();
        assert_eq!(reopened.state(), &want);
    }

    #[test]
    fn a_second_open_of_the_same_registry_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileRegistry::open(dir.path()).unwrap();
        let err = FileRegistry::open(dir.path()).unwrap_err();
        assert!(matches!(err, RegistryError::Locked { .. }), "{err}");
        drop(first);
        FileRegistry::open(dir.path()).unwrap();
    }

    #[test]
    fn the_log_is_compacted_into_a_snapshot_past_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = FileRegistry::open_with_threshold(dir.path(), 3).unwrap();
        let generation = registry.generation();
        for op in &ops()[..3] {
            registry.apply(op).unwrap();
        }
        assert_eq!(registry.generation(), generation + 1, "compacted at 3 ops");
        assert_eq!(registry.log_records(), 0);
        for op in &ops()[3..] {
            registry.apply(op).unwrap();
        }
        assert_eq!(registry.log_records(), 2);
        let log_len = std::fs::metadata(dir.path().join("log")).unwrap().len();
        assert!(
            log_len > FILE_HEADER_LEN as u64,
            "recent ops are in the log"
        );
        drop(registry);
        let reopened = FileRegistry::open_with_threshold(dir.path(), 3).unwrap();
        assert_eq!(reopened.state(), &expected(&ops()));
    }

    /// Writes the ops to a fresh registry and returns the log's bytes and the offset where
    /// the last record starts.
    fn log_with_ops(dir: &Path) -> (Vec<u8>, usize) {
        let mut registry = FileRegistry::open(dir).unwrap();
        let ops = ops();
        for op in &ops[..ops.len() - 1] {
            registry.apply(op).unwrap();
        }
        let last_start = std::fs::metadata(dir.join("log")).unwrap().len() as usize;
        registry.apply(&ops[ops.len() - 1]).unwrap();
        (std::fs::read(dir.join("log")).unwrap(), last_start)
    }

    #[test]
    fn a_record_cut_short_at_the_end_is_dropped() {
        let ops = ops();
        let all_but_last = expected(&ops[..ops.len() - 1]);
        for cut in [1, RECORD_HEADER_LEN, RECORD_HEADER_LEN + 3] {
            let dir = tempfile::tempdir().unwrap();
            let (log, last_start) = log_with_ops(dir.path());
            std::fs::write(dir.path().join("log"), &log[..last_start + cut]).unwrap();
            let mut registry = FileRegistry::open(dir.path()).unwrap();
            assert_eq!(registry.state(), &all_but_last, "cut after {cut} bytes");
            // The registry takes writes again, and they survive the next restart.
            registry.apply(&ops[ops.len() - 1]).unwrap();
            drop(registry);
            assert_eq!(
                FileRegistry::open(dir.path()).unwrap().state(),
                &expected(&ops)
            );
        }
    }

    #[test]
    fn a_zero_filled_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = log_with_ops(dir.path());
        log.extend_from_slice(&[0; 40]);
        std::fs::write(dir.path().join("log"), &log).unwrap();
        let registry = FileRegistry::open(dir.path()).unwrap();
        assert_eq!(registry.state(), &expected(&ops()));
    }

    #[test]
    fn damage_before_the_end_refuses_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = log_with_ops(dir.path());
        // Flip a byte in the first record's body.
        log[FILE_HEADER_LEN + RECORD_HEADER_LEN + 2] ^= 0x40;
        std::fs::write(dir.path().join("log"), &log).unwrap();
        let err = FileRegistry::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Corrupt { offset, .. } if *offset == FILE_HEADER_LEN as u64),
            "{err}"
        );
        assert!(err.to_string().contains("checksum"), "{err}");
        // Nothing was overwritten: the damaged log is still there for a human to look at.
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), log);

        let mut header_damaged = log.clone();
        header_damaged[FILE_HEADER_LEN + 2] ^= 0x01;
        header_damaged[FILE_HEADER_LEN + RECORD_HEADER_LEN + 2] ^= 0x40;
        std::fs::write(dir.path().join("log"), &header_damaged).unwrap();
        assert!(matches!(
            FileRegistry::open(dir.path()).unwrap_err(),
            RegistryError::Corrupt { .. }
        ));
    }

    #[test]
    fn an_unknown_format_version_refuses_to_load() {
        let dir = tempfile::tempdir().unwrap();
        drop(FileRegistry::open(dir.path()).unwrap());
        let path = dir.path().join("snapshot");
        let mut snapshot = std::fs::read(&path).unwrap();
        snapshot[8..12].copy_from_slice(&2u32.to_be_bytes());
        std::fs::write(&path, &snapshot).unwrap();
        let err = FileRegistry::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, RegistryError::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn a_missing_log_next_to_a_snapshot_refuses_to_load() {
        let dir = tempfile::tempdir().unwrap();
        drop(FileRegistry::open(dir.path()).unwrap());
        std::fs::remove_file(dir.path().join("log")).unwrap();
        let err = FileRegistry::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn a_crash_before_the_snapshot_rename_leaves_the_old_state_visible() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = FileRegistry::open(dir.path()).unwrap();
        registry.apply(&admit("a1")).unwrap();
        drop(registry);
        // A compaction that died after writing part of its temporary snapshot and log.
        std::fs::write(dir.path().join("snapshot.tmp"), b"STRTSNAP\0\0").unwrap();
        std::fs::write(dir.path().join("log.tmp"), b"STRT").unwrap();
        let registry = FileRegistry::open(dir.path()).unwrap();
        assert_eq!(registry.state(), &expected(&[admit("a1")]));
        assert!(
            !dir.path().join("snapshot.tmp").exists(),
            "leftovers removed"
        );
        assert!(!dir.path().join("log.tmp").exists());
    }

    #[test]
    fn a_crash_between_the_two_renames_ignores_the_stale_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = FileRegistry::open_with_threshold(dir.path(), 100).unwrap();
        registry.apply(&admit("a1")).unwrap();
        registry.apply(&admit("a2")).unwrap();
        let stale_log = std::fs::read(dir.path().join("log")).unwrap();
        registry.compact().unwrap();
        registry
            .apply(&RegistryOp::RemoveAgent {
                agent_id: agent_id("a1"),
            })
            .unwrap();
        registry.compact().unwrap();
        drop(registry);
        // The newest snapshot with a log of the previous generation: as if the process died
        // after renaming the snapshot and before renaming the log.
        std::fs::write(dir.path().join("log"), &stale_log).unwrap();
        let registry = FileRegistry::open(dir.path()).unwrap();
        let state = registry.state();
        assert!(!state.agents.contains_key(&agent_id("a1")), "not replayed");
        assert!(state.agents.contains_key(&agent_id("a2")));
    }
}
