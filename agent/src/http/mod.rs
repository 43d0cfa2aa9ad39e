//! The agent's HTTP server routes.
//!
//! This module is where the routes are assembled; the agent's server mounts them all with
//! [`configure`]:
//!
//! ```no_run
//! # use strata_agent::http::{self, Files};
//! let files = Files::new();
//! let server = actix_web::HttpServer::new(move || {
//!     actix_web::App::new().configure(http::configure(files.clone()))
//! });
//! ```
//!
//! - `GET /health`: 200 with an empty body while the agent runs, as Mesos's agent answers.
//! - `GET /version`: the Mesos version document.
//! - `GET /state`: the agent's state with Mesos's field names, see [`state_json`].
//! - `POST /api/v1`: the Mesos v1 agent operator API, see [`api`].
//! - `POST /api/v1/executor`: the Mesos v1 executor API, see [`executor`].
//! - `GET /metrics` (Prometheus text) and `GET /metrics/snapshot` (Mesos JSON map), see
//!   [`crate::metrics`].
//! - `/files/...`: the attached sandboxes, see [`files`].
//!
//! Mesos serves the agent's endpoints under `/slave(1)/...`; they are mounted there too. Every
//! handler except `/health` and `/files` needs an [`HttpContext`] as app data.

pub mod api;
pub mod executor;
pub mod files;
pub mod state_json;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusRecorder;

pub use files::{AttachError, Files};

use crate::actor::{AgentActor, SampleMetrics};
use crate::metrics::{mesos_snapshot, render_prometheus};
use crate::sandbox::SandboxLayout;

/// The Mesos version Strata's agent reports: clients read it to pick API features, and the agent
/// implements the v1 API of this Mesos release.
pub const MESOS_COMPAT_VERSION: &str = "1.11.0";

/// The largest request body accepted, in bytes; larger ones get 413.
pub const BODY_LEN_MAX: usize = 1024 * 1024;

/// What every handler that asks the agent gets, as actix-web app data.
pub struct HttpContext {
    pub agent: actix::Addr<AgentActor>,
    /// The flags the agent was started with, for `/state` and GET_FLAGS.
    pub flags: Vec<(String, String)>,
    /// When the agent started, in seconds since the Unix epoch.
    pub start_time: f64,
    /// The sandboxes under the agent's work dir, for the executors' `directory`.
    pub sandbox: SandboxLayout,
    /// Where `/metrics` records; one per agent, so agents sharing a process stay apart.
    pub recorder: Arc<PrometheusRecorder>,
}

impl HttpContext {
    /// Returns the context of the agent at `agent`, whose work dir is `work_dir`.
    pub fn new(
        agent: actix::Addr<AgentActor>,
        flags: Vec<(String, String)>,
        start_time: f64,
        work_dir: impl Into<std::path::PathBuf>,
    ) -> HttpContext {
        HttpContext {
            agent,
            flags,
            start_time,
            sandbox: SandboxLayout::new(work_dir),
            recorder: Arc::new(
                metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            ),
        }
    }
}

/// Mounts every agent route on `cfg`.
pub fn configure(files: Files) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::PayloadConfig::new(BODY_LEN_MAX));
        for prefix in ["", "/slave(1)"] {
            cfg.route(&format!("{prefix}/health"), web::get().to(health))
                .route(&format!("{prefix}/state"), web::get().to(state))
                .route(&format!("{prefix}/state.json"), web::get().to(state))
                .route(&format!("{prefix}/api/v1"), web::post().to(api::call))
                .route(&format!("{prefix}/api/v1"), web::route().to(post_only))
                .route(
                    &format!("{prefix}/api/v1/executor"),
                    web::post().to(executor::call),
                )
                .route(
                    &format!("{prefix}/api/v1/executor"),
                    web::route().to(post_only),
                );
        }
        cfg.route("/version", web::get().to(version))
            .route("/metrics", web::get().to(prometheus))
            .route("/metrics/snapshot", web::get().to(snapshot));
        files::configure(files)(cfg);
    }
}

/// A failed request: its status and a message saying what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("the agent is not answering: {0}")]
    Unavailable(String),
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode;
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
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

/// Mesos's agent `/health` answers 200 with no body: reaching the handler is the health signal.
async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn post_only(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .body(format!("{} expects POST, not {}", req.path(), req.method()))
}

/// The `/version` document, shaped like Mesos's.
pub fn version_json() -> serde_json::Value {
    serde_json::json!({
        "version": MESOS_COMPAT_VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "strata",
        "git_sha": "",
        "git_tag": "",
        "strata_version": env!("CARGO_PKG_VERSION"),
    })
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(version_json())
}

async fn state(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let document = state_json::document(&ctx).await?;
    Ok(HttpResponse::Ok().json(document))
}

async fn prometheus(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let sample = ctx.agent.send(SampleMetrics).await?;
    let text = render_prometheus(&sample, &ctx.recorder);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn snapshot(ctx: web::Data<HttpContext>) -> Result<HttpResponse, ApiError> {
    let sample = ctx.agent.send(SampleMetrics).await?;
    Ok(HttpResponse::Ok().json(mesos_snapshot(&sample)))
}

/// Frames one record for a RecordIO stream: its length in bytes, a newline, the record.
pub fn recordio(record: &[u8]) -> web::Bytes {
    let mut framed = format!("{}\n", record.len()).into_bytes();
    framed.extend_from_slice(record);
    web::Bytes::from(framed)
}

/// Checks that a request carries JSON, as the v1 APIs require (protobuf is not spoken).
pub fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(content_type) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(ApiError::BadRequest(
            "expecting a 'Content-Type' header".into(),
        ));
    };
    let content_type = content_type.to_str().unwrap_or("").to_ascii_lowercase();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    match media_type {
        "application/json" => Ok(()),
        "application/x-protobuf" => Err(ApiError::UnsupportedMediaType(
            "protobuf bodies are not supported; send 'application/json'".into(),
        )),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "unsupported 'Content-Type' '{other}'; send 'application/json'"
        ))),
    }
}

/// Checks that the client takes JSON back.
pub fn check_accept(req: &HttpRequest) -> Result<(), ApiError> {
    if accepts_json(req) {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(
            "the 'Accept' header allows no type this agent produces ('application/json')".into(),
        ))
    }
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
