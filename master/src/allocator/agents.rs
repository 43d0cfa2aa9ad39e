//! Per-agent accounting: each agent's total split into available, offered and used, and the
//! calls that move resources between those (agents coming and going, recovery, use).

use std::collections::BTreeMap;
use std::time::Duration;

use strata_protocol::{AgentId, FrameworkId, Resources};

use super::quantities::Quantities;
use super::{Allocator, AllocatorError, allocation_role};

/// What one framework holds in one role on one agent; both carry `allocation_info.role`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Holding {
    pub(crate) offered: Resources,
    pub(crate) used: Resources,
}

impl Holding {
    fn is_empty(&self) -> bool {
        self.offered.is_empty() && self.used.is_empty()
    }
}

/// One agent as the allocator sees it.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) id: AgentId,
    pub(crate) total: Resources,
    /// `total` minus everything offered or used, without allocation info.
    pub(crate) available: Resources,
    /// Deactivated and draining agents are not offered.
    pub(crate) active: bool,
    /// False lets the hot path skip `allocatable_to`, which is the identity then.
    pub(crate) has_reservations: bool,
    pub(crate) total_quantities: Quantities,
    /// Scalars reserved on this agent, by role index.
    pub(crate) reserved: Vec<(usize, Quantities)>,
    pub(crate) holdings: BTreeMap<(FrameworkId, usize), Holding>,
}

impl Agent {
    /// Returns everything offered or used on the agent, without allocation info.
    pub(crate) fn held(&self) -> Resources {
        let mut held = Resources::new();
        for holding in self.holdings.values() {
            held += &holding.offered;
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
            let allocations = resources.allocations();
            let mut allocated_sum = Resources::new();
            for (role, allocated) in allocations {
                allocated_sum += &allocated;
                used_by_role.push((framework_id.clone(), role, allocated));
            }
            if allocated_sum != resources {
                return Err(AllocatorError::NotAllocatedToOneRole(resources));
            }
            held += allocated_sum;
        }
        held.unallocate();
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
            holdings: BTreeMap::new(),
        });
        self.agent_index.insert(agent_id, agent_idx);
        self.set_agent_total(agent_idx, total, &held);
        for (framework_id, role, allocated) in used_by_role {
            self.add_used(agent_idx, framework_id, &role, allocated);
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
        let keys: Vec<(FrameworkId, usize)> =
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
        let (Some(&agent_idx), Some(_)) = (
            self.agent_index.get(agent_id),
            self.frameworks.get(framework_id),
        ) else {
            return Ok(());
        };
        if resources.is_empty() {
            return Ok(());
        }
        let role = allocation_role(resources)?;
        let not_held = || AllocatorError::NotHeld {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            resources: resources.clone(),
        };
        let role_idx = self.roles.get(&role).ok_or_else(not_held)?;
        let key = (framework_id.clone(), role_idx);
        let holding = self
            .agent(agent_idx)
            .holdings
            .get(&key)
            .ok_or_else(not_held)?;
        let from_used = resources - &holding.offered;
        let from_offered = resources - &from_used;
        if !holding.used.contains(&from_used) {
            return Err(not_held());
        }
        self.change_holding(
            agent_idx,
            framework_id,
            role_idx,
            &from_offered,
            true,
            false,
        );
        self.change_holding(agent_idx, framework_id, role_idx, &from_used, false, false);
        let mut freed = resources.clone();
        freed.unallocate();
        self.agent_mut(agent_idx).available += &freed;
        self.refresh_offerable(agent_idx);
        debug_assert!(self.agent(agent_idx).is_consistent());
        if let Some(refuse) = refuse {
            self.install_filter(framework_id, agent_idx, role_idx, freed, refuse, now);
        }
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
        let role = allocation_role(resources)?;
        let not_held = || AllocatorError::NotHeld {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            resources: resources.clone(),
        };
        let role_idx = self.roles.get(&role).ok_or_else(not_held)?;
        let key = (framework_id.clone(), role_idx);
        let holding = self
            .agent(agent_idx)
            .holdings
            .get(&key)
            .ok_or_else(not_held)?;
        if !holding.offered.contains(resources) {
            return Err(not_held());
        }
        self.change_holding(agent_idx, framework_id, role_idx, resources, true, false);
        self.change_holding(agent_idx, framework_id, role_idx, resources, false, true);
        Ok(())
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
        agent.has_reservations = !total.reserved_to_any().is_empty();
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

    /// Records resources a framework already uses on an agent being added.
    fn add_used(
        &mut self,
        agent_idx: usize,
        framework_id: FrameworkId,
        role: &str,
        allocated: Resources,
    ) {
        let role_idx = self.roles.ensure(role);
        self.frameworks.entry(framework_id.clone()).or_default();
        self.change_holding(agent_idx, &framework_id, role_idx, &allocated, false, true);
    }

    /// Returns everything a framework holds in a role on an agent to the agent's available
    /// resources, as removing the framework or the agent does.
    pub(crate) fn release_holding(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkId,
        role_idx: usize,
    ) {
        let key = (framework_id.clone(), role_idx);
        let Some(holding) = self.agent(agent_idx).holdings.get(&key).cloned() else {
            return;
        };
        self.change_holding(
            agent_idx,
            framework_id,
            role_idx,
            &holding.offered,
            true,
            false,
        );
        self.change_holding(
            agent_idx,
            framework_id,
            role_idx,
            &holding.used,
            false,
            false,
        );
        let mut freed = holding.offered + holding.used;
        freed.unallocate();
        self.agent_mut(agent_idx).available += &freed;
        self.refresh_offerable(agent_idx);
    }

    /// Adds `resources` to (or removes them from) what `framework_id` holds in `role_idx` on
    /// the agent, as offered or as used, and updates the role and framework accounting. The
    /// agent's available resources are the caller's business.
    pub(crate) fn change_holding(
        &mut self,
        agent_idx: usize,
        framework_id: &FrameworkId,
        role_idx: usize,
        resources: &Resources,
        offered: bool,
        add: bool,
    ) {
        if resources.is_empty() {
            return;
        }
        let held = self.names.quantities(resources);
        let agent = self.agents[agent_idx]
            .as_mut()
            .expect("agent slot refers to a present agent");
        let unreserved = if agent.has_reservations {
            self.names.quantities(&resources.unreserved())
        } else {
            held.clone()
        };
        let key = (framework_id.clone(), role_idx);
        let holding = agent.holdings.entry(key.clone()).or_default();
        let side = if offered {
            &mut holding.offered
        } else {
            &mut holding.used
        };
        if add {
            *side += resources;
        } else {
            debug_assert!(side.contains(resources), "{side} lacks {resources}");
            *side -= resources;
        }
        let now_empty = holding.is_empty();
        if now_empty {
            agent.holdings.remove(&key);
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            if now_empty {
                framework.holdings.remove(&(agent_idx, role_idx));
            } else {
                framework.holdings.insert((agent_idx, role_idx));
            }
        }
        self.roles.track(
            role_idx,
            framework_id,
            &held,
            &unreserved,
            offered,
            add,
            &self.names,
            &self.total,
        );
    }
}
