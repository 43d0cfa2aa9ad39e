//! Dynamic reservations: RESERVE and UNRESERVE as offer operations inside an ACCEPT, and as the
//! operator's RESERVE_RESOURCES / UNRESERVE_RESOURCES.
//!
//! A reservation changes what an agent's resources are (unreserved `cpus:2` becomes `cpus(web):2`)
//! without changing how much there is. The master converts them in its books and the
//! allocator's, then sends the agent the complete set of checkpointed resources, which the agent
//! writes to disk so that the reservation outlives restarts.

use strata_protocol::internal::{CheckpointResources, Message};
use strata_protocol::{AgentId, FrameworkId, Resource, Resources};

use super::accept::Target;
use super::{Agent, Effect, MasterState, Now, OperatorError};

/// Which way a conversion goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Reserve,
    Unreserve,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Reserve => "RESERVE",
            Direction::Unreserve => "UNRESERVE",
        }
    }
}

/// Checks the reserved side of a conversion: dynamically reserved resources, each reserved to
/// `role` when one is given, and with the framework's principal when it set one.
fn check_reserved(
    direction: Direction,
    reserved: &Resources,
    role: Option<&str>,
    principal: Option<&str>,
) -> Result<(), String> {
    let name = direction.name();
    if reserved.is_empty() {
        return Err(format!("{name} names no resources"));
    }
    for resource in reserved.iter() {
        if !resource.is_dynamically_reserved() {
            return Err(format!(
                "{name} needs dynamically reserved resources, not {resource}"
            ));
        }
        if let Some(role) = role
            && resource.reservation_role() != role
        {
            return Err(format!(
                "{name} of {resource} is for role '{}' but the offer is for role '{role}'",
                resource.reservation_role()
            ));
        }
        let reservation_principal = resource
            .reservations
            .last()
            .and_then(|r| r.principal.as_deref());
        if direction == Direction::Reserve
            && let (Some(want), Some(got)) = (principal, reservation_principal)
            && want != got
        {
            return Err(format!(
                "RESERVE with principal '{got}' does not match the framework's principal '{want}'"
            ));
        }
    }
    Ok(())
}

/// Returns `(consumed, converted)`: what the conversion takes and what it gives.
fn conversion(
    direction: Direction,
    reserved: &Resources,
) -> Result<(Resources, Resources), String> {
    let unreserved = reserved
        .pop_reservation()
        .map_err(|err| format!("{}: {err}", direction.name()))?;
    Ok(match direction {
        Direction::Reserve => (unreserved, reserved.clone()),
        Direction::Unreserve => (reserved.clone(), unreserved),
    })
}

fn unallocated(resources: &Resources) -> Resources {
    let mut resources = resources.clone();
    resources.unallocate();
    resources
}

impl MasterState {
    /// Applies a RESERVE or UNRESERVE inside an ACCEPT to the offered resources left in
    /// `remaining`. An invalid operation is dropped (logged), as Mesos does, and the other
    /// operations of the call go on.
    pub(super) fn convert_offered(
        &mut self,
        framework_id: &FrameworkId,
        target: &Target,
        direction: Direction,
        resources: &[Resource],
        remaining: &mut Resources,
        out: &mut Vec<Effect>,
    ) {
        let (agent_id, role) = (&target.agent_id, target.role.as_str());
        let principal = self.frameworks[framework_id].info.principal.clone();
        let checked = super::accept::allocate_to(resources, role)
            .and_then(|wire| {
                Resources::from_resources(wire).map_err(|err| format!("invalid resources: {err}"))
            })
            .and_then(|reserved| {
                check_reserved(direction, &reserved, Some(role), principal.as_deref())?;
                conversion(direction, &reserved)
            })
            .and_then(|(consumed, converted)| {
                if remaining.contains(&consumed) {
                    Ok((consumed, converted))
                } else {
                    Err(format!(
                        "{} of {consumed} exceeds what the offers hold ({remaining})",
                        direction.name()
                    ))
                }
            });
        let (consumed, converted) = match checked {
            Ok(pair) => pair,
            Err(message) => {
                tracing::info!(%framework_id, %agent_id, %message, "dropping invalid offer operation");
                return;
            }
        };
        if let Err(err) =
            self.allocator
                .update_allocation(framework_id, agent_id, &consumed, &converted)
        {
            tracing::error!(%framework_id, %agent_id, error = %err, "allocator refused a conversion");
            return;
        }
        *remaining -= &consumed;
        *remaining += &converted;
        self.convert_total(agent_id, &consumed, &converted, out);
        tracing::info!(%framework_id, %agent_id, operation = direction.name(), resources = %converted, "applied offer operation");
    }

    /// Changes an agent's total and sends it the new checkpointed resources.
    fn convert_total(
        &mut self,
        agent_id: &AgentId,
        consumed: &Resources,
        converted: &Resources,
        out: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.total -= &unallocated(consumed);
        agent.total += &unallocated(converted);
        out.push(Effect::Agent {
            pid: agent.pid.clone(),
            message: Message::CheckpointResources(CheckpointResources {
                resources: checkpointed(agent),
            }),
        });
    }

    /// RESERVE_RESOURCES and UNRESERVE_RESOURCES by the operator: the resources must not be
    /// in use. Outstanding offers on the agent are rescinded first, as Mesos does, so that
    /// offered resources can be converted too.
    pub fn operator_convert(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        direction: Direction,
        resources: Vec<Resource>,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        let bad = OperatorError::BadRequest;
        if !self.agents.contains_key(agent_id) {
            return Err(OperatorError::NotFound(format!(
                "agent {agent_id} is not registered"
            )));
        }
        let reserved = Resources::from_resources(resources)
            .map_err(|err| bad(format!("invalid resources: {err}")))?;
        check_reserved(direction, &reserved, None, None).map_err(bad)?;
        let (consumed, converted) = conversion(direction, &reserved).map_err(bad)?;
        self.remove_agent_offers(now, agent_id, out);
        let agent = &self.agents[agent_id];
        let mut available = agent.total.clone();
        available -= &unallocated(&self.agent_used(agent));
        if !available.contains(&consumed) {
            return Err(bad(format!(
                "{} of {consumed} exceeds what agent {agent_id} has free ({available})",
                direction.name()
            )));
        }
        let mut new_total = agent.total.clone();
        new_total -= &consumed;
        new_total += &converted;
        self.allocator
            .update_agent_total(agent_id, new_total)
            .map_err(|err| bad(err.to_string()))?;
        self.convert_total(agent_id, &consumed, &converted, out);
        self.allocation_pending = true;
        Ok(())
    }

    /// What the tasks and executors on an agent use.
    fn agent_used(&self, agent: &Agent) -> Resources {
        let mut used = Resources::new();
        for (framework_id, task_id) in &agent.tasks {
            if let Some(entry) = self
                .frameworks
                .get(framework_id)
                .and_then(|f| f.tasks.get(task_id))
                && !entry.resources_recovered
            {
                used += &entry.resources;
            }
        }
        for executor in agent.executors.values() {
            used += &executor.resources;
        }
        used
    }
}

/// The resources an agent must keep on disk: its dynamic reservations.
fn checkpointed(agent: &Agent) -> Vec<Resource> {
    agent
        .total
        .filter(Resource::is_dynamically_reserved)
        .to_wire()
}
