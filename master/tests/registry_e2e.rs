//! Master restarts over real TCP with a file registry: a master is stopped and a new one is
//! started on the same work dir, and what the operator set and the agents registered is still
//! there (mesos-api.md scenarios 17 and 19).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::net::{DEADLINE, Peer, http, operator};
use serde_json::{Value, json};
use strata_master::registry::{Registry, RegistryError, RegistryOp, RegistryState};
use strata_master::server::{
    MasterHandle, MasterOptions, RegistryBackend, StartError, start, start_with_registry,
};
use strata_protocol::internal::{self, Message};
use strata_protocol::mesos::AgentInfo;
use strata_protocol::resources::ReservationInfo;
use strata_protocol::scheduler::{Call, CallBody, Event};
use strata_protocol::{AgentId, Body, PeerRole, Resource, Resources};

const AGENT_RESOURCES: &str = "cpus:2;mem:1024";

async fn start_on(work_dir: &std::path::Path) -> Result<MasterHandle, StartError> {
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    options.registry = RegistryBackend::File;
    options.work_dir = work_dir.to_owned();
    start(options).await
}

/// Makes an operator call that answers with no body (200 OK).
async fn operate(addr: std::net::SocketAddr, call: Value) {
    let body = call.to_string();
    let (status, answer) = http(
        addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{call}: {answer}");
}

/// Sends ReregisterAgent for `agent_id` with the declared resources and the checkpointed ones.
fn reregister(agent: &Peer, agent_id: &AgentId, checkpointed: Vec<Resource>) {
    let mut info: AgentInfo = serde_json::from_value(
        json!({"hostname": "agent.test", "id": {"value": agent_id.as_str()}}),
    )
    .unwrap();
    info.resources = Resources::parse(AGENT_RESOURCES, "*").unwrap().to_wire();
    let reregister = internal::ReregisterAgent {
        agent_info: info,
        checkpointed_resources: checkpointed,
        executor_infos: vec![],
        tasks: vec![],
        frameworks: vec![],
        version: "test".into(),
        capabilities: vec![],
    };
    agent.send(Body::Internal(reregister.into()));
}

fn reserved_to_web(cpus: f64) -> Resources {
    Resources::parse(&format!("cpus:{cpus}"), "*")
        .unwrap()
        .push_reservation(&ReservationInfo::new_dynamic("web", None))
        .unwrap()
}

#[actix_rt::test]
async fn weights_quota_agents_reservations_and_gone_agents_survive_a_master_restart() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_on(work_dir.path()).await.unwrap();

    // The operator sets weights and quota.
    let update_weights = json!({"type": "UPDATE_WEIGHTS", "update_weights": {
        "weight_infos": [{"role": "web", "weight": 2.5}, {"role": "batch", "weight": 0.5}]}});
    operate(master.addr, update_weights).await;
    let update_quota = json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [
        {"role": "web", "limits": {"cpus": {"value": 1.5}, "mem": {"value": 512.0}}}]}});
    operate(master.addr, update_quota).await;

    // Two agents register; the first gets a dynamic reservation for `web`, which it checkpoints.
    let mut agent = Peer::start(PeerRole::Agent, "agent", "agent.test", &master.pid);
    agent.register_agent(AGENT_RESOURCES);
    let agent_id = agent.registered().await;
    let mut doomed = Peer::start(PeerRole::Agent, "agent", "doomed.test", &master.pid);
    doomed.register_agent(AGENT_RESOURCES);
    let doomed_id = doomed.registered().await;
    assert_ne!(agent_id, doomed_id);
    let reserve = json!({"type": "RESERVE_RESOURCES", "reserve_resources": {
        "agent_id": {"value": agent_id.as_str()}, "resources": reserved_to_web(1.0).to_wire()}});
    operate(master.addr, reserve).await;
    let checkpointed = agent
        .expect("CheckpointResources", |body| match body {
            Body::Internal(Message::CheckpointResources(checkpoint)) => Some(checkpoint.resources),
            _ => None,
        })
        .await;
    assert_eq!(
        Resources::from_resources(checkpointed.iter().cloned()).unwrap(),
        reserved_to_web(1.0)
    );

    // The operator marks the second agent gone.
    let mark_gone = json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {
        "agent_id": {"value": doomed_id.as_str()}}});
    operate(master.addr, mark_gone).await;
    doomed
        .expect("ShutdownAgent", |body| match body {
            Body::Internal(Message::ShutdownAgent(_)) => Some(()),
            _ => None,
        })
        .await;

    let weights_before = operator(master.addr, json!({"type": "GET_WEIGHTS"})).await;
    let quota_before = operator(master.addr, json!({"type": "GET_QUOTA"})).await;
    master.stop().await;

    // A new master on the same work dir.
    let master = start_on(work_dir.path()).await.unwrap();
    let weights = operator(master.addr, json!({"type": "GET_WEIGHTS"})).await;
    assert_eq!(weights, weights_before);
    let infos = weights["get_weights"]["weight_infos"].as_array().unwrap();
    assert!(
        infos.contains(&json!({"role": "web", "weight": 2.5})),
        "{weights}"
    );
    let quota = operator(master.addr, json!({"type": "GET_QUOTA"})).await;
    assert_eq!(quota, quota_before);
    assert_eq!(
        quota["get_quota"]["status"]["configs"][0]["limits"]["cpus"]["value"],
        1.5
    );

    // The agent reregisters with its ID and its checkpointed reservation.
    agent.master = master.pid.clone();
    reregister(&agent, &agent_id, checkpointed);
    let reregistered = agent
        .expect("AgentReregistered", |body| match body {
            Body::Internal(Message::AgentReregistered(reregistered)) => Some(reregistered),
            _ => None,
        })
        .await;
    assert_eq!(reregistered.agent_id, agent_id);
    let agents = operator(master.addr, json!({"type": "GET_AGENTS"})).await;
    let listed: Vec<&Value> = agents["get_agents"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(listed.len(), 1, "{agents}");
    assert_eq!(listed[0]["agent_info"]["id"]["value"], agent_id.as_str());

    // A framework in `web` is offered the reserved resources again, as reserved.
    let mut framework = Peer::start(
        PeerRole::Scheduler,
        "scheduler",
        "framework.test",
        &master.pid,
    );
    let info = json!({"framework_info": {"user": "root", "name": "web", "roles": ["web"],
        "capabilities": [{"type": "MULTI_ROLE"}]}});
    framework.send(Body::SchedulerCall(Call {
        framework_id: None,
        body: CallBody::Subscribe(Box::new(serde_json::from_value(info).unwrap())),
    }));
    framework.subscribed().await;
    let offer = framework
        .expect("OFFERS", |body| match body {
            Body::SchedulerEvent(Event::Offers(offers)) => offers.offers.into_iter().next(),
            _ => None,
        })
        .await;
    assert_eq!(offer.agent_id, agent_id);
    let mut offered = Resources::from_resources(offer.resources.iter().cloned()).unwrap();
    offered.unallocate();
    assert!(
        offered.contains(&reserved_to_web(1.0)),
        "the reservation is offered as reserved: {offered}"
    );

    // The agent marked gone is still refused.
    doomed.master = master.pid.clone();
    reregister(&doomed, &doomed_id, vec![]);
    let refusal = doomed
        .expect("ShutdownAgent", |body| match body {
            Body::Internal(Message::ShutdownAgent(shutdown)) => Some(shutdown.message),
            _ => None,
        })
        .await;
    assert!(refusal.contains("gone"), "{refusal}");
    master.stop().await;
}

