//! The values a resource carries, in the exact form `Resources` computes with: fixed-point
//! scalars, coalesced ranges and ordered sets.

use std::collections::BTreeSet;
use std::fmt;

use super::{Range, ValueType};

/// A scalar counted in thousandths of a unit, Mesos's fixed-point form.
///
/// Mesos rounds `value * 1000` to the nearest integer before any arithmetic, so that repeated
/// additions and subtractions of offers never drift. Holding the integer itself makes that exact:
/// `0.1 + 0.2 == 0.3` and `1.0 - 0.999 == 0.001`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Milli(i64);

impl Milli {
    /// Zero of any scalar resource.
    pub const ZERO: Milli = Milli(0);

    /// The largest scalar a resource may hold, in thousandths.
    ///
    /// Below 2^40 adjacent `f64`s are less than half a thousandth apart, so the wire form (an
    /// `f64`) always converts back to the same `Milli`. A trillion units is also far above any
    /// real count of cpus, MiB or GPUs.
    pub const MAX: Milli = Milli(1_000_000_000_000_000);

    /// Wraps a count of thousandths.
    pub const fn from_milli(milli: i64) -> Milli {
        Milli(milli)
    }

    /// Rounds a wire value to the nearest thousandth, as Mesos does.
    ///
    /// Returns `None` when the value is not finite or does not fit in an `i64` of thousandths.
    pub fn from_f64(value: f64) -> Option<Milli> {
        let rounded = (value * 1000.0).round();
        // NOTE: `i64::MAX as f64` is 2^63, which does not itself fit, hence the strict bound.
        let fits = rounded.is_finite() && rounded.abs() < i64::MAX as f64;
        fits.then_some(Milli(rounded as i64))
    }

    /// Returns the number of thousandths.
    pub const fn as_milli(self) -> i64 {
        self.0
    }

    /// Returns the nearest `f64`, which is what the wire carries.
    pub fn as_f64(self) -> f64 {
        // A correctly rounded division yields the `f64` closest to the decimal value, the same
        // one a JSON parser produces from the printed text.
        self.0 as f64 / 1000.0
    }

    /// Adds without overflowing; sums this large are far beyond `Milli::MAX` anyway.
    pub fn saturating_add(self, other: Milli) -> Milli {
        Milli(self.0.saturating_add(other.0))
    }

    /// Subtracts without overflowing; the result may be negative.
    pub fn saturating_sub(self, other: Milli) -> Milli {
        Milli(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Milli {
    /// Prints the shortest exact decimal: `4`, `0.5`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (units, thousandths) = (magnitude / 1000, magnitude % 1000);
        if thousandths == 0 {
            return write!(f, "{sign}{units}");
        }
        let fraction = format!("{thousandths:03}");
        write!(f, "{sign}{units}.{}", fraction.trim_end_matches('0'))
    }
}

/// Sorts ranges and merges the overlapping and adjacent ones (`[1-3,4-6]` is `[1-6]`).
pub(super) fn coalesce(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_unstable();
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.begin <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// Removes from coalesced `left` every integer in coalesced `right`, splitting ranges as needed.
pub(super) fn subtract_ranges(left: &[Range], right: &[Range]) -> Vec<Range> {
    let mut remaining = Vec::with_capacity(left.len());
    let mut first_cut = 0;
    for range in left {
        // Cuts ending before this range also end before every later one, as `left` is sorted.
        while right
            .get(first_cut)
            .is_some_and(|cut| cut.end < range.begin)
        {
            first_cut += 1;
        }
        carve(*range, &right[first_cut..], &mut remaining);
    }
    remaining
}

/// Pushes what is left of `range` after removing the sorted, disjoint `cuts`.
fn carve(range: Range, cuts: &[Range], remaining: &mut Vec<Range>) {
    let mut begin = range.begin;
    for cut in cuts.iter().take_while(|cut| cut.begin <= range.end) {
        if cut.begin > begin {
            remaining.push(Range {
                begin,
                end: cut.begin - 1,
            });
        }
        if cut.end >= range.end {
            return;
        }
        begin = cut.end + 1;
    }
    remaining.push(Range {
        begin,
        end: range.end,
    });
}

/// The value of one resource entry, in canonical form.
///
/// Invariants: ranges are coalesced; a scalar may be zero or negative only transiently, inside
/// an arithmetic step, before `Resources` drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Quantity {
    Scalar(Milli),
    Ranges(Vec<Range>),
    Set(BTreeSet<String>),
}

impl Quantity {
    /// Returns the value type this quantity belongs to.
    pub(super) fn value_type(&self) -> ValueType {
        match self {
            Quantity::Scalar(_) => ValueType::Scalar,
            Quantity::Ranges(_) => ValueType::Ranges,
            Quantity::Set(_) => ValueType::Set,
        }
    }

    /// Returns true if nothing is left, which for a scalar includes a negative amount.
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Quantity::Scalar(milli) => *milli <= Milli::ZERO,
            Quantity::Ranges(ranges) => ranges.is_empty(),
            Quantity::Set(items) => items.is_empty(),
        }
    }

