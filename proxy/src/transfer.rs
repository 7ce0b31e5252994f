//! `iacscope import DIR` and `iacscope export DIR`: telnetlib3-fingerprint data directories
//! (`DIR/server/<fingerprint>/<session-hash>.json`, spec §6) into and out of the permalink
//! store.
//!
//! A telnetlib3 file holds one (fingerprint, host/ip/port) pair: `fingerprint-data` from the
//! first scan, `session_data` from the latest, and one `sessions` entry per scan. Import
//! stores one row per `sessions` entry, each row's record being the file's record with
//! `sessions` reduced to that entry: the shared part is stored once, as a template, and each
//! row holds only its entry (`RecordText::Spliced`), so a file adds about its own size to the
//! store, at most [`store_budget`] of it (what passes is cut, and reported); export groups rows by (fingerprint, session hash),
//! orders them by their `connected` time and merges them back with telnetlib3's rule, so a
//! directory that went in comes out byte for byte. Row ids are derived from the fingerprint
//! and the session entry, so importing the same (or a grown) directory again adds only new
//! scans. Only the file's latest scan gets MSSP players and uptime (the file keeps no
//! `session_data` of the earlier ones); every row gets the MSSP name. Rows are stored
//! [`IMPORT_BATCH`] to a transaction (one synced commit per batch, not one per row).
//!
//! Export writes below DIR through `nofollow`: no symbolic link below DIR is followed, read
//! or written through; a link found is a skip in the report. Every name, path and host from
//! a data directory reaches the terminal through `escape::printable`.

