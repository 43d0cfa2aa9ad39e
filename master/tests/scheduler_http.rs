//! The Mesos v1 scheduler HTTP API of a real master over real TCP, driven by a plain HTTP/1.1
//! client: status codes, stream IDs, the RecordIO event stream and heartbeats, as Mesos's
//! `SchedulerHttpApiTest` checks them.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::net::{DEADLINE, http};
use serde_json::{Value, json};
use strata_master::server::{MasterHandle, MasterOptions, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATH: &str = "/api/v1/scheduler";
const JSON: (&str, &str) = ("content-type", "application/json");

async fn master(heartbeat_interval: Duration) -> MasterHandle {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    options.heartbeat_interval = heartbeat_interval;
    start(options).await.unwrap()
}

/// A SUBSCRIBE call; `framework_id` resubscribes. A long failover timeout keeps the framework
/// known while it is disconnected.
fn subscribe_call(framework_id: Option<&str>) -> Value {
    let mut info = json!({"user": "root", "name": "http-test", "failover_timeout": 3600.0});
    let mut call = json!({"type": "SUBSCRIBE"});
    if let Some(id) = framework_id {
        info["id"] = json!({"value": id});
        call["framework_id"] = json!({"value": id});
    }
    call["subscribe"] = json!({"framework_info": info});
    call
}

/// An open SUBSCRIBE response: its status line and headers, then records read as they come.
struct EventStream {
    socket: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    /// Bytes read but not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked body bytes not yet split into records.
    body: Vec<u8>,
    /// True once the terminating zero-length chunk (or EOF) was read.
    ended: bool,
}

impl EventStream {
    async fn open(addr: SocketAddr, headers: &[(&str, &str)], call: &Value) -> EventStream {
        let body = call.to_string();
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let mut request = format!(
            "POST {PATH} HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut stream = EventStream {
            socket,
            status: 0,
            headers: Vec::new(),
            raw: Vec::new(),
            body: Vec::new(),
            ended: false,
        };
        let head_end = loop {
            if let Some(at) = find(&stream.raw, b"\r\n\r\n") {
                break at;
            }
            assert!(stream.read_more().await, "connection closed before headers");
        };
        let head = String::from_utf8(stream.raw[..head_end].to_vec()).unwrap();
        stream.raw.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        stream.status = lines.next().unwrap()[9..12].parse().unwrap();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            stream
                .headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        stream
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads more bytes; false at EOF.
    async fn read_more(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout(DEADLINE, self.socket.read(&mut buf))
            .await
            .expect("timed out reading the event stream")
            .unwrap_or(0);
        self.raw.extend_from_slice(&buf[..n]);
        n > 0
    }

    /// Moves every complete chunk from `raw` to `body`.
    fn dechunk(&mut self) {
        loop {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if size == 0 {
                self.ended = true;
                return;
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }

    /// Returns the next record, or `None` once the stream ended.
    async fn next_record(&mut self) -> Option<Value> {
        loop {
            self.dechunk();
            if let Some(newline) = self.body.iter().position(|&b| b == b'\n') {
                let len: usize = std::str::from_utf8(&self.body[..newline])
                    .unwrap()
                    .parse()
                    .expect("record length");
                assert!(len > 0, "RecordIO records are never empty");
                if self.body.len() >= newline + 1 + len {
                    let record = serde_json::from_slice(&self.body[newline + 1..newline + 1 + len])
                        .expect("record is JSON");
                    self.body.drain(..newline + 1 + len);
                    return Some(record);
                }
            }
            if self.ended || !self.read_more().await {
                return None;
            }
        }
    }

    /// Returns the next record that is not a HEARTBEAT.
    async fn next_event(&mut self) -> Value {
        loop {
            let record = self.next_record().await.expect("stream is open");
            if record["type"] != "HEARTBEAT" {
                return record;
            }
        }
    }

    /// Subscribes and returns the stream, its ID and the framework ID.
    async fn subscribe(
        addr: SocketAddr,
        framework_id: Option<&str>,
    ) -> (EventStream, String, String) {
        let mut stream = EventStream::open(addr, &[JSON], &subscribe_call(framework_id)).await;
        assert_eq!(stream.status, 200);
        let stream_id = stream.header("mesos-stream-id").unwrap().to_owned();
        let subscribed = stream.next_record().await.unwrap();
        assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
        let framework_id = subscribed["subscribed"]["framework_id"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        (stream, stream_id, framework_id)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Posts a non-SUBSCRIBE call with the given stream ID header.
async fn post(addr: SocketAddr, stream_id: Option<&str>, call: Value) -> (u16, String) {
    let mut headers = vec![JSON];
    if let Some(id) = stream_id {
        headers.push(("mesos-stream-id", id));
    }
    http(addr, "POST", PATH, &headers, call.to_string().as_bytes()).await
}

fn teardown(framework_id: &str) -> Value {
    json!({"type": "TEARDOWN", "framework_id": {"value": framework_id}})
}

#[actix_rt::test]
async fn subscribe_answers_a_chunked_record_io_stream_that_starts_with_subscribed() {
    let master = master(Duration::from_secs(15)).await;
    // No Accept header: JSON, as Mesos defaults to.
    let mut stream = EventStream::open(master.addr, &[JSON], &subscribe_call(None)).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("content-type"), Some("application/json"));
    let stream_id = stream
        .header("mesos-stream-id")
        .expect("stream id")
        .to_owned();
    assert!(
        !stream_id.is_empty() && stream_id.len() <= 128,
        "{stream_id}"
    );
    let subscribed = stream.next_record().await.unwrap();
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    let framework_id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap();
    assert!(!framework_id.is_empty());
    assert_eq!(subscribed["subscribed"]["heartbeat_interval_seconds"], 15.0);

    // A second framework, through the `/master` prefix, gets its own stream ID and framework ID.
    let body = subscribe_call(None).to_string();
    let mut other = TcpStream::connect(master.addr).await.unwrap();
    let request = format!(
        "POST /master{PATH} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    other.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = tokio::time::timeout(DEADLINE, other.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("mesos-stream-id"), "{head}");
    assert!(!head.contains(&stream_id.to_ascii_lowercase()), "{head}");

    let (status, _) = post(master.addr, Some(&stream_id), teardown(framework_id)).await;
    assert_eq!(status, 202);
    master.stop().await;
}

#[actix_rt::test]
async fn malformed_requests_get_the_statuses_mesos_gives() {
    let master = master(Duration::from_secs(15)).await;
    let addr = master.addr;
    let subscribe = subscribe_call(None).to_string();
    let subscribe = subscribe.as_bytes();

    let (status, body) = http(addr, "GET", PATH, &[], b"").await;
    assert_eq!(status, 405, "{body}");
    let (status, body) = http(addr, "GET", &format!("/master{PATH}"), &[], b"").await;
    assert_eq!(status, 405, "{body}");
    let (status, body) = http(addr, "POST", PATH, &[], subscribe).await;
    assert_eq!(
        (status, body.contains("Content-Type")),
        (400, true),
        "{body}"
    );
    let (status, body) = http(
        addr,
        "POST",
        PATH,
        &[("content-type", "text/plain")],
        subscribe,
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = http(
        addr,
        "POST",
        PATH,
        &[("content-type", "application/x-protobuf")],
        subscribe,
    )
    .await;
    assert_eq!(
        (status, body.contains("application/json")),
        (415, true),
        "protobuf is refused saying what is supported: {body}"
    );
    let (status, body) = http(addr, "POST", PATH, &[JSON, ("accept", "foo")], subscribe).await;
    assert_eq!(status, 406, "{body}");
    let (status, body) = http(addr, "POST", PATH, &[JSON], b"{\"type\": ").await;
    assert_eq!((status, body.contains("parse")), (400, true), "{body}");
    let (status, body) = post(addr, None, json!({"type": "SUBSCRIBE"})).await;
    assert_eq!((status, body.contains("subscribe")), (400, true), "{body}");
    let (status, body) = post(addr, None, json!({"type": "LAUNCH_ROCKETS"})).await;
    assert_eq!(
        (status, body.contains("LAUNCH_ROCKETS")),
        (400, true),
        "{body}"
    );
    let (status, body) = post(addr, None, json!({"type": "TEARDOWN"})).await;
    assert_eq!(
        (status, body.contains("framework_id")),
        (400, true),
        "{body}"
    );
    let (status, body) = post(addr, Some("x"), teardown("no-such-framework")).await;
    assert_eq!(
        (status, body.contains("cannot be found")),
        (400, true),
        "{body}"
    );
    // An invalid framework (no user) is refused with the reason, and no stream opens.
    let (status, body) = post(
        addr,
        None,
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "x", "failover_timeout": -1.0}}}),
    )
    .await;
    assert_eq!(
        (status, body.contains("failover_timeout")),
        (400, true),
        "{body}"
    );

    // `/version` is shaped as Mesos's.
    let (status, version) = http(addr, "GET", "/version", &[], b"").await;
    assert_eq!(status, 200);
    let version: Value = serde_json::from_str(&version).unwrap();
    for field in [
        "version",
        "build_date",
        "build_time",
        "build_user",
        "git_sha",
    ] {
        assert!(version.get(field).is_some(), "{field} missing: {version}");
    }
    master.stop().await;
}

#[actix_rt::test]
async fn calls_must_carry_the_stream_id_of_the_current_subscription() {
    let master = master(Duration::from_secs(15)).await;
    let addr = master.addr;

    // SUBSCRIBE must not carry one.
    let refused = EventStream::open(
        addr,
        &[
            JSON,
            ("mesos-stream-id", "7a1c0f52-0000-4000-8000-000000000000"),
        ],
        &subscribe_call(None),
    )
    .await;
    assert_eq!(refused.status, 400);
    drop(refused);

    let (mut first, first_id, framework_id) = EventStream::subscribe(addr, None).await;
    let (status, body) = post(addr, None, teardown(&framework_id)).await;
    assert_eq!(
        (status, body.contains("Mesos-Stream-Id")),
        (400, true),
        "{body}"
    );

    // The framework resubscribes from a new connection: same framework ID, a new stream ID,
    // and the old stream is told it failed over and ends.
    let (mut second, second_id, resubscribed_id) =
        EventStream::subscribe(addr, Some(&framework_id)).await;
    assert_eq!(resubscribed_id, framework_id);
    assert_ne!(second_id, first_id);
    let error = first.next_event().await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["error"]["message"], "Framework failed over");
    assert!(first.next_record().await.is_none(), "the old stream ends");

    // The old stream ID is stale now.
    let (status, body) = post(addr, Some(&first_id), teardown(&framework_id)).await;
    assert_eq!((status, body.contains(&first_id)), (400, true), "{body}");

    // UPDATE_FRAMEWORK answers 200, other calls 202.
    let update = json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": framework_id},
        "update_framework": {"framework_info": {"id": {"value": framework_id}, "user": "root",
            "name": "http-test-renamed", "failover_timeout": 3600.0}}});
    let (status, body) = post(addr, Some(&second_id), update).await;
    assert_eq!(status, 200, "{body}");
    let revive = json!({"type": "REVIVE", "framework_id": {"value": framework_id}});
    let (status, body) = post(addr, Some(&second_id), revive).await;
    assert_eq!(status, 202, "{body}");

    // TEARDOWN with the current ID: 202, the stream ends, and the framework is gone.
    let (status, body) = post(addr, Some(&second_id), teardown(&framework_id)).await;
    assert_eq!(status, 202, "{body}");
    while second.next_record().await.is_some() {}
    let revive = json!({"type": "REVIVE", "framework_id": {"value": framework_id}});
    let (status, body) = post(addr, Some(&second_id), revive).await;
    assert_eq!(status, 403, "{body}");
    master.stop().await;
}

#[actix_rt::test]
async fn acknowledge_with_a_malformed_uuid_is_refused() {
    let master = master(Duration::from_secs(15)).await;
    let (_stream, stream_id, framework_id) = EventStream::subscribe(master.addr, None).await;
    // "bad-uuid", base64-encoded: valid bytes, but not a 16-byte UUID.
    let ack = json!({"type": "ACKNOWLEDGE", "framework_id": {"value": framework_id},
        "acknowledge": {"agent_id": {"value": "a1"}, "task_id": {"value": "t1"}, "uuid": "YmFkLXV1aWQ="}});
    let (status, body) = post(master.addr, Some(&stream_id), ack).await;
    assert_eq!((status, body.contains("uuid")), (400, true), "{body}");
    // Not base64 at all.
    let ack = json!({"type": "ACKNOWLEDGE", "framework_id": {"value": framework_id},
        "acknowledge": {"agent_id": {"value": "a1"}, "task_id": {"value": "t1"}, "uuid": "%%%"}});
    let (status, body) = post(master.addr, Some(&stream_id), ack).await;
    assert_eq!(status, 400, "{body}");
    master.stop().await;
}

#[actix_rt::test]
async fn heartbeats_arrive_at_the_configured_interval() {
    let interval = Duration::from_millis(200);
    let master = master(interval).await;
    let (mut stream, _, _) = EventStream::subscribe(master.addr, None).await;
    let mut arrivals = Vec::new();
    while arrivals.len() < 4 {
        let record = stream.next_record().await.unwrap();
        if record["type"] == "HEARTBEAT" {
            arrivals.push(tokio::time::Instant::now());
        }
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= interval / 2 && gap <= interval * 5,
            "heartbeats {gap:?} apart, expected about {interval:?}"
        );
    }
    master.stop().await;
}

