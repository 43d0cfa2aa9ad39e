//! The actix messages the transport sends to actors.

use actix::Message;
use strata_protocol::{Envelope, Pid};

/// An envelope for a local actor, from a peer or from a local sender. Every actor registered
/// with [`crate::Node::register`] handles it.
///
/// The envelope is wrapped rather than made an actix message itself because `Envelope` lives in
/// `strata-protocol`, which knows nothing of actix.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Delivery(pub Envelope);

/// Whether a link currently has a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// A connection to the peer's node completed its handshake.
    Connected,
    /// The connection broke, or the first attempt to open one failed.
    Disconnected,
}

/// Tells an actor that linked to `peer` (see [`crate::Node::link`]) that the connection to
/// the peer's node changed state. This is how a master learns that a framework or an agent went
/// away: the transport cannot tell a crashed peer from a partitioned one, so both read
/// `Disconnected`, and a later `Connected` means traffic flows again (possibly to a restarted
/// process).
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct LinkEvent {
    /// The pid the watcher linked to.
    pub peer: Pid,
    pub state: LinkState,
}
