//! The text syntax of `--resources` (`cpus:4;mem:8192;ports:[31000-32000];cpus(ops):2`) and
//! its JSON alternative, in both directions.

use std::collections::BTreeMap;

use super::quantity::{Quantity, coalesce};
use super::roles::{ANY_ROLE, validate_role};
use super::validate::validate_scalar;
use super::{
    Identity, Range, ReservationInfo, ReservationType, Resource, Resources, ResourcesError,
    ValueType,
};

/// Parses resources given as text or as a JSON array; see [`Resources::parse`].
pub(super) fn parse(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    validate_role(default_role)?;
    let resources = if text.trim_start().starts_with('[') {
        parse_json(text, default_role)?
    } else {
        parse_text(text, default_role)?
    };
    check_one_type_per_name(&resources)?;
    Resources::from_resources(resources)
}

/// Parses a JSON array of `Resource`, giving `default_role` to those that name no role.
fn parse_json(text: &str, default_role: &str) -> Result<Vec<Resource>, ResourcesError> {
    let mut resources: Vec<Resource> =
        serde_json::from_str(text).map_err(|err| ResourcesError::Json(err.to_string()))?;
    for resource in &mut resources {
        if resource.role.is_none() && resource.reservations.is_empty() {
            resource.role = Some(default_role.to_owned());
        }
    }
    Ok(resources)
}

/// Parses `;`-separated `name(role):value` tokens; empty tokens are skipped, as in Mesos.
fn parse_text(text: &str, default_role: &str) -> Result<Vec<Resource>, ResourcesError> {
    text.split(';')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(|token| parse_token(token, default_role))
        .collect()
}

/// Parses one `name(role):value` token.
fn parse_token(token: &str, default_role: &str) -> Result<Resource, ResourcesError> {
    let syntax = |reason: &'static str| ResourcesError::Syntax {
        token: token.to_owned(),
        reason,
    };
    let (key, value) = token
        .split_once(':')
        .ok_or_else(|| syntax("expected 'name:value'"))?;
    if value.contains(':') {
        return Err(syntax("expected exactly one ':'"));
    }
    let (name, role) = parse_key(key.trim(), default_role)
        .ok_or_else(|| syntax("expected 'name' or 'name(role)' before ':'"))?;
    let mut resource = parse_value(name, value.trim())?;
    if role != ANY_ROLE {
        resource
            .reservations
            .push(ReservationInfo::new_static(role));
    }
    Ok(resource)
}

/// Splits `name(role)` into its parts, or pairs a bare `name` with the default role.
fn parse_key<'a>(key: &'a str, default_role: &'a str) -> Option<(&'a str, &'a str)> {
    let Some((name, rest)) = key.split_once('(') else {
        return Some((key, default_role));
    };
    let role = rest.strip_suffix(')')?;
    Some((name.trim(), role.trim()))
}

/// Parses a value: `[b-e,...]` is ranges, `{a,b}` is a set and anything else a scalar.
fn parse_value(name: &str, value: &str) -> Result<Resource, ResourcesError> {
    if value.starts_with('[') {
        Ok(Resource {
            ranges: Some(super::Ranges {
                range: parse_ranges(value)?,
            }),
            ..Resource::blank(name, ValueType::Ranges)
        })
    } else if let Some(inner) = value.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or(ResourcesError::InvalidSet {
            set: value.to_owned(),
            reason: "expected '{item,...}'",
        })?;
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty());
        Ok(Resource::new_set(name, items))
    } else {
        let scalar = value
            .parse::<f64>()
            .map_err(|_| ResourcesError::InvalidScalar {
                value: value.to_owned(),
                reason: "expected a number",
            })?;
        validate_scalar(scalar)?;
        Ok(Resource::new_scalar(name, scalar))
    }
}

/// Parses `[b-e,...]`, merging overlapping ranges as Mesos does.
fn parse_ranges(text: &str) -> Result<Vec<Range>, ResourcesError> {
    let invalid = |reason: &'static str| ResourcesError::InvalidRanges {
        ranges: text.to_owned(),
        reason,
    };
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| invalid("expected '[begin-end,...]'"))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for span in inner.split(',') {
        let (begin, end) = span
            .split_once('-')
            .ok_or_else(|| invalid("expected 'begin-end'"))?;
        let bound = |text: &str| text.trim().parse::<u64>();
        let (Ok(begin), Ok(end)) = (bound(begin), bound(end)) else {
            return Err(invalid("bounds must be non-negative integers"));
        };
        if begin > end {
            return Err(invalid("begin exceeds end"));
        }
        ranges.push(Range { begin, end });
    }
    Ok(coalesce(ranges))
}

/// Rejects a name given with two value types (`gpus:1;gpus:{a}`), as Mesos does for agents.
fn check_one_type_per_name(resources: &[Resource]) -> Result<(), ResourcesError> {
    let mut types = BTreeMap::new();
    for resource in resources {
        let first = *types
            .entry(resource.name.as_str())
            .or_insert(resource.value_type);
        if first != resource.value_type {
            return Err(ResourcesError::MixedTypes {
                name: resource.name.clone(),
            });
        }
    }
    Ok(())
}

/// Formats resources in the text syntax, or returns `None` if some resource carries what the
/// syntax cannot say (a dynamic or refined reservation, an allocation, a disk, or a name,
/// role or set item containing one of the syntax's delimiters).
pub(super) fn format(resources: &Resources) -> Option<String> {
    let tokens: Option<Vec<String>> = resources
        .entries
        .iter()
        .map(|(identity, quantity)| format_entry(identity, quantity))
        .collect();
    Some(tokens?.join(";"))
}

/// Formats one entry as `name:value` or `name(role):value`.
fn format_entry(identity: &Identity, quantity: &Quantity) -> Option<String> {
    let has_metadata = identity.allocation_info.is_some()
        || identity.revocable().is_some()
        || identity.shared().is_some()
        || identity.provider_id().is_some()
        || identity.disk().is_some();
    if has_metadata || !is_plain(&identity.name) {
        return None;
    }
    let value = format_quantity(quantity)?;
    match identity.reservations() {
        [] => Some(format!("{}:{value}", identity.name)),
        [only] => {
            let role = plain_static_role(only)?;
            Some(format!("{}({role}):{value}", identity.name))
        }
        _ => None,
    }
}

/// Returns the role of a static reservation that the `name(role)` form captures in full.
fn plain_static_role(reservation: &ReservationInfo) -> Option<&str> {
    let is_bare_static = reservation.reservation_type == Some(ReservationType::Static)
        && reservation.principal.is_none()
        && reservation.labels.is_none();
    reservation
        .role
        .as_deref()
        .filter(|role| is_bare_static && is_plain(role))
}

/// Formats a value as the parser expects it.
fn format_quantity(quantity: &Quantity) -> Option<String> {
    match quantity {
        Quantity::Scalar(milli) => Some(milli.to_string()),
        Quantity::Ranges(ranges) => Some(
            super::Ranges {
                range: ranges.clone(),
            }
            .to_string(),
        ),
        Quantity::Set(items) => {
            let plain = items.iter().all(|item| is_plain(item));
            plain.then(|| format!("{{{}}}", Vec::from_iter(items.iter().cloned()).join(",")))
        }
    }
}

/// Returns true if `text` survives the parser unchanged: non-empty, with no whitespace, no
/// control characters and none of the delimiters `;:(){}[],`.
fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ";:(){}[],".contains(c))
}
