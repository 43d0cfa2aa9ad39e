//! Messages between master and agent that are not part of the public API.
//!
//! They follow Mesos's `src/messages/messages.proto` in content but not in form: they need no
//! compatibility with Mesos, so they are plain serde types in one Rust enum, [`Message`], and
//! travel only as MessagePack. The transport may lose or duplicate any of them; every message is
//! either retried by its sender until answered (registration, status updates) or safe to apply
//! twice (kills, shutdowns, acknowledgements).

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ExecutorId, FrameworkId, TaskId};
use crate::mesos::{
    AgentCapability, AgentInfo, Bytes, DrainConfig, ExecutorInfo, FrameworkInfo, KillPolicy, Task,
    TaskGroupInfo, TaskInfo, TaskState, TaskStatus,
};
use crate::resources::Resource;

/// A liveness probe. The master pings each agent; any node may ping another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ping {
    pub seq: u64,
}

/// The answer to a [`Ping`], echoing its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pong {
    pub seq: u64,
}

/// Sent by an agent that has no agent ID yet (first start, or after its work directory was wiped)
/// to the leading master, and resent with backoff until [`AgentRegistered`] arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterAgent {
    /// The agent's description; `id` is unset.
    pub agent_info: AgentInfo,
    /// Dynamic reservations and volumes the agent has checkpointed, which are part of its total.
    pub checkpointed_resources: Vec<Resource>,
    /// The agent's Strata version.
    pub version: String,
    pub capabilities: Vec<AgentCapability>,
}

/// Sent by an agent that already has an ID, after it restarts or after a new master is elected,
/// and resent with backoff until [`AgentReregistered`] arrives. It carries everything running on
/// the agent, because masters keep no task state across failover: the new leader rebuilds its
/// view of frameworks and tasks from these messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReregisterAgent {
    /// The agent's description; `id` is set.
    pub agent_info: AgentInfo,
    pub checkpointed_resources: Vec<Resource>,
    /// The executors running on the agent.
    pub executor_infos: Vec<ExecutorInfo>,
    /// The tasks the agent knows, with their latest states, including terminal tasks whose
    /// updates are not yet acknowledged.
    pub tasks: Vec<Task>,
    /// The frameworks of those executors and tasks.
    pub frameworks: Vec<FrameworkInfo>,
    pub version: String,
    pub capabilities: Vec<AgentCapability>,
}

/// How the master will watch an agent; lets the agent detect a master that stopped pinging it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MasterAgentConnection {
    /// How long the master waits for pongs before it marks the agent unreachable
    /// (`agent_ping_timeout` times `max_agent_ping_timeouts`), in seconds.
    pub total_ping_timeout_seconds: f64,
}

/// Sent by the master to an agent in answer to [`RegisterAgent`], giving it its new ID. Sent again
/// for each duplicate [`RegisterAgent`] from the same agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRegistered {
    pub agent_id: AgentId,
    pub connection: MasterAgentConnection,
}

/// Sent by the master to an agent in answer to [`ReregisterAgent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReregistered {
    pub agent_id: AgentId,
    /// Per framework, the tasks the master believes are on the agent; the agent answers with a
    /// TASK_DROPPED (or TASK_LOST) update for each one it does not know.
    pub reconciliations: Vec<ReconcileTasks>,
    pub connection: MasterAgentConnection,
}

/// Sent by an agent that is shutting down for good (not restarting), so the master can remove it
/// at once instead of waiting for ping timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnregisterAgent {
    pub agent_id: AgentId,
}

/// Sent by the master to an agent to launch one task accepted from an offer. The agent starts the
/// task's executor first when `launch_executor` is true; when it is false the executor must
/// already be running, and the task is dropped otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    pub framework: FrameworkInfo,
    pub task: TaskInfo,
    pub launch_executor: bool,
}

/// Sent by the master to an agent to launch a task group (LAUNCH_GROUP) under one executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskGroup {
    pub framework: FrameworkInfo,
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
    pub launch_executor: bool,
}

