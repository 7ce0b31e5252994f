//! Permalinks end to end: a scan driven over the websocket as the browser drives it, the save
//! that replays the proxy's own transcript, the store across a restart, a window-edge reply,
//! a forged browser result, the save rate limit and two instances sharing one store. Every
//! test runs on SQLite (`sqlite::…`) and on PostgreSQL (`postgres::…`, when
//! `IACSCOPE_TEST_DATABASE_URL` is set; with `IACSCOPE_REQUIRE_POSTGRES=1` a missing or
//! unusable server fails them). Loopback only.

mod common;

use common::*;
use iacscope::directory::db::test_database_url;
use iacscope::directory::save::scan_id;
use iacscope::serve::Config;
use iacscope_shared::config::ScanConfig;
use iacscope_shared::pyjson;
use iacscope_shared::record::{ProbeStatus, SessionInfo};
use iacscope_shared::relay::replay_relay;
use iacscope_shared::time::Timestamp;
use iacscope_shared::transcript::{Entry, Transcript};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A telnet server that negotiates, greets, and closes 300 ms later (reading meanwhile):
/// the probes never run, so its scans are stored marked incomplete.
async fn fake_mud() -> u16 {
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let hello = b"\xff\xfb\x01\xff\xfb\x03\xff\xfd\x18Welcome to Fake MUD\r\n";
                let _ = s.write_all(hello).await;
                let mut buf = [0u8; 1024];
                let stop = tokio::time::sleep(Duration::from_millis(300));
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                        () = &mut stop => break,
                    }
                }
            });
        }
    });
    port
}

