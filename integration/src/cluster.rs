//! A real cluster for end-to-end tests: a master and agents started in this process over real
//! TCP, command tasks run by the real `strata executor` binary in real containers, and a test
//! scheduler that speaks the actor protocol.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use serde_json::json;
use strata_agent::server::{AgentHandle, AgentOptions, Isolation};
use strata_master::server::{MasterHandle, MasterOptions};
use strata_protocol::mesos::{CommandInfo, FrameworkInfo, Offer, TaskInfo, TaskState, TaskStatus};
use strata_protocol::scheduler::{self, Call, CallBody, Event};
use strata_protocol::{
    AgentId, Body, Envelope, Epoch, FrameworkId, PeerRole, Pid, Resources, TaskId,
};
use strata_transport::{Delivery, Node, NodeConfig};
use tokio::sync::mpsc;

/// How long a test waits for anything before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Returns the path of the `strata` binary, building it first if needed, so that agents can run
/// it as the command executor.
pub fn strata_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_strata(false)).clone()
}

/// Returns the path of the optimised `strata` binary, building it first if needed (benchmarks).
pub fn strata_binary_release() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_strata(true)).clone()
}

fn build_strata(release: bool) -> PathBuf {
    build_target(&["-p", "strata-cli", "--bin", "strata"], "strata", release)
}

/// Returns the path of the SDK example `name` (`framework-sdk/examples/<name>.rs`), building it
/// first if needed, so that tests run it as a user would.
pub fn example_binary(name: &str) -> PathBuf {
    static BINARIES: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BINARIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, path)) = built.iter().find(|(built, _)| built == name) {
        return path.clone();
    }
    let path = build_target(
        &["-p", "strata-framework-sdk", "--example", name],
        name,
        false,
    );
    built.push((name.to_owned(), path.clone()));
    path
}

/// Builds one target with cargo and returns the executable's path, as cargo reports it (it
/// knows the target dir).
fn build_target(selection: &[&str], target: &str, release: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "--locked"])
        .args(selection)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--message-format=json");
    if release {
        command.arg("--release");
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building {target} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == target)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reports the {target} executable"))
}

/// Starts a master on a free loopback port with test-friendly timers.
pub async fn start_master() -> MasterHandle {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().expect("valid address"));
    options.allocation_interval = Duration::from_millis(50);
    strata_master::server::start(options)
        .await
        .expect("master starts")
}

/// Agent options for a test: loopback, the given work dir and resources, the real command
/// executor, quick registration retries.
pub fn agent_options(
    master: &MasterHandle,
    work_dir: &Path,
    resources: &str,
    isolation: Isolation,
) -> AgentOptions {
    let resources = Resources::parse(resources, "*").expect("valid resources");
    let mut options = AgentOptions::new(
        "127.0.0.1:0".parse().expect("valid address"),
        work_dir.to_path_buf(),
        resources,
    );
    options.master = Some(master.addr);
    options.isolation = isolation;
    options.launcher = strata_binary();
    options.hostname = "127.0.0.1".to_owned();
    options.registration_backoff_min = Duration::from_millis(100);
    options.fsync = false;
    options
}

/// Returns a loopback port that was free a moment ago, for daemons started in other processes.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("has an address")
        .port()
}

/// The `latest` run directory of a command task's executor (its executor ID is the task ID),
/// under the work dir of the one agent that ran there.
pub fn latest_run(work_dir: &Path, framework_id: &FrameworkId, task_id: &str) -> PathBuf {
    let agents = std::fs::read_dir(work_dir.join("agents"))
        .expect("agents dir")
        .map(|entry| entry.expect("entry").path())
        .collect::<Vec<_>>();
    assert_eq!(agents.len(), 1, "one agent ran here");
    agents[0]
        .join("frameworks")
        .join(framework_id.as_str())
        .join("executors")
        .join(task_id)
        .join("runs")
        .join("latest")
}

pub async fn start_agent(options: AgentOptions) -> AgentHandle {
    strata_agent::server::start(options)
        .await
        .expect("agent starts")
}

