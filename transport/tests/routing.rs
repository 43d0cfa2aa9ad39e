//! Routing by actor name, over TCP and locally.

mod common;

use common::*;
use strata_protocol::PeerRole;
use strata_transport::{DropReason, Node, NodeConfig, SendError};

#[actix_rt::test]
async fn replies_go_back_over_the_connection_the_peer_opened() {
    let server = listening_node();
    let echo = start_echo(&server);
    let mut server_inbox = Inbox::start();
    let server_pid = server
        .register("watcher", server_inbox.addr.clone().recipient())
        .unwrap();

    // The client does not listen: the only way back to it is the connection it opens.
    let client = Node::start(fast(NodeConfig::connect_only(
        PeerRole::Scheduler,
        "client.test",
        7,
    )))
    .unwrap();
    let mut client_inbox = Inbox::start();
    let client_pid = client
        .register("scheduler", client_inbox.addr.clone().recipient())
        .unwrap();
    assert_eq!(client_pid.to_string(), "scheduler@client.test:7");

    for seq in 0..3 {
        round_trip(&client, &mut client_inbox, &client_pid, &echo, seq).await;
    }
    // The server also starts conversations of its own, and the client answers.
    server.send(ping(&server_pid, &client_pid, 42)).unwrap();
    let delivered = client_inbox.next_delivery().await;
    assert_eq!((ping_seq(&delivered), &delivered.from), (42, &server_pid));
    client.send(pong(&client_pid, &server_pid, 42)).unwrap();
    assert_eq!(pong_seq(&server_inbox.next_delivery().await), 42);

    let (client_stats, server_stats) = (client.stats(), server.stats());
    assert_eq!(
        (
            client_stats.connections_outbound,
            client_stats.connections_inbound
        ),
        (1, 0)
    );
    assert_eq!(
        (
            server_stats.connections_outbound,
            server_stats.connections_inbound
        ),
        (0, 1)
    );
    assert_eq!(server_stats.connect_failures, 0);
    assert_eq!(
        (client_stats.messages_sent, client_stats.messages_received),
        (4, 4)
    );
    assert_eq!(
        (server_stats.messages_sent, server_stats.messages_received),
        (4, 4)
    );
    assert_eq!(
        (client_stats.links_connected, server_stats.links_connected),
        (1, 1)
    );
    assert_eq!(
        server_stats.dropped_total() + client_stats.dropped_total(),
        0
    );
}

#[actix_rt::test]
async fn two_listening_nodes_share_one_connection_both_ways() {
    let (a, b) = (listening_node(), listening_node());
    let (echo_a, echo_b) = (start_echo(&a), start_echo(&b));
    let (mut inbox_a, mut inbox_b) = (Inbox::start(), Inbox::start());
    let pid_a = a
        .register("inbox", inbox_a.addr.clone().recipient())
        .unwrap();
    let pid_b = b
        .register("inbox", inbox_b.addr.clone().recipient())
        .unwrap();

    round_trip(&a, &mut inbox_a, &pid_a, &echo_b, 1).await;
    // b already has a's connection and uses it rather than opening its own.
    round_trip(&b, &mut inbox_b, &pid_b, &echo_a, 2).await;
    round_trip(&a, &mut inbox_a, &pid_a, &echo_b, 3).await;

    assert_eq!(
        (
            a.stats().connections_outbound,
            a.stats().connections_inbound
        ),
        (1, 0)
    );
    assert_eq!(
        (
            b.stats().connections_outbound,
            b.stats().connections_inbound
        ),
        (0, 1)
    );
}

