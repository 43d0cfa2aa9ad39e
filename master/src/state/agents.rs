//! Agents: registration, reregistration, liveness pings, unreachable and gone agents, and the
//! operator's agent calls (deactivate, reactivate, drain, mark gone).

use std::collections::{BTreeMap, BTreeSet};

use strata_protocol::internal::{
    AgentRegistered, AgentReregistered, DrainAgent, KillTask, MasterAgentConnection, Message, Ping,
    Pong, ReconcileTasks, RegisterAgent, ReregisterAgent, ShutdownAgent, ShutdownFramework,
    UnregisterAgent,
};
use strata_protocol::mesos::{
    AgentInfo, DrainConfig, FrameworkCapabilityType, FrameworkInfo, KillPolicy, Task, TaskState,
    TaskStatus, TaskStatusReason,
};
use strata_protocol::scheduler::{Event, Failure};

use strata_protocol::{AgentId, FrameworkId, Pid, Resource, Resources};

use super::frameworks::{framework_roles, push_bounded};
use super::tasks::unix_to_time_info;
use super::{
    Agent, AgentMode, Effect, ExecutorEntry, Framework, MasterState, Now, OperatorError,
    OperatorEvent, TaskEntry, UnreachableAgent,
};
use crate::registry::{AdmittedAgent, DrainRecord, RegistryOp, UnreachableRecord};

impl MasterState {
    fn connection(&self) -> MasterAgentConnection {
        let total = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts;
        MasterAgentConnection {
            total_ping_timeout_seconds: total.as_secs_f64(),
        }
    }

    pub(super) fn register_agent(
        &mut self,
        now: Now,
        from: Pid,
        register: RegisterAgent,
        out: &mut Vec<Effect>,
    ) {
        if let Some(agent_id) = self.agent_by_pid.get(&from).cloned() {
            // The agent did not hear our answer and retried: answer again, same ID.
            let connection = self.connection();
            out.push(Effect::Agent {
                pid: from,
                message: Message::AgentRegistered(AgentRegistered {
                    agent_id,
                    connection,
                }),
            });
            return;
        }
        let total = match agent_total(&register.agent_info, &register.checkpointed_resources) {
            Ok(total) => total,
            Err(message) => return refuse_agent(from, message, out),
        };
        let agent_id =
            AgentId::new(self.next_id('S')).expect("master-assigned agent IDs are valid");
        let mut info = register.agent_info;
        info.id = Some(agent_id.clone());
        if let Err(err) = self
            .allocator
            .add_agent(agent_id.clone(), total.clone(), BTreeMap::new())
        {
            tracing::error!(%agent_id, error = %err, "allocator refused a new agent");
            return;
        }
        tracing::info!(%agent_id, %from, hostname = %info.hostname, resources = %total, "agent registered");
        self.admit_agent(
            now,
            agent_id.clone(),
            from.clone(),
            info,
            register.version,
            total,
        );
        self.record_agent(&agent_id, out);
        self.counters.agent_registrations += 1;
        self.emit(OperatorEvent::AgentAdded(agent_id.clone()));
        let connection = self.connection();
        out.push(Effect::Link { pid: from.clone() });
        out.push(Effect::Agent {
            pid: from,
            message: Message::AgentRegistered(AgentRegistered {
                agent_id,
                connection,
            }),
        });
    }

    fn admit_agent(
        &mut self,
        now: Now,
        agent_id: AgentId,
        pid: Pid,
        mut info: AgentInfo,
        version: String,
        total: Resources,
    ) {
        // `total` is the one copy of the agent's resources; views fill `info.resources` from it.
        info.resources = Vec::new();
        let agent = Agent {
            id: agent_id.clone(),
            pid: pid.clone(),
            info,
            version,
            total,
            connected: true,
            mode: AgentMode::Active,
            drain_config: DrainConfig::default(),
            tasks: BTreeSet::new(),
            executors: BTreeMap::new(),
            registered_time: now.unix,
            reregistered_time: None,
            ping_outstanding: None,
            pings_missed: 0,
            next_ping: now.mono + self.config.agent_ping_timeout,
        };
        self.agents.insert(agent_id.clone(), agent);
        self.agent_by_pid.insert(pid, agent_id);
        self.allocation_pending = true;
    }

