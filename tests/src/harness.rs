//! Blocking helpers for tests and the benchmark: fake servers on a background thread, process guards, tool lookup, record comparison.
//!
//! Nothing here talks to anything but 127.0.0.1. Every process started through [`ChildGuard`]
//! is killed when the guard drops, and every wait has a deadline.

use crate::script::Scenario;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scenario served on `127.0.0.1:0` by a tokio runtime on its own thread; stops on drop.
pub struct FakeServer {
    addr: SocketAddr,
    capture: Option<crate::server::Captured>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Binds 127.0.0.1:0 and starts serving `scenario`.
    pub fn start(scenario: Scenario) -> Result<Self> {
        Self::start_with(scenario, None)
    }

    /// As [`FakeServer::start`], also keeping what each connection sends us (see
    /// [`FakeServer::received`]).
    pub fn start_capturing(scenario: Scenario) -> Result<Self> {
        Self::start_with(scenario, Some(Default::default()))
    }

    /// As [`FakeServer::start`] on 127.0.0.1:`port` (a server another one just left: the
    /// same host and port, new behaviour).
    pub fn start_on_port(scenario: Scenario, port: u16) -> Result<Self> {
        Self::start_with_at(scenario, None, port)
    }

    fn start_with(scenario: Scenario, capture: Option<crate::server::Captured>) -> Result<Self> {
        Self::start_with_at(scenario, capture, 0)
    }

