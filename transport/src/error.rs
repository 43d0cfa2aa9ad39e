//! Errors at the crate boundary.

use std::io;

use strata_protocol::envelope::PidError;

/// Why a node could not start or an actor could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("invalid actor name: {0}")]
    InvalidName(#[from] PidError),
    #[error("an actor named {0:?} is already registered")]
    NameTaken(String),
}

/// Why [`crate::Node::send`] did not take an envelope. Each case is also counted in the
/// node's stats, so callers that treat sends as fire-and-forget may ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the outbound queue to the peer is full")]
    QueueFull,
    #[error("no local actor has that name")]
    NoSuchActor,
    #[error("the node is shut down")]
    Shutdown,
}
