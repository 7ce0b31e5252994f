//! A permalink page (`/s/<id>`): the stored scan, shown like a live one without connecting
//! anywhere. The page fetches the scan's summary, its relay transcript and its record, replays
//! the transcript through the engine (`relay::replay_relay_with`, the proxy's own replay) and
//! feeds what happens into the same reducer a live scan uses, so the timeline, banner,
//! tables and record are built by the same code. The record shown is always the stored one:
//! when the replay's differs, a note says so. An imported scan (no transcript) is shown from
//! its record alone. [`actions`] is pure and tested natively; [`load`] does the fetching.

use crate::api::{self, Failure};
use crate::banner;
use crate::request::{ScanMode, ScanRequest, TlsMode};
use crate::route::Route;
use crate::state::{Action, Connection, Report, Saved, ScanState, Stored};
use iacscope_shared::pyjson;
use iacscope_shared::record::SessionInfo;
use iacscope_shared::relay::{replay_relay_with, SaveConfig};
use iacscope_shared::transcript::Transcript;
use iacscope_shared::{ScanConfig, ScanType};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use yew::UseReducerDispatcher;

/// `source` of a scan saved from a proxied session (it has a relay transcript).
pub const SOURCE_LIVE: &str = "live";

/// `/api/scans/<id>/summary`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub ip: String,
    pub fingerprint: String,
    /// When it was stored (ISO 8601, whole seconds).
    pub date: String,
    /// `scan-type=… encoding=… ttype=… tls=…`.
    pub config: String,
    /// `live` or `import`.
    pub source: String,
    /// Other servers with this fingerprint.
    pub shared_by: i64,
}

impl Summary {
    /// Reads the proxy's JSON; `None` when a required field is missing.
    pub fn from_json(v: &JsValue) -> Option<Summary> {
        Some(Summary {
            id: api::text_field(v, "id"),
            host: api::text_field(v, "host"),
            port: api::port_field(v, "port")?,
            ip: api::text_field(v, "ip"),
            fingerprint: api::text_field(v, "fingerprint"),
            date: api::text_field(v, "date"),
            config: api::text_field(v, "config"),
            source: api::text_field(v, "source"),
            shared_by: api::int_field(v, "shared_by").unwrap_or(0),
        })
        .filter(|s| !s.id.is_empty() && !s.host.is_empty())
    }
}

/// The `connected` time of the record's first session, when it has one.
fn connected(record: &pyjson::Value) -> Option<String> {
    let first = record.as_dict()?.get("sessions")?.as_list()?.first()?;
    Some(
        first
            .as_dict()?
            .get("connected")?
            .as_pystr()?
            .to_string_lossy(),
    )
}

fn request(s: &Summary, cfg: &ScanConfig) -> ScanRequest {
    ScanRequest {
        host: s.host.clone(),
        port: s.port,
        tls: if cfg.tls { TlsMode::On } else { TlsMode::Off },
        mode: match cfg.scan_type {
            ScanType::Full => ScanMode::Full,
            _ => ScanMode::Quick,
        },
    }
}

