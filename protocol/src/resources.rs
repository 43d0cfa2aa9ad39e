//! The Mesos resource model: `Resource` (the wire form) and `Resources` (a multiset with
//! arithmetic).
//!
//! A `Resources` holds each resource once per *identity*: name, value type, reservation stack,
//! allocation and the other metadata (`revocable`, `shared`, `disk`, `provider_id`). Adding
//! merges values of the same identity (scalars sum, ranges and sets unite); subtracting removes
//! them and drops whatever becomes empty or negative, as Mesos does. Entries are kept sorted by
//! identity, so `==` compares contents and iteration order is stable.
//!
//! Scalars are held in Mesos's fixed point ([`Milli`], thousandths), so arithmetic is exact; the
//! wire still shows an `f64`. Reservations are held in Mesos's "post-refinement" format (the
//! `reservations` stack); the deprecated `role` and `reservation` fields are accepted on input
//! and written back, in Mesos's endpoint format, for older clients.
//!
//! # Layout
//!
//! - `quantity`: fixed-point scalars and range and set algebra.
//! - `roles`: role name rules and the role tree.
//! - `validate`: the checks a wire `Resource` must pass.
//! - `text`: the `--resources` text syntax.

mod quantity;
mod roles;
mod text;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use crate::mesos::Labels;

pub use quantity::Milli;
pub use roles::{ANY_ROLE, is_strict_subrole_of, role_ancestors, validate_role};

use quantity::Quantity;

/// Why a resource, a role or a resource text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    #[error("invalid role '{role}': {reason}")]
    InvalidRole { role: String, reason: &'static str },
    #[error("resource name must not be empty")]
    EmptyName,
    #[error("resource '{name}' has type {value_type}, which resources do not support")]
    UnsupportedType { name: String, value_type: ValueType },
    #[error(
        "resource '{name}' of type {value_type} must set the matching value field and no other"
    )]
    MismatchedValue { name: String, value_type: ValueType },
    #[error("invalid scalar '{value}': {reason}")]
    InvalidScalar { value: String, reason: &'static str },
    #[error("invalid ranges '{ranges}': {reason}")]
    InvalidRanges {
        ranges: String,
        reason: &'static str,
    },
    #[error("invalid set '{set}': {reason}")]
    InvalidSet { set: String, reason: &'static str },
    #[error("invalid reservation on resource '{name}': {reason}")]
    InvalidReservation { name: String, reason: String },
    #[error("invalid resource '{name}': {reason}")]
    InvalidMetadata { name: String, reason: &'static str },
    #[error("resource '{name}' is given with more than one type")]
    MixedTypes { name: String },
    #[error("invalid resource '{token}': {reason}")]
    Syntax { token: String, reason: &'static str },
    #[error("invalid resources JSON: {0}")]
    Json(String),
    #[error("resource '{name}' has no reservation to pop")]
    NotReserved { name: String },
}

/// The kind of value a resource or attribute holds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    #[default]
    Scalar,
    Ranges,
    Set,
    Text,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "SCALAR",
            ValueType::Ranges => "RANGES",
            ValueType::Set => "SET",
            ValueType::Text => "TEXT",
        })
    }
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

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.begin, self.end)
    }
}

/// A list of ranges, as Mesos's `Value.Ranges` (`{"range": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges {
    #[serde(default)]
    pub range: Vec<Range>,
}

impl Ranges {
    /// Returns how many integers the ranges cover, assuming they do not overlap.
    pub fn count(&self) -> u64 {
        self.range.iter().fold(0, |total, range| {
            let span = (range.end.saturating_sub(range.begin)).saturating_add(1);
            total.saturating_add(span)
        })
    }

    /// Returns true if `value` lies in one of the ranges.
    pub fn contains(&self, value: u64) -> bool {
        self.range
            .iter()
            .any(|range| range.begin <= value && value <= range.end)
    }
}

impl fmt::Display for Ranges {
    /// Prints the text syntax, `[31000-32000,33000-33100]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (idx, range) in self.range.iter().enumerate() {
            let separator = if idx == 0 { "" } else { "," };
            write!(f, "{separator}{range}")?;
        }
        f.write_str("]")
    }
}

/// A set of strings, as Mesos's `Value.Set` (`{"item": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    #[serde(default)]
    pub item: Vec<String>,
}

impl fmt::Display for Set {
    /// Prints the text syntax, `{a,b}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.item.join(","))
    }
}

/// Whether a reservation was made by the operator at agent start or at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationType {
    Static,
    Dynamic,
}

/// One level of a (possibly refined) reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

impl ReservationInfo {
    /// Returns a static reservation, as the agent's `--resources` makes with `cpus(role):2`.
    pub fn new_static(role: impl Into<String>) -> ReservationInfo {
        ReservationInfo {
            reservation_type: Some(ReservationType::Static),
            role: Some(role.into()),
            ..ReservationInfo::default()
        }
    }

    /// Returns a dynamic reservation, as a RESERVE operation makes.
    pub fn new_dynamic(role: impl Into<String>, principal: Option<&str>) -> ReservationInfo {
        ReservationInfo {
            reservation_type: Some(ReservationType::Dynamic),
            role: Some(role.into()),
            principal: principal.map(str::to_owned),
            labels: None,
        }
    }

