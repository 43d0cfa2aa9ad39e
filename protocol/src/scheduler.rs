//! The Mesos v1 scheduler API: [`Call`] (framework to master) and [`Event`] (master to
//! framework).
//!
//! In JSON both are Mesos "unions": a `type` naming the variant and the payload under the
//! lowercased field, `{"framework_id":{"value":"f1"},"type":"DECLINE","decline":{...}}`. Here they
//! are Rust enums ([`CallBody`], [`Event`]), with hand-written serde that maps between the two
//! forms. Decoding refuses a call whose `type` is unknown, or whose payload is missing, with an
//! error that says so; REVIVE and SUPPRESS are the exception, since clients such as pymesos send
//! them without their object to mean every role.
//!
//! The inverse-offer and operation-feedback calls and events are not implemented; decoding one
//! gives an "is not supported" error.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ExecutorId, FrameworkId, OfferId, TaskId};
use crate::mesos::{
    Bytes, Filters, FrameworkInfo, KillPolicy, MasterInfo, Offer, Operation, TaskStatus,
    UnionError, union_payload,
};

/// A framework's request to the master.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Unset only on the first SUBSCRIBE, before the master has assigned an ID.
    pub framework_id: Option<FrameworkId>,
    pub body: CallBody,
}

impl Call {
    /// Returns a call from the framework `framework_id`.
    pub fn new(framework_id: FrameworkId, body: CallBody) -> Self {
        Self {
            framework_id: Some(framework_id),
            body,
        }
    }
}

/// The kinds of scheduler call, with their payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum CallBody {
    /// Registers the framework, or re-registers it when `framework_info.id` is set, and opens the
    /// event stream.
    Subscribe(Box<Subscribe>),
    /// Removes the framework, killing its tasks and executors.
    Teardown,
    Accept(Accept),
    Decline(Decline),
    Revive(Revive),
    Kill(Kill),
    Shutdown(Shutdown),
    Acknowledge(Acknowledge),
    Reconcile(Reconcile),
    Message(Message),
    Request(Request),
    Suppress(Suppress),
    UpdateFramework(Box<UpdateFramework>),
}

impl CallBody {
    /// Returns the Mesos name of the call type (`"ACCEPT"`), as in the `type` field; also used to
    /// label metrics and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            CallBody::Subscribe(_) => "SUBSCRIBE",
            CallBody::Teardown => "TEARDOWN",
            CallBody::Accept(_) => "ACCEPT",
            CallBody::Decline(_) => "DECLINE",
            CallBody::Revive(_) => "REVIVE",
            CallBody::Kill(_) => "KILL",
            CallBody::Shutdown(_) => "SHUTDOWN",
            CallBody::Acknowledge(_) => "ACKNOWLEDGE",
            CallBody::Reconcile(_) => "RECONCILE",
            CallBody::Message(_) => "MESSAGE",
            CallBody::Request(_) => "REQUEST",
            CallBody::Suppress(_) => "SUPPRESS",
            CallBody::UpdateFramework(_) => "UPDATE_FRAMEWORK",
        }
    }
}

impl fmt::Display for CallBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// The payload of SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    /// Roles that get no offers until revived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<OfferConstraints>,
}

/// The payload of ACCEPT: operations to apply to offered resources. Offered resources that the
/// operations leave unused count as declined, with `filters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accept {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// The payload of DECLINE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decline {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// The payload of REVIVE: roles to unsuppress and clear the filters of. No roles means every
/// role of the framework; such a REVIVE is written without its `revive` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revive {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The payload of KILL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Overrides the task's own kill policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// The payload of SHUTDOWN: stop one custom executor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shutdown {
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
}

/// The payload of ACKNOWLEDGE: the framework has handled the status update with this `uuid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: Bytes,
}

/// The payload of RECONCILE. Listing no tasks asks for implicit reconciliation: the state of
/// every task the master knows for the framework.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reconcile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

/// One task to reconcile (`Call.Reconcile.Task`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// Opaque data between a framework and one of its executors: the payload of the MESSAGE call
/// and of the MESSAGE event, which have the same shape. Delivery is best effort.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: Bytes,
}

/// The payload of REQUEST, which the built-in allocator ignores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<crate::mesos::Request>,
}

/// The payload of SUPPRESS: roles to stop offering to. No roles means every role of the
/// framework; such a SUPPRESS is written without its `suppress` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Suppress {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The payload of UPDATE_FRAMEWORK: the new framework info and suppressed roles. The user,
/// principal and checkpoint flag cannot change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<OfferConstraints>,
}

