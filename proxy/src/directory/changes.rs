//! What changed in a server's MSSP between its complete scans (`mssp_changes` in
//! `GET /api/servers/<host>/<port>`): variables added, removed, or changed (old → new), and
//! when. The fingerprint runs beside it are `save::fingerprint_changes`; this module only
//! reads records and compares, the store and the HTTP answer are the caller's.
//!
//! `PLAYERS` and `UPTIME` are left out ([`VOLATILE`]): they change with nearly every scan,
//! and are charted elsewhere (`history.players`, each scan's `uptime`). A complete scan
//! without MSSP after one with it is a change of its own (`sent: false`, MSSP stopped), and
//! the next scan with MSSP lists every variable as added. Scans cut short are skipped: a
//! server that closed before MSSP said nothing about its variables.

use iacscope_shared::pyjson::{self, Value};
use serde_json::json;
use std::collections::BTreeMap;

/// MSSP variables that change with nearly every scan, left out of the change list.
pub const VOLATILE: &[&str] = &["PLAYERS", "UPTIME"];
/// Newest complete scans compared (each is one record read).
pub const MAX_DIFFED_SCANS: usize = 100;
/// Most variables read from one record (a hostile server may send thousands).
pub const MAX_VARIABLES: usize = 128;
/// Most values kept of a repeated variable (MSSP allows a list).
pub const MAX_VALUES: usize = 16;
/// Longest variable name or value kept, in characters (longer ones are cut, with `…`).
pub const MAX_CHARS: usize = 200;

/// A record's MSSP variables (a value is a string or a list of strings, as sent), without
/// [`VOLATILE`] ones; `None` when the record has no MSSP (or is unreadable).
pub type Mssp = BTreeMap<String, serde_json::Value>;

/// The MSSP table of a telnetlib3 record (`server-probe.session_data.mssp`), if it has one.
pub fn record_mssp(record: &Value) -> Option<&pyjson::Dict> {
    record
        .as_dict()?
        .get("server-probe")?
        .as_dict()?
        .get("session_data")?
        .as_dict()?
        .get("mssp")?
        .as_dict()
}

/// Reads the MSSP variables of a record text, within the bounds above.
pub fn mssp_of(record_text: &str) -> Option<Mssp> {
    let rec = pyjson::parse(record_text).ok()?;
    let mssp = record_mssp(&rec)?;
    let mut out = Mssp::new();
    for (k, v) in mssp.iter() {
        if out.len() == MAX_VARIABLES {
            break;
        }
        let k = cut(&k.to_string_lossy());
        if VOLATILE.contains(&k.as_str()) {
            continue;
        }
        let v = match v {
            Value::List(l) => json!(l.iter().take(MAX_VALUES).map(text).collect::<Vec<_>>()),
            other => json!(text(other)),
        };
        out.insert(k, v);
    }
    Some(out)
}

fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => cut(&s.to_string_lossy()),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}\u{2026}", &s[..at]),
        None => s.to_owned(),
    }
}

/// One change between two complete scans.
#[derive(Clone, Debug, PartialEq)]
pub struct MsspChange {
    /// Unix seconds of the scan that shows the change.
    pub at: i64,
    /// Its id.
    pub scan: String,
    /// Unix seconds of the complete scan before it (what it is compared with).
    pub since: i64,
    /// Whether this scan sent MSSP (`false`: it stopped; the lists are then empty).
    pub sent: bool,
    /// Variables new in this scan, with their values.
    pub added: Vec<(String, serde_json::Value)>,
    /// Variables gone, with their last values.
    pub removed: Vec<(String, serde_json::Value)>,
    /// Variables whose value changed: (name, old, new).
    pub changed: Vec<(String, serde_json::Value, serde_json::Value)>,
}

