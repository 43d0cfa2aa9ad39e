//! `SimNetwork`: the messages in flight between the master and its simulated peers.
//!
//! Every message gets a delivery time when it is sent. Faults are decided then, from the
//! network's own seeded generator: a message may be dropped, delivered twice, or delayed by a
//! random amount (which reorders it against later messages on the same link). A node can be
//! isolated, which drops everything it sends or is sent until it is healed, including
//! messages already in flight: a partition cuts the wire, it does not wait for it to drain.
//!
//! Links to frameworks stay first-in first-out even when faults are on. A framework's event
//! stream is one TCP connection or one HTTP response, so its events cannot overtake each
//! other; the master relies on that (an UPDATE answering a RECONCILE must not be overtaken by an
//! older one). Master<->agent links get the full weak contract of `protocol::internal`:
//! "the transport may lose or duplicate any of them" and may reorder them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strata_master::state::FrameworkConn;
use strata_protocol::internal;
use strata_protocol::scheduler::{Call, Event};

use super::rng::SimRng;

/// A simulated process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Master,
    /// An agent, by index.
    Agent(usize),
    /// A framework's scheduler, by index.
    Framework(usize),
}

/// What travels between nodes.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Master <-> agent.
    Internal(internal::Message),
    /// Framework -> master, on one of the framework's connections.
    Call { conn: FrameworkConn, call: Call },
    /// Master -> framework, on the connection the master chose.
    Event { conn: FrameworkConn, event: Event },
}

impl Payload {
    /// Returns a short name for traces.
    pub fn name(&self) -> &'static str {
        match self {
            Payload::Internal(message) => message.name(),
            Payload::Call { call, .. } => call.body.type_name(),
            Payload::Event { event, .. } => event.type_name(),
        }
    }

    /// Returns a one-line description for traces: the name and the task or offers concerned.
    pub fn describe(&self) -> String {
        use strata_protocol::internal::Message;
        use strata_protocol::scheduler::CallBody;
        let name = self.name();
        match self {
            Payload::Internal(Message::RunTask(run)) => format!("{name} {}", run.task.task_id),
            Payload::Internal(Message::KillTask(kill)) => format!("{name} {}", kill.task_id),
            Payload::Internal(Message::StatusUpdate(update)) => format!(
                "{name} {} {} latest {:?}",
                update.status.task_id, update.status.state, update.latest_state
            ),
            Payload::Internal(Message::StatusUpdateAcknowledgement(ack)) => {
                format!("{name} {}", ack.task_id)
            }
            Payload::Event {
                conn,
                event: Event::Update(update),
            } => format!(
                "{name} {} {} {:?} {:?} on {conn:?}",
                update.status.task_id,
                update.status.state,
                update.status.source,
                update.status.reason
            ),
            Payload::Event { conn, .. } => format!("{name} on {conn:?}"),
            Payload::Call { call, conn } => match &call.body {
                CallBody::Accept(accept) => {
                    let tasks: Vec<String> = accept
                        .operations
                        .iter()
                        .filter_map(|op| match &op.body {
                            strata_protocol::mesos::OperationBody::Launch(launch) => Some(launch),
                            _ => None,
                        })
                        .flat_map(|launch| launch.task_infos.iter().map(|t| t.task_id.to_string()))
                        .collect();
                    let offers: Vec<&str> = accept.offer_ids.iter().map(|o| o.as_str()).collect();
                    format!("{name} offers {offers:?} tasks {tasks:?} on {conn:?}")
                }
                CallBody::Kill(kill) => format!("{name} {}", kill.task_id),
                CallBody::Acknowledge(ack) => format!("{name} {}", ack.task_id),
                _ => format!("{name} on {conn:?}"),
            },
            _ => name.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Node,
    pub to: Node,
    pub payload: Payload,
}

/// The faults of one class of link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Whether delays may reorder messages on the link.
    pub reorder: bool,
    pub delay_min: Duration,
    pub delay_max: Duration,
}

impl LinkFaults {
    /// A reliable, ordered link with a small constant latency.
    pub fn none() -> LinkFaults {
        LinkFaults {
            drop: 0.0,
            duplicate: 0.0,
            reorder: false,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(1),
        }
    }
}

/// Counts of what the network did, for reports and sanity checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub cut_by_partition: u64,
}

pub struct SimNetwork {
    rng: SimRng,
    /// Keyed by delivery time, then by send order, so equal times deliver in send order.
    in_flight: BTreeMap<(Duration, u64), Envelope>,
    next_seq: u64,
    isolated: BTreeSet<Node>,
    /// The latest delivery time scheduled per FIFO link.
    link_tail: BTreeMap<(Node, Node), Duration>,
    pub agent_links: LinkFaults,
    pub framework_links: LinkFaults,
    pub stats: NetStats,
}

impl SimNetwork {
    pub fn new(rng: SimRng, agent_links: LinkFaults, framework_links: LinkFaults) -> SimNetwork {
        SimNetwork {
            rng,
            in_flight: BTreeMap::new(),
            next_seq: 0,
            isolated: BTreeSet::new(),
            link_tail: BTreeMap::new(),
            agent_links,
            framework_links,
            stats: NetStats::default(),
        }
    }