/// Conditions on agent attributes that an offer must meet, per role, set at SUBSCRIBE or
/// UPDATE_FRAMEWORK. An agent qualifies for a role when every constraint of at least one group
/// holds. The allocator does not apply them yet; they are kept so that they can be echoed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OfferConstraints {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_constraints: BTreeMap<String, RoleConstraints>,
}

/// The constraint groups of one role (`OfferConstraints.RoleConstraints`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleConstraints {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ConstraintGroup>,
}

/// Constraints that must all hold (`OfferConstraints.RoleConstraints.Group`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConstraintGroup {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_constraints: Vec<AttributeConstraint>,
}

/// A predicate on one attribute, or pseudo-attribute, of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttributeConstraint {
    pub selector: AttributeSelector,
    pub predicate: AttributePredicate,
}

/// Which attribute a constraint looks at. The proto's `oneof` has the same JSON form as serde's
/// externally tagged enum: `{"attribute_name": "rack"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeSelector {
    PseudoattributeType(PseudoattributeType),
    AttributeName(String),
}

/// Properties of an agent that constraints can select although they are not attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PseudoattributeType {
    Unknown,
    Hostname,
    Region,
    Zone,
}

/// What a constraint requires of the selected attribute. `exists` and `not_exists` carry an
/// empty object in JSON (`{"exists": {}}`), hence the [`Empty`] payloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributePredicate {
    Exists(Empty),
    NotExists(Empty),
    TextEquals(TextValue),
    TextNotEquals(TextValue),
    TextMatches(TextRegex),
    TextNotMatches(TextRegex),
}

/// An empty proto message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Empty {}

/// The text an attribute must (or must not) equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextValue {
    pub value: String,
}

/// The regular expression an attribute must (or must not) match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextRegex {
    pub regex: String,
}

/// The JSON shape of a [`Call`], with every payload optional.
#[derive(Deserialize)]
struct CallWire {
    #[serde(default)]
    framework_id: Option<FrameworkId>,
    #[serde(rename = "type", default)]
    call_type: Option<String>,
    #[serde(default)]
    subscribe: Option<Subscribe>,
    #[serde(default)]
    accept: Option<Accept>,
    #[serde(default)]
    decline: Option<Decline>,
    #[serde(default)]
    revive: Option<Revive>,
    #[serde(default)]
    kill: Option<Kill>,
    #[serde(default)]
    shutdown: Option<Shutdown>,
    #[serde(default)]
    acknowledge: Option<Acknowledge>,
    #[serde(default)]
    reconcile: Option<Reconcile>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    request: Option<Request>,
    #[serde(default)]
    suppress: Option<Suppress>,
    #[serde(default)]
    update_framework: Option<UpdateFramework>,
}

impl TryFrom<CallWire> for Call {
    type Error = UnionError;

    fn try_from(wire: CallWire) -> Result<Self, UnionError> {
        const KIND: &str = "scheduler call";
        const NOUN: &str = "call";
        let call_type = wire
            .call_type
            .ok_or(UnionError::MissingType { kind: KIND })?;
        let body = match call_type.as_str() {
            "SUBSCRIBE" => CallBody::Subscribe(Box::new(union_payload(
                wire.subscribe,
                NOUN,
                "SUBSCRIBE",
                "subscribe",
            )?)),
            "TEARDOWN" => CallBody::Teardown,
            "ACCEPT" => CallBody::Accept(union_payload(wire.accept, NOUN, "ACCEPT", "accept")?),
            "DECLINE" => {
                CallBody::Decline(union_payload(wire.decline, NOUN, "DECLINE", "decline")?)
            }
            "REVIVE" => CallBody::Revive(wire.revive.unwrap_or_default()),
            "KILL" => CallBody::Kill(union_payload(wire.kill, NOUN, "KILL", "kill")?),
            "SHUTDOWN" => {
                CallBody::Shutdown(union_payload(wire.shutdown, NOUN, "SHUTDOWN", "shutdown")?)
            }
            "ACKNOWLEDGE" => CallBody::Acknowledge(union_payload(
                wire.acknowledge,
                NOUN,
                "ACKNOWLEDGE",
                "acknowledge",
            )?),
            "RECONCILE" => CallBody::Reconcile(union_payload(
                wire.reconcile,
                NOUN,
                "RECONCILE",
                "reconcile",
            )?),
            "MESSAGE" => {
                CallBody::Message(union_payload(wire.message, NOUN, "MESSAGE", "message")?)
            }
            "REQUEST" => {
                CallBody::Request(union_payload(wire.request, NOUN, "REQUEST", "request")?)
            }
            "SUPPRESS" => CallBody::Suppress(wire.suppress.unwrap_or_default()),
            "UPDATE_FRAMEWORK" => CallBody::UpdateFramework(Box::new(union_payload(
                wire.update_framework,
                NOUN,
                "UPDATE_FRAMEWORK",
                "update_framework",
            )?)),
            "ACCEPT_INVERSE_OFFERS"
            | "DECLINE_INVERSE_OFFERS"
            | "ACKNOWLEDGE_OPERATION_STATUS"
            | "RECONCILE_OPERATIONS" => {
                return Err(UnionError::Unsupported {
                    kind: KIND,
                    type_name: call_type,
                });
            }
            _ => {
                return Err(UnionError::UnknownType {
                    kind: KIND,
                    type_name: call_type,
                });
            }
        };
        Ok(Call {
            framework_id: wire.framework_id,
            body,
        })
    }
}

