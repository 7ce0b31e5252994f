//! Replaying a *relay* transcript (the proxy's own `recv`/`send`/`eof` record, no `tick`s)
//! through a fresh engine on a virtual clock, so a saved record rests on the bytes the proxy
//! saw and the times it saw them, never on what the browser reports.
//!
//! The engine's own transcripts carry `tick` entries and replay exactly with
//! `iacscope_shared::replay`. A relay transcript has no ticks: the timers are re-derived
//! here. Every `recv` is fed at its recorded time; before it, every deadline that
//! `poll_timeout()` names and that falls strictly before that time fires at exactly that
//! deadline; after it, the engine runs at the same instant while it asks to. A reply that
//! lands at the very instant a window closes therefore counts as inside the window. After
//! the last entry the timers run on (silence) until the scan is done. Only the engine is
//! needed, so this is pure, tested without sockets, and the same code runs in the proxy (a
//! save) and in the browser (a permalink page replays the stored transcript with it).

use crate::config::{ScanConfig, ScanType};
use crate::event::Event;
use crate::scan::Scanner;
use crate::time::Timestamp;
use crate::transcript::{Entry, Transcript};
use serde::Deserialize;

/// Upper bound on engine steps in one replay: every phase has a deadline, so a scan ends in
/// far fewer; this only keeps a engine bug from hanging a request.
pub const MAX_REPLAY_STEPS: usize = 1_000_000;

/// Longest `encoding` the browser may name (codec names are short).
pub const MAX_ENCODING_LEN: usize = 32;

/// Longest `ttype` the browser may name.
pub const MAX_TTYPE_LEN: usize = 64;

/// The scan settings a browser may report with a save. Only these are taken from it; every
/// other setting is telnetlib3-fingerprint's default (as the web app uses), `tls` comes from
/// the proxy's own session and `COLORTERM` is empty (a browser has no environment).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SaveConfig {
    /// `quick` (default) or `full`.
    #[serde(default)]
    pub scan_type: Option<String>,
    /// `--encoding` (default `ascii`).
    #[serde(default)]
    pub encoding: Option<String>,
    /// `--ttype` (default `VT100`).
    #[serde(default)]
    pub ttype: Option<String>,
}

impl SaveConfig {
    /// The engine configuration, or why the settings are refused.
    pub fn to_scan_config(&self, tls: bool) -> Result<ScanConfig, String> {
        let mut cfg = ScanConfig {
            tls,
            ..ScanConfig::default()
        };
        if let Some(s) = &self.scan_type {
            cfg.scan_type = ScanType::parse(s).ok_or("scan_type: quick or full")?;
        }
        if let Some(e) = &self.encoding {
            let ok = !e.is_empty()
                && e.len() <= MAX_ENCODING_LEN
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err("encoding: a codec name (letters, digits, - _ .)".into());
            }
            cfg.encoding = e.clone();
        }
        if let Some(t) = &self.ttype {
            let ok = !t.is_empty()
                && t.len() <= MAX_TTYPE_LEN
                && t.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if !ok {
                return Err("ttype: printable ASCII, at most 64 characters".into());
            }
            cfg.ttype = t.clone();
        }
        Ok(cfg)
    }

    /// The canonical text of the settings (part of the content id and stored with it).
    pub fn canonical(cfg: &ScanConfig) -> String {
        format!(
            "scan-type={} encoding={} ttype={} tls={}",
            cfg.scan_type.as_str(),
            cfg.encoding,
            cfg.ttype,
            u8::from(cfg.tls)
        )
    }

    /// Reads [`SaveConfig::canonical`] text back into the engine configuration (a
    /// permalink page replays a stored transcript with it), or says what is wrong. The
    /// `ttype` may hold spaces; `tls=` is the last field.
    pub fn from_canonical(text: &str) -> Result<ScanConfig, String> {
        let bad = || format!("not a scan configuration: {text:?}");
        let rest = text.strip_prefix("scan-type=").ok_or_else(bad)?;
        let (rest, tls) = rest.rsplit_once(" tls=").ok_or_else(bad)?;
        let (scan_type, rest) = rest.split_once(" encoding=").ok_or_else(bad)?;
        let (encoding, ttype) = rest.split_once(" ttype=").ok_or_else(bad)?;
        let tls = match tls {
            "0" => false,
            "1" => true,
            _ => return Err(bad()),
        };
        SaveConfig {
            scan_type: Some(scan_type.to_owned()),
            encoding: Some(encoding.to_owned()),
            ttype: Some(ttype.to_owned()),
        }
        .to_scan_config(tls)
    }
}

/// What a relay replay gives.
pub struct RelayReplay {
    /// The engine after the replay (done unless [`MAX_REPLAY_STEPS`] was hit).
    pub scanner: Scanner,
    /// The bytes the replayed engine would have sent, concatenated.
    pub sent: Vec<u8>,
    /// The bytes the browser actually sent (the transcript's `send` entries), concatenated.
    pub recorded_sent: Vec<u8>,
    /// Virtual time at which the scan ended.
    pub ended: Timestamp,
}

impl RelayReplay {
    /// Whether the browser sent exactly what the replayed engine sends. When not, the two
    /// timelines diverged (a window edge, a late timer in the tab) or the browser is not
    /// running our engine; the record still follows the proxy's timeline.
    pub fn consistent(&self) -> bool {
        self.sent == self.recorded_sent
    }
}

/// Replays a relay transcript with `cfg` (see the module doc for the clock rules).
pub fn replay_relay(t: &Transcript, cfg: ScanConfig) -> RelayReplay {
    replay_relay_with(t, cfg, |_| {})
}

