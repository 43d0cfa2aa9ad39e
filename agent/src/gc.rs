//! Sandbox garbage collection, as Mesos's agent does it (`src/slave/gc.cpp`, `docs/sandbox.md`).
//!
//! A finished executor's sandbox is kept for `--gc_delay` (default one week) after it was last
//! modified, then removed. Every `--disk_watch_interval` (default one minute) the agent measures
//! the disk holding its work dir and, when it is filling up, removes sandboxes early: the
//! longest a sandbox may then be kept is
//!
//! ```text
//! max_age = gc_delay * max(0, 1 - gc_disk_headroom - disk_usage)
//! ```
//!
//! and every scheduled sandbox older than that goes now.
//!
//! The split follows the rest of the agent: [`GcSchedule`] is the pure policy (what is due,
//! what to prune; time comes in as an argument), and [`spawn`] starts the tokio task that owns
//! one, reads the clock and the disk, and removes directories. The agent talks to it through a
//! [`GcHandle`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

/// Mesos's `--gc_delay` default: one week.
pub const DEFAULT_GC_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Mesos's `--gc_disk_headroom` default.
pub const DEFAULT_GC_DISK_HEADROOM: f64 = 0.1;
/// Mesos's `--disk_watch_interval` default: one minute.
pub const DEFAULT_DISK_WATCH_INTERVAL: Duration = Duration::from_secs(60);

/// The longest delay the runner schedules; a longer one (a huge `--gc_delay`) is as good as
/// never and would overflow an [`Instant`].
const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The garbage collection flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcConfig {
    /// How long after its last modification a scheduled sandbox is kept (`--gc_delay`).
    pub gc_delay: Duration,
    /// The fraction of the disk to keep free by removing sandboxes early (`--gc_disk_headroom`),
    /// in `[0, 1]`.
    pub gc_disk_headroom: f64,
    /// How often the disk usage is checked (`--disk_watch_interval`).
    pub disk_watch_interval: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            gc_delay: DEFAULT_GC_DELAY,
            gc_disk_headroom: DEFAULT_GC_DISK_HEADROOM,
            disk_watch_interval: DEFAULT_DISK_WATCH_INTERVAL,
        }
    }
}

/// Why garbage collection cannot be set up or a path cannot be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// `gc_disk_headroom` is outside `[0, 1]` (or not a number).
    #[error("invalid gc disk headroom {0}: must be between 0.0 and 1.0")]
    InvalidHeadroom(f64),
    /// The work dir cannot be resolved.
    #[error("cannot resolve work dir {path:?}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path is not strictly inside the work dir, so it is never removed.
    #[error("{0:?} is not inside the agent work dir")]
    OutsideWorkDir(PathBuf),
    /// The path's modification time cannot be read.
    #[error("cannot read the modification time of {path:?}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The collector task has stopped.
    #[error("the garbage collector has stopped")]
    Stopped,
}

/// The pure garbage collection policy: which paths are scheduled for removal when.
///
/// Time is whatever [`Instant`]s the caller passes in; nothing here reads a clock.
#[derive(Debug, Clone)]
pub struct GcSchedule {
    gc_delay: Duration,
    gc_disk_headroom: f64,
    /// Removal time of each scheduled path.
    removal_at: BTreeMap<PathBuf, Instant>,
    /// The same entries ordered by removal time, for [`GcSchedule::due`] and
    /// [`GcSchedule::next_removal`].
    by_time: BTreeSet<(Instant, PathBuf)>,
}

impl GcSchedule {
    /// An empty schedule; `gc_disk_headroom` must be in `[0, 1]`.
    pub fn new(gc_delay: Duration, gc_disk_headroom: f64) -> Result<Self, GcError> {
        if !(0.0..=1.0).contains(&gc_disk_headroom) {
            return Err(GcError::InvalidHeadroom(gc_disk_headroom));
        }
        Ok(Self {
            gc_delay,
            gc_disk_headroom,
            removal_at: BTreeMap::new(),
            by_time: BTreeSet::new(),
        })
    }

    /// The configured `gc_delay`.
    pub fn gc_delay(&self) -> Duration {
        self.gc_delay
    }

    /// Schedules `path` for removal at `at`, replacing any earlier schedule for it (as Mesos
    /// reschedules). The agent passes `last modified + gc_delay`.
    pub fn schedule(&mut self, path: PathBuf, at: Instant) {
        self.unschedule(&path);
        self.by_time.insert((at, path.clone()));
        self.removal_at.insert(path, at);
    }

