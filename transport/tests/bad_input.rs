//! Invalid input closes only the connection it came on.

mod common;

use std::time::Duration;

use common::*;
use serde::Serialize;
use strata_protocol::{FrameCodec, Hello, PROTOCOL_VERSION, PeerRole};
use strata_transport::{CloseReason, Node, NodeConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// An envelope-shaped value whose body names a type no Strata build knows.
#[derive(Serialize)]
struct AlienEnvelope {
    from: String,
    to: String,
    epoch: u64,
    body: AlienBody,
}

#[derive(Serialize)]
enum AlienBody {
    Teleport { seq: u64 },
}

fn alien_frame(to: &str) -> Vec<u8> {
    let alien = AlienEnvelope {
        from: "x@x.test:1".into(),
        to: to.into(),
        epoch: 0,
        body: AlienBody::Teleport { seq: 1 },
    };
    FrameCodec::new().encode_to_vec(&alien).unwrap()
}

fn trailing_bytes_frame(to: &strata_protocol::Pid) -> Vec<u8> {
    let from = "x@x.test:1".parse().unwrap();
    let mut frame = FrameCodec::new()
        .encode_to_vec(&ping(&from, to, 1))
        .unwrap();
    let body_len = u32::from_be_bytes(frame[..4].try_into().unwrap());
    frame[..4].copy_from_slice(&(body_len + 2).to_be_bytes());
    frame.extend_from_slice(&[0xc0, 0xc0]);
    frame
}

/// Node B serves a well-behaved peer Y while a raw peer X, after a valid handshake, sends
/// `bad`: X's connection is closed and counted under `reason`, Y never notices.
async fn bad_frame_closes_only_its_connection(
    bad: impl FnOnce(&strata_protocol::Pid) -> Vec<u8>,
    reason: CloseReason,
) {
    let b = listening_node();
    let echo = start_echo(&b);
    let y = listening_node();
    let mut y_inbox = Inbox::start();
    let y_pid = y
        .register("inbox", y_inbox.addr.clone().recipient())
        .unwrap();
    y.link(y_inbox.addr.clone().recipient(), &echo);
    round_trip(&y, &mut y_inbox, &y_pid, &echo, 1).await;

    let mut x = raw_peer(b.local_addr().unwrap()).await;
    // A valid envelope first: it is delivered even though the connection then goes bad.
    let x_pid = "inbox@x.test:1".parse().unwrap();
    x.write_all(
        &FrameCodec::new()
            .encode_to_vec(&ping(&x_pid, &echo, 7))
            .unwrap(),
    )
    .await
    .unwrap();
    x.write_all(&bad(&echo)).await.unwrap();
    expect_closed(&mut x).await;
    assert_eq!(b.stats().closed(reason), 1, "closed for {reason:?}");
    assert_eq!(
        b.stats().messages_received,
        2,
        "y's ping and x's valid ping"
    );

    for seq in 2..5 {
        round_trip(&y, &mut y_inbox, &y_pid, &echo, seq).await;
    }
    let y_stats = y.stats();
    assert_eq!(
        y_stats.connections_outbound, 1,
        "y's connection never broke"
    );
    assert_eq!(y_stats.links_connected, 1);
    assert_eq!(
        y_inbox.next_link_event().await.state,
        strata_transport::LinkState::Connected
    );
    assert!(
        y_inbox.no_pending_link_event(),
        "y was never told of a disconnection"
    );
}

#[actix_rt::test]
async fn oversized_length_closes_only_that_connection() {
    bad_frame_closes_only_its_connection(
        |_| vec![0xff, 0xff, 0xff, 0xff],
        CloseReason::FrameTooLarge,
    )
    .await;
}

#[actix_rt::test]
async fn malformed_msgpack_closes_only_that_connection() {
    // 0xc1 is the one marker MessagePack reserves.
    bad_frame_closes_only_its_connection(
        |_| vec![0, 0, 0, 2, 0x91, 0xc1],
        CloseReason::FrameMalformed,
    )
    .await;
}

#[actix_rt::test]
async fn trailing_bytes_close_only_that_connection() {
    bad_frame_closes_only_its_connection(trailing_bytes_frame, CloseReason::FrameTrailingBytes)
        .await;
}

#[actix_rt::test]
async fn unknown_body_type_closes_only_that_connection() {
    bad_frame_closes_only_its_connection(
        |to| alien_frame(&to.to_string()),
        CloseReason::FrameUndecodable,
    )
    .await;
}

#[actix_rt::test]
async fn too_deep_nesting_closes_only_that_connection() {
    let deep = |_: &strata_protocol::Pid| {
        let depth = strata_protocol::codec::DEPTH_MAX_DEFAULT + 1;
        let mut frame = ((depth + 1) as u32).to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(0x91, depth));
        frame.push(0x01);
        frame
    };
    bad_frame_closes_only_its_connection(deep, CloseReason::FrameTooDeep).await;
}

