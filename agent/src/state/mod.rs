//! The agent's decisions as a pure state machine.
//!
//! `AgentState` is stepped by inputs (a message from the master, a call from an executor, a
//! container that started or exited, a broken link) and by `tick`, each with the current time
//! passed in, and records what to do as [`Effect`]s: messages for the master and executors,
//! containers to launch or destroy, records to checkpoint. The actor executes effects in order,
//! which is what makes "checkpoint, then forward" hold: a `Checkpoint` effect is written before
//! the `Master` effect after it is sent.
//!
//! It never reads the clock, spawns, does I/O, draws random numbers or iterates a hash map:
//! container IDs and the UUIDs of agent-made updates come from a seed in [`AgentConfig`] and a
//! counter, so a run is replayable.
//!
//! # Layout
//!
//! - `master`: detection, registration and reregistration with backoff, pings, epochs.
//! - `executors`: RunTask, executor launch and subscription, kills, shutdowns, terminations.
//! - `updates`: status updates from executors and the agent itself, acknowledgements.
//! - `view`: read-only accessors for the HTTP layer and tests.

mod executors;
mod master;
mod recovery;
mod updates;
mod view;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use strata_protocol::internal;
use strata_protocol::mesos::{
    AgentInfo, Attribute, ExecutorInfo, FrameworkInfo, Task, TaskInfo, TaskState,
};
use strata_protocol::{
    AgentId, Bytes, ContainerId, Epoch, ExecutorId, FrameworkId, Pid, Resources, TaskId, executor,
};

use crate::status_updates::{StatusUpdateManager, UpdateConfig, UpdateRecord};

pub use recovery::RecoveryFacts;
pub use view::{AgentCounters, ExecutorView, FrameworkView};

/// The current time, as the actor read it: a monotonic part that drives every timer, and the
/// wall clock for the timestamps frameworks see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    /// Time since an arbitrary origin; never goes backwards.
    pub mono: Duration,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

impl Now {
    /// Returns a time `mono` after the origin whose wall clock starts at `unix_origin`.
    pub fn at(mono: Duration, unix_origin: f64) -> Now {
        Now {
            mono,
            unix: unix_origin + mono.as_secs_f64(),
        }
    }
}

/// How the agent is tuned; the defaults are Mesos's.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent actor's own pid, which executors and the master address.
    pub pid: Pid,
    pub hostname: String,
    /// Everything this agent offers (detected, or from `--resources`).
    pub resources: Resources,
    pub attributes: Vec<Attribute>,
    /// The agent's Strata version, sent when it registers.
    pub version: String,
    /// The first wait before resending an unanswered registration; doubles up to the max.
    pub registration_backoff_min: Duration,
    pub registration_backoff_max: Duration,
    /// How long an executor has to subscribe after its container started.
    pub executor_registration_timeout: Duration,
    /// How long an executor that survived an agent restart has to resubscribe.
    pub executor_reregistration_timeout: Duration,
    /// How long an executor has to exit after SHUTDOWN, unless its `ExecutorInfo` says.
    pub executor_shutdown_grace_period: Duration,
    /// Added to a command task's resources for the command executor that runs it.
    pub command_executor_resources: Resources,
    /// Terminated executors kept per framework for the state endpoints.
    pub max_completed_executors_per_framework: usize,
    /// Completed tasks kept per terminated executor.
    pub max_completed_tasks_per_executor: usize,
    pub updates: UpdateConfig,
    /// Makes the container IDs and update UUIDs of this run unique; the actor draws it at random.
    pub id_seed: u64,
    /// Whether containers outlive the agent with their exit statuses (the agent has a reaper):
    /// then the agent runs command tasks of checkpointing frameworks itself too, with no
    /// executor process, since a restarted agent still learns how each task ended.
    pub survivable_containers: bool,
}

