//! The file operations the store is built from: atomic replacement, appends that leave no
//! partial record behind, directory creation and removal that survive a crash, each optionally
//! made durable with fsync.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::IgnoredAny;

use super::{CheckpointError, decode_log};

/// Tells temporary files apart when several threads replace files in one directory.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name prefix of temporary files. They sit beside the file they replace, in directories
/// that recovery reads by fixed names and never lists.
const TMP_PREFIX: &str = ".tmp-";

pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> CheckpointError {
    CheckpointError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How many files and directories a commit syncs one by one; more, and it syncs the filesystem.
const SYNCFS_ABOVE: usize = 8;

/// File operations with or without fsync, each made durable at once or, in a batch, all at
/// [`Fs::commit`].
#[derive(Debug, Clone)]
pub(crate) struct Fs {
    pub fsync: bool,
    /// Set in a batch (with fsync only): what was written and is not durable yet.
    pub batch: Option<Arc<Mutex<Pending>>>,
    /// Logs kept open between appends, shared by the store and its batches: an append is then
    /// one write, with no open, stat or directory lookup.
    pub logs: Arc<Mutex<HashMap<PathBuf, OpenLog>>>,
}

/// A log kept open for appends.
#[derive(Debug)]
pub(crate) struct OpenLog {
    file: File,
    /// The end of its last record: where the next one goes.
    len: u64,
    /// The file's size: zeros follow `len` up to it.
    allocated: u64,
    /// Its length after its last compaction, or when it was opened.
    compacted_len: u64,
}

impl OpenLog {
    /// Opens the existing log at `path`, whose records end at `len` in `allocated` bytes.
    fn open(path: &Path, len: u64, allocated: u64) -> Result<OpenLog, CheckpointError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|err| io_error("open", path, err))?;
        Ok(OpenLog {
            file,
            len,
            allocated,
            compacted_len: len,
        })
    }
}

/// Logs grow by at least this much at a time, and by their size up to [`PREALLOCATE_MAX`].
const PREALLOCATE_MIN: u64 = 64 * 1024;
const PREALLOCATE_MAX: u64 = 1024 * 1024;

/// What a batch has written and not yet made durable. A replaced file's new content waits in
/// its temporary file; it is synced, then renamed over the old one, at the commit, so that a
/// reader never sees a file whose content is not on disk.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Temporary files and appended-to logs, synced once each at the commit.
    files: Vec<(PathBuf, File)>,
    /// Directories that gained an entry (a new directory or log), synced before the renames.
    dirs: BTreeSet<PathBuf>,
    /// Temporary file to its final path, in the order written.
    renames: Vec<(PathBuf, PathBuf)>,
    /// Records to append to each log, written at the commit: one write per log and batch.
    appends: BTreeMap<PathBuf, Vec<u8>>,
}

impl Fs {
    /// File operations that are durable when each returns (with `fsync`).
    pub fn immediate(fsync: bool) -> Fs {
        Fs {
            fsync,
            batch: None,
            logs: Arc::default(),
        }
    }

