//! [`Client`]: the calls a framework makes, sent through the driver thread.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strata_protocol::ids::{AgentId, ExecutorId, FrameworkId, OfferId, TaskId};
use strata_protocol::mesos::Launch;
use strata_protocol::mesos::{
    Bytes, Filters, Offer, Operation, OperationBody, TaskInfo, TaskStatus,
};
use strata_protocol::scheduler::{
    Accept, Acknowledge, CallBody, Decline, Kill, Message, Reconcile, ReconcileTask, Revive,
    Suppress,
};
use tokio::sync::mpsc;

use super::SdkError;
use super::pack::Plan;

/// What a [`Client`] (or an [`super::Offers`] being dropped) asks of the driver thread.
#[derive(Debug)]
pub(crate) enum Command {
    Call(CallBody),
    /// TEARDOWN, then stop: the framework is gone.
    Teardown,
    Stop,
}

/// State the driver thread and the program's side share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) framework_id: Mutex<Option<FrameworkId>>,
    pub(crate) subscribed: AtomicBool,
    /// Offers received from the current master and not yet accepted, declined or rescinded.
    pub(crate) outstanding: Mutex<BTreeSet<OfferId>>,
    pub(crate) refuse: Duration,
    pub(crate) auto_ack: bool,
    /// Set by the driver when it ends on purpose, so the stream can tell a crash from a stop.
    pub(crate) ended: AtomicBool,
}

impl Shared {
    pub(crate) fn new(refuse: Duration, auto_ack: bool) -> Shared {
        Shared {
            framework_id: Mutex::new(None),
            subscribed: AtomicBool::new(false),
            outstanding: Mutex::new(BTreeSet::new()),
            refuse,
            auto_ack,
            ended: AtomicBool::new(false),
        }
    }

    pub(crate) fn outstanding(&self) -> std::sync::MutexGuard<'_, BTreeSet<OfferId>> {
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes `offer_ids` from the outstanding offers; returns those that were there.
    pub(crate) fn take_outstanding<'a>(
        &self,
        offer_ids: impl IntoIterator<Item = &'a OfferId>,
    ) -> Vec<OfferId> {
        let mut outstanding = self.outstanding();
        offer_ids
            .into_iter()
            .filter(|id| outstanding.remove(*id))
            .cloned()
            .collect()
    }
}

/// Sends a framework's calls to the master. Cheap to clone; every clone talks to the same
/// driver.
///
/// Calls are fire-and-forget, as in the Mesos v1 API: a call that the master refuses shows up
/// as an event (a TASK_ERROR update, an ERROR) rather than as an `Err` here. `Err` means the
/// call could not leave: the framework is not subscribed right now
/// ([`SdkError::NotSubscribed`], retry after the next [`super::Event::Subscribed`]) or the
/// driver has stopped.
#[derive(Clone)]
pub struct Client {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("framework_id", &self.framework_id())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Returns the framework ID the master assigned, once subscribed.
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared
            .framework_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells whether the framework is subscribed with a master right now.
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    /// Launches the tasks of `plan`: one ACCEPT per offer it uses. Resources the plan leaves
    /// unused on those offers are declined for `refuse_seconds` (the plan's, else the
    /// builder's).
    pub async fn accept(&self, plan: Plan) -> Result<(), SdkError> {
        self.check_subscribed()?;
        let refuse = plan.refuse.unwrap_or(self.shared.refuse);
        let launches = plan.into_launches();
        self.shared
            .take_outstanding(launches.iter().map(|launch| &launch.offer_id));
        for launch in launches {
            let operation = Operation::from(OperationBody::Launch(Launch {
                task_infos: launch.tasks,
            }));
            self.send(CallBody::Accept(Accept {
                offer_ids: vec![launch.offer_id],
                operations: vec![operation],
                filters: Some(filters(refuse)),
            }))?;
        }
        Ok(())
    }

    /// Launches `tasks` on `offer` as given (nothing checks that they fit).
    pub async fn launch(&self, offer: &Offer, tasks: Vec<TaskInfo>) -> Result<(), SdkError> {
        let mut plan = Plan::new();
        plan.launch(offer, tasks);
        self.accept(plan).await
    }

    /// Declines offers for the builder's `refuse_seconds`.
    pub async fn decline(
        &self,
        offer_ids: impl IntoIterator<Item = OfferId>,
    ) -> Result<(), SdkError> {
        self.decline_for(offer_ids, self.shared.refuse).await
    }

