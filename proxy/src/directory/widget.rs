//! What the widgets (the iframe embed and the SVG badge) share: HTML escaping, reading the
//! store off the async threads, the checked target of a live widget and when a stored scan
//! is fresh enough to show. Both [`super::embed`] and [`super::badge`] use it; it uses
//! neither (nor does [`super::livescan`], which scans for them).

use super::db::ScanSummary;
use super::livescan::{self, Failure, Target};
use crate::serve::AppState;

/// Longest `url` an oEmbed request may pass, and longest `host` a live embed may name.
pub const MAX_PARAM_LEN: usize = 2048;

/// `s` with `& < > " '` escaped: safe in HTML text and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Runs a store call off the async threads; an error is logged and given back as its
/// sentence.
pub(crate) async fn read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&super::db::Db) -> super::db::DbResult<T> + Send + 'static,
) -> Result<T, String> {
    super::db::off_thread(&st.db, f).await.map_err(|e| {
        tracing::error!("permalink store: {e}");
        e
    })
}

/// Parses host, port and tls of a live embed or badge into a checked target.
pub(crate) fn parse_target(
    st: &AppState,
    host: &str,
    port: Option<&str>,
    tls: Option<&str>,
) -> Result<Result<Target, Failure>, String> {
    let host = host.trim();
    if host.is_empty() || host.len() > MAX_PARAM_LEN {
        return Err("Name a server: /embed?host=mud.example.org&port=4000".into());
    }
    let port: u16 = match port.map(str::trim) {
        None | Some("") => 23,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| "The port must be a number from 1 to 65535.".to_owned())?,
    };
    let tls = match tls.map(str::trim) {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err("tls must be 0 or 1.".into()),
    };
    Ok(livescan::target(st, host, port, tls))
}

/// Whether a stored summary answers for `t` at `now_unix`: same TLS setting, younger than
/// `embed_max_age` (so `0` never reuses a stored scan).
pub(crate) fn fresh(st: &AppState, s: &ScanSummary, t: &Target, now_unix: i64) -> bool {
    let tls = s
        .config
        .split_whitespace()
        .any(|w| w == super::db::TLS_WORD);
    let max_age = i64::try_from(st.config.embed_max_age.as_secs()).unwrap_or(i64::MAX);
    tls == t.tls && now_unix.saturating_sub(s.created) < max_age
}
