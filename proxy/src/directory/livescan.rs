//! Server-side scans for the live embed (`/embed?host=&port=`) and the badge: one scan per
//! target at a time, admitted like a `/ws` session (SSRF policy, global, per-client and
//! per-target limits: [`crate::relay::session::connect`] and [`crate::relay::limits`]), started from a fair
//! queue (each client runs at most [`MAX_SCANS_PER_CLIENT`] at once, waiting work is taken
//! round-robin across clients, so a client asking for many only delays its own), run by the engine
//! natively while the proxy records a relay transcript of its own bytes, then stored through
//! the browser's save path ([`super::save::prepare`] and [`super::save::replay_and_insert`]),
//! so the row is exactly what a browser save of the same bytes gives. Failures are remembered
//! for [`FAILURE_TTL`] (a refreshing iframe shows them instead of rescanning) and not stored.

use super::save::{self, SaveRefusal};
use crate::relay::limits::{client_key, Admission, Limit};
use crate::relay::session::{self as relay, Stream, WsParams};
use crate::relay::sniff::{self, Sniff};
use crate::serve::AppState;
use iacscope_shared::config::ScanConfig;
use iacscope_shared::relay::SaveConfig;
use iacscope_shared::scan::Scanner;
use iacscope_shared::time::Timestamp;
use iacscope_shared::transcript::{Entry, Transcript};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

/// Server-side scans running at once (on top of the session limits they also count in).
pub const MAX_INFLIGHT_SCANS: usize = 16;

/// Server-side scans one client key ([`client_key`]) runs at once: a quarter of all, so at
/// least four clients always get theirs running, however many one of them asks for.
pub const MAX_SCANS_PER_CLIENT: usize = MAX_INFLIGHT_SCANS / 4;

/// Server-side scans one client key may have waiting (a wiki page of badges); beyond this
/// its requests are refused.
pub const MAX_QUEUED_PER_CLIENT: usize = 16;

/// Server-side scans waiting in all (many clients' queues), so the queues stay small.
pub const MAX_QUEUED: usize = 256;

/// Outcomes remembered (targets); the oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 4096;

/// How long a failed scan is shown instead of scanning again.
pub const FAILURE_TTL: Duration = Duration::from_secs(120);

/// Longest a server-side scan may run (the engine's phases add up to well under a minute).
pub const MAX_LIVE_SCAN: Duration = Duration::from_secs(90);

/// Most of the server's first bytes kept for `sniff` (longer than any signature).
const SNIFF_HEAD: usize = 16;

/// Bytes read from the server at a time.
const READ_CHUNK: usize = 16 * 1024;

/// One scan target, as the policy normalised it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Target {
    /// Host (normalised by the policy: lower-case name or canonical address).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS (verified) instead of plain TCP.
    pub tls: bool,
}

impl Target {
    /// `host:port` (IPv6 addresses in brackets).
    pub fn display(&self) -> String {
        crate::relay::policy::host_port(&self.host, self.port)
    }
}

/// Why a server-side scan did not give a stored result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error code (`refused_by_policy`, `dns_failure`, `connection_refused`,
    /// `timeout`, `limit_reached`, …).
    pub code: &'static str,
    /// The detail sentence.
    pub message: String,
    /// Unix seconds when it happened.
    pub at: i64,
}

impl Failure {
    /// A failure now.
    pub fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            at: crate::relay::store::unix_micros().div_euclid(1_000_000),
        }
    }

    /// Whether the server itself could not be reached (as opposed to a refusal by this
    /// proxy's policy or limits).
    pub fn unreachable(&self) -> bool {
        !matches!(
            self.code,
            "refused_by_policy"
                | "bad_host"
                | "bad_port"
                | "limit_reached"
                | "shutdown"
                | "not_telnet"
        )
    }

    /// A sentence for the widget.
    pub fn sentence(&self) -> String {
        let lead = match self.code {
            "refused_by_policy" | "bad_host" | "bad_port" => "Refused by policy",
            "dns_failure" => "DNS failure",
            "connection_refused" => "Connection refused",
            "timeout" => "Timed out",
            "limit_reached" => "Limit reached",
            "tls_failure" => "TLS failure",
            "shutdown" => "The proxy is shutting down",
            "network_error" => "Network error",
            "not_telnet" => "Not a telnet server",
            _ => "The scan failed",
        };
        format!("{lead}: {}.", self.message.trim_end_matches('.'))
    }
}

