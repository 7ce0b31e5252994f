//! Seed lists of `iacscope crawl`: where the servers to crawl come from. Pure parsing, no
//! network: a plain list (`host port [keyword…]`), a Telix `directory.json`, a LociTerm
//! `telnetsupport.json`, a telnetlib3 data directory (its servers, read by
//! [`crate::transfer::servers_in_dir`]), or the store's known servers (read by the caller).
//!
//! Every source is read with bounds: a plain list line by line (a line is at most
//! [`MAX_LINE`] bytes), a JSON file entry by entry (at most [`MAX_JSON_BYTES`]), and at most
//! [`MAX_SEEDS`] servers in all. A line or entry that cannot be read is reported with where
//! it is (`file:line`, `file: entry N`) and skipped; only an unreadable file stops. Hosts are
//! read the way the SSRF policy reads them (`relay::policy::parse_host`), so `0x7f.1` and
//! `127.0.0.1` are one server; whether a host may be connected to is decided when it is
//! crawled (a refusal is a recorded result, not a seed error).

use crate::directory::db::CrawlTarget;
use crate::escape::{printable, printable_path};
use crate::relay::policy::parse_host;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::Deserializer as _;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Most servers one crawl takes (after duplicates are removed). A bigger census is several
/// crawls: this bounds the crawl's memory (a few hundred bytes per server).
pub const MAX_SEEDS: usize = 100_000;

/// Longest line of a plain list (bytes); a longer line is reported and skipped.
pub const MAX_LINE: usize = 4096;

/// Largest JSON seed file (bytes): modem.xyz's 2,000-server `directory.json` is ~400 KB.
pub const MAX_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// Warnings kept for the report; the rest are only counted.
pub const MAX_WARNINGS: usize = 200;

/// Longest encoding keyword (as the save path allows).
const MAX_ENCODING: usize = 64;

/// The format of a seed source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `host port [keyword…]` lines, `#` comments.
    Plain,
    /// A Telix `directory.json`: `[{"host", "port", "name", "type", "encoding"?, "ssl"?}]`.
    Telix,
    /// A LociTerm `telnetsupport.json`: `[{"host", "port", "ssl", "up", "options"}]`.
    Lociterm,
    /// A telnetlib3-fingerprint data directory (`server/<fingerprint>/<session>.json`).
    Telnetlib3,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Plain => "plain list",
            Format::Telix => "Telix directory.json",
            Format::Lociterm => "LociTerm telnetsupport.json",
            Format::Telnetlib3 => "telnetlib3 data directory",
        })
    }
}

/// One server to crawl and how to scan it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// Host (normalised as the policy reads it), port and TLS: the duplicate key.
    pub target: CrawlTarget,
    /// `--encoding` for the scan, when the seed names one.
    pub encoding: Option<String>,
}

/// The seeds read so far, without duplicates, and what was reported on the way.
#[derive(Debug, Default)]
pub struct Seeds {
    seeds: Vec<Seed>,
    keys: HashSet<CrawlTarget>,
    /// Entries naming a server already taken (same host, port and TLS).
    pub duplicates: usize,
    /// Lines or entries skipped (unreadable).
    pub skipped: usize,
    /// The first [`MAX_WARNINGS`] warnings (skips, ignored keywords, the cap), printable.
    pub warnings: Vec<String>,
    /// Warnings not kept.
    pub warnings_left_out: usize,
    /// Whether [`MAX_SEEDS`] was reached (later servers were left out).
    pub capped: bool,
}

impl Seeds {
    /// The seeds, in the order first seen.
    pub fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// Takes the seeds.
    pub fn into_seeds(self) -> Vec<Seed> {
        self.seeds
    }