async fn get_json(server: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = http_get(server, path, "").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn save_body(fingerprint: Option<&str>) -> String {
    match fingerprint {
        Some(fp) => format!(r#"{{"config":{{"scan_type":"quick"}},"fingerprint":"{fp}"}}"#),
        None => r#"{"config":{"scan_type":"quick"}}"#.to_owned(),
    }
}

async fn save_replays_the_proxy_transcript_and_survives_restart(cfg: Config) {
    let port = fake_mud().await;
    let data_dir = cfg.data_dir.clone();
    let mut server = start(cfg.clone()).await;
    let (browser, session) = browser_scan(server.addr, port).await;
    let browser_fp = browser.outcome().fingerprint.clone();

    let (status, body) = http_post(
        server.addr,
        &format!("/api/sessions/{session}/save"),
        &save_body(Some(&browser_fp)),
    )
    .await;
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{resp}");
    let id = resp["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(resp["url"], format!("/s/{id}"));
    // Cut short (closed before the probes): stored and shown, not counted in "shared by".
    assert_eq!(resp["shared_by"], 0);
    assert_eq!(resp["browser_agrees"], true, "no window edge here: {resp}");
    assert_eq!(resp["consistent"], true, "{resp}");

    // The stored record is exactly what a direct replay of the proxy's transcript gives.
    let (status, _, record) = http_get(server.addr, &format!("/api/scans/{id}"), "").await;
    assert_eq!(status, 200);
    let record = String::from_utf8(record).expect("utf-8");
    let (status, _, text) = http_get(server.addr, &format!("/api/scans/{id}/transcript"), "").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).expect("utf-8");
    assert_eq!(
        id,
        scan_id(&text, "scan-type=quick encoding=ascii ttype=VT100 tls=0")
    );
    let t = Transcript::parse(&text).expect("transcript");
    let stored: Value = serde_json::from_str(&record).expect("json");
    let info = SessionInfo {
        host: "127.0.0.1".into(),
        ip: "127.0.0.1".into(),
        port,
        connected: stored["sessions"][0]["connected"]
            .as_str()
            .expect("connected")
            .into(),
    };
    let replayed = replay_relay(&t, ScanConfig::default());
    assert_eq!(
        record,
        pyjson::to_pretty(&replayed.scanner.outcome().record(&info))
    );
    // ... and, away from window edges, what the browser computed.
    assert_eq!(record, pyjson::to_pretty(&browser.outcome().record(&info)));

    // The other read endpoints.
    let (status, fp) = get_json(server.addr, &format!("/api/fingerprints/{browser_fp}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        fp["servers"],
        serde_json::json!([]),
        "an incomplete scan shares nothing"
    );
    assert_eq!(fp["version"], "5.0.1");
    let (status, srv) = get_json(server.addr, &format!("/api/servers/127.0.0.1/{port}")).await;
    assert_eq!(status, 200);
    assert_eq!(srv["scans"][0]["id"], id.as_str());
    assert_eq!(
        srv["scans"][0]["complete"], false,
        "kept and shown, marked incomplete"
    );
    assert_eq!(srv["name"], Value::Null, "no MSSP NAME from this server");
    assert_eq!(
        srv["scans"][0]["players"],
        Value::Null,
        "no MSSP from this server"
    );
    let (status, _, _) = http_get(server.addr, &format!("/s/{id}"), "").await;
    assert_eq!(
        status, 503,
        "the web app's page (placeholder: the app is not built here)"
    );
    let (status, _, _) = http_get(server.addr, &format!("/api/scans/{}", "0".repeat(32)), "").await;
    assert_eq!(status, 404);

    // Saving the same session again gives the same id (content-derived, idempotent).
    let (status, body) = http_post(
        server.addr,
        &format!("/api/sessions/{session}/save"),
        &save_body(None),
    )
    .await;
    assert_eq!(status, 200);
    let again: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(again["id"], id.as_str());

    // Restart on the same database file: the permalink is still there.
    server.stop();
    let _ = tokio::time::timeout(LIMIT, &mut server.task).await;
    let server = start(iacscope::serve::Config {
        data_dir: data_dir.clone(),
        ..cfg
    })
    .await;
    let (status, _, after) = http_get(server.addr, &format!("/api/scans/{id}"), "").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(after).expect("utf-8"), record);
    if server.state.config.database_url.is_none() {
        assert!(data_dir.join("iacscope.db").is_file());
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Puts a crafted closed session into the proxy's transcript store.
fn inject(st: &iacscope::serve::AppState, id: &str, t: Transcript) {
    st.store.insert_live(id, Arc::new(Mutex::new(t)));
    st.store.close(id, tokio::time::Instant::now());
}

fn session_meta() -> Transcript {
    let mut t = Transcript::new();
    t.set_meta("host", "edge.test");
    t.set_meta("port", "4000");
    t.set_meta("ip", "192.0.2.9");
    t.set_meta("tls", "0");
    t
}

/// When the engine sends its capability probes for a server that only greets, and the
/// first option probed.
fn probe_start() -> (Vec<Entry>, Timestamp, u8) {
    let greet = vec![Entry::Recv(
        Timestamp(2_000),
        b"\xff\xfb\x01Welcome\r\n".to_vec(),
    )];
    let mut t = session_meta();
    for e in &greet {
        t.push(e.clone());
    }
    let r = replay_relay(&t, ScanConfig::default());
    let o = r.scanner.outcome();
    let at = o.probe_started.expect("probes ran");
    let (opt, _) = o
        .probe
        .iter()
        .find(|(_, s)| *s == ProbeStatus::Timeout)
        .expect("an option to probe");
    (greet, at, opt.0)
}

fn with_reply(greet: &[Entry], at: Timestamp, opt: u8) -> Transcript {
    let mut t = session_meta();
    for e in greet {
        t.push(e.clone());
    }
    t.push(Entry::Recv(at, vec![255, 251, opt]));
    t
}

fn status_of(t: &Transcript, opt: u8) -> ProbeStatus {
    let r = replay_relay(t, ScanConfig::default());
    r.scanner
        .outcome()
        .probe
        .iter()
        .find(|(o, _)| o.0 == opt)
        .expect("probed")
        .1
}

/// The websocket leg delays what the browser sees, so a reply 0.49 s after a probe at the
/// proxy may reach the browser's engine after its 0.5 s window. The stored record follows
/// the proxy's timeline (`WILL`); the browser's report (here: `timeout`) is not stored.
async fn reply_near_window_end_follows_the_proxy_timeline(cfg: Config) {
    let (greet, probe_at, opt) = probe_start();
    let at = |ms: u64| Timestamp(probe_at.0 + ms * 1_000);
    let proxy_view = with_reply(&greet, at(490), opt);
    let late_view = with_reply(&greet, at(510), opt);
    assert_eq!(status_of(&proxy_view, opt), ProbeStatus::Will, "inside");
    assert_eq!(status_of(&late_view, opt), ProbeStatus::Timeout, "outside");
    // Exactly at the deadline counts as inside (input first, then the timer).
    assert_eq!(
        status_of(&with_reply(&greet, at(500), opt), opt),
        ProbeStatus::Will
    );

    let browser_fp = replay_relay(&late_view, ScanConfig::default())
        .scanner
        .outcome()
        .fingerprint
        .clone();
    let proxy_fp = replay_relay(&proxy_view, ScanConfig::default())
        .scanner
        .outcome()
        .fingerprint
        .clone();
    assert_ne!(
        browser_fp, proxy_fp,
        "the two timelines give different results"
    );

    let server = start(cfg).await;
    inject(&server.state, "edge", proxy_view);
    let (status, body) = http_post(
        server.addr,
        "/api/sessions/edge/save",
        &save_body(Some(&browser_fp)),
    )
    .await;
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp["fingerprint"],
        proxy_fp.as_str(),
        "the proxy's timeline wins"
    );
    assert_eq!(resp["browser_agrees"], false);
    let (_, rec) = get_json(
        server.addr,
        &format!("/api/scans/{}", resp["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(rec["server-probe"]["fingerprint"], proxy_fp.as_str());
    assert_eq!(rec["sessions"][0]["host"], "edge.test");
    assert_eq!(rec["sessions"][0]["ip"], "192.0.2.9");
    let _ = std::fs::remove_dir_all(&server.state.config.data_dir);
}

/// A browser that reports a made-up fingerprint gets the proxy's in reply and stores the
/// proxy's; its claim is only logged.
async fn forged_result_is_ignored(cfg: Config) {
    let server = start(cfg).await;
    let mut t = session_meta();
    t.push(Entry::Recv(Timestamp(1_000), b"hello\r\n".to_vec()));
    t.push(Entry::Eof(Timestamp(20_000)));
    let real = replay_relay(&t, ScanConfig::default())
        .scanner
        .outcome()
        .fingerprint
        .clone();
    inject(&server.state, "forged", t);
    let forged = "f".repeat(16);
    let (status, body) = http_post(
        server.addr,
        "/api/sessions/forged/save",
        &save_body(Some(&forged)),
    )
    .await;
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["fingerprint"], real.as_str());
    assert_eq!(resp["browser_agrees"], false);
    let (_, shared) = get_json(server.addr, &format!("/api/fingerprints/{forged}")).await;
    assert_eq!(
        shared["servers"],
        Value::Array(vec![]),
        "nothing stored under the claim"
    );

    // Settings outside the whitelist are refused, not silently used.
    let (status, _) = http_post(
        server.addr,
        "/api/sessions/forged/save",
        r#"{"config":{"banner_max_wait":1}}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http_post(server.addr, "/api/sessions/nope/save", "{}").await;
    assert_eq!(status, 404);
    let _ = std::fs::remove_dir_all(&server.state.config.data_dir);
}

async fn saves_are_rate_limited_and_size_limited(cfg: Config) {
    let server = start(iacscope::serve::Config {
        max_saves_per_ip_per_minute: 2,
        max_saved_transcript_bytes: 200,
        ..cfg
    })
    .await;
    let mut small = session_meta();
    small.push(Entry::Eof(Timestamp(1_000)));
    inject(&server.state, "small", small);
    let mut big = session_meta();
    big.push(Entry::Recv(Timestamp(1_000), vec![b'x'; 300]));
    inject(&server.state, "big", big);
    let (status, _) = http_post(server.addr, "/api/sessions/big/save", "{}").await;
    assert_eq!(status, 413, "transcript over the size limit");
    let (status, _) = http_post(server.addr, "/api/sessions/small/save", "{}").await;
    assert_eq!(status, 200);
    let (status, body) = http_post(server.addr, "/api/sessions/small/save", "{}").await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    let _ = std::fs::remove_dir_all(&server.state.config.data_dir);
}

/// Two instances on one store (as behind a load balancer), started together on a fresh
/// store (their migrations must not race): a save through one is served by the other, and
/// the fingerprint directory counts servers across both.
async fn two_instances_share_one_store(cfg: Config) {
    let states: Vec<_> = (0..2)
        .map(|_| {
            let c = cfg.clone();
            std::thread::spawn(move || iacscope::serve::AppState::new(c))
        })
        .collect();
    for s in states {
        s.join()
            .expect("no panic")
            .expect("both instances open the store");
    }
    let a = start(cfg.clone()).await;
    let b = start(cfg.clone()).await;
    let mut t = session_meta();
    t.push(Entry::Recv(Timestamp(1_000), b"hello\r\n".to_vec()));
    // Closed after the scan's end (probes ran): a complete scan, which counts in "shared by".
    t.push(Entry::Eof(Timestamp(60_000_000)));
    inject(&a.state, "one", t.clone());
    let (status, body) = http_post(a.addr, "/api/sessions/one/save", &save_body(None)).await;
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{resp}");
    let id = resp["id"].as_str().expect("id").to_owned();
    let (status, rec_a) = get_json(a.addr, &format!("/api/scans/{id}")).await;
    assert_eq!(status, 200);
    let (status, rec_b) = get_json(b.addr, &format!("/api/scans/{id}")).await;
    assert_eq!(status, 200, "saved through A, served by B");
    assert_eq!(rec_a, rec_b);

    // The same bytes from another server, saved through B: one fingerprint, two servers.
    t.set_meta("host", "other.test");
    inject(&b.state, "two", t);
    let (status, body) = http_post(b.addr, "/api/sessions/two/save", &save_body(None)).await;
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["shared_by"], 2, "{resp}");
    let fp = resp["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let (_, shared) = get_json(a.addr, &format!("/api/fingerprints/{fp}")).await;
    let mut hosts: Vec<&str> = shared["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["host"].as_str().expect("host"))
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["edge.test", "other.test"]);
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

/// `GET /api/servers/<host>/<port>` lists what changed in the server's MSSP between its
/// complete scans (PLAYERS left out; a scan cut short is skipped), and each scan's TLS.
async fn a_servers_mssp_changes(cfg: Config) {
    let server = start(cfg.clone()).await;
    let record = |mssp: &str| {
        format!("{{\"server-probe\": {{\"session_data\": {{\"mssp\": {{{mssp}}}}}}}}}")
    };
    let rows = [
        (
            100,
            true,
            r#""NAME": "Old", "CODEBASE": "Evennia", "PLAYERS": "1""#,
        ),
        (
            200,
            true,
            r#""NAME": "Old", "CODEBASE": "Evennia", "PLAYERS": "5""#,
        ),
        (250, false, ""),
        (300, true, r#""NAME": "New", "PLAYERS": "2", "SSL": "4443""#),
    ];
    for (i, (at, complete, mssp)) in rows.iter().enumerate() {
        let mut row = plain_row(&format!("{i:032}"), "mssp.test", 4000, "fp", *at);
        row.record_json = record(mssp).into();
        row.complete = *complete;
        server.state.db.insert(&row).expect("insert");
    }
    let (status, v) = get_json(server.addr, "/api/servers/mssp.test/4000").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scans"][0]["tls"], false, "{v}");
    let changes = v["history"]["mssp_changes"].as_array().expect("list");
    let seen: Vec<(&Value, &Value, &Value)> = changes
        .iter()
        .map(|c| (&c["variable"], &c["from"], &c["to"]))
        .collect();
    let (name, ssl, codebase) = (
        Value::from("NAME"),
        Value::from("SSL"),
        Value::from("CODEBASE"),
    );
    let (old, new, port, evennia) = (
        Value::from("Old"),
        Value::from("New"),
        Value::from("4443"),
        Value::from("Evennia"),
    );
    assert_eq!(
        seen,
        [
            (&name, &old, &new),
            (&ssl, &Value::Null, &port),
            (&codebase, &evennia, &Value::Null),
        ],
        "only NAME, SSL and CODEBASE (PLAYERS left out): {v}"
    );
    for c in changes {
        assert_eq!(c["scan"], format!("{:032}", 3));
        assert_eq!(
            c["since"], "1970-01-01T00:03:20+00:00",
            "compared with the complete one"
        );
    }
    let _ = std::fs::remove_dir_all(&cfg.data_dir);
}

/// A PostgreSQL test config with a fresh schema for `test`, or `None` (skipped) when no
/// server is configured; panics (fails) when one is required but missing or unusable.
fn pg_config(test: &str) -> Option<Config> {
    match test_database_url(&format!("store_{test}")) {
        Ok(Some(url)) => Some(Config {
            database_url: Some(url),
            ..config()
        }),
        Ok(None) => {
            eprintln!("{test}: PostgreSQL variant skipped (IACSCOPE_TEST_DATABASE_URL unset)");
            None
        }
        Err(e) => panic!("PostgreSQL store test {test}: {e}"),
    }
}

/// Each store test once per backend, under the same name in `sqlite` and `postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::config()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(cfg) = super::pg_config(stringify!($name)) {
                        super::$name(cfg).await;
                    }
                }
            )*
        }
    };
}

on_both_stores!(
    save_replays_the_proxy_transcript_and_survives_restart,
    reply_near_window_end_follows_the_proxy_timeline,
    forged_result_is_ignored,
    saves_are_rate_limited_and_size_limited,
    two_instances_share_one_store,
    a_servers_mssp_changes,
);
