//! The built-in command executor: runs the one task it is given (its `CommandInfo`) as a
//! process group in the sandbox and reports STARTING, RUNNING and a terminal state, as Mesos's
//! `mesos-executor` does.
//!
//! Killing follows the kill policy: SIGTERM to the task's process group, SIGKILL once the grace
//! period is over (the KILL event's policy overrides the task's; 3 seconds by default, as in
//! Mesos). After the terminal update the executor waits for the agent's acknowledgement, so the
//! update is safe with the agent before the executor exits.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use strata_protocol::Bytes;
use strata_protocol::ids::TaskId;
use strata_protocol::mesos::{
    CommandInfo, FrameworkCapabilityType, FrameworkInfo, KillPolicy, TaskInfo, TaskState,
    TaskStatus, TaskStatusReason, VariableType,
};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{
    DriverError, DriverHandle, ExecutorConfig, ExecutorDriver, ExecutorEvent, ShutdownReason,
};

/// The kill grace period when neither the KILL event nor the task sets one (Mesos's command
/// executor default).
const KILL_GRACE_PERIOD_DEFAULT: Duration = Duration::from_secs(3);

/// The part of the shutdown grace period kept back from the task, so that the executor can still
/// report TASK_KILLED before the agent destroys the container.
const SHUTDOWN_RESERVE_MAX: Duration = Duration::from_secs(1);

/// How long to wait for the acknowledgement of the terminal update before exiting anyway. Mesos
/// waits as long; the agent acknowledges as soon as it has checkpointed the update, so only an
/// agent that restarts at that moment makes the wait long.
const TERMINAL_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit code when the terminal update was never acknowledged or the agent went away.
const EXIT_FAILURE: i32 = 1;

/// Why the command executor could not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandExecutorError {
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// Runs the command executor until its task is over and the agent has its terminal update, or
/// until it is shut down. Returns the exit code for the process: 0 after an acknowledged
/// terminal update or a shutdown with no task, 1 when the agent went away or never acknowledged
/// the terminal update.
pub async fn run_command_executor(config: ExecutorConfig) -> Result<i32, CommandExecutorError> {
    let driver = ExecutorDriver::start(config)?;
    let mut executor = CommandExecutor::new(driver.handle());
    let code = executor.run(driver).await;
    Ok(code)
}

/// The task once launched.
struct Task {
    task_id: TaskId,
    kill_policy: Option<KillPolicy>,
    /// `None` once the process was reaped (or could not start).
    child: Option<Child>,
    /// The process group, which is the leader's pid.
    pgid: Option<rustix::process::Pid>,
    /// When SIGKILL follows the SIGTERM already sent.
    escalate_at: Option<Instant>,
    /// When the kill began, to shorten the grace period when a later kill asks for less.
    kill_started: Option<Instant>,
    killed: bool,
    /// When `max_completion_time` runs out.
    deadline: Option<Instant>,
    timed_out: bool,
}

/// What the executor does after its task is over.
enum Afterwards {
    /// Wait for the agent to acknowledge the terminal update with this uuid.
    AwaitAck { uuid: Bytes, until: Instant },
    /// Exit with this code as soon as the task is gone.
    Exit(i32),
}

struct CommandExecutor {
    handle: DriverHandle,
    framework_info: Option<FrameworkInfo>,
    task: Option<Task>,
    /// Set by SHUTDOWN or a lost agent: once the task is gone, exit.
    shutdown: Option<ShutdownReason>,
    afterwards: Option<Afterwards>,
}

impl CommandExecutor {
    fn new(handle: DriverHandle) -> Self {
        Self {
            handle,
            framework_info: None,
            task: None,
            shutdown: None,
            afterwards: None,
        }
    }

