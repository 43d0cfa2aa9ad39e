//! Both doors of the master at once: a framework speaking the Mesos v1 scheduler HTTP API (a
//! plain HTTP/1.1 client here) and one speaking the actor protocol share a real agent, and each
//! runs real command tasks through the `strata executor` binary.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use strata_agent::server::Isolation;
use strata_integration::cluster::{
    DEADLINE, TestScheduler, agent_options, command_task, start_agent, start_master,
};
use strata_protocol::TaskId;
use strata_protocol::mesos::TaskState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATH: &str = "/api/v1/scheduler";

/// A framework on the HTTP door: its event stream, read as records arrive, and its IDs.
struct HttpFramework {
    addr: SocketAddr,
    socket: TcpStream,
    /// Bytes read but not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked body bytes not yet split into records.
    body: Vec<u8>,
    stream_id: String,
    framework_id: String,
}

impl HttpFramework {
    /// Subscribes and waits for SUBSCRIBED.
    async fn subscribe(addr: SocketAddr, name: &str) -> HttpFramework {
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": name}}});
        let body = call.to_string();
        let mut socket = TcpStream::connect(addr).await.expect("connects");
        let request = format!(
            "POST {PATH} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.expect("sent");
        let mut framework = HttpFramework {
            addr,
            socket,
            raw: Vec::new(),
            body: Vec::new(),
            stream_id: String::new(),
            framework_id: String::new(),
        };
        let head_end = loop {
            if let Some(at) = find(&framework.raw, b"\r\n\r\n") {
                break at;
            }
            framework.read_more().await;
        };
        let head = String::from_utf8_lossy(&framework.raw[..head_end]).into_owned();
        framework.raw.drain(..head_end + 4);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        framework.stream_id = head
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("mesos-stream-id")
                    .then(|| value.trim().to_owned())
            })
            .expect("Mesos-Stream-Id header");
        let subscribed = framework.next("SUBSCRIBED").await;
        framework.framework_id = subscribed["subscribed"]["framework_id"]["value"]
            .as_str()
            .expect("framework id")
            .to_owned();
        framework
    }

    async fn read_more(&mut self) {
        let mut buf = [0u8; 16384];
        let n = tokio::time::timeout(DEADLINE, self.socket.read(&mut buf))
            .await
            .expect("timed out reading the event stream")
            .expect("read");
        assert!(n > 0, "the master closed the event stream");
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Returns the next record of the stream.
    async fn next_record(&mut self) -> Value {
        loop {
            // De-chunk what is complete.
            while let Some(line_end) = find(&self.raw, b"\r\n") {
                let size = std::str::from_utf8(&self.raw[..line_end]).expect("chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                let start = line_end + 2;
                if size == 0 || self.raw.len() < start + size + 2 {
                    break;
                }
                self.body.extend_from_slice(&self.raw[start..start + size]);
                self.raw.drain(..start + size + 2);
            }
            if let Some(newline) = self.body.iter().position(|&b| b == b'\n') {
                let len: usize = std::str::from_utf8(&self.body[..newline])
                    .expect("record length")
                    .parse()
                    .expect("record length");
                if self.body.len() >= newline + 1 + len {
                    let record = serde_json::from_slice(&self.body[newline + 1..newline + 1 + len])
                        .expect("record is JSON");
                    self.body.drain(..newline + 1 + len);
                    return record;
                }
            }
            self.read_more().await;
        }
    }

    /// Returns the next event of type `event_type`, acknowledging every status update passed
    /// on the way.
    async fn next(&mut self, event_type: &str) -> Value {
        loop {
            let record = self.next_record().await;
            if record["type"] == event_type {
                return record;
            }
            if record["type"] == "UPDATE" {
                self.acknowledge(&record["update"]["status"]).await;
            }
        }
    }

    /// Returns the next status update (acknowledging it if it carries a uuid).
    async fn next_update(&mut self) -> Value {
        let update = self.next("UPDATE").await;
        let status = update["update"]["status"].clone();
        self.acknowledge(&status).await;
        status
    }

    async fn acknowledge(&self, status: &Value) {
        if status.get("uuid").is_none() {
            return;
        }
        let (code, body) = self
            .call(json!({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": status["agent_id"],
                "task_id": status["task_id"],
                "uuid": status["uuid"],
            }}))
            .await;
        assert_eq!(code, 202, "ACKNOWLEDGE refused: {body}");
    }

    /// Posts a call for this framework on its stream; returns the status and body.
    async fn call(&self, mut call: Value) -> (u16, String) {
        call["framework_id"] = json!({"value": self.framework_id});
        let body = call.to_string();
        let mut socket = TcpStream::connect(self.addr).await.expect("connects");
        let request = format!(
            "POST {PATH} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-type: application/json\r\nmesos-stream-id: {}\r\ncontent-length: {}\r\n\r\n{body}",
            self.stream_id,
            body.len()
        );
        socket.write_all(request.as_bytes()).await.expect("sent");
        let mut response = Vec::new();
        tokio::time::timeout(DEADLINE, socket.read_to_end(&mut response))
            .await
            .expect("timed out waiting for the answer")
            .expect("read");
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response[9..12].parse().expect("status code");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn state_of(status: &Value) -> &str {
    status["state"].as_str().unwrap_or("")
}

/// Runs the HTTP framework's part up to the point where its long task is running: launches a
/// short and a long command task from its first offer and follows the short one to FINISHED.
/// Returns the states the short task went through and the long task's agent ID.
async fn http_framework_launches(framework: &mut HttpFramework) -> (Vec<String>, Value) {
    let offers = framework.next("OFFERS").await;
    let offer = &offers["offers"]["offers"][0];
    let agent_id = offer["agent_id"].clone();
    let task = |id: &str, command: &str| {
        json!({"name": id, "task_id": {"value": id}, "agent_id": agent_id,
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ],
            "command": {"shell": true, "value": command}})
    };
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
            task("short", "echo hello over http"),
            task("long", "sleep 1000"),
        ]}}],
        "filters": {"refuse_seconds": 0.0},
    }});
    let (code, body) = framework.call(accept).await;
    assert_eq!(code, 202, "ACCEPT refused: {body}");

    let mut short_states = Vec::new();
    let mut long_running = false;
    while !(long_running && short_states.last().is_some_and(|s| s == "TASK_FINISHED")) {
        let status = framework.next_update().await;
        match status["task_id"]["value"].as_str() {
            Some("short") => short_states.push(state_of(&status).to_owned()),
            Some("long") => {
                assert!(
                    matches!(state_of(&status), "TASK_STARTING" | "TASK_RUNNING"),
                    "{status}"
                );
                long_running |= state_of(&status) == "TASK_RUNNING";
            }
            _ => panic!("update for an unknown task: {status}"),
        }
    }
    (short_states, agent_id)
}

