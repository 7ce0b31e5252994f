//! MUD protocol payloads (MSSP, ZMP, ATCP, AARDWOLF, MXP, COM-PORT) and NEW_ENVIRON helpers,
//! decoded the way telnetlib3's `mud.py` and `stream_writer.py` do (spec §2.4, §4.2, §4.3).
//!
//! Only decoding lives here; what to answer is the protocol's business (`crate::protocol`).

use crate::codec::{self, DecodeRaised, PyStr};
use crate::pyjson::{Dict, Value};
use std::collections::BTreeMap;

/// Data collected from MUD protocols during a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MudData {
    /// The last SB MSSP, decoded (a later one replaces the whole dict).
    pub mssp: Option<Dict>,
    /// `zmp[command] = args` (the latest message wins).
    pub zmp: BTreeMap<PyStr, Vec<PyStr>>,
    /// ATCP `(package, value)` pairs in arrival order.
    pub atcp: Vec<(PyStr, PyStr)>,
    /// One dict per SB AARDWOLF.
    pub aardwolf: Vec<Value>,
    /// One payload per SB MXP.
    pub mxp: Vec<Vec<u8>>,
    /// COM-PORT-OPTION values.
    pub comport: Option<Dict>,
}

/// MSSP `VAR` byte.
const MSSP_VAR: u8 = 1;
/// MSSP `VAL` byte.
const MSSP_VAL: u8 = 2;

/// `mssp_decode`: names and values, a repeated name or value turning the entry into a list.
/// Each field is decoded on its own with `encoding`, falling back to latin-1.
pub fn mssp_decode(buf: &[u8], encoding: &str) -> Dict {
    try_mssp_decode(buf, encoding).unwrap_or_default()
}

/// [`mssp_decode`] as telnetlib3 runs it: `Err` where decoding a field raises out of
/// `_decode_best_effort` (`codec::try_decode_mssp_field`), which drops the sub-negotiation
/// ([`mssp_decode`] then shows nothing, as telnetlib3 records nothing).
pub fn try_mssp_decode(buf: &[u8], encoding: &str) -> Result<Dict, DecodeRaised> {
    let mut result = Dict::new();
    let mut current: Option<PyStr> = None;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if b == MSSP_VAR || b == MSSP_VAL {
            i += 1;
            let start = i;
            while i < buf.len() && buf[i] != MSSP_VAR && buf[i] != MSSP_VAL {
                i += 1;
            }
            let text = codec::try_decode_mssp_field(encoding, &buf[start..i])?;
            if b == MSSP_VAR {
                current = Some(text);
            } else if let Some(name) = &current {
                let entry = result.0.remove(name);
                let v = match entry {
                    None => Value::Str(text),
                    Some(Value::List(mut l)) => {
                        l.push(Value::Str(text));
                        Value::List(l)
                    }
                    Some(first) => Value::List(vec![first, Value::Str(text)]),
                };
                result.0.insert(name.clone(), v);
            }
        } else {
            i += 1;
        }
    }
    Ok(result)
}

/// `zmp_decode`: NUL-separated fields, a trailing empty field dropped (`Err` as for
/// [`try_mssp_decode`]).
pub fn zmp_decode(buf: &[u8], encoding: &str) -> Result<Vec<PyStr>, DecodeRaised> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts: Vec<&[u8]> = buf.split(|&b| b == 0).collect();
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .map(|p| codec::try_decode_mssp_field(encoding, p))
        .collect()
}

/// `atcp_decode`: split at the first space into (package, value) (`Err`, and nothing kept,
/// as for [`try_mssp_decode`]).
pub fn atcp(data: &mut MudData, buf: &[u8], encoding: &str) -> Result<(), DecodeRaised> {
    let (pkg, val) = match buf.iter().position(|&b| b == b' ') {
        Some(p) => (&buf[..p], Some(&buf[p + 1..])),
        None => (buf, None),
    };
    let pkg = codec::try_decode_mssp_field(encoding, pkg)?;
    let val = match val {
        Some(v) => codec::try_decode_mssp_field(encoding, v)?,
        None => PyStr::new(),
    };
    data.atcp.push((pkg, val));
    Ok(())
}

