//! Python codec names and decoders: what CPython 3.11's `codecs.lookup(name)` and
//! `bytes.decode(name, errors=…)` give with telnetlib3 5.0.1's retro codecs registered, for the
//! places where telnetlib3-fingerprint turns bytes into text (banner, cursor, MSSP, CHARSET).
//!
//! Every text codec Python has decodes here as in Python: utf-8, utf-8-sig, ascii and latin-1;
//! utf-16 and utf-32, all byte orders (`codec/utf16_32.rs`); every charmap (single-byte)
//! codec (cp437, koi8-r, petscii, …), the CJK codecs (big5, gbk, gb2312, gb18030, big5hkscs,
//! cp950, euc_jp, shift_jis, cp932, euc_kr, cp949, johab, euc_jis_2004, euc_jisx0213,
//! shift_jis_2004, shift_jisx0213) and telnetlib3's big5bbs (`codec/cjk.rs`); the stateful
//! iso2022_jp, _1, _2, _2004, _3, _ext, iso2022_kr and hz (`codec/iso2022.rs`); utf-7
//! (`codec/utf7.rs`); unicode-escape and raw-unicode-escape (`codec/escape.rs`); punycode
//! and idna (`codec/punycode.rs`); undefined, which always raises. The table-driven ones
//! read tables generated from Python into `codec/data/<file>.bin` (`shared/gen/gen_codecs.py`),
//! compiled into native builds only: in wasm a codec is exact once the web app has fetched
//! its table and called [`install_table`], and decoded as latin-1 before ([`is_exact`]).
//! unicode-escape's `\N{name}` and idna's nameprep read Unicode data generated likewise
//! (`codec/unidata.rs`: `unicode_names.bin`, `nameprep.bin`), fetched in wasm like the rest.
//! JSON writing of the resulting [`PyStr`] lives in `pyjson`.

mod cjk;
mod escape;
mod iso2022;
mod punycode;
mod tables;
mod unidata;
mod utf16_32;
mod utf7;

use cjk::Cjk;
pub use cjk::{install_table, missing_table, table_name, TableError};
use iso2022::Iso2022;
use utf16_32::Order;

#[cfg(test)]
mod pydiff;
#[cfg(test)]
mod vectors;

use std::fmt;

/// A Python `str`: a sequence of code points that, unlike a Rust `String`, may hold lone
/// surrogates (U+DC80..=U+DCFF come from `errors="surrogateescape"`).
///
/// `Ord` compares code point by code point, which is Python's string order (`sort_keys=True`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PyStr(pub Vec<u32>);

impl PyStr {
    /// The empty string.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Number of code points (Python `len`).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for `""`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Latin-1 decoding of `bytes` (every byte is the code point of the same value).
    pub fn from_latin1(bytes: &[u8]) -> Self {
        Self(bytes.iter().map(|&b| u32::from(b)).collect())
    }

    /// The text with every surrogate replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        self.0
            .iter()
            .map(|&cp| char::from_u32(cp).unwrap_or('\u{FFFD}'))
            .collect()
    }

    /// The text as a Rust `String`, or `None` when it holds a surrogate.
    pub fn as_str_if_valid(&self) -> Option<String> {
        self.0.iter().map(|&cp| char::from_u32(cp)).collect()
    }

    /// Append one code point.
    pub fn push(&mut self, cp: u32) {
        self.0.push(cp);
    }

    /// Append a Rust string.
    pub fn push_str(&mut self, s: &str) {
        self.0.extend(s.chars().map(u32::from));
    }
}

impl From<&str> for PyStr {
    fn from(s: &str) -> Self {
        Self(s.chars().map(u32::from).collect())
    }
}

