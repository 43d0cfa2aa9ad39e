//! The reaper: one small process per agent work dir that starts the agent's containers as its
//! own children and keeps how each ended, so that containers outlive an agent crash or restart
//! and the next agent run still learns their exit statuses.
//!
//! Only a process's parent gets its exit status. A container of a checkpointing framework must
//! survive `kill -9` of the agent, and the restarted agent must report how its task ended, so
//! the agent cannot be the container's parent. Mesos puts an executor process between agent and
//! task for that; one reaper for all containers costs one message per launch instead of one
//! process (see `ARCHITECTURE.md`).
//!
//! # Protocol
//!
//! A Unix stream socket, `<work_dir>/meta/reaper.sock` (the checkpoint directory, root's alone),
//! carries frames of a big-endian `u32` length and a MessagePack body: [`Request`]s from the
//! agent, [`Event`]s from the reaper. The reaper serves one agent at a time and only its own
//! user (checked with `SO_PEERCRED`); a new connection replaces the old one. On every
//! connection it first sends [`Event::State`]: the containers that run and the exits the agent
//! has not forgotten yet. It keeps an exit until the agent sends [`Request::Forget`] (once the
//! run's end is recorded), or until [`MAX_EXITS`] newer ones push it out.
//!
//! # Spawning
//!
//! Starting a leader is mostly waiting: the clone waits until the child has entered its
//! cgroups (which takes a lock shared with every other attach and exit on the machine), opened
//! its output and execed, milliseconds under load for well under one of CPU. So the event loop
//! does not spawn: [`SPAWN_THREADS`] threads do, several at once, and hand each started child
//! back to the loop (through an eventfd), which watches it and tells the agent. A child that
//! exits before the loop has taken it is reaped all the same: its pidfd is readable when the
//! loop adds it.
//!
//! # Lifetime
//!
//! The agent starts the reaper (`strata reaper`) when none answers on the socket, in a process
//! group of its own, and waits for its "ready" line. The reaper stops once it has neither an
//! agent nor a child, so a clean agent shutdown leaves no process behind; the exits not yet
//! forgotten go to `reaper.exits` beside the socket, where the next reaper picks them up (a
//! task that ended while no agent ran still reports how). It waits
//! [`FIRST_CONNECTION_TIMEOUT`] for the agent that started it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::event::epoll;
use rustix::process::{Pid, WaitId, WaitIdOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::containerizer::ExitStatus;
pub use crate::containerizer::spawn::SpawnUser;
use crate::containerizer::spawn::{self, SpawnSpec};

/// Exits kept for an agent that has not forgotten them, at most.
pub const MAX_EXITS: usize = 16_384;
/// How long a new reaper waits for its first agent before it stops.
pub const FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest frame either side accepts (a spawn request carries a whole environment).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// How long the reaper waits for a stalled agent to take a frame before it drops it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Threads starting leaders at once (see "Spawning" above). Each mostly waits on the kernel,
/// so a few more than a small machine's cores keep the launches flowing.
const SPAWN_THREADS: usize = 4;

/// The reaper's socket for an agent work dir.
pub fn socket_path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta").join("reaper.sock")
}

/// Where a stopping reaper leaves the exits no agent has forgotten yet.
fn exits_path(socket: &Path) -> PathBuf {
    socket.with_file_name("reaper.exits")
}

type ExitRecord = (String, u32, WireStatus);

/// Takes the exits a previous reaper left; a missing or unreadable file is no exits.
fn load_exits(socket: &Path) -> Vec<ExitRecord> {
    let path = exits_path(socket);
    let Ok(bytes) = std::fs::read(&path) else {
        return Vec::new();
    };
    let _ = std::fs::remove_file(&path);
    rmp_serde::from_slice(&bytes).unwrap_or_else(|error| {
        warn!(%error, path = %path.display(), "reaper ignored unreadable exits");
        Vec::new()
    })
}

