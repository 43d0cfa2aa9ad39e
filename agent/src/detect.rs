//! What the agent reports about its machine: resources (cpus, mem, disk, ports), attributes,
//! boot ID and hostname.
//!
//! Resources follow Mesos (`Containerizer::resources` in
//! `src/slave/containerizer/containerizer.cpp`): every resource named in `--resources` is taken
//! from there (even as 0, which leaves the agent without it), and the four standard ones that are
//! not named are detected: cpus from the CPUs this process may run on, mem from the total memory
//! less a reserve for the system (1 GiB, or half when there are less than 2 GiB), disk from the
//! size of the work dir's file system less a reserve (5 GiB, or half below 10 GiB), and ports
//! `[31000-32000]`. Memory and disk are whole MiB, truncated. When detection fails, the agent
//! warns and uses Mesos's defaults (1 cpu, 1 GiB, 10 GiB).
//!
//! The arithmetic lives in pure functions ([`agent_resources`], [`usable_mem_mib`],
//! [`usable_disk_mib`]) fed with [`MachineFacts`], so it is tested on fixed numbers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata_protocol::mesos::{Attribute, Text};
use strata_protocol::resources::{Range, Ranges, ResourcesError, Scalar, Set, ValueType};
use strata_protocol::{Resource, Resources};
use tracing::warn;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// The ports offered when `--resources` names none.
pub const DEFAULT_PORTS: &str = "[31000-32000]";
/// The cpus used when they cannot be detected.
pub const DEFAULT_CPUS: u64 = 1;
/// The memory used, as is, when it cannot be detected.
pub const DEFAULT_MEM_BYTES: u64 = GIB;
/// The disk used, as is, when it cannot be detected.
pub const DEFAULT_DISK_BYTES: u64 = 10 * GIB;

const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
const HOSTNAME_PATH: &str = "/proc/sys/kernel/hostname";
const MEMINFO_PATH: &str = "/proc/meminfo";

/// Why the machine's description could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("invalid --resources: {0}")]
    Resources(#[from] ResourcesError),
    #[error("invalid attribute '{token}': {reason}")]
    Attribute { token: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no boot ID")]
    EmptyBootId { path: PathBuf },
}

/// The raw numbers detection reads from the machine; `None` where reading failed (or was not
/// needed because `--resources` names the resource).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineFacts {
    /// CPUs this process may run on.
    pub cpus: Option<u64>,
    /// Total memory, in bytes.
    pub mem_total_bytes: Option<u64>,
    /// Size of the file system holding the work dir, in bytes.
    pub disk_total_bytes: Option<u64>,
}

/// Returns the memory, in MiB, offered out of `total_bytes`: all but 1 GiB, or half when there
/// are less than 2 GiB.
pub fn usable_mem_mib(total_bytes: u64) -> u64 {
    let usable = if total_bytes >= 2 * GIB {
        total_bytes - GIB
    } else {
        total_bytes / 2
    };
    usable / MIB
}

/// Returns the disk, in MiB, offered out of a file system of `total_bytes`: all but 5 GiB, or
/// half when it is smaller than 10 GiB.
pub fn usable_disk_mib(total_bytes: u64) -> u64 {
    let usable = if total_bytes >= 10 * GIB {
        total_bytes - 5 * GIB
    } else {
        total_bytes / 2
    };
    usable / MIB
}

/// Builds the agent's resources from `overrides` (the `--resources` text or JSON) and, for the
/// standard resources it does not name, from `facts`.
pub fn agent_resources(
    facts: &MachineFacts,
    overrides: Option<&str>,
) -> Result<Resources, DetectError> {
    let text = overrides.unwrap_or("");
    let mut resources = Resources::parse(text, "*")?;
    let given = named_resources(text)?;
    let mut add_missing = |name: &str, resource: Resource| -> Result<(), DetectError> {
        if !given.contains(name) {
            resources.add_resource(&resource)?;
        }
        Ok(())
    };
    let cpus = facts.cpus.unwrap_or(DEFAULT_CPUS);
    add_missing("cpus", Resource::new_scalar("cpus", cpus as f64))?;
    let mem_mib = facts
        .mem_total_bytes
        .map_or(DEFAULT_MEM_BYTES / MIB, usable_mem_mib);
    add_missing("mem", Resource::new_scalar("mem", mem_mib as f64))?;
    let disk_mib = facts
        .disk_total_bytes
        .map_or(DEFAULT_DISK_BYTES / MIB, usable_disk_mib);
    add_missing("disk", Resource::new_scalar("disk", disk_mib as f64))?;
    let ports = Resources::parse(&format!("ports:{DEFAULT_PORTS}"), "*")?;
    if !given.contains("ports") {
        resources += &ports;
    }
    resources.validate_agent_resources()?;
    Ok(resources)
}

