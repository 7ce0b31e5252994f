//! Browser tests: render the page into headless Chromium's DOM, from canned engine events
//! and proxy messages (no network), and look at it.

use crate::fixtures::{conn, ev, report_after, req};
use crate::request::{ScanMode, ScanRequest, TlsMode};
use crate::state::{Action, Report, ScanState};
use crate::view::Page;
use crate::{App, ENGINE_VERSION};
use iacscope_shared::mudsb;
use iacscope_shared::telopt::{TelOpt, Verb};
use iacscope_shared::{transcript, Dir, EventKind, Phase, Timestamp};
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
#[component]
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

/// Lets Yew's scheduler run until the page is still: a render can run effects whose state
/// changes schedule another render (Yew 0.23 runs those on a later turn), so a few turns.
async fn settle() {
    for _ in 0..3 {
        yew::platform::time::sleep(std::time::Duration::ZERO).await;
    }
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

fn connected() -> Action {
    Action::Connected(conn())
}

#[wasm_bindgen_test]
async fn form_has_labelled_controls_and_engine_version() {
    let root = mount().await;
    let form = root
        .query_selector("form.scan-form")
        .unwrap()
        .expect("a form");
    // The header's search has its own labelled form, and links home.
    let search = root.query_selector("form.search-form").unwrap().unwrap();
    assert_eq!(search.get_attribute("role").as_deref(), Some("search"));
    assert!(search
        .query_selector("input[aria-label]")
        .unwrap()
        .is_some());
    assert_eq!(
        root.query_selector("header.site h1 a")
            .unwrap()
            .unwrap()
            .get_attribute("href")
            .as_deref(),
        Some("/")
    );
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
        .query_selector("form.scan-form")
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
        .query_selector("form.scan-form button[type=submit]")
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
    report_after(
        b"\xff\xfb\x46\xff\xfa\x46\x01NAME\x02Seed\x01WEBSITE\x02https://x.example/\x01ICON\x02javascript:alert(1)\x01MCCP\x021\xff\xf0#$#mcp version: 2.1 to: 2.1\r\n",
    )
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
    // The MSSP check: the seed lacks PLAYERS and UPTIME, the two warnings (ICON and
    // WEBSITE are the specification's own variables).
    let warnings: Vec<String> = all(&root, ".findings li.warning")
        .iter()
        .map(|li| li.text_content().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("PLAYERS is required"), "{warnings:?}");
    assert!(text(&root, "#mssp-h ~ p").contains("2 warnings"));
    // The summary card comes first and names the server, its fingerprint and the warnings.
    let first = root.query_selector("section.card").unwrap().unwrap();
    assert_eq!(first.class_name(), "card summary");
    assert_eq!(text(&root, ".summary h2"), "Seed");
    let facts = text(&root, ".summary dl.facts");
    assert!(facts.contains(&report.fingerprint), "{facts}");
    assert!(facts.contains("2 about MSSP"), "{facts}");
    assert!(facts.contains("mud.example.org:4000"), "{facts}");
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
async fn an_unverified_certificate_is_a_sentence_with_a_retry() {
    let started = Rc::new(RefCell::new(None));
    let on_start = {
        let started = started.clone();
        Callback::from(move |r: ScanRequest| *started.borrow_mut() = Some(r))
    };
    let tls_req = ScanRequest {
        tls: TlsMode::On,
        ..req()
    };
    let root = mount_canned(
        vec![
            Action::Start(tls_req.clone()),
            Action::ProxyError {
                code: "tls_failure".into(),
                message: "The certificate is self-signed (CN=localhost). Scan again without \
                          verification to see the server anyway."
                    .into(),
            },
        ],
        on_start,
    )
    .await;
    assert_eq!(
        text(&root, "[role=alert]"),
        "The certificate is self-signed (CN=localhost). Scan again without verification to \
         see the server anyway."
    );
    root.query_selector("button.retry-insecure")
        .unwrap()
        .expect("a retry button")
        .unchecked_into::<web_sys::HtmlElement>()
        .click();
    settle().await;
    assert_eq!(
        started.borrow().clone(),
        Some(ScanRequest {
            tls: TlsMode::Insecure,
            ..tls_req
        })
    );
}

/// A finished scan of `bytes` in a session left at ascii, with "Decode as" set to `enc`.
async fn decode_as(bytes: &[u8], enc: &str) -> Element {
    let report = report_after(bytes);
    let root = mount_canned(
        vec![
            Action::Start(req()),
            connected(),
            Action::Banner {
                bytes: bytes.to_vec(),
                encoding: "ascii".into(),
            },
            Action::Finished(Rc::new(report)),
        ],
        Callback::noop(),
    )
    .await;
    let select: HtmlSelectElement = root
        .query_selector("#decode-as")
        .unwrap()
        .expect("Decode as")
        .unchecked_into();
    select.set_value(enc);
    fire(&select, "change");
    settle().await;
    root
}

#[wasm_bindgen_test]
async fn decode_as_rerenders_the_banner_from_its_bytes() {
    // A CP437 box sent to a session left at ascii (shown as latin-1). The cp437 table is not
    // in the app: choosing it fetches it, and the banner stays latin-1 until it is here.
    let (held, _restore) = hold_tables();
    // (" Modem " keeps it from being valid big5, which another test installs.)
    let bytes = b"\xc9\xcd\xcd\xbb\r\n\xba Modem \xba\r\n\xc8\xcd\xcd\xbc\r\n";
    let root = decode_as(bytes, "cp437").await;
    assert!(text(&root, ".encoding-line").contains("looks like cp437"));
    assert!(text(&root, ".encoding-line").contains("shown as latin-1"));
    assert!(text(&root, "pre.banner").starts_with("\u{c9}\u{cd}\u{cd}\u{bb}"));
    assert_eq!(held.borrow().len(), 1, "one fetch, of /codecs/cp437.bin");
    release(&held);
    settle().await;
    settle().await;
    assert!(
        text(&root, "pre.banner").starts_with("\u{2554}\u{2550}\u{2550}\u{2557}"),
        "{}",
        text(&root, "pre.banner")
    );
    assert!(!text(&root, ".encoding-line").contains("shown as latin-1"));
}

#[wasm_bindgen_test]
async fn decode_as_big5_fetches_its_table_then_redraws() {
    // "中文" in big5: latin-1 until /codecs/big5.bin has been fetched and installed.
    let (held, _restore) = hold_tables();
    let root = decode_as(b"\xa4\xa4\xa4\xe5\r\n", "big5").await;
    assert!(text(&root, "pre.banner").starts_with("\u{a4}\u{a4}\u{a4}\u{e5}"));
    assert!(!iacscope_shared::codec::is_exact("big5"));
    release(&held);
    settle().await;
    settle().await;
    assert!(iacscope_shared::codec::is_exact("big5"));
    assert!(
        text(&root, "pre.banner").starts_with("中文"),
        "{}",
        text(&root, "pre.banner")
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

/// The visible text of every timeline row's description, oldest first.
fn row_texts(root: &Element) -> Vec<String> {
    all(root, "ol.timeline > li .what")
        .iter()
        .map(|e| e.text_content().unwrap())
        .collect()
}

#[wasm_bindgen_test]
async fn a_permalink_page_shows_what_the_live_scan_showed() {
    use crate::permalink::tests::{live_actions, stored_page, summary};
    let (live, transcript, json) = live_actions();
    let live_root = mount_canned(live, Callback::noop()).await;
    let actions = stored_page(&summary("live"), Some(&transcript.to_text()), &json);
    let root = mount_canned(actions, Callback::noop()).await;
    assert!(!row_texts(&root).is_empty());
    assert_eq!(row_texts(&root), row_texts(&live_root));
    assert_eq!(text(&root, "pre.banner"), text(&live_root, "pre.banner"));
    assert!(text(&root, "pre.banner").contains("Welcome"));
    let fp = text(&live_root, ".fingerprint .hash");
    assert_eq!(text(&root, ".fingerprint .hash"), fp);
    assert_eq!(text(&root, "pre.json"), json);
    assert_eq!(
        text(&root, "table.mssp"),
        text(&live_root, "table.mssp"),
        "MSSP table"
    );
    assert!(text(&root, "p.status").starts_with("Saved: quick scan of mud.example.org:4000"));
    assert!(text(&root, "p.stored").contains("connects to nothing"));
    // No connection line with a proxy session: nothing was connected.
    assert!(root.query_selector("p.connection").unwrap().is_none());
    assert_eq!(
        text(&root, "p.shared"),
        format!(
            "This fingerprint is shared by 3 other servers. Servers with fingerprint {fp} · \
             This server's history"
        )
    );
    let link = root.query_selector("a.fingerprint-link").unwrap().unwrap();
    assert_eq!(
        link.get_attribute("href").unwrap(),
        format!("/fingerprints/{fp}")
    );
    let permalink = root.query_selector("a.permalink").unwrap().unwrap();
    assert!(permalink
        .get_attribute("href")
        .unwrap()
        .ends_with("/s/0123456789abcdef0123456789abcdef"));
    assert_eq!(all(&root, "pre.snippet").len(), 3);
}

#[wasm_bindgen_test]
async fn an_imported_scan_shows_its_record_and_says_there_is_no_transcript() {
    use crate::permalink::tests::{live_actions, summary};
    let (_, _, json) = live_actions();
    // As the page parses it: with the browser's JSON parser.
    let record = crate::api::to_pyjson(&crate::api::parse(&json).unwrap());
    let actions = crate::permalink::actions(&summary("import"), None, &json, Some(&record));
    let root = mount_canned(actions, Callback::noop()).await;
    assert!(root.query_selector("ol.timeline").unwrap().is_none());
    assert_eq!(text(&root, "pre.json"), json);
    assert!(text(&root, "p.stored-note").contains("no transcript exists"));
    assert!(text(&root, "table.mssp").contains("Seed"));
    assert!(text(&root, "pre.banner").contains("Welcome"));
}

#[wasm_bindgen_test]
async fn a_failed_save_is_a_sentence_and_the_result_stays() {
    let root = mount_canned(
        vec![
            Action::Start(req()),
            connected(),
            Action::Finished(Rc::new(finished_report())),
            Action::Saving,
        ],
        Callback::noop(),
    )
    .await;
    assert!(text(&root, "p.saving").contains("Saving"));
    let root = mount_canned(
        vec![
            Action::Start(req()),
            connected(),
            Action::Finished(Rc::new(finished_report())),
            Action::Saving,
            Action::SaveFailed(crate::state::save_error_sentence(429, "rate_limited", "")),
        ],
        Callback::noop(),
    )
    .await;
    assert!(text(&root, "p.save-failed").contains("too many results were saved"));
    assert!(root.query_selector("a.permalink").unwrap().is_none());
    assert!(!text(&root, ".fingerprint .hash").is_empty());
    assert!(root.query_selector("pre.json").unwrap().is_some());
}

#[wasm_bindgen_test]
async fn snippets_keep_a_hostile_host_as_text() {
    use crate::share::Snippets;
    use crate::state::Saved;
    use crate::view::{SavedCard, SavedProps};
    let host = "x\"><img src=x onerror=alert(1)>]]{{t}}";
    let id = "0123456789abcdef0123456789abcdef";
    let root = new_root();
    let props = SavedProps {
        saved: Rc::new(Saved {
            id: id.into(),
            host: host.into(),
            port: 23,
            fingerprint: "a1b2c3d4e5f60718".into(),
            others: 1,
            browser_agrees: Some(false),
        }),
        origin: "https://iacscope.example".into(),
    };
    yew::Renderer::<SavedCard>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let want = Snippets::new("https://iacscope.example", id, host, 23);
    let shown: Vec<String> = all(&root, "pre.snippet")
        .iter()
        .map(|e| e.text_content().unwrap())
        .collect();
    assert_eq!(shown, [want.iframe, want.markdown, want.mediawiki]);
    // Nothing from the host became an element.
    assert!(root.query_selector("img, iframe").unwrap().is_none());
    let buttons = all(&root, "button.copy");
    assert_eq!(buttons.len(), 4);
    assert_eq!(
        buttons[1].get_attribute("data-copy").as_deref(),
        Some(shown[0].as_str())
    );
    // One handler serves every button: a click reports on the button's own status line.
    buttons[2].unchecked_ref::<web_sys::HtmlElement>().click();
    settle().await;
    let status = buttons[2]
        .next_element_sibling()
        .unwrap()
        .text_content()
        .unwrap();
    assert!(!status.is_empty(), "no copy status");
    assert_eq!(
        text(&root, "p.shared")
            .split(". ")
            .next()
            .unwrap_or_default(),
        "This fingerprint is shared by 1 other server"
    );
    assert!(text(&root, "p.disagree").contains("bytes the proxy saw"));
    let server = root.query_selector("a.server-link").unwrap().unwrap();
    assert_eq!(
        server.get_attribute("href").unwrap(),
        "/servers/x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%5D%5D%7B%7Bt%7D%7D/23"
    );
}

#[wasm_bindgen_test]
async fn a_fingerprint_lists_its_servers_with_links() {
    use crate::directory::{server_list, ServerRef};
    let id = "0123456789abcdef0123456789abcdef";
    let servers = vec![
        ServerRef {
            host: "mud.example.org".into(),
            port: 4000,
            name: Some("Seed <b>MUD</b>".into()),
            scan: id.into(),
            fingerprint: "a1b2c3d4e5f60718".into(),
            date: "2026-01-01T00:00:00+00:00".into(),
        },
        ServerRef {
            host: "::1".into(),
            port: 23,
            name: None,
            scan: id.into(),
            fingerprint: "a1b2c3d4e5f60718".into(),
            date: "2026-01-02T00:00:00+00:00".into(),
        },
    ];
    let root = new_root();
    root.append_child(&server_list(&servers, false, "none").0)
        .unwrap();
    let rows = all(&root, "table.servers tbody tr");
    assert_eq!(rows.len(), 2);
    assert_eq!(text(&rows[0], "a.server"), "mud.example.org:4000");
    assert_eq!(
        rows[0]
            .query_selector("a.server")
            .unwrap()
            .unwrap()
            .get_attribute("href")
            .unwrap(),
        "/servers/mud.example.org/4000"
    );
    assert_eq!(
        rows[0]
            .query_selector("a.scan")
            .unwrap()
            .unwrap()
            .get_attribute("href")
            .unwrap(),
        format!("/s/{id}")
    );
    assert!(rows[0].query_selector("b").unwrap().is_none());
    assert!(rows[0].text_content().unwrap().contains("Seed <b>MUD</b>"));
    assert_eq!(text(&rows[1], "a.server"), "[::1]:23");
    assert_eq!(
        rows[1]
            .query_selector("a.server")
            .unwrap()
            .unwrap()
            .get_attribute("href")
            .unwrap(),
        "/servers/%3A%3A1/23"
    );
    assert!(root.query_selector("a.fp").unwrap().is_none());
}

#[wasm_bindgen_test]
async fn the_census_page_and_a_servers_changes() {
    use crate::directory::{server_changes, stats_page, History, Stats};
    // As `/api/stats` sends it: two crawl rounds; no trend for MCP (not in records).
    let api = crate::api::parse(
        r#"{"generated": "2026-12-05T00:00:00+00:00", "servers": 10, "answering": 8,
            "with_mssp": 4, "unique_fingerprints": 3, "players_online": 42,
            "tls": {"servers": 2, "answering": 1},
            "trend": {"servers": [9, 10], "answering": [8, 8], "mssp_share": [0.4, 0.5],
                "unique_fingerprints": [4, 3], "players_online": [40, 42], "tls_answering": [1, 1]},
            "protocols": {"MSSP": {"servers": 4, "share": 0.5, "trend": [0.25, 0.5, 0.5]},
                "MCP": null},
            "codebases": [{"codebase": "<Evennia>", "servers": 3, "trend": [3, 3]}],
            "encodings": [{"encoding": "utf-8", "servers": 5, "trend": [6, 5]}]}"#,
    )
    .unwrap();
    let stats = Stats::from_json(&api);
    let root = new_root();
    root.append_child(&stats_page(&stats).0).unwrap();
    let trends: Vec<String> = all(&root, "dl.census .trend")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(
        trends,
        [
            "\u{25b2} was 9",
            "= was 8",
            "\u{25b2} was 40.0%",
            "\u{25bc} was 4",
            "\u{25b2} was 40",
            "= was 1",
        ]
    );
    // A bar per round, its height from the least (l0) to the greatest (l4).
    let bars: Vec<String> = all(&root, "dl.census .spark i")
        .iter()
        .map(|b| b.get_attribute("class").unwrap())
        .collect();
    assert_eq!(
        bars[..4],
        ["l0", "l4", "l2", "l2"],
        "servers 9 -> 10, answering 8 = 8"
    );
    let support: Vec<String> = all(&root, "table.support tbody tr")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(
        support[..2],
        ["MSSP450.0%= was 50.0%", "GMCP\u{2014}not in records"],
        "MSSP's trend; GMCP absent from the answer"
    );
    assert_eq!(
        all(&root, "table.support tbody tr")[0]
            .query_selector_all(".spark i")
            .unwrap()
            .length(),
        3
    );
    // One round: a value, no trend.
    let one = crate::api::parse(r#"{"servers": 10, "trend": {"servers": [10]}}"#).unwrap();
    let root = new_root();
    root.append_child(&stats_page(&Stats::from_json(&one)).0)
        .unwrap();
    assert!(all(&root, ".trend")
        .iter()
        .all(|t| t.text_content().unwrap().is_empty()));
    assert!(all(&root, ".spark").is_empty());
    let root = new_root();
    root.append_child(&stats_page(&stats).0).unwrap();
    let facts = text(&root, "dl.census");
    assert!(facts.contains("Answering8 (80.0%)"), "{facts}");
    assert!(facts.contains("With MSSP4 (50.0%)"), "{facts}");
    assert!(facts.contains("Players online (MSSP)42"), "{facts}");
    assert_eq!(
        text(&root, "table.codebases tbody td"),
        "<Evennia>",
        "server text stays text"
    );
    // Codebases and encodings have their trends too.
    let encodings = text(&root, "table.encodings tbody tr");
    assert!(encodings.contains("utf-85\u{25bc} was 6"), "{encodings}");
    assert_eq!(all(&root, "table.encodings .spark").len(), 1);
    let codebases = text(&root, "table.codebases tbody tr");
    assert!(codebases.contains("<Evennia>3= was 3"), "{codebases}");

    let history = History {
        points: vec![
            ("2026-12-01".into(), true, "ok".into(), "".into()),
            (
                "2026-12-02".into(),
                false,
                "timeout".into(),
                "no answer in 30 s".into(),
            ),
            ("2026-12-03".into(), true, "ok".into(), "".into()),
        ],
        fingerprints: vec![
            (
                "a1b2c3d4e5f60718".into(),
                "2026-12-01".into(),
                "2026-12-01".into(),
                1,
            ),
            (
                "0011223344556677".into(),
                "2026-12-03".into(),
                "2026-12-03".into(),
                1,
            ),
        ],
        mssp: Vec::new(),
    };
    // MSSP changes as the server API sends them.
    let api = crate::api::parse(
        r#"{"history": {"mssp_changes": [
            {"date": "D1", "sent": true, "variable": "NAME", "from": "Old", "to": "<New>"},
            {"date": "D1", "sent": true, "variable": "PORT", "from": null, "to": "4000, 4001"},
            {"date": "D2", "sent": false, "variable": null, "from": null, "to": null},
            {"date": "D3", "sent": true, "variable": "SSL", "from": "4443", "to": null}]}}"#,
    )
    .unwrap();
    let history = History {
        mssp: History::from_json(&api).mssp,
        ..history
    };
    let root = new_root();
    root.append_child(&server_changes(&history).0).unwrap();
    let mssp: Vec<String> = all(&root, "table.mssp-changes tbody tr")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(
        mssp,
        [
            "D3SSL4443",
            "D2MSSP not sent",
            "D1PORT4000, 4001",
            "D1NAMEOld<New>",
        ],
        "newest first, server text as text (empty cells get a dash from the style sheet)"
    );
    assert_eq!(all(&root, "table.mssp-changes span:empty").len(), 4);
    // The up/down strip: a bar per attempt.
    let bars = all(&root, ".updown i");
    assert_eq!(bars.len(), 3);
    assert_eq!(bars[1].get_attribute("class").as_deref(), Some("down"));
    assert_eq!(text(&root, "p.uptime"), "Answered 2 of 3 attempts (66%).");
    let results: Vec<String> = all(&root, "table.attempts tbody tr")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(results[0], "2026-12-03up", "newest first");
    assert_eq!(results[1], "2026-12-02timeoutno answer in 30 s");
    let changes = all(&root, "table.fingerprint-changes a.fp");
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[0].get_attribute("href").as_deref(),
        Some("/fingerprints/0011223344556677")
    );
}

