//! Checks a wire `Resource` against Mesos's rules (`Resources::validate` in
//! `src/common/resources.cpp`) before it may enter a `Resources`.

use std::collections::BTreeSet;

use super::roles::{ANY_ROLE, is_strict_subrole_of, validate_role};
use super::{
    Milli, Range, Ranges, ReservationInfo, ReservationType, Resource, ResourcesError, Set,
    ValueType,
};

/// Validates every field of `resource`; see [`Resource::validate`].
pub(super) fn validate(resource: &Resource) -> Result<(), ResourcesError> {
    if resource.name.is_empty() {
        return Err(ResourcesError::EmptyName);
    }
    validate_value(resource)?;
    validate_reservations(resource)?;
    if let Some(role) = resource
        .allocation_info
        .as_ref()
        .and_then(|info| info.role.as_deref())
    {
        validate_role(role)?;
    }
    validate_metadata(resource)
}

/// Checks that exactly the value field matching `type` is set, and that it is well formed.
fn validate_value(resource: &Resource) -> Result<(), ResourcesError> {
    let value_type = resource.value_type;
    match (
        value_type,
        &resource.scalar,
        &resource.ranges,
        &resource.set,
    ) {
        (ValueType::Scalar, Some(scalar), None, None) => validate_scalar(scalar.value).map(drop),
        (ValueType::Ranges, None, Some(ranges), None) => validate_ranges(ranges),
        (ValueType::Set, None, None, Some(set)) => validate_set(set),
        (ValueType::Text, ..) => Err(ResourcesError::UnsupportedType {
            name: resource.name.clone(),
            value_type,
        }),
        _ => Err(ResourcesError::MismatchedValue {
            name: resource.name.clone(),
            value_type,
        }),
    }
}

/// Checks a scalar and returns its fixed-point form.
///
/// Like Mesos, this rejects a positive value that would round to zero, since such a resource
/// would silently vanish.
pub(super) fn validate_scalar(value: f64) -> Result<Milli, ResourcesError> {
    let invalid = |reason: &'static str| ResourcesError::InvalidScalar {
        value: value.to_string(),
        reason,
    };
    if !value.is_finite() {
        return Err(invalid("value must be finite"));
    }
    if value < 0.0 {
        return Err(invalid("value must not be negative"));
    }
    let milli = Milli::from_f64(value)
        .filter(|milli| *milli <= Milli::MAX)
        .ok_or_else(|| invalid("value exceeds the maximum of 1000000000000"))?;
    if value > 0.0 && milli == Milli::ZERO {
        return Err(invalid("value rounds to zero at three decimal places"));
    }
    Ok(milli)
}

/// Checks that no range is inverted and that no two overlap (adjacent ranges are fine).
pub(super) fn validate_ranges(ranges: &Ranges) -> Result<(), ResourcesError> {
    let invalid = |reason: &'static str| ResourcesError::InvalidRanges {
        ranges: ranges.to_string(),
        reason,
    };
    if ranges.range.iter().any(|range| range.begin > range.end) {
        return Err(invalid("begin exceeds end"));
    }
    let mut sorted: Vec<Range> = ranges.range.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|pair| pair[1].begin <= pair[0].end) {
        return Err(invalid("ranges overlap"));
    }
    Ok(())
}

/// Checks that no item of a set appears twice.
fn validate_set(set: &Set) -> Result<(), ResourcesError> {
    let mut seen = BTreeSet::new();
    if set.item.iter().all(|item| seen.insert(item)) {
        Ok(())
    } else {
        Err(ResourcesError::InvalidSet {
            set: set.to_string(),
            reason: "items must be unique",
        })
    }
}

/// Checks the reservation fields in whichever of Mesos's two formats the resource uses.
fn validate_reservations(resource: &Resource) -> Result<(), ResourcesError> {
    let invalid = |reason: String| ResourcesError::InvalidReservation {
        name: resource.name.clone(),
        reason,
    };
    if resource.reservations.is_empty() {
        validate_pre_refinement(resource).map_err(invalid)
    } else {
        validate_reservation_stack(&resource.reservations).map_err(invalid)?;
        validate_deprecated_fields(resource).map_err(invalid)
    }
}

