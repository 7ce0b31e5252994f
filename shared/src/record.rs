//! The scan record: fingerprint data, its hash and the JSON document, exactly as
//! telnetlib3-fingerprint 5.0.1 writes them (spec §4, §5, §6).

use crate::ansi::VirtualCursor;
use crate::codec;
use crate::mud;
use crate::protocol::Protocol;
use crate::pyjson::{self, Dict, Value};
use crate::telopt::TelOpt;
use crate::time::{Micros, Timestamp};

/// A capability probe answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeStatus {
    /// The server will perform the option.
    Will,
    /// The server refused.
    Wont,
    /// No answer within the window (counts as refused).
    Timeout,
}

impl ProbeStatus {
    /// `WILL`, `WONT` or `timeout`, as telnetlib3 names them.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Will => "WILL",
            ProbeStatus::Wont => "WONT",
            ProbeStatus::Timeout => "timeout",
        }
    }
}

/// The connection facts of a record's `sessions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The host as given on the command line.
    pub host: String,
    /// The peer IP address (or the host when unknown).
    pub ip: String,
    /// The port.
    pub port: u16,
    /// `datetime.now(timezone.utc).isoformat()` at the end of the scan.
    pub connected: String,
}

/// What a scan found.
#[derive(Clone, Debug)]
pub struct ScanOutcome {
    /// Capability probe results in probe order.
    pub probe: Vec<(TelOpt, ProbeStatus)>,
    /// Wrong-direction requests the server accepted.
    pub wrong_direction: Vec<TelOpt>,
    /// Looped option names, sorted.
    pub looped: Vec<String>,
    /// The `option_states` snapshot taken before the probes.
    pub option_states: Option<Value>,
    /// Whether the probes ran (not when the connection closed first).
    pub probe_ran: bool,
    /// When the probes began.
    pub probe_started: Option<Timestamp>,
    /// How long the probes took.
    pub probe_time: Micros,
    /// From the shell start to the end.
    pub total_time: Micros,
    /// The 8-key `fingerprint-data`.
    pub fingerprint_data: Value,
    /// Its hash.
    pub fingerprint: String,
    /// `session_data`.
    pub session_data: Value,
    /// Raw banner bytes before the return.
    pub banner_before: Vec<u8>,
    /// Raw banner bytes after the return.
    pub banner_after: Vec<u8>,
    /// The session encoding at the end.
    pub encoding: String,
    /// What chose it (`Protocol::encoding_source`); display only.
    pub encoding_source: &'static str,
}

impl Default for ScanOutcome {
    fn default() -> Self {
        ScanOutcome {
            probe: Vec::new(),
            wrong_direction: Vec::new(),
            looped: Vec::new(),
            option_states: None,
            probe_ran: false,
            probe_started: None,
            probe_time: Micros(0),
            total_time: Micros(0),
            fingerprint_data: Value::Null,
            fingerprint: String::new(),
            session_data: Value::Null,
            banner_before: Vec::new(),
            banner_after: Vec::new(),
            encoding: String::new(),
            encoding_source: "default",
        }
    }
}

fn names(opts: impl IntoIterator<Item = TelOpt>) -> Vec<String> {
    let mut v: Vec<String> = opts.into_iter().map(|o| o.json_name()).collect();
    v.sort();
    v.dedup();
    v
}

fn str_list(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::from).collect())
}

/// `_collect_server_option_states`.
pub fn option_states(p: &Protocol) -> Value {
    let table = |t: &crate::protocol::OptTable| {
        let mut d = Dict::new();
        for (o, v) in t.items() {
            d.insert(
                o.json_name(),
                match v {
                    Some(b) => Value::Bool(b),
                    None => Value::Null,
                },
            );
        }
        Value::Dict(d)
    };
    let mut d = Dict::new();
    d.insert("server_offered", table(&p.remote));
    d.insert("server_requested", table(&p.local));
    d.insert(
        "directional_refusals",
        str_list(names(p.directional_refusals.iter().copied())),
    );
    if let Some(raw) = &p.environ_send_raw {
        d.insert("environ_requested", mud::environ_requested(raw));
    }
    Value::Dict(d)
}

/// Seconds as telnetlib3 stores them (a float).
fn secs(m: Micros) -> Value {
    Value::Float(m.as_secs_f64())
}