/// `aardwolf_decode`.
pub fn aardwolf(data: &mut MudData, buf: &[u8]) {
    let mut d = Dict::new();
    match buf.split_first() {
        None => {
            d.insert("channel", "unknown");
            d.insert("channel_byte", 0i64);
            d.insert("data_bytes", Value::from_bytes(b""));
        }
        Some((&ch, rest)) => {
            let name = match ch {
                100 => "status".to_owned(),
                101 => "tick".to_owned(),
                102 => "affect".to_owned(),
                103 => "group".to_owned(),
                104 => "skill".to_owned(),
                105 => "quest".to_owned(),
                106 => "spell".to_owned(),
                107 => "stat".to_owned(),
                108 => "message".to_owned(),
                _ => format!("0x{ch:02x}"),
            };
            d.insert("channel", name);
            d.insert("channel_byte", i64::from(ch));
            if rest.len() == 1 {
                d.insert("data_byte", i64::from(rest[0]));
            }
            if !rest.is_empty() {
                d.insert("data_bytes", Value::from_bytes(rest));
            }
        }
    }
    data.aardwolf.push(Value::Dict(d));
}

/// `_handle_sb_comport`: sub-command and payload into the `comport` dict.
pub fn comport(data: &mut MudData, buf: &[u8]) {
    let Some((&sub, payload)) = buf.split_first() else {
        return;
    };
    let d = data.comport.get_or_insert_with(Dict::new);
    let one = (payload.len() == 1).then(|| payload[0]);
    match (sub, one) {
        (0 | 100, _) if !payload.is_empty() => {
            // payload.decode("ascii", errors="replace")
            let s: String = payload
                .iter()
                .map(|&b| if b < 0x80 { b as char } else { '\u{fffd}' })
                .collect();
            d.insert("signature", s);
        }
        (1 | 101, _) if payload.len() == 4 => {
            let v = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            d.insert("baudrate", i64::from(v));
        }
        (2 | 102, Some(v)) => {
            d.insert("datasize", i64::from(v));
        }
        (3 | 103, Some(v)) => {
            let s = match v {
                1 => "NONE".to_owned(),
                2 => "ODD".to_owned(),
                3 => "EVEN".to_owned(),
                4 => "MARK".to_owned(),
                5 => "SPACE".to_owned(),
                _ => format!("unknown-{v}"),
            };
            d.insert("parity", s);
        }
        (4 | 104, Some(v)) => {
            let s = match v {
                1 => "1".to_owned(),
                2 => "2".to_owned(),
                3 => "1.5".to_owned(),
                _ => format!("unknown-{v}"),
            };
            d.insert("stopsize", s);
        }
        (5 | 105, Some(v)) => {
            d.insert("control", i64::from(v));
        }
        (6 | 106, Some(v)) => {
            d.insert("linestate", i64::from(v));
        }
        (7 | 107, Some(v)) => {
            d.insert("modemstate", i64::from(v));
        }
        _ => {}
    }
}

/// NEW_ENVIRON `VAR`, `VALUE`, `ESC`, `USERVAR` bytes.
const ENV_VAR: u8 = 0;
const ENV_VALUE: u8 = 1;
const ENV_ESC: u8 = 2;
const ENV_USERVAR: u8 = 3;