    fn open_logs(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, OpenLog>> {
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> Option<std::sync::MutexGuard<'_, Pending>> {
        self.batch
            .as_ref()
            .map(|batch| batch.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes everything the batch wrote durable, in a crash-safe order: the new contents and
    /// directory entries first, then the renames that publish them, then the directories they
    /// were renamed in. Outside a batch there is nothing to do.
    pub fn commit(&self) -> Result<(), CheckpointError> {
        let Some(mut pending) = self.pending() else {
            return Ok(());
        };
        let Pending {
            mut files,
            mut dirs,
            renames,
            appends,
        } = std::mem::take(&mut *pending);
        drop(pending);
        let result = (|| {
            for (path, bytes) in &appends {
                let (file, created) = self.write_log(path, bytes)?;
                files.push((path.clone(), file));
                if created && let Some(dir) = path.parent() {
                    dirs.insert(dir.to_path_buf());
                }
            }
            // Past a few files, one sync of the whole filesystem costs less than one each: the
            // journal commits once either way, and each fsync also waits for the device.
            let sync_filesystem = files.len() + dirs.len() > SYNCFS_ABOVE;
            if sync_filesystem && let Some((path, file)) = files.first() {
                rustix::fs::syncfs(file).map_err(|err| io_error("sync", path, err.into()))?;
            } else {
                for (path, file) in &files {
                    file.sync_data()
                        .map_err(|err| io_error("sync", path, err))?;
                }
                for dir in &dirs {
                    sync_dir_now(dir)?;
                }
            }
            let mut renamed_in = BTreeSet::new();
            for (tmp, path) in &renames {
                fs::rename(tmp, path).map_err(|err| io_error("rename into place", path, err))?;
                if let Some(dir) = path.parent() {
                    renamed_in.insert(dir.to_path_buf());
                }
            }
            if renamed_in.len() > SYNCFS_ABOVE
                && let Some((path, file)) = files.first()
            {
                rustix::fs::syncfs(file).map_err(|err| io_error("sync", path, err.into()))?;
            } else {
                for dir in &renamed_in {
                    sync_dir_now(dir)?;
                }
            }
            Ok(())
        })();
        if result.is_err() {
            // Best effort: temporary files are garbage either way.
            for (tmp, _) in &renames {
                let _ = fs::remove_file(tmp);
            }
        }
        result
    }

    /// Makes the entries of `dir` (creations, renames, removals) durable; in a batch, at the
    /// commit.
    pub fn sync_dir(&self, dir: &Path) -> Result<(), CheckpointError> {
        if !self.fsync {
            return Ok(());
        }
        if let Some(mut pending) = self.pending() {
            pending.dirs.insert(dir.to_path_buf());
            return Ok(());
        }
        sync_dir_now(dir)
    }

    /// Creates `dir` and its missing parents; with fsync, each new directory is made durable in
    /// its parent, so a crash cannot leave a file whose directory vanished.
    pub fn create_dirs(&self, dir: &Path) -> Result<(), CheckpointError> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.create_dirs(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                return Ok(());
            }
            Err(err) => return Err(io_error("create directory", dir, err)),
        }
        match dir.parent() {
            Some(parent) => self.sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Replaces `path` with `bytes` so that readers see the old or the new content, never a mix:
    /// write a temporary file in the same directory, sync it, rename it over, sync the directory.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
        let dir = path.parent().expect("checkpoint files live in a directory");
        let name = path.file_name().expect("checkpoint files have names");
        let seq = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TMP_PREFIX}{}-{seq}", name.to_string_lossy()));
        if self.batch.is_some() {
            // Synced and renamed into place at the commit. Made before the batch's lock is
            // taken: making a missing directory records it in the batch too.
            let written = self.create_in_dir(&tmp, dir).and_then(|mut file| {
                file.write_all(bytes)
                    .map_err(|err| io_error("write", &tmp, err))?;
                Ok(file)
            });
            let file = match written {
                Ok(file) => file,
                Err(err) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(err);
                }
            };
            let mut pending = self.pending().expect("in a batch");
            pending.files.push((tmp.clone(), file));
            pending.renames.push((tmp, path.to_path_buf()));
            return Ok(());
        }
        self.create_dirs(dir)?;
        let result = self.write_then_rename(&tmp, path, bytes);
        if result.is_err() {
            // Best effort: the temporary file is garbage either way, and the original error is
            // the one worth reporting.
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.sync_dir(dir)
    }

    fn write_then_rename(
        &self,
        tmp: &Path,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(), CheckpointError> {
        let mut file = File::create(tmp).map_err(|err| io_error("create", tmp, err))?;
        file.write_all(bytes)
            .map_err(|err| io_error("write", tmp, err))?;
        if self.fsync {
            file.sync_all().map_err(|err| io_error("sync", tmp, err))?;
        }
        fs::rename(tmp, path).map_err(|err| io_error("rename into place", path, err))
    }

    /// Creates `path` (truncating it) in `dir`, making `dir` first only if it is missing: most
    /// writes go to directories that exist, and one failed open costs less than a stat each time.
    fn create_in_dir(&self, path: &Path, dir: &Path) -> Result<File, CheckpointError> {
        match File::create(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.create_dirs(dir)?;
                File::create(path)
            }
            result => result,
        }
        .map_err(|err| io_error("create", path, err))
    }

    /// Appends `bytes` (whole records) to the log at `path`, creating it if needed; in a batch,
    /// at the commit, so that nothing of a batch is seen before it is durable.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
        if let Some(mut pending) = self.pending() {
            pending
                .appends
                .entry(path.to_path_buf())
                .or_default()
                .extend_from_slice(bytes);
            return Ok(());
        }
        let (file, created) = self.write_log(path, bytes)?;
        if self.fsync {
            file.sync_data()
                .map_err(|err| io_error("sync", path, err))?;
            if created && let Some(dir) = path.parent() {
                sync_dir_now(dir)?;
            }
        }
        Ok(())
    }

