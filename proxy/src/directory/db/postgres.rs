//! The PostgreSQL backend of [`super::Db`], for several proxy instances sharing one
//! directory. A small pool of worker threads, each with its own connection (the sync
//! `postgres` client runs its own little runtime, so it must never be driven from an async
//! thread: callers only hand jobs over a channel and wait). A connection found broken is
//! dropped and the job retried once on a new one; every statement is idempotent (inserts are
//! `ON CONFLICT DO NOTHING`), so the retry cannot duplicate anything.
//!
//! Migrations are the same numbered list as SQLite's, applied in one transaction under a
//! transaction-level advisory lock, so instances starting together migrate one at a time.
//! `synchronous_commit` is set `on` for every connection: a commit (and so a save's 200
//! reply) waits for the WAL flush.

use super::{
    like_escape, text_hash, CensusEntry, Claimed, CrawlTarget, DbError, HistoryPoint, NewScan,
    RecordText, ScanSummary, ServerHit, ServerScan, SharedBy, StoredScan, MAX_LIST, TLS_WORD,
};
use postgres::{Client, Config, NoTls, Row, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The migrations in PostgreSQL's dialect, entry for entry the same as SQLite's. Texts that
/// are ordered or compared (`id`, `host`) use the `C` collation so that ordering is bytewise,
/// as in SQLite, whatever the database's locale.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE scans (
        id TEXT COLLATE \"C\" PRIMARY KEY,
        host TEXT COLLATE \"C\" NOT NULL,
        port INTEGER NOT NULL,
        ip TEXT NOT NULL,
        fingerprint TEXT COLLATE \"C\" NOT NULL,
        created BIGINT NOT NULL,
        record_json TEXT NOT NULL,
        transcript_text TEXT NOT NULL,
        config TEXT NOT NULL,
        mssp_players TEXT,
        mssp_uptime TEXT
    );
    CREATE INDEX scans_fingerprint ON scans (fingerprint, created);
    CREATE INDEX scans_server ON scans (host, port, created);",
    "ALTER TABLE scans ADD COLUMN mssp_name TEXT;
    ALTER TABLE scans ADD COLUMN source TEXT NOT NULL DEFAULT 'live';
    CREATE INDEX scans_created ON scans (created);",
    "CREATE TABLE texts (hash TEXT COLLATE \"C\" PRIMARY KEY, body TEXT NOT NULL);
    ALTER TABLE scans ADD COLUMN record_hash TEXT COLLATE \"C\" REFERENCES texts (hash);
    ALTER TABLE scans ADD COLUMN record_part TEXT;
    ALTER TABLE scans ADD COLUMN transcript_hash TEXT COLLATE \"C\" REFERENCES texts (hash);
    CREATE INDEX scans_record_hash ON scans (record_hash);
    CREATE INDEX scans_transcript_hash ON scans (transcript_hash);",
    "CREATE TABLE crawls (
        id TEXT COLLATE \"C\" PRIMARY KEY,
        round BIGINT NOT NULL,
        created BIGINT NOT NULL,
        targets BIGINT NOT NULL,
        finished BIGINT
    );
    CREATE TABLE history (
        host TEXT COLLATE \"C\" NOT NULL,
        port INTEGER NOT NULL,
        tls INTEGER NOT NULL,
        at BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        scan_id TEXT COLLATE \"C\",
        crawl TEXT COLLATE \"C\"
    );
    CREATE INDEX history_server ON history (host, port, at);
    CREATE UNIQUE INDEX history_crawl ON history (crawl, host, port, tls) WHERE crawl IS NOT NULL;",
    // A crawl round's targets, shared by its workers: a row is leased to one worker until
    // `lease_until` (Unix seconds, the database's clock); it is done when the round has a
    // history point for it.
    "CREATE TABLE crawl_queue (
        crawl TEXT COLLATE \"C\" NOT NULL,
        host TEXT COLLATE \"C\" NOT NULL,
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
    ALTER TABLE scans ADD COLUMN compat TEXT COLLATE \"C\" NOT NULL DEFAULT '5.0.1';
    UPDATE scans SET compat = 'unknown' WHERE source = 'import';
    CREATE INDEX scans_fingerprint_compat ON scans (fingerprint, compat, complete);",
];

