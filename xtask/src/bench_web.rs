//! `cargo xtask bench-web`: the web app against its budgets, in headless Chromium on loopback.
//!
//! - bundle: the shipped `dist/` (Trunk, release, offline), `.wasm` + `.js` as sent gzipped (the
//!   precompressed `.gz` files `iacscope serve` sends), vs 250 KB; gzip at level 9 for reference;
//! - time to interactive: a fresh browser profile (cold cache) per run navigates to
//!   `iacscope serve`; the app sets `data-ready` on `<html>` to `performance.now()` (ms since
//!   navigation start) once mounted with its form usable; median vs 300 ms;
//! - banner: a 64 KiB ANSI banner dispatched into the real reducer (`ansi::render`), then Yew's
//!   render and a forced layout, timed in the page; median vs 50 ms;
//! - timeline: 5,000 events dispatched one by one and rendered (vs 500 ms), then one more
//!   event with 5,000 in the timeline (vs 50 ms: the page stays responsive during a long scan).
//!
//! The banner and timeline hooks (`window.iacscopeBench`) exist only in a second Trunk build with
//! the frontend's `bench` feature, in `target/bench-web/dist`. Fails only when something does
//! not build or run; budgets are reported met / NOT MET.

use crate::tools::{self, CHROMEDRIVER};
use crate::util::{self, heading, which};
use crate::web;
use crate::webdriver::{Browser, Process, Tools};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUNDLE_BUDGET: usize = 250 * 1000;
const TTI_BUDGET_MS: f64 = 300.0;
const BANNER_BUDGET_MS: f64 = 50.0;
const TIMELINE_BULK_BUDGET_MS: f64 = 500.0;
const TIMELINE_ONE_BUDGET_MS: f64 = 50.0;
/// From the bytes carrying MSSP arriving in the page to its NAME on the summary card.
const SUMMARY_BUDGET_MS: f64 = 100.0;
const BANNER_KIB: u32 = 64;
/// Inputs of `iacscope_shared::bench_inputs::inputs()` (plain, ANSI art, IAC-dense, MCCP2).
const ENGINE_INPUTS: u32 = 4;
const TIMELINE_EVENTS: u32 = 5_000;

/// Dispatches through `window.iacscopeBench`, waits for Yew's render (scheduled from a
/// microtask, so done before the next macrotask), forces style and layout, and returns the
/// time taken with what the DOM then holds.
/// Times `iacscopeBench.summary(seed)`: until the summary card shows `Bench<seed>`.
const MEASURE_SUMMARY: &str = r#"
const [seed] = arguments;
const done = arguments[arguments.length - 1];
const want = 'Bench' + seed;
const t0 = performance.now();
window.iacscopeBench.summary(seed);
const check = () => {
    const h = document.querySelector('section.card.summary h2');
    if (h && h.textContent === want) {
        done({ ms: performance.now() - t0, players: document.querySelector('.summary dl.facts')?.textContent ?? '' });
    } else if (performance.now() - t0 > 5000) {
        done({ ms: null, shown: h ? h.textContent : null });
    } else {
        requestAnimationFrame(check);
    }
};
requestAnimationFrame(check);
"#;

const MEASURE: &str = r#"
const [kind, a, b] = arguments;
const done = arguments[arguments.length - 1];
const bench = window.iacscopeBench;
const t0 = performance.now();
const reducer = kind === 'banner' ? bench.banner(a, b) : bench.timeline(a, b);
setTimeout(() => {
    void document.body.offsetHeight;
    const ms = performance.now() - t0;
    const pre = document.querySelector('pre.banner');
    done({
        ms,
        reducer: reducer ?? null,
        banner: pre ? pre.textContent.length : 0,
        rows: document.querySelectorAll('ol.timeline li').length,
        note: document.querySelector('section[aria-labelledby=timeline-h] p.muted')?.textContent ?? '',
    });
}, 0);
"#;

