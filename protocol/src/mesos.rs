//! Common Mesos v1 types: framework, agent, offer, task, executor and status messages.
//!
//! Every type here serialises, through serde_json, to the JSON form of the Mesos v1 API, so that
//! parsing a Mesos document and serialising the result gives back the same document. The
//! modelling rules follow the `.proto` definitions (`include/mesos/v1/mesos.proto`):
//!
//! - a `required` field is a plain field;
//! - an `optional` field is an `Option`, left out of the output when unset; where the proto
//!   declares a default, an accessor method of the same name returns the value or that default
//!   (`Filters::refuse_seconds()` is 5.0 when the framework sent none);
//! - a `repeated` field is a `Vec`, left out of the output when empty;
//! - a `map` field is a `BTreeMap`, so that its serialised order is deterministic;
//! - enums travel by their proto names (`"TASK_RUNNING"`, `"SCALAR"`);
//! - `bytes` fields are [`Bytes`]: base64 in JSON, raw `bin` in MessagePack.
//!
//! Unknown fields are ignored rather than refused, because newer clients add fields that older
//! masters must tolerate. Message kinds that Strata does not implement yet (inverse offers,
//! operation feedback, CSI disks...) are left out; their fields are dropped when parsed.
//!
//! Nested proto messages are named after their parent: `FrameworkInfo.Capability` is
//! [`FrameworkCapability`], `CommandInfo.URI` is [`CommandUri`], `Environment.Variable` is
//! [`EnvironmentVariable`].

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ContainerId, ExecutorId, FrameworkId, OfferId, OperationId, TaskId};
use crate::resources::{AllocationInfo, Ranges, Resource, Scalar, Set, ValueType};

// ---------------------------------------------------------------------------------------------
// Bytes and union decoding errors.
// ---------------------------------------------------------------------------------------------

/// Standard base64 with padding on output; input is accepted with or without padding, since some
/// clients strip it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The value of a proto `bytes` field: a status update UUID, framework message data, executor
/// data.
///
/// Human-readable formats (JSON) carry it as a base64 string, as Mesos does; binary formats
/// (MessagePack) carry the raw bytes as a `bin`, which is a third smaller and needs no decoding.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Returns the bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Returns the owned bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Returns the bytes in base64, the form they take in JSON.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// Decodes base64 text, with or without padding.
    pub fn from_base64(text: &str) -> Result<Self, BytesError> {
        BASE64.decode(text).map(Self).map_err(|err| BytesError {
            reason: err.to_string(),
        })
    }

    /// Returns the number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Tells whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", self.to_base64())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Why a JSON `bytes` field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bytes field is not valid base64: {reason}")]
pub struct BytesError {
    reason: String,
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_base64())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text or binary data")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Bytes, E> {
        Bytes::from_base64(text).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(bytes.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(bytes))
    }

    /// Accepts an array of integers too, which is how some binary encoders write a byte string.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Bytes(bytes))
    }
}

/// Why a Mesos "union" message (a `type` plus one payload field, such as a scheduler `Call` or an
/// offer `Operation`) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnionError {
    /// The `type` field is absent.
    #[error("{kind} has no 'type' field")]
    MissingType { kind: &'static str },
    /// The `type` names nothing Mesos defines.
    #[error("unknown {kind} type '{type_name}'")]
    UnknownType {
        kind: &'static str,
        type_name: String,
    },
    /// The `type` is a Mesos one that Strata does not implement.
    #[error("{kind} type '{type_name}' is not supported")]
    Unsupported {
        kind: &'static str,
        type_name: String,
    },
    /// The payload the `type` calls for is absent.
    #[error("{type_name} {noun} has no '{field}' field")]
    MissingPayload {
        noun: &'static str,
        type_name: &'static str,
        field: &'static str,
    },
}

/// Returns the payload of a union, or the error saying it is missing.
pub(crate) fn union_payload<T>(
    payload: Option<T>,
    noun: &'static str,
    type_name: &'static str,
    field: &'static str,
) -> Result<T, UnionError> {
    payload.ok_or(UnionError::MissingPayload {
        noun,
        type_name,
        field,
    })
}

// ---------------------------------------------------------------------------------------------
// Small shared types.
// ---------------------------------------------------------------------------------------------

/// One key/value label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A list of labels, as Mesos's `Labels` (`{"labels": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A point in time, in nanoseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct TimeInfo {
    pub nanoseconds: i64,
}

