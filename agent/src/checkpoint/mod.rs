//! The agent's durable metadata: what it must know after a restart to reconnect to executors
//! that kept running and to resend status updates not yet acknowledged.
//!
//! The tree follows Mesos (`src/slave/paths.cpp`, `docs/agent-recovery.md`), with `agents`
//! for Mesos's `slaves`, down to frameworks; below them one append-only log per framework
//! holds what Mesos spreads over a directory per executor, run and task:
//!
//! ```text
//! <work_dir>/meta/boot_id
//! <work_dir>/meta/agents/latest                                   the current agent ID
//! <work_dir>/meta/agents/<agent>/agent.info
//! <work_dir>/meta/agents/<agent>/resources.info                  checkpointed reservations
//! .../<agent>/frameworks/<fw>/framework.info
//! .../frameworks/<fw>/runs.log             executor infos, run records, tasks, updates, acks
//! ```
//!
//! Why one log: a short task of a checkpointing framework used to cost five directories, five
//! replaced files and a log of its own, all metadata the file system journals and every commit
//! waits for; now it is a few records appended to a file that stays open, made durable with
//! one `fdatasync` per batch. The log is replayed at recovery (the latest run record of a
//! container wins; a run's first record gives its place among its executor's runs) and
//! compacted when it has grown past 4 MiB and twice its last compacted size: rewritten with
//! what recovery uses of it (each executor's latest run, unless completed) and renamed over.
//!
//! `boot_id` and `agents/latest` are one line of text; every other file is framed records of
//! MessagePack with checksums (see `records`). Info files are replaced atomically (temporary
//! file, fsync, rename, fsync of the directory); logs are appended to, and a record cut short
//! by a crash is dropped at recovery with a warning, while any other damage is an error naming
//! the file. Trees are removed by renaming them into `meta/.trash` first, so a crash never
//! leaves half a framework where recovery would read it.
//!
//! Every path component comes from a validated ID, checked again here: nothing empty, no `/`,
//! `\` or control character, not `.` or `..`, and no agent named `latest`.
//!
//! Recovery, like Mesos's, skips what lacks its info (a framework directory without
//! `framework.info`, an executor without its info record, a run without a run record, a task
//! without its task record) with a warning: the agent died before writing it and never relied
//! on it. Callers therefore write parents before children: agent, framework, executor, run,
//! task, then updates.
//!
//! The store must be recovered before the first append after a restart: recovery is what cuts a
//! torn tail off the logs.

mod fsio;
mod records;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_protocol::ids::validate_id;
use strata_protocol::mesos::{AgentInfo, ExecutorInfo, FrameworkInfo, Task};
use strata_protocol::{AgentId, ContainerId, ExecutorId, FrameworkId, Resource, TaskId};
use tracing::warn;

use fsio::{Fs, io_error, list_dir, read_if_exists};

const META: &str = "meta";
const BOOT_ID: &str = "boot_id";
const AGENTS: &str = "agents";
const LATEST: &str = "latest";
const TRASH: &str = ".trash";
const AGENT_INFO: &str = "agent.info";
const RESOURCES_INFO: &str = "resources.info";
const FRAMEWORKS: &str = "frameworks";
const FRAMEWORK_INFO: &str = "framework.info";
const RUNS_LOG: &str = "runs.log";

/// A runs log is compacted once it is larger than this and than twice its size after its last
/// compaction: about 2,000 short tasks' records, read and rewritten in a few milliseconds.
const COMPACT_ABOVE: u64 = 4 * 1024 * 1024;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the record for {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: rmp_serde::encode::Error,
    },
    #[error("checkpoint file {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{what} has no ID, so it cannot be checkpointed")]
    MissingId { what: &'static str },
    #[error("{kind} {value:?} cannot name a checkpoint directory: {reason}")]
    InvalidId {
        kind: &'static str,
        value: String,
        reason: String,
    },
    #[error("unexpected entry {path} in the checkpoint tree: {reason}")]
    UnexpectedEntry { path: PathBuf, reason: String },
}