/// Returns the names `text` mentions, including those given as 0, which `Resources` drops but
/// which still stop detection (`cpus:0` means no cpus, as in Mesos). `text` has already parsed.
fn named_resources(text: &str) -> Result<BTreeSet<String>, DetectError> {
    if text.trim_start().starts_with('[') {
        let resources: Vec<Resource> =
            serde_json::from_str(text).map_err(|err| ResourcesError::Json(err.to_string()))?;
        return Ok(resources.into_iter().map(|r| r.name).collect());
    }
    let names = text
        .split(';')
        .filter_map(|token| token.split_once(':'))
        .map(|(key, _)| key.split('(').next().unwrap_or(key).trim().to_owned())
        .collect();
    Ok(names)
}

/// Detects the agent's resources on this machine, with `overrides` (the `--resources` flag)
/// taking precedence; see the module docs for the rules.
pub fn detect_resources(
    work_dir: &Path,
    overrides: Option<&str>,
) -> Result<Resources, DetectError> {
    // Validating first means a bad flag is reported as such, before any probing.
    let text = overrides.unwrap_or("");
    Resources::parse(text, "*")?;
    let given = named_resources(text)?;
    let facts = MachineFacts {
        cpus: (!given.contains("cpus")).then(detect_cpus).flatten(),
        mem_total_bytes: (!given.contains("mem")).then(detect_mem_total).flatten(),
        disk_total_bytes: (!given.contains("disk"))
            .then(|| detect_disk_total(work_dir))
            .flatten(),
    };
    agent_resources(&facts, overrides)
}

fn detect_cpus() -> Option<u64> {
    match std::thread::available_parallelism() {
        Ok(n) => Some(n.get() as u64),
        Err(err) => {
            warn!(error = %err, default = DEFAULT_CPUS, "cannot detect the number of cpus");
            None
        }
    }
}

fn detect_mem_total() -> Option<u64> {
    let total = std::fs::read_to_string(MEMINFO_PATH)
        .map_err(|err| err.to_string())
        .and_then(|text| parse_meminfo_total(&text).ok_or_else(|| "no MemTotal line".to_owned()));
    match total {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            warn!(
                %error,
                path = MEMINFO_PATH,
                default_bytes = DEFAULT_MEM_BYTES,
                "cannot detect the memory size"
            );
            None
        }
    }
}

/// Returns `MemTotal` from the text of `/proc/meminfo`, in bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// Returns the size of the file system holding `work_dir`, or of its nearest existing ancestor
/// when the work dir is not created yet: that is where it will live.
fn detect_disk_total(work_dir: &Path) -> Option<u64> {
    let existing = work_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match rustix::fs::statvfs(existing) {
        Ok(stat) => Some(stat.f_frsize.saturating_mul(stat.f_blocks)),
        Err(err) => {
            warn!(
                error = %err,
                path = %existing.display(),
                default_bytes = DEFAULT_DISK_BYTES,
                "cannot detect the disk size"
            );
            None
        }
    }
}

/// Parses `--attributes`: `;`- or newline-separated `name:value` pairs. As in Mesos
/// (`src/common/attributes.cpp`, `src/common/values.cpp`), spaces inside a value are removed and
/// a value is RANGES when it starts with `[` (`[1-2,5-6]`), SET when it starts with `{`
/// (`{a,b}`, which Mesos refuses for attributes), SCALAR when it is a non-negative number, and
/// TEXT otherwise.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, DetectError> {
    text.split([';', '\n'])
        .filter(|token| !token.trim().is_empty())
        .map(parse_attribute)
        .collect()
}

