//! One allocation run: every offerable agent, every role in DRF order, the first framework of
//! the role (in DRF order) whose filters let the offer through.
//!
//! As in Mesos, an offer takes everything on the agent that the role may have (unreserved,
//! plus what is reserved to the role or an ancestor), cut down to the role's quota headroom,
//! so agents go whole to the lowest share ("coarse-grained" allocation). Shares are updated
//! after every offer, so the next agent sees the new order.

use std::time::Duration;

use strata_protocol::{FrameworkId, Resources};

use super::quantities::Quantities;
use super::{Allocation, Allocator, quota};

impl Allocator {
    /// Runs one allocation at `now` and returns the offers to make, in the order they were
    /// decided. Filters that expired by `now` are dropped first.
    ///
    /// Running it again at the same `now` with nothing changed offers nothing: everything
    /// offerable was offered.
    pub fn allocate(&mut self, now: Duration) -> Vec<Allocation> {
        self.expire_filters(now);
        self.roles.rebuild_if_dirty(&self.names, &self.total);
        let mut agents: Vec<usize> = self.offerable.iter().copied().collect();
        self.rng.shuffle(&mut agents);
        let mut allocations = Vec::new();
        for agent_idx in agents {
            self.allocate_agent(agent_idx, &mut allocations);
            debug_assert!(self.agent(agent_idx).is_consistent());
        }
        allocations
    }

    /// Offers one agent's available resources to the roles in DRF order.
    fn allocate_agent(&mut self, agent_idx: usize, allocations: &mut Vec<Allocation>) {
        let order = self.roles.order().to_vec();
        for role_idx in order {
            if self.agent(agent_idx).available.is_empty() {
                break;
            }
            let Some(offer) = self.offer_for_role(agent_idx, role_idx) else {
                continue;
            };
            let Some(framework_id) = self.first_unfiltered(agent_idx, role_idx, &offer) else {
                continue;
            };
            let allocation = self.make_offer(agent_idx, role_idx, framework_id, offer);
            allocations.push(allocation);
        }
    }

    /// Returns what the agent can offer a framework of `role_idx`, if it is worth offering.
    fn offer_for_role(&self, agent_idx: usize, role_idx: usize) -> Option<Resources> {
        let agent = self.agent(agent_idx);
        let node = self.roles.node(role_idx);
        let mut offer = if agent.has_reservations {
            agent.available.allocatable_to(&node.name)
        } else {
            agent.available.clone()
        };
        if offer.is_empty() {
            return None;
        }
        if let Some(headroom) = quota::headroom(&self.roles, role_idx) {
            offer = quota::shrink(offer, &headroom, &self.names);
        }
        self.is_allocatable(&offer).then_some(offer)
    }

    /// Returns true if `offer` is not empty and holds one of the minimal allocatable
    /// quantities.
    fn is_allocatable(&self, offer: &Resources) -> bool {
        if offer.is_empty() {
            return false;
        }
        if self.min_allocatable.is_empty() {
            return true;
        }
        let quantities = self.names.quantities(offer);
        self.min_allocatable
            .iter()
            .any(|minimum| covers(&quantities, minimum))
    }

    /// Returns the first framework of the role, in DRF order, that has not filtered `offer`.
    fn first_unfiltered(
        &self,
        agent_idx: usize,
        role_idx: usize,
        offer: &Resources,
    ) -> Option<FrameworkId> {
        self.roles
            .node(role_idx)
            .framework_order()
            .find(|framework_id| {
                self.frameworks.get(*framework_id).is_some_and(|framework| {
                    framework.filters.is_empty()
                        || !framework.filters.is_filtered(agent_idx, role_idx, offer)
                })
            })
            .cloned()
    }

    /// Moves `offer` from the agent's available resources into an offer to `framework_id`.
    fn make_offer(
        &mut self,
        agent_idx: usize,
        role_idx: usize,
        framework_id: FrameworkId,
        offer: Resources,
    ) -> Allocation {
        let role = self.roles.node(role_idx).name.clone();
        debug_assert!(self.roles.node(role_idx).is_eligible(&framework_id));
        let agent = self.agent_mut(agent_idx);
        debug_assert!(agent.available.contains(&offer));
        if agent.available == offer {
            agent.available = Resources::new();
        } else {
            agent.available -= &offer;
        }
        let agent_id = agent.id.clone();
        let mut resources = offer;
        resources.allocate(&role);
        self.change_holding(agent_idx, &framework_id, role_idx, &resources, true, true);
        self.refresh_offerable(agent_idx);
        Allocation {
            framework_id,
            agent_id,
            role,
            resources,
        }
    }
}

/// Returns true if `quantities` has at least `minimum` of every name.
fn covers(quantities: &Quantities, minimum: &Quantities) -> bool {
    minimum
        .iter()
        .all(|(idx, amount)| quantities.get(idx) >= amount)
}
