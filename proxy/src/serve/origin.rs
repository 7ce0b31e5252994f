//! Origins (`scheme://host[:port]`): which browser pages may open the websocket, and the
//! one origin absolute URLs are built from. Both come from configuration only, never from a
//! request's `Host` header: a DNS-rebinding page on `attacker.example` that re-resolves its
//! name to this server sends `Host: attacker.example` and `Origin: http://attacker.example`,
//! which agree with each other and prove nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A web origin: scheme, host (lower case; an IPv6 address without brackets) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Lower-case host name or IP literal.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

/// Longest origin text looked at (a browser's is a scheme, a host name and a port).
const MAX_ORIGIN_LEN: usize = 300;

impl Origin {
    /// Parses `http://host[:port]` or `https://…`, with one optional trailing `/` and
    /// nothing else: no path, query, user or fragment.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let t = text.trim();
        if t.len() > MAX_ORIGIN_LEN {
            return Err("an origin of over 300 bytes".into());
        }
        let t = t.strip_suffix('/').unwrap_or(t);
        let lower = t.to_ascii_lowercase();
        let (scheme, default_port, rest) = if let Some(r) = lower.strip_prefix("http://") {
            ("http", 80, r)
        } else if let Some(r) = lower.strip_prefix("https://") {
            ("https", 443, r)
        } else {
            return Err(format!(
                "`{}` is not an http:// or https:// origin",
                t.escape_debug()
            ));
        };
        let bad = || {
            format!(
                "`{}` is not an origin (scheme://host[:port])",
                t.escape_debug()
            )
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
            let addr: std::net::Ipv6Addr = addr.parse().map_err(|_| bad())?;
            (addr.to_string(), after)
        } else {
            match rest.rfind(':') {
                Some(i) => (rest[..i].to_owned(), &rest[i..]),
                None => (rest.to_owned(), ""),
            }
        };
        let port = match port {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(bad)?,
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
        if !host_ok {
            return Err(bad());
        }
        Ok(Origin { scheme, host, port })
    }

    /// A base URL (`--public-url`): an origin and an optional path below which the app is
    /// served (`https://example.org/iacscope`), without query or fragment. Returns the origin
    /// and the path without its trailing `/` (empty for the root).
    pub fn parse_base(url: &str) -> Result<(Origin, String), String> {
        let t = url.trim();
        let after_scheme = t.find("://").map_or(0, |i| i + 3);
        let (origin, path) = match t[after_scheme..].find('/') {
            Some(i) => t.split_at(after_scheme + i),
            None => (t, ""),
        };
        if path.contains(['?', '#', ' ', '"', '<', '>', '\\']) || path.contains(char::is_control) {
            return Err(format!(
                "`{}`: a base URL has no query, fragment or odd characters",
                t.escape_debug()
            ));
        }
        Ok((
            Origin::parse(origin)?,
            path.trim_end_matches('/').to_owned(),
        ))
    }

    /// A loopback address (127.0.0.0/8, ::1) or `localhost`: a page with such an origin was
    /// loaded from this machine, not from a name an attacker controls.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback())
    }
}

impl fmt::Display for Origin {
    /// `scheme://host[:port]`, the port left out when it is the scheme's default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            write!(f, "{}://{host}", self.scheme)
        } else {
            write!(f, "{}://{host}:{}", self.scheme, self.port)
        }
    }
}

/// The websocket origin rule, built from the configuration.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    /// `public_url` and `allowed_origins`, parsed.
    pub allowed: Vec<Origin>,
    /// `any_origin`.
    pub any: bool,
}

impl OriginPolicy {
    /// From `public_url`, `allowed_origins` and `any_origin`; a malformed entry is an error
    /// naming it.
    pub fn new(
        public_url: Option<&str>,
        allowed: &[String],
        any: bool,
    ) -> Result<OriginPolicy, String> {
        let mut list = Vec::new();
        if let Some(u) = public_url {
            list.push(
                Origin::parse_base(u)
                    .map_err(|e| format!("--public-url: {e}"))?
                    .0,
            );
        }
        for o in allowed {
            list.push(Origin::parse(o).map_err(|e| format!("allowed origin: {e}"))?);
        }
        Ok(OriginPolicy { allowed: list, any })
    }

