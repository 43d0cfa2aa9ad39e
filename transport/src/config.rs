//! Node configuration.

use std::net::SocketAddr;
use std::time::Duration;

use strata_protocol::{FrameCodec, PeerRole};

/// The default bound of each link's outbound queue, in envelopes.
pub const QUEUE_BOUND_DEFAULT: usize = 64 * 1024;

/// How a node listens, names itself and treats its links.
///
/// Every field is public so that daemons can fill it from their flags; the constructors give
/// the defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// What this process is; sent in the handshake.
    pub role: PeerRole,
    /// Where to listen. `None` for a node that only connects out (a framework behind NAT, a
    /// tool): peers then reply over the connections it opened.
    pub bind: Option<SocketAddr>,
    /// The host in this node's pids. Defaults to the bound IP address; set it when the node
    /// listens on `0.0.0.0` or behind a proxy. Required when `bind` is `None`.
    pub advertised_host: Option<String>,
    /// The port in this node's pids. Defaults to the bound port. When the node does not listen it
    /// only has to make `host:port` unique among the peers' peers.
    pub advertised_port: Option<u16>,
    /// Frame size and depth limits, for both directions.
    pub codec: FrameCodec,
    /// Envelopes a link queues while its connection is busy or down; more are dropped.
    pub queue_bound: usize,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long a new connection may take to exchange `Hello`s.
    pub handshake_timeout: Duration,
    /// First reconnection delay; it doubles after every failed attempt.
    pub backoff_initial: Duration,
    /// Longest reconnection delay.
    pub backoff_max: Duration,
    /// Idle time before TCP keepalive probes start on a connection (then every third of it,
    /// three times). Finds peers that vanished without closing (power loss, a dropped NAT entry)
    /// on connections that carry nothing; `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
    /// How long a link with no connection, nothing queued and no watcher lives on. Without it a
    /// master would keep a task for every framework that ever connected.
    pub link_idle_timeout: Duration,
    /// Where to forward accepted connections that do not speak the actor protocol (their first
    /// byte is not 0x00, which every frame header starts with). Daemons set it to their
    /// actix-web server so that, as with Mesos, one port serves both the actor protocol and HTTP.
    pub http_upstream: Option<SocketAddr>,
}

impl NodeConfig {
    /// Returns the defaults for a node that listens on `bind`.
    pub fn listening(role: PeerRole, bind: SocketAddr) -> Self {
        Self {
            bind: Some(bind),
            ..Self::base(role)
        }
    }

    /// Returns the defaults for a node that does not listen and names itself `host:port`.
    pub fn connect_only(role: PeerRole, host: impl Into<String>, port: u16) -> Self {
        Self {
            advertised_host: Some(host.into()),
            advertised_port: Some(port),
            ..Self::base(role)
        }
    }

    fn base(role: PeerRole) -> Self {
        Self {
            role,
            bind: None,
            advertised_host: None,
            advertised_port: None,
            codec: FrameCodec::new(),
            queue_bound: QUEUE_BOUND_DEFAULT,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(30)),
            link_idle_timeout: Duration::from_secs(60),
            http_upstream: None,
        }
    }
}
