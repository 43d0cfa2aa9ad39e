//! The agent actor: a thin shell around [`AgentState`].
//!
//! It turns envelopes from the transport, broken links, timers and container events into inputs
//! for the state machine, and executes the effects it returns, in order: checkpoint writes,
//! messages to the master and executors, container launches and destroys. It makes no decisions
//! of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult,
    SpawnHandle, WrapFuture,
};
use strata_protocol::executor::Event;
use strata_protocol::{Body, ContainerId, Envelope, Epoch, Pid};
use strata_transport::{Delivery, LinkEvent, LinkState, Node};
use tokio::sync::mpsc;

use crate::checkpoint::CheckpointStore;
use crate::checkpoint::writer::CheckpointWriter;
use crate::containerizer::{
    CommandLine, Containerizer, ContainerizerError, LaunchSpec, Limits, Termination,
};
use crate::sandbox::SandboxLayout;
use crate::state::{AgentState, ContainerEnd, Effect, ExecutorConn, Input, LaunchContainer, Now};

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

/// What the actor needs besides the state machine.
pub struct AgentRuntime {
    pub node: Node,
    pub pid: Pid,
    pub clock: Clock,
    pub containerizer: Arc<dyn Containerizer>,
    pub sandbox: SandboxLayout,
    pub store: CheckpointStore,
    /// Writes to `store` in batches (group commit), and makes the sends that must wait for
    /// them.
    pub writer: CheckpointWriter,
    /// The program run as the built-in command executor, with `executor` as its argument (the
    /// `strata` binary itself).
    pub launcher: PathBuf,
    /// Limit on processes per container.
    pub pids_max: Option<u64>,
    /// Variables every executor gets besides the `MESOS_*` ones (`PATH`).
    pub base_env: Vec<(String, String)>,
    /// The sandboxes served over `/files`.
    pub files: crate::http::Files,
    /// Removes finished runs' sandboxes after the GC delay.
    pub gc: Option<crate::gc::GcHandle>,
}

/// The agent actor; see the module documentation.
pub struct AgentActor {
    state: AgentState,
    rt: AgentRuntime,
    /// The pending wake-up and when it fires (monotonic).
    wake: Option<(SpawnHandle, Duration)>,
    /// Event streams of executors connected over HTTP.
    http_streams: BTreeMap<u64, mpsc::UnboundedSender<Event>>,
    /// The master to detect at start.
    master: Option<Pid>,
    /// Containers recovered from the previous run, to watch from the start.
    recovered: Vec<ContainerId>,
    /// Containers being launched off the actor's thread, with the shortest grace period of a
    /// destroy that came before the launch finished; see [`AgentActor::launch`].
    launching: BTreeMap<ContainerId, Option<Duration>>,
    /// The launches still running on a blocking thread.
    launches_running: Arc<LaunchesRunning>,
    effects: Vec<Effect>,
}

/// Counts the launches running on blocking threads, so that stopping the agent for good can
/// wait for them before it destroys what they started.
#[derive(Default)]
struct LaunchesRunning {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    /// Set when the agent stops for good: a launch that has not started yet does not start.
    cancelled: std::sync::atomic::AtomicBool,
}

