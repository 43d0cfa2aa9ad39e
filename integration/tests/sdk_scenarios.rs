//! The Mesos framework scenarios (`mesos-api.md` §2) driven through the framework SDK against
//! a real master and agent over TCP, with command tasks run by the real `strata executor`.

use std::time::Duration;

use strata_agent::server::{AgentHandle, Isolation};
use strata_framework_sdk::scheduler::{
    Client, Event, Events, Framework, FrameworkBuilder, Offers, Plan, Scheduler, SdkError,
    Subscribed, TaskSpec,
};
use strata_integration::cluster::{DEADLINE, agent_options, start_agent, start_master};
use strata_master::server::{MasterHandle, MasterOptions};
use strata_protocol::mesos::{
    FrameworkCapabilityType, Launch, Operation, OperationBody, TaskState, TaskStatus,
    TaskStatusReason, TaskStatusSource,
};
use strata_protocol::scheduler::{Accept, CallBody};
use strata_protocol::{AgentId, FrameworkId, Resources, TaskId};

/// How long a test watches for something that must not happen (an offer while suppressed):
/// many allocation runs at the test master's 50 ms interval.
const QUIET: Duration = Duration::from_millis(600);

struct Cluster {
    master: MasterHandle,
    agent: AgentHandle,
    _work_dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with(start_master().await).await
    }

    async fn start_with(master: MasterHandle) -> Cluster {
        let work_dir = tempfile::tempdir().unwrap();
        let mut options = agent_options(
            &master,
            work_dir.path(),
            "cpus:2;mem:1024",
            Isolation::Posix,
        );
        // Unacknowledged updates come back quickly, for the failover scenario.
        options.status_update_retry_min = Duration::from_millis(300);
        let agent = start_agent(options).await;
        Cluster {
            master,
            agent,
            _work_dir: work_dir,
        }
    }

    /// A framework for this cluster with quick reconnection.
    fn framework(&self, name: &str) -> FrameworkBuilder {
        framework_for(&self.master, name)
    }

    async fn n_pending_updates(&self) -> usize {
        self.agent
            .actor
            .send(strata_agent::actor::Inspect(Box::new(|state, _| {
                state.n_pending_updates()
            })))
            .await
            .unwrap()
    }

    async fn agent_task_state(
        &self,
        framework_id: &FrameworkId,
        task_id: &TaskId,
    ) -> Option<TaskState> {
        let (framework_id, task_id) = (framework_id.clone(), task_id.clone());
        self.agent
            .actor
            .send(strata_agent::actor::Inspect(Box::new(move |state, _| {
                state.task_state(&framework_id, &task_id)
            })))
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.agent.stop_and_destroy().await;
        self.master.stop().await;
    }
}

fn framework_for(master: &MasterHandle, name: &str) -> FrameworkBuilder {
    Framework::builder(name)
        .master(master.addr.to_string())
        .user("root")
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .refuse_seconds(1.0)
        .subscribe_timeout(DEADLINE)
}

/// Waits for the first event `pick` takes; the others are dropped (offers among them are
/// declined by the SDK).
async fn wait_for<T>(
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("event stream ended while waiting for {what}"))
            .expect("driver alive");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

async fn next_offers(events: &mut Events) -> Offers {
    wait_for(events, "offers", |event| match event {
        Event::Offers(offers) => Some(offers),
        _ => None,
    })
    .await
}

/// Waits for updates of `task_id` until one in `state`; returns the states seen on the way.
async fn wait_for_state(events: &mut Events, task_id: &str, state: TaskState) -> Vec<TaskStatus> {
    let mut seen = Vec::new();
    let what = format!("{task_id} in {state}");
    loop {
        let status = wait_for(events, &what, |event| match event {
            Event::Update(status) if status.task_id.as_str() == task_id => Some(status),
            _ => None,
        })
        .await;
        let done = status.state == state;
        let terminal = status.state.is_terminal();
        seen.push(status);
        if done {
            return seen;
        }
        assert!(!terminal, "{task_id} ended before {state}: {seen:#?}");
    }
}

/// Asserts that no offer arrives for [`QUIET`].
async fn assert_no_offers(events: &mut Events) {
    let quiet = tokio::time::sleep(QUIET);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            () = &mut quiet => return,
            event = events.next() => match event {
                Some(Ok(Event::Offers(offers))) => panic!("unexpected offers {offers:?}"),
                Some(Ok(_)) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    }
}

