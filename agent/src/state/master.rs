//! Following the master: registration with backoff, reregistration after a broken link or a
//! silent master, pings, epochs, and dispatching the master's messages.

use std::time::Duration;

use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{AgentCapability, AgentCapabilityType, TaskState};
use strata_protocol::{Epoch, Pid};

use super::{AgentState, Effect, InputError, MasterLink, Now};

/// What the agent tells the master it can do.
fn capabilities() -> Vec<AgentCapability> {
    [
        AgentCapabilityType::MultiRole,
        AgentCapabilityType::HierarchicalRole,
        AgentCapabilityType::ReservationRefinement,
        AgentCapabilityType::AgentDraining,
    ]
    .into_iter()
    .map(AgentCapability::from)
    .collect()
}

impl AgentState {
    pub(super) fn master_detected(
        &mut self,
        now: Now,
        pid: Option<Pid>,
        effects: &mut Vec<Effect>,
    ) {
        self.updates.pause();
        match pid {
            None => {
                tracing::info!("no master detected");
                self.master = MasterLink::Disconnected;
            }
            Some(pid) => {
                tracing::info!(master = %pid, "master detected");
                effects.push(Effect::Link { pid: pid.clone() });
                self.master = MasterLink::Registering {
                    pid,
                    attempt: 0,
                    next_at: now.mono,
                };
                self.tick_master(now, effects);
            }
        }
    }

    /// A broken link to the master: reregister with it (it may have restarted, or the network
    /// healed). Links to executors are handled by the executor code.
    pub(super) fn link_broken(&mut self, now: Now, pid: &Pid, effects: &mut Vec<Effect>) {
        if self.master_pid() == Some(pid) {
            tracing::info!(master = %pid, "link to master broke; reregistering");
            self.start_registering(now, pid.clone(), effects);
            return;
        }
        let conn = super::ExecutorConn::Actor(pid.clone());
        self.executor_disconnected(now, &conn, effects);
    }

    fn start_registering(&mut self, now: Now, pid: Pid, effects: &mut Vec<Effect>) {
        self.updates.pause();
        effects.push(Effect::Link { pid: pid.clone() });
        self.master = MasterLink::Registering {
            pid,
            attempt: 0,
            // Mesos waits a random part of the first backoff so that agents of a restarted
            // master do not all come back at once; a deterministic spread does the same here.
            next_at: now.mono + self.spread(self.config.registration_backoff_min),
        };
    }

    /// Returns a part of `span` (between half and all of it) fixed per agent, from its seed.
    fn spread(&self, span: Duration) -> Duration {
        let fraction = 0.5 + (self.config.id_seed % 1000) as f64 / 2000.0;
        span.mul_f64(fraction)
    }

