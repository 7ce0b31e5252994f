//! `iacscope crawl`: scans every server of one or more seed lists into the store, many at
//! once, as the live embed scans one (SSRF policy, relay `connect`, the save path), and
//! keeps each server's history (a point per finished target: its scan, or why it failed).
//!
//! `seed` reads the seed sources (pure parsing); `run` schedules and stores the scans.
//! This file is the thin edge: flags, the runtime, Ctrl-C, the crawl round in the store
//! (so a rerun of the same command resumes) and the progress line.
//!
//! A crawl is named by its command (the seed sources' canonical paths, `--format`,
//! `--from-store`; see [`crawl_id`]). Its current round's history points are its done marks
//! (per host, port and TLS), so rerunning the command scans only what is not done, servers
//! added to a list since included; `--restart` starts the next round of the same crawl
//! (earlier rounds' points stay as history).

pub mod run;
pub mod schedule;
pub mod seed;

use crate::directory::db::{CrawlTarget, Db};
use crate::escape::printable;
use crate::serve::{AppState, Config};
use run::{CrawlOptions, Progress};
use seed::{Format, Seed, Seeds, MAX_SEEDS};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most tasks at once (`--concurrency`): each holds a socket and a scan's buffers.
pub const MAX_CONCURRENCY: usize = 4096;
/// Highest `--connect-rate` (connections per second).
pub const MAX_CONNECT_RATE: f64 = 10_000.0;
/// Most `--retries`.
pub const MAX_RETRIES: u32 = 10;
/// Shortest `--lease-secs` (leases are renewed every third of it).
pub const MIN_LEASE_SECS: u64 = 2;
/// Longest `--lease-secs` (a day).
pub const MAX_LEASE_SECS: u64 = 86_400;
/// How often the progress line is printed when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Exit status of a crawl stopped by Ctrl-C or SIGTERM (rerun to resume).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `iacscope crawl`.
#[derive(Debug, clap::Args)]
pub struct CrawlArgs {
    /// Seed sources: plain lists (`host port [keyword…]`), Telix `directory.json`, LociTerm
    /// `telnetsupport.json` files, or telnetlib3 data directories (format detected).
    pub seeds: Vec<PathBuf>,
    /// Read every seed file in this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also crawl every server the store already has scans of.
    #[arg(long)]
    pub from_store: bool,
    /// Scans (and name lookups) in flight at once. A scan spends its 5–20 s waiting on
    /// telnetlib3's windows, so the rate is about concurrency / 10 s: 1,000 gives ~100
    /// servers a second in about 70 MiB (`cargo xtask bench-crawl`).
    #[arg(long, default_value_t = 1000)]
    pub concurrency: usize,
    /// New connections per second, all servers together (each address still gets one scan
    /// at a time). 300 fills the default 1,000 slots in ~3 s.
    #[arg(long, default_value_t = 300.0)]
    pub connect_rate: f64,
    /// DNS + TCP connect + TLS handshake time limit, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Extra tries of a server whose connect timed out, was refused or hit a network error.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Seconds before the first retry (doubled for each further one).
    #[arg(long, default_value_t = 5.0)]
    pub retry_backoff: f64,
    /// Scan at most this many servers in this run, then stop (rerun to go on).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Start the crawl over (a new round) instead of resuming it. With several workers on
    /// one PostgreSQL store, pass it to one of them only (each would start a round).
    #[arg(long)]
    pub restart: bool,
    /// PostgreSQL store: seconds a worker's lease on a target lasts unless renewed (renewed
    /// every third of it while the worker runs), so a killed worker's targets are scanned by
    /// the others this long after it died.
    #[arg(long, default_value_t = 120)]
    pub lease_secs: u64,
    /// Allow loopback and private targets (tests and private networks only).
    #[arg(long, env = "IACSCOPE_ALLOW_PRIVATE")]
    pub allow_private: bool,
    /// PEM file of extra trust anchors for `ssl` servers.
    #[arg(long, env = "IACSCOPE_TLS_ROOTS")]
    pub tls_roots: Option<PathBuf>,
    #[command(flatten)]
    pub store: crate::transfer::StoreArgs,
}

