//! MUD sub-negotiations decoded for reading: MSDP as variables, tables and arrays, GMCP as a
//! package and its JSON, ZMP and ATCP as commands. For the timeline, the page's table beside
//! MSSP and `iacscope scan --timeline`; display only, never part of the record (which stays
//! telnetlib3's). Garbage (unbalanced tables, invalid JSON or UTF-8, huge values) is shown as
//! what it is, with a problem sentence; every walk is bounded.

use crate::pyjson::{self, Value};
use crate::telopt::TelOpt;

/// Deepest MSDP table/array nesting decoded; deeper data is reported, not walked.
pub const MAX_DEPTH: usize = 16;
/// Most MSDP values (strings, tables, arrays) decoded from one sub-negotiation.
pub const MAX_ITEMS: usize = 4096;
/// A GMCP JSON body longer than this is not parsed (shown raw).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

const VAR: u8 = 1;
const VAL: u8 = 2;
const TABLE_OPEN: u8 = 3;
const TABLE_CLOSE: u8 = 4;
const ARRAY_OPEN: u8 = 5;
const ARRAY_CLOSE: u8 = 6;

/// An MSDP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msdp {
    /// Text (decoded as UTF-8, invalid bytes replaced).
    Str(String),
    /// `MSDP_TABLE_OPEN (VAR name VAL value)* MSDP_TABLE_CLOSE`.
    Table(Vec<(String, Msdp)>),
    /// `MSDP_ARRAY_OPEN (VAL value)* MSDP_ARRAY_CLOSE`, or a variable sent with several
    /// values.
    Array(Vec<Msdp>),
}

impl Msdp {
    /// One line: `"text"`, `{name = value, …}`, `[value, …]`.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Msdp::Str(s) => out.push_str(&format!("{s:?}")),
            Msdp::Table(t) => {
                out.push('{');
                for (i, (k, v)) in t.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&format!("{k} = "));
                    v.write(out);
                }
                out.push('}');
            }
            Msdp::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }
}

/// What one sub-negotiation says, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// MSDP variables in the order sent.
    Msdp {
        vars: Vec<(String, Msdp)>,
        /// What was wrong with the bytes, if anything.
        problem: Option<String>,
    },
    /// A GMCP message.
    Gmcp {
        package: String,
        /// The JSON body, when there is one and it parses.
        json: Option<Value>,
        /// The body as sent, when it does not parse (or is too large to); in the browser,
        /// also a body that parses, laid out by [`reindent_json`] (`problem` is then `None`).
        raw: Option<String>,
        problem: Option<String>,
    },
    /// A ZMP command and its arguments.
    Zmp { command: String, args: Vec<String> },
    /// An ATCP message.
    Atcp { package: String, value: String },
}

impl Decoded {
    /// The message on one line (for the timeline).
    pub fn to_line(&self) -> String {
        match self {
            Decoded::Msdp { vars, problem } => {
                let mut s = vars
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", v.to_line()))
                    .collect::<Vec<_>>()
                    .join("; ");
                if let Some(p) = problem {
                    s.push_str(&format!(" ({p})"));
                }
                s
            }
            Decoded::Gmcp {
                package,
                json,
                raw,
                problem,
            } => {
                let body = match (json, raw) {
                    (Some(v), _) => format!(" {}", pyjson::to_canonical(v)),
                    (None, Some(r)) => format!(" {r}"),
                    (None, None) => String::new(),
                };
                let p = problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default();
                format!("{package}{body}{p}")
            }
            Decoded::Zmp { command, args } => std::iter::once(command.clone())
                .chain(args.iter().map(|a| format!("{a:?}")))
                .collect::<Vec<_>>()
                .join(" "),
            Decoded::Atcp { package, value } => format!("{package} {value:?}"),
        }
    }
}