impl LaunchesRunning {
    fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts a launch until the returned guard drops (a panicking launch included).
    fn start(self: &Arc<Self>) -> LaunchGuard {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        LaunchGuard(Arc::clone(self))
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a launch ending in between still wakes us.
            idle.as_mut().enable();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

struct LaunchGuard(Arc<LaunchesRunning>);

impl Drop for LaunchGuard {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

impl AgentActor {
    /// Returns an actor for `state`; `effects` are what recovering it produced, executed when
    /// the actor starts, and `recovered` the containers of the previous run still running.
    pub fn new(
        state: AgentState,
        rt: AgentRuntime,
        master: Option<Pid>,
        effects: Vec<Effect>,
        recovered: Vec<ContainerId>,
    ) -> AgentActor {
        AgentActor {
            state,
            rt,
            wake: None,
            http_streams: BTreeMap::new(),
            master,
            recovered,
            launching: BTreeMap::new(),
            launches_running: Arc::default(),
            effects,
        }
    }

    /// Reports the container's exit as an input once it happens.
    fn watch(&mut self, container_id: ContainerId, ctx: &mut Context<Self>) {
        let wait = self.rt.containerizer.wait(&container_id);
        ctx.spawn(wait.into_actor(self).map(move |result, actor, ctx| {
            let end = container_end(result);
            actor.step(
                Input::ContainerExited {
                    container_id: container_id.clone(),
                    end,
                },
                ctx,
            );
        }));
    }

    fn step(&mut self, input: Input, ctx: &mut Context<Self>) {
        let now = self.rt.clock.now();
        if let Err(error) = self.state.step(now, input, &mut self.effects) {
            tracing::info!(%error, "input refused");
        }
        self.execute(ctx);
    }

    /// Executes the effects the last step recorded, then makes sure `tick` runs when due.
    fn execute(&mut self, ctx: &mut Context<Self>) {
        // Effects may produce inputs (a launch that fails at once); those are stepped after the
        // current batch, in order.
        while !self.effects.is_empty() {
            let effects = std::mem::take(&mut self.effects);
            for effect in effects {
                self.execute_one(effect, ctx);
            }
        }
        self.schedule(ctx);
    }

    fn execute_one(&mut self, effect: Effect, ctx: &mut Context<Self>) {
        match effect {
            Effect::Master { pid, message } => self.send(pid, Body::Internal(message)),
            Effect::Link { pid } => self.rt.node.link(ctx.address().recipient(), &pid),
            Effect::Executor {
                conn: ExecutorConn::Actor(pid),
                event,
            } => self.send(pid, Body::ExecutorEvent(event)),
            Effect::Executor {
                conn: ExecutorConn::Http(id),
                event,
            } => {
                if let Some(stream) = self.http_streams.get(&id) {
                    if self.rt.writer.busy() {
                        // After the checkpoint writes before it (an acknowledgement may only
                        // reach the executor once the update is durable).
                        let stream = stream.clone();
                        self.rt.writer.then(Box::new(move || {
                            let _ = stream.send(event);
                        }));
                    } else if stream.send(event).is_err() {
                        self.http_streams.remove(&id);
                    }
                }
            }
            Effect::CloseExecutor {
                conn: ExecutorConn::Http(id),
            } => {
                self.http_streams.remove(&id);
            }
            Effect::CloseExecutor {
                conn: ExecutorConn::Actor(pid),
            } => self.rt.node.unlink(ctx.address().recipient(), &pid),
            Effect::Launch(launch) => self.launch(*launch, ctx),
            Effect::Destroy {
                container_id,
                grace_period,
            } => {
                if let Some(destroy) = self.launching.get_mut(&container_id) {
                    // Destroyed as soon as it is launched; the containerizer does not know it
                    // yet.
                    *destroy = Some(destroy.map_or(grace_period, |g| g.min(grace_period)));
                    return;
                }
                // The exit is reported by the wait started at launch.
                let destroy = self.rt.containerizer.destroy(&container_id, grace_period);
                ctx.spawn(
                    async move {
                        if let Err(error) = destroy.await {
                            tracing::debug!(%container_id, %error, "destroy");
                        }
                    }
                    .into_actor(self),
                );
            }
            Effect::Checkpoint(op) => self.rt.writer.write(*op),
            Effect::RunFinished {
                framework_id,
                executor_id,
                container_id,
            } => {
                tracing::debug!(%framework_id, %executor_id, %container_id, "executor run finished");
                // Once the run's end is durable, the reaper need not keep its exit any longer.
                let containerizer = Arc::clone(&self.rt.containerizer);
                let forgotten = container_id.clone();
                self.rt
                    .writer
                    .after_durable(Box::new(move || containerizer.forget_exit(&forgotten)));
                // The run's checkpoint records go at the next compaction of its framework's
                // runs log; its sandbox goes after the GC delay.
                if let (Some(gc), Some(agent_id)) = (self.rt.gc.clone(), self.state.agent_id()) {
                    let dir = self.rt.sandbox.run_dir(
                        agent_id,
                        &framework_id,
                        &executor_id,
                        &container_id,
                    );
                    actix::spawn(async move {
                        if let Err(error) = gc.schedule(dir).await {
                            tracing::warn!(%error, "cannot schedule a finished run for removal");
                        }
                    });
                }
            }
            Effect::Shutdown { message } => {
                tracing::warn!(%message, "shutting down");
                actix::spawn(self.destroy_everything());
                self.rt.writer.flush();
                if let Err(error) = self.rt.store.wipe_agent() {
                    tracing::error!(%error, "cannot forget the agent's checkpoint");
                }
                self.rt.node.shutdown();
                ctx.stop();
            }
        }
    }

    /// Creates the sandbox and starts the container off the actor's thread, and reports the
    /// result as an input when it is done.
    ///
    /// Making a sandbox, a container's cgroups and its leader process is mostly waiting on the
    /// kernel (directory inodes, cgroup locks, the vfork of the leader), so launches run on
    /// tokio's blocking threads while the actor goes on with messages and other launches. A
    /// destroy that comes meanwhile waits in `launching` until the launch is done. An
    /// executor that may outlive this agent (its framework checkpoints) starts only once what
    /// was checkpointed before its launch is durable, so that a restarted agent knows its run.
    fn launch(&mut self, launch: LaunchContainer, ctx: &mut Context<Self>) {
        let container_id = launch.container_id.clone();
        let job = match self.launch_job(&launch) {
            Ok(job) => job,
            Err(message) => {
                tracing::warn!(%container_id, %message, "container launch failed");
                self.effects_input(Input::ContainerLaunchFailed {
                    container_id,
                    message,
                });
                return;
            }
        };
        self.launching.insert(container_id.clone(), None);
        let durable = launch.checkpoint.then(|| {
            let (done, durable) = tokio::sync::oneshot::channel();
            self.rt.writer.after_durable(Box::new(move || {
                let _ = done.send(());
            }));
            durable
        });
        let sandbox = self.rt.sandbox.clone();
        let containerizer = Arc::clone(&self.rt.containerizer);
        let running = self.launches_running.start();
        let launched = async move {
            if let Some(durable) = durable {
                // An error means the writer thread is gone; launching is all that is left.
                let _ = durable.await;
            }
            tokio::task::spawn_blocking(move || {
                if running.0.cancelled() {
                    return Err("the agent is shutting down".to_owned());
                }
                job.run(&sandbox, containerizer.as_ref())
            })
            .await
            .unwrap_or_else(|error| Err(format!("the launch did not complete: {error}")))
        };
        ctx.spawn(launched.into_actor(self).map(move |result, actor, ctx| {
            actor.launched(container_id, result, ctx);
        }));
    }

    /// Takes the result of a launch started by [`Self::launch`].
    fn launched(
        &mut self,
        container_id: ContainerId,
        result: Result<u32, String>,
        ctx: &mut Context<Self>,
    ) {
        let destroy = self.launching.remove(&container_id).flatten();
        match result {
            Ok(pid) => {
                self.watch(container_id.clone(), ctx);
                if let Some(grace_period) = destroy {
                    self.effects.push(Effect::Destroy {
                        container_id: container_id.clone(),
                        grace_period,
                    });
                }
                self.step(Input::ContainerLaunched { container_id, pid }, ctx);
            }
            Err(message) => {
                tracing::warn!(%container_id, %message, "container launch failed");
                self.step(
                    Input::ContainerLaunchFailed {
                        container_id,
                        message,
                    },
                    ctx,
                );
            }
        }
    }

    /// Stops for good what this agent runs: launches not yet started do not start, those under
    /// way finish first (so that what they start goes too), then every container is destroyed
    /// at once.
    fn destroy_everything(&self) -> impl std::future::Future<Output = ()> + 'static {
        self.launches_running.cancel();
        let running = Arc::clone(&self.launches_running);
        let containerizer = Arc::clone(&self.rt.containerizer);
        async move {
            running.wait_idle().await;
            let destroys: Vec<_> = containerizer
                .containers()
                .into_iter()
                .map(|container_id| containerizer.destroy(&container_id, Duration::ZERO))
                .collect();
            for destroy in destroys {
                let _ = destroy.await;
            }
        }
    }

    /// Steps an input produced while executing effects; its effects join the current batch.
    fn effects_input(&mut self, input: Input) {
        let now = self.rt.clock.now();
        let mut effects = Vec::new();
        if let Err(error) = self.state.step(now, input, &mut effects) {
            tracing::info!(%error, "input refused");
        }
        self.effects.extend(effects);
    }

    /// Builds what a launch needs on the actor's thread (everything that reads the actor), and
    /// serves the run's sandbox.
    fn launch_job(&self, launch: &LaunchContainer) -> Result<LaunchJob, String> {
        let framework_id = launch
            .framework
            .id
            .clone()
            .ok_or("framework without an ID")?;
        let executor_id = &launch.executor.executor_id;
        let dir = self.rt.sandbox.run_dir(
            &launch.agent_id,
            &framework_id,
            executor_id,
            &launch.container_id,
        );
        // Served under its real path and under the executor's `latest` run, as Mesos does.
        let latest = format!("/frameworks/{framework_id}/executors/{executor_id}/runs/latest");
        for virtual_path in [dir.display().to_string(), latest] {
            if let Err(error) = self.rt.files.attach_canonical(&virtual_path, dir.clone()) {
                tracing::warn!(%error, path = %virtual_path, "cannot attach the sandbox");
            }
        }
        let command = if let Some(task_command) = &launch.task_command {
            CommandLine::from_command_info(task_command).map_err(|error| error.to_string())?
        } else if launch.command_executor {
            CommandLine::Exec {
                program: self.rt.launcher.display().to_string(),
                argv: vec![
                    self.rt.launcher.display().to_string(),
                    "executor".to_owned(),
                ],
            }
        } else {
            let command = launch
                .executor
                .command
                .as_ref()
                .ok_or("executor has no command")?;
            CommandLine::from_command_info(command).map_err(|error| error.to_string())?
        };
        let mut env = self.rt.base_env.clone();
        // A command task the agent runs itself gets its own variables, as the command executor
        // gives them to the command it starts; an executor gets its executor's.
        let own_command = match &launch.task_command {
            Some(task_command) => Some(task_command),
            None if !launch.command_executor => launch.executor.command.as_ref(),
            None => None,
        };
        if let Some(environment) = own_command.and_then(|command| command.environment.as_ref()) {
            for variable in &environment.variables {
                if let Some(value) = &variable.value {
                    env.push((variable.name.clone(), value.clone()));
                }
            }
        }
        let sandbox_path = dir.display().to_string();
        let agent_endpoint = self.rt.pid.node();
        let mesos_env = [
            ("MESOS_FRAMEWORK_ID", framework_id.to_string()),
            ("MESOS_EXECUTOR_ID", executor_id.to_string()),
            ("MESOS_AGENT_ENDPOINT", agent_endpoint.clone()),
            ("MESOS_SLAVE_PID", self.rt.pid.to_string()),
            ("STRATA_AGENT_PID", self.rt.pid.to_string()),
            ("MESOS_SANDBOX", sandbox_path.clone()),
            ("MESOS_DIRECTORY", sandbox_path),
            (
                "MESOS_CHECKPOINT",
                if launch.checkpoint { "1" } else { "0" }.to_owned(),
            ),
            ("MESOS_RECOVERY_TIMEOUT", "15mins".to_owned()),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs".to_owned()),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                format!("{}ms", launch.shutdown_grace_period.as_millis()),
            ),
            ("MESOS_CONTAINER_ID", launch.container_id.to_string()),
            ("MESOS_HTTP_COMMAND_EXECUTOR", "0".to_owned()),
        ];
        env.extend(
            mesos_env
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        let spec = LaunchSpec {
            command,
            env,
            working_dir: dir.clone(),
            user: launch.user.clone(),
            stdout_path: dir.join("stdout"),
            stderr_path: dir.join("stderr"),
            limits: Limits::from_resources(&launch.resources, self.rt.pids_max),
            outlive_agent: launch.checkpoint,
        };
        Ok(LaunchJob {
            agent_id: launch.agent_id.clone(),
            framework_id,
            executor_id: executor_id.clone(),
            container_id: launch.container_id.clone(),
            spec,
        })
    }

    /// Adds the container's limitation to a task failure its executor reports: when the OOM
    /// killer kills a task's process, the executor only sees a SIGKILL, but the framework must
    /// learn the task went over its memory (REASON_CONTAINER_LIMITATION_MEMORY), as Mesos
    /// reports it.
    pub(crate) fn annotate_limitation(&self, call: &mut strata_protocol::executor::Call) {
        let strata_protocol::executor::CallBody::Update(update) = &mut call.body else {
            return;
        };
        if update.status.state != strata_protocol::mesos::TaskState::Failed
            || update.status.reason.is_some()
        {
            return;
        }
        let Some(container_id) = self
            .state
            .container_of(&call.framework_id, &call.executor_id)
        else {
            return;
        };
        if let Some((reason, message)) = self.rt.containerizer.limitation(&container_id) {
            update.status.reason = reason.task_status_reason();
            update.status.message = Some(message);
        }
    }

    /// Sends a message; after the checkpoint writes queued before it are durable, so that
    /// "checkpoint, then forward" holds and messages keep their order.
    fn send(&self, to: Pid, body: Body) {
        let envelope = Envelope {
            from: self.rt.pid.clone(),
            to,
            epoch: Epoch::NONE,
            body,
        };
        let send = |node: &strata_transport::Node, envelope| {
            if let Err(err) = node.send(envelope) {
                tracing::debug!(error = %err, "message not sent");
            }
        };
        if self.rt.writer.busy() {
            let node = self.rt.node.clone();
            self.rt.writer.then(Box::new(move || send(&node, envelope)));
        } else {
            send(&self.rt.node, envelope);
        }
    }

    /// Arms a timer for the state's next deadline.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let now = self.rt.clock.now().mono;
        let Some(due) = self.state.next_deadline() else {
            return;
        };
        if let Some((handle, at)) = self.wake {
            if at <= due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(due.saturating_sub(now), |actor, ctx| {
            actor.wake = None;
            let now = actor.rt.clock.now();
            actor.state.tick(now, &mut actor.effects);
            actor.execute(ctx);
        });
        self.wake = Some((handle, due));
    }
}

/// A launch as it runs off the actor's thread: the sandbox, then the container.
struct LaunchJob {
    agent_id: strata_protocol::AgentId,
    framework_id: strata_protocol::FrameworkId,
    executor_id: strata_protocol::ExecutorId,
    container_id: ContainerId,
    spec: LaunchSpec,
}

impl LaunchJob {
    fn run(
        self,
        sandbox: &SandboxLayout,
        containerizer: &dyn Containerizer,
    ) -> Result<u32, String> {
        sandbox
            .create_run(
                &self.agent_id,
                &self.framework_id,
                &self.executor_id,
                &self.container_id,
            )
            .map_err(|error| format!("cannot create the sandbox: {error}"))?;
        containerizer
            .launch(self.container_id, self.spec)
            .map(|launched| launched.pid)
            .map_err(|error| error.to_string())
    }
}

/// Turns a containerizer's report into the state's view of a container's end.
pub(crate) fn container_end(result: Result<Termination, ContainerizerError>) -> ContainerEnd {
    match result {
        Ok(termination) => {
            let status = match termination.status {
                Some(crate::containerizer::ExitStatus::Exited(code)) => code << 8,
                Some(crate::containerizer::ExitStatus::Signaled(signal)) => signal,
                None => -1,
            };
            ContainerEnd {
                message: termination.message,
                reason: termination
                    .reason
                    .and_then(|reason| reason.task_status_reason()),
                status,
            }
        }
        Err(error) => ContainerEnd {
            message: format!("Abnormal executor termination: {error}"),
            reason: None,
            status: -1,
        },
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(pid = %self.rt.pid, "agent started");
        for container_id in std::mem::take(&mut self.recovered) {
            self.watch(container_id, ctx);
        }
        self.execute(ctx);
        let master = self.master.clone();
        self.step(Input::MasterDetected(master), ctx);
    }
}

impl Handler<Delivery> for AgentActor {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, ctx: &mut Context<Self>) {
        let from = envelope.from;
        let input = match envelope.body {
            Body::Internal(message) => Input::FromMaster {
                from,
                epoch: envelope.epoch,
                message,
            },
            Body::ExecutorCall(mut call) => {
                self.annotate_limitation(&mut call);
                Input::FromExecutor {
                    conn: ExecutorConn::Actor(from),
                    call,
                }
            }
            other => {
                tracing::debug!(%from, body = ?std::mem::discriminant(&other), "ignoring message not meant for an agent");
                return;
            }
        };
        self.step(input, ctx);
    }
}

impl Handler<LinkEvent> for AgentActor {
    type Result = ();