/// A length of time in nanoseconds. Negative values are representable because the proto allows
/// them; validation refuses them where they make no sense.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct DurationInfo {
    pub nanoseconds: i64,
}

impl DurationInfo {
    /// Returns the duration, or `None` when it is negative.
    pub fn to_duration(self) -> Option<std::time::Duration> {
        u64::try_from(self.nanoseconds)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Builds a duration, saturating at `i64::MAX` nanoseconds (about 292 years).
    pub fn from_duration(duration: std::time::Duration) -> Self {
        Self {
            nanoseconds: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

/// A network address; at least one of `hostname` and `ip` should be set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: i32,
}

/// A URL split into its parts, as Mesos's `URL`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Url {
    pub scheme: String,
    pub address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment: Option<String>,
}

/// A key/value pair, such as a `docker run` option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

/// A list of parameters, as Mesos's `Parameters` (`{"parameter": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Parameters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<Parameter>,
}

/// The text value of an attribute (`Value.Text`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Text {
    pub value: String,
}

/// A fault domain: the region and zone an agent or master runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DomainInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_domain: Option<FaultDomain>,
}

/// A region and a zone within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultDomain {
    pub region: FaultDomainName,
    pub zone: FaultDomainName,
}

/// The name of a region or zone (`RegionInfo` and `ZoneInfo` in the proto, which have the same
/// shape).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultDomainName {
    pub name: String,
}

/// A period during which an agent is expected to be unavailable (maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unavailability {
    pub start: TimeInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationInfo>,
}

// ---------------------------------------------------------------------------------------------
// Frameworks.
// ---------------------------------------------------------------------------------------------

/// What a framework says about itself when it subscribes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// The Unix user the framework's executors and tasks run as, unless a `CommandInfo` says
    /// otherwise.
    pub user: String,
    pub name: String,
    /// Set by the master at the first SUBSCRIBE; a SUBSCRIBE that carries it is a resubscribe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    /// Deprecated in Mesos in favour of `roles` with the MULTI_ROLE capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<FrameworkCapability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// Per-role filters on what is worth offering, keyed by role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub offer_filters: BTreeMap<String, OfferFilters>,
}

impl FrameworkInfo {
    /// Returns how long, in seconds, the master keeps the framework's tasks after it disconnects;
    /// 0 (the default) means they are killed at once.
    pub fn failover_timeout(&self) -> f64 {
        self.failover_timeout.unwrap_or(0.0)
    }

    /// Returns whether agents checkpoint the framework's tasks so they survive an agent restart.
    pub fn checkpoint(&self) -> bool {
        self.checkpoint.unwrap_or(false)
    }

    /// Returns the deprecated single role, `*` when unset.
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("*")
    }

    /// Tells whether the framework declared `capability`.
    pub fn has_capability(&self, capability: FrameworkCapabilityType) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.capability_type == Some(capability))
    }
}

/// One capability a framework declares (`FrameworkInfo.Capability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameworkCapability {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub capability_type: Option<FrameworkCapabilityType>,
}

impl From<FrameworkCapabilityType> for FrameworkCapability {
    fn from(capability_type: FrameworkCapabilityType) -> Self {
        Self {
            capability_type: Some(capability_type),
        }
    }
}

/// The capabilities a framework can declare. They change what the master sends it: for example
/// TASK_KILLING is only sent to frameworks with `TaskKillingState`, and the partition states
/// (UNREACHABLE, GONE...) only to `PartitionAware` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FrameworkCapabilityType {
    RevocableResources,
    TaskKillingState,
    GpuResources,
    SharedResources,
    PartitionAware,
    MultiRole,
    ReservationRefinement,
    RegionAware,
    /// A capability this build does not know; newer clients may send one.
    #[serde(other)]
    Unknown,
}

/// Per-role filters a framework sets on its offers (`OfferFilters`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allocatable_resources: Option<MinAllocatableResources>,
}

/// Offers smaller than every one of these quantities are not worth making to the framework.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinAllocatableResources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantities: Vec<ResourceQuantities>,
}

/// Scalar quantities by resource name, such as `{"cpus": 1, "mem": 128}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceQuantities {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quantities: BTreeMap<String, Scalar>,
}

// ---------------------------------------------------------------------------------------------
// Masters and agents.
// ---------------------------------------------------------------------------------------------

/// Describes the leading master; sent to frameworks in SUBSCRIBED.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: String,
    /// The IPv4 address packed in network order, kept for old clients; `address` is the real one.
    pub ip: u32,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<MasterCapability>,
}

