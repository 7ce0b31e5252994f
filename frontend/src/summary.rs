//! The summary card's facts, first on the result page: what a person came for (name, target,
//! codebase, players, uptime, TLS, encoding, fingerprint and "shared by N", protocol badges,
//! warnings). Derived from the page state alone, so it fills in live as the engine reports
//! facts (MSSP usually lands in the first tens of milliseconds; the fingerprint comes last)
//! and reads the same on a permalink. Pure: tested natively; `view` only renders it.

use crate::protocols::{self, Support};
use crate::state::{SaveStatus, ScanState};
use iacscope_shared::mssp_check;
use iacscope_shared::pyjson::{Dict, Value};
use iacscope_shared::telopt::TelOpt;

/// Values longer than this are cut on the card (the MSSP table shows them whole).
const MAX_FACT_CHARS: usize = 80;

/// MUD protocols that get a badge when the server offered them, in badge order.
const BADGES: &[(TelOpt, &str)] = &[
    (TelOpt::MSSP, "MSSP"),
    (TelOpt::GMCP, "GMCP"),
    (TelOpt::MSDP, "MSDP"),
    (TelOpt::MCCP2, "MCCP2"),
    (TelOpt::MCCP3, "MCCP3"),
    (TelOpt::MXP, "MXP"),
    (TelOpt::MSP, "MSP"),
    (TelOpt::ZMP, "ZMP"),
    (TelOpt::ATCP, "ATCP"),
    (TelOpt::AARDWOLF, "AARDWOLF"),
    (TelOpt::CHARSET, "CHARSET"),
    (TelOpt::BINARY, "BINARY"),
];

/// The facts on the card; `None` fields are not known (yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// MSSP `NAME`.
    pub name: Option<String>,
    /// `host:port`.
    pub target: String,
    /// MSSP `CODEBASE`.
    pub codebase: Option<String>,
    /// MSSP `PLAYERS`.
    pub players: Option<String>,
    /// MSSP `UPTIME` as a date when it is one (else as sent).
    pub uptime: Option<String>,
    /// The TLS session (`None`: plain telnet).
    pub tls: Option<String>,
    /// The session encoding.
    pub encoding: Option<String>,
    /// The fingerprint, once the scan is done.
    pub fingerprint: Option<String>,
    /// How many other servers share it (known after a save).
    pub shared_by: Option<i64>,
    /// Protocols the server offered or used.
    pub badges: Vec<&'static str>,
    /// MSSP check warnings (known when the scan is done).
    pub warnings: Option<usize>,
}

impl Summary {
    /// The card for the page, or `None` before a scan has a target.
    pub fn of(s: &ScanState) -> Option<Summary> {
        let req = s.request.as_ref()?;
        let mut out = Summary {
            target: req.target(),
            ..Summary::default()
        };
        if let Some(c) = &s.connection {
            out.tls = c.tls.clone();
        }
        if !s.live.encoding.is_empty() {
            out.encoding = Some(s.live.encoding.clone());
        }
        // The finished report wins over what was seen live (it is the record's view).
        let mssp_live = s.live.mssp.as_ref();
        let mut badges: Vec<&'static str> = BADGES
            .iter()
            .filter(|(o, _)| s.live.offered.contains(o))
            .map(|(_, n)| *n)
            .collect();
        if let Some(r) = &s.report {
            out.fingerprint = Some(r.fingerprint.clone());
            out.warnings = Some(mssp_check::warnings(&r.mssp_findings));
            badges = r
                .protocols
                .iter()
                .filter(|(_, sup)| *sup != Support::No)
                .map(|(n, _)| *n)
                .collect();
            for row in &r.mssp {
                let first = row.values.first().map(|(v, _)| v.as_str());
                match row.name.as_str() {
                    "NAME" => out.name = first.map(fact),
                    "CODEBASE" => out.codebase = Some(fact(&join(&row.values))),
                    "PLAYERS" => out.players = first.map(fact),
                    "UPTIME" => out.uptime = first.map(fact),
                    _ => {}
                }
            }
        } else if let Some(m) = mssp_live {
            out.name = text(m, "NAME");
            out.codebase = text(m, "CODEBASE");
            out.players = text(m, "PLAYERS");
            out.uptime = text(m, "UPTIME").map(|u| protocols::uptime_text(&u));
        }
        out.name = out.name.filter(|n| !n.trim().is_empty());
        out.badges = badges;
        if let SaveStatus::Saved(saved) = &s.save {
            out.shared_by = Some(saved.others);
        }
        Some(out)
    }

    /// "shared by N other servers" text, when known.
    pub fn shared_text(&self) -> Option<String> {
        self.shared_by.map(|n| match n {
            0 => "not shared by any other server".to_owned(),
            1 => "shared by 1 other server".to_owned(),
            n => format!("shared by {n} other servers"),
        })
    }
}

