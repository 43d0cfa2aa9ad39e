//! Link supervision: break notifications, reconnection with backoff, bounded queues.

mod common;

use common::*;
use strata_transport::{DropReason, LinkState, Node, SendError};

#[actix_rt::test]
async fn watcher_hears_of_a_stopped_peer_and_the_link_reconnects_after_restart() {
    let peer = listening_node();
    let addr = peer.local_addr().unwrap();
    let echo = start_echo(&peer);

    let node = listening_node();
    let mut inbox = Inbox::start();
    let pid = node
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    node.link(inbox.addr.clone().recipient(), &echo);
    let event = inbox.next_link_event().await;
    assert_eq!((&event.peer, event.state), (&echo, LinkState::Connected));
    round_trip(&node, &mut inbox, &pid, &echo, 1).await;

    peer.shutdown();
    let event = inbox.next_link_event().await;
    assert_eq!((&event.peer, event.state), (&echo, LinkState::Disconnected));

    // The same port, a new process life: the link finds it by retrying with backoff.
    let mut config = listening_config();
    config.bind = Some(addr);
    let restarted = Node::start(config).unwrap();
    let echo_again = start_echo(&restarted);
    assert_eq!(echo_again, echo);
    let event = inbox.next_link_event().await;
    assert_eq!((&event.peer, event.state), (&echo, LinkState::Connected));
    round_trip(&node, &mut inbox, &pid, &echo, 2).await;

    assert_eq!(node.stats().connections_outbound, 2);
    assert_eq!(node.stats().links_connected, 1);
    assert_eq!(restarted.stats().connections_inbound, 1);
}

#[actix_rt::test]
async fn late_watcher_learns_the_known_state_at_once() {
    let peer = listening_node();
    let echo = start_echo(&peer);
    let node = listening_node();
    let mut first = Inbox::start();
    let pid = node
        .register("first", first.addr.clone().recipient())
        .unwrap();
    round_trip(&node, &mut first, &pid, &echo, 1).await;

    let mut late = Inbox::start();
    node.link(late.addr.clone().recipient(), &echo);
    assert_eq!(late.next_link_event().await.state, LinkState::Connected);

    // After unlinking `echo`, the late watcher hears only of the pid it still links to.
    let other = peer.pid("other").unwrap();
    node.link(late.addr.clone().recipient(), &other);
    assert_eq!(late.next_link_event().await.peer, other);
    node.unlink(late.addr.clone().recipient(), &echo);
    node.link(first.addr.clone().recipient(), &echo);
    assert_eq!(first.next_link_event().await.state, LinkState::Connected);
    peer.shutdown();
    assert_eq!(first.next_link_event().await.state, LinkState::Disconnected);
    let event = late.next_link_event().await;
    assert_eq!(
        (&event.peer, event.state),
        (&other, LinkState::Disconnected)
    );
    // Both events for `late` were sent together, so a second one would be here by now.
    assert!(late.no_pending_link_event());
}

#[actix_rt::test]
async fn linking_to_an_unreachable_peer_reports_disconnected() {
    let unreachable = unused_port_pid("watched");
    let node = listening_node();
    let mut inbox = Inbox::start();
    node.link(inbox.addr.clone().recipient(), &unreachable);
    let event = inbox.next_link_event().await;
    assert_eq!(
        (&event.peer, event.state),
        (&unreachable, LinkState::Disconnected)
    );
}

#[actix_rt::test]
async fn full_queue_drops_exactly_the_excess() {
    let mut config = listening_config();
    config.queue_bound = 100;
    let node = Node::start(config).unwrap();
    let from = node.pid("sender").unwrap();
    let unreachable = unused_port_pid("sink");

    let results: Vec<_> = (0..150)
        .map(|seq| node.send(ping(&from, &unreachable, seq)))
        .collect();
    assert!(results[..100].iter().all(Result::is_ok));
    assert!(
        results[100..]
            .iter()
            .all(|res| *res == Err(SendError::QueueFull))
    );
    assert_eq!(node.stats().dropped(DropReason::QueueFull), 50);
    assert_eq!(node.stats().dropped_total(), 50);
    assert_eq!(node.queued(&unreachable), 100);
}

#[actix_rt::test]
async fn queued_envelopes_flow_once_the_peer_comes_up() {
    let port = unused_port_pid("echo").port();
    let node = listening_node();
    let mut inbox = Inbox::start();
    let pid = node
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    let echo_pid = format!("echo@127.0.0.1:{port}").parse().unwrap();
    node.link(inbox.addr.clone().recipient(), &echo_pid);
    for seq in 0..10 {
        node.send(ping(&pid, &echo_pid, seq)).unwrap();
    }
    // Refused until the peer exists.
    assert_eq!(inbox.next_link_event().await.state, LinkState::Disconnected);

    let mut config = listening_config();
    config.bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let peer = Node::start(config).unwrap();
    start_echo(&peer);
    assert_eq!(inbox.next_link_event().await.state, LinkState::Connected);
    for seq in 0..10 {
        assert_eq!(pong_seq(&inbox.next_delivery().await), seq);
    }
    assert!(node.stats().connect_failures >= 1);
    assert_eq!(node.stats().dropped_total(), 0);
}

