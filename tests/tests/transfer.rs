//! Round trip of `iacscope import` / `iacscope export` against telnetlib3-fingerprint's own data directory.
//!
//! telnetlib3-fingerprint 5.0.1 (from the venv, see `harness::python_bin_dir`) scans three
//! local fake servers with `--data-dir`: two serve the same scenario (`mush`, so they share
//! a fingerprint) and one of them is scanned twice (its file's `sessions` list has two
//! entries); the third serves `invalid-utf8` (lone surrogates in the banner). That directory,
//! plus a corrupt file and an oversized one, is imported into a fresh store; the export of
//! that store must hold exactly telnetlib3's files, byte for byte. A second import adds
//! nothing, an export into a non-empty directory needs `--merge` (and then changes nothing),
//! and `iacscope serve` on that store lists the imported scans under the fingerprint and the
//! server.
//!
//! Work files go to `$CARGO_TARGET_TMPDIR/transfer/`. Everything listens on 127.0.0.1 and
//! every process is killed on drop.

use anyhow::{bail, ensure, Context, Result};
use iacscope_tests::harness::{
    iacscope_bin, python_bin_dir, run_with_timeout, start_on_free_port, ChildGuard, FakeServer,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Hard limit for one telnetlib3 scan.
const SCAN_TIMEOUT: Duration = Duration::from_secs(90);
/// Hard limit for one HTTP request to `iacscope serve`.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest file `iacscope import` reads (`iacscope::transfer::MAX_FILE_BYTES`).
const IMPORT_MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// Store settings the children must not inherit (the test picks its own store).
const STORE_ENV: &[&str] = &["IACSCOPE_DATABASE_URL", "IACSCOPE_DATA_DIR"];

/// Runs telnetlib3-fingerprint against 127.0.0.1:`port`, saving into `data`.
fn telnetlib3_scan(python: &Path, port: u16, data: &Path, log: &Path) -> Result<()> {
    let logf = std::fs::File::create(log)?;
    let mut cmd = Command::new(python.join("telnetlib3-fingerprint"));
    cmd.args(["127.0.0.1", &port.to_string(), "--data-dir"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf);
    let run = run_with_timeout(&mut cmd, SCAN_TIMEOUT)?;
    match run.status {
        Some(s) if s.success() => Ok(()),
        Some(s) => bail!("telnetlib3-fingerprint exited {s}; log {}", log.display()),
        None => bail!("telnetlib3-fingerprint timed out; log {}", log.display()),
    }
}

/// `server/<fp>/<session>.json` (relative path) → file bytes, for every file under `dir`.
fn files(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let server = dir.join("server");
    for fp in std::fs::read_dir(&server).with_context(|| server.display().to_string())? {
        let fp = fp?.path();
        for f in std::fs::read_dir(&fp)? {
            let f = f?.path();
            out.insert(f.strip_prefix(dir)?.to_owned(), std::fs::read(&f)?);
        }
    }
    Ok(out)
}

/// Runs `iacscope` with `args` on the store in `store`.
fn iacscope(bin: &Path, args: &[&str], dir: &Path, store: &Path) -> Result<Output> {
    let mut cmd = Command::new(bin);
    cmd.args(args).arg(dir).arg("--data-dir").arg(store);
    for v in STORE_ENV {
        cmd.env_remove(v);
    }
    cmd.output()
        .with_context(|| format!("running iacscope {args:?}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `GET path` on 127.0.0.1:`port`; the JSON body of a 200 reply.
fn get_json(port: u16, path: &str) -> Result<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    let reply = text(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").context("no header end")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}\n{body}"
    );
    ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "GET {path}: chunked reply"
    );
    serde_json::from_str(body).with_context(|| format!("GET {path}: {body}"))
}

/// `iacscope serve` on the store, on a free loopback port.
fn start_serve(bin: &Path, store: &Path) -> Result<(ChildGuard, u16)> {
    start_on_free_port("iacscope serve", |port| {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(store)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--allow-private"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for v in STORE_ENV {
            cmd.env_remove(v);
        }
        Ok(cmd)
    })
}

/// The fingerprint folder and session file name of `rel` (`server/<fp>/<sh>.json`).
fn parts(rel: &Path) -> (String, String) {
    let name = |p: Option<&std::ffi::OsStr>| p.map(|n| n.to_string_lossy().into_owned());
    (
        name(rel.parent().and_then(Path::file_name)).unwrap_or_default(),
        name(rel.file_stem()).unwrap_or_default(),
    )
}

#[test]
fn import_export_round_trip_against_telnetlib3() -> Result<()> {
    let python = python_bin_dir()?;
    let bin = iacscope_bin()?;
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transfer");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let tl3 = work.join("telnetlib3");

    let mush = iacscope_tests::scenario("mush").context("scenario mush")?;
    let utf8 = iacscope_tests::scenario("invalid-utf8").context("scenario invalid-utf8")?;
    let (a, b, c) = (
        FakeServer::start(mush.clone())?,
        FakeServer::start(mush)?,
        FakeServer::start(utf8)?,
    );
    // `a` twice (one after the other), `b` and `c` meanwhile.
    std::thread::scope(|s| -> Result<()> {
        let twice = s.spawn(|| -> Result<()> {
            telnetlib3_scan(&python, a.port(), &tl3, &work.join("a1.log"))?;
            telnetlib3_scan(&python, a.port(), &tl3, &work.join("a2.log"))
        });
        let once_b = s.spawn(|| telnetlib3_scan(&python, b.port(), &tl3, &work.join("b.log")));
        let once_c = s.spawn(|| telnetlib3_scan(&python, c.port(), &tl3, &work.join("c.log")));
        for h in [twice, once_b, once_c] {
            h.join()
                .map_err(|_| anyhow::anyhow!("scan thread panicked"))??;
        }
        Ok(())
    })?;
    let original = files(&tl3)?;
    ensure!(
        original.len() == 3,
        "telnetlib3 wrote {:?}",
        original.keys()
    );
    let mut by_fp: BTreeMap<String, usize> = BTreeMap::new();
    let mut sessions = Vec::new();
    for (rel, bytes) in &original {
        *by_fp.entry(parts(rel).0).or_default() += 1;
        let rec: Value = serde_json::from_str(&iacscope_tests::harness::escape_lone_surrogates(
            &text(bytes),
        ))?;
        sessions.push(rec["sessions"].as_array().map_or(0, Vec::len));
    }
    sessions.sort();
    assert_eq!(sessions, [1, 1, 2], "one server scanned twice");
    let shared_fp = by_fp
        .iter()
        .find(|(_, n)| **n == 2)
        .map(|(fp, _)| fp.clone())
        .context(format!("two servers share a fingerprint: {by_fp:?}"))?;

    // The import source: telnetlib3's files plus a corrupt and an oversized one.
    let src = work.join("src");
    for (rel, bytes) in &original {
        std::fs::create_dir_all(src.join(rel).parent().context("parent")?)?;
        std::fs::write(src.join(rel), bytes)?;
    }
    let folder = src.join("server").join(&shared_fp);
    std::fs::write(folder.join("0000000000000000.json"), b"{\"server-probe\": ")?;
    std::fs::write(
        folder.join("1111111111111111.json"),
        vec![b' '; IMPORT_MAX_FILE_BYTES + 1],
    )?;

    let store = work.join("store");
    let out = iacscope(&bin, &["import"], &src, &store)?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "import failed: {stdout}{stderr}");
    assert!(
        stdout.contains("imported 3 files: 4 scans added, 0 already present, 2 skipped"),
        "{stdout}"
    );
    assert!(
        stderr.contains("0000000000000000.json: invalid record: not JSON"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1111111111111111.json: too large"),
        "{stderr}"
    );

    let again = iacscope(&bin, &["import"], &src, &store)?;
    assert!(
        text(&again.stdout).contains("0 scans added, 4 already present"),
        "re-import: {}",
        text(&again.stdout)
    );

    let exported = work.join("exported");
    let out = iacscope(&bin, &["export"], &exported, &store)?;
    assert!(out.status.success(), "export failed: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("exported 4 scans: 3 files written"),
        "{}",
        text(&out.stdout)
    );
    let back = files(&exported)?;
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        original.keys().collect::<Vec<_>>()
    );
    for (rel, bytes) in &original {
        assert!(
            back[rel] == *bytes,
            "{} differs from telnetlib3's",
            rel.display()
        );
    }

    let refused = iacscope(&bin, &["export"], &exported, &store)?;
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--merge"));
    let merged = iacscope(&bin, &["export", "--merge"], &exported, &store)?;
    assert!(
        text(&merged.stdout).contains("0 files written, 3 unchanged"),
        "{}",
        text(&merged.stdout)
    );
    assert_eq!(files(&exported)?, original);

    // The directory API sees the imported scans.
    let (_serve, http) = start_serve(&bin, &store)?;
    let shared = get_json(http, &format!("/api/fingerprints/{shared_fp}"))?;
    let mut ports: Vec<u64> = shared["servers"]
        .as_array()
        .context("servers")?
        .iter()
        .filter_map(|s| s["port"].as_u64())
        .collect();
    ports.sort();
    let mut want = vec![u64::from(a.port()), u64::from(b.port())];
    want.sort();
    assert_eq!(ports, want, "{shared}");
    let history = get_json(http, &format!("/api/servers/127.0.0.1/{}", a.port()))?;
    let scans = history["scans"].as_array().context("scans")?;
    assert_eq!(scans.len(), 2, "{history}");
    // The file's `session_data` (MSSP included) is the latest scan's.
    assert_eq!(scans[0]["players"], Value::Null, "{history}");
    assert_eq!(scans[1]["players"], "3", "{history}");
    assert_eq!(
        history["name"], "FakeMUSH",
        "the latest scan's MSSP name: {history}"
    );
    let id = scans[1]["id"].as_str().context("id")?;
    let summary = get_json(http, &format!("/api/scans/{id}/summary"))?;
    assert_eq!(summary["source"], "import", "{summary}");
    assert_eq!(summary["shared_by"], 1, "one other server: {summary}");
    assert_eq!(summary["name"], "FakeMUSH", "{summary}");
    assert_eq!(summary["fingerprint"].as_str(), Some(shared_fp.as_str()));
    let record = get_json(http, &format!("/api/scans/{id}"))?;
    assert_eq!(record["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        record["server-probe"]["fingerprint"].as_str(),
        Some(shared_fp.as_str())
    );
    Ok(())
}