/// What is known about a target right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// A scan of it is running.
    Running,
    /// A scan of it waits for a slot, with this many scans to start before it.
    Queued(usize),
    /// A scan finished lately and was stored under this id.
    Stored(String),
    /// A scan failed lately.
    Failed(Failure),
    /// Nothing recent.
    Nothing,
}

#[derive(Debug, Default)]
struct Inner {
    running: HashSet<Target>,
    /// Running scans per client key.
    per_client: HashMap<IpAddr, usize>,
    /// Waiting scans per client key, first come first served.
    queues: HashMap<IpAddr, VecDeque<Job>>,
    /// Client keys with waiting scans, in the order they are next served (round-robin).
    ring: VecDeque<IpAddr>,
    /// Waiting targets and whose queue they are in.
    queued: HashMap<Target, IpAddr>,
    recent: HashMap<Target, (Instant, Result<String, Failure>)>,
}

/// A waiting scan: its target and the client address that asked (its token is spent).
#[derive(Debug)]
struct Job {
    target: Target,
    client: IpAddr,
}

/// A scan that may start now, admitted.
type Ready = (IpAddr, Target, Admission);

impl Inner {
    /// The waiting line is full: the client with the longest queue, if it is longer than
    /// `key`'s would be with one more, loses its newest waiting scan (not remembered: its
    /// widget asks again), so that many clients each queueing their share cannot shut out
    /// one that has queued nothing. Returns whether room was made.
    fn make_room_for(&mut self, key: IpAddr) -> bool {
        let mine = self.queues.get(&key).map_or(0, VecDeque::len);
        let longest = self
            .queues
            .iter()
            .filter(|(k, q)| **k != key && q.len() > mine + 1)
            .max_by_key(|(_, q)| q.len())
            .map(|(k, _)| *k);
        let Some(victim) = longest else {
            return false;
        };
        let Some(queue) = self.queues.get_mut(&victim) else {
            return false;
        };
        let Some(job) = queue.pop_back() else {
            return false;
        };
        if queue.is_empty() {
            self.queues.remove(&victim);
            self.ring.retain(|k| *k != victim);
        }
        self.queued.remove(&job.target);
        true
    }

    /// Takes the scans that may start now, round-robin across clients under their share, and
    /// admits each (global and per-client session limits). One the limits refuse is dropped
    /// and not remembered, as a refusal in [`start`] is: the widget's next refresh asks again.
    /// Returns the admitted scans and the refused targets with the limit that refused them.
    fn dispatch(&mut self, st: &AppState) -> (Vec<Ready>, Vec<(Target, Limit)>) {
        let mut out = Vec::new();
        let mut refused = Vec::new();
        while self.running.len() < MAX_INFLIGHT_SCANS {
            let Some(at) = self
                .ring
                .iter()
                .position(|c| self.per_client.get(c).copied().unwrap_or(0) < MAX_SCANS_PER_CLIENT)
            else {
                break;
            };
            let Some(client) = self.ring.remove(at) else {
                break;
            };
            let Some(queue) = self.queues.get_mut(&client) else {
                continue;
            };
            let Some(job) = queue.pop_front() else {
                self.queues.remove(&client);
                continue;
            };
            if queue.is_empty() {
                self.queues.remove(&client);
            } else {
                self.ring.push_back(client);
            }
            self.queued.remove(&job.target);
            let admission = match st.limits.admit_spent(job.client, Instant::now()) {
                Ok(a) => a,
                Err(l) => {
                    st.metrics.refused(l.label());
                    refused.push((job.target, l));
                    continue;
                }
            };
            self.running.insert(job.target.clone());
            *self.per_client.entry(client).or_insert(0) += 1;
            out.push((client, job.target, admission));
        }
        (out, refused)
    }