#[actix_rt::test]
async fn http_and_actor_frameworks_share_an_agent() {
    let work_dir = tempfile::tempdir().expect("temp dir");
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;

    let mut http_framework = HttpFramework::subscribe(master.addr, "http-door").await;
    let mut actor_framework = TestScheduler::start(&master);
    actor_framework
        .subscribe(json!({"user": "root", "name": "actor-door"}))
        .await;
    let actor_task = TaskId::new("actor-sleep").expect("valid task id");

    // Either framework may get the agent's resources first; each launches from its offer and
    // declines the rest, so the other gets it next.
    let actor_part = async {
        let offer = actor_framework.next_offer().await;
        let task = command_task(
            "actor-sleep",
            &offer.agent_id,
            "cpus:0.25;mem:32",
            "sleep 1000",
        );
        actor_framework.launch(&offer, vec![task]);
        actor_framework
            .wait_for_state(&actor_task, TaskState::Running)
            .await;
    };
    let ((short_states, agent_id), ()) =
        tokio::join!(http_framework_launches(&mut http_framework), actor_part);
    assert_eq!(
        short_states,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );

    // Explicit reconciliation reports the long task running, without a uuid.
    let (code, body) = http_framework
        .call(json!({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "long"}, "agent_id": agent_id},
        ]}}))
        .await;
    assert_eq!(code, 202, "RECONCILE refused: {body}");
    let status = http_framework.next_update().await;
    assert_eq!(status["task_id"]["value"], "long");
    assert_eq!(state_of(&status), "TASK_RUNNING");
    assert_eq!(status["reason"], "REASON_RECONCILIATION");
    assert!(status.get("uuid").is_none(), "{status}");

    // Killing it over HTTP ends it; the actor framework's task is unaffected until killed too.
    let (code, body) = http_framework
        .call(json!({"type": "KILL", "kill": {"task_id": {"value": "long"}, "agent_id": agent_id}}))
        .await;
    assert_eq!(code, 202, "KILL refused: {body}");
    let status = http_framework.next_update().await;
    assert_eq!(
        (status["task_id"]["value"].as_str(), state_of(&status)),
        (Some("long"), "TASK_KILLED"),
        "{status}"
    );
    actor_framework.kill(&actor_task);
    actor_framework
        .wait_for_state(&actor_task, TaskState::Killed)
        .await;

    let (code, body) = http_framework.call(json!({"type": "TEARDOWN"})).await;
    assert_eq!(code, 202, "TEARDOWN refused: {body}");
    tokio::time::timeout(Duration::from_secs(5), agent.stop_and_destroy())
        .await
        .expect("agent stops");
    master.stop().await;
}
