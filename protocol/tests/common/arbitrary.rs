//! Proptest strategies for every message type of `strata-protocol`.
//!
//! The values are valid on the wire: IDs pass validation, floats are finite and have short
//! decimal forms (so that JSON, whose float parsing is only exact for those, round-trips them
//! bit for bit), names are non-empty, and resources are SCALAR or RANGES with matching payloads.
//! Collections stay small so that an arbitrary envelope fits well inside the codec's frame and
//! depth limits.
#![allow(dead_code)]

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use strata_protocol::envelope::{Body, Envelope, Epoch, Pid};
use strata_protocol::ids::{AgentId, ContainerId, ExecutorId, FrameworkId, OfferId, TaskId};
use strata_protocol::mesos::{
    AgentCapability, AgentCapabilityType, AgentInfo, Attribute, Bytes, CheckType, CommandInfo,
    CommandUri, ContainerInfo, ContainerType, Create, Destroy, DockerInfo, DockerNetwork,
    DrainConfig, DurationInfo, Environment, EnvironmentVariable, ExecutorInfo, ExecutorType,
    Filters, FrameworkCapability, FrameworkCapabilityType, FrameworkInfo, HealthCheck,
    HttpCheckInfo, KillPolicy, Label, Labels, Launch, LaunchGroup, MasterInfo, Offer, Operation,
    OperationBody, Parameter, PortMapping, Reserve, Task, TaskGroupInfo, TaskInfo, TaskState,
    TaskStatus, TaskStatusReason, TaskStatusSource, TcpCheckInfo, Text, TimeInfo, Unreserve,
    Volume, VolumeMode,
};
use strata_protocol::resources::{Scalar, ValueType};
use strata_protocol::{Resource, executor, internal, scheduler};

// ---------------------------------------------------------------------------------------------
// Scalars.
// ---------------------------------------------------------------------------------------------

/// A non-empty lowercase name.
pub fn arb_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,11}"
}

/// A role: `*` or one or two name segments.
pub fn arb_role() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        "[a-z][a-z0-9]{0,7}(/[a-z][a-z0-9]{0,7})?"
    ]
}

/// Free text, including spaces and non-ASCII characters.
pub fn arb_text() -> impl Strategy<Value = String> {
    "[ -~é名]{0,24}"
}

/// A string that is a valid ID: it starts with an alphanumeric character, so it is never `.` or
/// `..`, and contains no `/`, `\` or control characters.
pub fn arb_id_string() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,19}"
}

macro_rules! arb_id {
    ($fn_name:ident, $ty:ty) => {
        /// An arbitrary valid ID.
        pub fn $fn_name() -> impl Strategy<Value = $ty> {
            arb_id_string().prop_map(|value| <$ty>::new(value).expect("arb_id_string is valid"))
        }
    };
}

arb_id!(arb_framework_id, FrameworkId);
arb_id!(arb_agent_id, AgentId);
arb_id!(arb_offer_id, OfferId);
arb_id!(arb_task_id, TaskId);
arb_id!(arb_executor_id, ExecutorId);
arb_id!(arb_container_id, ContainerId);

/// A finite, non-negative float with at most three decimals, like Mesos's fixed-point scalars.
pub fn arb_f64() -> impl Strategy<Value = f64> {
    (0u64..100_000_000).prop_map(|milli| milli as f64 / 1000.0)
}

/// Seconds since the epoch, with a fractional part.
pub fn arb_timestamp() -> impl Strategy<Value = f64> {
    (1_600_000_000u64..2_000_000_000, 0u32..4)
        .prop_map(|(secs, quarter)| secs as f64 + f64::from(quarter) * 0.25)
}

/// Arbitrary binary data.
pub fn arb_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes)
}

/// A 16-byte UUID.
pub fn arb_uuid() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 16).prop_map(Bytes)
}

pub fn arb_duration() -> impl Strategy<Value = DurationInfo> {
    (0i64..1_000_000_000_000_000).prop_map(|nanoseconds| DurationInfo { nanoseconds })
}

pub fn arb_time() -> impl Strategy<Value = TimeInfo> {
    any::<i64>().prop_map(|nanoseconds| TimeInfo { nanoseconds })
}

