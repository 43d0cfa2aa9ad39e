//! The `/files` endpoints: read-only access to attached directories, as Mesos's agent serves
//! sandboxes (`src/files/files.cpp`).
//!
//! The agent attaches each executor run's sandbox under one or more virtual paths (its real
//! absolute path, and `/frameworks/<fw>/executors/<ex>/runs/latest`); a request's `path` is
//! matched against the attachments by whole components, longest first, and the rest of it is
//! resolved inside the attached directory with [`crate::sandbox::open_in_sandbox`], so the kernel
//! refuses anything that leaves the directory at the moment of the open.
//!
//! - `GET /files/browse?path=`: JSON array of the directory's entries ([`FileEntry`]: `path`,
//!   `nlink`, `size`, `mtime`, `mode`, `uid`, `gid`), sorted by path.
//! - `GET /files/read?path=&offset=&length=`: `{"data": "...", "offset": N}` ([`ReadResult`]);
//!   no offset (or `-1`) answers the size and no data, as the Mesos web UI expects.
//! - `GET /files/download?path=`: the file as `application/octet-stream`, as an attachment.
//! - `GET /files/debug`: JSON object from virtual path to real directory.
//!
//! Errors: a malformed request is 400 with a message saying what is wrong, an unknown path 404,
//! a path that leaves its directory 403; neither of the last two tells what is on the other side.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentDisposition, ContentType, DispositionParam, DispositionType};
use actix_web::{HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use crate::sandbox::{ResolveError, open_in_sandbox};

/// The longest `path` parameter accepted: twice Linux's `PATH_MAX`, room for a virtual prefix
/// in front of any real path.
pub const MAX_PATH_LENGTH: usize = 8192;

/// The default cap on the bytes one `/files/read` returns.
pub const DEFAULT_MAX_READ_LENGTH: u64 = 16 * 1024 * 1024;

/// The directories served under `/files`, by virtual path.
///
/// Cheap to clone: clones share one registry, so the agent attaches and detaches sandboxes on its
/// own clone while the HTTP workers serve theirs.
#[derive(Debug, Clone)]
pub struct Files {
    attachments: Arc<RwLock<BTreeMap<String, PathBuf>>>,
    max_read_length: u64,
}

/// Why a directory cannot be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The virtual path is empty, relative or goes through `..`.
    #[error("invalid virtual path {0:?}: must be absolute, not '/', without '..'")]
    InvalidVirtualPath(String),
    /// The real directory does not exist or cannot be resolved.
    #[error("cannot attach {path:?}: {source}")]
    Unresolvable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The real path exists but is not a directory.
    #[error("cannot attach {0:?}: not a directory")]
    NotADirectory(PathBuf),
}

/// Where a request's path leads: the attached directory and the rest of the path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The request path, normalised (no empty or `.` components, no trailing `/`).
    pub virtual_path: String,
    /// The attached directory the path is under.
    pub root: PathBuf,
    /// The rest of the path, relative to `root`; empty for `root` itself.
    pub relative: String,
}

impl Default for Files {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits a `/`-separated path into its names, dropping empty and `.` components; `None` if any
/// component is `..`, which no attachment or sandbox path may contain.
fn split_components(path: &str) -> Option<Vec<&str>> {
    let mut components = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            name => components.push(name),
        }
    }
    Some(components)
}

fn join_virtual(components: &[&str]) -> String {
    let mut path = String::new();
    for component in components {
        path.push('/');
        path.push_str(component);
    }
    path
}

impl Files {
    /// An empty registry with the default read cap ([`DEFAULT_MAX_READ_LENGTH`]).
    pub fn new() -> Self {
        Self {
            attachments: Arc::default(),
            max_read_length: DEFAULT_MAX_READ_LENGTH,
        }
    }

    /// Caps the bytes one `/files/read` returns (at least 1).
    pub fn with_max_read_length(mut self, max_read_length: u64) -> Self {
        self.max_read_length = max_read_length.max(1);
        self
    }

    /// The cap on the bytes one `/files/read` returns.
    pub fn max_read_length(&self) -> u64 {
        self.max_read_length
    }