/// The reducer actions that show stored scan `s`: its record (as text, and parsed when it is
/// JSON), and its relay transcript when it has one. The result, reduced from a default
/// state, is the page.
pub fn actions(
    s: &Summary,
    transcript: Option<&str>,
    record_text: &str,
    record: Option<&pyjson::Value>,
) -> Vec<Action> {
    let date = record.and_then(connected).unwrap_or_else(|| s.date.clone());
    let session = SessionInfo {
        host: s.host.clone(),
        ip: s.ip.clone(),
        port: s.port,
        connected: date.clone(),
    };
    let cfg = SaveConfig::from_canonical(&s.config);
    let mut notes = Vec::new();
    let mut out = vec![
        Action::Start(request(s, cfg.as_ref().unwrap_or(&ScanConfig::default()))),
        Action::Connected(Connection {
            session: String::new(),
            host: s.host.clone(),
            ip: s.ip.clone(),
            port: s.port,
            tls: None,
        }),
    ];
    let replayable = match (transcript, &cfg) {
        (Some(t), Ok(cfg)) if !t.trim().is_empty() => match Transcript::parse(t) {
            Ok(t) => Some((t, cfg.clone())),
            Err(e) => {
                notes.push(format!(
                    "The stored transcript could not be read ({e}); the page shows the stored \
                     record only."
                ));
                None
            }
        },
        (Some(t), Err(e)) if !t.trim().is_empty() => {
            notes.push(format!(
                "The stored settings could not be read ({e}); the page shows the stored record \
                 only."
            ));
            None
        }
        _ => {
            notes.push(if s.source == SOURCE_LIVE {
                "The stored transcript is empty, so there is no timeline; the page shows the \
                 stored record."
                    .into()
            } else {
                "This scan was imported from a telnetlib3 data directory: no transcript exists, \
                 so there is no timeline, and the tables come from the stored record."
                    .into()
            });
            None
        }
    };
    let report = match replayable {
        Some((t, cfg)) => {
            let mut events = Vec::new();
            let r = replay_relay_with(&t, cfg, |e| events.push(e));
            let sc = &r.scanner;
            out.push(Action::Step {
                now: r.ended,
                phase: sc.phase(),
                events,
            });
            let (before, after) = sc.banner_bytes();
            out.push(Action::Banner {
                bytes: banner::combine(&before, &after),
                encoding: sc.encoding().to_owned(),
            });
            let mut report = Report::new(sc.outcome(), &session);
            if report.json != record_text {
                notes.push(
                    "The record replayed in this browser differs from the stored one; the \
                     stored record is shown (the tables above follow the replay)."
                        .into(),
                );
                report.json = record_text.to_owned();
            }
            Some(report)
        }
        None => {
            let report =
                record.and_then(|r| Report::from_record(r, record_text.to_owned(), &session));
            if let Some(sd) = record.and_then(session_data) {
                let text: String = ["banner_before_return", "banner_after_return"]
                    .iter()
                    .filter_map(|k| sd.as_dict()?.get(k)?.as_pystr())
                    .map(|t| t.to_string_lossy())
                    .collect();
                out.push(Action::Banner {
                    bytes: text.into_bytes(),
                    encoding: "utf-8".into(),
                });
            }
            if report.is_none() {
                notes.push("The stored record has no `server-probe` section.".into());
            }
            report
        }
    };
    let fingerprint = report
        .as_ref()
        .map_or_else(|| s.fingerprint.clone(), |r| r.fingerprint.clone());
    if let Some(r) = report {
        out.push(Action::Finished(Rc::new(r)));
    }
    out.push(Action::Stored(Rc::new(Stored {
        date,
        source: s.source.clone(),
        notes,
    })));
    out.push(Action::Saved(Rc::new(Saved {
        id: s.id.clone(),
        host: s.host.clone(),
        port: s.port,
        fingerprint,
        others: s.shared_by,
        browser_agrees: None,
    })));
    out
}

fn session_data(record: &pyjson::Value) -> Option<&pyjson::Value> {
    record
        .as_dict()?
        .get("server-probe")?
        .as_dict()?
        .get("session_data")
}

/// The encodings a stored scan decodes with, as far as its summary and record tell: the
/// configured one and the session's final one (`session_data.encoding`). An encoding the
/// session went through and left again is not named anywhere; the replay decodes text
/// under it as latin-1 unless its table is already installed, and the page then notes that
/// the replayed record differs (the stored one, computed natively, is shown).
pub fn encodings(s: &Summary, record: Option<&pyjson::Value>) -> Vec<String> {
    // `scan-type=… encoding=E ttype=… tls=…` (codec names have no spaces), read here
    // without `SaveConfig::from_canonical`, whose second caller would cost the bundle a copy.
    let configured = s
        .config
        .split(' ')
        .find_map(|part| part.strip_prefix("encoding="))
        .map(str::to_owned);
    let last = record
        .and_then(session_data)
        .and_then(|sd| sd.as_dict()?.get("encoding")?.as_pystr())
        .map(|e| e.to_string_lossy());
    configured.into_iter().chain(last).collect()
}

