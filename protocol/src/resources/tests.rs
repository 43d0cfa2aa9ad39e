use expect_test::expect;

use super::*;

/// Parses unreserved text resources, for brevity.
fn res(text: &str) -> Resources {
    Resources::parse(text, "*").unwrap()
}

fn single(resource: Resource) -> Resources {
    Resources::try_from(resource).unwrap()
}

fn dynamic(role: &str) -> ReservationInfo {
    ReservationInfo::new_dynamic(role, Some("alice"))
}

fn parse_err(text: &str) -> String {
    Resources::parse(text, "*").unwrap_err().to_string()
}

fn invalid(resource: Resource) -> String {
    resource.validate().unwrap_err().to_string()
}

// Fixed-point scalars.

#[test]
fn scalar_sums_are_exact_at_three_decimal_places() {
    let sum = res("cpus:0.1") + res("cpus:0.2");
    assert_eq!(sum, res("cpus:0.3"));
    assert_eq!(sum.cpus(), Some(0.3));
}

#[test]
fn scalar_differences_are_exact() {
    let difference = res("cpus:1") - res("cpus:0.999");
    assert_eq!(difference.cpus(), Some(0.001));
    assert_eq!(difference, res("cpus:0.001"));
}

#[test]
fn scalars_round_to_the_nearest_thousandth() {
    assert_eq!(res("mem:0.1234"), res("mem:0.123"));
    assert_eq!(res("mem:0.0005").mem(), Some(0.001));
}

#[test]
fn many_small_additions_do_not_drift() {
    let mut total = Resources::new();
    for _ in 0..1000 {
        total += res("cpus:0.001");
    }
    assert_eq!(total, res("cpus:1"));
    for _ in 0..1000 {
        total -= res("cpus:0.001");
    }
    assert!(total.is_empty());
}

// Merging and subtraction.

#[test]
fn same_identity_merges_and_zero_is_dropped() {
    let merged = res("cpus:1;mem:10;cpus:2;disk:0");
    assert_eq!(merged.len(), 2);
    assert_eq!(merged.cpus(), Some(3.0));
    assert_eq!(merged.disk(), None);
}

#[test]
fn subtracting_more_than_there_is_leaves_nothing() {
    let left = res("cpus:1;mem:512") - res("cpus:3");
    assert_eq!(left, res("mem:512"));
    assert_eq!(res("mem:1") - res("cpus:1"), res("mem:1"));
}

#[test]
fn reserved_resources_do_not_combine_with_unreserved_ones() {
    let both = res("cpus:1") + Resources::parse("cpus:2", "ops").unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both.cpus(), Some(3.0));
    assert_eq!(both.unreserved().cpus(), Some(1.0));
    assert_eq!(both.reserved("ops").cpus(), Some(2.0));
    // Subtracting unreserved cpus leaves the reservation alone.
    assert_eq!(&both - &res("cpus:5"), both.reserved("ops"));
}

#[test]
fn allocated_resources_do_not_combine_with_unallocated_ones() {
    let mut offered = res("cpus:1");
    offered.allocate("web");
    let both = &offered + &res("cpus:1");
    assert_eq!(both.len(), 2);
    assert!(!both.contains(&res("cpus:2")));
}

#[test]
fn dynamic_reservations_combine_only_with_the_same_principal_and_labels() {
    let cpus = Resource::new_scalar("cpus", 1.0);
    let alice = single(cpus.clone().with_reservation(dynamic("web")));
    let bob = single(cpus.with_reservation(ReservationInfo::new_dynamic("web", Some("bob"))));
    assert_eq!((&alice + &alice).len(), 1);
    assert_eq!((&alice + &bob).len(), 2);
    assert_eq!((&alice + &bob).reserved("web").cpus(), Some(2.0));
}

#[test]
fn ranges_merge_and_split() {
    let ports = res("ports:[1-10]") + res("ports:[11-20,30-40]");
    assert_eq!(ports, res("ports:[1-20,30-40]"));
    let split = ports - res("ports:[5-8,35-35]");
    assert_eq!(split, res("ports:[1-4,9-20,30-34,36-40]"));
    assert_eq!(split.ports().unwrap().count(), 4 + 12 + 5 + 5);
}