impl Serialize for Call {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let payload = match &self.body {
            CallBody::Teardown => false,
            CallBody::Revive(revive) => !revive.roles.is_empty(),
            CallBody::Suppress(suppress) => !suppress.roles.is_empty(),
            _ => true,
        };
        let len = usize::from(self.framework_id.is_some()) + 1 + usize::from(payload);
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(framework_id) = &self.framework_id {
            map.serialize_entry("framework_id", framework_id)?;
        }
        map.serialize_entry("type", self.body.type_name())?;
        match &self.body {
            CallBody::Subscribe(payload) => map.serialize_entry("subscribe", payload)?,
            CallBody::Teardown => {}
            CallBody::Accept(payload) => map.serialize_entry("accept", payload)?,
            CallBody::Decline(payload) => map.serialize_entry("decline", payload)?,
            CallBody::Revive(payload) if payload.roles.is_empty() => {}
            CallBody::Revive(payload) => map.serialize_entry("revive", payload)?,
            CallBody::Kill(payload) => map.serialize_entry("kill", payload)?,
            CallBody::Shutdown(payload) => map.serialize_entry("shutdown", payload)?,
            CallBody::Acknowledge(payload) => map.serialize_entry("acknowledge", payload)?,
            CallBody::Reconcile(payload) => map.serialize_entry("reconcile", payload)?,
            CallBody::Message(payload) => map.serialize_entry("message", payload)?,
            CallBody::Request(payload) => map.serialize_entry("request", payload)?,
            CallBody::Suppress(payload) if payload.roles.is_empty() => {}
            CallBody::Suppress(payload) => map.serialize_entry("suppress", payload)?,
            CallBody::UpdateFramework(payload) => {
                map.serialize_entry("update_framework", payload)?
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = CallWire::deserialize(deserializer)?;
        Call::try_from(wire).map_err(de::Error::custom)
    }
}

/// Something the master tells a framework.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The first event of every subscription.
    Subscribed(Box<Subscribed>),
    Offers(Offers),
    /// An offer is withdrawn; accepting it now fails.
    Rescind(Rescind),
    /// A task status update; acknowledge it when its `uuid` is set.
    Update(Box<Update>),
    Message(Message),
    Failure(Failure),
    /// A fatal error: the subscription is over (for example "Framework failed over").
    Error(Error),
    /// Sent every `heartbeat_interval_seconds` so the framework can detect a dead connection.
    Heartbeat,
}

impl Event {
    /// Returns the Mesos name of the event type (`"OFFERS"`), as in the `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Subscribed(_) => "SUBSCRIBED",
            Event::Offers(_) => "OFFERS",
            Event::Rescind(_) => "RESCIND",
            Event::Update(_) => "UPDATE",
            Event::Message(_) => "MESSAGE",
            Event::Failure(_) => "FAILURE",
            Event::Error(_) => "ERROR",
            Event::Heartbeat => "HEARTBEAT",
        }
    }
}

/// The payload of SUBSCRIBED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

/// The payload of OFFERS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<Offer>,
}

/// The payload of RESCIND.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rescind {
    pub offer_id: OfferId,
}

/// The payload of UPDATE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// The payload of FAILURE: an agent was removed (only `agent_id` set), or an executor exited
/// (`executor_id` and its exit `status` set too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// The payload of ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Error {
    pub message: String,
}

