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
mod quantities;
mod quota;
mod rng;
mod sorter;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strata_protocol::resources::{Milli, validate_role};
use strata_protocol::{AgentId, FrameworkId, Resources};

use agents::Agent;
use filters::{OfferFilter, OfferFilters};
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
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub role: String,
    pub resources: Resources,
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

/// A framework as the allocator sees it.
#[derive(Debug, Clone)]
struct Framework {
    id: FrameworkKey,
    /// False for a placeholder: an agent reported resources used by a framework that has not
    /// subscribed (again) yet, as after a master failover.
    registered: bool,
    active: bool,
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    filters: OfferFilters,
    /// The `(agent slot, role index)` pairs where the framework holds resources.
    holdings: BTreeSet<(usize, usize)>,
    /// The framework's own minimal allocatable quantities by role index
    /// (`FrameworkInfo.offer_filters`), which replace the configured ones for that role.
    min_allocatable: BTreeMap<usize, Vec<Quantities>>,
}

impl Framework {
    fn new(id: FrameworkKey) -> Framework {
        Framework {
            id,
            registered: false,
            active: false,
            roles: BTreeSet::new(),
            suppressed: BTreeSet::new(),
            filters: OfferFilters::default(),
            holdings: BTreeSet::new(),
            min_allocatable: BTreeMap::new(),
        }
    }

