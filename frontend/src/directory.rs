//! The directory pages: the servers that share a fingerprint (`/fingerprints/<hash>`), one
//! server's scans over time with a chart of its MSSP players, its up/down history (a bar
//! strip and a table), its fingerprint and MSSP changes (`/servers/<host>/<port>`), the
//! census with each figure's trend across crawl rounds (`/stats`) and the search
//! (`/search?q=`). Each page fetches one API answer ([`fetch`]) and renders it
//! once ([`render`]) with the small DOM builder (`dom`), so browser tests render them from
//! canned rows. Charts are inline SVG (no chart library); the players chart's scaling is
//! pure and tested natively.

use crate::api::{self, Failure};
use crate::dom::{el, link, svg, table, El};
use crate::route::Route;
use crate::share::target;
use wasm_bindgen::JsValue;

/// One server sharing a fingerprint (or found by a search), with its latest scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRef {
    pub host: String,
    pub port: u16,
    /// MSSP NAME, when the server sent one.
    pub name: Option<String>,
    /// The latest scan's id.
    pub scan: String,
    pub fingerprint: String,
    pub date: String,
}

impl ServerRef {
    fn from_json(v: &JsValue, fingerprint: &str) -> Option<ServerRef> {
        let scan = api::text_field(v, "scan");
        let fp = api::text_field(v, "fingerprint");
        Some(ServerRef {
            host: api::text_field(v, "host"),
            port: api::port_field(v, "port")?,
            name: Some(api::text_field(v, "name")).filter(|n| !n.is_empty()),
            scan,
            fingerprint: if fp.is_empty() {
                fingerprint.to_owned()
            } else {
                fp
            },
            date: api::text_field(v, "date"),
        })
        .filter(|s| !s.host.is_empty() && crate::route::is_scan_id(&s.scan))
    }
}

/// One scan of a server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerScan {
    pub id: String,
    pub fingerprint: String,
    pub date: String,
    /// MSSP PLAYERS as sent (text), when present.
    pub players: Option<String>,
    pub uptime: Option<String>,
}

impl ServerScan {
    fn from_json(v: &JsValue) -> Option<ServerScan> {
        Some(ServerScan {
            id: api::text_field(v, "id"),
            fingerprint: api::text_field(v, "fingerprint"),
            date: api::text_field(v, "date"),
            players: api::mssp_text(&api::field(v, "players")),
            uptime: api::mssp_text(&api::field(v, "uptime")),
        })
        .filter(|s| crate::route::is_scan_id(&s.id))
    }
}

/// Most points the chart draws (the newest ones).
pub const CHART_MAX_POINTS: usize = 200;
/// The chart's drawing box, in SVG user units.
pub const CHART_WIDTH: f64 = 600.0;
pub const CHART_HEIGHT: f64 = 160.0;
/// Room left of and below the plot for the axis labels.
const CHART_LEFT: f64 = 40.0;
const CHART_BOTTOM: f64 = 20.0;
const CHART_TOP: f64 = 10.0;

/// Longest player count read (digits).
const MAX_COUNT_DIGITS: usize = 9;

/// A player count from MSSP text: a whole number, possibly with spaces around it; `None`
/// for anything else (MSSP values are free text). Parsed by hand: float parsing would add
/// its tables to the bundle for no gain (counts are whole).
pub fn players_count(text: Option<&str>) -> Option<f64> {
    let t = text?.trim();
    if t.is_empty() || t.len() > MAX_COUNT_DIGITS || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        t.bytes()
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
            .into(),
    )
}

/// The chart's geometry: a point per scan (`None` where players are missing or not a
/// number), the top of the y axis, and x positions for every scan.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartScale {
    /// `(x, y)` of each scan's point, or `(x, None)` when it has no count.
    pub points: Vec<(f64, Option<f64>)>,
    /// The value at the top of the y axis (at least 1).
    pub top: f64,
}

