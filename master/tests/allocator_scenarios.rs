//! Scenario tests of the allocator, after Mesos's `hierarchical_allocator_tests.cpp` and the
//! acceptance scenarios 10-18 of the Mesos feature inventory.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use strata_master::allocator::{
    Allocation, Allocator, AllocatorConfig, AllocatorError, QuotaLimits,
};
use strata_protocol::resources::ReservationInfo;
use strata_protocol::{AgentId, FrameworkId, Resource, Resources};

fn resources(text: &str) -> Resources {
    Resources::parse(text, "*").unwrap()
}

/// Returns `text` as resources allocated to `role`, as offers carry them.
fn allocated(text: &str, role: &str) -> Resources {
    let mut resources = resources(text);
    resources.allocate(role);
    resources
}

fn framework(id: &str) -> FrameworkId {
    FrameworkId::new(id).unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap()
}

fn roles(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn new_allocator() -> Allocator {
    Allocator::new(AllocatorConfig::default())
}

/// Returns quota limits for one role.
fn quota(role: &str, limits: &[(&str, f64)]) -> BTreeMap<String, QuotaLimits> {
    let limits = limits
        .iter()
        .map(|(name, limit)| ((*name).to_owned(), *limit))
        .collect();
    BTreeMap::from([(role.to_owned(), limits)])
}

fn add_agent(allocator: &mut Allocator, id: &str, text: &str) {
    allocator
        .add_agent(agent(id), resources(text), BTreeMap::new())
        .unwrap();
}

fn add_framework(allocator: &mut Allocator, id: &str, role_names: &[&str]) {
    allocator
        .add_framework(framework(id), roles(role_names), BTreeSet::new(), true)
        .unwrap();
}

/// Returns how many offers each framework got.
fn offers_per_framework(allocations: &[Allocation]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for allocation in allocations {
        *counts
            .entry(allocation.framework_id.to_string())
            .or_default() += 1;
    }
    counts
}

/// Returns the one allocation of a run that must make exactly one.
fn only(allocations: Vec<Allocation>) -> Allocation {
    assert_eq!(allocations.len(), 1, "{allocations:#?}");
    allocations.into_iter().next().unwrap()
}

/// Declines an allocation whole, with `refuse`.
fn decline(allocator: &mut Allocator, allocation: &Allocation, refuse: Duration, now: Duration) {
    allocator
        .recover_resources(
            &allocation.framework_id,
            &allocation.agent_id,
            &allocation.resources,
            Some(refuse),
            now,
        )
        .unwrap();
}

#[test]
fn one_framework_is_offered_a_whole_agent_with_allocation_info() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024;ports:[31000-32000]");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    assert_eq!(offer.framework_id, framework("f1"));
    assert_eq!(offer.agent_id, agent("a1"));
    assert_eq!(offer.role, "r1");
    assert_eq!(
        *offer.resources,
        allocated("cpus:4;mem:1024;ports:[31000-32000]", "r1")
    );
}

#[test]
fn two_roles_agents_added_one_by_one_go_to_lowest_share() {
    let mut allocator = new_allocator();
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    // Each agent is offered whole to the role with the lowest dominant share at the time;
    // the first goes to `r1` on the name tie-break.
    let steps = [
        ("a1", "cpus:2;mem:1024", "r1"),
        ("a2", "cpus:1;mem:512", "r2"),
        ("a3", "cpus:3;mem:2048", "r2"),
        ("a4", "cpus:4;mem:4096", "r1"),
    ];
    for (idx, (agent_id, text, role)) in steps.into_iter().enumerate() {
        add_agent(&mut allocator, agent_id, text);
        let offer = only(allocator.allocate(secs(idx as u64)));
        assert_eq!(offer.role, role, "agent {agent_id}");
        assert_eq!(*offer.resources, allocated(text, role));
    }
}

