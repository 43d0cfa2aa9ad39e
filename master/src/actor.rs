//! The master actor: a thin shell around [`MasterState`].
//!
//! It turns envelopes from the transport, broken links, timers and HTTP requests into inputs for
//! the state machine, and executes the effects it returns: envelopes to frameworks and agents,
//! links to watch, events for HTTP streams. It makes no decisions of its own.
//!
//! Registry operations are applied synchronously, in order with the other effects: what follows
//! an operation (AgentRegistered, an operator's answer) waits until it is stored. When a write
//! fails, the operation and everything after it wait in `pending`, and the write is retried at
//! every step and at least every [`REGISTRY_RETRY_INTERVAL`]; an agent retries its registration
//! meanwhile, and its reply goes out once the registry has caught up. The in-memory state keeps
//! the change, so nothing is decided twice.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle,
};
use actix_web::web;
use metrics_exporter_prometheus::PrometheusRecorder;
use serde_json::json;
use strata_protocol::scheduler::Event;
use strata_protocol::{Body, Envelope, Epoch, Pid};
use strata_transport::{Delivery, LinkEvent, LinkState, Node};
use tokio::sync::mpsc;

use crate::metrics::record_master_metrics;
use crate::registry::{Registry, RegistryError};
use crate::state::{Effect, FrameworkConn, MasterState, Now, OperatorError, OperatorEvent};

/// How long the actor waits before retrying a registry write that failed.
pub const REGISTRY_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The most effects kept waiting behind a registry write that failed; later ones (except
/// registry operations, which are never dropped) are dropped until the registry catches up.
pub const PENDING_EFFECTS_MAX: usize = 100_000;

/// Reads the clock for the state machine: monotonic time since the actor started, and the wall
/// clock for timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    unix_origin: f64,
}

impl Clock {
    /// Starts a clock at the current time.
    #[allow(clippy::disallowed_methods)] // The actor is where time enters the system.
    pub fn start() -> Clock {
        let unix_origin = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Clock {
            origin: Instant::now(),
            unix_origin,
        }
    }

    /// Returns the current time.
    pub fn now(&self) -> Now {
        let mono = self.origin.elapsed();
        Now {
            mono,
            unix: self.unix_origin + mono.as_secs_f64(),
        }
    }
}

/// The master actor; see the module documentation.
pub struct MasterActor {
    state: MasterState,
    node: Node,
    pid: Pid,
    epoch: Epoch,
    clock: Clock,
    recorder: PrometheusRecorder,
    /// The pending wake-up and when it fires (monotonic).
    wake: Option<(SpawnHandle, Duration)>,
    /// Event streams of frameworks subscribed over HTTP, by `Mesos-Stream-Id`.
    http_streams: BTreeMap<String, mpsc::UnboundedSender<Event>>,
    /// Operator event streams (operator SUBSCRIBE), oldest first; each gets RecordIO records.
    operator_streams: Vec<mpsc::UnboundedSender<web::Bytes>>,
    effects: Vec<Effect>,
    /// `None` once the master shut down: the registry (and its file lock) is released at once,
    /// so that a new master can open it, and nothing is written after.
    registry: Option<Box<dyn Registry>>,
    /// Effects waiting behind a registry operation that could not be stored yet, oldest
    /// first; empty while the registry keeps up.
    pending: VecDeque<Effect>,
    /// The pending retry of a failed registry write.
    registry_retry: Option<SpawnHandle>,
}

impl MasterActor {
    /// Returns a master actor over `state`, storing registry operations in `registry` (the one
    /// `state` was recovered from).
    pub fn new(
        state: MasterState,
        registry: Box<dyn Registry>,
        node: Node,
        pid: Pid,
        epoch: Epoch,
        clock: Clock,
    ) -> MasterActor {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        MasterActor {
            state,
            node,
            pid,
            epoch,
            clock,
            recorder,
            wake: None,
            http_streams: BTreeMap::new(),
            operator_streams: Vec::new(),
            effects: Vec::new(),
            registry: Some(registry),
            pending: VecDeque::new(),
            registry_retry: None,
        }
    }

