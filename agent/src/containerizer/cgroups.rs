//! The cgroups containerizer: each container in its own cgroup, with cpu shares and quota, a
//! memory limit and a pids limit, on cgroup v1 or v2.
//!
//! # Layout
//!
//! A container's cgroup is `<base>/<root>/<agent_instance>/<container_id>`, where `<base>` is the
//! cgroup the agent itself runs in (so a delegated subtree, or the cgroup of the session that
//! started the agent, keeps accounting for its tasks) unless `root` is absolute, in which case
//! it starts from the hierarchy's root, as Mesos's `--cgroups_root` does. On v1 that path exists
//! in each of the `cpu`, `cpuacct` and `memory` hierarchies, and in `pids` for a container with a
//! pids limit (co-mounted ones share one directory); on v2 it is one directory with those
//! controllers enabled down to it.
//!
//! # Entering the cgroup
//!
//! The child writes `0` into each `cgroup.procs` of its container between clone and exec (see
//! `spawn`), so the command is confined from its first instruction and no process of the
//! container can fork outside.
//!
//! # Reuse
//!
//! Making and removing a cgroup is most of what cgroups add to a launch: on v1 each of the three
//! directories is created with all its control files, and the kernel tears each down on a
//! worker after `rmdir`. So on v1 a released container's cgroup, if nothing about it could
//! mislead its next user, is renamed to an idle name (`.idle-<n>`, which no container ID can
//! take) and kept, up to [`CgroupsConfig::idle_cgroups`]; the next launch renames it to its
//! container ID, resets its counters and writes all of its limits, set or not. A cgroup is
//! kept only if it is empty, the OOM killer never fired in it (its `oom_kill` count cannot be
//! reset) and it holds little charged memory (what a task leaves behind, mostly kernel objects
//! it made, stays charged to the cgroup; see [`REUSE_MAX_CHARGED`]). v2 cannot rename cgroups,
//! so there every container gets a new one. Idle cgroups are removed with the instance, and
//! a restarted agent removes those a previous run left.
//!
//! # Memory limit
//!
//! The kernel's OOM killer enforces the limit inside the cgroup. After the leader exits, the
//! `oom_kill` count (`memory.oom_control` on v1, `memory.events` on v2) says whether it fired;
//! the termination then carries [`TerminationReason::MemoryLimit`]. Swap is counted against the
//! limit where the kernel accounts for it (`memory.memsw.*`, `memory.swap.max`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cgroups_rs::cpu::CpuController;
use cgroups_rs::memory::MemController;
use cgroups_rs::pid::PidController;
use cgroups_rs::{Controllers, MaxValue};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal};
use strata_protocol::ContainerId;
use tracing::{debug, info};

use super::engine::{Engine, Isolation, IsolationRecovery, Limitation, pid_from_raw, signal_group};
use super::posix::process_stat;
use super::{ContainerizerError, ExitStatus, Limits, RecoverSpec, TerminationReason, Usage};

/// Shares per cpu, as Mesos's `CPU_SHARES_PER_CPU` (the kernel's default weight of one cgroup).
pub const CPU_SHARES_PER_CPU: u64 = 1024;
/// The fewest shares the kernel accepts, as Mesos's `MIN_CPU_SHARES`.
pub const MIN_CPU_SHARES: u64 = 2;
/// The CFS period, as Mesos's `CPU_CFS_PERIOD`.
pub const CPU_CFS_PERIOD: Duration = Duration::from_millis(100);
/// The smallest quota, as Mesos's `MIN_CPU_CFS_QUOTA`: below it a task barely runs at all.
pub const MIN_CPU_CFS_QUOTA: Duration = Duration::from_millis(1);

const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// How idle cgroups are named; container IDs are hex UUIDs, so none starts with a dot.
const IDLE_PREFIX: &str = ".idle-";

/// The most memory a released cgroup may still have charged to be kept for reuse. A short task
/// leaves about 50-200 KiB (dentries and inodes it looked up, page cache it read first), which
/// later tasks in the cgroup mostly share rather than add to; what stays is counted in the next
/// container's `mem_usage_bytes`, so the bound keeps that error small.
pub const REUSE_MAX_CHARGED: u64 = 1024 * 1024;

/// Which cgroup interface the machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller (also "hybrid" machines, whose v2 mount has no controllers).
    V1,
    /// The unified hierarchy mounted at `/sys/fs/cgroup`.
    V2,
}

/// How the cgroups containerizer lays out and limits its cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupsConfig {
    /// Where the agent's cgroups go: relative to the cgroup the agent runs in, or, when absolute,
    /// to the hierarchy's root (Mesos's `--cgroups_root`).
    pub root: PathBuf,
    /// Separates the containers of agents sharing a machine (and of tests running at once): an
    /// agent only recovers and cleans the cgroups under its own instance.
    pub agent_instance: String,
    /// Caps cpu time with a CFS quota, not only shares (Mesos's `--cgroups_enable_cfs`).
    pub cfs_quota: bool,
    /// How many released cgroups are kept for reuse (v1 only; 0 removes every one at once).
    pub idle_cgroups: usize,
}

