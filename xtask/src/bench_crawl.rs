//! `cargo xtask bench-crawl`: `iacscope crawl` against modem.xyz's census method, on a few
//! thousand fake servers on loopback.
//!
//! Starts one `fake-telnetd --many N` (N listeners spread over 127.1.0.0/16, a mix of
//! scenarios: prompt answerers, late answerers, servers that never send a byte, servers that
//! close at once), then, in the same run:
//! 1. `iacscope crawl --allow-private` at its default settings over all N into a fresh store;
//! 2. modem.xyz's method on a sample (the first servers, which cycle through the mix): a pool of 20 workers, each running
//!    `telnetlib3-fingerprint HOST PORT --connect-timeout 30 --save-json …` once per server,
//!    started 0.05 s apart;
//! 3. `iacscope crawl --concurrency 1000 --connect-rate 1000` over the same servers into
//!    another fresh store, to measure the peak memory with 1,000 scans in flight.
//!
//! Prints servers per minute, CPU seconds per scan (each process's own, from `/proc`),
//! peak RSS, the hashes that agree on the common sample (iacscope's from `iacscope export`),
//! the ratio of rates (goal ≥ 30x) and the 1,000-in-flight peak (goal ≤ 256 MiB).
//!
//! Options: `--servers N` (default 2000), `--sample N` (default 200), `--workers N`
//! (default 20), `--per-addr K` (ports per address, default 2), `--inflight N` (default
//! 1000; 0 skips part 3). Needs `telnetlib3-fingerprint` (installed into the project venv
//! when missing, or `$IACSCOPE_PYTHON_BIN`).

use crate::util::Process;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// modem.xyz's per-scan connect timeout.
const MODEM_CONNECT_TIMEOUT: &str = "30";
/// modem.xyz starts its workers' subprocesses this far apart.
const MODEM_STAGGER: Duration = Duration::from_millis(50);
/// A Python scan that takes longer than this is killed and counted as failed.
const PY_SCAN_TIMEOUT: Duration = Duration::from_secs(120);
/// A crawl that takes longer than this is killed (the bench fails).
const CRAWL_TIMEOUT: Duration = Duration::from_secs(3600);
/// Goals from issue 10.
const GOAL_RATIO: f64 = 30.0;
const GOAL_INFLIGHT_MIB: f64 = 256.0;

struct Options {
    servers: usize,
    sample: usize,
    workers: usize,
    per_addr: usize,
    inflight: usize,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        servers: 2000,
        sample: 200,
        workers: 20,
        per_addr: 2,
        inflight: 1000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("bad {name}"))
        };
        match a.as_str() {
            "--servers" => o.servers = num("--servers")?,
            "--sample" => o.sample = num("--sample")?,
            "--workers" => o.workers = num("--workers")?,
            "--per-addr" => o.per_addr = num("--per-addr")?,
            "--inflight" => o.inflight = num("--inflight")?,
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask bench-crawl [--servers N] [--sample N] [--workers N] \
                     [--per-addr K] [--inflight N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if o.servers == 0 || o.servers > 40_000 {
        bail!("--servers must be 1 to 40000");
    }
    if o.workers == 0 || o.workers > 200 {
        bail!("--workers must be 1 to 200");
    }
    if o.per_addr == 0 {
        bail!("--per-addr must be at least 1");
    }
    o.sample = o.sample.min(o.servers);
    Ok(o)
}

/// What one measured process cost.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    wall: f64,
    /// User + system CPU seconds.
    cpu: f64,
    /// Peak resident set, KiB.
    maxrss_kib: i64,
    /// Exit code (-1 for a signal or a kill at the timeout).
    code: i32,
    /// Most open descriptors seen (sampled every 100 ms; only when asked).
    max_fds: usize,
}