/// Scales counts (oldest first) into the chart box: x evenly spaced over the plot, y from
/// 0 at the bottom to the largest count (rounded up to a whole number) at the top.
pub fn chart_scale(counts: &[Option<f64>]) -> ChartScale {
    let top = counts
        .iter()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b))
        .ceil()
        .max(1.0);
    let plot_w = CHART_WIDTH - CHART_LEFT - 10.0;
    let plot_h = CHART_HEIGHT - CHART_BOTTOM - CHART_TOP;
    let n = counts.len();
    let points = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let x = if n <= 1 {
                CHART_LEFT + plot_w / 2.0
            } else {
                CHART_LEFT + plot_w * i as f64 / (n - 1) as f64
            };
            (x, c.map(|v| CHART_TOP + plot_h * (1.0 - v / top)))
        })
        .collect();
    ChartScale { points, top }
}

/// The runs of consecutive scans that have counts, as SVG `points` lists: a missing count
/// breaks the line rather than drawing it to zero.
pub fn chart_lines(scale: &ChartScale) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for (x, y) in &scale.points {
        match y {
            Some(y) => cur.push(format!("{x:.1},{y:.1}")),
            None => {
                if cur.len() > 1 {
                    lines.push(cur.join(" "));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        lines.push(cur.join(" "));
    }
    lines
}

/// What a directory page shows, once fetched.
#[derive(Clone, Debug, PartialEq)]
pub enum Listing {
    /// The servers sharing a fingerprint.
    Fingerprint(String, Vec<ServerRef>),
    /// A server's scans, oldest first, and its latest MSSP name.
    Server(String, u16, Vec<ServerScan>, Option<String>, History),
    /// The census.
    Stats(Stats),
    /// A search's hits.
    Search(String, Vec<ServerRef>),
    /// An empty search (the page only offers the box).
    EmptySearch,
}

/// A server's history beside its scans: every attempt (up or down, with the reason),
/// which fingerprint it had from when to when, and what changed in its MSSP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Attempts, oldest first (`date`, up, outcome, detail).
    pub points: Vec<(String, bool, String, String)>,
    /// Fingerprint runs, oldest first (`fingerprint`, from, to, scans).
    pub fingerprints: Vec<(String, String, String, i64)>,
    /// MSSP changes, oldest first, four strings a row: date, variable, before, after
    /// (empty: none).
    pub mssp: Vec<String>,
}

/// MSSP change rows the page lists (the newest ones).
pub const MAX_MSSP_ROWS_SHOWN: usize = 100;

/// `mssp_changes` as rows of four (date, variable, before, after; empty: none), oldest
/// first. A scan that stopped sending MSSP is a row of its own ("MSSP not sent").
fn mssp_rows(h: &JsValue) -> Vec<String> {
    let mut out = Vec::new();
    for c in api::list_field(h, "mssp_changes") {
        out.push(api::text_field(&c, "date"));
        out.push(if api::field(&c, "sent").as_bool() == Some(false) {
            "MSSP not sent".to_owned()
        } else {
            api::text_field(&c, "variable")
        });
        out.push(api::text_field(&c, "from"));
        out.push(api::text_field(&c, "to"));
    }
    out
}

/// Attempts the page lists (the newest ones).
pub const MAX_POINTS_SHOWN: usize = 50;

impl History {
    /// Reads the server API's answer.
    pub fn from_json(v: &JsValue) -> History {
        let h = api::field(v, "history");
        History {
            points: api::list_field(&h, "points")
                .iter()
                .map(|p| {
                    (
                        api::text_field(p, "date"),
                        api::field(p, "up").as_bool() == Some(true),
                        api::text_field(p, "outcome"),
                        api::text_field(p, "detail"),
                    )
                })
                .collect(),
            fingerprints: api::list_field(&h, "fingerprints")
                .iter()
                .map(|c| {
                    (
                        api::text_field(c, "fingerprint"),
                        api::text_field(c, "from"),
                        api::text_field(c, "to"),
                        api::int_field(c, "scans").unwrap_or(0),
                    )
                })
                .collect(),
            mssp: mssp_rows(&h),
        }
    }
}

/// The census numbers (`/api/stats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub generated: String,
    pub servers: i64,
    pub answering: i64,
    pub with_mssp: i64,
    pub unique_fingerprints: i64,
    pub players_online: i64,
    pub tls_servers: i64,
    pub tls_answering: i64,
    /// (protocol, servers, share 0–1); `None` share: not measurable from records.
    pub protocols: Vec<(String, Option<(i64, f64)>)>,
    /// (codebase, servers, servers at the end of each recent crawl round), most first.
    pub codebases: Vec<(String, i64, Vec<f64>)>,
    /// (encoding, servers, its trend), most first.
    pub encodings: Vec<(String, i64, Vec<f64>)>,
    /// The answer itself: the page reads each figure's `trend` from it when it renders.
    pub raw: JsValue,
}

