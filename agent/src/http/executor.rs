//! `POST /api/v1/executor`: the Mesos v1 executor HTTP API (JSON), so executors written for
//! Mesos run unchanged on a Strata agent.
//!
//! SUBSCRIBE answers 200 with a chunked stream of RecordIO-framed JSON events: SUBSCRIBED first,
//! then LAUNCH, KILL, ACKNOWLEDGED, MESSAGE, SHUTDOWN as the agent decides, and a HEARTBEAT
//! every [`HEARTBEAT_INTERVAL`] so that proxies keep the connection open and the executor can
//! tell a silent agent from a dead one. UPDATE, MESSAGE and HEARTBEAT answer 202 Accepted: the
//! agent's answer (ACKNOWLEDGED) comes on the event stream.
//!
//! As in Mesos: a body that is not a valid call, or names an unknown framework or executor,
//! answers 400 with the reason; a call other than SUBSCRIBE from an executor that has not
//! subscribed answers 403; a method other than POST 405; a body that is not JSON 415; a
//! SUBSCRIBE whose `Accept` excludes JSON 406.
//!
//! When the client goes away, actix-web drops the response body; the stream's guard then tells
//! the agent, which forgets the connection (the executor may subscribe again).

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

/// How often an idle event stream carries a HEARTBEAT (Mesos's default executor heartbeat).
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
    let stream = EventStream {
        rx,
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + HEARTBEAT_INTERVAL,
            HEARTBEAT_INTERVAL,
        ),
        _guard: StreamGuard {
            agent: agent.clone(),
            id,
        },
    };
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

/// One executor's open event stream.
struct EventStream {
    rx: mpsc::UnboundedReceiver<Event>,
    heartbeat: tokio::time::Interval,
    _guard: StreamGuard,
}

impl EventStream {
    /// The next event: one from the agent, or a heartbeat when due. `None` once the agent
    /// closed the stream.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            event = self.rx.recv() => event,
            _ = self.heartbeat.tick() => Some(Event::Heartbeat),
        }
    }
}

/// Tells the agent that a stream ended, however it ended: dropped with the response when the
/// client goes away, or after the agent closed it.
struct StreamGuard {
    agent: Addr<AgentActor>,
    id: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.agent.do_send(ExecutorStreamEnded { id: self.id });
    }
}