    /// Whether a websocket handshake with this `Origin` header (`None`: no header, not a
    /// browser) may proceed on a server listening on `listen_port`; the refusal says what
    /// the operator can do.
    pub fn check(&self, origin: Option<&[u8]>, listen_port: Option<u16>) -> Result<(), String> {
        let Some(raw) = origin else {
            return Ok(());
        };
        if self.any {
            return Ok(());
        }
        let text = std::str::from_utf8(raw).unwrap_or("");
        let refuse = |shown: &str| {
            let port = listen_port.map_or_else(|| "PORT".to_owned(), |p| p.to_string());
            Err(format!(
                "websocket origin `{shown}` is not allowed: this proxy accepts pages from its \
                 --public-url and --allowed-origin, and from http://localhost:{port} \
                 (the operator can add the origin with --allowed-origin)"
            ))
        };
        let Ok(origin) = Origin::parse(text) else {
            return refuse(
                &text
                    .chars()
                    .take(100)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
            );
        };
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        if origin.is_loopback() && listen_port == Some(origin.port) {
            return Ok(());
        }
        refuse(&origin.to_string())
    }
}

/// The base absolute URLs are built from: `public_url` (origin and path), else the
/// listening address (127.0.0.1 for a wildcard address), else `http://localhost`.
pub fn public_origin(public_url: Option<&str>, listen: Option<SocketAddr>) -> String {
    if let Some((o, path)) = public_url.and_then(|u| Origin::parse_base(u).ok()) {
        return format!("{o}{path}");
    }
    match listen {
        Some(addr) => {
            let ip = addr.ip();
            let host = if ip.is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                ip
            };
            Origin {
                scheme: "http",
                host: host.to_string(),
                port: addr.port(),
            }
            .to_string()
        }
        None => "http://localhost".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let o = Origin::parse("HTTPS://IacScope.Example/").expect("origin");
        assert_eq!(
            (o.scheme, o.host.as_str(), o.port),
            ("https", "iacscope.example", 443)
        );
        assert_eq!(o.to_string(), "https://iacscope.example");
        let o = Origin::parse("http://[::1]:8080").expect("v6");
        assert_eq!(o.to_string(), "http://[::1]:8080");
        assert!(o.is_loopback());
        assert!(Origin::parse("http://127.5.6.7:80")
            .expect("v4")
            .is_loopback());
        for bad in [
            "null",
            "ftp://x",
            "http://x/path",
            "http://a b",
            "http://x:99999",
            "http://",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_configured_or_local_origins() {
        let p = OriginPolicy::new(
            Some("https://iacscope.example"),
            &["http://wiki.example:81".into()],
            false,
        )
        .expect("policy");
        let ok = |o: &str| p.check(Some(o.as_bytes()), Some(8080)).is_ok();
        assert!(
            p.check(None, Some(8080)).is_ok(),
            "no Origin: not a browser"
        );
        assert!(ok("https://iacscope.example"));
        assert!(ok("http://wiki.example:81"));
        assert!(ok("http://localhost:8080"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(
            !ok("http://127.0.0.1:8081"),
            "another local port is another app"
        );
        // DNS rebinding: the attacker's name, whatever it resolves to.
        assert!(!ok("http://attacker.example:8080"));
        assert!(!ok("null"));
        let e = p
            .check(Some(b"http://evil.example\x1b[2J"), Some(8080))
            .expect_err("refused");
        assert!(!e.contains('\x1b'), "{e}");
        assert!(e.contains("--allowed-origin"), "{e}");
    }

    #[test]
    fn public_origin_never_from_a_request() {
        assert_eq!(
            public_origin(Some("https://x.example/"), None),
            "https://x.example"
        );
        assert_eq!(
            public_origin(Some("https://x.example/tools/iacscope/"), None),
            "https://x.example/tools/iacscope"
        );
        let p = OriginPolicy::new(Some("https://x.example/tools/iacscope"), &[], false)
            .expect("a base URL with a path");
        assert!(p.check(Some(b"https://x.example"), Some(8080)).is_ok());
        assert!(Origin::parse_base("https://x.example/a?b").is_err());
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(public_origin(None, Some(listen)), "http://127.0.0.1:8080");
        let any: SocketAddr = "0.0.0.0:80".parse().expect("addr");
        assert_eq!(public_origin(None, Some(any)), "http://127.0.0.1");
    }
}
