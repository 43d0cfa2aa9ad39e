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
//!
//! **Architecture invariant:** `allocator` imports no runtime, actor system or network type;
//! the master's actor calls it and turns its [`allocator::Allocation`]s into OFFERS events.

pub mod actor;
pub mod allocator;
pub mod http;
pub mod metrics;
pub mod server;
pub mod state;
