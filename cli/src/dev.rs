//! `strata dev`: a master and an agent in one process on 127.0.0.1, for trying Strata out.
//!
//! The master keeps its registry and the agent its sandboxes and checkpoints under one work dir
//! (a temporary one unless `--work-dir` is given). Ctrl-C destroys every container the agent
//! started and stops both; a temporary work dir is removed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use strata_agent::server::{AgentOptions, Isolation};
use strata_master::server::{MasterOptions, RegistryBackend};

use crate::flags::DevFlags;
use crate::master::wait_for_signal;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub fn run(flags: DevFlags) -> anyhow::Result<()> {
    // Kept alive until the end, so a temporary dir is removed after everything stopped.
    let temp_dir;
    let work_dir = match &flags.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp_dir = tempfile::Builder::new()
                .prefix("strata-dev-")
                .tempdir()
                .context("cannot create a temporary work dir")?;
            temp_dir.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create the work dir {}", work_dir.display()))?;
    let master_addr = SocketAddr::new(LOOPBACK, flags.master_port);
    let mut master_options = MasterOptions::new(master_addr);
    master_options.advertise_host = Some(LOOPBACK.to_string());
    master_options.work_dir = work_dir.join("master");
    master_options.registry = RegistryBackend::File;
    master_options.flags = vec![("work_dir".into(), work_dir.display().to_string())];

    let agent_work_dir = work_dir.join("agent");
    let resources = strata_agent::detect::detect_resources(&agent_work_dir, None)
        .context("cannot detect this machine's resources")?;
    let mut agent_options = AgentOptions::new(
        SocketAddr::new(LOOPBACK, flags.agent_port),
        agent_work_dir,
        resources,
    );
    agent_options.advertise_host = Some(LOOPBACK.to_string());
    agent_options.hostname = LOOPBACK.to_string();
    agent_options.master = Some(master_addr);
    agent_options.launcher = std::env::current_exe().context("cannot find the strata binary")?;

    actix_rt::System::new().block_on(async move {
        let master = strata_master::server::start(master_options)
            .await
            .with_context(|| format!("cannot start the master on {master_addr}: is the port free? (--master-port)"))?;
        let agent = match strata_agent::server::start(agent_options.clone()).await {
            Ok(agent) => agent,
            Err(strata_agent::server::StartError::Cgroups(error)) => {
                // Trying Strata out should not need root: without writable cgroups, tasks run
                // as plain processes, and the limits are not enforced.
                tracing::warn!(%error, "cgroups are not available here; tasks run without resource limits");
                agent_options.isolation = Isolation::Posix;
                strata_agent::server::start(agent_options)
                    .await
                    .context("cannot start the agent")?
            }
            Err(error) => {
                master.stop().await;
                return Err(error).context("cannot start the agent: is the port free? (--agent-port)");
            }
        };
        announce(&master.addr, &agent.addr, &work_dir);
        wait_for_signal().await?;
        tracing::info!("stopping: destroying containers, then the agent and the master");
        agent.stop_and_destroy().await;
        master.stop().await;
        Ok(())
    })
}

/// Tells the user where things are and what to try first.
fn announce(master: &SocketAddr, agent: &SocketAddr, work_dir: &std::path::Path) {
    #[allow(clippy::print_stdout)] // The user reads this, whatever the log level.
    {
        println!("strata dev is running (ctrl-c stops it and everything it started)");
        println!(
            "  master:   http://{master}  (state: http://{master}/state, metrics: http://{master}/metrics)"
        );
        println!("  agent:    http://{agent}   (state: http://{agent}/state)");
        println!("  work dir: {}", work_dir.display());
        println!("try, in another terminal:");
        println!("  strata run -- echo hello");
        println!("  strata get tasks");
    }
}