/// The changes along a server's complete scans, oldest first: `(created, id, MSSP)`. The
/// first scan is the baseline; a scan equal to the one before adds nothing.
pub fn mssp_changes(scans: &[(i64, String, Option<Mssp>)]) -> Vec<MsspChange> {
    let mut out = Vec::new();
    for pair in scans.windows(2) {
        let [(since, _, before), (at, id, now)] = pair else {
            continue;
        };
        let mut c = MsspChange {
            at: *at,
            scan: id.clone(),
            since: *since,
            sent: now.is_some(),
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        };
        match (before, now) {
            (_, None) if before.is_none() => continue,
            (_, None) => {}
            (before, Some(now)) => {
                let empty = Mssp::new();
                let before = before.as_ref().unwrap_or(&empty);
                for (k, v) in now {
                    match before.get(k) {
                        None => c.added.push((k.clone(), v.clone())),
                        Some(old) if old != v => {
                            c.changed.push((k.clone(), old.clone(), v.clone()))
                        }
                        Some(_) => {}
                    }
                }
                for (k, v) in before {
                    if !now.contains_key(k) {
                        c.removed.push((k.clone(), v.clone()));
                    }
                }
                if c.added.is_empty() && c.removed.is_empty() && c.changed.is_empty() {
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// A value as text: a string as sent, a repeated variable's values joined with `, `.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(l) => l
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.as_str().unwrap_or_default().to_owned(),
    }
}

/// The changes as `mssp_changes` in the server API, one entry per variable, oldest first:
/// `date` (of the scan that shows it), `scan`, `since` (the complete scan compared with),
/// `variable`, `from` and `to` (values as text; `from` null: added, `to` null: removed). A
/// scan that stopped sending MSSP is one entry with `sent: false` and no variable.
pub fn to_json(changes: &[MsspChange]) -> serde_json::Value {
    let date = |secs: i64| iacscope_shared::record::isoformat_utc(secs.saturating_mul(1_000_000));
    let mut out = Vec::new();
    for c in changes {
        let entry = |variable: Option<&str>, from: Option<String>, to: Option<String>| {
            json!({
                "date": date(c.at),
                "scan": c.scan,
                "since": date(c.since),
                "sent": c.sent,
                "variable": variable,
                "from": from,
                "to": to,
            })
        };
        if !c.sent {
            out.push(entry(None, None, None));
        }
        for (k, from, to) in &c.changed {
            out.push(entry(Some(k), Some(value_text(from)), Some(value_text(to))));
        }
        for (k, v) in &c.added {
            out.push(entry(Some(k), None, Some(value_text(v))));
        }
        for (k, v) in &c.removed {
            out.push(entry(Some(k), Some(value_text(v)), None));
        }
    }
    serde_json::Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mssp: &str) -> String {
        format!("{{\"server-probe\": {{\"session_data\": {{\"mssp\": {{{mssp}}}}}}}, \"sessions\": []}}")
    }

    fn scan(at: i64, mssp: Option<&str>) -> (i64, String, Option<Mssp>) {
        (
            at,
            format!("id{at}"),
            mssp.and_then(|m| mssp_of(&record(m))),
        )
    }

    #[test]
    fn reads_variables_without_the_volatile_ones() {
        let m = mssp_of(&record(
            r#""NAME": "Fake", "PLAYERS": "7", "UPTIME": "1700000000", "PORT": ["4000", "4001"]"#,
        ))
        .expect("mssp");
        assert_eq!(m.keys().collect::<Vec<_>>(), ["NAME", "PORT"]);
        assert_eq!(m["PORT"], json!(["4000", "4001"]));
        assert_eq!(
            mssp_of(&record(r#""NAME": "x""#).replace("mssp", "other")),
            None
        );
        assert_eq!(mssp_of("not json"), None);
        // Hostile sizes are cut.
        let many: Vec<String> = (0..300).map(|i| format!("\"V{i:03}\": \"x\"")).collect();
        assert_eq!(
            mssp_of(&record(&many.join(", "))).expect("mssp").len(),
            MAX_VARIABLES
        );
        let long = "y".repeat(MAX_CHARS + 50);
        let m = mssp_of(&record(&format!("\"NAME\": \"{long}\""))).expect("mssp");
        assert_eq!(
            m["NAME"].as_str().expect("text").chars().count(),
            MAX_CHARS + 1
        );
    }

    #[test]
    fn lists_added_removed_and_changed_variables() {
        let scans = [
            scan(
                10,
                Some(r#""NAME": "Old", "CODEBASE": "Evennia", "PLAYERS": "3""#),
            ),
            // Only PLAYERS moved: no change.
            scan(
                20,
                Some(r#""NAME": "Old", "CODEBASE": "Evennia", "PLAYERS": "9""#),
            ),
            scan(
                30,
                Some(r#""NAME": "New", "CODEBASE": "Evennia", "SSL": "4443""#),
            ),
            scan(40, Some(r#""NAME": "New", "SSL": "4443""#)),
        ];
        let c = mssp_changes(&scans);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!((c[0].at, c[0].since, c[0].scan.as_str()), (30, 20, "id30"));
        assert_eq!(c[0].changed, [("NAME".into(), json!("Old"), json!("New"))]);
        assert_eq!(c[0].added, [("SSL".into(), json!("4443"))]);
        assert!(c[0].removed.is_empty() && c[0].sent);
        assert_eq!(c[1].removed, [("CODEBASE".into(), json!("Evennia"))]);
        assert!(c[1].added.is_empty() && c[1].changed.is_empty());
        let j = to_json(&c);
        assert_eq!(j.as_array().expect("list").len(), 3, "{j}");
        assert_eq!(
            (&j[0]["variable"], &j[0]["from"], &j[0]["to"]),
            (&json!("NAME"), &json!("Old"), &json!("New"))
        );
        assert_eq!(
            (&j[1]["variable"], &j[1]["from"]),
            (&json!("SSL"), &json!(null))
        );
        assert_eq!(
            (&j[2]["variable"], &j[2]["to"]),
            (&json!("CODEBASE"), &json!(null))
        );
        assert_eq!(j[0]["since"], "1970-01-01T00:00:20+00:00");
        assert_eq!(j[2]["date"], "1970-01-01T00:00:40+00:00");
    }

    #[test]
    fn mssp_stopping_and_coming_back() {
        let scans = [
            scan(1, None),
            scan(2, Some(r#""NAME": "A""#)),
            scan(3, None),
            scan(4, None),
            scan(5, Some(r#""NAME": "A""#)),
        ];
        let c = mssp_changes(&scans);
        let seen: Vec<(i64, bool, usize)> =
            c.iter().map(|c| (c.at, c.sent, c.added.len())).collect();
        assert_eq!(seen, [(2, true, 1), (3, false, 0), (5, true, 1)]);
        let j = to_json(&c);
        assert_eq!(j[1]["sent"], false);
        assert_eq!(j[1]["variable"], json!(null));
        // A repeated variable's values are joined.
        let port = mssp_of(&record(r#""PORT": ["4000", "4001"]"#)).expect("mssp");
        assert_eq!(value_text(&port["PORT"]), "4000, 4001");
        assert!(mssp_changes(&scans[..1]).is_empty());
        assert!(mssp_changes(&[]).is_empty());
    }
}
