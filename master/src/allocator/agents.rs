//! Per-agent accounting: each agent's total split into available, offered and used, and the
//! calls that move resources between those (agents coming and going, recovery, use).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strata_protocol::{AgentId, FrameworkId, Resources};

use super::quantities::Quantities;
use super::sorter::{Change, Scalars};
use super::{Allocator, AllocatorError, FrameworkKey, allocation_role};

/// What one framework holds in one role on one agent, with `allocation_info.role` set.
///
/// The offers a run makes are shared with the `Allocation`s that announce them instead of
/// being copied: a copy of an agent's resources is a large allocation, and skipping it saved
/// a fifth of a run. They are merged into `offered` when a recovery or use first touches the
/// holding.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holding {
    fresh: Vec<Arc<Resources>>,
    offered: Resources,
    pub(crate) used: Resources,
}

impl Holding {
    fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.offered.is_empty() && self.used.is_empty()
    }

    /// Returns everything offered, merged.
    pub(crate) fn offered(&self) -> Resources {
        let mut offered = self.offered.clone();
        for fresh in &self.fresh {
            offered += &**fresh;
        }
        offered
    }

    /// Returns true if nothing is offered.
    pub(crate) fn nothing_offered(&self) -> bool {
        self.fresh.is_empty() && self.offered.is_empty()
    }

    /// Merges the shared offers into `offered`, before it changes.
    fn settle(&mut self) {
        for fresh in self.fresh.drain(..) {
            self.offered += &*fresh;
        }
    }
}

/// The holdings on one agent, sorted by `(framework, role index)`.
///
/// An agent has only a few holdings, so a sorted `Vec` beats a `BTreeMap`, whose first insert
/// allocates a whole node: that allocation was a visible part of each offer's cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holdings(Vec<((FrameworkKey, usize), Holding)>);

impl Holdings {
    fn position(&self, key: &(FrameworkKey, usize)) -> Result<usize, usize> {
        self.0.binary_search_by(|(existing, _)| existing.cmp(key))
    }

    pub(crate) fn get(&self, key: &(FrameworkKey, usize)) -> Option<&Holding> {
        self.position(key).ok().map(|idx| &self.0[idx].1)
    }

    fn get_or_default(&mut self, key: (FrameworkKey, usize)) -> &mut Holding {
        let idx = match self.position(&key) {
            Ok(idx) => idx,
            Err(idx) => {
                self.0.insert(idx, (key, Holding::default()));
                idx
            }
        };
        &mut self.0[idx].1
    }

    fn remove(&mut self, key: &(FrameworkKey, usize)) {
        if let Ok(idx) = self.position(key) {
            self.0.remove(idx);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(FrameworkKey, usize), &Holding)> {
        self.0.iter().map(|(key, holding)| (key, holding))
    }

    fn keys(&self) -> impl Iterator<Item = &(FrameworkKey, usize)> {
        self.0.iter().map(|(key, _)| key)
    }

    fn values(&self) -> impl Iterator<Item = &Holding> {
        self.0.iter().map(|(_, holding)| holding)
    }
}

/// One agent as the allocator sees it.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) id: AgentId,
    pub(crate) total: Resources,
    /// `total` minus everything offered or used.
    pub(crate) available: Resources,
    /// Deactivated and draining agents are not offered.
    pub(crate) active: bool,
    /// False lets the hot path skip `allocatable_to`, which is the identity then.
    pub(crate) has_reservations: bool,
    pub(crate) total_quantities: Quantities,
    /// Scalars reserved on this agent, by role index.
    pub(crate) reserved: Vec<(usize, Quantities)>,
    pub(crate) holdings: Holdings,
}

impl Agent {
    /// Returns everything offered or used on the agent, without allocation info.
    pub(crate) fn held(&self) -> Resources {
        let mut held = Resources::new();
        for holding in self.holdings.values() {
            held += holding.offered();
            held += &holding.used;
        }
        held.unallocate();
        held
    }

    /// Returns true if available + offered + used is exactly the total.
    pub(crate) fn is_consistent(&self) -> bool {
        self.available.clone() + self.held() == self.total
    }
}

