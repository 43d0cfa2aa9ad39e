//! Cross-process tests, simulations and benchmarks of Strata.
//!
//! # Layout
//!
//! - [`sim`]: a seeded, deterministic simulation of one `MasterState` with models of many
//!   agents and frameworks, over a simulated network that loses, duplicates, delays and
//!   reorders messages and partitions agents away. It checks the invariants of design.md
//!   after every step; `tests/sim_master.rs` runs it over many seeds, and a failure prints
//!   the `SEED=<n>` that replays it.
//! - [`cluster`]: a real master and agents in this process over TCP, the real `strata` binary
//!   as command executor, and a test scheduler, for end-to-end tests.
//! - [`http_framework`]: a framework on the master's Mesos v1 HTTP scheduler API, as a plain
//!   HTTP client.
//! - `src/bin/transport_bench.rs`: two-process throughput and latency of the actor transport.
//! - `tests/tidy.rs`: the architecture invariants of ARCHITECTURE.md, checked on the sources.

pub mod cluster;
pub mod http_framework;
pub mod sim;
