//! A harness that drives `MasterState` the way the actor does, with time passed in by hand.
#![allow(dead_code)]

pub mod net;

use std::time::Duration;

use serde_json::json;
use strata_master::registry::{RegistryOp, RegistryState};
use strata_master::state::{Effect, FrameworkConn, MasterConfig, MasterState, Now};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{MasterInfo, Offer, TaskInfo, TaskState, TaskStatus};
use strata_protocol::scheduler::{self, Call, CallBody, Event};
use strata_protocol::{AgentId, Bytes, FrameworkId, OfferId, Pid, Resources, TaskId};

/// The wall clock at the harness's time zero.
pub const UNIX_ORIGIN: f64 = 1_800_000_000.0;

pub struct Harness {
    pub state: MasterState,
    pub mono: Duration,
    /// Effects not yet looked at by the test.
    pub effects: Vec<Effect>,
    /// Agents whose pings the harness answers, as a healthy agent would.
    pub healthy_agents: std::collections::BTreeSet<Pid>,
    next_uuid: u8,
}

pub fn master_info() -> MasterInfo {
    serde_json::from_value(json!({"id": "m1", "ip": 0, "port": 5050, "hostname": "master"}))
        .unwrap()
}

pub fn agent_pid(n: u8) -> Pid {
    Pid::new("agent", format!("10.0.0.{n}"), 5051).unwrap()
}

