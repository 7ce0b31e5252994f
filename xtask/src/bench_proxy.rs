//! `cargo xtask bench-proxy`: iacscope serve against websockify 0.13, side by side in one run,
//! both relaying to the same local echo server: relay throughput, added latency for small
//! messages (p50, p99), and memory per idle session. Loopback only.
//!
//! Usage: `cargo xtask bench-proxy [--mib N] [--rounds N] [--pings N] [--sessions N] [--ws-sessions N]
//! [--no-pin]`.
//!
//! The load client masks every byte it sends and parses every frame it gets back, so it is
//! built in release like the proxy (xtask itself runs in debug: the debug client alone was
//! slower than either proxy). The echo server runs on its own runtime thread, so a busy
//! client task never delays the echo side and the other way round.
//!
//! On a machine with two or more CPUs the run is pinned (unless `--no-pin`): the load client
//! and the echo server share CPU 0, the proxy under test gets CPU 1 to itself (each proxy in
//! turn, with every thread and forked child). Without pinning, the proxy competes with the
//! load generator for cores, and how much of a core it gets (not its own cost) decides the
//! throughput; with it, both proxies get the same one core and the figure compares them.

use crate::util;
use crate::util::Process;
use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

struct Opts {
    mib: usize,
    /// Throughput runs per proxy, interleaved; the median is reported (the machine is
    /// shared, so one run can be unlucky).
    rounds: usize,
    pings: usize,
    sessions: usize,
    ws_sessions: usize,
    /// Pin the load side and the proxies to separate CPUs.
    pin: bool,
}

/// CPU of the load client and echo server when pinned.
const LOAD_CPU: usize = 0;
/// CPU of the proxy under test when pinned.
const PROXY_CPU: usize = 1;

/// Sets the CPU affinity of every thread of `pid` (`taskset -a -cp`); children forked
/// later inherit it.
fn pin(pid: u32, cpu: usize) -> Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-cp", &cpu.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .output()
        .context("running taskset (util-linux)")?;
    if !out.status.success() {
        bail!(
            "taskset -a -cp {cpu} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        mib: 64,
        rounds: 3,
        pings: 2000,
        sessions: 10_000,
        ws_sessions: 200,
        pin: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<usize> {
            it.next()
                .with_context(|| format!("{a} needs a number"))?
                .parse()
                .with_context(|| format!("{a} needs a number"))
        };
        match a.as_str() {
            "--mib" => o.mib = num()?,
            "--rounds" => o.rounds = num()?.max(1),
            "--pings" => o.pings = num()?,
            "--sessions" => o.sessions = num()?,
            "--ws-sessions" => o.ws_sessions = num()?,
            "--no-pin" => o.pin = false,
            other => bail!("bench-proxy: unknown argument `{other}` (--mib, --rounds, --pings, --sessions, --ws-sessions, --no-pin)"),
        }
    }
    Ok(o)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    if cfg!(debug_assertions) {
        util::heading("bench-proxy: building the load client (release xtask)");
        util::run(util::cargo().args(["build", "--release", "-p", "xtask", "--bin", "xtask"]))?;
        let xtask = util::target_dir().join("release/xtask");
        let status = Command::new(&xtask)
            .arg("bench-proxy")
            .args(args)
            .status()
            .with_context(|| format!("running {}", xtask.display()))?;
        if !status.success() {
            bail!("{} bench-proxy failed: {status}", xtask.display());
        }
        return Ok(());
    }
    // websockify (the peer) lives in the project's venv: installed here when missing, as
    // `cargo xtask test` does, so this task works on a fresh checkout.
    crate::tools::ensure(crate::tools::Needs {
        web: false,
        browser: false,
        python: true,
    })?;
    let websockify = crate::tools::python_venv().join("bin/websockify");
    util::heading("bench-proxy: building iacscope (release)");
    util::run(util::cargo().args(["build", "--release", "-p", "iacscope", "--bin", "iacscope"]))?;
    let iacscope = util::target_dir().join("release/iacscope");
    // Each proxied session holds two descriptors in the proxy, and two here (client and
    // echo side): raise the soft limit to the hard one.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    let fit = (nofile.saturating_sub(256) / 2) as usize;
    let sessions = opts.sessions.min(fit);
    if sessions < opts.sessions {
        eprintln!(
            "note: RLIMIT_NOFILE hard limit is {nofile}: measuring {sessions} idle sessions instead of {}",
            opts.sessions
        );
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = opts.pin && cpus > PROXY_CPU;
    if pinned {
        // Before the runtime and the echo thread exist, so they inherit it.
        pin(std::process::id(), LOAD_CPU)?;
        eprintln!("pinned: load client and echo server on CPU {LOAD_CPU}, the proxy under test on CPU {PROXY_CPU}");
    } else {
        eprintln!(
            "not pinned ({cpus} CPUs available{}): proxies and load share the cores",
            if opts.pin { "" } else { ", --no-pin" }
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(&opts, sessions, &iacscope, &websockify, pinned))
}

/// The echo server, on a runtime thread of its own (it lives until the process exits).
fn echo_server() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    let addr = l.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(l) = TcpListener::from_std(l) else {
                    return;
                };
                while let Ok((mut s, _)) = l.accept().await {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(async move {
                        // 64 KiB reads, as websockify's: `tokio::io::copy`'s 8 KiB buffer
                        // made the echo side cost as much CPU as the proxy under test.
                        let (r, mut w) = s.split();
                        let mut r = tokio::io::BufReader::with_capacity(64 * 1024, r);
                        let _ = tokio::io::copy_buf(&mut r, &mut w).await;
                    });
                }
            });
        })?;
    Ok(addr)
}

