//! Containerizers: how the agent starts, watches, measures and stops the processes of a container.
//!
//! A container is one run of an executor (or of a command task's command): a process tree that
//! starts from one leader process. Every containerizer starts the leader in its own process group,
//! so that a signal sent to the group reaches the children it forks, and lives as long as its
//! leader does: when the leader exits, whatever it left behind is killed.
//!
//! - [`posix`]: plain processes, no isolation (Mesos's `posix/cpu,posix/mem`); usage is summed
//!   from `/proc` over the process group.
//! - [`cgroups`] (Linux): one cgroup per container with cpu shares and quota, a memory limit and
//!   a pids limit, on cgroup v1 or v2. The child enters its cgroup before it execs the command.
//!
//! Both implement [`Containerizer`], which the agent actor drives. Its futures are `'static` and
//! `Send`, so an actor can spawn them; `launch` must be called from inside a tokio runtime because
//! it spawns the task that reaps the container.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use strata_protocol::mesos::{CommandInfo, TaskStatusReason};
use strata_protocol::{ContainerId, Resources};

#[cfg(target_os = "linux")]
pub mod cgroups;
mod engine;
pub mod posix;
pub(crate) mod spawn;

#[cfg(target_os = "linux")]
pub use cgroups::{CgroupVersion, CgroupsConfig, CgroupsContainerizer};
pub use posix::PosixContainerizer;

/// A boxed future, so that [`Containerizer`] stays object safe (`Arc<dyn Containerizer>`) and the
/// agent can choose the implementation from its `--isolation` flag at run time.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Starts, watches, measures and stops containers.
pub trait Containerizer: Send + Sync {
    /// Starts the container's leader process and returns once it has been spawned.
    ///
    /// Fails if `container_id` is already in use, if the files of `spec` cannot be opened, if the
    /// isolation cannot be set up, or if the command cannot be executed. Nothing is left behind on
    /// failure.
    fn launch(
        &self,
        container_id: ContainerId,
        spec: LaunchSpec,
    ) -> Result<Launched, ContainerizerError>;

    /// Resolves when the container has terminated and its resources (cgroups) are released.
    ///
    /// Like `waitpid`, the container is forgotten once its termination has been returned: every
    /// `wait` or `destroy` already pending gets the termination, later calls get
    /// [`ContainerizerError::UnknownContainer`].
    fn wait(
        &self,
        container_id: &ContainerId,
    ) -> BoxFuture<Result<Termination, ContainerizerError>>;

    /// Stops the container: SIGTERM to all of its processes, then SIGKILL once `grace_period` has
    /// passed, and resolves with its termination as [`Containerizer::wait`] does.
    fn destroy(
        &self,
        container_id: &ContainerId,
        grace_period: Duration,
    ) -> BoxFuture<Result<Termination, ContainerizerError>>;

    /// Returns what the container uses now.
    fn usage(&self, container_id: &ContainerId) -> Result<Usage, ContainerizerError>;

    /// Takes over the containers a previous agent run left, at start and before any launch.
    ///
    /// Containers of `known` whose leader still runs are watched again (their exit status is
    /// lost with the previous run, so their [`Termination::status`] is `None`). Known containers
    /// that are gone are reported as missing. Containers the isolation finds that are not known
    /// (cgroups of a crashed agent) are killed and removed.
    fn recover(&self, known: Vec<RecoverSpec>) -> BoxFuture<Result<Recovery, ContainerizerError>>;

    /// Returns the containers launched or recovered and not yet forgotten.
    fn containers(&self) -> Vec<ContainerId>;

    /// Starts every later leader under `reaper`, which keeps exit statuses across agent
    /// restarts; `state` is what it held when the agent connected. Call before
    /// [`Containerizer::recover`].
    fn use_reaper(&self, reaper: crate::reaper::Reaper, state: crate::reaper::ReaperState);

    /// Says that the end of a container is recorded for good, so the reaper may drop its exit.
    fn forget_exit(&self, container_id: &ContainerId);

    /// Removes what the containerizer set up for this agent instance (its parent cgroups), once
    /// every container is gone: an agent stopped for good leaves nothing behind. Whatever still
    /// holds a container stays, and the error says so.
    fn release_instance(&self) -> Result<(), ContainerizerError> {
        Ok(())
    }

    /// Returns the limit a running container has hit so far, with a sentence saying which:
    /// the OOM killer may kill a task's process while its executor, the container's leader,
    /// lives on to report it.
    fn limitation(&self, container_id: &ContainerId) -> Option<(TerminationReason, String)>;
}

