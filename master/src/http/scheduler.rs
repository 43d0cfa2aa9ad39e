//! `POST /api/v1/scheduler`: the Mesos v1 scheduler HTTP API (JSON), the master's second door
//! for frameworks.
//!
//! A call decodes into the same typed [`Call`] the actor protocol carries and goes to the same
//! `MasterState::scheduler_call`, with the framework's connection named by its
//! `Mesos-Stream-Id` ([`FrameworkConn::Http`]). SUBSCRIBE answers 200 with a chunked RecordIO
//! stream of events (SUBSCRIBED first) that stays open as long as the subscription; every other
//! call answers 202 (UPDATE_FRAMEWORK 200) once the state applied it, and must carry the
//! `Mesos-Stream-Id` of the framework's current subscription.
//!
//! The checks and their order follow Mesos's `Master::Http::scheduler`, so clients written
//! against Mesos see the statuses they expect.

use actix::Addr;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use strata_protocol::FrameworkId;
use strata_protocol::scheduler::{Call, CallBody};
use tokio::sync::mpsc;

use super::{ApiError, HttpContext, accepts_json, check_json_body, recordio};
use crate::actor::{CloseHttpStream, MasterActor, OpenHttpStream, Operate};
use crate::state::{CallError, FrameworkConn, MasterState};

/// The header naming a framework's event stream.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

impl From<CallError> for ApiError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::BadRequest(message) => ApiError::BadRequest(message),
            CallError::Forbidden(message) => ApiError::Forbidden(message),
        }
    }
}

/// Handles one scheduler call.
pub async fn call(
    req: HttpRequest,
    body: web::Bytes,
    ctx: web::Data<HttpContext>,
) -> Result<HttpResponse, ApiError> {
    check_json_body(&req)?;
    let call: Call = serde_json::from_slice(&body)
        .map_err(|err| ApiError::BadRequest(format!("failed to parse the call: {err}")))?;
    let stream_id = match req.headers().get(STREAM_ID_HEADER) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::BadRequest(format!("the '{STREAM_ID_HEADER}' header is not text"))
                })?
                .to_owned(),
        ),
        None => None,
    };
    if matches!(call.body, CallBody::Subscribe(_)) {
        return subscribe(&req, stream_id, call, &ctx.master).await;
    }
    let Some(framework_id) = call.framework_id.clone() else {
        return Err(ApiError::BadRequest(
            "expecting 'framework_id' to be present".into(),
        ));
    };
    let is_update_framework = matches!(call.body, CallBody::UpdateFramework(_));
    let call_type = call.body.type_name();
    let applied: Result<(), ApiError> = ctx
        .master
        .send(Operate(Box::new(move |state, now, out| {
            let conn = current_stream(state, &framework_id, stream_id)?;
            state.scheduler_call(now, conn, call, out)?;
            Ok(())
        })))
        .await?;
    if let Err(err) = applied {
        tracing::info!(call = call_type, error = %err, "refused scheduler call");
        return Err(err);
    }
    Ok(if is_update_framework {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::Accepted().finish()
    })
}

/// Returns the connection a call for `framework_id` may act on: the framework's current HTTP
/// subscription, which `stream_id` must name.
fn current_stream(
    state: &MasterState,
    framework_id: &FrameworkId,
    stream_id: Option<String>,
) -> Result<FrameworkConn, ApiError> {
    let conn = match state.framework_connection(framework_id) {
        Some(Some(conn)) => conn,
        Some(None) => {
            return Err(ApiError::Forbidden(format!(
                "framework {framework_id} is not subscribed"
            )));
        }
        None if state.completed_framework_info(framework_id).is_some() => {
            return Err(ApiError::Forbidden(format!(
                "framework {framework_id} has been removed"
            )));
        }
        None => {
            return Err(ApiError::BadRequest(format!(
                "framework {framework_id} cannot be found"
            )));
        }
    };
    let FrameworkConn::Http(current) = conn else {
        return Err(ApiError::Forbidden(format!(
            "framework {framework_id} is not connected via HTTP"
        )));
    };
    let Some(stream_id) = stream_id else {
        return Err(ApiError::BadRequest(format!(
            "all non-subscribe calls should include the '{STREAM_ID_HEADER}' header"
        )));
    };
    if &stream_id != current {
        return Err(ApiError::BadRequest(format!(
            "the stream ID '{stream_id}' included in this request didn't match the stream ID \
             currently associated with framework ID {framework_id}"
        )));
    }
    Ok(conn.clone())
}

/// SUBSCRIBE: opens an event stream under a fresh `Mesos-Stream-Id` and hands the call to the
/// state, which sends SUBSCRIBED (or ERROR) on it.
async fn subscribe(
    req: &HttpRequest,
    stream_id: Option<String>,
    call: Call,
    master: &Addr<MasterActor>,
) -> Result<HttpResponse, ApiError> {
    if !accepts_json(req) {
        return Err(ApiError::NotAcceptable(
            "expecting 'Accept' to allow 'application/json'".into(),
        ));
    }
    if stream_id.is_some() {
        return Err(ApiError::BadRequest(format!(
            "subscribe calls should not include the '{STREAM_ID_HEADER}' header"
        )));
    }
    let stream_id = new_stream_id();
    let (events, rx) = mpsc::unbounded_channel();
    master
        .send(OpenHttpStream {
            stream_id: stream_id.clone(),
            events,
        })
        .await?;
    // From here on the stream is registered; whatever happens, closing it must reach the actor.
    let guard = StreamGuard {
        stream_id: stream_id.clone(),
        master: master.clone(),
    };
    let conn = FrameworkConn::Http(stream_id.clone());
    let subscribed: Result<(), CallError> = master
        .send(Operate(Box::new(move |state, now, out| {
            state.scheduler_call(now, conn, call, out)
        })))
        .await?;
    if let Err(err) = subscribed {
        tracing::info!(call = "SUBSCRIBE", error = %err, "refused scheduler call");
        return Err(err.into());
    }
    tracing::debug!(%stream_id, "http event stream opened");
    let records = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        loop {
            let event = rx.recv().await?;
            match serde_json::to_value(&event) {
                Ok(record) => {
                    return Some((Ok::<_, actix_web::Error>(recordio(&record)), (rx, guard)));
                }
                Err(err) => tracing::error!(
                    event = event.type_name(),
                    error = %err,
                    "cannot render an event; skipping it"
                ),
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((STREAM_ID_HEADER, stream_id))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(records))
}

/// Returns a fresh stream ID: a random UUID (version 4) in its text form, as Mesos uses.
fn new_stream_id() -> String {
    let mut bytes = [0u8; 16];
    fastrand::fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Lives as long as a framework's HTTP response: when the response ends (the client closed the
/// connection, or the master closed the stream), the actor forgets the stream and disconnects
/// the framework if it was still subscribed on it.
struct StreamGuard {
    stream_id: String,
    master: Addr<MasterActor>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        tracing::debug!(stream_id = %self.stream_id, "http event stream closed");
        self.master.do_send(CloseHttpStream {
            stream_id: std::mem::take(&mut self.stream_id),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_distinct_version_4_uuids() {
        let a = new_stream_id();
        let b = new_stream_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.len() <= 128, "Mesos clients expect at most 128 bytes");
    }
}
