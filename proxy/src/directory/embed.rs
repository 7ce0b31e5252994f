//! The embeddable widget and its discovery: `/embed/{id}` (a stored scan as a small
//! server-rendered page for an iframe), `/embed?host=&port=` (the live form: a stored scan
//! younger than `embed_max_age`, else one server-side scan through [`super::livescan`]),
//! `/oembed?url=…` (oEmbed 1.0, JSON), and `/s/{id}` (the app's `index.html` with an oEmbed
//! discovery link, a title and `og:` tags for that scan). The badge is in [`super::badge`].
//!
//! Widgets need no script and load nothing: one inline style block, allowed by its hash in
//! a CSP of their own that lets any site frame them. Every server-sent text is escaped.

use super::db::ScanSummary;
use super::livescan::{self, Failure, Known, Target};
use super::save::{mssp_text, valid_id};
use super::widget::{esc, fresh, parse_target, read};
use crate::relay::policy::host_port;
use crate::serve::AppState;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use iacscope_shared::ansi::strip_escapes;
use iacscope_shared::directory::{protocol_table, Support};
use iacscope_shared::pyjson::{self, Value};
use iacscope_shared::record::short_date;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Banner lines a widget shows.
pub const MAX_BANNER_LINES: usize = 6;
/// Characters kept of one banner line.
pub const MAX_BANNER_COLS: usize = 100;
/// Hex digits of the fingerprint shown (the full hash is in the title).
pub const SHORT_FP: usize = 8;
/// The iframe size oEmbed proposes (and the widget is laid out for).
pub const WIDGET_WIDTH: u32 = 480;
/// See [`WIDGET_WIDTH`].
pub const WIDGET_HEIGHT: u32 = 260;
/// Seconds the "Scanning…" widget waits before it reloads itself.
pub const REFRESH_SECS: u32 = 3;
pub use super::widget::MAX_PARAM_LEN;
/// Cache lifetime of a stored scan's widget (its content never changes).
const CACHE_STORED: &str = "public, max-age=3600";
/// Cache lifetime of a live widget showing a stored scan (a newer one may come).
const CACHE_LIVE: &str = "public, max-age=60";
/// Cache lifetime of a "not found" widget (the scan may be saved in a moment).
const CACHE_MISSING: &str = "public, max-age=60";

/// The widget's only style (its hash is the CSP's only `style-src`).
const STYLE: &str = "*{box-sizing:border-box}html,body{margin:0}\
body{font:13px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;background:#fff}\
.w{border:1px solid #d5dae3;border-radius:6px;padding:10px 12px;overflow:hidden}\
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:2px 10px}\
.n{font-weight:700;font-size:15px;color:inherit;text-decoration:none}.n:hover{text-decoration:underline}\
.h,code,pre{font-family:ui-monospace,Menlo,Consolas,monospace}.h{font-size:12px}\
.h,.m{color:#5a6372}.m{margin:4px 0 8px;font-size:12px}\
ul{list-style:none;margin:0 0 8px;padding:0;display:flex;flex-wrap:wrap;gap:3px}\
li{border-radius:3px;padding:1px 5px;font-size:11px;background:#eef0f4;color:#6b7280}\
li b{font-weight:600;margin-left:4px}li.yes{background:#d9f2e1;color:#17603a}\
li.negotiated{background:#e1ebfb;color:#1f4f99}\
pre{margin:0 0 8px;padding:6px 8px;background:#11151c;color:#d7dde8;border-radius:4px;\
font-size:11px;line-height:1.3;white-space:pre;overflow:hidden}\
footer{font-size:12px}footer a{color:#1f4f99}.e{color:#9b1c1c}\
@media(prefers-color-scheme:dark){body{background:#171b22;color:#e3e7ee}.w{border-color:#343b47}\
.h,.m{color:#9aa3b2}li{background:#262c36;color:#9aa3b2}li.yes{background:#163d27;color:#8fe0ad}\
li.negotiated{background:#1b2f52;color:#9dc0f5}footer a{color:#9dc0f5}.e{color:#f19999}}";

/// The widgets' Content-Security-Policy: nothing but the style block above, framable by
/// any site.
pub fn widget_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; \
             frame-ancestors *",
            crate::serve::web::base64(&Sha256::digest(STYLE.as_bytes()))
        )
    })
}

