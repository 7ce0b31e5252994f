//! One websocket session: check the target, resolve it once, connect to a checked address,
//! then relay bytes both ways unchanged and record them, until one side closes or a limit
//! ends the session. Telnet is not interpreted here.

use super::limits::{Activity, Admission, Limit, TargetGuard};
use super::policy::{Host, Refusal};
use super::sniff::{self, Sniff};
use super::store;
use super::tls::TlsInfo;
use crate::serve::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use iacscope_shared::time::Timestamp;
use iacscope_shared::transcript::{Entry, Transcript};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// The query of `GET /ws`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WsParams {
    /// Target host: a name or an IP literal (IPv6 in brackets or bare).
    pub host: Option<String>,
    /// Target port (default 23).
    pub port: Option<String>,
    /// `0` (plain TCP, the default), `1` (TLS, verified) or `insecure` (TLS, any
    /// certificate; the `connected` message says whether it verified).
    pub tls: Option<String>,
}

/// Websocket close codes (RFC 6455 section 7.4.1 and the IANA registry).
mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const BAD_GATEWAY: u16 = 1014;
}

/// Control messages, sent as JSON text frames.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control<'a> {
    Connected {
        session: &'a str,
        host: &'a str,
        ip: String,
        port: u16,
        tls: Option<&'a TlsInfo>,
    },
    Closed {
        by: &'static str,
        code: &'static str,
        reason: &'a str,
        bytes_up: u64,
        bytes_down: u64,
        duration_ms: u64,
    },
    Error {
        code: &'static str,
        message: &'a str,
    },
}

/// Why the connect phase failed.
pub(crate) struct Fail {
    pub(crate) code: &'static str,
    /// The `iacscope_refusals_total` reason.
    pub(crate) metric: &'static str,
    pub(crate) message: String,
    close: u16,
}

impl Fail {
    fn new(code: &'static str, message: impl Into<String>, close: u16) -> Fail {
        Fail {
            code,
            metric: code,
            message: message.into(),
            close,
        }
    }
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Fail {
        Fail::new(r.code, r.message, close::POLICY)
    }
}

impl From<Limit> for Fail {
    fn from(l: Limit) -> Fail {
        Fail {
            code: "limit_reached",
            metric: l.label(),
            message: l.message().to_owned(),
            close: close::TRY_AGAIN_LATER,
        }
    }
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

pub(crate) struct Upstream {
    pub(crate) stream: Stream,
    pub(crate) addr: SocketAddr,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) connected_at: Instant,
    target: TargetGuard,
}

fn json(c: &Control<'_>) -> Message {
    // Serializing these plain structs cannot fail.
    Message::Text(serde_json::to_string(c).unwrap_or_default().into())
}

fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes; cut on a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// The close code of a policy refusal (1008).
pub(crate) const CLOSE_POLICY: u16 = close::POLICY;

/// Sends an `error` message and a close frame, within a short deadline.
pub(crate) async fn send_error(
    ws: &mut WebSocket,
    code: &'static str,
    message: &str,
    close_code: u16,
) {
    let _ = timeout(Duration::from_secs(5), async {
        ws.send(json(&Control::Error { code, message })).await?;
        ws.send(close_frame(close_code, message)).await
    })
    .await;
}