    fn handle(&mut self, event: LinkEvent, ctx: &mut Context<Self>) {
        if event.state == LinkState::Disconnected {
            self.step(Input::LinkBroken(event.peer), ctx);
        }
    }
}

/// A read-only question about the state.
pub type InspectFn<R> = Box<dyn FnOnce(&AgentState, Now) -> R + Send>;

/// Runs `inspect` on the state and returns its result; for HTTP endpoints and tests.
pub struct Inspect<R>(pub InspectFn<R>);

impl<R: 'static> Message for Inspect<R> {
    type Result = R;
}

impl<R: 'static> Handler<Inspect<R>> for AgentActor {
    type Result = MessageResult<Inspect<R>>;

    fn handle(&mut self, Inspect(inspect): Inspect<R>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(inspect(&self.state, self.rt.clock.now()))
    }
}

/// Stops the actor and its transport node; containers keep running (as after a crash), so a
/// restarted agent can recover them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for AgentActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.rt.writer.flush();
        self.rt.node.shutdown();
        ctx.stop();
    }
}

/// Destroys every container and removes the agent's own cgroups (for tests and `strata dev`,
/// which must leave nothing behind).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DestroyAll;

impl Handler<DestroyAll> for AgentActor {
    type Result = actix::ResponseFuture<()>;

