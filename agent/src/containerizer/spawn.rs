//! Starting a container's leader without copying the agent.
//!
//! `fork` copies the agent's page tables, and until the child execs every page the agent writes
//! takes a copy-on-write fault; for a short task that costs more than the task itself. `std`
//! avoids it with `posix_spawn` (a `CLONE_VM | CLONE_VFORK` child), but only when no `pre_exec`
//! hook is set, and a container needs one: its leader must enter its cgroups and drop to its
//! user between the clone and the exec. So this module does what `posix_spawn` does, with those
//! steps in the child:
//!
//! 1. everything the child needs (paths, argv, envp, user IDs) is built in the parent;
//! 2. the parent blocks every signal and clones with `CLONE_VM | CLONE_VFORK | CLONE_PIDFD`:
//!    the child runs on its own small stack in the agent's memory while the calling thread waits
//!    for it to exec or exit;
//! 3. the child resets every signal to its default action (the agent's handlers must not run
//!    in it) and unblocks them, makes its own process group, writes `0` into each
//!    `cgroup.procs` of its container (moving itself), sets up stdio and the working directory,
//!    drops to the user and execs; it only makes system calls, allocates nothing and takes no
//!    lock, since the agent's other threads keep running beside it in the same memory;
//! 4. a step that fails leaves its errno where the parent reads it once the child has exited.
//!
//! The parent gets a pidfd with the pid, so it waits for the exit with `waitid(P_PIDFD)` and
//! never races a recycled pid.

#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::process::Pid;

use super::ContainerizerError;

/// The child's stack: it makes a few dozen system calls through thin libc wrappers and nothing
/// else, so this is ample (glibc's `posix_spawn` gives its child about 32 KiB).
const CHILD_STACK_BYTES: usize = 64 * 1024;

/// The highest signal number on Linux (`NSIG - 1`).
const MAX_SIGNAL: c_int = 64;

/// The size of the kernel's signal set, which `rt_sigaction` checks.
const KERNEL_SIGSET_BYTES: usize = 8;

/// glibc's `execvp` default search path, used when the command's environment has no `PATH`.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// What the leader runs and how it starts.
pub(crate) struct SpawnSpec<'a> {
    /// A path, or a name searched in the `PATH` of `env`.
    pub program: &'a str,
    /// The whole argv, `argv[0]` included.
    pub argv: &'a [String],
    /// The whole environment.
    pub env: &'a [(String, String)],
    /// The working directory with the command's stdout and stderr, see [`Outputs::open`].
    pub outputs: Outputs,
    /// `cgroup.procs` files the child writes `0` into, before anything else of the command runs.
    pub attach_files: &'a [PathBuf],
    pub user: Option<&'a SpawnUser>,
}

/// The IDs to drop to, resolved before the clone (and sent as they are to the reaper).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpawnUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// A leader that has been started; it is our child until `waitid` reaps it.
pub(crate) struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
}

/// Which step of the child failed, for the error message.
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    Signals = 1,
    ProcessGroup,
    Cgroup,
    Stdio,
    WorkingDir,
    User,
    Exec,
}

impl Step {
    fn from_raw(raw: i32) -> Option<Self> {
        [
            Self::Signals,
            Self::ProcessGroup,
            Self::Cgroup,
            Self::Stdio,
            Self::WorkingDir,
            Self::User,
            Self::Exec,
        ]
        .into_iter()
        .find(|step| *step as i32 == raw)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Signals => "reset signal handlers",
            Self::ProcessGroup => "create a process group",
            Self::Cgroup => "enter the container's cgroup",
            Self::Stdio => "redirect stdio",
            Self::WorkingDir => "enter the working directory",
            Self::User => "switch user",
            Self::Exec => "execute the command",
        }
    }
}

/// Everything the child reads, laid out before the clone. The pointers point into the
/// `CString`s and vectors this struct owns, which do not move while the child runs (the parent
/// is suspended until the child execs or exits).
struct ChildArgs {
    program: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    working_dir: RawFd,
    attach_files: Vec<*const c_char>,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    user: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
    /// Set by a failing child: the step, then its errno.
    failed_step: AtomicI32,
    failed_errno: AtomicI32,
}