/// Runs one session. `admission` is the outcome of the limit check made before the
/// upgrade; its guards live as long as this task.
pub(crate) async fn session(
    mut ws: WebSocket,
    st: Arc<AppState>,
    params: WsParams,
    admission: Result<Admission, Limit>,
    shutdown: CancellationToken,
    _task: TaskTrackerToken,
) {
    let admission = match admission {
        Ok(a) => a,
        Err(limit) => {
            st.metrics.refused(limit.label());
            send_error(
                &mut ws,
                "limit_reached",
                limit.message(),
                close::TRY_AGAIN_LATER,
            )
            .await;
            return;
        }
    };
    st.metrics.session_started();
    struct Active<'a>(&'a crate::serve::metrics::Metrics);
    impl Drop for Active<'_> {
        fn drop(&mut self) {
            self.0.session_ended();
        }
    }
    let _active = Active(&st.metrics);
    let started = Instant::now();
    let deadline = started + st.config.connect_timeout;
    let connecting = async {
        match timeout_at(deadline, connect(&st, &params, admission.client(), true)).await {
            Ok(r) => r,
            Err(_) => Err(Fail::new(
                "timeout",
                format!(
                    "no connection within {} s",
                    st.config.connect_timeout.as_secs_f64()
                ),
                close::BAD_GATEWAY,
            )),
        }
    };
    let result = tokio::select! {
        r = connecting => r,
        () = shutdown.cancelled() => Err(Fail::new("shutdown", "the proxy is shutting down", close::GOING_AWAY)),
    };
    let (host, up) = match result {
        Ok(x) => x,
        Err(f) => {
            st.metrics.refused(f.metric);
            send_error(&mut ws, f.code, &f.message, f.close).await;
            return;
        }
    };
    st.metrics.connected(started.elapsed());
    let id = match new_session_id() {
        Some(id) => id,
        None => {
            send_error(
                &mut ws,
                "internal",
                "no randomness for a session id",
                close::INTERNAL,
            )
            .await;
            return;
        }
    };
    let mut t = Transcript::new();
    t.set_meta("host", host.to_string());
    t.set_meta("port", up.addr.port().to_string());
    t.set_meta("ip", up.addr.ip().to_string());
    let tls_word = match (&up.tls, params.tls.as_deref()) {
        (None, _) => "0",
        (Some(_), Some("insecure")) => "insecure",
        (Some(_), _) => "1",
    };
    t.set_meta("tls", tls_word);
    let transcript: store::Live = Arc::new(Mutex::new(t));
    st.store.insert_live(&id, Arc::clone(&transcript));
    let hello = Control::Connected {
        session: &id,
        host: &host.to_string(),
        ip: up.addr.ip().to_string(),
        port: up.addr.port(),
        tls: up.tls.as_ref(),
    };
    if ws.send(json(&hello)).await.is_err() {
        st.store.close(&id, Instant::now());
        return;
    }
    let activity = Arc::clone(up.target.activity());
    let rec = Recorder {
        st: &st,
        t0: up.connected_at,
        transcript: &transcript,
        up: AtomicU64::new(0),
        down: AtomicU64::new(0),
        last: AtomicU64::new(0),
        plain: up.tls.is_none(),
        activity: &activity,
    };
    let (mut ws_tx, mut ws_rx) = ws.split();
    let end = match up.stream {
        Stream::Plain(mut tcp) => {
            let (r, mut w) = tcp.split();
            let end = relay(&rec, &mut ws_rx, &mut ws_tx, r, &mut w, started, &shutdown).await;
            let _ = timeout(Duration::from_secs(1), w.shutdown()).await;
            end
        }
        Stream::Tls(tls) => {
            let (r, mut w) = tokio::io::split(*tls);
            let end = relay(&rec, &mut ws_rx, &mut ws_tx, r, &mut w, started, &shutdown).await;
            let _ = timeout(Duration::from_secs(1), w.shutdown()).await;
            end
        }
    };
    let now = Instant::now();
    store::lock(&transcript).push(Entry::Eof(rec.stamp(now)));
    st.store.close(&id, now);
    let closed = Control::Closed {
        by: end.by,
        code: end.code,
        reason: &end.reason,
        bytes_up: rec.up.load(Relaxed),
        bytes_down: rec.down.load(Relaxed),
        duration_ms: now.duration_since(started).as_millis() as u64,
    };
    let grace = st.config.shutdown_grace.min(Duration::from_secs(5));
    let _ = timeout(grace, async {
        if end.by != "client" {
            ws_tx.send(json(&closed)).await?;
            ws_tx.send(close_frame(end.close, &end.reason)).await?;
            // Wait for the browser's reply so the closing handshake completes.
            while let Some(Ok(m)) = ws_rx.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        }
        // Flushes the reply to a browser's close frame.
        ws_tx.close().await
    })
    .await;
}

