//! The sandbox garbage collector on real directories: removal after the delay, unscheduling,
//! early pruning under disk pressure, and refusal to touch anything outside the work dir.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use strata_agent::gc::{self, GcConfig, GcError, GcHandle};

const WAIT: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);

/// Polls `condition` every few milliseconds until it holds, failing after [`WAIT`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the collector no longer has `path` scheduled, i.e. it has tried to remove it.
async fn wait_until_not_pending(handle: &GcHandle, path: &Path) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle
        .pending()
        .await
        .expect("collector runs")
        .iter()
        .any(|pending| pending == path)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {path:?} to leave the schedule"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Fixture {
    tmp: tempfile::TempDir,
    work: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("temp dir");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir work");
    let work = work.canonicalize().expect("canonical work dir");
    Fixture { tmp, work }
}

/// Creates a sandbox-like directory with a file and a subdirectory.
fn sandbox(work: &Path, name: &str) -> PathBuf {
    let dir = work
        .join("agents/a1/frameworks/f1/executors/e1/runs")
        .join(name);
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir sandbox");
    std::fs::write(dir.join("stdout"), "out\n").expect("write stdout");
    std::fs::write(dir.join("sub/file"), "data\n").expect("write file");
    dir
}

fn config(gc_delay: Duration, disk_watch_interval: Duration) -> GcConfig {
    GcConfig {
        gc_delay,
        gc_disk_headroom: 0.1,
        disk_watch_interval,
    }
}

#[tokio::test]
async fn a_scheduled_sandbox_is_removed_gc_delay_after_its_last_change() {
    let f = fixture();
    let gc_delay = Duration::from_millis(300);
    let (handle, _task) = gc::spawn(&f.work, config(gc_delay, HOUR)).expect("spawn");
    let run = sandbox(&f.work, "c1");
    // The delay counts from the directory's recorded mtime, which the kernel stamps from a
    // coarse clock that may trail the real time by a tick; measure against that stamp.
    let modified = std::fs::metadata(&run)
        .and_then(|metadata| metadata.modified())
        .expect("mtime");
    handle.schedule(&run).await.expect("schedule");
    assert!(run.exists(), "removed before its delay");
    assert_eq!(handle.pending().await.expect("pending"), vec![run.clone()]);

    wait_until("the sandbox is removed", || !run.exists()).await;
    #[allow(clippy::disallowed_methods)] // Compared with the file's mtime, a wall-clock stamp.
    let age = SystemTime::now()
        .duration_since(modified)
        .expect("mtime in the past");
    assert!(age >= gc_delay, "removed {age:?} after its last change");
    assert!(
        run.parent().expect("runs dir").exists(),
        "only the run goes"
    );
    assert!(handle.pending().await.expect("pending").is_empty());
}

#[tokio::test]
async fn an_unscheduled_sandbox_is_kept() {
    let f = fixture();
    let (handle, _task) =
        gc::spawn(&f.work, config(Duration::from_millis(100), HOUR)).expect("spawn");
    let kept = sandbox(&f.work, "kept");
    let removed = sandbox(&f.work, "removed");
    handle.schedule(&kept).await.expect("schedule");
    handle.schedule(&removed).await.expect("schedule");
    assert!(handle.unschedule(&kept).await.expect("unschedule"));
    assert!(!handle.unschedule(&kept).await.expect("unschedule again"));

    // Both were due at the same time; once one is gone the other would have gone too.
    wait_until("the scheduled sandbox is removed", || !removed.exists()).await;
    assert!(kept.join("sub/file").exists());
}

