//! [`Framework::builder`]: what a framework says about itself, where the masters are, and how
//! the SDK does its chores.

use std::sync::Arc;
use std::time::Duration;

use strata_protocol::Pid;
use strata_protocol::ids::FrameworkId;
use strata_protocol::mesos::{
    FrameworkCapability, FrameworkCapabilityType, FrameworkInfo, Label, Labels,
};
use tokio::sync::mpsc;

use super::Scheduler;
use super::SdkError;
use super::client::{Client, Shared};
use super::driver::{self, DriverConfig};
use super::events::{Events, Raw};

/// The environment variable [`FrameworkBuilder::master_from_env`] reads: `host:port`, or
/// several separated by commas.
pub const MASTER_ENV: &str = "STRATA_MASTER";

/// The entry point of the scheduler API.
#[derive(Debug)]
pub struct Framework;

impl Framework {
    /// Starts describing a framework called `name`.
    pub fn builder(name: impl Into<String>) -> FrameworkBuilder {
        FrameworkBuilder {
            name: name.into(),
            masters: Vec::new(),
            user: None,
            roles: Vec::new(),
            failover_timeout: None,
            checkpoint: None,
            framework_id: None,
            hostname: None,
            principal: None,
            labels: Vec::new(),
            capabilities: Vec::new(),
            manual_acks: false,
            refuse: Duration::from_secs(5),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            heartbeat_timeout: None,
            subscribe_timeout: Duration::from_secs(60),
        }
    }
}

/// Configures and starts a framework; see [`Framework::builder`].
#[derive(Debug, Clone)]
pub struct FrameworkBuilder {
    name: String,
    masters: Vec<String>,
    user: Option<String>,
    roles: Vec<String>,
    failover_timeout: Option<Duration>,
    checkpoint: Option<bool>,
    framework_id: Option<FrameworkId>,
    hostname: Option<String>,
    principal: Option<String>,
    labels: Vec<Label>,
    capabilities: Vec<FrameworkCapabilityType>,
    manual_acks: bool,
    refuse: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    heartbeat_timeout: Option<Duration>,
    subscribe_timeout: Duration,
}

impl FrameworkBuilder {
    /// Adds a master, as `host:port` (or `master@host:port`). Masters are tried in the order
    /// added.
    pub fn master(mut self, addr: impl Into<String>) -> Self {
        self.masters.push(addr.into());
        self
    }