    /// Declines offers; their resources are not offered to this framework again for `refuse`
    /// (unless it revives).
    pub async fn decline_for(
        &self,
        offer_ids: impl IntoIterator<Item = OfferId>,
        refuse: Duration,
    ) -> Result<(), SdkError> {
        self.check_subscribed()?;
        let offer_ids: Vec<OfferId> = offer_ids.into_iter().collect();
        self.shared.take_outstanding(&offer_ids);
        self.send(decline_call(offer_ids, refuse))
    }

    /// Kills a task. The master answers TASK_KILLED (or TASK_LOST for a task it does not know).
    pub async fn kill(&self, task_id: &TaskId) -> Result<(), SdkError> {
        self.call(CallBody::Kill(Kill {
            task_id: task_id.clone(),
            agent_id: None,
            kill_policy: None,
        }))
        .await
    }

    /// Asks for offers again for every role, clearing the filters of earlier declines.
    pub async fn revive(&self) -> Result<(), SdkError> {
        self.call(CallBody::Revive(Revive::default())).await
    }

    /// Stops offers for every role until [`Client::revive`].
    pub async fn suppress(&self) -> Result<(), SdkError> {
        self.call(CallBody::Suppress(Suppress::default())).await
    }

    /// Asks for the latest state of these tasks (explicit reconciliation); answers come as
    /// updates with REASON_RECONCILIATION.
    pub async fn reconcile(
        &self,
        tasks: impl IntoIterator<Item = (TaskId, Option<AgentId>)>,
    ) -> Result<(), SdkError> {
        let tasks = tasks
            .into_iter()
            .map(|(task_id, agent_id)| ReconcileTask { task_id, agent_id })
            .collect();
        self.call(CallBody::Reconcile(Reconcile { tasks })).await
    }

    /// Asks for the state of every task the master knows for the framework (implicit
    /// reconciliation; the SDK does it after every subscription).
    pub async fn reconcile_all(&self) -> Result<(), SdkError> {
        self.call(CallBody::Reconcile(Reconcile::default())).await
    }

    /// Acknowledges an update; does nothing for updates without a uuid. Only needed with
    /// [`super::FrameworkBuilder::manual_acks`].
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SdkError> {
        match acknowledge_call(status) {
            Some(body) => self.call(body).await,
            None => Ok(()),
        }
    }

    /// Sends opaque data to an executor, best effort.
    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), SdkError> {
        self.call(CallBody::Message(Message {
            agent_id,
            executor_id,
            data: Bytes::new(data),
        }))
        .await
    }

    /// Removes the framework: the master kills its tasks and executors. The driver stops and
    /// the event stream ends.
    pub async fn teardown(&self) -> Result<(), SdkError> {
        self.check_subscribed()?;
        self.commands
            .send(Command::Teardown)
            .map_err(|_| SdkError::Stopped)
    }

    /// Stops the driver without removing the framework: the master keeps its tasks for the
    /// failover timeout, and another instance may resubscribe with its ID. The event stream
    /// ends.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Sends any scheduler call; the SDK fills in the framework ID.
    pub async fn call(&self, body: CallBody) -> Result<(), SdkError> {
        self.check_subscribed()?;
        self.send(body)
    }

    fn check_subscribed(&self) -> Result<(), SdkError> {
        if self.is_subscribed() {
            Ok(())
        } else {
            Err(SdkError::NotSubscribed)
        }
    }

    pub(crate) fn send(&self, body: CallBody) -> Result<(), SdkError> {
        self.commands
            .send(Command::Call(body))
            .map_err(|_| SdkError::Stopped)
    }
}

pub(crate) fn filters(refuse: Duration) -> Filters {
    Filters {
        refuse_seconds: Some(refuse.as_secs_f64()),
    }
}

pub(crate) fn decline_call(offer_ids: Vec<OfferId>, refuse: Duration) -> CallBody {
    CallBody::Decline(Decline {
        offer_ids,
        filters: Some(filters(refuse)),
    })
}

pub(crate) fn acknowledge_call(status: &TaskStatus) -> Option<CallBody> {
    let (Some(uuid), Some(agent_id)) = (status.uuid.clone(), status.agent_id.clone()) else {
        return None;
    };
    Some(CallBody::Acknowledge(Acknowledge {
        agent_id,
        task_id: status.task_id.clone(),
        uuid,
    }))
}
