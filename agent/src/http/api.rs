//! `POST /api/v1`: the Mesos v1 agent operator API (JSON), for the read-only calls the agent
//! supports: GET_HEALTH, GET_VERSION, GET_FLAGS, GET_METRICS, GET_STATE, GET_CONTAINERS,
//! GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS and GET_AGENT.
//!
//! A call is `{"type": "GET_TASKS"}`; the answer has the same shape as Mesos's `agent.Response`,
//! `{"type": "GET_TASKS", "get_tasks": {...}}`. Other call types, including the Mesos calls
//! Strata does not implement (LAUNCH_CONTAINER, ATTACH_CONTAINER_INPUT, ...), answer 400 naming
//! the type.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use strata_protocol::ContainerId;
use strata_protocol::mesos::{Task, TaskInfo, TaskState};

use super::state_json::executor_resources;
use super::{ApiError, HttpContext, check_accept, check_content_type};
use crate::actor::{ContainerUsage, Inspect, SampleMetrics};
use crate::containerizer::Usage;
use crate::metrics::mesos_snapshot;
use crate::state::{AgentState, ExecutorPhase, ExecutorView, FrameworkView, Now};

const MIB: f64 = 1024.0 * 1024.0;

/// The operator calls the agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Health,
    Version,
    Flags,
    Metrics,
    State,
    Containers,
    Frameworks,
    Executors,
    Tasks,
    Agent,
}

/// Reads `{"type": ...}` into a [`Call`], saying what is wrong otherwise.
fn parse_call(body: &[u8]) -> Result<Call, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("request body is not JSON: {err}")))?;
    let call_type = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("call must have a string 'type'".into()))?;
    let call = match call_type {
        "GET_HEALTH" => Call::Health,
        "GET_VERSION" => Call::Version,
        "GET_FLAGS" => Call::Flags,
        "GET_METRICS" => Call::Metrics,
        "GET_STATE" => Call::State,
        "GET_CONTAINERS" => Call::Containers,
        "GET_FRAMEWORKS" => Call::Frameworks,
        "GET_EXECUTORS" => Call::Executors,
        "GET_TASKS" => Call::Tasks,
        "GET_AGENT" => Call::Agent,
        other => {
            return Err(ApiError::BadRequest(format!(
                "agent call type '{other}' is not supported by this agent"
            )));
        }
    };
    Ok(call)
}

/// Handles `POST /api/v1`.
pub async fn call(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<HttpContext>,
) -> Result<HttpResponse, ApiError> {
    check_content_type(&req)?;
    check_accept(&req)?;
    let call = parse_call(&body)?;
    let (call_type, payload) = match call {
        Call::Health => ("GET_HEALTH", json!({"healthy": true})),
        Call::Version => (
            "GET_VERSION",
            json!({"version_info": super::version_json()}),
        ),
        Call::Flags => {
            let flags: Vec<Value> = ctx
                .flags
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            ("GET_FLAGS", json!({"flags": flags}))
        }
        Call::Metrics => {
            let sample = ctx.agent.send(SampleMetrics).await?;
            let metrics: Vec<Value> = mesos_snapshot(&sample)
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            ("GET_METRICS", json!({"metrics": metrics}))
        }
        Call::Containers => {
            let usage = ctx.agent.send(ContainerUsage).await?;
            let containers = ctx
                .agent
                .send(Inspect(Box::new(move |state, now| {
                    get_containers(state, now, &usage)
                })))
                .await?;
            ("GET_CONTAINERS", containers)
        }
        query => {
            ctx.agent
                .send(Inspect(Box::new(move |state, _| {
                    query_answer(state, query)
                })))
                .await?
        }
    };
    let mut document = serde_json::Map::new();
    document.insert("type".into(), json!(call_type));
    document.insert(call_type.to_ascii_lowercase(), payload);
    Ok(HttpResponse::Ok().json(Value::Object(document)))
}

/// Answers a call about the state alone.
fn query_answer(state: &AgentState, call: Call) -> (&'static str, Value) {
    match call {
        Call::State => ("GET_STATE", get_state(state)),
        Call::Frameworks => ("GET_FRAMEWORKS", get_frameworks(state)),
        Call::Executors => ("GET_EXECUTORS", get_executors(state)),
        Call::Tasks => ("GET_TASKS", get_tasks(state)),
        _ => ("GET_AGENT", json!({"agent_info": state.agent_info()})),
    }
}

/// The `GetState` document: tasks, executors and frameworks.
pub fn get_state(state: &AgentState) -> Value {
    json!({
        "get_tasks": get_tasks(state),
        "get_executors": get_executors(state),
        "get_frameworks": get_frameworks(state),
    })
}

