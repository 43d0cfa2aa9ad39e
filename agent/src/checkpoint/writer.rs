//! Group commit: the agent's checkpoint writes, made durable in batches on a thread of their
//! own, with the sends that must wait for them.
//!
//! The actor hands over each write in order, and each send that may only happen once what was
//! written before it is durable (a status update for the master, an acknowledgement for an
//! executor). The writer thread takes everything queued at once: it applies the writes in
//! order, makes them durable with one sync per touched file and directory (one `syncfs` of
//! the work dir's filesystem when that is more than eight), then performs the sends in order.
//! So an update never reaches the master before its checkpoint record is on disk, sends keep
//! their order, and the actor never waits for a disk.
//!
//! Writes whose order across directories recovery relies on (the agent's info before `latest`,
//! checkpointed resources, the removal of a framework's tree) are made durable on their own, in
//! their place in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{CheckpointError, CheckpointStore, RunRecord};
use crate::state::CheckpointOp;

/// Something to do once every write queued before it is durable.
pub type AfterCommit = Box<dyn FnOnce() + Send>;

enum Job {
    Write(Box<CheckpointOp>),
    Then(AfterCommit),
    /// Answered once everything before it is done.
    Flush(mpsc::SyncSender<()>),
}

/// The writer thread and the queue to it; see the module documentation. Dropping it waits for
/// everything queued to be written and sent.
pub struct CheckpointWriter {
    queue: Option<mpsc::Sender<Job>>,
    /// Jobs queued and not yet done; a send may bypass the queue only when it is zero.
    in_flight: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl CheckpointWriter {
    /// Starts the writer thread over `store`.
    pub fn start(store: CheckpointStore) -> std::io::Result<CheckpointWriter> {
        let (queue, jobs) = mpsc::channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name("checkpoint-writer".to_owned())
            .spawn({
                let in_flight = Arc::clone(&in_flight);
                move || run(&store, &jobs, &in_flight)
            })?;
        Ok(CheckpointWriter {
            queue: Some(queue),
            in_flight,
            thread: Some(thread),
        })
    }

    /// Queues a write.
    pub fn write(&self, op: CheckpointOp) {
        self.push(Job::Write(Box::new(op)));
    }

    /// Runs `then` on the writer thread once every write queued so far is durable, after what
    /// was queued before it.
    pub fn then(&self, then: AfterCommit) {
        self.push(Job::Then(then));
    }

    /// Runs `then` once every write queued so far is durable: at once if nothing is queued
    /// (on this thread), else on the writer thread after what was queued before it.
    pub fn after_durable(&self, then: AfterCommit) {
        if self.busy() {
            self.then(then);
        } else {
            then();
        }
    }

    /// Tells whether anything queued is not done yet. When it is not, a send made now comes
    /// after everything queued before it, without going through the queue.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// Waits until everything queued so far is durable and its sends are made.
    pub fn flush(&self) {
        if !self.busy() {
            return;
        }
        let (done, wait) = mpsc::sync_channel(1);
        self.push(Job::Flush(done));
        // An error means the thread is gone, and nothing is left to wait for.
        let _ = wait.recv();
    }

    fn push(&self, job: Job) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = self.queue.as_ref().map(|queue| queue.send(job));
        if let Some(Err(mpsc::SendError(job))) = sent {
            // The thread died (a panic in a write); do the job here rather than lose it.
            tracing::error!("checkpoint writer thread is gone; doing its job in place");
            if let Job::Then(then) = job {
                then();
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has done what is queued.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: &CheckpointStore, jobs: &mpsc::Receiver<Job>, in_flight: &AtomicUsize) {
    let batch = store.batched();
    while let Ok(first) = jobs.recv() {
        let mut taken = vec![first];
        taken.extend(jobs.try_iter());
        let count = taken.len();
        let mut after = Vec::new();
        for job in taken {
            match job {
                Job::Write(op) => {
                    let result = if needs_own_commit(&op) {
                        batch.commit().and_then(|()| apply(store, &op))
                    } else {
                        apply(&batch, &op)
                    };
                    if let Err(error) = result {
                        report(&error);
                    }
                }
                other => after.push(other),
            }
        }
        if let Err(error) = batch.commit() {
            report(&error);
        }
        let mut flushes = Vec::new();
        for job in after {
            match job {
                Job::Then(then) => then(),
                Job::Flush(done) => flushes.push(done),
                Job::Write(_) => unreachable!("writes were applied above"),
            }
        }
        in_flight.fetch_sub(count, Ordering::SeqCst);
        // Answered last, so that a flushed writer is not busy.
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn report(error: &CheckpointError) {
    // Mesos aborts here. The sends go on: the status update manager resends anything the
    // framework does not acknowledge, and the operator sees the error.
    tracing::error!(%error, "checkpoint write failed");
}

/// Writes whose durability order across directories recovery relies on.
fn needs_own_commit(op: &CheckpointOp) -> bool {
    matches!(
        op,
        CheckpointOp::Agent(_)
            | CheckpointOp::Resources { .. }
            | CheckpointOp::RemoveFramework { .. }
    )
}

/// Applies one checkpoint write to `store`.
pub fn apply(store: &CheckpointStore, op: &CheckpointOp) -> Result<(), CheckpointError> {
    match op {
        CheckpointOp::Agent(info) => store.write_agent(info),
        CheckpointOp::Resources {
            agent_id,
            resources,
        } => store.write_resources(agent_id, resources),
        CheckpointOp::Framework { agent_id, info } => store.write_framework(agent_id, info),
        CheckpointOp::Executor {
            agent_id,
            framework_id,
            info,
        } => store.write_executor(agent_id, framework_id, info),
        CheckpointOp::Run {
            agent_id,
            framework_id,
            executor_id,
            container_id,
            pid,
            completed,
            in_agent,
        } => store.write_run(
            agent_id,
            framework_id,
            executor_id,
            container_id,
            &RunRecord {
                pid: *pid,
                completed: *completed,
                in_agent: *in_agent,
            },
        ),
        CheckpointOp::Task {
            agent_id,
            framework_id,
            executor_id,
            container_id,
            task,
        } => store.write_task(agent_id, framework_id, executor_id, container_id, task),
        CheckpointOp::Update {
            agent_id,
            framework_id,
            executor_id,
            container_id,
            task_id,
            record,
        } => store.append_update(
            agent_id,
            framework_id,
            executor_id,
            container_id,
            task_id,
            record,
        ),
        CheckpointOp::RemoveFramework {
            agent_id,
            framework_id,
        } => store.remove_framework(agent_id, framework_id),
    }
}
