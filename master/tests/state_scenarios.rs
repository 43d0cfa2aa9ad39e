//! The master scenarios of `mesos-api.md` §2, driven through `MasterState` with time passed in.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use strata_protocol::internal::Message;
use strata_protocol::mesos::TaskState;
use strata_protocol::scheduler::{self, CallBody, Event};
use strata_protocol::{Resources, TaskId};

const AGENT: &str = "cpus:2;mem:1024";

/// One agent, one framework holding one offer for the whole agent.
fn offered() -> (
    Harness,
    strata_protocol::AgentId,
    strata_protocol::FrameworkId,
    strata_master::state::FrameworkConn,
    strata_protocol::mesos::Offer,
) {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({}));
    let mut offers = h.offers_now(&conn);
    assert_eq!(offers.len(), 1, "one offer for the one agent");
    let offer = offers.remove(0);
    (h, agent_id, framework_id, conn, offer)
}

#[test]
fn subscribe_gets_an_id_and_an_offer_for_the_whole_agent() {
    let (h, agent_id, framework_id, _, offer) = offered();
    assert!(framework_id.as_str().starts_with("m1-"));
    assert_eq!(offer.agent_id, agent_id);
    assert_eq!(offer.framework_id, framework_id);
    assert_eq!(resources_of(&offer), Resources::parse(AGENT, "*").unwrap());
    assert_eq!(offer.allocation_info.unwrap().role.as_deref(), Some("*"));
    assert_eq!(h.state.offers().len(), 1);
}

#[test]
fn launch_sends_run_task_and_updates_reach_the_framework() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t1", &agent_id, "cpus:1;mem:128")],
        5.0,
    );
    let messages = h.take_agent_messages(&agent_pid(1));
    let Some(Message::RunTask(run)) = messages.first() else {
        panic!("no RunTask: {messages:?}")
    };
    assert_eq!(run.task.task_id.as_str(), "t1");
    assert!(
        run.task
            .resources
            .iter()
            .all(|r| r.allocation_info.is_some()),
        "allocation injected"
    );

    let task_id = TaskId::new("t1").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Starting,
    );
    let uuid = h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    let updates = h.take_updates(&conn);
    let states: Vec<_> = updates.iter().map(|s| s.state).collect();
    assert_eq!(states, [TaskState::Starting, TaskState::Running]);
    assert_eq!(
        updates[1].uuid.as_ref(),
        Some(&uuid),
        "agent updates carry their uuid"
    );
    assert_eq!(h.state.task_counts().get(&TaskState::Running), Some(&1));
}

#[test]
fn task_asking_more_than_the_offer_gets_task_error_and_resources_are_reoffered() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("big", &agent_id, "cpus:3;mem:128")],
        0.0,
    );
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Error);
    assert_eq!(reason_name(&updates[0]), "REASON_TASK_INVALID");
    assert!(
        updates[0].message.as_ref().unwrap().contains("needs"),
        "{:?}",
        updates[0].message
    );
    assert!(
        h.take_agent_messages(&agent_pid(1)).is_empty(),
        "nothing launched"
    );
    let again = h.offers_now(&conn);
    assert_eq!(again.len(), 1);
    assert_eq!(
        resources_of(&again[0]),
        Resources::parse(AGENT, "*").unwrap()
    );
}

#[test]
fn duplicate_task_id_and_task_without_command_get_task_error() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    let mut no_command = task("c", &agent_id, "cpus:0.1;mem:32");
    no_command.command = None;
    let tasks = vec![
        task("a", &agent_id, "cpus:0.1;mem:32"),
        task("a", &agent_id, "cpus:0.1;mem:32"),
        no_command,
    ];
    h.accept(&conn, &framework_id, &[&offer.id], tasks, 5.0);
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates.iter().all(|s| s.state == TaskState::Error));
    assert!(
        updates[0]
            .message
            .as_ref()
            .unwrap()
            .contains("already in use")
    );
    assert!(
        updates[1]
            .message
            .as_ref()
            .unwrap()
            .contains("exactly one of")
    );
    assert_eq!(
        h.take_agent_messages(&agent_pid(1)).len(),
        1,
        "the first 'a' runs"
    );
}