#[actix_rt::test]
async fn closing_the_stream_disconnects_the_framework_until_it_resubscribes() {
    // Short heartbeats: the master notices a closed connection when it next writes to it.
    let master = master(Duration::from_millis(100)).await;
    let addr = master.addr;
    let (stream, stream_id, framework_id) = EventStream::subscribe(addr, None).await;
    drop(stream);

    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, state) = http(addr, "GET", "/master/state", &[], b"").await;
        let state: Value = serde_json::from_str(&state).unwrap();
        let framework = &state["frameworks"][0];
        assert_eq!(framework["id"], framework_id.as_str(), "{state}");
        if framework["connected"] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "framework still connected: {framework}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revive = json!({"type": "REVIVE", "framework_id": {"value": framework_id}});
    let (status, body) = post(addr, Some(&stream_id), revive.clone()).await;
    assert_eq!(
        (status, body.contains("not subscribed")),
        (403, true),
        "{body}"
    );

    // A resubscribe keeps the framework ID and makes calls work again.
    let (_stream, new_id, resubscribed_id) =
        EventStream::subscribe(addr, Some(&framework_id)).await;
    assert_eq!(resubscribed_id, framework_id);
    let (status, body) = post(addr, Some(&new_id), revive).await;
    assert_eq!(status, 202, "{body}");
    master.stop().await;
}
