//! A model of a framework's scheduler.
//!
//! It subscribes (and resubscribes with its ID after an ERROR or a disconnection, each time on a
//! new connection, as an HTTP scheduler opens a new SUBSCRIBE stream), launches tasks with
//! unique IDs sized to fit the offer, declines some offers, kills some tasks, acknowledges every
//! update that carries a uuid, and reconciles now and then. A few of its calls are deliberately
//! wrong, as buggy frameworks' are: accepting an offer twice, or reusing the ID of a live task;
//! the master must refuse them without breaking an invariant.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use strata_master::state::FrameworkConn;
use strata_protocol::mesos::{FrameworkInfo, Offer, TaskInfo, TaskState};
use strata_protocol::scheduler::{self, Call, CallBody, Event, ReconcileTask};
use strata_protocol::{AgentId, FrameworkId, OfferId, Pid, Resources, TaskId};

use super::rng::SimRng;

/// How long the framework waits for SUBSCRIBED before trying again on a new connection.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// SUBSCRIBE sent on the current connection; no answer yet.
    Subscribing {
        retry_at: Duration,
    },
    Subscribed,
    /// The connection is gone; subscribe again at the given time.
    Disconnected {
        resubscribe_at: Duration,
    },
}

#[derive(Debug, Clone)]
struct FrameworkTask {
    agent_id: AgentId,
    state: Option<TaskState>,
}

/// What the framework asks of the driver besides sending calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Call {
        conn: FrameworkConn,
        call: Call,
    },
    /// The framework gave up on a connection (its stream is closed from this side).
    Disconnect {
        conn: FrameworkConn,
    },
}

pub struct FrameworkModel {
    pub idx: usize,
    info: FrameworkInfo,
    rng: SimRng,
    pub framework_id: Option<FrameworkId>,
    pub conn: FrameworkConn,
    incarnation: u32,
    phase: Phase,
    offers: BTreeMap<OfferId, Offer>,
    tasks: BTreeMap<TaskId, FrameworkTask>,
    next_task: u64,
    next_chore: Duration,
    /// Whether it launches tasks; turned off to let the system settle.
    pub launching: bool,
    /// Whether it now and then launches a task under a live task's ID, which the master must
    /// refuse. Off across master restarts: a new master cannot know the tasks of agents that
    /// have not reregistered yet (nor can Mesos's).
    pub reuses_live_ids: bool,
}

impl FrameworkModel {
    pub fn new(idx: usize, rng: SimRng, partition_aware: bool, now: Duration) -> FrameworkModel {
        let capabilities = if partition_aware {
            json!([{"type": "PARTITION_AWARE"}])
        } else {
            json!([])
        };
        let info = serde_json::from_value(json!({
            "user": "root",
            "name": format!("framework-{idx}"),
            // Long enough that no disconnection outlives it during a run.
            "failover_timeout": 3600.0,
            "capabilities": capabilities,
        }))
        .expect("a valid framework info");
        FrameworkModel {
            idx,
            info,
            rng,
            framework_id: None,
            conn: conn(idx, 0),
            incarnation: 0,
            phase: Phase::Disconnected {
                resubscribe_at: now,
            },
            offers: BTreeMap::new(),
            tasks: BTreeMap::new(),
            next_task: 0,
            reuses_live_ids: true,
            next_chore: now + Duration::from_secs(2),
            launching: true,
        }
    }

    pub fn is_subscribed(&self) -> bool {
        self.phase == Phase::Subscribed
    }

    pub fn next_timer(&self) -> Duration {
        match self.phase {
            Phase::Subscribing { retry_at } => retry_at,
            Phase::Disconnected { resubscribe_at } => resubscribe_at,
            Phase::Subscribed => self.next_chore,
        }
    }

