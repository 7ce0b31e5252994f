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
//!
//! Its `trend` (and a `trend` beside each protocol, codebase and encoding) gives the same
//! figures as they stood at the end of each of the last [`MAX_TREND_ROUNDS`] crawl rounds
//! (`iacscope crawl` rounds and schedule passes, by the time of their last history point):
//! the census rows as of that moment (each server's last attempt and latest complete scan up
//! to then) counted as now. A round's figures are
//! kept in [`StatsCache`] until the round changes (a point added), so a recomputation reads
//! the records of new rounds only.

use crate::directory::db::{CrawlTarget, Db, DbResult, HistoryPoint, ServerScan, OUTCOME_OK};
use crate::serve::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use iacscope_shared::pyjson::{self, Value};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// Most crawl rounds the `/api/stats` trend covers (the newest).
pub const MAX_TREND_ROUNDS: usize = 12;

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
    pub scan: Option<ServerScan>,
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

/// One server of the census with what its rows are made of: its attempts and its scans
/// over the same TLS setting (each the newest [`crate::directory::db::MAX_LIST`]).
struct Known {
    target: CrawlTarget,
    last_at: Option<i64>,
    points: Vec<HistoryPoint>,
    scans: Vec<ServerScan>,
}

/// Every server of the census, at most `limit` (blocking).
fn known(db: &Db, limit: i64) -> DbResult<Vec<Known>> {
    let mut out = Vec::new();
    for e in db.census(limit)? {
        let t = &e.target;
        let mut points = db.history(&t.host, t.port)?;
        points.retain(|p| p.tls == t.tls);
        let mut scans = db.server(&t.host, t.port)?;
        scans.retain(|s| s.tls == t.tls);
        out.push(Known {
            target: e.target,
            last_at: e.last_at,
            points,
            scans,
        });
    }
    Ok(out)
}

/// Record facts read so far in one computation, by scan id.
type FactsRead = HashMap<String, Facts>;

/// `k`'s census row as of `at` (Unix seconds; `None`: now), or `None` when nothing of it
/// was known then. Up: its last attempt by then was `ok` (without one, whether it had a
/// scan); its scan: the latest complete one by then, else the latest.
fn row_at(db: &Db, k: &Known, at: Option<i64>, read: &mut FactsRead) -> DbResult<Option<Row>> {
    let by = |t: i64| at.is_none_or(|at| t <= at);
    // Points are newest first, scans oldest first.
    let point = k.points.iter().find(|p| by(p.at));
    let scans: Vec<&ServerScan> = k.scans.iter().filter(|s| by(s.created)).collect();
    if point.is_none() && scans.is_empty() {
        return Ok(None);
    }
    let up = point.map_or(!scans.is_empty(), |p| p.outcome == OUTCOME_OK);
    let scan = scans
        .iter()
        .rev()
        .find(|s| s.complete)
        .or(scans.last())
        .map(|s| (*s).clone());
    let facts = match &scan {
        Some(s) => match read.get(&s.id) {
            Some(f) => f.clone(),
            None => {
                let f = db.record(&s.id)?.map(|r| facts(&r)).unwrap_or_default();
                read.insert(s.id.clone(), f.clone());
                f
            }
        },
        None => Facts::default(),
    };
    Ok(Some(Row {
        target: k.target.clone(),
        up,
        last_at: match at {
            None => k.last_at,
            Some(_) => point.map(|p| p.at).max(scans.last().map(|s| s.created)),
        },
        scan,
        facts,
    }))
}

/// The census rows (blocking: run off the async threads).
pub fn rows(db: &Db, limit: i64) -> DbResult<Vec<Row>> {
    let mut read = FactsRead::new();
    let mut out = Vec::new();
    for k in known(db, limit)? {
        out.extend(row_at(db, &k, None, &mut read)?);
    }
    Ok(out)
}

/// The newest crawl rounds (at most [`MAX_TREND_ROUNDS`]), oldest first: (round, its
/// points, the time of its last point).
fn rounds(known: &[Known]) -> Vec<(String, usize, i64)> {
    let mut by_round: HashMap<&str, (usize, i64)> = HashMap::new();
    for p in known.iter().flat_map(|k| &k.points) {
        if let Some(c) = &p.crawl {
            let e = by_round.entry(c).or_insert((0, p.at));
            e.0 += 1;
            e.1 = e.1.max(p.at);
        }
    }
    let mut list: Vec<(String, usize, i64)> = by_round
        .into_iter()
        .map(|(c, (n, at))| (c.to_owned(), n, at))
        .collect();
    list.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(&a.0)));
    list.truncate(MAX_TREND_ROUNDS);
    list.reverse();
    list
}

