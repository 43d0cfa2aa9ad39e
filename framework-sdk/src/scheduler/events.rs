//! The typed events a framework receives: [`Event`], the [`Events`] stream, and [`Offers`],
//! which declines what the program leaves untouched.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use strata_protocol::Pid;
use strata_protocol::ids::{FrameworkId, OfferId};
use strata_protocol::mesos::{Offer, TaskStatus};
use strata_protocol::scheduler::{Failure, Message};
use tokio::sync::mpsc;
use tracing::debug;

use super::SdkError;
use super::client::{Client, Command, acknowledge_call, decline_call};
use super::pack::{Plan, pack};
use super::task_spec::TaskSpec;

/// What the driver thread hands to the program's side.
#[derive(Debug)]
pub(crate) enum Raw {
    Connected(Pid),
    Subscribed(Subscribed),
    Disconnected,
    Offers(Vec<Offer>),
    Rescind(OfferId),
    Update(TaskStatus),
    Message(Message),
    Failure(Failure),
    Error(String),
    Heartbeat,
}

/// A subscription the master confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribed {
    /// The framework's ID: assigned by the master at the first subscription, kept after.
    pub framework_id: FrameworkId,
    /// The master the framework is subscribed with.
    pub master: Pid,
    /// How often the master sends HEARTBEAT.
    pub heartbeat_interval: Duration,
    /// False for the first subscription of this driver, true after a reconnection or a
    /// master change.
    pub resubscribed: bool,
}

/// Something that happened to the framework.
#[derive(Debug)]
pub enum Event {
    /// The connection to a master is up; the SDK subscribes next.
    Connected { master: Pid },
    /// The master confirmed a (re)subscription. The SDK has already asked it to reconcile
    /// every task, so updates for live tasks follow.
    Subscribed(Subscribed),
    /// The subscription is lost (the connection broke, or heartbeats stopped); offers held
    /// are void. The SDK reconnects and resubscribes by itself.
    Disconnected,
    /// New offers; those the program neither accepts nor declines are declined when the
    /// [`Offers`] value is dropped.
    Offers(Offers),
    /// An offer was withdrawn.
    Rescind(OfferId),
    /// A task status update. Unless the builder set `manual_acks`, the SDK acknowledges it
    /// when it hands it to the program ([`Events`]) or when `Scheduler::update` returns.
    Update(TaskStatus),
    /// Data from an executor.
    Message(Message),
    /// An agent was removed, or an executor exited.
    Failure(Failure),
    /// The master ended the subscription for good ("Framework failed over", "Framework has
    /// been removed"); the stream ends after it.
    Error(String),
    /// The master's keepalive.
    Heartbeat,
}

/// Offers from one OFFERS event.
///
/// **Auto-decline rule:** offers are the program's while this value lives. When it is
/// dropped, every offer in it that was neither accepted ([`Client::accept`], including
/// through a [`Plan`]) nor declined is declined with the builder's `refuse_seconds`. In a
/// `match` on the event stream that is the end of the arm; in `Scheduler::offers`, the end of
/// the callback unless the program keeps the value. Keep it alive while an offer may still be
/// used.
pub struct Offers {
    offers: Vec<Offer>,
    client: Client,
}

impl std::fmt::Debug for Offers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.offers.iter().map(|offer| &offer.id))
            .finish()
    }
}

impl Offers {
    /// Packs `pending` first-fit into these offers; see [`pack`].
    pub fn pack(&self, pending: &mut Vec<TaskSpec>) -> Plan {
        pack(&self.offers, pending)
    }

    /// Returns the offers.
    pub fn as_slice(&self) -> &[Offer] {
        &self.offers
    }

    /// Returns the offer IDs.
    pub fn ids(&self) -> impl Iterator<Item = &OfferId> {
        self.offers.iter().map(|offer| &offer.id)
    }

    /// Declines every offer not yet used, for `refuse`.
    pub async fn decline_all_for(&self, refuse: Duration) -> Result<(), SdkError> {
        let ids: Vec<OfferId> = self.ids().cloned().collect();
        self.client.decline_for(ids, refuse).await
    }
}

impl std::ops::Deref for Offers {
    type Target = [Offer];
    fn deref(&self) -> &[Offer] {
        &self.offers
    }
}

impl Drop for Offers {
    fn drop(&mut self) {
        let untouched = self.client.shared.take_outstanding(self.ids());
        if untouched.is_empty() {
            return;
        }
        debug!(
            n_offers = untouched.len(),
            "declining offers left untouched"
        );
        let _ = self.client.commands.send(Command::Call(decline_call(
            untouched,
            self.client.shared.refuse,
        )));
    }
}

/// The framework's events, in the order the master sent them.
///
/// A `Stream` of `Result<Event, SdkError>`; it ends after an [`Event::Error`], a teardown or
/// [`Client::stop`]. An `Err` item means the driver thread died. Dropping the stream stops the
/// driver.
pub struct Events {
    raw: mpsc::UnboundedReceiver<Raw>,
    client: Client,
    /// The first SUBSCRIBED, read by `subscribe` and handed out first.
    first: Option<Subscribed>,
    done: bool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Events {
    pub(crate) fn new(
        raw: mpsc::UnboundedReceiver<Raw>,
        client: Client,
        first: Subscribed,
    ) -> Events {
        Events {
            raw,
            client,
            first: Some(first),
            done: false,
        }
    }

    /// Returns the next event, or `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Result<Event, SdkError>> {
        std::future::poll_fn(|cx| self.poll_event(cx, self.client.shared.auto_ack)).await
    }

    /// Like [`Events::next`], but never acknowledges: the caller does once it handled the
    /// update.
    pub(crate) async fn next_unacked(&mut self) -> Option<Result<Event, SdkError>> {
        std::future::poll_fn(|cx| self.poll_event(cx, false)).await
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        ack: bool,
    ) -> Poll<Option<Result<Event, SdkError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Event::Subscribed(first))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.raw.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(raw)) => {
                let event = self.convert(raw);
                if ack && let Event::Update(status) = &event {
                    self.acknowledge(status);
                }
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.client.shared.ended.load(Ordering::Acquire) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(SdkError::Stopped)))
                }
            }
        }
    }

    pub(crate) fn acknowledge(&self, status: &TaskStatus) {
        if let Some(body) = acknowledge_call(status) {
            let _ = self.client.commands.send(Command::Call(body));
        }
    }

    fn convert(&self, raw: Raw) -> Event {
        match raw {
            Raw::Connected(master) => Event::Connected { master },
            Raw::Subscribed(subscribed) => Event::Subscribed(subscribed),
            Raw::Disconnected => Event::Disconnected,
            Raw::Offers(offers) => Event::Offers(Offers {
                offers,
                client: self.client.clone(),
            }),
            Raw::Rescind(offer_id) => Event::Rescind(offer_id),
            Raw::Update(status) => Event::Update(status),
            Raw::Message(message) => Event::Message(message),
            Raw::Failure(failure) => Event::Failure(failure),
            Raw::Error(message) => Event::Error(message),
            Raw::Heartbeat => Event::Heartbeat,
        }
    }
}

impl futures::Stream for Events {
    type Item = Result<Event, SdkError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let ack = this.client.shared.auto_ack;
        this.poll_event(cx, ack)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.client.commands.send(Command::Stop);
    }
}
