//! Configuration of `iacscope serve`: defaults, a TOML or JSON file, environment variables
//! and flags (flags and `IACSCOPE_*` variables win over the file, the file over defaults).
//!
//! This module only parses and merges; what each limit does is enforced in `limits`,
//! `policy` and `relay`.

use crate::relay::policy::{normalize_name, Net, PortRange};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Everything `iacscope serve` can be told. Every field that is a limit or a policy says why
/// it exists: the proxy is meant to face the internet, so each one closes an abuse path.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the built web app (Trunk's `dist/`).
    pub static_dir: PathBuf,

    /// Allow loopback, private, link-local and other non-public targets. Off by default:
    /// with it on, anyone who can reach the proxy can reach the proxy host's own services
    /// and its local network (SSRF). For development and tests only.
    pub allow_private: bool,
    /// Extra origins allowed to open the websocket (`https://example.org`). A hostile page
    /// could otherwise use its visitors' browsers (and their IP addresses) as a relay.
    /// Allowed besides: `public_url`, a loopback address or `localhost` on the listening
    /// port, and requests without `Origin` (non-browser clients). The request's own `Host`
    /// is not evidence: a DNS-rebinding page on `attacker.example` sends
    /// `Host: attacker.example` too.
    pub allowed_origins: Vec<String>,
    /// Accept the websocket from any origin. Off by default, for the reason above.
    pub any_origin: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Anyone else could forge the
    /// header and dodge the per-client limits.
    pub trusted_proxies: Vec<Net>,
    /// Host names (exact, or `*.example.org`) whose addresses may be non-public: an operator
    /// exception to the built-in address denial. Operator deny lists still apply.
    pub allow_hosts: Vec<String>,
    /// Host names (exact, or `*.example.org`) never to connect to.
    pub deny_hosts: Vec<String>,
    /// Networks allowed although the built-in policy denies them (say, one lab subnet).
    pub allow_nets: Vec<Net>,
    /// Networks never to connect to, on top of the built-in denial.
    pub deny_nets: Vec<Net>,
    /// Ports allowed although they belong to another service (SSH, SMTP, HTTP, ...).
    pub allow_ports: Vec<PortRange>,
    /// Ports never to connect to, on top of the built-in list.
    pub deny_ports: Vec<PortRange>,
    /// Static name resolutions consulted before DNS (`NAME=IP[,IP]`, like curl's
    /// `--resolve`). A name with no address is answered as not found. The addresses are
    /// checked like any DNS answer.
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
    /// Extra trust anchors (a PEM file) for `tls=1`, on top of the Mozilla roots.
    pub tls_roots: Option<PathBuf>,

    /// Concurrent sessions in all. Each holds two sockets and a task; this caps the proxy's
    /// memory and file descriptors.
    pub max_sessions: usize,
    /// Concurrent sessions per client IP (IPv6 clients count per /64), so that one client
    /// cannot take every slot.
    pub max_sessions_per_ip: usize,
    /// New sessions per client IP per minute (a token bucket), so that one client cannot
    /// use the proxy to scan or hammer servers by opening and closing sessions.
    pub max_new_sessions_per_ip_per_minute: u32,
    /// Concurrent sessions to one target address, so that the proxy cannot be used to flood
    /// one server with connections.
    pub max_sessions_per_target: usize,
    /// Concurrent sessions from one client IP (IPv6: /64) to one target address. Without it
    /// a few clients could hold every slot of a shared host (a MUD server with many ports)
    /// and lock everyone else out of it. Unset: a quarter of `max_sessions_per_target`, at
    /// least 1 ([`Config::per_ip_per_target`]).
    pub max_sessions_per_ip_per_target: Option<usize>,
    /// When every slot of a target is taken, the session idle the longest gives its slot to
    /// a newcomer if it has been idle at least this long (it closes with `idle_yield`). An
    /// abandoned tab would otherwise keep a slot until `idle_timeout`; a session in use
    /// within this time is never closed for someone else.
    #[serde(with = "dur")]
    pub yield_idle_after: Duration,
    /// Time for DNS, TCP connect and TLS handshake together. A target that never answers
    /// would otherwise hold a session slot for as long as the browser waits.
    #[serde(with = "dur")]
    pub connect_timeout: Duration,
    /// A session with no bytes either way for this long is closed, so abandoned tabs do not
    /// hold slots forever.
    #[serde(with = "dur")]
    pub idle_timeout: Duration,
    /// Longest session, active or not: bounds what any one session can cost.
    #[serde(with = "dur")]
    pub max_session_duration: Duration,
    /// Bytes from the browser to the server per session. Telnet input is typing; a large
    /// upload means the proxy is being used to push data at someone.
    pub max_bytes_up: u64,
    /// Bytes from the server to the browser per session, so one session cannot turn the
    /// proxy into a bulk download relay.
    pub max_bytes_down: u64,
    /// Largest websocket message accepted from the browser (the library default is
    /// 64 MiB, which a client could make the proxy buffer).
    pub max_message_size: usize,
    /// Largest websocket frame accepted from the browser.
    pub max_frame_size: usize,
    /// Time a client has to send its HTTP request headers (the websocket handshake), so
    /// slow-loris connections do not pile up.
    #[serde(with = "dur")]
    pub handshake_timeout: Duration,
    /// Time from a request's headers to its response, the body included: a client that
    /// sends its body a byte every few seconds is answered `408` when it runs out, instead
    /// of holding a connection forever.
    #[serde(with = "dur")]
    pub request_timeout: Duration,
    /// Longest life of an HTTP connection (keep-alive included; a websocket leaves this
    /// count at its upgrade and is bounded by the session limits): then it is closed
    /// gracefully, and 5 s later for good. A client that stops reading a response holds
    /// its file descriptor no longer than this.
    #[serde(with = "dur")]
    pub max_connection_age: Duration,
    /// HTTP connections open at once, from everyone. Each holds a file descriptor; past the
    /// limit new ones get a one-line `503` and are closed at once, so slow clients cannot
    /// run the process out of descriptors (which would stop it serving anyone).
    pub max_connections: usize,
    /// HTTP connections open at once from one address (IPv6: one /64), so that a few
    /// addresses cannot take every connection. Connections from a `trusted_proxies` peer
    /// count only against `max_connections` (the addresses behind it are not known yet).
    pub max_connections_per_ip: usize,
    /// On shutdown, how long sessions get to receive their close frame before the server
    /// stops anyway.
    #[serde(with = "dur")]
    pub shutdown_grace: Duration,
    /// How long a closed session's transcript stays fetchable (for a permalink to save it).
    #[serde(with = "dur")]
    pub transcript_retention: Duration,
    /// Memory one session's transcript may take, counting what entries really cost
    /// (payload, entry table, heap blocks: `Transcript::cost`), not just payload, so a
    /// flood of one-byte messages is bounded like one big one. Past it the relay goes on and
    /// the transcript is marked truncated (and can no longer be saved).
    pub transcript_max_bytes: usize,
    /// Closed transcripts kept at once (oldest dropped first).
    pub transcripts_max_stored: usize,
    /// Memory of closed transcripts kept at once, counted as above (oldest dropped first).
    pub transcripts_max_total_bytes: usize,

    /// Directory of the permalink database (`iacscope.db`, created on first run).
    pub data_dir: PathBuf,
    /// Saves per client IP per minute (a token bucket): each save replays a scan and writes
    /// a synced row, so one client must not be able to fill the disk or burn the CPU.
    pub max_saves_per_ip_per_minute: u32,
    /// Largest transcript text a save stores. Larger sessions (long interactive use, bulk
    /// output) are refused: permalinks are for scans, and every row is kept forever.
    pub max_saved_transcript_bytes: usize,
    /// The live embed (`/embed?host=&port=`) and the badge show a stored scan younger than
    /// this; an older (or no) result starts one server-side scan, within the limits above.
    #[serde(with = "dur")]
    pub embed_max_age: Duration,
    /// The public origin (`https://iacscope.example.org`): the only source of the absolute
    /// URLs in oEmbed answers and page meta tags, and an origin allowed to open the
    /// websocket. A request's `Host` header is never used for either (anyone can forge it,
    /// and a DNS-rebinding page makes it its own). Unset, absolute URLs use the listening
    /// address (`http://127.0.0.1:8080`; `localhost` for a wildcard address).
    pub public_url: Option<String>,
    /// PostgreSQL URL (`postgres://user@host/db`) of a store shared by several instances;
    /// unset: SQLite in `data_dir`. Never logged (it may hold a password).
    pub database_url: Option<String>,
    /// Stored scans older than this are deleted (at start-up and every hour); unset (or
    /// `0`): kept forever. Bounds the store's size on a busy public instance.
    #[serde(with = "opt_dur")]
    pub scan_retention: Option<Duration>,
    /// Scheduled rescans of every known server (the `[crawl]` section; off by default).
    pub crawl: crate::directory::crawl::schedule::ScheduleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            static_dir: PathBuf::from("dist"),
            allow_private: false,
            allowed_origins: Vec::new(),
            any_origin: false,
            trusted_proxies: Vec::new(),
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
            allow_nets: Vec::new(),
            deny_nets: Vec::new(),
            allow_ports: Vec::new(),
            deny_ports: Vec::new(),
            resolve: BTreeMap::new(),
            tls_roots: None,
            max_sessions: 1024,
            max_sessions_per_ip: 8,
            max_new_sessions_per_ip_per_minute: 30,
            max_sessions_per_target: 32,
            max_sessions_per_ip_per_target: None,
            yield_idle_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30 * 60),
            max_session_duration: Duration::from_secs(8 * 3600),
            max_bytes_up: 4 * 1024 * 1024,
            max_bytes_down: 256 * 1024 * 1024,
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(300),
            max_connections: 4096,
            max_connections_per_ip: 64,
            shutdown_grace: Duration::from_secs(5),
            transcript_retention: Duration::from_secs(15 * 60),
            transcript_max_bytes: 1024 * 1024,
            transcripts_max_stored: 1000,
            transcripts_max_total_bytes: 128 * 1024 * 1024,
            data_dir: PathBuf::from("data"),
            max_saves_per_ip_per_minute: 6,
            max_saved_transcript_bytes: 1024 * 1024,
            embed_max_age: Duration::from_secs(3600),
            public_url: None,
            database_url: None,
            scan_retention: None,
            crawl: Default::default(),
        }
    }
}

