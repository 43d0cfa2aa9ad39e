//! Measures the heap a `MasterState` holds per registered agent and per running task, with a
//! counting global allocator. Run with `cargo bench -p strata-master --bench memory`.
//!
//! The phases drive the pure state machine as the actor would: an empty master; N agents
//! registering (hostname, `cpus:16;mem:65536;disk:1048576;ports:[31000-32000]`, four
//! attributes); M frameworks subscribing; offers accepted with LAUNCH until T tasks of
//! `cpus:0.1;mem:64` (a shell command, no labels) are staging; then each task's RUNNING update
//! delivered and acknowledged. Between phases the bench keeps nothing but the master and a few
//! compact lists whose own heap is measured and subtracted, so each delta is the master's.
//!
//! The targets are under 4 KiB per agent and under 2 KiB per running task. Sizes are the bytes
//! requested from the allocator; malloc adds its own header and rounding to each block, so the
//! live block counts are reported too.
//!
//! `-- agents=N tasks=T frameworks=M` (or `STRATA_MEMBENCH_AGENTS`, `_TASKS`, `_FRAMEWORKS`)
//! change the sizes; the defaults are 10,000 agents, 100,000 tasks and 100 frameworks. Under
//! `cargo test --all-targets`, which runs the binary without `--bench`, it makes a smoke run of
//! 200 agents, 2,000 tasks and 10 frameworks. A breakdown follows the table: single values
//! (`Resources`, `AgentInfo`, `Task`, ...) built as the master builds them, and models of its
//! maps, to show what the bytes are spent on.

// The counting allocator must implement `GlobalAlloc`, an unsafe trait; see its SAFETY comment.
#![allow(unsafe_code)]
// The benchmark reports its table on stdout, which the workspace lints deny by default.
#![allow(clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_master::allocator::{Allocator, AllocatorConfig};
use strata_master::state::{Effect, FrameworkConn, MasterConfig, MasterState, Now};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{
    AgentCapability, AgentCapabilityType, AgentInfo, Attribute, ContainerInfo, DiscoveryInfo,
    Filters, FrameworkInfo, HealthCheck, KillPolicy, Labels, Launch, MasterInfo, Offer, Operation,
    OperationBody, Task, TaskInfo, TaskState, TaskStatus, TaskStatusSource, Text,
};
use strata_protocol::resources::{Scalar, ValueType};
use strata_protocol::scheduler::Call;
use strata_protocol::scheduler::{
    Accept, Acknowledge, CallBody, Decline, Event, Subscribe, Suppress,
};
use strata_protocol::{AgentId, Bytes, FrameworkId, Pid, Resource, Resources, TaskId};

const AGENT_RESOURCES: &str = "cpus:16;mem:65536;disk:1048576;ports:[31000-32000]";
const TASK_RESOURCES: &str = "cpus:0.1;mem:64";
const N_ROLES: usize = 5;
const AGENT_TARGET: f64 = 4096.0;
const TASK_TARGET: f64 = 2048.0;
/// The wall clock at the bench's time zero.
const UNIX_ORIGIN: f64 = 1_800_000_000.0;

// -------------------------------------------------------------------------------------------
// The counting allocator.
// -------------------------------------------------------------------------------------------

/// Forwards to the system allocator and keeps count of the bytes and blocks live.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);

#[global_allocator]
static COUNTING: Counting = Counting;

fn count(bytes: usize, blocks: i64) {
    // Relaxed is enough: the bench reads the counters on the thread that allocates.
    LIVE_BYTES.fetch_add(bytes as i64 * blocks.signum(), Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(blocks, Ordering::Relaxed);
}

// SAFETY: every method hands its arguments unchanged to `System`, which implements the
// `GlobalAlloc` contract, and returns what `System` returned; the only addition is updating two
// atomics, which neither allocates nor touches the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `alloc`'s contract, which is `System.alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        count(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; our caller upholds the rest.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // One block replaced by another: the block count stays.
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        new
    }
}

/// Live heap: bytes requested and blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Heap {
    bytes: i64,
    blocks: i64,
}

impl Heap {
    fn now() -> Heap {
        Heap {
            bytes: LIVE_BYTES.load(Ordering::Relaxed),
            blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
        }
    }

    fn per(self, n: usize) -> (f64, f64) {
        let n = n.max(1) as f64;
        (self.bytes as f64 / n, self.blocks as f64 / n)
    }
}

impl std::ops::Add for Heap {
    type Output = Heap;
    fn add(self, other: Heap) -> Heap {
        Heap {
            bytes: self.bytes + other.bytes,
            blocks: self.blocks + other.blocks,
        }
    }
}

