//! The executor side of the agent protocol.
//!
//! The transport is made of actix actors, so the driver runs on a thread of its own with an
//! actix `System`: the executor itself can then use any tokio runtime, and talks to the driver
//! through channels ([`DriverHandle`] in, [`ExecutorDriver::next_event`] out).
//!
//! Reliability follows the Mesos v1 executor library. Every update is kept until the agent
//! acknowledges it, and every launched task until an update was sent for it. When the
//! connection to the agent breaks (the agent restarted), a checkpointed executor reconnects with
//! backoff and resubscribes with what it still holds, so the restarted agent learns of updates
//! it never got; an executor that is not checkpointed, or whose agent stays away longer than the
//! recovery timeout, is told to shut down.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use strata_protocol::executor::{self, Call, CallBody, Event, Subscribe, Update};
use strata_protocol::ids::TaskId;
use strata_protocol::mesos::{TaskInfo, TaskStatus, TaskStatusSource};
use strata_protocol::{Body, Bytes, Envelope, Epoch, PeerRole, Pid};
use strata_transport::{Delivery, LinkEvent, LinkState, Node, NodeConfig, TransportError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{ExecutorConfig, ExecutorEvent, ShutdownReason};

/// How often SUBSCRIBE is repeated while the agent has not answered it, as Mesos executors do:
/// the transport may lose an envelope sent just before a connection breaks.
const SUBSCRIBE_RETRY: Duration = Duration::from_secs(1);

/// How long the driver waits for its queued envelopes to leave when it stops.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the flush looks at the link's queue.
const FLUSH_POLL: Duration = Duration::from_millis(10);

/// The name of the executor's actor on its node.
const ACTOR_NAME: &str = "executor";

/// Why the driver cannot run or take a call.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot start the transport node: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot start the driver thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the executor driver has stopped")]
    Stopped,
}

/// What a [`DriverHandle`] asks of the driver thread.
enum Command {
    Update(Update),
    Message(Bytes),
    Stop,
}

/// A running driver: sends the executor's calls to its agent and hands it the agent's events.
///
/// Dropping it stops the driver.
pub struct ExecutorDriver {
    handle: DriverHandle,
    events: mpsc::UnboundedReceiver<ExecutorEvent>,
    done: Option<oneshot::Receiver<()>>,
}

impl std::fmt::Debug for ExecutorDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorDriver")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Sends calls to the agent through a running [`ExecutorDriver`]. Cheap to clone.
#[derive(Clone)]
pub struct DriverHandle {
    commands: mpsc::UnboundedSender<Command>,
    config: std::sync::Arc<ExecutorConfig>,
}

impl std::fmt::Debug for DriverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverHandle")
            .field("executor_id", &self.config.executor_id)
            .field("framework_id", &self.config.framework_id)
            .finish()
    }
}

impl DriverHandle {
    /// Sends a status update and returns its uuid, which the agent's ACKNOWLEDGED will carry.
    ///
    /// Fills what the executor need not: a random uuid when `status.uuid` is unset, the
    /// timestamp, the source (SOURCE_EXECUTOR) and the executor ID. The driver keeps the update
    /// until the agent acknowledges it, and hands it to a restarted agent.
    pub fn update(&self, mut status: TaskStatus) -> Result<Bytes, DriverError> {
        let uuid = status
            .uuid
            .get_or_insert_with(|| Bytes::new(random_uuid()))
            .clone();
        status.timestamp = Some(unix_now());
        status.source = Some(TaskStatusSource::Executor);
        status.executor_id = Some(self.config.executor_id.clone());
        self.commands
            .send(Command::Update(Update { status }))
            .map_err(|_| DriverError::Stopped)?;
        Ok(uuid)
    }

    /// Sends opaque data to the framework's scheduler. Best effort, as in Mesos: data sent
    /// while the agent is away is dropped.
    pub fn message(&self, data: impl Into<Vec<u8>>) -> Result<(), DriverError> {
        self.commands
            .send(Command::Message(Bytes::new(data)))
            .map_err(|_| DriverError::Stopped)
    }

    /// Returns the configuration the driver runs with.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }
}

