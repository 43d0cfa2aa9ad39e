//! Agents a restarted master knows from its registry but that have not reregistered yet are
//! visible to operators: GET_AGENTS `recovered_agents`, `/master/state` `recovered_slaves` and
//! the `strata_master_agents{state="recovered"}` gauge.

mod common;

use common::Harness;
use common::net::{http, operator};
use serde_json::{Value, json};
use strata_master::registry::{InMemoryRegistry, RegistryState};
use strata_master::server::{MasterOptions, start_with_registry};

#[actix_rt::test]
async fn recovered_agents_are_listed_until_they_reregister() {
    // A previous master admitted one agent; its registry is all the new master has.
    let mut previous = Harness::new();
    let agent_id = previous.register_agent(1, "cpus:2;mem:1024");
    let mut registry = RegistryState::default();
    for op in previous.take_registry_ops() {
        registry.apply(&op);
    }

    let options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
    let master = start_with_registry(options, Box::new(InMemoryRegistry::with_state(registry)))
        .await
        .unwrap();

    let agents = operator(master.addr, json!({"type": "GET_AGENTS"})).await;
    let recovered = &agents["get_agents"]["recovered_agents"];
    assert_eq!(recovered.as_array().map(Vec::len), Some(1), "{agents}");
    assert_eq!(recovered[0]["id"]["value"], agent_id.as_str());
    assert_eq!(recovered[0]["hostname"], "host-1");
    assert_eq!(agents["get_agents"]["agents"], json!([]));

    let (status, state) = http(master.addr, "GET", "/master/state", &[], b"").await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["recovered_slaves"][0]["id"], agent_id.as_str());

    let (_, metrics) = http(master.addr, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.contains("strata_master_agents{state=\"recovered\"} 1"),
        "{metrics}"
    );
    master.stop().await;
}
