//! `iacscope serve`: the HTTP server that wires the two rooms together — the relay
//! ([`crate::relay`]: `/ws`) and the directory ([`crate::directory`]: permalinks, widgets,
//! badge) — and owns what both read: [`AppState`], [`Config`] and `metrics`.
//!
//! [`run`] takes a bound listener, a [`Config`] and a shutdown future, so tests bind
//! `127.0.0.1:0` and drive the real server. [`app`] builds the router. Submodules:
//! `config` (flags, env, file), `conn` (connection budgets), `origin` (websocket origins,
//! the public origin), `metrics` (Prometheus text), `web` (static files).
//! Telnet is interpreted by the engine in `iacscope-shared`, never here.

pub mod config;
pub mod conn;
pub mod metrics;
pub mod origin;
pub mod web;

use crate::directory::{db, livescan, save};
use crate::relay::session as relay;
use crate::relay::{limits, policy, store, tls};

pub use config::Config;

use axum::extract::{ConnectInfo, Path as UrlPath, Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use config::{Dur, ResolveEntry};
use hyper_util::rt::{TokioIo, TokioTimer};
use limits::{LimitConfig, Limits};
use policy::{Net, Policy, PortRange};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// Arguments of `iacscope serve`. Every option also reads an `IACSCOPE_*` variable; flags
/// and variables win over `--config`, which wins over the defaults.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "IACSCOPE_LISTEN", default_value_t = config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// A TOML (or `.json`) file with any of the settings below (snake_case keys).
    #[arg(long, env = "IACSCOPE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Everything else (boxed: the options are many and `Command` should stay small).
    #[command(flatten)]
    pub options: Box<ServeOptions>,
}