    /// Serves `real_dir` under `virtual_path`, replacing any directory attached there before.
    ///
    /// The directory is stored by its canonical path, so moving a symlink that led to it later
    /// does not change what is served.
    pub fn attach(
        &self,
        virtual_path: &str,
        real_dir: impl Into<PathBuf>,
    ) -> Result<(), AttachError> {
        // A bad virtual path is refused before the file system is touched.
        if Self::key(virtual_path).is_none() {
            return Err(AttachError::InvalidVirtualPath(virtual_path.to_owned()));
        }
        let real_dir = real_dir.into();
        let canonical = real_dir
            .canonicalize()
            .map_err(|source| AttachError::Unresolvable {
                path: real_dir.clone(),
                source,
            })?;
        if !canonical.is_dir() {
            return Err(AttachError::NotADirectory(real_dir));
        }
        self.attach_canonical(virtual_path, canonical)
    }

    /// Serves `canonical_dir` under `virtual_path` as [`Self::attach`] does, for a directory the
    /// caller knows to be canonical and to exist: a sandbox the agent has just created under its
    /// canonical work dir, whose path it built from validated IDs. Resolving it again would cost
    /// a system call per component on every launch.
    pub fn attach_canonical(
        &self,
        virtual_path: &str,
        canonical_dir: PathBuf,
    ) -> Result<(), AttachError> {
        let key = Self::key(virtual_path)
            .ok_or_else(|| AttachError::InvalidVirtualPath(virtual_path.to_owned()))?;
        debug_assert!(canonical_dir.is_absolute(), "{}", canonical_dir.display());
        tracing::debug!(virtual_path = %key, real_dir = %canonical_dir.display(), "attached directory");
        self.write().insert(key, canonical_dir);
        Ok(())
    }

    /// Stops serving `virtual_path`; returns whether it was attached.
    pub fn detach(&self, virtual_path: &str) -> bool {
        let Some(key) = Self::key(virtual_path) else {
            return false;
        };
        let removed = self.write().remove(&key).is_some();
        if removed {
            tracing::debug!(virtual_path = %key, "detached directory");
        }
        removed
    }

    /// Stops serving a run's sandbox once it is removed: under its real path, and under its
    /// executor's `latest` run while that is still this run.
    pub fn detach_run(&self, run_dir: &Path) {
        let mut attachments = self.write();
        if let Some(key) = Self::key(&run_dir.display().to_string()) {
            attachments.remove(&key);
        }
        // `.../frameworks/<fw>/executors/<ex>/runs/<container>`, read from the end.
        let names: Vec<&str> = run_dir
            .iter()
            .rev()
            .take(6)
            .filter_map(|name| name.to_str())
            .collect();
        if let [_, "runs", executor, "executors", framework, "frameworks"] = names.as_slice() {
            let latest = format!("/frameworks/{framework}/executors/{executor}/runs/latest");
            if attachments.get(&latest).is_some_and(|dir| dir == run_dir) {
                attachments.remove(&latest);
            }
        }
        tracing::debug!(run_dir = %run_dir.display(), "detached run");
    }

    /// Every attachment, virtual path to canonical real directory.
    pub fn attachments(&self) -> BTreeMap<String, PathBuf> {
        self.read().clone()
    }

    /// Finds the attachment `path` is under: the longest attached prefix by whole components,
    /// so `/runs/abc` never matches an attachment at `/runs/ab`.
    ///
    /// `..` anywhere is [`ResolveError::Forbidden`], before any matching, so it cannot climb from
    /// one attachment into another; no matching attachment is [`ResolveError::NotFound`].
    pub fn locate(&self, path: &str) -> Result<Located, ResolveError> {
        if path.contains('\0') {
            return Err(ResolveError::Forbidden);
        }
        let components = split_components(path).ok_or(ResolveError::Forbidden)?;
        let virtual_path = join_virtual(&components);
        // Each prefix is a slice of the one normalised string, so trying them all costs a map
        // lookup each rather than a copy of the path each.
        let mut prefix_ends: Vec<usize> = Vec::with_capacity(components.len());
        let mut end = 0;
        for component in &components {
            end += 1 + component.len();
            prefix_ends.push(end);
        }
        let attachments = self.read();
        for (prefix_len, &end) in prefix_ends.iter().enumerate().rev() {
            if let Some(root) = attachments.get(&virtual_path[..end]) {
                return Ok(Located {
                    root: root.clone(),
                    relative: components[prefix_len + 1..].join("/"),
                    virtual_path,
                });
            }
        }
        Err(ResolveError::NotFound)
    }

