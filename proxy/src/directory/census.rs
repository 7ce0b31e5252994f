//! The census as numbers and lists: `GET /api/stats` (servers answering, MSSP share,
//! protocol support, unique fingerprints, codebases, encodings, TLS, players online) and
//! `iacscope export --format telix|csv`.
//!
//! Both read [`rows`]: one row per server the store knows ([`Db::census`]), with whether its
//! last attempt answered and its latest complete scan's record (a scan cut short only when
//! there is no complete one). What is counted comes from the records the engine wrote
//! (`fingerprint-data`, `session_data.mssp`, `session_data.encoding`); nothing is taken from
//! a client. `/api/stats` is computed off the async threads and cached for
//! [`STATS_CACHE_FOR`].

use crate::directory::db::{CrawlTarget, Db, DbResult, ScanSummary, OUTCOME_OK};
use crate::serve::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use iacscope_shared::pyjson::{self, Value};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most servers a census reads (the crawl's seed bound).
pub const MAX_CENSUS: i64 = 100_000;
/// How long one computed `/api/stats` answer is served.
pub const STATS_CACHE_FOR: Duration = Duration::from_secs(60);
/// Most entries of a list (codebases, encodings) in `/api/stats`.
pub const MAX_LISTED: usize = 50;
/// The protocols whose support `/api/stats` reports, as option names in the records. MCP is
/// negotiated in-band (no telnet option), so records cannot tell it: reported as `null`.
pub const PROTOCOLS: &[&str] = &[
    "MSSP", "GMCP", "MSDP", "MCCP2", "MXP", "MSP", "MCP", "ZMP", "CHARSET", "BINARY",
];
/// Longest text (name, codebase) a census row keeps.
const MAX_TEXT: usize = 120;

/// One server of the census.
#[derive(Clone, Debug)]
pub struct Row {
    /// Host, port, TLS.
    pub target: CrawlTarget,
    /// Whether its last attempt stored a scan (a server never tried by a crawl: whether it
    /// has a scan).
    pub up: bool,
    /// Unix seconds of its last visit.
    pub last_at: Option<i64>,
    /// Its latest complete scan (or latest scan when none is complete).
    pub scan: Option<ScanSummary>,
    /// What that scan's record says.
    pub facts: Facts,
}

/// What a record says, for the census.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Options the server offered or requested (`fingerprint-data`).
    pub options: BTreeSet<String>,
    /// Whether the server sent MSSP.
    pub mssp: bool,
    /// MSSP `NAME`.
    pub name: Option<String>,
    /// MSSP `CODEBASE`.
    pub codebase: Option<String>,
    /// MSSP `PLAYERS` as a number.
    pub players: Option<i64>,
    /// `session_data.encoding`.
    pub encoding: Option<String>,
}