/// The database's clock in Unix seconds (leases are compared on one clock, whatever the
/// workers' clocks say).
const DB_NOW: &str = "floor(extract(epoch FROM clock_timestamp()))::bigint";
/// A queue row `c` of round `$1` has no history point in it (is not done).
const NOT_DONE: &str = "NOT EXISTS (SELECT 1 FROM history h WHERE h.crawl = c.crawl
    AND h.host = c.host AND h.port = c.port AND h.tls = c.tls)";
/// Rows per enqueue statement.
const ENQUEUE_BATCH: usize = 1000;

/// Adds a history point unless its crawl round already has one for its target.
const INSERT_HISTORY: &str =
    "INSERT INTO history (host, port, tls, at, outcome, detail, scan_id, crawl)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";

/// A row's record text, as in SQLite (`chr` for SQLite's `char`).
const RECORD: &str = "CASE WHEN s.record_hash IS NULL THEN s.record_json
    WHEN s.record_part IS NULL THEN r.body
    ELSE replace(r.body, chr(1), s.record_part) END";
/// A row's transcript text.
const TRANSCRIPT: &str =
    "CASE WHEN s.transcript_hash IS NULL THEN s.transcript_text ELSE t.body END";
/// The joins [`RECORD`] and [`TRANSCRIPT`] read from.
const TEXT_JOINS: &str = "LEFT JOIN texts r ON r.hash = s.record_hash
    LEFT JOIN texts t ON t.hash = s.transcript_hash";
/// Key of the advisory lock between inserts (shared: they reference texts that already
/// exist without locking them) and the deletion of unreferenced texts (exclusive), so a
/// text cannot be deleted between an insert finding it present and committing its row.
const TEXTS_LOCK: i64 = 0x6961_6373_7465_7874;

/// Key of the advisory lock migrations run under (any constant; "iacscope" in ASCII).
const MIGRATION_LOCK: i64 = 0x6961_6373_636f_7065;
/// Time to reach the server and log in, unless the URL sets `connect_timeout`.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a statement may run on the server (`statement_timeout`).
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// Longest a caller waits for its job's answer (connect, one retry and the statement, with
/// room to spare); past it the caller gets an error even if the worker is still stuck.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle time before TCP keepalives probe a silent server (so a dead peer is noticed).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Connections (and worker threads) per store.
const POOL_SIZE: usize = 4;

