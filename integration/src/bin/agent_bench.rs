//! Agent launch benchmark: how fast one agent turns RunTask messages into checkpointed terminal
//! updates for short command tasks, against the machine's bare spawn+exec+wait rate.
//!
//! `cargo run --release -p strata-integration --bin agent-bench` runs, in one process and one
//! run:
//!
//! 1. baseline: `--tasks` spawn+exec+wait of `/bin/true`, `--window` at a time, straight from
//!    tokio (the physical limit of starting processes here);
//! 2. a real agent (fsync on) registered with a stand-in master, a transport node in this
//!    process that sends `--tasks` RunTask messages for `/bin/true`, keeping `--window` in
//!    flight, and acknowledges every update; once with posix isolation and once with cgroups,
//!    each for two frameworks. Either way the agent runs each command task itself, the task's
//!    command as its container's leader, started by the work dir's reaper (the release
//!    `strata` binary, one process for the whole phase):
//!    - one that does not checkpoint;
//!    - one that checkpoints: the agent checkpoints the task, its run and its updates; a task
//!      counts when its terminal update reaches the stand-in master, which the agent sends only
//!      once the update is durable in its checkpoint.
//!
//! The stand-in master keeps the measurement on the agent: no offers, no allocator. Each phase
//! reports tasks per second, the ratio to the baseline, and the CPU time per task of the agent's
//! process (this process) and of the processes it started (tasks and the reaper, which is a
//! child of this process while it lives, but is counted only when it exits: so at the end of
//! each phase the agent is stopped and the reaper with it). A second line gives the whole
//! machine's share of the phase (`/proc/stat`): busy CPU per task, which includes the kernel's
//! own threads (block I/O, cgroup teardown) that no process is charged for; idle, which says
//! whether the phase was bound by CPU or by waiting; and steal, which says the hypervisor took
//! CPU away from this machine (figures of a run with much steal are not worth comparing).

// The benchmark's product is its report on stdout.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::Actor;
use anyhow::Context as _;
use clap::Parser;
use strata_agent::server::{AgentOptions, Isolation};
use strata_integration::cluster::{Forward, cpu_times, strata_binary_release};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{CommandInfo, FrameworkInfo, TaskInfo};
use strata_protocol::{AgentId, Body, Envelope, Epoch, FrameworkId, PeerRole, Resources, TaskId};
use strata_transport::{Node, NodeConfig};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Measures how fast one agent launches short command tasks")]
struct Args {
    /// Tasks per phase.
    #[arg(long, default_value_t = 5_000)]
    tasks: usize,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Skip the cgroups phase (machines without writable cgroups).
    #[arg(long)]
    no_cgroups: bool,
    /// Checkpoint without fsync, to see what durability costs.
    #[arg(long)]
    no_fsync: bool,
    /// Where the agents' work dirs go (one fresh folder per phase); the system temp dir by
    /// default. The sandbox of every task is created there, so its filesystem counts.
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// Runs only the agent phases whose name contains this (`cgroups`, `checkpointing`), to
    /// profile one.
    #[arg(long)]
    only: Option<String>,
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
    let launcher = strata_binary_release();
    println!(
        "agent launch benchmark: {} tasks of /bin/true, {} in flight",
        args.tasks, args.window
    );
    actix_rt::System::new().block_on(async move {
        let cpu_before = cpu_times();
        let machine_before = MachineCpu::now()?;
        let baseline = baseline(args.tasks, args.window).await?;
        let machine = MachineCpu::now()?.since(&machine_before);
        let cpu_after = cpu_times();
        println!(
            "{:<44}  {:>8.0} tasks/s  ({:.2} s; CPU per task: {:.2} ms spawner, {:.2} ms tasks)",
            "baseline spawn+exec+wait",
            rate(args.tasks, baseline),
            baseline.as_secs_f64(),
            cpu_after.0.saturating_sub(cpu_before.0).as_secs_f64() * 1000.0 / args.tasks as f64,
            cpu_after.1.saturating_sub(cpu_before.1).as_secs_f64() * 1000.0 / args.tasks as f64,
        );
        machine.print(args.tasks);
        let mut isolations = vec![("posix", Isolation::Posix)];
        if !args.no_cgroups {
            isolations.push(("cgroups", Isolation::Cgroups));
        }
        let mut phases = Vec::new();
        for checkpoint in [false, true] {
            for (isolation_name, isolation) in &isolations {
                let framework = if checkpoint {
                    "checkpointing, run by the agent"
                } else {
                    "no checkpoint, run by the agent"
                };
                phases.push((format!("{isolation_name}, {framework}"), *isolation, checkpoint));
            }
        }
        phases.retain(|(name, _, _)| args.only.as_ref().is_none_or(|only| name.contains(only)));
        let mut work_dirs = Vec::new();
        for (name, isolation, checkpoint) in phases {
            let setup = Setup {
                tasks: args.tasks,
                window: args.window,
                launcher: &launcher,
                work_dir: args.work_dir.as_deref(),
                fsync: !args.no_fsync,
            };
            let machine_before = MachineCpu::now()?;
            let (elapsed, cpu) = agent_phase(&setup, isolation, checkpoint, &mut work_dirs).await?;
            let machine = MachineCpu::now()?.since(&machine_before);
            println!(
                "{name:<44}  {:>8.0} tasks/s  ({:.2} s, {:.2} of baseline; CPU per task: {:.2} ms agent process, {:.2} ms tasks and executors)",
                rate(args.tasks, elapsed),
                elapsed.as_secs_f64(),
                baseline.as_secs_f64() / elapsed.as_secs_f64(),
                cpu.0.as_secs_f64() * 1000.0 / args.tasks as f64,
                cpu.1.as_secs_f64() * 1000.0 / args.tasks as f64,
            );
            machine.print(args.tasks);
        }
        Ok(())
    })
}

