//! The node: listener, actor registry, link table and the public handle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use actix::Recipient;
use strata_protocol::{Envelope, Pid};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::NodeConfig;
use crate::connection;
use crate::error::{SendError, TransportError};
use crate::link::{Connection, Control, LinkHandle, LinkTask, Queue};
use crate::messages::{Delivery, LinkEvent};
use crate::stats::{CloseReason, Direction, DropReason, Stats, TransportStats};

/// How often `send_wait` looks up its link again while it waits for room.
const SEND_WAIT_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Pending connections the kernel holds for the listener.
const LISTEN_BACKLOG: u32 = 1024;

/// State shared by the handle, the listener, the links and the readers.
pub(crate) struct Shared {
    pub config: NodeConfig,
    /// `host:port`, the node part of every local pid and the name sent in `Hello`.
    pub local_node: String,
    local_host: String,
    local_port: u16,
    local_addr: Option<SocketAddr>,
    actors: RwLock<HashMap<String, Recipient<Delivery>>>,
    links: Mutex<LinkTable>,
    pub stats: Stats,
    pub shutdown: CancellationToken,
    conn_ids: AtomicU64,
    /// The arbiter that started the node. Every task of the node runs there, whichever thread
    /// triggered it, so that a node used from several arbiters still has one home whose life
    /// bounds its tasks.
    arbiter: actix_rt::ArbiterHandle,
}

impl Shared {
    /// Runs `task` on the node's arbiter.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if !self.arbiter.spawn(task) {
            // Only once the arbiter stopped, when the node's tasks are gone anyway.
            debug!(local = %self.local_node, "arbiter stopped, task not started");
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    fn is_local(&self, pid: &Pid) -> bool {
        pid.port() == self.local_port && pid.host() == self.local_host
    }

    fn links(&self) -> MutexGuard<'_, LinkTable> {
        // Every critical section is a lookup or an insert, which a panic cannot tear.
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `envelope` to the local actor named by `envelope.to`, whatever its node part says:
    /// a node may be reached under several names (an IP, a hostname) and the name is what
    /// identifies the actor.
    pub(crate) fn deliver_local(&self, envelope: Envelope) -> Result<(), SendError> {
        let actors = self.actors.read().unwrap_or_else(PoisonError::into_inner);
        // An actor that stopped without unregistering counts as gone: its mailbox would swallow
        // the envelope without a trace.
        if let Some(recipient) = actors.get(envelope.to.name()).filter(|r| r.connected()) {
            recipient.do_send(Delivery(envelope));
            return Ok(());
        }
        drop(actors);
        debug!(
            local = %self.local_node,
            to = %envelope.to,
            from = %envelope.from,
            "dropping envelope for unknown actor"
        );
        self.stats.dropped(DropReason::NoSuchActor, 1);
        Err(SendError::NoSuchActor)
    }

    /// Returns the link to `host:port` from the locked table, starting its task if it has none
    /// yet. Callers act on the link while they hold the lock, so that a link retiring itself
    /// (see [`Shared::retire_link`]) cannot miss what they push or send.
    fn link_in<'a>(
        self: &Arc<Self>,
        links: &'a mut LinkTable,
        host: &str,
        port: u16,
    ) -> &'a LinkHandle {
        // Looks up before inserting: `entry` would take an owned host, an allocation per send.
        if links.get(host, port).is_none() {
            let (task, handle) = LinkTask::new(self.clone(), format!("{host}:{port}"));
            self.spawn(task.run());
            links
                .by_host
                .entry(host.to_owned())
                .or_default()
                .insert(port, handle);
        }
        links.get(host, port).expect("the link was just inserted")
    }

    /// Sends `control` to the link to `host:port`, starting it if needed, and returns a sender
    /// for later controls (a reader's `Closed`).
    pub(crate) fn control_link(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        control: Control,
    ) -> mpsc::UnboundedSender<Control> {
        let mut links = self.links();
        let link = self.link_in(&mut links, host, port);
        // The task only exits by retiring, under this lock with an empty control channel, or at
        // shutdown, when nothing needs telling any more.
        let _ = link.control.send(control);
        link.control.clone()
    }

    /// Removes the link to `node` from the table if `still_idle` says it has nothing to do,
    /// checked under the table lock. Returns whether the link task should exit.
    pub(crate) fn retire_link(
        &self,
        node: &str,
        queue: &Arc<Queue>,
        still_idle: impl FnOnce() -> bool,
    ) -> bool {
        let Some((host, port)) = split_node(node) else {
            return false;
        };
        let mut links = self.links();
        let Some(ports) = links.by_host.get_mut(host) else {
            // Cleared by shutdown.
            return true;
        };
        if !ports
            .get(&port)
            .is_some_and(|link| Arc::ptr_eq(&link.queue, queue))
        {
            return true;
        }
        if !still_idle() {
            return false;
        }
        ports.remove(&port);
        if ports.is_empty() {
            links.by_host.remove(host);
        }
        true
    }

    /// Returns how many links (connected or not) the node has.
    pub(crate) fn n_links(&self) -> usize {
        self.links().by_host.values().map(HashMap::len).sum()
    }
}