use crate::directory::db::{
    Db, NewScan, RecordText, SharedText, COMPAT_UNKNOWN, COMPAT_VERSION, RECORD_MARKER,
    SOURCE_IMPORT,
};
use crate::directory::save::{content_id, mssp_text, mssp_value};
use crate::escape::{printable, printable_path};
use crate::nofollow::Dir;
use iacscope_shared::pyjson::{self, Dict, Value};
use iacscope_shared::record::{merge_into_existing, session_hash};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest record file import reads. Records are a few hundred KiB (two banners of at most
/// 64 KiB, escaped up to 6×) plus a `sessions` list of about 120 bytes per scan.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Most `sessions` entries taken from one file.
pub const MAX_SESSIONS_PER_FILE: usize = 10_000;
/// Store bytes one file may add per byte of its own length (see [`store_budget`]): a row
/// stores its entry, its keys and the server's name, about 3 bytes per byte of its entry
/// at worst, and the record once.
pub const STORE_BYTES_PER_FILE_BYTE: u64 = 4;
/// Store bytes any file may add besides [`STORE_BYTES_PER_FILE_BYTE`].
pub const STORE_BYTES_ALLOWANCE: u64 = 64 * 1024;
/// Most fingerprint folders import looks at (telnetlib3 itself stops saving at 1000).
pub const MAX_FINGERPRINT_DIRS: usize = 100_000;
/// Most directory entries import looks at in one fingerprint folder (telnetlib3: 1000 files).
pub const MAX_ENTRIES_PER_DIR: usize = 100_000;
/// Most record files one import reads.
pub const MAX_FILES: usize = 1_000_000;
/// Most skipped files (or rows) a report lists one by one (the summary counts them all).
const MAX_REPORTED_SKIPS: usize = 1_000;
/// Rows import stores per transaction (one synced commit each, instead of one per row).
pub const IMPORT_BATCH: usize = 500;
/// Rows export asks the store for at a time.
const EXPORT_PAGE: i64 = 500;
/// Most rows one export handles (its index holds a few dozen bytes per row).
pub const MAX_EXPORT_ROWS: usize = 10_000_000;
/// Longest scan type or encoding name copied into an imported row's `config`.
const MAX_CONFIG_WORD: usize = 40;
/// Hex digits of a telnetlib3 fingerprint or session hash.
const HASH_HEX_LEN: usize = 16;
/// The `config` column of imported rows starts with this (then `scan-type=… encoding=…`
/// when the record has them): they have no transcript to replay.
pub const IMPORTED_CONFIG: &str = "imported";

/// Where the store is: `--data-dir` and `--database-url`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Directory of the permalink database `iacscope.db` (as for `iacscope serve`).
    #[arg(long, env = "IACSCOPE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL store (`postgres://…`) instead of the SQLite file in `--data-dir`.
    #[arg(long, env = "IACSCOPE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `iacscope import DIR`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A telnetlib3-fingerprint data directory (holding `server/<fingerprint>/<session>.json`).
    pub dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `iacscope export DIR`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The directory to write `server/<fingerprint>/<session>.json` into (created if missing;
    /// must be empty unless `--merge`); with `--format telix` or `csv`, the file to write
    /// (which must not exist).
    pub dir: PathBuf,
    /// `telnetlib3` (a data directory of every stored scan), `telix` (the answering servers
    /// as a Telix `directory.json`) or `csv` (every known server, one line each).
    #[arg(long, value_enum, default_value = "telnetlib3")]
    pub format: ExportFormat,
    /// Merge into the files of a non-empty DIR with telnetlib3's rule (sessions already in a
    /// file are not added again).
    #[arg(long)]
    pub merge: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What `iacscope export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A telnetlib3-fingerprint data directory.
    Telnetlib3,
    /// A Telix `directory.json` of the answering servers.
    Telix,
    /// CSV, one line per known server.
    Csv,
}

/// Writes the census as a Telix `directory.json` or CSV to `path` (created; an existing file
/// is refused, never overwritten). Returns the servers written.
pub fn export_census(db: &Db, path: &Path, format: ExportFormat) -> Result<String, String> {
    use std::io::Write as _;
    let rows = crate::directory::census::rows(db, crate::directory::census::MAX_CENSUS)
        .map_err(|e| format!("reading the store: {e}"))?;
    let text = match format {
        ExportFormat::Telix => crate::directory::census::telix(&rows),
        ExportFormat::Csv => crate::directory::census::csv(&rows),
        ExportFormat::Telnetlib3 => return Err("not a census format".into()),
    };
    let mut f = std::fs::File::create_new(path).map_err(|e| {
        format!(
            "{}: {e} (an existing file is not overwritten)",
            printable_path(path)
        )
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", printable_path(path)))?;
    Ok(format!(
        "{} known servers, {} answering, written to {}",
        rows.len(),
        rows.iter().filter(|r| r.up).count(),
        printable_path(path)
    ))
}

/// Opens the store the commands work on (the one place that chooses the backend).
pub fn open_store(store: &StoreArgs) -> Result<Db, String> {
    Db::connect(store.database_url.as_deref(), &store.data_dir)
}

// ------------------------------------------------------------------------------------------
// Records

/// A telnetlib3 `sessions` entry, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Host as scanned.
    pub host: String,
    /// Peer address.
    pub ip: String,
    /// Port.
    pub port: u16,
    /// `connected` as written.
    pub connected: String,
    /// `connected` in Unix microseconds.
    pub micros: i64,
}

/// Reads a `sessions` entry.
pub fn session_of(v: &Value) -> Result<Session, String> {
    let d = v.as_dict().ok_or("a sessions entry is not an object")?;
    let text = |k: &str| match d.get(k) {
        Some(Value::Str(s)) => s
            .as_str_if_valid()
            .ok_or_else(|| format!("sessions entry: {k} is not valid text")),
        _ => Err(format!("sessions entry: {k} missing or not a string")),
    };
    let port = match d.get("port") {
        Some(Value::Int(p)) => {
            u16::try_from(*p).map_err(|_| format!("sessions entry: port {p} out of range"))?
        }
        _ => return Err("sessions entry: port missing or not an integer".into()),
    };
    let connected = text("connected")?;
    let micros = parse_isoformat(&connected)
        .ok_or_else(|| format!("sessions entry: connected {connected:?} is not an ISO time"))?;
    Ok(Session {
        host: text("host")?,
        ip: text("ip")?,
        port,
        connected,
        micros,
    })
}

pub use iacscope_shared::record::parse_isoformat;

fn is_hash(s: &str) -> bool {
    s.len() == HASH_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn server_probe(rec: &Value) -> Option<&Dict> {
    rec.as_dict()?.get("server-probe")?.as_dict()
}

fn sessions(rec: &Value) -> &[Value] {
    rec.as_dict()
        .and_then(|d| d.get("sessions"))
        .and_then(Value::as_list)
        .map_or(&[], Vec::as_slice)
}

fn with_sessions(rec: &Value, list: Vec<Value>) -> Value {
    let mut r = rec.clone();
    if let Some(d) = r.as_dict_mut() {
        d.insert("sessions", Value::List(list));
    }
    r
}

/// The `fingerprint-data` keys telnetlib3-fingerprint 5.0.1 writes (and iacscope's
/// scans, which reproduce it).
const FINGERPRINT_DATA_5_0_1: [&str; 8] = [
    "directional-refusals",
    "looped-negotiation",
    "offered-options",
    "probed-protocol",
    "refused-options",
    "requested-options",
    "scan-type",
    "wrong-direction-offered",
];

/// The telnetlib3-fingerprint version an imported record's shape says its hash follows:
/// [`COMPAT_VERSION`] when its `fingerprint-data` has exactly 5.0.1's keys, else
/// [`COMPAT_UNKNOWN`] (an older or newer tool collects other data, so its hashes drift).
pub fn record_compat(rec: &Value) -> &'static str {
    let keys: Option<Vec<String>> = server_probe(rec)
        .and_then(|sp| sp.get("fingerprint-data"))
        .and_then(Value::as_dict)
        .map(|d| {
            d.iter()
                .map(|(k, _)| k.as_str_if_valid().unwrap_or_default())
                .collect()
        });
    match keys {
        Some(mut k) => {
            k.sort();
            if k.iter().map(String::as_str).eq(FINGERPRINT_DATA_5_0_1) {
                COMPAT_VERSION
            } else {
                COMPAT_UNKNOWN
            }
        }
        None => COMPAT_UNKNOWN,
    }
}

/// The fingerprint a record states, checked against its `fingerprint-data`.
pub fn record_fingerprint(rec: &Value) -> Result<String, String> {
    let sp = server_probe(rec).ok_or("no server-probe object")?;
    let fp = match sp.get("fingerprint") {
        Some(Value::Str(s)) => s.as_str_if_valid().unwrap_or_default(),
        _ => return Err("server-probe.fingerprint missing or not a string".into()),
    };
    if !is_hash(&fp) {
        return Err(format!("fingerprint {fp:?} is not 16 hex digits"));
    }
    let data = sp
        .get("fingerprint-data")
        .filter(|v| v.as_dict().is_some())
        .ok_or("server-probe.fingerprint-data missing or not an object")?;
    let computed = pyjson::fingerprint_hash(data);
    if computed != fp {
        return Err(format!(
            "fingerprint {fp} does not match its fingerprint-data (which hashes to {computed})"
        ));
    }
    if !sp.contains_key("session_data") {
        return Err("server-probe.session_data missing".into());
    }
    Ok(fp)
}

/// The id of an imported scan: sha256 over the fingerprint and the canonical session entry
/// (not `session_data`, which a later scan of the same server replaces in the file).
pub fn import_id(fingerprint: &str, session_entry: &Value) -> String {
    content_id(&[
        b"iacscope-import 1\nfingerprint ",
        fingerprint.as_bytes(),
        b"\nsession ",
        pyjson::to_canonical(session_entry).as_bytes(),
    ])
}

/// One row to import and the `sessions` entry it stands for.
#[derive(Clone, Debug)]
pub struct ImportRow {
    /// The row (its record a template shared by the file's rows, and its entry).
    pub scan: NewScan,
    /// Its `sessions` entry.
    pub session: Value,
}

/// The rows one telnetlib3 file becomes.
#[derive(Clone, Debug)]
pub struct FileRows {
    /// The rows, in the file's order.
    pub rows: Vec<ImportRow>,
    /// Why the rows stop short of the file's sessions, when a bound cut them.
    pub cut: Option<String>,
}

/// Bytes of store one row adds besides the shared template: its texts and keys.
fn row_store_bytes(s: &NewScan) -> u64 {
    let part = match &s.record_json {
        RecordText::Spliced { part, .. } => part.len(),
        RecordText::Whole(t) => t.len(),
    };
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    (part
        + s.id.len()
        + s.host.len()
        + s.ip.len()
        + s.fingerprint.len()
        + s.config.len()
        + s.source.len()
        + s.transcript_text.len()
        + opt(&s.mssp_name)
        + opt(&s.mssp_players)
        + opt(&s.mssp_uptime)) as u64
}

/// Most bytes of store (texts and row keys, as [`row_store_bytes`] counts them) one file of
/// `file_len` bytes may add: [`STORE_BYTES_PER_FILE_BYTE`] per byte of the file plus
/// [`STORE_BYTES_ALLOWANCE`]. A file's rows share its record, so a real file stays far below.
pub fn store_budget(file_len: usize) -> u64 {
    (file_len as u64)
        .saturating_mul(STORE_BYTES_PER_FILE_BYTE)
        .saturating_add(STORE_BYTES_ALLOWANCE)
}

/// The record split for storage: the file's record with one placeholder as its only
/// session, the placeholder's text replaced by [`RECORD_MARKER`] (stored once), and the
/// text around an entry serialised at the depth of `sessions[0]`, so that a row's part is
/// what `pyjson::to_pretty` writes for its entry there.
struct Split {
    template: SharedText,
    frame_head: String,
    frame_tail: String,
}

impl Split {
    fn new(rec: &Value, file_text: &str) -> Result<Split, String> {
        // Unique: the file cannot contain the hash of its own text.
        let placeholder = Value::str(&format!(
            "{RECORD_MARKER}iacscope-session {}",
            crate::directory::db::text_hash(file_text)
        ));
        let quoted = pyjson::to_pretty(&placeholder);
        let full = pyjson::to_pretty(&with_sessions(rec, vec![placeholder.clone()]));
        if full.matches(&quoted).count() != 1 {
            return Err("the record cannot be split at its session".into());
        }
        let mut frame = Dict::new();
        frame.insert("sessions", Value::List(vec![placeholder]));
        let frame = pyjson::to_pretty(&Value::Dict(frame));
        let (head, tail) = frame
            .split_once(&quoted)
            .ok_or("the record cannot be split at its session")?;
        Ok(Split {
            template: SharedText::new(full.replacen(&quoted, &RECORD_MARKER.to_string(), 1)),
            frame_head: head.to_owned(),
            frame_tail: tail.to_owned(),
        })
    }

    /// The record of a row with this one session entry.
    fn record(&self, entry: &Value) -> Result<RecordText, String> {
        let mut frame = Dict::new();
        frame.insert("sessions", Value::List(vec![entry.clone()]));
        let text = pyjson::to_pretty(&Value::Dict(frame));
        let part = text
            .strip_prefix(&self.frame_head)
            .and_then(|t| t.strip_suffix(&self.frame_tail))
            .ok_or("a session entry cannot be placed in the record")?;
        Ok(RecordText::Spliced {
            template: self.template.clone(),
            part: part.to_owned(),
        })
    }
}

/// The rows one telnetlib3 file becomes; `fingerprint` and `stem` come from its path. The
/// rows share one stored template of the record; together they add at most
/// [`store_budget`] of the file's length to the store (the rest are cut, and `cut` says so).
pub fn rows_of_file(text: &str, fingerprint: &str, stem: &str) -> Result<FileRows, String> {
    rows_of_file_within(text, fingerprint, stem, store_budget(text.len()))
}

/// [`rows_of_file`] with its store budget given.
pub fn rows_of_file_within(
    text: &str,
    fingerprint: &str,
    stem: &str,
    budget: u64,
) -> Result<FileRows, String> {
    let rec = pyjson::parse(text).map_err(|e| format!("not JSON: {e}"))?;
    let fp = record_fingerprint(&rec)?;
    let compat = record_compat(&rec).to_owned();
    if fp != fingerprint {
        return Err(format!(
            "the record's fingerprint {fp} differs from its folder {fingerprint}"
        ));
    }
    let list = sessions(&rec);
    if list.is_empty() {
        return Err("no sessions".into());
    }
    if list.len() > MAX_SESSIONS_PER_FILE {
        return Err(format!(
            "{} sessions (a bound: at most {MAX_SESSIONS_PER_FILE} are read from one file)",
            list.len()
        ));
    }
    let sd = server_probe(&rec).and_then(|sp| sp.get("session_data"));
    let sd_text = |k: &str| match sd.and_then(Value::as_dict).and_then(|d| d.get(k)) {
        Some(Value::Str(s)) => s
            .as_str_if_valid()
            .filter(|s| s.len() <= MAX_CONFIG_WORD && !s.contains(char::is_whitespace)),
        _ => None,
    };
    let mut config = IMPORTED_CONFIG.to_owned();
    for (key, field) in [("scan-type", "scan_type"), ("encoding", "encoding")] {
        if let Some(v) = sd_text(field) {
            config.push_str(&format!(" {key}={v}"));
        }
    }
    let name = sd.and_then(|v| mssp_text(v, "NAME"));
    let split = Split::new(&rec, text)?;
    // `session_data` is the latest scan's: earlier scans' player counts are unknown.
    let (players, uptime) = (mssp_value(&rec, "PLAYERS"), mssp_value(&rec, "UPTIME"));
    let mut used = split.template.body().len() as u64;
    let mut rows = Vec::with_capacity(list.len());
    let last = list.len() - 1;
    for (i, entry) in list.iter().enumerate() {
        let s = session_of(entry)?;
        let sh = session_hash(&s.host, &s.ip, s.port);
        if sh != stem {
            return Err(format!(
                "session {}:{} ({}) hashes to {sh}, not to the file name {stem}",
                s.host, s.port, s.ip
            ));
        }
        let scan = NewScan {
            id: import_id(&fp, entry),
            host: s.host,
            port: s.port,
            ip: s.ip,
            fingerprint: fp.clone(),
            created: s.micros.div_euclid(1_000_000),
            record_json: split.record(entry)?,
            transcript_text: String::new(),
            config: config.clone(),
            mssp_players: if i == last { players.clone() } else { None },
            mssp_uptime: if i == last { uptime.clone() } else { None },
            mssp_name: name.clone(),
            source: SOURCE_IMPORT.into(),
            complete: true,
            compat: compat.clone(),
        };
        used = used.saturating_add(row_store_bytes(&scan));
        if used > budget {
            return Ok(FileRows {
                cut: Some(format!(
                    "cut by a bound: {i} of {} sessions taken (one file may add at most \
                     {budget} bytes to the store)",
                    list.len()
                )),
                rows,
            });
        }
        rows.push(ImportRow {
            scan,
            session: entry.clone(),
        });
    }
    Ok(FileRows { rows, cut: None })
}

/// Adds `rec`'s sessions to `acc` with telnetlib3's rule (`fingerprint-data` of the first,
/// `session_data` of the latest, `sessions` appended), leaving out entries `acc` already
/// has (the same scan stored twice). Returns whether anything was added.
pub fn append_record(acc: &mut Option<Value>, rec: &Value) -> bool {
    let Some(old) = acc.take() else {
        *acc = Some(rec.clone());
        return true;
    };
    let have = sessions(&old);
    let new: Vec<Value> = sessions(rec)
        .iter()
        .filter(|s| !have.contains(s))
        .cloned()
        .collect();
    if new.is_empty() {
        *acc = Some(old);
        return false;
    }
    *acc = Some(merge_into_existing(old, &with_sessions(rec, new)));
    true
}

// ------------------------------------------------------------------------------------------
// Import

/// What one import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Record files read and accepted.
    pub files: usize,
    /// Scans added to the store.
    pub added: usize,
    /// Scans the store already had.
    pub present: usize,
    /// Files (or folders) skipped.
    pub skipped: usize,
    /// Files read only in part: a bound (see [`store_budget`]) cut their sessions short.
    pub cut: usize,
    /// How many were skipped for each kind of reason (the text before the first `:`).
    pub skip_kinds: BTreeMap<String, usize>,
    /// The first [`MAX_REPORTED_SKIPS`] skipped paths, with why.
    pub skips: Vec<(PathBuf, String)>,
}

impl ImportReport {
    fn skip(&mut self, path: &Path, why: impl Into<String>) {
        self.skipped += 1;
        self.list(path, why.into());
    }

    /// A file read in part: counted in [`ImportReport::cut`], listed with the skips.
    fn cut(&mut self, path: &Path, why: String) {
        self.cut += 1;
        self.list(path, why);
    }

    fn list(&mut self, path: &Path, why: String) {
        let kind = why.split(':').next().unwrap_or_default().to_owned();
        *self.skip_kinds.entry(kind).or_default() += 1;
        if self.skips.len() < MAX_REPORTED_SKIPS {
            self.skips.push((path.to_owned(), why));
        }
    }

    /// One line per listed skip (and cut), then a line for those left out. Paths and
    /// reasons (which quote hosts and names from the files) are escaped for a terminal.
    pub fn skip_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .skips
            .iter()
            .map(|(p, w)| format!("skipped {}: {}", printable_path(p), printable(w)))
            .collect();
        let total = self.skipped + self.cut;
        if total > self.skips.len() {
            v.push(format!("… and {} more skipped", total - self.skips.len()));
        }
        v
    }

    /// The closing summary line.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "imported {} files: {} scans added, {} already present, {} skipped",
            self.files, self.added, self.present, self.skipped
        );
        if self.cut > 0 {
            s.push_str(&format!(", {} cut short by a bound", self.cut));
        }
        if !self.skip_kinds.is_empty() {
            let parts: Vec<String> = self
                .skip_kinds
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            s.push_str(&format!(" ({})", parts.join("; ")));
        }
        printable(&s).into_owned()
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`]. The name was listed as a regular
/// file; opening it does not follow a link swapped in since (`O_NOFOLLOW`) nor wait on a
/// FIFO (`O_NONBLOCK`), and what was opened must still be a regular file.
fn read_bounded(path: &Path) -> Result<String, String> {
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt as _;
        open.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    let f = open.open(path).map_err(|e| format!("unreadable: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("unreadable: {e}"))?;
    if !meta.is_file() {
        return Err("not a record: not a regular file".into());
    }
    let len = meta.len();
    if len > MAX_FILE_BYTES {
        return Err(format!("too large: {len} bytes (at most {MAX_FILE_BYTES})"));
    }
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("unreadable: {e}"))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("too large: grew past {MAX_FILE_BYTES} bytes"));
    }
    String::from_utf8(buf).map_err(|_| "not a record: not UTF-8 text".into())
}