impl Allocator {
    /// Adds an agent with its `total` and what frameworks already `used` on it (each with
    /// `allocation_info.role` set), as when an agent re-registers after a master failover.
    /// The agent starts active.
    pub fn add_agent(
        &mut self,
        agent_id: AgentId,
        total: Resources,
        used: BTreeMap<FrameworkId, Resources>,
    ) -> Result<(), AllocatorError> {
        if self.agent_index.contains_key(&agent_id) {
            return Err(AllocatorError::DuplicateAgent(agent_id));
        }
        let mut held = Resources::new();
        let mut used_by_role = Vec::new();
        for (framework_id, resources) in used {
            let mut allocated_sum = Resources::new();
            for (role, allocated) in resources.allocations() {
                allocated_sum += &allocated;
                held += unallocated(&allocated);
                used_by_role.push((framework_id.clone(), role, allocated));
            }
            if allocated_sum != resources {
                return Err(AllocatorError::NotAllocatedToOneRole(resources));
            }
        }
        if !total.contains(&held) {
            return Err(AllocatorError::TotalBelowHeld {
                agent_id,
                total,
                held,
            });
        }
        let agent_idx = self.free_agent_slots.pop().unwrap_or(self.agents.len());
        if agent_idx == self.agents.len() {
            self.agents.push(None);
        }
        self.agents[agent_idx] = Some(Agent {
            id: agent_id.clone(),
            total: Resources::new(),
            available: Resources::new(),
            active: true,
            has_reservations: false,
            total_quantities: Quantities::default(),
            reserved: Vec::new(),
            holdings: Holdings::default(),
        });
        self.agent_index.insert(agent_id, agent_idx);
        self.set_agent_total(agent_idx, total, &held);
        for (framework_id, role, resources) in used_by_role {
            let role_idx = self.roles.ensure(&role);
            let key = self.framework_entry(&framework_id).id.clone();
            self.change_holding(agent_idx, &key, role_idx, &resources, Change::ADD_USED);
        }
        Ok(())
    }

    /// Changes an agent's total, as an operator RESERVE/UNRESERVE or an agent update does.
    ///
    /// Fails, changing nothing, if the new total does not contain what is offered or used:
    /// the master must rescind the affected offers (and recover them) first.
    pub fn update_agent_total(
        &mut self,
        agent_id: &AgentId,
        total: Resources,
    ) -> Result<(), AllocatorError> {
        let agent_idx = self.agent_slot(agent_id)?;
        let held = self.agent(agent_idx).held();
        if !total.contains(&held) {
            return Err(AllocatorError::TotalBelowHeld {
                agent_id: agent_id.clone(),
                total,
                held,
            });
        }
        self.untrack_agent_total(agent_idx);
        self.set_agent_total(agent_idx, total, &held);
        Ok(())
    }

    /// Removes an agent and forgets everything offered or used on it; the master rescinds its
    /// offers, and later recoveries for it are ignored.
    pub fn remove_agent(&mut self, agent_id: &AgentId) {
        let Some(agent_idx) = self.agent_index.get(agent_id).copied() else {
            return;
        };
        let keys: Vec<(FrameworkKey, usize)> =
            self.agent(agent_idx).holdings.keys().cloned().collect();
        for (framework_id, role_idx) in keys {
            self.release_holding(agent_idx, &framework_id, role_idx);
        }
        self.untrack_agent_total(agent_idx);
        for framework in self.frameworks.values_mut() {
            framework.filters.remove_agent(agent_idx);
        }
        self.offerable.remove(&agent_idx);
        self.agents[agent_idx] = None;
        self.agent_index.remove(agent_id);
        self.free_agent_slots.push(agent_idx);
    }

    /// Lets an agent be offered again.
    pub fn activate_agent(&mut self, agent_id: &AgentId) -> Result<(), AllocatorError> {
        let agent_idx = self.agent_slot(agent_id)?;
        self.agent_mut(agent_idx).active = true;
        self.refresh_offerable(agent_idx);
        Ok(())
    }

    /// Stops offers of a deactivated, disconnected or draining agent; what it has outstanding
    /// stays accounted until recovered.
    pub fn deactivate_agent(&mut self, agent_id: &AgentId) -> Result<(), AllocatorError> {
        let agent_idx = self.agent_slot(agent_id)?;
        self.agent_mut(agent_idx).active = false;
        self.refresh_offerable(agent_idx);
        Ok(())
    }