#[test]
fn overlapping_text_ranges_are_coalesced() {
    assert_eq!(res("ports:[1-5,3-9,10-10]"), res("ports:[1-10]"));
}

#[test]
fn subtracting_all_ranges_drops_the_resource() {
    assert!((res("ports:[1-5]") - res("ports:[0-100]")).is_empty());
}

#[test]
fn sets_unite_and_subtract() {
    let zones = res("zones:{a,b}") + res("zones:{b,c}");
    assert_eq!(zones, res("zones:{a,b,c}"));
    assert_eq!(zones.clone() - res("zones:{a,x}"), res("zones:{b,c}"));
    assert!((zones.clone() - res("zones:{a,b,c}")).is_empty());
    assert_eq!(zones.set("zones").unwrap().item, ["a", "b", "c"]);
}

#[test]
fn contains_compares_amounts_per_identity() {
    let agent = res("cpus:4;mem:1024;ports:[31000-32000];zones:{a,b}");
    assert!(agent.contains(&res("cpus:4;mem:1;ports:[31000-31005];zones:{b}")));
    assert!(agent.contains(&Resources::new()));
    assert!(agent.contains(&agent));
    assert!(!agent.contains(&res("cpus:4.001")));
    assert!(!agent.contains(&res("ports:[30999-31000]")));
    assert!(!agent.contains(&res("zones:{c}")));
    assert!(!agent.contains(&res("gpus:1")));
    assert!(!agent.contains(&Resources::parse("cpus:1", "ops").unwrap()));
}

#[test]
fn contains_resource_rejects_invalid_resources() {
    let agent = res("cpus:4");
    assert!(agent.contains_resource(&Resource::new_scalar("cpus", 2.0)));
    assert!(!agent.contains_resource(&Resource::new_scalar("cpus", -1.0)));
}

#[test]
fn operators_accept_a_single_resource() {
    let mut agent = res("cpus:1");
    agent += Resource::new_scalar("cpus", 1.5);
    agent += &Resource::new_ranges("ports", [(1, 3)]);
    assert_eq!(agent, res("cpus:2.5;ports:[1-3]"));
    agent -= Resource::new_ranges("ports", [(2, 2)]);
    assert_eq!(
        agent.clone() - Resource::new_scalar("cpus", 0.5),
        res("cpus:2;ports:[1-1,3-3]")
    );
    assert_eq!(
        agent.clone() + Resource::new_set("zones", ["a"]),
        agent + res("zones:{a}")
    );
}

#[test]
fn invalid_resources_are_ignored_by_operators_and_rejected_by_add_resource() {
    let mut agent = res("cpus:1");
    agent += Resource::new_scalar("cpus", f64::NAN);
    agent -= Resource::new_scalar("cpus", -5.0);
    assert_eq!(agent, res("cpus:1"));
    let err = agent
        .add_resource(&Resource::new_scalar("", 1.0))
        .unwrap_err();
    assert_eq!(err, ResourcesError::EmptyName);
}

// Roles and reservations.

#[test]
fn reservation_role_honours_both_formats() {
    let cpus = Resource::new_scalar("cpus", 1.0);
    assert_eq!(cpus.reservation_role(), "*");
    assert!(cpus.is_unreserved());
    let old = Resource {
        role: Some("ops".into()),
        ..cpus.clone()
    };
    assert_eq!(old.reservation_role(), "ops");
    assert!(old.is_reserved(Some("ops")));
    assert!(!old.is_reserved(Some("web")));
    assert!(!old.is_dynamically_reserved());
    let refined = cpus
        .with_reservation(ReservationInfo::new_static("eng"))
        .with_reservation(dynamic("eng/web"));
    assert_eq!(refined.reservation_role(), "eng/web");
    assert!(refined.is_reserved(None));
    assert!(refined.is_dynamically_reserved());
}