#[test]
fn duplicate_offer_gives_task_lost_or_dropped_with_invalid_offers() {
    for (partition_aware, want) in [(false, TaskState::Lost), (true, TaskState::Dropped)] {
        let mut h = Harness::new();
        let agent_id = h.register_agent(1, AGENT);
        let conn = scheduler_conn(1);
        let framework_id = h.subscribe(&conn, capabilities(partition_aware));
        let offer = h.offers_now(&conn).remove(0);
        h.accept(
            &conn,
            &framework_id,
            &[&offer.id, &offer.id],
            vec![task("t", &agent_id, "cpus:1")],
            0.0,
        );
        let updates = h.take_updates(&conn);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].state, want);
        assert_eq!(reason_name(&updates[0]), "REASON_INVALID_OFFERS");
        assert_eq!(source_name(&updates[0]), "SOURCE_MASTER");
        assert!(
            updates[0].uuid.is_none(),
            "master updates need no acknowledgement"
        );
        assert!(h.take_agent_messages(&agent_pid(1)).is_empty());
        assert_eq!(
            h.offers_now(&conn).len(),
            1,
            "the valid offer's resources come back"
        );
    }
}

#[test]
fn offers_across_two_agents_are_refused() {
    let mut h = Harness::new();
    let a1 = h.register_agent(1, AGENT);
    h.register_agent(2, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({}));
    let offers = h.offers_now(&conn);
    assert_eq!(offers.len(), 2);
    h.accept(
        &conn,
        &framework_id,
        &[&offers[0].id, &offers[1].id],
        vec![task("t", &a1, "cpus:1")],
        0.0,
    );
    let updates = h.take_updates(&conn);
    assert_eq!(updates[0].state, TaskState::Lost);
    assert!(
        updates[0]
            .message
            .as_ref()
            .unwrap()
            .contains("more than one agent")
    );
}

#[test]
fn killed_task_gives_its_resources_back() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t1", &agent_id, "cpus:2;mem:1024")],
        5.0,
    );
    h.take_agent_messages(&agent_pid(1));
    let task_id = TaskId::new("t1").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    assert!(h.offers_now(&conn).is_empty(), "the whole agent is in use");
    h.call(&conn, Some(&framework_id), kill_call("t1")).unwrap();
    let kills = h.take_agent_messages(&agent_pid(1));
    assert!(matches!(kills.as_slice(), [Message::KillTask(kill)] if kill.task_id == task_id));
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Killed,
    );
    let offers = h.offers_now(&conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        resources_of(&offers[0]),
        Resources::parse(AGENT, "*").unwrap()
    );
}

#[test]
fn kill_of_unknown_task_gives_task_lost_from_the_master() {
    let (mut h, _, framework_id, conn, _) = offered();
    h.call(&conn, Some(&framework_id), kill_call("nope"))
        .unwrap();
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Lost);
    assert_eq!(reason_name(&updates[0]), "REASON_RECONCILIATION");
    assert_eq!(source_name(&updates[0]), "SOURCE_MASTER");
}

fn decline(
    h: &mut Harness,
    conn: &strata_master::state::FrameworkConn,
    framework_id: &strata_protocol::FrameworkId,
    offer: &strata_protocol::mesos::Offer,
    refuse_seconds: f64,
) {
    let decline = json!({"offer_ids": [offer.id], "filters": {"refuse_seconds": refuse_seconds}});
    h.call(
        conn,
        Some(framework_id),
        CallBody::Decline(serde_json::from_value(decline).unwrap()),
    )
    .unwrap();
}

#[test]
fn decline_with_refuse_zero_is_reoffered_at_the_next_allocation() {
    let (mut h, _, framework_id, conn, offer) = offered();
    decline(&mut h, &conn, &framework_id, &offer, 0.0);
    let again = h.offers_now(&conn);
    assert_eq!(again.len(), 1);
    assert_eq!(resources_of(&again[0]), resources_of(&offer));
    assert_ne!(again[0].id, offer.id, "a new offer, not the old one");
}

#[test]
fn a_zero_refusal_lasts_until_the_next_batch_allocation() {
    let (mut h, _, framework_id, conn, offer) = offered();
    decline(&mut h, &conn, &framework_id, &offer, 0.0);
    // The run the decline asks for must not offer the same resources straight back, or a
    // framework declining for 0 s trades offers and declines with the master without end.
    h.tick();
    assert!(
        h.take_offers(&conn).is_empty(),
        "re-offered in the run the decline triggered"
    );
    let again = h.offers_now(&conn);
    assert_eq!(again.len(), 1, "back at the next batch allocation");
    assert_eq!(resources_of(&again[0]), resources_of(&offer));
}

#[test]
fn leftovers_refused_for_0_s_return_at_once_with_what_a_finished_task_frees() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t1", &agent_id, "cpus:2;mem:128")],
        0.0,
    );
    h.take_agent_messages(&agent_pid(1));
    h.tick();
    assert!(
        h.take_offers(&conn).is_empty(),
        "the memory left over was offered straight back"
    );
    let task_id = TaskId::new("t1").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Finished,
    );
    // No time passes: the run the finished task asks for offers its CPUs with the leftovers.
    h.tick();
    let offers = h.take_offers(&conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        resources_of(&offers[0]),
        Resources::parse(AGENT, "*").unwrap()
    );
}

