//! A seeded simulation of one master with many agents and frameworks.
//!
//! The master is the real [`MasterState`]; agents and frameworks are small models of the real
//! ones ([`agent::AgentModel`], [`framework::FrameworkModel`]); everything between them goes
//! through a [`network::SimNetwork`] that loses, duplicates, delays and reorders messages and
//! partitions agents away. Time is simulated: the driver jumps to the next thing that happens
//! (a delivery, a master timer, a model timer, a fault), so a run of minutes takes milliseconds
//! and every run is a pure function of its seed.
//!
//! After every step the driver checks `MasterState::check_invariants` (design.md invariant 1
//! and the offer books) and the [`invariants::Checker`] (invariant 2, and task states moving
//! forward as frameworks see them). A run has two phases: chaos (faults on) for a number of
//! steps, then settling: partitions heal, faults stop, agents reconnect, frameworks stop
//! launching, and after a while invariant 3 is checked against an implicit reconciliation.
//!
//! A failure is a [`SimFailure`] whose message starts with `SEED=<n>`, which replays the run.

pub mod agent;
pub mod framework;
pub mod invariants;
pub mod network;
pub mod rng;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use strata_master::registry::{InMemoryRegistry, Registry};
use strata_master::state::{Effect, FrameworkConn, MasterConfig, MasterState, Now};
use strata_protocol::internal::Message;
use strata_protocol::mesos::{MasterInfo, TaskState};
use strata_protocol::scheduler::{self, Call, CallBody, Event};
use strata_protocol::{OfferId, Pid, Resources, TaskId};

use agent::AgentModel;
use framework::FrameworkModel;
use invariants::Checker;
use network::{LinkFaults, NetStats, Node, Payload, SimNetwork};
use rng::SimRng;

/// The wall clock at simulated time zero.
pub const UNIX_ORIGIN: f64 = 1_800_000_000.0;

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub n_agents: usize,
    pub n_frameworks: usize,
    /// Steps with faults on; then the system settles.
    pub chaos_steps: usize,
    /// Simulated time allowed to settle before invariant 3 is checked.
    pub settle_time: Duration,
    pub agent_links: LinkFaults,
    pub framework_links: LinkFaults,
    /// The time between injected faults (partitions, restarts, disconnections).
    pub fault_interval_min: Duration,
    pub fault_interval_max: Duration,
    pub partitions: bool,
    pub agent_restarts: bool,
    pub framework_disconnects: bool,
    /// Whether faults include master restarts: a new master recovers from the registry the
    /// old one wrote, agents reregister and frameworks resubscribe. Off by default, so that the
    /// seeds replayed for old bugs keep their runs.
    pub master_restarts: bool,
    /// How many of the last steps a failure report shows.
    pub trace_lines: usize,
}

impl SimConfig {
    /// Returns a configuration drawn from the seed: 2-6 agents, 1-3 frameworks, and loss,
    /// duplication and reordering rates of up to 10 % on master<->agent links.
    pub fn for_seed(seed: u64, chaos_steps: usize) -> SimConfig {
        // A stream apart from the run's own, so the shape does not shift the run's draws.
        let mut rng = SimRng::new(seed ^ 0x5eed_c0de_5eed_c0de);
        let agent_links = LinkFaults {
            drop: rng.below(11) as f64 / 100.0,
            duplicate: rng.below(11) as f64 / 100.0,
            reorder: true,
            delay_min: Duration::from_millis(1),
            // One seed in four delays messages by up to two seconds, longer than the agents'
            // first retry, so that stale retries overtake newer updates.
            delay_max: Duration::from_millis(if rng.chance(0.25) {
                500 + rng.below(1500)
            } else {
                5 + rng.below(300)
            }),
        };
        let framework_links = LinkFaults {
            drop: rng.below(6) as f64 / 100.0,
            duplicate: rng.below(6) as f64 / 100.0,
            reorder: false,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(50),
        };
        SimConfig {
            n_agents: 2 + rng.index(5),
            n_frameworks: 1 + rng.index(3),
            chaos_steps,
            settle_time: Duration::from_secs(30),
            agent_links,
            framework_links,
            fault_interval_min: Duration::from_millis(500),
            fault_interval_max: Duration::from_secs(5),
            partitions: true,
            agent_restarts: true,
            framework_disconnects: true,
            master_restarts: false,
            trace_lines: 60,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    pub seed: u64,
    pub steps: usize,
    pub sim_time: Duration,
    /// A hash of every step, to compare two runs of one seed.
    pub trace_hash: u64,
    pub n_launches: usize,
    pub n_used_offers: usize,
    pub n_terminal_seen: usize,
    pub n_faults: usize,
    pub n_master_restarts: usize,
    pub net: NetStats,
}

/// A broken invariant (or a run that stopped making progress).
#[derive(Debug, Clone)]
pub struct SimFailure {
    pub seed: u64,
    pub step: usize,
    pub at: Duration,
    pub message: String,
    /// The last steps before the failure, oldest first.
    pub recent: Vec<String>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SEED={} failed at step {} ({:?} simulated): {}",
            self.seed, self.step, self.at, self.message
        )?;
        writeln!(f, "last steps:")?;
        for line in &self.recent {
            writeln!(f, "  {line}")?;
        }
        write!(f, "replay with SEED={} (same SIM_STEPS)", self.seed)
    }
}