    /// Gives back resources a framework held on an agent: declined, rescinded, left unused by
    /// an ACCEPT (taken from the offer) or freed by a finished task (taken from what is
    /// used). `resources` carry their `allocation_info.role`, as offers do.
    ///
    /// With `refuse`, the framework is not offered a subset of these resources on this agent
    /// for the role again before `now + refuse` (capped at `refuse_max`; zero installs
    /// nothing). Recoveries for a removed framework or agent are ignored: removal already
    /// returned everything.
    pub fn recover_resources(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Duration,
    ) -> Result<(), AllocatorError> {
        let (Some(&agent_idx), Some(key)) = (
            self.agent_index.get(agent_id),
            self.framework_key(framework_id),
        ) else {
            return Ok(());
        };
        if resources.is_empty() {
            return Ok(());
        }
        let role_idx = self.held_role(framework_id, agent_id, resources)?;
        let not_held = || AllocatorError::NotHeld {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            resources: resources.clone(),
        };
        let holding_key = (key.clone(), role_idx);
        let holding = self.agent(agent_idx).holdings.get(&holding_key);
        let holding = holding.ok_or_else(not_held)?;
        let from_used = resources - &holding.offered();
        let from_offered = resources - &from_used;
        if !holding.used.contains(&from_used) {
            return Err(not_held());
        }
        self.change_holding(
            agent_idx,
            &key,
            role_idx,
            &from_offered,
            Change::REMOVE_OFFERED,
        );
        self.change_holding(agent_idx, &key, role_idx, &from_used, Change::REMOVE_USED);
        let plain = unallocated(resources);
        self.agent_mut(agent_idx).available += &plain;
        self.refresh_offerable(agent_idx);
        debug_assert!(self.agent(agent_idx).is_consistent());
        if let Some(refuse) = refuse {
            self.install_filter(framework_id, agent_idx, role_idx, plain, refuse, now);
        }
        Ok(())
    }

    /// Returns the resources of a task or executor that ended to the agent: they leave the
    /// framework's used resources, never its outstanding offers, which the framework may still
    /// accept. ([`Allocator::recover_resources`] takes from offers first, as a DECLINE must.)
    pub fn recover_used(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
    ) -> Result<(), AllocatorError> {
        let (Some(&agent_idx), Some(key)) = (
            self.agent_index.get(agent_id),
            self.framework_key(framework_id),
        ) else {
            return Ok(());
        };
        if resources.is_empty() {
            return Ok(());
        }
        let role_idx = self.held_role(framework_id, agent_id, resources)?;
        let holding_key = (key.clone(), role_idx);
        let held = self
            .agent(agent_idx)
            .holdings
            .get(&holding_key)
            .is_some_and(|holding| holding.used.contains(resources));
        if !held {
            return Err(AllocatorError::NotHeld {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                resources: resources.clone(),
            });
        }
        self.change_holding(agent_idx, &key, role_idx, resources, Change::REMOVE_USED);
        let plain = unallocated(resources);
        self.agent_mut(agent_idx).available += &plain;
        self.refresh_offerable(agent_idx);
        debug_assert!(self.agent(agent_idx).is_consistent());
        Ok(())
    }

    /// Records that an ACCEPT used `resources` of an outstanding offer: they move from offered
    /// to used and stay allocated until recovered.
    pub fn use_offered(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
    ) -> Result<(), AllocatorError> {
        let agent_idx = self.agent_slot(agent_id)?;
        let key = self
            .framework_key(framework_id)
            .ok_or_else(|| AllocatorError::UnknownFramework(framework_id.clone()))?;
        let role_idx = self.held_role(framework_id, agent_id, resources)?;
        let holding = self.agent(agent_idx).holdings.get(&(key.clone(), role_idx));
        if !holding.is_some_and(|holding| holding.offered().contains(resources)) {
            return Err(AllocatorError::NotHeld {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                resources: resources.clone(),
            });
        }
        self.change_holding(agent_idx, &key, role_idx, resources, Change::REMOVE_OFFERED);
        self.change_holding(agent_idx, &key, role_idx, resources, Change::ADD_USED);
        Ok(())
    }

