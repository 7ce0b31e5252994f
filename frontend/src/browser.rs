//! Browser tests: render the page into headless Chromium's DOM, from canned engine events
//! and proxy messages (no network), and look at it.

use crate::driver::Driver;
use crate::request::{ScanMode, ScanRequest, TlsMode};
use crate::state::{Action, Connection, Report, ScanState};
use crate::view::Page;
use crate::{App, ENGINE_VERSION};
use iacscope_shared::record::SessionInfo;
use iacscope_shared::telopt::{TelOpt, Verb};
use iacscope_shared::{transcript, Dir, Event, EventKind, Phase, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlFormElement, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

wasm_bindgen_test_configure!(run_in_browser);

#[derive(Properties, PartialEq)]
struct HarnessProps {
    actions: Rc<Vec<Action>>,
    on_start: Callback<ScanRequest>,
    #[prop_or_default]
    on_cancel: Callback<()>,
}

/// The page over a state built from canned actions.
#[function_component]
fn Harness(p: &HarnessProps) -> Html {
    let actions = p.actions.clone();
    let state =
        use_reducer(move || Rc::unwrap_or_clone(ScanState::replay(actions.iter().cloned())));
    html! { <Page state={state} on_start={p.on_start.clone()} on_cancel={p.on_cancel.clone()} /> }
}

fn new_root() -> Element {
    let document = gloo::utils::document();
    let root = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&root).unwrap();
    root
}

/// Renders [`App`] into a fresh element and lets Yew's scheduler run.
async fn mount() -> Element {
    let root = new_root();
    yew::Renderer::<App>::with_root(root.clone()).render();
    settle().await;
    root
}

async fn mount_canned(actions: Vec<Action>, on_start: Callback<ScanRequest>) -> Element {
    mount_with_cancel(actions, on_start, Callback::noop()).await
}

async fn mount_with_cancel(
    actions: Vec<Action>,
    on_start: Callback<ScanRequest>,
    on_cancel: Callback<()>,
) -> Element {
    let root = new_root();
    let props = HarnessProps {
        actions: Rc::new(actions),
        on_start,
        on_cancel,
    };
    yew::Renderer::<Harness>::with_root_and_props(root.clone(), props).render();
    settle().await;
    root
}

async fn settle() {
    yew::platform::time::sleep(std::time::Duration::ZERO).await;
}

fn input(root: &Element, selector: &str) -> HtmlInputElement {
    root.query_selector(selector)
        .unwrap()
        .unwrap()
        .unchecked_into()
}

fn text(root: &Element, selector: &str) -> String {
    root.query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no {selector}"))
        .text_content()
        .unwrap()
}

fn all(root: &Element, selector: &str) -> Vec<Element> {
    let list = root.query_selector_all(selector).unwrap();
    (0..list.length())
        .map(|i| list.item(i).unwrap().unchecked_into())
        .collect()
}

fn fire(el: &Element, kind: &str) {
    // Yew listens at the root, so the synthetic event must bubble like a real one.
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    let event = web_sys::Event::new_with_event_init_dict(kind, &init).unwrap();
    el.dispatch_event(&event).unwrap();
}

fn req() -> ScanRequest {
    ScanRequest {
        host: "mud.example.org".into(),
        port: 4000,
        tls: TlsMode::Off,
        mode: ScanMode::Quick,
    }
}

fn connected() -> Action {
    Action::Connected(Connection {
        session: "s1".into(),
        host: "mud.example.org".into(),
        ip: "192.0.2.7".into(),
        port: 4000,
        tls: None,
    })
}

fn ev(ms: u64, kind: EventKind) -> Event {
    Event {
        at: Timestamp(ms * 1000),
        kind,
    }
}

#[wasm_bindgen_test]
async fn form_has_labelled_controls_and_engine_version() {
    let root = mount().await;
    let form = root.query_selector("form").unwrap().expect("a form");
    assert_eq!(
        form.get_attribute("aria-label").as_deref(),
        Some("Scan a telnet server")
    );
    for id in ["target", "tls", "mode-quick", "mode-full"] {
        let label = root.query_selector(&format!("label[for='{id}']")).unwrap();
        assert!(label.is_some(), "control #{id} has no label");
    }
    assert_eq!(input(&root, "#tls").type_(), "checkbox");
    assert!(!input(&root, "#tls").checked());
    assert!(input(&root, "#mode-quick").checked());
    let footer = text(&root, "footer");
    assert!(footer.contains(ENGINE_VERSION), "{footer}");
    assert!(footer.contains(transcript::MAGIC), "{footer}");
    assert!(
        footer.contains(iacscope_shared::TELNETLIB3_VERSION),
        "{footer}"
    );
}

