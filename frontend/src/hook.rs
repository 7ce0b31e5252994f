//! `use_scan`: the one hook that owns the proxy WebSocket and the engine. It opens
//! `/ws?host=…`, starts the `Scanner` at t = 0 on the proxy's `connected` message, feeds it
//! binary frames, runs its timer, sends what it writes, and dispatches what happened to the
//! reducer. The clock is `performance.now()` relative to the connect (never
//! `std::time::Instant`, which panics on wasm32). When the scan is done it asks the proxy to
//! save it (a permalink), retrying while the proxy still has the session open. Rendering is
//! the view's job.

use crate::api;
use crate::banner;
use crate::codecs;
use crate::driver::{Driver, Step};
use crate::request::ScanRequest;
use crate::state::{self, Action, Connection, Report, Saved, ScanState};
use gloo::timers::callback::{Interval, Timeout};
use iacscope_shared::codec;
use iacscope_shared::pyjson::{self, Dict, Value};
use iacscope_shared::record::{isoformat_utc, SessionInfo};
use iacscope_shared::{Phase, ScanConfig, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};
use yew::prelude::*;

/// What the page can ask of a scan.
#[derive(Clone, PartialEq)]
pub struct ScanControl {
    pub start: Callback<ScanRequest>,
    pub cancel: Callback<()>,
}

