//! Both doors of the master at once: a framework speaking the Mesos v1 scheduler HTTP API (a
//! plain HTTP/1.1 client here) and one speaking the actor protocol share a real agent, and each
//! runs real command tasks through the `strata executor` binary.

use std::time::Duration;

use serde_json::{Value, json};
use strata_agent::server::Isolation;
use strata_integration::cluster::{
    TestScheduler, agent_options, command_task, start_agent, start_master,
};
use strata_integration::http_framework::HttpFramework;
use strata_protocol::TaskId;
use strata_protocol::mesos::TaskState;

fn state_of(status: &Value) -> &str {
    status["state"].as_str().unwrap_or("")
}

/// Runs the HTTP framework's part up to the point where its long task is running: launches a
/// short and a long command task from its first offer and follows the short one to FINISHED.
/// Returns the states the short task went through and the long task's agent ID.
async fn http_framework_launches(framework: &mut HttpFramework) -> (Vec<String>, Value) {
    let offers = framework.next("OFFERS").await;
    let offer = &offers["offers"]["offers"][0];
    let agent_id = offer["agent_id"].clone();
    let task = |id: &str, command: &str| {
        json!({"name": id, "task_id": {"value": id}, "agent_id": agent_id,
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            ],
            "command": {"shell": true, "value": command}})
    };
    let accept = json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [
            task("short", "echo hello over http"),
            task("long", "sleep 1000"),
        ]}}],
        "filters": {"refuse_seconds": 0.0},
    }});
    let (code, body) = framework.call(accept).await;
    assert_eq!(code, 202, "ACCEPT refused: {body}");

    let mut short_states = Vec::new();
    let mut long_running = false;
    while !(long_running && short_states.last().is_some_and(|s| s == "TASK_FINISHED")) {
        let status = framework.next_update().await;
        match status["task_id"]["value"].as_str() {
            Some("short") => short_states.push(state_of(&status).to_owned()),
            Some("long") => {
                assert!(
                    matches!(state_of(&status), "TASK_STARTING" | "TASK_RUNNING"),
                    "{status}"
                );
                long_running |= state_of(&status) == "TASK_RUNNING";
            }
            _ => panic!("update for an unknown task: {status}"),
        }
    }
    (short_states, agent_id)
}

#[actix_rt::test]
async fn http_and_actor_frameworks_share_an_agent() {
    let work_dir = tempfile::tempdir().expect("temp dir");
    let master = start_master().await;
    let agent = start_agent(agent_options(
        &master,
        work_dir.path(),
        "cpus:2;mem:1024",
        Isolation::Posix,
    ))
    .await;

    let mut http_framework = HttpFramework::subscribe(master.addr, "http-door").await;
    let mut actor_framework = TestScheduler::start(&master);
    actor_framework
        .subscribe(json!({"user": "root", "name": "actor-door"}))
        .await;
    let actor_task = TaskId::new("actor-sleep").expect("valid task id");

    // Either framework may get the agent's resources first; each launches from its offer and
    // declines the rest, so the other gets it next.
    let actor_part = async {
        let offer = actor_framework.next_offer().await;
        let task = command_task(
            "actor-sleep",
            &offer.agent_id,
            "cpus:0.25;mem:32",
            "sleep 1000",
        );
        actor_framework.launch(&offer, vec![task]);
        actor_framework
            .wait_for_state(&actor_task, TaskState::Running)
            .await;
    };
    let ((short_states, agent_id), ()) =
        tokio::join!(http_framework_launches(&mut http_framework), actor_part);
    assert_eq!(
        short_states,
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );

    // Explicit reconciliation reports the long task running, without a uuid.
    let (code, body) = http_framework
        .call(json!({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "long"}, "agent_id": agent_id},
        ]}}))
        .await;
    assert_eq!(code, 202, "RECONCILE refused: {body}");
    let status = http_framework.next_update().await;
    assert_eq!(status["task_id"]["value"], "long");
    assert_eq!(state_of(&status), "TASK_RUNNING");
    assert_eq!(status["reason"], "REASON_RECONCILIATION");
    assert!(status.get("uuid").is_none(), "{status}");

    // Killing it over HTTP ends it; the actor framework's task is unaffected until killed too.
    let (code, body) = http_framework
        .call(json!({"type": "KILL", "kill": {"task_id": {"value": "long"}, "agent_id": agent_id}}))
        .await;
    assert_eq!(code, 202, "KILL refused: {body}");
    let status = http_framework.next_update().await;
    assert_eq!(
        (status["task_id"]["value"].as_str(), state_of(&status)),
        (Some("long"), "TASK_KILLED"),
        "{status}"
    );
    actor_framework.kill(&actor_task);
    actor_framework
        .wait_for_state(&actor_task, TaskState::Killed)
        .await;

    let (code, body) = http_framework.call(json!({"type": "TEARDOWN"})).await;
    assert_eq!(code, 202, "TEARDOWN refused: {body}");
    tokio::time::timeout(Duration::from_secs(5), agent.stop_and_destroy())
        .await
        .expect("agent stops");
    master.stop().await;
}
