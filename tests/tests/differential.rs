//! Differential test: telnetlib3-fingerprint 5.0.1 and `iacscope scan` against the same local servers must save the same record (timing aside).
//!
//! For every scenario in `tests/scenarios.txt` (plus `telnetlib3-server`, and a few cases
//! with `--scan-type full` / `--encoding` / `--ttype`), one fake server is started on
//! 127.0.0.1:0 and both tools scan it, one after the other. Required to be equal:
//! `fingerprint`, `fingerprint-data`, `session_data` without `timing`, and `sessions[0]`
//! without `connected`. A few hostile scenarios stream data for longer than the scan, so
//! how much of it lands in the banner depends on the clock; for those the listed
//! `session_data` keys are exempt (see [`LOOSE`]).
//!
//! Tools: `telnetlib3-fingerprint` from `$IACSCOPE_PYTHON_BIN` (set by `cargo xtask test`),
//! else `<workspace>/target/py/bin`; `iacscope` from `$IACSCOPE_BIN`, else built with
//! `cargo build -p iacscope` into this test's own target dir and profile
//! (`iacscope_tests::harness::iacscope_bin`). Work files go to
//! `$CARGO_TARGET_TMPDIR/differential/<case>/`. `IACSCOPE_DIFF_CASES=mush,mush+full` runs
//! only the named cases.

use iacscope_tests::harness::{
    compare_records, fingerprint_of, iacscope_bin, python_bin_dir, sb_frames, scan_record,
    start_telnetlib3_server, ChildGuard, FakeServer,
};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// At most this many cases run at once (each case runs its two scans one after the other).
const PARALLEL: usize = 4;
/// Hard limit for one scan.
const SCAN_TIMEOUT: Duration = Duration::from_secs(90);

/// Scenarios whose banners (or states) depend on wall-clock timing, and the `session_data`
/// keys that are not compared for them. The fingerprint is still compared.
const LOOSE: &[(&str, &[&str])] = &[
    (
        "hostile-endless-banner",
        &["banner_before_return", "banner_after_return"],
    ),
    (
        "hostile-drip",
        &["banner_before_return", "banner_after_return"],
    ),
    (
        "hostile-endless-sb",
        &["banner_before_return", "banner_after_return"],
    ),
    ("hostile-iac-flood", &["option_states"]),
    // telnetlib3 starts its MCCP3 compressor only after the received chunk that held the
    // server's WILL MCCP3, so a reply it writes for a later command of that chunk goes out
    // uncompressed inside the compressed stream; whether that happens depends on how TCP
    // split the server's writes, and when it does the server cannot inflate the return and
    // the after-return banner stays empty. iacscope starts after the instant, which the
    // fake server decodes every time. The fingerprint is still compared.
    ("mccp3", &["banner_after_return"]),
];

/// Extra cases beyond "every scenario, quick scan".
const EXTRA: &[(&str, &[&str])] = &[
    ("silent", &["--scan-type", "full"]),
    ("mush", &["--scan-type", "full"]),
    ("mush", &["--ttype", "xterm-256color"]),
    ("bbs-cp437", &["--encoding", "cp437"]),
    ("utf8-menu", &["--encoding", "utf-8"]),
    // Issue 11: answers that land between telnetlib3's poll ticks, quick and full.
    ("serial-do-echo", &["--scan-type", "full"]),
    ("tick-retract", &["--scan-type", "full"]),
];

/// `IACSCOPE_DIFF_CASES=label,label`: run only these cases (while working on one server).
const ONLY_ENV: &str = "IACSCOPE_DIFF_CASES";

const TELNETLIB3_SERVER: &str = "telnetlib3-server";

/// The scenario whose LINEMODE sub-negotiations are also compared byte for byte.
const SLC_SCENARIO: &str = "linemode-slc-reply";
/// Telnet option LINEMODE.
const LINEMODE: u8 = 34;

#[derive(Clone)]
struct Case {
    label: String,
    server: String,
    args: Vec<String>,
}

struct Outcome {
    label: String,
    oracle_fp: String,
    ours_fp: String,
    oracle_secs: f64,
    ours_secs: f64,
    diffs: Vec<String>,
}

fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = iacscope_tests::scenarios()
        .into_iter()
        .map(|s| Case {
            label: s.name.clone(),
            server: s.name,
            args: vec![],
        })
        .collect();
    out.push(Case {
        label: TELNETLIB3_SERVER.into(),
        server: TELNETLIB3_SERVER.into(),
        args: vec![],
    });
    out.push(Case {
        label: format!("{TELNETLIB3_SERVER}+full"),
        server: TELNETLIB3_SERVER.into(),
        args: vec!["--scan-type".into(), "full".into()],
    });
    for (server, args) in EXTRA {
        let label = format!("{server}+{}", args[1]);
        out.push(Case {
            label,
            server: server.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
    }
    out
}

/// Runs one tool; returns (wall seconds, record or error text).
fn scan(
    tool: &Path,
    port: u16,
    args: &[String],
    json: &Path,
    log: &Path,
) -> (f64, Result<serde_json::Value, String>) {
    scan_record(tool, port, args, json, log, SCAN_TIMEOUT)
}

fn run_case(case: &Case, python: &Path, iacscope: &Path, work: &Path) -> Outcome {
    let dir = work.join(&case.label);
    let _ = std::fs::create_dir_all(&dir);
    let mut out = Outcome {
        label: case.label.clone(),
        oracle_fp: "-".into(),
        ours_fp: "-".into(),
        oracle_secs: 0.0,
        ours_secs: 0.0,
        diffs: vec![],
    };
    // Keep whichever server guard alive for the whole case; both are stopped on drop.
    let mut _fake: Option<FakeServer> = None;
    let mut _child: Option<ChildGuard> = None;
    let port = if case.server == TELNETLIB3_SERVER {
        match start_telnetlib3_server(python, &dir.join("server.log")) {
            Ok((guard, port)) => {
                _child = Some(guard);
                port
            }
            Err(e) => {
                out.diffs
                    .push(format!("cannot start telnetlib3-server: {e:#}"));
                return out;
            }
        }
    } else {
        let scenario = iacscope_tests::scenario(&case.server).expect("scenario exists");
        match FakeServer::start(scenario) {
            Ok(s) => {
                let p = s.port();
                _fake = Some(s);
                p
            }
            Err(e) => {
                out.diffs.push(format!("cannot start fake server: {e:#}"));
                return out;
            }
        }
    };
    let mut oracle_args = case.args.clone();
    oracle_args.extend([
        "--loglevel=debug".into(),
        "--logfile".into(),
        dir.join("oracle-debug.log").display().to_string(),
    ]);
    let (osecs, oracle) = scan(
        &python.join("telnetlib3-fingerprint"),
        port,
        &oracle_args,
        &dir.join("oracle.json"),
        &dir.join("oracle.stderr"),
    );
    let (isecs, ours) = scan(
        iacscope,
        port,
        &case.args,
        &dir.join("iacscope.json"),
        &dir.join("iacscope.stderr"),
    );
    out.oracle_secs = osecs;
    out.ours_secs = isecs;
    match (&oracle, &ours) {
        (Ok(a), Ok(b)) => {
            out.oracle_fp = fingerprint_of(a).unwrap_or("?").into();
            out.ours_fp = fingerprint_of(b).unwrap_or("?").into();
            let loose = LOOSE
                .iter()
                .find(|(n, _)| *n == case.server)
                .map_or(&[][..], |(_, k)| *k);
            out.diffs = compare_records(a, b)
                .into_iter()
                .filter(|d| {
                    !loose
                        .iter()
                        .any(|k| d.starts_with(&format!("/server-probe/session_data/{k}")))
                })
                .collect();
        }
        (a, b) => {
            if let Err(e) = a {
                out.diffs
                    .push(format!("telnetlib3-fingerprint failed: {e}"));
            }
            if let Err(e) = b {
                out.diffs.push(format!("iacscope scan failed: {e}"));
            }
        }
    }
    out
}

#[test]
fn iacscope_scan_matches_telnetlib3_fingerprint() {
    let python = python_bin_dir().unwrap_or_else(|e| panic!("{e:#}"));
    let iacscope: PathBuf = iacscope_bin().unwrap_or_else(|e| {
        panic!("cannot get the iacscope binary: {e:#}\n(`iacscope scan HOST PORT --save-json PATH` must exist for this test)")
    });
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
    let only: Option<Vec<String>> = std::env::var(ONLY_ENV)
        .ok()
        .map(|v| v.split(',').map(|l| l.trim().to_owned()).collect());
    let chosen: VecDeque<Case> = cases()
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.contains(&c.label)))
        .collect();
    assert!(!chosen.is_empty(), "{ONLY_ENV} names no case");
    let queue = Mutex::new(chosen);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let outcome = run_case(&case, &python, &iacscope, &work);
                results.lock().unwrap().push(outcome);
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.label.cmp(&b.label));
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<32} {:<17} {:<17} {:<5} {:>8} {:>8}",
        "case", "telnetlib3", "iacscope", "match", "py s", "rs s"
    );
    for r in &results {
        let _ = writeln!(
            table,
            "{:<32} {:<17} {:<17} {:<5} {:>8.2} {:>8.2}",
            r.label,
            r.oracle_fp,
            r.ours_fp,
            if r.diffs.is_empty() { "yes" } else { "NO" },
            r.oracle_secs,
            r.ours_secs
        );
    }
    println!("{table}");
    let failed: Vec<_> = results.iter().filter(|r| !r.diffs.is_empty()).collect();
    if !failed.is_empty() {
        let mut msg = format!(
            "{} of {} cases differ (work files in {}):\n{table}\n",
            failed.len(),
            results.len(),
            work.display()
        );
        for r in failed {
            let _ = writeln!(msg, "== {}", r.label);
            for d in r.diffs.iter().take(20) {
                let _ = writeln!(msg, "   {d}");
            }
            if r.diffs.len() > 20 {
                let _ = writeln!(msg, "   … {} more", r.diffs.len() - 20);
            }
        }
        panic!("{msg}");
    }
}

