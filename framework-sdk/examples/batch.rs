//! A batch framework on the event-stream API: runs `--tasks` copies of a shell command, each
//! with `$TASK_INDEX` (0-based) and `$TASK_ATTEMPT` (0 for the first try) in its environment,
//! retries a task that does not finish successfully up to `--retries` times (each attempt is a
//! new task ID), and exits once every task is done: 0 if all eventually succeeded, 1 if not.
//!
//! ```text
//! cargo run -p strata-framework-sdk --example batch -- \
//!     --master 127.0.0.1:5050 --tasks 10 --retries 2 -- 'echo task $TASK_INDEX'
//! ```
//!
//! The last line it prints is a summary a script can read:
//! `summary: tasks=10 succeeded=10 failed=0 attempts=10`.

// The example's product is its report on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use strata_framework_sdk::scheduler::{Event, Framework, TaskSpec};
use strata_protocol::TaskId;
use strata_protocol::mesos::{TaskState, TaskStatus};

#[derive(Debug, Parser)]
#[command(about = "Runs a command N times on a Strata cluster, retrying failures")]
struct Args {
    /// Master address, `host:port` (repeat for several masters).
    #[arg(long, required = true)]
    master: Vec<String>,
    /// How many tasks to run.
    #[arg(long, default_value_t = 1)]
    tasks: usize,
    /// How many times a failed task is tried again.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// CPUs per task.
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory per task, in MiB.
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Role to ask resources of.
    #[arg(long, default_value = "*")]
    role: String,
    /// Framework name, also the prefix of task IDs.
    #[arg(long, default_value = "batch")]
    name: String,
    /// The shell command each task runs.
    command: String,
}

/// Where one task of the batch stands.
#[derive(Debug, Clone, PartialEq)]
enum Progress {
    /// Attempt `attempt` is waiting for an offer, or launched and not yet ended.
    Trying {
        attempt: u32,
    },
    Succeeded {
        attempts: u32,
    },
    Failed {
        attempts: u32,
        last: String,
    },
}

/// The batch's bookkeeping, apart from the SDK so that its rules read on their own.
struct Batch {
    name: String,
    command: String,
    cpus: f64,
    mem: f64,
    retries: u32,
    tasks: Vec<Progress>,
    /// Live attempts by task ID: which task of the batch they belong to.
    attempts: BTreeMap<TaskId, usize>,
    launched: u32,
}

impl Batch {
    fn new(args: &Args) -> Batch {
        Batch {
            name: args.name.clone(),
            command: args.command.clone(),
            cpus: args.cpus,
            mem: args.mem,
            retries: args.retries,
            tasks: vec![Progress::Trying { attempt: 0 }; args.tasks],
            attempts: BTreeMap::new(),
            launched: 0,
        }
    }

    /// The spec of attempt `attempt` of task `index`: a fresh task ID per attempt, since the
    /// master refuses to reuse the ID of a task it has seen.
    fn spec(&self, index: usize, attempt: u32) -> TaskSpec {
        TaskSpec::command(
            format!("{}-{index}-{attempt}", self.name),
            self.command.clone(),
        )
        .cpus(self.cpus)
        .mem_mb(self.mem)
        .env("TASK_INDEX", index.to_string())
        .env("TASK_ATTEMPT", attempt.to_string())
    }

    fn initial_specs(&self) -> Vec<TaskSpec> {
        (0..self.tasks.len()).map(|i| self.spec(i, 0)).collect()
    }

    /// Records that a spec became a launched task.
    fn launched(&mut self, task_id: TaskId, index: usize) {
        self.launched += 1;
        self.attempts.insert(task_id, index);
    }