impl From<String> for PyStr {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl fmt::Display for PyStr {
    /// Writes the text with surrogates shown as U+FFFD.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// How iacscope decodes one Python codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Utf8,
    /// utf-8 with one leading BOM dropped.
    Utf8Sig,
    Ascii,
    Latin1,
    /// A single-byte codec, table `codec/data/<tables::CHARMAPS[i]>.bin` (`codec/cjk.rs`).
    Charmap(u8),
    /// A table-driven CJK codec (`codec/cjk.rs`).
    MultiByte(Cjk),
    /// A stateful ISO-2022 codec or hz (`codec/iso2022.rs`).
    Iso2022(Iso2022),
    /// utf-16, utf-16-le, utf-16-be.
    Utf16(Order),
    /// utf-32, utf-32-le, utf-32-be.
    Utf32(Order),
    /// `codec/utf7.rs`.
    Utf7,
    /// unicode-escape and raw-unicode-escape (`codec/escape.rs`).
    UnicodeEscape,
    RawUnicodeEscape,
    /// punycode and idna (`codec/punycode.rs`).
    Punycode,
    Idna,
    /// "undefined": every decode raises UnicodeError.
    Undefined,
    /// `bytes.decode` refuses it with LookupError ("is not a text encoding"): hex, base64,
    /// rot-13, zlib, …
    NonText,
}

/// `str.strip()` whitespace within ASCII (charset names are ASCII by the time they are stripped).
const PY_ASCII_WHITESPACE: &[char] = &[
    ' ', '\t', '\n', '\x0b', '\x0c', '\r', '\x1c', '\x1d', '\x1e', '\x1f',
];

/// CPython's C-level name normalisation (`_Py_normalize_encoding`, applied before any search
/// function runs): keep ASCII letters, digits and `.`, lowercased; every run of other bytes
/// becomes one `_` when something was already kept (so no leading or trailing `_`).
/// `None` for a name with a NUL: Python raises ValueError ("embedded null character").
fn normalize(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut punct = false;
    for b in name.bytes() {
        if b == 0 {
            return None;
        }
        if b.is_ascii_alphanumeric() || b == b'.' {
            if punct && !out.is_empty() {
                out.push('_');
            }
            punct = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            punct = true;
        }
    }
    Some(out)
}

fn find_key(key: &str) -> Option<(u8, bool)> {
    tables::NAMES
        .binary_search_by(|(k, _, _)| (*k).cmp(key))
        .ok()
        .and_then(|i| tables::NAMES.get(i))
        .map(|&(_, idx, alias)| (idx, alias))
}

fn find(name: &str) -> Option<&'static (&'static str, Kind)> {
    let norm = normalize(name)?;
    let idx = match find_key(&norm) {
        Some((idx, _)) => idx,
        // encodings.search_function retries `norm.replace('.', '_')`, but only against the
        // stdlib alias table, so "utf.8" is refused while "iso_646.irv:1991" is ascii.
        None => match find_key(&norm.replace('.', "_")) {
            Some((idx, true)) => idx,
            _ => return None,
        },
    };
    tables::CODECS.get(usize::from(idx))
}

/// CPython 3.11 `codecs.lookup(name).name`, or `None` where Python raises LookupError.
///
/// Non-text codecs (`hex`, `base64`, `rot13`, `zlib`, …) are found, as in Python.
///
/// telnetlib3's retro codecs are found by their module names (`petscii`, `atascii`,
/// `atarist`, `big5bbs`). Their aliases (`c64`, `cbm`, `commodore`, `c128`, `atari`,
/// `atari8bit`, `atari_8bit`) are refused: telnetlib3 registers them only after the codec
/// module was first loaded in the process, which had not happened in a fresh
/// `telnetlib3-fingerprint` run (checked with Python). python-codec-names.txt lists them as
/// accepted; the tool wins.
pub fn lookup(name: &str) -> Option<&'static str> {
    find(name).map(|&(canonical, _)| canonical)
}

/// Whether iacscope decodes `encoding` exactly as Python does: false only in wasm, for a
/// codec whose table is not installed yet ([`missing_table`]; it decodes as latin-1 until
/// then; unicode-escape needs the Unicode names and idna nameprep's tables); true for unknown
/// and non-text names, where telnetlib3 itself falls back to latin-1.
pub fn is_exact(encoding: &str) -> bool {
    match find(encoding) {
        Some(&(_, kind)) => cjk::table_of(kind).is_none_or(|(_, installed)| installed),
        None => true,
    }
}

/// Error handlers of `bytes.decode`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Errors {
    Strict,
    Replace,
    SurrogateEscape,
}

/// Python raised while decoding (an error the handler could not take, or "strict").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeRaised;

/// What `bytes.decode` raised, where the callers catch differently (mud.py's
/// `_decode_best_effort` catches UnicodeDecodeError only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raised {
    /// UnicodeDecodeError: "strict", or an error "surrogateescape" cannot take.
    UnicodeDecode,
    /// Anything else: UnicodeError (undefined, idna, punycode), RuntimeError (iso2022_jp_2's
    /// "internal codec error").
    Other,
}

impl From<DecodeRaised> for Raised {
    fn from(DecodeRaised: DecodeRaised) -> Self {
        Raised::UnicodeDecode
    }
}

/// CPython's error handling for one error range: the first `esize` bytes of `rest` (the input
/// from the error's start). Returns how many bytes of `rest` the decoder moves past:
/// - "strict" raises;
/// - "replace" writes one U+FFFD for the whole range and moves past it;
/// - "surrogateescape" (`PyCodec_SurrogateEscapeErrors`) escapes the range's leading bytes that
///   are >= 0x80, at most 4, as U+DC80..=U+DCFF, and moves past only those: decoding resumes
///   inside the range, at its first byte < 0x80 (or its fifth byte). When the range starts
///   with a byte < 0x80 it raises.
///
/// `esize` is clamped to `1..=rest.len()`, so the decoder always moves on.
fn py_error(
    out: &mut PyStr,
    rest: &[u8],
    esize: usize,
    errors: Errors,
) -> Result<usize, DecodeRaised> {
    let range = rest.get(..esize.max(1)).unwrap_or(rest);
    match errors {
        Errors::Strict => Err(DecodeRaised),
        Errors::Replace => {
            out.push(0xFFFD);
            Ok(range.len().max(1))
        }
        Errors::SurrogateEscape => {
            let escaped: Vec<u32> = range
                .iter()
                .take(4)
                .take_while(|&&b| b >= 0x80)
                .map(|&b| 0xDC00 + u32::from(b))
                .collect();
            if escaped.is_empty() {
                return Err(DecodeRaised);
            }
            out.0.extend_from_slice(&escaped);
            Ok(escaped.len())
        }
    }
}