#[test]
fn the_deprecated_format_upgrades_to_the_reservation_stack() {
    let cpus = Resource::new_scalar("cpus", 1.0);
    let old_static = Resource {
        role: Some("ops".into()),
        ..cpus.clone()
    };
    let new_static = cpus
        .clone()
        .with_reservation(ReservationInfo::new_static("ops"));
    assert_eq!(single(old_static), single(new_static));
    let old_dynamic = Resource {
        role: Some("web".into()),
        reservation: Some(ReservationInfo {
            principal: Some("alice".into()),
            ..ReservationInfo::default()
        }),
        ..cpus.clone()
    };
    assert_eq!(
        single(old_dynamic),
        single(cpus.with_reservation(dynamic("web")))
    );
}

#[test]
fn allocatable_to_includes_ancestor_reservations_for_nested_roles() {
    let mut agent = res("cpus:1");
    for role in ["a", "a/b", "a/b/c", "a/bc", "x"] {
        agent += Resources::parse("cpus:1", role).unwrap();
    }
    let roles_of = |resources: Resources| -> Vec<String> {
        resources
            .iter()
            .map(|r| r.reservation_role().to_owned())
            .collect()
    };
    assert_eq!(
        roles_of(agent.allocatable_to("a/b/c")),
        ["*", "a", "a/b", "a/b/c"]
    );
    assert_eq!(roles_of(agent.allocatable_to("a/b")), ["*", "a", "a/b"]);
    assert_eq!(roles_of(agent.allocatable_to("a")), ["*", "a"]);
    assert_eq!(roles_of(agent.allocatable_to("y")), ["*"]);
    assert!(
        Resource::new_scalar("cpus", 1.0)
            .with_reservation(ReservationInfo::new_static("a"))
            .is_allocatable_to("a/b")
    );
}

#[test]
fn reserved_filters_by_exact_role() {
    let agent = res("cpus:1")
        + Resources::parse("cpus:2;mem:3", "a").unwrap()
        + Resources::parse("cpus:4", "a/b").unwrap();
    assert_eq!(
        agent.reserved("a"),
        Resources::parse("cpus:2;mem:3", "a").unwrap()
    );
    assert_eq!(agent.reserved_to_any().cpus(), Some(6.0));
    assert_eq!(agent.unreserved(), res("cpus:1"));
    let by_role = agent.reservations();
    assert_eq!(by_role.keys().collect::<Vec<_>>(), ["a", "a/b"]);
    assert_eq!(by_role["a/b"].cpus(), Some(4.0));
}

#[test]
fn role_subtrees_include_descendants_only() {
    let mut agent = res("cpus:1");
    for role in ["a", "a/b", "ab", "b"] {
        agent += Resources::parse("cpus:1", role).unwrap();
    }
    let subtree = agent.reserved_to_role_subtree("a");
    assert_eq!(subtree, agent.reserved("a") + agent.reserved("a/b"));
    let mut allocated = Resources::new();
    for role in ["a", "a/b", "ab"] {
        let mut part = Resources::parse("mem:1", role).unwrap();
        part.allocate(role);
        allocated += part;
    }
    assert_eq!(allocated.allocated_to_role_subtree("a").mem(), Some(2.0));
    assert_eq!(allocated.allocated_to_role_subtree("a/b").mem(), Some(1.0));
}

#[test]
fn flatten_drops_reservations_and_merges() {
    let agent = res("cpus:1") + Resources::parse("cpus:2;mem:3", "a").unwrap();
    let flat = agent.flatten();
    assert_eq!(flat, res("cpus:3;mem:3"));
    assert!(flat.reserved_to_any().is_empty());
}

#[test]
fn push_and_pop_reservation_reserve_and_unreserve() {
    let unreserved = res("cpus:2;ports:[1-5]");
    let reserved = unreserved.push_reservation(&dynamic("eng")).unwrap();
    assert_eq!(reserved.reserved("eng"), reserved);
    let refined = reserved.push_reservation(&dynamic("eng/web")).unwrap();
    assert_eq!(refined.reserved("eng/web").cpus(), Some(2.0));
    assert_eq!(refined.pop_reservation().unwrap(), reserved);
    assert_eq!(reserved.pop_reservation().unwrap(), unreserved);
}

