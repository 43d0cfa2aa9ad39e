//! A model of an agent, reduced to what the master sees of one.
//!
//! It registers (retrying with backoff until answered), answers pings, runs tasks on a timer
//! (STARTING, RUNNING, then FINISHED or FAILED), kills them, and delivers status updates the way
//! the real status update manager does: one update per task in flight, resent with backoff until
//! acknowledged, in order. Tasks and unacknowledged updates are "checkpointed": they survive a
//! restart, after which the agent reregisters with them. It notices a master that stopped
//! pinging it, and then reregisters, as a real agent does after a partition.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{
    AgentInfo, FrameworkCapabilityType, FrameworkInfo, Task, TaskInfo, TaskState, TaskStatus,
    TaskStatusReason, TaskStatusSource,
};
use strata_protocol::{AgentId, Bytes, FrameworkId, Pid, Resources, TaskId};

use super::UNIX_ORIGIN;
use super::rng::SimRng;

/// The first wait before resending an unanswered registration or update; doubles up to
/// `RETRY_MAX`. Mesos waits 10 s at first; shorter keeps the simulated runs short.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No agent ID yet: sending RegisterAgent.
    Registering,
    /// Has an ID, waiting for AgentReregistered.
    Reregistering,
    Registered,
}

#[derive(Debug, Clone)]
struct AgentTask {
    info: TaskInfo,
    /// The latest state, which the pending updates may not have reported yet.
    state: TaskState,
    /// When the task ends on its own, and how.
    ends: Option<(Duration, TaskState)>,
}

#[derive(Debug, Clone)]
struct PendingUpdate {
    state: TaskState,
    reason: Option<TaskStatusReason>,
    uuid: Bytes,
}

/// The status update stream of one task.
#[derive(Debug, Clone, Default)]
struct Stream {
    pending: VecDeque<PendingUpdate>,
    /// When the head is resent if still unacknowledged; `None` until it was first sent.
    retry_at: Option<Duration>,
    backoff: Duration,
}

type Key = (FrameworkId, TaskId);

pub struct AgentModel {
    pub idx: usize,
    pub pid: Pid,
    info: AgentInfo,
    rng: SimRng,
    pub agent_id: Option<AgentId>,
    phase: Phase,
    /// When to (re)send the registration.
    register_at: Option<Duration>,
    register_backoff: Duration,
    last_ping: Duration,
    /// Silence from the master after which the agent reregisters.
    master_timeout: Duration,
    frameworks: BTreeMap<FrameworkId, FrameworkInfo>,
    tasks: BTreeMap<Key, AgentTask>,
    /// Every task this agent ever heard of, so that a duplicated or late RunTask never starts a
    /// task twice; with the final state of the ones done.
    seen: BTreeMap<Key, Option<TaskState>>,
    streams: BTreeMap<Key, Stream>,
    shut_down: BTreeSet<FrameworkId>,
    next_uuid: u64,
    pub restarts: u64,
}

impl AgentModel {
    pub fn new(idx: usize, rng: SimRng, resources: &Resources, now: Duration) -> AgentModel {
        let pid = agent_pid(idx);
        let mut info: AgentInfo =
            serde_json::from_value(serde_json::json!({"hostname": format!("host-{idx}")}))
                .expect("a hostname makes an agent info");
        info.resources = resources.to_wire();
        AgentModel {
            idx,
            pid,
            info,
            rng,
            agent_id: None,
            phase: Phase::Registering,
            register_at: Some(now),
            register_backoff: RETRY_MIN,
            last_ping: now,
            master_timeout: Duration::from_secs(75),
            frameworks: BTreeMap::new(),
            tasks: BTreeMap::new(),
            seen: BTreeMap::new(),
            streams: BTreeMap::new(),
            shut_down: BTreeSet::new(),
            next_uuid: 0,
            restarts: 0,
        }
    }

    pub fn is_registered(&self) -> bool {
        self.phase == Phase::Registered
    }

