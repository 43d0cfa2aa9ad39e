//! Scheduler API benchmark: the master's two doors for frameworks compared in one run.
//!
//! `cargo run --release -p strata-integration --bin http-bench` starts a master in this process
//! and a stand-in agent (a transport node that registers, takes RunTask messages and sends status
//! updates), then measures for a framework on the Mesos v1 HTTP API (a plain HTTP/1.1 client,
//! one connection per call as simple clients do) and for one on the actor protocol:
//!
//! 1. status updates per second the master delivers to one subscribed framework: the stand-in
//!    agent sends `--updates` TASK_RUNNING updates (each with its own uuid) for one task, 512
//!    in flight, and the clock runs from the first send until the framework has read the last;
//! 2. offer-to-launch latency: from the framework sending ACCEPT(LAUNCH) for an offer to the
//!    RunTask arriving at the agent, `--launches` times (the agent then finishes the task, so
//!    the next offer comes back), median and p99.

// The benchmark's product is its report on stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::Context as _;
use clap::Parser;
use serde_json::{Value, json};
use strata_integration::cluster::{Forward, TestScheduler, command_task};
use strata_integration::http_framework::HttpFramework;
use strata_master::server::MasterOptions;
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{AgentInfo, TaskState, TaskStatus};
use strata_protocol::{
    AgentId, Body, Bytes, Envelope, Epoch, FrameworkId, PeerRole, Pid, Resources, TaskId,
};
use strata_transport::{Node, NodeConfig};
use tokio::sync::mpsc;

/// Updates in flight at once: enough to keep the pipeline full, few enough that no queue on the
/// way (the transport's are bounded) drops any.
const WINDOW: u64 = 512;

#[derive(Parser)]
#[command(about = "Compares the master's HTTP and actor doors for frameworks")]
struct Args {
    /// Status updates per door in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    updates: u64,
    /// Launches per door in the latency phase.
    #[arg(long, default_value_t = 200)]
    launches: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    actix_rt::System::new().block_on(run(args))
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
fn now() -> Instant {
    Instant::now()
}

/// An agent as the master sees one, driven by the benchmark.
struct StandInAgent {
    node: Node,
    pid: Pid,
    master: Pid,
    inbox: mpsc::UnboundedReceiver<Envelope>,
    agent_id: AgentId,
}

impl StandInAgent {
    async fn register(master: &Pid) -> anyhow::Result<StandInAgent> {
        let node = Node::start(NodeConfig::listening(
            PeerRole::Agent,
            "127.0.0.1:0".parse::<SocketAddr>()?,
        ))?;
        let (tx, inbox) = mpsc::unbounded_channel();
        let pid = node.register("agent", Forward(tx).start().recipient())?;
        let resources = Resources::parse("cpus:1000;mem:1000000", "*")?;
        let agent_info = AgentInfo {
            hostname: "127.0.0.1".into(),
            port: Some(i32::from(pid.port())),
            resources: resources.to_wire(),
            attributes: Vec::new(),
            id: None,
            domain: None,
        };
        let mut agent = StandInAgent {
            node,
            pid,
            master: master.clone(),
            inbox,
            agent_id: AgentId::new("unset")?,
        };
        agent.send(
            internal::RegisterAgent {
                agent_info,
                checkpointed_resources: Vec::new(),
                version: "bench".into(),
                capabilities: Vec::new(),
            }
            .into(),
        )?;
        agent.agent_id = loop {
            match agent.recv().await? {
                Message::AgentRegistered(registered) => break registered.agent_id,
                _ => continue,
            }
        };
        Ok(agent)
    }

    fn send(&self, message: Message) -> anyhow::Result<()> {
        self.node.send(Envelope {
            from: self.pid.clone(),
            to: self.master.clone(),
            epoch: Epoch::NONE,
            body: Body::Internal(message),
        })?;
        Ok(())
    }

    /// The next message, answering pings on the way.
    async fn recv(&mut self) -> anyhow::Result<Message> {
        loop {
            let envelope = tokio::time::timeout(Duration::from_secs(30), self.inbox.recv())
                .await
                .context("the master went quiet")?
                .context("inbox closed")?;
            let Body::Internal(message) = envelope.body else {
                continue;
            };
            if let Message::Ping(ping) = message {
                self.send(internal::Pong { seq: ping.seq }.into())?;
                continue;
            }
            return Ok(message);
        }
    }

    /// Waits for a RunTask and returns its task and framework.
    async fn run_task(&mut self) -> anyhow::Result<(FrameworkId, TaskId)> {
        loop {
            if let Message::RunTask(run) = self.recv().await? {
                let framework_id = run.framework.id.clone().context("framework id")?;
                return Ok((framework_id, run.task.task_id.clone()));
            }
        }
    }

