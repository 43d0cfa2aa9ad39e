//! `/state`: the agent's state with the field names of Mesos's agent `/state`, for existing
//! tools and UIs (the Mesos web UI's agent page, `mesos-ps`-style scripts).
//!
//! Resources are rendered as Mesos renders them in state documents, a flat object
//! (`{"cpus": 2.0, "mem": 1024.0, "ports": "[31000-32000]"}`); tasks, executors and frameworks
//! use Mesos's ad-hoc field names (`id`, `slave_id`, `container`, `directory`, ...), not the
//! v1 API's.

use serde_json::{Map, Value, json};
use strata_protocol::Resources;
use strata_protocol::mesos::{Attribute, FrameworkCapabilityType, Task, TaskInfo};
use strata_protocol::resources::ValueType;

use super::{ApiError, HttpContext};
use crate::actor::Inspect;
use crate::sandbox::SandboxLayout;
use crate::state::{AgentState, ExecutorView, FrameworkView, Now};

/// Asks the agent for its state document.
pub async fn document(ctx: &HttpContext) -> Result<Value, ApiError> {
    let flags = ctx.flags.clone();
    let start_time = ctx.start_time;
    let sandbox = ctx.sandbox.clone();
    let document = ctx
        .agent
        .send(Inspect(Box::new(move |state, now| {
            render(state, now, &sandbox, &flags, start_time)
        })))
        .await?;
    Ok(document)
}

/// Mesos renders resources in state documents as a flat `{"cpus": 2.0, "ports": "[...]"}`,
/// with the four standard scalars always present.
pub fn resources_object(resources: &Resources) -> Value {
    let mut flat = resources.clone();
    flat.unallocate();
    let flat = flat.flatten();
    let mut object = Map::new();
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

fn resources_of(resources: &[strata_protocol::Resource]) -> Resources {
    Resources::from_resources(resources.iter().cloned()).unwrap_or_default()
}

/// Mesos renders attributes as one object, each attribute's value in its text form.
fn attributes_object(attributes: &[Attribute]) -> Value {
    let mut object = Map::new();
    for attribute in attributes {
        let value = match attribute.value_type {
            ValueType::Scalar => attribute.scalar.map(|scalar| json!(scalar.value)),
            ValueType::Ranges => attribute
                .ranges
                .as_ref()
                .map(|ranges| json!(ranges.to_string())),
            ValueType::Set => attribute.set.as_ref().map(|set| json!(set.to_string())),
            ValueType::Text => attribute.text.as_ref().map(|text| json!(text.value)),
        };
        if let Some(value) = value {
            object.insert(attribute.name.clone(), value);
        }
    }
    Value::Object(object)
}

/// The role of the first resource, as Mesos reports a task's or executor's role.
fn role_of(resources: &[strata_protocol::Resource]) -> Option<String> {
    resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
}

fn task_json(task: &Task) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|status| {
            let mut object = json!({"state": status.state, "timestamp": status.timestamp});
            if let Some(healthy) = status.healthy {
                object["healthy"] = json!(healthy);
            }
            object
        })
        .collect();
    let mut object = json!({
        "id": task.task_id.as_str(),
        "name": task.name,
        "framework_id": task.framework_id.as_str(),
        "executor_id": task.executor_id.as_ref().map(|e| e.as_str()).unwrap_or(""),
        "slave_id": task.agent_id.as_str(),
        "state": task.state,
        "resources": resources_object(&resources_of(&task.resources)),
        "role": role_of(&task.resources).unwrap_or_else(|| "*".into()),
        "statuses": statuses,
    });
    if let Some(user) = &task.user {
        object["user"] = json!(user);
    }
    if let Some(labels) = &task.labels {
        object["labels"] = json!(labels.labels);
    }
    if let Some(container) = &task.container {
        object["container"] = json!(container);
    }
    object
}

fn queued_task_json(task: &TaskInfo) -> Value {
    let mut object = json!({
        "id": task.task_id.as_str(),
        "name": task.name,
        "slave_id": task.agent_id.as_str(),
        "resources": resources_object(&resources_of(&task.resources)),
        "role": role_of(&task.resources).unwrap_or_else(|| "*".into()),
    });
    if let Some(command) = &task.command {
        object["command"] = json!(command);
    }
    if let Some(executor) = &task.executor {
        object["executor_id"] = json!(executor.executor_id.as_str());
    }
    object
}

/// The resources allocated to an executor: its own, and those of its queued and live tasks.
pub fn executor_resources(executor: &ExecutorView) -> Resources {
    let mut resources = resources_of(&executor.info.resources);
    for task in &executor.queued {
        resources += &resources_of(&task.resources);
    }
    for task in executor
        .tasks
        .iter()
        .filter(|task| !task.state.is_terminal())
    {
        resources += &resources_of(&task.resources);
    }
    resources
}

