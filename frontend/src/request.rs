//! What the user asks for: the target (`host[:port]`), TLS and scan type, from the form or a
//! deep link (`/?host=H&port=P&tls=1&scan=full`), and the proxy URL query it becomes.
//! Pure functions only: the hook opens the socket, the page renders the form.

use iacscope_shared::{ScanConfig, ScanType};

/// The telnet port when none is given (RFC 854), and the telnet-over-TLS port (IANA `telnets`).
pub const TELNET_PORT: u16 = 23;
pub const TELNETS_PORT: u16 = 992;

/// How thorough a scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanMode {
    Quick,
    Full,
}

impl ScanMode {
    /// `quick` or `full`, as in `--scan-type` and the deep link's `scan=`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanMode::Quick => "quick",
            ScanMode::Full => "full",
        }
    }
}

/// Whether and how the proxy wraps the connection in TLS (the `/ws?tls=` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    /// TLS with certificate verification.
    On,
    /// TLS without verifying the certificate (`tls=insecure`).
    Insecure,
}

impl TlsMode {
    /// The `/ws?tls=` value.
    pub fn param(self) -> &'static str {
        match self {
            TlsMode::Off => "0",
            TlsMode::On => "1",
            TlsMode::Insecure => "insecure",
        }
    }

    /// Whether TLS is used at all.
    pub fn enabled(self) -> bool {
        self != TlsMode::Off
    }
}

/// One scan to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRequest {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub mode: ScanMode,
}

impl ScanRequest {
    /// The engine configuration: telnetlib3-fingerprint's defaults plus the scan type.
    pub fn config(&self) -> ScanConfig {
        ScanConfig {
            scan_type: match self.mode {
                ScanMode::Quick => ScanType::Quick,
                ScanMode::Full => ScanType::Full,
            },
            tls: self.tls.enabled(),
            ..ScanConfig::default()
        }
    }

    /// `host:port` as typed back into the form (`[v6]:port` for IPv6 addresses).
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The query string of the proxy's `/ws` endpoint.
    pub fn ws_query(&self) -> String {
        format!(
            "host={}&port={}&tls={}",
            encode_component(&self.host),
            self.port,
            self.tls.param()
        )
    }

    /// The page's own deep link query (`?host=…`), so a scan can be shared or reloaded.
    pub fn deep_link_query(&self) -> String {
        let mut q = format!("host={}&port={}", encode_component(&self.host), self.port);
        if self.tls.enabled() {
            q += "&tls=";
            q += self.tls.param();
        }
        q += "&scan=";
        q += self.mode.as_str();
        q
    }

    /// A short description: `full scan of example.org:992 over TLS`.
    pub fn describe(&self) -> String {
        format!(
            "{} scan of {}{}",
            self.mode.as_str(),
            self.target(),
            match self.tls {
                TlsMode::Off => "",
                TlsMode::On => " over TLS",
                TlsMode::Insecure => " over TLS (certificate not checked)",
            }
        )
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Splits `host[:port]` (or `[v6addr]:port`), defaulting the port by `tls`.
pub fn parse_target(input: &str, tls: bool) -> Result<(String, u16), String> {
    let input = input.trim();
    let default_port = if tls { TELNETS_PORT } else { TELNET_PORT };
    if input.is_empty() {
        return Err("enter a server as host or host:port".into());
    }
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("missing `]` after IPv6 address")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after `]`")),
        }
    } else if input.matches(':').count() > 1 {
        (input, None) // a bare IPv6 address
    } else {
        match input.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (input, None),
        }
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(format!("`{host}` is not a host name"));
    }
    let port = match port {
        None => default_port,
        Some(p) => parse_port(p)?,
    };
    Ok((host.to_string(), port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{p}` is not a port (1-65535)")),
        Ok(p) => Ok(p),
    }
}

/// Reads a deep link `?host=H&port=P&tls=0|1|insecure&scan=quick|full` through `get`
/// (already percent-decoded, as `URLSearchParams.get` gives it). `None` when there is no
/// `host`; an error sentence when a parameter is wrong.
pub fn from_deep_link(get: impl Fn(&str) -> Option<String>) -> Option<Result<ScanRequest, String>> {
    let host = get("host")?;
    Some((|| {
        let tls = match get("tls").as_deref() {
            None | Some("" | "0" | "false") => TlsMode::Off,
            Some("1" | "true") => TlsMode::On,
            Some("insecure") => TlsMode::Insecure,
            Some(other) => return Err(format!("`tls={other}` must be 0, 1 or insecure")),
        };
        let mode = match get("scan").as_deref() {
            None | Some("" | "quick") => ScanMode::Quick,
            Some("full") => ScanMode::Full,
            Some(other) => return Err(format!("`scan={other}` must be quick or full")),
        };
        let (host, mut port) = parse_target(&host, tls.enabled())?;
        if let Some(p) = get("port").filter(|p| !p.is_empty()) {
            port = parse_port(&p)?;
        }
        Ok(ScanRequest {
            host,
            port,
            tls,
            mode,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_default_ports() {
        assert_eq!(
            parse_target("example.org", false),
            Ok(("example.org".into(), 23))
        );
        assert_eq!(
            parse_target(" example.org ", true),
            Ok(("example.org".into(), 992))
        );
        assert_eq!(
            parse_target("example.org:4000", true),
            Ok(("example.org".into(), 4000))
        );
        assert_eq!(parse_target("[::1]:2323", false), Ok(("::1".into(), 2323)));
        assert_eq!(parse_target("::1", false), Ok(("::1".into(), 23)));
    }

    #[test]
    fn bad_targets_are_explained() {
        assert!(parse_target("", false).is_err());
        assert!(parse_target("example.org:0", false).is_err());
        assert!(parse_target("example.org:http", false).is_err());
        assert!(parse_target(":23", false).is_err());
        assert!(parse_target("[::1", false).is_err());
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn deep_links_fill_the_request() {
        assert_eq!(from_deep_link(params(&[])), None);
        let r = from_deep_link(params(&[
            ("host", "mud.example.org"),
            ("port", "4000"),
            ("tls", "1"),
            ("scan", "full"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            ScanRequest {
                host: "mud.example.org".into(),
                port: 4000,
                tls: TlsMode::On,
                mode: ScanMode::Full
            }
        );
        assert_eq!(
            r.deep_link_query(),
            "host=mud.example.org&port=4000&tls=1&scan=full"
        );
        assert_eq!(r.ws_query(), "host=mud.example.org&port=4000&tls=1");
        assert!(r.config().tls);
        let r = from_deep_link(params(&[("host", "::1")])).unwrap().unwrap();
        assert_eq!((r.port, r.tls, r.mode), (23, TlsMode::Off, ScanMode::Quick));
        assert_eq!(r.target(), "[::1]:23");
        assert_eq!(r.ws_query(), "host=%3A%3A1&port=23&tls=0");
        assert!(from_deep_link(params(&[("host", "a"), ("port", "x")]))
            .unwrap()
            .is_err());
        assert!(from_deep_link(params(&[("host", "a"), ("scan", "slow")]))
            .unwrap()
            .is_err());
    }

    #[test]
    fn telnetlib3_command_follows_the_request() {
        let r = ScanRequest {
            host: "example.org".into(),
            port: 992,
            tls: TlsMode::On,
            mode: ScanMode::Full,
        };
        assert_eq!(
            r.config().telnetlib3_command(&r.host, r.port),
            "telnetlib3-fingerprint example.org 992 --scan-type=full --ssl"
        );
    }
}
