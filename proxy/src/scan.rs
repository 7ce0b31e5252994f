//! `iacscope scan`: a thin tokio driver that connects (TCP or TLS), pumps bytes and timers
//! through the engine's [`Scanner`], then prints and saves the record. Telnet itself is the
//! engine's business; this file only does I/O, clocks and presentation.

use crate::escape;
use crate::relay::tls::TlsInfo;
use iacscope_shared::mssp_check;
use iacscope_shared::pyjson::{self, Value};
use iacscope_shared::record::{self, SessionInfo};
use iacscope_shared::telopt::TelOpt;
use iacscope_shared::{Event, EventKind, Phase, ScanConfig, ScanType, Scanner, Timestamp};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Exit status: the name did not resolve (sysexits `EX_NOHOST`).
pub const EXIT_DNS: u8 = 68;
/// Exit status: the connection was refused or unreachable (`EX_UNAVAILABLE`).
pub const EXIT_REFUSED: u8 = 69;
/// Exit status: the connect timed out (`EX_TEMPFAIL`).
pub const EXIT_TIMEOUT: u8 = 75;
/// Exit status: the TLS handshake or certificate check failed (`EX_PROTOCOL`).
pub const EXIT_TLS: u8 = 76;
/// Exit status: the record could not be written (`EX_IOERR`).
pub const EXIT_IO: u8 = 74;
/// Exit status: bad arguments (`EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// A scan that lasts longer than this is cut off (the phases add up to well under a
/// minute; this only guards against an engine bug keeping the process alive).
pub const MAX_SCAN_DURATION: Duration = Duration::from_secs(120);

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 64 * 1024;

/// Arguments of `iacscope scan` (named like telnetlib3-fingerprint's where they overlap).
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Host name or address.
    pub host: String,
    /// Port.
    #[arg(default_value_t = 23)]
    pub port: u16,
    /// quick (CORE + MUD + EXTENDED options) or full (adds 32 legacy options).
    #[arg(long, default_value = "quick", value_parser = ["quick", "full"])]
    pub scan_type: String,
    /// Initial session encoding; any value but ascii is "explicit".
    #[arg(long, default_value = "ascii")]
    pub encoding: String,
    /// Terminal type sent for TTYPE.
    #[arg(long, default_value = "VT100")]
    pub ttype: String,
    /// Seconds of silence that end a banner read.
    #[arg(long, default_value_t = 2.0)]
    pub banner_quiet_time: f64,
    /// Longest a banner read lasts, in seconds.
    #[arg(long, default_value_t = 8.0)]
    pub banner_max_wait: f64,
    /// Largest chunk one banner read takes.
    #[arg(long, default_value_t = 65536)]
    pub banner_max_bytes: usize,
    /// Seconds after the shell starts to wait for promised MSSP data.
    #[arg(long, default_value_t = 5.0)]
    pub mssp_wait: f64,
    /// TCP (and TLS) connect timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Extra NEW_ENVIRON variable the client may send (KEY=VALUE; repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub send_env: Vec<String>,
    /// Options to always offer (names or numbers, comma lists; repeatable).
    #[arg(long)]
    pub always_will: Vec<String>,
    /// Options to always request.
    #[arg(long)]
    pub always_do: Vec<String>,
    /// Options to always refuse to perform.
    #[arg(long)]
    pub always_wont: Vec<String>,
    /// Options to always refuse to let the server perform.
    #[arg(long)]
    pub always_dont: Vec<String>,
    /// Write the record to this file only.
    #[arg(long, value_name = "PATH")]
    pub save_json: Option<PathBuf>,
    /// Save into telnetlib3's layout `<dir>/server/<fingerprint>/<session>.json` (also
    /// `$TELNETLIB3_DATA_DIR`).
    #[arg(long, value_name = "DIR", env = "TELNETLIB3_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Connect with TLS (MCCP is then refused, as telnetlib3 does).
    #[arg(long, alias = "ssl")]
    pub tls: bool,
    /// With --tls: do not verify the certificate.
    #[arg(long, alias = "ssl-no-verify")]
    pub tls_no_verify: bool,
    /// Print the record as JSON (telnetlib3's saved form) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Print the colour-coded negotiation timeline.
    #[arg(long)]
    pub timeline: bool,
    /// Write the session transcript (replayable) to this file.
    #[arg(long, value_name = "PATH")]
    pub save_transcript: Option<PathBuf>,
    /// Print nothing on success (exit status and files only).
    #[arg(long)]
    pub silent: bool,
    /// Never colour the output.
    #[arg(long)]
    pub no_color: bool,
}