#[actix_rt::test]
async fn a_damaged_registry_stops_the_master_from_starting() {
    let work_dir = tempfile::tempdir().unwrap();
    let master = start_on(work_dir.path()).await.unwrap();
    let mut agent = Peer::start(PeerRole::Agent, "agent", "agent.test", &master.pid);
    agent.register_agent(AGENT_RESOURCES);
    agent.registered().await;
    let mut second = Peer::start(PeerRole::Agent, "agent", "second.test", &master.pid);
    second.register_agent(AGENT_RESOURCES);
    second.registered().await;
    master.stop().await;

    // Flip a byte inside the first logged operation; the second follows it.
    let log_path = work_dir.path().join("registry/log");
    let mut log = std::fs::read(&log_path).unwrap();
    log[40] ^= 0x55;
    std::fs::write(&log_path, &log).unwrap();
    let err = match start_on(work_dir.path()).await {
        Ok(_) => panic!("a master started on a damaged registry"),
        Err(err) => err,
    };
    assert!(matches!(err, StartError::Registry(_)), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    // The registry is left as it was, for the operator to look at.
    assert_eq!(std::fs::read(&log_path).unwrap(), log);
}

/// What a test sees of a [`FlakyRegistry`].
#[derive(Default)]
struct FlakyControl {
    failing: AtomicBool,
    attempts: AtomicUsize,
    stored: Mutex<RegistryState>,
}

/// A registry whose writes fail while `failing` is set, as a full or broken disk would make
/// them.
struct FlakyRegistry {
    initial: RegistryState,
    control: Arc<FlakyControl>,
}

impl Registry for FlakyRegistry {
    fn state(&self) -> &RegistryState {
        &self.initial
    }

    fn apply(&mut self, op: &RegistryOp) -> Result<(), RegistryError> {
        self.control.attempts.fetch_add(1, Ordering::SeqCst);
        if self.control.failing.load(Ordering::SeqCst) {
            return Err(RegistryError::Io {
                path: "flaky".into(),
                source: std::io::Error::other("no space left on device"),
            });
        }
        self.control.stored.lock().unwrap().apply(op);
        Ok(())
    }
}

/// Waits until `done` holds, or fails the test after [`DEADLINE`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn nothing_that_depends_on_a_failed_registry_write_is_sent_until_it_is_stored() {
    let control = Arc::new(FlakyControl::default());
    control.failing.store(true, Ordering::SeqCst);
    let registry = FlakyRegistry {
        initial: RegistryState::default(),
        control: control.clone(),
    };
    let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    options.allocation_interval = Duration::from_millis(50);
    let master = start_with_registry(options, Box::new(registry))
        .await
        .unwrap();

    let mut agent = Peer::start(PeerRole::Agent, "agent", "agent.test", &master.pid);
    agent.register_agent(AGENT_RESOURCES);
    // The admission fails, and is retried once a second.
    wait_until("a retried admission", || {
        control.attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        agent.inbox.try_recv().is_err(),
        "the agent is not told it is registered before the registry says so"
    );
    let update_weights = json!({"type": "UPDATE_WEIGHTS", "update_weights": {
        "weight_infos": [{"role": "web", "weight": 2.0}]}});
    let (status, body) = http(
        master.addr,
        "POST",
        "/api/v1",
        &[("content-type", "application/json")],
        update_weights.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("registry"), "{body}");

    // The disk recovers: the agent is admitted, told so, and the weights are stored too.
    control.failing.store(false, Ordering::SeqCst);
    let agent_id = agent.registered().await;
    wait_until("the weights stored", || {
        !control.stored.lock().unwrap().weights.is_empty()
    })
    .await;
    let stored = control.stored.lock().unwrap().clone();
    assert!(stored.agents.contains_key(&agent_id));
    assert_eq!(stored.weights.get("web"), Some(&2.0));
    master.stop().await;
}