    /// Handles an update; returns the spec of the next attempt when the task is retried.
    fn update(&mut self, status: &TaskStatus) -> Option<TaskSpec> {
        if !status.state.is_terminal() {
            return None;
        }
        let index = self.attempts.remove(&status.task_id)?;
        let Progress::Trying { attempt } = self.tasks[index] else {
            return None;
        };
        if status.state == TaskState::Finished {
            println!("{}: finished", status.task_id);
            self.tasks[index] = Progress::Succeeded {
                attempts: attempt + 1,
            };
            return None;
        }
        let why = format!(
            "{}{}",
            status.state,
            status
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        if attempt < self.retries {
            println!("{}: {why}; retrying", status.task_id);
            self.tasks[index] = Progress::Trying {
                attempt: attempt + 1,
            };
            Some(self.spec(index, attempt + 1))
        } else {
            println!("{}: {why}; giving up", status.task_id);
            self.tasks[index] = Progress::Failed {
                attempts: attempt + 1,
                last: why,
            };
            None
        }
    }

    fn done(&self) -> bool {
        !self
            .tasks
            .iter()
            .any(|t| matches!(t, Progress::Trying { .. }))
    }

    fn n_succeeded(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| matches!(t, Progress::Succeeded { .. }))
            .count()
    }

    fn report(&self) {
        for (index, task) in self.tasks.iter().enumerate() {
            if let Progress::Failed { attempts, last } = task {
                println!("task {index} failed after {attempts} attempts: {last}");
            }
        }
        let succeeded = self.n_succeeded();
        println!(
            "summary: tasks={} succeeded={succeeded} failed={} attempts={}",
            self.tasks.len(),
            self.tasks.len() - succeeded,
            self.launched
        );
    }
}

/// Which task of the batch a spec's ID belongs to (`<name>-<index>-<attempt>`).
fn index_of(task_id: &str) -> Option<usize> {
    let mut parts = task_id.rsplitn(3, '-');
    let _attempt = parts.next()?;
    parts.next()?.parse().ok()
}

async fn run(args: Args) -> Result<bool, String> {
    let mut batch = Batch::new(&args);
    let mut pending = batch.initial_specs();
    let mut builder = Framework::builder(args.name.clone()).role(args.role.clone());
    for master in &args.master {
        builder = builder.master(master.clone());
    }
    let (client, mut events) = builder
        .subscribe()
        .await
        .map_err(|err| format!("cannot subscribe: {err}"))?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while !batch.done() {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut ctrl_c => {
                let _ = client.teardown().await;
                return Err("interrupted; the framework was torn down".to_owned());
            }
        };
        let Some(event) = event else {
            return Err("the master closed the subscription".to_owned());
        };
        match event.map_err(|err| err.to_string())? {
            Event::Offers(offers) if !pending.is_empty() => {
                let plan = offers.pack(&mut pending);
                if let Some((spec, err)) = plan.invalid.first() {
                    return Err(format!("task {} cannot run: {err}", spec.id_str()));
                }
                for task in plan.tasks() {
                    let index = index_of(task.task_id.as_str()).ok_or("bad task ID")?;
                    batch.launched(task.task_id.clone(), index);
                }
                if !plan.is_empty() {
                    client.accept(plan).await.map_err(|err| err.to_string())?;
                }
                if pending.is_empty() {
                    client.suppress().await.map_err(|err| err.to_string())?;
                }
            }
            Event::Update(status) => {
                if let Some(retry) = batch.update(&status) {
                    if pending.is_empty() {
                        client.revive().await.map_err(|err| err.to_string())?;
                    }
                    pending.push(retry);
                }
            }
            Event::Error(message) => {
                return Err(format!("the master ended the framework: {message}"));
            }
            _ => {}
        }
    }
    let _ = client.teardown().await;
    // The stream ends once the driver has sent the TEARDOWN; exiting earlier could lose it
    // (and the last acknowledgements) with the process.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while events.next().await.is_some() {}
    })
    .await;
    batch.report();
    Ok(batch.n_succeeded() == batch.tasks.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("batch: {err}");
            ExitCode::from(2)
        }
    }
}