    /// Returns the reserved role, or `*` for the (invalid) reservation that names none.
    fn role_or_any(&self) -> &str {
        self.role.as_deref().unwrap_or(ANY_ROLE)
    }

    /// Returns the reservation with empty labels dropped, so that `{"labels": []}` and no
    /// labels are one identity.
    fn normalized(&self) -> ReservationInfo {
        ReservationInfo {
            labels: self
                .labels
                .clone()
                .filter(|labels| !labels.labels.is_empty()),
            ..self.clone()
        }
    }
}

/// The role a resource is allocated to, set on offered and used resources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AllocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Marks a resource as revocable (oversubscribed); Mesos's message has no fields yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RevocableInfo {}

/// Marks a persistent volume as shareable between tasks; Mesos's message has no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SharedInfo {}

/// The ID of the resource provider (for example a CSI plugin) that offers a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceProviderId {
    pub value: String,
}

/// One resource as it travels on the wire, in the Mesos v1 JSON form:
/// `{"name":"cpus","type":"SCALAR","scalar":{"value":1.0},"role":"*"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Deprecated in Mesos: with `role`, the principal and labels of a single dynamic
    /// reservation. Its `type` and `role` stay unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationInfo>,
    /// The reservation stack, outermost (closest to `*`) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<ReservationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocable: Option<RevocableInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedInfo>,
    /// Mesos's `DiskInfo` (persistence, volume, source), kept opaque: Strata only compares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<ResourceProviderId>,
}

impl Resource {
    /// Returns an unreserved scalar resource, such as `cpus:1.5`.
    pub fn new_scalar(name: impl Into<String>, value: f64) -> Resource {
        Resource {
            scalar: Some(Scalar { value }),
            ..Resource::blank(name, ValueType::Scalar)
        }
    }

    /// Returns an unreserved ranges resource from `(begin, end)` pairs, kept as given.
    pub fn new_ranges(
        name: impl Into<String>,
        ranges: impl IntoIterator<Item = (u64, u64)>,
    ) -> Resource {
        let range = ranges
            .into_iter()
            .map(|(begin, end)| Range { begin, end })
            .collect();
        Resource {
            ranges: Some(Ranges { range }),
            ..Resource::blank(name, ValueType::Ranges)
        }
    }

    /// Returns an unreserved set resource, such as `zones:{a,b}`.
    pub fn new_set(
        name: impl Into<String>,
        items: impl IntoIterator<Item = impl Into<String>>,
    ) -> Resource {
        let item = items.into_iter().map(Into::into).collect();
        Resource {
            set: Some(Set { item }),
            ..Resource::blank(name, ValueType::Set)
        }
    }

    /// Returns a resource with no value field set, for the constructors to fill in.
    fn blank(name: impl Into<String>, value_type: ValueType) -> Resource {
        Resource {
            name: name.into(),
            value_type,
            ..Resource::default()
        }
    }

    /// Returns the resource with `reservation` pushed onto its reservation stack.
    pub fn with_reservation(mut self, reservation: ReservationInfo) -> Resource {
        self.reservations.push(reservation);
        self
    }

    /// Returns the resource marked as allocated to `role`.
    pub fn with_allocation(mut self, role: impl Into<String>) -> Resource {
        self.allocation_info = Some(AllocationInfo {
            role: Some(role.into()),
        });
        self
    }

    /// Returns the role the resource is reserved for: that of the innermost reservation, else
    /// the deprecated `role` field, else `*` for unreserved.
    pub fn reservation_role(&self) -> &str {
        match self.reservations.last() {
            Some(reservation) => reservation.role_or_any(),
            None => self.role.as_deref().unwrap_or(ANY_ROLE),
        }
    }

    /// Returns true if no role holds a reservation on the resource.
    pub fn is_unreserved(&self) -> bool {
        self.reservation_role() == ANY_ROLE
    }

    /// Returns true if the resource is reserved, to `role` if one is given.
    pub fn is_reserved(&self, role: Option<&str>) -> bool {
        let reserved_role = self.reservation_role();
        reserved_role != ANY_ROLE && role.is_none_or(|role| role == reserved_role)
    }

    /// Returns true if the innermost reservation is dynamic, made by a RESERVE operation.
    pub fn is_dynamically_reserved(&self) -> bool {
        match self.reservations.last() {
            Some(reservation) => reservation.reservation_type == Some(ReservationType::Dynamic),
            None => self.reservation.is_some() && !self.is_unreserved(),
        }
    }

    /// Returns true if a framework in `role` may be offered the resource: it is unreserved, or
    /// reserved to `role` or to one of its ancestors.
    pub fn is_allocatable_to(&self, role: &str) -> bool {
        let reserved_role = self.reservation_role();
        reserved_role == ANY_ROLE
            || reserved_role == role
            || is_strict_subrole_of(role, reserved_role)
    }

    /// Returns the role the resource is allocated to, if any.
    pub fn allocation_role(&self) -> Option<&str> {
        self.allocation_info.as_ref()?.role.as_deref()
    }

    /// Returns true if the resource may be revoked (oversubscription).
    pub fn is_revocable(&self) -> bool {
        self.revocable.is_some()
    }