    fn handle(&mut self, _: DestroyAll, _: &mut Context<Self>) -> Self::Result {
        let destroy = self.destroy_everything();
        let containerizer = Arc::clone(&self.rt.containerizer);
        Box::pin(async move {
            destroy.await;
            if let Err(error) = containerizer.release_instance() {
                tracing::warn!(%error, "cannot remove the agent's cgroups");
            }
        })
    }
}

// Executors over the Mesos v1 executor HTTP API, container usage and metrics samples: the
// messages the HTTP layer sends.

/// Hands out the IDs of HTTP executor streams. One counter for the whole process, so an ID is
/// never reused while the state may still name a closed stream by it.
static NEXT_HTTP_STREAM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Why the agent refused an executor's HTTP call; each maps to the status Mesos answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecutorCallError {
    /// The framework or executor named by the call is unknown (400).
    #[error("{0}")]
    NotFound(&'static str),
    /// A call other than SUBSCRIBE from an executor that has not subscribed yet (403).
    #[error("executor is not subscribed")]
    NotSubscribed,
    /// The state machine refused the call, saying why (400).
    #[error("{0}")]
    Refused(String),
}

impl AgentActor {
    /// Checks what Mesos checks before acting on an executor call: its framework and executor
    /// exist, and only SUBSCRIBE comes from an executor still registering. Returns the
    /// executor's current connection.
    fn executor_http_conn(
        &self,
        call: &strata_protocol::executor::Call,
    ) -> Result<Option<ExecutorConn>, ExecutorCallError> {
        let framework = self
            .state
            .frameworks
            .get(&call.framework_id)
            .ok_or(ExecutorCallError::NotFound("Framework cannot be found"))?;
        let executor = framework
            .executors
            .get(&call.executor_id)
            .ok_or(ExecutorCallError::NotFound("Executor cannot be found"))?;
        let subscribe = matches!(call.body, strata_protocol::executor::CallBody::Subscribe(_));
        if executor.phase == crate::state::ExecutorPhase::Registering && !subscribe {
            return Err(ExecutorCallError::NotSubscribed);
        }
        Ok(executor.conn.clone())
    }

