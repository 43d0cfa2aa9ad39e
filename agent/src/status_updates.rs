//! The task status update manager: delivers each task's status updates to the master reliably and
//! in order, as a pure state machine.
//!
//! As in Mesos's agent (`src/slave/task_status_update_manager.cpp`), there is one *stream* per
//! (framework, task). An update, whether an executor sent it or the agent generated it, is
//! checkpointed to the task's update log when the framework checkpoints, queued, and forwarded to
//! the master. Only the head of a stream is in flight: the next update is forwarded once the
//! master relays the framework's acknowledgement of the head. The head is resent until it is
//! acknowledged, first after `retry_min` (10 s), then twice as long each time up to `retry_max`
//! (10 min). Every forward carries `latest_state`, the state of the newest update queued for the
//! task, so that the master learns of a terminal state, and frees the task's resources, while
//! older updates still wait for their acknowledgement.
//!
//! The manager never reads the clock and does no I/O. Time is passed in, and what must happen is
//! appended to a `Vec<UpdateEffect>` that the caller executes in order. A
//! [`UpdateEffect::Checkpoint`] must be durable before the effects after it run: an update is
//! never forwarded (and so never acknowledged) before it would survive a restart of the agent.
//!
//! # Rules
//!
//! - An update whose uuid the stream has already received is a duplicate, whether it is still
//!   pending or already acknowledged (an executor retrying an update whose acknowledgement it
//!   missed): it is ignored, neither checkpointed nor forwarded.
//! - Once a stream holds a terminal update, later updates with new uuids are dropped until that
//!   update is acknowledged. The acknowledgement closes the stream, so an update arriving after it
//!   opens a new stream and is forwarded. (Mesos's agent drops the update of a task it already
//!   saw terminate, and forwards those of a task it has completed and forgotten.)
//! - A closed stream is forgotten with the uuids it received, so an update resent after the
//!   acknowledgement of its task's terminal update opens a new stream and is forwarded again, as
//!   in Mesos: the framework may see it twice, never zero times.
//! - An acknowledgement must carry the uuid of the stream's head; any other is an error and
//!   changes nothing (the master may relay acknowledgements of both an update and its resend).
//! - While the agent has no master the manager is *paused* and forwards nothing; on registration
//!   or reregistration, [`StatusUpdateManager::resume`] resends the head of every stream at once.
//! - After a restart, [`StatusUpdateManager::recover`] replays a task's checkpointed
//!   [`UpdateRecord`]s through the same rules, which rebuilds the stream exactly as it was.
//!
//! Streams of frameworks that do not checkpoint live only in memory and are lost with the agent,
//! as in Mesos: such frameworks' tasks do not survive an agent restart either.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_protocol::internal::StatusUpdate;
use strata_protocol::{Bytes, FrameworkId, TaskId, TaskState};

/// How many unacknowledged updates one task may have queued. An executor that sends updates
/// faster than its framework acknowledges them gets an error beyond this, rather than growing the
/// agent's memory and the task's update log without limit.
pub const PENDING_PER_TASK_MAX: usize = 1_000;

/// How many acknowledged uuids a stream remembers to recognise duplicates. Executors resend an
/// update only until the agent acknowledges it, seconds later, so a window this large catches
/// every real duplicate while a task that reports for months keeps a bounded memory. An update
/// older than the window, if it ever came back, would be forwarded again: delivery stays at least
/// once.
pub const ACKED_UUIDS_REMEMBERED_MAX: usize = 1_000;

/// When unacknowledged updates are resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateConfig {
    /// The wait before the first resend of an update, and after a resume or an acknowledgement.
    pub retry_min: Duration,
    /// The longest wait between two resends; the wait doubles from `retry_min` up to this.
    pub retry_max: Duration,
}

impl Default for UpdateConfig {
    /// Returns Mesos's `STATUS_UPDATE_RETRY_INTERVAL_MIN` and `_MAX`: 10 s and 10 min.
    fn default() -> Self {
        Self {
            retry_min: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
        }
    }
}

/// One entry of a task's checkpointed update log, as Mesos's `StatusUpdateRecord`. The log is
/// the sequence of records in the order [`UpdateEffect::Checkpoint`] emitted them, and
/// [`StatusUpdateManager::recover`] rebuilds the stream from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateRecord {
    /// An update was accepted into the stream.
    Update(StatusUpdate),
    /// The update with this uuid was acknowledged by the framework.
    Ack { uuid: Bytes },
}

/// What the caller must do, in order, after a call to the manager.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateEffect {
    /// Appends `record` to the update log of the task, durably, before the effects after it run.
    Checkpoint {
        framework_id: FrameworkId,
        task_id: TaskId,
        record: UpdateRecord,
    },
    /// Sends this update to the master. `latest_state` is already set.
    Forward(StatusUpdate),
}

/// What [`StatusUpdateManager::update`] did with an update. Whatever it is, the update is handled
/// and the sender (the executor) can be acknowledged, so that it stops resending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Accepted: checkpointed if the stream checkpoints, queued, and forwarded if it is the head.
    Queued,
    /// The stream already received this uuid; nothing changed.
    Duplicate,
    /// The stream holds a terminal update that is not acknowledged yet; this later update was
    /// dropped and nothing changed.
    AfterTerminal,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// The state of the update that was acknowledged.
    pub acked_state: TaskState,
    /// The acknowledged update was terminal, so the stream is closed and forgotten: the caller
    /// can clean the task up (and its update log).
    pub stream_closed: bool,
}