    /// Writes `bytes` after the last record of the log at `path`, opening (and creating) it if
    /// it is not open yet. Returns a handle to sync it by, and whether the log was created.
    ///
    /// Logs are preallocated by writing zeros ahead of their records, a chunk at a time: a
    /// record then lands in blocks the file system has already allocated and written, so the
    /// commit's `fdatasync` writes the data and waits for no journal commit (measured on ext4:
    /// about a fifth of the latency of an append that grows the file). Recovery reads zeros
    /// after the last record as free space.
    fn write_log(&self, path: &Path, bytes: &[u8]) -> Result<(File, bool), CheckpointError> {
        let mut logs = self.open_logs();
        let mut created = false;
        if !logs.contains_key(path) {
            let dir = path.parent().expect("checkpoint files live in a directory");
            let open = || {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
            };
            let mut file = match open() {
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    // Made outside any batch's lock, which making a directory may take.
                    Fs::immediate(self.fsync).create_dirs(dir)?;
                    open()
                }
                result => result,
            }
            .map_err(|err| io_error("open", path, err))?;
            let mut content = Vec::new();
            file.read_to_end(&mut content)
                .map_err(|err| io_error("read", path, err))?;
            created = content.is_empty();
            // A log recovery did not adopt (a new one, or a store never recovered): where its
            // records end; recovery has cut off any torn one.
            let len = decode_log::<IgnoredAny>(path, &content)?.valid_len;
            logs.insert(
                path.to_path_buf(),
                OpenLog {
                    file,
                    len,
                    allocated: content.len() as u64,
                    compacted_len: len,
                },
            );
        }
        let log = logs.get_mut(path).expect("opened above");
        let end = log.len + bytes.len() as u64;
        if end > log.allocated {
            let grow = log.allocated.clamp(PREALLOCATE_MIN, PREALLOCATE_MAX);
            let allocated = end.max(log.allocated + grow);
            write_zeros(&log.file, log.allocated, allocated)
                .map_err(|err| io_error("preallocate", path, err))?;
            log.allocated = allocated;
        }
        if let Err(err) = log.file.write_all_at(bytes, log.len) {
            // Zeros again, so that what is left reads as free space, not a torn record.
            let _ = write_zeros(&log.file, log.len, end);
            return Err(io_error("append to", path, err));
        }
        log.len = end;
        let file = log
            .file
            .try_clone()
            .map_err(|err| io_error("open", path, err))?;
        Ok((file, created))
    }

    /// The open logs longer than `above` and than twice their length after their last
    /// compaction.
    pub fn logs_to_compact(&self, above: u64) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .open_logs()
            .iter()
            .filter(|(_, log)| log.len > above && log.len > 2 * log.compacted_len)
            .map(|(path, _)| path.clone())
            .collect();
        paths.sort();
        paths
    }

    /// Replaces the log at `path` with `bytes` atomically and durably (whatever the batch
    /// wrote is committed first), and appends after them from now on.
    pub fn replace_log(&self, path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.commit()?;
        let mut logs = self.open_logs();
        logs.remove(path);
        Fs::immediate(self.fsync).write_atomic(path, bytes)?;
        let len = bytes.len() as u64;
        logs.insert(path.to_path_buf(), OpenLog::open(path, len, len)?);
        Ok(())
    }

    /// Keeps the log at `path` open for appends after its records, which end at `len` in a file
    /// of `file_len` bytes (as recovery found them), unless it is open already.
    pub fn adopt_log(&self, path: &Path, len: u64, file_len: u64) -> Result<(), CheckpointError> {
        let mut logs = self.open_logs();
        if !logs.contains_key(path) {
            logs.insert(path.to_path_buf(), OpenLog::open(path, len, file_len)?);
        }
        Ok(())
    }

    /// Cuts the log at `path` back to `len` bytes (a torn tail found at recovery), durably.
    pub fn truncate_log(&self, path: &Path, len: u64) -> Result<(), CheckpointError> {
        self.open_logs().remove(path);
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|err| io_error("open", path, err))?;
        file.set_len(len)
            .map_err(|err| io_error("truncate", path, err))?;
        if self.fsync {
            file.sync_all().map_err(|err| io_error("sync", path, err))?;
        }
        Ok(())
    }

    /// Closes the open logs under `dir`, which is going away.
    fn close_logs_under(&self, dir: &Path) {
        self.open_logs().retain(|path, _| !path.starts_with(dir));
    }

    /// Removes the tree at `dir` as one step: it is first renamed into `trash` (on the same
    /// file system), which recovery never reads, and only then deleted. A crash in between leaves
    /// garbage in the trash, never half a tree where recovery would find it.
    pub fn remove_tree(&self, dir: &Path, trash: &Path) -> Result<(), CheckpointError> {
        // What the batch wrote may be inside the tree: it lands first, and the removal is made
        // durable on its own.
        self.commit()?;
        self.close_logs_under(dir);
        let fs = Fs::immediate(self.fsync);
        if !dir.exists() {
            return Ok(());
        }
        fs.create_dirs(trash)?;
        let seq = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = dir.file_name().expect("removed trees have names");
        let target = trash.join(format!("{}-{seq}", name.to_string_lossy()));
        fs::rename(dir, &target).map_err(|err| io_error("move to trash", dir, err))?;
        if let Some(parent) = dir.parent() {
            fs.sync_dir(parent)?;
        }
        // The rename was the removal; deleting what is in the trash is cleanup, which can take
        // seconds for a framework that ran thousands of executors. It happens on a thread of
        // its own so that the writes and sends queued behind the removal do not wait for it;
        // whatever a crash leaves there, the next start deletes.
        let delete = {
            let target = target.clone();
            move || {
                if let Err(error) = fs::remove_dir_all(&target) {
                    tracing::warn!(path = %target.display(), %error, "cannot empty the checkpoint trash");
                }
            }
        };
        if let Err(error) = std::thread::Builder::new()
            .name("checkpoint-trash".to_owned())
            .spawn(delete)
        {
            tracing::debug!(%error, "no thread to empty the trash; removing in place");
            fs::remove_dir_all(&target).map_err(|err| io_error("remove", &target, err))?;
        }
        Ok(())
    }

    /// Removes `path` if it exists, durably.
    pub fn remove_file(&self, path: &Path) -> Result<(), CheckpointError> {
        self.commit()?;
        self.close_logs_under(path);
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(io_error("remove", path, err)),
        }
        match path.parent() {
            Some(parent) if self.fsync => sync_dir_now(parent),
            _ => Ok(()),
        }
    }
}

/// Writes zeros over `from..to` of `file`.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

fn sync_dir_now(dir: &Path) -> Result<(), CheckpointError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| io_error("sync directory", dir, err))
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error("read", path, err)),
    }
}

/// Lists the names in `dir`, sorted, or nothing if it does not exist. Names that are not UTF-8
/// cannot be IDs and are reported.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, CheckpointError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error("list", dir, err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| io_error("list", dir, err))?;
        let path = entry.path();
        let name =
            entry
                .file_name()
                .into_string()
                .map_err(|_| CheckpointError::UnexpectedEntry {
                    path: path.clone(),
                    reason: "the name is not UTF-8".to_owned(),
                })?;
        names.push((name, path));
    }
    names.sort();
    Ok(names)
}