impl std::ops::Sub for Heap {
    type Output = Heap;
    fn sub(self, other: Heap) -> Heap {
        Heap {
            bytes: self.bytes - other.bytes,
            blocks: self.blocks - other.blocks,
        }
    }
}

/// Returns the heap a deep copy of `value` holds.
fn deep_size<T: Clone>(value: &T) -> Heap {
    let before = Heap::now();
    let copy = value.clone();
    let size = Heap::now() - before;
    drop(copy);
    size
}

/// Returns the heap `vec` holds with its spare capacity, which a clone would not have.
fn deep_size_of_vec<T: Clone>(vec: &Vec<T>) -> Heap {
    let elements: Heap = vec
        .iter()
        .map(deep_size)
        .fold(Heap::default(), |a, b| a + b);
    let buffer = Heap {
        bytes: (vec.capacity() * std::mem::size_of::<T>()) as i64,
        blocks: i64::from(vec.capacity() > 0),
    };
    elements + buffer
}

/// Returns a tight copy of `value` (a clone has no spare capacity) and the heap it holds.
fn compacted<T: Clone>(value: T) -> (T, Heap) {
    let before = Heap::now();
    let copy = value.clone();
    let size = Heap::now() - before;
    drop(value);
    (copy, size)
}

/// Returns the heap `build`'s result holds, and the result.
fn built<T>(build: impl FnOnce() -> T) -> (T, Heap) {
    let before = Heap::now();
    let value = build();
    (value, Heap::now() - before)
}

// -------------------------------------------------------------------------------------------
// Timing.
// -------------------------------------------------------------------------------------------

/// Returns the CPU time this thread has used, from Linux's `/proc/thread-self/schedstat`, or
/// zero where that is not available; it leaves out time spent waiting for a shared core.
fn thread_cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(nanos.unwrap_or(0))
}

/// Wall and thread CPU time of a phase.
#[derive(Debug, Clone, Copy, Default)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} / {:.0} ms",
            self.wall.as_secs_f64() * 1000.0,
            self.cpu.as_secs_f64() * 1000.0
        )
    }
}

/// Returns how long `run` takes, and its result.
#[allow(clippy::disallowed_methods)] // A benchmark measures wall time; it is not a pure core.
fn timed<T>(run: impl FnOnce() -> T) -> (Took, T) {
    let (start, cpu_start) = (Instant::now(), thread_cpu_time());
    let result = run();
    let took = Took {
        wall: start.elapsed(),
        cpu: thread_cpu_time().saturating_sub(cpu_start),
    };
    (took, result)
}

// -------------------------------------------------------------------------------------------
// The cluster: agents, frameworks and tasks, each derived from its index so that the bench
// need not keep them.
// -------------------------------------------------------------------------------------------

/// The sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    agents: usize,
    tasks: usize,
    frameworks: usize,
}

impl Sizes {
    /// Reads `agents=N tasks=T frameworks=M` from the arguments or `STRATA_MEMBENCH_*` from
    /// the environment, on top of the full or the smoke defaults.
    fn from_args_and_env() -> Sizes {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary too,
        // without it: a small smoke run then checks every phase without holding up the tests.
        let mut sizes = if args.iter().any(|arg| arg == "--bench") {
            Sizes {
                agents: 10_000,
                tasks: 100_000,
                frameworks: 100,
            }
        } else {
            Sizes {
                agents: 200,
                tasks: 2_000,
                frameworks: 10,
            }
        };
        for (key, field) in [
            ("agents", &mut sizes.agents),
            ("tasks", &mut sizes.tasks),
            ("frameworks", &mut sizes.frameworks),
        ] {
            let from_env = std::env::var(format!("STRATA_MEMBENCH_{}", key.to_uppercase())).ok();
            let prefix = format!("{key}=");
            let from_args = args.iter().find_map(|arg| arg.strip_prefix(&prefix));
            if let Some(value) = from_args.or(from_env.as_deref()) {
                *field = value.replace('_', "").parse().expect("sizes are integers");
            }
        }
        assert!(
            sizes.agents > 0 && sizes.frameworks > 0,
            "need agents and frameworks"
        );
        sizes
    }
}

fn master_info() -> MasterInfo {
    serde_json::from_value(json!({
        "id": "6f1b1c5e-8f2a-4c1e-9d55-3b9e0c7a1f42",
        "ip": 167_772_161,
        "port": 5050,
        "hostname": "master-1.dc1.example.com",
    }))
    .expect("valid master info")
}