/// What is known about one executor run (one container).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The container's leader process, once forked; after a reboot (a different boot ID) it
    /// names nothing.
    pub pid: Option<u32>,
    /// Whether the agent is done with the run (Mesos's sentinel file): its tasks are terminal
    /// and its container destroyed, so recovery must not try to reconnect.
    pub completed: bool,
    /// The agent runs the run's command task itself: no executor will reconnect, and the
    /// container's exit is the task's end.
    #[serde(default)]
    pub in_agent: bool,
}

/// One entry of a task's updates log: the status update manager's own record type, so that
/// what it emits is exactly what recovery gives back to it.
pub use crate::status_updates::UpdateRecord;

/// Everything checkpointed for the latest agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The boot ID written last; a different current one means the machine rebooted and every
    /// checkpointed process is gone.
    pub boot_id: Option<String>,
    pub agent_info: AgentInfo,
    /// Checkpointed resources (dynamic reservations); empty when none were written.
    pub resources: Vec<Resource>,
    /// Sorted by framework ID.
    pub frameworks: Vec<RecoveredFramework>,
}

/// A checkpointed framework.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredFramework {
    pub info: FrameworkInfo,
    /// Sorted by executor ID.
    pub executors: Vec<RecoveredExecutor>,
}

/// A checkpointed executor.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredExecutor {
    pub info: ExecutorInfo,
    /// In the order they were first written; the latest run is last.
    pub runs: Vec<RecoveredRun>,
}

/// A checkpointed executor run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredRun {
    pub container_id: ContainerId,
    pub record: RunRecord,
    /// Sorted by task ID.
    pub tasks: Vec<RecoveredTask>,
}

/// A checkpointed task and its updates log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredTask {
    pub task: Task,
    /// In the order they were appended.
    pub updates: Vec<UpdateRecord>,
}

/// The checkpoint tree under `<work_dir>/meta`.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    meta: PathBuf,
    fs: Fs,
}

/// Checks an ID again before it becomes a path component.
fn component<'a>(kind: &'static str, value: &'a str) -> Result<&'a str, CheckpointError> {
    let invalid = |reason: String| CheckpointError::InvalidId {
        kind,
        value: value.to_owned(),
        reason,
    };
    validate_id(kind, value).map_err(|err| invalid(err.to_string()))?;
    Ok(value)
}

impl CheckpointStore {
    /// Opens (creating if needed) the checkpoint tree under `work_dir`. With `fsync`, every
    /// write is synced to disk before it returns; without, a machine crash may lose recent
    /// writes (but a process crash loses nothing).
    pub fn open(work_dir: &Path, fsync: bool) -> Result<Self, CheckpointError> {
        let store = Self {
            meta: work_dir.join(META),
            fs: Fs::immediate(fsync),
        };
        store.fs.create_dirs(&store.meta)?;
        // Trees moved to the trash by a run that crashed before deleting them.
        let trash = store.meta.join(TRASH);
        match std::fs::remove_dir_all(&trash) {
            // Gone already, or emptied meanwhile by the deleting thread of an earlier store.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            result => result.map_err(|err| io_error("remove", &trash, err))?,
        }
        Ok(store)
    }

    /// Returns a handle on the same tree whose writes are made durable together, by
    /// [`CheckpointStore::commit`] (group commit): each file and directory is synced once per
    /// batch however often it was written. Until the commit, a replaced file keeps its old
    /// content for other readers; the batch's own writes read back the new one. Removals
    /// commit what came before them and are durable when they return. Without fsync, writes
    /// are made at once and the commit does nothing.
    pub fn batched(&self) -> CheckpointStore {
        let batch = self.fs.fsync.then(Default::default);
        CheckpointStore {
            meta: self.meta.clone(),
            fs: Fs {
                fsync: self.fs.fsync,
                batch,
                logs: Arc::clone(&self.fs.logs),
            },
        }
    }

    /// Makes every write of this batch durable; see [`CheckpointStore::batched`].
    pub fn commit(&self) -> Result<(), CheckpointError> {
        self.fs.commit()?;
        self.compact_logs()
    }

    /// Returns the directory the tree lives in, `<work_dir>/meta`.
    pub fn meta_dir(&self) -> &Path {
        &self.meta
    }

