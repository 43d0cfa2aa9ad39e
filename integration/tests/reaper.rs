//! The reaper as its own process (`strata reaper`), driven through the agent's client: it starts
//! leaders, reports their exit statuses, keeps the ones the agent has not forgotten across agent
//! connections and across its own restarts, and stops once it has neither agent nor child.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use strata_agent::containerizer::ExitStatus;
use strata_agent::reaper::{Reaper, SpawnRequest, socket_path};
use strata_integration::cluster::strata_binary;

fn shell(container_id: &str, dir: &Path, line: &str) -> SpawnRequest {
    SpawnRequest {
        container_id: container_id.to_owned(),
        program: "/bin/sh".to_owned(),
        argv: vec!["sh".into(), "-c".into(), line.to_owned()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        working_dir: dir.to_path_buf(),
        stdout: dir.join(format!("{container_id}.stdout")),
        stderr: dir.join(format!("{container_id}.stderr")),
        attach_files: Vec::new(),
        user: None,
    }
}

fn work_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("meta")).expect("meta dir");
    dir
}

async fn exit_of(reaper: &Reaper, container_id: &str) -> Option<ExitStatus> {
    tokio::time::timeout(Duration::from_secs(30), reaper.exit(container_id))
        .await
        .expect("an exit within 30 s")
        .expect("the reaper answers")
}

/// Waits until the reaper on `socket` has stopped: its socket is gone.
async fn stopped(socket: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while socket.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reaper never stopped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_reaper_starts_leaders_and_reports_how_they_ended() {
    let dir = work_dir();
    let (reaper, state) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("reaper");
    assert_eq!(state.running.len() + state.exited.len(), 0, "{state:?}");
    let pid = reaper
        .spawn(shell("exits-7", dir.path(), "echo out; exit 7"))
        .expect("spawn");
    assert!(pid > 1);
    assert_eq!(
        exit_of(&reaper, "exits-7").await,
        Some(ExitStatus::Exited(7))
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("exits-7.stdout")).unwrap(),
        "out\n"
    );
    reaper
        .spawn(shell("killed", dir.path(), "kill -9 $$"))
        .expect("spawn");
    assert_eq!(
        exit_of(&reaper, "killed").await,
        Some(ExitStatus::Signaled(9))
    );

    // A command that cannot run fails the spawn, saying so; the reaper stays up.
    let mut missing = shell("missing", dir.path(), "");
    missing.program = "/nonexistent/program".into();
    let error = reaper.spawn(missing).expect_err("cannot exec");
    assert!(
        error.to_string().contains("/nonexistent/program"),
        "{error}"
    );
    reaper
        .spawn(shell("after", dir.path(), "exit 0"))
        .expect("spawn after a failure");
    assert_eq!(exit_of(&reaper, "after").await, Some(ExitStatus::Exited(0)));
}

#[tokio::test]
async fn exits_wait_for_the_next_agent_until_forgotten_even_across_reaper_restarts() {
    let dir = work_dir();
    let socket = socket_path(dir.path());
    let go = dir.path().join("go");
    let (reaper, _) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("reaper");
    let line = format!(
        "while [ ! -f {} ]; do sleep 0.01; done; exit 5",
        go.display()
    );
    let pid = reaper
        .spawn(shell("outlives-the-agent", dir.path(), &line))
        .expect("spawn");
    // The agent goes away (its connection closes) while the container runs.
    drop(reaper);

    // A new agent finds it running, with the same pid.
    let (reaper, state) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("again");
    assert_eq!(
        state.running.get("outlives-the-agent"),
        Some(&pid),
        "{state:?}"
    );
    drop(reaper);
    // It ends while no agent is connected; the reaper, with no agent and no child left, stops
    // and leaves the exit for the next reaper.
    std::fs::write(&go, "").unwrap();
    stopped(&socket).await;

    let (reaper, state) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("new");
    assert_eq!(
        state.exited.get("outlives-the-agent"),
        Some(&ExitStatus::Exited(5)),
        "{state:?}"
    );
    reaper.forget("outlives-the-agent");
    drop(reaper);
    stopped(&socket).await;
    let (_reaper, state) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("last");
    assert!(state.exited.is_empty(), "forgotten, yet kept: {state:?}");
}

#[tokio::test]
async fn a_bad_frame_costs_its_sender_the_connection_and_nothing_else() {
    let dir = work_dir();
    let socket = socket_path(dir.path());
    let (reaper, _) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("reaper");
    let go = dir.path().join("go");
    let line = format!(
        "while [ ! -f {} ]; do sleep 0.01; done; exit 3",
        go.display()
    );
    let pid = reaper
        .spawn(shell("keeps-running", dir.path(), &line))
        .expect("spawn");
    drop(reaper);

    // An oversized frame, then garbage: each connection is dropped.
    for junk in [
        u32::MAX.to_be_bytes().to_vec(),
        vec![0, 0, 0, 3, 0xc1, 0xc1, 0xc1],
    ] {
        let mut stream = UnixStream::connect(&socket).expect("connect");
        stream.write_all(&junk).expect("write");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        // The state frame comes first; the connection then closes.
        std::io::Read::read_to_end(&mut stream, &mut rest).expect("closed, not timed out");
        assert!(!rest.is_empty(), "no state before the close");
    }

    let (reaper, state) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("again");
    assert_eq!(state.running.get("keeps-running"), Some(&pid), "{state:?}");
    std::fs::write(&go, "").unwrap();
    assert_eq!(
        exit_of(&reaper, "keeps-running").await,
        Some(ExitStatus::Exited(3))
    );
}

#[tokio::test]
async fn leaders_spawned_at_once_each_get_their_own_pid_and_exit_status() {
    let dir = work_dir();
    let (reaper, _) = Reaper::connect_or_start(dir.path(), &strata_binary()).expect("reaper");
    // Eight agent threads asking at once, as concurrent launches do: the reaper's spawn threads
    // start them in parallel and must not mix up whose pid and exit is whose.
    let spawned: Vec<(String, u32)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let (reaper, dir) = (reaper.clone(), dir.path());
                scope.spawn(move || {
                    (0..6)
                        .map(|n| {
                            let id = format!("c-{worker}-{n}");
                            let code = worker * 10 + n;
                            let pid = reaper
                                .spawn(shell(&id, dir, &format!("echo $$; exit {code}")))
                                .expect("spawn");
                            (id, pid)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("worker"))
            .collect()
    });
    assert_eq!(spawned.len(), 48);
    for (id, pid) in &spawned {
        let (worker, n) = id
            .trim_start_matches("c-")
            .split_once('-')
            .expect("worker and number");
        let code: i32 = worker.parse::<i32>().unwrap() * 10 + n.parse::<i32>().unwrap();
        assert_eq!(exit_of(&reaper, id).await, Some(ExitStatus::Exited(code)));
        // The shell prints its own pid: the one the reaper reported for this container.
        let printed = std::fs::read_to_string(dir.path().join(format!("{id}.stdout"))).unwrap();
        assert_eq!(printed.trim(), pid.to_string(), "{id}");
    }
}
