//! The agent's checkpoint store on a real directory: what is written comes back after the store
//! is reopened (as after an agent restart), in a fixed order, and damaged files are either
//! repaired (a torn last update) or reported by name.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata_agent::checkpoint::{
    CheckpointError, CheckpointStore, Recovered, RecoveredExecutor, RecoveredFramework,
    RecoveredRun, RecoveredTask, RunRecord, UpdateRecord,
};
use strata_protocol::internal::StatusUpdate;
use strata_protocol::mesos::{AgentInfo, ExecutorInfo, FrameworkInfo, Task, TaskStatus};
use strata_protocol::{
    AgentId, Bytes, ContainerId, ExecutorId, FrameworkId, Resource, TaskId, TaskState,
};

const AGENT: &str = "20261127-0001-S0";

fn agent_id() -> AgentId {
    AgentId::new(AGENT).unwrap()
}

fn fw(id: &str) -> FrameworkId {
    FrameworkId::new(id).unwrap()
}

fn ex(id: &str) -> ExecutorId {
    ExecutorId::new(id).unwrap()
}

fn container(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

fn task_id(id: &str) -> TaskId {
    TaskId::new(id).unwrap()
}

fn agent_info(id: &str) -> AgentInfo {
    serde_json::from_value(json!({
        "hostname": "node-1.example",
        "port": 5051,
        "id": {"value": id},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31000, "end": 32000}]}
            }
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]
    }))
    .unwrap()
}

fn framework_info(id: &str) -> FrameworkInfo {
    serde_json::from_value(json!({
        "user": "alice",
        "name": format!("framework {id}"),
        "id": {"value": id},
        "checkpoint": true,
        "failover_timeout": 60.0,
        "roles": ["web"],
        "capabilities": [{"type": "MULTI_ROLE"}]
    }))
    .unwrap()
}

fn executor_info(fw_id: &str, id: &str) -> ExecutorInfo {
    serde_json::from_value(json!({
        "type": "CUSTOM",
        "executor_id": {"value": id},
        "framework_id": {"value": fw_id},
        "command": {
            "value": "exec ./executor",
            "environment": {"variables": [{"name": "A", "value": "1"}]}
        },
        "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}],
        "data": "AAEC/w=="
    }))
    .unwrap()
}

fn task(fw_id: &str, ex_id: &str, id: &str) -> Task {
    serde_json::from_value(json!({
        "name": format!("task {id}"),
        "task_id": {"value": id},
        "framework_id": {"value": fw_id},
        "executor_id": {"value": ex_id},
        "agent_id": {"value": AGENT},
        "state": "TASK_STAGING",
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}],
        "labels": {"labels": [{"key": "tier", "value": "web"}]}
    }))
    .unwrap()
}

fn update(fw_id: &str, ex_id: &str, task: &str, state: TaskState, n: u32) -> UpdateRecord {
    let uuid = Bytes::new(n.to_be_bytes().to_vec());
    let mut status = TaskStatus::new(task_id(task), state);
    status.uuid = Some(uuid.clone());
    status.message = Some(format!("update {n}"));
    status.timestamp = Some(1_800_000_000.0 + f64::from(n));
    UpdateRecord::Update(StatusUpdate {
        framework_id: fw(fw_id),
        agent_id: agent_id(),
        executor_id: Some(ex(ex_id)),
        status,
        timestamp: 1_800_000_000.0 + f64::from(n),
        uuid,
        latest_state: Some(state),
    })
}

fn ack(n: u32) -> UpdateRecord {
    UpdateRecord::Ack {
        uuid: Bytes::new(n.to_be_bytes().to_vec()),
    }
}

fn run(pid: u32) -> RunRecord {
    RunRecord {
        pid: Some(pid),
        completed: false,
        in_agent: false,
    }
}

/// Writes one framework with one executor, one run and one task with `updates`.
fn write_task_tree(
    store: &CheckpointStore,
    fw_id: &str,
    ex_id: &str,
    container_id: &str,
    task: &str,
    updates: &[UpdateRecord],
) {
    let agent = agent_id();
    store
        .write_framework(&agent, &framework_info(fw_id))
        .unwrap();
    store
        .write_executor(&agent, &fw(fw_id), &executor_info(fw_id, ex_id))
        .unwrap();
    let (f, e, c) = (fw(fw_id), ex(ex_id), container(container_id));
    store.write_run(&agent, &f, &e, &c, &run(100)).unwrap();
    store
        .write_task(&agent, &f, &e, &c, &self::task(fw_id, ex_id, task))
        .unwrap();
    for record in updates {
        store
            .append_update(&agent, &f, &e, &c, &task_id(task), record)
            .unwrap();
    }
}

