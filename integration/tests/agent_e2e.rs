//! A framework runs command tasks on a real agent: the master over TCP, the agent's actor, each
//! task's command as its container's leader (a child of the agent, or of the work dir's reaper
//! for a checkpointing framework), status updates back to the framework.

use std::path::Path;
use std::time::Duration;

use strata_agent::checkpoint::CheckpointStore;
use strata_agent::server::Isolation;
use strata_integration::cluster::{
    TestScheduler, agent_options, command_task, latest_run, reaper_processes, start_agent,
    start_master,
};
use strata_protocol::TaskId;
use strata_protocol::mesos::{TaskState, TaskStatusReason};

#[actix_rt::test]
async fn command_task_runs_to_finished_and_its_output_is_in_the_sandbox() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "e2e"}))
        .await;
    let offer = scheduler.next_offer().await;
    let task = command_task(
        "hello",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "echo hello from strata; echo to stderr >&2",
    );
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("hello").unwrap();
    let seen = scheduler
        .wait_for_state(&task_id, TaskState::Finished)
        .await;
    let states: Vec<TaskState> = seen.iter().map(|status| status.state).collect();
    assert_eq!(
        states,
        vec![TaskState::Starting, TaskState::Running, TaskState::Finished]
    );
    let run = latest_run(work_dir.path(), &framework_id, "hello");
    let stdout = std::fs::read_to_string(run.join("stdout")).unwrap();
    assert!(stdout.contains("hello from strata"), "stdout: {stdout:?}");
    let stderr = std::fs::read_to_string(run.join("stderr")).unwrap();
    assert!(stderr.contains("to stderr"), "stderr: {stderr:?}");
    agent.stop_and_destroy().await;
    master.stop().await;
}

#[actix_rt::test]
async fn task_over_its_memory_limit_fails_with_the_memory_reason() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Cgroups,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "oom"}))
        .await;
    let offer = scheduler.next_offer().await;
    // dd allocates its whole block at once: 256 MiB against a 64 MiB task.
    let task = command_task(
        "hog",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "dd if=/dev/zero of=/dev/null bs=256M count=1",
    );
    scheduler.launch(&offer, vec![task]);
    let seen = scheduler
        .wait_for_state(&TaskId::new("hog").unwrap(), TaskState::Failed)
        .await;
    let failed = seen.last().unwrap();
    assert_eq!(
        failed.reason,
        Some(TaskStatusReason::ReasonContainerLimitationMemory),
        "{failed:#?}"
    );
    agent.stop_and_destroy().await;
    master.stop().await;
}

#[actix_rt::test]
async fn killed_task_goes_through_killing_to_killed() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    scheduler
        .subscribe(serde_json::json!({
            "user": "root",
            "name": "kill",
            "capabilities": [{"type": "TASK_KILLING_STATE"}]
        }))
        .await;
    let offer = scheduler.next_offer().await;
    let task = command_task("sleeper", &offer.agent_id, "cpus:0.5;mem:64", "sleep 1000");
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("sleeper").unwrap();
    scheduler.wait_for_state(&task_id, TaskState::Running).await;
    scheduler.kill(&task_id);
    let seen = scheduler.wait_for_state(&task_id, TaskState::Killed).await;
    let states: Vec<TaskState> = seen.iter().map(|status| status.state).collect();
    assert_eq!(states, vec![TaskState::Killing, TaskState::Killed]);
    agent.stop_and_destroy().await;
    master.stop().await;
}