#[test]
fn decline_for_an_hour_then_revive_offers_at_once() {
    let (mut h, _, framework_id, conn, offer) = offered();
    decline(&mut h, &conn, &framework_id, &offer, 3600.0);
    h.advance(Duration::from_secs(30 * 60));
    assert!(h.take_offers(&conn).is_empty(), "filtered for the hour");
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Revive(scheduler::Revive { roles: vec![] }),
    )
    .unwrap();
    h.tick();
    assert_eq!(
        h.take_offers(&conn).len(),
        1,
        "revive clears the filter at once"
    );
}

#[test]
fn suppress_stops_offers_until_revive() {
    let (mut h, _, framework_id, conn, offer) = offered();
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Suppress(scheduler::Suppress { roles: vec![] }),
    )
    .unwrap();
    decline(&mut h, &conn, &framework_id, &offer, 0.0);
    h.advance(Duration::from_secs(100 * 60));
    assert!(h.take_offers(&conn).is_empty());
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Revive(scheduler::Revive { roles: vec![] }),
    )
    .unwrap();
    h.tick();
    assert_eq!(h.take_offers(&conn).len(), 1);
}

#[test]
fn subscribing_with_the_role_suppressed_gets_no_offers() {
    let mut h = Harness::new();
    h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let subscribe = json!({"framework_info": {"user": "u", "name": "n", "role": "web"}, "suppressed_roles": ["web"]});
    h.call(
        &conn,
        None,
        CallBody::Subscribe(serde_json::from_value(subscribe).unwrap()),
    )
    .unwrap();
    h.advance(Duration::from_secs(600));
    assert!(h.take_offers(&conn).is_empty());
}

#[test]
fn offer_timeout_rescinds_and_reoffers_but_never_a_declined_offer() {
    let mut h = Harness::with_config(|c| c.offer_timeout = Some(Duration::from_secs(30)));
    h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({}));
    let offer = h.offers_now(&conn).remove(0);
    h.advance(Duration::from_secs(31));
    assert_eq!(h.take_rescinds(&conn), std::slice::from_ref(&offer.id));
    let again = h.take_offers(&conn);
    assert_eq!(again.len(), 1, "re-offered after the rescind");
    decline(&mut h, &conn, &framework_id, &again[0], 3600.0);
    h.advance(Duration::from_secs(120));
    assert!(
        h.take_rescinds(&conn).is_empty(),
        "a declined offer is never rescinded"
    );
}

#[test]
fn reconcile_explicit_and_implicit() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![
            task("r", &agent_id, "cpus:1"),
            task("f", &agent_id, "cpus:0.5"),
        ],
        5.0,
    );
    let running = TaskId::new("r").unwrap();
    let finished = TaskId::new("f").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &running,
        TaskState::Running,
    );
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &finished,
        TaskState::Finished,
    );
    h.take_updates(&conn);

    let explicit = json!({"tasks": [{"task_id": {"value": "r"}}]});
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Reconcile(serde_json::from_value(explicit).unwrap()),
    )
    .unwrap();
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Running);
    assert_eq!(reason_name(&updates[0]), "REASON_RECONCILIATION");
    assert!(updates[0].uuid.is_none());

    // Implicit: the running task and the finished one whose update is not acknowledged.
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Reconcile(scheduler::Reconcile { tasks: vec![] }),
    )
    .unwrap();
    let mut states: Vec<_> = h
        .take_updates(&conn)
        .iter()
        .map(|s| (s.task_id.to_string(), s.state))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("f".to_owned(), TaskState::Finished),
            ("r".to_owned(), TaskState::Running)
        ]
    );
}

#[test]
fn acknowledged_terminal_task_leaves_implicit_reconciliation() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("f", &agent_id, "cpus:1")],
        5.0,
    );
    let task_id = TaskId::new("f").unwrap();
    let uuid = h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Finished,
    );
    h.take_agent_messages(&agent_pid(1));
    let ack = scheduler::Acknowledge {
        agent_id: agent_id.clone(),
        task_id: task_id.clone(),
        uuid,
    };
    h.call(&conn, Some(&framework_id), CallBody::Acknowledge(ack))
        .unwrap();
    let acks = h.take_agent_messages(&agent_pid(1));
    assert!(
        matches!(acks.as_slice(), [Message::StatusUpdateAcknowledgement(a)] if a.task_id == task_id)
    );
    h.take_updates(&conn);
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::Reconcile(scheduler::Reconcile { tasks: vec![] }),
    )
    .unwrap();
    assert!(h.take_updates(&conn).is_empty());
    let framework = &h.state.frameworks()[0];
    assert_eq!(framework.completed_tasks.len(), 1);
}

