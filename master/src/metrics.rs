//! The master's metrics: Prometheus text (`/metrics`) through the `metrics` facade, and the
//! flat Mesos JSON map (`/metrics/snapshot`) for dashboards built for Mesos.
//!
//! Everything is computed from the state when scraped, so stepping the state machine costs
//! nothing for metrics. Names follow Prometheus conventions: `strata_` prefix, base units
//! (bytes, seconds), labels rather than names for states, `_total` on counters.

use std::collections::BTreeMap;

use strata_protocol::Resources;
use strata_protocol::mesos::TaskState;
use strata_transport::{CloseReason, DropReason, TransportStats};

use crate::state::{AgentMode, AgentSummary, MasterState, Now};

const MIB: f64 = 1024.0 * 1024.0;

/// The scalar resources reported, with the factor to their base unit.
const RESOURCES: [(&str, f64); 4] = [("cpus", 1.0), ("mem", MIB), ("disk", MIB), ("gpus", 1.0)];

/// Resource totals over the registered agents.
struct ResourceTotals {
    total: Resources,
    used: Resources,
    offered: Resources,
}

fn resource_totals(agents: &[AgentSummary]) -> ResourceTotals {
    let mut totals = ResourceTotals {
        total: Resources::new(),
        used: Resources::new(),
        offered: Resources::new(),
    };
    for agent in agents {
        totals.total += &agent.total;
        totals.used += &agent.used;
        totals.offered += &agent.offered;
    }
    for resources in [&mut totals.total, &mut totals.used, &mut totals.offered] {
        resources.unallocate();
        *resources = resources.flatten().scalars();
    }
    totals
}

/// Counts of agents and frameworks by state.
struct Population {
    agents: BTreeMap<&'static str, usize>,
    frameworks: BTreeMap<&'static str, usize>,
}

fn population(state: &MasterState, registered: &[AgentSummary]) -> Population {
    let mut agents = BTreeMap::from([
        ("active", 0),
        ("inactive", 0),
        ("disconnected", 0),
        ("unreachable", state.unreachable_agents().len()),
        ("gone", state.gone_agents().len()),
        ("recovered", state.recovered_agents().len()),
    ]);
    for agent in registered {
        let key = if !agent.connected {
            "disconnected"
        } else if agent.mode == AgentMode::Active {
            "active"
        } else {
            "inactive"
        };
        *agents.entry(key).or_default() += 1;
    }
    let (n_connected, n_disconnected) = state.framework_connections();
    let frameworks = BTreeMap::from([
        ("connected", n_connected),
        ("disconnected", n_disconnected),
        ("completed", state.n_completed_frameworks()),
    ]);
    Population { agents, frameworks }
}

/// Records every master metric into the current recorder.
pub fn record_master_metrics(state: &MasterState, now: Now, transport: &TransportStats) {
    use metrics::{counter, gauge};
    gauge!("strata_master_elected").set(1.0);
    gauge!("strata_master_uptime_seconds").set(now.mono.as_secs_f64());
    let task_counts = state.task_counts();
    for task_state in TaskState::ALL {
        let n = task_counts.get(&task_state).copied().unwrap_or(0);
        gauge!("strata_master_tasks", "state" => state_label(task_state)).set(n as f64);
    }
    let agents = state.agents();
    let population = population(state, &agents);
    for (key, n) in population.agents {
        gauge!("strata_master_agents", "state" => key).set(n as f64);
    }
    for (key, n) in population.frameworks {
        gauge!("strata_master_frameworks", "state" => key).set(n as f64);
    }
    gauge!("strata_master_offers_outstanding").set(state.n_offers() as f64);
    let totals = resource_totals(&agents);
    for (name, factor) in RESOURCES {
        for (key, resources) in [
            ("total", &totals.total),
            ("used", &totals.used),
            ("offered", &totals.offered),
        ] {
            let value = resources.scalar(name).unwrap_or(0.0) * factor;
            gauge!("strata_master_resources", "resource" => name, "state" => key).set(value);
        }
    }
    let c = state.counters();
    for (outcome, n) in [
        ("sent", c.offers_sent),
        ("accepted", c.offers_accepted),
        ("declined", c.offers_declined),
        ("rescinded", c.offers_rescinded),
    ] {
        counter!("strata_master_offers_total", "outcome" => outcome).absolute(n);
    }
    counter!("strata_master_agent_registrations_total").absolute(c.agent_registrations);
    counter!("strata_master_agent_reregistrations_total").absolute(c.agent_reregistrations);
    counter!("strata_master_agent_removals_total").absolute(c.agent_removals);
    counter!("strata_master_framework_subscriptions_total").absolute(c.framework_subscriptions);
    counter!("strata_master_framework_removals_total").absolute(c.framework_removals);
    counter!("strata_master_tasks_launched_total").absolute(c.tasks_launched);
    counter!("strata_master_allocation_runs_total").absolute(c.allocation_runs);
    for (task_state, n) in &c.tasks_terminal {
        counter!("strata_master_task_terminations_total", "state" => lower_state(task_state))
            .absolute(*n);
    }
    counter!("strata_master_status_updates_total", "valid" => "true")
        .absolute(c.valid_status_updates);
    counter!("strata_master_status_updates_total", "valid" => "false")
        .absolute(c.invalid_status_updates);
    counter!("strata_master_status_update_acknowledgements_total")
        .absolute(c.status_update_acknowledgements);
    for (call_type, n) in &c.calls {
        counter!("strata_master_calls_total", "type" => *call_type).absolute(*n);
    }
    record_transport_metrics(transport);
}