/// Directory entries, sorted, at most `limit` (`Err` when there are more).
fn list_dir(dir: &Path, limit: usize) -> Result<Vec<std::fs::DirEntry>, String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("unreadable: {e}"))? {
        let e = e.map_err(|e| format!("unreadable: {e}"))?;
        if out.len() == limit {
            return Err(format!("too many entries: more than {limit}"));
        }
        out.push(e);
    }
    out.sort_by_key(|e| e.file_name());
    Ok(out)
}

/// A scan of the same server and fingerprint at the same second whose stored record has
/// this session entry (a live save exported and imported back). Exact: every such scan is
/// looked at, however many scans the server has.
fn stored_elsewhere(db: &Db, row: &NewScan, entry: &Value) -> Result<bool, String> {
    let ids = db
        .scan_ids_at(&row.host, row.port, &row.fingerprint, row.created)
        .map_err(|e| e.to_string())?;
    for id in ids.iter().filter(|id| **id != row.id) {
        let Some(text) = db.record(id).map_err(|e| e.to_string())? else {
            continue;
        };
        if pyjson::parse(&text).is_ok_and(|r| sessions(&r).contains(entry)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stores the pending rows in one transaction and counts them (added, or already present)
/// into `report`.
fn flush(db: &Db, pending: &mut Vec<NewScan>, report: &mut ImportReport) -> Result<(), String> {
    let added = db.insert_many(pending).map_err(|e| e.to_string())?;
    report.added += added;
    report.present += pending.len().saturating_sub(added);
    pending.clear();
    Ok(())
}

/// Imports `dir` into `db`. `Err` only when `dir` cannot be read at all or the store fails.
pub fn import_dir(db: &Db, dir: &Path) -> Result<ImportReport, String> {
    let server = dir.join("server");
    match std::fs::symlink_metadata(&server) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "{} is not a directory (symbolic links are not followed)",
                server.display()
            ))
        }
        Err(e) => {
            return Err(format!(
                "{}: {e}; a telnetlib3 data directory holds server/<fingerprint>/<session>.json",
                server.display()
            ))
        }
    }
    let mut report = ImportReport::default();
    let folders = list_dir(&server, MAX_FINGERPRINT_DIRS)
        .map_err(|e| format!("{}: {e}", server.display()))?;
    let mut files_seen = 0usize;
    let mut pending: Vec<NewScan> = Vec::with_capacity(IMPORT_BATCH);
    for folder in folders {
        let path = folder.path();
        let name = folder.file_name().to_string_lossy().into_owned();
        match folder.file_type() {
            Ok(t) if t.is_dir() => {}
            Ok(t) if t.is_symlink() => {
                report.skip(&path, "not followed: a symbolic link");
                continue;
            }
            _ => {
                report.skip(&path, "not a record: not a fingerprint folder");
                continue;
            }
        }
        if !is_hash(&name) {
            report.skip(
                &path,
                "not a record: folder name is not a 16-hex fingerprint",
            );
            continue;
        }
        let entries = match list_dir(&path, MAX_ENTRIES_PER_DIR) {
            Ok(x) => x,
            Err(e) => {
                report.skip(&path, e);
                continue;
            }
        };
        for entry in entries {
            let file = entry.path();
            let fname = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = fname.strip_suffix(".json").filter(|s| is_hash(s)) else {
                report.skip(
                    &file,
                    "not a record: name is not <16-hex session hash>.json",
                );
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_file() => {}
                Ok(t) if t.is_symlink() => {
                    report.skip(&file, "not followed: a symbolic link");
                    continue;
                }
                _ => {
                    report.skip(&file, "not a record: not a regular file");
                    continue;
                }
            }
            if files_seen == MAX_FILES {
                report.skip(&file, format!("too many files: more than {MAX_FILES}"));
                continue;
            }
            files_seen += 1;
            let got = match read_bounded(&file).and_then(|text| {
                rows_of_file(&text, &name, stem).map_err(|e| format!("invalid record: {e}"))
            }) {
                Ok(got) => got,
                Err(e) => {
                    report.skip(&file, e);
                    continue;
                }
            };
            report.files += 1;
            if let Some(why) = got.cut {
                report.cut(&file, why);
            }
            for row in got.rows {
                // Rows of this import never match here (their ids derive from the entry), so
                // checking before the batch is stored is the same as checking after.
                if stored_elsewhere(db, &row.scan, &row.session)? {
                    report.present += 1;
                } else {
                    pending.push(row.scan);
                    if pending.len() >= IMPORT_BATCH {
                        flush(db, &mut pending, &mut report)?;
                    }
                }
            }
        }
    }
    flush(db, &mut pending, &mut report)?;
    Ok(report)
}