async fn wait_listening(port: u16, what: &str) -> Result<()> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not start listening on port {port}")
}

struct Target {
    name: &'static str,
    url: String,
    pid: u32,
    /// iacscope sends a `connected` text frame first.
    hello: bool,
}

async fn connect(t: &Target) -> Result<Ws> {
    let mut req = t.url.as_str().into_client_request()?;
    if !t.hello {
        // websockify's binary mode.
        req.headers_mut()
            .insert("sec-websocket-protocol", "binary".parse()?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("websocket to {}", t.name))?;
    if t.hello {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"connected\"") => {}
            other => bail!("expected `connected`, got {other:?}"),
        }
    }
    Ok(ws)
}

/// Reads binary payload from `rx` until `n` bytes have come (other frames are skipped), each
/// message within `wait`; the error names the proxy and `what` was being read.
async fn read_echoed<S>(rx: &mut S, n: usize, wait: Duration, name: &str, what: &str) -> Result<()>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(wait, rx.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got += b.len(),
            Ok(Some(Ok(_))) => {}
            other => bail!("{name}: {what} failed: {other:?}"),
        }
    }
    Ok(())
}

/// A session whose first byte has made the round trip: iacscope holds a page's data until
/// the server has spoken or stayed silent for a second (its telnet-only gate), and the echo
/// server is silent until it hears something, so the measured traffic starts after that.
async fn connect_warm(t: &Target) -> Result<Ws> {
    let mut ws = connect(t).await?;
    ws.send(Message::Binary(Bytes::from_static(b"\r\n")))
        .await?;
    read_echoed(&mut ws, 2, Duration::from_secs(10), t.name, "warm-up echo").await?;
    Ok(ws)
}

