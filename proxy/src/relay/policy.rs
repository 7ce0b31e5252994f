//! The target policy (the SSRF guard): which hosts, addresses and ports the proxy may connect
//! to. Pure functions, no I/O: `relay` resolves a name once and asks [`Policy::check_ip`]
//! about every address before connecting to one of them.
//!
//! Host spellings are read the way browsers and `inet_aton` read them, so `2130706433`,
//! `0x7f.1`, `127.1` and `017700000001` are all 127.0.0.1 and are classified as such rather
//! than handed to the system resolver, which might read them differently.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Lower case, one trailing dot removed: the form names are compared in.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `host:port`, IPv6 addresses in brackets (how a target is written back to people).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A parsed target host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IP literal in any accepted spelling (IPv4-mapped IPv6 is canonicalized to IPv4).
    Ip(IpAddr),
    /// A DNS name: lower case, no trailing dot.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// Why a target was refused: the error code sent to the browser and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `bad_host`, `bad_port` or `refused_by_policy`.
    pub code: &'static str,
    /// A human sentence.
    pub message: String,
}

impl Refusal {
    fn bad_host(message: impl Into<String>) -> Self {
        Refusal {
            code: "bad_host",
            message: message.into(),
        }
    }
    fn policy(message: impl Into<String>) -> Self {
        Refusal {
            code: "refused_by_policy",
            message: message.into(),
        }
    }
}

/// Longest host name (RFC 1035: 255 octets on the wire, 253 as text).
const MAX_HOST_LEN: usize = 253;

/// Parses a `host` parameter. IP literals in every spelling become [`Host::Ip`]; anything
/// whose last label is numeric must be a valid IPv4 spelling (as in the WHATWG URL
/// standard), so no numeric oddity reaches the system resolver.
pub fn parse_host(raw: &str) -> Result<Host, Refusal> {
    if raw.is_empty() {
        return Err(Refusal::bad_host("no host given"));
    }
    if raw.len() > MAX_HOST_LEN + 2 {
        return Err(Refusal::bad_host("host name too long"));
    }
    if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip).to_canonical()))
            .map_err(|_| Refusal::bad_host(format!("`{raw}` is not an IPv6 address")));
    }
    if raw.contains(':') {
        return raw
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip).to_canonical()))
            .map_err(|_| Refusal::bad_host(format!("`{raw}` is not a host name or address")));
    }
    if !raw.is_ascii() {
        return Err(Refusal::bad_host(
            "international names must be given in their xn-- (punycode) form",
        ));
    }
    let name = normalize_name(raw);
    if name.is_empty() || name.len() > MAX_HOST_LEN {
        return Err(Refusal::bad_host(format!("`{raw}` is not a host name")));
    }
    let last = name.rsplit('.').next().unwrap_or("");
    if ends_in_number(last) {
        return parse_ipv4_loose(&name)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or_else(|| Refusal::bad_host(format!("`{raw}` is not a valid IPv4 address")));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Refusal::bad_host(format!(
                "`{raw}` is not a valid host name"
            )));
        }
    }
    Ok(Host::Name(name))
}

/// WHATWG "ends in a number": the last label is all digits, or `0x` followed by hex digits.
fn ends_in_number(label: &str) -> bool {
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// `inet_aton`: one to four parts, each decimal, octal (leading 0) or hex (0x); the last
/// part fills the remaining bytes. `None` when it is not a valid spelling.
pub fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let n = if let Some(hex) = p.strip_prefix("0x") {
            if hex.is_empty() {
                0
            } else {
                u64::from_str_radix(hex, 16).ok()?
            }
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse::<u64>().ok()?
        } else {
            return None;
        };
        nums.push(n);
    }
    let (last, init) = nums.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - init.len() as u32);
    if *last >= 1u64 << rest_bits {
        return None;
    }
    let mut v: u64 = 0;
    for (i, n) in init.iter().enumerate() {
        v |= n << (24 - 8 * i as u32);
    }
    v |= last;
    Some(Ipv4Addr::from(v as u32))
}

