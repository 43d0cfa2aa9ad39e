//! Framework lifecycle: SUBSCRIBE (new, resubscribe, failover), disconnection, failover
//! timeouts, TEARDOWN, UPDATE_FRAMEWORK, SUPPRESS/REVIVE and heartbeats.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use strata_protocol::FrameworkId;
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{
    FrameworkCapabilityType, FrameworkInfo, TaskState, TaskStatus, TaskStatusReason,
    TaskStatusSource,
};
use strata_protocol::resources::validate_role;
use strata_protocol::scheduler::{Error, Event, Subscribe, Subscribed, UpdateFramework};

use super::{
    CallError, CompletedFramework, Effect, Framework, FrameworkConn, MasterState, Now,
    OperatorEvent,
};

/// Returns the roles a framework subscribes to: `roles` for MULTI_ROLE frameworks, otherwise
/// the single (deprecated) `role`.
pub(super) fn framework_roles(info: &FrameworkInfo) -> BTreeSet<String> {
    if info.has_capability(FrameworkCapabilityType::MultiRole) {
        info.roles.iter().cloned().collect()
    } else {
        BTreeSet::from([info.role().to_owned()])
    }
}

fn validate_framework_info(info: &FrameworkInfo) -> Result<(), CallError> {
    let multi_role = info.has_capability(FrameworkCapabilityType::MultiRole);
    if multi_role && info.role.is_some() {
        return Err(CallError::BadRequest(
            "'framework_info.role' must not be set together with the MULTI_ROLE capability".into(),
        ));
    }
    if !multi_role && !info.roles.is_empty() {
        return Err(CallError::BadRequest(
            "'framework_info.roles' needs the MULTI_ROLE capability".into(),
        ));
    }
    for role in framework_roles(info) {
        validate_role(&role).map_err(|err| CallError::BadRequest(err.to_string()))?;
    }
    let failover_timeout = info.failover_timeout();
    if !failover_timeout.is_finite() || failover_timeout < 0.0 {
        return Err(CallError::BadRequest(format!(
            "'framework_info.failover_timeout' must be a finite number of seconds >= 0, not {failover_timeout}"
        )));
    }
    Ok(())
}

fn suppressed_roles(
    roles: &BTreeSet<String>,
    suppressed: Vec<String>,
) -> Result<BTreeSet<String>, CallError> {
    let suppressed: BTreeSet<String> = suppressed.into_iter().collect();
    if let Some(role) = suppressed.difference(roles).next() {
        return Err(CallError::BadRequest(format!(
            "suppressed role '{role}' is not one of the framework's roles"
        )));
    }
    Ok(suppressed)
}

/// Checks the fields a framework may not change once subscribed.
fn validate_immutable(old: &FrameworkInfo, new: &FrameworkInfo) -> Result<(), CallError> {
    if old.principal != new.principal {
        return Err(CallError::BadRequest(format!(
            "changing the framework's principal from {:?} to {:?} is not allowed",
            old.principal, new.principal
        )));
    }
    if old.user != new.user {
        return Err(CallError::BadRequest(format!(
            "changing the framework's user from '{}' to '{}' is not allowed",
            old.user, new.user
        )));
    }
    if old.checkpoint() != new.checkpoint() {
        return Err(CallError::BadRequest(
            "changing the framework's 'checkpoint' is not allowed".into(),
        ));
    }
    Ok(())
}

fn failover_timeout(info: &FrameworkInfo) -> Duration {
    Duration::try_from_secs_f64(info.failover_timeout()).unwrap_or(Duration::MAX)
}