impl Default for CgroupsConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("strata"),
            agent_instance: "agent".to_string(),
            cfs_quota: true,
            idle_cgroups: 64,
        }
    }
}

/// Runs each container in its own cgroup.
#[derive(Clone)]
pub struct CgroupsContainerizer {
    engine: Arc<Engine<CgroupIsolation>>,
}

impl CgroupsContainerizer {
    /// Detects the cgroup version and creates the agent instance's cgroup in each hierarchy.
    ///
    /// Fails with [`ContainerizerError::CgroupsUnavailable`], saying why, where a needed
    /// controller is missing or the hierarchy is not writable (not root, read-only mount).
    pub fn new(config: CgroupsConfig) -> Result<Self, ContainerizerError> {
        let isolation = CgroupIsolation::new(&config)?;
        info!(
            version = ?isolation.version,
            instance = %isolation.instance.memory.display(),
            cfs_quota = isolation.cfs_quota,
            "cgroups isolation ready"
        );
        Ok(Self {
            engine: Engine::new(isolation),
        })
    }

    pub fn version(&self) -> CgroupVersion {
        self.engine.isolation.version
    }

    /// Returns the cgroup directories of a container, one per hierarchy (one on v2).
    pub fn cgroup_paths(&self, container_id: &ContainerId) -> Vec<PathBuf> {
        self.engine
            .isolation
            .container_dirs(container_id.as_str())
            .unique
    }

    /// Returns the agent instance's cgroup directories, under which every container's cgroup is.
    pub fn instance_paths(&self) -> Vec<PathBuf> {
        self.engine.isolation.instance.unique.clone()
    }
}

super::engine::containerizer_over_engine!(CgroupsContainerizer);

/// One directory per controller; on v2, and for co-mounted v1 controllers, some are the same.
#[derive(Debug, Clone)]
pub(crate) struct CgroupDirs {
    cpu: PathBuf,
    cpuacct: PathBuf,
    memory: PathBuf,
    pids: PathBuf,
    /// The distinct directories among the above, each created, attached to and removed once.
    unique: Vec<PathBuf>,
    /// Whether the container has a cgroup of its own in the pids hierarchy. On v1 it gets one
    /// only with a pids limit: one hierarchy less to create, enter and remove per launch.
    has_pids: bool,
    /// The limits this agent run wrote into these cgroups, if it made or reused them.
    applied: Option<Limits>,
    /// Control files of these cgroups opened so far, shared by every handle on them.
    files: Arc<OpenFiles>,
}

/// Which controller's directory of a [`CgroupDirs`] a control file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hier {
    Cpu,
    Cpuacct,
    Memory,
    Pids,
}

/// A cgroup's control files, opened once and kept open for as long as the cgroup lives (but
/// not its process lists, see [`CgroupIsolation::read_list`]).
///
/// An open file stays bound to its cgroup through renames, and `pread`/`pwrite` at offset 0
/// read or set it anew each time, so a reused cgroup's counters and events are reset and read
/// without any path lookup or `open`: on v1 that was about ten opens per short task, most of
/// what the agent's side of cgroups cost beyond the renames (perf). The files close when the
/// last handle on the cgroup goes, after it is removed.
#[derive(Debug, Default)]
struct OpenFiles(Mutex<Vec<(FileKey, Arc<fs::File>)>>);