/// A leader's working directory (an `O_PATH` handle the child enters with `fchdir`) and its
/// stdout and stderr files.
pub(crate) struct Outputs {
    working_dir: OwnedFd,
    stdout: File,
    stderr: File,
}

impl Outputs {
    /// Opens the working directory, and the output files (created if missing, appended to
    /// otherwise) relative to it when they are in it, as a sandbox's are: one walk of the
    /// sandbox's long path instead of three (perf: most of what opening them cost).
    pub(crate) fn open(
        working_dir: &Path,
        stdout: &Path,
        stderr: &Path,
    ) -> Result<Outputs, ContainerizerError> {
        let dir = rustix::fs::open(
            working_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|error| {
            ContainerizerError::io("enter the working directory", working_dir, error.into())
        })?;
        let output = |path: &Path| -> Result<File, ContainerizerError> {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::CLOEXEC;
            let mode = Mode::from_raw_mode(0o666);
            let opened = match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) if parent == working_dir => {
                    rustix::fs::openat(&dir, name, flags, mode)
                }
                _ => rustix::fs::open(path, flags, mode),
            };
            opened
                .map(File::from)
                .map_err(|error| ContainerizerError::io("open", path, error.into()))
        };
        Ok(Outputs {
            stdout: output(stdout)?,
            stderr: output(stderr)?,
            working_dir: dir,
        })
    }
}

/// Opens a file for appending, created if missing (the reaper's log).
pub(crate) fn open_output(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Starts the leader; see the module docs.
pub(crate) fn spawn(spec: SpawnSpec<'_>) -> io::Result<Spawned> {
    let program = resolve_program(spec.program, spec.env)?;
    let program = cstring(program.as_os_str().as_bytes())?;
    let argv_storage: Vec<CString> = if spec.argv.is_empty() {
        vec![cstring(spec.program.as_bytes())?]
    } else {
        spec.argv
            .iter()
            .map(|arg| cstring(arg.as_bytes()))
            .collect::<io::Result<_>>()?
    };
    let env_storage: Vec<CString> = spec
        .env
        .iter()
        .map(|(name, value)| cstring(format!("{name}={value}").as_bytes()))
        .collect::<io::Result<_>>()?;
    let attach_storage: Vec<CString> = spec
        .attach_files
        .iter()
        .map(|file| cstring(file.as_os_str().as_bytes()))
        .collect::<io::Result<_>>()?;
    let stdin = File::open("/dev/null")?;
    // The child dup2s these onto 0, 1 and 2, so none of them may already be one of those (an
    // agent started with its stdio closed gets low descriptors for its files).
    let stdin = above_stdio(stdin.into())?;
    let Outputs {
        working_dir,
        stdout,
        stderr,
    } = spec.outputs;
    let stdout = above_stdio(stdout.into())?;
    let stderr = above_stdio(stderr.into())?;
    let mut args = ChildArgs {
        program,
        argv: null_terminated(&argv_storage),
        envp: null_terminated(&env_storage),
        working_dir: working_dir.as_raw_fd(),
        attach_files: attach_storage.iter().map(|file| file.as_ptr()).collect(),
        stdin: stdin.as_raw_fd(),
        stdout: stdout.as_raw_fd(),
        stderr: stderr.as_raw_fd(),
        user: spec
            .user
            .map(|user| (user.uid, user.gid, user.groups.clone())),
        failed_step: AtomicI32::new(0),
        failed_errno: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    let (pid, pidfd) = clone_child(&mut args, &mut stack)?;
    // The child has exec'd or exited: nothing of `args` is in use any more.
    let step = args.failed_step.load(Ordering::SeqCst);
    if let Some(step) = Step::from_raw(step) {
        let errno = args.failed_errno.load(Ordering::SeqCst);
        // Reap the failed child so that it does not linger as a zombie.
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&pidfd)),
            rustix::process::WaitIdOptions::EXITED,
        );
        let error = io::Error::from_raw_os_error(errno);
        return Err(io::Error::new(
            error.kind(),
            format!("cannot {}: {error}", step.describe()),
        ));
    }
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::other("clone returned pid 0"))?;
    drop(argv_storage);
    drop(env_storage);
    Ok(Spawned { pid, pidfd })
}

