//! Read-only views of the master for the HTTP layer, metrics and tests, plus the counters the
//! state machine keeps.

use std::collections::BTreeMap;

use strata_protocol::mesos::{AgentInfo, FrameworkInfo, Offer, Task, TaskState};
use strata_protocol::resources::AllocationInfo;
use strata_protocol::{AgentId, FrameworkId, OfferId, Pid, Resources};

use super::{AgentMode, FrameworkConn, MasterState};
use crate::allocator::RoleStats;

/// Monotonic counters of what the master did, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterCounters {
    pub agent_registrations: u64,
    pub agent_reregistrations: u64,
    pub agent_removals: u64,
    pub agents_marked_unreachable: u64,
    pub framework_subscriptions: u64,
    pub framework_removals: u64,
    pub offers_sent: u64,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    pub offers_rescinded: u64,
    pub tasks_launched: u64,
    /// Allocation runs (batch and event-driven).
    pub allocation_runs: u64,
    /// Tasks that reached each terminal state (and TASK_ERROR/TASK_DROPPED answers).
    pub tasks_terminal: BTreeMap<&'static str, u64>,
    pub valid_status_updates: u64,
    pub invalid_status_updates: u64,
    pub status_update_acknowledgements: u64,
    /// Scheduler calls received, by Mesos call type.
    pub calls: BTreeMap<&'static str, u64>,
}

impl MasterCounters {
    pub(super) fn count_task_state(&mut self, state: TaskState) {
        *self.tasks_terminal.entry(state.as_str()).or_default() += 1;
    }

    pub(super) fn count_call(&mut self, call_type: &'static str) {
        *self.calls.entry(call_type).or_default() += 1;
    }
}

/// A framework as the state endpoints show it.
#[derive(Debug, Clone)]
pub struct FrameworkSummary {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub connected: bool,
    /// Still known to the master (false for completed frameworks).
    pub active: bool,
    pub conn: Option<FrameworkConn>,
    pub roles: Vec<String>,
    pub suppressed_roles: Vec<String>,
    pub tasks: Vec<Task>,
    pub unreachable_tasks: Vec<Task>,
    pub completed_tasks: Vec<Task>,
    pub offers: Vec<Offer>,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
}

/// An agent as the state endpoints show it.
#[derive(Debug, Clone)]
pub struct AgentSummary {
    pub id: AgentId,
    pub pid: Pid,
    pub info: AgentInfo,
    pub version: String,
    pub total: Resources,
    /// Resources used by tasks and executors.
    pub used: Resources,
    /// Resources in outstanding offers.
    pub offered: Resources,
    pub connected: bool,
    pub mode: AgentMode,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
}

impl MasterState {
    /// Returns the master's counters.
    pub fn counters(&self) -> &MasterCounters {
        &self.counters
    }

    /// Returns the subscribed (and disconnected, and recovered) frameworks.
    pub fn frameworks(&self) -> Vec<FrameworkSummary> {
        self.frameworks
            .values()
            .map(|f| self.framework_summary(f))
            .collect()
    }

    /// Returns one subscribed (or disconnected, or recovered) framework.
    pub fn framework(&self, framework_id: &FrameworkId) -> Option<FrameworkSummary> {
        self.frameworks
            .get(framework_id)
            .map(|f| self.framework_summary(f))
    }

    /// Returns the info of a framework that was removed, if it is still remembered.
    pub fn completed_framework_info(&self, framework_id: &FrameworkId) -> Option<FrameworkInfo> {
        self.completed_frameworks
            .iter()
            .find(|f| &f.id == framework_id)
            .map(|f| f.info.clone())
    }

    /// Returns a live (or unreachable) task.
    pub fn task(
        &self,
        framework_id: &FrameworkId,
        task_id: &strata_protocol::TaskId,
    ) -> Option<Task> {
        let framework = self.frameworks.get(framework_id)?;
        let entry = framework
            .tasks
            .get(task_id)
            .or_else(|| framework.unreachable_tasks.get(task_id))?;
        Some(entry.to_task())
    }

