//! `kill -9` of a real `strata agent` process (tasks in cgroups) and a restart on the same work
//! dir and port: tasks that kept running are taken over, a task that ended while the agent was
//! down reports how it ended (its exit status kept by the work dir's reaper), a task whose
//! executor died meanwhile is reported lost, and a later KILL still works (Mesos's
//! SlaveRecoveryTest scenarios).
//!
//! Command tasks run as the reaper's children with no executor process (see `reaper`); a task
//! with a max completion time keeps the command executor process, which is how these tests get
//! an executor to kill.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_integration::cluster::{
    TestScheduler, command_task, free_port, latest_run, strata_binary,
};
use strata_protocol::mesos::{TaskState, TaskStatusReason};
use strata_protocol::{AgentId, FrameworkId, Pid, TaskId};

/// A `strata` daemon in its own process, its stderr appended to a log file.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn spawn(args: &[String], port: u16, log: &Path) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(strata_binary())
            .args(["--log-level", "debug"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon { child, port }
    }

    /// `strata master` on `port`, registry in memory.
    fn master(port: u16, log: &Path) -> Daemon {
        let args = [
            "master",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--registry",
            "in_memory",
            "--allocation-interval",
            "100ms",
        ];
        Daemon::spawn(&args.map(String::from), port, log)
    }

    /// `strata agent` on `port` with cgroups isolation, plus `extra` flags.
    fn agent(master_port: u16, port: u16, work_dir: &Path, log: &Path, extra: &[&str]) -> Daemon {
        let mut args: Vec<String> = [
            "agent",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--master",
            &format!("127.0.0.1:{master_port}"),
            "--resources",
            "cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
            "--isolation",
            "cgroups",
            "--work-dir",
        ]
        .map(String::from)
        .to_vec();
        args.push(work_dir.display().to_string());
        args.extend(extra.iter().map(|arg| arg.to_string()));
        Daemon::spawn(&args, port, log)
    }

    /// Waits until the daemon answers on its port.
    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "daemon never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master process, a scheduler subscribed to it with a checkpointing framework, and an agent
/// process; logs go to one file printed if the test fails.
struct Cluster {
    dir: tempfile::TempDir,
    log: PathBuf,
    master: Daemon,
    agent: Daemon,
    agent_port: u16,
    scheduler: TestScheduler,
    framework_id: FrameworkId,
}

impl Cluster {
    async fn start(agent_flags: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemons.log");
        let master_port = free_port();
        let master = Daemon::master(master_port, &log);
        master.ready().await;
        let agent_port = free_port();
        let work_dir = dir.path().join("work");
        let agent = Daemon::agent(master_port, agent_port, &work_dir, &log, agent_flags);
        agent.ready().await;
        let master_pid = Pid::new("master", "127.0.0.1", master_port).unwrap();
        let mut scheduler = TestScheduler::start_for(master_pid);
        let framework_id = scheduler
            .subscribe(serde_json::json!({
                "user": "root",
                "name": "recovery",
                "checkpoint": true,
                "failover_timeout": 3600.0
            }))
            .await;
        Cluster {
            dir,
            log,
            master,
            agent,
            agent_port,
            scheduler,
            framework_id,
        }
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Restarts the agent (after `kill9`) on the same port and work dir with `flags`.
    async fn restart_agent(&mut self, flags: &[&str]) {
        self.agent = Daemon::agent(
            self.master.port,
            self.agent_port,
            &self.work_dir(),
            &self.log,
            flags,
        );
        self.agent.ready().await;
    }

    /// Launches `tasks` (id, command) on the next offer and waits until all run; returns the
    /// agent ID. Tasks whose ID starts with `executor-` run under the command executor process.
    async fn launch_running(&mut self, tasks: &[(&str, &str)]) -> AgentId {
        let offer = self.scheduler.next_offer().await;
        let infos = tasks
            .iter()
            .map(|(id, command)| {
                let mut task = command_task(id, &offer.agent_id, "cpus:0.5;mem:64", command);
                if id.starts_with("executor-") {
                    // Long enough never to expire; only the command executor keeps this timer.
                    task.max_completion_time = Some(strata_protocol::mesos::DurationInfo {
                        nanoseconds: 3_600_000_000_000,
                    });
                }
                task
            })
            .collect();
        self.scheduler.launch(&offer, infos);
        let mut running = std::collections::BTreeSet::new();
        while running.len() < tasks.len() {
            let status = self.scheduler.next_update().await;
            self.scheduler.acknowledge(&status);
            assert!(!status.state.is_terminal(), "{status:#?}");
            if status.state == TaskState::Running {
                running.insert(status.task_id.as_str().to_owned());
            }
        }
        offer.agent_id
    }

    fn sandbox(&self, task: &str) -> PathBuf {
        latest_run(&self.work_dir(), &self.framework_id, task)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "daemon log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
    }
}

/// Waits until `path` exists (a task wrote it).
async fn wait_for_file(path: &Path) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no process of group `pgid` is left.
async fn wait_group_gone(pgid: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while nix_kill_zero(-pgid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {pgid} lives on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Acknowledges updates until a terminal one, which it returns; earlier ones can only be resent
/// updates whose acknowledgement the crash cut off.
async fn next_terminal_update(scheduler: &mut TestScheduler) -> strata_protocol::mesos::TaskStatus {
    loop {
        let status = scheduler.next_update().await;
        scheduler.acknowledge(&status);
        if status.state.is_terminal() {
            return status;
        }
        assert!(
            matches!(status.state, TaskState::Starting | TaskState::Running),
            "{status:#?}"
        );
    }
}

fn kill_group(pgid: i32) {
    assert!(
        Command::new("kill")
            .args(["-9", "--", &format!("-{pgid}")])
            .status()
            .unwrap()
            .success()
    );
}

fn process_alive(pid: i32) -> bool {
    nix_kill_zero(pid)
}

fn nix_kill_zero(pid: i32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

#[actix_rt::test]
async fn restarted_agent_recovers_executors_and_delivers_what_happened_while_it_was_down() {
    let mut cluster = Cluster::start(&[]).await;
    let agent_id = cluster
        .launch_running(&[
            // Finishes once the test says so, which it does while the agent is down.
            (
                "finisher",
                "echo $$ > pid; while [ ! -f go ]; do sleep 0.05; done; echo finished",
            ),
            // Keeps running across the restart, in the same process, and is killed afterwards.
            ("survivor", "echo $$ > pid; exec sleep 1000"),
            // Killed while the agent is down: it failed, and the restarted agent says so.
            ("victim", "echo $$ > pid; exec sleep 1000"),
            // Its executor is killed while the agent is down: what became of it is unknown.
            (
                "executor-lost",
                "echo $PPID > executor_pid; echo $$ > pid; exec sleep 1000",
            ),
        ])
        .await;
    let survivor_pid: i32 = wait_for_file(&cluster.sandbox("survivor").join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();

    cluster.agent.kill9();

    let finisher = cluster.sandbox("finisher");
    let task_pid: i32 = wait_for_file(&finisher.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    std::fs::write(finisher.join("go"), "").unwrap();
    // The finisher's shell ends; the reaper keeps its exit status for the agent.
    wait_group_gone(task_pid).await;
    let victim_pid: i32 = wait_for_file(&cluster.sandbox("victim").join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    kill_group(victim_pid);
    wait_group_gone(victim_pid).await;
    let lost = cluster.sandbox("executor-lost");
    let executor_pid: i32 = wait_for_file(&lost.join("executor_pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    let lost_pid: i32 = wait_for_file(&lost.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The executor leads its container's process group, the task its own; kill both.
    kill_group(executor_pid);
    kill_group(lost_pid);
    wait_group_gone(executor_pid).await;
    wait_group_gone(lost_pid).await;

    cluster.restart_agent(&[]).await;

    let mut finished = None;
    let mut failed = None;
    let mut lost = None;
    while finished.is_none() || failed.is_none() || lost.is_none() {
        let status = cluster.scheduler.next_update().await;
        cluster.scheduler.acknowledge(&status);
        match (status.task_id.as_str(), status.state) {
            ("finisher", TaskState::Finished) => {
                assert!(finished.is_none(), "FINISHED twice");
                finished = Some(status);
            }
            ("victim", TaskState::Failed) => {
                assert!(failed.is_none(), "FAILED twice");
                failed = Some(status);
            }
            ("executor-lost", TaskState::Lost) => {
                assert!(lost.is_none(), "LOST twice");
                lost = Some(status);
            }
            // An acknowledgement the crash cut off makes the agent resend that update: at least
            // once, as Mesos delivers.
            (_, TaskState::Starting | TaskState::Running) => {}
            other => panic!("unexpected update {other:?}: {status:#?}"),
        }
    }
    assert_eq!(finished.unwrap().agent_id.as_ref(), Some(&agent_id));
    let failed = failed.unwrap();
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|message| message.contains("signal")),
        "{failed:#?}"
    );
    assert_eq!(
        lost.unwrap().reason,
        Some(TaskStatusReason::ReasonExecutorReregistrationTimeout)
    );
    // The survivor is the same process as before the crash (F5: same pids).
    assert!(process_alive(survivor_pid), "survivor's process is gone");

    let survivor = TaskId::new("survivor").unwrap();
    cluster.scheduler.kill(&survivor);
    cluster
        .scheduler
        .wait_for_state(&survivor, TaskState::Killed)
        .await;
    assert!(!process_alive(survivor_pid), "killed task still runs");
}

#[actix_rt::test]
async fn a_terminal_update_not_yet_acknowledged_is_resent_after_a_restart() {
    let mut cluster = Cluster::start(&[]).await;
    cluster
        .launch_running(&[("quick", "while [ ! -f go ]; do sleep 0.05; done")])
        .await;
    std::fs::write(cluster.sandbox("quick").join("go"), "").unwrap();
    let first = cluster.scheduler.next_update().await;
    assert_eq!(first.state, TaskState::Finished, "{first:#?}");
    // Not acknowledged: the agent must still have the update when it comes back, although the
    // task's container is gone.
    cluster.agent.kill9();
    cluster.restart_agent(&[]).await;
    let again = cluster.scheduler.next_update().await;
    assert_eq!(again.task_id, first.task_id);
    assert_eq!(again.state, TaskState::Finished, "{again:#?}");
    assert_eq!(again.uuid, first.uuid, "the same update, resent");
    cluster.scheduler.acknowledge(&again);
}

#[actix_rt::test]
async fn after_a_reboot_the_agent_keeps_its_id_but_not_its_executors() {
    let mut cluster = Cluster::start(&[]).await;
    let agent_id = cluster
        .launch_running(&[(
            "sleeper",
            "echo $PPID > parent_pid; echo $$ > pid; exec sleep 1000",
        )])
        .await;
    let sandbox = cluster.sandbox("sleeper");
    let pid: i32 = wait_for_file(&sandbox.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The reaper, which leads a process group of its own.
    let parent_pid: i32 = wait_for_file(&sandbox.join("parent_pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    cluster.agent.kill9();
    // A reboot ends every process and changes the boot ID.
    kill_group(parent_pid);
    kill_group(pid);
    wait_group_gone(parent_pid).await;
    wait_group_gone(pid).await;
    std::fs::write(
        cluster.work_dir().join("meta").join("boot_id"),
        "00000000-0000-0000-0000-000000000000\n",
    )
    .unwrap();
    cluster.restart_agent(&[]).await;
    let status = next_terminal_update(&mut cluster.scheduler).await;
    assert_eq!(status.task_id.as_str(), "sleeper");
    assert_eq!(status.state, TaskState::Lost, "{status:#?}");
    assert_eq!(status.agent_id.as_ref(), Some(&agent_id), "agent ID kept");
    assert!(
        status.message.as_deref().unwrap_or("").contains("rebooted"),
        "{status:#?}"
    );
    // The same agent is offered again, whole.
    let offer = cluster.scheduler.next_offer().await;
    assert_eq!(offer.agent_id, agent_id);
}

#[actix_rt::test]
async fn recover_cleanup_kills_what_the_previous_run_left() {
    let mut cluster = Cluster::start(&[]).await;
    cluster
        .launch_running(&[("sleeper", "echo $$ > pid; exec sleep 1000")])
        .await;
    let pid: i32 = wait_for_file(&cluster.sandbox("sleeper").join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    cluster.agent.kill9();
    assert!(process_alive(pid), "the task outlives the agent");
    cluster.restart_agent(&["--recover", "cleanup"]).await;
    let status = next_terminal_update(&mut cluster.scheduler).await;
    assert_eq!(
        (status.task_id.as_str(), status.state),
        ("sleeper", TaskState::Lost),
        "{status:#?}"
    );
    wait_group_gone(pid).await;
}

#[actix_rt::test]
async fn killed_executor_gives_exactly_one_failure_and_the_agent_stays_up() {
    let mut cluster = Cluster::start(&[]).await;
    cluster
        .launch_running(&[("executor-orphaned", "echo $PPID > executor_pid; sleep 1000")])
        .await;
    let executor_pid: i32 =
        wait_for_file(&cluster.sandbox("executor-orphaned").join("executor_pid"))
            .await
            .trim()
            .parse()
            .unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", &executor_pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = cluster.scheduler.next_update().await;
    cluster.scheduler.acknowledge(&status);
    assert_eq!(
        (status.task_id.as_str(), status.state, status.reason),
        (
            "executor-orphaned",
            TaskState::Failed,
            Some(TaskStatusReason::ReasonExecutorTerminated)
        ),
        "{status:#?}"
    );
    // The agent still works: a new task runs to completion, and no second update came for the
    // first one.
    cluster.launch_running(&[("next", "sleep 0.2")]).await;
    let seen = cluster
        .scheduler
        .wait_for_state(&TaskId::new("next").unwrap(), TaskState::Finished)
        .await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
}
