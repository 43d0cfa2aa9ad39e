//! Helpers for end-to-end tests over real TCP: test peers (an agent or a framework as a
//! transport node in the test process) and a bare HTTP/1.1 client for the master's port.

use std::net::SocketAddr;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use serde_json::{Value, json};
use strata_protocol::internal::{self, Message};
use strata_protocol::scheduler::{Call, CallBody, Event};
use strata_protocol::{Body, Envelope, Epoch, PeerRole, Pid, Resources};
use strata_transport::{Delivery, Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// Forwards every envelope to the test.
pub struct Forward(pub mpsc::UnboundedSender<Envelope>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Forward {
    type Result = ();
    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.0.send(envelope);
    }
}

/// A peer of the master: a node with one actor whose inbox the test reads.
pub struct Peer {
    pub node: Node,
    pub pid: Pid,
    pub inbox: mpsc::UnboundedReceiver<Envelope>,
    /// The master it sends to; a test points it at a restarted master.
    pub master: Pid,
}

impl Peer {
    pub fn start(role: PeerRole, name: &str, host: &str, master: &Pid) -> Peer {
        let node = Node::start(NodeConfig::connect_only(role, host, 1)).unwrap();
        let (tx, inbox) = mpsc::unbounded_channel();
        let pid = node
            .register(name, Forward(tx).start().recipient())
            .unwrap();
        Peer {
            node,
            pid,
            inbox,
            master: master.clone(),
        }
    }

    pub fn send(&self, body: Body) {
        let envelope = Envelope {
            from: self.pid.clone(),
            to: self.master.clone(),
            epoch: Epoch::NONE,
            body,
        };
        self.node.send(envelope).unwrap();
    }

    /// Sends RegisterAgent for an agent with `resources` (Mesos text form).
    pub fn register_agent(&self, resources: &str) {
        let resources = Resources::parse(resources, "*").unwrap().to_wire();
        let agent_info = json!({"hostname": "agent.test", "resources": resources});
        let register = internal::RegisterAgent {
            agent_info: serde_json::from_value(agent_info).unwrap(),
            checkpointed_resources: vec![],
            version: "test".into(),
            capabilities: vec![],
        };
        self.send(Body::Internal(register.into()));
    }

    /// Waits for AgentRegistered and returns the assigned ID.
    pub async fn registered(&mut self) -> strata_protocol::AgentId {
        self.expect("AgentRegistered", |body| match body {
            Body::Internal(Message::AgentRegistered(registered)) => Some(registered.agent_id),
            _ => None,
        })
        .await
    }

    /// Sends SUBSCRIBE for a new framework called `name`.
    pub fn subscribe(&self, name: &str) {
        let info = json!({"framework_info": {"user": "root", "name": name}});
        let subscribe = serde_json::from_value(info).unwrap();
        let body = CallBody::Subscribe(Box::new(subscribe));
        self.send(Body::SchedulerCall(Call {
            framework_id: None,
            body,
        }));
    }

    /// Waits for SUBSCRIBED and returns the framework's ID.
    pub async fn subscribed(&mut self) -> strata_protocol::FrameworkId {
        self.expect("SUBSCRIBED", |body| match body {
            Body::SchedulerEvent(Event::Subscribed(subscribed)) => Some(subscribed.framework_id),
            _ => None,
        })
        .await
    }

    /// Waits for an OFFERS event and returns its first offer.
    pub async fn next_offer(&mut self) -> strata_protocol::mesos::Offer {
        self.expect("OFFERS", |body| match body {
            Body::SchedulerEvent(Event::Offers(offers)) => offers.offers.into_iter().next(),
            _ => None,
        })
        .await
    }

    /// Waits for the next envelope whose body `pick` accepts, skipping others.
    pub async fn expect<T>(&mut self, what: &str, pick: impl Fn(Body) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let envelope = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("inbox open");
            if let Some(found) = pick(envelope.body) {
                return found;
            }
        }
    }
}

/// One HTTP/1.1 request over a fresh connection; returns the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, dechunk(&body))
}

/// Removes chunked transfer encoding, if present.
pub fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, tail)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
}

pub async fn operator(addr: SocketAddr, call: Value) -> Value {
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        call.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
