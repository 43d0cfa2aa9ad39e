//! The Mesos v1 JSON form of the public API types.
//!
//! Each document in `tests/data/mesos-json/` is written the way Mesos writes it. Every one must
//! parse into its typed value, serialise back to the same JSON (compared as `serde_json::Value`,
//! so key order and whitespace do not matter), and survive a MessagePack round trip. The
//! per-document tests also check parsed fields by value, so that a type which merely passed JSON
//! through could not pass.

mod common;

use std::fmt::Debug;
use std::path::PathBuf;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_protocol::mesos::{
    Bytes, CheckType, ContainerType, DockerNetwork, ExecutorType, FrameworkCapabilityType,
    NetworkProtocol, OperationBody, TaskState, TaskStatus, TaskStatusReason, TaskStatusSource,
};
use strata_protocol::resources::ValueType;
use strata_protocol::{executor, scheduler};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mesos-json")
}

fn read_document(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Parses the document `name` as a `T`, checks that it serialises back to the same JSON and
/// that its MessagePack form decodes to an equal value, and returns it.
fn round_trip<T>(name: &str) -> T
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = read_document(name);
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let typed: T = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        back, original,
        "{name}: serialised JSON differs from the document"
    );
    let packed = rmp_serde::to_vec_named(&typed).unwrap();
    let unpacked: T = rmp_serde::from_slice(&packed).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(unpacked, typed, "{name}: MessagePack round trip differs");
    typed
}

fn uuid_bytes(base64: &str) -> Bytes {
    Bytes::from_base64(base64).unwrap()
}

/// Every document round-trips, whatever its type; the type comes from the file name prefix.
/// This also keeps a document added without its own test from going unchecked.
#[test]
fn every_document_round_trips() {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "only {} documents found", names.len());
    for name in &names {
        if name.starts_with("scheduler_call_") {
            round_trip::<scheduler::Call>(name);
        } else if name.starts_with("scheduler_event_") {
            round_trip::<scheduler::Event>(name);
        } else if name.starts_with("executor_call_") {
            round_trip::<executor::Call>(name);
        } else if name.starts_with("executor_event_") {
            round_trip::<executor::Event>(name);
        } else if name.starts_with("task_status") {
            round_trip::<TaskStatus>(name);
        } else {
            panic!("{name}: no type is known for this document name");
        }
    }
}

#[test]
fn subscribe_call() {
    let call: scheduler::Call = round_trip("scheduler_call_subscribe.json");
    assert_eq!(call.framework_id, None);
    let scheduler::CallBody::Subscribe(subscribe) = call.body else {
        panic!("not a SUBSCRIBE: {call:?}");
    };
    let info = &subscribe.framework_info;
    assert_eq!(
        (info.user.as_str(), info.name.as_str()),
        ("svc-batch", "nightly-etl")
    );
    assert_eq!(info.failover_timeout(), 604_800.0);
    assert!(info.checkpoint());
    assert_eq!(info.roles, ["etl", "etl/backfill"]);
    assert_eq!(info.capabilities.len(), 8);
    for capability in [
        FrameworkCapabilityType::MultiRole,
        FrameworkCapabilityType::PartitionAware,
        FrameworkCapabilityType::TaskKillingState,
        FrameworkCapabilityType::RegionAware,
    ] {
        assert!(info.has_capability(capability), "{capability:?}");
    }
    assert_eq!(info.labels.as_ref().unwrap().labels[1].value, None);
    let quantities = &info.offer_filters["etl"]
        .min_allocatable_resources
        .as_ref()
        .unwrap();
    assert_eq!(quantities.quantities[0].quantities["mem"].value, 256.0);
    assert_eq!(subscribe.suppressed_roles, ["etl/backfill"]);
    let groups = &subscribe
        .offer_constraints
        .as_ref()
        .unwrap()
        .role_constraints["etl"]
        .groups;
    assert_eq!(groups.len(), 2);
    let rack = &groups[0].attribute_constraints[0];
    assert_eq!(
        rack.selector,
        scheduler::AttributeSelector::AttributeName("rack".into())
    );
    assert_eq!(
        rack.predicate,
        scheduler::AttributePredicate::TextMatches(scheduler::TextRegex {
            regex: "r1[0-9]".into()
        })
    );
    assert_eq!(
        groups[0].attribute_constraints[1].selector,
        scheduler::AttributeSelector::PseudoattributeType(scheduler::PseudoattributeType::Zone)
    );
    assert_eq!(
        groups[1].attribute_constraints[0].predicate,
        scheduler::AttributePredicate::Exists(scheduler::Empty {})
    );
}