/// Why an address is not public, or `None` when it is a public unicast address.
pub fn non_public_reason(ip: IpAddr) -> Option<String> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IANA IPv4 special-purpose registry, plus multicast and class E.
const V4_DENY: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" (unspecified)"),
    ([10, 0, 0, 0], 8, "private (RFC 1918)"),
    (
        [100, 64, 0, 0],
        10,
        "shared address space (CGNAT, RFC 6598)",
    ),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local (and cloud metadata)"),
    ([172, 16, 0, 0], 12, "private (RFC 1918)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments (reserved)"),
    ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
    ([192, 31, 196, 0], 24, "AS112 (reserved)"),
    ([192, 52, 193, 0], 24, "AMT (reserved)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (reserved)"),
    ([192, 168, 0, 0], 16, "private (RFC 1918)"),
    ([192, 175, 48, 0], 24, "direct delegation AS112 (reserved)"),
    ([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
    ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
    ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([255, 255, 255, 255], 32, "broadcast"),
    ([240, 0, 0, 0], 4, "reserved (class E)"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    V4_DENY
        .iter()
        .find(|(net, p, _)| v4_in(ip, *net, *p))
        .map(|(_, _, why)| *why)
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

const fn v6(segs: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(
        segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
    )
}

fn wrapped(kind: &str, inner: Ipv4Addr) -> Option<String> {
    v4_reason(inner).map(|why| format!("{kind} address wrapping {inner}, which is {why}"))
}

fn v6_reason(ip: Ipv6Addr) -> Option<String> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    if ip.is_unspecified() {
        return Some("unspecified".into());
    }
    if ip.is_loopback() {
        return Some("loopback".into());
    }
    // IPv4-mapped (::ffff:0:0/96) is canonicalized to IPv4 by the caller. SIIT's
    // IPv4-translated form ::ffff:0:a.b.c.d wraps an IPv4 too.
    if v6_in(ip, v6([0, 0, 0, 0, 0xffff, 0, 0, 0]), 96) {
        return wrapped("IPv4-translated", low32).or(Some("IPv4-translated (reserved)".into()));
    }
    // ::a.b.c.d, deprecated IPv4-compatible addresses (RFC 4291 2.5.5.1).
    if v6_in(ip, Ipv6Addr::UNSPECIFIED, 96) {
        return wrapped("IPv4-compatible", low32).or(Some("IPv4-compatible (deprecated)".into()));
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): reaches the embedded IPv4.
    if v6_in(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        return wrapped("NAT64", low32);
    }
    if v6_in(ip, v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48) {
        return Some("local-use NAT64 (RFC 8215)".into());
    }
    if v6_in(ip, v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64) {
        return Some("discard-only (reserved)".into());
    }
    // Teredo 2001::/32: server IPv4 in bits 32..64, client IPv4 inverted in the low 32.
    if v6_in(ip, v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32) {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        return wrapped("Teredo", client)
            .or_else(|| wrapped("Teredo", server))
            .or(Some("Teredo (IETF protocol assignment, not a host)".into()));
    }
    if v6_in(ip, v6([0x2001, 0x2, 0, 0, 0, 0, 0, 0]), 48) {
        return Some("benchmarking (RFC 5180)".into());
    }
    if v6_in(ip, v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32) {
        return Some("documentation".into());
    }
    if v6_in(ip, v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20) {
        return Some("documentation (RFC 9637)".into());
    }
    if v6_in(ip, v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23) {
        return Some("IETF protocol assignments (reserved)".into());
    }
    // 6to4 2002::/16: the IPv4 sits in bits 16..48.
    if v6_in(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        return wrapped("6to4", Ipv4Addr::from((bits >> 80) as u32));
    }
    if v6_in(ip, v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16) {
        return Some("SRv6 SIDs (reserved)".into());
    }
    if v6_in(ip, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3) {
        return None;
    }
    let why = if v6_in(ip, v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7) {
        "unique local (fc00::/7)"
    } else if v6_in(ip, v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10) {
        "link-local (fe80::/10)"
    } else if v6_in(ip, v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10) {
        "site-local (fec0::/10, deprecated)"
    } else if v6_in(ip, v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8) {
        "multicast"
    } else {
        "reserved (outside global unicast 2000::/3)"
    };
    Some(why.into())
}

/// An IP network, `10.0.0.0/8`, `2001:db8::/32`, or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Net {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Net {
    /// Whether the network holds `ip` (IPv4-mapped IPv6 counts as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => v4_in(a, n.octets(), u32::from(self.prefix)),
            (IpAddr::V6(n), IpAddr::V6(a)) => v6_in(a, n, u32::from(self.prefix)),
            _ => false,
        }
    }
}

impl FromStr for Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Net, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| format!("`{s}` is not an IP network (like 10.0.0.0/8)"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("`{s}`: bad prefix length"))?,
            None => max,
        };
        Ok(Net { addr, prefix })
    }
}