/// Parses the request, checks the policy, resolves once, checks every address, and
/// connects to a checked one (then TLS when asked). The embed's server-side scans use it too.
/// The target slot is taken for the client key `client`; `yields`: the session gives its
/// slot to a newcomer when idle ([`super::limits::Limits::target`]).
pub(crate) async fn connect(
    st: &AppState,
    p: &WsParams,
    client: IpAddr,
    yields: bool,
) -> Result<(Host, Upstream), Fail> {
    let raw_host = p.host.as_deref().unwrap_or("");
    let port: u16 = match p.port.as_deref() {
        None | Some("") => 23,
        Some(s) => s
            .parse()
            .map_err(|_| Fail::new("bad_port", format!("`{s}` is not a port"), close::POLICY))?,
    };
    let tls = match p.tls.as_deref() {
        None | Some("" | "0" | "false") => None,
        Some("1" | "true") => Some(false),
        Some("insecure") => Some(true),
        Some(other) => {
            return Err(Fail::new(
                "bad_request",
                format!("tls must be 0, 1 or insecure, not `{other}`"),
                close::POLICY,
            ))
        }
    };
    let (host, addrs) = resolve(st, raw_host, port).await?;
    connect_to(st, host, &addrs, port, tls, client, yields).await
}

/// Checks `raw_host`:`port` against the policy, resolves a name once (a static `resolve`
/// entry first) and checks every address it gives. Returns the host as the policy
/// normalised it and the checked addresses, in the resolver's order, without duplicates:
/// only these may be connected to ([`connect_to`]).
pub(crate) async fn resolve(
    st: &AppState,
    raw_host: &str,
    port: u16,
) -> Result<(Host, Vec<IpAddr>), Fail> {
    let (host, verdict) = st.policy.check_target(raw_host, port)?;
    let addrs: Vec<IpAddr> = match &host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let answer: Vec<IpAddr> = match st.config.resolve.get(name) {
                Some(fixed) => fixed.clone(),
                None => tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map_err(|e| {
                        Fail::new(
                            "dns_failure",
                            format!("cannot resolve `{name}`: {e}"),
                            close::BAD_GATEWAY,
                        )
                    })?
                    .map(|sa| sa.ip())
                    .collect(),
            };
            let mut addrs: Vec<IpAddr> = Vec::with_capacity(answer.len());
            for ip in answer.into_iter().map(|ip| ip.to_canonical()) {
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
            if addrs.is_empty() {
                return Err(Fail::new(
                    "dns_failure",
                    format!("`{name}` has no address"),
                    close::BAD_GATEWAY,
                ));
            }
            // Every address is checked, and only these addresses are used below: there is
            // no second lookup for a rebinding DNS server to answer differently.
            for ip in &addrs {
                st.policy
                    .check_ip(*ip, verdict.operator_allowed)
                    .map_err(|r| {
                        Fail::from(Refusal {
                            code: r.code,
                            message: format!("`{name}` resolves to {ip}: {}", r.message),
                        })
                    })?;
            }
            addrs
        }
    };
    Ok((host, addrs))
}

/// Connects to the first of `addrs` (checked by [`resolve`]) that takes a target slot and
/// accepts, then runs TLS when asked (`tls`: `None` plain, `Some(insecure)`).
pub(crate) async fn connect_to(
    st: &AppState,
    host: Host,
    addrs: &[IpAddr],
    port: u16,
    tls: Option<bool>,
    client: IpAddr,
    yields: bool,
) -> Result<(Host, Upstream), Fail> {
    let mut last: Option<Fail> = None;
    for &ip in addrs {
        let guard = match st.limits.target(ip, client, yields).await {
            Ok(g) => g,
            Err(l) => {
                last = Some(l.into());
                continue;
            }
        };
        let addr = SocketAddr::new(ip, port);
        let tcp = match TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(e) => {
                last = Some(connect_error(addr, &e));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let connected_at = Instant::now();
        let (stream, info) = match tls {
            None => (Stream::Plain(tcp), None),
            Some(insecure) => {
                let (s, info) = st
                    .tls
                    .connect(tcp, &host, insecure)
                    .await
                    .map_err(|m| Fail::new("tls_failure", m, close::BAD_GATEWAY))?;
                (Stream::Tls(Box::new(s)), Some(info))
            }
        };
        return Ok((
            host,
            Upstream {
                stream,
                addr,
                tls: info,
                connected_at,
                target: guard,
            },
        ));
    }
    Err(last.unwrap_or_else(|| {
        Fail::new(
            "dns_failure",
            "no address to connect to",
            close::BAD_GATEWAY,
        )
    }))
}

fn connect_error(addr: SocketAddr, e: &io::Error) -> Fail {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Fail::new(
            "connection_refused",
            format!("{addr} refused the connection"),
            close::BAD_GATEWAY,
        ),
        io::ErrorKind::TimedOut => Fail::new(
            "timeout",
            format!("{addr} did not answer"),
            close::BAD_GATEWAY,
        ),
        _ => Fail::new(
            "network_error",
            format!("cannot connect to {addr}: {e}"),
            close::BAD_GATEWAY,
        ),
    }
}

