//! iacscope's web app (Yew): for now the shell of the scan form and the engine's version.
//! Talking to the proxy and showing the timeline come in a later issue; the engine itself
//! (`iacscope-shared`) does all telnet interpretation, this crate only renders and dispatches.

use iacscope_shared::transcript;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// The engine's version (the workspace shares one version across crates).
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How thorough a scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanMode {
    Quick,
    Full,
}

/// The telnet port when none is given (RFC 854), and the telnet-over-TLS port (IANA `telnets`).
pub const TELNET_PORT: u16 = 23;
pub const TELNETS_PORT: u16 = 992;

/// Splits `host[:port]` (or `[v6addr]:port`), defaulting the port by `tls`.
pub fn parse_target(input: &str, tls: bool) -> Result<(String, u16), String> {
    let input = input.trim();
    let default_port = if tls { TELNETS_PORT } else { TELNET_PORT };
    if input.is_empty() {
        return Err("enter a server as host or host:port".into());
    }
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("missing `]` after IPv6 address")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after `]`")),
        }
    } else if input.matches(':').count() > 1 {
        (input, None) // a bare IPv6 address
    } else {
        match input.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (input, None),
        }
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("`{host}` is not a host name"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("`{p}` is not a port (1-65535)")),
            Ok(p) => p,
        },
    };
    Ok((host.to_string(), port))
}

/// The page: the scan form, a status line, and the engine's version.
#[function_component]
pub fn App() -> Html {
    let target = use_state(String::new);
    let tls = use_state(|| false);
    let mode = use_state(|| ScanMode::Quick);
    let status = use_state(String::new);

    let on_target = {
        let target = target.clone();
        Callback::from(move |e: InputEvent| {
            target.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let on_tls = {
        let tls = tls.clone();
        Callback::from(move |e: Event| {
            tls.set(e.target_unchecked_into::<HtmlInputElement>().checked());
        })
    };
    let on_mode = |m: ScanMode| {
        let mode = mode.clone();
        Callback::from(move |_: Event| mode.set(m))
    };
    let on_submit = {
        let (target, tls, mode, status) =
            (target.clone(), tls.clone(), mode.clone(), status.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let msg = match parse_target(&target, *tls) {
                Ok((host, port)) => format!(
                    "{} scan of {host}:{port}{}: not connected to the proxy yet.",
                    if *mode == ScanMode::Quick {
                        "Quick"
                    } else {
                        "Full"
                    },
                    if *tls { " over TLS" } else { "" },
                ),
                Err(err) => err,
            };
            status.set(msg);
        })
    };

    html! {
        <main class="app">
            <header>
                <h1>{ "iacscope" }</h1>
                <p class="tagline">{ "Telnet negotiation inspector" }</p>
            </header>
            <form class="scan-form" aria-label="Scan a telnet server" onsubmit={on_submit}>
                <div class="field">
                    <label for="target">{ "Server (host or host:port)" }</label>
                    <input id="target" name="target" type="text" required=true
                        placeholder="telnet.example.org:23" autocomplete="off" spellcheck="false"
                        value={(*target).clone()} oninput={on_target} />
                </div>
                <div class="field switch">
                    <input id="tls" name="tls" type="checkbox" role="switch"
                        checked={*tls} onchange={on_tls} />
                    <label for="tls">{ "TLS" }</label>
                </div>
                <fieldset class="field mode">
                    <legend>{ "Scan" }</legend>
                    <input id="mode-quick" name="mode" type="radio" value="quick"
                        checked={*mode == ScanMode::Quick} onchange={on_mode(ScanMode::Quick)} />
                    <label for="mode-quick">{ "Quick" }</label>
                    <input id="mode-full" name="mode" type="radio" value="full"
                        checked={*mode == ScanMode::Full} onchange={on_mode(ScanMode::Full)} />
                    <label for="mode-full">{ "Full" }</label>
                </fieldset>
                <button type="submit">{ "Scan" }</button>
            </form>
            <p class="status" role="status" aria-live="polite">{ (*status).clone() }</p>
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

/// Mounts [`App`] on the page's `<body>`.
pub fn run() {
    yew::Renderer::<App>::new().render();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_default_ports() {
        assert_eq!(
            parse_target("example.org", false),
            Ok(("example.org".into(), 23))
        );
        assert_eq!(
            parse_target(" example.org ", true),
            Ok(("example.org".into(), 992))
        );
        assert_eq!(
            parse_target("example.org:4000", true),
            Ok(("example.org".into(), 4000))
        );
        assert_eq!(parse_target("[::1]:2323", false), Ok(("::1".into(), 2323)));
        assert_eq!(parse_target("::1", false), Ok(("::1".into(), 23)));
    }

    #[test]
    fn bad_targets_are_explained() {
        assert!(parse_target("", false).is_err());
        assert!(parse_target("example.org:0", false).is_err());
        assert!(parse_target("example.org:http", false).is_err());
        assert!(parse_target(":23", false).is_err());
        assert!(parse_target("[::1", false).is_err());
    }
}

/// Browser tests: render [`App`] into the DOM of headless Chromium and look at it.
#[cfg(all(test, target_arch = "wasm32"))]
mod browser {
    use super::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_test::*;
    use web_sys::{Element, HtmlFormElement};

    wasm_bindgen_test_configure!(run_in_browser);

    /// Renders [`App`] into a fresh element and lets Yew's scheduler run.
    async fn mount() -> Element {
        let document = gloo::utils::document();
        let root = document.create_element("div").unwrap();
        document.body().unwrap().append_child(&root).unwrap();
        yew::Renderer::<App>::with_root(root.clone()).render();
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
        let footer = root
            .query_selector("footer")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap();
        assert!(footer.contains(ENGINE_VERSION), "{footer}");
        assert!(footer.contains(transcript::MAGIC), "{footer}");
        assert!(
            footer.contains(iacscope_shared::TELNETLIB3_VERSION),
            "{footer}"
        );
    }

    #[wasm_bindgen_test]
    async fn submitting_reports_the_parsed_target() {
        let root = mount().await;
        let target = input(&root, "#target");
        target.set_value("example.org");
        // Yew listens at the root, so the synthetic event must bubble like a real one.
        let init = web_sys::EventInit::new();
        init.set_bubbles(true);
        let event = web_sys::Event::new_with_event_init_dict("input", &init).unwrap();
        target.dispatch_event(&event).unwrap();
        input(&root, "#tls").click();
        input(&root, "#mode-full").click();
        settle().await;
        let form: HtmlFormElement = root
            .query_selector("form")
            .unwrap()
            .unwrap()
            .unchecked_into();
        form.request_submit().unwrap();
        settle().await;
        let status = root.query_selector("[role=status]").unwrap().unwrap();
        assert_eq!(
            status.text_content().unwrap(),
            "Full scan of example.org:992 over TLS: not connected to the proxy yet."
        );
    }
}
