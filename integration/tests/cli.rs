//! The `strata` binary as a user runs it: `strata dev` in its own process, a framework on it,
//! and the operator verbs (`get`, `logs`, `agent deactivate|reactivate`, `framework teardown`)
//! against it.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use strata_integration::cluster::{TestScheduler, command_task, free_port, strata_binary};
use strata_protocol::mesos::TaskState;
use strata_protocol::{Pid, TaskId};

/// `strata dev` on free ports; stopped with SIGINT (as Ctrl-C) when dropped.
struct Dev {
    child: Child,
    master_port: u16,
    agent_port: u16,
}

impl Dev {
    async fn start(work_dir: &Path) -> Dev {
        let master_port = free_port();
        let agent_port = free_port();
        let child = Command::new(strata_binary())
            .args(["--log-level", "warn", "dev"])
            .args(["--master-port", &master_port.to_string()])
            .args(["--agent-port", &agent_port.to_string()])
            .arg("--work-dir")
            .arg(work_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let dev = Dev {
            child,
            master_port,
            agent_port,
        };
        // Ready when the agent has registered: GET_AGENTS lists it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let output = dev.strata(&["get", "agents", "-o", "json"]);
            if output.status.success()
                && serde_json::from_slice::<Value>(&output.stdout)
                    .is_ok_and(|agents| agents.as_array().is_some_and(|a| !a.is_empty()))
            {
                return dev;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "strata dev never came up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn master(&self) -> String {
        format!("127.0.0.1:{}", self.master_port)
    }

    /// Runs `strata <args> --master <this dev's master>`.
    fn strata(&self, args: &[&str]) -> Output {
        Command::new(strata_binary())
            .args(["--log-level", "error"])
            .args(args)
            .args(["--master", &self.master()])
            .output()
            .unwrap()
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "strata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[actix_rt::test]
async fn operator_verbs_work_against_strata_dev() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    let master = Pid::new("master", "127.0.0.1", dev.master_port).unwrap();
    let mut scheduler = TestScheduler::start_for(master);
    let framework_id = scheduler
        .subscribe(serde_json::json!({"user": "root", "name": "cli-test"}))
        .await;
    let offer = scheduler.next_offer().await;
    let task = command_task(
        "talker",
        &offer.agent_id,
        "cpus:0.1;mem:32",
        "echo out-line; echo err-line >&2; sleep 1000",
    );
    scheduler.launch(&offer, vec![task]);
    let task_id = TaskId::new("talker").unwrap();
    scheduler.wait_for_state(&task_id, TaskState::Running).await;

    // get: a table, JSON and YAML.
    let table = stdout(&dev.strata(&["get", "tasks"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(
        lines[1].starts_with("talker") && lines[1].contains("RUNNING"),
        "{table}"
    );
    let tasks: Value =
        serde_json::from_str(&stdout(&dev.strata(&["get", "tasks", "-o", "json"]))).unwrap();
    assert_eq!(tasks[0]["task_id"]["value"], "talker");
    let yaml = stdout(&dev.strata(&["get", "frameworks", "-o", "yaml"]));
    assert!(yaml.contains("name: cli-test"), "{yaml}");
    let agents = stdout(&dev.strata(&["get", "agents"]));
    assert!(agents.contains(offer.agent_id.as_str()), "{agents}");

    // logs: resolved through the master to the agent's sandbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = stdout(&dev.strata(&["logs", "talker"]));
        if out == "out-line\n" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "stdout was {out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stdout(&dev.strata(&["logs", "--stderr", "talker"])),
        "err-line\n"
    );
    let missing = dev.strata(&["logs", "nope"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no task \"nope\""),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // agent deactivate / reactivate.
    let agent_id = offer.agent_id.as_str();
    stdout(&dev.strata(&["agent", "deactivate", agent_id]));
    let agents: Value =
        serde_json::from_str(&stdout(&dev.strata(&["get", "agents", "-o", "json"]))).unwrap();
    assert_eq!(agents[0]["active"], false, "{agents}");
    stdout(&dev.strata(&["agent", "reactivate", agent_id]));
    let agents: Value =
        serde_json::from_str(&stdout(&dev.strata(&["get", "agents", "-o", "json"]))).unwrap();
    assert_eq!(agents[0]["active"], true, "{agents}");

    // framework teardown kills its task.
    stdout(&dev.strata(&["framework", "teardown", framework_id.as_str()]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = stdout(&dev.strata(&["get", "tasks", "-o", "json"]));
        if tasks.trim() == "[]" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "tasks: {tasks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ctrl-C stops strata dev cleanly, and its agent's cgroups go with it.
    let instance = format!("agent-{}", dev.agent_port);
    assert!(dev.stop().success());
    let left = cgroups_named(Path::new("/sys/fs/cgroup"), &instance, 6);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

/// Directories called `name` under `dir`, at most `depth` levels down.
fn cgroups_named(dir: &Path, name: &str, depth: usize) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            found.push(path);
        } else if depth > 0 {
            found.extend(cgroups_named(&path, name, depth - 1));
        }
    }
    found
}

#[actix_rt::test]
async fn operator_verbs_say_what_to_do_when_no_master_answers() {
    let output = Command::new(strata_binary())
        .args(["--log-level", "error", "get", "tasks", "--master"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is `strata master`"), "{stderr}");
}

/// Runs `strata run <args>` against `dev`, returning (exit code, stdout, stderr).
fn strata_run(dev: &Dev, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(strata_binary())
        .args(["--log-level", "error", "run", "--master", &dev.master()])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_rt::test]
async fn strata_run_prints_the_output_and_exits_with_the_tasks_code() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;

    let (code, out, _) = strata_run(&dev, &["--", "echo", "hello"]);
    assert_eq!((code, out.as_str()), (0, "hello\n"));

    let (code, out, stderr) = strata_run(&dev, &["--", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(out, "out\n");
    assert!(stderr.contains("err\n"), "{stderr}");
    assert!(stderr.contains("exited with status 3"), "{stderr}");

    let (code, out, _) = strata_run(
        &dev,
        &[
            "--instances",
            "2",
            "--env",
            "GREETING=hi",
            "--",
            "echo $GREETING",
        ],
    );
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().all(|line| line.ends_with("] hi")), "{out}");

    // Nothing is left on the cluster: each run tears its framework down.
    let frameworks = stdout(&dev.strata(&["get", "frameworks", "-o", "json"]));
    assert_eq!(frameworks.trim(), "[]");
}

#[actix_rt::test]
async fn interrupted_strata_run_kills_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path()).await;
    let marker = dir.path().join("started");
    let mut child = Command::new(strata_binary())
        .args([
            "--log-level",
            "error",
            "run",
            "--master",
            &dev.master(),
            "--",
        ])
        .arg(format!("echo $$ > {}; exec sleep 1000", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let task_pid = loop {
        if let Ok(text) = std::fs::read_to_string(&marker)
            && text.ends_with('\n')
        {
            break text.trim().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The task's process is gone once strata run has exited.
    let alive = Command::new("kill")
        .args(["-0", &task_pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(!alive, "the task outlived strata run");
}