/// The runs log of framework `fw_id`: its executors, runs, tasks and updates.
fn runs_log(work_dir: &Path, fw_id: &str) -> PathBuf {
    work_dir
        .join("meta/agents")
        .join(AGENT)
        .join("frameworks")
        .join(fw_id)
        .join("runs.log")
}

fn recover(work_dir: &Path) -> Result<Option<Recovered>, CheckpointError> {
    // A new store over the same directory, as after a restart of the agent.
    CheckpointStore::open(work_dir, false).unwrap().recover()
}

#[test]
fn a_fresh_work_dir_has_nothing_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    assert!(dir.path().join("meta").is_dir());
    assert_eq!(store.recover().unwrap(), None);
    // A boot ID alone is not an agent.
    store.write_boot_id("b1").unwrap();
    assert_eq!(store.recover().unwrap(), None);
}

#[test]
fn a_full_tree_comes_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    let agent = agent_id();
    store.write_boot_id("0d9b4c6e-boot").unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    let reserved: Vec<Resource> = serde_json::from_value(json!([{
        "name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
        "reservations": [{"type": "DYNAMIC", "role": "web", "principal": "ops"}]
    }]))
    .unwrap();
    store.write_resources(&agent, &reserved).unwrap();
    let a_updates = [
        update("fw-a", "ex-1", "t1", TaskState::Running, 1),
        ack(1),
        update("fw-a", "ex-1", "t1", TaskState::Finished, 2),
    ];
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &a_updates);
    write_task_tree(&store, "fw-b", "ex-2", "c-2", "t2", &[]);
    let completed = RunRecord {
        pid: None,
        completed: true,
        in_agent: false,
    };
    let (b, e2, c2) = (fw("fw-b"), ex("ex-2"), container("c-2"));
    store.write_run(&agent, &b, &e2, &c2, &completed).unwrap();

    let expected = Recovered {
        boot_id: Some("0d9b4c6e-boot".to_owned()),
        agent_info: agent_info(AGENT),
        resources: reserved,
        frameworks: vec![
            RecoveredFramework {
                info: framework_info("fw-a"),
                executors: vec![RecoveredExecutor {
                    info: executor_info("fw-a", "ex-1"),
                    runs: vec![RecoveredRun {
                        container_id: container("c-1"),
                        record: run(100),
                        tasks: vec![RecoveredTask {
                            task: task("fw-a", "ex-1", "t1"),
                            updates: a_updates.to_vec(),
                        }],
                    }],
                }],
            },
            RecoveredFramework {
                info: framework_info("fw-b"),
                executors: vec![RecoveredExecutor {
                    info: executor_info("fw-b", "ex-2"),
                    runs: vec![RecoveredRun {
                        container_id: container("c-2"),
                        record: completed,
                        tasks: vec![RecoveredTask {
                            task: task("fw-b", "ex-2", "t2"),
                            updates: Vec::new(),
                        }],
                    }],
                }],
            },
        ],
    };
    assert_eq!(recover(dir.path()).unwrap(), Some(expected));
}