impl Stats {
    /// Reads `/api/stats`.
    pub fn from_json(v: &JsValue) -> Stats {
        let int = |k: &str| api::int_field(v, k).unwrap_or(0);
        let tls = api::field(v, "tls");
        let protocols = api::field(v, "protocols");
        let named = |k: &str, name: &str| -> Vec<(String, i64, Vec<f64>)> {
            api::list_field(v, k)
                .iter()
                .map(|e| {
                    (
                        api::text_field(e, name),
                        api::int_field(e, "servers").unwrap_or(0),
                        numbers(e, "trend"),
                    )
                })
                .collect()
        };
        Stats {
            generated: api::text_field(v, "generated"),
            servers: int("servers"),
            answering: int("answering"),
            with_mssp: int("with_mssp"),
            unique_fingerprints: int("unique_fingerprints"),
            players_online: int("players_online"),
            tls_servers: api::int_field(&tls, "servers").unwrap_or(0),
            tls_answering: api::int_field(&tls, "answering").unwrap_or(0),
            protocols: crate::protocols::PROTOCOLS
                .iter()
                .map(|p| {
                    let e = api::field(&protocols, p);
                    let n = api::int_field(&e, "servers");
                    let share = api::field(&e, "share").as_f64();
                    ((*p).to_owned(), n.map(|n| (n, share.unwrap_or(0.0))))
                })
                .collect(),
            codebases: named("codebases", "codebase"),
            encodings: named("encodings", "encoding"),
            raw: v.clone(),
        }
    }
}

/// The census figures with a trend (`trend.<figure>` in `/api/stats`), in the order the
/// page lists them.
pub const FIGURES: [&str; 6] = [
    "servers",
    "answering",
    "mssp_share",
    "unique_fingerprints",
    "players_online",
    "tls_answering",
];

/// The numbers of the list `v[k]` (others are skipped).
fn numbers(v: &JsValue, k: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for n in api::list_field(v, k) {
        if let Some(x) = n.as_f64() {
            out.push(x);
        }
    }
    out
}

fn read_servers(v: &JsValue, fingerprint: &str) -> Vec<ServerRef> {
    api::list_field(v, "servers")
        .iter()
        .filter_map(|s| ServerRef::from_json(s, fingerprint))
        .collect()
}

fn sentence(f: &Failure, what: &str) -> String {
    if f.not_found() {
        format!("Nothing is stored for {what}.")
    } else {
        f.sentence(what)
    }
}

/// Fetches what directory page `route` shows; `None` for routes that are not directory
/// pages.
pub async fn fetch(route: &Route) -> Option<Result<Listing, String>> {
    let (url, what) = match route {
        Route::Fingerprint(h) => (
            format!("/api/fingerprints/{}", crate::route::encode(h)),
            "this fingerprint",
        ),
        Route::Server { host, port } => (
            format!("/api/servers/{}/{port}", crate::route::encode(host)),
            "this server",
        ),
        Route::Stats => ("/api/stats".to_owned(), "the census"),
        Route::Search(q) if q.is_empty() => return Some(Ok(Listing::EmptySearch)),
        Route::Search(q) => (
            format!("/api/search?q={}", crate::route::encode(q)),
            "this search",
        ),
        _ => return None,
    };
    let v = match api::get_json(&url).await {
        Ok(v) => v,
        Err(f) => return Some(Err(sentence(&f, what))),
    };
    Some(Ok(match route {
        Route::Fingerprint(h) => Listing::Fingerprint(h.clone(), read_servers(&v, h)),
        Route::Server { host, port } => Listing::Server(
            host.clone(),
            *port,
            api::list_field(&v, "scans")
                .iter()
                .filter_map(ServerScan::from_json)
                .collect(),
            api::mssp_text(&api::field(&v, "name")),
            History::from_json(&v),
        ),
        Route::Stats => Listing::Stats(Stats::from_json(&v)),
        Route::Search(q) => Listing::Search(q.clone(), read_servers(&v, "")),
        _ => return None,
    }))
}