/// The links by peer node, keyed by host then port so that a send can find its link from the
/// pid's parts without formatting `host:port`.
#[derive(Default)]
struct LinkTable {
    by_host: HashMap<String, HashMap<u16, LinkHandle>>,
}

impl LinkTable {
    fn get(&self, host: &str, port: u16) -> Option<&LinkHandle> {
        self.by_host.get(host)?.get(&port)
    }
}

/// Splits `host:port` (the host may be a bracketed IPv6 address).
pub(crate) fn split_node(node: &str) -> Option<(&str, u16)> {
    let (host, port) = node.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// A running transport node: a cheap handle (one `Arc`) shared by the actors of a process.
///
/// Start it with [`Node::start`] inside an actix `System`: its listener, link and reader tasks
/// run on the current arbiter. They run until [`Node::shutdown`]; dropping the handles does not
/// stop them, because links must keep delivering what was sent just before the last handle went
/// away.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("local_node", &self.shared.local_node)
            .finish()
    }
}

impl Node {
    /// Binds the listener (if the config has one) and starts accepting connections. Must run
    /// inside an actix `System`: the node's tasks run on the current arbiter, and it panics
    /// outside one.
    pub fn start(config: NodeConfig) -> Result<Self, TransportError> {
        let (listener, local_addr) = match config.bind {
            Some(addr) => {
                let listener =
                    bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
                let local_addr = listener
                    .local_addr()
                    .map_err(|source| TransportError::Bind { addr, source })?;
                (Some(listener), Some(local_addr))
            }
            None => (None, None),
        };
        let local_host = config
            .advertised_host
            .clone()
            .or_else(|| local_addr.map(|addr| host_of(&addr)))
            .unwrap_or_else(|| "localhost".to_owned());
        let local_port = config
            .advertised_port
            .or(local_addr.map(|addr| addr.port()))
            .unwrap_or(0);
        // Validates the host once, so that `pid()` cannot fail later.
        Pid::new("node", local_host.clone(), local_port)?;
        let local_node = format!("{local_host}:{local_port}");
        let shared = Arc::new(Shared {
            config,
            local_node,
            local_host,
            local_port,
            local_addr,
            actors: RwLock::new(HashMap::new()),
            links: Mutex::new(LinkTable::default()),
            stats: Stats::default(),
            shutdown: CancellationToken::new(),
            conn_ids: AtomicU64::new(1),
            arbiter: actix_rt::Arbiter::current(),
        });
        if let Some(listener) = listener {
            info!(local = %shared.local_node, addr = ?local_addr, "transport listening");
            shared.spawn(accept_loop(shared.clone(), listener));
        }
        Ok(Self { shared })
    }

    /// Returns `host:port`, the node part of this node's pids.
    pub fn local_node(&self) -> &str {
        &self.shared.local_node
    }

    /// Returns the address the listener is bound to, if the node listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Returns the pid an actor named `name` has on this node.
    pub fn pid(&self, name: &str) -> Result<Pid, TransportError> {
        Ok(Pid::new(
            name,
            self.shared.local_host.clone(),
            self.shared.local_port,
        )?)
    }

    /// Routes envelopes addressed to `name` on this node to `recipient`, and returns its pid.
    pub fn register(
        &self,
        name: &str,
        recipient: Recipient<Delivery>,
    ) -> Result<Pid, TransportError> {
        let pid = self.pid(name)?;
        let mut actors = self
            .shared
            .actors
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if actors.contains_key(name) {
            return Err(TransportError::NameTaken(name.to_owned()));
        }
        actors.insert(name.to_owned(), recipient);
        Ok(pid)
    }

