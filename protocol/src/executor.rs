//! The Mesos v1 executor API: [`Call`] (executor to agent) and [`Event`] (agent to executor).
//!
//! The JSON form is the same kind of union as the scheduler API's: a `type` plus the payload
//! under the lowercased field. Every call names its executor and framework, because the agent
//! serves all its executors on one endpoint.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::ids::{ContainerId, ExecutorId, FrameworkId, TaskId};
use crate::mesos::{
    AgentInfo, Bytes, ExecutorInfo, FrameworkInfo, KillPolicy, TaskGroupInfo, TaskInfo, TaskStatus,
    UnionError, union_payload,
};

/// An executor's request to its agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub executor_id: ExecutorId,
    pub framework_id: FrameworkId,
    pub body: CallBody,
}

/// The kinds of executor call, with their payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum CallBody {
    /// Opens the event stream; after an agent restart, also hands back what the executor still
    /// holds unacknowledged.
    Subscribe(Box<Subscribe>),
    /// A task status update; the agent acknowledges it with ACKNOWLEDGED and the executor
    /// resends it until then.
    Update(Box<Update>),
    /// Opaque data for the framework's scheduler.
    Message(Message),
    Heartbeat,
}

impl CallBody {
    /// Returns the Mesos name of the call type (`"UPDATE"`), as in the `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            CallBody::Subscribe(_) => "SUBSCRIBE",
            CallBody::Update(_) => "UPDATE",
            CallBody::Message(_) => "MESSAGE",
            CallBody::Heartbeat => "HEARTBEAT",
        }
    }
}

impl fmt::Display for CallBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// The payload of SUBSCRIBE. On a resubscription (after an agent restart) the executor lists the
/// tasks it was given but has sent no update for, and the updates not yet acknowledged, so the
/// agent can tell which tasks to report lost and which updates to forward.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_updates: Vec<Update>,
}

/// The payload of UPDATE; `status.uuid` must be set, since the acknowledgement refers to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// Opaque data between an executor and its framework: the payload of the MESSAGE call and of the
/// MESSAGE event, which have the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub data: Bytes,
}

/// The JSON shape of a [`Call`], with every payload optional.
#[derive(Deserialize)]
struct CallWire {
    executor_id: ExecutorId,
    framework_id: FrameworkId,
    #[serde(rename = "type", default)]
    call_type: Option<String>,
    #[serde(default)]
    subscribe: Option<Subscribe>,
    #[serde(default)]
    update: Option<Update>,
    #[serde(default)]
    message: Option<Message>,
}

impl TryFrom<CallWire> for Call {
    type Error = UnionError;

    fn try_from(wire: CallWire) -> Result<Self, UnionError> {
        const KIND: &str = "executor call";
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
            "UPDATE" => CallBody::Update(Box::new(union_payload(
                wire.update,
                NOUN,
                "UPDATE",
                "update",
            )?)),
            "MESSAGE" => {
                CallBody::Message(union_payload(wire.message, NOUN, "MESSAGE", "message")?)
            }
            "HEARTBEAT" => CallBody::Heartbeat,
            _ => {
                return Err(UnionError::UnknownType {
                    kind: KIND,
                    type_name: call_type,
                });
            }
        };
        Ok(Call {
            executor_id: wire.executor_id,
            framework_id: wire.framework_id,
            body,
        })
    }
}

impl Serialize for Call {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if matches!(self.body, CallBody::Heartbeat) {
            3
        } else {
            4
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("executor_id", &self.executor_id)?;
        map.serialize_entry("framework_id", &self.framework_id)?;
        map.serialize_entry("type", self.body.type_name())?;
        match &self.body {
            CallBody::Subscribe(payload) => map.serialize_entry("subscribe", payload)?,
            CallBody::Update(payload) => map.serialize_entry("update", payload)?,
            CallBody::Message(payload) => map.serialize_entry("message", payload)?,
            CallBody::Heartbeat => {}
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

/// Something the agent tells an executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The first event of every subscription.
    Subscribed(Box<Subscribed>),
    /// Run one task.
    Launch(Box<Launch>),
    /// Run a group of tasks together.
    LaunchGroup(Box<LaunchGroup>),
    Kill(Kill),
    /// The framework acknowledged an update; the executor stops resending it.
    Acknowledged(Acknowledged),
    Message(Message),
    Error(Error),
    /// Kill every task and exit within the grace period, or be destroyed.
    Shutdown,
    Heartbeat,
}

impl Event {
    /// Returns the Mesos name of the event type (`"LAUNCH"`), as in the `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Subscribed(_) => "SUBSCRIBED",
            Event::Launch(_) => "LAUNCH",
            Event::LaunchGroup(_) => "LAUNCH_GROUP",
            Event::Kill(_) => "KILL",
            Event::Acknowledged(_) => "ACKNOWLEDGED",
            Event::Message(_) => "MESSAGE",
            Event::Error(_) => "ERROR",
            Event::Shutdown => "SHUTDOWN",
            Event::Heartbeat => "HEARTBEAT",
        }
    }
}

