//! Sandboxes: the directory each executor run works in, and safe access to files inside it.
//!
//! The layout follows Mesos (`docs/sandbox.md`, `src/slave/paths.hpp`), with `agents` for
//! Mesos's `slaves`:
//!
//! ```text
//! <work_dir>/agents/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/<container_id>
//! <work_dir>/agents/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/latest -> <container_id>
//! ```
//!
//! Every component comes from a validated ID (no `/`, not `.` or `..`), so joining them cannot
//! leave the work dir.
//!
//! Paths that users ask for over `/files/...` are another matter: [`resolve_in_sandbox`] checks
//! them by components and after resolving symlinks, and [`open_in_sandbox`] lets the kernel do
//! the same check at open time (`openat2` with `RESOLVE_BENEATH`), which also holds if the task
//! swaps a directory for a symlink between the check and the open.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use strata_protocol::{AgentId, ContainerId, ExecutorId, FrameworkId};

/// The name of the link to an executor's most recent run.
pub const LATEST: &str = "latest";
/// The file the container's stdout goes to.
pub const STDOUT: &str = "stdout";
/// The file the container's stderr goes to.
pub const STDERR: &str = "stderr";

/// The sandbox directories under one agent work dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLayout {
    work_dir: PathBuf,
}

/// One executor run's sandbox, created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub dir: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl SandboxLayout {
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            work_dir: work_dir.into(),
        }
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// `<work_dir>/agents/<agent_id>`.
    pub fn agent_dir(&self, agent_id: &AgentId) -> PathBuf {
        self.work_dir.join("agents").join(agent_id.as_str())
    }

    /// `.../frameworks/<framework_id>/executors/<executor_id>`.
    pub fn executor_dir(
        &self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> PathBuf {
        self.agent_dir(agent_id)
            .join("frameworks")
            .join(framework_id.as_str())
            .join("executors")
            .join(executor_id.as_str())
    }

    /// `.../executors/<executor_id>/runs/<container_id>`.
    pub fn run_dir(
        &self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        container_id: &ContainerId,
    ) -> PathBuf {
        self.executor_dir(agent_id, framework_id, executor_id)
            .join("runs")
            .join(container_id.as_str())
    }

    /// `.../executors/<executor_id>/runs/latest`.
    pub fn latest_link(
        &self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> PathBuf {
        self.executor_dir(agent_id, framework_id, executor_id)
            .join("runs")
            .join(LATEST)
    }

    /// Creates the run's directory and points the executor's `latest` link at it. The
    /// containerizer creates `stdout` and `stderr` there when it starts the run.
    ///
    /// The link is replaced atomically (a new link renamed over the old one), so a reader of
    /// `latest` sees the previous run or this one, never no link.
    pub fn create_run(
        &self,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        container_id: &ContainerId,
    ) -> io::Result<Sandbox> {
        if container_id.as_str() == LATEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "container ID 'latest' would collide with the latest link",
            ));
        }
        let dir = self.run_dir(agent_id, framework_id, executor_id, container_id);
        let runs_dir = dir.parent().expect("a run dir has a parent");
        let executor_dir = runs_dir.parent().expect("a runs dir has a parent");
        // Most runs are the first of a new executor (every command task is one): making the
        // three levels top down takes three mkdirs, where `create_dir_all` first fails at the
        // bottom and climbs. Only the framework's first executor needs the levels above.
        let new_runs_dir = match mkdir(executor_dir) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(executor_dir)?;
                mkdir(runs_dir)?
            }
            Err(error) => return Err(error),
            Ok(_) => mkdir(runs_dir)?,
        };
        std::fs::create_dir(&dir)?;
        // Relative, so the work dir can be moved or mounted elsewhere. In a runs dir made just
        // now there is no link to replace.
        let latest = runs_dir.join(LATEST);
        if !new_runs_dir {
            let staged = runs_dir.join(format!(".{LATEST}.{container_id}"));
            match std::fs::remove_file(&staged) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
            std::os::unix::fs::symlink(container_id.as_str(), &staged)?;
            std::fs::rename(&staged, &latest)?;
        } else {
            std::os::unix::fs::symlink(container_id.as_str(), &latest)?;
        }
        Ok(Sandbox {
            stdout_path: dir.join(STDOUT),
            stderr_path: dir.join(STDERR),
            dir,
        })
    }
}

