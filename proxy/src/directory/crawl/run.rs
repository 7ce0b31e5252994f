//! The crawl itself: many server-side scans at once in one tokio runtime, each on the path a
//! live embed's scan takes (`relay::session::{resolve, connect_to}` under the SSRF policy,
//! `livescan::record_connected`, then `save::replay_row`), stored with its history point in
//! one transaction ([`Db::insert_with_history`]); a failure is stored as a history point
//! alone. Those points are the crawl round's done marks, so a rerun skips what is done.
//!
//! Scheduling happens in one loop that owns all state (no locks): at most `concurrency`
//! tasks (resolving or scanning), at most one scan per target address at a time (a target
//! whose address is busy waits in that address's line, without holding a task), connects
//! paced to `connect_rate` per second, and per-target retries with doubling backoff for
//! failures that may pass (timeout, refused). On shutdown no new work starts; running tasks
//! see the token at their next wait and end without storing anything.

use super::seed::Seed;
use crate::directory::db::{Db, HistoryPoint, OUTCOME_OK};
use crate::directory::livescan::{self, Failure};
use crate::directory::save;
use crate::relay::policy::Host;
use crate::relay::session;
use crate::serve::AppState;
use iacscope_shared::relay::SaveConfig;
use iacscope_shared::transcript::Entry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

/// Longest backoff between two tries of one target.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How a crawl runs (validated by the command line).
#[derive(Clone, Debug)]
pub struct CrawlOptions {
    /// Tasks (resolving or scanning) at once.
    pub concurrency: usize,
    /// New connections per second, all targets together.
    pub connect_rate: f64,
    /// DNS + TCP connect + TLS handshake time limit.
    pub connect_timeout: Duration,
    /// Extra tries of a target whose attempt timed out or was refused.
    pub retries: u32,
    /// Wait before the first retry (doubled for each further one, at most [`MAX_BACKOFF`]).
    pub retry_backoff: Duration,
}

/// What one finished target gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// Stored as this scan id.
    Stored(String),
    /// Stored as a failure with this code.
    Failed(&'static str),
    /// The store refused the write: not marked done (a rerun tries again).
    StoreError(String),
    /// Stopped by the shutdown: nothing stored.
    Abandoned,
}

/// Counters of a crawl run, for the progress line and the report.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Targets in the round.
    pub total: usize,
    /// Targets done before this run started (resumed).
    pub resumed: usize,
    /// Targets this run stored a scan of.
    pub stored: usize,
    /// Targets this run stored a failure of, by code.
    pub failed: BTreeMap<&'static str, usize>,
    /// Writes the store refused (those targets are not done).
    pub store_errors: usize,
    /// Targets abandoned at shutdown.
    pub abandoned: usize,
}

impl Progress {
    /// Failures stored in this run.
    pub fn failures(&self) -> usize {
        self.failed.values().sum()
    }

    /// Targets done in the round (resumed ones included).
    pub fn done(&self) -> usize {
        self.resumed + self.stored + self.failures()
    }

    /// Targets finished by this run.
    pub fn this_run(&self) -> usize {
        self.stored + self.failures()
    }

    /// The progress line: `done/total`, rate per minute, ETA and failures after `elapsed`.
    pub fn line(&self, elapsed: Duration) -> String {
        let mins = elapsed.as_secs_f64() / 60.0;
        let rate = if mins > 0.0 {
            self.this_run() as f64 / mins
        } else {
            0.0
        };
        let left = self.total.saturating_sub(self.done());
        let eta = if left == 0 {
            "done".to_owned()
        } else if rate > 0.0 {
            let secs = (left as f64 / rate * 60.0).round() as u64;
            format!("ETA {}", clock(secs))
        } else {
            "ETA ?".to_owned()
        };
        format!(
            "crawl {}/{} done, {:.0}/min, {eta}, {} failed{}",
            self.done(),
            self.total,
            rate,
            self.failures(),
            if self.store_errors > 0 {
                format!(", {} store errors", self.store_errors)
            } else {
                String::new()
            }
        )
    }
}

