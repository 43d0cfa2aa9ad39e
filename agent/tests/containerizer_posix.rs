//! The posix containerizer with real processes.

mod containerizer_common;

use std::time::Duration;

use containerizer_common::{
    DEADLINE, Sandbox, container_id, eventually, parse_pid, running, within,
};
use strata_agent::containerizer::{
    CommandLine, Containerizer, ContainerizerError, ExitStatus, PosixContainerizer, RecoverSpec,
    TerminationReason,
};

#[tokio::test]
async fn echo_writes_stdout_and_exits_zero() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("echo");
    containerizer
        .launch(id.clone(), sandbox.shell("echo hello; echo oops >&2"))
        .expect("launch");
    let termination = within("echo", containerizer.wait(&id)).await.expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(0)));
    assert_eq!(termination.reason, None);
    assert_eq!(sandbox.stdout(), "hello\n");
    assert_eq!(sandbox.stderr(), "oops\n");
    assert!(
        containerizer.containers().is_empty(),
        "forgotten once waited for"
    );
}

#[tokio::test]
async fn exit_code_is_reported() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("exit-3");
    containerizer
        .launch(id.clone(), sandbox.shell("exit 3"))
        .expect("launch");
    let termination = within("exit 3", containerizer.wait(&id))
        .await
        .expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(3)));
    assert!(
        termination.message.contains("exited with status 3"),
        "{}",
        termination.message
    );
}

#[tokio::test]
async fn env_working_dir_and_argv_are_honoured() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let mut spec = sandbox.shell("echo \"$GREETING\"; pwd; echo \"${HOME:-no home}\"");
    spec.env.push(("GREETING".into(), "hi there".into()));
    let id = container_id("env");
    containerizer.launch(id.clone(), spec).expect("launch");
    within("env", containerizer.wait(&id)).await.expect("wait");
    let canonical_dir = sandbox.dir().canonicalize().expect("canonical sandbox");
    assert_eq!(
        sandbox.stdout(),
        format!("hi there\n{}\nno home\n", canonical_dir.display()),
        "the environment is exactly the spec's, nothing inherited"
    );

    let sandbox = Sandbox::new();
    let id = container_id("argv");
    containerizer
        .launch(
            id.clone(),
            sandbox.spec(CommandLine::argv(["printf", "%s|", "a b", "$HOME"])),
        )
        .expect("launch");
    within("argv", containerizer.wait(&id)).await.expect("wait");
    assert_eq!(
        sandbox.stdout(),
        "a b|$HOME|",
        "arguments reach the program unsplit"
    );
}

#[tokio::test]
async fn destroy_kills_the_leader_and_its_children() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("sleepers");
    let launched = containerizer
        .launch(
            id.clone(),
            sandbox.shell("sleep 1000 & echo $! > child.pid; sleep 1000"),
        )
        .expect("launch");
    let child = parse_pid(&sandbox.file_written("child.pid").await);
    assert!(running(launched.pid) && running(child));

    let termination = within(
        "destroy",
        containerizer.destroy(&id, Duration::from_secs(5)),
    )
    .await
    .expect("destroy");
    assert_eq!(termination.reason, Some(TerminationReason::Destroyed));
    assert_eq!(termination.status, Some(ExitStatus::Signaled(15)));
    assert!(!running(launched.pid), "leader left running");
    eventually("the background child to die", || {
        (!running(child)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn destroy_escalates_to_sigkill_after_the_grace_period() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("stubborn");
    containerizer
        .launch(
            id.clone(),
            sandbox.shell("trap '' TERM; echo ready > ready; sleep 1000"),
        )
        .expect("launch");
    sandbox.file_written("ready").await;
    let termination = within(
        "destroy",
        containerizer.destroy(&id, Duration::from_millis(200)),
    )
    .await
    .expect("destroy");
    assert_eq!(termination.status, Some(ExitStatus::Signaled(9)));
    assert_eq!(termination.reason, Some(TerminationReason::Destroyed));
}

#[tokio::test]
async fn processes_left_behind_by_the_leader_are_killed_when_it_exits() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("leaver");
    containerizer
        .launch(
            id.clone(),
            sandbox.shell("sleep 1000 & echo $! > child.pid"),
        )
        .expect("launch");
    let termination = within("leader exit", containerizer.wait(&id))
        .await
        .expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(0)));
    let child = parse_pid(&sandbox.file_written("child.pid").await);
    assert!(!running(child), "the container ends with its leader");
}