#[test]
fn acknowledge_with_a_malformed_uuid_is_a_bad_request() {
    let (mut h, agent_id, framework_id, conn, _) = offered();
    let ack = scheduler::Acknowledge {
        agent_id,
        task_id: TaskId::new("t").unwrap(),
        uuid: strata_protocol::Bytes::new(b"short".to_vec()),
    };
    let err = h
        .call(&conn, Some(&framework_id), CallBody::Acknowledge(ack))
        .unwrap_err();
    assert!(
        matches!(err, strata_master::state::CallError::BadRequest(ref m) if m.contains("UUID")),
        "{err:?}"
    );
}

#[test]
fn reconcile_unknown_task_and_unknown_agent() {
    for (partition_aware, on_known_agent, on_unknown_agent) in [
        (false, TaskState::Lost, TaskState::Lost),
        (true, TaskState::Gone, TaskState::Unknown),
    ] {
        let mut h = Harness::new();
        let agent_id = h.register_agent(1, AGENT);
        let conn = scheduler_conn(1);
        let framework_id = h.subscribe(&conn, capabilities(partition_aware));
        let reconcile = json!({"tasks": [
            {"task_id": {"value": "x"}, "agent_id": {"value": agent_id.as_str()}},
            {"task_id": {"value": "y"}, "agent_id": {"value": "nowhere"}},
        ]});
        h.call(
            &conn,
            Some(&framework_id),
            CallBody::Reconcile(serde_json::from_value(reconcile).unwrap()),
        )
        .unwrap();
        let states: Vec<_> = h.take_updates(&conn).iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [on_known_agent, on_unknown_agent],
            "partition aware: {partition_aware}"
        );
    }
}

#[test]
fn resubscribe_fails_over_and_the_old_connection_gets_an_error() {
    let (mut h, _, framework_id, old, _) = offered();
    let new = scheduler_conn(2);
    let subscribe = json!({"framework_info": {"user": "root", "name": "test", "id": {"value": framework_id.as_str()}}});
    h.call(
        &new,
        Some(&framework_id),
        CallBody::Subscribe(serde_json::from_value(subscribe).unwrap()),
    )
    .unwrap();
    let old_events = h.take_framework_events(&old);
    assert!(
        old_events
            .iter()
            .any(|e| matches!(e, Event::Error(err) if err.message == "Framework failed over"))
    );
    assert!(h.effects.iter().any(
        |e| matches!(e, strata_master::state::Effect::CloseFramework { conn } if *conn == old)
    ));
    let new_events = h.take_framework_events(&new);
    assert!(matches!(&new_events[0], Event::Subscribed(s) if s.framework_id == framework_id));
    // Calls on the old connection are refused now.
    let err = h
        .call(
            &old,
            Some(&framework_id),
            CallBody::Revive(scheduler::Revive { roles: vec![] }),
        )
        .unwrap_err();
    assert!(matches!(err, strata_master::state::CallError::Forbidden(_)));
    // The offer made to the old instance was withdrawn; the new one gets a fresh offer.
    assert_eq!(h.offers_now(&new).len(), 1);
}

#[test]
fn update_lost_during_failover_reaches_the_new_instance_on_retry() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let old = scheduler_conn(1);
    let framework_id = h.subscribe(&old, json!({"failover_timeout": 60.0}));
    let offer = h.offers_now(&old).remove(0);
    h.accept(
        &old,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:1")],
        5.0,
    );
    let now = h.now();
    h.state.framework_disconnected(now, &old, &mut h.effects);
    let task_id = TaskId::new("t").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    assert!(h.take_updates(&old).is_empty(), "nobody to deliver to");
    let new = scheduler_conn(2);
    let subscribe = json!({"framework_info": {"user": "root", "name": "test", "failover_timeout": 60.0, "id": {"value": framework_id.as_str()}}});
    h.call(
        &new,
        Some(&framework_id),
        CallBody::Subscribe(serde_json::from_value(subscribe).unwrap()),
    )
    .unwrap();
    // The agent's status update manager retries the unacknowledged update.
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    let updates = h.take_updates(&new);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Running);
}

