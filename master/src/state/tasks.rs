//! Tasks after launch: status updates from agents, acknowledgements, KILL, RECONCILE,
//! framework <-> executor messages and exited executors.

use strata_protocol::internal::{
    ExecutorToFramework, ExitedExecutor, FrameworkToExecutor, KillTask, Message, ShutdownExecutor,
    ShutdownFramework, StatusUpdate, StatusUpdateAcknowledgement,
};
use strata_protocol::mesos::{TaskState, TaskStatus, TaskStatusReason, TaskStatusSource, TimeInfo};
use strata_protocol::scheduler::{
    self, Acknowledge, Event, Failure, Kill, ReconcileTask, Shutdown, Update,
};
use strata_protocol::{AgentId, FrameworkId, Pid, TaskId};

use super::frameworks::push_bounded;
use super::{CallError, Effect, MasterState, Now, OperatorEvent, TaskEntry};

/// The length of a status update UUID, in bytes.
const UUID_LEN: usize = 16;

impl MasterState {
    /// Builds an UPDATE that the master itself generates. It carries no `uuid`, so the
    /// framework does not acknowledge it.
    pub(super) fn master_update(
        &self,
        now: Now,
        task_id: &TaskId,
        agent_id: Option<&AgentId>,
        state: TaskState,
        reason: TaskStatusReason,
        message: &str,
    ) -> Event {
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.source = Some(TaskStatusSource::Master);
        status.reason = Some(reason);
        status.message = Some(message.to_owned());
        status.agent_id = agent_id.cloned();
        status.timestamp = Some(now.unix);
        Event::Update(Box::new(Update { status }))
    }

    /// Tells operators about an update the master generated itself.
    pub(super) fn emit_master_update(&mut self, framework_id: &FrameworkId, event: &Event) {
        // Checked first: the status is copied only for operator streams that will read it.
        if !self.operator_events_enabled {
            return;
        }
        if let Event::Update(update) = event {
            self.emit(OperatorEvent::TaskUpdated {
                framework_id: framework_id.clone(),
                status: update.status.clone(),
                state: update.status.state,
            });
        }
    }

    pub(super) fn status_update(
        &mut self,
        now: Now,
        from: &Pid,
        update: StatusUpdate,
        out: &mut Vec<Effect>,
    ) {
        let framework_id = update.framework_id.clone();
        let Some(agent_id) = self.agent_by_pid.get(from).cloned() else {
            tracing::debug!(%from, "ignoring status update from an agent that is not registered");
            self.counters.invalid_status_updates += 1;
            return;
        };
        if agent_id != update.agent_id {
            tracing::warn!(%from, %agent_id, claimed = %update.agent_id, "ignoring status update for another agent");
            self.counters.invalid_status_updates += 1;
            return;
        }
        if !self.frameworks.contains_key(&framework_id) {
            if self
                .completed_frameworks
                .iter()
                .any(|f| f.id == framework_id)
            {
                // The framework is gone for good: tell the agent to stop its tasks rather
                // than retry this update forever.
                out.push(Effect::Agent {
                    pid: from.clone(),
                    message: Message::ShutdownFramework(ShutdownFramework { framework_id }),
                });
            }
            self.counters.invalid_status_updates += 1;
            return;
        }
        let mut status = update.status;
        status.uuid = Some(update.uuid.clone());
        status.agent_id.get_or_insert_with(|| agent_id.clone());
        let mut latest = update.latest_state.unwrap_or(status.state);
        let mut changed = false;
        let freed = self
            .frameworks
            .get_mut(&framework_id)
            .and_then(|framework| {
                let entry = framework.tasks.get_mut(&status.task_id)?;
                // An agent sends a task's updates in order, one at a time, so a non-terminal
                // update after a terminal one is a late copy of an earlier one (a delayed
                // retry). It is still forwarded, but must neither move the task back from a
                // terminal state nor change which update the next acknowledgement must match.
                let stale = entry
                    .task
                    .status_update_state
                    .is_some_and(TaskState::is_terminal)
                    && !status.state.is_terminal();
                if entry.task.state.is_terminal() && !latest.is_terminal() {
                    latest = entry.task.state;
                }
                changed = entry.task.state != latest;
                entry.task.state = latest;
                if !stale {
                    entry.task.status_update_state = Some(status.state);
                    entry.task.status_update_uuid = Some(update.uuid.clone());
                    // Only the latest status is kept: a task is a few hundred bytes without its
                    // history, and a chatty health check would otherwise multiply that.
                    entry.task.statuses = vec![status.clone()];
                }
                if latest.is_terminal() && !entry.resources_recovered {
                    entry.resources_recovered = true;
                    return Some(entry.resources.clone());
                }
                None
            });
        if let Some(resources) = freed {
            self.counters.count_task_state(latest);
            self.recover_used(now, &framework_id, &agent_id, &resources);
        }
        self.counters.valid_status_updates += 1;
        // Retries of an update the master already has change nothing, and say nothing; and the
        // status is copied only for operator streams that will read it.
        if changed && self.operator_events_enabled {
            let event = OperatorEvent::TaskUpdated {
                framework_id: framework_id.clone(),
                status: status.clone(),
                state: latest,
            };
            self.emit(event);
        }
        self.send_to_framework(
            &framework_id,
            Event::Update(Box::new(Update { status })),
            out,
        );
    }

