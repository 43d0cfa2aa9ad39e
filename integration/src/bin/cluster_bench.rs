//! End-to-end cluster benchmark: how fast a framework gets short tasks through a master and
//! two agents, and how long `strata run -- /bin/true` takes on an idle cluster.
//!
//! `cargo run --release -p strata-integration --bin cluster-bench` runs, in one process:
//!
//! 1. throughput: a master and two agents in this process, on one thread (each agent on a
//!    thread of its own with `--agent-threads`) (posix isolation; then cgroups too with
//!    `--cgroups`), the release `strata` binary as command executor, and a
//!    non-checkpointing framework on the SDK that packs as many `/bin/true` tasks (0.01 cpus,
//!    1 MiB) into each offer as fit, `--tasks` in all. Reported: tasks per second from the
//!    first ACCEPT to the last TASK_FINISHED (acknowledged by the SDK as it is read), and CPU
//!    seconds per task of this process (master, agents, framework) and of its reaped
//!    descendants (executors and tasks);
//! 2. the bare rate of spawn+exec+wait of `/bin/true` at the same concurrency (what the
//!    agents' resources let run at once), and the ratio;
//! 3. latency: the wall time of `strata run --master .. -- /bin/true` (the release binary, a
//!    new process each time) against a fresh idle cluster of the same shape, `--runs` times,
//!    median and p99.
//!
//! Targets: at least 1,000 tasks/s end to end, and a `strata run` median under 40 ms.

// The benchmark's product is its report on stdout.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use strata_agent::server::{AgentHandle, AgentOptions, Isolation};
use strata_framework_sdk::scheduler::{Event, Framework, TaskSpec};
use strata_integration::cluster::{cpu_times, start_agent, strata_binary_release};
use strata_master::server::{MasterHandle, MasterOptions};
use strata_protocol::Resources;
use strata_protocol::mesos::TaskState;

#[derive(Parser)]
#[command(about = "Measures task throughput and `strata run` latency of a small cluster")]
struct Args {
    /// Tasks in the throughput phase.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Resources of each of the two agents; with 0.01-cpu tasks, `cpus` sets how many run at
    /// once (256 per agent by default).
    #[arg(long, default_value = "cpus:2.56;mem:1000000")]
    resources: String,
    /// Time between the master's batch allocation runs, in ms (it also allocates when an
    /// event asks for it).
    #[arg(long, default_value_t = 1000)]
    allocation_interval_ms: u64,
    /// Also run the throughput phase with cgroups isolation.
    #[arg(long)]
    cgroups: bool,
    /// `strata run` invocations in the latency phase.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Folder under which the agents' work dirs are made (the system temp dir by default);
    /// e.g. /dev/shm, to keep file system costs out of a profile.
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// Runs each agent on a thread of its own (an actix arbiter), as separate agent processes
    /// would run, instead of on the thread of the master and the framework.
    #[arg(long)]
    agent_threads: bool,
}