    /// Returns true if the resource is a shared persistent volume.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Checks the resource against Mesos's rules: a non-empty name; a type of SCALAR, RANGES or
    /// SET with exactly its value field set; a finite, non-negative scalar of at most three
    /// decimal places' worth; ranges that are not inverted and do not overlap; set items that
    /// are unique; valid roles; a reservation stack whose levels each refine the one below;
    /// `disk` only on `disk` and `shared` only on persistent volumes.
    pub fn validate(&self) -> Result<(), ResourcesError> {
        validate::validate(self)
    }
}

impl fmt::Display for Resource {
    /// Prints a valid resource as [`Resources`] does, and an invalid one as its JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Resources::try_from(self.clone()) {
            Ok(resources) => write!(f, "{resources}"),
            Err(_) => {
                let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}

/// A JSON value compared by its canonical text (object keys sorted), so that it can be part of
/// an ordered identity.
#[derive(Debug, Clone)]
struct OpaqueJson {
    canonical: String,
    value: serde_json::Value,
}

impl OpaqueJson {
    fn new(value: &serde_json::Value) -> OpaqueJson {
        OpaqueJson {
            canonical: sort_keys(value).to_string(),
            value: value.clone(),
        }
    }
}

/// Returns `value` with every object's keys in sorted order, whatever map serde_json uses.
fn sort_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, serde_json::Value> = map
                .iter()
                .map(|(key, value)| (key, sort_keys(value)))
                .collect();
            let map = sorted
                .into_iter()
                .map(|(key, value)| (key.clone(), value))
                .collect();
            serde_json::Value::Object(map)
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sort_keys).collect())
        }
        other => other.clone(),
    }
}

impl PartialEq for OpaqueJson {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for OpaqueJson {}

impl PartialOrd for OpaqueJson {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpaqueJson {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.canonical.cmp(&other.canonical)
    }
}

/// Everything about a resource except its value: two entries with the same identity merge.
///
/// The fields most resources set (name, type, allocation) are held inline; the rarely set ones
/// live in [`IdentityExtra`], which is `None` unless one of them is set, so that a plain
/// identity needs no allocation beyond its name.
///
/// The order (and equality) is as if all fields were inline, in the order name, value type,
/// reservations, allocation, revocable, shared, provider ID, disk: the iteration order of
/// `Resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    name: Box<str>,
    value_type: ValueType,
    allocation_info: Option<AllocationInfo>,
    /// Never `Some` of an empty `IdentityExtra`, so that the derived equality holds.
    extra: Option<Box<IdentityExtra>>,
}

/// The rarely set parts of an [`Identity`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct IdentityExtra {
    reservations: Vec<ReservationInfo>,
    revocable: Option<RevocableInfo>,
    shared: Option<SharedInfo>,
    provider_id: Option<ResourceProviderId>,
    disk: Option<OpaqueJson>,
}

impl IdentityExtra {
    fn is_empty(&self) -> bool {
        self.reservations.is_empty()
            && self.revocable.is_none()
            && self.shared.is_none()
            && self.provider_id.is_none()
            && self.disk.is_none()
    }

    /// Boxes the extra fields, or returns `None` if none is set.
    fn boxed(self) -> Option<Box<IdentityExtra>> {
        (!self.is_empty()).then(|| Box::new(self))
    }
}

impl PartialOrd for Identity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Identity {
    /// Compares as the derived order of the inline layout (name, value type, reservations,
    /// allocation, revocable, shared, provider ID, disk) would.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value_type.cmp(&other.value_type))
            .then_with(|| self.reservations().cmp(other.reservations()))
            .then_with(|| self.allocation_info.cmp(&other.allocation_info))
            .then_with(|| match (&self.extra, &other.extra) {
                (None, None) => std::cmp::Ordering::Equal,
                _ => (
                    self.revocable(),
                    self.shared(),
                    self.provider_id(),
                    self.disk(),
                )
                    .cmp(&(
                        other.revocable(),
                        other.shared(),
                        other.provider_id(),
                        other.disk(),
                    )),
            })
    }
}

impl Identity {
    /// Returns the identity of a valid resource, with its reservations in the post-refinement
    /// format.
    fn of(resource: &Resource) -> Identity {
        let extra = IdentityExtra {
            reservations: reservation_stack(resource),
            revocable: resource.revocable.clone(),
            shared: resource.shared.clone(),
            provider_id: resource.provider_id.clone(),
            disk: resource.disk.as_ref().map(OpaqueJson::new),
        };
        Identity {
            name: resource.name.as_str().into(),
            value_type: resource.value_type,
            allocation_info: resource.allocation_info.clone(),
            extra: extra.boxed(),
        }
    }

    /// Returns a name-and-type-only identity, as in quantities stripped of all metadata.
    fn bare(name: &str, value_type: ValueType) -> Identity {
        Identity {
            name: name.into(),
            value_type,
            allocation_info: None,
            extra: None,
        }
    }

    fn reservations(&self) -> &[ReservationInfo] {
        self.extra
            .as_deref()
            .map_or(&[], |extra| extra.reservations.as_slice())
    }