/// One capability of the master (`MasterInfo.Capability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MasterCapability {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub capability_type: Option<MasterCapabilityType>,
}

/// The capabilities a master can advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MasterCapabilityType {
    AgentUpdate,
    AgentDraining,
    #[serde(rename = "QUOTA_V2")]
    QuotaV2,
    /// A capability this build does not know; newer clients may send one.
    #[serde(other)]
    Unknown,
}

/// Describes an agent: where it is and what it offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// Unset until the master has registered the agent for the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
}

impl AgentInfo {
    /// Returns the agent's port, 5051 when unset.
    pub fn port(&self) -> i32 {
        self.port.unwrap_or(5051)
    }
}

/// One capability of an agent (`AgentInfo.Capability`), sent when it registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentCapability {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub capability_type: Option<AgentCapabilityType>,
}

impl From<AgentCapabilityType> for AgentCapability {
    fn from(capability_type: AgentCapabilityType) -> Self {
        Self {
            capability_type: Some(capability_type),
        }
    }
}

/// The capabilities an agent can advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentCapabilityType {
    MultiRole,
    HierarchicalRole,
    ReservationRefinement,
    ResourceProvider,
    ResizeVolume,
    AgentOperationFeedback,
    AgentDraining,
    TaskResourceLimits,
    /// A capability this build does not know; newer clients may send one.
    #[serde(other)]
    Unknown,
}

/// A property of an agent that is not consumed by tasks (`rack:r1`, `os:linux`), used by
/// frameworks to choose where to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

/// How an agent is to be drained: how long tasks get to finish, and whether the agent is then
/// marked gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DrainConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grace_period: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_gone: Option<bool>,
}

impl DrainConfig {
    /// Returns whether the agent is marked gone once drained; false when unset.
    pub fn mark_gone(&self) -> bool {
        self.mark_gone.unwrap_or(false)
    }
}

// ---------------------------------------------------------------------------------------------
// Offers and offer operations.
// ---------------------------------------------------------------------------------------------

/// Resources on one agent offered to one framework for one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    /// The agent's HTTP endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// The framework's executors already running on the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailability: Option<Unavailability>,
    /// The role the offer is made for; every resource in it carries the same allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

/// One operation of an ACCEPT call (`Offer.Operation`): `{"type":"LAUNCH","launch":{...}}`.
///
/// The JSON form names the variant in `type` and puts its payload under the lowercased field; an
/// operation with an unknown type, or without the payload its type calls for, is refused when
/// decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Set when the framework wants feedback on the operation (not yet supported by Strata).
    pub id: Option<OperationId>,
    pub body: OperationBody,
}

/// The kinds of offer operation Strata implements.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationBody {
    Launch(Launch),
    LaunchGroup(LaunchGroup),
    Reserve(Reserve),
    Unreserve(Unreserve),
    Create(Create),
    Destroy(Destroy),
}

impl OperationBody {
    /// Returns the Mesos name of the operation type, as in the `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            OperationBody::Launch(_) => "LAUNCH",
            OperationBody::LaunchGroup(_) => "LAUNCH_GROUP",
            OperationBody::Reserve(_) => "RESERVE",
            OperationBody::Unreserve(_) => "UNRESERVE",
            OperationBody::Create(_) => "CREATE",
            OperationBody::Destroy(_) => "DESTROY",
        }
    }
}

impl From<OperationBody> for Operation {
    fn from(body: OperationBody) -> Self {
        Self { id: None, body }
    }
}

/// Launches tasks, each with the command executor or its own executor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_infos: Vec<TaskInfo>,
}

/// Launches a group of tasks together under one executor (a pod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

/// Reserves offered resources for a role. `resources` are the resources as they will be after
/// the reservation; `source`, when set, names the offered resources they come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reserve {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// Gives reserved resources back to their parent role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unreserve {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// Creates persistent volumes on reserved disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Create {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Resource>,
}

/// Destroys persistent volumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Destroy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Resource>,
}

/// The JSON shape of an [`Operation`], with every payload optional.
#[derive(Deserialize)]
struct OperationWire {
    #[serde(default)]
    id: Option<OperationId>,
    #[serde(rename = "type", default)]
    operation_type: Option<String>,
    #[serde(default)]
    launch: Option<Launch>,
    #[serde(default)]
    launch_group: Option<LaunchGroup>,
    #[serde(default)]
    reserve: Option<Reserve>,
    #[serde(default)]
    unreserve: Option<Unreserve>,
    #[serde(default)]
    create: Option<Create>,
    #[serde(default)]
    destroy: Option<Destroy>,
}

