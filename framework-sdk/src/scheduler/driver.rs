//! The scheduler driver: the transport node and the subscription's chores, on a thread of its
//! own.
//!
//! The transport is made of actix actors, so, like the executor driver, the scheduler driver
//! runs an actix `System` on its own thread and talks to the program (any tokio runtime)
//! through channels: [`Command`]s in, [`Raw`] events out.
//!
//! Chores it owns:
//! - **Finding a master.** Masters are tried in the order given. The driver links to one and
//!   subscribes once the connection is up; when the connection breaks, or the master does not
//!   answer SUBSCRIBE after [`SUBSCRIBE_ATTEMPTS_MAX`] tries, or answers that it is not the
//!   leader, it moves on to the next after a backoff.
//! - **Resubscribing.** After a disconnection (the link broke, or nothing came for the
//!   heartbeat timeout: five heartbeat intervals, as Mesos clients do), the driver subscribes
//!   again with the framework ID it was given, after a jittered backoff that grows with each
//!   failed attempt.
//! - **Implicit reconciliation** after every SUBSCRIBED.
//! - **Offer bookkeeping** for the auto-decline: offers are void after a disconnection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use strata_protocol::mesos::FrameworkInfo;
use strata_protocol::scheduler::{Call, CallBody, Event, Reconcile, Subscribe};
use strata_protocol::{Body, Envelope, Epoch, PeerRole, Pid};
use strata_transport::{Delivery, LinkEvent, LinkState, Node, NodeConfig};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::SdkError;
use super::client::{Command, Shared};
use super::events::{Raw, Subscribed};

/// How long the driver waits for SUBSCRIBED before sending SUBSCRIBE again: the transport may
/// lose an envelope sent just before a connection breaks.
const SUBSCRIBE_RETRY: Duration = Duration::from_secs(2);

/// Unanswered SUBSCRIBEs after which the driver tries the next master (when there is one).
const SUBSCRIBE_ATTEMPTS_MAX: u32 = 3;

/// Heartbeat intervals without any event after which the subscription counts as lost.
const HEARTBEATS_MISSED_MAX: u32 = 5;

/// How long the driver waits for a TEARDOWN to leave before it stops.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the flush looks at the link's queue.
const FLUSH_POLL: Duration = Duration::from_millis(10);

/// The name of the scheduler's actor on its node.
const ACTOR_NAME: &str = "scheduler";

/// What the driver needs from the builder.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) masters: Vec<Pid>,
    pub(crate) framework_info: FrameworkInfo,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// Overrides the heartbeat timeout derived from SUBSCRIBED.
    pub(crate) heartbeat_timeout: Option<Duration>,
}

/// Starts the driver thread. Returns once the node is up.
pub(crate) fn start(
    config: DriverConfig,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    raw: mpsc::UnboundedSender<Raw>,
) -> Result<(), SdkError> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("scheduler-driver".to_owned())
        .spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                match Driver::start(config, shared, raw) {
                    Ok(driver) => {
                        let _ = started_tx.send(Ok(()));
                        driver.run(commands).await;
                    }
                    Err(err) => {
                        let _ = started_tx.send(Err(err));
                    }
                }
            });
        })
        .map_err(SdkError::Thread)?;
    // The node binds nothing, so this answer comes at once.
    started_rx.recv().map_err(|_| SdkError::Stopped)?
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

/// Where the driver stands with its current master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// No connection to the master; waiting for the transport to open one.
    Disconnected,
    /// Connected; SUBSCRIBE sent or about to be, no SUBSCRIBED yet.
    Subscribing,
    Subscribed,
}

/// Gives each driver of a process its own node name, so that two drivers in one process (as in
/// tests) look like two frameworks to a master.
static NEXT_PORT: AtomicU16 = AtomicU16::new(1);