impl TryFrom<String> for Net {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A port or an inclusive port range, `6379` or `6000-6063`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PortRangeRaw")]
pub struct PortRange(pub u16, pub u16);

impl PortRange {
    fn contains(&self, port: u16) -> bool {
        (self.0..=self.1).contains(&port)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PortRangeRaw {
    One(u16),
    Text(String),
}

impl TryFrom<PortRangeRaw> for PortRange {
    type Error = String;
    fn try_from(r: PortRangeRaw) -> Result<Self, String> {
        match r {
            PortRangeRaw::One(p) => Ok(PortRange(p, p)),
            PortRangeRaw::Text(s) => s.parse(),
        }
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a port or a port range (like 6000-6063)");
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        Ok(PortRange(a, b))
    }
}

/// Well-known ports of services other than telnet, denied unless allowed: a browser should
/// not be able to speak raw bytes to a mail, web, database or file server through us.
/// Ports are only the first fence: MUDs run on any port (3000, 5000, 8000, 9000 all carry
/// real ones), so a service on an unlisted port is told by its first bytes instead
/// (`sniff`), and this list names the services that take blind writes or are never telnet.
pub const DENIED_PORTS: &[(u16, u16, &str)] = &[
    (0, 0, "port 0"),
    (
        1,
        22,
        "echo, discard, chargen, FTP, SSH and other low services",
    ),
    (25, 25, "SMTP"),
    (37, 37, "time"),
    (42, 43, "name, whois"),
    (53, 53, "DNS"),
    (67, 69, "DHCP, TFTP"),
    (79, 80, "finger, HTTP"),
    (88, 88, "Kerberos"),
    (109, 111, "POP, RPC portmapper"),
    (113, 113, "ident"),
    (119, 119, "NNTP"),
    (123, 123, "NTP"),
    (135, 139, "MS RPC, NetBIOS"),
    (143, 143, "IMAP"),
    (161, 162, "SNMP"),
    (179, 179, "BGP"),
    (389, 389, "LDAP"),
    (443, 445, "HTTPS, SMB"),
    (465, 465, "SMTPS"),
    (500, 500, "IKE"),
    (512, 515, "rexec, rlogin, rsh, syslog, printer"),
    (548, 548, "AFP"),
    (554, 554, "RTSP"),
    (587, 587, "mail submission"),
    (631, 631, "IPP"),
    (636, 636, "LDAPS"),
    (853, 853, "DNS over TLS"),
    (873, 873, "rsync"),
    (989, 990, "FTPS"),
    (993, 993, "IMAPS"),
    (995, 995, "POP3S"),
    (1080, 1080, "SOCKS"),
    (1433, 1434, "SQL Server"),
    (1521, 1521, "Oracle"),
    (1723, 1723, "PPTP"),
    (1883, 1883, "MQTT"),
    (2049, 2049, "NFS"),
    (2181, 2181, "ZooKeeper"),
    (2375, 2377, "Docker"),
    (2379, 2380, "etcd"),
    (3128, 3128, "HTTP proxy"),
    (3306, 3306, "MySQL"),
    (3389, 3389, "RDP"),
    (4369, 4369, "Erlang port mapper"),
    (5060, 5061, "SIP"),
    (5432, 5433, "PostgreSQL"),
    (5672, 5672, "AMQP"),
    (5900, 5903, "VNC"),
    (5984, 5984, "CouchDB"),
    (5985, 5986, "WinRM"),
    (6000, 6063, "X11"),
    (6379, 6380, "Redis"),
    (6443, 6443, "Kubernetes API"),
    (6665, 6669, "IRC"),
    (6697, 6697, "IRC over TLS"),
    (8080, 8080, "HTTP alternate"),
    (8086, 8086, "InfluxDB"),
    (8443, 8443, "HTTPS alternate"),
    (9042, 9042, "Cassandra"),
    (9092, 9092, "Kafka"),
    // A printer prints what it is sent and never answers: no first bytes to tell it by.
    (9100, 9100, "raw printing (JetDirect)"),
    (9200, 9300, "Elasticsearch"),
    (9418, 9418, "git"),
    (10250, 10250, "kubelet"),
    (11211, 11211, "memcached"),
    (27017, 27019, "MongoDB"),
];

/// The policy as configured: built-in denials plus the operator's lists.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// See [`crate::serve::config::Config::allow_private`].
    pub allow_private: bool,
    /// See [`crate::serve::config::Config::allow_hosts`].
    pub allow_hosts: Vec<String>,
    /// See [`crate::serve::config::Config::deny_hosts`].
    pub deny_hosts: Vec<String>,
    /// See [`crate::serve::config::Config::allow_nets`].
    pub allow_nets: Vec<Net>,
    /// See [`crate::serve::config::Config::deny_nets`].
    pub deny_nets: Vec<Net>,
    /// See [`crate::serve::config::Config::allow_ports`].
    pub allow_ports: Vec<PortRange>,
    /// See [`crate::serve::config::Config::deny_ports`].
    pub deny_ports: Vec<PortRange>,
}

/// What the name check found: whether the operator's allow list named the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameVerdict {
    /// The host matched `allow_hosts`; its addresses skip the built-in denial.
    pub operator_allowed: bool,
}

fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = normalize_name(pattern);
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => pattern == name,
    }
}