#[tokio::test]
async fn usage_sees_a_busy_loop() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("busy");
    containerizer
        .launch(id.clone(), sandbox.shell("while :; do :; done"))
        .expect("launch");
    let usage = eventually("cpu time to be counted", || {
        let usage = containerizer.usage(&id).expect("usage");
        (usage.cpu_user_secs + usage.cpu_system_secs > 0.0).then_some(usage)
    })
    .await;
    assert_eq!(usage.pids, 1);
    assert!(usage.mem_rss_bytes > 0);
    assert_eq!(usage.mem_limit_bytes, None);
    within(
        "destroy",
        containerizer.destroy(&id, Duration::from_secs(5)),
    )
    .await
    .expect("destroy");
    assert!(matches!(
        containerizer.usage(&id),
        Err(ContainerizerError::UnknownContainer(_))
    ));
}

#[tokio::test]
async fn launch_failures_leave_nothing_behind() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("missing-program");
    let error = containerizer
        .launch(
            id.clone(),
            sandbox.spec(CommandLine::argv(["/nonexistent/program"])),
        )
        .expect_err("cannot exec");
    assert!(
        matches!(error, ContainerizerError::Launch { .. }),
        "{error}"
    );
    assert!(containerizer.containers().is_empty());

    let mut spec = sandbox.shell("true");
    spec.user = Some("no-such-user-strata".into());
    let error = containerizer.launch(id.clone(), spec).expect_err("no user");
    assert!(
        matches!(error, ContainerizerError::UnknownUser(_)),
        "{error}"
    );

    let mut spec = sandbox.shell("true");
    spec.stdout_path = sandbox.path("missing-dir/stdout");
    let error = containerizer
        .launch(id.clone(), spec)
        .expect_err("no stdout");
    assert!(matches!(error, ContainerizerError::Io { .. }), "{error}");
    assert!(containerizer.containers().is_empty());
}

#[tokio::test]
async fn a_container_id_is_used_once_and_forgotten_after_wait() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("once");
    containerizer
        .launch(id.clone(), sandbox.shell("sleep 1000"))
        .expect("launch");
    let error = containerizer
        .launch(id.clone(), sandbox.shell("true"))
        .expect_err("duplicate");
    assert!(
        matches!(error, ContainerizerError::AlreadyExists(_)),
        "{error}"
    );
    // Two waiters and a destroy all see the one termination.
    let first = containerizer.wait(&id);
    let second = containerizer.wait(&id);
    let destroyed = within(
        "destroy",
        containerizer.destroy(&id, Duration::from_secs(5)),
    )
    .await
    .expect("destroy");
    assert_eq!(within("first wait", first).await.expect("wait"), destroyed);
    assert_eq!(
        within("second wait", second).await.expect("wait"),
        destroyed
    );
    assert!(matches!(
        containerizer.wait(&id).await,
        Err(ContainerizerError::UnknownContainer(_))
    ));
}

#[tokio::test]
async fn runs_as_the_given_user() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("nobody");
    let mut spec = sandbox.shell("id -u; id -G");
    spec.user = Some("nobody".into());
    containerizer.launch(id.clone(), spec).expect("launch");
    let termination = within("id", containerizer.wait(&id)).await.expect("wait");
    assert_eq!(
        termination.status,
        Some(ExitStatus::Exited(0)),
        "{}",
        sandbox.stderr()
    );
    let nobody = nix_uid("nobody");
    let stdout = sandbox.stdout();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(nobody.as_str()));
    assert!(
        !lines.next().unwrap_or("").split(' ').any(|gid| gid == "0"),
        "root group dropped"
    );
}

