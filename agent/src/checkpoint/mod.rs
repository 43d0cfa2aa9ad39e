//! The agent's durable metadata: what it must know after a restart to reconnect to executors
//! that kept running and to resend status updates not yet acknowledged.
//!
//! The layout follows Mesos (`src/slave/paths.cpp`, `docs/agent-recovery.md`), with `agents`
//! for Mesos's `slaves`:
//!
//! ```text
//! <work_dir>/meta/boot_id
//! <work_dir>/meta/agents/latest                                   the current agent ID
//! <work_dir>/meta/agents/<agent>/agent.info
//! <work_dir>/meta/agents/<agent>/resources.info                  checkpointed reservations
//! .../<agent>/frameworks/<fw>/framework.info
//! .../frameworks/<fw>/executors/<ex>/executor.info
//! .../executors/<ex>/runs/<container>/run.info                   leader pid, completed, order
//! .../runs/<container>/tasks/<task>/task.info
//! .../tasks/<task>/task.updates                                  append-only updates log
//! ```
//!
//! `boot_id` and `agents/latest` are one line of text; every other file is framed records of
//! MessagePack with checksums (see `records`). Info files are replaced atomically (temporary
//! file, fsync, rename, fsync of the directory); the updates log is appended to, and a record
//! cut short by a crash is dropped at recovery with a warning, while any other damage is an
//! error naming the file. Trees are removed by renaming them into `meta/.trash` first, so a
//! crash never leaves half a framework where recovery would read it.
//!
//! Every path component comes from a validated ID, checked again here: nothing empty, no `/`,
//! `\` or control character, not `.` or `..`, and no agent named `latest`.
//!
//! Recovery, like Mesos's, skips a directory whose info file is missing (the agent died after
//! creating the directory and before writing the file) with a warning. Callers therefore write
//! parents before children: agent, framework, executor, run, task, then updates.
//!
//! The store must be recovered before the first append after a restart: recovery is what cuts a
//! torn tail off the updates logs.

mod fsio;
mod records;
pub mod writer;

use std::path::{Path, PathBuf};

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
const EXECUTORS: &str = "executors";
const EXECUTOR_INFO: &str = "executor.info";
const RUNS: &str = "runs";
const RUN_INFO: &str = "run.info";
const TASKS: &str = "tasks";
const TASK_INFO: &str = "task.info";
const TASK_UPDATES: &str = "task.updates";

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

