//! The master's main flows through real actors over real TCP: a test agent and a test framework
//! (each a transport node in this process) talk to a master started as `strata master` starts
//! it, and HTTP requests go to the master's port.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::net::{DEADLINE, Peer, http, operator};
use serde_json::{Value, json};
use strata_master::server::{MasterOptions, start};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::{TaskState, TaskStatus};
use strata_protocol::scheduler::{self, Call, CallBody, Event};
use strata_protocol::{Body, Bytes, PeerRole, Resources};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[actix_rt::test]
async fn framework_launches_a_task_on_an_agent_and_the_operator_sees_it() {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    let master = start(options).await.unwrap();

    // The agent registers and gets its ID.
    let mut agent = Peer::start(PeerRole::Agent, "agent", "agent.test", &master.pid);
    agent.register_agent("cpus:2;mem:1024;ports:[31000-31009]");
    let agent_id = agent.registered().await;

    // The framework subscribes and gets an offer for the agent.
    let mut framework = Peer::start(
        PeerRole::Scheduler,
        "scheduler",
        "framework.test",
        &master.pid,
    );
    framework.subscribe("e2e");
    let framework_id = framework.subscribed().await;
    let offer = framework.next_offer().await;
    assert_eq!(offer.agent_id, agent_id);

    // It launches a task; the master sends it to the agent.
    let task = json!({"name": "sleep", "task_id": {"value": "t1"}, "agent_id": {"value": agent_id.as_str()},
        "resources": Resources::parse("cpus:1;mem:128", "*").unwrap().to_wire(), "command": {"value": "sleep 100"}});
    let accept = json!({"offer_ids": [offer.id], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]});
    framework.send(Body::SchedulerCall(Call {
        framework_id: Some(framework_id.clone()),
        body: CallBody::Accept(serde_json::from_value(accept).unwrap()),
    }));
    let run = agent
        .expect("RunTask", |body| match body {
            Body::Internal(Message::RunTask(run)) => Some(run),
            _ => None,
        })
        .await;
    assert_eq!(run.task.task_id.as_str(), "t1");

    // The agent reports it running; the framework sees the update and acknowledges it.
    let uuid = Bytes::new(vec![7; 16]);
    let mut status = TaskStatus::new(run.task.task_id.clone(), TaskState::Running);
    status.uuid = Some(uuid.clone());
    agent.send(Body::Internal(Message::StatusUpdate(Box::new(
        internal::StatusUpdate {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: None,
            status,
            timestamp: 0.0,
            uuid: uuid.clone(),
            latest_state: None,
        },
    ))));
    let update = framework
        .expect("UPDATE", |body| match body {
            Body::SchedulerEvent(Event::Update(update)) => Some(update.status),
            _ => None,
        })
        .await;
    assert_eq!(update.state, TaskState::Running);
    let ack = scheduler::Acknowledge {
        agent_id: agent_id.clone(),
        task_id: update.task_id.clone(),
        uuid: update.uuid.unwrap(),
    };
    framework.send(Body::SchedulerCall(Call {
        framework_id: Some(framework_id.clone()),
        body: CallBody::Acknowledge(ack),
    }));
    let acked = agent
        .expect("acknowledgement", |body| match body {
            Body::Internal(Message::StatusUpdateAcknowledgement(ack)) => Some(ack),
            _ => None,
        })
        .await;
    assert_eq!(acked.uuid, uuid);

    // The operator sees the running task through every door.
    let tasks = operator(master.addr, json!({"type": "GET_TASKS"})).await;
    assert_eq!(tasks["type"], "GET_TASKS");
    assert_eq!(tasks["get_tasks"]["tasks"][0]["task_id"]["value"], "t1");
    assert_eq!(tasks["get_tasks"]["tasks"][0]["state"], "TASK_RUNNING");
    let (status, state) = http(master.addr, "GET", "/master/state", &[], b"").await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);
    let (_, metrics) = http(master.addr, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.contains("strata_master_tasks{state=\"running\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_master_agents{state=\"active\"} 1"),
        "{metrics}"
    );
    let (_, snapshot) = http(master.addr, "GET", "/metrics/snapshot", &[], b"").await;
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(snapshot["master/tasks_running"], 1.0);
    assert_eq!(snapshot["master/cpus_used"], 1.0);

    // The master learns that the framework went away when its link breaks. It has no failover
    // timeout, so it is removed at once: the agent is told to shut it down, and in the same step
    // the framework moved to the completed ones.
    framework.node.shutdown();
    let shutdown = agent
        .expect("ShutdownFramework", |body| match body {
            Body::Internal(Message::ShutdownFramework(shutdown)) => Some(shutdown.framework_id),
            _ => None,
        })
        .await;
    assert_eq!(shutdown, framework_id);
    let frameworks = operator(master.addr, json!({"type": "GET_FRAMEWORKS"})).await;
    let completed = &frameworks["get_frameworks"]["completed_frameworks"];
    assert_eq!(
        completed[0]["framework_info"]["id"]["value"],
        framework_id.as_str()
    );
    assert_eq!(frameworks["get_frameworks"]["frameworks"], json!([]));
    master.stop().await;
}

