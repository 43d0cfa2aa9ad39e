//! Quota limits: validation, the headroom a role has left, and shrinking an offer to fit it.
//!
//! As in Mesos, a role's quota consumption is what is reserved to its subtree plus the
//! unreserved resources offered to or used by its subtree. Only unreserved scalars are shrunk
//! to fit the headroom; reserved resources and non-scalars (ports) are offered whole, since a
//! role's reservations already count toward its consumption.

use std::collections::{BTreeMap, BTreeSet};

use strata_protocol::Resources;
use strata_protocol::resources::{ANY_ROLE, Milli, ValueType, validate_role};

use super::quantities::{Quantities, ScalarNames, scalar};
use super::sorter::RoleTree;
use super::{Allocator, AllocatorError, FrameworkKey, OfferRescind};

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

impl Allocator {
    /// Sets quota limits (UPDATE_QUOTA) for each role named, all or nothing: each limit is a
    /// finite amount of at least zero, and empty limits remove the role's quota.
    ///
    /// Returns the outstanding offers to rescind so that each role is back within its new
    /// limits: those are the offers a lowered limit no longer covers.
    pub fn update_quota(
        &mut self,
        limits: BTreeMap<String, QuotaLimits>,
    ) -> Result<Vec<OfferRescind>, AllocatorError> {
        for (role, role_limits) in &limits {
            validate(role, role_limits)?;
        }
        for (role, role_limits) in &limits {
            let role_idx = self.roles.ensure(role);
            if role_limits.is_empty() {
                self.quotas.remove(role);
                self.roles.set_limits(role_idx, None);
                continue;
            }
            self.quotas.insert(role.clone(), role_limits.clone());
            let by_name = role_limits
                .iter()
                .map(|(name, &limit)| {
                    let milli = Milli::from_f64(limit).map_or(0, Milli::as_milli);
                    (self.names.intern(name), milli)
                })
                .collect();
            self.roles.set_limits(role_idx, Some(by_name));
        }
        Ok(self.offers_over_quota(limits.keys()))
    }

    /// Returns the outstanding offers in the subtrees of `roles` to rescind, greedily in agent
    /// order, until each role's consumption is within its limits again.
    fn offers_over_quota<'a>(&self, roles: impl Iterator<Item = &'a String>) -> Vec<OfferRescind> {
        let mut rescinds: Vec<OfferRescind> = Vec::new();
        let mut chosen: BTreeSet<(usize, FrameworkKey, usize)> = BTreeSet::new();
        for role in roles {
            let Some(role_idx) = self.roles.get(role) else {
                continue;
            };
            let node = self.roles.node(role_idx);
            let Some(limits) = node.limits.clone() else {
                continue;
            };
            let mut excess = node.consumed();
            for (agent_idx, framework_id, held_role) in &chosen {
                if self.is_in_subtree(*held_role, role_idx) {
                    let held = self.offered_unreserved(*agent_idx, framework_id, *held_role);
                    excess.sub(&held);
                }
            }
            let over =
                |excess: &Quantities| limits.iter().any(|&(idx, limit)| excess.get(idx) > limit);
            for (agent_idx, agent) in self.agents.iter().enumerate() {
                let Some(agent) = agent else { continue };
                for ((framework_id, held_role), holding) in agent.holdings.iter() {
                    if !over(&excess) {
                        break;
                    }
                    let key = (agent_idx, framework_id.clone(), *held_role);
                    if holding.nothing_offered()
                        || !self.is_in_subtree(*held_role, role_idx)
                        || chosen.contains(&key)
                    {
                        continue;
                    }
                    excess.sub(&self.offered_unreserved(agent_idx, framework_id, *held_role));
                    chosen.insert(key);
                    rescinds.push(OfferRescind {
                        framework_id: (**framework_id).clone(),
                        agent_id: agent.id.clone(),
                        role: self.roles.node(*held_role).name.to_string(),
                        resources: holding.offered(),
                    });
                }
            }
        }
        rescinds
    }

    fn is_in_subtree(&self, role_idx: usize, ancestor_idx: usize) -> bool {
        role_idx == ancestor_idx
            || self
                .roles
                .ancestors(role_idx)
                .any(|idx| idx == ancestor_idx)
    }

    /// Returns the unreserved scalars offered to `framework_id` in `role_idx` on the agent.
    fn offered_unreserved(
        &self,
        agent_idx: usize,
        framework_id: &FrameworkKey,
        role_idx: usize,
    ) -> Quantities {
        self.agents[agent_idx]
            .as_ref()
            .and_then(|agent| agent.holdings.get(&(framework_id.clone(), role_idx)))
            .map(|holding| self.names.quantities(&holding.offered().unreserved()))
            .unwrap_or_default()
    }
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
