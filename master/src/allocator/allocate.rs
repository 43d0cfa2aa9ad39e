//! One allocation run: every offerable agent, every role in DRF order, the first framework of
//! the role (in DRF order) whose filters let the offer through.
//!
//! As in Mesos, an offer takes everything on the agent that the role may have (unreserved,
//! plus what is reserved to the role or an ancestor), cut down to the role's quota headroom,
//! so agents go whole to the lowest share ("coarse-grained" allocation). Shares are updated
//! after every offer, so the next agent sees the new order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use strata_protocol::{AgentId, Resources};

use super::quantities::Quantities;
use super::{Allocation, Allocator, FrameworkKey, quota};

impl Allocator {
    /// Runs one allocation at `now` and returns the offers to make, in the order they were
    /// decided. Filters that expired by `now` are dropped first.
    ///
    /// Running it again at the same `now` with nothing changed offers nothing: everything
    /// offerable was offered.
    pub fn allocate(&mut self, now: Duration) -> Vec<Allocation> {
        let agents: Vec<usize> = self.offerable.iter().copied().collect();
        self.allocate_slots(now, agents)
    }

    /// Runs one allocation at `now` over `agent_ids` only, as Mesos does right after an agent
    /// is added or resources are recovered on it: the event's offers go out without waiting
    /// for the next full run. Unknown and unofferable agents are skipped.
    pub fn allocate_agents(&mut self, now: Duration, agent_ids: &[AgentId]) -> Vec<Allocation> {
        let agents: BTreeSet<usize> = agent_ids
            .iter()
            .filter_map(|agent_id| self.agent_index.get(agent_id).copied())
            .filter(|agent_idx| self.offerable.contains(agent_idx))
            .collect();
        self.allocate_slots(now, agents.into_iter().collect())
    }

    /// Runs one allocation over the agents in the `agents` slots.
    fn allocate_slots(&mut self, now: Duration, mut agents: Vec<usize>) -> Vec<Allocation> {
        self.expire_filters(now);
        self.roles.rebuild_if_dirty(&self.names, &self.total);
        self.rng.shuffle(&mut agents);
        let mut allocations = Vec::with_capacity(agents.len());
        let mut order = std::mem::take(&mut self.order_buffer);
        for agent_idx in agents {
            order.clear();
            order.extend_from_slice(self.roles.order());
            self.allocate_agent(agent_idx, &order, &mut allocations);
            debug_assert!(self.agent(agent_idx).is_consistent());
        }
        self.order_buffer = order;
        allocations
    }

    /// Offers one agent's available resources to the roles in `order`, the DRF order when the
    /// agent's turn came (as in Mesos, offers on this agent do not reorder its own loop).
    fn allocate_agent(
        &mut self,
        agent_idx: usize,
        order: &[usize],
        allocations: &mut Vec<Allocation>,
    ) {
        for &role_idx in order {
            let agent = self.agent(agent_idx);
            if agent.available.is_empty() {
                break;
            }
            let takes_all =
                !agent.has_reservations && quota::headroom(&self.roles, role_idx).is_none();
            let allocation = if takes_all {
                self.offer_whole_agent(agent_idx, role_idx)
            } else {
                self.offer_part_of_agent(agent_idx, role_idx)
            };
            allocations.extend(allocation);
        }
    }

    /// Offers everything available to the role, the common case of an agent without
    /// reservations and a role without quota: no copy of the available resources is made.
    fn offer_whole_agent(&mut self, agent_idx: usize, role_idx: usize) -> Option<Allocation> {
        let available = &self.agent(agent_idx).available;
        let quantities = self.allocatable_quantities(available)?;
        let framework_id = self.first_unfiltered(agent_idx, role_idx, available, &quantities)?;
        let offer = std::mem::take(&mut self.agent_mut(agent_idx).available);
        Some(self.make_offer(agent_idx, role_idx, framework_id, offer, quantities))
    }