/// Leaves `exits` for the next reaper. They matter only while containers could still be
/// recovered, which a reboot ends, so no fsync.
fn save_exits(socket: &Path, exits: &[ExitRecord]) {
    let path = exits_path(socket);
    if exits.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let temporary = path.with_extension("exits.new");
    let saved = rmp_serde::to_vec(exits)
        .map_err(io::Error::other)
        .and_then(|bytes| std::fs::write(&temporary, bytes))
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = saved {
        warn!(%error, path = %path.display(), "reaper cannot keep its exits; they are lost");
    }
}

/// What can go wrong between the agent and its reaper.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    #[error("reaper socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error(
        "reaper socket path {0} is longer than a Unix socket address allows (107 bytes); use a \
         shorter --work_dir"
    )]
    PathTooLong(PathBuf),
    #[error("cannot start the reaper {launcher}: {source}")]
    Start {
        launcher: PathBuf,
        source: io::Error,
    },
    #[error("the reaper did not start: {0}")]
    NotReady(String),
    #[error("lost the reaper: {0}")]
    Lost(String),
    #[error("bad frame from the reaper: {0}")]
    Frame(String),
    /// The reaper could not start the leader; says which step failed.
    #[error("{0}")]
    Spawn(String),
}

/// A wait status as the reaper reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireStatus {
    Exited(i32),
    Signaled(i32),
}

impl From<ExitStatus> for WireStatus {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Exited(code) => Self::Exited(code),
            ExitStatus::Signaled(signal) => Self::Signaled(signal),
        }
    }
}

impl From<WireStatus> for ExitStatus {
    fn from(status: WireStatus) -> Self {
        match status {
            WireStatus::Exited(code) => Self::Exited(code),
            WireStatus::Signaled(signal) => Self::Signaled(signal),
        }
    }
}

/// A container leader for the reaper to start, with everything already resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnRequest {
    pub container_id: String,
    pub program: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Opened for appending (created if missing) by the reaper.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// `cgroup.procs` files the child enters before it execs.
    pub attach_files: Vec<PathBuf>,
    pub user: Option<SpawnUser>,
}

/// From the agent to the reaper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    Spawn(SpawnRequest),
    /// The agent has recorded this container's end: its exit need not be kept.
    Forget {
        container_id: String,
    },
}

/// From the reaper to the agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Event {
    /// First on every connection: containers running, and exits not forgotten yet.
    State {
        running: Vec<(String, u32)>,
        exited: Vec<(String, u32, WireStatus)>,
    },
    Spawned {
        container_id: String,
        pid: u32,
    },
    SpawnFailed {
        container_id: String,
        error: String,
    },
    Exited {
        container_id: String,
        pid: u32,
        status: WireStatus,
    },
}

fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let body = rmp_serde::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame)
}

/// Splits complete frames off the front of `buffer`.
fn take_frames<T: for<'de> Deserialize<'de>>(buffer: &mut Vec<u8>) -> io::Result<Vec<T>> {
    let mut messages = Vec::new();
    let mut at = 0;
    while buffer.len() - at >= 4 {
        let len = u32::from_be_bytes(buffer[at..at + 4].try_into().expect("four bytes")) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes is over the {MAX_FRAME} limit"),
            ));
        }
        if buffer.len() - at - 4 < len {
            break;
        }
        let body = &buffer[at + 4..at + 4 + len];
        messages.push(
            rmp_serde::from_slice(body)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?,
        );
        at += 4 + len;
    }
    buffer.drain(..at);
    Ok(messages)
}

// ---------------------------------------------------------------------------------------------
// The reaper process.

const LISTENER: u64 = 0;
const CLIENT: u64 = 1;
/// The eventfd the spawn threads signal when they have started (or failed to start) a child.
const SPAWNED: u64 = 2;
/// The first token for a child's pidfd.
const FIRST_CHILD: u64 = 3;

struct Child {
    container_id: String,
    pid: Pid,
    pidfd: OwnedFd,
}

/// A spawn thread's result, for the event loop.
struct Started {
    container_id: String,
    program: String,
    result: io::Result<spawn::Spawned>,
}