#[wasm_bindgen_test]
async fn submitting_starts_a_scan_of_the_parsed_target() {
    let started = Rc::new(RefCell::new(None));
    let on_start = {
        let started = started.clone();
        Callback::from(move |r: ScanRequest| *started.borrow_mut() = Some(r))
    };
    let root = mount_canned(vec![], on_start).await;
    let target = input(&root, "#target");
    target.set_value("example.org");
    fire(&target, "input");
    input(&root, "#tls").click();
    input(&root, "#mode-full").click();
    settle().await;
    // TLS shows the certificate switch, with its label.
    assert!(root
        .query_selector("label[for='insecure']")
        .unwrap()
        .is_some());
    let form: HtmlFormElement = root
        .query_selector("form")
        .unwrap()
        .unwrap()
        .unchecked_into();
    form.request_submit().unwrap();
    settle().await;
    assert_eq!(
        started.borrow().clone(),
        Some(ScanRequest {
            host: "example.org".into(),
            port: 992,
            tls: TlsMode::On,
            mode: ScanMode::Full,
        })
    );
    // A bad target is a sentence, not a scan.
    *started.borrow_mut() = None;
    target.set_value("example.org:0");
    fire(&target, "input");
    settle().await;
    form.request_submit().unwrap();
    settle().await;
    assert_eq!(*started.borrow(), None);
    assert_eq!(text(&root, "[role=alert]"), "`0` is not a port (1-65535)");
}

fn canned_timeline() -> Vec<Action> {
    vec![
        Action::Start(req()),
        connected(),
        Action::Step {
            now: Timestamp(1_600_000),
            phase: Phase::Banner,
            events: vec![
                ev(
                    0,
                    EventKind::PhaseStart {
                        phase: Phase::Negotiating,
                    },
                ),
                ev(
                    0,
                    EventKind::Negotiation {
                        dir: Dir::Sent,
                        verb: Verb::Will,
                        opt: TelOpt::TTYPE,
                    },
                ),
                ev(
                    12,
                    EventKind::Negotiation {
                        dir: Dir::Recv,
                        verb: Verb::Do,
                        opt: TelOpt::TTYPE,
                    },
                ),
                ev(
                    13,
                    EventKind::Data {
                        dir: Dir::Recv,
                        bytes: b"<script>x</script>".to_vec(),
                    },
                ),
                ev(
                    14,
                    EventKind::Violation {
                        text: "SB without SE".into(),
                    },
                ),
                ev(
                    1000,
                    EventKind::PhaseStart {
                        phase: Phase::Banner,
                    },
                ),
                ev(1500, EventKind::Closed),
            ],
        },
    ]
}

#[wasm_bindgen_test]
async fn timeline_rows_have_direction_verb_and_phase() {
    let cancelled = Rc::new(RefCell::new(0));
    let on_cancel = {
        let cancelled = cancelled.clone();
        Callback::from(move |()| *cancelled.borrow_mut() += 1)
    };
    let root = mount_with_cancel(canned_timeline(), Callback::noop(), on_cancel).await;
    // The running scan's request fills the form (as a deep link does), and blocks a second.
    assert_eq!(input(&root, "#target").value(), "mud.example.org:4000");
    assert!(root
        .query_selector("button[type=submit]")
        .unwrap()
        .unwrap()
        .has_attribute("disabled"));
    let rows = all(&root, "ol.timeline > li");
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0].class_name(), "ev sep");
    assert_eq!(rows[0].text_content().unwrap(), "0.000negotiating");
    assert_eq!(rows[1].class_name(), "ev sent neg verb-will");
    assert_eq!(text(&rows[1], ".what"), "-> IAC WILL TTYPE");
    assert_eq!(rows[2].class_name(), "ev recv neg verb-do");
    assert_eq!(text(&rows[2], ".t"), "0.012");
    // Server bytes are text: no element was made from them.
    assert_eq!(rows[3].class_name(), "ev recv data");
    assert!(text(&rows[3], ".what").contains("<script>x</script>"));
    assert!(rows[3].query_selector("script").unwrap().is_none());
    assert_eq!(rows[4].class_name(), "ev engine violation");
    assert_eq!(rows[6].class_name(), "ev recv closed");
    assert!(text(&root, ".notice").contains("during the banner phase"));
    assert_eq!(text(&root, ".progress li[aria-current=step]"), "banner");
    assert_eq!(text(&root, ".elapsed"), "1.6 s");
    root.query_selector("button.cancel")
        .unwrap()
        .expect("a cancel button")
        .unchecked_into::<web_sys::HtmlElement>()
        .click();
    assert_eq!(*cancelled.borrow(), 1);

    let select: HtmlSelectElement = root
        .query_selector("#filter")
        .unwrap()
        .unwrap()
        .unchecked_into();
    select.set_value("sent");
    fire(&select, "change");
    settle().await;
    let classes: Vec<String> = all(&root, "ol.timeline > li")
        .iter()
        .map(Element::class_name)
        .collect();
    assert_eq!(
        classes,
        [
            "ev sep",
            "ev sent neg verb-will",
            "ev engine violation",
            "ev sep"
        ]
    );
}

