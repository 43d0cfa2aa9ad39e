//! Starting an agent: the checkpoint store, the containerizer, the transport node, the HTTP
//! server behind it and the actor, wired together. The `strata` binary and the tests call
//! [`start`].

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, AsyncContext, Context};
use actix_web::{App, HttpServer, web};
use strata_protocol::mesos::Attribute;
use strata_protocol::{ContainerId, FrameCodec, PeerRole, Pid, Resources};
use strata_transport::{Node, NodeConfig};

use crate::actor::{AgentActor, AgentRuntime, Clock, DestroyAll, Stop};
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::containerizer::{Containerizer, ContainerizerError, PosixContainerizer, RecoverSpec};
use crate::http::HttpContext;
use crate::http::files::Files;
use crate::sandbox::SandboxLayout;
use crate::state::{AgentConfig, AgentState, Effect, RecoveryFacts};

/// How tasks are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Plain process groups: nothing is enforced.
    Posix,
    /// A cgroup per container with cpu, memory and pids limits.
    Cgroups,
}

/// How to run an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Where to listen for the master, executors and HTTP (one port serves all three).
    pub bind: SocketAddr,
    /// The host the master and executors reach this agent by; defaults to the bound IP.
    pub advertise_host: Option<String>,
    /// The master to register with (`host:port`).
    pub master: Option<SocketAddr>,
    pub work_dir: PathBuf,
    pub hostname: String,
    pub resources: Resources,
    pub attributes: Vec<Attribute>,
    pub isolation: Isolation,
    /// The `strata` binary, run as `strata executor` for command tasks.
    pub launcher: PathBuf,
    pub executor_registration_timeout: Duration,
    pub executor_shutdown_grace_period: Duration,
    /// The first wait before resending an unanswered registration.
    pub registration_backoff_min: Duration,
    /// The first wait before resending an unacknowledged status update.
    pub status_update_retry_min: Duration,
    /// Whether checkpoint writes are flushed to disk (off only in benchmarks).
    pub fsync: bool,
    pub frame_len_max: usize,
    /// Kill the executors a previous run left instead of reconnecting to them
    /// (`--recover=cleanup`).
    pub recover_cleanup: bool,
    /// How long an executor that survived an agent restart has to resubscribe.
    pub executor_reregistration_timeout: Duration,
    /// When finished sandboxes are removed.
    pub gc: crate::gc::GcConfig,
    /// The most processes and threads a container may have; `None` for no limit (and, on
    /// cgroup v1, no pids cgroup).
    pub pids_max: Option<u64>,
    /// Starts containers under the work dir's reaper (see `reaper`), so that they outlive the
    /// agent with their exit statuses; `launcher` must then be the `strata` binary.
    pub reaper: bool,
    /// The flags as given, for `/state`.
    pub flags: Vec<(String, String)>,
}

