//! Executors and their tasks: RunTask, executor launch and subscription, kills, shutdowns and
//! terminations.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use strata_protocol::executor::{self, CallBody, Event};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{
    CommandInfo, DrainConfig, ExecutorInfo, ExecutorType, FrameworkCapabilityType, FrameworkInfo,
    KillPolicy, Task, TaskInfo, TaskState, TaskStatusReason, TaskStatusSource,
};
use strata_protocol::{ContainerId, ExecutorId, FrameworkId, Resources, TaskId};

use super::{
    AgentState, CheckpointOp, ContainerEnd, Effect, Executor, ExecutorConn, ExecutorPhase,
    Framework, FrameworkPhase, InputError, LaunchContainer, Now,
};

/// Why an agent-made update is sent; picks the state for partition-aware frameworks.
pub(super) fn lost_or_dropped(framework: Option<&FrameworkInfo>) -> TaskState {
    match framework {
        Some(info) if info.has_capability(FrameworkCapabilityType::PartitionAware) => {
            TaskState::Dropped
        }
        _ => TaskState::Lost,
    }
}

impl AgentState {
    /// Builds the agent's record of a task from its description.
    pub(super) fn task_from_info(
        &self,
        info: &TaskInfo,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        command_executor: bool,
        state: TaskState,
    ) -> Task {
        Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: framework_id.clone(),
            // Mesos names the executor only for tasks of custom executors.
            executor_id: (!command_executor).then(|| executor_id.clone()),
            agent_id: self
                .agent_id
                .clone()
                .unwrap_or_else(|| info.agent_id.clone()),
            state,
            resources: info.resources.clone(),
            statuses: Vec::new(),
            status_update_state: None,
            status_update_uuid: None,
            labels: info.labels.clone(),
            discovery: info.discovery.clone().map(Box::new),
            container: info.container.clone().map(Box::new),
            health_check: info.health_check.clone().map(Box::new),
            kill_policy: info.kill_policy,
            user: info
                .command
                .as_ref()
                .and_then(|command| command.user.clone()),
            limits: info.limits.clone(),
        }
    }

    /// The task as the master is told of it on reregistration: with the state of its oldest
    /// unacknowledged update, which the master has not necessarily seen.
    pub(super) fn reported_task(&self, task: &Task) -> Task {
        let mut task = task.clone();
        if let Some(head) = self
            .updates
            .pending(&task.framework_id, &task.task_id)
            .first()
        {
            task.status_update_state = Some(head.status.state);
            task.status_update_uuid = Some(head.uuid.clone());
        }
        task
    }

    /// The executor that runs `task`, and whether it is the built-in command executor.
    fn executor_for(&self, framework: &FrameworkInfo, task: &TaskInfo) -> (ExecutorInfo, bool) {
        if let Some(executor) = &task.executor {
            let mut executor = executor.clone();
            executor.framework_id = framework.id.clone();
            return (executor, false);
        }
        let command = task.command.clone().unwrap_or_default();
        let executor_id =
            ExecutorId::new(task.task_id.as_str()).expect("a task ID is a valid executor ID");
        let mut resources = self.config.command_executor_resources.clone();
        // The executor's share is accounted to the same role as its task's resources.
        if let Some(role) = task.resources.iter().find_map(|r| r.allocation_role()) {
            resources.allocate(role);
        }
        let info = ExecutorInfo {
            executor_type: Some(ExecutorType::Custom),
            executor_id,
            framework_id: framework.id.clone(),
            command: Some(CommandInfo {
                user: command.user.clone(),
                ..CommandInfo::default()
            }),
            container: task.container.clone(),
            resources: resources.to_wire(),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: {})",
                task.task_id,
                command_summary(&command)
            )),
            source: Some(task.task_id.as_str().to_owned()),
            data: None,
            discovery: None,
            shutdown_grace_period: None,
            labels: None,
        };
        (info, true)
    }

    /// Creates the framework on first use, or refreshes its info.
    fn ensure_framework(&mut self, info: &FrameworkInfo, effects: &mut Vec<Effect>) -> FrameworkId {
        let framework_id = info.id.clone().expect("caller checked the framework ID");
        let agent_id = self.agent_id.clone().expect("caller checked registration");
        let changed = match self.frameworks.get_mut(&framework_id) {
            Some(framework) => {
                let changed = framework.info != *info;
                framework.info = info.clone();
                changed
            }
            None => {
                self.frameworks.insert(
                    framework_id.clone(),
                    Framework {
                        info: info.clone(),
                        phase: FrameworkPhase::Running,
                        executors: BTreeMap::new(),
                        completed_executors: VecDeque::new(),
                    },
                );
                true
            }
        };
        if changed && info.checkpoint.unwrap_or(false) {
            effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Framework {
                agent_id,
                info: info.clone(),
            })));
        }
        framework_id
    }

    pub(super) fn run_task(
        &mut self,
        now: Now,
        run: internal::RunTask,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let internal::RunTask {
            framework,
            task,
            launch_executor,
        } = run;
        let (executor_info, command_executor) = self.executor_for(&framework, &task);
        self.launch_tasks(
            now,
            framework,
            executor_info,
            command_executor,
            vec![task],
            launch_executor,
            effects,
        )
    }

    pub(super) fn run_task_group(
        &mut self,
        now: Now,
        run: internal::RunTaskGroup,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let internal::RunTaskGroup {
            framework,
            mut executor,
            task_group,
            launch_executor,
        } = run;
        executor.framework_id = framework.id.clone();
        self.launch_tasks(
            now,
            framework,
            executor,
            false,
            task_group.tasks,
            launch_executor,
            effects,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_tasks(
        &mut self,
        now: Now,
        framework_info: FrameworkInfo,
        executor_info: ExecutorInfo,
        command_executor: bool,
        tasks: Vec<TaskInfo>,
        launch_executor: bool,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let Some(agent_id) = self.agent_id.clone() else {
            return Err(InputError::Refused(
                "run task before this agent registered".into(),
            ));
        };
        let Some(framework_id) = framework_info.id.clone() else {
            return Err(InputError::Refused(
                "run task without a framework ID".into(),
            ));
        };
        let executor_id = executor_info.executor_id.clone();
        let drop_all = |state: &mut AgentState,
                        effects: &mut Vec<Effect>,
                        reason: TaskStatusReason,
                        message: &str| {
            let lost = lost_or_dropped(Some(&framework_info));
            for task in &tasks {
                state.agent_update(
                    now,
                    &framework_id,
                    None,
                    &task.task_id,
                    lost,
                    Some(reason),
                    message,
                    effects,
                );
            }
        };
        if self.draining {
            drop_all(
                self,
                effects,
                TaskStatusReason::ReasonAgentDraining,
                "Agent is draining",
            );
            return Ok(());
        }
        if self
            .frameworks
            .get(&framework_id)
            .is_some_and(|framework| framework.phase == FrameworkPhase::Terminating)
        {
            drop_all(
                self,
                effects,
                TaskStatusReason::ReasonFrameworkRemoved,
                "Framework is terminating",
            );
            return Ok(());
        }
        if let Some(duplicate) = tasks.iter().find(|task| {
            self.tasks
                .contains_key(&(framework_id.clone(), task.task_id.clone()))
        }) {
            return Err(InputError::Refused(format!(
                "task {} of framework {framework_id} is already on this agent",
                duplicate.task_id
            )));
        }
        let existing = self
            .frameworks
            .get(&framework_id)
            .and_then(|framework| framework.executors.get(&executor_id))
            .map(|executor| executor.phase);
        match (existing, launch_executor) {
            (Some(ExecutorPhase::Terminating | ExecutorPhase::Terminated), _) => {
                drop_all(
                    self,
                    effects,
                    TaskStatusReason::ReasonExecutorTerminated,
                    "Executor terminating",
                );
                return Ok(());
            }
            (Some(_), true) | (None, false) => {
                // The master and this agent disagree about whether the executor runs; the
                // tasks cannot be placed safely.
                drop_all(
                    self,
                    effects,
                    TaskStatusReason::ReasonExecutorTerminated,
                    "Executor is not in the expected state",
                );
                return Ok(());
            }
            _ => {}
        }
        let framework_id = self.ensure_framework(&framework_info, effects);
        let checkpoint = framework_info.checkpoint.unwrap_or(false);
        // See `Executor::in_agent` for why checkpointing frameworks get this only where
        // containers survive the agent. Tasks that need the command executor's timers (a max
        // completion time) or checks keep it.
        let in_agent = command_executor
            && (!checkpoint || self.config.survivable_containers)
            && tasks.len() == 1
            && tasks.iter().all(|task| {
                task.max_completion_time.is_none()
                    && task.health_check.is_none()
                    && task.check.is_none()
            });
        if existing.is_none() {
            let container_id = self.next_container_id();
            let mut resources = Resources::from_resources(executor_info.resources.iter().cloned())
                .unwrap_or_default();
            for task in &tasks {
                for resource in &task.resources {
                    let _ = resources.add_resource(resource);
                }
            }
            let shutdown_grace_period = executor_info
                .shutdown_grace_period
                .and_then(|grace| grace.to_duration())
                .unwrap_or(self.config.executor_shutdown_grace_period);
            let user = executor_info
                .command
                .as_ref()
                .and_then(|command| command.user.clone())
                .or_else(|| (!framework_info.user.is_empty()).then(|| framework_info.user.clone()));
            if checkpoint {
                effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Executor {
                    agent_id: agent_id.clone(),
                    framework_id: framework_id.clone(),
                    info: executor_info.clone(),
                })));
                effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Run {
                    agent_id: agent_id.clone(),
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    container_id: container_id.clone(),
                    pid: None,
                    completed: false,
                    in_agent,
                })));
            }
            effects.push(Effect::Launch(Box::new(LaunchContainer {
                agent_id: agent_id.clone(),
                framework: framework_info.clone(),
                executor: executor_info.clone(),
                container_id: container_id.clone(),
                command_executor,
                task_command: in_agent.then(|| tasks[0].command.clone().unwrap_or_default()),
                resources,
                user,
                checkpoint,
                shutdown_grace_period,
            })));
            self.containers.insert(
                container_id.clone(),
                (framework_id.clone(), executor_id.clone()),
            );
            let executor = Executor {
                info: executor_info,
                container_id,
                command_executor,
                in_agent,
                phase: ExecutorPhase::Registering,
                conn: None,
                checkpoint,
                pid: None,
                queued: BTreeMap::new(),
                launched: BTreeMap::new(),
                terminated: BTreeMap::new(),
                completed: VecDeque::new(),
                // Nothing subscribes for a task the agent runs itself.
                deadline: (!in_agent).then(|| now.mono + self.config.executor_registration_timeout),
                shutdown_grace_period,
                destroying: false,
                pending_termination: None,
                recovered: false,
                pending_kills: BTreeMap::new(),
            };
            self.frameworks
                .get_mut(&framework_id)
                .expect("ensured above")
                .executors
                .insert(executor_id.clone(), executor);
        }
        for task in tasks {
            self.tasks.insert(
                (framework_id.clone(), task.task_id.clone()),
                executor_id.clone(),
            );
            let executor = self
                .executor(&framework_id, &executor_id)
                .expect("created above");
            let record = self.task_from_info(
                &task,
                &framework_id,
                &executor_id,
                executor.command_executor,
                TaskState::Staging,
            );
            let container_id = executor.container_id.clone();
            let phase = executor.phase;
            let conn = executor.conn.clone();
            let in_agent = executor.in_agent;
            if checkpoint {
                effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Task {
                    agent_id: agent_id.clone(),
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    container_id,
                    task: record.clone(),
                })));
            }
            let executor = self
                .executor_mut(&framework_id, &executor_id)
                .expect("created above");
            match (phase, conn) {
                // The container's launch starts the task.
                _ if in_agent => {
                    executor.launched.insert(task.task_id.clone(), record);
                }
                (ExecutorPhase::Running, Some(conn)) => {
                    executor.launched.insert(task.task_id.clone(), record);
                    effects.push(Effect::Executor {
                        conn,
                        event: Event::Launch(Box::new(executor::Launch { task })),
                    });
                }
                _ => {
                    executor.queued.insert(task.task_id.clone(), task);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn executor(
        &self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Option<&Executor> {
        self.frameworks
            .get(framework_id)?
            .executors
            .get(executor_id)
    }

    pub(crate) fn executor_mut(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(framework_id)?
            .executors
            .get_mut(executor_id)
    }

    pub(super) fn kill_task(
        &mut self,
        now: Now,
        kill: internal::KillTask,
        effects: &mut Vec<Effect>,
    ) {
        let internal::KillTask {
            framework_id,
            task_id,
            kill_policy,
        } = kill;
        let Some(framework) = self.frameworks.get(&framework_id) else {
            tracing::warn!(%framework_id, %task_id, "kill for a task of an unknown framework");
            return;
        };
        let framework_info = framework.info.clone();
        let Some(executor_id) = self
            .tasks
            .get(&(framework_id.clone(), task_id.clone()))
            .cloned()
        else {
            // The agent never heard of the task (its RunTask was lost): say so, so the master
            // and framework stop waiting for it.
            let state = lost_or_dropped(Some(&framework_info));
            self.agent_update(
                now,
                &framework_id,
                None,
                &task_id,
                state,
                Some(TaskStatusReason::ReasonTaskUnknown),
                "Cannot find the task to kill",
                effects,
            );
            return;
        };
        let executor = self
            .executor_mut(&framework_id, &executor_id)
            .expect("task index points at a live executor");
        if executor.queued.remove(&task_id).is_some() {
            let idle = executor.queued.is_empty() && executor.launched.is_empty();
            let registering = executor.phase == ExecutorPhase::Registering;
            self.agent_update(
                now,
                &framework_id,
                Some(&executor_id),
                &task_id,
                TaskState::Killed,
                Some(TaskStatusReason::ReasonTaskKilledDuringLaunch),
                "Killed before delivery to the executor",
                effects,
            );
            if idle && registering {
                // Nothing left for the executor to run.
                self.destroy_executor(&framework_id, &executor_id, Duration::ZERO, effects);
            }
            return;
        }
        let executor = self
            .executor_mut(&framework_id, &executor_id)
            .expect("checked above");
        if !executor.launched.contains_key(&task_id) {
            // Already terminal: nothing to kill.
            return;
        }
        if executor.in_agent {
            self.kill_in_agent_task(
                now,
                &framework_info,
                &executor_id,
                &task_id,
                kill_policy,
                effects,
            );
            return;
        }
        match (executor.phase, executor.conn.clone()) {
            (ExecutorPhase::Running, Some(conn)) => effects.push(Effect::Executor {
                conn,
                event: Event::Kill(executor::Kill {
                    task_id,
                    kill_policy,
                }),
            }),
            (ExecutorPhase::Registering | ExecutorPhase::Running, None) => {
                // Not reachable now (it has yet to resubscribe after an agent restart): kill
                // when it does, or count the task killed if it never does.
                tracing::info!(%framework_id, %task_id, "kill held until the executor resubscribes");
                executor.pending_kills.insert(task_id, kill_policy);
            }
            _ => {
                // The executor is going away: its container's exit ends the task.
                tracing::info!(%framework_id, %task_id, "kill for a task whose executor is terminating");
            }
        }
    }

    pub(super) fn shutdown_framework(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        effects: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        tracing::info!(%framework_id, "shutting down framework");
        framework.phase = FrameworkPhase::Terminating;
        let executor_ids: Vec<ExecutorId> = framework.executors.keys().cloned().collect();
        // No framework will acknowledge these updates any more.
        self.updates.cleanup_framework(framework_id);
        for executor_id in executor_ids {
            self.shutdown_executor(now, framework_id, &executor_id, effects);
        }
        self.remove_framework_if_idle(framework_id, effects);
    }

    /// Kills a command task the agent runs itself, as the command executor would: TASK_KILLING
    /// for frameworks that know it, then SIGTERM and SIGKILL after the kill policy's grace
    /// period (the kill's over the task's, 3 s by default); the container's exit is TASK_KILLED.
    fn kill_in_agent_task(
        &mut self,
        now: Now,
        framework_info: &FrameworkInfo,
        executor_id: &ExecutorId,
        task_id: &TaskId,
        kill_policy: Option<KillPolicy>,
        effects: &mut Vec<Effect>,
    ) {
        let framework_id = framework_info
            .id
            .clone()
            .expect("a known framework has an ID");
        let Some(executor) = self.executor_mut(&framework_id, executor_id) else {
            return;
        };
        if executor.destroying || executor.pending_kills.contains_key(task_id) {
            // Already being killed; the container's exit ends the task.
            return;
        }
        let task_policy = executor
            .launched
            .get(task_id)
            .and_then(|task| task.kill_policy);
        let grace = grace_period(kill_policy.as_ref())
            .or_else(|| grace_period(task_policy.as_ref()))
            .unwrap_or(COMMAND_KILL_GRACE_PERIOD);
        executor.pending_kills.insert(task_id.clone(), kill_policy);
        tracing::info!(%framework_id, %task_id, ?grace, "killing task");
        if framework_info.has_capability(FrameworkCapabilityType::TaskKillingState) {
            self.own_update(
                now,
                &framework_id,
                Some(executor_id),
                task_id,
                TaskState::Killing,
                None,
                "",
                TaskStatusSource::Executor,
                effects,
            );
        }
        self.destroy_executor(&framework_id, executor_id, grace, effects);
    }

    pub(super) fn shutdown_executor(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        effects: &mut Vec<Effect>,
    ) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.in_agent {
            // What the command executor does on SHUTDOWN: kill the task within the executor
            // shutdown grace period and report it killed.
            if matches!(
                executor.phase,
                ExecutorPhase::Registering | ExecutorPhase::Running
            ) {
                let live: Vec<TaskId> = executor.launched.keys().cloned().collect();
                for task_id in live {
                    executor.pending_kills.entry(task_id).or_insert(None);
                }
                let grace = executor.shutdown_grace_period;
                self.destroy_executor(framework_id, executor_id, grace, effects);
            }
            return;
        }
        match (executor.phase, executor.conn.clone()) {
            (ExecutorPhase::Running, Some(conn)) => {
                executor.phase = ExecutorPhase::Terminating;
                executor.deadline = Some(now.mono + executor.shutdown_grace_period);
                effects.push(Effect::Executor {
                    conn,
                    event: Event::Shutdown,
                });
            }
            (ExecutorPhase::Registering | ExecutorPhase::Running, _) => {
                self.destroy_executor(framework_id, executor_id, Duration::ZERO, effects);
            }
            (ExecutorPhase::Terminating | ExecutorPhase::Terminated, _) => {}
        }
    }

    /// Destroys an executor's container; its exit ends whatever tasks it still had.
    pub(super) fn destroy_executor(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        grace_period: Duration,
        effects: &mut Vec<Effect>,
    ) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.destroying || executor.phase == ExecutorPhase::Terminated {
            return;
        }
        executor.phase = ExecutorPhase::Terminating;
        executor.destroying = true;
        executor.deadline = None;
        effects.push(Effect::Destroy {
            container_id: executor.container_id.clone(),
            grace_period,
        });
    }

    pub(super) fn tick_executors(&mut self, _now: Now, effects: &mut Vec<Effect>) {
        let now = _now;
        let mut due = Vec::new();
        for (framework_id, framework) in &self.frameworks {
            for (executor_id, executor) in &framework.executors {
                if executor
                    .deadline
                    .is_some_and(|deadline| deadline <= now.mono)
                {
                    due.push((framework_id.clone(), executor_id.clone(), executor.phase));
                }
            }
        }
        for (framework_id, executor_id, phase) in due {
            if phase == ExecutorPhase::Registering {
                tracing::warn!(%framework_id, %executor_id, "executor did not subscribe in time");
                let registration = self.config.executor_registration_timeout;
                let reregistration = self.config.executor_reregistration_timeout;
                if let Some(executor) = self.executor_mut(&framework_id, &executor_id) {
                    executor.pending_termination = Some(if executor.recovered {
                        (
                            TaskState::Lost,
                            Some(TaskStatusReason::ReasonExecutorReregistrationTimeout),
                            format!(
                                "Executor did not reregister within {}s after the agent restarted",
                                reregistration.as_secs_f64()
                            ),
                        )
                    } else {
                        (
                            TaskState::Failed,
                            Some(TaskStatusReason::ReasonExecutorRegistrationTimeout),
                            format!(
                                "Executor did not register within {}s",
                                registration.as_secs_f64()
                            ),
                        )
                    });
                }
            } else {
                tracing::warn!(%framework_id, %executor_id, "executor did not exit in its grace period; destroying it");
            }
            self.destroy_executor(&framework_id, &executor_id, Duration::ZERO, effects);
        }
    }

    pub(super) fn container_launched(
        &mut self,
        _now: Now,
        container_id: &ContainerId,
        pid: u32,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let (framework_id, executor_id) = self
            .containers
            .get(container_id)
            .cloned()
            .ok_or_else(|| InputError::UnknownContainer(container_id.clone()))?;
        let agent_id = self.agent_id.clone();
        let executor = self
            .executor_mut(&framework_id, &executor_id)
            .ok_or_else(|| InputError::UnknownContainer(container_id.clone()))?;
        executor.pid = Some(pid);
        let in_agent = executor.in_agent;
        if executor.checkpoint
            && let Some(agent_id) = agent_id
        {
            // Before the task's updates, so that a restarted agent that has them finds the run.
            effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Run {
                agent_id,
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
                container_id: container_id.clone(),
                pid: Some(pid),
                completed: false,
                in_agent,
            })));
        }
        if in_agent {
            // The command runs: what the command executor reports once it has started it.
            if executor.phase == ExecutorPhase::Registering {
                executor.phase = ExecutorPhase::Running;
            }
            let live: Vec<TaskId> = executor.launched.keys().cloned().collect();
            for task_id in live {
                for state in [TaskState::Starting, TaskState::Running] {
                    self.own_update(
                        _now,
                        &framework_id,
                        Some(&executor_id),
                        &task_id,
                        state,
                        None,
                        "",
                        TaskStatusSource::Executor,
                        effects,
                    );
                }
            }
        }
        Ok(())
    }

    pub(super) fn container_exited(
        &mut self,
        now: Now,
        container_id: &ContainerId,
        end: ContainerEnd,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let (framework_id, executor_id) = self
            .containers
            .get(container_id)
            .cloned()
            .ok_or_else(|| InputError::UnknownContainer(container_id.clone()))?;
        let framework_phase = self
            .frameworks
            .get(&framework_id)
            .map(|framework| framework.phase)
            .ok_or_else(|| InputError::UnknownContainer(container_id.clone()))?;
        let agent_id = self.agent_id.clone();
        let executor = self
            .executor_mut(&framework_id, &executor_id)
            .ok_or_else(|| InputError::UnknownContainer(container_id.clone()))?;
        if executor.phase == ExecutorPhase::Terminated {
            return Ok(());
        }
        tracing::info!(%framework_id, %executor_id, %container_id, message = %end.message, "executor terminated");
        executor.phase = ExecutorPhase::Terminated;
        executor.deadline = None;
        if let Some(conn) = executor.conn.take() {
            effects.push(Effect::CloseExecutor { conn });
        }
        let command_executor = executor.command_executor;
        let in_agent = executor.in_agent;
        // Set when the agent decided the tasks' fate before the container ended (a recovered
        // executor that is gone): that, not the exit status, says how they end.
        let decided = executor.pending_termination.is_some();
        let (state, pending_reason, pending_message) = executor
            .pending_termination
            .clone()
            .unwrap_or((TaskState::Failed, None, String::new()));
        let reason = end
            .reason
            .or(pending_reason)
            .unwrap_or(TaskStatusReason::ReasonExecutorTerminated);
        let message = match (pending_message.is_empty(), end.message.is_empty()) {
            (false, false) => format!("{pending_message}; {}", end.message),
            (false, true) => pending_message,
            (true, false) => end.message.clone(),
            (true, true) => "Executor terminated".to_owned(),
        };
        // A memory limitation is a failure, whatever the agent meant to do.
        let state = if end.reason == Some(TaskStatusReason::ReasonContainerLimitationMemory) {
            TaskState::Failed
        } else {
            state
        };
        let live: Vec<TaskId> = executor
            .launched
            .keys()
            .chain(executor.queued.keys())
            .cloned()
            .collect();
        if framework_phase == FrameworkPhase::Terminating {
            // Nobody will acknowledge updates now; the tasks just end.
            let executor = self
                .executor_mut(&framework_id, &executor_id)
                .expect("checked above");
            executor.queued.clear();
            let launched = std::mem::take(&mut executor.launched);
            for (task_id, mut task) in launched {
                task.state = state;
                executor.terminated.insert(task_id, task);
            }
        } else if in_agent
            && !decided
            && end.reason != Some(TaskStatusReason::ReasonContainerLaunchFailed)
        {
            // The container's leader was the task's command: its exit is the task's.
            let killed = std::mem::take(
                &mut self
                    .executor_mut(&framework_id, &executor_id)
                    .expect("checked above")
                    .pending_kills,
            );
            for task_id in live {
                let (state, reason, message) = command_outcome(&end, killed.contains_key(&task_id));
                self.own_update(
                    now,
                    &framework_id,
                    Some(&executor_id),
                    &task_id,
                    state,
                    reason,
                    &message,
                    TaskStatusSource::Executor,
                    effects,
                );
            }
        } else {
            let killed = std::mem::take(
                &mut self
                    .executor_mut(&framework_id, &executor_id)
                    .expect("checked above")
                    .pending_kills,
            );
            for task_id in live {
                // A task the framework asked to kill is killed, whatever ended its executor.
                let (state, reason) = if killed.contains_key(&task_id) {
                    (TaskState::Killed, None)
                } else {
                    (state, Some(reason))
                };
                self.agent_update(
                    now,
                    &framework_id,
                    Some(&executor_id),
                    &task_id,
                    state,
                    reason,
                    &message,
                    effects,
                );
            }
        }
        if !command_executor
            && let Some(agent_id) = agent_id.clone()
            && let Some(pid) = self.master_pid().cloned()
        {
            effects.push(Effect::Master {
                pid,
                message: Message::from(internal::ExitedExecutor {
                    agent_id,
                    framework_id: framework_id.clone(),
                    executor_id: executor_id.clone(),
                    status: end.status,
                }),
            });
        }
        self.remove_executor_if_done(&framework_id, &executor_id, effects);
        Ok(())
    }

    /// Moves a terminated executor with no unfinished tasks to the completed list.
    pub(super) fn remove_executor_if_done(
        &mut self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        effects: &mut Vec<Effect>,
    ) {
        let max_executors = self.config.max_completed_executors_per_framework;
        let max_tasks = self.config.max_completed_tasks_per_executor;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let terminating = framework.phase == FrameworkPhase::Terminating;
        let Some(executor) = framework.executors.get(executor_id) else {
            return;
        };
        if executor.phase != ExecutorPhase::Terminated
            || (executor.has_incomplete_tasks() && !terminating)
        {
            return;
        }
        let mut executor = framework
            .executors
            .remove(executor_id)
            .expect("checked above");
        for (_, task) in std::mem::take(&mut executor.terminated) {
            executor.completed.push_back(task);
        }
        while executor.completed.len() > max_tasks {
            executor.completed.pop_front();
        }
        for task in &executor.completed {
            self.tasks
                .remove(&(framework_id.clone(), task.task_id.clone()));
        }
        self.containers.remove(&executor.container_id);
        // Marked completed only now, as Mesos writes its sentinel: until its tasks' terminal
        // updates are acknowledged, a restarted agent must still find the run to resend them.
        if executor.checkpoint
            && let Some(agent_id) = self.agent_id.clone()
        {
            effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Run {
                agent_id,
                framework_id: framework_id.clone(),
                executor_id: executor_id.clone(),
                container_id: executor.container_id.clone(),
                pid: executor.pid,
                completed: true,
                in_agent: executor.in_agent,
            })));
        }
        effects.push(Effect::RunFinished {
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            container_id: executor.container_id.clone(),
        });
        framework.completed_executors.push_back(executor);
        while framework.completed_executors.len() > max_executors {
            framework.completed_executors.pop_front();
        }
        self.remove_framework_if_idle(framework_id, effects);
    }

    /// Forgets a framework that has no executors left.
    pub(super) fn remove_framework_if_idle(
        &mut self,
        framework_id: &FrameworkId,
        effects: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if !framework.executors.is_empty() {
            return;
        }
        if framework.phase == FrameworkPhase::Running
            && self.updates.streams().any(|(id, _)| id == framework_id)
        {
            return;
        }
        let framework = self.frameworks.remove(framework_id).expect("checked above");
        tracing::info!(%framework_id, "framework removed from agent");
        self.updates.cleanup_framework(framework_id);
        self.completed_frameworks.push_back(framework);
        while self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
        if let Some(agent_id) = self.agent_id.clone() {
            effects.push(Effect::Checkpoint(Box::new(
                CheckpointOp::RemoveFramework {
                    agent_id,
                    framework_id: framework_id.clone(),
                },
            )));
        }
    }

    pub(super) fn on_executor_call(
        &mut self,
        now: Now,
        conn: ExecutorConn,
        call: executor::Call,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        let executor::Call {
            executor_id,
            framework_id,
            body,
        } = call;
        let Some(executor) = self.executor(&framework_id, &executor_id) else {
            // An executor the agent does not know (left from before a `--recover=cleanup`, or
            // confused): tell it to go away.
            effects.push(Effect::Executor {
                conn,
                event: Event::Shutdown,
            });
            return Err(InputError::UnknownExecutor {
                framework_id,
                executor_id,
            });
        };
        if executor.in_agent {
            // The agent runs this task itself; no executor process belongs to it.
            effects.push(Effect::Executor {
                conn,
                event: Event::Shutdown,
            });
            return Err(InputError::Refused(format!(
                "executor {executor_id} of framework {framework_id} is run by the agent itself"
            )));
        }
        let phase = executor.phase;
        match body {
            CallBody::Subscribe(subscribe) => self.executor_subscribed(
                now,
                conn,
                &framework_id,
                &executor_id,
                phase,
                *subscribe,
                effects,
            ),
            CallBody::Update(update) => {
                self.executor_update(now, &framework_id, &executor_id, update.status, effects)
            }
            CallBody::Message(message) => {
                if let (Some(pid), Some(agent_id)) =
                    (self.master_pid().cloned(), self.agent_id.clone())
                {
                    effects.push(Effect::Master {
                        pid,
                        message: internal::ExecutorToFramework {
                            agent_id,
                            framework_id,
                            executor_id,
                            data: message.data,
                        }
                        .into(),
                    });
                }
                Ok(())
            }
            CallBody::Heartbeat => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn executor_subscribed(
        &mut self,
        now: Now,
        conn: ExecutorConn,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
        phase: ExecutorPhase,
        subscribe: executor::Subscribe,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        if matches!(
            phase,
            ExecutorPhase::Terminating | ExecutorPhase::Terminated
        ) {
            effects.push(Effect::Executor {
                conn,
                event: Event::Shutdown,
            });
            return Ok(());
        }
        let agent_info = self.agent_info();
        let framework_info = self.frameworks[framework_id].info.clone();
        let executor = self
            .executor_mut(framework_id, executor_id)
            .expect("caller checked");
        if let Some(old) = executor.conn.replace(conn.clone())
            && old != conn
        {
            effects.push(Effect::CloseExecutor { conn: old });
        }
        tracing::info!(%framework_id, %executor_id, "executor subscribed");
        executor.phase = ExecutorPhase::Running;
        executor.deadline = None;
        if let ExecutorConn::Actor(pid) = &conn {
            effects.push(Effect::Link { pid: pid.clone() });
        }
        effects.push(Effect::Executor {
            conn: conn.clone(),
            event: Event::Subscribed(Box::new(executor::Subscribed {
                executor_info: executor.info.clone(),
                framework_info,
                agent_info,
                container_id: Some(executor.container_id.clone()),
            })),
        });
        let recovered = std::mem::replace(&mut executor.recovered, false);
        let known_to_executor: std::collections::BTreeSet<TaskId> = subscribe
            .unacknowledged_tasks
            .iter()
            .map(|task| task.task_id.clone())
            .chain(
                subscribe
                    .unacknowledged_updates
                    .iter()
                    .map(|update| update.status.task_id.clone()),
            )
            .collect();
        // Updates the executor holds from before an agent restart; duplicates of updates the
        // agent already has are recognised by UUID.
        for update in subscribe.unacknowledged_updates {
            if let Err(error) =
                self.executor_update(now, framework_id, executor_id, update.status, effects)
            {
                tracing::warn!(%framework_id, %executor_id, %error, "unacknowledged update refused");
            }
        }
        if recovered {
            // A task the agent had handed over before it restarted, of which the executor knows
            // nothing and for which no update was ever sent, never reached it.
            let undelivered: Vec<TaskId> = self
                .executor(framework_id, executor_id)
                .expect("caller checked")
                .launched
                .values()
                .filter(|task| {
                    task.state == TaskState::Staging && !known_to_executor.contains(&task.task_id)
                })
                .map(|task| task.task_id.clone())
                .collect();
            let state = lost_or_dropped(Some(&self.frameworks[framework_id].info));
            for task_id in undelivered {
                self.agent_update(
                    now,
                    framework_id,
                    Some(executor_id),
                    &task_id,
                    state,
                    Some(TaskStatusReason::ReasonExecutorReregistrationTimeout),
                    "Task was not delivered to its executor before the agent restarted",
                    effects,
                );
            }
        }
        let executor = self
            .executor_mut(framework_id, executor_id)
            .expect("caller checked");
        let queued = std::mem::take(&mut executor.queued);
        for (task_id, task) in queued {
            let record = self.task_from_info(
                &task,
                framework_id,
                executor_id,
                self.executor(framework_id, executor_id)
                    .expect("caller checked")
                    .command_executor,
                TaskState::Staging,
            );
            let executor = self
                .executor_mut(framework_id, executor_id)
                .expect("caller checked");
            executor.launched.insert(task_id, record);
            effects.push(Effect::Executor {
                conn: conn.clone(),
                event: Event::Launch(Box::new(executor::Launch { task })),
            });
        }
        let executor = self
            .executor_mut(framework_id, executor_id)
            .expect("caller checked");
        let kills = std::mem::take(&mut executor.pending_kills);
        for (task_id, kill_policy) in kills {
            if executor.launched.contains_key(&task_id) {
                effects.push(Effect::Executor {
                    conn: conn.clone(),
                    event: Event::Kill(executor::Kill {
                        task_id,
                        kill_policy,
                    }),
                });
            }
        }
        Ok(())
    }

    /// An executor's connection went away. Its process may still run (an HTTP executor that
    /// reconnects, or one riding out an agent restart); its container's exit is what ends it.
    pub(super) fn executor_disconnected(
        &mut self,
        _now: Now,
        conn: &ExecutorConn,
        effects: &mut Vec<Effect>,
    ) {
        // The executor reconnects by itself if it can; nothing should try to reach the old
        // connection.
        effects.push(Effect::CloseExecutor { conn: conn.clone() });
        for framework in self.frameworks.values_mut() {
            for (executor_id, executor) in framework.executors.iter_mut() {
                if executor.conn.as_ref() == Some(conn) {
                    tracing::info!(%executor_id, "executor disconnected");
                    executor.conn = None;
                }
            }
        }
    }

    pub(super) fn framework_message(
        &mut self,
        message: internal::FrameworkToExecutor,
        effects: &mut Vec<Effect>,
    ) {
        let conn = self
            .executor(&message.framework_id, &message.executor_id)
            .filter(|executor| executor.phase == ExecutorPhase::Running)
            .and_then(|executor| executor.conn.clone());
        match conn {
            Some(conn) => effects.push(Effect::Executor {
                conn,
                event: Event::Message(executor::Message { data: message.data }),
            }),
            None => tracing::warn!(
                framework_id = %message.framework_id,
                executor_id = %message.executor_id,
                "dropping framework message for an executor that is not running"
            ),
        }
    }

    pub(super) fn update_framework(
        &mut self,
        update: internal::UpdateFramework,
        effects: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get_mut(&update.framework_id) else {
            return;
        };
        let mut info = update.framework_info;
        info.id = Some(update.framework_id.clone());
        framework.info = info.clone();
        if let (true, Some(agent_id)) = (framework.checkpoint(), self.agent_id.clone()) {
            effects.push(Effect::Checkpoint(Box::new(CheckpointOp::Framework {
                agent_id,
                info,
            })));
        }
    }

    pub(super) fn drain(&mut self, now: Now, config: DrainConfig, effects: &mut Vec<Effect>) {
        tracing::info!("draining: killing every task and accepting no new ones");
        self.draining = true;
        let kill_policy = config
            .max_grace_period
            .map(|grace| strata_protocol::mesos::KillPolicy {
                grace_period: Some(grace),
            });
        let keys: Vec<(FrameworkId, TaskId)> = self.tasks.keys().cloned().collect();
        for (framework_id, task_id) in keys {
            self.kill_task(
                now,
                internal::KillTask {
                    framework_id,
                    task_id,
                    kill_policy,
                },
                effects,
            );
        }
    }
}

/// Mesos's short description of a command, for the command executor's name.
fn command_summary(command: &CommandInfo) -> String {
    let value = command.value.clone().unwrap_or_default();
    if command.shell() {
        format!("sh -c '{value}'")
    } else {
        format!("[{}]", command.arguments.join(", "))
    }
}

/// The kill grace period of a command task when neither the kill nor the task sets one, as the
/// command executor's.
const COMMAND_KILL_GRACE_PERIOD: Duration = Duration::from_secs(3);

/// Returns the grace period a kill policy sets, if it sets a valid one.
fn grace_period(policy: Option<&KillPolicy>) -> Option<Duration> {
    policy?.grace_period?.to_duration()
}

/// The terminal state, reason and message of a command task the agent ran itself, from its
/// container's end, worded as the command executor words them.
fn command_outcome(
    end: &ContainerEnd,
    killed: bool,
) -> (TaskState, Option<TaskStatusReason>, String) {
    if end.reason == Some(TaskStatusReason::ReasonContainerLimitationMemory) {
        return (TaskState::Failed, end.reason, end.message.clone());
    }
    // `status` is a wait status: the exit code in the second byte, or the signal in the low
    // seven bits; -1 when unknown.
    let (success, message) = if end.status < 0 {
        let message = if end.message.is_empty() {
            "Command ended; its exit status is unknown".to_owned()
        } else {
            end.message.clone()
        };
        (false, message)
    } else if end.status & 0x7f == 0 {
        let code = (end.status >> 8) & 0xff;
        (code == 0, format!("Command exited with status {code}"))
    } else {
        let signal = end.status & 0x7f;
        (
            false,
            format!("Command terminated with signal {}", signal_name(signal)),
        )
    };
    let state = if killed {
        TaskState::Killed
    } else if success {
        TaskState::Finished
    } else {
        TaskState::Failed
    };
    (state, end.reason, message)
}

/// Describes a signal as the C library's `strsignal` does, for the common ones.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        _ => return format!("Unknown signal {signal}"),
    };
    name.to_owned()
}

/// Completed frameworks kept for the state endpoints.
pub(super) const MAX_COMPLETED_FRAMEWORKS: usize = 50;