/// Launches one `sleep` task through packing and waits until it runs; returns its agent.
async fn launch_sleeper(client: &Client, events: &mut Events, task_id: &str) -> AgentId {
    let offers = next_offers(events).await;
    let mut pending = vec![TaskSpec::command(task_id, "sleep 600").cpus(0.5).mem_mb(32)];
    let plan = offers.pack(&mut pending);
    assert!(pending.is_empty(), "the task fits the offer");
    let agent_id = plan.launches()[0].agent_id.clone();
    client.accept(plan).await.unwrap();
    drop(offers);
    wait_for_state(events, task_id, TaskState::Running).await;
    agent_id
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Row 1: SUBSCRIBE → SUBSCRIBED with a framework ID, then offers of the agent's resources.
#[actix_rt::test]
async fn subscribe_yields_subscribed_then_offers() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row1").subscribe().await.unwrap();
    let subscribed = wait_for(&mut events, "subscribed", |event| match event {
        Event::Subscribed(subscribed) => Some(subscribed),
        _ => None,
    })
    .await;
    assert!(!subscribed.resubscribed);
    assert_eq!(Some(subscribed.framework_id.clone()), client.framework_id());
    assert_eq!(subscribed.master, cluster.master.pid);
    let offers = next_offers(&mut events).await;
    let offered = Resources::try_from(offers[0].resources.clone()).unwrap();
    assert_eq!(offered.cpus(), Some(2.0));
    assert_eq!(offered.mem(), Some(1024.0));
    assert_eq!(offers[0].framework_id, subscribed.framework_id);
    drop(offers);
    cluster.stop().await;
}

// An unreachable master in the list is skipped: the SDK subscribes with the next one.
#[actix_rt::test]
async fn unreachable_master_in_the_list_is_skipped() {
    let cluster = Cluster::start().await;
    // Nothing listens on a port that was just bound and released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_client, mut events) = Framework::builder("list")
        .master(closed.to_string())
        .master(cluster.master.addr.to_string())
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .subscribe_timeout(DEADLINE)
        .subscribe()
        .await
        .unwrap();
    let subscribed = wait_for(&mut events, "subscribed", |event| match event {
        Event::Subscribed(subscribed) => Some(subscribed),
        _ => None,
    })
    .await;
    assert_eq!(subscribed.master, cluster.master.pid);
    cluster.stop().await;
}

// Offers the program drops untouched are declined (here with no refusal), so the resources
// come back in a new offer.
#[actix_rt::test]
async fn untouched_offers_are_declined_when_dropped() {
    let cluster = Cluster::start().await;
    let (_client, mut events) = cluster
        .framework("auto-decline")
        .refuse_seconds(0.0)
        .subscribe()
        .await
        .unwrap();
    let first = next_offers(&mut events).await;
    let first_id = first[0].id.clone();
    drop(first);
    let again = next_offers(&mut events).await;
    assert_ne!(again[0].id, first_id);
    drop(again);
    cluster.stop().await;
}

// Row 6: a packed command task goes STARTING → RUNNING → FINISHED, and the SDK acknowledges
// every update, so the agent holds none.
#[actix_rt::test]
async fn packed_command_task_finishes_and_its_updates_are_acknowledged() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row6").subscribe().await.unwrap();
    let offers = next_offers(&mut events).await;
    let mut pending = vec![TaskSpec::command("hello", "echo hi").cpus(0.1).mem_mb(32)];
    let plan = offers.pack(&mut pending);
    assert!(pending.is_empty());
    client.accept(plan).await.unwrap();
    drop(offers);
    let seen = wait_for_state(&mut events, "hello", TaskState::Finished).await;
    let states: Vec<TaskState> = seen.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        vec![TaskState::Starting, TaskState::Running, TaskState::Finished]
    );
    assert!(
        seen.iter().all(|s| s.uuid.is_some()),
        "agent updates carry uuids"
    );
    wait_until("the agent has no unacknowledged update", || async {
        cluster.n_pending_updates().await == 0
    })
    .await;
    cluster.stop().await;
}

