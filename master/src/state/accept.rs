//! ACCEPT: validating the offers and the operations, and launching tasks.
//!
//! Validation follows Mesos: if any offer is unknown, foreign, duplicated or on another agent,
//! nothing runs; every task gets TASK_DROPPED (PARTITION_AWARE frameworks) or TASK_LOST with
//! REASON_INVALID_OFFERS, and the valid offers' resources go back. Otherwise each task is
//! checked on its own: a bad one gets TASK_ERROR with REASON_TASK_INVALID and the others still
//! run. Whatever the operations leave unused is declined with the call's filters.

use std::collections::BTreeSet;

use strata_protocol::internal::{Message, RunTask, RunTaskGroup};
use strata_protocol::mesos::{
    ExecutorInfo, FrameworkCapabilityType, OperationBody, Task, TaskInfo, TaskState,
    TaskStatusReason,
};
use strata_protocol::resources::AllocationInfo;
use strata_protocol::scheduler::Accept;
use strata_protocol::{AgentId, FrameworkId, Resource, Resources, TaskId};

use super::reservations::Direction;
use super::{Effect, ExecutorEntry, MasterState, Now, OfferEntry, OperatorEvent, TaskEntry};

/// The agent and role every offer of one ACCEPT shares.
pub(super) struct Target {
    pub(super) agent_id: AgentId,
    pub(super) role: String,
}

impl MasterState {
    pub(super) fn accept(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        accept: Accept,
        out: &mut Vec<Effect>,
    ) {
        let refuse = self.refusal(accept.filters.as_ref());
        let (taken, error) = self.take_accepted_offers(framework_id, &accept);
        if let Some(message) = error {
            tracing::info!(%framework_id, %message, "refusing ACCEPT with invalid offers");
            for offer in &taken {
                self.recover_resources(now, framework_id, &offer.agent_id, &offer.resources, None);
            }
            self.drop_launches(now, framework_id, &accept, &message, out);
            return;
        }
        let target = Target {
            agent_id: taken[0].agent_id.clone(),
            role: taken[0].role.clone(),
        };
        let mut remaining = Resources::new();
        for offer in &taken {
            remaining += &*offer.resources;
        }
        self.counters.offers_accepted += taken.len() as u64;
        for operation in accept.operations {
            match operation.body {
                OperationBody::Launch(launch) => {
                    for task in launch.task_infos {
                        self.launch_task(now, framework_id, &target, task, &mut remaining, out);
                    }
                }
                OperationBody::LaunchGroup(group) => self.launch_group(
                    now,
                    framework_id,
                    &target,
                    group.executor,
                    group.task_group.tasks,
                    &mut remaining,
                    out,
                ),
                OperationBody::Reserve(reserve) => self.convert_offered(
                    framework_id,
                    &target,
                    Direction::Reserve,
                    &reserve.resources,
                    &mut remaining,
                    out,
                ),
                OperationBody::Unreserve(unreserve) => self.convert_offered(
                    framework_id,
                    &target,
                    Direction::Unreserve,
                    &unreserve.resources,
                    &mut remaining,
                    out,
                ),
                OperationBody::Create(_) | OperationBody::Destroy(_) => {
                    tracing::warn!(
                        %framework_id,
                        "persistent volume operations are not supported by this master; \
                         their resources stay unused"
                    );
                }
            }
        }
        if !remaining.is_empty() {
            self.recover_resources(
                now,
                framework_id,
                &target.agent_id,
                &remaining,
                Some(refuse),
            );
        }
    }