    pub(crate) fn master_pid(&self) -> Option<&Pid> {
        match &self.master {
            MasterLink::Disconnected => None,
            MasterLink::Registering { pid, .. } | MasterLink::Registered { pid, .. } => Some(pid),
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        matches!(self.master, MasterLink::Registered { .. })
    }

    pub(super) fn tick_master(&mut self, now: Now, effects: &mut Vec<Effect>) {
        match &mut self.master {
            MasterLink::Disconnected => {}
            MasterLink::Registering {
                pid,
                attempt,
                next_at,
            } => {
                if now.mono < *next_at {
                    return;
                }
                let pid = pid.clone();
                let backoff = self
                    .config
                    .registration_backoff_min
                    .saturating_mul(1u32 << (*attempt).min(16))
                    .min(self.config.registration_backoff_max);
                *attempt = attempt.saturating_add(1);
                *next_at = now.mono + backoff;
                let message = self.registration_message();
                effects.push(Effect::Master { pid, message });
            }
            MasterLink::Registered {
                pid,
                last_ping,
                ping_timeout,
            } => {
                if now.mono < *last_ping + *ping_timeout {
                    return;
                }
                let pid = pid.clone();
                tracing::warn!(master = %pid, "no ping from master in time; reregistering");
                self.start_registering(now, pid, effects);
            }
        }
    }

    /// RegisterAgent for an agent without an ID, else ReregisterAgent with everything it runs.
    fn registration_message(&self) -> Message {
        let agent_info = self.agent_info();
        match &self.agent_id {
            None => internal::RegisterAgent {
                agent_info,
                checkpointed_resources: self.checkpointed_resources.clone(),
                version: self.config.version.clone(),
                capabilities: capabilities(),
            }
            .into(),
            Some(_) => {
                let mut executor_infos = Vec::new();
                let mut tasks = Vec::new();
                let mut frameworks = Vec::new();
                for framework in self.frameworks.values() {
                    frameworks.push(framework.info.clone());
                    for executor in framework.executors.values() {
                        if !executor.command_executor {
                            executor_infos.push(executor.info.clone());
                        }
                        for task in executor
                            .launched
                            .values()
                            .chain(executor.terminated.values())
                        {
                            tasks.push(self.reported_task(task));
                        }
                        for info in executor.queued.values() {
                            let framework_id = framework.info.id.clone().expect("framework id");
                            tasks.push(self.task_from_info(
                                info,
                                &framework_id,
                                &executor.info.executor_id,
                                executor.command_executor,
                                TaskState::Staging,
                            ));
                        }
                    }
                }
                internal::ReregisterAgent {
                    agent_info,
                    checkpointed_resources: self.checkpointed_resources.clone(),
                    executor_infos,
                    tasks,
                    frameworks,
                    version: self.config.version.clone(),
                    capabilities: capabilities(),
                }
                .into()
            }
        }
    }

    pub(super) fn on_master_message(
        &mut self,
        now: Now,
        from: Pid,
        epoch: Epoch,
        message: Message,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        if self.master_pid() != Some(&from) {
            return Err(InputError::NotMyMaster { from });
        }
        if epoch < self.epoch {
            return Err(InputError::StaleEpoch {
                epoch,
                current: self.epoch,
            });
        }
        self.epoch = epoch;
        match message {
            Message::Ping(ping) => {
                if let MasterLink::Registered { last_ping, .. } = &mut self.master {
                    *last_ping = now.mono;
                }
                effects.push(Effect::Master {
                    pid: from,
                    message: internal::Pong { seq: ping.seq }.into(),
                });
            }
            Message::AgentRegistered(registered) => {
                self.on_registered(
                    now,
                    from,
                    registered.agent_id,
                    registered.connection,
                    effects,
                )?;
            }
            Message::AgentReregistered(reregistered) => {
                self.on_registered(
                    now,
                    from,
                    reregistered.agent_id,
                    reregistered.connection,
                    effects,
                )?;
                for reconcile in reregistered.reconciliations {
                    self.reconcile_tasks(now, reconcile, effects);
                }
            }
            Message::RunTask(run) => self.run_task(now, *run, effects)?,
            Message::RunTaskGroup(run) => self.run_task_group(now, *run, effects)?,
            Message::KillTask(kill) => self.kill_task(now, kill, effects),
            Message::StatusUpdateAcknowledgement(ack) => self.acknowledgement(now, ack, effects)?,
            Message::ShutdownAgent(shutdown) => {
                tracing::warn!(message = %shutdown.message, "master told this agent to shut down");
                effects.push(Effect::Shutdown {
                    message: shutdown.message,
                });
            }
            Message::ShutdownFramework(shutdown) => {
                self.shutdown_framework(now, &shutdown.framework_id, effects);
            }
            Message::ShutdownExecutor(shutdown) => {
                self.shutdown_executor(now, &shutdown.framework_id, &shutdown.executor_id, effects);
            }
            Message::FrameworkToExecutor(message) => self.framework_message(message, effects),
            Message::UpdateFramework(update) => self.update_framework(*update, effects),
            Message::CheckpointResources(checkpoint) => {
                self.checkpointed_resources = checkpoint.resources;
                if let Some(agent_id) = self.agent_id.clone() {
                    effects.push(Effect::Checkpoint(Box::new(
                        super::CheckpointOp::Resources {
                            agent_id,
                            resources: self.checkpointed_resources.clone(),
                        },
                    )));
                }
            }
            Message::ReconcileTasks(reconcile) => self.reconcile_tasks(now, *reconcile, effects),
            Message::DrainAgent(drain) => self.drain(now, drain.config, effects),
            other => {
                return Err(InputError::Refused(format!(
                    "{} is not a message for an agent",
                    other.name()
                )));
            }
        }
        Ok(())
    }

    fn on_registered(
        &mut self,
        now: Now,
        from: Pid,
        agent_id: strata_protocol::AgentId,
        connection: internal::MasterAgentConnection,
        effects: &mut Vec<Effect>,
    ) -> Result<(), InputError> {
        match &self.agent_id {
            Some(id) if *id != agent_id => {
                return Err(InputError::Refused(format!(
                    "master registered this agent as {agent_id}, but it is {id}"
                )));
            }
            Some(_) => {}
            None => {
                tracing::info!(%agent_id, "registered with master");
                self.agent_id = Some(agent_id);
                effects.push(Effect::Checkpoint(Box::new(super::CheckpointOp::Agent(
                    self.agent_info(),
                ))));
            }
        }
        let was_registered = self.is_registered();
        // A master that stops pinging for as long as it would wait before declaring this agent
        // unreachable is taken as gone.
        let ping_timeout =
            Duration::try_from_secs_f64(connection.total_ping_timeout_seconds.max(1.0))
                .unwrap_or(Duration::from_secs(75));
        self.master = MasterLink::Registered {
            pid: from,
            last_ping: now.mono,
            ping_timeout,
        };
        if !was_registered {
            self.counters.registrations += 1;
            let mut out = Vec::new();
            self.updates.resume(now.mono, &mut out);
            self.apply_update_effects(out, effects);
        }
        Ok(())
    }
}