impl TryFrom<OperationWire> for Operation {
    type Error = UnionError;

    fn try_from(wire: OperationWire) -> Result<Self, UnionError> {
        const KIND: &str = "offer operation";
        const NOUN: &str = "operation";
        let operation_type = wire
            .operation_type
            .ok_or(UnionError::MissingType { kind: KIND })?;
        let body = match operation_type.as_str() {
            "LAUNCH" => {
                OperationBody::Launch(union_payload(wire.launch, NOUN, "LAUNCH", "launch")?)
            }
            "LAUNCH_GROUP" => OperationBody::LaunchGroup(union_payload(
                wire.launch_group,
                NOUN,
                "LAUNCH_GROUP",
                "launch_group",
            )?),
            "RESERVE" => {
                OperationBody::Reserve(union_payload(wire.reserve, NOUN, "RESERVE", "reserve")?)
            }
            "UNRESERVE" => OperationBody::Unreserve(union_payload(
                wire.unreserve,
                NOUN,
                "UNRESERVE",
                "unreserve",
            )?),
            "CREATE" => {
                OperationBody::Create(union_payload(wire.create, NOUN, "CREATE", "create")?)
            }
            "DESTROY" => {
                OperationBody::Destroy(union_payload(wire.destroy, NOUN, "DESTROY", "destroy")?)
            }
            "GROW_VOLUME" | "SHRINK_VOLUME" | "CREATE_DISK" | "DESTROY_DISK" => {
                return Err(UnionError::Unsupported {
                    kind: KIND,
                    type_name: operation_type,
                });
            }
            _ => {
                return Err(UnionError::UnknownType {
                    kind: KIND,
                    type_name: operation_type,
                });
            }
        };
        Ok(Operation { id: wire.id, body })
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + usize::from(self.id.is_some())))?;
        map.serialize_entry("type", self.body.type_name())?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        match &self.body {
            OperationBody::Launch(payload) => map.serialize_entry("launch", payload)?,
            OperationBody::LaunchGroup(payload) => map.serialize_entry("launch_group", payload)?,
            OperationBody::Reserve(payload) => map.serialize_entry("reserve", payload)?,
            OperationBody::Unreserve(payload) => map.serialize_entry("unreserve", payload)?,
            OperationBody::Create(payload) => map.serialize_entry("create", payload)?,
            OperationBody::Destroy(payload) => map.serialize_entry("destroy", payload)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = OperationWire::deserialize(deserializer)?;
        Operation::try_from(wire).map_err(de::Error::custom)
    }
}

/// Conditions a framework attaches to an ACCEPT or DECLINE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

impl Filters {
    /// The longest `refuse_seconds` the master honours (365 days); longer values are capped.
    pub const REFUSE_SECONDS_MAX: f64 = 365.0 * 24.0 * 3600.0;

    /// Returns for how many seconds the declined (or unused) resources are not re-offered to the
    /// framework; 5 when unset.
    pub fn refuse_seconds(&self) -> f64 {
        self.refuse_seconds.unwrap_or(5.0)
    }
}

/// A framework's request for resources (the REQUEST call), which the built-in allocator ignores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

// ---------------------------------------------------------------------------------------------
// Tasks.
// ---------------------------------------------------------------------------------------------

/// A task as a framework describes it in a LAUNCH operation.
///
/// Exactly one of `command` (run by the command executor) and `executor` (a custom executor)
/// should be set, except inside a task group, where the group's executor runs every task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    /// Opaque data handed to the executor with the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    /// The task is killed once it has run this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    /// Resource limits above the requested `resources`, keyed by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Scalar>,
}

/// Tasks launched together and run by one executor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskGroupInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskInfo>,
}

/// A task as the master and agents know it, with its latest state. Agents send these when they
/// reregister, and the operator API returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub task_id: TaskId,
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    pub agent_id: AgentId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<TaskStatus>,
    /// The state of the latest status update not yet acknowledged, which can be ahead of `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_uuid: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    // The three below are boxed: they are large (about 800 bytes together) and rarely set, and a
    // master holds a `Task` for every task in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Box<DiscoveryInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<ContainerInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Box<HealthCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Scalar>,
}