    async fn run(&mut self, mut driver: ExecutorDriver) -> i32 {
        let code = loop {
            if let Some(code) = self.finished() {
                break code;
            }
            let escalate_at = self.task.as_ref().and_then(|task| task.escalate_at);
            let deadline = self.task.as_ref().and_then(|task| task.deadline);
            let ack_until = match &self.afterwards {
                Some(Afterwards::AwaitAck { until, .. }) => Some(*until),
                _ => None,
            };
            tokio::select! {
                event = driver.next_event() => match event {
                    Some(event) => self.on_event(event),
                    None => {
                        warn!("executor driver stopped, killing the task");
                        self.shutdown = Some(ShutdownReason::AgentDisconnected);
                        self.kill_now();
                    }
                },
                status = wait_child(&mut self.task) => self.on_exit(status),
                () = sleep_until(escalate_at) => self.escalate(),
                () = sleep_until(deadline) => self.on_max_completion_time(),
                () = sleep_until(ack_until) => {
                    warn!("no acknowledgement for the terminal update from the agent, exiting");
                    break EXIT_FAILURE;
                }
            }
        };
        driver.stop().await;
        code
    }

    /// Returns the exit code once there is nothing left to do.
    fn finished(&self) -> Option<i32> {
        let task_gone = self.task.as_ref().is_none_or(|task| task.child.is_none());
        if !task_gone {
            return None;
        }
        match (&self.afterwards, self.shutdown) {
            (Some(Afterwards::Exit(code)), _) => Some(*code),
            // The agent is gone: nobody is left to acknowledge anything.
            (_, Some(reason)) if reason.agent_gone() => Some(EXIT_FAILURE),
            // Shut down before any task was launched.
            (None, Some(_)) if self.task.is_none() => Some(0),
            _ => None,
        }
    }

    fn on_event(&mut self, event: ExecutorEvent) {
        match event {
            ExecutorEvent::Subscribed(subscribed) => {
                self.framework_info = Some(subscribed.framework_info);
            }
            ExecutorEvent::Launch(task) => self.launch(*task),
            ExecutorEvent::LaunchGroup(_) => {
                // Only the default executor runs task groups; the agent should not have sent it.
                warn!("the command executor cannot run task groups, shutting down");
                self.on_shutdown(ShutdownReason::Requested);
            }
            ExecutorEvent::Kill {
                task_id,
                kill_policy,
            } => self.on_kill(&task_id, kill_policy.as_ref()),
            ExecutorEvent::Acknowledged { uuid, .. } => {
                if let Some(Afterwards::AwaitAck { uuid: terminal, .. }) = &self.afterwards
                    && *terminal == uuid
                {
                    info!("terminal update acknowledged, exiting");
                    self.afterwards = Some(Afterwards::Exit(0));
                }
            }
            ExecutorEvent::Message(_) => {}
            ExecutorEvent::Error(message) => warn!(%message, "error from the agent"),
            ExecutorEvent::Shutdown(reason) => self.on_shutdown(reason),
        }
    }

    fn update(&self, task_id: &TaskId, state: TaskState, message: Option<String>) -> Option<Bytes> {
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.message = message;
        self.update_status(status)
    }

    fn update_status(&self, status: TaskStatus) -> Option<Bytes> {
        match self.handle.update(status) {
            Ok(uuid) => Some(uuid),
            Err(err) => {
                warn!(error = %err, "cannot send a status update");
                None
            }
        }
    }

    fn launch(&mut self, info: TaskInfo) {
        if self.task.is_some() {
            warn!(task_id = %info.task_id.as_str(), "refusing a second task");
            self.update(
                &info.task_id,
                TaskState::Failed,
                Some("Attempted to run multiple tasks using a \"command\" executor".to_owned()),
            );
            return;
        }
        let task_id = info.task_id.clone();
        info!(task_id = %task_id.as_str(), "launching task");
        let mut task = Task {
            task_id: task_id.clone(),
            kill_policy: info.kill_policy,
            child: None,
            pgid: None,
            escalate_at: None,
            kill_started: None,
            killed: false,
            deadline: None,
            timed_out: false,
        };
        self.update(&task_id, TaskState::Starting, None);
        let spawned = match &info.command {
            Some(command) => spawn(command, &self.handle.config().sandbox),
            None => Err("the task has no command".to_owned()),
        };
        match spawned {
            Ok(child) => {
                // The task leads its own process group, so the group's ID is its pid.
                task.pgid = child
                    .id()
                    .and_then(|pid| i32::try_from(pid).ok())
                    .and_then(rustix::process::Pid::from_raw);
                info!(task_id = %task_id.as_str(), pid = ?child.id(), "task running");
                task.child = Some(child);
                task.deadline = info
                    .max_completion_time
                    .and_then(|limit| limit.to_duration())
                    .map(|limit| Instant::now() + limit);
                self.update(&task_id, TaskState::Running, None);
                self.task = Some(task);
            }
            Err(reason) => {
                warn!(task_id = %task_id.as_str(), %reason, "cannot launch the task");
                self.task = Some(task);
                let uuid = self.update(
                    &task_id,
                    TaskState::Failed,
                    Some(format!("Failed to launch the command: {reason}")),
                );
                self.await_ack(uuid);
            }
        }
    }

