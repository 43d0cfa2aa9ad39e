//! `/master/state`: the master's state with Mesos's field names, for existing tools and UIs.

use serde_json::{Value, json};
use strata_protocol::Resources;
use strata_protocol::mesos::{FrameworkCapabilityType, Task};

use crate::state::{AgentMode, FrameworkSummary, MasterState, Now};

/// Mesos renders resources in state documents as a flat `{"cpus": 2.0, "ports": "[...]"}`.
pub fn resources_object(resources: &Resources) -> Value {
    let mut flat = resources.clone();
    flat.unallocate();
    let flat = flat.flatten();
    let mut object = serde_json::Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        object.insert(name.into(), json!(flat.scalar(name).unwrap_or(0.0)));
    }
    for name in flat.names() {
        if let Some(value) = flat.scalar(&name) {
            object.insert(name, json!(value));
        } else if let Some(ranges) = flat.ranges(&name) {
            object.insert(name, json!(ranges.to_string()));
        } else if let Some(set) = flat.set(&name) {
            object.insert(name, json!(set.to_string()));
        }
    }
    Value::Object(object)
}

fn task_json(task: &Task) -> Value {
    let resources = Resources::from_resources(task.resources.iter().cloned()).unwrap_or_default();
    let role = task
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .unwrap_or_else(|| "*".into());
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|status| json!({"state": status.state, "timestamp": status.timestamp}))
        .collect();
    json!({
        "id": task.task_id.as_str(),
        "name": task.name,
        "framework_id": task.framework_id.as_str(),
        "executor_id": task.executor_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
        "slave_id": task.agent_id.as_str(),
        "state": task.state,
        "role": role,
        "resources": resources_object(&resources),
        "statuses": statuses,
        "labels": task.labels.as_ref().map(|l| json!(l.labels)).unwrap_or(json!([])),
    })
}

fn framework_json(framework: &FrameworkSummary) -> Value {
    let info = &framework.info;
    let capabilities: Vec<Value> = info
        .capabilities
        .iter()
        .filter_map(|c| c.capability_type)
        .map(|c| json!(c))
        .collect();
    let mut used = Resources::new();
    for task in &framework.tasks {
        if !task.state.is_terminal() {
            used += &Resources::from_resources(task.resources.iter().cloned()).unwrap_or_default();
        }
    }
    let mut offered = Resources::new();
    for offer in &framework.offers {
        offered += &Resources::from_resources(offer.resources.iter().cloned()).unwrap_or_default();
    }
    let offers: Vec<Value> = framework
        .offers
        .iter()
        .map(|offer| {
            let resources =
                Resources::from_resources(offer.resources.iter().cloned()).unwrap_or_default();
            json!({
                "id": offer.id.as_str(),
                "framework_id": offer.framework_id.as_str(),
                "slave_id": offer.agent_id.as_str(),
                "resources": resources_object(&resources),
            })
        })
        .collect();
    json!({
        "id": framework.id.as_str(),
        "name": info.name,
        "user": info.user,
        "principal": info.principal,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "failover_timeout": info.failover_timeout(),
        "checkpoint": info.checkpoint(),
        "role": framework.roles.first().cloned().unwrap_or_else(|| "*".into()),
        "roles": framework.roles,
        "suppressed_roles": framework.suppressed_roles,
        "capabilities": capabilities,
        "active": framework.active && framework.connected,
        "connected": framework.connected,
        "recovered": false,
        "partition_aware": info.has_capability(FrameworkCapabilityType::PartitionAware),
        "registered_time": framework.registered_time,
        "reregistered_time": framework.reregistered_time.unwrap_or(framework.registered_time),
        "unregistered_time": framework.unregistered_time.unwrap_or(0.0),
        "used_resources": resources_object(&used),
        "offered_resources": resources_object(&offered),
        "resources": resources_object(&(used.clone() + &offered)),
        "tasks": framework.tasks.iter().map(task_json).collect::<Vec<_>>(),
        "unreachable_tasks": framework.unreachable_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "completed_tasks": framework.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "offers": offers,
        "executors": [],
    })
}

/// Renders the whole state document.
pub fn state(
    state: &MasterState,
    now: Now,
    leader: &str,
    flags: &[(String, String)],
    start_time: f64,
) -> Value {
    let master_info = &state.config().master_info;
    let agents: Vec<Value> = state
        .agents()
        .iter()
        .map(|agent| {
            json!({
                "id": agent.id.as_str(),
                "pid": agent.pid.to_string(),
                "hostname": agent.info.hostname,
                "port": agent.info.port(),
                "version": agent.version,
                "registered_time": agent.registered_time,
                "reregistered_time": agent.reregistered_time,
                "active": agent.connected && agent.mode == AgentMode::Active,
                "deactivated": agent.mode != AgentMode::Active,
                "connected": agent.connected,
                "drain_info": match agent.mode {
                    AgentMode::Draining => json!({"state": "DRAINING"}),
                    AgentMode::Drained => json!({"state": "DRAINED"}),
                    _ => Value::Null,
                },
                "attributes": agent.info.attributes,
                "resources": resources_object(&agent.total),
                "used_resources": resources_object(&agent.used),
                "offered_resources": resources_object(&agent.offered),
                "unreserved_resources": resources_object(&agent.total.unreserved()),
                "reserved_resources_full": agent.total.reservations().into_iter()
                    .map(|(role, r)| (role, json!(r.to_wire())))
                    .collect::<serde_json::Map<_, _>>(),
                "used_resources_full": agent.used.to_wire(),
                "offered_resources_full": agent.offered.to_wire(),
            })
        })
        .collect();
    let unreachable: Vec<Value> = state
        .unreachable_agents()
        .iter()
        .map(|(id, info, since)| json!({"id": id.as_str(), "hostname": info.hostname, "timestamp": since}))
        .collect();
    // As Mesos renders a `SlaveInfo` in `/state`: the ID as a plain string.
    let recovered: Vec<Value> = state
        .recovered_agents()
        .iter()
        .map(|(id, info)| {
            json!({"id": id.as_str(), "hostname": info.hostname, "port": info.port(),
                "attributes": info.attributes})
        })
        .collect();
    let frameworks = state.frameworks();
    let n_active = state
        .agents()
        .iter()
        .filter(|a| a.mode == AgentMode::Active)
        .count();
    json!({
        "version": super::MESOS_COMPAT_VERSION,
        "strata_version": env!("CARGO_PKG_VERSION"),
        "id": master_info.id,
        "pid": master_info.pid,
        "hostname": master_info.hostname,
        "start_time": start_time,
        "elected_time": start_time,
        "uptime_secs": now.mono.as_secs_f64(),
        "leader": leader,
        "leader_info": master_info,
        "activated_slaves": n_active,
        "deactivated_slaves": state.agents().len() - n_active,
        "unreachable_slaves": unreachable,
        "recovered_slaves": recovered,
        "flags": flags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "slaves": agents,
        "frameworks": frameworks.iter().map(framework_json).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks().iter().map(framework_json).collect::<Vec<_>>(),
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}