/// Runs one seeded simulation; see the module documentation.
pub fn run(seed: u64, config: &SimConfig) -> Result<SimReport, SimFailure> {
    let mut sim = Simulation::new(seed, config.clone());
    match sim.run() {
        Ok(()) => Ok(sim.report()),
        Err(message) => Err(SimFailure {
            seed,
            step: sim.step,
            at: sim.now,
            message,
            recent: sim.trace.recent.iter().cloned().collect(),
        }),
    }
}

/// FNV-1a over the step descriptions, plus the last few for failure reports.
struct Trace {
    hash: u64,
    recent: VecDeque<String>,
    recent_max: usize,
}

impl Trace {
    fn record(&mut self, line: String) {
        for byte in line.bytes().chain([b'\n']) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        if self.recent.len() >= self.recent_max {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }
}

/// The ACCEPT being handled, to pair the RunTasks it produces with its offers.
struct AcceptContext {
    framework_id: strata_protocol::FrameworkId,
    offer_ids: Vec<OfferId>,
}

/// What happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    Deliver,
    MasterTick,
    Agent(usize),
    Framework(usize),
    Heal(usize),
    Fault,
    Reconnect,
}

struct Simulation {
    seed: u64,
    config: SimConfig,
    now: Duration,
    master: MasterState,
    /// The master's registry, as the actor keeps it.
    registry: InMemoryRegistry,
    net: SimNetwork,
    agents: Vec<AgentModel>,
    frameworks: Vec<FrameworkModel>,
    conns: BTreeMap<FrameworkConn, usize>,
    agent_by_pid: BTreeMap<Pid, usize>,
    checker: Checker,
    rng: SimRng,
    faults_on: bool,
    next_fault: Duration,
    /// Isolated agents and when they heal.
    heals: BTreeMap<usize, Duration>,
    n_faults: usize,
    n_master_restarts: usize,
    /// When every agent reconnects during settling.
    reconnect_at: Option<Duration>,
    step: usize,
    /// Set when the master was stepped; only then can its invariants have changed.
    master_stepped: bool,
    trace: Trace,
}

fn master_config() -> MasterConfig {
    let info: MasterInfo = serde_json::from_value(
        serde_json::json!({"id": "m1", "ip": 0, "port": 5050, "hostname": "master"}),
    )
    .expect("a valid master info");
    let mut config = MasterConfig::new(info);
    // Short timeouts so that partitions turn into unreachable agents within a run.
    config.agent_ping_timeout = Duration::from_secs(2);
    config.max_agent_ping_timeouts = 3;
    // Lost OFFERS events would otherwise hold resources forever.
    config.offer_timeout = Some(Duration::from_secs(10));
    // Short enough that agents which do not come back after a master restart turn unreachable
    // within a run.
    config.agent_reregister_timeout = Duration::from_secs(20);
    config
}