/// The payload of SUBSCRIBED: everything the executor needs to know about where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub executor_info: ExecutorInfo,
    pub framework_info: FrameworkInfo,
    pub agent_info: AgentInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
}

/// The payload of LAUNCH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub task: TaskInfo,
}

/// The payload of LAUNCH_GROUP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub task_group: TaskGroupInfo,
}

/// The payload of KILL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// The payload of ACKNOWLEDGED: the update with this `uuid` reached the framework.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Acknowledged {
    pub task_id: TaskId,
    pub uuid: Bytes,
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
    launch: Option<Launch>,
    #[serde(default)]
    launch_group: Option<LaunchGroup>,
    #[serde(default)]
    kill: Option<Kill>,
    #[serde(default)]
    acknowledged: Option<Acknowledged>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    error: Option<Error>,
}

impl TryFrom<EventWire> for Event {
    type Error = UnionError;

    fn try_from(wire: EventWire) -> Result<Self, UnionError> {
        const KIND: &str = "executor event";
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
            "LAUNCH" => Event::Launch(Box::new(union_payload(
                wire.launch,
                NOUN,
                "LAUNCH",
                "launch",
            )?)),
            "LAUNCH_GROUP" => Event::LaunchGroup(Box::new(union_payload(
                wire.launch_group,
                NOUN,
                "LAUNCH_GROUP",
                "launch_group",
            )?)),
            "KILL" => Event::Kill(union_payload(wire.kill, NOUN, "KILL", "kill")?),
            "ACKNOWLEDGED" => Event::Acknowledged(union_payload(
                wire.acknowledged,
                NOUN,
                "ACKNOWLEDGED",
                "acknowledged",
            )?),
            "MESSAGE" => Event::Message(union_payload(wire.message, NOUN, "MESSAGE", "message")?),
            "ERROR" => Event::Error(union_payload(wire.error, NOUN, "ERROR", "error")?),
            "SHUTDOWN" => Event::Shutdown,
            "HEARTBEAT" => Event::Heartbeat,
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
        let len = if matches!(self, Event::Shutdown | Event::Heartbeat) {
            1
        } else {
            2
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("type", self.type_name())?;
        match self {
            Event::Subscribed(payload) => map.serialize_entry("subscribed", payload)?,
            Event::Launch(payload) => map.serialize_entry("launch", payload)?,
            Event::LaunchGroup(payload) => map.serialize_entry("launch_group", payload)?,
            Event::Kill(payload) => map.serialize_entry("kill", payload)?,
            Event::Acknowledged(payload) => map.serialize_entry("acknowledged", payload)?,
            Event::Message(payload) => map.serialize_entry("message", payload)?,
            Event::Error(payload) => map.serialize_entry("error", payload)?,
            Event::Shutdown | Event::Heartbeat => {}
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
    fn heartbeat_call_carries_ids() {
        let call = Call {
            executor_id: ExecutorId::new("e").unwrap(),
            framework_id: FrameworkId::new("f").unwrap(),
            body: CallBody::Heartbeat,
        };
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(
            json,
            r#"{"executor_id":{"value":"e"},"framework_id":{"value":"f"},"type":"HEARTBEAT"}"#
        );
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
    }

    #[test]
    fn call_without_executor_id_is_refused() {
        let err =
            serde_json::from_str::<Call>(r#"{"framework_id":{"value":"f"},"type":"HEARTBEAT"}"#)
                .unwrap_err();
        assert!(
            err.to_string().contains("missing field `executor_id`"),
            "{err}"
        );
    }

    #[test]
    fn shutdown_event_round_trips() {
        let json = serde_json::to_string(&Event::Shutdown).unwrap();
        assert_eq!(json, r#"{"type":"SHUTDOWN"}"#);
        assert_eq!(
            serde_json::from_str::<Event>(&json).unwrap(),
            Event::Shutdown
        );
        let err = serde_json::from_str::<Event>(r#"{"type":"LAUNCH"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("LAUNCH event has no 'launch' field"),
            "{err}"
        );
    }
}
