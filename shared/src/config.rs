//! Scan configuration: telnetlib3-fingerprint's flags and fixed client settings (spec §2.1, §8).

use crate::telopt::TelOpt;
use crate::time::Micros;
use serde::{Deserialize, Serialize};

/// Quick or full scan (full adds the 32 LEGACY options to the capability probe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScanType {
    /// CORE + MUD + EXTENDED options.
    #[default]
    Quick,
    /// Also the LEGACY options.
    Full,
}

impl ScanType {
    /// `quick` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanType::Quick => "quick",
            ScanType::Full => "full",
        }
    }

    /// Parses `quick` or `full`.
    pub fn parse(s: &str) -> Option<ScanType> {
        match s {
            "quick" => Some(ScanType::Quick),
            "full" => Some(ScanType::Full),
            _ => None,
        }
    }
}

/// Everything that shapes a scan. The defaults are telnetlib3-fingerprint's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanConfig {
    /// `--scan-type`.
    pub scan_type: ScanType,
    /// `--encoding`: the initial session encoding; any value but `ascii` is "explicit" and
    /// blocks encoding switches from fonts and menus.
    pub encoding: String,
    /// `--ttype`: the terminal type sent for every TTYPE SEND.
    pub ttype: String,
    /// `--banner-quiet-time`: silence that ends a banner read.
    pub banner_quiet_time: Micros,
    /// `--banner-max-wait`: the longest a banner read lasts.
    pub banner_max_wait: Micros,
    /// `--banner-max-bytes`: the largest chunk one read returns.
    pub banner_max_bytes: usize,
    /// `--mssp-wait`: how long after the shell starts MSSP data is awaited.
    pub mssp_wait: Micros,
    /// `--send-env KEY=VALUE`: extra NEW_ENVIRON variables the client may send.
    pub send_env: Vec<(String, String)>,
    /// `--always-will`: options the client offers and accepts besides EXTENDED.
    pub always_will: Vec<TelOpt>,
    /// `--always-do`: options the client requests and accepts besides EXTENDED.
    pub always_do: Vec<TelOpt>,
    /// `--always-wont`: options the client always refuses to perform.
    pub always_wont: Vec<TelOpt>,
    /// `--always-dont`: options the client always refuses to let the server perform.
    pub always_dont: Vec<TelOpt>,
    /// The connection is TLS: MCCP2/3 are refused.
    pub tls: bool,
    /// The `COLORTERM` value NEW_ENVIRON may send (the process environment in the CLI,
    /// empty in a browser).
    pub colorterm: String,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            scan_type: ScanType::Quick,
            encoding: "ascii".into(),
            ttype: "VT100".into(),
            banner_quiet_time: Micros::from_millis(2000),
            banner_max_wait: Micros::from_millis(8000),
            banner_max_bytes: 65536,
            mssp_wait: Micros::from_millis(5000),
            send_env: Vec::new(),
            always_will: Vec::new(),
            always_do: Vec::new(),
            always_wont: Vec::new(),
            always_dont: Vec::new(),
            tls: false,
            colorterm: String::new(),
        }
    }
}

impl ScanConfig {
    /// Whether `--encoding` was given a value other than the default `ascii`.
    pub fn encoding_explicit(&self) -> bool {
        self.encoding != "ascii"
    }

    /// The equivalent `telnetlib3-fingerprint` command line (for display).
    pub fn telnetlib3_command(&self, host: &str, port: u16) -> String {
        let mut s = format!("telnetlib3-fingerprint {host} {port}");
        let d = ScanConfig::default();
        if self.scan_type != d.scan_type {
            s += &format!(" --scan-type={}", self.scan_type.as_str());
        }
        if self.encoding != d.encoding {
            s += &format!(" --encoding={}", self.encoding);
        }
        if self.ttype != d.ttype {
            s += &format!(" --ttype={}", self.ttype);
        }
        if self.banner_quiet_time != d.banner_quiet_time {
            s += &format!(
                " --banner-quiet-time={}",
                self.banner_quiet_time.as_secs_f64()
            );
        }
        if self.banner_max_wait != d.banner_max_wait {
            s += &format!(" --banner-max-wait={}", self.banner_max_wait.as_secs_f64());
        }
        if self.tls {
            s += " --ssl";
        }
        s
    }
}