#[tokio::test]
async fn a_sandbox_older_than_gc_delay_is_removed_at_once() {
    let f = fixture();
    let (handle, _task) = gc::spawn(&f.work, config(HOUR, HOUR)).expect("spawn");
    let old = sandbox(&f.work, "old");
    let two_hours_ago = SystemTime::UNIX_EPOCH
        + (std::fs::metadata(&old)
            .and_then(|metadata| metadata.modified())
            .expect("mtime")
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after epoch")
            - 2 * HOUR);
    std::fs::File::open(&old)
        .and_then(|dir| dir.set_modified(two_hours_ago))
        .expect("set mtime");
    let fresh = sandbox(&f.work, "fresh");

    handle.schedule(&old).await.expect("schedule old");
    handle.schedule(&fresh).await.expect("schedule fresh");
    wait_until("the old sandbox is removed", || !old.exists()).await;
    assert!(fresh.exists(), "a fresh sandbox waits its gc_delay");
    assert_eq!(handle.pending().await.expect("pending"), vec![fresh]);
}

#[tokio::test]
async fn disk_pressure_prunes_sandboxes_before_their_delay() {
    let f = fixture();
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&checks);
    // 95% used with 10% headroom: the allowed age is zero, so everything scheduled goes.
    let probe = Box::new(move |_: &Path| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(0.95)
    });
    let (handle, _task) =
        gc::spawn_with_probe(&f.work, config(HOUR, Duration::from_millis(50)), probe)
            .expect("spawn");
    let run = sandbox(&f.work, "c1");
    handle.schedule(&run).await.expect("schedule");
    wait_until("the sandbox is pruned", || !run.exists()).await;
    assert!(checks.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_disk_with_room_prunes_nothing() {
    let f = fixture();
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&checks);
    let probe = Box::new(move |_: &Path| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(0.2)
    });
    let (handle, _task) =
        gc::spawn_with_probe(&f.work, config(HOUR, Duration::from_millis(20)), probe)
            .expect("spawn");
    let run = sandbox(&f.work, "c1");
    handle.schedule(&run).await.expect("schedule");
    let scheduled_at = checks.load(Ordering::SeqCst);
    wait_until("three disk checks ran after scheduling", || {
        checks.load(Ordering::SeqCst) >= scheduled_at + 3
    })
    .await;
    assert!(run.join("stdout").exists());
    assert_eq!(handle.pending().await.expect("pending"), vec![run]);
}

#[tokio::test]
async fn paths_outside_the_work_dir_are_refused() {
    let f = fixture();
    let (handle, _task) = gc::spawn(&f.work, config(Duration::ZERO, HOUR)).expect("spawn");
    let outside = f.tmp.path().join("outside");
    let sibling = PathBuf::from(format!("{}-evil", f.work.display())).join("x");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    std::fs::create_dir_all(&sibling).expect("mkdir sibling");
    for path in [
        outside.clone(),
        sibling.clone(),
        f.work.join("../outside"),
        f.work.clone(),
        PathBuf::from("relative/path"),
    ] {
        match handle.schedule(&path).await {
            Err(GcError::OutsideWorkDir(refused)) => assert_eq!(refused, path),
            other => panic!("{path:?} was not refused: {other:?}"),
        }
    }
    // A zero delay removes what is scheduled at once; this one marks that the collector ran.
    let run = sandbox(&f.work, "c1");
    handle.schedule(&run).await.expect("schedule");
    wait_until("the sandbox is removed", || !run.exists()).await;
    assert!(outside.exists() && sibling.exists() && f.work.exists());
}

