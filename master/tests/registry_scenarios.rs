//! Master restarts from the registry, driven through `MasterState`: a first master records
//! registry operations, they are applied to a registry as the actor would, and a second master
//! recovers from it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;
use strata_master::registry::{RegistryOp, RegistryState};
use strata_master::state::{AgentMode, Effect};
use strata_protocol::internal::{Message, ReregisterAgent};
use strata_protocol::mesos::{AgentInfo, FrameworkInfo, Task, TaskState};
use strata_protocol::scheduler::{CallBody, Reconcile, ReconcileTask};
use strata_protocol::{AgentId, FrameworkId, Resources, TaskId};

const AGENT: &str = "cpus:2;mem:1024";

/// Applies the registry operations `h` recorded to `registry`.
fn store(h: &mut Harness, registry: &mut RegistryState) {
    for op in h.take_registry_ops() {
        registry.apply(&op);
    }
}

fn reregister(
    agent_id: &AgentId,
    n: u8,
    tasks: Vec<Task>,
    frameworks: Vec<FrameworkInfo>,
) -> Message {
    let mut info: AgentInfo = serde_json::from_value(
        json!({"hostname": format!("host-{n}"), "id": {"value": agent_id.as_str()}}),
    )
    .unwrap();
    info.resources = Resources::parse(AGENT, "*").unwrap().to_wire();
    ReregisterAgent {
        agent_info: info,
        checkpointed_resources: vec![],
        executor_infos: vec![],
        tasks,
        frameworks,
        version: "test".into(),
        capabilities: vec![],
    }
    .into()
}

/// A first master with one agent running task `t1` of one framework; returns the registry it
/// left, the agent, the framework, and the task as the agent reports it.
fn first_master_with_a_running_task() -> (RegistryState, AgentId, FrameworkInfo, Task) {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let conn = scheduler_conn(1);
    let framework_id = h.subscribe(&conn, json!({"failover_timeout": 3600.0}));
    let offer = h.offers_now(&conn).remove(0);
    h.accept(
        &conn,
        &framework_id,
        &[&offer.id],
        vec![task("t1", &agent_id, "cpus:1;mem:128")],
        5.0,
    );
    let task_id = TaskId::new("t1").unwrap();
    h.agent_update(
        &agent_pid(1),
        &agent_id,
        &framework_id,
        &task_id,
        TaskState::Running,
    );
    let framework = h.state.framework(&framework_id).unwrap();
    let task = framework.tasks[0].clone();
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);
    (registry, agent_id, framework.info, task)
}

fn reconcile(
    h: &mut Harness,
    conn: &strata_master::state::FrameworkConn,
    framework_id: &FrameworkId,
    task_id: &str,
    agent_id: &AgentId,
) {
    let reconcile = Reconcile {
        tasks: vec![ReconcileTask {
            task_id: TaskId::new(task_id).unwrap(),
            agent_id: Some(agent_id.clone()),
        }],
    };
    h.call(conn, Some(framework_id), CallBody::Reconcile(reconcile))
        .unwrap();
}

#[test]
fn weights_quota_and_agents_come_back_from_the_registry() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let weights = BTreeMap::from([("web".to_owned(), 2.5)]);
    h.state
        .update_weights(weights.clone(), &mut h.effects)
        .unwrap();
    let quota = BTreeMap::from([("web".to_owned(), BTreeMap::from([("cpus".to_owned(), 1.0)]))]);
    let now = h.now();
    h.state
        .update_quota(now, quota.clone(), &mut h.effects)
        .unwrap();
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);

    let mut restarted = Harness::recovered(&registry, |_| {});
    assert_eq!(restarted.state.weights(), &weights);
    assert_eq!(restarted.state.quotas(), &quota);
    let recovered: Vec<_> = restarted.state.recovered_agents();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].0, agent_id);
    assert_eq!(recovered[0].1.hostname, "host-1");
    assert_eq!(
        Resources::from_resources(recovered[0].1.resources.iter().cloned()).unwrap(),
        Resources::parse(AGENT, "*").unwrap()
    );
    assert!(
        restarted.state.agents().is_empty(),
        "not registered until it reregisters"
    );

    // A recovered agent's resources are not offered.
    let conn = scheduler_conn(1);
    restarted.subscribe(&conn, json!({}));
    assert!(restarted.offers_now(&conn).is_empty());
}

