//! Transport benchmark: one-way throughput and request/response latency between two processes
//! over loopback.
//!
//! `cargo run --release -p strata-integration --bin transport-bench` starts a second copy of
//! itself with the `serve` subcommand. The child runs a node with two actors: `sink` counts
//! `Ping`s and, on the `Ping` whose `seq` is [`REPORT`], answers with a `Pong` carrying the count;
//! `echo` answers every `Ping` with a `Pong`. The parent, a node that does not listen (like a
//! framework behind NAT), then measures:
//!
//! 1. throughput: `--messages` `Ping`s to `sink`, timed from the first send until the count comes
//!    back, so every envelope has been encoded, written, read, decoded and handed to the actor;
//! 2. latency: `--round-trips` sequential `Ping` -> `Pong` exchanges with `echo`, each timed from
//!    the send to the arrival of the `Pong` in the parent's actor;
//! 3. the same latency phase again while a third process, at the lowest priority (`nice 19`),
//!    keeps every core busy.
//!
//! Why phase 3: on a virtual machine an idle vCPU halts, and waking it for the next packet costs
//! the hypervisor tens of microseconds, twice per round trip. A busy-looping process at nice 19
//! takes no time from the measured processes (they always win the CPU) but keeps the vCPUs from
//! halting, as the kernel's `idle=poll` would. Phase 2 is what an idle VM gives; phase 3 is the
//! transport's own cost.

// The benchmark's product is its report on stdout (and the child's address line to the parent).
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use strata_protocol::internal::{Message, Ping, Pong};
use strata_protocol::{Body, Envelope, Epoch, PeerRole, Pid};
use strata_transport::{Delivery, Node, NodeConfig};
use tokio::sync::mpsc;

/// The `seq` of the `Ping` that asks `sink` for its count.
const REPORT: u64 = u64::MAX;

/// Sends between two yields to the runtime in the throughput phase, so that the link's writer
/// encodes and writes while the sender is still producing.
const SENDS_PER_YIELD: u64 = 4096;

#[derive(Parser)]
#[command(about = "Measures the Strata actor transport between two processes over loopback")]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Messages in the one-way throughput phase.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Sequential request/response exchanges in the latency phase.
    #[arg(long, default_value_t = 20_000)]
    round_trips: u64,
    /// Untimed round trips before the latency phase, to warm caches and the connection.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the child side: prints its address, serves until stdin closes.
    Serve,
    /// Busy-loops on every core until killed (run at nice 19 by the parent).
    Spin,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match args.command {
        Some(Cmd::Serve) => serve(),
        Some(Cmd::Spin) => spin(),
        None => run_parent(&args),
    }
}

fn ping(from: &Pid, to: &Pid, seq: u64) -> Envelope {
    Envelope {
        from: from.clone(),
        to: to.clone(),
        epoch: Epoch::NONE,
        body: Body::Internal(Message::Ping(Ping { seq })),
    }
}

fn pong(from: &Pid, to: &Pid, seq: u64) -> Envelope {
    Envelope {
        from: from.clone(),
        to: to.clone(),
        epoch: Epoch::NONE,
        body: Body::Internal(Message::Pong(Pong { seq })),
    }
}

// ----- child -----

/// Counts pings; answers the report request with the count.
struct Sink {
    node: Node,
    pid: Pid,
    n_pings: u64,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Sink {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        match envelope.body {
            Body::Internal(Message::Ping(Ping { seq: REPORT })) => {
                let count = std::mem::take(&mut self.n_pings);
                let _ = self.node.send(pong(&self.pid, &envelope.from, count));
            }
            Body::Internal(Message::Ping(_)) => self.n_pings += 1,
            _ => {}
        }
    }
}

/// Answers every ping.
struct Echo {
    node: Node,
    pid: Pid,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Echo {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        if let Body::Internal(Message::Ping(Ping { seq })) = envelope.body {
            let _ = self.node.send(pong(&self.pid, &envelope.from, seq));
        }
    }
}

