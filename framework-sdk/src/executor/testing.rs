//! A fake agent for tests of executors: a transport node that listens on a real port, records
//! the executor calls it gets and sends the events a test asks for.
//!
//! It runs inside an actix `System` (`#[actix_rt::test]`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use serde_json::json;
use strata_protocol::executor::{
    Acknowledged, Call, CallBody, Event, Kill, Launch, Subscribed, Update,
};
use strata_protocol::ids::TaskId;
use strata_protocol::mesos::{
    CommandInfo, DurationInfo, FrameworkCapability, FrameworkCapabilityType, KillPolicy, TaskInfo,
};
use strata_protocol::{Body, Envelope, Epoch, PeerRole, Pid};
use strata_transport::{Delivery, Node, NodeConfig, TransportError};
use tokio::sync::mpsc;

/// The name of the fake agent's actor.
pub const AGENT_NAME: &str = "agent";

/// The framework ID [`FakeAgent::env`] hands the executor.
pub const FRAMEWORK_ID: &str = "test-framework";

/// The executor ID [`FakeAgent::env`] hands the executor.
pub const EXECUTOR_ID: &str = "test-executor";

/// How long [`FakeAgent::next_call`] waits before failing the test.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Forwards every envelope to the test.
struct Forward(mpsc::UnboundedSender<Envelope>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Forward {
    type Result = ();
    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.0.send(envelope);
    }
}

/// A stand-in for an agent, as far as one executor can tell.
pub struct FakeAgent {
    node: Node,
    pid: Pid,
    inbox: mpsc::UnboundedReceiver<Envelope>,
    /// The executor's pid, learnt from its first call.
    executor: Option<Pid>,
    /// Every call received, in order, heartbeats included.
    pub calls: Vec<Call>,
}

impl FakeAgent {
    /// Starts a fake agent listening on `addr` (port 0 picks a free one).
    pub fn start(addr: SocketAddr) -> Result<Self, TransportError> {
        let node = Node::start(NodeConfig::listening(PeerRole::Agent, addr))?;
        let (tx, inbox) = mpsc::unbounded_channel();
        let pid = node.register(AGENT_NAME, Forward(tx).start().recipient())?;
        Ok(Self {
            node,
            pid,
            inbox,
            executor: None,
            calls: Vec::new(),
        })
    }

