//! The cgroups containerizer with real processes and real cgroups.
//!
//! These tests need root and a writable cgroup hierarchy, as the agent does; CI runs as root. If
//! cgroups are not usable they fail with the containerizer's own explanation rather than skip.

mod containerizer_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerizer_common::{
    DEADLINE, Sandbox, container_id, eventually, parse_pid, running, within,
};
use strata_agent::containerizer::{
    CgroupVersion, CgroupsConfig, CgroupsContainerizer, Containerizer, ContainerizerError,
    ExitStatus, Limits, RecoverSpec, TerminationReason,
};
use strata_protocol::mesos::TaskStatusReason;

/// A containerizer whose cgroups no other test touches, removed again when dropped.
struct TestCgroups {
    containerizer: CgroupsContainerizer,
}

impl TestCgroups {
    fn new(test: &str) -> Self {
        let containerizer = CgroupsContainerizer::new(config(test))
            .unwrap_or_else(|error| panic!("cgroups isolation is required for this test: {error}"));
        Self { containerizer }
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        // Best effort: with every container gone, this removes the idle cgroups and the
        // instance's own.
        let _ = self.containerizer.release_instance();
    }
}

impl std::ops::Deref for TestCgroups {
    type Target = CgroupsContainerizer;
    fn deref(&self) -> &CgroupsContainerizer {
        &self.containerizer
    }
}

fn config(test: &str) -> CgroupsConfig {
    CgroupsConfig {
        root: PathBuf::from("strata-test"),
        agent_instance: format!("{test}-{}", std::process::id()),
        ..CgroupsConfig::default()
    }
}

/// The cgroups under `instance`, by name.
fn cgroups_under(instance: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(instance)
        .expect("instance dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The idle cgroups under the instance's directory in the hierarchy whose cgroups have `file`.
fn idle_in(cgroups: &CgroupsContainerizer, file: &str) -> Vec<String> {
    cgroups_under(&dir_with(&cgroups.instance_paths(), file))
        .into_iter()
        .filter(|name| name.starts_with(".idle-"))
        .collect()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Returns the directory of `containerizer`'s cgroup holding `file`.
fn dir_with(paths: &[PathBuf], file: &str) -> PathBuf {
    paths
        .iter()
        .find(|dir| dir.join(file).exists())
        .unwrap_or_else(|| panic!("no cgroup of {paths:?} has {file}"))
        .clone()
}

#[tokio::test]
async fn echo_and_exit_codes_in_a_cgroup() {
    let cgroups = TestCgroups::new("echo");
    let sandbox = Sandbox::new();
    let id = container_id("echo");
    cgroups
        .launch(id.clone(), sandbox.shell("echo hello; exit 3"))
        .expect("launch");
    let termination = within("echo", cgroups.wait(&id)).await.expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(3)));
    assert_eq!(termination.reason, None);
    assert_eq!(sandbox.stdout(), "hello\n");
    for dir in cgroups.cgroup_paths(&id) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn the_command_runs_inside_its_cgroup_from_the_start() {
    let cgroups = TestCgroups::new("inside");
    let sandbox = Sandbox::new();
    let id = container_id("inside");
    // The command's very first action reads its cgroups: it must already be confined, in the
    // pids hierarchy too since it has a pids limit.
    let mut spec = sandbox.shell("cat /proc/self/cgroup");
    spec.limits.pids_max = Some(64);
    cgroups.launch(id.clone(), spec).expect("launch");
    within("cat", cgroups.wait(&id)).await.expect("wait");
    let stdout = sandbox.stdout();
    let suffix = format!("/strata-test/inside-{}/inside", std::process::id());
    let controllers: &[&str] = match cgroups.version() {
        CgroupVersion::V1 => &["cpu", "cpuacct", "memory", "pids"],
        CgroupVersion::V2 => &[""],
    };
    for controller in controllers {
        let line = stdout
            .lines()
            .find(|line| {
                line.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == *controller))
            })
            .unwrap_or_else(|| panic!("no {controller:?} line in {stdout}"));
        assert!(
            line.ends_with(&suffix),
            "{line} is not in the container's cgroup"
        );
    }
}

