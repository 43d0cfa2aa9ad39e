//! Launch throughput: how many short containers (`/bin/true`) the agent's containerizers start,
//! wait for and clean up per second, against bare spawn+exec+wait as the physical baseline.
//!
//! `cargo bench -p strata-agent --bench launch` runs, one after another and one container at a
//! time:
//!
//! 1. `baseline`: `std::process::Command` spawn+exec+wait of `/bin/true`;
//! 2. `cgroup cycle`: create a container's cgroups with limits, move a process in and out,
//!    remove them (no spawn);
//! 3. `posix`: launch+wait of `/bin/true` through the posix containerizer;
//! 4. `cgroups`: the same through the cgroups containerizer (cpus 0.1, mem 32 MiB, pids 16).
//!
//! N (default 2,000; 20 when `cargo test` runs this as a smoke test) comes from
//! `STRATA_LAUNCH_BENCH_N` or the first numeric argument. The
//! cgroup phases need root, as the agent does; without it they are reported as failed and the
//! exit status is non-zero.

// A benchmark's report is its output, so it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strata_agent::containerizer::{
    CgroupsConfig, CgroupsContainerizer, CommandLine, Containerizer, LaunchSpec, Limits,
    PosixContainerizer,
};
use strata_protocol::ContainerId;

const N_DEFAULT: usize = 2_000;
/// Launches per phase when run by `cargo test` rather than `cargo bench`.
const N_SMOKE: usize = 20;

/// Phases run interleaved, in this many rounds of N / ROUNDS launches each, so that load from
/// other work on the machine (2 shared cores) spreads over all phases alike and the ratios hold.
const ROUNDS: usize = 10;

/// One measured phase: its name, what it took, and how to run `count` launches from `first_idx`.
struct Phase<'a> {
    name: &'static str,
    wall: Duration,
    cpu: Duration,
    run: Box<dyn FnMut(usize, usize) + 'a>,
}

