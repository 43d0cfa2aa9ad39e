//! Group commit on a real directory: the checkpoint writer makes writes durable in batches,
//! and a send queued after a write happens only once that write is on disk, in queue order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use strata_agent::checkpoint::writer::CheckpointWriter;
use strata_agent::checkpoint::{CheckpointStore, RunRecord, UpdateRecord};
use strata_agent::state::CheckpointOp;
use strata_protocol::internal::StatusUpdate;
use strata_protocol::mesos::{AgentInfo, ExecutorInfo, FrameworkInfo, Task, TaskStatus};
use strata_protocol::{AgentId, Bytes, ContainerId, ExecutorId, FrameworkId, TaskId, TaskState};

const AGENT: &str = "20261127-0001-S0";
const FW: &str = "fw-1";

fn agent_id() -> AgentId {
    AgentId::new(AGENT).unwrap()
}

fn agent_info() -> AgentInfo {
    serde_json::from_value(json!({
        "hostname": "node-1.example",
        "port": 5051,
        "id": {"value": AGENT},
        "resources": []
    }))
    .unwrap()
}

fn framework_info() -> FrameworkInfo {
    serde_json::from_value(json!({
        "user": "alice",
        "name": "writer test",
        "id": {"value": FW},
        "checkpoint": true
    }))
    .unwrap()
}

fn executor_info(id: &str) -> ExecutorInfo {
    serde_json::from_value(json!({
        "type": "CUSTOM",
        "executor_id": {"value": id},
        "framework_id": {"value": FW},
        "command": {"value": "exec ./executor"}
    }))
    .unwrap()
}

fn task(ex_id: &str, id: &str) -> Task {
    serde_json::from_value(json!({
        "name": id,
        "task_id": {"value": id},
        "framework_id": {"value": FW},
        "executor_id": {"value": ex_id},
        "agent_id": {"value": AGENT},
        "state": "TASK_STAGING",
        "resources": []
    }))
    .unwrap()
}

fn update(ex_id: &str, task: &str, n: u32) -> UpdateRecord {
    let uuid = Bytes::new(n.to_be_bytes().to_vec());
    let mut status = TaskStatus::new(TaskId::new(task).unwrap(), TaskState::Running);
    status.uuid = Some(uuid.clone());
    UpdateRecord::Update(StatusUpdate {
        framework_id: FrameworkId::new(FW).unwrap(),
        agent_id: agent_id(),
        executor_id: Some(ExecutorId::new(ex_id).unwrap()),
        status,
        timestamp: 1_800_000_000.0,
        uuid,
        latest_state: Some(TaskState::Running),
    })
}

/// The checkpoint ops of one task: its executor, run, task record and one update.
fn task_ops(n: usize) -> Vec<CheckpointOp> {
    let ex_id = format!("ex-{n}");
    let task_id = format!("task-{n}");
    let framework_id = FrameworkId::new(FW).unwrap();
    let executor_id = ExecutorId::new(&ex_id).unwrap();
    let container_id = ContainerId::new(format!("c-{n}")).unwrap();
    vec![
        CheckpointOp::Executor {
            agent_id: agent_id(),
            framework_id: framework_id.clone(),
            info: executor_info(&ex_id),
        },
        CheckpointOp::Run {
            agent_id: agent_id(),
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            container_id: container_id.clone(),
            pid: None,
            completed: false,
            in_agent: false,
        },
        CheckpointOp::Task {
            agent_id: agent_id(),
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            container_id: container_id.clone(),
            task: task(&ex_id, &task_id),
        },
        CheckpointOp::Run {
            agent_id: agent_id(),
            framework_id: framework_id.clone(),
            executor_id: executor_id.clone(),
            container_id: container_id.clone(),
            pid: Some(1000 + n as u32),
            completed: false,
            in_agent: false,
        },
        CheckpointOp::Update {
            agent_id: agent_id(),
            framework_id,
            executor_id,
            container_id,
            task_id: TaskId::new(&task_id).unwrap(),
            record: update(&ex_id, &task_id, n as u32),
        },
    ]
}

/// Counts the tasks whose update is on disk, as a restarted agent would read them.
fn updates_on_disk(store: &CheckpointStore) -> usize {
    let Some(recovered) = store.recover().unwrap() else {
        return 0;
    };
    recovered
        .frameworks
        .iter()
        .flat_map(|framework| &framework.executors)
        .flat_map(|executor| &executor.runs)
        .flat_map(|run| &run.tasks)
        .filter(|task| !task.updates.is_empty())
        .count()
}