    fn agent_dir(&self, agent: &AgentId) -> Result<PathBuf, CheckpointError> {
        let name = component("agent ID", agent.as_str())?;
        if name == LATEST {
            return Err(CheckpointError::InvalidId {
                kind: "agent ID",
                value: name.to_owned(),
                reason: "the name is reserved for the link to the current agent".to_owned(),
            });
        }
        Ok(self.meta.join(AGENTS).join(name))
    }

    fn framework_dir(&self, agent: &AgentId, fw: &FrameworkId) -> Result<PathBuf, CheckpointError> {
        let name = component("framework ID", fw.as_str())?;
        Ok(self.agent_dir(agent)?.join(FRAMEWORKS).join(name))
    }

    fn write_record<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), CheckpointError> {
        self.fs.write_atomic(path, &encode_record(path, value)?)
    }

    /// Records the machine's boot ID, so that the next start can tell a reboot from a restart.
    pub fn write_boot_id(&self, boot_id: &str) -> Result<(), CheckpointError> {
        self.fs
            .write_atomic(&self.meta.join(BOOT_ID), format!("{boot_id}\n").as_bytes())
    }

    /// Checkpoints the agent's info and makes it the current agent. `info.id` must be set.
    pub fn write_agent(&self, info: &AgentInfo) -> Result<(), CheckpointError> {
        let id = info
            .id
            .as_ref()
            .ok_or(CheckpointError::MissingId { what: "agent info" })?;
        let dir = self.agent_dir(id)?;
        self.write_record(&dir.join(AGENT_INFO), info)?;
        // The info goes first so that `latest` never names an agent without one.
        let latest = self.meta.join(AGENTS).join(LATEST);
        self.fs.write_atomic(&latest, format!("{id}\n").as_bytes())
    }

    /// Checkpoints the agent's resources that must survive a restart (dynamic reservations).
    pub fn write_resources(
        &self,
        agent: &AgentId,
        resources: &[Resource],
    ) -> Result<(), CheckpointError> {
        let path = self.agent_dir(agent)?.join(RESOURCES_INFO);
        self.write_record(&path, &resources)
    }

    /// Checkpoints a framework's info. `info.id` must be set.
    pub fn write_framework(
        &self,
        agent: &AgentId,
        info: &FrameworkInfo,
    ) -> Result<(), CheckpointError> {
        let id = info.id.as_ref().ok_or(CheckpointError::MissingId {
            what: "framework info",
        })?;
        let path = self.framework_dir(agent, id)?.join(FRAMEWORK_INFO);
        self.write_record(&path, info)
    }

    /// Checkpoints an executor's info, as the first record of a new run of it.
    pub fn write_executor(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        info: &ExecutorInfo,
    ) -> Result<(), CheckpointError> {
        component("executor ID", info.executor_id.as_str())?;
        self.append_to_log(agent, fw, &LogRecordRef::Executor(info))
    }

    /// Checkpoints what is known of one executor run. The first write of a run places it after
    /// every run already checkpointed for the executor; later writes keep its place.
    pub fn write_run(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
        run: &RunRecord,
    ) -> Result<(), CheckpointError> {
        self.append_to_log(
            agent,
            fw,
            &LogRecordRef::Run {
                executor_id: ex,
                container_id: container,
                record: run,
            },
        )
    }

    /// Checkpoints a task under the run that executes it.
    pub fn write_task(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
        task: &Task,
    ) -> Result<(), CheckpointError> {
        self.append_to_log(
            agent,
            fw,
            &LogRecordRef::Task {
                executor_id: ex,
                container_id: container,
                task,
            },
        )
    }

    /// Appends to a task's updates; the record is on disk (synced, with fsync) when this
    /// returns, or in a batch at its commit.
    pub fn append_update(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
        task: &TaskId,
        record: &UpdateRecord,
    ) -> Result<(), CheckpointError> {
        self.append_to_log(
            agent,
            fw,
            &LogRecordRef::Update {
                executor_id: ex,
                container_id: container,
                task_id: task,
                record,
            },
        )
    }

    fn append_to_log(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        record: &LogRecordRef<'_>,
    ) -> Result<(), CheckpointError> {
        let path = self.framework_dir(agent, fw)?.join(RUNS_LOG);
        self.fs.append(&path, &encode_record(&path, record)?)?;
        if self.fs.batch.is_none() {
            self.compact_logs()?;
        }
        Ok(())
    }

    /// Rewrites every runs log that has grown past [`COMPACT_ABOVE`] and twice its size after
    /// its last rewrite with only what recovery would use of it (see [`compacted`]), so that
    /// a framework that stays on the agent for months does not pile up the records of every
    /// run it ever had.
    fn compact_logs(&self) -> Result<(), CheckpointError> {
        for path in self.fs.logs_to_compact(COMPACT_ABOVE) {
            let Some(bytes) = read_if_exists(&path)? else {
                continue;
            };
            let read = decode_log::<LogRecord>(&path, &bytes)?;
            let mut compact = Vec::new();
            for record in compacted(fold_log(&path, read.records)) {
                compact.extend_from_slice(&encode_record(&path, &record)?);
            }
            tracing::debug!(
                path = %path.display(),
                before_bytes = bytes.len(),
                after_bytes = compact.len(),
                "compacting a runs log"
            );
            self.fs.replace_log(&path, &compact)?;
        }
        Ok(())
    }

    /// Removes everything checkpointed for a framework that is gone from the agent.
    pub fn remove_framework(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
    ) -> Result<(), CheckpointError> {
        let dir = self.framework_dir(agent, fw)?;
        self.fs.remove_tree(&dir, &self.meta.join(TRASH))
    }

    /// Forgets the current agent, so that the next start registers as a new one: `latest` goes
    /// first (the step that makes it forgotten), then the agent's tree.
    pub fn wipe_agent(&self) -> Result<(), CheckpointError> {
        let latest = self.meta.join(AGENTS).join(LATEST);
        let agent = match self.latest_agent() {
            Ok(Some(agent)) => agent,
            Ok(None) => return Ok(()),
            // A damaged `latest` is exactly what a wipe must get rid of; the tree it named
            // cannot be found and stays for the operator.
            Err(err @ CheckpointError::Corrupt { .. }) => {
                warn!(error = %err, "forgetting an unreadable current agent");
                return self.fs.remove_file(&latest);
            }
            Err(err) => return Err(err),
        };
        self.fs.remove_file(&latest)?;
        let dir = self.agent_dir(&agent)?;
        self.fs.remove_tree(&dir, &self.meta.join(TRASH))
    }

    fn latest_agent(&self) -> Result<Option<AgentId>, CheckpointError> {
        let path = self.meta.join(AGENTS).join(LATEST);
        let Some(text) = read_text(&path)? else {
            return Ok(None);
        };
        let id = AgentId::new(text).map_err(|err| CheckpointError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: err.to_string(),
        })?;
        Ok(Some(id))
    }

    /// Reads back everything checkpointed for the current agent, or `None` if there is none (a
    /// fresh work dir, a wiped agent, or an agent that died before its info was written).
    /// Updates logs that end in a torn record are cut back to their last whole record.
    pub fn recover(&self) -> Result<Option<Recovered>, CheckpointError> {
        let boot_id = read_text(&self.meta.join(BOOT_ID))?;
        let Some(agent) = self.latest_agent()? else {
            return Ok(None);
        };
        let dir = self.agent_dir(&agent)?;
        let Some(agent_info) = read_record::<AgentInfo>(&dir.join(AGENT_INFO))? else {
            warn!(%agent, "latest agent has no agent.info; starting as a new agent");
            return Ok(None);
        };
        if agent_info.id.as_ref() != Some(&agent) {
            return Err(mismatch(&dir.join(AGENT_INFO), "agent ID"));
        }
        let resources =
            read_record::<Vec<Resource>>(&dir.join(RESOURCES_INFO))?.unwrap_or_default();
        let mut frameworks = Vec::new();
        for (name, fw_dir) in list_dir(&dir.join(FRAMEWORKS))? {
            let fw = parse_id::<FrameworkId>(&name, &fw_dir)?;
            if let Some(framework) = self.recover_framework(&fw, &fw_dir)? {
                frameworks.push(framework);
            }
        }
        Ok(Some(Recovered {
            boot_id,
            agent_info,
            resources,
            frameworks,
        }))
    }

    fn recover_framework(
        &self,
        fw: &FrameworkId,
        dir: &Path,
    ) -> Result<Option<RecoveredFramework>, CheckpointError> {
        let path = dir.join(FRAMEWORK_INFO);
        let Some(info) = read_record::<FrameworkInfo>(&path)? else {
            warn!(
                framework = %fw,
                path = %path.display(),
                "framework has no info file; skipping it"
            );
            return Ok(None);
        };
        if info.id.as_ref() != Some(fw) {
            return Err(mismatch(&path, "framework ID"));
        }
        let log = dir.join(RUNS_LOG);
        let executors = fold_log(&log, self.recover_log(&log)?);
        Ok(Some(RecoveredFramework { info, executors }))
    }

    /// Reads a runs log, cutting a torn tail off the file so that appends continue after the
    /// last whole record.
    fn recover_log(&self, path: &Path) -> Result<Vec<LogRecord>, CheckpointError> {
        let Some(bytes) = read_if_exists(path)? else {
            return Ok(Vec::new());
        };
        let read = decode_log::<LogRecord>(path, &bytes)?;
        let mut file_len = bytes.len() as u64;
        if read.torn {
            warn!(
                path = %path.display(),
                kept_bytes = read.valid_len,
                dropped_bytes = bytes.len() as u64 - read.valid_len,
                "runs log ends in a torn record, left by a crash during an append; dropping it"
            );
            self.fs.truncate_log(path, read.valid_len)?;
            file_len = read.valid_len;
        }
        // The writer appends after the records found here, without reading the log again.
        self.fs.adopt_log(path, read.valid_len, file_len)?;
        Ok(read.records)
    }
}

