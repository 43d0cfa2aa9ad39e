//! `POST /api/v1`: the Mesos v1 operator API (JSON), for the calls the master supports.
//!
//! A call is `{"type": "GET_STATE", "get_state": {...}}`; the answer to a query has the same
//! shape, and a successful change answers 200 with an empty body, as in Mesos.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_protocol::mesos::{DrainConfig, DurationInfo};
use strata_protocol::{AgentId, FrameworkId, Resources};

use super::{ApiError, HttpContext, check_json_request};
use crate::actor::{Inspect, OperateCall, OperateCallError, SubscribeOperator};
use crate::metrics::mesos_snapshot;
use crate::state::{AgentMode, ConversionDirection as Direction, MasterState, OperatorError};

#[derive(Debug, Deserialize)]
struct WeightInfo {
    role: String,
    weight: f64,
}

#[derive(Debug, Deserialize)]
struct UpdateWeights {
    #[serde(default)]
    weight_infos: Vec<WeightInfo>,
}

#[derive(Debug, Deserialize)]
struct ScalarValue {
    value: f64,
}

#[derive(Debug, Deserialize)]
struct QuotaConfig {
    role: String,
    #[serde(default)]
    limits: BTreeMap<String, ScalarValue>,
    #[serde(default)]
    guarantees: BTreeMap<String, ScalarValue>,
}

#[derive(Debug, Deserialize)]
struct UpdateQuota {
    #[serde(default)]
    quota_configs: Vec<QuotaConfig>,
}

#[derive(Debug, Deserialize)]
struct FrameworkRef {
    framework_id: FrameworkId,
}

#[derive(Debug, Deserialize)]
struct AgentRef {
    agent_id: AgentId,
}

#[derive(Debug, Deserialize)]
struct ConvertResources {
    agent_id: AgentId,
    #[serde(default)]
    resources: Vec<strata_protocol::Resource>,
}

#[derive(Debug, Deserialize)]
struct DrainAgent {
    agent_id: AgentId,
    #[serde(default)]
    max_grace_period: Option<DurationInfo>,
    #[serde(default)]
    mark_gone: Option<bool>,
}

/// The read-only calls answered from the master's state, named as the Mesos calls are.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::enum_variant_names)]
enum Query {
    GetMaster,
    GetMetrics,
    GetState,
    GetAgents,
    GetFrameworks,
    GetExecutors,
    GetTasks,
    GetRoles,
    GetWeights,
    GetQuota,
}

/// The operator calls Strata's master answers.
#[derive(Debug)]
enum Call {
    GetHealth,
    GetVersion,
    GetFlags,
    Subscribe,
    Query(Query),
    UpdateWeights(UpdateWeights),
    UpdateQuota(UpdateQuota),
    Teardown(FrameworkRef),
    ReserveResources(ConvertResources),
    UnreserveResources(ConvertResources),
    MarkAgentGone(AgentRef),
    DrainAgent(DrainAgent),
    DeactivateAgent(AgentRef),
    ReactivateAgent(AgentRef),
}