#[test]
fn rewriting_an_info_file_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let mut info = agent_info(AGENT);
    store.write_agent(&info).unwrap();
    info.hostname = "renamed".to_owned();
    store.write_agent(&info).unwrap();
    let mut t = task("fw-a", "ex-1", "t1");
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[]);
    t.state = TaskState::Running;
    let agent = agent_id();
    let (f, e, c) = (fw("fw-a"), ex("ex-1"), container("c-1"));
    store.write_task(&agent, &f, &e, &c, &t).unwrap();

    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(recovered.agent_info.hostname, "renamed");
    assert_eq!(
        recovered.frameworks[0].executors[0].runs[0].tasks[0].task,
        t
    );
    // No temporary files are left beside the info files.
    let agent_dir = dir.path().join("meta/agents").join(AGENT);
    let names: Vec<String> = fs::read_dir(&agent_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn recovery_order_is_by_id_and_runs_by_creation() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let agent = agent_id();
    store.write_agent(&agent_info(AGENT)).unwrap();
    for fw_id in ["fw-c", "fw-a", "fw-b"] {
        store
            .write_framework(&agent, &framework_info(fw_id))
            .unwrap();
    }
    let a = fw("fw-a");
    for ex_id in ["ex-9", "ex-10", "ex-1"] {
        store
            .write_executor(&agent, &a, &executor_info("fw-a", ex_id))
            .unwrap();
    }
    let e = ex("ex-1");
    // Created in this order; the IDs sort the other way.
    for (idx, c) in ["run-z", "run-m", "run-a"].iter().enumerate() {
        store
            .write_run(&agent, &a, &e, &container(c), &run(idx as u32))
            .unwrap();
    }
    // Rewriting an older run (its executor exited) keeps its place.
    let done = RunRecord {
        pid: Some(0),
        completed: true,
        in_agent: false,
    };
    store
        .write_run(&agent, &a, &e, &container("run-z"), &done)
        .unwrap();
    for t in ["t-3", "t-1", "t-2"] {
        store
            .write_task(
                &agent,
                &a,
                &e,
                &container("run-a"),
                &task("fw-a", "ex-1", t),
            )
            .unwrap();
    }

    let recovered = recover(dir.path()).unwrap().unwrap();
    let frameworks: Vec<String> = recovered
        .frameworks
        .iter()
        .map(|f| f.info.id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(frameworks, ["fw-a", "fw-b", "fw-c"]);
    let executors = &recovered.frameworks[0].executors;
    let executor_ids: Vec<&str> = executors
        .iter()
        .map(|e| e.info.executor_id.as_str())
        .collect();
    assert_eq!(executor_ids, ["ex-1", "ex-10", "ex-9"]);
    let runs = &executors[0].runs;
    let run_ids: Vec<&str> = runs.iter().map(|r| r.container_id.as_str()).collect();
    assert_eq!(
        run_ids,
        ["run-z", "run-m", "run-a"],
        "the latest run is last"
    );
    assert_eq!(runs[0].record, done);
    let task_ids: Vec<&str> = runs[2]
        .tasks
        .iter()
        .map(|t| t.task.task_id.as_str())
        .collect();
    assert_eq!(task_ids, ["t-1", "t-2", "t-3"]);
    // The same tree reads the same way again.
    assert_eq!(recover(dir.path()).unwrap(), Some(recovered));
}

/// Where the records of a log end: logs are preallocated, and zeros follow their last record.
/// Every record these tests write ends in a non-zero byte.
fn records_end(path: &Path) -> usize {
    let bytes = fs::read(path).unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |at| at + 1)
}

#[test]
fn a_torn_last_update_is_dropped_and_cut_off_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    let kept = [
        update("fw-a", "ex-1", "t1", TaskState::Running, 1),
        ack(1),
        update("fw-a", "ex-1", "t1", TaskState::Finished, 2),
    ];
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &kept);
    let path = runs_log(dir.path(), "fw-a");
    let whole_len = records_end(&path);
    // The agent died halfway through appending the acknowledgement: only its first bytes
    // reached the disk.
    let agent = agent_id();
    let (f, e, c, t) = (fw("fw-a"), ex("ex-1"), container("c-1"), task_id("t1"));
    store
        .append_update(&agent, &f, &e, &c, &t, &ack(2))
        .unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let torn_end = records_end(&path);
    assert!(torn_end > whole_len + 7);
    bytes[whole_len + 7..torn_end].fill(0);
    fs::write(&path, &bytes).unwrap();

    let recovered = recover(dir.path()).unwrap().unwrap();
    let updates = &recovered.frameworks[0].executors[0].runs[0].tasks[0].updates;
    assert_eq!(updates, &kept);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        whole_len as u64,
        "the torn tail is cut off"
    );

    // Appends continue after the last whole record.
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store
        .append_update(&agent, &f, &e, &c, &t, &ack(2))
        .unwrap();
    let recovered = store.recover().unwrap().unwrap();
    let updates = &recovered.frameworks[0].executors[0].runs[0].tasks[0].updates;
    assert_eq!(updates.len(), 4);
    assert_eq!(updates[3], ack(2));
}