#[test]
fn failover_timeout_removes_the_framework_and_resubscribe_gets_an_error() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({"failover_timeout": 10.0}));
    let offer = h.offers_now(&conn).remove(0);
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:1")],
        5.0,
    );
    h.take_agent_messages(&agent_pid(1));
    let now = h.now();
    h.state.framework_disconnected(now, &conn, &mut h.effects);
    h.advance(Duration::from_secs(9));
    assert_eq!(
        h.state.frameworks().len(),
        1,
        "still within its failover timeout"
    );
    h.advance(Duration::from_secs(2));
    assert!(h.state.frameworks().is_empty());
    let completed = h.state.completed_frameworks();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].completed_tasks[0].state, TaskState::Killed);
    let shutdown = h.take_agent_messages(&agent_pid(1));
    assert!(
        shutdown
            .iter()
            .any(|m| matches!(m, Message::ShutdownFramework(s) if s.framework_id == framework_id))
    );

    let again = scheduler_conn(3);
    let subscribe = json!({"framework_info": {"user": "root", "name": "test", "id": {"value": framework_id.as_str()}}});
    h.call(
        &again,
        Some(&framework_id),
        CallBody::Subscribe(serde_json::from_value(subscribe).unwrap()),
    )
    .unwrap();
    let events = h.take_framework_events(&again);
    assert!(
        matches!(events.as_slice(), [Event::Error(e)] if e.message == "Framework has been removed")
    );
}

#[test]
fn teardown_kills_tasks_and_frees_the_agent() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:2;mem:1024")],
        5.0,
    );
    h.call(&conn, Some(&framework_id), CallBody::Teardown)
        .unwrap();
    assert_eq!(h.state.completed_frameworks().len(), 1);
    let other = scheduler_conn(2);
    h.subscribe(&other, json!({}));
    assert_eq!(
        h.offers_now(&other).len(),
        1,
        "the torn-down framework's resources are free"
    );
}

#[test]
fn changing_the_principal_on_resubscribe_or_the_user_on_update_is_refused() {
    let mut h = Harness::new();
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({"principal": "alice"}));
    let subscribe = json!({"framework_info": {"user": "root", "name": "test", "principal": "mallory", "id": {"value": framework_id.as_str()}}});
    let err = h
        .call(
            &conn,
            Some(&framework_id),
            CallBody::Subscribe(serde_json::from_value(subscribe).unwrap()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("principal"), "{err}");
    let update =
        json!({"framework_info": {"user": "someone-else", "name": "test", "principal": "alice"}});
    let err = h
        .call(
            &conn,
            Some(&framework_id),
            CallBody::UpdateFramework(serde_json::from_value(update).unwrap()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("user"), "{err}");
    assert_eq!(h.state.frameworks()[0].info.user, "root", "nothing changed");
}

#[test]
fn update_framework_removing_a_role_rescinds_its_offer_and_adding_one_brings_offers() {
    let mut h = Harness::new();
    h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let info = json!({"roles": ["a"], "capabilities": [{"type": "MULTI_ROLE"}]});
    let framework_id = h.subscribe(&conn, info);
    let offer = h.offers_now(&conn).remove(0);
    assert_eq!(offer.allocation_info.unwrap().role.as_deref(), Some("a"));
    let update = json!({"framework_info": {"user": "root", "name": "test", "roles": ["b"], "capabilities": [{"type": "MULTI_ROLE"}]}});
    h.call(
        &conn,
        Some(&framework_id),
        CallBody::UpdateFramework(serde_json::from_value(update).unwrap()),
    )
    .unwrap();
    assert_eq!(h.take_rescinds(&conn), [offer.id]);
    let offers = h.offers_now(&conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0].allocation_info.as_ref().unwrap().role.as_deref(),
        Some("b")
    );
}

#[test]
fn calls_before_subscribing_are_forbidden() {
    let mut h = Harness::new();
    let conn = scheduler_conn(1);
    let stranger = strata_protocol::FrameworkId::new("nobody").unwrap();
    let err = h
        .call(&conn, Some(&stranger), CallBody::Teardown)
        .unwrap_err();
    assert!(matches!(err, strata_master::state::CallError::Forbidden(_)));
    let err = h.call(&conn, None, CallBody::Teardown).unwrap_err();
    assert!(matches!(
        err,
        strata_master::state::CallError::BadRequest(_)
    ));
}