/// Makes a directory; returns whether it is new (`false`: it existed already).
fn mkdir(path: &Path) -> io::Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Why a user-given path cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The path leaves the sandbox (`..`, a symlink out) or is malformed: HTTP 403.
    #[error("path is outside the sandbox")]
    Forbidden,
    /// Nothing is there: HTTP 404.
    #[error("path does not exist")]
    NotFound,
}

/// Splits a user-given path into the names it goes through below the sandbox root.
///
/// A leading `/` means the sandbox root (browsers start at `/`); `.` is skipped; `..` anywhere is
/// refused before the file system is touched, so the answer does not depend on what exists.
/// `user_path` is taken as given: the HTTP layer has percent-decoded it once, and a `%2e%2e` left
/// after that is a file name, not a parent.
fn relative_components(user_path: &str) -> Result<PathBuf, ResolveError> {
    if user_path.contains('\0') {
        return Err(ResolveError::Forbidden);
    }
    let mut relative = PathBuf::new();
    for component in Path::new(user_path).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => relative.push(name),
            Component::ParentDir | Component::Prefix(_) => return Err(ResolveError::Forbidden),
        }
    }
    Ok(relative)
}

/// Resolves `user_path` inside the sandbox `root` and returns the canonical path, which contains
/// no symlink and is inside the canonical root.
///
/// Containment is checked by path components (`/sandbox-evil` is not inside `/sandbox`) after
/// every symlink has been resolved, so a symlink that points out of the sandbox is refused even
/// when it sits inside it. Symlinks that stay inside are followed.
pub fn resolve_in_sandbox(root: &Path, user_path: &str) -> Result<PathBuf, ResolveError> {
    let relative = relative_components(user_path)?;
    let root = root.canonicalize().map_err(|_| ResolveError::NotFound)?;
    let resolved = root
        .join(&relative)
        .canonicalize()
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => ResolveError::NotFound,
            // A symlink loop, a name too long, a directory we may not search: nothing to serve,
            // and no reason to tell which.
            _ => ResolveError::Forbidden,
        })?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(ResolveError::Forbidden)
    }
}

