//! The master's decisions as a pure state machine.
//!
//! `MasterState` is stepped by inputs (a scheduler call, a message from an agent, a broken link,
//! an operator call) and by `tick`, each with the current time passed in, and records what to do
//! as [`Effect`]s: events for frameworks, messages for agents, links to watch. It never reads
//! the clock, spawns, does I/O, or iterates a hash map, so a simulation can drive it through any
//! interleaving and replay it from a seed.
//!
//! # Layout
//!
//! - `frameworks`: SUBSCRIBE, failover, disconnection, failover timeout, teardown, heartbeats.
//! - `agents`: registration, reregistration, pings, unreachable and gone agents, draining.
//! - `offers`: turning allocations into offers, DECLINE, rescinds and offer timeouts.
//! - `accept`: ACCEPT validation and launches.
//! - `reservations`: RESERVE and UNRESERVE, in an ACCEPT and by the operator.
//! - `tasks`: status updates, acknowledgements, KILL, RECONCILE, messages.
//! - `view`: read-only accessors for the HTTP layer and tests.
//!
//! # The registry
//!
//! Every change to what the registry holds (admitted, unreachable and gone agents, drain and
//! deactivation, weights, quota) records an [`Effect::Registry`] before the effects that depend
//! on it, such as the AgentRegistered reply. [`MasterState::recover`] starts a master from a
//! loaded registry: its agents are "recovered" (known, not offered) until they reregister or
//! `agent_reregister_timeout` passes, which makes them unreachable.

mod accept;
mod agents;
mod frameworks;
mod offers;
mod operator;
mod reservations;
mod tasks;
mod view;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use strata_protocol::internal;
use strata_protocol::mesos::{FrameworkInfo, MasterInfo, Task, TaskState, TaskStatus};
use strata_protocol::scheduler::{self, Call, CallBody};
use strata_protocol::{AgentId, ExecutorId, FrameworkId, OfferId, Pid, Resources, TaskId};

use crate::allocator::{Allocator, AllocatorConfig};
use crate::registry::{AdmittedAgent, RegistryOp, RegistryState};

pub use reservations::Direction as ConversionDirection;
pub use view::{AgentSummary, FrameworkSummary, MasterCounters};

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
    /// Returns a time `mono` after the origin whose wall clock starts at `unix_origin`; handy
    /// for simulations.
    pub fn at(mono: Duration, unix_origin: f64) -> Now {
        Now {
            mono,
            unix: unix_origin + mono.as_secs_f64(),
        }
    }
}

/// How the master is tuned; the defaults are Mesos's.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The master's identity as frameworks and agents see it (`MasterInfo`); its `id` prefixes
    /// every framework, agent and offer ID this master assigns.
    pub master_info: MasterInfo,
    /// The time between pings to an agent, and how long a ping may go unanswered.
    pub agent_ping_timeout: Duration,
    /// Unanswered pings in a row after which an agent is unreachable.
    pub max_agent_ping_timeouts: u32,
    /// How long an offer may stay unanswered before it is rescinded; never when `None`.
    pub offer_timeout: Option<Duration>,
    /// The time between batch allocation runs.
    pub allocation_interval: Duration,
    /// The interval of HEARTBEAT events to frameworks.
    pub heartbeat_interval: Duration,
    /// Completed frameworks kept for the state endpoints.
    pub max_completed_frameworks: usize,
    /// Completed tasks kept per framework.
    pub max_completed_tasks_per_framework: usize,
    /// How long agents recovered from the registry have to reregister after a master restart
    /// before they are marked unreachable.
    pub agent_reregister_timeout: Duration,
    pub allocator: AllocatorConfig,
}

impl MasterConfig {
    /// Returns the Mesos defaults for a master known as `master_info`.
    pub fn new(master_info: MasterInfo) -> MasterConfig {
        MasterConfig {
            master_info,
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            offer_timeout: None,
            allocation_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(15),
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            agent_reregister_timeout: Duration::from_secs(600),
            allocator: AllocatorConfig::default(),
        }
    }
}

/// How a framework is connected: over the actor protocol (its scheduler's pid) or over a Mesos
/// v1 HTTP event stream (its `Mesos-Stream-Id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameworkConn {
    Actor(Pid),
    Http(String),
}

