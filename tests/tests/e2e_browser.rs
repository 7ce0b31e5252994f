//! End-to-end: the built web app (`dist/`) in headless Chromium, through a real `iacscope
//! serve --allow-private`, scanning the `mush` fake server; the page's fingerprint must equal
//! `iacscope scan`'s for the same server. The page then saves the scan; its permalink, opened
//! in the browser, must show the same fingerprint, banner and timeline without scanning
//! again, and the embed widget `/embed/<id>` the host and fingerprint. Leaves screenshots in
//! `$IACSCOPE_E2E_OUT/mush.png` and `permalink.png`.
//!
//! Built only with the `e2e` feature (see `tests/Cargo.toml`): `cargo xtask test --only e2e`
//! runs it with these variables set, and it fails (not skips) when one is missing:
//! `IACSCOPE_E2E_DIST` (the Trunk build), `IACSCOPE_E2E_CHROMIUM`, `IACSCOPE_E2E_CHROMEDRIVER`;
//! optional `IACSCOPE_E2E_OUT` (default `<workspace>/target/e2e`) and `IACSCOPE_BIN`.
//! Everything listens on 127.0.0.1 and every process started here is killed on drop.
//!
//! A second test scans the same fake server behind a TLS terminator with a self-signed
//! certificate: the verifying scan must end in the proxy's sentence and a "Scan again
//! without verification" button, and the retry must connect and show the verdict.

#[allow(dead_code)]
#[path = "../../xtask/src/webdriver.rs"]
mod webdriver;

use anyhow::{bail, Context, Result};
use iacscope_tests::harness::{self, ChildGuard};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use webdriver::{Browser, Tools};

/// The whole scan in the page, from submit to the finished report.
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// From the end of the scan to the permalink on the page (the save retries while the proxy
/// closes the session), and from opening the permalink to the replayed page.
const SAVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether the embed widget (`/embed/<id>`) is checked. It was built in parallel with this
/// test; with `false`, the embed page is fetched and what it shows is printed, not checked.
const EMBED_READY: bool = true;

/// Hex digits of the fingerprint the embed widget shows (the full one is its `title`).
const EMBED_SHORT_FP: usize = 8;

fn env_path(name: &str, what: &str) -> Result<PathBuf> {
    let p = std::env::var_os(name).map(PathBuf::from).with_context(|| {
        format!(
            "{name} is not set: it must point to {what}. Run this test with \
             `cargo xtask test --only e2e` (after `--only web-build`), which sets it"
        )
    })?;
    if !p.exists() {
        bail!("{name}={} does not exist ({what})", p.display());
    }
    Ok(p)
}

