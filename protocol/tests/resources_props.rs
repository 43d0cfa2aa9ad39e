//! Property tests of the `Resources` algebra: the laws the allocator and the master's
//! accounting rely on, over a mix of scalars, ranges and sets with a few roles, reservations
//! and allocations.

use proptest::prelude::*;
use strata_protocol::mesos::{Label, Labels};
use strata_protocol::resources::{
    Milli, ReservationInfo, Resource, Resources, RevocableInfo, ValueType, validate_role,
};

/// The reservation stacks a generated resource may carry: none, static, dynamic (with and
/// without labels) and refined.
fn reservation_stack() -> impl Strategy<Value = Vec<ReservationInfo>> {
    let labelled = ReservationInfo {
        labels: Some(Labels {
            labels: vec![Label {
                key: "team".into(),
                value: Some("db".into()),
            }],
        }),
        ..ReservationInfo::new_dynamic("eng", Some("bob"))
    };
    prop_oneof![
        3 => Just(vec![]),
        1 => Just(vec![ReservationInfo::new_static("ops")]),
        1 => Just(vec![ReservationInfo::new_dynamic("eng", Some("alice"))]),
        1 => Just(vec![labelled]),
        1 => Just(vec![
            ReservationInfo::new_static("eng"),
            ReservationInfo::new_dynamic("eng/web", None),
        ]),
    ]
}

/// A value of one of the generated names: `cpus`, `mem` and `gpus` (scalars in thousandths),
/// `ports` (one range within 0..64) and `zones` (a subset of five items).
fn value() -> impl Strategy<Value = Resource> {
    let scalar = (
        prop::sample::select(vec!["cpus", "mem", "gpus"]),
        0..5000i64,
    )
        .prop_map(|(name, milli)| Resource::new_scalar(name, milli as f64 / 1000.0));
    let ports = (0..64u64, 0..16u64)
        .prop_map(|(begin, len)| Resource::new_ranges("ports", [(begin, begin + len)]));
    let zones = prop::sample::subsequence(vec!["a", "b", "c", "d", "e"], 0..=5)
        .prop_map(|items| Resource::new_set("zones", items));
    prop_oneof![3 => scalar, 1 => ports, 1 => zones]
}

/// One valid resource with optional reservations, allocation and revocability.
fn resource() -> impl Strategy<Value = Resource> {
    let allocation = prop::option::weighted(0.25, prop::sample::select(vec!["eng", "ops"]));
    (
        value(),
        reservation_stack(),
        allocation,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(mut resource, reservations, allocation, revocable)| {
            resource.reservations = reservations;
            if let Some(role) = allocation {
                resource = resource.with_allocation(role);
            }
            if revocable {
                resource.revocable = Some(RevocableInfo {});
            }
            resource
        })
}

fn resources() -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource(), 0..8).prop_map(|resources| {
        Resources::from_resources(resources).expect("generated resources are valid")
    })
}

