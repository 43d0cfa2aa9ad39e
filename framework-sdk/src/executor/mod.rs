//! Executors: programs an agent starts to run tasks.
//!
//! An agent launches one executor process per executor run, with its configuration in the
//! environment (the Mesos variable names, see [`ExecutorConfig::from_env`]). The executor talks
//! to its agent over the actor transport with the Mesos v1 executor calls and events
//! (`strata_protocol::executor`).
//!
//! - [`ExecutorDriver`] (`driver`): the protocol side. It subscribes, keeps status updates until
//!   the agent acknowledges them, resubscribes with them after an agent restart, sends
//!   heartbeats, and hands the executor typed [`ExecutorEvent`]s.
//! - [`run_command_executor`] (`command`): the built-in command executor, which runs the one
//!   task it is given as a process group and reports its states.
//! - `testing` (feature `testing`): a fake agent for tests of executors.

mod command;
mod driver;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::time::Duration;

use strata_protocol::executor::Subscribed;
use strata_protocol::ids::{ContainerId, ExecutorId, FrameworkId, TaskId};
use strata_protocol::mesos::{KillPolicy, TaskGroupInfo, TaskInfo};
use strata_protocol::{Bytes, Pid};

pub use command::{CommandExecutorError, run_command_executor};
pub use driver::{DriverError, DriverHandle, ExecutorDriver};

/// How long an executor may go without hearing from a restarted agent, when the variable is
/// unset (the agent's `--recovery_timeout` default).
pub const RECOVERY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(15 * 60);

/// The longest pause between two attempts to reach a restarting agent, when the variable is
/// unset.
pub const SUBSCRIPTION_BACKOFF_MAX_DEFAULT: Duration = Duration::from_secs(2);

/// How long an executor has to kill its tasks and exit after SHUTDOWN, when the variable is
/// unset (the agent's `--executor_shutdown_grace_period` default).
pub const SHUTDOWN_GRACE_PERIOD_DEFAULT: Duration = Duration::from_secs(5);

/// Time between two HEARTBEAT calls. Mesos executors send one every 30 minutes; a shorter
/// interval lets an idle connection through a NAT or a firewall stay open.
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);

/// Where an executor runs and how it reaches its agent: what the agent puts in its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: FrameworkId,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: ExecutorId,
    /// `MESOS_AGENT_ENDPOINT`: the agent's `host:port`.
    pub agent_endpoint: String,
    /// `STRATA_AGENT_PID`: the agent actor the executor subscribes with.
    pub agent_pid: Pid,
    /// `MESOS_SANDBOX` (or `MESOS_DIRECTORY`): the executor's working directory.
    pub sandbox: PathBuf,
    /// `MESOS_CHECKPOINT`: whether the agent checkpoints this framework, so that the executor
    /// waits for a restarted agent instead of exiting when the agent goes away.
    pub checkpoint: bool,
    /// `MESOS_RECOVERY_TIMEOUT`: how long to wait for a restarted agent before giving up.
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: the longest pause between reconnection attempts.
    pub subscription_backoff_max: Duration,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: how long the executor has after SHUTDOWN before
    /// the agent destroys its container.
    pub shutdown_grace_period: Duration,
    /// `MESOS_CONTAINER_ID`, when the agent sets it.
    pub container_id: Option<ContainerId>,
    /// Time between two HEARTBEAT calls; not read from the environment.
    pub heartbeat_interval: Duration,
}

/// Why the environment does not describe an executor run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (executors are started by an agent)")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl ExecutorConfig {
    /// Reads the configuration from this process's environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `lookup`, which returns a variable's value by name.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let invalid = |name: &'static str, value: &str, reason: String| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            reason,
        };
        let duration = |name: &'static str, default: Duration| match lookup(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|reason| invalid(name, &value, reason)),
        };

        let value = required("MESOS_FRAMEWORK_ID")?;
        let framework_id = FrameworkId::new(value.as_str())
            .map_err(|err| invalid("MESOS_FRAMEWORK_ID", &value, err.to_string()))?;
        let value = required("MESOS_EXECUTOR_ID")?;
        let executor_id = ExecutorId::new(value.as_str())
            .map_err(|err| invalid("MESOS_EXECUTOR_ID", &value, err.to_string()))?;
        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        if !is_host_port(&agent_endpoint) {
            return Err(invalid(
                "MESOS_AGENT_ENDPOINT",
                &agent_endpoint,
                "expected host:port".to_owned(),
            ));
        }
        let value = required("STRATA_AGENT_PID")?;
        let agent_pid = value
            .parse::<Pid>()
            .map_err(|err| invalid("STRATA_AGENT_PID", &value, err.to_string()))?;
        let sandbox = lookup("MESOS_SANDBOX")
            .or_else(|| lookup("MESOS_DIRECTORY"))
            .ok_or(ConfigError::Missing("MESOS_SANDBOX"))?;
        let checkpoint = match lookup("MESOS_CHECKPOINT").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(invalid(
                    "MESOS_CHECKPOINT",
                    other,
                    "expected 1 or 0".to_owned(),
                ));
            }
        };
        let container_id = match lookup("MESOS_CONTAINER_ID") {
            None => None,
            Some(value) => Some(
                ContainerId::new(value.as_str())
                    .map_err(|err| invalid("MESOS_CONTAINER_ID", &value, err.to_string()))?,
            ),
        };
        Ok(Self {
            framework_id,
            executor_id,
            agent_endpoint,
            agent_pid,
            sandbox: PathBuf::from(sandbox),
            checkpoint,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", RECOVERY_TIMEOUT_DEFAULT)?,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                SUBSCRIPTION_BACKOFF_MAX_DEFAULT,
            )?,
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                SHUTDOWN_GRACE_PERIOD_DEFAULT,
            )?,
            container_id,
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
        })
    }
}