    /// Takes the accepted offers off the books. Returns them and, if the set is not valid, why.
    fn take_accepted_offers(
        &mut self,
        framework_id: &FrameworkId,
        accept: &Accept,
    ) -> (Vec<OfferEntry>, Option<String>) {
        let mut error = None;
        let mut taken: Vec<OfferEntry> = Vec::new();
        let mut seen = BTreeSet::new();
        if accept.offer_ids.is_empty() {
            error = Some("ACCEPT names no offers".to_owned());
        }
        for offer_id in &accept.offer_ids {
            if !seen.insert(offer_id) {
                error.get_or_insert(format!("offer {offer_id} appears more than once"));
                continue;
            }
            match self.offers.get(offer_id) {
                None => {
                    error.get_or_insert(format!("offer {offer_id} is no longer valid"));
                }
                Some(offer) if &offer.framework_id != framework_id => {
                    error.get_or_insert(format!("offer {offer_id} belongs to another framework"));
                }
                Some(_) => taken.push(self.take_offer(offer_id).expect("just looked up")),
            }
        }
        if let Some(first) = taken.first() {
            if taken.iter().any(|offer| offer.agent_id != first.agent_id) {
                error.get_or_insert("offers span more than one agent".to_owned());
            } else if taken.iter().any(|offer| offer.role != first.role) {
                error.get_or_insert("offers are allocated to different roles".to_owned());
            } else if !self
                .agents
                .get(&first.agent_id)
                .is_some_and(|agent| agent.connected)
            {
                error.get_or_insert(format!("agent {} is not connected", first.agent_id));
            }
        }
        (taken, error)
    }