    /// Cancels the removal of `path`; returns whether it was scheduled.
    pub fn unschedule(&mut self, path: &Path) -> bool {
        match self.removal_at.remove(path) {
            Some(at) => {
                self.by_time.remove(&(at, path.to_path_buf()));
                true
            }
            None => false,
        }
    }

    /// When `path` is to be removed, if it is scheduled.
    pub fn removal_time(&self, path: &Path) -> Option<Instant> {
        self.removal_at.get(path).copied()
    }

    /// The earliest removal time, to sleep until.
    pub fn next_removal(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The scheduled paths, in path order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.removal_at.keys().map(PathBuf::as_path)
    }

    /// How many paths are scheduled (Mesos's `gc/path_removals_pending`).
    pub fn len(&self) -> usize {
        self.removal_at.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.removal_at.is_empty()
    }

    /// Takes out and returns the paths whose removal time is at or before `now`, earliest first.
    pub fn due(&mut self, now: Instant) -> Vec<PathBuf> {
        self.take_while_at_or_before(now)
    }

    /// The longest a sandbox may be kept with the disk `disk_usage` full (a fraction in
    /// `[0, 1]`): `gc_delay * max(0, 1 - gc_disk_headroom - disk_usage)`.
    pub fn max_allowed_age(&self, disk_usage: f64) -> Duration {
        let factor = (1.0 - self.gc_disk_headroom - disk_usage).clamp(0.0, 1.0);
        // A NaN usage (a broken measurement) keeps the full delay rather than removing all.
        if factor.is_nan() {
            return self.gc_delay;
        }
        self.gc_delay.mul_f64(factor)
    }

    /// Takes out and returns the paths older than the age the disk usage allows, earliest
    /// first.
    ///
    /// A path scheduled at `modified + gc_delay` is older than `max_age` when its removal time
    /// is within `gc_delay - max_age` of `now`, which is how Mesos's agent prunes.
    pub fn prune(&mut self, now: Instant, disk_usage: f64) -> Vec<PathBuf> {
        let max_age = self.max_allowed_age(disk_usage);
        let window = self.gc_delay.saturating_sub(max_age);
        match now.checked_add(window) {
            Some(deadline) => self.take_while_at_or_before(deadline),
            None => {
                let all: Vec<PathBuf> = self.by_time.iter().map(|(_, p)| p.clone()).collect();
                self.removal_at.clear();
                self.by_time.clear();
                all
            }
        }
    }

    fn take_while_at_or_before(&mut self, deadline: Instant) -> Vec<PathBuf> {
        let mut taken = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > deadline {
                break;
            }
            let (_, path) = self.by_time.pop_first().expect("first entry exists");
            self.removal_at.remove(&path);
            taken.push(path);
        }
        taken
    }
}

/// The fraction of the file system holding `path` that is in use, as Mesos's `fs::usage`
/// measures it: `(blocks - free blocks) / blocks`.
pub fn disk_usage(path: &Path) -> io::Result<f64> {
    let stat = rustix::fs::statvfs(path)?;
    if stat.f_blocks == 0 {
        return Ok(0.0);
    }
    let used = stat.f_blocks.saturating_sub(stat.f_bfree);
    // Block counts fit an f64's mantissa for any disk below 2^53 blocks.
    Ok(used as f64 / stat.f_blocks as f64)
}

/// Measures how full the disk holding the work dir is; [`disk_usage`] in production, a fixed
/// answer in tests.
pub type DiskUsageProbe = Box<dyn FnMut(&Path) -> io::Result<f64> + Send>;

enum Command {
    Schedule {
        path: PathBuf,
        delay: Option<Duration>,
        reply: oneshot::Sender<Result<(), GcError>>,
    },
    Unschedule {
        path: PathBuf,
        reply: oneshot::Sender<bool>,
    },
    Pending {
        reply: oneshot::Sender<Vec<PathBuf>>,
    },
}

/// Talks to the collector task started by [`spawn`]. Cheap to clone; the task stops when every
/// handle is dropped.
#[derive(Debug, Clone)]
pub struct GcHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl GcHandle {
    /// Schedules `path` for removal `gc_delay` after its last modification, as Mesos's agent
    /// does; a path modified longer ago than that is removed at once.
    ///
    /// `path` must be strictly inside the work dir.
    pub async fn schedule(&self, path: impl Into<PathBuf>) -> Result<(), GcError> {
        self.send_schedule(path.into(), None).await
    }

