//! iacscope's web app (Yew): the live inspector page. The engine (`iacscope-shared`) does
//! all telnet interpretation; this crate drives it from the proxy's websocket (`hook`),
//! turns what happens into page state (`state`, a `Reducible` tested natively) and renders
//! it (`view`). `main.rs` only calls [`run`].

pub mod banner;
#[cfg(feature = "bench")]
pub mod bench;
pub mod driver;
pub mod hook;
pub mod protocols;
pub mod request;
pub mod state;
pub mod view;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser;

pub use request::{parse_target, ScanMode, ScanRequest, TlsMode, TELNETS_PORT, TELNET_PORT};
pub use view::ENGINE_VERSION;

use state::{Action, ScanState};
use view::Page;
use yew::prelude::*;

/// Reads the page's deep link (`?host=H&port=P&tls=1&scan=full`), if any.
fn deep_link() -> Option<Result<ScanRequest, String>> {
    let search = gloo::utils::window().location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    request::from_deep_link(|k| params.get(k))
}

/// The app: the page, its state, and the scan hook; a deep link starts its scan at once.
#[function_component]
pub fn App() -> Html {
    let state = use_reducer(ScanState::default);
    let scan = hook::use_scan(state.dispatcher());
    {
        let (start, dispatch) = (scan.start.clone(), state.dispatcher());
        use_effect_with((), move |_| {
            mark_ready();
            #[cfg(feature = "bench")]
            bench::install(dispatch.clone());
            match deep_link() {
                Some(Ok(req)) => start.emit(req),
                Some(Err(why)) => dispatch.dispatch(Action::Invalid(why)),
                None => {}
            }
        });
    }
    html! { <Page state={state} on_start={scan.start} on_cancel={scan.cancel} /> }
}

/// Sets `data-ready` on `<html>` to `performance.now()` once the page is mounted and its form
/// usable: the end-to-end test waits for it and `cargo xtask bench-web` reads it as the time
/// from navigation to an interactive form.
fn mark_ready() {
    let window = gloo::utils::window();
    let now = window.performance().map_or(0.0, |p| p.now());
    if let Some(html) = window.document().and_then(|d| d.document_element()) {
        let _ = html.set_attribute("data-ready", &format!("{now:.1}"));
    }
}

/// Mounts [`App`] on the page's `<body>`.
pub fn run() {
    yew::Renderer::<App>::new().render();
}