#[test]
fn recovered_agent_reregisters_with_its_id_and_its_tasks() {
    let (registry, agent_id, framework_info, task) = first_master_with_a_running_task();
    let mut h = Harness::recovered(&registry, |_| {});
    h.agent_message(
        &agent_pid(1),
        reregister(&agent_id, 1, vec![task], vec![framework_info]),
    );

    // The agent is stored as admitted before it is told it is back.
    let position = |wanted: fn(&Effect) -> bool| h.effects.iter().position(wanted).unwrap();
    let stored = position(|e| matches!(e, Effect::Registry(RegistryOp::AdmitAgent(_))));
    let replied = position(|e| {
        matches!(
            e,
            Effect::Agent {
                message: Message::AgentReregistered(_),
                ..
            }
        )
    });
    assert!(stored < replied, "{:?}", h.effects);
    let messages = h.take_agent_messages(&agent_pid(1));
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::AgentReregistered(r) if r.agent_id == agent_id))
    );
    assert!(h.state.recovered_agents().is_empty());
    assert_eq!(h.state.agents()[0].id, agent_id);
    assert_eq!(h.state.task_counts().get(&TaskState::Running), Some(&1));
    // The agent's free resources are offered again; the task's are not.
    let conn = scheduler_conn(2);
    h.subscribe(&conn, json!({}));
    let offers = h.offers_now(&conn);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        resources_of(&offers[0]),
        Resources::parse("cpus:1;mem:896", "*").unwrap()
    );
}

#[test]
fn recovered_agent_that_does_not_reregister_in_time_becomes_unreachable() {
    let (registry, agent_id, framework_info, task) = first_master_with_a_running_task();
    let timeout = Duration::from_secs(60);
    let mut h = Harness::recovered(&registry, |config| {
        config.agent_reregister_timeout = timeout
    });
    h.advance(timeout - Duration::from_secs(1));
    assert_eq!(h.state.recovered_agents().len(), 1);
    assert!(h.take_registry_ops().is_empty());

    h.advance(Duration::from_secs(1));
    assert!(h.state.recovered_agents().is_empty());
    let unreachable = h.state.unreachable_agents();
    assert_eq!(unreachable.len(), 1);
    assert_eq!(unreachable[0].0, agent_id);
    let ops = h.take_registry_ops();
    assert!(
        matches!(ops.as_slice(), [RegistryOp::MarkUnreachable(record)] if record.info.id.as_ref() == Some(&agent_id)),
        "{ops:?}"
    );

    // It may still come back, with its task.
    h.agent_message(
        &agent_pid(1),
        reregister(&agent_id, 1, vec![task], vec![framework_info]),
    );
    assert!(h.state.unreachable_agents().is_empty());
    assert_eq!(h.state.agents()[0].id, agent_id);
    assert_eq!(h.state.task_counts().get(&TaskState::Running), Some(&1));
}

#[test]
fn gone_agent_is_refused_after_a_restart() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let now = h.now();
    h.state
        .mark_agent_gone(now, &agent_id, &mut h.effects)
        .unwrap();
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);
    assert!(registry.gone.contains_key(&agent_id));

    let mut restarted = Harness::recovered(&registry, |_| {});
    assert_eq!(restarted.state.gone_agents()[0].0, agent_id);
    restarted.agent_message(&agent_pid(1), reregister(&agent_id, 1, vec![], vec![]));
    let messages = restarted.take_agent_messages(&agent_pid(1));
    assert!(
        matches!(messages.as_slice(), [Message::ShutdownAgent(s)] if s.message.contains("gone")),
        "{messages:?}"
    );
    assert!(restarted.state.agents().is_empty());
}