#[test]
fn zeros_after_the_last_update_are_free_space_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    let kept = [update("fw-a", "ex-1", "t1", TaskState::Running, 1)];
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &kept);
    let path = runs_log(dir.path(), "fw-a");
    // More zeros than the store preallocated: a file that grew before its data reached the
    // disk looks the same.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0; 300_000])
        .unwrap();
    let len = fs::metadata(&path).unwrap().len();

    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(
        recovered.frameworks[0].executors[0].runs[0].tasks[0].updates,
        kept
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), len, "nothing to cut");

    // The next record goes right after the last one, into the zeros.
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let (f, e, c, t) = (fw("fw-a"), ex("ex-1"), container("c-1"), task_id("t1"));
    store
        .append_update(&agent_id(), &f, &e, &c, &t, &ack(1))
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    let recovered = store.recover().unwrap().unwrap();
    assert_eq!(
        recovered.frameworks[0].executors[0].runs[0].tasks[0].updates,
        [kept[0].clone(), ack(1)]
    );
}

#[test]
fn a_damaged_update_before_the_end_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    let updates = [
        update("fw-a", "ex-1", "t1", TaskState::Running, 1),
        update("fw-a", "ex-1", "t1", TaskState::Finished, 2),
    ];
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &updates);
    let path = runs_log(dir.path(), "fw-a");
    let mut bytes = fs::read(&path).unwrap();
    bytes[30] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    let err = recover(dir.path()).unwrap_err();
    match &err {
        CheckpointError::Corrupt {
            path: bad, offset, ..
        } => {
            assert_eq!(bad, &path);
            assert_eq!(*offset, 0);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(err.to_string().contains("runs.log"), "{err}");
    // Nothing was cut: the operator still has every byte to inspect.
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_damaged_info_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[]);
    let path = dir
        .path()
        .join("meta/agents")
        .join(AGENT)
        .join("frameworks/fw-a/framework.info");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let err = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Corrupt { path: bad, .. } if bad == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("framework.info"), "{err}");

    // A cut info file is corruption too: info files are replaced whole, never appended to.
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Corrupt { path: bad, .. } if bad == &path),
        "{err:?}"
    );
}

#[test]
fn wiping_forgets_the_agent_and_its_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    store.write_boot_id("b1").unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[ack(1)]);
    store.wipe_agent().unwrap();
    assert_eq!(store.recover().unwrap(), None);
    assert!(!dir.path().join("meta/agents").join(AGENT).exists());
    assert!(!dir.path().join("meta/agents/latest").exists());
    // Wiping twice is harmless.
    store.wipe_agent().unwrap();

    // The next registration starts a new tree.
    let next = "20261127-0002-S7";
    store.write_agent(&agent_info(next)).unwrap();
    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(recovered.agent_info.id, Some(AgentId::new(next).unwrap()));
    assert!(recovered.frameworks.is_empty());
    assert_eq!(recovered.boot_id.as_deref(), Some("b1"));
}

#[test]
fn a_damaged_current_agent_is_reported_and_can_be_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    let latest = dir.path().join("meta/agents/latest");
    fs::write(&latest, "../elsewhere\n").unwrap();
    let err = store.recover().unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Corrupt { path, .. } if path == &latest),
        "{err:?}"
    );
    store.wipe_agent().unwrap();
    assert_eq!(store.recover().unwrap(), None);
}

#[test]
fn removing_a_framework_leaves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[ack(1)]);
    write_task_tree(&store, "fw-b", "ex-1", "c-2", "t1", &[ack(2)]);
    store.remove_framework(&agent_id(), &fw("fw-a")).unwrap();
    // Removing what is already gone is harmless.
    store.remove_framework(&agent_id(), &fw("fw-a")).unwrap();

    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(recovered.frameworks.len(), 1);
    assert_eq!(recovered.frameworks[0].info, framework_info("fw-b"));
    assert!(
        !dir.path()
            .join("meta/agents")
            .join(AGENT)
            .join("frameworks/fw-a")
            .exists()
    );
    // Nothing is left in the trash either.
    let trash = dir.path().join("meta/.trash");
    assert!(!trash.exists() || fs::read_dir(&trash).unwrap().next().is_none());
}