/// [`replay_relay`], handing every engine event to `on_event` in order (a permalink page
/// builds its timeline from them).
pub fn replay_relay_with(
    t: &Transcript,
    cfg: ScanConfig,
    mut on_event: impl FnMut(Event),
) -> RelayReplay {
    let mut s = Scanner::new(cfg, Timestamp::ZERO);
    let mut sent = Vec::new();
    let mut now = Timestamp::ZERO;
    let mut steps = 0usize;
    let mut drain = |s: &mut Scanner, sent: &mut Vec<u8>| {
        while let Some(b) = s.poll_transmit() {
            sent.extend_from_slice(&b);
        }
        while let Some(e) = s.poll_event() {
            on_event(e);
        }
    };
    drain(&mut s, &mut sent);
    let recorded_sent: Vec<u8> = t
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Send(_, b) => Some(b.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat();
    for e in &t.entries {
        if s.is_done() || steps >= MAX_REPLAY_STEPS {
            break;
        }
        let at = e.time().max(now);
        // Timers due strictly before this entry fire at their own deadline.
        while let Some(d) = s.poll_timeout() {
            if d >= at || s.is_done() || steps >= MAX_REPLAY_STEPS {
                break;
            }
            now = d.max(now);
            s.handle_timeout(now);
            drain(&mut s, &mut sent);
            steps += 1;
        }
        if s.is_done() {
            break;
        }
        now = at;
        match e {
            Entry::Recv(_, b) => s.handle_input(now, b),
            Entry::Eof(_) => s.handle_eof(now),
            // `send` is the browser's output; ticks are not in relay transcripts, and if
            // one is, the re-derived timers already cover it.
            Entry::Send(..) | Entry::Tick(_) => continue,
        }
        drain(&mut s, &mut sent);
        // The engine runs at this same instant while it asks to (it does after input).
        while let Some(d) = s.poll_timeout() {
            if d > now || steps >= MAX_REPLAY_STEPS {
                break;
            }
            s.handle_timeout(now);
            drain(&mut s, &mut sent);
            steps += 1;
        }
    }
    // Silence after the last entry: timers run until the scan ends.
    while !s.is_done() && steps < MAX_REPLAY_STEPS {
        let Some(d) = s.poll_timeout() else { break };
        now = d.max(now);
        s.handle_timeout(now);
        drain(&mut s, &mut sent);
        steps += 1;
    }
    RelayReplay {
        scanner: s,
        sent,
        recorded_sent,
        ended: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay_transcript(entries: Vec<Entry>) -> Transcript {
        let mut t = Transcript::new();
        t.set_meta("host", "mud.test");
        for e in entries {
            t.push(e);
        }
        t
    }

    #[test]
    fn silent_server_ends_on_timers() {
        let t = relay_transcript(vec![
            Entry::Recv(Timestamp(1_000), b"Welcome!\r\n".to_vec()),
            Entry::Eof(Timestamp(50_000)),
        ]);
        let r = replay_relay(&t, ScanConfig::default());
        assert!(r.scanner.is_done());
        assert!(!r.scanner.outcome().fingerprint.is_empty());
        // Same input, same output: the replay is a function of the transcript.
        let again = replay_relay(&t, ScanConfig::default());
        assert_eq!(
            again.scanner.outcome().fingerprint,
            r.scanner.outcome().fingerprint
        );
        assert_eq!(again.sent, r.sent);
    }

    #[test]
    fn whitelisted_settings_only() {
        let c = SaveConfig {
            scan_type: Some("full".into()),
            encoding: Some("utf-8".into()),
            ttype: Some("xterm-256color".into()),
        };
        let cfg = c.to_scan_config(true).expect("valid");
        assert_eq!(cfg.scan_type, ScanType::Full);
        assert!(cfg.tls);
        assert_eq!(cfg.colorterm, "");
        assert_eq!(
            SaveConfig::canonical(&cfg),
            "scan-type=full encoding=utf-8 ttype=xterm-256color tls=1"
        );
        let bad = SaveConfig {
            encoding: Some("utf 8\n".into()),
            ..SaveConfig::default()
        };
        assert!(bad.to_scan_config(false).is_err());
        let unknown = serde_json::from_str::<SaveConfig>(r#"{"banner_max_wait": 1}"#);
        assert!(unknown.is_err(), "only whitelisted fields are accepted");
    }

    #[test]
    fn canonical_text_reads_back() {
        let c = SaveConfig {
            scan_type: Some("full".into()),
            encoding: Some("utf-8".into()),
            ttype: Some("xterm 256 tls=0".into()),
        };
        let cfg = c.to_scan_config(true).expect("valid");
        let text = SaveConfig::canonical(&cfg);
        let back = SaveConfig::from_canonical(&text).expect("parses");
        assert_eq!(SaveConfig::canonical(&back), text);
        assert_eq!(back.ttype, "xterm 256 tls=0");
        assert!(back.tls);
        let quick = SaveConfig::from_canonical("scan-type=quick encoding=ascii ttype=VT100 tls=0")
            .expect("parses");
        assert_eq!(quick.scan_type, ScanType::Quick);
        assert!(!quick.tls);
        for bad in [
            "",
            "scan-type=slow encoding=ascii ttype=VT100 tls=0",
            "scan-type=quick encoding=ascii ttype=VT100 tls=2",
            "scan-type=quick ttype=VT100 tls=0",
            "scan-type=quick encoding=a b ttype=VT100 tls=0",
        ] {
            assert!(SaveConfig::from_canonical(bad).is_err(), "{bad:?}");
        }
    }
}
