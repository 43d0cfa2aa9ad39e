//! A long-running service framework on the callback API ([`Scheduler`]): keeps `--instances`
//! copies of a command running, like a very small Marathon.
//!
//! ```text
//! cargo run -p strata-framework-sdk --example service -- \
//!     --master 127.0.0.1:5050 --instances 3 -- 'python3 -m http.server $PORT0'
//! ```
//!
//! - Each instance is a slot `0..instances`; its task ID is `<name>-<slot>-<generation>`, and
//!   `$INSTANCE_INDEX` and `$TASK_ID` are in the command's environment.
//! - An instance that ends for any reason the service did not ask for (it exits, fails, is
//!   killed, is lost, its agent becomes unreachable or is removed) is replaced by a new task
//!   (the next generation of its slot).
//! - Placement spreads instances: a new instance goes to the offered agent running the fewest
//!   of them, and no agent takes more than `ceil(instances / agents)`, where `agents` counts
//!   the agents seen in offers and not since lost. With at least `instances` agents that is at
//!   most one per agent; with fewer, they share as evenly as the offers allow.
//! - The framework is PARTITION_AWARE: an unreachable agent's instances are replaced at once;
//!   if the agent comes back, the old tasks it reports are killed as strays.
//! - After a resubscription it reconciles its tasks explicitly, so that a task the master
//!   lost track of comes back as an update and is replaced.
//! - On Ctrl-C (SIGINT) it kills its instances, waits for their end, tears the framework down
//!   and exits 0.

// The example reports what it does on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use strata_framework_sdk::scheduler::{
    Client, Framework, Offers, Plan, Scheduler, Subscribed, TaskSpec, pack,
};
use strata_protocol::mesos::{FrameworkCapabilityType, TaskState, TaskStatus};
use strata_protocol::scheduler::Failure;
use strata_protocol::{AgentId, TaskId};

/// How long the service waits for its instances to confirm their kill on Ctrl-C before it
/// tears the framework down regardless (the master then kills what is left).
const KILL_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Parser)]
#[command(about = "Keeps N instances of a command running on a Strata cluster")]
struct Args {
    /// Master address, `host:port` (repeat for several masters).
    #[arg(long, required = true)]
    master: Vec<String>,
    /// How many instances to keep running.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// CPUs per instance.
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory per instance, in MiB.
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Role to ask resources of.
    #[arg(long, default_value = "*")]
    role: String,
    /// Framework name, also the prefix of task IDs.
    #[arg(long, default_value = "service")]
    name: String,
    /// How long the master keeps the instances running while the service is disconnected.
    #[arg(long, default_value_t = 60)]
    failover_timeout_secs: u64,
    /// The shell command each instance runs.
    command: String,
}

/// One instance of the service.
#[derive(Debug, Clone, Default)]
struct Slot {
    generation: u32,
    /// The current task, once launched; `None` while waiting for an offer.
    task: Option<Placed>,
}

#[derive(Debug, Clone)]
struct Placed {
    task_id: TaskId,
    agent_id: AgentId,
    running: bool,
}

/// State shared by the callbacks and the Ctrl-C handler.
#[derive(Debug, Default)]
struct Inner {
    slots: Vec<Slot>,
    /// Agents seen in offers and not lost since: the spread's denominator.
    agents: BTreeSet<AgentId>,
    suppressed: bool,
    stopping: bool,
    client: Option<Client>,
}

impl Inner {
    fn live_tasks(&self) -> Vec<(TaskId, AgentId)> {
        self.slots
            .iter()
            .filter_map(|slot| slot.task.as_ref())
            .map(|task| (task.task_id.clone(), task.agent_id.clone()))
            .collect()
    }

    fn n_waiting(&self) -> usize {
        self.slots.iter().filter(|slot| slot.task.is_none()).count()
    }

    /// Forgets slot `index`'s task so that a new generation is launched (unless stopping).
    fn vacate(&mut self, index: usize, why: &str) {
        let slot = &mut self.slots[index];
        if let Some(task) = slot.task.take() {
            slot.generation += 1;
            if self.stopping {
                println!("{}: {why}", task.task_id);
            } else {
                println!("{}: {why}; replacing it", task.task_id);
            }
        }
    }
}

