//! Embed, live embed, badge and oEmbed end to end against a hostile fake MUD (its MSSP name
//! and banner carry `<script>`): the widget of a saved scan, frame headers, the 404 widget,
//! the live form's single server-side scan (deduplicated, counted at the fake server) and
//! its storage through the save path, policy refusals, remembered failures, badges parsed as
//! XML, oEmbed JSON and the discovery link on `/s/<id>`. Loopback only.

mod common;

use common::*;
use iacscope::directory::save::scan_id;
use iacscope::serve::Config;
use iacscope_shared::relay::{replay_relay, SaveConfig};
use iacscope_shared::transcript::Transcript;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The MSSP NAME the fake server sends.
const EVIL_NAME: &str = "<script>alert(1)</script> & Co";
/// A banner line the fake server sends.
const EVIL_LINE: &str = "Welcome to <script>alert('banner')</script> MUD";

/// A telnet server that offers MSSP, ECHO and SGA, answers DO MSSP with NAME and PLAYERS,
/// sends a two-line banner and closes 800 ms later. Counts its connections.
async fn hostile_mud(count: Arc<AtomicUsize>) -> u16 {
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, SeqCst);
            tokio::spawn(mud_session(s));
        }
    });
    port
}

/// [`hostile_mud`] over TLS with a fresh self-signed certificate for `localhost`; returns
/// its port and the certificate's PEM (to trust it with `Config::tls_roots`).
async fn hostile_tls_mud(count: Arc<AtomicUsize>) -> (u16, String) {
    let (acceptor, pem) = self_signed_acceptor();
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    mud_session(tls).await;
                }
            });
        }
    });
    (port, pem)
}

/// One connection of [`hostile_mud`].
async fn mud_session<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let _ = s.write_all(b"\xff\xfb\x46\xff\xfb\x01\xff\xfb\x03").await;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let wait = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(wait);
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(3).any(|w| w == b"\xff\xfd\x46") {
                        break;
                    }
                }
            },
            () = &mut wait => break,
        }
    }
    let mut sb = b"\xff\xfa\x46".to_vec();
    for (k, v) in [("NAME", EVIL_NAME), ("PLAYERS", "5")] {
        sb.push(1);
        sb.extend_from_slice(k.as_bytes());
        sb.push(2);
        sb.extend_from_slice(v.as_bytes());
    }
    sb.extend_from_slice(b"\xff\xf0");
    let _ = s.write_all(&sb).await;
    let banner = format!("\x1b[1m{EVIL_LINE}\x1b[0m\r\n\r\nSecond line\r\n");
    let _ = s.write_all(banner.as_bytes()).await;
    let stop = tokio::time::sleep(Duration::from_millis(800));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
            () = &mut stop => break,
        }
    }
    let _ = s.shutdown().await;
}

/// Drives a scan over the proxy's websocket as the web app does; returns the session id.
async fn browser_scan(server: SocketAddr, port: u16) -> String {
    common::browser_scan(server, port).await.1
}

/// Saves a closed session (retrying while the proxy still closes it); returns the scan id.
async fn save(server: SocketAddr, session: &str) -> String {
    for _ in 0..50 {
        let (status, body) = http_post(
            server,
            &format!("/api/sessions/{session}/save"),
            r#"{"config":{"scan_type":"quick"}}"#,
        )
        .await;
        if status == 409 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status, 200, "{v}");
        return v["id"].as_str().expect("id").to_owned();
    }
    panic!("the session never closed");
}

async fn get_text(server: SocketAddr, path: &str) -> (u16, String, String) {
    let (status, head, body) = http_get(server, path, "").await;
    (status, head, String::from_utf8(body).expect("utf-8"))
}

/// A web app directory whose index has an inline loader script (as Trunk writes it).
fn web_dir() -> std::path::PathBuf {
    let dir = temp_data_dir().with_extension("web");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>iacscope: telnet negotiation inspector</title>\
         <script type=\"module\">import init from '/app.js';init();</script></head>\
         <body><noscript>iacscope needs JavaScript</noscript></body></html>",
    )
    .expect("write index");
    dir
}

/// Parses an SVG badge as XML; returns its visible texts.
fn badge_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    root.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

async fn badge(server: SocketAddr, host: &str, port: u16) -> Vec<String> {
    let (status, head, body) = get_text(server, &format!("/badge/{host}/{port}.svg")).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: image/svg+xml"), "{head}");
    assert!(head.contains("cache-control: public, max-age="), "{head}");
    badge_texts(&body)
}

