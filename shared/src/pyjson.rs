//! Python `json` module compatibility: a JSON value model whose strings are Python strings
//! ([`PyStr`], lone surrogates allowed), writers that reproduce `json.dump(indent=2,
//! sort_keys=True)` and the canonical `json.dumps` of telnetlib3's fingerprint hash byte for
//! byte, a parser for what Python writes, and the stdout "cull" view.
//!
//! Files, directories and merging records are left to the callers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub use crate::codec::PyStr;

/// Largest text [`parse`] accepts, in bytes. Saved telnetlib3 records are a few hundred KiB at
/// most (two banners of at most 64 KiB each, escaped up to 6×, plus a growing `sessions` list);
/// anything far bigger is not a record.
pub const MAX_PARSE_BYTES: usize = 32 * 1024 * 1024;

/// Deepest nesting of lists and dicts [`parse`] accepts. Records nest 5 levels; the limit keeps
/// the recursive parser's stack use bounded on hostile input.
pub const MAX_PARSE_DEPTH: usize = 128;

/// A JSON value as Python's `json` module sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A Python int. Python's are unbounded; [`parse`] refuses integers outside i64.
    Int(i64),
    Float(f64),
    Str(PyStr),
    List(Vec<Value>),
    Dict(Dict),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Self {
        Self::Str(PyStr::from(s))
    }

    /// A list of string values.
    pub fn str_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::List(items.into_iter().map(|s| Self::str(s.as_ref())).collect())
    }

    /// How telnetlib3's `_BytesSafeEncoder` (and `_cull_display`) write `bytes`: the UTF-8 text
    /// when valid, else lowercase hex.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Self::str(s),
            Err(_) => Self::Str(PyStr::from(crate::mud::hex(bytes).as_str())),
        }
    }

    /// The dict inside, if this is a dict.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The dict inside, mutably, if this is a dict.
    pub fn as_dict_mut(&mut self) -> Option<&mut Dict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The list inside, if this is a list.
    pub fn as_list(&self) -> Option<&Vec<Value>> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The list inside, mutably, if this is a list.
    pub fn as_list_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_pystr(&self) -> Option<&PyStr> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(v.into())
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Self {
        Self::Int(v.into())
    }
}
impl From<u8> for Value {
    fn from(v: u8) -> Self {
        Self::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::str(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::str(&v)
    }
}
impl From<PyStr> for Value {
    fn from(v: PyStr) -> Self {
        Self::Str(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Self::List(v)
    }
}
impl From<Dict> for Value {
    fn from(v: Dict) -> Self {
        Self::Dict(v)
    }
}

/// A Python dict, kept in code point order of its keys (the order `sort_keys=True` writes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dict(pub BTreeMap<PyStr, Value>);

impl Dict {
    /// An empty dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// `d[key] = value`; returns `self` for chaining.
    pub fn insert(&mut self, key: impl Into<PyStr>, value: impl Into<Value>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Builder form of [`Dict::insert`].
    pub fn with(mut self, key: impl Into<PyStr>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// `d.get(key)`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(&PyStr::from(key))
    }

    /// `d.get(key)`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(&PyStr::from(key))
    }

    /// `d.pop(key, None)`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(&PyStr::from(key))
    }

    /// `key in d`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(&PyStr::from(key))
    }

    /// `len(d)`.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `not d`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Items in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PyStr, &Value)> {
        self.0.iter()
    }
}

impl FromIterator<(PyStr, Value)> for Dict {
    fn from_iter<T: IntoIterator<Item = (PyStr, Value)>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

// ------------------------------------------------------------------------------------------
// Writing

/// Python `repr(float)` as `json` writes it: shortest round-trip digits; exponent form when
/// the decimal exponent is < -4 or >= 16 (`1e-05`, `1e+16`), else fixed with at least one
/// fractional digit (`7.0`, `0.0001`). NaN and infinities are not JSON; Python writes `NaN`,
/// `Infinity` and `-Infinity` (its `allow_nan=True` default), and so does this.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let (digits, exp) = shortest_digits(x.abs());
    let mut out = String::from(sign);
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    } else if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(exp.unsigned_abs() as usize - 1));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() > int_len {
            let (i, f) = digits.split_at(int_len);
            out.push_str(i);
            out.push('.');
            out.push_str(f);
        } else {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
            out.push_str(".0");
        }
    }
    out
}