/// The spawn threads, fed by one queue, answering through `done` and a write to `wake`.
struct Spawner {
    queue: std::sync::mpsc::Sender<SpawnRequest>,
    done: Arc<Mutex<Vec<Started>>>,
    wake: Arc<OwnedFd>,
    /// Requests handed over and not taken back yet; the reaper does not stop while any is.
    in_flight: usize,
}

impl Spawner {
    fn start(threads: usize) -> io::Result<Self> {
        let wake = Arc::new(rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?);
        let (queue, requests) = std::sync::mpsc::channel::<SpawnRequest>();
        let requests = Arc::new(Mutex::new(requests));
        let done = Arc::new(Mutex::new(Vec::new()));
        for n in 0..threads {
            let (requests, done, wake) =
                (Arc::clone(&requests), Arc::clone(&done), Arc::clone(&wake));
            std::thread::Builder::new()
                .name(format!("reaper-spawn-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next request.
                        let request = requests
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv();
                        let Ok(request) = request else { return };
                        let started = Started::leader(request);
                        done.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(started);
                        // A full counter (never, at one per spawn) still wakes the loop.
                        let _ = rustix::io::write(&*wake, &1u64.to_ne_bytes());
                    }
                })?;
        }
        Ok(Self {
            queue,
            done,
            wake,
            in_flight: 0,
        })
    }

    /// Hands `request` to the threads; gives it back if they are gone (a panic in one).
    fn submit(&mut self, request: SpawnRequest) -> Result<(), Box<SpawnRequest>> {
        self.queue
            .send(request)
            .map_err(|error| Box::new(error.0))?;
        self.in_flight += 1;
        Ok(())
    }

    /// Takes what the threads have finished since the last call.
    fn take(&mut self) -> Vec<Started> {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&*self.wake, &mut counter);
        let started =
            std::mem::take(&mut *self.done.lock().unwrap_or_else(PoisonError::into_inner));
        self.in_flight -= started.len();
        started
    }
}

impl Started {
    /// Starts the leader `request` asks for, as a spawn thread does.
    fn leader(request: SpawnRequest) -> Started {
        let result = spawn::Outputs::open(&request.working_dir, &request.stdout, &request.stderr)
            .map_err(io::Error::other)
            .and_then(|outputs| {
                spawn::spawn(SpawnSpec {
                    program: &request.program,
                    argv: &request.argv,
                    env: &request.env,
                    outputs,
                    attach_files: &request.attach_files,
                    user: request.user.as_ref(),
                })
            });
        Started {
            container_id: request.container_id,
            program: request.program,
            result,
        }
    }
}

struct Server {
    epoll: OwnedFd,
    listener: UnixListener,
    client: Option<UnixStream>,
    inbox: Vec<u8>,
    spawner: Spawner,
    /// By epoll token.
    children: HashMap<u64, Child>,
    next_token: u64,
    /// Oldest first; the index maps a container to its place by sequence number.
    exits: VecDeque<(u64, String, u32, WireStatus)>,
    exit_seq: BTreeMap<String, u64>,
    next_seq: u64,
    ever_connected: bool,
}