/// A control file by its directory, its name and whether it is open for writing.
type FileKey = (Hier, &'static str, bool);

impl CgroupDirs {
    fn new(cpu: PathBuf, cpuacct: PathBuf, memory: PathBuf, pids: PathBuf) -> Self {
        let mut unique = Vec::new();
        for dir in [&memory, &cpu, &cpuacct, &pids] {
            if !unique.contains(dir) {
                unique.push(dir.clone());
            }
        }
        Self {
            cpu,
            cpuacct,
            memory,
            pids,
            unique,
            has_pids: true,
            applied: None,
            files: Arc::default(),
        }
    }

    fn dir(&self, hier: Hier) -> &Path {
        match hier {
            Hier::Cpu => &self.cpu,
            Hier::Cpuacct => &self.cpuacct,
            Hier::Memory => &self.memory,
            Hier::Pids => &self.pids,
        }
    }

    /// The same directories without the pids one, where it is a hierarchy of its own.
    fn without_pids(mut self) -> Self {
        if ![&self.cpu, &self.cpuacct, &self.memory].contains(&&self.pids) {
            self.unique.retain(|dir| *dir != self.pids);
            self.has_pids = false;
        }
        self
    }

    fn join(&self, name: &str) -> Self {
        Self::new(
            self.cpu.join(name),
            self.cpuacct.join(name),
            self.memory.join(name),
            self.pids.join(name),
        )
    }
}

pub(crate) struct CgroupIsolation {
    version: CgroupVersion,
    cfs_quota: bool,
    /// The agent instance's cgroups, parents of every container's.
    instance: CgroupDirs,
    /// Handles on `instance`'s directories, through which containers' cgroups are reached.
    instance_fds: InstanceFds,
    /// Whether the kernel accounts swap in the memory controller.
    swap_accounting: bool,
    /// Released cgroups kept for reuse (see the module docs); always empty on v2.
    idle: Mutex<IdleCgroups>,
}

/// Released cgroups waiting under idle names for a container to take them.
struct IdleCgroups {
    capacity: usize,
    /// The idle cgroups' directories, each with its shape (`has_pids`) and the limits last
    /// written into it (`applied`; `None`: unknown, as for a recovered container's).
    cgroups: Vec<CgroupDirs>,
    /// Numbers idle names, so that one agent run never gives a name twice.
    next: u64,
}

impl CgroupIsolation {
    fn new(config: &CgroupsConfig) -> Result<Self, ContainerizerError> {
        validate_relative_component("agent instance", &config.agent_instance)?;
        let own = own_cgroups()?;
        let base = |mount: PathBuf, own_path: Option<&String>| -> PathBuf {
            if config.root.is_absolute() {
                return mount;
            }
            match own_path {
                Some(own_path) => mount.join(own_path.trim_start_matches('/')),
                None => mount,
            }
        };
        let relative_root = config
            .root
            .strip_prefix("/")
            .unwrap_or(&config.root)
            .join(&config.agent_instance);
        let version = if cgroups_rs::hierarchies::is_cgroup2_unified_mode() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        };
        let instance = match version {
            CgroupVersion::V1 => {
                let v1 = cgroups_rs::hierarchies::V1::new();
                let mut missing = Vec::new();
                let mut dir = |controller: Controllers, name: &str| {
                    let Some(mount) = v1.get_mount_point(controller) else {
                        missing.push(name.to_string());
                        return PathBuf::new();
                    };
                    base(mount, own.get(name)).join(&relative_root)
                };
                let dirs = CgroupDirs::new(
                    dir(Controllers::Cpu, "cpu"),
                    dir(Controllers::CpuAcct, "cpuacct"),
                    dir(Controllers::Mem, "memory"),
                    dir(Controllers::Pids, "pids"),
                );
                if !missing.is_empty() {
                    return Err(ContainerizerError::CgroupsUnavailable(format!(
                        "cgroup v1 controllers {} are not mounted under {CGROUP_MOUNT}; \
                         run the agent with --isolation=posix to go without cgroups",
                        missing.join(", ")
                    )));
                }
                for dir in &dirs.unique {
                    create_dir_all(dir)?;
                }
                dirs
            }
            CgroupVersion::V2 => {
                let base = base(PathBuf::from(CGROUP_MOUNT), own.get(""));
                let dir = base.join(&relative_root);
                enable_v2_controllers(&base, &relative_root)?;
                CgroupDirs::new(dir.clone(), dir.clone(), dir.clone(), dir)
            }
        };
        let swap_accounting = match version {
            CgroupVersion::V1 => instance.memory.join("memory.memsw.limit_in_bytes").exists(),
            CgroupVersion::V2 => instance.memory.join("memory.swap.max").exists(),
        };
        let instance_fds = InstanceFds::open(&instance.unique)?;
        Ok(Self {
            version,
            cfs_quota: config.cfs_quota,
            instance_fds,
            instance,
            swap_accounting,
            idle: Mutex::new(IdleCgroups {
                capacity: if version == CgroupVersion::V1 {
                    config.idle_cgroups
                } else {
                    0
                },
                cgroups: Vec::new(),
                next: 0,
            }),
        })
    }

    fn v2(&self) -> bool {
        self.version == CgroupVersion::V2
    }

    fn container_dirs(&self, name: &str) -> CgroupDirs {
        self.instance.join(name)
    }

    /// A container's directories as a previous run made them: with a pids cgroup only if it
    /// had a pids limit.
    fn existing_container_dirs(&self, name: &str) -> CgroupDirs {
        let dirs = self.container_dirs(name);
        if dirs.pids.exists() {
            dirs
        } else {
            dirs.without_pids()
        }
    }

    /// Writes a container's limits. A `fresh` cgroup has the kernel's defaults, so only the
    /// limits that are set are written; a reused one gets every limit, back to the default
    /// where the container sets none.
    fn apply_limits(
        &self,
        dirs: &CgroupDirs,
        limits: &Limits,
        fresh: bool,
    ) -> Result<(), ContainerizerError> {
        let v2 = self.v2();
        if limits.cpus.is_some() || !fresh {
            let cpu = CpuController::new(dirs.cpu.clone(), v2);
            let shares = limits.cpus.map_or(CPU_SHARES_PER_CPU, cpu_shares);
            let weight = if v2 { cpu_weight(shares) } else { shares };
            cpu.set_shares(weight)
                .map_err(|error| cgroup_error("set cpu shares", &dirs.cpu, error))?;
            let quota_us = match limits.cpus {
                Some(cpus) if self.cfs_quota => Some(cfs_quota(cpus).as_micros() as i64),
                _ => None,
            };
            if quota_us.is_some() || !fresh {
                let period_us = CPU_CFS_PERIOD.as_micros() as u64;
                // A new v1 cgroup already has the kernel's default 100 ms period, so only the
                // quota is written there (one write less per launch); v2 sets both in one file.
                let period_us = v2.then_some(period_us);
                // -1 is v1's "no quota".
                cpu.set_cfs_quota_and_period(Some(quota_us.unwrap_or(-1)), period_us)
                    .map_err(|error| cgroup_error("set cpu quota", &dirs.cpu, error))?;
            }
        }
        if limits.mem_mib.is_some() || !fresh {
            let memory = MemController::new(dirs.memory.clone(), v2);
            // -1 is "no limit".
            let limit_bytes = limits.mem_mib.map_or(-1, |mem_mib| {
                i64::try_from(mem_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
            });
            if self.swap_accounting && !fresh && !v2 {
                // v1 refuses a memory limit above the memory+swap one, which a reused cgroup
                // has from its last container.
                memory
                    .set_memswap_limit(-1)
                    .map_err(|error| cgroup_error("set swap limit", &dirs.memory, error))?;
            }
            memory
                .set_limit(limit_bytes)
                .map_err(|error| cgroup_error("set memory limit", &dirs.memory, error))?;
            if self.swap_accounting {
                // v1 limits memory plus swap, so the same figure allows no swap; v2 limits swap
                // alone.
                let swap_limit = if v2 { 0 } else { limit_bytes };
                memory
                    .set_memswap_limit(swap_limit)
                    .map_err(|error| cgroup_error("set swap limit", &dirs.memory, error))?;
            } else if !v2 && fresh {
                // Without swap accounting, a low swappiness is the best that remains to keep the
                // task's memory in RAM and so within the limit; failing it is not fatal.
                if let Err(error) = memory.set_swappiness(0) {
                    debug!(%error, "cannot lower swappiness");
                }
            }
        }
        if let Some(pids_max) = limits.pids_max {
            let pids = PidController::new(dirs.pids.clone(), v2);
            let pids_max = i64::try_from(pids_max).unwrap_or(i64::MAX);
            pids.set_pid_max(MaxValue::Value(pids_max))
                .map_err(|error| cgroup_error("set pids limit", &dirs.pids, error))?;
        }
        Ok(())
    }

    /// The directories `name` has under the instance, with or without a pids cgroup as `dirs`.
    fn named_like(&self, name: &str, dirs: &CgroupDirs) -> CgroupDirs {
        let named = self.instance.join(name);
        if dirs.has_pids {
            named
        } else {
            named.without_pids()
        }
    }

    fn idle(&self) -> MutexGuard<'_, IdleCgroups> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives `dirs` (a container's, not yet made) an idle cgroup of the same shape, reset and
    /// limited; `false` if there was none or it could not be reused, which is then gone.
    fn reuse(&self, dirs: &mut CgroupDirs, limits: &Limits) -> bool {
        let idle_dirs = {
            let mut idle = self.idle();
            // One with the same limits saves writing them all again.
            let same_shape = |idle: &CgroupDirs| idle.has_pids == dirs.has_pids;
            let Some(at) = idle
                .cgroups
                .iter()
                .rposition(|idle| same_shape(idle) && idle.applied.as_ref() == Some(limits))
                .or_else(|| idle.cgroups.iter().rposition(same_shape))
            else {
                return false;
            };
            idle.cgroups.swap_remove(at)
        };
        // Its open control files go with it.
        dirs.files = Arc::clone(&idle_dirs.files);
        let result = self
            .rename_all(&idle_dirs, dirs)
            .and_then(|()| self.reset_counters(dirs))
            .and_then(|()| {
                // Only root may write cgroup files, and no cgroup confines a root task anyway.
                if idle_dirs.applied.as_ref() == Some(limits) {
                    Ok(())
                } else {
                    self.apply_limits(dirs, limits, false)
                }
            });
        match result {
            Ok(()) => {
                dirs.applied = Some(*limits);
                true
            }
            Err(error) => {
                debug!(%error, "cannot reuse an idle cgroup; making a new one");
                let _ = self.remove(&idle_dirs);
                let _ = self.remove(dirs);
                false
            }
        }
    }

    /// Zeroes what a container's usage and limitation reports read that can be zeroed.
    fn reset_counters(&self, dirs: &CgroupDirs) -> Result<(), ContainerizerError> {
        // The peak goes into an OOM message; the fail count says, on kernels that do not count
        // OOM kills, whether a SIGKILL was the OOM killer's.
        let files = [
            (Hier::Cpuacct, "cpuacct.usage"),
            (Hier::Memory, "memory.max_usage_in_bytes"),
            (Hier::Memory, "memory.failcnt"),
        ];
        for (hier, name) in files {
            self.write_file(dirs, hier, name, "0").map_err(|error| {
                ContainerizerError::io("reset", dirs.dir(hier).join(name), error)
            })?;
        }
        Ok(())
    }

    /// Renames a released container's cgroup to an idle name if it may be reused; `false` if
    /// it is to be removed.
    fn keep_idle(&self, dirs: &CgroupDirs) -> bool {
        let name = {
            let mut idle = self.idle();
            if idle.cgroups.len() >= idle.capacity {
                return false;
            }
            idle.next += 1;
            format!("{IDLE_PREFIX}{}", idle.next)
        };
        let oom = self.read_keyed(dirs, Hier::Memory, "memory.oom_control");
        let reusable = self.procs(dirs).is_empty()
            && oom.get("oom_kill") == Some(&0)
            && oom.get("under_oom") == Some(&0)
            && self
                .read_u64(dirs, Hier::Memory, "memory.usage_in_bytes")
                .is_some_and(|bytes| bytes <= REUSE_MAX_CHARGED);
        if !reusable {
            return false;
        }
        let mut idle_dirs = self.named_like(&name, dirs);
        idle_dirs.applied = dirs.applied;
        idle_dirs.files = Arc::clone(&dirs.files);
        if let Err(error) = self.rename_all(dirs, &idle_dirs) {
            debug!(%error, "cannot keep a released cgroup; removing it");
            let _ = self.remove(&idle_dirs);
            return false;
        }
        let mut idle = self.idle();
        if idle.cgroups.len() < idle.capacity {
            idle.cgroups.push(idle_dirs);
            return true;
        }
        drop(idle);
        // Others filled the pool meanwhile.
        let _ = self.remove(&idle_dirs);
        true
    }

    /// Returns the processes in the container's cgroup.
    fn procs(&self, dirs: &CgroupDirs) -> Vec<Pid> {
        let Ok(procs) = self.read_list(dirs, "cgroup.procs") else {
            return Vec::new();
        };
        procs
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok())
            .filter_map(Pid::from_raw)
            .collect()
    }

    fn remove(&self, dirs: &CgroupDirs) -> Result<(), ContainerizerError> {
        let mut first_error = None;
        for dir in &dirs.unique {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    first_error.get_or_insert(ContainerizerError::io("remove cgroup", dir, error));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Isolation for CgroupIsolation {
    type Handle = CgroupDirs;

    fn prepare(
        &self,
        container_id: &ContainerId,
        limits: &Limits,
    ) -> Result<CgroupDirs, ContainerizerError> {
        let dirs = self.container_dirs(container_id.as_str());
        let dirs = if limits.pids_max.is_some() {
            dirs
        } else {
            dirs.without_pids()
        };
        let mut dirs = dirs;
        if self.reuse(&mut dirs, limits) {
            return Ok(dirs);
        }
        let mut created = Vec::new();
        let result = dirs
            .unique
            .iter()
            .try_for_each(|dir| {
                fs::create_dir(dir)
                    .map_err(|error| ContainerizerError::io("create cgroup", dir, error))?;
                created.push(dir.clone());
                Ok(())
            })
            .and_then(|()| self.apply_limits(&dirs, limits, true));
        if let Err(error) = result {
            for dir in created {
                let _ = fs::remove_dir(dir);
            }
            return Err(error);
        }
        dirs.applied = Some(*limits);
        Ok(dirs)
    }

    fn attach_files(&self, dirs: &CgroupDirs) -> Vec<PathBuf> {
        dirs.unique
            .iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    fn signal_all(&self, dirs: &CgroupDirs, leader: Option<Pid>, signal: Signal) {
        if let Some(leader) = leader {
            signal_group(leader, signal);
        }
        for pid in self.procs(dirs) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    fn kill_remaining(&self, dirs: &CgroupDirs, leader: Option<Pid>) -> bool {
        if let Some(leader) = leader {
            signal_group(leader, Signal::KILL);
        }
        let mut remaining = false;
        for pid in self.procs(dirs) {
            if process_stat(pid).is_some_and(|stat| !stat.zombie) {
                remaining = true;
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        remaining
    }

    fn limitation(&self, dirs: &CgroupDirs, status: Option<ExitStatus>) -> Option<Limitation> {
        let killed = status == Some(ExitStatus::Signaled(Signal::KILL.as_raw()));
        let (events_file, oom_key) = if self.v2() {
            ("memory.events", "oom")
        } else {
            ("memory.oom_control", "under_oom")
        };
        let events = self.read_keyed(dirs, Hier::Memory, events_file);
        // Kernels before 4.13 do not count OOM kills; a SIGKILL while the cgroup is (or was)
        // out of memory is then the OOM killer's.
        let out_of_memory = || {
            events.get(oom_key).is_some_and(|&n| n > 0)
                || (!self.v2()
                    && self
                        .read_u64(dirs, Hier::Memory, "memory.failcnt")
                        .is_some_and(|n| n > 0))
        };
        let oom_killed = events.get("oom_kill").is_some_and(|&n_kills| n_kills > 0);
        if !(oom_killed || (killed && out_of_memory())) {
            return None;
        }
        let (limit_file, peak_file) = if self.v2() {
            ("memory.max", "memory.peak")
        } else {
            ("memory.limit_in_bytes", "memory.max_usage_in_bytes")
        };
        let mib = |file: &'static str| {
            self.read_u64(dirs, Hier::Memory, file).map_or_else(
                || "?".to_string(),
                |bytes| (bytes / (1024 * 1024)).to_string(),
            )
        };
        Some(Limitation {
            reason: TerminationReason::MemoryLimit,
            message: format!(
                "container exceeded its memory limit of {} MiB (peak {} MiB) and was killed by \
                 the OOM killer",
                mib(limit_file),
                mib(peak_file)
            ),
        })
    }

    fn release(&self, dirs: &CgroupDirs) -> Result<(), ContainerizerError> {
        if self.keep_idle(dirs) {
            return Ok(());
        }
        self.remove(dirs)
    }

    fn release_instance(&self) -> Result<(), ContainerizerError> {
        let idle = std::mem::take(&mut self.idle().cgroups);
        for idle_dirs in idle {
            let _ = self.remove(&idle_dirs);
        }
        self.remove(&self.instance)
    }

    fn usage(&self, dirs: &CgroupDirs, _leader: Pid) -> Result<Usage, ContainerizerError> {
        let read = |hier: Hier, name: &'static str| {
            self.read_u64(dirs, hier, name).ok_or_else(|| {
                ContainerizerError::io(
                    "read",
                    dirs.dir(hier).join(name),
                    io::Error::other("missing or not a number"),
                )
            })
        };
        let limit_bytes = |name: &'static str| -> Option<u64> {
            // "max" (v2) or a page-rounded i64::MAX (v1) mean no limit.
            self.read_u64(dirs, Hier::Memory, name)
                .filter(|&bytes| bytes < 1 << 62)
        };
        let mut usage = Usage::default();
        if self.v2() {
            let cpu = self.read_keyed(dirs, Hier::Cpu, "cpu.stat");
            usage.cpu_user_secs = *cpu.get("user_usec").unwrap_or(&0) as f64 / 1e6;
            usage.cpu_system_secs = *cpu.get("system_usec").unwrap_or(&0) as f64 / 1e6;
            usage.mem_usage_bytes = Some(read(Hier::Memory, "memory.current")?);
            usage.mem_limit_bytes = limit_bytes("memory.max");
            usage.mem_rss_bytes = *self
                .read_keyed(dirs, Hier::Memory, "memory.stat")
                .get("anon")
                .unwrap_or(&0);
        } else {
            usage.cpu_user_secs = read(Hier::Cpuacct, "cpuacct.usage_user")? as f64 / 1e9;
            usage.cpu_system_secs = read(Hier::Cpuacct, "cpuacct.usage_sys")? as f64 / 1e9;
            usage.mem_usage_bytes = Some(read(Hier::Memory, "memory.usage_in_bytes")?);
            usage.mem_limit_bytes = limit_bytes("memory.limit_in_bytes");
            usage.mem_rss_bytes = *self
                .read_keyed(dirs, Hier::Memory, "memory.stat")
                .get("total_rss")
                .unwrap_or(&0);
        }
        usage.pids = if dirs.has_pids {
            read(Hier::Pids, "pids.current")?
        } else {
            // v1 lists the container's threads in each of its cgroups, as pids.current counts.
            let listed = self.read_list(dirs, "tasks").map_err(|error| {
                ContainerizerError::io("read", dirs.memory.join("tasks"), error)
            })?;
            listed.lines().count() as u64
        };
        Ok(usage)
    }

    fn recover(
        &self,
        known: &[RecoverSpec],
    ) -> Result<IsolationRecovery<CgroupDirs>, ContainerizerError> {
        let mut found = BTreeSet::new();
        for dir in &self.instance.unique {
            let entries =
                fs::read_dir(dir).map_err(|error| ContainerizerError::io("list", dir, error))?;
            for entry in entries.filter_map(Result::ok) {
                if entry.file_type().is_ok_and(|file_type| file_type.is_dir()) {
                    found.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        let mut recovery = IsolationRecovery {
            alive: Vec::new(),
            gone: Vec::new(),
            orphans: Vec::new(),
        };
        let mut known_names = BTreeMap::new();
        for spec in known {
            known_names.insert(spec.container_id.as_str().to_string(), spec);
        }
        for spec in known {
            let name = spec.container_id.as_str();
            if !found.contains(name) {
                recovery.gone.push((spec.container_id.clone(), None));
                continue;
            }
            let dirs = self.existing_container_dirs(name);
            let procs = self.procs(&dirs);
            let checkpointed = spec.pid.map(pid_from_raw).transpose()?;
            // The leader is the checkpointed pid if it is still in the cgroup, else the process
            // leading its own group there (the agent may have crashed before checkpointing).
            let leader = procs
                .iter()
                .copied()
                .filter(|&pid| checkpointed.is_none_or(|checkpointed| pid == checkpointed))
                .find(|&pid| {
                    process_stat(pid).is_some_and(|stat| !stat.zombie && stat.pgrp == pid)
                });
            match leader {
                Some(leader) => recovery
                    .alive
                    .push((spec.container_id.clone(), dirs, leader)),
                None => recovery.gone.push((spec.container_id.clone(), Some(dirs))),
            }
        }
        for name in found {
            if name.starts_with(IDLE_PREFIX) {
                // Empty when it was renamed idle, and never given to a container since.
                if let Err(error) = self.remove(&self.instance.join(&name)) {
                    debug!(%error, cgroup = %name, "cannot remove an idle cgroup a previous run left");
                }
                continue;
            }
            if !known_names.contains_key(&name) {
                let dirs = self.existing_container_dirs(&name);
                recovery.orphans.push((name, dirs));
            }
        }
        Ok(recovery)
    }
}

/// Handles (`O_PATH`) on the agent instance's cgroup directories. A container's cgroup files
/// are opened, and its cgroups renamed, relative to them: a lookup of one or two components
/// instead of the whole mount path, which was about two thirds of the kernel time of each such
/// call on the launch path (perf, v1).
struct InstanceFds(Vec<(PathBuf, OwnedFd)>);

impl InstanceFds {
    fn open(dirs: &[PathBuf]) -> Result<Self, ContainerizerError> {
        let mut fds = Vec::new();
        for dir in dirs {
            let fd = rustix::fs::open(
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|error| ContainerizerError::io("open cgroup", dir, error.into()))?;
            fds.push((dir.clone(), fd));
        }
        Ok(Self(fds))
    }

    /// The instance directory `path` is under, and `path` relative to it.
    fn split<'p>(&self, path: &'p Path) -> Option<(BorrowedFd<'_>, &'p Path)> {
        self.0.iter().find_map(|(dir, fd)| {
            let relative = path.strip_prefix(dir).ok()?;
            (!relative.as_os_str().is_empty()).then(|| (fd.as_fd(), relative))
        })
    }

    fn open_file(&self, path: &Path, flags: OFlags) -> io::Result<fs::File> {
        let fd = match self.split(path) {
            Some((dir, relative)) => {
                rustix::fs::openat(dir, relative, flags | OFlags::CLOEXEC, Mode::empty())
            }
            None => rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::empty()),
        }?;
        Ok(fs::File::from(fd))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match (self.split(from), self.split(to)) {
            (Some((from_dir, from)), Some((to_dir, to))) => {
                Ok(rustix::fs::renameat(from_dir, from, to_dir, to)?)
            }
            _ => fs::rename(from, to),
        }
    }
}

impl CgroupIsolation {
    /// Renames each directory of `from` to its counterpart in `to` (cgroups of the same shape).
    fn rename_all(&self, from: &CgroupDirs, to: &CgroupDirs) -> Result<(), ContainerizerError> {
        from.unique
            .iter()
            .zip(&to.unique)
            .try_for_each(|(from, to)| {
                self.instance_fds
                    .rename(from, to)
                    .map_err(|error| ContainerizerError::io("rename cgroup", from, error))
            })
    }

    /// The open control file `name` of `dirs`' `hier` cgroup, opened now if it is not yet.
    fn file(
        &self,
        dirs: &CgroupDirs,
        hier: Hier,
        name: &'static str,
        write: bool,
    ) -> io::Result<Arc<fs::File>> {
        let key = (hier, name, write);
        let mut files = dirs
            .files
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, file)) = files.iter().find(|(open, _)| *open == key) {
            return Ok(Arc::clone(file));
        }
        let flags = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        let file = Arc::new(
            self.instance_fds
                .open_file(&dirs.dir(hier).join(name), flags)?,
        );
        files.push((key, Arc::clone(&file)));
        Ok(file)
    }

    /// Reads a control file whole, from its start.
    fn read_file(&self, dirs: &CgroupDirs, hier: Hier, name: &'static str) -> io::Result<String> {
        let file = self.file(dirs, hier, name, false)?;
        let mut content = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = file.read_at(&mut buffer, content.len() as u64)?;
            if n == 0 {
                break;
            }
            content.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8(content)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
    }

    /// Reads a list of processes or threads (`cgroup.procs`, `tasks`) of the memory cgroup,
    /// from a file opened for this read alone: v1 keeps the list an open file read first for
    /// about a second, so a kept file would show processes that left and miss those that came.
    fn read_list(&self, dirs: &CgroupDirs, name: &str) -> io::Result<String> {
        let mut file = self
            .instance_fds
            .open_file(&dirs.memory.join(name), OFlags::RDONLY)?;
        let mut content = String::new();
        io::Read::read_to_string(&mut file, &mut content)?;
        Ok(content)
    }

    /// Writes `content` into a control file in one write, as the kernel takes it.
    fn write_file(
        &self,
        dirs: &CgroupDirs,
        hier: Hier,
        name: &'static str,
        content: &str,
    ) -> io::Result<()> {
        let file = self.file(dirs, hier, name, true)?;
        let written = file.write_at(content.as_bytes(), 0)?;
        if written == content.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to a cgroup file",
            ))
        }
    }

    fn read_u64(&self, dirs: &CgroupDirs, hier: Hier, name: &'static str) -> Option<u64> {
        parse_u64(&self.read_file(dirs, hier, name).ok()?)
    }

    fn read_keyed(
        &self,
        dirs: &CgroupDirs,
        hier: Hier,
        name: &'static str,
    ) -> HashMap<String, u64> {
        self.read_file(dirs, hier, name)
            .map(|content| parse_keyed(&content))
            .unwrap_or_default()
    }
}