/// Polls the live embed until it stops saying "Scanning"; returns the last body.
async fn live_until_done(server: SocketAddr, query: &str) -> String {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let (_, _, body) = get_text(server, &format!("/embed?{query}")).await;
        if !body.contains("Scanning ") {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still scanning: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The scan id a widget links to.
fn linked_id(widget: &str) -> String {
    let at = widget.find("href=\"/s/").expect("link to the full page") + "href=\"/s/".len();
    widget[at..at + 32].to_owned()
}

#[tokio::test]
async fn widget_of_a_saved_scan_escapes_server_text() {
    let count = Arc::new(AtomicUsize::new(0));
    let port = hostile_mud(count.clone()).await;
    let server = start(Config {
        static_dir: web_dir(),
        ..config()
    })
    .await;
    let session = browser_scan(server.addr, port).await;
    let id = save(server.addr, &session).await;
    let (_, _, summary) = get_text(server.addr, &format!("/api/scans/{id}/summary")).await;
    let summary: Value = serde_json::from_str(&summary).expect("json");
    let fp = summary["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    // The API carries the MSSP check of the stored record.
    assert!(
        summary["mssp_check"]["warnings"].is_u64() && summary["mssp_check"]["findings"].is_array(),
        "{summary}"
    );

    let (status, head, body) = get_text(server.addr, &format!("/embed/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(!head.contains("x-frame-options"), "{head}");
    let csp = head
        .lines()
        .find(|l| l.starts_with("content-security-policy:"))
        .expect("a CSP");
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("'none'; frame-ancestors 'none'"), "{csp}");
    assert!(head.contains("cache-control: public, max-age="), "{head}");
    assert!(body.len() < 8 * 1024, "{} bytes", body.len());
    // Server text only escaped: the widget has no script element at all.
    assert!(!body.to_ascii_lowercase().contains("<script"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{body}"
    );
    assert!(
        body.contains("Welcome to &lt;script&gt;alert(&#39;banner&#39;)&lt;/script&gt; MUD"),
        "{body}"
    );
    assert!(body.contains("Second line"), "{body}");
    assert!(!body.contains("\u{1b}"), "escape sequences stripped");
    assert!(body.contains(&format!("127.0.0.1:{port}")), "{body}");
    assert!(
        body.contains(&format!("<code title=\"{fp}\">{}</code>", &fp[..8])),
        "{body}"
    );
    assert!(body.contains("MSSP<b>Yes (MSSP)</b>"), "{body}");
    for p in ["GMCP", "MSDP", "MCCP2", "MXP", "MSP", "MCP", "ZMP"] {
        assert!(body.contains(&format!(">{p}<b>")), "{p}: {body}");
    }
    assert!(body.contains("5 players"), "{body}");
    assert!(
        body.contains(&format!(
            "href=\"/s/{id}\" target=\"_blank\" rel=\"noopener\""
        )),
        "{body}"
    );

    // Unknown and malformed ids: a small 404 widget, still framable.
    for path in [format!("/embed/{}", "0".repeat(32)), "/embed/nope".into()] {
        let (status, head, body) = get_text(server.addr, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("No such scan"), "{body}");
        assert!(head.contains("frame-ancestors *"), "{head}");
    }

    // The live form with a fresh stored scan shows it without connecting again.
    let before = count.load(SeqCst);
    let (status, _, live) =
        get_text(server.addr, &format!("/embed?host=127.0.0.1&port={port}")).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(linked_id(&live), id, "{live}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count.load(SeqCst), before, "no rescan of a fresh result");

    // oEmbed.
    let page = format!("http://{}/s/{id}", server.addr);
    let (status, _, json) = get_text(
        server.addr,
        &format!("/oembed?url={}&format=json&maxwidth=300", enc(&page)),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let o: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(o["version"], "1.0");
    assert_eq!(o["type"], "rich");
    assert_eq!(o["provider_name"], "iacscope");
    assert_eq!(o["provider_url"], format!("http://{}/", server.addr));
    assert_eq!(o["width"], 300);
    assert_eq!(o["height"], 260);
    assert_eq!(o["title"], format!("{EVIL_NAME} (127.0.0.1:{port})"), "{o}");
    let html = o["html"].as_str().expect("html");
    assert!(
        html.starts_with(&format!(
            "<iframe src=\"http://{}/embed/{id}\" width=\"300\"",
            server.addr
        )),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    let missing = format!("http://{}/s/{}", server.addr, "f".repeat(32));
    let (status, _, _) = get_text(server.addr, &format!("/oembed?url={}", enc(&missing))).await;
    assert_eq!(status, 404);
    let (status, _, _) = get_text(
        server.addr,
        &format!("/oembed?url={}&format=xml", enc(&page)),
    )
    .await;
    assert_eq!(status, 501);

    // Discovery on the permalink page: the app's index with a link and tags in its head.
    let (status, head, index) = get_text(server.addr, &format!("/s/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        index.contains(&format!(
            "<link rel=\"alternate\" type=\"application/json+oembed\" \
             href=\"http://{}/oembed?url={}&amp;format=json\"",
            server.addr,
            enc(&page)
        )),
        "{index}"
    );
    assert!(index.contains("/oembed?url=http%3A%2F%2F"), "{index}");
    assert!(
        index.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{index}"
    );
    assert!(index.contains("<meta property=\"og:title\""), "{index}");
    assert!(
        index.contains("<script type=\"module\">import init from '/app.js';init();</script>"),
        "the loader stays as it was: {index}"
    );
    let app_csp = head
        .lines()
        .find(|l| l.starts_with("content-security-policy:"))
        .expect("a CSP");
    assert!(app_csp.contains("frame-ancestors 'none'"), "{app_csp}");
    assert!(app_csp.contains("'sha256-"), "the loader's hash: {app_csp}");
    // An unknown id gets the index as it is (the app shows "not found").
    let (status, _, plain) = get_text(server.addr, &format!("/s/{}", "e".repeat(32))).await;
    assert_eq!(status, 200);
    assert!(!plain.contains("json+oembed"));
    assert!(plain.contains("<title>iacscope: telnet negotiation inspector</title>"));

    // The badge of a stored server.
    let texts = badge(server.addr, "127.0.0.1", port).await;
    let right = &texts[texts.len() - 1];
    assert!(texts.contains(&"telnet".to_owned()), "{texts:?}");
    assert!(right.starts_with("online just now"), "{right}");
    assert!(right.contains("5 players"), "{right}");
    assert!(right.ends_with(&fp[..8]), "{right}");
}

#[tokio::test]
async fn live_embed_scans_once_and_stores_what_a_save_would() {
    let count = Arc::new(AtomicUsize::new(0));
    let port = hostile_mud(count.clone()).await;
    let server = start(config()).await;
    let query = format!("host=127.0.0.1&port={port}");
    // Concurrent requests: one scan.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let q = query.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            get_text(addr, &format!("/embed?{q}")).await
        }));
    }
    for t in tasks {
        let (status, head, body) = t.await.expect("request");
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(&format!("Scanning 127.0.0.1:{port}…")),
            "{body}"
        );
        assert!(
            body.contains("<meta http-equiv=\"refresh\" content=\"3\">"),
            "{body}"
        );
        assert!(head.contains("cache-control: no-store"), "{head}");
    }
    let done = live_until_done(server.addr, &query).await;
    assert_eq!(count.load(SeqCst), 1, "one connection for all requests");
    assert!(
        done.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{done}"
    );
    assert!(!done.to_ascii_lowercase().contains("<script"), "{done}");
    let id = linked_id(&done);
    // Shown again from the store, without a new connection.
    let again = live_until_done(server.addr, &query).await;
    assert_eq!(linked_id(&again), id);
    assert_eq!(count.load(SeqCst), 1);

    // Stored through the save path: the id is the content id of the transcript with the
    // default settings, and replaying that transcript gives the stored fingerprint.
    let (status, _, summary) = get_text(server.addr, &format!("/api/scans/{id}/summary")).await;
    assert_eq!(status, 200, "{summary}");
    let summary: Value = serde_json::from_str(&summary).expect("json");
    assert_eq!(summary["source"], "live");
    assert_eq!(summary["host"], "127.0.0.1");
    assert_eq!(summary["name"], EVIL_NAME);
    let (_, _, text) = get_text(server.addr, &format!("/api/scans/{id}/transcript")).await;
    let t = Transcript::parse(&text).expect("transcript");
    let cfg = SaveConfig::default().to_scan_config(false).expect("config");
    assert_eq!(scan_id(&text, &SaveConfig::canonical(&cfg)), id);
    let r = replay_relay(&t, cfg);
    assert!(r.consistent(), "the scan sent what its replay sends");
    assert_eq!(r.scanner.outcome().fingerprint, summary["fingerprint"]);
}

#[tokio::test]
async fn refused_target_is_explained_and_never_connected() {
    let count = Arc::new(AtomicUsize::new(0));
    let port = hostile_mud(count.clone()).await;
    let server = start(Config {
        allow_private: false,
        ..config()
    })
    .await;
    let (status, head, body) =
        get_text(server.addr, &format!("/embed?host=127.0.0.1&port={port}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("Refused by policy: 127.0.0.1 is not a public address"),
        "{body}"
    );
    assert!(head.contains("frame-ancestors *"), "{head}");
    // Never scanned: the badge says so and starts nothing.
    let texts = badge(server.addr, "127.0.0.1", port).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("not scanned"),
        "{texts:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count.load(SeqCst), 0);
    assert_eq!(server.state.live.running(), 0);
    // Bad links are a clear 400.
    let (status, _, body) = get_text(server.addr, "/embed?host=&port=23").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get_text(server.addr, "/embed?host=a.example&port=99999").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("The port must be a number"), "{body}");
}

#[tokio::test]
async fn failed_scan_is_remembered_not_stored_and_badged() {
    // A port nothing listens on.
    let (l, port) = upstream().await;
    drop(l);
    let server = start(config()).await;
    let query = format!("host=127.0.0.1&port={port}");
    let body = live_until_done(server.addr, &query).await;
    assert!(body.contains("Connection refused: 127.0.0.1:"), "{body}");
    // Remembered: the next request shows the failure without starting a scan.
    let (_, _, again) = get_text(server.addr, &format!("/embed?{query}")).await;
    assert!(again.contains("Connection refused"), "{again}");
    assert_eq!(server.state.live.running(), 0);
    let texts = badge(server.addr, "127.0.0.1", port).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("unreachable"),
        "{texts:?}"
    );
    let (_, _, hist) = get_text(server.addr, &format!("/api/servers/127.0.0.1/{port}")).await;
    let hist: Value = serde_json::from_str(&hist).expect("json");
    assert_eq!(hist["scans"].as_array().map(Vec::len), Some(0), "{hist}");
    // A badge of a server never asked about starts a scan and says so at once.
    let (l2, port2) = upstream().await;
    let texts = badge(server.addr, "127.0.0.1", port2).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("scanning"),
        "{texts:?}"
    );
    let _ = accept(&l2).await;
}

