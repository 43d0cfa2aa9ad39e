//! Strata's actor transport: actix actors exchanging [`Envelope`]s over TCP.
//!
//! A process starts one [`Node`]. Its actors [`register`](Node::register) under a name and get
//! a [`Pid`] (`name@host:port`); anything in the process can [`send`](Node::send) an envelope
//! to any pid, local or remote; and an actor can [`link`](Node::link) to a remote pid to hear,
//! through [`LinkEvent`]s, when the connection to that pid's node breaks or comes back. Master,
//! agent and the framework SDK all talk through this crate.
//!
//! # Layout
//!
//! - `node`: the [`Node`] handle, the actor registry, the listener and the accept path.
//! - `link`: one task per peer node, owning a bounded outbound queue and the write half of the
//!   current connection; it batches writes, reconnects with backoff and tells watchers.
//! - `connection`: the `Hello` handshake on both sides and the read loop.
//! - [`frames`]: splitting a read buffer into frames (pure).
//! - [`backoff`]: reconnection delays (pure).
//! - [`stats`]: per-node counters ([`TransportStats`]) mirrored to the `metrics` facade.
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
//! need not listen at all.
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
//! # Threads
//!
//! Everything runs on the arbiter that started the node, next to the actors, because actix
//! arbiters are single-threaded: a task per connection reader and per link, no locks held
//! across awaits. The shared tables sit behind std locks only so that the handle is `Send` and
//! can be used from other arbiters too.

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
