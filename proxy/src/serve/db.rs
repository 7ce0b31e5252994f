//! The permalink store: an embedded SQLite file (`<data-dir>/iacscope.db`), created on first
//! run, in WAL mode with `synchronous=FULL` so that a save the proxy has acknowledged
//! survives `kill -9` and power loss. Schema changes are numbered migrations recorded in
//! `schema_version`.
//!
//! This module only stores and looks up; what is stored (the replayed record) is decided in
//! `save`. Calls are blocking: handlers run them under `spawn_blocking`.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The migrations, in order. Entry `i` brings the schema to version `i + 1`; a released
/// entry is never edited, only appended to.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE scans (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        ip TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        transcript_text TEXT NOT NULL,
        config TEXT NOT NULL,
        mssp_players TEXT,
        mssp_uptime TEXT
    );
    CREATE INDEX scans_fingerprint ON scans (fingerprint, created);
    CREATE INDEX scans_server ON scans (host, port, created);",
    // 2: the server's MSSP NAME (search, titles), where a row came from (`live` for a save,
    // `import` for `iacscope import`), and the age index retention purges by.
    "ALTER TABLE scans ADD COLUMN mssp_name TEXT;
    ALTER TABLE scans ADD COLUMN source TEXT NOT NULL DEFAULT 'live';
    CREATE INDEX scans_created ON scans (created);",
];

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
    /// The telnetlib3-compatible record, exactly as served.
    pub record_json: String,
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
}

/// The database. One connection behind a mutex: saves are rare and small, and SQLite
/// serialises writers anyway.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

/// The columns [`ScanSummary`] is read from, in its field order.
const SUMMARY_COLUMNS: &str =
    "id, host, port, ip, fingerprint, created, config, mssp_name, mssp_players, source";

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

/// Most rows a listing returns (a popular fingerprint could be shared by thousands).
pub const MAX_LIST: i64 = 500;