/// `fake-telnetd --scenario NAME --port 0`, and the port it printed.
fn start_fake(scenario: &str) -> Result<(ChildGuard, u16)> {
    let mut guard = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_fake-telnetd"))
            .args(["--scenario", scenario, "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting fake-telnetd")?,
    );
    let stdout = guard.0.stdout.take().context("fake-telnetd stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port = line
        .trim()
        .strip_prefix("listening 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("fake-telnetd printed {line:?}"))?;
    Ok((guard, port))
}

/// `iacscope serve` on a free loopback port.
fn start_serve(bin: &PathBuf, dist: &PathBuf, data_dir: &PathBuf) -> Result<(ChildGuard, u16)> {
    harness::start_on_free_port("iacscope serve", |port| {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--static-dir")
            .arg(dist)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--allow-private"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(cmd)
    })
}

/// Starts `iacscope scan 127.0.0.1 PORT --json` (it runs while the browser scans the same
/// server), its record going to `record`.
fn start_cli_scan(bin: &PathBuf, port: u16, record: &PathBuf) -> Result<ChildGuard> {
    let file = std::fs::File::create(record)?;
    Ok(ChildGuard(
        Command::new(bin)
            .args(["scan", "127.0.0.1", &port.to_string(), "--json"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting iacscope scan")?,
    ))
}

/// Waits (bounded) for the CLI scan and returns its record's fingerprint.
fn cli_fingerprint(mut cli: ChildGuard, record: &PathBuf) -> Result<String> {
    let deadline = Instant::now() + SCAN_TIMEOUT;
    let status = loop {
        if let Some(status) = cli.0.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            bail!("iacscope scan did not finish in {SCAN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        bail!("iacscope scan failed ({status})");
    }
    let record: Value = serde_json::from_slice(&std::fs::read(record)?)
        .with_context(|| format!("parsing iacscope scan's record {}", record.display()))?;
    Ok(harness::fingerprint_of(&record)
        .context("no server-probe.fingerprint in iacscope scan's record")?
        .to_string())
}

/// Everything the checks look at, read from the DOM in one go.
const COLLECT: &str = r#"
const q = s => document.querySelector(s);
const qa = s => Array.from(document.querySelectorAll(s));
const table = s => Object.fromEntries(qa(s).map(tr =>
    [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()]));
return {
    title: document.title,
    status: q('p.status')?.textContent ?? '',
    failure: q('p.failure')?.textContent ?? null,
    banner: q('pre.banner')?.textContent ?? '',
    bannerClasses: qa('pre.banner span').map(s => s.className),
    timeline: qa('ol.timeline li').map(li => li.textContent),
    // Row descriptions without times or data rows (data chunking follows arrival times),
    // durations masked (`failed after 4.01s`: the browser's clock and the proxy's differ).
    rows: qa('ol.timeline li:not(.data) .what').map(e => e.textContent.replace(/\d+\.\d+ ?s\b/g, '#s')),
    permalink: q('a.permalink')?.href ?? null,
    stored: q('p.stored')?.textContent ?? null,
    protocols: table('table.protocols tbody tr'),
    mssp: table('table.mssp tr'),
    fingerprint: q('dl.fingerprint dd.hash code')?.textContent ?? '',
    summary: q('section.card.summary h2')?.textContent ?? null,
    firstCard: q('section.card')?.className ?? null,
    facts: Object.fromEntries(qa('.summary dl.facts dt').map(dt =>
        [dt.textContent.trim(), dt.nextElementSibling?.textContent.trim() ?? ''])),
    msspCheck: q('#mssp-h ~ p')?.textContent ?? null,
};
"#;

/// What every end-to-end test needs: the built app, the browser tools, an output folder and
/// the `iacscope` binary.
struct Setup {
    dist: PathBuf,
    tools: Tools,
    out: PathBuf,
    bin: PathBuf,
}

/// Reads the environment (failing, not skipping, when something is missing) and makes the
/// output folder (`$IACSCOPE_E2E_OUT`, else `target/e2e`, then `sub`).
fn setup(sub: &str) -> Result<Setup> {
    let dist = env_path("IACSCOPE_E2E_DIST", "the Trunk-built web app (dist/)")?;
    let tools = Tools {
        chromium: env_path("IACSCOPE_E2E_CHROMIUM", "the Chromium binary")?,
        chromedriver: env_path("IACSCOPE_E2E_CHROMEDRIVER", "the chromedriver binary")?,
    };
    if !dist.join("index.html").is_file() {
        bail!(
            "{} has no index.html: run `cargo xtask test --only web-build` first",
            dist.display()
        );
    }
    let out = std::env::var_os("IACSCOPE_E2E_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| harness::workspace_root().join("target/e2e"))
        .join(sub);
    std::fs::create_dir_all(&out)?;
    let bin = harness::iacscope_bin()?;
    Ok(Setup {
        dist,
        tools,
        out,
        bin,
    })
}

/// Waits for the app to mount (`data-ready` on `<html>`).
fn wait_mounted(browser: &Browser) -> Result<Value> {
    browser.wait_for(
        "the app to mount (data-ready on <html>)",
        "return document.documentElement.dataset.ready ?? null;",
        Duration::from_secs(20),
    )
}

/// Waits for the page's scan to end; returns its status line.
fn wait_scan_over(browser: &Browser, what: &str) -> Result<Value> {
    browser.wait_for(
        what,
        "const s = document.querySelector('p.status')?.textContent ?? '';
         return /^(Done|Failed|Cancelled):/.test(s) ? s : null;",
        SCAN_TIMEOUT,
    )
}

#[test]
fn mush_scan_in_the_browser_matches_the_cli() -> Result<()> {
    let started = Instant::now();
    let Setup {
        dist,
        tools,
        out,
        bin,
    } = setup("")?;

    let (fake, telnet_port) = start_fake("mush")?;
    // The proxy's scan store goes under the output folder, never into the source tree.
    let data_dir = out.join("data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let (_serve, http_port) = start_serve(&bin, &dist, &data_dir)?;
    let cli_record = out.join("mush-cli.json");
    let cli = start_cli_scan(&bin, telnet_port, &cli_record)?;

    eprintln!("e2e: servers up after {:.1?}", started.elapsed());
    let browser = Browser::launch(&tools, &out.join("chromium-profile"))?;
    eprintln!("e2e: browser up after {:.1?}", started.elapsed());
    browser.goto(&format!("http://127.0.0.1:{http_port}/"))?;
    wait_mounted(&browser)?;
    eprintln!("e2e: page ready after {:.1?}", started.elapsed());
    let input = browser.find("#target")?;
    browser.send_keys(&input, &format!("127.0.0.1:{telnet_port}"))?;
    let submit = browser.find("form.scan-form button[type=submit]")?;
    browser.click(&submit)?;

    let finished = wait_scan_over(
        &browser,
        "the scan to finish (status `Done:`/`Failed:`/`Cancelled:`)",
    );
    eprintln!("e2e: page scan over after {:.1?}", started.elapsed());
    // The screenshot is the artifact to look at when a check fails, so take it first.
    let png = out.join("mush.png");
    if let Ok(bytes) = browser.screenshot() {
        std::fs::write(&png, bytes)?;
    }
    let page = browser.execute(COLLECT, vec![])?;
    let finished = finished.with_context(|| format!("page state: {page:#}"))?;
    let expected = cli_fingerprint(cli, &cli_record)?;

    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    check(
        finished.as_str().is_some_and(|s| s.starts_with("Done:")),
        format!("status is {finished} (failure: {})", page["failure"]),
    );
    let banner = page["banner"].as_str().unwrap_or("");
    check(
        banner.contains("Welcome to FakeMUSH") && banner.contains("connect <name> <password>"),
        format!("banner text lacks the mush banner: {banner:?}"),
    );
    let classes: Vec<&str> = page["bannerClasses"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // `ESC[1;36m` and `ESC[1;33m`: cyan and yellow (palette 6 and 3), bold.
    for want in ["fg-6", "fg-3", "bold"] {
        check(
            classes.iter().any(|c| c.split(' ').any(|x| x == want)),
            format!("no banner span has class {want}: {classes:?}"),
        );
    }
    let rows: Vec<&str> = page["timeline"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    check(
        rows.iter().any(|r| r.contains("DO TTYPE")) && rows.iter().any(|r| r.contains("MSSP")),
        format!("timeline has no `DO TTYPE` and `MSSP` rows: {rows:?}"),
    );
    check(
        page["protocols"]["MSSP"] == "Yes (MSSP)",
        format!("protocol table: {}", page["protocols"]),
    );
    check(
        page["mssp"]["NAME"] == "FakeMUSH",
        format!("MSSP table: {}", page["mssp"]),
    );
    // The summary card opens the results, filled from MSSP, with the CLI's fingerprint.
    check(
        page["firstCard"] == "card summary" && page["summary"] == "FakeMUSH",
        format!(
            "summary card: {} first, titled {}",
            page["firstCard"], page["summary"]
        ),
    );
    check(
        page["facts"]["Players"] == "3"
            && page["facts"]["Codebase"] == "PennMUSH 1.8.8"
            && page["facts"]["Warnings"] == "none"
            && page["facts"]["Fingerprint"]
                .as_str()
                .is_some_and(|f| f.starts_with(expected.as_str())),
        format!("summary facts: {}", page["facts"]),
    );
    check(
        page["msspCheck"]
            .as_str()
            .is_some_and(|t| t.contains("no warnings")),
        format!("MSSP check line: {}", page["msspCheck"]),
    );
    check(
        page["title"] == "FakeMUSH \u{b7} iacscope",
        format!("page title from MSSP NAME: {}", page["title"]),
    );
    check(
        page["fingerprint"] == expected.as_str(),
        format!(
            "page fingerprint {} != iacscope scan's {expected}",
            page["fingerprint"]
        ),
    );
    eprintln!(
        "e2e: mush scanned in the browser in {:.1?} in all; fingerprint {expected}; {} timeline rows; screenshot {}",
        started.elapsed(),
        rows.len(),
        png.display()
    );
    if !problems.is_empty() {
        bail!(
            "end-to-end checks failed (screenshot: {}):\n  {}",
            png.display(),
            problems.join("\n  ")
        );
    }
    let server_href = check_permalink(&browser, &out, &page, &expected, started)?;
    // The server is upgraded (its MSSP CODEBASE changes) and crawled twice: two crawl
    // rounds for the census trend, a second complete scan for the MSSP change list.
    drop(fake);
    let upgraded = upgraded_mush()?;
    let _upgraded = harness::FakeServer::start_on_port(upgraded, telnet_port)?;
    let list = out.join("crawl.txt");
    std::fs::write(&list, format!("127.0.0.1 {telnet_port}\n"))?;
    for restart in [false, true] {
        let mut cmd = Command::new(&bin);
        cmd.arg("crawl")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--allow-private")
            .args(restart.then_some("--restart"))
            .arg(&list)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let run = harness::run_with_timeout(&mut cmd, SCAN_TIMEOUT)?;
        if !run.status.is_some_and(|s| s.success()) {
            bail!("iacscope crawl failed or timed out ({:?})", run.status);
        }
    }
    eprintln!("e2e: two crawl rounds after {:.1?}", started.elapsed());
    check_census(&browser, &out, http_port, server_href, &expected)
}

/// The `mush` scenario after an upgrade: MSSP `CODEBASE` `PennMUSH 1.8.9` (was 1.8.8).
fn upgraded_mush() -> Result<iacscope_tests::Scenario> {
    let mut mush = iacscope_tests::scenario("mush").context("the mush scenario")?;
    let (from, to) = (b"PennMUSH 1.8.8", b"PennMUSH 1.8.9");
    let mut found = false;
    for step in &mut mush.steps {
        if let iacscope_tests::script::Step::Send(bytes) = step {
            if let Some(at) = iacscope_tests::server::find(bytes, from) {
                bytes[at..at + to.len()].copy_from_slice(to);
                found = true;
            }
        }
    }
    if !found {
        bail!("the mush scenario no longer sends CODEBASE {from:?}");
    }
    Ok(mush)
}

/// The proxy's `iacscope_sessions_total` (sessions it has relayed or scanned), read from
/// `/metrics` through the page.
fn sessions_total(browser: &Browser) -> Result<u64> {
    let text = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/metrics').then(r => r.text()).then(done, e => done('error: ' + e));",
        vec![],
    )?;
    let text = text.as_str().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("iacscope_sessions_total "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no iacscope_sessions_total in /metrics: {text:?}"))
}

/// Waits for the save, opens the permalink and the embed widget, and checks what they show;
/// returns the permalink page's link to the server's page.
fn check_permalink(
    browser: &Browser,
    out: &std::path::Path,
    live: &Value,
    fingerprint: &str,
    started: Instant,
) -> Result<Option<String>> {
    let permalink = browser
        .wait_for(
            "the permalink after the save (a.permalink, or a save failure)",
            "const a = document.querySelector('a.permalink');
             if (a) return a.href;
             const f = document.querySelector('p.save-failed');
             return f ? 'failed: ' + f.textContent : null;",
            SAVE_TIMEOUT,
        )?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !permalink.contains("/s/") {
        bail!("the scan was not saved: {permalink}");
    }
    let id = permalink.rsplit('/').next().unwrap_or_default().to_owned();
    eprintln!("e2e: saved as {permalink} after {:.1?}", started.elapsed());
    let shared = browser.execute(
        "return document.querySelector('p.shared')?.textContent ?? '';",
        vec![],
    )?;
    let sessions_before = sessions_total(browser)?;
    browser.goto(&permalink)?;
    let shown = browser.wait_for(
        "the permalink page to replay the stored scan (status `Saved:`)",
        "const s = document.querySelector('p.status')?.textContent ?? '';
         const f = document.querySelector('p.failure')?.textContent;
         return s.startsWith('Saved:') ? s : (f ? 'failed: ' + f : null);",
        SAVE_TIMEOUT,
    );
    let png = out.join("permalink.png");
    if let Ok(bytes) = browser.screenshot() {
        std::fs::write(&png, bytes)?;
    }
    let page = browser.execute(COLLECT, vec![])?;
    let shown = shown.with_context(|| format!("permalink page: {page:#}"))?;
    // Read now: the checks below leave this page.
    let server_href = browser
        .execute(
            "return document.querySelector('a.server-link')?.href ?? null;",
            vec![],
        )?
        .as_str()
        .map(str::to_owned);
    let sessions_after = sessions_total(browser)?;
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    check(
        sessions_after == sessions_before,
        format!(
            "opening the permalink started {} proxy sessions (it must never rescan)",
            sessions_after.saturating_sub(sessions_before)
        ),
    );
    check(
        shown.as_str().is_some_and(|s| s.starts_with("Saved:")),
        format!("permalink status is {shown}"),
    );
    check(
        page["fingerprint"] == fingerprint,
        format!(
            "permalink fingerprint {} != the live scan's {fingerprint}",
            page["fingerprint"]
        ),
    );
    check(
        page["banner"] == live["banner"],
        format!(
            "permalink banner {} != the live one {}",
            page["banner"], live["banner"]
        ),
    );
    check(
        page["rows"] == live["rows"] && page["rows"].as_array().is_some_and(|r| !r.is_empty()),
        format!(
            "permalink timeline rows differ:\n    live {}\n    page {}",
            live["rows"], page["rows"]
        ),
    );
    check(
        page["mssp"] == live["mssp"],
        format!("permalink MSSP {} != live {}", page["mssp"], live["mssp"]),
    );
    check(
        page["summary"] == live["summary"] && page["facts"]["Players"] == live["facts"]["Players"],
        format!(
            "permalink summary {} {} != live {} {}",
            page["summary"], page["facts"], live["summary"], live["facts"]
        ),
    );
    check(
        page["stored"]
            .as_str()
            .is_some_and(|s| s.contains("connects to nothing")),
        format!("no stored-scan line: {}", page["stored"]),
    );
    check(
        page["permalink"].as_str() == Some(permalink.as_str()),
        format!("the page's own permalink is {}", page["permalink"]),
    );
    // The record on the page is the stored one, byte for byte.
    let api = browser.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch(arguments[0]).then(r => r.text()).then(done, e => done('error: ' + e));",
        vec![Value::from(format!("/api/scans/{id}"))],
    )?;
    let json = browser.execute(
        "return document.querySelector('pre.json')?.textContent ?? '';",
        vec![],
    )?;
    check(
        api == json,
        format!("the record on the page differs from /api/scans/{id}"),
    );
    eprintln!(
        "e2e: permalink replayed after {:.1?}; {} ({shared})",
        started.elapsed(),
        png.display()
    );

    browser.goto(&permalink.replace("/s/", "/embed/"))?;
    let embed = browser.execute(
        "const code = document.querySelector('code[title]');
         return {
             text: document.body ? document.body.innerText : '',
             full: code ? code.title : '',
             links: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href')),
         };",
        vec![],
    )?;
    let text = embed["text"].as_str().unwrap_or_default();
    let short = fingerprint.get(..EMBED_SHORT_FP).unwrap_or(fingerprint);
    let embed_ok = text.contains("127.0.0.1")
        && text.contains("FakeMUSH")
        && text.contains(short)
        && embed["full"] == fingerprint
        && embed["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|h| h == format!("/s/{id}").as_str()));
    if EMBED_READY {
        check(
            embed_ok,
            format!("/embed/{id} does not show the host, name and fingerprint: {embed:#}"),
        );
        // The widget's CSP allows no fetch: read the count from the app's own page.
        browser.goto(&permalink.replace(&format!("/s/{id}"), "/"))?;
        check(
            sessions_total(browser)? == sessions_before,
            format!("opening /embed/{id} started a proxy session"),
        );
        eprintln!("e2e: /embed/{id} shows the host, name and fingerprint: {embed_ok}");
    } else {
        eprintln!(
            "e2e: EMBED_READY is false: /embed/{id} not checked (it {} the host and \
             fingerprint)",
            if embed_ok { "shows" } else { "does not show" }
        );
    }
    if !problems.is_empty() {
        bail!(
            "permalink checks failed (screenshot: {}):\n  {}",
            png.display(),
            problems.join("\n  ")
        );
    }
    Ok(server_href)
}

/// A phone's width in CSS pixels, for the census pages' screenshots and overflow checks.
const PHONE_WIDTH: u32 = 390;

/// Whether anything on the page reaches past the window's right edge (SVG charts
/// included), as a list of what does.
const OVERFLOW: &str = "const w = window.innerWidth;
    return Array.from(document.querySelectorAll('main *'))
        .filter(e => e.getBoundingClientRect().right > w + 1)
        .map(e => e.tagName + '.' + (e.getAttribute('class') ?? '')).slice(0, 10);";

/// After the browser's scan and two crawl rounds of the upgraded server: `/stats` counts
/// the server, with each figure's trend over the two rounds, and the server's page shows
/// the up/down strip, the players chart, its fingerprint and its MSSP change (the
/// CODEBASE upgrade). Both are also opened at a phone's width: nothing sticks out.
fn check_census(
    browser: &Browser,
    out: &std::path::Path,
    http_port: u16,
    server_href: Option<String>,
    fingerprint: &str,
) -> Result<()> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    browser.goto(&format!("http://127.0.0.1:{http_port}/stats"))?;
    let census = browser.wait_for(
        "the census page (dl.census)",
        "const d = document.querySelector('dl.census');
         const t = document.querySelector('table.support');
         return d && t ? [d.textContent, t.textContent,
             Array.from(document.querySelectorAll('dl.census .trend')).map(e => e.textContent),
             document.querySelectorAll('dl.census .spark').length,
             document.querySelector('table.support tbody tr')?.textContent ?? '',
             document.querySelector('table.codebases tbody')?.textContent ?? ''] : null;",
        Duration::from_secs(20),
    );
    match census {
        Ok(v) => {
            let (facts, support) = (v[0].as_str().unwrap_or(""), v[1].as_str().unwrap_or(""));
            check(
                facts.contains("Servers known1") && facts.contains("With MSSP1 (100.0%)"),
                format!("/stats facts: {facts}"),
            );
            check(
                support.contains("MSSP1100.0%"),
                format!("/stats protocol support: {support}"),
            );
            // The two rounds saw the same census: every figure is unchanged.
            check(
                v[2].as_array()
                    .is_some_and(|t| t.len() == 6 && t[0] == "= was 1" && t[2] == "= was 100.0%"),
                format!("/stats trends: {}", v[2]),
            );
            check(v[3] == 6, format!("/stats sparklines: {}", v[3]));
            check(
                v[4] == "MSSP1100.0%= was 100.0%",
                format!("/stats MSSP support with its trend: {}", v[4]),
            );
            check(
                v[5] == "PennMUSH 1.8.91= was 1",
                format!("/stats codebases with their trends: {}", v[5]),
            );
        }
        Err(e) => check(false, format!("/stats did not render: {e:#}")),
    }
    browser.set_window_size(PHONE_WIDTH, 1600)?;
    if let Ok(bytes) = browser.screenshot() {
        std::fs::write(out.join("stats-phone.png"), bytes)?;
    }
    let over = browser.execute(OVERFLOW, vec![])?;
    check(
        over.as_array().is_some_and(Vec::is_empty),
        format!("/stats at {PHONE_WIDTH} px: past the edge: {over}"),
    );
    browser.set_window_size(1200, 1600)?;
    match server_href {
        Some(href) => {
            browser.goto(&href)?;
            let page = browser.wait_for(
                "the server page's MSSP changes",
                "const t = document.querySelector('table.mssp-changes');
                 const f = document.querySelector('table.fingerprint-changes');
                 return t && f ? {
                     mssp: Array.from(t.querySelectorAll('tbody tr')).map(r => r.textContent),
                     fingerprints: f.textContent,
                     bars: document.querySelectorAll('.updown i').length,
                     downs: document.querySelectorAll('.updown i.down').length,
                     players: document.querySelectorAll('svg.chart circle.point').length,
                 } : null;",
                Duration::from_secs(20),
            );
            match page {
                Ok(p) => {
                    check(
                        p["fingerprints"]
                            .as_str()
                            .is_some_and(|t| t.contains(fingerprint)),
                        format!("{href}: fingerprint changes {}", p["fingerprints"]),
                    );
                    check(
                        p["mssp"].as_array().is_some_and(|rows| {
                            rows.iter().any(|r| {
                                r.as_str().is_some_and(|r| {
                                    r.ends_with("CODEBASEPennMUSH 1.8.8PennMUSH 1.8.9")
                                })
                            })
                        }),
                        format!("{href}: MSSP changes {}", p["mssp"]),
                    );
                    check(
                        p["bars"].as_u64().is_some_and(|n| n >= 2) && p["downs"] == 0,
                        format!("{href}: up/down bars {} ({} down)", p["bars"], p["downs"]),
                    );
                    check(
                        p["players"].as_u64().is_some_and(|n| n >= 3),
                        format!("{href}: players chart points {}", p["players"]),
                    );
                }
                Err(e) => check(false, format!("{href} did not render: {e:#}")),
            }
            browser.set_window_size(PHONE_WIDTH, 1600)?;
            if let Ok(bytes) = browser.screenshot() {
                std::fs::write(out.join("server-phone.png"), bytes)?;
            }
            let over = browser.execute(OVERFLOW, vec![])?;
            check(
                over.as_array().is_some_and(Vec::is_empty),
                format!("{href} at {PHONE_WIDTH} px: past the edge: {over}"),
            );
            browser.set_window_size(1200, 1600)?;
        }
        None => check(
            false,
            "the permalink page has no link to the server's page".into(),
        ),
    }
    eprintln!("e2e: /stats and the server page checked");
    if !problems.is_empty() {
        bail!(
            "census checks failed (screenshots: {}):\n  {}",
            out.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// A TLS terminator on 127.0.0.1 with a fresh self-signed certificate, in front of
/// 127.0.0.1:`upstream`; runs on its own runtime until the process ends.
fn start_tls_terminator(upstream: u16) -> Result<u16> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = std_listener.local_addr()?.port();
    std_listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
    });
    Ok(port)
}

#[test]
fn a_self_signed_server_gets_a_verdict_and_a_retry_without_verification() -> Result<()> {
    let Setup {
        dist,
        tools,
        out,
        bin,
    } = setup("tls")?;
    let (_fake, telnet_port) = start_fake("mush")?;
    let tls_port = start_tls_terminator(telnet_port)?;
    let data_dir = out.join("data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let (_serve, http_port) = start_serve(&bin, &dist, &data_dir)?;
    let browser = Browser::launch(&tools, &out.join("chromium-profile"))?;
    browser.goto(&format!("http://127.0.0.1:{http_port}/"))?;
    wait_mounted(&browser)?;
    let input = browser.find("#target")?;
    browser.send_keys(&input, &format!("127.0.0.1:{tls_port}"))?;
    let tls = browser.find("#tls")?;
    browser.click(&tls)?;
    let submit = browser.find("form.scan-form button[type=submit]")?;
    browser.click(&submit)?;
    let alert = browser.wait_for(
        "the certificate's verdict as a sentence",
        "const a = document.querySelector('[role=alert]');
         return a && document.querySelector('button.retry-insecure') ? a.textContent : null;",
        SCAN_TIMEOUT,
    )?;
    let alert = alert.as_str().unwrap_or_default().to_owned();
    let mut problems = Vec::new();
    if !alert.starts_with("The certificate is self-signed (CN=") || alert.contains("Error") {
        problems.push(format!("the refusal reads {alert:?}"));
    }
    let retry = browser.find("button.retry-insecure")?;
    browser.click(&retry)?;
    let finished = wait_scan_over(&browser, "the scan without verification to finish")?;
    let page = browser.execute(
        "return {
            connection: document.querySelector('p.connection')?.textContent ?? '',
            tls: [...document.querySelectorAll('.summary dl.facts dt')]
                .find(dt => dt.textContent === 'TLS')?.nextElementSibling?.textContent ?? '',
            fingerprint: document.querySelector('dl.fingerprint dd.hash code')?.textContent ?? '',
        };",
        vec![],
    )?;
    if let Ok(png) = browser.screenshot() {
        std::fs::write(out.join("tls.png"), png)?;
    }
    if !finished.as_str().is_some_and(|s| s.starts_with("Done:")) {
        problems.push(format!("the retry ended as {finished}"));
    }
    let tls_fact = page["tls"].as_str().unwrap_or_default();
    if !tls_fact.contains("TLSv1.") || !tls_fact.contains("self-signed") {
        problems.push(format!("summary TLS fact: {tls_fact:?}"));
    }
    if page["fingerprint"].as_str().is_none_or(str::is_empty) {
        problems.push(format!("no fingerprint after the retry: {page}"));
    }
    eprintln!("e2e: TLS refusal {alert:?}; after the retry the summary says {tls_fact:?}");
    if !problems.is_empty() {
        bail!(
            "TLS checks failed (screenshot {}):\n  {}",
            out.join("tls.png").display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The `big5-prompt-cursor` server makes the client switch to big5 (a GB / BIG5 prompt),
/// then asks where the cursor is right away. The page has no big5 table yet: it must hold the server's bytes until the
/// table is fetched (`hook::hold_for_table`), or it answers the column latin-1 gives and the
/// server draws another banner than it does for `iacscope scan` and telnetlib3.
#[test]
fn a_charset_switch_mid_scan_decodes_exactly_in_the_browser() -> Result<()> {
    let Setup {
        dist,
        tools,
        out,
        bin,
    } = setup("charset")?;
    let (_fake, telnet_port) = start_fake("big5-prompt-cursor")?;
    let data_dir = out.join("data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let (_serve, http_port) = start_serve(&bin, &dist, &data_dir)?;
    let cli_record = out.join("charset-cli.json");
    let cli = start_cli_scan(&bin, telnet_port, &cli_record)?;
    let browser = Browser::launch(&tools, &out.join("chromium-profile"))?;
    browser.goto(&format!("http://127.0.0.1:{http_port}/"))?;
    wait_mounted(&browser)?;
    let input = browser.find("#target")?;
    browser.send_keys(&input, &format!("127.0.0.1:{telnet_port}"))?;
    let submit = browser.find("form.scan-form button[type=submit]")?;
    browser.click(&submit)?;
    let finished = wait_scan_over(&browser, "the big5 scan to finish")?;
    let page = browser.execute(COLLECT, vec![])?;
    if let Ok(png) = browser.screenshot() {
        std::fs::write(out.join("charset.png"), png)?;
    }
    let expected = cli_fingerprint(cli, &cli_record)?;
    let cli_banner = std::fs::read_to_string(&cli_record)?;
    let mut problems = Vec::new();
    if !finished.as_str().is_some_and(|s| s.starts_with("Done:")) {
        problems.push(format!("the scan ended as {finished}"));
    }
    if !cli_banner.contains("cursor at column 2 (big5)") {
        problems.push("iacscope scan's record lacks the big5 cursor answer".into());
    }
    let banner = page["banner"].as_str().unwrap_or_default();
    if !banner.contains("cursor at column 2 (big5)") {
        problems.push(format!(
            "the page answered the cursor probe as another codec: banner {banner:?}"
        ));
    }
    if page["fingerprint"] != expected.as_str() {
        problems.push(format!(
            "page fingerprint {} != iacscope scan's {expected}",
            page["fingerprint"]
        ));
    }
    eprintln!("e2e: big5 switch scanned; banner {banner:?}");
    if !problems.is_empty() {
        bail!("big5 checks failed:\n  {}", problems.join("\n  "));
    }
    Ok(())
}