fn agent_hostname(idx: usize) -> String {
    format!("agent-{idx:06}.dc1.example.com")
}

/// Reads the agent's index back from its hostname, as offers carry it.
fn agent_index(hostname: &str) -> usize {
    hostname
        .strip_prefix("agent-")
        .and_then(|rest| rest.get(..6))
        .and_then(|digits| digits.parse().ok())
        .expect("an agent hostname of this bench")
}

fn agent_pid(idx: usize) -> Pid {
    let host = format!(
        "10.{}.{}.{}",
        1 + idx / 65_536,
        (idx / 256) % 256,
        idx % 256
    );
    Pid::new("slave(1)", host, 5051).expect("valid pid")
}

fn text_attribute(name: &str, value: String) -> Attribute {
    Attribute {
        name: name.to_owned(),
        value_type: ValueType::Text,
        scalar: None,
        ranges: None,
        set: None,
        text: Some(Text { value }),
    }
}

fn register_agent(idx: usize, resources: &[Resource]) -> internal::RegisterAgent {
    let agent_info = AgentInfo {
        hostname: agent_hostname(idx),
        port: Some(5051),
        resources: resources.to_vec(),
        attributes: vec![
            text_attribute("rack", format!("rack-{:04}", idx / 40)),
            text_attribute("zone", format!("zone-{}", idx % 3)),
            text_attribute("os", "ubuntu-22.04".to_owned()),
            text_attribute("instance_type", "m5.4xlarge".to_owned()),
        ],
        id: None,
        domain: None,
    };
    let capabilities = [
        AgentCapabilityType::MultiRole,
        AgentCapabilityType::HierarchicalRole,
        AgentCapabilityType::ReservationRefinement,
        AgentCapabilityType::AgentDraining,
    ];
    internal::RegisterAgent {
        agent_info,
        checkpointed_resources: Vec::new(),
        version: "1.11.0".to_owned(),
        capabilities: capabilities
            .into_iter()
            .map(AgentCapability::from)
            .collect(),
    }
}

fn framework_info(idx: usize) -> FrameworkInfo {
    serde_json::from_value(json!({
        "user": "nobody",
        "name": format!("marathon-{idx:04}"),
        "failover_timeout": 604_800.0,
        "checkpoint": true,
        "roles": [format!("role-{}", idx % N_ROLES)],
        "hostname": format!("scheduler-{idx:04}.dc1.example.com"),
        "principal": format!("principal-{idx:04}"),
        "capabilities": [
            {"type": "MULTI_ROLE"},
            {"type": "PARTITION_AWARE"},
            {"type": "TASK_KILLING_STATE"},
        ],
    }))
    .expect("valid framework info")
}

/// The framework's HTTP event stream, named like a `Mesos-Stream-Id`.
fn framework_conn(idx: usize) -> FrameworkConn {
    FrameworkConn::Http(format!("5d8c2a0e-1b7f-4e3a-9c61-{idx:012x}"))
}

/// A Marathon-style task ID: the app's name and a UUID.
fn task_id(framework: usize, seq: usize) -> TaskId {
    TaskId::new(format!(
        "app-{:02}.{seq:08x}-4b1d-11ef-9a3b-{framework:012x}",
        seq % 50
    ))
    .expect("valid task ID")
}

/// The status update UUID of a task's RUNNING update.
fn update_uuid(framework: usize, seq: usize) -> Bytes {
    let mut uuid = vec![0x5a; 16];
    uuid[..8].copy_from_slice(&(seq as u64).to_le_bytes());
    uuid[8..12].copy_from_slice(&(framework as u32).to_le_bytes());
    Bytes::new(uuid)
}

/// One launched task, as compact as the bench can keep it.
#[derive(Debug, Clone, Copy)]
struct Launched {
    agent: u32,
    framework: u32,
    seq: u32,
}

/// Drives the master as the actor would, with the time fixed: every phase happens within the
/// first agent ping interval, so no pings or heartbeats are due.
struct Driver {
    state: MasterState,
}

impl Driver {
    fn now() -> Now {
        Now::at(Duration::ZERO, UNIX_ORIGIN)
    }

    fn agent_message(&mut self, from: &Pid, message: Message) -> Vec<Effect> {
        let mut out = Vec::new();
        self.state
            .agent_message(Driver::now(), from.clone(), message, &mut out);
        out
    }

    fn call(&mut self, conn: &FrameworkConn, framework_id: Option<&FrameworkId>, body: CallBody) {
        let call = Call {
            framework_id: framework_id.cloned(),
            body,
        };
        let mut out = Vec::new();
        self.state
            .scheduler_call(Driver::now(), conn.clone(), call, &mut out)
            .expect("call accepted");
    }