#[test]
fn push_reservation_rejects_a_role_that_does_not_refine() {
    let reserved = res("cpus:2").push_reservation(&dynamic("eng")).unwrap();
    let err = reserved.push_reservation(&dynamic("ops")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reservation on resource 'cpus': role 'ops' is not a refinement of 'eng'"
    );
    let err = reserved
        .push_reservation(&ReservationInfo::new_static("eng/web"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reservation on resource 'cpus': a refined reservation must be DYNAMIC"
    );
}

#[test]
fn pop_reservation_fails_on_unreserved_resources() {
    let err = res("cpus:1").pop_reservation().unwrap_err();
    assert_eq!(err.to_string(), "resource 'cpus' has no reservation to pop");
}

#[test]
fn allocate_and_unallocate() {
    let mut offered = res("cpus:1") + Resources::parse("mem:5", "web").unwrap();
    offered.allocate("web");
    assert!(offered.iter().all(|r| r.allocation_role() == Some("web")));
    assert_eq!(offered.allocations()["web"], offered);
    offered.allocate("db");
    assert_eq!(offered.allocations().keys().collect::<Vec<_>>(), ["db"]);
    offered.unallocate();
    assert!(offered.allocations().is_empty());
    assert_eq!(
        offered,
        res("cpus:1") + Resources::parse("mem:5", "web").unwrap()
    );
}

#[test]
fn revocable_resources_are_a_separate_identity() {
    let revocable = Resource {
        revocable: Some(RevocableInfo {}),
        ..Resource::new_scalar("cpus", 1.0)
    };
    let agent = res("cpus:2") + single(revocable);
    assert_eq!(agent.len(), 2);
    assert_eq!(agent.revocable().cpus(), Some(1.0));
    assert_eq!(agent.non_revocable(), res("cpus:2"));
}

#[test]
fn disk_info_compares_by_content_not_key_order() {
    let disk = |json: &str| Resource {
        disk: Some(serde_json::from_str(json).unwrap()),
        ..Resource::new_scalar("disk", 10.0)
    };
    let a = single(disk(
        r#"{"persistence":{"id":"v1"},"volume":{"mode":"RW"}}"#,
    ));
    let b = single(disk(
        r#"{"volume":{"mode":"RW"},"persistence":{"id":"v1"}}"#,
    ));
    assert_eq!((a + b).len(), 1);
}

// Validation.

#[test]
fn validate_rejects_values_that_do_not_match_the_type() {
    let both = Resource {
        set: Some(Set::default()),
        ..Resource::new_scalar("cpus", 1.0)
    };
    assert_eq!(
        invalid(both),
        "resource 'cpus' of type SCALAR must set the matching value field and no other"
    );
    let text = Resource {
        value_type: ValueType::Text,
        ..Resource::default()
    };
    assert_eq!(
        invalid(Resource {
            name: "os".into(),
            ..text
        }),
        "resource 'os' has type TEXT, which resources do not support"
    );
    assert_eq!(
        invalid(Resource::new_scalar("", 1.0)),
        "resource name must not be empty"
    );
}

#[test]
fn validate_rejects_bad_scalars() {
    let cases = [
        (-1.0, "invalid scalar '-1': value must not be negative"),
        (f64::INFINITY, "invalid scalar 'inf': value must be finite"),
        (f64::NAN, "invalid scalar 'NaN': value must be finite"),
        (
            1.0000000000001e12,
            "invalid scalar '1000000000000.1': value exceeds the maximum of 1000000000000",
        ),
        (
            0.0001,
            "invalid scalar '0.0001': value rounds to zero at three decimal places",
        ),
    ];
    for (value, message) in cases {
        assert_eq!(invalid(Resource::new_scalar("cpus", value)), message);
    }
    assert_eq!(Resource::new_scalar("cpus", 0.0).validate(), Ok(()));
}

#[test]
fn validate_rejects_bad_ranges_and_sets() {
    assert_eq!(
        invalid(Resource::new_ranges("ports", [(5, 1)])),
        "invalid ranges '[5-1]': begin exceeds end"
    );
    assert_eq!(
        invalid(Resource::new_ranges("ports", [(10, 20), (1, 10)])),
        "invalid ranges '[10-20,1-10]': ranges overlap"
    );
    assert_eq!(
        Resource::new_ranges("ports", [(1, 9), (10, 20)]).validate(),
        Ok(())
    );
    assert_eq!(
        invalid(Resource::new_set("zones", ["a", "b", "a"])),
        "invalid set '{a,b,a}': items must be unique"
    );
}

#[test]
fn validate_checks_roles_and_reservations() {
    let cpus = Resource::new_scalar("cpus", 1.0);
    let bad_role = Resource {
        role: Some("a//b".into()),
        ..cpus.clone()
    };
    assert_eq!(
        invalid(bad_role),
        "invalid reservation on resource 'cpus': invalid role 'a//b': roles must not contain an \
         empty component ('//')"
    );
    let star = cpus
        .clone()
        .with_reservation(ReservationInfo::new_static("*"));
    assert_eq!(
        invalid(star),
        "invalid reservation on resource 'cpus': role '*' cannot be reserved"
    );
    let untyped = cpus.clone().with_reservation(ReservationInfo {
        role: Some("a".into()),
        ..ReservationInfo::default()
    });
    assert_eq!(
        invalid(untyped),
        "invalid reservation on resource 'cpus': every reservation must set 'type'"
    );
    let mismatch = Resource {
        role: Some("b".into()),
        ..cpus
            .clone()
            .with_reservation(ReservationInfo::new_static("a"))
    };
    assert_eq!(
        invalid(mismatch),
        "invalid reservation on resource 'cpus': 'role' is 'b' but the reservation is for 'a'"
    );
    let dynamic_star = Resource {
        reservation: Some(ReservationInfo::default()),
        ..cpus.clone()
    };
    assert_eq!(
        invalid(dynamic_star),
        "invalid reservation on resource 'cpus': role '*' cannot be dynamically reserved"
    );
    assert_eq!(
        invalid(cpus.with_allocation("a/")),
        "invalid role 'a/': roles must not start or end with '/'"
    );
}

#[test]
fn validate_checks_disk_and_shared_metadata() {
    let disk_on_cpus = Resource {
        disk: Some(serde_json::json!({})),
        ..Resource::new_scalar("cpus", 1.0)
    };
    assert_eq!(
        invalid(disk_on_cpus),
        "invalid resource 'cpus': only 'disk' resources may set 'disk'"
    );
    let shared_disk = Resource {
        shared: Some(SharedInfo {}),
        ..Resource::new_scalar("disk", 1.0)
    };
    assert_eq!(
        invalid(shared_disk.clone()),
        "invalid resource 'disk': only persistent volumes may be shared"
    );
    let volume = Resource {
        disk: Some(serde_json::json!({"persistence": {"id": "v1"}})),
        ..shared_disk
    };
    assert_eq!(volume.validate(), Ok(()));
}

// Text syntax.

#[test]
fn parse_reads_the_agent_flag_syntax() {
    let agent = res("cpus:4;mem:8192;disk:10000;ports:[31000-32000,33000-33100];zones:{a,b}");
    assert_eq!(agent.cpus(), Some(4.0));
    assert_eq!(agent.mem(), Some(8192.0));
    assert_eq!(agent.disk(), Some(10000.0));
    assert_eq!(
        agent.ports().unwrap().to_string(),
        "[31000-32000,33000-33100]"
    );
    assert_eq!(agent.set("zones").unwrap().to_string(), "{a,b}");
    assert_eq!(
        agent.names().into_iter().collect::<Vec<_>>(),
        ["cpus", "disk", "mem", "ports", "zones"]
    );
}

#[test]
fn parse_tolerates_whitespace_and_empty_tokens() {
    assert_eq!(
        res(" cpus : 2 ; ; ports:[ 1 - 2 , 4-5 ]; zones: { a , b } ;"),
        res("cpus:2;ports:[1-2,4-5];zones:{a,b}")
    );
    assert!(res("").is_empty());
}

#[test]
fn parse_applies_static_and_default_roles() {
    let agent = Resources::parse("cpus(ops):2;cpus:1;mem(*):5", "web").unwrap();
    assert_eq!(agent.reserved("ops").cpus(), Some(2.0));
    assert_eq!(agent.reserved("web").cpus(), Some(1.0));
    assert_eq!(agent.unreserved(), res("mem:5"));
    let reservation = &agent.reserved("ops").iter().next().unwrap().reservations;
    assert_eq!(reservation, &[ReservationInfo::new_static("ops")]);
}

#[test]
fn parse_reports_what_is_wrong() {
    let cases = [
        ("ports:[5-1]", "invalid ranges '[5-1]': begin exceeds end"),
        (
            "ports:[1-2",
            "invalid ranges '[1-2': expected '[begin-end,...]'",
        ),
        (
            "ports:[1,2]",
            "invalid ranges '[1,2]': expected 'begin-end'",
        ),
        (
            "ports:[a-2]",
            "invalid ranges '[a-2]': bounds must be non-negative integers",
        ),
        ("zones:{a", "invalid set '{a': expected '{item,...}'"),
        ("zones:{a,a}", "invalid set '{a,a}': items must be unique"),
        ("cpus:four", "invalid scalar 'four': expected a number"),
        ("cpus:-1", "invalid scalar '-1': value must not be negative"),
        ("cpus:nan", "invalid scalar 'NaN': value must be finite"),
        ("cpus", "invalid resource 'cpus': expected 'name:value'"),
        (
            "cpus:1:2",
            "invalid resource 'cpus:1:2': expected exactly one ':'",
        ),
        (
            "cpus(ops:1",
            "invalid resource 'cpus(ops:1': expected 'name' or 'name(role)' before ':'",
        ),
        (":1", "resource name must not be empty"),
        (
            "cpus(a b):1",
            "invalid reservation on resource 'cpus': invalid role 'a b': roles must not contain \
             whitespace or control characters",
        ),
        (
            "gpus:1;gpus:{a}",
            "resource 'gpus' is given with more than one type",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(parse_err(text), message, "{text}");
    }
    assert_eq!(
        Resources::parse("cpus:1", "-x").unwrap_err().to_string(),
        "invalid role '-x': role components must not start with '-'"
    );
}

#[test]
fn parse_reads_a_json_array() {
    let json = r#"[
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 5}, "role": "*"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 9}]},
         "reservations": [{"type": "STATIC", "role": "ops"}]}
    ]"#;
    let parsed = Resources::parse(json, "web").unwrap();
    let expected = Resources::parse("cpus(web):2;mem:5;ports(ops):[1-9]", "*").unwrap();
    assert_eq!(parsed, expected);
    assert!(parse_err("[{").starts_with("invalid resources JSON: "));
    assert_eq!(
        parse_err(r#"[{"name":"cpus","type":"SCALAR"}]"#),
        "resource 'cpus' of type SCALAR must set the matching value field and no other"
    );
}