    /// Stops routing to `name`; later envelopes for it are dropped as `no_such_actor`.
    pub fn unregister(&self, name: &str) {
        self.shared
            .actors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Sends `envelope` to `envelope.to`: straight to the local actor if the pid is on this node,
    /// else onto the queue of the link to its node, connecting if needed. Never waits.
    ///
    /// Delivery is best effort, as in libprocess: an envelope can be lost when a connection
    /// breaks. Envelopes on one connection arrive in the order they were sent.
    pub fn send(&self, envelope: Envelope) -> Result<(), SendError> {
        if self.shared.shutdown.is_cancelled() {
            self.shared.stats.dropped(DropReason::Shutdown, 1);
            return Err(SendError::Shutdown);
        }
        if self.shared.is_local(&envelope.to) {
            self.shared.deliver_local(envelope)?;
            self.shared.stats.delivered_local();
            return Ok(());
        }
        self.push_remote(envelope).map_err(|_| {
            self.shared.stats.dropped(DropReason::QueueFull, 1);
            SendError::QueueFull
        })
    }

    /// Like [`Node::send`], but waits for room instead of dropping when the link's queue is full.
    /// For bulk senders that can await (a benchmark, a log shipper); actors use `send`.
    pub async fn send_wait(&self, envelope: Envelope) -> Result<(), SendError> {
        if self.shared.is_local(&envelope.to) || self.shared.shutdown.is_cancelled() {
            return self.send(envelope);
        }
        // Registering for a wake-up costs a lock; most sends find room at once.
        let mut envelope = match self.push_remote(envelope) {
            Ok(()) => return Ok(()),
            Err(back) => back,
        };
        loop {
            let queue = {
                let mut links = self.shared.links();
                let (host, port) = (envelope.to.host(), envelope.to.port());
                self.shared.link_in(&mut links, host, port).queue.clone()
            };
            let room = queue.room.notified();
            tokio::pin!(room);
            // Registers interest before trying, so that a drain between the try and the wait
            // wakes us.
            room.as_mut().enable();
            envelope = match self.push_remote(envelope) {
                Ok(()) => return Ok(()),
                Err(back) => back,
            };
            tokio::select! {
                () = self.shared.shutdown.cancelled() => {
                    self.shared.stats.dropped(DropReason::Shutdown, 1);
                    return Err(SendError::Shutdown);
                }
                () = room => {}
                // Looks again now and then in case the link retired and another took its
                // place between the lookup and the push, leaving `room` on a dead queue.
                () = tokio::time::sleep(SEND_WAIT_RECHECK) => {}
            }
        }
    }

    /// Pushes `envelope` onto the queue of the link to its node under the table lock, so that
    /// a link retiring at the same moment cannot lose it.
    // Handing the envelope back is the point; boxing it would cost an allocation per send.
    #[allow(clippy::result_large_err)]
    fn push_remote(&self, envelope: Envelope) -> Result<(), Envelope> {
        let mut links = self.shared.links();
        let link = self
            .shared
            .link_in(&mut links, envelope.to.host(), envelope.to.port());
        link.queue.push(envelope)
    }

    /// Asks for [`LinkEvent`]s about the connection to `peer`'s node: `Disconnected` when it
    /// breaks or cannot be opened, `Connected` when it is (re)established. While anyone watches,
    /// the link keeps reconnecting with backoff. If the state is already known the watcher is
    /// told at once. Linking to a local pid does nothing: a local actor cannot be disconnected.
    pub fn link(&self, watcher: Recipient<LinkEvent>, peer: &Pid) {
        self.link_control(
            peer,
            Control::Watch {
                watcher,
                peer: peer.clone(),
            },
        );
    }

    /// Undoes every [`Node::link`] by this watcher to this pid.
    pub fn unlink(&self, watcher: Recipient<LinkEvent>, peer: &Pid) {
        self.link_control(
            peer,
            Control::Unwatch {
                watcher,
                peer: peer.clone(),
            },
        );
    }

    fn link_control(&self, peer: &Pid, control: Control) {
        if self.shared.is_local(peer) || self.shared.shutdown.is_cancelled() {
            return;
        }
        self.shared.control_link(peer.host(), peer.port(), control);
    }

    /// Returns this node's counters.
    pub fn stats(&self) -> TransportStats {
        self.shared.stats.snapshot()
    }

    /// Returns how many links (one per peer node, connected or not) this node has. Idle links
    /// retire after [`NodeConfig::link_idle_timeout`].
    pub fn n_links(&self) -> usize {
        self.shared.n_links()
    }

    /// Returns how many envelopes wait in the queue of the link to `peer`'s node.
    pub fn queued(&self, peer: &Pid) -> usize {
        self.shared
            .links()
            .get(peer.host(), peer.port())
            .map_or(0, |link| link.queue.len())
    }

    /// Closes the listener and every connection, and stops every task of this node. Queued
    /// envelopes are dropped and counted. Returns at once; the sockets close as the tasks see
    /// the signal.
    pub fn shutdown(&self) {
        info!(local = %self.shared.local_node, "transport shutting down");
        self.shared.shutdown.cancel();
        self.shared.links().by_host.clear();
    }

    /// Tells whether [`Node::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }
}

fn host_of(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    }
}

