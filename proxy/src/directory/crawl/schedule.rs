//! Scheduled rescans in `iacscope serve` (`--crawl-every`, the config's `[crawl]` section):
//! every period, every server the census knows (scanned by a visitor, imported, or tried
//! by a crawl) that is due is scanned again on the crawl's path ([`super::run::crawl`]), so
//! badges, live embeds and server pages are fresh without a visitor asking.
//!
//! A server is due when its last visit (scan or history point) is at least its delay old:
//! the period, or its MSSP `CRAWL DELAY` in hours when that is longer (`-1` or nothing: the
//! period), with half a period of slack so a server scanned in the last pass is due in this
//! one. Each pass is one crawl round named after its period (`schedule/<secs>/<n>`), so
//! several `serve` instances on one PostgreSQL store share a pass through the crawl's leases
//! and scan each server once.

use super::run::{self, CrawlOptions, Leases, Progress, Source};
use super::seed::{Seed, MAX_SEEDS};
use crate::directory::db::{off_thread, CensusEntry};
use crate::serve::AppState;
use iacscope_shared::pyjson;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Shortest period (tests use a few seconds; a real census hours).
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// Longest `CRAWL DELAY` honoured (a year, in hours): a larger value is taken as this.
pub const MAX_CRAWL_DELAY_HOURS: i64 = 24 * 366;

/// The `[crawl]` section of the `serve` configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Rescan every known server this often (`6h`); unset or `0`: never (the default).
    /// Each rescan costs the server a connection, so this is an operator's choice.
    #[serde(with = "crate::serve::config::opt_dur")]
    pub every: Option<Duration>,
    /// Scheduled scans in flight at once: they hold session slots beside the visitors'.
    pub concurrency: usize,
    /// New scheduled connections per second.
    pub connect_rate: f64,
    /// A shared (PostgreSQL) pass: seconds an instance's lease on a server lasts unless
    /// renewed, so a dead instance's servers are scanned by the others.
    pub lease_secs: u64,
    /// History points (every crawl's and schedule's attempts) older than this are deleted,
    /// at start-up and every hour (`365d`); unset or `0`: kept for ever (the default). At
    /// least [`MIN_KEEP_HISTORY`], so a running round keeps its done marks. Scans are kept
    /// by `scan_retention`.
    #[serde(with = "crate::serve::config::opt_dur")]
    pub keep_history: Option<Duration>,
}

/// Shortest `keep_history`.
pub const MIN_KEEP_HISTORY: Duration = Duration::from_secs(86_400);

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            every: None,
            concurrency: 64,
            connect_rate: 10.0,
            lease_secs: 120,
            keep_history: None,
        }
    }
}

impl ScheduleConfig {
    /// What is wrong with the section, if anything.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = self.every {
            if e < MIN_EVERY {
                return Err(format!(
                    "crawl every must be at least {} s (or 0: off)",
                    MIN_EVERY.as_secs()
                ));
            }
        }
        if self.keep_history.is_some_and(|k| k < MIN_KEEP_HISTORY) {
            return Err("crawl keep_history must be at least 1 day (or 0: for ever)".into());
        }
        if self.concurrency == 0 || self.concurrency > super::MAX_CONCURRENCY {
            return Err(format!(
                "crawl concurrency must be 1 to {}",
                super::MAX_CONCURRENCY
            ));
        }
        if !(self.connect_rate > 0.0 && self.connect_rate <= super::MAX_CONNECT_RATE) {
            return Err(format!(
                "crawl connect_rate must be above 0 and at most {}",
                super::MAX_CONNECT_RATE
            ));
        }
        if !(super::MIN_LEASE_SECS..=super::MAX_LEASE_SECS).contains(&self.lease_secs) {
            return Err(format!(
                "crawl lease_secs must be {} to {}",
                super::MIN_LEASE_SECS,
                super::MAX_LEASE_SECS
            ));
        }
        Ok(())
    }
}

/// Where the schedule's "now" comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system clock, which history points and scans are stamped with.
    System,
    /// The system clock as it read at `at`, moved on by tokio's clock since: on paused time
    /// (`tokio::time::advance`) a test's schedule lives through hours in a moment.
    Tokio {
        /// Unix microseconds at `at`.
        unix_micros: i64,
        /// The tokio instant it was read at.
        at: Instant,
    },
}