    /// The registry key of a virtual path: `/`-joined components with a leading `/`.
    fn key(virtual_path: &str) -> Option<String> {
        if !virtual_path.starts_with('/') || virtual_path.contains('\0') {
            return None;
        }
        let components = split_components(virtual_path)?;
        if components.is_empty() {
            return None;
        }
        Some(join_virtual(&components))
    }

    // A poisoned lock only means a writer panicked between two map operations, each of which
    // leaves the map whole, so the data is still good to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, PathBuf>> {
        self.attachments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, PathBuf>> {
        self.attachments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Mounts `/files/{browse,read,download,debug}` (and Mesos's older `browse.json`/`read.json`
/// spellings) serving `files`.
pub fn configure(files: Files) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(files))
            .route("/files/browse", web::get().to(browse))
            .route("/files/browse.json", web::get().to(browse))
            .route("/files/read", web::get().to(read))
            .route("/files/read.json", web::get().to(read))
            .route("/files/download", web::get().to(download))
            .route("/files/download.json", web::get().to(download))
            .route("/files/debug", web::get().to(debug))
            .route("/files/debug.json", web::get().to(debug));
    }
}

/// An error answer from a `/files` endpoint.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The request is malformed: 400 with the message.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing is served at the path: 404.
    #[error("no such file or directory")]
    NotFound,
    /// The path leaves its directory: 403.
    #[error("path is not accessible")]
    Forbidden,
    /// The file system failed: 500.
    #[error("{0}")]
    Internal(String),
}

impl From<ResolveError> for FilesError {
    fn from(error: ResolveError) -> Self {
        match error {
            ResolveError::NotFound => FilesError::NotFound,
            ResolveError::Forbidden => FilesError::Forbidden,
        }
    }
}

impl ResponseError for FilesError {
    fn status_code(&self) -> StatusCode {
        match self {
            FilesError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FilesError::NotFound => StatusCode::NOT_FOUND,
            FilesError::Forbidden => StatusCode::FORBIDDEN,
            FilesError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type(ContentType::plaintext())
            .body(format!("{self}\n"))
    }
}

/// The query parameters of the `/files` endpoints, as strings so a bad number gets a message
/// naming the parameter rather than a generic parse error.
#[derive(Debug, Deserialize)]
struct FilesQuery {
    path: Option<String>,
    offset: Option<String>,
    length: Option<String>,
}

impl FilesQuery {
    fn path(&self) -> Result<&str, FilesError> {
        match self.path.as_deref() {
            Some(path) if path.len() > MAX_PATH_LENGTH => Err(FilesError::BadRequest(format!(
                "'path' is {} bytes long, more than the {MAX_PATH_LENGTH} allowed",
                path.len()
            ))),
            Some(path) if !path.is_empty() => Ok(path),
            _ => Err(FilesError::BadRequest(
                "expecting 'path=value' in query".to_owned(),
            )),
        }
    }

    /// `offset`: absent or `-1` means "tell me the size" (what the Mesos web UI's pailer sends
    /// first), otherwise a byte offset.
    fn offset(&self) -> Result<Option<u64>, FilesError> {
        parse_optional_count("offset", self.offset.as_deref())
    }

