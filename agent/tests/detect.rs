//! The agent's description of its machine: resource arithmetic on fixed numbers, `--resources`
//! overrides, attribute parsing, and the boot ID and host name of the machine running the test.

use strata_agent::detect::{
    DetectError, MachineFacts, agent_resources, boot_id, detect_resources, hostname,
    parse_attributes, parse_meminfo_total, usable_disk_mib, usable_mem_mib,
};
use strata_protocol::Resources;
use strata_protocol::resources::{Range, ValueType};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn facts(cpus: u64, mem_gib: u64, disk_gib: u64) -> MachineFacts {
    MachineFacts {
        cpus: Some(cpus),
        mem_total_bytes: Some(mem_gib * GIB),
        disk_total_bytes: Some(disk_gib * GIB),
    }
}

fn parse(text: &str) -> Resources {
    Resources::parse(text, "*").unwrap()
}

#[test]
fn memory_keeps_one_gib_for_the_system_or_half_of_a_small_machine() {
    assert_eq!(usable_mem_mib(16 * GIB), 15 * 1024);
    assert_eq!(usable_mem_mib(2 * GIB), 1024);
    // Just under 2 GiB: half, not total less 1 GiB.
    assert_eq!(usable_mem_mib(2 * GIB - MIB), (2 * 1024 - 1) / 2);
    assert_eq!(usable_mem_mib(GIB), 512);
    // Whole MiB, truncated.
    assert_eq!(usable_mem_mib(4 * GIB + MIB - 1), 3 * 1024);
    assert_eq!(usable_mem_mib(0), 0);
}

#[test]
fn disk_keeps_five_gib_for_the_system_or_half_of_a_small_file_system() {
    assert_eq!(usable_disk_mib(100 * GIB), 95 * 1024);
    assert_eq!(usable_disk_mib(10 * GIB), 5 * 1024);
    assert_eq!(usable_disk_mib(10 * GIB - MIB), (10 * 1024 - 1) / 2);
    assert_eq!(usable_disk_mib(4 * GIB), 2 * 1024);
    assert_eq!(usable_disk_mib(0), 0);
}

#[test]
fn detected_resources_are_cpus_mem_disk_and_the_default_ports() {
    let resources = agent_resources(&facts(8, 32, 200), None).unwrap();
    assert_eq!(
        resources,
        parse("cpus:8;mem:31744;disk:199680;ports:[31000-32000]")
    );
}

#[test]
fn undetectable_resources_fall_back_to_the_mesos_defaults() {
    let resources = agent_resources(&MachineFacts::default(), None).unwrap();
    assert_eq!(
        resources,
        parse("cpus:1;mem:1024;disk:10240;ports:[31000-32000]")
    );
}

#[test]
fn a_resource_named_in_the_flag_replaces_the_detected_one_and_others_stay() {
    let resources = agent_resources(&facts(8, 32, 200), Some("cpus:2;ports:[5000-5010]")).unwrap();
    assert_eq!(
        resources,
        parse("cpus:2;mem:31744;disk:199680;ports:[5000-5010]")
    );
}

#[test]
fn custom_resources_are_added_to_the_detected_ones() {
    let resources = agent_resources(&facts(4, 8, 50), Some("gpus:2;zones:{a,b}")).unwrap();
    assert_eq!(
        resources,
        parse("cpus:4;mem:7168;disk:46080;ports:[31000-32000];gpus:2;zones:{a,b}")
    );
}

#[test]
fn a_resource_given_as_zero_is_not_detected_again() {
    let resources = agent_resources(&facts(4, 8, 50), Some("disk:0")).unwrap();
    assert_eq!(resources.disk(), None);
    assert_eq!(resources.cpus(), Some(4.0));
}

#[test]
fn a_resource_reserved_to_a_role_in_the_flag_counts_as_named() {
    let resources = agent_resources(&facts(8, 32, 200), Some("cpus(ops):2;mem(ops):1024")).unwrap();
    assert_eq!(resources.cpus(), Some(2.0));
    assert_eq!(
        resources.reserved("ops"),
        parse("cpus(ops):2;mem(ops):1024")
    );
    assert_eq!(resources.mem(), Some(1024.0));
    assert_eq!(resources.disk(), Some(199680.0));
}

#[test]
fn json_overrides_work_like_text() {
    let json = r#"[{"name":"mem","type":"SCALAR","scalar":{"value":2048}}]"#;
    let resources = agent_resources(&facts(2, 8, 50), Some(json)).unwrap();
    assert_eq!(
        resources,
        parse("cpus:2;mem:2048;disk:46080;ports:[31000-32000]")
    );
}

#[test]
fn bad_resource_flags_say_what_is_wrong() {
    let cases = [
        ("cpus:four", "invalid --resources: invalid scalar 'four'"),
        ("cpus", "invalid --resources: invalid resource 'cpus'"),
        ("ports:[5-1]", "begin exceeds end"),
        ("cpus:1;cpus:{a}", "more than one type"),
    ];
    for (text, expected) in cases {
        let err = agent_resources(&facts(1, 4, 20), Some(text)).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{text:?} gave {err}, expected it to mention {expected:?}"
        );
    }
}