    pub(super) fn acknowledge(
        &mut self,
        _now: Now,
        framework_id: &FrameworkId,
        ack: Acknowledge,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        if ack.uuid.len() != UUID_LEN {
            return Err(CallError::BadRequest(format!(
                "'uuid' must be a {UUID_LEN}-byte UUID, not {} bytes",
                ack.uuid.len()
            )));
        }
        match self.agents.get(&ack.agent_id) {
            Some(agent) if agent.connected => out.push(Effect::Agent {
                pid: agent.pid.clone(),
                message: Message::StatusUpdateAcknowledgement(StatusUpdateAcknowledgement {
                    agent_id: ack.agent_id.clone(),
                    framework_id: framework_id.clone(),
                    task_id: ack.task_id.clone(),
                    uuid: ack.uuid.clone(),
                }),
            }),
            _ => {
                tracing::info!(%framework_id, agent_id = %ack.agent_id, "dropping acknowledgement for an agent that is not connected");
            }
        }
        self.counters.status_update_acknowledgements += 1;
        let acked_terminal = self.frameworks[framework_id]
            .tasks
            .get(&ack.task_id)
            .is_some_and(|entry| {
                entry.task.status_update_uuid.as_ref() == Some(&ack.uuid)
                    && entry
                        .task
                        .status_update_state
                        .is_some_and(TaskState::is_terminal)
            });
        if acked_terminal {
            self.remove_task(framework_id, &ack.task_id, out);
        }
        Ok(())
    }

    /// Moves a task whose terminal update was acknowledged to the completed tasks.
    fn remove_task(&mut self, framework_id: &FrameworkId, task_id: &TaskId, out: &mut Vec<Effect>) {
        let max = self.config.max_completed_tasks_per_framework;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(entry) = framework.tasks.remove(task_id) else {
            return;
        };
        debug_assert!(
            entry.resources_recovered,
            "a terminal task's resources were recovered"
        );
        if let Some(agent) = self.agents.get_mut(&entry.task.agent_id) {
            agent.tasks.remove(&(framework_id.clone(), task_id.clone()));
        }
        push_bounded(&mut framework.completed_tasks, entry.into_task(), max);
        self.check_drained(out);
    }

    pub(super) fn kill(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        kill: Kill,
        out: &mut Vec<Effect>,
    ) {
        let framework = &self.frameworks[framework_id];
        if let Some(entry) = framework.tasks.get(&kill.task_id) {
            if entry.task.state.is_terminal() {
                return;
            }
            match self.agents.get(&entry.task.agent_id) {
                Some(agent) if agent.connected => out.push(Effect::Agent {
                    pid: agent.pid.clone(),
                    message: Message::KillTask(KillTask {
                        framework_id: framework_id.clone(),
                        task_id: kill.task_id,
                        kill_policy: kill.kill_policy,
                    }),
                }),
                _ => {
                    tracing::info!(%framework_id, task_id = %kill.task_id, "cannot kill a task on a disconnected agent yet")
                }
            }
            return;
        }
        if framework.unreachable_tasks.contains_key(&kill.task_id) {
            tracing::info!(%framework_id, task_id = %kill.task_id, "cannot kill a task on an unreachable agent");
            return;
        }
        // An unknown task is answered as an explicit reconciliation of it, as in Mesos.
        let task = ReconcileTask {
            task_id: kill.task_id,
            agent_id: kill.agent_id,
        };
        self.reconcile(now, framework_id, vec![task], out);
    }