/// `1h02m`, `3m05s`, `12s`.
fn clock(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// Spaces connects `gap` apart, all tasks together.
#[derive(Debug)]
struct Pacer {
    next: Mutex<Instant>,
    gap: Duration,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            next: Mutex::new(Instant::now()),
            gap: Duration::from_secs_f64(1.0 / rate.max(0.001)),
        }
    }

    /// The instant this caller may connect at (each call takes the next slot).
    fn slot(&self) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + self.gap;
        at
    }
}

/// A target resolved and checked: its host and addresses (never empty; `ip` is the first,
/// the address its politeness line is keyed by).
struct Resolved {
    seed: Seed,
    host: Host,
    addrs: Vec<IpAddr>,
    ip: IpAddr,
}

/// What a task hands back to the loop.
enum Step {
    /// Resolution ended: go on to scan, or the target is done (a failure stored).
    Resolved(Result<Resolved, (Seed, Done)>),
    /// A scan of the target at this address ended.
    Scanned(IpAddr, Done),
}

/// The client key server-side crawl scans take target slots under (the crawler is one
/// client; the per-address line below already keeps it to one scan per address).
const CRAWLER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Crawls `seeds` (the round's targets not done yet) for crawl round `round_key`;
/// `progress` starts with `total` and `resumed` set and is updated as targets finish;
/// `tick` is called about every second with it. Returns when every target is done or, after
/// `st.shutdown` is cancelled, when the running tasks have ended.
pub async fn crawl(
    st: Arc<AppState>,
    round_key: String,
    seeds: Vec<Seed>,
    opts: CrawlOptions,
    progress: &mut Progress,
    mut tick: impl FnMut(&Progress),
) {
    let pacer = Arc::new(Pacer::new(opts.connect_rate));
    let opts = Arc::new(opts);
    let round_key: Arc<str> = round_key.into();
    let mut pending: VecDeque<Seed> = seeds.into();
    let mut ready: VecDeque<Resolved> = VecDeque::new();
    let mut busy: HashSet<IpAddr> = HashSet::new();
    let mut lines: HashMap<IpAddr, VecDeque<Resolved>> = HashMap::new();
    let mut tasks: JoinSet<Step> = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while !st.shutdown.is_cancelled() && tasks.len() < opts.concurrency {
            if let Some(r) = ready.pop_front() {
                let ip = r.ip;
                tasks.spawn(scan_task(
                    Arc::clone(&st),
                    r,
                    Arc::clone(&opts),
                    Arc::clone(&pacer),
                    Arc::clone(&round_key),
                    ip,
                ));
            } else if let Some(seed) = pending.pop_front() {
                tasks.spawn(resolve_task(
                    Arc::clone(&st),
                    seed,
                    Arc::clone(&opts),
                    Arc::clone(&round_key),
                ));
            } else {
                break;
            }
        }
        if tasks.is_empty() {
            break;
        }
        let step = tokio::select! {
            joined = tasks.join_next() => joined,
            _ = ticker.tick() => {
                tick(progress);
                continue;
            }
        };
        let step = match step {
            Some(Ok(step)) => step,
            Some(Err(e)) => {
                // A panicking task is a bug; its target stays not done (a rerun retries).
                tracing::error!("crawl task failed: {e}");
                progress.store_errors += 1;
                continue;
            }
            None => continue,
        };
        match step {
            Step::Resolved(Ok(r)) => {
                // One scan per address at a time: a busy address's targets wait in its line.
                let ip = r.ip;
                if busy.insert(ip) {
                    ready.push_back(r);
                } else {
                    lines.entry(ip).or_default().push_back(r);
                }
            }
            Step::Resolved(Err((_, done))) => count(progress, &done),
            Step::Scanned(ip, done) => {
                count(progress, &done);
                match lines.get_mut(&ip).and_then(VecDeque::pop_front) {
                    // The address stays busy: its next target goes first.
                    Some(next) => ready.push_front(next),
                    None => {
                        busy.remove(&ip);
                        lines.remove(&ip);
                    }
                }
            }
        }
    }
    // Left at shutdown (or behind a task that panicked): not done, so a rerun scans them.
    progress.abandoned +=
        pending.len() + ready.len() + lines.values().map(VecDeque::len).sum::<usize>();
    tick(progress);
}

fn count(p: &mut Progress, done: &Done) {
    match done {
        Done::Stored(_) => p.stored += 1,
        Done::Failed(code) => *p.failed.entry(code).or_default() += 1,
        Done::StoreError(_) => p.store_errors += 1,
        Done::Abandoned => p.abandoned += 1,
    }
}