/// One record of a framework's runs log.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LogRecord {
    /// Opens a new run of the executor (and replaces what an earlier run said of its info).
    Executor(ExecutorInfo),
    /// What is known of a run; the latest record of a container wins, and its first one gives
    /// the run its place among the executor's runs.
    Run {
        executor_id: ExecutorId,
        container_id: ContainerId,
        record: RunRecord,
    },
    Task {
        executor_id: ExecutorId,
        container_id: ContainerId,
        task: Task,
    },
    Update {
        executor_id: ExecutorId,
        container_id: ContainerId,
        task_id: TaskId,
        record: UpdateRecord,
    },
}

/// A [`LogRecord`] borrowed, for writing: encoding it copies no info. It encodes exactly as
/// the owned record (same variant and field names).
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Executor(&'a ExecutorInfo),
    Run {
        executor_id: &'a ExecutorId,
        container_id: &'a ContainerId,
        record: &'a RunRecord,
    },
    Task {
        executor_id: &'a ExecutorId,
        container_id: &'a ContainerId,
        task: &'a Task,
    },
    Update {
        executor_id: &'a ExecutorId,
        container_id: &'a ContainerId,
        task_id: &'a TaskId,
        record: &'a UpdateRecord,
    },
}

/// Replays a runs log into the executors it describes: sorted by executor ID, each executor's
/// runs in the order they were first recorded, tasks sorted by ID. As with a directory missing
/// its info file, an executor with no info, a run with no run record and a task with no task
/// record are left out with a warning: the agent died before writing them, so it never relied
/// on them.
fn fold_log(path: &Path, records: Vec<LogRecord>) -> Vec<RecoveredExecutor> {
    #[derive(Default)]
    struct Executor {
        info: Option<ExecutorInfo>,
        runs: Vec<Run>,
    }
    struct Run {
        container_id: ContainerId,
        record: Option<RunRecord>,
        tasks: BTreeMap<TaskId, (Option<Task>, Vec<UpdateRecord>)>,
    }
    fn run(
        executors: &mut BTreeMap<ExecutorId, Executor>,
        executor_id: ExecutorId,
        container_id: ContainerId,
    ) -> &mut Run {
        let runs = &mut executors.entry(executor_id).or_default().runs;
        let at = match runs.iter().position(|run| run.container_id == container_id) {
            Some(at) => at,
            None => {
                runs.push(Run {
                    container_id,
                    record: None,
                    tasks: BTreeMap::new(),
                });
                runs.len() - 1
            }
        };
        &mut runs[at]
    }
    let mut executors: BTreeMap<ExecutorId, Executor> = BTreeMap::new();
    for record in records {
        match record {
            LogRecord::Executor(info) => {
                let executor_id = info.executor_id.clone();
                executors.entry(executor_id).or_default().info = Some(info);
            }
            LogRecord::Run {
                executor_id,
                container_id,
                record,
            } => run(&mut executors, executor_id, container_id).record = Some(record),
            LogRecord::Task {
                executor_id,
                container_id,
                task,
            } => {
                let run = run(&mut executors, executor_id, container_id);
                let task_id = task.task_id.clone();
                run.tasks.entry(task_id).or_default().0 = Some(task);
            }
            LogRecord::Update {
                executor_id,
                container_id,
                task_id,
                record,
            } => {
                let run = run(&mut executors, executor_id, container_id);
                run.tasks.entry(task_id).or_default().1.push(record);
            }
        }
    }
    let mut recovered = Vec::new();
    for (executor_id, executor) in executors {
        let Some(info) = executor.info else {
            warn!(executor = %executor_id, path = %path.display(), "executor has no info record; skipping it");
            continue;
        };
        let mut runs = Vec::new();
        for run in executor.runs {
            let Some(record) = run.record else {
                warn!(container = %run.container_id, path = %path.display(), "run has no run record; skipping it");
                continue;
            };
            let mut tasks = Vec::new();
            for (task_id, (task, updates)) in run.tasks {
                match task {
                    Some(task) => tasks.push(RecoveredTask { task, updates }),
                    None => {
                        warn!(task = %task_id, path = %path.display(), "task has no task record; skipping it")
                    }
                }
            }
            runs.push(RecoveredRun {
                container_id: run.container_id,
                record,
                tasks,
            });
        }
        recovered.push(RecoveredExecutor { info, runs });
    }
    recovered
}