    fn revocable(&self) -> Option<&RevocableInfo> {
        self.extra.as_deref()?.revocable.as_ref()
    }

    fn shared(&self) -> Option<&SharedInfo> {
        self.extra.as_deref()?.shared.as_ref()
    }

    fn provider_id(&self) -> Option<&ResourceProviderId> {
        self.extra.as_deref()?.provider_id.as_ref()
    }

    fn disk(&self) -> Option<&OpaqueJson> {
        self.extra.as_deref()?.disk.as_ref()
    }

    /// Changes the extra fields with `edit`, keeping `extra` `None` when none is set.
    fn edit_extra(&mut self, edit: impl FnOnce(&mut IdentityExtra)) {
        let mut extra = self.extra.take().map(|boxed| *boxed).unwrap_or_default();
        edit(&mut extra);
        self.extra = extra.boxed();
    }

    /// Drops every reservation.
    fn clear_reservations(&mut self) {
        if !self.reservations().is_empty() {
            self.edit_extra(|extra| extra.reservations.clear());
        }
    }

    /// Pops the innermost reservation; returns `None` if there is none.
    fn pop_reservation(&mut self) -> Option<ReservationInfo> {
        if self.reservations().is_empty() {
            return None;
        }
        let mut popped = None;
        self.edit_extra(|extra| popped = extra.reservations.pop());
        popped
    }

    fn reservation_role(&self) -> &str {
        self.reservations()
            .last()
            .map_or(ANY_ROLE, ReservationInfo::role_or_any)
    }

    fn allocation_role(&self) -> Option<&str> {
        self.allocation_info.as_ref()?.role.as_deref()
    }

    /// Builds the canonical wire resource for this identity and `quantity`.
    fn to_resource(&self, quantity: &Quantity) -> Resource {
        let mut resource = Resource {
            name: self.name.to_string(),
            value_type: self.value_type,
            reservations: self.reservations().to_vec(),
            allocation_info: self.allocation_info.clone(),
            revocable: self.revocable().cloned(),
            shared: self.shared().cloned(),
            provider_id: self.provider_id().cloned(),
            disk: self.disk().map(|disk| disk.value.clone()),
            ..Resource::default()
        };
        match quantity {
            Quantity::Scalar(milli) => {
                resource.scalar = Some(Scalar {
                    value: milli.as_f64(),
                });
            }
            Quantity::Ranges(range) => {
                resource.ranges = Some(Ranges {
                    range: range.clone(),
                });
            }
            Quantity::Set(items) => {
                resource.set = Some(Set {
                    item: items.iter().cloned().collect(),
                });
            }
        }
        resource
    }
}

/// Returns the reservation stack of a valid resource, upgrading the deprecated `role` (a static
/// reservation) or `role` plus `reservation` (a dynamic one) as Mesos does.
fn reservation_stack(resource: &Resource) -> Vec<ReservationInfo> {
    if !resource.reservations.is_empty() {
        return resource
            .reservations
            .iter()
            .map(ReservationInfo::normalized)
            .collect();
    }
    let role = match resource.role.as_deref() {
        None | Some(ANY_ROLE) => return Vec::new(),
        Some(role) => role,
    };
    let reservation = match &resource.reservation {
        Some(deprecated) => ReservationInfo {
            reservation_type: Some(ReservationType::Dynamic),
            role: Some(role.to_owned()),
            ..deprecated.normalized()
        },
        None => ReservationInfo::new_static(role),
    };
    vec![reservation]
}

/// Returns the value of a valid resource; validation guarantees the matching field is set.
fn quantity_of(resource: &Resource) -> Quantity {
    match resource.value_type {
        ValueType::Ranges => {
            let ranges = resource.ranges.as_ref().map(|r| r.range.clone());
            Quantity::Ranges(quantity::coalesce(ranges.unwrap_or_default()))
        }
        ValueType::Set => {
            let items = resource.set.as_ref().map(|set| set.item.iter().cloned());
            Quantity::Set(items.into_iter().flatten().collect())
        }
        ValueType::Scalar | ValueType::Text => {
            let value = resource.scalar.map_or(0.0, |scalar| scalar.value);
            Quantity::Scalar(Milli::from_f64(value).unwrap_or(Milli::ZERO))
        }
    }
}

/// Converts a canonical resource to Mesos's endpoint format, which also fills the deprecated
/// `role` (and `reservation` for a single dynamic reservation) for clients that predate
/// reservation refinement.
fn to_endpoint_format(mut resource: Resource) -> Resource {
    match resource.reservations.as_slice() {
        [] => resource.role = Some(ANY_ROLE.to_owned()),
        [only] => {
            resource.role = only.role.clone();
            if only.reservation_type == Some(ReservationType::Dynamic) {
                resource.reservation = Some(ReservationInfo {
                    reservation_type: None,
                    role: None,
                    ..only.clone()
                });
            }
        }
        _ => {}
    }
    resource
}

/// A collection of resources with Mesos's arithmetic; see the module documentation.
///
/// It serialises as the Mesos JSON array of `Resource` (in the endpoint format) and accepts
/// any valid array, in either reservation format.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<Resource>", try_from = "Vec<Resource>")]
pub struct Resources {
    /// The entries sorted by identity, each identity once, no quantity empty. Kept at (or
    /// near) its exact capacity, and holding no allocation when empty: the master keeps one
    /// `Resources` per task and several per agent.
    entries: Vec<(Identity, Quantity)>,
}

