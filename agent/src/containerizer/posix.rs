//! The posix containerizer: plain processes in their own process group, without isolation.
//!
//! Limits are not enforced. Usage is summed from `/proc` over the processes of the container's
//! process group, as Mesos's `posix/cpu` and `posix/mem` isolators do over the process tree.
//! Signals reach the leader's process group and the groups of its descendants at that moment
//! (the command executor runs its task in a group of its own); a process that has left the
//! tree (daemonized) escapes `destroy`. Use the cgroups containerizer where that matters.

use std::fs;
use std::sync::Arc;

use rustix::process::{Pid, Signal};
use strata_protocol::ContainerId;

use super::engine::{Engine, Isolation, IsolationRecovery, Limitation, pid_from_raw, signal_group};
use super::{ContainerizerError, ExitStatus, Limits, RecoverSpec, Usage};

/// Runs containers as plain process groups.
#[derive(Clone)]
pub struct PosixContainerizer {
    engine: Arc<Engine<PosixIsolation>>,
}

impl PosixContainerizer {
    pub fn new() -> Self {
        Self {
            engine: Engine::new(PosixIsolation),
        }
    }
}

impl Default for PosixContainerizer {
    fn default() -> Self {
        Self::new()
    }
}

super::engine::containerizer_over_engine!(PosixContainerizer);

pub(crate) struct PosixIsolation;

impl Isolation for PosixIsolation {
    type Handle = ();

    fn prepare(&self, _: &ContainerId, _: &Limits) -> Result<(), ContainerizerError> {
        Ok(())
    }

    fn attach_files(&self, _: &()) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    fn signal_all(&self, _: &(), leader: Option<Pid>, signal: Signal) {
        if let Some(leader) = leader {
            // Found before signalling: once the leader dies its children are reparented and
            // can no longer be told apart from other processes.
            let groups = descendant_groups(leader);
            signal_group(leader, signal);
            for group in groups {
                if group != leader {
                    signal_group(group, signal);
                }
            }
        }
    }

    fn kill_remaining(&self, _: &(), leader: Option<Pid>) -> bool {
        let Some(leader) = leader else {
            return false;
        };
        // The usual case, an empty group, costs one system call; only a group that still has
        // members (perhaps only zombies) needs the scan of /proc.
        if !signal_group(leader, Signal::KILL) {
            return false;
        }
        group_members(leader).iter().any(|process| !process.zombie)
    }

    fn limitation(&self, _: &(), _: Option<ExitStatus>) -> Option<Limitation> {
        None
    }

    fn release(&self, _: &()) -> Result<(), ContainerizerError> {
        Ok(())
    }

    fn usage(&self, _: &(), leader: Pid) -> Result<Usage, ContainerizerError> {
        let ticks_per_sec = rustix::param::clock_ticks_per_second() as f64;
        let page_size = rustix::param::page_size() as u64;
        let mut usage = Usage::default();
        for process in group_members(leader) {
            if process.zombie {
                continue;
            }
            usage.cpu_user_secs += process.user_ticks as f64 / ticks_per_sec;
            usage.cpu_system_secs += process.system_ticks as f64 / ticks_per_sec;
            usage.mem_rss_bytes += process.rss_pages * page_size;
            usage.pids += 1;
        }
        Ok(usage)
    }

    fn recover(&self, known: &[RecoverSpec]) -> Result<IsolationRecovery<()>, ContainerizerError> {
        let mut recovery = IsolationRecovery {
            alive: Vec::new(),
            gone: Vec::new(),
            orphans: Vec::new(),
        };
        for spec in known {
            let leader = spec.pid.map(pid_from_raw).transpose()?;
            // A leader leads its own group; a pid that does not is a process that reused it.
            let alive = leader.filter(|&leader| {
                process_stat(leader).is_some_and(|stat| !stat.zombie && stat.pgrp == leader)
            });
            match alive {
                Some(leader) => recovery.alive.push((spec.container_id.clone(), (), leader)),
                None => recovery.gone.push((spec.container_id.clone(), None)),
            }
        }
        Ok(recovery)
    }
}

/// The fields of `/proc/<pid>/stat` a containerizer needs.
pub(crate) struct ProcessStat {
    pub ppid: i32,
    pub pgrp: Pid,
    pub zombie: bool,
    /// Own plus waited-for children's user time, in clock ticks.
    pub user_ticks: u64,
    /// Own plus waited-for children's system time, in clock ticks.
    pub system_ticks: u64,
    pub rss_pages: u64,
}

pub(crate) fn process_stat(pid: Pid) -> Option<ProcessStat> {
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/<pid>/stat` (proc(5)); the command name may hold spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<ProcessStat> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // Field numbers of proc(5), less the three up to and including the command name.
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let pgrp = i32::try_from(field(5)?).ok().and_then(Pid::from_raw)?;
    Some(ProcessStat {
        ppid: i32::try_from(field(4)?).ok()?,
        pgrp,
        zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
        user_ticks: field(14)? + field(16)?,
        system_ticks: field(15)? + field(17)?,
        rss_pages: field(24)?,
    })
}

/// Returns the process groups of `leader`'s descendants (children, their children, ...).
fn descendant_groups(leader: Pid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Default::default();
    };
    let mut children: std::collections::BTreeMap<i32, Vec<(i32, Pid)>> = Default::default();
    for pid in entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
    {
        if let Some(stat) = Pid::from_raw(pid).and_then(process_stat) {
            children
                .entry(stat.ppid)
                .or_default()
                .push((pid, stat.pgrp));
        }
    }
    let mut groups: Vec<Pid> = Vec::new();
    let mut queue = vec![leader.as_raw_nonzero().get()];
    // Bounded by the number of processes: each is visited once, since a pid has one parent.
    while let Some(parent) = queue.pop() {
        for &(child, pgrp) in children.get(&parent).into_iter().flatten() {
            if !groups.contains(&pgrp) {
                groups.push(pgrp);
            }
            queue.push(child);
        }
    }
    groups
}

/// Returns the processes in the process group `pgrp`.
fn group_members(pgrp: Pid) -> Vec<ProcessStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Pid::from_raw)
        .filter_map(process_stat)
        .filter(|stat| stat.pgrp == pgrp)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_counts_fields_from_the_last_parenthesis() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194304 100 0 0 0 7 3 2 1 20 0 1 0 \
                    1000 2000000 512 18446744073709551615";
        let parsed = parse_stat(stat).expect("valid stat line");
        assert_eq!(parsed.pgrp.as_raw_nonzero().get(), 42);
        assert!(!parsed.zombie);
        assert_eq!(parsed.user_ticks, 9);
        assert_eq!(parsed.system_ticks, 4);
        assert_eq!(parsed.rss_pages, 512);
    }

    #[test]
    fn parse_stat_sees_zombies() {
        let stat = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0";
        assert!(parse_stat(stat).expect("valid stat line").zombie);
    }
}