/// Waits for `child`, killing it after `timeout`. Its cost is read from `/proc/<pid>`: the
/// peak RSS (`VmHWM`) while it runs, sampled every 10 ms (it only grows, so the last sample
/// before exit is what it was), and the CPU times (`stat` fields 14 and 15) once it has
/// exited but is not reaped yet (a zombie keeps its final times).
fn measure(
    mut child: Child,
    started: Instant,
    timeout: Duration,
    sample_fds: bool,
) -> Result<Cost> {
    let pid = child.id();
    let ticks = clock_ticks();
    let mut cost = Cost::default();
    let mut last_fds = Instant::now() - Duration::from_secs(1);
    let mut killed = false;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the `(comm)`, which may hold spaces: state is field 3.
        let after: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let zombie = after.first() == Some(&"Z") || stat.is_empty();
        if let (Some(u), Some(s)) = (after.get(11), after.get(12)) {
            let t = u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0);
            cost.cpu = cost.cpu.max(t / ticks);
        }
        if zombie {
            let status = child.wait()?;
            cost.wall = started.elapsed().as_secs_f64();
            cost.code = if killed {
                -1
            } else {
                status.code().unwrap_or(-1)
            };
            return Ok(cost);
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            {
                cost.maxrss_kib = cost.maxrss_kib.max(kib);
            }
        }
        if started.elapsed() > timeout && !killed {
            let _ = child.kill();
            killed = true;
        }
        if sample_fds && last_fds.elapsed() >= Duration::from_millis(100) {
            last_fds = Instant::now();
            if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                cost.max_fds = cost.max_fds.max(rd.count());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `getconf CLK_TCK` (the unit of `/proc/<pid>/stat` times), 100 when it cannot be read.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// One fake server: address, port, scenario.
#[derive(Clone, Debug)]
struct Fake {
    host: String,
    port: u16,
    scenario: String,
}

/// Entry point for `cargo xtask bench-crawl ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    let oracle = crate::tools::oracle_bin()?;
    let (target, iacscope, fake) = crate::util::build_scan_bins()?;
    let work = target.join("bench-crawl");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("py"))?;
    // Children inherit our limit: every scan holds a descriptor.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }

    eprintln!("starting {} fake servers…", opts.servers);
    let (_fake_guard, fakes) = start_fakes(&fake, &opts)?;
    let seeds = work.join("seeds.txt");
    let mut text = String::new();
    for f in &fakes {
        text.push_str(&format!("{} {} # {}\n", f.host, f.port, f.scenario));
    }
    std::fs::write(&seeds, text)?;

    // 1. iacscope crawl, default settings.
    eprintln!(
        "iacscope crawl over {} servers (default settings)…",
        fakes.len()
    );
    let store_a = work.join("store-default");
    let crawl = run_crawl(
        &iacscope,
        &seeds,
        &store_a,
        &[],
        &work.join("crawl-default.log"),
        false,
    )?;
    let ours = exported_fingerprints(&iacscope, &store_a, &work.join("export-default"))?;

    // 2. modem.xyz's method on a sample: the first servers, which cycle through the mix.
    let sample: Vec<Fake> = fakes.iter().take(opts.sample).cloned().collect();
    eprintln!(
        "telnetlib3-fingerprint, {} workers, the first {} servers…",
        opts.workers,
        sample.len()
    );
    let (py_wall, py_costs, theirs) = run_modem(&oracle, &sample, opts.workers, &work.join("py"))?;

    // 3. 1,000 scans in flight.
    let inflight = if opts.inflight > 0 {
        eprintln!(
            "iacscope crawl --concurrency {} (memory in flight)…",
            opts.inflight
        );
        let n = opts.inflight.to_string();
        let c = run_crawl(
            &iacscope,
            &seeds,
            &work.join("store-inflight"),
            &["--concurrency", &n, "--connect-rate", &n],
            &work.join("crawl-inflight.log"),
            true,
        )?;
        Some(c)
    } else {
        None
    };

    // Table.
    let n = fakes.len() as f64;
    let ours_rate = n / crawl.wall * 60.0;
    let py_n = sample.len() as f64;
    let py_rate = py_n / py_wall * 60.0;
    let py_cpu: f64 = py_costs.iter().map(|c| c.cpu).sum();
    let py_rss = py_costs.iter().map(|c| c.maxrss_kib).max().unwrap_or(0);
    let py_ok = theirs.len();
    println!();
    println!(
        "{:<34} {:>18} {:>26}",
        "",
        "iacscope crawl",
        format!("telnetlib3-fp x{}", opts.workers)
    );
    println!("{:<34} {:>18} {:>26}", "servers", fakes.len(), sample.len());
    println!(
        "{:<34} {:>18.1} {:>26.1}",
        "wall seconds", crawl.wall, py_wall
    );
    println!(
        "{:<34} {:>18.0} {:>26.0}",
        "servers / minute", ours_rate, py_rate
    );
    println!(
        "{:<34} {:>18.4} {:>26.4}",
        "CPU seconds / scan",
        crawl.cpu / n,
        py_cpu / py_n
    );
    println!(
        "{:<34} {:>18.1} {:>26}",
        "peak RSS MiB",
        mib(crawl.maxrss_kib),
        format!("{:.1} per process", mib(py_rss))
    );
    println!(
        "{:<34} {:>18} {:>26}",
        "records (fingerprints)",
        ours.len(),
        py_ok
    );
    println!("{:<34} {:>18} {:>26}", "exit code", crawl.code, "-");
    // Hashes on the common sample.
    let (mut agree, mut differ, mut only_ours, mut only_theirs) = (0, 0, 0, 0);
    let mut by_scenario: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in &sample {
        let key = (f.host.clone(), f.port);
        let e = by_scenario.entry(&f.scenario).or_default();
        match (ours.get(&key), theirs.get(&key)) {
            (Some(a), Some(b)) if a == b => {
                agree += 1;
                e.0 += 1;
            }
            (Some(_), Some(_)) => {
                differ += 1;
                e.1 += 1;
            }
            (Some(_), None) => only_ours += 1,
            (None, Some(_)) => only_theirs += 1,
            (None, None) => {}
        }
    }
    println!(
        "hashes on the sample: {agree} agree, {differ} differ, {only_ours} only iacscope, \
         {only_theirs} only telnetlib3 (of {})",
        sample.len()
    );
    for (s, (a, d)) in &by_scenario {
        println!("  {s:<20} {a} agree, {d} differ");
    }
    let ratio = ours_rate / py_rate;
    println!(
        "rate ratio iacscope / modem.xyz: {ratio:.1}x (goal >= {GOAL_RATIO}x: {})",
        if ratio >= GOAL_RATIO {
            "met"
        } else {
            "NOT MET"
        }
    );
    if let Some(c) = inflight {
        println!(
            "{} in flight: peak RSS {:.1} MiB, at most {} descriptors open, {:.0} servers/min, \
             {:.4} CPU s/scan (goal <= {GOAL_INFLIGHT_MIB} MiB: {})",
            opts.inflight,
            mib(c.maxrss_kib),
            c.max_fds,
            n / c.wall * 60.0,
            c.cpu / n,
            if mib(c.maxrss_kib) <= GOAL_INFLIGHT_MIB {
                "met"
            } else {
                "NOT MET"
            }
        );
    }
    println!(
        "logs and records: {} (crawl-*.log, export-*/, py/)",
        work.display()
    );
    Ok(())
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