/// The title of a directory page.
pub fn title(route: &Route) -> String {
    match route {
        Route::Fingerprint(h) => format!("Fingerprint {h}"),
        Route::Server { host, port } => format!("Server {}", target(host, *port)),
        Route::Search(q) if !q.is_empty() => format!("Servers matching \u{201c}{q}\u{201d}"),
        Route::Stats => "Census".into(),
        _ => "Search saved servers by name or host (the box above)".into(),
    }
}

fn code(t: &str) -> El {
    el("code").text(t)
}

/// A table of servers, each linked to its history page and its latest permalink.
pub fn server_list(servers: &[ServerRef], show_fingerprint: bool, empty: &str) -> El {
    if servers.is_empty() {
        return el("p").class("muted empty").text(empty);
    }
    let head: &[&str] = if show_fingerprint {
        &["Server", "Name (MSSP)", "Fingerprint", "Latest scan"]
    } else {
        &["Server", "Name (MSSP)", "Latest scan"]
    };
    table(
        "servers",
        head,
        servers.iter().map(|s| {
            let mut cells = vec![
                link(
                    &Route::Server {
                        host: s.host.clone(),
                        port: s.port,
                    }
                    .href(),
                    &target(&s.host, s.port),
                )
                .class("server"),
                el("span").text(s.name.as_deref().unwrap_or_default()),
            ];
            if show_fingerprint {
                cells.push(
                    link(&Route::Fingerprint(s.fingerprint.clone()).href(), "")
                        .class("fp")
                        .child(code(&s.fingerprint)),
                );
            }
            cells.push(link(&Route::Permalink(s.scan.clone()).href(), &s.date).class("scan"));
            cells
        }),
    )
}

fn card(id: &str, heading: &str) -> El {
    el("section")
        .class("card")
        .attr("aria-labelledby", id)
        .child(el("h2").attr("id", id).text(heading))
}

fn fixed(x: f64) -> String {
    format!("{x:.1}")
}

/// MSSP players over time: a line through the numeric counts (broken where one is
/// missing), a dot per count, and a red mark on the axis for each scan without one.
pub fn players_chart(scans: &[ServerScan]) -> El {
    let scans = &scans[scans.len().saturating_sub(CHART_MAX_POINTS)..];
    let counts: Vec<Option<f64>> = scans
        .iter()
        .map(|s| players_count(s.players.as_deref()))
        .collect();
    let numeric = counts.iter().flatten().count();
    if numeric == 0 {
        return el("p")
            .class("muted no-chart")
            .text("No scan of this server has a numeric MSSP player count to chart.");
    }
    let scale = chart_scale(&counts);
    let base = CHART_HEIGHT - CHART_BOTTOM;
    let right = CHART_WIDTH - 10.0;
    let line = |class: &str, x1: f64, y1: f64, x2: f64, y2: f64| {
        svg("line")
            .class(class)
            .attr("x1", &fixed(x1))
            .attr("y1", &fixed(y1))
            .attr("x2", &fixed(x2))
            .attr("y2", &fixed(y2))
    };
    let tick = |y: f64, t: &str| {
        svg("text")
            .class("tick")
            .attr("x", &fixed(CHART_LEFT - 4.0))
            .attr("y", &fixed(y))
            .attr("text-anchor", "end")
            .text(t)
    };
    let label = format!(
        "MSSP players over {} scans ({numeric} with a count), up to {}",
        scans.len(),
        scale.top
    );
    let mut chart = svg("svg")
        .class("chart")
        .attr("viewBox", &format!("0 0 {CHART_WIDTH} {CHART_HEIGHT}"))
        .attr("role", "img")
        .attr("aria-label", &label)
        .child(line("axis", CHART_LEFT, base, right, base))
        .child(line("axis", CHART_LEFT, CHART_TOP, CHART_LEFT, base))
        .child(tick(CHART_TOP + 4.0, &scale.top.to_string()))
        .child(tick(base, "0"))
        .children(
            chart_lines(&scale)
                .iter()
                .map(|pts| svg("polyline").class("line").attr("points", pts)),
        );
    for ((x, y), s) in scale.points.iter().zip(scans) {
        let (mark, title) = match y {
            Some(y) => (
                svg("circle")
                    .class("point")
                    .attr("cx", &fixed(*x))
                    .attr("cy", &fixed(*y))
                    .attr("r", "3"),
                format!(
                    "{}: {} players",
                    s.date,
                    s.players.as_deref().unwrap_or_default()
                ),
            ),
            None => (
                line("missing", *x, base - 4.0, *x, base + 4.0),
                format!("{}: no player count", s.date),
            ),
        };
        chart = chart.child(mark.child(svg("title").text(&title)));
    }
    chart
}