/// `/api/stats` with its `trend` (blocking): the census now, and as of the end of each
/// recent crawl round (reused from `cache` while the round is unchanged).
pub fn stats_with_trend(db: &Db, now: i64, cache: &StatsCache) -> DbResult<serde_json::Value> {
    let known = known(db, MAX_CENSUS)?;
    let mut read = FactsRead::new();
    let mut current = Vec::new();
    for k in &known {
        current.extend(row_at(db, k, None, &mut read)?);
    }
    let mut out = stats(&current, now);
    let rounds = rounds(&known);
    let kept: HashMap<String, Snapshot> = std::mem::take(&mut *cache.lock_rounds());
    let mut snapshots: Vec<(String, i64, Arc<serde_json::Value>)> = Vec::new();
    let mut keep = HashMap::new();
    for (round, points, at) in rounds {
        let figures = match kept.get(&round) {
            Some(s) if s.points == points && s.at == at => Arc::clone(&s.figures),
            _ => {
                let mut rows = Vec::new();
                for k in &known {
                    rows.extend(row_at(db, k, Some(at), &mut read)?);
                }
                Arc::new(stats(&rows, at))
            }
        };
        keep.insert(
            round.clone(),
            Snapshot {
                points,
                at,
                figures: Arc::clone(&figures),
            },
        );
        snapshots.push((round, at, figures));
    }
    *cache.lock_rounds() = keep;
    add_trend(&mut out, &snapshots);
    Ok(out)
}