#[wasm_bindgen_test]
async fn a_server_page_charts_numeric_players_and_marks_missing_ones() {
    // (The chart's elements are SVG elements: `svg.chart` only matches in that namespace.)
    use crate::directory::{server_history, ServerScan};
    let scan = |n: usize, players: Option<&str>| ServerScan {
        id: format!("{n:032x}"),
        fingerprint: "a1b2c3d4e5f60718".into(),
        date: format!("2026-01-0{n}T00:00:00+00:00"),
        players: players.map(str::to_owned),
        uptime: None,
    };
    let scans = vec![
        scan(1, Some("5")),
        scan(2, Some("12")),
        scan(3, None),
        scan(4, Some("lots")),
        scan(5, Some("20")),
        scan(6, Some(" 7 ")),
    ];
    let root = new_root();
    root.append_child(&server_history(&scans, Some("<Seed MUD>")).0)
        .unwrap();
    assert!(
        text(&root, "p.latest").starts_with("<Seed MUD> \u{b7} "),
        "the MSSP name, as text"
    );
    assert_eq!(all(&root, "svg.chart circle.point").len(), 4);
    assert_eq!(all(&root, "svg.chart line.missing").len(), 2);
    // The gap breaks the line: 5–12, then 20–7.
    assert_eq!(all(&root, "svg.chart polyline.line").len(), 2);
    let ticks: Vec<String> = all(&root, "svg.chart text.tick")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(ticks, ["20", "0"]);
    // The table lists every scan, newest first, with what MSSP said.
    let players: Vec<String> = all(&root, "table.scans .players")
        .iter()
        .map(|t| t.text_content().unwrap())
        .collect();
    assert_eq!(players, [" 7 ", "20", "lots", "—", "12", "5"]);
    assert_eq!(
        root.query_selector("a.latest-scan")
            .unwrap()
            .unwrap()
            .get_attribute("href")
            .unwrap(),
        format!("/s/{:032x}", 6)
    );
    // No numeric count at all: a sentence instead of an empty chart.
    let root = new_root();
    root.append_child(&server_history(&[scan(1, None), scan(2, Some("n/a"))], None).0)
        .unwrap();
    assert!(root.query_selector("svg").unwrap().is_none());
    assert!(text(&root, "p.no-chart").contains("numeric"));
}