/// Sent by the master to an agent when a framework KILLs a task, or when the master kills it
/// itself (framework removed). Killing a task that is already gone is a no-op on the agent, apart
/// from a TASK_LOST or TASK_DROPPED update if it never heard of the task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KillTask {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    /// The framework's override of the task's kill policy.
    pub kill_policy: Option<KillPolicy>,
}

/// A task status update from an agent's status-update manager to the master, which forwards it to
/// the framework.
///
/// The agent keeps one unacknowledged update per task in flight and resends it with backoff until
/// a [`StatusUpdateAcknowledgement`] with the same `uuid` arrives, so the master sees duplicates.
/// A resend carries the task's latest known state in `latest_state`, so the master can free the
/// resources of a task that has finished while earlier updates wait for acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub executor_id: Option<ExecutorId>,
    /// The status as the framework will see it; `status.uuid` equals `uuid`.
    pub status: TaskStatus,
    /// Seconds since the Unix epoch when the update was generated.
    pub timestamp: f64,
    /// The update's identity, chosen by the agent; acknowledgements refer to it.
    pub uuid: Bytes,
    pub latest_state: Option<TaskState>,
}

/// Sent by the master to an agent when a framework ACKNOWLEDGEs an update, so the agent's
/// status-update manager can forget it and send the task's next update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusUpdateAcknowledgement {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub uuid: Bytes,
}

/// Sent by the master to an agent that it has removed (marked gone, or unreachable and then
/// reregistering after removal), telling it to kill everything and exit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShutdownAgent {
    /// Why, for the agent's log.
    pub message: String,
}

/// Sent by the master to every agent running a framework's executors when the framework is torn
/// down or its failover timeout expires: kill all its tasks and executors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShutdownFramework {
    pub framework_id: FrameworkId,
}

/// Sent by the master to an agent when a framework sends SHUTDOWN for one of its executors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShutdownExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
}

/// Sent by the master to an agent to relay a framework's MESSAGE call to an executor. Delivery is
/// best effort: nothing retries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameworkToExecutor {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub data: Bytes,
}

/// Sent by an agent to the master to relay an executor's MESSAGE call to its framework. Delivery
/// is best effort.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExecutorToFramework {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub data: Bytes,
}

/// Sent by an agent to the master when an executor process has exited; the master tells the
/// framework with a FAILURE event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExitedExecutor {
    pub agent_id: AgentId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    /// The wait status of the executor process.
    pub status: i32,
}

/// Sent by the master to every agent running a framework's tasks when the framework's info
/// changes (UPDATE_FRAMEWORK, or a resubscribe with a new info), so executors started later see
/// the new info.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_id: FrameworkId,
    pub framework_info: FrameworkInfo,
}

/// Sent by the master to an agent after a RESERVE, UNRESERVE, CREATE or DESTROY changes the
/// agent's resources: the complete new set of checkpointed resources (dynamic reservations and
/// persistent volumes), which the agent writes to disk before using them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointResources {
    pub resources: Vec<Resource>,
}

/// Tasks of one framework that the master believes are on an agent, in their latest states as
/// the master knows them. Sent by the master inside [`AgentReregistered`], and on its own when a
/// framework's explicit reconciliation names tasks the master is unsure of; the agent answers with
/// an update for each task it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTasks {
    pub framework_id: FrameworkId,
    /// Non-terminal statuses only.
    pub statuses: Vec<TaskStatus>,
    /// Set when the agent may not know the framework yet.
    pub framework: Option<FrameworkInfo>,
}

/// Sent by the master to an agent when the operator drains it: kill every task, within the grace
/// period, and accept no new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DrainAgent {
    pub config: DrainConfig,
}