/// Returns the cpu shares of `cpus`, as Mesos computes them.
pub fn cpu_shares(cpus: f64) -> u64 {
    ((cpus * CPU_SHARES_PER_CPU as f64) as u64).max(MIN_CPU_SHARES)
}

/// Maps v1 shares ([2, 262144]) onto the v2 weight range ([1, 10000]), as runc and systemd do.
pub fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_CPU_SHARES, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Returns the CFS quota per [`CPU_CFS_PERIOD`] of `cpus`, as Mesos computes it.
pub fn cfs_quota(cpus: f64) -> Duration {
    CPU_CFS_PERIOD.mul_f64(cpus.max(0.0)).max(MIN_CPU_CFS_QUOTA)
}

/// Reads the cgroups of this process from `/proc/self/cgroup`: controller name to path, with
/// `""` for the v2 hierarchy.
fn own_cgroups() -> Result<HashMap<String, String>, ContainerizerError> {
    let path = "/proc/self/cgroup";
    let content =
        fs::read_to_string(path).map_err(|error| ContainerizerError::io("read", path, error))?;
    let mut own = HashMap::new();
    for line in content.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(cgroup)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            own.insert(String::new(), cgroup.to_string());
        }
        for controller in controllers.split(',').filter(|c| !c.is_empty()) {
            own.insert(controller.to_string(), cgroup.to_string());
        }
    }
    Ok(own)
}