    /// Schedules `path` for removal `delay` from now, whatever its modification time.
    pub async fn schedule_in(
        &self,
        path: impl Into<PathBuf>,
        delay: Duration,
    ) -> Result<(), GcError> {
        self.send_schedule(path.into(), Some(delay)).await
    }

    async fn send_schedule(&self, path: PathBuf, delay: Option<Duration>) -> Result<(), GcError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Schedule { path, delay, reply })
            .map_err(|_| GcError::Stopped)?;
        answer.await.map_err(|_| GcError::Stopped)?
    }

    /// Cancels the removal of `path` (a sandbox being reused on recovery); returns whether it
    /// was still scheduled. A path already being removed is not scheduled any more.
    pub async fn unschedule(&self, path: impl Into<PathBuf>) -> Result<bool, GcError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Unschedule {
                path: path.into(),
                reply,
            })
            .map_err(|_| GcError::Stopped)?;
        answer.await.map_err(|_| GcError::Stopped)
    }

    /// The paths scheduled and not yet removed.
    pub async fn pending(&self) -> Result<Vec<PathBuf>, GcError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Pending { reply })
            .map_err(|_| GcError::Stopped)?;
        answer.await.map_err(|_| GcError::Stopped)
    }
}

/// Starts the collector for `work_dir` on the current tokio runtime, measuring the disk with
/// [`disk_usage`].
pub fn spawn(
    work_dir: impl AsRef<Path>,
    config: GcConfig,
) -> Result<(GcHandle, tokio::task::JoinHandle<()>), GcError> {
    spawn_with_probe(work_dir, config, Box::new(disk_usage))
}

/// [`spawn`] with a hook called for each path once it is gone.
pub fn spawn_with_hook(
    work_dir: impl AsRef<Path>,
    config: GcConfig,
    on_removed: RemovalHook,
) -> Result<(GcHandle, tokio::task::JoinHandle<()>), GcError> {
    start(work_dir, config, Box::new(disk_usage), Some(on_removed))
}

/// [`spawn`] with another way to measure the disk.
pub fn spawn_with_probe(
    work_dir: impl AsRef<Path>,
    config: GcConfig,
    probe: DiskUsageProbe,
) -> Result<(GcHandle, tokio::task::JoinHandle<()>), GcError> {
    start(work_dir, config, probe, None)
}

fn start(
    work_dir: impl AsRef<Path>,
    config: GcConfig,
    probe: DiskUsageProbe,
    on_removed: Option<RemovalHook>,
) -> Result<(GcHandle, tokio::task::JoinHandle<()>), GcError> {
    let schedule = GcSchedule::new(config.gc_delay, config.gc_disk_headroom)?;
    let work_dir = work_dir
        .as_ref()
        .canonicalize()
        .map_err(|source| GcError::WorkDir {
            path: work_dir.as_ref().to_path_buf(),
            source,
        })?;
    let (commands, receiver) = mpsc::unbounded_channel();
    let collector = Collector {
        work_dir,
        schedule,
        disk_watch_interval: config.disk_watch_interval,
        probe,
        on_removed,
    };
    let task = tokio::spawn(collector.run(receiver));
    Ok((GcHandle { commands }, task))
}

/// The collector task's state.
struct Collector {
    /// Canonical, so containment is checked against the real location.
    work_dir: PathBuf,
    schedule: GcSchedule,
    disk_watch_interval: Duration,
    probe: DiskUsageProbe,
    on_removed: Option<RemovalHook>,
}

/// Called with each path once it is gone (removed, or found missing), so that what refers to it
/// (the sandboxes served over `/files`) can forget it.
pub type RemovalHook = std::sync::Arc<dyn Fn(&Path) + Send + Sync>;