    pub(super) fn reconcile(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        tasks: Vec<ReconcileTask>,
        out: &mut Vec<Effect>,
    ) {
        let updates = if tasks.is_empty() {
            self.implicit_reconciliation(now, framework_id)
        } else {
            tasks
                .iter()
                .filter_map(|task| self.explicit_reconciliation(now, framework_id, task))
                .collect()
        };
        for event in updates {
            self.send_to_framework(framework_id, event, out);
        }
    }

    /// Every live task, and every terminal one whose update is not yet acknowledged.
    fn implicit_reconciliation(&self, now: Now, framework_id: &FrameworkId) -> Vec<Event> {
        let framework = &self.frameworks[framework_id];
        let mut updates: Vec<Event> = framework
            .tasks
            .values()
            .map(|entry| self.reconciled(now, entry))
            .collect();
        updates.extend(framework.unreachable_tasks.values().map(|entry| {
            self.unreachable_reconciled(
                now,
                framework_id,
                &entry.task.task_id,
                &entry.task.agent_id,
            )
        }));
        updates
    }

    /// The answers of Mesos's explicit reconciliation; none for a task on an agent recovered
    /// from the registry that has not reregistered yet, since the master cannot know.
    fn explicit_reconciliation(
        &self,
        now: Now,
        framework_id: &FrameworkId,
        task: &ReconcileTask,
    ) -> Option<Event> {
        let framework = &self.frameworks[framework_id];
        if let Some(entry) = framework.tasks.get(&task.task_id) {
            return Some(self.reconciled(now, entry));
        }
        if let Some(entry) = framework.unreachable_tasks.get(&task.task_id) {
            return Some(self.unreachable_reconciled(
                now,
                framework_id,
                &task.task_id,
                &entry.task.agent_id,
            ));
        }
        let partition_aware = self.is_partition_aware(framework_id);
        let pick = |aware: TaskState| {
            if partition_aware {
                aware
            } else {
                TaskState::Lost
            }
        };
        let agent_id = task.agent_id.as_ref();
        let (state, message) = match agent_id {
            Some(agent_id) if self.recovered_agents.contains_key(agent_id) => {
                tracing::debug!(%framework_id, task_id = %task.task_id, %agent_id, "no reconciliation answer until the recovered agent reregisters");
                return None;
            }
            Some(agent_id) if self.agents.contains_key(agent_id) => (
                pick(TaskState::Gone),
                "Reconciliation: Task is unknown to the agent",
            ),
            Some(agent_id) if self.unreachable_agents.contains_key(agent_id) => {
                return Some(self.unreachable_reconciled(
                    now,
                    framework_id,
                    &task.task_id,
                    agent_id,
                ));
            }
            Some(agent_id) if self.gone_agents.contains_key(agent_id) => (
                pick(TaskState::GoneByOperator),
                "Reconciliation: Task is on an agent marked gone",
            ),
            _ => (pick(TaskState::Unknown), "Reconciliation: Task is unknown"),
        };
        Some(self.master_update(
            now,
            &task.task_id,
            agent_id,
            state,
            TaskStatusReason::ReasonReconciliation,
            message,
        ))
    }

    fn reconciled(&self, now: Now, entry: &TaskEntry) -> Event {
        let mut event = self.master_update(
            now,
            &entry.task.task_id,
            Some(&entry.task.agent_id),
            entry.task.state,
            TaskStatusReason::ReasonReconciliation,
            "Reconciliation: Latest task state",
        );
        if let Event::Update(update) = &mut event {
            update.status.executor_id = entry.task.executor_id.clone();
        }
        event
    }

