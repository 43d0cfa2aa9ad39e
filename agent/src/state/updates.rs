//! Status updates: from executors, made by the agent itself, acknowledged by frameworks. The
//! reliable part (checkpoint, order, retries) is the [`StatusUpdateManager`]'s; this file keeps
//! the agent's task records in step with it.
//!
//! [`StatusUpdateManager`]: crate::status_updates::StatusUpdateManager

use strata_protocol::executor::{self, Event};
use strata_protocol::internal;
use strata_protocol::mesos::{TaskState, TaskStatus, TaskStatusReason, TaskStatusSource};
use strata_protocol::{ExecutorId, FrameworkId, TaskId};

use super::{AgentState, CheckpointOp, Effect, ExecutorPhase, InputError, Now};
use crate::status_updates::UpdateEffect;

impl AgentState {
    /// An UPDATE call from an executor.
    pub(super) fn executor_update(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        mut status: TaskStatus,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let Some(uuid) = status.uuid.clone() else {
            return Err(InputError::InvalidUpdate(
                "an executor's update must carry a uuid".into(),
            ));
        };
        if status.state == TaskState::Staging {
            return Err(InputError::InvalidUpdate(
                "an executor cannot send TASK_STAGING".into(),
            ));
        }
        let executor = self.executor(framework_id, executor_id).ok_or_else(|| {
            InputError::UnknownExecutor {
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
            }
        })?;
        let task_id = status.task_id.clone();
        if !executor.launched.contains_key(&task_id) && !executor.terminated.contains_key(&task_id)
        {
            return Err(InputError::InvalidUpdate(format!(
                "task {task_id} is not running in executor {executor_id}"
            )));
        }
        let conn = executor.conn.clone();
        status.source = Some(TaskStatusSource::Executor);
        status.agent_id = self.agent_id.clone();
        status.executor_id = Some(executor_id.clone());
        let timestamp = status.timestamp.unwrap_or(now.unix);
        status.timestamp = Some(timestamp);
        self.record_update(
            now,
            framework_id,
            Some(executor_id),
            status,
            timestamp,
            uuid.clone(),
            effects,
        )?;
        // The update is checkpointed (the effects above come first): the executor may forget it.
        if let Some(conn) = conn {
            effects.push(Effect::Executor {
                conn,
                event: Event::Acknowledged(executor::Acknowledged { task_id, uuid }),
            });
        }
        Ok(())
    }

