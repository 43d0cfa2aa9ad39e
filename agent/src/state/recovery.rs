//! Recovery after an agent restart: rebuilding frameworks, executors, tasks and status update
//! streams from the checkpoint, and deciding the fate of each executor the previous run left.
//!
//! Executors whose containers still run get `executor_reregistration_timeout` to resubscribe;
//! those that do not, and those whose containers are gone (they died while the agent was down,
//! the machine rebooted, or the operator asked for `--recover=cleanup`), end, and their tasks
//! get a terminal update. Nothing is sent before the agent reregisters: the status update
//! manager starts paused.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use strata_protocol::ContainerId;
use strata_protocol::mesos::{ExecutorInfo, ExecutorType, TaskState, TaskStatusReason};

use super::{
    AgentState, ContainerEnd, Effect, Executor, ExecutorPhase, Framework, FrameworkPhase, Now,
};
use crate::checkpoint::{Recovered, RecoveredRun};
use crate::status_updates::UpdateRecord;

/// What the agent found of its previous run, besides the checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryFacts {
    /// Containers of the previous run whose processes still run.
    pub alive: BTreeSet<ContainerId>,
    /// Why every executor of the previous run is gone regardless (a reboot, or
    /// `--recover=cleanup`); `None` when only the containers not in `alive` are.
    pub all_gone: Option<String>,
    /// How containers not in `alive` ended, where that is known (the reaper kept their exit
    /// statuses): a command task the agent ran itself then gets its real terminal state.
    pub exited: BTreeMap<ContainerId, ContainerEnd>,
}

/// Tells whether a checkpointed executor is the built-in command executor, which the agent made
/// for a command task: it has no command of its own (a custom executor must have one).
fn is_command_executor(info: &ExecutorInfo) -> bool {
    info.executor_type != Some(ExecutorType::Default)
        && info
            .command
            .as_ref()
            .is_none_or(|command| command.value.is_none())
}

impl AgentState {
    /// Rebuilds the state from a checkpoint, before the agent detects a master.
    pub fn recover(
        &mut self,
        now: Now,
        recovered: Recovered,
        facts: RecoveryFacts,
        effects: &mut Vec<Effect>,
    ) {
        let agent_id = recovered.agent_info.id.clone();
        tracing::info!(agent_id = ?agent_id, frameworks = recovered.frameworks.len(), "recovering agent state");
        self.agent_id = agent_id;
        self.checkpointed_resources = recovered.resources;
        let mut ended = Vec::new();
        for framework in recovered.frameworks {
            let Some(framework_id) = framework.info.id.clone() else {
                continue;
            };
            let mut executors = BTreeMap::new();
            for executor in framework.executors {
                let Some(run) = executor.runs.into_iter().last() else {
                    continue;
                };
                let container_id = run.container_id.clone();
                if run.record.completed {
                    continue;
                }
                let alive = facts.all_gone.is_none() && facts.alive.contains(&container_id);
                // A command task the agent ran itself, whose exit the reaper kept, ends as it
                // did; an executor's own exit says nothing of its tasks, which are lost.
                let known_end = (facts.all_gone.is_none() && !alive && run.record.in_agent)
                    .then(|| facts.exited.get(&container_id).cloned())
                    .flatten();
                let rebuilt = self.recover_executor(
                    now,
                    &framework_id,
                    executor.info,
                    run,
                    alive,
                    known_end.is_some(),
                );
                if !alive {
                    ended.push((container_id.clone(), known_end));
                }
                self.containers.insert(
                    container_id,
                    (framework_id.clone(), rebuilt.info.executor_id.clone()),
                );
                executors.insert(rebuilt.info.executor_id.clone(), rebuilt);
            }
            if executors.is_empty() && !self.has_streams(&framework_id) {
                continue;
            }
            self.frameworks.insert(
                framework_id,
                Framework {
                    info: framework.info,
                    phase: FrameworkPhase::Running,
                    executors,
                    completed_executors: VecDeque::new(),
                },
            );
        }
        // Executors that did not survive end now, as if their containers had just exited: their
        // live tasks get terminal updates, sent once the agent has reregistered.
        let message = facts
            .all_gone
            .unwrap_or_else(|| "Executor terminated while the agent was down".to_owned());
        for (container_id, known_end) in ended {
            let end = known_end.unwrap_or_else(|| ContainerEnd {
                message: message.clone(),
                reason: Some(TaskStatusReason::ReasonExecutorReregistrationTimeout),
                status: -1,
            });
            if let Err(error) = self.container_exited(now, &container_id, end, effects) {
                self.counters.recovery_errors += 1;
                tracing::warn!(%container_id, %error, "cannot end a recovered executor");
            }
        }
    }