    /// Applies an offer operation accepted on an outstanding offer (RESERVE, UNRESERVE,
    /// CREATE, DESTROY): the `consumed` part of the offer becomes `converted`, in the offer and
    /// in the agent's total, as Mesos's `updateAllocation` does. Both carry the offer's
    /// `allocation_info.role`, and a conversion changes no scalar amount.
    pub fn update_allocation(
        &mut self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        consumed: &Resources,
        converted: &Resources,
    ) -> Result<(), AllocatorError> {
        let agent_idx = self.agent_slot(agent_id)?;
        let key = self
            .framework_key(framework_id)
            .ok_or_else(|| AllocatorError::UnknownFramework(framework_id.clone()))?;
        let invalid = |reason| AllocatorError::InvalidConversion {
            consumed: consumed.clone(),
            converted: converted.clone(),
            reason,
        };
        if allocation_role(consumed)? != allocation_role(converted)? {
            return Err(invalid("the resources are allocated to different roles"));
        }
        if consumed.scalar_quantities() != converted.scalar_quantities() {
            return Err(invalid("a conversion must keep every scalar amount"));
        }
        let role_idx = self.held_role(framework_id, agent_id, consumed)?;
        let holding = self.agent(agent_idx).holdings.get(&(key.clone(), role_idx));
        if !holding.is_some_and(|holding| holding.offered().contains(consumed)) {
            return Err(AllocatorError::NotHeld {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                resources: consumed.clone(),
            });
        }
        // The consumed part leaves the offer under the agent's old reservations, the total
        // changes, and the converted part joins the offer under the new ones, so that the
        // unreserved share of each is counted against the right total.
        self.change_holding(agent_idx, &key, role_idx, consumed, Change::REMOVE_OFFERED);
        let (plain_consumed, plain_converted) = (unallocated(consumed), unallocated(converted));
        let total = &self.agent(agent_idx).total - &plain_consumed + &plain_converted;
        let held = self.agent(agent_idx).held();
        self.untrack_agent_total(agent_idx);
        self.set_agent_total(agent_idx, total, &held);
        self.agent_mut(agent_idx).available -= &plain_converted;
        self.change_holding(agent_idx, &key, role_idx, converted, Change::ADD_OFFERED);
        self.refresh_offerable(agent_idx);
        debug_assert!(self.agent(agent_idx).is_consistent());
        Ok(())
    }

    /// Returns the index of the role `resources` are allocated to, or says why they cannot
    /// be held.
    fn held_role(
        &self,
        framework_id: &FrameworkId,
        agent_id: &AgentId,
        resources: &Resources,
    ) -> Result<usize, AllocatorError> {
        let role = allocation_role(resources)?;
        let role_idx = self
            .roles
            .get(&role)
            .ok_or_else(|| AllocatorError::NotHeld {
                framework_id: framework_id.clone(),
                agent_id: agent_id.clone(),
                resources: resources.clone(),
            })?;
        Ok(role_idx)
    }

    /// Returns the slot of a known agent.
    fn agent_slot(&self, agent_id: &AgentId) -> Result<usize, AllocatorError> {
        self.agent_index
            .get(agent_id)
            .copied()
            .ok_or_else(|| AllocatorError::UnknownAgent(agent_id.clone()))
    }

    pub(crate) fn agent(&self, agent_idx: usize) -> &Agent {
        self.agents[agent_idx]
            .as_ref()
            .expect("agent slot refers to a present agent")
    }

    pub(crate) fn agent_mut(&mut self, agent_idx: usize) -> &mut Agent {
        self.agents[agent_idx]
            .as_mut()
            .expect("agent slot refers to a present agent")
    }

    /// Keeps `offerable` exactly the active agents with something available.
    pub(crate) fn refresh_offerable(&mut self, agent_idx: usize) {
        let agent = self.agent(agent_idx);
        if agent.active && !agent.available.is_empty() {
            self.offerable.insert(agent_idx);
        } else {
            self.offerable.remove(&agent_idx);
        }
    }

    /// Sets the total of an agent whose old total is untracked, given what it holds.
    fn set_agent_total(&mut self, agent_idx: usize, total: Resources, held: &Resources) {
        self.names.intern_all(&total);
        let total_quantities = self.names.quantities(&total);
        self.total.add(&total_quantities);
        let mut reserved = Vec::new();
        for (role, resources) in total.reservations() {
            let role_idx = self.roles.ensure(&role);
            let quantities = self.names.quantities(&resources);
            self.roles.track_reserved(role_idx, &quantities, true);
            reserved.push((role_idx, quantities));
        }
        self.roles.mark_dirty();
        let agent = self.agent_mut(agent_idx);
        agent.has_reservations = !reserved.is_empty();
        agent.available = &total - held;
        agent.total = total;
        agent.total_quantities = total_quantities;
        agent.reserved = reserved;
        self.refresh_offerable(agent_idx);
    }