impl Db {
    /// Opens (creating the directory and file on first run) and migrates.
    pub fn open(path: &Path) -> Result<Db, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let db = Db {
            conn: Mutex::new(conn),
        };
        db.setup()
            .map_err(|e| format!("database {}: {e}", path.display()))?;
        Ok(db)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn setup(&self) -> rusqlite::Result<()> {
        let mut c = self.conn();
        // WAL: readers do not block the writer. FULL: the WAL is synced at every commit,
        // so an acknowledged save is on disk before the reply leaves.
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("sqlite journal_mode is {mode}, not wal");
        }
        c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        let tx = c.transaction()?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let current: i64 = tx
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version > current {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [version],
                )?;
            }
        }
        tx.commit()
    }

    /// The schema version.
    pub fn version(&self) -> rusqlite::Result<i64> {
        self.conn()
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
    }

    /// Stores a scan; the same id again (same transcript, same settings) is a no-op.
    /// Returns whether a row was added.
    pub fn insert(&self, s: &NewScan) -> rusqlite::Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO scans (id, host, port, ip, fingerprint, created, record_json,
                 transcript_text, config, mssp_players, mssp_uptime, mssp_name, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                s.id,
                s.host,
                s.port,
                s.ip,
                s.fingerprint,
                s.created,
                s.record_json,
                s.transcript_text,
                s.config,
                s.mssp_players,
                s.mssp_uptime,
                s.mssp_name,
                s.source
            ],
        )?;
        Ok(n == 1)
    }

    fn text(&self, id: &str, column: &str) -> rusqlite::Result<Option<String>> {
        self.conn()
            .query_row(
                &format!("SELECT {column} FROM scans WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()
    }

    /// A stored record's JSON text.
    pub fn record(&self, id: &str) -> rusqlite::Result<Option<String>> {
        self.text(id, "record_json")
    }

    /// A stored transcript's text.
    pub fn transcript(&self, id: &str) -> rusqlite::Result<Option<String>> {
        self.text(id, "transcript_text")
    }

    /// The servers (host, port) whose scans have this fingerprint, each with its latest
    /// such scan, newest first.
    pub fn shared_by(&self, fingerprint: &str) -> rusqlite::Result<Vec<SharedBy>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT host, port, id, MAX(created) FROM scans WHERE fingerprint = ?1
             GROUP BY host, port ORDER BY MAX(created) DESC, host, port LIMIT ?2",
        )?;
        let rows = q.query_map(params![fingerprint, MAX_LIST], |r| {
            Ok(SharedBy {
                host: r.get(0)?,
                port: r.get(1)?,
                scan: r.get(2)?,
                created: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// How many servers (host, port) have scans with this fingerprint (no list bound).
    pub fn shared_count(&self, fingerprint: &str) -> rusqlite::Result<i64> {
        self.conn().query_row(
            "SELECT COUNT(*) FROM (SELECT DISTINCT host, port FROM scans WHERE fingerprint = ?1)",
            [fingerprint],
            |r| r.get(0),
        )
    }

    fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScanSummary> {
        Ok(ScanSummary {
            id: r.get(0)?,
            host: r.get(1)?,
            port: r.get(2)?,
            ip: r.get(3)?,
            fingerprint: r.get(4)?,
            created: r.get(5)?,
            config: r.get(6)?,
            name: r.get(7)?,
            players: r.get(8)?,
            source: r.get(9)?,
        })
    }

    /// One scan's summary.
    pub fn summary(&self, id: &str) -> rusqlite::Result<Option<ScanSummary>> {
        self.conn()
            .query_row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM scans WHERE id = ?1"),
                [id],
                Self::summary_row,
            )
            .optional()
    }

    /// A server's most recent scan.
    pub fn latest(&self, host: &str, port: u16) -> rusqlite::Result<Option<ScanSummary>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM scans WHERE host = ?1 AND port = ?2
                     ORDER BY created DESC, id DESC LIMIT 1"
                ),
                params![host, port],
                Self::summary_row,
            )
            .optional()
    }

    /// Servers whose host or MSSP name contains `query` (case-insensitive; `%` and `_` are
    /// literal), each with its latest scan, most recently scanned first; at most `limit`
    /// (capped at [`MAX_LIST`]).
    pub fn search(&self, query: &str, limit: i64) -> rusqlite::Result<Vec<ServerHit>> {
        let pattern = format!("%{}%", like_escape(&query.to_lowercase()));
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT s.host, s.port, s.mssp_name, s.id, s.fingerprint, s.created FROM scans s
             WHERE s.id = (SELECT t.id FROM scans t WHERE t.host = s.host AND t.port = s.port
                           ORDER BY t.created DESC, t.id DESC LIMIT 1)
               AND (LOWER(s.host) LIKE ?1 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM scans n WHERE n.host = s.host AND n.port = s.port
                               AND LOWER(n.mssp_name) LIKE ?1 ESCAPE '\\'))
             ORDER BY s.created DESC, s.host, s.port LIMIT ?2",
        )?;
        let rows = q.query_map(params![pattern, limit.clamp(0, MAX_LIST)], |r| {
            Ok(ServerHit {
                host: r.get(0)?,
                port: r.get(1)?,
                name: r.get(2)?,
                scan: r.get(3)?,
                fingerprint: r.get(4)?,
                created: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// Stored scans with an id greater than `after`, in id order, at most `limit` (a page of
    /// `iacscope export`; pass the last id of a page to get the next).
    pub fn scans_after(&self, after: &str, limit: i64) -> rusqlite::Result<Vec<StoredScan>> {
        let c = self.conn();
        let mut q = c.prepare(&format!(
            "SELECT {SUMMARY_COLUMNS}, record_json FROM scans WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = q.query_map(params![after, limit], |r| {
            Ok(StoredScan {
                summary: Self::summary_row(r)?,
                record_json: r.get(10)?,
            })
        })?;
        rows.collect()
    }

    /// Deletes scans created before `created_before` (Unix seconds); returns how many.
    pub fn purge_before(&self, created_before: i64) -> rusqlite::Result<usize> {
        self.conn()
            .execute("DELETE FROM scans WHERE created < ?1", [created_before])
    }

    /// A server's scans, oldest first.
    pub fn server(&self, host: &str, port: u16) -> rusqlite::Result<Vec<ServerScan>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT id, fingerprint, created, mssp_players, mssp_uptime FROM scans
             WHERE host = ?1 AND port = ?2 ORDER BY created, id LIMIT ?3",
        )?;
        let rows = q.query_map(params![host, port, MAX_LIST], |r| {
            Ok(ServerScan {
                id: r.get(0)?,
                fingerprint: r.get(1)?,
                created: r.get(2)?,
                players: r.get(3)?,
                uptime: r.get(4)?,
            })
        })?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn migrates_once_and_queries() {
        let dir = std::env::temp_dir().join(format!("iacscope-db-{}", std::process::id()));
        let path = dir.join("sub").join("t.db");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = Db::open(&path).expect("open");
            assert_eq!(db.version().expect("version"), MIGRATIONS.len() as i64);
            assert!(db.insert(&scan("a1", "x.test", "fp1", 10)).expect("insert"));
            assert!(!db.insert(&scan("a1", "x.test", "fp1", 10)).expect("dup"));
            db.insert(&scan("a2", "x.test", "fp1", 20)).expect("insert");
            db.insert(&scan("b1", "y.test", "fp1", 15)).expect("insert");
        }
        let db = Db::open(&path).expect("reopen");
        assert_eq!(db.version().expect("version"), MIGRATIONS.len() as i64);
        let shared = db.shared_by("fp1").expect("shared");
        assert_eq!(shared.len(), 2);
        assert_eq!(
            (shared[0].host.as_str(), shared[0].scan.as_str()),
            ("x.test", "a2")
        );
        let s = db.server("x.test", 23).expect("server");
        assert_eq!(
            s.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert_eq!(s[0].players.as_deref(), Some("\"3\""));
        assert!(db.record("zz").expect("query").is_none());
        assert_eq!(db.shared_count("fp1").expect("count"), 2);
        assert_eq!(
            db.latest("x.test", 23).expect("latest").map(|s| s.id),
            Some("a2".into())
        );
        let sum = db.summary("b1").expect("summary").expect("exists");
        assert_eq!(
            (sum.host.as_str(), sum.name.as_deref()),
            ("y.test", Some("The y.test MUD"))
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
        let page = db.scans_after("", 2).expect("page");
        assert_eq!(
            page.iter()
                .map(|s| s.summary.id.as_str())
                .collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        let rest = db.scans_after("a2", 2).expect("page");
        assert_eq!(
            rest.iter()
                .map(|s| s.summary.id.as_str())
                .collect::<Vec<_>>(),
            ["b1"]
        );
        assert_eq!(db.purge_before(15).expect("purge"), 1);
        assert!(db.summary("a1").expect("summary").is_none());
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
