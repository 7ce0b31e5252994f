//! `cargo xtask bench-scan`: wall-time comparison of `iacscope scan` and `telnetlib3-fingerprint` against local fake servers (loopback only).
//!
//! Builds `iacscope` and `fake-telnetd` in release mode, starts one `fake-telnetd` per
//! scenario (and a `telnetlib3-server`) on 127.0.0.1, and scans each server N times with
//! each tool, alternating. Prints per server the median wall time of each tool, the ratio
//! iacscope / telnetlib3 and whether the fingerprints agree, then the median ratio.
//!
//! Options: `-n N` (runs per tool and server, default 3), `--scenarios a,b,…`
//! (default: a representative set), `--all` (every scenario in tests/scenarios.txt),
//! `--baseline BIN` (another `iacscope` build, e.g. of the previous commit, scanned in the
//! same rotation: its median and the ratio this build / baseline are added, so the cost of
//! an engine change is measured in the same run).
//! Needs `target/py/bin/telnetlib3-fingerprint` (or `$IACSCOPE_PYTHON_BIN`).

use crate::util::Process;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Servers benchmarked when no `--scenarios`/`--all` is given.
const DEFAULT_SERVERS: &[&str] = &[
    "telnetlib3-server",
    "silent",
    "mush",
    "weird",
    "close",
    "naive",
    "bbs-cp437",
    "slow-300",
    "banner-pieces",
    "utf8-menu",
];
const TELNETLIB3_SERVER: &str = "telnetlib3-server";
/// Hard limit for one scan.
const SCAN_TIMEOUT: Duration = Duration::from_secs(90);

struct Options {
    runs: usize,
    servers: Vec<String>,
    baseline: Option<PathBuf>,
}

fn parse_args(args: &[String], root: &Path) -> Result<Options> {
    let mut runs = 3;
    let mut servers: Vec<String> = DEFAULT_SERVERS.iter().map(|s| s.to_string()).collect();
    let mut baseline = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--baseline" => {
                let bin = PathBuf::from(it.next().context("--baseline needs a binary")?);
                if !bin.is_file() {
                    bail!("--baseline {}: no such file", bin.display());
                }
                baseline = Some(bin);
            }
            "-n" | "--runs" => {
                runs = it
                    .next()
                    .context("-n needs a number")?
                    .parse()
                    .context("bad -n")?
            }
            "--scenarios" => {
                servers = it
                    .next()
                    .context("--scenarios needs a list")?
                    .split(',')
                    .map(str::to_string)
                    .collect();
            }
            "--all" => {
                let text = std::fs::read_to_string(root.join("tests/scenarios.txt"))?;
                servers = std::iter::once(TELNETLIB3_SERVER.to_string())
                    .chain(
                        text.lines()
                            .filter_map(|l| l.strip_prefix("scenario "))
                            .map(|n| n.trim().to_string()),
                    )
                    .collect();
            }
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask bench-scan [-n RUNS] [--scenarios a,b,...|--all] \
                     [--baseline IACSCOPE_BIN]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if runs == 0 {
        bail!("-n must be at least 1");
    }
    Ok(Options {
        runs,
        servers,
        baseline,
    })
}