/// Checks the old format, where `role` plus an optional `reservation` say it all.
fn validate_pre_refinement(resource: &Resource) -> Result<(), String> {
    let role = resource.role.as_deref().unwrap_or(ANY_ROLE);
    validate_role(role).map_err(|err| err.to_string())?;
    let Some(reservation) = &resource.reservation else {
        return Ok(());
    };
    if reservation.reservation_type.is_some() || reservation.role.is_some() {
        return Err("the deprecated 'reservation' field must not set 'type' or 'role'".into());
    }
    if role == ANY_ROLE {
        return Err("role '*' cannot be dynamically reserved".into());
    }
    Ok(())
}

/// Checks the reservation stack: each level names a valid role, and each refinement is a
/// dynamic reservation to a strict subrole of the level below it.
fn validate_reservation_stack(reservations: &[ReservationInfo]) -> Result<(), String> {
    for reservation in reservations {
        if reservation.reservation_type.is_none() {
            return Err("every reservation must set 'type'".into());
        }
        let role = reservation
            .role
            .as_deref()
            .ok_or("every reservation must set 'role'")?;
        validate_role(role).map_err(|err| err.to_string())?;
        if role == ANY_ROLE {
            return Err("role '*' cannot be reserved".into());
        }
    }
    for pair in reservations.windows(2) {
        let (ancestor, refined) = (pair[0].role_or_any(), pair[1].role_or_any());
        if pair[1].reservation_type != Some(ReservationType::Dynamic) {
            return Err("a refined reservation must be DYNAMIC".into());
        }
        if !is_strict_subrole_of(refined, ancestor) {
            return Err(format!(
                "role '{refined}' is not a refinement of '{ancestor}'"
            ));
        }
    }
    Ok(())
}

/// Checks the deprecated `role` and `reservation` fields when `reservations` is set too, as
/// Mesos's endpoint format does for a single reservation.
fn validate_deprecated_fields(resource: &Resource) -> Result<(), String> {
    let [only] = resource.reservations.as_slice() else {
        if resource.role.is_some() || resource.reservation.is_some() {
            return Err(
                "'role' and 'reservation' must not be set with refined reservations".into(),
            );
        }
        return Ok(());
    };
    if let Some(role) = resource
        .role
        .as_deref()
        .filter(|role| *role != only.role_or_any())
    {
        return Err(format!(
            "'role' is '{role}' but the reservation is for '{}'",
            only.role_or_any()
        ));
    }
    let Some(deprecated) = &resource.reservation else {
        return Ok(());
    };
    if only.reservation_type == Some(ReservationType::Static) {
        return Err("'reservation' must not be set for a STATIC reservation".into());
    }
    let same_labels =
        deprecated.labels.clone().unwrap_or_default() == only.labels.clone().unwrap_or_default();
    if deprecated.principal != only.principal || !same_labels {
        return Err(
            "'reservation' does not match the principal and labels in 'reservations'".into(),
        );
    }
    Ok(())
}

/// Checks the fields that only some resources may carry.
fn validate_metadata(resource: &Resource) -> Result<(), ResourcesError> {
    let invalid = |reason: &'static str| ResourcesError::InvalidMetadata {
        name: resource.name.clone(),
        reason,
    };
    if resource.disk.is_some() && resource.name != "disk" {
        return Err(invalid("only 'disk' resources may set 'disk'"));
    }
    let is_persistent_volume = resource
        .disk
        .as_ref()
        .is_some_and(|disk| disk.get("persistence").is_some());
    if resource.shared.is_some() && !is_persistent_volume {
        return Err(invalid("only persistent volumes may be shared"));
    }
    Ok(())
}