pub fn scheduler_conn(n: u8) -> FrameworkConn {
    FrameworkConn::Actor(Pid::new(format!("scheduler({n})"), "10.0.1.1", 40000).unwrap())
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(|_| {})
    }

    pub fn with_config(tweak: impl FnOnce(&mut MasterConfig)) -> Harness {
        let mut config = MasterConfig::new(master_info());
        tweak(&mut config);
        let state = MasterState::new(config, Now::at(Duration::ZERO, UNIX_ORIGIN));
        Harness {
            state,
            mono: Duration::ZERO,
            effects: Vec::new(),
            healthy_agents: Default::default(),
            next_uuid: 0,
        }
    }

    /// Starts a master at time zero from what a previous master left in `registry`. It has its
    /// own master ID (`m2`), as a restarted master does.
    pub fn recovered(registry: &RegistryState, tweak: impl FnOnce(&mut MasterConfig)) -> Harness {
        let mut info = master_info();
        info.id = "m2".into();
        let mut config = MasterConfig::new(info);
        tweak(&mut config);
        let state = MasterState::recover(config, Now::at(Duration::ZERO, UNIX_ORIGIN), registry);
        Harness {
            state,
            mono: Duration::ZERO,
            effects: Vec::new(),
            healthy_agents: Default::default(),
            next_uuid: 0,
        }
    }

    /// Returns the registry operations recorded, removing them (other effects stay).
    pub fn take_registry_ops(&mut self) -> Vec<RegistryOp> {
        let mut ops = Vec::new();
        self.effects.retain(|effect| match effect {
            Effect::Registry(op) => {
                ops.push(op.clone());
                false
            }
            _ => true,
        });
        ops
    }

    pub fn now(&self) -> Now {
        Now::at(self.mono, UNIX_ORIGIN)
    }

    /// Runs due timers and, if anything asked for it, the allocator; checks the invariants.
    pub fn tick(&mut self) {
        let now = self.now();
        self.state.tick(now, &mut self.effects);
        self.check();
        self.answer_pings();
    }

    /// Answers the pings sent to healthy agents, and removes them from the effects.
    fn answer_pings(&mut self) {
        let mut pongs = Vec::new();
        self.effects.retain(|effect| match effect {
            Effect::Agent {
                pid,
                message: Message::Ping(ping),
            } if self.healthy_agents.contains(pid) => {
                pongs.push((pid.clone(), ping.seq));
                false
            }
            _ => true,
        });
        for (pid, seq) in pongs {
            self.agent_message(&pid, Message::Pong(internal::Pong { seq }));
        }
    }

    /// Moves time forward in steps no longer than the master's next deadline, ticking at each.
    pub fn advance(&mut self, by: Duration) {
        let end = self.mono + by;
        loop {
            let next = self.state.next_deadline().max(self.mono);
            if next > end {
                break;
            }
            self.mono = next;
            self.tick();
            if self.state.next_deadline() <= self.mono {
                // A deadline that did not move would loop forever; the master must move it.
                panic!(
                    "deadline {:?} did not move past {:?}",
                    self.state.next_deadline(),
                    self.mono
                );
            }
        }
        self.mono = end;
        self.tick();
    }

    pub fn check(&self) {
        if let Err(err) = self.state.check_invariants() {
            panic!("invariant broken at {:?}: {err}", self.mono);
        }
    }

    pub fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn agent_message(&mut self, pid: &Pid, message: Message) {
        let now = self.now();
        self.state
            .agent_message(now, pid.clone(), message, &mut self.effects);
        self.check();
    }

    pub fn call(
        &mut self,
        conn: &FrameworkConn,
        framework_id: Option<&FrameworkId>,
        body: CallBody,
    ) -> Result<(), strata_master::state::CallError> {
        let now = self.now();
        let call = Call {
            framework_id: framework_id.cloned(),
            body,
        };
        let result = self
            .state
            .scheduler_call(now, conn.clone(), call, &mut self.effects);
        self.check();
        result
    }

    pub fn register_agent(&mut self, n: u8, resources: &str) -> AgentId {
        let resources = Resources::parse(resources, "*").unwrap().to_wire();
        let info = serde_json::from_value(json!({"hostname": format!("host-{n}")})).map(
            |mut info: strata_protocol::mesos::AgentInfo| {
                info.resources = resources;
                info
            },
        );
        let register = internal::RegisterAgent {
            agent_info: info.unwrap(),
            checkpointed_resources: Vec::new(),
            version: "test".into(),
            capabilities: Vec::new(),
        };
        let pid = agent_pid(n);
        self.healthy_agents.insert(pid.clone());
        self.agent_message(&pid, register.into());
        let registered = self
            .take_agent_messages(&pid)
            .into_iter()
            .find_map(|m| match m {
                Message::AgentRegistered(registered) => Some(registered.agent_id),
                _ => None,
            });
        registered.expect("agent registered")
    }

    /// Subscribes a framework; `capabilities` are Mesos names (`PARTITION_AWARE`, ...).
    pub fn subscribe(&mut self, conn: &FrameworkConn, info: serde_json::Value) -> FrameworkId {
        let mut framework_info = json!({"user": "root", "name": "test"});
        for (key, value) in info.as_object().unwrap() {
            framework_info[key] = value.clone();
        }
        let subscribe = serde_json::from_value(json!({"framework_info": framework_info})).unwrap();
        self.call(conn, None, CallBody::Subscribe(subscribe))
            .unwrap();
        let effects = self.take_framework_events(conn);
        effects
            .into_iter()
            .find_map(|event| match event {
                Event::Subscribed(subscribed) => Some(subscribed.framework_id),
                _ => None,
            })
            .expect("SUBSCRIBED")
    }

    /// Returns the events sent on `conn`, removing them (other effects stay).
    pub fn take_framework_events(&mut self, conn: &FrameworkConn) -> Vec<Event> {
        self.take_events_where(conn, |_| true)
    }

    /// Returns the events sent on `conn` that `wanted` selects, removing only those.
    pub fn take_events_where(
        &mut self,
        conn: &FrameworkConn,
        wanted: impl Fn(&Event) -> bool,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        self.effects.retain(|effect| match effect {
            Effect::Framework { conn: c, event } if c == conn && wanted(event) => {
                events.push(event.clone());
                false
            }
            _ => true,
        });
        events
    }

    pub fn take_agent_messages(&mut self, pid: &Pid) -> Vec<Message> {
        let mut messages = Vec::new();
        self.effects.retain(|effect| match effect {
            Effect::Agent { pid: p, message } if p == pid => {
                messages.push(message.clone());
                false
            }
            _ => true,
        });
        messages
    }

    pub fn take_offers(&mut self, conn: &FrameworkConn) -> Vec<Offer> {
        self.take_events_where(conn, |e| matches!(e, Event::Offers(_)))
            .into_iter()
            .flat_map(|event| match event {
                Event::Offers(offers) => offers.offers,
                _ => Vec::new(),
            })
            .collect()
    }

    pub fn take_updates(&mut self, conn: &FrameworkConn) -> Vec<TaskStatus> {
        self.take_events_where(conn, |e| matches!(e, Event::Update(_)))
            .into_iter()
            .filter_map(|event| match event {
                Event::Update(update) => Some(update.status),
                _ => None,
            })
            .collect()
    }

    pub fn take_rescinds(&mut self, conn: &FrameworkConn) -> Vec<OfferId> {
        self.take_events_where(conn, |e| matches!(e, Event::Rescind(_)))
            .into_iter()
            .filter_map(|event| match event {
                Event::Rescind(rescind) => Some(rescind.offer_id),
                _ => None,
            })
            .collect()
    }

    /// Runs the allocator and returns the offers `conn` got.
    pub fn offers_now(&mut self, conn: &FrameworkConn) -> Vec<Offer> {
        self.advance(Duration::from_secs(1));
        self.take_offers(conn)
    }

    pub fn accept(
        &mut self,
        conn: &FrameworkConn,
        framework_id: &FrameworkId,
        offer_ids: &[&OfferId],
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    ) {
        let accept = json!({
            "offer_ids": offer_ids,
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            "filters": {"refuse_seconds": refuse_seconds},
        });
        self.call(
            conn,
            Some(framework_id),
            CallBody::Accept(serde_json::from_value(accept).unwrap()),
        )
        .unwrap();
    }

    /// Sends a status update from the agent, as its status update manager would.
    pub fn agent_update(
        &mut self,
        pid: &Pid,
        agent_id: &AgentId,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        state: TaskState,
    ) -> Bytes {
        self.next_uuid += 1;
        let uuid = Bytes::new(vec![self.next_uuid; 16]);
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.uuid = Some(uuid.clone());
        let update = internal::StatusUpdate {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: None,
            status,
            timestamp: UNIX_ORIGIN,
            uuid: uuid.clone(),
            latest_state: None,
        };
        self.agent_message(pid, update.into());
        uuid
    }
}

