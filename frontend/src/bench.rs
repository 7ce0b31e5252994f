//! Benchmark hooks for `cargo xtask bench-web`, compiled only with the `bench` feature (a
//! separate Trunk build; the shipped `dist/` never has them). `window.iacscopeBench` gets
//! `banner(kib, seed)` (returns the reducer's time) and `timeline(start, count)`, which dispatch into the page's real
//! reducer, so a measurement in the page covers the reducer (`ansi::render` for the banner),
//! Yew's diff and the DOM update. Timing is left to the page's script. `engine(i, read)`
//! times the engine alone in wasm on the native benchmark's inputs
//! (`iacscope_shared::bench_inputs`) and returns `[name, MB/s]`.

use crate::state::{Action, ScanState};
use iacscope_shared::telopt::{TelOpt, Verb};
use iacscope_shared::{Dir, Event, EventKind, Phase, Timestamp};
use wasm_bindgen::prelude::*;
use yew::UseReducerDispatcher;

/// Installs `window.iacscopeBench`.
pub fn install(dispatch: UseReducerDispatcher<ScanState>) {
    let obj = js_sys::Object::new();
    let d = dispatch.clone();
    let d2 = dispatch.clone();
    // Returns the milliseconds spent in the dispatch itself: Yew runs the reducer (here
    // `ansi::render`) at once and only schedules the render.
    let banner = Closure::<dyn Fn(u32, u32) -> f64>::new(move |kib: u32, seed: u32| {
        let bytes = ansi_banner(kib as usize * 1024, seed);
        let now = || gloo::utils::window().performance().map_or(0.0, |p| p.now());
        let t0 = now();
        d.dispatch(Action::Banner {
            bytes,
            encoding: "utf-8".into(),
        });
        now() - t0
    });
    let timeline = Closure::<dyn Fn(u32, u32)>::new(move |start: u32, count: u32| {
        // One dispatch per event, as a live scan delivers them.
        for i in start..start + count {
            dispatch.dispatch(Action::Step {
                now: Timestamp(u64::from(i) * 1_000),
                phase: Phase::Negotiating,
                events: vec![event(i)],
            });
        }
    });
    // A scan starts, then the server's first bytes (WILL MSSP and its MSSP, naming the server
    // `Bench<seed>`) go through the engine as the websocket delivers them; the page script
    // times how long until the summary card shows the name.
    let summary = Closure::<dyn Fn(u32)>::new(move |seed: u32| {
        let req = crate::request::ScanRequest {
            host: "bench.example".into(),
            port: 4000,
            tls: crate::request::TlsMode::Off,
            mode: crate::request::ScanMode::Quick,
        };
        let cfg = req.config();
        d2.dispatch(Action::Start(req));
        d2.dispatch(Action::Connected(crate::state::Connection {
            session: "bench".into(),
            host: "bench.example".into(),
            ip: "192.0.2.1".into(),
            port: 4000,
            tls: None,
        }));
        let (mut driver, _) = crate::driver::Driver::new(cfg);
        let mut bytes = b"\xff\xfb\x46\xff\xfa\x46\x01NAME\x02".to_vec();
        bytes.extend_from_slice(format!("Bench{seed}").as_bytes());
        bytes.extend_from_slice(b"\x01PLAYERS\x0242\xff\xf0");
        let step = driver.input(Timestamp(20_000), &bytes);
        d2.dispatch(Action::Step {
            now: Timestamp(20_000),
            phase: driver.scanner().phase(),
            events: step.events,
        });
    });
    let _ = js_sys::Reflect::set(&obj, &"summary".into(), summary.as_ref());
    summary.forget();
    let engine = Closure::<dyn Fn(u32, bool) -> js_sys::Array>::new(engine_throughput);
    let _ = js_sys::Reflect::set(&obj, &"engine".into(), engine.as_ref());
    engine.forget();
    let _ = js_sys::Reflect::set(&obj, &"banner".into(), banner.as_ref());
    let _ = js_sys::Reflect::set(&obj, &"timeline".into(), timeline.as_ref());
    let _ = js_sys::Reflect::set(&gloo::utils::window(), &"iacscopeBench".into(), &obj);
    // The page lives as long as the hooks.
    banner.forget();
    timeline.forget();
}

/// Least time one engine measurement runs for (repeating the feed), in milliseconds.
const ENGINE_MIN_MS: f64 = 300.0;

/// Engine throughput on input `i` of `bench_inputs::inputs()` (`read`: the banner-read
/// path), as `[name, MB/s]`; an index past the end gives `["", 0]`.
fn engine_throughput(i: u32, read: bool) -> js_sys::Array {
    use iacscope_shared::bench_inputs;
    let out = js_sys::Array::new();
    let Some((name, input, len)) = bench_inputs::inputs().into_iter().nth(i as usize) else {
        out.push(&"".into());
        out.push(&0.0.into());
        return out;
    };
    let now = || gloo::utils::window().performance().map_or(0.0, |p| p.now());
    // One unmeasured run (the first call compiles the code paths).
    bench_inputs::feed(&input, read);
    let (t0, mut runs) = (now(), 0u32);
    while runs < 2 || now() - t0 < ENGINE_MIN_MS {
        bench_inputs::feed(&input, read);
        runs += 1;
    }
    let secs = (now() - t0) / 1000.0;
    out.push(&name.into());
    out.push(&(len as f64 * f64::from(runs) / secs / 1e6).into());
    out
}

/// `len` bytes of 80-column lines, every word in its own SGR colour (a busy ANSI banner).
fn ansi_banner(len: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = seed as usize;
    while out.len() < len {
        for _ in 0..8 {
            i += 1;
            let sgr = format!("\x1b[{};3{}m", i % 2, i % 8);
            out.extend_from_slice(sgr.as_bytes());
            out.extend_from_slice(format!("word{:05} ", i % 100_000).as_bytes());
        }
        out.extend_from_slice(b"\x1b[0m\r\n");
    }
    out.truncate(len);
    out
}

/// A negotiation event, alternating direction, verb and option.
fn event(i: u32) -> Event {
    let verbs = [Verb::Will, Verb::Wont, Verb::Do, Verb::Dont];
    Event {
        at: Timestamp(u64::from(i) * 1_000),
        kind: EventKind::Negotiation {
            dir: [Dir::Recv, Dir::Sent][i as usize % 2],
            verb: verbs[i as usize % 4],
            opt: TelOpt((i % 50) as u8),
        },
    }
}
