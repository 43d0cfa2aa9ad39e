//! The agent's HTTP surfaces over real TCP: a real master and a real agent (posix isolation) in
//! this process, a scheduler speaking the actor protocol, and an executor written against the
//! Mesos v1 executor HTTP API (a Python script using only the standard library) that the agent
//! starts as a CUSTOM executor. HTTP requests are written by hand so that the headers under test
//! reach the agent exactly as written.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use serde_json::{Value, json};
use strata_agent::server::{AgentHandle, AgentOptions, Isolation};
use strata_master::server::MasterOptions;
use strata_protocol::mesos::{TaskState, TaskStatus};
use strata_protocol::scheduler::{self, Call, CallBody, Event};
use strata_protocol::{AgentId, Body, Envelope, Epoch, FrameworkId, PeerRole, Pid, Resources};
use strata_transport::{Delivery, Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(15);

/// A Mesos v1 HTTP executor: subscribes, answers LAUNCH with TASK_RUNNING, echoes framework
/// messages back, finishes its task on the message `finish`, exits on `exit` or SHUTDOWN.
const EXECUTOR_PY: &str = r#"
import base64, http.client, json, os, sys, time, uuid

endpoint = os.environ["MESOS_AGENT_ENDPOINT"]
ids = {"framework_id": {"value": os.environ["MESOS_FRAMEWORK_ID"]},
       "executor_id": {"value": os.environ["MESOS_EXECUTOR_ID"]}}

def post(call):
    conn = http.client.HTTPConnection(endpoint, timeout=10)
    conn.request("POST", "/api/v1/executor", json.dumps(dict(ids, **call)),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 202:
        sys.exit("%s answered %d: %s" % (call["type"], response.status, body))

def update(task_id, state):
    status = {"task_id": task_id, "state": state, "source": "SOURCE_EXECUTOR",
              "executor_id": ids["executor_id"], "timestamp": time.time(),
              "uuid": base64.b64encode(uuid.uuid4().bytes).decode()}
    post({"type": "UPDATE", "update": {"status": status}})

conn = http.client.HTTPConnection(endpoint)
conn.request("POST", "/api/v1/executor", json.dumps(dict(ids, type="SUBSCRIBE", subscribe={})),
             {"Content-Type": "application/json", "Accept": "application/json"})
events = conn.getresponse()
if events.status != 200:
    sys.exit("SUBSCRIBE answered %d" % events.status)
task_id = None
while True:
    line = events.readline()
    if not line:
        break
    event = json.loads(events.read(int(line)))
    print(event["type"], flush=True)
    if event["type"] == "LAUNCH":
        task_id = event["launch"]["task"]["task_id"]
        update(task_id, "TASK_RUNNING")
    elif event["type"] == "MESSAGE":
        data = base64.b64decode(event["message"]["data"])
        post({"type": "MESSAGE", "message": {"data": base64.b64encode(b"echo " + data).decode()}})
        if data == b"finish":
            update(task_id, "TASK_FINISHED")
        elif data == b"exit":
            break
    elif event["type"] == "KILL":
        update(event["kill"]["task_id"], "TASK_KILLED")
    elif event["type"] == "SHUTDOWN":
        break
"#;

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

/// A scheduler on the actor protocol: a node with one actor whose inbox the test reads.
struct Scheduler {
    node: Node,
    pid: Pid,
    inbox: mpsc::UnboundedReceiver<Envelope>,
    master: Pid,
    framework_id: Option<FrameworkId>,
    /// Events received while waiting for another kind.
    skipped: std::collections::VecDeque<Event>,
}

impl Scheduler {
    fn start(master: &Pid) -> Scheduler {
        let node = Node::start(NodeConfig::connect_only(
            PeerRole::Scheduler,
            "127.0.0.1",
            1,
        ))
        .expect("scheduler node");
        let (tx, inbox) = mpsc::unbounded_channel();
        let pid = node
            .register("scheduler", Forward(tx).start().recipient())
            .expect("register scheduler");
        Scheduler {
            node,
            pid,
            inbox,
            master: master.clone(),
            framework_id: None,
            skipped: Default::default(),
        }
    }

    fn call(&self, body: CallBody) {
        let envelope = Envelope {
            from: self.pid.clone(),
            to: self.master.clone(),
            epoch: Epoch::NONE,
            body: Body::SchedulerCall(Call {
                framework_id: self.framework_id.clone(),
                body,
            }),
        };
        self.node.send(envelope).expect("send to master");
    }

    async fn subscribe(&mut self, user: &str) -> FrameworkId {
        let info = json!({"framework_info": {"user": user, "name": "http-api-test"}});
        self.call(CallBody::Subscribe(Box::new(
            serde_json::from_value(info).expect("subscribe"),
        )));
        let framework_id = self
            .expect("SUBSCRIBED", |event| match event {
                Event::Subscribed(subscribed) => Some(subscribed.framework_id.clone()),
                _ => None,
            })
            .await;
        self.framework_id = Some(framework_id.clone());
        framework_id
    }

    /// Waits for the next event `pick` accepts; the others are kept for later calls.
    async fn expect<T>(&mut self, what: &str, pick: impl Fn(&Event) -> Option<T>) -> T {
        if let Some(idx) = self.skipped.iter().position(|event| pick(event).is_some()) {
            let event = self.skipped.remove(idx).expect("position is in range");
            return pick(&event).expect("picked above");
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let envelope = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("inbox open");
            if let Body::SchedulerEvent(event) = envelope.body {
                match pick(&event) {
                    Some(found) => return found,
                    None => self.skipped.push_back(event),
                }
            }
        }
    }

    /// Accepts `offer` with one LAUNCH; what the task leaves is offered again at once.
    fn launch(&self, offer: &strata_protocol::mesos::Offer, task: Value) {
        let accept = json!({
            "offer_ids": [offer.id],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
            "filters": {"refuse_seconds": 0.0},
        });
        self.call(CallBody::Accept(
            serde_json::from_value(accept).expect("accept"),
        ));
    }

    async fn next_offer(&mut self) -> strata_protocol::mesos::Offer {
        self.expect("OFFERS", |event| match event {
            Event::Offers(offers) => offers.offers.first().cloned(),
            _ => None,
        })
        .await
    }

    /// Waits for the next status update, acknowledges it and returns it.
    async fn next_update(&mut self, agent_id: &AgentId) -> TaskStatus {
        let status = self
            .expect("UPDATE", |event| match event {
                Event::Update(update) => Some(update.status.clone()),
                _ => None,
            })
            .await;
        if let Some(uuid) = status.uuid.clone() {
            self.call(CallBody::Acknowledge(scheduler::Acknowledge {
                agent_id: agent_id.clone(),
                task_id: status.task_id.clone(),
                uuid,
            }));
        }
        status
    }
}

struct Response {
    status: u16,
    headers: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection, which the server closes after answering.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    // The server may answer (413) before reading a large body; a failed write is then fine.
    let _ = stream.write_all(body).await;
    // Nothing more will be sent: saying so spares the server waiting for the client to close
    // after an early answer.
    let _ = stream.shutdown().await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .expect("response in time");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"));
    let (headers, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers: headers.to_owned(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

const JSON: (&str, &str) = ("content-type", "application/json");

async fn get(addr: SocketAddr, path: &str) -> Response {
    http(addr, "GET", path, &[], b"").await
}

async fn operator(addr: SocketAddr, call_type: &str) -> Value {
    let body = json!({ "type": call_type }).to_string();
    let response = http(addr, "POST", "/api/v1", &[JSON], body.as_bytes()).await;
    assert_eq!(response.status, 200, "{call_type}: {}", response.body);
    let answer = response.json();
    assert_eq!(answer["type"], call_type);
    answer[call_type.to_ascii_lowercase()].clone()
}

/// Polls `/metrics/snapshot` until `check` holds, for what the agent learns asynchronously.
async fn wait_for_snapshot(addr: SocketAddr, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let snapshot = get(addr, "/metrics/snapshot").await.json();
        if check(&snapshot) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prometheus text line value of `series` (name with labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

async fn start_agent(work_dir: &Path, master: Option<SocketAddr>) -> AgentHandle {
    // 512 MiB of disk is reserved for the `ops` role, which the test framework is not in.
    let resources = Resources::parse(
        "cpus:2;mem:1024;disk:2048;disk(ops):512;ports:[31000-31009]",
        "*",
    )
    .expect("resources");
    let mut options = AgentOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        work_dir.to_path_buf(),
        resources,
    );
    options.isolation = Isolation::Posix;
    // The launcher here is this test binary, not `strata`; these tests run no task.
    options.reaper = false;
    options.master = master;
    options.hostname = "agent.test".into();
    options.registration_backoff_min = Duration::from_millis(50);
    options.flags = vec![("isolation".into(), "posix".into())];
    options.attributes = serde_json::from_value(json!([
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "level", "type": "SCALAR", "scalar": {"value": 3.0}},
    ]))
    .expect("attributes");
    strata_agent::server::start(options)
        .await
        .expect("agent starts")
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name)
        .expect("current user has a name")
}

#[actix_rt::test]
async fn a_mesos_http_executor_runs_a_task_and_every_surface_reports_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let script = tmp.path().join("executor.py");
    std::fs::write(&script, EXECUTOR_PY).expect("write executor");
    let mut master_options = MasterOptions::new("127.0.0.1:0".parse().expect("addr"));
    master_options.allocation_interval = Duration::from_millis(50);
    let master = strata_master::server::start(master_options)
        .await
        .expect("master starts");
    let agent = start_agent(&tmp.path().join("work"), Some(master.addr)).await;
    let addr = agent.addr;

    // The scheduler subscribes and takes the agent's offer.
    let mut scheduler = Scheduler::start(&master.pid);
    let framework_id = scheduler.subscribe(&current_user()).await;
    let offer = scheduler.next_offer().await;
    let agent_id = offer.agent_id.clone();
    let executor_resources = Resources::parse("cpus:0.1;mem:32", "*").expect("resources");
    let task_resources = Resources::parse("cpus:0.5;mem:64", "*").expect("resources");
    let task = json!({
        "name": "py-task",
        "task_id": {"value": "t1"},
        "agent_id": {"value": agent_id.as_str()},
        "resources": task_resources.to_wire(),
        "executor": {
            "executor_id": {"value": "py-executor"},
            "type": "CUSTOM",
            "name": "python executor",
            "source": "http-api-test",
            "command": {"value": format!("python3 {}", script.display())},
            "resources": executor_resources.to_wire(),
        },
    });
    scheduler.launch(&offer, task);

    // The executor subscribes over HTTP, gets LAUNCH and reports the task running.
    let running = scheduler.next_update(&agent_id).await;
    assert_eq!(running.task_id.as_str(), "t1");
    assert_eq!(running.state, TaskState::Running, "{running:?}");

    // While the task runs, every surface shows it.
    let state = get(addr, "/state").await;
    assert_eq!(state.status, 200);
    let state = state.json();
    assert_eq!(state["id"], agent_id.as_str());
    assert_eq!(state["hostname"], "agent.test");
    assert_eq!(state["pid"], agent.pid.to_string());
    assert_eq!(state["master_hostname"], "127.0.0.1");
    assert_eq!(state["resources"]["cpus"], 2.0);
    assert_eq!(state["resources"]["mem"], 1024.0);
    assert_eq!(state["resources"]["ports"], "[31000-31009]");
    assert_eq!(state["resources"]["disk"], 2560.0);
    assert_eq!(state["unreserved_resources"]["disk"], 2048.0);
    assert_eq!(state["reserved_resources"]["ops"]["disk"], 512.0);
    assert_eq!(
        state["reserved_resources_full"]["ops"][0]["scalar"]["value"],
        512.0
    );
    assert_eq!(state["attributes"], json!({"rack": "r1", "level": 3.0}));
    assert_eq!(state["flags"]["isolation"], "posix");
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], framework_id.as_str());
    assert_eq!(framework["name"], "http-api-test");
    assert_eq!(framework["checkpoint"], false);
    let executor = &framework["executors"][0];
    assert_eq!(executor["id"], "py-executor");
    assert_eq!(executor["name"], "python executor");
    assert_eq!(executor["source"], "http-api-test");
    let container = executor["container"]
        .as_str()
        .expect("container")
        .to_owned();
    let directory = executor["directory"].as_str().expect("directory");
    assert!(
        directory.ends_with(&format!(
            "frameworks/{framework_id}/executors/py-executor/runs/{container}"
        )),
        "{directory}"
    );
    // The executor printed what it received into its sandbox's stdout.
    let stdout = std::fs::read_to_string(Path::new(directory).join("stdout")).expect("stdout");
    assert!(stdout.contains("SUBSCRIBED\nLAUNCH\n"), "{stdout}");
    assert!((executor["resources"]["cpus"].as_f64().expect("cpus") - 0.6).abs() < 1e-9);
    assert_eq!(executor["resources"]["mem"], 96.0);
    assert_eq!(executor["tasks"][0]["id"], "t1");
    assert_eq!(executor["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(executor["tasks"][0]["slave_id"], agent_id.as_str());
    assert_eq!(executor["tasks"][0]["statuses"][0]["state"], "TASK_RUNNING");
    assert_eq!(executor["queued_tasks"], json!([]));
    // `/slave(1)/state` is the same document, uptime aside.
    let mut mesos_path = get(addr, "/slave(1)/state").await.json();
    let mut expected = state.clone();
    mesos_path["uptime_secs"] = Value::Null;
    expected["uptime_secs"] = Value::Null;
    assert_eq!(mesos_path, expected);

    let tasks = operator(addr, "GET_TASKS").await;
    assert_eq!(tasks["launched_tasks"][0]["task_id"]["value"], "t1");
    assert_eq!(tasks["launched_tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(tasks["terminated_tasks"], json!([]));
    let executors = operator(addr, "GET_EXECUTORS").await;
    assert_eq!(
        executors["executors"][0]["executor_info"]["executor_id"]["value"],
        "py-executor"
    );
    let frameworks = operator(addr, "GET_FRAMEWORKS").await;
    assert_eq!(
        frameworks["frameworks"][0]["framework_info"]["id"]["value"],
        framework_id.as_str()
    );
    let agent_info = operator(addr, "GET_AGENT").await;
    assert_eq!(agent_info["agent_info"]["id"]["value"], agent_id.as_str());
    assert_eq!(agent_info["agent_info"]["hostname"], "agent.test");
    let containers = operator(addr, "GET_CONTAINERS").await;
    let entry = &containers["containers"][0];
    assert_eq!(entry["container_id"]["value"], container);
    assert_eq!(entry["executor_id"]["value"], "py-executor");
    assert_eq!(entry["framework_id"]["value"], framework_id.as_str());
    assert!(entry["container_status"]["executor_pid"].as_u64().is_some());
    let statistics = &entry["resource_statistics"];
    assert!(statistics["processes"].as_u64().expect("processes") >= 1);
    assert!(statistics["mem_rss_bytes"].as_u64().expect("rss") > 0);
    assert_eq!(statistics["mem_limit_bytes"], 96 * 1024 * 1024);
    let full = operator(addr, "GET_STATE").await;
    assert_eq!(
        full["get_tasks"]["launched_tasks"][0]["task_id"]["value"],
        "t1"
    );
    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers.contains("text/plain"),
        "{}",
        metrics.headers
    );
    let text = metrics.body;
    assert_eq!(
        sample(&text, "strata_agent_registered"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "strata_agent_tasks{state=\"running\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "strata_agent_executors{state=\"running\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "strata_agent_resources{resource=\"cpus\",state=\"total\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "strata_agent_resources{resource=\"mem\",state=\"used\"}"
        ),
        Some(96.0 * 1024.0 * 1024.0)
    );
    assert!(sample(&text, "strata_agent_status_updates_forwarded_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(&text, "strata_agent_container_launch_errors_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "strata_agent_recovery_errors_total"),
        Some(0.0)
    );
    let snapshot = get(addr, "/metrics/snapshot").await.json();
    assert_eq!(snapshot["slave/registered"], 1.0);
    assert_eq!(snapshot["slave/tasks_running"], 1.0);
    assert_eq!(snapshot["slave/tasks_staging"], 0.0);
    assert_eq!(snapshot["slave/executors_running"], 1.0);
    assert_eq!(snapshot["slave/cpus_total"], 2.0);
    assert!((snapshot["slave/cpus_used"].as_f64().expect("cpus_used") - 0.6).abs() < 1e-9);
    assert_eq!(snapshot["slave/mem_total"], 1024.0);
    assert_eq!(snapshot["slave/mem_used"], 96.0);
    assert_eq!(snapshot["slave/disk_total"], 2560.0);
    assert!(snapshot["slave/uptime_secs"].as_f64().expect("uptime") > 0.0);
    assert_eq!(snapshot["slave/container_launch_errors"], 0.0);

    // A second task goes to an executor that never subscribes: it stays queued, STAGING, and
    // the executor API refuses calls from that executor until it subscribes.
    let offer = scheduler.next_offer().await;
    let silent = json!({
        "name": "waits",
        "task_id": {"value": "t2"},
        "agent_id": {"value": agent_id.as_str()},
        "resources": task_resources.to_wire(),
        "executor": {
            "executor_id": {"value": "silent"},
            "type": "CUSTOM",
            "command": {"value": "sleep 60"},
            "resources": executor_resources.to_wire(),
        },
    });
    scheduler.launch(&offer, silent);
    wait_for_snapshot(addr, "the silent executor", |snapshot| {
        snapshot["slave/executors_registering"] == 1.0 && snapshot["slave/tasks_staging"] == 1.0
    })
    .await;
    let tasks = operator(addr, "GET_TASKS").await;
    assert_eq!(tasks["queued_tasks"][0]["task_id"]["value"], "t2");
    assert_eq!(tasks["queued_tasks"][0]["state"], "TASK_STAGING");
    assert_eq!(tasks["queued_tasks"][0]["executor_id"]["value"], "silent");
    let state = get(addr, "/state").await.json();
    let executors = state["frameworks"][0]["executors"]
        .as_array()
        .expect("executors");
    let queued = executors
        .iter()
        .find(|executor| executor["id"] == "silent")
        .expect("silent executor in /state");
    assert_eq!(queued["queued_tasks"][0]["id"], "t2");
    assert_eq!(queued["queued_tasks"][0]["executor_id"], "silent");
    assert_eq!(queued["tasks"], json!([]));
    let early_update = json!({
        "framework_id": {"value": framework_id.as_str()},
        "executor_id": {"value": "silent"},
        "type": "MESSAGE",
        "message": {"data": "aGk="},
    });
    let response = http(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        early_update.to_string().as_bytes(),
    )
    .await;
    assert_eq!(response.status, 403, "{}", response.body);
    assert_eq!(response.body, "executor is not subscribed");
    scheduler.call(CallBody::Kill(scheduler::Kill {
        task_id: "t2".parse().expect("task id"),
        agent_id: Some(agent_id.clone()),
        kill_policy: None,
    }));
    let killed = scheduler.next_update(&agent_id).await;
    assert_eq!(killed.task_id.as_str(), "t2");
    assert_eq!(killed.state, TaskState::Killed, "{killed:?}");
    wait_for_snapshot(addr, "the silent executor's end", |snapshot| {
        snapshot["slave/executors_registering"] == 0.0
            && snapshot["slave/executors_terminating"] == 0.0
            && snapshot["slave/executors_terminated"] == 1.0
    })
    .await;

    // An executor that cannot be started fails its task and counts as a launch error.
    let offer = scheduler.next_offer().await;
    let broken = json!({
        "name": "broken",
        "task_id": {"value": "t3"},
        "agent_id": {"value": agent_id.as_str()},
        "resources": task_resources.to_wire(),
        "executor": {
            "executor_id": {"value": "broken"},
            "type": "CUSTOM",
            "command": {"shell": false, "value": "/nonexistent/executor"},
            "resources": executor_resources.to_wire(),
        },
    });
    scheduler.launch(&offer, broken);
    let failed = scheduler.next_update(&agent_id).await;
    assert_eq!(failed.task_id.as_str(), "t3");
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    let snapshot = wait_for_snapshot(addr, "the broken executor's end", |snapshot| {
        snapshot["slave/executors_terminated"] == 2.0
    })
    .await;
    assert_eq!(snapshot["slave/container_launch_errors"], 1.0);
    let text = get(addr, "/metrics").await.body;
    assert_eq!(
        sample(&text, "strata_agent_container_launch_errors_total"),
        Some(1.0),
        "{text}"
    );

    // A framework message reaches the executor over its event stream; the executor's MESSAGE
    // call reaches the framework; then the executor finishes the task.
    scheduler.call(CallBody::Message(scheduler::Message {
        agent_id: agent_id.clone(),
        executor_id: "py-executor".parse().expect("executor id"),
        data: strata_protocol::Bytes::new(b"finish".to_vec()),
    }));
    let echo = scheduler
        .expect("MESSAGE", |event| match event {
            Event::Message(message) => Some(message.data.clone()),
            _ => None,
        })
        .await;
    assert_eq!(echo.as_slice(), b"echo finish");
    let finished = scheduler.next_update(&agent_id).await;
    assert_eq!(finished.task_id.as_str(), "t1");
    assert_eq!(finished.state, TaskState::Finished, "{finished:?}");

    // Once the acknowledgement is in, the task is completed and counted as finished.
    let snapshot = wait_for_snapshot(addr, "the finished task", |snapshot| {
        snapshot["slave/tasks_finished"] == 1.0 && snapshot["slave/tasks_running"] == 0.0
    })
    .await;
    assert_eq!(snapshot["slave/mem_used"], 32.0);
    let text = get(addr, "/metrics").await.body;
    assert_eq!(
        sample(&text, "strata_agent_tasks{state=\"finished\"}"),
        Some(1.0),
        "{text}"
    );
    let tasks = operator(addr, "GET_TASKS").await;
    assert_eq!(tasks["launched_tasks"], json!([]));
    assert_eq!(tasks["completed_tasks"][0]["state"], "TASK_FINISHED");
    let state = get(addr, "/state").await.json();
    let executor = &state["frameworks"][0]["executors"][0];
    assert_eq!(executor["tasks"], json!([]));
    assert_eq!(executor["completed_tasks"][0]["id"], "t1");
    assert_eq!(executor["completed_tasks"][0]["state"], "TASK_FINISHED");

    // The executor exits on its own; its stream closes and the agent sees it terminated.
    scheduler.call(CallBody::Message(scheduler::Message {
        agent_id: agent_id.clone(),
        executor_id: "py-executor".parse().expect("executor id"),
        data: strata_protocol::Bytes::new(b"exit".to_vec()),
    }));
    wait_for_snapshot(addr, "the executor's exit", |snapshot| {
        snapshot["slave/executors_running"] == 0.0 && snapshot["slave/executors_terminated"] == 3.0
    })
    .await;
    let state = get(addr, "/state").await.json();
    // With no executor left, the framework is done on this agent, as in Mesos.
    assert_eq!(state["frameworks"], json!([]), "{state}");
    let completed: Vec<&Value> = state["completed_frameworks"][0]["completed_executors"]
        .as_array()
        .expect("completed executors")
        .iter()
        .collect();
    let ids: Vec<&str> = completed
        .iter()
        .filter_map(|executor| executor["id"].as_str())
        .collect();
    assert_eq!(ids, ["silent", "broken", "py-executor"], "{state}");
    assert_eq!(completed[1]["completed_tasks"][0]["state"], "TASK_FAILED");
    assert_eq!(completed[2]["completed_tasks"][0]["state"], "TASK_FINISHED");
    let executors = operator(addr, "GET_EXECUTORS").await;
    assert_eq!(executors["executors"], json!([]));
    assert_eq!(
        executors["completed_executors"][2]["executor_info"]["executor_id"]["value"],
        "py-executor"
    );

    scheduler.node.shutdown();
    agent.stop_and_destroy().await;
    master.stop().await;
}

#[actix_rt::test]
async fn http_errors_say_what_is_wrong() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let agent = start_agent(tmp.path(), None).await;
    let addr = agent.addr;
    let subscribe = json!({
        "framework_id": {"value": "no-such-framework"},
        "executor_id": {"value": "no-such-executor"},
        "type": "SUBSCRIBE",
        "subscribe": {},
    })
    .to_string();
    let get_tasks = br#"{"type":"GET_TASKS"}"#;
    let too_big = vec![b' '; strata_agent::http::BODY_LEN_MAX + 1];

    for path in ["/api/v1", "/api/v1/executor"] {
        let body = if path == "/api/v1" {
            get_tasks.to_vec()
        } else {
            subscribe.clone().into_bytes()
        };
        let response = http(addr, "GET", path, &[JSON], b"").await;
        assert_eq!(response.status, 405, "{path}: {}", response.body);
        assert!(
            response
                .headers
                .to_ascii_lowercase()
                .contains("allow: post"),
            "{}",
            response.headers
        );
        let response = http(addr, "POST", path, &[], &body).await;
        assert_eq!(response.status, 400, "{path}");
        assert!(response.body.contains("Content-Type"), "{}", response.body);
        let response = http(addr, "POST", path, &[("content-type", "text/plain")], &body).await;
        assert_eq!(response.status, 415, "{path}");
        assert!(response.body.contains("text/plain"), "{}", response.body);
        let protobuf = ("content-type", "application/x-protobuf");
        let response = http(addr, "POST", path, &[protobuf], &body).await;
        assert_eq!(response.status, 415, "{path}");
        assert!(response.body.contains("protobuf"), "{}", response.body);
        let response = http(addr, "POST", path, &[JSON, ("accept", "text/html")], &body).await;
        assert_eq!(response.status, 406, "{path}: {}", response.body);
        let response = http(addr, "POST", path, &[JSON], b"{not json").await;
        assert_eq!(response.status, 400, "{path}");
        assert!(response.body.contains("not JSON"), "{}", response.body);
        let response = http(addr, "POST", path, &[JSON], &too_big).await;
        assert_eq!(response.status, 413, "{path}: {}", response.body);
    }

    // The operator API names the call it does not support.
    let response = http(
        addr,
        "POST",
        "/api/v1",
        &[JSON],
        br#"{"type":"LAUNCH_CONTAINER"}"#,
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(
        response.body.contains("LAUNCH_CONTAINER"),
        "{}",
        response.body
    );
    let response = http(addr, "POST", "/api/v1", &[JSON], br#"{"kind":"GET_TASKS"}"#).await;
    assert_eq!(response.status, 400);
    assert!(response.body.contains("'type'"), "{}", response.body);

    // The executor API says why a call is invalid, and which executor it does not know.
    let executor = "/api/v1/executor";
    let unknown_type =
        br#"{"framework_id":{"value":"f"},"executor_id":{"value":"e"},"type":"DANCE"}"#;
    let response = http(addr, "POST", executor, &[JSON], unknown_type).await;
    assert_eq!(response.status, 400);
    assert!(response.body.contains("DANCE"), "{}", response.body);
    let no_payload =
        br#"{"framework_id":{"value":"f"},"executor_id":{"value":"e"},"type":"UPDATE"}"#;
    let response = http(addr, "POST", executor, &[JSON], no_payload).await;
    assert_eq!(response.status, 400);
    assert!(response.body.contains("update"), "{}", response.body);
    let response = http(addr, "POST", executor, &[JSON], subscribe.as_bytes()).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.body, "Framework cannot be found");
    // Heartbeats are accepted whatever they name, as Mesos does.
    let heartbeat =
        br#"{"framework_id":{"value":"f"},"executor_id":{"value":"e"},"type":"HEARTBEAT"}"#;
    let response = http(addr, "POST", executor, &[JSON], heartbeat).await;
    assert_eq!(response.status, 202, "{}", response.body);

    // An agent with no master answers every read, and says it is not registered.
    assert_eq!(get(addr, "/health").await.status, 200);
    assert_eq!(get(addr, "/slave(1)/health").await.status, 200);
    let version = get(addr, "/version").await.json();
    assert!(
        version["version"]
            .as_str()
            .expect("version")
            .starts_with("1.")
    );
    let health = operator(addr, "GET_HEALTH").await;
    assert_eq!(health["healthy"], true);
    let flags = operator(addr, "GET_FLAGS").await;
    assert_eq!(
        flags["flags"][0],
        json!({"name": "isolation", "value": "posix"})
    );
    let metrics = operator(addr, "GET_METRICS").await;
    let names: Vec<&str> = metrics["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|metric| metric["name"].as_str())
        .collect();
    assert!(names.contains(&"slave/registered"), "{names:?}");
    let snapshot = get(addr, "/metrics/snapshot").await.json();
    assert_eq!(snapshot["slave/registered"], 0.0);
    assert_eq!(snapshot["slave/executors_running"], 0.0);
    let state = get(addr, "/state").await.json();
    assert_eq!(state["id"], "");
    assert_eq!(state["frameworks"], json!([]));
    assert!(state.get("master_hostname").is_none(), "{state}");
    let containers = operator(addr, "GET_CONTAINERS").await;
    assert_eq!(containers["containers"], json!([]));

    agent.stop().await;
}