/// One scan's socket, engine and timer.
struct Live {
    ws: WebSocket,
    req: ScanRequest,
    driver: Option<Driver>,
    conn: Option<Connection>,
    /// `performance.now()` at the `connected` message, in milliseconds.
    t0: f64,
    timer: Option<Timeout>,
    /// Updates the elapsed time while the engine waits.
    ticker: Option<Interval>,
    banner_len: usize,
    /// The phase last reported, so a quiet timer does not re-render the page.
    phase: Option<Phase>,
    /// The proxy said `closed` (so the socket closing is expected).
    closed_msg: bool,
    /// The scan is over; nothing more is driven.
    ended: bool,
    /// While the session encoding's codec table is being fetched: the server's bytes, a
    /// timer that fired and an end that came meanwhile, all handed to the engine once the
    /// table is installed, so that it decodes them exactly (`release`).
    held: Option<Held>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// What waits for a codec table (`Live::held`).
#[derive(Default)]
struct Held {
    chunks: Vec<Vec<u8>>,
    bytes: usize,
    timeout: bool,
    eof: bool,
    /// Releases the hold if the table takes longer than [`HOLD_MAX_MS`].
    _guard: Option<Timeout>,
}

/// Longest the engine waits for a codec table before going on without it (latin-1); the
/// table is a same-origin static file of at most 33 KB, normally here in milliseconds.
const HOLD_MAX_MS: u32 = 2_000;
/// Most bytes held for a codec table; past this the hold ends at once.
const HOLD_MAX_BYTES: usize = 1 << 20;

type Slot = Rc<RefCell<Option<Live>>>;
type Dispatch = UseReducerDispatcher<ScanState>;

/// The hook: the scan's socket and engine live as long as the component.
#[hook]
pub fn use_scan(dispatch: Dispatch) -> ScanControl {
    let slot: Slot = use_mut_ref(|| None);
    {
        let slot = slot.clone();
        use_effect_with((), move |_| move || stop(&slot));
    }
    let start = {
        let (slot, dispatch) = (slot.clone(), dispatch.clone());
        Callback::from(move |req: ScanRequest| start(&slot, &dispatch, req))
    };
    let cancel = Callback::from(move |()| {
        stop(&slot);
        dispatch.dispatch(Action::Cancel);
    });
    ScanControl { start, cancel }
}

fn now_ms() -> f64 {
    gloo::utils::window()
        .performance()
        .map_or_else(js_sys::Date::now, |p| p.now())
}

fn ws_url(req: &ScanRequest) -> String {
    let loc = gloo::utils::window().location();
    let scheme = match loc.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = loc.host().unwrap_or_default();
    format!("{scheme}//{host}/ws?{}", req.ws_query())
}

thread_local! {
    /// Counts scans started and stopped, so a scan that waited for a codec table does not
    /// connect after it was cancelled or replaced.
    static TICKET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Ends the current scan, if any: handlers off, timer dropped, socket closed.
fn stop(slot: &Slot) {
    TICKET.with(|t| t.set(t.get().wrapping_add(1)));
    if let Some(live) = slot.borrow_mut().take() {
        detach(&live.ws);
        let _ = live.ws.close();
    }
}

fn detach(ws: &WebSocket) {
    ws.set_onmessage(None);
    ws.set_onclose(None);
}

fn start(slot: &Slot, dispatch: &Dispatch, req: ScanRequest) {
    stop(slot);
    dispatch.dispatch(Action::Start(req.clone()));
    let _ = gloo::utils::window().history().map(|h| {
        h.replace_state_with_url(
            &wasm_bindgen::JsValue::NULL,
            "",
            Some(&format!("/?{}", req.deep_link_query())),
        )
    });
    // An explicit encoding decodes exactly from the first byte: its codec table (if it needs
    // one) is fetched before the scan connects.
    let encoding = req.config().encoding;
    if codecs::missing([encoding.as_str()]).is_empty() {
        connect(slot, dispatch, req);
        return;
    }
    let ticket = TICKET.with(std::cell::Cell::get);
    let (slot, dispatch) = (slot.clone(), dispatch.clone());
    yew::platform::spawn_local(async move {
        for sentence in codecs::ensure([encoding.as_str()]).await {
            codecs::warn(&sentence);
        }
        if TICKET.with(std::cell::Cell::get) == ticket {
            connect(&slot, &dispatch, req);
        }
    });
}

/// Opens the scan's socket and wires its handlers.
fn connect(slot: &Slot, dispatch: &Dispatch, req: ScanRequest) {
    let ws = match WebSocket::new(&ws_url(&req)) {
        Ok(ws) => ws,
        Err(_) => {
            dispatch.dispatch(Action::SocketLost);
            return;
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let on_message = {
        let (slot, dispatch) = (slot.clone(), dispatch.clone());
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if let Some(text) = data.as_string() {
                with_live(&slot, &dispatch, |live, out| {
                    control(live, &slot, &dispatch, &text, out)
                });
            } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                let bytes = js_sys::Uint8Array::new(buf).to_vec();
                with_live(&slot, &dispatch, |live, out| {
                    if let Some(h) = live.held.as_mut() {
                        h.bytes += bytes.len();
                        h.chunks.push(bytes);
                        if h.bytes > HOLD_MAX_BYTES {
                            release(live, &slot, &dispatch, out);
                        }
                    } else if let Some(d) = live.driver.as_mut() {
                        let now = clock(live.t0);
                        let step = d.input(now, &bytes);
                        process(live, &slot, &dispatch, now, step, out);
                    }
                });
            }
        })
    };
    let on_close = {
        let (slot, dispatch) = (slot.clone(), dispatch.clone());
        Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            with_live(&slot, &dispatch, |live, out| {
                if live.ended || live.closed_msg {
                    return;
                }
                out.push(Action::SocketLost);
                eof(live, &slot, &dispatch, out);
            });
        })
    };
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    *slot.borrow_mut() = Some(Live {
        ws,
        req,
        driver: None,
        conn: None,
        t0: 0.0,
        timer: None,
        ticker: None,
        banner_len: 0,
        phase: None,
        closed_msg: false,
        ended: false,
        held: None,
        _on_message: on_message,
        _on_close: on_close,
    });
}

/// Runs `f` on the live scan, then dispatches what it produced (outside the borrow).
fn with_live(slot: &Slot, dispatch: &Dispatch, f: impl FnOnce(&mut Live, &mut Vec<Action>)) {
    let mut out = Vec::new();
    if let Some(live) = slot.borrow_mut().as_mut() {
        f(live, &mut out);
    }
    for a in out {
        dispatch.dispatch(a);
    }
}

fn clock(t0: f64) -> Timestamp {
    Timestamp(((now_ms() - t0) * 1000.0).max(0.0) as u64)
}

