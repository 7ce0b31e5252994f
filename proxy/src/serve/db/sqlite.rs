//! The SQLite backend of [`super::Db`]: one file, WAL mode, `synchronous=FULL`, one
//! connection behind a mutex (saves are rare and small, and SQLite serialises writers).

use super::{
    like_escape, NewScan, ScanSummary, ServerHit, ServerScan, SharedBy, StoredScan, MAX_LIST,
    TLS_WORD,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The migrations, in order. Entry `i` brings the schema to version `i + 1`; a released
/// entry is never edited, only appended to. `postgres::MIGRATIONS` has the same entries in
/// PostgreSQL's dialect.
pub(super) const MIGRATIONS: &[&str] = &[
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

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between tries of a setup that found the file busy.
const SETUP_RETRY: Duration = Duration::from_millis(25);

/// Whether `e` is SQLite's "database is locked" (or "busy"), which a retry can cure.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The columns [`ScanSummary`] is read from, in its field order.
const SUMMARY_COLUMNS: &str =
    "id, host, port, ip, fingerprint, created, config, mssp_name, mssp_players, source";

/// The idempotent insert of one row ([`insert_with`] binds its parameters).
const INSERT: &str = "INSERT INTO scans (id, host, port, ip, fingerprint, created, record_json,
        transcript_text, config, mssp_players, mssp_uptime, mssp_name, source)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (id) DO NOTHING";

/// Runs the prepared [`INSERT`] for `s`; returns the rows added (0 or 1).
fn insert_with(q: &mut rusqlite::Statement<'_>, s: &NewScan) -> rusqlite::Result<usize> {
    q.execute(params![
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
    ])
}

/// An open SQLite store.
#[derive(Debug)]
pub(super) struct Sqlite {
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating the directory and file on first run) and migrates.
    pub(super) fn open(path: &Path) -> Result<Sqlite, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let db = Sqlite {
            conn: Mutex::new(conn),
        };
        // Two instances opening a new file together can get SQLITE_BUSY from the switch to
        // WAL without the busy handler being asked (SQLite's deadlock avoidance): the setup
        // is idempotent, so it is tried again until `BUSY_TIMEOUT`.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match db.setup() {
                Ok(()) => return Ok(db),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(SETUP_RETRY);
                }
                Err(e) => return Err(format!("database {}: {e}", path.display())),
            }
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn setup(&self) -> rusqlite::Result<()> {
        let mut c = self.conn();
        // First, so that an instance opening the file at the same time waits instead of failing.
        c.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers do not block the writer. FULL: the WAL is synced at every commit,
        // so an acknowledged save is on disk before the reply leaves.
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("sqlite journal_mode is {mode}, not wal");
        }
        c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        // IMMEDIATE: two processes opening one new file migrate one after the other.
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

    pub(super) fn version(&self) -> rusqlite::Result<i64> {
        self.conn()
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
    }

    pub(super) fn insert(&self, s: &NewScan) -> rusqlite::Result<bool> {
        let c = self.conn();
        let mut q = c.prepare(INSERT)?;
        Ok(insert_with(&mut q, s)? == 1)
    }

    /// All of `scans` in one transaction (one synced commit); returns the rows added.
    pub(super) fn insert_many(&self, scans: &[NewScan]) -> rusqlite::Result<usize> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let mut q = tx.prepare(INSERT)?;
            for s in scans {
                added += insert_with(&mut q, s)?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    pub(super) fn scan_ids_at(
        &self,
        host: &str,
        port: u16,
        fingerprint: &str,
        created: i64,
    ) -> rusqlite::Result<Vec<String>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT id FROM scans
             WHERE host = ?1 AND port = ?2 AND created = ?3 AND fingerprint = ?4 ORDER BY id",
        )?;
        let rows = q.query_map(params![host, port, created, fingerprint], |r| r.get(0))?;
        rows.collect()
    }

    /// One text column of one row; `column` is one of the fixed names the facade passes.
    pub(super) fn text(&self, id: &str, column: &str) -> rusqlite::Result<Option<String>> {
        self.conn()
            .query_row(
                &format!("SELECT {column} FROM scans WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()
    }

    pub(super) fn shared_by(&self, fingerprint: &str) -> rusqlite::Result<Vec<SharedBy>> {
        let c = self.conn();
        // SQLite takes the bare columns of a MAX() aggregate from the row holding the max.
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

    pub(super) fn shared_count(&self, fingerprint: &str) -> rusqlite::Result<i64> {
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

    pub(super) fn summary(&self, id: &str) -> rusqlite::Result<Option<ScanSummary>> {
        self.conn()
            .query_row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM scans WHERE id = ?1"),
                [id],
                Self::summary_row,
            )
            .optional()
    }

    pub(super) fn latest(&self, host: &str, port: u16) -> rusqlite::Result<Option<ScanSummary>> {
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

    pub(super) fn latest_with_tls(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> rusqlite::Result<Option<ScanSummary>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM scans WHERE host = ?1 AND port = ?2
                       AND (instr(' ' || config || ' ', ' {TLS_WORD} ') > 0) = ?3
                     ORDER BY created DESC, id DESC LIMIT 1"
                ),
                params![host, port, tls],
                Self::summary_row,
            )
            .optional()
    }

    pub(super) fn search(&self, query: &str, limit: i64) -> rusqlite::Result<Vec<ServerHit>> {
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

    pub(super) fn scans_after(&self, after: &str, limit: i64) -> rusqlite::Result<Vec<StoredScan>> {
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

    pub(super) fn purge_before(&self, created_before: i64) -> rusqlite::Result<usize> {
        self.conn()
            .execute("DELETE FROM scans WHERE created < ?1", [created_before])
    }

    pub(super) fn server(&self, host: &str, port: u16) -> rusqlite::Result<Vec<ServerScan>> {
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
