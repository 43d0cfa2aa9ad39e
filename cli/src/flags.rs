//! Command-line flags. Every flag can also be set through a `STRATA_*` environment variable, so
//! that a container image is configured the same way as a shell.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::parse_duration;
use crate::logging::LogFormat;

/// Strata: a cluster manager that shares machines between schedulers through resource offers.
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
pub struct Cli {
    /// How log lines on stderr are written.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "STRATA_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// Which log lines to keep, as a tracing filter (`info`, `strata_master=debug,info`).
    #[arg(long, global = true, default_value = "info", env = "STRATA_LOG_LEVEL")]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a master: tracks agents and frameworks and makes resource offers.
    Master(MasterFlags),
    /// Runs an agent: offers this machine's resources and runs tasks in containers; or, with a
    /// subcommand, drains, deactivates or reactivates one.
    Agent(AgentCommand),
    /// Runs a master and an agent in one process on 127.0.0.1, for trying Strata out.
    Dev(DevFlags),
    /// Runs a command (or a Docker image) as a task on the cluster and streams its output.
    Run(RunFlags),
    /// Lists agents, frameworks, tasks, offers or roles of the cluster.
    Get(GetFlags),
    /// Prints a task's stdout (or stderr), wherever it runs.
    Logs(LogsFlags),
    /// Acts on a framework: `strata framework teardown <id>`.
    Framework(FrameworkCommand),
    /// Prints the version of this build and of its wire protocol.
    Version,
    /// Runs the built-in command executor; agents start it, configured through the environment.
    #[command(hide = true)]
    Executor,
    /// Runs the reaper of an agent's work dir: the parent of its containers; agents start it.
    #[command(hide = true)]
    Reaper(ReaperFlags),
}

#[derive(Debug, Args)]
pub struct ReaperFlags {
    /// The Unix socket to serve the agent on.
    #[arg(long, env = "STRATA_REAPER_SOCKET")]
    pub socket: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct MasterFlags {
    /// Address to listen on for agents, frameworks and HTTP.
    #[arg(long, default_value = "0.0.0.0", env = "STRATA_MASTER_IP")]
    pub ip: IpAddr,

    /// Port to listen on (the Mesos default).
    #[arg(long, default_value_t = 5050, env = "STRATA_MASTER_PORT")]
    pub port: u16,

    /// Address other nodes use to reach this master, when it differs from `--ip`.
    #[arg(long, env = "STRATA_MASTER_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,

    /// Directory for the registry when no etcd is given (`<work-dir>/registry`).
    #[arg(
        long,
        default_value = "/var/lib/strata/master",
        env = "STRATA_MASTER_WORK_DIR"
    )]
    pub work_dir: PathBuf,

    /// Where the master keeps its registry (admitted, unreachable and gone agents, weights,
    /// quota): `file` under the work dir survives restarts, `in_memory` does not.
    #[arg(
        long,
        value_enum,
        default_value = "file",
        env = "STRATA_MASTER_REGISTRY"
    )]
    pub registry: RegistryFlag,

    /// How long agents known from the registry have to reregister after a master restart
    /// before they are marked unreachable.
    #[arg(long, default_value = "10mins", value_parser = parse_duration, env = "STRATA_MASTER_AGENT_REREGISTER_TIMEOUT")]
    pub agent_reregister_timeout: Duration,

    /// etcd endpoints (comma-separated) holding the leader lease and the registry. Without them
    /// the master runs alone with an in-process lease.
    #[arg(long, value_delimiter = ',', env = "STRATA_MASTER_ETCD_ENDPOINTS")]
    pub etcd_endpoints: Vec<String>,

    /// How long to wait for an agent's pong before counting a missed ping.
    #[arg(long, default_value = "15s", value_parser = parse_duration, env = "STRATA_MASTER_AGENT_PING_TIMEOUT")]
    pub agent_ping_timeout: Duration,

    /// Missed pings after which an agent is marked unreachable.
    #[arg(
        long,
        default_value_t = 5,
        env = "STRATA_MASTER_MAX_AGENT_PING_TIMEOUTS"
    )]
    pub max_agent_ping_timeouts: u32,

    /// How long an outstanding offer may go unanswered before it is rescinded (never if unset).
    #[arg(long, value_parser = parse_duration, env = "STRATA_MASTER_OFFER_TIMEOUT")]
    pub offer_timeout: Option<Duration>,

    /// Time between batch allocation runs.
    #[arg(long, default_value = "1s", value_parser = parse_duration, env = "STRATA_MASTER_ALLOCATION_INTERVAL")]
    pub allocation_interval: Duration,

    /// Completed frameworks kept for the state endpoints.
    #[arg(
        long,
        default_value_t = 50,
        env = "STRATA_MASTER_MAX_COMPLETED_FRAMEWORKS"
    )]
    pub max_completed_frameworks: usize,

    /// Completed tasks kept per framework for the state endpoints.
    #[arg(
        long,
        default_value_t = 1000,
        env = "STRATA_MASTER_MAX_COMPLETED_TASKS_PER_FRAMEWORK"
    )]
    pub max_completed_tasks_per_framework: usize,

    /// Largest message body accepted from a peer, in bytes.
    #[arg(long, default_value_t = strata_protocol::codec::FRAME_LEN_MAX_DEFAULT, env = "STRATA_MASTER_FRAME_LEN_MAX")]
    pub frame_len_max: usize,
}

