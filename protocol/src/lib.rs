//! Strata's wire vocabulary: every message type, the resource model and the frame codec.
//!
//! This crate does no I/O and depends on no other workspace crate, so that the codec and the
//! resource algebra can be tested and fuzzed on their own.
//!
//! # Layout
//!
//! - [`ids`]: validated ID newtypes (`FrameworkId`, `AgentId`, `OfferId`, `TaskId`, ...).
//! - [`resources`]: `Resource` (wire form) and `Resources` (arithmetic with Mesos's fixed-point
//!   scalars, ranges, sets, roles and reservations).
//! - [`mesos`]: the common Mesos v1 types (`FrameworkInfo`, `TaskInfo`, `TaskStatus`, ...).
//! - [`scheduler`] and [`executor`]: the v1 `Call`/`Event` pairs of the public APIs.
//! - [`internal`]: master <-> agent messages, which need no Mesos compatibility.
//! - [`envelope`]: pids (`name@host:port`), epochs, the connection handshake and the envelope.
//! - [`codec`]: u32 big-endian length plus MessagePack body, with size and depth limits.
//!
//! Public API types serialise to the Mesos v1 JSON form (snake_case fields, enum names as strings,
//! `{"value": ...}` IDs, base64 `bytes`), and the same serde impls give the MessagePack form.

pub mod codec;
pub mod envelope;
pub mod executor;
pub mod ids;
pub mod internal;
pub mod mesos;
pub mod resources;
pub mod scheduler;

pub use codec::{EncodeError, FrameCodec, FrameError};
pub use envelope::{Body, Envelope, Epoch, Hello, PROTOCOL_VERSION, PeerRole, Pid};
pub use ids::{
    AgentId, ContainerId, ExecutorId, FrameworkId, IdError, OfferId, OperationId, TaskId,
};
pub use resources::{Resource, Resources};