    fn call_for_effects(&mut self, conn: &FrameworkConn, body: CallBody) -> Vec<Effect> {
        let call = Call {
            framework_id: None,
            body,
        };
        let mut out = Vec::new();
        self.state
            .scheduler_call(Driver::now(), conn.clone(), call, &mut out)
            .expect("call accepted");
        out
    }

    fn tick(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        self.state.tick(Driver::now(), &mut out);
        out
    }
}

// -------------------------------------------------------------------------------------------
// The phases.
// -------------------------------------------------------------------------------------------

/// Registers the agents; returns their IDs, by index.
fn register_agents(driver: &mut Driver, n_agents: usize) -> Vec<AgentId> {
    let resources = Resources::parse(AGENT_RESOURCES, "*")
        .expect("valid agent resources")
        .to_wire();
    let mut agent_ids = Vec::with_capacity(n_agents);
    for idx in 0..n_agents {
        let pid = agent_pid(idx);
        let register = register_agent(idx, &resources);
        let effects = driver.agent_message(&pid, Message::RegisterAgent(Box::new(register)));
        let agent_id = effects.into_iter().find_map(|effect| match effect {
            Effect::Agent {
                message: Message::AgentRegistered(registered),
                ..
            } => Some(registered.agent_id),
            _ => None,
        });
        agent_ids.push(agent_id.expect("agent registered"));
    }
    agent_ids
}

/// Subscribes the frameworks; returns their IDs, by index.
fn subscribe_frameworks(driver: &mut Driver, n_frameworks: usize) -> Vec<FrameworkId> {
    (0..n_frameworks)
        .map(|idx| {
            let subscribe = Subscribe {
                framework_info: framework_info(idx),
                suppressed_roles: Vec::new(),
                offer_constraints: None,
            };
            let effects = driver.call_for_effects(
                &framework_conn(idx),
                CallBody::Subscribe(Box::new(subscribe)),
            );
            let framework_id = effects.into_iter().find_map(|effect| match effect {
                Effect::Framework {
                    event: Event::Subscribed(subscribed),
                    ..
                } => Some(subscribed.framework_id),
                _ => None,
            });
            framework_id.expect("SUBSCRIBED")
        })
        .collect()
}

/// A task like `template`, with its own name and ID, for the offered agent.
fn task_info(template: &TaskInfo, framework: usize, seq: usize, agent_id: &AgentId) -> TaskInfo {
    let mut info = template.clone();
    info.name = format!("app-{:02}", seq % 50);
    info.task_id = task_id(framework, seq);
    info.agent_id = agent_id.clone();
    info
}

/// A command task of `TASK_RESOURCES`; `task_info` fills in its name, ID and agent.
fn task_template() -> TaskInfo {
    let mut template: TaskInfo = serde_json::from_value(json!({
        "name": "template",
        "task_id": {"value": "template"},
        "agent_id": {"value": "template"},
        "command": {"shell": true, "value": "./bin/server --port $PORT0"},
    }))
    .expect("valid task info");
    template.resources = Resources::parse(TASK_RESOURCES, "*")
        .expect("valid task resources")
        .to_wire();
    template
}

