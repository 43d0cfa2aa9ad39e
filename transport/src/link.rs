//! Links: the outbound side of the connection to one peer node.
//!
//! A node keeps one [`LinkTask`] per peer node (`host:port`), created on the first envelope for
//! that node, the first `link()` to it, or the first connection accepted from it. The task owns
//! the link's [`Queue`] and the write half of its current connection, whichever side opened it:
//! that is how replies to a peer that connected in (a framework behind NAT) go back over the
//! connection it opened. While it has no connection and has something to send or someone
//! watching, it connects out, backing off exponentially between failed attempts.
//!
//! When both nodes connect to each other at once, each link ends up with two connections. Both
//! sides keep the one opened by the lower node name ([`replaces_current`]), so they agree without
//! talking; the other is half-closed by its writer and its reader drains it until the peer does
//! the same, so nothing written to it is lost.
//!
//! A link with no connection, nothing to send and nobody watching retires after
//! `link_idle_timeout`, so that peers that came and went (frameworks, tools) do not leave tasks
//! behind; the next envelope for that node starts a new one.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::Recipient;
use strata_protocol::{Envelope, Pid};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc};
use tokio::time::Sleep;
use tracing::{debug, warn};

use crate::backoff::backoff_delay;
use crate::connection;
use crate::messages::{LinkEvent, LinkState};
use crate::node::Shared;
use crate::stats::{Direction, DropReason};

/// Bytes encoded before a write is issued, when a batch is large. Bounds the write buffer while
/// still moving hundreds of envelopes per syscall.
const WRITE_CHUNK: usize = 256 * 1024;

/// A bounded FIFO of envelopes waiting for a link's connection.
///
/// A mutex around a `VecDeque` rather than a channel, because the writer takes everything queued
/// in one swap (no per-envelope receive) and because nothing is taken off while the link is
/// down, so "queued" and "dropped" add up exactly to "sent".
#[derive(Debug)]
pub(crate) struct Queue {
    items: Mutex<VecDeque<Envelope>>,
    bound: usize,
    /// Wakes the link task when the queue turns non-empty.
    pub ready: Notify,
    /// Wakes senders waiting for room (`send_wait`) after the writer took a batch.
    pub room: Notify,
}