/// Runs the reaper on `socket` until it has nothing left to do. Writes `ready` to `ready` once
/// it listens.
pub fn serve(socket: &Path, ready: Option<&mut dyn Write>) -> Result<(), ReaperError> {
    let socket_error = |source| ReaperError::Socket {
        path: socket.to_path_buf(),
        source,
    };
    let listener = bind(socket).map_err(socket_error)?;
    listener.set_nonblocking(true).map_err(socket_error)?;
    let epoll =
        epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|error| socket_error(error.into()))?;
    epoll::add(
        &epoll,
        &listener,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )
    .map_err(|error| socket_error(error.into()))?;
    let spawner = Spawner::start(SPAWN_THREADS).map_err(socket_error)?;
    epoll::add(
        &epoll,
        &*spawner.wake,
        epoll::EventData::new_u64(SPAWNED),
        epoll::EventFlags::IN,
    )
    .map_err(|error| socket_error(error.into()))?;
    if let Some(ready) = ready {
        // The agent that started us reads this line; it may already be gone.
        let _ = ready.write_all(b"ready\n").and_then(|()| ready.flush());
    }
    info!(socket = %socket.display(), "reaper listening");
    let mut server = Server {
        epoll,
        listener,
        client: None,
        inbox: Vec::new(),
        spawner,
        children: HashMap::new(),
        next_token: FIRST_CHILD,
        exits: VecDeque::new(),
        exit_seq: BTreeMap::new(),
        next_seq: 0,
        ever_connected: false,
    };
    for (container_id, pid, status) in load_exits(socket) {
        server.keep_exit(container_id, pid, status);
    }
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    loop {
        if server.client.is_none()
            && server.children.is_empty()
            && server.spawner.in_flight == 0
            && server.ever_connected
        {
            info!(
                exits = server.exits.len(),
                "reaper has no agent and no container left; stopping"
            );
            server.stop(socket);
            return Ok(());
        }
        // Until the agent that started it connects, the reaper waits a bounded time.
        let first_wait = rustix::event::Timespec {
            tv_sec: FIRST_CONNECTION_TIMEOUT.as_secs() as i64,
            tv_nsec: 0,
        };
        let timeout = (!server.ever_connected).then_some(&first_wait);
        events.clear();
        match epoll::wait(
            &server.epoll,
            rustix::buffer::spare_capacity(&mut events),
            timeout,
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(socket_error(error.into())),
        }
        if events.is_empty() && !server.ever_connected {
            info!("no agent connected to the new reaper; stopping");
            server.stop(socket);
            return Ok(());
        }
        let tokens: Vec<u64> = events.iter().map(|event| event.data.u64()).collect();
        for token in tokens {
            match token {
                LISTENER => server.accept(),
                CLIENT => server.read_client(),
                SPAWNED => server.take_started(),
                token => server.reap(token),
            }
        }
    }
}

/// Binds `socket`, replacing a stale one whose reaper is gone; fails if a reaper answers there.
fn bind(socket: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(socket) {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(socket).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another reaper serves this work dir",
                ));
            }
            std::fs::remove_file(socket)?;
            UnixListener::bind(socket)
        }
        Err(error) => Err(error),
    }
}

impl Server {
    /// Leaves the exits for the next reaper, then the socket: an agent connecting meanwhile is
    /// refused and starts that next reaper, which finds them.
    fn stop(self, socket: &Path) {
        let exits: Vec<ExitRecord> = self
            .exits
            .into_iter()
            .map(|(_, container_id, pid, status)| (container_id, pid, status))
            .collect();
        save_exits(socket, &exits);
        drop(self.listener);
        let _ = std::fs::remove_file(socket);
    }