/// Reads a record's facts; an unreadable record has none.
pub fn facts(record_text: &str) -> Facts {
    let Ok(rec) = pyjson::parse(record_text) else {
        return Facts::default();
    };
    let sp = rec.as_dict().and_then(|d| d.get("server-probe"));
    let data = sp
        .and_then(Value::as_dict)
        .and_then(|d| d.get("fingerprint-data"))
        .and_then(Value::as_dict);
    let mut options = BTreeSet::new();
    for key in ["offered-options", "requested-options"] {
        for v in data
            .and_then(|d| d.get(key))
            .and_then(Value::as_list)
            .into_iter()
            .flatten()
        {
            if let Some(s) = text(v) {
                options.insert(s);
            }
        }
    }
    let sd = sp
        .and_then(Value::as_dict)
        .and_then(|d| d.get("session_data"))
        .and_then(Value::as_dict);
    let mssp = sd.and_then(|d| d.get("mssp")).and_then(Value::as_dict);
    let var = |k: &str| {
        let v = mssp?.get(k)?;
        match v {
            Value::List(l) => l.first().and_then(text),
            other => text(other),
        }
        .map(|s| s.trim().chars().take(MAX_TEXT).collect::<String>())
        .filter(|s| !s.is_empty())
    };
    Facts {
        options,
        mssp: mssp.is_some(),
        name: var("NAME"),
        codebase: var("CODEBASE"),
        players: var("PLAYERS")
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| *p >= 0),
        encoding: sd.and_then(|d| d.get("encoding")).and_then(text),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => s.as_str_if_valid(),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The census rows (blocking: run off the async threads).
pub fn rows(db: &Db, limit: i64) -> DbResult<Vec<Row>> {
    let mut out = Vec::new();
    for e in db.census(limit)? {
        let t = &e.target;
        let history = db.history(&t.host, t.port)?;
        let up = match history.iter().find(|p| p.tls == t.tls) {
            Some(p) => p.outcome == OUTCOME_OK,
            None => e.latest_id.is_some(),
        };
        let scan = db.latest_with_tls(&t.host, t.port, t.tls)?;
        let facts = match &scan {
            Some(s) => db.record(&s.id)?.map(|r| facts(&r)).unwrap_or_default(),
            None => Facts::default(),
        };
        out.push(Row {
            target: e.target,
            up,
            last_at: e.last_at,
            scan,
            facts,
        });
    }
    Ok(out)
}

/// `/api/stats` from the rows.
pub fn stats(rows: &[Row], now: i64) -> serde_json::Value {
    let answering: Vec<&Row> = rows.iter().filter(|r| r.up).collect();
    // Protocol support is read from complete scans of answering servers.
    let scanned: Vec<&Row> = answering
        .iter()
        .copied()
        .filter(|r| r.scan.as_ref().is_some_and(|s| s.complete))
        .collect();
    let share = |n: usize, of: usize| {
        if of == 0 {
            serde_json::Value::Null
        } else {
            json!((n as f64 / of as f64 * 1000.0).round() / 1000.0)
        }
    };
    let mut protocols = serde_json::Map::new();
    for p in PROTOCOLS {
        if *p == "MCP" {
            protocols.insert((*p).into(), serde_json::Value::Null);
            continue;
        }
        let n = scanned
            .iter()
            .filter(|r| r.facts.options.contains(*p))
            .count();
        protocols.insert(
            (*p).into(),
            json!({"servers": n, "share": share(n, scanned.len())}),
        );
    }
    let with_mssp = answering.iter().filter(|r| r.facts.mssp).count();
    let fingerprints: BTreeSet<(&str, &str)> = scanned
        .iter()
        .filter_map(|r| r.scan.as_ref())
        .map(|s| (s.fingerprint.as_str(), s.compat.as_str()))
        .collect();
    let top = |key: fn(&Row) -> Option<&str>, name: &str| {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &answering {
            if let Some(k) = key(r) {
                *counts.entry(k).or_default() += 1;
            }
        }
        let mut list: Vec<(&str, usize)> = counts.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        list.truncate(MAX_LISTED);
        list.into_iter()
            .map(|(k, n)| json!({name: k, "servers": n}))
            .collect::<Vec<_>>()
    };
    let tls_answering = answering.iter().filter(|r| r.target.tls).count();
    let players: i64 = answering.iter().filter_map(|r| r.facts.players).sum();
    json!({
        "generated": iacscope_shared::record::isoformat_utc(now.saturating_mul(1_000_000)),
        "servers": rows.len(),
        "answering": answering.len(),
        "scanned_complete": scanned.len(),
        "with_mssp": with_mssp,
        "mssp_share": share(with_mssp, answering.len()),
        "protocols": protocols,
        "unique_fingerprints": fingerprints.len(),
        "codebases": top(|r| r.facts.codebase.as_deref(), "codebase"),
        "encodings": top(|r| r.facts.encoding.as_deref(), "encoding"),
        "tls": {"servers": rows.iter().filter(|r| r.target.tls).count(), "answering": tls_answering},
        "players_online": players,
    })
}

/// The cached `/api/stats` answer.
#[derive(Debug, Default)]
pub struct StatsCache(Mutex<Option<(Instant, Arc<str>)>>);

/// `GET /api/stats`.
pub async fn stats_handler(State(st): State<Arc<AppState>>) -> Response {
    let cached = st
        .stats
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|(at, _)| at.elapsed() < STATS_CACHE_FOR)
        .map(|(_, body)| Arc::clone(body));
    let body = match cached {
        Some(b) => b,
        None => {
            let now = crate::relay::store::unix_micros().div_euclid(1_000_000);
            let computed = crate::directory::db::off_thread(&st.db, move |db| {
                Ok(stats(&rows(db, MAX_CENSUS)?, now).to_string())
            })
            .await;
            match computed {
                Ok(b) => {
                    let b: Arc<str> = b.into();
                    *st.stats.0.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((Instant::now(), Arc::clone(&b)));
                    b
                }
                Err(e) => {
                    tracing::error!("stats: {e}");
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the store did not answer",
                    )
                        .into_response();
                }
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Encodings a BBS is listed with in Telix (`type: bbs`); anything else is a MUD.
const BBS_ENCODINGS: &[&str] = &["cp437", "petscii", "atascii", "cp850", "koi8-r"];

/// The answering servers as a Telix `directory.json` (an array of `host`, `port`, `name`,
/// `type`, `encoding`, `ssl`).
pub fn telix(rows: &[Row]) -> String {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| r.up)
        .map(|r| {
            let enc = r.facts.encoding.as_deref();
            let bbs = enc.is_some_and(|e| BBS_ENCODINGS.contains(&e.to_ascii_lowercase().as_str()));
            let mut o = json!({
                "host": r.target.host,
                "port": r.target.port,
                "name": r.facts.name.clone().unwrap_or_else(|| r.target.host.clone()),
                "type": if bbs { "bbs" } else { "mud" },
                "ssl": r.target.tls,
            });
            if let (Some(e), Some(map)) = (enc, o.as_object_mut()) {
                map.insert("encoding".into(), json!(e));
            }
            o
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into()) + "\n"
}

/// Every server as CSV (RFC 4180 quoting; a field starting with `=`, `+`, `-` or `@` is
/// prefixed with `'` so a spreadsheet does not run a server's text as a formula).
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "host,port,tls,up,last_seen,name,fingerprint,compat,complete,players,codebase,encoding,scan\r\n",
    );
    for r in rows {
        let s = r.scan.as_ref();
        let fields = [
            r.target.host.clone(),
            r.target.port.to_string(),
            u8::from(r.target.tls).to_string(),
            u8::from(r.up).to_string(),
            r.last_at
                .map(|t| iacscope_shared::record::isoformat_utc(t.saturating_mul(1_000_000)))
                .unwrap_or_default(),
            r.facts.name.clone().unwrap_or_default(),
            s.map(|s| s.fingerprint.clone()).unwrap_or_default(),
            s.map(|s| s.compat.clone()).unwrap_or_default(),
            s.map(|s| u8::from(s.complete).to_string())
                .unwrap_or_default(),
            r.facts.players.map(|p| p.to_string()).unwrap_or_default(),
            r.facts.codebase.clone().unwrap_or_default(),
            r.facts.encoding.clone().unwrap_or_default(),
            s.map(|s| s.id.clone()).unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(f: &str) -> String {
    let f: String = f.chars().filter(|c| !c.is_control()).collect();
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f
    };
    if f.contains([',', '"']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"server-probe": {"fingerprint": "ab", "fingerprint-data": {"offered-options": ["GMCP", "MSSP"], "requested-options": ["CHARSET"]}, "session_data": {"encoding": "cp437", "mssp": {"NAME": "Fake, \"MUD\"", "PLAYERS": ["7"], "CODEBASE": "=cmd()"}}}, "sessions": []}"#;

    fn row(host: &str, up: bool, complete: bool) -> Row {
        Row {
            target: CrawlTarget {
                host: host.into(),
                port: 23,
                tls: false,
            },
            up,
            last_at: Some(0),
            scan: Some(ScanSummary {
                id: "id".into(),
                host: host.into(),
                port: 23,
                ip: "192.0.2.1".into(),
                fingerprint: "ab".into(),
                created: 0,
                config: String::new(),
                name: None,
                players: None,
                source: "live".into(),
                complete,
                compat: "5.0.1".into(),
            }),
            facts: facts(RECORD),
        }
    }

    #[test]
    fn facts_and_stats() {
        let f = facts(RECORD);
        assert_eq!(f.players, Some(7));
        assert_eq!(f.encoding.as_deref(), Some("cp437"));
        assert!(f.options.contains("CHARSET") && f.mssp);
        assert_eq!(facts("not json"), Facts::default());
        let rows = [
            row("a", true, true),
            row("b", true, false),
            row("c", false, true),
        ];
        let s = stats(&rows, 0);
        assert_eq!(s["servers"], 3);
        assert_eq!(s["answering"], 2);
        assert_eq!(s["scanned_complete"], 1);
        assert_eq!(s["protocols"]["GMCP"]["servers"], 1);
        assert_eq!(s["protocols"]["GMCP"]["share"], 1.0);
        assert_eq!(s["protocols"]["MXP"]["servers"], 0);
        assert_eq!(s["protocols"]["MCP"], serde_json::Value::Null);
        assert_eq!(s["players_online"], 14);
        assert_eq!(s["unique_fingerprints"], 1);
        assert_eq!(s["codebases"][0]["servers"], 2);
        assert_eq!(stats(&[], 0)["mssp_share"], serde_json::Value::Null);
    }

    #[test]
    fn telix_and_csv() {
        let rows = [row("a", true, true), row("c", false, true)];
        let t: serde_json::Value = serde_json::from_str(&telix(&rows)).expect("json");
        assert_eq!(
            t.as_array().expect("array").len(),
            1,
            "only answering servers"
        );
        assert_eq!(t[0]["type"], "bbs");
        assert_eq!(t[0]["name"], "Fake, \"MUD\"");
        let c = csv(&rows);
        let lines: Vec<&str> = c.split("\r\n").collect();
        assert_eq!(lines.len(), 4, "{c}");
        assert!(lines[1].contains("\"Fake, \"\"MUD\"\"\""), "{c}");
        assert!(lines[1].contains(",'=cmd()"), "formula defused: {c}");
    }
}
