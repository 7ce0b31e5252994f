//! The permalink store, behind one facade type [`Db`] with two backends:
//!
//! - SQLite (the default): an embedded file `<data-dir>/iacscope.db`, created on first run,
//!   in WAL mode with `synchronous=FULL` so that a save the proxy has acknowledged survives
//!   `kill -9` and power loss (`db/sqlite.rs`);
//! - PostgreSQL (`--database-url postgres://…`), so that several proxy instances behind a
//!   load balancer share one directory; commits wait for the WAL flush
//!   (`synchronous_commit=on`) (`db/postgres.rs`).
//!
//! Both apply the same numbered migrations (recorded in `schema_version`) and answer every
//! query with the same semantics; the store tests run against both.
//!
//! Large texts (records, transcripts, import templates) are stored once, in the `texts`
//! table keyed by their sha256, and rows reference them (see [`RecordText`]); rows older
//! than migration 3 keep theirs inline and are read as before.
//!
//! This module only stores and looks up; what is stored (the replayed record) is decided in
//! `save`. Calls are blocking: handlers run them under `spawn_blocking`.

mod postgres;
mod sqlite;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// One scan to store.
#[derive(Clone, Debug)]
pub struct NewScan {
    /// Content id (hex of sha256 over transcript text and configuration).
    pub id: String,
    /// Host as the browser asked for it.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Address the proxy connected to.
    pub ip: String,
    /// Fingerprint hash the proxy's replay found.
    pub fingerprint: String,
    /// Unix seconds of the save.
    pub created: i64,
    /// The telnetlib3-compatible record, exactly as served (whole, or a shared template
    /// and this row's part: see [`RecordText`]).
    pub record_json: RecordText,
    /// The proxy's transcript text.
    pub transcript_text: String,
    /// Canonical scan configuration.
    pub config: String,
    /// MSSP `PLAYERS` as JSON text, when the server sent it.
    pub mssp_players: Option<String>,
    /// MSSP `UPTIME` as JSON text, when the server sent it.
    pub mssp_uptime: Option<String>,
    /// MSSP `NAME` as plain text (the first value when several), when the server sent it.
    pub mssp_name: Option<String>,
    /// `live` (a save from a proxied session) or `import` (`iacscope import`: a record
    /// without a transcript).
    pub source: String,
    /// Whether the probes ran (the engine's `probe_ran`): a scan cut short by the server
    /// closing during the banner or probes is kept and shown, but never replaces the
    /// server's last complete fingerprint on badges and embeds, nor counts in "shared by".
    pub complete: bool,
    /// The telnetlib3-fingerprint version whose procedure the hash reproduces
    /// ([`COMPAT_VERSION`] for iacscope's own scans, [`COMPAT_UNKNOWN`] when unknown).
    /// Hashes drift between versions, so "shared by N" counts within one.
    pub compat: String,
}

/// The telnetlib3-fingerprint version iacscope's scans reproduce.
pub const COMPAT_VERSION: &str = "5.0.1";
/// The version of an imported record whose shape does not say.
pub const COMPAT_UNKNOWN: &str = "unknown";

/// The byte that marks, in a record template, where a row's part goes. `pyjson` output never
/// holds it raw (it writes `\u0001`), and PostgreSQL text can hold it (unlike NUL).
pub const RECORD_MARKER: char = '\u{1}';

/// A text stored once in the store's `texts` table, keyed by the lower-case hex sha256 of
/// its bytes; cheap to clone, so one template can be shared by many rows of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedText {
    hash: String,
    body: Arc<str>,
}

impl SharedText {
    /// `body` with its hash.
    pub fn new(body: impl Into<Arc<str>>) -> SharedText {
        let body = body.into();
        SharedText {
            hash: text_hash(&body),
            body,
        }
    }

    /// The hex sha256 of the text.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The text.
    pub fn body(&self) -> &str {
        &self.body
    }
}

/// The lower-case hex sha256 of `text` (the key of the `texts` table).
pub fn text_hash(text: &str) -> String {
    iacscope_shared::mud::hex(&Sha256::digest(text.as_bytes()))
}

/// A record as a caller hands it to the store. Either way the store serves the whole text,
/// byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordText {
    /// The whole text (stored once in `texts`, whatever the number of rows holding it).
    Whole(String),
    /// A template holding [`RECORD_MARKER`] exactly once (stored once) and the text that
    /// replaces the marker in this row (stored with the row): an import's rows differ only
    /// in their one `sessions` entry.
    Spliced {
        /// The shared part.
        template: SharedText,
        /// What replaces the marker.
        part: String,
    },
}

impl RecordText {
    /// The whole text, as the store serves it.
    pub fn to_text(&self) -> String {
        match self {
            RecordText::Whole(s) => s.clone(),
            RecordText::Spliced { template, part } => splice(template.body(), part),
        }
    }

    /// Checks the one-marker rule of a template.
    fn check(&self) -> DbResult<()> {
        match self {
            RecordText::Whole(_) => Ok(()),
            RecordText::Spliced { template, part } => {
                if template.body().matches(RECORD_MARKER).count() != 1 || part.contains('\u{1}') {
                    return Err(DbError::new(
                        "a record template must hold the marker exactly once, its part never",
                    ));
                }
                Ok(())
            }
        }
    }
}

impl From<String> for RecordText {
    fn from(s: String) -> RecordText {
        RecordText::Whole(s)
    }
}

impl From<&str> for RecordText {
    fn from(s: &str) -> RecordText {
        RecordText::Whole(s.to_owned())
    }
}

/// `template` with its one [`RECORD_MARKER`] replaced by `part` (what the SQL reads do).
pub fn splice(template: &str, part: &str) -> String {
    match template.split_once(RECORD_MARKER) {
        Some((head, tail)) => {
            let mut s = String::with_capacity(head.len() + part.len() + tail.len());
            s.push_str(head);
            s.push_str(part);
            s.push_str(tail);
            s
        }
        None => template.to_owned(),
    }
}

/// Source of rows saved from proxied sessions.
pub const SOURCE_LIVE: &str = "live";
/// Source of rows loaded by `iacscope import` (record only, empty transcript).
pub const SOURCE_IMPORT: &str = "import";

/// What is known about one stored scan, without its large texts.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ScanSummary {
    /// Scan id.
    pub id: String,
    /// Host as asked.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Address connected to.
    pub ip: String,
    /// Fingerprint hash.
    pub fingerprint: String,
    /// Unix seconds.
    pub created: i64,
    /// Canonical scan settings (`scan-type=… encoding=… ttype=… tls=…`).
    pub config: String,
    /// MSSP `NAME`, if sent.
    pub name: Option<String>,
    /// MSSP `PLAYERS` (JSON text), if sent.
    pub players: Option<String>,
    /// `live` or `import`.
    pub source: String,
    /// Whether the probes ran (see [`NewScan::complete`]).
    pub complete: bool,
    /// The telnetlib3-fingerprint version the hash reproduces.
    pub compat: String,
}