    pub(super) fn reregister_agent(
        &mut self,
        now: Now,
        from: Pid,
        reregister: ReregisterAgent,
        out: &mut Vec<Effect>,
    ) {
        let Some(agent_id) = reregister.agent_info.id.clone() else {
            return refuse_agent(from, "reregistration must carry the agent's ID".into(), out);
        };
        if self.gone_agents.contains_key(&agent_id) {
            return refuse_agent(from, format!("agent {agent_id} has been marked gone"), out);
        }
        let reconciliations = if self.agents.contains_key(&agent_id) {
            self.reconnect_agent(now, &agent_id, from.clone(), &reregister)
        } else {
            match agent_total(&reregister.agent_info, &reregister.checkpointed_resources) {
                Ok(total) => {
                    self.readmit_agent(now, &agent_id, from.clone(), reregister, total, out)
                }
                Err(message) => return refuse_agent(from, message, out),
            }
            Vec::new()
        };
        tracing::info!(%agent_id, %from, "agent reregistered");
        self.counters.agent_reregistrations += 1;
        let connection = self.connection();
        out.push(Effect::Link { pid: from.clone() });
        out.push(Effect::Agent {
            pid: from,
            message: Message::AgentReregistered(AgentReregistered {
                agent_id,
                reconciliations,
                connection,
            }),
        });
    }