#[test]
fn agent_that_misses_five_pings_becomes_unreachable_and_comes_back() {
    for (partition_aware, want) in [(true, TaskState::Unreachable), (false, TaskState::Lost)] {
        let mut h = Harness::new();
        let agent_id = h.register_agent(1, AGENT);
        let conn = scheduler_conn(1);
        let framework_id = h.subscribe(&conn, capabilities(partition_aware));
        let offer = h.offers_now(&conn).remove(0);
        h.accept(
            &conn,
            &framework_id,
            &[&offer.id],
            vec![task("t", &agent_id, "cpus:1;mem:64")],
            5.0,
        );
        let task_id = TaskId::new("t").unwrap();
        h.agent_update(
            &agent_pid(1),
            &agent_id,
            &framework_id,
            &task_id,
            TaskState::Running,
        );
        h.take_framework_events(&conn);

        // Pongs stop: four missed pings are tolerated, the fifth makes the agent unreachable.
        h.healthy_agents.clear();
        h.advance(Duration::from_secs(15 * 5));
        assert_eq!(h.state.agents().len(), 1, "four misses are tolerated");
        h.advance(Duration::from_secs(15));
        assert!(h.state.agents().is_empty());
        let events = h.take_framework_events(&conn);
        let update = events
            .iter()
            .find_map(|e| match e {
                Event::Update(u) => Some(&u.status),
                _ => None,
            })
            .expect("update");
        assert_eq!(update.state, want);
        assert_eq!(reason_name(update), "REASON_AGENT_REMOVED");
        assert!(update.unreachable_time.is_some());
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Failure(f) if f.agent_id.as_ref() == Some(&agent_id)))
        );
        assert_eq!(h.state.frameworks()[0].unreachable_tasks.len(), 1);

        // The agent comes back with its task still running.
        let mut running = h.state.frameworks()[0].unreachable_tasks[0].clone();
        running.state = TaskState::Running;
        let info = serde_json::from_value(
            json!({"hostname": "host-1", "id": {"value": agent_id.as_str()}}),
        )
        .map(|mut info: strata_protocol::mesos::AgentInfo| {
            info.resources = Resources::parse(AGENT, "*").unwrap().to_wire();
            info
        })
        .unwrap();
        let reregister = strata_protocol::internal::ReregisterAgent {
            agent_info: info,
            checkpointed_resources: vec![],
            executor_infos: vec![],
            tasks: vec![running],
            frameworks: vec![h.state.frameworks()[0].info.clone()],
            version: "test".into(),
            capabilities: vec![],
        };
        h.agent_message(&agent_pid(1), reregister.into());
        let updates = h.take_updates(&conn);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].state, TaskState::Running);
        assert_eq!(reason_name(&updates[0]), "REASON_AGENT_REREGISTERED");
        assert_eq!(h.state.task_counts().get(&TaskState::Running), Some(&1));
    }
}

#[test]
fn pongs_keep_an_agent_registered() {
    let mut h = Harness::new();
    h.register_agent(1, AGENT);
    for _ in 0..20 {
        h.advance(Duration::from_secs(15));
        for message in h.take_agent_messages(&agent_pid(1)) {
            if let Message::Ping(ping) = message {
                h.agent_message(
                    &agent_pid(1),
                    Message::Pong(strata_protocol::internal::Pong { seq: ping.seq }),
                );
            }
        }
    }
    assert_eq!(h.state.agents().len(), 1);
}

#[test]
fn mark_agent_gone_ends_tasks_and_refuses_the_agent() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:1")],
        5.0,
    );
    h.take_agent_messages(&agent_pid(1));
    let now = h.now();
    h.state
        .mark_agent_gone(now, &agent_id, &mut h.effects)
        .unwrap();
    let updates = h.take_updates(&conn);
    assert_eq!(updates[0].state, TaskState::Lost, "not partition aware");
    assert_eq!(reason_name(&updates[0]), "REASON_AGENT_REMOVED_BY_OPERATOR");
    let messages = h.take_agent_messages(&agent_pid(1));
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::ShutdownAgent(_)))
    );
    let info =
        serde_json::from_value(json!({"hostname": "host-1", "id": {"value": agent_id.as_str()}}))
            .unwrap();
    let reregister = strata_protocol::internal::ReregisterAgent {
        agent_info: info,
        checkpointed_resources: vec![],
        executor_infos: vec![],
        tasks: vec![],
        frameworks: vec![],
        version: "test".into(),
        capabilities: vec![],
    };
    h.agent_message(&agent_pid(1), reregister.into());
    let messages = h.take_agent_messages(&agent_pid(1));
    assert!(
        matches!(messages.as_slice(), [Message::ShutdownAgent(s)] if s.message.contains("gone"))
    );
    assert!(h.state.agents().is_empty());
}