/// Replaces `window.fetch` with canned answers `(status, body)` in order (the last one
/// repeats); returns the number of calls so far and a guard that restores the real fetch.
/// A stand-in for `window.fetch`.
type FakeFetch = wasm_bindgen::closure::Closure<
    dyn FnMut(wasm_bindgen::JsValue, wasm_bindgen::JsValue) -> js_sys::Promise,
>;

/// The real `window.fetch` and the fake that replaced it (kept alive until the real one is
/// back); dropping it restores the real one.
struct FetchRestore {
    real: wasm_bindgen::JsValue,
    _fake: FakeFetch,
}

impl Drop for FetchRestore {
    fn drop(&mut self) {
        let _ = js_sys::Reflect::set(&gloo::utils::window(), &"fetch".into(), &self.real);
    }
}

/// The real `window.fetch`, before a fake replaces it.
fn real_fetch() -> wasm_bindgen::JsValue {
    js_sys::Reflect::get(&gloo::utils::window(), &"fetch".into()).unwrap()
}

/// Installs `fake` as `window.fetch`; the guard puts `real` back.
fn replace_fetch(real: wasm_bindgen::JsValue, fake: FakeFetch) -> FetchRestore {
    js_sys::Reflect::set(&gloo::utils::window(), &"fetch".into(), fake.as_ref()).unwrap();
    FetchRestore { real, _fake: fake }
}

