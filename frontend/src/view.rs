//! The page: the scan form, progress, timeline, banner and results. Components here only
//! render state and dispatch; the hook talks to the proxy and the reducer decides what
//! things mean. Server text is only ever a text node (or, for MSSP http(s) values, a link).

use crate::banner;
use crate::codecs;
use crate::dom::{el, link, El};
use crate::protocols::MsspRow;
use crate::request::{parse_target, ScanMode, ScanRequest, TlsMode};
use crate::route::Route;
use crate::share::Snippets;
use crate::state::{
    self, Action, Filter, Report, RowFilter, SaveStatus, Saved, ScanState, Status, Timeline, PHASES,
};
use crate::summary::Summary;
use iacscope_shared::ansi::{self, Screen};
use iacscope_shared::event::{Event as EngineEvent, EventKind};
use iacscope_shared::mssp_check;
use iacscope_shared::mudsb;
use iacscope_shared::telopt::TelOpt;
use iacscope_shared::{charset, codec};
use iacscope_shared::{transcript, Dir, Phase};
use std::rc::Rc;
use wasm_bindgen::{JsCast, UnwrapThrowExt};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// The engine's version (the workspace shares one version across crates).
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// At most this many timeline rows are in the DOM; older ones are a page away.
pub const TIMELINE_ROWS: usize = 400;

#[derive(Properties, PartialEq)]
pub struct PageProps {
    pub state: UseReducerHandle<ScanState>,
    pub on_start: Callback<ScanRequest>,
    pub on_cancel: Callback<()>,
}

