//! Replaying a transcript through a fresh engine: the same inputs at the same times give the
//! same timeline and the same record. Permalinks and golden tests rest on this.

use crate::config::{ScanConfig, ScanType};
use crate::scan::Scanner;
use crate::telopt::TelOpt;
use crate::time::{Micros, Timestamp};
use crate::transcript::{Entry, Transcript};

/// Writes a configuration into transcript metadata (`meta config.*` lines).
pub fn config_to_meta(cfg: &ScanConfig, t: &mut Transcript) {
    let opts = |v: &[TelOpt]| {
        v.iter()
            .map(|o| o.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    t.set_meta("config.scan-type", cfg.scan_type.as_str());
    t.set_meta("config.encoding", cfg.encoding.clone());
    t.set_meta("config.ttype", cfg.ttype.clone());
    t.set_meta(
        "config.banner-quiet-us",
        cfg.banner_quiet_time.0.to_string(),
    );
    t.set_meta("config.banner-max-us", cfg.banner_max_wait.0.to_string());
    t.set_meta("config.banner-max-bytes", cfg.banner_max_bytes.to_string());
    t.set_meta("config.mssp-wait-us", cfg.mssp_wait.0.to_string());
    t.set_meta("config.tls", if cfg.tls { "1" } else { "0" });
    t.set_meta("config.colorterm", cfg.colorterm.clone());
    t.set_meta("config.always-will", opts(&cfg.always_will));
    t.set_meta("config.always-do", opts(&cfg.always_do));
    t.set_meta("config.always-wont", opts(&cfg.always_wont));
    t.set_meta("config.always-dont", opts(&cfg.always_dont));
    let env: Vec<String> = cfg
        .send_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    t.set_meta("config.send-env", env.join("\u{1f}"));
}

/// Reads a configuration from transcript metadata; missing keys keep their defaults.
pub fn config_from_meta(t: &Transcript) -> Result<ScanConfig, String> {
    let mut cfg = ScanConfig::default();
    let num = |k: &str| -> Result<Option<u64>, String> {
        t.meta(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("meta {k}: not a number"))
            })
            .transpose()
    };
    let opts = |k: &str| -> Result<Vec<TelOpt>, String> {
        match t.meta(k) {
            None | Some("") => Ok(Vec::new()),
            Some(v) => v
                .split(',')
                .map(|x| {
                    x.parse::<u8>()
                        .map(TelOpt)
                        .map_err(|_| format!("meta {k}: bad option {x:?}"))
                })
                .collect(),
        }
    };
    if let Some(v) = t.meta("config.scan-type") {
        cfg.scan_type = ScanType::parse(v).ok_or("meta config.scan-type: quick or full")?;
    }
    if let Some(v) = t.meta("config.encoding") {
        cfg.encoding = v.to_owned();
    }
    if let Some(v) = t.meta("config.ttype") {
        cfg.ttype = v.to_owned();
    }
    if let Some(v) = num("config.banner-quiet-us")? {
        cfg.banner_quiet_time = Micros(v);
    }
    if let Some(v) = num("config.banner-max-us")? {
        cfg.banner_max_wait = Micros(v);
    }
    if let Some(v) = num("config.banner-max-bytes")? {
        cfg.banner_max_bytes = usize::try_from(v).unwrap_or(usize::MAX).max(1);
    }
    if let Some(v) = num("config.mssp-wait-us")? {
        cfg.mssp_wait = Micros(v);
    }
    cfg.tls = t.meta("config.tls") == Some("1");
    if let Some(v) = t.meta("config.colorterm") {
        cfg.colorterm = v.to_owned();
    }
    cfg.always_will = opts("config.always-will")?;
    cfg.always_do = opts("config.always-do")?;
    cfg.always_wont = opts("config.always-wont")?;
    cfg.always_dont = opts("config.always-dont")?;
    if let Some(v) = t.meta("config.send-env") {
        for kv in v.split('\u{1f}').filter(|s| !s.is_empty()) {
            let (k, val) = kv
                .split_once('=')
                .ok_or("meta config.send-env: KEY=VALUE")?;
            cfg.send_env.push((k.to_owned(), val.to_owned()));
        }
    }
    Ok(cfg)
}

/// Feeds a transcript's inputs (`recv`, `eof`, `tick`) into a new scanner made with `cfg`,
/// draining output and events as a live driver would. `on_event` sees every event.
pub fn replay_with(
    t: &Transcript,
    cfg: ScanConfig,
    mut on_event: impl FnMut(&crate::event::Event),
) -> Scanner {
    let mut s = Scanner::new(cfg, Timestamp::ZERO);
    let mut drain = |s: &mut Scanner| {
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            on_event(&e);
        }
    };
    drain(&mut s);
    for e in &t.entries {
        match e {
            Entry::Recv(at, b) => s.handle_input(*at, b),
            Entry::Eof(at) => s.handle_eof(*at),
            Entry::Tick(at) => s.handle_timeout(*at),
            Entry::Send(..) => {}
        }
        drain(&mut s);
    }
    s
}

/// Replays a transcript with the configuration stored in its metadata.
pub fn replay(t: &Transcript) -> Result<Scanner, String> {
    let cfg = config_from_meta(t)?;
    Ok(replay_with(t, cfg, |_| {}))
}