    /// Scans that start before the waiting `t` if slots free one at a time: the ones ahead
    /// of it in its client's queue, and, round-robin, as many from each other client (one
    /// more from those served before its client in this round).
    fn ahead(&self, t: &Target) -> usize {
        let Some(client) = self.queued.get(t) else {
            return 0;
        };
        let Some(queue) = self.queues.get(client) else {
            return 0;
        };
        let own = queue.iter().position(|j| &j.target == t).unwrap_or(0);
        let turn = self.ring.iter().position(|c| c == client).unwrap_or(0);
        let others: usize = self
            .ring
            .iter()
            .enumerate()
            .filter(|(_, c)| *c != client)
            .map(|(i, c)| {
                let len = self.queues.get(c).map_or(0, VecDeque::len);
                len.min(own + usize::from(i < turn))
            })
            .sum();
        own + others
    }
}

/// The running and recently finished server-side scans.
#[derive(Debug, Default)]
pub struct LiveScans {
    inner: Mutex<Inner>,
}

impl LiveScans {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain maps: a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Server-side scans running now.
    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// Server-side scans waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.lock().queued.len()
    }

    /// What is known about `t` at `now`: a stored outcome counts for `max_age`, a failure
    /// for [`FAILURE_TTL`].
    pub fn known(&self, t: &Target, now: Instant, max_age: Duration) -> Known {
        known(&self.lock(), t, now, max_age)
    }

    /// Records the outcome of `client`'s scan of `t` and returns the waiting scans that may
    /// start in its place (none once the proxy shuts down: waiting work is dropped then).
    fn finish(
        &self,
        st: &AppState,
        client: IpAddr,
        t: Target,
        outcome: Result<String, Failure>,
    ) -> Vec<Ready> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.running.remove(&t);
        if let Some(n) = inner.per_client.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_client.remove(&client);
            }
        }
        if inner.recent.len() >= MAX_REMEMBERED {
            inner
                .recent
                .retain(|_, (at, r)| r.is_ok() || now.saturating_duration_since(*at) < FAILURE_TTL);
        }
        if inner.recent.len() >= MAX_REMEMBERED {
            if let Some(oldest) = inner
                .recent
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                inner.recent.remove(&oldest);
            }
        }
        // A refusal by this proxy's own limits (or its shutdown) says nothing about the
        // server: remembered, it would show every visitor "Limit reached" for
        // `FAILURE_TTL` on one client's account. The next request asks again.
        let ours = matches!(&outcome, Err(f) if matches!(f.code, "limit_reached" | "shutdown"));
        if !ours {
            inner.recent.insert(t, (now, outcome));
        }
        if st.shutdown.is_cancelled() {
            inner.queued.clear();
            inner.ring.clear();
            inner.queues.clear();
            return Vec::new();
        }
        inner.dispatch(st).0
    }
}

fn known(inner: &Inner, t: &Target, now: Instant, max_age: Duration) -> Known {
    if inner.running.contains(t) {
        return Known::Running;
    }
    if inner.queued.contains_key(t) {
        return Known::Queued(inner.ahead(t));
    }
    match inner.recent.get(t) {
        Some((at, Ok(id))) if now.saturating_duration_since(*at) < max_age => {
            Known::Stored(id.clone())
        }
        Some((at, Err(f))) if now.saturating_duration_since(*at) < FAILURE_TTL => {
            Known::Failed(f.clone())
        }
        _ => Known::Nothing,
    }
}