#[tokio::test]
async fn removal_never_follows_symlinks_out_of_the_work_dir() {
    let f = fixture();
    let outside = f.tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("victim")).expect("mkdir outside");
    std::fs::write(outside.join("victim/precious"), "keep\n").expect("write precious");

    // A sandbox holding a link to the outside directory.
    let run = sandbox(&f.work, "c1");
    symlink(&outside, run.join("link-out")).expect("link out");
    // A scheduled path that is itself a link out.
    let link_run = run.with_file_name("c3");
    symlink(outside.join("victim"), &link_run).expect("run link out");
    // A path whose ancestor is a link out: removing it would remove `outside/victim`.
    let ancestor = f.work.join("agents/a1/linked");
    symlink(&outside, &ancestor).expect("ancestor link");
    let through_ancestor = ancestor.join("victim");

    let (handle, _task) =
        gc::spawn(&f.work, config(Duration::from_millis(50), HOUR)).expect("spawn");
    handle
        .schedule_in(&through_ancestor, Duration::ZERO)
        .await
        .expect("schedule through ancestor");
    handle.schedule(&run).await.expect("schedule run");
    handle
        .schedule_in(&link_run, Duration::ZERO)
        .await
        .expect("schedule link");

    wait_until("the sandbox is removed", || !run.exists()).await;
    wait_until_not_pending(&handle, &through_ancestor).await;
    wait_until("the link is removed", || {
        std::fs::symlink_metadata(&link_run).is_err()
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(outside.join("victim/precious")).expect("precious survives"),
        "keep\n"
    );

    // The refused removal was logged, not fatal: the collector still removes.
    let later = sandbox(&f.work, "c4");
    handle.schedule(&later).await.expect("schedule later");
    wait_until("a later sandbox is removed", || !later.exists()).await;
}

#[tokio::test]
async fn a_path_gone_before_its_time_is_skipped() {
    let f = fixture();
    let (handle, _task) =
        gc::spawn(&f.work, config(Duration::from_millis(50), HOUR)).expect("spawn");
    let missing = f.work.join("agents/never-created");
    assert!(matches!(
        handle.schedule(&missing).await,
        Err(GcError::Stat { .. })
    ));
    handle
        .schedule_in(&missing, Duration::ZERO)
        .await
        .expect("schedule by delay");
    wait_until_not_pending(&handle, &missing).await;
    let run = sandbox(&f.work, "c1");
    handle.schedule(&run).await.expect("schedule");
    wait_until("the sandbox is removed", || !run.exists()).await;
}

#[tokio::test]
async fn the_collector_stops_when_every_handle_is_dropped() {
    let f = fixture();
    let (handle, task) = gc::spawn(&f.work, GcConfig::default()).expect("spawn");
    let other = handle.clone();
    drop(handle);
    assert!(other.pending().await.expect("still running").is_empty());
    drop(other);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("stops in time")
        .expect("stops cleanly");
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let f = fixture();
    let bad = GcConfig {
        gc_disk_headroom: 1.5,
        ..GcConfig::default()
    };
    assert!(matches!(
        gc::spawn(&f.work, bad),
        Err(GcError::InvalidHeadroom(_))
    ));
    assert!(matches!(
        gc::spawn(f.work.join("missing"), GcConfig::default()),
        Err(GcError::WorkDir { .. })
    ));
}

#[tokio::test]
async fn the_removal_hook_hears_of_every_path_once_it_is_gone() {
    let f = fixture();
    let gone = Arc::new(std::sync::Mutex::new(Vec::<PathBuf>::new()));
    let hook: gc::RemovalHook = {
        let gone = Arc::clone(&gone);
        Arc::new(move |path: &Path| gone.lock().expect("lock").push(path.to_path_buf()))
    };
    let (handle, _task) =
        gc::spawn_with_hook(&f.work, config(Duration::from_millis(50), HOUR), hook).expect("spawn");
    let removed = sandbox(&f.work, "removed");
    let missing = sandbox(&f.work, "missing");
    handle.schedule(&removed).await.expect("schedule");
    handle.schedule(&missing).await.expect("schedule");
    // Gone before its time: still reported, so nothing keeps referring to it.
    std::fs::remove_dir_all(&missing).expect("remove");
    wait_until("both paths are reported gone", || {
        gone.lock().expect("lock").len() == 2
    })
    .await;
    let mut reported = gone.lock().expect("lock").clone();
    reported.sort();
    let mut expected = vec![missing, removed.clone()];
    expected.sort();
    assert_eq!(reported, expected);
    assert!(!removed.exists());
}