/// `run.info` on disk: the caller's record plus the position of the run among its executor's
/// runs, assigned by the store when the run is first written.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunFile {
    sequence: u64,
    record: RunRecord,
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
            },
        }
    }

    /// Makes every write of this batch durable; see [`CheckpointStore::batched`].
    pub fn commit(&self) -> Result<(), CheckpointError> {
        self.fs.commit()
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

    fn executor_dir(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
    ) -> Result<PathBuf, CheckpointError> {
        let name = component("executor ID", ex.as_str())?;
        Ok(self.framework_dir(agent, fw)?.join(EXECUTORS).join(name))
    }

    /// The directory of one executor run's checkpoint (its run record and its tasks).
    pub fn run_dir(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
    ) -> Result<PathBuf, CheckpointError> {
        let name = component("container ID", container.as_str())?;
        Ok(self.executor_dir(agent, fw, ex)?.join(RUNS).join(name))
    }

    fn task_dir(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
        task: &TaskId,
    ) -> Result<PathBuf, CheckpointError> {
        let name = component("task ID", task.as_str())?;
        Ok(self
            .run_dir(agent, fw, ex, container)?
            .join(TASKS)
            .join(name))
    }

    fn write_record<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), CheckpointError> {
        let bytes = records::encode(value).map_err(|source| CheckpointError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
        self.fs.write_atomic(path, &bytes)
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

    /// Checkpoints an executor's info.
    pub fn write_executor(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        info: &ExecutorInfo,
    ) -> Result<(), CheckpointError> {
        let path = self
            .executor_dir(agent, fw, &info.executor_id)?
            .join(EXECUTOR_INFO);
        self.write_record(&path, info)
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
        let path = self.run_dir(agent, fw, ex, container)?.join(RUN_INFO);
        let sequence = match read_record::<RunFile>(&self.fs.current(&path))? {
            Some(existing) => existing.sequence,
            None => self.next_run_sequence(&self.executor_dir(agent, fw, ex)?.join(RUNS))?,
        };
        let file = RunFile {
            sequence,
            record: run.clone(),
        };
        self.write_record(&path, &file)
    }

    fn next_run_sequence(&self, runs_dir: &Path) -> Result<u64, CheckpointError> {
        let mut next = 0;
        for (_, dir) in list_dir(runs_dir)? {
            if let Some(run) = read_record::<RunFile>(&self.fs.current(&dir.join(RUN_INFO)))? {
                next = next.max(run.sequence + 1);
            }
        }
        Ok(next)
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
        let path = self
            .task_dir(agent, fw, ex, container, &task.task_id)?
            .join(TASK_INFO);
        self.write_record(&path, task)
    }

    /// Appends to a task's updates log; the record is on disk (synced, with fsync) when this
    /// returns.
    pub fn append_update(
        &self,
        agent: &AgentId,
        fw: &FrameworkId,
        ex: &ExecutorId,
        container: &ContainerId,
        task: &TaskId,
        record: &UpdateRecord,
    ) -> Result<(), CheckpointError> {
        let path = self
            .task_dir(agent, fw, ex, container, task)?
            .join(TASK_UPDATES);
        let bytes = records::encode(record).map_err(|source| CheckpointError::Encode {
            path: path.clone(),
            source,
        })?;
        self.fs.append(&path, &bytes)
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
        let mut executors = Vec::new();
        for (name, ex_dir) in list_dir(&dir.join(EXECUTORS))? {
            let ex = parse_id::<ExecutorId>(&name, &ex_dir)?;
            if let Some(executor) = self.recover_executor(&ex, &ex_dir)? {
                executors.push(executor);
            }
        }
        Ok(Some(RecoveredFramework { info, executors }))
    }

    fn recover_executor(
        &self,
        ex: &ExecutorId,
        dir: &Path,
    ) -> Result<Option<RecoveredExecutor>, CheckpointError> {
        let path = dir.join(EXECUTOR_INFO);
        let Some(info) = read_record::<ExecutorInfo>(&path)? else {
            warn!(executor = %ex, path = %path.display(), "executor has no info file; skipping it");
            return Ok(None);
        };
        if &info.executor_id != ex {
            return Err(mismatch(&path, "executor ID"));
        }
        let mut runs = Vec::new();
        for (name, run_dir) in list_dir(&dir.join(RUNS))? {
            let container_id = parse_id::<ContainerId>(&name, &run_dir)?;
            if let Some(run) = self.recover_run(container_id, &run_dir)? {
                runs.push(run);
            }
        }
        runs.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.container_id.cmp(&b.1.container_id))
        });
        let runs = runs.into_iter().map(|(_, run)| run).collect();
        Ok(Some(RecoveredExecutor { info, runs }))
    }

    fn recover_run(
        &self,
        container_id: ContainerId,
        dir: &Path,
    ) -> Result<Option<(u64, RecoveredRun)>, CheckpointError> {
        let path = dir.join(RUN_INFO);
        let Some(file) = read_record::<RunFile>(&path)? else {
            warn!(
                container = %container_id,
                path = %path.display(),
                "run has no info file; skipping it"
            );
            return Ok(None);
        };
        let mut tasks = Vec::new();
        for (name, task_dir) in list_dir(&dir.join(TASKS))? {
            let task_id = parse_id::<TaskId>(&name, &task_dir)?;
            if let Some(task) = self.recover_task(&task_id, &task_dir)? {
                tasks.push(task);
            }
        }
        let run = RecoveredRun {
            container_id,
            record: file.record,
            tasks,
        };
        Ok(Some((file.sequence, run)))
    }

    fn recover_task(
        &self,
        task_id: &TaskId,
        dir: &Path,
    ) -> Result<Option<RecoveredTask>, CheckpointError> {
        let path = dir.join(TASK_INFO);
        let Some(task) = read_record::<Task>(&path)? else {
            warn!(task = %task_id, path = %path.display(), "task has no info file; skipping it");
            return Ok(None);
        };
        if &task.task_id != task_id {
            return Err(mismatch(&path, "task ID"));
        }
        let updates = self.recover_updates(&dir.join(TASK_UPDATES))?;
        Ok(Some(RecoveredTask { task, updates }))
    }

    /// Reads an updates log, cutting a torn tail off the file so that appends continue after
    /// the last whole record.
    fn recover_updates(&self, path: &Path) -> Result<Vec<UpdateRecord>, CheckpointError> {
        let Some(bytes) = read_if_exists(path)? else {
            return Ok(Vec::new());
        };
        let read = records::decode_all::<UpdateRecord>(&bytes).map_err(|err| {
            CheckpointError::Corrupt {
                path: path.to_path_buf(),
                offset: err.offset,
                reason: err.reason,
            }
        })?;
        if read.torn(bytes.len()) {
            warn!(
                path = %path.display(),
                kept_bytes = read.valid_len,
                dropped_bytes = bytes.len() as u64 - read.valid_len,
                "updates log ends in a torn record, left by a crash during an append; dropping it"
            );
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|err| io_error("open", path, err))?;
            file.set_len(read.valid_len)
                .map_err(|err| io_error("truncate", path, err))?;
            if self.fs.fsync {
                file.sync_all().map_err(|err| io_error("sync", path, err))?;
            }
        }
        Ok(read.records)
    }
}

/// Reads a one-record file, or `None` if it does not exist.
fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, CheckpointError> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    records::decode_one(&bytes)
        .map(Some)
        .map_err(|err| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            offset: err.offset,
            reason: err.reason,
        })
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
