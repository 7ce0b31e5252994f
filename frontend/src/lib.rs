//! iacscope's web app (Yew): the live inspector page. The engine (`iacscope-shared`) does
//! all telnet interpretation; this crate drives it from the proxy's websocket (`hook`),
//! turns what happens into page state (`state`, a `Reducible` tested natively) and renders
//! it (`view`). The address picks the page (`route`): the scanner, a permalink replayed from
//! the proxy's store (`permalink`), or a directory page (`directory`). `main.rs` only calls
//! [`run`].

pub mod api;
pub mod banner;
#[cfg(feature = "bench")]
pub mod bench;
pub mod codecs;
pub mod directory;
pub mod dom;
pub mod driver;
pub mod evidence;
pub mod hook;
pub mod permalink;
pub mod protocols;
pub mod request;
pub mod route;
pub mod share;
pub mod state;
pub mod summary;
pub mod view;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser;
#[cfg(all(test, target_arch = "wasm32"))]
mod browser_codecs;
#[cfg(test)]
mod fixtures;

pub use request::{parse_target, ScanMode, ScanRequest, TlsMode, TELNETS_PORT, TELNET_PORT};
pub use view::ENGINE_VERSION;

use route::Route;
use state::{Action, ScanState};
use std::rc::Rc;
use view::Page;
use yew::prelude::*;

fn params() -> Option<web_sys::UrlSearchParams> {
    let search = gloo::utils::window().location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()
}

/// Reads the page's deep link (`?host=H&port=P&tls=1&scan=full`), if any.
fn deep_link() -> Option<Result<ScanRequest, String>> {
    let params = params()?;
    request::from_deep_link(|k| params.get(k))
}

/// The page the address names.
fn current_route() -> Route {
    let path = gloo::utils::window()
        .location()
        .pathname()
        .unwrap_or_default();
    Route::parse(&path, params().and_then(|p| p.get("q")))
}

/// The app: the page the address names, in one component (each component adds to the
/// bundle). The scanner's state and hook exist on every page but do nothing until a scan
/// starts; a deep link starts its scan at once; a permalink loads the stored scan instead
/// (never opening the websocket); a directory page fetches its listing.
#[component]
pub fn App() -> Html {
    let route = use_memo((), |_| current_route());
    let state = use_reducer(ScanState::default);
    let scan = hook::use_scan(state.dispatcher());
    let listing = use_state(|| None::<Result<Rc<directory::Listing>, String>>);
    {
        let (start, dispatch) = (scan.start.clone(), state.dispatcher());
        let (route, listing) = (route.clone(), listing.clone());
        use_effect_with((), move |_| {
            mark_ready();
            #[cfg(feature = "bench")]
            bench::install(dispatch.clone());
            match (*route).clone() {
                Route::Permalink(id) => {
                    yew::platform::spawn_local(permalink::load(id, dispatch));
                }
                Route::BadPermalink(id) => dispatch.dispatch(Action::Invalid(format!(
                    "There is no permalink /s/{id} here: a permalink is /s/ and 32 hex digits."
                ))),
                Route::NotFound(path) => dispatch.dispatch(Action::Invalid(format!(
                    "There is no page at {path}; here is the scanner."
                ))),
                Route::Home => match deep_link() {
                    Some(Ok(req)) => start.emit(req),
                    Some(Err(why)) => dispatch.dispatch(Action::Invalid(why)),
                    None => {}
                },
                dir => yew::platform::spawn_local(async move {
                    if let Some(r) = directory::fetch(&dir).await {
                        listing.set(Some(r.map(Rc::new)));
                    }
                }),
            }
        });
    }
    // The tab's title: the server's MSSP name once a result has one, the page's subject on
    // directory pages.
    let title = match &*route {
        Route::Fingerprint(_) | Route::Server { .. } | Route::Search(_) | Route::Stats => {
            format!("{} \u{b7} iacscope", directory::title(&route))
        }
        _ => state
            .report
            .as_ref()
            .and_then(|r| r.server_name())
            .map_or_else(
                || DEFAULT_TITLE.to_owned(),
                |name| format!("{name} \u{b7} iacscope"),
            ),
    };
    use_effect_with(title, |t| gloo::utils::document().set_title(t));
    let body = use_memo((*listing).clone(), |l| match l {
        None => html! { <p class="status muted" role="status">{ "Loading\u{2026}" }</p> },
        Some(Ok(l)) => directory::render(l).html(),
        Some(Err(why)) => html! { <p class="failure" role="alert">{ why.clone() }</p> },
    });
    match &*route {
        Route::Fingerprint(_) | Route::Server { .. } | Route::Search(_) | Route::Stats => html! {
            <main class="app directory">
                { view::site_header() }
                <h2 class="page-title">{ directory::title(&route) }</h2>
                { (*body).clone() }
            </main>
        },
        _ => html! { <Page state={state} on_start={scan.start} on_cancel={scan.cancel} /> },
    }
}

/// The title of the scanner page before a result names the server (as in `index.html`).
pub const DEFAULT_TITLE: &str = "iacscope: telnet negotiation inspector";

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