impl Clock {
    /// A [`Clock::Tokio`] starting now.
    pub fn tokio() -> Clock {
        Clock::Tokio {
            unix_micros: crate::relay::store::unix_micros(),
            at: Instant::now(),
        }
    }

    /// Unix microseconds now.
    pub fn unix_micros(self) -> i64 {
        match self {
            Clock::System => crate::relay::store::unix_micros(),
            Clock::Tokio { unix_micros, at } => {
                let since = i64::try_from(at.elapsed().as_micros()).unwrap_or(i64::MAX);
                unix_micros.saturating_add(since)
            }
        }
    }
}

/// The schedule's task: a pass at start-up and one every period, until the shutdown.
pub async fn task(st: Arc<AppState>) {
    run(st, Clock::System, crawl_round).await;
}

/// The schedule's loop with its clock and the function that rescans one pass's due servers
/// (`crawl_round`; tests put in-memory servers there).
pub async fn run<F, Fut>(st: Arc<AppState>, clock: Clock, mut rescan: F)
where
    F: FnMut(Arc<AppState>, String, Vec<Seed>) -> Fut,
    Fut: Future<Output = Result<Progress, String>>,
{
    let Some(every) = st.config.crawl.every else {
        return;
    };
    let mut next = Instant::now();
    loop {
        tokio::select! {
            () = sleep_until(next) => {}
            () = st.shutdown.cancelled() => return,
        }
        let started = Instant::now();
        match pass(&st, clock, &mut rescan).await {
            Ok(p) => tracing::info!(
                "scheduled crawl: {} due, {} stored, {} failed{}",
                p.total,
                p.stored,
                p.failures(),
                p.gave_up
                    .map(|why| format!("; stopped early: {why}"))
                    .unwrap_or_default()
            ),
            Err(e) => tracing::warn!("scheduled crawl: {e}"),
        }
        next = started + every;
    }
}

/// One pass: finds the due servers and has `rescan` scan them as one crawl round.
async fn pass<F, Fut>(st: &Arc<AppState>, clock: Clock, rescan: &mut F) -> Result<Progress, String>
where
    F: FnMut(Arc<AppState>, String, Vec<Seed>) -> Fut,
    Fut: Future<Output = Result<Progress, String>>,
{
    let every = st.config.crawl.every.ok_or("the schedule is off")?;
    let now = clock.unix_micros().div_euclid(1_000_000);
    let secs = every.as_secs().max(1) as i64;
    let round = format!("schedule/{secs}/{}", now / secs);
    let census = off_thread(&st.db, |db| db.census(MAX_SEEDS as i64)).await?;
    let mut due = Vec::new();
    for e in census {
        if is_due(st, &e, now, secs).await {
            due.push(Seed {
                target: e.target,
                encoding: None,
            });
        }
    }
    if due.is_empty() {
        return Ok(Progress::default());
    }
    rescan(Arc::clone(st), round, due).await
}

/// Scans one pass's due servers on the crawl's path ([`run::crawl`]) as crawl round `round`:
/// from the round's shared queue on a PostgreSQL store, else from memory.
async fn crawl_round(st: Arc<AppState>, round: String, due: Vec<Seed>) -> Result<Progress, String> {
    let cfg = st.config.crawl.clone();
    let mut progress = Progress {
        total: due.len(),
        ..Progress::default()
    };
    let source = if st.db.shares_crawls() {
        let queue: Vec<_> = due.into_iter().map(|s| (s.target, s.encoding)).collect();
        let key = round.clone();
        off_thread(&st.db, move |db| db.crawl_enqueue(&key, &queue)).await?;
        Source::Shared(Leases {
            worker: format!("serve:{}", super::worker_name()),
            lease: Duration::from_secs(cfg.lease_secs),
            limit: None,
        })
    } else {
        Source::Local(due)
    };
    let opts = CrawlOptions {
        concurrency: cfg.concurrency,
        connect_rate: cfg.connect_rate,
        connect_timeout: st.config.connect_timeout,
        retries: 1,
        retry_backoff: Duration::from_secs(5),
    };
    run::crawl(Arc::clone(&st), round, source, opts, &mut progress, |_| {}).await;
    Ok(progress)
}