/// A bar chart drawn by the style sheet: one `<i>` per bar, its class giving its colour or
/// height (the CSP allows no inline style). Bars, not SVG: nothing to scale or format, which
/// keeps the bundle small, and it reads the same at any width. Hidden from screen readers:
/// the text beside it says the same.
fn bars(class: &str, classes: &[&str]) -> El {
    let mut out = el("span").class(class).attr("aria-hidden", "true");
    for c in classes {
        out = out.child(el("i").class(c));
    }
    out
}

/// Up and down over the newest [`CHART_MAX_POINTS`] attempts: a tall green bar per answer,
/// a short red one per failure (the sentence above it counts them, the table below lists
/// each attempt with its date and why).
pub fn updown_chart(points: &[(String, bool, String, String)]) -> El {
    let mut classes = Vec::new();
    for p in &points[points.len().saturating_sub(CHART_MAX_POINTS)..] {
        classes.push(if p.1 { "up" } else { "down" });
    }
    bars("updown", &classes)
}

/// Heights of a sparkline's bars, as classes.
const BAR_LEVELS: [&str; 5] = ["l0", "l1", "l2", "l3", "l4"];

/// A sparkline of `values` (oldest first): a bar per value, from the least (lowest) to the
/// greatest (highest).
pub fn sparkline(values: &[f64]) -> El {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v < lo {
            lo = v;
        }
        if v > hi {
            hi = v;
        }
    }
    let mut classes = Vec::new();
    for v in values {
        // Rounded to the nearest level (a cast, not `f64::round`: no libm in the bundle).
        let level = if hi > lo {
            ((v - lo) / (hi - lo) * 4.0 + 0.5) as usize
        } else {
            2
        };
        classes.push(BAR_LEVELS[level.min(4)]);
    }
    bars("spark", &classes)
}

/// A figure's trend across crawl rounds: the change between the last two (arrow, delta,
/// the value before) and a sparkline. `share`: the values are shares (shown as points of a
/// percentage). Empty with fewer than two rounds.
pub fn trend(values: &[f64], share: bool) -> El {
    let out = el("span").class("trend");
    let [.., before, last] = values else {
        return out;
    };
    // Down, same, up.
    let arrow =
        ["\u{25bc}", "=", "\u{25b2}"][usize::from(last >= before) + usize::from(last > before)];
    let was = if share {
        percent(*before)
    } else {
        before.to_string()
    };
    out.text(&format!("{arrow} was {was}"))
        .child(sparkline(values))
}

/// A server's history: its latest scan, the players chart, then every scan newest first.
pub fn server_history(scans: &[ServerScan], name: Option<&str>) -> El {
    let Some(latest) = scans.last() else {
        return el("p")
            .class("muted empty")
            .text("No scan of this server is stored.");
    };
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "\u{2014}".into());
    el("div")
        .child(
            el("p")
                .class("latest")
                .text(&name.map_or_else(String::new, |n| format!("{n} \u{b7} ")))
                .child(
                    link(&Route::Permalink(latest.id.clone()).href(), "Latest scan")
                        .class("latest-scan"),
                )
                .text(&match scans.len() {
                    1 => " \u{b7} 1 scan stored".to_owned(),
                    n => format!(" \u{b7} {n} scans stored"),
                }),
        )
        .child(card("players-h", "Players (MSSP)").child(players_chart(scans)))
        .child(card("scans-h", "Scans").child(table(
            "scans",
            &["Date", "Fingerprint", "Players", "Uptime"],
            scans.iter().rev().map(|s| {
                vec![
                    link(&Route::Permalink(s.id.clone()).href(), &s.date).class("scan"),
                    link(&Route::Fingerprint(s.fingerprint.clone()).href(), "")
                        .class("fp")
                        .child(code(&s.fingerprint)),
                    el("span").class("players").text(&dash(&s.players)),
                    el("span").text(&dash(
                        &s.uptime.as_deref().map(crate::protocols::uptime_text),
                    )),
                ]
            }),
        )))
}