/// Fetches stored scan `id` and dispatches what shows it; an unknown id (or any failure)
/// becomes a sentence on the page. Never opens a websocket.
pub async fn load(id: String, dispatch: UseReducerDispatcher<ScanState>) {
    let link = Route::Permalink(id.clone()).href();
    let fail = |f: Failure, what: &str| {
        if f.not_found() {
            format!("There is no permalink {link} here: it never existed, or it has expired.")
        } else {
            f.sentence(what)
        }
    };
    let summary = match api::get_json(&format!("/api/scans/{id}/summary")).await {
        Ok(v) => match Summary::from_json(&v) {
            Some(s) => s,
            None => {
                dispatch.dispatch(Action::Invalid(format!(
                    "The proxy's summary of {link} is incomplete."
                )));
                return;
            }
        },
        Err(f) => {
            dispatch.dispatch(Action::Invalid(fail(f, "the saved scan")));
            return;
        }
    };
    let record = match api::get_text(&format!("/api/scans/{id}")).await {
        Ok(r) => r,
        Err(f) => {
            dispatch.dispatch(Action::Invalid(fail(f, "the saved record")));
            return;
        }
    };
    let transcript = if summary.source == SOURCE_LIVE {
        match api::get_text(&format!("/api/scans/{id}/transcript")).await {
            Ok(t) => Some(t),
            Err(f) => {
                dispatch.dispatch(Action::Invalid(fail(f, "the saved transcript")));
                return;
            }
        }
    } else {
        None
    };
    // The browser's JSON parser: the engine's Python-exact one would only add size here.
    let parsed = api::parse(&record).map(|v| api::to_pyjson(&v));
    // The replay decodes with the scan's encodings: load their codec tables first.
    for sentence in crate::codecs::ensure(
        encodings(&summary, parsed.as_ref())
            .iter()
            .map(String::as_str),
    )
    .await
    {
        crate::codecs::warn(&sentence);
    }
    for a in actions(&summary, transcript.as_deref(), &record, parsed.as_ref()) {
        dispatch.dispatch(a);
    }
}