impl Simulation {
    fn new(seed: u64, config: SimConfig) -> Simulation {
        let mut rng = SimRng::new(seed);
        let net = SimNetwork::new(rng.fork(), config.agent_links, config.framework_links);
        let master = MasterState::new(master_config(), Now::at(Duration::ZERO, UNIX_ORIGIN));
        let agents: Vec<AgentModel> = (0..config.n_agents)
            .map(|idx| {
                let cpus = 1 + rng.below(4);
                let mem = 512 * (1 + rng.below(4));
                let resources = Resources::parse(&format!("cpus:{cpus};mem:{mem}"), "*")
                    .expect("valid agent resources");
                let start = rng.duration(Duration::ZERO, Duration::from_secs(2));
                AgentModel::new(idx, rng.fork(), &resources, start)
            })
            .collect();
        let frameworks = (0..config.n_frameworks)
            .map(|idx| {
                let start = rng.duration(Duration::ZERO, Duration::from_secs(2));
                let mut framework = FrameworkModel::new(idx, rng.fork(), idx % 2 == 1, start);
                framework.reuses_live_ids = !config.master_restarts;
                framework
            })
            .collect();
        let agent_by_pid = agents.iter().map(|a| (a.pid.clone(), a.idx)).collect();
        let next_fault = Duration::from_secs(3);
        let trace_lines = config.trace_lines;
        Simulation {
            seed,
            config,
            now: Duration::ZERO,
            master,
            registry: InMemoryRegistry::new(),
            net,
            agents,
            frameworks,
            conns: BTreeMap::new(),
            agent_by_pid,
            checker: Checker::default(),
            rng,
            faults_on: true,
            next_fault,
            heals: BTreeMap::new(),
            n_faults: 0,
            n_master_restarts: 0,
            reconnect_at: None,
            step: 0,
            master_stepped: false,
            trace: Trace {
                hash: 0xcbf2_9ce4_8422_2325,
                recent: VecDeque::new(),
                recent_max: trace_lines,
            },
        }
    }

    fn now(&self) -> Now {
        Now::at(self.now, UNIX_ORIGIN)
    }

    fn run(&mut self) -> Result<(), String> {
        while self.step < self.config.chaos_steps {
            self.step()?;
        }
        self.start_settling();
        let end = self.now + self.config.settle_time;
        // Settling is bounded by time, and by steps in case something livelocks.
        let steps_max = self.step + 200_000;
        while self.peek().0 <= end {
            if self.step >= steps_max {
                return Err("no progress: settling took more than 200000 steps".into());
            }
            self.step()?;
        }
        self.now = end;
        self.check_settled()
    }

    /// Returns the next thing to happen and when.
    fn peek(&self) -> (Duration, Next) {
        let mut best = (Duration::MAX, Next::Fault);
        let mut consider = |at: Duration, next: Next| {
            if (at, next) < best {
                best = (at, next);
            }
        };
        if let Some(at) = self.net.next_delivery() {
            consider(at, Next::Deliver);
        }
        let master_at = if self.master.allocation_pending() {
            self.now
        } else {
            self.master.next_deadline()
        };
        consider(master_at, Next::MasterTick);
        for agent in &self.agents {
            if let Some(at) = agent.next_timer() {
                consider(at, Next::Agent(agent.idx));
            }
        }
        for framework in &self.frameworks {
            consider(framework.next_timer(), Next::Framework(framework.idx));
        }
        for (&idx, &at) in &self.heals {
            consider(at, Next::Heal(idx));
        }
        if self.faults_on {
            consider(self.next_fault, Next::Fault);
        }
        if let Some(at) = self.reconnect_at {
            consider(at, Next::Reconnect);
        }
        best
    }

    /// Does the next thing, then checks every invariant.
    fn step(&mut self) -> Result<(), String> {
        let (at, next) = self.peek();
        self.now = self.now.max(at);
        self.step += 1;
        match next {
            Next::Deliver => self.deliver()?,
            Next::MasterTick => {
                self.trace("master tick".into());
                let mut out = Vec::new();
                self.master.tick(self.now(), &mut out);
                self.dispatch(out, None)?;
            }
            Next::Agent(idx) => {
                let mut out = Vec::new();
                self.agents[idx].on_timer(self.now, &mut out);
                self.trace(format!("agent {idx} timer -> {}", names(&out)));
                self.send_from_agent(idx, out);
            }
            Next::Framework(idx) => {
                let mut out = Vec::new();
                self.frameworks[idx].on_timer(self.now, &mut out);
                self.trace(format!("framework {idx} timer"));
                self.framework_actions(idx, out);
            }
            Next::Heal(idx) => {
                self.heals.remove(&idx);
                self.net.heal(Node::Agent(idx));
                self.trace(format!("heal agent {idx}"));
            }
            Next::Fault => self.inject_fault(),
            Next::Reconnect if self.agents.iter().any(|a| a.agent_id.is_none()) => {
                // An agent without its ID can only register, which reconciles nothing: wait
                // until its registration gets through.
                self.reconnect_at = Some(self.now + Duration::from_secs(2));
                self.trace("settle: waiting for every agent to register".into());
            }
            Next::Reconnect => {
                self.reconnect_at = None;
                self.mark_abandoned_agents_gone()?;
                self.trace("settle: every agent reconnects".into());
                for idx in 0..self.agents.len() {
                    self.link_broken(idx);
                    self.agents[idx].reregister(self.now);
                }
            }
        }
        // Steps that only touch models cannot change the master: checking after those would
        // only repeat the last check (and checking is half the cost of a run).
        if std::mem::take(&mut self.master_stepped) {
            self.master
                .check_invariants()
                .map_err(|err| format!("master invariant: {err}"))?;
        }
        Ok(())
    }