/// Looks the user up the way a person would check it, with `id`.
fn nix_uid(user: &str) -> String {
    let output = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .expect("id runs");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// An agent restart: the containerizer and its runtime go away while the container runs on, and
/// a new containerizer takes it over from the checkpointed pid.
#[test]
fn recover_takes_over_a_running_container_and_reports_missing_ones() {
    let sandbox = Sandbox::new();
    let id = container_id("survivor");
    let first_run = tokio::runtime::Runtime::new().expect("runtime");
    let pid = first_run.block_on(async {
        let containerizer = PosixContainerizer::new();
        containerizer
            .launch(id.clone(), sandbox.shell("sleep 1000"))
            .expect("launch")
            .pid
    });
    drop(first_run);
    assert!(running(pid), "the container outlives the agent");

    let second_run = tokio::runtime::Runtime::new().expect("runtime");
    second_run.block_on(async {
        let containerizer = PosixContainerizer::new();
        let gone = container_id("gone");
        let recovery = within(
            "recover",
            containerizer.recover(vec![
                RecoverSpec {
                    container_id: id.clone(),
                    pid: Some(pid),
                },
                RecoverSpec {
                    container_id: gone.clone(),
                    pid: None,
                },
            ]),
        )
        .await
        .expect("recover");
        assert_eq!(recovery.recovered, vec![id.clone()]);
        assert_eq!(recovery.missing, vec![gone]);
        assert_eq!(containerizer.containers(), vec![id.clone()]);

        let termination = within("destroy", containerizer.destroy(&id, DEADLINE))
            .await
            .expect("destroy");
        assert_eq!(termination.status, None, "not our child: no exit status");
        assert_eq!(termination.reason, Some(TerminationReason::Destroyed));
        assert!(!running(pid));
    });
}

/// The leader is started without copying the agent (see `containerizer::spawn`), so the
/// agent's signal handlers and mask must not leak into it: a task that ignores SIGPIPE or has
/// SIGTERM blocked would behave unlike the same command started from a shell.
#[tokio::test]
async fn the_leader_starts_with_default_signal_handling_and_an_empty_mask() {
    // A handler in this process, which the leader must not inherit.
    let _usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("install a SIGUSR1 handler");
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("signals");
    containerizer
        .launch(
            id.clone(),
            sandbox.spec(CommandLine::argv(["/bin/cat", "/proc/self/status"])),
        )
        .expect("launch");
    let termination = within("cat", containerizer.wait(&id)).await.expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(0)));
    let status = sandbox.stdout();
    for field in ["SigBlk", "SigIgn", "SigCgt"] {
        let mask = status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} in {status}"))
            .trim();
        assert!(mask.chars().all(|c| c == '0'), "{field}: {mask}");
    }
}

#[tokio::test]
async fn a_program_name_is_looked_up_in_the_command_path() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let id = container_id("path-lookup");
    containerizer
        .launch(id.clone(), sandbox.spec(CommandLine::argv(["true"])))
        .expect("launch");
    let termination = within("true", containerizer.wait(&id)).await.expect("wait");
    assert_eq!(termination.status, Some(ExitStatus::Exited(0)));

    let mut spec = sandbox.spec(CommandLine::argv(["true"]));
    spec.env = vec![("PATH".into(), sandbox.dir().display().to_string())];
    let error = containerizer
        .launch(container_id("not-in-path"), spec)
        .expect_err("not in PATH");
    assert!(error.to_string().contains("not found in PATH"), "{error}");
    assert!(containerizer.containers().is_empty());
}

#[tokio::test]
async fn a_failure_between_clone_and_exec_says_which_step_failed() {
    let sandbox = Sandbox::new();
    let containerizer = PosixContainerizer::new();
    let mut spec = sandbox.shell("true");
    spec.working_dir = sandbox.path("no-such-dir");
    let error = containerizer
        .launch(container_id("no-working-dir"), spec)
        .expect_err("no working dir");
    let message = format!(
        "{error}: {}",
        std::error::Error::source(&error).map_or(String::new(), ToString::to_string)
    );
    assert!(
        message.contains("enter the working directory") && message.contains("no-such-dir"),
        "{message}"
    );
    assert!(containerizer.containers().is_empty());

    // A step of the child itself: the program is there but may not be executed.
    let program = sandbox.path("not-executable");
    std::fs::write(&program, "#!/bin/sh\ntrue\n").unwrap();
    let error = containerizer
        .launch(
            container_id("not-executable"),
            sandbox.spec(CommandLine::argv([program.display().to_string()])),
        )
        .expect_err("not executable");
    let message = format!(
        "{error}: {}",
        std::error::Error::source(&error).map_or(String::new(), ToString::to_string)
    );
    assert!(message.contains("execute the command"), "{message}");
    assert!(containerizer.containers().is_empty());
}