impl Config {
    /// The effective `max_sessions_per_ip_per_target`: as set, or a quarter of
    /// `max_sessions_per_target` (at least 1), so that at least four clients share a target.
    pub fn per_ip_per_target(&self) -> usize {
        self.max_sessions_per_ip_per_target
            .unwrap_or((self.max_sessions_per_target / 4).max(1))
    }

    /// Reads a config file: `.json` as JSON, anything else as TOML.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            serde_json::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
        } else {
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
        }
    }
}

/// A duration written `250ms`, `10s`, `30m`, `8h`, `1d`, or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (try 10s, 500ms, 30m, 2h)"))?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            _ => return Err(format!("`{s}`: unknown unit (use ms, s, m, h or d)")),
        };
        Ok(Dur(d))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

/// A `--resolve NAME=IP[,IP]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveEntry {
    /// The name, lower case, without a trailing dot.
    pub name: String,
    /// Its addresses (empty: answered as not found).
    pub addrs: Vec<IpAddr>,
}

impl FromStr for ResolveEntry {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, ips) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected NAME=IP[,IP]"))?;
        let addrs = ips
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .map_err(|_| format!("`{p}` is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ResolveEntry {
            name: normalize_name(name),
            addrs,
        })
    }
}

/// Serde for durations: a string like `10s` or a number of seconds.
mod dur {
    use super::Dur;
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(s) => s
                .parse::<Dur>()
                .map(|d| d.0)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Serde for an optional duration, where `0` (any unit) means unset.
pub(crate) mod opt_dur {
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::dur::deserialize(d).map(super::retention)
    }
}