fn serve() -> anyhow::Result<()> {
    // The parent holds our stdin; when it exits, for whatever reason, so do we.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let system = actix_rt::System::new();
    system.block_on(async {
        let config = NodeConfig::listening(PeerRole::Tool, "127.0.0.1:0".parse()?);
        let node = Node::start(config)?;
        let sink_pid = node.pid("sink")?;
        let sink = Sink {
            node: node.clone(),
            pid: sink_pid,
            n_pings: 0,
        }
        .start();
        node.register("sink", sink.recipient())?;
        let echo_pid = node.pid("echo")?;
        let echo = Echo {
            node: node.clone(),
            pid: echo_pid,
        }
        .start();
        node.register("echo", echo.recipient())?;
        let addr = node.local_addr().context("node does not listen")?;
        println!("listening {addr}");
        anyhow::Ok(())
    })?;
    system.run()?;
    Ok(())
}

// ----- parent -----

/// Forwards deliveries to the benchmark's async code.
struct Forward(mpsc::UnboundedSender<Envelope>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Forward {
    type Result = ();

    fn handle(&mut self, Delivery(envelope): Delivery, _: &mut Context<Self>) {
        let _ = self.0.send(envelope);
    }
}

fn spawn_child() -> anyhow::Result<(Child, SocketAddr)> {
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut child = Command::new(exe)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the serve process")?;
    let stdout = child.stdout.take().context("child has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("listening ") else {
        bail!("unexpected first line from the serve process: {line:?}");
    };
    Ok((child, addr.parse()?))
}

/// Keeps every core busy at whatever priority the process was started with.
fn spin() -> anyhow::Result<()> {
    let n_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 1..n_cores {
        std::thread::spawn(|| {
            loop {
                std::hint::spin_loop();
            }
        });
    }
    loop {
        std::hint::spin_loop();
    }
}

/// Starts `spin` at the lowest priority; `None` if `nice` is not available.
fn spawn_spinner() -> Option<Child> {
    let exe = std::env::current_exe().ok()?;
    Command::new("nice")
        .arg("-n")
        .arg("19")
        .arg(exe)
        .arg("spin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .ok()
}

struct Latencies {
    sorted_ns: Vec<u64>,
}

impl Latencies {
    fn quantile_us(&self, q: f64) -> f64 {
        let idx =
            ((self.sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, self.sorted_ns.len());
        self.sorted_ns[idx - 1] as f64 / 1000.0
    }

    fn mean_us(&self) -> f64 {
        self.sorted_ns.iter().sum::<u64>() as f64 / self.sorted_ns.len() as f64 / 1000.0
    }
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Envelope>) -> anyhow::Result<Envelope> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .context("no reply within 30 s")?
        .context("forwarder stopped")
}

fn pong_seq(envelope: &Envelope) -> anyhow::Result<u64> {
    match &envelope.body {
        Body::Internal(Message::Pong(Pong { seq })) => Ok(*seq),
        other => bail!("expected a pong, got {other:?}"),
    }
}

// The benchmark is an adapter: measuring wall-clock time is its job.
#[allow(clippy::disallowed_methods)]
async fn throughput(
    node: &Node,
    me: &Pid,
    sink: &Pid,
    rx: &mut mpsc::UnboundedReceiver<Envelope>,
    n_messages: u64,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for seq in 0..n_messages {
        node.send_wait(ping(me, sink, seq)).await?;
        if seq % SENDS_PER_YIELD == SENDS_PER_YIELD - 1 {
            tokio::task::yield_now().await;
        }
    }
    node.send_wait(ping(me, sink, REPORT)).await?;
    let count = pong_seq(&recv(rx).await?)?;
    let elapsed = start.elapsed();
    if count != n_messages {
        bail!("sink counted {count} pings, expected {n_messages}");
    }
    Ok(elapsed)
}

// The benchmark is an adapter: measuring wall-clock time is its job.
#[allow(clippy::disallowed_methods)]
async fn round_trips(
    node: &Node,
    me: &Pid,
    echo: &Pid,
    rx: &mut mpsc::UnboundedReceiver<Envelope>,
    n_round_trips: u64,
) -> anyhow::Result<Latencies> {
    let mut sorted_ns = Vec::with_capacity(n_round_trips as usize);
    for seq in 0..n_round_trips {
        let start = Instant::now();
        node.send(ping(me, echo, seq))?;
        let reply = recv(rx).await?;
        sorted_ns.push(start.elapsed().as_nanos() as u64);
        if pong_seq(&reply)? != seq {
            bail!(
                "pong {} answers no ping in flight (expected {seq})",
                pong_seq(&reply)?
            );
        }
    }
    sorted_ns.sort_unstable();
    Ok(Latencies { sorted_ns })
}

fn run_parent(args: &Args) -> anyhow::Result<()> {
    if args.messages == 0 || args.round_trips == 0 {
        bail!("--messages and --round-trips must be positive");
    }
    let (mut child, addr) = spawn_child()?;
    let result = actix_rt::System::new().block_on(async {
        // The parent does not listen: replies come back on the connection it opens.
        let node = Node::start(NodeConfig::connect_only(PeerRole::Tool, "bench.parent", 1))?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let me = node.register("bench", Forward(tx).start().recipient())?;
        let sink = Pid::new("sink", addr.ip().to_string(), addr.port())?;
        let echo = Pid::new("echo", addr.ip().to_string(), addr.port())?;

        round_trips(&node, &me, &echo, &mut rx, args.warmup.max(1)).await?;
        let elapsed = throughput(&node, &me, &sink, &mut rx, args.messages).await?;
        let latencies = round_trips(&node, &me, &echo, &mut rx, args.round_trips).await?;
        let awake = match spawn_spinner() {
            Some(mut spinner) => {
                let awake = round_trips(&node, &me, &echo, &mut rx, args.round_trips).await;
                let _ = spinner.kill();
                let _ = spinner.wait();
                Some(awake?)
            }
            None => None,
        };
        let stats = node.stats();
        node.shutdown();
        anyhow::Ok((elapsed, latencies, awake, stats))
    });
    // Closing its stdin ends the child; wait so that no process outlives the benchmark.
    drop(child.stdin.take());
    let _ = child.wait();
    let (elapsed, latencies, awake, stats) = result?;

    let rate = args.messages as f64 / elapsed.as_secs_f64();
    println!("strata transport benchmark (two processes, loopback, Ping/Pong envelopes)");
    println!();
    println!("| phase                  | result                                   |");
    println!("|------------------------|------------------------------------------|");
    println!(
        "| one-way throughput     | {:>9.0} msg/s ({} msgs in {:.1} ms) |",
        rate,
        args.messages,
        elapsed.as_secs_f64() * 1e3
    );
    print_latencies("round trip", &latencies, args.round_trips);
    match &awake {
        Some(awake) => print_latencies("awake vCPUs", awake, args.round_trips),
        None => println!("| awake vCPUs            | skipped: `nice` is not installed         |"),
    }
    println!();
    // Other work on the machine skews both figures; say how busy it was.
    if let Ok(loadavg) = std::fs::read_to_string("/proc/loadavg") {
        let one_minute = loadavg.split_whitespace().next().unwrap_or("?");
        println!("load average (1 min) at the end: {one_minute}");
    }
    println!(
        "parent node: {} sent, {} received, {} dropped, {} connection(s)",
        stats.messages_sent,
        stats.messages_received,
        stats.dropped_total(),
        stats.connections_outbound
    );
    Ok(())
}

fn print_latencies(label: &str, latencies: &Latencies, n: u64) {
    for (name, q) in [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)] {
        let row = format!("{label} {name}");
        println!(
            "| {row:<22} | {:>9.1} us                             |",
            latencies.quantile_us(q)
        );
    }
    let row = format!("{label} mean");
    println!(
        "| {row:<22} | {:>9.1} us ({n} round trips)          |",
        latencies.mean_us()
    );
}
