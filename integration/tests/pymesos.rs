//! Conformance with a Mesos client nobody here wrote: unmodified pymesos 0.3.15 schedulers
//! (`integration/python/`) run command tasks on a real Strata master and agent through the v1
//! scheduler HTTP API.
//!
//! pymesos lives in a virtualenv that `integration/python/setup-venv.sh` makes (`.ci/run` calls
//! it). Without it the tests say so and pass, except under CI (`CI` set), where a missing
//! virtualenv is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use strata_agent::server::Isolation;
use strata_integration::cluster::{agent_options, start_agent, start_master};
use tokio::io::AsyncReadExt;

/// How long one pymesos scheduler run may take.
const RUN_DEADLINE: Duration = Duration::from_secs(90);

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The virtualenv's Python, or `None` (with a message) when the tests must be skipped.
#[allow(clippy::print_stderr)] // A skip must be visible in the test output, not silent.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("STRATA_PYMESOS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| python_dir().join(".venv"));
    let python = venv.join("bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no pymesos virtualenv at {}: run integration/python/setup-venv.sh",
        venv.display()
    );
    eprintln!(
        "skipping the pymesos tests: no virtualenv at {} (run integration/python/setup-venv.sh)",
        venv.display()
    );
    None
}

/// Runs `script` with the master's address and `args`; returns its stdout lines, failing with
/// its output if it does not exit successfully in time.
async fn run_scheduler(
    python: &Path,
    script: &str,
    master: std::net::SocketAddr,
    args: &[&str],
) -> Vec<String> {
    let mut child = tokio::process::Command::new(python)
        .arg(python_dir().join(script))
        .arg(master.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (mut out, mut err) = (String::new(), String::new());
    let run = async {
        let (read_out, read_err) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        read_out.expect("stdout");
        read_err.expect("stderr");
        child.wait().await.expect("python exits")
    };
    let status = tokio::time::timeout(RUN_DEADLINE, run).await;
    let status = match status {
        Ok(status) => status,
        Err(_) => panic!("{script} did not finish in {RUN_DEADLINE:?}"),
    };
    assert!(
        status.success(),
        "{script} failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    out.lines().map(str::to_owned).collect()
}

/// The `UPDATE <task> <state> <reason>` lines for one task, without the word `UPDATE`.
fn updates_of(lines: &[String], task: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("UPDATE "))
        .filter_map(|rest| rest.strip_prefix(&format!("{task} ")))
        .map(str::to_owned)
        .collect()
}

#[actix_rt::test]
async fn pymesos_scheduler_launches_reconciles_and_kills_command_tasks() {
    let Some(python) = venv_python() else {
        return;
    };
    let work_dir = tempfile::tempdir().expect("temp dir");
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;

    let lines = run_scheduler(&python, "command_tasks.py", master.addr, &[]).await;
    let all = lines.join("\n");
    let registered = lines
        .iter()
        .find_map(|line| line.strip_prefix("REGISTERED "))
        .unwrap_or_else(|| panic!("no REGISTERED line:\n{all}"));
    let (framework_id, version) = registered.split_once(' ').expect("id and version");
    assert_eq!(version, strata_master::http::MESOS_COMPAT_VERSION);
    assert_eq!(
        updates_of(&lines, "short"),
        ["TASK_STARTING -", "TASK_RUNNING -", "TASK_FINISHED -"],
        "{all}"
    );
    // The kill's reason is the executor's to give; the rest is checked exactly.
    let long = updates_of(&lines, "long");
    let long_states: Vec<&str> = long
        .iter()
        .map(|update| update.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        long_states,
        [
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_RUNNING",
            "TASK_KILLED"
        ],
        "{all}"
    );
    assert_eq!(long[1], "TASK_RUNNING -", "{all}");
    assert_eq!(long[2], "TASK_RUNNING REASON_RECONCILIATION", "{all}");
    assert!(lines.iter().any(|line| line == "DONE"), "{all}");
    assert!(lines.last().is_some_and(|line| line == "STOPPED"), "{all}");

    // Stopping the driver tore the framework down.
    let deadline = tokio::time::Instant::now() + RUN_DEADLINE;
    loop {
        let completed = master
            .actor
            .send(strata_master::actor::Inspect(Box::new(|state, _| {
                state
                    .completed_frameworks()
                    .iter()
                    .map(|framework| framework.id.to_string())
                    .collect::<Vec<_>>()
            })))
            .await
            .expect("master answers");
        if completed == [framework_id.to_owned()] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "framework not torn down: {completed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    tokio::time::timeout(Duration::from_secs(10), agent.stop_and_destroy())
        .await
        .expect("agent stops");
    master.stop().await;
}

#[actix_rt::test]
async fn pymesos_executor_runs_a_task_and_exchanges_framework_messages() {
    let Some(python) = venv_python() else {
        return;
    };
    let work_dir = tempfile::tempdir().expect("temp dir");
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;

    let lines = run_scheduler(&python, "executor_messages.py", master.addr, &[]).await;
    let all = lines.join("\n");
    assert_eq!(
        updates_of(&lines, "echo"),
        ["TASK_RUNNING -", "TASK_FINISHED echoed ping"],
        "{all}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line == "MESSAGE echo-executor echo: ping"),
        "the executor's answer reaches the scheduler:\n{all}"
    );
    assert!(lines.last().is_some_and(|line| line == "STOPPED"), "{all}");

    tokio::time::timeout(Duration::from_secs(10), agent.stop_and_destroy())
        .await
        .expect("agent stops");
    master.stop().await;
}

#[actix_rt::test]
async fn pymesos_scheduler_restarted_with_its_framework_id_takes_its_task_back() {
    let Some(python) = venv_python() else {
        return;
    };
    let work_dir = tempfile::tempdir().expect("temp dir");
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;

    // The first scheduler process launches a task and goes away without tearing down.
    let first = run_scheduler(&python, "failover.py", master.addr, &["first"]).await;
    let all = first.join("\n");
    let framework_id = first
        .iter()
        .find_map(|line| line.strip_prefix("FRAMEWORK "))
        .unwrap_or_else(|| panic!("no FRAMEWORK line:\n{all}"))
        .to_owned();
    assert_eq!(
        updates_of(&first, "survivor"),
        ["TASK_STARTING -", "TASK_RUNNING -"],
        "{all}"
    );

    // A new process resubscribes with the ID: same framework, its task reconciled, offers
    // suppressed and revived after a filtered decline, and the task killed.
    let again = run_scheduler(
        &python,
        "failover.py",
        master.addr,
        &["again", &framework_id],
    )
    .await;
    let all = again.join("\n");
    assert!(
        again.contains(&format!("REREGISTERED {framework_id}")),
        "{all}"
    );
    let survivor = updates_of(&again, "survivor");
    let states: Vec<&str> = survivor
        .iter()
        .map(|update| update.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(states, ["TASK_RUNNING", "TASK_KILLED"], "{all}");
    assert_eq!(survivor[0], "TASK_RUNNING REASON_RECONCILIATION", "{all}");
    assert!(again.iter().any(|line| line == "DECLINED"), "{all}");
    assert!(again.iter().any(|line| line == "SUPPRESSED *"), "{all}");
    assert!(again.iter().any(|line| line == "REOFFERED"), "{all}");
    assert!(again.last().is_some_and(|line| line == "STOPPED"), "{all}");

    tokio::time::timeout(Duration::from_secs(10), agent.stop_and_destroy())
        .await
        .expect("agent stops");
    master.stop().await;
}