/// Checks `host` and `port` against the SSRF policy (no DNS yet: every resolved address is
/// checked again when the scan connects) and names the target.
pub fn target(st: &AppState, host: &str, port: u16, tls: bool) -> Result<Target, Failure> {
    let (h, _) = st
        .policy
        .check_target(host, port)
        .map_err(|r| Failure::new(r.code, r.message))?;
    Ok(Target {
        host: h.to_string(),
        port,
        tls,
    })
}

/// Starts a scan of `t` for `client` unless one is running, waiting or finished lately;
/// returns what is known afterwards ([`Known::Running`] when a scan runs now,
/// [`Known::Queued`] when it waits for a slot), or why it could not start (limits; not
/// remembered, the next request may succeed).
///
/// Asking spends one of the client's new-session tokens (the `/ws` rate limit); the scan
/// takes its global and per-client session slots when it starts. It waits in its client's
/// queue while that client already runs [`MAX_SCANS_PER_CLIENT`] scans or
/// [`MAX_INFLIGHT_SCANS`] run in all; only a client whose own queue is full is refused.
pub fn start(st: &Arc<AppState>, client: IpAddr, t: &Target) -> Result<Known, Failure> {
    if st.shutdown.is_cancelled() {
        return Err(Failure::new("shutdown", "the proxy is shutting down"));
    }
    let now = Instant::now();
    let mut inner = st.live.lock();
    match known(&inner, t, now, st.config.embed_max_age) {
        Known::Nothing => {}
        k => return Ok(k),
    }
    let key = client_key(client);
    if inner.queues.get(&key).map_or(0, VecDeque::len) >= MAX_QUEUED_PER_CLIENT {
        st.metrics.refused("limit_live_scans_per_client");
        return Err(Failure::new(
            "limit_reached",
            format!(
                "too many server-side scans requested from your address ({MAX_QUEUED_PER_CLIENT} \
                 are waiting); wait for them to finish"
            ),
        ));
    }
    if inner.queued.len() >= MAX_QUEUED && !inner.make_room_for(key) {
        st.metrics.refused("limit_live_scans");
        return Err(Failure::new(
            "limit_reached",
            "the proxy has as many server-side scans waiting as it allows; try again later",
        ));
    }
    st.limits.spend(client, now).map_err(|l: Limit| {
        st.metrics.refused(l.label());
        Failure::new("limit_reached", l.message())
    })?;
    let queue = inner.queues.entry(key).or_default();
    queue.push_back(Job {
        target: t.clone(),
        client,
    });
    if queue.len() == 1 {
        inner.ring.push_back(key);
    }
    inner.queued.insert(t.clone(), key);
    let (ready, refused) = inner.dispatch(st);
    let k = known(&inner, t, now, st.config.embed_max_age);
    drop(inner);
    for r in ready {
        spawn(st, r);
    }
    match refused.into_iter().find(|(r, _)| r == t) {
        Some((_, l)) => Err(Failure::new("limit_reached", l.message())),
        None => Ok(k),
    }
}

/// Runs one dispatched scan in a task; when it ends, the waiting scans it makes room for
/// start.
fn spawn(st: &Arc<AppState>, (client, target, admission): Ready) {
    // Counted from the start of the task to its end, as a `/ws` session is.
    st.metrics.live_scan_started();
    let active = Counted(Arc::clone(st));
    let st2 = Arc::clone(st);
    st.sessions.spawn(async move {
        let _active = active;
        let outcome = scan(&st2, &target, admission.client()).await;
        drop(admission);
        if let Err(f) = &outcome {
            tracing::info!(target = %target.display(), code = f.code, message = ?f.message, "live scan failed");
        }
        for r in st2.live.finish(&st2, client, target, outcome) {
            spawn(&st2, r);
        }
    });
}

/// A running server-side scan in the metrics; dropping it (the task ends, or is dropped
/// unrun at shutdown) ends it there.
struct Counted(Arc<AppState>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.metrics.live_scan_ended();
    }
}