    /// Steps an executor call; the caller executes its effects. A refused call changes nothing.
    fn step_executor_call(
        &mut self,
        conn: ExecutorConn,
        call: strata_protocol::executor::Call,
    ) -> Result<(), ExecutorCallError> {
        let now = self.rt.clock.now();
        let result = self
            .state
            .step(now, Input::FromExecutor { conn, call }, &mut self.effects);
        result.map_err(|error| ExecutorCallError::Refused(error.to_string()))
    }
}

/// SUBSCRIBE from an executor over HTTP: registers `events` as the executor's event stream and
/// steps the call. Answers the stream's ID, which the HTTP layer reports back with
/// [`ExecutorStreamEnded`] when the client goes away.
pub struct OpenExecutorStream {
    pub call: strata_protocol::executor::Call,
    pub events: mpsc::UnboundedSender<Event>,
}

impl Message for OpenExecutorStream {
    type Result = Result<u64, ExecutorCallError>;
}

impl Handler<OpenExecutorStream> for AgentActor {
    type Result = Result<u64, ExecutorCallError>;

    fn handle(&mut self, open: OpenExecutorStream, ctx: &mut Context<Self>) -> Self::Result {
        self.executor_http_conn(&open.call)?;
        let id = NEXT_HTTP_STREAM.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The stream is in place before the step, so SUBSCRIBED and any queued LAUNCH go out
        // on it in this same turn.
        self.http_streams.insert(id, open.events);
        let result = self.step_executor_call(ExecutorConn::Http(id), open.call);
        if result.is_err() {
            self.http_streams.remove(&id);
        }
        self.execute(ctx);
        result.map(|()| id)
    }
}