fn stub_fetch(answers: Vec<(u16, &'static str)>) -> (Rc<RefCell<usize>>, impl Drop) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsValue;
    let real = real_fetch();
    let calls = Rc::new(RefCell::new(0usize));
    let counter = calls.clone();
    let fake = Closure::<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>::new(
        move |_url: JsValue, _init: JsValue| {
            let n = *counter.borrow();
            *counter.borrow_mut() += 1;
            let (status, body) = answers[n.min(answers.len() - 1)];
            let init = web_sys::ResponseInit::new();
            init.set_status(status);
            let resp = web_sys::Response::new_with_opt_str_and_init(Some(body), &init).unwrap();
            js_sys::Promise::resolve(&JsValue::from(resp))
        },
    );
    (calls, replace_fetch(real, fake))
}

/// Fetches of `/codecs/*.bin` waiting for [`release`]: the resolver and the answer of each.
type Held = Rc<RefCell<Vec<(js_sys::Function, web_sys::Response)>>>;

/// Replaces `window.fetch` so that `/codecs/cp437.bin` and `/codecs/big5.bin` are answered
/// from the repository's table files, and only when the test calls [`release`] (any other
/// codec table: 404); other URLs go to the real fetch. Returns the held fetches and a guard
/// that restores the real fetch.
fn hold_tables() -> (Held, impl Drop) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsValue;
    let real = real_fetch();
    let held: Held = Rc::default();
    let (queue, real_fetch) = (
        held.clone(),
        real.clone().unchecked_into::<js_sys::Function>(),
    );
    let fake = Closure::<dyn FnMut(JsValue, JsValue) -> js_sys::Promise>::new(
        move |url: JsValue, init: JsValue| {
            let path = url.as_string().unwrap_or_default();
            let Some(name) = path.strip_prefix("/codecs/") else {
                return real_fetch
                    .call2(&gloo::utils::window(), &url, &init)
                    .unwrap()
                    .unchecked_into();
            };
            let body: Option<&[u8]> = match name {
                "cp437.bin" => Some(include_bytes!("../../shared/src/codec/data/cp437.bin")),
                "big5.bin" => Some(include_bytes!("../../shared/src/codec/data/big5.bin")),
                _ => None,
            };
            let init = web_sys::ResponseInit::new();
            init.set_status(if body.is_some() { 200 } else { 404 });
            let mut body = body.unwrap_or_default().to_vec();
            let resp: web_sys::Response =
                web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), &init).unwrap();
            let queue = queue.clone();
            js_sys::Promise::new(&mut |resolve, _reject| {
                queue.borrow_mut().push((resolve, Clone::clone(&resp)));
            })
        },
    );
    (held, replace_fetch(real, fake))
}