    fn keep_exit(&mut self, container_id: String, pid: u32, status: WireStatus) {
        // Container IDs are not reused; should one be, its newer exit is the one kept.
        self.drop_exit(&container_id);
        if self.exits.len() >= MAX_EXITS
            && let Some((_, forgotten, ..)) = self.exits.pop_front()
        {
            warn!(container_id = %forgotten, "reaper dropped an exit no agent took");
            self.exit_seq.remove(&forgotten);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.exit_seq.insert(container_id.clone(), seq);
        self.exits.push_back((seq, container_id, pid, status));
    }

    /// Forgets a container's exit, if it is kept.
    fn drop_exit(&mut self, container_id: &str) {
        let Some(seq) = self.exit_seq.remove(container_id) else {
            return;
        };
        // Kept in sequence order, so the index finds it.
        if let Ok(at) = self.exits.binary_search_by_key(&seq, |(at, ..)| *at) {
            self.exits.remove(at);
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    warn!(%error, "reaper cannot accept a connection");
                    return;
                }
            };
            // Only the reaper's own user (root, as the agent) may have it start processes.
            let peer = rustix::net::sockopt::socket_peercred(&stream);
            if peer.map(|creds| creds.uid) != Ok(rustix::process::geteuid()) {
                warn!(?peer, "reaper refused a connection from another user");
                continue;
            }
            if stream.set_write_timeout(Some(SEND_TIMEOUT)).is_err() {
                continue;
            }
            self.drop_client();
            if let Err(error) = epoll::add(
                &self.epoll,
                &stream,
                epoll::EventData::new_u64(CLIENT),
                epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
            ) {
                warn!(%error, "reaper cannot watch a connection");
                continue;
            }
            debug!("agent connected to the reaper");
            self.client = Some(stream);
            self.ever_connected = true;
            let mut running: Vec<(String, u32)> = self
                .children
                .values()
                .map(|child| (child.container_id.clone(), pid_u32(child.pid)))
                .collect();
            running.sort();
            let exited = self
                .exits
                .iter()
                .map(|(_, container_id, pid, status)| (container_id.clone(), *pid, *status))
                .collect();
            self.send(&Event::State { running, exited });
        }
    }

    fn drop_client(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = epoll::delete(&self.epoll, &client);
            debug!("agent left the reaper");
        }
        self.inbox.clear();
    }

    fn send(&mut self, event: &Event) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if let Err(error) = write_frame(client, event) {
            // What was not sent is in the next State.
            warn!(%error, "reaper lost its agent while sending");
            self.drop_client();
        }
    }

    fn read_client(&mut self) {
        let Some(client) = self.client.as_ref() else {
            return;
        };
        let mut buffer = [0u8; 64 * 1024];
        let closed = loop {
            match rustix::net::recv(client, &mut buffer, rustix::net::RecvFlags::DONTWAIT) {
                Ok((0, _)) => break true,
                Ok((n, _)) => self.inbox.extend_from_slice(&buffer[..n]),
                Err(rustix::io::Errno::AGAIN) => break false,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break true,
            }
        };
        match take_frames::<Request>(&mut self.inbox) {
            Ok(requests) => {
                for request in requests {
                    self.handle(request);
                }
            }
            Err(error) => {
                warn!(%error, "reaper dropped an agent that sent a bad frame");
                self.drop_client();
                return;
            }
        }
        if closed {
            self.drop_client();
        }
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Spawn(request) => {
                if let Err(request) = self.spawner.submit(request) {
                    warn!("reaper spawn threads are gone; spawning in the event loop");
                    self.started(Started::leader(*request));
                }
            }
            Request::Forget { container_id } => self.drop_exit(&container_id),
        }
    }

    /// Takes the children the spawn threads have started: watches each and tells the agent.
    fn take_started(&mut self) {
        for started in self.spawner.take() {
            self.started(started);
        }
    }

    fn started(&mut self, started: Started) {
        let Started {
            container_id,
            program,
            result,
        } = started;
        let watched = result.and_then(|spawned| {
            let token = self.next_token;
            self.next_token += 1;
            epoll::add(
                &self.epoll,
                &spawned.pidfd,
                epoll::EventData::new_u64(token),
                epoll::EventFlags::IN,
            )?;
            Ok((token, spawned))
        });
        match watched {
            Ok((token, spawned)) => {
                let pid = pid_u32(spawned.pid);
                self.children.insert(
                    token,
                    Child {
                        container_id: container_id.clone(),
                        pid: spawned.pid,
                        pidfd: spawned.pidfd,
                    },
                );
                self.send(&Event::Spawned { container_id, pid });
            }
            Err(error) => self.send(&Event::SpawnFailed {
                container_id,
                error: format!("{program}: {error}"),
            }),
        }
    }

    fn reap(&mut self, token: u64) {
        let Some(child) = self.children.get(&token) else {
            return;
        };
        let status = match rustix::process::waitid(
            WaitId::PidFd(child.pidfd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        ) {
            Ok(Some(status)) => status,
            // Not exited after all (a spurious wakeup).
            Ok(None) => return,
            Err(error) => {
                warn!(%error, pid = child.pid.as_raw_nonzero().get(), "reaper cannot wait for a child");
                return;
            }
        };
        let child = self.children.remove(&token).expect("looked up above");
        let _ = epoll::delete(&self.epoll, &child.pidfd);
        let Some(status) = ExitStatus::from_waitid(&status) else {
            return;
        };
        let status = WireStatus::from(status);
        let pid = pid_u32(child.pid);
        debug!(container_id = %child.container_id, pid, ?status, "reaper reaped a container");
        self.keep_exit(child.container_id.clone(), pid, status);
        self.send(&Event::Exited {
            container_id: child.container_id,
            pid,
            status,
        });
    }
}