struct Driver {
    config: DriverConfig,
    shared: Arc<Shared>,
    node: Node,
    me: Pid,
    inbox: actix::Addr<Inbox>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    raw: mpsc::UnboundedSender<Raw>,
    master_idx: usize,
    connection: Connection,
    link_up: bool,
    /// Failed subscription attempts since the last SUBSCRIBED; drives the backoff.
    n_failures: u32,
    /// SUBSCRIBEs sent to the current master without an answer.
    n_unanswered: u32,
    n_subscriptions: u64,
    next_subscribe: Option<Instant>,
    /// When to move on to the next master.
    next_rotate: Option<Instant>,
    /// When the subscription counts as lost if nothing arrives before.
    watchdog: Option<Instant>,
    heartbeat_timeout: Duration,
}

impl Driver {
    fn start(
        config: DriverConfig,
        shared: Arc<Shared>,
        raw: mpsc::UnboundedSender<Raw>,
    ) -> Result<Self, SdkError> {
        // The node does not listen: masters answer over the connection the scheduler opens,
        // so its `host:port` only has to be unique among the master's peers.
        let host = format!("scheduler-{}", std::process::id());
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed).max(1);
        let mut node_config = NodeConfig::connect_only(PeerRole::Scheduler, host, port);
        node_config.backoff_initial = config.backoff_min;
        node_config.backoff_max = config.backoff_max;
        let node = Node::start(node_config)?;
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let inbox = Inbox(inbound_tx).start();
        let me = node.register(ACTOR_NAME, inbox.clone().recipient())?;
        let driver = Self {
            config,
            shared,
            node,
            me,
            inbox,
            inbound,
            raw,
            master_idx: 0,
            connection: Connection::Disconnected,
            link_up: false,
            n_failures: 0,
            n_unanswered: 0,
            n_subscriptions: 0,
            next_subscribe: None,
            next_rotate: None,
            watchdog: None,
            heartbeat_timeout: Duration::MAX,
        };
        info!(scheduler = %driver.me, master = %driver.master(), "scheduler driver started");
        driver
            .node
            .link(driver.inbox.clone().recipient(), driver.master());
        Ok(driver)
    }

    fn master(&self) -> &Pid {
        &self.config.masters[self.master_idx]
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = [self.next_subscribe, self.next_rotate, self.watchdog]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Call(body)) => self.on_call(body),
                    Some(Command::Teardown) => {
                        self.on_call(CallBody::Teardown);
                        self.flush().await;
                        break;
                    }
                    Some(Command::Stop) | None => break,
                },
                Some(inbound) = self.inbound.recv() => {
                    let go_on = match inbound {
                        Inbound::Envelope(envelope) => self.on_envelope(envelope),
                        Inbound::Link(event) => {
                            self.on_link(event);
                            true
                        }
                    };
                    if !go_on {
                        break;
                    }
                }
                () = sleep_until(deadline) => self.on_timer(),
            }
        }
        self.shared.subscribed.store(false, Ordering::Release);
        self.shared.ended.store(true, Ordering::Release);
        self.node.shutdown();
        debug!(scheduler = %self.me, "scheduler driver stopped");
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.watchdog.is_some_and(|at| at <= now) {
            self.watchdog = None;
            warn!(
                master = %self.master(),
                timeout = ?self.heartbeat_timeout,
                "no event from the master within the heartbeat timeout, resubscribing"
            );
            self.lose_subscription();
            self.after_failure(now);
        }
        if self.next_rotate.is_some_and(|at| at <= now) {
            self.next_rotate = None;
            self.rotate();
        }
        if self.next_subscribe.is_some_and(|at| at <= now) {
            self.next_subscribe = None;
            self.subscribe(now);
        }
    }

    fn on_link(&mut self, event: LinkEvent) {
        if &event.peer != self.master() {
            return;
        }
        match event.state {
            LinkState::Connected => {
                if self.link_up {
                    return;
                }
                self.link_up = true;
                info!(master = %self.master(), "connected to the master");
                let _ = self.raw.send(Raw::Connected(self.master().clone()));
                if self.connection == Connection::Disconnected {
                    self.connection = Connection::Subscribing;
                    self.n_unanswered = 0;
                    // The very first subscription goes at once; later ones back off so that a
                    // restarted master is not stormed by every framework at the same moment.
                    let delay = if self.n_subscriptions == 0 && self.n_failures == 0 {
                        Duration::ZERO
                    } else {
                        self.backoff()
                    };
                    self.next_subscribe = Some(Instant::now() + delay);
                }
            }
            LinkState::Disconnected => {
                let was_up = self.link_up;
                self.link_up = false;
                if was_up || self.connection != Connection::Disconnected {
                    warn!(master = %self.master(), "lost the connection to the master");
                }
                self.lose_subscription();
                self.connection = Connection::Disconnected;
                self.next_subscribe = None;
                self.after_failure(Instant::now());
            }
        }
    }

    /// Forgets the subscription: no calls, no offers, until the next SUBSCRIBED.
    fn lose_subscription(&mut self) {
        self.watchdog = None;
        self.shared.outstanding().clear();
        if self.connection == Connection::Subscribed {
            self.shared.subscribed.store(false, Ordering::Release);
            let _ = self.raw.send(Raw::Disconnected);
        }
        if self.link_up {
            self.connection = Connection::Subscribing;
        }
    }

    /// Counts a failed attempt and plans the next: the next master when there are several,
    /// else the same one again (the transport reconnects it by itself).
    fn after_failure(&mut self, now: Instant) {
        self.n_failures = self.n_failures.saturating_add(1);
        let delay = self.backoff();
        if self.config.masters.len() > 1 {
            self.next_rotate = Some(now + delay);
            self.next_subscribe = None;
        } else if self.link_up {
            self.next_subscribe = Some(now + delay);
        }
    }

    /// Moves on to the next master in the list.
    fn rotate(&mut self) {
        let recipient = self.inbox.clone().recipient();
        self.node.unlink(recipient.clone(), self.master());
        self.master_idx = (self.master_idx + 1) % self.config.masters.len();
        self.link_up = false;
        self.connection = Connection::Disconnected;
        self.n_unanswered = 0;
        info!(master = %self.master(), "trying the next master");
        self.node.link(recipient, self.master());
    }

    /// Returns a jittered delay that doubles with each failure, between half the backoff and
    /// the whole of it, so that frameworks that lost the same master spread out.
    fn backoff(&self) -> Duration {
        let exponent = self.n_failures.saturating_sub(1).min(16);
        let full = self
            .config
            .backoff_min
            .saturating_mul(1 << exponent)
            .min(self.config.backoff_max);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    fn subscribe(&mut self, now: Instant) {
        if !self.link_up {
            return;
        }
        if self.n_unanswered >= SUBSCRIBE_ATTEMPTS_MAX && self.config.masters.len() > 1 {
            warn!(master = %self.master(), "master does not answer subscribe, trying the next");
            self.after_failure(now);
            return;
        }
        let mut framework_info = self.config.framework_info.clone();
        framework_info.id = self.framework_id();
        debug!(master = %self.master(), framework_id = ?framework_info.id, "sending subscribe");
        self.send(CallBody::Subscribe(Box::new(Subscribe {
            framework_info,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        })));
        self.connection = Connection::Subscribing;
        self.n_unanswered += 1;
        self.next_subscribe = Some(now + SUBSCRIBE_RETRY);
    }

    fn framework_id(&self) -> Option<strata_protocol::FrameworkId> {
        self.shared
            .framework_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn on_call(&mut self, body: CallBody) {
        if self.connection != Connection::Subscribed {
            debug!(
                call = body.type_name(),
                "dropping a call made while not subscribed"
            );
            return;
        }
        self.send(body);
    }

    /// Handles an envelope; returns false when the driver must stop.
    fn on_envelope(&mut self, envelope: Envelope) -> bool {
        // With one master any sender will do (it may name itself differently than the address
        // it was given as); with several, events of a master left behind are stale.
        if self.config.masters.len() > 1 && &envelope.from != self.master() {
            debug!(from = %envelope.from, "ignoring an envelope from a master not in use");
            return true;
        }
        let Body::SchedulerEvent(event) = envelope.body else {
            debug!(from = %envelope.from, "ignoring an envelope that is not a scheduler event");
            return true;
        };
        if self.connection == Connection::Subscribed {
            self.watchdog = Some(Instant::now() + self.heartbeat_timeout);
        }
        debug!(event = event.type_name(), "scheduler event");
        let raw = match event {
            Event::Subscribed(subscribed) => {
                self.on_subscribed(*subscribed);
                return true;
            }
            Event::Error(error)
                if self.connection == Connection::Subscribing
                    && self.config.masters.len() > 1
                    && error
                        .message
                        .to_ascii_lowercase()
                        .contains("not the leader") =>
            {
                warn!(master = %self.master(), message = %error.message, "master is not the leader, trying the next");
                self.connection = Connection::Disconnected;
                self.after_failure(Instant::now());
                return true;
            }
            Event::Error(error) => {
                warn!(master = %self.master(), message = %error.message, "master ended the subscription");
                let _ = self.raw.send(Raw::Error(error.message));
                return false;
            }
            _ if self.connection != Connection::Subscribed => {
                debug!(
                    event = event.type_name(),
                    "ignoring an event before subscribed"
                );
                return true;
            }
            Event::Offers(offers) => {
                self.shared
                    .outstanding()
                    .extend(offers.offers.iter().map(|offer| offer.id.clone()));
                Raw::Offers(offers.offers)
            }
            Event::Rescind(rescind) => {
                self.shared.outstanding().remove(&rescind.offer_id);
                Raw::Rescind(rescind.offer_id)
            }
            Event::Update(update) => Raw::Update(update.status),
            Event::Message(message) => Raw::Message(message),
            Event::Failure(failure) => Raw::Failure(failure),
            Event::Heartbeat => Raw::Heartbeat,
        };
        let _ = self.raw.send(raw);
        true
    }

    fn on_subscribed(&mut self, subscribed: strata_protocol::scheduler::Subscribed) {
        let now = Instant::now();
        let interval = subscribed
            .heartbeat_interval_seconds
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .map_or(Duration::from_secs(15), Duration::from_secs_f64);
        self.heartbeat_timeout = self
            .config
            .heartbeat_timeout
            .unwrap_or(interval * HEARTBEATS_MISSED_MAX);
        let resubscribed = self.n_subscriptions > 0;
        info!(
            master = %self.master(),
            framework_id = %subscribed.framework_id,
            resubscribed,
            "subscribed"
        );
        *self
            .shared
            .framework_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(subscribed.framework_id.clone());
        // Offers of an earlier subscription are void: the master dropped them.
        self.shared.outstanding().clear();
        self.connection = Connection::Subscribed;
        self.shared.subscribed.store(true, Ordering::Release);
        self.n_subscriptions += 1;
        self.n_failures = 0;
        self.n_unanswered = 0;
        self.next_subscribe = None;
        self.next_rotate = None;
        self.watchdog = Some(now + self.heartbeat_timeout);
        let _ = self.raw.send(Raw::Subscribed(Subscribed {
            framework_id: subscribed.framework_id,
            master: self.master().clone(),
            heartbeat_interval: interval,
            resubscribed,
        }));
        // Implicit reconciliation: the master reports every task it knows, so updates lost
        // while disconnected are not lost for good.
        self.send(CallBody::Reconcile(Reconcile::default()));
    }

    fn send(&self, body: CallBody) {
        let envelope = Envelope {
            from: self.me.clone(),
            to: self.master().clone(),
            epoch: Epoch::NONE,
            body: Body::SchedulerCall(Call {
                framework_id: self.framework_id(),
                body,
            }),
        };
        if let Err(err) = self.node.send(envelope) {
            warn!(master = %self.master(), error = %err, "cannot send to the master");
        }
    }

    /// Gives what is queued for the master (a TEARDOWN) a bounded moment to leave.
    async fn flush(&self) {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while self.node.queued(self.master()) > 0 && Instant::now() < deadline {
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