    /// A registered agent came back (after a broken link, or restarted with its ID). Returns,
    /// per framework, the live tasks the master places on it, so that the agent can report the
    /// ones it does not know as dropped.
    fn reconnect_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        from: Pid,
        reregister: &ReregisterAgent,
    ) -> Vec<ReconcileTasks> {
        let agent = self.agents.get_mut(agent_id).expect("caller checked");
        let old_pid = std::mem::replace(&mut agent.pid, from.clone());
        agent.connected = true;
        agent.ping_outstanding = None;
        agent.pings_missed = 0;
        agent.next_ping = now.mono + self.config.agent_ping_timeout;
        agent.reregistered_time = Some(now.unix);
        agent.version = reregister.version.clone();
        let offerable = agent.mode == AgentMode::Active;
        let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
        self.agent_by_pid.remove(&old_pid);
        self.agent_by_pid.insert(from, agent_id.clone());
        if offerable && let Err(err) = self.allocator.activate_agent(agent_id) {
            tracing::error!(%agent_id, error = %err, "allocator refused to activate an agent");
        }
        self.allocation_pending = true;
        let mut by_framework: BTreeMap<FrameworkId, Vec<TaskStatus>> = BTreeMap::new();
        for (framework_id, task_id) in tasks {
            let Some(entry) = self
                .frameworks
                .get(&framework_id)
                .and_then(|f| f.tasks.get(&task_id))
            else {
                continue;
            };
            if !entry.task.state.is_terminal() {
                let mut status = TaskStatus::new(task_id, entry.task.state);
                status.agent_id = Some(agent_id.clone());
                by_framework.entry(framework_id).or_default().push(status);
            }
        }
        by_framework
            .into_iter()
            .map(|(framework_id, statuses)| ReconcileTasks {
                framework: self.frameworks.get(&framework_id).map(|f| f.info.clone()),
                framework_id,
                statuses,
            })
            .collect()
    }

    /// Admits an agent this master does not have registered: one that was unreachable, or one
    /// registered with a previous master (recovered from the registry, or not). Its tasks and
    /// frameworks come from its report; a recovered agent keeps its drain or deactivation.
    fn readmit_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        from: Pid,
        reregister: ReregisterAgent,
        total: Resources,
        out: &mut Vec<Effect>,
    ) {
        let was_unreachable = self.unreachable_agents.remove(agent_id).is_some();
        let recovered = self.recovered_agents.remove(agent_id);
        for info in &reregister.frameworks {
            self.recover_framework(now, info);
        }
        let mut used: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
        let mut tasks = Vec::new();
        let mut ended_tasks = Vec::new();
        for task in reregister.tasks {
            if task.state.is_terminal() {
                // Still waiting for the acknowledgement of its last update: keep it, with its
                // resources already free, so that the acknowledgement removes it.
                if self.frameworks.contains_key(&task.framework_id)
                    && let Ok(resources) = Resources::from_resources(task.resources.iter().cloned())
                {
                    ended_tasks.push((task, resources));
                }
                continue;
            }
            if !self.frameworks.contains_key(&task.framework_id) {
                out.push(Effect::Agent {
                    pid: from.clone(),
                    message: Message::ShutdownFramework(ShutdownFramework {
                        framework_id: task.framework_id.clone(),
                    }),
                });
                continue;
            }
            match Resources::from_resources(task.resources.iter().cloned()) {
                Ok(resources) => {
                    *used.entry(task.framework_id.clone()).or_default() += &resources;
                    tasks.push((task, resources));
                }
                Err(err) => {
                    tracing::warn!(%agent_id, task_id = %task.task_id, error = %err, "ignoring reported task with invalid resources")
                }
            }
        }
        let mut executors = BTreeMap::new();
        for info in reregister.executor_infos {
            let Some(framework_id) = info.framework_id.clone() else {
                continue;
            };
            if !self.frameworks.contains_key(&framework_id) {
                continue;
            }
            let Ok(resources) = Resources::from_resources(info.resources.iter().cloned()) else {
                continue;
            };
            *used.entry(framework_id.clone()).or_default() += &resources;
            let key = (framework_id, info.executor_id.clone());
            executors.insert(key, ExecutorEntry { info, resources });
        }
        if let Err(err) = self
            .allocator
            .add_agent(agent_id.clone(), total.clone(), used)
        {
            tracing::error!(%agent_id, error = %err, "allocator refused a reregistering agent");
            return;
        }
        let mut info = reregister.agent_info;
        info.id = Some(agent_id.clone());
        self.admit_agent(now, agent_id.clone(), from, info, reregister.version, total);
        let mut drain = None;
        if let Some(recovered) = &recovered {
            let mode = registered_mode(&recovered.record);
            let agent = self.agents.get_mut(agent_id).expect("admitted above");
            agent.mode = mode;
            if let Some(record) = recovered.record.drain {
                agent.drain_config = record.config;
                if mode == AgentMode::Draining {
                    drain = Some(record.config);
                }
            }
            if mode != AgentMode::Active
                && let Err(err) = self.allocator.deactivate_agent(agent_id)
            {
                tracing::error!(%agent_id, error = %err, "allocator refused to deactivate an agent");
            }
        }
        self.record_agent(agent_id, out);
        self.emit(OperatorEvent::AgentAdded(agent_id.clone()));
        for (framework_id, executor_id) in executors.keys() {
            if let Some(framework) = self.frameworks.get_mut(framework_id) {
                let on_agent = framework.executors.entry(agent_id.clone()).or_default();
                on_agent.insert(executor_id.clone());
            }
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.reregistered_time = Some(now.unix);
            agent.executors = executors;
        }
        for (task, resources) in tasks {
            self.readmit_task(now, agent_id, task, resources, was_unreachable, false, out);
        }
        for (task, resources) in ended_tasks {
            self.readmit_task(now, agent_id, task, resources, false, true, out);
        }
        if was_unreachable {
            self.drop_unreported_tasks(now, agent_id, out);
        }
        if let Some(config) = drain {
            // The drain began before the master restarted: the agent hears of it again, and
            // the tasks it reported are killed.
            if let Err(err) = self.drain_agent(now, agent_id, config, out) {
                tracing::error!(%agent_id, error = %err, "cannot resume an agent's drain");
            }
        }
    }

    /// Records the registered agent's current registry entry (its info, drain and
    /// deactivation).
    pub(super) fn record_agent(&self, agent_id: &AgentId, out: &mut Vec<Effect>) {
        if let Some(agent) = self.agents.get(agent_id) {
            out.push(Effect::Registry(RegistryOp::AdmitAgent(admitted_record(
                agent,
            ))));
        }
    }

    /// Marks unreachable the agents recovered from the registry that did not reregister in
    /// time.
    pub(super) fn expire_recovered_agents(&mut self, now: Now, out: &mut Vec<Effect>) {
        let expired: Vec<AgentId> = self
            .recovered_agents
            .iter()
            .filter(|(_, agent)| agent.deadline <= now.mono)
            .map(|(agent_id, _)| agent_id.clone())
            .collect();
        for agent_id in expired {
            let recovered = self
                .recovered_agents
                .remove(&agent_id)
                .expect("listed above");
            tracing::warn!(%agent_id, "agent did not reregister after the master restarted; marking it unreachable");
            let info = recovered.record.info;
            out.push(Effect::Registry(RegistryOp::MarkUnreachable(
                UnreachableRecord {
                    info: info.clone(),
                    since: now.unix,
                },
            )));
            self.unreachable_agents.insert(
                agent_id.clone(),
                UnreachableAgent {
                    info,
                    since: now.unix,
                },
            );
            self.counters.agents_marked_unreachable += 1;
            self.send_failure(&agent_id, out);
        }
    }

    /// Ends the tasks that waited on an unreachable agent that came back without them: they
    /// never reached it, or ended and were forgotten.
    fn drop_unreported_tasks(&mut self, now: Now, agent_id: &AgentId, out: &mut Vec<Effect>) {
        let end = UnreachableEnd {
            state_aware: TaskState::Dropped,
            reason: TaskStatusReason::ReasonAgentReregistered,
            message: "Task is unknown to the reregistered agent",
        };
        self.end_unreachable_tasks(now, agent_id, end, out);
    }

    /// Ends every task that waits on the unreachable agent `agent_id`: each moves to its
    /// framework's completed tasks in `end.state_aware` (PARTITION_AWARE frameworks) or
    /// TASK_LOST, and the framework is told.
    fn end_unreachable_tasks(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        end: UnreachableEnd,
        out: &mut Vec<Effect>,
    ) {
        let max = self.config.max_completed_tasks_per_framework;
        let mut ended = Vec::new();
        for framework in self.frameworks.values_mut() {
            let partition_aware = framework
                .info
                .has_capability(FrameworkCapabilityType::PartitionAware);
            let state = if partition_aware {
                end.state_aware
            } else {
                TaskState::Lost
            };
            let task_ids: Vec<_> = framework
                .unreachable_tasks
                .iter()
                .filter(|(_, entry)| &entry.task.agent_id == agent_id)
                .map(|(task_id, _)| task_id.clone())
                .collect();
            for task_id in task_ids {
                let mut entry = framework
                    .unreachable_tasks
                    .remove(&task_id)
                    .expect("listed above");
                entry.task.state = state;
                push_bounded(&mut framework.completed_tasks, entry.into_task(), max);
                ended.push((framework.id.clone(), task_id, state));
            }
        }
        for (framework_id, task_id, state) in ended {
            let event = self.master_update(
                now,
                &task_id,
                Some(agent_id),
                state,
                end.reason,
                end.message,
            );
            self.counters.count_task_state(state);
            self.emit_master_update(&framework_id, &event);
            self.send_to_framework(&framework_id, event, out);
        }
    }

    /// Adds a task reported by a reregistering agent; if it was unreachable, tells its
    /// framework it is back.
    #[allow(clippy::too_many_arguments)]
    fn readmit_task(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        mut task: Task,
        resources: Resources,
        was_unreachable: bool,
        resources_recovered: bool,
        out: &mut Vec<Effect>,
    ) {
        let framework_id = task.framework_id.clone();
        let task_id = task.task_id.clone();
        task.agent_id = agent_id.clone();
        // `TaskEntry::resources` is the one copy kept.
        task.resources = Vec::new();
        let state = task.state;
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.tasks.insert((framework_id.clone(), task_id.clone()));
        }
        let framework = self
            .frameworks
            .get_mut(&framework_id)
            .expect("caller checked");
        let known = framework.unreachable_tasks.remove(&task_id).is_some();
        framework.tasks.insert(
            task_id.clone(),
            TaskEntry {
                task: Box::new(task),
                resources,
                resources_recovered,
            },
        );
        if was_unreachable {
            let event = self.master_update(
                now,
                &task_id,
                Some(agent_id),
                state,
                TaskStatusReason::ReasonAgentReregistered,
                "Agent reregistered",
            );
            self.emit_master_update(&framework_id, &event);
            self.send_to_framework(&framework_id, event, out);
        }
        if !known {
            self.emit(OperatorEvent::TaskAdded {
                framework_id,
                task_id,
            });
        }
    }

    /// Adds a framework known only from an agent's report (after a master failover), waiting
    /// for its scheduler to resubscribe within its failover timeout.
    fn recover_framework(&mut self, now: Now, info: &FrameworkInfo) {
        let Some(framework_id) = info.id.clone() else {
            return;
        };
        if self.frameworks.contains_key(&framework_id)
            || self
                .completed_frameworks
                .iter()
                .any(|f| f.id == framework_id)
        {
            return;
        }
        let roles = framework_roles(info);
        if let Err(err) = self.allocator.add_framework(
            framework_id.clone(),
            roles.clone(),
            BTreeSet::new(),
            false,
        ) {
            tracing::warn!(%framework_id, error = %err, "cannot recover framework from an agent's report");
            return;
        }
        let timeout = std::time::Duration::try_from_secs_f64(info.failover_timeout())
            .unwrap_or(std::time::Duration::MAX);
        tracing::info!(%framework_id, "recovered framework from an agent's report");
        self.emit(OperatorEvent::FrameworkAdded(framework_id.clone()));
        self.frameworks.insert(
            framework_id.clone(),
            Framework {
                id: framework_id,
                info: info.clone(),
                conn: None,
                roles,
                suppressed_roles: BTreeSet::new(),
                tasks: BTreeMap::new(),
                unreachable_tasks: BTreeMap::new(),
                completed_tasks: Default::default(),
                offers: BTreeSet::new(),
                executors: BTreeMap::new(),
                registered_time: now.unix,
                reregistered_time: None,
                failover_deadline: Some(now.mono.saturating_add(timeout)),
                next_heartbeat: now.mono,
            },
        );
    }

    pub(super) fn pong(&mut self, from: &Pid, pong: Pong) {
        let Some(agent) = self
            .agent_by_pid
            .get(from)
            .and_then(|id| self.agents.get_mut(id))
        else {
            return;
        };
        if agent.ping_outstanding == Some(pong.seq) {
            agent.ping_outstanding = None;
            agent.pings_missed = 0;
        }
    }

    /// Pings every agent whose ping is due; an agent that misses too many in a row becomes
    /// unreachable.
    pub(super) fn ping_agents(&mut self, now: Now, out: &mut Vec<Effect>) {
        let mut unreachable = Vec::new();
        let max_missed = self.config.max_agent_ping_timeouts;
        let timeout = self.config.agent_ping_timeout;
        for agent in self.agents.values_mut() {
            if agent.next_ping > now.mono {
                continue;
            }
            if agent.ping_outstanding.is_some() {
                agent.pings_missed += 1;
                tracing::debug!(agent_id = %agent.id, pings_missed = agent.pings_missed, "agent ping timed out");
                if agent.pings_missed >= max_missed {
                    unreachable.push(agent.id.clone());
                    continue;
                }
            }
            self.next_ping_seq += 1;
            agent.ping_outstanding = Some(self.next_ping_seq);
            agent.next_ping = now.mono + timeout;
            out.push(Effect::Agent {
                pid: agent.pid.clone(),
                message: Message::Ping(Ping {
                    seq: self.next_ping_seq,
                }),
            });
        }
        for agent_id in unreachable {
            self.mark_unreachable(now, &agent_id, out);
        }
        self.finish_drained(now, out);
    }

    /// The link to an agent broke: stop offering it until it reregisters; pings go on and
    /// decide whether it becomes unreachable.
    pub(super) fn agent_disconnected(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        out: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if !agent.connected {
            return;
        }
        agent.connected = false;
        tracing::info!(%agent_id, "agent disconnected");
        if let Err(err) = self.allocator.deactivate_agent(agent_id) {
            tracing::error!(%agent_id, error = %err, "allocator refused to deactivate an agent");
        }
        self.remove_agent_offers(now, agent_id, out);
    }

    /// Removes an agent that stopped answering pings. Its tasks wait among the unreachable
    /// tasks: PARTITION_AWARE frameworks see TASK_UNREACHABLE, others TASK_LOST, and all get
    /// FAILURE for the agent. If the agent comes back, so do its tasks.
    pub(super) fn mark_unreachable(&mut self, now: Now, agent_id: &AgentId, out: &mut Vec<Effect>) {
        self.remove_agent_offers(now, agent_id, out);
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        tracing::warn!(%agent_id, "agent unreachable");
        out.push(Effect::Registry(RegistryOp::MarkUnreachable(
            UnreachableRecord {
                info: admitted_record(&agent).info,
                since: now.unix,
            },
        )));
        self.emit(OperatorEvent::AgentRemoved(agent_id.clone()));
        self.agent_by_pid.remove(&agent.pid);
        self.allocator.remove_agent(agent_id);
        self.unreachable_agents.insert(
            agent_id.clone(),
            UnreachableAgent {
                info: agent.info.clone(),
                since: now.unix,
            },
        );
        self.counters.agent_removals += 1;
        self.counters.agents_marked_unreachable += 1;
        let unreachable_time = unix_to_time_info(now.unix);
        for (framework_id, task_id) in &agent.tasks {
            let partition_aware = self.is_partition_aware(framework_id);
            let Some(framework) = self.frameworks.get_mut(framework_id) else {
                continue;
            };
            framework.executors.remove(agent_id);
            let Some(mut entry) = framework.tasks.remove(task_id) else {
                continue;
            };
            if entry.task.state.is_terminal() {
                push_bounded(
                    &mut framework.completed_tasks,
                    entry.into_task(),
                    self.config.max_completed_tasks_per_framework,
                );
                continue;
            }
            entry.task.state = TaskState::Unreachable;
            framework.unreachable_tasks.insert(task_id.clone(), entry);
            let state = if partition_aware {
                TaskState::Unreachable
            } else {
                TaskState::Lost
            };
            let mut event = self.master_update(
                now,
                task_id,
                Some(agent_id),
                state,
                TaskStatusReason::ReasonAgentRemoved,
                "Agent is unreachable",
            );
            if let Event::Update(update) = &mut event {
                update.status.unreachable_time = Some(unreachable_time);
            }
            self.emit_master_update(framework_id, &event);
            self.send_to_framework(framework_id, event, out);
        }
        self.send_failure(agent_id, out);
        self.allocation_pending = true;
    }

    fn send_failure(&self, agent_id: &AgentId, out: &mut Vec<Effect>) {
        for framework in self.frameworks.values() {
            if let Some(conn) = &framework.conn {
                out.push(Effect::Framework {
                    conn: conn.clone(),
                    event: Event::Failure(Failure {
                        agent_id: Some(agent_id.clone()),
                        executor_id: None,
                        status: None,
                    }),
                });
            }
        }
    }

    /// Removes a registered agent for good (it unregistered, or the operator marked it gone):
    /// its tasks end in `state_aware` (PARTITION_AWARE frameworks) or TASK_LOST.
    fn remove_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        state_aware: TaskState,
        reason: TaskStatusReason,
        message: &str,
        out: &mut Vec<Effect>,
    ) -> Option<Agent> {
        self.remove_agent_offers(now, agent_id, out);
        let agent = self.agents.remove(agent_id)?;
        self.emit(OperatorEvent::AgentRemoved(agent_id.clone()));
        self.agent_by_pid.remove(&agent.pid);
        self.allocator.remove_agent(agent_id);
        self.counters.agent_removals += 1;
        for (framework_id, task_id) in &agent.tasks {
            let partition_aware = self.is_partition_aware(framework_id);
            let Some(framework) = self.frameworks.get_mut(framework_id) else {
                continue;
            };
            framework.executors.remove(agent_id);
            let Some(mut entry) = framework.tasks.remove(task_id) else {
                continue;
            };
            let was_terminal = entry.task.state.is_terminal();
            let state = if partition_aware {
                state_aware
            } else {
                TaskState::Lost
            };
            if !was_terminal {
                entry.task.state = state;
            }
            push_bounded(
                &mut framework.completed_tasks,
                entry.into_task(),
                self.config.max_completed_tasks_per_framework,
            );
            if !was_terminal {
                self.counters.count_task_state(state);
                let event =
                    self.master_update(now, task_id, Some(agent_id), state, reason, message);
                self.emit_master_update(framework_id, &event);
                self.send_to_framework(framework_id, event, out);
            }
        }
        self.send_failure(agent_id, out);
        self.allocation_pending = true;
        Some(agent)
    }

    pub(super) fn unregister_agent(
        &mut self,
        now: Now,
        from: &Pid,
        unregister: UnregisterAgent,
        out: &mut Vec<Effect>,
    ) {
        if self.agent_by_pid.get(from) != Some(&unregister.agent_id) {
            tracing::warn!(%from, agent_id = %unregister.agent_id, "ignoring unregistration from another pid");
            return;
        }
        tracing::info!(agent_id = %unregister.agent_id, "agent unregistered");
        out.push(Effect::Registry(RegistryOp::RemoveAgent {
            agent_id: unregister.agent_id.clone(),
        }));
        self.remove_agent(
            now,
            &unregister.agent_id,
            TaskState::Gone,
            TaskStatusReason::ReasonAgentRemoved,
            "Agent unregistered",
            out,
        );
    }

    /// MARK_AGENT_GONE: the agent's tasks are gone for good and it may never come back.
    pub fn mark_agent_gone(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        if self.gone_agents.contains_key(agent_id) {
            return Ok(());
        }
        let known = self.agents.contains_key(agent_id)
            || self.unreachable_agents.contains_key(agent_id)
            || self.recovered_agents.contains_key(agent_id);
        if !known {
            return Err(OperatorError::NotFound(format!(
                "agent {agent_id} is not known"
            )));
        }
        out.push(Effect::Registry(RegistryOp::MarkGone {
            agent_id: agent_id.clone(),
            at: now.unix,
        }));
        let reason = TaskStatusReason::ReasonAgentRemovedByOperator;
        if let Some(agent) = self.remove_agent(
            now,
            agent_id,
            TaskState::GoneByOperator,
            reason,
            "Agent marked gone by the operator",
            out,
        ) {
            out.push(Effect::Agent {
                pid: agent.pid,
                message: Message::ShutdownAgent(ShutdownAgent {
                    message: "agent was marked gone by the operator".into(),
                }),
            });
        } else if self.unreachable_agents.remove(agent_id).is_some() {
            self.gone_unreachable_tasks(now, agent_id, out);
        } else {
            // Recovered from the registry and not back yet: no task of it is known.
            self.recovered_agents.remove(agent_id);
            self.send_failure(agent_id, out);
        }
        tracing::info!(%agent_id, "agent marked gone");
        self.gone_agents.insert(agent_id.clone(), now.unix);
        Ok(())
    }

    /// Ends the tasks that waited on an unreachable agent now marked gone.
    fn gone_unreachable_tasks(&mut self, now: Now, agent_id: &AgentId, out: &mut Vec<Effect>) {
        let end = UnreachableEnd {
            state_aware: TaskState::GoneByOperator,
            reason: TaskStatusReason::ReasonAgentRemovedByOperator,
            message: "Agent marked gone by the operator",
        };
        self.end_unreachable_tasks(now, agent_id, end, out);
    }

    /// DEACTIVATE_AGENT: no more offers of its resources; its tasks keep running.
    pub fn deactivate_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        self.set_agent_mode(now, agent_id, AgentMode::Deactivated, out)?;
        self.record_agent(agent_id, out);
        Ok(())
    }

    /// REACTIVATE_AGENT: offers resume (also ends a drain).
    pub fn reactivate_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        self.set_agent_mode(now, agent_id, AgentMode::Active, out)?;
        self.record_agent(agent_id, out);
        Ok(())
    }

    /// DRAIN_AGENT: no more offers, and every task on the agent is killed; the agent is
    /// DRAINED once none is left (and marked gone then if `config.mark_gone`).
    pub fn drain_agent(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        config: DrainConfig,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        if let Some(recovered) = self.recovered_agents.get_mut(agent_id) {
            // The agent hears of the drain, and its tasks are killed, when it reregisters.
            recovered.record.deactivated = true;
            recovered.record.drain = Some(DrainRecord {
                config,
                drained: false,
            });
            let record = recovered.record.clone();
            out.push(Effect::Registry(RegistryOp::AdmitAgent(record)));
            return Ok(());
        }
        self.set_agent_mode(now, agent_id, AgentMode::Draining, out)?;
        let agent = self
            .agents
            .get_mut(agent_id)
            .expect("set_agent_mode checked");
        agent.drain_config = config;
        let pid = agent.pid.clone();
        let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
        self.record_agent(agent_id, out);
        let kill_policy = config.max_grace_period.map(|grace| KillPolicy {
            grace_period: Some(grace),
        });
        out.push(Effect::Agent {
            pid: pid.clone(),
            message: Message::DrainAgent(DrainAgent { config }),
        });
        for (framework_id, task_id) in tasks {
            let live = self
                .frameworks
                .get(&framework_id)
                .and_then(|f| f.tasks.get(&task_id))
                .is_some_and(|entry| !entry.task.state.is_terminal());
            if live {
                out.push(Effect::Agent {
                    pid: pid.clone(),
                    message: Message::KillTask(KillTask {
                        framework_id,
                        task_id,
                        kill_policy,
                    }),
                });
            }
        }
        self.check_drained(out);
        self.finish_drained(now, out);
        Ok(())
    }

    fn set_agent_mode(
        &mut self,
        now: Now,
        agent_id: &AgentId,
        mode: AgentMode,
        out: &mut Vec<Effect>,
    ) -> Result<(), OperatorError> {
        if let Some(recovered) = self.recovered_agents.get_mut(agent_id) {
            // Kept for when the agent reregisters; it is not offered meanwhile anyway.
            let record = &mut recovered.record;
            match mode {
                AgentMode::Active => {
                    record.deactivated = false;
                    record.drain = None;
                }
                AgentMode::Deactivated => record.deactivated = true,
                AgentMode::Draining | AgentMode::Drained => {}
            }
            out.push(Effect::Registry(RegistryOp::AdmitAgent(record.clone())));
            return Ok(());
        }
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return Err(OperatorError::NotFound(format!(
                "agent {agent_id} is not registered"
            )));
        };
        agent.mode = mode;
        if mode == AgentMode::Active {
            agent.drain_config = DrainConfig::default();
        }
        let connected = agent.connected;
        let result = if mode == AgentMode::Active {
            self.allocation_pending = true;
            if connected {
                self.allocator.activate_agent(agent_id)
            } else {
                Ok(())
            }
        } else {
            self.allocator.deactivate_agent(agent_id)
        };
        if let Err(err) = result {
            tracing::error!(%agent_id, error = %err, "allocator refused an agent mode change");
        }
        if mode != AgentMode::Active {
            self.remove_agent_offers(now, agent_id, out);
        }
        Ok(())
    }

    /// Moves draining agents with no tasks left to DRAINED.
    pub(super) fn check_drained(&mut self, out: &mut Vec<Effect>) {
        for agent in self.agents.values_mut() {
            if agent.mode == AgentMode::Draining && agent.tasks.is_empty() {
                tracing::info!(agent_id = %agent.id, "agent drained");
                agent.mode = AgentMode::Drained;
                out.push(Effect::Registry(RegistryOp::AdmitAgent(admitted_record(
                    agent,
                ))));
            }
        }
    }

    /// Marks gone the drained agents whose drain asked for it.
    fn finish_drained(&mut self, now: Now, out: &mut Vec<Effect>) {
        let done: Vec<AgentId> = self
            .agents
            .values()
            .filter(|agent| agent.mode == AgentMode::Drained && agent.drain_config.mark_gone())
            .map(|agent| agent.id.clone())
            .collect();
        for agent_id in done {
            if let Err(err) = self.mark_agent_gone(now, &agent_id, out) {
                tracing::error!(%agent_id, error = %err, "cannot mark a drained agent gone");
            }
        }
    }
}