/// The states of a task.
///
/// The partition states (DROPPED, UNREACHABLE, GONE, GONE_BY_OPERATOR, UNKNOWN) are only sent to
/// frameworks with the PARTITION_AWARE capability; others get TASK_LOST instead. TASK_KILLING is
/// only sent to frameworks with TASK_KILLING_STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted by the master, not yet started on the agent.
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    /// Being killed, but not dead yet.
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    /// The task description was invalid; it never ran.
    #[serde(rename = "TASK_ERROR")]
    Error,
    /// Terminal, although the task may still be running somewhere (an old partitioned agent).
    #[serde(rename = "TASK_LOST")]
    Lost,
    /// The task never reached the agent.
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    /// The agent is partitioned away; the task may come back.
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    /// The agent is known to be gone, with its tasks.
    #[serde(rename = "TASK_GONE")]
    Gone,
    /// The operator marked the agent gone.
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    /// The master does not know the task, and does not know the agent either.
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    /// Every state, in declaration order.
    pub const ALL: [TaskState; 14] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Error,
        TaskState::Lost,
        TaskState::Dropped,
        TaskState::Unreachable,
        TaskState::Gone,
        TaskState::GoneByOperator,
        TaskState::Unknown,
    ];

    /// Tells whether the task can never change state again, as Mesos decides it: its resources
    /// are freed, and reconciliation stops reporting it once the update is acknowledged.
    /// UNREACHABLE and UNKNOWN are not terminal, since the agent may come back.
    pub fn is_terminal(self) -> bool {
        match self {
            TaskState::Finished
            | TaskState::Failed
            | TaskState::Killed
            | TaskState::Error
            | TaskState::Lost
            | TaskState::Dropped
            | TaskState::Gone
            | TaskState::GoneByOperator => true,
            TaskState::Staging
            | TaskState::Starting
            | TaskState::Running
            | TaskState::Killing
            | TaskState::Unreachable
            | TaskState::Unknown => false,
        }
    }

    /// Returns the Mesos name of the state (`"TASK_RUNNING"`), as used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change in a task's state, as sent to its framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TaskStatusSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<TaskStatusReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// Seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// Set on updates that must be acknowledged; master-generated and reconciliation updates
    /// have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_status: Option<CheckStatusInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    /// When the agent became unreachable; set on UNREACHABLE updates and later ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_time: Option<TimeInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation: Option<TaskResourceLimitation>,
}

impl TaskStatus {
    /// Returns a status with only the required fields set.
    pub fn new(task_id: TaskId, state: TaskState) -> Self {
        Self {
            task_id,
            state,
            message: None,
            source: None,
            reason: None,
            data: None,
            agent_id: None,
            executor_id: None,
            timestamp: None,
            uuid: None,
            healthy: None,
            check_status: None,
            labels: None,
            container_status: None,
            unreachable_time: None,
            limitation: None,
        }
    }
}

/// Who generated a status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskStatusSource {
    #[serde(rename = "SOURCE_MASTER")]
    Master,
    #[serde(rename = "SOURCE_AGENT")]
    Agent,
    #[serde(rename = "SOURCE_EXECUTOR")]
    Executor,
}

/// Why a task changed state, as Mesos enumerates it (`docs/task-state-reasons.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatusReason {
    ReasonCommandExecutorFailed,
    ReasonContainerLaunchFailed,
    ReasonContainerLimitation,
    ReasonContainerLimitationDisk,
    ReasonContainerLimitationMemory,
    ReasonContainerPreempted,
    ReasonContainerUpdateFailed,
    ReasonMaxCompletionTimeReached,
    ReasonExecutorRegistrationTimeout,
    ReasonExecutorReregistrationTimeout,
    ReasonExecutorTerminated,
    /// No longer sent by Mesos; kept so that old documents parse.
    ReasonExecutorUnregistered,
    ReasonFrameworkRemoved,
    ReasonGcError,
    ReasonInvalidFrameworkid,
    ReasonInvalidOffers,
    ReasonIoSwitchboardExited,
    ReasonMasterDisconnected,
    ReasonReconciliation,
    ReasonResourcesUnknown,
    ReasonAgentDisconnected,
    ReasonAgentDraining,
    ReasonAgentRemoved,
    ReasonAgentRemovedByOperator,
    ReasonAgentReregistered,
    ReasonAgentRestarted,
    ReasonAgentUnknown,
    ReasonTaskKilledDuringLaunch,
    ReasonTaskCheckStatusUpdated,
    ReasonTaskHealthCheckStatusUpdated,
    ReasonTaskGroupInvalid,
    ReasonTaskGroupUnauthorized,
    ReasonTaskInvalid,
    ReasonTaskUnauthorized,
    ReasonTaskUnknown,
}