/// One server-side scan for the client key `client`: connect as a session does, drive the
/// engine, store the result.
async fn scan(st: &Arc<AppState>, t: &Target, client: IpAddr) -> Result<String, Failure> {
    let params = WsParams {
        host: Some(t.host.clone()),
        port: Some(t.port.to_string()),
        tls: Some(if t.tls { "1" } else { "0" }.to_owned()),
    };
    let started = Instant::now();
    let connecting = async {
        let connect = relay::connect(st, &params, client, false);
        match timeout(st.config.connect_timeout, connect).await {
            Ok(r) => r.map_err(|f| {
                st.metrics.refused(f.metric);
                Failure::new(f.code, f.message)
            }),
            Err(_) => {
                st.metrics.refused("timeout");
                Err(Failure::new(
                    "timeout",
                    format!(
                        "no connection within {} s",
                        st.config.connect_timeout.as_secs_f64()
                    ),
                ))
            }
        }
    };
    let (host, up) = tokio::select! {
        r = connecting => r?,
        () = st.shutdown.cancelled() => return Err(Failure::new("shutdown", "the proxy is shutting down")),
    };
    st.metrics.connected(started.elapsed());
    let save_config = SaveConfig::default();
    let tls_word = if t.tls { "1" } else { "0" };
    let recorded = record_connected(st, &host, up, tls_word, &save_config).await?;
    let db = Arc::clone(&st.db);
    let label = format!("live:{}", t.display());
    match tokio::task::spawn_blocking(move || {
        save::replay_and_insert(
            &db,
            &recorded.transcript,
            recorded.prepared,
            recorded.closed_at,
            &label,
        )
    })
    .await
    {
        Ok(Ok(saved)) => Ok(saved.id),
        Ok(Err(e)) => {
            tracing::error!("permalink store: {e}");
            Err(Failure::new("internal", "storage error"))
        }
        Err(e) => {
            tracing::error!("live scan replay: {e}");
            Err(Failure::new("internal", "storage error"))
        }
    }
}

/// A server-side scan recorded and checked for the save path, not stored yet.
pub(crate) struct Recorded {
    /// The relay transcript of the scan's own bytes (`host`, `port`, `ip`, `tls` meta).
    pub(crate) transcript: Transcript,
    /// The transcript checked as a save checks it ([`save::prepare`]).
    pub(crate) prepared: save::Prepared,
    /// Unix microseconds at the end (the record's `connected`).
    pub(crate) closed_at: i64,
    /// Whether the server closed the connection (rather than the scan ending it).
    pub(crate) server_closed: bool,
}

/// Scans over a connected upstream: drives the engine with `save_config`'s settings under
/// the relay replay's clock rules while recording a relay transcript (meta `tls` is
/// `tls_word`: `0`, `1` or `insecure`, as a `/ws` session records it), bounded by
/// [`MAX_LIVE_SCAN`], the session duration and the shutdown, then checks it as a save does.
/// The caller stores it ([`save::replay_and_insert`] or [`save::replay_row`]).
pub(crate) async fn record_connected(
    st: &AppState,
    host: &crate::relay::policy::Host,
    up: relay::Upstream,
    tls_word: &str,
    save_config: &SaveConfig,
) -> Result<Recorded, Failure> {
    // `up.target` (the target slot) stays held until the scan is recorded.
    match up.stream {
        Stream::Plain(mut tcp) => {
            let to = (up.addr, up.connected_at);
            record_stream(st, host, &mut tcp, to, tls_word, save_config).await
        }
        Stream::Tls(mut tls) => {
            let to = (up.addr, up.connected_at);
            record_stream(st, host, &mut *tls, to, tls_word, save_config).await
        }
    }
}