/// The ranges and sets of `resources`, whose addition is a union rather than a sum.
fn non_scalars(resources: &Resources) -> Resources {
    resources.filter(|resource| resource.value_type != ValueType::Scalar)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn adding_then_subtracting_gives_back_the_original(a in resources(), b in resources()) {
        // Ranges and sets add as a union, so the law needs their items disjoint from `b`'s:
        // `{1} + {1} - {1}` is empty.
        let a = a - non_scalars(&b);
        prop_assert_eq!((&a + &b) - &b, a);
    }

    #[test]
    fn a_sum_contains_both_terms(a in resources(), b in resources()) {
        let sum = &a + &b;
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
    }

    #[test]
    fn resources_contain_themselves_and_minus_themselves_is_empty(a in resources()) {
        prop_assert!(a.contains(&a));
        prop_assert!((&a - &a).is_empty());
        prop_assert!(a.contains(&Resources::new()));
    }

    #[test]
    fn addition_is_commutative_and_associative(
        a in resources(),
        b in resources(),
        c in resources(),
    ) {
        prop_assert_eq!(&a + &b, &b + &a);
        prop_assert_eq!((&a + &b) + &c, &a + &(&b + &c));
    }

    #[test]
    fn subtraction_never_leaves_a_negative_or_empty_resource(a in resources(), b in resources()) {
        let difference = &a - &b;
        for resource in difference.iter() {
            if let Some(scalar) = resource.scalar {
                prop_assert!(scalar.value > 0.0, "{:?}", resource);
            }
            prop_assert!(resource.ranges.is_none_or(|ranges| !ranges.range.is_empty()));
            prop_assert!(resource.set.is_none_or(|set| !set.item.is_empty()));
        }
        prop_assert!(a.contains(&difference));
    }

    #[test]
    fn contains_is_transitive(
        a in resources(),
        b in resources(),
        c in resources(),
        x in resources(),
        y in resources(),
    ) {
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
        // Random triples rarely nest, so also build a chain `c <= c + x <= c + x + y`.
        let middle = &c + &x;
        let top = &middle + &y;
        prop_assert!(top.contains(&middle) && middle.contains(&c));
        prop_assert!(top.contains(&c));
    }

    #[test]
    fn subtracting_a_contained_part_and_adding_it_back_is_identity(
        a in resources(),
        b in resources(),
        x in resources(),
    ) {
        if a.contains(&b) {
            prop_assert_eq!((&a - &b) + &b, a);
        }
        let whole = &b + &x;
        prop_assert_eq!((&whole - &b) + &b, whole);
    }

    #[test]
    fn display_parses_back(a in resources()) {
        let text = a.to_string();
        prop_assert_eq!(Resources::parse(&text, "*"), Ok(a), "{}", text);
    }

    #[test]
    fn json_round_trip_is_identity(a in resources()) {
        let json = serde_json::to_string(&a).unwrap();
        let back: Resources = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, a);
    }

    #[test]
    fn every_wire_resource_is_valid(a in resources()) {
        for resource in a.to_wire().iter().chain(a.iter().collect::<Vec<_>>().iter()) {
            prop_assert_eq!(resource.validate(), Ok(()));
        }
    }

    #[test]
    fn flatten_preserves_scalar_totals(a in resources()) {
        let flat = a.flatten();
        prop_assert!(flat.reserved_to_any().is_empty());
        for name in a.names() {
            prop_assert_eq!(flat.scalar_milli(&name), a.scalar_milli(&name));
        }
        prop_assert_eq!(flat.scalar_quantities(), a.scalar_quantities());
    }

    #[test]
    fn reserved_and_unreserved_partition_the_resources(a in resources()) {
        prop_assert_eq!(a.unreserved() + a.reserved_to_any(), a.clone());
        let by_role = a.reservations().into_values().fold(Resources::new(), |sum, r| sum + r);
        prop_assert_eq!(by_role, a.reserved_to_any());
    }

    #[test]
    fn allocatable_resources_are_a_subset(a in resources(), role in "(eng|ops)(/web)?") {
        let allocatable = a.allocatable_to(&role);
        prop_assert!(a.contains(&allocatable));
        prop_assert!(allocatable.contains(&a.unreserved()));
        prop_assert!(allocatable.contains(&a.reserved(&role)));
    }

    #[test]
    fn reserve_then_unreserve_is_identity(a in resources()) {
        let unreserved = a.unreserved();
        let reserved = unreserved
            .push_reservation(&ReservationInfo::new_dynamic("eng", Some("alice")))
            .unwrap();
        prop_assert_eq!(reserved.reserved("eng"), reserved.clone());
        prop_assert_eq!(reserved.pop_reservation().unwrap(), unreserved);
    }

    #[test]
    fn allocate_then_unallocate_keeps_the_quantities(a in resources()) {
        let mut allocated = a.clone();
        allocated.allocate("eng");
        prop_assert_eq!(allocated.allocations().len(), usize::from(!a.is_empty()));
        allocated.unallocate();
        prop_assert_eq!(allocated.scalar_quantities(), a.scalar_quantities());
    }

    #[test]
    fn dominant_share_of_a_part_is_between_zero_and_one(a in resources(), b in resources()) {
        let total = &a + &b;
        let share = a.dominant_share(&total);
        prop_assert!((0.0..=1.0).contains(&share), "{}", share);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".{0,40}", role in ".{0,8}") {
        let _ = Resources::parse(&text, &role);
        let _ = validate_role(&text);
    }

    #[test]
    fn parsing_text_like_input_never_panics(
        text in r"([a-z(*)/]{0,6}:[-0-9.\[\]{},a-z ]{0,12};?){0,4}",
    ) {
        let _ = Resources::parse(&text, "*");
    }

    #[test]
    fn milli_round_trips_through_the_wire_form(milli in 0..=Milli::MAX.as_milli()) {
        let milli = Milli::from_milli(milli);
        prop_assert_eq!(Milli::from_f64(milli.as_f64()), Some(milli));
    }
}