fn field(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

fn text(v: &JsValue, k: &str) -> String {
    field(v, k).as_string().unwrap_or_default()
}

/// A JSON text frame from the proxy.
fn control(live: &mut Live, slot: &Slot, dispatch: &Dispatch, msg: &str, out: &mut Vec<Action>) {
    // The browser's JSON parser: the proxy's control messages are plain JSON, and the
    // engine's Python-compatible parser would only add size to the bundle.
    let Ok(v) = js_sys::JSON::parse(msg) else {
        return;
    };
    match text(&v, "type").as_str() {
        "connected" if live.driver.is_none() => {
            let port = field(&v, "port")
                .as_f64()
                .filter(|p| (1.0..=65535.0).contains(p))
                .map_or(live.req.port, |p| p as u16);
            let tls = Some(field(&v, "tls")).filter(JsValue::is_object).map(|t| {
                // `verdict_text` is the certificate check in words (older proxies: subject).
                let verdict = match text(&t, "verdict_text") {
                    v if v.is_empty() => format!("certificate {}", text(&t, "subject")),
                    v => v,
                };
                format!(
                    "{} {} · {verdict}",
                    text(&t, "protocol"),
                    text(&t, "cipher")
                )
            });
            let conn = Connection {
                session: text(&v, "session"),
                host: text(&v, "host"),
                ip: text(&v, "ip"),
                port,
                tls,
            };
            live.conn = Some(conn.clone());
            out.push(Action::Connected(conn));
            live.t0 = now_ms();
            let (t0, tick) = (live.t0, dispatch.clone());
            live.ticker = Some(Interval::new(TICK_MS, move || {
                tick.dispatch(Action::Tick(clock(t0)));
            }));
            let (driver, step) = Driver::new(live.req.config());
            live.driver = Some(driver);
            process(live, slot, dispatch, Timestamp(0), step, out);
        }
        "closed" => {
            live.closed_msg = true;
            out.push(Action::ProxyClosed {
                by: text(&v, "by"),
                code: text(&v, "code"),
                reason: text(&v, "reason"),
            });
            eof(live, slot, dispatch, out);
        }
        "error" => {
            live.closed_msg = true;
            live.ended = true;
            out.push(Action::ProxyError {
                code: text(&v, "code"),
                message: text(&v, "message"),
            });
        }
        _ => {}
    }
}

fn eof(live: &mut Live, slot: &Slot, dispatch: &Dispatch, out: &mut Vec<Action>) {
    if live.ended {
        return;
    }
    if let Some(h) = live.held.as_mut() {
        h.eof = true;
        return;
    }
    if let Some(d) = live.driver.as_mut() {
        let now = clock(live.t0);
        let step = d.eof(now);
        process(live, slot, dispatch, now, step, out);
    } else {
        live.ended = true;
    }
}

/// The session encoding became codec `name`, whose table is not loaded: fetch it, holding
/// the server's next bytes (and the engine's timer) until it is installed or
/// [`HOLD_MAX_MS`] passed, so the engine decodes them exactly (`_VirtualCursor` columns,
/// answered in cursor position reports, depend on it). When another fetch of it is already
/// under way (a "Decode as"), nothing is held: text until it lands decodes as latin-1.
fn hold_for_table(live: &mut Live, slot: &Slot, dispatch: &Dispatch, name: &'static str) {
    if live.held.is_some() || !codecs::claim(name) {
        return;
    }
    let t0 = live.t0;
    let end_hold = {
        let (slot, dispatch) = (slot.clone(), dispatch.clone());
        move || {
            let slot2 = slot.clone();
            with_live(&slot, &dispatch, |live, out| {
                if live.t0 == t0 {
                    release(live, &slot2, &dispatch, out);
                }
            });
        }
    };
    live.held = Some(Held {
        _guard: Some(Timeout::new(HOLD_MAX_MS, end_hold.clone())),
        ..Held::default()
    });
    yew::platform::spawn_local(async move {
        if let Err(sentence) = codecs::fetch_table(name).await {
            codecs::warn(&sentence);
        }
        end_hold();
    });
}

/// Ends a hold (`hold_for_table`): the banner re-rendered with the table, then the held
/// bytes, timer and end handed to the engine in order. A held chunk that switches to yet
/// another missing codec starts a new hold, which keeps the rest.
fn release(live: &mut Live, slot: &Slot, dispatch: &Dispatch, out: &mut Vec<Action>) {
    let Some(held) = live.held.take() else {
        return;
    };
    if let Some(d) = live.driver.as_ref() {
        let sc = d.scanner();
        let (before, after) = sc.banner_bytes();
        out.push(Action::Banner {
            bytes: banner::combine(&before, &after),
            encoding: sc.encoding().to_owned(),
        });
    }
    let mut chunks = held.chunks.into_iter();
    for chunk in chunks.by_ref() {
        let Some(d) = live.driver.as_mut().filter(|_| !live.ended) else {
            return;
        };
        let now = clock(live.t0);
        let step = d.input(now, &chunk);
        process(live, slot, dispatch, now, step, out);
        if live.held.is_some() {
            break;
        }
    }
    if let Some(h) = live.held.as_mut() {
        h.chunks.extend(chunks);
        h.bytes = h.chunks.iter().map(Vec::len).sum();
        h.timeout |= held.timeout;
        h.eof |= held.eof;
        return;
    }
    if held.timeout && !live.ended {
        if let Some(d) = live.driver.as_mut() {
            let now = clock(live.t0);
            let step = d.timeout(now);
            process(live, slot, dispatch, now, step, out);
        }
    }
    if held.eof {
        eof(live, slot, dispatch, out);
    }
}

/// How often the elapsed time moves while nothing else happens.
const TICK_MS: u32 = 250;

/// Sends what the engine wrote, reports what happened, and arms the timer or finishes.
fn process(
    live: &mut Live,
    slot: &Slot,
    dispatch: &Dispatch,
    now: Timestamp,
    step: Step,
    out: &mut Vec<Action>,
) {
    let Some(d) = live.driver.as_ref() else {
        return;
    };
    if live.ws.ready_state() == WebSocket::OPEN {
        for b in &step.transmit {
            let _ = live.ws.send_with_u8_array(b);
        }
    }
    let scanner = d.scanner();
    if !step.events.is_empty() || live.phase != Some(scanner.phase()) {
        live.phase = Some(scanner.phase());
        out.push(Action::Step {
            now,
            phase: scanner.phase(),
            events: step.events,
        });
    }
    let (before, after) = scanner.banner_bytes();
    if before.len() + after.len() != live.banner_len {
        live.banner_len = before.len() + after.len();
        out.push(Action::Banner {
            bytes: banner::combine(&before, &after),
            encoding: scanner.encoding().to_owned(),
        });
    }
    let missing = codec::missing_table(scanner.encoding());
    let done = d.is_done();
    if let Some(name) = missing.filter(|_| !done) {
        hold_for_table(live, slot, dispatch, name);
    }
    if done {
        live.ended = true;
        live.timer = None;
        live.ticker = None;
        detach(&live.ws);
        let _ = live.ws.close();
        let Some(name) = missing else {
            finish(live, slot, dispatch, out);
            return;
        };
        // The record decodes the banner with the final encoding: report once its table is
        // here (or could not be had), for this scan only.
        let (slot, dispatch, t0) = (slot.clone(), dispatch.clone(), live.t0);
        yew::platform::spawn_local(async move {
            if let Err(sentence) = codecs::fetch_table(name).await {
                codecs::warn(&sentence);
            }
            let slot2 = slot.clone();
            with_live(&slot, &dispatch, |live, out| {
                if live.t0 == t0 {
                    finish(live, &slot2, &dispatch, out);
                }
            });
        });
        return;
    }
    live.timer = step.next.map(|next| {
        let delay = (next.0.saturating_sub(now.0) as f64 / 1000.0).ceil() as u32;
        let (slot, dispatch) = (slot.clone(), dispatch.clone());
        Timeout::new(delay, move || {
            let slot2 = slot.clone();
            with_live(&slot, &dispatch, |live, out| {
                if live.ended {
                    return;
                }
                if let Some(h) = live.held.as_mut() {
                    h.timeout = true;
                    return;
                }
                if let Some(d) = live.driver.as_mut() {
                    let now = clock(live.t0);
                    let step = d.timeout(now);
                    process(live, &slot2, &dispatch, now, step, out);
                }
            });
        })
    });
}

/// The scan is over: its report from the engine's outcome, the save request, `Finished`.
/// Never inlined: it has two callers, and a copy of the report code in each would cost the
/// bundle kilobytes.
#[inline(never)]
fn finish(live: &mut Live, slot: &Slot, dispatch: &Dispatch, out: &mut Vec<Action>) {
    let Some(d) = live.driver.as_ref() else {
        return;
    };
    let scanner = d.scanner();
    let conn = live.conn.clone();
    let session = SessionInfo {
        host: live.req.host.clone(),
        ip: conn.map_or_else(|| live.req.host.clone(), |c| c.ip),
        port: live.req.port,
        connected: isoformat_utc((js_sys::Date::now() * 1000.0) as i64),
    };
    let report = Report::new(scanner.outcome(), &session);
    if let Some(c) = live.conn.as_ref().filter(|c| !c.session.is_empty()) {
        out.push(Action::Saving);
        let body = save_body(&live.req.config(), &report.fingerprint);
        let (host, port) = (live.req.host.clone(), live.req.port);
        yew::platform::spawn_local(save(
            slot.clone(),
            dispatch.clone(),
            c.session.clone(),
            body,
            (host, port),
        ));
    }
    out.push(Action::Finished(Rc::new(report)));
}

/// The save request: the settings the scan used and the fingerprint this page computed.
pub fn save_body(cfg: &ScanConfig, fingerprint: &str) -> String {
    let mut c = Dict::new();
    c.insert("scan_type", cfg.scan_type.as_str());
    c.insert("encoding", cfg.encoding.as_str());
    c.insert("ttype", cfg.ttype.as_str());
    let mut body = Dict::new();
    body.insert("config", Value::Dict(c));
    body.insert("fingerprint", fingerprint);
    pyjson::to_pretty(&Value::Dict(body))
}

/// Whether the scan of proxy session `session` is still the page's (no new scan started).
fn current(slot: &Slot, session: &str) -> bool {
    slot.borrow()
        .as_ref()
        .and_then(|l| l.conn.as_ref())
        .is_some_and(|c| c.session == session)
}

/// Saves the scan of proxy session `session` (see [`save_scan`]); the outcome goes to the
/// reducer unless another scan has started meanwhile.
async fn save(
    slot: Slot,
    dispatch: Dispatch,
    session: String,
    body: String,
    server: (String, u16),
) {
    let still = {
        let (slot, session) = (slot.clone(), session.clone());
        move || current(&slot, &session)
    };
    if let Some(action) = save_scan(&session, &body, server, still).await {
        if current(&slot, &session) {
            dispatch.dispatch(action);
        }
    }
}

/// `POST /api/sessions/{session}/save`, retried with a doubling wait while the proxy answers
/// `409 session_open` (its relay closes a moment after the page's scan ends), as long as
/// `still_wanted()`; the action that reports the outcome, or `None` when no longer wanted.
pub async fn save_scan(
    session: &str,
    body: &str,
    server: (String, u16),
    still_wanted: impl Fn() -> bool,
) -> Option<Action> {
    let url = format!("/api/sessions/{}/save", crate::route::encode(session));
    let mut wait = state::SAVE_BACKOFF_MS;
    let mut attempt = 0;
    loop {
        match api::post_json(&url, body).await {
            Ok(v) => {
                let saved = Saved {
                    id: api::text_field(&v, "id"),
                    host: server.0,
                    port: server.1,
                    fingerprint: api::text_field(&v, "fingerprint"),
                    others: api::int_field(&v, "shared_by")
                        .unwrap_or(1)
                        .saturating_sub(1)
                        .max(0),
                    browser_agrees: api::field(&v, "browser_agrees").as_bool(),
                };
                return Some(if crate::route::is_scan_id(&saved.id) {
                    Action::Saved(Rc::new(saved))
                } else {
                    Action::SaveFailed(state::save_error_sentence(200, "bad_answer", "no scan id"))
                });
            }
            Err(f) if f.code == "session_open" && attempt < state::SAVE_RETRIES => {
                attempt += 1;
                yew::platform::time::sleep(std::time::Duration::from_millis(u64::from(wait))).await;
                wait = wait.saturating_mul(2);
                if !still_wanted() {
                    return None;
                }
            }
            Err(f) => {
                return Some(Action::SaveFailed(state::save_error_sentence(
                    f.status, &f.code, &f.message,
                )))
            }
        }
    }
}