/// Accepts offers with LAUNCH until `n_tasks` tasks are staging, spread evenly over the
/// frameworks and `ceil(tasks / agents)` to an offer; returns the tasks and the allocation runs
/// it took. Unused offers are declined without a filter, and a framework with all its tasks
/// suppresses, so that no offers or filters are left when it returns.
fn launch_tasks(
    driver: &mut Driver,
    frameworks: &[FrameworkId],
    sizes: Sizes,
) -> (Vec<Launched>, usize) {
    let template = task_template();
    let per_offer = sizes.tasks.div_ceil(sizes.agents).max(1);
    let quota = |framework: usize| {
        sizes.tasks / sizes.frameworks + usize::from(framework < sizes.tasks % sizes.frameworks)
    };
    let conns: BTreeMap<FrameworkConn, usize> = (0..frameworks.len())
        .map(|idx| (framework_conn(idx), idx))
        .collect();
    let mut launched_by = vec![0; frameworks.len()];
    let mut launched = Vec::with_capacity(sizes.tasks);
    let no_filter = Some(Filters {
        refuse_seconds: Some(0.0),
    });
    let mut runs = 0;
    while launched.len() < sizes.tasks {
        runs += 1;
        let offers: Vec<(usize, Offer)> = driver
            .tick()
            .into_iter()
            .flat_map(|effect| match effect {
                Effect::Framework {
                    conn,
                    event: Event::Offers(offers),
                } => {
                    let idx = conns[&conn];
                    offers
                        .offers
                        .into_iter()
                        .map(|offer| (idx, offer))
                        .collect()
                }
                _ => Vec::new(),
            })
            .collect();
        assert!(
            !offers.is_empty(),
            "no offers with {} of {} tasks launched: the cluster is full",
            launched.len(),
            sizes.tasks
        );
        for (idx, offer) in offers {
            let conn = framework_conn(idx);
            let framework_id = Some(&frameworks[idx]);
            let count = per_offer
                .min(quota(idx) - launched_by[idx])
                .min(sizes.tasks - launched.len());
            if count == 0 {
                let decline = Decline {
                    offer_ids: vec![offer.id],
                    filters: no_filter,
                };
                driver.call(&conn, framework_id, CallBody::Decline(decline));
                continue;
            }
            let agent = agent_index(&offer.hostname);
            let task_infos = (0..count)
                .map(|n| {
                    let seq = launched_by[idx] + n;
                    launched.push(Launched {
                        agent: agent as u32,
                        framework: idx as u32,
                        seq: seq as u32,
                    });
                    task_info(&template, idx, seq, &offer.agent_id)
                })
                .collect();
            launched_by[idx] += count;
            let accept = Accept {
                offer_ids: vec![offer.id],
                operations: vec![Operation {
                    id: None,
                    body: OperationBody::Launch(Launch { task_infos }),
                }],
                filters: no_filter,
            };
            driver.call(&conn, framework_id, CallBody::Accept(accept));
            if launched_by[idx] == quota(idx) {
                let suppress = Suppress { roles: Vec::new() };
                driver.call(&conn, framework_id, CallBody::Suppress(suppress));
            }
        }
    }
    (launched, runs)
}

/// Delivers each task's RUNNING update from its agent and acknowledges it.
fn run_tasks(
    driver: &mut Driver,
    launched: &[Launched],
    agents: &[AgentId],
    frameworks: &[FrameworkId],
) {
    for task in launched {
        let (agent, framework, seq) = (
            task.agent as usize,
            task.framework as usize,
            task.seq as usize,
        );
        let uuid = update_uuid(framework, seq);
        let mut status = TaskStatus::new(task_id(framework, seq), TaskState::Running);
        status.source = Some(TaskStatusSource::Executor);
        status.timestamp = Some(UNIX_ORIGIN);
        status.uuid = Some(uuid.clone());
        let update = internal::StatusUpdate {
            framework_id: frameworks[framework].clone(),
            agent_id: agents[agent].clone(),
            executor_id: None,
            status,
            timestamp: UNIX_ORIGIN,
            uuid: uuid.clone(),
            latest_state: None,
        };
        let effects =
            driver.agent_message(&agent_pid(agent), Message::StatusUpdate(Box::new(update)));
        assert!(
            effects.iter().any(|effect| matches!(
                effect,
                Effect::Framework {
                    event: Event::Update(_),
                    ..
                }
            )),
            "RUNNING update forwarded"
        );
        let ack = Acknowledge {
            agent_id: agents[agent].clone(),
            task_id: task_id(framework, seq),
            uuid,
        };
        driver.call(
            &framework_conn(framework),
            Some(&frameworks[framework]),
            CallBody::Acknowledge(ack),
        );
    }
}

// -------------------------------------------------------------------------------------------
// The breakdown: what single values cost, built as the master builds them.
// -------------------------------------------------------------------------------------------

/// A task as `record_task` stores it, after its RUNNING update was pushed onto its statuses.
fn model_task(
    seq: usize,
    agent_id: &AgentId,
    framework_id: &FrameworkId,
    allocated: &Resources,
) -> Task {
    let task_id = task_id(0, seq);
    let uuid = update_uuid(0, seq);
    let mut status = TaskStatus::new(task_id.clone(), TaskState::Running);
    status.source = Some(TaskStatusSource::Executor);
    status.timestamp = Some(UNIX_ORIGIN);
    status.uuid = Some(uuid.clone());
    status.agent_id = Some(agent_id.clone());
    let mut task = Task {
        name: "app-00".to_owned(),
        task_id,
        framework_id: framework_id.clone(),
        executor_id: None,
        agent_id: agent_id.clone(),
        state: TaskState::Running,
        resources: allocated.to_wire(),
        statuses: Vec::new(),
        status_update_state: Some(TaskState::Running),
        status_update_uuid: Some(uuid),
        labels: None,
        discovery: None,
        container: None,
        health_check: None,
        kill_policy: None,
        user: None,
        limits: BTreeMap::new(),
    };
    // As `status_update` does: the first push onto an empty Vec reserves four statuses.
    task.statuses.push(status);
    task
}