/// Adds the trend to `out` (an answer of [`stats`]): `trend` holds the rounds and each
/// figure as a list over them (oldest first); each protocol (its share), codebase and
/// encoding gets its own `trend` list beside its numbers (a codebase or encoding counts 0
/// in a round where it was not among that round's [`MAX_LISTED`]).
fn add_trend(out: &mut serde_json::Value, snapshots: &[(String, i64, Arc<serde_json::Value>)]) {
    let series = |f: &dyn Fn(&serde_json::Value) -> serde_json::Value| {
        serde_json::Value::Array(snapshots.iter().map(|(_, _, s)| f(s)).collect())
    };
    let mut t = serde_json::Map::new();
    t.insert(
        "rounds".into(),
        json!(snapshots
            .iter()
            .map(|(r, at, _)| json!({
                "crawl": r,
                "date": iacscope_shared::record::isoformat_utc(at.saturating_mul(1_000_000)),
            }))
            .collect::<Vec<_>>()),
    );
    for k in [
        "servers",
        "answering",
        "scanned_complete",
        "with_mssp",
        "mssp_share",
        "unique_fingerprints",
        "players_online",
    ] {
        t.insert(k.into(), series(&|s| s[k].clone()));
    }
    for k in ["servers", "answering"] {
        t.insert(format!("tls_{k}"), series(&|s| s["tls"][k].clone()));
    }
    for p in PROTOCOLS {
        if let Some(e) = out["protocols"][*p].as_object_mut() {
            e.insert(
                "trend".into(),
                series(&|s| s["protocols"][*p]["share"].clone()),
            );
        }
    }
    for (list, key) in [("codebases", "codebase"), ("encodings", "encoding")] {
        for e in out[list].as_array_mut().into_iter().flatten() {
            let name = e[key].clone();
            let v = series(&|s| {
                let found = s[list].as_array().and_then(|l| {
                    l.iter()
                        .find(|x| x[key] == name)
                        .map(|x| x["servers"].clone())
                });
                found.unwrap_or(json!(0))
            });
            if let Some(e) = e.as_object_mut() {
                e.insert("trend".into(), v);
            }
        }
    }
    if let Some(map) = out.as_object_mut() {
        map.insert("trend".into(), t.into());
    }
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

/// The cached `/api/stats` answer, and the figures of recent crawl rounds.
#[derive(Debug, Default)]
pub struct StatsCache(
    Mutex<Option<(Instant, Arc<str>)>>,
    Mutex<HashMap<String, Snapshot>>,
);

/// A crawl round's figures as of its last point, kept while the round is unchanged.
#[derive(Debug)]
pub struct Snapshot {
    /// Points the round had.
    points: usize,
    /// Time of its last point (Unix seconds).
    at: i64,
    /// `stats` as of `at`.
    figures: Arc<serde_json::Value>,
}

impl StatsCache {
    fn lock_rounds(&self) -> std::sync::MutexGuard<'_, HashMap<String, Snapshot>> {
        self.1.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
            let state = Arc::clone(&st);
            let computed = crate::directory::db::off_thread(&st.db, move |db| {
                Ok(stats_with_trend(db, now, &state.stats)?.to_string())
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
            scan: Some(ServerScan {
                id: "id".into(),
                fingerprint: "ab".into(),
                created: 0,
                players: None,
                uptime: None,
                complete,
                compat: "5.0.1".into(),
                tls: false,
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

    /// A scan of `host` at `at` with `record`, stored with its point in crawl round
    /// `round` (or as a visitor's scan without a point).
    fn put(db: &Db, host: &str, at: i64, record: &str, complete: bool, round: Option<&str>) {
        use crate::directory::db::{NewScan, COMPAT_VERSION, SOURCE_LIVE};
        let id = format!("{host}-{at}");
        let scan = NewScan {
            id: id.clone(),
            host: host.into(),
            port: 23,
            ip: "192.0.2.1".into(),
            fingerprint: format!("fp-{}", record.len()),
            created: at,
            record_json: record.into(),
            transcript_text: String::new(),
            config: "scan-type=quick".into(),
            mssp_players: None,
            mssp_uptime: None,
            mssp_name: None,
            source: SOURCE_LIVE.into(),
            complete,
            compat: COMPAT_VERSION.into(),
        };
        match round {
            Some(r) => {
                let p = point(host, at, OUTCOME_OK, Some(id), r);
                db.insert_with_history(&scan, &p).expect("insert");
            }
            None => {
                db.insert(&scan).expect("insert");
            }
        }
    }

    fn point(
        host: &str,
        at: i64,
        outcome: &str,
        scan: Option<String>,
        round: &str,
    ) -> HistoryPoint {
        HistoryPoint {
            host: host.into(),
            port: 23,
            tls: false,
            at,
            outcome: outcome.into(),
            detail: String::new(),
            scan_id: scan,
            crawl: Some(round.into()),
        }
    }

    /// Issue 10: each figure with its trend across crawl rounds, as of each round's end; a
    /// round's figures are kept until it changes.
    #[test]
    fn trend_across_crawl_rounds() {
        let dir =
            std::env::temp_dir().join(format!("iacscope-census-trend-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Db::connect(None, &dir).expect("open");
        let quiet = r#"{"server-probe": {"fingerprint-data": {"offered-options": ["MSSP"]}, "session_data": {"mssp": {"PLAYERS": "3"}}}, "sessions": []}"#;
        // Round 1: a answers with GMCP and 7 players, b times out.
        put(&db, "a.test", 100, RECORD, true, Some("c/1"));
        db.add_history(&point("b.test", 110, "timeout", None, "c/1"))
            .expect("point");
        // Round 2: a no longer offers GMCP (3 players), b answers as a did.
        put(&db, "a.test", 200, quiet, true, Some("c/2"));
        put(&db, "b.test", 210, RECORD, true, Some("c/2"));
        // A visitor's scan cut short later changes nothing.
        put(&db, "a.test", 300, "{}", false, None);
        let cache = StatsCache::default();
        let s = stats_with_trend(&db, 400, &cache).expect("stats");
        let t = &s["trend"];
        assert_eq!(t["rounds"][0]["crawl"], "c/1", "{t}");
        assert_eq!(t["rounds"][1]["date"], "1970-01-01T00:03:30+00:00", "{t}");
        assert_eq!(t["servers"], json!([2, 2]), "{t}");
        assert_eq!(t["answering"], json!([1, 2]), "{t}");
        assert_eq!(t["players_online"], json!([7, 10]), "{t}");
        assert_eq!(s["protocols"]["GMCP"]["trend"], json!([1.0, 0.5]), "{s}");
        assert_eq!(s["protocols"]["MCP"], serde_json::Value::Null);
        assert_eq!(t["mssp_share"], json!([1.0, 1.0]), "{t}");
        assert_eq!(s["codebases"][0]["codebase"], "=cmd()", "{s}");
        assert_eq!(s["codebases"][0]["trend"], json!([1, 1]), "{s}");
        assert_eq!(s["encodings"][0]["trend"], json!([1, 1]), "{s}");
        // Now: the same as the last round (the cut-short scan does not replace a's).
        assert_eq!(
            (s["answering"].clone(), s["players_online"].clone()),
            (json!(2), json!(10))
        );
        assert_eq!(cache.lock_rounds().len(), 2);
        // Round 2 grows: its figures are recomputed; round 1's are kept as they were.
        put(&db, "c.test", 220, RECORD, true, Some("c/2"));
        cache.lock_rounds().get_mut("c/1").expect("kept").figures =
            Arc::new(json!({"servers": 99}));
        let t = stats_with_trend(&db, 400, &cache).expect("stats")["trend"].clone();
        assert_eq!(t["servers"], json!([99, 3]), "{t}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Rounds are the newest by their last point, at most [`MAX_TREND_ROUNDS`].
    #[test]
    fn rounds_are_the_newest() {
        let points: Vec<HistoryPoint> = (0..20)
            .map(|i| point("a.test", 1000 - i, "timeout", None, &format!("r{i:02}")))
            .collect();
        let k = Known {
            target: CrawlTarget {
                host: "a.test".into(),
                port: 23,
                tls: false,
            },
            last_at: Some(1000),
            points,
            scans: Vec::new(),
        };
        let r = rounds(&[k]);
        assert_eq!(r.len(), MAX_TREND_ROUNDS);
        assert_eq!(r[0].0, "r11", "oldest of the newest 12 first");
        assert_eq!(r[MAX_TREND_ROUNDS - 1], ("r00".to_owned(), 1, 1000));
    }
}