#[test]
fn display_prints_the_text_syntax() {
    let agent = Resources::parse(
        "cpus:4;mem:0.5;ports:[1-2,4-4];zones:{b,a};disk(ops):1",
        "*",
    )
    .unwrap();
    expect!["cpus:4;disk(ops):1;mem:0.5;ports:[1-2,4-4];zones:{a,b}"].assert_eq(&agent.to_string());
    assert_eq!(Resources::new().to_string(), "");
}

#[test]
fn display_falls_back_to_json_for_what_text_cannot_say() {
    let reserved = res("cpus:1").push_reservation(&dynamic("web")).unwrap();
    let shown = reserved.to_string();
    let expected = serde_json::json!([{
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 1.0},
        "role": "web",
        "reservation": {"principal": "alice"},
        "reservations": [{"type": "DYNAMIC", "role": "web", "principal": "alice"}],
    }]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&shown).unwrap(),
        expected
    );
    assert_eq!(Resources::parse(&shown, "*").unwrap(), reserved);
    let odd_item = single(Resource::new_set("zones", ["a:b"]));
    assert_eq!(
        Resources::parse(&odd_item.to_string(), "*").unwrap(),
        odd_item
    );
}

#[test]
fn agent_resources_must_be_static() {
    assert_eq!(res("cpus:1;ports:[1-2]").validate_agent_resources(), Ok(()));
    assert_eq!(
        Resources::parse("cpus:1", "ops")
            .unwrap()
            .validate_agent_resources(),
        Ok(())
    );
    let reserved = res("cpus:1").push_reservation(&dynamic("web")).unwrap();
    assert_eq!(
        reserved.validate_agent_resources().unwrap_err().to_string(),
        "invalid resource 'cpus': agents cannot start with dynamic reservations"
    );
    let mut allocated = res("cpus:1");
    allocated.allocate("web");
    assert!(allocated.validate_agent_resources().is_err());
    let volume = Resource {
        disk: Some(serde_json::json!({"persistence": {"id": "v1"}})),
        ..Resource::new_scalar("disk", 1.0)
    };
    assert!(single(volume).validate_agent_resources().is_err());
}

