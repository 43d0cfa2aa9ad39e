//! The framework SDK: libraries for programs that run on a Strata cluster.
//!
//! - [`executor`]: the executor side of the agent protocol ([`executor::ExecutorDriver`]) and
//!   the built-in command executor ([`executor::run_command_executor`]) that `strata executor`
//!   runs.
//! - [`scheduler`]: the scheduler side of the framework API. [`scheduler::Framework::builder`]
//!   subscribes to a master and returns a [`scheduler::Client`] for calls and a stream of
//!   typed [`scheduler::Event`]s, or drives a [`scheduler::Scheduler`] of async callbacks;
//!   [`scheduler::TaskSpec`] describes tasks and [`scheduler::Offers::pack`] fits them into
//!   offers. The SDK reconnects, resubscribes, reconciles, acknowledges and declines unused
//!   offers by itself.

pub mod executor;
pub mod scheduler;