#[test]
fn reserved_resources_are_offered_only_to_their_role() {
    let mut allocator = new_allocator();
    add_agent(
        &mut allocator,
        "a1",
        "cpus:2;mem:1024;cpus(r2):4;mem(r2):512",
    );
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    let mut offers = allocator.allocate(secs(0));
    offers.sort_by(|a, b| a.role.cmp(&b.role));
    assert_eq!(offers.len(), 2, "{offers:#?}");
    assert_eq!(offers[0].framework_id, framework("f1"));
    assert_eq!(*offers[0].resources, allocated("cpus:2;mem:1024", "r1"));
    assert_eq!(offers[1].framework_id, framework("f2"));
    assert_eq!(
        *offers[1].resources,
        allocated("cpus(r2):4;mem(r2):512", "r2")
    );

    // An agent with only `r2` reservations is never offered to `r1`.
    add_agent(&mut allocator, "a2", "cpus(r2):8;mem(r2):4096");
    allocator.remove_framework(&framework("f2"));
    assert_eq!(allocator.allocate(secs(1)), Vec::new());
}

#[test]
fn resources_reserved_to_a_parent_role_are_offered_to_its_subroles() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus(eng):2;mem(eng):1024");
    add_framework(&mut allocator, "web", &["eng/web"]);
    add_framework(&mut allocator, "ops", &["ops"]);
    let offer = only(allocator.allocate(secs(0)));
    assert_eq!(offer.framework_id, framework("web"));
    assert_eq!(
        *offer.resources,
        allocated("cpus(eng):2;mem(eng):1024", "eng/web")
    );
}

#[test]
fn weights_two_to_one_over_six_agents_give_four_and_two() {
    let mut allocator = new_allocator();
    allocator
        .update_weights(BTreeMap::from([("r1".to_owned(), 2.0)]))
        .unwrap();
    for idx in 0..6 {
        add_agent(&mut allocator, &format!("a{idx}"), "cpus:1;mem:512");
    }
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    let counts = offers_per_framework(&allocator.allocate(secs(0)));
    assert_eq!(counts, BTreeMap::from([("f1".into(), 4), ("f2".into(), 2)]));
}

#[test]
fn weight_zero_or_negative_is_refused() {
    let mut allocator = new_allocator();
    for weight in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let weights = BTreeMap::from([("a".to_owned(), 3.0), ("b".to_owned(), weight)]);
        let err = allocator.update_weights(weights).unwrap_err();
        assert!(
            matches!(err, AllocatorError::InvalidWeight { ref role, .. } if role == "b"),
            "{err}"
        );
    }
    // All or nothing: the valid weight of the same call was not applied either.
    assert_eq!(allocator.weight("a"), 1.0);
    assert!(allocator.weights().is_empty());
    let err = allocator
        .update_weights(BTreeMap::from([("a//b".to_owned(), 2.0)]))
        .unwrap_err();
    assert!(matches!(err, AllocatorError::InvalidRole { .. }), "{err}");
}

#[test]
fn decline_with_refuse_zero_is_reoffered_next_run() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    decline(&mut allocator, &offer, Duration::ZERO, secs(0));
    let again = only(allocator.allocate(secs(1)));
    assert_eq!(again, offer);
}

#[test]
fn decline_for_an_hour_is_not_reoffered_for_thirty_minutes_then_revive_offers_at_once() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    decline(&mut allocator, &offer, secs(3600), secs(0));
    for now in (1..=1800).step_by(60) {
        assert_eq!(allocator.allocate(secs(now)), Vec::new(), "at {now}s");
    }
    assert_eq!(allocator.role_stats()[0].n_filters, 1);
    allocator.revive(&framework("f1"), None).unwrap();
    assert_eq!(allocator.role_stats()[0].n_filters, 0);
    assert_eq!(only(allocator.allocate(secs(1801))), offer);
}

#[test]
fn a_filter_expires_after_its_refusal() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    let refuse = allocator.config().refuse_duration(None);
    assert_eq!(refuse, secs(5));
    decline(&mut allocator, &offer, refuse, secs(0));
    assert_eq!(allocator.allocate(secs(4)), Vec::new());
    assert_eq!(only(allocator.allocate(secs(5))), offer);
}

#[test]
fn refuse_seconds_follow_mesos_defaults_and_cap() {
    let config = AllocatorConfig::default();
    let year = secs(365 * 24 * 3600);
    assert_eq!(config.refuse_duration(None), secs(5));
    assert_eq!(config.refuse_duration(Some(-1.0)), secs(5));
    assert_eq!(config.refuse_duration(Some(f64::NAN)), secs(5));
    assert_eq!(config.refuse_duration(Some(0.0)), Duration::ZERO);
    assert_eq!(
        config.refuse_duration(Some(1.5)),
        Duration::from_millis(1500)
    );
    assert_eq!(config.refuse_duration(Some(1e12)), year);
    assert_eq!(config.refuse_duration(Some(f64::INFINITY)), year);
}

