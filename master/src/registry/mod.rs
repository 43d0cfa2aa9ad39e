//! The master's registry: what must survive a master restart.
//!
//! As with Mesos's registrar (`src/master/registry.proto`), the registry holds the admitted
//! agents (with their drain and deactivation state), the unreachable agents with the time they
//! became unreachable, the agents marked gone, the role weights and the quota. Frameworks, tasks
//! and offers are not in it: a restarted master rebuilds them from reregistering agents and
//! resubscribing frameworks, and dynamic reservations come back with each agent's checkpointed
//! resources.
//!
//! The pure [`MasterState`](crate::state::MasterState) records a [`RegistryOp`] for every change
//! of registered facts; the actor applies it to a [`Registry`] before it sends anything that
//! depends on it, and a restarted master starts from [`Registry::state`].
//!
//! # Layout
//!
//! - this file: [`RegistryState`], [`RegistryOp`] and how one applies to the other (pure), the
//!   [`Registry`] trait and [`InMemoryRegistry`].
//! - `file`: [`FileRegistry`], an append-only operation log compacted into a snapshot, under the
//!   master's work dir.

mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_protocol::AgentId;
use strata_protocol::mesos::{AgentInfo, DrainConfig};

pub use file::{COMPACTION_THRESHOLD_DEFAULT, FORMAT_VERSION, FileRegistry};

/// An agent the registry admitted: it may reregister with its ID after a master restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmittedAgent {
    /// The agent's info with its `id` and its total resources.
    pub info: AgentInfo,
    /// True when the operator deactivated the agent (DEACTIVATE_AGENT or DRAIN_AGENT): its
    /// resources are not offered.
    pub deactivated: bool,
    /// Set while the agent drains or once it drained (DRAIN_AGENT).
    pub drain: Option<DrainRecord>,
}

/// A drain the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DrainRecord {
    pub config: DrainConfig,
    /// True once no task was left on the agent.
    pub drained: bool,
}

/// An agent marked unreachable, and since when (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreachableRecord {
    pub info: AgentInfo,
    pub since: f64,
}

/// Everything the registry holds. Each agent ID is in at most one of `agents`, `unreachable`
/// and `gone`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryState {
    pub agents: BTreeMap<AgentId, AdmittedAgent>,
    pub unreachable: BTreeMap<AgentId, UnreachableRecord>,
    /// Agents marked gone, with the time they were (seconds since the Unix epoch).
    pub gone: BTreeMap<AgentId, f64>,
    /// Role weights set by the operator.
    pub weights: BTreeMap<String, f64>,
    /// Quota limits per role (scalar resource name to amount).
    pub quota: BTreeMap<String, BTreeMap<String, f64>>,
}

/// One change to the registry.
///
/// Every operation sets the whole registered state of one agent, or all weights, or all quota,
/// so applying it again changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RegistryOp {
    /// Admits an agent or updates an admitted one (its info, drain or deactivation); an
    /// unreachable agent that came back leaves the unreachable ones.
    AdmitAgent(AdmittedAgent),
    /// The agent stopped answering, or did not reregister after a master restart.
    MarkUnreachable(UnreachableRecord),
    /// The operator marked the agent gone: it is refused from then on.
    MarkGone { agent_id: AgentId, at: f64 },
    /// The agent unregistered; it may register again only as a new agent.
    RemoveAgent { agent_id: AgentId },
    /// The role weights are now these.
    UpdateWeights(BTreeMap<String, f64>),
    /// The quota limits are now these.
    UpdateQuota(BTreeMap<String, BTreeMap<String, f64>>),
}

impl RegistryState {
    /// Applies `op`. Operations on agents the registry does not hold still take effect, since
    /// each states the agent's whole registered state.
    pub fn apply(&mut self, op: &RegistryOp) {
        match op {
            RegistryOp::AdmitAgent(agent) => {
                if let Some(agent_id) = &agent.info.id {
                    self.unreachable.remove(agent_id);
                    self.gone.remove(agent_id);
                    self.agents.insert(agent_id.clone(), agent.clone());
                }
            }
            RegistryOp::MarkUnreachable(record) => {
                if let Some(agent_id) = &record.info.id {
                    self.agents.remove(agent_id);
                    self.gone.remove(agent_id);
                    self.unreachable.insert(agent_id.clone(), record.clone());
                }
            }
            RegistryOp::MarkGone { agent_id, at } => {
                self.agents.remove(agent_id);
                self.unreachable.remove(agent_id);
                self.gone.insert(agent_id.clone(), *at);
            }
            RegistryOp::RemoveAgent { agent_id } => {
                self.agents.remove(agent_id);
                self.unreachable.remove(agent_id);
            }
            RegistryOp::UpdateWeights(weights) => self.weights = weights.clone(),
            RegistryOp::UpdateQuota(quota) => self.quota = quota.clone(),
        }
    }

    /// Returns true if the registry knows `agent_id` in any way (admitted, unreachable or
    /// gone).
    pub fn knows_agent(&self, agent_id: &AgentId) -> bool {
        self.agents.contains_key(agent_id)
            || self.unreachable.contains_key(agent_id)
            || self.gone.contains_key(agent_id)
    }
}

/// Why the registry could not load or store its state.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry i/o on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The stored state is damaged in a way that is not a write cut short by a crash; the
    /// master refuses to start rather than forget agents.
    #[error("registry file {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        offset: u64,
        reason: String,
    },
    #[error(
        "registry file {path} has format version {found}; this master reads version {supported}"
    )]
    UnsupportedVersion {
        path: std::path::PathBuf,
        found: u32,
        supported: u32,
    },
    /// Another process (a second master on the same work dir) holds the registry.
    #[error("registry {path} is in use by another process")]
    Locked { path: std::path::PathBuf },
    #[error("cannot encode a registry record: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// An earlier write failed in a way that left the files in doubt; the master must restart
    /// (and reload) before the registry takes writes again.
    #[error("the registry stopped taking writes after an earlier failure: {0}")]
    Poisoned(String),
}

/// Where the master keeps its registry.
///
/// `apply` must make the operation durable before it returns `Ok`: the actor sends replies that
/// depend on it (AgentRegistered, an operator's 200) only afterwards.
pub trait Registry: Send {
    /// Returns the registry's current state.
    fn state(&self) -> &RegistryState;

    /// Stores `op` and applies it to the state. On error the state is unchanged.
    fn apply(&mut self, op: &RegistryOp) -> Result<(), RegistryError>;
}

/// A registry that lives only as long as the process (`--registry=in_memory`): for tests, and
/// masters that need not survive restarts.
#[derive(Debug, Clone, Default)]
pub struct InMemoryRegistry {
    state: RegistryState,
}

impl InMemoryRegistry {
    /// Returns an empty registry.
    pub fn new() -> InMemoryRegistry {
        InMemoryRegistry::default()
    }

    /// Returns a registry holding `state`, as if a previous master had left it.
    pub fn with_state(state: RegistryState) -> InMemoryRegistry {
        InMemoryRegistry { state }
    }
}

impl Registry for InMemoryRegistry {
    fn state(&self) -> &RegistryState {
        &self.state
    }

    fn apply(&mut self, op: &RegistryOp) -> Result<(), RegistryError> {
        self.state.apply(op);
        Ok(())
    }
}