#[test]
fn meminfo_total_is_read_in_bytes() {
    let meminfo = "MemTotal:       16318504 kB\nMemFree:         1234 kB\n";
    assert_eq!(parse_meminfo_total(meminfo), Some(16318504 * 1024));
    assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    assert_eq!(parse_meminfo_total("MemTotal: lots kB\n"), None);
}

#[test]
fn detection_on_this_machine_reports_what_the_machine_has() {
    let dir = tempfile::tempdir().unwrap();
    let resources = detect_resources(dir.path(), None).unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    assert_eq!(resources.cpus(), Some(cpus));
    assert!(resources.mem().unwrap() > 0.0);
    assert!(resources.disk().unwrap() > 0.0);
    assert_eq!(
        resources.ports().unwrap().range,
        [Range {
            begin: 31000,
            end: 32000
        }]
    );
    // A work dir that does not exist yet is measured on the file system it will be created on.
    let missing = dir.path().join("not/yet/created");
    let later = detect_resources(&missing, Some("cpus:1;mem:1")).unwrap();
    assert_eq!(later.disk(), resources.disk());
}

#[test]
fn a_bad_flag_is_reported_before_any_detection() {
    let err = detect_resources(std::path::Path::new("/nonexistent"), Some("mem:x")).unwrap_err();
    assert!(matches!(err, DetectError::Resources(_)), "{err}");
}

#[test]
fn attributes_take_the_type_their_value_looks_like() {
    let attributes = parse_attributes("rack:r1;zone:a;level:3;ports:[1-2];set:{a,b}").unwrap();
    let summary: Vec<(&str, ValueType)> = attributes
        .iter()
        .map(|a| (a.name.as_str(), a.value_type))
        .collect();
    assert_eq!(
        summary,
        [
            ("rack", ValueType::Text),
            ("zone", ValueType::Text),
            ("level", ValueType::Scalar),
            ("ports", ValueType::Ranges),
            ("set", ValueType::Set),
        ]
    );
    assert_eq!(attributes[0].text.as_ref().unwrap().value, "r1");
    assert_eq!(attributes[2].scalar.unwrap().value, 3.0);
    assert_eq!(
        attributes[3].ranges.as_ref().unwrap().range,
        [Range { begin: 1, end: 2 }]
    );
    assert_eq!(attributes[4].set.as_ref().unwrap().item, ["a", "b"]);
    for attribute in &attributes {
        let fields = [
            attribute.scalar.is_some(),
            attribute.ranges.is_some(),
            attribute.set.is_some(),
            attribute.text.is_some(),
        ];
        assert_eq!(
            fields.iter().filter(|set| **set).count(),
            1,
            "{attribute:?}"
        );
    }
}

#[test]
fn attribute_values_follow_the_mesos_rules() {
    let attributes =
        parse_attributes("os: linux ;\nneg:-1;ratio:0.5;ranges:[5-6, 1-2,3-4];url:http://x")
            .unwrap();
    let os = &attributes[0];
    assert_eq!(
        (os.name.as_str(), os.text.as_ref().unwrap().value.as_str()),
        ("os", "linux")
    );
    // Negative numbers are text, not scalars.
    assert_eq!(attributes[1].value_type, ValueType::Text);
    assert_eq!(attributes[1].text.as_ref().unwrap().value, "-1");
    assert_eq!(attributes[2].scalar.unwrap().value, 0.5);
    // Ranges are sorted and adjacent ones merged.
    assert_eq!(
        attributes[3].ranges.as_ref().unwrap().range,
        [Range { begin: 1, end: 6 }]
    );
    // Only the first ':' separates the name from the value.
    assert_eq!(attributes[4].text.as_ref().unwrap().value, "http://x");
    assert!(parse_attributes("").unwrap().is_empty());
    assert!(parse_attributes(";;\n").unwrap().is_empty());
}

#[test]
fn bad_attributes_name_the_token_and_the_reason() {
    let cases = [
        ("rack", "invalid attribute 'rack': expected 'name:value'"),
        (":r1", "non-empty name and value"),
        ("rack:", "non-empty name and value"),
        ("ports:[1-2", "mismatched brackets"),
        ("ports:[1-2,3]", "one or more ranges"),
        ("ports:[a-b]", "non-negative integers"),
        ("ports:[9-1]", "begin exceeds its end"),
        ("x:a[1-2]", "unexpected '['"),
        ("x:a{b}", "unexpected '{'"),
    ];
    for (text, expected) in cases {
        let err = parse_attributes(&format!("zone:a;{text}")).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{text:?} gave {err}, expected it to mention {expected:?}"
        );
    }
}

#[test]
fn the_boot_id_is_this_boots_uuid() {
    let id = boot_id().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");
    assert_eq!(boot_id().unwrap(), id);
}

#[test]
fn the_hostname_is_the_kernels() {
    let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hostname(), expected.trim());
}