struct Service {
    args: Args,
    inner: Arc<Mutex<Inner>>,
}

impl Service {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spec(&self, index: usize, generation: u32) -> TaskSpec {
        let id = format!("{}-{index}-{generation}", self.args.name);
        TaskSpec::command(id.clone(), self.args.command.clone())
            .cpus(self.args.cpus)
            .mem_mb(self.args.mem)
            .env("INSTANCE_INDEX", index.to_string())
            .env("TASK_ID", id)
    }

    /// Asks for offers again if an instance waits for one.
    async fn revive_if_needed(&self, client: &Client) {
        let revive = {
            let mut inner = self.lock();
            let revive = inner.suppressed && inner.n_waiting() > 0 && !inner.stopping;
            if revive {
                inner.suppressed = false;
            }
            revive
        };
        if revive {
            let _ = client.revive().await;
        }
    }

    /// Finishes the shutdown once no instance is left.
    async fn teardown_if_stopped(&self, client: &Client) {
        let done = {
            let inner = self.lock();
            inner.stopping && inner.live_tasks().is_empty()
        };
        if done {
            println!("all instances stopped; tearing down");
            let _ = client.teardown().await;
        }
    }
}

/// Whether an update means the task no longer serves as an instance.
fn is_gone(state: TaskState) -> bool {
    state.is_terminal() || matches!(state, TaskState::Unreachable | TaskState::Unknown)
}

impl Scheduler for Service {
    async fn registered(&mut self, client: &Client, subscribed: &Subscribed) {
        println!(
            "subscribed as {} (resubscribed: {})",
            subscribed.framework_id, subscribed.resubscribed
        );
        let live = {
            let mut inner = self.lock();
            inner.client = Some(client.clone());
            // A new subscription starts unsuppressed.
            inner.suppressed = false;
            inner.live_tasks()
        };
        if subscribed.resubscribed && !live.is_empty() {
            // Explicit reconciliation: the master answers for each task, TASK_LOST/UNKNOWN
            // for one it does not know (an ACCEPT lost with the old connection).
            let _ = client
                .reconcile(live.into_iter().map(|(task, agent)| (task, Some(agent))))
                .await;
        }
    }

    async fn offers(&mut self, client: &Client, offers: Offers) {
        let (plan, suppress) = {
            let mut inner = self.lock();
            if inner.stopping {
                return;
            }
            inner
                .agents
                .extend(offers.iter().map(|offer| offer.agent_id.clone()));
            let cap = self.args.instances.div_ceil(inner.agents.len().max(1));
            let mut per_agent: BTreeMap<AgentId, usize> = BTreeMap::new();
            for (_, agent_id) in inner.live_tasks() {
                *per_agent.entry(agent_id).or_default() += 1;
            }
            // Choose an agent for each waiting slot, then pack each offer's share into it.
            let mut by_offer: Vec<Vec<(usize, TaskSpec)>> = vec![Vec::new(); offers.len()];
            for index in 0..inner.slots.len() {
                if inner.slots[index].task.is_some() {
                    continue;
                }
                let target = offers
                    .iter()
                    .enumerate()
                    .map(|(n, offer)| (n, per_agent.get(&offer.agent_id).copied().unwrap_or(0)))
                    .filter(|(_, count)| *count < cap)
                    .min_by_key(|(_, count)| *count);
                let Some((n, _)) = target else { break };
                *per_agent.entry(offers[n].agent_id.clone()).or_default() += 1;
                let spec = self.spec(index, inner.slots[index].generation);
                by_offer[n].push((index, spec));
            }
            let mut plan = Plan::new();
            for (offer, wanted) in offers.iter().zip(by_offer) {
                let (indexes, mut specs): (Vec<usize>, Vec<TaskSpec>) = wanted.into_iter().unzip();
                let ids: Vec<String> = specs.iter().map(|s| s.id_str().to_owned()).collect();
                let packed = pack(std::slice::from_ref(offer), &mut specs);
                for task in packed.tasks() {
                    let Some(at) = ids.iter().position(|id| id == task.task_id.as_str()) else {
                        continue;
                    };
                    println!("{}: launching on agent {}", task.task_id, offer.agent_id);
                    inner.slots[indexes[at]].task = Some(Placed {
                        task_id: task.task_id.clone(),
                        agent_id: offer.agent_id.clone(),
                        running: false,
                    });
                    plan.launch(offer, vec![task.clone()]);
                }
            }
            let suppress = inner.n_waiting() == 0 && !inner.suppressed;
            if suppress {
                inner.suppressed = true;
            }
            (plan, suppress)
        };
        if !plan.is_empty() {
            let _ = client.accept(plan).await;
        }
        if suppress {
            let _ = client.suppress().await;
        }
    }

