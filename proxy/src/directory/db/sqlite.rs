//! The SQLite backend of [`super::Db`]: one file, WAL mode, `synchronous=FULL`, one
//! connection behind a mutex (saves are rare and small, and SQLite serialises writers).

use super::{
    like_escape, text_hash, CensusEntry, CrawlTarget, HistoryPoint, NewScan, RecordText,
    ScanSummary, ServerHit, ServerScan, SharedBy, StoredScan, MAX_LIST, TLS_WORD,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashSet;
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
    // 3: texts stored once, keyed by their sha256 hex, and referenced by rows (a transcript
    // saved under several settings, an import's record template shared by its rows). Rows
    // from before keep their inline `record_json`/`transcript_text` (hashes NULL); new rows
    // store '' there. `record_part` replaces the template's one U+0001 marker.
    "CREATE TABLE texts (hash TEXT PRIMARY KEY, body TEXT NOT NULL);
    ALTER TABLE scans ADD COLUMN record_hash TEXT REFERENCES texts (hash);
    ALTER TABLE scans ADD COLUMN record_part TEXT;
    ALTER TABLE scans ADD COLUMN transcript_hash TEXT REFERENCES texts (hash);
    CREATE INDEX scans_record_hash ON scans (record_hash);
    CREATE INDEX scans_transcript_hash ON scans (transcript_hash);",
    // 4: a server's history (one point per finished attempt: `ok` with its scan, or a
    // failure code with its sentence and no scan) and the crawls that make points: a crawl
    // round's points are its done marks (`crawl` = `<crawl id>/<round>`, unique per target),
    // so a rerun resumes where it stopped. No foreign key to `scans`: retention may purge a
    // scan and keep the point.
    "CREATE TABLE crawls (
        id TEXT PRIMARY KEY,
        round INTEGER NOT NULL,
        created INTEGER NOT NULL,
        targets INTEGER NOT NULL,
        finished INTEGER
    );
    CREATE TABLE history (
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        tls INTEGER NOT NULL,
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        scan_id TEXT,
        crawl TEXT
    );
    CREATE INDEX history_server ON history (host, port, at);
    CREATE UNIQUE INDEX history_crawl ON history (crawl, host, port, tls) WHERE crawl IS NOT NULL;",
    // Crawl leases: used by PostgreSQL stores only (several workers share a round); kept here
    // so both dialects have the same schema versions.
    "CREATE TABLE crawl_queue (
        crawl TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        tls INTEGER NOT NULL,
        encoding TEXT,
        lease_until BIGINT NOT NULL DEFAULT 0,
        worker TEXT,
        PRIMARY KEY (crawl, host, port, tls)
    );",
    // Incomplete scans and the telnetlib3-fingerprint version a hash reproduces (imports
    // made before this migration are `unknown`: their shape was not judged).
    "ALTER TABLE scans ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE scans ADD COLUMN compat TEXT NOT NULL DEFAULT '5.0.1';
    UPDATE scans SET compat = 'unknown' WHERE source = 'import';
    CREATE INDEX scans_fingerprint_compat ON scans (fingerprint, compat, complete);",
];

/// Adds a history point unless its crawl round already has one for its target.
const INSERT_HISTORY: &str =
    "INSERT INTO history (host, port, tls, at, outcome, detail, scan_id, crawl)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING";

/// A row's record text (`s` is the row, `r` its record text joined by [`TEXT_JOINS`]): the
/// inline column of an old row, the referenced text, or the template with its marker
/// replaced by the row's part.
const RECORD: &str = "CASE WHEN s.record_hash IS NULL THEN s.record_json
    WHEN s.record_part IS NULL THEN r.body
    ELSE replace(r.body, char(1), s.record_part) END";
/// A row's transcript text (`t` joined by [`TEXT_JOINS`]).
const TRANSCRIPT: &str =
    "CASE WHEN s.transcript_hash IS NULL THEN s.transcript_text ELSE t.body END";
/// The joins [`RECORD`] and [`TRANSCRIPT`] read from.
const TEXT_JOINS: &str = "LEFT JOIN texts r ON r.hash = s.record_hash
    LEFT JOIN texts t ON t.hash = s.transcript_hash";

