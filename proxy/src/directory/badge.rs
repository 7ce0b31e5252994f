//! `/badge/{host}/{port}.svg`: a shields-style SVG badge for wikis that allow only images:
//! "telnet" on the left; on the right reachability from the latest stored scan or a
//! remembered failed scan, MSSP players when known, and the short fingerprint. A stale or
//! missing result starts the live embed's server-side scan (within its limits; "queued" while
//! it waits for a slot); the badge itself always answers at once. `?tls=1` makes it a badge
//! of the server's TLS scans ("telnet+tls" on the left), as `/embed?…&tls=1`; the default is
//! plain telnet.

use super::livescan::{self, Known};
use super::widget::{fresh, parse_target, read};
use crate::serve::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// Cache lifetime of a badge: short, so a new scan shows soon.
const CACHE: &str = "public, max-age=120";
/// Badge height in pixels.
const HEIGHT: u32 = 20;
/// Horizontal padding on each side of a text, in pixels.
const PAD: u32 = 6;
/// Longest right-hand text (characters); longer is cut with an ellipsis.
pub const MAX_TEXT: usize = 80;
/// Characters of fingerprint shown.
pub const SHORT_FP: usize = 8;

/// Colours of the right-hand side.
const GREEN: &str = "#4c1";
const STALE: &str = "#a4a61d";
const RED: &str = "#e05d44";
const GREY: &str = "#9f9f9f";
const BLUE: &str = "#007ec6";

/// Estimated width in pixels of `s` in 11 px Verdana (shields' font), per character class.
pub fn text_width(s: &str) -> u32 {
    let tenths: u32 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 35,
            ' ' | 'f' | 'r' | 't' | 'I' | '(' | ')' | '[' | ']' | '-' | '/' => 45,
            'm' | 'w' | 'M' | 'W' | '@' | '%' => 105,
            'A'..='Z' => 78,
            '0'..='9' | 'a'..='z' => 70,
            '·' => 40,
            _ => 80,
        })
        .sum();
    tenths.div_ceil(10)
}

fn esc(s: &str) -> String {
    super::widget::esc(s)
}

/// Left-hand label of a plain telnet badge.
const LEFT_PLAIN: &str = "telnet";
/// Left-hand label of a TLS badge.
const LEFT_TLS: &str = "telnet+tls";

/// The plain telnet badge SVG for a right-hand `text` on `color`.
pub fn svg(text: &str, color: &str) -> String {
    svg_labelled(LEFT_PLAIN, text, color)
}

/// The badge SVG with `left` on the left and `text` on `color` on the right.
pub fn svg_labelled(left: &str, text: &str, color: &str) -> String {
    let text: String = if text.chars().count() > MAX_TEXT {
        let mut t: String = text.chars().take(MAX_TEXT - 1).collect();
        t.push('…');
        t
    } else {
        text.to_owned()
    };
    let lw = text_width(left) + 2 * PAD;
    let rw = text_width(&text) + 2 * PAD;
    let w = lw + rw;
    let (lx, rx) = (lw * 5, lw * 10 + rw * 5);
    let label = esc(&format!("{left}: {text}"));
    let t = esc(&text);
    let l = esc(left);
    let mut s = String::with_capacity(1200);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"{label}\"><title>{label}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" \
         stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"{HEIGHT}\" rx=\"3\" fill=\"#fff\"/>\
         </clipPath><g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"{HEIGHT}\" \
         fill=\"#555\"/><rect x=\"{lw}\" width=\"{rw}\" height=\"{HEIGHT}\" fill=\"{color}\"/>\
         <rect width=\"{w}\" height=\"{HEIGHT}\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" \
         font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"110\" \
         text-rendering=\"geometricPrecision\">\
         <text x=\"{lx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" \
         transform=\"scale(.1)\">{l}</text>\
         <text x=\"{lx}\" y=\"140\" transform=\"scale(.1)\">{l}</text>\
         <text x=\"{rx}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" \
         transform=\"scale(.1)\">{t}</text>\
         <text x=\"{rx}\" y=\"140\" transform=\"scale(.1)\">{t}</text></g></svg>"
    );
    s
}

/// `5m ago` style age of `secs` seconds.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// MSSP `PLAYERS` as stored (JSON text: a string, a number or a list of them) as plain
/// text, when it is a number.
pub fn players(json: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json?).ok()?;
    let v = match v {
        serde_json::Value::Array(mut l) if !l.is_empty() => l.swap_remove(0),
        v => v,
    };
    let s = match v {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn respond(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *",
        ),
    );
    r
}

/// The query of a badge.
#[derive(Debug, Deserialize)]
pub struct BadgeQuery {
    /// `1` for the server's TLS scans, `0` (default) for plain telnet.
    #[serde(default)]
    pub tls: Option<String>,
}

