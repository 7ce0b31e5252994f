//! `iacscope crawl` end to end: the real binary crawls fake telnet servers on loopback
//! (127.0.0.x, one address per server, so the one-scan-per-address rule does not serialise
//! them) from every seed format. Checked: each stored record equals `iacscope scan`'s record
//! of the same server (fingerprint, and the record minus timing), each server is connected
//! to once however often it is listed, bad lines are reported with `file:line`, a refused
//! port, an unresolvable name and a policy refusal end as stored failures with their reason,
//! TLS servers record whether their certificate verified, and a crawl stopped early (by
//! `--limit`, or Ctrl-C) resumes without scanning a finished server again. Loopback only.

mod common;

use common::*;
use iacscope::directory::db::{Db, HistoryPoint, OUTCOME_OK};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

/// A fake MUD: connections counted; see [`mud_session`].
struct Mud {
    ip: &'static str,
    port: u16,
    connections: Arc<AtomicUsize>,
    /// While set, connections are held silent (a scan runs its full windows).
    silent: Arc<AtomicBool>,
}

impl Mud {
    fn line(&self) -> String {
        format!("{} {}", self.ip, self.port)
    }

    fn count(&self) -> usize {
        self.connections.load(SeqCst)
    }
}

/// Starts a fake MUD on `ip` (any 127.x address binds without setup).
async fn mud(ip: &'static str, name: &'static str) -> Mud {
    let l = TcpListener::bind((ip, 0)).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let silent = Arc::new(AtomicBool::new(false));
    let (c, s) = (connections.clone(), silent.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            c.fetch_add(1, SeqCst);
            let quiet = s.load(SeqCst);
            tokio::spawn(mud_session(sock, name, quiet));
        }
    });
    Mud {
        ip,
        port,
        connections,
        silent,
    }
}

/// Starts `n` fake MUDs on one address (`ip`), counting how many of their connections are
/// open at once (the most in `peak`).
async fn muds_on_one_address(ip: &'static str, n: usize, peak: Arc<AtomicUsize>) -> Vec<Mud> {
    let open = Arc::new(AtomicUsize::new(0));
    let mut out = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind((ip, 0)).await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let (c, open, peak) = (connections.clone(), open.clone(), peak.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                c.fetch_add(1, SeqCst);
                let now = open.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    mud_session(sock, "Shared", false).await;
                    open.fetch_sub(1, SeqCst);
                });
            }
        });
        out.push(Mud {
            ip,
            port,
            connections,
            silent: Arc::new(AtomicBool::new(false)),
        });
    }
    out
}

/// Offers ECHO and SGA, sends a banner naming the MUD and closes 800 ms later (inside the
/// engine's first banner window, so every scan sees the same); `quiet`: says nothing and
/// holds the connection until the client closes it.
async fn mud_session<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, name: &str, quiet: bool) {
    let mut buf = [0u8; 1024];
    if quiet {
        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        return;
    }
    let mut hello = b"\xff\xfb\x01\xff\xfb\x03".to_vec();
    hello.extend_from_slice(format!("Welcome to {name}!\r\nBy what name? ").as_bytes());
    let _ = s.write_all(&hello).await;
    let stop = tokio::time::sleep(Duration::from_millis(800));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
            () = &mut stop => break,
        }
    }
    let _ = s.shutdown().await;
}

/// A fresh directory for one test's files.
fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iacscope-crawl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The binary with `COLORTERM` unset (scan records it, a crawl never sends it).
fn iacscope() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iacscope"));
    c.env_remove("COLORTERM")
        .env_remove("IACSCOPE_ALLOW_PRIVATE")
        .env_remove("IACSCOPE_DATABASE_URL")
        .env_remove("TELNETLIB3_DATA_DIR")
        .kill_on_drop(true);
    c
}

/// Runs `iacscope crawl --data-dir DATA ARGS…`; returns the exit status and stderr.
async fn crawl(data: &Path, args: &[&str]) -> (i32, String) {
    let out = tokio::time::timeout(
        LIMIT,
        iacscope()
            .arg("crawl")
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("crawl in time")
    .expect("run crawl");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// `iacscope scan HOST PORT --json` (optionally saving into a telnetlib3 data directory).
async fn scan_record(m: &Mud, data_dir: Option<&Path>) -> Value {
    let mut c = iacscope();
    c.args(["scan", m.ip, &m.port.to_string(), "--json"]);
    if let Some(d) = data_dir {
        c.arg("--data-dir").arg(d);
    }
    let out = tokio::time::timeout(LIMIT, c.output())
        .await
        .expect("scan in time")
        .expect("run scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scan JSON")
}

/// A record minus what depends on the moment: `session_data.timing`, `sessions[].connected`.
fn comparable(record: &Value) -> Value {
    let mut v = record.clone();
    if let Some(sd) = v
        .pointer_mut("/server-probe/session_data")
        .and_then(Value::as_object_mut)
    {
        sd.remove("timing");
    }
    for s in v
        .get_mut("sessions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(o) = s.as_object_mut() {
            o.remove("connected");
        }
    }
    v
}

fn store(data: &Path) -> Db {
    Db::open(&data.join(iacscope::serve::DB_FILE)).expect("store")
}

/// Sends `signal` (`INT`, `KILL`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Waits (polling, within [`LIMIT`]) until `done` holds; `what` names it when it never does.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(LIMIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting: {what}");
}

