//! The SDK's example frameworks (`framework-sdk/examples/`) run as a user runs them: their
//! binaries in their own processes, against a master and two agents in this process (posix
//! isolation, the real command executor).

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use strata_agent::server::{AgentHandle, Isolation};
use strata_integration::cluster::{DEADLINE, agent_options, example_binary, start_agent};
use strata_master::server::{MasterHandle, MasterOptions};
use strata_protocol::AgentId;
use strata_protocol::mesos::{Task, TaskState};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

struct Cluster {
    master: MasterHandle,
    agents: Vec<AgentHandle>,
    _work_dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// One master and two agents; the master counts an agent as gone after about 0.6 s of
    /// silence, so that losing one shows in seconds.
    async fn start() -> Cluster {
        let mut options = MasterOptions::new("127.0.0.1:0".parse().unwrap());
        options.allocation_interval = Duration::from_millis(50);
        options.agent_ping_timeout = Duration::from_millis(200);
        options.max_agent_ping_timeouts = 3;
        let master = strata_master::server::start(options).await.unwrap();
        let mut agents = Vec::new();
        let mut work_dirs = Vec::new();
        for _ in 0..2 {
            let work_dir = tempfile::tempdir().unwrap();
            let options = agent_options(
                &master,
                work_dir.path(),
                "cpus:2;mem:1024",
                Isolation::Posix,
            );
            agents.push(start_agent(options).await);
            work_dirs.push(work_dir);
        }
        let cluster = Cluster {
            master,
            agents,
            _work_dirs: work_dirs,
        };
        wait_until("both agents registered", || async {
            cluster.n_agents().await == 2
        })
        .await;
        cluster
    }

    fn master_addr(&self) -> String {
        self.master.addr.to_string()
    }

    async fn n_agents(&self) -> usize {
        self.master
            .actor
            .send(strata_master::actor::Inspect(Box::new(|state, _| {
                state.agents().len()
            })))
            .await
            .unwrap()
    }

    /// The live tasks the master knows of the frameworks called `name`.
    async fn tasks_of(&self, name: &str) -> Vec<Task> {
        let name = name.to_owned();
        self.master
            .actor
            .send(strata_master::actor::Inspect(Box::new(move |state, _| {
                state
                    .frameworks()
                    .into_iter()
                    .filter(|framework| framework.info.name == name)
                    .flat_map(|framework| framework.tasks)
                    .collect()
            })))
            .await
            .unwrap()
    }