fn main() {
    let n_launches = launches_from_env_or_args();
    let sandbox = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let posix = PosixContainerizer::new();
    let cgroups = CgroupsContainerizer::new(CgroupsConfig {
        root: PathBuf::from("strata-bench"),
        agent_instance: format!("bench-{}", std::process::id()),
        ..CgroupsConfig::default()
    });
    let cgroup_limits = Limits {
        cpus: Some(0.1),
        mem_mib: Some(32),
        pids_max: Some(16),
    };

    let mut phases = vec![Phase {
        name: "baseline spawn+exec+wait",
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        run: Box::new(|_, count| spawn_true(count)),
    }];
    let posix_ref = &posix;
    let runtime_ref = &runtime;
    let sandbox_path = sandbox.path();
    phases.push(Phase {
        name: "posix containerizer",
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        run: Box::new(move |first_idx, count| {
            runtime_ref.block_on(launch_all(
                posix_ref,
                "posix",
                first_idx..first_idx + count,
                sandbox_path,
                Limits::default(),
            ))
        }),
    });
    let cgroups_ok = match &cgroups {
        Ok(cgroups) => {
            let mut helper = CycleHelper::spawn(cgroups);
            phases.push(Phase {
                name: "cgroup create/attach/remove",
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
                run: Box::new(move |first_idx, count| helper.cycles(first_idx..first_idx + count)),
            });
            phases.push(Phase {
                name: "cgroups containerizer",
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
                run: Box::new(move |first_idx, count| {
                    runtime_ref.block_on(launch_all(
                        cgroups,
                        "cgroups",
                        first_idx..first_idx + count,
                        sandbox_path,
                        cgroup_limits,
                    ))
                }),
            });
            true
        }
        Err(error) => {
            eprintln!("cgroup phases cannot run: {error}");
            false
        }
    };

    println!(
        "launch benchmark: {n_launches} sequential launches per phase, interleaved in {ROUNDS} rounds"
    );
    let per_round = n_launches.div_ceil(ROUNDS);
    let mut first_idx = 0;
    while first_idx < n_launches {
        let count = per_round.min(n_launches - first_idx);
        for phase in &mut phases {
            let (wall, cpu) = measure(|| (phase.run)(first_idx, count));
            phase.wall += wall;
            phase.cpu += cpu;
        }
        first_idx += count;
    }

    let baseline = phases[0].wall;
    let baseline_cpu = phases[0].cpu;
    println!(
        "{:<30} {:>10} {:>12} {:>10} {:>14}",
        "phase", "rate", "wall each", "vs base", "cpu each"
    );
    for phase in &phases {
        report(phase, n_launches, baseline, baseline_cpu);
    }
    drop(phases);
    if let Ok(cgroups) = &cgroups {
        for dir in cgroups.instance_paths() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    if !cgroups_ok {
        std::process::exit(1);
    }
}

fn spawn_true(count: usize) {
    for _ in 0..count {
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn /bin/true");
        assert!(status.success());
    }
}

fn launches_from_env_or_args() -> usize {
    let from_env = std::env::var("STRATA_LAUNCH_BENCH_N").ok();
    // `cargo bench` passes `--bench` (and filters) to harness-less benches; only a number counts.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let from_args = args
        .iter()
        .find(|arg| arg.parse::<usize>().is_ok())
        .cloned();
    if let Some(n) = from_env.or(from_args) {
        return n.parse().expect("N is a positive integer");
    }
    // `cargo test --all-targets` runs this binary too, without `--bench`: a short smoke run then
    // checks that every phase works without making the test suite wait for a benchmark.
    if args.iter().any(|arg| arg == "--bench") {
        N_DEFAULT
    } else {
        N_SMOKE
    }
}

/// Runs `once` and returns the wall-clock time and the cpu time (user and system, of this
/// process and its waited-for children) it took. Cpu time is what a launch costs the machine,
/// whatever else runs beside it.
#[allow(clippy::disallowed_methods)] // Measuring wall-clock time is the point of a benchmark.
fn measure(once: impl FnOnce()) -> (Duration, Duration) {
    let cpu_before = cpu_time();
    let start = Instant::now();
    once();
    (start.elapsed(), cpu_time().saturating_sub(cpu_before))
}

/// Reads this process's own and waited-for children's cpu time from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 1..]
        .split_whitespace()
        .collect();
    // utime, stime, cutime and cstime are fields 14 to 17 of proc(5); fields[0] is field 3.
    let ticks: u64 = (14..=17)
        .map(|field| fields[field - 3].parse::<u64>().expect("ticks"))
        .sum();
    Duration::from_secs_f64(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

#[allow(clippy::disallowed_methods)] // Measuring wall-clock time is the point of a benchmark.
async fn launch_all(
    containerizer: &dyn Containerizer,
    phase: &str,
    launch_idxs: std::ops::Range<usize>,
    sandbox: &Path,
    limits: Limits,
) {
    let spec = LaunchSpec {
        command: CommandLine::argv(["/bin/true"]),
        env: Vec::new(),
        working_dir: sandbox.to_path_buf(),
        user: None,
        stdout_path: sandbox.join("stdout"),
        stderr_path: sandbox.join("stderr"),
        limits,
        outlive_agent: false,
    };
    for launch_idx in launch_idxs {
        let container_id =
            ContainerId::new(format!("{phase}-{launch_idx}")).expect("valid container ID");
        containerizer
            .launch(container_id.clone(), spec.clone())
            .expect("launch");
        let termination = containerizer.wait(&container_id).await.expect("wait");
        assert!(
            termination.status.is_some_and(|status| status.success()),
            "{termination:?}"
        );
    }
}

/// Does the cgroup work of one launch without the spawn: creates a container's cgroups with the
/// limits the cgroups phase uses, moves a helper process in and back out, and removes them.
struct CycleHelper<'a> {
    cgroups: &'a CgroupsContainerizer,
    helper: std::process::Child,
    helper_pid: String,
}

impl<'a> CycleHelper<'a> {
    fn spawn(cgroups: &'a CgroupsContainerizer) -> Self {
        let helper = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn helper");
        let helper_pid = helper.id().to_string();
        Self {
            cgroups,
            helper,
            helper_pid,
        }
    }

    fn cycles(&mut self, cycle_idxs: std::ops::Range<usize>) {
        let instance_paths = self.cgroups.instance_paths();
        for cycle_idx in cycle_idxs {
            let container_id = ContainerId::new(format!("cycle-{cycle_idx}")).expect("valid");
            let paths = self.cgroups.cgroup_paths(&container_id);
            for path in &paths {
                std::fs::create_dir(path).expect("create cgroup");
            }
            write_limits(&paths);
            for path in &paths {
                std::fs::write(path.join("cgroup.procs"), &self.helper_pid).expect("attach");
            }
            for parent in &instance_paths {
                std::fs::write(parent.join("cgroup.procs"), &self.helper_pid).expect("detach");
            }
            for path in &paths {
                std::fs::remove_dir(path).expect("remove cgroup");
            }
        }
    }
}

impl Drop for CycleHelper<'_> {
    fn drop(&mut self) {
        let _ = self.helper.kill();
        let _ = self.helper.wait();
    }
}

/// Writes the limits the containerizer would, to whichever of the files exist (v1 or v2).
fn write_limits(paths: &[PathBuf]) {
    let limits = [
        ("cpu.shares", "102"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "10000"),
        ("cpu.weight", "4"),
        ("cpu.max", "10000 100000"),
        ("memory.limit_in_bytes", "33554432"),
        ("memory.memsw.limit_in_bytes", "33554432"),
        ("memory.max", "33554432"),
        ("pids.max", "16"),
    ];
    for path in paths {
        for (file, value) in limits {
            let file = path.join(file);
            if file.exists() {
                std::fs::write(&file, value).expect("write limit");
            }
        }
    }
}

fn report(phase: &Phase<'_>, n_launches: usize, baseline: Duration, baseline_cpu: Duration) {
    let n = n_launches as f64;
    let rate = n / phase.wall.as_secs_f64();
    println!(
        "{:<30} {:>8.0}/s {:>9.1} us {:>9.2}x {:>8.1} us {:>4.2}x",
        phase.name,
        rate,
        phase.wall.as_secs_f64() * 1e6 / n,
        baseline.as_secs_f64() / phase.wall.as_secs_f64(),
        phase.cpu.as_secs_f64() * 1e6 / n,
        phase.cpu.as_secs_f64() / baseline_cpu.as_secs_f64().max(f64::MIN_POSITIVE),
    );
}
