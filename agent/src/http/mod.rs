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
//! - `/files/...`: the attached sandboxes, see [`files`].

pub mod files;

use actix_web::{HttpResponse, web};

pub use files::{AttachError, Files};

/// What every handler that asks the agent gets, as actix-web app data.
pub struct HttpContext {
    pub agent: actix::Addr<crate::actor::AgentActor>,
    /// The flags the agent was started with, for `/state` and GET_FLAGS.
    pub flags: Vec<(String, String)>,
    /// When the agent started, in seconds since the Unix epoch.
    pub start_time: f64,
}

/// Mounts every agent route on `cfg`.
pub fn configure(files: Files) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route("/health", web::get().to(health));
        files::configure(files)(cfg);
    }
}

/// Mesos's agent `/health` answers 200 with no body: reaching the handler is the health signal.
async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}
