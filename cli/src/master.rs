//! `strata master`: runs a master until SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context as _;
use strata_master::server::{MasterOptions, RegistryBackend, start};

use crate::flags::{MasterFlags, RegistryFlag};

pub fn run(flags: MasterFlags) -> anyhow::Result<()> {
    if !flags.etcd_endpoints.is_empty() {
        anyhow::bail!(
            "leader election through etcd is not available in this build yet; \
             run a single master without --etcd-endpoints"
        );
    }
    let options = options(&flags);
    actix_rt::System::new().block_on(async move {
        let master = start(options)
            .await
            .with_context(|| format!("cannot start the master on {}:{}", flags.ip, flags.port))?;
        tracing::info!(pid = %master.pid, "master running; stop it with ctrl-c");
        wait_for_signal().await?;
        tracing::info!("stopping master");
        master.stop().await;
        Ok(())
    })
}

fn options(flags: &MasterFlags) -> MasterOptions {
    let mut options = MasterOptions::new(SocketAddr::new(flags.ip, flags.port));
    options.advertise_host = Some(advertised_host(flags.ip, flags.advertise_ip));
    options.agent_ping_timeout = flags.agent_ping_timeout;
    options.max_agent_ping_timeouts = flags.max_agent_ping_timeouts;
    options.offer_timeout = flags.offer_timeout;
    options.allocation_interval = flags.allocation_interval;
    options.max_completed_frameworks = flags.max_completed_frameworks;
    options.max_completed_tasks_per_framework = flags.max_completed_tasks_per_framework;
    options.frame_len_max = flags.frame_len_max;
    options.work_dir = flags.work_dir.clone();
    options.registry = match flags.registry {
        RegistryFlag::File => RegistryBackend::File,
        RegistryFlag::InMemory => RegistryBackend::InMemory,
    };
    options.agent_reregister_timeout = flags.agent_reregister_timeout;
    options.flags = vec![
        ("ip".into(), flags.ip.to_string()),
        ("port".into(), flags.port.to_string()),
        ("work_dir".into(), flags.work_dir.display().to_string()),
        (
            "registry".into(),
            match flags.registry {
                RegistryFlag::File => "file",
                RegistryFlag::InMemory => "in_memory",
            }
            .into(),
        ),
        (
            "agent_reregister_timeout".into(),
            format!("{:?}", flags.agent_reregister_timeout),
        ),
        (
            "agent_ping_timeout".into(),
            format!("{:?}", flags.agent_ping_timeout),
        ),
        (
            "max_agent_ping_timeouts".into(),
            flags.max_agent_ping_timeouts.to_string(),
        ),
        (
            "allocation_interval".into(),
            format!("{:?}", flags.allocation_interval),
        ),
        (
            "offer_timeout".into(),
            flags
                .offer_timeout
                .map(|t| format!("{t:?}"))
                .unwrap_or_default(),
        ),
        (
            "max_completed_frameworks".into(),
            flags.max_completed_frameworks.to_string(),
        ),
        (
            "max_completed_tasks_per_framework".into(),
            flags.max_completed_tasks_per_framework.to_string(),
        ),
    ];
    options
}

/// The host peers should use: the advertised IP, else the bound one, else (bound to every
/// address) this machine's hostname.
pub fn advertised_host(ip: IpAddr, advertise_ip: Option<IpAddr>) -> String {
    if let Some(ip) = advertise_ip {
        return ip.to_string();
    }
    if !ip.is_unspecified() {
        return ip.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Waits for SIGINT (ctrl-c) or SIGTERM (what container runtimes send).
pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for ctrl-c")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