/// Answers every held codec table fetch.
fn release(held: &Held) {
    for (resolve, resp) in held.take() {
        resolve.call1(&wasm_bindgen::JsValue::NULL, &resp).unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_save_retries_while_the_session_is_open() {
    use crate::hook::save_scan;
    use crate::state::SaveStatus;
    let open = (
        409,
        r#"{"error":"session_open","message":"the session is still open"}"#,
    );
    let saved = (
        200,
        r#"{"id":"0123456789abcdef0123456789abcdef","url":"/s/0123456789abcdef0123456789abcdef",
            "fingerprint":"a1b2c3d4e5f60718","shared_by":3,"consistent":true,"browser_agrees":false}"#,
    );
    let server = ("mud.example.org".to_string(), 4000);
    let (calls, _restore) = stub_fetch(vec![open, open, saved]);
    let action = save_scan("s1", "{}", server.clone(), || true)
        .await
        .unwrap();
    assert_eq!(*calls.borrow(), 3, "two 409s, then the save");
    let s = ScanState::replay([Action::Start(req()), action]);
    match &s.save {
        SaveStatus::Saved(saved) => {
            assert_eq!(saved.id, "0123456789abcdef0123456789abcdef");
            assert_eq!((saved.others, saved.browser_agrees), (2, Some(false)));
            assert_eq!((saved.host.as_str(), saved.port), ("mud.example.org", 4000));
        }
        other => panic!("{other:?}"),
    }
    drop(_restore);
    // Rate limited: no retry, a sentence.
    let (calls, _restore) = stub_fetch(vec![(
        429,
        r#"{"error":"rate_limited","message":"too many saves"}"#,
    )]);
    let action = save_scan("s1", "{}", server.clone(), || true)
        .await
        .unwrap();
    assert_eq!(*calls.borrow(), 1);
    match action {
        Action::SaveFailed(why) => assert!(why.contains("too many results"), "{why}"),
        other => panic!("{other:?}"),
    }
    drop(_restore);
    // A new scan started while waiting: the old save reports nothing.
    let (calls, _restore) = stub_fetch(vec![open]);
    assert_eq!(save_scan("s1", "{}", server.clone(), || false).await, None);
    assert_eq!(*calls.borrow(), 1);
    drop(_restore);
    // Still open after every retry: a sentence, not a hang.
    let (calls, _restore) = stub_fetch(vec![open]);
    match save_scan("s1", "{}", server, || true).await {
        Some(Action::SaveFailed(why)) => assert!(why.contains("did not close"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*calls.borrow(), crate::state::SAVE_RETRIES as usize + 1);
}

#[wasm_bindgen_test]
fn gmcp_bodies_are_checked_by_the_browser_and_kept_as_sent() {
    // In wasm the engine leaves GMCP JSON to the browser's JSON.parse (`api::parse_gmcp`),
    // which only checks it: the page shows the server's key order and integers.
    let sb = |payload: &[u8]| iacscope_shared::Event {
        at: Timestamp(1_000),
        kind: EventKind::Subnegotiation {
            dir: Dir::Recv,
            opt: TelOpt::GMCP,
            payload: payload.to_vec(),
            meaning: String::new(),
        },
    };
    let s = ScanState::replay([
        Action::Start(req()),
        connected(),
        Action::Step {
            now: Timestamp(2_000),
            phase: Phase::Negotiating,
            events: vec![
                sb(br#"Char.Vitals {"hp": 1, "2": 9007199254740993, "ok": [true, null]}"#),
                sb(b"Char.Name {not json"),
                sb(b"Core.Ping"),
            ],
        },
    ]);
    let shown: Vec<(Option<String>, Option<String>)> = s
        .live
        .decoded
        .iter()
        .map(|(_, d)| match d {
            mudsb::Decoded::Gmcp { raw, problem, .. } => (raw.clone(), problem.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                Some("{\n  \"hp\": 1,\n  \"2\": 9007199254740993,\n  \"ok\": [\n    true,\n    null\n  ]\n}".into()),
                None
            ),
            (Some("{not json".into()), Some("not JSON".into())),
            (None, None),
        ]
    );
}