#[test]
fn a_single_resource_displays_like_resources() {
    let ports = Resource::new_ranges("ports", [(1, 2)])
        .with_reservation(ReservationInfo::new_static("ops"));
    assert_eq!(ports.to_string(), "ports(ops):[1-2]");
    let invalid = Resource::new_scalar("cpus", -1.0);
    assert_eq!(
        invalid.to_string(),
        r#"{"name":"cpus","type":"SCALAR","scalar":{"value":-1.0}}"#
    );
}

// Wire form.

#[test]
fn serialises_as_the_mesos_json_array() {
    let json = serde_json::to_string(&res("cpus:1")).unwrap();
    assert_eq!(
        json,
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1.0},"role":"*"}]"#
    );
    let refined = res("cpus:0.5")
        .push_reservation(&ReservationInfo::new_static("eng"))
        .and_then(|r| r.push_reservation(&dynamic("eng/web")))
        .unwrap();
    // Refined reservations have no deprecated form, so `role` and `reservation` stay unset.
    let expected = serde_json::json!([{
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 0.5},
        "reservations": [
            {"type": "STATIC", "role": "eng"},
            {"type": "DYNAMIC", "role": "eng/web", "principal": "alice"},
        ],
    }]);
    assert_eq!(serde_json::to_value(&refined).unwrap(), expected);
}