/// Binds with `SO_REUSEADDR`, so that a restarted node gets its port back while connections of
/// its previous life linger in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                shared.spawn(accept_one(shared.clone(), stream, addr));
            }
            Err(err) => {
                // Usually out of file descriptors: pause rather than spin on the error.
                warn!(local = %shared.local_node, error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Returns the first byte the peer sent, without consuming it; `None` if it closed.
async fn first_byte(stream: &TcpStream) -> Option<u8> {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(1) => Some(byte[0]),
        _ => None,
    }
}

/// Relays a connection that is not the actor protocol (HTTP) to the daemon's HTTP server, both
/// ways, until either side closes.
async fn proxy(shared: &Shared, mut stream: TcpStream, addr: SocketAddr, upstream: SocketAddr) {
    let mut upstream_stream = match TcpStream::connect(upstream).await {
        Ok(upstream_stream) => upstream_stream,
        Err(err) => {
            warn!(local = %shared.local_node, %addr, %upstream, error = %err, "cannot reach the http server");
            return;
        }
    };
    let _ = upstream_stream.set_nodelay(true);
    let copied = tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => return,
        copied = tokio::io::copy_bidirectional(&mut stream, &mut upstream_stream) => copied,
    };
    if let Err(err) = copied {
        debug!(local = %shared.local_node, %addr, error = %err, "http relay ended");
    }
}

/// Handshakes one accepted connection, hands its write half to the link of the peer's
/// advertised node and starts its reader.
async fn accept_one(shared: Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
    if let Err(err) = connection::tune(shared.config.keepalive, &stream) {
        debug!(local = %shared.local_node, %addr, error = %err, "cannot tune socket");
    }
    let timeout = shared.config.handshake_timeout;
    if let Some(upstream) = shared.config.http_upstream {
        match tokio::time::timeout(timeout, first_byte(&stream)).await {
            Ok(Some(byte)) if byte != 0 => {
                proxy(&shared, stream, addr, upstream).await;
                return;
            }
            // Either a frame header, or nothing yet: the handshake decides.
            _ => {}
        }
    }
    let handshake = tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => return,
        result = tokio::time::timeout(timeout, connection::accept(&shared, stream)) => result,
    };
    let handshaken = match handshake {
        Ok(Ok(handshaken)) => handshaken,
        Ok(Err(err)) => {
            warn!(
                local = %shared.local_node,
                %addr,
                reason = err.reason.as_str(),
                error = %err.detail,
                "closing connection that failed the handshake"
            );
            shared.stats.closed(err.reason);
            return;
        }
        Err(_) => {
            let reason = CloseReason::HandshakeTimeout;
            warn!(local = %shared.local_node, %addr, reason = reason.as_str(), ?timeout, "closing connection that sent no hello in time");
            shared.stats.closed(reason);
            return;
        }
    };
    let peer = handshaken.peer.node;
    let conn_id = shared.next_conn_id();
    shared.stats.opened(Direction::Inbound);
    debug!(local = %shared.local_node, %peer, %addr, role = ?handshaken.peer.role, conn_id, "accepted connection");
    let Some((host, port)) = split_node(&peer) else {
        // `check_hello` accepted the node, so this cannot happen.
        return;
    };
    let conn = Connection {
        id: conn_id,
        writer: handshaken.writer,
        initiator: peer.clone(),
    };
    // The link hears of the connection before its reader can report it closed.
    let control = shared.control_link(host, port, Control::Inbound(conn));
    connection::read_loop(
        shared.clone(),
        handshaken.reader,
        handshaken.leftover,
        peer,
        conn_id,
        control,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_node_takes_the_last_colon() {
        assert_eq!(split_node("10.0.0.1:5050"), Some(("10.0.0.1", 5050)));
        assert_eq!(split_node("[::1]:5051"), Some(("[::1]", 5051)));
        assert_eq!(split_node("agent.example:1"), Some(("agent.example", 1)));
        for bad in ["", "host", "host:", ":1", "host:65536", "host:x"] {
            assert_eq!(split_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_of_brackets_ipv6() {
        assert_eq!(host_of(&"127.0.0.1:1".parse().unwrap()), "127.0.0.1");
        assert_eq!(host_of(&"[::1]:1".parse().unwrap()), "[::1]");
    }
}