    fn update(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        state: TaskState,
        n: u64,
    ) -> anyhow::Result<()> {
        let mut uuid = vec![0u8; 16];
        uuid[..8].copy_from_slice(&n.to_be_bytes());
        let uuid = Bytes::new(uuid);
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.agent_id = Some(self.agent_id.clone());
        status.uuid = Some(uuid.clone());
        self.send(
            internal::StatusUpdate {
                framework_id: framework_id.clone(),
                agent_id: self.agent_id.clone(),
                executor_id: None,
                status,
                timestamp: 0.0,
                uuid,
                latest_state: Some(state),
            }
            .into(),
        )
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut options = MasterOptions::new("127.0.0.1:0".parse()?);
    options.allocation_interval = Duration::from_millis(5);
    let master = strata_master::server::start(options).await?;
    let mut agent = StandInAgent::register(&master.pid).await?;
    println!(
        "scheduler API benchmark: {} updates, {} launches per door",
        args.updates, args.launches
    );

    // Each door runs both phases with the cluster to itself, then tears its framework down, so
    // neither holds offers the other waits for.
    let (http_rate, mut http_latencies) = http_door(&master, &mut agent, &args).await?;
    let (actor_rate, mut actor_latencies) = actor_door(&master, &mut agent, &args).await?;
    println!(
        "status updates to one framework    HTTP {http_rate:>9.0}/s   actor {actor_rate:>9.0}/s   HTTP/actor {:.2}",
        http_rate / actor_rate
    );
    let (http_p50, http_p99) = percentiles(&mut http_latencies);
    let (actor_p50, actor_p99) = percentiles(&mut actor_latencies);
    println!(
        "offer-to-launch latency            HTTP p50 {:>6.0} us p99 {:>6.0} us   actor p50 {:>6.0} us p99 {:>6.0} us",
        micros(http_p50),
        micros(http_p99),
        micros(actor_p50),
        micros(actor_p99)
    );
    master.stop().await;
    Ok(())
}

async fn http_door(
    master: &strata_master::server::MasterHandle,
    agent: &mut StandInAgent,
    args: &Args,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let mut http = HttpFramework::subscribe(master.addr, "bench-http").await;
    let offers = http.next("OFFERS").await;
    let offer = &offers["offers"]["offers"][0];
    let (code, body) = http
        .call(accept(offer, http_task("stream-http", offer)))
        .await;
    anyhow::ensure!(code == 202, "ACCEPT refused: {body}");
    let (framework_id, task_id) = agent.run_task().await?;
    let started = now();
    let mut sent = 0;
    while sent < args.updates.min(WINDOW) {
        agent.update(&framework_id, &task_id, TaskState::Running, sent)?;
        sent += 1;
    }
    let mut seen = 0;
    // Offers that arrive meanwhile are kept for the latency phase: their resources are held.
    let mut early_offers = std::collections::VecDeque::new();
    while seen < args.updates {
        let record = http.next_record().await;
        if record["type"] == "OFFERS" {
            early_offers.push_back(record);
        } else if record["type"] == "UPDATE" {
            seen += 1;
            if sent < args.updates {
                agent.update(&framework_id, &task_id, TaskState::Running, sent)?;
                sent += 1;
            }
        }
    }
    let rate = args.updates as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for n in 0..args.launches {
        let offers = match early_offers.pop_front() {
            Some(offers) => offers,
            None => http.next("OFFERS").await,
        };
        let offer = &offers["offers"]["offers"][0];
        let task = http_task(&format!("launch-http-{n}"), offer);
        let sent = now();
        let (code, body) = http.call(accept(offer, task)).await;
        anyhow::ensure!(code == 202, "ACCEPT refused: {body}");
        let (framework_id, task_id) = agent.run_task().await?;
        latencies.push(sent.elapsed());
        agent.update(
            &framework_id,
            &task_id,
            TaskState::Finished,
            u64::MAX - n as u64,
        )?;
    }
    let (code, body) = http.call(json!({"type": "TEARDOWN"})).await;
    anyhow::ensure!(code == 202, "TEARDOWN refused: {body}");
    Ok((rate, latencies))
}

async fn actor_door(
    master: &strata_master::server::MasterHandle,
    agent: &mut StandInAgent,
    args: &Args,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let mut actor = TestScheduler::start(master);
    actor
        .subscribe(json!({"user": "root", "name": "bench-actor"}))
        .await;
    let offer = actor.next_offer().await;
    let task = command_task("stream-actor", &offer.agent_id, "cpus:0.01;mem:1", "true");
    actor.launch(&offer, vec![task]);
    let (framework_id, task_id) = agent.run_task().await?;
    let started = now();
    let mut sent = 0;
    while sent < args.updates.min(WINDOW) {
        agent.update(&framework_id, &task_id, TaskState::Running, sent)?;
        sent += 1;
    }
    for _ in 0..args.updates {
        actor.next_update().await;
        if sent < args.updates {
            agent.update(&framework_id, &task_id, TaskState::Running, sent)?;
            sent += 1;
        }
    }
    let rate = args.updates as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for n in 0..args.launches {
        let offer = actor.next_offer().await;
        let task = command_task(
            &format!("launch-actor-{n}"),
            &offer.agent_id,
            "cpus:0.01;mem:1",
            "true",
        );
        let sent = now();
        actor.launch(&offer, vec![task]);
        let (framework_id, task_id) = agent.run_task().await?;
        latencies.push(sent.elapsed());
        agent.update(
            &framework_id,
            &task_id,
            TaskState::Finished,
            u64::MAX / 2 - n as u64,
        )?;
    }
    actor.call(strata_protocol::scheduler::CallBody::Teardown);
    Ok((rate, latencies))
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A small command task on `offer`'s agent, in the Mesos JSON form.
fn http_task(id: &str, offer: &Value) -> Value {
    json!({
        "name": id,
        "task_id": {"value": id},
        "agent_id": offer["agent_id"],
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}},
        ],
        "command": {"shell": true, "value": "true"},
    })
}

fn accept(offer: &Value, task: Value) -> Value {
    json!({
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
            "filters": {"refuse_seconds": 0.0},
        },
    })
}