#[test]
fn ten_thousand_updates_load_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[]);
    let agent = agent_id();
    let (f, e, c, t) = (fw("fw-a"), ex("ex-1"), container("c-1"), task_id("t1"));
    let expected: Vec<UpdateRecord> = (0..10_000)
        .map(|n| {
            if n % 2 == 0 {
                update("fw-a", "ex-1", "t1", TaskState::Running, n)
            } else {
                ack(n - 1)
            }
        })
        .collect();
    for record in &expected {
        store.append_update(&agent, &f, &e, &c, &t, record).unwrap();
    }
    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(
        recovered.frameworks[0].executors[0].runs[0].tasks[0].updates,
        expected
    );
}

#[test]
fn a_directory_missing_its_info_file_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let agent = agent_id();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[]);
    // The agent died after creating these directories, before their info files.
    store
        .write_executor(&agent, &fw("fw-x"), &executor_info("fw-x", "ex-1"))
        .unwrap();
    let (a, e) = (fw("fw-a"), ex("ex-1"));
    let c = container("c-2");
    store
        .write_task(&agent, &a, &e, &c, &task("fw-a", "ex-1", "t9"))
        .unwrap();

    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(recovered.frameworks.len(), 1);
    let runs = &recovered.frameworks[0].executors[0].runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].container_id, container("c-1"));
}

#[test]
fn an_agent_latest_without_its_info_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    fs::remove_file(
        dir.path()
            .join("meta/agents")
            .join(AGENT)
            .join("agent.info"),
    )
    .unwrap();
    assert_eq!(store.recover().unwrap(), None);
}

#[test]
fn ids_cannot_leave_the_checkpoint_tree() {
    // The newtypes refuse anything that could climb out of a directory.
    for bad in ["..", ".", "a/b", "../../etc", "a\\b", "", "a\0b"] {
        assert!(AgentId::new(bad).is_err(), "{bad:?}");
        assert!(FrameworkId::new(bad).is_err(), "{bad:?}");
        assert!(ContainerId::new(bad).is_err(), "{bad:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();

    // `latest` names the current agent and cannot also be one.
    let err = store.write_agent(&agent_info("latest")).unwrap_err();
    assert!(matches!(err, CheckpointError::InvalidId { .. }), "{err:?}");
    let mut nameless = agent_info(AGENT);
    nameless.id = None;
    let err = store.write_agent(&nameless).unwrap_err();
    assert!(matches!(err, CheckpointError::MissingId { .. }), "{err:?}");

    // Odd but valid IDs stay single components inside the tree.
    store.write_agent(&agent_info(AGENT)).unwrap();
    for odd in ["...", ".hidden", "a b", "名前", "-rf"] {
        store
            .write_framework(&agent_id(), &framework_info(odd))
            .unwrap();
        let path = dir
            .path()
            .join("meta/agents")
            .join(AGENT)
            .join("frameworks")
            .join(odd);
        assert!(path.join("framework.info").is_file(), "{odd:?}");
    }
    let recovered = recover(dir.path()).unwrap().unwrap();
    assert_eq!(recovered.frameworks.len(), 5);
    let outside: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["meta"]);
}

#[test]
fn a_foreign_entry_in_the_tree_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    write_task_tree(&store, "fw-a", "ex-1", "c-1", "t1", &[]);
    let bad = dir
        .path()
        .join("meta/agents")
        .join(AGENT)
        .join("frameworks/fw\u{7}a");
    fs::create_dir_all(&bad).unwrap();
    let err = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::UnexpectedEntry { path, .. } if path == &bad),
        "{err:?}"
    );
}

#[test]
fn the_boot_id_is_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), true).unwrap();
    store.write_agent(&agent_info(AGENT)).unwrap();
    assert_eq!(store.recover().unwrap().unwrap().boot_id, None);
    store.write_boot_id("first").unwrap();
    store.write_boot_id("second").unwrap();
    assert_eq!(
        recover(dir.path()).unwrap().unwrap().boot_id.as_deref(),
        Some("second")
    );
}

