//! The scheduler side of the framework API: subscribe to a master, receive offers and
//! updates, launch and kill tasks.
//!
//! Two ways to write a framework:
//! - **Stream:** [`FrameworkBuilder::subscribe`] returns a [`Client`] (cheap to clone, for
//!   calls) and [`Events`], a stream of typed [`Event`]s that composes with `tokio::select!`.
//! - **Callbacks:** implement [`Scheduler`] (async methods, all optional) and hand it to
//!   [`FrameworkBuilder::run`], as with Mesos's `SchedulerDriver`.
//!
//! ```no_run
//! use strata_framework_sdk::scheduler::{Event, Framework, TaskSpec};
//!
//! # async fn hello() -> Result<(), strata_framework_sdk::scheduler::SdkError> {
//! let (client, mut events) = Framework::builder("hello-rs")
//!     .master("127.0.0.1:5050")
//!     .role("dev")
//!     .failover_timeout_secs(600)
//!     .subscribe()
//!     .await?;
//! let mut pending = vec![TaskSpec::command("hello", "echo hi").cpus(0.1).mem_mb(32)];
//! while let Some(event) = events.next().await {
//!     match event? {
//!         Event::Offers(offers) => {
//!             let plan = offers.pack(&mut pending); // first-fit; the rest is declined
//!             client.accept(plan).await?;
//!             if pending.is_empty() {
//!                 client.suppress().await?;
//!             }
//!         }
//!         Event::Update(status) => tracing::info!(task = %status.task_id, state = %status.state),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The SDK does the chores by default: it tries the masters in turn, resubscribes with the same
//! framework ID after a disconnection (jittered backoff; a heartbeat watchdog notices a silent
//! master), reconciles every task after each subscription, acknowledges updates
//! ([`FrameworkBuilder::manual_acks`] turns that off), and declines offers the program leaves
//! untouched ([`Offers`] explains when).
//!
//! Layout: `builder.rs` (configuration, subscribe, run), `client.rs` (calls), `events.rs`
//! (events, offers, the stream), `driver.rs` (the transport thread and its chores),
//! `task_spec.rs` and `pack.rs` (describing tasks and fitting them into offers).

mod builder;
mod client;
mod driver;
mod events;
mod pack;
mod task_spec;

pub use builder::{Framework, FrameworkBuilder, MASTER_ENV};
pub use client::Client;
pub use events::{Event, Events, Offers, Subscribed};
pub use pack::{OfferLaunch, Plan, pack};
pub use task_spec::{TaskSpec, TaskSpecError};

use strata_protocol::ids::OfferId;
use strata_protocol::mesos::TaskStatus;
use strata_protocol::scheduler::{Failure, Message};
use strata_transport::TransportError;

/// Why the SDK cannot subscribe or take a call.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("no master given")]
    NoMasters,
    #[error("invalid master address {addr:?}: {reason}")]
    InvalidMaster { addr: String, reason: String },
    #[error("cannot start the transport node: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot start the driver thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the master refused the subscription: {0}")]
    Refused(String),
    #[error("no master answered the subscription within {0:?}")]
    SubscribeTimeout(std::time::Duration),
    #[error("the framework is not subscribed right now")]
    NotSubscribed,
    #[error("the scheduler driver has stopped")]
    Stopped,
}

/// A framework written as callbacks, driven by [`FrameworkBuilder::run`]. Every method has a
/// default that does nothing (offers not kept are declined, updates acknowledged).
///
/// Callbacks run one at a time, in event order, on the task that called `run`.
// The futures are awaited in place by `run`, never spawned, so they need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Scheduler {
    /// The master confirmed a subscription (also after each resubscription).
    async fn registered(&mut self, client: &Client, subscribed: &Subscribed) {
        let _ = (client, subscribed);
    }

    /// New offers; see [`Offers`] for what happens to those left untouched.
    async fn offers(&mut self, client: &Client, offers: Offers) {
        let _ = (client, offers);
    }

    /// An offer was withdrawn.
    async fn rescinded(&mut self, client: &Client, offer_id: OfferId) {
        let _ = (client, offer_id);
    }

    /// A task changed state; acknowledged when this returns, unless `manual_acks`.
    async fn update(&mut self, client: &Client, status: TaskStatus) {
        let _ = (client, status);
    }

    /// Data from an executor.
    async fn message(&mut self, client: &Client, message: Message) {
        let _ = (client, message);
    }

    /// An agent was removed or an executor exited.
    async fn failure(&mut self, client: &Client, failure: Failure) {
        let _ = (client, failure);
    }

    /// The master ended the subscription for good; `run` returns after this.
    async fn error(&mut self, client: &Client, message: String) {
        let _ = (client, message);
    }

    /// The subscription is lost; the SDK is reconnecting.
    async fn disconnected(&mut self, client: &Client) {
        let _ = client;
    }
}

/// Lets `run(&mut scheduler)` drive a scheduler the program looks at afterwards.
impl<S: Scheduler> Scheduler for &mut S {
    async fn registered(&mut self, client: &Client, subscribed: &Subscribed) {
        (**self).registered(client, subscribed).await;
    }

    async fn offers(&mut self, client: &Client, offers: Offers) {
        (**self).offers(client, offers).await;
    }

    async fn rescinded(&mut self, client: &Client, offer_id: OfferId) {
        (**self).rescinded(client, offer_id).await;
    }

    async fn update(&mut self, client: &Client, status: TaskStatus) {
        (**self).update(client, status).await;
    }

    async fn message(&mut self, client: &Client, message: Message) {
        (**self).message(client, message).await;
    }

    async fn failure(&mut self, client: &Client, failure: Failure) {
        (**self).failure(client, failure).await;
    }

    async fn error(&mut self, client: &Client, message: String) {
        (**self).error(client, message).await;
    }

    async fn disconnected(&mut self, client: &Client) {
        (**self).disconnected(client).await;
    }
}

async fn run_scheduler(
    client: Client,
    mut events: Events,
    mut scheduler: impl Scheduler,
) -> Result<(), SdkError> {
    while let Some(event) = events.next_unacked().await {
        match event? {
            Event::Subscribed(subscribed) => scheduler.registered(&client, &subscribed).await,
            Event::Offers(offers) => scheduler.offers(&client, offers).await,
            Event::Rescind(offer_id) => scheduler.rescinded(&client, offer_id).await,
            Event::Update(status) => {
                let acked = client.shared.auto_ack.then(|| status.clone());
                scheduler.update(&client, status).await;
                if let Some(status) = acked {
                    events.acknowledge(&status);
                }
            }
            Event::Message(message) => scheduler.message(&client, message).await,
            Event::Failure(failure) => scheduler.failure(&client, failure).await,
            Event::Error(message) => scheduler.error(&client, message).await,
            Event::Disconnected => scheduler.disconnected(&client).await,
            Event::Connected { .. } | Event::Heartbeat => {}
        }
    }
    Ok(())
}
