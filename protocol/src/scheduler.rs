//! The Mesos v1 scheduler API: `Call` (framework to master) and `Event` (master to framework).

use serde::{Deserialize, Serialize};

/// A framework's request to the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {}

/// Something the master tells a framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {}