    fn trace(&mut self, what: String) {
        let line = format!("#{} {:?} {what}", self.step, self.now);
        self.trace.record(line);
    }

    fn deliver(&mut self) -> Result<(), String> {
        let Some(envelope) = self.net.pop_due(self.now) else {
            // Cut by a partition on the way: nothing arrived.
            self.trace("delivery cut by a partition".into());
            return Ok(());
        };
        self.trace(format!(
            "{:?} -> {:?} {}",
            envelope.from,
            envelope.to,
            envelope.payload.describe()
        ));
        match (envelope.to, envelope.payload) {
            (Node::Master, Payload::Internal(message)) => {
                let Node::Agent(idx) = envelope.from else {
                    return Err(format!("internal message from {:?}", envelope.from));
                };
                let mut out = Vec::new();
                let pid = self.agents[idx].pid.clone();
                self.master
                    .agent_message(self.now(), pid, message, &mut out);
                self.dispatch(out, None)
            }
            (Node::Master, Payload::Call { conn, call }) => self.master_call(conn, call),
            (Node::Agent(idx), Payload::Internal(message)) => {
                let mut out = Vec::new();
                self.agents[idx].on_message(self.now, message, &mut out);
                self.send_from_agent(idx, out);
                Ok(())
            }
            (Node::Framework(idx), Payload::Event { conn, event }) => {
                let framework = &self.frameworks[idx];
                if let (Event::Update(update), Some(framework_id)) =
                    (&event, &framework.framework_id)
                    && conn == framework.conn
                {
                    self.checker.update_seen(framework_id, &update.status)?;
                }
                let mut out = Vec::new();
                self.frameworks[idx].on_event(self.now, &conn, event, &mut out);
                self.framework_actions(idx, out);
                Ok(())
            }
            (to, payload) => Err(format!("misrouted {} to {to:?}", payload.name())),
        }
    }

    fn master_call(&mut self, conn: FrameworkConn, call: Call) -> Result<(), String> {
        let context = match (&call.body, &call.framework_id) {
            (CallBody::Accept(accept), Some(framework_id)) => Some(AcceptContext {
                framework_id: framework_id.clone(),
                offer_ids: accept.offer_ids.clone(),
            }),
            _ => None,
        };
        let mut out = Vec::new();
        let kind = call.body.type_name();
        if let Err(err) = self.master.scheduler_call(self.now(), conn, call, &mut out) {
            // Calls on a stale connection are refused; that is the master doing its job.
            self.trace(format!("{kind} refused: {err}"));
        }
        self.dispatch(out, context)
    }