/// The settings of `iacscope serve` that are also config-file keys.
#[derive(Debug, Default, clap::Args)]
pub struct ServeOptions {
    /// Directory of the built web app.
    #[arg(long, env = "IACSCOPE_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Allow loopback and private targets (development and tests only: unsafe in public).
    #[arg(long, env = "IACSCOPE_ALLOW_PRIVATE")]
    pub allow_private: bool,
    /// Extra allowed websocket origin (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "IACSCOPE_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Accept websockets from any origin.
    #[arg(long, env = "IACSCOPE_ANY_ORIGIN")]
    pub any_origin: bool,
    /// Reverse proxy whose X-Forwarded-For is trusted (address or network, repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "IACSCOPE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<Net>,
    /// Host allowed to have non-public addresses (`name` or `*.suffix`, repeatable).
    #[arg(
        long = "allow-host",
        env = "IACSCOPE_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// Host never connected to (`name` or `*.suffix`, repeatable).
    #[arg(long = "deny-host", env = "IACSCOPE_DENY_HOSTS", value_delimiter = ',')]
    pub deny_hosts: Vec<String>,
    /// Network allowed although not public (repeatable).
    #[arg(long = "allow-net", env = "IACSCOPE_ALLOW_NETS", value_delimiter = ',')]
    pub allow_nets: Vec<Net>,
    /// Network never connected to (repeatable).
    #[arg(long = "deny-net", env = "IACSCOPE_DENY_NETS", value_delimiter = ',')]
    pub deny_nets: Vec<Net>,
    /// Port or range allowed although it belongs to another service (repeatable).
    #[arg(
        long = "allow-port",
        env = "IACSCOPE_ALLOW_PORTS",
        value_delimiter = ','
    )]
    pub allow_ports: Vec<PortRange>,
    /// Port or range never connected to (repeatable).
    #[arg(long = "deny-port", env = "IACSCOPE_DENY_PORTS", value_delimiter = ',')]
    pub deny_ports: Vec<PortRange>,
    /// Static resolution `NAME=IP[,IP]` consulted before DNS (repeatable).
    #[arg(long = "resolve", env = "IACSCOPE_RESOLVE", value_delimiter = ';')]
    pub resolve: Vec<ResolveEntry>,
    /// PEM file of extra trust anchors for tls=1.
    #[arg(long, env = "IACSCOPE_TLS_ROOTS")]
    pub tls_roots: Option<PathBuf>,
    /// Concurrent sessions in all.
    #[arg(long, env = "IACSCOPE_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,
    /// Concurrent sessions per client IP.
    #[arg(long, env = "IACSCOPE_MAX_SESSIONS_PER_IP")]
    pub max_sessions_per_ip: Option<usize>,
    /// New sessions per client IP per minute.
    #[arg(long, env = "IACSCOPE_MAX_NEW_SESSIONS_PER_IP_PER_MINUTE")]
    pub max_new_sessions_per_ip_per_minute: Option<u32>,
    /// Concurrent sessions per target address.
    #[arg(long, env = "IACSCOPE_MAX_SESSIONS_PER_TARGET")]
    pub max_sessions_per_target: Option<usize>,
    /// Concurrent sessions per client IP to one target address (default: a quarter of the
    /// per-target limit, at least 1).
    #[arg(long, env = "IACSCOPE_MAX_SESSIONS_PER_IP_PER_TARGET")]
    pub max_sessions_per_ip_per_target: Option<usize>,
    /// A session idle this long gives its slot to a newcomer when its target is full (`60s`).
    #[arg(long, env = "IACSCOPE_YIELD_IDLE_AFTER")]
    pub yield_idle_after: Option<Dur>,
    /// DNS + connect + TLS time limit (`10s`).
    #[arg(long, env = "IACSCOPE_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<Dur>,
    /// Close sessions idle this long (`30m`).
    #[arg(long, env = "IACSCOPE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<Dur>,
    /// Longest session (`8h`).
    #[arg(long, env = "IACSCOPE_MAX_SESSION_DURATION")]
    pub max_session_duration: Option<Dur>,
    /// Bytes browser to server per session.
    #[arg(long, env = "IACSCOPE_MAX_BYTES_UP")]
    pub max_bytes_up: Option<u64>,
    /// Bytes server to browser per session.
    #[arg(long, env = "IACSCOPE_MAX_BYTES_DOWN")]
    pub max_bytes_down: Option<u64>,
    /// Largest websocket message from the browser.
    #[arg(long, env = "IACSCOPE_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Largest websocket frame from the browser.
    #[arg(long, env = "IACSCOPE_MAX_FRAME_SIZE")]
    pub max_frame_size: Option<usize>,
    /// Time to send the HTTP request headers (`10s`).
    #[arg(long, env = "IACSCOPE_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: Option<Dur>,
    /// Time from request headers to response, body included (`30s`).
    #[arg(long, env = "IACSCOPE_REQUEST_TIMEOUT")]
    pub request_timeout: Option<Dur>,
    /// Longest life of an HTTP connection before a websocket upgrade (`5m`).
    #[arg(long, env = "IACSCOPE_MAX_CONNECTION_AGE")]
    pub max_connection_age: Option<Dur>,
    /// HTTP connections open at once.
    #[arg(long, env = "IACSCOPE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// HTTP connections open at once per client address.
    #[arg(long, env = "IACSCOPE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Time sessions get to close on shutdown (`5s`).
    #[arg(long, env = "IACSCOPE_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<Dur>,
    /// How long closed transcripts stay fetchable (`15m`).
    #[arg(long, env = "IACSCOPE_TRANSCRIPT_RETENTION")]
    pub transcript_retention: Option<Dur>,
    /// Bytes recorded per session transcript.
    #[arg(long, env = "IACSCOPE_TRANSCRIPT_MAX_BYTES")]
    pub transcript_max_bytes: Option<usize>,
    /// Directory of the permalink database `iacscope.db` (`./data`).
    #[arg(long, env = "IACSCOPE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Permalink saves per client IP per minute.
    #[arg(long, env = "IACSCOPE_MAX_SAVES_PER_IP_PER_MINUTE")]
    pub max_saves_per_ip_per_minute: Option<u32>,
    /// Largest transcript text a permalink stores (bytes).
    #[arg(long, env = "IACSCOPE_MAX_SAVED_TRANSCRIPT_BYTES")]
    pub max_saved_transcript_bytes: Option<usize>,
    /// PostgreSQL URL of a shared store (default: SQLite in the data directory).
    #[arg(long, env = "IACSCOPE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Delete stored scans older than this (`90d`; default and `0`: keep forever).
    #[arg(long, env = "IACSCOPE_SCAN_RETENTION")]
    pub scan_retention: Option<Dur>,
    /// Rescan every known server this often (`6h`), honouring MSSP `CRAWL DELAY`
    /// (default and `0`: never; also `every` in the config's `[crawl]` section).
    #[arg(long, env = "IACSCOPE_CRAWL_EVERY")]
    pub crawl_every: Option<Dur>,
    /// Delete crawl history points older than this (`365d`; at least `1d`; default and `0`:
    /// keep forever; also `keep_history` in the config's `[crawl]` section).
    #[arg(long, env = "IACSCOPE_KEEP_HISTORY")]
    pub keep_history: Option<Dur>,
    /// Closed transcripts kept.
    #[arg(long, env = "IACSCOPE_TRANSCRIPTS_MAX_STORED")]
    pub transcripts_max_stored: Option<usize>,
    /// Bytes of closed transcripts kept.
    #[arg(long, env = "IACSCOPE_TRANSCRIPTS_MAX_TOTAL_BYTES")]
    pub transcripts_max_total_bytes: Option<usize>,
    /// Age of a stored scan the live embed and the badge still show (`1h`).
    #[arg(long, env = "IACSCOPE_EMBED_MAX_AGE")]
    pub embed_max_age: Option<Dur>,
    /// This server's public origin (`https://iacscope.example.org`): the absolute URLs of
    /// oEmbed and page meta tags, and a websocket origin allowed. Set it whenever the proxy
    /// is reached by any name other than its listening address.
    #[arg(long, env = "IACSCOPE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl ServeArgs {
    /// The effective configuration: defaults, then the file, then flags and variables.
    pub fn to_config(&self) -> Result<Config, String> {
        let o = &self.options;
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = o.$f.clone() { c.$f = v; } )*};
        }
        macro_rules! set_dur {
            ($($f:ident),*) => {$( if let Some(v) = o.$f { c.$f = v.0; } )*};
        }
        macro_rules! set_list {
            ($($f:ident),*) => {$( if !o.$f.is_empty() { c.$f = o.$f.clone(); } )*};
        }
        set!(
            static_dir,
            max_sessions,
            max_sessions_per_ip,
            max_new_sessions_per_ip_per_minute,
            max_sessions_per_target,
            max_bytes_up,
            max_bytes_down,
            max_message_size,
            max_frame_size,
            transcript_max_bytes,
            transcripts_max_stored,
            transcripts_max_total_bytes,
            max_saves_per_ip_per_minute,
            max_saved_transcript_bytes,
            max_connections,
            max_connections_per_ip
        );
        set_dur!(
            connect_timeout,
            idle_timeout,
            yield_idle_after,
            max_session_duration,
            handshake_timeout,
            request_timeout,
            max_connection_age,
            shutdown_grace,
            transcript_retention,
            embed_max_age
        );
        set_list!(
            allowed_origins,
            trusted_proxies,
            allow_hosts,
            deny_hosts,
            allow_nets,
            deny_nets,
            allow_ports,
            deny_ports
        );
        if o.max_sessions_per_ip_per_target.is_some() {
            c.max_sessions_per_ip_per_target = o.max_sessions_per_ip_per_target;
        }
        if let Some(d) = &o.data_dir {
            c.data_dir = d.clone();
        }
        if o.public_url.is_some() {
            c.public_url = o.public_url.clone();
        }
        if o.database_url.is_some() {
            c.database_url = o.database_url.clone();
        }
        if let Some(d) = o.scan_retention {
            c.scan_retention = config::retention(d.0);
        }
        if let Some(d) = o.crawl_every {
            c.crawl.every = config::retention(d.0);
        }
        if let Some(d) = o.keep_history {
            c.crawl.keep_history = config::retention(d.0);
        }
        c.crawl.check()?;
        if o.tls_roots.is_some() {
            c.tls_roots = o.tls_roots.clone();
        }
        c.allow_private |= o.allow_private;
        c.any_origin |= o.any_origin;
        for r in &o.resolve {
            c.resolve.insert(r.name.clone(), r.addrs.clone());
        }
        Ok(c)
    }
}