/// Crawls a list of one server, `ip port`, in a fresh store in `dir`; its history points.
async fn crawl_one(dir: &Path, ip: &str, port: u16) -> Vec<HistoryPoint> {
    let data = dir.join("data");
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("{ip} {port}\n")).expect("write");
    let (code, err) = crawl(&data, &["--allow-private", list.to_str().expect("path")]).await;
    assert_eq!(code, 0, "{err}");
    history(&store(&data), ip, port)
}

/// The history points of `ip:port`, newest first.
fn history(db: &Db, ip: &str, port: u16) -> Vec<HistoryPoint> {
    db.history(ip, port).expect("history")
}

/// The server's one history point, which must be a stored scan whose record equals
/// `expected` (minus timing); returns the scan id.
fn assert_stored_like(db: &Db, m: &Mud, expected: &Value) -> String {
    let points = history(db, m.ip, m.port);
    assert_eq!(points.len(), 1, "{}: {points:?}", m.line());
    let p = &points[0];
    assert_eq!(p.outcome, OUTCOME_OK, "{p:?}");
    let id = p.scan_id.clone().expect("scan id");
    let text = db.record(&id).expect("read").expect("record stored");
    let stored: Value = serde_json::from_str(&text).expect("record JSON");
    assert_eq!(
        stored.pointer("/server-probe/fingerprint"),
        expected.pointer("/server-probe/fingerprint"),
        "fingerprint of {}",
        m.line()
    );
    assert_eq!(
        comparable(&stored),
        comparable(expected),
        "record of {}",
        m.line()
    );
    assert!(
        db.transcript(&id)
            .expect("read")
            .is_some_and(|t| !t.is_empty()),
        "a crawled scan keeps its transcript (replayable at /s/<id>)"
    );
    id
}