/// The servers (host, port) a telnetlib3 data directory holds records of, each once, in
/// the order found (folders and files sorted), at most `limit`; `skip` is told of every
/// folder or file that is not a readable record (with why) and of a cut at `limit`. Walks
/// as [`import_dir`] does: the same bounds, no symbolic link followed.
pub fn servers_in_dir(
    dir: &Path,
    limit: usize,
    mut skip: impl FnMut(&Path, String),
) -> Result<Vec<(String, u16)>, String> {
    let server = dir.join("server");
    match std::fs::symlink_metadata(&server) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(format!(
                "{} is not a telnetlib3 data directory (no server/ folder; symbolic links are \
                 not followed)",
                printable_path(dir)
            ))
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut files = 0usize;
    let folders = list_dir(&server, MAX_FINGERPRINT_DIRS)
        .map_err(|e| format!("{}: {e}", printable_path(&server)))?;
    for folder in folders {
        let path = folder.path();
        if !folder.file_type().is_ok_and(|t| t.is_dir()) {
            skip(
                &path,
                "not a fingerprint folder (or a symbolic link)".into(),
            );
            continue;
        }
        let entries = match list_dir(&path, MAX_ENTRIES_PER_DIR) {
            Ok(x) => x,
            Err(e) => {
                skip(&path, e);
                continue;
            }
        };
        for entry in entries {
            let file = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_file())
                || file.extension().is_none_or(|e| e != "json")
            {
                skip(&file, "not a record file (<session>.json)".into());
                continue;
            }
            files += 1;
            if files > MAX_FILES {
                skip(&file, format!("too many files: more than {MAX_FILES}"));
                return Ok(out);
            }
            let rec = match read_bounded(&file)
                .and_then(|t| pyjson::parse(&t).map_err(|e| format!("invalid record: {e}")))
            {
                Ok(r) => r,
                Err(e) => {
                    skip(&file, e);
                    continue;
                }
            };
            let list = sessions(&rec);
            if list.is_empty() {
                skip(&file, "invalid record: no sessions entry".into());
            }
            for entry in list {
                match session_of(entry) {
                    Ok(s) => {
                        if seen.contains(&(s.host.clone(), s.port)) {
                            continue;
                        }
                        if out.len() == limit {
                            skip(
                                &file,
                                format!("more than {limit} servers: the rest is left out"),
                            );
                            return Ok(out);
                        }
                        seen.insert((s.host.clone(), s.port));
                        out.push((s.host, s.port));
                    }
                    Err(e) => skip(&file, format!("invalid record: {e}")),
                }
            }
        }
    }
    Ok(out)
}

/// `iacscope import`: exit 0 when the directory was read (skipped files are listed and
/// counted), 1 when it or the store could not be.
pub fn import_main(args: ImportArgs) -> ExitCode {
    let result = open_store(&args.store).and_then(|db| import_dir(&db, &args.dir));
    match result {
        Ok(report) => {
            for line in report.skip_lines() {
                eprintln!("iacscope import: {line}");
            }
            println!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("iacscope import: {}", printable(&e));
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------------------------
// Export

/// What one export did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Stored scans read.
    pub scans: usize,
    /// Files written.
    pub written: usize,
    /// Existing files left as they were (`--merge`: they had every session already).
    pub unchanged: usize,
    /// Rows or files skipped.
    pub skipped: usize,
    /// The first [`MAX_REPORTED_SKIPS`] of them, with why.
    pub skips: Vec<String>,
}

impl ExportReport {
    fn skip(&mut self, why: String) {
        self.skipped += 1;
        if self.skips.len() < MAX_REPORTED_SKIPS {
            self.skips.push(why);
        }
    }

    /// One line per listed skip, then a line for those left out.
    pub fn skip_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .skips
            .iter()
            .map(|w| format!("skipped {}", printable(w)))
            .collect();
        if self.skipped > self.skips.len() {
            v.push(format!(
                "… and {} more skipped",
                self.skipped - self.skips.len()
            ));
        }
        v
    }

    /// The closing summary line.
    pub fn summary(&self) -> String {
        format!(
            "exported {} scans: {} files written, {} unchanged, {} skipped",
            self.scans, self.written, self.unchanged, self.skipped
        )
    }
}

/// Where a row goes and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Placed {
    /// `connected` in microseconds (else `created` in microseconds).
    at: i64,
    created: i64,
    id: String,
}

/// `(fingerprint, session hash)` → rows in merge order.
type Groups = BTreeMap<(String, String), Vec<Placed>>;

/// Groups one page of stored rows; rows that cannot be placed are reported.
fn group_page(
    groups: &mut Groups,
    page: &[crate::directory::db::StoredScan],
    report: &mut ExportReport,
) {
    for row in page {
        let s = &row.summary;
        let rec = match pyjson::parse(&row.record_json) {
            Ok(r) => r,
            Err(e) => {
                report.skip(format!("scan {}: stored record is not JSON: {e}", s.id));
                continue;
            }
        };
        match record_fingerprint(&rec) {
            Ok(fp) if fp == s.fingerprint => {}
            Ok(fp) => {
                report.skip(format!(
                    "scan {}: record fingerprint {fp} differs from the row's {}",
                    s.id, s.fingerprint
                ));
                continue;
            }
            Err(e) => {
                report.skip(format!("scan {}: {e}", s.id));
                continue;
            }
        }
        let at = sessions(&rec)
            .first()
            .and_then(|e| session_of(e).ok())
            .map_or(s.created.saturating_mul(1_000_000), |e| e.micros);
        let key = (s.fingerprint.clone(), session_hash(&s.host, &s.ip, s.port));
        groups.entry(key).or_default().push(Placed {
            at,
            created: s.created,
            id: s.id.clone(),
        });
    }
}

