//! Telnet bytes as types: commands, negotiation verbs and options with telnetlib3's names.
//!
//! The JSON/fingerprint names (spec §1) are the contract; anything outside the table is
//! written `0x%02x`. The option groups drive which options the scan offers and probes.

use core::fmt;

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Negotiation verbs.
pub const DONT: u8 = 254;
/// Negotiation verbs.
pub const DO: u8 = 253;
/// Negotiation verbs.
pub const WONT: u8 = 252;
/// Negotiation verbs.
pub const WILL: u8 = 251;
/// Sub-negotiation begin.
pub const SB: u8 = 250;
/// Go ahead.
pub const GA: u8 = 249;
/// Erase line.
pub const EL: u8 = 248;
/// Erase character.
pub const EC: u8 = 247;
/// Are you there.
pub const AYT: u8 = 246;
/// Abort output.
pub const AO: u8 = 245;
/// Interrupt process.
pub const IP: u8 = 244;
/// Break.
pub const BRK: u8 = 243;
/// Data mark.
pub const DM: u8 = 242;
/// No operation.
pub const NOP: u8 = 241;
/// Sub-negotiation end.
pub const SE: u8 = 240;
/// End of record.
pub const CMD_EOR: u8 = 239;
/// Abort.
pub const ABORT: u8 = 238;
/// Suspend.
pub const SUSP: u8 = 237;
/// End of file.
pub const CMD_EOF: u8 = 236;

/// The two-byte commands telnetlib3 consumes silently (spec §2.4 parser details). Any other
/// byte after IAC (outside a sub-negotiation) drops the IAC and is kept as data.
pub fn is_two_byte_command(b: u8) -> bool {
    matches!(
        b,
        NOP | GA | CMD_EOR | DM | BRK | IP | AO | AYT | EC | EL | CMD_EOF | SUSP | ABORT
    )
}

/// A name for a command byte, for the timeline.
pub fn command_name(b: u8) -> &'static str {
    match b {
        IAC => "IAC",
        DONT => "DONT",
        DO => "DO",
        WONT => "WONT",
        WILL => "WILL",
        SB => "SB",
        GA => "GA",
        EL => "EL",
        EC => "EC",
        AYT => "AYT",
        AO => "AO",
        IP => "IP",
        BRK => "BRK",
        DM => "DM",
        NOP => "NOP",
        SE => "SE",
        CMD_EOR => "EOR",
        ABORT => "ABORT",
        SUSP => "SUSP",
        CMD_EOF => "EOF",
        _ => "?",
    }
}

/// A negotiation verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Verb {
    /// `WILL`: the sender offers to perform the option.
    Will,
    /// `WONT`: the sender refuses to perform the option.
    Wont,
    /// `DO`: the sender asks the peer to perform the option.
    Do,
    /// `DONT`: the sender asks the peer not to perform the option.
    Dont,
}

impl Verb {
    /// The command byte.
    pub fn byte(self) -> u8 {
        match self {
            Verb::Will => WILL,
            Verb::Wont => WONT,
            Verb::Do => DO,
            Verb::Dont => DONT,
        }
    }

    /// The verb for a command byte.
    pub fn from_byte(b: u8) -> Option<Verb> {
        match b {
            WILL => Some(Verb::Will),
            WONT => Some(Verb::Wont),
            DO => Some(Verb::Do),
            DONT => Some(Verb::Dont),
            _ => None,
        }
    }