/// A command task asking for `resources`.
pub fn task(id: &str, agent_id: &AgentId, resources: &str) -> TaskInfo {
    let resources = Resources::parse(resources, "*").unwrap().to_wire();
    let mut task: TaskInfo = serde_json::from_value(json!({
        "name": id,
        "task_id": {"value": id},
        "agent_id": {"value": agent_id.as_str()},
        "command": {"value": "sleep 1000"},
    }))
    .unwrap();
    task.resources = resources;
    task
}

pub fn resources_of(offer: &Offer) -> Resources {
    let mut resources = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
    resources.unallocate();
    resources
}

pub fn reason_name(status: &TaskStatus) -> String {
    serde_json::to_value(status.reason)
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_owned()
}

pub fn source_name(status: &TaskStatus) -> String {
    serde_json::to_value(status.source)
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_owned()
}

pub fn kill_call(task_id: &str) -> CallBody {
    CallBody::Kill(scheduler::Kill {
        task_id: TaskId::new(task_id).unwrap(),
        agent_id: None,
        kill_policy: None,
    })
}

/// The framework info fields of a framework that is, or is not, PARTITION_AWARE.
pub fn capabilities(partition_aware: bool) -> serde_json::Value {
    let capabilities = if partition_aware {
        json!([{"type": "PARTITION_AWARE"}])
    } else {
        json!([])
    };
    json!({"capabilities": capabilities})
}