/// Runs the benchmark. `args`: `[--runs N]` (default 5).
pub fn run(args: &[String]) -> Result<()> {
    let mut runs = 5usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                let v = it.next().context("--runs needs a number")?;
                runs = v.parse().with_context(|| format!("bad --runs `{v}`"))?;
                if runs == 0 {
                    bail!("--runs must be at least 1");
                }
            }
            "-h" | "--help" => {
                eprintln!("cargo xtask bench-web [--runs N]\n\n{}", module_doc());
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }

    heading("tools");
    tools::ensure(tools::Needs {
        web: true,
        browser: true,
        python: false,
    })?;
    heading("web app (trunk build --release)");
    web::trunk_build()?;
    let dist = web::dist_dir();
    heading("web app with bench hooks (trunk build --release --features bench)");
    let bench_dist = util::target_dir().join("bench-web/dist");
    util::run(web::trunk_command(&["--features", "bench", "--dist"])?.arg(&bench_dist))?;
    heading("iacscope (cargo build --release)");
    util::run(util::cargo().args(["build", "--release", "-p", "iacscope", "--bin", "iacscope"]))?;
    let bin = util::target_dir().join("release/iacscope");
    let tools = Tools {
        chromium: which("chromium").context("chromium not found")?,
        chromedriver: PathBuf::from(CHROMEDRIVER),
    };
    let profile = util::target_dir().join("bench-web/chromium-profile");

    heading("bench-web");
    let bundle = web::bundle(&dist, |_, _| ())?;

    let (_serve, port) = serve(&bin, &dist)?;
    let url = format!("http://127.0.0.1:{port}/");
    let mut tti = Vec::new();
    for i in 0..runs {
        // A fresh profile each run: a first visit, nothing cached.
        let browser = Browser::launch(&tools, &profile)?;
        browser.goto(&url)?;
        let ready = wait_ready(&browser)?;
        eprintln!("time to interactive, run {}: {ready:.1} ms", i + 1);
        tti.push(ready);
    }

    let (_bench_serve, bench_port) = serve(&bin, &bench_dist)?;
    let bench_url = format!("http://127.0.0.1:{bench_port}/");
    let browser = Browser::launch(&tools, &profile)?;
    browser.goto(&bench_url)?;
    wait_ready(&browser)?;
    let (mut banner, mut banner_reducer) = (Vec::new(), Vec::new());
    for seed in 0..runs as u32 {
        let v = measure(&browser, "banner", BANNER_KIB, seed)?;
        if v["banner"].as_u64().unwrap_or(0) < 1000 {
            bail!("the banner did not render: {v}");
        }
        let reducer = v["reducer"].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "banner {BANNER_KIB} KiB, run {}: {:.1} ms, of which {reducer:.1} ms in the reducer \
             (ansi::render) ({} characters)",
            seed + 1,
            v["ms"].as_f64().unwrap_or(f64::NAN),
            v["banner"]
        );
        banner.push(v["ms"].as_f64().unwrap_or(f64::NAN));
        banner_reducer.push(reducer);
    }
    let (mut bulk, mut one) = (Vec::new(), Vec::new());
    for i in 0..runs {
        browser.goto(&bench_url)?;
        wait_ready(&browser)?;
        let v = measure(&browser, "timeline", 0, TIMELINE_EVENTS)?;
        // The page keeps the newest rows in the DOM and counts the rest.
        let all = format!("{TIMELINE_EVENTS} events in all");
        if v["rows"].as_u64().unwrap_or(0) == 0 || !v["note"].as_str().unwrap_or("").contains(&all)
        {
            bail!("the timeline did not render all {TIMELINE_EVENTS} events: {v}");
        }
        eprintln!(
            "timeline {TIMELINE_EVENTS} events, run {}: {:.1} ms ({} rows in the DOM)",
            i + 1,
            v["ms"].as_f64().unwrap_or(f64::NAN),
            v["rows"]
        );
        bulk.push(v["ms"].as_f64().unwrap_or(f64::NAN));
        for k in 0..5 {
            let v = measure(&browser, "timeline", TIMELINE_EVENTS + i as u32 * 5 + k, 1)?;
            one.push(v["ms"].as_f64().unwrap_or(f64::NAN));
        }
    }
    // The summary card's first fact (MSSP NAME), from the bytes to the screen.
    let mut summary = Vec::new();
    for seed in 0..runs as u32 {
        let v = browser
            .execute_async(MEASURE_SUMMARY, vec![json!(seed)])
            .with_context(|| format!("summary card, run {}", seed + 1))?;
        let Some(ms) = v["ms"].as_f64() else {
            bail!("the summary card never showed the MSSP NAME: {v}");
        };
        eprintln!(
            "summary card NAME from MSSP bytes, run {}: {ms:.1} ms",
            seed + 1
        );
        summary.push(ms);
    }
    // The engine alone in wasm, on the native criterion benchmark's inputs.
    let mut engine = Vec::new();
    for (path, read) in [("protocol", false), ("banner read", true)] {
        for i in 0..ENGINE_INPUTS {
            let v = browser
                .execute(
                    "return window.iacscopeBench.engine(arguments[0], arguments[1]);",
                    vec![json!(i), json!(read)],
                )
                .with_context(|| format!("engine throughput {path} #{i}"))?;
            let name = v[0].as_str().unwrap_or_default().to_owned();
            let mbps = v[1].as_f64().unwrap_or(f64::NAN);
            if name.is_empty() || !mbps.is_finite() || mbps <= 0.0 {
                bail!("engine throughput {path} #{i} gave {v}");
            }
            eprintln!("engine in wasm, {path}, {name}: {mbps:.0} MB/s");
            engine.push((path, name, mbps));
        }
    }
    drop(browser);

    heading("bench-web results");
    let rows = [
        (
            "bundle: wasm + js, gzipped as sent".to_string(),
            format!("{:.1} KB", bundle.shipped as f64 / 1000.0),
            String::new(),
            format!("{:.0} KB", BUNDLE_BUDGET as f64 / 1000.0),
            Some(bundle.shipped <= BUNDLE_BUDGET),
        ),
        (
            "bundle: wasm + js, gzip level 9".to_string(),
            format!("{:.1} KB", bundle.gzip9 as f64 / 1000.0),
            String::new(),
            String::new(),
            None,
        ),
        ms_row(
            "navigation to interactive form".into(),
            &tti,
            Some(TTI_BUDGET_MS),
        ),
        ms_row(
            format!("render a {BANNER_KIB} KiB ANSI banner"),
            &banner,
            Some(BANNER_BUDGET_MS),
        ),
        ms_row(
            "  of which the reducer (ansi::render)".into(),
            &banner_reducer,
            None,
        ),
        ms_row(
            format!("dispatch + render {TIMELINE_EVENTS} timeline events"),
            &bulk,
            Some(TIMELINE_BULK_BUDGET_MS),
        ),
        ms_row(
            format!("one more event at {TIMELINE_EVENTS} rows"),
            &one,
            Some(TIMELINE_ONE_BUDGET_MS),
        ),
        ms_row(
            "MSSP bytes to NAME on the summary card".into(),
            &summary,
            Some(SUMMARY_BUDGET_MS),
        ),
    ];
    eprintln!(
        "{:<44} {:>11} {:>11} {:>9}  result",
        "measure", "median", "first run", "budget"
    );
    let (mut met, mut budgets) = (0, 0);
    for (what, value, first, budget, ok) in &rows {
        budgets += usize::from(ok.is_some());
        met += usize::from(*ok == Some(true));
        let result = match ok {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "",
        };
        eprintln!("{what:<44} {value:>11} {first:>11} {budget:>9}  {result}");
    }
    eprintln!(
        "(medians of {runs} runs, judged against the budget; headless Chromium on loopback; the \
         first run is the cold one)"
    );
    eprintln!("{met} of {budgets} budgets met");
    eprintln!();
    eprintln!("engine in wasm (the `web` profile, opt-level z; no budget; compare `cargo bench -p iacscope-shared`):");
    for (path, name, mbps) in &engine {
        eprintln!("  {path:<12} {name:<28} {mbps:>8.0} MB/s");
    }
    Ok(())
}