/// Something the actor must do on the master's behalf.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Sends an event to a framework on the given connection.
    Framework {
        conn: FrameworkConn,
        event: scheduler::Event,
    },
    /// Closes a framework's connection (its event stream), after an ERROR or a teardown.
    CloseFramework { conn: FrameworkConn },
    /// Sends an internal message to an agent.
    Agent {
        pid: Pid,
        message: internal::Message,
    },
    /// Asks the transport to report when the link to `pid` breaks.
    Link { pid: Pid },
    /// Stores a change in the registry. The effects after it may depend on it (an agent is
    /// told it is registered only once it is), so they wait until it is durable.
    Registry(RegistryOp),
}

/// Something operators subscribed to the event stream (operator SUBSCRIBE) are told. The actor
/// renders each with the state as it is after the step.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorEvent {
    TaskAdded {
        framework_id: FrameworkId,
        task_id: TaskId,
    },
    TaskUpdated {
        framework_id: FrameworkId,
        status: TaskStatus,
        state: TaskState,
    },
    AgentAdded(AgentId),
    AgentRemoved(AgentId),
    FrameworkAdded(FrameworkId),
    FrameworkUpdated(FrameworkId),
    FrameworkRemoved(FrameworkId),
}

/// Why a scheduler call was refused. The HTTP door maps these to status codes; the actor door
/// logs them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call is malformed or invalid (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The framework is not subscribed on this connection, or was removed (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
}

/// Why an operator call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
}

/// A task the master knows, with its resources as the allocator accounts them.
#[derive(Debug, Clone, PartialEq)]
struct TaskEntry {
    /// Boxed: a `Task` is about a kilobyte, mostly fields that are rarely set, and map nodes
    /// hold their entries inline whether full or not.
    ///
    /// Its `resources` field is left empty; `resources` below is the one copy, and views fill
    /// the field from it.
    task: Box<Task>,
    /// The task's resources (with `allocation_info`), recovered once its state is terminal.
    resources: Resources,
    /// True once the resources went back to the allocator.
    resources_recovered: bool,
}

impl TaskEntry {
    /// Returns the task as frameworks and operators see it, resources included.
    fn to_task(&self) -> Task {
        let mut task = (*self.task).clone();
        task.resources = self.resources.to_wire();
        task
    }

    /// Like `to_task`, consuming the entry.
    fn into_task(self) -> Task {
        let mut task = *self.task;
        task.resources = self.resources.to_wire();
        task
    }
}

/// A subscribed (or recovered, or disconnected) framework.
#[derive(Debug, Clone)]
struct Framework {
    id: FrameworkId,
    info: FrameworkInfo,
    /// `None` while disconnected.
    conn: Option<FrameworkConn>,
    roles: BTreeSet<String>,
    suppressed_roles: BTreeSet<String>,
    /// Live tasks and terminal ones whose update is not yet acknowledged.
    tasks: BTreeMap<TaskId, TaskEntry>,
    /// Tasks on unreachable agents; they come back if the agent does.
    unreachable_tasks: BTreeMap<TaskId, TaskEntry>,
    completed_tasks: VecDeque<Task>,
    offers: BTreeSet<OfferId>,
    /// Custom executors per agent, for FAILURE events and state.
    executors: BTreeMap<AgentId, BTreeSet<ExecutorId>>,
    registered_time: f64,
    reregistered_time: Option<f64>,
    /// When a disconnected framework is removed; `None` while connected.
    failover_deadline: Option<Duration>,
    next_heartbeat: Duration,
}

/// A framework that was torn down or timed out, kept for the state endpoints.
#[derive(Debug, Clone)]
struct CompletedFramework {
    id: FrameworkId,
    info: FrameworkInfo,
    tasks: VecDeque<Task>,
    unregistered_time: f64,
}

/// What the master does with an agent's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMode {
    /// Offered normally.
    Active,
    /// Not offered (DEACTIVATE_AGENT); tasks keep running.
    Deactivated,
    /// Not offered; its tasks are being killed (DRAIN_AGENT).
    Draining,
    /// Draining finished: no tasks left.
    Drained,
}

