//! The framework SDK: libraries for programs that run on a Strata cluster.
//!
//! - [`executor`]: the executor side of the agent protocol ([`executor::ExecutorDriver`]) and
//!   the built-in command executor ([`executor::run_command_executor`]) that `strata executor`
//!   runs.

pub mod executor;