    /// Adds the masters listed in `STRATA_MASTER` (comma-separated `host:port`).
    pub fn master_from_env(mut self) -> Self {
        if let Ok(list) = std::env::var(MASTER_ENV) {
            self.masters.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|addr| !addr.is_empty())
                    .map(str::to_owned),
            );
        }
        self
    }

    /// Sets the Unix user tasks run as; defaults to `$USER`, else `root`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Adds a role to subscribe with (several make a MULTI_ROLE framework); without any the
    /// framework gets `*`.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Sets how long the master keeps the framework's tasks after it disconnects; 0 (the
    /// default) means they are killed at once.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = Some(timeout);
        self
    }

    /// [`FrameworkBuilder::failover_timeout`] in seconds.
    pub fn failover_timeout_secs(self, secs: u64) -> Self {
        self.failover_timeout(Duration::from_secs(secs))
    }

    /// Asks agents to checkpoint the framework's tasks, so they survive an agent restart.
    pub fn checkpoint(mut self, checkpoint: bool) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Subscribes as the existing framework `framework_id` (a scheduler failover): the master
    /// moves the framework to this instance and tells the old one "Framework failed over".
    pub fn framework_id(mut self, framework_id: FrameworkId) -> Self {
        self.framework_id = Some(framework_id);
        self
    }

    /// Sets the hostname the framework reports.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Sets the principal the framework authenticates as.
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Adds a label to the framework.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Declares a capability (PARTITION_AWARE, TASK_KILLING_STATE, ...).
    pub fn capability(mut self, capability: FrameworkCapabilityType) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Turns automatic acknowledgements off: the program calls [`Client::acknowledge`] for
    /// each update it has handled (until then the agent keeps resending it).
    pub fn manual_acks(mut self) -> Self {
        self.manual_acks = true;
        self
    }

    /// Sets how long declined or unused offered resources are not offered again: for
    /// auto-declines, [`Client::decline`] and the leftovers of [`Client::accept`]. Default 5 s,
    /// the Mesos default.
    pub fn refuse_seconds(mut self, secs: f64) -> Self {
        self.refuse = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        self
    }

    /// Sets the reconnection backoff: the first delay, doubled after each failure up to `max`,
    /// with jitter. Default 200 ms to 10 s.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Sets how long the SDK waits for any event before it counts the subscription as lost;
    /// default five heartbeat intervals as announced by the master.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// Sets how long [`FrameworkBuilder::subscribe`] waits for the first SUBSCRIBED (default
    /// 60 s).
    pub fn subscribe_timeout(mut self, timeout: Duration) -> Self {
        self.subscribe_timeout = timeout;
        self
    }

    /// Returns the `FrameworkInfo` the SDK subscribes with.
    pub fn framework_info(&self) -> FrameworkInfo {
        let user = self
            .user
            .clone()
            .or_else(|| std::env::var("USER").ok().filter(|user| !user.is_empty()))
            .unwrap_or_else(|| "root".to_owned());
        let mut capabilities: Vec<FrameworkCapability> =
            self.capabilities.iter().copied().map(Into::into).collect();
        let (role, roles) = match self.roles.as_slice() {
            [] => (None, Vec::new()),
            [role] => (Some(role.clone()), Vec::new()),
            roles => {
                capabilities.push(FrameworkCapabilityType::MultiRole.into());
                (None, roles.to_vec())
            }
        };
        FrameworkInfo {
            user,
            name: self.name.clone(),
            id: self.framework_id.clone(),
            failover_timeout: self.failover_timeout.map(|t| t.as_secs_f64()),
            checkpoint: self.checkpoint,
            role,
            roles,
            hostname: self.hostname.clone(),
            principal: self.principal.clone(),
            webui_url: None,
            capabilities,
            labels: (!self.labels.is_empty()).then(|| Labels {
                labels: self.labels.clone(),
            }),
            offer_filters: Default::default(),
        }
    }

    /// Starts the driver, finds a master, subscribes, and returns once the master confirmed:
    /// a [`Client`] for calls and the [`Events`] stream, whose first item is
    /// [`super::Event::Subscribed`].
    ///
    /// Fails if no master is given or one is not `host:port`, if the master refuses the
    /// subscription (its ERROR message), or if no master answers within the subscribe
    /// timeout.
    pub async fn subscribe(self) -> Result<(Client, Events), SdkError> {
        let masters = self.parse_masters()?;
        let shared = Arc::new(Shared::new(self.refuse, !self.manual_acks));
        if let Some(framework_id) = &self.framework_id {
            *shared
                .framework_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(framework_id.clone());
        }
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
        let config = DriverConfig {
            masters,
            framework_info: self.framework_info(),
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            heartbeat_timeout: self.heartbeat_timeout,
        };
        driver::start(config, shared.clone(), commands_rx, raw_tx)?;
        let client = Client {
            commands: commands_tx,
            shared,
        };
        let first = tokio::time::timeout(self.subscribe_timeout, async {
            loop {
                match raw_rx.recv().await {
                    Some(Raw::Subscribed(subscribed)) => return Ok(subscribed),
                    Some(Raw::Error(message)) => return Err(SdkError::Refused(message)),
                    Some(_) => continue,
                    None => return Err(SdkError::Stopped),
                }
            }
        })
        .await;
        match first {
            Ok(Ok(subscribed)) => Ok((client.clone(), Events::new(raw_rx, client, subscribed))),
            Ok(Err(err)) => {
                client.stop();
                Err(err)
            }
            Err(_) => {
                client.stop();
                Err(SdkError::SubscribeTimeout(self.subscribe_timeout))
            }
        }
    }

    /// Subscribes and drives `scheduler` until the event stream ends (after an ERROR from the
    /// master, a teardown, or [`Client::stop`]). Each callback is awaited before the next event
    /// is read; updates are acknowledged once `update` returns (unless `manual_acks`).
    pub async fn run(self, scheduler: impl Scheduler) -> Result<(), SdkError> {
        let (client, events) = self.subscribe().await?;
        super::run_scheduler(client, events, scheduler).await
    }

    fn parse_masters(&self) -> Result<Vec<Pid>, SdkError> {
        if self.masters.is_empty() {
            return Err(SdkError::NoMasters);
        }
        self.masters.iter().map(|addr| parse_master(addr)).collect()
    }
}

/// Reads `host:port` or `master@host:port` as the master's pid.
fn parse_master(addr: &str) -> Result<Pid, SdkError> {
    let invalid = |reason: &str| SdkError::InvalidMaster {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    if addr.contains('@') {
        return addr
            .parse()
            .map_err(|err: strata_protocol::envelope::PidError| invalid(&err.to_string()));
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number"))?;
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    Pid::new("master", host, port).map_err(|err| invalid(&err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_parse_from_host_port_or_pid() {
        assert_eq!(
            parse_master("127.0.0.1:5050").unwrap().to_string(),
            "master@127.0.0.1:5050"
        );
        assert_eq!(
            parse_master("master@10.0.0.1:5051").unwrap().to_string(),
            "master@10.0.0.1:5051"
        );
        for bad in ["nohost", ":5050", "h:port", "h:99999"] {
            let err = parse_master(bad).unwrap_err();
            assert!(
                matches!(err, SdkError::InvalidMaster { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn framework_info_carries_the_builder_settings() {
        let info = Framework::builder("hello")
            .user("alice")
            .role("dev")
            .failover_timeout_secs(600)
            .checkpoint(true)
            .label("team", "infra")
            .framework_info();
        assert_eq!(info.name, "hello");
        assert_eq!(info.user, "alice");
        assert_eq!(info.role.as_deref(), Some("dev"));
        assert_eq!(info.failover_timeout, Some(600.0));
        assert_eq!(info.checkpoint, Some(true));
        assert!(info.id.is_none());
        let multi = Framework::builder("m").role("a").role("b").framework_info();
        assert_eq!(multi.roles, vec!["a", "b"]);
        assert!(multi.has_capability(FrameworkCapabilityType::MultiRole));
    }

    #[tokio::test]
    async fn subscribe_without_masters_is_an_error() {
        let err = Framework::builder("x").subscribe().await.unwrap_err();
        assert!(matches!(err, SdkError::NoMasters), "{err}");
    }
}
