//! Strata's actor transport: actix actors exchanging [`Envelope`]s over TCP.
//!
//! A process starts one [`Node`]. Its actors [`register`](Node::register) under a name and get
//! a [`Pid`] (`name@host:port`); anything in the process can [`send`](Node::send) an envelope
//! to any pid, local or remote; and an actor can [`link`](Node::link) to a remote pid to hear,
//! through [`LinkEvent`]s, when the connection to that pid's node breaks or comes back. Master,
//! agent and the framework SDK all talk through this crate.
//!
//! ```no_run
//! use actix::{Actor, Context, Handler};
//! use strata_protocol::internal::{Message, Ping};
//! use strata_protocol::{Body, Envelope, Epoch, PeerRole, Pid};
//! use strata_transport::{Delivery, LinkEvent, Node, NodeConfig};
//!
//! struct Master;
//!
//! impl Actor for Master {
//!     type Context = Context<Self>;
//! }
//!
//! impl Handler<Delivery> for Master {
//!     type Result = ();
//!     fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
//!         // Dispatch on `envelope.body`; reply to `envelope.from`.
//!     }
//! }
//!
//! impl Handler<LinkEvent> for Master {
//!     type Result = ();
//!     fn handle(&mut self, event: LinkEvent, _: &mut Context<Self>) {
//!         // `event.peer` went `Disconnected` (or came back `Connected`).
//!     }
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     actix_rt::System::new().block_on(async {
//!         let config = NodeConfig::listening(PeerRole::Master, "0.0.0.0:5050".parse()?);
//!         let node = Node::start(config)?;
//!         let master = Master.start();
//!         let me = node.register("master", master.clone().recipient())?;
//!         let agent: Pid = "agent@10.0.0.2:5051".parse()?;
//!         node.link(master.recipient(), &agent);
//!         let body = Body::Internal(Message::Ping(Ping { seq: 1 }));
//!         node.send(Envelope { from: me, to: agent, epoch: Epoch::NONE, body })?;
//!         anyhow::Ok(())
//!     })
//! }
//! ```
//!
//! An actor registered with a node handles [`Delivery`]; an actor that links handles
//! [`LinkEvent`].
//!
//! # Layout
//!
//! - `node`: the [`Node`] handle, the actor registry, the link table, the listener and the
//!   accept path.
//! - `link`: one task per peer node, owning a bounded outbound queue and the write half of the
//!   current connection; it batches writes, reconnects with backoff, tells watchers and retires
//!   when idle.
//! - `connection`: the `Hello` handshake on both sides and the read loop.
//! - [`frames`]: splitting a read buffer into frames (pure).
//! - [`backoff`]: reconnection delays (pure).
//! - [`stats`]: per-node counters ([`TransportStats`]) mirrored to the `metrics` facade, and the
//!   metric names.
//! - [`messages`]: what actors receive: [`Delivery`] and [`LinkEvent`].
//! - [`config`] and [`error`].
//!
//! # Wire
//!
//! One TCP connection per pair of nodes. The side that connects sends a `Hello` (protocol
//! version, role, advertised `host:port`) and the acceptor answers with its own; a wrong version
//! or a missing or garbled `Hello` within the handshake timeout closes that connection. Then
//! both directions carry frames (u32 big-endian length, MessagePack envelope; see
//! `strata_protocol::codec`). The acceptor files the connection under the node the peer
//! advertised, so replies go back on it: a peer that cannot be reached (a framework behind NAT)
//! need not listen at all. When two nodes connect to each other at once, both keep the
//! connection opened by the lower node name and drain the other.
//!
//! # Links
//!
//! Each peer node has a link with a bounded queue ([`NodeConfig::queue_bound`], 64Ki envelopes
//! by default); [`Node::send`] never waits and drops what does not fit, while
//! [`Node::send_wait`] waits for room. A link without a connection connects out while it has
//! something to send or someone linked to it, backing off exponentially with jitter between
//! attempts, and tells linked actors `Disconnected` when a connection breaks or the first
//! attempt fails, `Connected` when one is up. Envelopes stay queued while the link is down;
//! those in a write that fails are lost. Envelopes sent over one connection arrive in order.
//!
//! # Failure
//!
//! Invalid input (oversized or empty frame, malformed MessagePack, trailing bytes, nesting too
//! deep, a body that is not an envelope) closes only the connection it came on, with a warning
//! naming the reason and a count in `strata_transport_connections_closed_total{reason}`; every
//! other connection carries on. Envelopes for unknown actors and envelopes beyond a link's queue
//! bound are dropped and counted in `strata_transport_dropped_messages_total{reason}`. Delivery
//! is best effort, as in libprocess: protocols above (status update acknowledgements,
//! re-registration) make up for envelopes lost when a connection breaks.
//!
//! # Threads and speed
//!
//! Every task of a node (the listener, one per link, one per connection reader) runs on the
//! arbiter that started it, next to the actors, whichever thread the handle is used from. The
//! shared tables sit behind std locks, never held across an await, so that the handle is
//! `Send`. A link writes everything queued in one buffer per syscall (`TCP_NODELAY`, since the
//! batching is done here); a reader decodes every frame of a 256 KiB read, handing at most 256
//! envelopes to mailboxes before it lets the actors run. Between two processes on a 2-core
//! machine that moves over 500,000 small envelopes a second one way, with round trips around
//! 35 us at the median (`cargo run --release -p strata-integration --bin transport-bench`).

pub mod backoff;
pub mod config;
mod connection;
pub mod error;
pub mod frames;
mod link;
pub mod messages;
mod node;
pub mod stats;

pub use config::{NodeConfig, QUEUE_BOUND_DEFAULT};
pub use error::{SendError, TransportError};
pub use messages::{Delivery, LinkEvent, LinkState};
pub use node::Node;
pub use stats::{CloseReason, DropReason, TransportStats};
pub use strata_protocol::{Envelope, Pid};