#[test]
fn a_send_waits_for_the_writes_before_it_and_sends_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    let writer = CheckpointWriter::start(store.clone()).unwrap();
    writer.write(CheckpointOp::Agent(agent_info()));
    writer.write(CheckpointOp::Framework {
        agent_id: agent_id(),
        info: framework_info(),
    });
    // What each send saw on disk when it ran, in the order the sends ran.
    let seen = Arc::new(Mutex::new(Vec::new()));
    const TASKS: usize = 40;
    for n in 0..TASKS {
        for op in task_ops(n) {
            writer.write(op);
        }
        let seen = Arc::clone(&seen);
        let reader = store.clone();
        writer.then(Box::new(move || {
            let on_disk = updates_on_disk(&reader);
            seen.lock().unwrap().push((n, on_disk));
        }));
    }
    writer.flush();
    assert!(!writer.busy());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), TASKS, "every send ran once");
    for (position, (n, on_disk)) in seen.iter().enumerate() {
        assert_eq!(*n, position, "sends ran in the order queued");
        assert!(
            *on_disk > *n,
            "send {n} ran with only {on_disk} updates on disk"
        );
    }
    // Every write landed, with the run records of the last write of each run.
    let recovered = store.recover().unwrap().expect("an agent");
    let executors = &recovered.frameworks[0].executors;
    assert_eq!(executors.len(), TASKS);
    for executor in executors {
        let n: u32 = executor.info.executor_id.as_str()[3..].parse().unwrap();
        assert_eq!(
            executor.runs[0].record,
            RunRecord {
                pid: Some(1000 + n),
                completed: false,
                in_agent: false,
            }
        );
    }
}

#[test]
fn a_batch_publishes_replaced_files_only_at_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    store.write_agent(&agent_info()).unwrap();
    store
        .write_framework(&agent_id(), &framework_info())
        .unwrap();
    let batch = store.batched();
    let framework_id = FrameworkId::new(FW).unwrap();
    let executor_id = ExecutorId::new("ex").unwrap();
    batch
        .write_executor(&agent_id(), &framework_id, &executor_info("ex"))
        .unwrap();
    // Two runs first written in one batch still get their own places, in order.
    for (container, pid) in [("c-1", 1), ("c-2", 2)] {
        let container_id = ContainerId::new(container).unwrap();
        batch
            .write_run(
                &agent_id(),
                &framework_id,
                &executor_id,
                &container_id,
                &RunRecord {
                    pid: None,
                    completed: false,
                    in_agent: false,
                },
            )
            .unwrap();
        batch
            .write_run(
                &agent_id(),
                &framework_id,
                &executor_id,
                &container_id,
                &RunRecord {
                    pid: Some(pid),
                    completed: false,
                    in_agent: false,
                },
            )
            .unwrap();
    }
    let before = store.recover().unwrap().expect("an agent");
    assert!(
        before.frameworks[0].executors.is_empty(),
        "nothing of the batch is published before its commit: {before:#?}"
    );
    batch.commit().unwrap();
    let after = store.recover().unwrap().expect("an agent");
    let runs = &after.frameworks[0].executors[0].runs;
    let pids: Vec<Option<u32>> = runs.iter().map(|run| run.record.pid).collect();
    assert_eq!(pids, vec![Some(1), Some(2)], "the latest run is last");
    // No temporary file is left beside the published ones.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn removing_a_framework_in_a_batch_removes_what_the_batch_wrote_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    store.write_agent(&agent_info()).unwrap();
    let writer = CheckpointWriter::start(store.clone()).unwrap();
    writer.write(CheckpointOp::Framework {
        agent_id: agent_id(),
        info: framework_info(),
    });
    for op in task_ops(7) {
        writer.write(op);
    }
    writer.write(CheckpointOp::RemoveFramework {
        agent_id: agent_id(),
        framework_id: FrameworkId::new(FW).unwrap(),
    });
    let (done, wait) = std::sync::mpsc::channel();
    writer.then(Box::new(move || done.send(()).unwrap()));
    wait.recv_timeout(Duration::from_secs(10))
        .expect("the send after the removal ran");
    let recovered = store.recover().unwrap().expect("an agent");
    assert!(recovered.frameworks.is_empty(), "{recovered:#?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
