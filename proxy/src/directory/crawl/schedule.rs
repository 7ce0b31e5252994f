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
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            every: None,
            concurrency: 64,
            connect_rate: 10.0,
            lease_secs: 120,
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

/// The schedule's task: a pass at start-up and one every period, until the shutdown.
pub async fn task(st: Arc<AppState>) {
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
        match pass(&st).await {
            Ok(p) => tracing::info!(
                "scheduled crawl: {} due, {} stored, {} failed",
                p.total,
                p.stored,
                p.failures()
            ),
            Err(e) => tracing::warn!("scheduled crawl: {e}"),
        }
        next = started + every;
    }
}

/// One pass: rescans every due server; returns the pass's progress.
pub async fn pass(st: &Arc<AppState>) -> Result<Progress, String> {
    let cfg = st.config.crawl.clone();
    let every = cfg.every.ok_or("the schedule is off")?;
    let now = crate::relay::store::unix_micros().div_euclid(1_000_000);
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
    let mut progress = Progress {
        total: due.len(),
        ..Progress::default()
    };
    if due.is_empty() {
        return Ok(progress);
    }
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
    run::crawl(Arc::clone(st), round, source, opts, &mut progress, |_| {}).await;
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
    }
}
