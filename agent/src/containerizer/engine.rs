//! What both containerizers share: spawning the leader, reaping it, destroying and forgetting
//! containers. What differs between them (cgroups, or nothing) is an [`Isolation`].

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use strata_protocol::ContainerId;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::spawn::{self, SpawnSpec, SpawnUser, Spawned};
use super::{
    BoxFuture, CommandLine, ContainerizerError, ExitStatus, LaunchSpec, Launched, Limits,
    RecoverSpec, Recovery, Termination, TerminationReason, Usage,
};
use crate::reaper::{Reaper, ReaperState, SpawnRequest};

/// How long the processes a leader left behind may take to die after SIGKILL, and its cgroup to
/// become removable. SIGKILL cannot be caught, so only a process stuck in the kernel (an NFS
/// hang) takes this long; the container is then reported anyway and the leftovers logged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The part of a containerizer that confines and measures a container's processes.
pub(crate) trait Isolation: Send + Sync + 'static {
    /// What the isolation keeps per container (its cgroup paths).
    type Handle: Send + Sync + 'static;

    /// Sets up the isolation of a container about to be launched.
    fn prepare(
        &self,
        container_id: &ContainerId,
        limits: &Limits,
    ) -> Result<Self::Handle, ContainerizerError>;

    /// Files into which the child writes `0` (itself) between fork and exec: its `cgroup.procs`.
    fn attach_files(&self, handle: &Self::Handle) -> Vec<std::path::PathBuf>;

    /// Sends `signal` to every process of the container: its process group, and for cgroups the
    /// processes that left the group but not the cgroup.
    fn signal_all(&self, handle: &Self::Handle, leader: Option<Pid>, signal: Signal);

    /// SIGKILLs what is left of a container whose leader has exited, and returns whether
    /// anything was left to kill (zombies do not count: their parent, not us, reaps them).
    /// `leader` is `None` for an orphan found by the isolation, whose process group is unknown.
    fn kill_remaining(&self, handle: &Self::Handle, leader: Option<Pid>) -> bool;

    /// Tells whether the container hit a limit, once its processes are gone.
    fn limitation(&self, handle: &Self::Handle, status: Option<ExitStatus>) -> Option<Limitation>;

    /// Removes the isolation of a container whose processes are gone.
    fn release(&self, handle: &Self::Handle) -> Result<(), ContainerizerError>;

    /// Removes the isolation's own setup for this agent instance, once its containers are gone.
    fn release_instance(&self) -> Result<(), ContainerizerError> {
        Ok(())
    }

    /// Measures a running container.
    fn usage(&self, handle: &Self::Handle, leader: Pid) -> Result<Usage, ContainerizerError>;

    /// Finds what a previous agent run left: the known containers still running or gone, and
    /// the unknown ones.
    fn recover(
        &self,
        known: &[RecoverSpec],
    ) -> Result<IsolationRecovery<Self::Handle>, ContainerizerError>;
}

/// A limit the container hit, which ended it.
pub(crate) struct Limitation {
    pub reason: TerminationReason,
    /// Says which limit and by how much, for the task status message.
    pub message: String,
}

/// What [`Isolation::recover`] found.
pub(crate) struct IsolationRecovery<H> {
    /// Known containers whose leader runs.
    pub alive: Vec<(ContainerId, H, Pid)>,
    /// Known containers whose leader is gone, with what is left of their isolation.
    pub gone: Vec<(ContainerId, Option<H>)>,
    /// Containers that are not known, by name.
    pub orphans: Vec<(String, H)>,
}

/// The containers of one containerizer and the isolation they share.
pub(crate) struct Engine<I: Isolation> {
    pub isolation: I,
    containers: Mutex<HashMap<ContainerId, Entry<I::Handle>>>,
    /// IDs of containers being launched, not yet in `containers`.
    starting: Mutex<HashSet<ContainerId>>,
    /// Starts leaders as its children instead of ours, when the agent has one (see `reaper`).
    reaper: OnceLock<Reaper>,
    /// What the reaper held when the agent connected, for [`Self::recover`].
    reaper_state: Mutex<ReaperState>,
}