    /// True while effects wait behind a registry write that failed.
    pub fn registry_stalled(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Executes the effects the last step recorded (after any still waiting for the registry),
    /// then makes sure `tick` runs when due.
    fn execute(&mut self, ctx: &mut Context<Self>) {
        self.publish_operator_events();
        let stalled = self.registry_stalled();
        let mut dropped = 0usize;
        // Drained rather than taken, so that the next step records into the same allocation.
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            if stalled
                && self.pending.len() >= PENDING_EFFECTS_MAX
                && !matches!(effect, Effect::Registry(_))
            {
                dropped += 1;
                continue;
            }
            self.pending.push_back(effect);
        }
        self.effects = effects;
        if dropped > 0 {
            tracing::error!(
                dropped,
                "dropping effects while the registry is not writable"
            );
        }
        while let Some(effect) = self.pending.pop_front() {
            if let Effect::Registry(op) = &effect {
                let applied = match self.registry.as_mut() {
                    Some(registry) => registry.apply(op),
                    None => Err(RegistryError::Poisoned("the master shut down".into())),
                };
                if let Err(err) = applied {
                    // Every step retries; only the first failure of an outage is an error.
                    if stalled {
                        tracing::debug!(error = %err, pending = self.pending.len() + 1, "registry write failed again");
                    } else {
                        tracing::error!(error = %err, pending = self.pending.len() + 1, "registry write failed; holding back what depends on it");
                    }
                    self.pending.push_front(effect);
                    self.retry_registry(ctx);
                    break;
                }
                continue;
            }
            match effect {
                Effect::Framework {
                    conn: FrameworkConn::Actor(pid),
                    event,
                } => {
                    self.send(pid, Body::SchedulerEvent(event));
                }
                Effect::Framework {
                    conn: FrameworkConn::Http(stream_id),
                    event,
                } => {
                    if let Some(stream) = self.http_streams.get(&stream_id)
                        && stream.send(event).is_err()
                    {
                        self.http_streams.remove(&stream_id);
                    }
                }
                Effect::CloseFramework {
                    conn: FrameworkConn::Http(stream_id),
                } => {
                    // Dropping the sender ends the HTTP response stream.
                    self.http_streams.remove(&stream_id);
                }
                Effect::CloseFramework {
                    conn: FrameworkConn::Actor(pid),
                } => {
                    self.node.unlink(ctx.address().recipient(), &pid);
                }
                Effect::Agent { pid, message } => self.send(pid, Body::Internal(message)),
                Effect::Link { pid } => self.node.link(ctx.address().recipient(), &pid),
                Effect::Registry(_) => unreachable!("applied above"),
            }
        }
        self.schedule(ctx);
    }

    /// Arms a retry of the registry write that failed, unless one is armed.
    fn retry_registry(&mut self, ctx: &mut Context<Self>) {
        if self.registry_retry.is_some() {
            return;
        }
        let handle = ctx.run_later(REGISTRY_RETRY_INTERVAL, |actor, ctx| {
            actor.registry_retry = None;
            actor.execute(ctx);
        });
        self.registry_retry = Some(handle);
    }

    /// Sends the operator events of the last step to every operator stream.
    fn publish_operator_events(&mut self) {
        let events = self.state.take_operator_events();
        if events.is_empty() {
            return;
        }
        for event in events {
            let Some(record) = operator_event_json(&self.state, event) else {
                continue;
            };
            self.broadcast(&crate::http::recordio(&record));
        }
    }

    /// Sends a record to every operator stream, forgetting the closed ones.
    fn broadcast(&mut self, record: &web::Bytes) {
        self.operator_streams
            .retain(|stream| stream.send(record.clone()).is_ok());
        if self.operator_streams.is_empty() {
            self.state.set_operator_events(false);
        }
    }

    fn send(&self, to: Pid, body: Body) {
        let envelope = Envelope {
            from: self.pid.clone(),
            to,
            epoch: self.epoch,
            body,
        };
        if let Err(err) = self.node.send(envelope) {
            tracing::debug!(error = %err, "message not sent");
        }
    }

    /// Arms a timer for the state's next deadline (now, if an allocation is pending).
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now().mono;
        let due = if self.state.allocation_pending() {
            now
        } else {
            self.state.next_deadline()
        };
        if let Some((handle, at)) = self.wake {
            if at <= due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(due.saturating_sub(now), |actor, ctx| {
            actor.wake = None;
            actor.tick(ctx);
        });
        self.wake = Some((handle, due));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let runs_before = self.state.counters().allocation_runs;
        #[allow(clippy::disallowed_methods)] // Measures the allocator for its metric.
        let started = Instant::now();
        let now = self.clock.now();
        self.state.tick(now, &mut self.effects);
        if self.state.counters().allocation_runs != runs_before {
            let elapsed = started.elapsed().as_secs_f64();
            metrics::with_local_recorder(&self.recorder, || {
                metrics::histogram!("strata_allocator_run_duration_seconds").record(elapsed);
            });
        }
        self.execute(ctx);
    }
}