impl Policy {
    /// Checks the port.
    pub fn check_port(&self, port: u16) -> Result<(), Refusal> {
        if port == 0 {
            return Err(Refusal {
                code: "bad_port",
                message: "port 0 is not a port".into(),
            });
        }
        if self.deny_ports.iter().any(|r| r.contains(port)) {
            return Err(Refusal::policy(format!(
                "port {port} is denied by this proxy's operator"
            )));
        }
        if self.allow_ports.iter().any(|r| r.contains(port)) {
            return Ok(());
        }
        if let Some((_, _, what)) = DENIED_PORTS
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&port))
        {
            return Err(Refusal::policy(format!(
                "port {port} belongs to another service ({what}), not telnet"
            )));
        }
        Ok(())
    }

    /// Checks a host before resolving it.
    pub fn check_host(&self, host: &Host) -> Result<NameVerdict, Refusal> {
        match host {
            Host::Ip(ip) => {
                self.check_ip(*ip, false)?;
                Ok(NameVerdict {
                    operator_allowed: false,
                })
            }
            Host::Name(name) => {
                if self.deny_hosts.iter().any(|p| name_matches(p, name)) {
                    return Err(Refusal::policy(format!(
                        "`{name}` is denied by this proxy's operator"
                    )));
                }
                let operator_allowed = self.allow_hosts.iter().any(|p| name_matches(p, name));
                if !self.allow_private && !operator_allowed {
                    if name == "localhost" || name.ends_with(".localhost") {
                        return Err(Refusal::policy(format!("`{name}` is a loopback name")));
                    }
                    if !name.contains('.') {
                        return Err(Refusal::policy(format!(
                            "`{name}` is a single-label name (local network names are not resolved)"
                        )));
                    }
                }
                Ok(NameVerdict { operator_allowed })
            }
        }
    }

    /// Checks one address (a literal, or one of a name's resolved addresses).
    pub fn check_ip(&self, ip: IpAddr, operator_allowed_name: bool) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        if let Some(net) = self.deny_nets.iter().find(|n| n.contains(ip)) {
            return Err(Refusal::policy(format!(
                "{ip} is in {net}, denied by this proxy's operator"
            )));
        }
        if self.allow_private
            || operator_allowed_name
            || self.allow_nets.iter().any(|n| n.contains(ip))
        {
            return Ok(());
        }
        match non_public_reason(ip) {
            Some(why) => Err(Refusal::policy(format!(
                "{ip} is not a public address: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// Parses and checks a target as far as it can be without DNS: the whole check for IP
    /// literals, the name and port checks for names.
    pub fn check_target(&self, host: &str, port: u16) -> Result<(Host, NameVerdict), Refusal> {
        let h = parse_host(host)?;
        self.check_port(port)?;
        let v = self.check_host(&h)?;
        Ok((h, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_ipv4() {
        let l = |s| parse_ipv4_loose(s);
        assert_eq!(l("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(l("2130706433"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(l("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(l("017700000001"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(l("127.0.0.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(l("1.2.3.256"), None);
        assert_eq!(l("1.2.3.4.5"), None);
        assert_eq!(l("08"), None);
        assert_eq!(l("1..2"), None);
    }

    #[test]
    fn ports() {
        let p = Policy::default();
        assert!(p.check_port(23).is_ok());
        assert!(p.check_port(4000).is_ok());
        assert_eq!(p.check_port(22).unwrap_err().code, "refused_by_policy");
        assert_eq!(p.check_port(0).unwrap_err().code, "bad_port");
        let p = Policy {
            allow_ports: vec!["22".parse().unwrap()],
            deny_ports: vec!["4000-4010".parse().unwrap()],
            ..Policy::default()
        };
        assert!(p.check_port(22).is_ok());
        assert!(p.check_port(4005).is_err());
    }

    #[test]
    fn name_patterns() {
        assert!(name_matches("*.example.org", "a.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(!name_matches("*.example.org", "aexample.org"));
        assert!(name_matches("Example.org.", "example.org"));
    }
}