    /// Answers every task of a refused ACCEPT with TASK_DROPPED or TASK_LOST.
    fn drop_launches(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        accept: &Accept,
        message: &str,
        out: &mut Vec<Effect>,
    ) {
        let partition_aware = self.is_partition_aware(framework_id);
        let state = if partition_aware {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        for operation in &accept.operations {
            let tasks: Vec<&TaskInfo> = match &operation.body {
                OperationBody::Launch(launch) => launch.task_infos.iter().collect(),
                OperationBody::LaunchGroup(group) => group.task_group.tasks.iter().collect(),
                _ => Vec::new(),
            };
            for task in tasks {
                let event = self.master_update(
                    now,
                    &task.task_id,
                    Some(&task.agent_id),
                    state,
                    TaskStatusReason::ReasonInvalidOffers,
                    message,
                );
                self.counters.count_task_state(state);
                self.send_to_framework(framework_id, event, out);
            }
        }
    }

    fn launch_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        target: &Target,
        task: TaskInfo,
        remaining: &mut Resources,
        out: &mut Vec<Effect>,
    ) {
        if task.command.is_some() == task.executor.is_some() {
            let message = format!(
                "task '{}' must set exactly one of 'command' and 'executor'",
                task.task_id
            );
            return self.refuse_task(now, framework_id, &task, &message, out);
        }
        let checked = self.validate_task(
            framework_id,
            target,
            &task,
            task.executor.as_ref(),
            remaining,
        );
        let (task, task_resources, executor_resources) = match checked {
            Ok(checked) => checked,
            Err(message) => return self.refuse_task(now, framework_id, &task, &message, out),
        };
        let needed = task_resources.clone() + &executor_resources;
        *remaining -= &needed;
        let launch_executor = self.record_executor(
            framework_id,
            target,
            task.executor.as_ref(),
            executor_resources,
        );
        self.record_task(framework_id, target, &task, task_resources);
        self.use_resources(framework_id, &target.agent_id, &needed);
        let framework = self.frameworks[framework_id].info.clone();
        let pid = self.agents[&target.agent_id].pid.clone();
        out.push(Effect::Agent {
            pid,
            message: Message::RunTask(Box::new(RunTask {
                framework,
                task,
                launch_executor,
            })),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_group(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        target: &Target,
        executor: ExecutorInfo,
        tasks: Vec<TaskInfo>,
        remaining: &mut Resources,
        out: &mut Vec<Effect>,
    ) {
        let mut error = tasks
            .is_empty()
            .then(|| "task group has no tasks".to_owned());
        let mut budget = remaining.clone();
        let mut checked = Vec::new();
        let mut executor_resources = Resources::new();
        let mut ids = BTreeSet::new();
        for (idx, task) in tasks.iter().enumerate() {
            if error.is_some() {
                break;
            }
            if task.executor.is_some() {
                error = Some(format!(
                    "task '{}' of a group must not name an executor",
                    task.task_id
                ));
                break;
            }
            if !ids.insert(task.task_id.clone()) {
                error = Some(format!(
                    "task ID {} appears twice in the group",
                    task.task_id
                ));
                break;
            }
            // The executor's resources are counted once, with the first task.
            let executor_for_check = (idx == 0).then_some(&executor);
            match self.validate_task(framework_id, target, task, executor_for_check, &budget) {
                Ok((task, task_resources, exec_resources)) => {
                    budget -= &(task_resources.clone() + &exec_resources);
                    if idx == 0 {
                        executor_resources = exec_resources;
                    }
                    checked.push((task, task_resources));
                }
                Err(message) => error = Some(message),
            }
        }
        if let Some(message) = error {
            for task in &tasks {
                self.refuse_task(now, framework_id, task, &message, out);
            }
            return;
        }
        let executor = with_allocation(executor, &target.role, framework_id);
        let mut needed = executor_resources.clone();
        for (task, task_resources) in &checked {
            needed += task_resources;
            self.record_task(framework_id, target, task, task_resources.clone());
        }
        *remaining -= &needed;
        let launch_executor =
            self.record_executor(framework_id, target, Some(&executor), executor_resources);
        self.use_resources(framework_id, &target.agent_id, &needed);
        let framework = self.frameworks[framework_id].info.clone();
        let pid = self.agents[&target.agent_id].pid.clone();
        let task_group = strata_protocol::mesos::TaskGroupInfo {
            tasks: checked.into_iter().map(|(task, _)| task).collect(),
        };
        out.push(Effect::Agent {
            pid,
            message: Message::RunTaskGroup(Box::new(RunTaskGroup {
                framework,
                executor,
                task_group,
                launch_executor,
            })),
        });
    }

    /// Checks one task against Mesos's rules and the resources left in the offers. Returns the
    /// task with `allocation_info` set on its resources, its resources, and the resources of its
    /// executor when that executor is not yet running on the agent.
    fn validate_task(
        &self,
        framework_id: &FrameworkId,
        target: &Target,
        task: &TaskInfo,
        executor: Option<&ExecutorInfo>,
        remaining: &Resources,
    ) -> Result<(TaskInfo, Resources, Resources), String> {
        let framework = &self.frameworks[framework_id];
        let task_id = &task.task_id;
        if framework.tasks.contains_key(task_id)
            || framework.unreachable_tasks.contains_key(task_id)
        {
            return Err(format!("task ID {task_id} is already in use"));
        }
        if task.agent_id != target.agent_id {
            return Err(format!(
                "task '{task_id}' names agent {} but the offers are for agent {}",
                task.agent_id, target.agent_id
            ));
        }
        let mut task = task.clone();
        task.resources = allocate_to(&task.resources, &target.role)
            .map_err(|err| format!("task '{task_id}' has invalid resources: {err}"))?;
        let task_resources = Resources::from_resources(task.resources.iter().cloned())
            .map_err(|err| format!("task '{task_id}' has invalid resources: {err}"))?;
        if task_resources.is_empty() {
            return Err(format!("task '{task_id}' uses no resources"));
        }
        let executor_resources = match executor {
            Some(executor)
                if !self.agents[&target.agent_id]
                    .executors
                    .contains_key(&(framework_id.clone(), executor.executor_id.clone())) =>
            {
                let wire = allocate_to(&executor.resources, &target.role)
                    .map_err(|err| format!("executor of task '{task_id}': {err}"))?;
                Resources::from_resources(wire).map_err(|err| {
                    format!("executor of task '{task_id}' has invalid resources: {err}")
                })?
            }
            _ => Resources::new(),
        };
        if let Some(executor) = task.executor.take() {
            task.executor = Some(with_allocation(executor, &target.role, framework_id));
        }
        let needed = task_resources.clone() + &executor_resources;
        if !remaining.contains(&needed) {
            return Err(format!(
                "task '{task_id}' needs {needed} but the offers hold only {remaining}"
            ));
        }
        Ok((task, task_resources, executor_resources))
    }

    /// Answers an invalid task with TASK_ERROR.
    fn refuse_task(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        task: &TaskInfo,
        message: &str,
        out: &mut Vec<Effect>,
    ) {
        tracing::info!(%framework_id, task_id = %task.task_id, %message, "refusing invalid task");
        let event = self.master_update(
            now,
            &task.task_id,
            Some(&task.agent_id),
            TaskState::Error,
            TaskStatusReason::ReasonTaskInvalid,
            message,
        );
        self.counters.count_task_state(TaskState::Error);
        self.send_to_framework(framework_id, event, out);
    }

    /// Records a custom executor on the agent; returns true if it is new there, so the agent
    /// must start it.
    fn record_executor(
        &mut self,
        framework_id: &FrameworkId,
        target: &Target,
        executor: Option<&ExecutorInfo>,
        resources: Resources,
    ) -> bool {
        let Some(executor) = executor else {
            return true;
        };
        let key = (framework_id.clone(), executor.executor_id.clone());
        let agent = self
            .agents
            .get_mut(&target.agent_id)
            .expect("accept checked the agent");
        if agent.executors.contains_key(&key) {
            return false;
        }
        agent.executors.insert(
            key,
            ExecutorEntry {
                info: executor.clone(),
                resources,
            },
        );
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework
                .executors
                .entry(target.agent_id.clone())
                .or_default()
                .insert(executor.executor_id.clone());
        }
        true
    }

    fn record_task(
        &mut self,
        framework_id: &FrameworkId,
        target: &Target,
        info: &TaskInfo,
        resources: Resources,
    ) {
        let task = Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: framework_id.clone(),
            executor_id: info.executor.as_ref().map(|e| e.executor_id.clone()),
            agent_id: target.agent_id.clone(),
            state: TaskState::Staging,
            resources: Vec::new(),
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
        };
        let task_id: TaskId = info.task_id.clone();
        if let Some(agent) = self.agents.get_mut(&target.agent_id) {
            agent.tasks.insert((framework_id.clone(), task_id.clone()));
        }
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .expect("caller checked");
        framework.tasks.insert(
            task_id.clone(),
            TaskEntry {
                task: Box::new(task),
                resources,
                resources_recovered: false,
            },
        );
        self.counters.tasks_launched += 1;
        let framework_id = framework_id.clone();
        self.emit(OperatorEvent::TaskAdded {
            framework_id,
            task_id,
        });
    }

    fn use_resources(&mut self, framework_id: &FrameworkId, agent_id: &AgentId, used: &Resources) {
        if let Err(err) = self.allocator.use_offered(framework_id, agent_id, used) {
            tracing::error!(%framework_id, %agent_id, error = %err, "allocator refused a launch's resources");
        }
    }

    pub(super) fn is_partition_aware(&self, framework_id: &FrameworkId) -> bool {
        self.frameworks.get(framework_id).is_some_and(|f| {
            f.info
                .has_capability(FrameworkCapabilityType::PartitionAware)
        })
    }
}

/// Sets `allocation_info.role` on resources that lack it, and refuses resources allocated to
/// another role than the offers'.
pub(super) fn allocate_to(resources: &[Resource], role: &str) -> Result<Vec<Resource>, String> {
    resources
        .iter()
        .map(|resource| {
            let mut resource = resource.clone();
            match resource.allocation_info.as_ref().and_then(|a| a.role.as_deref()) {
                None => resource.allocation_info = Some(AllocationInfo { role: Some(role.to_owned()) }),
                Some(allocated) if allocated == role => {}
                Some(allocated) => {
                    return Err(format!(
                        "resources are allocated to role '{allocated}' but the offers are for role '{role}'"
                    ));
                }
            }
            Ok(resource)
        })
        .collect()
}

/// Returns the executor with its framework ID and resource allocation filled in.
fn with_allocation(
    mut executor: ExecutorInfo,
    role: &str,
    framework_id: &FrameworkId,
) -> ExecutorInfo {
    executor.framework_id = Some(framework_id.clone());
    if let Ok(resources) = allocate_to(&executor.resources, role) {
        executor.resources = resources;
    }
    executor
}