#[tokio::test]
async fn stored_scan_older_than_embed_max_age_is_rescanned() {
    let count = Arc::new(AtomicUsize::new(0));
    let port = hostile_mud(count.clone()).await;
    let server = start(Config {
        embed_max_age: Duration::ZERO,
        ..config()
    })
    .await;
    let session = browser_scan(server.addr, port).await;
    let _ = save(server.addr, &session).await;
    assert_eq!(count.load(SeqCst), 1);
    let (status, _, body) =
        get_text(server.addr, &format!("/embed?host=127.0.0.1&port={port}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Scanning 127.0.0.1:"), "{body}");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while count.load(SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no rescan");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The stale badge says how old its result is. With a maximum age of zero every result
    // is stale, so if the rescan has already ended the badge may start one more, never a
    // storm.
    let texts = badge(server.addr, "127.0.0.1", port).await;
    assert!(
        texts.last().is_some_and(|t| t.starts_with("online ")),
        "{texts:?}"
    );
    assert!(count.load(SeqCst) <= 3, "{} scans", count.load(SeqCst));
}

#[tokio::test]
async fn live_scans_count_as_sessions_in_the_metrics() {
    // A server that accepts and stays silent until the test lets it go: the scan runs (and
    // holds its admission slot) meanwhile.
    let (l, port) = upstream().await;
    let server = start(config()).await;
    let m = |name: &'static str| metric(server.addr, name);
    assert_eq!(m("iacscope_sessions_active").await, 0.0);
    let (status, _, body) =
        get_text(server.addr, &format!("/embed?host=127.0.0.1&port={port}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Scanning 127.0.0.1:"), "{body}");
    let held = accept(&l).await;
    assert_eq!(server.state.limits.active(), 1, "the scan holds a slot");
    assert_eq!(m("iacscope_sessions_active").await, 1.0);
    assert_eq!(m("iacscope_live_scans_active").await, 1.0);
    assert_eq!(m("iacscope_sessions_total").await, 1.0);
    assert_eq!(m("iacscope_live_scans_total").await, 1.0);
    drop(held);
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.state.live.running() > 0 || server.state.limits.active() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scan never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m("iacscope_sessions_active").await, 0.0);
    assert_eq!(m("iacscope_live_scans_active").await, 0.0);
    assert_eq!(m("iacscope_sessions_total").await, 1.0);
    assert_eq!(m("iacscope_live_scans_total").await, 1.0);
}

