//! The master's HTTP surface (actix-web): health, version, state, redirect, metrics and the
//! operator API. Handlers only parse and render; every question goes to the master actor.
//!
//! The transport relays HTTP connections arriving on the master's port to this server, so
//! clients reach both on one port, as with Mesos.

pub(crate) mod operator;
pub mod scheduler;
mod state_json;

use actix::Addr;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::actor::{Inspect, MasterActor, RenderMetrics};
use crate::metrics::mesos_snapshot;

/// The Mesos version Strata reports: clients such as pymesos read it to pick API features, and
/// Strata implements the v1 API of this Mesos release.
pub const MESOS_COMPAT_VERSION: &str = "1.11.0";

/// The largest request body accepted, in bytes; larger ones get 413.
pub const BODY_LEN_MAX: usize = 1024 * 1024;

/// What every handler needs.
#[derive(Clone)]
pub struct HttpContext {
    pub master: Addr<MasterActor>,
    /// The flags the master was started with, for GET_FLAGS and `/state`.
    pub flags: Vec<(String, String)>,
    pub start_time: f64,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(BODY_LEN_MAX))
        .route("/health", web::get().to(health))
        .route("/master/health", web::get().to(health))
        .route("/version", web::get().to(version))
        .route("/redirect", web::get().to(redirect))
        .route("/master/redirect", web::get().to(redirect))
        .route("/state", web::get().to(state))
        .route("/state.json", web::get().to(state))
        .route("/master/state", web::get().to(state))
        .route("/master/state.json", web::get().to(state))
        .route("/metrics", web::get().to(prometheus))
        .route("/metrics/snapshot", web::get().to(snapshot))
        .route("/api/v1", web::post().to(operator::call))
        .route("/master/api/v1", web::post().to(operator::call))
        .route("/api/v1/scheduler", web::post().to(scheduler::call))
        .route("/master/api/v1/scheduler", web::post().to(scheduler::call))
        .route("/api/v1/scheduler", web::route().to(method_not_allowed))
        .route(
            "/master/api/v1/scheduler",
            web::route().to(method_not_allowed),
        )
        .route("/api/v1", web::route().to(method_not_allowed))
        .route("/master/api/v1", web::route().to(method_not_allowed));
}

/// A failed request: its status and a message saying what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("the master is not answering: {0}")]
    Unavailable(String),
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode;
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .body(format!("{} expects POST, not {}", req.path(), req.method()))
}

/// The `/version` document, shaped like Mesos's.
pub fn version_json() -> serde_json::Value {
    serde_json::json!({
        "version": MESOS_COMPAT_VERSION,
        "build_date": "2026-11-27 00:00:00",
        "build_time": 1_795_737_600.0,
        "build_user": "strata",
        "git_sha": "",
        "git_tag": "",
        "strata_version": env!("CARGO_PKG_VERSION"),
    })
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(version_json())
}

/// This master is the leader (single-master mode), so `/redirect` points at itself.
async fn redirect(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let leader = ctx
        .master
        .send(Inspect(Box::new(|state, _| leader_of(state))))
        .await?;
    Ok(HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, format!("//{leader}")))
        .finish())
}

/// `host:port` of the leading master, as its `MasterInfo` gives it.
fn leader_of(state: &crate::state::MasterState) -> String {
    let info = &state.config().master_info;
    format!(
        "{}:{}",
        info.hostname.as_deref().unwrap_or("localhost"),
        info.port
    )
}

async fn state(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let flags = ctx.flags.clone();
    let start_time = ctx.start_time;
    let document = ctx
        .master
        .send(Inspect(Box::new(move |state, now| {
            state_json::state(state, now, &leader_of(state), &flags, start_time)
        })))
        .await?;
    Ok(HttpResponse::Ok().json(document))
}

async fn prometheus(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let text = ctx.master.send(RenderMetrics).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn snapshot(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let snapshot = ctx.master.send(Inspect(Box::new(mesos_snapshot))).await?;
    Ok(HttpResponse::Ok().json(snapshot))
}

/// Frames one JSON record for a RecordIO stream: its length in bytes, a newline, the record.
pub fn recordio(record: &serde_json::Value) -> web::Bytes {
    let body = record.to_string();
    web::Bytes::from(format!("{}\n{body}", body.len()))
}

/// Checks that a request carries JSON and accepts JSON back, as the v1 APIs require.
pub fn check_json_request(req: &HttpRequest) -> Result<(), ApiError> {
    check_json_body(req)?;
    if !accepts_json(req) {
        return Err(ApiError::NotAcceptable(
            "the 'Accept' header allows no type this server produces ('application/json')".into(),
        ));
    }
    Ok(())
}

/// Checks that a request says its body is JSON: 400 without a `Content-Type`, 415 for any
/// other type.
pub fn check_json_body(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(content_type) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(ApiError::BadRequest(
            "expecting a 'Content-Type' header".into(),
        ));
    };
    let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    match media_type {
        "application/json" => {}
        "application/x-protobuf" => {
            return Err(ApiError::UnsupportedMediaType(
                "protobuf bodies are not supported; send 'application/json'".into(),
            ));
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "unsupported 'Content-Type' '{other}'; send 'application/json'"
            )));
        }
    }
    Ok(())
}

/// True if the `Accept` header (absent means anything) allows `application/json`.
pub fn accepts_json(req: &HttpRequest) -> bool {
    let Some(accept) = req.headers().get(header::ACCEPT) else {
        return true;
    };
    let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
    accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        matches!(media, "application/json" | "application/*" | "*/*" | "")
    })
}