#[test]
fn weights_must_be_positive_and_quota_zero_stops_offers() {
    let mut h = Harness::new();
    let err = h
        .state
        .update_weights([("web".to_owned(), 0.0)].into(), &mut h.effects)
        .unwrap_err();
    assert!(err.to_string().contains("greater than zero"), "{err}");
    h.state
        .update_weights([("web".to_owned(), 2.0)].into(), &mut h.effects)
        .unwrap();

    h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    h.subscribe(&conn, json!({"role": "web"}));
    let offer = h.offers_now(&conn).remove(0);
    let now = h.now();
    let limits = [(
        "web".to_owned(),
        [("cpus".to_owned(), 0.0), ("mem".to_owned(), 0.0)].into(),
    )]
    .into();
    h.state.update_quota(now, limits, &mut h.effects).unwrap();
    assert_eq!(
        h.take_rescinds(&conn),
        [offer.id],
        "the limit no longer covers the offer"
    );
    h.advance(Duration::from_secs(60));
    assert!(h.take_offers(&conn).is_empty());
}

#[test]
fn deactivated_agent_is_not_offered_until_reactivated() {
    let (mut h, agent_id, _, conn, offer) = offered();
    let now = h.now();
    h.state
        .deactivate_agent(now, &agent_id, &mut h.effects)
        .unwrap();
    assert_eq!(h.take_rescinds(&conn), [offer.id]);
    h.advance(Duration::from_secs(30));
    assert!(h.take_offers(&conn).is_empty());
    let now = h.now();
    h.state
        .reactivate_agent(now, &agent_id, &mut h.effects)
        .unwrap();
    h.tick();
    assert_eq!(h.take_offers(&conn).len(), 1);
}

#[test]
fn drain_kills_tasks_and_ends_drained_and_gone() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:1")],
        5.0,
    );
    h.take_agent_messages(&agent_pid(1));
    let now = h.now();
    let config = serde_json::from_value(json!({"mark_gone": true})).unwrap();
    h.state
        .drain_agent(now, &agent_id, config, &mut h.effects)
        .unwrap();
    let messages = h.take_agent_messages(&agent_pid(1));
    assert!(messages.iter().any(|m| matches!(m, Message::DrainAgent(_))));
    assert!(messages.iter().any(|m| matches!(m, Message::KillTask(_))));
    let task_id = TaskId::new("t").unwrap();
    let uuid = h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Killed,
    );
    let ack = scheduler::Acknowledge {
        agent_id: agent_id.clone(),
        task_id,
        uuid,
    };
    h.call(&conn, Some(&framework_id), CallBody::Acknowledge(ack))
        .unwrap();
    h.tick();
    assert!(h.state.agents().is_empty(), "drained and marked gone");
    assert_eq!(h.state.gone_agents().len(), 1);
}

#[test]
fn heartbeats_arrive_every_fifteen_seconds() {
    let mut h = Harness::new();
    let conn = scheduler_conn(1);
    h.subscribe(&conn, json!({}));
    h.advance(Duration::from_secs(61));
    let heartbeats = h
        .take_framework_events(&conn)
        .into_iter()
        .filter(|e| matches!(e, Event::Heartbeat))
        .count();
    assert_eq!(heartbeats, 4);
}

fn reserved_cpus(role: &str, amount: f64) -> serde_json::Value {
    json!([{
        "name": "cpus", "type": "SCALAR", "scalar": {"value": amount},
        "reservations": [{"type": "DYNAMIC", "role": role, "principal": "ops"}],
    }])
}

fn accept_operations(
    h: &mut Harness,
    conn: &strata_master::state::FrameworkConn,
    framework_id: &strata_protocol::FrameworkId,
    offer: &strata_protocol::mesos::Offer,
    operations: serde_json::Value,
) {
    let accept = json!({"offer_ids": [offer.id], "operations": operations, "filters": {"refuse_seconds": 0.0}});
    h.call(
        conn,
        Some(framework_id),
        CallBody::Accept(serde_json::from_value(accept).unwrap()),
    )
    .unwrap();
}