impl ExecutorDriver {
    /// Starts the driver on a thread of its own; it connects to the agent and subscribes.
    pub fn start(config: ExecutorConfig) -> Result<Self, DriverError> {
        let config = std::sync::Arc::new(config);
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let thread_config = config.clone();
        std::thread::Builder::new()
            .name("executor-driver".to_owned())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(async move {
                    match Driver::start(&thread_config, events_tx) {
                        Ok(driver) => {
                            let _ = started_tx.send(Ok(()));
                            driver.run(commands_rx).await;
                        }
                        Err(err) => {
                            let _ = started_tx.send(Err(err));
                        }
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(DriverError::Thread)?;
        // The node binds nothing, so this answer comes at once.
        started_rx.recv().map_err(|_| DriverError::Stopped)??;
        Ok(Self {
            handle: DriverHandle {
                commands: commands_tx,
                config,
            },
            events: events_rx,
            done: Some(done_rx),
        })
    }

    /// Returns a handle to send calls with.
    pub fn handle(&self) -> DriverHandle {
        self.handle.clone()
    }

    /// Returns the next event, or `None` once the driver stopped.
    pub async fn next_event(&mut self) -> Option<ExecutorEvent> {
        self.events.recv().await
    }

    /// Stops the driver, after giving what it queued for the agent a moment to leave.
    pub async fn stop(mut self) {
        let _ = self.handle.commands.send(Command::Stop);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for ExecutorDriver {
    fn drop(&mut self) {
        let _ = self.handle.commands.send(Command::Stop);
    }
}

/// What reaches the driver from the transport.
enum Inbound {
    Envelope(Envelope),
    Link(LinkEvent),
}

/// The actor the transport delivers to; it hands everything to the driver loop.
struct Inbox(mpsc::UnboundedSender<Inbound>);

impl Actor for Inbox {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Inbox {
    type Result = ();
    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.0.send(Inbound::Envelope(envelope));
    }
}

impl Handler<LinkEvent> for Inbox {
    type Result = ();
    fn handle(&mut self, event: LinkEvent, _: &mut Context<Self>) {
        let _ = self.0.send(Inbound::Link(event));
    }
}

/// Where the driver stands with its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// No connection; waiting for the transport to reconnect.
    Disconnected,
    /// Connected, SUBSCRIBE sent, SUBSCRIBED not yet received.
    Subscribing,
    Subscribed,
}

/// An update the agent has not acknowledged yet.
struct Pending {
    update: Update,
    /// Whether the agent was sent it, alone or in a SUBSCRIBE.
    sent: bool,
}

struct Driver {
    config: std::sync::Arc<ExecutorConfig>,
    node: Node,
    me: Pid,
    inbox: actix::Addr<Inbox>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    events: mpsc::UnboundedSender<ExecutorEvent>,
    connection: Connection,
    /// Updates not acknowledged, in the order they were sent.
    updates: Vec<Pending>,
    /// Tasks launched with no update sent for them yet.
    tasks: Vec<TaskInfo>,
    /// When the agent went away, if it is away and a restarted one is awaited.
    recovery_deadline: Option<Instant>,
    next_subscribe: Option<Instant>,
    next_heartbeat: Option<Instant>,
    /// Set once the driver told the executor to shut down because the agent is gone; it stops
    /// reconnecting then.
    gave_up: bool,
}

/// Gives each driver of a process its own node name, so that two drivers in one process (as in
/// tests) never look like one peer to an agent.
static NEXT_PORT: AtomicU16 = AtomicU16::new(1);

impl Driver {
    fn start(
        config: &std::sync::Arc<ExecutorConfig>,
        events: mpsc::UnboundedSender<ExecutorEvent>,
    ) -> Result<Self, DriverError> {
        // The node does not listen: the agent answers over the connection the executor opens,
        // so its `host:port` only has to be unique among the agent's peers. The OS pid tells
        // executor processes apart, the port the drivers of one process.
        let host = format!("executor-{}", std::process::id());
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed).max(1);
        let mut node_config = NodeConfig::connect_only(PeerRole::Executor, host, port);
        node_config.backoff_max = config.subscription_backoff_max;
        node_config.backoff_initial = node_config
            .backoff_initial
            .min(config.subscription_backoff_max);
        let node = Node::start(node_config)?;
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let inbox = Inbox(inbound_tx).start();
        let me = node.register(ACTOR_NAME, inbox.clone().recipient())?;
        info!(executor = %me, agent = %config.agent_pid, "executor driver started");
        node.link(inbox.clone().recipient(), &config.agent_pid);
        Ok(Self {
            config: config.clone(),
            node,
            me,
            inbox,
            inbound,
            events,
            connection: Connection::Disconnected,
            updates: Vec::new(),
            tasks: Vec::new(),
            recovery_deadline: None,
            next_subscribe: None,
            next_heartbeat: None,
            gave_up: false,
        })
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Update(update)) => self.on_update(update),
                    Some(Command::Message(data)) => self.on_message(data),
                    Some(Command::Stop) | None => break,
                },
                Some(inbound) = self.inbound.recv() => match inbound {
                    Inbound::Envelope(envelope) => self.on_envelope(envelope),
                    Inbound::Link(event) => self.on_link(event),
                },
                () = sleep_until(deadline) => self.on_timer(),
            }
        }
        self.flush().await;
        self.node.shutdown();
        debug!(executor = %self.me, "executor driver stopped");
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.recovery_deadline,
            self.next_subscribe,
            self.next_heartbeat,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.recovery_deadline.is_some_and(|at| at <= now) {
            self.recovery_deadline = None;
            warn!(
                agent = %self.config.agent_pid,
                timeout = ?self.config.recovery_timeout,
                "agent did not come back within the recovery timeout, shutting down"
            );
            self.give_up(ShutdownReason::RecoveryTimeout);
        }
        if self.next_subscribe.is_some_and(|at| at <= now) {
            self.subscribe(now);
        }
        if self.next_heartbeat.is_some_and(|at| at <= now) {
            self.send(CallBody::Heartbeat);
            self.next_heartbeat = Some(now + self.config.heartbeat_interval);
        }
    }

    fn on_link(&mut self, event: LinkEvent) {
        if self.gave_up || event.peer != self.config.agent_pid {
            return;
        }
        match event.state {
            LinkState::Connected => {
                if self.connection == Connection::Disconnected {
                    info!(agent = %self.config.agent_pid, "connected to the agent, subscribing");
                    self.recovery_deadline = None;
                    self.subscribe(Instant::now());
                }
            }
            LinkState::Disconnected => self.on_disconnected(),
        }
    }

    fn on_disconnected(&mut self) {
        let was = self.connection;
        self.connection = Connection::Disconnected;
        self.next_subscribe = None;
        self.next_heartbeat = None;
        if !self.config.checkpoint {
            warn!(agent = %self.config.agent_pid, "lost the agent and the framework is not checkpointed, shutting down");
            self.give_up(ShutdownReason::AgentDisconnected);
            return;
        }
        if self.recovery_deadline.is_none() {
            if was != Connection::Disconnected {
                warn!(
                    agent = %self.config.agent_pid,
                    recovery_timeout = ?self.config.recovery_timeout,
                    "lost the agent, waiting for it to come back"
                );
            }
            self.recovery_deadline = Some(Instant::now() + self.config.recovery_timeout);
        }
    }

    /// Stops talking to the agent and tells the executor to shut down.
    fn give_up(&mut self, reason: ShutdownReason) {
        self.gave_up = true;
        self.connection = Connection::Disconnected;
        self.recovery_deadline = None;
        self.next_subscribe = None;
        self.next_heartbeat = None;
        self.node
            .unlink(self.inbox.clone().recipient(), &self.config.agent_pid);
        let _ = self.events.send(ExecutorEvent::Shutdown(reason));
    }

    /// Sends SUBSCRIBE with everything the agent may not know yet.
    fn subscribe(&mut self, now: Instant) {
        let subscribe = Subscribe {
            unacknowledged_tasks: self.tasks.clone(),
            unacknowledged_updates: self.updates.iter().map(|p| p.update.clone()).collect(),
        };
        debug!(
            agent = %self.config.agent_pid,
            n_tasks = subscribe.unacknowledged_tasks.len(),
            n_updates = subscribe.unacknowledged_updates.len(),
            "sending subscribe"
        );
        for pending in &mut self.updates {
            pending.sent = true;
        }
        self.send(CallBody::Subscribe(Box::new(subscribe)));
        self.connection = Connection::Subscribing;
        self.next_subscribe = Some(now + SUBSCRIBE_RETRY);
    }

    fn on_update(&mut self, update: Update) {
        let task_id = &update.status.task_id;
        self.tasks.retain(|task| &task.task_id != task_id);
        let subscribed = self.connection == Connection::Subscribed;
        if subscribed {
            self.send(CallBody::Update(Box::new(update.clone())));
        } else {
            debug!(task_id = %task_id.as_str(), state = ?update.status.state, "agent away, update kept for the next subscribe");
        }
        self.updates.push(Pending {
            update,
            sent: subscribed,
        });
    }

    fn on_message(&mut self, data: Bytes) {
        if self.connection == Connection::Subscribed {
            self.send(CallBody::Message(executor::Message { data }));
        } else {
            warn!(
                n_bytes = data.as_slice().len(),
                "dropping message for the framework, the executor is not subscribed"
            );
        }
    }

    fn on_envelope(&mut self, envelope: Envelope) {
        let Body::ExecutorEvent(event) = envelope.body else {
            debug!(from = %envelope.from, "ignoring an envelope that is not an executor event");
            return;
        };
        if self.gave_up {
            debug!(
                event = event.type_name(),
                "ignoring an event after giving up on the agent"
            );
            return;
        }
        debug!(event = event.type_name(), "executor event");
        let forward = match event {
            Event::Subscribed(subscribed) => {
                self.on_subscribed();
                Some(ExecutorEvent::Subscribed(subscribed))
            }
            Event::Launch(launch) => {
                self.remember_task(&launch.task);
                Some(ExecutorEvent::Launch(Box::new(launch.task)))
            }
            Event::LaunchGroup(group) => {
                for task in &group.task_group.tasks {
                    self.remember_task(task);
                }
                Some(ExecutorEvent::LaunchGroup(Box::new(group.task_group)))
            }
            Event::Kill(kill) => Some(ExecutorEvent::Kill {
                task_id: kill.task_id,
                kill_policy: kill.kill_policy,
            }),
            Event::Acknowledged(ack) => self.on_acknowledged(ack.task_id, ack.uuid),
            Event::Message(message) => Some(ExecutorEvent::Message(message.data)),
            Event::Error(error) => Some(ExecutorEvent::Error(error.message)),
            Event::Shutdown => Some(ExecutorEvent::Shutdown(ShutdownReason::Requested)),
            Event::Heartbeat => None,
        };
        if let Some(event) = forward {
            let _ = self.events.send(event);
        }
    }

    fn on_subscribed(&mut self) {
        info!(agent = %self.config.agent_pid, "subscribed with the agent");
        self.connection = Connection::Subscribed;
        self.recovery_deadline = None;
        self.next_subscribe = None;
        self.next_heartbeat = Some(Instant::now() + self.config.heartbeat_interval);
        // Updates made after the last SUBSCRIBE left are in no call the agent got.
        let unsent: Vec<Update> = self
            .updates
            .iter_mut()
            .filter(|pending| !pending.sent)
            .map(|pending| {
                pending.sent = true;
                pending.update.clone()
            })
            .collect();
        for update in unsent {
            self.send(CallBody::Update(Box::new(update)));
        }
    }

    fn remember_task(&mut self, task: &TaskInfo) {
        if !self.tasks.iter().any(|known| known.task_id == task.task_id) {
            self.tasks.push(task.clone());
        }
    }

    fn on_acknowledged(&mut self, task_id: TaskId, uuid: Bytes) -> Option<ExecutorEvent> {
        let before = self.updates.len();
        self.updates
            .retain(|pending| pending.update.status.uuid.as_ref() != Some(&uuid));
        if self.updates.len() == before {
            warn!(task_id = %task_id.as_str(), "acknowledgement for an unknown update");
            return None;
        }
        Some(ExecutorEvent::Acknowledged { task_id, uuid })
    }

    fn send(&self, body: CallBody) {
        let envelope = Envelope {
            from: self.me.clone(),
            to: self.config.agent_pid.clone(),
            epoch: Epoch::NONE,
            body: Body::ExecutorCall(Call {
                executor_id: self.config.executor_id.clone(),
                framework_id: self.config.framework_id.clone(),
                body,
            }),
        };
        if let Err(err) = self.node.send(envelope) {
            warn!(agent = %self.config.agent_pid, error = %err, "cannot send to the agent");
        }
    }

    /// Gives what is queued for the agent (a last MESSAGE, a heartbeat) a bounded moment to
    /// leave before the node closes its connections.
    async fn flush(&self) {
        if self.connection == Connection::Disconnected {
            return;
        }
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while self.node.queued(&self.config.agent_pid) > 0 && Instant::now() < deadline {
            tokio::time::sleep(FLUSH_POLL).await;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Returns 16 random bytes shaped as a version 4 UUID, as Mesos uses for update uuids.
fn random_uuid() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// Returns the seconds since the Unix epoch, the form of `TaskStatus.timestamp`.
fn unix_now() -> f64 {
    // The driver is an adapter: stamping updates with the wall clock is its job.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_random_version_4() {
        let a = random_uuid();
        let b = random_uuid();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 0b10);
    }
}