fn print_breakdown(agent_id: &AgentId, framework_id: &FrameworkId) {
    let agent_total = Resources::parse(AGENT_RESOURCES, "*").expect("valid");
    let task_plain = Resources::parse(TASK_RESOURCES, "*").expect("valid");
    let mut task_allocated = Resources::new();
    for resource in task_plain.iter() {
        let resource = resource.with_allocation("role-0");
        task_allocated.add_resource(&resource).expect("valid");
    }
    let (task, task_heap) = built(|| model_task(0, agent_id, framework_id, &task_allocated));
    let info = register_agent(0, &agent_total.to_wire()).agent_info;
    // Inserted one at a time, as the master does: `collect` would build full B-tree nodes.
    let (task_map, task_map_heap) = built(|| {
        let mut map: BTreeMap<TaskId, (Task, Resources, bool)> = BTreeMap::new();
        for seq in 0..1000 {
            let task = model_task(seq, agent_id, framework_id, &task_allocated);
            map.insert(task.task_id.clone(), (task, task_allocated.clone(), false));
        }
        map
    });
    // An agent's tasks: 10 to an agent, as in the default run.
    let (_, task_keys_heap) = built(|| {
        let mut sets = vec![std::collections::BTreeSet::new(); 100];
        for seq in 0..1000 {
            sets[seq % 100].insert((framework_id.clone(), task_id(0, seq)));
        }
        sets
    });
    let (allocator, allocator_heap) = built(|| {
        let mut allocator = Allocator::new(AllocatorConfig::default());
        for idx in 0..1000 {
            let agent_id = AgentId::new(format!("{}-S{}", master_info().id, idx + 1)).expect("ID");
            allocator
                .add_agent(agent_id, agent_total.clone(), BTreeMap::new())
                .expect("new agent");
        }
        allocator
    });
    drop(allocator);

    let allocator_per_task = allocator_share_per_task(&agent_total);

    let row = |what: &str, heap: Heap, inline: usize| {
        println!(
            "  {what:<58} {:>7} B heap {:>4} blocks {:>5} B inline",
            heap.bytes, heap.blocks, inline
        );
    };
    println!();
    println!("breakdown (one value, built as the master builds it):");
    row(
        "Resources of an agent: cpus, mem, disk, ports",
        deep_size(&agent_total),
        std::mem::size_of::<Resources>(),
    );
    row(
        "Resources of a task: cpus, mem, allocated to a role",
        deep_size(&task_allocated),
        std::mem::size_of::<Resources>(),
    );
    row(
        "  the same as wire Vec<Resource> (Task.resources)",
        deep_size(&task_allocated.to_wire()),
        std::mem::size_of::<Vec<Resource>>(),
    );
    row(
        "AgentInfo (hostname, 4 resources, 4 attributes)",
        deep_size(&info),
        std::mem::size_of::<AgentInfo>(),
    );
    row(
        "  its resources: the total again, as wire Vec<Resource>",
        deep_size(&info.resources),
        std::mem::size_of::<Resource>(),
    );
    row(
        "Pid of an agent",
        deep_size(&agent_pid(0)),
        std::mem::size_of::<Pid>(),
    );
    row(
        "Task after RUNNING (1 status), as stored",
        task_heap,
        std::mem::size_of::<Task>(),
    );
    row(
        "  its statuses: Vec<TaskStatus>, room for 4, 1 used",
        deep_size_of_vec(&task.statuses),
        std::mem::size_of::<TaskStatus>(),
    );
    row(
        "  its resources: Vec<Resource> (cpus, mem)",
        deep_size(&task.resources),
        std::mem::size_of::<Resource>(),
    );
    println!(
        "  {:<58} {:>7} B inline",
        "  its Option<ContainerInfo>, rarely set",
        std::mem::size_of::<Option<ContainerInfo>>()
    );
    println!(
        "  {:<58} {:>7} B inline",
        "  its Option<DiscoveryInfo>, rarely set",
        std::mem::size_of::<Option<DiscoveryInfo>>()
    );
    println!(
        "  {:<58} {:>7} B inline",
        "  its Option<HealthCheck>, rarely set",
        std::mem::size_of::<Option<HealthCheck>>()
    );
    println!(
        "  {:<58} {:>7} B inline",
        "  its labels, kill_policy and limits, rarely set",
        std::mem::size_of::<Option<Labels>>()
            + std::mem::size_of::<Option<KillPolicy>>()
            + std::mem::size_of::<BTreeMap<String, Scalar>>()
    );
    // A BTreeMap keeps its root node when its last entry is removed, so a Resources that was
    // emptied by subtraction (an offer used up, a holding released) still holds it.
    let (emptied, emptied_heap) = built(|| {
        let mut emptied = task_allocated.clone();
        emptied -= &task_allocated;
        emptied
    });
    assert!(emptied.is_empty());
    row(
        "Resources emptied by subtraction (is_empty() is true)",
        emptied_heap,
        std::mem::size_of::<Resources>(),
    );
    let (per_entry, blocks) = task_map_heap.per(task_map.len());
    println!(
        "  {:<58} {per_entry:>7.0} B heap {blocks:>4.1} blocks (BTreeMap nodes included)",
        "BTreeMap<TaskId, (Task, Resources, bool)>, per task",
    );
    let (per_key, blocks) = task_keys_heap.per(1000);
    println!(
        "  {:<58} {per_key:>7.0} B heap {blocks:>4.1} blocks",
        "Agent.tasks BTreeSet<(FrameworkId, TaskId)>, per task",
    );
    let (per_agent, blocks) = allocator_heap.per(1000);
    println!(
        "  {:<58} {per_agent:>7.0} B heap {blocks:>4.1} blocks",
        "Allocator alone, per agent (1,000 agents added)",
    );
    let (per_task, blocks) = allocator_per_task;
    println!(
        "  {:<58} {per_task:>7.0} B heap {blocks:>4.1} blocks",
        "Allocator alone, per task (10 tasks to an offer, rest back)",
    );
}