/// Reads `{"type": ..., "<type>": {...}}` into a [`Call`], saying what is wrong otherwise.
fn parse_call(body: &[u8]) -> Result<Call, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("request body is not JSON: {err}")))?;
    let call_type = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("call must have a string 'type'".into()))?
        .to_owned();
    let field = call_type.to_ascii_lowercase();
    let payload = |value: &Value| -> Result<Value, ApiError> {
        value
            .get(&field)
            .cloned()
            .ok_or_else(|| ApiError::BadRequest(format!("{call_type} call has no '{field}' field")))
    };
    fn parse<T: for<'de> Deserialize<'de>>(call_type: &str, payload: Value) -> Result<T, ApiError> {
        serde_json::from_value(payload)
            .map_err(|err| ApiError::BadRequest(format!("invalid {call_type} call: {err}")))
    }
    let call = match call_type.as_str() {
        "GET_HEALTH" => Call::GetHealth,
        "SUBSCRIBE" => Call::Subscribe,
        "GET_VERSION" => Call::GetVersion,
        "GET_FLAGS" => Call::GetFlags,
        "GET_MASTER" => Call::Query(Query::GetMaster),
        "GET_METRICS" => Call::Query(Query::GetMetrics),
        "GET_STATE" => Call::Query(Query::GetState),
        "GET_AGENTS" => Call::Query(Query::GetAgents),
        "GET_FRAMEWORKS" => Call::Query(Query::GetFrameworks),
        "GET_EXECUTORS" => Call::Query(Query::GetExecutors),
        "GET_TASKS" => Call::Query(Query::GetTasks),
        "GET_ROLES" => Call::Query(Query::GetRoles),
        "GET_WEIGHTS" => Call::Query(Query::GetWeights),
        "UPDATE_WEIGHTS" => Call::UpdateWeights(parse(&call_type, payload(&value)?)?),
        "GET_QUOTA" => Call::Query(Query::GetQuota),
        "UPDATE_QUOTA" => Call::UpdateQuota(parse(&call_type, payload(&value)?)?),
        "TEARDOWN" => Call::Teardown(parse(&call_type, payload(&value)?)?),
        "RESERVE_RESOURCES" => Call::ReserveResources(parse(&call_type, payload(&value)?)?),
        "UNRESERVE_RESOURCES" => Call::UnreserveResources(parse(&call_type, payload(&value)?)?),
        "MARK_AGENT_GONE" => Call::MarkAgentGone(parse(&call_type, payload(&value)?)?),
        "DRAIN_AGENT" => Call::DrainAgent(parse(&call_type, payload(&value)?)?),
        "DEACTIVATE_AGENT" => Call::DeactivateAgent(parse(&call_type, payload(&value)?)?),
        "REACTIVATE_AGENT" => Call::ReactivateAgent(parse(&call_type, payload(&value)?)?),
        other => {
            return Err(ApiError::BadRequest(format!(
                "operator call type '{other}' is not supported by this master"
            )));
        }
    };
    Ok(call)
}

impl From<OperatorError> for ApiError {
    fn from(err: OperatorError) -> Self {
        match err {
            OperatorError::BadRequest(message) => ApiError::BadRequest(message),
            OperatorError::NotFound(message) => ApiError::NotFound(message),
        }
    }
}

pub async fn call(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<HttpContext>,
) -> Result<HttpResponse, ApiError> {
    check_json_request(&req)?;
    let call = parse_call(&body)?;
    match call {
        Call::GetHealth => answer("GET_HEALTH", json!({"healthy": true})),
        Call::Subscribe => {
            let (events, rx) = tokio::sync::mpsc::unbounded_channel();
            ctx.master.send(SubscribeOperator { events }).await?;
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|record| (Ok::<_, actix_web::Error>(record), rx))
            });
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .streaming(stream))
        }
        Call::GetVersion => answer(
            "GET_VERSION",
            json!({"version_info": super::version_json()}),
        ),
        Call::GetFlags => {
            let flags: Vec<Value> = ctx
                .flags
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            answer("GET_FLAGS", json!({"flags": flags}))
        }
        Call::UpdateWeights(update) => {
            let weights = update
                .weight_infos
                .into_iter()
                .map(|w| (w.role, w.weight))
                .collect();
            operate(&ctx, move |state, _, out| {
                state.update_weights(weights, out)
            })
            .await
        }
        Call::UpdateQuota(update) => {
            let mut limits = BTreeMap::new();
            for config in update.quota_configs {
                if !config.guarantees.is_empty() {
                    return Err(ApiError::BadRequest(
                        "quota guarantees are not supported; set 'limits'".into(),
                    ));
                }
                let role_limits = config
                    .limits
                    .into_iter()
                    .map(|(k, v)| (k, v.value))
                    .collect();
                limits.insert(config.role, role_limits);
            }
            operate(&ctx, move |state, now, out| {
                state.update_quota(now, limits, out)
            })
            .await
        }
        Call::Teardown(target) => {
            operate(&ctx, move |state, now, out| {
                state.teardown(now, &target.framework_id, out)
            })
            .await
        }
        Call::ReserveResources(convert) => {
            operate(&ctx, move |state, now, out| {
                state.operator_convert(
                    now,
                    &convert.agent_id,
                    Direction::Reserve,
                    convert.resources,
                    out,
                )
            })
            .await
        }
        Call::UnreserveResources(convert) => {
            operate(&ctx, move |state, now, out| {
                state.operator_convert(
                    now,
                    &convert.agent_id,
                    Direction::Unreserve,
                    convert.resources,
                    out,
                )
            })
            .await
        }
        Call::MarkAgentGone(target) => {
            operate(&ctx, move |state, now, out| {
                state.mark_agent_gone(now, &target.agent_id, out)
            })
            .await
        }
        Call::DrainAgent(drain) => {
            let config = DrainConfig {
                max_grace_period: drain.max_grace_period,
                mark_gone: drain.mark_gone,
            };
            operate(&ctx, move |state, now, out| {
                state.drain_agent(now, &drain.agent_id, config, out)
            })
            .await
        }
        Call::DeactivateAgent(target) => {
            operate(&ctx, move |state, now, out| {
                state.deactivate_agent(now, &target.agent_id, out)
            })
            .await
        }
        Call::ReactivateAgent(target) => {
            operate(&ctx, move |state, now, out| {
                state.reactivate_agent(now, &target.agent_id, out)
            })
            .await
        }
        Call::Query(query) => {
            let start_time = ctx.start_time;
            let (call_type, document) = ctx
                .master
                .send(Inspect(Box::new(move |state, now| {
                    query_answer(state, now, query, start_time)
                })))
                .await?;
            answer(call_type, document)
        }
    }
}

