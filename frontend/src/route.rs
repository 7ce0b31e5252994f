//! Which page the address names: the scanner (`/`), a permalink (`/s/<id>`), a fingerprint
//! (`/fingerprints/<hash>`), a server's history (`/servers/<host>/<port>`) or a search
//! (`/search?q=`). The proxy serves `index.html` for all of them; the app picks the page
//! from `window.location` once, at start. Links between pages are plain `<a href>`s (a new
//! page load), so no router is needed. Pure functions only.

/// Hex digits in a scan id (the proxy's `ID_HEX_LEN`).
pub const SCAN_ID_LEN: usize = 32;

/// Longest fingerprint hash accepted in an address (telnetlib3's are 16 hex digits).
pub const MAX_HASH_LEN: usize = 64;

/// Longest search text (the proxy's `MAX_QUERY_CHARS`).
pub const MAX_QUERY_CHARS: usize = 100;

/// A page of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The scanner.
    Home,
    /// A saved scan, by its id (32 hex digits).
    Permalink(String),
    /// An address under `/s/` that is not a scan id.
    BadPermalink(String),
    /// The servers that share a fingerprint.
    Fingerprint(String),
    /// One server's scans over time.
    Server { host: String, port: u16 },
    /// A search by name or host (the text may be empty: the page then only shows the box).
    Search(String),
    /// The census: what the store knows about all servers (`/stats`).
    Stats,
    /// Any other address.
    NotFound(String),
}

impl Route {
    /// The page for `path` (`location.pathname`, still percent-encoded) and the search's
    /// `q` parameter (already decoded, as `URLSearchParams.get` gives it).
    pub fn parse(path: &str, q: Option<String>) -> Route {
        let trimmed = path.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        let decoded: Option<Vec<String>> = segments.iter().map(|s| decode(s)).collect();
        let Some(seg) = decoded else {
            return Route::NotFound(path.to_owned());
        };
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        match seg.as_slice() {
            [] | ["index.html"] => Route::Home,
            ["s", id] if is_scan_id(id) => Route::Permalink(id.to_ascii_lowercase()),
            ["s", id] => Route::BadPermalink((*id).to_owned()),
            ["fingerprints", hash] if is_hash(hash) => Route::Fingerprint((*hash).to_owned()),
            ["servers", host, port] if !host.is_empty() => match port.parse::<u16>() {
                Ok(p) if p > 0 => Route::Server {
                    host: (*host).to_owned(),
                    port: p,
                },
                _ => Route::NotFound(path.to_owned()),
            },
            ["stats"] => Route::Stats,
            ["search"] => Route::Search(
                q.unwrap_or_default()
                    .trim()
                    .chars()
                    .take(MAX_QUERY_CHARS)
                    .collect(),
            ),
            _ => Route::NotFound(path.to_owned()),
        }
    }

    /// The address of this page (path and query, segments percent-encoded).
    pub fn href(&self) -> String {
        match self {
            Route::Home | Route::NotFound(_) => "/".into(),
            Route::Permalink(id) | Route::BadPermalink(id) => format!("/s/{}", encode(id)),
            Route::Fingerprint(h) => format!("/fingerprints/{}", encode(h)),
            Route::Server { host, port } => format!("/servers/{}/{port}", encode(host)),
            Route::Search(q) => format!("/search?q={}", encode(q)),
            Route::Stats => "/stats".into(),
        }
    }
}

/// Whether `s` is a scan id.
pub fn is_scan_id(s: &str) -> bool {
    s.len() == SCAN_ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_hash(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_HASH_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3), so server-given
/// text is always one inert path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` for a broken escape or text that is not UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789ABCDEF";

    #[test]
    fn the_census_has_its_own_page() {
        assert_eq!(Route::parse("/stats", None), Route::Stats);
        assert_eq!(Route::parse("/stats/", None), Route::Stats);
        assert_eq!(Route::Stats.href(), "/stats");
    }

    #[test]
    fn paths_name_pages() {
        assert_eq!(Route::parse("/", None), Route::Home);
        assert_eq!(Route::parse("", None), Route::Home);
        assert_eq!(Route::parse("/index.html", None), Route::Home);
        assert_eq!(
            Route::parse(&format!("/s/{ID}"), None),
            Route::Permalink(ID.to_ascii_lowercase())
        );
        assert_eq!(
            Route::parse("/s/nope", None),
            Route::BadPermalink("nope".into())
        );
        assert_eq!(
            Route::parse("/fingerprints/a1b2c3d4e5f60718/", None),
            Route::Fingerprint("a1b2c3d4e5f60718".into())
        );
        assert_eq!(
            Route::parse("/servers/%3A%3A1/4000", None),
            Route::Server {
                host: "::1".into(),
                port: 4000
            }
        );
        assert_eq!(
            Route::parse("/servers/mud.example.org/0", None),
            Route::NotFound("/servers/mud.example.org/0".into())
        );
        assert_eq!(
            Route::parse("/search", Some("  seed mud ".into())),
            Route::Search("seed mud".into())
        );
        assert_eq!(Route::parse("/search", None), Route::Search(String::new()));
        assert_eq!(
            Route::parse("/fingerprints/<x>", None),
            Route::NotFound("/fingerprints/<x>".into())
        );
        assert_eq!(
            Route::parse("/s/%zz", None),
            Route::NotFound("/s/%zz".into())
        );
        assert_eq!(
            Route::parse("/other", None),
            Route::NotFound("/other".into())
        );
        let long: String = "x".repeat(MAX_QUERY_CHARS + 10);
        match Route::parse("/search", Some(long)) {
            Route::Search(q) => assert_eq!(q.chars().count(), MAX_QUERY_CHARS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn links_round_trip() {
        for r in [
            Route::Permalink(ID.to_ascii_lowercase()),
            Route::Fingerprint("a1b2".into()),
            Route::Server {
                host: "évil/../host?x".into(),
                port: 23,
            },
        ] {
            assert_eq!(Route::parse(&r.href(), None), r, "{}", r.href());
        }
        assert_eq!(
            Route::Server {
                host: "a b".into(),
                port: 23
            }
            .href(),
            "/servers/a%20b/23"
        );
        assert_eq!(Route::Search("a&b=c".into()).href(), "/search?q=a%26b%3Dc");
        assert_eq!(decode("%e9"), None, "not UTF-8");
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
    }
}