    /// Upper-case name.
    pub fn name(self) -> &'static str {
        command_name(self.byte())
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A telnet option byte.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TelOpt(pub u8);

macro_rules! options {
    ($($name:ident = $byte:expr),* $(,)?) => {
        impl TelOpt {
            $(#[allow(missing_docs)] pub const $name: TelOpt = TelOpt($byte);)*
        }
        /// The 57 names of telnetlib3's fingerprint table (spec §1).
        const NAMES: &[(u8, &str)] = &[$(($byte, stringify!($name))),*];
    };
}

options! {
    BINARY = 0, ECHO = 1, RCP = 2, SGA = 3, NAMS = 4, STATUS = 5, RCTE = 7, NAOL = 8,
    NAOP = 9, NAOCRD = 10, NAOHTS = 11, NAOHTD = 12, NAOFFD = 13, NAOVTS = 14, NAOVTD = 15,
    NAOLFD = 16, BM = 19, DET = 20, SUPDUP = 21, SUPDUPOUTPUT = 22, SNDLOC = 23, TTYPE = 24,
    EOR = 25, TTYLOC = 28, VT3270REGIME = 29, X3PAD = 30, NAWS = 31, TSPEED = 32, LFLOW = 33,
    LINEMODE = 34, XDISPLOC = 35, AUTHENTICATION = 37, ENCRYPT = 38, NEW_ENVIRON = 39,
    TN3270E = 40, XAUTH = 41, CHARSET = 42, RSP = 43, COM_PORT = 44, SUPPRESS_LOCAL_ECHO = 45,
    TLS = 46, KERMIT = 47, SEND_URL = 48, FORWARD_X = 49, MSDP = 69, MSSP = 70, MCCP2 = 86,
    MCCP3 = 87, MSP = 90, MXP = 91, ZMP = 93, AARDWOLF = 102, PRAGMA_LOGON = 138,
    SSPI_LOGON = 139, PRAGMA_HEARTBEAT = 140, ATCP = 200, GMCP = 201,
}

impl TelOpt {
    /// Timing mark (not in the fingerprint table: its JSON name is `0x06`).
    pub const TM: TelOpt = TelOpt(6);
    /// Logout (JSON name `0x12`).
    pub const LOGOUT: TelOpt = TelOpt(18);
    /// MCCP version 1 (JSON name `0x55`).
    pub const MCCP1: TelOpt = TelOpt(85);

    /// The fingerprint-table name, if the byte has one.
    pub fn table_name(self) -> Option<&'static str> {
        NAMES.iter().find(|(b, _)| *b == self.0).map(|(_, n)| *n)
    }

    /// The JSON and fingerprint name: the table name, else `0x%02x`.
    pub fn json_name(self) -> String {
        match self.table_name() {
            Some(n) => n.to_owned(),
            None => format!("0x{:02x}", self.0),
        }
    }

    /// A readable name for the timeline (table names plus TM, LOGOUT and MCCP1).
    pub fn display_name(self) -> String {
        match self {
            TelOpt::TM => "TM".into(),
            TelOpt::LOGOUT => "LOGOUT".into(),
            TelOpt::MCCP1 => "MCCP1".into(),
            _ => match self.table_name() {
                Some(n) => n.into(),
                None => format!("0x{:02x}", self.0),
            },
        }
    }

    /// Looks an option up by table name (also `TM`, `LOGOUT`) or decimal number, as the
    /// `--always-*` flags accept them.
    pub fn parse(s: &str) -> Option<TelOpt> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u8>() {
            return Some(TelOpt(n));
        }
        let up = s.to_ascii_uppercase();
        let alias = match up.as_str() {
            "TM" => return Some(TelOpt::TM),
            "LOGOUT" => return Some(TelOpt::LOGOUT),
            "COM_PORT_OPTION" => "COM_PORT",
            "MCCP2_COMPRESS" => "MCCP2",
            "MCCP3_COMPRESS" => "MCCP3",
            other => other,
        };
        NAMES
            .iter()
            .find(|(_, n)| *n == alias)
            .map(|(b, _)| TelOpt(*b))
    }
}

impl fmt::Display for TelOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// CORE options, in telnetlib3's order.
pub const CORE: &[TelOpt] = &[
    TelOpt::BINARY,
    TelOpt::SGA,
    TelOpt::ECHO,
    TelOpt::STATUS,
    TelOpt::TTYPE,
    TelOpt::TSPEED,
    TelOpt::LFLOW,
    TelOpt::XDISPLOC,
    TelOpt::NAWS,
    TelOpt::NEW_ENVIRON,
    TelOpt::CHARSET,
    TelOpt::LINEMODE,
    TelOpt::EOR,
    TelOpt::SNDLOC,
];

/// MUD options probed with CORE.
pub const MUD: &[TelOpt] = &[TelOpt::COM_PORT];