#[test]
fn a_filter_does_not_block_more_than_was_refused() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    // The framework launches on half of it and declines the rest for an hour.
    allocator
        .use_offered(
            &offer.framework_id,
            &offer.agent_id,
            &allocated("cpus:2;mem:512", "r1"),
        )
        .unwrap();
    let rest = allocated("cpus:2;mem:512", "r1");
    allocator
        .recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &rest,
            Some(secs(3600)),
            secs(0),
        )
        .unwrap();
    assert_eq!(allocator.allocate(secs(1)), Vec::new());
    // When its task finishes, more is available than it refused: it is offered again.
    allocator
        .recover_resources(&offer.framework_id, &offer.agent_id, &rest, None, secs(2))
        .unwrap();
    assert_eq!(only(allocator.allocate(secs(2))).resources, offer.resources);
}

#[test]
fn declined_offer_goes_to_the_next_framework_in_the_role() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r1"]);
    let first = only(allocator.allocate(secs(0)));
    assert_eq!(first.framework_id, framework("f1"));
    decline(&mut allocator, &first, secs(3600), secs(0));
    let second = only(allocator.allocate(secs(1)));
    assert_eq!(second.framework_id, framework("f2"));
}

#[test]
fn suppressed_role_gets_no_offers_until_revive() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    allocator
        .add_framework(framework("f1"), roles(&["r1", "r2"]), roles(&["r1"]), true)
        .unwrap();
    let offer = only(allocator.allocate(secs(0)));
    assert_eq!(offer.role, "r2");
    decline(&mut allocator, &offer, Duration::ZERO, secs(0));
    allocator.suppress(&framework("f1"), None).unwrap();
    for now in (1..=6000).step_by(600) {
        assert_eq!(allocator.allocate(secs(now)), Vec::new(), "at {now}s");
    }
    let stats = allocator.role_stats();
    assert!(
        stats.iter().all(|role| role.n_suppressed == 1),
        "{stats:#?}"
    );
    allocator
        .revive(&framework("f1"), Some(roles(&["r1"])))
        .unwrap();
    assert_eq!(only(allocator.allocate(secs(6001))).role, "r1");
}

#[test]
fn quota_limit_zero_gives_no_offers() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024;ports:[1-10]");
    add_framework(&mut allocator, "f1", &["r1"]);
    let rescinds = allocator
        .update_quota(quota("r1", &[("cpus", 0.0), ("mem", 0.0)]))
        .unwrap();
    assert_eq!(rescinds, Vec::new());
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
}

#[test]
fn quota_limit_caps_offers() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:16;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    allocator
        .update_quota(quota("r1", &[("cpus", 4.0)]))
        .unwrap();
    let mut offers = allocator.allocate(secs(0));
    offers.sort_by(|a, b| a.role.cmp(&b.role));
    assert_eq!(offers.len(), 2, "{offers:#?}");
    assert_eq!(*offers[0].resources, allocated("cpus:4;mem:1024", "r1"));
    assert_eq!(*offers[1].resources, allocated("cpus:12", "r2"));
    // Once the limit is reached nothing more is offered to the role.
    add_agent(&mut allocator, "a2", "cpus:16;mem:1024");
    allocator.remove_framework(&framework("f2"));
    let offers = allocator.allocate(secs(1));
    assert!(
        offers
            .iter()
            .all(|offer| offer.role != "r1" || offer.resources.cpus().is_none())
    );
    let stats = &allocator.role_stats()[0];
    assert_eq!(stats.role, "r1");
    assert_eq!(
        stats.quota_limits,
        quota("r1", &[("cpus", 4.0)]).remove("r1")
    );
}

#[test]
fn quota_of_a_parent_role_caps_its_subroles_together() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:8;mem:1024");
    add_agent(&mut allocator, "a2", "cpus:8;mem:1024");
    add_framework(&mut allocator, "fx", &["eng/x"]);
    add_framework(&mut allocator, "fy", &["eng/y"]);
    allocator
        .update_quota(quota("eng", &[("cpus", 6.0)]))
        .unwrap();
    let offers = allocator.allocate(secs(0));
    let cpus: f64 = offers
        .iter()
        .filter_map(|offer| offer.resources.cpus())
        .sum();
    assert_eq!(cpus, 6.0, "{offers:#?}");
}