#[actix_rt::test]
async fn http_errors_say_what_is_wrong() {
    let master = start(MasterOptions::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = master.addr;
    let json_type = ("content-type", "application/json");
    let get_health = br#"{"type":"GET_HEALTH"}"#;

    let (status, body) = http(addr, "GET", "/api/v1", &[], b"").await;
    assert_eq!(
        (status, body.contains("expects POST")),
        (405, true),
        "{body}"
    );
    let (status, body) = http(addr, "POST", "/api/v1", &[], get_health).await;
    assert_eq!(
        (status, body.contains("Content-Type")),
        (400, true),
        "{body}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/x-protobuf")],
        get_health,
    )
    .await;
    assert_eq!(
        (status, body.contains("protobuf bodies are not supported")),
        (415, true),
        "{body}"
    );
    let (status, _) = http(
        addr,
        "POST",
        "/api/v1",
        &[json_type, ("accept", "text/html")],
        get_health,
    )
    .await;
    assert_eq!(status, 406);
    let (status, body) = http(addr, "POST", "/api/v1", &[json_type], b"{not json").await;
    assert_eq!((status, body.contains("not JSON")), (400, true), "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1",
        &[json_type],
        br#"{"type":"FROBNICATE"}"#,
    )
    .await;
    assert_eq!((status, body.contains("FROBNICATE")), (400, true), "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/v1",
        &[json_type],
        br#"{"type":"TEARDOWN","teardown":{"framework_id":{"value":"nope"}}}"#,
    )
    .await;
    assert_eq!(
        (status, body.contains("not subscribed")),
        (404, true),
        "{body}"
    );
    let (status, body) = http(addr, "POST", "/api/v1", &[json_type], br#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"a","weight":-1}]}}"#).await;
    assert_eq!(
        (status, body.contains("greater than zero")),
        (400, true),
        "{body}"
    );
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = http(addr, "POST", "/api/v1", &[json_type], &big).await;
    assert_eq!(status, 413);
    // After all that the master still answers.
    let (status, body) = http(addr, "POST", "/api/v1", &[json_type], get_health).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["get_health"]["healthy"],
        true
    );
    let (status, body) = http(addr, "GET", "/version", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["version"],
        "1.11.0"
    );
    let (status, _) = http(addr, "GET", "/redirect", &[], b"").await;
    assert_eq!(status, 307);
    master.stop().await;
}

/// Reads an operator event stream: a chunked HTTP response carrying RecordIO records.
struct EventStream {
    stream: tokio::net::TcpStream,
    /// Bytes read and not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked bytes not yet split into records.
    payload: Vec<u8>,
}

impl EventStream {
    async fn open(addr: SocketAddr) -> EventStream {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = br#"{"type":"SUBSCRIBE"}"#;
        let request = format!(
            "POST /api/v1 HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut events = EventStream {
            stream,
            raw: Vec::new(),
            payload: Vec::new(),
        };
        events.read_headers().await;
        events
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
            .await
            .expect("event stream stalled")
            .unwrap();
        assert!(n > 0, "event stream closed");
        self.raw.extend_from_slice(&chunk[..n]);
    }