fn parse_attribute(token: &str) -> Result<Attribute, DetectError> {
    let error = |reason: &str| DetectError::Attribute {
        token: token.trim().to_owned(),
        reason: reason.to_owned(),
    };
    let (name, value) = token
        .split_once(':')
        .ok_or_else(|| error("expected 'name:value'"))?;
    let name = name.trim();
    let value = value.replace(' ', "");
    let value = value.trim();
    if name.is_empty() || value.is_empty() {
        return Err(error(
            "expected 'name:value' with a non-empty name and value",
        ));
    }
    let mut attribute = Attribute {
        name: name.to_owned(),
        value_type: ValueType::Text,
        scalar: None,
        ranges: None,
        set: None,
        text: None,
    };
    if !brackets_match(value) {
        return Err(error("mismatched brackets"));
    }
    if value.starts_with('[') {
        attribute.value_type = ValueType::Ranges;
        attribute.ranges = Some(parse_ranges(value).map_err(error)?);
    } else if value.contains('[') {
        return Err(error("unexpected '[' inside the value"));
    } else if value.starts_with('{') {
        attribute.value_type = ValueType::Set;
        let item = value
            .split(['{', '}', ','])
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect();
        attribute.set = Some(Set { item });
    } else if value.contains('{') {
        return Err(error("unexpected '{' inside the value"));
    } else {
        match value.parse::<f64>() {
            Ok(number) if number.is_subnormal() => {
                return Err(error("subnormal numbers are not supported"));
            }
            Ok(number) if number.is_finite() && number >= 0.0 => {
                attribute.value_type = ValueType::Scalar;
                attribute.scalar = Some(Scalar { value: number });
            }
            // Negative numbers, infinities and non-numbers are text, as in Mesos.
            _ => {
                attribute.text = Some(Text {
                    value: value.to_owned(),
                });
            }
        }
    }
    Ok(attribute)
}

/// Tells whether every kind of bracket is balanced and never closed before it is opened.
fn brackets_match(value: &str) -> bool {
    [('[', ']'), ('{', '}'), ('(', ')')]
        .iter()
        .all(|&(open, close)| {
            let mut depth = 0i64;
            for c in value.chars() {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
            }
            depth == 0
        })
}

/// Parses `[b-e,...]` into sorted, merged ranges.
fn parse_ranges(value: &str) -> Result<Ranges, &'static str> {
    let bounds: Vec<&str> = value
        .split(['[', ']', '-', ','])
        .filter(|bound| !bound.is_empty())
        .collect();
    if bounds.is_empty() || !bounds.len().is_multiple_of(2) {
        return Err("expected one or more ranges 'begin-end'");
    }
    let mut ranges = Vec::with_capacity(bounds.len() / 2);
    for pair in bounds.chunks(2) {
        let (Ok(begin), Ok(end)) = (pair[0].parse::<u64>(), pair[1].parse::<u64>()) else {
            return Err("range bounds must be non-negative integers");
        };
        if begin > end {
            return Err("a range's begin exceeds its end");
        }
        ranges.push(Range { begin, end });
    }
    ranges.sort();
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.begin <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    Ok(Ranges { range: merged })
}

/// Returns this boot's ID (`/proc/sys/kernel/random/boot_id`); a different one at the next start
/// means the machine rebooted and no checkpointed process survived.
pub fn boot_id() -> Result<String, DetectError> {
    let path = PathBuf::from(BOOT_ID_PATH);
    let text = std::fs::read_to_string(&path).map_err(|source| DetectError::Io {
        path: path.clone(),
        source,
    })?;
    let id = text.trim();
    if id.is_empty() {
        return Err(DetectError::EmptyBootId { path });
    }
    Ok(id.to_owned())
}

/// Returns the machine's host name, or `localhost` when it cannot be read.
pub fn hostname() -> String {
    match std::fs::read_to_string(HOSTNAME_PATH) {
        Ok(name) if !name.trim().is_empty() => name.trim().to_owned(),
        Ok(_) => {
            warn!(
                path = HOSTNAME_PATH,
                "the host name is empty; using localhost"
            );
            "localhost".to_owned()
        }
        Err(err) => {
            warn!(error = %err, path = HOSTNAME_PATH, "cannot read the host name; using localhost");
            "localhost".to_owned()
        }
    }
}