    /// Offers what the role may have of the agent: its reservations and the unreserved
    /// resources, cut down to its quota headroom.
    fn offer_part_of_agent(&mut self, agent_idx: usize, role_idx: usize) -> Option<Allocation> {
        let agent = self.agent(agent_idx);
        let node = self.roles.node(role_idx);
        let mut offer = if agent.has_reservations {
            agent.available.allocatable_to(&node.name)
        } else {
            agent.available.clone()
        };
        if let Some(headroom) = quota::headroom(&self.roles, role_idx) {
            offer = quota::shrink(offer, &headroom, &self.names);
        }
        let quantities = self.allocatable_quantities(&offer)?;
        let framework_id = self.first_unfiltered(agent_idx, role_idx, &offer, &quantities)?;
        let agent = self.agent_mut(agent_idx);
        debug_assert!(agent.available.contains(&offer));
        agent.available -= &offer;
        Some(self.make_offer(agent_idx, role_idx, framework_id, offer, quantities))
    }

    /// Returns the scalar quantities of `offer` if it may be worth offering: not empty and,
    /// unless some framework has minimums of its own, holding one of the configured ones.
    fn allocatable_quantities(&self, offer: &Resources) -> Option<Quantities> {
        if offer.is_empty() {
            return None;
        }
        let quantities = self.names.quantities(offer);
        let allocatable = self.n_min_allocatable_overrides > 0
            || is_allocatable(&quantities, &self.min_allocatable);
        allocatable.then_some(quantities)
    }

    /// Returns the first framework of the role, in DRF order, for which `offer` (of
    /// `quantities`) is allocatable and not filtered.
    fn first_unfiltered(
        &self,
        agent_idx: usize,
        role_idx: usize,
        offer: &Resources,
        quantities: &Quantities,
    ) -> Option<FrameworkKey> {
        let check_minimums = self.n_min_allocatable_overrides > 0;
        self.roles
            .node(role_idx)
            .framework_order()
            .find(|framework_id| {
                let Some(framework) = self.frameworks.get(&***framework_id) else {
                    return false;
                };
                if check_minimums {
                    let minimums = framework
                        .min_allocatable
                        .get(&role_idx)
                        .unwrap_or(&self.min_allocatable);
                    if !is_allocatable(quantities, minimums) {
                        return false;
                    }
                }
                framework.filters.is_empty()
                    || !framework.filters.is_filtered(agent_idx, role_idx, offer)
            })
            .cloned()
    }

    /// Records `offer`, already taken from the agent's available resources, as offered to
    /// `framework_id`, and returns it with its allocation info.
    fn make_offer(
        &mut self,
        agent_idx: usize,
        role_idx: usize,
        framework_id: FrameworkKey,
        offer: Resources,
        quantities: Quantities,
    ) -> Allocation {
        debug_assert!(self.roles.node(role_idx).is_eligible(&framework_id));
        let role = self.roles.node(role_idx).name.to_string();
        let mut resources = offer;
        resources.allocate(&role);
        let resources = Arc::new(resources);
        self.add_offer(
            agent_idx,
            &framework_id,
            role_idx,
            resources.clone(),
            quantities,
        );
        self.refresh_offerable(agent_idx);
        Allocation {
            framework_id: (*framework_id).clone(),
            agent_id: self.agent(agent_idx).id.clone(),
            role,
            resources,
        }
    }
}

/// Returns true if `quantities` hold one of `minimums`, or if there are no minimums.
fn is_allocatable(quantities: &Quantities, minimums: &[Quantities]) -> bool {
    minimums.is_empty() || minimums.iter().any(|minimum| covers(quantities, minimum))
}

/// Returns true if `quantities` has at least `minimum` of every name.
fn covers(quantities: &Quantities, minimum: &Quantities) -> bool {
    minimum
        .iter()
        .all(|(idx, amount)| quantities.get(idx) >= amount)
}