/// The columns [`ScanSummary`] is read from, in its field order.
const SUMMARY_COLUMNS: &str =
    "id, host, port, ip, fingerprint, created, config, mssp_name, mssp_players, source,
    complete, compat";

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// One worker's connection, made on first use and remade after it breaks.
struct Conn {
    config: Config,
    target: String,
    client: Option<Client>,
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client, DbError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            self.client = Some(connect(&self.config, &self.target)?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| DbError::new("no database connection"))
    }

    /// Runs `f`; if it fails because the connection broke, once more on a new connection.
    fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut Client) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut retried = false;
        loop {
            let client = self.client()?;
            match f(client) {
                Ok(v) => return Ok(v),
                Err(e) if client.is_closed() && !retried => {
                    tracing::warn!(
                        "database connection to {} lost ({e}); reconnecting",
                        self.target
                    );
                    self.client = None;
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `host:port/dbname` of a configuration, for messages (never the password).
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{}:{}/{}",
        hosts.join(","),
        if ports.is_empty() {
            "5432".to_owned()
        } else {
            ports.join(",")
        },
        config.get_dbname().unwrap_or("")
    )
}

/// Parses a `postgres://` URL (or key=value string), with this store's defaults.
pub(super) fn parse_url(url: &str) -> Result<Config, String> {
    let mut config =
        Config::from_str(url).map_err(|e| format!("invalid database URL: {}", DbError::from(e)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("iacscope");
    }
    config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
    Ok(config)
}

fn connect(config: &Config, target: &str) -> Result<Client, DbError> {
    let mut client = config.connect(NoTls).map_err(|e| {
        DbError::new(format!(
            "cannot connect to PostgreSQL at {target}: {}",
            DbError::from(e)
        ))
    })?;
    client.batch_execute(&format!(
        "SET synchronous_commit = on; SET statement_timeout = {STATEMENT_TIMEOUT_MS}"
    ))?;
    Ok(client)
}

fn port_of(v: i32) -> Result<u16, DbError> {
    u16::try_from(v).map_err(|_| DbError::new(format!("stored port {v} is out of range")))
}

fn summary_row(r: &Row) -> Result<ScanSummary, DbError> {
    Ok(ScanSummary {
        id: r.try_get(0)?,
        host: r.try_get(1)?,
        port: port_of(r.try_get(2)?)?,
        ip: r.try_get(3)?,
        fingerprint: r.try_get(4)?,
        created: r.try_get(5)?,
        config: r.try_get(6)?,
        name: r.try_get(7)?,
        players: r.try_get(8)?,
        source: r.try_get(9)?,
        complete: r.try_get::<_, i32>(10)? != 0,
        compat: r.try_get(11)?,
    })
}

/// Adds one row, its texts first (each stored once: `texts_done` holds the hashes this
/// transaction already stored); an id already stored is left as it is and adds nothing.
/// Returns the rows added (0 or 1).
fn insert_in(
    tx: &mut Transaction<'_>,
    s: &NewScan,
    texts_done: &mut HashSet<String>,
) -> Result<usize, DbError> {
    if tx
        .query_opt("SELECT 1 FROM scans WHERE id = $1", &[&s.id])?
        .is_some()
    {
        return Ok(0);
    }
    let mut put_text = |tx: &mut Transaction<'_>, hash: &str, body: &str| {
        if texts_done.insert(hash.to_owned()) {
            tx.execute(
                "INSERT INTO texts (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[&hash, &body],
            )?;
        }
        Ok::<(), DbError>(())
    };
    let (record_hash, record_part) = match &s.record_json {
        RecordText::Whole(text) => {
            let h = text_hash(text);
            put_text(tx, &h, text)?;
            (h, None)
        }
        RecordText::Spliced { template, part } => {
            put_text(tx, template.hash(), template.body())?;
            (template.hash().to_owned(), Some(part.as_str()))
        }
    };
    let transcript_hash = text_hash(&s.transcript_text);
    put_text(tx, &transcript_hash, &s.transcript_text)?;
    let n = tx.execute(
        "INSERT INTO scans (id, host, port, ip, fingerprint, created, record_json,
            transcript_text, config, mssp_players, mssp_uptime, mssp_name, source,
            record_hash, record_part, transcript_hash, complete, compat)
        VALUES ($1, $2, $3, $4, $5, $6, '', '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
        ON CONFLICT (id) DO NOTHING",
        &[
            &s.id,
            &s.host,
            &i32::from(s.port),
            &s.ip,
            &s.fingerprint,
            &s.created,
            &s.config,
            &s.mssp_players,
            &s.mssp_uptime,
            &s.mssp_name,
            &s.source,
            &record_hash,
            &record_part,
            &transcript_hash,
            &i32::from(s.complete),
            &s.compat,
        ],
    )?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// A PostgreSQL store: the job queue of its worker pool.
#[derive(Debug)]
pub(super) struct Postgres {
    jobs: Mutex<mpsc::Sender<Job>>,
    target: String,
}

impl Postgres {
    /// Connects (one connection, at once, so a bad URL or an unreachable server is an error
    /// here and not at the first save), migrates, and starts the pool.
    pub(super) fn connect(url: &str) -> Result<Postgres, String> {
        let config = parse_url(url)?;
        let target = describe(&config);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..POOL_SIZE {
            let rx = Arc::clone(&rx);
            let mut conn = Conn {
                config: config.clone(),
                target: target.clone(),
                client: None,
            };
            std::thread::Builder::new()
                .name(format!("iacscope-pg-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    match job {
                        Ok(job) => job(&mut conn),
                        // The store was dropped: close the connection and end.
                        Err(_) => break,
                    }
                })
                .map_err(|e| format!("cannot start a database thread: {e}"))?;
        }
        let pg = Postgres {
            jobs: Mutex::new(tx),
            target,
        };
        // Connect first (its error names the server), then migrate.
        pg.run(|_| Ok(())).map_err(|e| e.to_string())?;
        pg.run(migrate)
            .map_err(|e| format!("migrating PostgreSQL at {}: {e}", pg.target))?;
        Ok(pg)
    }

    /// Runs `f` on a pooled connection and waits for its answer.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Client) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            let _ = tx.send(conn.run(f));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| DbError::new("the database workers have stopped"))?;
        match rx.recv_timeout(JOB_TIMEOUT) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(DbError::new(format!(
                "PostgreSQL at {} did not answer within {} s",
                self.target,
                JOB_TIMEOUT.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(DbError::new("a database worker stopped during a query"))
            }
        }
    }

    pub(super) fn version(&self) -> Result<i64, DbError> {
        self.run(|c| {
            let v: Option<i32> = c
                .query_one("SELECT MAX(version) FROM schema_version", &[])?
                .try_get(0)?;
            Ok(i64::from(v.unwrap_or(0)))
        })
    }

    pub(super) fn insert(&self, s: &NewScan) -> Result<bool, DbError> {
        Ok(self.insert_many(std::slice::from_ref(s))? == 1)
    }

    /// All of `scans` in one transaction (one commit); returns the rows added. A retry after
    /// a lost connection redoes the whole transaction (it was not committed).
    pub(super) fn insert_many(&self, scans: &[NewScan]) -> Result<usize, DbError> {
        let scans = scans.to_vec();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&TEXTS_LOCK])?;
            let mut added = 0;
            let mut texts_done = HashSet::new();
            for s in &scans {
                added += insert_in(&mut tx, s, &mut texts_done)?;
            }
            tx.commit()?;
            Ok(added)
        })
    }

    pub(super) fn scan_ids_at(
        &self,
        host: &str,
        port: u16,
        fingerprint: &str,
        created: i64,
    ) -> Result<Vec<String>, DbError> {
        let (host, fp) = (host.to_owned(), fingerprint.to_owned());
        self.run(move |c| {
            let rows = c.query(
                "SELECT id FROM scans
                 WHERE host = $1 AND port = $2 AND created = $3 AND fingerprint = $4 ORDER BY id",
                &[&host, &i32::from(port), &created, &fp],
            )?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    pub(super) fn record(&self, id: &str) -> Result<Option<String>, DbError> {
        self.text(id, RECORD)
    }

    pub(super) fn transcript(&self, id: &str) -> Result<Option<String>, DbError> {
        self.text(id, TRANSCRIPT)
    }

    pub(super) fn stored_text_bytes(&self) -> Result<i64, DbError> {
        self.run(|c| {
            Ok(c.query_one(
                "SELECT (SELECT COALESCE(SUM(octet_length(body)), 0) FROM texts)
                      + (SELECT COALESCE(SUM(octet_length(record_json)
                                             + octet_length(transcript_text)
                                             + COALESCE(octet_length(record_part), 0)), 0)
                         FROM scans)",
                &[],
            )?
            .try_get::<_, i64>(0)?)
        })
    }

    /// One text of one row; `expr` is [`RECORD`] or [`TRANSCRIPT`].
    fn text(&self, id: &str, expr: &'static str) -> Result<Option<String>, DbError> {
        let id = id.to_owned();
        self.run(move |c| {
            let row = c.query_opt(
                &format!("SELECT {expr} FROM scans s {TEXT_JOINS} WHERE s.id = $1"),
                &[&id],
            )?;
            Ok(match row {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            })
        })
    }

    pub(super) fn shared_by(
        &self,
        fingerprint: &str,
        compat: &str,
    ) -> Result<Vec<SharedBy>, DbError> {
        let (fp, compat) = (fingerprint.to_owned(), compat.to_owned());
        self.run(move |c| {
            // Each server's latest scan with this fingerprint, newest servers first.
            let rows = c.query(
                "SELECT host, port, id, created FROM (
                     SELECT DISTINCT ON (host, port) host, port, id, created FROM scans
                     WHERE fingerprint = $1 AND compat = $3 AND complete = 1
                     ORDER BY host, port, created DESC, id DESC
                 ) latest ORDER BY created DESC, host, port LIMIT $2",
                &[&fp, &MAX_LIST, &compat],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(SharedBy {
                        host: r.try_get(0)?,
                        port: port_of(r.try_get(1)?)?,
                        scan: r.try_get(2)?,
                        created: r.try_get(3)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn shared_count(&self, fingerprint: &str, compat: &str) -> Result<i64, DbError> {
        let (fp, compat) = (fingerprint.to_owned(), compat.to_owned());
        self.run(move |c| {
            Ok(c.query_one(
                "SELECT COUNT(*) FROM (SELECT DISTINCT host, port FROM scans
                 WHERE fingerprint = $1 AND compat = $2 AND complete = 1) d",
                &[&fp, &compat],
            )?
            .try_get(0)?)
        })
    }

    pub(super) fn summary(&self, id: &str) -> Result<Option<ScanSummary>, DbError> {
        let id = id.to_owned();
        self.run(move |c| {
            c.query_opt(
                &format!("SELECT {SUMMARY_COLUMNS} FROM scans WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(summary_row)
            .transpose()
        })
    }

    pub(super) fn latest(&self, host: &str, port: u16) -> Result<Option<ScanSummary>, DbError> {
        let host = host.to_owned();
        self.run(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM scans WHERE host = $1 AND port = $2
                     ORDER BY complete DESC, created DESC, id DESC LIMIT 1"
                ),
                &[&host, &i32::from(port)],
            )?
            .as_ref()
            .map(summary_row)
            .transpose()
        })
    }

    pub(super) fn latest_with_tls(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<Option<ScanSummary>, DbError> {
        let host = host.to_owned();
        self.run(move |c| {
            c.query_opt(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM scans WHERE host = $1 AND port = $2
                       AND (strpos(' ' || config || ' ', ' {TLS_WORD} ') > 0) = $3
                     ORDER BY complete DESC, created DESC, id DESC LIMIT 1"
                ),
                &[&host, &i32::from(port), &tls],
            )?
            .as_ref()
            .map(summary_row)
            .transpose()
        })
    }

    pub(super) fn search(&self, query: &str, limit: i64) -> Result<Vec<ServerHit>, DbError> {
        let pattern = format!("%{}%", like_escape(&query.to_lowercase()));
        let limit = limit.clamp(0, MAX_LIST);
        self.run(move |c| {
            let rows = c.query(
                "SELECT s.host, s.port, s.mssp_name, s.id, s.fingerprint, s.created FROM scans s
                 WHERE s.id = (SELECT t.id FROM scans t WHERE t.host = s.host AND t.port = s.port
                               ORDER BY t.created DESC, t.id DESC LIMIT 1)
                   AND (LOWER(s.host) LIKE $1 ESCAPE '\\'
                        OR EXISTS (SELECT 1 FROM scans n WHERE n.host = s.host AND n.port = s.port
                                   AND LOWER(n.mssp_name) LIKE $1 ESCAPE '\\'))
                 ORDER BY s.created DESC, s.host, s.port LIMIT $2",
                &[&pattern, &limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(ServerHit {
                        host: r.try_get(0)?,
                        port: port_of(r.try_get(1)?)?,
                        name: r.try_get(2)?,
                        scan: r.try_get(3)?,
                        fingerprint: r.try_get(4)?,
                        created: r.try_get(5)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn scans_after(&self, after: &str, limit: i64) -> Result<Vec<StoredScan>, DbError> {
        let after = after.to_owned();
        // As in SQLite, a negative limit means no limit (`LIMIT NULL` here).
        let limit = (limit >= 0).then_some(limit);
        self.run(move |c| {
            let rows = c.query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, {RECORD} FROM scans s {TEXT_JOINS}
                     WHERE s.id > $1 ORDER BY s.id LIMIT $2"
                ),
                &[&after, &limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(StoredScan {
                        summary: summary_row(r)?,
                        record_json: r.try_get(12)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn purge_before(&self, created_before: i64) -> Result<usize, DbError> {
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TEXTS_LOCK])?;
            let n = tx.execute("DELETE FROM scans WHERE created < $1", &[&created_before])?;
            tx.batch_execute(super::sqlite::DELETE_UNREFERENCED_TEXTS)?;
            tx.commit()?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    pub(super) fn server(&self, host: &str, port: u16) -> Result<Vec<ServerScan>, DbError> {
        let host = host.to_owned();
        self.run(move |c| {
            let rows = c.query(
                "SELECT * FROM (
                    SELECT id, fingerprint, created, mssp_players, mssp_uptime, complete, compat,
                        CASE WHEN (' ' || config || ' ') LIKE $4 THEN 1 ELSE 0 END AS tls
                    FROM scans WHERE host = $1 AND port = $2
                    ORDER BY created DESC, id DESC LIMIT $3) newest
                 ORDER BY created, id",
                &[
                    &host,
                    &i32::from(port),
                    &MAX_LIST,
                    &format!("% {TLS_WORD} %"),
                ],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(ServerScan {
                        id: r.try_get(0)?,
                        fingerprint: r.try_get(1)?,
                        created: r.try_get(2)?,
                        players: r.try_get(3)?,
                        uptime: r.try_get(4)?,
                        complete: r.try_get::<_, i32>(5)? != 0,
                        compat: r.try_get(6)?,
                        tls: r.try_get::<_, i32>(7)? != 0,
                    })
                })
                .collect()
        })
    }

    /// Stores `scan` (as [`Postgres::insert_many`] does) and `point` in one transaction.
    pub(super) fn insert_with_history(
        &self,
        scan: &NewScan,
        point: &HistoryPoint,
    ) -> Result<bool, DbError> {
        let (scan, point) = (scan.clone(), point.clone());
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&TEXTS_LOCK])?;
            let added = insert_in(&mut tx, &scan, &mut HashSet::new())?;
            put_history(&mut tx, &point)?;
            tx.commit()?;
            Ok(added == 1)
        })
    }

    pub(super) fn add_history(&self, point: &HistoryPoint) -> Result<bool, DbError> {
        let point = point.clone();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            let n = put_history(&mut tx, &point)?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    pub(super) fn purge_history_before(&self, before: i64) -> Result<usize, DbError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM history WHERE at < $1", &[&before])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    pub(super) fn history(&self, host: &str, port: u16) -> Result<Vec<HistoryPoint>, DbError> {
        let host = host.to_owned();
        self.run(move |c| {
            let rows = c.query(
                "SELECT host, port, tls, at, outcome, detail, scan_id, crawl FROM history
                 WHERE host = $1 AND port = $2 ORDER BY at DESC, ctid DESC LIMIT $3",
                &[&host, &i32::from(port), &MAX_LIST],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(HistoryPoint {
                        host: r.try_get(0)?,
                        port: port_of(r.try_get(1)?)?,
                        tls: r.try_get::<_, i32>(2)? != 0,
                        at: r.try_get(3)?,
                        outcome: r.try_get(4)?,
                        detail: r.try_get(5)?,
                        scan_id: r.try_get(6)?,
                        crawl: r.try_get(7)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn crawl_round(
        &self,
        id: &str,
        targets: i64,
        now: i64,
        restart: bool,
    ) -> Result<i64, DbError> {
        let id = id.to_owned();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO crawls (id, round, created, targets) VALUES ($1, 1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET targets = excluded.targets",
                &[&id, &now, &targets],
            )?;
            if restart {
                tx.execute(
                    "UPDATE crawls SET round = round + 1, created = $2, finished = NULL
                     WHERE id = $1",
                    &[&id, &now],
                )?;
            }
            let round: i64 = tx
                .query_one("SELECT round FROM crawls WHERE id = $1", &[&id])?
                .try_get(0)?;
            tx.commit()?;
            Ok(round)
        })
    }

    pub(super) fn crawl_done(&self, crawl: &str, limit: i64) -> Result<Vec<CrawlTarget>, DbError> {
        let crawl = crawl.to_owned();
        self.run(move |c| {
            let rows = c.query(
                "SELECT host, port, tls FROM history WHERE crawl = $1
                 ORDER BY host, port, tls LIMIT $2",
                &[&crawl, &limit],
            )?;
            rows.iter().map(target_of).collect()
        })
    }

    pub(super) fn crawl_finish(&self, id: &str, now: i64) -> Result<(), DbError> {
        let id = id.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE crawls SET finished = $2 WHERE id = $1 AND finished IS NULL",
                &[&id, &now],
            )?;
            Ok(())
        })
    }

    pub(super) fn crawl_enqueue(
        &self,
        crawl: &str,
        targets: &[(CrawlTarget, Option<String>)],
    ) -> Result<u64, DbError> {
        let crawl = crawl.to_owned();
        let targets = targets.to_vec();
        self.run(move |c| {
            let mut added = 0;
            for chunk in targets.chunks(ENQUEUE_BATCH) {
                let hosts: Vec<&str> = chunk.iter().map(|(t, _)| t.host.as_str()).collect();
                let ports: Vec<i32> = chunk.iter().map(|(t, _)| i32::from(t.port)).collect();
                let tls: Vec<i32> = chunk.iter().map(|(t, _)| i32::from(t.tls)).collect();
                let enc: Vec<Option<&str>> = chunk.iter().map(|(_, e)| e.as_deref()).collect();
                added += c.execute(
                    "INSERT INTO crawl_queue (crawl, host, port, tls, encoding)
                     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int[], $5::text[])
                     ON CONFLICT DO NOTHING",
                    &[&crawl, &hosts, &ports, &tls, &enc],
                )?;
            }
            Ok(added)
        })
    }

    pub(super) fn crawl_claim(
        &self,
        crawl: &str,
        worker: &str,
        n: i64,
        lease_secs: i64,
    ) -> Result<Vec<Claimed>, DbError> {
        let (crawl, worker) = (crawl.to_owned(), worker.to_owned());
        self.run(move |c| {
            let mut tx = c.transaction()?;
            let rows = tx.query(
                &format!(
                    "WITH free AS (
                        SELECT c.crawl, c.host, c.port, c.tls, c.worker AS before
                        FROM crawl_queue c
                        WHERE c.crawl = $1 AND c.lease_until < {DB_NOW} AND {NOT_DONE}
                        ORDER BY c.host, c.port, c.tls LIMIT $3
                        FOR UPDATE OF c SKIP LOCKED)
                    UPDATE crawl_queue q SET lease_until = {DB_NOW} + $4, worker = $2
                    FROM free f WHERE q.crawl = f.crawl AND q.host = f.host
                        AND q.port = f.port AND q.tls = f.tls
                    RETURNING q.host, q.port, q.tls, q.encoding, f.before"
                ),
                &[&crawl, &worker, &n, &lease_secs],
            )?;
            let out = rows
                .iter()
                .map(|r| {
                    Ok(Claimed {
                        target: target_of(r)?,
                        encoding: r.try_get(3)?,
                        expired_lease_of: r.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()?;
            tx.commit()?;
            Ok(out)
        })
    }

    pub(super) fn crawl_renew(
        &self,
        crawl: &str,
        worker: &str,
        lease_secs: i64,
    ) -> Result<u64, DbError> {
        let (crawl, worker) = (crawl.to_owned(), worker.to_owned());
        self.run(move |c| {
            Ok(c.execute(
                &format!(
                    "UPDATE crawl_queue c SET lease_until = {DB_NOW} + $3
                     WHERE c.crawl = $1 AND c.worker = $2 AND c.lease_until >= {DB_NOW}
                     AND {NOT_DONE}"
                ),
                &[&crawl, &worker, &lease_secs],
            )?)
        })
    }

    pub(super) fn crawl_release(&self, crawl: &str, worker: &str) -> Result<u64, DbError> {
        let (crawl, worker) = (crawl.to_owned(), worker.to_owned());
        self.run(move |c| {
            Ok(c.execute(
                &format!(
                    "UPDATE crawl_queue c SET lease_until = 0, worker = NULL
                     WHERE c.crawl = $1 AND c.worker = $2 AND {NOT_DONE}"
                ),
                &[&crawl, &worker],
            )?)
        })
    }

    pub(super) fn crawl_left(&self, crawl: &str) -> Result<(i64, i64), DbError> {
        let crawl = crawl.to_owned();
        self.run(move |c| {
            let r = c.query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE {NOT_DONE})
                     FROM crawl_queue c WHERE c.crawl = $1"
                ),
                &[&crawl],
            )?;
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    pub(super) fn census(&self, limit: i64) -> Result<Vec<CensusEntry>, DbError> {
        self.run(move |c| {
            let tls = "CASE WHEN (' ' || s.config || ' ') LIKE $1 THEN 1 ELSE 0 END";
            let rows = c.query(
                &format!(
                    "WITH t AS (
                        SELECT host, port, {tls} AS tls FROM scans s
                        UNION SELECT host, port, tls FROM history)
                     SELECT t.host, t.port, t.tls,
                        GREATEST((SELECT MAX(at) FROM history h WHERE h.host = t.host
                            AND h.port = t.port AND h.tls = t.tls),
                            (SELECT MAX(created) FROM scans s WHERE s.host = t.host
                            AND s.port = t.port AND {tls} = t.tls)),
                        (SELECT id FROM scans s WHERE s.host = t.host AND s.port = t.port
                            AND {tls} = t.tls
                            ORDER BY complete DESC, created DESC, id DESC LIMIT 1)
                     FROM t ORDER BY t.host, t.port, t.tls LIMIT $2"
                ),
                &[&format!("% {TLS_WORD} %"), &limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(CensusEntry {
                        target: target_of(r)?,
                        last_at: r.try_get(3)?,
                        latest_id: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn known_servers(&self, limit: i64) -> Result<Vec<CrawlTarget>, DbError> {
        self.run(move |c| {
            let rows = c.query(
                "SELECT DISTINCT host, port,
                    CASE WHEN (' ' || config || ' ') LIKE $1 THEN 1 ELSE 0 END AS tls
                 FROM scans ORDER BY host, port, tls LIMIT $2",
                &[&format!("% {TLS_WORD} %"), &limit],
            )?;
            rows.iter().map(target_of).collect()
        })
    }
}

/// Brings the schema up to date, one instance at a time.
fn migrate(c: &mut Client) -> Result<(), DbError> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: Option<i32> = tx
        .query_one("SELECT MAX(version) FROM schema_version", &[])?
        .try_get(0)?;
    let current = current.unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i32::try_from(i + 1).map_err(|_| DbError::new("too many migrations"))?;
        if version > current {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Replaces the schema `schema` with an empty one in the database at `url` and returns
/// `url` with that schema as its search path (tests: one schema per test, so tests run in
/// parallel on one database). Runs on its own thread (safe to call from async code).
pub(super) fn fresh_schema(url: &str, schema: &str) -> Result<String, String> {
    let config = parse_url(url)?;
    let target = describe(&config);
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    let setup = move || -> Result<(), DbError> {
        let mut c = connect(&config, &target)?;
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {quoted} CASCADE; CREATE SCHEMA {quoted}"
        ))?;
        Ok(())
    };
    std::thread::spawn(setup)
        .join()
        .map_err(|_| "schema setup panicked".to_owned())?
        .map_err(|e| e.to_string())?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// Adds `point` in `tx`; returns the rows added (0 when its crawl round has one already).
fn put_history(tx: &mut Transaction<'_>, p: &HistoryPoint) -> Result<u64, DbError> {
    Ok(tx.execute(
        INSERT_HISTORY,
        &[
            &p.host,
            &i32::from(p.port),
            &i32::from(p.tls),
            &p.at,
            &p.outcome,
            &p.detail,
            &p.scan_id,
            &p.crawl,
        ],
    )?)
}

/// A (host, port, tls) row.
fn target_of(r: &Row) -> Result<CrawlTarget, DbError> {
    Ok(CrawlTarget {
        host: r.try_get(0)?,
        port: port_of(r.try_get(1)?)?,
        tls: r.try_get::<_, i32>(2)? != 0,
    })
}