impl AgentConfig {
    /// Returns the Mesos defaults for an agent at `pid` offering `resources`.
    pub fn new(pid: Pid, hostname: impl Into<String>, resources: Resources) -> AgentConfig {
        AgentConfig {
            pid,
            hostname: hostname.into(),
            resources,
            attributes: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            registration_backoff_min: Duration::from_secs(1),
            registration_backoff_max: Duration::from_secs(60),
            executor_registration_timeout: Duration::from_secs(60),
            // Mesos waits 2 s; executors here retry SUBSCRIBE every second and reconnect with a
            // backoff of up to 2 s, so a little more keeps a slow reconnect from being fatal.
            executor_reregistration_timeout: Duration::from_secs(5),
            executor_shutdown_grace_period: Duration::from_secs(5),
            command_executor_resources: Resources::parse("cpus:0.1;mem:32", "*")
                .expect("the command executor's resources parse"),
            max_completed_executors_per_framework: 150,
            max_completed_tasks_per_executor: 200,
            updates: UpdateConfig::default(),
            id_seed: 0,
            survivable_containers: false,
        }
    }
}

/// How an executor is connected: over the actor protocol (its pid) or over a Mesos v1 HTTP
/// event stream (an ID the actor chose for it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExecutorConn {
    Actor(Pid),
    Http(u64),
}

/// Something the actor must do on the agent's behalf, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Sends an internal message to the master the agent follows, stamped with `epoch`.
    Master {
        pid: Pid,
        message: internal::Message,
    },
    /// Asks the transport to report when the link to `pid` breaks.
    Link { pid: Pid },
    /// Sends an event to an executor.
    Executor {
        conn: ExecutorConn,
        event: executor::Event,
    },
    /// Closes an executor's event stream (an HTTP executor that was replaced or refused).
    CloseExecutor { conn: ExecutorConn },
    /// Creates the run's sandbox and starts the executor's container; the actor answers with
    /// [`Input::ContainerLaunched`] or [`Input::ContainerLaunchFailed`].
    Launch(Box<LaunchContainer>),
    /// Stops a container: SIGTERM, then SIGKILL after `grace_period`. The actor answers with
    /// [`Input::ContainerExited`] once it is gone.
    Destroy {
        container_id: ContainerId,
        grace_period: Duration,
    },
    /// Writes a record to the checkpoint store; what follows may rely on it being durable.
    Checkpoint(Box<CheckpointOp>),
    /// An executor run is over: its sandbox may be garbage-collected, and its checkpoint
    /// records (marked completed just before) dropped at the next compaction.
    RunFinished {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        container_id: ContainerId,
    },
    /// The master told this agent to shut down for good: destroy every container, forget the
    /// agent ID and exit.
    Shutdown { message: String },
}

/// What the actor needs to start an executor's container.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchContainer {
    pub agent_id: AgentId,
    pub framework: FrameworkInfo,
    pub executor: ExecutorInfo,
    pub container_id: ContainerId,
    /// Runs the built-in command executor instead of `executor.command`.
    pub command_executor: bool,
    /// A command task the agent executes itself: this command (the task's) is the container's
    /// leader, with no executor process between the agent and the task (see
    /// `Executor::in_agent` for which command tasks).
    pub task_command: Option<strata_protocol::mesos::CommandInfo>,
    /// The container's limits: the executor's and its tasks' resources.
    pub resources: Resources,
    /// The Unix user to run as, `None` for the agent's own.
    pub user: Option<String>,
    /// Whether the framework checkpoints (executors survive an agent restart).
    pub checkpoint: bool,
    /// How long the executor gets to exit after SHUTDOWN.
    pub shutdown_grace_period: Duration,
}