#[test]
fn resubscribe_call() {
    let call: scheduler::Call = round_trip("scheduler_call_resubscribe.json");
    let framework_id = call.framework_id.unwrap();
    let scheduler::CallBody::Subscribe(subscribe) = call.body else {
        panic!("not a SUBSCRIBE")
    };
    assert_eq!(subscribe.framework_info.id.as_ref(), Some(&framework_id));
    assert_eq!(subscribe.framework_info.role(), "web");
    assert!(!subscribe.framework_info.checkpoint());
}

#[test]
fn accept_with_launch() {
    let call: scheduler::Call = round_trip("scheduler_call_accept_launch.json");
    assert_eq!(call.framework_id.unwrap().as_str(), "fw-etl-0001");
    let scheduler::CallBody::Accept(accept) = call.body else {
        panic!("not an ACCEPT")
    };
    let offer_ids: Vec<&str> = accept.offer_ids.iter().map(|id| id.as_str()).collect();
    assert_eq!(offer_ids, ["offer-a1-0007", "offer-a1-0008"]);
    assert_eq!(accept.filters.unwrap().refuse_seconds(), 30.0);
    assert_eq!(accept.operations.len(), 1);
    assert_eq!(accept.operations[0].id, None);
    let OperationBody::Launch(launch) = &accept.operations[0].body else {
        panic!("not LAUNCH")
    };
    let task = &launch.task_infos[0];
    assert_eq!(task.task_id.as_str(), "ingest-shard-7.run-3");
    assert_eq!(task.agent_id.as_str(), "agent-0d9c-S12");

    let cpus = &task.resources[0];
    assert_eq!(
        (cpus.name.as_str(), cpus.value_type),
        ("cpus", ValueType::Scalar)
    );
    assert_eq!(cpus.scalar.unwrap().value, 1.5);
    assert_eq!(
        cpus.allocation_info.as_ref().unwrap().role.as_deref(),
        Some("etl")
    );
    let ports = &task.resources[2];
    assert_eq!(ports.value_type, ValueType::Ranges);
    let ranges: Vec<(u64, u64)> = ports
        .ranges
        .as_ref()
        .unwrap()
        .range
        .iter()
        .map(|r| (r.begin, r.end))
        .collect();
    assert_eq!(ranges, [(31005, 31006), (31900, 31900)]);

    let command = task.command.as_ref().unwrap();
    assert!(command.shell());
    assert_eq!(
        command.value.as_deref(),
        Some("./run.sh --shard $SHARD --port $PORT0")
    );
    assert_eq!(command.user.as_deref(), Some("etl"));
    assert_eq!(command.uris.len(), 2);
    assert!(command.uris[0].extract() && command.uris[0].cache());
    assert!(command.uris[1].executable() && !command.uris[1].extract());
    let variables = &command.environment.as_ref().unwrap().variables;
    assert_eq!(
        (variables[0].name.as_str(), variables[0].value.as_deref()),
        ("SHARD", Some("7"))
    );

    let grace = task.kill_policy.unwrap().grace_period.unwrap();
    assert_eq!(
        grace.to_duration(),
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(task.data.as_ref().unwrap().as_slice(), br#"{"shard":7}"#);
    assert_eq!(
        task.max_completion_time.unwrap().nanoseconds,
        7_200_000_000_000
    );
}

#[test]
fn accept_with_reserve_unreserve_and_launch_group() {
    let call: scheduler::Call = round_trip("scheduler_call_accept_group_and_reserve.json");
    let scheduler::CallBody::Accept(accept) = call.body else {
        panic!("not an ACCEPT")
    };
    let types: Vec<&str> = accept
        .operations
        .iter()
        .map(|op| op.body.type_name())
        .collect();
    assert_eq!(types, ["RESERVE", "UNRESERVE", "LAUNCH_GROUP"]);
    assert_eq!(accept.filters, None);

    let OperationBody::Reserve(reserve) = &accept.operations[0].body else {
        unreachable!()
    };
    assert!(reserve.source.is_empty());
    let reservation = &reserve.resources[0].reservations[0];
    assert_eq!(reservation.role.as_deref(), Some("web"));
    assert_eq!(reservation.principal.as_deref(), Some("web-principal"));

    let OperationBody::LaunchGroup(group) = &accept.operations[2].body else {
        unreachable!()
    };
    assert_eq!(group.executor.executor_type, Some(ExecutorType::Default));
    assert_eq!(
        group.executor.shutdown_grace_period.unwrap().nanoseconds,
        10_000_000_000
    );
    let nginx = &group.task_group.tasks[0];
    let container = nginx.container.as_ref().unwrap();
    assert_eq!(container.container_type, ContainerType::Docker);
    let docker = container.docker.as_ref().unwrap();
    assert_eq!(docker.image, "registry.example/nginx:1.27");
    assert_eq!(docker.network(), DockerNetwork::Bridge);
    assert_eq!(
        (
            docker.port_mappings[0].host_port,
            docker.port_mappings[0].container_port
        ),
        (31080, 80)
    );
    assert!(!docker.privileged());
    assert_eq!(docker.force_pull_image, Some(true));
    assert_eq!(
        container.volumes[0].host_path.as_deref(),
        Some("/srv/conf/frontend")
    );
    let check = nginx.health_check.as_ref().unwrap();
    assert_eq!(check.check_type, Some(CheckType::Http));
    assert_eq!(check.consecutive_failures(), 4);
    assert_eq!(check.grace_period_seconds(), 20.0);
    let http = check.http.as_ref().unwrap();
    assert_eq!(http.protocol, Some(NetworkProtocol::Ipv4));
    assert_eq!(http.statuses, [200, 204]);

    let shipper = &group.task_group.tasks[1];
    let command = shipper.command.as_ref().unwrap();
    assert!(!command.shell());
    assert_eq!(
        command.arguments,
        ["shipper", "--target", "logs.example:5140"]
    );
    let shipper_check = shipper.health_check.as_ref().unwrap();
    assert_eq!(shipper_check.tcp.as_ref().unwrap().port, 5140);
    // Unset timing fields take the proto defaults.
    assert_eq!(shipper_check.interval_seconds(), 10.0);
    let image = shipper
        .container
        .as_ref()
        .unwrap()
        .mesos
        .as_ref()
        .unwrap()
        .image
        .as_ref();
    assert_eq!(
        image.unwrap().docker.as_ref().unwrap().name,
        "registry.example/shipper:3"
    );
    assert!(image.unwrap().cached());
}

#[test]
fn decline_with_filters() {
    let call: scheduler::Call = round_trip("scheduler_call_decline.json");
    let scheduler::CallBody::Decline(decline) = call.body else {
        panic!("not a DECLINE")
    };
    assert_eq!(decline.offer_ids.len(), 3);
    assert_eq!(decline.offer_ids[2].as_str(), "offer-c2-0002");
    assert_eq!(decline.filters.unwrap().refuse_seconds(), 1800.0);
}

#[test]
fn revive_without_payload_means_all_roles() {
    let call: scheduler::Call = round_trip("scheduler_call_revive.json");
    assert_eq!(
        call.body,
        scheduler::CallBody::Revive(scheduler::Revive { roles: vec![] })
    );
    // An explicit empty object means the same, and is written back without it.
    let explicit: scheduler::Call =
        serde_json::from_str(r#"{"type":"REVIVE","revive":{"roles":[]}}"#).unwrap();
    assert_eq!(explicit.body, call.body);
    assert_eq!(
        serde_json::to_string(&explicit).unwrap(),
        r#"{"type":"REVIVE"}"#
    );
}

#[test]
fn suppress_with_roles() {
    let call: scheduler::Call = round_trip("scheduler_call_suppress.json");
    let scheduler::CallBody::Suppress(suppress) = call.body else {
        panic!("not a SUPPRESS")
    };
    assert_eq!(suppress.roles, ["etl/backfill"]);
}

#[test]
fn kill_call() {
    let call: scheduler::Call = round_trip("scheduler_call_kill.json");
    let scheduler::CallBody::Kill(kill) = call.body else {
        panic!("not a KILL")
    };
    assert_eq!(kill.task_id.as_str(), "ingest-shard-7.run-3");
    assert_eq!(kill.agent_id.unwrap().as_str(), "agent-0d9c-S12");
    assert_eq!(
        kill.kill_policy.unwrap().grace_period.unwrap().nanoseconds,
        5_000_000_000
    );
}

#[test]
fn acknowledge_call_decodes_the_uuid() {
    let call: scheduler::Call = round_trip("scheduler_call_acknowledge.json");
    let scheduler::CallBody::Acknowledge(ack) = &call.body else {
        panic!("not an ACKNOWLEDGE")
    };
    assert_eq!(ack.task_id.as_str(), "ingest-shard-7.run-3");
    assert_eq!(
        ack.uuid.as_slice(),
        [
            201, 110, 232, 169, 126, 120, 88, 37, 158, 185, 159, 97, 159, 136, 6, 139
        ]
    );
    // In MessagePack the uuid is a 16-byte `bin` (0xc4 0x10), not base64 text.
    let packed = rmp_serde::to_vec_named(&call).unwrap();
    let mut bin = vec![0xc4, 16];
    bin.extend_from_slice(ack.uuid.as_slice());
    assert!(
        packed
            .windows(bin.len())
            .any(|window| window == bin.as_slice())
    );
    assert!(!packed.windows(4).any(|window| window == b"yW7o"));
}

#[test]
fn reconcile_call() {
    let call: scheduler::Call = round_trip("scheduler_call_reconcile.json");
    let scheduler::CallBody::Reconcile(reconcile) = call.body else {
        panic!("not a RECONCILE")
    };
    assert_eq!(reconcile.tasks.len(), 2);
    assert_eq!(
        reconcile.tasks[0].agent_id.as_ref().unwrap().as_str(),
        "agent-0d9c-S12"
    );
    assert_eq!(reconcile.tasks[1].task_id.as_str(), "ingest-shard-9.run-1");
    assert_eq!(reconcile.tasks[1].agent_id, None);
}

#[test]
fn message_call() {
    let call: scheduler::Call = round_trip("scheduler_call_message.json");
    let scheduler::CallBody::Message(message) = call.body else {
        panic!("not a MESSAGE")
    };
    assert_eq!(message.executor_id.as_str(), "etl-executor-4");
    assert_eq!(message.data.as_slice(), b"hello executor");
}

#[test]
fn subscribed_event() {
    let event: scheduler::Event = round_trip("scheduler_event_subscribed.json");
    let scheduler::Event::Subscribed(subscribed) = event else {
        panic!("not SUBSCRIBED")
    };
    assert_eq!(subscribed.framework_id.as_str(), "fw-etl-0001");
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    let master = subscribed.master_info.unwrap();
    assert_eq!(
        (master.id.as_str(), master.ip, master.port),
        ("strata-master-3f9e", 16_777_343, 5050)
    );
    assert_eq!(master.address.unwrap().ip.as_deref(), Some("127.0.0.1"));
    let domain = master.domain.unwrap().fault_domain.unwrap();
    assert_eq!(
        (domain.region.name.as_str(), domain.zone.name.as_str()),
        ("eu-west", "eu-west-1b")
    );
    assert_eq!(master.capabilities.len(), 3);
}

#[test]
fn offers_event() {
    let event: scheduler::Event = round_trip("scheduler_event_offers.json");
    let scheduler::Event::Offers(offers) = event else {
        panic!("not OFFERS")
    };
    assert_eq!(offers.offers.len(), 2);
    let first = &offers.offers[0];
    assert_eq!(first.id.as_str(), "offer-a1-0010");
    assert_eq!(first.hostname, "node-12.dc1.example");
    assert_eq!(
        first.allocation_info.as_ref().unwrap().role.as_deref(),
        Some("etl")
    );
    assert_eq!(first.url.as_ref().unwrap().address.port, 5051);
    assert_eq!(first.resources.len(), 4);
    assert_eq!(first.resources[1].scalar.unwrap().value, 30208.0);
    let rack = &first.attributes[0];
    assert_eq!(
        (rack.name.as_str(), rack.value_type),
        ("rack", ValueType::Text)
    );
    assert_eq!(rack.text.as_ref().unwrap().value, "r17");
    assert_eq!(first.attributes[1].scalar.unwrap().value, 4.0);
    assert_eq!(first.attributes[2].set.as_ref().unwrap().item, ["a", "b"]);
    assert_eq!(
        first.attributes[3].ranges.as_ref().unwrap().range[0].end,
        8099
    );
    assert_eq!(first.executor_ids[0].as_str(), "etl-executor-4");

    let second = &offers.offers[1];
    assert_eq!(second.agent_id.as_str(), "agent-51e0-S2");
    assert_eq!(
        second.allocation_info.as_ref().unwrap().role.as_deref(),
        Some("etl/backfill")
    );
    assert_eq!(
        second.resources[0].reservations[0].role.as_deref(),
        Some("etl")
    );
    assert_eq!(
        second.unavailability.unwrap().duration.unwrap().nanoseconds,
        3_600_000_000_000
    );
}

#[test]
fn update_event() {
    let event: scheduler::Event = round_trip("scheduler_event_update.json");
    let scheduler::Event::Update(update) = event else {
        panic!("not UPDATE")
    };
    let status = update.status;
    assert_eq!(status.state, TaskState::Unreachable);
    assert!(!status.state.is_terminal());
    assert_eq!(status.source, Some(TaskStatusSource::Master));
    assert_eq!(status.reason, Some(TaskStatusReason::ReasonAgentRemoved));
    assert_eq!(status.uuid, None, "master-generated updates carry no uuid");
    assert_eq!(
        status.unreachable_time.unwrap().nanoseconds,
        1_795_001_925_000_000_000
    );
}

#[test]
fn failure_event() {
    let event: scheduler::Event = round_trip("scheduler_event_failure.json");
    let scheduler::Event::Failure(failure) = event else {
        panic!("not FAILURE")
    };
    assert_eq!(failure.status, Some(9));
    assert_eq!(failure.executor_id.unwrap().as_str(), "etl-executor-4");
}

#[test]
fn standalone_task_status() {
    let status: TaskStatus = round_trip("task_status.json");
    assert_eq!(status.state, TaskState::Failed);
    assert!(status.state.is_terminal());
    assert_eq!(status.source, Some(TaskStatusSource::Executor));
    assert_eq!(
        status.reason,
        Some(TaskStatusReason::ReasonContainerLimitationMemory)
    );
    assert_eq!(status.timestamp, Some(1_795_001_234.25));
    assert_eq!(status.uuid, Some(uuid_bytes("DwsPAtQ4UAmT0E9ZlbyIOQ==")));
    assert_eq!(status.uuid.as_ref().unwrap().len(), 16);
    assert_eq!(status.healthy, Some(false));
    assert_eq!(
        status.check_status.unwrap().command.unwrap().exit_code,
        Some(1)
    );
    let container = status.container_status.unwrap();
    assert_eq!(container.executor_pid, Some(48211));
    assert_eq!(
        container.network_infos[0].ip_addresses[0]
            .ip_address
            .as_deref(),
        Some("10.1.0.12")
    );
    assert_eq!(status.limitation.unwrap().resources[0].name, "mem");
}

#[test]
fn executor_subscribe_call() {
    let call: executor::Call = round_trip("executor_call_subscribe.json");
    assert_eq!(call.executor_id.as_str(), "etl-executor-4");
    assert_eq!(call.framework_id.as_str(), "fw-etl-0001");
    let executor::CallBody::Subscribe(subscribe) = call.body else {
        panic!("not SUBSCRIBE")
    };
    assert_eq!(
        subscribe.unacknowledged_tasks[0].task_id.as_str(),
        "compact-2"
    );
    let update = &subscribe.unacknowledged_updates[0].status;
    assert_eq!(update.state, TaskState::Finished);
    assert_eq!(update.uuid, Some(uuid_bytes("nO2rC9IcX1CLmL4nNOJ0Vw==")));
}

#[test]
fn executor_update_call() {
    let call: executor::Call = round_trip("executor_call_update.json");
    let executor::CallBody::Update(update) = call.body else {
        panic!("not UPDATE")
    };
    assert_eq!(update.status.state, TaskState::Running);
    assert_eq!(update.status.healthy, Some(true));
    assert_eq!(update.status.timestamp, Some(1_795_000_200.125));
    assert_eq!(update.status.uuid.unwrap().len(), 16);
}

#[test]
fn executor_launch_event() {
    let event: executor::Event = round_trip("executor_event_launch.json");
    let executor::Event::Launch(launch) = event else {
        panic!("not LAUNCH")
    };
    let task = launch.task;
    assert_eq!(task.name, "compact-3");
    let executor = task.executor.unwrap();
    assert_eq!(executor.executor_type, Some(ExecutorType::Custom));
    assert_eq!(executor.data.unwrap().as_slice(), b"hello executor");
    assert!(executor.command.unwrap().uris[0].executable());
    let check = task.check.unwrap();
    assert_eq!(
        (check.check_type, check.tcp.as_ref().unwrap().port),
        (Some(CheckType::Tcp), 9000)
    );
    assert_eq!(check.timeout_seconds(), 1.5);
    let discovery = task.discovery.unwrap();
    assert_eq!(
        discovery.ports.unwrap().ports[0].name.as_deref(),
        Some("admin")
    );
    assert_eq!(task.limits["cpus"].value, 2.0);
}

#[test]
fn executor_subscribed_event() {
    let event: executor::Event = round_trip("executor_event_subscribed.json");
    let executor::Event::Subscribed(subscribed) = event else {
        panic!("not SUBSCRIBED")
    };
    assert_eq!(subscribed.agent_info.port(), 5051);
    assert_eq!(subscribed.agent_info.id.unwrap().as_str(), "agent-0d9c-S12");
    assert!(subscribed.framework_info.checkpoint());
    assert_eq!(
        subscribed.container_id.unwrap().as_str(),
        "5f0c1b6e-8a34-4d57-a2a6-0e7d2c9b1f11"
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid documents.
// ---------------------------------------------------------------------------------------------

fn call_error(json: &str) -> String {
    match serde_json::from_str::<scheduler::Call>(json) {
        Ok(call) => panic!("{json} parsed as {call:?}"),
        Err(err) => err.to_string(),
    }
}

fn assert_contains(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "{text:?} does not contain {needle:?}"
    );
}

#[test]
fn unknown_call_type_is_named() {
    let err = call_error(r#"{"framework_id":{"value":"f"},"type":"LAUNCH_ROCKETS"}"#);
    assert_contains(&err, "unknown scheduler call type 'LAUNCH_ROCKETS'");
}

#[test]
fn unsupported_call_type_is_named() {
    let err = call_error(r#"{"type":"ACCEPT_INVERSE_OFFERS","accept_inverse_offers":{}}"#);
    assert_contains(
        &err,
        "scheduler call type 'ACCEPT_INVERSE_OFFERS' is not supported",
    );
}

#[test]
fn accept_without_payload_is_refused() {
    let err = call_error(r#"{"framework_id":{"value":"f"},"type":"ACCEPT"}"#);
    assert_contains(&err, "ACCEPT call has no 'accept' field");
    // A payload under another variant's field does not count.
    let err = call_error(r#"{"type":"KILL","decline":{"offer_ids":[]}}"#);
    assert_contains(&err, "KILL call has no 'kill' field");
}

#[test]
fn call_without_type_is_refused() {
    let err = call_error(r#"{"framework_id":{"value":"f"},"kill":{"task_id":{"value":"t"}}}"#);
    assert_contains(&err, "scheduler call has no 'type' field");
}

#[test]
fn invalid_ids_inside_calls_are_refused() {
    let err = call_error(
        r#"{"framework_id":{"value":"f"},"type":"KILL","kill":{"task_id":{"value":"../etc"}}}"#,
    );
    assert_contains(&err, "task ID must not contain '/'");
    let err = call_error(r#"{"framework_id":{"value":""},"type":"TEARDOWN"}"#);
    assert_contains(&err, "framework ID must not be empty");
    let err = serde_json::from_str::<executor::Call>(
        r#"{"executor_id":{"value":".."},"framework_id":{"value":"f"},"type":"HEARTBEAT"}"#,
    )
    .unwrap_err();
    assert_contains(&err.to_string(), "executor ID must not be '.' or '..'");
}

#[test]
fn bad_base64_uuid_is_refused() {
    let mut document: serde_json::Value =
        serde_json::from_str(&read_document("scheduler_call_acknowledge.json")).unwrap();
    document["acknowledge"]["uuid"] = "yW7o*X54WCWeuZ9hn4gGiw==".into();
    let err = serde_json::from_value::<scheduler::Call>(document).unwrap_err();
    assert_contains(&err.to_string(), "not valid base64");
}

#[test]
fn unknown_operation_type_is_named() {
    let err = call_error(
        r#"{"type":"ACCEPT","accept":{"offer_ids":[{"value":"o"}],"operations":[{"type":"TELEPORT"}]}}"#,
    );
    assert_contains(&err, "unknown offer operation type 'TELEPORT'");
    let err = call_error(r#"{"type":"ACCEPT","accept":{"operations":[{"type":"LAUNCH"}]}}"#);
    assert_contains(&err, "LAUNCH operation has no 'launch' field");
}

#[test]
fn unknown_task_state_is_named() {
    let err =
        serde_json::from_str::<TaskStatus>(r#"{"task_id":{"value":"t"},"state":"TASK_EXPLODED"}"#)
            .unwrap_err();
    assert_contains(&err.to_string(), "TASK_EXPLODED");
}

#[test]
fn unknown_event_types_are_named() {
    let err = serde_json::from_str::<scheduler::Event>(r#"{"type":"WINK"}"#).unwrap_err();
    assert_contains(&err.to_string(), "unknown scheduler event type 'WINK'");
    let err = serde_json::from_str::<executor::Event>(r#"{"type":"NUDGE"}"#).unwrap_err();
    assert_contains(&err.to_string(), "unknown executor event type 'NUDGE'");
    let err = serde_json::from_str::<executor::Call>(
        r#"{"executor_id":{"value":"e"},"framework_id":{"value":"f"},"type":"UPDATE"}"#,
    )
    .unwrap_err();
    assert_contains(&err.to_string(), "UPDATE call has no 'update' field");
}

#[test]
fn unknown_fields_are_ignored() {
    let call: scheduler::Call = serde_json::from_str(
        r#"{"type":"REVIVE","revive":{"roles":["a"],"future_field":1},"also_new":{"x":[]}}"#,
    )
    .unwrap();
    assert_eq!(
        call.body,
        scheduler::CallBody::Revive(scheduler::Revive {
            roles: vec!["a".into()]
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------

fn json_round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

fn msgpack_round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    rmp_serde::from_slice(&rmp_serde::to_vec_named(value).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scheduler_calls_round_trip(call in common::arbitrary::arb_scheduler_call()) {
        prop_assert_eq!(&json_round_trip(&call), &call);
        prop_assert_eq!(&msgpack_round_trip(&call), &call);
    }

    #[test]
    fn scheduler_events_round_trip(event in common::arbitrary::arb_scheduler_event()) {
        prop_assert_eq!(&json_round_trip(&event), &event);
        prop_assert_eq!(&msgpack_round_trip(&event), &event);
    }

    #[test]
    fn executor_calls_and_events_round_trip(
        call in common::arbitrary::arb_executor_call(),
        event in common::arbitrary::arb_executor_event(),
    ) {
        prop_assert_eq!(&json_round_trip(&call), &call);
        prop_assert_eq!(&msgpack_round_trip(&call), &call);
        prop_assert_eq!(&json_round_trip(&event), &event);
        prop_assert_eq!(&msgpack_round_trip(&event), &event);
    }

    #[test]
    fn envelopes_round_trip_through_msgpack(envelope in common::arbitrary::arb_envelope()) {
        prop_assert_eq!(&msgpack_round_trip(&envelope), &envelope);
        // The strategies promise envelopes that fit the default frame size and depth limits.
        let codec = strata_protocol::FrameCodec::new();
        let frame = codec.encode_to_vec(&envelope).unwrap();
        prop_assert_eq!(codec.check(&frame), Ok(frame.len()));
    }
}

/// Draws `n` values from `strategy` and returns the set of names `name_of` gives them.
fn names_drawn<S: Strategy>(
    strategy: S,
    n: usize,
    name_of: impl Fn(&S::Value) -> &'static str,
) -> std::collections::BTreeSet<&'static str> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..n)
        .map(|_| name_of(&strategy.new_tree(&mut runner).unwrap().current()))
        .collect()
}

/// The shared strategies reach every variant, so property tests built on them exercise all of
/// them.
#[test]
fn strategies_cover_every_variant() {
    use common::arbitrary::*;
    let calls = names_drawn(arb_scheduler_call(), 400, |call| call.body.type_name());
    assert_eq!(calls.len(), 13, "{calls:?}");
    let events = names_drawn(arb_scheduler_event(), 300, scheduler::Event::type_name);
    assert_eq!(events.len(), 8, "{events:?}");
    let calls = names_drawn(arb_executor_call(), 200, |call| call.body.type_name());
    assert_eq!(calls.len(), 4, "{calls:?}");
    let events = names_drawn(arb_executor_event(), 300, executor::Event::type_name);
    assert_eq!(events.len(), 9, "{events:?}");
    let internal = names_drawn(
        arb_internal(),
        600,
        strata_protocol::internal::Message::name,
    );
    assert_eq!(internal.len(), 22, "{internal:?}");
    let operations = names_drawn(arb_operation(), 200, |operation| operation.body.type_name());
    assert_eq!(operations.len(), 6, "{operations:?}");
    let bodies = names_drawn(arb_envelope(), 200, |envelope| match envelope.body {
        strata_protocol::Body::SchedulerCall(_) => "SchedulerCall",
        strata_protocol::Body::SchedulerEvent(_) => "SchedulerEvent",
        strata_protocol::Body::ExecutorCall(_) => "ExecutorCall",
        strata_protocol::Body::ExecutorEvent(_) => "ExecutorEvent",
        strata_protocol::Body::Internal(_) => "Internal",
    });
    assert_eq!(bodies.len(), 5, "{bodies:?}");
}

// ---------------------------------------------------------------------------------------------
// Snapshots of values built in Rust, so the serialised form (field names, order, base64,
// omitted defaults) is pinned down from the Rust side too. Refresh with `UPDATE_EXPECT=1`.
// ---------------------------------------------------------------------------------------------

#[test]
fn built_accept_serialises_in_mesos_form() {
    use strata_protocol::mesos::{CommandInfo, Filters, Launch, Operation, TaskInfo};
    use strata_protocol::{AgentId, FrameworkId, OfferId, Resource, TaskId};

    let cpus: Resource = serde_json::from_value(serde_json::json!({
        "name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}
    }))
    .unwrap();
    let task = TaskInfo {
        name: "hello".into(),
        task_id: TaskId::new("hello-1").unwrap(),
        agent_id: AgentId::new("a-S0").unwrap(),
        resources: vec![cpus],
        executor: None,
        command: Some(CommandInfo::from_shell("echo hello")),
        container: None,
        health_check: None,
        check: None,
        kill_policy: None,
        data: Some(Bytes::new(b"\x00\xffhi".to_vec())),
        labels: None,
        discovery: None,
        max_completion_time: None,
        limits: Default::default(),
    };
    let call = scheduler::Call::new(
        FrameworkId::new("fw-1").unwrap(),
        scheduler::CallBody::Accept(scheduler::Accept {
            offer_ids: vec![OfferId::new("o-1").unwrap()],
            operations: vec![Operation::from(OperationBody::Launch(Launch {
                task_infos: vec![task],
            }))],
            filters: Some(Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
    );
    expect_test::expect![[r#"
        {
          "framework_id": {
            "value": "fw-1"
          },
          "type": "ACCEPT",
          "accept": {
            "offer_ids": [
              {
                "value": "o-1"
              }
            ],
            "operations": [
              {
                "type": "LAUNCH",
                "launch": {
                  "task_infos": [
                    {
                      "name": "hello",
                      "task_id": {
                        "value": "hello-1"
                      },
                      "agent_id": {
                        "value": "a-S0"
                      },
                      "resources": [
                        {
                          "name": "cpus",
                          "type": "SCALAR",
                          "scalar": {
                            "value": 0.5
                          }
                        }
                      ],
                      "command": {
                        "shell": true,
                        "value": "echo hello"
                      },
                      "data": "AP9oaQ=="
                    }
                  ]
                }
              }
            ],
            "filters": {
              "refuse_seconds": 0.0
            }
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&call).unwrap());
}

#[test]
fn built_update_event_serialises_in_mesos_form() {
    use strata_protocol::{AgentId, TaskId};

    let mut status = TaskStatus::new(TaskId::new("hello-1").unwrap(), TaskState::Killed);
    status.source = Some(TaskStatusSource::Agent);
    status.reason = Some(TaskStatusReason::ReasonTaskKilledDuringLaunch);
    status.agent_id = Some(AgentId::new("a-S0").unwrap());
    status.uuid = Some(Bytes::new((0u8..16).collect::<Vec<_>>()));
    let event = scheduler::Event::Update(Box::new(scheduler::Update { status }));
    expect_test::expect![[r#"
        {
          "type": "UPDATE",
          "update": {
            "status": {
              "task_id": {
                "value": "hello-1"
              },
              "state": "TASK_KILLED",
              "source": "SOURCE_AGENT",
              "reason": "REASON_TASK_KILLED_DURING_LAUNCH",
              "agent_id": {
                "value": "a-S0"
              },
              "uuid": "AAECAwQFBgcICQoLDA0ODw=="
            }
          }
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&event).unwrap());
}