/// [`record_connected`] over any byte stream connected to `to` (the address and the
/// instant of the connect): the crawl's and the schedule's tests drive it over in-memory
/// streams on paused time.
pub(crate) async fn record_stream<S: AsyncRead + AsyncWrite + Unpin>(
    st: &AppState,
    host: &crate::relay::policy::Host,
    stream: &mut S,
    (addr, t0): (std::net::SocketAddr, Instant),
    tls_word: &str,
    save_config: &SaveConfig,
) -> Result<Recorded, Failure> {
    let cfg = save_config
        .to_scan_config(tls_word != "0")
        .map_err(|e| Failure::new("internal", e))?;
    let mut tr = Transcript::new();
    tr.set_meta("host", host.to_string());
    tr.set_meta("port", addr.port().to_string());
    tr.set_meta("ip", addr.ip().to_string());
    tr.set_meta("tls", tls_word);
    let limit = st.config.transcript_max_bytes;
    let deadline = t0 + MAX_LIVE_SCAN.min(st.config.max_session_duration);
    // The whole drive is under the deadline and the shutdown, writes included: a server
    // that stops reading (a zero window) while the engine answers its requests would
    // otherwise hold the scan's slots for good.
    let server_closed = bounded(
        st,
        deadline,
        drive(st, stream, cfg, t0, &mut tr, limit, deadline),
    )
    .await?;
    let closed_at = crate::relay::store::unix_micros();
    let prepared = save::prepare(&tr, save_config, st.config.max_saved_transcript_bytes).map_err(
        |r| match r {
            SaveRefusal::Client(_, code, message) => Failure::new(
                if code == "too_large" {
                    "too_large"
                } else {
                    "internal"
                },
                message,
            ),
            SaveRefusal::Internal(m) => Failure::new("internal", m),
        },
    )?;
    Ok(Recorded {
        transcript: tr,
        prepared,
        closed_at,
        server_closed,
    })
}

/// Records one entry; a scan whose transcript outgrows `limit` of memory
/// ([`Transcript::cost`]: a server dripping one byte at a time pays for every entry) fails
/// (a telnet scan is small).
fn record(tr: &mut Transcript, entry: Entry, limit: usize) -> Result<(), Failure> {
    if !tr.push_within(entry, limit) {
        return Err(Failure::new(
            "too_large",
            format!("the scan's transcript outgrew its {limit}-byte memory bound"),
        ));
    }
    Ok(())
}

/// Writes what the engine wants sent (dropped once the connection is not `open`) and
/// records each write as a relay records the browser's bytes, stamped from `t0`. `Ok(false)`
/// when a write failed (the connection is then treated as closed for writing).
async fn send_pending<S: AsyncWrite + Unpin>(
    s: &mut Scanner,
    stream: &mut S,
    open: bool,
    st: &AppState,
    tr: &mut Transcript,
    limit: usize,
    t0: Instant,
) -> Result<bool, Failure> {
    let mut ok = open;
    while let Some(bytes) = s.poll_transmit() {
        if !ok {
            continue;
        }
        if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
            ok = false;
            continue;
        }
        st.metrics.add_up(bytes.len() as u64);
        let at = Timestamp(Instant::now().saturating_duration_since(t0).as_micros() as u64);
        record(tr, Entry::Send(at, bytes), limit)?;
    }
    Ok(ok || !open)
}

/// `driving` until `deadline` or the proxy's shutdown, whichever comes first.
async fn bounded(
    st: &AppState,
    deadline: Instant,
    driving: impl std::future::Future<Output = Result<bool, Failure>>,
) -> Result<bool, Failure> {
    tokio::select! {
        r = timeout_at(deadline, driving) => r.unwrap_or_else(|_| Err(Failure::new(
            "timeout",
            format!("the scan did not finish within {} s", MAX_LIVE_SCAN.as_secs()),
        ))),
        () = st.shutdown.cancelled() => {
            Err(Failure::new("shutdown", "the proxy is shutting down"))
        }
    }
}