/// Why a scan could not run.
#[derive(Debug)]
pub enum ScanError {
    /// Bad arguments.
    Usage(String),
    /// The name did not resolve.
    Dns(String),
    /// Refused or unreachable.
    Refused(String),
    /// Connect timed out.
    Timeout(String),
    /// TLS failed.
    Tls(String),
    /// Writing the record failed.
    Io(String),
}

impl ScanError {
    fn exit(&self) -> u8 {
        match self {
            ScanError::Usage(_) => EXIT_USAGE,
            ScanError::Dns(_) => EXIT_DNS,
            ScanError::Refused(_) => EXIT_REFUSED,
            ScanError::Timeout(_) => EXIT_TIMEOUT,
            ScanError::Tls(_) => EXIT_TLS,
            ScanError::Io(_) => EXIT_IO,
        }
    }
    fn message(&self) -> &str {
        match self {
            ScanError::Usage(m)
            | ScanError::Dns(m)
            | ScanError::Refused(m)
            | ScanError::Timeout(m)
            | ScanError::Tls(m)
            | ScanError::Io(m) => m,
        }
    }
}

/// Runs `iacscope scan`.
pub fn main(args: ScanArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", e.message());
            ExitCode::from(e.exit())
        }
    }
}

fn parse_options(lists: &[String]) -> Result<Vec<TelOpt>, ScanError> {
    let mut out = Vec::new();
    for item in lists.iter().flat_map(|s| s.split(',')) {
        if item.trim().is_empty() {
            continue;
        }
        out.push(
            TelOpt::parse(item)
                .ok_or_else(|| ScanError::Usage(format!("unknown telnet option {item:?}")))?,
        );
    }
    Ok(out)
}

/// The engine configuration for these arguments.
pub fn config_from_args(args: &ScanArgs) -> Result<ScanConfig, ScanError> {
    let mut cfg = ScanConfig {
        scan_type: ScanType::parse(&args.scan_type)
            .ok_or_else(|| ScanError::Usage("--scan-type must be quick or full".into()))?,
        encoding: args.encoding.clone(),
        ttype: args.ttype.clone(),
        banner_quiet_time: iacscope_shared::Micros::from_secs_f64(args.banner_quiet_time),
        banner_max_wait: iacscope_shared::Micros::from_secs_f64(args.banner_max_wait),
        banner_max_bytes: args.banner_max_bytes.max(1),
        mssp_wait: iacscope_shared::Micros::from_secs_f64(args.mssp_wait),
        tls: args.tls,
        colorterm: std::env::var("COLORTERM").unwrap_or_default(),
        ..ScanConfig::default()
    };
    for kv in &args.send_env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ScanError::Usage(format!("--send-env wants KEY=VALUE, got {kv:?}")))?;
        cfg.send_env.push((k.to_owned(), v.to_owned()));
    }
    cfg.always_will = parse_options(&args.always_will)?;
    cfg.always_do = parse_options(&args.always_do)?;
    cfg.always_wont = parse_options(&args.always_wont)?;
    cfg.always_dont = parse_options(&args.always_dont)?;
    Ok(cfg)
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(
    args: &ScanArgs,
) -> Result<(Box<dyn Stream>, SocketAddr, Option<TlsInfo>), ScanError> {
    let timeout = Duration::from_secs_f64(args.connect_timeout.clamp(0.1, 600.0));
    let target = format!("{}:{}", host_for_connect(&args.host), args.port);
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(target.as_str())).await {
            Err(_) => {
                return Err(ScanError::Timeout(format!(
                    "looking up {} took longer than {:.1}s",
                    args.host,
                    timeout.as_secs_f64()
                )))
            }
            Ok(Err(e)) => {
                return Err(ScanError::Dns(format!(
                    "cannot resolve {:?}: {e}",
                    args.host
                )))
            }
            Ok(Ok(a)) => a.collect(),
        };
    if addrs.is_empty() {
        return Err(ScanError::Dns(format!("{:?} has no addresses", args.host)));
    }
    let mut last_err = None;
    let mut stream = None;
    let started = Instant::now();
    for addr in &addrs {
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, *addr));
                break;
            }
            Ok(Err(e)) => last_err = Some(ScanError::Refused(format!("{addr}: {e}"))),
            Err(_) => {
                last_err = Some(ScanError::Timeout(format!(
                    "connecting to {addr} took longer than {:.1}s",
                    timeout.as_secs_f64()
                )))
            }
        }
    }
    let Some((tcp, addr)) = stream else {
        return Err(last_err.unwrap_or_else(|| ScanError::Refused("no address worked".into())));
    };
    let _ = tcp.set_nodelay(true);
    if !args.tls {
        return Ok((Box::new(tcp), addr, None));
    }
    // The proxy's TLS client: webpki roots (or any certificate), and the same verdict.
    let tls = crate::relay::tls::Tls::new(None).map_err(ScanError::Tls)?;
    let host = crate::relay::policy::parse_host(&args.host).map_err(|e| {
        ScanError::Tls(format!(
            "{:?} is not a valid TLS name: {}",
            args.host, e.message
        ))
    })?;
    let left = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, tls.connect(tcp, &host, args.tls_no_verify)).await {
        Ok(Ok((s, info))) => Ok((Box::new(s), addr, Some(info))),
        Ok(Err(e)) => Err(ScanError::Tls(format!(
            "{e}{}",
            if args.tls_no_verify {
                ""
            } else {
                " (iacscope scan --tls-no-verify)"
            }
        ))),
        Err(_) => Err(ScanError::Timeout(format!(
            "TLS handshake with {addr} took longer than {:.1}s",
            timeout.as_secs_f64()
        ))),
    }
}