/// How the tasks of an unreachable agent end, and what their frameworks are told.
struct UnreachableEnd {
    /// The state for PARTITION_AWARE frameworks; the others get TASK_LOST.
    state_aware: TaskState,
    reason: TaskStatusReason,
    message: &'static str,
}

/// Returns an agent's total resources, or why they are not acceptable: the resources it
/// declares, with its checkpointed dynamic reservations in place of the resources they were
/// made from.
fn agent_total(info: &AgentInfo, checkpointed: &[Resource]) -> Result<Resources, String> {
    if info.hostname.is_empty() {
        return Err("agent info must carry a hostname".into());
    }
    let mut total = Resources::from_resources(info.resources.iter().cloned())
        .map_err(|err| format!("agent resources are invalid: {err}"))?;
    let reserved = Resources::from_resources(
        checkpointed
            .iter()
            .filter(|resource| resource.is_dynamically_reserved())
            .cloned(),
    )
    .map_err(|err| format!("checkpointed resources are invalid: {err}"))?;
    // An agent that counts its reservations in its declared resources already reports its
    // total.
    if reserved.is_empty() || total.contains(&reserved) {
        return Ok(total);
    }
    let unreserved = reserved
        .pop_reservation()
        .map_err(|err| format!("checkpointed resources are invalid: {err}"))?;
    if !total.contains(&unreserved) {
        return Err(format!(
            "checkpointed resources {reserved} do not fit in the agent's resources {total}"
        ));
    }
    total -= &unreserved;
    total += &reserved;
    Ok(total)
}