/// `_decode_env_buf`'s keys, in order, duplicates merged (a Python dict), for a SEND. `None`
/// where decoding a name or a value (`bytes.decode(encoding, "replace")`, nothing caught)
/// raises: a non-text codec, idna, undefined, … (telnetlib3 then drops the sub-negotiation).
pub fn environ_keys(buf: &[u8], encoding: &str) -> Option<Vec<String>> {
    let breaks: Vec<usize> = (0..buf.len())
        .filter(|&i| {
            (buf[i] == ENV_VAR || buf[i] == ENV_USERVAR) && (i == 0 || buf[i - 1] != ENV_ESC)
        })
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for (n, &ptr) in breaks.iter().enumerate() {
        let end = breaks.get(n + 1).copied().unwrap_or(buf.len());
        let piece = &buf[ptr + 1..end];
        let (name, value) = match piece.iter().position(|&b| b == ENV_VALUE) {
            Some(p) => (&piece[..p], Some(&piece[p + 1..])),
            None => (piece, None),
        };
        let key = codec::try_decode_replace(encoding, &environ_unescape(name))?;
        if let Some(value) = value {
            codec::try_decode_replace(encoding, &environ_unescape(value))?;
        }
        let key = key.to_string_lossy();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Some(keys)
}

/// `_unescape_environ`.
fn environ_unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == ENV_ESC && i + 1 < b.len() && (b[i + 1] == ENV_VAR || b[i + 1] == ENV_USERVAR) {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `_escape_environ`: VAR and USERVAR bytes get an ESC before them.
pub fn environ_escape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for &c in b {
        if c == ENV_VAR || c == ENV_USERVAR {
            out.push(ENV_ESC);
        }
        out.push(c);
    }
    out
}

/// `_parse_environ_send`: the `environ_requested` list of the record (spec §4.1).
pub fn environ_requested(raw: &[u8]) -> Value {
    let entry = |kind: &str, name: String, value: Option<&[u8]>| {
        let mut d = Dict::new();
        d.insert("type", kind);
        d.insert("name", name);
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            d.insert("value_hex", hex(v));
        }
        Value::Dict(d)
    };
    if raw.is_empty() {
        return Value::List(vec![
            entry("VAR", "*".into(), None),
            entry("USERVAR", "*".into(), None),
        ]);
    }
    let breaks: Vec<usize> = (0..raw.len())
        .filter(|&i| raw[i] == ENV_VAR || raw[i] == ENV_USERVAR)
        .collect();
    let mut out = Vec::new();
    for (n, &ptr) in breaks.iter().enumerate() {
        let kind = if raw[ptr] == ENV_VAR {
            "VAR"
        } else {
            "USERVAR"
        };
        let end = breaks.get(n + 1).copied().unwrap_or(raw.len());
        let chunk = &raw[ptr + 1..end];
        if chunk.is_empty() {
            out.push(entry(kind, "*".into(), None));
            continue;
        }
        let (name_part, val_part) = match chunk.iter().position(|&b| b == ENV_VALUE) {
            Some(p) => (&chunk[..p], Some(&chunk[p + 1..])),
            None => (chunk, None),
        };
        let name: String = name_part
            .iter()
            .take_while(|&&b| (0x20..0x7f).contains(&b))
            .map(|&b| b as char)
            .collect();
        out.push(entry(kind, name, val_part));
    }
    Value::List(out)
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &c in b {
        s.push(H[(c >> 4) as usize] as char);
        s.push(H[(c & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson;

    #[test]
    fn mssp_example() {
        let d = mssp_decode(
            b"\x01NAME\x02FakeMUSH\x01GENRE\x02Adventure\x02Social",
            "ascii",
        );
        assert_eq!(
            pyjson::to_canonical(&Value::Dict(d)),
            r#"{"GENRE":["Adventure","Social"],"NAME":"FakeMUSH"}"#
        );
    }

    #[test]
    fn mssp_repeated_name_and_nameless_values() {
        let d = mssp_decode(b"\x02orphan\x01A\x021\x01B\x01A\x022\x023", "ascii");
        assert_eq!(
            pyjson::to_canonical(&Value::Dict(d)),
            r#"{"A":["1","2","3"]}"#
        );
    }

    #[test]
    fn environ_requested_forms() {
        let v = environ_requested(b"");
        assert_eq!(
            pyjson::to_canonical(&v),
            r#"[{"name":"*","type":"VAR"},{"name":"*","type":"USERVAR"}]"#
        );
        let v = environ_requested(b"\x00USER\x00\x03\x00X\x01ab");
        assert_eq!(
            pyjson::to_canonical(&v),
            r#"[{"name":"USER","type":"VAR"},{"name":"*","type":"VAR"},{"name":"*","type":"USERVAR"},{"name":"X","type":"VAR","value_hex":"6162"}]"#
        );
    }

    #[test]
    fn environ_keys_merge_and_escape() {
        assert_eq!(
            environ_keys(b"\x00USER\x00LANG\x03USER\x00A\x02\x00B", "ascii"),
            Some(vec!["USER".into(), "LANG".into(), "A\u{0}B".into()])
        );
        // Python raises decoding a name or value: idna takes "strict" only, hex is no text
        // codec; an empty one is not decoded at all.
        assert_eq!(environ_keys(b"\x00USER", "idna"), None);
        assert_eq!(environ_keys(b"\x00USER\x01x", "hex"), None);
        assert_eq!(
            environ_keys(b"\x00", "undefined"),
            Some(vec![String::new()])
        );
        assert_eq!(environ_escape(b"a\x00b\x03"), b"a\x02\x00b\x02\x03");
    }

    #[test]
    fn aardwolf_and_comport() {
        let mut m = MudData::default();
        aardwolf(&mut m, &[100, 3]);
        aardwolf(&mut m, &[]);
        comport(&mut m, &[101, 0, 0, 0x96, 0]);
        comport(&mut m, &[103, 3]);
        assert_eq!(
            pyjson::to_canonical(&Value::List(m.aardwolf.clone())),
            r#"[{"channel":"status","channel_byte":100,"data_byte":3,"data_bytes":"\u0003"},{"channel":"unknown","channel_byte":0,"data_bytes":""}]"#
        );
        assert_eq!(
            pyjson::to_canonical(&Value::Dict(m.comport.unwrap())),
            r#"{"baudrate":38400,"parity":"EVEN"}"#
        );
    }
}