/// The whole page for a given state.
#[component]
pub fn Page(props: &PageProps) -> Html {
    let state = &props.state;
    let request = state.request.clone();
    let target = use_state(String::new);
    let tls = use_state(|| TlsMode::Off);
    let mode = use_state(|| ScanMode::Quick);
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
    let on_cancel = {
        let c = props.on_cancel.clone();
        Callback::from(move |_: MouseEvent| c.emit(()))
    };

    let evidence_text = {
        let permalink = match &state.save {
            SaveStatus::Saved(saved) => Some(
                Snippets::new(&crate::api::origin(), &saved.id, &saved.host, saved.port).permalink,
            ),
            _ => None,
        };
        crate::evidence::evidence(state, permalink.as_deref())
    };

    html! {
        <main class="app">
            { site_header() }
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
            if state.retry_insecure {
                if let Some(req) = &state.request {
                    <p>
                        <button type="button" class="retry-insecure" onclick={{
                            let (req, on_start) = (req.clone(), props.on_start.clone());
                            Callback::from(move |_: MouseEvent| on_start.emit(ScanRequest {
                                tls: TlsMode::Insecure,
                                ..req.clone()
                            }))
                        }}>{ "Scan again without verification" }</button>
                    </p>
                }
            }
            if let Some(n) = &state.notice {
                <p class="notice">{ n.clone() }</p>
            }
            if state.status != Status::Idle && state.request.is_some() {
                { progress(state, on_cancel) }
            }
            if let Some(summary) = Summary::of(state) {
                { summary_card(&summary) }
            }
            if let Some(st) = &state.stored {
                <p class="stored">
                    { if st.source == crate::permalink::SOURCE_LIVE {
                        "Saved scan, replayed here from the bytes the proxy relayed: opening this \
                         page connects to nothing."
                    } else {
                        "Saved scan, shown from its stored record: opening this page connects to \
                         nothing."
                    } }
                </p>
                { for st.notes.iter().map(|n| html! { <p class="notice stored-note">{ n.clone() }</p> }) }
            } else if let Some(c) = &state.connection {
                <p class="connection">
                    { format!("Connected to {} ({}) port {}", c.host, c.ip, c.port) }
                    if let Some(t) = &c.tls { { format!(" · {t}") } }
                    { format!(" · proxy session {}", c.session) }
                </p>
            }
            { save_view(&state.save) }
            if !state.timeline.is_empty() {
                <TimelineView timeline={state.timeline.clone()} />
            }
            if !state.banner.rows.is_empty() {
                <BannerCard screen={state.banner.clone()} report={state.report.clone()} />
            }
            if let Some(r) = &state.report {
                <ReportView report={r.clone()} />
            }
            if !state.live.decoded.is_empty() {
                { mud_data_card(&state.live.decoded) }
            }
            if let Some(text) = evidence_text {
                <EvidenceCard {text} />
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
    if let (Some(st), Some(r)) = (&s.stored, &s.report) {
        return format!(
            "Saved: {what}, fingerprint {}, scanned {}",
            r.fingerprint, st.date
        );
    }
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

#[derive(Properties, PartialEq)]
pub struct TimelineProps {
    pub timeline: Timeline,
}

fn select_value(e: &Event) -> String {
    e.target_unchecked_into::<HtmlSelectElement>().value()
}

/// The timeline card: direction and option filters, hex bytes on demand, and paging back
/// through older rows [`TIMELINE_ROWS`] at a time so the DOM stays bounded.
#[component]
pub fn TimelineView(props: &TimelineProps) -> Html {
    let t = &props.timeline;
    let filter = use_state(|| RowFilter {
        dir: Filter::All,
        opt: None,
    });
    let show_hex = use_state(|| false);
    // The `before` positions of the pages stepped back through; empty is the newest page.
    let pages = use_state(Vec::<usize>::new);
    let (rows, older) = t.window(*filter, TIMELINE_ROWS, pages.last().copied());
    let set_filter = |f: fn(&mut RowFilter, String)| {
        let (filter, pages) = (filter.clone(), pages.clone());
        Callback::from(move |e: Event| {
            let mut next = *filter;
            f(&mut next, select_value(&e));
            filter.set(next);
            pages.set(Vec::new());
        })
    };
    let on_dir = set_filter(|f, v| {
        f.dir = match v.as_str() {
            "recv" => Filter::Received,
            "sent" => Filter::Sent,
            _ => Filter::All,
        }
    });
    let on_opt = set_filter(|f, v| f.opt = v.parse().ok().map(TelOpt));
    let on_hex = {
        let show_hex = show_hex.clone();
        Callback::from(move |e: Event| {
            show_hex.set(e.target_unchecked_into::<HtmlInputElement>().checked());
        })
    };
    let page = |go: Option<usize>| {
        let pages = pages.clone();
        Callback::from(move |_: MouseEvent| {
            let mut v = (*pages).clone();
            match go {
                Some(before) => v.push(before),
                None => {
                    v.pop();
                }
            }
            pages.set(v);
        })
    };
    let oldest = rows.first().map(|r| r.0);
    let (first, last) = (oldest.unwrap_or(0), rows.last().map_or(0, |r| r.0));
    html! {
        <section class="card" aria-labelledby="timeline-h">
            <div class="card-head">
                <h2 id="timeline-h">{ "Timeline" }</h2>
                <label for="filter">{ "Show" }</label>
                <select id="filter" onchange={on_dir}>
                    <option value="all" selected={filter.dir == Filter::All}>{ "both directions" }</option>
                    <option value="recv" selected={filter.dir == Filter::Received}>{ "received (←)" }</option>
                    <option value="sent" selected={filter.dir == Filter::Sent}>{ "sent (→)" }</option>
                </select>
                <label for="opt-filter">{ "Option" }</label>
                <select id="opt-filter" onchange={on_opt}>
                    <option value="" selected={filter.opt.is_none()}>{ "all options" }</option>
                    { for t.options().map(|o| html! {
                        <option value={o.0.to_string()} selected={filter.opt == Some(o)}>
                            { format!("{o} ({})", o.0) }
                        </option>
                    }) }
                </select>
                <input id="hex" type="checkbox" checked={*show_hex} onchange={on_hex} />
                <label for="hex">{ "Bytes in hex" }</label>
            </div>
            if older || !pages.is_empty() || t.dropped > 0 {
                <div class="card-head pager">
                    <p class="muted">{ format!(
                        "{} events in all; {} rows from #{} to #{} are shown{}.",
                        t.len() + t.dropped,
                        rows.len(),
                        first + 1,
                        last + 1,
                        if t.dropped > 0 { format!(" ({} were not kept)", t.dropped) } else { String::new() },
                    ) }</p>
                    if older {
                        <button type="button" class="older" onclick={page(oldest)}>
                            { format!("Show older {TIMELINE_ROWS}") }
                        </button>
                    }
                    if !pages.is_empty() {
                        <button type="button" class="newer" onclick={page(None)}>
                            { format!("Show newer {TIMELINE_ROWS}") }
                        </button>
                    }
                </div>
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
                        let bytes = if *show_hex { state::raw_bytes(&e.kind) } else { None };
                        html! {
                            <li key={i} class={row_class(e)}>
                                <span class="t">{ time }</span>
                                <span class="what">{ row_text(e) }
                                    if let Some(b) = bytes {
                                        <span class="hex">{ state::hex(&b) }</span>
                                    }
                                </span>
                            </li>
                        }
                    }
                }) }
            </ol>
            </div>
        </section>
    }
}