const TASK_CPUS: f64 = 0.01;
const TASK_MEM_MB: f64 = 1.0;

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
    let per_agent = concurrency_per_agent(&args.resources)?;
    let window = per_agent * 2;
    println!(
        "cluster benchmark: 1 master + 2 agents in-process{}, {} tasks of /bin/true ({TASK_CPUS} cpus, \
         {TASK_MEM_MB} MiB), agents of {} ({window} tasks at once), allocation interval {} ms",
        if args.agent_threads {
            " (agents on threads of their own)"
        } else {
            ""
        },
        args.tasks,
        args.resources,
        args.allocation_interval_ms
    );
    actix_rt::System::new().block_on(async move {
        let mut phases = vec![("posix", Isolation::Posix)];
        if args.cgroups {
            phases.push(("cgroups", Isolation::Cgroups));
        }
        let mut sdk_rates = Vec::new();
        for (name, isolation) in phases {
            let cluster = Cluster::start(&args, isolation, &launcher).await?;
            let result = throughput(&cluster, args.tasks).await?;
            cluster.stop().await;
            println!(
                "end to end, {name:<8} {:>8.0} tasks/s  ({:.2} s; CPU per task: {:.2} ms in-process \
                 [master+agents+framework], {:.2} ms children [executors+tasks])",
                rate(args.tasks, result.elapsed),
                result.elapsed.as_secs_f64(),
                result.process_cpu.as_secs_f64() * 1000.0 / args.tasks as f64,
                result.children_cpu.as_secs_f64() * 1000.0 / args.tasks as f64,
            );
            let c = &result.master;
            println!(
                "  master: {} allocation runs, {} offers sent, {} accepted, {} declined, {} status updates",
                c.allocation_runs,
                c.offers_sent,
                c.offers_accepted,
                c.offers_declined,
                c.valid_status_updates
            );
            sdk_rates.push((name, result.elapsed));
        }
        let baseline = baseline(args.tasks, window).await?;
        println!(
            "bare spawn+exec+wait      {:>8.0} tasks/s  ({:.2} s, {window} at once)",
            rate(args.tasks, baseline),
            baseline.as_secs_f64()
        );
        for (name, elapsed) in &sdk_rates {
            println!(
                "end to end / bare, {name:<8} {:.3}",
                baseline.as_secs_f64() / elapsed.as_secs_f64()
            );
        }

        let cluster = Cluster::start(&args, Isolation::Posix, &launcher).await?;
        let mut latencies = strata_run_latencies(&cluster, &launcher, args.runs).await?;
        cluster.stop().await;
        latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "strata run -- /bin/true   median {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
            ms(percentile(&latencies, 50)),
            ms(percentile(&latencies, 99)),
            ms(latencies[0]),
            ms(latencies[latencies.len() - 1]),
            latencies.len()
        );
        Ok(())
    })
}

/// How many benchmark tasks fit at once on one agent of `resources`.
fn concurrency_per_agent(resources: &str) -> anyhow::Result<usize> {
    let mut cpus = None;
    let mut mem = None;
    for part in resources.split(';') {
        match part.split_once(':') {
            Some(("cpus", value)) => cpus = Some(value.trim().parse::<f64>()?),
            Some(("mem", value)) => mem = Some(value.trim().parse::<f64>()?),
            _ => {}
        }
    }
    let cpus = cpus.context("--resources needs cpus")?;
    let mem = mem.context("--resources needs mem")?;
    // Thousandths, as the master keeps them, so that 2.56 / 0.01 is 256 and not 255.
    let by_cpus = (cpus * 1000.0).round() as usize / (TASK_CPUS * 1000.0).round() as usize;
    let by_mem = (mem / TASK_MEM_MB) as usize;
    anyhow::ensure!(by_cpus.min(by_mem) > 0, "--resources fit no task");
    Ok(by_cpus.min(by_mem))
}

fn rate(tasks: usize, elapsed: Duration) -> f64 {
    tasks as f64 / elapsed.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
fn now() -> Instant {
    Instant::now()
}

struct Cluster {
    master: MasterHandle,
    agents: Vec<AgentHandle>,
    /// The agents' threads, with `--agent-threads`.
    arbiters: Vec<actix_rt::ArbiterHandle>,
    _work_dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start(args: &Args, isolation: Isolation, launcher: &Path) -> anyhow::Result<Cluster> {
        let mut options = MasterOptions::new("127.0.0.1:0".parse()?);
        options.allocation_interval = Duration::from_millis(args.allocation_interval_ms);
        let master = strata_master::server::start(options).await?;
        let mut agents = Vec::new();
        let mut arbiters = Vec::new();
        let mut work_dirs = Vec::new();
        for _ in 0..2 {
            let work_dir = match &args.work_dir {
                Some(parent) => tempfile::tempdir_in(parent)?,
                None => tempfile::tempdir()?,
            };
            let mut options = AgentOptions::new(
                "127.0.0.1:0".parse()?,
                work_dir.path().to_path_buf(),
                Resources::parse(&args.resources, "*")?,
            );
            options.master = Some(master.addr);
            options.isolation = isolation;
            options.launcher = launcher.to_path_buf();
            options.hostname = "127.0.0.1".to_owned();
            options.fsync = false;
            if args.agent_threads {
                let arbiter = actix_rt::Arbiter::new();
                let (started, agent) = tokio::sync::oneshot::channel();
                arbiter.spawn_fn(move || {
                    actix_rt::spawn(async move {
                        let _ = started.send(strata_agent::server::start(options).await);
                    });
                });
                agents.push(agent.await.context("the agent's thread ended")??);
                arbiters.push(arbiter.handle());
            } else {
                agents.push(start_agent(options).await);
            }
            work_dirs.push(work_dir);
        }
        let started = now();
        loop {
            let n = master
                .actor
                .send(strata_master::actor::Inspect(Box::new(|state, _| {
                    state.agents().len()
                })))
                .await?;
            if n == 2 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the agents never registered"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Cluster {
            master,
            agents,
            arbiters,
            _work_dirs: work_dirs,
        })
    }

    async fn stop(self) {
        for agent in self.agents {
            agent.stop_and_destroy().await;
        }
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        self.master.stop().await;
    }
}