fn create_dir_all(dir: &Path) -> Result<(), ContainerizerError> {
    fs::create_dir_all(dir).map_err(|error| {
        ContainerizerError::CgroupsUnavailable(format!(
            "cannot create {}: {error}; the agent needs root and a writable cgroup hierarchy, \
             or run it with --isolation=posix",
            dir.display()
        ))
    })
}

/// Creates `base/relative` and enables the cpu, memory and pids controllers on the way down, as
/// v2 requires of every parent of a cgroup that uses them.
fn enable_v2_controllers(base: &Path, relative: &Path) -> Result<(), ContainerizerError> {
    const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
    let available = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = CONTROLLERS
        .into_iter()
        .filter(|controller| !available.split_whitespace().any(|c| c == *controller))
        .collect();
    if !missing.is_empty() {
        return Err(ContainerizerError::CgroupsUnavailable(format!(
            "cgroup v2 controllers {} are not available in {}; delegate them to the agent or run \
             it with --isolation=posix",
            missing.join(", "),
            base.display()
        )));
    }
    let mut dir = base.to_path_buf();
    let components: Vec<_> = relative.components().collect();
    for component in components {
        let subtree_control = dir.join("cgroup.subtree_control");
        fs::write(&subtree_control, "+cpu +memory +pids").map_err(|error| {
            ContainerizerError::CgroupsUnavailable(format!(
                "cannot enable controllers in {}: {error}; on cgroup v2 the agent must run in a \
                 delegated subtree with no processes in its parent, or use an absolute cgroups \
                 root, or run with --isolation=posix",
                subtree_control.display()
            ))
        })?;
        dir.push(component);
        create_dir_all(&dir)?;
    }
    // The instance's own children (the containers) use the controllers too.
    fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory +pids").map_err(|error| {
        ContainerizerError::CgroupsUnavailable(format!(
            "cannot enable controllers in {}: {error}",
            dir.display()
        ))
    })
}