/// The records of a compacted runs log: what recovery uses of `executors`, nothing else. It
/// looks at an executor's latest run only, and not at all when that run is completed (its
/// tasks' terminal updates were acknowledged before it was marked so), so earlier runs and
/// completed executors go.
fn compacted(executors: Vec<RecoveredExecutor>) -> Vec<LogRecord> {
    let mut records = Vec::new();
    for executor in executors {
        let Some(run) = executor.runs.into_iter().next_back() else {
            continue;
        };
        if run.record.completed {
            continue;
        }
        let executor_id = executor.info.executor_id.clone();
        records.push(LogRecord::Executor(executor.info));
        records.push(LogRecord::Run {
            executor_id: executor_id.clone(),
            container_id: run.container_id.clone(),
            record: run.record,
        });
        for task in run.tasks {
            let task_id = task.task.task_id.clone();
            records.push(LogRecord::Task {
                executor_id: executor_id.clone(),
                container_id: run.container_id.clone(),
                task: task.task,
            });
            for record in task.updates {
                records.push(LogRecord::Update {
                    executor_id: executor_id.clone(),
                    container_id: run.container_id.clone(),
                    task_id: task_id.clone(),
                    record,
                });
            }
        }
    }
    records
}

/// Reads a one-record file, or `None` if it does not exist.
fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CheckpointError> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    records::decode_one(&bytes)
        .map(Some)
        .map_err(|err| corrupt(path, err))
}

/// Encodes `value` as one record of the file at `path`.
fn encode_record<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>, CheckpointError> {
    records::encode(value).map_err(|source| CheckpointError::Encode {
        path: path.to_path_buf(),
        source,
    })
}

/// Decodes the records of the log at `path`.
fn decode_log<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<records::Records<T>, CheckpointError> {
    records::decode_all(bytes).map_err(|err| corrupt(path, err))
}

fn corrupt(path: &Path, err: records::RecordError) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        offset: err.offset,
        reason: err.reason,
    }
}

/// Reads a one-line text file, or `None` if it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, CheckpointError> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|_| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: "not UTF-8 text".to_owned(),
    })?;
    Ok(Some(text.trim().to_owned()))
}

/// Parses a directory name as an ID; a name that is not one was not written by the store.
fn parse_id<T>(name: &str, path: &Path) -> Result<T, CheckpointError>
where
    T: TryFrom<String, Error = strata_protocol::IdError>,
{
    T::try_from(name.to_owned()).map_err(|err| CheckpointError::UnexpectedEntry {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

fn mismatch(path: &Path, what: &str) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!("the {what} inside does not match the directory it is in"),
    }
}