    /// Returns true if the framework may be offered resources in `role`.
    fn wants(&self, role: &str) -> bool {
        self.registered
            && self.active
            && self.roles.contains(role)
            && !self.suppressed.contains(role)
    }
}

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

    /// Adds a framework subscribed to `roles`, with `suppressed_roles` (a subset of `roles`)
    /// suppressed from the start, as SUBSCRIBE allows.
    pub fn add_framework(
        &mut self,
        framework_id: FrameworkId,
        roles: BTreeSet<String>,
        suppressed_roles: BTreeSet<String>,
        active: bool,
    ) -> Result<(), AllocatorError> {
        validate_roles(&roles, &suppressed_roles)?;
        let framework = self.framework_entry(&framework_id);
        if framework.registered {
            return Err(AllocatorError::DuplicateFramework(framework_id));
        }
        framework.registered = true;
        framework.active = active;
        framework.roles = roles;
        framework.suppressed = suppressed_roles;
        self.refresh_eligibility(&framework_id);
        Ok(())
    }

    /// Changes a framework's roles and suppressed roles (UPDATE_FRAMEWORK, resubscription).
    ///
    /// What the framework holds in a role it leaves stays accounted to that role until it is
    /// recovered; the master rescinds those offers. Filters for the roles it leaves are
    /// dropped, as in Mesos.
    pub fn update_framework(
        &mut self,
        framework_id: &FrameworkId,
        roles: BTreeSet<String>,
        suppressed_roles: BTreeSet<String>,
    ) -> Result<(), AllocatorError> {
        validate_roles(&roles, &suppressed_roles)?;
        let framework = self.registered_framework(framework_id)?;
        let left: Vec<String> = framework.roles.difference(&roles).cloned().collect();
        framework.roles = roles;
        framework.suppressed = suppressed_roles;
        let key = framework.id.clone();
        for role in &left {
            if let Some(role_idx) = self.roles.get(role) {
                self.set_eligible(role_idx, &key, false);
                if let Some(framework) = self.frameworks.get_mut(framework_id) {
                    framework.filters.clear_role(role_idx);
                }
            }
        }
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Sets the framework's own minimal allocatable quantities per role, replacing earlier
    /// ones, as `FrameworkInfo.offer_filters` does at SUBSCRIBE and UPDATE_FRAMEWORK: in a
    /// role listed here the framework is offered only what holds one of its quantities (any
    /// non-empty offer if the list is empty) instead of the configured `min_allocatable`.
    pub fn update_min_allocatable(
        &mut self,
        framework_id: &FrameworkId,
        by_role: BTreeMap<String, Vec<Resources>>,
    ) -> Result<(), AllocatorError> {
        let roles: BTreeSet<String> = by_role.keys().cloned().collect();
        validate_roles(&roles, &BTreeSet::new())?;
        self.registered_framework(framework_id)?;
        let mut overrides = BTreeMap::new();
        for (role, minimums) in by_role {
            let role_idx = self.roles.ensure(&role);
            let minimums = minimums
                .iter()
                .map(|minimum| {
                    self.names.intern_all(minimum);
                    self.names.quantities(minimum)
                })
                .collect();
            overrides.insert(role_idx, minimums);
        }
        let framework = self.registered_framework(framework_id)?;
        let had = !framework.min_allocatable.is_empty();
        let has = !overrides.is_empty();
        framework.min_allocatable = overrides;
        self.n_min_allocatable_overrides =
            self.n_min_allocatable_overrides + usize::from(has) - usize::from(had);
        Ok(())
    }

    /// Removes a framework and returns everything it holds (offered and used) to the pool;
    /// the master rescinds its offers and later recoveries for it are ignored.
    pub fn remove_framework(&mut self, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        framework.registered = false;
        self.refresh_eligibility(framework_id);
        let Some(framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        if !framework.min_allocatable.is_empty() {
            self.n_min_allocatable_overrides -= 1;
        }
        for (agent_idx, role_idx) in framework.holdings {
            self.release_holding(agent_idx, &framework.id, role_idx);
        }
    }

    /// Lets a (re)connected framework receive offers again.
    pub fn activate_framework(&mut self, framework_id: &FrameworkId) -> Result<(), AllocatorError> {
        self.registered_framework(framework_id)?.active = true;
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Stops offers to a disconnected framework and drops its filters, as Mesos does; what it
    /// holds stays accounted so that a failed-over scheduler keeps its share.
    pub fn deactivate_framework(
        &mut self,
        framework_id: &FrameworkId,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        framework.active = false;
        framework.filters.clear();
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Suppresses offers to the framework in `roles` (all its roles when `None`), as SUPPRESS
    /// does. Roles it is not subscribed to are ignored.
    pub fn suppress(
        &mut self,
        framework_id: &FrameworkId,
        roles: Option<BTreeSet<String>>,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        let roles = roles.unwrap_or_else(|| framework.roles.clone());
        let subscribed: Vec<String> = roles.intersection(&framework.roles).cloned().collect();
        framework.suppressed.extend(subscribed);
        self.refresh_eligibility(framework_id);
        Ok(())
    }

    /// Unsuppresses the framework in `roles` (all its roles when `None`) and drops its filters
    /// for them, so that the next run offers it everything it may have, as REVIVE does.
    pub fn revive(
        &mut self,
        framework_id: &FrameworkId,
        roles: Option<BTreeSet<String>>,
    ) -> Result<(), AllocatorError> {
        let framework = self.registered_framework(framework_id)?;
        let roles = roles.unwrap_or_else(|| framework.roles.clone());
        for role in &roles {
            framework.suppressed.remove(role);
        }
        for role in &roles {
            if let Some(role_idx) = self.roles.get(role)
                && let Some(framework) = self.frameworks.get_mut(framework_id)
            {
                framework.filters.clear_role(role_idx);
            }
        }
        self.refresh_eligibility(framework_id);
        Ok(())
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

    /// Sets quota limits (UPDATE_QUOTA) for each role named, all or nothing: each limit is a
    /// finite amount of at least zero, and empty limits remove the role's quota.
    ///
    /// Returns the outstanding offers to rescind so that each role is back within its new
    /// limits: those are the offers a lowered limit no longer covers.
    pub fn update_quota(
        &mut self,
        limits: BTreeMap<String, QuotaLimits>,
    ) -> Result<Vec<OfferRescind>, AllocatorError> {
        for (role, role_limits) in &limits {
            quota::validate(role, role_limits)?;
        }
        for (role, role_limits) in &limits {
            let role_idx = self.roles.ensure(role);
            if role_limits.is_empty() {
                self.quotas.remove(role);
                self.roles.set_limits(role_idx, None);
                continue;
            }
            self.quotas.insert(role.clone(), role_limits.clone());
            let by_name = role_limits
                .iter()
                .map(|(name, &limit)| {
                    let milli = Milli::from_f64(limit).map_or(0, Milli::as_milli);
                    (self.names.intern(name), milli)
                })
                .collect();
            self.roles.set_limits(role_idx, Some(by_name));
        }
        Ok(self.offers_over_quota(limits.keys()))
    }

    /// Returns the registered framework, or says it is not known.
    fn registered_framework(
        &mut self,
        framework_id: &FrameworkId,
    ) -> Result<&mut Framework, AllocatorError> {
        self.frameworks
            .get_mut(framework_id)
            .filter(|framework| framework.registered)
            .ok_or_else(|| AllocatorError::UnknownFramework(framework_id.clone()))
    }

    /// Returns the framework, adding an unregistered placeholder if it is not known.
    fn framework_entry(&mut self, framework_id: &FrameworkId) -> &mut Framework {
        let key = match self.frameworks.get(framework_id) {
            Some(framework) => framework.id.clone(),
            None => Arc::new(framework_id.clone()),
        };
        self.frameworks
            .entry(key.clone())
            .or_insert_with(|| Framework::new(key))
    }

    /// Returns the shared key of a known framework.
    fn framework_key(&self, framework_id: &FrameworkId) -> Option<FrameworkKey> {
        self.frameworks
            .get(framework_id)
            .map(|framework| framework.id.clone())
    }

    /// Brings the framework's membership in every role's order in line with its state.
    fn refresh_eligibility(&mut self, framework_id: &FrameworkId) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let key = framework.id.clone();
        let mut changes = Vec::new();
        for role in &framework.roles {
            changes.push((role.clone(), framework.wants(role)));
        }
        for (role, eligible) in changes {
            let role_idx = self.roles.ensure(&role);
            self.set_eligible(role_idx, &key, eligible);
        }
    }

    fn set_eligible(&mut self, role_idx: usize, framework_id: &FrameworkKey, eligible: bool) {
        self.roles
            .set_eligible(role_idx, framework_id, eligible, &self.names, &self.total);
    }

    /// Returns the outstanding offers in the subtrees of `roles` to rescind, greedily in agent
    /// order, until each role's consumption is within its limits again.
    fn offers_over_quota<'a>(&self, roles: impl Iterator<Item = &'a String>) -> Vec<OfferRescind> {
        let mut rescinds: Vec<OfferRescind> = Vec::new();
        let mut chosen: BTreeSet<(usize, FrameworkKey, usize)> = BTreeSet::new();
        for role in roles {
            let Some(role_idx) = self.roles.get(role) else {
                continue;
            };
            let node = self.roles.node(role_idx);
            let Some(limits) = node.limits.clone() else {
                continue;
            };
            let mut excess = node.consumed();
            for (agent_idx, framework_id, held_role) in &chosen {
                if self.is_in_subtree(*held_role, role_idx) {
                    let held = self.offered_unreserved(*agent_idx, framework_id, *held_role);
                    excess.sub(&held);
                }
            }
            let over =
                |excess: &Quantities| limits.iter().any(|&(idx, limit)| excess.get(idx) > limit);
            for (agent_idx, agent) in self.agents.iter().enumerate() {
                let Some(agent) = agent else { continue };
                for ((framework_id, held_role), holding) in agent.holdings.iter() {
                    if !over(&excess) {
                        break;
                    }
                    let key = (agent_idx, framework_id.clone(), *held_role);
                    if holding.offered.is_empty()
                        || !self.is_in_subtree(*held_role, role_idx)
                        || chosen.contains(&key)
                    {
                        continue;
                    }
                    excess.sub(&self.offered_unreserved(agent_idx, framework_id, *held_role));
                    chosen.insert(key);
                    rescinds.push(OfferRescind {
                        framework_id: (**framework_id).clone(),
                        agent_id: agent.id.clone(),
                        role: self.roles.node(*held_role).name.to_string(),
                        resources: allocated_to(
                            &holding.offered,
                            &self.roles.node(*held_role).name,
                        ),
                    });
                }
            }
        }
        rescinds
    }

    fn is_in_subtree(&self, role_idx: usize, ancestor_idx: usize) -> bool {
        role_idx == ancestor_idx
            || self
                .roles
                .ancestors(role_idx)
                .any(|idx| idx == ancestor_idx)
    }

    /// Returns the unreserved scalars offered to `framework_id` in `role_idx` on the agent.
    fn offered_unreserved(
        &self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
    ) -> Quantities {
        self.agents[agent_idx]
            .as_ref()
            .and_then(|agent| agent.holdings.get(&(framework_id.clone(), role_idx)))
            .map(|holding| self.names.quantities(&holding.offered.unreserved()))
            .unwrap_or_default()
    }

    /// Installs a refused-offer filter for `refuse` from `now`, if it is not zero.
    fn install_filter(
        &mut self,
        framework_id: &FrameworkId,
        agent_idx: usize,
        role_idx: usize,
        resources: Resources,
        refuse: Duration,
        now: Duration,
    ) {
        let refuse = refuse.min(self.config.refuse_max);
        if refuse.is_zero() {
            return;
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let expires_at = now.saturating_add(refuse);
        framework.filters.insert(
            agent_idx,
            role_idx,
            OfferFilter {
                resources,
                expires_at,
            },
        );
        self.next_filter_expiry = Some(
            self.next_filter_expiry
                .map_or(expires_at, |next| next.min(expires_at)),
        );
    }

    /// Drops the filters that expired by `now`, scanning only when one is due.
    fn expire_filters(&mut self, now: Duration) {
        if self.next_filter_expiry.is_none_or(|next| next > now) {
            return;
        }
        self.next_filter_expiry = self
            .frameworks
            .values_mut()
            .filter_map(|framework| framework.filters.expire(now))
            .min();
    }
}

/// Checks role names and that suppressed roles are among the subscribed ones.
fn validate_roles(
    roles: &BTreeSet<String>,
    suppressed_roles: &BTreeSet<String>,
) -> Result<(), AllocatorError> {
    for role in roles {
        validate_role(role).map_err(|err| AllocatorError::InvalidRole {
            role: role.clone(),
            reason: err.to_string(),
        })?;
    }
    if let Some(role) = suppressed_roles.difference(roles).next() {
        return Err(AllocatorError::InvalidRole {
            role: role.clone(),
            reason: "a suppressed role must be one of the framework's roles".to_owned(),
        });
    }
    Ok(())
}

/// Returns `resources` marked as allocated to `role`.
fn allocated_to(resources: &Resources, role: &str) -> Resources {
    let mut allocated = resources.clone();
    allocated.allocate(role);
    allocated
}

/// Returns the one role all of `resources` are allocated to.
fn allocation_role(resources: &Resources) -> Result<String, AllocatorError> {
    let mut allocations = resources.allocations();
    match allocations.pop_first() {
        Some((role, allocated)) if allocations.is_empty() && allocated == *resources => Ok(role),
        _ => Err(AllocatorError::NotAllocatedToOneRole(resources.clone())),
    }
}