/// The header of every page: the name, and links to the scanner and the search. A plain
/// function (no state): the search reads its box when submitted.
pub fn site_header() -> Html {
    // The CSP forbids form submission (`form-action 'none'`): the page navigates itself.
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let form = e.target_unchecked_into::<web_sys::Element>();
        let q = form
            .query_selector("input")
            .ok()
            .flatten()
            .map(|i| i.unchecked_into::<HtmlInputElement>().value())
            .unwrap_or_default();
        if !q.trim().is_empty() {
            let _ = gloo::utils::window()
                .location()
                .assign(&Route::Search(q.trim().to_owned()).href());
        }
    });
    html! {
        <header class="site">
            <div>
                <h1><a href="/">{ "iacscope" }</a></h1>
                <p class="tagline">{ "Telnet negotiation inspector" }</p>
            </div>
            <nav aria-label="Site">
                <a href="/">{ "Scan" }</a>
                <a href="/stats">{ "Census" }</a>
                <form class="search-form" role="search" aria-label="Search saved servers" onsubmit={on_submit}>
                    <input id="site-search" type="search" aria-label="Server name or host"
                        placeholder="Search servers" maxlength="100" autocomplete="off" />
                    <button type="submit">{ "Search" }</button>
                </form>
            </nav>
        </header>
    }
}

/// The save of a finished scan: its permalink, who shares the fingerprint, the snippets;
/// or why it was not saved.
fn save_view(save: &SaveStatus) -> Html {
    match save {
        SaveStatus::None => html! {},
        SaveStatus::Saving => html! {
            <p class="saving muted" role="status">{ "Saving a permalink\u{2026}" }</p>
        },
        SaveStatus::Failed(why) => {
            html! { <p class="save-failed notice" role="alert">{ why.clone() }</p> }
        }
        SaveStatus::Saved(saved) => html! { <SavedCard saved={saved.clone()} /> },
    }
}

#[derive(Properties, PartialEq)]
pub struct SavedProps {
    pub saved: Rc<Saved>,
    /// `<origin>` for absolute links; the page's own when empty.
    #[prop_or_default]
    pub origin: String,
}

/// A copy button for `text` (kept in its `data-copy` attribute) and its status line.
fn copy_button(what: &str, text: &str) -> [El; 2] {
    [
        el("button")
            .class("copy")
            .attr("type", "button")
            .attr("data-copy", text)
            .attr("data-what", what)
            .text("Copy"),
        el("span").class("muted").attr("role", "status"),
    ]
}

