//! `strata run`: runs a command as tasks on the cluster, streams their output, and exits with
//! the task's exit code. A small framework built on the SDK, as `mesos-execute` is for Mesos.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use strata_framework_sdk::scheduler::{Event, Framework, TaskSpec};
use strata_protocol::TaskId;
use strata_protocol::mesos::{TaskState, TaskStatus};

use crate::flags::RunFlags;
use crate::ops::{http, id, operator, percent_encode};

/// How often running tasks' output is fetched.
const OUTPUT_POLL: Duration = Duration::from_millis(200);
/// How long a Ctrl-C waits for the kills to be confirmed.
const KILL_WAIT: Duration = Duration::from_secs(15);

/// Runs the command and returns the exit code for the process.
pub fn run(flags: RunFlags) -> anyhow::Result<i32> {
    if flags.docker_image.is_some() {
        bail!("Docker images are not supported by this build yet; run the command directly");
    }
    if flags.instances == 0 {
        bail!("--instances must be at least 1");
    }
    let mut env = Vec::new();
    for pair in &flags.envs {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair:?} is not NAME=VALUE"))?;
        env.push((name.to_owned(), value.to_owned()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run_tasks(flags, env))
}

/// One task this run launched.
struct Launched {
    /// Its latest state, once known.
    state: Option<TaskState>,
    /// The last terminal status.
    end: Option<TaskStatus>,
    /// Where its output is read from, once it runs.
    output: Option<Output>,
}

/// A task's stdout and stderr on its agent, read from where the last read stopped.
struct Output {
    agent: String,
    framework_id: String,
    executor_id: String,
    stdout_offset: u64,
    stderr_offset: u64,
}

async fn run_tasks(flags: RunFlags, env: Vec<(String, String)>) -> anyhow::Result<i32> {
    let master = flags
        .master
        .first()
        .cloned()
        .context("--master needs at least one address")?;
    let progress = Progress::new(std::io::stderr().is_terminal());
    let run_id = format!("{:08x}", random_u32());
    let mut pending = Vec::new();
    let mut launched: BTreeMap<TaskId, Launched> = BTreeMap::new();
    for n in 0..flags.instances {
        let name = if flags.instances == 1 {
            format!("run-{run_id}")
        } else {
            format!("run-{run_id}-{n}")
        };
        let mut spec = if flags.command.len() == 1 {
            // One word or a quoted line: the shell reads it, so pipes and `;` work.
            TaskSpec::command(name.clone(), flags.command[0].clone())
        } else {
            TaskSpec::argv(name.clone(), flags.command.clone())
        };
        spec = spec.cpus(flags.cpus).mem_mb(flags.mem);
        if flags.disk > 0.0 {
            spec = spec.disk_mb(flags.disk);
        }
        for (name, value) in &env {
            spec = spec.env(name.clone(), value.clone());
        }
        launched.insert(
            TaskId::new(spec.id_str()).context("invalid task ID")?,
            Launched {
                state: None,
                end: None,
                output: None,
            },
        );
        pending.push(spec);
    }
    let mut builder = Framework::builder("strata-run").role(flags.role.clone());
    for master in &flags.master {
        builder = builder.master(master.clone());
    }
    if let Ok(user) = std::env::var("USER") {
        builder = builder.user(user);
    }
    progress.say("waiting for the master");
    let (client, mut events) = builder.subscribe().await.with_context(|| {
        format!("no leading master at {master}: is `strata master` (or `strata dev`) running?")
    })?;
    let framework_id = client
        .framework_id()
        .map(|id| id.to_string())
        .unwrap_or_default();
    progress.say(&format!(
        "waiting for offers ({} task{} of {} cpus, {} MiB)",
        flags.instances,
        if flags.instances == 1 { "" } else { "s" },
        flags.cpus,
        flags.mem
    ));
    let mut poll = tokio::time::interval(OUTPUT_POLL);
    let mut killing: Option<tokio::time::Instant> = None;
    let prefix = flags.instances > 1;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if launched.values().all(|task| task.end.is_some()) {
            break;
        }
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { bail!("the master closed the subscription") };
                match event.context("the subscription failed")? {
                    Event::Offers(offers) if !pending.is_empty() && killing.is_none() => {
                        let plan = offers.pack(&mut pending);
                        if !plan.is_empty() {
                            progress.say("launching");
                            client.accept(plan).await?;
                        }
                        if pending.is_empty() {
                            client.suppress().await?;
                        }
                    }
                    Event::Update(status) => {
                        let Some(task) = launched.get_mut(&status.task_id) else { continue };
                        if task.output.is_none()
                            && let Some(agent_id) = &status.agent_id
                            && matches!(status.state, TaskState::Starting | TaskState::Running)
                        {
                            task.output = Some(locate_output(&master, agent_id.as_str(), &framework_id, status.task_id.as_str())?);
                        }
                        if task.state != Some(status.state) {
                            progress.say(&format!("{} is {}", status.task_id, status.state.as_str().trim_start_matches("TASK_")));
                        }
                        task.state = Some(status.state);
                        if status.state.is_terminal() {
                            if let Some(output) = &mut task.output {
                                drain(output, prefix.then_some(status.task_id.as_str()), &progress)?;
                            }
                            task.end = Some(status);
                        }
                    }
                    Event::Error(message) => bail!("the master ended the subscription: {message}"),
                    _ => {}
                }
            }
            _ = poll.tick() => {
                for (task_id, task) in launched.iter_mut() {
                    if let (Some(output), None) = (&mut task.output, &task.end) {
                        drain(output, prefix.then_some(task_id.as_str()), &progress)?;
                    }
                }
                if killing.is_some_and(|since| since.elapsed() > KILL_WAIT) {
                    bail!("the tasks did not confirm their kill within {KILL_WAIT:?}");
                }
            }
            _ = &mut ctrl_c, if killing.is_none() => {
                progress.say("interrupted: killing the tasks");
                killing = Some(tokio::time::Instant::now());
                pending.clear();
                for (task_id, task) in &launched {
                    if task.state.is_some() && task.end.is_none() {
                        client.kill(task_id).await?;
                    }
                }
                if launched.values().all(|task| task.state.is_none()) {
                    break;
                }
            }
        }
    }
    // Leave nothing behind: the framework goes with this run.
    let _ = client.teardown().await;
    progress.clear();
    if killing.is_some() {
        return Ok(130);
    }
    let mut code = 0;
    for (task_id, task) in &launched {
        let Some(status) = &task.end else { continue };
        let task_code = exit_code(status);
        if task_code != 0 {
            let message = status.message.as_deref().unwrap_or("");
            progress.line(&format!(
                "task {task_id} ended {}{}{message}",
                status.state.as_str().trim_start_matches("TASK_"),
                if message.is_empty() { "" } else { ": " }
            ));
            if code == 0 {
                code = task_code;
            }
        }
    }
    Ok(code)
}