/// Entry point for `cargo xtask bench-scan ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let opts = parse_args(args, &root)?;
    let oracle = crate::tools::oracle_bin()?;
    let (target, iacscope, fake) = crate::util::build_scan_bins()?;
    let work = target.join("bench-scan");
    std::fs::create_dir_all(&work)?;

    println!(
        "{:<24} {:>10} {:>10} {:>7} {:>10} {:>8}  {:<17} {:<17} same",
        "server",
        "iacscope s",
        "python s",
        "ratio",
        "base s",
        "vs base",
        "iacscope fp",
        "python fp"
    );
    let mut ratios = Vec::new();
    let mut base_ratios = Vec::new();
    let mut all_same = true;
    for server in &opts.servers {
        let (_guard, port) = if server == TELNETLIB3_SERVER {
            start_telnetlib3_server(oracle.parent().context("the oracle's directory")?, &work)?
        } else {
            start_fake(&fake, server)?
        };
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut base = Vec::new();
        let (mut ours_fp, mut theirs_fp) = (Vec::new(), Vec::new());
        // 0 = this build, 1 = telnetlib3, 2 = the baseline build.
        let tools: &[usize] = if opts.baseline.is_some() {
            &[0, 1, 2]
        } else {
            &[0, 1]
        };
        for i in 0..opts.runs {
            // Rotate which tool goes first, so none always meets a "warm" server.
            for k in 0..tools.len() {
                let tool = tools[(i + k) % tools.len()];
                let json = work.join(format!("{server}-{tool}.json"));
                let (secs, fp) = match (tool, &opts.baseline) {
                    (0, _) => time_scan(&iacscope, Some("scan"), port, &json)?,
                    (2, Some(b)) => time_scan(b, Some("scan"), port, &json)?,
                    _ => time_scan(&oracle, None, port, &json)?,
                };
                // The baseline's hash is not checked: it may be the build being fixed.
                match tool {
                    0 => {
                        ours.push(secs);
                        ours_fp.push(fp);
                    }
                    1 => {
                        theirs.push(secs);
                        theirs_fp.push(fp);
                    }
                    _ => base.push(secs),
                }
            }
        }
        let (mo, mt) = (median(&mut ours), median(&mut theirs));
        let ratio = if mt > 0.0 { mo / mt } else { f64::NAN };
        ratios.push(ratio);
        let (base_col, vs_base) = if base.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            let mb = median(&mut base);
            base_ratios.push(mo / mb);
            (format!("{mb:.2}"), format!("{:.3}", mo / mb))
        };
        let same = ours_fp.iter().chain(&theirs_fp).all(|f| f == &theirs_fp[0]);
        all_same &= same;
        println!(
            "{:<24} {:>10.2} {:>10.2} {:>7.3} {:>10} {:>8}  {:<17} {:<17} {}",
            server,
            mo,
            mt,
            ratio,
            base_col,
            vs_base,
            ours_fp[0],
            theirs_fp[0],
            if same { "yes" } else { "NO" }
        );
    }
    println!(
        "median ratio (iacscope / telnetlib3) over {} servers: {:.3}",
        ratios.len(),
        median(&mut ratios)
    );
    if !base_ratios.is_empty() {
        println!(
            "median ratio (iacscope / baseline) over {} servers: {:.3}",
            base_ratios.len(),
            median(&mut base_ratios)
        );
    }
    if !all_same {
        println!(
            "note: some fingerprints differ (see the table); records are in {}",
            work.display()
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs one scan; returns (wall seconds, fingerprint or a short error tag).
fn time_scan(tool: &Path, sub: Option<&str>, port: u16, json: &Path) -> Result<(f64, String)> {
    let _ = std::fs::remove_file(json);
    let mut cmd = Command::new(tool);
    if let Some(s) = sub {
        cmd.arg(s);
    }
    cmd.args(["127.0.0.1", &port.to_string(), "--save-json"])
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = Process(
        cmd.spawn()
            .with_context(|| format!("spawning {}", tool.display()))?,
    );
    let status = loop {
        if let Some(st) = child.0.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > SCAN_TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let fp = match status {
        None => "timeout".to_string(),
        Some(st) if !st.success() => format!("exit-{}", st.code().unwrap_or(-1)),
        Some(_) => std::fs::read_to_string(json)
            .ok()
            .and_then(|t| fingerprint_in(&t))
            .unwrap_or_else(|| "no-record".to_string()),
    };
    Ok((secs, fp))
}

/// Pulls `"fingerprint": "…"` out of a record without a full JSON parse (records may hold
/// lone-surrogate escapes that serde_json rejects).
fn fingerprint_in(text: &str) -> Option<String> {
    let at = text.find("\"fingerprint\": \"")? + "\"fingerprint\": \"".len();
    Some(
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect(),
    )
}

fn start_fake(fake: &Path, scenario: &str) -> Result<(Process, u16)> {
    let mut child = Process(
        Command::new(fake)
            .args(["--scenario", scenario])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting fake-telnetd")?,
    );
    let stdout = child.0.stdout.take().context("fake-telnetd stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening ")
        .with_context(|| format!("fake-telnetd --scenario {scenario} said {line:?}"))?
        .parse()?;
    if !addr.ip().is_loopback() {
        bail!("fake-telnetd bound {addr}, not loopback");
    }
    Ok((child, addr.port()))
}

fn start_telnetlib3_server(python: &Path, work: &Path) -> Result<(Process, u16)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(work.join("telnetlib3-server.log"))?;
    let guard = Process(
        Command::new(python.join("telnetlib3-server"))
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting telnetlib3-server")?,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("telnetlib3-server did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((guard, port))
}