impl Collector {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut disk_watch =
            tokio::time::interval(self.disk_watch_interval.max(Duration::from_millis(1)));
        disk_watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_removal = self.schedule.next_removal();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                () = sleep_until(next_removal) => {
                    let due = self.schedule.due(now());
                    self.remove(due).await;
                }
                _ = disk_watch.tick() => self.check_disk().await,
            }
        }
        tracing::debug!(pending = self.schedule.len(), "garbage collector stopped");
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Schedule { path, delay, reply } => {
                let result = self.schedule_path(path, delay);
                let _ = reply.send(result);
            }
            Command::Unschedule { path, reply } => {
                let was_scheduled = self.schedule.unschedule(&path);
                tracing::info!(path = %path.display(), was_scheduled, "unscheduled path from gc");
                let _ = reply.send(was_scheduled);
            }
            Command::Pending { reply } => {
                let _ = reply.send(self.schedule.paths().map(Path::to_path_buf).collect());
            }
        }
    }

    fn schedule_path(&mut self, path: PathBuf, delay: Option<Duration>) -> Result<(), GcError> {
        if !lexically_inside(&self.work_dir, &path) {
            return Err(GcError::OutsideWorkDir(path));
        }
        let now = now();
        let delay = match delay {
            Some(delay) => delay,
            None => {
                let modified = std::fs::symlink_metadata(&path)
                    .and_then(|metadata| metadata.modified())
                    .map_err(|source| GcError::Stat {
                        path: path.clone(),
                        source,
                    })?;
                // Modification times are wall-clock times, so the wall clock tells their age.
                #[allow(clippy::disallowed_methods)]
                let age = SystemTime::now()
                    .duration_since(modified)
                    .unwrap_or_default();
                self.schedule.gc_delay().saturating_sub(age)
            }
        };
        tracing::info!(path = %path.display(), delay_ms = delay.as_millis(), "scheduling path for gc");
        // Beyond a century is never in practice, and capping keeps the addition from overflowing.
        let at = now + delay.min(MAX_DELAY);
        self.schedule.schedule(path, at);
        Ok(())
    }

    async fn check_disk(&mut self) {
        let work_dir = self.work_dir.clone();
        let usage = match (self.probe)(&work_dir) {
            Ok(usage) => usage,
            Err(error) => {
                tracing::error!(work_dir = %work_dir.display(), %error, "failed to get disk usage");
                return;
            }
        };
        let max_age = self.schedule.max_allowed_age(usage);
        tracing::debug!(
            usage,
            max_age_ms = max_age.as_millis(),
            "checked disk usage"
        );
        let pruned = self.schedule.prune(now(), usage);
        if !pruned.is_empty() {
            tracing::info!(
                usage,
                count = pruned.len(),
                "pruning sandboxes early for disk space"
            );
        }
        self.remove(pruned).await;
    }

    /// Removes `paths` on a blocking thread; a failure is logged and the path forgotten, as in
    /// Mesos, since the disk space is already offered again and retrying would not change it.
    async fn remove(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let work_dir = self.work_dir.clone();
        let on_removed = self.on_removed.clone();
        let removal = tokio::task::spawn_blocking(move || {
            let gone = |path: &Path| {
                if let Some(on_removed) = &on_removed {
                    on_removed(path);
                }
            };
            for path in paths {
                match remove_inside(&work_dir, &path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "deleted path");
                        gone(&path);
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        tracing::info!(path = %path.display(), "skipped path which does not exist");
                        gone(&path);
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "failed to delete path");
                    }
                }
            }
        });
        if let Err(error) = removal.await {
            tracing::error!(%error, "gc removal task failed");
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The runner's clock: tokio's, so a paused test runtime controls it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Whether `path` is absolute, has no `..`, and is strictly below `work_dir` by components.
fn lexically_inside(work_dir: &Path, path: &Path) -> bool {
    path.is_absolute()
        && !path
            .components()
            .any(|component| matches!(component, Component::ParentDir))
        && path.starts_with(work_dir)
        && path != work_dir
}

/// Removes `path` if it is really inside `work_dir`: its parent, symlinks resolved, must be in
/// the work dir, so a symlinked ancestor cannot redirect the removal elsewhere. The path itself
/// is not followed: a symlink is removed as a link, and [`std::fs::remove_dir_all`] does not
/// follow symlinks below it.
pub fn remove_inside(work_dir: &Path, path: &Path) -> io::Result<()> {
    let outside = || {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "path is outside the work dir",
        )
    };
    let work_dir = work_dir.canonicalize()?;
    if !lexically_inside(&work_dir, path) {
        return Err(outside());
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(outside());
    };
    let parent = parent.canonicalize()?;
    if !parent.starts_with(&work_dir) {
        return Err(outside());
    }
    let target = parent.join(name);
    if std::fs::symlink_metadata(&target)?.is_dir() {
        std::fs::remove_dir_all(&target)
    } else {
        std::fs::remove_file(&target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// An arbitrary origin: the schedule only compares instants, so any will do.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn schedule(headroom: f64) -> GcSchedule {
        GcSchedule::new(100 * HOUR, headroom).expect("valid headroom")
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn due_returns_paths_at_or_before_now_earliest_first_and_only_once() {
        let t0 = origin();
        let mut gc = schedule(0.1);
        gc.schedule("/w/b".into(), t0 + 2 * HOUR);
        gc.schedule("/w/a".into(), t0 + HOUR);
        gc.schedule("/w/c".into(), t0 + 3 * HOUR);
        assert_eq!(gc.next_removal(), Some(t0 + HOUR));
        assert!(gc.due(t0).is_empty());
        assert_eq!(gc.due(t0 + 2 * HOUR), paths(&["/w/a", "/w/b"]));
        assert!(gc.due(t0 + 2 * HOUR).is_empty());
        assert_eq!(gc.len(), 1);
        assert_eq!(gc.next_removal(), Some(t0 + 3 * HOUR));
    }

    #[test]
    fn rescheduling_replaces_the_earlier_time() {
        let t0 = origin();
        let mut gc = schedule(0.1);
        gc.schedule("/w/a".into(), t0 + HOUR);
        gc.schedule("/w/a".into(), t0 + 5 * HOUR);
        assert_eq!(gc.len(), 1);
        assert_eq!(gc.removal_time(Path::new("/w/a")), Some(t0 + 5 * HOUR));
        assert!(gc.due(t0 + 4 * HOUR).is_empty());
        assert_eq!(gc.due(t0 + 5 * HOUR), paths(&["/w/a"]));
    }

    #[test]
    fn unschedule_cancels_and_reports_whether_it_was_scheduled() {
        let t0 = origin();
        let mut gc = schedule(0.1);
        gc.schedule("/w/a".into(), t0 + HOUR);
        assert!(gc.unschedule(Path::new("/w/a")));
        assert!(!gc.unschedule(Path::new("/w/a")));
        assert!(gc.is_empty());
        assert_eq!(gc.next_removal(), None);
        assert!(gc.due(t0 + 10 * HOUR).is_empty());
    }

    #[test]
    fn max_allowed_age_follows_the_mesos_formula() {
        let gc = schedule(0.1);
        assert_eq!(gc.max_allowed_age(0.0), 90 * HOUR);
        assert_eq!(gc.max_allowed_age(0.4), 50 * HOUR);
        assert_eq!(gc.max_allowed_age(0.9), Duration::ZERO);
        assert_eq!(gc.max_allowed_age(1.0), Duration::ZERO);
        assert_eq!(gc.max_allowed_age(f64::NAN), 100 * HOUR);
        assert_eq!(schedule(0.0).max_allowed_age(0.0), 100 * HOUR);
    }

    #[test]
    fn prune_takes_paths_older_than_the_allowed_age() {
        let t0 = origin();
        let now = t0 + 200 * HOUR;
        let mut gc = schedule(0.1);
        // Scheduled at `modified + gc_delay`, so these are 10, 40, 60 and 95 hours old.
        for (name, age_hours) in [
            ("/w/10h", 10),
            ("/w/40h", 40),
            ("/w/60h", 60),
            ("/w/95h", 95),
        ] {
            gc.schedule(name.into(), now - age_hours * HOUR + 100 * HOUR);
        }
        // 40% used: max age 50 hours.
        assert_eq!(gc.prune(now, 0.4), paths(&["/w/95h", "/w/60h"]));
        // Usage dropped: max age 90 hours, nothing older is left.
        assert!(gc.prune(now, 0.0).is_empty());
        // Full disk: everything goes.
        assert_eq!(gc.prune(now, 0.95), paths(&["/w/40h", "/w/10h"]));
        assert!(gc.is_empty());
    }

    #[test]
    fn headroom_outside_zero_to_one_is_refused() {
        for headroom in [-0.1, 1.1, f64::NAN] {
            assert!(matches!(
                GcSchedule::new(HOUR, headroom),
                Err(GcError::InvalidHeadroom(_))
            ));
        }
    }

    #[test]
    fn lexical_containment_is_by_components() {
        let work = Path::new("/var/work");
        assert!(lexically_inside(work, Path::new("/var/work/a/b")));
        assert!(!lexically_inside(work, Path::new("/var/work")));
        assert!(!lexically_inside(work, Path::new("/var/work-evil/a")));
        assert!(!lexically_inside(work, Path::new("/var/work/a/../../etc")));
        assert!(!lexically_inside(work, Path::new("var/work/a")));
    }

    #[test]
    fn disk_usage_is_a_fraction() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let usage = disk_usage(tmp.path()).expect("statvfs");
        assert!((0.0..=1.0).contains(&usage), "{usage}");
        assert!(disk_usage(&tmp.path().join("missing")).is_err());
    }
}