/// Runs `iacscope serve` until SIGTERM or Ctrl-C.
pub fn main(args: ServeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iacscope serve: {e}");
            return ExitCode::from(2);
        }
    };
    if config.allow_private {
        tracing::warn!("--allow-private: loopback and private targets are reachable; do not expose this server");
    }
    let mut config = config;
    // Every connection and session holds descriptors: take what the hard limit allows, and
    // keep the connection budget inside it, so running out is a refusal and not a stall.
    if let Some(fds) = conn::raise_fd_limit() {
        let fit = conn::connections_that_fit(fds, config.max_sessions);
        if config.max_connections > fit {
            tracing::warn!(
                "max_connections {} lowered to {fit}: the open-file limit is {fds} and \
                 {} sessions need two descriptors each",
                config.max_connections,
                config.max_sessions
            );
            config.max_connections = fit;
        }
    }
    if config.public_url.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(
            "listening on {} without --public-url: absolute URLs (oEmbed, og:url) name this \
             address, and pages reached by another name cannot open the websocket",
            args.listen
        );
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iacscope serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("iacscope serve: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!("listening on http://{}", args.listen);
        match run(listener, config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iacscope serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// The database file's name inside `--data-dir`.
pub const DB_FILE: &str = db::SQLITE_FILE;

/// Shared state of a running server.
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub config: Config,
    /// The target policy built from it.
    pub policy: Policy,
    /// Admission limits.
    pub limits: Arc<Limits>,
    /// Counters.
    pub metrics: metrics::Metrics,
    /// Transcripts.
    pub store: store::Store,
    /// Saved scans (permalinks).
    pub db: Arc<db::Db>,
    /// Per-client save rate limit.
    pub saves: save::SaveLimiter,
    /// The last `/api/stats` answer (computed at most once a minute).
    pub stats: crate::directory::census::StatsCache,
    /// Server-side scans of the live embed and the badge.
    pub live: livescan::LiveScans,
    /// TLS client configurations.
    pub tls: tls::Tls,
    /// Cancelled when the server shuts down; sessions close with a reason.
    pub shutdown: CancellationToken,
    /// Tracks websocket sessions so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Open HTTP connections, in all and per address.
    pub connections: Arc<conn::Connections>,
    /// Which page origins may open the websocket.
    pub origins: origin::OriginPolicy,
    /// The address [`serve`] listens on (set when it starts).
    pub listen: std::sync::OnceLock<SocketAddr>,
    csp: HeaderValue,
}

impl AppState {
    /// Builds the state from a configuration.
    pub fn new(config: Config) -> Result<Arc<AppState>, String> {
        let policy = Policy {
            allow_private: config.allow_private,
            allow_hosts: config.allow_hosts.clone(),
            deny_hosts: config.deny_hosts.clone(),
            allow_nets: config.allow_nets.clone(),
            deny_nets: config.deny_nets.clone(),
            allow_ports: config.allow_ports.clone(),
            deny_ports: config.deny_ports.clone(),
        };
        let limits = Limits::new(LimitConfig {
            max_sessions: config.max_sessions,
            per_client: config.max_sessions_per_ip,
            per_minute: config.max_new_sessions_per_ip_per_minute,
            per_target: config.max_sessions_per_target,
            per_client_target: config.per_ip_per_target(),
            yield_after: config.yield_idle_after,
        });
        let tls = tls::Tls::new(config.tls_roots.as_deref())?;
        let store = store::Store::new(
            config.transcript_retention,
            config.transcripts_max_stored,
            config.transcripts_max_total_bytes,
        );
        let db = Arc::new(db::Db::connect(
            config.database_url.as_deref(),
            &config.data_dir,
        )?);
        let saves = save::SaveLimiter::new(config.max_saves_per_ip_per_minute);
        let csp = HeaderValue::from_str(&web::content_security_policy(&config.static_dir))
            .map_err(|e| format!("Content-Security-Policy: {e}"))?;
        if let Some(u) = &config.public_url {
            origin::Origin::parse_base(u).map_err(|e| format!("--public-url: {e}"))?;
        }
        let origins = origin::OriginPolicy::new(
            config.public_url.as_deref(),
            &config.allowed_origins,
            config.any_origin,
        )?;
        let connections =
            conn::Connections::new(config.max_connections, config.max_connections_per_ip);
        Ok(Arc::new(AppState {
            config,
            policy,
            limits,
            metrics: metrics::Metrics::default(),
            store,
            db,
            saves,
            stats: Default::default(),
            live: livescan::LiveScans::default(),
            tls,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            connections,
            origins,
            listen: std::sync::OnceLock::new(),
            csp,
        }))
    }

    /// The origin every absolute URL is built from: `public_url`, else the listening
    /// address. Never a request's `Host` header.
    pub fn public_origin(&self) -> String {
        origin::public_origin(
            self.config.public_url.as_deref(),
            self.listen.get().copied(),
        )
    }
}

/// The router: `/ws`, `/healthz`, `/metrics`, `/api/sessions/{id}/transcript`, the
/// directory's routes ([`crate::directory::router`]), and the web app for everything else. Needs
/// `ConnectInfo<SocketAddr>` (which [`run`] provides).
pub fn app(st: Arc<AppState>) -> Router {
    let csp = st.csp.clone();
    let api = Router::new()
        .route("/ws", get(ws_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_handler))
        .route("/api/sessions/{id}/transcript", get(transcript_handler))
        .merge(crate::directory::router())
        .with_state(st.clone());
    api.merge(web::router(&st.config.static_dir))
        .layer(axum::middleware::from_fn(web::cache_headers))
        .layer(CompressionLayer::new())
        // Widgets and badges bring their own (framable) policy.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

async fn metrics_handler(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn transcript_handler(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match st.store.text(&id, Instant::now()) {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no such session (or it has expired)\n",
        )
            .into_response(),
    }
}

async fn ws_handler(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<relay::WsParams>,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
    if let Err(why) = st
        .origins
        .check(origin, st.listen.get().map(SocketAddr::port))
    {
        st.metrics.refused("forbidden_origin");
        // Upgraded only to say why (a browser cannot read a refused handshake's body, and
        // the page should show the sentence); nothing is connected. Other clients get it
        // in the close frame.
        return ws.max_message_size(1024).max_frame_size(1024).on_upgrade(
            move |mut socket| async move {
                relay::send_error(&mut socket, "forbidden_origin", &why, relay::CLOSE_POLICY).await;
            },
        );
    }
    if st.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let client = client_ip(&st.config, peer.ip(), &headers);
    let admission = st.limits.admit(client, Instant::now());
    let token = st.sessions.token();
    let cfg = &st.config;
    let ws = ws
        .max_message_size(cfg.max_message_size)
        .max_frame_size(cfg.max_frame_size)
        // tungstenite reads at most this much per call and touches it all on the first
        // read: 16 KiB keeps an idle session small and a busy one at few syscalls.
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(cfg.max_message_size.max(64 * 1024) * 4);
    let shutdown = st.shutdown.clone();
    let st2 = st.clone();
    ws.on_upgrade(move |socket| relay::session(socket, st2, params, admission, shutdown, token))
}

/// The client address: the peer, or — when the peer is a trusted proxy — the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub(crate) fn client_ip(cfg: &Config, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: IpAddr| cfg.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        for part in value.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // A garbled header is not evidence of anything: count the proxy itself.
                Err(_) => return peer,
            }
        }
    }
    // Walk from the right: the last hop that is not one of ours is the client.
    match hops.iter().rev().find(|ip| !trusted(**ip)) {
        Some(ip) => *ip,
        None => hops.first().copied().unwrap_or(peer),
    }
}