impl ScanOutcome {
    /// Builds the fingerprint and `session_data` at the end of the scan.
    pub(crate) fn finish(
        &mut self,
        p: &Protocol,
        before: Vec<u8>,
        after: Vec<u8>,
        cursor: &VirtualCursor,
    ) {
        let cfg = p.config();
        let offered = names(
            self.probe
                .iter()
                .filter(|(_, s)| *s == ProbeStatus::Will)
                .map(|(o, _)| *o),
        );
        let refused = names(
            self.probe
                .iter()
                .filter(|(_, s)| *s != ProbeStatus::Will)
                .map(|(o, _)| *o),
        );
        let requested = names(
            p.local
                .items()
                .filter(|(_, v)| *v == Some(true))
                .map(|(o, _)| o),
        );
        let mut fp = Dict::new();
        fp.insert("probed-protocol", "server");
        fp.insert("scan-type", cfg.scan_type.as_str());
        fp.insert("offered-options", str_list(offered));
        fp.insert("requested-options", str_list(requested));
        fp.insert("refused-options", str_list(refused));
        fp.insert(
            "wrong-direction-offered",
            str_list(names(self.wrong_direction.iter().copied())),
        );
        fp.insert(
            "directional-refusals",
            str_list(names(p.directional_refusals.iter().copied())),
        );
        fp.insert("looped-negotiation", str_list(self.looped.clone()));
        self.fingerprint_data = Value::Dict(fp);
        self.fingerprint = pyjson::fingerprint_hash(&self.fingerprint_data);

        let enc = p.encoding.clone();
        let mut sd = Dict::new();
        sd.insert(
            "option_states",
            self.option_states
                .clone()
                .unwrap_or_else(|| option_states(p)),
        );
        sd.insert("scan_type", cfg.scan_type.as_str());
        sd.insert("encoding", enc.as_str());
        sd.insert(
            "banner_before_return",
            Value::Str(codec::decode_surrogateescape(&enc, &before)),
        );
        sd.insert(
            "banner_after_return",
            Value::Str(codec::decode_surrogateescape(&enc, &after)),
        );
        let mut timing = Dict::new();
        timing.insert("probe", secs(self.probe_time));
        timing.insert("total", secs(self.total_time));
        sd.insert("timing", Value::Dict(timing));
        sd.insert("dsr_requests", i64::from(cursor.dsr_requests));
        sd.insert("dsr_replies", i64::from(cursor.dsr_replies));
        if let Some(m) = &p.mud.mssp {
            sd.insert("mssp", Value::Dict(m.clone()));
        }
        if !p.mud.zmp.is_empty() {
            let mut z = Dict::new();
            for (k, v) in &p.mud.zmp {
                z.insert(
                    k.clone(),
                    Value::List(v.iter().cloned().map(Value::Str).collect()),
                );
            }
            sd.insert("zmp", Value::Dict(z));
        }
        if !p.mud.atcp.is_empty() {
            let l = p
                .mud
                .atcp
                .iter()
                .map(|(pkg, val)| {
                    let mut d = Dict::new();
                    d.insert("package", Value::Str(pkg.clone()));
                    d.insert("value", Value::Str(val.clone()));
                    Value::Dict(d)
                })
                .collect();
            sd.insert("atcp", Value::List(l));
        }
        if !p.mud.aardwolf.is_empty() {
            sd.insert("aardwolf", Value::List(p.mud.aardwolf.clone()));
        }
        if !p.mud.mxp.is_empty() {
            let l = p
                .mud
                .mxp
                .iter()
                .map(|d| {
                    if d.is_empty() {
                        Value::from("activated")
                    } else {
                        Value::from(mud::hex(d))
                    }
                })
                .collect();
            sd.insert("mxp", Value::List(l));
        }
        if let Some(c) = &p.mud.comport {
            if !c.is_empty() {
                sd.insert("comport", Value::Dict(c.clone()));
            }
        }
        self.session_data = Value::Dict(sd);
        self.banner_before = before;
        self.banner_after = after;
        self.encoding = enc;
        self.encoding_source = p.encoding_source;
    }

    /// The whole JSON record (`server-probe` and `sessions`).
    pub fn record(&self, session: &SessionInfo) -> Value {
        let mut sp = Dict::new();
        sp.insert("fingerprint", self.fingerprint.as_str());
        sp.insert("fingerprint-data", self.fingerprint_data.clone());
        sp.insert("session_data", self.session_data.clone());
        let mut rec = Dict::new();
        rec.insert("server-probe", Value::Dict(sp));
        rec.insert("sessions", Value::List(vec![session_entry(session)]));
        Value::Dict(rec)
    }
}