/// Replays, on an allocator of its own, the accounting of one launch run: 1,000 agents each
/// offered to one of 10 frameworks, which uses 10 tasks' resources and returns the rest
/// unfiltered, as the master does on an ACCEPT. Returns the heap that added, per task.
fn allocator_share_per_task(agent_total: &Resources) -> (f64, f64) {
    const AGENTS: usize = 1000;
    const TASKS_PER_OFFER: usize = 10;
    let mut allocator = Allocator::new(AllocatorConfig::default());
    for idx in 0..AGENTS {
        let agent_id = AgentId::new(format!("{}-S{}", master_info().id, idx + 1)).expect("ID");
        allocator
            .add_agent(agent_id, agent_total.clone(), BTreeMap::new())
            .expect("new agent");
    }
    for idx in 0..10 {
        let framework_id = FrameworkId::new(format!("framework-{idx}")).expect("ID");
        let roles = std::collections::BTreeSet::from([format!("role-{}", idx % N_ROLES)]);
        allocator
            .add_framework(framework_id, roles, std::collections::BTreeSet::new(), true)
            .expect("new framework");
    }
    let before = Heap::now();
    let allocations = allocator.allocate(Duration::ZERO);
    let mut tasks = 0;
    for allocation in &allocations {
        let mut used = Resources::new();
        for resource in Resources::parse(TASK_RESOURCES, "*").expect("valid").iter() {
            let resource = resource.with_allocation(allocation.role.clone());
            for _ in 0..TASKS_PER_OFFER {
                used.add_resource(&resource).expect("valid");
            }
        }
        let mut rest = (*allocation.resources).clone();
        rest -= &used;
        let (framework_id, agent_id) = (&allocation.framework_id, &allocation.agent_id);
        allocator
            .use_offered(framework_id, agent_id, &used)
            .expect("offered");
        allocator
            .recover_resources(
                framework_id,
                agent_id,
                &rest,
                Some(Duration::ZERO),
                Duration::ZERO,
            )
            .expect("held");
        tasks += TASKS_PER_OFFER;
    }
    drop(allocations);
    let share = (Heap::now() - before).per(tasks);
    drop(allocator);
    share
}

// -------------------------------------------------------------------------------------------
// The report.
// -------------------------------------------------------------------------------------------

fn verdict(value: f64, target: f64) -> &'static str {
    if value < target {
        "under target"
    } else {
        "OVER target"
    }
}