impl CrawlArgs {
    /// The crawl options, or what is wrong with a flag.
    pub fn options(&self) -> Result<CrawlOptions, String> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(format!("--concurrency must be 1 to {MAX_CONCURRENCY}"));
        }
        if !(self.connect_rate > 0.0 && self.connect_rate <= MAX_CONNECT_RATE) {
            return Err(format!(
                "--connect-rate must be above 0 and at most {MAX_CONNECT_RATE}"
            ));
        }
        if !(0.1..=600.0).contains(&self.connect_timeout) {
            return Err("--connect-timeout must be 0.1 to 600 seconds".into());
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("--retries must be at most {MAX_RETRIES}"));
        }
        if !(0.0..=run::MAX_BACKOFF.as_secs_f64()).contains(&self.retry_backoff) {
            return Err(format!(
                "--retry-backoff must be 0 to {} seconds",
                run::MAX_BACKOFF.as_secs()
            ));
        }
        if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&self.lease_secs) {
            return Err(format!(
                "--lease-secs must be {MIN_LEASE_SECS} to {MAX_LEASE_SECS}"
            ));
        }
        if self.seeds.is_empty() && !self.from_store {
            return Err("name a seed file or directory, or pass --from-store".into());
        }
        Ok(CrawlOptions {
            concurrency: self.concurrency,
            connect_rate: self.connect_rate,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            retries: self.retries,
            retry_backoff: Duration::from_secs_f64(self.retry_backoff),
        })
    }

    /// The server configuration the crawl's scans run under: the `/ws` policy (private
    /// targets only with `--allow-private`), the store, and session limits that fit the
    /// concurrency.
    pub fn config(&self) -> Config {
        Config {
            allow_private: self.allow_private,
            tls_roots: self.tls_roots.clone(),
            data_dir: self.store.data_dir.clone(),
            database_url: self.store.database_url.clone(),
            // No web app is served; nothing is read from here.
            static_dir: PathBuf::from("/nonexistent/iacscope-crawl"),
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            max_sessions: self.concurrency,
            max_sessions_per_ip: self.concurrency,
            ..Config::default()
        }
    }
}

/// The crawl's name: the sha256 (32 hex) of what the command crawls — the `--format`, each
/// seed source's canonical path in order, `--from-store` — so the same command names the
/// same crawl from any directory, and a seed file that grew between runs resumes with
/// only its new servers to scan.
pub fn crawl_id(args: &CrawlArgs) -> String {
    let mut h = Sha256::new();
    h.update(b"iacscope crawl 1\n");
    h.update(format!("format {:?}\n", args.format).as_bytes());
    for p in &args.seeds {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        h.update(b"seed ");
        h.update(p.as_os_str().as_encoded_bytes());
        h.update(b"\n");
    }
    if args.from_store {
        h.update(b"from-store\n");
    }
    iacscope_shared::mud::hex(&h.finalize())[..32].to_owned()
}

/// This worker's name in a shared round's queue: host name, process id and a nonce (a
/// restarted worker with a reused pid is another worker).
pub(crate) fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host.trim().chars().take(64).collect();
    let nonce = crate::relay::store::unix_micros() % 1_000_000;
    format!("{host}:{}:{nonce:06}", std::process::id())
}

/// Reads every seed source (and the store's servers with `--from-store`).
pub fn read_seeds(args: &CrawlArgs, db: &Db) -> Result<Seeds, String> {
    let mut seeds = Seeds::default();
    for path in &args.seeds {
        let format = seed::read_source(path, args.format, &mut seeds)?;
        tracing::debug!(path = %path.display(), %format, "seed source read");
        if seeds.capped {
            break;
        }
    }
    if args.from_store && !seeds.capped {
        let known = db
            .known_servers(MAX_SEEDS as i64 + 1)
            .map_err(|e| format!("reading the store's servers: {e}"))?;
        for t in known {
            if !seeds.add("store", &t.host, t.port, t.tls, None) {
                break;
            }
        }
    }
    Ok(seeds)
}

/// Runs `iacscope crawl`.
pub fn main(args: CrawlArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("iacscope crawl: {e}");
            return ExitCode::from(2);
        }
    };
    // Every scan holds a socket: take what the hard limit allows.
    let _ = crate::serve::conn::raise_fd_limit();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iacscope crawl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crawl_main(args, opts)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iacscope crawl: {}", printable(&e));
            ExitCode::FAILURE
        }
    }
}