impl Resources {
    /// Returns an empty collection.
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Validates and adds up `resources`, failing on the first invalid one.
    pub fn from_resources(
        resources: impl IntoIterator<Item = Resource>,
    ) -> Result<Resources, ResourcesError> {
        let resources = resources.into_iter();
        let mut result = Resources::with_capacity(resources.size_hint().0);
        for resource in resources {
            result.add_resource(&resource)?;
        }
        result.compact();
        Ok(result)
    }

    /// Parses resources as given to an agent's `--resources`.
    ///
    /// The text form is `;`-separated `name:value` or `name(role):value` tokens, where a value
    /// is a scalar (`4`, `0.5`), ranges (`[31000-32000,33000-33100]`) or a set (`{a,b}`):
    /// `cpus:4;mem:8192;ports:[31000-32000];cpus(ops):2`. A token without a role is reserved
    /// (statically) to `default_role`, or unreserved when that is `*`. Text starting with `[`
    /// is read as a JSON array of `Resource`, where `default_role` fills in resources that name
    /// no role. A name may not appear with two types.
    pub fn parse(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
        text::parse(text, default_role)
    }

    /// Validates `resource` and adds it.
    pub fn add_resource(&mut self, resource: &Resource) -> Result<(), ResourcesError> {
        resource.validate()?;
        self.add_entry(Identity::of(resource), quantity_of(resource));
        Ok(())
    }

