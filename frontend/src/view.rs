//! The page: the scan form, progress, timeline, banner and results. Components here only
//! render state and dispatch; the hook talks to the proxy and the reducer decides what
//! things mean. Server text is only ever a text node (or, for MSSP http(s) values, a link).

use crate::banner;
use crate::protocols::MsspRow;
use crate::request::{parse_target, ScanMode, ScanRequest, TlsMode};
use crate::state::{self, Action, Filter, Report, ScanState, Status, PHASES};
use iacscope_shared::ansi::Screen;
use iacscope_shared::event::{Event as EngineEvent, EventKind};
use iacscope_shared::{transcript, Dir, Phase};
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// The engine's version (the workspace shares one version across crates).
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// At most this many timeline rows are in the DOM; older ones are counted.
pub const TIMELINE_ROWS: usize = 400;

#[derive(Properties, PartialEq)]
pub struct PageProps {
    pub state: UseReducerHandle<ScanState>,
    pub on_start: Callback<ScanRequest>,
    pub on_cancel: Callback<()>,
}

/// The whole page for a given state.
#[function_component]
pub fn Page(props: &PageProps) -> Html {
    let state = &props.state;
    let request = state.request.clone();
    let target = use_state(String::new);
    let tls = use_state(|| TlsMode::Off);
    let mode = use_state(|| ScanMode::Quick);
    let filter = use_state(|| Filter::All);
    {
        // A deep link (or any started scan) fills the form.
        let (target, tls, mode) = (target.clone(), tls.clone(), mode.clone());
        use_effect_with(request, move |req| {
            if let Some(r) = req {
                target.set(r.target());
                tls.set(r.tls);
                mode.set(r.mode);
            }
        });
    }

    let on_target = {
        let target = target.clone();
        Callback::from(move |e: InputEvent| {
            target.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let on_tls = {
        let tls = tls.clone();
        Callback::from(move |e: Event| {
            let on = e.target_unchecked_into::<HtmlInputElement>().checked();
            tls.set(if on { TlsMode::On } else { TlsMode::Off });
        })
    };
    let on_insecure = {
        let tls = tls.clone();
        Callback::from(move |e: Event| {
            let on = e.target_unchecked_into::<HtmlInputElement>().checked();
            tls.set(if on { TlsMode::Insecure } else { TlsMode::On });
        })
    };
    let on_mode = |m: ScanMode| {
        let mode = mode.clone();
        Callback::from(move |_: Event| mode.set(m))
    };
    let on_submit = {
        let (target, tls, mode) = (target.clone(), tls.clone(), mode.clone());
        let (state, on_start) = (state.clone(), props.on_start.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match parse_target(&target, tls.enabled()) {
                Ok((host, port)) => on_start.emit(ScanRequest {
                    host,
                    port,
                    tls: *tls,
                    mode: *mode,
                }),
                Err(err) => state.dispatch(Action::Invalid(err)),
            }
        })
    };
    let on_filter = {
        let filter = filter.clone();
        Callback::from(move |e: Event| {
            filter.set(
                match e
                    .target_unchecked_into::<HtmlSelectElement>()
                    .value()
                    .as_str()
                {
                    "recv" => Filter::Received,
                    "sent" => Filter::Sent,
                    _ => Filter::All,
                },
            );
        })
    };
    let on_cancel = {
        let c = props.on_cancel.clone();
        Callback::from(move |_: MouseEvent| c.emit(()))
    };

    html! {
        <main class="app">
            <header>
                <h1>{ "iacscope" }</h1>
                <p class="tagline">{ "Telnet negotiation inspector" }</p>
            </header>
            <form class="scan-form" aria-label="Scan a telnet server" onsubmit={on_submit}>
                <div class="field target">
                    <label for="target">{ "Server (host or host:port)" }</label>
                    <input id="target" name="target" type="text" required=true
                        placeholder="telnet.example.org:23" autocomplete="off" spellcheck="false"
                        value={(*target).clone()} oninput={on_target} />
                </div>
                <div class="field switch">
                    <input id="tls" name="tls" type="checkbox" role="switch"
                        checked={tls.enabled()} onchange={on_tls} />
                    <label for="tls">{ "TLS" }</label>
                </div>
                if tls.enabled() {
                    <div class="field switch">
                        <input id="insecure" name="insecure" type="checkbox"
                            checked={*tls == TlsMode::Insecure} onchange={on_insecure} />
                        <label for="insecure">{ "Skip certificate check" }</label>
                    </div>
                }
                <fieldset class="field mode">
                    <legend>{ "Scan" }</legend>
                    <input id="mode-quick" name="mode" type="radio" value="quick"
                        checked={*mode == ScanMode::Quick} onchange={on_mode(ScanMode::Quick)} />
                    <label for="mode-quick">{ "Quick" }</label>
                    <input id="mode-full" name="mode" type="radio" value="full"
                        checked={*mode == ScanMode::Full} onchange={on_mode(ScanMode::Full)} />
                    <label for="mode-full">{ "Full" }</label>
                </fieldset>
                <button type="submit" disabled={state.running()}>{ "Scan" }</button>
            </form>
            <p class="status" role="status" aria-live="polite">{ status_line(state) }</p>
            if let Some(f) = &state.failure {
                <p class="failure" role="alert">{ f.clone() }</p>
            }
            if let Some(n) = &state.notice {
                <p class="notice">{ n.clone() }</p>
            }
            if state.status != Status::Idle && state.request.is_some() {
                { progress(state, on_cancel) }
            }
            if let Some(c) = &state.connection {
                <p class="connection">
                    { format!("Connected to {} ({}) port {}", c.host, c.ip, c.port) }
                    if let Some(t) = &c.tls { { format!(" · {t}") } }
                    { format!(" · proxy session {}", c.session) }
                </p>
            }
            if !state.timeline.is_empty() {
                { timeline(state, *filter, on_filter) }
            }
            if !state.banner.rows.is_empty() {
                <section class="card" aria-labelledby="banner-h">
                    <h2 id="banner-h">{ "Banner" }</h2>
                    { banner_view(&state.banner) }
                </section>
            }
            if let Some(r) = &state.report {
                <ReportView report={r.clone()} />
            }
            if let Some(req) = &state.request {
                <section class="card" aria-labelledby="cmd-h">
                    <h2 id="cmd-h">{ "Same scan with telnetlib3" }</h2>
                    <pre class="command"><code>
                        { req.config().telnetlib3_command(&req.host, req.port) }
                    </code></pre>
                </section>
            }
            <footer class="version">
                { format!(
                    "engine v{ENGINE_VERSION} · telnetlib3 {} fingerprints · transcript format \u{201c}{}\u{201d}",
                    iacscope_shared::TELNETLIB3_VERSION,
                    transcript::MAGIC,
                ) }
            </footer>
        </main>
    }
}

fn secs(t: iacscope_shared::Timestamp) -> String {
    format!("{:.1} s", t.as_secs_f64())
}

/// The one-line status.
pub fn status_line(s: &ScanState) -> String {
    let Some(req) = &s.request else {
        return String::new();
    };
    let what = req.describe();
    match s.status {
        Status::Idle => String::new(),
        Status::Connecting => format!("Connecting: {what}…"),
        Status::Scanning => format!("Scanning: {what}, {} phase", s.phase.label()),
        Status::Done => match &s.report {
            Some(r) => format!(
                "Done: {what}, fingerprint {} in {}",
                r.fingerprint,
                secs(s.elapsed)
            ),
            None => format!("Done: {what}"),
        },
        Status::Failed => format!("Failed: {what}"),
        Status::Cancelled => format!("Cancelled: {what}"),
    }
}

fn progress(s: &ScanState, on_cancel: Callback<MouseEvent>) -> Html {
    let current = PHASES.iter().position(|p| *p == s.phase).unwrap_or(0);
    let finished = s.status == Status::Done;
    html! {
        <section class="progress" aria-label="Progress">
            <ol class="phases">
                { for PHASES.iter().enumerate().filter(|(_, p)| **p != Phase::Done).map(|(i, p)| {
                    let class = if finished || i < current { "done" }
                        else if i == current { "current" } else { "todo" };
                    html! {
                        <li class={class} aria-current={(class == "current").then_some("step")}>
                            { p.label() }
                        </li>
                    }
                }) }
            </ol>
            <div class="progress-row">
                <progress max={(PHASES.len() - 1).to_string()}
                    value={(if finished { PHASES.len() - 1 } else { current }).to_string()}
                    aria-label="Scan phases completed" />
                <span class="elapsed">{ secs(s.elapsed) }</span>
                if s.violations > 0 {
                    <span class="violations">{ format!("{} violations", s.violations) }</span>
                }
                if s.running() {
                    <button type="button" class="cancel" onclick={on_cancel}>{ "Cancel" }</button>
                }
            </div>
        </section>
    }
}

/// The classes of a timeline row: direction, kind and verb.
pub fn row_class(e: &EngineEvent) -> String {
    let dir = match state::direction(&e.kind) {
        Some(Dir::Recv) => "recv",
        Some(Dir::Sent) => "sent",
        None => "engine",
    };
    let kind = match &e.kind {
        EventKind::Negotiation { verb, .. } => match verb.name() {
            "WILL" => "neg verb-will",
            "WONT" => "neg verb-wont",
            "DO" => "neg verb-do",
            _ => "neg verb-dont",
        },
        EventKind::Command { .. } => "cmd",
        EventKind::Subnegotiation { .. } => "sb",
        EventKind::Data { .. } => "data",
        EventKind::PhaseStart { .. } => "phase",
        EventKind::PhaseEnd { .. } => "phase-end",
        EventKind::ProbeResult { .. } => "probe",
        EventKind::Violation { .. } => "violation",
        EventKind::Closed => "closed",
        _ => "note",
    };
    format!("ev {dir} {kind}")
}

/// The text of a row: the engine's own line without its time column.
pub fn row_text(e: &EngineEvent) -> String {
    let line = e.to_line();
    let t = format!("{:>8.3}", e.at.as_secs_f64());
    line.get(t.len()..).unwrap_or(&line).trim_start().to_owned()
}

fn timeline(s: &ScanState, filter: Filter, on_filter: Callback<Event>) -> Html {
    let rows = s.timeline.last(filter, TIMELINE_ROWS);
    let hidden = s.timeline.len().saturating_sub(TIMELINE_ROWS);
    html! {
        <section class="card" aria-labelledby="timeline-h">
            <div class="card-head">
                <h2 id="timeline-h">{ "Timeline" }</h2>
                <label for="filter">{ "Show" }</label>
                <select id="filter" onchange={on_filter}>
                    <option value="all" selected={filter == Filter::All}>{ "both directions" }</option>
                    <option value="recv" selected={filter == Filter::Received}>{ "received (←)" }</option>
                    <option value="sent" selected={filter == Filter::Sent}>{ "sent (→)" }</option>
                </select>
            </div>
            if hidden > 0 || s.timeline.dropped > 0 {
                <p class="muted">{ format!(
                    "{} events in all; the newest {TIMELINE_ROWS} are shown{}.",
                    s.timeline.len() + s.timeline.dropped,
                    if s.timeline.dropped > 0 { format!(" ({} were not kept)", s.timeline.dropped) } else { String::new() },
                ) }</p>
            }
            // column-reverse keeps the view pinned to the newest row as rows arrive.
            <div class="timeline-scroll" tabindex="0" aria-label="Timeline events">
            <ol class="timeline">
                { for rows.into_iter().map(|(i, e)| {
                    let time = format!("{:.3}", e.at.as_secs_f64());
                    if let EventKind::PhaseStart { phase } = &e.kind {
                        html! { <li key={i} class="ev sep"><span class="t">{ time }</span>
                            <span class="what">{ phase.label() }</span></li> }
                    } else {
                        html! {
                            <li key={i} class={row_class(e)}>
                                <span class="t">{ time }</span>
                                <span class="what">{ row_text(e) }</span>
                            </li>
                        }
                    }
                }) }
            </ol>
            </div>
        </section>
    }
}

/// The rendered banner: one text node per styled run.
pub fn banner_view(screen: &Screen) -> Html {
    html! {
        <pre class="banner" tabindex="0" aria-label="Banner text">
            { for screen.rows.iter().map(|row| html! { <>
                { for row.iter().map(|run| {
                    let class = banner::classes(&run.style);
                    if class.is_empty() {
                        html! { { run.text.clone() } }
                    } else {
                        html! { <span class={class}>{ run.text.clone() }</span> }
                    }
                }) }
                { "\n" }
            </> }) }
        </pre>
    }
}

fn names(v: &[String]) -> Html {
    if v.is_empty() {
        html! { <span class="muted">{ "none" }</span> }
    } else {
        html! { { v.join(", ") } }
    }
}

#[derive(Properties, PartialEq)]
pub struct ReportProps {
    pub report: Rc<Report>,
}

/// The finished scan: fingerprint, protocol and MSSP tables, the JSON record.
#[function_component]
pub fn ReportView(props: &ReportProps) -> Html {
    let r = &props.report;
    let copied = use_state(String::new);
    let any_protocol = r
        .protocols
        .iter()
        .any(|(_, s)| *s != crate::protocols::Support::No);
    let href = format!(
        "data:application/json;charset=utf-8,{}",
        String::from(js_sys::encode_uri_component(&r.json))
    );
    let on_copy = {
        let (json, copied) = (r.json.clone(), copied.clone());
        Callback::from(move |_: MouseEvent| {
            let nav = gloo::utils::window().navigator();
            // `navigator.clipboard` only exists in secure contexts (HTTPS or localhost).
            let has = js_sys::Reflect::get(&nav, &"clipboard".into())
                .is_ok_and(|c| !c.is_undefined() && !c.is_null());
            if has {
                let _ = nav.clipboard().write_text(&json);
                copied.set("Copied.".into());
            } else {
                copied.set(
                    "The clipboard needs HTTPS here: select the record below and copy it.".into(),
                );
            }
        })
    };
    html! { <>
        <section class="card" aria-labelledby="fp-h">
            <h2 id="fp-h">{ "Fingerprint" }</h2>
            <dl class="fingerprint">
                <dt>{ "Hash" }</dt><dd class="hash"><code>{ r.fingerprint.clone() }</code></dd>
                <dt>{ "Offered by the server" }</dt><dd>{ names(&r.offered) }</dd>
                <dt>{ "Requested from the client" }</dt><dd>{ names(&r.requested) }</dd>
                <dt>{ "Refused" }</dt><dd>{ names(&r.refused) }</dd>
                <dt>{ "Wrong-direction accepted" }</dt><dd>{ names(&r.wrong_direction) }</dd>
                <dt>{ "Directional refusals" }</dt><dd>{ names(&r.directional_refusals) }</dd>
                <dt>{ "Looped" }</dt><dd>{ names(&r.looped) }</dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="proto-h">
            <h2 id="proto-h">{ "Protocol support" }</h2>
            if !any_protocol {
                <p class="muted">{ "None of the MUD protocols was seen." }</p>
            }
            <table class="protocols">
                <thead><tr><th scope="col">{ "Protocol" }</th><th scope="col">{ "Support" }</th></tr></thead>
                <tbody>
                    { for r.protocols.iter().map(|(name, s)| html! {
                        <tr><th scope="row">{ *name }</th><td class={s.class()}>{ s.label() }</td></tr>
                    }) }
                </tbody>
            </table>
        </section>
        if !r.mssp.is_empty() {
            <section class="card" aria-labelledby="mssp-h">
                <h2 id="mssp-h">{ "MSSP" }</h2>
                <table class="mssp">
                    <tbody>{ for r.mssp.iter().map(mssp_row) }</tbody>
                </table>
            </section>
        }
        <section class="card" aria-labelledby="json-h">
            <div class="card-head">
                <h2 id="json-h">{ "Record" }</h2>
                <code class="path">{ r.path.clone() }</code>
                <button type="button" onclick={on_copy}>{ "Copy" }</button>
                <span class="muted" role="status">{ (*copied).clone() }</span>
                <a class="button" href={href} download={r.file_name.clone()}>{ "Download" }</a>
            </div>
            <pre class="json" tabindex="0" aria-label="JSON record">{ r.json.clone() }</pre>
        </section>
    </> }
}

fn mssp_row(m: &MsspRow) -> Html {
    html! {
        <tr>
            <th scope="row">{ m.name.clone() }</th>
            <td>{ for m.values.iter().enumerate().map(|(i, (v, link))| html! { <>
                if i > 0 { { ", " } }
                if *link {
                    <a href={v.clone()} rel="noopener noreferrer nofollow" target="_blank">{ v.clone() }</a>
                } else {
                    { v.clone() }
                }
            </> }) }</td>
        </tr>
    }
}
