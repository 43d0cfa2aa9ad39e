//! Helpers shared by the transport tests: actors that forward what they receive to channels the
//! test awaits with a deadline, an echo actor, and node and envelope builders.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler};
use strata_protocol::internal::{Message, Ping, Pong};
use strata_protocol::{Body, Envelope, Epoch, FrameCodec, Hello, PROTOCOL_VERSION, PeerRole, Pid};
use strata_transport::{Delivery, LinkEvent, Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long a test waits for an event before failing. Generous, because CI machines are slow;
/// a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Forwards every delivery and link event to channels.
pub struct Collector {
    deliveries: mpsc::UnboundedSender<Envelope>,
    link_events: mpsc::UnboundedSender<LinkEvent>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Collector {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.deliveries.send(envelope);
    }
}

impl Handler<LinkEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: LinkEvent, _: &mut Context<Self>) {
        let _ = self.link_events.send(event);
    }
}

/// Stops the actor that receives it.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Collector {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        actix::ActorContext::stop(ctx);
    }
}

/// The receiving end of a [`Collector`].
pub struct Inbox {
    pub addr: Addr<Collector>,
    deliveries: mpsc::UnboundedReceiver<Envelope>,
    link_events: mpsc::UnboundedReceiver<LinkEvent>,
}

impl Inbox {
    pub fn start() -> Self {
        let (deliveries_tx, deliveries) = mpsc::unbounded_channel();
        let (link_events_tx, link_events) = mpsc::unbounded_channel();
        let addr = Collector {
            deliveries: deliveries_tx,
            link_events: link_events_tx,
        }
        .start();
        Self {
            addr,
            deliveries,
            link_events,
        }
    }

    pub async fn next_delivery(&mut self) -> Envelope {
        tokio::time::timeout(DEADLINE, self.deliveries.recv())
            .await
            .expect("no delivery before the deadline")
            .expect("collector stopped")
    }

    pub async fn next_link_event(&mut self) -> LinkEvent {
        tokio::time::timeout(DEADLINE, self.link_events.recv())
            .await
            .expect("no link event before the deadline")
            .expect("collector stopped")
    }

    /// Stops the collector and waits until it is gone (its channels close with it).
    pub async fn stop(mut self) {
        self.addr.do_send(Stop);
        let closed = tokio::time::timeout(DEADLINE, async {
            while self.deliveries.recv().await.is_some() {}
        });
        closed
            .await
            .expect("collector still running at the deadline");
    }

    pub fn no_pending_delivery(&mut self) -> bool {
        self.deliveries.try_recv().is_err()
    }
}

/// Answers every `Ping` with a `Pong` carrying the same sequence number.
pub struct Echo {
    node: Node,
    pid: Pid,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Echo {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        if let Body::Internal(Message::Ping(Ping { seq })) = envelope.body {
            let reply = pong(&self.pid, &envelope.from, seq);
            self.node.send(reply).expect("echo reply is queued");
        }
    }
}

/// Registers an [`Echo`] named `echo` on `node` and returns its pid.
pub fn start_echo(node: &Node) -> Pid {
    let pid = node.pid("echo").unwrap();
    let addr = Echo {
        node: node.clone(),
        pid: pid.clone(),
    }
    .start();
    node.register("echo", addr.recipient()).unwrap()
}

pub fn ping(from: &Pid, to: &Pid, seq: u64) -> Envelope {
    Envelope {
        from: from.clone(),
        to: to.clone(),
        epoch: Epoch::NONE,
        body: Body::Internal(Message::Ping(Ping { seq })),
    }
}

pub fn pong(from: &Pid, to: &Pid, seq: u64) -> Envelope {
    Envelope {
        from: from.clone(),
        to: to.clone(),
        epoch: Epoch::NONE,
        body: Body::Internal(Message::Pong(Pong { seq })),
    }
}

/// Returns the sequence number of a `Pong`, failing the test on anything else.
pub fn pong_seq(envelope: &Envelope) -> u64 {
    match &envelope.body {
        Body::Internal(Message::Pong(Pong { seq })) => *seq,
        other => panic!("expected a pong, got {other:?}"),
    }
}

pub fn ping_seq(envelope: &Envelope) -> u64 {
    match &envelope.body {
        Body::Internal(Message::Ping(Ping { seq })) => *seq,
        other => panic!("expected a ping, got {other:?}"),
    }
}

/// Config for a node on an ephemeral loopback port, with fast reconnection for tests.
pub fn listening_config() -> NodeConfig {
    fast(NodeConfig::listening(
        PeerRole::Master,
        "127.0.0.1:0".parse().unwrap(),
    ))
}

pub fn fast(mut config: NodeConfig) -> NodeConfig {
    config.backoff_initial = Duration::from_millis(5);
    config.backoff_max = Duration::from_millis(100);
    config.connect_timeout = Duration::from_secs(2);
    config.handshake_timeout = Duration::from_secs(2);
    config
}

pub fn listening_node() -> Node {
    Node::start(listening_config()).unwrap()
}

/// Sends a ping from `inbox_pid` to `echo` and waits for its pong.
pub async fn round_trip(node: &Node, inbox: &mut Inbox, inbox_pid: &Pid, echo: &Pid, seq: u64) {
    node.send(ping(inbox_pid, echo, seq)).unwrap();
    let reply = inbox.next_delivery().await;
    assert_eq!(pong_seq(&reply), seq);
    assert_eq!(&reply.from, echo);
}

/// Opens a raw connection to `addr` and completes a valid handshake as node `x.test:1`.
pub async fn raw_peer(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        role: PeerRole::Agent,
        node: "x.test:1".into(),
    };
    stream
        .write_all(&FrameCodec::new().encode_to_vec(&hello).unwrap())
        .await
        .unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("no hello before the deadline")
            .unwrap();
        assert!(n > 0, "node closed the connection during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        match FrameCodec::new().decode::<Hello>(&buf) {
            Ok((reply, used)) => {
                assert_eq!(reply.protocol_version, PROTOCOL_VERSION);
                assert_eq!(used, buf.len(), "node sent more than its hello");
                return stream;
            }
            Err(err) if err.is_incomplete() => {}
            Err(err) => panic!("invalid hello from node: {err}"),
        }
    }
}

/// Waits until the node closes `stream`: a read returns end of file, or a reset when the node
/// closed with unread bytes.
pub async fn expect_closed(stream: &mut TcpStream) {
    let mut chunk = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("connection still open at the deadline");
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(err) => panic!("unexpected read error: {err}"),
        }
    }
}

impl Inbox {
    pub fn no_pending_link_event(&mut self) -> bool {
        self.link_events.try_recv().is_err()
    }
}

/// Returns a pid on a loopback port nothing listens on: bound once to get a free port, then
/// released, so connecting to it is refused.
pub fn unused_port_pid(name: &str) -> Pid {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    Pid::new(name, "127.0.0.1", port).unwrap()
}

/// Waits until `condition` holds, failing the test at the deadline. For state the transport
/// changes without telling any actor (a link retiring); events are awaited directly instead.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not {what} at the deadline"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