/// The pids whose working directory is `dir`.
fn processes_in(dir: &Path) -> Vec<(u32, u32, String)> {
    let dir = dir.canonicalize().expect("sandbox exists");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc") {
        let entry = entry.expect("entry");
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).ok().as_deref() != Some(dir.as_path()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`
        let Some((comm, rest)) = stat
            .split_once(" (")
            .and_then(|(_, rest)| rest.rsplit_once(") "))
        else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|ppid| ppid.parse().ok())
            .unwrap_or(0);
        found.push((pid, ppid, comm.to_owned()));
    }
    found
}

#[actix_rt::test]
async fn the_agent_runs_the_command_tasks_of_a_framework_without_checkpoint_itself() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "no-checkpoint"}))
        .await;

    // A failing command: the exit status is the task's, worded as the command executor does.
    let offer = scheduler.next_offer().await;
    let task = command_task("fails", &offer.agent_id, "cpus:0.5;mem:64", "exit 3");
    scheduler.launch(&offer, vec![task]);
    let seen = scheduler
        .wait_for_state(&TaskId::new("fails").unwrap(), TaskState::Failed)
        .await;
    let states: Vec<TaskState> = seen.iter().map(|status| status.state).collect();
    assert_eq!(
        states,
        vec![TaskState::Starting, TaskState::Running, TaskState::Failed]
    );
    let failed = seen.last().unwrap();
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 3")
    );

    // A running command is the container's leader: a child of the agent, with no executor
    // process in between.
    let offer = scheduler.next_offer().await;
    let task = command_task(
        "sleeper",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "exec sleep 1000",
    );
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("sleeper").unwrap();
    scheduler.wait_for_state(&task_id, TaskState::Running).await;
    let sandbox = latest_run(work_dir.path(), &framework_id, "sleeper");
    let processes = processes_in(&sandbox);
    assert_eq!(processes.len(), 1, "{processes:?}");
    let (_, ppid, comm) = &processes[0];
    // RUNNING is reported once the leader started; the shell may not have exec'd yet.
    assert!(comm == "sleep" || comm == "sh", "{comm}");
    assert_eq!(
        *ppid,
        std::process::id(),
        "the agent (this process) is its parent"
    );

    // Without TASK_KILLING_STATE, a kill is straight TASK_KILLED, from SIGTERM.
    scheduler.kill(&task_id);
    let seen = scheduler.wait_for_state(&task_id, TaskState::Killed).await;
    let killed = seen.last().unwrap();
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    assert!(processes_in(&sandbox).is_empty());
    agent.stop_and_destroy().await;
    master.stop().await;
}

/// `--cgroups-pids-max` reaches every container: its pids cgroup carries the limit.
#[actix_rt::test]
async fn the_pids_limit_is_set_on_the_task_cgroup() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let mut options = agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Cgroups,
    );
    options.pids_max = Some(77);
    let agent = start_agent(options).await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "pids"}))
        .await;
    let offer = scheduler.next_offer().await;
    // The task reads the limit of its own pids cgroup (v1) or of its one cgroup (v2).
    let task = command_task(
        "pids",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "p=$(grep -E '^[0-9]+:(pids)?:' /proc/self/cgroup | head -n1 | cut -d: -f3); \
         if [ -d /sys/fs/cgroup/pids ]; then cat /sys/fs/cgroup/pids$p/pids.max; \
         else cat /sys/fs/cgroup$p/pids.max; fi",
    );
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("pids").unwrap();
    scheduler
        .wait_for_state(&task_id, TaskState::Finished)
        .await;
    let run = latest_run(work_dir.path(), &framework_id, "pids");
    let stdout = std::fs::read_to_string(run.join("stdout")).unwrap();
    assert_eq!(stdout.trim(), "77");
    agent.stop_and_destroy().await;
    master.stop().await;
}

/// A finished run of a checkpointing framework is marked completed in the checkpoint once its
/// terminal update is acknowledged (so a restarted agent leaves it alone, and the next compaction
/// of the framework's runs log drops it), or the framework's checkpoint goes with it when it was
/// the framework's last executor on the agent; its sandbox is collected after the GC delay.
#[actix_rt::test]
async fn a_finished_run_is_marked_completed_and_its_sandbox_collected() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let mut options = agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    );
    options.gc.gc_delay = Duration::from_secs(2);
    let agent = start_agent(options).await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "gc", "checkpoint": true}))
        .await;
    let offer = scheduler.next_offer().await;
    let agent_id = offer.agent_id.clone();
    scheduler.launch(
        &offer,
        vec![command_task("done", &agent_id, "cpus:0.5;mem:64", "true")],
    );
    let task_id = TaskId::new("done").unwrap();
    scheduler
        .wait_for_state(&task_id, TaskState::Finished)
        .await;
    let sandbox = latest_run(work_dir.path(), &framework_id, "done");
    assert!(sandbox.is_dir());
    // What a restarted agent would read.
    let completed = || {
        let store = CheckpointStore::open(work_dir.path(), false).unwrap();
        let recovered = store.recover().unwrap().expect("a checkpointed agent");
        let Some(framework) = recovered.frameworks.first() else {
            return true;
        };
        assert_eq!(framework.info.id.as_ref(), Some(&framework_id));
        let executor = &framework.executors[0];
        assert_eq!(executor.info.executor_id.as_str(), "done");
        executor.runs.last().unwrap().record.completed
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sandbox.exists() || !completed() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sandbox left: {}, run completed: {}",
            sandbox.exists(),
            completed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.stop_and_destroy().await;
    master.stop().await;
}

/// A checkpointing framework's command task runs with no executor process too, as a child of
/// the work dir's reaper, which outlives the agent; its exit status still makes its update.
#[actix_rt::test]
async fn a_checkpointing_frameworks_command_task_is_a_child_of_the_reaper() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Cgroups,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "checkpointing", "checkpoint": true}))
        .await;
    let offer = scheduler.next_offer().await;
    let task = command_task(
        "child-of-the-reaper",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "echo $PPID > parent; while [ ! -f go ]; do sleep 0.01; done; exit 4",
    );
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("child-of-the-reaper").unwrap();
    scheduler.wait_for_state(&task_id, TaskState::Running).await;
    let sandbox = latest_run(work_dir.path(), &framework_id, "child-of-the-reaper");
    let parent: u32 = written_line(&sandbox.join("parent")).await.parse().unwrap();
    assert_eq!(
        Some(parent),
        reaper_pid(work_dir.path()),
        "its parent is not the work dir's reaper"
    );
    std::fs::write(sandbox.join("go"), "").unwrap();
    let seen = scheduler.wait_for_state(&task_id, TaskState::Failed).await;
    assert_eq!(
        seen.last().unwrap().message.as_deref(),
        Some("Command exited with status 4")
    );
    agent.stop_and_destroy().await;
    master.stop().await;
}

/// The line a task writes into `path`, once it is whole.
async fn written_line(path: &Path) -> String {
    loop {
        match std::fs::read_to_string(path) {
            Ok(line) if line.ends_with('\n') => return line.trim().to_owned(),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The pid of the work dir's reaper, from its command line.
fn reaper_pid(work_dir: &Path) -> Option<u32> {
    let socket = strata_agent::reaper::socket_path(work_dir)
        .display()
        .to_string();
    reaper_processes()
        .into_iter()
        .find_map(|(pid, args)| args.contains(&socket).then_some(pid))
}

/// Losing the reaper while the agent runs costs only the exit statuses of what it had started:
/// such a task still ends (FAILED, status unknown), and the next launch gets a new reaper.
#[actix_rt::test]
async fn a_lost_reaper_is_replaced_and_its_tasks_still_end() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;
    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "reaper-lost", "checkpoint": true}))
        .await;
    let offer = scheduler.next_offer().await;
    let task = command_task(
        "orphaned",
        &offer.agent_id,
        "cpus:0.5;mem:64",
        "echo $$ > pid; exec sleep 1000",
    );
    scheduler.launch(&offer, vec![task]);
    let orphaned = TaskId::new("orphaned").unwrap();
    scheduler
        .wait_for_state(&orphaned, TaskState::Running)
        .await;
    let sandbox = latest_run(work_dir.path(), &framework_id, "orphaned");
    let first = reaper_pid(work_dir.path()).expect("the reaper runs");
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &first.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let task_pid = written_line(&sandbox.join("pid")).await;
    // The task outlived its parent; once it ends, the agent still reports it.
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &task_pid])
            .status()
            .unwrap()
            .success()
    );
    let seen = scheduler.wait_for_state(&orphaned, TaskState::Failed).await;
    let failed = seen.last().unwrap();
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|message| message.contains("unknown")),
        "{failed:#?}"
    );

    let offer = scheduler.next_offer().await;
    let task = command_task("next", &offer.agent_id, "cpus:0.5;mem:64", "exit 0");
    scheduler.launch(&offer, vec![task]);
    scheduler
        .wait_for_state(&TaskId::new("next").unwrap(), TaskState::Finished)
        .await;
    let second = reaper_pid(work_dir.path()).expect("a new reaper");
    assert_ne!(first, second);
    agent.stop_and_destroy().await;
    master.stop().await;
}
