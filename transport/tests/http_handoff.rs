//! One port for both doors: connections that do not start with a frame header are relayed to
//! the daemon's HTTP server, while actor-protocol peers keep working on the same port.

mod common;

use common::*;
use strata_protocol::PeerRole;
use strata_transport::{Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[actix_rt::test]
async fn http_bytes_reach_the_upstream_and_actor_peers_still_work() {
    // A stand-in HTTP server: answers every connection with a fixed response.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    actix_rt::spawn(async move {
        while let Ok((mut stream, _)) = upstream.accept().await {
            actix_rt::spawn(async move {
                let mut request = vec![0u8; 1024];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let body = format!(
                    "saw {} bytes starting {:?}",
                    n,
                    String::from_utf8_lossy(&request[..4.min(n)])
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });

    let mut config = listening_config();
    config.http_upstream = Some(upstream_addr);
    let server = Node::start(config).unwrap();
    let echo = start_echo(&server);
    let server_addr = server.local_addr().unwrap();

    let mut http = TcpStream::connect(server_addr).await.unwrap();
    http.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, http.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("starting \"GET \""), "{response}");

    let client = Node::start(fast(NodeConfig::connect_only(
        PeerRole::Tool,
        "client.test",
        9,
    )))
    .unwrap();
    let mut inbox = Inbox::start();
    let pid = client
        .register("tool", inbox.addr.clone().recipient())
        .unwrap();
    round_trip(&client, &mut inbox, &pid, &echo, 1).await;
    assert_eq!(
        server.stats().connections_inbound,
        1,
        "the relayed HTTP connection is not a peer"
    );
}