impl Actor for MasterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(pid = %self.pid, epoch = %self.epoch, "master started");
        let interval = self.state.config().heartbeat_interval;
        ctx.run_interval(interval, |actor, _| {
            if !actor.operator_streams.is_empty() {
                actor.broadcast(&crate::http::recordio(&json!({"type": "HEARTBEAT"})));
            }
        });
        self.schedule(ctx);
    }
}

impl Handler<Delivery> for MasterActor {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let from = envelope.from;
        match envelope.body {
            Body::SchedulerCall(call) => {
                let call_type = call.body.type_name();
                let conn = FrameworkConn::Actor(from.clone());
                if let Err(err) = self
                    .state
                    .scheduler_call(now, conn, call, &mut self.effects)
                {
                    tracing::info!(%from, call = call_type, error = %err, "refused scheduler call");
                }
            }
            Body::Internal(message) => {
                self.state
                    .agent_message(now, from, message, &mut self.effects)
            }
            other => {
                tracing::debug!(%from, body = ?std::mem::discriminant(&other), "ignoring message not meant for a master");
            }
        }
        self.execute(ctx);
    }
}

impl Handler<LinkEvent> for MasterActor {
    type Result = ();

    fn handle(&mut self, event: LinkEvent, ctx: &mut Context<Self>) {
        if event.state == LinkState::Disconnected {
            let now = self.clock.now();
            self.state.link_broken(now, &event.peer, &mut self.effects);
            self.execute(ctx);
        }
    }
}

/// A read-only question about the state.
pub type InspectFn<R> = Box<dyn FnOnce(&MasterState, Now) -> R + Send>;

/// A change to the state that may record effects.
pub type OperateFn<R> = Box<dyn FnOnce(&mut MasterState, Now, &mut Vec<Effect>) -> R + Send>;

/// Runs `inspect` on the state and returns its result; for read-only HTTP endpoints.
pub struct Inspect<R>(pub InspectFn<R>);

impl<R: 'static> Message for Inspect<R> {
    type Result = R;
}

impl<R: 'static> Handler<Inspect<R>> for MasterActor {
    type Result = MessageResult<Inspect<R>>;

    fn handle(&mut self, Inspect(inspect): Inspect<R>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(inspect(&self.state, self.clock.now()))
    }
}

/// Runs `operate` on the state and executes the effects it records; for operator calls.
pub struct Operate<R>(pub OperateFn<R>);

impl<R: 'static> Message for Operate<R> {
    type Result = R;
}

impl<R: 'static> Handler<Operate<R>> for MasterActor {
    type Result = MessageResult<Operate<R>>;

    fn handle(&mut self, Operate(operate): Operate<R>, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.clock.now();
        let result = operate(&mut self.state, now, &mut self.effects);
        self.execute(ctx);
        MessageResult(result)
    }
}

/// Runs an operator call's change on the state and executes the effects it records; answers
/// only once the registry stored what the change registered.
pub struct OperateCall(pub OperateFn<Result<(), OperatorError>>);

/// Why an operator call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OperateCallError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// The change is made but not yet stored in the registry; it is retried.
    #[error("the registry could not store the change yet; it is being retried")]
    Registry,
}

impl Message for OperateCall {
    type Result = Result<(), OperateCallError>;
}

impl Handler<OperateCall> for MasterActor {
    type Result = Result<(), OperateCallError>;

    fn handle(
        &mut self,
        OperateCall(operate): OperateCall,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let now = self.clock.now();
        let result = operate(&mut self.state, now, &mut self.effects);
        self.execute(ctx);
        result?;
        if self.registry_stalled() {
            return Err(OperateCallError::Registry);
        }
        Ok(())
    }
}

/// Registers an HTTP framework's event stream under its `Mesos-Stream-Id`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenHttpStream {
    pub stream_id: String,
    pub events: mpsc::UnboundedSender<Event>,
}