    /// Waits until the framework `name` has exactly `n` tasks, all RUNNING, and returns them.
    async fn wait_for_running(&self, name: &str, n: usize, what: &str) -> Vec<Task> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let tasks = self.tasks_of(name).await;
            if tasks.len() == n && tasks.iter().all(|task| task.state == TaskState::Running) {
                return tasks;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}; tasks: {:?}",
                tasks
                    .iter()
                    .map(|t| (t.task_id.as_str(), t.state, t.agent_id.as_str()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an example to its end; returns its exit status and its stdout followed by its stderr.
async fn run_example(name: &str, args: &[&str]) -> (ExitStatus, String) {
    let output = tokio::time::timeout(
        DEADLINE,
        Command::new(example_binary(name))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} did not finish within {DEADLINE:?}"))
    .unwrap();
    // Both streams, for the assertions' messages.
    let stdout = format!(
        "{}\n(stderr:)\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, stdout)
}

/// The lines of `dir/attempts`, one per attempt that ran, each the task index.
fn attempts(dir: &Path) -> Vec<usize> {
    let mut lines: Vec<usize> = std::fs::read_to_string(dir.join("attempts"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect();
    lines.sort_unstable();
    lines
}

#[actix_rt::test]
async fn batch_retries_failed_attempts_until_every_task_succeeds() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Even tasks fail their first attempt: it leaves a marker that lets the next one pass.
    let command = format!(
        "echo $TASK_INDEX >> {d}/attempts; \
         if [ $((TASK_INDEX % 2)) -eq 0 ] && [ ! -e {d}/marker-$TASK_INDEX ]; then \
         touch {d}/marker-$TASK_INDEX; exit 1; fi"
    );
    let master = cluster.master_addr();
    let (status, stdout) = run_example(
        "batch",
        &[
            "--master",
            &master,
            "--tasks",
            "6",
            "--retries",
            "2",
            "--",
            &command,
        ],
    )
    .await;
    assert!(status.success(), "batch failed: {status}\n{stdout}");
    assert!(
        stdout.contains("summary: tasks=6 succeeded=6 failed=0 attempts=9"),
        "{stdout}"
    );
    assert_eq!(attempts(dir.path()), vec![0, 0, 1, 2, 2, 3, 4, 4, 5]);
    // The framework tore down: nothing of it is left on the master.
    wait_until("the batch framework is gone from the master", || async {
        cluster.tasks_of("batch").await.is_empty()
    })
    .await;
}

#[actix_rt::test]
async fn batch_gives_up_after_the_retries_and_exits_1() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "echo $TASK_INDEX >> {}/attempts; exit 3",
        dir.path().display()
    );
    let master = cluster.master_addr();
    let (status, stdout) = run_example(
        "batch",
        &[
            "--master",
            &master,
            "--tasks",
            "2",
            "--retries",
            "2",
            "--",
            &command,
        ],
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("summary: tasks=2 succeeded=0 failed=2 attempts=6"),
        "{stdout}"
    );
    assert_eq!(attempts(dir.path()), vec![0, 0, 0, 1, 1, 1]);
}

/// The pid an instance's command wrote to `dir/pid-<task id>`.
async fn instance_pid(dir: &Path, task: &Task) -> i32 {
    let path = dir.join(format!("pid-{}", task.task_id));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(pid) = std::fs::read_to_string(&path)
            && let Ok(pid) = pid.trim().parse()
        {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never wrote its pid",
            task.task_id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(pid: i32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid).expect("positive pid");
    rustix::process::kill_process(pid, signal).expect("the process exists");
}

fn is_alive(pid: i32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Reads the service's output in the background so that it never blocks on a full pipe.
fn drain(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let mut stdout = child.stdout.take().unwrap();
    tokio::spawn(async move {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out).await;
        out
    })
}

#[actix_rt::test]
async fn service_keeps_its_instances_running_and_stops_on_sigint() {
    let mut cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "echo $$ > {}/pid-$TASK_ID; exec sleep 1000",
        dir.path().display()
    );
    let mut service = Command::new(example_binary("service"))
        .args(["--master", &cluster.master_addr(), "--instances", "3", "--"])
        .arg(&command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = drain(&mut service);

    let tasks = cluster
        .wait_for_running("service", 3, "3 instances run")
        .await;
    let agents: std::collections::BTreeSet<&AgentId> =
        tasks.iter().map(|task| &task.agent_id).collect();
    assert_eq!(agents.len(), 2, "the instances are spread over both agents");

    // An instance's process dies: a replacement takes its place.
    let victim = tasks[0].clone();
    signal(
        instance_pid(dir.path(), &victim).await,
        rustix::process::Signal::KILL,
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let tasks = loop {
        let tasks = cluster
            .wait_for_running("service", 3, "3 instances run again")
            .await;
        if tasks.iter().all(|task| task.task_id != victim.task_id) {
            break tasks;
        }
        assert!(tokio::time::Instant::now() < deadline, "never replaced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // An agent goes away: once the master notices, its instances move to the other agent.
    let lost_agent = tasks[0].agent_id.clone();
    let mut stopped = None;
    for (n, agent) in cluster.agents.iter().enumerate() {
        if agent_id_of(agent).await == lost_agent {
            stopped = Some(n);
        }
    }
    let stopped = stopped.expect("the agent of a task is one of the cluster's");
    cluster.agents.remove(stopped).stop_and_destroy().await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let tasks = loop {
        let tasks = cluster
            .wait_for_running("service", 3, "3 instances run after the agent loss")
            .await;
        if tasks.iter().all(|task| task.agent_id != lost_agent) {
            break tasks;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lost agent's instances were never replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Ctrl-C: the service kills its instances, tears down and exits 0.
    let mut pids = Vec::new();
    for task in &tasks {
        pids.push(instance_pid(dir.path(), task).await);
    }
    signal(
        i32::try_from(service.id().unwrap()).unwrap(),
        rustix::process::Signal::INT,
    );
    let status = tokio::time::timeout(DEADLINE, service.wait())
        .await
        .expect("the service exits after SIGINT")
        .unwrap();
    let stdout = output.await.unwrap();
    assert!(status.success(), "service exited {status}:\n{stdout}");
    assert!(stdout.contains("tearing down"), "{stdout}");
    wait_until("the master has no task of the service", || async {
        cluster.tasks_of("service").await.is_empty()
    })
    .await;
    wait_until("the instances' processes are gone", || {
        let alive = pids.iter().any(|pid| is_alive(*pid));
        async move { !alive }
    })
    .await;
}

async fn agent_id_of(agent: &AgentHandle) -> AgentId {
    agent
        .actor
        .send(strata_agent::actor::Inspect(Box::new(|state, _| {
            state.agent_id().cloned()
        })))
        .await
        .unwrap()
        .expect("the agent registered")
}