/// A server found by [`Db::search`]: its latest scan.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ServerHit {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// MSSP `NAME` of the latest scan, if sent.
    pub name: Option<String>,
    /// Latest scan id.
    pub scan: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its Unix seconds.
    pub created: i64,
}

/// One stored scan with its record (for `iacscope export`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredScan {
    /// The summary.
    pub summary: ScanSummary,
    /// The record's JSON text, exactly as stored.
    pub record_json: String,
}

/// A server sharing a fingerprint: its latest scan with that fingerprint.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SharedBy {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Latest scan id.
    pub scan: String,
    /// Unix seconds of that scan.
    pub created: i64,
}

/// One scan of a server.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ServerScan {
    /// Scan id.
    pub id: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Unix seconds.
    pub created: i64,
    /// MSSP `PLAYERS` (JSON text), if sent.
    pub players: Option<String>,
    /// MSSP `UPTIME` (JSON text), if sent.
    pub uptime: Option<String>,
    /// Whether the probes ran.
    pub complete: bool,
    /// The telnetlib3-fingerprint version the hash reproduces.
    pub compat: String,
    /// Whether it was over TLS (config word [`TLS_WORD`]).
    pub tls: bool,
}

/// The outcome word of a history point whose scan was stored.
pub const OUTCOME_OK: &str = "ok";

/// One point of a server's history: how one scan attempt ended. A stored scan is `ok` with
/// its id; a failure carries its code (`dns_failure`, `connection_refused`, `timeout`,
/// `tls_failure`, `closed_early`, `refused_by_policy`, …), a sentence and no scan.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HistoryPoint {
    /// Host as scanned (normalised by the policy).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Whether the attempt was over TLS.
    pub tls: bool,
    /// Unix seconds of the end of the attempt.
    pub at: i64,
    /// [`OUTCOME_OK`] or a failure code.
    pub outcome: String,
    /// What happened, as a sentence (for a TLS scan, whether the certificate verified).
    pub detail: String,
    /// The stored scan, when `ok`.
    pub scan_id: Option<String>,
    /// The crawl round that made it (`<crawl id>/<round>`), if any: a round has at most one
    /// point per target, which is its done mark.
    pub crawl: Option<String>,
}

/// A server to crawl: host, port and whether over TLS.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrawlTarget {
    /// Host (a name or an address, as the policy normalises it).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Over TLS.
    pub tls: bool,
}

/// A server the census knows (scanned by anyone, imported, or tried by a crawl), with what
/// the schedule needs to decide whether it is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CensusEntry {
    /// Host, port, TLS.
    pub target: CrawlTarget,
    /// Unix seconds of its last scan or history point, if any.
    pub last_at: Option<i64>,
    /// Its latest complete scan, else its latest scan (whose MSSP may ask for a `CRAWL
    /// DELAY`: a scan cut short before MSSP does not forget the delay).
    pub latest_id: Option<String>,
}

/// A crawl target leased to this worker ([`Db::crawl_claim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The target.
    pub target: CrawlTarget,
    /// `--encoding` its seed named.
    pub encoding: Option<String>,
    /// The worker whose lease on it had expired, if it had been leased before (that worker
    /// stopped, or stalled past its lease).
    pub expired_lease_of: Option<String>,
}

/// A store error (SQL, I/O or connection), as a sentence for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError(String);

impl DbError {
    fn new(msg: impl Into<String>) -> DbError {
        DbError(msg.into())
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError(e.to_string())
    }
}

impl From<::postgres::Error> for DbError {
    fn from(e: ::postgres::Error) -> DbError {
        // The client's Display is only the kind ("db error"); the cause says what happened.
        match std::error::Error::source(&e) {
            Some(cause) => DbError(format!("{e}: {cause}")),
            None => DbError(e.to_string()),
        }
    }
}

/// What store calls return.
pub type DbResult<T> = Result<T, DbError>;

/// Runs `f` on the store off the async threads (store calls block: disk syncs, or a
/// PostgreSQL round trip); a store error or a panic in `f` comes back as its sentence.
pub async fn off_thread<T: Send + 'static>(
    db: &Arc<Db>,
    f: impl FnOnce(&Db) -> DbResult<T> + Send + 'static,
) -> Result<T, String> {
    let db = Arc::clone(db);
    match tokio::task::spawn_blocking(move || f(&db)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The database: SQLite or PostgreSQL, with the same methods and semantics.
#[derive(Debug)]
pub struct Db {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// `s` with LIKE's wildcards (and the escape character) escaped by `\`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The word of a scan's `config` that marks a TLS scan (see [`Db::latest_with_tls`]).
pub const TLS_WORD: &str = "tls=1";

/// Most rows a listing returns (a popular fingerprint could be shared by thousands).
pub const MAX_LIST: i64 = 500;

/// The SQLite file's name inside the data directory.
pub const SQLITE_FILE: &str = "iacscope.db";

/// URL schemes that select PostgreSQL.
const POSTGRES_SCHEMES: &[&str] = &["postgres://", "postgresql://"];

/// Environment variable with the PostgreSQL URL the store tests use.
pub const TEST_URL_ENV: &str = "IACSCOPE_TEST_DATABASE_URL";
/// Environment variable that makes the PostgreSQL store tests fail (instead of skip) when
/// [`TEST_URL_ENV`] is missing or unusable (`cargo xtask test` sets it).
pub const REQUIRE_POSTGRES_ENV: &str = "IACSCOPE_REQUIRE_POSTGRES";
/// Longest test schema name (PostgreSQL truncates identifiers at 63 bytes).
const MAX_SCHEMA_NAME: usize = 63;

/// Dispatches one call to the backend.
macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => Ok($call?),
            Backend::Postgres($b) => $call,
        }
    };
}