#[test]
fn reserve_then_unreserve_in_accepts_changes_what_is_offered() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({"role": "web", "principal": "ops"}));
    let offer = h.offers_now(&conn).remove(0);

    accept_operations(
        &mut h,
        &conn,
        &framework_id,
        &offer,
        json!([{"type": "RESERVE", "reserve": {"resources": reserved_cpus("web", 1.0)}}]),
    );
    let messages = h.take_agent_messages(&agent_pid(1));
    let Some(Message::CheckpointResources(checkpoint)) = messages.first() else {
        panic!("{messages:?}")
    };
    assert_eq!(
        checkpoint.resources.len(),
        1,
        "the agent checkpoints its one reservation"
    );
    let offer = h.offers_now(&conn).remove(0);
    let offered = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
    assert_eq!(offered.reserved("web").cpus(), Some(1.0));
    assert_eq!(offered.unreserved().cpus(), Some(1.0));
    assert_eq!(h.state.agents()[0].total.reserved("web").cpus(), Some(1.0));

    accept_operations(
        &mut h,
        &conn,
        &framework_id,
        &offer,
        json!([{"type": "UNRESERVE", "unreserve": {"resources": reserved_cpus("web", 1.0)}}]),
    );
    let offer = h.offers_now(&conn).remove(0);
    let offered = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
    assert!(offered.reserved("web").is_empty(), "{offered}");
    assert_eq!(offered.cpus(), Some(2.0));
    let _ = agent_id;
}

#[test]
fn reserve_for_another_role_is_dropped_and_changes_nothing() {
    let mut h = Harness::new();
    h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({"role": "web"}));
    let offer = h.offers_now(&conn).remove(0);
    accept_operations(
        &mut h,
        &conn,
        &framework_id,
        &offer,
        json!([{"type": "RESERVE", "reserve": {"resources": reserved_cpus("db", 1.0)}}]),
    );
    assert!(
        h.take_agent_messages(&agent_pid(1)).is_empty(),
        "nothing to checkpoint"
    );
    let offer = h.offers_now(&conn).remove(0);
    assert_eq!(resources_of(&offer), Resources::parse(AGENT, "*").unwrap());
}

#[test]
fn operator_reservation_is_offered_only_to_its_role() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, "cpus:2;mem:1024");
    let web = scheduler_conn(1);
    let other = scheduler_conn(2);
    h.subscribe(&web, json!({"role": "web"}));
    h.subscribe(&other, json!({"role": "batch"}));
    h.offers_now(&web);
    h.offers_now(&other);
    let now = h.now();
    let resources = serde_json::from_value(reserved_cpus("web", 1.0)).unwrap();
    h.state
        .operator_convert(
            now,
            &agent_id,
            strata_master::state::ConversionDirection::Reserve,
            resources,
            &mut h.effects,
        )
        .unwrap();
    // Every offer of the agent was rescinded so the reservation could be made.
    h.take_rescinds(&web);
    h.take_rescinds(&other);
    for _ in 0..3 {
        h.advance(Duration::from_secs(6));
        for offer in h.take_offers(&other) {
            let offered = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
            assert!(
                offered.reserved("web").is_empty(),
                "batch was offered web's reservation"
            );
            let decline = json!({"offer_ids": [offer.id], "filters": {"refuse_seconds": 0.0}});
            let framework_id = offer.framework_id.clone();
            h.call(
                &other,
                Some(&framework_id),
                CallBody::Decline(serde_json::from_value(decline).unwrap()),
            )
            .unwrap();
        }
    }
    let mut reserved_seen = false;
    h.advance(Duration::from_secs(6));
    for offer in h.take_offers(&web) {
        let offered = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
        reserved_seen |= offered.reserved("web").cpus() == Some(1.0);
    }
    assert!(reserved_seen, "web is offered its reservation");
    let err = h
        .state
        .operator_convert(
            h.now(),
            &agent_id,
            strata_master::state::ConversionDirection::Reserve,
            serde_json::from_value(reserved_cpus("web", 5.0)).unwrap(),
            &mut h.effects,
        )
        .unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
}

#[test]
fn a_retried_first_subscribe_on_the_same_connection_gets_the_same_framework() {
    let mut h = Harness::new();
    let conn = scheduler_conn(1);
    let first = h.subscribe(&conn, json!({}));
    let again = h.subscribe(&conn, json!({}));
    assert_eq!(first, again);
    assert_eq!(h.state.frameworks().len(), 1);
}

#[test]
fn a_late_copy_of_running_does_not_move_a_finished_task_back() {
    let (mut h, agent_id, framework_id, conn, offer) = offered();
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t", &agent_id, "cpus:1")],
        5.0,
    );
    let task_id = TaskId::new("t").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    let finished = h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Finished,
    );
    // A delayed retry of RUNNING arrives after FINISHED.
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    assert_eq!(h.state.task_counts().get(&TaskState::Finished), Some(&1));
    // Acknowledging FINISHED still removes the task.
    let ack = scheduler::Acknowledge {
        agent_id,
        task_id,
        uuid: finished,
    };
    h.call(&conn, Some(&framework_id), CallBody::Acknowledge(ack))
        .unwrap();
    assert!(
        h.state.task_counts().is_empty(),
        "{:?}",
        h.state.task_counts()
    );
}