#[test]
fn lowering_quota_below_outstanding_offers_returns_them_to_rescind() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024");
    add_agent(&mut allocator, "a2", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offers = allocator.allocate(secs(0));
    assert_eq!(offers.len(), 2);
    let rescinds = allocator
        .update_quota(quota("r1", &[("cpus", 5.0)]))
        .unwrap();
    // Rescinding one offer brings r1 from 8 cpus down to 4, within the limit of 5.
    assert_eq!(rescinds.len(), 1, "{rescinds:#?}");
    let rescind = &rescinds[0];
    assert_eq!(rescind.role, "r1");
    assert_eq!(rescind.resources, allocated("cpus:4;mem:1024", "r1"));
    allocator
        .recover_resources(
            &rescind.framework_id,
            &rescind.agent_id,
            &rescind.resources,
            None,
            secs(1),
        )
        .unwrap();
    // The next run offers only the one cpu the limit leaves.
    let offer = only(allocator.allocate(secs(1)));
    assert_eq!(*offer.resources, allocated("cpus:1;mem:1024", "r1"));
}

#[test]
fn invalid_quota_is_refused_all_or_nothing() {
    let mut allocator = new_allocator();
    let mut limits = quota("a", &[("cpus", 1.0)]);
    limits.extend(quota("b", &[("cpus", -1.0)]));
    let err = allocator.update_quota(limits).unwrap_err();
    assert!(matches!(err, AllocatorError::InvalidQuota { ref role, .. } if role == "b"));
    assert!(allocator.quotas().is_empty());
    assert!(
        allocator
            .update_quota(quota("*", &[("cpus", 1.0)]))
            .is_err()
    );
}

#[test]
fn nested_role_shares_roll_up_to_parent() {
    let mut allocator = new_allocator();
    for idx in 0..4 {
        add_agent(&mut allocator, &format!("a{idx}"), "cpus:1;mem:512");
    }
    add_framework(&mut allocator, "fx", &["a/x"]);
    add_framework(&mut allocator, "fy", &["a/y"]);
    add_framework(&mut allocator, "fb", &["b"]);
    // `a` and `b` split the cluster evenly; `a/x` and `a/y` split `a`'s half. Flat DRF over
    // the three leaf roles would give `b` one agent of four.
    let counts = offers_per_framework(&allocator.allocate(secs(0)));
    let want = BTreeMap::from([("fb".into(), 2), ("fx".into(), 1), ("fy".into(), 1)]);
    assert_eq!(counts, want);
    let stats = allocator.role_stats();
    let a = stats.iter().find(|role| role.role == "a").unwrap();
    assert_eq!(a.weighted_share, 0.5);
}

#[test]
fn a_role_with_frameworks_and_subroles_competes_with_its_subroles() {
    let mut allocator = new_allocator();
    for idx in 0..4 {
        add_agent(&mut allocator, &format!("a{idx}"), "cpus:1;mem:512");
    }
    add_framework(&mut allocator, "fa", &["a"]);
    add_framework(&mut allocator, "fx", &["a/x"]);
    let counts = offers_per_framework(&allocator.allocate(secs(0)));
    assert_eq!(counts, BTreeMap::from([("fa".into(), 2), ("fx".into(), 2)]));
}

#[test]
fn min_allocatable_skips_crumbs() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "crumbs", "cpus:0.005;mem:16;ports:[1-2]");
    add_framework(&mut allocator, "f1", &["r1"]);
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
    // Either minimum suffices: enough cpus with too little memory is offered.
    add_agent(&mut allocator, "cpus-only", "cpus:1;mem:16");
    assert_eq!(
        only(allocator.allocate(secs(1))).agent_id,
        agent("cpus-only")
    );
}

#[test]
fn deactivated_agent_and_framework_get_nothing() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    allocator.deactivate_agent(&agent("a1")).unwrap();
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
    allocator.activate_agent(&agent("a1")).unwrap();
    allocator.deactivate_framework(&framework("f1")).unwrap();
    assert_eq!(allocator.allocate(secs(1)), Vec::new());
    allocator.activate_framework(&framework("f1")).unwrap();
    assert_eq!(
        only(allocator.allocate(secs(2))).framework_id,
        framework("f1")
    );
}

