//! "Copy as evidence": a plain-text block shaped for a game directory's listing request (the
//! negotiation lines that matter, TLS, MSSP present or not, the permalink). Pure: built from
//! the report and the page state, tested natively.

use crate::state::{Report, ScanState};
use iacscope_shared::mssp_check;
use iacscope_shared::telopt::TelOpt;

/// The evidence text, or `None` before the scan is done.
pub fn evidence(s: &ScanState, permalink: Option<&str>) -> Option<String> {
    let r = s.report.as_ref()?;
    let req = s.request.as_ref()?;
    let mut out = format!(
        "Telnet negotiation of {} (iacscope, telnetlib3-fingerprint {} procedure)\n",
        req.target(),
        iacscope_shared::TELNETLIB3_VERSION
    );
    out += &format!("Fingerprint: {}\n", r.fingerprint);
    push_lines(&mut out, "Server offers", "WILL", &r.offered);
    push_lines(&mut out, "Server requests", "DO", &r.requested);
    out += &format!("MSSP: {}\n", mssp_line(r));
    let tls = match s.connection.as_ref().and_then(|c| c.tls.as_deref()) {
        Some(t) => t.to_owned(),
        None => "none (plain telnet)".to_owned(),
    };
    out += &format!("TLS: {tls}\n");
    if let Some(p) = permalink {
        out += &format!("Permalink: {p}\n");
    }
    Some(out)
}

/// `IAC WILL GMCP (201)` lines for the named options.
fn push_lines(out: &mut String, title: &str, verb: &str, names: &[String]) {
    if names.is_empty() {
        *out += &format!("{title}: nothing\n");
        return;
    }
    *out += &format!("{title}:\n");
    for n in names {
        match TelOpt::parse(n) {
            Some(o) => *out += &format!("  IAC {verb} {n} ({})\n", o.0),
            None => *out += &format!("  IAC {verb} {n}\n"),
        }
    }
}

fn mssp_line(r: &Report) -> String {
    let offered = r.offered.iter().any(|o| o == "MSSP");
    let warnings = mssp_check::warnings(&r.mssp_findings);
    match (r.mssp.len(), offered) {
        (0, true) => "offered (WILL MSSP) but no data sent".to_owned(),
        (0, false) => "not offered".to_owned(),
        (n, _) => format!(
            "present, {n} variable{}, {warnings} warning{} against the specification",
            if n == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{ScanMode, ScanRequest, TlsMode};
    use crate::state::{Action, Connection};
    use iacscope_shared::record::SessionInfo;
    use std::rc::Rc;
    use yew::Reducible;

    #[test]
    fn evidence_names_options_with_their_numbers() {
        // A server that offers GMCP and MSSP (with data lacking UPTIME) and asks for TTYPE.
        let json = r#"{"server-probe": {"fingerprint": "0123456789abcdef",
            "fingerprint-data": {"offered-options": ["GMCP", "MSSP"],
                                 "requested-options": ["TTYPE"]},
            "session_data": {"mssp": {"NAME": "Seed", "PLAYERS": "1"}}}}"#;
        let record = iacscope_shared::pyjson::parse(json).expect("json");
        let session = SessionInfo {
            host: "mud.example".into(),
            ip: "127.0.0.1".into(),
            port: 4000,
            connected: "2026-12-05T00:00:00+00:00".into(),
        };
        let report = Report::from_record(&record, json.into(), &session).expect("a report");
        let s = Rc::new(ScanState::default())
            .reduce(Action::Start(ScanRequest {
                host: "mud.example".into(),
                port: 4000,
                tls: TlsMode::Off,
                mode: ScanMode::Quick,
            }))
            .reduce(Action::Connected(Connection {
                session: "s".into(),
                host: "mud.example".into(),
                ip: "127.0.0.1".into(),
                port: 4000,
                tls: None,
            }))
            .reduce(Action::Finished(Rc::new(report)));
        let text = evidence(&s, Some("https://scan.example/s/abc")).expect("done");
        for want in [
            "Telnet negotiation of mud.example:4000",
            "  IAC WILL GMCP (201)\n",
            "  IAC WILL MSSP (70)\n",
            "  IAC DO TTYPE (24)\n",
            "MSSP: present, 2 variables, 1 warning against the specification\n",
            "TLS: none (plain telnet)\n",
            "Permalink: https://scan.example/s/abc\n",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
    }
}