/// The answer to a request that did not complete within `request_timeout` (its body did
/// not arrive in time, as a rule); the connection is closed after it.
fn request_timed_out(limit: Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, "close")],
        format!(
            "request_timeout: the request was not complete within {} s; send it again, \
             all at once\n",
            limit.as_secs()
        ),
    )
        .into_response()
}

/// Serves `listener` until `shutdown` resolves, then tells every session to close (they send
/// `closed` and a close frame with the reason), waits up to `shutdown_grace`, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let st = AppState::new(config)?;
    serve(listener, st, shutdown).await;
    Ok(())
}

/// [`run`] with a state built by the caller (tests use it to read the metrics).
pub async fn serve(listener: TcpListener, st: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let router = app(st.clone());
    if let Some(retention) = st.config.scan_retention {
        tokio::spawn(db::purge_task(
            st.db.clone(),
            db::Purged::Scans,
            retention,
            st.shutdown.clone(),
        ));
    }
    if let Some(keep) = st.config.crawl.keep_history {
        tokio::spawn(db::purge_task(
            st.db.clone(),
            db::Purged::History,
            keep,
            st.shutdown.clone(),
        ));
    }
    if st.config.crawl.every.is_some() {
        tokio::spawn(crate::directory::crawl::schedule::task(st.clone()));
    }
    if let Ok(addr) = listener.local_addr() {
        let _ = st.listen.set(addr);
    }
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared_peer = st
            .config
            .trusted_proxies
            .iter()
            .any(|n| n.contains(peer.ip()));
        let guard = match st.connections.admit(peer.ip(), shared_peer) {
            Ok(g) => g,
            Err(limit) => {
                st.metrics.refused(limit.label());
                // One write into a fresh socket's empty buffer, never a wait: a refused
                // client gets its sentence or nothing, and the descriptor goes at once.
                let _ = tcp.try_write(limit.response());
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let stop = st.shutdown.clone();
        let handshake_timeout = st.config.handshake_timeout;
        let request_timeout = st.config.request_timeout;
        let max_age = st.config.max_connection_age;
        connections.spawn(async move {
            let _guard = guard;
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let response = router.clone().oneshot(req.map(axum::body::Body::new));
                    // The handler reads the body: a body that drips is cut off here.
                    async move {
                        match tokio::time::timeout(request_timeout, response).await {
                            Ok(r) => r,
                            Err(_) => Ok(request_timed_out(request_timeout)),
                        }
                    }
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            // Ends at the upgrade for a websocket (the session then has its own limits).
            tokio::select! {
                _ = conn.as_mut() => {},
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
                () = tokio::time::sleep(max_age) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    drop(listener);
    st.shutdown.cancel();
    st.sessions.close();
    connections.close();
    let grace = st.config.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        st.sessions.wait().await;
        connections.wait().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn file_then_flags() {
        let path = std::env::temp_dir().join(format!("iacscope-cfg-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "max_sessions = 7\nidle_timeout = \"2m\"\nconnect_timeout = 3\n\
             deny_ports = [4000, \"5000-5010\"]\nallow_private = true\n\
             [resolve]\n\"mud.test\" = [\"192.0.2.1\"]\n",
        )
        .expect("write config");
        let cli = Cli::try_parse_from([
            "serve",
            "--config",
            path.to_str().expect("utf-8 path"),
            "--max-sessions",
            "9",
            "--deny-net",
            "10.0.0.0/8",
            "--resolve",
            "b.test=192.0.2.2,[2001:db8::1]",
        ])
        .expect("parse");
        let c = cli.serve.to_config().expect("config");
        let _ = std::fs::remove_file(&path);
        assert_eq!(c.max_sessions, 9, "flags win over the file");
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert_eq!(
            c.deny_ports,
            vec![PortRange(4000, 4000), PortRange(5000, 5010)]
        );
        assert!(c.allow_private);
        assert_eq!(c.deny_nets.len(), 1);
        assert_eq!(c.resolve.len(), 2);
        assert_eq!(c.max_sessions_per_ip, Config::default().max_sessions_per_ip);
        // The per-client share of a target follows the per-target limit unless set.
        assert_eq!(c.per_ip_per_target(), 8);
        assert_eq!(c.yield_idle_after, Duration::from_secs(60));
        let c = Cli::try_parse_from([
            "serve",
            "--max-sessions-per-target",
            "2",
            "--yield-idle-after",
            "5m",
        ])
        .expect("parse")
        .serve
        .to_config()
        .expect("config");
        assert_eq!(c.per_ip_per_target(), 1, "at least 1");
        assert_eq!(c.yield_idle_after, Duration::from_secs(300));
        let c = Cli::try_parse_from(["serve", "--max-sessions-per-ip-per-target", "3"])
            .expect("parse")
            .serve
            .to_config()
            .expect("config");
        assert_eq!(c.per_ip_per_target(), 3);

        let bad = std::env::temp_dir().join(format!("iacscope-bad-{}.json", std::process::id()));
        std::fs::write(&bad, "{\"max_sesions\": 1}").expect("write");
        let err = Config::from_file(&bad).expect_err("unknown key");
        let _ = std::fs::remove_file(&bad);
        assert!(err.contains("max_sesions"), "{err}");
    }

    #[test]
    fn forwarded_for() {
        let cfg = Config {
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
            ..Config::default()
        };
        let peer: IpAddr = "10.0.0.5".parse().expect("ip");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 5.6.7.8, 10.0.0.9"),
        );
        assert_eq!(
            client_ip(&cfg, peer, &h),
            "5.6.7.8".parse::<IpAddr>().expect("ip")
        );
        let outsider: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(
            client_ip(&cfg, outsider, &h),
            outsider,
            "untrusted peers cannot forward"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(&cfg, peer, &h), peer);
    }
}