#[wasm_bindgen_test]
async fn banner_runs_are_text_with_colour_classes() {
    let root = mount_canned(
        vec![
            Action::Start(req()),
            Action::Banner {
                bytes: b"\x1b[1;31mRed\x1b[0m <b>plain</b>\r\n\x1b[38;5;196mX\x1b[38;2;0;135;255mY"
                    .to_vec(),
                encoding: "ascii".into(),
            },
        ],
        Callback::noop(),
    )
    .await;
    let pre = root.query_selector("pre.banner").unwrap().unwrap();
    assert_eq!(text(&pre, "span.fg-1.bold"), "Red");
    assert_eq!(text(&pre, "span.fg-196"), "X");
    assert_eq!(text(&pre, "span.fg-33"), "Y");
    assert!(pre.query_selector("b").unwrap().is_none());
    assert!(pre
        .text_content()
        .unwrap()
        .starts_with("Red <b>plain</b>\n"));
}

fn finished_report() -> Report {
    let (mut d, _) = Driver::new(req().config());
    let mut step = d.input(
        Timestamp(5_000),
        b"\xff\xfb\x46\xff\xfa\x46\x01NAME\x02Seed\x01WEBSITE\x02https://x.example/\x01ICON\x02javascript:alert(1)\x01MCCP\x021\xff\xf0#$#mcp version: 2.1 to: 2.1\r\n",
    );
    while let Some(t) = step.next {
        step = d.timeout(t);
    }
    let session = SessionInfo {
        host: "mud.example.org".into(),
        ip: "192.0.2.7".into(),
        port: 4000,
        connected: "2026-01-01T00:00:00+00:00".into(),
    };
    Report::new(d.scanner().outcome(), &session)
}

#[wasm_bindgen_test]
async fn results_show_protocols_mssp_fingerprint_and_record() {
    let report = finished_report();
    let root = mount_canned(
        vec![
            Action::Start(req()),
            connected(),
            Action::Finished(Rc::new(report.clone())),
        ],
        Callback::noop(),
    )
    .await;
    let rows: Vec<String> = all(&root, "table.protocols tbody tr")
        .iter()
        .map(|tr| tr.text_content().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "MSSPYes (MSSP)",
            "GMCPNo",
            "MSDPNo",
            "MCCPYes (MSSP)",
            "MCCP2No",
            "MXPNo",
            "MSPNo",
            "MCPYes (banner)",
            "ZMPNo",
        ]
    );
    let links = all(&root, "table.mssp a");
    assert_eq!(links.len(), 1);
    assert_eq!(
        links[0].get_attribute("href").as_deref(),
        Some("https://x.example/")
    );
    assert!(text(&root, "table.mssp").contains("javascript:alert(1)"));
    assert_eq!(text(&root, ".fingerprint .hash"), report.fingerprint);
    assert_eq!(text(&root, "pre.json"), report.json);
    let download = root.query_selector("a[download]").unwrap().unwrap();
    assert_eq!(
        download.get_attribute("download").unwrap(),
        report.file_name
    );
    assert_eq!(text(&root, ".path"), report.path);
    assert_eq!(
        text(&root, "pre.command"),
        "telnetlib3-fingerprint mud.example.org 4000"
    );
    assert!(text(&root, "[role=status]").starts_with("Done: quick scan of mud.example.org:4000"));
    assert!(root.query_selector("button.cancel").unwrap().is_none());
}

#[wasm_bindgen_test]
async fn proxy_errors_are_sentences() {
    let root = mount_canned(
        vec![
            Action::Start(req()),
            Action::ProxyError {
                code: "refused_by_policy".into(),
                message: "192.168.1.1 is a private address".into(),
            },
        ],
        Callback::noop(),
    )
    .await;
    assert_eq!(
        text(&root, "[role=alert]"),
        "The proxy does not connect to that address: 192.168.1.1 is a private address."
    );
    assert_eq!(
        text(&root, "[role=status]"),
        "Failed: quick scan of mud.example.org:4000"
    );
}