    fn unreachable_reconciled(
        &self,
        now: Now,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        agent_id: &AgentId,
    ) -> Event {
        let state = if self.is_partition_aware(framework_id) {
            TaskState::Unreachable
        } else {
            TaskState::Lost
        };
        let mut event = self.master_update(
            now,
            task_id,
            Some(agent_id),
            state,
            TaskStatusReason::ReasonReconciliation,
            "Reconciliation: Task is on an unreachable agent",
        );
        if let (Event::Update(update), Some(agent)) =
            (&mut event, self.unreachable_agents.get(agent_id))
        {
            update.status.unreachable_time = Some(unix_to_time_info(agent.since));
        }
        event
    }

    pub(super) fn framework_message(
        &mut self,
        framework_id: &FrameworkId,
        message: scheduler::Message,
        out: &mut Vec<Effect>,
    ) {
        match self.agents.get(&message.agent_id) {
            Some(agent) if agent.connected => out.push(Effect::Agent {
                pid: agent.pid.clone(),
                message: Message::FrameworkToExecutor(FrameworkToExecutor {
                    agent_id: message.agent_id,
                    framework_id: framework_id.clone(),
                    executor_id: message.executor_id,
                    data: message.data,
                }),
            }),
            _ => {
                tracing::info!(%framework_id, agent_id = %message.agent_id, "dropping framework message for an agent that is not connected")
            }
        }
    }

    pub(super) fn executor_message(
        &mut self,
        from: &Pid,
        message: ExecutorToFramework,
        out: &mut Vec<Effect>,
    ) {
        if self.agent_by_pid.get(from) != Some(&message.agent_id) {
            tracing::warn!(%from, "ignoring executor message relayed by the wrong agent");
            return;
        }
        let event = Event::Message(scheduler::Message {
            agent_id: message.agent_id,
            executor_id: message.executor_id,
            data: message.data,
        });
        self.send_to_framework(&message.framework_id, event, out);
    }

    pub(super) fn exited_executor(
        &mut self,
        now: Now,
        from: &Pid,
        exited: ExitedExecutor,
        out: &mut Vec<Effect>,
    ) {
        if self.agent_by_pid.get(from) != Some(&exited.agent_id) {
            tracing::warn!(%from, "ignoring executor exit reported by the wrong agent");
            return;
        }
        let key = (exited.framework_id.clone(), exited.executor_id.clone());
        let resources = self
            .agents
            .get_mut(&exited.agent_id)
            .and_then(|agent| agent.executors.remove(&key))
            .map(|entry| entry.resources);
        if let Some(framework) = self.frameworks.get_mut(&exited.framework_id)
            && let Some(executors) = framework.executors.get_mut(&exited.agent_id)
        {
            executors.remove(&exited.executor_id);
        }
        if let Some(resources) = resources.filter(|r| !r.is_empty()) {
            self.recover_used(now, &exited.framework_id, &exited.agent_id, &resources);
        }
        let event = Event::Failure(Failure {
            agent_id: Some(exited.agent_id),
            executor_id: Some(exited.executor_id),
            status: Some(exited.status),
        });
        self.send_to_framework(&exited.framework_id, event, out);
    }

    pub(super) fn shutdown_executor(
        &mut self,
        framework_id: &FrameworkId,
        shutdown: Shutdown,
        out: &mut Vec<Effect>,
    ) {
        match self.agents.get(&shutdown.agent_id) {
            Some(agent) if agent.connected => out.push(Effect::Agent {
                pid: agent.pid.clone(),
                message: Message::ShutdownExecutor(ShutdownExecutor {
                    framework_id: framework_id.clone(),
                    executor_id: shutdown.executor_id,
                }),
            }),
            _ => {
                tracing::info!(%framework_id, agent_id = %shutdown.agent_id, "cannot shut down an executor on an agent that is not connected")
            }
        }
    }
}

/// Converts seconds since the Unix epoch to a `TimeInfo`.
pub(super) fn unix_to_time_info(unix: f64) -> TimeInfo {
    TimeInfo {
        nanoseconds: (unix * 1e9) as i64,
    }
}