    /// Fires the framework's timers: subscription retries and its periodic chores.
    pub fn on_timer(&mut self, now: Duration, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Subscribing { retry_at }
            | Phase::Disconnected {
                resubscribe_at: retry_at,
            } if retry_at <= now => self.subscribe(now, out),
            Phase::Subscribed if self.next_chore <= now => {
                self.chore(out);
                self.next_chore = now
                    + self
                        .rng
                        .duration(Duration::from_secs(1), Duration::from_secs(4));
            }
            _ => {}
        }
    }

    /// Drops the current connection and subscribes on a new one.
    fn subscribe(&mut self, now: Duration, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Disconnected { .. }) {
            out.push(Action::Disconnect {
                conn: self.conn.clone(),
            });
        }
        self.incarnation += 1;
        self.conn = conn(self.idx, self.incarnation);
        self.offers.clear();
        let mut info = self.info.clone();
        info.id = self.framework_id.clone();
        let subscribe =
            serde_json::from_value(json!({"framework_info": info})).expect("a valid SUBSCRIBE");
        out.push(Action::Call {
            conn: self.conn.clone(),
            call: Call {
                framework_id: self.framework_id.clone(),
                body: CallBody::Subscribe(Box::new(subscribe)),
            },
        });
        self.phase = Phase::Subscribing {
            retry_at: now + SUBSCRIBE_TIMEOUT,
        };
    }

    /// The connection broke under the framework (the driver told the master too).
    pub fn disconnected(&mut self, now: Duration) {
        self.phase = Phase::Disconnected {
            resubscribe_at: now
                + self
                    .rng
                    .duration(Duration::from_millis(200), Duration::from_secs(3)),
        };
        self.offers.clear();
    }

    fn call(&self, body: CallBody, out: &mut Vec<Action>) {
        out.push(Action::Call {
            conn: self.conn.clone(),
            call: Call {
                framework_id: self.framework_id.clone(),
                body,
            },
        });
    }

    /// Handles an event that arrived on `conn`; events on stale connections are ignored, as a
    /// closed stream delivers nothing.
    pub fn on_event(
        &mut self,
        now: Duration,
        conn: &FrameworkConn,
        event: Event,
        out: &mut Vec<Action>,
    ) {
        if conn != &self.conn {
            return;
        }
        match event {
            Event::Subscribed(subscribed) => {
                if matches!(self.phase, Phase::Subscribing { .. }) {
                    self.framework_id = Some(subscribed.framework_id);
                    self.phase = Phase::Subscribed;
                    // A new subscription: learn what the master knows of our tasks.
                    self.call(
                        CallBody::Reconcile(scheduler::Reconcile { tasks: Vec::new() }),
                        out,
                    );
                }
            }
            Event::Offers(offers) => {
                for offer in offers.offers {
                    if Some(&offer.framework_id) == self.framework_id.as_ref() {
                        self.offers.insert(offer.id.clone(), offer);
                    }
                }
                self.use_offers(out);
            }
            Event::Rescind(rescind) => {
                self.offers.remove(&rescind.offer_id);
            }
            Event::Update(update) => {
                let status = update.status;
                if let Some(task) = self.tasks.get_mut(&status.task_id) {
                    task.state = Some(status.state);
                }
                if let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id) {
                    self.call(
                        CallBody::Acknowledge(scheduler::Acknowledge {
                            agent_id,
                            task_id: status.task_id,
                            uuid,
                        }),
                        out,
                    );
                }
            }
            Event::Error(_) => self.disconnected(now),
            Event::Message(_) | Event::Failure(_) | Event::Heartbeat => {}
        }
    }

    /// The master closed the connection (after an ERROR, or a teardown).
    pub fn closed(&mut self, now: Duration, conn: &FrameworkConn) {
        if conn == &self.conn && !matches!(self.phase, Phase::Disconnected { .. }) {
            self.disconnected(now);
        }
    }

    fn use_offers(&mut self, out: &mut Vec<Action>) {
        let offers: Vec<Offer> = std::mem::take(&mut self.offers).into_values().collect();
        for offer in offers {
            if !self.launching || self.rng.chance(0.2) {
                let decline = serde_json::from_value(json!({
                    "offer_ids": [offer.id],
                    "filters": {"refuse_seconds": if self.launching { 1.0 } else { 30.0 }},
                }))
                .expect("a valid DECLINE");
                self.call(CallBody::Decline(decline), out);
                continue;
            }
            let tasks = self.tasks_for(&offer);
            let accept = accept_body(&[&offer.id], &tasks);
            self.call(accept.clone(), out);
            if self.rng.chance(0.05) {
                // A buggy framework accepts the same offer twice: the second must fail.
                let again = self.tasks_for(&offer);
                self.call(accept_body(&[&offer.id], &again), out);
            }
        }
    }

    /// Returns 1-3 tasks that fit in the offer together; rarely one reuses a live task's ID.
    fn tasks_for(&mut self, offer: &Offer) -> Vec<TaskInfo> {
        let mut left = Resources::from_resources(offer.resources.iter().cloned())
            .expect("offers hold valid resources");
        left.unallocate();
        let n_tasks = 1 + self.rng.below(3);
        let mut tasks = Vec::new();
        for _ in 0..n_tasks {
            let cpus = [0.1, 0.2, 0.5][self.rng.index(3)];
            let mem = [32.0, 64.0, 128.0][self.rng.index(3)];
            let wanted = Resources::parse(&format!("cpus:{cpus};mem:{mem}"), "*")
                .expect("valid task resources");
            if !left.contains(&wanted) {
                break;
            }
            left -= &wanted;
            let live: Vec<TaskId> = self
                .tasks
                .iter()
                .filter(|(_, task)| task.state.is_some_and(|s| !s.is_terminal()))
                .map(|(id, _)| id.clone())
                .collect();
            let task_id = if self.reuses_live_ids && !live.is_empty() && self.rng.chance(0.03) {
                live[self.rng.index(live.len())].clone()
            } else {
                self.next_task += 1;
                TaskId::new(format!("task-{}-{}", self.idx, self.next_task)).expect("valid id")
            };
            self.tasks.entry(task_id.clone()).or_insert(FrameworkTask {
                agent_id: offer.agent_id.clone(),
                state: None,
            });
            let mut task: TaskInfo = serde_json::from_value(json!({
                "name": task_id.as_str(),
                "task_id": {"value": task_id.as_str()},
                "agent_id": {"value": offer.agent_id.as_str()},
                "command": {"value": "sleep 10"},
            }))
            .expect("a valid task info");
            task.resources = wanted.to_wire();
            tasks.push(task);
        }
        tasks
    }

    /// Periodic work: kill a task, or reconcile all or some tasks.
    fn chore(&mut self, out: &mut Vec<Action>) {
        let live: Vec<(TaskId, AgentId)> = self
            .tasks
            .iter()
            .filter(|(_, task)| !task.state.is_some_and(TaskState::is_terminal))
            .map(|(id, task)| (id.clone(), task.agent_id.clone()))
            .collect();
        let roll = self.rng.below(10);
        if roll < 3 && self.launching && !live.is_empty() {
            let (task_id, agent_id) = live[self.rng.index(live.len())].clone();
            self.call(
                CallBody::Kill(scheduler::Kill {
                    task_id,
                    agent_id: Some(agent_id),
                    kill_policy: None,
                }),
                out,
            );
        } else if roll < 5 {
            self.call(
                CallBody::Reconcile(scheduler::Reconcile { tasks: Vec::new() }),
                out,
            );
        } else if roll < 7 && !live.is_empty() {
            let tasks = live
                .into_iter()
                .filter(|_| self.rng.chance(0.5))
                .map(|(task_id, agent_id)| ReconcileTask {
                    task_id,
                    agent_id: Some(agent_id),
                })
                .collect();
            self.call(CallBody::Reconcile(scheduler::Reconcile { tasks }), out);
        } else if roll < 8 {
            self.call(
                CallBody::Revive(scheduler::Revive { roles: Vec::new() }),
                out,
            );
        }
    }
}

fn accept_body(offer_ids: &[&OfferId], tasks: &[TaskInfo]) -> CallBody {
    let accept = json!({
        "offer_ids": offer_ids,
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        "filters": {"refuse_seconds": 1.0},
    });
    CallBody::Accept(serde_json::from_value(accept).expect("a valid ACCEPT"))
}

/// The connection of incarnation `n` of framework `idx`'s scheduler.
pub fn conn(idx: usize, n: u32) -> FrameworkConn {
    FrameworkConn::Actor(
        Pid::new(format!("scheduler-{idx}-{n}"), "10.1.0.1", 40000).expect("valid pid"),
    )
}