#[test]
fn deserialising_validates() {
    let err = serde_json::from_str::<Resources>(
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid scalar '-1': value must not be negative"
    );
    let ok: Resources =
        serde_json::from_str(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}}]"#)
            .unwrap();
    assert_eq!(ok, res("cpus:0.1"));
}

#[test]
fn messagepack_round_trip() {
    let agent = res("cpus:0.3;ports:[1-5];zones:{a}") + Resources::parse("mem:1", "ops").unwrap();
    let bytes = rmp_serde::to_vec_named(&agent).unwrap();
    assert_eq!(rmp_serde::from_slice::<Resources>(&bytes).unwrap(), agent);
}

// Accessors.

#[test]
fn accessors_sum_across_identities() {
    let agent = res("cpus:1;ports:[1-2];zones:{a}")
        + Resources::parse("cpus:2;ports:[3-4];zones:{b}", "ops").unwrap();
    assert_eq!(agent.cpus(), Some(3.0));
    assert_eq!(agent.scalar_milli("cpus"), Some(Milli::from_milli(3000)));
    assert_eq!(agent.ports().unwrap().range, [Range { begin: 1, end: 4 }]);
    assert_eq!(agent.set("zones").unwrap().item, ["a", "b"]);
    assert_eq!(agent.gpus(), None);
    assert_eq!(
        agent.scalars(),
        res("cpus:1") + Resources::parse("cpus:2", "ops").unwrap()
    );
    assert_eq!(agent.scalar_quantities(), res("cpus:3"));
}