    /// Sends an update the agent makes itself (an executor that died, a task killed before
    /// launch, a task the agent never heard of).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn agent_update(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: Option<&ExecutorId>,
        task_id: &TaskId,
        state: TaskState,
        reason: Option<TaskStatusReason>,
        message: &str,
        effects: &mut Vec<Effect>,
    ) {
        self.own_update(
            now,
            framework_id,
            executor_id,
            task_id,
            state,
            reason,
            message,
            TaskStatusSource::Agent,
            effects,
        );
    }

    /// Sends an update the agent makes, as the agent or, for a command task it runs itself, as
    /// that task's executor.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn own_update(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: Option<&ExecutorId>,
        task_id: &TaskId,
        state: TaskState,
        reason: Option<TaskStatusReason>,
        message: &str,
        source: TaskStatusSource,
        effects: &mut Vec<Effect>,
    ) {
        let uuid = self.next_uuid();
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.source = Some(source);
        status.reason = reason;
        status.message = (!message.is_empty()).then(|| message.to_owned());
        status.agent_id = self.agent_id.clone();
        status.executor_id = executor_id.cloned();
        status.timestamp = Some(now.unix);
        status.uuid = Some(uuid.clone());
        if let Err(error) = self.record_update(
            now,
            framework_id,
            executor_id,
            status,
            now.unix,
            uuid,
            effects,
        ) {
            tracing::warn!(%framework_id, %task_id, %error, "agent update refused");
        }
    }

    /// Applies an update to the task's record and hands it to the status update manager.
    #[allow(clippy::too_many_arguments)]
    fn record_update(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: Option<&ExecutorId>,
        status: TaskStatus,
        timestamp: f64,
        uuid: strata_protocol::Bytes,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let Some(agent_id) = self.agent_id.clone() else {
            return Err(InputError::Refused(
                "status update before this agent registered".into(),
            ));
        };
        let checkpoint = self
            .frameworks
            .get(framework_id)
            .is_some_and(|framework| framework.checkpoint());
        let update = internal::StatusUpdate {
            framework_id: framework_id.clone(),
            agent_id,
            executor_id: executor_id.cloned(),
            status: status.clone(),
            timestamp,
            uuid,
            latest_state: None,
        };
        let mut out = Vec::new();
        self.updates
            .update(now.mono, update, checkpoint, &mut out)
            .map_err(|error| InputError::InvalidUpdate(error.to_string()))?;
        // The task's record follows the newest state; a terminal task stops counting as live.
        if let Some(executor_id) = executor_id
            && let Some(executor) = self.executor_mut(framework_id, executor_id)
        {
            let task_id = &status.task_id;
            if let Some(task) = executor.launched.get_mut(task_id) {
                task.state = status.state;
                push_status(&mut task.statuses, &status);
                if status.state.is_terminal() {
                    let task = executor.launched.remove(task_id).expect("present");
                    executor.terminated.insert(task_id.clone(), task);
                }
            } else if let Some(info) = executor.queued.remove(task_id) {
                let command_executor = executor.command_executor;
                let mut task = self.task_from_info(
                    &info,
                    framework_id,
                    executor_id,
                    command_executor,
                    status.state,
                );
                push_status(&mut task.statuses, &status);
                let executor = self
                    .executor_mut(framework_id, executor_id)
                    .expect("present");
                executor.terminated.insert(task_id.clone(), task);
            }
        }
        self.apply_update_effects(out, effects);
        Ok(())
    }

    /// The master relays a framework's ACKNOWLEDGE.
    pub(super) fn acknowledgement(
        &mut self,
        now: Now,
        ack: internal::StatusUpdateAcknowledgement,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let mut out = Vec::new();
        let outcome = self
            .updates
            .acknowledge(
                now.mono,
                &ack.framework_id,
                &ack.task_id,
                &ack.uuid,
                &mut out,
            )
            .map_err(|error| InputError::Refused(error.to_string()))?;
        self.apply_update_effects(out, effects);
        if outcome.stream_closed {
            self.task_completed(&ack.framework_id, &ack.task_id, effects);
        }
        Ok(())
    }

    /// A terminal task whose updates are all acknowledged: keep it only as history.
    fn task_completed(
        &mut self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        effects: &mut Vec<Effect>,
    ) {
        let key = (framework_id.clone(), task_id.clone());
        let Some(executor_id) = self.tasks.get(&key).cloned() else {
            // An update about a task the agent never ran (reconciliation): nothing to keep.
            self.remove_framework_if_idle(framework_id, effects);
            return;
        };
        let max_tasks = self.config.max_completed_tasks_per_executor;
        let Some(executor) = self.executor_mut(framework_id, &executor_id) else {
            return;
        };
        if let Some(task) = executor.terminated.remove(task_id) {
            executor.completed.push_back(task);
            while executor.completed.len() > max_tasks {
                executor.completed.pop_front();
            }
            self.tasks.remove(&key);
        }
        let executor = self
            .executor(framework_id, &executor_id)
            .expect("checked above");
        if executor.phase == ExecutorPhase::Running
            && executor.command_executor
            && !executor.has_incomplete_tasks()
        {
            // The command executor runs one task; it exits by itself once its task's terminal
            // update is acknowledged, and the container exit finishes the executor.
        }
        self.remove_executor_if_done(framework_id, &executor_id, effects);
    }

    pub(super) fn tick_updates(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let mut out = Vec::new();
        self.updates.tick(now.mono, &mut out);
        self.apply_update_effects(out, effects);
    }

    /// Turns the status update manager's effects into the agent's.
    pub(super) fn apply_update_effects(
        &mut self,
        out: Vec<UpdateEffect>,
        effects: &mut Vec<Effect>,
    ) {
        for effect in out {
            match effect {
                UpdateEffect::Checkpoint {
                    framework_id,
                    task_id,
                    record,
                } => {
                    let Some(agent_id) = self.agent_id.clone() else {
                        continue;
                    };
                    let Some(executor_id) = self
                        .tasks
                        .get(&(framework_id.clone(), task_id.clone()))
                        .cloned()
                    else {
                        // A task the agent never ran has nothing on disk to attach to.
                        continue;
                    };
                    let Some(executor) = self.executor(&framework_id, &executor_id) else {
                        continue;
                    };
                    effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Update {
                        agent_id,
                        framework_id,
                        executor_id,
                        container_id: executor.container_id.clone(),
                        task_id,
                        record,
                    })));
                }
                UpdateEffect::Forward(update) => {
                    if let Some(pid) = self.master_pid().cloned() {
                        self.counters.updates_forwarded += 1;
                        effects.push(Effect::Master {
                            pid,
                            message: update.into(),
                        });
                    }
                }
            }
        }
    }

    /// Answers the master's list of tasks it believes are here: each one the agent does not know
    /// gets a TASK_LOST (TASK_DROPPED for partition-aware frameworks).
    pub(super) fn reconcile_tasks(
        &mut self,
        now: Now,
        reconcile: internal::ReconcileTasks,
        effects: &mut Vec<Effect>,
    ) {
        let framework_info = self
            .frameworks
            .get(&reconcile.framework_id)
            .map(|framework| framework.info.clone())
            .or(reconcile.framework);
        let state = super::executors::lost_or_dropped(framework_info.as_ref());
        for status in reconcile.statuses {
            let key = (reconcile.framework_id.clone(), status.task_id.clone());
            if self.tasks.contains_key(&key) {
                continue;
            }
            self.agent_update(
                now,
                &reconcile.framework_id,
                None,
                &status.task_id,
                state,
                Some(TaskStatusReason::ReasonReconciliation),
                "Task is unknown to the agent",
                effects,
            );
        }
    }
}

/// Keeps a task's status history, without the data payloads (as Mesos does, to bound memory).
fn push_status(statuses: &mut Vec<TaskStatus>, status: &TaskStatus) {
    let mut status = status.clone();
    status.data = None;
    statuses.push(status);
}