/// A server's up/down history and fingerprint changes (from crawls, schedules and visits).
pub fn server_changes(h: &History) -> El {
    let mut out = el("div");
    if !h.points.is_empty() {
        let up = h.points.iter().filter(|p| p.1).count();
        let shown = h.points.len().min(MAX_POINTS_SHOWN);
        out = out.child(
            card("uptime-h", "Up and down")
                .child(el("p").class("uptime").text(&format!(
                    "Answered {up} of {} attempts ({}%).",
                    h.points.len(),
                    up * 100 / h.points.len()
                )))
                .child(updown_chart(&h.points))
                .child(table(
                    "attempts",
                    &["Date", "Result", "Why"],
                    h.points
                        .iter()
                        .rev()
                        .take(shown)
                        .map(|(date, up, outcome, detail)| {
                            vec![
                                el("span").text(date),
                                el("span")
                                    .class(if *up { "up" } else { "down" })
                                    .text(if *up { "up" } else { outcome }),
                                el("span").text(detail),
                            ]
                        }),
                )),
        );
    }
    if !h.mssp.is_empty() {
        let mut rows = Vec::new();
        for r in h.mssp.rchunks(4).take(MAX_MSSP_ROWS_SHOWN) {
            let mut cells = Vec::new();
            for t in r {
                cells.push(el("span").text(t));
            }
            rows.push(cells);
        }
        out = out.child(card("mssp-h", "MSSP changes").child(table(
            "mssp-changes",
            &["Date", "Variable", "Before", "After"],
            rows,
        )));
    }
    if !h.fingerprints.is_empty() {
        out = out.child(card("changes-h", "Fingerprint changes").child(table(
            "fingerprint-changes",
            &["Fingerprint", "From", "To", "Scans"],
            h.fingerprints.iter().rev().map(|(fp, from, to, n)| {
                vec![
                    link(&Route::Fingerprint(fp.clone()).href(), "")
                        .class("fp")
                        .child(code(fp)),
                    el("span").text(from),
                    el("span").text(to),
                    el("span").text(&n.to_string()),
                ]
            }),
        )));
    }
    out
}

/// `0.421` as `42.1%`.
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The census page.
pub fn stats_page(s: &Stats) -> El {
    let of = |n: i64, all: i64| {
        if all > 0 {
            format!("{n} ({})", percent(n as f64 / all as f64))
        } else {
            n.to_string()
        }
    };
    let trends = api::field(&s.raw, "trend");
    let mut facts = el("dl").class("facts census");
    let values = [
        ("Servers known", s.servers.to_string()),
        ("Answering", of(s.answering, s.servers)),
        ("With MSSP", of(s.with_mssp, s.answering)),
        ("Unique fingerprints", s.unique_fingerprints.to_string()),
        ("Players online (MSSP)", s.players_online.to_string()),
        (
            "TLS",
            format!("{} known, {} answering", s.tls_servers, s.tls_answering),
        ),
    ];
    for ((k, v), key) in values.iter().zip(FIGURES) {
        facts = facts.child(el("dt").text(k)).child(
            el("dd")
                .text(v)
                .child(trend(&numbers(&trends, key), key == "mssp_share")),
        );
    }
    let counted = |rows: &[(String, i64, Vec<f64>)]| -> Vec<Vec<El>> {
        rows.iter()
            .map(|(k, n, t)| {
                vec![
                    el("span").text(k),
                    el("span").text(&n.to_string()),
                    trend(t, false),
                ]
            })
            .collect()
    };
    let protocols = api::field(&s.raw, "protocols");
    el("div")
        .child(
            card("census-h", "Census")
                .child(facts)
                .child(el("p").class("muted").text(&format!(
                    "Computed {} from the latest scan of every server in this store; \
                     each trend is over the last crawl rounds.",
                    s.generated
                ))),
        )
        .child(card("support-h", "Protocol support").child(table(
            "support",
            &["Protocol", "Servers", "Share", "Trend"],
            s.protocols.iter().map(|(p, n)| {
                let (n, share) = match n {
                    Some((n, share)) => (n.to_string(), percent(*share)),
                    None => ("\u{2014}".into(), "not in records".into()),
                };
                vec![
                    el("span").text(p),
                    el("span").text(&n),
                    el("span").text(&share),
                    trend(&numbers(&api::field(&protocols, p), "trend"), true),
                ]
            }),
        )))
        .child(card("codebases-h", "Codebases (MSSP)").child(table(
            "codebases",
            &["Codebase", "Servers", "Trend"],
            counted(&s.codebases),
        )))
        .child(card("encodings-h", "Encodings").child(table(
            "encodings",
            &["Encoding", "Servers", "Trend"],
            counted(&s.encodings),
        )))
}