    /// `length`: absent or `-1` means "to the end", capped like any length.
    fn length(&self) -> Result<Option<u64>, FilesError> {
        parse_optional_count("length", self.length.as_deref())
    }
}

fn parse_optional_count(name: &str, value: Option<&str>) -> Result<Option<u64>, FilesError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let number: i64 = value.trim().parse().map_err(|error| {
        FilesError::BadRequest(format!("failed to parse {name} {value:?}: {error}"))
    })?;
    match number {
        -1 => Ok(None),
        n if n < 0 => Err(FilesError::BadRequest(format!(
            "negative {name} provided: {n}"
        ))),
        n => Ok(Some(n.unsigned_abs())),
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    web::block(work)
        .await
        .map_err(|error| FilesError::Internal(format!("file worker failed: {error}")))?
}

/// Opens the file or directory `path` leads to, with its `fstat`.
fn open_located(
    files: &Files,
    path: &str,
) -> Result<(Located, File, rustix::fs::Stat), FilesError> {
    let located = files.locate(path)?;
    let file = open_in_sandbox(&located.root, &located.relative)?;
    let stat = rustix::fs::fstat(&file)
        .map_err(|error| FilesError::Internal(format!("failed to stat {path:?}: {error}")))?;
    Ok((located, file, stat))
}

fn file_type(stat: &rustix::fs::Stat) -> rustix::fs::FileType {
    rustix::fs::FileType::from_raw_mode(stat.st_mode)
}

/// One entry of a `/files/browse` answer, as Mesos models a `FileInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The entry's virtual path: the browsed path, `/`, the entry's name.
    pub path: String,
    /// Hard links to the file.
    pub nlink: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, in whole seconds since the Unix epoch.
    pub mtime: i64,
    /// `ls -l` style: a type character then `rwx` for owner, group and others.
    pub mode: String,
    /// The owner's user name, or the number when it has no name.
    pub uid: String,
    /// The group's name, or the number when it has no name.
    pub gid: String,
}

/// `ls -l` style mode string, e.g. `-rw-r--r--` or `drwxr-xr-x`.
pub fn mode_string(mode: u32) -> String {
    use rustix::fs::FileType;
    let kind = match FileType::from_raw_mode(mode) {
        FileType::Directory => 'd',
        FileType::CharacterDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Symlink => 'l',
        FileType::Socket => 's',
        _ => '-',
    };
    let mut text = String::with_capacity(10);
    text.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        text.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        text.push(if bits & 0o1 != 0 { 'x' } else { '-' });
    }
    text
}

/// Names for user and group IDs, looked up once per browse.
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(
                || match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                    Ok(Some(user)) => user.name,
                    _ => uid.to_string(),
                },
            )
            .clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
                    Ok(Some(group)) => group.name,
                    _ => gid.to_string(),
                }
            })
            .clone()
    }
}

// The conversions are identities on some architectures and not on others.
#[allow(clippy::useless_conversion)]
fn entry(path: String, stat: &rustix::fs::Stat, names: &mut Names) -> FileEntry {
    FileEntry {
        path,
        nlink: stat.st_nlink.try_into().unwrap_or(u64::MAX),
        size: stat.st_size.try_into().unwrap_or(0),
        mtime: stat.st_mtime.try_into().unwrap_or(0),
        mode: mode_string(stat.st_mode),
        uid: names.user(stat.st_uid),
        gid: names.group(stat.st_gid),
    }
}