struct Entry<H> {
    leader: Pid,
    handle: Arc<H>,
    /// Set once, by the reaper, when the container is gone and released.
    termination: watch::Receiver<Option<Termination>>,
    /// Whether `destroy` was called, so the termination says so.
    destroying: Arc<AtomicBool>,
}

impl<I: Isolation> Engine<I> {
    pub fn new(isolation: I) -> Arc<Self> {
        Arc::new(Self {
            isolation,
            containers: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashSet::new()),
            reaper: OnceLock::new(),
            reaper_state: Mutex::new(ReaperState::default()),
        })
    }

    /// Starts every later leader under `reaper`; `state` is what it held when it connected.
    pub fn use_reaper(&self, reaper: Reaper, state: ReaperState) {
        *self
            .reaper_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = state;
        let _ = self.reaper.set(reaper);
    }

    /// Tells the reaper that the end of a container is recorded: it need not keep its exit.
    pub fn forget_exit(&self, container_id: &ContainerId) {
        if let Some(reaper) = self.reaper.get() {
            reaper.forget(container_id.as_str());
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<ContainerId, Entry<I::Handle>>> {
        // A panic while holding the lock leaves the map itself consistent (every update is one
        // insert or remove), so a poisoned lock is still usable.
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn starting(&self) -> MutexGuard<'_, HashSet<ContainerId>> {
        // Each update is one insert or remove, as for `containers`.
        self.starting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn container_ids(&self) -> Vec<ContainerId> {
        let mut ids: Vec<ContainerId> = self.containers().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn launch(
        self: &Arc<Self>,
        container_id: ContainerId,
        spec: LaunchSpec,
    ) -> Result<Launched, ContainerizerError> {
        let user = spec.user.as_deref().map(resolve_user).transpose()?;
        let starter = match self.reaper.get().filter(|_| spec.outlive_agent) {
            Some(reaper) => Starter::Reaper(reaper.clone()),
            None => Starter::Agent(spawn::Outputs::open(
                &spec.working_dir,
                &spec.stdout_path,
                &spec.stderr_path,
            )?),
        };
        let (program, argv) = match &spec.command {
            CommandLine::Shell(line) => (
                "/bin/sh".to_owned(),
                vec!["sh".to_owned(), "-c".to_owned(), line.clone()],
            ),
            CommandLine::Exec { program, argv } => (program.clone(), argv.clone()),
        };

        // The ID is claimed under the lock, and the lock released for the slow part (cgroups,
        // the clone, which can wait on kernel locks for milliseconds), so that the agent asking
        // about other containers meanwhile does not wait for this launch.
        {
            let containers = self.containers();
            if containers.contains_key(&container_id)
                || !self.starting().insert(container_id.clone())
            {
                return Err(ContainerizerError::AlreadyExists(container_id));
            }
        }
        let command = LeaderCommand {
            program,
            argv,
            user,
            starter,
        };
        let result = self.start(container_id.clone(), &spec, command);
        self.starting().remove(&container_id);
        result
    }

    /// The part of [`Self::launch`] after the container's ID is claimed.
    fn start(
        self: &Arc<Self>,
        container_id: ContainerId,
        spec: &LaunchSpec,
        command: LeaderCommand,
    ) -> Result<Launched, ContainerizerError> {
        let handle = self.isolation.prepare(&container_id, &spec.limits)?;
        let attach_files = self.isolation.attach_files(&handle);
        let release = |engine: &Self, handle: &I::Handle| {
            if let Err(error) = engine.isolation.release(handle) {
                warn!(%container_id, %error, "failed to release the isolation of a container that did not start");
            }
        };
        let launch_error = |source| ContainerizerError::Launch {
            container_id: container_id.clone(),
            source,
        };
        let (leader, exit): (Pid, BoxFuture<Option<ExitStatus>>) = match command.starter {
            Starter::Reaper(reaper) => {
                let request = SpawnRequest {
                    container_id: container_id.as_str().to_owned(),
                    program: command.program,
                    argv: command.argv,
                    env: spec.env.clone(),
                    working_dir: spec.working_dir.clone(),
                    stdout: spec.stdout_path.clone(),
                    stderr: spec.stderr_path.clone(),
                    attach_files,
                    user: command.user,
                };
                let pid = match reaper.spawn(request) {
                    Ok(pid) => pid,
                    Err(error) => {
                        release(self, &handle);
                        return Err(launch_error(std::io::Error::other(error.to_string())));
                    }
                };
                let leader = pid_from_raw(pid)?;
                (
                    leader,
                    Box::pin(reaper_exit(&reaper, &container_id, leader)),
                )
            }
            Starter::Agent(outputs) => {
                let spawned = spawn::spawn(SpawnSpec {
                    program: &command.program,
                    argv: &command.argv,
                    env: &spec.env,
                    outputs,
                    attach_files: &attach_files,
                    user: command.user.as_ref(),
                });
                let Spawned { pid: leader, pidfd } = match spawned {
                    Ok(spawned) => spawned,
                    Err(source) => {
                        release(self, &handle);
                        return Err(launch_error(source));
                    }
                };
                let exit = child_exit(pidfd).map_err(launch_error)?;
                (leader, Box::pin(exit))
            }
        };
        let pid = leader.as_raw_nonzero().get().unsigned_abs();
        debug!(%container_id, pid, "container launched");
        self.watch(&mut self.containers(), container_id, leader, handle, exit);
        Ok(Launched { pid })
    }

    /// Registers a container and spawns the task that reaps it when `exit` resolves.
    fn watch(
        self: &Arc<Self>,
        containers: &mut HashMap<ContainerId, Entry<I::Handle>>,
        container_id: ContainerId,
        leader: Pid,
        handle: I::Handle,
        exit: impl Future<Output = Option<ExitStatus>> + Send + 'static,
    ) {
        let handle = Arc::new(handle);
        let destroying = Arc::new(AtomicBool::new(false));
        let (termination_tx, termination_rx) = watch::channel(None);
        containers.insert(
            container_id.clone(),
            Entry {
                leader,
                handle: Arc::clone(&handle),
                termination: termination_rx,
                destroying: Arc::clone(&destroying),
            },
        );
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let status = exit.await;
            let termination = engine
                .reap(&container_id, leader, &handle, status, &destroying)
                .await;
            debug!(%container_id, ?termination.status, ?termination.reason, "container terminated");
            // The entry holds a receiver until the termination is consumed, so this cannot fail.
            let _ = termination_tx.send(Some(termination));
        });
    }

    /// Cleans up after a leader that exited and describes the termination.
    async fn reap(
        self: &Arc<Self>,
        container_id: &ContainerId,
        leader: Pid,
        handle: &Arc<I::Handle>,
        status: Option<ExitStatus>,
        destroying: &AtomicBool,
    ) -> Termination {
        // Usually the leader took everything with it and the isolation goes at the first try.
        // That try waits on kernel locks (removing cgroups), so it runs on a blocking thread,
        // not on the runtime's; only leftovers fall back to the retrying drain below.
        let first_try = {
            let engine = Arc::clone(self);
            let handle = Arc::clone(handle);
            tokio::task::spawn_blocking(move || engine.release_at_once(&handle, leader, status))
                .await
                .ok()
                .flatten()
        };
        let (limitation, released) = match first_try {
            Some(limitation) => (limitation, Ok(())),
            None => self.drain_and_release(handle, Some(leader), status).await,
        };
        let destroyed = destroying.load(Ordering::SeqCst);
        let (reason, mut message) = match (limitation, status) {
            (Some(limitation), _) => (Some(limitation.reason), limitation.message),
            (None, _) if destroyed => (
                Some(TerminationReason::Destroyed),
                "container was destroyed".to_string(),
            ),
            (None, Some(status)) => (None, Termination::exited(status).message),
            (None, None) => (
                None,
                "container exited; its exit status is unknown".to_string(),
            ),
        };
        if let Err(error) = released {
            warn!(%container_id, %error, "failed to release container isolation");
            message.push_str(&format!(" (cleanup failed: {error})"));
        }
        Termination {
            status,
            reason,
            message,
        }
    }

    /// Releases the isolation of a container whose leader exited and left no process behind,
    /// and returns the limit it hit, if any; `None` when something is left to drain.
    fn release_at_once(
        &self,
        handle: &I::Handle,
        leader: Pid,
        status: Option<ExitStatus>,
    ) -> Option<Option<Limitation>> {
        if self.isolation.kill_remaining(handle, Some(leader)) {
            return None;
        }
        let limitation = self.isolation.limitation(handle, status);
        self.isolation.release(handle).ok().map(|()| limitation)
    }

    /// Kills what the container left behind, asks the isolation whether a limit was hit (before
    /// the evidence goes), and removes the isolation, retrying while killed processes exit.
    async fn drain_and_release(
        &self,
        handle: &I::Handle,
        leader: Option<Pid>,
        status: Option<ExitStatus>,
    ) -> (Option<Limitation>, Result<(), ContainerizerError>) {
        let mut limitation = None;
        let mut limitation_checked = false;
        let mut delay = Duration::from_millis(1);
        let attempts = async {
            loop {
                if !self.isolation.kill_remaining(handle, leader) {
                    if !limitation_checked {
                        limitation = self.isolation.limitation(handle, status);
                        limitation_checked = true;
                    }
                    match self.isolation.release(handle) {
                        Ok(()) => return Ok(()),
                        // Killed processes leave their cgroup only once they have exited.
                        Err(error) => debug!(%error, "container not yet removable"),
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        };
        let released = match tokio::time::timeout(DRAIN_TIMEOUT, attempts).await {
            Ok(result) => result,
            Err(_elapsed) => {
                // One last try, for its error message.
                self.isolation.kill_remaining(handle, leader);
                self.isolation.release(handle)
            }
        };
        if !limitation_checked {
            limitation = self.isolation.limitation(handle, status);
        }
        (limitation, released)
    }

    fn forget(&self, container_id: &ContainerId) {
        let mut containers = self.containers();
        if containers
            .get(container_id)
            .is_some_and(|entry| entry.termination.borrow().is_some())
        {
            containers.remove(container_id);
        }
    }

    /// Returns a copy of the container's entry, so that no lock is held across an await.
    fn entry(&self, container_id: &ContainerId) -> Result<Entry<I::Handle>, ContainerizerError> {
        let containers = self.containers();
        let entry = containers
            .get(container_id)
            .ok_or_else(|| ContainerizerError::UnknownContainer(container_id.clone()))?;
        Ok(Entry {
            leader: entry.leader,
            handle: Arc::clone(&entry.handle),
            termination: entry.termination.clone(),
            destroying: Arc::clone(&entry.destroying),
        })
    }

    pub fn wait(
        self: &Arc<Self>,
        container_id: &ContainerId,
    ) -> BoxFuture<Result<Termination, ContainerizerError>> {
        let entry = self.entry(container_id);
        let engine = Arc::clone(self);
        let container_id = container_id.clone();
        Box::pin(async move {
            let termination = terminated(entry?.termination, &container_id).await?;
            engine.forget(&container_id);
            Ok(termination)
        })
    }

    pub fn destroy(
        self: &Arc<Self>,
        container_id: &ContainerId,
        grace_period: Duration,
    ) -> BoxFuture<Result<Termination, ContainerizerError>> {
        let entry = self.entry(container_id);
        let engine = Arc::clone(self);
        let container_id = container_id.clone();
        Box::pin(async move {
            let Entry {
                leader,
                handle,
                termination,
                destroying,
            } = entry?;
            // Signalling a container that is gone could hit a process that reused its pid.
            if termination.borrow().is_none() {
                destroying.store(true, Ordering::SeqCst);
                info!(%container_id, ?grace_period, "destroying container");
                engine
                    .isolation
                    .signal_all(&handle, Some(leader), Signal::TERM);
                let stopped = tokio::time::timeout(
                    grace_period,
                    terminated(termination.clone(), &container_id),
                )
                .await;
                if stopped.is_err() {
                    info!(%container_id, "container outlived its grace period; killing it");
                    engine
                        .isolation
                        .signal_all(&handle, Some(leader), Signal::KILL);
                }
            }
            let termination = terminated(termination, &container_id).await?;
            engine.forget(&container_id);
            Ok(termination)
        })
    }

    pub fn usage(&self, container_id: &ContainerId) -> Result<Usage, ContainerizerError> {
        let entry = self.entry(container_id)?;
        if entry.termination.borrow().is_some() {
            return Err(ContainerizerError::Terminated(container_id.clone()));
        }
        self.isolation.usage(&entry.handle, entry.leader)
    }

    /// Returns the limit a running container has hit so far (an OOM kill of one of its
    /// processes), if any.
    pub fn limitation(&self, container_id: &ContainerId) -> Option<(TerminationReason, String)> {
        let entry = self.entry(container_id).ok()?;
        self.isolation
            .limitation(&entry.handle, None)
            .map(|limitation| (limitation.reason, limitation.message))
    }

    pub fn recover(
        self: &Arc<Self>,
        known: Vec<RecoverSpec>,
    ) -> BoxFuture<Result<Recovery, ContainerizerError>> {
        let engine = Arc::clone(self);
        Box::pin(async move {
            let found = engine.isolation.recover(&known)?;
            let reaper_state = std::mem::take(
                &mut *engine
                    .reaper_state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            let mut recovery = Recovery::default();
            for (container_id, handle, leader) in found.alive {
                // Recovering twice must not watch a container twice.
                if engine.containers().contains_key(&container_id) {
                    recovery.recovered.push(container_id);
                    continue;
                }
                let reaper = engine.reaper.get().filter(|_| {
                    reaper_state.running.get(container_id.as_str())
                        == Some(&leader.as_raw_nonzero().get().unsigned_abs())
                });
                // The reaper's child: it reports the exit status. Otherwise (the agent's child
                // before, or the reaper is gone) only that it ended can be known.
                let exit: std::io::Result<BoxFuture<Option<ExitStatus>>> = match reaper {
                    Some(reaper) => Ok(Box::pin(reaper_exit(reaper, &container_id, leader))),
                    None => pidfd_exit(leader).map(|exit| Box::pin(exit) as BoxFuture<_>),
                };
                match exit {
                    Ok(exit) => {
                        info!(%container_id, pid = leader.as_raw_nonzero().get(), "container recovered");
                        let mut containers = engine.containers();
                        engine.watch(&mut containers, container_id.clone(), leader, handle, exit);
                        recovery.recovered.push(container_id);
                    }
                    Err(error) => {
                        debug!(%container_id, %error, "recovered container exited meanwhile");
                        if let (_, Err(error)) =
                            engine.drain_and_release(&handle, Some(leader), None).await
                        {
                            warn!(%container_id, %error, "failed to clean up a container that exited");
                        }
                        recovery.missing.push(container_id);
                    }
                }
            }
            for (container_id, handle) in found.gone {
                if let Some(handle) = handle
                    && let Err(error) = engine.drain_and_release_orphan(&handle).await
                {
                    warn!(%container_id, %error, "failed to clean up a container that exited");
                }
                match reaper_state.exited.get(container_id.as_str()) {
                    Some(status) => {
                        info!(%container_id, %status, "container ended while the agent was down");
                        recovery
                            .exited
                            .insert(container_id.clone(), Termination::exited(*status));
                    }
                    None => info!(%container_id, "container did not survive the agent restart"),
                }
                recovery.missing.push(container_id);
            }
            for (name, handle) in found.orphans {
                match engine.drain_and_release_orphan(&handle).await {
                    Ok(()) => info!(container = %name, "destroyed orphan container"),
                    Err(error) => {
                        warn!(container = %name, %error, "failed to destroy orphan container")
                    }
                }
                recovery.orphans_destroyed.push(name);
            }
            Ok(recovery)
        })
    }

    /// Like [`Self::drain_and_release`], for a container whose leader is unknown: the isolation
    /// alone finds its processes.
    async fn drain_and_release_orphan(&self, handle: &I::Handle) -> Result<(), ContainerizerError> {
        self.drain_and_release(handle, None, None).await.1
    }
}

/// Waits for the termination a reaper publishes.
async fn terminated(
    mut termination: watch::Receiver<Option<Termination>>,
    container_id: &ContainerId,
) -> Result<Termination, ContainerizerError> {
    match termination.wait_for(Option::is_some).await {
        Ok(termination) => Ok(termination.clone().expect("waited for Some")),
        // The reaper was dropped without publishing: the runtime is shutting down.
        Err(_closed) => Err(ContainerizerError::UnknownContainer(container_id.clone())),
    }
}

/// Returns a future that resolves with the exit status of our child behind `pidfd`, reaping it.
fn child_exit(
    pidfd: OwnedFd,
) -> std::io::Result<impl Future<Output = Option<ExitStatus>> + Send + 'static> {
    let pidfd = watch_pidfd(pidfd)?;
    Ok(async move {
        // A pidfd becomes readable when its process exits.
        let _ = pidfd.readable().await;
        let status = rustix::process::waitid(
            rustix::process::WaitId::PidFd(pidfd.get_ref().as_fd()),
            rustix::process::WaitIdOptions::EXITED,
        );
        match status {
            Ok(Some(status)) => ExitStatus::from_waitid(&status),
            Ok(None) => None,
            Err(error) => {
                warn!(%error, "cannot read a container's exit status");
                None
            }
        }
    })
}

/// Returns a future that resolves when `pid`, which need not be our child, exits.
fn pidfd_exit(
    pid: Pid,
) -> std::io::Result<impl Future<Output = Option<ExitStatus>> + Send + 'static> {
    let pidfd = watch_pidfd(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)?;
    Ok(async move {
        // A pidfd becomes readable when its process exits; an error means the same for us.
        let _ = pidfd.readable().await;
        None
    })
}

/// Resolves with the exit status the reaper reports for a leader it started; if the reaper is
/// lost first, watches the leader as a process that is not ours (no exit status).
fn reaper_exit(
    reaper: &Reaper,
    container_id: &ContainerId,
    leader: Pid,
) -> impl Future<Output = Option<ExitStatus>> + Send + 'static {
    let reported = reaper.exit(container_id.as_str());
    async move {
        if let Ok(Some(status)) = reported.await {
            return Some(status);
        }
        match pidfd_exit(leader) {
            Ok(exit) => exit.await,
            // Gone already.
            Err(_) => None,
        }
    }
}

/// Registers a pidfd with the runtime's reactor, which then reports its process's exit.
#[allow(unsafe_code)]
fn watch_pidfd(pidfd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `register` needs the descriptor to stay open and the same while registered; an
    // `OwnedFd` owned by the `AsyncFd` is closed only when the `AsyncFd` drops, and its
    // `as_raw_fd` never changes.
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)
}

pub(crate) fn pid_from_raw(pid: u32) -> Result<Pid, ContainerizerError> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(ContainerizerError::InvalidPid(pid))
}