#[test]
fn inactive_framework_added_as_such_gets_nothing_and_not_subscribed_role_gets_nothing() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus(r2):2;mem(r2):1024");
    allocator
        .add_framework(framework("f2"), roles(&["r2"]), BTreeSet::new(), false)
        .unwrap();
    add_framework(&mut allocator, "f1", &["r1"]);
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
}

#[test]
fn second_allocate_at_the_same_time_offers_nothing() {
    let mut allocator = new_allocator();
    for idx in 0..3 {
        add_agent(&mut allocator, &format!("a{idx}"), "cpus:4;mem:1024");
    }
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    assert_eq!(allocator.allocate(secs(0)).len(), 3);
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
}

#[test]
fn used_resources_stay_allocated_until_a_task_frees_them() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    allocator
        .use_offered(&offer.framework_id, &offer.agent_id, &offer.resources)
        .unwrap();
    assert_eq!(allocator.allocate(secs(1)), Vec::new());
    let stats = &allocator.role_stats()[0];
    assert_eq!(stats.allocated, resources("cpus:2;mem:1024"));
    assert_eq!(stats.offered, Resources::new());
    allocator
        .recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &offer.resources,
            None,
            secs(2),
        )
        .unwrap();
    assert_eq!(only(allocator.allocate(secs(2))), offer);
}

#[test]
fn recovering_what_is_not_held_is_refused() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    let too_much = allocated("cpus:3", "r1");
    let err = allocator
        .recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &too_much,
            None,
            secs(0),
        )
        .unwrap_err();
    assert!(matches!(err, AllocatorError::NotHeld { .. }), "{err}");
    let unallocated = resources("cpus:1");
    let err = allocator
        .recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &unallocated,
            None,
            secs(0),
        )
        .unwrap_err();
    assert!(
        matches!(err, AllocatorError::NotAllocatedToOneRole(_)),
        "{err}"
    );
    // Recovering for an agent or framework that is gone is a no-op, as after a removal.
    allocator.remove_agent(&agent("a1"));
    let recovered = allocator.recover_resources(
        &offer.framework_id,
        &offer.agent_id,
        &offer.resources,
        None,
        secs(0),
    );
    assert_eq!(recovered, Ok(()));
    allocator.check_invariants().unwrap();
}

#[test]
fn removing_a_framework_returns_its_resources_to_others() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    allocator
        .use_offered(&offer.framework_id, &offer.agent_id, &offer.resources)
        .unwrap();
    allocator.remove_framework(&offer.framework_id);
    assert_eq!(
        only(allocator.allocate(secs(1))).framework_id,
        framework("f2")
    );
    allocator.check_invariants().unwrap();
}

#[test]
fn an_agent_re_registering_with_used_resources_counts_them_toward_shares() {
    let mut allocator = new_allocator();
    let used = BTreeMap::from([(framework("f1"), allocated("cpus:3;mem:512", "r1"))]);
    allocator
        .add_agent(agent("a1"), resources("cpus:4;mem:1024"), used)
        .unwrap();
    add_agent(&mut allocator, "a2", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    // f1 already uses 3 of 8 cpus, so the lower-share r2 is offered first and takes a2 whole
    // (or what is left of a1): both agents are visited, r2 is served first on each.
    let offers = allocator.allocate(secs(0));
    assert!(!offers.is_empty());
    let r2_cpus: f64 = offers
        .iter()
        .filter(|offer| offer.role == "r2")
        .filter_map(|offer| offer.resources.cpus())
        .sum();
    assert!(r2_cpus >= 4.0, "{offers:#?}");
    allocator.check_invariants().unwrap();
}

#[test]
fn agent_total_cannot_shrink_below_what_is_held() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    only(allocator.allocate(secs(0)));
    let err = allocator
        .update_agent_total(&agent("a1"), resources("cpus:2;mem:1024"))
        .unwrap_err();
    assert!(
        matches!(err, AllocatorError::TotalBelowHeld { .. }),
        "{err}"
    );
    allocator
        .update_agent_total(&agent("a1"), resources("cpus:8;mem:1024"))
        .unwrap();
    assert_eq!(
        *only(allocator.allocate(secs(1))).resources,
        allocated("cpus:4", "r1")
    );
    allocator.check_invariants().unwrap();
}