struct Throughput {
    elapsed: Duration,
    /// The master's counters after the run (a fresh master: they count this run only).
    master: strata_master::state::MasterCounters,
    process_cpu: Duration,
    children_cpu: Duration,
}

/// Runs `tasks` `/bin/true` tasks through the SDK, packing each offer full.
async fn throughput(cluster: &Cluster, tasks: usize) -> anyhow::Result<Throughput> {
    let (client, mut events) = Framework::builder("cluster-bench")
        .master(cluster.master.addr.to_string())
        .checkpoint(false)
        // Leftovers of an accepted offer come back at the next allocation.
        .refuse_seconds(0.0)
        .subscribe()
        .await?;
    let mut pending: Vec<TaskSpec> = (0..tasks)
        .map(|n| {
            TaskSpec::argv(format!("true-{n}"), ["/bin/true"])
                .cpus(TASK_CPUS)
                .mem_mb(TASK_MEM_MB)
        })
        .collect();
    let mut first_accept: Option<(Instant, (Duration, Duration))> = None;
    let mut finished = 0;
    let mut failed = 0;
    while finished < tasks {
        let event = tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .with_context(|| format!("no event for 60 s after {finished} tasks"))?
            .context("the event stream ended")??;
        match event {
            Event::Offers(offers) if !pending.is_empty() => {
                let plan = offers.pack(&mut pending);
                if plan.is_empty() {
                    continue;
                }
                if first_accept.is_none() {
                    first_accept = Some((now(), cpu_times()));
                }
                client.accept(plan).await?;
                if pending.is_empty() {
                    client.suppress().await?;
                }
            }
            Event::Update(status) if status.state.is_terminal() => {
                finished += 1;
                if status.state != TaskState::Finished {
                    failed += 1;
                }
            }
            Event::Error(message) => anyhow::bail!("the master ended the framework: {message}"),
            _ => {}
        }
    }
    let (started, (process_before, children_before)) =
        first_accept.context("no task was ever launched")?;
    let elapsed = started.elapsed();
    let (process_after, children_after) = cpu_times();
    let _ = client.teardown().await;
    anyhow::ensure!(failed == 0, "{failed} of {tasks} tasks did not finish");
    let master = cluster
        .master
        .actor
        .send(strata_master::actor::Inspect(Box::new(|state, _| {
            state.counters().clone()
        })))
        .await?;
    Ok(Throughput {
        elapsed,
        master,
        process_cpu: process_after.saturating_sub(process_before),
        children_cpu: children_after.saturating_sub(children_before),
    })
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

/// Runs `strata run -- /bin/true` `runs` times, one after the other, and returns each wall
/// time.
async fn strata_run_latencies(
    cluster: &Cluster,
    strata: &Path,
    runs: usize,
) -> anyhow::Result<Vec<Duration>> {
    let master = cluster.master.addr.to_string();
    let mut latencies = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = now();
        let output = tokio::process::Command::new(strata)
            .args([
                "--log-level",
                "error",
                "run",
                "--master",
                &master,
                "--",
                "/bin/true",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .await?;
        latencies.push(started.elapsed());
        anyhow::ensure!(
            output.status.success(),
            "strata run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(latencies)
}