impl Handler<OpenHttpStream> for MasterActor {
    type Result = ();

    fn handle(&mut self, open: OpenHttpStream, _: &mut Context<Self>) {
        self.http_streams.insert(open.stream_id, open.events);
    }
}

/// Forgets the event stream of an HTTP framework whose response ended (the client went away,
/// or the master closed it) and disconnects the framework if it is still subscribed on it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseHttpStream {
    pub stream_id: String,
}

impl Handler<CloseHttpStream> for MasterActor {
    type Result = ();

    fn handle(&mut self, close: CloseHttpStream, ctx: &mut Context<Self>) {
        self.http_streams.remove(&close.stream_id);
        let now = self.clock.now();
        let conn = FrameworkConn::Http(close.stream_id);
        self.state
            .framework_disconnected(now, &conn, &mut self.effects);
        self.execute(ctx);
    }
}

/// Opens an operator event stream: SUBSCRIBED with the whole state first, then events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeOperator {
    pub events: mpsc::UnboundedSender<web::Bytes>,
}

impl Handler<SubscribeOperator> for MasterActor {
    type Result = ();

    fn handle(&mut self, subscribe: SubscribeOperator, _: &mut Context<Self>) {
        let subscribed = json!({
            "type": "SUBSCRIBED",
            "subscribed": {
                "get_state": crate::http::operator::get_state(&self.state),
                "heartbeat_interval_seconds": self.state.config().heartbeat_interval.as_secs_f64(),
            },
        });
        if subscribe
            .events
            .send(crate::http::recordio(&subscribed))
            .is_err()
        {
            return;
        }
        // Mesos keeps at most this many subscribers and drops the oldest.
        if self.operator_streams.len() >= OPERATOR_STREAMS_MAX {
            self.operator_streams.remove(0);
        }
        self.operator_streams.push(subscribe.events);
        self.state.set_operator_events(true);
    }
}

/// The most operator event streams kept open (`--max_operator_event_stream_subscribers`).
pub const OPERATOR_STREAMS_MAX: usize = 1000;

/// Renders an operator event in the Mesos v1 JSON form, from the state after the step.
fn operator_event_json(state: &MasterState, event: OperatorEvent) -> Option<serde_json::Value> {
    use crate::http::operator::{agent_json, framework_json};
    let record = match event {
        OperatorEvent::TaskAdded {
            framework_id,
            task_id,
        } => {
            let task = state.task(&framework_id, &task_id)?;
            json!({"type": "TASK_ADDED", "task_added": {"task": task}})
        }
        OperatorEvent::TaskUpdated {
            framework_id,
            status,
            state: task_state,
        } => json!({
            "type": "TASK_UPDATED",
            "task_updated": {"framework_id": framework_id, "status": status, "state": task_state},
        }),
        OperatorEvent::AgentAdded(agent_id) => {
            let agent = state.agent(&agent_id)?;
            json!({"type": "AGENT_ADDED", "agent_added": {"agent": agent_json(&agent)}})
        }
        OperatorEvent::AgentRemoved(agent_id) => {
            json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": agent_id}})
        }
        OperatorEvent::FrameworkAdded(framework_id) => {
            let framework = state.framework(&framework_id)?;
            json!({"type": "FRAMEWORK_ADDED", "framework_added": {"framework": framework_json(&framework)}})
        }
        OperatorEvent::FrameworkUpdated(framework_id) => {
            let framework = state.framework(&framework_id)?;
            json!({"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": framework_json(&framework)}})
        }
        OperatorEvent::FrameworkRemoved(framework_id) => {
            let info = state.completed_framework_info(&framework_id)?;
            json!({"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": info}})
        }
    };
    Some(record)
}

/// Renders the master's metrics in the Prometheus text format.
#[derive(Message)]
#[rtype(result = "String")]
pub struct RenderMetrics;

impl Handler<RenderMetrics> for MasterActor {
    type Result = String;

    fn handle(&mut self, _: RenderMetrics, _: &mut Context<Self>) -> String {
        let now = self.clock.now();
        metrics::with_local_recorder(&self.recorder, || {
            record_master_metrics(&self.state, now, &self.node.stats());
        });
        self.recorder.handle().render()
    }
}

/// Stops the master actor and its transport node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for MasterActor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.registry = None;
        self.node.shutdown();
        ctx.stop();
    }
}