impl AgentOptions {
    /// Returns the Mesos defaults for an agent listening on `bind` with `work_dir`.
    pub fn new(bind: SocketAddr, work_dir: PathBuf, resources: Resources) -> AgentOptions {
        AgentOptions {
            bind,
            advertise_host: None,
            master: None,
            work_dir,
            hostname: crate::detect::hostname(),
            resources,
            attributes: Vec::new(),
            isolation: Isolation::Cgroups,
            launcher: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("strata")),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            registration_backoff_min: Duration::from_secs(1),
            status_update_retry_min: Duration::from_secs(10),
            fsync: true,
            frame_len_max: strata_protocol::codec::FRAME_LEN_MAX_DEFAULT,
            recover_cleanup: false,
            executor_reregistration_timeout: Duration::from_secs(5),
            gc: crate::gc::GcConfig::default(),
            pids_max: None,
            reaper: true,
            flags: Vec::new(),
        }
    }
}

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the http server: {0}")]
    Http(#[source] std::io::Error),
    #[error("cannot start the transport: {0}")]
    Transport(#[from] strata_transport::TransportError),
    #[error("cannot open the checkpoint store: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot resolve the work dir {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the checkpoint writer thread: {0}")]
    Writer(#[source] std::io::Error),
    #[error("cannot recover the containers of the previous run: {0}")]
    Recovery(#[source] ContainerizerError),
    #[error(
        "cannot use cgroups ({0}); run as root on a machine with writable cgroups, \
         or pass --isolation=posix to run tasks without resource limits"
    )]
    Cgroups(#[source] ContainerizerError),
    #[error("cannot reach the reaper of the work dir: {0}")]
    Reaper(#[source] crate::reaper::ReaperError),
}

/// A running agent.
pub struct AgentHandle {
    /// The agent actor's pid, which the master and executors address.
    pub pid: Pid,
    /// The address the agent listens on (actor protocol and HTTP).
    pub addr: SocketAddr,
    pub actor: Addr<AgentActor>,
    http: actix_web::dev::ServerHandle,
}

impl AgentHandle {
    /// Stops the actor, its transport node and the HTTP server, leaving containers running (as
    /// a crash would), so that a restarted agent can recover them.
    pub async fn stop(self) {
        let _ = self.actor.send(Stop).await;
        self.http.stop(true).await;
    }

    /// Destroys every container, then stops.
    pub async fn stop_and_destroy(self) {
        let _ = self.actor.send(DestroyAll).await;
        self.stop().await;
    }
}

/// Chooses the containerizer for `isolation`.
pub fn containerizer(
    isolation: Isolation,
    work_dir: &std::path::Path,
    instance: &str,
) -> Result<Arc<dyn Containerizer>, StartError> {
    match isolation {
        Isolation::Posix => Ok(Arc::new(PosixContainerizer::new())),
        Isolation::Cgroups => {
            let _ = work_dir;
            let config = crate::containerizer::CgroupsConfig::default();
            let config = crate::containerizer::CgroupsConfig {
                agent_instance: instance.to_owned(),
                ..config
            };
            let cgroups = crate::containerizer::CgroupsContainerizer::new(config)
                .map_err(StartError::Cgroups)?;
            Ok(Arc::new(cgroups))
        }
    }
}

/// Starts an agent on the current actix system.
pub async fn start(options: AgentOptions) -> Result<AgentHandle, StartError> {
    let clock = Clock::start();
    let store = CheckpointStore::open(&options.work_dir, options.fsync)?;
    // Sandboxes are served by their canonical paths, which are then built, not resolved, for
    // every launch.
    let canonical_work_dir =
        options
            .work_dir
            .canonicalize()
            .map_err(|source| StartError::WorkDir {
                path: options.work_dir.clone(),
                source,
            })?;
    let context: Context<AgentActor> = Context::new();
    let actor = context.address();

    // The HTTP server listens on loopback only; the transport relays HTTP connections from the
    // agent's port to it.
    let http_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(StartError::Http)?;
    let mut config = NodeConfig::listening(PeerRole::Agent, options.bind);
    config.advertised_host = options.advertise_host.clone();
    config.codec = FrameCodec::new().with_frame_len_max(options.frame_len_max);
    config.http_upstream = Some(http_listener.local_addr().map_err(StartError::Http)?);
    let node = Node::start(config)?;
    let pid = node.register("agent", actor.clone().recipient())?;
    let addr = node.local_addr().unwrap_or(options.bind);
    // Agents sharing a machine (and tests) keep their cgroups apart by port; a restarted agent on
    // the same port finds its containers again.
    let instance = format!("agent-{}", addr.port());
    let containerizer = match containerizer(options.isolation, &options.work_dir, &instance) {
        Ok(containerizer) => containerizer,
        Err(error) => {
            node.shutdown();
            return Err(error);
        }
    };
    if options.reaper {
        let connected = {
            let (work_dir, launcher) = (options.work_dir.clone(), options.launcher.clone());
            // Starting the reaper waits for it to listen.
            tokio::task::spawn_blocking(move || {
                crate::reaper::Reaper::connect_or_start(&work_dir, &launcher)
            })
            .await
            .unwrap_or_else(|error| Err(crate::reaper::ReaperError::NotReady(error.to_string())))
        };
        match connected {
            Ok((reaper, reaper_state)) => {
                tracing::info!(
                    running = reaper_state.running.len(),
                    exited = reaper_state.exited.len(),
                    "connected to the reaper"
                );
                containerizer.use_reaper(reaper, reaper_state);
            }
            Err(error) => {
                node.shutdown();
                return Err(StartError::Reaper(error));
            }
        }
    }

    let files = Files::new();
    let http_context = web::Data::new(HttpContext::new(
        actor.clone(),
        options.flags.clone(),
        clock.now().unix,
        &options.work_dir,
    ));
    let server = {
        let files = files.clone();
        HttpServer::new(move || {
            App::new()
                .app_data(http_context.clone())
                .configure(crate::http::configure(files.clone()))
        })
        .workers(1)
        .disable_signals()
        .listen(http_listener)
        .map_err(StartError::Http)?
        .run()
    };
    let http = server.handle();
    actix_rt::spawn(server);

    let mut agent_config =
        AgentConfig::new(pid.clone(), options.hostname.clone(), options.resources);
    agent_config.attributes = options.attributes;
    agent_config.executor_registration_timeout = options.executor_registration_timeout;
    agent_config.executor_shutdown_grace_period = options.executor_shutdown_grace_period;
    agent_config.registration_backoff_min = options.registration_backoff_min;
    agent_config.updates.retry_min = options.status_update_retry_min;
    agent_config.id_seed = random_seed();
    agent_config.executor_reregistration_timeout = options.executor_reregistration_timeout;
    agent_config.survivable_containers = options.reaper;
    let mut state = AgentState::new(agent_config);
    let (effects, recovered) = recover(
        &mut state,
        &store,
        containerizer.as_ref(),
        options.recover_cleanup,
        clock.now(),
    )
    .await?;
    let master = options.master.and_then(|addr| {
        Pid::new("master", addr.ip().to_string(), addr.port())
            .inspect_err(|error| tracing::error!(%error, "invalid master address"))
            .ok()
    });
    let runtime = AgentRuntime {
        node,
        pid: pid.clone(),
        clock,
        containerizer,
        sandbox: SandboxLayout::new(canonical_work_dir),
        writer: crate::checkpoint::writer::CheckpointWriter::start(store.clone())
            .map_err(StartError::Writer)?,
        store,
        launcher: options.launcher,
        pids_max: options.pids_max,
        base_env: vec![(
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        )],
        files: files.clone(),
        gc: match crate::gc::spawn_with_hook(&options.work_dir, options.gc, {
            let files = files.clone();
            Arc::new(move |path: &std::path::Path| files.detach_run(path))
        }) {
            Ok((handle, _task)) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "sandbox garbage collection is off");
                None
            }
        },
    };
    context.run(AgentActor::new(state, runtime, master, effects, recovered));
    tracing::info!(%pid, %addr, "agent listening");
    Ok(AgentHandle {
        pid,
        addr,
        actor,
        http,
    })
}

/// A seed that differs between agent runs, so container IDs never repeat across restarts.
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Rebuilds the state from the checkpoint and takes over the containers the previous run left;
/// returns what recovering produced and the containers still running.
async fn recover(
    state: &mut AgentState,
    store: &CheckpointStore,
    containerizer: &dyn Containerizer,
    cleanup: bool,
    now: crate::state::Now,
) -> Result<(Vec<Effect>, Vec<ContainerId>), StartError> {
    let recovered = store.recover()?;
    let boot_id = crate::detect::boot_id()
        .inspect_err(|error| tracing::warn!(%error, "cannot read the boot id"))
        .ok();
    let known: Vec<RecoverSpec> = recovered
        .iter()
        .flat_map(|agent| &agent.frameworks)
        .flat_map(|framework| &framework.executors)
        .filter_map(|executor| executor.runs.last())
        .filter(|run| !run.record.completed)
        .map(|run| RecoverSpec {
            container_id: run.container_id.clone(),
            pid: run.record.pid,
        })
        .collect();
    // Always, even with nothing checkpointed: it also removes containers a crashed run never
    // recorded.
    let recovery = containerizer
        .recover(known)
        .await
        .map_err(StartError::Recovery)?;
    if !recovery.orphans_destroyed.is_empty() {
        tracing::info!(orphans = ?recovery.orphans_destroyed, "destroyed containers no checkpoint knows");
    }
    let rebooted = match (&recovered, &boot_id) {
        (Some(agent), Some(current)) => agent.boot_id.as_ref().is_some_and(|old| old != current),
        _ => false,
    };
    if let Some(boot_id) = &boot_id {
        store.write_boot_id(boot_id)?;
    }
    let mut alive = recovery.recovered;
    let all_gone = if rebooted {
        Some("Agent host rebooted".to_owned())
    } else if cleanup {
        Some("Executor killed by --recover=cleanup".to_owned())
    } else {
        None
    };
    if all_gone.is_some() {
        // After a reboot nothing should have survived; whatever did is not to be trusted.
        for container_id in &alive {
            let _ = containerizer.destroy(container_id, Duration::ZERO).await;
        }
        alive.clear();
    }
    let mut effects = Vec::new();
    if let Some(recovered) = recovered {
        tracing::info!(
            alive = alive.len(),
            missing = recovery.missing.len(),
            rebooted,
            "recovering from the previous run"
        );
        let facts = RecoveryFacts {
            alive: alive.iter().cloned().collect(),
            all_gone,
            exited: recovery
                .exited
                .into_iter()
                .map(|(container_id, termination)| {
                    (container_id, crate::actor::container_end(Ok(termination)))
                })
                .collect(),
        };
        state.recover(now, recovered, facts, &mut effects);
    }
    Ok((effects, alive))
}
