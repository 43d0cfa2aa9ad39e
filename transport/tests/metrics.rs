//! The `metrics` facade sees what the per-node counters see, labelled by reason.
//!
//! This binary installs a process-wide recorder, so it holds a single test.

mod common;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use strata_transport::stats::{CONNECTIONS_CLOSED_TOTAL, DROPPED_MESSAGES_TOTAL, LINKS};
use strata_transport::{CloseReason, Node, SendError};
use tokio::io::AsyncWriteExt;

fn labelled(name: &str, reason: &str) -> impl Fn(&metrics_util::CompositeKey) -> bool {
    let name = name.to_owned();
    let reason = reason.to_owned();
    move |key| {
        key.key().name() == name
            && key
                .key()
                .labels()
                .any(|label| label.key() == "reason" && label.value() == reason)
    }
}

#[actix_rt::test]
async fn facade_counts_drops_and_closes_by_reason_and_tracks_links() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder in this process");

    let b = listening_node();
    let echo = start_echo(&b);
    let y = listening_node();
    let mut inbox = Inbox::start();
    let y_pid = y.register("inbox", inbox.addr.clone().recipient()).unwrap();
    round_trip(&y, &mut inbox, &y_pid, &echo, 1).await;

    let mut x = raw_peer(b.local_addr().unwrap()).await;
    x.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    expect_closed(&mut x).await;
    assert_eq!(b.stats().closed(CloseReason::FrameTooLarge), 1);

    let mut config = listening_config();
    config.queue_bound = 1;
    let small = Node::start(config).unwrap();
    let unreachable = unused_port_pid("sink");
    let results: Vec<_> = (0..3)
        .map(|seq| small.send(ping(&y_pid, &unreachable, seq)))
        .collect();
    assert_eq!(
        results,
        [Ok(()), Err(SendError::QueueFull), Err(SendError::QueueFull)]
    );
    let nobody = small.pid("nobody").unwrap();
    assert_eq!(
        small.send(ping(&y_pid, &nobody, 4)),
        Err(SendError::NoSuchActor)
    );

    let snapshot = snapshotter.snapshot().into_vec();
    let value = |matches: &dyn Fn(&metrics_util::CompositeKey) -> bool| {
        snapshot
            .iter()
            .find(|(key, ..)| matches(key))
            .map(|(.., value)| value)
    };
    assert_eq!(
        value(&labelled(DROPPED_MESSAGES_TOTAL, "queue_full")),
        Some(&DebugValue::Counter(2))
    );
    assert_eq!(
        value(&labelled(DROPPED_MESSAGES_TOTAL, "no_such_actor")),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        value(&labelled(CONNECTIONS_CLOSED_TOTAL, "frame_too_large")),
        Some(&DebugValue::Counter(1))
    );
    // y's link to b and b's link to y; x's link on b came and went.
    let links = value(&|key: &metrics_util::CompositeKey| key.key().name() == LINKS);
    assert_eq!(links, Some(&DebugValue::Gauge(2.0.into())));
}