impl TaskStatusReason {
    /// Every reason, in declaration order.
    pub const ALL: [TaskStatusReason; 35] = [
        TaskStatusReason::ReasonCommandExecutorFailed,
        TaskStatusReason::ReasonContainerLaunchFailed,
        TaskStatusReason::ReasonContainerLimitation,
        TaskStatusReason::ReasonContainerLimitationDisk,
        TaskStatusReason::ReasonContainerLimitationMemory,
        TaskStatusReason::ReasonContainerPreempted,
        TaskStatusReason::ReasonContainerUpdateFailed,
        TaskStatusReason::ReasonMaxCompletionTimeReached,
        TaskStatusReason::ReasonExecutorRegistrationTimeout,
        TaskStatusReason::ReasonExecutorReregistrationTimeout,
        TaskStatusReason::ReasonExecutorTerminated,
        TaskStatusReason::ReasonExecutorUnregistered,
        TaskStatusReason::ReasonFrameworkRemoved,
        TaskStatusReason::ReasonGcError,
        TaskStatusReason::ReasonInvalidFrameworkid,
        TaskStatusReason::ReasonInvalidOffers,
        TaskStatusReason::ReasonIoSwitchboardExited,
        TaskStatusReason::ReasonMasterDisconnected,
        TaskStatusReason::ReasonReconciliation,
        TaskStatusReason::ReasonResourcesUnknown,
        TaskStatusReason::ReasonAgentDisconnected,
        TaskStatusReason::ReasonAgentDraining,
        TaskStatusReason::ReasonAgentRemoved,
        TaskStatusReason::ReasonAgentRemovedByOperator,
        TaskStatusReason::ReasonAgentReregistered,
        TaskStatusReason::ReasonAgentRestarted,
        TaskStatusReason::ReasonAgentUnknown,
        TaskStatusReason::ReasonTaskKilledDuringLaunch,
        TaskStatusReason::ReasonTaskCheckStatusUpdated,
        TaskStatusReason::ReasonTaskHealthCheckStatusUpdated,
        TaskStatusReason::ReasonTaskGroupInvalid,
        TaskStatusReason::ReasonTaskGroupUnauthorized,
        TaskStatusReason::ReasonTaskInvalid,
        TaskStatusReason::ReasonTaskUnauthorized,
        TaskStatusReason::ReasonTaskUnknown,
    ];
}

/// The resources whose limit a task hit, when it failed because of a container limitation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResourceLimitation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
}

/// What the agent knows about the container a task runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_pid: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Commands, environments, secrets.
// ---------------------------------------------------------------------------------------------

/// A command to run, with the files to fetch into the sandbox first.
///
/// With `shell` true (the default) `value` is run by `/bin/sh -c` and `arguments` are ignored;
/// with `shell` false `value` is the executable and `arguments` its argv, `argv[0]` included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<CommandUri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Overrides `FrameworkInfo.user` for this command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl CommandInfo {
    /// Returns a command run by the shell.
    pub fn from_shell(command_line: impl Into<String>) -> Self {
        Self {
            shell: Some(true),
            value: Some(command_line.into()),
            ..Self::default()
        }
    }

    /// Returns whether `value` is a shell command line; true when unset.
    pub fn shell(&self) -> bool {
        self.shell.unwrap_or(true)
    }
}

/// A file the fetcher downloads into the sandbox before the command starts (`CommandInfo.URI`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommandUri {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

impl CommandUri {
    /// Returns whether the fetched file is marked executable; false when unset.
    pub fn executable(&self) -> bool {
        self.executable.unwrap_or(false)
    }

    /// Returns whether archives are extracted after fetching; true when unset.
    pub fn extract(&self) -> bool {
        self.extract.unwrap_or(true)
    }

    /// Returns whether the fetcher cache may be used; false when unset.
    pub fn cache(&self) -> bool {
        self.cache.unwrap_or(false)
    }
}

/// Environment variables for a command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<EnvironmentVariable>,
}

/// One environment variable, given by value or by secret (`Environment.Variable`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub variable_type: Option<VariableType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

impl EnvironmentVariable {
    /// Returns a plain variable.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            variable_type: None,
            value: Some(value.into()),
            secret: None,
        }
    }

    /// Returns how the value is given; `Value` when unset.
    pub fn variable_type(&self) -> VariableType {
        self.variable_type.unwrap_or(VariableType::Value)
    }
}

/// How an environment variable's value is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VariableType {
    Unknown,
    Value,
    Secret,
}