/// The values of `strata master --registry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryFlag {
    File,
    #[value(name = "in_memory")]
    InMemory,
}

#[derive(Debug, Args)]
pub struct AgentFlags {
    /// Masters to register with (`host:port`, comma-separated); the agent follows the leader.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:5050",
        env = "STRATA_AGENT_MASTER"
    )]
    pub master: Vec<String>,

    /// Address to listen on for the master, executors and HTTP.
    #[arg(long, default_value = "0.0.0.0", env = "STRATA_AGENT_IP")]
    pub ip: IpAddr,

    /// Port to listen on (the Mesos default).
    #[arg(long, default_value_t = 5051, env = "STRATA_AGENT_PORT")]
    pub port: u16,

    /// Address the master and executors use to reach this agent, when it differs from `--ip`.
    #[arg(long, env = "STRATA_AGENT_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,

    /// Directory for sandboxes and checkpoints.
    #[arg(
        long,
        default_value = "/var/lib/strata/agent",
        env = "STRATA_AGENT_WORK_DIR"
    )]
    pub work_dir: PathBuf,

    /// Resources to offer instead of those detected, in Mesos syntax
    /// (`cpus:4;mem:8192;ports:[31000-32000]`).
    #[arg(long, env = "STRATA_AGENT_RESOURCES")]
    pub resources: Option<String>,

    /// Attributes of this machine, `name:value` pairs separated by `;` (`rack:r1;zone:a`).
    #[arg(long, env = "STRATA_AGENT_ATTRIBUTES")]
    pub attributes: Option<String>,

    /// Isolation for command tasks: `cgroups` (the default) or `posix` (no limits enforced).
    #[arg(long, default_value = "cgroups", env = "STRATA_AGENT_ISOLATION")]
    pub isolation: String,

    /// Most processes and threads one container may have (its cgroup's `pids.max`), against
    /// fork bombs; unset, containers are not limited (as in Mesos and Docker).
    #[arg(long, env = "STRATA_AGENT_CGROUPS_PIDS_MAX")]
    pub cgroups_pids_max: Option<u64>,

    /// What to do with executors left from a previous run: `reconnect` or `cleanup`.
    #[arg(long, default_value = "reconnect", env = "STRATA_AGENT_RECOVER")]
    pub recover: String,

    /// How long finished sandboxes are kept before garbage collection.
    #[arg(long, default_value = "1weeks", value_parser = parse_duration, env = "STRATA_AGENT_GC_DELAY")]
    pub gc_delay: Duration,

    /// How long an executor has to exit after it is told to shut down.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "STRATA_AGENT_EXECUTOR_SHUTDOWN_GRACE_PERIOD")]
    pub executor_shutdown_grace_period: Duration,

    /// How long a new executor has to subscribe before it is destroyed.
    #[arg(long, default_value = "1mins", value_parser = parse_duration, env = "STRATA_AGENT_EXECUTOR_REGISTRATION_TIMEOUT")]
    pub executor_registration_timeout: Duration,
}

