//! A minimal W3C WebDriver client: JSON over HTTP/1.1 on a std `TcpStream` to a chromedriver
//! on 127.0.0.1, driving headless Chromium. Enough for `cargo xtask bench-web` and the
//! end-to-end test (`tests/tests/e2e_browser.rs` includes this file with `#[path]`), so it
//! uses only std, anyhow and serde_json; it knows nothing about iacscope's page.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long chromedriver may take to accept connections.
const DRIVER_START: Duration = Duration::from_secs(15);
/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser tools are.
#[derive(Debug, Clone)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// A child process killed and reaped on drop.
#[derive(Debug)]
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One chromedriver with one browser session. Dropping it ends the session (Chromium quits)
/// and then kills chromedriver.
#[derive(Debug)]
pub struct Browser {
    addr: SocketAddr,
    session: String,
    profile: PathBuf,
    _driver: Process,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with a
    /// fresh profile in `profile` (removed first, and again when the browser is dropped).
    pub fn launch(tools: &Tools, profile: &Path) -> Result<Self> {
        let _ = std::fs::remove_dir_all(profile);
        std::fs::create_dir_all(profile)
            .with_context(|| format!("creating {}", profile.display()))?;
        let mut last = None;
        // A free port can be taken again before chromedriver binds it: try a few.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = Command::new(&tools.chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", tools.chromedriver.display()))?;
            let mut driver = Process(child);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_connectable(addr, DRIVER_START, &mut driver) {
                Ok(()) => {
                    let caps = capabilities(&tools.chromium, profile);
                    let v = request(addr, "POST", "/session", Some(&caps))
                        .context("creating a Chromium session")?;
                    let session = v["sessionId"]
                        .as_str()
                        .context("no sessionId in the new-session answer")?
                        .to_string();
                    return Ok(Self {
                        addr,
                        session,
                        profile: profile.to_path_buf(),
                        _driver: driver,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
    }

    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        request(self.addr, method, &path, body)
    }

    /// Navigates and waits for the load event.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(&json!({ "url": url })))
            .with_context(|| format!("navigating to {url}"))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Runs `script`, which must call `arguments[arguments.length - 1](value)` when done.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` every 100 ms until it returns something other than `null`/`false`.
    pub fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute(script, vec![])?;
            if !(v.is_null() || v == Value::Bool(false)) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": css })),
            )
            .with_context(|| format!("finding `{css}`"))?;
        Ok(v[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("no element reference in the answer for `{css}`: {v}"))?
            .to_string())
    }

    /// Types `text` into an element.
    pub fn send_keys(&self, element: &str, text: &str) -> Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({ "text": text })),
        )?;
        Ok(())
    }

    /// Clicks an element.
    pub fn click(&self, element: &str) -> Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        )?;
        Ok(())
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.cmd("GET", "/screenshot", None)?;
        base64_decode(v.as_str().context("screenshot is not a string")?)
    }

    /// Resizes the window (CSS pixels).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(&json!({ "width": width, "height": height })),
        )?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session so Chromium exits before chromedriver is killed (a killed
        // chromedriver would leave its browser running).
        let _ = self.cmd("DELETE", "", None);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Chromium flags for a machine with no display, no sandbox support and no network.
fn capabilities(chromium: &Path, profile: &Path) -> Value {
    json!({
        "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--window-size=1200,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }},
    })
}

fn wait_connectable(addr: SocketAddr, timeout: Duration, child: &mut Process) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.0.try_wait()? {
            bail!("chromedriver exited with {status} before listening on {addr}");
        }
        if Instant::now() >= deadline {
            bail!("chromedriver does not listen on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the answer's `value`, or the
/// WebDriver error as an `Err`.
fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to chromedriver at {addr}"))?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line from chromedriver: {status_line:?}"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut raw = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .context("bad chunk size")?;
            if n == 0 {
                break;
            }
            let start = raw.len();
            raw.resize(start + n, 0);
            reader.read_exact(&mut raw[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        raw.resize(n, 0);
        reader.read_exact(&mut raw)?;
    } else {
        reader.read_to_end(&mut raw)?;
    }
    let v: Value = serde_json::from_slice(&raw).with_context(|| {
        format!(
            "chromedriver answered {method} {path} with non-JSON: {}",
            String::from_utf8_lossy(&raw)
        )
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status != 200 {
        bail!(
            "WebDriver {method} {path}: {} ({status}): {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(value)
}

/// Standard base64 (WebDriver screenshots), padding and whitespace ignored.
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => bail!("bad base64 byte {c:#04x}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert!(base64_decode("a$").is_err());
    }
}