#[test]
fn explicit_reconciliation_is_silent_for_tasks_of_recovered_agents() {
    let (registry, agent_id, framework_info, _) = first_master_with_a_running_task();
    let timeout = Duration::from_secs(60);
    let mut h = Harness::recovered(&registry, |config| {
        config.agent_reregister_timeout = timeout
    });
    let conn = scheduler_conn(1);
    let framework_id = framework_info.id.clone().unwrap();
    let subscribe = serde_json::from_value(json!({"framework_info": framework_info})).unwrap();
    h.call(&conn, Some(&framework_id), CallBody::Subscribe(subscribe))
        .unwrap();
    h.take_framework_events(&conn);

    reconcile(&mut h, &conn, &framework_id, "t1", &agent_id);
    assert!(
        h.take_updates(&conn).is_empty(),
        "no answer while the agent may still come back"
    );

    // An agent nobody knows gets an answer.
    let stranger = AgentId::new("elsewhere-S9").unwrap();
    reconcile(&mut h, &conn, &framework_id, "t2", &stranger);
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Lost);

    // Once the agent is unreachable, the task is reported as such (LOST, not partition aware).
    h.advance(timeout);
    h.take_framework_events(&conn);
    reconcile(&mut h, &conn, &framework_id, "t1", &agent_id);
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state, TaskState::Lost);
    assert_eq!(reason_name(&updates[0]), "REASON_RECONCILIATION");
}

#[test]
fn deactivation_survives_a_restart() {
    let mut h = Harness::new();
    let agent_id = h.register_agent(1, AGENT);
    let now = h.now();
    h.state
        .deactivate_agent(now, &agent_id, &mut h.effects)
        .unwrap();
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);
    assert!(registry.agents[&agent_id].deactivated);

    let mut restarted = Harness::recovered(&registry, |_| {});
    restarted.agent_message(&agent_pid(1), reregister(&agent_id, 1, vec![], vec![]));
    assert_eq!(restarted.state.agents()[0].mode, AgentMode::Deactivated);
    restarted.take_registry_ops();
    let conn = scheduler_conn(1);
    restarted.subscribe(&conn, json!({}));
    assert!(
        restarted.offers_now(&conn).is_empty(),
        "a deactivated agent is not offered"
    );

    let now = restarted.now();
    restarted
        .state
        .reactivate_agent(now, &agent_id, &mut restarted.effects)
        .unwrap();
    let ops = restarted.take_registry_ops();
    assert!(
        matches!(ops.as_slice(), [RegistryOp::AdmitAgent(a)] if !a.deactivated),
        "{ops:?}"
    );
    assert_eq!(restarted.offers_now(&conn).len(), 1);
}

#[test]
fn new_agents_never_get_a_registered_id() {
    // Both masters have the same master ID, as one configured by hand would.
    let mut h = Harness::new();
    let first = h.register_agent(1, AGENT);
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);

    let mut restarted = Harness::recovered(&registry, |config| {
        config.master_info = master_info();
    });
    let second = restarted.register_agent(2, AGENT);
    assert_ne!(first, second);
    assert!(
        restarted
            .state
            .recovered_agents()
            .iter()
            .any(|(id, _)| id == &first)
    );
}