/// 128 random bits, hex: a session id that cannot be guessed (it names a transcript).
fn new_session_id() -> Option<String> {
    let mut b = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .ok()?;
    Some(iacscope_shared::mud::hex(&b))
}

/// Counts, timestamps and records relayed bytes.
struct Recorder<'a> {
    st: &'a AppState,
    t0: Instant,
    transcript: &'a store::Live,
    up: AtomicU64,
    down: AtomicU64,
    /// Microseconds from `t0` to the last byte either way (for the idle timeout).
    last: AtomicU64,
    /// Plain TCP (not TLS): a TLS record from either side then means another protocol.
    plain: bool,
    /// The target slot's activity (for giving way to a newcomer when idle).
    activity: &'a Activity,
}

impl Recorder<'_> {
    fn stamp(&self, now: Instant) -> Timestamp {
        Timestamp(now.saturating_duration_since(self.t0).as_micros() as u64)
    }

    /// Records one message's bytes, within the session's transcript memory bound
    /// (`transcript_max_bytes`, counted as [`Transcript::cost`]: a one-byte message costs
    /// its entry too). Past the bound the relay goes on and the transcript is marked
    /// truncated.
    fn record(&self, now: Instant, entry: impl FnOnce(Timestamp) -> Entry, len: usize) {
        let stamp = self.stamp(now);
        self.last.store(stamp.0, Relaxed);
        self.activity.touch(now);
        let mut t = store::lock(self.transcript);
        let max = self.st.config.transcript_max_bytes;
        if t.cost() + len + iacscope_shared::transcript::ENTRY_COST > max {
            // Checked before the payload is copied: a session past its bound copies nothing.
            t.truncated = true;
        } else {
            t.push_within(entry(stamp), max);
        }
    }
}

/// How a relay ended.
struct End {
    by: &'static str,
    code: &'static str,
    reason: String,
    close: u16,
}

impl End {
    fn client(reason: impl Into<String>) -> End {
        End {
            by: "client",
            code: "client_closed",
            reason: reason.into(),
            close: close::NORMAL,
        }
    }
    fn server(reason: impl Into<String>, close: u16) -> End {
        End {
            by: "server",
            code: "server_closed",
            reason: reason.into(),
            close,
        }
    }
    fn proxy(code: &'static str, reason: impl Into<String>, close: u16) -> End {
        End {
            by: "proxy",
            code,
            reason: reason.into(),
            close,
        }
    }
}

/// Upper bound of one read from the server (one binary frame). Bulk output costs a read, a
/// frame and a websocket write per chunk, so big chunks mean few syscalls; 64 KiB is the
/// size websockify reads too. Only a busy session holds it (see `READ_SMALL`).
const READ_CHUNK: usize = 64 * 1024;
/// First read size: an idle session holds no more than this for its read buffer.
const READ_SMALL: usize = 2 * 1024;