/// A retention duration as configured: `0` keeps forever.
pub fn retention(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The address `iacscope serve` listens on by default.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::ServeArgs;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("parse")
            .serve
            .to_config()
            .expect("config")
    }

    #[test]
    fn store_settings_from_file_and_flags() {
        let c = parse(&[]);
        assert_eq!(c.scan_retention, None, "kept forever by default");
        assert_eq!(c.database_url, None, "SQLite by default");

        let path =
            std::env::temp_dir().join(format!("iacscope-store-cfg-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "scan_retention = \"2h\"\ndatabase_url = \"postgres://u@db.test/iacscope\"\n",
        )
        .expect("write config");
        let file = path.to_str().expect("utf-8 path");
        let c = parse(&["--config", file]);
        assert_eq!(c.scan_retention, Some(Duration::from_secs(7200)));
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://u@db.test/iacscope")
        );

        let c = parse(&[
            "--config",
            file,
            "--scan-retention",
            "30d",
            "--database-url",
            "postgres://other/db",
        ]);
        assert_eq!(c.scan_retention, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(c.database_url.as_deref(), Some("postgres://other/db"));
        let c = parse(&["--config", file, "--scan-retention", "0"]);
        assert_eq!(
            c.scan_retention, None,
            "0 on the command line keeps forever"
        );
        let _ = std::fs::remove_file(&path);

        let json =
            std::env::temp_dir().join(format!("iacscope-store-cfg-{}.json", std::process::id()));
        std::fs::write(&json, "{\"scan_retention\": 0}").expect("write");
        let c = Config::from_file(&json).expect("json config");
        assert_eq!(c.scan_retention, None);
        std::fs::write(&json, "{\"scan_retention\": \"3 weeks\"}").expect("write");
        let err = Config::from_file(&json).expect_err("bad duration");
        let _ = std::fs::remove_file(&json);
        assert!(err.contains("3 weeks"), "{err}");

        let err = Cli::try_parse_from(["serve", "--scan-retention", "soon"])
            .expect_err("bad flag")
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn crawl_schedule_from_file_and_flags() {
        let c = parse(&[]);
        assert_eq!(c.crawl.every, None, "off by default");
        let path =
            std::env::temp_dir().join(format!("iacscope-crawl-cfg-{}.toml", std::process::id()));
        assert_eq!(
            c.crawl.keep_history, None,
            "history kept for ever by default"
        );
        std::fs::write(
            &path,
            "[crawl]\nevery = \"6h\"\nconcurrency = 8\nkeep_history = \"365d\"\n",
        )
        .expect("write");
        let file = path.to_str().expect("path");
        let c = parse(&["--config", file]);
        assert_eq!(c.crawl.every, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            c.crawl.keep_history,
            Some(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(c.crawl.concurrency, 8);
        let c = parse(&["--config", file, "--crawl-every", "0"]);
        assert_eq!(c.crawl.every, None, "0 on the command line turns it off");
        let c = parse(&["--crawl-every", "30m"]);
        assert_eq!(c.crawl.every, Some(Duration::from_secs(1800)));
        let c = parse(&["--config", file, "--keep-history", "0"]);
        assert_eq!(
            c.crawl.keep_history, None,
            "0 on the command line keeps all"
        );
        let c = parse(&["--keep-history", "30d"]);
        assert_eq!(c.crawl.keep_history, Some(Duration::from_secs(30 * 86_400)));
        let err = Cli::try_parse_from(["serve", "--keep-history", "2h"])
            .expect("parse")
            .serve
            .to_config()
            .expect_err("under a day");
        assert!(err.contains("keep_history"), "{err}");
        std::fs::write(&path, "[crawl]\nevery = \"6h\"\nconcurrency = 0\n").expect("write");
        let mut argv = vec!["serve", "--config", file];
        argv.truncate(3);
        let err = Cli::try_parse_from(argv)
            .expect("parse")
            .serve
            .to_config()
            .expect_err("concurrency 0");
        assert!(err.contains("concurrency"), "{err}");
        std::fs::write(&path, "[crawl]\nsometimes = true\n").expect("write");
        assert!(
            Config::from_file(&path).is_err(),
            "unknown keys are refused"
        );
        let _ = std::fs::remove_file(&path);
    }
}
