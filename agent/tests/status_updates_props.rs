//! Property tests of the status update manager: random interleavings of executor updates (new
//! ones and resends), acknowledgements as the master relays them, clock ticks, lost and regained
//! masters, and agent restarts recovered from the update log written so far.
//!
//! After every step the test checks, per task, that the updates forwarded so far (deduplicated
//! by uuid, in first-send order) are a prefix of the updates the manager accepted, that at most
//! one forwarded update is unacknowledged, that a checkpointing task's update was logged before
//! it was first forwarded, and that recovering from the log gives the live manager's pending
//! updates. At the end, after the master is regained and acknowledges everything, every accepted
//! update of a surviving task has been forwarded, in order.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use proptest::prelude::*;
use strata_agent::status_updates::{
    StatusUpdateManager, UpdateConfig, UpdateEffect, UpdateError, UpdateOutcome, UpdateRecord,
};
use strata_protocol::internal::StatusUpdate;
use strata_protocol::mesos::TaskStatus;
use strata_protocol::{AgentId, Bytes, FrameworkId, TaskId, TaskState};

/// The tasks of the runs: (framework, task, whether the framework checkpoints).
const TASKS: [(&str, &str, bool); 4] = [
    ("fw-checkpoint", "t1", true),
    ("fw-checkpoint", "t2", true),
    ("fw-memory", "t1", false),
    ("fw-memory", "t2", false),
];

const CONFIG: UpdateConfig = UpdateConfig {
    retry_min: Duration::from_secs(10),
    retry_max: Duration::from_secs(80),
};

#[derive(Debug, Clone)]
enum Op {
    /// The executor (or the agent) sends a new update.
    Update { task: usize, state: TaskState },
    /// The executor resends an update of the current stream it already sent.
    Resend { task: usize, pick: usize },
    /// The master relays the acknowledgement of the last update it received for the task.
    Ack { task: usize },
    /// An acknowledgement of some update the master received earlier arrives late.
    StaleAck { task: usize, pick: usize },
    /// Time passes; the manager is ticked at each deadline on the way, as the agent's timer does.
    Advance { secs: u64 },
    /// The agent loses its master.
    Pause,
    /// The agent (re)registers.
    Resume,
    /// The agent restarts and recovers the streams of checkpointing frameworks from their logs.
    Restart,
}

fn state_strategy() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        3 => Just(TaskState::Running),
        1 => Just(TaskState::Starting),
        1 => Just(TaskState::Killing),
        1 => Just(TaskState::Finished),
        1 => Just(TaskState::Killed),
        1 => Just(TaskState::Failed),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let task = 0..TASKS.len();
    prop_oneof![
        6 => (task.clone(), state_strategy()).prop_map(|(task, state)| Op::Update { task, state }),
        2 => (task.clone(), any::<usize>()).prop_map(|(task, pick)| Op::Resend { task, pick }),
        6 => task.clone().prop_map(|task| Op::Ack { task }),
        1 => (task, any::<usize>()).prop_map(|(task, pick)| Op::StaleAck { task, pick }),
        3 => (1..200u64).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Pause),
        2 => Just(Op::Resume),
        1 => Just(Op::Restart),
    ]
}

/// What the test knows of one task, and what it expects of the manager.
#[derive(Debug, Default)]
struct TaskModel {
    /// Every update the manager accepted, in order, over all the task's streams.
    accepted: Vec<Bytes>,
    /// Forwarded uuids, each once, in the order they were first forwarded.
    forwarded: Vec<Bytes>,
    /// Forwarded uuids whose acknowledgement the manager accepted.
    acked: BTreeSet<Bytes>,
    /// The uuid of the update the master received last, which it acknowledges.
    last_forwarded: Option<Bytes>,
    /// Uuids written to the log as updates.
    checkpointed: BTreeSet<Bytes>,
    /// The task's update log.
    log: Vec<UpdateRecord>,
    /// The expected pending queue of the open stream: (uuid, state).
    pending: VecDeque<(Bytes, TaskState)>,
    /// The updates the open stream received, for resends.
    stream_received: Vec<(Bytes, TaskState)>,
    /// The state of the newest update of the open stream.
    latest: Option<TaskState>,
    /// A task of a non-checkpointing framework, lost in an agent restart.
    lost: bool,
}

struct Harness {
    manager: StatusUpdateManager,
    now: Duration,
    registered: bool,
    next_uuid: u64,
    tasks: Vec<TaskModel>,
}

fn ids(task: usize) -> (FrameworkId, TaskId) {
    let (framework_id, task_id, _) = TASKS[task];
    (
        FrameworkId::new(framework_id).unwrap(),
        TaskId::new(task_id).unwrap(),
    )
}

fn task_index(framework_id: &FrameworkId, task_id: &TaskId) -> usize {
    TASKS
        .iter()
        .position(|(fw, task, _)| *fw == framework_id.as_str() && *task == task_id.as_str())
        .expect("effect for a known task")
}

fn checkpoints(task: usize) -> bool {
    TASKS[task].2
}