/// Whether `e` is due at `now` with a period of `every` seconds: its delay (the period, or
/// its MSSP `CRAWL DELAY` when longer) has passed since its last visit, give or take half
/// a period.
async fn is_due(st: &Arc<AppState>, e: &CensusEntry, now: i64, every: i64) -> bool {
    let Some(last) = e.last_at else {
        return true;
    };
    let age = now - last;
    if age < every - every / 2 {
        return false;
    }
    // Due by the period; a CRAWL DELAY may ask for longer.
    let Some(id) = e.latest_id.clone() else {
        return true;
    };
    let record = off_thread(&st.db, move |db| db.record(&id)).await;
    let delay = match record {
        Ok(Some(text)) => crawl_delay_hours(&text),
        _ => None,
    };
    match delay {
        Some(h) => age >= (h * 3600).max(every) - every / 2,
        None => true,
    }
}

/// The MSSP `CRAWL DELAY` of a record, in hours, when it asks for one: a whole number of
/// at least 1 (at most [`MAX_CRAWL_DELAY_HOURS`]); `-1`, `0`, a missing or unreadable value
/// is `None` (the crawler's default). A list takes its first value.
pub fn crawl_delay_hours(record_text: &str) -> Option<i64> {
    let record = pyjson::parse(record_text).ok()?;
    let text = crate::directory::save::mssp_value(&record, "CRAWL DELAY")?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let first = match &v {
        serde_json::Value::Array(a) => a.first()?.clone(),
        other => other.clone(),
    };
    let n = match first {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (n >= 1).then_some(n.min(MAX_CRAWL_DELAY_HOURS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mssp: &str) -> String {
        format!(
            "{{\"server-probe\": {{\"session_data\": {{\"mssp\": {{{mssp}}}}}}}, \"sessions\": []}}"
        )
    }

    #[test]
    fn crawl_delay() {
        assert_eq!(
            crawl_delay_hours(&record("\"CRAWL DELAY\": \"6\"")),
            Some(6)
        );
        assert_eq!(
            crawl_delay_hours(&record("\"CRAWL DELAY\": [\"2\", \"3\"]")),
            Some(2)
        );
        assert_eq!(crawl_delay_hours(&record("\"CRAWL DELAY\": \"-1\"")), None);
        assert_eq!(
            crawl_delay_hours(&record("\"CRAWL DELAY\": \"soon\"")),
            None
        );
        assert_eq!(crawl_delay_hours(&record("\"NAME\": \"x\"")), None);
        assert_eq!(
            crawl_delay_hours(&record("\"CRAWL DELAY\": \"99999999\"")),
            Some(MAX_CRAWL_DELAY_HOURS)
        );
        assert_eq!(crawl_delay_hours("not json"), None);
    }

    #[test]
    fn config_checks() {
        assert!(ScheduleConfig::default().check().is_ok());
        let c = ScheduleConfig {
            every: Some(Duration::from_millis(10)),
            ..ScheduleConfig::default()
        };
        assert!(c.check().is_err());
        let c = ScheduleConfig {
            concurrency: 0,
            ..ScheduleConfig::default()
        };
        assert!(c.check().is_err());
        let c = ScheduleConfig {
            keep_history: Some(Duration::from_secs(3600)),
            ..ScheduleConfig::default()
        };
        assert!(c.check().is_err(), "a running round's done marks are kept");
    }

    use crate::directory::db::{HistoryPoint, OUTCOME_OK};
    use crate::directory::livescan;
    use crate::relay::policy::Host;
    use crate::serve::Config;
    use iacscope_shared::relay::SaveConfig;
    use std::collections::HashMap;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const HOUR: Duration = Duration::from_secs(3600);
    /// Answers MSSP with a 2-hour CRAWL DELAY.
    const DELAYED: &str = "192.0.2.1";
    /// Sends no MSSP: due every period.
    const PLAIN: &str = "192.0.2.2";

    /// A fake server's behaviour on one connection.
    #[derive(Clone, Copy, Debug)]
    enum Script {
        /// Offers MSSP (with `CRAWL DELAY` when given) and stays until the scan closes: the
        /// probes run, a complete scan.
        Complete(Option<&'static str>),
        /// Greets and closes 100 ms later, inside the first banner window: cut short.
        CutShort,
    }

    /// Plays `script` on the server's end of an in-memory connection.
    async fn serve(mut s: DuplexStream, script: Script) {
        let mut buf = [0u8; 1024];
        match script {
            Script::CutShort => {
                let _ = s.write_all(b"Welcome!\r\n").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Script::Complete(delay) => {
                let _ = s.write_all(b"\xff\xfb\x46Welcome!\r\n").await;
                let mut mssp = b"\xff\xfa\x46\x01NAME\x02Fake\x01PLAYERS\x023".to_vec();
                if let Some(d) = delay {
                    mssp.extend_from_slice(b"\x01CRAWL DELAY\x02");
                    mssp.extend_from_slice(d.as_bytes());
                }
                mssp.extend_from_slice(b"\xff\xf0");
                let mut seen = Vec::new();
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let had = seen.windows(3).any(|w| w == b"\xff\xfd\x46");
                            seen.extend_from_slice(&buf[..n]);
                            if !had && seen.windows(3).any(|w| w == b"\xff\xfd\x46") {
                                let _ = s.write_all(&mssp).await;
                            }
                        }
                    }
                }
            }
        }
    }

    /// What each server does on its `n`th connection (from 1): the delayed server and the
    /// plain one are cut short once each (the plain one on its 2nd, the delayed one on its
    /// 2nd, in the 2-hour pass).
    fn script(host: &str, n: usize) -> Script {
        match (host, n) {
            (_, 2) => Script::CutShort,
            (DELAYED, _) => Script::Complete(Some("2")),
            _ => Script::Complete(None),
        }
    }

    /// Connections per server, and the passes done: (round, hosts, tokio time since the
    /// start when the pass began).
    type Log = Arc<Mutex<(HashMap<String, usize>, Vec<(String, Vec<String>, Duration)>)>>;

    /// A pass's rescan on in-memory servers: each due server scanned by the crawl's own
    /// recording and storing path (`livescan::record_stream`, `run::store_scan`), stamped
    /// with the schedule's clock.
    async fn fake_round(
        st: Arc<AppState>,
        round: String,
        due: Vec<Seed>,
        clock: Clock,
        start: Instant,
        log: Log,
    ) -> Result<Progress, String> {
        let (hosts, began) = (
            due.iter().map(|s| s.target.host.clone()).collect(),
            start.elapsed(),
        );
        let mut progress = Progress::default();
        for seed in due {
            let n = {
                let mut l = log.lock().expect("log");
                let c = l.0.entry(seed.target.host.clone()).or_default();
                *c += 1;
                *c
            };
            let (mut client, server) = tokio::io::duplex(1 << 16);
            tokio::spawn(serve(server, script(&seed.target.host, n)));
            let ip: IpAddr = seed.target.host.parse().map_err(|_| "an address")?;
            let to = (SocketAddr::new(ip, seed.target.port), Instant::now());
            let mut recorded = livescan::record_stream(
                &st,
                &Host::Ip(ip),
                &mut client,
                to,
                "0",
                &SaveConfig::default(),
            )
            .await
            .map_err(|f| f.message)?;
            recorded.closed_at = clock.unix_micros();
            match run::store_scan(&st.db, &seed, recorded, String::new(), &round).await {
                run::Done::Stored(_) => progress.stored += 1,
                other => return Err(format!("{other:?}")),
            }
        }
        log.lock().expect("log").1.push((round, hosts, began));
        Ok(progress)
    }

    /// Issue 10: the schedule on paused time. Every hour each due server is rescanned and
    /// gets a history point of the pass's round; one whose MSSP asks for a 2-hour `CRAWL
    /// DELAY` is skipped at the 1-hour pass and rescanned at 2 hours; a scan cut short is
    /// stored but neither replaces the server's last complete fingerprint nor makes it
    /// forget its delay (the delayed server, cut short at 2 hours, waits until 4).
    #[tokio::test(start_paused = true)]
    async fn rescans_on_paused_time_honour_crawl_delay_and_keep_complete_scans() {
        let dir =
            std::env::temp_dir().join(format!("iacscope-schedule-paused-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let st = AppState::new(Config {
            data_dir: dir.clone(),
            static_dir: "/nonexistent/iacscope-test-dist".into(),
            crawl: ScheduleConfig {
                every: Some(HOUR),
                ..ScheduleConfig::default()
            },
            ..Config::default()
        })
        .expect("state");
        let clock = Clock::tokio();
        let day_ago = clock.unix_micros().div_euclid(1_000_000) - 86_400;
        // The census knows both servers from a failed attempt a day ago.
        for host in [DELAYED, PLAIN] {
            st.db
                .add_history(&HistoryPoint {
                    host: host.into(),
                    port: 23,
                    tls: false,
                    at: day_ago,
                    outcome: "timeout".into(),
                    detail: String::new(),
                    scan_id: None,
                    crawl: None,
                })
                .expect("point");
        }
        let log: Log = Arc::default();
        let start = Instant::now();
        let l = Arc::clone(&log);
        let schedule = tokio::spawn(run(Arc::clone(&st), clock, move |st, round, due| {
            fake_round(st, round, due, clock, start, Arc::clone(&l))
        }));
        let passes = |n: usize| {
            let log = Arc::clone(&log);
            async move {
                while log.lock().expect("log").1.len() < n {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let hosts = |n: usize| log.lock().expect("log").1[n].1.clone();
        let latest = |host: &str| st.db.latest(host, 23).expect("latest").expect("a scan");

        // At start-up: both.
        passes(1).await;
        assert_eq!(hosts(0), [DELAYED, PLAIN]);
        // Nothing more before the hour.
        tokio::time::advance(HOUR - Duration::from_secs(60)).await;
        assert_eq!(
            log.lock().expect("log").1.len(),
            1,
            "no pass before the hour"
        );
        let first_plain = latest(PLAIN);
        assert!(first_plain.complete);

        // 1 h: the plain server only (the delayed one asked for 2 h); it is cut short.
        passes(2).await;
        assert_eq!(hosts(1), [PLAIN]);
        let plain_scans = st.db.server(PLAIN, 23).expect("scans");
        assert_eq!(plain_scans.len(), 2);
        assert!(!plain_scans[1].complete, "stored, marked incomplete");
        assert_eq!(
            latest(PLAIN).id,
            first_plain.id,
            "not replaced by the cut-short scan"
        );
        assert_eq!(
            crate::directory::save::fingerprint_changes(&plain_scans).len(),
            1,
            "no fingerprint change from a cut-short scan"
        );

        // 2 h: both; the delayed server is cut short this time (no MSSP).
        passes(3).await;
        assert_eq!(hosts(2), [DELAYED, PLAIN]);
        let delayed_first = st.db.server(DELAYED, 23).expect("scans")[0].id.clone();
        assert_eq!(latest(DELAYED).id, delayed_first);
        assert!(latest(PLAIN).complete);
        // 3 h: its delay still counts (from its last complete scan's MSSP).
        passes(4).await;
        assert_eq!(hosts(3), [PLAIN]);
        // 4 h: both again.
        passes(5).await;
        assert_eq!(hosts(4), [DELAYED, PLAIN]);

        let log = log.lock().expect("log").clone();
        let hours: Vec<u64> = log.1.iter().map(|p| p.2.as_secs() / 3600).collect();
        assert_eq!(hours, [0, 1, 2, 3, 4], "a pass on every hour: {log:?}");
        assert_eq!((log.0[DELAYED], log.0[PLAIN]), (3, 5));
        // Every rescan is a history point of its pass's round, up.
        let every = HOUR.as_secs() as i64;
        let plain = st.db.history(PLAIN, 23).expect("history");
        assert_eq!(plain.len(), 6, "five passes and the first point: {plain:?}");
        for (p, pass) in plain.iter().zip(log.1.iter().rev()) {
            assert_eq!(p.outcome, OUTCOME_OK);
            assert_eq!(p.crawl.as_deref(), Some(pass.0.as_str()));
            assert!(pass.0.starts_with(&format!("schedule/{every}/")));
        }
        assert_eq!(st.db.history(DELAYED, 23).expect("history").len(), 4);
        st.shutdown.cancel();
        schedule.await.expect("the schedule ends at shutdown");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
