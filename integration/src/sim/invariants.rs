//! The invariants of design.md that the simulation checks besides `MasterState`'s own
//! (`check_invariants`: offered + allocated within each agent's total, offers consistent).
//!
//! - Invariant 2: an offer is used at most once (a launch consumes offers the framework was
//!   sent, for its own agent, at most once each, within their resources); a task ID is launched
//!   at most once per framework while live.
//! - Task states a framework sees only move forward: after a terminal state it sees no other
//!   state, except that a TASK_LOST the master sent for an unreachable agent may be followed by
//!   the task's real states when the agent comes back (REASON_AGENT_REREGISTERED). Duplicates
//!   of an update already seen (same uuid) are allowed: delivery is at least once.
//! - Invariant 3, at the end of a run: every launched task reached exactly one terminal state
//!   known to the framework, or reconciliation reports it live, and then its agent runs it.

use std::collections::{BTreeMap, BTreeSet};

use strata_protocol::internal::RunTask;
use strata_protocol::mesos::{Offer, TaskState, TaskStatus, TaskStatusReason, TaskStatusSource};
use strata_protocol::{AgentId, Bytes, FrameworkId, OfferId, Resources, TaskId};

/// What a framework has seen of one task.
#[derive(Debug, Clone, Default)]
pub struct TaskHistory {
    /// The states seen, in order, for failure reports (bounded).
    pub states: Vec<TaskState>,
    uuids: BTreeSet<Bytes>,
    /// The terminal state the framework was told for good, if any.
    pub terminal: Option<TaskState>,
    /// The terminal state an explicit or implicit reconciliation reported.
    pub reconciled: Option<TaskState>,
    /// Set by a TASK_LOST that may still be taken back by the agent reregistering.
    provisional_lost: bool,
}

#[derive(Debug, Clone)]
struct Launch {
    agent_id: AgentId,
}

#[derive(Default)]
pub struct Checker {
    offers: BTreeMap<OfferId, Offer>,
    used_offers: BTreeSet<OfferId>,
    launches: BTreeMap<(FrameworkId, TaskId), Launch>,
    pub histories: BTreeMap<(FrameworkId, TaskId), TaskHistory>,
    /// Refusals of a launch whose task ID was already launched.
    pub n_refusals: usize,
}

/// Returns true for the master's answer to a RECONCILE.
fn is_reconciliation(status: &TaskStatus) -> bool {
    status.source == Some(TaskStatusSource::Master)
        && status.reason == Some(TaskStatusReason::ReasonReconciliation)
}

/// Returns true for the master's answer to a launch it refused before it reached an agent.
///
/// NOTE: The master answers every task of a refused ACCEPT, even one whose ID names a task
/// that is running (Mesos does the same). A framework cannot tell such an answer from news of
/// the running task, except by its reason; see the report of this simulation in the commit
/// that added it.
fn is_launch_refusal(status: &TaskStatus) -> bool {
    status.source == Some(TaskStatusSource::Master)
        && matches!(
            status.reason,
            Some(TaskStatusReason::ReasonInvalidOffers | TaskStatusReason::ReasonTaskInvalid)
        )
}

/// Returns true for a TASK_LOST the master sends about a task on an agent it cannot reach: the
/// task may in fact still run, and comes back if the agent does.
fn is_provisional_lost(status: &TaskStatus) -> bool {
    status.state == TaskState::Lost
        && status.source == Some(TaskStatusSource::Master)
        && matches!(
            status.reason,
            Some(TaskStatusReason::ReasonAgentRemoved | TaskStatusReason::ReasonReconciliation)
        )
}

fn unallocated(resources: &[strata_protocol::Resource]) -> Result<Resources, String> {
    let mut resources = Resources::from_resources(resources.iter().cloned())
        .map_err(|err| format!("invalid resources: {err}"))?;
    resources.unallocate();
    Ok(resources)
}