    /// Records a warning (escaped for a terminal).
    pub fn warn(&mut self, w: impl AsRef<str>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(printable(w.as_ref()).into_owned());
        } else {
            self.warnings_left_out += 1;
        }
    }

    /// A line or entry that cannot be read: reported at `at` and skipped.
    fn skip(&mut self, at: &str, why: impl fmt::Display) {
        self.skipped += 1;
        self.warn(format!("{at}: {why}; skipped"));
    }

    /// Adds a server named at `at`; `false` once [`MAX_SEEDS`] is reached (stop reading).
    pub fn add(
        &mut self,
        at: &str,
        host: &str,
        port: u16,
        tls: bool,
        encoding: Option<String>,
    ) -> bool {
        if port == 0 {
            self.skip(at, "port 0 is not a port");
            return true;
        }
        let host = match parse_host(host.trim()) {
            Ok(h) => h.to_string(),
            Err(r) => {
                self.skip(at, format!("`{host}`: {}", r.message));
                return true;
            }
        };
        let target = CrawlTarget { host, port, tls };
        if self.keys.contains(&target) {
            self.duplicates += 1;
            return true;
        }
        if self.seeds.len() >= MAX_SEEDS {
            if !self.capped {
                self.capped = true;
                self.warn(format!(
                    "{at}: more than {MAX_SEEDS} servers; this and every later one is left out \
                     (split the list into several crawls)"
                ));
            }
            return false;
        }
        self.keys.insert(target.clone());
        self.seeds.push(Seed { target, encoding });
        true
    }
}

/// The format of the seed source at `path`: a directory is a telnetlib3 data directory; a
/// file whose first non-blank byte is `[` is JSON (LociTerm when its first entry has `up`
/// or `options`, or its name says `telnetsupport`; else Telix); anything else is a plain list.
pub fn detect(path: &Path) -> Result<Format, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", printable_path(path)))?;
    if meta.is_dir() {
        return Ok(Format::Telnetlib3);
    }
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| format!("{}: {e}", printable_path(path)))?;
    let text = String::from_utf8_lossy(&head);
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if !body.starts_with('[') {
        return Ok(Format::Plain);
    }
    let named = path.file_name().is_some_and(|n| {
        n.to_string_lossy()
            .to_ascii_lowercase()
            .contains("telnetsupport")
    });
    let first = body.split('}').next().unwrap_or_default();
    if named || first.contains("\"up\"") || first.contains("\"options\"") {
        Ok(Format::Lociterm)
    } else {
        Ok(Format::Telix)
    }
}

/// Reads the seed source at `path` (in `format`, or the detected one) into `seeds`; returns
/// the format read. `Err` only when the source cannot be read at all (or is not what
/// `format` says, for JSON).
pub fn read_source(
    path: &Path,
    format: Option<Format>,
    seeds: &mut Seeds,
) -> Result<Format, String> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    let name = printable_path(path).into_owned();
    match format {
        Format::Telnetlib3 => {
            let room = MAX_SEEDS.saturating_sub(seeds.seeds.len()) + 1;
            let mut skips = Vec::new();
            let servers = crate::transfer::servers_in_dir(path, room, |p, why| {
                skips.push(format!("{}: {why}", printable_path(p)));
            })?;
            for s in skips {
                seeds.skipped += 1;
                seeds.warn(format!("{s}; skipped"));
            }
            for (host, port) in servers {
                if !seeds.add(&name, &host, port, false, None) {
                    break;
                }
            }
        }
        Format::Plain => {
            let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
            read_plain(&name, BufReader::new(file), seeds).map_err(|e| format!("{name}: {e}"))?;
        }
        Format::Telix | Format::Lociterm => {
            let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len > MAX_JSON_BYTES {
                return Err(format!(
                    "{name}: {len} bytes; a JSON seed file is at most {MAX_JSON_BYTES} bytes \
                     (split it, or use a plain list, which has no size bound)"
                ));
            }
            read_json(
                &name,
                BufReader::new(file.take(MAX_JSON_BYTES)),
                format,
                seeds,
            )?;
        }
    }
    Ok(format)
}

/// One line of a plain list, read.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainLine {
    /// Host as written.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `ssl` (or `tls`) was given.
    pub tls: bool,
    /// The encoding keyword, if any (the last one wins).
    pub encoding: Option<String>,
    /// Keywords that are neither: kept for the warning, ignored.
    pub unknown: Vec<String>,
}