/// `GET /badge/{host}/{port}.svg[?tls=1]`.
pub async fn badge(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    UrlPath((host, file)): UrlPath<(String, String)>,
    query: Result<Query<BadgeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(BadgeQuery { tls: tls_param })) = query else {
        return respond(StatusCode::NOT_FOUND, svg("bad host, port or tls", GREY));
    };
    let Some(port) = file.strip_suffix(".svg") else {
        return respond(
            StatusCode::NOT_FOUND,
            svg("not a badge (use PORT.svg)", GREY),
        );
    };
    let target = match parse_target(&st, &host, Some(port), tls_param.as_deref()) {
        Err(_) => return respond(StatusCode::NOT_FOUND, svg("bad host, port or tls", GREY)),
        Ok(t) => t,
    };
    // parse_target accepted the value, so it is one of its spellings of on or off.
    let tls = match &target {
        Ok(t) => t.tls,
        Err(_) => matches!(tls_param.as_deref().map(str::trim), Some("1" | "true")),
    };
    let left = if tls { LEFT_TLS } else { LEFT_PLAIN };
    let port: u16 = port.trim().parse().unwrap_or(23);
    let lookup_host = match &target {
        Ok(t) => t.host.clone(),
        Err(_) => host.trim().to_owned(),
    };
    let latest = match read(&st, move |db| db.latest_with_tls(&lookup_host, port, tls)).await {
        Ok(l) => l,
        Err(_) => {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                svg_labelled(left, "error", GREY),
            )
        }
    };
    let now_unix = crate::relay::store::unix_micros().div_euclid(1_000_000);
    let mut known = Known::Nothing;
    if let Ok(t) = &target {
        let is_fresh = latest.as_ref().is_some_and(|s| fresh(&st, s, t, now_unix));
        known = if is_fresh {
            st.live
                .known(t, tokio::time::Instant::now(), st.config.embed_max_age)
        } else {
            // Stale or missing: refresh in the background when the limits allow.
            let client = crate::serve::client_ip(&st.config, peer.ip(), &headers);
            livescan::start(&st, client, t).unwrap_or(Known::Nothing)
        };
    }
    let (mut text, color) = match (&known, &latest) {
        (Known::Failed(f), l)
            if f.code == "not_telnet" && l.as_ref().is_none_or(|s| f.at >= s.created) =>
        {
            ("not telnet".to_owned(), RED)
        }
        (Known::Failed(f), l)
            if f.unreachable() && l.as_ref().is_none_or(|s| f.at >= s.created) =>
        {
            ("unreachable".to_owned(), RED)
        }
        (_, Some(s)) => {
            let fresh = target.as_ref().is_ok_and(|t| fresh(&st, s, t, now_unix));
            (
                format!("online {}", age(now_unix - s.created)),
                if fresh { GREEN } else { STALE },
            )
        }
        (Known::Running, None) => ("scanning".to_owned(), BLUE),
        (Known::Queued(_), None) => ("queued".to_owned(), BLUE),
        _ => ("not scanned".to_owned(), GREY),
    };
    if let Some(s) = &latest {
        if let Some(p) = players(s.players.as_deref()) {
            let _ = write!(text, " · {p} players");
        }
        let fp = s.fingerprint.get(..SHORT_FP).unwrap_or(&s.fingerprint);
        let _ = write!(text, " · {fp}");
    }
    respond(StatusCode::OK, svg_labelled(left, &text, color))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_ages_players() {
        assert!(text_width("mmmm") > text_width("iiii"));
        assert_eq!(text_width(""), 0);
        assert_eq!(age(5), "just now");
        assert_eq!(age(125), "2m ago");
        assert_eq!(age(7200), "2h ago");
        assert_eq!(age(3 * 86_400), "3d ago");
        assert_eq!(players(Some("\"12\"")).as_deref(), Some("12"));
        assert_eq!(players(Some("[\"7\", \"8\"]")).as_deref(), Some("7"));
        assert_eq!(players(Some("3")).as_deref(), Some("3"));
        assert_eq!(players(Some("\"<b>\"")), None);
        assert_eq!(players(None), None);
    }

    #[test]
    fn svg_escapes_and_cuts() {
        let s = svg("a<b>&\"c\"", GREEN);
        assert!(s.contains("a&lt;b&gt;&amp;&quot;c&quot;"), "{s}");
        assert!(!s.contains("a<b>"));
        let long = svg(&"x".repeat(200), GREY);
        assert!(long.contains('…'));
        let tls = svg_labelled(LEFT_TLS, "ok", GREEN);
        assert!(tls.contains("aria-label=\"telnet+tls: ok\""), "{tls}");
        assert!(tls.contains(">telnet+tls</text>"), "{tls}");
    }
}
