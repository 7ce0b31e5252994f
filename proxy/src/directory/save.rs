//! Permalinks: `POST /api/sessions/{id}/save` and the read endpoints of saved scans.
//!
//! The proxy never trusts a result from the browser. A save names a closed session and the
//! few settings the page scanned with; the proxy replays *its own* transcript of that
//! session through the engine ([`iacscope_shared::relay`]), builds the record itself, and stores
//! record and transcript under an id derived from their content. A fingerprint the browser
//! reports is only compared (and a difference logged). Storage is in [`super::db`].

use super::changes;
use super::db::{
    HistoryPoint, NewScan, ServerHit, ServerScan, SharedBy, COMPAT_VERSION, SOURCE_LIVE,
};
use crate::relay::limits::client_key;
use crate::relay::store::Missing;
use crate::serve::AppState;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iacscope_shared::config::ScanConfig;
use iacscope_shared::mssp_check;
use iacscope_shared::pyjson::{self, Value};
use iacscope_shared::record::{isoformat_utc, SessionInfo};
use iacscope_shared::relay::{replay_relay, SaveConfig};
use iacscope_shared::transcript::Transcript;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Largest save request body: three short settings and a hash.
pub const MAX_SAVE_BODY: usize = 4 * 1024;

/// Hex digits of sha256 in a scan id (128 bits: unguessable and collision-free in practice).
pub const ID_HEX_LEN: usize = 32;

/// Clients remembered by the rate limiter before idle (full) buckets are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The permalink routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/sessions/{id}/save",
            post(save_handler).layer(DefaultBodyLimit::max(MAX_SAVE_BODY)),
        )
        .route("/api/scans/{id}", get(scan_handler))
        .route("/api/scans/{id}/transcript", get(scan_transcript_handler))
        .route("/api/scans/{id}/summary", get(summary_handler))
        .route("/api/search", get(search_handler))
        .route("/api/fingerprints/{hash}", get(fingerprint_handler))
        .route("/api/servers/{host}/{port}", get(server_handler))
    // `/s/{id}` is the web app's page (`embed::router` serves its `index.html` with oEmbed
    // discovery tags), which fetches `/api/scans/{id}` (a 404 there is its "not found").
}

/// The save request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    /// The settings the page scanned with (whitelisted fields only).
    #[serde(default)]
    pub config: SaveConfig,
    /// The fingerprint the browser computed: compared, never stored.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Per-client token bucket for saves (IPv6 clients count per /64, as for sessions).