impl MasterState {
    pub(super) fn subscribe(
        &mut self,
        now: Now,
        conn: FrameworkConn,
        call_framework_id: Option<FrameworkId>,
        subscribe: Subscribe,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let mut info = subscribe.framework_info;
        validate_framework_info(&info)?;
        let framework_id = match (call_framework_id, info.id.clone()) {
            (Some(a), Some(b)) if a != b => {
                return Err(CallError::BadRequest(
                    "'framework_id' differs from 'framework_info.id'".into(),
                ));
            }
            (a, b) => a.or(b),
        };
        let roles = framework_roles(&info);
        let suppressed = suppressed_roles(&roles, subscribe.suppressed_roles)?;

        let Some(framework_id) = framework_id else {
            // A first SUBSCRIBE retried on the same connection (the answer was slow or lost)
            // is answered again rather than registering a second framework.
            let existing = self
                .frameworks
                .values()
                .find(|framework| framework.conn.as_ref() == Some(&conn))
                .map(|framework| framework.id.clone());
            if let Some(framework_id) = existing {
                self.send_subscribed(&framework_id, &conn, out);
                return Ok(());
            }
            let framework_id = FrameworkId::new(self.next_id('F'))
                .expect("master-assigned framework IDs are valid");
            info.id = Some(framework_id.clone());
            self.add_framework(now, framework_id, info, conn, roles, suppressed, out);
            return Ok(());
        };

        if self
            .completed_frameworks
            .iter()
            .any(|f| f.id == framework_id)
        {
            out.push(Effect::Framework {
                conn: conn.clone(),
                event: Event::Error(Error {
                    message: "Framework has been removed".into(),
                }),
            });
            out.push(Effect::CloseFramework { conn });
            return Ok(());
        }
        info.id = Some(framework_id.clone());
        if !self.frameworks.contains_key(&framework_id) {
            // Unknown to this master (it failed over, or the framework was recovered from no
            // agent): admit it under the ID it already has, as Mesos does.
            self.add_framework(now, framework_id, info, conn, roles, suppressed, out);
            return Ok(());
        }
        self.failover_framework(now, &framework_id, info, conn, roles, suppressed, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_framework(
        &mut self,
        now: Now,
        framework_id: FrameworkId,
        info: FrameworkInfo,
        conn: FrameworkConn,
        roles: BTreeSet<String>,
        suppressed: BTreeSet<String>,
        out: &mut Vec<Effect>,
    ) {
        if let Err(err) = self.allocator.add_framework(
            framework_id.clone(),
            roles.clone(),
            suppressed.clone(),
            true,
        ) {
            // The roles were validated above, so only a duplicate could get here.
            tracing::error!(%framework_id, error = %err, "allocator refused a new framework");
            return;
        }
        tracing::info!(%framework_id, name = %info.name, "framework subscribed");
        let framework = Framework {
            id: framework_id.clone(),
            info,
            conn: Some(conn.clone()),
            roles,
            suppressed_roles: suppressed,
            tasks: BTreeMap::new(),
            unreachable_tasks: BTreeMap::new(),
            completed_tasks: VecDeque::new(),
            offers: BTreeSet::new(),
            executors: BTreeMap::new(),
            registered_time: now.unix,
            reregistered_time: None,
            failover_deadline: None,
            next_heartbeat: now.mono + self.config.heartbeat_interval,
        };
        self.frameworks.insert(framework_id.clone(), framework);
        self.counters.framework_subscriptions += 1;
        self.emit(OperatorEvent::FrameworkAdded(framework_id.clone()));
        self.send_subscribed(&framework_id, &conn, out);
        self.allocation_pending = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn failover_framework(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        info: FrameworkInfo,
        conn: FrameworkConn,
        roles: BTreeSet<String>,
        suppressed: BTreeSet<String>,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let framework = &self.frameworks[framework_id];
        validate_immutable(&framework.info, &info)?;
        if let Some(old) = framework.conn.clone()
            && old != conn
        {
            out.push(Effect::Framework {
                conn: old.clone(),
                event: Event::Error(Error {
                    message: "Framework failed over".into(),
                }),
            });
            out.push(Effect::CloseFramework { conn: old });
        }
        // The new scheduler instance knows nothing of offers made to the old one.
        self.remove_framework_offers(now, framework_id, false, out);
        self.allocator
            .update_framework(framework_id, roles.clone(), suppressed.clone())
            .map_err(|err| CallError::BadRequest(err.to_string()))?;
        if let Err(err) = self.allocator.activate_framework(framework_id) {
            tracing::error!(%framework_id, error = %err, "allocator refused to activate a framework");
        }
        let heartbeat = now.mono + self.config.heartbeat_interval;
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .expect("checked above");
        framework.info = info;
        framework.roles = roles;
        framework.suppressed_roles = suppressed;
        framework.conn = Some(conn.clone());
        framework.failover_deadline = None;
        framework.reregistered_time = Some(now.unix);
        framework.next_heartbeat = heartbeat;
        tracing::info!(%framework_id, "framework resubscribed");
        self.counters.framework_subscriptions += 1;
        self.emit(OperatorEvent::FrameworkUpdated(framework_id.clone()));
        self.send_subscribed(framework_id, &conn, out);
        self.allocation_pending = true;
        Ok(())
    }

    fn send_subscribed(
        &self,
        framework_id: &FrameworkId,
        conn: &FrameworkConn,
        out: &mut Vec<Effect>,
    ) {
        if let FrameworkConn::Actor(pid) = conn {
            out.push(Effect::Link { pid: pid.clone() });
        }
        out.push(Effect::Framework {
            conn: conn.clone(),
            event: Event::Subscribed(Box::new(Subscribed {
                framework_id: framework_id.clone(),
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.config.master_info.clone()),
            })),
        });
    }

    /// Marks a framework disconnected: no offers until it resubscribes, and removal when its
    /// failover timeout expires.
    pub(super) fn deactivate_framework(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        out: &mut Vec<Effect>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework.conn.take().is_none() {
            return;
        }
        let timeout = failover_timeout(&framework.info);
        framework.failover_deadline = Some(now.mono.saturating_add(timeout));
        tracing::info!(%framework_id, failover_timeout_secs = timeout.as_secs_f64(), "framework disconnected");
        self.emit(OperatorEvent::FrameworkUpdated(framework_id.clone()));
        if let Err(err) = self.allocator.deactivate_framework(framework_id) {
            tracing::error!(%framework_id, error = %err, "allocator refused to deactivate a framework");
        }
        self.remove_framework_offers(now, framework_id, false, out);
        if timeout.is_zero() {
            self.remove_framework(
                now,
                framework_id,
                "framework disconnected with no failover timeout",
                out,
            );
        }
    }

    pub(super) fn expire_failovers(&mut self, now: Now, out: &mut Vec<Effect>) {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|framework| framework.failover_deadline.is_some_and(|at| at <= now.mono))
            .map(|framework| framework.id.clone())
            .collect();
        for framework_id in expired {
            self.remove_framework(
                now,
                &framework_id,
                "framework failover timeout expired",
                out,
            );
        }
    }

    /// Removes a framework: kills its tasks, frees its resources and keeps it among the
    /// completed frameworks.
    pub(super) fn remove_framework(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        self.remove_framework_offers(now, framework_id, false, out);
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        tracing::info!(%framework_id, reason, "removing framework");
        let mut agents_to_tell = BTreeSet::new();
        let tasks = std::mem::take(&mut framework.tasks);
        let unreachable = std::mem::take(&mut framework.unreachable_tasks);
        for (task_id, mut entry) in tasks.into_iter().chain(unreachable) {
            agents_to_tell.insert(entry.task.agent_id.clone());
            if let Some(agent) = self.agents.get_mut(&entry.task.agent_id) {
                agent.tasks.remove(&(framework_id.clone(), task_id));
            }
            if !entry.task.state.is_terminal() {
                self.counters.count_task_state(TaskState::Killed);
                entry.task.state = TaskState::Killed;
                if self.operator_events_enabled {
                    let mut status = TaskStatus::new(entry.task.task_id.clone(), TaskState::Killed);
                    status.agent_id = Some(entry.task.agent_id.clone());
                    status.reason = Some(TaskStatusReason::ReasonFrameworkRemoved);
                    status.source = Some(TaskStatusSource::Master);
                    status.timestamp = Some(now.unix);
                    self.operator_events.push(OperatorEvent::TaskUpdated {
                        framework_id: framework_id.clone(),
                        status,
                        state: TaskState::Killed,
                    });
                }
            }
            push_bounded(
                &mut framework.completed_tasks,
                entry.into_task(),
                self.config.max_completed_tasks_per_framework,
            );
        }
        for agent in self.agents.values_mut() {
            let before = agent.executors.len();
            agent.executors.retain(|(fw, _), _| fw != framework_id);
            if agent.executors.len() != before {
                agents_to_tell.insert(agent.id.clone());
            }
        }
        for agent_id in agents_to_tell {
            if let Some(agent) = self.agents.get(&agent_id) {
                out.push(Effect::Agent {
                    pid: agent.pid.clone(),
                    message: Message::ShutdownFramework(internal::ShutdownFramework {
                        framework_id: framework_id.clone(),
                    }),
                });
            }
        }
        self.allocator.remove_framework(framework_id);
        if let Some(conn) = framework.conn.take() {
            out.push(Effect::CloseFramework { conn });
        }
        let completed = CompletedFramework {
            id: framework.id,
            info: framework.info,
            tasks: framework.completed_tasks,
            unregistered_time: now.unix,
        };
        self.emit(OperatorEvent::FrameworkRemoved(framework_id.clone()));
        push_bounded(
            &mut self.completed_frameworks,
            completed,
            self.config.max_completed_frameworks,
        );
        self.counters.framework_removals += 1;
        self.allocation_pending = true;
    }

    pub(super) fn update_framework(
        &mut self,
        now: Now,
        framework_id: &FrameworkId,
        update: UpdateFramework,
        out: &mut Vec<Effect>,
    ) -> Result<(), CallError> {
        let mut info = update.framework_info;
        if info.id.as_ref().is_some_and(|id| id != framework_id) {
            return Err(CallError::BadRequest(
                "'framework_info.id' differs from the framework's ID".into(),
            ));
        }
        info.id = Some(framework_id.clone());
        validate_framework_info(&info)?;
        validate_immutable(&self.frameworks[framework_id].info, &info)?;
        let roles = framework_roles(&info);
        let suppressed = suppressed_roles(&roles, update.suppressed_roles)?;
        self.allocator
            .update_framework(framework_id, roles.clone(), suppressed.clone())
            .map_err(|err| CallError::BadRequest(err.to_string()))?;
        // Offers in roles the framework left, or now suppresses, are of no use to it.
        let stale: Vec<_> = self.frameworks[framework_id]
            .offers
            .iter()
            .filter(|offer_id| {
                self.offers
                    .get(*offer_id)
                    .is_some_and(|offer| !roles.contains(&offer.role))
            })
            .cloned()
            .collect();
        for offer_id in stale {
            self.rescind_offer(now, &offer_id, true, out);
        }
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .expect("caller checked");
        framework.info = info.clone();
        framework.roles = roles;
        framework.suppressed_roles = suppressed;
        let agents: BTreeSet<_> = framework
            .tasks
            .values()
            .map(|entry| entry.task.agent_id.clone())
            .collect();
        for agent_id in agents {
            if let Some(agent) = self.agents.get(&agent_id) {
                out.push(Effect::Agent {
                    pid: agent.pid.clone(),
                    message: Message::UpdateFramework(Box::new(internal::UpdateFramework {
                        framework_id: framework_id.clone(),
                        framework_info: info.clone(),
                    })),
                });
            }
        }
        self.emit(OperatorEvent::FrameworkUpdated(framework_id.clone()));
        self.allocation_pending = true;
        Ok(())
    }

    pub(super) fn revive(
        &mut self,
        framework_id: &FrameworkId,
        roles: Vec<String>,
    ) -> Result<(), CallError> {
        let roles = (!roles.is_empty()).then(|| roles.into_iter().collect::<BTreeSet<_>>());
        self.allocator
            .revive(framework_id, roles.clone())
            .map_err(|err| CallError::BadRequest(err.to_string()))?;
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .expect("caller checked");
        match roles {
            Some(roles) => framework
                .suppressed_roles
                .retain(|role| !roles.contains(role)),
            None => framework.suppressed_roles.clear(),
        }
        self.allocation_pending = true;
        Ok(())
    }

    pub(super) fn suppress(
        &mut self,
        framework_id: &FrameworkId,
        roles: Vec<String>,
    ) -> Result<(), CallError> {
        let roles = (!roles.is_empty()).then(|| roles.into_iter().collect::<BTreeSet<_>>());
        self.allocator
            .suppress(framework_id, roles.clone())
            .map_err(|err| CallError::BadRequest(err.to_string()))?;
        let framework = self
            .frameworks
            .get_mut(framework_id)
            .expect("caller checked");
        let subscribed = framework.roles.clone();
        framework.suppressed_roles.extend(
            roles
                .unwrap_or(subscribed.clone())
                .intersection(&subscribed)
                .cloned(),
        );
        Ok(())
    }

    pub(super) fn send_heartbeats(&mut self, now: Now, out: &mut Vec<Effect>) {
        let interval = self.config.heartbeat_interval;
        for framework in self.frameworks.values_mut() {
            let Some(conn) = &framework.conn else {
                continue;
            };
            if framework.next_heartbeat <= now.mono {
                out.push(Effect::Framework {
                    conn: conn.clone(),
                    event: Event::Heartbeat,
                });
                framework.next_heartbeat = now.mono + interval;
            }
        }
    }

    /// Returns how `framework_id` is connected: `None` if the master does not know the
    /// framework (never subscribed, or removed), `Some(None)` while it is disconnected. The
    /// HTTP door checks a call's `Mesos-Stream-Id` against it.
    pub fn framework_connection(
        &self,
        framework_id: &FrameworkId,
    ) -> Option<Option<&FrameworkConn>> {
        self.frameworks
            .get(framework_id)
            .map(|framework| framework.conn.as_ref())
    }

    /// Sends `event` to the framework if it is connected; events for a disconnected framework
    /// are dropped, as in Mesos (status updates are retried by the agent).
    pub(super) fn send_to_framework(
        &self,
        framework_id: &FrameworkId,
        event: Event,
        out: &mut Vec<Effect>,
    ) {
        if let Some(conn) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.conn.clone())
        {
            out.push(Effect::Framework { conn, event });
        }
    }
}

/// Appends to a bounded history, dropping the oldest entry when full.
pub(super) fn push_bounded<T>(history: &mut VecDeque<T>, item: T, max: usize) {
    if max == 0 {
        return;
    }
    while history.len() >= max {
        history.pop_front();
    }
    history.push_back(item);
}