fn rate(tasks: usize, elapsed: Duration) -> f64 {
    tasks as f64 / elapsed.as_secs_f64()
}

/// Spawns `/bin/true` `tasks` times, `window` at once, and waits for each.
async fn baseline(tasks: usize, window: usize) -> anyhow::Result<Duration> {
    let started = now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        if running.len() >= window {
            running.join_next().await.expect("one runs")??;
        }
        running.spawn(async {
            let status = tokio::process::Command::new("/bin/true").status().await?;
            anyhow::ensure!(status.success(), "/bin/true failed");
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(result) = running.join_next().await {
        result??;
    }
    Ok(started.elapsed())
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
fn now() -> Instant {
    Instant::now()
}

/// What every agent phase shares.
struct Setup<'a> {
    tasks: usize,
    window: usize,
    launcher: &'a std::path::Path,
    /// Where the work dirs go; the system temp dir when `None`.
    work_dir: Option<&'a std::path::Path>,
    fsync: bool,
}

/// Starts an agent registered with a stand-in master and pushes `tasks` through it.
async fn agent_phase(
    setup: &Setup<'_>,
    isolation: Isolation,
    checkpoint: bool,
    work_dirs: &mut Vec<tempfile::TempDir>,
) -> anyhow::Result<(Duration, (Duration, Duration))> {
    let (tasks, window, launcher, fsync) = (setup.tasks, setup.window, setup.launcher, setup.fsync);
    let node = Node::start(NodeConfig::listening(
        PeerRole::Master,
        "127.0.0.1:0".parse::<SocketAddr>()?,
    ))?;
    let (tx, mut inbox) = mpsc::unbounded_channel();
    let master = node.register("master", Forward(tx).start().recipient())?;
    // Kept until the whole run is over: removing tens of thousands of sandbox files right
    // before the next phase would make that phase pay for it (ext4 scans past recently freed
    // inodes when it allocates new ones).
    let work_dir = match setup.work_dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let work_path = work_dir.path().to_path_buf();
    work_dirs.push(work_dir);
    let resources = Resources::parse("cpus:100000;mem:100000000", "*")?;
    let mut options = AgentOptions::new("127.0.0.1:0".parse()?, work_path, resources);
    options.master = Some(node.local_addr().context("the stand-in master listens")?);
    options.isolation = isolation;
    options.launcher = launcher.to_path_buf();
    options.fsync = fsync;
    options.hostname = "127.0.0.1".to_owned();
    let agent = strata_agent::server::start(options).await?;

    let send = |message: Message| {
        node.send(Envelope {
            from: master.clone(),
            to: agent.pid.clone(),
            epoch: Epoch(1),
            body: Body::Internal(message),
        })
    };
    // Registration.
    let agent_id = AgentId::new("bench-agent")?;
    loop {
        let envelope = tokio::time::timeout(Duration::from_secs(30), inbox.recv())
            .await
            .context("the agent never registered")?
            .context("inbox closed")?;
        if let Body::Internal(Message::RegisterAgent(_)) = envelope.body {
            send(
                internal::AgentRegistered {
                    agent_id: agent_id.clone(),
                    connection: internal::MasterAgentConnection {
                        total_ping_timeout_seconds: 3600.0,
                    },
                }
                .into(),
            )?;
            break;
        }
    }
    let framework_id = FrameworkId::new("bench-framework")?;
    let framework = FrameworkInfo {
        user: String::new(),
        name: "bench".into(),
        id: Some(framework_id.clone()),
        failover_timeout: None,
        checkpoint: Some(checkpoint),
        role: None,
        roles: Vec::new(),
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: Vec::new(),
        labels: None,
        offer_filters: BTreeMap::new(),
    };
    // Mesos's smallest executor (0.1 cpus, 32 MiB). With cgroups a task's CFS quota is its
    // cpus times 100 ms, and `/bin/true` needs about 1 ms of CPU: at 0.01 cpus most tasks were
    // throttled until the next period, which measured the quota, not the launch.
    let task_resources = Resources::parse("cpus:0.1;mem:32", "*")?.to_wire();
    let run_task = |n: usize| -> anyhow::Result<Message> {
        Ok(internal::RunTask {
            framework: framework.clone(),
            task: TaskInfo {
                name: format!("true-{n}"),
                task_id: TaskId::new(format!("true-{n}"))?,
                agent_id: agent_id.clone(),
                resources: task_resources.clone(),
                executor: None,
                command: Some(CommandInfo {
                    shell: Some(false),
                    value: Some("/bin/true".into()),
                    arguments: vec!["/bin/true".into()],
                    ..CommandInfo::default()
                }),
                container: None,
                health_check: None,
                check: None,
                kill_policy: None,
                data: None,
                labels: None,
                discovery: None,
                max_completion_time: None,
                limits: BTreeMap::new(),
            },
            launch_executor: true,
        }
        .into())
    };

    let cpu_before = cpu_times();
    let started = now();
    let mut sent = 0;
    let mut finished = 0;
    let mut failed = 0;
    while sent < tasks.min(window) {
        send(run_task(sent)?)?;
        sent += 1;
    }
    while finished < tasks {
        let envelope = tokio::time::timeout(Duration::from_secs(60), inbox.recv())
            .await
            .with_context(|| format!("no update for 60 s after {finished} tasks"))?
            .context("inbox closed")?;
        let Body::Internal(Message::StatusUpdate(update)) = envelope.body else {
            continue;
        };
        send(
            internal::StatusUpdateAcknowledgement {
                agent_id: agent_id.clone(),
                framework_id: framework_id.clone(),
                task_id: update.status.task_id.clone(),
                uuid: update.uuid.clone(),
            }
            .into(),
        )?;
        if update.status.state.is_terminal() {
            if update.status.state != strata_protocol::mesos::TaskState::Finished {
                failed += 1;
            }
            finished += 1;
            if sent < tasks {
                send(run_task(sent)?)?;
                sent += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_times();
    let cpu = (
        cpu_after.0.saturating_sub(cpu_before.0),
        cpu_after.1.saturating_sub(cpu_before.1),
    );
    anyhow::ensure!(failed == 0, "{failed} tasks did not finish");
    agent.stop_and_destroy().await;
    node.shutdown();
    Ok((elapsed, cpu))
}

/// The whole machine's CPU time by kind, from the first line of `/proc/stat`.
struct MachineCpu {
    busy: Duration,
    idle: Duration,
    steal: Duration,
}

impl MachineCpu {
    fn now() -> anyhow::Result<MachineCpu> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .context("/proc/stat has no cpu line")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        // user nice system idle iowait irq softirq steal (guest times are within user).
        anyhow::ensure!(ticks.len() >= 8, "/proc/stat cpu line is too short");
        let per_second = rustix::param::clock_ticks_per_second() as f64;
        let time = |t: u64| Duration::from_secs_f64(t as f64 / per_second);
        Ok(MachineCpu {
            busy: time(ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]),
            idle: time(ticks[3] + ticks[4]),
            steal: time(ticks[7]),
        })
    }

    fn since(&self, before: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: self.busy.saturating_sub(before.busy),
            idle: self.idle.saturating_sub(before.idle),
            steal: self.steal.saturating_sub(before.steal),
        }
    }

    fn print(&self, tasks: usize) {
        println!(
            "{:<44}  machine: {:.2} ms busy CPU per task, {:.0}% idle, {:.0}% steal",
            "",
            self.busy.as_secs_f64() * 1000.0 / tasks as f64,
            self.share(self.idle) * 100.0,
            self.share(self.steal) * 100.0,
        );
    }

    /// `part` as a share of all the CPU time that passed.
    fn share(&self, part: Duration) -> f64 {
        let all = (self.busy + self.idle + self.steal).as_secs_f64();
        if all == 0.0 {
            0.0
        } else {
            part.as_secs_f64() / all
        }
    }
}