    fn framework_summary(&self, framework: &super::Framework) -> FrameworkSummary {
        FrameworkSummary {
            id: framework.id.clone(),
            info: framework.info.clone(),
            connected: framework.conn.is_some(),
            active: true,
            conn: framework.conn.clone(),
            roles: framework.roles.iter().cloned().collect(),
            suppressed_roles: framework.suppressed_roles.iter().cloned().collect(),
            tasks: framework
                .tasks
                .values()
                .map(|entry| entry.to_task())
                .collect(),
            unreachable_tasks: framework
                .unreachable_tasks
                .values()
                .map(|entry| entry.to_task())
                .collect(),
            completed_tasks: framework.completed_tasks.iter().cloned().collect(),
            offers: framework
                .offers
                .iter()
                .filter_map(|id| self.offer(id))
                .collect(),
            registered_time: framework.registered_time,
            reregistered_time: framework.reregistered_time,
            unregistered_time: None,
        }
    }

    /// Returns the frameworks removed recently, oldest first.
    pub fn completed_frameworks(&self) -> Vec<FrameworkSummary> {
        self.completed_frameworks
            .iter()
            .map(|framework| FrameworkSummary {
                id: framework.id.clone(),
                info: framework.info.clone(),
                connected: false,
                active: false,
                conn: None,
                roles: super::frameworks::framework_roles(&framework.info)
                    .into_iter()
                    .collect(),
                suppressed_roles: Vec::new(),
                tasks: Vec::new(),
                unreachable_tasks: Vec::new(),
                completed_tasks: framework.tasks.iter().cloned().collect(),
                offers: Vec::new(),
                registered_time: 0.0,
                reregistered_time: None,
                unregistered_time: Some(framework.unregistered_time),
            })
            .collect()
    }

    /// Returns the registered agents.
    pub fn agents(&self) -> Vec<AgentSummary> {
        // One pass over the offers for all agents, rather than one per agent.
        let mut offered: BTreeMap<&AgentId, Resources> = BTreeMap::new();
        for offer in self.offers.values() {
            *offered.entry(&offer.agent_id).or_default() += &*offer.resources;
        }
        self.agents
            .values()
            .map(|agent| {
                let offered = offered.remove(&agent.id).unwrap_or_default();
                self.agent_summary(agent, offered)
            })
            .collect()
    }

    /// Returns one registered agent.
    pub fn agent(&self, agent_id: &AgentId) -> Option<AgentSummary> {
        self.agents.get(agent_id).map(|agent| {
            let mut offered = Resources::new();
            for offer in self
                .offers
                .values()
                .filter(|offer| offer.agent_id == agent.id)
            {
                offered += &*offer.resources;
            }
            self.agent_summary(agent, offered)
        })
    }

    fn agent_summary(&self, agent: &super::Agent, offered: Resources) -> AgentSummary {
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
        AgentSummary {
            id: agent.id.clone(),
            pid: agent.pid.clone(),
            info: {
                let mut info = agent.info.clone();
                info.resources = agent.total.to_wire();
                info
            },
            version: agent.version.clone(),
            total: agent.total.clone(),
            used,
            offered,
            connected: agent.connected,
            mode: agent.mode,
            registered_time: agent.registered_time,
            reregistered_time: agent.reregistered_time,
        }
    }

    /// Returns the custom executors running on registered agents.
    pub fn executors(&self) -> Vec<(AgentId, strata_protocol::mesos::ExecutorInfo)> {
        self.agents
            .values()
            .flat_map(|agent| {
                agent
                    .executors
                    .values()
                    .map(|executor| (agent.id.clone(), executor.info.clone()))
            })
            .collect()
    }

    /// Returns the unreachable agents and since when (Unix seconds).
    pub fn unreachable_agents(&self) -> Vec<(AgentId, AgentInfo, f64)> {
        self.unreachable_agents
            .iter()
            .map(|(id, agent)| (id.clone(), agent.info.clone(), agent.since))
            .collect()
    }

    /// Returns the agents recovered from the registry that have not reregistered yet, with
    /// their registered info.
    pub fn recovered_agents(&self) -> Vec<(AgentId, AgentInfo)> {
        self.recovered_agents
            .iter()
            .map(|(id, agent)| (id.clone(), agent.record.info.clone()))
            .collect()
    }

    /// Returns the agents marked gone and since when (Unix seconds).
    pub fn gone_agents(&self) -> Vec<(AgentId, f64)> {
        self.gone_agents
            .iter()
            .map(|(id, since)| (id.clone(), *since))
            .collect()
    }