#[wasm_bindgen_test]
async fn timeline_option_filter_hex_and_paging() {
    let mut actions = canned_timeline();
    // 900 more rows: the DOM shows 400 at a time.
    actions.push(Action::Step {
        now: Timestamp(3_000_000),
        phase: Phase::Banner,
        events: (0..900)
            .map(|i| {
                ev(
                    2000 + i,
                    EventKind::Negotiation {
                        dir: Dir::Recv,
                        verb: Verb::Will,
                        opt: TelOpt::NAWS,
                    },
                )
            })
            .collect(),
    });
    let root = mount_canned(actions, Callback::noop()).await;
    for id in ["filter", "opt-filter", "hex"] {
        let label = root.query_selector(&format!("label[for='{id}']")).unwrap();
        assert!(label.is_some(), "control #{id} has no label");
    }
    // Paging: newest 400, then 400 older, then the first 107; newer goes back.
    let count = |root: &Element| all(root, "ol.timeline > li").len();
    assert_eq!(count(&root), 400);
    assert!(root.query_selector("button.newer").unwrap().is_none());
    let click = |sel: &str| {
        root.query_selector(sel)
            .unwrap()
            .unwrap_or_else(|| panic!("no {sel}"))
            .unchecked_into::<web_sys::HtmlElement>()
            .click()
    };
    click("button.older");
    settle().await;
    assert_eq!(count(&root), 400);
    assert!(text(&root, ".pager p").contains("from #108 to #507"));
    click("button.older");
    settle().await;
    assert_eq!(count(&root), 107);
    assert!(root.query_selector("button.older").unwrap().is_none());
    assert_eq!(
        text(&root, "ol.timeline > li:first-child"),
        "0.000negotiating"
    );
    click("button.newer");
    settle().await;
    assert!(text(&root, ".pager p").contains("from #108 to #507"));
    click("button.newer");
    settle().await;
    assert!(root.query_selector("button.newer").unwrap().is_none());
    // The option filter lists the options seen and keeps only one's rows and phase marks.
    let opt: HtmlSelectElement = root
        .query_selector("#opt-filter")
        .unwrap()
        .unwrap()
        .unchecked_into();
    let names: Vec<String> = all(&root, "#opt-filter option")
        .iter()
        .map(|o| o.text_content().unwrap())
        .collect();
    assert_eq!(names, ["all options", "TTYPE (24)", "NAWS (31)"]);
    opt.set_value("24");
    fire(&opt, "change");
    settle().await;
    let classes: Vec<String> = all(&root, "ol.timeline > li")
        .iter()
        .map(Element::class_name)
        .collect();
    assert_eq!(
        classes,
        [
            "ev sep",
            "ev sent neg verb-will",
            "ev recv neg verb-do",
            "ev sep"
        ]
    );
    // Hex on demand: the negotiation's wire bytes join its row.
    assert!(root.query_selector(".hex").unwrap().is_none());
    input(&root, "#hex").click();
    settle().await;
    let hex: Vec<String> = all(&root, ".hex")
        .iter()
        .map(|h| h.text_content().unwrap())
        .collect();
    assert_eq!(hex, ["ff fb 18", "ff fd 18"]);
    opt.set_value("");
    fire(&opt, "change");
    settle().await;
    assert!(all(&root, ".hex")
        .iter()
        .any(|h| h.text_content().unwrap() == "ff fb 1f"));
}

#[wasm_bindgen_test]
async fn banner_copies_as_plain_text() {
    let root = mount_canned(
        vec![
            Action::Start(req()),
            Action::Banner {
                bytes: b"\x1b[1;31mRed\x1b[0m text".to_vec(),
                encoding: "ascii".into(),
            },
        ],
        Callback::noop(),
    )
    .await;
    let button = root
        .query_selector("button.copy-banner")
        .unwrap()
        .expect("a copy button");
    assert_eq!(button.text_content().unwrap(), "Copy as plain text");
    button.unchecked_into::<web_sys::HtmlElement>().click();
    settle().await;
    // Either copied, or the sentence that says how to copy by hand.
    let said = text(&root, "#banner-h + button + [role=status]");
    assert!(
        said == "Copied." || said.contains("select the banner below"),
        "{said}"
    );
}