/// Deletes the texts no row references (after a purge; also texts left by an insert that
/// lost a race for its id).
pub(super) const DELETE_UNREFERENCED_TEXTS: &str = "DELETE FROM texts
    WHERE NOT EXISTS (SELECT 1 FROM scans WHERE scans.record_hash = texts.hash)
      AND NOT EXISTS (SELECT 1 FROM scans WHERE scans.transcript_hash = texts.hash)";

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
    "id, host, port, ip, fingerprint, created, config, mssp_name, mssp_players, source,
    complete, compat";

/// The statements an insert runs, prepared once per transaction.
struct InsertStatements<'c> {
    exists: rusqlite::Statement<'c>,
    text: rusqlite::Statement<'c>,
    scan: rusqlite::Statement<'c>,
}

impl<'c> InsertStatements<'c> {
    fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<InsertStatements<'c>> {
        Ok(InsertStatements {
            exists: tx.prepare("SELECT 1 FROM scans WHERE id = ?1")?,
            text: tx.prepare(
                "INSERT INTO texts (hash, body) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
            )?,
            scan: tx.prepare(
                "INSERT INTO scans (id, host, port, ip, fingerprint, created, record_json,
                    transcript_text, config, mssp_players, mssp_uptime, mssp_name, source,
                    record_hash, record_part, transcript_hash, complete, compat)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', '', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                    ?15, ?16)
                ON CONFLICT (id) DO NOTHING",
            )?,
        })
    }

    /// Stores a text unless this transaction already did (`done`).
    fn put_text(
        &mut self,
        done: &mut HashSet<String>,
        hash: &str,
        body: &str,
    ) -> rusqlite::Result<()> {
        if done.insert(hash.to_owned()) {
            self.text.execute(params![hash, body])?;
        }
        Ok(())
    }

    /// Adds one row, its texts first (each stored once: `done` holds the hashes this
    /// transaction already stored); an id already stored is left as it is and adds
    /// nothing. Returns the rows added (0 or 1).
    fn insert(&mut self, s: &NewScan, done: &mut HashSet<String>) -> rusqlite::Result<usize> {
        if self.exists.exists([&s.id])? {
            return Ok(0);
        }
        let (record_hash, record_part) = match &s.record_json {
            RecordText::Whole(text) => {
                let h = text_hash(text);
                self.put_text(done, &h, text)?;
                (h, None)
            }
            RecordText::Spliced { template, part } => {
                self.put_text(done, template.hash(), template.body())?;
                (template.hash().to_owned(), Some(part.as_str()))
            }
        };
        let transcript_hash = text_hash(&s.transcript_text);
        self.put_text(done, &transcript_hash, &s.transcript_text)?;
        self.scan.execute(params![
            s.id,
            s.host,
            s.port,
            s.ip,
            s.fingerprint,
            s.created,
            s.config,
            s.mssp_players,
            s.mssp_uptime,
            s.mssp_name,
            s.source,
            record_hash,
            record_part,
            transcript_hash,
            s.complete,
            s.compat
        ])
    }
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
        Ok(self.insert_many(std::slice::from_ref(s))? == 1)
    }

    /// All of `scans` in one transaction (one synced commit); returns the rows added.
    pub(super) fn insert_many(&self, scans: &[NewScan]) -> rusqlite::Result<usize> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let mut q = InsertStatements::prepare(&tx)?;
            let mut done = HashSet::new();
            for s in scans {
                added += q.insert(s, &mut done)?;
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

    pub(super) fn record(&self, id: &str) -> rusqlite::Result<Option<String>> {
        self.text(id, RECORD)
    }

    pub(super) fn transcript(&self, id: &str) -> rusqlite::Result<Option<String>> {
        self.text(id, TRANSCRIPT)
    }

    /// One text of one row; `expr` is [`RECORD`] or [`TRANSCRIPT`].
    fn text(&self, id: &str, expr: &str) -> rusqlite::Result<Option<String>> {
        self.conn()
            .query_row(
                &format!("SELECT {expr} FROM scans s {TEXT_JOINS} WHERE s.id = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()
    }

    pub(super) fn stored_text_bytes(&self) -> rusqlite::Result<i64> {
        self.conn().query_row(
            "SELECT (SELECT COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM texts)
                  + (SELECT COALESCE(SUM(length(CAST(record_json AS BLOB))
                                         + length(CAST(transcript_text AS BLOB))
                                         + COALESCE(length(CAST(record_part AS BLOB)), 0)), 0)
                     FROM scans)",
            [],
            |r| r.get(0),
        )
    }

    pub(super) fn shared_by(
        &self,
        fingerprint: &str,
        compat: &str,
    ) -> rusqlite::Result<Vec<SharedBy>> {
        let c = self.conn();
        // SQLite takes the bare columns of a MAX() aggregate from the row holding the max.
        let mut q = c.prepare(
            "SELECT host, port, id, MAX(created) FROM scans
             WHERE fingerprint = ?1 AND compat = ?3 AND complete = 1
             GROUP BY host, port ORDER BY MAX(created) DESC, host, port LIMIT ?2",
        )?;
        let rows = q.query_map(params![fingerprint, MAX_LIST, compat], |r| {
            Ok(SharedBy {
                host: r.get(0)?,
                port: r.get(1)?,
                scan: r.get(2)?,
                created: r.get(3)?,
            })
        })?;
        rows.collect()
    }

    pub(super) fn shared_count(&self, fingerprint: &str, compat: &str) -> rusqlite::Result<i64> {
        self.conn().query_row(
            "SELECT COUNT(*) FROM (SELECT DISTINCT host, port FROM scans
             WHERE fingerprint = ?1 AND compat = ?2 AND complete = 1)",
            [fingerprint, compat],
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
            complete: r.get(10)?,
            compat: r.get(11)?,
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
                     ORDER BY complete DESC, created DESC, id DESC LIMIT 1"
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
                     ORDER BY complete DESC, created DESC, id DESC LIMIT 1"
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
            "SELECT {SUMMARY_COLUMNS}, {RECORD} FROM scans s {TEXT_JOINS}
             WHERE s.id > ?1 ORDER BY s.id LIMIT ?2"
        ))?;
        let rows = q.query_map(params![after, limit], |r| {
            Ok(StoredScan {
                summary: Self::summary_row(r)?,
                record_json: r.get(12)?,
            })
        })?;
        rows.collect()
    }

    pub(super) fn purge_before(&self, created_before: i64) -> rusqlite::Result<usize> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM scans WHERE created < ?1", [created_before])?;
        tx.execute_batch(DELETE_UNREFERENCED_TEXTS)?;
        tx.commit()?;
        Ok(n)
    }

    pub(super) fn server(&self, host: &str, port: u16) -> rusqlite::Result<Vec<ServerScan>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT * FROM (
                SELECT id, fingerprint, created, mssp_players, mssp_uptime, complete, compat,
                    (' ' || config || ' ') LIKE ?4 AS tls
                FROM scans WHERE host = ?1 AND port = ?2 ORDER BY created DESC, id DESC LIMIT ?3)
             ORDER BY created, id",
        )?;
        let tls = format!("% {TLS_WORD} %");
        let rows = q.query_map(params![host, port, MAX_LIST, tls], |r| {
            Ok(ServerScan {
                id: r.get(0)?,
                fingerprint: r.get(1)?,
                created: r.get(2)?,
                players: r.get(3)?,
                uptime: r.get(4)?,
                complete: r.get(5)?,
                compat: r.get(6)?,
                tls: r.get(7)?,
            })
        })?;
        rows.collect()
    }

    /// Stores `scan` (as [`Sqlite::insert_many`] does) and `point` in one transaction.
    pub(super) fn insert_with_history(
        &self,
        scan: &NewScan,
        point: &HistoryPoint,
    ) -> rusqlite::Result<bool> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let added = {
            let mut q = InsertStatements::prepare(&tx)?;
            q.insert(scan, &mut HashSet::new())?
        };
        put_history(&tx, point)?;
        tx.commit()?;
        Ok(added == 1)
    }

    pub(super) fn add_history(&self, point: &HistoryPoint) -> rusqlite::Result<bool> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = put_history(&tx, point)?;
        tx.commit()?;
        Ok(n == 1)
    }

    pub(super) fn purge_history_before(&self, before: i64) -> rusqlite::Result<usize> {
        self.conn()
            .execute("DELETE FROM history WHERE at < ?1", [before])
    }

    pub(super) fn history(&self, host: &str, port: u16) -> rusqlite::Result<Vec<HistoryPoint>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT host, port, tls, at, outcome, detail, scan_id, crawl FROM history
             WHERE host = ?1 AND port = ?2 ORDER BY at DESC, rowid DESC LIMIT ?3",
        )?;
        let rows = q.query_map(params![host, port, MAX_LIST], |r| {
            Ok(HistoryPoint {
                host: r.get(0)?,
                port: r.get(1)?,
                tls: r.get(2)?,
                at: r.get(3)?,
                outcome: r.get(4)?,
                detail: r.get(5)?,
                scan_id: r.get(6)?,
                crawl: r.get(7)?,
            })
        })?;
        rows.collect()
    }

    pub(super) fn crawl_round(
        &self,
        id: &str,
        targets: i64,
        now: i64,
        restart: bool,
    ) -> rusqlite::Result<i64> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO crawls (id, round, created, targets) VALUES (?1, 1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET targets = excluded.targets",
            params![id, now, targets],
        )?;
        if restart {
            tx.execute(
                "UPDATE crawls SET round = round + 1, created = ?2, finished = NULL WHERE id = ?1",
                params![id, now],
            )?;
        }
        let round = tx.query_row("SELECT round FROM crawls WHERE id = ?1", [id], |r| r.get(0))?;
        tx.commit()?;
        Ok(round)
    }

    pub(super) fn crawl_done(&self, crawl: &str, limit: i64) -> rusqlite::Result<Vec<CrawlTarget>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT host, port, tls FROM history WHERE crawl = ?1 ORDER BY host, port, tls LIMIT ?2",
        )?;
        let rows = q.query_map(params![crawl, limit], |r| {
            Ok(CrawlTarget {
                host: r.get(0)?,
                port: r.get(1)?,
                tls: r.get(2)?,
            })
        })?;
        rows.collect()
    }

    pub(super) fn crawl_finish(&self, id: &str, now: i64) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE crawls SET finished = ?2 WHERE id = ?1 AND finished IS NULL",
            params![id, now],
        )?;
        Ok(())
    }

    pub(super) fn census(&self, limit: i64) -> rusqlite::Result<Vec<CensusEntry>> {
        let c = self.conn();
        let mut q = c.prepare(
            "WITH t AS (
                SELECT host, port, (' ' || config || ' ') LIKE ?1 AS tls FROM scans
                UNION SELECT host, port, tls FROM history)
             SELECT t.host, t.port, t.tls,
                MAX(COALESCE((SELECT MAX(at) FROM history h WHERE h.host = t.host
                    AND h.port = t.port AND h.tls = t.tls), -1),
                    COALESCE((SELECT MAX(created) FROM scans s WHERE s.host = t.host
                    AND s.port = t.port AND ((' ' || s.config || ' ') LIKE ?1) = t.tls), -1)),
                (SELECT id FROM scans s WHERE s.host = t.host AND s.port = t.port
                    AND ((' ' || s.config || ' ') LIKE ?1) = t.tls
                    ORDER BY complete DESC, created DESC, id DESC LIMIT 1)
             FROM t ORDER BY t.host, t.port, t.tls LIMIT ?2",
        )?;
        let rows = q.query_map(params![format!("% {TLS_WORD} %"), limit], |r| {
            let last: i64 = r.get(3)?;
            Ok(CensusEntry {
                target: CrawlTarget {
                    host: r.get(0)?,
                    port: r.get(1)?,
                    tls: r.get(2)?,
                },
                last_at: (last >= 0).then_some(last),
                latest_id: r.get(4)?,
            })
        })?;
        rows.collect()
    }

    pub(super) fn known_servers(&self, limit: i64) -> rusqlite::Result<Vec<CrawlTarget>> {
        let c = self.conn();
        let mut q = c.prepare(
            "SELECT DISTINCT host, port, (' ' || config || ' ') LIKE ?1 AS tls FROM scans
             ORDER BY host, port, tls LIMIT ?2",
        )?;
        let rows = q.query_map(params![format!("% {TLS_WORD} %"), limit], |r| {
            Ok(CrawlTarget {
                host: r.get(0)?,
                port: r.get(1)?,
                tls: r.get(2)?,
            })
        })?;
        rows.collect()
    }
}

/// Adds `point` in `tx`; returns the rows added (0 when its crawl round has one already).
fn put_history(tx: &Transaction<'_>, p: &HistoryPoint) -> rusqlite::Result<usize> {
    tx.execute(
        INSERT_HISTORY,
        params![p.host, p.port, p.tls, p.at, p.outcome, p.detail, p.scan_id, p.crawl],
    )
}