impl Db {
    /// Opens the store: PostgreSQL when `database_url` is a `postgres://` (or
    /// `postgresql://`) URL, else the SQLite file [`SQLITE_FILE`] in `data_dir` (created on
    /// first run). Migrates either. A bad URL, an unreachable server (after a bounded connect
    /// timeout) or a failed migration is an error that says which.
    pub fn connect(database_url: Option<&str>, data_dir: &Path) -> Result<Db, String> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Db::open(&data_dir.join(SQLITE_FILE)),
            Some(url) if POSTGRES_SCHEMES.iter().any(|s| url.starts_with(s)) => Ok(Db {
                backend: Backend::Postgres(postgres::Postgres::connect(url)?),
            }),
            Some(url) => {
                let scheme = url.split_once("://").map_or("", |(s, _)| s);
                Err(format!(
                    "unsupported database URL scheme `{scheme}` (expected postgres://…; \
                     leave the URL unset for SQLite in the data directory)"
                ))
            }
        }
    }

    /// Opens (creating the directory and file on first run) and migrates a SQLite store.
    pub fn open(path: &Path) -> Result<Db, String> {
        Ok(Db {
            backend: Backend::Sqlite(sqlite::Sqlite::open(path)?),
        })
    }

    /// Which backend this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The schema version.
    pub fn version(&self) -> DbResult<i64> {
        dispatch!(self, b => b.version())
    }

    /// Stores a scan; the same id again (same transcript, same settings) is a no-op.
    /// Returns whether a row was added. Returns once the row is durable.
    pub fn insert(&self, s: &NewScan) -> DbResult<bool> {
        s.record_json.check()?;
        dispatch!(self, b => b.insert(s))
    }

    /// Stores `scans` in one transaction, so one durable commit for all of them (an import's
    /// batch); each id already stored, or repeated in `scans`, is skipped as by
    /// [`Db::insert`]. Returns how many rows were added. On an error nothing is added.
    pub fn insert_many(&self, scans: &[NewScan]) -> DbResult<usize> {
        if scans.is_empty() {
            return Ok(0);
        }
        for s in scans {
            s.record_json.check()?;
        }
        dispatch!(self, b => b.insert_many(scans))
    }

    /// Ids of every scan of `host`:`port` with this fingerprint created at the second
    /// `created`, in id order. Not bounded by [`MAX_LIST`]: so few scans of one server share
    /// a second that the answer is exact (import uses it to recognise a stored save).
    pub fn scan_ids_at(
        &self,
        host: &str,
        port: u16,
        fingerprint: &str,
        created: i64,
    ) -> DbResult<Vec<String>> {
        dispatch!(self, b => b.scan_ids_at(host, port, fingerprint, created))
    }

    /// A stored record's JSON text (spliced back together when stored as a template and a
    /// part).
    pub fn record(&self, id: &str) -> DbResult<Option<String>> {
        dispatch!(self, b => b.record(id))
    }

    /// A stored transcript's text.
    pub fn transcript(&self, id: &str) -> DbResult<Option<String>> {
        dispatch!(self, b => b.transcript(id))
    }

    /// Bytes of text the store holds: the `texts` table, plus what rows hold themselves
    /// (inline texts of rows from before migration 3, record parts). What an import adds is
    /// bounded by this measure.
    pub fn stored_text_bytes(&self) -> DbResult<i64> {
        dispatch!(self, b => b.stored_text_bytes())
    }

    /// The servers (host, port) whose complete scans stamped `compat` have this
    /// fingerprint, each with its latest such scan, newest first (at most [`MAX_LIST`]).
    pub fn shared_by(&self, fingerprint: &str, compat: &str) -> DbResult<Vec<SharedBy>> {
        dispatch!(self, b => b.shared_by(fingerprint, compat))
    }

    /// How many servers (host, port) have complete scans stamped `compat` with this
    /// fingerprint (no list bound): hashes of different telnetlib3 versions never count
    /// together, nor do scans cut short.
    pub fn shared_count(&self, fingerprint: &str, compat: &str) -> DbResult<i64> {
        dispatch!(self, b => b.shared_count(fingerprint, compat))
    }

    /// One scan's summary.
    pub fn summary(&self, id: &str) -> DbResult<Option<ScanSummary>> {
        dispatch!(self, b => b.summary(id))
    }

    /// A server's most recent complete scan (its most recent scan when none is complete).
    pub fn latest(&self, host: &str, port: u16) -> DbResult<Option<ScanSummary>> {
        dispatch!(self, b => b.latest(host, port))
    }

    /// A server's most recent scan made over TLS (`tls`: its `config` has the word `tls=1`)
    /// or over plain telnet (any other row, imported ones included).
    pub fn latest_with_tls(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> DbResult<Option<ScanSummary>> {
        dispatch!(self, b => b.latest_with_tls(host, port, tls))
    }

    /// Servers whose host or MSSP name contains `query` (case-insensitive; `%` and `_` are
    /// literal), each with its latest scan, most recently scanned first; at most `limit`
    /// (capped at [`MAX_LIST`]).
    pub fn search(&self, query: &str, limit: i64) -> DbResult<Vec<ServerHit>> {
        dispatch!(self, b => b.search(query, limit))
    }

    /// Stored scans with an id greater than `after`, in id order, at most `limit` (a page of
    /// `iacscope export`; pass the last id of a page to get the next).
    pub fn scans_after(&self, after: &str, limit: i64) -> DbResult<Vec<StoredScan>> {
        dispatch!(self, b => b.scans_after(after, limit))
    }

    /// Deletes scans created before `created_before` (Unix seconds), then every stored text
    /// no row references any more; returns how many scans.
    pub fn purge_before(&self, created_before: i64) -> DbResult<usize> {
        dispatch!(self, b => b.purge_before(created_before))
    }

    /// A server's newest scans (at most [`MAX_LIST`]), oldest first.
    pub fn server(&self, host: &str, port: u16) -> DbResult<Vec<ServerScan>> {
        dispatch!(self, b => b.server(host, port))
    }

    /// Stores `scan` and its history point in one transaction (both or neither): a crawled
    /// scan and its done mark. Returns whether the scan row was added (its id may be stored
    /// already); a point its crawl round already has is not added again.
    pub fn insert_with_history(&self, scan: &NewScan, point: &HistoryPoint) -> DbResult<bool> {
        scan.record_json.check()?;
        dispatch!(self, b => b.insert_with_history(scan, point))
    }

    /// Adds a history point (a failed attempt); returns whether it was added (a crawl round
    /// keeps its first point per target).
    pub fn add_history(&self, point: &HistoryPoint) -> DbResult<bool> {
        dispatch!(self, b => b.add_history(point))
    }

    /// Deletes the history points before `before` (Unix seconds); returns how many.
    pub fn purge_history_before(&self, before: i64) -> DbResult<usize> {
        dispatch!(self, b => b.purge_history_before(before))
    }

    /// A server's history points, newest first (at most [`MAX_LIST`]).
    pub fn history(&self, host: &str, port: u16) -> DbResult<Vec<HistoryPoint>> {
        dispatch!(self, b => b.history(host, port))
    }

    /// The current round of crawl `id` (1 for a new crawl, created at `now`), noting its
    /// `targets` count; `restart` starts the next round (nothing of it is done yet).
    pub fn crawl_round(&self, id: &str, targets: i64, now: i64, restart: bool) -> DbResult<i64> {
        dispatch!(self, b => b.crawl_round(id, targets, now, restart))
    }

    /// The targets crawl round `crawl` (`<id>/<round>`) has finished, at most `limit`.
    pub fn crawl_done(&self, crawl: &str, limit: i64) -> DbResult<Vec<CrawlTarget>> {
        dispatch!(self, b => b.crawl_done(crawl, limit))
    }

    /// Marks crawl `id`'s current round finished at `now` (Unix seconds).
    pub fn crawl_finish(&self, id: &str, now: i64) -> DbResult<()> {
        dispatch!(self, b => b.crawl_finish(id, now))
    }

    /// Every server the census knows (scans and history points, by host, port and TLS), at
    /// most `limit`, ordered, with its last visit and latest scan.
    pub fn census(&self, limit: i64) -> DbResult<Vec<CensusEntry>> {
        dispatch!(self, b => b.census(limit))
    }

    /// Whether several crawl workers can share a round through this store (PostgreSQL:
    /// leases with `FOR UPDATE SKIP LOCKED`). SQLite is one machine's store: a crawl there
    /// keeps its targets in memory.
    pub fn shares_crawls(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Adds crawl round `crawl`'s targets (with their seed's encoding) to its shared queue;
    /// targets already in it are left as they are. Returns how many were added.
    /// PostgreSQL only ([`Db::shares_crawls`]).
    pub fn crawl_enqueue(
        &self,
        crawl: &str,
        targets: &[(CrawlTarget, Option<String>)],
    ) -> DbResult<u64> {
        match &self.backend {
            Backend::Postgres(b) => b.crawl_enqueue(crawl, targets),
            Backend::Sqlite(_) => Err(no_leases()),
        }
    }

    /// Leases at most `n` of round `crawl`'s targets that are not done and not leased (or
    /// whose lease expired) to `worker` for `lease_secs` seconds of the database's clock, in
    /// one transaction (`FOR UPDATE SKIP LOCKED`: concurrent claims never get the same
    /// target). PostgreSQL only.
    pub fn crawl_claim(
        &self,
        crawl: &str,
        worker: &str,
        n: i64,
        lease_secs: i64,
    ) -> DbResult<Vec<Claimed>> {
        match &self.backend {
            Backend::Postgres(b) => b.crawl_claim(crawl, worker, n, lease_secs),
            Backend::Sqlite(_) => Err(no_leases()),
        }
    }

    /// Extends `worker`'s unexpired leases of round `crawl`'s targets not done yet to
    /// `lease_secs` from now; returns how many. PostgreSQL only.
    pub fn crawl_renew(&self, crawl: &str, worker: &str, lease_secs: i64) -> DbResult<u64> {
        match &self.backend {
            Backend::Postgres(b) => b.crawl_renew(crawl, worker, lease_secs),
            Backend::Sqlite(_) => Err(no_leases()),
        }
    }

    /// Gives back `worker`'s leases on round `crawl`'s targets not done yet (a worker
    /// stopping), so other workers take them at once. PostgreSQL only.
    pub fn crawl_release(&self, crawl: &str, worker: &str) -> DbResult<u64> {
        match &self.backend {
            Backend::Postgres(b) => b.crawl_release(crawl, worker),
            Backend::Sqlite(_) => Err(no_leases()),
        }
    }

    /// Round `crawl`'s queue: (targets, targets not done yet). PostgreSQL only.
    pub fn crawl_left(&self, crawl: &str) -> DbResult<(i64, i64)> {
        match &self.backend {
            Backend::Postgres(b) => b.crawl_left(crawl),
            Backend::Sqlite(_) => Err(no_leases()),
        }
    }

    /// The servers the store has scans of (host, port, and whether over TLS), at most
    /// `limit`, ordered.
    pub fn known_servers(&self, limit: i64) -> DbResult<Vec<CrawlTarget>> {
        dispatch!(self, b => b.known_servers(limit))
    }
}