/// A stored plain scan that `/badge/...svg` shows, and `?tls=1` scanning over TLS instead.
#[tokio::test]
async fn tls_badge_uses_tls_scans_and_the_default_stays_plain() {
    let count = Arc::new(AtomicUsize::new(0));
    let (port, pem) = hostile_tls_mud(count.clone()).await;
    let roots = std::env::temp_dir().join(format!("iacscope-embed-roots-{port}.pem"));
    std::fs::write(&roots, pem).expect("write roots");
    let server = start(Config {
        tls_roots: Some(roots.clone()),
        ..config()
    })
    .await;
    // A fresh plain scan of the same host and port, stored directly.
    let plain_fp = "0123456789abcdef";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let row = plain_row(&"a".repeat(32), "localhost", port, plain_fp, now);
    assert!(server.state.db.insert(&row).expect("insert"));
    let tls_badge = |addr: SocketAddr| async move {
        let (status, head, body) =
            get_text(addr, &format!("/badge/localhost/{port}.svg?tls=1")).await;
        assert_eq!(status, 200, "{body}");
        assert!(head.contains("content-type: image/svg+xml"), "{head}");
        badge_texts(&body)
    };
    // The plain badge shows the plain scan and starts nothing.
    let texts = badge(server.addr, "localhost", port).await;
    assert_eq!(texts[0], "telnet");
    assert!(
        texts
            .last()
            .is_some_and(|t| t.starts_with("online ") && t.ends_with(&plain_fp[..8])),
        "{texts:?}"
    );
    assert_eq!(server.state.live.running(), 0);
    // The TLS badge does not take the plain scan for its own: it starts a TLS scan.
    let texts = tls_badge(server.addr).await;
    assert_eq!(texts[0], "telnet+tls");
    assert_eq!(
        texts.last().map(String::as_str),
        Some("scanning"),
        "{texts:?}"
    );
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.state.live.running() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "still scanning");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count.load(SeqCst), 1, "one TLS connection");
    let tls_row = server
        .state
        .db
        .latest_with_tls("localhost", port, true)
        .expect("query")
        .expect("the TLS scan is stored");
    assert!(tls_row.config.contains("tls=1"), "{}", tls_row.config);
    assert_ne!(tls_row.fingerprint, plain_fp);
    let texts = tls_badge(server.addr).await;
    let last = texts.last().expect("text");
    assert!(last.starts_with("online "), "{texts:?}");
    assert!(last.contains("5 players"), "{texts:?}");
    assert!(last.ends_with(&tls_row.fingerprint[..8]), "{texts:?}");
    // The plain badge still shows the plain scan (the TLS one is newer, not its own).
    let texts = badge(server.addr, "localhost", port).await;
    assert!(
        texts.last().is_some_and(|t| t.ends_with(&plain_fp[..8])),
        "{texts:?}"
    );
    // The live embed with tls=1 shows the stored TLS scan without scanning again.
    let body = live_until_done(server.addr, &format!("host=localhost&port={port}&tls=1")).await;
    assert_eq!(linked_id(&body), tls_row.id);
    assert_eq!(count.load(SeqCst), 1);
    // A bad tls value is a grey badge, not a scan.
    let (status, _, body) = get_text(
        server.addr,
        &format!("/badge/localhost/{port}.svg?tls=maybe"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        badge_texts(&body).last().map(String::as_str),
        Some("bad host, port or tls")
    );
    let _ = std::fs::remove_file(roots);
}