    /// Stops this fake agent and starts a new one on the same port, as a restarted agent does.
    /// The new one has not heard from the executor yet.
    pub async fn restart(self) -> Result<Self, TransportError> {
        let addr = self.addr();
        self.node.shutdown();
        // The old listener closes as its task sees the shutdown; until then the port is taken.
        let mut attempts = 0;
        loop {
            match Self::start(addr) {
                Ok(agent) => return Ok(agent),
                Err(TransportError::Bind { .. }) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Stops the fake agent: every connection closes, as when an agent process dies.
    pub fn stop(self) {
        self.node.shutdown();
    }

    /// Returns the agent actor's pid (`STRATA_AGENT_PID`).
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// Returns the address the fake agent listens on.
    pub fn addr(&self) -> SocketAddr {
        self.node.local_addr().expect("the fake agent listens")
    }

    /// Returns the environment an agent gives an executor running in `sandbox`.
    pub fn env(&self, sandbox: &Path, checkpoint: bool) -> Vec<(String, String)> {
        [
            ("MESOS_FRAMEWORK_ID", FRAMEWORK_ID.to_owned()),
            ("MESOS_EXECUTOR_ID", EXECUTOR_ID.to_owned()),
            ("MESOS_AGENT_ENDPOINT", self.addr().to_string()),
            ("STRATA_AGENT_PID", self.pid.to_string()),
            ("MESOS_SANDBOX", sandbox.display().to_string()),
            ("MESOS_DIRECTORY", sandbox.display().to_string()),
            (
                "MESOS_CHECKPOINT",
                if checkpoint { "1" } else { "0" }.to_owned(),
            ),
            ("MESOS_RECOVERY_TIMEOUT", "15mins".to_owned()),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "200ms".to_owned()),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs".to_owned()),
            ("MESOS_CONTAINER_ID", "test-container".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Returns the next call other than HEARTBEAT, recording it; panics after [`CALL_TIMEOUT`].
    pub async fn next_call(&mut self) -> Call {
        loop {
            let envelope = tokio::time::timeout(CALL_TIMEOUT, self.inbox.recv())
                .await
                .expect("no call from the executor in time")
                .expect("the fake agent's inbox closed");
            let Body::ExecutorCall(call) = envelope.body else {
                panic!("not an executor call: {:?}", envelope.body);
            };
            self.executor = Some(envelope.from);
            self.calls.push(call.clone());
            if !matches!(call.body, CallBody::Heartbeat) {
                return call;
            }
        }
    }

    /// Waits for SUBSCRIBE (skipping repeats of earlier calls) and returns its payload.
    pub async fn expect_subscribe(&mut self) -> strata_protocol::executor::Subscribe {
        loop {
            if let CallBody::Subscribe(subscribe) = self.next_call().await.body {
                return *subscribe;
            }
        }
    }

    /// Waits for the next UPDATE, skipping repeated SUBSCRIBEs, and returns it.
    pub async fn expect_update(&mut self) -> Update {
        loop {
            match self.next_call().await.body {
                CallBody::Update(update) => return *update,
                CallBody::Subscribe(_) => {}
                other => panic!("expected UPDATE, got {other}"),
            }
        }
    }

    /// Tells whether a call arrives within `wait`; for checking that none does.
    pub async fn call_within(&mut self, wait: Duration) -> Option<Call> {
        match tokio::time::timeout(wait, self.inbox.recv()).await {
            Ok(Some(envelope)) => match envelope.body {
                Body::ExecutorCall(call) => {
                    self.calls.push(call.clone());
                    Some(call)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Sends `event` to the executor; it must have called first.
    pub fn send(&self, event: Event) {
        let to = self
            .executor
            .clone()
            .expect("the executor has not called the fake agent yet");
        self.node
            .send(Envelope {
                from: self.pid.clone(),
                to,
                epoch: Epoch::NONE,
                body: Body::ExecutorEvent(event),
            })
            .expect("the fake agent cannot send");
    }

    /// Sends SUBSCRIBED, declaring `capabilities` for the framework.
    pub fn subscribed(&self, capabilities: &[FrameworkCapabilityType]) {
        self.send(subscribed_event(capabilities));
    }

    /// Sends LAUNCH for `task`.
    pub fn launch(&self, task: TaskInfo) {
        self.send(Event::Launch(Box::new(Launch { task })));
    }

    /// Sends KILL for `task_id`, with a grace period if given.
    pub fn kill(&self, task_id: &str, grace: Option<Duration>) {
        self.send(Event::Kill(Kill {
            task_id: TaskId::new(task_id).expect("valid task id"),
            kill_policy: grace.map(kill_policy),
        }));
    }

    /// Acknowledges `update`.
    pub fn acknowledge(&self, update: &Update) {
        self.send(Event::Acknowledged(Acknowledged {
            task_id: update.status.task_id.clone(),
            uuid: update.status.uuid.clone().expect("updates carry a uuid"),
        }));
    }
}

/// Returns a SUBSCRIBED event for the test framework and executor.
pub fn subscribed_event(capabilities: &[FrameworkCapabilityType]) -> Event {
    let capabilities: Vec<FrameworkCapability> = capabilities.iter().map(|c| (*c).into()).collect();
    let subscribed = json!({
        "executor_info": {
            "executor_id": {"value": EXECUTOR_ID},
            "framework_id": {"value": FRAMEWORK_ID},
        },
        "framework_info": {
            "id": {"value": FRAMEWORK_ID},
            "user": "test",
            "name": "test",
            "checkpoint": true,
            "capabilities": capabilities,
        },
        "agent_info": {"hostname": "localhost"},
    });
    let subscribed: Subscribed =
        serde_json::from_value(subscribed).expect("a valid SUBSCRIBED payload");
    Event::Subscribed(Box::new(subscribed))
}

/// Returns a task running `command` through the shell.
pub fn shell_task(task_id: &str, command: &str) -> TaskInfo {
    let task = json!({
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": "test-agent"},
    });
    let mut task: TaskInfo = serde_json::from_value(task).expect("a valid task");
    task.command = Some(CommandInfo::from_shell(command));
    task
}

/// Returns a kill policy with `grace`.
pub fn kill_policy(grace: Duration) -> KillPolicy {
    KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: i64::try_from(grace.as_nanos()).expect("grace fits"),
        }),
    }
}