#[allow(clippy::too_many_arguments)]
async fn relay<R, W, S, K>(
    rec: &Recorder<'_>,
    ws_rx: &mut S,
    ws_tx: &mut K,
    mut r: R,
    w: &mut W,
    started: Instant,
    shutdown: &CancellationToken,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
    K: futures_util::Sink<Message, Error = axum::Error> + Unpin,
{
    let cfg = &rec.st.config;
    let metrics = &rec.st.metrics;
    let plain = rec.plain;
    // The server's first bytes passed `sniff::server_first` (set and notified by the
    // downward half), and whether it has sent anything at all.
    let server_ok = AtomicBool::new(false);
    let server_spoke = AtomicBool::new(false);
    let vouched = tokio::sync::Notify::new();
    // Browser to server. Until the page's first data bytes and the server's first bytes are
    // known to be telnet, the page's data waits in the gate (`sniff::UpGate`).
    let upward = async {
        let mut gate = sniff::UpGate::new();
        let silent_until = Instant::now() + sniff::SILENT_SERVER;
        loop {
            let clear = server_ok.load(Relaxed)
                || (!server_spoke.load(Relaxed) && Instant::now() >= silent_until);
            let out = if !gate.is_open() && clear {
                gate.open(plain)
            } else {
                let waiting = !gate.is_open() && gate.holding();
                let msg = if waiting {
                    let silent = !server_spoke.load(Relaxed);
                    tokio::select! {
                        m = ws_rx.next(), if !gate.full() => m,
                        () = vouched.notified() => continue,
                        () = sleep_until(silent_until), if silent => continue,
                    }
                } else {
                    ws_rx.next().await
                };
                let data: Bytes = match msg {
                    None => return End::client("the websocket closed without a close frame"),
                    Some(Err(e)) => return ws_error(e),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => Bytes::from(t),
                    Some(Ok(Message::Close(_))) => {
                        return End::client("the browser closed the session")
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                };
                if gate.settled() {
                    Ok(data.to_vec())
                } else {
                    gate.push(&data, plain)
                }
            };
            let data = match out {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => d,
                Err(what) => {
                    return not_telnet(format!(
                        "the page's first data is {what}, not telnet: this proxy relays \
                         telnet only"
                    ))
                }
            };
            let total = rec.up.load(Relaxed) + data.len() as u64;
            if total > cfg.max_bytes_up {
                return End::proxy(
                    "bytes_limit",
                    format!("more than {} bytes sent to the server", cfg.max_bytes_up),
                    close::POLICY,
                );
            }
            if let Err(e) = w.write_all(&data).await {
                return End::server(
                    format!("write to the server failed: {e}"),
                    close::BAD_GATEWAY,
                );
            }
            if let Err(e) = w.flush().await {
                return End::server(
                    format!("write to the server failed: {e}"),
                    close::BAD_GATEWAY,
                );
            }
            rec.up.store(total, Relaxed);
            metrics.add_up(data.len() as u64);
            let len = data.len();
            rec.record(Instant::now(), |t| Entry::Send(t, data), len);
        }
    };
    // Server to browser.
    let downward = async {
        let mut buf = BytesMut::new();
        let mut want = READ_SMALL;
        // Until the server's first bytes are known not to open another protocol, they are
        // held back (at most `sniff::UNDECIDED_WAIT` once they begin like one).
        let mut sniffed = false;
        let mut undecided_since: Option<Instant> = None;
        loop {
            buf.reserve(want);
            let read = r.read_buf(&mut buf);
            let read = match undecided_since {
                Some(t) => match timeout_at(t + sniff::UNDECIDED_WAIT, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Nothing more came: what began like a signature was not one.
                        sniffed = true;
                        undecided_since = None;
                        server_ok.store(true, Relaxed);
                        vouched.notify_one();
                        let chunk = buf.split().freeze();
                        if let Some(end) = send_down(rec, ws_tx, chunk).await {
                            return end;
                        }
                        continue;
                    }
                },
                None => read.await,
            };
            let n = match read {
                Ok(0) => return End::server("the server closed the connection", close::NORMAL),
                Ok(n) => n,
                Err(e) => {
                    return End::server(
                        format!("read from the server failed: {e}"),
                        close::BAD_GATEWAY,
                    )
                }
            };
            if !sniffed {
                server_spoke.store(true, Relaxed);
                match sniff::server_first(&buf, plain) {
                    Sniff::Telnet => {
                        sniffed = true;
                        undecided_since = None;
                        server_ok.store(true, Relaxed);
                        vouched.notify_one();
                    }
                    Sniff::Other(what) => {
                        return not_telnet(format!(
                            "the server's first bytes are those of {what}, not telnet: this \
                             proxy relays telnet only"
                        ))
                    }
                    Sniff::Undecided => {
                        undecided_since.get_or_insert_with(Instant::now);
                        continue;
                    }
                }
            }
            // Grow for bursts, shrink back when quiet, so idle sessions stay small.
            if n >= want {
                want = READ_CHUNK;
            } else if want > READ_SMALL && n < READ_SMALL {
                want = READ_SMALL;
                let chunk = buf.split().freeze();
                buf = BytesMut::new();
                if let Some(end) = send_down(rec, ws_tx, chunk).await {
                    return end;
                }
                continue;
            }
            let chunk = buf.split().freeze();
            if let Some(end) = send_down(rec, ws_tx, chunk).await {
                return end;
            }
        }
    };
    let idle = async {
        loop {
            let last = rec.t0 + Duration::from_micros(rec.last.load(Relaxed));
            let at = last + cfg.idle_timeout;
            if Instant::now() >= at {
                return End::proxy(
                    "idle_timeout",
                    format!("no traffic for {} s", cfg.idle_timeout.as_secs()),
                    close::GOING_AWAY,
                );
            }
            sleep_until(at).await;
        }
    };
    tokio::select! {
        e = upward => e,
        e = downward => e,
        e = idle => e,
        () = rec.activity.give_way() => {
            let now = Instant::now();
            let idle = rec.activity.idle(now);
            let why = if idle >= cfg.yield_idle_after {
                format!(
                    "closed after {} s without traffic: another user is waiting for this server",
                    idle.as_secs()
                )
            } else {
                format!(
                    "closed after {} min: every session this proxy allows to this server is in \
                     use and another user is waiting",
                    rec.activity.age(now).as_secs() / 60
                )
            };
            End::proxy("idle_yield", why, close::GOING_AWAY)
        }
        () = sleep_until(started + cfg.max_session_duration) => End::proxy(
            "duration_limit",
            format!("sessions last at most {} s", cfg.max_session_duration.as_secs()),
            close::GOING_AWAY,
        ),
        () = shutdown.cancelled() => End::proxy("shutdown", "the proxy is shutting down", close::GOING_AWAY),
    }
}

async fn send_down<K>(rec: &Recorder<'_>, ws_tx: &mut K, chunk: Bytes) -> Option<End>
where
    K: futures_util::Sink<Message, Error = axum::Error> + Unpin,
{
    let cfg = &rec.st.config;
    let total = rec.down.load(Relaxed) + chunk.len() as u64;
    if total > cfg.max_bytes_down {
        return Some(End::proxy(
            "bytes_limit",
            format!(
                "more than {} bytes received from the server",
                cfg.max_bytes_down
            ),
            close::POLICY,
        ));
    }
    let len = chunk.len();
    rec.record(Instant::now(), |t| Entry::Recv(t, chunk.to_vec()), len);
    rec.down.store(total, Relaxed);
    rec.st.metrics.add_down(len as u64);
    if let Err(e) = ws_tx.send(Message::Binary(chunk)).await {
        return Some(End::client(format!("sending to the browser failed: {e}")));
    }
    None
}

/// The session ends because one side speaks another protocol (see `sniff`).
fn not_telnet(reason: String) -> End {
    End::proxy("not_telnet", reason, close::POLICY)
}

fn ws_error(e: axum::Error) -> End {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => End::proxy(
            "message_too_big",
            format!("a websocket message of {size} bytes is over the {max_size} byte limit"),
            close::TOO_BIG,
        ),
        Some(WsError::Capacity(c)) => End::proxy(
            "message_too_big",
            format!("websocket limit: {c}"),
            close::TOO_BIG,
        ),
        _ => End::client(format!("websocket error: {inner}")),
    }
}