#[test]
fn dominant_share_is_the_largest_scalar_fraction() {
    let total = res("cpus:10;mem:1000;ports:[1-100]");
    assert_eq!(res("cpus:1;mem:300").dominant_share(&total), 0.3);
    assert_eq!(res("cpus:5;gpus:1").dominant_share(&total), 0.5);
    assert_eq!(Resources::new().dominant_share(&total), 0.0);
    assert_eq!(res("cpus:1").dominant_share(&Resources::new()), 0.0);
}

#[test]
fn ranges_count_and_contain() {
    let ports = res("ports:[1-3,10-10]").ports().unwrap();
    assert_eq!(ports.count(), 4);
    assert!(ports.contains(10));
    assert!(!ports.contains(4));
}

// Compact storage.

#[test]
fn storage_is_exact_and_empty_holds_no_allocation() {
    let task = res("cpus:0.1;mem:64");
    assert_eq!(task.entries.capacity(), 2);
    let mut grown = task.clone();
    grown += res("disk:10;mem:1");
    assert_eq!(grown.entries.capacity(), 3);
    assert_eq!(grown.to_string(), "cpus:0.1;disk:10;mem:65");

    let emptied = &task - &task;
    assert!(emptied.is_empty());
    assert_eq!(emptied.entries.capacity(), 0);
    let mut emptied = task.clone();
    emptied -= &Resource::new_scalar("cpus", 0.1);
    emptied -= &Resource::new_scalar("mem", 64.0);
    assert_eq!(emptied.entries.capacity(), 0);
    assert_eq!(task.filter(|_| false).entries.capacity(), 0);
    assert!(std::mem::size_of::<Identity>() <= 64);
}

#[test]
fn identity_order_is_that_of_the_inline_fields() {
    let base = Resource::new_scalar("disk", 1.0);
    let resources = [
        base.clone(),
        Resource::new_scalar("cpus", 1.0),
        base.clone().with_allocation("a"),
        base.clone().with_allocation("b"),
        base.clone().with_reservation(dynamic("a")),
        base.clone()
            .with_reservation(dynamic("a"))
            .with_allocation("a"),
        base.clone()
            .with_reservation(ReservationInfo::new_static("a")),
        Resource {
            revocable: Some(RevocableInfo {}),
            ..base.clone()
        },
        Resource {
            revocable: Some(RevocableInfo {}),
            ..base.clone().with_allocation("a")
        },
        Resource {
            provider_id: Some(ResourceProviderId {
                value: "p".to_owned(),
            }),
            ..base.clone()
        },
        Resource {
            disk: Some(serde_json::json!({"persistence": {"id": "v"}})),
            ..base.clone().with_reservation(dynamic("a"))
        },
        Resource {
            disk: Some(serde_json::json!({"persistence": {"id": "v"}})),
            shared: Some(SharedInfo {}),
            ..base.clone().with_reservation(dynamic("a"))
        },
    ];
    let inline = |identity: &Identity| {
        (
            identity.name.to_string(),
            identity.value_type,
            identity.reservations().to_vec(),
            identity.allocation_info.clone(),
            identity.revocable().cloned(),
            identity.shared().cloned(),
            identity.provider_id().cloned(),
            identity.disk().cloned(),
        )
    };
    let identities: Vec<Identity> = resources.iter().map(Identity::of).collect();
    for left in &identities {
        assert_eq!(
            left.extra.is_none(),
            left.reservations().is_empty()
                && left.revocable().is_none()
                && left.shared().is_none()
                && left.provider_id().is_none()
                && left.disk().is_none()
        );
        for right in &identities {
            assert_eq!(left.cmp(right), inline(left).cmp(&inline(right)));
            assert_eq!(left == right, inline(left) == inline(right));
        }
    }
    let mut all = Resources::new();
    for resource in &resources {
        all += resource;
    }
    let keys: Vec<_> = all
        .entries
        .iter()
        .map(|(identity, _)| inline(identity))
        .collect();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
}