#[actix_rt::test]
async fn send_wait_waits_for_room_instead_of_dropping() {
    let mut config = listening_config();
    config.queue_bound = 16;
    let node = Node::start(config).unwrap();
    let peer = listening_node();
    let mut inbox = Inbox::start();
    let sink = peer
        .register("sink", inbox.addr.clone().recipient())
        .unwrap();
    let from = node.pid("sender").unwrap();
    for seq in 0..1000 {
        node.send_wait(ping(&from, &sink, seq)).await.unwrap();
    }
    for seq in 0..1000 {
        assert_eq!(ping_seq(&inbox.next_delivery().await), seq);
    }
    assert_eq!(node.stats().dropped_total(), 0);
}

#[actix_rt::test]
async fn sends_after_shutdown_are_refused() {
    let node = listening_node();
    let peer = listening_node();
    let to = peer.pid("anyone").unwrap();
    node.shutdown();
    assert!(node.is_shut_down());
    assert_eq!(node.send(ping(&to, &to, 1)), Err(SendError::Shutdown));
    assert_eq!(node.stats().dropped(DropReason::Shutdown), 1);
}

#[actix_rt::test]
async fn simultaneous_open_settles_on_one_connection_without_losing_envelopes() {
    let (a, b) = (listening_node(), listening_node());
    let (mut inbox_a, mut inbox_b) = (Inbox::start(), Inbox::start());
    let pid_a = a
        .register("inbox", inbox_a.addr.clone().recipient())
        .unwrap();
    let pid_b = b
        .register("inbox", inbox_b.addr.clone().recipient())
        .unwrap();

    // Both sides send before either has a connection, so both connect.
    for seq in 0..100 {
        a.send(ping(&pid_a, &pid_b, seq)).unwrap();
        b.send(ping(&pid_b, &pid_a, seq)).unwrap();
    }
    let mut got_a: Vec<u64> = Vec::new();
    let mut got_b: Vec<u64> = Vec::new();
    for _ in 0..100 {
        got_a.push(ping_seq(&inbox_a.next_delivery().await));
        got_b.push(ping_seq(&inbox_b.next_delivery().await));
    }
    got_a.sort_unstable();
    got_b.sort_unstable();
    assert_eq!(got_a, (0..100).collect::<Vec<_>>());
    assert_eq!(got_b, (0..100).collect::<Vec<_>>());

    // Both connected out, so each end saw two connections and kept the same one.
    assert_eq!(
        (
            a.stats().connections_outbound,
            b.stats().connections_outbound
        ),
        (1, 1)
    );
    assert_eq!(
        (a.stats().connections_inbound, b.stats().connections_inbound),
        (1, 1)
    );
    for seq in 100..200 {
        a.send(ping(&pid_a, &pid_b, seq)).unwrap();
        b.send(ping(&pid_b, &pid_a, seq)).unwrap();
    }
    for seq in 100..200 {
        assert_eq!(ping_seq(&inbox_a.next_delivery().await), seq);
        assert_eq!(ping_seq(&inbox_b.next_delivery().await), seq);
    }
    assert_eq!(
        (a.stats().links_connected, b.stats().links_connected),
        (1, 1)
    );
    assert_eq!(a.stats().dropped_total() + b.stats().dropped_total(), 0);
}

#[actix_rt::test]
async fn idle_links_retire_and_watched_ones_stay() {
    let mut config = listening_config();
    config.link_idle_timeout = std::time::Duration::from_millis(20);
    let node = Node::start(config).unwrap();
    let mut inbox = Inbox::start();
    let pid = node
        .register("inbox", inbox.addr.clone().recipient())
        .unwrap();
    let (unwatched, watched) = (listening_node(), listening_node());
    let (echo_unwatched, echo_watched) = (start_echo(&unwatched), start_echo(&watched));
    node.link(inbox.addr.clone().recipient(), &echo_watched);
    round_trip(&node, &mut inbox, &pid, &echo_unwatched, 1).await;
    assert_eq!(inbox.next_link_event().await.state, LinkState::Connected);
    round_trip(&node, &mut inbox, &pid, &echo_watched, 2).await;
    assert_eq!(node.n_links(), 2);

    unwatched.shutdown();
    watched.shutdown();
    assert_eq!(inbox.next_link_event().await.state, LinkState::Disconnected);
    wait_until("one link left", || node.n_links() == 1).await;

    // The retired link comes back on demand.
    let restarted = {
        let mut config = listening_config();
        config.bind = Some(
            format!("127.0.0.1:{}", echo_unwatched.port())
                .parse()
                .unwrap(),
        );
        Node::start(config).unwrap()
    };
    start_echo(&restarted);
    round_trip(&node, &mut inbox, &pid, &echo_unwatched, 3).await;
    assert_eq!(node.n_links(), 2);
}

#[actix_rt::test]
async fn a_peer_reconnecting_over_a_live_connection_is_reported_as_a_break() {
    let node = listening_node();
    let mut watcher = Inbox::start();
    let peer: strata_protocol::Pid = "inbox@x.test:1".parse().unwrap();

    let mut first = raw_peer(node.local_addr().unwrap()).await;
    node.link(watcher.addr.clone().recipient(), &peer);
    assert_eq!(watcher.next_link_event().await.state, LinkState::Connected);

    // The same node connects again while its first connection still looks alive here, as a
    // restarted process does before the old connection's reset arrives.
    let _second = raw_peer(node.local_addr().unwrap()).await;
    assert_eq!(
        watcher.next_link_event().await.state,
        LinkState::Disconnected
    );
    assert_eq!(watcher.next_link_event().await.state, LinkState::Connected);
    // The node stops writing to the first connection and half-closes it.
    expect_closed(&mut first).await;
    assert_eq!(node.stats().connections_inbound, 2);
    assert_eq!(node.stats().links_connected, 1);
}