/// A secret, given by reference to a secret store or by value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Secret {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<SecretReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretValue>,
}

/// How a secret is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecretType {
    Unknown,
    Reference,
    Value,
}

/// A secret in a secret store, by name and optional key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A secret given inline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretValue {
    pub data: Bytes,
}

// ---------------------------------------------------------------------------------------------
// Containers.
// ---------------------------------------------------------------------------------------------

/// How a task or executor is containerised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerInfo {
    #[serde(rename = "type")]
    pub container_type: ContainerType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
}

/// The containerizer that runs a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerType {
    Docker,
    Mesos,
}

/// A container run by the Docker containerizer (`ContainerInfo.DockerInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DockerInfo {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<DockerNetwork>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Extra `docker run` options, as `--key=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
}

impl DockerInfo {
    /// Returns the Docker network mode; `Host` when unset.
    pub fn network(&self) -> DockerNetwork {
        self.network.unwrap_or(DockerNetwork::Host)
    }

    /// Returns whether the container runs privileged; false when unset.
    pub fn privileged(&self) -> bool {
        self.privileged.unwrap_or(false)
    }
}

/// The Docker network modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DockerNetwork {
    Host,
    Bridge,
    None,
    User,
}

/// A host port forwarded to a container port (`DockerInfo.PortMapping` and
/// `NetworkInfo.PortMapping`, which have the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    /// `tcp` or `udp`; `tcp` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A container run by the Mesos containerizer, optionally from an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MesosInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// A container image for the Mesos containerizer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "type")]
    pub image_type: ImageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appc: Option<AppcImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

impl Image {
    /// Returns whether a cached copy of the image may be used; true when unset.
    pub fn cached(&self) -> bool {
        self.cached.unwrap_or(true)
    }
}

/// The image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageType {
    Appc,
    Docker,
}

/// An appc image (`Image.Appc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppcImage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// A Docker image for the Mesos containerizer (`Image.Docker`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DockerImage {
    pub name: String,
    /// Registry credentials, as a Docker config file held in a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Secret>,
}

/// A path mounted into a container. Only host paths and images are modelled; the `source` forms
/// (Docker volumes, sandbox paths, secrets, CSI) are not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Volume {
    pub mode: VolumeMode,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// Whether a volume is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VolumeMode {
    Rw,
    Ro,
}

/// A network a container joins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

/// An IP address requested for or assigned to a container (`NetworkInfo.IPAddress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IpAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// The IP versions. Mesos spells them `IPv4` and `IPv6`, unlike its other enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkProtocol {
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

// ---------------------------------------------------------------------------------------------
// Executors, kill policies, health checks.
// ---------------------------------------------------------------------------------------------

/// Describes an executor: the process on the agent that runs a framework's tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub executor_type: Option<ExecutorType>,
    pub executor_id: ExecutorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    /// Required for CUSTOM executors: how to start them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated in Mesos in favour of `labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    /// How long the executor gets to exit after SHUTDOWN before it is destroyed; the agent's
    /// `--executor_shutdown_grace_period` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// The kinds of executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutorType {
    Unknown,
    /// The built-in default executor, which runs task groups; it needs no command.
    Default,
    /// An executor the framework supplies, started from `ExecutorInfo.command`.
    Custom,
}

/// How a task is to be killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KillPolicy {
    /// Time between the polite signal (SIGTERM) and the forceful one (SIGKILL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

/// A health check: its result is reported in `TaskStatus.healthy`, and a task that fails it
/// `consecutive_failures` times after the grace period is killed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<f64>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub check_type: Option<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckInfo>,
}

impl HealthCheck {
    /// Returns the seconds to wait before the first check; 15 when unset.
    pub fn delay_seconds(&self) -> f64 {
        self.delay_seconds.unwrap_or(15.0)
    }

    /// Returns the seconds between checks; 10 when unset.
    pub fn interval_seconds(&self) -> f64 {
        self.interval_seconds.unwrap_or(10.0)
    }

    /// Returns the seconds after which a check counts as failed; 20 when unset.
    pub fn timeout_seconds(&self) -> f64 {
        self.timeout_seconds.unwrap_or(20.0)
    }

    /// Returns how many failures in a row kill the task; 3 when unset.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.unwrap_or(3)
    }

    /// Returns the seconds after launch during which failures are not counted; 10 when unset.
    pub fn grace_period_seconds(&self) -> f64 {
        self.grace_period_seconds.unwrap_or(10.0)
    }
}

