//! The "Protocol Support" table and the MSSP table, as the modem.xyz seed page builds them
//! from a record (spec §7). The protocol rule lives in `iacscope_shared::directory` (the
//! proxy's embed widget uses it too); the MSSP rows are here. Pure functions over the
//! record's `session_data`; the page only renders the rows.

use iacscope_shared::pyjson::Value;

pub use iacscope_shared::directory::{protocol_table, Support, PROTOCOLS};

fn dict_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_dict()?.get(key)
}

/// One MSSP variable for display: its name, its values, and whether each value is a link
/// (only `http://` and `https://` ones become links; anything else stays text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsspRow {
    pub name: String,
    pub values: Vec<(String, bool)>,
}

/// Whether a server-sent value may become a link.
pub fn is_http_link(v: &str) -> bool {
    let lower = v.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The MSSP variables in the record, sorted by name (the dict's order).
pub fn mssp_rows(session_data: &Value) -> Vec<MsspRow> {
    let Some(m) = dict_get(session_data, "mssp").and_then(Value::as_dict) else {
        return Vec::new();
    };
    m.iter()
        .map(|(k, v)| {
            let mut values: Vec<String> = match v {
                Value::List(l) => l.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            if k.to_string_lossy() == "UPTIME" {
                values = values.into_iter().map(|s| uptime_text(&s)).collect();
            }
            MsspRow {
                name: k.to_string_lossy(),
                values: values
                    .into_iter()
                    .map(|s| {
                        let link = is_http_link(&s);
                        (s, link)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Earliest and latest MSSP `UPTIME` shown as a date (1990 to 2200): other numbers are
/// shown as sent.
const UPTIME_RANGE: std::ops::RangeInclusive<i64> = 631_152_000..=7_258_118_400;

/// MSSP `UPTIME` (the Unix time the server started) with its date: `1700000000
/// (up since 2023-11-14 22:13 UTC)`; anything that is not such a number stays as sent.
pub fn uptime_text(v: &str) -> String {
    match v.trim().parse::<i64>() {
        Ok(secs) if UPTIME_RANGE.contains(&secs) => {
            format!(
                "{v} (up since {})",
                iacscope_shared::record::short_date(secs)
            )
        }
        _ => v.to_owned(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string_lossy(),
        other => iacscope_shared::pyjson::to_canonical(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iacscope_shared::pyjson::Dict;

    /// A `session_data` holding only `mssp`.
    fn session_data(mssp: Dict) -> Value {
        let mut sd = Dict::new();
        sd.insert("mssp", Value::Dict(mssp));
        Value::Dict(sd)
    }

    #[test]
    fn uptime_is_shown_as_a_date() {
        assert_eq!(
            uptime_text("1700000000"),
            "1700000000 (up since 2023-11-14 22:13 UTC)"
        );
        for raw in ["", "soon", "-5", "12", "99999999999999999999"] {
            assert_eq!(uptime_text(raw), raw, "{raw:?} stays as sent");
        }
        let mut m = Dict::new();
        m.insert("UPTIME", "1700000000");
        let sd = session_data(m);
        assert_eq!(
            mssp_rows(&sd)[0].values,
            [(
                "1700000000 (up since 2023-11-14 22:13 UTC)".to_string(),
                false
            )]
        );
    }

    #[test]
    fn only_http_links() {
        let mut m = Dict::new();
        m.insert("WEBSITE", "https://mud.example.org/");
        m.insert("ICON", "javascript:alert(1)");
        m.insert("PORT", Value::str_list(["4000", "4001"]));
        let sd = session_data(m);
        let rows = mssp_rows(&sd);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].values, [("javascript:alert(1)".to_string(), false)]);
        assert_eq!(
            rows[1].values,
            [("4000".to_string(), false), ("4001".to_string(), false)]
        );
        assert_eq!(
            rows[2].values,
            [("https://mud.example.org/".to_string(), true)]
        );
        assert!(!is_http_link("http://a b"));
        assert!(is_http_link("HTTP://example.org"));
    }
}