    /// Turns every fault off (partitions stay until healed).
    pub fn stop_faults(&mut self) {
        self.agent_links = LinkFaults::none();
        self.framework_links = LinkFaults::none();
    }

    fn faults(&self, from: Node, to: Node) -> LinkFaults {
        let touches_framework =
            matches!(from, Node::Framework(_)) || matches!(to, Node::Framework(_));
        if touches_framework {
            self.framework_links
        } else {
            self.agent_links
        }
    }

    fn cut(&self, from: Node, to: Node) -> bool {
        self.isolated.contains(&from) || self.isolated.contains(&to)
    }

    /// Sends a message at `now`; it is delivered later, twice, or never.
    pub fn send(&mut self, now: Duration, from: Node, to: Node, payload: Payload) {
        self.stats.sent += 1;
        if self.cut(from, to) {
            self.stats.cut_by_partition += 1;
            return;
        }
        let faults = self.faults(from, to);
        if self.rng.chance(faults.drop) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(faults.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.rng.duration(faults.delay_min, faults.delay_max);
            if !faults.reorder {
                let tail = self.link_tail.entry((from, to)).or_default();
                at = at.max(*tail);
                *tail = at;
            }
            self.next_seq += 1;
            let envelope = Envelope {
                from,
                to,
                payload: payload.clone(),
            };
            self.in_flight.insert((at, self.next_seq), envelope);
        }
    }

    /// Returns when the next message is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Duration> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the next message due at or before `now`; a message cut by a
    /// partition since it was sent is dropped and the next one tried.
    pub fn pop_due(&mut self, now: Duration) -> Option<Envelope> {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                return None;
            }
            let envelope = entry.remove();
            if self.cut(envelope.from, envelope.to) {
                self.stats.cut_by_partition += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Some(envelope);
        }
        None
    }

    /// Drops every message in flight to `node` (its process died with them unread).
    pub fn discard_to(&mut self, node: Node) {
        let before = self.in_flight.len();
        self.in_flight.retain(|_, envelope| envelope.to != node);
        self.stats.dropped += (before - self.in_flight.len()) as u64;
    }

    /// Drops every message in flight from `node`.
    pub fn discard_from(&mut self, node: Node) {
        let before = self.in_flight.len();
        self.in_flight.retain(|_, envelope| envelope.from != node);
        self.stats.dropped += (before - self.in_flight.len()) as u64;
    }

    /// Cuts `node` off from everyone.
    pub fn isolate(&mut self, node: Node) {
        self.isolated.insert(node);
    }

    pub fn heal(&mut self, node: Node) {
        self.isolated.remove(&node);
    }

    pub fn heal_all(&mut self) {
        self.isolated.clear();
    }

    pub fn is_isolated(&self, node: Node) -> bool {
        self.isolated.contains(&node)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_protocol::internal::{Message, Ping};

    fn ping(seq: u64) -> Payload {
        Payload::Internal(Message::Ping(Ping { seq }))
    }

    fn seq_of(envelope: &Envelope) -> u64 {
        match &envelope.payload {
            Payload::Internal(Message::Ping(ping)) => ping.seq,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_reliable_link_delivers_everything_in_order() {
        let mut net = SimNetwork::new(SimRng::new(1), LinkFaults::none(), LinkFaults::none());
        for seq in 0..10 {
            net.send(Duration::ZERO, Node::Master, Node::Agent(0), ping(seq));
        }
        let far = Duration::from_secs(1);
        let got: Vec<u64> = std::iter::from_fn(|| net.pop_due(far))
            .map(|e| seq_of(&e))
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn an_isolated_node_neither_sends_nor_receives_until_healed() {
        let mut net = SimNetwork::new(SimRng::new(1), LinkFaults::none(), LinkFaults::none());
        net.send(Duration::ZERO, Node::Master, Node::Agent(0), ping(1));
        net.isolate(Node::Agent(0));
        net.send(Duration::ZERO, Node::Agent(0), Node::Master, ping(2));
        assert!(
            net.pop_due(Duration::from_secs(1)).is_none(),
            "in-flight message cut"
        );
        net.heal(Node::Agent(0));
        net.send(
            Duration::from_secs(1),
            Node::Master,
            Node::Agent(0),
            ping(3),
        );
        let envelope = net
            .pop_due(Duration::from_secs(2))
            .expect("delivered after heal");
        assert_eq!(seq_of(&envelope), 3);
        assert_eq!(net.stats.cut_by_partition, 2);
    }

    #[test]
    fn faulty_links_drop_duplicate_and_reorder() {
        let faults = LinkFaults {
            drop: 0.2,
            duplicate: 0.2,
            reorder: true,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(100),
        };
        let mut net = SimNetwork::new(SimRng::new(3), faults, LinkFaults::none());
        for seq in 0..200 {
            net.send(Duration::ZERO, Node::Master, Node::Agent(0), ping(seq));
        }
        let got: Vec<u64> = std::iter::from_fn(|| net.pop_due(Duration::from_secs(1)))
            .map(|e| seq_of(&e))
            .collect();
        assert!(net.stats.dropped > 0 && net.stats.duplicated > 0);
        assert!(got.windows(2).any(|w| w[0] > w[1]), "some reordering");
        assert_eq!(
            got.len() as u64,
            200 - net.stats.dropped + net.stats.duplicated
        );
    }
}