/// The body of a directory page.
pub fn render(listing: &Listing) -> El {
    match listing {
        Listing::Fingerprint(_, servers) => el("div")
            .child(el("p").class("count").text(&match servers.len() {
                1 => "1 server has this fingerprint.".to_owned(),
                n => format!("{n} servers have this fingerprint."),
            }))
            .child(server_list(
                servers,
                false,
                "No stored scan has this fingerprint.",
            )),
        Listing::Server(_, _, scans, name, history) => {
            server_history(scans, name.as_deref()).child(server_changes(history))
        }
        Listing::Stats(s) => stats_page(s),
        Listing::Search(_, servers) => server_list(servers, true, "No stored server matches."),
        Listing::EmptySearch => el("div"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_counts_from_mssp_text() {
        assert_eq!(players_count(Some("12")), Some(12.0));
        assert_eq!(players_count(Some(" 7 ")), Some(7.0));
        assert_eq!(players_count(Some("3.5")), None);
        assert_eq!(players_count(Some("1234567890")), None, "too long");
        assert_eq!(players_count(Some("lots")), None);
        assert_eq!(players_count(Some("-1")), None);
        assert_eq!(players_count(Some("NaN")), None);
        assert_eq!(players_count(Some("")), None);
        assert_eq!(players_count(None), None);
    }

    #[test]
    fn chart_scales_and_breaks_at_missing_counts() {
        let s = chart_scale(&[Some(0.0), Some(10.0), None, Some(5.0), Some(2.5)]);
        assert_eq!(s.top, 10.0);
        let plot_h = CHART_HEIGHT - CHART_BOTTOM - CHART_TOP;
        assert_eq!(s.points[0], (CHART_LEFT, Some(CHART_TOP + plot_h)));
        assert_eq!(s.points[1].1, Some(CHART_TOP));
        assert_eq!(s.points[2].1, None);
        assert_eq!(s.points[3].1, Some(CHART_TOP + plot_h / 2.0));
        assert_eq!(s.points[4].0, CHART_WIDTH - 10.0);
        // x is evenly spaced.
        let dx = s.points[1].0 - s.points[0].0;
        assert!((s.points[3].0 - s.points[2].0 - dx).abs() < 1e-9);
        let lines = chart_lines(&s);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].split(' ').count(), 2);
        // One scan sits in the middle; all-zero counts still get a 0..1 axis.
        let one = chart_scale(&[Some(0.0)]);
        assert_eq!(one.top, 1.0);
        assert_eq!(
            one.points[0].0,
            CHART_LEFT + (CHART_WIDTH - CHART_LEFT - 10.0) / 2.0
        );
        assert!(chart_lines(&one).is_empty());
        // A lone count between gaps is a dot, not a line.
        assert!(chart_lines(&chart_scale(&[None, Some(3.0), None])).is_empty());
        assert_eq!(chart_scale(&[Some(2.2)]).top, 3.0);
    }
}