/// Starts `fake-telnetd --many` and reads its listeners.
fn start_fakes(fake: &Path, opts: &Options) -> Result<(Process, Vec<Fake>)> {
    let mut child = Process(
        Command::new(fake)
            .args(["--many", &opts.servers.to_string()])
            .args(["--per-addr", &opts.per_addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting fake-telnetd --many")?,
    );
    let stdout = child.0.stdout.take().context("fake-telnetd stdout")?;
    let mut fakes = Vec::with_capacity(opts.servers);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with("ready ") {
            return Ok((child, fakes));
        }
        let mut words = line.split_whitespace();
        let (Some(host), Some(port), Some("#"), Some(scenario)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            bail!("fake-telnetd said {line:?}");
        };
        fakes.push(Fake {
            host: host.to_owned(),
            port: port.parse().with_context(|| format!("port in {line:?}"))?,
            scenario: scenario.to_owned(),
        });
    }
    bail!("fake-telnetd --many ended before `ready`")
}

/// Runs `iacscope crawl SEEDS --allow-private --data-dir STORE EXTRA…` to the end.
fn run_crawl(
    iacscope: &Path,
    seeds: &Path,
    store: &Path,
    extra: &[&str],
    log: &Path,
    sample_fds: bool,
) -> Result<Cost> {
    std::fs::create_dir_all(store)?;
    let log_file = std::fs::File::create(log)?;
    let started = Instant::now();
    let child = Command::new(iacscope)
        .arg("crawl")
        .arg(seeds)
        .arg("--allow-private")
        .arg("--data-dir")
        .arg(store)
        .args(extra)
        .env_remove("IACSCOPE_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("starting iacscope crawl")?;
    let cost = measure(child, started, CRAWL_TIMEOUT, sample_fds)?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(last) = text.lines().last() {
        eprintln!("  {last}");
    }
    if cost.code != 0 {
        bail!(
            "iacscope crawl exited with {} (see {})",
            cost.code,
            log.display()
        );
    }
    Ok(cost)
}

/// `iacscope export` of `store`, read back as (host, port) → fingerprint.
fn exported_fingerprints(
    iacscope: &Path,
    store: &Path,
    out: &Path,
) -> Result<HashMap<(String, u16), String>> {
    let status = Command::new(iacscope)
        .arg("export")
        .arg(out)
        .arg("--data-dir")
        .arg(store)
        .env_remove("IACSCOPE_DATABASE_URL")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("iacscope export failed");
    }
    let mut got = HashMap::new();
    let server = out.join("server");
    for fp_dir in std::fs::read_dir(&server).with_context(|| server.display().to_string())? {
        let fp_dir = fp_dir?.path();
        for file in std::fs::read_dir(&fp_dir)? {
            let text = std::fs::read_to_string(file?.path())?;
            let Some(fp) = fingerprint_in(&text) else {
                continue;
            };
            for key in sessions_in(&text) {
                got.insert(key, fp.clone());
            }
        }
    }
    Ok(got)
}

/// modem.xyz's census: `workers` threads, each running one `telnetlib3-fingerprint` per
/// server from a shared queue, starts at least [`MODEM_STAGGER`] apart. Returns the wall
/// time, each process's cost and (host, port) → fingerprint.
#[allow(clippy::type_complexity)]
fn run_modem(
    oracle: &Path,
    sample: &[Fake],
    workers: usize,
    out: &Path,
) -> Result<(f64, Vec<Cost>, HashMap<(String, u16), String>)> {
    let queue = Arc::new(Mutex::new(sample.iter().cloned()));
    let next_start = Arc::new(Mutex::new(Instant::now()));
    let results: Arc<Mutex<(Vec<Cost>, HashMap<(String, u16), String>)>> = Arc::default();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (queue, next_start, results) = (&queue, &next_start, &results);
            s.spawn(move || loop {
                let Some(f) = queue.lock().map(|mut q| q.next()).unwrap_or(None) else {
                    return;
                };
                // Stagger the starts across the whole pool.
                let at = {
                    let mut next = next_start.lock().unwrap_or_else(|e| e.into_inner());
                    let at = (*next).max(Instant::now());
                    *next = at + MODEM_STAGGER;
                    at
                };
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let json = out.join(format!("{}_{}.json", f.host, f.port));
                let t0 = Instant::now();
                let child = Command::new(oracle)
                    .args([&f.host, &f.port.to_string()])
                    .args(["--connect-timeout", MODEM_CONNECT_TIMEOUT, "--save-json"])
                    .arg(&json)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                let Ok(child) = child else {
                    continue;
                };
                let Ok(cost) = measure(child, t0, PY_SCAN_TIMEOUT, false) else {
                    continue;
                };
                let fp = std::fs::read_to_string(&json)
                    .ok()
                    .and_then(|t| fingerprint_in(&t));
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                r.0.push(cost);
                if let Some(fp) = fp {
                    r.1.insert((f.host.clone(), f.port), fp);
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let (costs, fps) = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((wall, costs, fps))
}

/// Pulls `"fingerprint": "…"` out of a record without a full JSON parse (records may hold
/// lone-surrogate escapes that serde_json rejects).
fn fingerprint_in(text: &str) -> Option<String> {
    let at = text.find("\"fingerprint\": \"")? + "\"fingerprint\": \"".len();
    let fp: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (!fp.is_empty()).then_some(fp)
}

/// The (host, port) of each `sessions` entry of a record (the last key of a telnetlib3
/// record, so everything after `"sessions": [` belongs to it).
fn sessions_in(text: &str) -> Vec<(String, u16)> {
    let Some(at) = text.find("\"sessions\": [") else {
        return Vec::new();
    };
    let mut rest = &text[at..];
    let mut out = Vec::new();
    while let Some(h) = rest.find("\"host\": \"") {
        rest = &rest[h + "\"host\": \"".len()..];
        let Some(end) = rest.find('"') else { break };
        let host = rest[..end].to_owned();
        let Some(p) = rest.find("\"port\": ") else {
            break;
        };
        let digits: String = rest[p + "\"port\": ".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(port) = digits.parse() {
            out.push((host, port));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sessions_and_fingerprint() {
        let rec = r#"{"fingerprint": "abc123", "x": {"host": "no"}, "sessions": [{"connected": "t", "host": "127.1.0.1", "ip": "127.1.0.1", "port": 40001}, {"host": "127.1.0.2", "port": 7}]}"#;
        assert_eq!(fingerprint_in(rec).as_deref(), Some("abc123"));
        assert_eq!(
            sessions_in(rec),
            vec![("127.1.0.1".to_owned(), 40001), ("127.1.0.2".to_owned(), 7)]
        );
        assert_eq!(fingerprint_in("{}"), None);
    }
}