/// UPDATE or MESSAGE from an executor over HTTP (HEARTBEAT needs no agent).
pub struct ExecutorHttpCall {
    pub call: strata_protocol::executor::Call,
}

impl Message for ExecutorHttpCall {
    type Result = Result<(), ExecutorCallError>;
}

impl Handler<ExecutorHttpCall> for AgentActor {
    type Result = Result<(), ExecutorCallError>;

    fn handle(&mut self, call: ExecutorHttpCall, ctx: &mut Context<Self>) -> Self::Result {
        // The state answers on the executor's subscribed connection, not on this request, so
        // the call is stepped as coming from that connection. `Http(0)` names no stream.
        let conn = self
            .executor_http_conn(&call.call)?
            .unwrap_or(ExecutorConn::Http(0));
        let result = self.step_executor_call(conn, call.call);
        self.execute(ctx);
        result
    }
}

/// An HTTP executor's event stream ended: the client went away or the response was dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ExecutorStreamEnded {
    pub id: u64,
}

impl Handler<ExecutorStreamEnded> for AgentActor {
    type Result = ();

    fn handle(&mut self, ended: ExecutorStreamEnded, ctx: &mut Context<Self>) {
        self.http_streams.remove(&ended.id);
        // Also when the agent closed the stream itself: the state ignores a connection that is
        // no longer any executor's.
        self.step(
            Input::ExecutorStreamClosed(ExecutorConn::Http(ended.id)),
            ctx,
        );
    }
}

