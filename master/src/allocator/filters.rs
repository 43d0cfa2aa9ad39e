//! Offer filters: what a framework refused on an agent, for one role, until when.
//!
//! A DECLINE (or the unused part of an ACCEPT) with `refuse_seconds` installs a filter so the
//! same resources are not offered straight back. As in Mesos's `RefusedOfferFilter`, a filter
//! blocks an offer only when the offer is a subset of what was refused: if the agent has more
//! to give than it had, the framework may want it and sees it again.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_protocol::{FrameworkId, Resources};

use super::Allocator;

/// One refusal: `resources` (unallocated) are not offered again before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferFilter {
    pub(crate) resources: Resources,
    pub(crate) expires_at: Duration,
}

/// The filters of one framework, keyed by `(agent slot, role index)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfferFilters {
    by_agent_role: BTreeMap<(usize, usize), Vec<OfferFilter>>,
}

impl OfferFilters {
    /// Installs a filter on `(agent_idx, role_idx)`.
    pub(crate) fn insert(&mut self, agent_idx: usize, role_idx: usize, filter: OfferFilter) {
        self.by_agent_role
            .entry((agent_idx, role_idx))
            .or_default()
            .push(filter);
    }

    /// Returns true if an active filter on `(agent_idx, role_idx)` covers all of `offer`.
    ///
    /// Expired filters are dropped by [`OfferFilters::expire`] at the start of each run, so
    /// every filter present here is active.
    pub(crate) fn is_filtered(&self, agent_idx: usize, role_idx: usize, offer: &Resources) -> bool {
        self.by_agent_role
            .get(&(agent_idx, role_idx))
            .is_some_and(|filters| {
                filters
                    .iter()
                    .any(|filter| filter.resources.contains(offer))
            })
    }

    /// Drops the filters that expired at or before `now`; returns the next expiry, if any.
    pub(crate) fn expire(&mut self, now: Duration) -> Option<Duration> {
        self.by_agent_role.retain(|_, filters| {
            filters.retain(|filter| filter.expires_at > now);
            !filters.is_empty()
        });
        self.next_expiry()
    }

    /// Returns the earliest expiry of any filter.
    pub(crate) fn next_expiry(&self) -> Option<Duration> {
        self.by_agent_role
            .values()
            .flatten()
            .map(|filter| filter.expires_at)
            .min()
    }

    /// Drops every filter of `role_idx`, as REVIVE does.
    pub(crate) fn clear_role(&mut self, role_idx: usize) {
        self.by_agent_role.retain(|&(_, role), _| role != role_idx);
    }

    /// Drops every filter, as deactivating a framework does in Mesos.
    pub(crate) fn clear(&mut self) {
        self.by_agent_role.clear();
    }

    /// Drops the filters on a removed agent, whose slot may be reused by another agent.
    pub(crate) fn remove_agent(&mut self, agent_idx: usize) {
        self.by_agent_role
            .retain(|&(agent, _), _| agent != agent_idx);
    }

    /// Returns the number of filters installed for `role_idx`.
    pub(crate) fn count_for_role(&self, role_idx: usize) -> usize {
        self.by_agent_role
            .iter()
            .filter(|((_, role), _)| *role == role_idx)
            .map(|(_, filters)| filters.len())
            .sum()
    }

    /// Returns true if there is no filter.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_agent_role.is_empty()
    }
}

impl Allocator {
    /// Installs a refused-offer filter for `refuse` from `now`, if it is not zero.
    pub(crate) fn install_filter(
        &mut self,
        framework_id: &FrameworkId,
        agent_idx: usize,
        role_idx: usize,
        resources: Resources,
        refuse: Duration,
        now: Duration,
    ) {
        let refuse = refuse.min(self.config.refuse_max);
        if refuse.is_zero() {
            return;
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let expires_at = now.saturating_add(refuse);
        framework.filters.insert(
            agent_idx,
            role_idx,
            OfferFilter {
                resources,
                expires_at,
            },
        );
        self.next_filter_expiry = Some(
            self.next_filter_expiry
                .map_or(expires_at, |next| next.min(expires_at)),
        );
    }

    /// Drops the filters that expired by `now`, scanning only when one is due.
    pub(crate) fn expire_filters(&mut self, now: Duration) {
        if self.next_filter_expiry.is_none_or(|next| next > now) {
            return;
        }
        self.next_filter_expiry = self
            .frameworks
            .values_mut()
            .filter_map(|framework| framework.filters.expire(now))
            .min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(text: &str) -> Resources {
        Resources::parse(text, "*").unwrap()
    }

    #[test]
    fn a_filter_blocks_subsets_of_the_refused_resources_only() {
        let mut filters = OfferFilters::default();
        let filter = OfferFilter {
            resources: resources("cpus:2;mem:64"),
            expires_at: Duration::from_secs(5),
        };
        filters.insert(0, 1, filter);
        assert!(filters.is_filtered(0, 1, &resources("cpus:2;mem:64")));
        assert!(filters.is_filtered(0, 1, &resources("cpus:1")));
        assert!(!filters.is_filtered(0, 1, &resources("cpus:3;mem:64")));
        assert!(!filters.is_filtered(1, 1, &resources("cpus:1")));
        assert!(!filters.is_filtered(0, 2, &resources("cpus:1")));
    }

    #[test]
    fn expiry_drops_filters_at_their_deadline() {
        let mut filters = OfferFilters::default();
        for secs in [5, 10] {
            let filter = OfferFilter {
                resources: resources("cpus:1"),
                expires_at: Duration::from_secs(secs),
            };
            filters.insert(0, 0, filter);
        }
        assert_eq!(
            filters.expire(Duration::from_secs(4)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            filters.expire(Duration::from_secs(5)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(filters.expire(Duration::from_secs(10)), None);
        assert!(filters.is_empty());
    }
}
