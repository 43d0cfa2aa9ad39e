//! `strata executor`, the built-in command executor, run as a real process against a fake agent
//! over real TCP: it reports its task's states in order, kills as the kill policy says, and
//! exits once its terminal update is acknowledged.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use strata_framework_sdk::executor::testing::{FakeAgent, kill_policy, shell_task};
use strata_protocol::TaskState;
use strata_protocol::executor::{Event, Update};
use strata_protocol::mesos::{
    CommandInfo, DurationInfo, Environment, EnvironmentVariable, FrameworkCapabilityType,
    TaskStatusReason,
};
use tokio::process::{Child, Command};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);

/// A `strata executor` process with its sandbox; its stdout and stderr go to files there, as an
/// agent arranges it.
struct Executor {
    child: Child,
    sandbox: tempfile::TempDir,
}

impl Executor {
    fn start(agent: &FakeAgent, checkpoint: bool) -> Executor {
        let sandbox = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(sandbox.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(sandbox.path().join("stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("executor")
            .envs(agent.env(sandbox.path(), checkpoint))
            .env("STRATA_LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Executor { child, sandbox }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Waits for the executor to exit and returns its exit code.
    async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("executor did not exit; stderr:\n{}", self.read("stderr")))
            .unwrap();
        status.code().expect("the executor exited by itself")
    }

    /// Waits until the task created `name` in the sandbox, which it does once it is ready.
    async fn wait_for_file(&self, name: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.path(name).exists() {
            assert!(Instant::now() < deadline, "the task never wrote {name}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Starts a fake agent and an executor, and completes the subscription.
async fn subscribed(
    capabilities: &[FrameworkCapabilityType],
    checkpoint: bool,
) -> (FakeAgent, Executor) {
    let mut agent = FakeAgent::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let executor = Executor::start(&agent, checkpoint);
    agent.expect_subscribe().await;
    agent.subscribed(capabilities);
    (agent, executor)
}

/// Waits for the next update, checks its task and state, and acknowledges it.
async fn expect_state(agent: &mut FakeAgent, task_id: &str, state: TaskState) -> Update {
    let update = agent.expect_update().await;
    assert_eq!(update.status.task_id.as_str(), task_id, "{update:?}");
    assert_eq!(update.status.state, state, "{update:?}");
    assert_eq!(
        update
            .status
            .uuid
            .as_ref()
            .map(|uuid| uuid.as_slice().len()),
        Some(16),
        "{update:?}"
    );
    agent.acknowledge(&update);
    update
}

fn message(update: &Update) -> &str {
    update.status.message.as_deref().unwrap_or_default()
}

#[actix_rt::test]
async fn a_command_runs_in_the_sandbox_and_finishes() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task("echo", "echo hello $GREETED; pwd");
    task.command.as_mut().unwrap().environment = Some(Environment {
        variables: vec![EnvironmentVariable::new("GREETED", "world")],
    });
    agent.launch(task);

    expect_state(&mut agent, "echo", TaskState::Starting).await;
    expect_state(&mut agent, "echo", TaskState::Running).await;
    let finished = expect_state(&mut agent, "echo", TaskState::Finished).await;
    assert_eq!(message(&finished), "Command exited with status 0");

    assert_eq!(executor.exit_code().await, 0);
    let stdout = executor.read("stdout");
    let sandbox = executor.sandbox.path().canonicalize().unwrap();
    assert_eq!(stdout, format!("hello world\n{}\n", sandbox.display()));
}

#[actix_rt::test]
async fn a_failing_command_reports_its_exit_status() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    agent.launch(shell_task("fail", "exit 3"));
    expect_state(&mut agent, "fail", TaskState::Starting).await;
    expect_state(&mut agent, "fail", TaskState::Running).await;
    let failed = expect_state(&mut agent, "fail", TaskState::Failed).await;
    assert_eq!(message(&failed), "Command exited with status 3");
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn kill_terminates_the_task_within_its_grace_period_after_task_killing() {
    let (mut agent, mut executor) =
        subscribed(&[FrameworkCapabilityType::TaskKillingState], true).await;
    let mut task = shell_task("sleeper", "sleep 1000");
    // The KILL event's policy overrides this one.
    task.kill_policy = Some(kill_policy(Duration::from_secs(60)));
    agent.launch(task);
    expect_state(&mut agent, "sleeper", TaskState::Starting).await;
    expect_state(&mut agent, "sleeper", TaskState::Running).await;

    let grace = Duration::from_secs(5);
    let sent = Instant::now();
    agent.kill("sleeper", Some(grace));
    expect_state(&mut agent, "sleeper", TaskState::Killing).await;
    let killed = expect_state(&mut agent, "sleeper", TaskState::Killed).await;
    assert!(sent.elapsed() < grace, "SIGTERM should have been enough");
    assert_eq!(
        message(&killed),
        "Command terminated with signal Terminated"
    );
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task(
        "stubborn",
        "trap '' TERM; touch ready; while true; do sleep 0.1; done",
    );
    // The KILL event's policy overrides this one.
    task.kill_policy = Some(kill_policy(Duration::from_secs(60)));
    agent.launch(task);
    expect_state(&mut agent, "stubborn", TaskState::Starting).await;
    expect_state(&mut agent, "stubborn", TaskState::Running).await;
    executor.wait_for_file("ready").await;

    let grace = Duration::from_millis(500);
    let sent = Instant::now();
    agent.kill("stubborn", Some(grace));
    // Without TASK_KILLING_STATE the framework hears of the kill only when it is done.
    let killed = expect_state(&mut agent, "stubborn", TaskState::Killed).await;
    assert!(
        sent.elapsed() >= grace,
        "SIGKILL came before the grace period"
    );
    assert_eq!(message(&killed), "Command terminated with signal Killed");
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn a_second_task_is_refused_and_the_first_keeps_running() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    agent.launch(shell_task("first", "sleep 1000"));
    expect_state(&mut agent, "first", TaskState::Starting).await;
    expect_state(&mut agent, "first", TaskState::Running).await;
    agent.launch(shell_task("second", "true"));
    let refused = expect_state(&mut agent, "second", TaskState::Failed).await;
    assert_eq!(
        message(&refused),
        "Attempted to run multiple tasks using a \"command\" executor"
    );
    agent.kill("first", None);
    expect_state(&mut agent, "first", TaskState::Killed).await;
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn shutdown_kills_the_task_and_the_executor_exits() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    agent.launch(shell_task("long", "sleep 1000"));
    expect_state(&mut agent, "long", TaskState::Starting).await;
    expect_state(&mut agent, "long", TaskState::Running).await;
    agent.send(Event::Shutdown);
    let killed = expect_state(&mut agent, "long", TaskState::Killed).await;
    assert_eq!(
        message(&killed),
        "Command terminated with signal Terminated"
    );
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn shutdown_before_any_task_exits_at_once() {
    let (agent, mut executor) = subscribed(&[], true).await;
    agent.send(Event::Shutdown);
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn losing_an_agent_that_does_not_checkpoint_kills_the_task() {
    let (mut agent, mut executor) = subscribed(&[], false).await;
    agent.launch(shell_task("orphan", "echo $$ > pid; exec sleep 1000"));
    expect_state(&mut agent, "orphan", TaskState::Starting).await;
    expect_state(&mut agent, "orphan", TaskState::Running).await;
    executor.wait_for_file("pid").await;
    agent.stop();

    assert_eq!(executor.exit_code().await, 1);
    let pid = executor.read("pid");
    let pid = pid.trim();
    assert!(!pid.is_empty(), "the task did not write its pid");
    assert!(!is_running(pid), "task process {pid} outlived its executor");
}

/// Tells whether process `pid` runs: it exists and is not a zombie waiting to be reaped.
fn is_running(pid: &str) -> bool {
    let stat = Path::new("/proc").join(pid).join("stat");
    match std::fs::read_to_string(stat) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[actix_rt::test]
async fn a_command_without_shell_gets_its_arguments_as_argv() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task("argv", "");
    task.command = Some(CommandInfo {
        shell: Some(false),
        value: Some("/bin/echo".to_owned()),
        arguments: vec![
            "echo".to_owned(),
            "two words".to_owned(),
            "$HOME".to_owned(),
        ],
        ..CommandInfo::default()
    });
    agent.launch(task);
    expect_state(&mut agent, "argv", TaskState::Starting).await;
    expect_state(&mut agent, "argv", TaskState::Running).await;
    expect_state(&mut agent, "argv", TaskState::Finished).await;
    assert_eq!(executor.exit_code().await, 0);
    // No shell, so nothing was expanded.
    assert_eq!(executor.read("stdout"), "two words $HOME\n");
}

#[actix_rt::test]
async fn a_task_past_its_max_completion_time_fails() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task("slow", "sleep 1000");
    task.max_completion_time = Some(DurationInfo {
        nanoseconds: 200_000_000,
    });
    agent.launch(task);
    expect_state(&mut agent, "slow", TaskState::Starting).await;
    expect_state(&mut agent, "slow", TaskState::Running).await;
    let failed = expect_state(&mut agent, "slow", TaskState::Failed).await;
    assert_eq!(
        failed.status.reason,
        Some(TaskStatusReason::ReasonMaxCompletionTimeReached)
    );
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn a_command_that_cannot_start_fails_the_task() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task("missing", "");
    task.command = Some(CommandInfo {
        shell: Some(false),
        value: Some("/nonexistent/program".to_owned()),
        ..CommandInfo::default()
    });
    agent.launch(task);
    expect_state(&mut agent, "missing", TaskState::Starting).await;
    let failed = expect_state(&mut agent, "missing", TaskState::Failed).await;
    assert!(
        message(&failed).contains("/nonexistent/program"),
        "{failed:?}"
    );
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn a_terminal_update_survives_an_agent_restart() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    agent.launch(shell_task(
        "waiter",
        "while [ ! -e go ]; do sleep 0.05; done",
    ));
    expect_state(&mut agent, "waiter", TaskState::Starting).await;
    expect_state(&mut agent, "waiter", TaskState::Running).await;
    std::fs::write(executor.path("go"), "").unwrap();
    // The agent dies before it acknowledges the terminal update.
    let finished = agent.expect_update().await;
    assert_eq!(finished.status.state, TaskState::Finished);
    let mut agent = agent.restart().await.unwrap();

    let subscribe = agent.expect_subscribe().await;
    assert_eq!(
        subscribe.unacknowledged_updates,
        std::slice::from_ref(&finished)
    );
    agent.subscribed(&[]);
    agent.acknowledge(&finished);
    assert_eq!(executor.exit_code().await, 0);
}

#[actix_rt::test]
async fn the_task_kill_policy_applies_when_the_kill_sets_none() {
    let (mut agent, mut executor) = subscribed(&[], true).await;
    let mut task = shell_task(
        "stubborn",
        "trap '' TERM; touch ready; while true; do sleep 0.1; done",
    );
    let grace = Duration::from_millis(300);
    task.kill_policy = Some(kill_policy(grace));
    agent.launch(task);
    expect_state(&mut agent, "stubborn", TaskState::Starting).await;
    expect_state(&mut agent, "stubborn", TaskState::Running).await;
    executor.wait_for_file("ready").await;

    let sent = Instant::now();
    agent.kill("stubborn", None);
    let killed = expect_state(&mut agent, "stubborn", TaskState::Killed).await;
    let elapsed = sent.elapsed();
    assert!(elapsed >= grace, "SIGKILL came before the grace period");
    // The default grace period (3 s) would have taken longer.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(message(&killed), "Command terminated with signal Killed");
    assert_eq!(executor.exit_code().await, 0);
}