fn answer(call_type: &str, payload: Value) -> Result<HttpResponse, ApiError> {
    let mut document = serde_json::Map::new();
    document.insert("type".into(), json!(call_type));
    document.insert(call_type.to_ascii_lowercase(), payload);
    Ok(HttpResponse::Ok().json(Value::Object(document)))
}

async fn operate(
    ctx: &HttpContext,
    change: impl FnOnce(
        &mut MasterState,
        crate::state::Now,
        &mut Vec<crate::state::Effect>,
    ) -> Result<(), OperatorError>
    + Send
    + 'static,
) -> Result<HttpResponse, ApiError> {
    ctx.master
        .send(OperateCall(Box::new(change)))
        .await?
        .map_err(|err| match err {
            OperateCallError::Operator(err) => ApiError::from(err),
            OperateCallError::Registry => ApiError::Unavailable(err.to_string()),
        })?;
    Ok(HttpResponse::Ok().finish())
}

fn time_info(unix: f64) -> Value {
    json!({"nanoseconds": (unix * 1e9) as i64})
}

/// An agent in the operator API's `Agent` form.
pub(crate) fn agent_json(agent: &crate::state::AgentSummary) -> Value {
    json!({
        "agent_info": agent.info,
        "active": agent.connected && agent.mode == AgentMode::Active,
        "deactivated": agent.mode != AgentMode::Active,
        "pid": agent.pid.to_string(),
        "version": agent.version,
        "registered_time": time_info(agent.registered_time),
        "reregistered_time": agent.reregistered_time.map(time_info),
        "total_resources": agent.total.to_wire(),
        "allocated_resources": agent.used.to_wire(),
        "offered_resources": agent.offered.to_wire(),
    })
}

/// A framework in the operator API's `Framework` form.
pub(crate) fn framework_json(framework: &crate::state::FrameworkSummary) -> Value {
    json!({
        "framework_info": framework.info,
        "active": framework.active && framework.connected,
        "connected": framework.connected,
        "recovered": false,
        "registered_time": time_info(framework.registered_time),
        "reregistered_time": framework.reregistered_time.map(time_info),
        "unregistered_time": framework.unregistered_time.map(time_info),
        "offers": framework.offers,
        "suppressed_roles": framework.suppressed_roles,
    })
}

fn get_agents(state: &MasterState) -> Value {
    let agents: Vec<Value> = state.agents().iter().map(agent_json).collect();
    json!({"agents": agents, "recovered_agents": recovered_agents(state)})
}