/// The routes of this module (the badge's are beside them in [`super::router`]).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/embed/{id}", get(embed_stored))
        .route("/embed", get(embed_live))
        .route("/oembed", get(oembed))
        .route("/s/{id}", get(permalink_page))
}

/// What a widget shows of one stored scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Scan id.
    pub id: String,
    /// MSSP `NAME`, or the host.
    pub name: String,
    /// `host:port`.
    pub host_port: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// Full fingerprint hash.
    pub fingerprint: String,
    /// The protocol row.
    pub protocols: Vec<(&'static str, Support)>,
    /// The first non-empty banner lines, escapes stripped.
    pub banner: Vec<String>,
    /// MSSP `PLAYERS`, when sent.
    pub players: Option<String>,
}

/// The first [`MAX_BANNER_LINES`] non-empty lines of a banner, escape sequences and other
/// control characters removed, each at most [`MAX_BANNER_COLS`] characters.
pub fn banner_lines(banner: &str) -> Vec<String> {
    let plain = String::from_utf8_lossy(&strip_escapes(banner.as_bytes())).into_owned();
    plain
        .split(['\n', '\r'])
        .map(|l| {
            l.chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .filter(|c| !c.is_control())
                .take(MAX_BANNER_COLS)
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .filter(|l| !l.trim().is_empty())
        .take(MAX_BANNER_LINES)
        .collect()
}

impl View {
    /// Builds the view from a summary and the stored record's JSON text.
    pub fn new(s: &ScanSummary, record_json: &str) -> View {
        let record = pyjson::parse(record_json).unwrap_or(Value::Null);
        let probe = record
            .as_dict()
            .and_then(|d| d.get("server-probe"))
            .cloned()
            .unwrap_or(Value::Null);
        let get = |k: &str| {
            probe
                .as_dict()
                .and_then(|d| d.get(k))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let sd = get("session_data");
        let fp = get("fingerprint-data");
        let text = |k: &str| {
            sd.as_dict()
                .and_then(|d| d.get(k))
                .and_then(Value::as_pystr)
                .map(|p| p.to_string_lossy())
                .unwrap_or_default()
        };
        let banner = format!(
            "{}{}",
            text("banner_before_return"),
            text("banner_after_return")
        );
        View {
            id: s.id.clone(),
            name: mssp_text(&sd, "NAME")
                .or_else(|| s.name.clone())
                .unwrap_or_else(|| s.host.clone()),
            host_port: host_port(&s.host, s.port),
            date: short_date(s.created),
            fingerprint: s.fingerprint.clone(),
            protocols: protocol_table(&sd, &fp, banner.as_bytes()),
            banner: banner_lines(&banner),
            players: mssp_text(&sd, "PLAYERS"),
        }
    }

    /// The title used by oEmbed and the page: `NAME (host:port)`, or `host:port`.
    pub fn title(&self) -> String {
        if self.host_port.starts_with(&self.name) || self.name.is_empty() {
            self.host_port.clone()
        } else {
            format!("{} ({})", self.name, self.host_port)
        }
    }
}

fn page(title: &str, refresh: bool, body: &str) -> String {
    let refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">")
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{} · iacscope</title>\
         <style>{STYLE}</style></head><body><div class=\"w\">{body}</div></body></html>",
        esc(title)
    )
}

/// The widget of a stored scan.
pub fn render(v: &View) -> String {
    let url = format!("/s/{}", v.id);
    let mut b = String::with_capacity(4096);
    let _ = write!(
        b,
        "<header><a class=\"n\" href=\"{url}\" target=\"_blank\" rel=\"noopener\">{}</a>\
         <span class=\"h\">{}</span></header><p class=\"m\">fingerprint \
         <code title=\"{}\">{}</code> · scanned {}",
        esc(&v.name),
        esc(&v.host_port),
        esc(&v.fingerprint),
        esc(v.fingerprint.get(..SHORT_FP).unwrap_or(&v.fingerprint)),
        esc(&v.date),
    );
    if let Some(p) = &v.players {
        let _ = write!(b, " · {} players", esc(p));
    }
    b.push_str("</p><ul>");
    for (name, s) in &v.protocols {
        let _ = write!(
            b,
            "<li class=\"{}\">{name}<b>{}</b></li>",
            s.class(),
            s.label()
        );
    }
    b.push_str("</ul>");
    if !v.banner.is_empty() {
        b.push_str("<pre>");
        for (i, line) in v.banner.iter().enumerate() {
            if i > 0 {
                b.push('\n');
            }
            b.push_str(&esc(line));
        }
        b.push_str("</pre>");
    }
    let _ = write!(
        b,
        "<footer><a href=\"{url}\" target=\"_blank\" rel=\"noopener\">Full result on \
         iacscope</a></footer>"
    );
    page(&v.title(), false, &b)
}

fn notice(title: &str, sentence: &str, class: &str, refresh: bool) -> String {
    let body = format!(
        "<header><span class=\"n\">{}</span></header><p class=\"m {class}\">{}</p>\
         <footer><a href=\"/\" target=\"_blank\" rel=\"noopener\">iacscope</a></footer>",
        esc(title),
        esc(sentence)
    );
    page(title, refresh, &body)
}

fn widget(status: StatusCode, cache: &'static str, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(widget_csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

fn not_found_widget() -> Response {
    widget(
        StatusCode::NOT_FOUND,
        CACHE_MISSING,
        notice(
            "Scan not found",
            "No such scan: the link may be wrong, or the scan was removed.",
            "e",
            false,
        ),
    )
}

fn failure_widget(what: &str, f: &Failure) -> Response {
    let status = match f.code {
        "refused_by_policy" | "bad_host" | "bad_port" => StatusCode::FORBIDDEN,
        "limit_reached" => StatusCode::TOO_MANY_REQUESTS,
        "shutdown" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    widget(
        status,
        "no-store",
        notice(&format!("Cannot scan {what}"), &f.sentence(), "e", false),
    )
}

/// "Scanning", or, when the scan waits for a slot, how many start before it.
fn scanning_widget(t: &Target, queued: Option<usize>) -> Response {
    let hp = t.display();
    let sentence = match queued {
        None => format!("Scanning {hp}… this page reloads itself in a few seconds."),
        Some(n) => {
            format!("Scanning {hp}… (queued: {n} ahead) this page reloads itself in a few seconds.")
        }
    };
    widget(
        StatusCode::OK,
        "no-store",
        notice(&format!("Scanning {hp}…"), &sentence, "", true),
    )
}

fn internal_widget() -> Response {
    widget(
        StatusCode::INTERNAL_SERVER_ERROR,
        "no-store",
        notice("Error", "The proxy could not read its store.", "e", false),
    )
}

/// A stored scan's summary and view, if the id names one.
async fn load(st: &AppState, id: String) -> Result<Option<View>, String> {
    let found = read(st, move |db| match db.summary(&id) {
        Ok(Some(s)) => db.record(&id).map(|r| r.map(|r| (s, r))),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    Ok(found.map(|(s, r)| View::new(&s, &r)))
}

async fn embed_stored(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> Response {
    if !valid_id(&id) {
        return not_found_widget();
    }
    match load(&st, id).await {
        Ok(Some(v)) => widget(StatusCode::OK, CACHE_STORED, render(&v)),
        Ok(None) => not_found_widget(),
        Err(_) => internal_widget(),
    }
}

/// The query of `/embed`.
#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Host name or address.
    #[serde(default)]
    pub host: Option<String>,
    /// Port (default 23).
    #[serde(default)]
    pub port: Option<String>,
    /// `1` for TLS (verified), `0` (default) for plain TCP.
    #[serde(default)]
    pub tls: Option<String>,
}

fn bad_request(sentence: &str) -> Response {
    widget(
        StatusCode::BAD_REQUEST,
        "no-store",
        notice("Bad embed link", sentence, "e", false),
    )
}

async fn embed_live(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Response {
    let parsed = parse_target(
        &st,
        q.host.as_deref().unwrap_or(""),
        q.port.as_deref(),
        q.tls.as_deref(),
    );
    let t = match parsed {
        Err(sentence) => return bad_request(&sentence),
        Ok(Err(f)) => {
            st.metrics.refused(f.code);
            let what = q.host.as_deref().unwrap_or("").trim().to_owned();
            return failure_widget(&what, &f);
        }
        Ok(Ok(t)) => t,
    };
    let (h, p, tls) = (t.host.clone(), t.port, t.tls);
    let latest = match read(&st, move |db| db.latest_with_tls(&h, p, tls)).await {
        Ok(l) => l,
        Err(_) => return internal_widget(),
    };
    let now_unix = crate::relay::store::unix_micros().div_euclid(1_000_000);
    if let Some(s) = latest.filter(|s| fresh(&st, s, &t, now_unix)) {
        return show_live(&st, s.id).await;
    }
    let client = crate::serve::client_ip(&st.config, peer.ip(), &headers);
    match livescan::start(&st, client, &t) {
        Ok(Known::Stored(id)) => show_live(&st, id).await,
        Ok(Known::Failed(f)) | Err(f) => failure_widget(&t.display(), &f),
        Ok(Known::Queued(n)) => scanning_widget(&t, Some(n)),
        Ok(Known::Running | Known::Nothing) => scanning_widget(&t, None),
    }
}

async fn show_live(st: &AppState, id: String) -> Response {
    match load(st, id).await {
        Ok(Some(v)) => widget(StatusCode::OK, CACHE_LIVE, render(&v)),
        Ok(None) => not_found_widget(),
        Err(_) => internal_widget(),
    }
}

/// The query of `/oembed`.
#[derive(Debug, Deserialize)]
pub struct OembedQuery {
    /// The page URL (`…/s/<id>`).
    #[serde(default)]
    pub url: Option<String>,
    /// Only `json` is served.
    #[serde(default)]
    pub format: Option<String>,
    /// Largest width the consumer can show.
    #[serde(default)]
    pub maxwidth: Option<String>,
    /// Largest height the consumer can show.
    #[serde(default)]
    pub maxheight: Option<String>,
}

/// The scan id of a permalink URL (`http(s)://host/s/<id>`, optionally with a query,
/// fragment or trailing slash).
pub fn id_from_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let id = path.strip_prefix("/s/")?.trim_end_matches('/');
    valid_id(id).then(|| id.to_ascii_lowercase())
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// The iframe snippet for a scan.
pub fn iframe(origin: &str, id: &str, title: &str, width: u32, height: u32) -> String {
    format!(
        "<iframe src=\"{}/embed/{}\" width=\"{width}\" height=\"{height}\" \
         style=\"border:0\" loading=\"lazy\" title=\"{}\"></iframe>",
        esc(origin),
        esc(id),
        esc(title)
    )
}

async fn oembed(State(st): State<Arc<AppState>>, Query(q): Query<OembedQuery>) -> Response {
    match q.format.as_deref() {
        None | Some("" | "json") => {}
        Some(_) => {
            return json_error(
                StatusCode::NOT_IMPLEMENTED,
                "format",
                "only format=json is served",
            )
        }
    }
    let url = q.url.as_deref().unwrap_or("");
    if url.len() > MAX_PARAM_LEN {
        return json_error(StatusCode::NOT_FOUND, "not_found", "not a scan URL");
    }
    let Some(id) = id_from_url(url) else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "not a scan URL");
    };
    let view = match load(&st, id).await {
        Ok(Some(v)) => v,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "not_found", "no such scan"),
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "storage error",
            )
        }
    };
    let bound = |v: &Option<String>, default: u32| {
        v.as_deref()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|m| *m > 0)
            .map_or(default, |m| m.min(default))
    };
    let width = bound(&q.maxwidth, WIDGET_WIDTH);
    let height = bound(&q.maxheight, WIDGET_HEIGHT);
    // Configuration only, never the request's `Host` (see `AppState::public_origin`).
    let origin = st.public_origin();
    let title = view.title();
    let mut r = Json(json!({
        "version": "1.0",
        "type": "rich",
        "provider_name": "iacscope",
        "provider_url": format!("{origin}/"),
        "title": title,
        "html": iframe(&origin, &view.id, &title, width, height),
        "width": width,
        "height": height,
    }))
    .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_STORED),
    );
    r
}