// Row 7: a task asking for more than its offer gets TASK_ERROR, and the resources come back.
#[actix_rt::test]
async fn task_larger_than_its_offer_fails_with_task_error_and_resources_return() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row7").subscribe().await.unwrap();
    let offers = next_offers(&mut events).await;
    let mut too_big = Resources::parse("cpus:64;mem:32", "*").unwrap();
    too_big.allocate("*");
    let task = TaskSpec::command("greedy", "true")
        .to_task_info(&offers[0].agent_id, &too_big)
        .unwrap();
    let mut plan = Plan::new().refuse_for(Duration::ZERO);
    plan.launch(&offers[0], vec![task]);
    client.accept(plan).await.unwrap();
    drop(offers);
    let status = wait_for_state(&mut events, "greedy", TaskState::Error).await;
    assert_eq!(
        status.last().unwrap().reason,
        Some(TaskStatusReason::ReasonTaskInvalid)
    );
    let offers = next_offers(&mut events).await;
    let offered = Resources::try_from(offers[0].resources.clone()).unwrap();
    assert_eq!(offered.cpus(), Some(2.0));
    drop(offers);
    cluster.stop().await;
}

// Row 8: an ACCEPT naming the same offer twice is refused: its tasks are TASK_LOST with
// REASON_INVALID_OFFERS (TASK_DROPPED for a partition-aware framework), sent by the master.
#[actix_rt::test]
async fn accept_with_a_duplicate_offer_id_drops_its_tasks() {
    for (capability, expected) in [
        (None, TaskState::Lost),
        (
            Some(FrameworkCapabilityType::PartitionAware),
            TaskState::Dropped,
        ),
    ] {
        let cluster = Cluster::start().await;
        let mut builder = cluster.framework("row8");
        if let Some(capability) = capability {
            builder = builder.capability(capability);
        }
        let (client, mut events) = builder.subscribe().await.unwrap();
        let offers = next_offers(&mut events).await;
        let mut pending = vec![TaskSpec::command("twice", "true").cpus(0.1).mem_mb(16)];
        let plan = offers.pack(&mut pending);
        let launch = plan.launches()[0].clone();
        let accept = Accept {
            offer_ids: vec![launch.offer_id.clone(), launch.offer_id],
            operations: vec![Operation::from(OperationBody::Launch(Launch {
                task_infos: launch.tasks,
            }))],
            filters: None,
        };
        client.call(CallBody::Accept(accept)).await.unwrap();
        let seen = wait_for_state(&mut events, "twice", expected).await;
        let status = seen.last().unwrap();
        assert_eq!(status.reason, Some(TaskStatusReason::ReasonInvalidOffers));
        assert_eq!(status.source, Some(TaskStatusSource::Master));
        drop(offers);
        cluster.stop().await;
    }
}

// Row 10: DECLINE with refuse_seconds 0 → the same resources in a later allocation.
#[actix_rt::test]
async fn declined_offer_with_no_refusal_is_offered_again() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row10").subscribe().await.unwrap();
    let offers = next_offers(&mut events).await;
    let first = offers[0].clone();
    client
        .decline_for([first.id.clone()], Duration::ZERO)
        .await
        .unwrap();
    drop(offers);
    let again = next_offers(&mut events).await;
    assert_ne!(again[0].id, first.id);
    assert_eq!(again[0].agent_id, first.agent_id);
    assert_eq!(
        Resources::try_from(again[0].resources.clone()).unwrap(),
        Resources::try_from(first.resources).unwrap()
    );
    drop(again);
    cluster.stop().await;
}

// Row 11: DECLINE for an hour → no offers; REVIVE → an offer at once.
#[actix_rt::test]
async fn decline_for_an_hour_then_revive_brings_the_offer_back() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row11").subscribe().await.unwrap();
    let offers = next_offers(&mut events).await;
    offers
        .decline_all_for(Duration::from_secs(3600))
        .await
        .unwrap();
    drop(offers);
    assert_no_offers(&mut events).await;
    client.revive().await.unwrap();
    let offers = next_offers(&mut events).await;
    assert_eq!(offers.len(), 1);
    drop(offers);
    cluster.stop().await;
}

// Row 12: SUPPRESS → no offers, even for resources that free up; REVIVE → offers.
#[actix_rt::test]
async fn suppress_stops_offers_and_revive_restores_them() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row12").subscribe().await.unwrap();
    let offers = next_offers(&mut events).await;
    client.suppress().await.unwrap();
    // Declined with no refusal after the SUPPRESS: the allocator gets the resources back and
    // must keep them.
    offers.decline_all_for(Duration::ZERO).await.unwrap();
    drop(offers);
    assert_no_offers(&mut events).await;
    client.revive().await.unwrap();
    let offers = next_offers(&mut events).await;
    assert_eq!(offers.len(), 1);
    drop(offers);
    cluster.stop().await;
}

