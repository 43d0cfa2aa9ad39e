//! `POST /api/v1/executor`: the Mesos v1 executor HTTP API (JSON), so executors written for
//! Mesos run unchanged on a Strata agent.
//!
//! SUBSCRIBE answers 200 with a chunked stream of RecordIO-framed JSON events: SUBSCRIBED first,
//! then LAUNCH, KILL, ACKNOWLEDGED, MESSAGE, SHUTDOWN as the agent decides, and a HEARTBEAT
//! after every [`HEARTBEAT_INTERVAL`] without events, so that proxies keep the connection open
//! and the executor can tell a silent agent from a dead one. UPDATE, MESSAGE and HEARTBEAT
//! answer 202 Accepted: the agent's answer (ACKNOWLEDGED) comes on the event stream.
//!
//! As in Mesos: a body that is not a valid call, or names an unknown framework or executor,
//! answers 400 with the reason; a call other than SUBSCRIBE from an executor that has not
//! subscribed answers 403; a method other than POST 405; a body that is not JSON 415; a
//! SUBSCRIBE whose `Accept` excludes JSON 406.
//!
//! When the client goes away, actix-web drops the response body; dropping the stream tells the
//! agent, which forgets the connection (the executor may subscribe again).

use std::time::Duration;

use actix::Addr;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use strata_protocol::executor::{Call, CallBody, Event};
use tokio::sync::mpsc;

use super::{ApiError, HttpContext, check_accept, check_content_type, recordio};
use crate::actor::{
    AgentActor, ExecutorCallError, ExecutorHttpCall, ExecutorStreamEnded, OpenExecutorStream,
};

/// How long an event stream stays silent before it carries a HEARTBEAT (Mesos's default
/// executor heartbeat interval).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

impl From<ExecutorCallError> for ApiError {
    fn from(err: ExecutorCallError) -> Self {
        match err {
            ExecutorCallError::NotSubscribed => ApiError::Forbidden(err.to_string()),
            ExecutorCallError::NotFound(_) | ExecutorCallError::Refused(_) => {
                ApiError::BadRequest(err.to_string())
            }
        }
    }
}

/// Reads the body into a [`Call`], telling malformed JSON from an invalid call.
fn parse_call(body: &[u8]) -> Result<Call, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("request body is not JSON: {err}")))?;
    serde_json::from_value(value)
        .map_err(|err| ApiError::BadRequest(format!("invalid executor call: {err}")))
}

/// Handles `POST /api/v1/executor`.
pub async fn call(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<HttpContext>,
) -> Result<HttpResponse, ApiError> {
    check_content_type(&req)?;
    let call = parse_call(&body)?;
    match call.body {
        CallBody::Subscribe(_) => {
            check_accept(&req)?;
            subscribe(&ctx.agent, call).await
        }
        // Mesos answers heartbeats before looking anything up: they keep the connection warm.
        CallBody::Heartbeat => Ok(HttpResponse::Accepted().finish()),
        CallBody::Update(_) | CallBody::Message(_) => {
            ctx.agent.send(ExecutorHttpCall { call }).await??;
            Ok(HttpResponse::Accepted().finish())
        }
    }
}

async fn subscribe(agent: &Addr<AgentActor>, call: Call) -> Result<HttpResponse, ApiError> {
    let (events, rx) = mpsc::unbounded_channel();
    let id = agent.send(OpenExecutorStream { call, events }).await??;
    let agent = agent.clone();
    let stream = EventStream::new(rx, HEARTBEAT_INTERVAL, move || {
        agent.do_send(ExecutorStreamEnded { id });
    });
    let body = futures::stream::unfold(stream, |mut stream| async move {
        let event = stream.next().await?;
        match serde_json::to_vec(&event) {
            Ok(record) => Some((Ok::<_, actix_web::Error>(recordio(&record)), stream)),
            Err(error) => {
                // An event the agent made always serialises; ending the stream makes the
                // executor resubscribe rather than miss an event silently.
                tracing::error!(%error, event = event.type_name(), "cannot encode executor event");
                None
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

/// One executor's open event stream: the agent's events, with heartbeats while it is idle.
struct EventStream {
    rx: mpsc::UnboundedReceiver<Event>,
    heartbeat: tokio::time::Interval,
    _ended: OnDrop,
}

impl EventStream {
    /// Wraps `rx`; `ended` runs once the stream is dropped, however it ended: with the response
    /// when the client goes away, or after the agent closed it.
    fn new(
        rx: mpsc::UnboundedReceiver<Event>,
        heartbeat_interval: Duration,
        ended: impl FnOnce() + 'static,
    ) -> EventStream {
        let first = tokio::time::Instant::now() + heartbeat_interval;
        EventStream {
            rx,
            heartbeat: tokio::time::interval_at(first, heartbeat_interval),
            _ended: OnDrop(Some(Box::new(ended))),
        }
    }

    /// The next event: one from the agent, or a heartbeat when due. `None` once the agent
    /// closed the stream.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            // Events first: a busy stream needs no heartbeat.
            biased;
            event = self.rx.recv() => {
                self.heartbeat.reset();
                event
            }
            _ = self.heartbeat.tick() => Some(Event::Heartbeat),
        }
    }
}

/// Runs a closure when dropped.
struct OnDrop(Option<Box<dyn FnOnce()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(ended) = self.0.take() {
            ended();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use strata_protocol::Bytes;
    use strata_protocol::executor::Message;

    use super::*;

    const INTERVAL: Duration = Duration::from_millis(50);
    const DEADLINE: Duration = Duration::from_secs(5);

    fn message(data: &[u8]) -> Event {
        Event::Message(Message {
            data: Bytes::new(data.to_vec()),
        })
    }

    #[actix_rt::test]
    async fn events_pass_in_order_and_an_idle_stream_gets_heartbeats() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut stream = EventStream::new(rx, INTERVAL, || {});
        tx.send(message(b"one")).unwrap();
        tx.send(message(b"two")).unwrap();
        assert_eq!(stream.next().await, Some(message(b"one")));
        assert_eq!(stream.next().await, Some(message(b"two")));
        let idle = tokio::time::timeout(DEADLINE, stream.next()).await;
        assert_eq!(idle.expect("a heartbeat in time"), Some(Event::Heartbeat));
        tx.send(message(b"three")).unwrap();
        assert_eq!(stream.next().await, Some(message(b"three")));
    }

    #[actix_rt::test]
    async fn the_stream_ends_when_the_agent_closes_it_and_reports_its_end_once() {
        let ends = Rc::new(Cell::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let counted = Rc::clone(&ends);
        let mut stream = EventStream::new(rx, DEADLINE, move || counted.set(counted.get() + 1));
        tx.send(message(b"last")).unwrap();
        drop(tx);
        assert_eq!(stream.next().await, Some(message(b"last")));
        assert_eq!(stream.next().await, None);
        assert_eq!(
            ends.get(),
            0,
            "reported before the response let go of the stream"
        );
        drop(stream);
        assert_eq!(ends.get(), 1);
    }

    #[actix_rt::test]
    async fn a_stream_dropped_by_a_departed_client_reports_its_end() {
        let ends = Rc::new(Cell::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let counted = Rc::clone(&ends);
        let stream = EventStream::new(rx, DEADLINE, move || counted.set(counted.get() + 1));
        drop(stream);
        assert_eq!(ends.get(), 1);
        // The agent's sender now fails, which is how it learns too.
        assert!(tx.send(message(b"late")).is_err());
    }
}
