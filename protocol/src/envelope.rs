//! What travels between processes: the handshake that opens a connection and the envelopes that
//! follow it.
//!
//! An actor is addressed like a libprocess process, `name@host:port` (a [`Pid`]). Every envelope
//! names its sender and receiver and carries the sender's leader epoch, so a receiver can fence
//! messages from a deposed master.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{executor, internal, scheduler};

/// The version of the actor protocol spoken by this build. Peers with another version are refused
/// at the handshake, before any envelope is decoded.
pub const PROTOCOL_VERSION: u32 = 1;

/// The address of an actor: `name@host:port`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid {
    name: String,
    host: String,
    port: u16,
}

/// Why a string is not a valid [`Pid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidError {
    #[error("pid {0:?} is not of the form name@host:port")]
    Shape(String),
    #[error("pid name {0:?} must be 1-255 bytes of printable characters without '@'")]
    Name(String),
    #[error("pid host {0:?} must be 1-255 bytes of printable characters")]
    Host(String),
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl Pid {
    /// Builds a pid from its parts.
    pub fn new(
        name: impl Into<String>,
        host: impl Into<String>,
        port: u16,
    ) -> Result<Self, PidError> {
        let name = name.into();
        let host = host.into();
        if !printable(&name) || name.contains('@') {
            return Err(PidError::Name(name));
        }
        if !printable(&host) {
            return Err(PidError::Host(host));
        }
        Ok(Self { name, host, port })
    }

    /// Returns the actor's name, unique within its node.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the host part, as the node advertised it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the port the node listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns `host:port`, the node this actor lives in.
    pub fn node(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.name, self.host, self.port)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({self})")
    }
}

impl FromStr for Pid {
    type Err = PidError;

    fn from_str(s: &str) -> Result<Self, PidError> {
        let shape = || PidError::Shape(s.to_owned());
        let (name, node) = s.split_once('@').ok_or_else(shape)?;
        // `rsplit_once` so that a bracketed IPv6 host keeps its colons.
        let (host, port) = node.rsplit_once(':').ok_or_else(shape)?;
        let port = port.parse::<u16>().map_err(|_| shape())?;
        Self::new(name, host, port)
    }
}

impl Serialize for Pid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A leader epoch: the create revision of the leader key in etcd, or the in-process lease's term.
/// Senders that are not masters use [`Epoch::NONE`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch carried by messages from anything but a leading master.
    pub const NONE: Epoch = Epoch(0);
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What kind of process is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    Master,
    Agent,
    Scheduler,
    Executor,
    /// A command-line tool or benchmark.
    Tool,
}

/// The first frame each side sends on a new connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub role: PeerRole,
    /// The `host:port` the sender is known by: the pids of its actors end in it, and envelopes
    /// for them may be sent back on this connection.
    pub node: String,
}

/// The message inside an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A framework to the master.
    SchedulerCall(scheduler::Call),
    /// The master to a framework.
    SchedulerEvent(scheduler::Event),
    /// An executor to its agent.
    ExecutorCall(executor::Call),
    /// An agent to one of its executors.
    ExecutorEvent(executor::Event),
    /// Master and agent to each other.
    Internal(internal::Message),
}

/// One addressed message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: Pid,
    pub to: Pid,
    pub epoch: Epoch,
    pub body: Body,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_parses_and_prints() {
        let pid: Pid = "master@10.0.0.1:5050".parse().unwrap();
        assert_eq!(
            (pid.name(), pid.host(), pid.port()),
            ("master", "10.0.0.1", 5050)
        );
        assert_eq!(pid.to_string(), "master@10.0.0.1:5050");
        assert_eq!(pid.node(), "10.0.0.1:5050");
        let v6: Pid = "agent@[::1]:5051".parse().unwrap();
        assert_eq!(v6.host(), "[::1]");
    }

    #[test]
    fn pid_rejects_bad_shapes() {
        for bad in [
            "",
            "master",
            "master@host",
            "@h:1",
            "m@:1",
            "m@h:99999",
            "a b@h:1",
            "m@h:x",
        ] {
            assert!(bad.parse::<Pid>().is_err(), "{bad:?} should not parse");
        }
    }

    /// Envelopes move by value through link queues and actor mailboxes, so their size is a
    /// per-message cost; large payloads are boxed to keep it small. This fails if a new large
    /// variant is added unboxed.
    #[test]
    fn envelope_stays_small() {
        let size = std::mem::size_of::<Envelope>();
        assert!(
            size <= 256,
            "Envelope is {size} bytes; box the large payload that grew it"
        );
    }

    #[test]
    fn pid_serialises_as_string() {
        let pid: Pid = "scheduler(1)@127.0.0.1:40000".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&pid).unwrap(),
            r#""scheduler(1)@127.0.0.1:40000""#
        );
        let err = serde_json::from_str::<Pid>(r#""nope""#).unwrap_err();
        assert!(err.to_string().contains("name@host:port"));
    }
}
