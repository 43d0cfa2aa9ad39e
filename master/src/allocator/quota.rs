//! Quota limits: validation, the headroom a role has left, and shrinking an offer to fit it.
//!
//! As in Mesos, a role's quota consumption is what is reserved to its subtree plus the
//! unreserved resources offered to or used by its subtree. Only unreserved scalars are shrunk
//! to fit the headroom; reserved resources and non-scalars (ports) are offered whole, since a
//! role's reservations already count toward its consumption.

use std::collections::BTreeMap;

use strata_protocol::Resources;
use strata_protocol::resources::{ANY_ROLE, Milli, ValueType, validate_role};

use super::AllocatorError;
use super::quantities::{ScalarNames, scalar};
use super::sorter::RoleTree;

/// Quota limits by resource name, as Mesos's `QuotaConfig.limits` (`map<string, Scalar>`):
/// a limit of zero is meaningful, which `Resources` (where zero amounts vanish) cannot say.
pub type QuotaLimits = BTreeMap<String, f64>;

/// Checks one quota configuration: a valid role other than `*`, and limits that are finite,
/// non-negative amounts of named resources.
pub(crate) fn validate(role: &str, limits: &QuotaLimits) -> Result<(), AllocatorError> {
    let invalid = |reason: &str| AllocatorError::InvalidQuota {
        role: role.to_owned(),
        reason: reason.to_owned(),
    };
    validate_role(role).map_err(|err| invalid(&err.to_string()))?;
    if role == ANY_ROLE {
        return Err(invalid("quota cannot be set on the '*' role"));
    }
    for (name, &limit) in limits {
        if name.is_empty() {
            return Err(invalid("resource names must not be empty"));
        }
        let valid = limit >= 0.0 && Milli::from_f64(limit).is_some_and(|milli| milli <= Milli::MAX);
        if !valid {
            return Err(invalid(&format!(
                "limit {limit} of '{name}' must be a finite amount of at least zero"
            )));
        }
    }
    Ok(())
}

/// Returns the headroom of `role_idx` per limited name: the least, over the role and its
/// ancestors, of limit minus consumption, never below zero. `None` means nothing limits it.
pub(crate) fn headroom(roles: &RoleTree, role_idx: usize) -> Option<Vec<(usize, i64)>> {
    let mut headroom: Option<Vec<(usize, i64)>> = None;
    for idx in std::iter::once(role_idx).chain(roles.ancestors(role_idx)) {
        let node = roles.node(idx);
        let Some(limits) = &node.limits else {
            continue;
        };
        let consumed = node.consumed();
        let room = headroom.get_or_insert_with(Vec::new);
        for &(name_idx, limit) in limits {
            let left = (limit - consumed.get(name_idx)).max(0);
            match room.iter_mut().find(|(idx, _)| *idx == name_idx) {
                Some((_, existing)) => *existing = (*existing).min(left),
                None => room.push((name_idx, left)),
            }
        }
    }
    headroom
}

/// Returns `offer` with its unreserved scalars cut down to `headroom`.
pub(crate) fn shrink(
    offer: Resources,
    headroom: &[(usize, i64)],
    names: &ScalarNames,
) -> Resources {
    let mut room: Vec<(usize, i64)> = headroom.to_vec();
    let mut result = Resources::new();
    for resource in offer.iter() {
        let limited = resource.value_type == ValueType::Scalar
            && resource.is_unreserved()
            && !resource.is_revocable();
        let slot = names
            .get(&resource.name)
            .and_then(|name_idx| room.iter_mut().find(|(idx, _)| *idx == name_idx))
            .filter(|_| limited);
        let Some((_, left)) = slot else {
            result += &resource;
            continue;
        };
        let amount = resource
            .scalar
            .and_then(|s| Milli::from_f64(s.value))
            .map_or(0, Milli::as_milli);
        let taken = amount.min(*left);
        *left -= taken;
        if taken > 0 {
            let mut shrunk = resource.clone();
            shrunk.scalar = scalar(&resource.name, taken).scalar;
            result += &shrunk;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn limits_must_be_plain_scalars_on_a_named_role() {
        let limits = |limit: f64| QuotaLimits::from([("cpus".to_owned(), limit)]);
        assert!(validate("a", &limits(1.0)).is_ok());
        assert!(validate("a", &limits(0.0)).is_ok());
        assert!(validate("*", &limits(1.0)).is_err());
        assert!(validate("a//b", &limits(1.0)).is_err());
        assert!(validate("a", &limits(-1.0)).is_err());
        assert!(validate("a", &limits(f64::NAN)).is_err());
        assert!(validate("a", &limits(f64::INFINITY)).is_err());
        assert!(validate("a", &QuotaLimits::from([(String::new(), 1.0)])).is_err());
    }

    #[test]
    fn shrink_cuts_unreserved_scalars_and_keeps_the_rest() {
        let mut names = ScalarNames::new(BTreeSet::new());
        let offer = Resources::parse("cpus:8;mem:1024;cpus(r):2;ports:[1-10]", "*").unwrap();
        names.intern_all(&offer);
        let cpus = names.get("cpus").unwrap();
        let shrunk = shrink(offer, &[(cpus, 3000)], &names);
        let want = Resources::parse("cpus:3;mem:1024;cpus(r):2;ports:[1-10]", "*").unwrap();
        assert_eq!(shrunk, want);
    }
}