/// Resolves and checks one target (policy, DNS, every address), storing a failure.
async fn resolve_task(
    st: Arc<AppState>,
    seed: Seed,
    opts: Arc<CrawlOptions>,
    round: Arc<str>,
) -> Step {
    let t = &seed.target;
    let resolving =
        tokio::time::timeout(opts.connect_timeout, session::resolve(&st, &t.host, t.port));
    let got = tokio::select! {
        r = resolving => r,
        () = st.shutdown.cancelled() => return Step::Resolved(Err((seed, Done::Abandoned))),
    };
    let failure = match got {
        Ok(Ok((host, addrs))) => match addrs.first().copied() {
            Some(ip) => {
                return Step::Resolved(Ok(Resolved {
                    seed,
                    host,
                    addrs,
                    ip,
                }))
            }
            None => Failure::new("dns_failure", format!("`{}` has no address", t.host)),
        },
        Ok(Err(f)) => Failure::new(f.code, f.message),
        Err(_) => Failure::new(
            "timeout",
            format!(
                "no DNS answer within {} s",
                opts.connect_timeout.as_secs_f64()
            ),
        ),
    };
    let done = store_failure(&st.db, &seed, &failure, &round).await;
    Step::Resolved(Err((seed, done)))
}

/// Whether a failure may pass on a later try: a timeout, a refused connection, or another
/// network error (unreachable host or network). DNS, policy, TLS and the server's own
/// behaviour are final.
fn retryable(f: &Failure) -> bool {
    matches!(f.code, "timeout" | "connection_refused" | "network_error")
}