/// One `sessions` entry.
pub fn session_entry(s: &SessionInfo) -> Value {
    let mut d = Dict::new();
    d.insert("connected", s.connected.as_str());
    d.insert("host", s.host.as_str());
    d.insert("ip", s.ip.as_str());
    d.insert("port", i64::from(s.port));
    Value::Dict(d)
}

/// The session hash, the record's file name: the fingerprint hash of
/// `{"host": h, "ip": ip, "port": p}`.
pub fn session_hash(host: &str, ip: &str, port: u16) -> String {
    let mut d = Dict::new();
    d.insert("host", host);
    d.insert("ip", ip);
    d.insert("port", i64::from(port));
    pyjson::fingerprint_hash(&Value::Dict(d))
}

/// telnetlib3's save into an existing `<dir>/server/<fp>/<session>.json`: the old
/// `fingerprint-data` is kept, `session_data` replaced, the session entry appended.
pub fn merge_into_existing(existing: Value, new: &Value) -> Value {
    let (Value::Dict(mut old), Value::Dict(newd)) = (existing, new) else {
        return new.clone();
    };
    let new_sd = newd
        .get("server-probe")
        .and_then(|v| v.as_dict())
        .and_then(|d| d.get("session_data"))
        .cloned();
    if let (Some(Value::Dict(sp)), Some(sd)) = (old.get_mut("server-probe"), new_sd) {
        sp.insert("session_data", sd);
    }
    let new_sessions: Vec<Value> = newd
        .get("sessions")
        .and_then(|v| v.as_list())
        .cloned()
        .unwrap_or_default();
    match old.get_mut("sessions") {
        Some(Value::List(l)) => l.extend(new_sessions),
        _ => {
            old.insert("sessions", Value::List(new_sessions));
        }
    }
    Value::Dict(old)
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds (for people: the embed widget, MSSP `UPTIME`).
pub fn short_date(unix_secs: i64) -> String {
    let iso = isoformat_utc(unix_secs.saturating_mul(1_000_000));
    format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "))
}

/// Python's `datetime.isoformat()` read back to Unix microseconds:
/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}][+HH:MM|-HH:MM|Z]` (no offset is read as UTC). Works on
/// bytes, so any text (a multi-byte character anywhere) is an answer, never a panic.
pub fn parse_isoformat(s: &str) -> Option<i64> {
    fn num(b: &[u8]) -> Option<i64> {
        if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }
    let b = s.as_bytes();
    let at = |from: usize, to: usize| b.get(from..to).and_then(num);
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (at(0, 4)?, at(5, 7)?, at(8, 10)?);
    let (h, mi, sec) = (at(11, 13)?, at(14, 16)?, at(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&n) {
            return None;
        }
        micros = num(&r[..n])? * 10_i64.pow(6 - n as u32);
        rest = &r[n..];
    }
    let offset = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000 + micros)
}

/// Formats a UTC time as Python's `datetime.isoformat()` with `+00:00` (the `.ffffff` part is
/// left out when the microseconds are zero).
pub fn isoformat_utc(unix_micros: i64) -> String {
    let secs = unix_micros.div_euclid(1_000_000);
    let micros = unix_micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    if micros == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}+00:00")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{micros:06}+00:00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hash_vectors() {
        assert_eq!(
            session_hash("ats.trekmush.org", "104.248.178.112", 1701),
            "c97fb8e6a04eec05"
        );
        assert_eq!(
            session_hash("127.0.0.1", "127.0.0.1", 6023),
            "17151b82e6dbfef0"
        );
        assert_eq!(
            session_hash("127.0.0.1", "127.0.0.1", 7001),
            "bd47927de99078fd"
        );
        assert_eq!(
            session_hash("127.0.0.1", "127.0.0.1", 7002),
            "1899ae520b375d72"
        );
        assert_eq!(
            session_hash("127.0.0.1", "127.0.0.1", 7003),
            "727f7772dd21997e"
        );
        assert_eq!(
            session_hash("127.0.0.1", "127.0.0.1", 7004),
            "649d54a4d1ba97c4"
        );
    }

    #[test]
    fn isoformat() {
        assert_eq!(isoformat_utc(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(short_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(short_date(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(
            isoformat_utc(1_795_552_212_493_504),
            "2026-11-24T20:30:12.493504+00:00"
        );
    }
}