    /// Returns an outstanding offer as it was sent.
    pub fn offer(&self, offer_id: &OfferId) -> Option<Offer> {
        let entry = self.offers.get(offer_id)?;
        let agent = self.agents.get(&entry.agent_id)?;
        Some(Offer {
            id: offer_id.clone(),
            framework_id: entry.framework_id.clone(),
            agent_id: entry.agent_id.clone(),
            hostname: agent.info.hostname.clone(),
            url: None,
            domain: None,
            resources: entry.resources.to_wire(),
            attributes: agent.info.attributes.clone(),
            executor_ids: Vec::new(),
            unavailability: None,
            allocation_info: Some(AllocationInfo {
                role: Some(entry.role.clone()),
            }),
        })
    }

    /// Returns how many frameworks are connected and how many are not, without copying them.
    pub fn framework_connections(&self) -> (usize, usize) {
        let connected = self
            .frameworks
            .values()
            .filter(|f| f.conn.is_some())
            .count();
        (connected, self.frameworks.len() - connected)
    }

    /// Returns how many removed frameworks are remembered.
    pub fn n_completed_frameworks(&self) -> usize {
        self.completed_frameworks.len()
    }

    /// Returns how many offers are outstanding.
    pub fn n_offers(&self) -> usize {
        self.offers.len()
    }

    /// Returns every outstanding offer.
    pub fn offers(&self) -> Vec<Offer> {
        self.offers.keys().filter_map(|id| self.offer(id)).collect()
    }

    /// Counts live tasks (and unreachable ones) by state, for metrics.
    pub fn task_counts(&self) -> BTreeMap<TaskState, usize> {
        let mut counts = BTreeMap::new();
        for framework in self.frameworks.values() {
            let tasks = framework
                .tasks
                .values()
                .chain(framework.unreachable_tasks.values());
            for entry in tasks {
                *counts.entry(entry.task.state).or_default() += 1;
            }
        }
        counts
    }

    /// Returns per-role allocation figures (GET_ROLES).
    pub fn roles(&self) -> Vec<RoleStats> {
        self.allocator.role_stats()
    }

    /// Returns the role weights set by the operator.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        self.allocator.weights()
    }

    /// Returns the quota limits set by the operator.
    pub fn quotas(&self) -> &BTreeMap<String, BTreeMap<String, f64>> {
        self.allocator.quotas()
    }

    /// Checks the invariants the master keeps (design.md 1 and 2), returning what is broken.
    /// Simulations and tests call it after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.allocator.check_invariants()?;
        for (offer_id, offer) in &self.offers {
            let framework = self
                .frameworks
                .get(&offer.framework_id)
                .ok_or_else(|| format!("offer {offer_id} belongs to unknown framework"))?;
            if !framework.offers.contains(offer_id) {
                return Err(format!(
                    "offer {offer_id} is missing from its framework's books"
                ));
            }
            let agent = self.agents.get(&offer.agent_id).ok_or_else(|| {
                format!("offer {offer_id} is on unknown agent {}", offer.agent_id)
            })?;
            if !agent.connected || agent.mode != AgentMode::Active {
                return Err(format!(
                    "offer {offer_id} is on agent {} that is not offerable",
                    agent.id
                ));
            }
        }
        for agent in self.agents.values() {
            let mut held = Resources::new();
            for offer in self
                .offers
                .values()
                .filter(|offer| offer.agent_id == agent.id)
            {
                held += &*offer.resources;
            }
            for (framework_id, task_id) in &agent.tasks {
                if let Some(entry) = self
                    .frameworks
                    .get(framework_id)
                    .and_then(|f| f.tasks.get(task_id))
                    && !entry.resources_recovered
                {
                    held += &entry.resources;
                }
            }
            let mut unallocated_total = agent.total.clone();
            unallocated_total.unallocate();
            held.unallocate();
            if !unallocated_total.contains(&held) {
                return Err(format!(
                    "agent {}: offered and used {held} exceed its total {}",
                    agent.id, agent.total
                ));
            }
        }
        for framework in self.frameworks.values() {
            for task_id in framework.tasks.keys() {
                if framework.unreachable_tasks.contains_key(task_id) {
                    return Err(format!("task {task_id} is both live and unreachable"));
                }
            }
        }
        Ok(())
    }
}
