//! Starting a master: the transport node, the HTTP server behind it and the actor, wired
//! together. The `strata` binary and the tests call [`start`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use actix::{Addr, AsyncContext, Context};
use actix_web::{App, HttpServer, web};
use strata_protocol::mesos::{Address, MasterInfo};
use strata_protocol::{Epoch, FrameCodec, PeerRole, Pid};
use strata_transport::{Node, NodeConfig};

use crate::actor::{Clock, MasterActor, Shutdown};
use crate::http::{HttpContext, MESOS_COMPAT_VERSION};
use crate::registry::{FileRegistry, InMemoryRegistry, Registry, RegistryError};

use crate::state::{MasterConfig, MasterState};

/// How to run a master.
#[derive(Debug, Clone)]
pub struct MasterOptions {
    /// Where to listen for agents, frameworks and HTTP (one port serves all three).
    pub bind: SocketAddr,
    /// The host other nodes reach this master by; defaults to the bound IP.
    pub advertise_host: Option<String>,
    pub agent_ping_timeout: Duration,
    pub max_agent_ping_timeouts: u32,
    pub offer_timeout: Option<Duration>,
    pub allocation_interval: Duration,
    pub max_completed_frameworks: usize,
    pub max_completed_tasks_per_framework: usize,
    pub frame_len_max: usize,
    /// The master's directory; a file registry lives in `<work_dir>/registry`.
    pub work_dir: PathBuf,
    /// Where the registry is kept.
    pub registry: RegistryBackend,
    /// How long agents recovered from the registry have to reregister before they are marked
    /// unreachable.
    pub agent_reregister_timeout: Duration,
    /// How often subscribed frameworks get a HEARTBEAT event (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// The flags as given, for GET_FLAGS and `/state`.
    pub flags: Vec<(String, String)>,
}

/// Where a master keeps its registry (`--registry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryBackend {
    /// Files under the work dir: the registry survives restarts.
    File,
    /// Memory only: a restarted master starts empty.
    InMemory,
}

impl MasterOptions {
    /// Returns the Mesos defaults for a master listening on `bind`, with an in-memory registry.
    pub fn new(bind: SocketAddr) -> MasterOptions {
        MasterOptions {
            bind,
            advertise_host: None,
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            offer_timeout: None,
            allocation_interval: Duration::from_secs(1),
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            frame_len_max: strata_protocol::codec::FRAME_LEN_MAX_DEFAULT,
            work_dir: PathBuf::from("/var/lib/strata/master"),
            // Tests and embedded masters need no work dir; `strata master` picks the file
            // registry.
            registry: RegistryBackend::InMemory,
            agent_reregister_timeout: Duration::from_secs(600),
            heartbeat_interval: Duration::from_secs(15),
            flags: Vec::new(),
        }
    }
}

/// Why a master could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the http server: {0}")]
    Http(#[source] std::io::Error),
    #[error("cannot start the transport: {0}")]
    Transport(#[from] strata_transport::TransportError),
    #[error("cannot load the registry: {0}")]
    Registry(#[from] RegistryError),
}

/// A running master.
pub struct MasterHandle {
    /// The master actor's pid, which agents and frameworks address.
    pub pid: Pid,
    /// The address the master listens on (actor protocol and HTTP).
    pub addr: SocketAddr,
    pub actor: Addr<MasterActor>,
    http: actix_web::dev::ServerHandle,
}

impl MasterHandle {
    /// Stops the actor, its transport node and the HTTP server.
    pub async fn stop(self) {
        let _ = self.actor.send(Shutdown).await;
        self.http.stop(true).await;
    }
}

/// Starts a master on the current actix system.
pub async fn start(options: MasterOptions) -> Result<MasterHandle, StartError> {
    // Loaded before anything listens, so no request sees a master still recovering.
    let registry: Box<dyn Registry> = match options.registry {
        RegistryBackend::File => Box::new(FileRegistry::open(options.work_dir.join("registry"))?),
        RegistryBackend::InMemory => Box::new(InMemoryRegistry::new()),
    };
    start_with_registry(options, registry).await
}

/// Starts a master on the current actix system with a registry already loaded (`registry`
/// overrides `options.registry`); the master recovers from its state.
pub async fn start_with_registry(
    options: MasterOptions,
    registry: Box<dyn Registry>,
) -> Result<MasterHandle, StartError> {
    let clock = Clock::start();
    let start_now = clock.now();
    let context: Context<MasterActor> = Context::new();
    let actor = context.address();

    // The HTTP server listens on loopback only; the transport relays HTTP connections from the
    // master's port to it.
    let http_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(StartError::Http)?;
    let mut config = NodeConfig::listening(PeerRole::Master, options.bind);
    config.advertised_host = options.advertise_host.clone();
    config.codec = FrameCodec::new().with_frame_len_max(options.frame_len_max);
    config.http_upstream = Some(http_listener.local_addr().map_err(StartError::Http)?);
    let node = Node::start(config)?;
    let pid = node.register("master", actor.clone().recipient())?;
    let addr = node.local_addr().unwrap_or(options.bind);

    let http_context = web::Data::new(HttpContext {
        master: actor.clone(),
        flags: options.flags.clone(),
        start_time: start_now.unix,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(http_context.clone())
            .configure(crate::http::configure)
    })
    .workers(1)
    .disable_signals()
    .listen(http_listener)
    .map_err(StartError::Http)?
    .run();
    let http = server.handle();
    actix_rt::spawn(server);

    let master_info = master_info(&pid, start_now.unix);
    let epoch = Epoch(start_now.unix as u64);
    let mut master_config = MasterConfig::new(master_info);
    master_config.agent_ping_timeout = options.agent_ping_timeout;
    master_config.max_agent_ping_timeouts = options.max_agent_ping_timeouts;
    master_config.offer_timeout = options.offer_timeout;
    master_config.allocation_interval = options.allocation_interval;
    master_config.max_completed_frameworks = options.max_completed_frameworks;
    master_config.max_completed_tasks_per_framework = options.max_completed_tasks_per_framework;
    master_config.agent_reregister_timeout = options.agent_reregister_timeout;
    master_config.heartbeat_interval = options.heartbeat_interval;
    let state = MasterState::recover(master_config, start_now, registry.state());
    context.run(MasterActor::new(
        state,
        registry,
        node,
        pid.clone(),
        epoch,
        clock,
    ));
    tracing::info!(%pid, %addr, "master listening");
    Ok(MasterHandle {
        pid,
        addr,
        actor,
        http,
    })
}

/// Describes this master as frameworks see it in SUBSCRIBED.
fn master_info(pid: &Pid, start_unix: f64) -> MasterInfo {
    let ip = pid.host().parse::<IpAddr>().ok();
    let ip_u32 = match ip {
        // Mesos packs the IPv4 address in network byte order.
        Some(IpAddr::V4(v4)) => u32::from_ne_bytes(v4.octets()),
        _ => 0,
    };
    MasterInfo {
        // Unique across restarts, since framework, agent and offer IDs start with it.
        id: format!(
            "{}-{}-{}",
            start_unix as u64,
            pid.port(),
            std::process::id()
        ),
        ip: ip_u32,
        port: u32::from(pid.port()),
        pid: Some(pid.to_string()),
        hostname: Some(pid.host().to_owned()),
        version: Some(MESOS_COMPAT_VERSION.to_owned()),
        address: Some(Address {
            hostname: Some(pid.host().to_owned()),
            ip: ip.map(|ip| ip.to_string()),
            port: i32::from(pid.port()),
        }),
        domain: None,
        capabilities: Vec::new(),
    }
}