/// The agents known from the registry that have not reregistered since the master started, as
/// `AgentInfo`s with their IDs (GET_AGENTS `recovered_agents`).
fn recovered_agents(state: &MasterState) -> Vec<strata_protocol::mesos::AgentInfo> {
    state
        .recovered_agents()
        .into_iter()
        .map(|(agent_id, mut info)| {
            info.id = Some(agent_id);
            info
        })
        .collect()
}

fn get_frameworks(state: &MasterState) -> Value {
    json!({
        "frameworks": state.frameworks().iter().map(framework_json).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks().iter().map(framework_json).collect::<Vec<_>>(),
    })
}

fn get_tasks(state: &MasterState) -> Value {
    let frameworks = state.frameworks();
    let tasks: Vec<_> = frameworks.iter().flat_map(|f| f.tasks.iter()).collect();
    let unreachable: Vec<_> = frameworks
        .iter()
        .flat_map(|f| f.unreachable_tasks.iter())
        .collect();
    let mut completed: Vec<_> = frameworks
        .iter()
        .flat_map(|f| f.completed_tasks.iter())
        .cloned()
        .collect();
    completed.extend(
        state
            .completed_frameworks()
            .into_iter()
            .flat_map(|f| f.completed_tasks),
    );
    json!({"tasks": tasks, "unreachable_tasks": unreachable, "completed_tasks": completed, "pending_tasks": [], "orphan_tasks": []})
}

fn get_executors(state: &MasterState) -> Value {
    let executors: Vec<Value> = state
        .executors()
        .into_iter()
        .map(|(agent_id, info)| json!({"agent_id": agent_id, "executor_info": info}))
        .collect();
    json!({"executors": executors, "orphan_executors": []})
}

fn get_roles(state: &MasterState) -> Value {
    let roles: Vec<Value> = state
        .roles()
        .iter()
        .map(|role| {
            let used: Resources = role.allocated.clone() + &role.offered;
            json!({
                "name": role.role,
                "weight": role.weight,
                "frameworks": role.frameworks,
                "resources": used.to_wire(),
                "allocated": role.allocated.to_wire(),
                "offered": role.offered.to_wire(),
                "quota": {"role": role.role, "consumed": role.quota_consumed.to_wire()},
            })
        })
        .collect();
    json!({"roles": roles})
}

/// The `GetState` document: tasks, executors, frameworks and agents.
pub(crate) fn get_state(state: &MasterState) -> Value {
    json!({
        "get_tasks": get_tasks(state),
        "get_executors": get_executors(state),
        "get_frameworks": get_frameworks(state),
        "get_agents": get_agents(state),
    })
}

/// Answers a read-only call from the state.
fn query_answer(
    state: &MasterState,
    now: crate::state::Now,
    query: Query,
    start_time: f64,
) -> (&'static str, Value) {
    match query {
        Query::GetMaster => (
            "GET_MASTER",
            json!({"master_info": state.config().master_info, "start_time": start_time, "elected_time": start_time}),
        ),
        Query::GetMetrics => {
            let metrics: Vec<Value> = mesos_snapshot(state, now)
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            ("GET_METRICS", json!({"metrics": metrics}))
        }
        Query::GetAgents => ("GET_AGENTS", get_agents(state)),
        Query::GetFrameworks => ("GET_FRAMEWORKS", get_frameworks(state)),
        Query::GetTasks => ("GET_TASKS", get_tasks(state)),
        Query::GetExecutors => ("GET_EXECUTORS", get_executors(state)),
        Query::GetRoles => ("GET_ROLES", get_roles(state)),
        Query::GetWeights => {
            let infos: Vec<Value> = state
                .weights()
                .iter()
                .map(|(role, weight)| json!({"role": role, "weight": weight}))
                .collect();
            ("GET_WEIGHTS", json!({"weight_infos": infos}))
        }
        Query::GetQuota => {
            let configs: Vec<Value> = state
                .quotas()
                .iter()
                .map(|(role, limits)| {
                    let limits: serde_json::Map<String, Value> = limits
                        .iter()
                        .map(|(name, value)| (name.clone(), json!({"value": value})))
                        .collect();
                    json!({"role": role, "limits": limits})
                })
                .collect();
            ("GET_QUOTA", json!({"status": {"configs": configs}}))
        }
        Query::GetState => ("GET_STATE", get_state(state)),
    }
}