impl Checker {
    /// Records the offers of an OFFERS event the master sent.
    pub fn offers_sent(&mut self, offers: &[Offer]) -> Result<(), String> {
        for offer in offers {
            if self
                .offers
                .insert(offer.id.clone(), offer.clone())
                .is_some()
            {
                return Err(format!("offer ID {} was sent twice", offer.id));
            }
        }
        Ok(())
    }

    /// Checks the launches one ACCEPT produced (the RunTask messages the master emitted while
    /// handling it).
    pub fn accepted(
        &mut self,
        framework_id: &FrameworkId,
        offer_ids: &[OfferId],
        runs: &[&RunTask],
    ) -> Result<(), String> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut offered = Resources::new();
        let mut agent_id: Option<&AgentId> = None;
        for offer_id in offer_ids {
            let offer = self
                .offers
                .get(offer_id)
                .ok_or_else(|| format!("launch used offer {offer_id} that was never sent"))?;
            if &offer.framework_id != framework_id {
                return Err(format!(
                    "framework {framework_id} launched on offer {offer_id} of {}",
                    offer.framework_id
                ));
            }
            if agent_id.is_some_and(|a| a != &offer.agent_id) {
                return Err(format!(
                    "one launch used offers of two agents ({offer_ids:?})"
                ));
            }
            agent_id = Some(&offer.agent_id);
            if !self.used_offers.insert(offer_id.clone()) {
                return Err(format!("invariant 2: offer {offer_id} was used twice"));
            }
            offered += &unallocated(&offer.resources)?;
        }
        let mut used = Resources::new();
        for run in runs {
            let task = &run.task;
            if Some(&task.agent_id) != agent_id {
                return Err(format!(
                    "task {} launched on agent {} but the offers are for {agent_id:?}",
                    task.task_id, task.agent_id
                ));
            }
            used += &unallocated(&task.resources)?;
            let key = (framework_id.clone(), task.task_id.clone());
            if self.launches.contains_key(&key) {
                let history = self.histories.get(&key);
                if history.is_none_or(|h| h.terminal.is_none()) {
                    return Err(format!(
                        "invariant 2: task {} of {framework_id} launched again while live",
                        task.task_id
                    ));
                }
            }
            self.launches.insert(
                key,
                Launch {
                    agent_id: task.agent_id.clone(),
                },
            );
        }
        if !offered.contains(&used) {
            return Err(format!(
                "invariant 1: launched {used} from offers holding only {offered}"
            ));
        }
        Ok(())
    }

    /// Checks an UPDATE delivered to a framework against what it saw of the task before.
    pub fn update_seen(
        &mut self,
        framework_id: &FrameworkId,
        status: &TaskStatus,
    ) -> Result<(), String> {
        let key = (framework_id.clone(), status.task_id.clone());
        if is_launch_refusal(status) && self.launches.contains_key(&key) {
            // The answer to a second launch of a live task's ID (a duplicated ACCEPT, or a
            // framework reusing the ID): it concerns that launch, not the running task.
            self.n_refusals += 1;
            return Ok(());
        }
        let history = self.histories.entry(key).or_default();
        if let Some(uuid) = &status.uuid
            && !history.uuids.insert(uuid.clone())
        {
            return Ok(());
        }
        if history.states.len() < 32 && history.states.last() != Some(&status.state) {
            history.states.push(status.state);
        }
        let fail = |history: &TaskHistory, what: &str| {
            Err(format!(
                "task {} of {framework_id}: {what} (got {} from {:?} for {:?}; states seen {:?})",
                status.task_id, status.state, status.source, status.reason, history.states
            ))
        };
        if is_reconciliation(status) {
            return Self::reconciliation_seen(history, status).or_else(|what| fail(history, &what));
        }
        if history.provisional_lost {
            // The agent came back (or the task really is gone): anything may follow.
            history.provisional_lost = false;
        } else if let Some(terminal) = history.terminal {
            if status.state != terminal {
                return fail(history, &format!("state after terminal {terminal}"));
            }
            return Ok(());
        }
        if is_provisional_lost(status) {
            history.provisional_lost = true;
        } else if status.state.is_terminal() {
            if history.reconciled.is_some_and(|r| r != status.state) {
                return fail(history, "the task ended otherwise than reconciliation said");
            }
            history.terminal = Some(status.state);
        }
        Ok(())
    }

    /// Checks a reconciliation answer. It reports the latest state, which may run ahead of
    /// the updates still on their way, so it may name the end before the framework saw it; but
    /// it must never report a task live after the framework saw it end, nor name another end.
    fn reconciliation_seen(history: &mut TaskHistory, status: &TaskStatus) -> Result<(), String> {
        match status.state {
            // TASK_LOST is all a framework that is not partition-aware hears, whether the task
            // is on an unreachable agent or long gone: it says nothing either way.
            TaskState::Lost => Ok(()),
            // What the master answers for a task it has forgotten (its end was acknowledged):
            // consistent with any end.
            TaskState::Gone | TaskState::GoneByOperator | TaskState::Unknown => Ok(()),
            state if state.is_terminal() => {
                if let Some(seen) = history.terminal.or(history.reconciled)
                    && seen != state
                {
                    return Err(format!("reconciliation reports {state} after {seen}"));
                }
                history.reconciled = Some(state);
                Ok(())
            }
            state => match history.terminal {
                Some(seen) if !history.provisional_lost => Err(format!(
                    "reconciliation reports {state}, a live task, after {seen}"
                )),
                _ => Ok(()),
            },
        }
    }

    /// Returns every launched task: framework, task and agent.
    pub fn launched(&self) -> impl Iterator<Item = (&FrameworkId, &TaskId, &AgentId)> + '_ {
        self.launches
            .iter()
            .map(|((framework_id, task_id), launch)| (framework_id, task_id, &launch.agent_id))
    }

    pub fn n_launches(&self) -> usize {
        self.launches.len()
    }

    pub fn n_used_offers(&self) -> usize {
        self.used_offers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(task: &str, state: TaskState, uuid: Option<u8>) -> TaskStatus {
        let mut status = TaskStatus::new(TaskId::new(task).unwrap(), state);
        status.uuid = uuid.map(|n| Bytes::new(vec![n; 16]));
        status
    }

    #[test]
    fn terminal_then_running_is_caught_but_duplicates_are_not() {
        let framework_id = FrameworkId::new("f").unwrap();
        let mut checker = Checker::default();
        checker
            .update_seen(&framework_id, &status("t", TaskState::Running, Some(1)))
            .unwrap();
        checker
            .update_seen(&framework_id, &status("t", TaskState::Finished, Some(2)))
            .unwrap();
        checker
            .update_seen(&framework_id, &status("t", TaskState::Running, Some(1)))
            .expect("a duplicate of an update already seen is allowed");
        checker
            .update_seen(&framework_id, &status("t", TaskState::Running, Some(3)))
            .expect_err("a new RUNNING after FINISHED is not");
    }

    #[test]
    fn lost_from_the_master_may_be_taken_back() {
        let framework_id = FrameworkId::new("f").unwrap();
        let mut checker = Checker::default();
        let mut lost = status("t", TaskState::Lost, None);
        lost.source = Some(TaskStatusSource::Master);
        lost.reason = Some(TaskStatusReason::ReasonAgentRemoved);
        checker.update_seen(&framework_id, &lost).unwrap();
        let mut back = status("t", TaskState::Running, None);
        back.reason = Some(TaskStatusReason::ReasonAgentReregistered);
        checker.update_seen(&framework_id, &back).unwrap();
        checker
            .update_seen(&framework_id, &status("t", TaskState::Failed, Some(4)))
            .unwrap();
        assert_eq!(
            checker.histories.values().next().unwrap().terminal,
            Some(TaskState::Failed)
        );
    }
}
