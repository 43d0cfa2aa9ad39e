//! A framework on the master's Mesos v1 HTTP scheduler API, with a plain HTTP/1.1 client: its
//! event stream is read as records arrive. For tests and benchmarks of the HTTP door.

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cluster::DEADLINE;

const PATH: &str = "/api/v1/scheduler";

/// A framework on the HTTP door: its event stream, read as records arrive, and its IDs.
pub struct HttpFramework {
    pub addr: SocketAddr,
    socket: TcpStream,
    /// Bytes read but not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked body bytes not yet split into records.
    body: Vec<u8>,
    pub stream_id: String,
    pub framework_id: String,
}

impl HttpFramework {
    /// Subscribes and waits for SUBSCRIBED.
    pub async fn subscribe(addr: SocketAddr, name: &str) -> HttpFramework {
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
    pub async fn next_record(&mut self) -> Value {
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
    pub async fn next(&mut self, event_type: &str) -> Value {
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
    pub async fn next_update(&mut self) -> Value {
        let update = self.next("UPDATE").await;
        let status = update["update"]["status"].clone();
        self.acknowledge(&status).await;
        status
    }

    pub async fn acknowledge(&self, status: &Value) {
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
    pub async fn call(&self, mut call: Value) -> (u16, String) {
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

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
