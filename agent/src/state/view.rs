//! Read-only views of the agent's state, for the HTTP layer, metrics and tests.

use strata_protocol::mesos::{ExecutorInfo, FrameworkInfo, Task, TaskInfo, TaskState};
use strata_protocol::{AgentId, ContainerId, FrameworkId, Pid, Resources, TaskId};

use super::{AgentState, Executor, ExecutorPhase, Framework, FrameworkPhase};

/// Counts of things that happened, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounters {
    pub registrations: u64,
    pub container_launch_errors: u64,
    pub updates_forwarded: u64,
    /// Executors or tasks that could not be recovered after a restart.
    pub recovery_errors: u64,
}

/// An executor as the state endpoints show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorView {
    pub info: ExecutorInfo,
    pub container_id: ContainerId,
    pub phase: ExecutorPhase,
    pub command_executor: bool,
    pub pid: Option<u32>,
    /// Tasks not yet handed to the executor.
    pub queued: Vec<TaskInfo>,
    /// Live tasks, and terminal ones whose update is not acknowledged yet.
    pub tasks: Vec<Task>,
    pub completed: Vec<Task>,
}

/// A framework as the state endpoints show it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkView {
    pub info: FrameworkInfo,
    pub terminating: bool,
    pub executors: Vec<ExecutorView>,
    pub completed_executors: Vec<ExecutorView>,
}

fn executor_view(executor: &Executor) -> ExecutorView {
    ExecutorView {
        info: executor.info.clone(),
        container_id: executor.container_id.clone(),
        phase: executor.phase,
        command_executor: executor.command_executor,
        pid: executor.pid,
        queued: executor.queued.values().cloned().collect(),
        tasks: executor
            .launched
            .values()
            .chain(executor.terminated.values())
            .cloned()
            .collect(),
        completed: executor.completed.iter().cloned().collect(),
    }
}

fn framework_view(framework: &Framework) -> FrameworkView {
    FrameworkView {
        info: framework.info.clone(),
        terminating: framework.phase == FrameworkPhase::Terminating,
        executors: framework.executors.values().map(executor_view).collect(),
        completed_executors: framework
            .completed_executors
            .iter()
            .map(executor_view)
            .collect(),
    }
}

impl AgentState {
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent_id.as_ref()
    }

    /// Tells whether the agent is registered with a master now.
    pub fn registered(&self) -> bool {
        self.is_registered()
    }

    /// The agent actor's own pid.
    pub fn pid(&self) -> &Pid {
        &self.config.pid
    }

    /// The agent's Strata version.
    pub fn version(&self) -> &str {
        &self.config.version
    }

    /// The master the agent follows (registered or registering), if any.
    pub fn master(&self) -> Option<&Pid> {
        self.master_pid()
    }

    pub fn total_resources(&self) -> &Resources {
        &self.config.resources
    }

    pub fn counters(&self) -> AgentCounters {
        self.counters
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    pub fn frameworks(&self) -> Vec<FrameworkView> {
        self.frameworks.values().map(framework_view).collect()
    }

    pub fn completed_frameworks(&self) -> Vec<FrameworkView> {
        self.completed_frameworks
            .iter()
            .map(framework_view)
            .collect()
    }

    /// The agent's latest known state of a task it still tracks.
    pub fn task_state(&self, framework_id: &FrameworkId, task_id: &TaskId) -> Option<TaskState> {
        let executor_id = self.tasks.get(&(framework_id.clone(), task_id.clone()))?;
        let executor = self.executor(framework_id, executor_id)?;
        if executor.queued.contains_key(task_id) {
            return Some(TaskState::Staging);
        }
        executor
            .launched
            .get(task_id)
            .or_else(|| executor.terminated.get(task_id))
            .map(|task| task.state)
    }

    /// Tasks per state (queued tasks count as STAGING), over live and unacknowledged tasks.
    pub fn task_counts(&self) -> std::collections::BTreeMap<TaskState, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for framework in self.frameworks.values() {
            for executor in framework.executors.values() {
                *counts.entry(TaskState::Staging).or_default() += executor.queued.len();
                for task in executor
                    .launched
                    .values()
                    .chain(executor.terminated.values())
                {
                    *counts.entry(task.state).or_default() += 1;
                }
            }
        }
        counts
    }

    /// Tasks per state over every task the agent still keeps: queued (STAGING), live, terminal
    /// and unacknowledged, and completed, of running and completed frameworks and executors.
    /// Computed without copying the tasks, for metrics.
    pub fn retained_task_counts(&self) -> std::collections::BTreeMap<TaskState, usize> {
        let mut counts = std::collections::BTreeMap::new();
        let frameworks = self.frameworks.values().chain(&self.completed_frameworks);
        for framework in frameworks {
            let executors = framework
                .executors
                .values()
                .chain(&framework.completed_executors);
            for executor in executors {
                *counts.entry(TaskState::Staging).or_default() += executor.queued.len();
                let tasks = executor
                    .launched
                    .values()
                    .chain(executor.terminated.values())
                    .chain(&executor.completed);
                for task in tasks {
                    *counts.entry(task.state).or_default() += 1;
                }
            }
        }
        counts
    }

    /// Terminated executors the agent still keeps, of running and completed frameworks.
    pub fn n_completed_executors(&self) -> usize {
        let of_running: usize = self
            .frameworks
            .values()
            .map(|framework| framework.completed_executors.len())
            .sum();
        let of_completed: usize = self
            .completed_frameworks
            .iter()
            .map(|framework| framework.executors.len() + framework.completed_executors.len())
            .sum();
        of_running + of_completed
    }

    /// Frameworks with executors or tasks on this agent.
    pub fn n_frameworks(&self) -> usize {
        self.frameworks.len()
    }

    /// Executors per phase.
    pub fn executor_counts(&self) -> std::collections::BTreeMap<ExecutorPhase, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for framework in self.frameworks.values() {
            for executor in framework.executors.values() {
                *counts.entry(executor.phase).or_default() += 1;
            }
        }
        counts
    }

    /// Resources of live executors and their tasks.
    pub fn used_resources(&self) -> Resources {
        let mut used = Resources::new();
        for framework in self.frameworks.values() {
            for executor in framework.executors.values() {
                if executor.phase == ExecutorPhase::Terminated {
                    continue;
                }
                for resource in &executor.info.resources {
                    let _ = used.add_resource(resource);
                }
                let live = executor
                    .queued
                    .values()
                    .map(|task| &task.resources)
                    .chain(executor.launched.values().map(|task| &task.resources));
                for resources in live {
                    for resource in resources {
                        let _ = used.add_resource(resource);
                    }
                }
            }
        }
        used
    }

    /// The container of a live executor.
    pub fn container_of(
        &self,
        framework_id: &FrameworkId,
        executor_id: &strata_protocol::ExecutorId,
    ) -> Option<ContainerId> {
        self.executor(framework_id, executor_id)
            .map(|executor| executor.container_id.clone())
    }

    /// Status updates not yet acknowledged.
    pub fn n_pending_updates(&self) -> usize {
        self.updates.n_pending()
    }

    /// The containers of live executors, for the containerizer's recovery and usage.
    pub fn container_ids(&self) -> Vec<ContainerId> {
        self.containers.keys().cloned().collect()
    }
}