    /// Removes an agent's total and reservations from the cluster's accounting.
    fn untrack_agent_total(&mut self, agent_idx: usize) {
        let agent = self.agent_mut(agent_idx);
        let total_quantities = std::mem::take(&mut agent.total_quantities);
        let reserved = std::mem::take(&mut agent.reserved);
        self.total.sub(&total_quantities);
        for (role_idx, quantities) in reserved {
            self.roles.track_reserved(role_idx, &quantities, false);
        }
        self.roles.mark_dirty();
    }

    /// Returns everything a framework holds in a role on an agent to the agent's available
    /// resources, as removing the framework or the agent does.
    pub(crate) fn release_holding(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
    ) {
        let key = (framework_id.clone(), role_idx);
        let Some(holding) = self.agent(agent_idx).holdings.get(&key) else {
            return;
        };
        let (offered, used) = (holding.offered(), holding.used.clone());
        self.change_holding(
            agent_idx,
            framework_id,
            role_idx,
            &offered,
            Change::REMOVE_OFFERED,
        );
        self.change_holding(
            agent_idx,
            framework_id,
            role_idx,
            &used,
            Change::REMOVE_USED,
        );
        self.agent_mut(agent_idx).available += unallocated(&(offered + used));
        self.refresh_offerable(agent_idx);
    }

    /// Adds `resources` (with allocation info) to, or removes them from, what `framework_id`
    /// holds in `role_idx` on the agent, as offered or as used, and updates the role and
    /// framework accounting. The agent's available resources are the caller's business.
    pub(crate) fn change_holding(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
        resources: &Resources,
        change: Change,
    ) {
        if resources.is_empty() {
            return;
        }
        let agent = self.agents[agent_idx]
            .as_mut()
            .expect("agent slot refers to a present agent");
        let holding = agent
            .holdings
            .get_or_default((framework_id.clone(), role_idx));
        holding.settle();
        let side = if change.offered {
            &mut holding.offered
        } else {
            &mut holding.used
        };
        if change.add {
            *side += resources;
        } else {
            debug_assert!(side.contains(resources), "{side} lacks {resources}");
            *side -= resources;
        }
        let quantities = self.names.quantities(resources);
        self.holding_changed(
            agent_idx,
            framework_id,
            role_idx,
            resources,
            quantities,
            change,
        );
    }

    /// Records a new offer of a run, shared with the `Allocation` announcing it.
    pub(crate) fn add_offer(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
        offer: Arc<Resources>,
        quantities: Quantities,
    ) {
        let agent = self.agents[agent_idx]
            .as_mut()
            .expect("agent slot refers to a present agent");
        let holding = agent
            .holdings
            .get_or_default((framework_id.clone(), role_idx));
        holding.fresh.push(offer.clone());
        let change = Change::ADD_OFFERED;
        self.holding_changed(
            agent_idx,
            framework_id,
            role_idx,
            &offer,
            quantities,
            change,
        );
    }

    /// Updates the accounting after `resources` (of scalar `quantities`) were added to or
    /// removed from a holding: drops the holding if it is empty, and re-keys the DRF orders.
    fn holding_changed(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
        resources: &Resources,
        quantities: Quantities,
        change: Change,
    ) {
        let agent = self.agents[agent_idx]
            .as_mut()
            .expect("agent slot refers to a present agent");
        let unreserved = if agent.has_reservations {
            self.names.quantities(&resources.unreserved())
        } else {
            quantities.clone()
        };
        let key = (framework_id.clone(), role_idx);
        let now_empty = agent.holdings.get(&key).is_none_or(Holding::is_empty);
        if now_empty {
            agent.holdings.remove(&key);
        }
        if let Some(framework) = self.frameworks.get_mut(&**framework_id) {
            if now_empty {
                framework.holdings.remove(&(agent_idx, role_idx));
            } else if change.add {
                framework.holdings.insert((agent_idx, role_idx));
            }
        }
        let scalars = Scalars {
            all: &quantities,
            unreserved: &unreserved,
        };
        let (names, total) = (&self.names, &self.total);
        self.roles
            .track(role_idx, framework_id, scalars, change, names, total);
    }
}

/// Returns `resources` without allocation info.
pub(crate) fn unallocated(resources: &Resources) -> Resources {
    let mut plain = resources.clone();
    plain.unallocate();
    plain
}