async fn crawl_main(args: CrawlArgs, opts: CrawlOptions) -> Result<ExitCode, String> {
    let st = AppState::new(args.config())?;
    let db = Arc::clone(&st.db);
    let seeds = {
        let db = Arc::clone(&db);
        tokio::task::spawn_blocking(move || read_seeds(&args, &db).map(|s| (s, args)))
            .await
            .map_err(|e| e.to_string())??
    };
    let (seeds, args) = seeds;
    for w in &seeds.warnings {
        eprintln!("iacscope crawl: {w}");
    }
    if seeds.warnings_left_out > 0 {
        eprintln!(
            "iacscope crawl: … and {} more warnings",
            seeds.warnings_left_out
        );
    }
    let (duplicates, skipped) = (seeds.duplicates, seeds.skipped);
    let all = seeds.into_seeds();
    if all.is_empty() {
        eprintln!("iacscope crawl: no servers to crawl ({skipped} skipped)");
        return Ok(ExitCode::FAILURE);
    }
    let id = crawl_id(&args);
    let total = all.len();
    let now = crate::relay::store::unix_micros().div_euclid(1_000_000);
    let restart = args.restart;
    let (round, done) = {
        let id = id.clone();
        crate::directory::db::off_thread(&db, move |db| {
            let round = db.crawl_round(&id, total as i64, now, restart)?;
            let done = db.crawl_done(&format!("{id}/{round}"), MAX_SEEDS as i64 + 1)?;
            Ok((round, done))
        })
        .await?
    };
    let round_key = format!("{id}/{round}");
    let (source, total, resumed, now_todo) = if db.shares_crawls() {
        // Several workers may run this round: its targets go to the shared queue (a target
        // another worker queued already stays as it is), and are leased from there.
        let queue: Vec<(CrawlTarget, Option<String>)> =
            all.into_iter().map(|s| (s.target, s.encoding)).collect();
        let key = round_key.clone();
        let (queued, left) = crate::directory::db::off_thread(&db, move |db| {
            db.crawl_enqueue(&key, &queue)?;
            db.crawl_left(&key)
        })
        .await?;
        let (queued, left) = (
            usize::try_from(queued).unwrap_or(0),
            usize::try_from(left).unwrap_or(0),
        );
        let leases = run::Leases {
            worker: worker_name(),
            lease: Duration::from_secs(args.lease_secs),
            limit: args.limit,
        };
        eprintln!(
            "iacscope crawl: worker {} shares the round through the store ({} s leases)",
            printable(&leases.worker),
            args.lease_secs
        );
        let todo = args.limit.map_or(left, |l| l.min(left));
        (run::Source::Shared(leases), queued, queued - left, todo)
    } else {
        let done: HashSet<CrawlTarget> = done.into_iter().collect();
        let mut todo: Vec<Seed> = all
            .into_iter()
            .filter(|s| !done.contains(&s.target))
            .collect();
        let resumed = total - todo.len();
        if let Some(n) = args.limit {
            todo.truncate(n);
        }
        let n = todo.len();
        (run::Source::Local(todo), total, resumed, n)
    };
    eprintln!(
        "iacscope crawl: crawl {id} round {round}: {total} servers ({duplicates} duplicates \
         and {skipped} unreadable entries left out), {resumed} already done, {now_todo} to \
         scan now"
    );
    let mut progress = Progress {
        total,
        resumed,
        ..Progress::default()
    };
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_log = Instant::now();
    let stop = st.shutdown.clone();
    let signal = tokio::spawn(async move {
        crate::serve::shutdown_signal().await;
        stop.cancel();
    });
    run::crawl(
        Arc::clone(&st),
        round_key,
        source,
        opts,
        &mut progress,
        |p| {
            let line = p.line(started.elapsed());
            if tty {
                eprint!("\r\x1b[K{line}");
                let _ = std::io::stderr().flush();
            } else if last_log.elapsed() >= LOG_EVERY {
                last_log = Instant::now();
                eprintln!("{line}");
            }
        },
    )
    .await;
    signal.abort();
    let interrupted = st.shutdown.is_cancelled();
    if tty {
        eprintln!();
    }
    if progress.done() >= progress.total {
        let id2 = id.clone();
        let finished = crate::relay::store::unix_micros().div_euclid(1_000_000);
        crate::directory::db::off_thread(&db, move |db| db.crawl_finish(&id2, finished)).await?;
    }
    let failures: Vec<String> = progress
        .failed
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    eprintln!(
        "{} in {:.1} s: {} stored, {} failed{}{}{}{}{}",
        progress.line(started.elapsed()),
        started.elapsed().as_secs_f64(),
        progress.stored,
        progress.failures(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", failures.join(", "))
        },
        match progress.reclaimed {
            0 => String::new(),
            1 => ", 1 taken over from an expired lease".to_owned(),
            n => format!(", {n} taken over from expired leases"),
        },
        if progress.store_errors > 0 {
            format!(
                ", {} not stored (store errors; rerun to retry them)",
                progress.store_errors
            )
        } else {
            String::new()
        },
        if interrupted {
            format!(
                "; interrupted with {} left: rerun the same command to resume",
                progress.total.saturating_sub(progress.done())
            )
        } else {
            String::new()
        },
        match &progress.gave_up {
            Some(why) => format!("; stopped early: {why}; rerun the same command to resume"),
            None => String::new(),
        },
    );
    Ok(if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if progress.store_errors > 0 || progress.gave_up.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