fn pid_u32(pid: Pid) -> u32 {
    pid.as_raw_nonzero().get().unsigned_abs()
}

// ---------------------------------------------------------------------------------------------
// The agent's side.

/// The agent's connection to its reaper.
#[derive(Clone)]
pub struct Reaper {
    shared: Arc<Shared>,
}

struct Shared {
    socket: PathBuf,
    launcher: PathBuf,
    /// The current connection; replaced by a new reaper's when it is lost.
    inner: Mutex<Arc<Inner>>,
}

impl Drop for Shared {
    /// Closes the connection, as the agent's exit would: the reaper keeps what it has for the
    /// next agent.
    fn drop(&mut self) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let writer = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writer.shutdown(std::net::Shutdown::Both);
    }
}

struct Inner {
    writer: Mutex<UnixStream>,
    table: Mutex<Table>,
    lost: AtomicBool,
}

#[derive(Default)]
struct Table {
    spawns: HashMap<String, std::sync::mpsc::Sender<Result<u32, String>>>,
    waiters: HashMap<String, oneshot::Sender<Option<ExitStatus>>>,
    /// Exits that came before anyone waited for them.
    early: HashMap<String, ExitStatus>,
}

/// What the reaper held when the agent connected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReaperState {
    /// Containers running under the reaper, with their leaders' pids.
    pub running: BTreeMap<String, u32>,
    /// Containers that ended, with their leaders' exit statuses.
    pub exited: BTreeMap<String, ExitStatus>,
}

impl Reaper {
    /// Connects to the work dir's reaper, starting one with `launcher` (`strata`) if none
    /// answers.
    pub fn connect_or_start(
        work_dir: &Path,
        launcher: &Path,
    ) -> Result<(Self, ReaperState), ReaperError> {
        let socket = socket_path(work_dir);
        if socket.as_os_str().len() > 107 {
            return Err(ReaperError::PathTooLong(socket));
        }
        let (inner, state) = connect(&socket, launcher)?;
        let reaper = Self {
            shared: Arc::new(Shared {
                socket,
                launcher: launcher.to_path_buf(),
                inner: Mutex::new(inner),
            }),
        };
        Ok((reaper, state))
    }

    /// The live connection, after connecting to (or starting) a new reaper if the last one was
    /// lost: containers it started are then watched without their exit statuses, new ones go
    /// to the new reaper.
    fn current(&self) -> Result<Arc<Inner>, ReaperError> {
        let shared = &self.shared;
        let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.lost.load(Ordering::SeqCst) {
            let (fresh, state) = connect(&shared.socket, &shared.launcher)?;
            info!(running = state.running.len(), "connected to a new reaper");
            *inner = fresh;
        }
        Ok(Arc::clone(&inner))
    }

    /// Has the reaper start a container's leader; blocks until it says how that went.
    pub fn spawn(&self, request: SpawnRequest) -> Result<u32, ReaperError> {
        self.current()?.spawn(request)
    }

    /// Resolves with the exit status of a container the reaper started (or had running when
    /// the agent connected); `None` if that reaper is lost first.
    pub fn exit(&self, container_id: &str) -> oneshot::Receiver<Option<ExitStatus>> {
        self.connection().exit(container_id)
    }