fn status_update(task: usize, state: TaskState, uuid: Bytes) -> StatusUpdate {
    let (framework_id, task_id) = ids(task);
    StatusUpdate {
        framework_id,
        agent_id: AgentId::new("agent-1").unwrap(),
        executor_id: None,
        status: TaskStatus::new(task_id, state),
        timestamp: 1_700_000_000.0,
        uuid,
        latest_state: None,
    }
}

impl Harness {
    fn new() -> Self {
        Self {
            manager: StatusUpdateManager::new(CONFIG),
            now: Duration::ZERO,
            registered: false,
            next_uuid: 0,
            tasks: (0..TASKS.len()).map(|_| TaskModel::default()).collect(),
        }
    }

    /// Applies the effects in order, as the agent would, checking each.
    fn execute(&mut self, out: Vec<UpdateEffect>) {
        for effect in out {
            match effect {
                UpdateEffect::Checkpoint {
                    framework_id,
                    task_id,
                    record,
                } => {
                    let task = task_index(&framework_id, &task_id);
                    assert!(checkpoints(task), "checkpoint of a non-checkpointing task");
                    let model = &mut self.tasks[task];
                    if let UpdateRecord::Update(update) = &record {
                        model.checkpointed.insert(update.uuid.clone());
                    }
                    model.log.push(record);
                }
                UpdateEffect::Forward(update) => {
                    assert!(self.registered, "forwarded while no master: {update:?}");
                    let task = task_index(&update.framework_id, &update.status.task_id);
                    let model = &mut self.tasks[task];
                    if checkpoints(task) {
                        assert!(
                            model.checkpointed.contains(&update.uuid),
                            "forwarded before it was checkpointed: {update:?}"
                        );
                    }
                    let head = model.pending.front().map(|(uuid, _)| uuid);
                    assert_eq!(Some(&update.uuid), head, "only the head is forwarded");
                    assert_eq!(update.status.uuid.as_ref(), Some(&update.uuid));
                    assert_eq!(update.latest_state, model.latest);
                    if !model.forwarded.contains(&update.uuid) {
                        model.forwarded.push(update.uuid.clone());
                    }
                    model.last_forwarded = Some(update.uuid);
                }
            }
        }
    }

    fn update(&mut self, task: usize, state: TaskState, uuid: Bytes) {
        let model = &self.tasks[task];
        let expected = if model.stream_received.iter().any(|(seen, _)| *seen == uuid) {
            UpdateOutcome::Duplicate
        } else if model
            .pending
            .back()
            .is_some_and(|(_, state)| state.is_terminal())
        {
            UpdateOutcome::AfterTerminal
        } else {
            UpdateOutcome::Queued
        };
        let mut out = Vec::new();
        let outcome = self
            .manager
            .update(
                self.now,
                status_update(task, state, uuid.clone()),
                checkpoints(task),
                &mut out,
            )
            .unwrap();
        assert_eq!(outcome, expected, "update {state:?} of task {task}");
        if outcome == UpdateOutcome::Queued {
            let model = &mut self.tasks[task];
            model.accepted.push(uuid.clone());
            model.pending.push_back((uuid.clone(), state));
            model.stream_received.push((uuid, state));
            model.latest = Some(state);
        } else {
            assert!(out.is_empty(), "an ignored update has effects: {out:?}");
        }
        self.execute(out);
    }

    fn acknowledge(&mut self, task: usize, uuid: Bytes) {
        let (framework_id, task_id) = ids(task);
        let head = self.tasks[task].pending.front().cloned();
        let mut out = Vec::new();
        let result = self
            .manager
            .acknowledge(self.now, &framework_id, &task_id, &uuid, &mut out);
        match head {
            Some((head_uuid, head_state)) if head_uuid == uuid => {
                let outcome = result.expect("the head's acknowledgement is accepted");
                assert_eq!(outcome.acked_state, head_state);
                assert_eq!(outcome.stream_closed, head_state.is_terminal());
                let model = &mut self.tasks[task];
                model.pending.pop_front();
                model.acked.insert(uuid);
                if outcome.stream_closed {
                    assert!(model.pending.is_empty());
                    model.stream_received.clear();
                    model.latest = None;
                }
            }
            _ => {
                let err = result.expect_err("only the head can be acknowledged");
                assert!(
                    matches!(
                        err,
                        UpdateError::UnknownStream { .. }
                            | UpdateError::UnexpectedAck { .. }
                            | UpdateError::DuplicateAck { .. }
                    ),
                    "{err}"
                );
                assert!(out.is_empty(), "a refused ack has effects: {out:?}");
            }
        }
        self.execute(out);
    }