/// The exit code a task's terminal status stands for: the command's own when the message
/// says it ("Command exited with status 3"), 128 + the signal's number when it was killed by
/// one, 1 for other failures.
fn exit_code(status: &TaskStatus) -> i32 {
    match status.state {
        TaskState::Finished => 0,
        TaskState::Killed => 137,
        _ => status
            .message
            .as_deref()
            .and_then(|message| message.split("exited with status ").nth(1))
            .and_then(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|digits| digits.parse().ok())
            })
            .filter(|code| *code != 0)
            .unwrap_or(1),
    }
}

/// Finds the agent a task runs on and where its output files are served.
fn locate_output(
    master: &str,
    agent_id: &str,
    framework_id: &str,
    task_id: &str,
) -> anyhow::Result<Output> {
    let agents = operator(master, json!({"type": "GET_AGENTS"}))?;
    let agent: &Value = agents["get_agents"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|agent| id(&agent["agent_info"]["id"]) == agent_id)
        .with_context(|| format!("the master does not list agent {agent_id}"))?;
    Ok(Output {
        agent: format!(
            "{}:{}",
            agent["agent_info"]["hostname"]
                .as_str()
                .unwrap_or("127.0.0.1"),
            agent["agent_info"]["port"].as_i64().unwrap_or(5051)
        ),
        framework_id: framework_id.to_owned(),
        // A command task's executor is named after the task.
        executor_id: task_id.to_owned(),
        stdout_offset: 0,
        stderr_offset: 0,
    })
}

/// Prints what the task wrote since the last call.
fn drain(output: &mut Output, prefix: Option<&str>, progress: &Progress) -> anyhow::Result<()> {
    for stderr in [false, true] {
        let (file, offset) = if stderr {
            ("stderr", &mut output.stderr_offset)
        } else {
            ("stdout", &mut output.stdout_offset)
        };
        let path = format!(
            "/frameworks/{}/executors/{}/runs/latest/{file}",
            output.framework_id, output.executor_id
        );
        loop {
            let query = format!(
                "/files/read?path={}&offset={offset}&length=65536",
                percent_encode(&path)
            );
            let (status, body) = http(&output.agent, "GET", &query, None)?;
            if status == 404 {
                // Not created yet.
                break;
            }
            if status != 200 {
                bail!(
                    "the agent at {} refused to read the task's {file} ({status}): {}",
                    output.agent,
                    body.trim()
                );
            }
            let read: Value = serde_json::from_str(&body)?;
            let data = read["data"].as_str().unwrap_or("");
            if data.is_empty() {
                break;
            }
            *offset += data.len() as u64;
            progress.clear();
            let text = match prefix {
                Some(task) => data
                    .lines()
                    .map(|line| format!("[{task}] {line}\n"))
                    .collect(),
                None => data.to_owned(),
            };
            if stderr {
                std::io::stderr().write_all(text.as_bytes())?;
            } else {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(text.as_bytes())?;
                stdout.flush()?;
            }
        }
    }
    Ok(())
}

/// Progress on stderr: one rewritten line on a terminal, plain lines otherwise.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new(terminal: bool) -> Progress {
        Progress { terminal }
    }

    fn say(&self, what: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(stderr, "\r\x1b[2K\x1b[2m⋯ {what}\x1b[0m")
        } else {
            writeln!(stderr, "strata run: {what}")
        };
        let _ = stderr.flush();
    }

    /// Removes the progress line before output is printed.
    fn clear(&self) {
        if self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    fn line(&self, what: &str) {
        self.clear();
        let _ = writeln!(std::io::stderr(), "strata run: {what}");
    }
}

/// A random number for task IDs, from the standard library's hasher seed.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: TaskState, message: &str) -> TaskStatus {
        let mut status = TaskStatus::new(TaskId::new("t").unwrap(), state);
        status.message = Some(message.to_owned());
        status
    }

    #[test]
    fn exit_codes_follow_the_command() {
        assert_eq!(exit_code(&status(TaskState::Finished, "")), 0);
        assert_eq!(
            exit_code(&status(TaskState::Failed, "Command exited with status 3")),
            3
        );
        assert_eq!(
            exit_code(&status(
                TaskState::Failed,
                "Command terminated with signal Killed"
            )),
            1
        );
        assert_eq!(exit_code(&status(TaskState::Killed, "")), 137);
        assert_eq!(exit_code(&status(TaskState::Lost, "agent gone")), 1);
    }
}