/// The kinds of health check and check (`HealthCheck.Type` and `CheckInfo.Type`, which have the
/// same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckType {
    Unknown,
    Command,
    Http,
    Tcp,
}

/// An HTTP health check: a GET that passes on a 2xx or 3xx answer, or on one of `statuses`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpCheckInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u32>,
}

/// A TCP health check: passes when a connection can be opened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpCheckInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetworkProtocol>,
    pub port: u32,
}

/// A general check, whose result is reported but never kills the task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckInfo {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub check_type: Option<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CheckCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<CheckHttp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<CheckTcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

impl CheckInfo {
    /// Returns the seconds to wait before the first check; 15 when unset.
    pub fn delay_seconds(&self) -> f64 {
        self.delay_seconds.unwrap_or(15.0)
    }

    /// Returns the seconds between checks; 10 when unset.
    pub fn interval_seconds(&self) -> f64 {
        self.interval_seconds.unwrap_or(10.0)
    }

    /// Returns the seconds after which a check is abandoned; 20 when unset.
    pub fn timeout_seconds(&self) -> f64 {
        self.timeout_seconds.unwrap_or(20.0)
    }
}

/// A command check (`CheckInfo.Command`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckCommand {
    pub command: CommandInfo,
}

/// An HTTP check (`CheckInfo.Http`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckHttp {
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A TCP check (`CheckInfo.Tcp`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckTcp {
    pub port: u32,
}

/// The latest result of a [`CheckInfo`] check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckStatusInfo {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub check_type: Option<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CheckStatusCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<CheckStatusHttp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<CheckStatusTcp>,
}

/// The exit code of a command check; unset while no check has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckStatusCommand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The status code of an HTTP check; unset while no check has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckStatusHttp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
}

/// Whether a TCP check connected; unset while no check has finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckStatusTcp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
}

/// How a task or executor can be found by service discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    pub visibility: DiscoveryVisibility,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Ports>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// Who may discover a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscoveryVisibility {
    Framework,
    Cluster,
    External,
}

/// A list of named ports, as Mesos's `Ports` (`{"ports": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ports {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
}

/// A port a task listens on, for service discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    pub number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<DiscoveryVisibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_base64_in_json_and_bin_in_msgpack() {
        let bytes = Bytes::new(vec![0u8, 1, 2, 250, 255]);
        assert_eq!(serde_json::to_string(&bytes).unwrap(), r#""AAEC+v8=""#);
        let packed = rmp_serde::to_vec_named(&bytes).unwrap();
        // 0xc4 is MessagePack `bin 8`, followed by the length and the raw bytes.
        assert_eq!(packed, [0xc4, 5, 0, 1, 2, 250, 255]);
        assert_eq!(rmp_serde::from_slice::<Bytes>(&packed).unwrap(), bytes);
        assert_eq!(
            serde_json::from_str::<Bytes>(r#""AAEC+v8""#).unwrap(),
            bytes
        );
    }

    #[test]
    fn bad_base64_says_so() {
        let err = serde_json::from_str::<Bytes>(r#""not base64!""#).unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
    }

    #[test]
    fn defaults_come_from_the_proto() {
        assert_eq!(Filters::default().refuse_seconds(), 5.0);
        assert!(CommandInfo::default().shell());
        let info: FrameworkInfo = serde_json::from_str(r#"{"user":"u","name":"n"}"#).unwrap();
        assert_eq!(
            (info.failover_timeout(), info.checkpoint(), info.role()),
            (0.0, false, "*")
        );
        let check = HealthCheck::default();
        assert_eq!(
            (
                check.delay_seconds(),
                check.interval_seconds(),
                check.timeout_seconds()
            ),
            (15.0, 10.0, 20.0)
        );
        assert_eq!(
            (check.consecutive_failures(), check.grace_period_seconds()),
            (3, 10.0)
        );
    }

    #[test]
    fn terminal_states_match_mesos() {
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                TaskState::Finished,
                TaskState::Failed,
                TaskState::Killed,
                TaskState::Error,
                TaskState::Lost,
                TaskState::Dropped,
                TaskState::Gone,
                TaskState::GoneByOperator,
            ]
        );
        for state in TaskState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn unknown_capability_is_tolerated() {
        let cap: FrameworkCapability =
            serde_json::from_str(r#"{"type":"SOMETHING_NEWER"}"#).unwrap();
        assert_eq!(cap.capability_type, Some(FrameworkCapabilityType::Unknown));
    }
}
