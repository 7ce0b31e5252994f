//! Crash safety of the permalink store: the real `iacscope serve` binary, saves arriving
//! concurrently from many sessions to a local fake telnet server, `kill -9` at a random
//! moment while they are in flight, a restart on the same store, and then every save that was
//! answered 200 must be readable with the record the proxy's transcript replays to, byte for
//! byte the same on every later restart. Cut-off saves must leave a store that opens cleanly.
//! Runs on SQLite and, when `IACSCOPE_TEST_DATABASE_URL` is set, on PostgreSQL.
//! Loopback only.

mod common;

use common::{enc, http_get, upstream};
use futures_util::StreamExt;
use iacscope::directory::db::test_database_url;
use iacscope::directory::save::scan_id;
use iacscope_shared::config::ScanConfig;
use iacscope_shared::pyjson;
use iacscope_shared::record::SessionInfo;
use iacscope_shared::relay::replay_relay;
use iacscope_shared::transcript::Transcript;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Kill-and-restart rounds per backend.
const ROUNDS: usize = 6;
/// Clients saving at once.
const WORKERS: usize = 12;
/// The kill lands this long after the load starts, plus a random part below
/// [`KILL_JITTER_MS`] (so it falls at different points of the save path each round).
const KILL_AFTER_MIN_MS: u64 = 150;
/// The random part of the kill time.
const KILL_JITTER_MS: u64 = 400;
/// Bound on each step a worker takes (a killed server fails steps fast; this is for hangs).
const STEP_LIMIT: Duration = Duration::from_secs(10);
/// Time the server gets to start answering `/healthz`.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Attempts at starting the server (a port chosen free may be taken before it binds).
const START_ATTEMPTS: usize = 5;
/// The settings every save uses, in canonical form (what the id is derived from).
const SAVE_CONFIG: &str = "scan-type=quick encoding=ascii ttype=VT100 tls=0";