/// Reads what every container uses, from the containerizer, off the actor's thread.
#[derive(Message)]
#[rtype(result = "BTreeMap<ContainerId, crate::containerizer::Usage>")]
pub struct ContainerUsage;

impl Handler<ContainerUsage> for AgentActor {
    type Result = actix::ResponseFuture<BTreeMap<ContainerId, crate::containerizer::Usage>>;

    fn handle(&mut self, _: ContainerUsage, _: &mut Context<Self>) -> Self::Result {
        let containerizer = Arc::clone(&self.rt.containerizer);
        let container_ids = self.state.container_ids();
        Box::pin(async move {
            // Usage reads /proc and cgroup files: blocking I/O.
            let read = tokio::task::spawn_blocking(move || {
                container_ids
                    .into_iter()
                    .filter_map(|container_id| {
                        let usage = containerizer.usage(&container_id);
                        usage.ok().map(|usage| (container_id, usage))
                    })
                    .collect()
            });
            read.await.unwrap_or_default()
        })
    }
}

/// Samples the state and the transport for `/metrics` and `/metrics/snapshot`.
#[derive(Message)]
#[rtype(result = "crate::metrics::Sample")]
pub struct SampleMetrics;

impl Handler<SampleMetrics> for AgentActor {
    type Result = MessageResult<SampleMetrics>;

    fn handle(&mut self, _: SampleMetrics, _: &mut Context<Self>) -> Self::Result {
        let now = self.rt.clock.now();
        MessageResult(crate::metrics::Sample::of(
            &self.state,
            now,
            self.rt.node.stats(),
        ))
    }
}