    fn start_with_at(
        scenario: Scenario,
        capture: Option<crate::server::Captured>,
        port: u16,
    ) -> Result<Self> {
        let std_listener = TcpListener::bind(("127.0.0.1", port))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served_capture = capture.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("fake-{}", scenario.name))
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = crate::server::serve_capturing(listener, Arc::new(scenario), served_capture) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime cancels every connection task.
            })?;
        Ok(Self {
            addr,
            capture,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What each connection sent so far, in accept order (empty unless started with
    /// [`FakeServer::start_capturing`]).
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.capture
            .as_ref()
            .and_then(|c| c.lock().ok().map(|v| v.clone()))
            .unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Kills and reaps the child when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The directory holding `telnetlib3-fingerprint`: `$IACSCOPE_PYTHON_BIN`, else `<workspace>/target/py/bin`.
pub fn python_bin_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("IACSCOPE_PYTHON_BIN") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("target/py/bin"),
    };
    let tool = dir.join("telnetlib3-fingerprint");
    if !tool.is_file() {
        bail!(
            "telnetlib3-fingerprint not found at {} (IACSCOPE_PYTHON_BIN={:?}); run `cargo xtask test`, \
             which installs telnetlib3 5.0.1 into target/py and sets IACSCOPE_PYTHON_BIN",
            tool.display(),
            std::env::var_os("IACSCOPE_PYTHON_BIN")
        );
    }
    Ok(dir)
}

/// A currently free loopback port (there is a small race until it is bound again).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts on 127.0.0.1:`port`.
pub fn wait_connectable(port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("nothing listens on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Times a server started by [`start_on_free_port`] is tried on a new port.
const START_ATTEMPTS: usize = 3;

/// How long such a server gets to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the server `command(port)` builds on a free loopback port and waits until it
/// accepts; retried on a new port, since the free port can be taken before it binds. `what`
/// names it in errors.
pub fn start_on_free_port(
    what: &str,
    mut command: impl FnMut(u16) -> Result<Command>,
) -> Result<(ChildGuard, u16)> {
    let mut last = None;
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let mut cmd = command(port)?;
        let mut guard = ChildGuard(cmd.spawn().with_context(|| format!("starting {what}"))?);
        match wait_connectable(port, START_TIMEOUT) {
            Ok(()) => return Ok((guard, port)),
            Err(e) => {
                last = Some(match guard.0.try_wait()? {
                    Some(st) => anyhow::anyhow!("{what} exited with {st}"),
                    None => e,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{what} did not start")))
}

/// Starts `telnetlib3-server` on a free loopback port and waits until it accepts.
pub fn start_telnetlib3_server(python_bin: &Path, log: &Path) -> Result<(ChildGuard, u16)> {
    start_on_free_port("telnetlib3-server", |port| {
        let logf = std::fs::File::create(log)?;
        let mut cmd = Command::new(python_bin.join("telnetlib3-server"));
        cmd.args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        Ok(cmd)
    })
}

/// The outcome of [`run_with_timeout`].
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` when killed at the deadline).
    pub status: Option<ExitStatus>,
    /// Wall time from spawn to exit.
    pub wall: Duration,
}

/// Spawns `cmd` (stdio already set up by the caller) and waits at most `timeout`, then kills it.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Run> {
    let start = Instant::now();
    let mut guard = ChildGuard(cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?);
    loop {
        if let Some(status) = guard.0.try_wait()? {
            return Ok(Run {
                status: Some(status),
                wall: start.elapsed(),
            });
        }
        if start.elapsed() >= timeout {
            return Ok(Run {
                status: None,
                wall: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs one scan with `tool` (`telnetlib3-fingerprint`, or an `iacscope` binary, which gets
/// its `scan` subcommand) of 127.0.0.1:`port`, saving the record to `json` and the tool's
/// stderr to `log`; returns the wall seconds and the record or why there is none.
pub fn scan_record(
    tool: &Path,
    port: u16,
    args: &[String],
    json: &Path,
    log: &Path,
    timeout: Duration,
) -> (f64, std::result::Result<Value, String>) {
    let _ = std::fs::remove_file(json);
    let logf = match std::fs::File::create(log) {
        Ok(f) => f,
        Err(e) => return (0.0, Err(format!("creating {}: {e}", log.display()))),
    };
    let mut cmd = Command::new(tool);
    if tool
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("iacscope"))
    {
        cmd.arg("scan");
    }
    cmd.args(["127.0.0.1", &port.to_string(), "--save-json"])
        .arg(json)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf);
    let run = match run_with_timeout(&mut cmd, timeout) {
        Ok(r) => r,
        Err(e) => return (0.0, Err(format!("{e:#}"))),
    };
    let secs = run.wall.as_secs_f64();
    match run.status {
        None => (
            secs,
            Err(format!(
                "timed out after {timeout:?}; log {}",
                log.display()
            )),
        ),
        Some(st) if !st.success() => (secs, Err(format!("exit {st}; log {}", log.display()))),
        Some(_) => (secs, load_record(json).map_err(|e| format!("{e:#}"))),
    }
}

/// Reads a saved JSON record. Lone surrogate escapes (`\udcXX`, Python's surrogateescape
/// for undecodable banner bytes) are kept as the literal text `\udcXX`, since a Rust
/// `String` cannot hold them.
pub fn load_record(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&escape_lone_surrogates(&text))
        .with_context(|| format!("parsing {}", path.display()))
}

/// Rewrites `\uD800`–`\uDFFF` escapes that are not part of a valid pair into `\\uXXXX`.
pub fn escape_lone_surrogates(json: &str) -> String {
    fn hex_at(b: &[u8], i: usize) -> Option<u32> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
            std::str::from_utf8(b.get(i + 2..i + 6)?)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        } else {
            None
        }
    }
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut plain_from = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match hex_at(b, i) {
            Some(0xD800..=0xDBFF) if matches!(hex_at(b, i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                out.push_str(&json[plain_from..i]);
                out.push('\\');
                plain_from = i;
                i += 6;
            }
            _ => i += 2,
        }
    }
    out.push_str(&json[plain_from..]);
    out
}

/// `server-probe.fingerprint` of a record.
pub fn fingerprint_of(record: &Value) -> Option<&str> {
    record.pointer("/server-probe/fingerprint")?.as_str()
}

/// The parts of a record that must match between telnetlib3-fingerprint and iacscope: the
/// whole record minus `session_data.timing` and `sessions[*].connected`.
pub fn comparable(record: &Value) -> Value {
    let mut v = record.clone();
    if let Some(sd) = v
        .pointer_mut("/server-probe/session_data")
        .and_then(Value::as_object_mut)
    {
        sd.remove("timing");
    }
    if let Some(sessions) = v.get_mut("sessions").and_then(Value::as_array_mut) {
        for s in sessions {
            if let Some(o) = s.as_object_mut() {
                o.remove("connected");
            }
        }
    }
    v
}

/// Lists every difference between the comparable parts of two records, as `path: a != b`.
pub fn compare_records(oracle: &Value, ours: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("", &comparable(oracle), &comparable(ours), &mut out);
    out
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "(missing)".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 160 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(160).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&p, va, vb, out),
                    (va, vb) => out.push(format!(
                        "{p}: telnetlib3 {} != iacscope {}",
                        short(va),
                        short(vb)
                    )),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!(
            "{path}: telnetlib3 {} != iacscope {}",
            short(Some(a)),
            short(Some(b))
        )),
        _ => {}
    }
}

/// The `IAC SB <opt> … IAC SE` frames in a byte stream sent by a client, as on the wire
/// (IAC still doubled). A frame cut short by the next `IAC SB` (telnetlib3 writes a bare
/// header when its SLC buffer overflows) is returned as far as it went.
pub fn sb_frames(wire: &[u8], opt: u8) -> Vec<Vec<u8>> {
    use crate::server::telnet::{IAC, SB, SE};
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < wire.len() {
        let b = wire[i];
        let next = wire.get(i + 1).copied();
        if b == IAC && next == Some(SB) {
            if let Some(f) = cur.take() {
                out.push(f);
            }
            if wire.get(i + 2) == Some(&opt) {
                cur = Some(vec![IAC, SB]);
            }
            i += 2;
            continue;
        }
        if let Some(f) = cur.as_mut() {
            f.push(b);
            if b == IAC && next.is_some() {
                f.push(wire[i + 1]);
                if next == Some(SE) {
                    out.extend(cur.take());
                }
                i += 2;
                continue;
            }
        } else if b == IAC && next.is_some() {
            // Skip a two-byte command (or an escaped IAC) outside frames.
            i += 2;
            continue;
        }
        i += 1;
    }
    out.extend(cur);
    out
}

/// Finds (and if needed builds) the `iacscope` binary.
///
/// Cargo only exposes `CARGO_BIN_EXE_*` for binaries of the package under test, and
/// artifact dependencies are unstable, so: `$IACSCOPE_BIN` when set (`cargo xtask` can
/// pass a prebuilt path); otherwise run `cargo build -p iacscope --bin iacscope` into the
/// target directory and profile this test binary was built in (found from
/// `current_exe()`: `<target>/<profile>/deps/<test>`), and use `<target>/<profile>/iacscope`.
/// Building is a no-op when it is up to date, and it never picks a stale binary.
pub fn iacscope_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("IACSCOPE_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("IACSCOPE_BIN={} does not exist", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .context("test binary is not in <target>/<profile>/deps; set IACSCOPE_BIN")?;
    let target_dir = profile_dir.parent().context("no target dir")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("profile name")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "-p",
            "iacscope",
            "--bin",
            "iacscope",
            "--target-dir",
        ])
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!(
            "`cargo build -p iacscope --bin iacscope` failed ({status}): `iacscope scan` must build before the \
             differential test can run"
        );
    }
    let bin = profile_dir.join(format!("iacscope{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("built iacscope but {} is missing", bin.display());
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sb_frames_keep_escapes_and_bare_headers() {
        let wire = [
            255, 251, 34, 255, 250, 34, 3, 4, 0x80, 255, 255, 255, 240, 255, 250, 24, 0, 255, 240,
            255, 250, 34, 3, 255, 250, 34, 3, 255, 240,
        ];
        assert_eq!(
            super::sb_frames(&wire, 34),
            vec![
                vec![255, 250, 34, 3, 4, 0x80, 255, 255, 255, 240],
                vec![255, 250, 34, 3],
                vec![255, 250, 34, 3, 255, 240],
            ]
        );
    }

    #[test]
    fn lone_surrogates_become_literal_text() {
        let j = r#"{"a":"x\udce9y\ud83d\ude00\\udc80\u00e9"}"#;
        let v: Value = serde_json::from_str(&escape_lone_surrogates(j)).unwrap();
        assert_eq!(v["a"], "x\\udce9y\u{1f600}\\udc80\u{e9}");
        assert!(serde_json::from_str::<Value>(j).is_err());
    }

    #[test]
    fn compare_ignores_timing_and_connected_only() {
        let a: Value = serde_json::json!({"server-probe": {"fingerprint": "x", "session_data": {"timing": {"total": 1.0}, "encoding": "ascii"}},
            "sessions": [{"connected": "t1", "port": 1}]});
        let mut b = a.clone();
        b["server-probe"]["session_data"]["timing"]["total"] = 2.0.into();
        b["sessions"][0]["connected"] = "t2".into();
        assert!(compare_records(&a, &b).is_empty());
        b["sessions"][0]["port"] = 2.into();
        b["server-probe"]["session_data"]["encoding"] = "".into();
        assert_eq!(compare_records(&a, &b).len(), 2);
    }
}