#[test]
fn duplicate_and_unknown_ids_are_refused() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:1");
    let err = allocator
        .add_agent(agent("a1"), resources("cpus:1"), BTreeMap::new())
        .unwrap_err();
    assert_eq!(err, AllocatorError::DuplicateAgent(agent("a1")));
    add_framework(&mut allocator, "f1", &["r1"]);
    let err = allocator
        .add_framework(framework("f1"), roles(&["r1"]), BTreeSet::new(), true)
        .unwrap_err();
    assert_eq!(err, AllocatorError::DuplicateFramework(framework("f1")));
    let err = allocator.suppress(&framework("nope"), None).unwrap_err();
    assert_eq!(err, AllocatorError::UnknownFramework(framework("nope")));
    let err = allocator
        .add_framework(framework("f2"), roles(&["r1"]), roles(&["r2"]), true)
        .unwrap_err();
    assert!(matches!(err, AllocatorError::InvalidRole { .. }), "{err}");
}

#[test]
fn updating_a_framework_moves_it_between_roles() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    allocator
        .update_framework(&framework("f1"), roles(&["r2"]), BTreeSet::new())
        .unwrap();
    assert_eq!(only(allocator.allocate(secs(0))).role, "r2");
}

#[test]
fn gpus_can_be_excluded_from_fair_sharing() {
    let config = AllocatorConfig {
        fair_sharing_excluded: BTreeSet::from(["gpus".to_owned()]),
        ..AllocatorConfig::default()
    };
    let mut allocator = Allocator::new(config);
    add_agent(&mut allocator, "gpu", "cpus:1;mem:512;gpus:8");
    add_agent(&mut allocator, "a2", "cpus:1;mem:512");
    add_framework(&mut allocator, "f1", &["r1"]);
    add_framework(&mut allocator, "f2", &["r2"]);
    allocator.allocate(secs(0));
    let stats = allocator.role_stats();
    // Each role got one agent: with gpus excluded both have a share of one half.
    assert!(
        stats.iter().all(|role| role.weighted_share == 0.5),
        "{stats:#?}"
    );
}

#[test]
fn reserving_part_of_an_offer_keeps_it_for_the_role() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate(secs(0)));
    let reservation = ReservationInfo::new_dynamic("r1", Some("ops"));
    let reserved = Resources::from_resources([Resource::new_scalar("cpus", 2.0)
        .with_reservation(reservation)
        .with_allocation("r1")])
    .unwrap();
    let consumed = allocated("cpus:2", "r1");
    allocator
        .update_allocation(&offer.framework_id, &offer.agent_id, &consumed, &reserved)
        .unwrap();
    let view = allocator.agent_view(&agent("a1")).unwrap();
    assert_eq!(view.total.reserved("r1").cpus(), Some(2.0));
    assert_eq!(
        view.holdings[0].offered,
        allocated("cpus:2;mem:1024", "r1") + &reserved
    );
    // Declined, the unreserved part goes to another role; the reservation does not.
    let everything = view.holdings[0].offered.clone();
    allocator
        .recover_resources(
            &offer.framework_id,
            &offer.agent_id,
            &everything,
            None,
            secs(1),
        )
        .unwrap();
    allocator.deactivate_framework(&framework("f1")).unwrap();
    add_framework(&mut allocator, "f2", &["r2"]);
    assert_eq!(
        *only(allocator.allocate(secs(1))).resources,
        allocated("cpus:2;mem:1024", "r2")
    );
    allocator.check_invariants().unwrap();
    // A conversion that changes amounts is refused.
    let err = allocator
        .update_allocation(
            &framework("f2"),
            &agent("a1"),
            &allocated("cpus:1", "r2"),
            &allocated("cpus:2", "r2"),
        )
        .unwrap_err();
    assert!(
        matches!(err, AllocatorError::InvalidConversion { .. }),
        "{err}"
    );
}

