//! Messages between master and agent that are not part of the public API.

use serde::{Deserialize, Serialize};

/// A liveness probe. The master pings each agent; any node may ping another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub seq: u64,
}

/// The answer to a [`Ping`], echoing its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub seq: u64,
}

/// Every internal message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Ping(Ping),
    Pong(Pong),
}