/// A registered agent.
#[derive(Debug, Clone)]
struct Agent {
    id: AgentId,
    pid: Pid,
    info: strata_protocol::mesos::AgentInfo,
    version: String,
    total: Resources,
    connected: bool,
    mode: AgentMode,
    /// How the agent drains, while it drains or once it drained.
    drain_config: strata_protocol::mesos::DrainConfig,
    /// Tasks on this agent, by framework.
    tasks: BTreeSet<(FrameworkId, TaskId)>,
    /// Custom executors and the resources they use.
    executors: BTreeMap<(FrameworkId, ExecutorId), ExecutorEntry>,
    registered_time: f64,
    reregistered_time: Option<f64>,
    /// The sequence number of the last ping sent, if its pong has not come back.
    ping_outstanding: Option<u64>,
    pings_missed: u32,
    next_ping: Duration,
}

/// A custom executor running on an agent.
#[derive(Debug, Clone)]
struct ExecutorEntry {
    info: strata_protocol::mesos::ExecutorInfo,
    /// What it uses besides its tasks (with `allocation_info`).
    resources: Resources,
}

/// An agent marked unreachable, kept so that reconciliation can answer for its tasks.
#[derive(Debug, Clone)]
struct UnreachableAgent {
    info: strata_protocol::mesos::AgentInfo,
    since: f64,
}

/// An agent recovered from the registry after a master restart, which has not reregistered
/// yet: known (its tasks get no reconciliation answer), but not offered.
#[derive(Debug, Clone)]
struct RecoveredAgent {
    record: AdmittedAgent,
    /// When it is marked unreachable if it has not reregistered.
    deadline: Duration,
}

/// An outstanding offer.
#[derive(Debug, Clone)]
struct OfferEntry {
    framework_id: FrameworkId,
    agent_id: AgentId,
    role: String,
    /// Shared with the allocator's record of the offer, so it is not copied.
    resources: std::sync::Arc<Resources>,
    expires: Option<Duration>,
}

/// The master's state; see the module documentation.
pub struct MasterState {
    config: MasterConfig,
    allocator: Allocator,
    frameworks: BTreeMap<FrameworkId, Framework>,
    completed_frameworks: VecDeque<CompletedFramework>,
    agents: BTreeMap<AgentId, Agent>,
    agent_by_pid: BTreeMap<Pid, AgentId>,
    unreachable_agents: BTreeMap<AgentId, UnreachableAgent>,
    gone_agents: BTreeMap<AgentId, f64>,
    recovered_agents: BTreeMap<AgentId, RecoveredAgent>,
    offers: BTreeMap<OfferId, OfferEntry>,
    next_framework_seq: u64,
    next_agent_seq: u64,
    next_offer_seq: u64,
    next_ping_seq: u64,
    next_allocation: Duration,
    /// Set by events that may make new offers possible; the next `tick` runs the allocator.
    allocation_pending: bool,
    counters: MasterCounters,
    /// Whether anyone listens to operator events; when not, none are recorded.
    operator_events_enabled: bool,
    operator_events: Vec<OperatorEvent>,
}

impl MasterState {
    /// Returns a master with no agents and no frameworks, starting at `now`.
    pub fn new(config: MasterConfig, now: Now) -> MasterState {
        let allocator = Allocator::new(config.allocator.clone());
        MasterState {
            next_allocation: now.mono + config.allocation_interval,
            config,
            allocator,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            agent_by_pid: BTreeMap::new(),
            unreachable_agents: BTreeMap::new(),
            gone_agents: BTreeMap::new(),
            recovered_agents: BTreeMap::new(),
            offers: BTreeMap::new(),
            next_framework_seq: 0,
            next_agent_seq: 0,
            next_offer_seq: 0,
            next_ping_seq: 0,
            allocation_pending: false,
            counters: MasterCounters::default(),
            operator_events_enabled: false,
            operator_events: Vec::new(),
        }
    }