/// Run an error handler over the undecodable bytes `bad` (one error range). Equal to
/// [`py_error`] for the ranges its callers produce (one byte, or a UTF-8 maximal subpart of
/// bytes >= 0x80 at most 3 long), where decoding always resumes after the range.
fn on_error(out: &mut PyStr, bad: &[u8], errors: Errors) -> Result<(), DecodeRaised> {
    match errors {
        Errors::Strict => Err(DecodeRaised),
        Errors::Replace => {
            out.push(0xFFFD);
            Ok(())
        }
        Errors::SurrogateEscape => {
            // "surrogateescape" only takes bytes >= 0x80; a smaller byte re-raises the error.
            if bad.iter().any(|&b| b < 0x80) {
                return Err(DecodeRaised);
            }
            out.0.extend(bad.iter().map(|&b| 0xDC00 + u32::from(b)));
            Ok(())
        }
    }
}

/// Python's UTF-8 decoder: each error range is the maximal invalid subpart (Unicode §3.9),
/// which is what `std::str::Utf8Error::error_len` reports too; a truncated sequence at the end
/// is one range. Encoded surrogates (ED A0..BF xx) are invalid.
fn decode_utf8(bytes: &[u8], errors: Errors) -> Result<PyStr, DecodeRaised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Ok(out);
            }
            Err(e) => {
                let (good, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let bad_len = e.error_len().unwrap_or(after.len());
                let (bad, tail) = after.split_at(bad_len.min(after.len()));
                on_error(&mut out, bad, errors)?;
                rest = tail;
            }
        }
    }
}

/// `bytes.decode(encoding, errors)` for "strict", "replace" and "surrogateescape" (`None`:
/// raised), for tests.
#[cfg(test)]
fn decode3(encoding: &str, bytes: &[u8]) -> [Option<Vec<u32>>; 3] {
    [Errors::Strict, Errors::Replace, Errors::SurrogateEscape].map(|errors| {
        match py_decode(encoding, bytes, errors) {
            Outcome::Text(text) => Some(text.0),
            Outcome::Lookup | Outcome::Raised(_) => None,
        }
    })
}

/// Outcome of `bytes.decode(encoding, errors)`.
enum Outcome {
    Text(PyStr),
    /// LookupError: unknown name, or a non-text codec.
    Lookup,
    /// Any other exception.
    Raised(Raised),
}

fn py_decode(encoding: &str, bytes: &[u8], errors: Errors) -> Outcome {
    // `PyUnicode_Decode` answers `b""` with `""` before it looks the codec up.
    if bytes.is_empty() {
        return Outcome::Text(PyStr::new());
    }
    let Some(&(_, kind)) = find(encoding) else {
        return Outcome::Lookup;
    };
    let result: Result<PyStr, Raised> = match kind {
        Kind::Utf8 => decode_utf8(bytes, errors).map_err(Raised::from),
        Kind::Utf8Sig => decode_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes), errors)
            .map_err(Raised::from),
        Kind::Ascii => {
            let mut out = PyStr(Vec::with_capacity(bytes.len()));
            let mut res = Ok(());
            for &b in bytes {
                if b < 0x80 {
                    out.push(u32::from(b));
                } else if let Err(e) = on_error(&mut out, &[b], errors) {
                    res = Err(e);
                    break;
                }
            }
            res.map(|()| out).map_err(Raised::from)
        }
        Kind::Latin1 => Ok(PyStr::from_latin1(bytes)),
        Kind::Charmap(i) => match cjk::charmap_table(i) {
            Some(table) => cjk::decode(None, table, bytes, errors).map_err(Raised::from),
            // Only in wasm, before the web app installed the table: not exact (is_exact).
            None => Ok(PyStr::from_latin1(bytes)),
        },
        Kind::MultiByte(codec) => match codec.table() {
            Some(table) => cjk::decode(Some(codec), table, bytes, errors).map_err(Raised::from),
            // As for charmaps.
            None => Ok(PyStr::from_latin1(bytes)),
        },
        Kind::Iso2022(codec) => match codec.table_file().table() {
            Some(table) => iso2022::decode(codec, table, bytes, errors),
            // As for charmaps.
            None => Ok(PyStr::from_latin1(bytes)),
        },
        Kind::Utf16(order) => utf16_32::decode_utf16(order, bytes, errors).map_err(Raised::from),
        Kind::Utf32(order) => utf16_32::decode_utf32(order, bytes, errors).map_err(Raised::from),
        Kind::Utf7 => utf7::decode(bytes, errors).map_err(Raised::from),
        Kind::UnicodeEscape => match unidata::names() {
            Some(names) => {
                escape::decode_unicode_escape(bytes, errors, names).map_err(Raised::from)
            }
            // As for charmaps: the Unicode names, for `\N{…}`.
            None => Ok(PyStr::from_latin1(bytes)),
        },
        Kind::RawUnicodeEscape => {
            escape::decode_raw_unicode_escape(bytes, errors).map_err(Raised::from)
        }
        Kind::Punycode => punycode::decode_punycode(bytes, errors),
        Kind::Idna => match unidata::nameprep() {
            Some(tables) => punycode::decode_idna(bytes, errors, tables),
            // As for charmaps: nameprep's tables.
            None => Ok(PyStr::from_latin1(bytes)),
        },
        // encodings/undefined.py: `raise UnicodeError("undefined encoding")`, even for b"".
        Kind::Undefined => Err(Raised::Other),
        Kind::NonText => return Outcome::Lookup,
    };
    match result {
        Ok(text) => Outcome::Text(text),
        Err(raised) => Outcome::Raised(raised),
    }
}