fn main() {
    let sizes = Sizes::from_args_and_env();
    println!(
        "{} agents of {AGENT_RESOURCES}, {} frameworks in {N_ROLES} roles, {} tasks of {TASK_RESOURCES}",
        sizes.agents, sizes.frameworks, sizes.tasks
    );
    println!(
        "heap = bytes requested from the allocator (malloc headers and rounding not included)"
    );
    println!("times: wall / CPU time of the thread");
    println!();

    let start = Heap::now();
    let (took_new, mut driver) = timed(|| Driver {
        state: MasterState::new(MasterConfig::new(master_info()), Driver::now()),
    });
    let empty = Heap::now();

    let (took_agents, agent_ids) = timed(|| register_agents(&mut driver, sizes.agents));
    let (agent_ids, agent_ids_heap) = compacted(agent_ids);
    let agents = Heap::now() - agent_ids_heap;

    let (took_frameworks, framework_ids) =
        timed(|| subscribe_frameworks(&mut driver, sizes.frameworks));
    let (framework_ids, framework_ids_heap) = compacted(framework_ids);
    let bookkeeping = agent_ids_heap + framework_ids_heap;
    let frameworks = Heap::now() - bookkeeping;

    let (took_launch, (launched, runs)) =
        timed(|| launch_tasks(&mut driver, &framework_ids, sizes));
    let (launched, launched_heap) = compacted(launched);
    let bookkeeping = bookkeeping + launched_heap;
    let staging = Heap::now() - bookkeeping;

    let (took_running, ()) =
        timed(|| run_tasks(&mut driver, &launched, &agent_ids, &framework_ids));
    let running = Heap::now() - bookkeeping;

    let counts = driver.state.task_counts();
    assert_eq!(
        counts.get(&TaskState::Running).copied().unwrap_or(0),
        sizes.tasks,
        "every task is running: {counts:?}"
    );
    assert!(
        driver.state.offers().is_empty(),
        "no offers left outstanding"
    );

    let (took_drop, ()) = timed(|| drop(driver));
    let dropped = Heap::now() - bookkeeping;

    let (per_agent, agent_blocks) = (agents - empty).per(sizes.agents);
    let (per_framework, framework_blocks) = (frameworks - agents).per(sizes.frameworks);
    let (per_staging, staging_blocks) = (staging - frameworks).per(sizes.tasks);
    let (per_running, running_blocks) = (running - frameworks).per(sizes.tasks);
    let (per_update, update_blocks) = (running - staging).per(sizes.tasks);
    let mib = |heap: Heap| (heap.bytes as f64) / (1024.0 * 1024.0);

    println!(
        "{:<34} {:>11} {:>10} {:>12} {:>9} {:>16}",
        "phase", "master heap", "count", "bytes each", "blocks", "time"
    );
    let line = |phase: &str, total: Heap, count: usize, each: f64, blocks: f64, took: Took| {
        println!(
            "{phase:<34} {:>7.1} MiB {count:>10} {each:>12.0} {blocks:>9.1} {:>16}",
            mib(total),
            took.to_string()
        );
    };
    line(
        "empty master",
        empty - start,
        1,
        (empty - start).bytes as f64,
        (empty - start).blocks as f64,
        took_new,
    );
    line(
        "+ agents registered",
        agents - start,
        sizes.agents,
        per_agent,
        agent_blocks,
        took_agents,
    );
    line(
        "+ frameworks subscribed",
        frameworks - start,
        sizes.frameworks,
        per_framework,
        framework_blocks,
        took_frameworks,
    );
    line(
        &format!("+ tasks staging ({runs} alloc. runs)"),
        staging - start,
        sizes.tasks,
        per_staging,
        staging_blocks,
        took_launch,
    );
    line(
        "+ RUNNING delivered and acked",
        running - start,
        sizes.tasks,
        per_running,
        running_blocks,
        took_running,
    );
    println!(
        "{:<34} {:>7.1} MiB {:>10} {:>12} {:>9} {:>16}",
        "  of which the RUNNING update",
        mib(running - staging),
        sizes.tasks,
        format!("{per_update:.0}"),
        format!("{update_blocks:.1}"),
        ""
    );
    println!(
        "{:<34} {:>7.1} MiB {:>10} {:>12} {:>9} {:>16}",
        "after dropping the master",
        mib(dropped - start),
        "",
        "",
        "",
        took_drop.to_string()
    );
    println!();
    println!(
        "per agent: {per_agent:.0} B ({:.2} KiB, target < 4 KiB: {})",
        per_agent / 1024.0,
        verdict(per_agent, AGENT_TARGET)
    );
    println!(
        "per running task: {per_running:.0} B ({:.2} KiB, target < 2 KiB: {})",
        per_running / 1024.0,
        verdict(per_running, TASK_TARGET)
    );
    print_breakdown(&agent_ids[0], &framework_ids[0]);
}
