//! The built web app from `--static-dir`: gzip, cache headers (hashed Trunk assets are
//! immutable, everything else revalidates), a strict Content-Security-Policy, and a
//! friendly page when the app has not been built.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use std::path::Path;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The page served when `--static-dir` has no `index.html`.
pub(crate) const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>iacscope</title>\
<h1>iacscope proxy is running</h1><p>The web app has not been built, or <code>--static-dir</code> \
points elsewhere. Build it with <code>trunk build --release</code> in <code>frontend/</code> and \
pass <code>--static-dir frontend/dist</code>.</p><p>The websocket endpoint <code>/ws</code>, \
<code>/healthz</code> and <code>/metrics</code> work without it.</p>";

/// A router serving `dir` (with `index.html` for unknown paths, for client-side routes).
pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    if !index.is_file() {
        tracing::warn!("no {} : serving a placeholder page", index.display());
        return Router::new().fallback(|| async {
            (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response()
        });
    }
    let index = ServeFile::new(&index);
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .precompressed_gzip()
        .fallback(index.clone());
    // Room the directory's own path takes in a full path.
    let prefix = dir.as_os_str().len() + 1;
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let (files, index) = (files.clone(), index.clone());
        async move {
            // A path no file can have (a name over the file system's limit) is a client
            // route like any unknown path, not an I/O error: the app's page answers.
            let r = if can_name_a_file(req.uri().path(), prefix) {
                files.oneshot(req).await.map(IntoResponse::into_response)
            } else {
                index.oneshot(req).await.map(IntoResponse::into_response)
            };
            let mut res = r.unwrap_or_else(|e| match e {});
            // The file service picks `name.gz` by Accept-Encoding but does not say so: a
            // shared cache (these are `public`) must not give the gzip body to a client that
            // did not ask for it. (The compression layer adds it only where it compresses.)
            let varies = res.headers().get_all(header::VARY).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
            });
            if !varies {
                res.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("accept-encoding"));
            }
            Ok::<_, std::convert::Infallible>(res)
        }
    }))
}

/// Longest file name (one path segment, in bytes) a file system takes: `NAME_MAX`.
const NAME_MAX: usize = 255;
/// Longest path looked up on disk: `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// The suffix the file service tries first (`precompressed_gzip`).
const GZ: usize = ".gz".len();

/// Whether a request path could name a file below a directory whose path takes `prefix`
/// bytes: no NUL, every segment percent-decoded within [`NAME_MAX`] bytes with room for
/// `.gz`, and the whole within [`PATH_MAX`]. Others fail in the kernel (`ENAMETOOLONG`,
/// an interior NUL), which the file service would answer as a server error.
fn can_name_a_file(path: &str, prefix: usize) -> bool {
    let decoded_len = |seg: &str| {
        let b = seg.as_bytes();
        let escapes = b
            .windows(3)
            .filter(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
            .count();
        b.len() - 2 * escapes
    };
    let nul = path.contains('\0') || path.to_ascii_lowercase().contains("%00");
    let total = prefix
        + path
            .split('/')
            .map(|seg| decoded_len(seg) + 1)
            .sum::<usize>()
        + GZ;
    !nul && total < PATH_MAX && path.split('/').all(|seg| decoded_len(seg) + GZ <= NAME_MAX)
}

/// The Content-Security-Policy for the app. Inline scripts in `index.html` (Trunk's loader)
/// are allowed by their SHA-256 hash, nothing else inline; `wasm-unsafe-eval` lets the page
/// compile its own WebAssembly.
pub fn content_security_policy(dir: &Path) -> String {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap_or_default();
    let hashes: String = inline_scripts(&html)
        .into_iter()
        .map(|s| format!(" 'sha256-{}'", base64(&Sha256::digest(s.as_bytes()))))
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Contents of `<script>` elements without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let body = &after[tag_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            out.push(&body[..close]);
        }
        rest = &body[close..];
    }
    out
}

/// Standard base64 with padding (RFC 4648), for CSP hashes.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Whether a path names a Trunk output with a content hash (`name-0123456789abcdef.js`).
fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or("");
    let stem = file.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, h)| h.len() >= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Adds Cache-Control: a year and `immutable` for hashed assets, `no-cache` otherwise.
pub async fn cache_headers(req: Request, next: Next) -> Response {
    let hashed = is_hashed_asset(req.uri().path());
    let mut res = next.run(req).await;
    let value = if hashed && res.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(value));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_over_the_limits_name_no_file() {
        assert!(can_name_a_file("/index.html", 5));
        assert!(can_name_a_file(&format!("/{}", "a".repeat(252)), 5));
        assert!(
            !can_name_a_file(&format!("/{}", "a".repeat(253)), 5),
            "no room for .gz"
        );
        assert!(can_name_a_file(&format!("/{}", "%41".repeat(252)), 5));
        assert!(!can_name_a_file(&format!("/s/{}", "%41".repeat(256)), 5));
        assert!(!can_name_a_file(&"/aaaaaaaaaa".repeat(500), 5));
        assert!(!can_name_a_file(&"/a".repeat(2100), 5), "separators count");
        assert!(!can_name_a_file("/%00", 5));
        assert!(!can_name_a_file(&format!("/{}", "a".repeat(3000)), 5));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn scripts_and_assets() {
        let html = "<script src=\"/a.js\"></script><script type=module>init()</script>";
        assert_eq!(inline_scripts(html), vec!["init()"]);
        assert!(is_hashed_asset(
            "/iacscope-frontend-0123456789abcdef_bg.wasm"
        ));
        assert!(is_hashed_asset("/iacscope-frontend-0123456789abcdef.js"));
        assert!(!is_hashed_asset("/index.html"));
    }
}
