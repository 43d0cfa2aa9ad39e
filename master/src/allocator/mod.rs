//! The master's allocator: hierarchical DRF over roles and frameworks, with weights, quota
//! limits, reservations, offer filters and suppress/revive, as in Mesos's hierarchical
//! allocator (`src/master/allocator/mesos/hierarchical.cpp`).
//!
//! The allocator is a plain value: the master calls it with events (agents and frameworks
//! coming and going, resources recovered) and runs [`Allocator::allocate`] every allocation
//! interval and after events. It never reads the clock (time arrives as `now`, a `Duration`
//! since an arbitrary origin), draws randomness only from a seeded generator it holds, and
//! iterates only ordered maps, so the same inputs always give the same offers.
//!
//! # Accounting
//!
//! Each agent's total is split into *available*, *offered* and *used* resources, per
//! `(framework, role)`. An allocation run moves available resources into offers. The master
//! then reports what happened to each offer: [`Allocator::use_offered`] when an ACCEPT used
//! part of it, [`Allocator::recover_resources`] for what a DECLINE, a rescind, the unused
//! part of an ACCEPT or a finished task gives back. Invariant: available + offered + used is
//! always the agent's total, so offered + used never exceed it.
//!
//! # Layout
//!
//! - `quantities`: interned scalar names and fixed-point vectors for the hot path.
//! - `sorter`: the role tree and the DRF orders of roles and frameworks.
//! - `frameworks`: frameworks' roles, activation, suppression and minimum offers.
//! - `filters`: refused-offer filters.
//! - `quota`: quota validation, headroom and shrinking offers to fit.
//! - `allocate`: the allocation run itself.
//! - `agents`: per-agent accounting.
//! - `stats`: read-only views for GET_ROLES, `/state` and metrics.
//! - `rng`: the seeded generator that shuffles agents.
//!
//! `README.md` beside this file maps master events to calls and lists where the semantics
//! differ from Mesos.

mod agents;
mod allocate;
mod filters;
mod frameworks;
mod quantities;
mod quota;
mod rng;
mod sorter;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strata_protocol::resources::validate_role;
use strata_protocol::{AgentId, FrameworkId, Resources};

use agents::Agent;
use frameworks::Framework;
use quantities::{Quantities, ScalarNames};
use rng::SplitMix64;
use sorter::RoleTree;

pub use quota::QuotaLimits;
pub use stats::{AgentView, HoldingView, RoleStats};

/// How the allocator is tuned; the defaults are Mesos's.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// An offer is made only if it contains at least one of these (scalar) quantities, so that
    /// frameworks are not sent crumbs they cannot use (`--min_allocatable_resources`). An
    /// empty list allows any non-empty offer.
    pub min_allocatable: Vec<Resources>,
    /// Resource names that do not count toward dominant shares
    /// (`--fair_sharing_excluded_resource_names`), typically `gpus`.
    pub fair_sharing_excluded: BTreeSet<String>,
    /// The refusal a filter gets when the framework gives none (`Filters.refuse_seconds`).
    pub filter_default: Duration,
    /// The longest refusal honoured; longer ones are capped.
    pub refuse_max: Duration,
    /// Seeds the generator that shuffles agents before each run.
    pub seed: u64,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        let min_allocatable = ["cpus:0.01", "mem:32"]
            .iter()
            .filter_map(|text| Resources::parse(text, "*").ok())
            .collect();
        AllocatorConfig {
            min_allocatable,
            fair_sharing_excluded: BTreeSet::new(),
            filter_default: Duration::from_secs(5),
            refuse_max: Duration::from_secs(365 * 24 * 60 * 60),
            seed: 0,
        }
    }
}

impl AllocatorConfig {
    /// Turns a `Filters.refuse_seconds` from the wire into a refusal, as Mesos does: absent,
    /// negative or not a number gives the default; more than the maximum gives the maximum.
    pub fn refuse_duration(&self, refuse_seconds: Option<f64>) -> Duration {
        match refuse_seconds {
            Some(secs) if secs.is_finite() && secs >= 0.0 => {
                if secs >= self.refuse_max.as_secs_f64() {
                    self.refuse_max
                } else {
                    Duration::from_secs_f64(secs)
                }
            }
            Some(secs) if secs == f64::INFINITY => self.refuse_max,
            _ => self.filter_default,
        }
    }
}