    async fn read_headers(&mut self) {
        loop {
            if let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.raw[..end]).to_string();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                self.raw.drain(..end + 4);
                return;
            }
            self.fill().await;
        }
    }

    /// Moves every complete chunk from `raw` to `payload`.
    fn dechunk(&mut self) {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size = usize::from_str_radix(
                std::str::from_utf8(&self.raw[..line_end]).unwrap().trim(),
                16,
            )
            .unwrap();
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            self.payload
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    async fn next(&mut self) -> Value {
        loop {
            self.dechunk();
            if let Some(newline) = self.payload.iter().position(|&b| b == b'\n') {
                let len: usize = std::str::from_utf8(&self.payload[..newline])
                    .unwrap()
                    .parse()
                    .unwrap();
                if self.payload.len() >= newline + 1 + len {
                    let record =
                        serde_json::from_slice(&self.payload[newline + 1..newline + 1 + len])
                            .unwrap();
                    self.payload.drain(..newline + 1 + len);
                    return record;
                }
            }
            self.fill().await;
        }
    }

    /// Returns the next event that is not a heartbeat.
    async fn next_event(&mut self) -> Value {
        loop {
            let event = self.next().await;
            if event["type"] != "HEARTBEAT" {
                return event;
            }
        }
    }
}

#[actix_rt::test]
async fn operator_subscribe_streams_state_then_changes() {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    let master = start(options).await.unwrap();
    let mut events = EventStream::open(master.addr).await;
    let subscribed = events.next().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    assert_eq!(
        subscribed["subscribed"]["get_state"]["get_agents"]["agents"],
        json!([])
    );

    let mut agent = Peer::start(PeerRole::Agent, "agent", "agent.test", &master.pid);
    agent.register_agent("cpus:2;mem:1024");
    let added = events.next_event().await;
    assert_eq!(added["type"], "AGENT_ADDED");
    assert_eq!(
        added["agent_added"]["agent"]["agent_info"]["hostname"],
        "agent.test"
    );
    let agent_id = agent.registered().await;

    let mut framework = Peer::start(
        PeerRole::Scheduler,
        "scheduler",
        "framework.test",
        &master.pid,
    );
    framework.subscribe("watched");
    let added = events.next_event().await;
    assert_eq!(added["type"], "FRAMEWORK_ADDED");
    assert_eq!(
        added["framework_added"]["framework"]["framework_info"]["name"],
        "watched"
    );
    let framework_id = framework.subscribed().await;
    let offer = framework.next_offer().await;
    let task = json!({"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": agent_id.as_str()},
        "resources": Resources::parse("cpus:1", "*").unwrap().to_wire(), "command": {"value": "true"}});
    let accept = json!({"offer_ids": [offer.id], "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]});
    framework.send(Body::SchedulerCall(Call {
        framework_id: Some(framework_id.clone()),
        body: CallBody::Accept(serde_json::from_value(accept).unwrap()),
    }));
    let added = events.next_event().await;
    assert_eq!(added["type"], "TASK_ADDED");
    assert_eq!(added["task_added"]["task"]["state"], "TASK_STAGING");

    // RUNNING twice (a retry of the same update): one TASK_UPDATED, then FINISHED gives another.
    for state in [TaskState::Running, TaskState::Running, TaskState::Finished] {
        let uuid = Bytes::new(vec![state as u8 + 1; 16]);
        let mut status = TaskStatus::new(strata_protocol::TaskId::new("t1").unwrap(), state);
        status.uuid = Some(uuid.clone());
        let update = internal::StatusUpdate {
            framework_id: framework_id.clone(),
            agent_id: agent_id.clone(),
            executor_id: None,
            status,
            timestamp: 0.0,
            uuid,
            latest_state: None,
        };
        agent.send(Body::Internal(update.into()));
    }
    let updated = events.next_event().await;
    assert_eq!(updated["type"], "TASK_UPDATED");
    assert_eq!(updated["task_updated"]["state"], "TASK_RUNNING");
    let updated = events.next_event().await;
    assert_eq!(
        updated["task_updated"]["state"], "TASK_FINISHED",
        "the retried RUNNING said nothing"
    );
    master.stop().await;
}
