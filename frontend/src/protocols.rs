//! The "Protocol Support" table and the MSSP table, as the modem.xyz seed page builds them
//! from a record (spec §7). Pure functions over the record's `session_data` and
//! `fingerprint-data`; the page only renders the rows.

use iacscope_shared::pyjson::Value;

/// The rows of the protocol table, in the seed page's order.
pub const PROTOCOLS: [&str; 9] = [
    "MSSP", "GMCP", "MSDP", "MCCP", "MCCP2", "MXP", "MSP", "MCP", "ZMP",
];

/// What the record says about one protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The server's MSSP data says `"1"` (or, for MSSP itself, sent any MSSP data).
    Mssp,
    /// The option was agreed or appears among the offered / requested options.
    Negotiated,
    /// MCP only: the banner announces it in-band (`#$#mcp`), which telnet cannot negotiate.
    Banner,
    No,
}

impl Support {
    pub fn label(self) -> &'static str {
        match self {
            Support::Mssp => "Yes (MSSP)",
            Support::Negotiated => "Negotiated",
            Support::Banner => "Yes (banner)",
            Support::No => "No",
        }
    }

    /// A CSS class for the cell.
    pub fn class(self) -> &'static str {
        match self {
            Support::Mssp | Support::Banner => "yes",
            Support::Negotiated => "negotiated",
            Support::No => "no",
        }
    }
}

fn dict_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_dict()?.get(key)
}

fn is_str(v: Option<&Value>, s: &str) -> bool {
    v.and_then(Value::as_pystr)
        .is_some_and(|p| p.to_string_lossy() == s)
}

fn list_has(v: Option<&Value>, name: &str) -> bool {
    v.and_then(Value::as_list)
        .is_some_and(|l| l.iter().any(|x| is_str(Some(x), name)))
}

/// The protocol table (spec §7): "Yes (MSSP)" when `mssp[NAME]` is the string `"1"`;
/// otherwise "Negotiated" when NAME is a key with value true in `server_offered` or
/// `server_requested` (the pre-probe snapshot), or appears in `offered-options` or
/// `requested-options`; otherwise "No". The MSSP row is then overridden: "Yes (MSSP)" if
/// the mssp dict is non-empty, else "Negotiated" if MSSP is in that snapshot set.
/// iacscope adds one thing the seed page lacks: MCP, an in-band protocol, is "Yes (banner)"
/// when the banner contains `#$#mcp`.
pub fn protocol_table(
    session_data: &Value,
    fingerprint_data: &Value,
    banner: &[u8],
) -> Vec<(&'static str, Support)> {
    let mssp = dict_get(session_data, "mssp").and_then(Value::as_dict);
    let states = dict_get(session_data, "option_states");
    let in_snapshot = |name: &str| {
        ["server_offered", "server_requested"].iter().any(|table| {
            matches!(
                states
                    .and_then(|s| dict_get(s, table))
                    .and_then(|t| dict_get(t, name)),
                Some(Value::Bool(true))
            )
        })
    };
    PROTOCOLS
        .iter()
        .map(|&name| {
            let mut s = if is_str(mssp.and_then(|m| m.get(name)), "1") {
                Support::Mssp
            } else if in_snapshot(name)
                || list_has(dict_get(fingerprint_data, "offered-options"), name)
                || list_has(dict_get(fingerprint_data, "requested-options"), name)
            {
                Support::Negotiated
            } else {
                Support::No
            };
            if name == "MSSP" {
                s = if mssp.is_some_and(|m| !m.is_empty()) {
                    Support::Mssp
                } else if in_snapshot("MSSP") {
                    Support::Negotiated
                } else {
                    Support::No
                };
            }
            if name == "MCP" && s == Support::No && contains(banner, b"#$#mcp") {
                s = Support::Banner;
            }
            (name, s)
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
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
            let values: Vec<String> = match v {
                Value::List(l) => l.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
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

    fn record(mssp: Option<Dict>, offered: &[(&str, bool)], fp_offered: &[&str]) -> (Value, Value) {
        let mut so = Dict::new();
        for (k, v) in offered {
            so.insert(*k, *v);
        }
        let mut states = Dict::new();
        states.insert("server_offered", Value::Dict(so));
        states.insert("server_requested", Value::Dict(Dict::new()));
        let mut sd = Dict::new();
        sd.insert("option_states", Value::Dict(states));
        if let Some(m) = mssp {
            sd.insert("mssp", Value::Dict(m));
        }
        let mut fp = Dict::new();
        fp.insert("offered-options", Value::str_list(fp_offered.iter()));
        fp.insert("requested-options", Value::str_list(["MSP"]));
        (Value::Dict(sd), Value::Dict(fp))
    }

    fn labels(rows: &[(&str, Support)]) -> Vec<String> {
        rows.iter()
            .map(|(n, s)| format!("{n}={}", s.label()))
            .collect()
    }

    #[test]
    fn seed_rule() {
        let mut m = Dict::new();
        m.insert("MCCP", "1");
        m.insert("GMCP", "0");
        m.insert("ZMP", "1");
        m.insert("NAME", "Seed");
        let (sd, fp) = record(Some(m), &[("GMCP", true), ("MSDP", false)], &["MXP"]);
        assert_eq!(
            labels(&protocol_table(&sd, &fp, b"")),
            [
                "MSSP=Yes (MSSP)",
                "GMCP=Negotiated",
                "MSDP=No",
                "MCCP=Yes (MSSP)",
                "MCCP2=No",
                "MXP=Negotiated",
                "MSP=Negotiated",
                "MCP=No",
                "ZMP=Yes (MSSP)",
            ]
        );
    }

    #[test]
    fn mssp_row_is_overridden_and_mcp_seen_in_banner() {
        // MSSP offered during the probe only: the override uses the snapshot alone.
        let (sd, fp) = record(None, &[], &["MSSP"]);
        let t = protocol_table(&sd, &fp, b"#$#mcp version: 2.1 to: 2.1\r\n");
        assert_eq!(t[0], ("MSSP", Support::No));
        assert_eq!(t[7], ("MCP", Support::Banner));
        let (sd, fp) = record(None, &[("MSSP", true)], &[]);
        assert_eq!(
            protocol_table(&sd, &fp, b"")[0],
            ("MSSP", Support::Negotiated)
        );
        // An empty MSSP dict is not "Yes".
        let (sd, fp) = record(Some(Dict::new()), &[], &[]);
        assert_eq!(protocol_table(&sd, &fp, b"")[0], ("MSSP", Support::No));
    }

    #[test]
    fn only_http_links() {
        let mut m = Dict::new();
        m.insert("WEBSITE", "https://mud.example.org/");
        m.insert("ICON", "javascript:alert(1)");
        m.insert("PORT", Value::str_list(["4000", "4001"]));
        let (sd, _) = record(Some(m), &[], &[]);
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