/// `strata agent`: the daemon (no subcommand) or an operator action on an agent.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentCommand {
    #[command(subcommand)]
    pub action: Option<AgentAction>,
    #[command(flatten)]
    pub flags: AgentFlags,
}

#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Kills every task on the agent and stops offering it (DRAIN_AGENT).
    Drain(DrainFlags),
    /// Stops offering the agent's resources; its tasks keep running (DEACTIVATE_AGENT).
    Deactivate(AgentTarget),
    /// Offers a deactivated or drained agent again (REACTIVATE_AGENT).
    Reactivate(AgentTarget),
}

/// Where the master is, for the operator commands.
#[derive(Debug, Args)]
pub struct MasterAddr {
    /// The master to ask (`host:port`).
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
}

#[derive(Debug, Args)]
pub struct AgentTarget {
    /// The agent's ID, as `strata get agents` shows it.
    pub agent_id: String,
    #[command(flatten)]
    pub master: MasterAddr,
}

#[derive(Debug, Args)]
pub struct DrainFlags {
    #[command(flatten)]
    pub target: AgentTarget,
    /// The longest a task gets to stop, overriding its kill policy.
    #[arg(long, value_parser = parse_duration, env = "STRATA_DRAIN_MAX_GRACE_PERIOD")]
    pub max_grace_period: Option<Duration>,
    /// Mark the agent gone once drained: it may not come back.
    #[arg(long, env = "STRATA_DRAIN_MARK_GONE")]
    pub mark_gone: bool,
}

/// What `strata get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GetKind {
    Agents,
    Frameworks,
    Tasks,
    Offers,
    Roles,
}

/// How `strata get` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct GetFlags {
    /// What to list.
    #[arg(value_enum)]
    pub kind: GetKind,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "table",
        env = "STRATA_OUTPUT"
    )]
    pub output: OutputFormat,
    /// Print again every two seconds until interrupted.
    #[arg(short = 'w', long, env = "STRATA_WATCH")]
    pub watch: bool,
    #[command(flatten)]
    pub master: MasterAddr,
}

#[derive(Debug, Args)]
pub struct LogsFlags {
    /// The task's ID.
    pub task_id: String,
    /// Keep printing what the task writes until it ends.
    #[arg(short = 'f', long, env = "STRATA_LOGS_FOLLOW")]
    pub follow: bool,
    /// Print stderr instead of stdout.
    #[arg(long, env = "STRATA_LOGS_STDERR")]
    pub stderr: bool,
    /// The task's framework, when several frameworks have a task with this ID.
    #[arg(long, env = "STRATA_LOGS_FRAMEWORK")]
    pub framework: Option<String>,
    #[command(flatten)]
    pub master: MasterAddr,
}

#[derive(Debug, Args)]
pub struct FrameworkCommand {
    #[command(subcommand)]
    pub action: FrameworkAction,
}

#[derive(Debug, Subcommand)]
pub enum FrameworkAction {
    /// Removes a framework and kills its tasks (TEARDOWN).
    Teardown(FrameworkTarget),
}

#[derive(Debug, Args)]
pub struct FrameworkTarget {
    /// The framework's ID, as `strata get frameworks` shows it.
    pub framework_id: String,
    #[command(flatten)]
    pub master: MasterAddr,
}

#[derive(Debug, Args)]
pub struct DevFlags {
    /// Directory for the master's registry and the agent's sandboxes (a temporary one if unset).
    #[arg(long, env = "STRATA_DEV_WORK_DIR")]
    pub work_dir: Option<PathBuf>,

    /// Port of the master.
    #[arg(long, default_value_t = 5050, env = "STRATA_DEV_MASTER_PORT")]
    pub master_port: u16,