/// Returns the registry entry of a registered agent: its info with its total resources, and
/// its drain and deactivation.
fn admitted_record(agent: &Agent) -> AdmittedAgent {
    let mut info = agent.info.clone();
    info.id = Some(agent.id.clone());
    info.resources = agent.total.to_wire();
    let drain = |drained| {
        Some(DrainRecord {
            config: agent.drain_config,
            drained,
        })
    };
    let (deactivated, drain) = match agent.mode {
        AgentMode::Active => (false, None),
        AgentMode::Deactivated => (true, None),
        AgentMode::Draining => (true, drain(false)),
        AgentMode::Drained => (true, drain(true)),
    };
    AdmittedAgent {
        info,
        deactivated,
        drain,
    }
}

/// Returns the mode a registry entry describes.
fn registered_mode(record: &AdmittedAgent) -> AgentMode {
    match record.drain {
        Some(DrainRecord { drained: true, .. }) => AgentMode::Drained,
        Some(DrainRecord { drained: false, .. }) => AgentMode::Draining,
        None if record.deactivated => AgentMode::Deactivated,
        None => AgentMode::Active,
    }
}

fn refuse_agent(pid: Pid, message: String, out: &mut Vec<Effect>) {
    tracing::warn!(%pid, %message, "refusing agent");
    out.push(Effect::Agent {
        pid,
        message: Message::ShutdownAgent(ShutdownAgent { message }),
    });
}