/// `[::1]` → `::1` for lookups; other hosts unchanged.
fn host_for_connect(host: &str) -> String {
    let h = host.trim();
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_owned()
    }
}

/// A finished scan.
pub struct Finished {
    /// The engine at the end.
    pub scanner: Scanner,
    /// The record's session entry.
    pub session: SessionInfo,
    /// Wall time from connect to end.
    pub wall: Duration,
    /// The TLS session and certificate verdict (`None` for plain telnet).
    pub tls: Option<TlsInfo>,
    /// What one TLS handshake with each port the MSSP names as `SSL`/`TLS` found.
    pub tls_claims: Vec<String>,
}

/// One TLS handshake with `addr`'s `port` (no scan), as a line for the summary.
async fn check_tls_claim(host: &str, ip: std::net::IpAddr, var: &str, port: u16) -> String {
    let head = format!("MSSP {var} claims TLS on port {port}:");
    let attempt = async {
        let tcp = TcpStream::connect((ip, port))
            .await
            .map_err(|e| format!("cannot connect ({})", e.kind()))?;
        let tls = crate::relay::tls::Tls::new(None)?;
        let h = crate::relay::policy::parse_host(host).map_err(|r| r.message)?;
        tls.connect(tcp, &h, true).await.map(|(_, info)| info)
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(info)) => format!(
            "{head} holds ({}: {})",
            info.verdict.as_str(),
            info.verdict_text
        ),
        Ok(Err(why)) => format!("{head} does not hold: {why}"),
        Err(_) => format!("{head} does not hold: no handshake within 10 s"),
    }
}

/// Drives one scan over a connected stream. `on_event` sees each timeline event as it
/// happens.
pub async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    cfg: ScanConfig,
    mut on_event: impl FnMut(&Event),
) -> (Scanner, Duration) {
    let start = Instant::now();
    let now = |start: Instant| Timestamp(start.elapsed().as_micros() as u64);
    let mut scanner = Scanner::new(cfg, Timestamp(0));
    let mut buf = vec![0u8; READ_BUFFER];
    let mut eof = false;
    let mut write_failed = false;
    loop {
        while let Some(bytes) = scanner.poll_transmit() {
            if !write_failed && stream.write_all(&bytes).await.is_err() {
                write_failed = true;
            }
        }
        while let Some(ev) = scanner.poll_event() {
            on_event(&ev);
        }
        if scanner.is_done() || start.elapsed() > MAX_SCAN_DURATION {
            break;
        }
        if let Some(t) = scanner.poll_timeout() {
            if t <= now(start) {
                scanner.handle_timeout(now(start));
                continue;
            }
        }
        let deadline = scanner
            .poll_timeout()
            .map(|t| start + Duration::from_micros(t.0))
            .unwrap_or_else(|| start + MAX_SCAN_DURATION);
        let deadline = tokio::time::Instant::from_std(deadline);
        if eof {
            tokio::time::sleep_until(deadline).await;
            scanner.handle_timeout(now(start));
            continue;
        }
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    eof = true;
                    scanner.handle_eof(now(start));
                }
                Ok(n) => scanner.handle_input(now(start), &buf[..n]),
            },
            _ = tokio::time::sleep_until(deadline) => scanner.handle_timeout(now(start)),
        }
    }
    let _ = stream.shutdown().await;
    (scanner, start.elapsed())
}