#[actix_rt::test]
async fn empty_frame_closes_only_that_connection() {
    bad_frame_closes_only_its_connection(|_| vec![0, 0, 0, 0], CloseReason::FrameEmpty).await;
}

/// Connects a raw socket to `node`, lets `act` misbehave on it, and checks that the node closed
/// it for `reason` and still serves a proper peer afterwards.
async fn bad_handshake_is_refused(
    node: &Node,
    reason: CloseReason,
    act: impl AsyncFnOnce(&mut TcpStream),
) {
    let echo = start_echo(node);
    let mut raw = TcpStream::connect(node.local_addr().unwrap())
        .await
        .unwrap();
    act(&mut raw).await;
    expect_closed(&mut raw).await;
    assert_eq!(node.stats().closed(reason), 1);
    assert_eq!(node.stats().connections_inbound, 0);

    let peer = listening_node();
    let mut inbox = Inbox::start();
    let pid = peer
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    round_trip(&peer, &mut inbox, &pid, &echo, 1).await;
    assert_eq!(node.stats().connections_inbound, 1);
}

#[actix_rt::test]
async fn wrong_protocol_version_is_refused() {
    let node = listening_node();
    bad_handshake_is_refused(&node, CloseReason::HandshakeVersion, async |raw| {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION + 1,
            role: PeerRole::Agent,
            node: "future.test:1".into(),
        };
        raw.write_all(&FrameCodec::new().encode_to_vec(&hello).unwrap())
            .await
            .unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn garbage_instead_of_hello_is_refused() {
    let node = listening_node();
    bad_handshake_is_refused(&node, CloseReason::HandshakeInvalid, async |raw| {
        raw.write_all(b"GET / HTTP/1.1\r\nHost: strata\r\n\r\n")
            .await
            .unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn envelope_instead_of_hello_is_refused() {
    let node = listening_node();
    let to = node.pid("echo").unwrap();
    bad_handshake_is_refused(&node, CloseReason::HandshakeInvalid, async |raw| {
        raw.write_all(&FrameCodec::new().encode_to_vec(&ping(&to, &to, 1)).unwrap())
            .await
            .unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn silence_instead_of_hello_times_out() {
    let mut config = listening_config();
    config.handshake_timeout = Duration::from_millis(100);
    let node = Node::start(config).unwrap();
    bad_handshake_is_refused(&node, CloseReason::HandshakeTimeout, async |_| {}).await;
}

#[actix_rt::test]
async fn connector_refuses_an_acceptor_with_another_version() {
    // A fake acceptor that answers with a future protocol version.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let hello = Hello {
                protocol_version: PROTOCOL_VERSION + 1,
                role: PeerRole::Master,
                node: addr.to_string(),
            };
            let _ = stream
                .write_all(&FrameCodec::new().encode_to_vec(&hello).unwrap())
                .await;
            // Keep the socket until the connector gives up on it.
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut [0u8; 64]).await;
        }
    });
    let node = Node::start(fast(NodeConfig::connect_only(
        PeerRole::Tool,
        "tool.test",
        1,
    )))
    .unwrap();
    let mut inbox = Inbox::start();
    let target = strata_protocol::Pid::new("master", "127.0.0.1", addr.port()).unwrap();
    node.link(inbox.addr.clone().recipient(), &target);
    assert_eq!(
        inbox.next_link_event().await.state,
        strata_transport::LinkState::Disconnected
    );
    assert!(node.stats().closed(CloseReason::HandshakeVersion) >= 1);
    assert_eq!(node.stats().connections_outbound, 0);
}
