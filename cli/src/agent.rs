//! `strata agent`: runs an agent until SIGINT or SIGTERM.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::Context as _;
use strata_agent::server::{AgentOptions, Isolation, start};

use crate::flags::AgentFlags;
use crate::master::{advertised_host, wait_for_signal};

pub fn run(flags: AgentFlags) -> anyhow::Result<()> {
    let options = options(&flags)?;
    actix_rt::System::new().block_on(async move {
        let agent = start(options)
            .await
            .with_context(|| format!("cannot start the agent on {}:{}", flags.ip, flags.port))?;
        tracing::info!(pid = %agent.pid, "agent running; stop it with ctrl-c");
        wait_for_signal().await?;
        // Containers keep running, as after a crash: a restarted agent recovers the executors
        // of checkpointing frameworks.
        tracing::info!("stopping agent");
        agent.stop().await;
        Ok(())
    })
}

fn options(flags: &AgentFlags) -> anyhow::Result<AgentOptions> {
    let resources =
        strata_agent::detect::detect_resources(&flags.work_dir, flags.resources.as_deref())
            .context("invalid --resources")?;
    let mut options = AgentOptions::new(
        SocketAddr::new(flags.ip, flags.port),
        flags.work_dir.clone(),
        resources,
    );
    options.advertise_host = Some(advertised_host(flags.ip, flags.advertise_ip));
    options.master = Some(resolve_master(&flags.master)?);
    if let Some(attributes) = &flags.attributes {
        options.attributes =
            strata_agent::detect::parse_attributes(attributes).context("invalid --attributes")?;
    }
    options.isolation = match flags.isolation.as_str() {
        "cgroups" => Isolation::Cgroups,
        "posix" => Isolation::Posix,
        other => anyhow::bail!("unknown --isolation {other:?}: use `cgroups` or `posix`"),
    };
    if flags.recover != "reconnect" && flags.recover != "cleanup" {
        anyhow::bail!(
            "unknown --recover {:?}: use `reconnect` or `cleanup`",
            flags.recover
        );
    }
    options.recover_cleanup = flags.recover == "cleanup";
    options.executor_shutdown_grace_period = flags.executor_shutdown_grace_period;
    options.executor_registration_timeout = flags.executor_registration_timeout;
    options.gc.gc_delay = flags.gc_delay;
    if flags.cgroups_pids_max == Some(0) {
        anyhow::bail!("--cgroups-pids-max must be at least 1 (leave it out for no limit)");
    }
    options.pids_max = flags.cgroups_pids_max;
    options.launcher = std::env::current_exe().context("cannot find the strata binary")?;
    options.flags = vec![
        ("ip".into(), flags.ip.to_string()),
        ("port".into(), flags.port.to_string()),
        ("master".into(), flags.master.join(",")),
        ("work_dir".into(), flags.work_dir.display().to_string()),
        ("isolation".into(), flags.isolation.clone()),
        ("recover".into(), flags.recover.clone()),
        ("gc_delay".into(), format!("{:?}", flags.gc_delay)),
        (
            "cgroups_pids_max".into(),
            flags
                .cgroups_pids_max
                .map_or_else(|| "none".to_owned(), |max| max.to_string()),
        ),
        (
            "executor_shutdown_grace_period".into(),
            format!("{:?}", flags.executor_shutdown_grace_period),
        ),
    ];
    Ok(options)
}

/// The first master address that resolves.
fn resolve_master(masters: &[String]) -> anyhow::Result<SocketAddr> {
    for master in masters {
        match master.to_socket_addrs() {
            Ok(mut addrs) => {
                if let Some(addr) = addrs.next() {
                    return Ok(addr);
                }
            }
            Err(error) => tracing::warn!(%master, %error, "cannot resolve master address"),
        }
    }
    anyhow::bail!(
        "no master address in --master {:?} resolves; give host:port, e.g. 127.0.0.1:5050",
        masters.join(",")
    )
}