    /// Returns a master starting at `now` from what a previous master left in the registry: its
    /// weights and quota apply at once, its gone and unreachable agents are remembered, and its
    /// admitted agents are recovered, waiting `config.agent_reregister_timeout` to reregister.
    pub fn recover(config: MasterConfig, now: Now, registry: &RegistryState) -> MasterState {
        let mut state = MasterState::new(config, now);
        if let Err(err) = state.allocator.update_weights(registry.weights.clone()) {
            tracing::error!(error = %err, "ignoring registered weights the allocator refuses");
        }
        if let Err(err) = state.allocator.update_quota(registry.quota.clone()) {
            tracing::error!(error = %err, "ignoring registered quota the allocator refuses");
        }
        state.gone_agents = registry.gone.clone();
        state.unreachable_agents = registry
            .unreachable
            .iter()
            .map(|(agent_id, record)| {
                let unreachable = UnreachableAgent {
                    info: record.info.clone(),
                    since: record.since,
                };
                (agent_id.clone(), unreachable)
            })
            .collect();
        let deadline = now.mono + state.config.agent_reregister_timeout;
        state.recovered_agents = registry
            .agents
            .iter()
            .map(|(agent_id, record)| {
                let recovered = RecoveredAgent {
                    record: record.clone(),
                    deadline,
                };
                (agent_id.clone(), recovered)
            })
            .collect();
        tracing::info!(
            recovered_agents = state.recovered_agents.len(),
            unreachable_agents = state.unreachable_agents.len(),
            gone_agents = state.gone_agents.len(),
            "master recovered from the registry"
        );
        state
    }

    /// Turns the recording of operator events on (someone subscribed) or off.
    pub fn set_operator_events(&mut self, enabled: bool) {
        self.operator_events_enabled = enabled;
        if !enabled {
            self.operator_events.clear();
        }
    }

    /// Returns the operator events recorded since the last call.
    pub fn take_operator_events(&mut self) -> Vec<OperatorEvent> {
        std::mem::take(&mut self.operator_events)
    }

    fn emit(&mut self, event: OperatorEvent) {
        if self.operator_events_enabled {
            self.operator_events.push(event);
        }
    }

    /// Returns the configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// Applies one scheduler call arriving on `conn`.
    pub fn scheduler_call(
        &mut self,
        now: Now,
        conn: FrameworkConn,
        call: Call,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        self.counters.count_call(call.body.type_name());
        if let CallBody::Subscribe(subscribe) = call.body {
            return self.subscribe(now, conn, call.framework_id, *subscribe, out);
        }
        let framework_id = self.caller(&conn, call.framework_id.as_ref())?;
        match call.body {
            CallBody::Subscribe(_) => unreachable!("handled above"),
            CallBody::Teardown => {
                self.remove_framework(now, &framework_id, "framework asked to be torn down", out);
                Ok(())
            }
            CallBody::Accept(accept) => {
                self.accept(now, &framework_id, accept, out);
                Ok(())
            }
            CallBody::Decline(decline) => {
                self.decline(now, &framework_id, decline);
                Ok(())
            }
            CallBody::Revive(revive) => self.revive(&framework_id, revive.roles),
            CallBody::Suppress(suppress) => self.suppress(&framework_id, suppress.roles),
            CallBody::Kill(kill) => {
                self.kill(now, &framework_id, kill, out);
                Ok(())
            }
            CallBody::Shutdown(shutdown) => {
                self.shutdown_executor(&framework_id, shutdown, out);
                Ok(())
            }
            CallBody::Acknowledge(ack) => self.acknowledge(now, &framework_id, ack, out),
            CallBody::Reconcile(reconcile) => {
                self.reconcile(now, &framework_id, reconcile.tasks, out);
                Ok(())
            }
            CallBody::Message(message) => {
                self.framework_message(&framework_id, message, out);
                Ok(())
            }
            // The built-in allocator ignores requests, as Mesos's does.
            CallBody::Request(_) => Ok(()),
            CallBody::UpdateFramework(update) => {
                self.update_framework(now, &framework_id, *update, out)
            }
        }
    }

    /// Applies one internal message from the agent at `from`.
    pub fn agent_message(
        &mut self,
        now: Now,
        from: Pid,
        message: internal::Message,
        out: &mut Vec<Effect>,
    ) {
        use internal::Message as M;
        match message {
            M::RegisterAgent(register) => self.register_agent(now, from, *register, out),
            M::ReregisterAgent(reregister) => self.reregister_agent(now, from, *reregister, out),
            M::Pong(pong) => self.pong(&from, pong),
            M::StatusUpdate(update) => self.status_update(now, &from, *update, out),
            M::ExecutorToFramework(message) => self.executor_message(&from, message, out),
            M::ExitedExecutor(exited) => self.exited_executor(now, &from, exited, out),
            M::UnregisterAgent(unregister) => self.unregister_agent(now, &from, unregister, out),
            other => {
                tracing::debug!(%from, message = other.name(), "ignoring message not meant for a master");
            }
        }
    }

