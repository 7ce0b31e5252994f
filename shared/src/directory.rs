//! The "Protocol Support" row of a record (spec §7), as pure functions over the record's
//! `session_data` and `fingerprint-data`: the web app's result page and the proxy's embed
//! widget both render it from here.

use crate::pyjson::Value;

/// The protocols of the row, in the seed page's order.
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
    /// None of the above.
    No,
}

impl Support {
    /// The cell's text.
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

/// The protocol row (spec §7): "Yes (MSSP)" when `mssp[NAME]` is the string `"1"`;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson::Dict;

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
        let (sd, fp) = record(None, &[], &["MSSP"]);
        let t = protocol_table(&sd, &fp, b"#$#mcp version: 2.1 to: 2.1\r\n");
        assert_eq!(t[0], ("MSSP", Support::No));
        assert_eq!(t[7], ("MCP", Support::Banner));
        let (sd, fp) = record(None, &[("MSSP", true)], &[]);
        assert_eq!(
            protocol_table(&sd, &fp, b"")[0],
            ("MSSP", Support::Negotiated)
        );
        let (sd, fp) = record(Some(Dict::new()), &[], &[]);
        assert_eq!(protocol_table(&sd, &fp, b"")[0], ("MSSP", Support::No));
    }
}