/// A write to the agent's checkpoint store. Only frameworks with `checkpoint: true` have their
/// frameworks, executors, tasks and updates checkpointed; the agent's own info always is.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointOp {
    Agent(AgentInfo),
    Resources {
        agent_id: AgentId,
        resources: Vec<strata_protocol::Resource>,
    },
    Framework {
        agent_id: AgentId,
        info: FrameworkInfo,
    },
    Executor {
        agent_id: AgentId,
        framework_id: FrameworkId,
        info: ExecutorInfo,
    },
    Run {
        agent_id: AgentId,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        container_id: ContainerId,
        pid: Option<u32>,
        completed: bool,
        /// The agent runs the run's command task itself (no executor process).
        in_agent: bool,
    },
    Task {
        agent_id: AgentId,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        container_id: ContainerId,
        task: Task,
    },
    Update {
        agent_id: AgentId,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        container_id: ContainerId,
        task_id: TaskId,
        record: UpdateRecord,
    },
    RemoveFramework {
        agent_id: AgentId,
        framework_id: FrameworkId,
    },
}

/// How a container ended, as the actor reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEnd {
    /// A sentence for the task status message.
    pub message: String,
    /// The reason of the tasks' terminal updates (`REASON_CONTAINER_LIMITATION_MEMORY` after an
    /// OOM kill); `None` leaves the agent's own reason.
    pub reason: Option<strata_protocol::mesos::TaskStatusReason>,
    /// The wait status of the executor, for ExitedExecutor.
    pub status: i32,
}

/// Something that happened, for the agent to decide on.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The leading master, as detected (for now: the one master the agent was given), or `None`
    /// when there is none.
    MasterDetected(Option<Pid>),
    /// A message from `from`, stamped with `epoch`.
    FromMaster {
        from: Pid,
        epoch: Epoch,
        message: internal::Message,
    },
    /// The link to `pid` broke.
    LinkBroken(Pid),
    /// A call from an executor.
    FromExecutor {
        conn: ExecutorConn,
        call: executor::Call,
    },
    /// An HTTP executor's event stream closed.
    ExecutorStreamClosed(ExecutorConn),
    ContainerLaunched {
        container_id: ContainerId,
        pid: u32,
    },
    ContainerLaunchFailed {
        container_id: ContainerId,
        message: String,
    },
    ContainerExited {
        container_id: ContainerId,
        end: ContainerEnd,
    },
}

/// Why an input was refused; the actor logs it. Nothing changes on a refused input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("message from {from}, which is not the master this agent follows")]
    NotMyMaster { from: Pid },
    #[error("message with epoch {epoch} from a master older than epoch {current}")]
    StaleEpoch { epoch: Epoch, current: Epoch },
    #[error("executor {executor_id} of framework {framework_id} is unknown")]
    UnknownExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
    },
    #[error("call {call} from an executor that has not subscribed")]
    NotSubscribed { call: &'static str },
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    #[error("container {0} is unknown")]
    UnknownContainer(ContainerId),
    #[error("{0}")]
    Refused(String),
}

/// The agent's relation to its master.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MasterLink {
    /// No master known.
    Disconnected,
    /// Sending RegisterAgent (no agent ID yet) or ReregisterAgent until answered.
    Registering {
        pid: Pid,
        attempt: u32,
        next_at: Duration,
    },
    Registered {
        pid: Pid,
        /// When the master last pinged; a master silent for longer than `ping_timeout` is
        /// taken as lost, and the agent reregisters.
        last_ping: Duration,
        ping_timeout: Duration,
    },
}

/// An executor's lifecycle, as in Mesos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExecutorPhase {
    /// The container is being started, or the executor has not subscribed yet.
    Registering,
    Running,
    /// Told to shut down, or being destroyed.
    Terminating,
    Terminated,
}