/// Sends `signal` to the process group led by `leader`; a group that no longer exists is fine.
pub(crate) fn signal_group(leader: Pid, signal: Signal) -> bool {
    // `kill(-1)` signals every process we may signal; a leader is never pid 1, but the cost of a
    // mistake is the whole machine.
    if leader.as_raw_nonzero().get() <= 1 {
        return false;
    }
    rustix::process::kill_process_group(leader, signal).is_ok()
}

/// What [`Engine::launch`] resolves and opens for a leader before it claims the container's ID.
struct LeaderCommand {
    program: String,
    argv: Vec<String>,
    user: Option<SpawnUser>,
    starter: Starter,
}

/// Who clones the leader.
enum Starter {
    /// The agent, with the command's working directory, stdout and stderr opened here.
    Agent(spawn::Outputs),
    /// The reaper, for a container that is to outlive the agent; it opens the outputs itself.
    Reaper(Reaper),
}

/// Looks up the user a container runs as before the clone, so that the child only makes system
/// calls.
fn resolve_user(name: &str) -> Result<SpawnUser, ContainerizerError> {
    let lookup_error = |source: nix::Error| ContainerizerError::UserLookup {
        user: name.to_string(),
        source: std::io::Error::from_raw_os_error(source as i32),
    };
    let user = nix::unistd::User::from_name(name)
        .map_err(lookup_error)?
        .ok_or_else(|| ContainerizerError::UnknownUser(name.to_string()))?;
    let c_name = CString::new(name).map_err(|_| ContainerizerError::UnknownUser(name.into()))?;
    let groups = nix::unistd::getgrouplist(&c_name, user.gid).map_err(lookup_error)?;
    Ok(SpawnUser {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.into_iter().map(|gid| gid.as_raw()).collect(),
    })
}