/// Lists the directory `path` leads to.
///
/// Entries are listed from the opened directory's descriptor, not by path, so the listing is of
/// the directory that was checked. A symlink is described by what it points to when that is
/// inside the sandbox (what `/files/read` would serve), and as the link itself otherwise, so
/// nothing is told about files outside.
pub fn browse_dir(files: &Files, path: &str) -> Result<Vec<FileEntry>, FilesError> {
    use rustix::fs::{AtFlags, Dir, FileType};
    let (located, dir, stat) = open_located(files, path)?;
    if file_type(&stat) != FileType::Directory {
        return Err(FilesError::BadRequest(format!(
            "{path:?} is not a directory; use /files/read or /files/download"
        )));
    }
    let io_error = |error: rustix::io::Errno| {
        FilesError::Internal(format!("failed to list {path:?}: {error}"))
    };
    let mut names = Names::default();
    let mut entries = Vec::new();
    let mut listing = Dir::read_from(dir.as_fd()).map_err(io_error)?;
    while let Some(dir_entry) = listing.read() {
        let dir_entry = dir_entry.map_err(io_error)?;
        let name = dir_entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let Ok(mut stat) =
            rustix::fs::statat(&dir, dir_entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
        else {
            // Removed between the listing and the stat, as Mesos also skips.
            continue;
        };
        if file_type(&stat) == FileType::Symlink {
            let target = if located.relative.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", located.relative)
            };
            let target_stat = open_in_sandbox(&located.root, &target)
                .ok()
                .and_then(|file| rustix::fs::fstat(&file).ok());
            if let Some(target_stat) = target_stat {
                stat = target_stat;
            }
        }
        entries.push(entry(
            format!("{}/{name}", located.virtual_path),
            &stat,
            &mut names,
        ));
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// What `/files/read` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The bytes read, as text; bytes that are not UTF-8 read as U+FFFD.
    pub data: String,
    /// The offset read from, or the file's size when no offset was given.
    pub offset: u64,
}

/// Reads up to `length` bytes (at most the registry's cap) at `offset` of the file `path` leads
/// to, with Mesos's conventions: no offset answers the size and no data, an offset at or past
/// the end answers no data.
pub fn read_file(
    files: &Files,
    path: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<ReadResult, FilesError> {
    let (_, file, stat) = open_located(files, path)?;
    check_regular(path, &stat, "read")?;
    let size: u64 = stat.st_size.try_into().unwrap_or(0);
    let Some(offset) = offset else {
        return Ok(ReadResult {
            data: String::new(),
            offset: size,
        });
    };
    let available = size.saturating_sub(offset);
    let wanted = length
        .unwrap_or(available)
        .min(available)
        .min(files.max_read_length);
    // `wanted` is at most the read cap, which the caller chose to fit in memory.
    let mut data = vec![0; usize::try_from(wanted).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < data.len() {
        match file.read_at(&mut data[filled..], offset + filled as u64) {
            // The file shrank since the stat: answer what there is.
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(FilesError::Internal(format!(
                    "failed to read {path:?}: {error}"
                )));
            }
        }
    }
    data.truncate(filled);
    Ok(ReadResult {
        data: String::from_utf8_lossy(&data).into_owned(),
        offset,
    })
}

fn check_regular(path: &str, stat: &rustix::fs::Stat, verb: &str) -> Result<(), FilesError> {
    match file_type(stat) {
        rustix::fs::FileType::RegularFile => Ok(()),
        rustix::fs::FileType::Directory => Err(FilesError::BadRequest(format!(
            "cannot {verb} a directory: {path:?}"
        ))),
        _ => Err(FilesError::BadRequest(format!(
            "cannot {verb} {path:?}: not a regular file"
        ))),
    }
}

async fn browse(
    files: web::Data<Files>,
    query: web::Query<FilesQuery>,
) -> Result<HttpResponse, FilesError> {
    let path = query.path()?.to_owned();
    let files = files.get_ref().clone();
    let entries = blocking(move || browse_dir(&files, &path)).await?;
    Ok(HttpResponse::Ok().json(entries))
}

async fn read(
    files: web::Data<Files>,
    query: web::Query<FilesQuery>,
) -> Result<HttpResponse, FilesError> {
    let path = query.path()?.to_owned();
    let offset = query.offset()?;
    let length = query.length()?;
    let files = files.get_ref().clone();
    let result = blocking(move || read_file(&files, &path, offset, length)).await?;
    Ok(HttpResponse::Ok().json(result))
}

async fn download(
    files: web::Data<Files>,
    query: web::Query<FilesQuery>,
) -> Result<HttpResponse, FilesError> {
    let path = query.path()?.to_owned();
    let files = files.get_ref().clone();
    let (file, size, name) = blocking(move || {
        let (located, file, stat) = open_located(&files, &path)?;
        check_regular(&path, &stat, "download")?;
        let name = located
            .virtual_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok((file, stat.st_size.try_into().unwrap_or(0u64), name))
    })
    .await?;
    // The descriptor is the one that was checked; streaming from it cannot serve another file.
    // The stream stops at the size announced in `Content-Length` even if the file grows.
    let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), size);
    let stream = tokio_util::io::ReaderStream::new(reader);
    Ok(HttpResponse::Ok()
        .content_type(ContentType::octet_stream())
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name)],
        })
        .no_chunking(size)
        .streaming(stream))
}