fn validate_relative_component(kind: &str, value: &str) -> Result<(), ContainerizerError> {
    strata_protocol::ids::validate_id("agent instance", value).map_err(|error| {
        ContainerizerError::CgroupsUnavailable(format!("invalid {kind} {value:?}: {error}"))
    })
}

fn cgroup_error(
    op: &'static str,
    path: &Path,
    error: cgroups_rs::error::Error,
) -> ContainerizerError {
    let message = match std::error::Error::source(&error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    };
    ContainerizerError::Cgroup {
        op,
        path: path.to_path_buf(),
        message,
    }
}

/// Parses a file holding one number; `max` reads as `u64::MAX`.
fn parse_u64(content: &str) -> Option<u64> {
    let value = content.split_whitespace().next()?;
    if value == "max" {
        return Some(u64::MAX);
    }
    value.parse().ok()
}

/// Parses `key value` lines (`memory.stat`, `memory.events`, `cpu.stat`).
fn parse_keyed(content: &str) -> HashMap<String, u64> {
    content
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_follow_mesos() {
        assert_eq!(cpu_shares(1.0), 1024);
        assert_eq!(cpu_shares(0.5), 512);
        assert_eq!(cpu_shares(0.001), MIN_CPU_SHARES);
        assert_eq!(cpu_shares(2.5), 2560);
    }

    #[test]
    fn cfs_quota_is_cpus_times_the_period_with_a_floor() {
        assert_eq!(cfs_quota(1.5), Duration::from_millis(150));
        assert_eq!(cfs_quota(0.001), MIN_CPU_CFS_QUOTA);
    }

    #[test]
    fn cpu_weight_maps_the_share_range_onto_the_weight_range() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(1024), 39);
    }
}