/// The JSON shape of an [`Event`], with every payload optional.
#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type", default)]
    event_type: Option<String>,
    #[serde(default)]
    subscribed: Option<Subscribed>,
    #[serde(default)]
    offers: Option<Offers>,
    #[serde(default)]
    rescind: Option<Rescind>,
    #[serde(default)]
    update: Option<Update>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    failure: Option<Failure>,
    #[serde(default)]
    error: Option<Error>,
}

impl TryFrom<EventWire> for Event {
    type Error = UnionError;

    fn try_from(wire: EventWire) -> Result<Self, UnionError> {
        const KIND: &str = "scheduler event";
        const NOUN: &str = "event";
        let event_type = wire
            .event_type
            .ok_or(UnionError::MissingType { kind: KIND })?;
        let event = match event_type.as_str() {
            "SUBSCRIBED" => Event::Subscribed(Box::new(union_payload(
                wire.subscribed,
                NOUN,
                "SUBSCRIBED",
                "subscribed",
            )?)),
            "OFFERS" => Event::Offers(union_payload(wire.offers, NOUN, "OFFERS", "offers")?),
            "RESCIND" => Event::Rescind(union_payload(wire.rescind, NOUN, "RESCIND", "rescind")?),
            "UPDATE" => Event::Update(Box::new(union_payload(
                wire.update,
                NOUN,
                "UPDATE",
                "update",
            )?)),
            "MESSAGE" => Event::Message(union_payload(wire.message, NOUN, "MESSAGE", "message")?),
            "FAILURE" => Event::Failure(union_payload(wire.failure, NOUN, "FAILURE", "failure")?),
            "ERROR" => Event::Error(union_payload(wire.error, NOUN, "ERROR", "error")?),
            "HEARTBEAT" => Event::Heartbeat,
            "INVERSE_OFFERS" | "RESCIND_INVERSE_OFFER" | "UPDATE_OPERATION_STATUS" => {
                return Err(UnionError::Unsupported {
                    kind: KIND,
                    type_name: event_type,
                });
            }
            _ => {
                return Err(UnionError::UnknownType {
                    kind: KIND,
                    type_name: event_type,
                });
            }
        };
        Ok(event)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if matches!(self, Event::Heartbeat) {
            1
        } else {
            2
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("type", self.type_name())?;
        match self {
            Event::Subscribed(payload) => map.serialize_entry("subscribed", payload)?,
            Event::Offers(payload) => map.serialize_entry("offers", payload)?,
            Event::Rescind(payload) => map.serialize_entry("rescind", payload)?,
            Event::Update(payload) => map.serialize_entry("update", payload)?,
            Event::Message(payload) => map.serialize_entry("message", payload)?,
            Event::Failure(payload) => map.serialize_entry("failure", payload)?,
            Event::Error(payload) => map.serialize_entry("error", payload)?,
            Event::Heartbeat => {}
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = EventWire::deserialize(deserializer)?;
        Event::try_from(wire).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teardown_and_heartbeat_have_no_payload() {
        let call = Call::new(FrameworkId::new("f").unwrap(), CallBody::Teardown);
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"framework_id":{"value":"f"},"type":"TEARDOWN"}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::Heartbeat).unwrap(),
            r#"{"type":"HEARTBEAT"}"#
        );
    }

    #[test]
    fn suppress_without_object_means_all_roles() {
        let call: Call = serde_json::from_str(r#"{"type":"SUPPRESS"}"#).unwrap();
        assert_eq!(call.body, CallBody::Suppress(Suppress::default()));
        let call: Call =
            serde_json::from_str(r#"{"type":"SUPPRESS","suppress":{"roles":["a"]}}"#).unwrap();
        assert_eq!(
            call.body,
            CallBody::Suppress(Suppress {
                roles: vec!["a".into()]
            })
        );
    }

    #[test]
    fn missing_type_and_unsupported_type_are_errors() {
        let err = serde_json::from_str::<Call>(r#"{"framework_id":{"value":"f"}}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("scheduler call has no 'type' field"),
            "{err}"
        );
        let err = serde_json::from_str::<Event>(r#"{"type":"INVERSE_OFFERS"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("scheduler event type 'INVERSE_OFFERS' is not supported"),
            "{err}"
        );
        let err = serde_json::from_str::<Event>(r#"{"type":"UPDATE"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("UPDATE event has no 'update' field"),
            "{err}"
        );
    }
}