/// `%`-encodes a URL for a query value.
pub fn query_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `index` with its `<title>` replaced by `title` (escaped) and `tags` inserted before
/// `</head>`; unchanged when it has no `</head>`. Scripts are left alone (the app's CSP
/// allows its inline loader by hash).
pub fn with_head(index: &str, title: &str, tags: &str) -> String {
    let Some(head_end) = index.find("</head>") else {
        return index.to_owned();
    };
    let mut out = String::with_capacity(index.len() + tags.len() + title.len());
    let (head, rest) = index.split_at(head_end);
    match (head.find("<title>"), head.find("</title>")) {
        (Some(a), Some(b)) if a < b => {
            out.push_str(&head[..a]);
            let _ = write!(out, "<title>{}</title>", esc(title));
            out.push_str(&head[b + "</title>".len()..]);
        }
        _ => out.push_str(head),
    }
    out.push_str(tags);
    out.push_str(rest);
    out
}

async fn permalink_page(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> Response {
    let path = st.config.static_dir.join("index.html");
    let Ok(index) = tokio::fs::read_to_string(&path).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::response::Html(crate::serve::web::NOT_BUILT),
        )
            .into_response();
    };
    let html =
        |body: String| ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    if !valid_id(&id) {
        return html(index);
    }
    let view = match load(&st, id.clone()).await {
        Ok(Some(v)) => v,
        // Unknown (or unreadable): the app shows its own "not found".
        _ => return html(index),
    };
    // Configuration only, never the request's `Host` (see `AppState::public_origin`).
    let origin = st.public_origin();
    let page_url = format!("{origin}/s/{}", view.id);
    let title = view.title();
    let description = format!(
        "Telnet fingerprint {} of {}, scanned {}",
        view.fingerprint
            .get(..SHORT_FP)
            .unwrap_or(&view.fingerprint),
        view.host_port,
        view.date
    );
    let tags = format!(
        "<link rel=\"alternate\" type=\"application/json+oembed\" \
         href=\"{}/oembed?url={}&amp;format=json\" title=\"{}\">\
         <meta property=\"og:type\" content=\"website\">\
         <meta property=\"og:site_name\" content=\"iacscope\">\
         <meta property=\"og:title\" content=\"{}\">\
         <meta property=\"og:description\" content=\"{}\">\
         <meta property=\"og:url\" content=\"{}\">\
         <meta name=\"description\" content=\"{}\">\n",
        esc(&origin),
        esc(&query_enc(&page_url)),
        esc(&title),
        esc(&title),
        esc(&description),
        esc(&page_url),
        esc(&description),
    );
    html(with_head(&index, &format!("{title} · iacscope"), &tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_banner_lines() {
        assert_eq!(
            esc("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        let banner = "\x1b[1;31mWelcome\x1b[0m\r\n\r\n\tto\x07 the MUD\r\n\n3\n4\n5\n6\n7\n";
        assert_eq!(
            banner_lines(banner),
            ["Welcome", " to the MUD", "3", "4", "5", "6"]
        );
        let long = "x".repeat(500);
        assert_eq!(banner_lines(&long)[0].len(), MAX_BANNER_COLS);
    }

    #[test]
    fn permalink_urls_and_head() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            id_from_url(&format!("https://x.example/s/{id}?a=1")).as_deref(),
            Some(id)
        );
        assert_eq!(
            id_from_url(&format!("http://x.example:8080/s/{id}/")).as_deref(),
            Some(id)
        );
        assert_eq!(id_from_url(&format!("ftp://x/s/{id}")), None);
        assert_eq!(id_from_url("https://x.example/s/short"), None);
        assert_eq!(id_from_url(&format!("https://x.example/t/{id}")), None);
        let index = "<html><head><title>old</title><script>init()</script></head><body></body>";
        let out = with_head(index, "a<b", "<link rel=x>");
        assert_eq!(
            out,
            "<html><head><title>a&lt;b</title><script>init()</script><link rel=x></head>\
             <body></body>"
        );
        assert_eq!(with_head("<p>no head", "t", "x"), "<p>no head");
        assert_eq!(query_enc("http://a/s/1?x"), "http%3A%2F%2Fa%2Fs%2F1%3Fx");
    }

    #[test]
    fn widget_csp_pins_the_style() {
        let csp = widget_csp();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        assert!(csp.contains("style-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}