#[test]
fn a_long_lived_framework_s_log_is_compacted_to_what_recovery_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let agent = agent_id();
    store.write_agent(&agent_info(AGENT)).unwrap();
    store
        .write_framework(&agent, &framework_info("fw-a"))
        .unwrap();
    let f = fw("fw-a");
    let done = |pid| RunRecord {
        pid: Some(pid),
        completed: true,
        in_agent: false,
    };
    // An executor ID reused by a second run: only the latest run counts.
    let reused = ex("ex-reused");
    let mut big = executor_info("fw-a", "ex-reused");
    big.data = Some(Bytes::new(vec![7; 2048]));
    store.write_executor(&agent, &f, &big).unwrap();
    store
        .write_run(&agent, &f, &reused, &container("c-old"), &done(1))
        .unwrap();
    store.write_executor(&agent, &f, &big).unwrap();
    store
        .write_run(&agent, &f, &reused, &container("c-new"), &run(2))
        .unwrap();
    // Thousands of short tasks, each an executor with a 2 KiB info: more than 6 MB of
    // records, most of them for runs that completed. Every 500th stays live, its last update
    // unacknowledged.
    let mut live = Vec::new();
    let mut written = 0u64;
    for n in 0..3_000u32 {
        let ex_id = format!("ex-{n}");
        let (e, c, t) = (
            ex(&ex_id),
            container(&format!("c-{n}")),
            task_id(&format!("t-{n}")),
        );
        let mut info = executor_info("fw-a", &ex_id);
        info.data = Some(Bytes::new(vec![n as u8; 2048]));
        written += 2048;
        store.write_executor(&agent, &f, &info).unwrap();
        store.write_run(&agent, &f, &e, &c, &run(n)).unwrap();
        store
            .write_task(&agent, &f, &e, &c, &task("fw-a", &ex_id, t.as_str()))
            .unwrap();
        let updates = [
            update("fw-a", &ex_id, t.as_str(), TaskState::Running, 2 * n),
            ack(2 * n),
            update("fw-a", &ex_id, t.as_str(), TaskState::Finished, 2 * n + 1),
        ];
        for record in &updates {
            store.append_update(&agent, &f, &e, &c, &t, record).unwrap();
        }
        if n % 500 == 0 {
            live.push((ex_id, updates.to_vec()));
            continue;
        }
        store
            .append_update(&agent, &f, &e, &c, &t, &ack(2 * n + 1))
            .unwrap();
        store.write_run(&agent, &f, &e, &c, &done(n)).unwrap();
    }
    assert!(written > 6_000_000);

    let log_len = fs::metadata(runs_log(dir.path(), "fw-a")).unwrap().len();
    assert!(
        log_len < 4 * 1024 * 1024,
        "the log holds {log_len} bytes after {written} bytes of executor infos alone"
    );
    let recovered = recover(dir.path()).unwrap().unwrap();
    let executors = &recovered.frameworks[0].executors;
    // Completed executors written after the last compaction are still there; every live one
    // is, whole.
    for (ex_id, updates) in &live {
        let executor = executors
            .iter()
            .find(|executor| executor.info.executor_id.as_str() == ex_id)
            .unwrap_or_else(|| panic!("live executor {ex_id} was dropped"));
        let last = executor.runs.last().unwrap();
        assert!(!last.record.completed);
        assert_eq!(&last.tasks[0].updates, updates);
    }
    let reused = executors
        .iter()
        .find(|executor| executor.info.executor_id == reused)
        .expect("a live reused executor");
    let last = reused.runs.last().unwrap();
    assert_eq!(last.container_id, container("c-new"));
    assert_eq!(last.record, run(2));
    // Dropped: the first thousand tasks' executors, all completed long before the end.
    assert!(
        !executors
            .iter()
            .any(|executor| executor.info.executor_id.as_str() == "ex-1"),
        "a completed executor survived compaction"
    );

    // Appends after a compaction land after it, and a reopened store appends to the same log.
    let store = CheckpointStore::open(dir.path(), false).unwrap();
    let (e, c, t) = (ex("ex-0"), container("c-0"), task_id("t-0"));
    store
        .append_update(&agent, &f, &e, &c, &t, &ack(1))
        .unwrap();
    let recovered = store.recover().unwrap().unwrap();
    let executor = recovered.frameworks[0]
        .executors
        .iter()
        .find(|executor| executor.info.executor_id == e)
        .unwrap();
    assert_eq!(
        executor.runs.last().unwrap().tasks[0].updates.last(),
        Some(&ack(1))
    );
}