fn module_doc() -> &'static str {
    "Builds dist/ (and a bench build with the frontend's `bench` feature), serves them with\n\
     `iacscope serve` on 127.0.0.1 and measures in headless Chromium: bundle size (250 KB\n\
     gzipped), navigation to interactive form (300 ms), a 64 KiB ANSI banner (50 ms), 5,000\n\
     timeline events (500 ms), one more event at 5,000 (50 ms), and MSSP bytes to the NAME on
     the summary card (100 ms). Medians of N runs."
}

/// What, median, first run, budget, and whether it is met (`None`: no budget of its own).
type Row = (String, String, String, String, Option<bool>);

fn ms_row(what: String, samples: &[f64], budget: Option<f64>) -> Row {
    let m = median(samples);
    let first = samples.first().copied().unwrap_or(f64::NAN);
    (
        what,
        format!("{m:.1} ms"),
        format!("{first:.1} ms"),
        budget.map(|b| format!("{b:.0} ms")).unwrap_or_default(),
        budget.map(|b| m <= b),
    )
}

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn measure(browser: &Browser, kind: &str, a: u32, b: u32) -> Result<Value> {
    browser
        .execute_async(MEASURE, vec![json!(kind), json!(a), json!(b)])
        .with_context(|| format!("measuring {kind}({a}, {b})"))
}

/// Waits for the app's `data-ready` marker; returns it (ms since navigation start).
fn wait_ready(browser: &Browser) -> Result<f64> {
    let v = browser.wait_for(
        "the app to mount (data-ready on <html>)",
        "return document.documentElement.dataset.ready ?? null;",
        Duration::from_secs(20),
    )?;
    v.as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad data-ready {v}"))
}

/// `iacscope serve --static-dir DIST` on a free loopback port (retried: the port can be taken
/// before it binds).
fn serve(bin: &Path, dist: &Path) -> Result<(Process, u16)> {
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Process(
            Command::new(bin)
                .arg("serve")
                .arg("--static-dir")
                .arg(dist)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?,
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok((child, port));
            }
            if child.0.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("iacscope serve did not start on 127.0.0.1")
}