    fn has_streams(&self, framework_id: &strata_protocol::FrameworkId) -> bool {
        self.updates.streams().any(|(id, _)| id == framework_id)
    }

    fn recover_executor(
        &mut self,
        now: Now,
        framework_id: &strata_protocol::FrameworkId,
        info: ExecutorInfo,
        run: RecoveredRun,
        alive: bool,
        // Only ever for a command task the agent ran itself.
        end_known: bool,
    ) -> Executor {
        let in_agent = run.record.in_agent;
        let executor_id = info.executor_id.clone();
        let mut launched = BTreeMap::new();
        let mut terminated = BTreeMap::new();
        let mut completed = VecDeque::new();
        for recovered in run.tasks {
            let mut task = recovered.task;
            let task_id = task.task_id.clone();
            let mut last_state = None;
            let mut acked_terminal = false;
            let mut last_update_uuid = None;
            for record in &recovered.updates {
                match record {
                    UpdateRecord::Update(update) => {
                        last_state = Some(update.status.state);
                        last_update_uuid = Some(update.uuid.clone());
                        let mut status = update.status.clone();
                        status.data = None;
                        task.statuses.push(status);
                    }
                    UpdateRecord::Ack { uuid } => {
                        if Some(uuid) == last_update_uuid.as_ref()
                            && last_state.is_some_and(TaskState::is_terminal)
                        {
                            acked_terminal = true;
                        }
                    }
                }
            }
            if let Some(state) = last_state {
                task.state = state;
            }
            if let Err(error) = self.updates.recover(
                framework_id.clone(),
                task_id.clone(),
                recovered.updates,
                true,
            ) {
                tracing::warn!(%framework_id, %task_id, %error, "cannot recover a task's status updates");
            }
            let stream_open = self.updates.latest_state(framework_id, &task_id).is_some();
            if task.state.is_terminal() {
                if acked_terminal && !stream_open {
                    completed.push_back(task);
                } else {
                    terminated.insert(task_id.clone(), task);
                    self.tasks
                        .insert((framework_id.clone(), task_id), executor_id.clone());
                }
            } else {
                launched.insert(task_id.clone(), task);
                self.tasks
                    .insert((framework_id.clone(), task_id), executor_id.clone());
            }
        }
        let shutdown_grace_period = info
            .shutdown_grace_period
            .and_then(|grace| grace.to_duration())
            .unwrap_or(self.config.executor_shutdown_grace_period);
        Executor {
            command_executor: is_command_executor(&info),
            in_agent,
            info,
            container_id: run.container_id,
            // A command task the agent runs needs no executor to resubscribe.
            phase: if in_agent {
                ExecutorPhase::Running
            } else {
                ExecutorPhase::Registering
            },
            conn: None,
            checkpoint: true,
            pid: run.record.pid,
            queued: BTreeMap::new(),
            launched,
            terminated,
            completed,
            deadline: (alive && !in_agent)
                .then(|| now.mono + self.config.executor_reregistration_timeout),
            shutdown_grace_period,
            destroying: false,
            // Tasks of an executor that is gone may still have run to completion: the agent
            // cannot tell, so they are lost (Mesos's TASK_LOST on recovery). A command task the
            // agent ran itself ends by its exit status, where the reaper kept it.
            pending_termination: (!(alive || end_known))
                .then(|| (TaskState::Lost, None, String::new())),
            recovered: true,
            pending_kills: BTreeMap::new(),
        }
    }
}