    /// Returns true if there are no resources.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the number of distinct resources (identities), not a quantity.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Iterates over the resources in canonical form: merged, in a stable order, with
    /// reservations only in the `reservations` stack (the deprecated `role` is unset).
    pub fn iter(&self) -> impl Iterator<Item = Resource> + '_ {
        self.entries
            .iter()
            .map(|(identity, quantity)| identity.to_resource(quantity))
    }

    /// Returns the resources in Mesos's endpoint format, as they are serialised: like
    /// [`Resources::iter`], plus the deprecated `role` (`*` when unreserved) and `reservation`.
    pub fn to_wire(&self) -> Vec<Resource> {
        self.iter().map(to_endpoint_format).collect()
    }

    /// Returns true if every resource in `other` is here too, with at least its amount, under
    /// the same identity.
    pub fn contains(&self, other: &Resources) -> bool {
        other.entries.iter().all(|(identity, quantity)| {
            self.get(identity)
                .is_some_and(|mine| mine.contains(quantity))
        })
    }

    /// Returns true if `resource` is valid and contained here.
    pub fn contains_resource(&self, resource: &Resource) -> bool {
        resource.validate().is_ok()
            && self
                .get(&Identity::of(resource))
                .is_some_and(|mine| mine.contains(&quantity_of(resource)))
    }

    /// Returns the resources for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&Resource) -> bool) -> Resources {
        self.filter_entries(|identity, quantity| predicate(&identity.to_resource(quantity)))
    }

    /// Returns the unreserved resources.
    pub fn unreserved(&self) -> Resources {
        self.filter_entries(|identity, _| identity.reservations().is_empty())
    }

    /// Returns the resources reserved to exactly `role` (not to its ancestors).
    pub fn reserved(&self, role: &str) -> Resources {
        self.filter_entries(|identity, _| {
            !identity.reservations().is_empty() && identity.reservation_role() == role
        })
    }

    /// Returns the resources reserved to any role.
    pub fn reserved_to_any(&self) -> Resources {
        self.filter_entries(|identity, _| !identity.reservations().is_empty())
    }

    /// Returns what a framework in `role` may be offered: the unreserved resources and those
    /// reserved to `role` or to one of its ancestors (`a` and `a/b` for `a/b/c`).
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter_entries(|identity, _| {
            let reserved_role = identity.reservation_role();
            reserved_role == ANY_ROLE
                || reserved_role == role
                || is_strict_subrole_of(role, reserved_role)
        })
    }

    /// Returns the resources reserved to `role` or to any role below it (`a`, `a/b`, ... for
    /// `a`), as quota and the sorters count a role's subtree.
    pub fn reserved_to_role_subtree(&self, role: &str) -> Resources {
        self.filter_entries(|identity, _| {
            let reserved_role = identity.reservation_role();
            !identity.reservations().is_empty()
                && (reserved_role == role || is_strict_subrole_of(reserved_role, role))
        })
    }

    /// Returns the resources allocated to `role` or to any role below it.
    pub fn allocated_to_role_subtree(&self, role: &str) -> Resources {
        self.filter_entries(|identity, _| {
            identity
                .allocation_role()
                .is_some_and(|allocated| allocated == role || is_strict_subrole_of(allocated, role))
        })
    }

    /// Returns the reserved resources grouped by the role they are reserved to.
    pub fn reservations(&self) -> BTreeMap<String, Resources> {
        self.group_by(|identity| {
            let role = identity.reservation_role();
            (!identity.reservations().is_empty()).then(|| role.to_owned())
        })
    }

    /// Returns the allocated resources grouped by the role they are allocated to.
    pub fn allocations(&self) -> BTreeMap<String, Resources> {
        self.group_by(|identity| identity.allocation_role().map(str::to_owned))
    }

    /// Returns the revocable resources.
    pub fn revocable(&self) -> Resources {
        self.filter_entries(|identity, _| identity.revocable().is_some())
    }

    /// Returns the resources that cannot be revoked.
    pub fn non_revocable(&self) -> Resources {
        self.filter_entries(|identity, _| identity.revocable().is_none())
    }

    /// Checks what only the operator may set at agent start, as Mesos does for `--resources`:
    /// no dynamic reservations, allocations, revocable resources or persistent volumes, which
    /// only operations and the master create.
    pub fn validate_agent_resources(&self) -> Result<(), ResourcesError> {
        for (identity, _) in &self.entries {
            let invalid = |reason: &'static str| ResourcesError::InvalidMetadata {
                name: identity.name.to_string(),
                reason,
            };
            let dynamic = Some(ReservationType::Dynamic);
            if identity
                .reservations()
                .iter()
                .any(|r| r.reservation_type == dynamic)
            {
                return Err(invalid("agents cannot start with dynamic reservations"));
            }
            if identity.allocation_info.is_some() {
                return Err(invalid("agents cannot start with allocated resources"));
            }
            if identity.revocable().is_some() {
                return Err(invalid("agents cannot start with revocable resources"));
            }
            let is_volume = identity
                .disk()
                .is_some_and(|disk| disk.value.get("persistence").is_some());
            if is_volume {
                return Err(invalid("agents cannot start with persistent volumes"));
            }
        }
        Ok(())
    }

    /// Returns the scalar resources.
    pub fn scalars(&self) -> Resources {
        self.filter_entries(|identity, _| identity.value_type == ValueType::Scalar)
    }

    /// Returns the resources with every reservation dropped, so that the same resource reserved
    /// to different roles merges into one unreserved amount.
    pub fn flatten(&self) -> Resources {
        self.map_identities(Identity::clear_reservations)
    }

    /// Returns the resources with `reservation` pushed onto each reservation stack, as a
    /// RESERVE operation does. Fails if that makes any resource invalid, for example if the
    /// new role does not refine the current reservation.
    pub fn push_reservation(
        &self,
        reservation: &ReservationInfo,
    ) -> Result<Resources, ResourcesError> {
        let reserved = self
            .iter()
            .map(|resource| resource.with_reservation(reservation.clone()));
        Resources::from_resources(reserved)
    }

    /// Returns the resources with the innermost reservation popped, as an UNRESERVE operation
    /// does. Fails if any resource is unreserved.
    pub fn pop_reservation(&self) -> Result<Resources, ResourcesError> {
        let mut result = Resources::with_capacity(self.len());
        for (identity, quantity) in &self.entries {
            let mut identity = identity.clone();
            if identity.pop_reservation().is_none() {
                return Err(ResourcesError::NotReserved {
                    name: identity.name.into(),
                });
            }
            result.add_entry(identity, quantity.clone());
        }
        result.compact();
        Ok(result)
    }

    /// Marks every resource as allocated to `role`, replacing any earlier allocation.
    pub fn allocate(&mut self, role: &str) {
        let allocation = AllocationInfo {
            role: Some(role.to_owned()),
        };
        *self = self.map_identities(|identity| identity.allocation_info = Some(allocation.clone()));
    }

    /// Clears the allocation of every resource.
    pub fn unallocate(&mut self) {
        *self = self.map_identities(|identity| identity.allocation_info = None);
    }

    /// Returns the total of the scalar resource `name` across all identities.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalar_milli(name).map(Milli::as_f64)
    }

    /// Returns the exact total of the scalar resource `name` across all identities.
    pub fn scalar_milli(&self, name: &str) -> Option<Milli> {
        self.entries
            .iter()
            .filter(|(identity, _)| &*identity.name == name)
            .filter_map(|(_, quantity)| match quantity {
                Quantity::Scalar(milli) => Some(*milli),
                _ => None,
            })
            .reduce(Milli::saturating_add)
    }

    /// Returns the total number of CPUs.
    pub fn cpus(&self) -> Option<f64> {
        self.scalar("cpus")
    }

    /// Returns the total memory, in MiB.
    pub fn mem(&self) -> Option<f64> {
        self.scalar("mem")
    }

    /// Returns the total disk, in MiB.
    pub fn disk(&self) -> Option<f64> {
        self.scalar("disk")
    }

    /// Returns the total number of GPUs.
    pub fn gpus(&self) -> Option<f64> {
        self.scalar("gpus")
    }

    /// Returns the union of the ranges resource `name` across all identities.
    pub fn ranges(&self, name: &str) -> Option<Ranges> {
        let all: Vec<Range> = self
            .entries
            .iter()
            .filter(|(identity, _)| &*identity.name == name)
            .filter_map(|(_, quantity)| match quantity {
                Quantity::Ranges(ranges) => Some(ranges.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        (!all.is_empty()).then(|| Ranges {
            range: quantity::coalesce(all),
        })
    }

    /// Returns the union of all `ports`.
    pub fn ports(&self) -> Option<Ranges> {
        self.ranges("ports")
    }

    /// Returns the union of the set resource `name` across all identities.
    pub fn set(&self, name: &str) -> Option<Set> {
        let all: BTreeSet<&String> = self
            .entries
            .iter()
            .filter(|(identity, _)| &*identity.name == name)
            .filter_map(|(_, quantity)| match quantity {
                Quantity::Set(items) => Some(items.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        (!all.is_empty()).then(|| Set {
            item: all.into_iter().cloned().collect(),
        })
    }

    /// Returns the names of all resources.
    pub fn names(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|(identity, _)| identity.name.to_string())
            .collect()
    }

    /// Returns the scalar totals by name with all metadata stripped, as the allocator, quota
    /// and metrics count them.
    pub fn scalar_quantities(&self) -> Resources {
        let mut result = Resources::with_capacity(self.len());
        for (identity, quantity) in &self.entries {
            if identity.value_type == ValueType::Scalar {
                result.add_entry(
                    Identity::bare(&identity.name, ValueType::Scalar),
                    quantity.clone(),
                );
            }
        }
        result.compact();
        result
    }

    /// Returns the largest fraction of `total` these resources make up over any scalar, the
    /// dominant share of DRF. Scalars absent from or zero in `total` are ignored.
    pub fn dominant_share(&self, total: &Resources) -> f64 {
        let totals = total.scalar_quantities();
        totals
            .entries
            .iter()
            .filter_map(|(identity, quantity)| match quantity {
                Quantity::Scalar(total) if *total > Milli::ZERO => {
                    let used = self.scalar_milli(&identity.name).unwrap_or(Milli::ZERO);
                    Some(used.as_milli() as f64 / total.as_milli() as f64)
                }
                _ => None,
            })
            .fold(0.0, f64::max)
    }

    /// Returns an empty collection with room for `capacity` entries.
    fn with_capacity(capacity: usize) -> Resources {
        Resources {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Gives back the spare capacity, and the allocation itself when empty.
    fn compact(&mut self) {
        if self.entries.is_empty() {
            self.entries = Vec::new();
        } else {
            self.entries.shrink_to_fit();
        }
    }

    /// Returns the index of `identity`, or where it would be inserted.
    fn position(&self, identity: &Identity) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(existing, _)| existing.cmp(identity))
    }

    /// Returns the quantity held under `identity`.
    fn get(&self, identity: &Identity) -> Option<&Quantity> {
        let idx = self.position(identity).ok()?;
        Some(&self.entries[idx].1)
    }

    /// Adds one canonical entry, merging it with an entry of the same identity.
    fn add_entry(&mut self, identity: Identity, quantity: Quantity) {
        if quantity.is_empty() {
            return;
        }
        match self.position(&identity) {
            Ok(idx) => self.entries[idx].1.add(&quantity),
            Err(idx) => {
                // Grow one entry at a time: collections are small and mostly never change.
                if self.entries.len() == self.entries.capacity() {
                    self.entries.reserve_exact(1);
                }
                self.entries.insert(idx, (identity, quantity));
            }
        }
    }

    /// Subtracts one canonical entry, dropping the entry if nothing (or less) is left.
    fn subtract_entry(&mut self, identity: &Identity, quantity: &Quantity) {
        let Ok(idx) = self.position(identity) else {
            return;
        };
        let existing = &mut self.entries[idx].1;
        existing.subtract(quantity);
        if existing.is_empty() {
            self.entries.remove(idx);
            self.compact();
        }
    }

    /// Adds every entry of `other`, allocating at most once, and only when `other` brings
    /// identities that are not here yet.
    fn merge(&mut self, other: &Resources) {
        if other.entries.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            self.entries = other.entries.clone();
            return;
        }
        let missing = other
            .entries
            .iter()
            .filter(|(identity, _)| self.position(identity).is_err())
            .count();
        if missing == 0 {
            for (identity, quantity) in &other.entries {
                if let Ok(idx) = self.position(identity) {
                    self.entries[idx].1.add(quantity);
                }
            }
            return;
        }
        let mut merged = Vec::with_capacity(self.entries.len() + missing);
        let mut mine = std::mem::take(&mut self.entries).into_iter();
        let mut theirs = other.entries.iter();
        let mut next_mine = mine.next();
        let mut next_theirs = theirs.next();
        loop {
            match (next_mine.take(), next_theirs) {
                (Some(entry), Some((identity, quantity))) => match entry.0.cmp(identity) {
                    std::cmp::Ordering::Less => {
                        merged.push(entry);
                        next_mine = mine.next();
                    }
                    std::cmp::Ordering::Greater => {
                        merged.push((identity.clone(), quantity.clone()));
                        next_mine = Some(entry);
                        next_theirs = theirs.next();
                    }
                    std::cmp::Ordering::Equal => {
                        let (identity, mut sum) = entry;
                        sum.add(quantity);
                        merged.push((identity, sum));
                        next_mine = mine.next();
                        next_theirs = theirs.next();
                    }
                },
                (Some(entry), None) => {
                    merged.push(entry);
                    merged.extend(mine);
                    break;
                }
                (None, Some(entry)) => {
                    merged.push(entry.clone());
                    merged.extend(theirs.cloned());
                    break;
                }
                (None, None) => break,
            }
        }
        self.entries = merged;
    }

    /// Subtracts every entry of `other`, dropping whatever becomes empty.
    fn subtract_all(&mut self, other: &Resources) {
        let mut emptied = false;
        for (identity, quantity) in &other.entries {
            if let Ok(idx) = self.position(identity) {
                let existing = &mut self.entries[idx].1;
                existing.subtract(quantity);
                emptied |= existing.is_empty();
            }
        }
        if emptied {
            self.entries.retain(|(_, quantity)| !quantity.is_empty());
            self.compact();
        }
    }

    fn filter_entries(&self, predicate: impl Fn(&Identity, &Quantity) -> bool) -> Resources {
        let entries = self
            .entries
            .iter()
            .filter(|(identity, quantity)| predicate(identity, quantity))
            .cloned()
            .collect();
        let mut result = Resources { entries };
        result.compact();
        result
    }

    /// Rewrites every identity, merging entries that become equal.
    fn map_identities(&self, rewrite: impl Fn(&mut Identity)) -> Resources {
        let mut result = Resources::with_capacity(self.len());
        for (identity, quantity) in &self.entries {
            let mut identity = identity.clone();
            rewrite(&mut identity);
            result.add_entry(identity, quantity.clone());
        }
        result.compact();
        result
    }

    fn group_by(&self, key: impl Fn(&Identity) -> Option<String>) -> BTreeMap<String, Resources> {
        let mut groups: BTreeMap<String, Resources> = BTreeMap::new();
        for (identity, quantity) in &self.entries {
            if let Some(group) = key(identity) {
                let resources = groups.entry(group).or_default();
                resources.add_entry(identity.clone(), quantity.clone());
            }
        }
        groups
    }
}

impl TryFrom<Vec<Resource>> for Resources {
    type Error = ResourcesError;

    fn try_from(resources: Vec<Resource>) -> Result<Resources, ResourcesError> {
        Resources::from_resources(resources)
    }
}

impl TryFrom<Resource> for Resources {
    type Error = ResourcesError;

    fn try_from(resource: Resource) -> Result<Resources, ResourcesError> {
        Resources::from_resources([resource])
    }
}

impl From<Resources> for Vec<Resource> {
    fn from(resources: Resources) -> Vec<Resource> {
        resources.to_wire()
    }
}

impl fmt::Display for Resources {
    /// Prints the text syntax of [`Resources::parse`] (`cpus:4;ports:[1-2]`), or the JSON array
    /// when some resource carries what the text syntax cannot say, so that
    /// `Resources::parse(&r.to_string(), "*")` always gives back `r`. An empty collection
    /// prints as the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match text::format(self) {
            Some(text) => f.write_str(&text),
            None => {
                let json = serde_json::to_string(&self.to_wire()).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resources").field(&self.to_string()).finish()
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        self.merge(other);
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        self.subtract_all(other);
    }
}

impl AddAssign<&Resource> for Resources {
    /// Adds `resource`, or ignores it if it is invalid, as Mesos does; use
    /// [`Resources::add_resource`] to see the error.
    fn add_assign(&mut self, resource: &Resource) {
        // NOTE: Ignoring the error is the documented contract of this operator.
        let _ = self.add_resource(resource);
    }
}

impl SubAssign<&Resource> for Resources {
    /// Subtracts `resource`, or ignores it if it is invalid, as Mesos does.
    fn sub_assign(&mut self, resource: &Resource) {
        if resource.validate().is_ok() {
            self.subtract_entry(&Identity::of(resource), &quantity_of(resource));
        }
    }
}

/// Forwards the by-value and by-reference forms of an operator to its `OpAssign<&Rhs>` impl.
macro_rules! forward_ops {
    ($rhs:ty) => {
        impl AddAssign<$rhs> for Resources {
            fn add_assign(&mut self, other: $rhs) {
                *self += &other;
            }
        }

        impl SubAssign<$rhs> for Resources {
            fn sub_assign(&mut self, other: $rhs) {
                *self -= &other;
            }
        }

        impl Add<$rhs> for Resources {
            type Output = Resources;

            fn add(mut self, other: $rhs) -> Resources {
                self += &other;
                self
            }
        }

        impl Add<&$rhs> for Resources {
            type Output = Resources;

            fn add(mut self, other: &$rhs) -> Resources {
                self += other;
                self
            }
        }

        impl Add<&$rhs> for &Resources {
            type Output = Resources;

            fn add(self, other: &$rhs) -> Resources {
                self.clone() + other
            }
        }

        impl Sub<$rhs> for Resources {
            type Output = Resources;

            fn sub(mut self, other: $rhs) -> Resources {
                self -= &other;
                self
            }
        }

        impl Sub<&$rhs> for Resources {
            type Output = Resources;

            fn sub(mut self, other: &$rhs) -> Resources {
                self -= other;
                self
            }
        }

        impl Sub<&$rhs> for &Resources {
            type Output = Resources;

            fn sub(self, other: &$rhs) -> Resources {
                self.clone() - other
            }
        }
    };
}

forward_ops!(Resources);
forward_ops!(Resource);

#[cfg(test)]
mod tests;