impl ExecutorPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorPhase::Registering => "registering",
            ExecutorPhase::Running => "running",
            ExecutorPhase::Terminating => "terminating",
            ExecutorPhase::Terminated => "terminated",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Executor {
    pub(crate) info: ExecutorInfo,
    pub(crate) container_id: ContainerId,
    pub(crate) command_executor: bool,
    /// The agent itself is this command task's executor: the container's leader is the task's
    /// command, and the container's exit is the task's end (its terminal update), not an
    /// executor's; skipping the executor saves a process start and a connection per task.
    /// Frameworks that do not checkpoint lose their executors when the agent restarts (as in
    /// Mesos), so nothing needs to outlive the agent. Checkpointing frameworks get this only
    /// with `AgentConfig::survivable_containers`: the reaper keeps the task's exit status for
    /// the restarted agent, which an executor process would otherwise have to.
    pub(crate) in_agent: bool,
    pub(crate) phase: ExecutorPhase,
    pub(crate) conn: Option<ExecutorConn>,
    pub(crate) checkpoint: bool,
    /// The container's leader, once started.
    pub(crate) pid: Option<u32>,
    /// Tasks waiting for the executor to subscribe.
    pub(crate) queued: BTreeMap<TaskId, TaskInfo>,
    /// Tasks handed to the executor and not terminal yet.
    pub(crate) launched: BTreeMap<TaskId, Task>,
    /// Tasks in a terminal state whose terminal update is not acknowledged yet.
    pub(crate) terminated: BTreeMap<TaskId, Task>,
    pub(crate) completed: VecDeque<Task>,
    /// When a Registering executor is given up on, or a Terminating one destroyed.
    pub(crate) deadline: Option<Duration>,
    pub(crate) shutdown_grace_period: Duration,
    /// A Destroy effect was issued; wait for the container to exit.
    pub(crate) destroying: bool,
    /// The state and reason for the tasks still live when the container exits, when the agent
    /// ended it on purpose (a kill of the last queued task: TASK_KILLED).
    pub(crate) pending_termination: Option<(
        TaskState,
        Option<strata_protocol::mesos::TaskStatusReason>,
        String,
    )>,
    /// Rebuilt from the checkpoint after an agent restart, and not resubscribed since.
    pub(crate) recovered: bool,
    /// Kills of live tasks that arrived while the executor could not be reached (it had not
    /// resubscribed after an agent restart); sent when it does, and honoured if it never does.
    pub(crate) pending_kills: BTreeMap<TaskId, Option<strata_protocol::mesos::KillPolicy>>,
}