// Row 13: an offer the framework holds past `offer_timeout` is rescinded and made again.
#[actix_rt::test]
async fn offer_held_past_the_offer_timeout_is_rescinded_and_reoffered() {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    options.offer_timeout = Some(Duration::from_millis(300));
    let master = strata_master::server::start(options).await.unwrap();
    let cluster = Cluster::start_with(master).await;
    let (_client, mut events) = cluster.framework("row13").subscribe().await.unwrap();
    // Held, neither used nor declined.
    let held = next_offers(&mut events).await;
    let held_id = held[0].id.clone();
    let rescinded = wait_for(&mut events, "rescind", |event| match event {
        Event::Rescind(offer_id) => Some(offer_id),
        _ => None,
    })
    .await;
    assert_eq!(rescinded, held_id);
    // Dropping a rescinded offer declines nothing: the SDK forgot it.
    drop(held);
    let again = next_offers(&mut events).await;
    assert_ne!(again[0].id, held_id);
    drop(again);
    cluster.stop().await;
}

// Rows 9 and 21: KILL → TASK_KILLED and the task's resources are offered again; KILL of an
// unknown task → TASK_LOST from the master with REASON_RECONCILIATION.
#[actix_rt::test]
async fn kill_gives_killed_and_frees_resources_and_unknown_task_is_lost() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster
        .framework("row21")
        .refuse_seconds(0.0)
        .subscribe()
        .await
        .unwrap();
    launch_sleeper(&client, &mut events, "sleeper").await;
    client.kill(&TaskId::new("sleeper").unwrap()).await.unwrap();
    let seen = wait_for_state(&mut events, "sleeper", TaskState::Killed).await;
    assert_eq!(seen.last().unwrap().state, TaskState::Killed);
    wait_for(
        &mut events,
        "an offer with the whole agent",
        |event| match event {
            Event::Offers(offers) => {
                let offered = Resources::try_from(offers[0].resources.clone()).unwrap();
                (offered.cpus() == Some(2.0)).then_some(())
            }
            _ => None,
        },
    )
    .await;
    client.kill(&TaskId::new("nobody").unwrap()).await.unwrap();
    let lost = wait_for_state(&mut events, "nobody", TaskState::Lost).await;
    let lost = lost.last().unwrap();
    assert_eq!(lost.source, Some(TaskStatusSource::Master));
    assert_eq!(lost.reason, Some(TaskStatusReason::ReasonReconciliation));
    assert!(lost.uuid.is_none());
    cluster.stop().await;
}

// Rows 25 and 26: explicit reconciliation of a running task → TASK_RUNNING with
// REASON_RECONCILIATION and no uuid; of an unknown task → TASK_LOST.
#[actix_rt::test]
async fn explicit_reconcile_reports_running_and_unknown_tasks() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row25").subscribe().await.unwrap();
    let agent_id = launch_sleeper(&client, &mut events, "steady").await;
    client
        .reconcile([(TaskId::new("steady").unwrap(), Some(agent_id.clone()))])
        .await
        .unwrap();
    let status = wait_for_state(&mut events, "steady", TaskState::Running).await;
    let status = status.last().unwrap();
    assert_eq!(status.reason, Some(TaskStatusReason::ReasonReconciliation));
    assert!(status.uuid.is_none());
    client
        .reconcile([(TaskId::new("ghost").unwrap(), Some(agent_id))])
        .await
        .unwrap();
    let lost = wait_for_state(&mut events, "ghost", TaskState::Lost).await;
    assert_eq!(
        lost.last().unwrap().reason,
        Some(TaskStatusReason::ReasonReconciliation)
    );
    cluster.stop().await;
}

