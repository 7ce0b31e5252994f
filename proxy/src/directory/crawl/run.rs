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

/// Most targets one claim leases (a shared round takes work a batch at a time).
pub const CLAIM_BATCH: usize = 256;

/// Where a crawl's targets come from.
#[derive(Debug)]
pub enum Source {
    /// This process's list (a SQLite store: one machine).
    Local(Vec<Seed>),
    /// The round's queue in a PostgreSQL store, shared with other workers: targets are
    /// leased a batch at a time as tasks free up.
    Shared(Leases),
}

/// How a worker takes part in a shared round.
#[derive(Clone, Debug)]
pub struct Leases {
    /// This worker's name in the queue (`host:pid:nonce`).
    pub worker: String,
    /// How long a lease lasts without renewal; a worker renews its leases every third of it,
    /// so a killed worker's targets go back to the queue at most this long after it died.
    pub lease: Duration,
    /// Most targets this worker takes (`--limit`).
    pub limit: Option<usize>,
}

/// A worker's state in a shared round.
struct Shared {
    leases: Leases,
    /// Targets claimed so far.
    taken: usize,
    /// No claim before this (after an empty one, wait a poll interval).
    next_claim: Instant,
    /// When this worker's leases are renewed next.
    next_renew: Instant,
    /// Queue calls (claim, renew, count) the store refused in a row, and the last error.
    failures: (u32, String),
}