/// Python `bytes.decode(encoding, errors="replace")`, falling back to latin-1 when that raises
/// (unknown or non-text codec): telnetlib3's `_VirtualCursor.advance`.
pub fn decode_lossy(encoding: &str, bytes: &[u8]) -> String {
    match py_decode(encoding, bytes, Errors::Replace) {
        // Only utf-7 gives surrogates under "replace" (lone ones, from its base-64 runs):
        // U+FFFD here, which telnetlib3's wcwidth counts as wide as a surrogate (1).
        Outcome::Text(text) => text.to_string_lossy(),
        Outcome::Lookup | Outcome::Raised(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Session encodings for which `_format_banner` strips PETSCII controls (`encoding.lower()`).
const PETSCII_NAMES: &[&str] = &["petscii", "cbm", "commodore", "c64", "c128"];

/// Characters `_format_banner` removes from PETSCII text: colour, cursor and RVS controls.
fn is_petscii_control(cp: u32) -> bool {
    matches!(cp, 0x05 | 0x11..=0x14 | 0x1C..=0x1F | 0x81 | 0x90..=0x9F)
}

/// telnetlib3's `_format_banner` (server_fingerprinting.py), exactly:
/// `data.decode(encoding, errors="surrogateescape")`, latin-1 when that raises LookupError
/// (unknown names, `""`, `"codepage"`, non-text codecs such as `hex`); then for
/// petscii/cbm/commodore/c64/c128 the controls 05, 11-14, 1C-1F, 81, 90-9F are removed and
/// CR LF / CR become LF.
///
/// `Err` where Python raises out of `_format_banner` (the scan then saves nothing): a charmap
/// codec meeting an undefined byte below 0x80 (cp424 has some), which "surrogateescape"
/// cannot escape.
pub fn format_banner(encoding: &str, bytes: &[u8]) -> Result<PyStr, DecodeRaised> {
    let text = match py_decode(encoding, bytes, Errors::SurrogateEscape) {
        Outcome::Text(text) => text,
        Outcome::Lookup => PyStr::from_latin1(bytes),
        Outcome::Raised(_) => return Err(DecodeRaised),
    };
    // Python's `lower()` and ASCII lowercasing differ only for characters outside ASCII, which
    // (but for KELVIN SIGN, to "k") stay outside it: no name here can match either way. (Full
    // Unicode lowercasing would add its 12 KB table to the browser bundle.)
    if !PETSCII_NAMES.contains(&encoding.to_ascii_lowercase().as_str()) {
        return Ok(text);
    }
    let mut out = PyStr(Vec::with_capacity(text.len()));
    let mut iter = text
        .0
        .into_iter()
        .filter(|&cp| !is_petscii_control(cp))
        .peekable();
    while let Some(cp) = iter.next() {
        if cp == u32::from(b'\r') {
            if iter.peek() == Some(&u32::from(b'\n')) {
                iter.next();
            }
            out.push(u32::from(b'\n'));
        } else {
            out.push(cp);
        }
    }
    Ok(out)
}

/// [`format_banner`] that never fails: where Python would raise, the bytes are decoded as
/// latin-1. FIXME: that case has no Python equivalent (telnetlib3 saves no record then).
pub fn decode_surrogateescape(encoding: &str, bytes: &[u8]) -> PyStr {
    format_banner(encoding, bytes).unwrap_or_else(|DecodeRaised| PyStr::from_latin1(bytes))
}

/// One MSSP name or value (mud.py `_decode_best_effort`): strict decode with the session
/// encoding at the time the SB arrived (`environ_encoding or "utf-8"`: only `""` means utf-8),
/// latin-1 when that raises UnicodeDecodeError or LookupError.
///
/// `Err` where Python raises anything else, which `_decode_best_effort` does not catch
/// (UnicodeError from undefined, punycode or idna; iso2022_jp_2's RuntimeError): the
/// sub-negotiation being decoded is then dropped.
pub fn try_decode_mssp_field(encoding: &str, bytes: &[u8]) -> Result<PyStr, DecodeRaised> {
    let encoding = if encoding.is_empty() {
        "utf-8"
    } else {
        encoding
    };
    match py_decode(encoding, bytes, Errors::Strict) {
        Outcome::Text(text) => Ok(text),
        Outcome::Lookup | Outcome::Raised(Raised::UnicodeDecode) => Ok(PyStr::from_latin1(bytes)),
        Outcome::Raised(Raised::Other) => Err(DecodeRaised),
    }
}

/// [`try_decode_mssp_field`] with latin-1 where Python raises out of `_decode_best_effort`,
/// for display. FIXME: that case has no Python equivalent (the sub-negotiation is dropped).
pub fn decode_mssp_field(encoding: &str, bytes: &[u8]) -> PyStr {
    try_decode_mssp_field(encoding, bytes).unwrap_or_else(|DecodeRaised| PyStr::from_latin1(bytes))
}

/// `bytes.decode(encoding, "replace")` where nothing catches what it raises (NEW_ENVIRON's
/// `_decode_env_buf`): `None` where Python raises, LookupError included (unknown and non-text
/// codecs, idna, undefined, iso2022_jp_2's RuntimeError).
pub fn try_decode_replace(encoding: &str, bytes: &[u8]) -> Option<PyStr> {
    match py_decode(encoding, bytes, Errors::Replace) {
        Outcome::Text(text) => Some(text),
        Outcome::Lookup | Outcome::Raised(_) => None,
    }
}

/// telnetlib3 `TelnetClient._normalize_charset_name`: the first of these forms of an offered
/// CHARSET name that `codecs.lookup` accepts, else the first form:
/// 1. `name.strip()` with spaces turned into `-`;
/// 2. that with leading zeros dropped from numeric parts (`-0+N` → `-N`, regex `-0+(\d)`);
/// 3. form 1 with every `-` removed;
/// 4. form 2 split on `-`: with more than 2 parts, the first + `-` + the rest joined.
///
/// Returns the chosen form and its canonical codec name (`None`: no form is accepted).
pub fn normalize_charset_name(name: &str) -> (String, Option<&'static str>) {
    let base = name.trim_matches(PY_ASCII_WHITESPACE).replace(' ', "-");
    let no_zeros = strip_leading_zeros(&base);
    let no_hyphens = base.replace('-', "");
    let parts: Vec<&str> = no_zeros.split('-').collect();
    let partial = match parts.split_first() {
        Some((first, rest)) if parts.len() > 2 => format!("{first}-{}", rest.concat()),
        _ => no_zeros.clone(),
    };
    for candidate in [&base, &no_zeros, &no_hyphens, &partial] {
        if let Some(canonical) = lookup(candidate) {
            return (candidate.clone(), Some(canonical));
        }
    }
    (base, None)
}

/// `re.sub(r"-0+(\d)", r"-\1", s)`; only ASCII bytes are inspected, so UTF-8 stays intact.
fn strip_leading_zeros(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&byte) = b.get(i) {
        if byte == b'-' {
            // Greedy `0+`, giving back one zero when no other digit follows for `(\d)`.
            let zeros = b
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .take_while(|&&c| c == b'0')
                .count();
            let after = i + 1 + zeros;
            let digit_at = match b.get(after) {
                Some(c) if zeros > 0 && c.is_ascii_digit() => Some(after),
                _ if zeros > 1 => Some(after - 1),
                _ => None,
            };
            if let Some(k) = digit_at {
                out.push(b'-');
                out.extend(b.get(k));
                i = k + 1;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// CHARSET REQUEST rule of telnetlib3-fingerprint (client.py `send_charset` with no preferred
/// encoding, the fingerprint client runs with `encoding=False`): the index of the first offer
/// for which [`normalize_charset_name`] finds a codec.
///
/// The reply is `IAC SB CHARSET ACCEPTED <offers[i] exactly as sent> IAC SE`, and the session
/// encoding becomes `offers[i]`. **On `None` telnetlib3 5.0.1 still replies ACCEPTED, with an
/// empty name** (`FF FA 2A 02 FF F0`) and sets the session encoding to `""`: `send_charset`
/// returns `""`, which `_handle_sb_charset` only treats as REJECTED when it is `None`.
pub fn accept_charset_offer(offers: &[&str]) -> Option<usize> {
    offers
        .iter()
        .position(|o| normalize_charset_name(o).1.is_some())
}

/// Split the payload of a received CHARSET REQUEST (the bytes after the REQUEST byte: a
/// separator byte, then names separated by it) as stream_writer.py `_handle_sb_charset` does.
/// `None` where Python raises and the SB is dropped without reply: no separator byte, or a
/// name that is not ASCII. An RFC 2066 `[TTABLE]` prefix is not understood (its `[` is taken
/// as the separator), as in telnetlib3.
pub fn parse_charset_request(payload: &[u8]) -> Option<Vec<String>> {
    let (&sep, rest) = payload.split_first()?;
    rest.split(|&b| b == sep)
        .map(|name| {
            name.is_ascii()
                .then(|| name.iter().map(|&b| char::from(b)).collect())
        })
        .collect()
}

/// The NEW_ENVIRON `LANG` value after the CHARSET offer `offer` was accepted:
/// `en_US.<codecs.lookup(normalized offer).name>` (e.g. `en_US.utf-8` for `UTF-8`). `None`
/// when the offer names no codec: LANG then keeps its value (`C` before any CHARSET).
pub fn charset_lang(offer: &str) -> Option<String> {
    normalize_charset_name(offer)
        .1
        .map(|canonical| format!("en_US.{canonical}"))
}

/// `_RETRO_EOL_ENCODINGS` of server_fingerprinting.py, compared after `lower()` and
/// `-` → `_`. Only `atascii` is accepted by `lookup` in a fresh process (see [`lookup`]), so the
/// other two names leave the reply unchanged.
const RETRO_EOL_ENCODINGS: &[&str] = &["atascii", "atari8bit", "atari_8bit"];

/// server_fingerprinting.py `_reencode_prompt`: for ATASCII sessions the ASCII prompt reply is
/// re-encoded through the codec (CR LF / CR → LF → byte 0x9B); otherwise, or when Python
/// would raise, the reply is returned unchanged.
pub fn reencode_prompt(response: &[u8], encoding: &str) -> Vec<u8> {
    // ASCII lowercasing, as in `format_banner` (no "k" in these names).
    let normalized = encoding.to_ascii_lowercase().replace('-', "_");
    if !RETRO_EOL_ENCODINGS.contains(&normalized.as_str()) {
        return response.to_vec();
    }
    // Only "atascii" of those names is a codec in a fresh process (see `lookup`).
    if lookup(encoding) != Some("atascii") || !response.is_ascii() {
        return response.to_vec();
    }
    let text = String::from_utf8_lossy(response)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    // The encoding of each ASCII character, generated from Python (no table needed, so this
    // is exact in the browser before any table is fetched); 0 where Python raises.
    text.bytes()
        .map(|b| {
            tables::ATASCII_ENCODE
                .get(usize::from(b))
                .copied()
                .filter(|&e| e != 0)
        })
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| response.to_vec())
}

#[cfg(test)]
mod tests {
    //! Cross-checks against the Python answers in `vectors.rs`.

    use super::*;
    use crate::pyjson::{to_canonical, Value};

    fn json(s: &PyStr) -> String {
        to_canonical(&Value::Str(s.clone()))
    }

    #[test]
    fn big5_table_row_ends() {
        // The first and last rows' ends, as CPython decodes them.
        assert_eq!(
            decode_surrogateescape("big5", b"\xa1\x40\xa1\x41\xf9\xd5\xf9\xd6"),
            PyStr(vec![0x3000, 0xFF0C, 0x9F98, 0xDCF9, 0xD6 + 0xDC00])
        );
    }

    #[test]
    fn lookup_matches_python() {
        for &(name, expected) in vectors::LOOKUP {
            assert_eq!(lookup(name), expected, "{name:?}");
        }
        assert_eq!(lookup("UTF8"), Some("utf-8"));
    }

    #[test]
    fn charset_names_normalise_like_telnetlib3() {
        for &(name, candidate, canonical) in vectors::CHARSET_NORMALIZE {
            assert_eq!(
                normalize_charset_name(name),
                (candidate.to_string(), canonical),
                "{name:?}"
            );
        }
    }

    #[test]
    fn decoders_match_python() {
        for &(enc, bytes, banner, lossy, mssp) in vectors::DECODE {
            let got = format_banner(enc, bytes).ok().map(|t| json(&t));
            assert_eq!(got.as_deref(), banner, "banner {enc:?} {bytes:02x?}");
            // The cursor's text: Python's, but for utf-7's lone surrogates, which the
            // `String` shows as U+FFFD (both are one column wide for telnetlib3's wcwidth).
            let replaced =
                try_decode_replace(enc, bytes).unwrap_or_else(|| PyStr::from_latin1(bytes));
            assert_eq!(json(&replaced), lossy, "lossy {enc:?} {bytes:02x?}");
            assert_eq!(decode_lossy(enc, bytes), replaced.to_string_lossy());
            assert_eq!(
                try_decode_mssp_field(enc, bytes)
                    .ok()
                    .map(|t| json(&t))
                    .as_deref(),
                mssp,
                "mssp {enc:?} {bytes:02x?}"
            );
        }
    }

    #[test]
    fn prompt_reencoding_matches_python() {
        for &(reply, enc, expected) in vectors::REENCODE {
            assert_eq!(
                reencode_prompt(reply, enc),
                expected,
                "{enc:?} {reply:02x?}"
            );
        }
    }

    #[test]
    fn charset_offers() {
        assert_eq!(
            accept_charset_offer(&["x-penn-def", "UTF-8", "ISO-8859-1"]),
            Some(1)
        );
        assert_eq!(accept_charset_offer(&["x-bogus-1", "x-bogus-2"]), None);
        assert_eq!(accept_charset_offer(&["hex"]), Some(0));
        assert_eq!(accept_charset_offer(&[]), None);
        assert_eq!(
            parse_charset_request(b";x-penn-def;UTF-8;ISO-8859-1"),
            Some(vec![
                "x-penn-def".into(),
                "UTF-8".into(),
                "ISO-8859-1".into()
            ])
        );
        assert_eq!(parse_charset_request(b" UTF-8"), Some(vec!["UTF-8".into()]));
        assert_eq!(parse_charset_request(b";"), Some(vec![String::new()]));
        assert_eq!(parse_charset_request(b""), None);
        assert_eq!(parse_charset_request(b";UTF-8;caf\xe9"), None);
        assert_eq!(charset_lang("UTF-8").as_deref(), Some("en_US.utf-8"));
        assert_eq!(
            charset_lang("ISO-8859-02").as_deref(),
            Some("en_US.iso8859-2")
        );
        assert_eq!(charset_lang("x-bogus"), None);
    }

    #[test]
    fn surrogateescape_details() {
        // b"\xe2\x82" then "A": two escaped bytes, then A.
        assert_eq!(
            decode_surrogateescape("utf-8", b"\xe2\x82A"),
            PyStr(vec![0xDCE2, 0xDC82, 0x41])
        );
        assert_eq!(
            decode_surrogateescape("utf-8", b"\xed\xa0\x80"),
            PyStr(vec![0xDCED, 0xDCA0, 0xDC80])
        );
        assert_eq!(
            decode_surrogateescape("ascii", b"a\xb1"),
            PyStr(vec![0x61, 0xDCB1])
        );
        assert_eq!(decode_surrogateescape("", b"\xb1"), PyStr(vec![0xB1]));
        assert_eq!(
            decode_surrogateescape("codepage", b"\xb1"),
            PyStr(vec![0xB1])
        );
        assert_eq!(decode_surrogateescape("cp437", b"\xb1"), PyStr::from("▒"));
        // cp424 cannot decode 0x70 and surrogateescape cannot escape it: Python raises.
        assert_eq!(format_banner("cp424", b"\x70"), Err(DecodeRaised));
        assert_eq!(decode_surrogateescape("cp424", b"\x70"), PyStr::from("p"));
    }

    #[test]
    fn every_text_codec_decodes_like_python() {
        // (encoding, bytes, `_format_banner` (None: raises), mud.py `_decode_best_effort`
        // (None: raises)), from CPython 3.11 with telnetlib3 5.0.1.
        type Case = (
            &'static str,
            &'static [u8],
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "big5bbs",
                b"\xa4\xa4\xa4\xe5\xf9\xf9\x1b[m",
                Some("中文∙∙\x1b[m"),
                Some("中文∙∙\x1b[m"),
            ),
            ("hz", b"~{VPND~}", Some("中文"), Some("中文")),
            (
                "iso2022_jp",
                b"\x1b$BF|K\\8l\x1b(B",
                Some("日本語"),
                Some("日本語"),
            ),
            ("iso2022_kr", b"\x1b$)C\x0eGQ\x0f", Some("한"), Some("한")),
            ("johab", b"\xd0e", Some("한"), Some("한")),
            (
                "euc_jis_2004",
                b"\xa4\xf7",
                Some("か\u{309a}"),
                Some("か\u{309a}"),
            ),
            ("utf-7", b"+ZeVnLIqe-", Some("日本語"), Some("日本語")),
            ("unicode_escape", b"\\u00e9", Some("é"), Some("é")),
            ("raw_unicode_escape", b"\\u00e9", Some("é"), Some("é")),
            ("punycode", b"bcher-kva", None, Some("bücher")),
            ("idna", b"xn--bcher-kva", None, Some("bücher")),
            ("undefined", b"x", None, None),
        ];
        for &(enc, bytes, banner, mssp) in cases {
            assert!(is_exact(enc), "{enc}");
            let banner = banner.map(PyStr::from).ok_or(DecodeRaised);
            assert_eq!(format_banner(enc, bytes), banner, "{enc}");
            let mssp = mssp.map(PyStr::from).ok_or(DecodeRaised);
            assert_eq!(try_decode_mssp_field(enc, bytes), mssp, "{enc}");
        }
        // UnicodeDecodeError is caught: latin-1. Other exceptions are not.
        assert_eq!(
            try_decode_mssp_field("punycode", b"\xe9-a"),
            Ok(PyStr::from_latin1(b"\xe9-a"))
        );
        assert_eq!(try_decode_mssp_field("punycode", b"a-!"), Err(DecodeRaised));
        // b"" is "" whatever the codec (even undefined), before the codec is looked up.
        assert_eq!(format_banner("undefined", b""), Ok(PyStr::new()));
        assert!(is_exact("utf-8") && is_exact("cp437") && is_exact("hex") && is_exact("bogus"));
        // Natively every table codec is exact under each of its names.
        for enc in [
            "cp950",
            "big5hkscs",
            "GBK",
            "cp936",
            "Shift_JIS",
            "sjis",
            "eucJP",
            "utf-16",
            "johab",
            "euc_jis_2004",
            "jisx0213",
            "ShiftJIS2004",
            "s_jisx0213",
            "csISO2022JP",
            "iso-2022-jp-2",
            "hz-gb-2312",
            "big5bbs",
        ] {
            assert!(is_exact(enc), "{enc}");
            assert_eq!(missing_table(enc), None, "{enc}");
        }
        assert_eq!(table_name("chinese"), Some("gb2312"));
        assert_eq!(table_name("ms_kanji"), Some("cp932"));
        assert_eq!(table_name("utf-16"), None);
        // The ISO-2022 codecs and hz share the EUC codecs' tables where the sets are the same.
        assert_eq!(table_name("iso2022_jp"), Some("euc_jp"));
        assert_eq!(table_name("iso2022_kr"), Some("euc_kr"));
        assert_eq!(table_name("hz"), Some("gb2312"));
        assert_eq!(table_name("iso2022_jp_2"), Some("iso2022_jp_2"));
        assert_eq!(table_name("utf-7"), None);
        // unicode_escape and idna read Unicode data (`codec/unidata.rs`), compiled in here.
        assert_eq!(table_name("unicode-escape"), Some("unicode_names"));
        assert_eq!(table_name("idna"), Some("nameprep"));
        assert_eq!(table_name("raw_unicode_escape"), None);
        for enc in ["unicode_escape", "idna"] {
            assert!(is_exact(enc) && missing_table(enc).is_none(), "{enc}");
        }
        assert_eq!(install_table("nameprep", b"not a table"), Ok(()));
        assert_eq!(install_table("unicode_names", b""), Ok(()));
    }

    #[test]
    fn big5_is_exact_under_every_name() {
        for enc in ["big5", "csBig5", "big5-tw", "x-mac-trad-chinese"] {
            assert_eq!(lookup(enc), Some("big5"), "{enc}");
            assert!(is_exact(enc), "{enc}");
        }
        // Python does not know "BIG-5" (no such alias): latin-1, exactly as telnetlib3 does.
        assert_eq!(lookup("BIG-5"), None);
        assert!(is_exact("BIG-5"));
    }

    #[test]
    fn big5_error_handling_matches_python() {
        // Python: b"\xa4\x40\xa4\x7f\xff\x41".decode("big5", "surrogateescape") is
        // '\u4e00\udca4\x7f\udcffA': an illegal pair costs its lead byte only; 0xFF has no
        // row but is still a lead byte, and its error covers only itself.
        let bytes = b"\xa4\x40\xa4\x7f\xff\x41";
        assert_eq!(
            decode_surrogateescape("big5", bytes),
            PyStr(vec![0x4E00, 0xDCA4, 0x7F, 0xDCFF, 0x41])
        );
        assert_eq!(decode_lossy("big5", bytes), "\u{4E00}\u{FFFD}\x7f\u{FFFD}A");
        // Strict raises, so the MSSP field falls back to latin-1 as a whole.
        assert_eq!(decode_mssp_field("big5", bytes), PyStr::from_latin1(bytes));
        assert_eq!(
            decode_mssp_field("big5", b"\xa4\xa4\xa4\xe5"),
            PyStr::from("中文")
        );
        // A lead byte at the end: "incomplete multibyte sequence", one byte.
        assert_eq!(
            decode_surrogateescape("big5", b"\xa4\xa4\xa4"),
            PyStr(vec![0x4E2D, 0xDCA4])
        );
        assert_eq!(decode_lossy("big5", b"abc\xa4"), "abc\u{FFFD}");
        assert_eq!(
            decode_mssp_field("big5", b"abc\xa4"),
            PyStr::from("abc\u{a4}")
        );
        // An illegal trail >= 0x80 then leads the next pair: A4 80 and 80 A4 are illegal, A4 A1
        // decodes (Python: '\udca4\udc80\u4e11').
        assert_eq!(
            decode_surrogateescape("big5", b"\xa4\x80\xa4\xa1"),
            PyStr(vec![0xDCA4, 0xDC80, 0x4E11])
        );
        // Errors are always bytes >= 0x80, so "surrogateescape" never raises for big5.
        assert!(format_banner("big5", b"\xa4\x00\xff").is_ok());
    }

    /// FNV-1a 64 over code points as 4 little-endian bytes (as `fnv1a` in gen_codecs.py).
    fn fnv1a(text: &[u32]) -> u64 {
        text.iter()
            .flat_map(|cp| cp.to_le_bytes())
            .fold(0xCBF2_9CE4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
            })
    }

    #[test]
    fn big5_every_byte_pair_matches_python() {
        // As `big5_blobs` in gen_codecs.py: every (byte, byte) pair, with and without "\n".
        let pairs = || (0..=255u8).flat_map(|a| (0..=255u8).map(move |b| [a, b]));
        let separated: Vec<u8> = pairs().flat_map(|[a, b]| [a, b, b'\n']).collect();
        let packed: Vec<u8> = pairs().flatten().collect();
        for (blob, expected) in [separated, packed].iter().zip(vectors::BIG5_ALL_PAIRS) {
            let escaped = decode_surrogateescape("big5", blob);
            let replaced = PyStr::from(decode_lossy("big5", blob));
            for (got, (len, hash)) in [escaped, replaced].iter().zip(expected) {
                assert_eq!((got.len(), fnv1a(&got.0)), (len, hash));
            }
        }
    }

    #[test]
    fn pystr_basics() {
        let s = PyStr(vec![0x61, 0xDC80, 0x1F600]);
        assert_eq!(s.to_string_lossy(), "a\u{FFFD}😀");
        assert_eq!(s.as_str_if_valid(), None);
        assert_eq!(PyStr::from("a😀").as_str_if_valid().as_deref(), Some("a😀"));
        assert_eq!(s.to_string(), "a\u{FFFD}😀");
        // Python order: by code point, so U+FFFF < U+1F600 (UTF-16 order would differ).
        assert!(PyStr(vec![0xFFFF]) < PyStr(vec![0x1F600]));
        assert!(
            PyStr::from("NAWS") < PyStr::from("NEW_ENVIRON")
                && PyStr::from("0x06") < PyStr::from("AARDWOLF")
        );
    }
}
