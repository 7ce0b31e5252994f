//! What the page shows, as a `Reducible`: engine events, proxy control messages and the
//! user's start/cancel become the status, the phase progress, the timeline, the banner, the
//! result and every failure as a sentence. No I/O here (the hook does that) and no markup
//! (the view does that), so all of it is tested natively.

use crate::protocols::{self, MsspRow, Support};
use crate::request::{ScanRequest, TlsMode};
use iacscope_shared::ansi::{self, Screen};
use iacscope_shared::event::push_coalesced;
use iacscope_shared::mssp_check;
use iacscope_shared::pyjson;
use iacscope_shared::record::{self, SessionInfo};
use iacscope_shared::telopt::{TelOpt, IAC, SB, SE};
use iacscope_shared::{Dir, Event, EventKind, Phase, ScanOutcome, Timestamp};
use std::rc::Rc;
use yew::Reducible;

/// Events kept for the timeline; later ones are counted, not stored (the engine's own
/// queue is bounded too, this bounds the page's memory over a long session).
pub const MAX_TIMELINE_EVENTS: usize = 20_000;
/// Events per shared chunk: a state update copies at most one chunk, never the timeline.
const CHUNK: usize = 256;

/// The scan's phases in order, for the progress bar.
pub const PHASES: [Phase; 8] = [
    Phase::Negotiating,
    Phase::Banner,
    Phase::Prompt,
    Phase::CapabilityProbe,
    Phase::WrongDirectionProbe,
    Phase::LoopDetection,
    Phase::MsspWait,
    Phase::Done,
];

/// The timeline: an append-only list of events in shared chunks.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    chunks: Vec<Rc<Vec<Event>>>,
    len: usize,
    /// Events not kept because [`MAX_TIMELINE_EVENTS`] was reached.
    pub dropped: usize,
    /// The options kept events name, one bit per option byte (for the option filter).
    seen: [u64; 4],
}

/// Equal when the same chunks are shared: a reduce that adds an event copies (or adds) a
/// chunk, so this is exact for states that come from one another, and costs no event
/// comparison when Yew compares properties.
impl PartialEq for Timeline {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.dropped == other.dropped
            && self
                .chunks
                .iter()
                .zip(&other.chunks)
                .all(|(a, b)| Rc::ptr_eq(a, b))
    }
}

impl Timeline {
    /// Appends `e`, merging in-band data as the engine's `push_coalesced` does.
    pub fn push(&mut self, e: Event) {
        let coalesces = matches!(
            (self.chunks.last().and_then(|c| c.last()), &e.kind),
            (Some(Event { at, kind: EventKind::Data { dir, .. } }), EventKind::Data { dir: d2, .. })
                if *at == e.at && dir == d2
        );
        if !coalesces && self.len >= MAX_TIMELINE_EVENTS {
            self.dropped += 1;
            return;
        }
        if let Some(TelOpt(b)) = option(&e.kind) {
            self.seen[usize::from(b / 64)] |= 1 << (b % 64);
        }
        match self.chunks.last_mut() {
            Some(c) if coalesces || c.len() < CHUNK => {
                let before = c.len();
                push_coalesced(Rc::make_mut(c), e);
                self.len += c.len() - before;
            }
            _ => {
                self.chunks.push(Rc::new(vec![e]));
                self.len += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Newest first.
    pub fn iter_rev(&self) -> impl Iterator<Item = &Event> {
        self.chunks.iter().rev().flat_map(|c| c.iter().rev())
    }

    /// The last `n` events that pass `filter`, oldest first, each with its position in
    /// the timeline (a stable key for the view).
    pub fn last(&self, filter: Filter, n: usize) -> Vec<(usize, &Event)> {
        let mut v: Vec<(usize, &Event)> = self
            .iter_rev()
            .enumerate()
            .map(|(back, e)| (self.len - 1 - back, e))
            .filter(|(_, e)| filter.keeps(e))
            .take(n)
            .collect();
        v.reverse();
        v
    }

    /// Up to `n` events that pass `filter` and sit before position `before` (all of them
    /// when `None`), newest last, each with its position; and whether older ones pass too.
    /// The view pages back through the timeline with this, `n` rows at a time.
    pub fn window(
        &self,
        filter: RowFilter,
        n: usize,
        before: Option<usize>,
    ) -> (Vec<(usize, &Event)>, bool) {
        let end = before.unwrap_or(self.len).min(self.len);
        let mut v: Vec<(usize, &Event)> = self
            .iter_rev()
            .skip(self.len - end)
            .enumerate()
            .map(|(back, e)| (end - 1 - back, e))
            .filter(|(_, e)| filter.keeps(e))
            .take(n + 1)
            .collect();
        let older = v.len() > n;
        v.truncate(n);
        v.reverse();
        (v, older)
    }

    /// The options kept events name, by option byte.
    pub fn options(&self) -> impl Iterator<Item = TelOpt> + '_ {
        (0..=255u8)
            .filter(|b| self.seen[usize::from(b / 64)] & (1 << (b % 64)) != 0)
            .map(TelOpt)
    }
}

/// Which events the timeline shows: a direction, and optionally only one option's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowFilter {
    pub dir: Filter,
    pub opt: Option<TelOpt>,
}

impl RowFilter {
    /// With an option chosen, only its events pass, and phase marks so the timeline keeps
    /// its structure.
    pub fn keeps(self, e: &Event) -> bool {
        self.dir.keeps(e)
            && match self.opt {
                None => true,
                Some(o) => {
                    option(&e.kind) == Some(o) || matches!(e.kind, EventKind::PhaseStart { .. })
                }
            }
    }
}

/// The option an event is about, when it has one.
pub fn option(k: &EventKind) -> Option<TelOpt> {
    match k {
        EventKind::Negotiation { opt, .. }
        | EventKind::Subnegotiation { opt, .. }
        | EventKind::ProbeResult { opt, .. } => Some(*opt),
        _ => None,
    }
}

/// The bytes of a negotiation, command or sub-negotiation as they are on the wire (IAC
/// doubled inside the payload), or a data event's in-band bytes as the engine kept them
/// (after IAC unescaping and decompression); `None` for engine events.
pub fn raw_bytes(k: &EventKind) -> Option<Vec<u8>> {
    match k {
        EventKind::Negotiation { verb, opt, .. } => Some(vec![IAC, verb.byte(), opt.0]),
        EventKind::Command { cmd, .. } => Some(vec![IAC, *cmd]),
        EventKind::Subnegotiation { opt, payload, .. } => {
            let mut v = vec![IAC, SB, opt.0];
            for &b in payload {
                v.push(b);
                if b == IAC {
                    v.push(IAC);
                }
            }
            v.extend([IAC, SE]);
            Some(v)
        }
        EventKind::Data { bytes, .. } => Some(bytes.clone()),
        _ => None,
    }
}

/// Bytes as lower-case hex pairs separated by spaces: `ff fb 18`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Which events the timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    Received,
    Sent,
}