fn is_host_port(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Parses a duration as Mesos writes it: a number (possibly with a fraction) and a unit among
/// `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days` and `weeks` (also `s`, `m`, `h`, `d`, `w`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} has no unit (try '5secs' or '100ms')"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" | "secs" => 1.0,
        "m" | "mins" => 60.0,
        "h" | "hrs" => 3600.0,
        "d" | "days" => 86_400.0,
        "w" | "weeks" => 604_800.0,
        _ => return Err(format!("duration {text:?} has an unknown unit {unit:?}")),
    };
    Duration::try_from_secs_f64(number * unit_secs)
        .map_err(|err| format!("duration {text:?} is out of range: {err}"))
}

/// Something that happened to an executor: an event from its agent, or the driver's verdict
/// that the executor must stop.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorEvent {
    /// The agent accepted the subscription; comes again after every resubscription.
    Subscribed(Box<Subscribed>),
    /// Run this task.
    Launch(Box<TaskInfo>),
    /// Run these tasks together.
    LaunchGroup(Box<TaskGroupInfo>),
    /// Kill this task; `kill_policy`, when set, overrides the task's own.
    Kill {
        task_id: TaskId,
        kill_policy: Option<KillPolicy>,
    },
    /// The update with this uuid is safe with the agent; the driver forgot it.
    Acknowledged { task_id: TaskId, uuid: Bytes },
    /// Opaque data from the framework.
    Message(Bytes),
    /// The agent reports an error.
    Error(String),
    /// Kill every task and exit.
    Shutdown(ShutdownReason),
}

/// Why an executor must shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownReason {
    /// The agent sent SHUTDOWN; it destroys the container after the shutdown grace period.
    Requested,
    /// The agent went away and the framework is not checkpointed, so no agent will come back
    /// for this executor.
    AgentDisconnected,
    /// The agent stayed away longer than the recovery timeout.
    RecoveryTimeout,
}

impl ShutdownReason {
    /// Tells whether the agent is gone, so that nothing sent to it will arrive.
    pub fn agent_gone(self) -> bool {
        !matches!(self, ShutdownReason::Requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("MESOS_FRAMEWORK_ID", "fw-1"),
            ("MESOS_EXECUTOR_ID", "ex-1"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("STRATA_AGENT_PID", "agent@127.0.0.1:5051"),
            ("MESOS_SANDBOX", "/tmp/sandbox"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "15mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "500ms"),
            ("MESOS_CONTAINER_ID", "c-1"),
        ])
    }

    fn read(env: &HashMap<&'static str, &'static str>) -> Result<ExecutorConfig, ConfigError> {
        ExecutorConfig::from_lookup(|name| env.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn reads_what_the_agent_sets() {
        let config = read(&full_env()).unwrap();
        assert_eq!(config.framework_id.as_str(), "fw-1");
        assert_eq!(config.executor_id.as_str(), "ex-1");
        assert_eq!(config.agent_pid.to_string(), "agent@127.0.0.1:5051");
        assert_eq!(config.sandbox, PathBuf::from("/tmp/sandbox"));
        assert!(config.checkpoint);
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.subscription_backoff_max, Duration::from_secs(2));
        assert_eq!(config.shutdown_grace_period, Duration::from_millis(500));
        assert_eq!(config.container_id.unwrap().as_str(), "c-1");
    }

    #[test]
    fn optional_variables_take_the_mesos_defaults() {
        let mut env = full_env();
        for name in [
            "MESOS_CHECKPOINT",
            "MESOS_RECOVERY_TIMEOUT",
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            "MESOS_CONTAINER_ID",
        ] {
            env.remove(name);
        }
        env.remove("MESOS_SANDBOX");
        env.insert("MESOS_DIRECTORY", "/tmp/dir");
        let config = read(&env).unwrap();
        assert!(!config.checkpoint);
        assert_eq!(config.recovery_timeout, RECOVERY_TIMEOUT_DEFAULT);
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(5));
        assert_eq!(config.sandbox, PathBuf::from("/tmp/dir"));
        assert_eq!(config.container_id, None);
    }

    #[test]
    fn names_the_missing_variable() {
        for name in [
            "MESOS_FRAMEWORK_ID",
            "MESOS_EXECUTOR_ID",
            "MESOS_AGENT_ENDPOINT",
            "STRATA_AGENT_PID",
            "MESOS_SANDBOX",
        ] {
            let mut env = full_env();
            env.remove(name);
            let err = read(&env).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name));
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn names_the_invalid_variable_and_why() {
        let cases = [
            ("MESOS_CHECKPOINT", "yes", "expected 1 or 0"),
            ("MESOS_RECOVERY_TIMEOUT", "15", "has no unit"),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                "5 parsecs",
                "unknown unit",
            ),
            ("STRATA_AGENT_PID", "agent", "name@host:port"),
            ("MESOS_AGENT_ENDPOINT", "localhost", "host:port"),
            ("MESOS_EXECUTOR_ID", "a/b", ""),
        ];
        for (name, value, reason) in cases {
            let mut env = full_env();
            env.insert(name, value);
            let err = read(&env).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
            assert!(err.contains(value), "{err}");
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn parses_mesos_durations() {
        assert_eq!(parse_duration("5secs"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2mins"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5hrs"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("3days"), Ok(Duration::from_secs(259_200)));
        for bad in ["", "5", "secs", "-1secs", "1e400secs", "5 secs"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
