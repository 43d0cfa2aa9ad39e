//! Scalar quantities as small fixed-point vectors indexed by interned resource names.
//!
//! The allocator's inner loop compares and adds quantities for every offer it makes; doing that
//! on `Resources` (ordered maps of identities with owned names) would dominate a run over tens
//! of thousands of agents. Interning the handful of scalar names once (`cpus`, `mem`, `disk`,
//! `gpus`, ...) turns shares, quota headroom and per-role totals into `Vec<i64>` arithmetic.

use std::collections::{BTreeMap, BTreeSet};

use strata_protocol::Resources;
use strata_protocol::resources::{Milli, Resource};

/// The interned scalar names, with whether each takes part in fair sharing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScalarNames {
    index: BTreeMap<String, usize>,
    names: Vec<String>,
    fair: Vec<bool>,
    excluded: BTreeSet<String>,
}

impl ScalarNames {
    /// Returns a table whose names in `excluded` never count toward dominant shares.
    pub(crate) fn new(excluded: BTreeSet<String>) -> ScalarNames {
        ScalarNames {
            excluded,
            ..ScalarNames::default()
        }
    }

    /// Interns every scalar name in `resources`, so later conversions see all of them.
    pub(crate) fn intern_all(&mut self, resources: &Resources) {
        for name in resources.scalars().names() {
            self.intern(&name);
        }
    }

    /// Returns the index of `name`, interning it if it is new.
    pub(crate) fn intern(&mut self, name: &str) -> usize {
        if let Some(&idx) = self.index.get(name) {
            return idx;
        }
        let idx = self.names.len();
        self.index.insert(name.to_owned(), idx);
        self.names.push(name.to_owned());
        self.fair.push(!self.excluded.contains(name));
        idx
    }

    /// Returns the index of `name` if it was interned.
    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Returns the scalar quantities of `resources`, all metadata stripped.
    ///
    /// Names that were never interned are ignored: every resource the allocator tracks is part
    /// of some agent's total, whose names are interned when the agent is added.
    pub(crate) fn quantities(&self, resources: &Resources) -> Quantities {
        let mut values = vec![0; self.names.len()];
        for (value, name) in values.iter_mut().zip(&self.names) {
            *value = resources.scalar_milli(name).map_or(0, Milli::as_milli);
        }
        Quantities(values)
    }

    /// Returns `quantities` as unreserved scalar `Resources`, for reports.
    pub(crate) fn to_resources(&self, quantities: &Quantities) -> Resources {
        let resources = self
            .names
            .iter()
            .enumerate()
            .filter(|(idx, _)| quantities.get(*idx) > 0)
            .map(|(idx, name)| scalar(name, quantities.get(idx)));
        Resources::from_resources(resources).unwrap_or_default()
    }

    /// Returns the largest fraction of `total` that `held` makes up over the names that take
    /// part in fair sharing: the dominant share of DRF.
    pub(crate) fn dominant_share(&self, held: &Quantities, total: &Quantities) -> f64 {
        let mut share: f64 = 0.0;
        for (idx, &fair) in self.fair.iter().enumerate() {
            let total = total.get(idx);
            if fair && total > 0 {
                share = share.max(held.get(idx) as f64 / total as f64);
            }
        }
        share
    }
}

/// Returns an unreserved scalar resource of `milli` thousandths.
pub(crate) fn scalar(name: &str, milli: i64) -> Resource {
    Resource::new_scalar(name, Milli::from_milli(milli).as_f64())
}

/// Scalar amounts in thousandths, indexed by [`ScalarNames`]; missing tail entries are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Quantities(Vec<i64>);

impl Quantities {
    /// Returns the amount at `idx`, zero when the vector is shorter.
    pub(crate) fn get(&self, idx: usize) -> i64 {
        self.0.get(idx).copied().unwrap_or(0)
    }

    /// Adds `other` element by element.
    pub(crate) fn add(&mut self, other: &Quantities) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    /// Subtracts `other` element by element; callers only subtract what they added.
    pub(crate) fn sub(&mut self, other: &Quantities) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine -= theirs;
        }
    }

    /// Returns true if every amount is zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.0.iter().all(|&value| value == 0)
    }

    /// Returns true if no amount is negative, the accounting invariant of every total.
    pub(crate) fn is_non_negative(&self) -> bool {
        self.0.iter().all(|&value| value >= 0)
    }

    /// Iterates over `(name index, amount)` for the non-zero amounts.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.0
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, value)| *value != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_share_ignores_excluded_names_and_empty_totals() {
        let mut names = ScalarNames::new(BTreeSet::from(["gpus".to_owned()]));
        let total = Resources::parse("cpus:10;mem:100;gpus:1;disk:0", "*").unwrap();
        names.intern_all(&total);
        let total = names.quantities(&total);
        let held = names.quantities(&Resources::parse("cpus:1;mem:50;gpus:1", "*").unwrap());
        assert_eq!(names.dominant_share(&held, &total), 0.5);
    }

    #[test]
    fn quantities_round_trip_through_resources() {
        let mut names = ScalarNames::new(BTreeSet::new());
        let resources = Resources::parse("cpus:1.5;mem:32;ports:[1-2]", "*").unwrap();
        names.intern_all(&resources);
        let quantities = names.quantities(&resources);
        let back = names.to_resources(&quantities);
        assert_eq!(back, Resources::parse("cpus:1.5;mem:32", "*").unwrap());
    }
}