/// The shortest decimal digits that read back as `x` (non-negative, finite) and the decimal
/// exponent of the first, as Python's `repr` chooses them. Rust's `{:e}` gives the shortest
/// round-trip digits too, but where two candidates are equally close to `x` (its exact value
/// lies on the midpoint, as `1.12393951416015625` does) it rounds the tie up, while Python
/// (David Gay's `dtoa`, mode 0) rounds it to even: `1.1239395141601562`, not `…563`.
/// telnetlib3 writes such timings, and an imported file must come out byte for byte.
fn shortest_digits(x: f64) -> (String, i32) {
    let split = |sci: &str| -> (String, i32) {
        let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
        let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
        (digits, exp.parse().unwrap_or(0))
    };
    let (digits, exp) = split(&format!("{x:e}"));
    // The exact value: a double's decimal expansion ends within 767 significant digits.
    let (exact, exact_exp) = split(&format!("{x:.767e}"));
    let exact = exact.trim_end_matches('0');
    let n = digits.len();
    let tie = exact_exp == exp && exact.len() == n + 1 && exact.ends_with('5');
    if !tie {
        return (digits, exp);
    }
    // The two candidates around the midpoint: the exact digits cut to `n`, and one more in
    // the last place. Python keeps the even one when it reads back as `x` (the one above
    // always does; the one below almost always, see `lower_reads_back`).
    let lower = &exact[..n];
    let last_even = |d: &str| d.bytes().last().is_some_and(|b| (b - b'0') & 1 == 0);
    if digits == lower || last_even(&digits) || !last_even(lower) {
        return (digits, exp);
    }
    if lower_reads_back(x, exp - n as i32) {
        (lower.to_owned(), exp)
    } else {
        (digits, exp)
    }
}

/// Whether the decimal just below `x` at a shortest-repr tie, `x - 5 * 10^a` (`a`: the
/// exponent of the exact expansion's last digit, the 5), reads back as `x`. The decimal above,
/// `x + 5 * 10^a`, does (it is Rust's shortest answer). Where the doubles around `x` are
/// equally far away, the two are alike: so for every `x` but a power of two, whose lower
/// neighbour is half as far (`ulp / 2`). There the decimal below reads back when it is within
/// half of that, `5 * 10^a <= 2^(k - 54)` for `x = 2^k` (equal: the tie goes to `x`, whose
/// mantissa is even). No float parsing (its tables would weigh on the browser bundle).
///
/// Only 2^-1..=2^-25 can tie (a power of two's expansion ends in 5 only below 1, and it has at
/// most 18 digits only up to 5^25); a case outside what the integers below hold keeps Rust's.
fn lower_reads_back(x: f64, a: i32) -> bool {
    let bits = x.to_bits();
    let (mantissa, biased) = (bits & ((1 << 52) - 1), (bits >> 52) as i32);
    if mantissa != 0 || biased <= 1 {
        return true;
    }
    let k = biased - 1023;
    // 5 * 10^a <= 2^(k - 54)  <=>  5 * 2^(54 - k) <= 10^(-a), for a < 0 and k < 54.
    let (Ok(shift), Ok(pow)) = (u32::try_from(54 - k), u32::try_from(-a)) else {
        return false;
    };
    if shift > 120 {
        return false;
    }
    10u128
        .checked_pow(pow)
        .is_none_or(|ten| 5u128 << shift <= ten)
}

/// `json` string escaping with `ensure_ascii=True`: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`
/// short; everything else outside 0x20..=0x7E (DEL included) as `\uXXXX` in lowercase hex,
/// astral characters as a surrogate pair, lone surrogates as themselves (`\udcb1`).
fn write_str(out: &mut String, s: &PyStr) {
    out.push('"');
    for &cp in &s.0 {
        match cp {
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x0A => out.push_str("\\n"),
            0x0D => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            0x20..=0x7E => out.push(char::from(cp as u8)),
            0x10000.. => {
                let v = cp - 0x10000;
                let _ = write!(
                    out,
                    "\\u{:04x}\\u{:04x}",
                    0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF)
                );
            }
            _ => {
                let _ = write!(out, "\\u{cp:04x}");
            }
        }
    }
    out.push('"');
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => write_str(out, s),
        Value::List(_) | Value::Dict(_) => {}
    }
}

