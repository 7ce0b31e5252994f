//! Human-readable meanings of sub-negotiation payloads for the timeline, e.g.
//! `TTYPE IS "VT100"`, `NAWS 80x25`, `CHARSET REQUEST [x-penn-def, UTF-8]`.
//!
//! Display only: nothing here affects the scan or the record. Output is bounded.

use crate::event::{preview, Dir};
use crate::telopt::{command_name, TelOpt};

/// Longest meaning string produced.
pub const MAX_MEANING_CHARS: usize = 400;

/// Describes `IAC SB opt payload IAC SE`.
pub fn subnegotiation(opt: TelOpt, p: &[u8], _dir: Dir) -> String {
    let body = describe(opt, p);
    let mut s = if body.is_empty() {
        opt.to_string()
    } else {
        format!("{opt} {body}")
    };
    if s.chars().count() > MAX_MEANING_CHARS {
        s = s.chars().take(MAX_MEANING_CHARS).collect::<String>() + "…";
    }
    s
}

fn quoted(b: &[u8]) -> String {
    preview(b)
}

fn describe(opt: TelOpt, p: &[u8]) -> String {
    let (first, rest) = match p.split_first() {
        Some((f, r)) => (Some(*f), r),
        None => (None, p),
    };
    match opt {
        TelOpt::TTYPE | TelOpt::TSPEED | TelOpt::XDISPLOC | TelOpt::SNDLOC => match first {
            Some(0) => format!("IS {}", quoted(rest)),
            Some(1) => "SEND".into(),
            _ => quoted(p),
        },
        TelOpt::NAWS if p.len() == 4 => {
            let w = u16::from_be_bytes([p[0], p[1]]);
            let h = u16::from_be_bytes([p[2], p[3]]);
            format!("{w}x{h}")
        }
        TelOpt::NEW_ENVIRON => {
            let verb = match first {
                Some(0) => "IS",
                Some(1) => "SEND",
                Some(2) => "INFO",
                _ => return quoted(p),
            };
            let mut parts = Vec::new();
            let mut cur = String::new();
            for &b in rest {
                match b {
                    0 => {
                        if !cur.is_empty() {
                            parts.push(std::mem::take(&mut cur));
                        }
                        cur.push_str("VAR ");
                    }
                    3 => {
                        if !cur.is_empty() {
                            parts.push(std::mem::take(&mut cur));
                        }
                        cur.push_str("USERVAR ");
                    }
                    1 => cur.push_str("= "),
                    2 => cur.push_str("ESC "),
                    0x20..=0x7e => cur.push(b as char),
                    _ => cur.push_str(&format!("\\x{b:02x}")),
                }
            }
            if !cur.is_empty() {
                parts.push(cur);
            }
            if parts.is_empty() {
                verb.into()
            } else {
                format!("{verb} [{}]", parts.join(", "))
            }
        }
        TelOpt::CHARSET => match first {
            Some(1) => {
                let Some((&sep, names)) = rest.split_first() else {
                    return "REQUEST".into();
                };
                let names: Vec<String> = names
                    .split(|&b| b == sep)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect();
                format!("REQUEST [{}]", names.join(", "))
            }
            Some(2) => format!("ACCEPTED {}", quoted(rest)),
            Some(3) => "REJECTED".into(),
            Some(n) => format!("TTABLE command {n}"),
            None => String::new(),
        },
        TelOpt::LINEMODE => match first {
            Some(1) => match rest.first() {
                Some(m) => format!("MODE 0x{m:02x}"),
                None => "MODE".into(),
            },
            Some(3) if !rest.len().is_multiple_of(3) => format!(
                "SLC ({} triplets + {} stray bytes)",
                rest.len() / 3,
                rest.len() % 3
            ),
            Some(3) => format!("SLC ({} triplets)", rest.len() / 3),
            Some(b @ 251..=254) => format!("{} FORWARDMASK", command_name(b)),
            _ => quoted(p),
        },
        TelOpt::STATUS => match first {
            Some(1) => "SEND".into(),
            Some(0) => {
                let mut parts = Vec::new();
                let mut i = 0;
                while i + 1 < rest.len() {
                    if (251..=254).contains(&rest[i]) {
                        parts.push(format!("{} {}", command_name(rest[i]), TelOpt(rest[i + 1])));
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
                format!("IS [{}]", parts.join(", "))
            }
            _ => quoted(p),
        },
        TelOpt::MSSP => {
            let mut parts = Vec::new();
            let mut cur = String::new();
            for &b in p {
                match b {
                    1 => {
                        if !cur.is_empty() {
                            parts.push(std::mem::take(&mut cur));
                        }
                    }
                    2 => cur.push('='),
                    0x20..=0x7e => cur.push(b as char),
                    _ => cur.push('?'),
                }
            }
            if !cur.is_empty() {
                parts.push(cur);
            }
            parts.join(" ")
        }
        TelOpt::MSDP => crate::mudsb::decode(opt, p)
            .map(|d| d.to_line())
            .unwrap_or_default(),
        TelOpt::GMCP | TelOpt::ATCP => String::from_utf8_lossy(p).into_owned(),
        TelOpt::ZMP => p
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        TelOpt::MCCP2 if p.is_empty() => "(compression starts)".into(),
        TelOpt::MCCP3 if p.is_empty() => "(client compression starts)".into(),
        TelOpt::MXP if p.is_empty() => "(activated)".into(),
        TelOpt::COM_PORT => match first {
            Some(0) if rest.is_empty() => "SIGNATURE (request)".into(),
            Some(0 | 100) => format!("SIGNATURE {}", quoted(rest)),
            Some(n) => format!("command {n} {}", quoted(rest)),
            None => String::new(),
        },
        _ => quoted(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meanings() {
        assert_eq!(
            subnegotiation(TelOpt::TTYPE, b"\x00VT100", Dir::Sent),
            "TTYPE IS \"VT100\""
        );
        assert_eq!(
            subnegotiation(TelOpt::NAWS, &[0, 80, 0, 25], Dir::Sent),
            "NAWS 80x25"
        );
        assert_eq!(
            subnegotiation(TelOpt::CHARSET, b"\x01;x-penn-def;UTF-8", Dir::Recv),
            "CHARSET REQUEST [x-penn-def, UTF-8]"
        );
        assert_eq!(
            subnegotiation(TelOpt::MSSP, b"\x01NAME\x02Fake\x01PLAYERS\x023", Dir::Recv),
            "MSSP NAME=Fake PLAYERS=3"
        );
        assert_eq!(
            subnegotiation(
                TelOpt::MSDP,
                b"\x01client_options\x02\x03\x01ansi\x021\x04",
                Dir::Recv
            ),
            "MSDP client_options = {ansi = \"1\"}"
        );
        assert_eq!(
            subnegotiation(TelOpt::NEW_ENVIRON, b"\x01\x00USER\x03", Dir::Recv),
            "NEW_ENVIRON SEND [VAR USER, USERVAR ]"
        );
    }
}