/// Records a transport node's counters.
pub fn record_transport_metrics(stats: &TransportStats) {
    use metrics::{counter, gauge};
    counter!("strata_transport_messages_total", "direction" => "sent")
        .absolute(stats.messages_sent);
    counter!("strata_transport_messages_total", "direction" => "received")
        .absolute(stats.messages_received);
    for reason in DropReason::ALL {
        counter!("strata_transport_dropped_messages_total", "reason" => reason.as_str())
            .absolute(stats.dropped(reason));
    }
    for reason in CloseReason::ALL {
        counter!("strata_transport_connections_closed_total", "reason" => reason.as_str())
            .absolute(stats.closed(reason));
    }
    gauge!("strata_transport_links").set(stats.links_connected as f64);
}

/// `TASK_RUNNING` -> `running`, the label value.
fn state_label(state: TaskState) -> &'static str {
    lower_state(state.as_str())
}

fn lower_state(name: &str) -> &'static str {
    match name {
        "TASK_STAGING" => "staging",
        "TASK_STARTING" => "starting",
        "TASK_RUNNING" => "running",
        "TASK_KILLING" => "killing",
        "TASK_FINISHED" => "finished",
        "TASK_FAILED" => "failed",
        "TASK_KILLED" => "killed",
        "TASK_ERROR" => "error",
        "TASK_LOST" => "lost",
        "TASK_DROPPED" => "dropped",
        "TASK_UNREACHABLE" => "unreachable",
        "TASK_GONE" => "gone",
        "TASK_GONE_BY_OPERATOR" => "gone_by_operator",
        _ => "unknown",
    }
}

/// The metrics under their Mesos names (`master/tasks_running`, ...), for `/metrics/snapshot`.
pub fn mesos_snapshot(state: &MasterState, now: Now) -> BTreeMap<String, f64> {
    let mut snapshot = BTreeMap::new();
    let mut put = |name: &str, value: f64| {
        snapshot.insert(format!("master/{name}"), value);
    };
    put("elected", 1.0);
    put("uptime_secs", now.mono.as_secs_f64());
    let task_counts = state.task_counts();
    for task_state in TaskState::ALL {
        let n = task_counts.get(&task_state).copied().unwrap_or(0);
        put(&format!("tasks_{}", state_label(task_state)), n as f64);
    }
    let summaries = state.agents();
    let population = population(state, &summaries);
    let agents = &population.agents;
    let registered = agents["active"] + agents["inactive"] + agents["disconnected"];
    put(
        "slaves_active",
        (agents["active"] + agents["disconnected"]) as f64,
    );
    put("slaves_inactive", agents["inactive"] as f64);
    put(
        "slaves_connected",
        (agents["active"] + agents["inactive"]) as f64,
    );
    put("slaves_disconnected", agents["disconnected"] as f64);
    put("slaves_unreachable", agents["unreachable"] as f64);
    put("slaves_registered", registered as f64);
    let frameworks = &population.frameworks;
    put("frameworks_connected", frameworks["connected"] as f64);
    put("frameworks_disconnected", frameworks["disconnected"] as f64);
    put("frameworks_active", frameworks["connected"] as f64);
    put("frameworks_inactive", frameworks["disconnected"] as f64);
    put("outstanding_offers", state.n_offers() as f64);
    let totals = resource_totals(&summaries);
    for (name, _) in RESOURCES {
        let total = totals.total.scalar(name).unwrap_or(0.0);
        let used = totals.used.scalar(name).unwrap_or(0.0);
        put(&format!("{name}_total"), total);
        put(&format!("{name}_used"), used);
        put(
            &format!("{name}_percent"),
            if total > 0.0 { used / total } else { 0.0 },
        );
    }
    let c = state.counters();
    put("slave_registrations", c.agent_registrations as f64);
    put("slave_reregistrations", c.agent_reregistrations as f64);
    put("slave_removals", c.agent_removals as f64);
    put(
        "slave_unreachable_completed",
        c.agents_marked_unreachable as f64,
    );
    put("valid_status_updates", c.valid_status_updates as f64);
    put("invalid_status_updates", c.invalid_status_updates as f64);
    snapshot
}