    /// Returns true if the agent has the task and it is not terminal.
    pub fn runs(&self, framework_id: &FrameworkId, task_id: &TaskId) -> bool {
        self.tasks
            .get(&(framework_id.clone(), task_id.clone()))
            .is_some_and(|task| !task.state.is_terminal())
    }

    /// Returns the tasks the agent runs (not terminal).
    pub fn live_tasks(&self) -> impl Iterator<Item = &Key> + '_ {
        self.tasks
            .iter()
            .filter(|(_, task)| !task.state.is_terminal())
            .map(|(key, _)| key)
    }

    /// Returns true when no update waits for an acknowledgement.
    pub fn updates_drained(&self) -> bool {
        self.streams
            .values()
            .all(|stream| stream.pending.is_empty())
    }

    /// Returns when `on_timer` next has something to do.
    pub fn next_timer(&self) -> Option<Duration> {
        let mut next = self.register_at;
        let mut consider = |at: Duration| next = Some(next.map_or(at, |n: Duration| n.min(at)));
        if self.phase == Phase::Registered {
            consider(self.last_ping + self.master_timeout);
            for stream in self.streams.values() {
                if let Some(at) = stream.retry_at {
                    consider(at);
                }
            }
        }
        for task in self.tasks.values() {
            if let Some((at, _)) = task.ends {
                consider(at);
            }
        }
        next
    }

    /// Fires the timers due at `now`; messages for the master go to `out`.
    pub fn on_timer(&mut self, now: Duration, out: &mut Vec<Message>) {
        if self.register_at.is_some_and(|at| at <= now) {
            self.send_registration(now, out);
        }
        if self.phase == Phase::Registered && self.last_ping + self.master_timeout <= now {
            tracing::debug!(agent = self.idx, "no ping from the master: reregistering");
            self.reregister(now);
        }
        let ended: Vec<(Key, TaskState)> = self
            .tasks
            .iter()
            .filter_map(|(key, task)| match task.ends {
                Some((at, state)) if at <= now => Some((key.clone(), state)),
                _ => None,
            })
            .collect();
        for (key, state) in ended {
            self.transition(now, &key, state, None, out);
        }
        if self.phase == Phase::Registered {
            let due: Vec<Key> = self
                .streams
                .iter()
                .filter(|(_, stream)| stream.retry_at.is_some_and(|at| at <= now))
                .map(|(key, _)| key.clone())
                .collect();
            for key in due {
                self.send_head(now, &key, out);
            }
        }
    }

    /// The agent process restarted: in-memory state is lost, checkpointed tasks and updates
    /// are not, and it reregisters (or registers, if it never got an ID).
    pub fn restart(&mut self, now: Duration) {
        self.restarts += 1;
        for stream in self.streams.values_mut() {
            stream.retry_at = None;
            stream.backoff = RETRY_MIN;
        }
        self.reregister(now);
    }

    /// Starts over as if the link to the master broke: reregister.
    pub fn reregister(&mut self, now: Duration) {
        self.phase = if self.agent_id.is_some() {
            Phase::Reregistering
        } else {
            Phase::Registering
        };
        self.register_at = Some(now);
        self.register_backoff = RETRY_MIN;
    }

    fn send_registration(&mut self, now: Duration, out: &mut Vec<Message>) {
        let message = match &self.agent_id {
            None => Message::from(internal::RegisterAgent {
                agent_info: self.info.clone(),
                checkpointed_resources: Vec::new(),
                version: "sim".into(),
                capabilities: Vec::new(),
            }),
            Some(agent_id) => {
                let mut info = self.info.clone();
                info.id = Some(agent_id.clone());
                let tasks = self.tasks_report(agent_id);
                let frameworks = self
                    .frameworks
                    .iter()
                    .filter(|(id, _)| tasks.iter().any(|task| &task.framework_id == *id))
                    .map(|(_, info)| info.clone())
                    .collect();
                Message::from(internal::ReregisterAgent {
                    agent_info: info,
                    checkpointed_resources: Vec::new(),
                    executor_infos: Vec::new(),
                    tasks,
                    frameworks,
                    version: "sim".into(),
                    capabilities: Vec::new(),
                })
            }
        };
        out.push(message);
        let jitter = self.rng.duration(Duration::ZERO, self.register_backoff / 2);
        self.register_at = Some(now + self.register_backoff + jitter);
        self.register_backoff = (self.register_backoff * 2).min(RETRY_MAX);
    }

    /// Every task the agent holds, terminal ones with unacknowledged updates included, as
    /// ReregisterAgent reports them.
    fn tasks_report(&self, agent_id: &AgentId) -> Vec<Task> {
        self.tasks
            .iter()
            .map(|((framework_id, task_id), task)| Task {
                name: task.info.name.clone(),
                task_id: task_id.clone(),
                framework_id: framework_id.clone(),
                executor_id: None,
                agent_id: agent_id.clone(),
                state: task.state,
                resources: task.info.resources.clone(),
                statuses: Vec::new(),
                status_update_state: None,
                status_update_uuid: None,
                labels: None,
                discovery: None,
                container: None,
                health_check: None,
                kill_policy: None,
                user: None,
                limits: Default::default(),
            })
            .collect()
    }

    /// Handles one message from the master; answers go to `out`.
    pub fn on_message(&mut self, now: Duration, message: Message, out: &mut Vec<Message>) {
        match message {
            Message::Ping(ping) => {
                self.last_ping = now;
                out.push(Message::Pong(internal::Pong { seq: ping.seq }));
            }
            Message::AgentRegistered(registered) if self.phase == Phase::Registering => {
                self.agent_id = Some(registered.agent_id);
                self.registered(now, registered.connection, out);
            }
            Message::AgentReregistered(reregistered)
                if self.phase == Phase::Reregistering
                    && self.agent_id.as_ref() == Some(&reregistered.agent_id) =>
            {
                self.registered(now, reregistered.connection, out);
                for reconcile in reregistered.reconciliations {
                    self.reconcile(now, reconcile, out);
                }
            }
            Message::ReconcileTasks(reconcile) => self.reconcile(now, *reconcile, out),
            Message::RunTask(run) => self.run_task(now, *run, out),
            Message::KillTask(kill) => {
                let key = (kill.framework_id, kill.task_id);
                if self.runs(&key.0, &key.1) {
                    self.transition(now, &key, TaskState::Killed, None, out);
                } else if !self.seen.contains_key(&key) {
                    // Never heard of it: the RunTask was lost or is late. It must not start
                    // later, and the framework must hear that it never will.
                    let state = self.unknown_task_state(&key.0);
                    self.track_foreign(now, &key, state, TaskStatusReason::ReasonTaskUnknown, out);
                }
            }
            Message::StatusUpdateAcknowledgement(ack) => self.acknowledged(now, ack, out),
            Message::ShutdownFramework(shutdown) => self.shutdown_framework(&shutdown.framework_id),
            Message::ShutdownAgent(_) => self.wipe(now),
            _ => {}
        }
    }

    fn registered(
        &mut self,
        now: Duration,
        connection: internal::MasterAgentConnection,
        out: &mut Vec<Message>,
    ) {
        self.phase = Phase::Registered;
        self.register_at = None;
        self.last_ping = now;
        // Twice the master's own patience, so that the master gives up first, as in Mesos.
        self.master_timeout =
            Duration::from_secs_f64(connection.total_ping_timeout_seconds.max(1.0) * 2.0);
        let keys: Vec<Key> = self.streams.keys().cloned().collect();
        for key in keys {
            if let Some(stream) = self.streams.get_mut(&key) {
                stream.backoff = RETRY_MIN;
            }
            self.send_head(now, &key, out);
        }
    }

    fn run_task(&mut self, now: Duration, run: internal::RunTask, out: &mut Vec<Message>) {
        let Some(framework_id) = run.framework.id.clone() else {
            return;
        };
        if self.agent_id.as_ref() != Some(&run.task.agent_id) {
            // Not registered yet (the RunTask overtook AgentRegistered, or that was lost), or
            // meant for the agent this one was before the master forgot it: a real agent
            // cannot tell the task is its own, and drops it. The master learns on
            // reregistration, when the agent reports it does not know the task.
            return;
        }
        let key = (framework_id.clone(), run.task.task_id.clone());
        if self.seen.contains_key(&key) || self.shut_down.contains(&framework_id) {
            return;
        }
        self.frameworks.insert(framework_id, run.framework);
        self.seen.insert(key.clone(), None);
        let lifetime = self
            .rng
            .duration(Duration::from_secs(1), Duration::from_secs(12));
        let end = if self.rng.chance(0.8) {
            TaskState::Finished
        } else {
            TaskState::Failed
        };
        self.tasks.insert(
            key.clone(),
            AgentTask {
                info: run.task,
                state: TaskState::Staging,
                ends: Some((now + lifetime, end)),
            },
        );
        self.transition(now, &key, TaskState::Starting, None, out);
        self.transition(now, &key, TaskState::Running, None, out);
    }

    /// Moves a task to `state` and queues the update that says so.
    fn transition(
        &mut self,
        now: Duration,
        key: &Key,
        state: TaskState,
        reason: Option<TaskStatusReason>,
        out: &mut Vec<Message>,
    ) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.state.is_terminal() {
            return;
        }
        task.state = state;
        if state.is_terminal() {
            task.ends = None;
            self.seen.insert(key.clone(), Some(state));
        }
        self.queue_update(now, key, state, reason, out);
    }

    fn queue_update(
        &mut self,
        now: Duration,
        key: &Key,
        state: TaskState,
        reason: Option<TaskStatusReason>,
        out: &mut Vec<Message>,
    ) {
        self.next_uuid += 1;
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&(self.idx as u64).to_be_bytes());
        uuid[8..].copy_from_slice(&self.next_uuid.to_be_bytes());
        let stream = self.streams.entry(key.clone()).or_default();
        stream.pending.push_back(PendingUpdate {
            state,
            reason,
            uuid: Bytes::new(uuid.to_vec()),
        });
        if stream.pending.len() == 1 && self.phase == Phase::Registered {
            stream.backoff = RETRY_MIN;
            self.send_head(now, key, out);
        }
    }

    /// Sends (or resends) the oldest unacknowledged update of a task.
    fn send_head(&mut self, now: Duration, key: &Key, out: &mut Vec<Message>) {
        let (Some(agent_id), Some(stream)) = (self.agent_id.clone(), self.streams.get_mut(key))
        else {
            return;
        };
        let Some(head) = stream.pending.front() else {
            stream.retry_at = None;
            return;
        };
        let latest = self.tasks.get(key).map_or(head.state, |task| task.state);
        let mut status = TaskStatus::new(key.1.clone(), head.state);
        status.source = Some(TaskStatusSource::Executor);
        status.reason = head.reason;
        status.agent_id = Some(agent_id.clone());
        status.uuid = Some(head.uuid.clone());
        status.timestamp = Some(UNIX_ORIGIN + now.as_secs_f64());
        out.push(Message::from(internal::StatusUpdate {
            framework_id: key.0.clone(),
            agent_id,
            executor_id: None,
            status,
            timestamp: UNIX_ORIGIN + now.as_secs_f64(),
            uuid: head.uuid.clone(),
            latest_state: Some(latest),
        }));
        stream.retry_at = Some(now + stream.backoff);
        stream.backoff = (stream.backoff * 2).min(RETRY_MAX);
    }

    fn acknowledged(
        &mut self,
        now: Duration,
        ack: internal::StatusUpdateAcknowledgement,
        out: &mut Vec<Message>,
    ) {
        let key = (ack.framework_id, ack.task_id);
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        if stream
            .pending
            .front()
            .is_none_or(|head| head.uuid != ack.uuid)
        {
            // A duplicate, or an acknowledgement of an update already acknowledged.
            return;
        }
        stream.pending.pop_front();
        stream.backoff = RETRY_MIN;
        if stream.pending.is_empty() {
            self.streams.remove(&key);
            if self
                .tasks
                .get(&key)
                .is_some_and(|task| task.state.is_terminal())
            {
                // The framework knows the end: the task can be forgotten (but not its ID).
                self.tasks.remove(&key);
            }
        } else {
            self.send_head(now, &key, out);
        }
    }

    /// Answers the master's list of tasks it believes are here: each unknown one is reported
    /// dropped (or lost, for frameworks that are not partition-aware), each finished one with
    /// its final state again.
    fn reconcile(
        &mut self,
        now: Duration,
        reconcile: internal::ReconcileTasks,
        out: &mut Vec<Message>,
    ) {
        let framework_id = reconcile.framework_id;
        if let Some(info) = reconcile.framework {
            self.frameworks.entry(framework_id.clone()).or_insert(info);
        }
        for status in reconcile.statuses {
            let key = (framework_id.clone(), status.task_id);
            if self.tasks.contains_key(&key) {
                continue;
            }
            let (state, reason) = match self.seen.get(&key) {
                Some(Some(done)) => (*done, TaskStatusReason::ReasonReconciliation),
                _ => (
                    self.unknown_task_state(&framework_id),
                    TaskStatusReason::ReasonReconciliation,
                ),
            };
            self.track_foreign(now, &key, state, reason, out);
        }
    }

    /// Records a task that ends without having run here, so that its update is delivered
    /// reliably like any other.
    fn track_foreign(
        &mut self,
        now: Duration,
        key: &Key,
        state: TaskState,
        reason: TaskStatusReason,
        out: &mut Vec<Message>,
    ) {
        let info: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": key.1.as_str(),
            "task_id": {"value": key.1.as_str()},
            "agent_id": {"value": self.agent_id.as_ref().map_or("unknown", |id| id.as_str())},
        }))
        .expect("a minimal task info");
        self.seen.insert(key.clone(), Some(state));
        self.tasks.insert(
            key.clone(),
            AgentTask {
                info,
                state,
                ends: None,
            },
        );
        self.queue_update(now, key, state, Some(reason), out);
    }

    fn unknown_task_state(&self, framework_id: &FrameworkId) -> TaskState {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|info| info.has_capability(FrameworkCapabilityType::PartitionAware));
        if partition_aware {
            TaskState::Dropped
        } else {
            TaskState::Lost
        }
    }

    /// Kills the framework's tasks and forgets their updates: the master removed the framework,
    /// so nobody would acknowledge them.
    fn shutdown_framework(&mut self, framework_id: &FrameworkId) {
        self.shut_down.insert(framework_id.clone());
        self.tasks.retain(|(fw, _), _| fw != framework_id);
        self.streams.retain(|(fw, _), _| fw != framework_id);
    }

    /// The master told the agent to go away for good: it starts over as a new agent.
    fn wipe(&mut self, now: Duration) {
        tracing::debug!(
            agent = self.idx,
            "agent shut down by the master; starting over"
        );
        self.agent_id = None;
        self.tasks.clear();
        self.streams.clear();
        self.frameworks.clear();
        self.reregister(now);
    }
}

/// The pid of agent `idx`; it stays the same across restarts, like `agent@ip:port`.
pub fn agent_pid(idx: usize) -> Pid {
    Pid::new(
        "agent",
        format!("10.0.{}.{}", idx / 250, idx % 250 + 1),
        5051,
    )
    .expect("a valid agent pid")
}