fn get_frameworks(state: &AgentState) -> Value {
    let entry = |framework: &FrameworkView| json!({"framework_info": framework.info});
    json!({
        "frameworks": state.frameworks().iter().map(entry).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks().iter().map(entry).collect::<Vec<_>>(),
    })
}

fn get_executors(state: &AgentState) -> Value {
    let entry = |executor: &ExecutorView| json!({"executor_info": executor.info});
    let frameworks = state.frameworks();
    let completed_frameworks = state.completed_frameworks();
    let executors: Vec<Value> = frameworks
        .iter()
        .flat_map(|framework| framework.executors.iter())
        .map(entry)
        .collect();
    // Executors of completed frameworks have all terminated.
    let completed: Vec<Value> = frameworks
        .iter()
        .flat_map(|framework| framework.completed_executors.iter())
        .chain(completed_frameworks.iter().flat_map(|framework| {
            framework
                .executors
                .iter()
                .chain(&framework.completed_executors)
        }))
        .map(entry)
        .collect();
    json!({"executors": executors, "completed_executors": completed})
}

/// A queued task as the `Task` it will become: STAGING, with the executor it waits for.
fn queued_task(framework: &FrameworkView, executor: &ExecutorView, info: &TaskInfo) -> Value {
    let mut task = json!({
        "name": info.name,
        "task_id": info.task_id,
        "framework_id": framework.info.id,
        "executor_id": executor.info.executor_id,
        "agent_id": info.agent_id,
        "state": TaskState::Staging,
        "resources": info.resources,
    });
    if let Some(labels) = &info.labels {
        task["labels"] = json!(labels);
    }
    task
}

fn get_tasks(state: &AgentState) -> Value {
    let frameworks = state.frameworks();
    let completed_frameworks = state.completed_frameworks();
    let mut queued = Vec::new();
    let mut launched: Vec<&Task> = Vec::new();
    let mut terminated: Vec<&Task> = Vec::new();
    let mut completed: Vec<&Task> = Vec::new();
    for framework in &frameworks {
        for executor in &framework.executors {
            queued.extend(
                executor
                    .queued
                    .iter()
                    .map(|info| queued_task(framework, executor, info)),
            );
            for task in &executor.tasks {
                if task.state.is_terminal() {
                    terminated.push(task);
                } else {
                    launched.push(task);
                }
            }
            completed.extend(&executor.completed);
        }
    }
    for framework in frameworks.iter().chain(&completed_frameworks) {
        for executor in &framework.completed_executors {
            completed.extend(executor.tasks.iter().chain(&executor.completed));
        }
    }
    for framework in &completed_frameworks {
        for executor in &framework.executors {
            completed.extend(executor.tasks.iter().chain(&executor.completed));
        }
    }
    json!({
        "pending_tasks": [],
        "queued_tasks": queued,
        "launched_tasks": launched,
        "terminated_tasks": terminated,
        "completed_tasks": completed,
    })
}

/// The `GetContainers` document: every live executor's container with what it uses now.
fn get_containers(state: &AgentState, now: Now, usage: &BTreeMap<ContainerId, Usage>) -> Value {
    let mut containers = Vec::new();
    for framework in state.frameworks() {
        for executor in &framework.executors {
            if executor.phase == ExecutorPhase::Terminated {
                continue;
            }
            let mut container = json!({
                "framework_id": framework.info.id,
                "executor_id": executor.info.executor_id,
                "executor_name": executor.info.name.clone().unwrap_or_default(),
                "container_id": executor.container_id,
            });
            let mut status = json!({"container_id": executor.container_id});
            if let Some(pid) = executor.pid {
                status["executor_pid"] = json!(pid);
            }
            container["container_status"] = status;
            if let Some(usage) = usage.get(&executor.container_id) {
                container["resource_statistics"] = statistics(now, executor, usage);
            }
            containers.push(container);
        }
    }
    json!({"containers": containers})
}

/// A container's usage as Mesos's `ResourceStatistics`, with the limits from its resources.
fn statistics(now: Now, executor: &ExecutorView, usage: &Usage) -> Value {
    let allocated = executor_resources(executor);
    let mut statistics = json!({
        "timestamp": now.unix,
        "processes": usage.pids,
        "cpus_user_time_secs": usage.cpu_user_secs,
        "cpus_system_time_secs": usage.cpu_system_secs,
        "mem_rss_bytes": usage.mem_rss_bytes,
    });
    if let Some(cpus) = allocated.scalar("cpus") {
        statistics["cpus_limit"] = json!(cpus);
    }
    let mem_limit = usage
        .mem_limit_bytes
        .or_else(|| allocated.scalar("mem").map(|mib| (mib * MIB) as u64));
    if let Some(limit) = mem_limit {
        statistics["mem_limit_bytes"] = json!(limit);
    }
    if let Some(total) = usage.mem_usage_bytes {
        statistics["mem_total_bytes"] = json!(total);
    }
    statistics
}
