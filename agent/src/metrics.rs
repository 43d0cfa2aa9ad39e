//! The agent's metrics: Prometheus text (`/metrics`) through a per-agent `metrics` recorder, and
//! the flat Mesos JSON map (`/metrics/snapshot`) under the `slave/...` names dashboards built
//! for Mesos read.
//!
//! Everything is computed from a [`Sample`] of the state taken when scraped, so stepping the
//! state machine costs nothing for metrics. Names follow Prometheus conventions: `strata_agent_`
//! prefix, base units (bytes, seconds), labels rather than names for states, `_total` on
//! counters.
//!
//! The agent keeps finished tasks and terminated executors for a while only (up to
//! `max_completed_*` of them), so the per-state counts of terminal tasks and terminated
//! executors cover what the agent still remembers, not everything since it started.

use std::collections::BTreeMap;

use metrics_exporter_prometheus::PrometheusRecorder;
use strata_protocol::Resources;
use strata_protocol::mesos::TaskState;
use strata_transport::{CloseReason, DropReason, TransportStats};

use crate::state::{AgentCounters, AgentState, ExecutorPhase, Now};

const MIB: f64 = 1024.0 * 1024.0;

/// The scalar resources reported, with the factor to their base unit (Mesos counts MiB).
const RESOURCES: [(&str, f64); 4] = [("cpus", 1.0), ("mem", MIB), ("disk", MIB), ("gpus", 1.0)];

const EXECUTOR_PHASES: [ExecutorPhase; 4] = [
    ExecutorPhase::Registering,
    ExecutorPhase::Running,
    ExecutorPhase::Terminating,
    ExecutorPhase::Terminated,
];

/// What the metrics are computed from, taken from the state in one actor turn.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the agent started.
    pub uptime_secs: f64,
    /// Whether the agent is registered with a master now.
    pub registered: bool,
    /// Tasks the agent knows of per state: queued (STAGING), live, terminal and not yet
    /// acknowledged, and the completed ones it still keeps.
    pub tasks: BTreeMap<TaskState, usize>,
    /// Executors per phase; terminated ones include those the agent still keeps.
    pub executors: BTreeMap<ExecutorPhase, usize>,
    /// Frameworks with executors or tasks on this agent.
    pub frameworks_active: usize,
    /// Scalar resources (MiB for mem and disk), reservations ignored.
    pub total: Resources,
    pub used: Resources,
    pub counters: AgentCounters,
    /// Status updates not acknowledged yet.
    pub pending_updates: usize,
    /// The agent's transport node's counters.
    pub transport: TransportStats,
}

impl Sample {
    /// Samples `state` at `now`, with the agent's transport counters.
    pub fn of(state: &AgentState, now: Now, transport: TransportStats) -> Sample {
        let mut executors = state.executor_counts();
        // Live executors are counted by phase; the completed ones have all terminated.
        *executors.entry(ExecutorPhase::Terminated).or_default() += state.n_completed_executors();
        Sample {
            uptime_secs: now.mono.as_secs_f64(),
            registered: state.registered(),
            tasks: state.retained_task_counts(),
            executors,
            frameworks_active: state.n_frameworks(),
            total: scalars(state.total_resources()),
            used: scalars(&state.used_resources()),
            counters: state.counters(),
            pending_updates: state.n_pending_updates(),
            transport,
        }
    }

    fn n_tasks(&self, state: TaskState) -> usize {
        self.tasks.get(&state).copied().unwrap_or(0)
    }

    fn n_executors(&self, phase: ExecutorPhase) -> usize {
        self.executors.get(&phase).copied().unwrap_or(0)
    }
}

fn scalars(resources: &Resources) -> Resources {
    let mut flat = resources.clone();
    flat.unallocate();
    flat.flatten().scalars()
}

/// `TASK_RUNNING` -> `running`, the label value and the Mesos name suffix.
fn state_label(state: TaskState) -> String {
    state
        .as_str()
        .trim_start_matches("TASK_")
        .to_ascii_lowercase()
}

/// Renders `sample` in the Prometheus text format through `recorder`.
pub fn render_prometheus(sample: &Sample, recorder: &PrometheusRecorder) -> String {
    metrics::with_local_recorder(recorder, || record(sample));
    recorder.handle().render()
}

/// Records every agent metric into the current recorder.
fn record(sample: &Sample) {
    use metrics::{counter, gauge};
    gauge!("strata_agent_registered").set(if sample.registered { 1.0 } else { 0.0 });
    gauge!("strata_agent_uptime_seconds").set(sample.uptime_secs);
    for task_state in TaskState::ALL {
        let n = sample.n_tasks(task_state);
        gauge!("strata_agent_tasks", "state" => state_label(task_state)).set(n as f64);
    }
    for phase in EXECUTOR_PHASES {
        let n = sample.n_executors(phase);
        gauge!("strata_agent_executors", "state" => phase.as_str()).set(n as f64);
    }
    gauge!("strata_agent_frameworks").set(sample.frameworks_active as f64);
    for (name, factor) in RESOURCES {
        for (key, resources) in [("total", &sample.total), ("used", &sample.used)] {
            let value = resources.scalar(name).unwrap_or(0.0) * factor;
            gauge!("strata_agent_resources", "resource" => name, "state" => key).set(value);
        }
    }
    gauge!("strata_agent_status_updates_pending").set(sample.pending_updates as f64);
    let c = &sample.counters;
    counter!("strata_agent_registrations_total").absolute(c.registrations);
    counter!("strata_agent_status_updates_forwarded_total").absolute(c.updates_forwarded);
    counter!("strata_agent_container_launch_errors_total").absolute(c.container_launch_errors);
    counter!("strata_agent_recovery_errors_total").absolute(c.recovery_errors);
    record_transport(&sample.transport);
}

/// Records the transport node's counters, under the names the master uses for its own.
fn record_transport(stats: &TransportStats) {
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

/// The metrics under their Mesos names (`slave/tasks_running`, ...), for `/metrics/snapshot`
/// and GET_METRICS.
pub fn mesos_snapshot(sample: &Sample) -> BTreeMap<String, f64> {
    let mut snapshot = BTreeMap::new();
    let mut put = |name: &str, value: f64| {
        snapshot.insert(format!("slave/{name}"), value);
    };
    put("uptime_secs", sample.uptime_secs);
    put("registered", if sample.registered { 1.0 } else { 0.0 });
    for task_state in TaskState::ALL {
        put(
            &format!("tasks_{}", state_label(task_state)),
            sample.n_tasks(task_state) as f64,
        );
    }
    for phase in EXECUTOR_PHASES {
        put(
            &format!("executors_{}", phase.as_str()),
            sample.n_executors(phase) as f64,
        );
    }
    put("frameworks_active", sample.frameworks_active as f64);
    for (name, _) in RESOURCES {
        let total = sample.total.scalar(name).unwrap_or(0.0);
        let used = sample.used.scalar(name).unwrap_or(0.0);
        put(&format!("{name}_total"), total);
        put(&format!("{name}_used"), used);
        put(
            &format!("{name}_percent"),
            if total > 0.0 { used / total } else { 0.0 },
        );
    }
    let c = &sample.counters;
    put("container_launch_errors", c.container_launch_errors as f64);
    put("recovery_errors", c.recovery_errors as f64);
    snapshot
}