fn no_leases() -> DbError {
    DbError::new("crawl leases need a PostgreSQL store (--database-url)")
}

/// How often the retention task purges (it also purges once at start-up).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// What a retention task deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purged {
    /// Stored scans (`scan_retention`), and the texts no scan references any more.
    Scans,
    /// History points (`[crawl] keep_history`).
    History,
}

/// Deletes the scans (or history points) older than `retention` at `now`; returns how many.
pub fn purge_expired(
    db: &Db,
    what: Purged,
    retention: Duration,
    now: SystemTime,
) -> DbResult<usize> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| DbError::new("the clock is before 1970"))?;
    let cutoff = i64::try_from(now.saturating_sub(retention).as_secs()).unwrap_or(i64::MAX);
    match what {
        Purged::Scans => db.purge_before(cutoff),
        Purged::History => db.purge_history_before(cutoff),
    }
}

/// The retention task: purges scans (or history points) older than `retention` now and
/// every [`PURGE_INTERVAL`], until `stop` is cancelled. Runs the deletes off the async
/// threads.
pub async fn purge_task(db: Arc<Db>, what: Purged, retention: Duration, stop: CancellationToken) {
    loop {
        let d = Arc::clone(&db);
        match tokio::task::spawn_blocking(move || {
            purge_expired(&d, what, retention, SystemTime::now())
        })
        .await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("retention: purged {n} {what:?} older than {retention:?}"),
            Ok(Err(e)) => tracing::error!("retention purge failed: {e}"),
            Err(e) => tracing::error!("retention purge failed: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PURGE_INTERVAL) => {}
        }
    }
}