/// A small xorshift generator (the seed is printed, so a failing round can be rerun).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("IACSCOPE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("crash test seed: {seed} (IACSCOPE_CRASH_SEED to repeat)");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A telnet server that negotiates, greets (with a per-connection line, so every session's
/// transcript differs) and closes.
async fn fake_mud() -> u16 {
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((mut s, _)) = l.accept().await {
            n += 1;
            tokio::spawn(async move {
                let mut bytes = b"\xff\xfb\x01".to_vec();
                bytes.extend_from_slice(format!("Welcome, visitor {n}\r\n").as_bytes());
                bytes.extend_from_slice(b"\xff\xfd\x18");
                let _ = s.write_all(&bytes).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    port
}

/// A running `iacscope serve` process.
struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the binary on the store (`data_dir`, or PostgreSQL at `db_url`) and waits until
/// it answers.
async fn start(data_dir: &Path, db_url: Option<&str>, log: &Path) -> Proc {
    for _ in 0..START_ATTEMPTS {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iacscope"));
        cmd.args(["serve", "--listen", &addr.to_string(), "--allow-private"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--static-dir", "/nonexistent/iacscope-test-dist"])
            .args(["--max-saves-per-ip-per-minute", "1000000"])
            .args(["--max-new-sessions-per-ip-per-minute", "1000000"])
            .args(["--max-sessions-per-ip", "1000"])
            .args(["--max-sessions-per-target", "1000"])
            .env_remove("IACSCOPE_DATABASE_URL")
            .env_remove("IACSCOPE_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"));
        if let Some(url) = db_url {
            cmd.args(["--database-url", url]);
        }
        let child = cmd.spawn().expect("start iacscope");
        let mut p = Proc { child, addr };
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                eprintln!("iacscope exited at start ({status}); retrying on another port");
                break;
            }
            if TcpStream::connect(addr).await.is_ok() {
                let (status, _, _) = http_get(addr, "/healthz", "").await;
                assert_eq!(status, 200, "healthz");
                return p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "iacscope did not start; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!(
        "iacscope did not start in {START_ATTEMPTS} attempts; log: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// One session through `/ws` to the fake server until the proxy reports it closed; its id.
/// `None` when the proxy went away meanwhile.
async fn session(server: SocketAddr, port: u16) -> Option<String> {
    let url = format!("ws://{server}/ws?host={}&port={port}", enc("127.0.0.1"));
    let (mut ws, _) = tokio::time::timeout(STEP_LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .ok()?
        .ok()?;
    let mut id = None;
    loop {
        let msg = tokio::time::timeout(STEP_LIMIT, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = msg {
            let c: Value = serde_json::from_str(&t).ok()?;
            match c["type"].as_str() {
                Some("connected") => id = c["session"].as_str().map(str::to_owned),
                Some("closed") => return id,
                _ => return None,
            }
        }
    }
}

/// POSTs a save; the reply's JSON when the status is 200, `None` when the connection broke
/// (the kill) before a full reply. Any other status is a test failure.
async fn save(server: SocketAddr, session: &str) -> Option<Value> {
    let body = r#"{"config":{"scan_type":"quick"}}"#;
    let req = format!(
        "POST /api/sessions/{session}/save HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut s = TcpStream::connect(server).await.ok()?;
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf)
    };
    let buf = tokio::time::timeout(STEP_LIMIT, exchange).await.ok()??;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let reply: Value = serde_json::from_slice(&buf[split + 4..]).ok()?;
    assert_eq!(status, 200, "save refused: {head} {reply}");
    Some(reply)
}

/// What one worker saw: acknowledged saves (id → fingerprint) and saves cut off.
#[derive(Default)]
struct Tally {
    acked: Vec<(String, String)>,
    cut: usize,
}

/// Sessions and saves, one after the other, until the server is gone.
async fn worker(server: SocketAddr, port: u16, killed: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    while !killed.load(Ordering::SeqCst) {
        let Some(id) = session(server, port).await else {
            break;
        };
        match save(server, &id).await {
            Some(reply) => {
                let scan = reply["id"].as_str().expect("id").to_owned();
                let fp = reply["fingerprint"]
                    .as_str()
                    .expect("fingerprint")
                    .to_owned();
                t.acked.push((scan, fp));
            }
            None => {
                assert!(
                    killed.load(Ordering::SeqCst),
                    "a save failed while the server was up"
                );
                t.cut += 1;
                break;
            }
        }
    }
    t
}

/// Every acknowledged save is there: the record is what the stored transcript replays to,
/// the id is that transcript's, the fingerprint the one acknowledged, and the record text
/// is identical to what earlier restarts served.
async fn check_all(
    server: SocketAddr,
    acked: &BTreeMap<String, String>,
    seen: &mut BTreeMap<String, String>,
) {
    for (id, fp) in acked {
        let (status, _, record) = http_get(server, &format!("/api/scans/{id}"), "").await;
        assert_eq!(status, 200, "acknowledged save {id} lost");
        let record = String::from_utf8(record).expect("utf-8");
        let (status, _, text) = http_get(server, &format!("/api/scans/{id}/transcript"), "").await;
        assert_eq!(status, 200, "transcript of {id} lost");
        let text = String::from_utf8(text).expect("utf-8");
        assert_eq!(
            &scan_id(&text, SAVE_CONFIG),
            id,
            "transcript of {id} altered"
        );
        let stored: Value = serde_json::from_str(&record).expect("record json");
        let info = SessionInfo {
            host: "127.0.0.1".into(),
            ip: "127.0.0.1".into(),
            port: stored["sessions"][0]["port"].as_u64().expect("port") as u16,
            connected: stored["sessions"][0]["connected"]
                .as_str()
                .expect("connected")
                .into(),
        };
        let t = Transcript::parse(&text).expect("transcript");
        let replayed = replay_relay(&t, ScanConfig::default());
        assert_eq!(
            record,
            pyjson::to_pretty(&replayed.scanner.outcome().record(&info)),
            "record of {id} is not its transcript's"
        );
        assert_eq!(&replayed.scanner.outcome().fingerprint, fp);
        let before = seen.entry(id.clone()).or_insert_with(|| record.clone());
        assert_eq!(*before, record, "record of {id} changed across restarts");
    }
}

/// SQLite's own check of the file (after a kill, before the restart recovers the WAL).
fn sqlite_integrity(data_dir: &Path) {
    let path = data_dir.join(iacscope::serve::DB_FILE);
    if !path.exists() {
        return;
    }
    let c = rusqlite::Connection::open(&path).expect("open the killed store");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok", "store corrupt after kill -9");
}

async fn kill_rounds(db_url: Option<String>, name: &str) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("iacscope-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data_dir = dir.join("data");
    let log = dir.join("serve.log");
    let port = fake_mud().await;
    let mut rng = Rng::new();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    let (mut total_cut, mut rounds_with_both) = (0, 0);
    for round in 0..ROUNDS {
        let mut p = start(&data_dir, db_url.as_deref(), &log).await;
        check_all(p.addr, &acked, &mut seen).await;
        let killed = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(p.addr, port, Arc::clone(&killed))))
            .collect();
        let at = KILL_AFTER_MIN_MS + rng.below(KILL_JITTER_MS);
        tokio::time::sleep(Duration::from_millis(at)).await;
        killed.store(true, Ordering::SeqCst);
        p.child.kill().expect("SIGKILL");
        p.child.wait().expect("reap");
        let (mut n_acked, mut n_cut) = (0, 0);
        for w in workers {
            let t = w.await.expect("worker");
            n_acked += t.acked.len();
            n_cut += t.cut;
            acked.extend(t.acked);
        }
        eprintln!("{name} round {round}: killed at {at} ms, {n_acked} saves acknowledged, {n_cut} cut off");
        total_cut += n_cut;
        if n_acked > 0 && n_cut > 0 {
            rounds_with_both += 1;
        }
        if db_url.is_none() {
            sqlite_integrity(&data_dir);
        }
    }
    // The last restart: everything acknowledged in any round is there.
    let p = start(&data_dir, db_url.as_deref(), &log).await;
    check_all(p.addr, &acked, &mut seen).await;
    drop(p);
    eprintln!(
        "{name}: {ROUNDS} rounds, {} acknowledged saves all intact, {total_cut} cut off",
        acked.len()
    );
    assert!(acked.len() >= ROUNDS, "too few saves to mean anything");
    assert!(
        rounds_with_both > 0,
        "no kill landed while saves were in flight"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_acknowledged_saves_survive_kill_9() {
    kill_rounds(None, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_acknowledged_saves_survive_kill_9() {
    match test_database_url("crash_kill_9") {
        Ok(Some(url)) => kill_rounds(Some(url), "postgres").await,
        Ok(None) => eprintln!("PostgreSQL variant skipped (IACSCOPE_TEST_DATABASE_URL unset)"),
        Err(e) => panic!("PostgreSQL crash test: {e}"),
    }
}
