//! `use_scan`: the one hook that owns the proxy WebSocket and the engine. It opens
//! `/ws?host=…`, starts the `Scanner` at t = 0 on the proxy's `connected` message, feeds it
//! binary frames, runs its timer, sends what it writes, and dispatches what happened to the
//! reducer. The clock is `performance.now()` relative to the connect (never
//! `std::time::Instant`, which panics on wasm32). Rendering is the view's job.

use crate::banner;
use crate::driver::{Driver, Step};
use crate::request::ScanRequest;
use crate::state::{Action, Connection, Report, ScanState};
use gloo::timers::callback::{Interval, Timeout};
use iacscope_shared::record::{isoformat_utc, SessionInfo};
use iacscope_shared::{Phase, Timestamp};
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
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

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

/// Ends the current scan, if any: handlers off, timer dropped, socket closed.
fn stop(slot: &Slot) {
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
            Some(&format!("?{}", req.deep_link_query())),
        )
    });
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
                    if let Some(d) = live.driver.as_mut() {
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
                format!(
                    "{} {}, certificate {}",
                    text(&t, "protocol"),
                    text(&t, "cipher"),
                    text(&t, "subject")
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
    if let Some(d) = live.driver.as_mut() {
        let now = clock(live.t0);
        let step = d.eof(now);
        process(live, slot, dispatch, now, step, out);
    } else {
        live.ended = true;
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
    if d.is_done() {
        live.ended = true;
        live.timer = None;
        live.ticker = None;
        let conn = live.conn.clone();
        let session = SessionInfo {
            host: live.req.host.clone(),
            ip: conn.map_or_else(|| live.req.host.clone(), |c| c.ip),
            port: live.req.port,
            connected: isoformat_utc((js_sys::Date::now() * 1000.0) as i64),
        };
        out.push(Action::Finished(Rc::new(Report::new(
            scanner.outcome(),
            &session,
        ))));
        detach(&live.ws);
        let _ = live.ws.close();
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
                if let Some(d) = live.driver.as_mut() {
                    let now = clock(live.t0);
                    let step = d.timeout(now);
                    process(live, &slot2, &dispatch, now, step, out);
                }
            });
        })
    });
}