/// Reads one plain-list line: `Ok(None)` for a blank or comment line.
pub fn parse_plain_line(line: &str) -> Result<Option<PlainLine>, String> {
    let line = line.split('#').next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let Some(host) = words.next() else {
        return Ok(None);
    };
    let port = match words.next() {
        None => {
            return Err(format!(
                "`{host}` has no port (a line is `host port [keyword…]`)"
            ))
        }
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{p}` is not a port (1 to 65535)"))?,
    };
    let mut out = PlainLine {
        host: host.to_owned(),
        port,
        tls: false,
        encoding: None,
        unknown: Vec::new(),
    };
    for w in words {
        if w.eq_ignore_ascii_case("ssl") || w.eq_ignore_ascii_case("tls") {
            out.tls = true;
        } else if w.len() <= MAX_ENCODING && iacscope_shared::codec::lookup(w).is_some() {
            out.encoding = Some(w.to_owned());
        } else {
            out.unknown.push(w.to_owned());
        }
    }
    Ok(Some(out))
}

/// Reads a plain list line by line (each line at most [`MAX_LINE`] bytes; a longer one is
/// skipped whole without being kept). Stops at [`MAX_SEEDS`].
pub fn read_plain(name: &str, mut r: impl BufRead, seeds: &mut Seeds) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(256);
    let mut n = 0usize;
    loop {
        buf.clear();
        let got = r
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        let at = format!("{name}:{n}");
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Drain the rest of the long line, a bounded piece at a time.
            loop {
                buf.clear();
                let more = r
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)?;
                if more == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            seeds.skip(&at, format!("longer than {MAX_LINE} bytes"));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            seeds.skip(&at, "not UTF-8 text");
            continue;
        };
        match parse_plain_line(text.trim_start_matches('\u{feff}')) {
            Ok(None) => {}
            Ok(Some(l)) => {
                for k in &l.unknown {
                    seeds.warn(format!("{at}: unknown keyword `{k}` ignored"));
                }
                if !seeds.add(&at, &l.host, l.port, l.tls, l.encoding) {
                    return Ok(());
                }
            }
            Err(e) => seeds.skip(&at, e),
        }
    }
}

/// Reads a JSON array of server objects entry by entry (one entry in memory at a time).
pub fn read_json(
    name: &str,
    r: impl Read,
    format: Format,
    seeds: &mut Seeds,
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let visitor = Entries {
        name,
        format,
        seeds,
    };
    de.deserialize_seq(visitor).map_err(|e| {
        format!("{name} is not a JSON array of servers ({e}); for a plain list pass --format plain")
    })?;
    de.end()
        .map_err(|e| format!("{name}: text after the JSON array ({e})"))
}

/// The seq visitor of [`read_json`].
struct Entries<'a> {
    name: &'a str,
    format: Format,
    seeds: &'a mut Seeds,
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of server objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(v) = seq.next_element::<Value>()? {
            i += 1;
            let at = format!("{}: entry {i}", self.name);
            match json_entry(&v, self.format) {
                Ok((host, port, tls, encoding)) => {
                    if !self.seeds.add(&at, &host, port, tls, encoding) {
                        // Capped: read the rest without keeping it.
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        return Ok(());
                    }
                }
                Err(e) => self.seeds.skip(&at, e),
            }
        }
        Ok(())
    }
}

/// One JSON entry: host, port, TLS and (Telix) encoding. Telix's `columns` is not used: a
/// stored scan's settings are `scan_type`, `encoding` and `ttype` only (what a permalink
/// replays with), and the window size stays telnetlib3-fingerprint's.
fn json_entry(v: &Value, format: Format) -> Result<(String, u16, bool, Option<String>), String> {
    let o = v.as_object().ok_or("not an object")?;
    let host = match o.get("host") {
        Some(Value::String(h)) if !h.trim().is_empty() => h.trim().to_owned(),
        _ => return Err("`host` missing or not a string".into()),
    };
    let port = match o.get("port") {
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        _ => None,
    }
    .filter(|p| *p > 0)
    .ok_or("`port` missing or not a port (1 to 65535)")?;
    let tls = match o.get("ssl") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
        Some(Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        }
        Some(_) => return Err("`ssl` is not a boolean".into()),
    };
    let encoding = match (format, o.get("encoding")) {
        (Format::Telix, Some(Value::String(e))) if !e.trim().is_empty() => {
            let e = e.trim();
            if e.len() > MAX_ENCODING || iacscope_shared::codec::lookup(e).is_none() {
                return Err(format!("`encoding` {e:?} is not a known codec"));
            }
            Some(e.to_owned())
        }
        _ => None,
    };
    Ok((host, port, tls, encoding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Seeds {
        let mut s = Seeds::default();
        read_plain("list", text.as_bytes(), &mut s).expect("read");
        s
    }

    #[test]
    fn plain_lines_keywords_comments_and_errors() {
        let s = plain(
            "# a census\n\
             mud.example.org 4000\n\
             \n\
             bbs.example.org 23 ssl cp437   # a BBS\n\
             MUD.example.org. 4000 shiny\n\
             odd.example.org\n\
             bad.example.org 70000\n\
             0x7f.1 23\n\
             127.0.0.1 23\n",
        );
        let got: Vec<_> = s
            .seeds()
            .iter()
            .map(|s| {
                (
                    s.target.host.as_str(),
                    s.target.port,
                    s.target.tls,
                    s.encoding.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("mud.example.org", 4000, false, None),
                ("bbs.example.org", 23, true, Some("cp437")),
                ("127.0.0.1", 23, false, None),
            ]
        );
        assert_eq!(s.duplicates, 2, "a name's case and trailing dot, 0x7f.1");
        assert_eq!(s.skipped, 2);
        assert_eq!(
            s.warnings,
            [
                "list:5: unknown keyword `shiny` ignored",
                "list:6: `odd.example.org` has no port (a line is `host port [keyword…]`); skipped",
                "list:7: `70000` is not a port (1 to 65535); skipped",
            ]
        );
    }

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let long = "x".repeat(MAX_LINE * 3);
        let s = plain(&format!("{long} 23\nok.example.org 23\n"));
        assert_eq!(s.seeds().len(), 1);
        assert_eq!(
            s.warnings,
            [format!("list:1: longer than {MAX_LINE} bytes; skipped")]
        );
    }

    #[test]
    fn the_seed_count_is_capped_with_a_message() {
        let mut text = String::new();
        for i in 0..MAX_SEEDS + 5 {
            text.push_str(&format!("h{i}.example.org 23\n"));
        }
        let s = plain(&text);
        assert_eq!(s.seeds().len(), MAX_SEEDS);
        assert!(s.capped);
        assert!(s.warnings[0].contains("left out"), "{:?}", s.warnings);
    }

    #[test]
    fn json_entries_of_both_formats() {
        let telix = r#"[{"host": "a.example.org", "port": 4000, "name": "A", "type": "mud"},
            {"host": "b.example.org", "port": "23", "type": "bbs", "encoding": "cp437", "ssl": true},
            {"host": "c.example.org", "type": "mud"}, 17,
            {"host": "d.example.org", "port": 23, "encoding": "klingon"}]"#;
        let mut s = Seeds::default();
        read_json("dir.json", telix.as_bytes(), Format::Telix, &mut s).expect("read");
        assert_eq!(s.seeds().len(), 2);
        assert_eq!(s.seeds()[1].encoding.as_deref(), Some("cp437"));
        assert!(s.seeds()[1].target.tls);
        assert_eq!(s.skipped, 3);
        assert!(
            s.warnings[0].starts_with("dir.json: entry 3: `port` missing"),
            "{:?}",
            s.warnings
        );
        let loci = r#"[{"host": "a.example.org", "port": 4000, "ssl": false, "up": true, "options": ["GMCP"]}]"#;
        let mut s = Seeds::default();
        read_json("t.json", loci.as_bytes(), Format::Lociterm, &mut s).expect("read");
        assert_eq!(s.seeds().len(), 1);
        let mut s = Seeds::default();
        let e = read_json(
            "x.json",
            &b"mud.example.org 23\n"[..],
            Format::Telix,
            &mut s,
        )
        .unwrap_err();
        assert!(e.contains("--format plain"), "{e}");
    }
}
