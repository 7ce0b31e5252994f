//! Server-side scans for the live embed (`/embed?host=&port=`) and the badge: one scan per
//! target at a time, admitted like a `/ws` session (SSRF policy, global, per-client and
//! per-target limits: [`super::relay::connect`] and [`super::limits`]), run by the engine
//! natively while the proxy records a relay transcript of its own bytes, then stored through
//! the browser's save path ([`super::save::prepare`] and [`super::save::replay_and_insert`]),
//! so the row is exactly what a browser save of the same bytes gives. Failures are remembered
//! for [`FAILURE_TTL`] (a refreshing iframe shows them instead of rescanning) and not stored.

use super::relay::{self, Stream, WsParams};
use super::save::{self, SaveRefusal};
use super::AppState;
use iacscope_shared::config::ScanConfig;
use iacscope_shared::relay::SaveConfig;
use iacscope_shared::scan::Scanner;
use iacscope_shared::time::Timestamp;
use iacscope_shared::transcript::{Entry, Transcript};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

/// Server-side scans running at once (on top of the session limits they also count in).
pub const MAX_INFLIGHT_SCANS: usize = 16;

/// Outcomes remembered (targets); the oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 4096;

/// How long a failed scan is shown instead of scanning again.
pub const FAILURE_TTL: Duration = Duration::from_secs(120);

/// Longest a server-side scan may run (the engine's phases add up to well under a minute).
pub const MAX_LIVE_SCAN: Duration = Duration::from_secs(90);

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
        super::embed::host_port(&self.host, self.port)
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
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            at: super::store::unix_micros().div_euclid(1_000_000),
        }
    }

    /// Whether the server itself could not be reached (as opposed to a refusal by this
    /// proxy's policy or limits).
    pub fn unreachable(&self) -> bool {
        !matches!(
            self.code,
            "refused_by_policy" | "bad_host" | "bad_port" | "limit_reached" | "shutdown"
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
    recent: HashMap<Target, (Instant, Result<String, Failure>)>,
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

    /// What is known about `t` at `now`: a stored outcome counts for `max_age`, a failure
    /// for [`FAILURE_TTL`].
    pub fn known(&self, t: &Target, now: Instant, max_age: Duration) -> Known {
        known(&self.lock(), t, now, max_age)
    }

    fn finish(&self, t: Target, outcome: Result<String, Failure>) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.running.remove(&t);
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
        inner.recent.insert(t, (now, outcome));
    }
}

fn known(inner: &Inner, t: &Target, now: Instant, max_age: Duration) -> Known {
    if inner.running.contains(t) {
        return Known::Running;
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

/// Starts a scan of `t` for `client` unless one is running or finished lately; returns
/// what is known afterwards ([`Known::Running`] when a scan runs now), or why it could not
/// start (limits; not remembered, the next request may succeed).
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
    if inner.running.len() >= MAX_INFLIGHT_SCANS {
        st.metrics.refused("limit_live_scans");
        return Err(Failure::new(
            "limit_reached",
            "the proxy is running as many server-side scans as it allows; try again later",
        ));
    }
    let admission = st.limits.admit(client, now).map_err(|l| {
        st.metrics.refused(l.label());
        Failure::new("limit_reached", l.message())
    })?;
    inner.running.insert(t.clone());
    drop(inner);
    // Counted from admission to the end of the task, as a `/ws` session is.
    st.metrics.live_scan_started();
    let active = Counted(Arc::clone(st));
    let st2 = Arc::clone(st);
    let t2 = t.clone();
    st.sessions.spawn(async move {
        let _active = active;
        let outcome = scan(&st2, &t2, admission.client()).await;
        drop(admission);
        if let Err(f) = &outcome {
            tracing::info!(target = %t2.display(), code = f.code, "live scan failed: {}", f.message);
        }
        st2.live.finish(t2, outcome);
    });
    Ok(Known::Running)
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
    let cfg = save_config
        .to_scan_config(t.tls)
        .map_err(|e| Failure::new("internal", e))?;
    let mut tr = Transcript::new();
    tr.set_meta("host", host.to_string());
    tr.set_meta("port", up.addr.port().to_string());
    tr.set_meta("ip", up.addr.ip().to_string());
    tr.set_meta("tls", if t.tls { "1" } else { "0" });
    let limit = st.config.transcript_max_bytes;
    let deadline = up.connected_at + MAX_LIVE_SCAN.min(st.config.max_session_duration);
    let t0 = up.connected_at;
    let driven = match up.stream {
        Stream::Plain(mut tcp) => drive(st, &mut tcp, cfg, t0, &mut tr, limit, deadline).await,
        Stream::Tls(mut tls) => drive(st, &mut *tls, cfg, t0, &mut tr, limit, deadline).await,
    };
    driven?;
    let closed_at = super::store::unix_micros();
    let prepared = save::prepare(&tr, &save_config, st.config.max_saved_transcript_bytes).map_err(
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
    let db = Arc::clone(&st.db);
    let label = format!("live:{}", t.display());
    match tokio::task::spawn_blocking(move || {
        save::replay_and_insert(&db, &tr, prepared, closed_at, &label)
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

/// Records one entry; a scan that outgrows `limit` fails (a telnet scan is small).
fn record(tr: &mut Transcript, entry: Entry, limit: usize) -> Result<(), Failure> {
    let len = match &entry {
        Entry::Recv(_, b) | Entry::Send(_, b) => b.len(),
        _ => 0,
    };
    if tr.payload_bytes() + len > limit || !tr.push(entry) {
        return Err(Failure::new(
            "too_large",
            format!("the server sent more than {limit} bytes during the scan"),
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

/// Drives the engine over `stream` with the relay replay's clock rules
/// (`iacscope_shared::relay`): input is fed at the time it was read (its transcript stamp),
/// timers due strictly before it first fire at their own deadlines, and after input the
/// engine runs at the same instant while it asks to. So the replay of the recorded
/// transcript sends what this scan sent. Stamps count from `t0`, the connect.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    st: &AppState,
    stream: &mut S,
    cfg: ScanConfig,
    t0: Instant,
    tr: &mut Transcript,
    limit: usize,
    deadline: Instant,
) -> Result<(), Failure> {
    let stamp = |at: Instant| Timestamp(at.saturating_duration_since(t0).as_micros() as u64);
    let mut s = Scanner::new(cfg, Timestamp::ZERO);
    let mut now = Timestamp::ZERO;
    let mut eof = false;
    let mut write_failed = false;
    let mut buf = vec![0u8; READ_CHUNK];
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
    }
    Ok(())
}
