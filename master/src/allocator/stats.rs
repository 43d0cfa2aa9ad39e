//! Read-only views of the allocator: per-role figures for GET_ROLES and metrics, per-agent
//! holdings for `/state`, and a full consistency check for tests and simulations.

use std::collections::BTreeMap;

use strata_protocol::{AgentId, FrameworkId, Resources};

use super::quantities::Quantities;
use super::sorter::DEFAULT_WEIGHT;
use super::{Allocator, QuotaLimits};

/// The allocator's figures for one role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleStats {
    pub role: String,
    pub weight: f64,
    /// Scalars offered to exactly this role (not its subroles).
    pub offered: Resources,
    /// Scalars used by tasks of exactly this role.
    pub allocated: Resources,
    /// The subtree's dominant share divided by the weight: what DRF orders roles by.
    pub weighted_share: f64,
    pub quota_limits: Option<QuotaLimits>,
    /// Reservations plus unreserved offered and used scalars of the subtree.
    pub quota_consumed: Resources,
    /// The frameworks subscribed to the role.
    pub frameworks: Vec<FrameworkId>,
    /// How many of them suppressed the role.
    pub n_suppressed: usize,
    /// How many offer filters frameworks hold for the role.
    pub n_filters: usize,
}

/// What one framework holds in one role on an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldingView {
    pub framework_id: FrameworkId,
    pub role: String,
    pub offered: Resources,
    pub used: Resources,
}

/// One agent's accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    pub agent_id: AgentId,
    pub active: bool,
    pub total: Resources,
    pub available: Resources,
    pub holdings: Vec<HoldingView>,
}

impl Allocator {
    /// Returns the figures of every role the allocator knows, in name order.
    pub fn role_stats(&self) -> Vec<RoleStats> {
        self.roles
            .roles()
            .map(|(role, role_idx)| self.stats_of(role, role_idx))
            .collect()
    }

    fn stats_of(&self, role: &str, role_idx: usize) -> RoleStats {
        let node = self.roles.node(role_idx);
        let subscribed: Vec<(&FrameworkId, bool)> = self
            .frameworks
            .iter()
            .filter(|(_, framework)| framework.registered && framework.roles.contains(role))
            .map(|(id, framework)| (&**id, framework.suppressed.contains(role)))
            .collect();
        RoleStats {
            role: role.to_owned(),
            weight: node.weight,
            offered: self.names.to_resources(&node.own_offered),
            allocated: self.names.to_resources(&node.own_used),
            weighted_share: self
                .roles
                .weighted_share(role_idx, &self.names, &self.total),
            quota_limits: self.quotas.get(role).cloned(),
            quota_consumed: self.names.to_resources(&node.consumed()),
            frameworks: subscribed.iter().map(|(id, _)| (*id).clone()).collect(),
            n_suppressed: subscribed
                .iter()
                .filter(|(_, suppressed)| *suppressed)
                .count(),
            n_filters: self
                .frameworks
                .values()
                .map(|framework| framework.filters.count_for_role(role_idx))
                .sum(),
        }
    }

    /// Returns the weight of `role`, 1 unless the operator set one.
    pub fn weight(&self, role: &str) -> f64 {
        self.roles
            .weights()
            .get(role)
            .copied()
            .unwrap_or(DEFAULT_WEIGHT)
    }

    /// Returns the weights the operator set (GET_WEIGHTS).
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        self.roles.weights()
    }

    /// Returns the quota limits the operator set (GET_QUOTA).
    pub fn quotas(&self) -> &BTreeMap<String, QuotaLimits> {
        &self.quotas
    }

    /// Returns the dominant share of what `framework_id` holds in `role`, the key DRF orders
    /// a role's frameworks by.
    pub fn framework_share(&self, framework_id: &FrameworkId, role: &str) -> f64 {
        let held = self
            .roles
            .get(role)
            .and_then(|idx| self.roles.node(idx).framework_held.get(framework_id));
        held.map_or(0.0, |held| self.names.dominant_share(held, &self.total))
    }

    /// Returns an agent's accounting, if the agent is known.
    pub fn agent_view(&self, agent_id: &AgentId) -> Option<AgentView> {
        let agent_idx = *self.agent_index.get(agent_id)?;
        let agent = self.agent(agent_idx);
        let holdings = agent
            .holdings
            .iter()
            .map(|((framework_id, role_idx), holding)| {
                let role = &self.roles.node(*role_idx).name;
                HoldingView {
                    framework_id: (**framework_id).clone(),
                    role: role.to_string(),
                    offered: holding.offered(),
                    used: holding.used.clone(),
                }
            })
            .collect();
        Some(AgentView {
            agent_id: agent.id.clone(),
            active: agent.active,
            total: agent.total.clone(),
            available: agent.available.clone(),
            holdings,
        })
    }

    /// Returns the known agents in ID order.
    pub fn agent_ids(&self) -> impl Iterator<Item = &AgentId> {
        self.agent_index.keys()
    }

    /// Checks every accounting invariant from scratch, for tests and simulations: on each
    /// agent available + offered + used is the total, and the role totals are the sums of
    /// the holdings. Returns the first broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut own_held: BTreeMap<usize, Quantities> = BTreeMap::new();
        for (agent_idx, agent) in self.agents.iter().enumerate() {
            let Some(agent) = agent else { continue };
            if !agent.is_consistent() {
                return Err(format!(
                    "agent {}: available {} + held {} is not the total {}",
                    agent.id,
                    agent.available,
                    agent.held(),
                    agent.total
                ));
            }
            let offerable = agent.active && !agent.available.is_empty();
            if self.offerable.contains(&agent_idx) != offerable {
                return Err(format!("agent {}: offerable set is stale", agent.id));
            }
            for ((_, role_idx), holding) in agent.holdings.iter() {
                let held = self.names.quantities(&(holding.offered() + &holding.used));
                own_held.entry(*role_idx).or_default().add(&held);
            }
        }
        for (role, role_idx) in self.roles.roles() {
            let node = self.roles.node(role_idx);
            let mut tracked = node.own_offered.clone();
            tracked.add(&node.own_used);
            let want = own_held.remove(&role_idx).unwrap_or_default();
            let mut diff = tracked;
            diff.sub(&want);
            if !diff.is_zero() {
                return Err(format!("role {role}: tracked holdings differ from agents'"));
            }
        }
        Ok(())
    }
}