#[tokio::test]
async fn limits_are_written_to_the_cgroup_and_the_cgroup_removed_after_exit() {
    let cgroups = TestCgroups::new("limits");
    let sandbox = Sandbox::new();
    let id = container_id("limits");
    let mut spec = sandbox.shell("echo started > started; exec sleep 1000");
    spec.limits = Limits {
        cpus: Some(1.5),
        mem_mib: Some(64),
        pids_max: Some(32),
    };
    let launched = cgroups.launch(id.clone(), spec).expect("launch");
    sandbox.file_written("started").await;

    let paths = cgroups.cgroup_paths(&id);
    match cgroups.version() {
        CgroupVersion::V1 => {
            let cpu = dir_with(&paths, "cpu.shares");
            assert_eq!(read(&cpu, "cpu.shares"), "1536");
            assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
            assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "150000");
            let memory = dir_with(&paths, "memory.limit_in_bytes");
            assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
            if memory.join("memory.memsw.limit_in_bytes").exists() {
                assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "67108864");
            }
            let pids = dir_with(&paths, "pids.max");
            assert_eq!(read(&pids, "pids.max"), "32");
        }
        CgroupVersion::V2 => {
            let dir = &paths[0];
            assert_eq!(read(dir, "cpu.weight"), "59");
            assert_eq!(read(dir, "cpu.max"), "150000 100000");
            assert_eq!(read(dir, "memory.max"), "67108864");
            assert_eq!(read(dir, "pids.max"), "32");
        }
    }
    for dir in &paths {
        assert_eq!(
            read(dir, "cgroup.procs"),
            launched.pid.to_string(),
            "in {}",
            dir.display()
        );
    }

    let termination = within("destroy", cgroups.destroy(&id, Duration::from_secs(5)))
        .await
        .expect("destroy");
    assert_eq!(termination.status, Some(ExitStatus::Signaled(15)));
    assert_eq!(termination.reason, Some(TerminationReason::Destroyed));
    for dir in &paths {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_reported_as_a_memory_limitation() {
    let cgroups = TestCgroups::new("oom");
    let sandbox = Sandbox::new();
    let id = container_id("hog");
    // The shell keeps the whole command substitution in its own heap: 256 MiB against 32.
    let mut spec = sandbox.shell("x=$(yes | head -c 268435456); echo survived");
    spec.limits.mem_mib = Some(32);
    cgroups.launch(id.clone(), spec).expect("launch");
    let termination = within("the OOM kill", cgroups.wait(&id))
        .await
        .expect("wait");
    assert_eq!(
        termination.reason,
        Some(TerminationReason::MemoryLimit),
        "{termination:?}"
    );
    assert_eq!(
        TerminationReason::MemoryLimit.task_status_reason(),
        Some(TaskStatusReason::ReasonContainerLimitationMemory)
    );
    assert_eq!(termination.status, Some(ExitStatus::Signaled(9)));
    assert!(
        termination.message.contains("memory limit of 32 MiB"),
        "{}",
        termination.message
    );
    assert_eq!(sandbox.stdout(), "", "the hog did not survive");
    for dir in cgroups.cgroup_paths(&id) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // Its OOM kill count cannot be reset, so no later container may get the cgroup.
    assert_eq!(
        idle_in(&cgroups, "memory.limit_in_bytes"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn destroy_reaches_processes_that_left_the_process_group() {
    let cgroups = TestCgroups::new("escape");
    let sandbox = Sandbox::new();
    let id = container_id("escape");
    // `setsid` puts the background sleep in a new session and process group, out of reach of a
    // group signal; only the cgroup still knows it.
    cgroups
        .launch(
            id.clone(),
            sandbox.shell("setsid sleep 1000 & echo $! > escaped.pid; sleep 1000"),
        )
        .expect("launch");
    let escaped = parse_pid(&sandbox.file_written("escaped.pid").await);
    eventually("the escaped sleep to run", || {
        running(escaped).then_some(())
    })
    .await;
    within("destroy", cgroups.destroy(&id, Duration::from_secs(5)))
        .await
        .expect("destroy");
    assert!(!running(escaped), "the escaped process survived");
    for dir in cgroups.cgroup_paths(&id) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn usage_reports_cpu_memory_and_pids() {
    let cgroups = TestCgroups::new("usage");
    let sandbox = Sandbox::new();
    let id = container_id("busy");
    let mut spec = sandbox.shell("while :; do :; done");
    spec.limits = Limits {
        cpus: Some(0.5),
        mem_mib: Some(64),
        pids_max: Some(16),
    };
    cgroups.launch(id.clone(), spec).expect("launch");
    let usage = eventually("cpu time to be counted", || {
        let usage = cgroups.usage(&id).expect("usage");
        (usage.cpu_user_secs > 0.0).then_some(usage)
    })
    .await;
    assert_eq!(usage.mem_limit_bytes, Some(64 * 1024 * 1024));
    assert!(
        usage.mem_usage_bytes.is_some_and(|bytes| bytes > 0),
        "{usage:?}"
    );
    assert_eq!(usage.pids, 1);
    within("destroy", cgroups.destroy(&id, Duration::from_secs(5)))
        .await
        .expect("destroy");
}

#[tokio::test]
async fn a_failed_launch_leaves_no_cgroup() {
    let cgroups = TestCgroups::new("failures");
    let sandbox = Sandbox::new();
    let id = container_id("missing-program");
    let error = cgroups
        .launch(
            id.clone(),
            sandbox.spec(strata_agent::containerizer::CommandLine::argv([
                "/nonexistent",
            ])),
        )
        .expect_err("cannot exec");
    assert!(
        matches!(error, ContainerizerError::Launch { .. }),
        "{error}"
    );
    for dir in cgroups.cgroup_paths(&id) {
        assert!(
            !dir.exists(),
            "{} left behind by a failed launch",
            dir.display()
        );
    }
}

#[tokio::test]
async fn the_child_enters_its_cgroup_before_dropping_to_the_user() {
    let cgroups = TestCgroups::new("user");
    let sandbox = Sandbox::new();
    let id = container_id("nobody");
    // Only root may move a process between cgroups, so this works only if the child attaches
    // itself first and drops to `nobody` after.
    let mut spec = sandbox.shell("id -un; cat /proc/self/cgroup");
    spec.user = Some("nobody".into());
    spec.limits.mem_mib = Some(64);
    cgroups.launch(id.clone(), spec).expect("launch");
    let termination = within("id", cgroups.wait(&id)).await.expect("wait");
    assert_eq!(
        termination.status,
        Some(ExitStatus::Exited(0)),
        "{}",
        sandbox.stderr()
    );
    let stdout = sandbox.stdout();
    assert_eq!(stdout.lines().next(), Some("nobody"));
    let suffix = format!("/strata-test/user-{}/nobody", std::process::id());
    assert!(
        stdout
            .lines()
            .any(|line| line.contains(":memory:") && line.ends_with(&suffix))
            || stdout
                .lines()
                .any(|line| line.starts_with("0::") && line.ends_with(&suffix)),
        "{stdout}"
    );
}

#[tokio::test]
async fn many_containers_at_once_each_get_and_release_their_cgroup() {
    let cgroups = TestCgroups::new("many");
    let sandbox = Sandbox::new();
    let ids: Vec<_> = (0..50)
        .map(|idx| container_id(&format!("c{idx}")))
        .collect();
    let mut spec = sandbox.shell("exit $((${N} % 7))");
    spec.limits.mem_mib = Some(32);
    for (idx, id) in ids.iter().enumerate() {
        let mut spec = spec.clone();
        spec.env.push(("N".into(), idx.to_string()));
        cgroups.launch(id.clone(), spec).expect("launch");
    }
    for (idx, id) in ids.iter().enumerate() {
        let termination = within("exit", cgroups.wait(id)).await.expect("wait");
        assert_eq!(termination.status, Some(ExitStatus::Exited(idx as i32 % 7)));
    }
    assert!(cgroups.containers().is_empty());
    for id in &ids {
        for dir in cgroups.cgroup_paths(id) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
    // What is left is kept for reuse (v1), within the pool's bound.
    let idle = CgroupsConfig::default().idle_cgroups;
    for instance in cgroups.instance_paths() {
        let names = cgroups_under(&instance);
        assert!(
            names.iter().all(|name| name.starts_with(".idle-")) && names.len() <= idle,
            "{names:?}"
        );
    }
    cgroups.release_instance().expect("release the instance");
    for dir in cgroups.instance_paths() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn an_unusable_hierarchy_is_explained() {
    let error = CgroupsContainerizer::new(CgroupsConfig {
        // A file cannot hold a cgroup: creation fails as it would on a read-only hierarchy.
        root: PathBuf::from("/cgroup.procs/strata"),
        agent_instance: "unusable".into(),
        ..CgroupsConfig::default()
    })
    .err()
    .expect("no cgroups below a file");
    let message = error.to_string();
    assert!(
        matches!(error, ContainerizerError::CgroupsUnavailable(_)),
        "{message}"
    );
    assert!(message.contains("--isolation=posix"), "{message}");
}

/// An agent crash: the containerizer and its runtime go away, its containers keep running. The
/// next run recovers the container it checkpointed and destroys the one it did not know.
#[test]
fn recover_keeps_known_containers_and_destroys_orphans() {
    let sandbox = Sandbox::new();
    let keeper = container_id("keeper");
    let orphan = container_id("orphan");
    let first_run = tokio::runtime::Runtime::new().expect("runtime");
    let (keeper_pid, orphan_pid, orphan_paths) = first_run.block_on(async {
        let containerizer = CgroupsContainerizer::new(config("recover"))
            .unwrap_or_else(|error| panic!("cgroups isolation is required: {error}"));
        let mut spec = sandbox.shell("sleep 1000");
        spec.limits.mem_mib = Some(64);
        let keeper_pid = containerizer
            .launch(keeper.clone(), spec.clone())
            .expect("launch")
            .pid;
        let orphan_pid = containerizer
            .launch(orphan.clone(), spec)
            .expect("launch")
            .pid;
        (keeper_pid, orphan_pid, containerizer.cgroup_paths(&orphan))
    });
    drop(first_run);
    assert!(
        running(keeper_pid) && running(orphan_pid),
        "containers outlive the agent"
    );

    let second_run = tokio::runtime::Runtime::new().expect("runtime");
    second_run.block_on(async {
        let cgroups = TestCgroups::new("recover");
        // A leftover directory with no process in it, as a crash between create and launch leaves.
        let empty = cgroups
            .instance_paths()
            .into_iter()
            .map(|dir| dir.join("empty-leftover"))
            .collect::<Vec<_>>();
        for dir in &empty {
            std::fs::create_dir(dir).expect("create leftover cgroup");
        }
        // An idle cgroup a previous run kept for reuse.
        let idle = cgroups
            .instance_paths()
            .into_iter()
            .map(|dir| dir.join(".idle-3"))
            .collect::<Vec<_>>();
        for dir in &idle {
            std::fs::create_dir(dir).expect("create idle cgroup");
        }
        let gone = container_id("gone");
        let recovery = within(
            "recover",
            cgroups.recover(vec![
                RecoverSpec {
                    container_id: keeper.clone(),
                    pid: Some(keeper_pid),
                },
                RecoverSpec {
                    container_id: gone.clone(),
                    pid: None,
                },
            ]),
        )
        .await
        .expect("recover");
        assert_eq!(recovery.recovered, vec![keeper.clone()]);
        assert_eq!(recovery.missing, vec![gone]);
        assert_eq!(
            recovery.orphans_destroyed,
            vec!["empty-leftover".to_string(), "orphan".to_string()]
        );
        assert!(!running(orphan_pid), "the orphan survived recovery");
        for dir in orphan_paths.iter().chain(&empty).chain(&idle) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }

        assert_eq!(
            cgroups.usage(&keeper).expect("usage").mem_limit_bytes,
            Some(64 * 1024 * 1024)
        );
        let termination = within("destroy", cgroups.destroy(&keeper, DEADLINE))
            .await
            .expect("destroy");
        assert_eq!(termination.status, None, "not our child: no exit status");
        assert!(!running(keeper_pid));
        for dir in cgroups.cgroup_paths(&keeper) {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    });
}

/// Without a pids limit a v1 container has no cgroup in the pids hierarchy (one hierarchy less
/// to create, enter and remove per launch), and its usage still counts its threads.
#[tokio::test]
async fn without_a_pids_limit_a_v1_container_skips_the_pids_hierarchy() {
    let cgroups = TestCgroups::new("nopids");
    let sandbox = Sandbox::new();
    let id = container_id("no-pids-limit");
    let mut spec = sandbox.shell("cat /proc/self/cgroup; exec sleep 1000");
    spec.limits = Limits {
        cpus: Some(0.5),
        mem_mib: Some(64),
        pids_max: None,
    };
    cgroups.launch(id.clone(), spec).expect("launch");
    let stdout = eventually("the cgroups to be listed", || {
        let stdout = sandbox.stdout();
        stdout.contains(":memory:").then_some(stdout)
    })
    .await;
    let suffix = format!("/{id}");
    let line = |controller: &str| {
        stdout
            .lines()
            .find(|line| {
                line.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no {controller:?} line in {stdout}"))
            .to_owned()
    };
    assert!(line("memory").ends_with(&suffix), "{stdout}");
    if cgroups.version() == CgroupVersion::V1 {
        assert!(!line("pids").ends_with(&suffix), "{stdout}");
    }
    let usage = cgroups.usage(&id).expect("usage");
    assert_eq!(usage.pids, 1, "{usage:?}");
    within("destroy", cgroups.destroy(&id, Duration::from_secs(5)))
        .await
        .expect("destroy");
}

/// A released cgroup is renamed idle and taken by the next container (v1): same kernel cgroup,
/// the new container's name and limits, counters from zero; one that set no limit after one
/// that did gets the defaults back.
#[tokio::test]
async fn a_released_cgroup_is_reused_with_the_next_containers_limits_and_zeroed_counters() {
    use std::os::unix::fs::MetadataExt;

    let cgroups = TestCgroups::new("reuse");
    if cgroups.version() == CgroupVersion::V2 {
        // v2 cannot rename a cgroup: each container gets a new one, as every other test shows.
        return;
    }
    let sandbox = Sandbox::new();
    let first = container_id("first");
    let mut spec = sandbox.shell("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");
    spec.limits = Limits {
        cpus: Some(0.5),
        mem_mib: Some(64),
        pids_max: None,
    };
    cgroups.launch(first.clone(), spec).expect("launch");
    let first_paths = cgroups.cgroup_paths(&first);
    let first_usage = eventually("cpu time to be counted", || {
        let usage = cgroups.usage(&first).ok()?;
        (usage.cpu_user_secs + usage.cpu_system_secs > 0.01).then_some(usage)
    })
    .await;
    let termination = within("exit", cgroups.wait(&first)).await.expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(0)));
    for dir in &first_paths {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let idle = idle_in(&cgroups, "memory.limit_in_bytes");
    assert_eq!(idle.len(), 1, "{idle:?}");
    let memory_instance = dir_with(&cgroups.instance_paths(), "memory.limit_in_bytes");
    let idle_inode = std::fs::metadata(memory_instance.join(&idle[0]))
        .expect("idle cgroup")
        .ino();

    // No limits at all: each must be back at the kernel's default.
    let second = container_id("second");
    cgroups
        .launch(
            second.clone(),
            sandbox.shell("echo > second-started; exec sleep 1000"),
        )
        .expect("launch");
    sandbox.file_written("second-started").await;
    let paths = cgroups.cgroup_paths(&second);
    let memory = dir_with(&paths, "memory.limit_in_bytes");
    assert_eq!(
        std::fs::metadata(&memory).expect("cgroup").ino(),
        idle_inode,
        "the second container did not get the idle cgroup"
    );
    assert!(idle_in(&cgroups, "memory.limit_in_bytes").is_empty());
    let cpu = dir_with(&paths, "cpu.shares");
    assert_eq!(read(&cpu, "cpu.shares"), "1024");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "-1");
    let unlimited = read(&memory_instance, "memory.limit_in_bytes");
    assert_eq!(read(&memory, "memory.limit_in_bytes"), unlimited);
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), unlimited);
    }
    assert_eq!(read(&memory, "memory.failcnt"), "0");
    let usage = cgroups.usage(&second).expect("usage");
    assert!(
        usage.cpu_user_secs + usage.cpu_system_secs
            < first_usage.cpu_user_secs + first_usage.cpu_system_secs,
        "cpu time carried over: {usage:?} after {first_usage:?}"
    );
    assert_eq!(usage.mem_limit_bytes, None);
    // Without a pids limit there is no pids cgroup.
    for dir in paths.iter().filter(|dir| dir.exists()) {
        assert_eq!(
            read(dir, "cgroup.procs").lines().count(),
            1,
            "in {}",
            dir.display()
        );
    }
    within("destroy", cgroups.destroy(&second, DEADLINE))
        .await
        .expect("destroy");

    // And limits again, other than the first container's.
    let third = container_id("third");
    let mut spec = sandbox.shell("echo > third-started; exec sleep 1000");
    spec.limits = Limits {
        cpus: Some(2.0),
        mem_mib: Some(128),
        pids_max: None,
    };
    cgroups.launch(third.clone(), spec).expect("launch");
    sandbox.file_written("third-started").await;
    let paths = cgroups.cgroup_paths(&third);
    let memory = dir_with(&paths, "memory.limit_in_bytes");
    assert_eq!(
        std::fs::metadata(&memory).expect("cgroup").ino(),
        idle_inode
    );
    let cpu = dir_with(&paths, "cpu.shares");
    assert_eq!(read(&cpu, "cpu.shares"), "2048");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "200000");
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "134217728");
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "134217728");
    }
    within("destroy", cgroups.destroy(&third, DEADLINE))
        .await
        .expect("destroy");
}