/// Clones the child with every signal blocked, and returns its pid and pidfd.
fn clone_child(args: &mut ChildArgs, stack: &mut [u8]) -> io::Result<(i32, OwnedFd)> {
    // The stack grows down from its end, which must be 16-byte aligned.
    let top = stack.as_mut_ptr_range().end;
    let top = top.wrapping_sub(top.addr() % 16);
    let mut pidfd: c_int = -1;
    // SAFETY: sigset_t is plain data that sigfillset initializes.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `all` is a valid sigset_t to fill.
    unsafe { libc::sigfillset(&mut all) };
    // SAFETY: both sets are valid; this changes only the calling thread's mask, restored below.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous) };
    // SAFETY: `child_main` only reads `args`, which outlives the child's use of it: with
    // CLONE_VFORK this thread is suspended until the child execs or exits, so `args` and
    // `stack` stay borrowed and unmoved for that whole time. The stack pointer is the aligned
    // end of a live buffer of CHILD_STACK_BYTES. CLONE_PIDFD writes the pidfd into `pidfd`.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast::<c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            std::ptr::from_mut(args).cast::<c_void>(),
            &mut pidfd as *mut c_int,
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: CLONE_PIDFD gave us this descriptor, which nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((pid, pidfd))
}

/// The child: see the module docs. Only system calls through libc's thin wrappers; the set*id
/// calls are raw syscalls because glibc's wrappers would signal every thread of the agent,
/// whose thread list the child shares.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent passed, alive and unmoved while we run.
    let args = unsafe { &*arg.cast::<ChildArgs>() };
    let fail = |step: Step| -> c_int {
        // SAFETY: errno's location is the calling thread's, readable at any time.
        let errno = unsafe { *libc::__errno_location() };
        args.failed_errno.store(errno, Ordering::SeqCst);
        args.failed_step.store(step as i32, Ordering::SeqCst);
        // SAFETY: ends the child at once, running nothing of the agent's.
        unsafe { libc::_exit(127) }
    };
    // SAFETY (whole block): each call is a system call on data the parent prepared; see above.
    unsafe {
        // Handlers the agent installed are its code: no signal may run one here. And a task
        // starts with every signal at its default action however the agent was started (under
        // `nohup`, by a shell that ignores SIGINT, by the Rust runtime that ignores SIGPIPE), as
        // a service manager starts its services. The raw call also reaches the signals glibc
        // keeps for itself, which its wrapper refuses; an all-zero kernel `sigaction` is
        // SIG_DFL with no flags and an empty mask, whatever the architecture's field order.
        let default = [0u64; 4];
        for signal in 1..=MAX_SIGNAL {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let reset = libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<c_void>(),
                KERNEL_SIGSET_BYTES,
            );
            if reset != 0 {
                return fail(Step::Signals);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return fail(Step::Signals);
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(Step::ProcessGroup);
        }
        // Writing `0` moves the writer itself. First, while still root, so that not one
        // instruction of the command runs outside the cgroup.
        for &file in &args.attach_files {
            let fd = libc::open(file, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return fail(Step::Cgroup);
            }
            libc::close(fd);
        }
        for (from, to) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                return fail(Step::Stdio);
            }
        }
        if libc::fchdir(args.working_dir) != 0 {
            return fail(Step::WorkingDir);
        }
        if let Some((uid, gid, groups)) = &args.user {
            // Groups before gid before uid: each step needs the privilege the next one drops.
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setgid, *gid) != 0
                || libc::syscall(libc::SYS_setuid, *uid) != 0
            {
                return fail(Step::User);
            }
        }
        libc::execve(
            args.program.as_ptr(),
            args.argv.as_ptr(),
            args.envp.as_ptr(),
        );
        fail(Step::Exec)
    }
}

/// Finds the program as `execvp` would: a name without `/` is searched in the command's `PATH`.
fn resolve_program(program: &str, env: &[(String, String)]) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the command's program is empty",
        ));
    }
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
    for dir in path.split(':') {
        // An empty entry means the current directory, as for execvp.
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(program);
        if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(&candidate).is_ok_and(|metadata| metadata.is_file())
        {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{program} not found in PATH {path}"),
    ))
}

/// Returns `fd`, or a close-on-exec copy of it numbered 3 or more.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a command argument, variable or path holds a NUL byte",
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|string| string.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