    /// Executes the master's effects, checking the launches of an ACCEPT.
    fn dispatch(&mut self, out: Vec<Effect>, accept: Option<AcceptContext>) -> Result<(), String> {
        // Every input to the master comes through here with its effects.
        self.master_stepped = true;
        let mut runs = Vec::new();
        for effect in out {
            match effect {
                Effect::Framework { conn, event } => {
                    if let Event::Offers(offers) = &event {
                        self.checker.offers_sent(&offers.offers)?;
                    }
                    let Some(&idx) = self.conns.get(&conn) else {
                        return Err(format!("event for unknown connection {conn:?}"));
                    };
                    self.net.send(
                        self.now,
                        Node::Master,
                        Node::Framework(idx),
                        Payload::Event { conn, event },
                    );
                }
                Effect::CloseFramework { conn } => {
                    if let Some(&idx) = self.conns.get(&conn) {
                        self.frameworks[idx].closed(self.now, &conn);
                    }
                }
                Effect::Agent { pid, message } => {
                    let Some(&idx) = self.agent_by_pid.get(&pid) else {
                        return Err(format!("message for unknown agent {pid}"));
                    };
                    if let Message::RunTask(run) = &message {
                        if accept.is_none() {
                            return Err(format!(
                                "RunTask for {} outside an ACCEPT",
                                run.task.task_id
                            ));
                        }
                        runs.push((**run).clone());
                    }
                    self.net.send(
                        self.now,
                        Node::Master,
                        Node::Agent(idx),
                        Payload::Internal(message),
                    );
                }
                Effect::Link { .. } => {}
                Effect::Registry(op) => {
                    if let Err(err) = self.registry.apply(&op) {
                        return Err(format!("in-memory registry refused {op:?}: {err}"));
                    }
                }
            }
        }
        if let Some(accept) = accept {
            let runs: Vec<_> = runs.iter().collect();
            self.checker
                .accepted(&accept.framework_id, &accept.offer_ids, &runs)?;
        }
        Ok(())
    }

    fn send_from_agent(&mut self, idx: usize, out: Vec<Message>) {
        for message in out {
            self.net.send(
                self.now,
                Node::Agent(idx),
                Node::Master,
                Payload::Internal(message),
            );
        }
    }

    fn framework_actions(&mut self, idx: usize, out: Vec<framework::Action>) {
        for action in out {
            match action {
                framework::Action::Call { conn, call } => {
                    self.conns.insert(conn.clone(), idx);
                    self.net.send(
                        self.now,
                        Node::Framework(idx),
                        Node::Master,
                        Payload::Call { conn, call },
                    );
                }
                framework::Action::Disconnect { conn } => {
                    // The framework closed its side: the master hears of it at once, as a
                    // transport reports a closed connection.
                    let mut effects = Vec::new();
                    self.master
                        .framework_disconnected(self.now(), &conn, &mut effects);
                    if let Err(err) = self.dispatch(effects, None) {
                        tracing::error!(%err, "unexpected effects of a disconnection");
                    }
                }
            }
        }
    }

    fn inject_fault(&mut self) {
        self.next_fault = self.now
            + self.rng.duration(
                self.config.fault_interval_min,
                self.config.fault_interval_max,
            );
        self.n_faults += 1;
        let idx = self.rng.index(self.agents.len());
        let roll = self.rng.below(100);
        if roll < 35 && self.config.partitions && !self.heals.contains_key(&idx) {
            // Long enough, sometimes, for the master to mark the agent unreachable.
            let length = self
                .rng
                .duration(Duration::from_secs(1), Duration::from_secs(20));
            self.net.isolate(Node::Agent(idx));
            self.heals.insert(idx, self.now + length);
            let break_link = self.rng.chance(0.5);
            self.trace(format!(
                "fault: isolate agent {idx} for {length:?} (link break: {break_link})"
            ));
            if break_link {
                self.link_broken(idx);
                self.agents[idx].reregister(self.now);
            }
        } else if roll < 55 && self.config.agent_restarts {
            self.trace(format!("fault: restart agent {idx}"));
            self.net.discard_to(Node::Agent(idx));
            self.link_broken(idx);
            self.agents[idx].restart(self.now);
        } else if roll < 75 && self.config.framework_disconnects {
            let fw = self.rng.index(self.frameworks.len());
            if self.frameworks[fw].is_subscribed() {
                self.trace(format!("fault: disconnect framework {fw}"));
                let conn = self.frameworks[fw].conn.clone();
                let mut effects = Vec::new();
                self.master
                    .framework_disconnected(self.now(), &conn, &mut effects);
                if let Err(err) = self.dispatch(effects, None) {
                    tracing::error!(%err, "unexpected effects of a disconnection");
                }
                self.frameworks[fw].disconnected(self.now);
            }
        } else if self.config.master_restarts {
            self.restart_master();
        } else {
            self.trace("fault: none".into());
        }
    }