/// What to run in a new container.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    pub command: CommandLine,
    /// The whole environment of the command: nothing is inherited from the agent, so the agent
    /// decides what tasks see (Mesos's `MESOS_*` variables, `PATH`, the task's own variables).
    pub env: Vec<(String, String)>,
    /// The sandbox; the command starts there.
    pub working_dir: PathBuf,
    /// The Unix user to run as; `None` runs as the agent's user.
    pub user: Option<String>,
    /// Where the command's stdout goes; created if missing, appended to otherwise.
    pub stdout_path: PathBuf,
    /// Where the command's stderr goes; created if missing, appended to otherwise.
    pub stderr_path: PathBuf,
    /// Ignored by [`PosixContainerizer`], which cannot enforce them.
    pub limits: Limits,
    /// Whether the container must outlive the agent and keep its exit status for the next agent
    /// run (its framework checkpoints): the reaper, when the agent has one, starts it. Others
    /// the agent clones itself, which launches faster: one process clones them all.
    pub outlive_agent: bool,
}

/// The command line of a container's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// Run directly, as `execvp(program, argv)` does.
    Exec {
        /// A path, or a name looked up in the `PATH` of [`LaunchSpec::env`].
        program: String,
        /// The whole `argv`, including `argv[0]`; empty means `[program]`.
        argv: Vec<String>,
    },
}

impl CommandLine {
    /// Returns a command run directly, `argv[0]` being the program.
    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        Self::Exec {
            program: argv.first().cloned().unwrap_or_default(),
            argv,
        }
    }

    /// Builds the command line of a Mesos `CommandInfo`: `value` is a shell command line when
    /// `shell` is true (the default), else the program, run with `arguments` as its whole `argv`.
    pub fn from_command_info(command: &CommandInfo) -> Result<Self, ContainerizerError> {
        let value = command
            .value
            .clone()
            .ok_or_else(|| ContainerizerError::InvalidCommand("command has no value".into()))?;
        if command.shell() {
            return Ok(Self::Shell(value));
        }
        Ok(Self::Exec {
            program: value,
            argv: command.arguments.clone(),
        })
    }
}

/// Resource limits of a container. `None` leaves the resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// CPU share, in cpus (`1.5` is one and a half cores).
    pub cpus: Option<f64>,
    /// Memory, in MiB.
    pub mem_mib: Option<u64>,
    /// Most processes (and threads) the container may have at once.
    pub pids_max: Option<u64>,
}

impl Limits {
    /// Takes cpus and mem from the resources of a task or executor.
    pub fn from_resources(resources: &Resources, pids_max: Option<u64>) -> Self {
        Self {
            cpus: resources.cpus(),
            // Mem is MiB in Mesos; a fraction of a MiB rounds up so the limit is never below it.
            mem_mib: resources.mem().map(|mem_mib| mem_mib.ceil() as u64),
            pids_max,
        }
    }
}

/// What [`Containerizer::launch`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    /// The leader's pid, which is also its process group ID; the agent checkpoints it so that a
    /// restarted agent can [`Containerizer::recover`] the container.
    pub pid: u32,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The leader's exit status; `None` when it is unknown (a container recovered after an agent
    /// restart is no longer the agent's child).
    pub status: Option<ExitStatus>,
    /// Why the container ended, when the containerizer knows more than the exit status says.
    pub reason: Option<TerminationReason>,
    /// A sentence for the task status message.
    pub message: String,
}

impl Termination {
    /// A leader that exited with `status`, no limit hit and no destroy asked.
    pub fn exited(status: ExitStatus) -> Self {
        Self {
            status: Some(status),
            reason: None,
            message: format!("command {status}"),
        }
    }
}

/// The exit status of a container's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// Returns whether the leader exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }

    /// Reads what `waitid(WEXITED)` reported; `None` for a stop or continue, which it does not
    /// report.
    pub(crate) fn from_waitid(status: &rustix::process::WaitIdStatus) -> Option<Self> {
        if let Some(code) = status.exit_status() {
            return Some(Self::Exited(code));
        }
        status.terminating_signal().map(Self::Signaled)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with status {code}"),
            Self::Signaled(signal) => write!(f, "terminated by signal {signal}"),
        }
    }
}

/// Why a container ended, beyond its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminationReason {
    /// The container went over its memory limit and the kernel's OOM killer killed it.
    MemoryLimit,
    /// [`Containerizer::destroy`] stopped it.
    Destroyed,
}