/// Every internal message.
///
/// Large payloads are boxed so that an envelope stays small: envelopes move through queues
/// and mailboxes by value, and the biggest variant sets the size of every one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Ping(Ping),
    Pong(Pong),
    RegisterAgent(Box<RegisterAgent>),
    ReregisterAgent(Box<ReregisterAgent>),
    AgentRegistered(AgentRegistered),
    AgentReregistered(AgentReregistered),
    UnregisterAgent(UnregisterAgent),
    RunTask(Box<RunTask>),
    RunTaskGroup(Box<RunTaskGroup>),
    KillTask(KillTask),
    StatusUpdate(Box<StatusUpdate>),
    StatusUpdateAcknowledgement(StatusUpdateAcknowledgement),
    ShutdownAgent(ShutdownAgent),
    ShutdownFramework(ShutdownFramework),
    ShutdownExecutor(ShutdownExecutor),
    FrameworkToExecutor(FrameworkToExecutor),
    ExecutorToFramework(ExecutorToFramework),
    ExitedExecutor(ExitedExecutor),
    UpdateFramework(Box<UpdateFramework>),
    CheckpointResources(CheckpointResources),
    ReconcileTasks(Box<ReconcileTasks>),
    DrainAgent(DrainAgent),
}

impl Message {
    /// Returns the message's name (`"StatusUpdate"`), for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Ping(_) => "Ping",
            Message::Pong(_) => "Pong",
            Message::RegisterAgent(_) => "RegisterAgent",
            Message::ReregisterAgent(_) => "ReregisterAgent",
            Message::AgentRegistered(_) => "AgentRegistered",
            Message::AgentReregistered(_) => "AgentReregistered",
            Message::UnregisterAgent(_) => "UnregisterAgent",
            Message::RunTask(_) => "RunTask",
            Message::RunTaskGroup(_) => "RunTaskGroup",
            Message::KillTask(_) => "KillTask",
            Message::StatusUpdate(_) => "StatusUpdate",
            Message::StatusUpdateAcknowledgement(_) => "StatusUpdateAcknowledgement",
            Message::ShutdownAgent(_) => "ShutdownAgent",
            Message::ShutdownFramework(_) => "ShutdownFramework",
            Message::ShutdownExecutor(_) => "ShutdownExecutor",
            Message::FrameworkToExecutor(_) => "FrameworkToExecutor",
            Message::ExecutorToFramework(_) => "ExecutorToFramework",
            Message::ExitedExecutor(_) => "ExitedExecutor",
            Message::UpdateFramework(_) => "UpdateFramework",
            Message::CheckpointResources(_) => "CheckpointResources",
            Message::ReconcileTasks(_) => "ReconcileTasks",
            Message::DrainAgent(_) => "DrainAgent",
        }
    }
}

macro_rules! message_from {
    ($($variant:ident),* $(,)?) => {
        $(
            impl From<$variant> for Message {
                fn from(message: $variant) -> Self {
                    Message::$variant(message.into())
                }
            }
        )*
    };
}

message_from!(
    Ping,
    Pong,
    RegisterAgent,
    ReregisterAgent,
    AgentRegistered,
    AgentReregistered,
    UnregisterAgent,
    RunTask,
    RunTaskGroup,
    KillTask,
    StatusUpdate,
    StatusUpdateAcknowledgement,
    ShutdownAgent,
    ShutdownFramework,
    ShutdownExecutor,
    FrameworkToExecutor,
    ExecutorToFramework,
    ExitedExecutor,
    UpdateFramework,
    CheckpointResources,
    ReconcileTasks,
    DrainAgent,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_update_round_trips_through_msgpack() {
        let task_id = TaskId::new("t1").unwrap();
        let uuid = Bytes::new(vec![7u8; 16]);
        let mut status = TaskStatus::new(task_id, TaskState::Running);
        status.uuid = Some(uuid.clone());
        let message = Message::from(StatusUpdate {
            framework_id: FrameworkId::new("f1").unwrap(),
            agent_id: AgentId::new("a1").unwrap(),
            executor_id: None,
            status,
            timestamp: 1_700_000_000.5,
            uuid,
            latest_state: Some(TaskState::Finished),
        });
        let bytes = rmp_serde::to_vec_named(&message).unwrap();
        let back: Message = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, message);
        assert_eq!(back.name(), "StatusUpdate");
    }

    #[test]
    fn ping_keeps_its_shape() {
        let json = serde_json::to_string(&Message::Ping(Ping { seq: 3 })).unwrap();
        assert_eq!(json, r#"{"Ping":{"seq":3}}"#);
    }
}