/// The saved card's DOM (built once per save, see [`crate::dom`]).
pub fn saved_card(s: &Saved, origin: &str) -> El {
    let snippets = Snippets::new(origin, &s.id, &s.host, s.port);
    let fp_href = Route::Fingerprint(s.fingerprint.clone()).href();
    let server_href = Route::Server {
        host: s.host.clone(),
        port: s.port,
    }
    .href();
    let mut card = el("section")
        .class("card saved")
        .attr("aria-labelledby", "saved-h")
        .child(
            el("div")
                .class("card-head")
                .child(el("h2").attr("id", "saved-h").text("Permalink"))
                .child(link(&snippets.permalink, &snippets.permalink).class("permalink"))
                .children(copy_button("permalink", &snippets.permalink)),
        )
        .child(
            el("p")
                .class("shared")
                .text(&state::shared_sentence(s.others))
                .text(" ")
                .child(
                    link(
                        &fp_href,
                        &format!("Servers with fingerprint {}", s.fingerprint),
                    )
                    .class("fingerprint-link"),
                )
                .text(" \u{b7} ")
                .child(link(&server_href, "This server's history").class("server-link")),
        );
    if s.browser_agrees == Some(false) {
        card = card.child(el("p").class("muted disagree").text(
            "This page computed another fingerprint than the proxy's replay of the same bytes \
             (a timing window edge); the stored record follows the bytes the proxy saw.",
        ));
    }
    let mut list = el("dl").class("snippets");
    for (class, label, text) in [
        ("iframe", "HTML (iframe)", &snippets.iframe),
        ("markdown", "Markdown (badge)", &snippets.markdown),
        ("mediawiki", "MediaWiki", &snippets.mediawiki),
    ] {
        list = list
            .child(el("dt").text(label).children(copy_button(label, text)))
            .child(
                el("dd").child(
                    el("pre")
                        .class(&format!("snippet {class}"))
                        .child(el("code").text(text)),
                ),
            );
    }
    card.child(el("h3").text("Share")).child(list)
}

/// A saved result: permalink with a copy button, the fingerprint's directory line, and the
/// share snippets. Built once per save; one click handler serves every copy button.
#[component]
pub fn SavedCard(props: &SavedProps) -> Html {
    let origin = if props.origin.is_empty() {
        crate::api::origin()
    } else {
        props.origin.clone()
    };
    let card = use_memo((props.saved.clone(), origin), |(s, origin)| {
        saved_card(s, origin).html()
    });
    let on_click = Callback::from(|e: MouseEvent| {
        let Some(button) = e.target_dyn_into::<web_sys::Element>() else {
            return;
        };
        if let Some(text) = button.get_attribute("data-copy") {
            let what = button.get_attribute("data-what").unwrap_or_default();
            if let Some(status) = button.next_element_sibling() {
                status.set_text_content(Some(&copy(&text, &what)));
            }
        }
    });
    html! { <div class="saved-wrap" onclick={on_click}>{ (*card).clone() }</div> }
}

/// Copies `text` to the clipboard and says so; where there is no clipboard, says how to
/// copy `what` by hand.
fn copy(text: &str, what: &str) -> String {
    let nav = gloo::utils::window().navigator();
    // `navigator.clipboard` only exists in secure contexts (HTTPS or localhost).
    let has = js_sys::Reflect::get(&nav, &"clipboard".into())
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    if has {
        let _ = nav.clipboard().write_text(text);
        "Copied.".into()
    } else {
        format!("The clipboard needs HTTPS here: select the {what} below and copy it.")
    }
}

#[derive(Properties, PartialEq)]
pub struct BannerProps {
    pub screen: Rc<Screen>,
    /// The finished scan: its banner bytes and encoding make "Decode as" possible.
    #[prop_or_default]
    pub report: Option<Rc<Report>>,
}

/// Encodings "Decode as" always offers (besides the session's and the guessed one).
const DECODE_AS: &[&str] = &[
    "utf-8",
    "cp437",
    "latin-1",
    "cp1252",
    "cp850",
    "koi8-r",
    "cp866",
    "cp1251",
    "big5",
    "gbk",
    "gb18030",
    "shift_jis",
    "euc-jp",
    "euc-kr",
    "utf-16",
    "petscii",
    "atascii",
];

/// Terminal widths "Decode as" offers.
const WIDTHS: &[usize] = &[80, 100, 120];