async fn debug(files: web::Data<Files>) -> HttpResponse {
    let attachments: BTreeMap<String, String> = files
        .attachments()
        .into_iter()
        .map(|(virtual_path, real)| (virtual_path, real.to_string_lossy().into_owned()))
        .collect();
    HttpResponse::Ok().json(attachments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_match_ls() {
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o010600), "prw-------");
        assert_eq!(mode_string(0o140700), "srwx------");
    }

    #[test]
    fn locate_matches_whole_components_longest_first() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let short = tmp.path().join("short");
        let long = tmp.path().join("long");
        std::fs::create_dir_all(&short).expect("mkdir");
        std::fs::create_dir_all(&long).expect("mkdir");
        let files = Files::new();
        files.attach("/runs/ab", &short).expect("attach");
        files.attach("/runs/ab/c/", &long).expect("attach");

        let located = files.locate("/runs/ab/c/d/./e").expect("found");
        assert_eq!(located.root, long.canonicalize().expect("canonical"));
        assert_eq!(located.relative, "d/e");
        assert_eq!(located.virtual_path, "/runs/ab/c/d/e");

        let located = files.locate("//runs//ab/x").expect("found");
        assert_eq!(located.root, short.canonicalize().expect("canonical"));
        assert_eq!(located.relative, "x");

        assert_eq!(files.locate("/runs/abc"), Err(ResolveError::NotFound));
        assert_eq!(files.locate("/runs/a"), Err(ResolveError::NotFound));
        assert_eq!(files.locate("/runs/ab/../ab"), Err(ResolveError::Forbidden));
    }

    #[test]
    fn attach_refuses_bad_virtual_paths_and_missing_dirs() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let files = Files::new();
        for bad in ["", "/", "relative", "/a/../b"] {
            assert!(
                matches!(
                    files.attach(bad, tmp.path()),
                    Err(AttachError::InvalidVirtualPath(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            files.attach("/x", tmp.path().join("missing")),
            Err(AttachError::Unresolvable { .. })
        ));
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(matches!(
            files.attach("/x", &file),
            Err(AttachError::NotADirectory(_))
        ));
        assert!(files.attachments().is_empty());
        assert!(!files.detach("/x"));
    }

    #[test]
    fn detach_run_forgets_a_removed_run_and_latest_only_while_it_names_that_run() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let files = Files::new();
        let runs = tmp.path().join("frameworks/fw/executors/ex/runs");
        std::fs::create_dir_all(runs.join("c1")).expect("mkdir");
        std::fs::create_dir_all(runs.join("c2")).expect("mkdir");
        let canonical = |run: &str| runs.join(run).canonicalize().expect("canonical");
        let (c1, c2) = (canonical("c1"), canonical("c2"));
        let latest = "/frameworks/fw/executors/ex/runs/latest";
        for run in [&c1, &c2] {
            files
                .attach(&run.display().to_string(), run.clone())
                .expect("attach");
        }
        files.attach(latest, c2.clone()).expect("attach latest");
        files.detach_run(&c1);
        assert!(!files.attachments().contains_key(&c1.display().to_string()));
        assert_eq!(files.attachments().get(latest), Some(&c2));
        files.detach_run(&c2);
        assert!(!files.attachments().contains_key(latest));
        assert!(files.attachments().is_empty(), "{:?}", files.attachments());
    }

    #[test]
    fn count_parameters_accept_minus_one_and_refuse_other_negatives() {
        assert_eq!(parse_optional_count("offset", None).ok(), Some(None));
        assert_eq!(parse_optional_count("offset", Some("-1")).ok(), Some(None));
        assert_eq!(
            parse_optional_count("offset", Some("7")).ok(),
            Some(Some(7))
        );
        let message = |value| match parse_optional_count("length", Some(value)) {
            Err(FilesError::BadRequest(message)) => message,
            other => panic!("{value:?} gave {other:?}"),
        };
        assert!(message("-2").contains("negative length"));
        assert!(message("x").contains("failed to parse length"));
        assert!(message("").contains("failed to parse length"));
    }
}