/// Decodes a sub-negotiation payload (after the option byte) of MSDP, GMCP, ZMP or ATCP.
pub fn decode(opt: TelOpt, payload: &[u8]) -> Option<Decoded> {
    match opt {
        TelOpt::MSDP => {
            let (vars, problem) = msdp(payload);
            Some(Decoded::Msdp { vars, problem })
        }
        TelOpt::GMCP => Some(gmcp(payload)),
        TelOpt::ZMP => {
            let mut parts = payload
                .split(|&b| b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let command = parts.next().unwrap_or_default();
            let mut args: Vec<String> = parts.collect();
            if args.last().is_some_and(String::is_empty) {
                args.pop();
            }
            Some(Decoded::Zmp { command, args })
        }
        TelOpt::ATCP => {
            let text = String::from_utf8_lossy(payload);
            let (package, value) = text.split_once(' ').unwrap_or((&text, ""));
            Some(Decoded::Atcp {
                package: package.to_owned(),
                value: value.to_owned(),
            })
        }
        _ => None,
    }
}

/// GMCP: `Package.Name` then optionally a space and a JSON body.
pub fn gmcp(payload: &[u8]) -> Decoded {
    let text = String::from_utf8_lossy(payload);
    let mut problems = Vec::new();
    if std::str::from_utf8(payload).is_err() {
        problems.push("invalid UTF-8 replaced".to_owned());
    }
    let (package, body) = match text.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text.as_ref(), ""),
    };
    let (json, raw) = if body.is_empty() {
        (None, None)
    } else if body.len() > MAX_JSON_BYTES {
        problems.push(format!("body of {} bytes not parsed", body.len()));
        (None, Some(body.chars().take(200).collect()))
    } else if cfg!(target_arch = "wasm32") {
        // The browser parses the body with its own `JSON.parse` (the web app's
        // `api::parse_gmcp`): the engine's parser, with its float tables, stays out of the
        // bundle.
        (None, Some(body.to_owned()))
    } else {
        match pyjson::parse(body) {
            Ok(v) => (Some(v), None),
            Err(e) => {
                problems.push(format!("not JSON: {e}"));
                (None, Some(body.to_owned()))
            }
        }
    };
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    Decoded::Gmcp {
        package: package.to_owned(),
        json,
        raw,
        problem,
    }
}

/// Deepest nesting [`reindent_json`] indents; deeper lines keep this indent, so a body of
/// `[[[[…` costs its own length in output, not its length times its depth.
pub const MAX_INDENT_DEPTH: usize = 32;

