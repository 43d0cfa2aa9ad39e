//! The Strata agent: runs tasks on one machine and reports them to the master.
//!
//! # Layout
//!
//! - [`containerizer`]: how a container's processes are started, confined, measured and stopped:
//!   the [`containerizer::Containerizer`] trait, plain process groups
//!   ([`containerizer::PosixContainerizer`]) and cgroups v1/v2
//!   ([`containerizer::CgroupsContainerizer`]).
//! - [`sandbox`]: the directory of each executor run under the work dir, and the safe resolution
//!   of user-given paths inside it for `/files/...`.
//!
//! - [`state`]: the pure `AgentState` (registration, executors, tasks, recovery) and
//!   [`status_updates`]: the pure status update manager.
//! - [`checkpoint`]: the durable metadata under `<work_dir>/meta/`, written in batches by a
//!   writer thread before the sends that depend on it.
//! - [`actor`]: the actix shell that executes the state's effects; [`server`] wires it up.
//! - [`http`]: `/state`, `/api/v1`, `/api/v1/executor`, `/files`, `/metrics`; [`metrics`].
//! - [`gc`]: sandbox garbage collection; [`detect`]: the machine's resources and attributes.

pub mod actor;
pub mod checkpoint;
pub mod containerizer;
pub mod detect;
pub mod gc;
pub mod http;
pub mod metrics;
pub mod reaper;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod status_updates;