/// A plain list: records equal `iacscope scan`'s, duplicates scanned once, bad lines
/// reported with their line, a refused port and an unresolvable name stored as failures.
#[tokio::test]
async fn plain_list_stores_what_scan_records() {
    let dir = workdir("plain");
    let data = dir.join("data");
    let a = mud("127.0.0.11", "Alpha").await;
    let b = mud("127.0.0.12", "Beta").await;
    let c = mud("127.0.0.13", "Gamma").await;
    let refused = {
        let l = TcpListener::bind("127.0.0.14:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let list = dir.join("servers.txt");
    std::fs::write(
        &list,
        format!(
            "# three MUDs, one twice\n{}\n{} ascii\n\n{}   # again\n{}\nonly-a-host\n\
             127.0.0.14 {refused}\nnonexistent.invalid 4000\n{} twinkle\n",
            a.line(),
            b.line(),
            a.line(),
            c.line(),
            c.line()
        ),
    )
    .expect("write list");
    let (code, err) = crawl(
        &data,
        &[
            "--allow-private",
            "--retries",
            "1",
            "--retry-backoff",
            "0.05",
            list.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let name = list.display().to_string();
    assert!(
        err.contains(&format!("{name}:7: `only-a-host` has no port")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:10: unknown keyword `twinkle` ignored")),
        "{err}"
    );
    assert!(
        err.contains("5 servers (2 duplicates and 1 unreadable"),
        "{err}"
    );
    assert!(err.contains("3 stored, 2 failed"), "{err}");
    for m in [&a, &b, &c] {
        assert_eq!(m.count(), 1, "{} scanned once", m.line());
    }
    let db = store(&data);
    for m in [&a, &b, &c] {
        let expected = scan_record(m, None).await;
        assert_stored_like(&db, m, &expected);
    }
    let p = history(&db, "127.0.0.14", refused);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].outcome.as_str(), p[0].scan_id.as_deref()),
        ("connection_refused", None)
    );
    let p = history(&db, "nonexistent.invalid", 4000);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].outcome, "dns_failure", "{p:?}");
    assert!(p[0].detail.contains("nonexistent.invalid"), "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Telix and LociTerm JSON, detected from their content; a private target without
/// `--allow-private` is refused by the `/ws` policy, connects nowhere, and is stored so.
#[tokio::test]
async fn json_seed_files_and_the_policy() {
    let dir = workdir("json");
    let data = dir.join("data");
    let a = mud("127.0.0.21", "Telix One").await;
    let b = mud("127.0.0.22", "Loci Two").await;
    let telix = dir.join("directory.json");
    std::fs::write(
        &telix,
        format!(
            r#"[{{"host": "{}", "port": {}, "name": "One", "type": "mud", "encoding": "ascii"}},
               {{"host": "{}", "type": "bbs"}}]"#,
            a.ip, a.port, a.ip
        ),
    )
    .expect("write");
    let loci = dir.join("servers.json");
    std::fs::write(
        &loci,
        format!(
            r#"[{{"host": "{}", "port": {}, "ssl": false, "up": true, "options": ["MSSP"]}},
               {{"host": "{}", "port": "{}", "ssl": false, "up": false, "options": []}}]"#,
            b.ip, b.port, a.ip, a.port
        ),
    )
    .expect("write");
    let args = [telix.to_str().expect("path"), loci.to_str().expect("path")];
    // Without --allow-private: refused, nothing connected, and the refusal is stored.
    let (code, err) = crawl(&data, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("{}: entry 2: `port` missing", telix.display())),
        "{err}"
    );
    assert_eq!((a.count(), b.count()), (0, 0), "refused before connecting");
    let db = store(&data);
    let p = history(&db, b.ip, b.port);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].outcome, "refused_by_policy", "{p:?}");
    drop(db);
    // Allowed, on a fresh store: the one entry listed in both files is scanned once.
    let data = dir.join("data2");
    let mut all = vec!["--allow-private"];
    all.extend(args);
    let (code, err) = crawl(&data, &all).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 servers (1 duplicates"), "{err}");
    assert_eq!((a.count(), b.count()), (1, 1));
    let db = store(&data);
    for m in [&a, &b] {
        let expected = scan_record(m, None).await;
        assert_stored_like(&db, m, &expected);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A telnetlib3 data directory (written by `iacscope scan --data-dir`) seeds a crawl whose
/// records equal those scans; `--from-store` then crawls the same servers again.
#[tokio::test]
async fn telnetlib3_directory_and_the_store_as_seeds() {
    let dir = workdir("t3");
    let data = dir.join("data");
    let t3 = dir.join("telnetlib3");
    let a = mud("127.0.0.31", "Dir One").await;
    let b = mud("127.0.0.32", "Dir Two").await;
    let ra = scan_record(&a, Some(&t3)).await;
    let rb = scan_record(&b, Some(&t3)).await;
    let (code, err) = crawl(&data, &["--allow-private", t3.to_str().expect("path")]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 servers"), "{err}");
    assert_eq!(
        (a.count(), b.count()),
        (2, 2),
        "one scan each, one crawl each"
    );
    {
        let db = store(&data);
        assert_stored_like(&db, &a, &ra);
        assert_stored_like(&db, &b, &rb);
    }
    let (code, err) = crawl(&data, &["--allow-private", "--from-store"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 servers"), "{err}");
    assert_eq!((a.count(), b.count()), (3, 3));
    let db = store(&data);
    assert_eq!(history(&db, a.ip, a.port).len(), 2, "a point per crawl");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--limit` stops a crawl early; rerunning the same command scans only what is left,
/// and a finished crawl scans nothing; `--restart` starts a new round.
#[tokio::test]
async fn a_stopped_crawl_resumes_without_scanning_twice() {
    let dir = workdir("resume");
    let data = dir.join("data");
    let muds = [
        mud("127.0.0.41", "R1").await,
        mud("127.0.0.42", "R2").await,
        mud("127.0.0.43", "R3").await,
        mud("127.0.0.44", "R4").await,
    ];
    let list = dir.join("list.txt");
    let text: String = muds.iter().map(|m| m.line() + "\n").collect();
    std::fs::write(&list, text).expect("write");
    let list = list.to_str().expect("path");
    let counts = || muds.iter().map(Mud::count).collect::<Vec<_>>();
    let (code, err) = crawl(&data, &["--allow-private", "--limit", "2", list]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 already done, 2 to scan now"), "{err}");
    assert_eq!(counts().iter().sum::<usize>(), 2);
    let (code, err) = crawl(&data, &["--allow-private", list]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 already done, 2 to scan now"), "{err}");
    assert_eq!(counts(), [1, 1, 1, 1], "the rest, and nothing twice");
    let (code, err) = crawl(&data, &["--allow-private", list]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 already done, 0 to scan now"), "{err}");
    assert_eq!(counts(), [1, 1, 1, 1]);
    let (code, err) = crawl(&data, &["--allow-private", "--restart", list]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("round 2"), "{err}");
    assert_eq!(counts(), [2, 2, 2, 2]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) mid-crawl: the finished scans are stored, the one in flight is abandoned
/// (nothing stored for it), the exit status says so, and the rerun scans only that one.
#[tokio::test]
async fn ctrl_c_stops_cleanly_and_the_rerun_resumes() {
    stop_mid_crawl("INT", ["127.0.0.51", "127.0.0.52", "127.0.0.53"]).await;
}

/// `kill -9` mid-crawl: what was committed stays (each scan and its point are one
/// transaction), nothing is half written, and the rerun scans only the unfinished server.
#[tokio::test]
async fn kill_9_loses_only_the_scan_in_flight() {
    stop_mid_crawl("KILL", ["127.0.0.54", "127.0.0.55", "127.0.0.56"]).await;
}

/// Crawls two quick servers and a silent one, sends `signal` once both quick ones are
/// stored, then reruns the crawl.
async fn stop_mid_crawl(signal: &str, ips: [&'static str; 3]) {
    let dir = workdir(&format!("sig{signal}"));
    let data = dir.join("data");
    let quick = [mud(ips[0], "Q1").await, mud(ips[1], "Q2").await];
    let slow = mud(ips[2], "Slow").await;
    slow.silent.store(true, SeqCst);
    let list = dir.join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{}\n{}\n{}\n",
            quick[0].line(),
            quick[1].line(),
            slow.line()
        ),
    )
    .expect("write");
    let list = list.to_str().expect("path");
    let child = iacscope()
        .arg("crawl")
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-private", list])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crawl");
    let pid = child.id().expect("pid");
    // Wait (bounded) until both quick servers' points are stored: only the store knows
    // when a point is committed, so it is asked every 50 ms.
    let stored = async {
        loop {
            if data.join(iacscope::serve::DB_FILE).exists() {
                let db = store(&data);
                if quick.iter().all(|m| !history(&db, m.ip, m.port).is_empty()) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(LIMIT, stored)
        .await
        .expect("quick servers stored in time");
    assert_eq!(slow.count(), 1, "the silent server's scan is in flight");
    self::signal(pid, signal);
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("stops in time")
        .expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    if signal == "INT" {
        assert_eq!(out.status.code(), Some(130), "{err}");
        assert!(err.contains("interrupted with 1 left"), "{err}");
    } else {
        assert_eq!(out.status.code(), None, "killed by the signal: {err}");
    }
    {
        let db = store(&data);
        assert!(
            history(&db, slow.ip, slow.port).is_empty(),
            "nothing stored for it"
        );
    }
    slow.silent.store(false, SeqCst);
    let (code, err) = crawl(&data, &["--allow-private", list]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 already done, 1 to scan now"), "{err}");
    assert_eq!(
        (quick[0].count(), quick[1].count(), slow.count()),
        (1, 1, 2)
    );
    let db = store(&data);
    assert_eq!(history(&db, slow.ip, slow.port)[0].outcome, OUTCOME_OK);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An `ssl` server is scanned over TLS: verified when its certificate is trusted
/// (`--tls-roots`), else again without verification; the point says which.
#[tokio::test]
async fn ssl_servers_record_whether_the_certificate_verified() {
    let dir = workdir("tls");
    let (acceptor, pem) = self_signed_acceptor();
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    mud_session(tls, "Secure", false).await;
                }
            });
        }
    });
    let roots = dir.join("roots.pem");
    std::fs::write(&roots, pem).expect("write roots");
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("127.0.0.1 {port} ssl\n")).expect("write");
    let list = list.to_str().expect("path");
    let trusted = dir.join("trusted");
    let (code, err) = crawl(
        &trusted,
        &[
            "--allow-private",
            "--tls-roots",
            roots.to_str().expect("path"),
            list,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let untrusted = dir.join("untrusted");
    let (code, err) = crawl(&untrusted, &["--allow-private", list]).await;
    assert_eq!(code, 0, "{err}");
    for (data, verified) in [(&trusted, true), (&untrusted, false)] {
        let db = store(data);
        let p = history(&db, "127.0.0.1", port);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].tls);
        assert_eq!(p[0].outcome, OUTCOME_OK, "{p:?}");
        let expect = if verified {
            "certificate verified"
        } else {
            "certificate not verified"
        };
        assert!(p[0].detail.contains(expect), "{p:?}");
        let id = p[0].scan_id.clone().expect("id");
        let summary = db.summary(&id).expect("read").expect("summary");
        assert!(summary.config.ends_with("tls=1"), "{summary:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// At most one scan per target address at a time, even with room for many: three servers
/// on one address are scanned one after the other, while another address goes alongside.
#[tokio::test]
async fn one_scan_at_a_time_per_address() {
    let dir = workdir("polite");
    let data = dir.join("data");
    let peak = Arc::new(AtomicUsize::new(0));
    let shared = muds_on_one_address("127.0.0.61", 3, peak.clone()).await;
    let other = mud("127.0.0.62", "Other").await;
    let list = dir.join("list.txt");
    let mut text: String = shared.iter().map(|m| m.line() + "\n").collect();
    text.push_str(&(other.line() + "\n"));
    std::fs::write(&list, text).expect("write");
    let (code, err) = crawl(
        &data,
        &[
            "--allow-private",
            "--concurrency",
            "16",
            list.to_str().expect("path"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 stored, 0 failed"), "{err}");
    assert_eq!(
        peak.load(SeqCst),
        1,
        "never two scans of 127.0.0.61 at once"
    );
    for m in shared.iter().chain([&other]) {
        assert_eq!(m.count(), 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that closes before saying anything is a failure (`closed_early`), not a record.
#[tokio::test]
async fn a_server_that_closes_at_once_is_a_failure() {
    let dir = workdir("closer");
    let l = TcpListener::bind("127.0.0.71:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    let p = crawl_one(&dir, "127.0.0.71", port).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        (p[0].outcome.as_str(), p[0].scan_id.as_deref()),
        ("closed_early", None)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that accepts and never sends a byte, but stays connected, is a scan (as
/// telnetlib3-fingerprint records it), not `closed_early`.
#[tokio::test]
async fn a_mute_server_is_a_scan() {
    let dir = workdir("mute");
    let l = TcpListener::bind("127.0.0.72:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let p = crawl_one(&dir, "127.0.0.72", port).await;
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].outcome, "ok", "{p:?}");
    assert!(p[0].scan_id.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh PostgreSQL schema `name` for a test (`IACSCOPE_TEST_DATABASE_URL`), or `None`
/// (the test is skipped, and says so) when none is configured; fails when one is required
/// (`IACSCOPE_REQUIRE_POSTGRES=1`) but missing or unusable.
fn postgres_url(name: &str) -> Option<String> {
    match iacscope::directory::db::test_database_url(name) {
        Ok(Some(url)) => Some(url),
        Ok(None) => {
            eprintln!("{name}: skipped (IACSCOPE_TEST_DATABASE_URL unset)");
            None
        }
        Err(e) => panic!("PostgreSQL crawl test {name}: {e}"),
    }
}

/// The same crawl into a PostgreSQL store (`IACSCOPE_TEST_DATABASE_URL`; skipped when unset,
/// failed when `IACSCOPE_REQUIRE_POSTGRES=1`): records and history as with SQLite, and a
/// rerun resumes.
#[tokio::test]
async fn crawl_into_postgres() {
    let Some(url) = postgres_url("crawl_into_postgres") else {
        return;
    };
    let dir = workdir("pg");
    let data = dir.join("unused");
    let a = mud("127.0.0.81", "Pg One").await;
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("{}\nnonexistent.invalid 23\n", a.line())).expect("write");
    let args = [
        "--allow-private",
        "--database-url",
        url.as_str(),
        list.to_str().expect("path"),
    ];
    let (code, err) = crawl(&data, &args).await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = crawl(&data, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 already done, 0 to scan now"), "{err}");
    assert_eq!(a.count(), 1);
    let expected = scan_record(&a, None).await;
    let db =
        tokio::task::spawn_blocking(move || Db::connect(Some(&url), Path::new("/nonexistent")))
            .await
            .expect("join")
            .expect("connect");
    let db = Arc::new(db);
    let (db2, ip, port) = (db.clone(), a.ip, a.port);
    let (points, failed) = tokio::task::spawn_blocking(move || {
        (
            db2.history(ip, port).expect("history"),
            db2.history("nonexistent.invalid", 23).expect("history"),
        )
    })
    .await
    .expect("join");
    assert_eq!(points.len(), 1);
    assert_eq!(failed[0].outcome, "dns_failure");
    let id = points[0].scan_id.clone().expect("id");
    let db2 = db.clone();
    let text = tokio::task::spawn_blocking(move || db2.record(&id).expect("read").expect("record"))
        .await
        .expect("join");
    let stored: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(comparable(&stored), comparable(&expected));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three workers share one round on PostgreSQL (`IACSCOPE_TEST_DATABASE_URL`; skipped when
/// unset, failed when `IACSCOPE_REQUIRE_POSTGRES=1`): worker K takes the first target (a
/// silent server, so its scan lasts) and is killed with SIGKILL while B and C crawl the
/// rest. Every server gets exactly one point in the round, every quick server is connected
/// to once, and the silent one twice: by K, and after K's lease expired by B or C.
#[tokio::test]
async fn workers_share_a_round_and_a_killed_workers_lease_expires() {
    const LEASE: u64 = 3;
    let Some(url) = postgres_url("crawl_workers_share") else {
        return;
    };
    let dir = workdir("workers");
    let data = dir.join("unused");
    // Claims go in (host, port) order: the silent server sorts first.
    let slow = mud("127.0.0.100", "Slow").await;
    slow.silent.store(true, SeqCst);
    const QUICK: [&str; 12] = [
        "127.0.0.101",
        "127.0.0.102",
        "127.0.0.103",
        "127.0.0.104",
        "127.0.0.105",
        "127.0.0.106",
        "127.0.0.107",
        "127.0.0.108",
        "127.0.0.109",
        "127.0.0.110",
        "127.0.0.111",
        "127.0.0.112",
    ];
    let mut quick = Vec::new();
    for ip in QUICK {
        quick.push(mud(ip, "Quick").await);
    }
    let list = dir.join("list.txt");
    let mut text = format!("{}\n", slow.line());
    for m in &quick {
        text.push_str(&format!("{}\n", m.line()));
    }
    std::fs::write(&list, text).expect("write");
    let lease = LEASE.to_string();
    let worker = |concurrency: &str| {
        iacscope()
            .arg("crawl")
            .arg("--data-dir")
            .arg(&data)
            .args(["--allow-private", "--database-url", &url])
            .args(["--lease-secs", &lease, "--concurrency", concurrency])
            .arg(&list)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn crawl")
    };
    let k = worker("1");
    let k_pid = k.id().expect("pid");
    wait_until("K scans the silent server", || slow.count() > 0).await;
    let (b, c) = (worker("2"), worker("2"));
    wait_until("B and C start", || quick.iter().any(|m| m.count() > 0)).await;
    signal(k_pid, "KILL");
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    slow.silent.store(false, SeqCst);
    let k = tokio::time::timeout(LIMIT, k.wait_with_output())
        .await
        .expect("K ends")
        .expect("wait");
    assert_eq!(k.status.code(), None, "K was killed");
    let mut errs = String::new();
    for w in [b, c] {
        let out = tokio::time::timeout(LIMIT, w.wait_with_output())
            .await
            .expect("worker ends in time")
            .expect("wait");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}");
        errs.push_str(&err);
    }
    assert!(
        errs.contains("1 taken over from an expired lease"),
        "{errs}"
    );
    for m in &quick {
        assert_eq!(m.count(), 1, "{} scanned once: {errs}", m.ip);
    }
    assert_eq!(
        slow.count(),
        2,
        "K's scan, then one after its lease expired"
    );
    let db = tokio::task::spawn_blocking(move || Db::connect(Some(&url), Path::new("/nx")))
        .await
        .expect("join")
        .expect("connect");
    let targets: Vec<(&'static str, u16)> = std::iter::once((slow.ip, slow.port))
        .chain(quick.iter().map(|m| (m.ip, m.port)))
        .collect();
    let points = tokio::task::spawn_blocking(move || {
        targets
            .iter()
            .map(|(ip, port)| db.history(ip, *port).expect("history"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");
    for p in &points {
        assert_eq!(p.len(), 1, "one point per server: {p:?}");
        assert_eq!(p[0].outcome, OUTCOME_OK, "{p:?}");
    }
    assert!(
        points[0][0].at >= killed_at + LEASE as i64 - 1,
        "the silent server was rescanned after K's lease expired: {:?} vs kill at {killed_at}",
        points[0][0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fake MUD that offers MSSP and answers `DO MSSP` with `NAME` and, when given,
/// `CRAWL DELAY` (and `PLAYERS` 5); closes 800 ms after connecting (as [`mud_session`]).
async fn mssp_mud(ip: &'static str, crawl_delay: Option<&'static str>) -> Mud {
    let l = TcpListener::bind((ip, 0)).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let c = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, SeqCst);
            tokio::spawn(async move {
                let _ = s.write_all(b"\xff\xfb\x46Welcome!\r\nBy what name? ").await;
                let mut mssp = b"\xff\xfa\x46\x01NAME\x02Delayed\x01PLAYERS\x025".to_vec();
                if let Some(d) = crawl_delay {
                    mssp.extend_from_slice(b"\x01CRAWL DELAY\x02");
                    mssp.extend_from_slice(d.as_bytes());
                }
                mssp.extend_from_slice(b"\xff\xf0");
                let stop = tokio::time::sleep(Duration::from_millis(800));
                tokio::pin!(stop);
                let mut seen = Vec::new();
                let mut sent = false;
                let mut buf = [0u8; 1024];
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                seen.extend_from_slice(&buf[..n]);
                                if !sent && seen.windows(3).any(|w| w == b"\xff\xfd\x46") {
                                    sent = true;
                                    let _ = s.write_all(&mssp).await;
                                }
                            }
                        },
                        () = &mut stop => break,
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    Mud {
        ip,
        port,
        connections,
        silent: Arc::new(AtomicBool::new(false)),
    }
}

/// `serve --crawl-every 2s` wires the schedule to the real crawl: a rescan over TCP makes
/// history points for servers without a `CRAWL DELAY` (or with `-1`, the crawler's
/// default), and a server whose MSSP asks for a 1-hour `CRAWL DELAY` is left alone. (Hours
/// of passes, delays and cut-short scans are `schedule.rs`'s test on paused time.)
#[tokio::test]
async fn serve_rescans_on_schedule_and_honours_crawl_delay() {
    let dir = workdir("schedule");
    let data = dir.join("data");
    let delayed = mssp_mud("127.0.0.121", Some("1")).await;
    let plain = mud("127.0.0.122", "Plain").await;
    let default = mssp_mud("127.0.0.123", Some("-1")).await;
    let list = dir.join("list.txt");
    std::fs::write(
        &list,
        format!("{}\n{}\n{}\n", delayed.line(), plain.line(), default.line()),
    )
    .expect("write");
    let (code, err) = crawl(&data, &["--allow-private", list.to_str().expect("path")]).await;
    assert_eq!(code, 0, "{err}");
    {
        let db = store(&data);
        let id = history(&db, delayed.ip, delayed.port)[0]
            .scan_id
            .clone()
            .expect("stored");
        let record = db.record(&id).expect("read").expect("record");
        assert_eq!(
            iacscope::directory::crawl::schedule::crawl_delay_hours(&record),
            Some(1),
            "{record}"
        );
    }
    let mut cfg = config();
    cfg.data_dir = data.clone();
    cfg.crawl.every = Some(Duration::from_secs(2));
    let mut server = start(cfg).await;
    // Only the store knows when a point is committed: it is asked every 100 ms.
    tokio::time::timeout(LIMIT, async {
        loop {
            let db = store(&data);
            if [&plain, &default]
                .iter()
                .all(|m| history(&db, m.ip, m.port).len() >= 2)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a scheduled rescan");
    server.stop();
    assert_eq!(delayed.count(), 1, "CRAWL DELAY 1 (hour) honoured");
    let db = store(&data);
    for m in [&plain, &default] {
        let points = history(&db, m.ip, m.port);
        assert!(points.len() >= 2, "{points:?}");
        assert!(
            points[0]
                .crawl
                .as_deref()
                .is_some_and(|c| c.starts_with("schedule/2/")),
            "{points:?}"
        );
        assert_eq!(points[0].outcome, OUTCOME_OK, "{points:?}");
    }
    assert_eq!(history(&db, delayed.ip, delayed.port).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A silent server that stays connected: probes run, a complete scan.
async fn mute_server(ip: &'static str) -> u16 {
    let l = TcpListener::bind((ip, 0)).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// `GET /api/servers/<host>/<port>` after a crawl: the history (up/down points, players,
/// fingerprint runs), each scan stamped complete or not and with its telnetlib3 version. A
/// server that closes during the banner (no probes) is stored and shown, marked incomplete,
/// and makes no fingerprint run and no "shared by" count.
#[tokio::test]
async fn server_api_shows_history_and_incomplete_scans() {
    let dir = workdir("history-api");
    let data = dir.join("data");
    let cut = mssp_mud("127.0.0.131", Some("2")).await;
    let mute = mute_server("127.0.0.132").await;
    let list = dir.join("list.txt");
    std::fs::write(
        &list,
        format!("{}\n127.0.0.132 {mute}\n127.0.0.133 1\n", cut.line()),
    )
    .expect("write");
    let args = [
        "--allow-private",
        "--retries",
        "0",
        list.to_str().expect("path"),
    ];
    let (code, err) = crawl(&data, &args).await;
    assert_eq!(code, 0, "{err}");
    let mut cfg = config();
    cfg.data_dir = data.clone();
    let mut server = start(cfg).await;
    let get = |path: String| {
        let addr = server.addr;
        async move {
            let (status, _, body) = http_get(addr, &path, "").await;
            assert_eq!(status, 200, "{path}");
            serde_json::from_slice::<Value>(&body).expect("json")
        }
    };
    let v = get(format!("/api/servers/127.0.0.131/{}", cut.port)).await;
    assert_eq!(v["scans"][0]["complete"], false, "{v}");
    assert_eq!(v["scans"][0]["compat"], "5.0.1", "{v}");
    assert_eq!(v["history"]["points"][0]["up"], true, "{v}");
    assert_eq!(
        v["history"]["points"][0]["scan"], v["scans"][0]["id"],
        "{v}"
    );
    assert_eq!(v["history"]["fingerprints"], serde_json::json!([]), "{v}");
    assert_eq!(v["history"]["players"][0]["players"], "5", "{v}");
    assert_eq!(
        v["history"]["players"][0]["date"], v["scans"][0]["date"],
        "{v}"
    );
    let id = v["scans"][0]["id"].as_str().expect("id").to_owned();
    let s = get(format!("/api/scans/{id}/summary")).await;
    assert_eq!(
        (&s["complete"], &s["shared_by"]),
        (&Value::Bool(false), &Value::from(0))
    );

    let v = get(format!("/api/servers/127.0.0.132/{mute}")).await;
    assert_eq!(v["scans"][0]["complete"], true, "{v}");
    let runs = v["history"]["fingerprints"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(runs[0]["fingerprint"], v["scans"][0]["fingerprint"]);
    assert_eq!(runs[0]["compat"], "5.0.1");
    assert_eq!(runs[0]["from"], v["scans"][0]["date"]);

    let v = get("/api/servers/127.0.0.133/1".to_owned()).await;
    assert_eq!(v["scans"], serde_json::json!([]), "{v}");
    assert_eq!(v["history"]["points"][0]["up"], false, "{v}");
    assert_eq!(
        v["history"]["points"][0]["outcome"], "refused_by_policy",
        "{v}"
    );

    // The census numbers: three servers known, two answering (one cut short, so only the
    // mute one's complete scan counts for protocols), MSSP from one, its 5 players.
    let st = get("/api/stats".to_owned()).await;
    assert_eq!(st["servers"], 3, "{st}");
    assert_eq!(st["answering"], 2, "{st}");
    assert_eq!(st["scanned_complete"], 1, "{st}");
    assert_eq!(st["with_mssp"], 1, "{st}");
    assert_eq!(st["players_online"], 5, "{st}");
    assert_eq!(st["unique_fingerprints"], 1, "{st}");
    assert_eq!(
        st["protocols"]["MSSP"]["servers"], 0,
        "the mute server offers nothing: {st}"
    );
    server.stop();

    // The same census exported as Telix JSON and CSV; an existing file is never overwritten.
    for (format, file) in [("telix", "directory.json"), ("csv", "census.csv")] {
        let out = dir.join(file);
        let run = || {
            iacscope()
                .arg("export")
                .args(["--format", format])
                .arg(&out)
                .arg("--data-dir")
                .arg(&data)
                .output()
        };
        let first = run().await.expect("export");
        assert!(first.status.success(), "{first:?}");
        let text = std::fs::read_to_string(&out).expect("read");
        if format == "telix" {
            let list: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(list.as_array().expect("array").len(), 2, "{text}");
        } else {
            assert_eq!(
                text.lines().count(),
                4,
                "a header and three servers: {text}"
            );
            assert!(text.contains("127.0.0.131"), "{text}");
        }
        let again = run().await.expect("export");
        assert!(!again.status.success(), "an existing file is refused");
        assert_eq!(std::fs::read_to_string(&out).expect("read"), text);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker stopped by Ctrl-C gives its leases back at once (PostgreSQL; skipped without
/// `IACSCOPE_TEST_DATABASE_URL`): the next worker scans the server it was scanning without
/// waiting for the (120 s) lease to expire.
#[tokio::test]
async fn a_stopped_worker_gives_its_leases_back() {
    let Some(url) = postgres_url("crawl_release_leases") else {
        return;
    };
    let dir = workdir("release");
    let data = dir.join("unused");
    let slow = mud("127.0.0.140", "Slow").await;
    slow.silent.store(true, SeqCst);
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("{}\n", slow.line())).expect("write");
    let list = list.to_str().expect("path");
    let args = ["--allow-private", "--database-url", url.as_str(), list];
    let child = iacscope()
        .arg("crawl")
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crawl");
    let pid = child.id().expect("pid");
    wait_until("the first worker scans", || slow.count() > 0).await;
    signal(pid, "INT");
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("stops")
        .expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    slow.silent.store(false, SeqCst);
    let (code, err) = crawl(&data, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 stored"), "{err}");
    assert!(
        !err.contains("taken over"),
        "given back, not expired: {err}"
    );
    assert_eq!(slow.count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