impl Queue {
    pub(crate) fn new(bound: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            bound,
            ready: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Envelope>> {
        // A panic while holding this lock cannot leave the deque inconsistent.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `envelope`, or hands it back when the queue is at its bound.
    // Handing the envelope back is the point (`send_wait` retries it); boxing it to shrink the
    // error would cost an allocation on every send.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push(&self, envelope: Envelope) -> Result<(), Envelope> {
        let mut items = self.lock();
        if items.len() >= self.bound {
            return Err(envelope);
        }
        let was_empty = items.is_empty();
        items.push_back(envelope);
        drop(items);
        // The writer drains everything, so a non-empty queue means a wake-up is already pending.
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Moves every queued envelope to the back of `batch`, which must be empty. Swapping keeps
    /// both allocations alive, so a busy link stops allocating.
    fn drain_into(&self, batch: &mut VecDeque<Envelope>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut *self.lock(), batch);
        if !batch.is_empty() {
            self.room.notify_waiters();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// Requests to a link task.
pub(crate) enum Control {
    /// A connection accepted from the link's peer finished its handshake.
    Inbound(Connection),
    Watch {
        watcher: Recipient<LinkEvent>,
        peer: Pid,
    },
    Unwatch {
        watcher: Recipient<LinkEvent>,
        peer: Pid,
    },
    /// The reader of connection `conn_id` stopped.
    Closed { conn_id: u64 },
}

/// The write side of a connection, as owned by a link.
pub(crate) struct Connection {
    pub id: u64,
    pub writer: OwnedWriteHalf,
    /// The node that opened the connection.
    pub initiator: String,
}

/// What the node keeps to reach a link task.
#[derive(Clone)]
pub(crate) struct LinkHandle {
    pub queue: Arc<Queue>,
    pub control: mpsc::UnboundedSender<Control>,
}

/// Tells whether a connection opened by `new_initiator` takes the place of the link's current
/// one, opened by `current_initiator`. Both ends of a link must reach the same answer.
pub(crate) fn replaces_current(current_initiator: &str, new_initiator: &str) -> bool {
    // Same opener: the peer reconnected, perhaps after a restart, so the old one is stale.
    // Different openers: a simultaneous open; the lower node's connection wins on both ends.
    current_initiator == new_initiator || new_initiator < current_initiator
}

enum Wake {
    Shutdown,
    Control(Control),
    Ready,
    Retry,
    Idle,
}

/// The task behind one link. See the module docs.
pub(crate) struct LinkTask {
    shared: Arc<Shared>,
    node: String,
    queue: Arc<Queue>,
    control: mpsc::UnboundedReceiver<Control>,
    control_tx: mpsc::UnboundedSender<Control>,
    watchers: Vec<(Recipient<LinkEvent>, Pid)>,
    /// The state last told to watchers; `None` before the first connection or attempt.
    reported: Option<LinkState>,
    current: Option<Connection>,
    n_failed_attempts: u32,
    /// When set, the next connection attempt waits for it.
    retry: Option<Pin<Box<Sleep>>>,
    /// Armed while the link is idle (no connection, nothing queued, nobody watching); when it
    /// fires the link retires.
    idle: Option<Pin<Box<Sleep>>>,
    batch: VecDeque<Envelope>,
    buf: Vec<u8>,
}

impl LinkTask {
    /// Creates the task for `node` and returns it with its handle; the caller spawns it.
    pub(crate) fn new(shared: Arc<Shared>, node: String) -> (Self, LinkHandle) {
        let queue = Arc::new(Queue::new(shared.config.queue_bound));
        let (control_tx, control) = mpsc::unbounded_channel();
        let handle = LinkHandle {
            queue: queue.clone(),
            control: control_tx.clone(),
        };
        let task = Self {
            shared,
            node,
            queue,
            control,
            control_tx,
            watchers: Vec::new(),
            reported: None,
            current: None,
            n_failed_attempts: 0,
            retry: None,
            idle: None,
            batch: VecDeque::new(),
            buf: Vec::new(),
        };
        (task, handle)
    }

    pub(crate) async fn run(mut self) {
        loop {
            let connected = self.current.is_some();
            if connected && !self.queue.is_empty() {
                self.flush().await;
                continue;
            }
            let wants_connection = !self.queue.is_empty() || !self.watchers.is_empty();
            let is_idle = !connected && !wants_connection;
            if !is_idle {
                self.idle = None;
            } else if self.idle.is_none() {
                let timeout = self.shared.config.link_idle_timeout;
                self.idle = Some(Box::pin(tokio::time::sleep(timeout)));
            }
            let shared = self.shared.clone();
            let wake = tokio::select! {
                biased;
                () = shared.shutdown.cancelled() => Wake::Shutdown,
                control = self.control.recv() => match control {
                    Some(control) => Wake::Control(control),
                    // Unreachable: this task holds a sender itself.
                    None => Wake::Shutdown,
                },
                () = self.queue.ready.notified(), if connected || !wants_connection => Wake::Ready,
                () = wait_retry(&mut self.retry), if !connected && wants_connection => Wake::Retry,
                () = wait_retry(&mut self.idle), if is_idle => Wake::Idle,
            };
            match wake {
                Wake::Shutdown => break,
                Wake::Control(control) => self.on_control(control),
                Wake::Ready => {}
                Wake::Retry => self.try_connect().await,
                Wake::Idle => {
                    if self.try_retire() {
                        return;
                    }
                }
            }
        }
        self.on_shutdown();
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Inbound(conn) => self.adopt(conn),
            Control::Watch { watcher, peer } => {
                // A watcher learns the state at once if it is known, as a late `link()` in Mesos
                // learns at once that a peer is gone.
                if let Some(state) = self.reported {
                    watcher.do_send(LinkEvent {
                        peer: peer.clone(),
                        state,
                    });
                }
                self.watchers.push((watcher, peer));
            }
            Control::Unwatch { watcher, peer } => {
                self.watchers
                    .retain(|(w, p)| !(w == &watcher && p == &peer));
            }
            Control::Closed { conn_id } => {
                if self.current.as_ref().is_some_and(|conn| conn.id == conn_id) {
                    self.lose_connection();
                }
            }
        }
    }

    /// Leaves the link table if the link is still idle; returns whether the task should end.
    fn try_retire(&mut self) -> bool {
        self.idle = None;
        let (queue, control) = (&self.queue, &self.control);
        let unwatched = self.watchers.is_empty();
        // Checked under the table lock, which every sender and every control holds while it
        // uses a link: nothing can reach this link once it is out of the table.
        let still_idle = || unwatched && queue.is_empty() && control.is_empty();
        let retired = self.shared.retire_link(&self.node, &self.queue, still_idle);
        if retired {
            debug!(local = %self.shared.local_node, peer = %self.node, "idle link retired");
        }
        retired
    }

    /// Makes `conn` the current connection unless the current one wins the tie-break.
    fn adopt(&mut self, conn: Connection) {
        match &self.current {
            None => {
                self.current = Some(conn);
                self.shared.stats.link_up();
                self.n_failed_attempts = 0;
                self.retry = None;
                self.report(LinkState::Connected);
            }
            Some(current) if replaces_current(&current.initiator, &conn.initiator) => {
                debug!(
                    local = %self.shared.local_node,
                    peer = %self.node,
                    old = current.id,
                    new = conn.id,
                    "new connection replaces the current one"
                );
                // Dropping the old write half sends FIN; its reader drains it until the peer
                // closes its side.
                let reconnected = current.initiator == conn.initiator;
                self.current = Some(conn);
                if reconnected {
                    // The peer only opens another connection when it lost the old one (it may
                    // have restarted), which watchers must hear of even though this end never
                    // saw the old one break.
                    self.report(LinkState::Disconnected);
                    self.report(LinkState::Connected);
                }
            }
            Some(current) => {
                debug!(
                    local = %self.shared.local_node,
                    peer = %self.node,
                    kept = current.id,
                    dropped = conn.id,
                    "keeping the current connection over a simultaneous one"
                );
            }
        }
    }

    fn lose_connection(&mut self) {
        self.current = None;
        self.shared.stats.link_down();
        // The first reconnection is immediate: the peer may only have restarted.
        self.n_failed_attempts = 0;
        self.retry = None;
        self.report(LinkState::Disconnected);
    }

    fn report(&mut self, state: LinkState) {
        if self.reported == Some(state) {
            return;
        }
        self.reported = Some(state);
        debug!(local = %self.shared.local_node, peer = %self.node, ?state, "link state changed");
        self.watchers.retain(|(watcher, _)| watcher.connected());
        for (watcher, peer) in &self.watchers {
            watcher.do_send(LinkEvent {
                peer: peer.clone(),
                state,
            });
        }
    }

    async fn try_connect(&mut self) {
        let shared = self.shared.clone();
        let result = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return,
            result = connection::connect(&shared, &self.node) => result,
        };
        match result {
            Ok(handshaken) => {
                let conn_id = shared.next_conn_id();
                shared.stats.opened(Direction::Outbound);
                debug!(local = %shared.local_node, peer = %self.node, conn_id, "connected");
                shared.spawn(connection::read_loop(
                    shared.clone(),
                    handshaken.reader,
                    handshaken.leftover,
                    self.node.clone(),
                    conn_id,
                    self.control_tx.clone(),
                ));
                let initiator = shared.local_node.clone();
                self.adopt(Connection {
                    id: conn_id,
                    writer: handshaken.writer,
                    initiator,
                });
            }
            Err(err) => {
                shared.stats.connect_failed();
                if err.reason.is_bad_input() {
                    shared.stats.closed(err.reason);
                }
                let config = &shared.config;
                let delay = backoff_delay(
                    self.n_failed_attempts,
                    config.backoff_initial,
                    config.backoff_max,
                    fastrand::f64(),
                );
                // The first failure is worth a warning; the retries that follow are noise.
                if self.n_failed_attempts == 0 {
                    warn!(local = %shared.local_node, peer = %self.node, error = %err, ?delay, "cannot connect to peer");
                } else {
                    debug!(local = %shared.local_node, peer = %self.node, error = %err, ?delay, attempt = self.n_failed_attempts, "cannot connect to peer");
                }
                self.n_failed_attempts = self.n_failed_attempts.saturating_add(1);
                self.retry = Some(Box::pin(tokio::time::sleep(delay)));
                self.report(LinkState::Disconnected);
            }
        }
    }

    /// Writes everything queued, in chunks of about [`WRITE_CHUNK`] bytes.
    async fn flush(&mut self) {
        let Some(conn) = self.current.as_mut() else {
            return;
        };
        let shared = &self.shared;
        let codec = shared.config.codec;
        self.queue.drain_into(&mut self.batch);
        self.buf.clear();
        let mut n_in_buf = 0u64;
        let mut result = Ok(());
        while let Some(envelope) = self.batch.pop_front() {
            if let Err(err) = codec.encode(&envelope, &mut self.buf) {
                warn!(local = %shared.local_node, to = %envelope.to, error = %err, "dropping envelope that cannot be encoded");
                shared.stats.dropped(DropReason::EncodeFailed, 1);
                continue;
            }
            n_in_buf += 1;
            if self.buf.len() >= WRITE_CHUNK {
                result = conn.writer.write_all(&self.buf).await;
                if result.is_err() {
                    break;
                }
                shared.stats.sent(n_in_buf);
                self.buf.clear();
                n_in_buf = 0;
            }
        }
        if result.is_ok() && !self.buf.is_empty() {
            result = conn.writer.write_all(&self.buf).await;
            if result.is_ok() {
                shared.stats.sent(n_in_buf);
                n_in_buf = 0;
            }
        }
        if let Err(err) = result {
            let n_lost = n_in_buf + self.batch.len() as u64;
            self.batch.clear();
            warn!(local = %shared.local_node, peer = %self.node, conn_id = conn.id, error = %err, n_lost, "write failed, closing connection");
            shared.stats.dropped(DropReason::ConnectionLost, n_lost);
            self.lose_connection();
        }
    }

    fn on_shutdown(&mut self) {
        let n_queued = self.queue.len() as u64;
        if n_queued > 0 {
            self.shared.stats.dropped(DropReason::Shutdown, n_queued);
        }
        if self.current.take().is_some() {
            self.shared.stats.link_down();
        }
    }
}

async fn wait_retry(retry: &mut Option<Pin<Box<Sleep>>>) {
    if let Some(sleep) = retry {
        sleep.as_mut().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tie_break_agrees_on_both_ends() {
        let (low, high) = ("10.0.0.1:5050", "10.0.0.2:5051");
        // Each end's current connection is its own; the other end's arrives second.
        assert!(!replaces_current(low, high));
        assert!(replaces_current(high, low));
        // A reconnect by the same opener always wins.
        assert!(replaces_current(high, high));
    }

    #[test]
    fn queue_is_bounded_and_drains_in_order() {
        let queue = Queue::new(2);
        let envelope = |seq| Envelope {
            from: "a@h:1".parse().unwrap(),
            to: "b@h:2".parse().unwrap(),
            epoch: strata_protocol::Epoch::NONE,
            body: strata_protocol::Body::Internal(strata_protocol::internal::Message::Ping(
                strata_protocol::internal::Ping { seq },
            )),
        };
        assert!(queue.push(envelope(1)).is_ok());
        assert!(queue.push(envelope(2)).is_ok());
        assert_eq!(queue.push(envelope(3)).unwrap_err(), envelope(3));
        let mut batch = VecDeque::new();
        queue.drain_into(&mut batch);
        assert_eq!(
            batch.into_iter().collect::<Vec<_>>(),
            [envelope(1), envelope(2)]
        );
        assert!(queue.is_empty());
    }
}