/// Forwards every envelope a transport node delivers to a channel the test or benchmark reads.
pub struct Forward(pub mpsc::UnboundedSender<Envelope>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Forward {
    type Result = ();
    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.0.send(envelope);
    }
}

/// A framework whose scheduler is the test: it sends calls and reads events.
pub struct TestScheduler {
    node: Node,
    pid: Pid,
    inbox: mpsc::UnboundedReceiver<Envelope>,
    master: Pid,
    /// Events read while waiting for another kind, kept for later waits.
    backlog: std::collections::VecDeque<Event>,
    pub framework_id: Option<FrameworkId>,
}

impl TestScheduler {
    pub fn start(master: &MasterHandle) -> TestScheduler {
        TestScheduler::start_for(master.pid.clone())
    }

    /// A scheduler for the master at `master` (one in another process).
    pub fn start_for(master: Pid) -> TestScheduler {
        let node = Node::start(NodeConfig::connect_only(
            PeerRole::Scheduler,
            "127.0.0.1",
            1,
        ))
        .expect("node starts");
        let (tx, inbox) = mpsc::unbounded_channel();
        let pid = node
            .register("scheduler", Forward(tx).start().recipient())
            .expect("name is free");
        TestScheduler {
            node,
            pid,
            inbox,
            master,
            backlog: std::collections::VecDeque::new(),
            framework_id: None,
        }
    }

    pub fn call(&self, body: CallBody) {
        let envelope = Envelope {
            from: self.pid.clone(),
            to: self.master.clone(),
            epoch: Epoch::NONE,
            body: Body::SchedulerCall(Call {
                framework_id: self.framework_id.clone(),
                body,
            }),
        };
        self.node.send(envelope).expect("sent");
    }

    /// Subscribes a framework with `info` (Mesos JSON form of FrameworkInfo) and waits for
    /// SUBSCRIBED.
    pub async fn subscribe(&mut self, info: serde_json::Value) -> FrameworkId {
        let info: FrameworkInfo = serde_json::from_value(info).expect("valid framework info");
        let subscribe =
            serde_json::from_value(json!({ "framework_info": info })).expect("valid subscribe");
        self.call(CallBody::Subscribe(Box::new(subscribe)));
        let framework_id = self
            .expect("SUBSCRIBED", |event| match event {
                Event::Subscribed(subscribed) => Some(subscribed.framework_id),
                _ => None,
            })
            .await;
        self.framework_id = Some(framework_id.clone());
        framework_id
    }

    /// Waits for the next event `pick` accepts; the others are kept, in order, for later waits.
    pub async fn expect<T>(&mut self, what: &str, pick: impl Fn(Event) -> Option<T>) -> T
    where
        T: 'static,
    {
        let pick = |event: &Event| pick(event.clone());
        if let Some(index) = self.backlog.iter().position(|event| pick(event).is_some()) {
            let event = self.backlog.remove(index).expect("index is in range");
            return pick(&event).expect("it matched");
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let envelope = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("inbox open");
            if let Body::SchedulerEvent(event) = envelope.body {
                if let Some(found) = pick(&event) {
                    return found;
                }
                self.backlog.push_back(event);
            }
        }
    }

    pub async fn next_offer(&mut self) -> Offer {
        self.expect("OFFERS", |event| match event {
            Event::Offers(offers) => offers.offers.into_iter().next(),
            _ => None,
        })
        .await
    }

    /// Waits for the next status update of any task, without acknowledging it.
    pub async fn next_update(&mut self) -> TaskStatus {
        self.expect("UPDATE", |event| match event {
            Event::Update(update) => Some(update.status),
            _ => None,
        })
        .await
    }