impl Shared {
    /// How often an idle worker asks the queue again: a quarter lease, at most 1 s; after
    /// store errors, twice as long for each one in a row, at most [`MAX_QUEUE_BACKOFF`].
    fn poll(&self) -> Duration {
        let poll =
            (self.leases.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        poll.saturating_mul(1 << self.failures.0.min(16))
            .min(MAX_QUEUE_BACKOFF.max(poll))
    }

    /// Targets this worker may still take: none after [`MAX_QUEUE_FAILURES`] store errors
    /// in a row (it finishes what it holds and stops).
    fn budget(&self) -> usize {
        if self.gave_up() {
            return 0;
        }
        self.leases
            .limit
            .map_or(usize::MAX, |l| l.saturating_sub(self.taken))
    }

    fn gave_up(&self) -> bool {
        self.failures.0 >= MAX_QUEUE_FAILURES
    }

    /// Notes how a queue call went.
    fn note<T>(&mut self, r: &Result<T, String>) {
        match r {
            Ok(_) => self.failures = (0, String::new()),
            Err(e) => self.failures = (self.failures.0.saturating_add(1), e.clone()),
        }
    }
}

/// Store errors in a row on the shared queue after which a worker stops taking targets
/// (it finishes the ones it holds, gives its leases back, and says why it stopped).
pub const MAX_QUEUE_FAILURES: u32 = 8;
/// Longest wait between two queue calls after store errors.
pub const MAX_QUEUE_BACKOFF: Duration = Duration::from_secs(30);

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
    /// Targets this worker claimed after another worker's lease on them expired.
    pub reclaimed: usize,
    /// Why this worker stopped taking targets from the shared queue before the round was
    /// over (the store failed [`MAX_QUEUE_FAILURES`] times in a row), if it did.
    pub gave_up: Option<String>,
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
///
/// With [`Source::Shared`], targets are leased from the round's queue as tasks free up, the
/// worker's leases are renewed every third of a lease, and the crawl returns when the round
/// has a point for every target (waiting for other workers' leases to end or expire), when
/// `--limit` targets were taken, or at shutdown.
pub async fn crawl(
    st: Arc<AppState>,
    round_key: String,
    source: Source,
    opts: CrawlOptions,
    progress: &mut Progress,
    mut tick: impl FnMut(&Progress),
) {
    let pacer = Arc::new(Pacer::new(opts.connect_rate));
    let opts = Arc::new(opts);
    let round_key: Arc<str> = round_key.into();
    let (mut pending, mut shared): (VecDeque<Seed>, Option<Shared>) = match source {
        Source::Local(seeds) => (seeds.into(), None),
        Source::Shared(leases) => {
            let now = Instant::now();
            let next_renew = now + leases.lease / 3;
            (
                VecDeque::new(),
                Some(Shared {
                    leases,
                    taken: 0,
                    next_claim: now,
                    next_renew,
                    failures: (0, String::new()),
                }),
            )
        }
    };
    let mut ready: VecDeque<Resolved> = VecDeque::new();
    let mut busy: HashSet<IpAddr> = HashSet::new();
    let mut lines: HashMap<IpAddr, VecDeque<Resolved>> = HashMap::new();
    let mut tasks: JoinSet<Step> = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(sh) = shared.as_mut() {
            let free = opts.concurrency.saturating_sub(tasks.len());
            if !st.shutdown.is_cancelled()
                && pending.is_empty()
                && ready.is_empty()
                && free > 0
                && sh.budget() > 0
                && Instant::now() >= sh.next_claim
            {
                let n = free.min(CLAIM_BATCH).min(sh.budget());
                claim(&st, &round_key, sh, n, &mut pending, progress).await;
            }
        }
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
            let Some(sh) = shared.as_mut() else { break };
            if st.shutdown.is_cancelled() || sh.budget() == 0 {
                if sh.gave_up() {
                    progress.gave_up = Some(format!(
                        "the store refused the shared queue {} times in a row (last: {})",
                        sh.failures.0, sh.failures.1
                    ));
                    tracing::error!(
                        "crawl: stopping: {}",
                        progress.gave_up.as_deref().unwrap_or("")
                    );
                }
                break;
            }
            // Nothing running and nothing to claim: the round is over, or other workers
            // hold its last targets (until they finish them or their leases expire).
            match queue_left(&st, &round_key, sh, progress).await {
                Some(0) => break,
                _ => {
                    renew(&st, &round_key, sh).await;
                    let wait = sh.next_claim.max(Instant::now() + sh.poll());
                    tokio::select! {
                        () = sleep_until(wait) => {}
                        () = st.shutdown.cancelled() => {}
                    }
                    sh.next_claim = Instant::now();
                    tick(progress);
                    continue;
                }
            }
        }
        let step = tokio::select! {
            joined = tasks.join_next() => joined,
            _ = ticker.tick() => {
                if let Some(sh) = shared.as_mut() {
                    if Instant::now() >= sh.next_renew {
                        renew(&st, &round_key, sh).await;
                        queue_left(&st, &round_key, sh, progress).await;
                    }
                }
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
    if let Some(sh) = &shared {
        // What this worker leased and did not finish goes back to the queue now, not when
        // its leases expire.
        let (r, w) = (round_key.to_string(), sh.leases.worker.clone());
        if let Err(e) =
            crate::directory::db::off_thread(&st.db, move |db| db.crawl_release(&r, &w)).await
        {
            tracing::error!("crawl: giving back leases: {e}");
        }
    }
    tick(progress);
}

/// Leases at most `n` targets of the shared round into `pending`.
async fn claim(
    st: &Arc<AppState>,
    round: &str,
    sh: &mut Shared,
    n: usize,
    pending: &mut VecDeque<Seed>,
    progress: &mut Progress,
) {
    let (r, w) = (round.to_owned(), sh.leases.worker.clone());
    let secs = sh.leases.lease.as_secs().max(1) as i64;
    let got =
        crate::directory::db::off_thread(&st.db, move |db| db.crawl_claim(&r, &w, n as i64, secs))
            .await;
    sh.note(&got);
    match got {
        Ok(claimed) if claimed.is_empty() => sh.next_claim = Instant::now() + sh.poll(),
        Ok(claimed) => {
            sh.taken += claimed.len();
            for c in claimed {
                if let Some(before) = &c.expired_lease_of {
                    progress.reclaimed += 1;
                    tracing::info!(
                        "crawl: {}:{} taken over from {before:?}, whose lease expired",
                        c.target.host,
                        c.target.port
                    );
                }
                pending.push_back(Seed {
                    target: c.target,
                    encoding: c.encoding,
                });
            }
        }
        Err(e) => {
            tracing::error!("crawl: leasing targets: {e}");
            sh.next_claim = Instant::now() + sh.poll();
        }
    }
}

/// Renews this worker's leases.
async fn renew(st: &Arc<AppState>, round: &str, sh: &mut Shared) {
    let (r, w) = (round.to_owned(), sh.leases.worker.clone());
    let secs = sh.leases.lease.as_secs().max(1) as i64;
    sh.next_renew = Instant::now() + sh.leases.lease / 3;
    let got =
        crate::directory::db::off_thread(&st.db, move |db| db.crawl_renew(&r, &w, secs)).await;
    sh.note(&got);
    if let Err(e) = got {
        tracing::error!("crawl: renewing leases: {e}");
    }
}

/// Targets of the shared round not done yet (`None` when the store did not answer); brings
/// `progress` up to date with what every worker has done.
async fn queue_left(
    st: &Arc<AppState>,
    round: &str,
    sh: &mut Shared,
    progress: &mut Progress,
) -> Option<i64> {
    let r = round.to_owned();
    let got = crate::directory::db::off_thread(&st.db, move |db| db.crawl_left(&r)).await;
    sh.note(&got);
    match got {
        Ok((total, left)) => {
            progress.total = usize::try_from(total).unwrap_or(0);
            let done = usize::try_from(total - left).unwrap_or(0);
            progress.resumed = done.saturating_sub(progress.this_run());
            Some(left)
        }
        Err(e) => {
            tracing::error!("crawl: reading the queue: {e}");
            None
        }
    }
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

/// The history point of `seed` in round `round`, at `at` (Unix seconds).
fn point(
    seed: &Seed,
    at: i64,
    outcome: &str,
    detail: String,
    scan_id: Option<String>,
    round: &str,
) -> HistoryPoint {
    HistoryPoint {
        host: seed.target.host.clone(),
        port: seed.target.port,
        tls: seed.target.tls,
        at,
        outcome: outcome.to_owned(),
        detail,
        scan_id,
        crawl: Some(round.to_owned()),
    }
}

/// Replays and stores a recorded scan as a save does, with its history point (at the scan's
/// end, as its record's `connected`), in one transaction.
pub(crate) async fn store_scan(
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
        let at = recorded.closed_at.div_euclid(1_000_000);
        let p = point(
            &seed,
            at,
            OUTCOME_OK,
            detail,
            Some(saved.id.clone()),
            &round,
        );
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
    let now = crate::relay::store::unix_micros().div_euclid(1_000_000);
    let p = point(seed, now, f.code, f.message.clone(), None, round);
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

    /// A worker whose store keeps refusing the shared queue backs off (doubling, at most
    /// [`MAX_QUEUE_BACKOFF`]) and stops after [`MAX_QUEUE_FAILURES`] errors in a row,
    /// saying why, instead of polling for ever. (A SQLite store refuses every queue call.)
    #[tokio::test(start_paused = true)]
    async fn a_failing_store_stops_a_shared_worker() {
        let dir = std::env::temp_dir().join(format!("iacscope-run-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let st = AppState::new(crate::serve::Config {
            data_dir: dir.clone(),
            static_dir: "/nonexistent/iacscope-test-dist".into(),
            ..crate::serve::Config::default()
        })
        .expect("state");
        assert!(!st.db.shares_crawls());
        let leases = Leases {
            worker: "test".into(),
            lease: Duration::from_secs(120),
            limit: None,
        };
        let opts = CrawlOptions {
            concurrency: 4,
            connect_rate: 10.0,
            connect_timeout: Duration::from_secs(5),
            retries: 0,
            retry_backoff: Duration::from_secs(1),
        };
        let mut progress = Progress::default();
        let started = Instant::now();
        let run = crawl(
            Arc::clone(&st),
            "r/1".into(),
            Source::Shared(leases),
            opts,
            &mut progress,
            |_| {},
        );
        tokio::time::timeout(Duration::from_secs(3600), run)
            .await
            .expect("the worker stops");
        let why = progress.gave_up.clone().expect("stopped early");
        assert!(
            why.contains("times in a row") && why.contains("PostgreSQL"),
            "{why}"
        );
        // 1 s polls doubling per error: 8 s, then 30 s (the cap) twice.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(60) && waited <= Duration::from_secs(120),
            "{waited:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