/// Scans one resolved target (retrying what may pass) and stores the outcome.
async fn scan_task(
    st: Arc<AppState>,
    r: Resolved,
    opts: Arc<CrawlOptions>,
    pacer: Arc<Pacer>,
    round: Arc<str>,
    ip: IpAddr,
) -> Step {
    let mut backoff = opts.retry_backoff;
    let mut tries = 0;
    let outcome = loop {
        let slot = pacer.slot();
        tokio::select! {
            () = sleep_until(slot) => {}
            () = st.shutdown.cancelled() => return Step::Scanned(ip, Done::Abandoned),
        }
        let got = scan_once(&st, &r, &opts).await;
        match got {
            Err(f) if f.code == "shutdown" => return Step::Scanned(ip, Done::Abandoned),
            Err(f) if retryable(&f) && tries < opts.retries => {
                tries += 1;
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = st.shutdown.cancelled() => return Step::Scanned(ip, Done::Abandoned),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => break other,
        }
    };
    if st.shutdown.is_cancelled() {
        return Step::Scanned(ip, Done::Abandoned);
    }
    let done = match outcome {
        Ok((recorded, detail)) => store_scan(&st.db, &r.seed, recorded, detail, &round).await,
        Err(f) => store_failure(&st.db, &r.seed, &f, &round).await,
    };
    Step::Scanned(ip, done)
}

/// One try: connect (TLS verified first, then unverified when verification fails), scan and
/// record. Returns the recorded scan and the detail sentence of its history point.
async fn scan_once(
    st: &AppState,
    r: &Resolved,
    opts: &CrawlOptions,
) -> Result<(livescan::Recorded, String), Failure> {
    let t = &r.seed.target;
    let connect = |tls: Option<bool>| async move {
        let connecting =
            session::connect_to(st, r.host.clone(), &r.addrs, t.port, tls, CRAWLER, false);
        let got = tokio::select! {
            got = tokio::time::timeout(opts.connect_timeout, connecting) => got,
            () = st.shutdown.cancelled() => return Err(Failure::new("shutdown", "the crawl is stopping")),
        };
        match got {
            Ok(Ok((_, up))) => Ok(up),
            Ok(Err(f)) => Err(Failure::new(f.code, f.message)),
            Err(_) => Err(Failure::new(
                "timeout",
                format!(
                    "no connection within {} s",
                    opts.connect_timeout.as_secs_f64()
                ),
            )),
        }
    };
    let (up, tls_word, detail) = if t.tls {
        match connect(Some(false)).await {
            Ok(up) => (up, "1", "TLS, certificate verified".to_owned()),
            Err(f) if f.code == "tls_failure" => {
                let up = connect(Some(true)).await?;
                (
                    up,
                    "insecure",
                    format!("TLS, certificate not verified ({})", f.message),
                )
            }
            Err(f) => return Err(f),
        }
    } else {
        (connect(None).await?, "0", String::new())
    };
    let save_config = SaveConfig {
        encoding: r.seed.encoding.clone(),
        ..SaveConfig::default()
    };
    let recorded = livescan::record_connected(st, &r.host, up, tls_word, &save_config).await?;
    // A server that closed before sending a single byte gave nothing to fingerprint. One
    // that stayed connected and silent is a scan (telnetlib3-fingerprint records it too).
    let said_something = recorded
        .transcript
        .entries
        .iter()
        .any(|e| matches!(e, Entry::Recv(_, b) if !b.is_empty()));
    if !said_something && recorded.server_closed {
        return Err(Failure::new(
            "closed_early",
            "the server closed the connection before sending anything",
        ));
    }
    Ok((recorded, detail))
}

/// The history point of `seed` in round `round`.
fn point(
    seed: &Seed,
    outcome: &str,
    detail: String,
    scan_id: Option<String>,
    round: &str,
) -> HistoryPoint {
    HistoryPoint {
        host: seed.target.host.clone(),
        port: seed.target.port,
        tls: seed.target.tls,
        at: crate::relay::store::unix_micros().div_euclid(1_000_000),
        outcome: outcome.to_owned(),
        detail,
        scan_id,
        crawl: Some(round.to_owned()),
    }
}

/// Replays and stores a recorded scan as a save does, with its history point, in one
/// transaction.
async fn store_scan(
    db: &Arc<Db>,
    seed: &Seed,
    recorded: livescan::Recorded,
    detail: String,
    round: &str,
) -> Done {
    let label = format!(
        "crawl:{}",
        crate::relay::policy::host_port(&seed.target.host, seed.target.port)
    );
    let seed = seed.clone();
    let round = round.to_owned();
    let db = Arc::clone(db);
    let stored = tokio::task::spawn_blocking(move || {
        let (row, saved) = save::replay_row(
            &recorded.transcript,
            recorded.prepared,
            recorded.closed_at,
            &label,
        );
        let p = point(&seed, OUTCOME_OK, detail, Some(saved.id.clone()), &round);
        db.insert_with_history(&row, &p)
            .map(|_| saved.id)
            .map_err(|e| e.to_string())
    })
    .await;
    match stored {
        Ok(Ok(id)) => Done::Stored(id),
        Ok(Err(e)) => {
            tracing::error!("crawl store: {e}");
            Done::StoreError(e)
        }
        Err(e) => {
            tracing::error!("crawl replay: {e}");
            Done::StoreError(e.to_string())
        }
    }
}

/// Stores a failure as a history point (no scan).
async fn store_failure(db: &Arc<Db>, seed: &Seed, f: &Failure, round: &str) -> Done {
    let p = point(seed, f.code, f.message.clone(), None, round);
    let code = f.code;
    let db = Arc::clone(db);
    match tokio::task::spawn_blocking(move || db.add_history(&p)).await {
        Ok(Ok(_)) => Done::Failed(code),
        Ok(Err(e)) => {
            tracing::error!("crawl store: {e}");
            Done::StoreError(e.to_string())
        }
        Err(e) => Done::StoreError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line() {
        let mut p = Progress {
            total: 100,
            resumed: 10,
            stored: 20,
            ..Progress::default()
        };
        p.failed.insert("timeout", 10);
        assert_eq!(
            p.line(Duration::from_secs(60)),
            "crawl 40/100 done, 30/min, ETA 2m00s, 10 failed"
        );
        assert_eq!(
            Progress::default().line(Duration::ZERO),
            "crawl 0/0 done, 0/min, done, 0 failed"
        );
        assert_eq!(clock(3725), "1h02m");
    }

    #[tokio::test(start_paused = true)]
    async fn connects_are_paced() {
        let p = Pacer::new(4.0);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..4).map(|_| p.slot() - t0).collect();
        assert_eq!(
            slots,
            [0, 250, 500, 750].map(Duration::from_millis).to_vec()
        );
    }
}