/// Canned scans for the native and browser tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::driver::Driver;
    use crate::state::{SaveStatus, Status};
    use iacscope_shared::record::isoformat_utc;
    use iacscope_shared::transcript::Entry;
    use iacscope_shared::Timestamp;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    /// What the server sends, by time (µs).
    fn server() -> Vec<(u64, &'static [u8])> {
        vec![
            (20_000, b"\xff\xfb\x46\xff\xfd\x18"),
            (
                40_000,
                b"\xff\xfa\x46\x01NAME\x02Seed\x01PLAYERS\x0212\xff\xf0\x1b[1;36mWelcome\x1b[0m\r\n",
            ),
        ]
    }

    /// A live scan through the driver: the actions the hook dispatches, the relay
    /// transcript the proxy keeps, and the record.
    pub(crate) fn live_actions() -> (Vec<Action>, Transcript, String) {
        let (mut d, first) = Driver::new(ScanConfig::default());
        let mut t = Transcript::new();
        t.set_meta("host", "mud.example.org");
        let mut events = Vec::new();
        let mut step = first;
        for (at, bytes) in server() {
            // The browser's replies to earlier input go out before the next input.
            for b in &step.transmit {
                t.push(Entry::Send(Timestamp(at - 1), b.clone()));
            }
            events.append(&mut step.events);
            t.push(Entry::Recv(Timestamp(at), bytes.to_vec()));
            step = d.input(Timestamp(at), bytes);
        }
        events.append(&mut step.events);
        let mut next = step.next;
        while let Some(at) = next {
            let s = d.timeout(at);
            events.extend(s.events);
            next = s.next;
        }
        let session = SessionInfo {
            host: "mud.example.org".into(),
            ip: "192.0.2.7".into(),
            port: 4000,
            connected: isoformat_utc(1_767_225_600_123_456),
        };
        let report = Report::new(d.scanner().outcome(), &session);
        let json = report.json.clone();
        let (before, after) = d.scanner().banner_bytes();
        let request = ScanRequest {
            host: "mud.example.org".into(),
            port: 4000,
            tls: TlsMode::Off,
            mode: ScanMode::Quick,
        };
        let actions = vec![
            Action::Start(request),
            Action::Connected(Connection {
                session: "s1".into(),
                host: "mud.example.org".into(),
                ip: "192.0.2.7".into(),
                port: 4000,
                tls: None,
            }),
            Action::Step {
                now: Timestamp(0),
                phase: d.scanner().phase(),
                events,
            },
            Action::Banner {
                bytes: banner::combine(&before, &after),
                encoding: "ascii".into(),
            },
            Action::Finished(Rc::new(report)),
        ];
        (actions, t, json)
    }

    fn live() -> (Rc<ScanState>, Transcript, String) {
        let (actions, t, json) = live_actions();
        (ScanState::replay(actions), t, json)
    }

    /// [`actions`] with the record parsed by the engine's parser.
    pub(crate) fn stored_page(s: &Summary, transcript: Option<&str>, record: &str) -> Vec<Action> {
        actions(s, transcript, record, pyjson::parse(record).ok().as_ref())
    }

    pub(crate) fn summary(source: &str) -> Summary {
        Summary {
            id: ID.into(),
            host: "mud.example.org".into(),
            port: 4000,
            ip: "192.0.2.7".into(),
            fingerprint: "ffffffffffffffff".into(),
            date: "2026-01-01T00:00:00+00:00".into(),
            config: "scan-type=quick encoding=ascii ttype=VT100 tls=0".into(),
            source: source.into(),
            shared_by: 3,
        }
    }

    /// Every timeline event, newest first, with its time (the replay's virtual clock runs
    /// the same windows the live driver did, so the whole timelines match).
    fn texts(s: &ScanState) -> Vec<String> {
        s.timeline.iter_rev().map(|e| format!("{e:?}")).collect()
    }

    #[test]
    fn a_permalinks_encodings_come_from_its_settings_and_record() {
        let record =
            pyjson::parse(r#"{"server-probe": {"session_data": {"encoding": "euc-kr"}}}"#).unwrap();
        assert_eq!(
            encodings(&summary("live"), Some(&record)),
            ["ascii".to_string(), "euc-kr".to_string()]
        );
        assert_eq!(encodings(&summary("live"), None), ["ascii".to_string()]);
        let mut bad = summary("live");
        bad.config = "garbage".into();
        assert!(encodings(&bad, None).is_empty());
    }

    #[test]
    fn a_permalink_replays_into_the_same_page() {
        let (live, t, json) = live();
        let page = ScanState::replay(stored_page(&summary("live"), Some(&t.to_text()), &json));
        assert_eq!(page.status, Status::Done);
        let (a, b) = (texts(&page), texts(&live));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "event {i} from the end");
        }
        assert_eq!(a.len(), b.len());
        assert_eq!(page.banner.plain_text(), live.banner.plain_text());
        assert!(page.banner.plain_text().contains("Welcome"));
        let (r, l) = (page.report.as_ref().unwrap(), live.report.as_ref().unwrap());
        assert_eq!(r.fingerprint, l.fingerprint);
        assert_eq!(
            r.json, json,
            "the record equals the stored one byte for byte"
        );
        assert_eq!(r.mssp, l.mssp);
        let stored = page.stored.as_ref().unwrap();
        assert_eq!(stored.date, "2026-01-01T00:00:00.123456+00:00");
        assert!(stored.notes.is_empty(), "{:?}", stored.notes);
        match &page.save {
            SaveStatus::Saved(s) => {
                assert_eq!((s.id.as_str(), s.others), (ID, 3));
                assert_eq!(s.fingerprint, l.fingerprint);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(page.request.as_ref().unwrap().mode, ScanMode::Quick);
    }

    #[test]
    fn a_different_stored_record_wins_with_a_note() {
        let (_, t, json) = live();
        let stored = json.replace("\"Seed\"", "\"Other\"");
        let page = ScanState::replay(stored_page(&summary("live"), Some(&t.to_text()), &stored));
        assert_eq!(page.report.as_ref().unwrap().json, stored);
        let notes = &page.stored.as_ref().unwrap().notes;
        assert!(
            notes[0].contains("differs from the stored one"),
            "{notes:?}"
        );
    }

    #[test]
    fn an_import_shows_its_record_without_a_timeline() {
        let (_, _, json) = live();
        let page = ScanState::replay(stored_page(&summary("import"), None, &json));
        assert!(page.timeline.is_empty());
        let r = page.report.as_ref().unwrap();
        assert_eq!(r.json, json);
        assert_eq!(r.fingerprint.len(), 16);
        assert!(r.mssp.iter().any(|m| m.name == "PLAYERS"), "{:?}", r.mssp);
        assert_eq!(r.protocols[0].1, crate::protocols::Support::Mssp);
        assert!(page.banner.plain_text().contains("Welcome"));
        let notes = &page.stored.as_ref().unwrap().notes;
        assert!(notes[0].contains("no transcript exists"), "{notes:?}");
        // A record that is not one still gives a page, with a sentence.
        let page = ScanState::replay(stored_page(&summary("import"), None, "not json"));
        assert!(page.report.is_none());
        assert_eq!(
            page.stored.as_ref().unwrap().date,
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(page.stored.as_ref().unwrap().notes.len(), 2);
    }

    #[test]
    fn bad_settings_or_transcript_fall_back_to_the_record() {
        let (_, t, json) = live();
        let mut s = summary("live");
        s.config = "scan-type=slow".into();
        let page = ScanState::replay(stored_page(&s, Some(&t.to_text()), &json));
        assert!(page.timeline.is_empty());
        assert!(page.stored.as_ref().unwrap().notes[0].contains("settings"));
        let page = ScanState::replay(stored_page(&summary("live"), Some("garbage"), &json));
        assert!(page.stored.as_ref().unwrap().notes[0].contains("transcript"));
        assert_eq!(page.report.as_ref().unwrap().json, json);
    }
}