    /// The current connection, live or lost.
    fn connection(&self) -> Arc<Inner> {
        Arc::clone(
            &self
                .shared
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Tells the reaper it need not keep a container's exit any more.
    pub fn forget(&self, container_id: &str) {
        if let Err(error) = self.connection().send(&Request::Forget {
            container_id: container_id.to_owned(),
        }) {
            debug!(%error, container_id, "cannot tell the reaper to forget an exit");
        }
    }
}

/// Connects to the reaper on `socket`, starting one with `launcher` if none answers.
fn connect(socket: &Path, launcher: &Path) -> Result<(Arc<Inner>, ReaperState), ReaperError> {
    // A reaper that is stopping refuses or drops the connection and the next one may not
    // listen yet: a few tries settle it.
    let mut last_error = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10 << attempt));
        }
        let stream = match UnixStream::connect(socket) {
            Ok(stream) => stream,
            Err(_) => {
                if let Err(error) = start(socket, launcher) {
                    last_error = Some(error);
                    continue;
                }
                match UnixStream::connect(socket) {
                    Ok(stream) => stream,
                    Err(source) => {
                        last_error = Some(ReaperError::Socket {
                            path: socket.to_path_buf(),
                            source,
                        });
                        continue;
                    }
                }
            }
        };
        match handshake(stream) {
            Ok(connected) => return Ok(connected),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.expect("five tries, each failed"))
}

fn handshake(stream: UnixStream) -> Result<(Arc<Inner>, ReaperState), ReaperError> {
    let lost = |error: io::Error| ReaperError::Lost(error.to_string());
    let mut reader = stream.try_clone().map_err(lost)?;
    let mut inbox = Vec::new();
    let first = loop {
        let mut events = take_frames::<Event>(&mut inbox)
            .map_err(|error| ReaperError::Frame(error.to_string()))?;
        if !events.is_empty() {
            let first = events.remove(0);
            // Nothing else is sent before the agent asks.
            break first;
        }
        let mut buffer = [0u8; 64 * 1024];
        let n = reader.read(&mut buffer).map_err(lost)?;
        if n == 0 {
            return Err(ReaperError::Lost("closed before its state".into()));
        }
        inbox.extend_from_slice(&buffer[..n]);
    };
    let Event::State { running, exited } = first else {
        return Err(ReaperError::Frame(format!("{first:?} before the state")));
    };
    let state = ReaperState {
        running: running.into_iter().collect(),
        exited: exited
            .into_iter()
            .map(|(container_id, _, status)| (container_id, status.into()))
            .collect(),
    };
    let inner = Arc::new(Inner {
        writer: Mutex::new(stream),
        table: Mutex::new(Table::default()),
        lost: AtomicBool::new(false),
    });
    let reading = Arc::clone(&inner);
    std::thread::Builder::new()
        .name("reaper-reader".into())
        .spawn(move || reading.read_events(reader, inbox))
        .map_err(lost)?;
    Ok((inner, state))
}