/// Why the allocator refused a call; the caller's state is unchanged when it does.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocatorError {
    #[error("agent {0} is already added")]
    DuplicateAgent(AgentId),
    #[error("agent {0} is not known")]
    UnknownAgent(AgentId),
    #[error("framework {0} is already added")]
    DuplicateFramework(FrameworkId),
    #[error("framework {0} is not known")]
    UnknownFramework(FrameworkId),
    #[error("invalid role '{role}': {reason}")]
    InvalidRole { role: String, reason: String },
    #[error("weight {weight} of role '{role}' must be greater than zero")]
    InvalidWeight { role: String, weight: f64 },
    #[error("invalid quota for role '{role}': {reason}")]
    InvalidQuota { role: String, reason: String },
    #[error("agent {agent_id}: total {total} does not contain what is offered or used ({held})")]
    TotalBelowHeld {
        agent_id: AgentId,
        total: Resources,
        held: Resources,
    },
    #[error("resources {0} must all be allocated to one role")]
    NotAllocatedToOneRole(Resources),
    #[error("cannot convert {consumed} into {converted}: {reason}")]
    InvalidConversion {
        consumed: Resources,
        converted: Resources,
        reason: &'static str,
    },
    #[error("framework {framework_id} does not hold {resources} on agent {agent_id}")]
    NotHeld {
        framework_id: FrameworkId,
        agent_id: AgentId,
        resources: Resources,
    },
}

/// One offer to make: `resources` of `agent_id`, allocated to `role` (their
/// `allocation_info.role` is set), for `framework_id`.
///
/// The resources are shared with the allocator's own record of the offer rather than copied:
/// a copy of an agent's resources is the largest single cost of an offer. They read like a
/// `Resources` (`to_wire()`, `cpus()`, `&allocation.resources` as `&Resources`).
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub role: String,
    pub resources: Arc<Resources>,
}

/// Outstanding offers the master should rescind to bring a role back under a lowered quota
/// limit: every offer of `framework_id` on `agent_id` for `role`, which together hold
/// `resources`. The master rescinds them and then recovers their resources.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferRescind {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub role: String,
    pub resources: Resources,
}

/// A framework ID shared by the allocator's indexes: cloning it in the hot path is a
/// reference-count increment rather than a string copy.
pub(crate) type FrameworkKey = Arc<FrameworkId>;

/// The allocator; see the module documentation.
#[derive(Debug, Clone)]
pub struct Allocator {
    config: AllocatorConfig,
    /// `config.min_allocatable` as quantities.
    min_allocatable: Vec<Quantities>,
    names: ScalarNames,
    /// The sum of every agent's total, the denominator of every share.
    total: Quantities,
    roles: RoleTree,
    agents: Vec<Option<Agent>>,
    agent_index: BTreeMap<AgentId, usize>,
    free_agent_slots: Vec<usize>,
    /// Active agents with something available: the only ones a run needs to visit.
    offerable: BTreeSet<usize>,
    frameworks: BTreeMap<FrameworkKey, Framework>,
    /// The quota limits as the operator set them, for GET_QUOTA.
    quotas: BTreeMap<String, QuotaLimits>,
    next_filter_expiry: Option<Duration>,
    rng: SplitMix64,
    /// Reused for the role order of each agent, to keep allocations out of the hot loop.
    order_buffer: Vec<usize>,
    /// How many frameworks set their own minimal allocatable quantities; while none does, a
    /// run checks an offer's size once per role instead of once per framework.
    n_min_allocatable_overrides: usize,
}

impl Allocator {
    /// Returns an allocator with no agents and no frameworks.
    pub fn new(config: AllocatorConfig) -> Allocator {
        let mut names = ScalarNames::new(config.fair_sharing_excluded.clone());
        for quantities in &config.min_allocatable {
            names.intern_all(quantities);
        }
        let min_allocatable = config
            .min_allocatable
            .iter()
            .map(|quantities| names.quantities(quantities))
            .collect();
        Allocator {
            rng: SplitMix64::new(config.seed),
            config,
            min_allocatable,
            names,
            total: Quantities::default(),
            roles: RoleTree::default(),
            agents: Vec::new(),
            agent_index: BTreeMap::new(),
            free_agent_slots: Vec::new(),
            offerable: BTreeSet::new(),
            frameworks: BTreeMap::new(),
            quotas: BTreeMap::new(),
            next_filter_expiry: None,
            order_buffer: Vec::new(),
            n_min_allocatable_overrides: 0,
        }
    }

    /// Returns the configuration.
    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    /// Sets role weights (UPDATE_WEIGHTS): all or nothing, each finite and above zero. Roles
    /// not named keep their weight. Offers already made are not rebalanced, as in Mesos.
    pub fn update_weights(&mut self, weights: BTreeMap<String, f64>) -> Result<(), AllocatorError> {
        for (role, &weight) in &weights {
            validate_role(role).map_err(|err| AllocatorError::InvalidRole {
                role: role.clone(),
                reason: err.to_string(),
            })?;
            if !(weight.is_finite() && weight > 0.0) {
                return Err(AllocatorError::InvalidWeight {
                    role: role.clone(),
                    weight,
                });
            }
        }
        for role in weights.keys() {
            self.roles.ensure(role);
        }
        self.roles.update_weights(&weights);
        Ok(())
    }
}

/// Returns the one role all of `resources` are allocated to.
fn allocation_role(resources: &Resources) -> Result<String, AllocatorError> {
    let mut allocations = resources.allocations();
    match allocations.pop_first() {
        Some((role, allocated)) if allocations.is_empty() && allocated == *resources => Ok(role),
        _ => Err(AllocatorError::NotAllocatedToOneRole(resources.clone())),
    }
}
