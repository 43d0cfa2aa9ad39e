//! `kill -9` of a real `strata agent` process and a restart on the same work dir and port:
//! executors that kept running reconnect, an update made while the agent was down is delivered,
//! a task whose executor died meanwhile is reported lost, and a later KILL still works
//! (Mesos's SlaveRecoveryTest scenarios).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strata_integration::cluster::{TestScheduler, command_task, start_master, strata_binary};
use strata_protocol::mesos::{TaskState, TaskStatusReason};
use strata_protocol::{FrameworkId, TaskId};

/// A `strata agent` process.
struct AgentProcess {
    child: Child,
    port: u16,
}

impl AgentProcess {
    fn start(master_port: u16, port: u16, work_dir: &Path, log: &Path) -> AgentProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(strata_binary())
            .args(["--log-level", "debug", "agent", "--ip", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--master", &format!("127.0.0.1:{master_port}")])
            .arg("--work-dir")
            .arg(work_dir)
            .args([
                "--resources",
                "cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
            ])
            .args(["--isolation", "posix"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        AgentProcess { child, port }
    }

    /// Waits until the agent answers on its port.
    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent never listened"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the agent's log when the test fails, since the agent ran in another process.
struct LogOnFailure(PathBuf);

impl Drop for LogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "agent log:\n{}",
                    std::fs::read_to_string(&self.0).unwrap_or_default()
                );
            }
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sandbox(work_dir: &Path, framework_id: &FrameworkId, task: &str) -> PathBuf {
    let agents: Vec<PathBuf> = std::fs::read_dir(work_dir.join("agents"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    agents[0]
        .join("frameworks")
        .join(framework_id.as_str())
        .join("executors")
        .join(task)
        .join("runs")
        .join("latest")
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
    let dir = tempfile::tempdir().unwrap();
    let work_dir = dir.path().join("work");
    let log = dir.path().join("agent.log");
    let _log_guard = LogOnFailure(log.clone());
    let master = start_master().await;
    let port = free_port();
    let mut agent = AgentProcess::start(master.addr.port(), port, &work_dir, &log);
    agent.ready().await;

    let mut scheduler = TestScheduler::start(&master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({
            "user": "root",
            "name": "recovery",
            "checkpoint": true,
            "failover_timeout": 3600.0
        }))
        .await;
    let offer = scheduler.next_offer().await;
    let agent_id = offer.agent_id.clone();
    let tasks = vec![
        // Finishes once the test says so, which it does while the agent is down.
        command_task(
            "finisher",
            &agent_id,
            "cpus:0.5;mem:64",
            "echo $$ > pid; while [ ! -f go ]; do sleep 0.05; done; echo finished",
        ),
        // Keeps running across the restart, and is killed afterwards.
        command_task("survivor", &agent_id, "cpus:0.5;mem:64", "sleep 1000"),
        // Its executor is killed while the agent is down.
        command_task(
            "victim",
            &agent_id,
            "cpus:0.5;mem:64",
            "echo $PPID > executor_pid; sleep 1000",
        ),
    ];
    scheduler.launch(&offer, tasks);
    let mut running = std::collections::BTreeSet::new();
    while running.len() < 3 {
        let status = scheduler.next_update().await;
        scheduler.acknowledge(&status);
        assert!(!status.state.is_terminal(), "{status:#?}");
        if status.state == TaskState::Running {
            running.insert(status.task_id.as_str().to_owned());
        }
    }

    agent.kill9();

    let finisher = sandbox(&work_dir, &framework_id, "finisher");
    let task_pid: i32 = wait_for_file(&finisher.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    std::fs::write(finisher.join("go"), "").unwrap();
    // The finisher's shell ends; its executor holds TASK_FINISHED for the agent.
    wait_group_gone(task_pid).await;
    let victim = sandbox(&work_dir, &framework_id, "victim");
    let executor_pid: i32 = wait_for_file(&victim.join("executor_pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // The executor leads its container's process group; kill all of it.
    assert!(
        Command::new("kill")
            .args(["-9", "--", &format!("-{executor_pid}")])
            .status()
            .unwrap()
            .success()
    );
    wait_group_gone(executor_pid).await;

    let agent = AgentProcess::start(master.addr.port(), port, &work_dir, &log);
    agent.ready().await;

    let mut finished = None;
    let mut lost = None;
    while finished.is_none() || lost.is_none() {
        let status = scheduler.next_update().await;
        scheduler.acknowledge(&status);
        match (status.task_id.as_str(), status.state) {
            ("finisher", TaskState::Finished) => finished = Some(status),
            ("victim", TaskState::Lost) => lost = Some(status),
            // Retries of updates sent before the crash may arrive again (at least once).
            (_, TaskState::Starting | TaskState::Running) => {}
            other => panic!("unexpected update {other:?}: {status:#?}"),
        }
    }
    assert_eq!(finished.unwrap().agent_id.as_ref(), Some(&agent_id));
    assert_eq!(
        lost.unwrap().reason,
        Some(TaskStatusReason::ReasonExecutorReregistrationTimeout)
    );

    let survivor = TaskId::new("survivor").unwrap();
    scheduler.kill(&survivor);
    scheduler.wait_for_state(&survivor, TaskState::Killed).await;
    drop(agent);
    master.stop().await;
}