    /// Adds `other`: a sum for scalars, a union for ranges and sets.
    pub(super) fn add(&mut self, other: &Quantity) {
        match (self, other) {
            (Quantity::Scalar(left), Quantity::Scalar(right)) => {
                *left = left.saturating_add(*right);
            }
            (Quantity::Ranges(left), Quantity::Ranges(right)) => {
                let mut all = std::mem::take(left);
                all.extend_from_slice(right);
                *left = coalesce(all);
            }
            (Quantity::Set(left), Quantity::Set(right)) => {
                left.extend(right.iter().cloned());
            }
            (left, right) => mismatch(left, right),
        }
    }

    /// Subtracts `other`: a difference for scalars (possibly negative), a set difference for
    /// ranges and sets.
    pub(super) fn subtract(&mut self, other: &Quantity) {
        match (self, other) {
            (Quantity::Scalar(left), Quantity::Scalar(right)) => {
                *left = left.saturating_sub(*right);
            }
            (Quantity::Ranges(left), Quantity::Ranges(right)) => {
                *left = subtract_ranges(left, right);
            }
            (Quantity::Set(left), Quantity::Set(right)) => {
                left.retain(|item| !right.contains(item));
            }
            (left, right) => mismatch(left, right),
        }
    }

    /// Returns true if every unit of `other` is also in `self`.
    pub(super) fn contains(&self, other: &Quantity) -> bool {
        match (self, other) {
            (Quantity::Scalar(left), Quantity::Scalar(right)) => left >= right,
            (Quantity::Ranges(left), Quantity::Ranges(right)) => {
                subtract_ranges(right, left).is_empty()
            }
            (Quantity::Set(left), Quantity::Set(right)) => right.is_subset(left),
            (left, right) => {
                mismatch(left, right);
                false
            }
        }
    }
}