/// Opens `user_path` read-only inside the sandbox `root`, the kernel refusing any path that
/// leaves it at the moment of the open (`RESOLVE_BENEATH`: no `..` above the root, no symlink
/// pointing out, and no absolute symlink at all, even one that points inside, since the kernel
/// cannot tell).
///
/// The file is opened non-blocking: a task can leave a FIFO in its sandbox, and a blocking open
/// of a FIFO waits for a writer that may never come, holding the caller's thread. Callers check
/// the file type on the returned handle before reading; regular files and directories read as
/// usual.
pub fn open_in_sandbox(root: &Path, user_path: &str) -> Result<File, ResolveError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let relative = relative_components(user_path)?;
    let relative = if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    };
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| ResolveError::NotFound)?;
    let fd = rustix::fs::openat2(
        &root_fd,
        &relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|errno| match errno {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => ResolveError::NotFound,
        _ => ResolveError::Forbidden,
    })?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    /// Builds `<tmp>/sandbox` with a file, a subdirectory and symlinks in and out, and the
    /// sibling `<tmp>/sandbox-evil` whose name shares the sandbox's as a prefix.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("sandbox");
        let outside = tmp.path().join("sandbox-evil");
        std::fs::create_dir_all(root.join("sub")).expect("create sandbox");
        std::fs::create_dir_all(&outside).expect("create sibling");
        std::fs::write(root.join("stdout"), "hello\n").expect("write stdout");
        std::fs::write(root.join("sub/file"), "inner\n").expect("write inner file");
        std::fs::write(outside.join("secret"), "secret\n").expect("write secret");
        symlink(root.join("sub/file"), root.join("link-in")).expect("link in");
        symlink("sub", root.join("link-dir-in")).expect("relative link in");
        symlink(outside.join("secret"), root.join("link-out")).expect("link out");
        symlink("../sandbox-evil", root.join("link-sibling")).expect("relative link out");
        symlink("/etc", root.join("link-etc")).expect("absolute link out");
        symlink("loop", root.join("loop")).expect("loop");
        Fixture {
            _tmp: tmp,
            root,
            outside,
        }
    }

    fn canonical(path: &Path) -> PathBuf {
        path.canonicalize().expect("canonical path")
    }

    #[test]
    fn resolves_files_and_symlinks_that_stay_inside() {
        let f = fixture();
        let root = canonical(&f.root);
        assert_eq!(
            resolve_in_sandbox(&f.root, "stdout"),
            Ok(root.join("stdout"))
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "/stdout"),
            Ok(root.join("stdout"))
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "./sub/./file"),
            Ok(root.join("sub/file"))
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "link-in"),
            Ok(root.join("sub/file"))
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "link-dir-in/file"),
            Ok(root.join("sub/file"))
        );
        assert_eq!(resolve_in_sandbox(&f.root, ""), Ok(root.clone()));
        assert_eq!(resolve_in_sandbox(&f.root, "/"), Ok(root));
    }

    #[test]
    fn refuses_parent_components_even_when_they_would_stay_inside() {
        let f = fixture();
        for path in [
            "..",
            "../sandbox-evil/secret",
            "sub/../stdout",
            "sub/../../x",
            "/../etc",
        ] {
            assert_eq!(
                resolve_in_sandbox(&f.root, path),
                Err(ResolveError::Forbidden),
                "{path}"
            );
            assert_eq!(
                open_in_sandbox(&f.root, path).err(),
                Some(ResolveError::Forbidden),
                "{path}"
            );
        }
    }

    #[test]
    fn absolute_paths_are_taken_inside_the_sandbox() {
        let f = fixture();
        assert_eq!(
            resolve_in_sandbox(&f.root, "/etc/passwd"),
            Err(ResolveError::NotFound)
        );
        let outside = f.outside.join("secret");
        let outside = outside.to_str().expect("utf-8 temp path");
        assert_eq!(
            resolve_in_sandbox(&f.root, outside),
            Err(ResolveError::NotFound)
        );
        assert_eq!(
            open_in_sandbox(&f.root, outside).err(),
            Some(ResolveError::NotFound)
        );
    }

    #[test]
    fn percent_encoded_traversal_stays_a_file_name() {
        let f = fixture();
        for path in [
            "%2e%2e/sandbox-evil/secret",
            "..%2fsandbox-evil%2fsecret",
            "%2E%2E",
        ] {
            assert_eq!(
                resolve_in_sandbox(&f.root, path),
                Err(ResolveError::NotFound),
                "{path}"
            );
            assert_eq!(
                open_in_sandbox(&f.root, path).err(),
                Some(ResolveError::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn refuses_symlinks_that_resolve_outside() {
        let f = fixture();
        for path in [
            "link-out",
            "link-sibling/secret",
            "link-etc/passwd",
            "link-etc",
        ] {
            assert_eq!(
                resolve_in_sandbox(&f.root, path),
                Err(ResolveError::Forbidden),
                "{path}"
            );
            assert!(open_in_sandbox(&f.root, path).is_err(), "{path}");
        }
    }

    #[test]
    fn a_sibling_sharing_the_prefix_is_not_inside() {
        let f = fixture();
        // The sibling's canonical path starts with the root's as a string, not by components.
        let root = canonical(&f.root);
        let sibling = canonical(&f.outside);
        assert!(
            sibling
                .to_string_lossy()
                .starts_with(&*root.to_string_lossy())
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "link-sibling"),
            Err(ResolveError::Forbidden)
        );
    }

    #[test]
    fn tells_missing_from_forbidden() {
        let f = fixture();
        assert_eq!(
            resolve_in_sandbox(&f.root, "nope"),
            Err(ResolveError::NotFound)
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "stdout/below"),
            Err(ResolveError::NotFound)
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "loop"),
            Err(ResolveError::Forbidden)
        );
        assert_eq!(
            resolve_in_sandbox(&f.root, "a\0b"),
            Err(ResolveError::Forbidden)
        );
        assert_eq!(
            open_in_sandbox(&f.root, "nope").err(),
            Some(ResolveError::NotFound)
        );
        let missing_root = f.root.join("missing");
        assert_eq!(
            resolve_in_sandbox(&missing_root, "x"),
            Err(ResolveError::NotFound)
        );
    }

    #[test]
    fn open_in_sandbox_reads_inside_files() {
        let f = fixture();
        let read = |path: &str| {
            let mut content = String::new();
            io::Read::read_to_string(
                &mut open_in_sandbox(&f.root, path).expect("opens"),
                &mut content,
            )
            .expect("reads");
            content
        };
        assert_eq!(read("stdout"), "hello\n");
        assert_eq!(read("sub/file"), "inner\n");
        assert_eq!(read("link-dir-in/file"), "inner\n");
        // The kernel refuses absolute symlinks beneath a root, even one that points inside.
        assert_eq!(
            open_in_sandbox(&f.root, "link-in").err(),
            Some(ResolveError::Forbidden)
        );
    }

    #[test]
    fn open_in_sandbox_does_not_block_on_a_fifo_without_writer() {
        let f = fixture();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            f.root.join("fifo").as_path(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        // A blocking open would wait here forever for a writer.
        let fifo = open_in_sandbox(&f.root, "fifo").expect("opens without a writer");
        let file_type = fifo.metadata().expect("fstat").file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&file_type));
    }

    fn ids() -> (AgentId, FrameworkId, ExecutorId) {
        (
            AgentId::new("agent-1").expect("valid"),
            FrameworkId::new("fw-1").expect("valid"),
            ExecutorId::new("ex-1").expect("valid"),
        )
    }

    #[test]
    fn create_run_lays_out_the_sandbox_and_moves_latest() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let layout = SandboxLayout::new(tmp.path());
        let (agent, framework, executor) = ids();
        let first = ContainerId::new("c1").expect("valid");
        let second = ContainerId::new("c2").expect("valid");

        let sandbox = layout
            .create_run(&agent, &framework, &executor, &first)
            .expect("first run");
        assert_eq!(
            sandbox.dir,
            tmp.path()
                .join("agents/agent-1/frameworks/fw-1/executors/ex-1/runs/c1")
        );
        assert!(sandbox.dir.is_dir());
        assert_eq!(sandbox.stdout_path, sandbox.dir.join(STDOUT));
        let latest = layout.latest_link(&agent, &framework, &executor);
        assert_eq!(std::fs::read_link(&latest).expect("link"), Path::new("c1"));

        layout
            .create_run(&agent, &framework, &executor, &second)
            .expect("second run");
        assert_eq!(std::fs::read_link(&latest).expect("link"), Path::new("c2"));
        assert_eq!(
            canonical(&latest),
            canonical(
                &tmp.path()
                    .join("agents/agent-1/frameworks/fw-1/executors/ex-1/runs/c2")
            )
        );
        assert!(first_run_kept(&layout, &first));
    }

    fn first_run_kept(layout: &SandboxLayout, first: &ContainerId) -> bool {
        let (agent, framework, executor) = ids();
        layout
            .run_dir(&agent, &framework, &executor, first)
            .is_dir()
    }

    #[test]
    fn create_run_refuses_a_container_named_latest() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let layout = SandboxLayout::new(tmp.path());
        let (agent, framework, executor) = ids();
        let latest = ContainerId::new(LATEST).expect("valid ID");
        assert!(
            layout
                .create_run(&agent, &framework, &executor, &latest)
                .is_err()
        );
    }
}