/// Whether `dir` is missing or an empty directory.
fn is_empty_target(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// An opened directory below DIR, or why it could not be used (said once per file that
/// would have gone in it).
type Opened = Result<Dir, String>;

/// Opens `name` below `parent`, never through a link.
fn open_below(parent: &Opened, name: &str) -> Opened {
    let parent = parent.as_ref().map_err(Clone::clone)?;
    parent
        .subdir(name)
        .map_err(|e| format!("{}: {e}", parent.path().join(name).display()))
}

/// Exports every stored scan into `dir`. Without `merge`, `dir` must be empty or missing.
/// Nothing below `dir` is followed if it is a symbolic link: such a folder or file is
/// reported as skipped and left as it is.
pub fn export_dir(db: &Db, dir: &Path, merge: bool) -> Result<ExportReport, String> {
    if !merge && !is_empty_target(dir)? {
        return Err(format!(
            "{} is not empty; pass --merge to merge into its files",
            dir.display()
        ));
    }
    let mut report = ExportReport::default();
    let mut groups = Groups::new();
    let mut after = String::new();
    loop {
        let page = db
            .scans_after(&after, EXPORT_PAGE)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.summary.id.clone();
        report.scans += page.len();
        if report.scans > MAX_EXPORT_ROWS {
            return Err(format!(
                "the store holds more than {MAX_EXPORT_ROWS} scans; nothing was written"
            ));
        }
        group_page(&mut groups, &page, &mut report);
    }
    let root: Opened =
        Ok(Dir::open_root(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?);
    let server = open_below(&root, "server");
    let mut folder: Option<(String, Opened)> = None;
    for ((fp, sh), mut rows) in groups {
        rows.sort();
        let name = format!("{sh}.json");
        let path = dir.join("server").join(&fp).join(&name);
        let mut merged = None;
        for row in &rows {
            let text = db.record(&row.id).map_err(|e| e.to_string())?;
            match text.as_deref().map(pyjson::parse) {
                Some(Ok(rec)) => {
                    append_record(&mut merged, &rec);
                }
                // Deleted (retention) or unreadable since the first pass.
                _ => report.skip(format!("scan {}: its record is gone or unreadable", row.id)),
            }
        }
        let Some(mut out) = merged else { continue };
        if folder.as_ref().is_none_or(|(f, _)| *f != fp) {
            folder = Some((fp.clone(), open_below(&server, &fp)));
        }
        let target = match folder.as_ref().map(|(_, d)| d) {
            Some(Ok(d)) => d,
            Some(Err(why)) => {
                report.skip(format!("{}: not written ({why})", path.display()));
                continue;
            }
            None => continue,
        };
        if merge {
            match target.read(&name, MAX_FILE_BYTES) {
                Ok(Some(bytes)) => match std::str::from_utf8(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|t| pyjson::parse(t).map_err(|e| e.to_string()))
                {
                    Ok(existing) => {
                        let mut acc = Some(existing);
                        if !append_record(&mut acc, &out) {
                            report.unchanged += 1;
                            continue;
                        }
                        out = acc.unwrap_or(out);
                    }
                    Err(e) => {
                        report.skip(format!(
                            "{}: existing file is not JSON ({e}); left as it was",
                            path.display()
                        ));
                        continue;
                    }
                },
                Ok(None) => {}
                // A link (never followed), a FIFO or other non-file, an I/O error.
                Err(e) => {
                    report.skip(format!("{}: {e}; left as it was", path.display()));
                    continue;
                }
            }
        }
        target
            .write_atomic(&name, pyjson::to_pretty(&out).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        report.written += 1;
    }
    Ok(report)
}

/// `iacscope export`: exit 0 when the store was read and the files written (skipped rows are
/// listed and counted), 1 when the target is not empty without `--merge`, or the store or a
/// write failed.
pub fn export_main(args: ExportArgs) -> ExitCode {
    if args.format != ExportFormat::Telnetlib3 {
        if args.merge {
            eprintln!("iacscope export: --merge is for the telnetlib3 format only");
            return ExitCode::from(2);
        }
        return match open_store(&args.store)
            .and_then(|db| export_census(&db, &args.dir, args.format))
        {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("iacscope export: {}", printable(&e));
                ExitCode::FAILURE
            }
        };
    }
    let result = open_store(&args.store).and_then(|db| export_dir(&db, &args.dir, args.merge));
    match result {
        Ok(report) => {
            for line in report.skip_lines() {
                eprintln!("iacscope export: {line}");
            }
            println!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("iacscope export: {}", printable(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iacscope_shared::record::isoformat_utc;
    use std::collections::HashSet;

    #[test]
    fn imported_hashes_are_stamped_by_shape() {
        let mut rec = Dict::new();
        let mut sp = Dict::new();
        sp.insert("fingerprint-data", fp_data("quick"));
        rec.insert("server-probe", Value::Dict(sp.clone()));
        assert_eq!(record_compat(&Value::Dict(rec.clone())), COMPAT_UNKNOWN);
        let mut d = Dict::new();
        for k in FINGERPRINT_DATA_5_0_1.iter().rev() {
            d.insert(*k, Value::str_list(Vec::<&str>::new()));
        }
        sp.insert("fingerprint-data", Value::Dict(d));
        rec.insert("server-probe", Value::Dict(sp));
        assert_eq!(record_compat(&Value::Dict(rec)), COMPAT_VERSION);
        assert_eq!(record_compat(&Value::Dict(Dict::new())), COMPAT_UNKNOWN);
    }

    fn fp_data(scan_type: &str) -> Value {
        let mut d = Dict::new();
        d.insert("probed-protocol", "server");
        d.insert("scan-type", scan_type);
        d.insert("offered-options", Value::str_list(["BINARY"]));
        Value::Dict(d)
    }

    fn entry(host: &str, port: u16, connected: &str) -> Value {
        let mut d = Dict::new();
        d.insert("connected", connected);
        d.insert("host", host);
        d.insert("ip", "127.0.0.1");
        d.insert("port", i64::from(port));
        Value::Dict(d)
    }

    fn record(banner: &str, players: &str, list: Vec<Value>) -> Value {
        let data = fp_data("quick");
        let mut mssp = Dict::new();
        mssp.insert("NAME", Value::str_list(["Test MUD"]));
        mssp.insert("PLAYERS", players);
        let mut sd = Dict::new();
        sd.insert("banner_before_return", banner);
        sd.insert("scan_type", "quick");
        sd.insert("encoding", "ascii");
        sd.insert("mssp", Value::Dict(mssp));
        let mut sp = Dict::new();
        sp.insert("fingerprint", pyjson::fingerprint_hash(&data));
        sp.insert("fingerprint-data", data);
        sp.insert("session_data", Value::Dict(sd));
        let mut r = Dict::new();
        r.insert("server-probe", Value::Dict(sp));
        r.insert("sessions", Value::List(list));
        Value::Dict(r)
    }

    const T1: &str = "2026-11-24T20:30:12.493504+00:00";
    const T2: &str = "2026-11-24T21:00:00+00:00";
    const T3: &str = "2026-11-25T08:15:59.000001+00:00";

    #[test]
    fn isoformat_round_trips() {
        for t in [
            T1,
            T2,
            T3,
            "1970-01-01T00:00:00+00:00",
            "2000-02-29T23:59:59+00:00",
        ] {
            let m = parse_isoformat(t).expect(t);
            assert_eq!(isoformat_utc(m), t);
        }
        assert_eq!(
            parse_isoformat("2026-11-24T22:30:12.493504+02:00"),
            parse_isoformat(T1)
        );
        assert_eq!(
            parse_isoformat("2026-11-24T20:30:12.5Z"),
            Some(1_795_552_212_500_000)
        );
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00",
            "2026-11-24T20:30:12.+00:00",
            "2026-11-24T20:30:12.1234567",
            "2026-11-24T20:30:12+0000",
            "2026-11-24 20:30:12",
        ] {
            assert_eq!(parse_isoformat(bad), None, "{bad}");
        }
    }

    #[test]
    fn import_then_regroup_reproduces_the_file() {
        let file = record(
            "latest banner",
            "7",
            vec![
                entry("a.test", 4000, T1),
                entry("a.test", 4000, T2),
                entry("a.test", 4000, T3),
            ],
        );
        let fp = record_fingerprint(&file).expect("fingerprint");
        let sh = session_hash("a.test", "127.0.0.1", 4000);
        let text = pyjson::to_pretty(&file);
        let rows = rows_of_file(&text, &fp, &sh).expect("rows").rows;
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1].scan.created,
            parse_isoformat(T2).expect("t2") / 1_000_000
        );
        assert_eq!(rows[0].scan.mssp_name.as_deref(), Some("Test MUD"));
        assert_eq!(rows[2].scan.mssp_players.as_deref(), Some("\"7\""));
        assert_eq!(
            rows[0].scan.mssp_players, None,
            "only the latest scan's count is known"
        );
        assert!(rows[0]
            .scan
            .config
            .starts_with("imported scan-type=quick encoding=ascii"));
        let ids: HashSet<&str> = rows.iter().map(|r| r.scan.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "one id per session");
        // Rows come back from the store in id order; the merge orders them by time.
        let mut stored: Vec<(i64, Value)> = rows
            .iter()
            .map(|r| {
                let rec = pyjson::parse(&r.scan.record_json.to_text()).expect("json");
                (session_of(&sessions(&rec)[0]).expect("session").micros, rec)
            })
            .collect();
        stored.reverse();
        stored.sort_by_key(|s| s.0);
        let mut merged = None;
        for (_, rec) in &stored {
            assert!(append_record(&mut merged, rec));
        }
        assert_eq!(pyjson::to_pretty(&merged.expect("merged")), text);
    }

    #[test]
    fn ids_survive_a_rescan() {
        let fp = pyjson::fingerprint_hash(&fp_data("quick"));
        let sh = session_hash("a.test", "127.0.0.1", 4000);
        let once = record("old", "1", vec![entry("a.test", 4000, T1)]);
        let twice = record(
            "new",
            "2",
            vec![entry("a.test", 4000, T1), entry("a.test", 4000, T2)],
        );
        let a = rows_of_file(&pyjson::to_pretty(&once), &fp, &sh)
            .expect("rows")
            .rows;
        let b = rows_of_file(&pyjson::to_pretty(&twice), &fp, &sh)
            .expect("rows")
            .rows;
        assert_eq!(
            a[0].scan.id, b[0].scan.id,
            "session_data does not enter the id"
        );
        assert_ne!(b[0].scan.id, b[1].scan.id);
    }

    #[test]
    fn merge_keeps_first_fingerprint_data_latest_session_data_and_skips_known_sessions() {
        let mut first = record("first", "1", vec![entry("a.test", 1, T1)]);
        if let Some(Value::Dict(sp)) = first.as_dict_mut().and_then(|d| d.get_mut("server-probe")) {
            sp.insert("extra", "kept");
        }
        let second = record("second", "2", vec![entry("a.test", 1, T2)]);
        let mut acc = None;
        assert!(append_record(&mut acc, &first));
        assert!(append_record(&mut acc, &second));
        assert!(
            !append_record(&mut acc, &second),
            "a known session adds nothing"
        );
        let out = acc.expect("merged");
        let sp = server_probe(&out).expect("server-probe");
        assert_eq!(sp.get("extra"), Some(&Value::str("kept")));
        let sd = sp.get("session_data").and_then(Value::as_dict).expect("sd");
        assert_eq!(sd.get("banner_before_return"), Some(&Value::str("second")));
        assert_eq!(sessions(&out).len(), 2);
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        let file = record("b", "1", vec![entry("a.test", 4000, T1)]);
        let fp = record_fingerprint(&file).expect("fp");
        let sh = session_hash("a.test", "127.0.0.1", 4000);
        let text = pyjson::to_pretty(&file);
        let err = |t: &str, f: &str, s: &str| {
            rows_of_file(t, f, s)
                .map(|r| r.rows.len())
                .expect_err("refused")
        };
        assert!(err("{", &fp, &sh).starts_with("not JSON"));
        assert!(err(&text, "0123456789abcdef", &sh).contains("differs from its folder"));
        assert!(err(&text, &fp, "0123456789abcdef").contains("not to the file name"));
        let forged = text.replace(&fp, "0123456789abcdef");
        assert!(
            err(&forged, "0123456789abcdef", &sh).contains("does not match its fingerprint-data")
        );
        let empty = pyjson::to_pretty(&with_sessions(&file, vec![]));
        assert_eq!(err(&empty, &fp, &sh), "no sessions");
        let bad_port = text.replace("4000", "70000");
        assert!(err(&bad_port, &fp, &sh).contains("out of range"));
    }

    /// Writes a source file for a test (creating its folders).
    fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    }

    fn temp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("iacscope-transfer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Runs [`round_trip`] on SQLite and, when configured, on PostgreSQL.
    #[test]
    fn store_round_trip_is_idempotent_and_merge_adds_only_new_sessions() {
        let root = temp("store");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        round_trip(&db, &root.join("sqlite"));
        drop(db);
        let name = "transfer_round_trip";
        match crate::directory::db::test_database_url(name).expect("PostgreSQL for the store tests")
        {
            Some(url) => {
                let db = Db::connect(Some(&url), Path::new("/nonexistent")).expect("connect");
                round_trip(&db, &root.join("postgres"));
            }
            None => eprintln!("{name}: PostgreSQL variant skipped"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Runs [`long_history`] on SQLite and, when configured, on PostgreSQL.
    #[test]
    fn a_live_save_behind_a_long_history_is_recognised() {
        let root = temp("history");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        long_history(&db, &root.join("sqlite"));
        drop(db);
        let name = "transfer_long_history";
        match crate::directory::db::test_database_url(name).expect("PostgreSQL for the store tests")
        {
            Some(url) => {
                let db = Db::connect(Some(&url), Path::new("/nonexistent")).expect("connect");
                long_history(&db, &root.join("postgres"));
            }
            None => eprintln!("{name}: PostgreSQL variant skipped"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A live save whose server has more than [`crate::directory::db::MAX_LIST`] newer scans
    /// (so it is not among the scans `Db::server` lists), imported back: already present.
    fn long_history(db: &Db, root: &Path) {
        let live = record("live", "1", vec![entry("c.test", 4002, T1)]);
        let fp = record_fingerprint(&live).expect("fp");
        let sh = session_hash("c.test", "127.0.0.1", 4002);
        let mut row = rows_of_file(&pyjson::to_pretty(&live), &fp, &sh)
            .expect("rows")
            .rows
            .remove(0)
            .scan;
        let newer: Vec<NewScan> = (0..crate::directory::db::MAX_LIST)
            .map(|i| {
                let mut old = row.clone();
                old.id = format!("{i:032x}");
                old.created += 1000 + i;
                old.source = SOURCE_IMPORT.into();
                old
            })
            .collect();
        assert_eq!(db.insert_many(&newer).expect("history"), newer.len());
        row.id = "f".repeat(crate::directory::save::ID_HEX_LEN);
        row.source = crate::directory::db::SOURCE_LIVE.into();
        assert!(db.insert(&row).expect("insert"));
        assert!(
            !db.server("c.test", 4002)
                .expect("server")
                .iter()
                .any(|s| s.id == row.id),
            "the live save is older than every listed scan"
        );
        let src = root.join("src");
        let path = src.join("server").join(&fp).join(format!("{sh}.json"));
        write_atomic(&path, pyjson::to_pretty(&live).as_bytes()).expect("write");
        let back = import_dir(db, &src).expect("import");
        assert_eq!((back.files, back.added, back.present), (1, 0, 1));
        // Another session entry of that second (a different `connected`) is new.
        let other = record(
            "live",
            "1",
            vec![entry("c.test", 4002, &T1.replace(".493504", ".5"))],
        );
        write_atomic(&path, pyjson::to_pretty(&other).as_bytes()).expect("write");
        let back = import_dir(db, &src).expect("import");
        assert_eq!((back.files, back.added, back.present), (1, 1, 0));
    }

    /// Import stores rows in batches of [`IMPORT_BATCH`] and counts each row exactly once,
    /// also across batch boundaries and when re-imported.
    #[test]
    fn import_batches_count_exactly() {
        let root = temp("batches");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        let src = root.join("src");
        let n = IMPORT_BATCH * 2 + 7;
        let list: Vec<Value> = (0..n)
            .map(|i| {
                entry(
                    "many.test",
                    4003,
                    &format!("2026-11-24T20:{:02}:{:02}+00:00", i / 60 % 60, i % 60),
                )
            })
            .collect();
        let rec = record("many", "2", list);
        let fp = record_fingerprint(&rec).expect("fp");
        let sh = session_hash("many.test", "127.0.0.1", 4003);
        let path = src.join("server").join(&fp).join(format!("{sh}.json"));
        write_atomic(&path, pyjson::to_pretty(&rec).as_bytes()).expect("write");
        // A few already stored before the import.
        let rows = rows_of_file(&pyjson::to_pretty(&rec), &fp, &sh)
            .expect("rows")
            .rows;
        let pre: Vec<NewScan> = rows.iter().step_by(100).map(|r| r.scan.clone()).collect();
        assert_eq!(db.insert_many(&pre).expect("pre"), pre.len());
        let r = import_dir(&db, &src).expect("import");
        assert_eq!((r.files, r.added, r.present), (1, n - pre.len(), pre.len()));
        assert_eq!(db.scans_after("", -1).expect("all").len(), n);
        let again = import_dir(&db, &src).expect("import");
        assert_eq!((again.added, again.present), (0, n));
        drop(db);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Bytes of a SQLite store on disk (the file and its WAL).
    fn sqlite_bytes(dir: &Path) -> u64 {
        ["iacscope.db", "iacscope.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Finding 5: one file with a large record and thousands of sessions entries grows the
    /// store by about its own size, not by (entries × record size), and comes back out byte
    /// for byte. (Before, each of the 2000 rows held the 64 KiB record: 130 MiB.)
    #[test]
    fn a_file_with_many_sessions_adds_about_its_own_size() {
        let root = temp("amplification");
        let db_dir = root.join("db");
        let db = Db::connect(None, &db_dir).expect("sqlite");
        let src = root.join("src");
        let n = 2000;
        let list: Vec<Value> = (0..n)
            .map(|i| {
                entry(
                    "big.test",
                    4004,
                    &format!(
                        "2026-11-{:02}T{:02}:{:02}:00+00:00",
                        1 + i / 1440,
                        i / 60 % 24,
                        i % 60
                    ),
                )
            })
            .collect();
        let rec = record(&"x".repeat(64 * 1024), "3", list);
        let fp = record_fingerprint(&rec).expect("fp");
        let sh = session_hash("big.test", "127.0.0.1", 4004);
        let text = pyjson::to_pretty(&rec);
        let path = src.join("server").join(&fp).join(format!("{sh}.json"));
        write_atomic(&path, text.as_bytes()).expect("write");
        let (texts_before, disk_before) = (
            db.stored_text_bytes().expect("bytes"),
            sqlite_bytes(&db_dir),
        );
        let r = import_dir(&db, &src).expect("import");
        assert_eq!((r.files, r.added, r.cut), (1, n, 0));
        let file = text.len() as u64;
        let texts = (db.stored_text_bytes().expect("bytes") - texts_before) as u64;
        assert!(
            texts <= 3 * file,
            "{texts} bytes of text for a {file}-byte file"
        );
        let disk = sqlite_bytes(&db_dir) - disk_before;
        assert!(
            disk <= 8 * file,
            "{disk} bytes on disk for a {file}-byte file"
        );
        let out = root.join("out");
        export_dir(&db, &out, false).expect("export");
        assert_eq!(
            std::fs::read_to_string(out.join(path.strip_prefix(&src).expect("rel")))
                .expect("exported"),
            text
        );
        drop(db);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A file whose rows would pass its store budget is cut there, and says so.
    #[test]
    fn the_store_budget_cuts_a_file_and_says_so() {
        let list: Vec<Value> = (0..50)
            .map(|i| entry("a.test", 4000, &format!("2026-11-24T20:30:{i:02}+00:00")))
            .collect();
        let rec = record("b", "1", list);
        let fp = record_fingerprint(&rec).expect("fp");
        let sh = session_hash("a.test", "127.0.0.1", 4000);
        let text = pyjson::to_pretty(&rec);
        let all = rows_of_file(&text, &fp, &sh).expect("rows");
        assert_eq!((all.rows.len(), all.cut), (50, None));
        let template = match &all.rows[0].scan.record_json {
            RecordText::Spliced { template, .. } => template.body().len() as u64,
            RecordText::Whole(_) => panic!("import rows share a template"),
        };
        let per_row = row_store_bytes(&all.rows[0].scan);
        let cut = rows_of_file_within(&text, &fp, &sh, template + 10 * per_row + 5).expect("rows");
        assert_eq!(cut.rows.len(), 10);
        assert!(cut
            .cut
            .as_deref()
            .is_some_and(|w| w.starts_with("cut by a bound: 10 of 50 sessions")));
        let mut report = ImportReport::default();
        report.cut(Path::new("f.json"), cut.cut.expect("why"));
        assert!(report.summary().contains("1 cut short by a bound"));
        assert!(report.skip_lines()[0].contains("cut by a bound"));
    }

    /// Finding 6: a `connected` whose 19th byte is inside a multi-byte character is a bad
    /// time, not a panic; its file is skipped with the reason and the import goes on.
    #[test]
    fn a_multibyte_character_in_a_time_skips_only_its_file() {
        for t in [
            "2026-11-24T20:30:1\u{e9}",
            "2026-11-24T20:30:1\u{2603}+00:00",
            "2026-11-24T20:30:12\u{e9}",
            "2026-11-24T20:30:12.\u{e9}",
            "2026-11-24T20:30:12+0\u{e9}:00",
            "\u{e9}026-11-24T20:30:12",
        ] {
            assert_eq!(parse_isoformat(t), None, "{t}");
        }
        let root = temp("multibyte");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        let src = root.join("src");
        let bad = record(
            "b",
            "1",
            vec![entry("bad.test", 4000, "2026-11-24T20:30:1\u{e9}")],
        );
        let good = record("g", "1", vec![entry("good.test", 4000, T1)]);
        let fp = record_fingerprint(&bad).expect("fp");
        for (rec, host) in [(&bad, "bad.test"), (&good, "good.test")] {
            let sh = session_hash(host, "127.0.0.1", 4000);
            let path = src.join("server").join(&fp).join(format!("{sh}.json"));
            write_atomic(&path, pyjson::to_pretty(rec).as_bytes()).expect("write");
        }
        let r = import_dir(&db, &src).expect("import");
        assert_eq!((r.files, r.added, r.skipped), (1, 1, 1));
        assert!(r.skips[0].1.contains("is not an ISO time"), "{:?}", r.skips);
        drop(db);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Finding 11: file names and hosts from the data directory reach the report escaped.
    #[cfg(unix)]
    #[test]
    fn names_and_hosts_in_the_report_are_escaped() {
        let root = temp("escapes");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        let src = root.join("src");
        let evil = record("e", "1", vec![entry("\u{1b}[2Jevil.test", 4000, T1)]);
        let fp = record_fingerprint(&evil).expect("fp");
        let folder = src.join("server").join(&fp);
        // The host does not hash to this name: the reason quotes the host.
        write_atomic(
            &folder.join("0123456789abcdef.json"),
            pyjson::to_pretty(&evil).as_bytes(),
        )
        .expect("write");
        write_atomic(&folder.join("\u{1b}]0;owned\u{7}\u{9b}31m.json"), b"{}").expect("write");
        {
            use std::os::unix::ffi::OsStrExt as _;
            let raw = std::ffi::OsStr::from_bytes(b"bad\xff\x1b[1m");
            std::fs::create_dir_all(src.join("server").join(raw)).expect("folder");
        }
        let r = import_dir(&db, &src).expect("import");
        assert_eq!(r.skipped, 3);
        let text = format!("{}\n{}", r.skip_lines().join("\n"), r.summary());
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control characters: {text:?}"
        );
        assert!(text.contains("session \\x1b[2Jevil.test:4000"), "{text}");
        assert!(text.contains("\\x1b]0;owned\\x07\\u{9b}31m.json"), "{text}");
        assert!(text.contains("bad\\xff\\x1b[1m"), "{text}");
        drop(db);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Import's read of a listed file does not follow a link swapped in after the listing.
    #[cfg(unix)]
    #[test]
    fn the_import_read_refuses_a_link() {
        let root = temp("read-link");
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(root.join("real.json"), "{}").expect("write");
        std::os::unix::fs::symlink(root.join("real.json"), root.join("link.json")).expect("link");
        assert_eq!(read_bounded(&root.join("real.json")).as_deref(), Ok("{}"));
        assert!(read_bounded(&root.join("link.json"))
            .expect_err("a link")
            .starts_with("unreadable"));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Finding 4: `export --merge` follows no symbolic link below DIR: not a stale
    /// `<session>.json.new`, not `server`, not a fingerprint folder, not a record (which is
    /// neither read nor replaced). Each is a skip with its reason; the rest is written.
    #[cfg(unix)]
    #[test]
    fn export_follows_no_links() {
        use std::os::unix::fs::symlink;
        let root = temp("links");
        let db = Db::connect(None, &root.join("db")).expect("sqlite");
        let a = record("a", "1", vec![entry("a.test", 4000, T1)]);
        let b = record("b", "1", vec![entry("b.test", 4001, T2)]);
        let fp = record_fingerprint(&a).expect("fp");
        let (sha, shb) = (
            session_hash("a.test", "127.0.0.1", 4000),
            session_hash("b.test", "127.0.0.1", 4001),
        );
        for (rec, sh) in [(&a, &sha), (&b, &shb)] {
            for row in rows_of_file(&pyjson::to_pretty(rec), &fp, sh)
                .expect("rows")
                .rows
            {
                assert!(db.insert(&row.scan).expect("insert"));
            }
        }
        let outside = root.join("outside");
        std::fs::create_dir_all(&outside).expect("outside");
        let victim = outside.join("victim.txt");
        std::fs::write(&victim, "precious").expect("victim");
        // An outside record with a session the store does not have: never read or merged.
        let foreign = record("f", "1", vec![entry("b.test", 4001, T3)]);
        let foreign_text = pyjson::to_pretty(&foreign);
        let foreign_path = outside.join("foreign.json");
        std::fs::write(&foreign_path, &foreign_text).expect("foreign");

        // 1. A stale `<a>.json.new` link to an outside file, and a `<b>.json` link to an
        //    outside record.
        let out = root.join("out1");
        let folder = out.join("server").join(&fp);
        std::fs::create_dir_all(&folder).expect("folder");
        symlink(&victim, folder.join(format!("{sha}.json.new"))).expect("link");
        symlink(&foreign_path, folder.join(format!("{shb}.json"))).expect("link");
        let r = export_dir(&db, &out, true).expect("export");
        assert_eq!((r.written, r.skipped), (1, 1), "{:?}", r.skips);
        assert!(r.skips[0].contains("symbolic link"), "{:?}", r.skips);
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        assert_eq!(
            std::fs::read_to_string(&foreign_path).expect("foreign"),
            foreign_text
        );
        let linked = folder.join(format!("{shb}.json"));
        assert!(std::fs::symlink_metadata(&linked)
            .expect("still there")
            .file_type()
            .is_symlink());
        let written = std::fs::read_to_string(folder.join(format!("{sha}.json"))).expect("a");
        assert_eq!(written, pyjson::to_pretty(&a));
        assert!(
            std::fs::symlink_metadata(folder.join(format!("{sha}.json.new")))
                .expect("stale link left")
                .file_type()
                .is_symlink()
        );
        let names: Vec<String> = std::fs::read_dir(&folder)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");

        // 2. `server` is a link to an outside directory: nothing is written there.
        let out = root.join("out2");
        std::fs::create_dir_all(&out).expect("out2");
        let elsewhere = outside.join("server");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        symlink(&elsewhere, out.join("server")).expect("link");
        let r = export_dir(&db, &out, true).expect("export");
        assert_eq!((r.written, r.skipped), (0, 2), "{:?}", r.skips);
        assert!(
            r.skips.iter().all(|w| w.contains("symbolic link")),
            "{:?}",
            r.skips
        );
        assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);

        // 3. A fingerprint folder that is a link: likewise.
        let out = root.join("out3");
        std::fs::create_dir_all(out.join("server")).expect("out3");
        symlink(&elsewhere, out.join("server").join(&fp)).expect("link");
        let r = export_dir(&db, &out, true).expect("export");
        assert_eq!((r.written, r.skipped), (0, 2), "{:?}", r.skips);
        assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
        drop(db);
        let _ = std::fs::remove_dir_all(&root);
    }

    fn round_trip(db: &Db, root: &Path) {
        let src = root.join("src");
        let a = record(
            "a2",
            "4",
            vec![entry("a.test", 4000, T1), entry("a.test", 4000, T2)],
        );
        let b = record("b1", "9", vec![entry("b.test", 4001, T3)]);
        let fp = record_fingerprint(&a).expect("fp");
        let path_a = src.join("server").join(&fp).join(format!(
            "{}.json",
            session_hash("a.test", "127.0.0.1", 4000)
        ));
        let path_b = src.join("server").join(&fp).join(format!(
            "{}.json",
            session_hash("b.test", "127.0.0.1", 4001)
        ));
        write_atomic(&path_a, pyjson::to_pretty(&a).as_bytes()).expect("write");
        write_atomic(&path_b, pyjson::to_pretty(&b).as_bytes()).expect("write");
        std::fs::write(src.join("server").join(&fp).join("notes.txt"), "x").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            &path_b,
            src.join("server").join(&fp).join("0123456789abcdef.json"),
        )
        .expect("symlink");
        let r = import_dir(db, &src).expect("import");
        assert_eq!((r.files, r.added, r.present), (2, 3, 0));
        assert!(r
            .skips
            .iter()
            .any(|(p, w)| p.ends_with("notes.txt") && w.starts_with("not a record")));
        #[cfg(unix)]
        assert!(r.skips.iter().any(|(_, w)| w.contains("symbolic link")));
        let again = import_dir(db, &src).expect("import");
        assert_eq!((again.added, again.present), (0, 3));
        // The fixture's fingerprint-data is not 5.0.1's shape: its hash counts as `unknown`.
        assert_eq!(db.shared_count(&fp, COMPAT_UNKNOWN).expect("count"), 2);
        assert_eq!(db.shared_count(&fp, COMPAT_VERSION).expect("count"), 0);

        let out = root.join("out");
        let e = export_dir(db, &out, false).expect("export");
        assert_eq!((e.scans, e.written), (3, 2));
        for p in [&path_a, &path_b] {
            let rel = p.strip_prefix(&src).expect("rel");
            assert_eq!(
                std::fs::read(out.join(rel)).expect("exported"),
                std::fs::read(p).expect("src")
            );
        }
        assert!(export_dir(db, &out, false)
            .expect_err("non-empty")
            .contains("--merge"));
        let m = export_dir(db, &out, true).expect("merge");
        assert_eq!((m.written, m.unchanged), (0, 2));

        // A third scan of a.test appears in the store; merging appends just it.
        let a3 = record(
            "a3",
            "5",
            vec![entry("a.test", 4000, "2026-11-26T00:00:00+00:00")],
        );
        let sh = session_hash("a.test", "127.0.0.1", 4000);
        let rows = rows_of_file(&pyjson::to_pretty(&a3), &fp, &sh)
            .expect("rows")
            .rows;
        assert!(db.insert(&rows[0].scan).expect("insert"));
        let m = export_dir(db, &out, true).expect("merge");
        assert_eq!((m.written, m.unchanged), (1, 1));
        let merged = pyjson::parse(
            &std::fs::read_to_string(out.join(path_a.strip_prefix(&src).expect("rel")))
                .expect("read"),
        )
        .expect("json");
        assert_eq!(sessions(&merged).len(), 3);

        // A live save, exported and imported back, is recognised as already present.
        let live = record("live", "1", vec![entry("c.test", 4002, T1)]);
        let mut row = rows_of_file(
            &pyjson::to_pretty(&live),
            &fp,
            &session_hash("c.test", "127.0.0.1", 4002),
        )
        .expect("rows")
        .rows
        .remove(0)
        .scan;
        row.id = "f".repeat(crate::directory::save::ID_HEX_LEN);
        row.source = crate::directory::db::SOURCE_LIVE.into();
        assert!(db.insert(&row).expect("insert"));
        let out2 = root.join("out2");
        export_dir(db, &out2, false).expect("export");
        let back = import_dir(db, &out2).expect("import");
        assert_eq!((back.files, back.added, back.present), (3, 0, 5));
    }
}