/// Implements `Containerizer` for a struct whose `engine` field is an `Arc<Engine<_>>`: the
/// containerizers differ only in their isolation, and the engine does the rest.
macro_rules! containerizer_over_engine {
    ($containerizer:ty) => {
        impl $crate::containerizer::Containerizer for $containerizer {
            fn launch(
                &self,
                container_id: strata_protocol::ContainerId,
                spec: $crate::containerizer::LaunchSpec,
            ) -> Result<$crate::containerizer::Launched, $crate::containerizer::ContainerizerError>
            {
                self.engine.launch(container_id, spec)
            }

            fn wait(
                &self,
                container_id: &strata_protocol::ContainerId,
            ) -> $crate::containerizer::BoxFuture<
                Result<
                    $crate::containerizer::Termination,
                    $crate::containerizer::ContainerizerError,
                >,
            > {
                self.engine.wait(container_id)
            }

            fn destroy(
                &self,
                container_id: &strata_protocol::ContainerId,
                grace_period: std::time::Duration,
            ) -> $crate::containerizer::BoxFuture<
                Result<
                    $crate::containerizer::Termination,
                    $crate::containerizer::ContainerizerError,
                >,
            > {
                self.engine.destroy(container_id, grace_period)
            }

            fn usage(
                &self,
                container_id: &strata_protocol::ContainerId,
            ) -> Result<$crate::containerizer::Usage, $crate::containerizer::ContainerizerError>
            {
                self.engine.usage(container_id)
            }

            fn recover(
                &self,
                known: Vec<$crate::containerizer::RecoverSpec>,
            ) -> $crate::containerizer::BoxFuture<
                Result<$crate::containerizer::Recovery, $crate::containerizer::ContainerizerError>,
            > {
                self.engine.recover(known)
            }

            fn containers(&self) -> Vec<strata_protocol::ContainerId> {
                self.engine.container_ids()
            }

            fn use_reaper(
                &self,
                reaper: $crate::reaper::Reaper,
                state: $crate::reaper::ReaperState,
            ) {
                self.engine.use_reaper(reaper, state)
            }

            fn forget_exit(&self, container_id: &strata_protocol::ContainerId) {
                self.engine.forget_exit(container_id)
            }

            fn limitation(
                &self,
                container_id: &strata_protocol::ContainerId,
            ) -> Option<($crate::containerizer::TerminationReason, String)> {
                self.engine.limitation(container_id)
            }

            fn release_instance(&self) -> Result<(), $crate::containerizer::ContainerizerError> {
                self.engine.isolation.release_instance()
            }
        }
    };
}
pub(crate) use containerizer_over_engine;
