//! The Mesos resource model: `Resource` (the wire form) and `Resources` (a multiset with
//! arithmetic).

use serde::{Deserialize, Serialize};

use crate::mesos::Labels;

/// The kind of value a resource or attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    Scalar,
    Ranges,
    Set,
    Text,
}

/// A scalar quantity (`cpus`, `mem` in MiB, `disk` in MiB, `gpus`, or a custom name).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    pub value: f64,
}

/// An inclusive range of integers, such as a span of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Range {
    pub begin: u64,
    pub end: u64,
}

/// A list of ranges, as Mesos's `Value.Ranges` (`{"range": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges {
    #[serde(default)]
    pub range: Vec<Range>,
}

/// A set of strings, as Mesos's `Value.Set` (`{"item": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    #[serde(default)]
    pub item: Vec<String>,
}

/// Whether a reservation was made by the operator at agent start or at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationType {
    Static,
    Dynamic,
}

/// One level of a (possibly refined) reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationInfo {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub reservation_type: Option<ReservationType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// The role a resource is allocated to, set on offered and used resources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AllocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// One resource as it travels on the wire, in the Mesos v1 JSON form:
/// `{"name":"cpus","type":"SCALAR","scalar":{"value":1.0},"role":"*"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    /// Deprecated in Mesos in favour of `reservations`, but still sent by it and by clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
    /// The reservation stack, outermost (closest to `*`) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<ReservationInfo>,
}

/// A collection of resources with Mesos's arithmetic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    resources: Vec<Resource>,
}