    /// Moves the clock, ticking at every deadline on the way as the agent's timer would.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.manager.next_deadline() {
            if deadline > target {
                break;
            }
            assert!(deadline >= self.now, "deadline in the past");
            self.now = deadline;
            let mut out = Vec::new();
            self.manager.tick(self.now, &mut out);
            assert!(!out.is_empty(), "a deadline with nothing to do");
            self.execute(out);
        }
        self.now = target;
        let mut out = Vec::new();
        self.manager.tick(self.now, &mut out);
        assert!(out.is_empty(), "work due before the deadline said: {out:?}");
    }

    fn resume(&mut self) {
        self.registered = true;
        let mut out = Vec::new();
        self.manager.resume(self.now, &mut out);
        self.execute(out);
    }

    /// Builds a manager from the logs of the checkpointing tasks, as an agent does at start.
    fn recover(&self) -> StatusUpdateManager {
        let mut manager = StatusUpdateManager::new(CONFIG);
        for (task, model) in self.tasks.iter().enumerate() {
            if checkpoints(task) {
                let (framework_id, task_id) = ids(task);
                manager
                    .recover(framework_id, task_id, model.log.clone(), true)
                    .expect("the log written by live operation replays");
            }
        }
        manager
    }

    fn restart(&mut self) {
        self.manager = self.recover();
        self.registered = false;
        for (task, model) in self.tasks.iter_mut().enumerate() {
            if !checkpoints(task) {
                // The framework's tasks die with the agent, and so do their streams.
                model.lost = true;
                model.pending.clear();
            }
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Update { task, state } => {
                if self.tasks[task].lost {
                    return;
                }
                self.next_uuid += 1;
                let uuid = Bytes::new(self.next_uuid.to_be_bytes().to_vec());
                self.update(task, state, uuid);
            }
            Op::Resend { task, pick } => {
                let received = &self.tasks[task].stream_received;
                if self.tasks[task].lost || received.is_empty() {
                    return;
                }
                let (uuid, state) = received[pick % received.len()].clone();
                self.update(task, state, uuid);
            }
            Op::Ack { task } => {
                if let Some(uuid) = self.tasks[task].last_forwarded.clone() {
                    self.acknowledge(task, uuid);
                }
            }
            Op::StaleAck { task, pick } => {
                let forwarded = &self.tasks[task].forwarded;
                if !forwarded.is_empty() {
                    let uuid = forwarded[pick % forwarded.len()].clone();
                    self.acknowledge(task, uuid);
                }
            }
            Op::Advance { secs } => self.advance(Duration::from_secs(secs)),
            Op::Pause => {
                self.registered = false;
                self.manager.pause();
            }
            Op::Resume => self.resume(),
            Op::Restart => self.restart(),
        }
    }

    fn check(&self) {
        let recovered = self.recover();
        for (task, model) in self.tasks.iter().enumerate() {
            assert!(
                model.accepted.starts_with(&model.forwarded),
                "task {task}: forwarded {:?} is not a prefix of accepted {:?}",
                model.forwarded,
                model.accepted
            );
            let outstanding = model
                .forwarded
                .iter()
                .filter(|uuid| !model.acked.contains(*uuid))
                .count();
            if !model.lost {
                assert!(
                    outstanding <= 1,
                    "task {task}: {outstanding} updates in flight"
                );
            }

            let (framework_id, task_id) = ids(task);
            let live: Vec<&StatusUpdate> = self.manager.pending(&framework_id, &task_id);
            let live_uuids: Vec<&Bytes> = live.iter().map(|update| &update.uuid).collect();
            let model_uuids: Vec<&Bytes> = model.pending.iter().map(|(uuid, _)| uuid).collect();
            assert_eq!(live_uuids, model_uuids, "task {task}: pending");
            assert_eq!(
                self.manager.latest_state(&framework_id, &task_id),
                model.latest.filter(|_| !model.lost),
                "task {task}: latest state"
            );
            if checkpoints(task) {
                assert_eq!(
                    recovered.pending(&framework_id, &task_id),
                    live,
                    "task {task}: recovered pending"
                );
                assert_eq!(
                    recovered.latest_state(&framework_id, &task_id),
                    self.manager.latest_state(&framework_id, &task_id),
                    "task {task}: recovered latest state"
                );
            }
        }
        let has_pending = self.manager.n_pending() > 0;
        assert_eq!(
            self.manager.next_deadline().is_some(),
            self.registered && has_pending,
            "a resend is scheduled exactly while registered with updates pending"
        );
    }

    /// Regains the master and acknowledges everything, then checks complete, ordered delivery.
    fn drain(&mut self) {
        self.resume();
        for _ in 0..=TASKS.len() * 200 {
            if self.manager.n_pending() == 0 {
                break;
            }
            for task in 0..TASKS.len() {
                if !self.tasks[task].pending.is_empty() {
                    let uuid = self.tasks[task].last_forwarded.clone().unwrap();
                    self.acknowledge(task, uuid);
                }
            }
            self.check();
        }
        assert_eq!(self.manager.n_pending(), 0);
        for (task, model) in self.tasks.iter().enumerate() {
            if !model.lost {
                assert_eq!(
                    model.forwarded, model.accepted,
                    "task {task}: every accepted update is forwarded once, in order"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn updates_are_delivered_in_order_one_at_a_time_and_survive_restarts(
        ops in prop::collection::vec(op_strategy(), 1..80),
    ) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.step(op);
            harness.check();
        }
        harness.drain();
    }
}