// Rows 27 and 28, and implicit reconciliation: a second instance subscribing with the same
// framework ID takes over; the first gets ERROR "Framework failed over" and its stream ends.
// The SDK reconciles on subscription, so the new instance learns of the task at once; the
// update the old instance never acknowledged is retried to the new one, which acknowledges it
// and the ones after.
#[actix_rt::test]
async fn failover_moves_the_framework_and_its_unacknowledged_updates_to_the_new_instance() {
    let cluster = Cluster::start().await;
    let (old_client, mut old_events) = cluster
        .framework("row27")
        .manual_acks()
        .failover_timeout_secs(60)
        .subscribe()
        .await
        .unwrap();
    let framework_id = old_client.framework_id().unwrap();
    let offers = next_offers(&mut old_events).await;
    let mut pending = vec![
        TaskSpec::command("survivor", "sleep 600")
            .cpus(0.5)
            .mem_mb(32),
    ];
    old_client.accept(offers.pack(&mut pending)).await.unwrap();
    drop(offers);
    // Not acknowledged: the agent holds the update, and sends nothing later for the task.
    let starting = wait_for_state(&mut old_events, "survivor", TaskState::Starting).await;
    assert!(starting.last().unwrap().uuid.is_some());
    assert!(cluster.n_pending_updates().await > 0);

    let (new_client, mut new_events) = cluster
        .framework("row27")
        .framework_id(framework_id.clone())
        .failover_timeout_secs(60)
        .subscribe()
        .await
        .unwrap();
    assert_eq!(new_client.framework_id(), Some(framework_id.clone()));
    let message = wait_for(&mut old_events, "failover error", |event| match event {
        Event::Error(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(message, "Framework failed over");
    let end = tokio::time::timeout(DEADLINE, old_events.next())
        .await
        .unwrap();
    assert!(
        end.is_none(),
        "the old stream ends after the error: {end:?}"
    );
    assert!(matches!(
        old_client.revive().await,
        Err(SdkError::NotSubscribed)
    ));

    let mut reconciled = false;
    let mut retried = false;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !(reconciled && retried) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reconciled {reconciled}, retried {retried}"
        );
        let status = wait_for(&mut new_events, "survivor update", |event| match event {
            Event::Update(status) if status.task_id.as_str() == "survivor" => Some(status),
            _ => None,
        })
        .await;
        if status.reason == Some(TaskStatusReason::ReasonReconciliation) {
            assert!(status.uuid.is_none());
            reconciled = true;
        } else if status.uuid.is_some() {
            retried = true;
        }
    }
    wait_for_state(&mut new_events, "survivor", TaskState::Running).await;
    wait_until("the new instance acknowledged every update", || async {
        cluster.n_pending_updates().await == 0
    })
    .await;
    cluster.stop().await;
}

// Row 29: TEARDOWN kills the framework's tasks and removes it; resubscribing is refused.
#[actix_rt::test]
async fn teardown_kills_tasks_and_the_framework_cannot_come_back() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster.framework("row29").subscribe().await.unwrap();
    let framework_id = client.framework_id().unwrap();
    launch_sleeper(&client, &mut events, "doomed").await;
    client.teardown().await.unwrap();
    let end = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.next().await {
            event.expect("clean stop");
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends after teardown");
    let task_id = TaskId::new("doomed").unwrap();
    wait_until("the agent killed the task", || async {
        cluster.agent_task_state(&framework_id, &task_id).await == Some(TaskState::Killed)
            || cluster
                .agent_task_state(&framework_id, &task_id)
                .await
                .is_none()
    })
    .await;
    let completed = cluster
        .master
        .actor
        .send(strata_master::actor::Inspect(Box::new(|state, _| {
            state.completed_frameworks()
        })))
        .await
        .unwrap();
    let removed = completed
        .iter()
        .find(|f| f.id == framework_id)
        .expect("the framework is among the completed ones");
    let states: Vec<(String, TaskState)> = removed
        .completed_tasks
        .iter()
        .map(|task| (task.task_id.as_str().to_owned(), task.state))
        .collect();
    assert_eq!(states, vec![("doomed".to_owned(), TaskState::Killed)]);
    let err = cluster
        .framework("row29")
        .framework_id(framework_id)
        .subscribe()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::Refused(message) if message == "Framework has been removed"),
        "{err}"
    );
    cluster.stop().await;
}