#[actix_rt::test]
async fn envelope_for_unknown_actor_is_dropped_and_counted() {
    let server = listening_node();
    let echo = start_echo(&server);
    let client = listening_node();
    let mut inbox = Inbox::start();
    let client_pid = client
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();

    let nobody = server.pid("nobody").unwrap();
    client.send(ping(&client_pid, &nobody, 1)).unwrap();
    // Envelopes on one connection arrive in order, so once the pong is back the server has
    // already handled the envelope for `nobody`.
    round_trip(&client, &mut inbox, &client_pid, &echo, 2).await;
    assert_eq!(server.stats().dropped(DropReason::NoSuchActor), 1);
    assert_eq!(server.stats().messages_received, 2);

    // Unregistering makes a name unknown again.
    client.unregister("inbox");
    server.send(ping(&echo, &client_pid, 3)).unwrap();
    let marker = client
        .register("marker", inbox.addr.clone().recipient())
        .unwrap();
    server.send(ping(&echo, &marker, 4)).unwrap();
    assert_eq!(ping_seq(&inbox.next_delivery().await), 4);
    assert_eq!(client.stats().dropped(DropReason::NoSuchActor), 1);
}

#[actix_rt::test]
async fn local_send_bypasses_tcp() {
    let node = listening_node();
    let echo = start_echo(&node);
    let mut inbox = Inbox::start();
    let pid = node
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();

    round_trip(&node, &mut inbox, &pid, &echo, 1).await;
    let nobody = node.pid("nobody").unwrap();
    assert_eq!(
        node.send(ping(&pid, &nobody, 2)),
        Err(SendError::NoSuchActor)
    );

    let stats = node.stats();
    assert_eq!(stats.messages_delivered_local, 2);
    assert_eq!(stats.dropped(DropReason::NoSuchActor), 1);
    assert_eq!((stats.messages_sent, stats.messages_received), (0, 0));
    assert_eq!(
        (stats.connections_inbound, stats.connections_outbound),
        (0, 0)
    );
}

#[actix_rt::test]
async fn names_are_unique_per_node() {
    let node = listening_node();
    let inbox = Inbox::start();
    node.register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    assert!(
        node.register("inbox", inbox.addr.clone().recipient())
            .is_err()
    );
    assert!(
        node.register("bad@name", inbox.addr.clone().recipient())
            .is_err()
    );
}

#[actix_rt::test]
async fn a_node_serves_actors_on_other_arbiters() {
    let server = listening_node();
    let echo = start_echo(&server);
    let client = listening_node();
    let mut inbox = Inbox::start();
    let pid = client
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();

    // The first send to the server happens on another thread; the link it starts must still
    // run on the node's own arbiter.
    let other = actix_rt::Arbiter::new();
    let (node, from, to) = (client.clone(), pid.clone(), echo.clone());
    assert!(other.spawn(async move { node.send(ping(&from, &to, 9)).unwrap() }));
    assert_eq!(pong_seq(&inbox.next_delivery().await), 9);
    other.stop();
    // The link outlives the arbiter that started it.
    round_trip(&client, &mut inbox, &pid, &echo, 10).await;
}

#[actix_rt::test]
async fn envelopes_for_a_stopped_actor_are_dropped_and_counted() {
    let node = listening_node();
    let mut inbox = Inbox::start();
    let pid = node
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    let gone = Inbox::start();
    let gone_pid = node
        .register("gone", gone.addr.clone().recipient())
        .unwrap();
    gone.stop().await;
    node.send(ping(&pid, &pid, 1)).unwrap();
    assert_eq!(ping_seq(&inbox.next_delivery().await), 1);
    assert_eq!(
        node.send(ping(&pid, &gone_pid, 2)),
        Err(SendError::NoSuchActor)
    );
    assert_eq!(node.stats().dropped(DropReason::NoSuchActor), 1);
}

#[actix_rt::test]
async fn envelope_over_the_frame_limit_is_dropped_and_the_link_carries_on() {
    let server = listening_node();
    let echo = start_echo(&server);
    let mut config = listening_config();
    config.codec = strata_protocol::FrameCodec::new().with_frame_len_max(200);
    let client = Node::start(config).unwrap();
    let mut inbox = Inbox::start();
    let pid = client
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();

    let huge = server.pid(&"x".repeat(250)).unwrap();
    client.send(ping(&pid, &huge, 1)).unwrap();
    round_trip(&client, &mut inbox, &pid, &echo, 2).await;
    assert_eq!(client.stats().dropped(DropReason::EncodeFailed), 1);
    assert_eq!(client.stats().messages_sent, 1);
}