/// A JSON text laid out two spaces an indent, every token kept as sent: member order and
/// numbers exactly as the server wrote them (a parser would reorder JavaScript's
/// integer-like keys and round integers past 2^53). Only whitespace outside strings
/// changes; it never fails, so call it on text a parser accepted.
pub fn reindent_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth.min(MAX_INDENT_DEPTH)));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                if chars
                    .next_if(|&n| n == '}' || n == ']')
                    .map(|n| out.push(n))
                    .is_none()
                {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// MSDP: `(VAR name (VAL value)+)*`, values being text, tables or arrays.
pub fn msdp(p: &[u8]) -> (Vec<(String, Msdp)>, Option<String>) {
    let mut r = Reader {
        p,
        at: 0,
        items: 0,
        problem: None,
    };
    let vars = r.pairs(0, None);
    if r.at < p.len() && r.problem.is_none() {
        r.problem = Some(format!("{} bytes left over", p.len() - r.at));
    }
    (vars, r.problem)
}

struct Reader<'a> {
    p: &'a [u8],
    at: usize,
    items: usize,
    problem: Option<String>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.p.get(self.at).copied()
    }

    fn fail(&mut self, why: impl Into<String>) {
        if self.problem.is_none() {
            self.problem = Some(why.into());
        }
    }

    /// Text up to the next MSDP control byte.
    fn text(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| !(VAR..=ARRAY_CLOSE).contains(&b))
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.p[start..self.at]).into_owned()
    }

    /// `VAR name VAL value…` pairs until `close` (or the end at the top level).
    fn pairs(&mut self, depth: usize, close: Option<u8>) -> Vec<(String, Msdp)> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    if close.is_some() {
                        self.fail("a table is not closed");
                    }
                    return out;
                }
                Some(b) if Some(b) == close => {
                    self.at += 1;
                    return out;
                }
                Some(VAR) => {
                    self.at += 1;
                    let name = self.text();
                    let mut values = Vec::new();
                    while self.peek() == Some(VAL) {
                        self.at += 1;
                        match self.value(depth) {
                            Some(v) => values.push(v),
                            None => return out,
                        }
                    }
                    let v = match values.len() {
                        0 => {
                            self.fail(format!("{name:?} has no value"));
                            Msdp::Str(String::new())
                        }
                        1 => values.pop().unwrap_or(Msdp::Str(String::new())),
                        _ => Msdp::Array(values),
                    };
                    out.push((name, v));
                }
                Some(b) => {
                    self.fail(format!("unexpected byte {b} at {}", self.at));
                    self.at = self.p.len();
                    return out;
                }
            }
        }
    }

    /// One value after `VAL`; `None` when the walk must stop (a limit).
    fn value(&mut self, depth: usize) -> Option<Msdp> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            self.fail(format!(
                "more than {MAX_ITEMS} values; the rest not decoded"
            ));
            self.at = self.p.len();
            return None;
        }
        match self.peek() {
            Some(TABLE_OPEN | ARRAY_OPEN) if depth >= MAX_DEPTH => {
                self.fail(format!(
                    "nested deeper than {MAX_DEPTH}; the rest not decoded"
                ));
                self.at = self.p.len();
                None
            }
            Some(TABLE_OPEN) => {
                self.at += 1;
                Some(Msdp::Table(self.pairs(depth + 1, Some(TABLE_CLOSE))))
            }
            Some(ARRAY_OPEN) => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        Some(ARRAY_CLOSE) => {
                            self.at += 1;
                            break;
                        }
                        Some(VAL) => {
                            self.at += 1;
                            items.push(self.value(depth + 1)?);
                        }
                        None => {
                            self.fail("an array is not closed");
                            break;
                        }
                        Some(b) => {
                            self.fail(format!("unexpected byte {b} in an array at {}", self.at));
                            self.at = self.p.len();
                            break;
                        }
                    }
                }
                Some(Msdp::Array(items))
            }
            _ => Some(Msdp::Str(self.text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(opt: TelOpt, p: &[u8]) -> String {
        decode(opt, p).expect("decodes").to_line()
    }

    #[test]
    fn msdp_variables_tables_and_arrays() {
        let p = b"\x01client_options\x02\x03\x01ansi\x021\x01utf8\x020\x04\x01REPORTABLE_VARIABLES\x02\x05\x02HEALTH\x02ROOM\x06";
        assert_eq!(
            line(TelOpt::MSDP, p),
            "client_options = {ansi = \"1\", utf8 = \"0\"}; REPORTABLE_VARIABLES = [\"HEALTH\", \"ROOM\"]"
        );
        // Several VALs after one VAR are an array.
        assert_eq!(
            line(TelOpt::MSDP, b"\x01LIST\x02a\x02b"),
            "LIST = [\"a\", \"b\"]"
        );
    }

    #[test]
    fn msdp_garbage_is_shown_with_its_problem() {
        assert_eq!(
            line(TelOpt::MSDP, b"\x01T\x02\x03\x01a\x021"),
            "T = {a = \"1\"} (a table is not closed)"
        );
        assert_eq!(
            line(TelOpt::MSDP, b"\x04\x01x"),
            " (unexpected byte 4 at 0)"
        );
        assert_eq!(
            line(TelOpt::MSDP, b"\x01N\xff\xfe"),
            "N\u{fffd}\u{fffd} = \"\" (\"N\u{fffd}\u{fffd}\" has no value)"
        );
        // 100,000 nested tables: bounded, no stack overflow.
        let mut deep = b"\x01D\x02".to_vec();
        for _ in 0..100_000 {
            deep.extend_from_slice(b"\x03\x01D\x02");
        }
        let (vars, problem) = msdp(&deep);
        assert_eq!(vars.len(), 1);
        assert!(problem.unwrap().contains("nested deeper"));
        // Many values: bounded.
        let mut many = b"\x01A\x02\x05".to_vec();
        for _ in 0..10_000 {
            many.extend_from_slice(b"\x02x");
        }
        assert!(msdp(&many).1.unwrap().contains("more than"));
    }

    #[test]
    fn gmcp_package_and_json() {
        let d = gmcp(br#"Char.Vitals {"hp": 10, "maxhp": 20}"#);
        let Decoded::Gmcp { package, json, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(package, "Char.Vitals");
        assert!(json.is_some());
        assert_eq!(d.to_line(), r#"Char.Vitals {"hp":10,"maxhp":20}"#);
        assert_eq!(line(TelOpt::GMCP, b"Core.Ping"), "Core.Ping");
        assert_eq!(
            line(TelOpt::GMCP, b"Core.Hello {bad"),
            "Core.Hello {bad (not JSON: expected a string key at byte 1)"
        );
        assert!(line(TelOpt::GMCP, b"X \xff").contains("invalid UTF-8 replaced"));
    }

    #[test]
    fn reindented_json_keeps_every_token_as_sent() {
        // JSON.parse would put "2" before "b" and round the big integer.
        let raw = r#"{"b": 1, "2":[ ], "n" :9007199254740993,"s":"a,{\"}[:", "o":{}}"#;
        assert_eq!(
            reindent_json(raw),
            "{\n  \"b\": 1,\n  \"2\": [],\n  \"n\": 9007199254740993,\n  \"s\": \"a,{\\\"}[:\",\n  \"o\": {}\n}"
        );
        assert_eq!(reindent_json("[1,[2]]"), "[\n  1,\n  [\n    2\n  ]\n]");
        assert_eq!(reindent_json("7"), "7");
        // Deep nesting is indented at most MAX_INDENT_DEPTH levels: linear output.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let out = reindent_json(&deep);
        assert!(
            out.len() < deep.len() * (2 * MAX_INDENT_DEPTH + 2),
            "{}",
            out.len()
        );
        // Garbage is laid out, never a panic (callers pass parsed text; this is a guard).
        let _ = reindent_json("}}]],,\"\\");
    }

    #[test]
    fn zmp_and_atcp_commands() {
        assert_eq!(
            line(TelOpt::ZMP, b"zmp.ident\x00telnetlib3\x005.0.1\x00"),
            "zmp.ident \"telnetlib3\" \"5.0.1\""
        );
        assert_eq!(line(TelOpt::ATCP, b"Room.Num 1234"), "Room.Num \"1234\"");
    }
}