/// Hex of a byte string, for messages and the record of what telnetlib3 sent.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client's LINEMODE sub-negotiations (initial SLC request and SLC replies) must be the
/// same bytes from both tools, and so must the records. The fake server captures what each
/// connection sends; both scans use the same server, one after the other.
#[test]
fn linemode_slc_replies_match_telnetlib3_byte_for_byte() {
    let python = python_bin_dir().unwrap_or_else(|e| panic!("{e:#}"));
    let iacscope: PathBuf = iacscope_bin().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("differential")
        .join(format!("{SLC_SCENARIO}-bytes"));
    std::fs::create_dir_all(&dir).expect("work dir");
    let scenario = iacscope_tests::scenario(SLC_SCENARIO).expect("scenario exists");
    let server = FakeServer::start_capturing(scenario).expect("fake server");
    let frames_from = |first: usize| -> Vec<Vec<u8>> {
        server.received()[first..]
            .iter()
            .flat_map(|conn| sb_frames(conn, LINEMODE))
            .collect()
    };
    let (_, oracle) = scan(
        &python.join("telnetlib3-fingerprint"),
        server.port(),
        &[],
        &dir.join("oracle.json"),
        &dir.join("oracle.stderr"),
    );
    let oracle_conns = server.received().len();
    let (_, ours) = scan(
        &iacscope,
        server.port(),
        &[],
        &dir.join("iacscope.json"),
        &dir.join("iacscope.stderr"),
    );
    let oracle = oracle.unwrap_or_else(|e| panic!("telnetlib3-fingerprint failed: {e}"));
    let ours = ours.unwrap_or_else(|e| panic!("iacscope scan failed: {e}"));
    let theirs: Vec<Vec<u8>> = server.received()[..oracle_conns]
        .iter()
        .flat_map(|conn| sb_frames(conn, LINEMODE))
        .collect();
    let mine = frames_from(oracle_conns);
    let listing = |f: &[Vec<u8>]| f.iter().map(|b| hex(b)).collect::<Vec<_>>().join("\n");
    let _ = std::fs::write(dir.join("oracle-linemode.hex"), listing(&theirs));
    let _ = std::fs::write(dir.join("iacscope-linemode.hex"), listing(&mine));
    assert!(
        theirs.len() >= 4,
        "telnetlib3 sent too few LINEMODE sub-negotiations:\n{}",
        listing(&theirs)
    );
    assert_eq!(
        listing(&mine),
        listing(&theirs),
        "LINEMODE sub-negotiations differ (left iacscope, right telnetlib3)"
    );
    let diffs = compare_records(&oracle, &ours);
    assert!(diffs.is_empty(), "records differ: {diffs:#?}");
}