/// Flags a combination of different value types, which `Resources` never makes: the value type
/// is part of the identity that pairs entries up.
fn mismatch(left: &Quantity, right: &Quantity) {
    debug_assert_eq!(
        left.value_type(),
        right.value_type(),
        "quantities of different types were combined"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(pairs: &[(u64, u64)]) -> Vec<Range> {
        pairs
            .iter()
            .map(|&(begin, end)| Range { begin, end })
            .collect()
    }

    #[test]
    fn milli_rounds_to_three_decimal_places() {
        assert_eq!(Milli::from_f64(0.1), Some(Milli::from_milli(100)));
        assert_eq!(Milli::from_f64(0.0005), Some(Milli::from_milli(1)));
        assert_eq!(Milli::from_f64(0.0004), Some(Milli::ZERO));
        assert_eq!(Milli::from_f64(f64::NAN), None);
        assert_eq!(Milli::from_f64(f64::INFINITY), None);
        assert_eq!(Milli::from_f64(1e300), None);
    }

    #[test]
    fn milli_arithmetic_is_exact() {
        let sum = Milli::from_f64(0.1)
            .unwrap()
            .saturating_add(Milli::from_f64(0.2).unwrap());
        assert_eq!(sum, Milli::from_f64(0.3).unwrap());
        assert_eq!(sum.as_f64(), 0.3);
        let difference = Milli::from_f64(1.0)
            .unwrap()
            .saturating_sub(Milli::from_f64(0.999).unwrap());
        assert_eq!(difference.as_f64(), 0.001);
    }

    #[test]
    fn milli_round_trips_through_f64_at_the_maximum() {
        for below in 0..2000 {
            let milli = Milli::from_milli(Milli::MAX.as_milli() - below);
            assert_eq!(Milli::from_f64(milli.as_f64()), Some(milli));
        }
    }

    #[test]
    fn milli_displays_the_shortest_exact_decimal() {
        let shown: Vec<String> = [0, 4000, 500, 125, 1001, -1500]
            .into_iter()
            .map(|milli| Milli::from_milli(milli).to_string())
            .collect();
        assert_eq!(shown, ["0", "4", "0.5", "0.125", "1.001", "-1.5"]);
    }

    #[test]
    fn coalesce_merges_overlapping_and_adjacent_ranges() {
        let merged = coalesce(ranges(&[(10, 12), (1, 3), (4, 5), (2, 3), (20, 20)]));
        assert_eq!(merged, ranges(&[(1, 5), (10, 12), (20, 20)]));
    }

    #[test]
    fn coalesce_does_not_overflow_at_the_top_of_the_domain() {
        let merged = coalesce(ranges(&[(u64::MAX, u64::MAX), (0, u64::MAX - 1)]));
        assert_eq!(merged, ranges(&[(0, u64::MAX)]));
    }

    #[test]
    fn subtraction_splits_ranges() {
        let left = ranges(&[(1, 10), (20, 30)]);
        let right = ranges(&[(3, 4), (8, 22), (30, 40)]);
        assert_eq!(
            subtract_ranges(&left, &right),
            ranges(&[(1, 2), (5, 7), (23, 29)])
        );
    }

    #[test]
    fn subtraction_of_disjoint_or_covering_ranges() {
        let left = ranges(&[(5, 9)]);
        assert_eq!(subtract_ranges(&left, &ranges(&[(0, 4), (10, 11)])), left);
        assert_eq!(subtract_ranges(&left, &ranges(&[(0, 100)])), vec![]);
        assert_eq!(
            subtract_ranges(
                &ranges(&[(0, u64::MAX)]),
                &ranges(&[(0, 0), (u64::MAX, u64::MAX)])
            ),
            ranges(&[(1, u64::MAX - 1)])
        );
    }

    #[test]
    fn ranges_contain_only_covered_spans() {
        let ports = Quantity::Ranges(ranges(&[(1, 5), (7, 9)]));
        assert!(ports.contains(&Quantity::Ranges(ranges(&[(2, 3), (7, 9)]))));
        assert!(!ports.contains(&Quantity::Ranges(ranges(&[(4, 7)]))));
    }

    #[test]
    fn sets_union_and_difference() {
        let set = |items: &[&str]| Quantity::Set(items.iter().map(|s| s.to_string()).collect());
        let mut zones = set(&["a", "b"]);
        zones.add(&set(&["b", "c"]));
        assert_eq!(zones, set(&["a", "b", "c"]));
        zones.subtract(&set(&["a", "z"]));
        assert_eq!(zones, set(&["b", "c"]));
        assert!(zones.contains(&set(&["c"])));
        assert!(!zones.contains(&set(&["a"])));
    }

    #[test]
    fn negative_scalars_count_as_empty() {
        let mut cpus = Quantity::Scalar(Milli::from_milli(500));
        cpus.subtract(&Quantity::Scalar(Milli::from_milli(700)));
        assert!(cpus.is_empty());
    }
}
