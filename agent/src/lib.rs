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
//! Still to come, per the agent issue: `state` (the pure `AgentState`), `actor` (the actix shell
//! that drives it and the containerizer) and `http`.

pub mod actor;
pub mod checkpoint;
pub mod containerizer;
pub mod detect;
pub mod gc;
pub mod http;
pub mod metrics;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod status_updates;