#[derive(Debug)]
pub struct SaveLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl SaveLimiter {
    /// `per_minute` saves per client per minute, in bursts of up to that many.
    pub fn new(per_minute: u32) -> SaveLimiter {
        SaveLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client` at `now`; `false` when it has none left.
    pub fn allow(&self, client: IpAddr, now: Instant) -> bool {
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= MAX_TRACKED_CLIENTS {
            b.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < cap
            });
        }
        let (tokens, last) = b.entry(client_key(client)).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("permalink store: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "storage error",
    )
}

/// The content id: sha256 over the transcript text and the canonical settings.
pub fn scan_id(transcript_text: &str, config: &str) -> String {
    content_id(&[transcript_text.as_bytes(), b"\nconfig ", config.as_bytes()])
}

/// The first [`ID_HEX_LEN`] hex digits of sha256 over `parts`, in order: a stored scan's id.
pub fn content_id(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let mut id = iacscope_shared::mud::hex(&h.finalize());
    id.truncate(ID_HEX_LEN);
    id
}

/// An MSSP variable from a record's `session_data` as plain text: a string, or the first of a list (MSSP
/// allows repeated variables), at most [`MAX_NAME_CHARS`] characters.
pub fn mssp_text(record: &Value, key: &str) -> Option<String> {
    let v = record.as_dict()?.get("mssp")?.as_dict()?.get(key)?;
    let s = match v {
        Value::Str(s) => s.to_string_lossy(),
        Value::List(l) => match l.first()? {
            Value::Str(s) => s.to_string_lossy(),
            _ => return None,
        },
        _ => return None,
    };
    let s: String = s.trim().chars().take(MAX_NAME_CHARS).collect();
    (!s.is_empty()).then_some(s)
}

/// Most characters of a client-supplied value a log line shows.
const MAX_LOGGED_CHARS: usize = 80;

/// Longest server name kept for search and titles.
pub const MAX_NAME_CHARS: usize = 120;

/// An MSSP variable from a record, as JSON text.
pub fn mssp_value(record: &Value, key: &str) -> Option<String> {
    Some(pyjson::to_pretty(changes::record_mssp(record)?.get(key)?))
}

async fn save_handler(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    UrlPath(session): UrlPath<String>,
    body: Result<Json<SaveRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let client = crate::serve::client_ip(&st.config, peer.ip(), &headers);
    if !st.saves.allow(client, Instant::now()) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many saves from this address; try again in a minute",
        );
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    let (transcript, closed_at) = match st.store.closed(&session, Instant::now()) {
        Ok(x) => x,
        Err(Missing::Live) => {
            return error(
                StatusCode::CONFLICT,
                "session_open",
                "the session is still open; save it after it closes",
            )
        }
        Err(Missing::Gone) => {
            return error(
                StatusCode::NOT_FOUND,
                "no_session",
                "no such session (or its transcript has expired)",
            )
        }
    };
    let prepared = match prepare(
        &transcript,
        &req.config,
        st.config.max_saved_transcript_bytes,
    ) {
        Ok(p) => p,
        Err(SaveRefusal::Client(status, code, message)) => return error(status, code, message),
        Err(SaveRefusal::Internal(e)) => return internal(e),
    };
    let id = prepared.id.clone();
    let db = Arc::clone(&st.db);
    let browser_fp = req.fingerprint.clone();
    let session_id = session.clone();
    // Replaying is CPU work and the insert a synced disk write: off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        let saved = replay_and_insert(&db, &transcript, prepared, closed_at, &session_id)?;
        let shared = db
            .shared_count(&saved.fingerprint, COMPAT_VERSION)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((saved.fingerprint, shared, saved.consistent))
    })
    .await;
    let (fingerprint, shared_by, consistent) = match result {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let browser_agrees = browser_fp.as_ref().map(|fp| *fp == fingerprint);
    if browser_agrees == Some(false) {
        // What the browser reported is the client's text: logged escaped (`?`: quoted, with
        // control characters as `\n`, `\u{1b}`), and cut, so it cannot forge log lines.
        let reported: String = browser_fp
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(MAX_LOGGED_CHARS)
            .collect();
        tracing::warn!(
            session = %session,
            scan = %id,
            proxy = %fingerprint,
            browser = ?reported,
            "browser reported a different fingerprint; stored the proxy's replay"
        );
    }
    Json(json!({
        "id": id,
        "url": format!("/s/{id}"),
        "fingerprint": fingerprint,
        "shared_by": shared_by,
        "consistent": consistent,
        "browser_agrees": browser_agrees,
    }))
    .into_response()
}

/// Why a relay transcript cannot be saved.
#[derive(Debug)]
pub enum SaveRefusal {
    /// The request's fault (or the transcript's size): status, error code, sentence.
    Client(StatusCode, &'static str, String),
    /// A transcript the proxy itself recorded wrongly (logged, answered as a storage error).
    Internal(String),
}

/// A closed relay transcript checked for saving: its content id, text and settings.
#[derive(Debug)]
pub struct Prepared {
    /// The content id ([`scan_id`]).
    pub id: String,
    /// The transcript text that is stored.
    pub text: String,
    /// The canonical settings text ([`SaveConfig::canonical`]).
    pub config: String,
    /// The engine configuration the replay uses.
    pub cfg: ScanConfig,
    /// Host as asked.
    pub host: String,
    /// Address connected to.
    pub ip: String,
    /// Port.
    pub port: u16,
}

/// Checks a closed relay transcript (with `host`, `port`, `ip` and `tls` meta) and the
/// settings it was scanned with, as a save does: not truncated, settings valid, text at
/// most `max_bytes`.
pub fn prepare(
    transcript: &Transcript,
    save: &SaveConfig,
    max_bytes: usize,
) -> Result<Prepared, SaveRefusal> {
    if transcript.truncated {
        return Err(SaveRefusal::Client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "transcript_max_bytes: the session's transcript reached the proxy's bound and \
             was cut, so it cannot be replayed; a scan alone stays far inside it, so scan \
             again without sending more than the scan does"
                .into(),
        ));
    }
    let meta = |k: &str| transcript.meta(k).unwrap_or_default().to_owned();
    let tls = !matches!(transcript.meta("tls"), None | Some("0"));
    let cfg = save
        .to_scan_config(tls)
        .map_err(|e| SaveRefusal::Client(StatusCode::BAD_REQUEST, "bad_config", e))?;
    let text = transcript.to_text();
    if text.len() > max_bytes {
        return Err(SaveRefusal::Client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the transcript is {} bytes; at most {max_bytes} are stored",
                text.len()
            ),
        ));
    }
    let Ok(port) = meta("port").parse::<u16>() else {
        return Err(SaveRefusal::Internal("session without a port".into()));
    };
    let config = SaveConfig::canonical(&cfg);
    Ok(Prepared {
        id: scan_id(&text, &config),
        text,
        config,
        cfg,
        host: meta("host"),
        ip: meta("ip"),
        port,
    })
}

/// What [`replay_and_insert`] stored.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The scan id.
    pub id: String,
    /// The fingerprint of the proxy's replay.
    pub fingerprint: String,
    /// Whether the client sent exactly what the replayed engine sends.
    pub consistent: bool,
}

/// The save path after [`prepare`]: replays the transcript through the engine
/// ([`replay_relay`]), builds the record (connected at `closed_at`, Unix microseconds) and
/// inserts it with the transcript (idempotent on the id). Blocking: CPU work and a synced
/// write. `label` names the session in log lines.
pub fn replay_and_insert(
    db: &super::db::Db,
    transcript: &Transcript,
    p: Prepared,
    closed_at: i64,
    label: &str,
) -> Result<Saved, String> {
    let (scan, saved) = replay_row(transcript, p, closed_at, label);
    db.insert(&scan).map_err(|e| e.to_string())?;
    Ok(saved)
}

/// [`replay_and_insert`] without the insert: the row a save stores and what it reports, for
/// a caller that stores the row with more in the same transaction (a crawl stores its
/// history point with it). CPU work only.
pub fn replay_row(
    transcript: &Transcript,
    p: Prepared,
    closed_at: i64,
    label: &str,
) -> (NewScan, Saved) {
    let r = replay_relay(transcript, p.cfg);
    let outcome = r.scanner.outcome();
    let fingerprint = outcome.fingerprint.clone();
    if !r.scanner.is_done() {
        tracing::warn!(session = %label, "replay did not finish within its step bound");
    }
    if !r.consistent() {
        tracing::warn!(
            session = %label,
            "browser sent other bytes than the proxy's replay: timelines diverged \
             (stored record follows the proxy's)"
        );
    }
    let info = SessionInfo {
        host: p.host.clone(),
        ip: p.ip.clone(),
        port: p.port,
        connected: isoformat_utc(closed_at),
    };
    let record = outcome.record(&info);
    let scan = NewScan {
        id: p.id.clone(),
        host: p.host,
        port: p.port,
        ip: p.ip,
        fingerprint: fingerprint.clone(),
        created: closed_at.div_euclid(1_000_000),
        record_json: pyjson::to_pretty(&record).into(),
        transcript_text: p.text,
        config: p.config,
        mssp_players: mssp_value(&record, "PLAYERS"),
        mssp_uptime: mssp_value(&record, "UPTIME"),
        // MSSP lives in the record's `server-probe.session_data`.
        mssp_name: mssp_text(&outcome.session_data, "NAME"),
        source: SOURCE_LIVE.into(),
        // A scan the server cut short (no probes) is kept, marked incomplete.
        complete: outcome.probe_ran,
        compat: COMPAT_VERSION.into(),
    };
    let saved = Saved {
        id: p.id,
        fingerprint,
        consistent: r.consistent(),
    };
    (scan, saved)
}

/// Runs a database read off the async threads.
async fn read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&super::db::Db) -> super::db::DbResult<T> + Send + 'static,
) -> Result<T, Response> {
    super::db::off_thread(&st.db, f).await.map_err(internal)
}

/// Whether `id` has the shape of a scan id.
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_HEX_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such scan")
}

async fn scan_handler(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> Response {
    if !valid_id(&id) {
        return not_found();
    }
    match read(&st, move |db| db.record(&id)).await {
        Ok(Some(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

async fn scan_transcript_handler(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !valid_id(&id) {
        return not_found();
    }
    match read(&st, move |db| db.transcript(&id)).await {
        Ok(Some(t)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

/// `GET /api/fingerprints/{hash}?version=…`: the telnetlib3-fingerprint version the hash
/// is of (default iacscope's, 5.0.1); hashes of other versions are other fingerprints.
#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

/// Longest `version` asked for.
const MAX_VERSION_CHARS: usize = 32;

async fn fingerprint_handler(
    State(st): State<Arc<AppState>>,
    UrlPath(hash): UrlPath<String>,
    axum::extract::Query(query): axum::extract::Query<VersionQuery>,
) -> Response {
    let h = hash.clone();
    let version: String = query
        .version
        .unwrap_or_else(|| COMPAT_VERSION.to_owned())
        .chars()
        .take(MAX_VERSION_CHARS)
        .collect();
    let v = version.clone();
    match read(&st, move |db| db.shared_by(&h, &v)).await {
        Ok(servers) => Json(json!({
            "fingerprint": hash,
            "version": version,
            "servers": servers.iter().map(|s: &SharedBy| json!({
                "host": s.host,
                "port": s.port,
                "scan": s.scan,
                "url": format!("/s/{}", s.scan),
                "date": isoformat_utc(s.created.saturating_mul(1_000_000)),
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn server_handler(
    State(st): State<Arc<AppState>>,
    UrlPath((host, port)): UrlPath<(String, u16)>,
) -> Response {
    let h = host.clone();
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    let found = read(&st, move |db| {
        let name = db.latest(&h, port)?.and_then(|l| l.name);
        let scans = db.server(&h, port)?;
        // The MSSP of the newest complete scans, oldest first (one record read each).
        let complete: Vec<&ServerScan> = scans.iter().filter(|s| s.complete).collect();
        let mut mssp = Vec::new();
        for s in &complete[complete.len().saturating_sub(changes::MAX_DIFFED_SCANS)..] {
            let m = db.record(&s.id)?.and_then(|r| changes::mssp_of(&r));
            mssp.push((s.created, s.id.clone(), m));
        }
        let mssp_changes = changes::mssp_changes(&mssp);
        Ok((scans, name, db.history(&h, port)?, mssp_changes))
    })
    .await;
    let date = |secs: i64| isoformat_utc(secs.saturating_mul(1_000_000));
    match found {
        Ok((scans, name, mut history, mssp_changes)) => {
            history.reverse(); // oldest first, as the scans
            Json(json!({
                "host": host,
                "port": port,
                // The MSSP NAME of the latest complete scan.
                "name": name,
                "scans": scans.iter().map(|s: &ServerScan| json!({
                    "id": s.id,
                    "url": format!("/s/{}", s.id),
                    "fingerprint": s.fingerprint,
                    "date": date(s.created),
                    "players": parse(&s.players),
                    "uptime": parse(&s.uptime),
                    "complete": s.complete,
                    "compat": s.compat,
                    "tls": s.tls,
                })).collect::<Vec<_>>(),
                "history": {
                    // Every attempt: up (a stored scan) or down, with why.
                    "points": history.iter().map(|p: &HistoryPoint| json!({
                        "date": date(p.at),
                        "tls": p.tls,
                        "up": p.outcome == super::db::OUTCOME_OK,
                        "outcome": p.outcome,
                        "detail": p.detail,
                        "scan": p.scan_id,
                        "crawl": p.crawl,
                    })).collect::<Vec<_>>(),
                    "players": scans.iter().filter_map(|s| {
                        parse(&s.players).map(|p| json!({"date": date(s.created), "players": p}))
                    }).collect::<Vec<_>>(),
                    "fingerprints": fingerprint_changes(&scans).iter().map(|c| json!({
                        "fingerprint": c.fingerprint,
                        "compat": c.compat,
                        "from": date(c.from),
                        "to": date(c.to),
                        "scans": c.scans,
                    })).collect::<Vec<_>>(),
                    // What changed in its MSSP between complete scans (PLAYERS and UPTIME
                    // left out: `players` above, each scan's `uptime`).
                    "mssp_changes": changes::to_json(&mssp_changes),
                },
            }))
            .into_response()
        }
        Err(r) => r,
    }
}

/// One fingerprint a server had, from its first to its last complete scan in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FingerprintSpan {
    /// The fingerprint.
    pub fingerprint: String,
    /// Its telnetlib3-fingerprint version.
    pub compat: String,
    /// Unix seconds of the first and last scan of the run.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// Complete scans in the run.
    pub scans: usize,
}

/// The runs of one fingerprint in a server's complete scans (oldest first): each change of
/// fingerprint (or of version) starts a new run. Incomplete scans change nothing.
pub fn fingerprint_changes(scans: &[ServerScan]) -> Vec<FingerprintSpan> {
    let mut out: Vec<FingerprintSpan> = Vec::new();
    for s in scans.iter().filter(|s| s.complete) {
        match out.last_mut() {
            Some(last) if last.fingerprint == s.fingerprint && last.compat == s.compat => {
                last.to = s.created;
                last.scans += 1;
            }
            _ => out.push(FingerprintSpan {
                fingerprint: s.fingerprint.clone(),
                compat: s.compat.clone(),
                from: s.created,
                to: s.created,
                scans: 1,
            }),
        }
    }
    out
}

async fn summary_handler(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !valid_id(&id) {
        return not_found();
    }
    let found = read(&st, move |db| {
        let Some(s) = db.summary(&id)? else {
            return Ok(None);
        };
        let shared = db.shared_count(&s.fingerprint, &s.compat)?;
        let findings = db
            .record(&id)?
            .map(|json| mssp_findings(&json, &s.host, s.port, s.created))
            .unwrap_or_default();
        Ok(Some((s, shared, findings)))
    })
    .await;
    match found {
        Ok(Some((s, shared, findings))) => Json(json!({
            "id": s.id,
            "host": s.host,
            "port": s.port,
            "ip": s.ip,
            "fingerprint": s.fingerprint,
            "date": isoformat_utc(s.created.saturating_mul(1_000_000)),
            "created": s.created,
            "config": s.config,
            "name": s.name,
            "players": s.players.as_deref().and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()),
            "source": s.source,
            "complete": s.complete,
            "compat": s.compat,
            // Other servers: this one is among those counted (when complete).
            "shared_by": (shared - i64::from(s.complete)).max(0),
            // The MSSP checked against the specification, as of when it was scanned.
            "mssp_check": {
                "warnings": mssp_check::warnings(&findings),
                "findings": findings.iter().map(|f| json!({
                    "var": f.var,
                    "level": f.level.as_str(),
                    "text": f.text,
                })).collect::<Vec<_>>(),
            },
        }))
        .into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

/// The MSSP check of a stored record (empty when the record does not parse).
fn mssp_findings(json: &str, host: &str, port: u16, created: i64) -> Vec<mssp_check::Finding> {
    let Ok(rec) = iacscope_shared::pyjson::parse(json) else {
        return Vec::new();
    };
    let probe = rec.as_dict().and_then(|d| d.get("server-probe"));
    let get = |k: &str| probe.and_then(|p| p.as_dict()).and_then(|d| d.get(k));
    match (get("fingerprint-data"), get("session_data")) {
        (Some(fp), Some(sd)) => mssp_check::check_record(fp, sd, host, port, created),
        _ => Vec::new(),
    }
}

/// `GET /api/search?q=…`.
#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Longest search text accepted.
pub const MAX_QUERY_CHARS: usize = 100;

/// Most results a search returns.
pub const SEARCH_LIMIT: i64 = 50;

async fn search_handler(
    State(st): State<Arc<AppState>>,
    axum::extract::Query(q): axum::extract::Query<SearchQuery>,
) -> Response {
    let text = q.q.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_QUERY_CHARS {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("search for 1 to {MAX_QUERY_CHARS} characters of a name or host"),
        );
    }
    let t = text.clone();
    match read(&st, move |db| db.search(&t, SEARCH_LIMIT)).await {
        Ok(hits) => Json(json!({
            "query": text,
            "servers": hits.iter().map(|h: &ServerHit| json!({
                "host": h.host,
                "port": h.port,
                "name": h.name,
                "scan": h.scan,
                "url": format!("/s/{}", h.scan),
                "fingerprint": h.fingerprint,
                "date": isoformat_utc(h.created.saturating_mul(1_000_000)),
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => r,
    }
}