/// For tests: a PostgreSQL URL with a fresh, empty schema named after `test` (so tests run
/// in parallel on one database), from [`TEST_URL_ENV`]. `Ok(None)` when that is unset (the
/// test is skipped), an error when it is set but unusable, or unset while
/// [`REQUIRE_POSTGRES_ENV`] is `1` (the test must fail, not skip).
pub fn test_database_url(test: &str) -> Result<Option<String>, String> {
    let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
    let url = std::env::var(TEST_URL_ENV).unwrap_or_default();
    if url.trim().is_empty() {
        return if required {
            Err(format!(
                "{REQUIRE_POSTGRES_ENV}=1 but {TEST_URL_ENV} is not set"
            ))
        } else {
            Ok(None)
        };
    }
    let mut schema: String = format!("t_{test}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    schema.truncate(MAX_SCHEMA_NAME);
    postgres::fresh_schema(url.trim(), &schema)
        .map(Some)
        .map_err(|e| format!("{TEST_URL_ENV}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn scan(id: &str, host: &str, fp: &str, created: i64) -> NewScan {
        NewScan {
            id: id.into(),
            host: host.into(),
            port: 23,
            ip: "192.0.2.1".into(),
            fingerprint: fp.into(),
            created,
            record_json: "{}".into(),
            transcript_text: "iacscope-transcript 1\n".into(),
            config: "scan-type=quick".into(),
            mssp_players: Some("\"3\"".into()),
            mssp_uptime: None,
            mssp_name: Some(format!("The {host} MUD")),
            source: SOURCE_LIVE.into(),
            complete: true,
            compat: COMPAT_VERSION.into(),
        }
    }

    /// A fresh SQLite directory for `test`.
    fn sqlite_dir(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("iacscope-db-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Runs `body` with a way to (re)open a fresh store of each backend: SQLite always,
    /// PostgreSQL when configured (see [`test_database_url`]).
    fn on_both(test: &str, body: impl Fn(&dyn Fn() -> Db)) {
        let dir = sqlite_dir(test);
        body(&|| Db::connect(None, &dir.join("sub")).expect("open sqlite"));
        let _ = std::fs::remove_dir_all(&dir);
        match test_database_url(test).expect("PostgreSQL for the store tests") {
            Some(url) => {
                let open = || Db::connect(Some(&url), Path::new("/nonexistent")).expect("connect");
                assert_eq!(open().backend(), "postgres");
                body(&open);
            }
            None => eprintln!("{test}: PostgreSQL variant skipped ({TEST_URL_ENV} unset)"),
        }
    }

    /// Finding 9: one transcript saved under several settings (several ids) is stored once;
    /// a template is stored once for all rows that splice into it, and served whole; a purge
    /// deletes the texts no row references any more.
    #[test]
    fn texts_are_stored_once_and_purged_with_their_last_row() {
        on_both("texts_are_stored_once", |open| {
            let db = open();
            let transcript = format!("iacscope-transcript 1\n{}", "recv 0 abc\n".repeat(10_000));
            for (i, config) in ["scan-type=quick", "scan-type=full", "encoding=utf8"]
                .iter()
                .enumerate()
            {
                let mut s = scan(&format!("v{i}"), "x.test", "fp", 10);
                s.transcript_text = transcript.clone();
                s.config = (*config).into();
                assert!(db.insert(&s).expect("insert"));
            }
            let one = transcript.len() as i64;
            let stored = db.stored_text_bytes().expect("bytes");
            assert!(
                stored < one + 1000,
                "one transcript of {one} bytes stored once, not three times: {stored}"
            );
            for i in 0..3 {
                assert_eq!(
                    db.transcript(&format!("v{i}")).expect("read").as_deref(),
                    Some(transcript.as_str())
                );
            }
            // Spliced rows: one template, small parts.
            let template = SharedText::new(format!(
                "{{\n  \"big\": \"{}\",\n  \"s\": [\n{RECORD_MARKER}\n  ]\n}}",
                "y".repeat(50_000)
            ));
            let rows: Vec<NewScan> = (0..20)
                .map(|i| {
                    let mut s = scan(&format!("t{i:02}"), "y.test", "fp", 20 + i);
                    s.record_json = RecordText::Spliced {
                        template: template.clone(),
                        part: format!("    {i}"),
                    };
                    s
                })
                .collect();
            assert_eq!(db.insert_many(&rows).expect("batch"), 20);
            let grown = db.stored_text_bytes().expect("bytes") - stored;
            assert!(grown < 50_000 + 1000, "template stored once: {grown}");
            for r in &rows {
                let whole = r.record_json.to_text();
                assert_eq!(
                    db.record(&r.id).expect("read").as_deref(),
                    Some(whole.as_str())
                );
            }
            let page = db.scans_after("t04", 1).expect("page");
            assert_eq!(page[0].record_json, rows[5].record_json.to_text());
            // A template without its marker is refused.
            let mut bad = scan("bad", "y.test", "fp", 1);
            bad.record_json = RecordText::Spliced {
                template: SharedText::new("{}"),
                part: "1".into(),
            };
            assert!(db.insert(&bad).is_err());
            // The purge keeps texts still referenced, then deletes the rest.
            assert_eq!(db.purge_before(15).expect("purge"), 3);
            assert!(db.stored_text_bytes().expect("bytes") >= 50_000);
            assert_eq!(
                db.record("t19").expect("read"),
                Some(rows[19].record_json.to_text())
            );
            assert_eq!(db.purge_before(i64::MAX).expect("purge"), 20);
            assert_eq!(
                db.stored_text_bytes().expect("bytes"),
                0,
                "no text left behind"
            );
        });
    }

    /// Rows written before migration 3 keep their inline texts and read as before; a new
    /// row with the same transcript references it in `texts`.
    #[test]
    fn rows_from_before_texts_read_as_before() {
        let dir = sqlite_dir("before-texts");
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(SQLITE_FILE);
        {
            let c = rusqlite::Connection::open(&path).expect("open");
            c.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                .expect("version table");
            for (i, sql) in sqlite::MIGRATIONS[..2].iter().enumerate() {
                c.execute_batch(sql).expect("migration");
                c.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [i as i64 + 1],
                )
                .expect("version");
            }
            c.execute(
                "INSERT INTO scans (id, host, port, ip, fingerprint, created, record_json,
                    transcript_text, config) VALUES ('old', 'x.test', 23, '192.0.2.1', 'fp', 5,
                    '{\"old\": 1}', 'old transcript', 'scan-type=quick')",
                [],
            )
            .expect("old row");
        }
        let db = Db::open(&path).expect("migrate");
        assert_eq!(
            db.version().expect("version"),
            sqlite::MIGRATIONS.len() as i64
        );
        assert_eq!(
            db.record("old").expect("read").as_deref(),
            Some("{\"old\": 1}")
        );
        assert_eq!(
            db.transcript("old").expect("read").as_deref(),
            Some("old transcript")
        );
        assert_eq!(
            db.scans_after("", -1).expect("all")[0].record_json,
            "{\"old\": 1}"
        );
        let mut new = scan("new", "x.test", "fp", 6);
        new.transcript_text = "old transcript".into();
        assert!(db.insert(&new).expect("insert"));
        assert_eq!(
            db.transcript("new").expect("read").as_deref(),
            Some("old transcript")
        );
        assert_eq!(db.purge_before(i64::MAX).expect("purge"), 2);
        assert_eq!(db.stored_text_bytes().expect("bytes"), 0);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Instances opening one new SQLite file at the same moment (several proxies started
    /// together) all open it: the switch to WAL can be refused as busy, and is retried.
    #[test]
    fn sqlite_opened_by_many_at_once() {
        const OPENERS: usize = 8;
        const ROUNDS: usize = 20;
        let dir = sqlite_dir("many-at-once");
        for round in 0..ROUNDS {
            let sub = dir.join(format!("r{round}"));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let (sub, barrier) = (sub.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Db::connect(None, &sub).map(|db| db.version())
                    })
                })
                .collect();
            for o in openers {
                let version = o.join().expect("no panic").expect("opens");
                assert_eq!(version.expect("version"), sqlite::MIGRATIONS.len() as i64);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn migrates_once_and_queries() {
        on_both("migrates_once_and_queries", |open| {
            {
                let db = open();
                assert_eq!(
                    db.version().expect("version"),
                    sqlite::MIGRATIONS.len() as i64
                );
                assert!(db.insert(&scan("a1", "x.test", "fp1", 10)).expect("insert"));
                assert!(!db.insert(&scan("a1", "x.test", "fp1", 10)).expect("dup"));
                db.insert(&scan("a2", "x.test", "fp1", 20)).expect("insert");
                db.insert(&scan("b1", "y.test", "fp1", 15)).expect("insert");
            }
            let db = open();
            assert_eq!(
                db.version().expect("version"),
                sqlite::MIGRATIONS.len() as i64
            );
            let shared = db.shared_by("fp1", COMPAT_VERSION).expect("shared");
            assert_eq!(shared.len(), 2);
            assert_eq!(
                (
                    shared[0].host.as_str(),
                    shared[0].scan.as_str(),
                    shared[0].created
                ),
                ("x.test", "a2", 20)
            );
            assert_eq!((shared[1].scan.as_str(), shared[1].port), ("b1", 23));
            let s = db.server("x.test", 23).expect("server");
            assert_eq!(
                s.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
                ["a1", "a2"]
            );
            assert_eq!(s[0].players.as_deref(), Some("\"3\""));
            assert_eq!(s[0].uptime, None);
            assert!(db.record("zz").expect("query").is_none());
            assert_eq!(db.record("a1").expect("query").as_deref(), Some("{}"));
            assert_eq!(
                db.transcript("a1").expect("query").as_deref(),
                Some("iacscope-transcript 1\n")
            );
            assert_eq!(db.shared_count("fp1", COMPAT_VERSION).expect("count"), 2);
            assert_eq!(db.shared_count("nope", COMPAT_VERSION).expect("count"), 0);
            assert_eq!(
                db.latest("x.test", 23).expect("latest").map(|s| s.id),
                Some("a2".into())
            );
            assert!(db.latest("x.test", 24).expect("latest").is_none());
            assert_eq!(
                db.latest_with_tls("x.test", 23, false)
                    .expect("latest")
                    .map(|s| s.id),
                Some("a2".into())
            );
            assert!(db
                .latest_with_tls("x.test", 23, true)
                .expect("latest")
                .is_none());
            let sum = db.summary("b1").expect("summary").expect("exists");
            assert_eq!(
                sum,
                ScanSummary {
                    id: "b1".into(),
                    host: "y.test".into(),
                    port: 23,
                    ip: "192.0.2.1".into(),
                    fingerprint: "fp1".into(),
                    created: 15,
                    config: "scan-type=quick".into(),
                    name: Some("The y.test MUD".into()),
                    players: Some("\"3\"".into()),
                    source: SOURCE_LIVE.into(),
                    complete: true,
                    compat: COMPAT_VERSION.into(),
                }
            );
            let hits = db.search("Y.TEST m", 10).expect("search");
            assert_eq!(
                hits.iter().map(|h| h.scan.as_str()).collect::<Vec<_>>(),
                ["b1"]
            );
            assert_eq!(
                db.search("x.test", 10).expect("search")[0].scan,
                "a2",
                "latest per server"
            );
            assert!(
                db.search("%", 10).expect("search").is_empty(),
                "wildcards are literal"
            );
            assert_eq!(db.search("test", 1).expect("search").len(), 1, "limit");
            assert_eq!(db.search("test", -5).expect("search").len(), 0, "clamped");
            let page = db.scans_after("", 2).expect("page");
            assert_eq!(
                page.iter()
                    .map(|s| s.summary.id.as_str())
                    .collect::<Vec<_>>(),
                ["a1", "a2"]
            );
            assert_eq!(page[0].record_json, "{}");
            let rest = db.scans_after("a2", 2).expect("page");
            assert_eq!(
                rest.iter()
                    .map(|s| s.summary.id.as_str())
                    .collect::<Vec<_>>(),
                ["b1"]
            );
            assert_eq!(db.purge_before(15).expect("purge"), 1);
            assert!(db.summary("a1").expect("summary").is_none());
        });
    }

    #[test]
    fn insert_many_is_one_batch_and_idempotent() {
        on_both("insert_many_is_one_batch_and_idempotent", |open| {
            let db = open();
            assert_eq!(db.insert_many(&[]).expect("empty"), 0);
            db.insert(&scan("m0", "x.test", "fp", 5)).expect("insert");
            // One already stored, one repeated within the batch: 3 of 5 are new.
            let batch = [
                scan("m0", "x.test", "fp", 5),
                scan("m1", "x.test", "fp", 5),
                scan("m2", "x.test", "fp", 6),
                scan("m1", "x.test", "fp", 5),
                scan("m3", "y.test", "other", 5),
            ];
            assert_eq!(db.insert_many(&batch).expect("batch"), 3);
            assert_eq!(db.insert_many(&batch).expect("again"), 0);
            let ids: Vec<String> = db
                .scans_after("", -1)
                .expect("all")
                .into_iter()
                .map(|s| s.summary.id)
                .collect();
            assert_eq!(ids, ["m0", "m1", "m2", "m3"]);
            assert_eq!(
                db.transcript("m2").expect("query").as_deref(),
                Some("iacscope-transcript 1\n")
            );
            // Same server, fingerprint and second: exactly m0 and m1.
            assert_eq!(
                db.scan_ids_at("x.test", 23, "fp", 5).expect("ids"),
                ["m0", "m1"]
            );
            assert!(db
                .scan_ids_at("x.test", 24, "fp", 5)
                .expect("ids")
                .is_empty());
            assert!(db
                .scan_ids_at("x.test", 23, "fp", 7)
                .expect("ids")
                .is_empty());
            assert!(db
                .scan_ids_at("x.test", 23, "other", 5)
                .expect("ids")
                .is_empty());
            // A batch larger than a listing, past MAX_LIST rows of one server.
            let big: Vec<NewScan> = (0..=MAX_LIST)
                .map(|i| scan(&format!("n{i:04}"), "big.test", "fp", i))
                .collect();
            assert_eq!(db.insert_many(&big).expect("big"), big.len());
            assert_eq!(
                db.scan_ids_at("big.test", 23, "fp", MAX_LIST).expect("ids"),
                [format!("n{MAX_LIST:04}")]
            );
        });
    }

    #[test]
    fn latest_with_tls_picks_by_the_config_word() {
        on_both("latest_with_tls_picks_by_the_config_word", |open| {
            let db = open();
            let with = |id: &str, created: i64, config: &str| {
                let mut s = scan(id, "t.test", "fp", created);
                s.config = config.into();
                db.insert(&s).expect("insert");
            };
            with("p1", 10, "scan-type=quick encoding=ascii ttype=VT100 tls=0");
            with("s1", 20, "scan-type=quick encoding=ascii ttype=VT100 tls=1");
            with("i1", 30, "imported scan-type=quick");
            with("x1", 40, "scan-type=quick xtls=1 tls=10");
            let latest = |tls| {
                db.latest_with_tls("t.test", 23, tls)
                    .expect("latest")
                    .map(|s| s.id)
            };
            assert_eq!(latest(false).as_deref(), Some("x1"), "not the word tls=1");
            assert_eq!(latest(true).as_deref(), Some("s1"));
            with("s2", 50, "tls=1 scan-type=full");
            assert_eq!(latest(true).as_deref(), Some("s2"), "first word");
            assert_eq!(latest(false).as_deref(), Some("x1"));
        });
    }

    /// Migration 4: a scan and its history point are stored together; a crawl round keeps
    /// one point per target (its done mark); `--restart` is a new round with none; the
    /// store's known servers say which were scanned over TLS.
    #[test]
    fn history_points_and_crawl_rounds() {
        on_both("history_points_and_crawl_rounds", |open| {
            let db = open();
            let point =
                |tls: bool, outcome: &str, scan: Option<&str>, crawl: Option<&str>| HistoryPoint {
                    host: "h.test".into(),
                    port: 23,
                    tls,
                    at: 100,
                    outcome: outcome.into(),
                    detail: String::new(),
                    scan_id: scan.map(str::to_owned),
                    crawl: crawl.map(str::to_owned),
                };
            assert_eq!(db.crawl_round("c", 2, 100, false).expect("round"), 1);
            assert_eq!(db.crawl_round("c", 3, 101, false).expect("round"), 1);
            let mut s = scan("a1", "h.test", "fp", 100);
            s.config = "scan-type=quick tls=1".into();
            let ok = point(true, OUTCOME_OK, Some("a1"), Some("c/1"));
            assert!(db.insert_with_history(&s, &ok).expect("insert"));
            assert!(db.summary("a1").expect("summary").is_some());
            assert!(
                !db.add_history(&ok).expect("again"),
                "one point per target per round"
            );
            assert!(db
                .add_history(&point(false, "timeout", None, Some("c/1")))
                .expect("plain"));
            assert!(db
                .add_history(&point(false, "timeout", None, None))
                .expect("no crawl"));
            assert!(db
                .add_history(&point(false, "timeout", None, None))
                .expect("no crawl"));
            assert_eq!(db.history("h.test", 23).expect("history").len(), 4);
            let done = db.crawl_done("c/1", 10).expect("done");
            assert_eq!(
                done.iter().map(|t| t.tls).collect::<Vec<_>>(),
                [false, true]
            );
            assert_eq!(db.crawl_round("c", 3, 102, true).expect("restart"), 2);
            assert!(db.crawl_done("c/2", 10).expect("done").is_empty());
            db.crawl_finish("c", 103).expect("finish");
            let mut p = scan("p1", "h.test", "fp", 90);
            p.config = "scan-type=quick tls=0".into();
            db.insert(&p).expect("insert");
            db.insert(&scan("o1", "other.test", "fp", 90))
                .expect("insert");
            let known = db.known_servers(10).expect("known");
            let known: Vec<_> = known.iter().map(|t| (t.host.as_str(), t.tls)).collect();
            assert_eq!(
                known,
                [("h.test", false), ("h.test", true), ("other.test", false)]
            );
            assert_eq!(db.known_servers(1).expect("known").len(), 1);
        });
    }

    #[test]
    fn like_wildcards_and_bytewise_order() {
        on_both("like_wildcards_and_bytewise_order", |open| {
            let db = open();
            let mut a = scan("c1", "Under_Score.test", "fp2", 5);
            a.mssp_name = Some("100% Pure\\Mud".into());
            db.insert(&a).expect("insert");
            let mut b = scan("c2", "underXscore.test", "fp2", 6);
            b.mssp_name = None;
            b.port = 4000;
            db.insert(&b).expect("insert");
            let hosts = |q: &str| -> Vec<String> {
                db.search(q, 10)
                    .expect("search")
                    .into_iter()
                    .map(|h| format!("{}:{}", h.host, h.port))
                    .collect()
            };
            assert_eq!(hosts("under_"), ["Under_Score.test:23"], "_ is literal");
            assert_eq!(hosts("0% p"), ["Under_Score.test:23"], "% is literal");
            assert_eq!(hosts("pure\\m"), ["Under_Score.test:23"], "\\ is literal");
            assert_eq!(
                hosts("SCORE"),
                ["underXscore.test:4000", "Under_Score.test:23"]
            );
            // Ids page in byte order on both backends ("C" collation on PostgreSQL).
            db.insert(&scan("C0", "z.test", "fp3", 1)).expect("insert");
            let ids: Vec<String> = db
                .scans_after("", -1)
                .expect("all")
                .into_iter()
                .map(|s| s.summary.id)
                .collect();
            assert_eq!(ids, ["C0", "c1", "c2"]);
        });
    }

    #[test]
    fn retention_purges_only_older_scans() {
        on_both("retention_purges_only_older_scans", |open| {
            let db = open();
            let now = UNIX_EPOCH + Duration::from_secs(100_000);
            db.insert(&scan("old", "x.test", "fp", 100_000 - 7200))
                .expect("insert");
            db.insert(&scan("edge", "x.test", "fp", 100_000 - 3600))
                .expect("insert");
            db.insert(&scan("new", "x.test", "fp", 100_000 - 10))
                .expect("insert");
            let hour = Duration::from_secs(3600);
            assert_eq!(
                purge_expired(&db, Purged::Scans, hour, now).expect("purge"),
                1
            );
            assert_eq!(
                purge_expired(&db, Purged::Scans, hour, now).expect("again"),
                0
            );
            let left: Vec<String> = db
                .server("x.test", 23)
                .expect("server")
                .into_iter()
                .map(|s| s.id)
                .collect();
            assert_eq!(
                left,
                ["edge", "new"],
                "a scan exactly `retention` old is kept"
            );
        });
    }

    #[tokio::test]
    async fn purge_task_runs_at_start_and_stops() {
        let dir = sqlite_dir("purge_task");
        let db = Arc::new(Db::connect(None, &dir).expect("open"));
        db.insert(&scan("ancient", "x.test", "fp", 1))
            .expect("insert");
        db.insert(&scan("fresh", "x.test", "fp", i64::MAX / 2))
            .expect("insert");
        let stop = CancellationToken::new();
        let task = tokio::spawn(purge_task(
            Arc::clone(&db),
            Purged::Scans,
            Duration::from_secs(86_400),
            stop.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while db.summary("ancient").expect("summary").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "start-up purge did not run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(db.summary("fresh").expect("summary").is_some());
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("task stops when cancelled")
            .expect("no panic");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// PostgreSQL only (SQLite has no connection to lose): connections the server drops are
    /// remade, and the calls that found them broken still succeed.
    #[test]
    fn postgres_reconnects_after_the_server_drops_connections() {
        let test = "postgres_reconnects";
        let Some(url) = test_database_url(test).expect("PostgreSQL for the store tests") else {
            eprintln!("{test}: skipped ({TEST_URL_ENV} unset)");
            return;
        };
        // Its own application name, so only this test's connections are terminated.
        let app = "iacscope_reconnect_test";
        let url = format!("{url}&application_name={app}");
        let db = Db::connect(Some(&url), Path::new("/nonexistent")).expect("connect");
        for round in 0..3 {
            let id = format!("r{round}");
            // Use every pooled connection, then have the server end them all.
            for _ in 0..8 {
                assert!(db.record("nothing").expect("read").is_none());
            }
            let mut admin = ::postgres::Config::from_str(&url)
                .expect("url")
                .application_name("iacscope_admin")
                .connect(::postgres::NoTls)
                .expect("admin connection");
            let killed: i64 = admin
                .query_one(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = $1",
                    &[&app],
                )
                .expect("terminate")
                .get(0);
            assert!(killed >= 1, "round {round}: no connection to terminate");
            assert!(db
                .insert(&scan(&id, "x.test", "fp", 1))
                .expect("insert after drop"));
            for _ in 0..8 {
                assert_eq!(
                    db.record(&id).expect("read after drop").as_deref(),
                    Some("{}")
                );
            }
        }
    }

    /// Issue 10: a scan cut short is kept but never replaces the last complete one as the
    /// server's latest, and counts in "shared by" only as a complete scan of its version.
    #[test]
    fn incomplete_scans_and_versions() {
        on_both("incomplete_scans", |open| {
            let db = open();
            let mut cut = scan("c2", "x.test", "short", 20);
            cut.complete = false;
            let mut old = scan("o1", "z.test", "fp", 5);
            old.compat = COMPAT_UNKNOWN.into();
            let batch = [scan("c1", "x.test", "fp", 10), cut, old];
            assert_eq!(db.insert_many(&batch).expect("insert"), 3);
            let latest = db.latest("x.test", 23).expect("latest").expect("some");
            assert_eq!((latest.id.as_str(), latest.complete), ("c1", true));
            let tls = db
                .latest_with_tls("x.test", 23, false)
                .expect("q")
                .expect("some");
            assert_eq!(tls.id, "c1");
            let short = db.summary("c2").expect("q").expect("stored and shown");
            assert!(!short.complete);
            assert_eq!(db.shared_count("short", COMPAT_VERSION).expect("n"), 0);
            assert_eq!(db.shared_count("fp", COMPAT_VERSION).expect("n"), 1);
            assert_eq!(db.shared_count("fp", COMPAT_UNKNOWN).expect("n"), 1);
            let hosts: Vec<String> = db
                .shared_by("fp", COMPAT_VERSION)
                .expect("q")
                .into_iter()
                .map(|s| s.host)
                .collect();
            assert_eq!(hosts, ["x.test"]);
            let s = db.server("x.test", 23).expect("server");
            assert_eq!(
                s.iter()
                    .map(|s| (s.id.as_str(), s.complete))
                    .collect::<Vec<_>>(),
                [("c1", true), ("c2", false)]
            );
            // The census names the complete scan too (the schedule reads its CRAWL DELAY).
            let census = db.census(10).expect("census");
            let x = census
                .iter()
                .find(|e| e.target.host == "x.test")
                .expect("x.test");
            assert_eq!((x.latest_id.as_deref(), x.last_at), (Some("c1"), Some(20)));
        });
    }

    /// `[crawl] keep_history`: points older than the cutoff go, the rest stay.
    #[test]
    fn history_is_purged_before_a_time() {
        on_both("history_is_purged", |open| {
            let db = open();
            for at in [5, 10, 20] {
                db.add_history(&HistoryPoint {
                    host: "x.test".into(),
                    port: 23,
                    tls: false,
                    at,
                    outcome: "timeout".into(),
                    detail: String::new(),
                    scan_id: None,
                    crawl: None,
                })
                .expect("point");
            }
            assert_eq!(db.purge_history_before(10).expect("purge"), 1);
            let left: Vec<i64> = db
                .history("x.test", 23)
                .expect("history")
                .iter()
                .map(|p| p.at)
                .collect();
            assert_eq!(left, [20, 10]);
            let now = UNIX_EPOCH + Duration::from_secs(1000);
            let keep = Duration::from_secs(985);
            assert_eq!(
                purge_expired(&db, Purged::History, keep, now).expect("purge"),
                1,
                "older than 15 s"
            );
        });
    }

    /// A server's scans are its newest [`MAX_LIST`], oldest first, each with its TLS.
    #[test]
    fn a_server_lists_its_newest_scans() {
        on_both("a_server_lists_its_newest", |open| {
            let db = open();
            let n = MAX_LIST + 2;
            let rows: Vec<NewScan> = (0..n)
                .map(|i| {
                    let mut s = scan(&format!("s{i:04}"), "x.test", "fp", 1000 + i);
                    if i == n - 1 {
                        s.config = format!("scan-type=quick {TLS_WORD}");
                    }
                    s
                })
                .collect();
            assert_eq!(db.insert_many(&rows).expect("insert"), rows.len());
            let s = db.server("x.test", 23).expect("server");
            assert_eq!(s.len() as i64, MAX_LIST);
            assert_eq!(s[0].id, "s0002", "the two oldest are left out");
            assert_eq!(s[s.len() - 1].id, format!("s{:04}", n - 1));
            assert!(s[s.len() - 1].tls && !s[0].tls);
        });
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        let dir = sqlite_dir("bad_urls");
        let err = Db::connect(Some("mysql://x/y"), &dir).expect_err("scheme");
        assert!(err.contains("mysql"), "{err}");
        let err = Db::connect(Some("postgres://u@h:notaport/db"), &dir).expect_err("port");
        assert!(err.contains("invalid database URL"), "{err}");
        // Nothing listens on port 1 of loopback: refused at once, well within the timeout.
        let started = std::time::Instant::now();
        let err = Db::connect(Some("postgres://u:secret@127.0.0.1:1/db"), &dir).expect_err("down");
        assert!(
            err.contains("cannot connect to PostgreSQL at 127.0.0.1:1/db"),
            "{err}"
        );
        assert!(!err.contains("secret"), "no password in messages: {err}");
        assert!(started.elapsed() < postgres::CONNECT_TIMEOUT);
        assert!(
            Db::connect(Some(" "), &dir)
                .expect("blank is sqlite")
                .backend()
                == "sqlite"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