async fn bench(
    opts: &Opts,
    sessions: usize,
    iacscope: &Path,
    websockify: &PathBuf,
    pinned: bool,
) -> Result<()> {
    let echo = echo_server()?;
    let ip = free_port()?;
    let wp = free_port()?;
    let big = (sessions * 2).to_string();
    // The store goes under the target directory, not into the checkout's `./data`.
    let data_dir = util::target_dir().join("bench-proxy-data");
    let start_iacscope = |port: u16| -> Result<Process> {
        Ok(Process(
            Command::new(iacscope)
                .args([
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--allow-private",
                ])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--static-dir", "/nonexistent", "--max-sessions", &big])
                .args([
                    "--max-sessions-per-ip",
                    &big,
                    "--max-sessions-per-target",
                    &big,
                ])
                .args(["--max-new-sessions-per-ip-per-minute", "100000000"])
                .args(["--max-connections", &big, "--max-connections-per-ip", &big])
                .args(["--max-sessions-per-ip-per-target", &big])
                .args([
                    "--max-bytes-up",
                    "100000000000",
                    "--max-bytes-down",
                    "100000000000",
                ])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .context("starting iacscope serve")?,
        ))
    };
    let proxy = start_iacscope(ip)?;
    let wsfy = Process(
        Command::new(websockify)
            .args([format!("127.0.0.1:{wp}"), echo.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting websockify")?,
    );
    wait_listening(ip, "iacscope serve").await?;
    wait_listening(wp, "websockify").await?;
    if pinned {
        pin(proxy.0.id(), PROXY_CPU)?;
        pin(wsfy.0.id(), PROXY_CPU)?;
    }
    let targets = [
        Target {
            name: "iacscope",
            url: format!("ws://127.0.0.1:{ip}/ws?host=127.0.0.1&port={}", echo.port()),
            pid: proxy.0.id(),
            hello: true,
        },
        Target {
            name: "websockify",
            url: format!("ws://127.0.0.1:{wp}/"),
            pid: wsfy.0.id(),
            hello: false,
        },
    ];

    util::heading("bench-proxy: measuring");
    let direct = direct_latency(echo, opts.pings).await?;
    let mut runs: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..opts.rounds {
        for (t, r) in targets.iter().zip(&mut runs) {
            r.push(throughput(t, opts.mib).await?);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut rows = Vec::new();
    for (t, r) in targets.iter().zip(runs) {
        let speeds: Vec<f64> = r.iter().map(|r| r.mbps).collect();
        let cpus: Vec<f64> = r.iter().map(|r| r.cpu_us_per_mb).collect();
        eprintln!(
            "{}: throughput runs: MB/s {speeds:.1?}, proxy CPU us/MB {cpus:.0?}",
            t.name
        );
        let mbps = median(speeds);
        let cpu = median(cpus);
        let (p50, p99) = latency(t, opts.pings).await?;
        let n = if t.hello { sessions } else { opts.ws_sessions };
        let per = idle_memory(t, n).await?;
        eprintln!(
            "{}: {mbps:.1} MB/s, p50 {p50:?}, p99 {p99:?}, {:.1} KiB/session ({n} sessions)",
            t.name,
            per / 1024.0
        );
        rows.push((t.name, mbps, p50, p99, per, n, cpu));
    }
    // On a proxy of its own: one that served the sessions above keeps their freed memory
    // for reuse, and new transcripts would not show in its size.
    let kp = free_port()?;
    let kept_proxy = start_iacscope(kp)?;
    wait_listening(kp, "iacscope serve").await?;
    if pinned {
        pin(kept_proxy.0.id(), PROXY_CPU)?;
    }
    let kept_target = Target {
        name: "iacscope",
        url: format!("ws://127.0.0.1:{kp}/ws?host=127.0.0.1&port={}", echo.port()),
        pid: kept_proxy.0.id(),
        hello: true,
    };
    let kept = kept_transcript_cost(&kept_target, KEPT_SESSIONS, KEPT_MESSAGES).await?;
    drop(kept_proxy);
    let add = |d: Duration, base: Duration| d.saturating_sub(base).as_secs_f64() * 1e6;
    println!();
    println!(
        "direct TCP round trip (baseline): p50 {:.1} us, p99 {:.1} us",
        direct.0.as_secs_f64() * 1e6,
        direct.1.as_secs_f64() * 1e6
    );
    println!(
        "{:<11} {:>12} {:>16} {:>16} {:>16} {:>20}",
        "proxy",
        "echo MB/s",
        "proxy CPU us/MB",
        "added p50 (us)",
        "added p99 (us)",
        "KiB / idle session"
    );
    for (name, mbps, p50, p99, per, n, cpu) in &rows {
        println!(
            "{name:<11} {mbps:>12.1} {cpu:>16.0} {:>16.1} {:>16.1} {:>13.1} (n={n})",
            add(*p50, direct.0),
            add(*p99, direct.1),
            per / 1024.0
        );
    }
    if let [a, b] = rows.as_slice() {
        println!(
            "ratio      throughput {:.2}x, p50 {:.2}x, p99 {:.2}x, memory {:.3}x   (iacscope / websockify)",
            a.1 / b.1,
            a.2.as_secs_f64() / b.2.as_secs_f64(),
            a.3.as_secs_f64() / b.3.as_secs_f64(),
            a.4 / b.4
        );
        println!(
            "           proxy CPU per MB relayed: websockify uses {:.2}x iacscope's",
            b.6 / a.6
        );
        println!(
            "kept transcript (iacscope): {:.1} KiB each after {} one-byte messages echoed \
             ({} sessions; bound {:.0} KiB of entry cost)",
            kept.per_transcript / 1024.0,
            kept.messages,
            kept.sessions,
            TRANSCRIPT_BOUND / 1024.0
        );
        let goals = [
            ("throughput >= 3x websockify", a.1 >= 3.0 * b.1),
            ("p99 below websockify", a.3 < b.3),
            ("<= 32 KiB per idle session", a.4 <= 32.0 * 1024.0),
            (
                "kept transcript <= 1.25x its bound",
                kept.per_transcript <= 1.25 * TRANSCRIPT_BOUND,
            ),
        ];
        for (goal, met) in goals {
            println!("goal: {goal}: {}", if met { "met" } else { "NOT met" });
        }
    }
    drop((proxy, wsfy));
    Ok(())
}

/// Sessions whose transcripts the kept-transcript measurement keeps.
const KEPT_SESSIONS: usize = 64;
/// One-byte messages each of them sends (each echoed: a `send` and a `recv` entry apiece),
/// well past what the default transcript bound (1 MiB of entry cost) records.
const KEPT_MESSAGES: usize = 20_000;
/// iacscope's default `transcript_max_bytes`, the bound a kept transcript should stay within
/// (memory beyond it is allocator slack the proxy cannot see).
const TRANSCRIPT_BOUND: f64 = 1024.0 * 1024.0;

/// What one kept (closed, retained for a save) transcript costs the proxy under the worst
/// message pattern: `n` sessions each send `messages` one-byte messages through the echo
/// server and close; the proxy's memory growth divided by `n`.
async fn kept_transcript_cost(t: &Target, n: usize, messages: usize) -> Result<KeptCost> {
    util::heading("bench-proxy: one kept transcript under one-byte messages");
    let warm = connect(t).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = memory(t.pid);
    let start = Instant::now();
    for _ in 0..n {
        let ws = connect_warm(t).await?;
        let (mut tx, mut rx) = ws.split();
        let send = async {
            for _ in 0..messages {
                tx.feed(Message::Binary(Bytes::from_static(b"x"))).await?;
            }
            tx.flush().await?;
            anyhow::Ok(tx)
        };
        let recv = read_echoed(
            &mut rx,
            messages,
            Duration::from_secs(60),
            t.name,
            "echo read",
        );
        let (tx, ()) = tokio::try_join!(send, recv)?;
        let mut ws = tx.reunite(rx).map_err(|_| anyhow::anyhow!("reunite"))?;
        ws.close(None).await?;
        // The transcript is kept once the proxy answers the close.
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = memory(t.pid);
    drop(warm);
    let per = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "{}: {n} sessions x {messages} one-byte messages in {secs:.1} s; {:.1} KiB per kept transcript",
        t.name,
        per / 1024.0
    );
    Ok(KeptCost {
        sessions: n,
        messages,
        per_transcript: per,
    })
}

/// The kept-transcript measurement.
struct KeptCost {
    sessions: usize,
    messages: usize,
    per_transcript: f64,
}

/// `pid` and its direct children (websockify forks one per connection).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids
}

/// CPU time used so far by a process and its live children (websockify relays in a forked
/// child per connection), in nanoseconds, from `/proc/<pid>/task/*/schedstat`.
fn cpu_ns(pid: u32) -> u64 {
    let pids = with_children(pid);
    let mut total = 0;
    for p in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            total += std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// One throughput run: echoed MB per second of wall time, and the proxy's CPU time per
/// MB relayed (each byte goes up and comes back down). The CPU figure does not depend on
/// what else the machine is doing, the wall-clock one does.
struct Run {
    mbps: f64,
    cpu_us_per_mb: f64,
}

/// Echoed bytes per second over one session, sending and reading concurrently.
async fn throughput(t: &Target, mib: usize) -> Result<Run> {
    let ws = connect_warm(t).await?;
    let (mut tx, mut rx) = ws.split();
    let cpu0 = cpu_ns(t.pid);
    let total = mib << 20;
    // One shared buffer: cloning a `Bytes` does not copy, so the client's only per-byte
    // work is masking (which a browser does too).
    let chunk = Bytes::from(vec![0xA5u8; 32 * 1024]);
    let start = Instant::now();
    let send = async {
        let mut sent = 0;
        while sent < total {
            tx.feed(Message::Binary(chunk.clone())).await?;
            sent += chunk.len();
        }
        tx.flush().await?;
        anyhow::Ok(tx)
    };
    let recv = read_echoed(
        &mut rx,
        total,
        Duration::from_secs(60),
        t.name,
        "throughput read",
    );
    let (tx, ()) = tokio::try_join!(send, recv)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_ns(t.pid).saturating_sub(cpu0) as f64 / 1e3;
    let mut ws = tx.reunite(rx).map_err(|_| anyhow::anyhow!("reunite"))?;
    let _ = ws.close(None).await;
    let mb = total as f64 / 1e6;
    Ok(Run {
        mbps: mb / secs,
        cpu_us_per_mb: cpu / mb,
    })
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (p(0.50), p(0.99))
}

/// Round trips of 16-byte messages, one at a time.
async fn latency(t: &Target, n: usize) -> Result<(Duration, Duration)> {
    let mut ws = connect_warm(t).await?;
    let msg = vec![0x41u8; 16];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        ws.send(Message::Binary(msg.clone().into())).await?;
        read_echoed(
            &mut ws,
            msg.len(),
            Duration::from_secs(10),
            t.name,
            "latency read",
        )
        .await?;
        if i >= n / 10 {
            samples.push(start.elapsed()); // the first tenth warms up
        }
    }
    let _ = ws.close(None).await;
    Ok(percentiles(samples))
}

async fn direct_latency(echo: SocketAddr, n: usize) -> Result<(Duration, Duration)> {
    let mut s = TcpStream::connect(echo).await?;
    s.set_nodelay(true)?;
    let mut buf = [0u8; 16];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        s.write_all(&[0x41; 16]).await?;
        s.read_exact(&mut buf).await?;
        samples.push(start.elapsed());
    }
    Ok(percentiles(samples))
}

/// Memory of a process tree in bytes: PSS (so forked children sharing pages are counted
/// fairly) summed over the process and its children, falling back to VmRSS.
fn memory(pid: u32) -> u64 {
    let mut total = 0;
    let pids = with_children(pid);
    for p in pids {
        let field = |file: &str, key: &str| -> Option<u64> {
            let text = std::fs::read_to_string(format!("/proc/{p}/{file}")).ok()?;
            let line = text.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        };
        total += field("smaps_rollup", "Pss:")
            .or_else(|| field("status", "VmRSS:"))
            .unwrap_or(0)
            * 1024;
    }
    total
}

/// Opens `n` idle sessions and returns the memory added per session.
async fn idle_memory(t: &Target, n: usize) -> Result<f64> {
    // One session first, so one-time allocations are not charged to the idle ones.
    let warm = connect(t).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = memory(t.pid);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let url = t.url.clone();
        let hello = t.hello;
        let name = t.name;
        tasks.push(tokio::spawn(async move {
            let t = Target {
                name,
                url,
                pid: 0,
                hello,
            };
            let ws = connect(&t).await;
            drop(permit);
            ws
        }));
    }
    let mut open = Vec::with_capacity(n);
    for task in tasks {
        open.push(task.await??);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = memory(t.pid);
    let per = after.saturating_sub(before) as f64 / n as f64;
    for mut ws in open {
        let _ = ws.close(None).await;
    }
    drop(warm);
    Ok(per)
}
