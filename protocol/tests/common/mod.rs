//! Helpers shared by the integration tests of `strata-protocol`.
#![allow(dead_code)]

pub mod arbitrary;