    /// Acknowledges an update that carries a uuid.
    pub fn acknowledge(&self, status: &TaskStatus) {
        let (Some(uuid), Some(agent_id)) = (status.uuid.clone(), status.agent_id.clone()) else {
            return;
        };
        self.call(CallBody::Acknowledge(scheduler::Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid,
        }));
    }

    /// Waits for updates of `task_id`, acknowledging each, until one in `state`; returns the
    /// states seen on the way (including the last).
    pub async fn wait_for_state(&mut self, task_id: &TaskId, state: TaskState) -> Vec<TaskStatus> {
        let mut seen = Vec::new();
        loop {
            let status = self.next_update().await;
            self.acknowledge(&status);
            if status.task_id != *task_id {
                continue;
            }
            let done = status.state == state;
            let terminal = status.state.is_terminal();
            seen.push(status);
            if done {
                return seen;
            }
            assert!(
                !terminal,
                "task {task_id} ended in {:?} before reaching {state:?}: {seen:#?}",
                seen.last().map(|s| s.state)
            );
        }
    }

    /// Accepts `offer` launching `tasks`.
    pub fn launch(&self, offer: &Offer, tasks: Vec<TaskInfo>) {
        let accept = serde_json::from_value(json!({
            "offer_ids": [offer.id],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            "filters": {"refuse_seconds": 0.0}
        }))
        .expect("valid accept");
        self.call(CallBody::Accept(accept));
    }

    pub fn kill(&self, task_id: &TaskId) {
        let kill = serde_json::from_value(json!({"task_id": task_id})).expect("valid kill");
        self.call(CallBody::Kill(kill));
    }
}

/// A command task using `resources` of `agent_id`.
pub fn command_task(id: &str, agent_id: &AgentId, resources: &str, command: &str) -> TaskInfo {
    let resources = Resources::parse(resources, "*").expect("valid resources");
    TaskInfo {
        name: id.to_owned(),
        task_id: TaskId::new(id).expect("valid task id"),
        agent_id: agent_id.clone(),
        resources: resources.to_wire(),
        executor: None,
        command: Some(CommandInfo::from_shell(command)),
        container: None,
        health_check: None,
        check: None,
        kill_policy: None,
        data: None,
        labels: None,
        discovery: None,
        max_completion_time: None,
        limits: Default::default(),
    }
}

/// Resources of an offer, allocated to its role, as a task must ask for them.
pub fn offered(offer: &Offer) -> Resources {
    Resources::try_from(offer.resources.clone()).expect("valid offer resources")
}

/// CPU time (user + system) so far of this process, and of its descendants (the reapers of its
/// agents, and the tasks and executors they started): what benchmarks charge per task.
pub fn cpu_times() -> (Duration, Duration) {
    let ticks_per_second = rustix::param::clock_ticks_per_second() as f64;
    let seconds = |t: u64| Duration::from_secs_f64(t as f64 / ticks_per_second);
    let own = stat_ticks("/proc/self/stat");
    // The agents' reapers are children of this process that live as long as their agents: what
    // they and the tasks they reaped used so far is in their own counters until they exit.
    let me = std::process::id() as u64;
    let mut reapers = 0;
    for (pid, _) in reaper_processes() {
        let ticks = stat_ticks(&format!("/proc/{pid}/stat"));
        if ticks.ppid == me {
            reapers += ticks.utime + ticks.stime + ticks.cutime + ticks.cstime;
        }
    }
    (
        seconds(own.utime + own.stime),
        seconds(own.cutime + own.cstime + reapers),
    )
}

/// The `strata reaper` processes running on this machine, with their arguments.
pub fn reaper_processes() -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&byte| byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if args.iter().any(|arg| arg == "reaper") {
            found.push((pid, args));
        }
    }
    found
}

struct StatTicks {
    ppid: u64,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Reads a `/proc/<pid>/stat`: after the command name, state is the first field, ppid the
/// second, utime the 12th, stime the 13th, cutime the 14th and cstime the 15th, in clock ticks.
fn stat_ticks(path: &str) -> StatTicks {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field =
        |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
    StatTicks {
        ppid: field(1),
        utime: field(11),
        stime: field(12),
        cutime: field(13),
        cstime: field(14),
    }
}