/// Why the manager refused a call. A refused call changes nothing and emits no effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("status update for task {task_id} of framework {framework_id} has no uuid")]
    MissingUuid {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error(
        "status update for task {task_id} of framework {framework_id} has checkpoint={}, but its \
         stream has checkpoint={expected}",
        !expected
    )]
    CheckpointMismatch {
        framework_id: FrameworkId,
        task_id: TaskId,
        expected: bool,
    },
    #[error(
        "task {task_id} of framework {framework_id} already has {PENDING_PER_TASK_MAX} \
         unacknowledged status updates"
    )]
    QueueFull {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error("no status update stream for task {task_id} of framework {framework_id}")]
    UnknownStream {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error(
        "duplicate acknowledgement {} for task {task_id} of framework {framework_id}",
        uuid.to_base64()
    )]
    DuplicateAck {
        framework_id: FrameworkId,
        task_id: TaskId,
        uuid: Bytes,
    },
    #[error(
        "unexpected acknowledgement {} for task {task_id} of framework {framework_id} (expecting \
         {})",
        uuid.to_base64(),
        expected.as_ref().map_or_else(|| "none".to_owned(), Bytes::to_base64)
    )]
    UnexpectedAck {
        framework_id: FrameworkId,
        task_id: TaskId,
        uuid: Bytes,
        /// The uuid of the stream's head, if it has one.
        expected: Option<Bytes>,
    },
    #[error("a status update stream for task {task_id} of framework {framework_id} already exists")]
    StreamExists {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    #[error("status update streams can only be recovered while paused, before the first resume")]
    RecoverWhileResumed,
    #[error(
        "update record {index} of task {task_id} of framework {framework_id} cannot be replayed: \
         {reason}"
    )]
    BadRecord {
        framework_id: FrameworkId,
        task_id: TaskId,
        index: usize,
        reason: String,
    },
}

/// When the head of a stream is resent if it is still unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    due: Duration,
    /// The wait that led to `due`; the next one is twice as long, up to `retry_max`.
    interval: Duration,
}

/// The status updates of one task.
#[derive(Debug, Clone)]
struct Stream {
    /// Whether updates and acknowledgements are written to the task's update log.
    checkpoint: bool,
    /// Updates not acknowledged yet, oldest (the head, the one in flight) first.
    pending: VecDeque<StatusUpdate>,
    /// The uuids of the pending updates and of the remembered acknowledged ones.
    received: BTreeSet<Bytes>,
    /// The remembered acknowledged uuids, oldest first, at most `ACKED_UUIDS_REMEMBERED_MAX`.
    acked: VecDeque<Bytes>,
    /// The state of the newest update received.
    latest_state: TaskState,
    /// Set exactly while the manager is not paused and the head has been forwarded.
    retry: Option<Retry>,
}

impl Stream {
    fn new(checkpoint: bool, first_state: TaskState) -> Self {
        Self {
            checkpoint,
            pending: VecDeque::new(),
            received: BTreeSet::new(),
            acked: VecDeque::new(),
            latest_state: first_state,
            retry: None,
        }
    }

    /// Decides what to do with `update` without changing anything.
    fn classify(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        update: &StatusUpdate,
        checkpoint: bool,
    ) -> Result<UpdateOutcome, UpdateError> {
        if self.checkpoint != checkpoint {
            return Err(UpdateError::CheckpointMismatch {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                expected: self.checkpoint,
            });
        }
        if self.received.contains(&update.uuid) {
            return Ok(UpdateOutcome::Duplicate);
        }
        if self
            .pending
            .back()
            .is_some_and(|newest| newest.status.state.is_terminal())
        {
            return Ok(UpdateOutcome::AfterTerminal);
        }
        if self.pending.len() >= PENDING_PER_TASK_MAX {
            return Err(UpdateError::QueueFull {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
            });
        }
        Ok(UpdateOutcome::Queued)
    }

    fn push(&mut self, update: StatusUpdate) {
        self.received.insert(update.uuid.clone());
        self.latest_state = update.status.state;
        self.pending.push_back(update);
    }

    /// Checks that `uuid` acknowledges the head, without changing anything.
    fn check_ack(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        uuid: &Bytes,
    ) -> Result<(), UpdateError> {
        let expected = self.pending.front().map(|head| &head.uuid);
        if expected == Some(uuid) {
            return Ok(());
        }
        if self.acked.contains(uuid) {
            return Err(UpdateError::DuplicateAck {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                uuid: uuid.clone(),
            });
        }
        Err(UpdateError::UnexpectedAck {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
            uuid: uuid.clone(),
            expected: expected.cloned(),
        })
    }

    /// Removes the head, which `check_ack` accepted, and remembers its uuid.
    fn pop_head(&mut self) -> StatusUpdate {
        let head = self
            .pending
            .pop_front()
            .expect("an acknowledged stream has a head");
        self.retry = None;
        self.acked.push_back(head.uuid.clone());
        if self.acked.len() > ACKED_UUIDS_REMEMBERED_MAX
            && let Some(forgotten) = self.acked.pop_front()
        {
            self.received.remove(&forgotten);
        }
        head
    }

    /// Sends the head with the task's latest state, and resends it after `interval` unless it is
    /// acknowledged first.
    fn forward_head(&mut self, now: Duration, interval: Duration, out: &mut Vec<UpdateEffect>) {
        let Some(head) = self.pending.front() else {
            return;
        };
        let mut update = head.clone();
        update.latest_state = Some(self.latest_state);
        out.push(UpdateEffect::Forward(update));
        self.retry = Some(Retry {
            due: now.saturating_add(interval),
            interval,
        });
    }
}

/// The agent's task status update manager. See the [module docs](self) for the rules.
///
/// A new manager is paused: an agent has no master until it registers, and it calls
/// [`resume`](Self::resume) then.
#[derive(Debug, Clone)]
pub struct StatusUpdateManager {
    config: UpdateConfig,
    paused: bool,
    streams: BTreeMap<FrameworkId, BTreeMap<TaskId, Stream>>,
}

impl StatusUpdateManager {
    /// Returns a paused manager with no streams.
    pub fn new(config: UpdateConfig) -> Self {
        Self {
            config,
            paused: true,
            streams: BTreeMap::new(),
        }
    }