    async fn update(&mut self, client: &Client, status: TaskStatus) {
        let stray = {
            let mut inner = self.lock();
            let index = inner.slots.iter().position(|slot| {
                slot.task
                    .as_ref()
                    .is_some_and(|task| task.task_id == status.task_id)
            });
            match index {
                // A task that is no instance any more (replaced while its agent was away)
                // and still alive: it must not run next to its replacement.
                None => !is_gone(status.state),
                Some(index) => {
                    if is_gone(status.state) {
                        if matches!(status.state, TaskState::Unreachable | TaskState::Gone)
                            && let Some(agent_id) = &status.agent_id
                        {
                            inner.agents.remove(agent_id);
                        }
                        let why = format!(
                            "{}{}",
                            status.state,
                            status
                                .message
                                .as_deref()
                                .map(|m| format!(" ({m})"))
                                .unwrap_or_default()
                        );
                        inner.vacate(index, &why);
                    } else if status.state == TaskState::Running
                        && let Some(task) = inner.slots[index].task.as_mut()
                        && !task.running
                    {
                        task.running = true;
                        println!("{}: running", task.task_id);
                    }
                    false
                }
            }
        };
        if stray {
            println!("{}: stray task, killing it", status.task_id);
            let _ = client.kill(&status.task_id).await;
        }
        self.revive_if_needed(client).await;
        self.teardown_if_stopped(client).await;
    }

    async fn failure(&mut self, client: &Client, failure: Failure) {
        let (Some(agent_id), None) = (&failure.agent_id, &failure.executor_id) else {
            return;
        };
        {
            let mut inner = self.lock();
            inner.agents.remove(agent_id);
            let lost: Vec<usize> = (0..inner.slots.len())
                .filter(|&i| {
                    inner.slots[i]
                        .task
                        .as_ref()
                        .is_some_and(|task| &task.agent_id == agent_id)
                })
                .collect();
            for index in lost {
                inner.vacate(index, &format!("agent {agent_id} lost"));
            }
        }
        self.revive_if_needed(client).await;
        self.teardown_if_stopped(client).await;
    }

    async fn error(&mut self, _client: &Client, message: String) {
        eprintln!("service: the master ended the framework: {message}");
    }
}

/// Kills every instance and waits (bounded) until `run` ends, which happens once the last
/// one is gone and the service tears down.
async fn stop(inner: &Mutex<Inner>) -> Option<Client> {
    let (client, live) = {
        let mut inner = inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.stopping = true;
        (inner.client.clone(), inner.live_tasks())
    };
    let client = client?;
    println!("interrupted: killing {} instances", live.len());
    if live.is_empty() {
        let _ = client.teardown().await;
    }
    for (task_id, _) in live {
        let _ = client.kill(&task_id).await;
    }
    Some(client)
}

async fn run(args: Args) -> Result<(), String> {
    let mut builder = Framework::builder(args.name.clone())
        .role(args.role.clone())
        .capability(FrameworkCapabilityType::PartitionAware)
        .failover_timeout_secs(args.failover_timeout_secs);
    for master in &args.master {
        builder = builder.master(master.clone());
    }
    let inner = Arc::new(Mutex::new(Inner {
        slots: vec![Slot::default(); args.instances],
        ..Inner::default()
    }));
    let service = Service {
        args,
        inner: inner.clone(),
    };
    let run = builder.run(service);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => {
            result.map_err(|err| err.to_string())?;
            return Err("the framework ended".to_owned());
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    let Some(client) = stop(&inner).await else {
        return Ok(());
    };
    match tokio::time::timeout(KILL_WAIT, &mut run).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(_) => {
            let _ = client.teardown().await;
            Err(format!(
                "the instances did not confirm their kill within {KILL_WAIT:?}; tore down"
            ))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("service: {err}");
            ExitCode::from(1)
        }
    }
}