/// EXTENDED options: offered proactively (WILL and DO) and probed in every scan.
pub const EXTENDED: &[TelOpt] = &[
    TelOpt::MCCP2,
    TelOpt::MCCP3,
    TelOpt::GMCP,
    TelOpt::MSDP,
    TelOpt::MSSP,
    TelOpt::MSP,
    TelOpt::MXP,
    TelOpt::ZMP,
    TelOpt::AARDWOLF,
    TelOpt::ATCP,
];

/// LEGACY options, probed by full scans only.
pub const LEGACY: &[TelOpt] = &[
    TelOpt::AUTHENTICATION,
    TelOpt::ENCRYPT,
    TelOpt::TN3270E,
    TelOpt::XAUTH,
    TelOpt::RSP,
    TelOpt::SUPPRESS_LOCAL_ECHO,
    TelOpt::TLS,
    TelOpt::KERMIT,
    TelOpt::SEND_URL,
    TelOpt::FORWARD_X,
    TelOpt::PRAGMA_LOGON,
    TelOpt::SSPI_LOGON,
    TelOpt::PRAGMA_HEARTBEAT,
    TelOpt::X3PAD,
    TelOpt::VT3270REGIME,
    TelOpt::TTYLOC,
    TelOpt::SUPDUP,
    TelOpt::SUPDUPOUTPUT,
    TelOpt::DET,
    TelOpt::BM,
    TelOpt::RCP,
    TelOpt::NAMS,
    TelOpt::RCTE,
    TelOpt::NAOL,
    TelOpt::NAOP,
    TelOpt::NAOCRD,
    TelOpt::NAOHTS,
    TelOpt::NAOHTD,
    TelOpt::NAOFFD,
    TelOpt::NAOVTS,
    TelOpt::NAOVTD,
    TelOpt::NAOLFD,
];

/// Options only a client performs: never probed with DO.
pub const CLIENT_ONLY: &[TelOpt] = &[
    TelOpt::TTYPE,
    TelOpt::TSPEED,
    TelOpt::NAWS,
    TelOpt::XDISPLOC,
    TelOpt::NEW_ENVIRON,
    TelOpt::LFLOW,
    TelOpt::LINEMODE,
    TelOpt::SNDLOC,
];

/// MUD protocols: the client declines them unless it opted in (it does, via EXTENDED).
pub const MUD_PROTOCOLS: &[TelOpt] = &[
    TelOpt::GMCP,
    TelOpt::MSDP,
    TelOpt::MSSP,
    TelOpt::MSP,
    TelOpt::MXP,
    TelOpt::ZMP,
    TelOpt::AARDWOLF,
    TelOpt::ATCP,
];

/// The options the capability probe asks about, in order (spec §3.1).
pub fn probe_options(full: bool) -> Vec<TelOpt> {
    let mut out: Vec<TelOpt> = Vec::with_capacity(49);
    out.extend(CORE.iter().chain(MUD));
    if full {
        out.extend(LEGACY);
    }
    out.extend(EXTENDED);
    out.retain(|o| !CLIENT_ONLY.contains(o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(NAMES.len(), 57);
        assert_eq!(TelOpt::TM.json_name(), "0x06");
        assert_eq!(TelOpt::LOGOUT.json_name(), "0x12");
        assert_eq!(TelOpt(85).json_name(), "0x55");
        assert_eq!(TelOpt(255).json_name(), "0xff");
        assert_eq!(TelOpt::COM_PORT.json_name(), "COM_PORT");
        assert_eq!(TelOpt::parse("com_port_option"), Some(TelOpt::COM_PORT));
        assert_eq!(TelOpt::parse("201"), Some(TelOpt::GMCP));
    }

    #[test]
    fn probe_lists() {
        let quick: Vec<String> = probe_options(false).iter().map(|o| o.json_name()).collect();
        assert_eq!(
            quick.join(","),
            "BINARY,SGA,ECHO,STATUS,CHARSET,EOR,COM_PORT,MCCP2,MCCP3,GMCP,MSDP,MSSP,MSP,MXP,ZMP,AARDWOLF,ATCP"
        );
        assert_eq!(probe_options(true).len(), 49);
    }
}