async fn run(args: &ScanArgs) -> Result<(), ScanError> {
    let cfg = config_from_args(args)?;
    let color = !args.no_color && std::env::var_os("NO_COLOR").is_none() && is_tty();
    let (mut stream, addr, tls) = connect(args).await?;
    let live_timeline = args.timeline && !args.json && !args.silent;
    let (scanner, wall) = drive(&mut stream, cfg, |ev| {
        if live_timeline {
            println!("{}", paint_event(ev, color));
        }
    })
    .await;
    let session = SessionInfo {
        host: args.host.clone(),
        ip: addr.ip().to_string(),
        port: args.port,
        connected: record::isoformat_utc(unix_micros()),
    };
    // A port the MSSP says speaks TLS is tried once (a handshake, no scan), to the address
    // that was scanned.
    let mut tls_claims = Vec::new();
    if !args.json && !args.silent {
        for (var, port) in mssp_check::tls_ports(&scanner.outcome().session_data) {
            tls_claims.push(check_tls_claim(&args.host, addr.ip(), &var, port).await);
        }
    }
    let finished = Finished {
        scanner,
        session,
        wall,
        tls,
        tls_claims,
    };
    let rec = finished.scanner.outcome().record(&finished.session);
    save(args, &finished, &rec)?;
    if let Some(p) = &args.save_transcript {
        let mut t = finished.scanner.transcript().clone();
        t.set_meta("host", &finished.session.host);
        t.set_meta("ip", &finished.session.ip);
        t.set_meta("port", finished.session.port.to_string());
        t.set_meta("tls", if args.tls { "1" } else { "0" });
        write_file(p, t.to_text().as_bytes())?;
    }
    if args.silent {
        return Ok(());
    }
    if args.json {
        println!("{}", pyjson::to_pretty(&rec));
    } else {
        print!("{}", summary(&finished, &rec, color));
    }
    Ok(())
}

fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ScanError> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ScanError::Io(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| ScanError::Io(format!("cannot write {}: {e}", path.display())))
}

/// telnetlib3's save rules (spec §6): `--save-json` writes one file; a data directory gets
/// `server/<fingerprint>/<session>.json`, merged into an existing file.
fn save(args: &ScanArgs, f: &Finished, rec: &Value) -> Result<(), ScanError> {
    if let Some(p) = &args.save_json {
        return write_file(p, pyjson::to_pretty(rec).as_bytes());
    }
    let Some(dir) = &args.data_dir else {
        return Ok(());
    };
    let fp = &f.scanner.outcome().fingerprint;
    let sh = record::session_hash(&f.session.host, &f.session.ip, f.session.port);
    let path = dir.join("server").join(fp).join(format!("{sh}.json"));
    let merged = match std::fs::read_to_string(&path) {
        Ok(text) => match pyjson::parse(&text) {
            Ok(old) => record::merge_into_existing(old, rec),
            Err(_) => rec.clone(),
        },
        Err(_) => rec.clone(),
    };
    write_file(&path, pyjson::to_pretty(&merged).as_bytes())
}

const RESET: &str = "\x1b[0m";

fn paint(s: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{s}{RESET}")
    } else {
        s.to_owned()
    }
}

/// One timeline line, coloured by direction and verb.
pub fn paint_event(ev: &Event, color: bool) -> String {
    let line = ev.to_line();
    let code = match &ev.kind {
        EventKind::Negotiation { verb, .. } => match verb {
            iacscope_shared::telopt::Verb::Will => "32",
            iacscope_shared::telopt::Verb::Do => "36",
            iacscope_shared::telopt::Verb::Wont => "31",
            iacscope_shared::telopt::Verb::Dont => "35",
        },
        EventKind::Subnegotiation { .. } => "33",
        EventKind::Command { .. } => "34",
        EventKind::Data { .. } => "2",
        EventKind::PhaseStart { .. } | EventKind::PhaseEnd { .. } => "1",
        EventKind::ProbeResult { .. } => "37",
        EventKind::Violation { .. } => "1;31",
        EventKind::Closed => "1;33",
        _ => "0",
    };
    paint(&line, code, color)
}