pub fn arb_labels() -> impl Strategy<Value = Labels> {
    vec((arb_name(), option::of(arb_text())), 0..3).prop_map(|pairs| Labels {
        labels: pairs
            .into_iter()
            .map(|(key, value)| Label { key, value })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Resources and attributes.
// ---------------------------------------------------------------------------------------------

/// Builds a resource from its wire JSON, so that fields added to `Resource` later keep their
/// defaults and this file keeps compiling.
fn resource_from_json(json: serde_json::Value) -> Resource {
    serde_json::from_value(json).expect("valid resource JSON")
}

fn allocation_json(allocation_role: &Option<String>) -> serde_json::Value {
    match allocation_role {
        Some(role) => serde_json::json!({ "role": role }),
        None => serde_json::Value::Null,
    }
}

fn insert_common(
    json: &mut serde_json::Value,
    role: Option<String>,
    allocation_role: Option<String>,
) {
    let object = json.as_object_mut().expect("resource JSON is an object");
    if let Some(role) = role {
        object.insert("role".into(), role.into());
    }
    if allocation_role.is_some() {
        object.insert("allocation_info".into(), allocation_json(&allocation_role));
    }
}

/// A SCALAR resource (`cpus`, `mem`, `disk`, `gpus` or a custom name).
pub fn arb_scalar_resource() -> impl Strategy<Value = Resource> {
    (
        prop_oneof![
            select(vec!["cpus", "mem", "disk", "gpus"]).prop_map(str::to_owned),
            arb_name()
        ],
        (1u64..10_000_000).prop_map(|milli| milli as f64 / 1000.0),
        option::of(arb_role()),
        option::of(arb_role()),
    )
        .prop_map(|(name, value, role, allocation_role)| {
            let mut json = serde_json::json!({
                "name": name,
                "type": "SCALAR",
                "scalar": { "value": value },
            });
            insert_common(&mut json, role, allocation_role);
            resource_from_json(json)
        })
}

/// A RANGES resource of disjoint, sorted port ranges.
pub fn arb_ranges_resource() -> impl Strategy<Value = Resource> {
    (
        vec((1u64..500, 0u64..100), 1..4),
        option::of(arb_role()),
        option::of(arb_role()),
    )
        .prop_map(|(spans, role, allocation_role)| {
            let mut begin = 31_000u64;
            let mut ranges = Vec::new();
            for (gap, len) in spans {
                begin += gap;
                ranges.push(serde_json::json!({ "begin": begin, "end": begin + len }));
                begin += len;
            }
            let mut json = serde_json::json!({
                "name": "ports",
                "type": "RANGES",
                "ranges": { "range": ranges },
            });
            insert_common(&mut json, role, allocation_role);
            resource_from_json(json)
        })
}

pub fn arb_resource() -> impl Strategy<Value = Resource> {
    prop_oneof![3 => arb_scalar_resource(), 1 => arb_ranges_resource()]
}

pub fn arb_resources() -> impl Strategy<Value = Vec<Resource>> {
    vec(arb_resource(), 0..4)
}

pub fn arb_attribute() -> impl Strategy<Value = Attribute> {
    (
        arb_name(),
        prop_oneof![arb_f64().prop_map(Ok), arb_name().prop_map(Err)],
    )
        .prop_map(|(name, value)| match value {
            Ok(value) => Attribute {
                name,
                value_type: ValueType::Scalar,
                scalar: Some(Scalar { value }),
                ranges: None,
                set: None,
                text: None,
            },
            Err(value) => Attribute {
                name,
                value_type: ValueType::Text,
                scalar: None,
                ranges: None,
                set: None,
                text: Some(Text { value }),
            },
        })
}

fn arb_limits() -> impl Strategy<Value = BTreeMap<String, Scalar>> {
    btree_map(
        select(vec!["cpus".to_owned(), "mem".to_owned()]),
        arb_f64(),
        0..2,
    )
    .prop_map(|limits| {
        limits
            .into_iter()
            .map(|(k, value)| (k, Scalar { value }))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Frameworks, agents, masters.
// ---------------------------------------------------------------------------------------------

pub fn arb_framework_capability() -> impl Strategy<Value = FrameworkCapability> {
    select(vec![
        FrameworkCapabilityType::RevocableResources,
        FrameworkCapabilityType::TaskKillingState,
        FrameworkCapabilityType::GpuResources,
        FrameworkCapabilityType::SharedResources,
        FrameworkCapabilityType::PartitionAware,
        FrameworkCapabilityType::MultiRole,
        FrameworkCapabilityType::ReservationRefinement,
        FrameworkCapabilityType::RegionAware,
    ])
    .prop_map(FrameworkCapability::from)
}

pub fn arb_framework_info() -> BoxedStrategy<FrameworkInfo> {
    (
        (arb_name(), arb_name(), option::of(arb_framework_id())),
        (
            option::of(arb_f64()),
            option::of(any::<bool>()),
            option::of(arb_role()),
        ),
        vec(arb_role(), 0..3),
        (option::of(arb_name()), option::of(arb_name())),
        vec(arb_framework_capability(), 0..4),
        option::of(arb_labels()),
    )
        .prop_map(
            |(
                (user, name, id),
                (failover_timeout, checkpoint, role),
                roles,
                (hostname, principal),
                capabilities,
                labels,
            )| FrameworkInfo {
                user,
                name,
                id,
                failover_timeout,
                checkpoint,
                role,
                roles,
                hostname,
                principal,
                webui_url: None,
                capabilities,
                labels,
                offer_filters: BTreeMap::new(),
            },
        )
        .boxed()
}

pub fn arb_agent_info() -> BoxedStrategy<AgentInfo> {
    (
        arb_name(),
        option::of(1024i32..65535),
        arb_resources(),
        vec(arb_attribute(), 0..3),
        option::of(arb_agent_id()),
    )
        .prop_map(|(hostname, port, resources, attributes, id)| AgentInfo {
            hostname,
            port,
            resources,
            attributes,
            id,
            domain: None,
        })
        .boxed()
}

pub fn arb_master_info() -> impl Strategy<Value = MasterInfo> {
    (
        arb_id_string(),
        any::<u32>(),
        1u32..65535,
        option::of(arb_name()),
    )
        .prop_map(|(id, ip, port, hostname)| MasterInfo {
            id,
            ip,
            port,
            pid: Some(format!("master@127.0.0.1:{port}")),
            hostname,
            version: Some("0.1.0".into()),
            address: None,
            domain: None,
            capabilities: vec![],
        })
}

// ---------------------------------------------------------------------------------------------
// Commands, containers, executors, tasks.
// ---------------------------------------------------------------------------------------------

pub fn arb_command_info() -> BoxedStrategy<CommandInfo> {
    let uri = (
        arb_name(),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    )
        .prop_map(|(name, executable, extract)| CommandUri {
            value: format!("https://artifacts.example/{name}"),
            executable,
            extract,
            cache: None,
            output_file: None,
        });
    let environment = vec((arb_name(), arb_text()), 0..3).prop_map(|vars| Environment {
        variables: vars
            .into_iter()
            .map(|(name, value)| EnvironmentVariable::new(name.to_uppercase(), value))
            .collect(),
    });
    (
        vec(uri, 0..2),
        option::of(environment),
        any::<bool>(),
        arb_text(),
        vec(arb_name(), 0..3),
        option::of(arb_name()),
    )
        .prop_map(
            |(uris, environment, shell, value, arguments, user)| CommandInfo {
                uris,
                environment,
                // The shell form has no arguments; the argv form says so explicitly.
                shell: Some(shell),
                value: Some(value),
                arguments: if shell { vec![] } else { arguments },
                user,
            },
        )
        .boxed()
}

pub fn arb_container_info() -> impl Strategy<Value = ContainerInfo> {
    (
        arb_name(),
        select(vec![
            DockerNetwork::Host,
            DockerNetwork::Bridge,
            DockerNetwork::User,
        ]),
        vec((1u32..65535, 1u32..65535), 0..2),
        option::of(any::<bool>()),
        vec((arb_name(), arb_name()), 0..2),
        vec(arb_name(), 0..2),
    )
        .prop_map(
            |(image, network, ports, privileged, parameters, volumes)| ContainerInfo {
                container_type: ContainerType::Docker,
                volumes: volumes
                    .into_iter()
                    .map(|name| Volume {
                        mode: VolumeMode::Ro,
                        container_path: format!("/mnt/{name}"),
                        host_path: Some(format!("/srv/{name}")),
                        image: None,
                    })
                    .collect(),
                hostname: None,
                docker: Some(DockerInfo {
                    image: format!("registry.example/{image}:1"),
                    network: Some(network),
                    port_mappings: ports
                        .into_iter()
                        .map(|(host_port, container_port)| PortMapping {
                            host_port,
                            container_port,
                            protocol: Some("tcp".into()),
                        })
                        .collect(),
                    privileged,
                    parameters: parameters
                        .into_iter()
                        .map(|(key, value)| Parameter { key, value })
                        .collect(),
                    force_pull_image: None,
                }),
                mesos: None,
                network_infos: vec![],
            },
        )
}

pub fn arb_health_check() -> impl Strategy<Value = HealthCheck> {
    (
        option::of(arb_f64()),
        option::of(arb_f64()),
        option::of(1u32..10),
        1u32..65535,
        any::<bool>(),
    )
        .prop_map(
            |(delay_seconds, interval_seconds, consecutive_failures, port, http)| HealthCheck {
                delay_seconds,
                interval_seconds,
                timeout_seconds: None,
                consecutive_failures,
                grace_period_seconds: None,
                check_type: Some(if http {
                    CheckType::Http
                } else {
                    CheckType::Tcp
                }),
                command: None,
                http: http.then(|| HttpCheckInfo {
                    protocol: None,
                    scheme: Some("http".into()),
                    port,
                    path: Some("/health".into()),
                    statuses: vec![200],
                }),
                tcp: (!http).then_some(TcpCheckInfo {
                    protocol: None,
                    port,
                }),
            },
        )
}

pub fn arb_kill_policy() -> impl Strategy<Value = KillPolicy> {
    option::of(arb_duration()).prop_map(|grace_period| KillPolicy { grace_period })
}

pub fn arb_executor_info() -> BoxedStrategy<ExecutorInfo> {
    (
        arb_executor_id(),
        option::of(arb_framework_id()),
        any::<bool>(),
        arb_command_info(),
        arb_resources(),
        (
            option::of(arb_name()),
            option::of(arb_bytes()),
            option::of(arb_duration()),
        ),
    )
        .prop_map(
            |(executor_id, framework_id, custom, command, resources, (name, data, grace))| {
                ExecutorInfo {
                    executor_type: Some(if custom {
                        ExecutorType::Custom
                    } else {
                        ExecutorType::Default
                    }),
                    executor_id,
                    framework_id,
                    command: custom.then_some(command),
                    container: None,
                    resources,
                    name,
                    source: None,
                    data,
                    discovery: None,
                    shutdown_grace_period: grace,
                    labels: None,
                }
            },
        )
        .boxed()
}

/// A task with the command executor, a custom executor, or neither (for task groups).
pub fn arb_task_info() -> BoxedStrategy<TaskInfo> {
    (
        (arb_name(), arb_task_id(), arb_agent_id(), arb_resources()),
        option::of(arb_command_info()),
        option::of(arb_container_info()),
        option::of(arb_health_check()),
        option::of(arb_kill_policy()),
        (
            option::of(arb_bytes()),
            option::of(arb_labels()),
            arb_limits(),
        ),
    )
        .prop_map(
            |(
                (name, task_id, agent_id, resources),
                command,
                container,
                health_check,
                kill_policy,
                (data, labels, limits),
            )| TaskInfo {
                name,
                task_id,
                agent_id,
                resources,
                executor: None,
                command,
                container,
                health_check,
                check: None,
                kill_policy,
                data,
                labels,
                discovery: None,
                max_completion_time: None,
                limits,
            },
        )
        .boxed()
}

pub fn arb_task_group() -> impl Strategy<Value = TaskGroupInfo> {
    vec(arb_task_info(), 1..3).prop_map(|tasks| TaskGroupInfo { tasks })
}

pub fn arb_task_state() -> impl Strategy<Value = TaskState> {
    select(TaskState::ALL.to_vec())
}

pub fn arb_task_status() -> BoxedStrategy<TaskStatus> {
    (
        (arb_task_id(), arb_task_state(), option::of(arb_text())),
        (
            option::of(select(vec![
                TaskStatusSource::Master,
                TaskStatusSource::Agent,
                TaskStatusSource::Executor,
            ])),
            option::of(select(TaskStatusReason::ALL.to_vec())),
        ),
        (
            option::of(arb_bytes()),
            option::of(arb_agent_id()),
            option::of(arb_executor_id()),
        ),
        (
            option::of(arb_timestamp()),
            option::of(arb_uuid()),
            option::of(any::<bool>()),
        ),
        (option::of(arb_labels()), option::of(arb_time())),
    )
        .prop_map(
            |(
                (task_id, state, message),
                (source, reason),
                (data, agent_id, executor_id),
                (timestamp, uuid, healthy),
                (labels, unreachable_time),
            )| {
                let mut status = TaskStatus::new(task_id, state);
                status.message = message;
                status.source = source;
                status.reason = reason;
                status.data = data;
                status.agent_id = agent_id;
                status.executor_id = executor_id;
                status.timestamp = timestamp;
                status.uuid = uuid;
                status.healthy = healthy;
                status.labels = labels;
                status.unreachable_time = unreachable_time;
                status
            },
        )
        .boxed()
}

pub fn arb_task() -> BoxedStrategy<Task> {
    (
        (
            arb_name(),
            arb_task_id(),
            arb_framework_id(),
            option::of(arb_executor_id()),
        ),
        (arb_agent_id(), arb_task_state(), arb_resources()),
        vec(arb_task_status(), 0..2),
        (
            option::of(arb_task_state()),
            option::of(arb_uuid()),
            option::of(arb_name()),
        ),
    )
        .prop_map(
            |(
                (name, task_id, framework_id, executor_id),
                (agent_id, state, resources),
                statuses,
                (status_update_state, status_update_uuid, user),
            )| Task {
                name,
                task_id,
                framework_id,
                executor_id,
                agent_id,
                state,
                resources,
                statuses,
                status_update_state,
                status_update_uuid,
                labels: None,
                discovery: None,
                container: None,
                health_check: None,
                kill_policy: None,
                user,
                limits: BTreeMap::new(),
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Offers and operations.
// ---------------------------------------------------------------------------------------------

pub fn arb_filters() -> impl Strategy<Value = Filters> {
    option::of(arb_f64()).prop_map(|refuse_seconds| Filters { refuse_seconds })
}

pub fn arb_offer() -> BoxedStrategy<Offer> {
    (
        (
            arb_offer_id(),
            arb_framework_id(),
            arb_agent_id(),
            arb_name(),
        ),
        arb_resources(),
        vec(arb_attribute(), 0..3),
        vec(arb_executor_id(), 0..2),
        option::of(arb_role()),
    )
        .prop_map(
            |(
                (id, framework_id, agent_id, hostname),
                resources,
                attributes,
                executor_ids,
                role,
            )| {
                Offer {
                    id,
                    framework_id,
                    agent_id,
                    hostname,
                    url: None,
                    domain: None,
                    resources,
                    attributes,
                    executor_ids,
                    unavailability: None,
                    allocation_info: role
                        .map(|role| serde_json::from_value(serde_json::json!({ "role": role })))
                        .transpose()
                        .expect("valid allocation info"),
                }
            },
        )
        .boxed()
}

/// Every kind of offer operation Strata models.
pub fn arb_operation() -> BoxedStrategy<Operation> {
    let body = prop_oneof![
        vec(arb_task_info(), 0..3)
            .prop_map(|task_infos| OperationBody::Launch(Launch { task_infos })),
        (arb_executor_info(), arb_task_group()).prop_map(|(executor, task_group)| {
            OperationBody::LaunchGroup(LaunchGroup {
                executor,
                task_group,
            })
        }),
        (arb_resources(), arb_resources())
            .prop_map(|(source, resources)| OperationBody::Reserve(Reserve { source, resources })),
        arb_resources().prop_map(|resources| OperationBody::Unreserve(Unreserve { resources })),
        arb_resources().prop_map(|volumes| OperationBody::Create(Create { volumes })),
        arb_resources().prop_map(|volumes| OperationBody::Destroy(Destroy { volumes })),
    ];
    (body, option::of(arb_id_string()))
        .prop_map(|(body, id)| Operation {
            id: id.map(|id| id.parse().expect("arb_id_string is valid")),
            body,
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Scheduler API.
// ---------------------------------------------------------------------------------------------

/// Every scheduler call type, with or without a framework ID.
pub fn arb_scheduler_call() -> BoxedStrategy<scheduler::Call> {
    use scheduler::CallBody;
    let body = prop_oneof![
        (
            arb_framework_info(),
            vec(arb_role(), 0..2),
            option::of(arb_offer_constraints())
        )
            .prop_map(|(framework_info, suppressed_roles, offer_constraints)| {
                CallBody::Subscribe(Box::new(scheduler::Subscribe {
                    framework_info,
                    suppressed_roles,
                    offer_constraints,
                }))
            }),
        Just(CallBody::Teardown),
        (
            vec(arb_offer_id(), 0..3),
            vec(arb_operation(), 0..3),
            option::of(arb_filters())
        )
            .prop_map(|(offer_ids, operations, filters)| {
                CallBody::Accept(scheduler::Accept {
                    offer_ids,
                    operations,
                    filters,
                })
            }),
        (vec(arb_offer_id(), 0..3), option::of(arb_filters())).prop_map(|(offer_ids, filters)| {
            CallBody::Decline(scheduler::Decline { offer_ids, filters })
        }),
        vec(arb_role(), 0..3).prop_map(|roles| CallBody::Revive(scheduler::Revive { roles })),
        (
            arb_task_id(),
            option::of(arb_agent_id()),
            option::of(arb_kill_policy())
        )
            .prop_map(|(task_id, agent_id, kill_policy)| {
                CallBody::Kill(scheduler::Kill {
                    task_id,
                    agent_id,
                    kill_policy,
                })
            }),
        (arb_executor_id(), arb_agent_id()).prop_map(|(executor_id, agent_id)| {
            CallBody::Shutdown(scheduler::Shutdown {
                executor_id,
                agent_id,
            })
        }),
        (arb_agent_id(), arb_task_id(), arb_uuid()).prop_map(|(agent_id, task_id, uuid)| {
            CallBody::Acknowledge(scheduler::Acknowledge {
                agent_id,
                task_id,
                uuid,
            })
        }),
        vec((arb_task_id(), option::of(arb_agent_id())), 0..3).prop_map(|tasks| {
            CallBody::Reconcile(scheduler::Reconcile {
                tasks: tasks
                    .into_iter()
                    .map(|(task_id, agent_id)| scheduler::ReconcileTask { task_id, agent_id })
                    .collect(),
            })
        }),
        arb_scheduler_message().prop_map(CallBody::Message),
        vec((option::of(arb_agent_id()), arb_resources()), 0..2).prop_map(|requests| {
            CallBody::Request(scheduler::Request {
                requests: requests
                    .into_iter()
                    .map(|(agent_id, resources)| strata_protocol::mesos::Request {
                        agent_id,
                        resources,
                    })
                    .collect(),
            })
        }),
        vec(arb_role(), 0..3).prop_map(|roles| CallBody::Suppress(scheduler::Suppress { roles })),
        (
            arb_framework_info(),
            vec(arb_role(), 0..2),
            option::of(arb_offer_constraints())
        )
            .prop_map(|(framework_info, suppressed_roles, offer_constraints)| {
                CallBody::UpdateFramework(Box::new(scheduler::UpdateFramework {
                    framework_info,
                    suppressed_roles,
                    offer_constraints,
                }))
            }),
    ];
    (option::of(arb_framework_id()), body)
        .prop_map(|(framework_id, body)| scheduler::Call { framework_id, body })
        .boxed()
}

/// Offer constraints with every selector and predicate kind.
pub fn arb_offer_constraints() -> impl Strategy<Value = scheduler::OfferConstraints> {
    use scheduler::{
        AttributeConstraint, AttributePredicate, AttributeSelector, ConstraintGroup, Empty,
        OfferConstraints, PseudoattributeType, RoleConstraints, TextRegex, TextValue,
    };
    let selector = prop_oneof![
        select(vec![
            PseudoattributeType::Hostname,
            PseudoattributeType::Region,
            PseudoattributeType::Zone,
        ])
        .prop_map(AttributeSelector::PseudoattributeType),
        arb_name().prop_map(AttributeSelector::AttributeName),
    ];
    let predicate = prop_oneof![
        Just(AttributePredicate::Exists(Empty {})),
        Just(AttributePredicate::NotExists(Empty {})),
        arb_text().prop_map(|value| AttributePredicate::TextEquals(TextValue { value })),
        arb_text().prop_map(|value| AttributePredicate::TextNotEquals(TextValue { value })),
        arb_name().prop_map(|regex| AttributePredicate::TextMatches(TextRegex { regex })),
        arb_name().prop_map(|regex| AttributePredicate::TextNotMatches(TextRegex { regex })),
    ];
    let constraint = (selector, predicate).prop_map(|(selector, predicate)| AttributeConstraint {
        selector,
        predicate,
    });
    let group = vec(constraint, 1..3).prop_map(|attribute_constraints| ConstraintGroup {
        attribute_constraints,
    });
    btree_map(
        arb_role(),
        vec(group, 1..3).prop_map(|groups| RoleConstraints { groups }),
        1..3,
    )
    .prop_map(|role_constraints| OfferConstraints { role_constraints })
}

fn arb_scheduler_message() -> impl Strategy<Value = scheduler::Message> {
    (arb_agent_id(), arb_executor_id(), arb_bytes()).prop_map(|(agent_id, executor_id, data)| {
        scheduler::Message {
            agent_id,
            executor_id,
            data,
        }
    })
}

/// Every scheduler event type.
pub fn arb_scheduler_event() -> BoxedStrategy<scheduler::Event> {
    use scheduler::Event;
    prop_oneof![
        (
            arb_framework_id(),
            option::of(arb_f64()),
            option::of(arb_master_info())
        )
            .prop_map(|(framework_id, heartbeat_interval_seconds, master_info)| {
                Event::Subscribed(Box::new(scheduler::Subscribed {
                    framework_id,
                    heartbeat_interval_seconds,
                    master_info,
                }))
            }),
        vec(arb_offer(), 0..3).prop_map(|offers| Event::Offers(scheduler::Offers { offers })),
        arb_offer_id().prop_map(|offer_id| Event::Rescind(scheduler::Rescind { offer_id })),
        arb_task_status().prop_map(|status| Event::Update(Box::new(scheduler::Update { status }))),
        arb_scheduler_message().prop_map(Event::Message),
        (
            option::of(arb_agent_id()),
            option::of(arb_executor_id()),
            option::of(any::<i32>())
        )
            .prop_map(|(agent_id, executor_id, status)| {
                Event::Failure(scheduler::Failure {
                    agent_id,
                    executor_id,
                    status,
                })
            }),
        arb_text().prop_map(|message| Event::Error(scheduler::Error { message })),
        Just(Event::Heartbeat),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Executor API.
// ---------------------------------------------------------------------------------------------

/// Every executor call type.
pub fn arb_executor_call() -> BoxedStrategy<executor::Call> {
    use executor::CallBody;
    let update = arb_task_status().prop_map(|status| executor::Update { status });
    let body = prop_oneof![
        (vec(arb_task_info(), 0..2), vec(update.clone(), 0..2)).prop_map(
            |(unacknowledged_tasks, unacknowledged_updates)| {
                CallBody::Subscribe(Box::new(executor::Subscribe {
                    unacknowledged_tasks,
                    unacknowledged_updates,
                }))
            }
        ),
        update.prop_map(|update| CallBody::Update(Box::new(update))),
        arb_bytes().prop_map(|data| CallBody::Message(executor::Message { data })),
        Just(CallBody::Heartbeat),
    ];
    (arb_executor_id(), arb_framework_id(), body)
        .prop_map(|(executor_id, framework_id, body)| executor::Call {
            executor_id,
            framework_id,
            body,
        })
        .boxed()
}

/// Every executor event type.
pub fn arb_executor_event() -> BoxedStrategy<executor::Event> {
    use executor::Event;
    prop_oneof![
        (
            arb_executor_info(),
            arb_framework_info(),
            arb_agent_info(),
            option::of(arb_container_id())
        )
            .prop_map(
                |(executor_info, framework_info, agent_info, container_id)| {
                    Event::Subscribed(Box::new(executor::Subscribed {
                        executor_info,
                        framework_info,
                        agent_info,
                        container_id,
                    }))
                }
            ),
        arb_task_info().prop_map(|task| Event::Launch(Box::new(executor::Launch { task }))),
        arb_task_group().prop_map(|task_group| Event::LaunchGroup(Box::new(
            executor::LaunchGroup { task_group }
        ))),
        (arb_task_id(), option::of(arb_kill_policy())).prop_map(|(task_id, kill_policy)| {
            Event::Kill(executor::Kill {
                task_id,
                kill_policy,
            })
        }),
        (arb_task_id(), arb_uuid()).prop_map(|(task_id, uuid)| {
            Event::Acknowledged(executor::Acknowledged { task_id, uuid })
        }),
        arb_bytes().prop_map(|data| Event::Message(executor::Message { data })),
        arb_text().prop_map(|message| Event::Error(executor::Error { message })),
        Just(Event::Shutdown),
        Just(Event::Heartbeat),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Internal messages.
// ---------------------------------------------------------------------------------------------

fn arb_agent_capabilities() -> impl Strategy<Value = Vec<AgentCapability>> {
    vec(
        select(vec![
            AgentCapabilityType::MultiRole,
            AgentCapabilityType::HierarchicalRole,
            AgentCapabilityType::ReservationRefinement,
            AgentCapabilityType::AgentDraining,
        ])
        .prop_map(AgentCapability::from),
        0..3,
    )
}

fn arb_connection() -> impl Strategy<Value = internal::MasterAgentConnection> {
    arb_f64().prop_map(
        |total_ping_timeout_seconds| internal::MasterAgentConnection {
            total_ping_timeout_seconds,
        },
    )
}

fn arb_reconcile_tasks() -> impl Strategy<Value = internal::ReconcileTasks> {
    (
        arb_framework_id(),
        vec(arb_task_status(), 0..2),
        option::of(arb_framework_info()),
    )
        .prop_map(
            |(framework_id, statuses, framework)| internal::ReconcileTasks {
                framework_id,
                statuses,
                framework,
            },
        )
}

/// Every internal message type.
pub fn arb_internal() -> BoxedStrategy<internal::Message> {
    use internal::Message;
    prop_oneof![
        any::<u64>().prop_map(|seq| Message::Ping(internal::Ping { seq })),
        any::<u64>().prop_map(|seq| Message::Pong(internal::Pong { seq })),
        (
            arb_agent_info(),
            arb_resources(),
            arb_name(),
            arb_agent_capabilities()
        )
            .prop_map(
                |(agent_info, checkpointed_resources, version, capabilities)| {
                    Message::RegisterAgent(Box::new(internal::RegisterAgent {
                        agent_info,
                        checkpointed_resources,
                        version,
                        capabilities,
                    }))
                }
            ),
        (
            (arb_agent_info(), arb_resources()),
            vec(arb_executor_info(), 0..2),
            vec(arb_task(), 0..3),
            vec(arb_framework_info(), 0..2),
            (arb_name(), arb_agent_capabilities()),
        )
            .prop_map(
                |(
                    (agent_info, checkpointed_resources),
                    executor_infos,
                    tasks,
                    frameworks,
                    (version, capabilities),
                )| {
                    Message::ReregisterAgent(Box::new(internal::ReregisterAgent {
                        agent_info,
                        checkpointed_resources,
                        executor_infos,
                        tasks,
                        frameworks,
                        version,
                        capabilities,
                    }))
                }
            ),
        (arb_agent_id(), arb_connection()).prop_map(|(agent_id, connection)| {
            Message::AgentRegistered(internal::AgentRegistered {
                agent_id,
                connection,
            })
        }),
        (
            arb_agent_id(),
            vec(arb_reconcile_tasks(), 0..2),
            arb_connection()
        )
            .prop_map(|(agent_id, reconciliations, connection)| {
                Message::AgentReregistered(internal::AgentReregistered {
                    agent_id,
                    reconciliations,
                    connection,
                })
            }),
        arb_agent_id().prop_map(|agent_id| {
            Message::UnregisterAgent(internal::UnregisterAgent { agent_id })
        }),
        (arb_framework_info(), arb_task_info(), any::<bool>()).prop_map(
            |(framework, task, launch_executor)| {
                Message::RunTask(Box::new(internal::RunTask {
                    framework,
                    task,
                    launch_executor,
                }))
            }
        ),
        (
            arb_framework_info(),
            arb_executor_info(),
            arb_task_group(),
            any::<bool>()
        )
            .prop_map(|(framework, executor, task_group, launch_executor)| {
                Message::RunTaskGroup(Box::new(internal::RunTaskGroup {
                    framework,
                    executor,
                    task_group,
                    launch_executor,
                }))
            }),
        (
            arb_framework_id(),
            arb_task_id(),
            option::of(arb_kill_policy())
        )
            .prop_map(|(framework_id, task_id, kill_policy)| {
                Message::KillTask(internal::KillTask {
                    framework_id,
                    task_id,
                    kill_policy,
                })
            }),
        (
            (
                arb_framework_id(),
                arb_agent_id(),
                option::of(arb_executor_id())
            ),
            arb_task_status(),
            (arb_timestamp(), arb_uuid(), option::of(arb_task_state())),
        )
            .prop_map(
                |(
                    (framework_id, agent_id, executor_id),
                    mut status,
                    (timestamp, uuid, latest_state),
                )| {
                    status.uuid = Some(uuid.clone());
                    Message::StatusUpdate(Box::new(internal::StatusUpdate {
                        framework_id,
                        agent_id,
                        executor_id,
                        status,
                        timestamp,
                        uuid,
                        latest_state,
                    }))
                }
            ),
        (
            arb_agent_id(),
            arb_framework_id(),
            arb_task_id(),
            arb_uuid()
        )
            .prop_map(|(agent_id, framework_id, task_id, uuid)| {
                Message::StatusUpdateAcknowledgement(internal::StatusUpdateAcknowledgement {
                    agent_id,
                    framework_id,
                    task_id,
                    uuid,
                })
            }),
        arb_text().prop_map(|message| Message::ShutdownAgent(internal::ShutdownAgent { message })),
        arb_framework_id().prop_map(|framework_id| {
            Message::ShutdownFramework(internal::ShutdownFramework { framework_id })
        }),
        (arb_framework_id(), arb_executor_id()).prop_map(|(framework_id, executor_id)| {
            Message::ShutdownExecutor(internal::ShutdownExecutor {
                framework_id,
                executor_id,
            })
        }),
        (
            arb_agent_id(),
            arb_framework_id(),
            arb_executor_id(),
            arb_bytes()
        )
            .prop_map(|(agent_id, framework_id, executor_id, data)| {
                Message::FrameworkToExecutor(internal::FrameworkToExecutor {
                    agent_id,
                    framework_id,
                    executor_id,
                    data,
                })
            }),
        (
            arb_agent_id(),
            arb_framework_id(),
            arb_executor_id(),
            arb_bytes()
        )
            .prop_map(|(agent_id, framework_id, executor_id, data)| {
                Message::ExecutorToFramework(internal::ExecutorToFramework {
                    agent_id,
                    framework_id,
                    executor_id,
                    data,
                })
            }),
        (
            arb_agent_id(),
            arb_framework_id(),
            arb_executor_id(),
            any::<i32>()
        )
            .prop_map(|(agent_id, framework_id, executor_id, status)| {
                Message::ExitedExecutor(internal::ExitedExecutor {
                    agent_id,
                    framework_id,
                    executor_id,
                    status,
                })
            }),
        (arb_framework_id(), arb_framework_info()).prop_map(|(framework_id, framework_info)| {
            Message::UpdateFramework(Box::new(internal::UpdateFramework {
                framework_id,
                framework_info,
            }))
        }),
        arb_resources().prop_map(|resources| {
            Message::CheckpointResources(internal::CheckpointResources { resources })
        }),
        arb_reconcile_tasks().prop_map(Message::from),
        (option::of(arb_duration()), option::of(any::<bool>())).prop_map(
            |(max_grace_period, mark_gone)| {
                Message::DrainAgent(internal::DrainAgent {
                    config: DrainConfig {
                        max_grace_period,
                        mark_gone,
                    },
                })
            }
        ),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Envelopes.
// ---------------------------------------------------------------------------------------------

/// A pid such as `scheduler(3)@node-1.example:5050`.
pub fn arb_pid() -> impl Strategy<Value = Pid> {
    (
        "[a-z]{1,8}(\\([0-9]{1,2}\\))?",
        "[a-z0-9][a-z0-9.-]{0,15}",
        any::<u16>(),
    )
        .prop_map(|(name, host, port)| Pid::new(name, host, port).expect("valid pid parts"))
}

/// Every body kind, each with every one of its variants.
pub fn arb_body() -> BoxedStrategy<Body> {
    prop_oneof![
        arb_scheduler_call().prop_map(Body::SchedulerCall),
        arb_scheduler_event().prop_map(Body::SchedulerEvent),
        arb_executor_call().prop_map(Body::ExecutorCall),
        arb_executor_event().prop_map(Body::ExecutorEvent),
        arb_internal().prop_map(Body::Internal),
    ]
    .boxed()
}

/// An addressed message with an arbitrary body.
pub fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (arb_pid(), arb_pid(), any::<u64>(), arb_body()).prop_map(|(from, to, epoch, body)| Envelope {
        from,
        to,
        epoch: Epoch(epoch),
        body,
    })
}