impl Inner {
    /// Has the reaper start a container's leader; blocks until it says how that went.
    fn spawn(&self, request: SpawnRequest) -> Result<u32, ReaperError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let container_id = request.container_id.clone();
        self.table().spawns.insert(container_id.clone(), tx);
        if let Err(error) = self.send(&Request::Spawn(request)) {
            self.table().spawns.remove(&container_id);
            return Err(error);
        }
        match rx.recv() {
            Ok(Ok(pid)) => Ok(pid),
            Ok(Err(error)) => Err(ReaperError::Spawn(error)),
            Err(_) => Err(ReaperError::Lost("gone during a launch".into())),
        }
    }

    /// Resolves with the exit status of a container the reaper started (or had running when
    /// the agent connected); `None` if the reaper is lost first.
    fn exit(&self, container_id: &str) -> oneshot::Receiver<Option<ExitStatus>> {
        let (tx, rx) = oneshot::channel();
        let mut table = self.table();
        if let Some(status) = table.early.remove(container_id) {
            let _ = tx.send(Some(status));
        } else if self.lost.load(Ordering::SeqCst) {
            let _ = tx.send(None);
        } else {
            table.waiters.insert(container_id.to_owned(), tx);
        }
        rx
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, request: &Request) -> Result<(), ReaperError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(ReaperError::Lost("connection closed".into()));
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        write_frame(&mut *writer, request).map_err(|error| ReaperError::Lost(error.to_string()))
    }

    fn read_events(self: Arc<Self>, mut reader: UnixStream, mut inbox: Vec<u8>) {
        let mut buffer = vec![0u8; 64 * 1024];
        let why = loop {
            match take_frames::<Event>(&mut inbox) {
                Ok(events) => {
                    for event in events {
                        self.dispatch(event);
                    }
                }
                Err(error) => break format!("bad frame: {error}"),
            }
            match reader.read(&mut buffer) {
                Ok(0) => break "closed".to_owned(),
                Ok(n) => inbox.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break error.to_string(),
            }
        };
        warn!(reason = %why, "lost the reaper; containers it started are watched without exit statuses");
        self.lost.store(true, Ordering::SeqCst);
        let mut table = self.table();
        table.spawns.clear();
        for (_, waiter) in table.waiters.drain() {
            let _ = waiter.send(None);
        }
    }

    fn dispatch(&self, event: Event) {
        let mut table = self.table();
        match event {
            Event::Spawned { container_id, pid } => {
                if let Some(tx) = table.spawns.remove(&container_id) {
                    let _ = tx.send(Ok(pid));
                }
            }
            Event::SpawnFailed {
                container_id,
                error,
            } => {
                if let Some(tx) = table.spawns.remove(&container_id) {
                    let _ = tx.send(Err(error));
                }
            }
            Event::Exited {
                container_id,
                status,
                ..
            } => match table.waiters.remove(&container_id) {
                Some(waiter) => {
                    let _ = waiter.send(Some(status.into()));
                }
                None => {
                    table.early.insert(container_id, status.into());
                }
            },
            Event::State { .. } => {
                debug!("unexpected reaper state after the handshake");
            }
        }
    }
}

/// Starts a reaper for `socket` in a process group of its own and waits until it listens.
fn start(socket: &Path, launcher: &Path) -> Result<(), ReaperError> {
    use std::os::unix::process::CommandExt;

    let start_error = |source| ReaperError::Start {
        launcher: launcher.to_path_buf(),
        source,
    };
    let log = spawn::open_output(&socket.with_extension("log")).map_err(start_error)?;
    let mut command = std::process::Command::new(launcher);
    command
        .arg("reaper")
        .arg("--socket")
        .arg(socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    // A group of its own: signals for the agent's group (Ctrl-C of `strata dev`) miss it.
    command.process_group(0);
    let mut child = command.spawn().map_err(start_error)?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).map_err(start_error)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    // The reaper is our child until we die; a thread reaps it when it stops.
    std::thread::Builder::new()
        .name("reaper-waiter".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(start_error)?;
    if line != b"ready" {
        return Err(ReaperError::NotReady(format!(
            "it said {:?}; see {}",
            String::from_utf8_lossy(&line),
            socket.with_extension("log").display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_where_they_end_and_wait_for_the_rest() {
        let mut bytes = Vec::new();
        write_frame(
            &mut bytes,
            &Request::Forget {
                container_id: "a".into(),
            },
        )
        .unwrap();
        write_frame(
            &mut bytes,
            &Request::Forget {
                container_id: "b".into(),
            },
        )
        .unwrap();
        let mut inbox = bytes[..bytes.len() - 2].to_vec();
        let first: Vec<Request> = take_frames(&mut inbox).unwrap();
        assert_eq!(first.len(), 1);
        inbox.extend_from_slice(&bytes[bytes.len() - 2..]);
        let second: Vec<Request> = take_frames(&mut inbox).unwrap();
        assert!(matches!(&second[..], [Request::Forget { container_id }] if container_id == "b"));
        assert!(inbox.is_empty());
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let mut inbox = (u32::MAX).to_be_bytes().to_vec();
        let error = take_frames::<Request>(&mut inbox).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