/// The banner card: the rendered banner and a button that copies it as plain text.
#[component]
pub fn BannerCard(props: &BannerProps) -> Html {
    let copied = use_state(String::new);
    // `None`: the session encoding at 80 columns, as the scan drew it.
    let choice = use_state(|| None::<(String, usize)>);
    // Draws the card again when a codec table fetched for "Decode as" lands.
    let redraw = use_force_update();
    let decode = props
        .report
        .as_ref()
        .filter(|r| r.encoding_source != "record" && !r.banner.is_empty());
    let screen = {
        let (choice, report) = ((*choice).clone(), decode.cloned());
        let live = props.screen.clone();
        // Whether the chosen codec decodes exactly yet: the banner is redrawn once it does.
        let exact = choice.as_ref().is_some_and(|(enc, _)| codec::is_exact(enc));
        use_memo(
            (choice, report, live, exact),
            |(choice, report, live, _)| match (choice, report) {
                (Some((enc, cols)), Some(r)) => Rc::new(ansi::render_with(&r.banner, enc, *cols)),
                _ => live.clone(),
            },
        )
    };
    let on_copy = {
        let (screen, copied) = ((*screen).clone(), copied.clone());
        Callback::from(move |_: MouseEvent| copied.set(copy(&screen.plain_text(), "banner")))
    };
    let controls = decode.map(|r| {
        let session = if r.encoding.is_empty() { "latin-1".to_owned() } else { r.encoding.clone() };
        let guessed = charset::guess(&r.banner);
        let (enc_now, cols_now) = (*choice).clone().unwrap_or((session.clone(), WIDTHS[0]));
        // Each codec once, whatever its spelling (`cp437` / `IBM437`).
        let key = |e: &str| codec::lookup(e).map_or_else(|| e.to_ascii_lowercase(), str::to_owned);
        let mut options: Vec<String> = Vec::new();
        for e in [session.as_str(), guessed]
            .into_iter()
            .chain(DECODE_AS.iter().copied())
        {
            if !options.iter().any(|o| key(o) == key(e)) {
                options.push(e.to_owned());
            }
        }
        let on_enc = {
            let (choice, redraw) = (choice.clone(), redraw.clone());
            let cols = cols_now;
            Callback::from(move |e: Event| {
                let v = e.target_unchecked_into::<HtmlSelectElement>().value();
                // A codec whose table is not here yet is drawn as latin-1 until it is, then
                // again.
                if let Some(name) = codec::missing_table(&v).filter(|&n| codecs::claim(n)) {
                    let redraw = redraw.clone();
                    yew::platform::spawn_local(async move {
                        match codecs::fetch_table(name).await {
                            Ok(()) => redraw.force_update(),
                            Err(sentence) => codecs::warn(&sentence),
                        }
                    });
                }
                choice.set(Some((v, cols)));
            })
        };
        let on_cols = {
            let (choice, enc) = (choice.clone(), enc_now.clone());
            Callback::from(move |e: Event| {
                let v = e.target_unchecked_into::<HtmlSelectElement>().value();
                choice.set(Some((enc.clone(), v.parse().unwrap_or(WIDTHS[0]))));
            })
        };
        html! {
            <div class="decode-as">
                <p class="muted encoding-line">{ format!(
                    "Encoding {session} (chosen by: {}) · looks like {guessed}{}",
                    r.encoding_source,
                    if codec::is_exact(&enc_now) { "" } else { " · this codec is shown as latin-1 here" }
                ) }</p>
                <label for="decode-as">{ "Decode as" }</label>
                <select id="decode-as" onchange={on_enc}>
                    { for options.iter().map(|o| html! {
                        <option value={o.clone()} selected={*o == enc_now}>
                            { if *o == session { format!("{o} (session)") } else if o == guessed { format!("{o} (guess)") } else { o.clone() } }
                        </option>
                    }) }
                </select>
                <label for="columns">{ "Width" }</label>
                <select id="columns" onchange={on_cols}>
                    { for WIDTHS.iter().map(|w| html! {
                        <option value={w.to_string()} selected={*w == cols_now}>{ format!("{w} columns") }</option>
                    }) }
                </select>
            </div>
        }
    });
    html! {
        <section class="card" aria-labelledby="banner-h">
            <div class="card-head">
                <h2 id="banner-h">{ "Banner" }</h2>
                <button type="button" class="copy-banner" onclick={on_copy}>{ "Copy as plain text" }</button>
                <span class="muted" role="status">{ (*copied).clone() }</span>
            </div>
            { controls.unwrap_or_default() }
            <BannerView screen={(*screen).clone()} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct BannerViewProps {
    pub screen: Rc<Screen>,
}

/// The rendered banner, built once per banner. A busy 64 KiB banner is thousands of styled
/// runs, and diffing them through Yew's virtual DOM cost more than the 50 ms budget; so the
/// `<pre>` is built straight into the DOM (text nodes and class names only, never markup) and
/// kept until the screen changes, and a re-render with the same screen touches nothing.
#[component]
pub fn BannerView(props: &BannerViewProps) -> Html {
    let pre = use_memo(props.screen.clone(), |screen| banner_pre(screen));
    Html::VRef((*pre).clone())
}

/// `<pre class="banner">` for a screen: a `<span>` with the style's classes for each styled
/// stretch (adjacent runs with the same classes share one), a text node for unstyled text and
/// the line ends. Server text only ever becomes text nodes.
fn banner_pre(screen: &Screen) -> web_sys::Node {
    let doc = gloo::utils::document();
    let pre = doc.create_element("pre").expect_throw("create <pre>");
    pre.set_class_name("banner");
    let _ = pre.set_attribute("tabindex", "0");
    let _ = pre.set_attribute("aria-label", "Banner text");
    // Rows go into blocks of `BANNER_BLOCK_ROWS`. Past the first `BANNER_EAGER_ROWS` (a
    // screenful, always laid out), blocks are `lazy`: `content-visibility: auto` in the style
    // sheet, with their exact height as intrinsic size, so the browser lays one out only
    // when it comes on screen and the page does not jump.
    let mut block: Option<web_sys::Element> = None;
    // The stretch being gathered: its classes (empty for unstyled text) and its text.
    let (mut class, mut text) = (String::new(), String::new());
    let flush = |into: &web_sys::Element, class: &str, text: &mut String| {
        if text.is_empty() {
            return;
        }
        if class.is_empty() {
            let _ = into.append_with_str_1(text);
        } else {
            let span = doc.create_element("span").expect_throw("create <span>");
            span.set_class_name(class);
            span.set_text_content(Some(text));
            let _ = into.append_child(&span);
        }
        text.clear();
    };
    let mut last_style = None;
    for (i, row) in screen.rows.iter().enumerate() {
        if i % BANNER_BLOCK_ROWS == 0 {
            if let Some(b) = &block {
                flush(b, &class, &mut text);
            }
            let b = doc.create_element("span").expect_throw("create <span>");
            b.set_class_name(if i < BANNER_EAGER_ROWS {
                "rows"
            } else {
                "rows lazy"
            });
            let _ = pre.append_child(&b);
            block = Some(b);
        }
        let Some(into) = &block else { continue };
        for run in row {
            if last_style != Some(run.style) {
                last_style = Some(run.style);
                let c = banner::classes(&run.style);
                if c != class {
                    flush(into, &class, &mut text);
                    class = c;
                }
            }
            text.push_str(&run.text);
        }
        // The line end is unstyled.
        if !class.is_empty() {
            flush(into, &class, &mut text);
            class.clear();
            last_style = None;
        }
        text.push('\n');
    }
    if let Some(b) = &block {
        flush(b, &class, &mut text);
    }
    pre.into()
}

/// Banner rows per block: a block is the unit the browser skips laying out while it is off
/// screen (a 64 KiB banner is some 800 rows, of which a screen shows a few dozen).
const BANNER_BLOCK_ROWS: usize = 32;

/// Rows always laid out at once (the first screenful and more).
const BANNER_EAGER_ROWS: usize = 64;

/// The summary card: the facts first, each filled in when it is known ("…" until then).
fn summary_card(s: &Summary) -> Html {
    let pending = || html! { <span class="muted">{ "…" }</span> };
    let fact = |v: &Option<String>| match v {
        Some(v) => html! { { v.clone() } },
        None => pending(),
    };
    let title = s.name.clone().unwrap_or_else(|| s.target.clone());
    html! {
        <section class="card summary" aria-labelledby="summary-h">
            <h2 id="summary-h">{ title }</h2>
            <dl class="facts">
                <dt>{ "Server" }</dt><dd><code>{ s.target.clone() }</code></dd>
                <dt>{ "Codebase" }</dt><dd>{ fact(&s.codebase) }</dd>
                <dt>{ "Players" }</dt><dd>{ fact(&s.players) }</dd>
                <dt>{ "Uptime" }</dt><dd>{ fact(&s.uptime) }</dd>
                <dt>{ "TLS" }</dt><dd>{ match &s.tls {
                    Some(t) => html! { { t.clone() } },
                    None => html! { { "no (plain telnet)" } },
                } }</dd>
                <dt>{ "Encoding" }</dt><dd>{ fact(&s.encoding) }</dd>
                <dt>{ "Fingerprint" }</dt><dd>
                    if let Some(fp) = &s.fingerprint {
                        <code class="hash">{ fp.clone() }</code>
                        if let Some(t) = s.shared_text() { { format!(" · {t}") } }
                    } else { { pending() } }
                </dd>
                <dt>{ "Warnings" }</dt><dd>{ match s.warnings {
                    Some(0) => html! { { "none" } },
                    Some(n) => html! { <a href="#mssp-h" class="warn">{ format!("{n} about MSSP") }</a> },
                    None => pending(),
                } }</dd>
            </dl>
            if !s.badges.is_empty() {
                <ul class="badges" aria-label="Protocols">
                    { for s.badges.iter().map(|b| html! { <li>{ *b }</li> }) }
                </ul>
            }
        </section>
    }
}

/// MSDP, GMCP, ZMP and ATCP messages the server sent, decoded (the record keeps none of it).
fn mud_data_card(decoded: &[(TelOpt, mudsb::Decoded)]) -> Html {
    let row = |(opt, d): &(TelOpt, mudsb::Decoded)| -> Html {
        let (name, body, problem) = match d {
            mudsb::Decoded::Msdp { vars, problem } => (
                "variables".to_owned(),
                html! { <ul class="msdp">{ for vars.iter().map(|(k, v)| html! {
                    <li><code>{ k.clone() }</code>{ " = " }<code>{ v.to_line() }</code></li>
                }) }</ul> },
                problem.clone(),
            ),
            mudsb::Decoded::Gmcp {
                package,
                json,
                raw,
                problem,
            } => (
                package.clone(),
                match (json, raw) {
                    (Some(v), _) => {
                        html! { <pre class="json">{ iacscope_shared::pyjson::to_pretty(v) }</pre> }
                    }
                    // A body the browser checked (`api::parse_gmcp`), laid out as sent.
                    (None, Some(r)) if problem.is_none() => {
                        html! { <pre class="json">{ r.clone() }</pre> }
                    }
                    (None, Some(r)) => html! { <code>{ r.clone() }</code> },
                    (None, None) => html! {},
                },
                problem.clone(),
            ),
            other => (
                String::new(),
                html! { <code>{ other.to_line() }</code> },
                None,
            ),
        };
        html! {
            <tr>
                <th scope="row">{ opt.to_string() }</th>
                <td>{ name }</td>
                <td>{ body }
                    if let Some(p) = problem { <p class="warn">{ p }</p> }
                </td>
            </tr>
        }
    };
    html! {
        <section class="card" aria-labelledby="mud-h">
            <h2 id="mud-h">{ "MUD data" }</h2>
            <p class="muted">{ format!(
                "{} message(s) from the server, decoded (the first {} are kept; none of this is in the record).",
                decoded.len(),
                crate::state::MAX_DECODED
            ) }</p>
            <table class="mud-data"><tbody>{ for decoded.iter().map(row) }</tbody></table>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct EvidenceProps {
    pub text: String,
}

/// "Copy as evidence": the negotiation lines, TLS, MSSP and the permalink as plain text, for
/// a game directory's listing request.
#[component]
pub fn EvidenceCard(props: &EvidenceProps) -> Html {
    let copied = use_state(String::new);
    let text = props.text.clone();
    let on_copy = {
        let (text, copied) = (text.clone(), copied.clone());
        Callback::from(move |_: MouseEvent| copied.set(copy(&text, "evidence")))
    };
    html! {
        <section class="card" aria-labelledby="evidence-h">
            <div class="card-head">
                <h2 id="evidence-h">{ "Evidence" }</h2>
                <button type="button" onclick={on_copy}>{ "Copy as evidence" }</button>
                <span class="muted" role="status">{ (*copied).clone() }</span>
            </div>
            <pre class="evidence" tabindex="0" aria-label="Evidence for a listing request">{ text }</pre>
        </section>
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
#[component]
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
        Callback::from(move |_: MouseEvent| copied.set(copy(&json, "record")))
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
        if !r.mssp.is_empty() || !r.mssp_findings.is_empty() {
            <section class="card" aria-labelledby="mssp-h">
                <h2 id="mssp-h">{ "MSSP" }</h2>
                { mssp_summary(&r.mssp_findings) }
                { for r.tls_claims.iter().map(|(var, port)| html! {
                    <TlsClaim host={r.host.clone()} port={*port} var={var.clone()} />
                }) }
                if !r.mssp.is_empty() {
                    <table class="mssp">
                        <tbody>{ for r.mssp.iter().map(|m| mssp_row(m, &r.mssp_findings)) }</tbody>
                    </table>
                }
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

#[derive(Properties, PartialEq)]
pub struct TlsClaimProps {
    pub host: String,
    pub port: u16,
    pub var: String,
}

/// Whether the TLS port the MSSP names speaks TLS: one handshake through the proxy
/// (`/api/tls-check`), no scan.
#[component]
pub fn TlsClaim(props: &TlsClaimProps) -> Html {
    let answer = use_state(|| None::<String>);
    {
        let answer = answer.clone();
        let (host, port) = (props.host.clone(), props.port);
        use_effect_with((host.clone(), port), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let url = format!(
                    "/api/tls-check?host={}&port={port}",
                    String::from(js_sys::encode_uri_component(&host))
                );
                let text = match crate::api::get_json(&url).await {
                    Ok(v) if crate::api::field(&v, "tls").as_bool() == Some(true) => format!(
                        "holds: port {port} speaks TLS. {}",
                        crate::api::text_field(&v, "verdict_text")
                    ),
                    Ok(v) => format!("does not hold: {}", crate::api::text_field(&v, "message")),
                    Err(f) => f.sentence("the TLS check"),
                };
                answer.set(Some(text));
            });
        });
    }
    html! {
        <p class="tls-claim">{ format!("MSSP {} claims TLS on port {}: ", props.var, props.port) }
            { match &*answer {
                Some(t) => html! { { t.clone() } },
                None => html! { <span class="muted">{ "checking…" }</span> },
            } }
        </p>
    }
}

/// The MSSP check's count and its findings about MSSP as a whole (missing variables, no data).
fn mssp_summary(findings: &[mssp_check::Finding]) -> Html {
    let n = mssp_check::warnings(findings);
    html! { <>
        <p class={if n == 0 { "muted" } else { "warn" }}>{ match n {
            0 => "Checked against the MSSP specification: no warnings.".to_owned(),
            1 => "Checked against the MSSP specification: 1 warning.".to_owned(),
            n => format!("Checked against the MSSP specification: {n} warnings."),
        } }</p>
        <ul class="findings">
            { for findings.iter().filter(|f| f.var.is_none()).map(finding) }
        </ul>
    </> }
}

fn finding(f: &mssp_check::Finding) -> Html {
    html! { <li class={f.level.as_str()}>{ format!("{}: {}", f.level.as_str(), f.text) }</li> }
}

fn mssp_row(m: &MsspRow, findings: &[mssp_check::Finding]) -> Html {
    let mine: Vec<&mssp_check::Finding> = findings
        .iter()
        .filter(|f| f.var.as_deref() == Some(m.name.as_str()))
        .collect();
    html! {
        <tr class={if mine.iter().any(|f| f.level == mssp_check::Level::Warning) { "has-warning" } else { "" }}>
            <th scope="row">{ m.name.clone() }</th>
            <td>{ for m.values.iter().enumerate().map(|(i, (v, link))| html! { <>
                if i > 0 { { ", " } }
                if *link {
                    <a href={v.clone()} rel="noopener noreferrer nofollow" target="_blank">{ v.clone() }</a>
                } else {
                    { v.clone() }
                }
            </> }) }</td>
            <td class="findings">
                if !mine.is_empty() {
                    <ul>{ for mine.iter().map(|f| finding(f)) }</ul>
                }
            </td>
        </tr>
    }
}
