//! Helpers shared by the containerizer tests: specs in temp sandboxes, deadlines that fail, and
//! process checks.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_agent::containerizer::{CommandLine, LaunchSpec, Limits};
use strata_protocol::ContainerId;

/// Long enough for a loaded 2-core CI machine, short enough to fail a hung test quickly.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Sandbox {
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn spec(&self, command: CommandLine) -> LaunchSpec {
        LaunchSpec {
            command,
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
            working_dir: self.dir().to_path_buf(),
            user: None,
            stdout_path: self.path("stdout"),
            stderr_path: self.path("stderr"),
            limits: Limits::default(),
            outlive_agent: false,
        }
    }

    pub fn shell(&self, line: &str) -> LaunchSpec {
        self.spec(CommandLine::Shell(line.to_string()))
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.path("stdout")).expect("stdout file")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).expect("stderr file")
    }

    /// Waits until the command has written `name` (a marker that it reached some point).
    pub async fn file_written(&self, name: &str) -> String {
        let path = self.path(name);
        eventually(&format!("{name} to be written"), || {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|content| content.ends_with('\n'))
        })
        .await
    }
}

pub fn container_id(name: &str) -> ContainerId {
    ContainerId::new(name).expect("valid container ID")
}

/// Awaits `future`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `probe` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    within(what, async {
        loop {
            if let Some(value) = probe() {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Returns whether `pid` runs (zombies waiting for their reaper do not).
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

pub fn parse_pid(content: &str) -> u32 {
    content.trim().parse().expect("a pid")
}
