//! Times full allocation runs on large clusters: the first run, when every agent is free, and
//! a steady-state run after a tenth of the offers came back (half of them declined with a
//! filter). Run with `cargo bench -p strata-master --bench allocator`.
//!
//! Mesos's own benchmark (`HierarchicalAllocator_BENCHMARK_Test`) takes about 1 s for the first
//! run over 10,000 agents and 1,000 frameworks; the targets here are 100 ms for that and 300 ms
//! for 50,000 agents and 200 frameworks.

// The benchmark reports its table on stdout, which the workspace lints deny by default.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use strata_master::allocator::{Allocation, Allocator, AllocatorConfig};
use strata_protocol::{AgentId, FrameworkId, Resources};

const AGENT_RESOURCES: &str = "cpus:16;mem:65536;disk:1048576;ports:[31000-32000]";
const N_ROLES: usize = 5;
const N_SAMPLES: usize = 7;

/// Builds a cluster of `n_agents` equal agents and `n_frameworks` frameworks spread over
/// `N_ROLES` roles.
fn build(n_agents: usize, n_frameworks: usize) -> Allocator {
    let mut allocator = Allocator::new(AllocatorConfig::default());
    let total = Resources::parse(AGENT_RESOURCES, "*").expect("valid agent resources");
    for idx in 0..n_agents {
        let agent_id = AgentId::new(format!("agent-{idx:06}")).expect("valid agent ID");
        allocator
            .add_agent(agent_id, total.clone(), BTreeMap::new())
            .expect("new agent");
    }
    for idx in 0..n_frameworks {
        let framework_id = FrameworkId::new(format!("framework-{idx:05}")).expect("valid ID");
        let roles = BTreeSet::from([format!("role-{}", idx % N_ROLES)]);
        allocator
            .add_framework(framework_id, roles, BTreeSet::new(), true)
            .expect("new framework");
    }
    allocator
}

/// How long one run took: wall time, and the CPU time of this thread, which is the fairer
/// figure on a machine shared with other builds (it leaves out time spent waiting for a core).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Returns the CPU time this thread has used, from Linux's `/proc/thread-self/schedstat`
/// (nanoseconds on a core), or zero where that is not available. The kernel brings it up to
/// date at scheduler ticks, so for runs of a few milliseconds it is only tick-accurate.
fn thread_cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(nanos.unwrap_or(0))
}

/// Returns how long `run` takes.
#[allow(clippy::disallowed_methods)] // A benchmark measures wall time; it is not a pure core.
fn timed<T>(run: impl FnOnce() -> T) -> (Sample, T) {
    let (start, cpu_start) = (Instant::now(), thread_cpu_time());
    let result = run();
    let sample = Sample {
        wall: start.elapsed(),
        cpu: thread_cpu_time().saturating_sub(cpu_start),
    };
    (sample, result)
}

/// Returns the allocator as it is after the first run and after a tenth of the offers came
/// back: every other one declined for an hour, the others (say, finished tasks) unfiltered.
fn steady_state(first: &mut Allocator, allocations: &[Allocation]) {
    for (idx, allocation) in allocations.iter().enumerate().step_by(10) {
        let refuse = (idx % 20 == 0).then_some(Duration::from_secs(3600));
        first
            .recover_resources(
                &allocation.framework_id,
                &allocation.agent_id,
                &allocation.resources,
                refuse,
                Duration::ZERO,
            )
            .expect("recovering an offer");
    }
}

/// Returns the median wall time and the minimum CPU time of `samples`, in ms.
fn summary(samples: &[Sample]) -> String {
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let mut wall: Vec<Duration> = samples.iter().map(|sample| sample.wall).collect();
    let mut cpu: Vec<Duration> = samples.iter().map(|sample| sample.cpu).collect();
    wall.sort_unstable();
    cpu.sort_unstable();
    format!("{:.1} / {:.1}", ms(wall[wall.len() / 2]), ms(cpu[0]))
}

/// One line of the table.
struct Row {
    first: String,
    n_first: usize,
    steady: String,
    n_steady: usize,
}

/// Times `N_SAMPLES` first runs and steady-state runs.
fn measure(n_agents: usize, n_frameworks: usize) -> Row {
    let built = build(n_agents, n_frameworks);
    let (mut first_samples, mut steady_samples) = (Vec::new(), Vec::new());
    let (mut n_first, mut n_steady) = (0, 0);
    for _ in 0..N_SAMPLES {
        let mut allocator = built.clone();
        let (sample, allocations) = timed(|| allocator.allocate(Duration::ZERO));
        first_samples.push(sample);
        n_first = allocations.len();
        steady_state(&mut allocator, &allocations);
        let (sample, allocations) = timed(|| allocator.allocate(Duration::from_secs(1)));
        steady_samples.push(sample);
        n_steady = allocations.len();
    }
    Row {
        first: summary(&first_samples),
        n_first,
        steady: summary(&steady_samples),
        n_steady,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
    // then a small cluster checks that the benchmark still works without taking minutes.
    let full = std::env::args().any(|arg| arg == "--bench");
    let sizes: &[(usize, usize)] = if full {
        &[(10_000, 1_000), (50_000, 200)]
    } else {
        &[(100, 10)]
    };
    println!("{N_SAMPLES} runs each, agents of {AGENT_RESOURCES}, {N_ROLES} roles");
    println!("times in ms: median wall time / least CPU time of the thread");
    println!(
        "{:>8} {:>11} {:>16} {:>8} {:>16} {:>8}",
        "agents", "frameworks", "first run", "offers", "steady state", "offers"
    );
    for &(n_agents, n_frameworks) in sizes {
        let row = measure(n_agents, n_frameworks);
        println!(
            "{n_agents:>8} {n_frameworks:>11} {:>16} {:>8} {:>16} {:>8}",
            row.first, row.n_first, row.steady, row.n_steady
        );
    }
}