#[test]
fn every_change_of_registered_facts_is_recorded() {
    let mut h = Harness::new();
    let a1 = h.register_agent(1, AGENT);
    let a2 = h.register_agent(2, AGENT);
    let mut registry = RegistryState::default();
    store(&mut h, &mut registry);
    assert_eq!(registry.agents.len(), 2);

    // a1 stops answering pings and becomes unreachable.
    h.healthy_agents.clear();
    h.healthy_agents.insert(agent_pid(2));
    h.advance(Duration::from_secs(15 * 6));
    store(&mut h, &mut registry);
    assert!(registry.unreachable.contains_key(&a1));
    assert!(!registry.agents.contains_key(&a1));

    // a2 unregisters.
    let unregister = strata_protocol::internal::UnregisterAgent {
        agent_id: a2.clone(),
    };
    h.agent_message(&agent_pid(2), unregister.into());
    store(&mut h, &mut registry);
    assert!(!registry.knows_agent(&a2));

    // The operator marks the unreachable a1 gone.
    let now = h.now();
    h.state.mark_agent_gone(now, &a1, &mut h.effects).unwrap();
    store(&mut h, &mut registry);
    assert!(registry.gone.contains_key(&a1));
    assert!(registry.unreachable.is_empty());
}

#[test]
fn a_drain_survives_a_restart_and_resumes_when_the_agent_reregisters() {
    let (registry, agent_id, framework_info, task) = first_master_with_a_running_task();
    let mut h = Harness::recovered(&registry, |_| {});
    // The operator drains the agent while it is still recovered.
    let now = h.now();
    let config = strata_protocol::mesos::DrainConfig {
        max_grace_period: None,
        mark_gone: Some(false),
    };
    h.state
        .drain_agent(now, &agent_id, config, &mut h.effects)
        .unwrap();
    let ops = h.take_registry_ops();
    assert!(
        matches!(ops.as_slice(), [RegistryOp::AdmitAgent(a)] if a.deactivated && a.drain.is_some_and(|d| !d.drained)),
        "{ops:?}"
    );
    let mut registry = registry;
    for op in &ops {
        registry.apply(op);
    }

    // Another restart, then the agent comes back: it hears of the drain, and its task is killed.
    let mut h = Harness::recovered(&registry, |_| {});
    h.agent_message(
        &agent_pid(1),
        reregister(&agent_id, 1, vec![task], vec![framework_info]),
    );
    assert_eq!(h.state.agents()[0].mode, AgentMode::Draining);
    let messages = h.take_agent_messages(&agent_pid(1));
    assert!(
        messages.iter().any(|m| matches!(m, Message::DrainAgent(_))),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::KillTask(k) if k.task_id.as_str() == "t1")),
        "{messages:?}"
    );
}

#[test]
fn an_unreachable_agent_that_comes_back_after_a_restart_brings_its_tasks_back() {
    let (mut registry, agent_id, framework_info, task) = first_master_with_a_running_task();
    let info = registry.agents[&agent_id].info.clone();
    registry.apply(&RegistryOp::MarkUnreachable(
        strata_master::registry::UnreachableRecord {
            info,
            since: UNIX_ORIGIN,
        },
    ));
    let mut h = Harness::recovered(&registry, |_| {});
    assert_eq!(h.state.unreachable_agents()[0].0, agent_id);

    // The framework resubscribes first, then the agent reregisters with the task running.
    let conn = scheduler_conn(1);
    let framework_id = framework_info.id.clone().unwrap();
    let subscribe =
        serde_json::from_value(json!({"framework_info": framework_info.clone()})).unwrap();
    h.call(&conn, Some(&framework_id), CallBody::Subscribe(subscribe))
        .unwrap();
    h.take_framework_events(&conn);
    h.agent_message(
        &agent_pid(1),
        reregister(&agent_id, 1, vec![task], vec![framework_info]),
    );
    let updates = h.take_updates(&conn);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].state, TaskState::Running);
    assert_eq!(reason_name(&updates[0]), "REASON_AGENT_REREGISTERED");
    let ops = h.take_registry_ops();
    assert!(
        matches!(ops.as_slice(), [RegistryOp::AdmitAgent(a)] if a.info.id.as_ref() == Some(&agent_id)),
        "{ops:?}"
    );
}
