//! The Strata master: tracks agents, frameworks, offers and tasks, and decides who is offered
//! what.
//!
//! # Layout
//!
//! - [`state`]: `MasterState`, the master's pure state machine: frameworks, agents, offers,
//!   tasks, reconciliation. Stepped with inputs and the time; returns effects for the actor.
//! - [`allocator`]: the pure allocator. Hierarchical DRF over nested roles and then over each
//!   role's frameworks, with weights, quota limits, reservations, offer filters and
//!   suppress/revive, after Mesos's hierarchical allocator. It does no I/O, never reads the
//!   clock (`now` is an input) and is deterministic for a given seed, so it is tested with
//!   scenario and property tests and benchmarked on its own (`cargo bench -p strata-master
//!   --bench allocator`).
//! - [`registry`]: what survives a master restart (admitted, unreachable and gone agents,
//!   weights, quota), in memory or in an operation log and snapshot under the work dir.
//!
//! **Architecture invariant:** `allocator` imports no runtime, actor system or network type;
//! the master's actor calls it and turns its [`allocator::Allocation`]s into OFFERS events.

pub mod actor;
pub mod allocator;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod state;