/// The last text of `client`'s badge of the TLS server at 127.0.0.1:`port`.
async fn badge_from(server: SocketAddr, client: &str, port: u16) -> String {
    let (status, _, body) = http_get(
        server,
        &format!("/badge/127.0.0.1/{port}.svg?tls=1"),
        &format!("X-Forwarded-For: {client}\r\n"),
    )
    .await;
    assert_eq!(status, 200);
    let body = String::from_utf8(body).expect("utf-8");
    badge_texts(&body).pop().expect("a text")
}

/// `client`'s live embed of the TLS server at 127.0.0.1:`port`: (status, body).
async fn embed_from(server: SocketAddr, client: &str, port: u16) -> (u16, String) {
    let (status, _, body) = http_get(
        server,
        &format!("/embed?host=127.0.0.1&port={port}&tls=1"),
        &format!("X-Forwarded-For: {client}\r\n"),
    )
    .await;
    (status, String::from_utf8(body).expect("utf-8"))
}

/// Hardening #7: two clients asking for many badges of slow servers used to take all 16
/// server-side scan slots, and every other embed and badge said "Limit reached". Now each
/// client runs at most a quarter of them; the rest of its requests wait in its own queue
/// (badge "queued", embed "queued: N ahead", served round-robin across clients), other
/// clients' scans start at once, and only a client whose own queue is full is refused, with
/// a sentence that says so.
#[tokio::test]
async fn server_side_scans_are_shared_fairly_between_clients() {
    // Listeners that take TCP connections (the kernel's backlog) and never answer a TLS
    // ClientHello: a `tls=1` scan of one waits in its connect until the test ends, so what
    // runs and what waits stays put while the test looks.
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..34 {
        let (l, p) = upstream().await;
        listeners.push(l);
        ports.push(p);
    }
    let server = start(Config {
        trusted_proxies: vec!["127.0.0.1".parse().expect("net")],
        connect_timeout: Duration::from_secs(3600),
        ..config()
    })
    .await;
    let (a, b, c, d) = ("198.51.100.1", "198.51.100.2", "203.0.113.3", "2001:db8::4");
    let mut texts = Vec::new();
    for &p in &ports[..8] {
        texts.push(badge_from(server.addr, a, p).await);
    }
    for &p in &ports[8..16] {
        texts.push(badge_from(server.addr, b, p).await);
    }
    // Somebody else's badge and embed start at once.
    assert_eq!(badge_from(server.addr, c, ports[16]).await, "scanning");
    let (status, body) = embed_from(server.addr, c, ports[17]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Scanning 127.0.0.1:"), "{body}");
    assert!(!body.contains("queued"), "{body}");
    // A and B each run four; their other four wait.
    let expect: Vec<&str> = [
        ["scanning"; 4],
        ["queued"; 4],
        ["scanning"; 4],
        ["queued"; 4],
    ]
    .concat();
    assert_eq!(texts, expect);
    assert_eq!(server.state.live.running(), 10);
    // A waiting scan says how many start before it: round-robin, A's turn comes first.
    let (_, body) = embed_from(server.addr, a, ports[4]).await;
    assert!(body.contains("(queued: 0 ahead)"), "{body}");
    let (_, body) = embed_from(server.addr, b, ports[12]).await;
    assert!(body.contains("(queued: 1 ahead)"), "{body}");
    let (_, body) = embed_from(server.addr, a, ports[7]).await;
    assert!(body.contains("(queued: 6 ahead)"), "{body}");
    // Anyone asking about a waiting target shares it.
    assert_eq!(badge_from(server.addr, d, ports[5]).await, "queued");
    // A may have 16 waiting; the next one is refused with a sentence that says why.
    for &p in &ports[18..30] {
        assert_eq!(badge_from(server.addr, a, p).await, "queued");
    }
    let (status, body) = embed_from(server.addr, a, ports[30]).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("too many server-side scans requested from your address"),
        "{body}"
    );
    assert!(body.contains("wait for them to finish"), "{body}");
    // Others still start at once.
    let (_, body) = embed_from(server.addr, d, ports[31]).await;
    assert!(body.contains("Scanning 127.0.0.1:"), "{body}");
    assert!(!body.contains("queued"), "{body}");
    assert_eq!(server.state.live.running(), 11);
    drop(listeners);
}

/// A server-side scan carries telnet only, as the relay does: a port that answers like an
/// HTTP server is explained in the widget, badged "not telnet" and never stored.
#[tokio::test]
async fn a_server_that_is_not_telnet_is_named_not_stored() {
    let (l, port) = upstream().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            });
        }
    });
    let server = start(config()).await;
    let query = format!("host=127.0.0.1&port={port}");
    let body = live_until_done(server.addr, &query).await;
    assert!(body.contains("Not a telnet server"), "{body}");
    assert!(body.contains("an HTTP server"), "{body}");
    let texts = badge(server.addr, "127.0.0.1", port).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("not telnet"),
        "{texts:?}"
    );
    let (_, _, hist) = get_text(server.addr, &format!("/api/servers/127.0.0.1/{port}")).await;
    let hist: Value = serde_json::from_str(&hist).expect("json");
    assert_eq!(hist["scans"].as_array().map(Vec::len), Some(0), "{hist}");
}