    /// Handles a status update for its task: checkpoints it (if `checkpoint`, which must be the
    /// same for every update of a stream) and queues it, forwarding it at once if it is the only
    /// pending update and the manager is not paused. `update.status.uuid` is set to
    /// `update.uuid`, the identity acknowledgements refer to.
    pub fn update(
        &mut self,
        now: Duration,
        mut update: StatusUpdate,
        checkpoint: bool,
        out: &mut Vec<UpdateEffect>,
    ) -> Result<UpdateOutcome, UpdateError> {
        let framework_id = update.framework_id.clone();
        let task_id = update.status.task_id.clone();
        if update.uuid.is_empty() {
            return Err(UpdateError::MissingUuid {
                framework_id,
                task_id,
            });
        }
        // The framework acknowledges the uuid it sees in the status, so it must be the update's.
        update.status.uuid = Some(update.uuid.clone());

        let outcome = match self.stream(&framework_id, &task_id) {
            Some(stream) => stream.classify(&framework_id, &task_id, &update, checkpoint)?,
            None => UpdateOutcome::Queued,
        };
        match outcome {
            UpdateOutcome::Queued => {}
            UpdateOutcome::Duplicate => {
                tracing::warn!(%framework_id, %task_id, uuid = %update.uuid.to_base64(),
                    state = update.status.state.as_str(), "ignoring duplicate status update");
                return Ok(outcome);
            }
            UpdateOutcome::AfterTerminal => {
                tracing::warn!(%framework_id, %task_id, uuid = %update.uuid.to_base64(),
                    state = update.status.state.as_str(),
                    "dropping status update of a task whose terminal update is unacknowledged");
                return Ok(outcome);
            }
        }

        tracing::debug!(%framework_id, %task_id, uuid = %update.uuid.to_base64(),
            state = update.status.state.as_str(), "queueing status update");
        if checkpoint {
            out.push(UpdateEffect::Checkpoint {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                record: UpdateRecord::Update(update.clone()),
            });
        }
        let stream = self
            .streams
            .entry(framework_id)
            .or_default()
            .entry(task_id)
            .or_insert_with(|| Stream::new(checkpoint, update.status.state));
        stream.push(update);
        // Later updates go out when the head is acknowledged, or on resume.
        if !self.paused && stream.pending.len() == 1 {
            stream.forward_head(now, self.config.retry_min, out);
        }
        Ok(UpdateOutcome::Queued)
    }

    /// Handles the framework's acknowledgement of the update `uuid` of a task, which must be the
    /// stream's head: checkpoints it and forwards the next update, if any and not paused. When
    /// the acknowledged update was terminal, the stream is closed.
    pub fn acknowledge(
        &mut self,
        now: Duration,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        uuid: &Bytes,
        out: &mut Vec<UpdateEffect>,
    ) -> Result<AckOutcome, UpdateError> {
        let unknown = || UpdateError::UnknownStream {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
        };
        let tasks = self.streams.get_mut(framework_id).ok_or_else(unknown)?;
        let stream = tasks.get_mut(task_id).ok_or_else(unknown)?;
        stream.check_ack(framework_id, task_id, uuid)?;

        if stream.checkpoint {
            out.push(UpdateEffect::Checkpoint {
                framework_id: framework_id.clone(),
                task_id: task_id.clone(),
                record: UpdateRecord::Ack { uuid: uuid.clone() },
            });
        }
        let acked = stream.pop_head();
        let acked_state = acked.status.state;
        let stream_closed = acked_state.is_terminal();
        tracing::debug!(%framework_id, %task_id, uuid = %uuid.to_base64(),
            state = acked_state.as_str(), stream_closed, "status update acknowledged");
        if stream_closed {
            // Nothing can be queued behind a terminal update (`classify`), so nothing is lost.
            debug_assert!(stream.pending.is_empty());
            tasks.remove(task_id);
            if tasks.is_empty() {
                self.streams.remove(framework_id);
            }
        } else if !self.paused {
            stream.forward_head(now, self.config.retry_min, out);
        }
        Ok(AckOutcome {
            acked_state,
            stream_closed,
        })
    }

    /// Resends every head whose resend is due, and doubles its next wait (up to `retry_max`).
    pub fn tick(&mut self, now: Duration, out: &mut Vec<UpdateEffect>) {
        if self.paused {
            return;
        }
        for (framework_id, tasks) in &mut self.streams {
            for (task_id, stream) in tasks.iter_mut() {
                let Some(retry) = stream.retry else {
                    continue;
                };
                if retry.due > now {
                    continue;
                }
                let interval = retry.interval.saturating_mul(2).min(self.config.retry_max);
                tracing::info!(%framework_id, %task_id, retry_in = ?interval,
                    "resending unacknowledged status update");
                stream.forward_head(now, interval, out);
            }
        }
    }