/// A container with a pids limit has one more cgroup than one without, so the two never trade.
#[tokio::test]
async fn idle_cgroups_go_only_to_containers_of_the_same_shape() {
    use std::os::unix::fs::MetadataExt;

    let cgroups = TestCgroups::new("shape");
    if cgroups.version() == CgroupVersion::V2 {
        return;
    }
    let sandbox = Sandbox::new();
    let without = container_id("without-pids");
    let mut spec = sandbox.shell("true");
    spec.limits.mem_mib = Some(32);
    cgroups.launch(without.clone(), spec).expect("launch");
    within("exit", cgroups.wait(&without)).await.expect("wait");
    let memory_instance = dir_with(&cgroups.instance_paths(), "memory.limit_in_bytes");
    let idle = idle_in(&cgroups, "memory.limit_in_bytes");
    assert_eq!(idle.len(), 1, "{idle:?}");
    let idle_inode = std::fs::metadata(memory_instance.join(&idle[0]))
        .expect("idle cgroup")
        .ino();

    let with = container_id("with-pids");
    let mut spec = sandbox.shell("echo > started; exec sleep 1000");
    spec.limits = Limits {
        cpus: None,
        mem_mib: Some(32),
        pids_max: Some(8),
    };
    cgroups.launch(with.clone(), spec).expect("launch");
    sandbox.file_written("started").await;
    let paths = cgroups.cgroup_paths(&with);
    let pids = dir_with(&paths, "pids.max");
    assert_eq!(read(&pids, "pids.max"), "8");
    let memory = dir_with(&paths, "memory.limit_in_bytes");
    assert_ne!(
        std::fs::metadata(&memory).expect("cgroup").ino(),
        idle_inode
    );
    assert_eq!(idle_in(&cgroups, "memory.limit_in_bytes"), idle);
    within("destroy", cgroups.destroy(&with, DEADLINE))
        .await
        .expect("destroy");
}