    /// Replaces the master with a new one recovered from the registry, as a master process
    /// restart does: what was in flight to the old master is lost, and every agent and
    /// framework notices the new leader.
    fn restart_master(&mut self) {
        self.n_master_restarts += 1;
        self.trace(format!(
            "fault: restart master ({})",
            self.n_master_restarts
        ));
        let mut config = master_config();
        // A restarted master has an ID of its own, which prefixes the IDs it hands out.
        config.master_info.id = format!("m1r{}", self.n_master_restarts);
        self.master = MasterState::recover(config, self.now(), self.registry.state());
        self.master_stepped = true;
        self.net.discard_to(Node::Master);
        // What the old master sent and is still on its way would be fenced by its older
        // epoch.
        self.net.discard_from(Node::Master);
        for agent in &mut self.agents {
            agent.reregister(self.now);
        }
        for framework in &mut self.frameworks {
            if framework.is_subscribed() {
                framework.disconnected(self.now);
            }
        }
    }

    fn link_broken(&mut self, idx: usize) {
        let pid = self.agents[idx].pid.clone();
        let mut effects = Vec::new();
        self.master.link_broken(self.now(), &pid, &mut effects);
        if let Err(err) = self.dispatch(effects, None) {
            tracing::error!(%err, "unexpected effects of a broken link");
        }
    }

    /// Heals everything, stops faults and new launches, and a little later (once every agent
    /// has its ID) makes every agent reconnect.
    ///
    /// NOTE: Real links are TCP: a message is lost only when its connection breaks, and then
    /// the agent reregisters. The simulated network loses single messages without breaking
    /// anything, so a lost RunTask would leave the master waiting forever for a task the
    /// agent never heard of. Reconnecting every agent once at the end is what the real
    /// transport would have caused; the master then reconciles the agent's tasks.
    fn start_settling(&mut self) {
        self.trace("settle: heal all, faults off".into());
        self.faults_on = false;
        self.net.stop_faults();
        self.net.heal_all();
        self.heals.clear();
        for framework in &mut self.frameworks {
            framework.launching = false;
        }
        self.reconnect_at = Some(self.now + Duration::from_secs(5));
    }

    /// Invariant 3, once settled: every launched task reached one terminal state the framework
    /// knows, or reconciliation reports it live and its agent runs it.
    fn check_settled(&mut self) -> Result<(), String> {
        let mut reported: BTreeMap<(usize, TaskId), TaskState> = BTreeMap::new();
        for idx in 0..self.frameworks.len() {
            let framework = &self.frameworks[idx];
            if !framework.is_subscribed() {
                return Err(format!("framework {idx} is not subscribed after settling"));
            }
            let call = Call {
                framework_id: framework.framework_id.clone(),
                body: CallBody::Reconcile(scheduler::Reconcile { tasks: Vec::new() }),
            };
            let mut out = Vec::new();
            self.master
                .scheduler_call(self.now(), framework.conn.clone(), call, &mut out)
                .map_err(|err| format!("final RECONCILE of framework {idx} refused: {err}"))?;
            for effect in out {
                if let Effect::Framework {
                    event: Event::Update(update),
                    ..
                } = effect
                {
                    reported.insert((idx, update.status.task_id.clone()), update.status.state);
                }
            }
        }
        let by_id: BTreeMap<_, _> = self
            .frameworks
            .iter()
            .filter_map(|f| f.framework_id.clone().map(|id| (id, f.idx)))
            .collect();
        let launched: Vec<_> = self
            .checker
            .launched()
            .map(|(f, t, a)| (f.clone(), t.clone(), a.clone()))
            .collect();
        for (framework_id, task_id, agent_id) in &launched {
            let Some(&fw) = by_id.get(framework_id) else {
                return Err(format!(
                    "task {task_id} launched for unknown framework {framework_id}"
                ));
            };
            let history = self
                .checker
                .histories
                .get(&(framework_id.clone(), task_id.clone()));
            let terminal = history.and_then(|h| h.terminal.or(h.reconciled));
            let states = history.map(|h| h.states.clone()).unwrap_or_default();
            match (terminal, reported.get(&(fw, task_id.clone()))) {
                (Some(seen), Some(&now)) if !now.is_terminal() => {
                    return Err(format!(
                        "invariant 3: task {task_id} of framework {fw}: the framework saw {seen} \
                         but reconciliation reports {now} (states seen {states:?})"
                    ));
                }
                (None, None) if self.explicitly_ended(fw, task_id, agent_id)? => {}
                (None, None) => {
                    return Err(format!(
                        "invariant 3: task {task_id} of framework {fw} on {agent_id} reached no \
                         terminal state the framework knows, and reconciliation does not report \
                         it (states seen {states:?})"
                    ));
                }
                (None, Some(&now)) if !now.is_terminal() => {
                    let runs = self.agents.iter().any(|a| {
                        a.agent_id.as_ref() == Some(agent_id) && a.runs(framework_id, task_id)
                    });
                    if !runs {
                        return Err(format!(
                            "invariant 3: reconciliation reports task {task_id} of framework {fw} \
                             as {now} but agent {agent_id} does not run it (states seen {states:?})"
                        ));
                    }
                }
                _ => {}
            }
        }
        for agent in &self.agents {
            if !agent.is_registered() {
                return Err(format!(
                    "agent {} is not registered after settling",
                    agent.idx
                ));
            }
            if !agent.updates_drained() {
                return Err(format!(
                    "agent {} still has unacknowledged status updates after settling",
                    agent.idx
                ));
            }
            for (framework_id, task_id) in agent.live_tasks() {
                let live = by_id
                    .get(framework_id)
                    .and_then(|fw| reported.get(&(*fw, task_id.clone())))
                    .is_some_and(|state| !state.is_terminal());
                if !live {
                    return Err(format!(
                        "agent {} runs task {task_id} of {framework_id} that the master does not \
                         report live",
                        agent.idx
                    ));
                }
            }
        }
        Ok(())
    }