impl TerminationReason {
    /// Returns the reason of the TASK_FAILED/TASK_KILLED update the agent sends, if any.
    pub fn task_status_reason(self) -> Option<TaskStatusReason> {
        match self {
            Self::MemoryLimit => Some(TaskStatusReason::ReasonContainerLimitationMemory),
            // The agent destroys a container because it was told to kill it (TASK_KILLED, no
            // reason) or for a reason it knows better than the containerizer.
            Self::Destroyed => None,
        }
    }
}

/// What a container uses, as Mesos's `ResourceStatistics` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
    /// Resident anonymous and file-backed memory of the container's processes.
    pub mem_rss_bytes: u64,
    /// What the memory controller charges the container (rss plus page cache and kernel memory);
    /// `None` without a memory cgroup.
    pub mem_usage_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    /// Processes (v1 and posix) or tasks (v2 `pids.current`) in the container.
    pub pids: u64,
}

/// A container a previous agent run launched, as the agent checkpointed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverSpec {
    pub container_id: ContainerId,
    /// The leader's pid from [`Launched::pid`]; the posix containerizer cannot recover without it.
    pub pid: Option<u32>,
}

/// What [`Containerizer::recover`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Known containers whose leader still runs; they are watched again.
    pub recovered: Vec<ContainerId>,
    /// Known containers that are gone; the agent reports their tasks as failed or lost.
    pub missing: Vec<ContainerId>,
    /// Names of containers that were not known and were killed and removed.
    pub orphans_destroyed: Vec<String>,
    /// Of the missing containers, those whose leader's exit status the reaper kept, ended as
    /// that status says.
    pub exited: std::collections::BTreeMap<ContainerId, Termination>,
}

/// Why a containerizer call failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    #[error("container {0} already exists")]
    AlreadyExists(ContainerId),
    #[error("container {0} is unknown")]
    UnknownContainer(ContainerId),
    #[error("container {0} has terminated")]
    Terminated(ContainerId),
    #[error("invalid command: {0}")]
    InvalidCommand(String),
    #[error("{0} is not a valid pid")]
    InvalidPid(u32),
    #[error("user {0:?} does not exist")]
    UnknownUser(String),
    #[error("failed to look up user {user:?}: {source}")]
    UserLookup {
        user: String,
        source: std::io::Error,
    },
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to launch container {container_id}: {source}")]
    Launch {
        container_id: ContainerId,
        source: std::io::Error,
    },
    #[error("cgroups are not usable: {0}")]
    CgroupsUnavailable(String),
    #[error("failed to {op} in cgroup {path}: {message}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl ContainerizerError {
    fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands_are_the_default() {
        let command = CommandInfo::from_shell("echo hi");
        assert_eq!(
            CommandLine::from_command_info(&command).expect("valid"),
            CommandLine::Shell("echo hi".into())
        );
        let unset = CommandInfo {
            value: Some("echo hi".into()),
            ..CommandInfo::default()
        };
        assert_eq!(
            CommandLine::from_command_info(&unset).expect("valid"),
            CommandLine::Shell("echo hi".into())
        );
    }

    #[test]
    fn exec_commands_keep_the_program_apart_from_argv() {
        let command = CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "a b".into()],
            ..CommandInfo::default()
        };
        assert_eq!(
            CommandLine::from_command_info(&command).expect("valid"),
            CommandLine::Exec {
                program: "/bin/echo".into(),
                argv: vec!["echo".into(), "a b".into()],
            }
        );
        let no_value = CommandInfo {
            shell: Some(false),
            ..CommandInfo::default()
        };
        assert!(CommandLine::from_command_info(&no_value).is_err());
    }

    #[test]
    fn limits_come_from_cpus_and_mem() {
        let resources = Resources::parse("cpus:1.5;mem:100.5;disk:10", "*").expect("valid");
        assert_eq!(
            Limits::from_resources(&resources, Some(64)),
            Limits {
                cpus: Some(1.5),
                mem_mib: Some(101),
                pids_max: Some(64),
            }
        );
        assert_eq!(
            Limits::from_resources(&Resources::new(), None),
            Limits::default()
        );
    }

    #[test]
    fn only_the_memory_limitation_has_a_task_status_reason() {
        assert_eq!(
            TerminationReason::MemoryLimit.task_status_reason(),
            Some(TaskStatusReason::ReasonContainerLimitationMemory)
        );
        assert_eq!(TerminationReason::Destroyed.task_status_reason(), None);
    }
}
