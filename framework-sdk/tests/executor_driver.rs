//! The executor driver against a fake agent over real TCP: subscription, updates and their
//! acknowledgements, resubscription after an agent restart, and shutdown when the agent is gone.

use std::time::Duration;

use strata_framework_sdk::executor::testing::{FakeAgent, shell_task};
use strata_framework_sdk::executor::{
    ExecutorConfig, ExecutorDriver, ExecutorEvent, ShutdownReason,
};
use strata_protocol::TaskState;
use strata_protocol::executor::{CallBody, Event};
use strata_protocol::ids::TaskId;
use strata_protocol::mesos::{TaskStatus, TaskStatusSource};

const DEADLINE: Duration = Duration::from_secs(10);

fn config(agent: &FakeAgent, sandbox: &std::path::Path, checkpoint: bool) -> ExecutorConfig {
    let env = agent.env(sandbox, checkpoint);
    ExecutorConfig::from_lookup(|name| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
    .unwrap()
}

async fn next_event(driver: &mut ExecutorDriver) -> ExecutorEvent {
    tokio::time::timeout(DEADLINE, driver.next_event())
        .await
        .expect("no event from the driver in time")
        .expect("the driver stopped")
}

fn status(task_id: &str, state: TaskState) -> TaskStatus {
    TaskStatus::new(TaskId::new(task_id).unwrap(), state)
}

/// Starts an agent and a driver, and completes the subscription.
async fn subscribed(checkpoint: bool) -> (FakeAgent, ExecutorDriver, tempfile::TempDir) {
    let sandbox = tempfile::tempdir().unwrap();
    let mut agent = FakeAgent::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut driver = ExecutorDriver::start(config(&agent, sandbox.path(), checkpoint)).unwrap();
    let subscribe = agent.expect_subscribe().await;
    assert!(subscribe.unacknowledged_tasks.is_empty());
    assert!(subscribe.unacknowledged_updates.is_empty());
    agent.subscribed(&[]);
    match next_event(&mut driver).await {
        ExecutorEvent::Subscribed(subscribed) => {
            assert_eq!(subscribed.framework_info.name, "test");
        }
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
    (agent, driver, sandbox)
}

#[actix_rt::test]
async fn updates_carry_what_the_agent_needs_and_acks_reach_the_executor() {
    let (mut agent, mut driver, _sandbox) = subscribed(true).await;
    let call = agent.calls.last().unwrap().clone();
    assert_eq!(call.executor_id.as_str(), "test-executor");
    assert_eq!(call.framework_id.as_str(), "test-framework");

    agent.launch(shell_task("t1", "true"));
    match next_event(&mut driver).await {
        ExecutorEvent::Launch(task) => assert_eq!(task.task_id.as_str(), "t1"),
        other => panic!("expected LAUNCH, got {other:?}"),
    }

    let uuid = driver
        .handle()
        .update(status("t1", TaskState::Running))
        .unwrap();
    let update = agent.expect_update().await;
    assert_eq!(update.status.state, TaskState::Running);
    assert_eq!(update.status.uuid.as_ref(), Some(&uuid));
    assert_eq!(uuid.as_slice().len(), 16);
    assert_eq!(update.status.source, Some(TaskStatusSource::Executor));
    assert_eq!(
        update.status.executor_id.as_ref().map(|id| id.as_str()),
        Some("test-executor")
    );
    assert!(update.status.timestamp.is_some_and(|t| t > 1.6e9));

    // A second update gets a uuid of its own.
    let second = driver
        .handle()
        .update(status("t1", TaskState::Finished))
        .unwrap();
    assert_ne!(second, uuid);
    let finished = agent.expect_update().await;

    agent.acknowledge(&update);
    agent.acknowledge(&finished);
    for expected in [&uuid, &second] {
        match next_event(&mut driver).await {
            ExecutorEvent::Acknowledged { task_id, uuid } => {
                assert_eq!(task_id.as_str(), "t1");
                assert_eq!(&uuid, expected);
            }
            other => panic!("expected ACKNOWLEDGED, got {other:?}"),
        }
    }

    // A duplicate acknowledgement is not news to the executor.
    agent.acknowledge(&update);
    driver.handle().message(b"ping".to_vec()).unwrap();
    match agent.next_call().await.body {
        CallBody::Message(message) => assert_eq!(message.data.as_slice(), b"ping"),
        other => panic!("expected MESSAGE, got {other}"),
    }
    agent.send(Event::Message(strata_protocol::executor::Message {
        data: strata_protocol::Bytes::new(b"pong".to_vec()),
    }));
    match next_event(&mut driver).await {
        ExecutorEvent::Message(data) => assert_eq!(data.as_slice(), b"pong"),
        other => panic!("expected MESSAGE, got {other:?}"),
    }
    driver.stop().await;
    agent.stop();
}

#[actix_rt::test]
async fn kill_and_shutdown_reach_the_executor() {
    let (agent, mut driver, _sandbox) = subscribed(true).await;
    agent.kill("t1", Some(Duration::from_millis(1500)));
    match next_event(&mut driver).await {
        ExecutorEvent::Kill {
            task_id,
            kill_policy,
        } => {
            assert_eq!(task_id.as_str(), "t1");
            let grace = kill_policy.unwrap().grace_period.unwrap();
            assert_eq!(grace.to_duration(), Some(Duration::from_millis(1500)));
        }
        other => panic!("expected KILL, got {other:?}"),
    }
    agent.send(Event::Shutdown);
    assert_eq!(
        next_event(&mut driver).await,
        ExecutorEvent::Shutdown(ShutdownReason::Requested)
    );
    driver.stop().await;
    agent.stop();
}

#[actix_rt::test]
async fn resubscribes_with_unacknowledged_tasks_and_updates_after_an_agent_restart() {
    let (mut agent, mut driver, _sandbox) = subscribed(true).await;
    let handle = driver.handle();
    agent.launch(shell_task("acked", "true"));
    agent.launch(shell_task("pending", "true"));
    agent.launch(shell_task("silent", "true"));
    for _ in 0..3 {
        assert!(matches!(
            next_event(&mut driver).await,
            ExecutorEvent::Launch(_)
        ));
    }
    handle.update(status("acked", TaskState::Running)).unwrap();
    let acked = agent.expect_update().await;
    handle
        .update(status("pending", TaskState::Running))
        .unwrap();
    let pending = agent.expect_update().await;
    agent.acknowledge(&acked);
    assert!(matches!(
        next_event(&mut driver).await,
        ExecutorEvent::Acknowledged { .. }
    ));

    // The agent dies; the executor keeps an update made meanwhile.
    let mut agent = agent.restart().await.unwrap();
    let uuid_while_away = handle.update(status("acked", TaskState::Finished)).unwrap();

    let subscribe = agent.expect_subscribe().await;
    let task_ids: Vec<&str> = subscribe
        .unacknowledged_tasks
        .iter()
        .map(|task| task.task_id.as_str())
        .collect();
    assert_eq!(task_ids, ["silent"]);
    let uuids: Vec<_> = subscribe
        .unacknowledged_updates
        .iter()
        .map(|update| update.status.uuid.clone().unwrap())
        .collect();
    assert_eq!(
        uuids,
        [pending.status.uuid.clone().unwrap(), uuid_while_away]
    );

    agent.subscribed(&[]);
    assert!(matches!(
        next_event(&mut driver).await,
        ExecutorEvent::Subscribed(_)
    ));
    agent.acknowledge(&pending);
    match next_event(&mut driver).await {
        ExecutorEvent::Acknowledged { task_id, .. } => assert_eq!(task_id.as_str(), "pending"),
        other => panic!("expected ACKNOWLEDGED, got {other:?}"),
    }
    // Calls flow again on the new connection.
    handle.update(status("silent", TaskState::Running)).unwrap();
    let update = agent.expect_update().await;
    assert_eq!(update.status.task_id.as_str(), "silent");
    driver.stop().await;
    agent.stop();
}

#[actix_rt::test]
async fn an_update_made_while_subscribing_is_sent_once_subscribed() {
    let sandbox = tempfile::tempdir().unwrap();
    let mut agent = FakeAgent::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut driver = ExecutorDriver::start(config(&agent, sandbox.path(), true)).unwrap();
    agent.expect_subscribe().await;
    let uuid = driver
        .handle()
        .update(status("early", TaskState::Running))
        .unwrap();
    agent.subscribed(&[]);
    assert!(matches!(
        next_event(&mut driver).await,
        ExecutorEvent::Subscribed(_)
    ));
    let update = agent.expect_update().await;
    assert_eq!(update.status.uuid, Some(uuid));
    driver.stop().await;
    agent.stop();
}

#[actix_rt::test]
async fn shuts_down_when_the_agent_goes_away_and_the_framework_is_not_checkpointed() {
    let (agent, mut driver, _sandbox) = subscribed(false).await;
    agent.stop();
    assert_eq!(
        next_event(&mut driver).await,
        ExecutorEvent::Shutdown(ShutdownReason::AgentDisconnected)
    );
    driver.stop().await;
}

#[actix_rt::test]
async fn shuts_down_when_the_agent_stays_away_past_the_recovery_timeout() {
    let sandbox = tempfile::tempdir().unwrap();
    let mut agent = FakeAgent::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = config(&agent, sandbox.path(), true);
    config.recovery_timeout = Duration::from_millis(500);
    let mut driver = ExecutorDriver::start(config).unwrap();
    agent.expect_subscribe().await;
    agent.subscribed(&[]);
    assert!(matches!(
        next_event(&mut driver).await,
        ExecutorEvent::Subscribed(_)
    ));
    agent.stop();
    assert_eq!(
        next_event(&mut driver).await,
        ExecutorEvent::Shutdown(ShutdownReason::RecoveryTimeout)
    );
    driver.stop().await;
}

#[actix_rt::test]
async fn sends_heartbeats_while_subscribed() {
    let sandbox = tempfile::tempdir().unwrap();
    let mut agent = FakeAgent::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut config = config(&agent, sandbox.path(), true);
    config.heartbeat_interval = Duration::from_millis(100);
    let mut driver = ExecutorDriver::start(config).unwrap();
    agent.expect_subscribe().await;
    agent.subscribed(&[]);
    assert!(matches!(
        next_event(&mut driver).await,
        ExecutorEvent::Subscribed(_)
    ));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut heartbeats = 0;
    while heartbeats < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeats in time"
        );
        if let Some(call) = agent.call_within(DEADLINE).await
            && matches!(call.body, CallBody::Heartbeat)
        {
            heartbeats += 1;
        }
    }
    driver.stop().await;
    agent.stop();
}