    /// Port of the agent.
    #[arg(long, default_value_t = 5051, env = "STRATA_DEV_AGENT_PORT")]
    pub agent_port: u16,
}

#[derive(Debug, Args)]
pub struct RunFlags {
    /// Masters to submit to (`host:port`, comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:5050",
        env = "STRATA_MASTER"
    )]
    pub master: Vec<String>,

    /// CPUs for each task.
    #[arg(long, default_value_t = 0.1, env = "STRATA_RUN_CPUS")]
    pub cpus: f64,

    /// Memory for each task, in MiB.
    #[arg(long, default_value_t = 32.0, env = "STRATA_RUN_MEM")]
    pub mem: f64,

    /// Disk for each task, in MiB.
    #[arg(long, default_value_t = 0.0, env = "STRATA_RUN_DISK")]
    pub disk: f64,

    /// Role to run the tasks under.
    #[arg(long, default_value = "*", env = "STRATA_RUN_ROLE")]
    pub role: String,

    /// Environment variables for the task, `NAME=value` (repeatable).
    #[arg(
        long = "env",
        value_name = "NAME=VALUE",
        env = "STRATA_RUN_ENV",
        value_delimiter = ','
    )]
    pub envs: Vec<String>,

    /// How many copies of the task to run.
    #[arg(long, default_value_t = 1, env = "STRATA_RUN_INSTANCES")]
    pub instances: u32,

    /// Docker image to run the command in.
    #[arg(long, env = "STRATA_RUN_DOCKER_IMAGE")]
    pub docker_image: Option<String>,

    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Operators configure containers through the environment, so a flag without a `STRATA_*`
    /// variable is a flag they cannot set there.
    #[test]
    fn every_flag_has_a_strata_env_var() {
        fn visit(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_positional() || id == "help" || id == "version" {
                    continue;
                }
                match arg.get_env().and_then(|env| env.to_str()) {
                    Some(env) if env.starts_with("STRATA_") => {}
                    _ => missing.push(format!("{path} --{id}")),
                }
            }
            for sub in cmd.get_subcommands() {
                visit(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        visit(&Cli::command(), "strata", &mut missing);
        assert!(
            missing.is_empty(),
            "flags without a STRATA_ variable: {missing:?}"
        );
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn master_defaults_are_the_mesos_ones() {
        let cli = Cli::try_parse_from(["strata", "master"]).unwrap();
        let Command::Master(flags) = cli.command else {
            panic!("not master")
        };
        assert_eq!(flags.port, 5050);
        assert_eq!(flags.agent_ping_timeout, Duration::from_secs(15));
        assert_eq!(flags.max_agent_ping_timeouts, 5);
        assert_eq!(flags.offer_timeout, None);
        assert_eq!(flags.registry, RegistryFlag::File);
        assert_eq!(flags.agent_reregister_timeout, Duration::from_secs(600));
    }

    #[test]
    fn master_registry_flags_parse() {
        let cli = Cli::try_parse_from([
            "strata",
            "master",
            "--registry",
            "in_memory",
            "--agent-reregister-timeout",
            "30s",
        ])
        .unwrap();
        let Command::Master(flags) = cli.command else {
            panic!("not master")
        };
        assert_eq!(flags.registry, RegistryFlag::InMemory);
        assert_eq!(flags.agent_reregister_timeout, Duration::from_secs(30));
        let err = Cli::try_parse_from(["strata", "master", "--registry", "zookeeper"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("in_memory"), "{err}");
    }

    #[test]
    fn run_takes_the_command_after_flags() {
        let cli = Cli::try_parse_from(["strata", "run", "--cpus", "0.5", "--", "echo", "-n", "hi"])
            .unwrap();
        let Command::Run(flags) = cli.command else {
            panic!("not run")
        };
        assert_eq!(flags.cpus, 0.5);
        assert_eq!(flags.command, ["echo", "-n", "hi"]);
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        let err = Cli::try_parse_from(["strata", "master", "--agent-ping-timeout", "15"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no unit"), "{err}");
    }
}