    /// Marks gone, as an operator would, the unreachable (or recovered, after a master
    /// restart) agent IDs that no agent holds any more: an agent that never learned its ID
    /// registers again under a new one, and the tasks the master placed under the old ID would
    /// otherwise wait for it forever (Mesos leaves them to the operator, or to the registry's
    /// garbage collection, too).
    fn mark_abandoned_agents_gone(&mut self) -> Result<(), String> {
        let unreachable = self
            .master
            .unreachable_agents()
            .into_iter()
            .map(|(agent_id, _, _)| agent_id);
        let recovered = self
            .master
            .recovered_agents()
            .into_iter()
            .map(|(agent_id, _)| agent_id);
        let abandoned: Vec<_> = unreachable
            .chain(recovered)
            .filter(|agent_id| {
                self.agents
                    .iter()
                    .all(|a| a.agent_id.as_ref() != Some(agent_id))
            })
            .collect();
        for agent_id in abandoned {
            self.trace(format!("operator: mark abandoned agent {agent_id} gone"));
            let mut out = Vec::new();
            self.master
                .mark_agent_gone(self.now(), &agent_id, &mut out)
                .map_err(|err| format!("MARK_AGENT_GONE {agent_id} refused: {err}"))?;
            self.dispatch(out, None)?;
        }
        Ok(())
    }

    /// Asks the master about one task, as a framework reconciles the tasks it still believes
    /// live; returns true if the answer is a terminal state. Updates the master generates
    /// itself (say, for a task an agent came back without) are not retried, so a framework
    /// that lost one learns the end this way.
    fn explicitly_ended(
        &mut self,
        fw: usize,
        task_id: &TaskId,
        agent_id: &strata_protocol::AgentId,
    ) -> Result<bool, String> {
        let framework = &self.frameworks[fw];
        let tasks = vec![scheduler::ReconcileTask {
            task_id: task_id.clone(),
            agent_id: Some(agent_id.clone()),
        }];
        let call = Call {
            framework_id: framework.framework_id.clone(),
            body: CallBody::Reconcile(scheduler::Reconcile { tasks }),
        };
        let mut out = Vec::new();
        self.master
            .scheduler_call(self.now(), framework.conn.clone(), call, &mut out)
            .map_err(|err| format!("explicit RECONCILE of framework {fw} refused: {err}"))?;
        Ok(out.iter().any(|effect| {
            matches!(effect, Effect::Framework { event: Event::Update(update), .. }
                if update.status.state.is_terminal())
        }))
    }

    fn report(&self) -> SimReport {
        SimReport {
            seed: self.seed,
            steps: self.step,
            sim_time: self.now,
            trace_hash: self.trace.hash,
            n_launches: self.checker.n_launches(),
            n_used_offers: self.checker.n_used_offers(),
            n_terminal_seen: self
                .checker
                .histories
                .values()
                .filter(|h| h.terminal.is_some())
                .count(),
            n_faults: self.n_faults,
            n_master_restarts: self.n_master_restarts,
            net: self.net.stats,
        }
    }
}

fn names(messages: &[Message]) -> String {
    let names: Vec<&str> = messages.iter().map(Message::name).collect();
    names.join(",")
}