    /// Returns when [`tick`](Self::tick) next has something to resend, if ever.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.streams
            .values()
            .flat_map(BTreeMap::values)
            .filter_map(|stream| stream.retry.map(|retry| retry.due))
            .min()
    }

    /// Stops forwarding (the agent lost its master). Updates are still checkpointed and queued.
    pub fn pause(&mut self) {
        if !self.paused {
            tracing::info!("pausing status updates");
        }
        self.paused = true;
        for stream in self.streams.values_mut().flat_map(BTreeMap::values_mut) {
            stream.retry = None;
        }
    }

    /// Starts forwarding again (the agent registered or reregistered): resends the head of every
    /// stream now, and again after `retry_min` if it stays unacknowledged.
    pub fn resume(&mut self, now: Duration, out: &mut Vec<UpdateEffect>) {
        tracing::info!(n_streams = self.n_streams(), "resuming status updates");
        self.paused = false;
        for stream in self.streams.values_mut().flat_map(BTreeMap::values_mut) {
            stream.forward_head(now, self.config.retry_min, out);
        }
    }

    /// Tells whether forwarding is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Drops the streams of a framework that was removed, with their pending updates.
    pub fn cleanup_framework(&mut self, framework_id: &FrameworkId) {
        if let Some(tasks) = self.streams.remove(framework_id) {
            tracing::info!(%framework_id, n_streams = tasks.len(),
                "closing status update streams of framework");
        }
    }

    /// Rebuilds the stream of a task from its update log after an agent restart, by replaying
    /// the records through the same rules as [`update`](Self::update) and
    /// [`acknowledge`](Self::acknowledge). A record those would ignore (a duplicate) is skipped;
    /// one they would refuse is an error, and then nothing is recovered for the task. A stream
    /// whose terminal update was acknowledged is closed and leaves nothing. Recovered heads are
    /// forwarded on [`resume`](Self::resume), so the manager must still be paused.
    pub fn recover(
        &mut self,
        framework_id: FrameworkId,
        task_id: TaskId,
        records: Vec<UpdateRecord>,
        checkpoint: bool,
    ) -> Result<(), UpdateError> {
        if !self.paused {
            return Err(UpdateError::RecoverWhileResumed);
        }
        if self.stream(&framework_id, &task_id).is_some() {
            return Err(UpdateError::StreamExists {
                framework_id,
                task_id,
            });
        }
        let bad_record = |index: usize, reason: String| UpdateError::BadRecord {
            framework_id: framework_id.clone(),
            task_id: task_id.clone(),
            index,
            reason,
        };

        let mut current: Option<Stream> = None;
        for (index, record) in records.into_iter().enumerate() {
            match record {
                UpdateRecord::Update(mut update) => {
                    if update.framework_id != framework_id || update.status.task_id != task_id {
                        return Err(bad_record(
                            index,
                            format!(
                                "it is an update for task {} of framework {}",
                                update.status.task_id, update.framework_id
                            ),
                        ));
                    }
                    if update.uuid.is_empty() {
                        return Err(bad_record(index, "the update has no uuid".to_owned()));
                    }
                    update.status.uuid = Some(update.uuid.clone());
                    let stream =
                        current.get_or_insert_with(|| Stream::new(checkpoint, update.status.state));
                    let outcome = stream
                        .classify(&framework_id, &task_id, &update, checkpoint)
                        .map_err(|err| bad_record(index, err.to_string()))?;
                    if outcome == UpdateOutcome::Queued {
                        stream.push(update);
                    }
                }
                UpdateRecord::Ack { uuid } => {
                    let Some(stream) = current.as_mut() else {
                        return Err(bad_record(
                            index,
                            "it acknowledges an update of a closed stream".to_owned(),
                        ));
                    };
                    stream
                        .check_ack(&framework_id, &task_id, &uuid)
                        .map_err(|err| bad_record(index, err.to_string()))?;
                    if stream.pop_head().status.state.is_terminal() {
                        // Live operation closed the stream here; later records opened a new one.
                        current = None;
                    }
                }
            }
        }

        if let Some(stream) = current {
            tracing::info!(%framework_id, %task_id, n_pending = stream.pending.len(),
                "recovered status update stream");
            self.streams
                .entry(framework_id)
                .or_default()
                .insert(task_id, stream);
        }
        Ok(())
    }

    /// Returns the unacknowledged updates of a task, oldest first (as received, without the
    /// `latest_state` added when forwarding).
    pub fn pending(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Vec<&StatusUpdate> {
        self.stream(framework_id, task_id)
            .map(|stream| stream.pending.iter().collect())
            .unwrap_or_default()
    }

    /// Returns the state of the newest update the task's open stream received, if it has one.
    pub fn latest_state(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<TaskState> {
        self.stream(framework_id, task_id)
            .map(|stream| stream.latest_state)
    }

    /// Returns the (framework, task) pairs with an open stream, in order.
    pub fn streams(&self) -> impl Iterator<Item = (&FrameworkId, &TaskId)> {
        self.streams.iter().flat_map(|(framework_id, tasks)| {
            tasks.keys().map(move |task_id| (framework_id, task_id))
        })
    }

    /// Returns the number of open streams.
    pub fn n_streams(&self) -> usize {
        self.streams.values().map(BTreeMap::len).sum()
    }

    /// Returns the number of unacknowledged updates over all streams.
    pub fn n_pending(&self) -> usize {
        self.streams
            .values()
            .flat_map(BTreeMap::values)
            .map(|stream| stream.pending.len())
            .sum()
    }

    fn stream(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<&Stream> {
        self.streams.get(framework_id)?.get(task_id)
    }
}

#[cfg(test)]
mod tests {
    use strata_protocol::AgentId;
    use strata_protocol::mesos::TaskStatus;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn framework(name: &str) -> FrameworkId {
        FrameworkId::new(name).unwrap()
    }

    fn task(name: &str) -> TaskId {
        TaskId::new(name).unwrap()
    }

    fn uuid(n: u8) -> Bytes {
        Bytes::new(vec![n; 16])
    }

    fn status_update(framework_id: &str, task_id: &str, state: TaskState, n: u8) -> StatusUpdate {
        StatusUpdate {
            framework_id: framework(framework_id),
            agent_id: AgentId::new("agent-1").unwrap(),
            executor_id: None,
            status: TaskStatus::new(task(task_id), state),
            timestamp: 1_700_000_000.0,
            uuid: uuid(n),
            latest_state: None,
        }
    }

    /// Returns a manager that is registered with a master.
    fn resumed() -> StatusUpdateManager {
        let mut manager = StatusUpdateManager::new(UpdateConfig::default());
        let mut out = Vec::new();
        manager.resume(Duration::ZERO, &mut out);
        assert!(out.is_empty());
        manager
    }

    /// The forwarded updates in `out`, as (state, latest_state, uuid).
    fn forwards(out: &[UpdateEffect]) -> Vec<(TaskState, Option<TaskState>, Bytes)> {
        out.iter()
            .filter_map(|effect| match effect {
                UpdateEffect::Forward(update) => Some((
                    update.status.state,
                    update.latest_state,
                    update.uuid.clone(),
                )),
                UpdateEffect::Checkpoint { .. } => None,
            })
            .collect()
    }

    fn checkpoints(out: &[UpdateEffect]) -> Vec<UpdateRecord> {
        out.iter()
            .filter_map(|effect| match effect {
                UpdateEffect::Checkpoint { record, .. } => Some(record.clone()),
                UpdateEffect::Forward(_) => None,
            })
            .collect()
    }

    fn update(
        manager: &mut StatusUpdateManager,
        now: Duration,
        update: StatusUpdate,
    ) -> (UpdateOutcome, Vec<UpdateEffect>) {
        let mut out = Vec::new();
        let outcome = manager.update(now, update, true, &mut out).unwrap();
        (outcome, out)
    }

    fn ack(
        manager: &mut StatusUpdateManager,
        now: Duration,
        task_id: &str,
        n: u8,
    ) -> (Result<AckOutcome, UpdateError>, Vec<UpdateEffect>) {
        let mut out = Vec::new();
        let result = manager.acknowledge(now, &framework("fw"), &task(task_id), &uuid(n), &mut out);
        (result, out)
    }

    fn pending_states(manager: &StatusUpdateManager, task_id: &str) -> Vec<TaskState> {
        manager
            .pending(&framework("fw"), &task(task_id))
            .iter()
            .map(|update| update.status.state)
            .collect()
    }

    #[test]
    fn update_is_checkpointed_before_it_is_forwarded_with_its_latest_state() {
        let mut manager = resumed();
        let mut running = status_update("fw", "t1", TaskState::Running, 1);
        running.status.uuid = None;
        let (outcome, out) = update(&mut manager, Duration::ZERO, running);

        assert_eq!(outcome, UpdateOutcome::Queued);
        assert_eq!(out.len(), 2);
        let UpdateEffect::Checkpoint {
            framework_id,
            task_id,
            record: UpdateRecord::Update(checkpointed),
        } = &out[0]
        else {
            panic!("first effect is not an update checkpoint: {out:?}");
        };
        assert_eq!((framework_id, task_id), (&framework("fw"), &task("t1")));
        assert_eq!(checkpointed.status.uuid, Some(uuid(1)));
        let UpdateEffect::Forward(forwarded) = &out[1] else {
            panic!("second effect is not a forward: {out:?}");
        };
        assert_eq!(forwarded.uuid, uuid(1));
        assert_eq!(forwarded.status.uuid, Some(uuid(1)));
        assert_eq!(forwarded.latest_state, Some(TaskState::Running));
        assert_eq!(manager.next_deadline(), Some(10 * SECOND));
    }

    #[test]
    fn one_update_per_task_is_in_flight_and_the_next_goes_out_on_its_ack() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Starting, 1),
        );
        let (_, out) = update(
            &mut manager,
            SECOND,
            status_update("fw", "t1", TaskState::Running, 2),
        );
        assert_eq!(checkpoints(&out).len(), 1);
        assert!(
            forwards(&out).is_empty(),
            "second update sent before the first was acknowledged"
        );
        // Another task's stream is independent.
        let (_, out) = update(
            &mut manager,
            SECOND,
            status_update("fw", "t2", TaskState::Running, 3),
        );
        assert_eq!(forwards(&out).len(), 1);

        let (result, out) = ack(&mut manager, 2 * SECOND, "t1", 1);
        let outcome = result.unwrap();
        assert_eq!(outcome.acked_state, TaskState::Starting);
        assert!(!outcome.stream_closed);
        assert_eq!(checkpoints(&out), vec![UpdateRecord::Ack { uuid: uuid(1) }]);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Running, Some(TaskState::Running), uuid(2))]
        );
        assert!(matches!(out[0], UpdateEffect::Checkpoint { .. }));
        assert_eq!(pending_states(&manager, "t1"), vec![TaskState::Running]);
        assert_eq!(manager.n_pending(), 2);
    }

    #[test]
    fn unacknowledged_update_is_resent_with_the_same_uuid_after_retry_min() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );

        let mut out = Vec::new();
        manager.tick(9 * SECOND, &mut out);
        assert!(out.is_empty(), "resent before retry_min");
        manager.tick(10 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Running, Some(TaskState::Running), uuid(1))]
        );
        assert!(
            checkpoints(&out).is_empty(),
            "a resend is not checkpointed again"
        );
    }

    #[test]
    fn resend_carries_the_state_of_the_newest_queued_update() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        update(
            &mut manager,
            SECOND,
            status_update("fw", "t1", TaskState::Finished, 2),
        );

        let mut out = Vec::new();
        manager.tick(10 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Running, Some(TaskState::Finished), uuid(1))]
        );
        assert_eq!(
            manager.latest_state(&framework("fw"), &task("t1")),
            Some(TaskState::Finished)
        );
    }

    #[test]
    fn resend_interval_doubles_up_to_retry_max() {
        let config = UpdateConfig {
            retry_min: 10 * SECOND,
            retry_max: 60 * SECOND,
        };
        let mut manager = StatusUpdateManager::new(config);
        manager.resume(Duration::ZERO, &mut Vec::new());
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );

        let mut sent_at = vec![Duration::ZERO];
        let mut now = Duration::ZERO;
        while sent_at.len() < 7 {
            now = manager
                .next_deadline()
                .expect("an unacknowledged update has a deadline");
            let mut out = Vec::new();
            manager.tick(now, &mut out);
            assert_eq!(forwards(&out).len(), 1);
            sent_at.push(now);
        }
        let secs: Vec<u64> = sent_at.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 10, 30, 70, 130, 190, 250]);

        // An acknowledgement starts the next update's waits from retry_min again.
        manager
            .update(
                now,
                status_update("fw", "t1", TaskState::Finished, 2),
                true,
                &mut Vec::new(),
            )
            .unwrap();
        ack(&mut manager, now, "t1", 1).0.unwrap();
        assert_eq!(manager.next_deadline(), Some(now + 10 * SECOND));
    }

    #[test]
    fn late_tick_resends_once_and_waits_from_then() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        let mut out = Vec::new();
        manager.tick(100 * SECOND, &mut out);
        assert_eq!(forwards(&out).len(), 1);
        assert_eq!(manager.next_deadline(), Some(120 * SECOND));
    }

    #[test]
    fn duplicate_of_a_pending_update_is_ignored() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        let (outcome, out) = update(
            &mut manager,
            SECOND,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        assert_eq!(outcome, UpdateOutcome::Duplicate);
        assert!(out.is_empty());
        assert_eq!(pending_states(&manager, "t1"), vec![TaskState::Running]);
        // The resend schedule of the original is untouched.
        assert_eq!(manager.next_deadline(), Some(10 * SECOND));
    }

    #[test]
    fn duplicate_of_an_acknowledged_update_is_ignored() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        ack(&mut manager, SECOND, "t1", 1).0.unwrap();
        let (outcome, out) = update(
            &mut manager,
            2 * SECOND,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        assert_eq!(outcome, UpdateOutcome::Duplicate);
        assert!(out.is_empty());
        assert_eq!(manager.n_pending(), 0);
        assert_eq!(manager.next_deadline(), None);
    }

    #[test]
    fn second_terminal_update_before_the_ack_of_the_first_is_dropped() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 1),
        );
        // The framework's acknowledgement is lost; meanwhile the executor reports KILLED.
        let (outcome, out) = update(
            &mut manager,
            SECOND,
            status_update("fw", "t1", TaskState::Killed, 2),
        );
        assert_eq!(outcome, UpdateOutcome::AfterTerminal);
        assert!(
            out.is_empty(),
            "a dropped update is neither checkpointed nor forwarded"
        );
        assert_eq!(pending_states(&manager, "t1"), vec![TaskState::Finished]);

        // The resend is FINISHED, and its acknowledgement closes the stream: KILLED never leaves.
        let mut out = Vec::new();
        manager.tick(10 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Finished, Some(TaskState::Finished), uuid(1))]
        );
        let (result, out) = ack(&mut manager, 11 * SECOND, "t1", 1);
        let outcome = result.unwrap();
        assert!(outcome.stream_closed);
        assert_eq!(outcome.acked_state, TaskState::Finished);
        assert!(forwards(&out).is_empty());
        assert_eq!(manager.n_streams(), 0);
        assert_eq!(manager.next_deadline(), None);
    }

    #[test]
    fn second_terminal_update_after_the_ack_of_the_first_is_forwarded() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 1),
        );
        let outcome = ack(&mut manager, SECOND, "t1", 1).0.unwrap();
        assert!(outcome.stream_closed);
        assert_eq!(manager.latest_state(&framework("fw"), &task("t1")), None);

        let (outcome, out) = update(
            &mut manager,
            2 * SECOND,
            status_update("fw", "t1", TaskState::Killed, 2),
        );
        assert_eq!(outcome, UpdateOutcome::Queued);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Killed, Some(TaskState::Killed), uuid(2))]
        );
        assert!(
            ack(&mut manager, 3 * SECOND, "t1", 2)
                .0
                .unwrap()
                .stream_closed
        );
    }

    #[test]
    fn update_resent_after_its_stream_closed_is_forwarded_again() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 1),
        );
        assert!(ack(&mut manager, SECOND, "t1", 1).0.unwrap().stream_closed);

        let (outcome, out) = update(
            &mut manager,
            2 * SECOND,
            status_update("fw", "t1", TaskState::Finished, 1),
        );
        assert_eq!(outcome, UpdateOutcome::Queued);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Finished, Some(TaskState::Finished), uuid(1))]
        );
    }

    #[test]
    fn ack_of_another_uuid_than_the_head_is_refused_and_changes_nothing() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 2),
        );

        let (result, out) = ack(&mut manager, SECOND, "t1", 2);
        assert_eq!(
            result,
            Err(UpdateError::UnexpectedAck {
                framework_id: framework("fw"),
                task_id: task("t1"),
                uuid: uuid(2),
                expected: Some(uuid(1)),
            })
        );
        assert!(out.is_empty());
        assert_eq!(
            pending_states(&manager, "t1"),
            vec![TaskState::Running, TaskState::Finished]
        );
        assert_eq!(manager.next_deadline(), Some(10 * SECOND));
    }

    #[test]
    fn second_ack_of_an_update_is_a_duplicate_and_changes_nothing() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 2),
        );
        ack(&mut manager, SECOND, "t1", 1).0.unwrap();

        // The master relays the acknowledgement of the original and of the resend.
        let (result, out) = ack(&mut manager, 2 * SECOND, "t1", 1);
        assert!(
            matches!(result, Err(UpdateError::DuplicateAck { .. })),
            "{result:?}"
        );
        assert!(out.is_empty());
        assert_eq!(pending_states(&manager, "t1"), vec![TaskState::Finished]);
        assert_eq!(manager.next_deadline(), Some(11 * SECOND));
    }

    #[test]
    fn ack_for_a_task_without_stream_is_refused() {
        let mut manager = resumed();
        let (result, out) = ack(&mut manager, SECOND, "t1", 1);
        assert!(
            matches!(result, Err(UpdateError::UnknownStream { .. })),
            "{result:?}"
        );
        assert!(out.is_empty());

        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        ack(&mut manager, SECOND, "t1", 1).0.unwrap();
        let (result, _) = ack(&mut manager, SECOND, "t1", 9);
        assert!(
            matches!(
                result,
                Err(UpdateError::UnexpectedAck { expected: None, .. })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn paused_manager_queues_without_forwarding_and_resume_resends_every_head() {
        let mut manager = StatusUpdateManager::new(UpdateConfig::default());
        assert!(
            manager.is_paused(),
            "a new manager waits for the agent to register"
        );
        let (_, out) = update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        assert_eq!(
            checkpoints(&out).len(),
            1,
            "updates are checkpointed while paused"
        );
        assert!(forwards(&out).is_empty());
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 2),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t2", TaskState::Running, 3),
        );
        assert_eq!(manager.next_deadline(), None);
        let mut out = Vec::new();
        manager.tick(1_000 * SECOND, &mut out);
        assert!(out.is_empty());

        manager.resume(1_000 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![
                (TaskState::Running, Some(TaskState::Finished), uuid(1)),
                (TaskState::Running, Some(TaskState::Running), uuid(3)),
            ]
        );
        assert_eq!(manager.next_deadline(), Some(1_010 * SECOND));
    }

    #[test]
    fn pause_stops_resends_and_acks_while_paused_forward_nothing() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Finished, 2),
        );
        manager.pause();
        assert_eq!(manager.next_deadline(), None);
        let mut out = Vec::new();
        manager.tick(100 * SECOND, &mut out);
        assert!(out.is_empty());

        let (result, out) = ack(&mut manager, 100 * SECOND, "t1", 1);
        result.unwrap();
        assert!(forwards(&out).is_empty());
        assert_eq!(manager.next_deadline(), None);

        let mut out = Vec::new();
        manager.resume(200 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Finished, Some(TaskState::Finished), uuid(2))]
        );
    }

    #[test]
    fn cleanup_framework_drops_only_its_streams() {
        let mut manager = resumed();
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t1", TaskState::Running, 1),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("fw", "t2", TaskState::Running, 2),
        );
        update(
            &mut manager,
            Duration::ZERO,
            status_update("other", "t1", TaskState::Running, 3),
        );
        manager.cleanup_framework(&framework("fw"));

        assert_eq!(manager.n_streams(), 1);
        assert_eq!(
            manager.streams().collect::<Vec<_>>(),
            vec![(&framework("other"), &task("t1"))]
        );
        assert!(pending_states(&manager, "t1").is_empty());
        let mut out = Vec::new();
        manager.tick(10 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Running, Some(TaskState::Running), uuid(3))]
        );
    }

    #[test]
    fn non_checkpointing_stream_writes_no_records_and_refuses_a_checkpointing_update() {
        let mut manager = resumed();
        let mut out = Vec::new();
        manager
            .update(
                Duration::ZERO,
                status_update("fw", "t1", TaskState::Running, 1),
                false,
                &mut out,
            )
            .unwrap();
        manager
            .acknowledge(SECOND, &framework("fw"), &task("t1"), &uuid(1), &mut out)
            .unwrap();
        assert!(checkpoints(&out).is_empty());
        assert_eq!(forwards(&out).len(), 1);

        let mut out = Vec::new();
        let result = manager.update(
            SECOND,
            status_update("fw", "t1", TaskState::Finished, 2),
            true,
            &mut out,
        );
        assert_eq!(
            result,
            Err(UpdateError::CheckpointMismatch {
                framework_id: framework("fw"),
                task_id: task("t1"),
                expected: false,
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn update_without_uuid_is_refused() {
        let mut manager = resumed();
        let mut out = Vec::new();
        let mut running = status_update("fw", "t1", TaskState::Running, 1);
        running.uuid = Bytes::default();
        let result = manager.update(Duration::ZERO, running, true, &mut out);
        assert!(
            matches!(result, Err(UpdateError::MissingUuid { .. })),
            "{result:?}"
        );
        assert!(out.is_empty());
        assert_eq!(manager.n_streams(), 0);
    }

    #[test]
    fn pending_queue_is_bounded_per_task() {
        let mut manager = resumed();
        for n in 0..PENDING_PER_TASK_MAX {
            let mut running = status_update("fw", "t1", TaskState::Running, 0);
            running.uuid = Bytes::new((n as u64).to_be_bytes().to_vec());
            update(&mut manager, Duration::ZERO, running);
        }
        let mut out = Vec::new();
        let mut one_more = status_update("fw", "t1", TaskState::Running, 0);
        one_more.uuid = Bytes::new(b"one more".to_vec());
        let result = manager.update(SECOND, one_more, true, &mut out);
        assert!(
            matches!(result, Err(UpdateError::QueueFull { .. })),
            "{result:?}"
        );
        assert!(out.is_empty());
        assert_eq!(manager.n_pending(), PENDING_PER_TASK_MAX);
        // Other tasks are not affected.
        let (outcome, _) = update(
            &mut manager,
            SECOND,
            status_update("fw", "t2", TaskState::Running, 1),
        );
        assert_eq!(outcome, UpdateOutcome::Queued);
    }

    #[test]
    fn acknowledged_uuids_are_remembered_up_to_the_limit() {
        let mut manager = resumed();
        let uuid_of = |n: usize| Bytes::new((n as u64).to_be_bytes().to_vec());
        for n in 0..=ACKED_UUIDS_REMEMBERED_MAX {
            let mut running = status_update("fw", "t1", TaskState::Running, 0);
            running.uuid = uuid_of(n);
            update(&mut manager, Duration::ZERO, running);
            manager
                .acknowledge(
                    Duration::ZERO,
                    &framework("fw"),
                    &task("t1"),
                    &uuid_of(n),
                    &mut Vec::new(),
                )
                .unwrap();
        }
        let mut recent = status_update("fw", "t1", TaskState::Running, 0);
        recent.uuid = uuid_of(1);
        assert_eq!(
            update(&mut manager, SECOND, recent).0,
            UpdateOutcome::Duplicate
        );
        let mut forgotten = status_update("fw", "t1", TaskState::Running, 0);
        forgotten.uuid = uuid_of(0);
        assert_eq!(
            update(&mut manager, SECOND, forgotten).0,
            UpdateOutcome::Queued
        );
    }

    /// Runs a live manager through a history and returns it with the task's update log.
    fn live_history() -> (StatusUpdateManager, Vec<UpdateRecord>) {
        let mut manager = resumed();
        let mut out = Vec::new();
        for (n, state) in [(1, TaskState::Starting), (2, TaskState::Running)] {
            manager
                .update(SECOND, status_update("fw", "t1", state, n), true, &mut out)
                .unwrap();
        }
        manager
            .acknowledge(
                2 * SECOND,
                &framework("fw"),
                &task("t1"),
                &uuid(1),
                &mut out,
            )
            .unwrap();
        for (n, state) in [
            (2, TaskState::Running),
            (3, TaskState::Killing),
            (4, TaskState::Killed),
        ] {
            manager
                .update(
                    3 * SECOND,
                    status_update("fw", "t1", state, n),
                    true,
                    &mut out,
                )
                .unwrap();
        }
        (manager, checkpoints(&out))
    }

    #[test]
    fn recover_from_the_update_log_rebuilds_the_live_stream() {
        let (live, records) = live_history();
        assert_eq!(
            records.len(),
            5,
            "the duplicate RUNNING is not logged: {records:?}"
        );

        let mut recovered = StatusUpdateManager::new(UpdateConfig::default());
        recovered
            .recover(framework("fw"), task("t1"), records, true)
            .unwrap();
        let live_pending = live.pending(&framework("fw"), &task("t1"));
        assert_eq!(
            recovered.pending(&framework("fw"), &task("t1")),
            live_pending
        );
        assert_eq!(
            recovered.latest_state(&framework("fw"), &task("t1")),
            Some(TaskState::Killed)
        );
        assert_eq!(
            recovered.next_deadline(),
            None,
            "nothing is sent before the agent registers"
        );

        // The recovered stream keeps its rules: duplicates and checkpointing.
        let mut out = Vec::new();
        let outcome = recovered
            .update(
                SECOND,
                status_update("fw", "t1", TaskState::Starting, 1),
                true,
                &mut out,
            )
            .unwrap();
        assert_eq!(outcome, UpdateOutcome::Duplicate);
        recovered.resume(10 * SECOND, &mut out);
        assert_eq!(
            forwards(&out),
            vec![(TaskState::Running, Some(TaskState::Killed), uuid(2))]
        );
    }

    #[test]
    fn recover_of_a_stream_whose_terminal_update_was_acknowledged_leaves_no_stream() {
        let (mut live, mut records) = live_history();
        let mut out = Vec::new();
        for n in [2, 3, 4] {
            live.acknowledge(
                4 * SECOND,
                &framework("fw"),
                &task("t1"),
                &uuid(n),
                &mut out,
            )
            .unwrap();
        }
        records.extend(checkpoints(&out));
        assert_eq!(live.n_streams(), 0);

        let mut recovered = StatusUpdateManager::new(UpdateConfig::default());
        recovered
            .recover(framework("fw"), task("t1"), records.clone(), true)
            .unwrap();
        assert_eq!(recovered.n_streams(), 0);

        // A later update (after the stream closed) opens a new stream in the same log.
        let mut out = Vec::new();
        live.update(
            5 * SECOND,
            status_update("fw", "t1", TaskState::Lost, 5),
            true,
            &mut out,
        )
        .unwrap();
        records.extend(checkpoints(&out));
        let mut recovered = StatusUpdateManager::new(UpdateConfig::default());
        recovered
            .recover(framework("fw"), task("t1"), records, true)
            .unwrap();
        assert_eq!(pending_states(&recovered, "t1"), vec![TaskState::Lost]);
    }

    #[test]
    fn recover_refuses_records_live_operation_cannot_have_written() {
        let running = status_update("fw", "t1", TaskState::Running, 1);
        let cases = [
            vec![UpdateRecord::Ack { uuid: uuid(1) }],
            vec![
                UpdateRecord::Update(running.clone()),
                UpdateRecord::Ack { uuid: uuid(2) },
            ],
            vec![UpdateRecord::Update(status_update(
                "fw",
                "t2",
                TaskState::Running,
                1,
            ))],
            vec![
                UpdateRecord::Update(running.clone()),
                UpdateRecord::Ack { uuid: uuid(1) },
                UpdateRecord::Ack { uuid: uuid(1) },
            ],
        ];
        for records in cases {
            let mut manager = StatusUpdateManager::new(UpdateConfig::default());
            let result = manager.recover(framework("fw"), task("t1"), records.clone(), true);
            assert!(
                matches!(result, Err(UpdateError::BadRecord { .. })),
                "{records:?}: {result:?}"
            );
            assert_eq!(manager.n_streams(), 0, "a refused log recovers nothing");
        }
    }

    #[test]
    fn recover_needs_a_paused_manager_and_no_stream_for_the_task() {
        let records = vec![UpdateRecord::Update(status_update(
            "fw",
            "t1",
            TaskState::Running,
            1,
        ))];
        let mut manager = resumed();
        assert_eq!(
            manager.recover(framework("fw"), task("t1"), records.clone(), true),
            Err(UpdateError::RecoverWhileResumed)
        );
        let mut manager = StatusUpdateManager::new(UpdateConfig::default());
        manager
            .recover(framework("fw"), task("t1"), records.clone(), true)
            .unwrap();
        let result = manager.recover(framework("fw"), task("t1"), records, true);
        assert!(
            matches!(result, Err(UpdateError::StreamExists { .. })),
            "{result:?}"
        );
        assert_eq!(manager.n_pending(), 1);
    }

    #[test]
    fn update_records_round_trip_through_messagepack_and_json() {
        let mut running = status_update("fw", "t1", TaskState::Running, 1);
        running.status.uuid = Some(uuid(1));
        let records = vec![
            UpdateRecord::Update(running),
            UpdateRecord::Ack { uuid: uuid(1) },
        ];
        for record in records {
            let packed = rmp_serde::to_vec_named(&record).unwrap();
            assert_eq!(
                rmp_serde::from_slice::<UpdateRecord>(&packed).unwrap(),
                record
            );
        }
    }
}