fn list_of(v: &Value, key: &str) -> Vec<String> {
    v.as_dict()
        .and_then(|d| d.get(key))
        .and_then(|l| l.as_list())
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_pystr().map(|s| s.to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

/// The readable summary printed by default.
pub fn summary(f: &Finished, rec: &Value, color: bool) -> String {
    let o = f.scanner.outcome();
    let mut s = String::new();
    let title = format!("{}:{} ({})", f.session.host, f.session.port, f.session.ip);
    s += &format!("{}\n", paint(&title, "1", color));
    s += &format!(
        "  fingerprint  {}   scan {}   {:.2}s\n",
        paint(&o.fingerprint, "1;32", color),
        f.scanner.config().scan_type.as_str(),
        f.wall.as_secs_f64()
    );
    let fd = &o.fingerprint_data;
    for (label, key, code) in [
        ("offered", "offered-options", "32"),
        ("requested", "requested-options", "36"),
        ("refused", "refused-options", "31"),
        ("wrong-dir", "wrong-direction-offered", "33"),
        ("dir-refused", "directional-refusals", "35"),
        ("looped", "looped-negotiation", "33"),
    ] {
        let l = list_of(fd, key);
        if !l.is_empty() {
            s += &format!("  {label:<12} {}\n", paint(&l.join(" "), code, color));
        }
    }
    s += &format!("  encoding     {:?}\n", o.encoding);
    if let Some(t) = &f.tls {
        let code = if t.verified { "32" } else { "33" };
        s += &format!(
            "  TLS          {} {} · {}\n",
            t.protocol,
            t.cipher,
            paint(
                &format!(
                    "{}: {}",
                    t.verdict.as_str(),
                    escape::printable(&t.verdict_text)
                ),
                code,
                color
            )
        );
        s += &format!("    subject    {}\n", escape::printable(&t.subject));
        if !t.alt_names.is_empty() {
            s += &format!(
                "    names      {}\n",
                escape::printable(&t.alt_names.join(", "))
            );
        }
        s += &format!("    issuer     {}\n", escape::printable(&t.issuer));
        s += &format!("    valid      {} to {}\n", t.not_before, t.not_after);
    }
    if let Some(Value::Dict(m)) = o.session_data.as_dict().and_then(|d| d.get("mssp")) {
        s += "  MSSP\n";
        for (k, v) in m.iter().take(40) {
            let v = match v {
                Value::Str(p) => p.to_string_lossy(),
                Value::List(l) => l
                    .iter()
                    .filter_map(|x| x.as_pystr().map(|p| p.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => pyjson::to_canonical(other),
            };
            // Server text: control characters are shown escaped, never sent to the terminal.
            s += &format!(
                "    {:<14} {}\n",
                escape::printable(&k.to_string_lossy()),
                escape::printable(&v)
            );
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let findings = mssp_check::check_record(
        &o.fingerprint_data,
        &o.session_data,
        &f.session.host,
        f.session.port,
        now,
    );
    if !findings.is_empty() {
        let n = mssp_check::warnings(&findings);
        s += &format!(
            "  MSSP check   {n} warning{}\n",
            if n == 1 { "" } else { "s" }
        );
        for x in &findings {
            let code = if x.level == mssp_check::Level::Warning {
                "33"
            } else {
                "2"
            };
            let var = x.var.as_deref().unwrap_or_default();
            let line = format!("{:<7} {var:<14} {}", x.level.as_str(), x.text);
            s += &format!("    {}\n", paint(&escape::printable(&line), code, color));
        }
    }
    for line in &f.tls_claims {
        s += &format!("  {}\n", escape::printable(line));
    }
    let banner = iacscope_shared::ansi::render(&o.banner_before, &o.encoding).plain_text();
    let lines: Vec<&str> = banner.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        s += "  banner\n";
        for l in lines.iter().take(12) {
            s += &format!("    {}\n", l.chars().take(100).collect::<String>());
        }
        if lines.len() > 12 {
            s += &format!("    … {} more lines\n", lines.len() - 12);
        }
    }
    let _ = rec;
    let _ = Phase::Done;
    let _ = std::io::stdout().flush();
    s
}