/// The sandbox of an executor's run, as `directory` reports it.
pub fn executor_directory(
    sandbox: &SandboxLayout,
    state: &AgentState,
    framework: &FrameworkView,
    executor: &ExecutorView,
) -> String {
    match (state.agent_id(), &framework.info.id) {
        (Some(agent_id), Some(framework_id)) => sandbox
            .run_dir(
                agent_id,
                framework_id,
                &executor.info.executor_id,
                &executor.container_id,
            )
            .display()
            .to_string(),
        _ => String::new(),
    }
}

fn executor_json(
    sandbox: &SandboxLayout,
    state: &AgentState,
    framework: &FrameworkView,
    executor: &ExecutorView,
) -> Value {
    let info = &executor.info;
    // `tasks` holds live tasks and terminal ones awaiting acknowledgement; Mesos lists the
    // latter with the completed ones.
    let (terminated, live): (Vec<&Task>, Vec<&Task>) = executor
        .tasks
        .iter()
        .partition(|task| task.state.is_terminal());
    let mut object = json!({
        "id": info.executor_id.as_str(),
        "name": info.name.clone().unwrap_or_default(),
        "source": info.source.clone().unwrap_or_default(),
        "container": executor.container_id.as_str(),
        "directory": executor_directory(sandbox, state, framework, executor),
        "resources": resources_object(&executor_resources(executor)),
        "tasks": live.into_iter().map(task_json).collect::<Vec<_>>(),
        "queued_tasks": executor.queued.iter().map(queued_task_json).collect::<Vec<_>>(),
        "completed_tasks": executor.completed.iter().chain(terminated).map(task_json).collect::<Vec<_>>(),
    });
    if let Some(role) = role_of(&info.resources) {
        object["role"] = json!(role);
    }
    if let Some(labels) = &info.labels {
        object["labels"] = json!(labels.labels);
    }
    if let Some(executor_type) = &info.executor_type {
        object["type"] = json!(executor_type);
    }
    object
}

fn framework_json(sandbox: &SandboxLayout, state: &AgentState, framework: &FrameworkView) -> Value {
    let info = &framework.info;
    let executors = |executors: &[ExecutorView]| -> Vec<Value> {
        executors
            .iter()
            .map(|executor| executor_json(sandbox, state, framework, executor))
            .collect()
    };
    let mut object = json!({
        "id": info.id.as_ref().map(|id| id.as_str()).unwrap_or(""),
        "name": info.name,
        "user": info.user,
        "failover_timeout": info.failover_timeout(),
        "checkpoint": info.checkpoint(),
        "hostname": info.hostname.clone().unwrap_or_default(),
        "executors": executors(&framework.executors),
        "completed_executors": executors(&framework.completed_executors),
    });
    if let Some(principal) = &info.principal {
        object["principal"] = json!(principal);
    }
    // Mesos writes `roles` for multi-role frameworks and `role` for the others.
    if info.has_capability(FrameworkCapabilityType::MultiRole) {
        object["roles"] = json!(info.roles);
    } else {
        object["role"] = json!(info.role());
    }
    object
}

/// Renders the whole state document.
pub fn render(
    state: &AgentState,
    now: Now,
    sandbox: &SandboxLayout,
    flags: &[(String, String)],
    start_time: f64,
) -> Value {
    let info = state.agent_info();
    let total = state.total_resources();
    let used = state.used_resources();
    let reserved_object = |resources: &Resources| -> Map<String, Value> {
        resources
            .reservations()
            .into_iter()
            .map(|(role, r)| (role, resources_object(&r)))
            .collect()
    };
    let reserved_full: Map<String, Value> = total
        .reservations()
        .into_iter()
        .map(|(role, r)| (role, json!(r.to_wire())))
        .collect();
    let mut document = json!({
        "version": super::MESOS_COMPAT_VERSION,
        "strata_version": state.version(),
        "git_sha": "",
        "git_tag": "",
        "build_date": "",
        "build_time": 0.0,
        "build_user": "strata",
        "start_time": start_time,
        "uptime_secs": now.mono.as_secs_f64(),
        "id": state.agent_id().map(|id| id.as_str()).unwrap_or(""),
        "pid": state.pid().to_string(),
        "hostname": info.hostname,
        "resources": resources_object(total),
        "reserved_resources": reserved_object(total),
        "unreserved_resources": resources_object(&total.unreserved()),
        "reserved_resources_full": reserved_full,
        "unreserved_resources_full": total.unreserved().to_wire(),
        "reserved_resources_allocated": reserved_object(&used),
        "unreserved_resources_allocated": resources_object(&used.unreserved()),
        "resource_providers": [],
        "attributes": attributes_object(&info.attributes),
        "flags": flags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
        "frameworks": state.frameworks().iter().map(|f| framework_json(sandbox, state, f)).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks().iter().map(|f| framework_json(sandbox, state, f)).collect::<Vec<_>>(),
    });
    if let Some(master) = state.master() {
        document["master_hostname"] = json!(master.host());
    }
    document
}