// SDK reconnection: the master restarts on the same address; the SDK notices, resubscribes by
// itself with the same framework ID, and the task (its agent reregistered) is reported again.
#[actix_rt::test]
async fn sdk_resubscribes_after_the_master_restarts_and_finds_its_task() {
    let cluster = Cluster::start().await;
    let (client, mut events) = cluster
        .framework("restart")
        .failover_timeout_secs(60)
        .checkpoint(true)
        .subscribe()
        .await
        .unwrap();
    let framework_id = client.framework_id().unwrap();
    let agent_id = launch_sleeper(&client, &mut events, "durable").await;

    let Cluster {
        master,
        agent,
        _work_dir,
    } = cluster;
    let addr = master.addr;
    master.stop().await;
    wait_for(&mut events, "disconnected", |event| {
        matches!(event, Event::Disconnected).then_some(())
    })
    .await;
    let mut options = MasterOptions::new(addr);
    options.allocation_interval = Duration::from_millis(50);
    let master = strata_master::server::start(options).await.unwrap();
    let cluster = Cluster {
        master,
        agent,
        _work_dir,
    };

    let subscribed = wait_for(&mut events, "resubscribed", |event| match event {
        Event::Subscribed(subscribed) => Some(subscribed),
        _ => None,
    })
    .await;
    assert!(subscribed.resubscribed);
    assert_eq!(subscribed.framework_id, framework_id);
    wait_until("the agent reregistered", || async {
        let agents = cluster
            .master
            .actor
            .send(strata_master::actor::Inspect(Box::new(|state, _| {
                state.agents()
            })))
            .await
            .unwrap();
        !agents.is_empty()
    })
    .await;
    client
        .reconcile([(TaskId::new("durable").unwrap(), Some(agent_id))])
        .await
        .unwrap();
    wait_for_state(&mut events, "durable", TaskState::Running).await;
    cluster.stop().await;
}

// Row 5: a master that goes silent past the heartbeat timeout counts as lost; the SDK
// resubscribes by itself, keeping the framework ID.
#[actix_rt::test]
async fn heartbeat_watchdog_resubscribes_with_the_same_framework_id() {
    let cluster = Cluster::start().await;
    // Master heartbeats come every 15 s; a suppressed framework gets nothing else.
    let (client, mut events) = cluster
        .framework("row5")
        .heartbeat_timeout(Duration::from_millis(500))
        .subscribe()
        .await
        .unwrap();
    let framework_id = client.framework_id().unwrap();
    client.suppress().await.unwrap();
    wait_for(&mut events, "disconnected", |event| {
        matches!(event, Event::Disconnected).then_some(())
    })
    .await;
    let subscribed = wait_for(&mut events, "resubscribed", |event| match event {
        Event::Subscribed(subscribed) => Some(subscribed),
        _ => None,
    })
    .await;
    assert!(subscribed.resubscribed);
    assert_eq!(subscribed.framework_id, framework_id);
    assert!(client.is_subscribed());
    cluster.stop().await;
}

/// A framework written as callbacks: launches one task, records what happens, stops when the
/// task finished.
#[derive(Default)]
struct Hello {
    pending: Vec<TaskSpec>,
    registered: Vec<Subscribed>,
    states: Vec<TaskState>,
}

impl Scheduler for Hello {
    async fn registered(&mut self, client: &Client, subscribed: &Subscribed) {
        self.registered.push(subscribed.clone());
        client.revive().await.unwrap();
    }

    async fn offers(&mut self, client: &Client, offers: Offers) {
        let plan = offers.pack(&mut self.pending);
        if !plan.is_empty() {
            client.accept(plan).await.unwrap();
        }
    }

    async fn update(&mut self, client: &Client, status: TaskStatus) {
        self.states.push(status.state);
        if status.state.is_terminal() {
            client.stop();
        }
    }
}

// The callback adapter drives the same flow: registered, offers packed, updates until done.
#[actix_rt::test]
async fn scheduler_trait_runs_a_task_to_completion() {
    let cluster = Cluster::start().await;
    let mut hello = Hello {
        pending: vec![TaskSpec::command("hi", "echo hi").cpus(0.1).mem_mb(16)],
        ..Hello::default()
    };
    let run = cluster.framework("trait").run(&mut hello);
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the task finishes in time")
        .unwrap();
    assert_eq!(hello.registered.len(), 1);
    assert_eq!(
        hello.states,
        vec![TaskState::Starting, TaskState::Running, TaskState::Finished]
    );
    wait_until("the agent has no unacknowledged update", || async {
        cluster.n_pending_updates().await == 0
    })
    .await;
    cluster.stop().await;
}