#[test]
fn reservations_are_offered_even_at_the_quota_limit() {
    let mut allocator = new_allocator();
    add_agent(
        &mut allocator,
        "a1",
        "cpus:4;mem:1024;cpus(r1):2;mem(r1):256",
    );
    add_framework(&mut allocator, "f1", &["r1"]);
    allocator
        .update_quota(quota("r1", &[("cpus", 2.0), ("mem", 256.0)]))
        .unwrap();
    // The reservation alone consumes the whole limit: only it is offered, as in Mesos.
    let offer = only(allocator.allocate(secs(0)));
    assert_eq!(*offer.resources, allocated("cpus(r1):2;mem(r1):256", "r1"));
    let stats = &allocator.role_stats()[0];
    assert_eq!(stats.quota_consumed, resources("cpus:2;mem:256"));
}

#[test]
fn the_same_calls_with_the_same_seed_give_the_same_offers() {
    let run = |seed: u64| {
        let config = AllocatorConfig {
            seed,
            ..AllocatorConfig::default()
        };
        let mut allocator = Allocator::new(config);
        for idx in 0..20 {
            add_agent(&mut allocator, &format!("a{idx:02}"), "cpus:2;mem:1024");
        }
        for idx in 0..3 {
            add_framework(&mut allocator, &format!("f{idx}"), &["r1"]);
        }
        allocator.allocate(secs(0))
    };
    assert_eq!(run(1), run(1));
    let agents = |offers: Vec<Allocation>| -> Vec<AgentId> {
        offers.into_iter().map(|offer| offer.agent_id).collect()
    };
    // The seed only changes which agents are visited first.
    assert_ne!(agents(run(1)), agents(run(2)));
}

#[test]
fn a_framework_can_lower_or_raise_its_own_minimum_offer() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "small", "cpus:0.005;mem:16");
    add_framework(&mut allocator, "greedy", &["r1"]);
    add_framework(&mut allocator, "frugal", &["r1"]);
    assert_eq!(allocator.allocate(secs(0)), Vec::new());
    // `frugal` takes any crumb in r1; `greedy` wants at least 8 cpus.
    let frugal = BTreeMap::from([("r1".to_owned(), Vec::new())]);
    allocator
        .update_min_allocatable(&framework("frugal"), frugal)
        .unwrap();
    let greedy = BTreeMap::from([("r1".to_owned(), vec![resources("cpus:8")])]);
    allocator
        .update_min_allocatable(&framework("greedy"), greedy)
        .unwrap();
    assert_eq!(
        only(allocator.allocate(secs(1))).framework_id,
        framework("frugal")
    );
    add_agent(&mut allocator, "big", "cpus:8;mem:1024");
    assert_eq!(
        only(allocator.allocate(secs(2))).framework_id,
        framework("greedy")
    );
    allocator.remove_framework(&framework("frugal"));
    allocator.remove_framework(&framework("greedy"));
    allocator.check_invariants().unwrap();
}

#[test]
fn an_event_driven_run_offers_only_the_named_agents() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:2;mem:1024");
    add_agent(&mut allocator, "a2", "cpus:2;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let offer = only(allocator.allocate_agents(secs(0), &[agent("a2"), agent("unknown")]));
    assert_eq!(offer.agent_id, agent("a2"));
    assert_eq!(only(allocator.allocate(secs(0))).agent_id, agent("a1"));
}

#[test]
fn a_finished_task_frees_used_resources_not_the_frameworks_outstanding_offer() {
    let mut allocator = new_allocator();
    add_agent(&mut allocator, "a1", "cpus:4;mem:1024");
    add_framework(&mut allocator, "f1", &["r1"]);
    let first = only(allocator.allocate(secs(0)));
    let task = allocated("cpus:1;mem:256", "r1");
    allocator
        .use_offered(&first.framework_id, &first.agent_id, &task)
        .unwrap();
    allocator
        .recover_resources(
            &first.framework_id,
            &first.agent_id,
            &allocated("cpus:3;mem:768", "r1"),
            None,
            secs(0),
        )
        .unwrap();
    // The rest comes back as an offer the framework holds while its task runs.
    let second = only(allocator.allocate(secs(1)));
    assert_eq!(*second.resources, allocated("cpus:3;mem:768", "r1"));
    // The task ends: its resources leave what the framework uses, not its offer ...
    allocator
        .recover_used(&first.framework_id, &first.agent_id, &task)
        .unwrap();
    // ... so the whole outstanding offer can still be accepted.
    allocator
        .use_offered(&second.framework_id, &second.agent_id, &second.resources)
        .unwrap();
}