impl Filter {
    /// Events with a direction pass when it matches; phase marks, notes and violations
    /// always pass, so the timeline keeps its structure.
    pub fn keeps(self, e: &Event) -> bool {
        match (self, direction(&e.kind)) {
            (Filter::All, _) | (_, None) => true,
            (Filter::Received, Some(d)) => d == Dir::Recv,
            (Filter::Sent, Some(d)) => d == Dir::Sent,
        }
    }
}

/// The direction of an event, when it has one.
pub fn direction(k: &EventKind) -> Option<Dir> {
    match k {
        EventKind::Negotiation { dir, .. }
        | EventKind::Command { dir, .. }
        | EventKind::Subnegotiation { dir, .. }
        | EventKind::Data { dir, .. } => Some(*dir),
        EventKind::Closed => Some(Dir::Recv),
        _ => None,
    }
}

/// Where the scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Idle,
    /// Waiting for the proxy's `connected` message.
    Connecting,
    Scanning,
    Done,
    Failed,
    Cancelled,
}

/// The proxy's `connected` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub session: String,
    pub host: String,
    pub ip: String,
    pub port: u16,
    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384, CN=…` or `None` without TLS.
    pub tls: Option<String>,
}

/// The finished scan, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub fingerprint: String,
    pub offered: Vec<String>,
    pub requested: Vec<String>,
    pub refused: Vec<String>,
    pub wrong_direction: Vec<String>,
    pub directional_refusals: Vec<String>,
    pub looped: Vec<String>,
    pub protocols: Vec<(&'static str, Support)>,
    pub mssp: Vec<MsspRow>,
    /// What is wrong with the server's MSSP (checked against the scan's own time).
    pub mssp_findings: Vec<mssp_check::Finding>,
    /// The banner's bytes (before and after the return), for "Decode as".
    pub banner: Rc<Vec<u8>>,
    /// The session encoding at the end, and what chose it (`CHARSET`, `prompt`, `flag`, …;
    /// `record` for a stored record without a transcript).
    pub encoding: String,
    pub encoding_source: String,
    /// The scanned host (for the MSSP TLS-port check).
    pub host: String,
    /// Ports the MSSP names as speaking TLS (`mssp_check::tls_ports`).
    pub tls_claims: Vec<(String, u16)>,
    /// The record as telnetlib3 saves it.
    pub json: String,
    /// `<fingerprint>/<session-hash>.json`, the record's place in a data directory.
    pub path: String,
    /// `<session-hash>.json`.
    pub file_name: String,
}

impl Report {
    /// Builds the report of a finished scan; `connected` is the `sessions[].connected` time.
    /// The server's MSSP `NAME` (its first value), trimmed, if it sent a non-empty one: the
    /// page's title.
    pub fn server_name(&self) -> Option<&str> {
        self.mssp
            .iter()
            .find(|r| r.name == "NAME")
            .and_then(|r| r.values.first())
            .map(|(v, _)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn new(outcome: &ScanOutcome, session: &SessionInfo) -> Report {
        let banner = [&outcome.banner_before[..], &outcome.banner_after[..]].concat();
        let mut r = Report::from_parts(
            &outcome.fingerprint,
            &outcome.fingerprint_data,
            &outcome.session_data,
            &banner,
            pyjson::to_pretty(&outcome.record(session)),
            session,
        );
        r.encoding.clone_from(&outcome.encoding);
        outcome.encoding_source.clone_into(&mut r.encoding_source);
        r
    }

    /// The report of a stored record with no transcript to replay (an imported scan): the
    /// tables come from its `fingerprint-data` and `session_data`, and `json` is shown as
    /// stored. `None` when the record lacks `server-probe`.
    pub fn from_record(
        record: &pyjson::Value,
        json: String,
        session: &SessionInfo,
    ) -> Option<Report> {
        let probe = record.as_dict()?.get("server-probe")?;
        let get = |k: &str| probe.as_dict().and_then(|d| d.get(k));
        let fingerprint = get("fingerprint")?.as_pystr()?.to_string_lossy();
        let empty = pyjson::Value::Dict(pyjson::Dict::new());
        let fp = get("fingerprint-data").unwrap_or(&empty);
        let sd = get("session_data").unwrap_or(&empty);
        let banner: Vec<u8> = ["banner_before_return", "banner_after_return"]
            .iter()
            .filter_map(|k| sd.as_dict()?.get(k)?.as_pystr())
            .flat_map(|t| t.to_string_lossy().into_bytes())
            .collect();
        Some(Report::from_parts(
            &fingerprint,
            fp,
            sd,
            &banner,
            json,
            session,
        ))
    }

    fn from_parts(
        fingerprint: &str,
        fp: &pyjson::Value,
        session_data: &pyjson::Value,
        banner: &[u8],
        json: String,
        session: &SessionInfo,
    ) -> Report {
        let list = |k: &str| -> Vec<String> {
            fp.as_dict()
                .and_then(|d| d.get(k))
                .and_then(pyjson::Value::as_list)
                .map(|l| {
                    l.iter()
                        .filter_map(pyjson::Value::as_pystr)
                        .map(|s| s.to_string_lossy())
                        .collect()
                })
                .unwrap_or_default()
        };
        let session_hash = record::session_hash(&session.host, &session.ip, session.port);
        // UPTIME "in the future" is judged against when the scan ran, not when it is viewed.
        let scanned_at = record::parse_isoformat(&session.connected).map_or(0, |m| m / 1_000_000);
        Report {
            fingerprint: fingerprint.to_owned(),
            offered: list("offered-options"),
            requested: list("requested-options"),
            refused: list("refused-options"),
            wrong_direction: list("wrong-direction-offered"),
            directional_refusals: list("directional-refusals"),
            looped: list("looped-negotiation"),
            protocols: protocols::protocol_table(session_data, fp, banner),
            mssp: protocols::mssp_rows(session_data),
            mssp_findings: mssp_check::check_record(
                fp,
                session_data,
                &session.host,
                session.port,
                scanned_at,
            ),
            banner: Rc::new(banner.to_vec()),
            encoding: session_data
                .as_dict()
                .and_then(|d| d.get("encoding"))
                .and_then(pyjson::Value::as_pystr)
                .map(|e| e.to_string_lossy())
                .unwrap_or_default(),
            encoding_source: "record".into(),
            host: session.host.clone(),
            tls_claims: mssp_check::tls_ports(session_data),
            json,
            path: format!("{fingerprint}/{session_hash}.json"),
            file_name: format!("{session_hash}.json"),
        }
    }
}

/// The proxy's answer to a save.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The scan id (`/s/<id>`).
    pub id: String,
    pub host: String,
    pub port: u16,
    /// The fingerprint of the stored record (the proxy's replay).
    pub fingerprint: String,
    /// Other servers with this fingerprint.
    pub others: i64,
    /// Whether the fingerprint the page computed equals the stored one (`None`: not asked).
    pub browser_agrees: Option<bool>,
}

/// Where saving the finished scan is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveStatus {
    /// Nothing to save (no scan finished, or this is a stored scan).
    None,
    Saving,
    Saved(Rc<Saved>),
    /// Why the save failed, as a sentence.
    Failed(String),
}

/// A stored scan opened from its permalink (nothing was scanned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// When it was scanned (the record's `connected` time).
    pub date: String,
    /// `live` (replayed from the proxy's transcript) or `import`.
    pub source: String,
    /// What the reader should know about how the page was built, as sentences.
    pub notes: Vec<String>,
}

/// Facts seen live in the engine's events, for the summary card before the report exists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveFacts {
    /// The latest MSSP the server sent, decoded with the session encoding.
    pub mssp: Option<pyjson::Dict>,
    /// Options the server said `WILL` for, in arrival order (each once).
    pub offered: Vec<TelOpt>,
    /// The session encoding of the latest banner render.
    pub encoding: String,
    /// MSDP, GMCP, ZMP and ATCP messages from the server, decoded, in arrival order (the
    /// first [`MAX_DECODED`]).
    pub decoded: Vec<(TelOpt, iacscope_shared::mudsb::Decoded)>,
}

/// Decoded MUD messages kept for the page (a chatty server sends thousands).
pub const MAX_DECODED: usize = 200;

/// Everything the page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanState {
    pub request: Option<ScanRequest>,
    pub status: Status,
    pub connection: Option<Connection>,
    /// The engine's current phase.
    pub phase: Phase,
    /// Time since the connect, as of the latest engine step.
    pub elapsed: Timestamp,
    pub timeline: Timeline,
    pub violations: usize,
    pub banner: Rc<Screen>,
    pub report: Option<Rc<Report>>,
    /// Why the scan failed or ended early, as a sentence.
    pub failure: Option<String>,
    /// Something worth knowing that is not a failure (the server closed early).
    pub notice: Option<String>,
    /// Saving the finished scan (a permalink).
    pub save: SaveStatus,
    /// Set when the page shows a stored scan rather than a live one.
    pub stored: Option<Rc<Stored>>,
    /// What the summary card shows before the report.
    pub live: LiveFacts,
    /// The certificate did not verify: offer the scan again without verification.
    pub retry_insecure: bool,
}

impl Default for ScanState {
    fn default() -> Self {
        ScanState {
            request: None,
            status: Status::Idle,
            connection: None,
            phase: Phase::Negotiating,
            elapsed: Timestamp(0),
            timeline: Timeline::default(),
            violations: 0,
            banner: Rc::new(Screen::default()),
            report: None,
            failure: None,
            notice: None,
            save: SaveStatus::None,
            stored: None,
            live: LiveFacts::default(),
            retry_insecure: false,
        }
    }
}

/// What can happen to the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The user (or a deep link) started a scan; the socket is opening.
    Start(ScanRequest),
    /// The form or deep link was wrong.
    Invalid(String),
    /// The proxy connected to the server; the engine starts at t = 0.
    Connected(Connection),
    /// The engine ran: its events and phase at `now`.
    Step {
        now: Timestamp,
        phase: Phase,
        events: Vec<Event>,
    },
    /// Time passes (the elapsed-time display).
    Tick(Timestamp),
    /// The banner so far, decoded with the session encoding.
    Banner { bytes: Vec<u8>, encoding: String },
    /// The scan is over.
    Finished(Rc<Report>),
    /// A proxy `error` message (the connection was not made).
    ProxyError { code: String, message: String },
    /// A proxy `closed` message.
    ProxyClosed {
        by: String,
        code: String,
        reason: String,
    },
    /// The websocket failed or closed without a `closed` message.
    SocketLost,
    /// The user pressed cancel.
    Cancel,
    /// The finished scan is being saved.
    Saving,
    /// The proxy stored it.
    Saved(Rc<Saved>),
    /// The save failed (a sentence; the rest of the page stays).
    SaveFailed(String),
    /// The page shows a stored scan (its permalink was opened).
    Stored(Rc<Stored>),
}

impl ScanState {
    /// Whether a scan is under way (the cancel button shows).
    pub fn running(&self) -> bool {
        matches!(self.status, Status::Connecting | Status::Scanning)
    }

    /// A state after `actions`, for tests and canned pages.
    pub fn replay(actions: impl IntoIterator<Item = Action>) -> Rc<ScanState> {
        actions
            .into_iter()
            .fold(Rc::new(ScanState::default()), |s, a| s.reduce(a))
    }

    fn fail(&mut self, sentence: String) {
        if self.failure.is_none() {
            self.failure = Some(sentence);
        }
    }
}

impl Reducible for ScanState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = Rc::unwrap_or_clone(self);
        match action {
            Action::Start(req) => {
                s = ScanState {
                    request: Some(req),
                    status: Status::Connecting,
                    ..ScanState::default()
                };
            }
            Action::Invalid(why) => {
                s = ScanState {
                    request: s.request,
                    status: Status::Failed,
                    failure: Some(why),
                    ..ScanState::default()
                };
            }
            Action::Connected(c) => {
                s.connection = Some(c);
                s.status = Status::Scanning;
            }
            Action::Step { now, phase, events } => {
                s.elapsed = s.elapsed.max(now);
                let mut current = s.phase;
                for e in events {
                    match &e.kind {
                        EventKind::PhaseStart { phase } => current = *phase,
                        EventKind::Violation { .. } => s.violations += 1,
                        EventKind::Negotiation {
                            dir: Dir::Recv,
                            verb: iacscope_shared::telopt::Verb::Will,
                            opt,
                        } if !s.live.offered.contains(opt) => s.live.offered.push(*opt),
                        EventKind::Subnegotiation {
                            dir: Dir::Recv,
                            opt: TelOpt::MSSP,
                            payload,
                            ..
                        } => {
                            let enc = if s.live.encoding.is_empty() {
                                "utf-8"
                            } else {
                                s.live.encoding.as_str()
                            };
                            s.live.mssp = Some(iacscope_shared::mud::mssp_decode(payload, enc));
                        }
                        EventKind::Subnegotiation {
                            dir: Dir::Recv,
                            opt,
                            payload,
                            ..
                        } if s.live.decoded.len() < MAX_DECODED => {
                            if let Some(d) = iacscope_shared::mudsb::decode(*opt, payload) {
                                s.live.decoded.push((*opt, crate::api::parse_gmcp(d)));
                            }
                        }
                        EventKind::Closed if current != Phase::Done => {
                            s.notice = Some(format!(
                                "The server closed the connection during the {} phase, {:.1} s \
                                 after connecting. The scan finished with what it had sent until \
                                 then.",
                                current.label(),
                                e.at.as_secs_f64()
                            ));
                        }
                        _ => {}
                    }
                    s.timeline.push(e);
                }
                s.phase = phase;
            }
            Action::Tick(now) => {
                if s.status == Status::Scanning {
                    s.elapsed = s.elapsed.max(now);
                }
            }
            Action::Banner { bytes, encoding } => {
                s.banner = Rc::new(ansi::render(&bytes, &encoding));
                s.live.encoding = encoding;
            }
            Action::Finished(report) => {
                s.report = Some(report);
                s.phase = Phase::Done;
                if s.status != Status::Cancelled {
                    s.status = Status::Done;
                }
            }
            Action::ProxyError { code, message } => {
                // A certificate that did not verify: the page offers the same scan without
                // verification (one click, never automatically).
                s.retry_insecure = code == "tls_failure"
                    && message.starts_with("The certificate")
                    && s.request.as_ref().is_some_and(|r| r.tls == TlsMode::On);
                s.fail(error_sentence(&code, &message));
                s.status = Status::Failed;
            }
            Action::ProxyClosed { by, code, reason } => {
                if let Some(why) = closed_sentence(&by, &code, &reason) {
                    s.fail(why);
                }
            }
            Action::SocketLost => {
                if s.status == Status::Connecting {
                    s.fail(
                        "Could not reach the iacscope proxy (its /ws endpoint). Is `iacscope \
                         serve` running and serving this page?"
                            .into(),
                    );
                    s.status = Status::Failed;
                } else if s.status == Status::Scanning {
                    s.fail(
                        "The connection to the iacscope proxy was lost; the scan finished with \
                         what had arrived."
                            .into(),
                    );
                }
            }
            Action::Saving => s.save = SaveStatus::Saving,
            Action::Saved(saved) => s.save = SaveStatus::Saved(saved),
            Action::SaveFailed(why) => s.save = SaveStatus::Failed(why),
            Action::Stored(stored) => s.stored = Some(stored),
            Action::Cancel => {
                if s.running() {
                    s.status = Status::Cancelled;
                    s.fail(format!(
                        "Scan cancelled after {:.1} s; what was captured is shown below.",
                        s.elapsed.as_secs_f64()
                    ));
                }
            }
        }
        Rc::new(s)
    }
}

/// A proxy `error` message as a sentence, by its `code` (proxy/src/serve/relay.rs).
pub fn error_sentence(code: &str, message: &str) -> String {
    let lead = match code {
        "bad_host" => "That is not a host name the proxy accepts",
        "bad_port" => "That is not a valid port",
        "bad_request" => "The proxy did not understand the request",
        "refused_by_policy" => "The proxy does not connect to that address",
        // The message names the limit and what to do.
        "limit_reached" => "A limit of the proxy refused the scan",
        "dns_failure" => "The server's name could not be resolved",
        "connection_refused" => "The server refused the connection (nothing listens on that port)",
        "timeout" => "The server did not answer the connection in time",
        "network_error" => "The server could not be reached",
        // The proxy's TLS messages are whole sentences (the certificate's verdict, or why the
        // handshake failed).
        "tls_failure" if message.ends_with('.') => return message.to_owned(),
        "tls_failure" => "The TLS handshake failed",
        "shutdown" => "The proxy is shutting down; try again later",
        "forbidden_origin" => "This page's address is not one the proxy accepts",
        _ => return format!("The proxy reported an error ({code}): {message}"),
    };
    if message.is_empty() {
        format!("{lead}.")
    } else {
        format!("{lead}: {message}.")
    }
}

/// Saves are retried this many times while the proxy still has the session open (it
/// answers `409 session_open` until its relay has closed).
pub const SAVE_RETRIES: u32 = 6;

/// The first wait before a retried save; each retry doubles it.
pub const SAVE_BACKOFF_MS: u32 = 150;

/// A failed save (`status` 0: the request did not complete) as a sentence, by the proxy's
/// error `code` (proxy/src/serve/save.rs).
pub fn save_error_sentence(status: u16, code: &str, message: &str) -> String {
    let why = match (status, code) {
        (0, _) => "the proxy could not be reached".to_owned(),
        (_, "rate_limited") | (429, _) => {
            "too many results were saved from this address; try again in a minute".to_owned()
        }
        (_, "too_large") | (413, _) if message.is_empty() => {
            "the session's transcript is too large to store".to_owned()
        }
        // The proxy's sentence names the limit and what to do.
        (_, "too_large") | (413, _) => {
            format!("the session's transcript is too large to store ({message})")
        }
        (_, "session_open") => "the proxy did not close the session in time".to_owned(),
        (_, "no_session") => "the proxy no longer has this session's transcript".to_owned(),
        (s, _) if s >= 500 => "the proxy's store failed".to_owned(),
        _ if message.is_empty() => format!("the proxy answered {status} {code}"),
        _ => format!("the proxy answered {status} {code}: {message}"),
    };
    format!("This result was not saved: {why}. Everything shown here stays valid.")
}

/// "This fingerprint is shared by N other servers", as the page words it.
pub fn shared_sentence(others: i64) -> String {
    match others {
        i64::MIN..=0 => "This fingerprint is shared by no other server yet.".into(),
        1 => "This fingerprint is shared by 1 other server.".into(),
        n => format!("This fingerprint is shared by {n} other servers."),
    }
}

/// A proxy `closed` message as a sentence, or `None` when it is not a failure (the server
/// closing is reported by the engine's own event, the client closing is us).
pub fn closed_sentence(by: &str, code: &str, reason: &str) -> Option<String> {
    if by != "proxy" {
        return None;
    }
    let lead = match code {
        "idle_timeout" => "The proxy ended the session because nothing was sent for too long",
        "duration_limit" => "The proxy ended the session at its time limit",
        "bytes_limit" => "The proxy ended the session at its data limit",
        "message_too_big" => "The proxy ended the session: a message was too big",
        "shutdown" => "The proxy is shutting down and ended the session",
        "not_telnet" => "The proxy ended the session: that port speaks another protocol",
        "idle_yield" => {
            "The proxy ended the idle session because another user was waiting for this server"
        }
        _ => return Some(format!("The proxy ended the session ({code}): {reason}.")),
    };
    Some(format!(
        "{lead} ({reason}). What was captured is shown below."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{conn, ev, report_after, req};
    use iacscope_shared::telopt::{TelOpt, Verb};

    fn neg(ms: u64, dir: Dir, verb: Verb, opt: TelOpt) -> Event {
        ev(ms, EventKind::Negotiation { dir, verb, opt })
    }

    #[test]
    fn start_connect_and_events() {
        let s = ScanState::replay([
            Action::Start(req()),
            Action::Connected(conn()),
            Action::Step {
                now: Timestamp(12_000),
                phase: Phase::Negotiating,
                events: vec![
                    ev(
                        0,
                        EventKind::PhaseStart {
                            phase: Phase::Negotiating,
                        },
                    ),
                    neg(0, Dir::Sent, Verb::Will, TelOpt::TTYPE),
                    neg(12, Dir::Recv, Verb::Do, TelOpt::TTYPE),
                    ev(12, EventKind::Violation { text: "odd".into() }),
                ],
            },
        ]);
        assert_eq!(s.status, Status::Scanning);
        assert_eq!(s.timeline.len(), 4);
        assert_eq!(s.violations, 1);
        assert_eq!(s.elapsed, Timestamp(12_000));
        assert_eq!(s.timeline.last(Filter::Received, 10).len(), 3);
        assert_eq!(s.timeline.last(Filter::Sent, 10).len(), 3);
        assert_eq!(s.timeline.last(Filter::All, 2).len(), 2);
        let last = s.timeline.last(Filter::All, 1);
        assert_eq!(last[0].0, 3);
        assert_eq!(last[0].1.kind, EventKind::Violation { text: "odd".into() });
        let sent: Vec<usize> = s
            .timeline
            .last(Filter::Sent, 10)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(sent, [0, 1, 3]);
        // A new scan starts from nothing.
        let s = s.reduce(Action::Start(req()));
        assert!(s.timeline.is_empty());
        assert_eq!(s.status, Status::Connecting);
    }

    #[test]
    fn data_coalesces_and_the_timeline_is_bounded() {
        let mut t = Timeline::default();
        let data = |ms, b: &[u8]| {
            ev(
                ms,
                EventKind::Data {
                    dir: Dir::Recv,
                    bytes: b.to_vec(),
                },
            )
        };
        t.push(data(1, b"ab"));
        t.push(data(1, b"cd"));
        t.push(data(2, b"ef"));
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.last(Filter::All, 5)[0].1.kind,
            EventKind::Data {
                dir: Dir::Recv,
                bytes: b"abcd".to_vec()
            }
        );
        for i in 0..MAX_TIMELINE_EVENTS + 10 {
            t.push(neg(i as u64 + 10, Dir::Sent, Verb::Do, TelOpt::SGA));
        }
        assert_eq!(t.len(), MAX_TIMELINE_EVENTS);
        assert_eq!(t.dropped, 12);
        // Sharing: cloning the state copies chunk pointers, not events.
        let u = t.clone();
        assert!(Rc::ptr_eq(&t.chunks[0], &u.chunks[0]));
    }

    #[test]
    fn option_filter_paging_and_hex() {
        let mut t = Timeline::default();
        t.push(ev(
            0,
            EventKind::PhaseStart {
                phase: Phase::Negotiating,
            },
        ));
        for i in 0..10 {
            let opt = if i % 2 == 0 {
                TelOpt::TTYPE
            } else {
                TelOpt::NAWS
            };
            t.push(neg(i + 1, Dir::Recv, Verb::Do, opt));
        }
        t.push(ev(
            20,
            EventKind::Subnegotiation {
                dir: Dir::Sent,
                opt: TelOpt::TTYPE,
                payload: vec![0, b'X', IAC],
                meaning: "TTYPE IS \"X\"".into(),
            },
        ));
        t.push(ev(21, EventKind::Note { text: "n".into() }));
        assert_eq!(
            t.options().collect::<Vec<_>>(),
            [TelOpt::TTYPE, TelOpt::NAWS]
        );
        let all = RowFilter {
            dir: Filter::All,
            opt: None,
        };
        let ttype = RowFilter {
            dir: Filter::All,
            opt: Some(TelOpt::TTYPE),
        };
        let idx = |v: &[(usize, &Event)]| v.iter().map(|r| r.0).collect::<Vec<_>>();
        // The phase mark stays, the note and NAWS rows go.
        let (rows, older) = t.window(ttype, 100, None);
        assert_eq!(idx(&rows), [0, 1, 3, 5, 7, 9, 11]);
        assert!(!older);
        let sent_ttype = RowFilter {
            dir: Filter::Sent,
            opt: Some(TelOpt::TTYPE),
        };
        assert_eq!(idx(&t.window(sent_ttype, 100, None).0), [0, 11]);
        // Paging: the newest 5, then the 5 before the oldest shown, then the rest.
        let (rows, older) = t.window(all, 5, None);
        assert_eq!(idx(&rows), [8, 9, 10, 11, 12]);
        assert!(older);
        let (rows, older) = t.window(all, 5, Some(8));
        assert_eq!(idx(&rows), [3, 4, 5, 6, 7]);
        assert!(older);
        let (rows, older) = t.window(all, 5, Some(3));
        assert_eq!(idx(&rows), [0, 1, 2]);
        assert!(!older);
        assert!(t.window(all, 5, Some(0)).0.is_empty());
        assert_eq!(idx(&t.window(ttype, 2, Some(8)).0), [5, 7]);
        // Raw bytes: IAC is doubled inside a sub-negotiation; engine events have none.
        let kinds: Vec<Option<String>> = t
            .iter_rev()
            .take(3)
            .map(|e| raw_bytes(&e.kind).map(|b| hex(&b)))
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                Some("ff fa 18 00 58 ff ff ff f0".into()),
                Some("ff fd 1f".into())
            ]
        );
        assert_eq!(
            raw_bytes(&EventKind::Command {
                dir: Dir::Recv,
                cmd: 249
            }),
            Some(vec![IAC, 249])
        );
        assert_eq!(hex(b""), "");
        assert_eq!(hex(b"\x00\x7f\n"), "00 7f 0a");
    }

    #[test]
    fn saves_are_tracked_and_explained() {
        let saved = Rc::new(Saved {
            id: "0123456789abcdef0123456789abcdef".into(),
            host: "mud.example.org".into(),
            port: 4000,
            fingerprint: "a1b2c3d4e5f60718".into(),
            others: 2,
            browser_agrees: Some(true),
        });
        let s = ScanState::replay([Action::Start(req()), Action::Saving]);
        assert_eq!(s.save, SaveStatus::Saving);
        let s = s.reduce(Action::Saved(saved.clone()));
        assert_eq!(s.save, SaveStatus::Saved(saved));
        let s = s.reduce(Action::SaveFailed("x".into()));
        assert_eq!(s.save, SaveStatus::Failed("x".into()));
        // A new scan forgets the old save.
        assert_eq!(s.reduce(Action::Start(req())).save, SaveStatus::None);
        assert!(save_error_sentence(429, "rate_limited", "").contains("too many results"));
        assert!(save_error_sentence(413, "too_large", "x").contains("too large"));
        assert!(save_error_sentence(500, "internal", "storage error").contains("store failed"));
        assert!(save_error_sentence(0, "", "").contains("could not be reached"));
        assert_eq!(
            save_error_sentence(400, "bad_config", "encoding: a codec name"),
            "This result was not saved: the proxy answered 400 bad_config: encoding: a codec \
             name. Everything shown here stays valid."
        );
        assert_eq!(
            shared_sentence(0),
            "This fingerprint is shared by no other server yet."
        );
        assert_eq!(
            shared_sentence(1),
            "This fingerprint is shared by 1 other server."
        );
        assert_eq!(
            shared_sentence(7),
            "This fingerprint is shared by 7 other servers."
        );
    }

    #[test]
    fn server_closing_early_is_a_notice() {
        let s = ScanState::replay([
            Action::Start(req()),
            Action::Connected(conn()),
            Action::Step {
                now: Timestamp(1_500_000),
                phase: Phase::Banner,
                events: vec![
                    ev(
                        1000,
                        EventKind::PhaseStart {
                            phase: Phase::Banner,
                        },
                    ),
                    ev(1500, EventKind::Closed),
                ],
            },
            Action::ProxyClosed {
                by: "server".into(),
                code: "server_closed".into(),
                reason: "the server closed the connection".into(),
            },
        ]);
        assert_eq!(
            s.notice.as_deref(),
            Some(
                "The server closed the connection during the banner phase, 1.5 s after \
                 connecting. The scan finished with what it had sent until then."
            )
        );
        assert_eq!(s.failure, None);
    }

    #[test]
    fn failures_are_sentences() {
        let s = ScanState::replay([
            Action::Start(req()),
            Action::ProxyError {
                code: "connection_refused".into(),
                message: "connection refused by 192.0.2.7:4000".into(),
            },
        ]);
        assert_eq!(s.status, Status::Failed);
        assert_eq!(
            s.failure.as_deref(),
            Some(
                "The server refused the connection (nothing listens on that port): connection \
                 refused by 192.0.2.7:4000."
            )
        );
        // A certificate verdict is the proxy's own sentence, with a retry offered only for a
        // verified-TLS request.
        let cert = "The certificate (CN=x) expired on 2002-01-01 00:00:00 UTC. Scan again \
                    without verification to see the server anyway.";
        let tls_error = || Action::ProxyError {
            code: "tls_failure".into(),
            message: cert.into(),
        };
        let tls_req = ScanRequest {
            tls: TlsMode::On,
            ..req()
        };
        let s = ScanState::replay([Action::Start(tls_req), tls_error()]);
        assert_eq!(s.failure.as_deref(), Some(cert));
        assert!(s.retry_insecure);
        let s = ScanState::replay([Action::Start(req()), tls_error()]);
        assert!(
            !s.retry_insecure,
            "plain requests are not retried without verification"
        );
        let s = ScanState::replay([Action::Start(req()), Action::SocketLost]);
        assert!(s.failure.as_deref().unwrap().contains("iacscope serve"));
        assert_eq!(
            error_sentence("weird", "x"),
            "The proxy reported an error (weird): x"
        );
        assert_eq!(closed_sentence("client", "client_closed", ""), None);
        assert!(closed_sentence("proxy", "idle_timeout", "idle for 60 s")
            .unwrap()
            .contains("nothing was sent"));
        let why = "the server's first bytes are those of an HTTP server, not telnet";
        let s = closed_sentence("proxy", "not_telnet", why).unwrap();
        assert!(s.contains("another protocol") && s.contains(why), "{s}");
        let s = error_sentence("forbidden_origin", "use --allowed-origin");
        assert!(
            s.contains("not one the proxy accepts") && s.contains("--allowed-origin"),
            "{s}"
        );
        let s = save_error_sentence(413, "too_large", "transcript_max_bytes: cut at 1048576");
        assert!(s.contains("transcript_max_bytes"), "{s}");
        let s = ScanState::replay([
            Action::Start(req()),
            Action::Connected(conn()),
            Action::Step {
                now: Timestamp(2_000_000),
                phase: Phase::Banner,
                events: vec![],
            },
            Action::Tick(Timestamp(2_040_000)),
            Action::Cancel,
            Action::Tick(Timestamp(9_000_000)),
        ]);
        assert_eq!(s.status, Status::Cancelled);
        assert_eq!(
            s.failure.as_deref(),
            Some("Scan cancelled after 2.0 s; what was captured is shown below.")
        );
        assert!(!s.running());
    }

    #[test]
    fn a_finished_scan_makes_a_report() {
        let r = report_after(
            b"\xff\xfb\x46\xff\xfa\x46\x01NAME\x02Seed\x01WEBSITE\x02https://x.example/\x01MCCP\x021\xff\xf0\x1b[31mHello\x1b[0m\r\n",
        );
        assert_eq!(r.fingerprint.len(), 16);
        assert_eq!(r.path, format!("{}/{}", r.fingerprint, r.file_name));
        assert!(r.json.contains("\"server-probe\""), "{}", r.json);
        assert_eq!(r.protocols[0], ("MSSP", Support::Mssp));
        assert_eq!(r.protocols[3], ("MCCP", Support::Mssp));
        assert!(r.offered.contains(&"MSSP".to_string()), "{:?}", r.offered);
        let web = r.mssp.iter().find(|m| m.name == "WEBSITE").unwrap();
        assert_eq!(web.values, [("https://x.example/".to_string(), true)]);
        assert_eq!(r.server_name(), Some("Seed"), "the page title");
        let mut unnamed = r.clone();
        unnamed.mssp.retain(|m| m.name != "NAME");
        assert_eq!(unnamed.server_name(), None);
        let s = ScanState::replay([
            Action::Start(req()),
            Action::Banner {
                bytes: b"\x1b[31mHello".to_vec(),
                encoding: "ascii".into(),
            },
            Action::Finished(Rc::new(r)),
        ]);
        assert_eq!(s.status, Status::Done);
        assert_eq!(s.banner.plain_text(), "Hello");
    }
}