/// The first value of an MSSP variable, trimmed and cut for the card.
fn text(m: &Dict, key: &str) -> Option<String> {
    let v = m.get(key)?;
    let first = match v {
        Value::List(l) => l.first()?,
        other => other,
    };
    first.as_pystr().map(|s| fact(&s.to_string_lossy()))
}

fn join(values: &[(String, bool)]) -> String {
    values
        .iter()
        .map(|(v, _)| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn fact(v: &str) -> String {
    let v = v.trim();
    let mut cut: String = v.chars().take(MAX_FACT_CHARS).collect();
    if cut.len() < v.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{ScanMode, ScanRequest, TlsMode};
    use crate::state::{Action, Connection};
    use iacscope_shared::event::{Event, EventKind};
    use iacscope_shared::telopt::Verb;
    use iacscope_shared::{Dir, Phase, Timestamp};
    use std::rc::Rc;
    use yew::Reducible;

    fn started() -> Rc<ScanState> {
        let s = Rc::new(ScanState::default()).reduce(Action::Start(ScanRequest {
            host: "mud.example".into(),
            port: 4000,
            tls: TlsMode::Off,
            mode: ScanMode::Quick,
        }));
        s.reduce(Action::Connected(Connection {
            session: "s1".into(),
            host: "mud.example".into(),
            ip: "127.0.0.1".into(),
            port: 4000,
            tls: None,
        }))
    }

    fn mssp_payload() -> Vec<u8> {
        let mut p = Vec::new();
        for (k, v) in [
            ("NAME", "FakeMUSH"),
            ("PLAYERS", "3"),
            ("UPTIME", "1700000000"),
            ("CODEBASE", "PennMUSH 1.8.8"),
        ] {
            p.push(1);
            p.extend_from_slice(k.as_bytes());
            p.push(2);
            p.extend_from_slice(v.as_bytes());
        }
        p
    }

    #[test]
    fn the_card_fills_in_as_mssp_arrives_before_the_end() {
        let s = started();
        let blank = Summary::of(&s).expect("a target");
        assert_eq!(blank.target, "mud.example:4000");
        assert_eq!(
            (blank.name.clone(), blank.fingerprint.clone()),
            (None, None)
        );
        let s = s.reduce(Action::Step {
            now: Timestamp(40_000),
            phase: Phase::Negotiating,
            events: vec![
                Event {
                    at: Timestamp(10_000),
                    kind: EventKind::Negotiation {
                        dir: Dir::Recv,
                        verb: Verb::Will,
                        opt: TelOpt::MSSP,
                    },
                },
                Event {
                    at: Timestamp(30_000),
                    kind: EventKind::Subnegotiation {
                        dir: Dir::Recv,
                        opt: TelOpt::MSSP,
                        payload: mssp_payload(),
                        meaning: String::new(),
                    },
                },
            ],
        });
        let live = Summary::of(&s).expect("a target");
        assert_eq!(live.name.as_deref(), Some("FakeMUSH"));
        assert_eq!(live.players.as_deref(), Some("3"));
        assert_eq!(live.codebase.as_deref(), Some("PennMUSH 1.8.8"));
        assert_eq!(
            live.uptime.as_deref(),
            Some("1700000000 (up since 2023-11-14 22:13 UTC)")
        );
        assert_eq!(live.badges, vec!["MSSP"]);
        assert_eq!(live.fingerprint, None, "the fingerprint comes last");
        assert_eq!(live.warnings, None);
    }

    #[test]
    fn mud_messages_are_decoded_and_bounded() {
        let sb = |opt: TelOpt, payload: &[u8]| Event {
            at: Timestamp(1_000),
            kind: EventKind::Subnegotiation {
                dir: Dir::Recv,
                opt,
                payload: payload.to_vec(),
                meaning: String::new(),
            },
        };
        let mut events = vec![
            sb(TelOpt::MSDP, b"\x01client_options\x02\x03\x01ansi\x021\x04"),
            sb(TelOpt::GMCP, br#"Char.Vitals {"hp": 1}"#),
        ];
        events.extend((0..500).map(|_| sb(TelOpt::GMCP, b"Core.Ping")));
        let s = started().reduce(Action::Step {
            now: Timestamp(2_000),
            phase: Phase::Negotiating,
            events,
        });
        assert_eq!(s.live.decoded.len(), crate::state::MAX_DECODED);
        assert_eq!(
            s.live.decoded[0].1.to_line(),
            "client_options = {ansi = \"1\"}"
        );
        assert_eq!(s.live.decoded[1].1.to_line(), r#"Char.Vitals {"hp":1}"#);
    }

    #[test]
    fn long_or_hostile_values_are_cut() {
        assert_eq!(fact(&"x".repeat(500)).chars().count(), MAX_FACT_CHARS + 1);
        assert_eq!(fact("  Name  "), "Name");
    }
}