/// Drives the engine over `stream` with the relay replay's clock rules
/// (`iacscope_shared::relay`): input is fed at the time it was read (its transcript stamp),
/// timers due strictly before it first fire at their own deadlines, and after input the
/// engine runs at the same instant while it asks to. So the replay of the recorded
/// transcript sends what this scan sent. Stamps count from `t0`, the connect. Returns whether
/// the server closed the connection.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    st: &AppState,
    stream: &mut S,
    cfg: ScanConfig,
    t0: Instant,
    tr: &mut Transcript,
    limit: usize,
    deadline: Instant,
) -> Result<bool, Failure> {
    let stamp = |at: Instant| Timestamp(at.saturating_duration_since(t0).as_micros() as u64);
    let mut s = Scanner::new(cfg, Timestamp::ZERO);
    let mut now = Timestamp::ZERO;
    let mut eof = false;
    let mut write_failed = false;
    let mut buf = vec![0u8; READ_CHUNK];
    // The server's first bytes, until they are known not to open another protocol: a
    // server-side scan carries telnet only, as the relay does (`sniff`).
    let mut head: Option<Vec<u8>> = Some(Vec::new());
    loop {
        // Send what the engine wants sent, recorded as a relay records the browser's bytes.
        let open = !(write_failed || eof);
        write_failed |= !send_pending(&mut s, stream, open, st, tr, limit, t0).await?;
        while s.poll_event().is_some() {}
        if s.is_done() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                "timeout",
                format!(
                    "the scan did not finish within {} s",
                    MAX_LIVE_SCAN.as_secs()
                ),
            ));
        }
        let next = s.poll_timeout();
        let wake = next.map_or(deadline, |d| {
            (t0 + Duration::from_micros(d.0)).min(deadline)
        });
        if eof {
            tokio::select! {
                () = sleep_until(wake) => {}
                () = st.shutdown.cancelled() => {
                    return Err(Failure::new("shutdown", "the proxy is shutting down"));
                }
            }
            if let Some(d) = next {
                now = d.max(now);
                s.handle_timeout(now);
            }
            continue;
        }
        let read = tokio::select! {
            r = timeout_at(wake, stream.read(&mut buf)) => r,
            () = st.shutdown.cancelled() => {
                return Err(Failure::new("shutdown", "the proxy is shutting down"));
            }
        };
        let Ok(read) = read else {
            // A timer is due (or the deadline passed): it fires at its own deadline.
            if let Some(d) = next {
                if t0 + Duration::from_micros(d.0) <= Instant::now() {
                    now = d.max(now);
                    s.handle_timeout(now);
                }
            }
            continue;
        };
        let at = stamp(Instant::now()).max(now);
        let data = match read {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(buf[..n].to_vec()),
        };
        // Timers due strictly before this input fire first, at their own deadlines.
        while let Some(d) = s.poll_timeout() {
            if d >= at || s.is_done() {
                break;
            }
            now = d.max(now);
            s.handle_timeout(now);
        }
        now = at;
        if let (Some(bytes), Some(h)) = (&data, head.as_mut()) {
            h.extend_from_slice(&bytes[..bytes.len().min(SNIFF_HEAD - h.len())]);
            match sniff::server_first(h, true) {
                Sniff::Other(what) => {
                    return Err(Failure::new(
                        "not_telnet",
                        format!("the server's first bytes are those of {what}, not telnet"),
                    ))
                }
                Sniff::Telnet => head = None,
                Sniff::Undecided if h.len() >= SNIFF_HEAD => head = None,
                Sniff::Undecided => {}
            }
        }
        match data {
            Some(bytes) => {
                st.metrics.add_down(bytes.len() as u64);
                let done = s.is_done();
                record(tr, Entry::Recv(at, bytes.clone()), limit)?;
                if !done {
                    s.handle_input(now, &bytes);
                }
            }
            None => {
                eof = true;
                record(tr, Entry::Eof(at), limit)?;
                if !s.is_done() {
                    s.handle_eof(now);
                }
            }
        }
        // The engine runs at this same instant while it asks to.
        while let Some(d) = s.poll_timeout() {
            if d > now || s.is_done() {
                break;
            }
            s.handle_timeout(now);
            let open = !(write_failed || eof);
            write_failed |= !send_pending(&mut s, stream, open, st, tr, limit, t0).await?;
        }
    }
    if !eof {
        // The scan is over: close as the browser does, and record the end.
        let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
        record(tr, Entry::Eof(stamp(Instant::now()).max(now)), limit)?;
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::Config;

    fn target(port: u16) -> Target {
        Target {
            host: "192.0.2.1".into(),
            port,
            tls: false,
        }
    }

    fn ask(inner: &mut Inner, client: IpAddr, port: u16) {
        let key = client_key(client);
        let queue = inner.queues.entry(key).or_default();
        queue.push_back(Job {
            target: target(port),
            client,
        });
        if queue.len() == 1 {
            inner.ring.push_back(key);
        }
        inner.queued.insert(target(port), key);
    }

    /// A full waiting line makes room for a client with nothing waiting by dropping the
    /// newest scan of the longest queue, never one of a queue no longer than the newcomer's.
    #[test]
    fn a_full_line_makes_room_for_a_newcomer() {
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        let c: IpAddr = "198.51.100.3".parse().unwrap();
        let mut inner = Inner::default();
        for p in 0..5 {
            ask(&mut inner, a, 100 + p);
        }
        for p in 0..2 {
            ask(&mut inner, b, 200 + p);
        }
        assert!(inner.make_room_for(client_key(c)));
        assert!(!inner.queued.contains_key(&target(104)), "a's newest went");
        assert_eq!(inner.queued.len(), 6);
        assert_eq!(inner.queues[&client_key(a)].len(), 4);
        // b (2 waiting) is not longer than c's would be with one more after c queues one.
        ask(&mut inner, c, 300);
        let mut only_b = Inner::default();
        for p in 0..2 {
            ask(&mut only_b, b, 200 + p);
        }
        ask(&mut only_b, c, 300);
        assert!(!only_b.make_room_for(client_key(c)));
        // A queue emptied this way leaves the round-robin ring.
        let mut one = Inner::default();
        ask(&mut one, a, 100);
        ask(&mut one, a, 101);
        ask(&mut one, a, 102);
        assert!(one.make_room_for(client_key(c)));
        assert!(one.make_room_for(client_key(c)));
        assert!(
            !one.make_room_for(client_key(c)),
            "a's last one is no longer than c's"
        );
        assert_eq!(one.ring.len(), 1);
    }

    #[test]
    fn waiting_scans_are_served_round_robin_within_each_clients_share() {
        let dir = std::env::temp_dir().join(format!("iacscope-livescan-{}", std::process::id()));
        let st = AppState::new(Config {
            data_dir: dir.clone(),
            static_dir: "/nonexistent/iacscope-test-dist".into(),
            ..Config::default()
        })
        .expect("state");
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let mut inner = Inner::default();
        for p in 0..6 {
            ask(&mut inner, a, 100 + p);
        }
        for p in 0..2 {
            ask(&mut inner, b, 200 + p);
        }
        assert_eq!(inner.ahead(&target(105)), 5 + 2);
        assert_eq!(inner.ahead(&target(201)), 1 + 2);
        let (ready, refused) = inner.dispatch(&st);
        assert!(refused.is_empty());
        let order: Vec<u16> = ready.iter().map(|(_, t, _)| t.port).collect();
        // Taking turns, until a reaches its share; b's whole /64 is one client.
        assert_eq!(order, [100, 200, 101, 201, 102, 103]);
        assert_eq!(inner.running.len(), 6);
        assert_eq!(inner.queued.len(), 2);
        assert_eq!(inner.ahead(&target(104)), 0);
        assert_eq!(inner.ahead(&target(105)), 1);
        assert!(inner.dispatch(&st).0.is_empty(), "a is at its share");
        // One of a's scans ends: its next one starts.
        let mut ready = ready;
        let (client, t, admission) = ready.remove(0);
        drop(admission);
        inner.running.remove(&t);
        *inner.per_client.get_mut(&client).unwrap() -= 1;
        let (next, _) = inner.dispatch(&st);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1.port, 104);
        drop((ready, next));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
