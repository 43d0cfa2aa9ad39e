//! The Mesos v1 executor API: `Call` (executor to agent) and `Event` (agent to executor).

use serde::{Deserialize, Serialize};

/// An executor's request to its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {}

/// Something the agent tells an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {}