    fn on_kill(&mut self, task_id: &TaskId, policy: Option<&KillPolicy>) {
        let Some(task) = &self.task else {
            warn!(task_id = %task_id.as_str(), "kill for a task that was never launched");
            return;
        };
        if task.task_id != *task_id {
            warn!(task_id = %task_id.as_str(), "kill for a task this executor does not run");
            return;
        }
        let grace = grace_period(policy)
            .or_else(|| grace_period(task.kill_policy.as_ref()))
            .unwrap_or(KILL_GRACE_PERIOD_DEFAULT);
        info!(task_id = %task_id.as_str(), ?grace, "killing task");
        self.kill(grace);
    }

    fn on_shutdown(&mut self, reason: ShutdownReason) {
        info!(?reason, "shutting down");
        self.shutdown = Some(reason);
        // Keeps part of the agent's grace period back to report the kill before the agent
        // destroys the container.
        let total = self.handle.config().shutdown_grace_period;
        let grace = total.saturating_sub(SHUTDOWN_RESERVE_MAX.min(total / 2));
        self.kill(grace);
    }

    /// SIGTERMs the task's process group now and SIGKILLs it after `grace`; a later kill with a
    /// shorter grace period brings the SIGKILL forward.
    fn kill(&mut self, grace: Duration) {
        let killing_state = self
            .framework_info
            .as_ref()
            .is_some_and(|info| info.has_capability(FrameworkCapabilityType::TaskKillingState));
        let Some(task) = &mut self.task else {
            return;
        };
        if task.child.is_none() {
            return;
        }
        let now = Instant::now();
        if let Some(started) = task.kill_started {
            let escalate_at = started + grace;
            if task.escalate_at.is_some_and(|at| escalate_at < at) {
                debug!(?grace, "shortening the kill grace period");
                task.escalate_at = Some(escalate_at.max(now));
            }
            return;
        }
        task.killed = true;
        task.kill_started = Some(now);
        task.escalate_at = Some(now + grace);
        let (task_id, pgid) = (task.task_id.clone(), task.pgid);
        if killing_state {
            self.update(&task_id, TaskState::Killing, None);
        }
        signal_group(pgid, rustix::process::Signal::TERM);
    }

    /// Kills the task at once, for when nobody will wait for it.
    fn kill_now(&mut self) {
        self.kill(Duration::ZERO);
        self.escalate();
    }

    fn escalate(&mut self) {
        let Some(task) = &mut self.task else {
            return;
        };
        task.escalate_at = None;
        if task.child.is_some() {
            info!(task_id = %task.task_id.as_str(), "task did not exit after the grace period, sending SIGKILL");
            signal_group(task.pgid, rustix::process::Signal::KILL);
        }
    }

    fn on_max_completion_time(&mut self) {
        let Some(task) = &mut self.task else {
            return;
        };
        task.deadline = None;
        if task.child.is_some() && !task.killed {
            info!(task_id = %task.task_id.as_str(), "task reached its max completion time, killing it");
            task.timed_out = true;
            self.kill(Duration::ZERO);
        }
    }

    fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(task) = &mut self.task else {
            return;
        };
        task.child = None;
        task.escalate_at = None;
        task.deadline = None;
        let mut reason = None;
        let (state, message) = match status {
            Err(err) => (
                TaskState::Failed,
                format!("Failed to get exit status for Command: {err}"),
            ),
            Ok(status) => {
                let state = if task.timed_out {
                    reason = Some(TaskStatusReason::ReasonMaxCompletionTimeReached);
                    TaskState::Failed
                } else if task.killed {
                    TaskState::Killed
                } else if status.success() {
                    TaskState::Finished
                } else {
                    TaskState::Failed
                };
                (state, format!("Command {}", describe_exit(status)))
            }
        };
        info!(task_id = %task.task_id.as_str(), ?state, %message, "task exited");
        let mut status = TaskStatus::new(task.task_id.clone(), state);
        status.message = Some(message);
        status.reason = reason;
        let uuid = self.update_status(status);
        self.await_ack(uuid);
    }

    fn await_ack(&mut self, uuid: Option<Bytes>) {
        self.afterwards = Some(match uuid {
            Some(uuid) => Afterwards::AwaitAck {
                uuid,
                until: Instant::now() + TERMINAL_ACK_TIMEOUT,
            },
            None => Afterwards::Exit(EXIT_FAILURE),
        });
    }
}

/// Returns the grace period a kill policy sets, if it sets a valid one.
fn grace_period(policy: Option<&KillPolicy>) -> Option<Duration> {
    policy?.grace_period?.to_duration()
}

/// Starts `command` in its own process group, in `sandbox`, with the executor's environment plus
/// the command's variables. Output goes where the executor's goes: the agent points it at the
/// sandbox's `stdout` and `stderr` files.
fn spawn(command: &CommandInfo, sandbox: &std::path::Path) -> Result<Child, String> {
    let value = command
        .value
        .as_deref()
        .ok_or_else(|| "the command has no value".to_owned())?;
    let mut process = if command.shell() {
        let mut process = Command::new("/bin/sh");
        process.arg("-c").arg(value);
        process
    } else {
        // As in Mesos, `arguments` is the whole argv, its first element included.
        let mut process = Command::new(value);
        if let Some((arg0, rest)) = command.arguments.split_first() {
            process.arg0(arg0).args(rest);
        }
        process
    };
    if let Some(environment) = &command.environment {
        for variable in &environment.variables {
            match (variable.variable_type(), &variable.value) {
                (VariableType::Value, Some(value)) => {
                    process.env(&variable.name, value);
                }
                _ => {
                    warn!(name = %variable.name, "skipping an environment variable without a plain value")
                }
            }
        }
    }
    process
        .current_dir(sandbox)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    process.spawn().map_err(|err| format!("{value}: {err}"))
}

fn signal_group(pgid: Option<rustix::process::Pid>, signal: rustix::process::Signal) {
    let Some(pgid) = pgid else {
        return;
    };
    if let Err(err) = rustix::process::kill_process_group(pgid, signal) {
        // ESRCH: the group is already gone, which is what a kill wants.
        debug!(pgid = pgid.as_raw_nonzero().get(), error = %err, "cannot signal the task's process group");
    }
}

/// Waits for the task's process to exit; never returns while there is none.
async fn wait_child(task: &mut Option<Task>) -> std::io::Result<ExitStatus> {
    match task.as_mut().and_then(|task| task.child.as_mut()) {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Describes how a process ended as Mesos does: `exited with status 3`, `terminated with signal
/// Killed`.
fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(signal) = status.signal() {
        format!("terminated with signal {}", signal_name(signal))
    } else {
        format!("ended with wait status {}", status.into_raw())
    }
}

/// Returns the description the C library gives a signal (`strsignal`), for the common ones.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        _ => return format!("Unknown signal {signal}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_as_mesos_does() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(0)),
            "exited with status 0"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(9)),
            "terminated with signal Killed"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(15)),
            "terminated with signal Terminated"
        );
    }

    #[test]
    fn kill_event_policy_overrides_the_task_one() {
        let policy = |secs: i64| KillPolicy {
            grace_period: Some(strata_protocol::mesos::DurationInfo {
                nanoseconds: secs * 1_000_000_000,
            }),
        };
        let event = policy(1);
        let task = policy(7);
        let grace = grace_period(Some(&event)).or_else(|| grace_period(Some(&task)));
        assert_eq!(grace, Some(Duration::from_secs(1)));
        let grace = grace_period(None).or_else(|| grace_period(Some(&task)));
        assert_eq!(grace, Some(Duration::from_secs(7)));
        assert_eq!(grace_period(Some(&KillPolicy { grace_period: None })), None);
    }
}