    /// Handles a broken link to `pid`: a framework or an agent disconnected.
    pub fn link_broken(&mut self, now: Now, pid: &Pid, out: &mut Vec<Effect>) {
        if let Some(agent_id) = self.agent_by_pid.get(pid).cloned() {
            self.agent_disconnected(now, &agent_id, out);
        }
        self.framework_disconnected(now, &FrameworkConn::Actor(pid.clone()), out);
    }

    /// Handles the end of an HTTP event stream or a broken actor link of a framework.
    pub fn framework_disconnected(
        &mut self,
        now: Now,
        conn: &FrameworkConn,
        out: &mut Vec<Effect>,
    ) {
        let framework_id = self
            .frameworks
            .values()
            .find(|framework| framework.conn.as_ref() == Some(conn))
            .map(|framework| framework.id.clone());
        if let Some(framework_id) = framework_id {
            self.deactivate_framework(now, &framework_id, out);
        }
    }

    /// Fires due timers (pings, failover timeouts, offer timeouts, heartbeats) and runs the
    /// allocator when an event asked for it or the batch interval elapsed.
    pub fn tick(&mut self, now: Now, out: &mut Vec<Effect>) {
        self.expire_offers(now, out);
        self.expire_recovered_agents(now, out);
        self.ping_agents(now, out);
        self.expire_failovers(now, out);
        self.send_heartbeats(now, out);
        if self.allocation_pending || now.mono >= self.next_allocation {
            self.allocate(now, out);
        }
    }

    /// Returns when `tick` next has something to do.
    pub fn next_deadline(&self) -> Duration {
        let mut deadline = self.next_allocation;
        let mut consider = |at: Duration| deadline = deadline.min(at);
        self.offers
            .values()
            .filter_map(|offer| offer.expires)
            .for_each(&mut consider);
        self.agents
            .values()
            .map(|agent| agent.next_ping)
            .for_each(&mut consider);
        self.recovered_agents
            .values()
            .map(|agent| agent.deadline)
            .for_each(&mut consider);
        for framework in self.frameworks.values() {
            if let Some(at) = framework.failover_deadline {
                consider(at);
            }
            if framework.conn.is_some() {
                consider(framework.next_heartbeat);
            }
        }
        deadline
    }

    /// Returns true if an event asked for an allocation run before the next batch.
    pub fn allocation_pending(&self) -> bool {
        self.allocation_pending
    }

    /// Returns the framework a non-SUBSCRIBE call is from, checking that it is subscribed on
    /// this very connection.
    fn caller(
        &self,
        conn: &FrameworkConn,
        framework_id: Option<&FrameworkId>,
    ) -> Result<FrameworkId, CallError> {
        let framework_id = framework_id
            .ok_or_else(|| CallError::BadRequest("call must carry 'framework_id'".into()))?;
        let Some(framework) = self.frameworks.get(framework_id) else {
            if self
                .completed_frameworks
                .iter()
                .any(|f| &f.id == framework_id)
            {
                return Err(CallError::Forbidden(format!(
                    "framework {framework_id} has been removed"
                )));
            }
            return Err(CallError::Forbidden(format!(
                "framework {framework_id} is not subscribed"
            )));
        };
        if framework.conn.as_ref() != Some(conn) {
            return Err(CallError::Forbidden(format!(
                "framework {framework_id} is not subscribed on this connection"
            )));
        }
        Ok(framework_id.clone())
    }

    fn next_id(&mut self, kind: char) -> String {
        let master_id = &self.config.master_info.id;
        match kind {
            'F' => {
                self.next_framework_seq += 1;
                format!("{master_id}-{:04}", self.next_framework_seq)
            }
            'S' => loop {
                // A master started from a registry must not hand out an ID it holds.
                self.next_agent_seq += 1;
                let id = format!("{master_id}-S{}", self.next_agent_seq);
                let known = AgentId::new(id.as_str()).is_ok_and(|agent_id| {
                    self.agents.contains_key(&agent_id)
                        || self.recovered_agents.contains_key(&agent_id)
                        || self.unreachable_agents.contains_key(&agent_id)
                        || self.gone_agents.contains_key(&agent_id)
                });
                if !known {
                    break id;
                }
            },
            _ => {
                self.next_offer_seq += 1;
                format!("{master_id}-O{}", self.next_offer_seq)
            }
        }
    }
}