/// Indentation step of telnetlib3's saved records (`indent=2`).
const INDENT: usize = 2;

fn write_pretty(out: &mut String, v: &Value, level: usize) {
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(level * INDENT));
    };
    match v {
        Value::List(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_pretty(out, item, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Dict(d) if !d.is_empty() => {
            out.push('{');
            for (i, (k, item)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_str(out, k);
                out.push_str(": ");
                write_pretty(out, item, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
        Value::List(_) => out.push_str("[]"),
        Value::Dict(_) => out.push_str("{}"),
        _ => write_scalar(out, v),
    }
}

/// `json.dump(obj, f, indent=2, sort_keys=True)`: what telnetlib3's `_atomic_json_write`
/// saves (no trailing newline) and what `_print_json` prints (after [`cull_display`]).
pub fn to_pretty(v: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, v, 0);
    out
}

fn write_compact(out: &mut String, v: &Value) {
    match v {
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Dict(d) => {
            out.push('{');
            for (i, (k, item)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_compact(out, item);
            }
            out.push('}');
        }
        _ => write_scalar(out, v),
    }
}

/// `json.dumps(obj, sort_keys=True, separators=(",", ":"))` (ensure_ascii left at its default,
/// True), the canonical form telnetlib3's `_hash_fingerprint` hashes.
pub fn to_canonical(v: &Value) -> String {
    let mut out = String::new();
    write_compact(&mut out, v);
    out
}

/// Hex digits kept from the SHA-256 (`hexdigest()[:16]`).
const HASH_HEX_LEN: usize = 16;

/// fingerprinting.py `_hash_fingerprint`: `sha256(canonical.encode("utf-8")).hexdigest()[:16]`.
/// Used for the fingerprint (over `fingerprint-data`) and for the session file name (over
/// `{"host", "ip", "port"}`).
pub fn fingerprint_hash(v: &Value) -> String {
    let digest = Sha256::digest(to_canonical(v).as_bytes());
    let mut h = crate::mud::hex(&digest);
    h.truncate(HASH_HEX_LEN);
    h
}

// ------------------------------------------------------------------------------------------
// Display

/// server_fingerprinting.py `_is_display_worthy`: `v is not False and v != {} and v != [] and
/// v != ""`. `0`, `0.0` and `null` are kept (`is not False` is an identity test).
fn is_display_worthy(v: &Value) -> bool {
    match v {
        Value::Bool(false) => false,
        Value::Dict(d) => !d.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Str(s) => !s.is_empty(),
        _ => true,
    }
}

/// server_fingerprinting.py `_cull_display`, the stdout view: dict entries whose value is
/// `false`, `{}`, `[]` or `""` are dropped, recursively. The test is made on the value before
/// its own culling, so `{"a": {"b": []}}` becomes `{"a": {}}`; list items are never dropped.
pub fn cull_display(v: &Value) -> Value {
    match v {
        Value::Dict(d) => Value::Dict(
            d.iter()
                .filter(|(_, item)| is_display_worthy(item))
                .map(|(k, item)| (k.clone(), cull_display(item)))
                .collect(),
        ),
        Value::List(items) => Value::List(items.iter().map(cull_display).collect()),
        _ => v.clone(),
    }
}

// ------------------------------------------------------------------------------------------
// Parsing

/// Why [`parse`] refused a text; `at` is a byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The text is longer than [`MAX_PARSE_BYTES`].
    TooLarge,
    /// Lists and dicts nest deeper than [`MAX_PARSE_DEPTH`].
    TooDeep { at: usize },
    /// An integer outside i64 (Python would accept it).
    IntegerOutOfRange { at: usize },
    /// Not JSON as Python's `json.loads` reads it.
    Syntax { at: usize, expected: &'static str },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => write!(f, "JSON text larger than {MAX_PARSE_BYTES} bytes"),
            Self::TooDeep { at } => {
                write!(f, "JSON nested deeper than {MAX_PARSE_DEPTH} at byte {at}")
            }
            Self::IntegerOutOfRange { at } => write!(f, "integer out of range at byte {at}"),
            Self::Syntax { at, expected } => write!(f, "expected {expected} at byte {at}"),
        }
    }
}

impl std::error::Error for Error {}

/// `json.loads(text)` for the JSON Python writes: `\udcXX` lone surrogates are kept, a
/// surrogate pair escape becomes one code point, ints and floats stay apart, `NaN`,
/// `Infinity` and `-Infinity` are read as Python does; a duplicate key keeps the last value.
/// Like Python (`strict=True`), raw control characters inside strings are refused.
pub fn parse(text: &str) -> Result<Value, Error> {
    if text.len() > MAX_PARSE_BYTES {
        return Err(Error::TooLarge);
    }
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("end of text"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &'static str) -> Error {
        Error::Syntax {
            at: self.pos,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// JSON whitespace as Python's `json` module skips it: space, tab, LF, CR.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self
            .s
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(lit.as_bytes()))
        {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        match self.peek() {
            Some(b'{') => self.dict(depth + 1),
            Some(b'[') => self.list(depth + 1),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat("null") => Ok(Value::Null),
            _ if self.eat("true") => Ok(Value::Bool(true)),
            _ if self.eat("false") => Ok(Value::Bool(false)),
            _ if self.eat("NaN") => Ok(Value::Float(f64::NAN)),
            _ if self.eat("Infinity") => Ok(Value::Float(f64::INFINITY)),
            _ => Err(self.err("a value")),
        }
    }

    fn list(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_PARSE_DEPTH {
            return Err(Error::TooDeep { at: self.pos });
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Value::List(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            if self.eat("]") {
                return Ok(Value::List(items));
            }
            if !self.eat(",") {
                return Err(self.err("',' or ']'"));
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_PARSE_DEPTH {
            return Err(Error::TooDeep { at: self.pos });
        }
        self.pos += 1;
        let mut d = Dict::new();
        self.ws();
        if self.eat("}") {
            return Ok(Value::Dict(d));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("a string key"));
            }
            let k = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("':'"));
            }
            self.ws();
            let v = self.value(depth)?;
            d.0.insert(k, v);
            self.ws();
            if self.eat("}") {
                return Ok(Value::Dict(d));
            }
            if !self.eat(",") {
                return Err(self.err("',' or '}'"));
            }
        }
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        if self.eat("-Infinity") {
            return Ok(Value::Float(f64::NEG_INFINITY));
        }
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - from
        };
        self.eat("-");
        // Python's NUMBER_RE: `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`; a leading 0 ends the
        // integer part ("01" is "0" followed by junk).
        if self.eat("0") {
        } else if digits(self) == 0 {
            return Err(self.err("a digit"));
        }
        let mut is_float = false;
        let save = self.pos;
        if self.eat(".") {
            if digits(self) == 0 {
                self.pos = save;
            } else {
                is_float = true;
            }
        }
        let save = self.pos;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = save;
            } else {
                is_float = true;
            }
        }
        let lexeme = self.text.get(start..self.pos).unwrap_or_default();
        if is_float {
            lexeme.parse().map(Value::Float).map_err(|_| Error::Syntax {
                at: start,
                expected: "a number",
            })
        } else {
            lexeme
                .parse()
                .map(Value::Int)
                .map_err(|_| Error::IntegerOutOfRange { at: start })
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("4 hex digits"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("4 hex digits"))?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.err("4 hex digits"));
        }
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("4 hex digits"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<PyStr, Error> {
        self.pos += 1;
        let mut out = PyStr::new();
        loop {
            // Copy the run of plain characters up to the next quote, backslash or control.
            let run_start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20)
            {
                self.pos += 1;
            }
            // The run ends at an ASCII byte, so it is whole UTF-8.
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("an escape"))?;
                    self.pos += 1;
                    let cp = match c {
                        b'"' => 0x22,
                        b'\\' => 0x5C,
                        b'/' => 0x2F,
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => 0x0A,
                        b'r' => 0x0D,
                        b't' => 0x09,
                        b'u' => {
                            let hi = self.hex4()?;
                            // Python joins a high surrogate with an escaped low one that follows.
                            if (0xD800..0xDC00).contains(&hi)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    self.pos = save;
                                    hi
                                }
                            } else {
                                hi
                            }
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("a valid escape"));
                        }
                    };
                    out.push(cp);
                }
                _ => return Err(self.err("'\"' (unterminated string or control character)")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