impl Executor {
    /// Tells whether any task is not finished with (live, or waiting for its acknowledgement).
    pub(crate) fn has_incomplete_tasks(&self) -> bool {
        !self.queued.is_empty() || !self.launched.is_empty() || !self.terminated.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameworkPhase {
    Running,
    Terminating,
}

#[derive(Debug, Clone)]
pub(crate) struct Framework {
    pub(crate) info: FrameworkInfo,
    pub(crate) phase: FrameworkPhase,
    pub(crate) executors: BTreeMap<ExecutorId, Executor>,
    pub(crate) completed_executors: VecDeque<Executor>,
}

impl Framework {
    pub(crate) fn checkpoint(&self) -> bool {
        self.info.checkpoint.unwrap_or(false)
    }
}

/// The agent's state machine.
#[derive(Debug)]
pub struct AgentState {
    pub(crate) config: AgentConfig,
    pub(crate) agent_id: Option<AgentId>,
    pub(crate) master: MasterLink,
    /// The highest master epoch seen; messages stamped lower are refused.
    pub(crate) epoch: Epoch,
    /// Dynamic reservations the master told this agent to checkpoint.
    pub(crate) checkpointed_resources: Vec<strata_protocol::Resource>,
    pub(crate) frameworks: BTreeMap<FrameworkId, Framework>,
    pub(crate) completed_frameworks: VecDeque<Framework>,
    /// Which executor each task the agent tracks (queued, live, or terminal and unacknowledged)
    /// belongs to.
    pub(crate) tasks: BTreeMap<(FrameworkId, TaskId), ExecutorId>,
    /// Which executor runs in which container, for container inputs.
    pub(crate) containers: BTreeMap<ContainerId, (FrameworkId, ExecutorId)>,
    pub(crate) updates: StatusUpdateManager,
    /// Draining: no new tasks, every task killed.
    pub(crate) draining: bool,
    /// Counts IDs made by this run, with `config.id_seed`.
    pub(crate) id_counter: u64,
    pub(crate) counters: AgentCounters,
}

impl AgentState {
    /// Returns an agent that has not registered yet and runs nothing.
    pub fn new(config: AgentConfig) -> AgentState {
        let updates = StatusUpdateManager::new(config.updates);
        AgentState {
            config,
            agent_id: None,
            master: MasterLink::Disconnected,
            epoch: Epoch::NONE,
            checkpointed_resources: Vec::new(),
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            tasks: BTreeMap::new(),
            containers: BTreeMap::new(),
            updates,
            draining: false,
            id_counter: 0,
            counters: AgentCounters::default(),
        }
    }

    /// Applies one input, appending what to do to `effects`.
    pub fn step(
        &mut self,
        now: Now,
        input: Input,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        match input {
            Input::MasterDetected(pid) => {
                self.master_detected(now, pid, effects);
                Ok(())
            }
            Input::FromMaster {
                from,
                epoch,
                message,
            } => self.on_master_message(now, from, epoch, message, effects),
            Input::LinkBroken(pid) => {
                self.link_broken(now, &pid, effects);
                Ok(())
            }
            Input::FromExecutor { conn, call } => self.on_executor_call(now, conn, call, effects),
            Input::ExecutorStreamClosed(conn) => {
                self.executor_disconnected(now, &conn, effects);
                Ok(())
            }
            Input::ContainerLaunched { container_id, pid } => {
                self.container_launched(now, &container_id, pid, effects)
            }
            Input::ContainerLaunchFailed {
                container_id,
                message,
            } => {
                let end = ContainerEnd {
                    message: format!("Failed to launch container: {message}"),
                    reason: Some(
                        strata_protocol::mesos::TaskStatusReason::ReasonContainerLaunchFailed,
                    ),
                    status: -1,
                };
                self.counters.container_launch_errors += 1;
                self.container_exited(now, &container_id, end, effects)
            }
            Input::ContainerExited { container_id, end } => {
                self.container_exited(now, &container_id, end, effects)
            }
        }
    }

    /// Fires every timer due at `now`: registration retries, the master's ping watchdog,
    /// executor registration and shutdown deadlines, status update retries.
    pub fn tick(&mut self, now: Now, effects: &mut Vec<Effect>) {
        self.tick_master(now, effects);
        self.tick_executors(now, effects);
        self.tick_updates(now, effects);
    }

    /// Returns when `tick` next has work to do, so the actor can sleep until then.
    pub fn next_deadline(&self) -> Option<Duration> {
        let master = match &self.master {
            MasterLink::Disconnected => None,
            MasterLink::Registering { next_at, .. } => Some(*next_at),
            MasterLink::Registered {
                last_ping,
                ping_timeout,
                ..
            } => Some(*last_ping + *ping_timeout),
        };
        let executors = self
            .frameworks
            .values()
            .flat_map(|framework| framework.executors.values())
            .filter_map(|executor| executor.deadline)
            .min();
        [master, executors, self.updates.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Makes an ID unique to this run: the seed, then a counter.
    pub(crate) fn next_id(&mut self) -> [u8; 16] {
        self.id_counter += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.config.id_seed.to_be_bytes());
        bytes[8..].copy_from_slice(&self.id_counter.to_be_bytes());
        bytes
    }

    pub(crate) fn next_uuid(&mut self) -> Bytes {
        Bytes::new(self.next_id().to_vec())
    }

    pub(crate) fn next_container_id(&mut self) -> ContainerId {
        let bytes = self.next_id();
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        // The UUID text form, as Mesos's container IDs are.
        let id = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        ContainerId::new(id).expect("a hex UUID is a valid container ID")
    }

    /// The agent's description as the master sees it.
    pub fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            hostname: self.config.hostname.clone(),
            port: Some(i32::from(self.config.pid.port())),
            resources: self.config.resources.to_wire(),
            attributes: self.config.attributes.clone(),
            id: self.agent_id.clone(),
            domain: None,
        }
    }
}
