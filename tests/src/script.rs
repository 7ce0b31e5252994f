//! The scenario script language: parses `scenarios.txt` into [`Scenario`] values; running them is `server.rs`'s job.
//!
//! A script is a list of lines. `scenario NAME` starts a scenario, `# …` is a comment, and
//! every other line is one step, run in order for each connection:
//!
//! | line | meaning |
//! |---|---|
//! | `policy refuse\|accept\|naive\|ignore [after MS]` | how DO/WILL without a rule are answered (default `refuse`) |
//! | `send TOKENS` | write bytes (through the MCCP2 compressor once it is on) |
//! | `raw TOKENS` | write bytes, bypassing the compressor |
//! | `mccp2` | send `IAC SB MCCP2 IAC SE`, then compress everything sent after it |
//! | `wait MS` | sleep |
//! | `expect TOKENS [within MS]` | wait until the client sends these bytes after the last `expect` match (default 10 s) |
//! | `await TOKENS [within MS]` | wait until the client has sent these bytes at any time since connect |
//! | `on [once] TOKENS => [after MS] TOKENS` | from now on, answer these client bytes |
//! | `repeat N\|forever` … `end` | loop a block (`forever` ends when the client goes away) |
//! | `close` | close the connection |
//!
//! TOKENS are space-separated: `"text"` (escapes `\r \n \t \e \\ \" \xHH`), telnet names
//! (`IAC`, `DO`, `SB`, option names such as `TTYPE`, `MCCP2`, `TM`, SB words such as `IS`,
//! `SEND`, `REQUEST`, `VAR`, `USERVAR`, `MSSP_VAR`, `MSSP_VAL`), decimal numbers and `0xHH`.
//! In an `on` rule, a pattern that is exactly `IAC DO|DONT|WILL|WONT opt` replaces the
//! policy for that command; any other pattern is searched for in everything the client sent.

use anyhow::{bail, Context, Result};

/// How negotiation commands without a matching rule are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// RFC 1143 style: acknowledge our own offers silently, refuse everything else (WONT/DONT).
    Refuse,
    /// RFC 1143 style: accept everything once (WILL/DO on a state change only).
    Accept,
    /// Answer every DO with WILL and every WILL with DO, every time, without tracking state.
    Naive,
    /// Never answer.
    Ignore,
}

/// The default answer to negotiation, with an optional delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// What to answer.
    pub kind: PolicyKind,
    /// Delay before each answer, in milliseconds.
    pub after_ms: u64,
}

/// One reaction to client bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The client bytes that trigger the rule.
    pub pattern: Vec<u8>,
    /// What is written back (possibly nothing: the command is swallowed).
    pub reply: Vec<u8>,
    /// Delay before the reply, in milliseconds.
    pub after_ms: u64,
    /// Fire only the first time.
    pub once: bool,
}

/// One step of a scenario script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Set the negotiation policy.
    Policy(Policy),
    /// Write bytes (compressed once MCCP2 is on).
    Send(Vec<u8>),
    /// Write bytes uncompressed.
    Raw(Vec<u8>),
    /// Start MCCP2.
    Mccp2,
    /// Sleep.
    Wait(u64),
    /// Wait for client bytes.
    Expect {
        /// Bytes to wait for.
        pattern: Vec<u8>,
        /// Give up after this many milliseconds and carry on.
        within_ms: u64,
    },
    /// Wait for client bytes sent at any time since connect (no cursor).
    Await {
        /// Bytes to wait for.
        pattern: Vec<u8>,
        /// Give up after this many milliseconds and carry on.
        within_ms: u64,
    },
    /// Install a rule.
    On(Rule),
    /// Run a block `count` times (`None` = until the client goes away).
    Repeat {
        /// Iterations; `None` for forever.
        count: Option<u64>,
        /// The block.
        body: Vec<Step>,
    },
    /// Close the connection.
    Close,
}

/// A named scripted server behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Name used on the command line (`fake-telnetd --scenario NAME`).
    pub name: String,
    /// The comment lines right after `scenario NAME`.
    pub description: String,
    /// The steps, run for each connection.
    pub steps: Vec<Step>,
}

/// The scenario file shipped with the crate.
pub const SCENARIOS_TXT: &str = include_str!("../scenarios.txt");

/// All built-in scenarios, in file order.
pub fn scenarios() -> Vec<Scenario> {
    parse(SCENARIOS_TXT).expect("tests/scenarios.txt parses")
}

/// Looks up a built-in scenario by name.
pub fn scenario(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

const NAMES: &[(&str, u8)] = &[
    // Commands.
    ("IAC", 255),
    ("DONT", 254),
    ("DO", 253),
    ("WONT", 252),
    ("WILL", 251),
    ("SB", 250),
    ("GA", 249),
    ("EL", 248),
    ("EC", 247),
    ("AYT", 246),
    ("AO", 245),
    ("IP", 244),
    ("BRK", 243),
    ("DM", 242),
    ("NOP", 241),
    ("SE", 240),
    ("EOR_CMD", 239),
    // Options.
    ("BINARY", 0),
    ("ECHO", 1),
    ("RCP", 2),
    ("SGA", 3),
    ("NAMS", 4),
    ("STATUS", 5),
    ("TM", 6),
    ("RCTE", 7),
    ("NAOL", 8),
    ("NAOP", 9),
    ("LOGOUT", 18),
    ("BM", 19),
    ("DET", 20),
    ("SNDLOC", 23),
    ("TTYPE", 24),
    ("EOR", 25),
    ("TTYLOC", 28),
    ("NAWS", 31),
    ("TSPEED", 32),
    ("LFLOW", 33),
    ("LINEMODE", 34),
    ("XDISPLOC", 35),
    ("AUTHENTICATION", 37),
    ("ENCRYPT", 38),
    ("NEW_ENVIRON", 39),
    ("TN3270E", 40),
    ("CHARSET", 42),
    ("COM_PORT", 44),
    ("TLS", 46),
    ("KERMIT", 47),
    ("MSDP", 69),
    ("MSSP", 70),
    ("MCCP1", 85),
    ("MCCP2", 86),
    ("MCCP3", 87),
    ("MSP", 90),
    ("MXP", 91),
    ("ZMP", 93),
    ("AARDWOLF", 102),
    ("ATCP", 200),
    ("GMCP", 201),
    ("EXOPL", 255),
    // Sub-negotiation words.
    ("IS", 0),
    ("SEND", 1),
    ("INFO", 2),
    ("VAR", 0),
    ("VALUE", 1),
    ("ENV_ESC", 2),
    ("USERVAR", 3),
    ("MSSP_VAR", 1),
    ("MSSP_VAL", 2),
    ("REQUEST", 1),
    ("ACCEPTED", 2),
    ("REJECTED", 3),
    ("MODE", 1),
    ("FORWARDMASK", 2),
    ("SLC", 3),
    ("ESC", 0x1b),
];

/// Looks up a telnet name used in scripts.
pub fn name_byte(name: &str) -> Option<u8> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Splits a line into tokens; quoted strings stay one token (with their quotes).
fn tokenize(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            let mut tok = String::from('"');
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                tok.push(c);
                if c == '\\' {
                    tok.push(chars.next().context("dangling backslash")?);
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                bail!("unterminated string in {line:?}");
            }
            out.push(tok);
        } else {
            let mut tok = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                tok.push(c);
                chars.next();
            }
            out.push(tok);
        }
    }
    Ok(out)
}

/// Turns tokens into bytes.
pub fn bytes_of(tokens: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for tok in tokens {
        if let Some(body) = tok.strip_prefix('"') {
            let body = body.strip_suffix('"').context("bad string")?;
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
                match chars.next().context("dangling backslash")? {
                    'r' => out.push(b'\r'),
                    'n' => out.push(b'\n'),
                    't' => out.push(b'\t'),
                    'e' => out.push(0x1b),
                    '0' => out.push(0),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => {
                        let hex: String = chars.by_ref().take(2).collect();
                        out.push(
                            u8::from_str_radix(&hex, 16).with_context(|| format!("\\x{hex}"))?,
                        );
                    }
                    other => bail!("unknown escape \\{other}"),
                }
            }
        } else if let Some(hex) = tok.strip_prefix("0x") {
            out.push(u8::from_str_radix(hex, 16).with_context(|| format!("bad hex {tok}"))?);
        } else if let Ok(n) = tok.parse::<u8>() {
            out.push(n);
        } else if let Some(b) = name_byte(tok) {
            out.push(b);
        } else {
            bail!("unknown token {tok:?}");
        }
    }
    Ok(out)
}

fn parse_ms(tok: Option<&String>) -> Result<u64> {
    tok.context("missing number")?.parse().context("bad number")
}

/// Parses a scenario file.
pub fn parse(text: &str) -> Result<Vec<Scenario>> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    // Stack of open blocks: (repeat count, steps). The bottom is the scenario body.
    let mut stack: Vec<(Option<u64>, Vec<Step>)> = Vec::new();
    let mut in_header = false;
    let finish =
        |scenarios: &mut Vec<Scenario>, stack: &mut Vec<(Option<u64>, Vec<Step>)>| -> Result<()> {
            if stack.len() > 1 {
                bail!("unclosed repeat block");
            }
            if let (Some(last), Some((_, steps))) = (scenarios.last_mut(), stack.pop()) {
                last.steps = steps;
            }
            Ok(())
        };
    for (lineno, line) in text.lines().enumerate() {
        let ctx = || format!("line {}: {line}", lineno + 1);
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            if in_header {
                let d = &mut scenarios.last_mut().expect("header").description;
                if !d.is_empty() {
                    d.push(' ');
                }
                d.push_str(comment.trim());
            }
            continue;
        }
        let toks = tokenize(trimmed).with_context(ctx)?;
        let Some(head) = toks.first() else {
            in_header = false;
            continue;
        };
        if head == "scenario" {
            finish(&mut scenarios, &mut stack).with_context(ctx)?;
            let name = toks
                .get(1)
                .context("scenario needs a name")
                .with_context(ctx)?;
            scenarios.push(Scenario {
                name: name.clone(),
                description: String::new(),
                steps: Vec::new(),
            });
            stack.push((None, Vec::new()));
            in_header = true;
            continue;
        }
        in_header = false;
        if stack.is_empty() {
            bail!("step outside a scenario: {}", ctx());
        }
        let rest = &toks[1..];
        let step = match head.as_str() {
            "policy" => {
                let kind = match rest.first().map(String::as_str) {
                    Some("refuse") => PolicyKind::Refuse,
                    Some("accept") => PolicyKind::Accept,
                    Some("naive") => PolicyKind::Naive,
                    Some("ignore") => PolicyKind::Ignore,
                    other => bail!("bad policy {other:?}: {}", ctx()),
                };
                let after_ms = if rest.get(1).map(String::as_str) == Some("after") {
                    parse_ms(rest.get(2)).with_context(ctx)?
                } else {
                    0
                };
                Step::Policy(Policy { kind, after_ms })
            }
            "send" => Step::Send(bytes_of(rest).with_context(ctx)?),
            "raw" => Step::Raw(bytes_of(rest).with_context(ctx)?),
            "mccp2" => Step::Mccp2,
            "wait" => Step::Wait(parse_ms(rest.first()).with_context(ctx)?),
            "close" => Step::Close,
            "expect" | "await" => {
                let (pat, within_ms) = match rest.iter().position(|t| t == "within") {
                    Some(i) => (&rest[..i], parse_ms(rest.get(i + 1)).with_context(ctx)?),
                    None => (rest, 10_000),
                };
                let pattern = bytes_of(pat).with_context(ctx)?;
                if pattern.is_empty() {
                    bail!("empty pattern: {}", ctx());
                }
                if head == "expect" {
                    Step::Expect { pattern, within_ms }
                } else {
                    Step::Await { pattern, within_ms }
                }
            }
            "on" => {
                let (once, rest) = match rest.first().map(String::as_str) {
                    Some("once") => (true, &rest[1..]),
                    _ => (false, rest),
                };
                let arrow = rest
                    .iter()
                    .position(|t| t == "=>")
                    .context("rule needs =>")
                    .with_context(ctx)?;
                let pattern = bytes_of(&rest[..arrow]).with_context(ctx)?;
                let mut reply = &rest[arrow + 1..];
                let mut after_ms = 0;
                if reply.first().map(String::as_str) == Some("after") {
                    after_ms = parse_ms(reply.get(1)).with_context(ctx)?;
                    reply = &reply[2..];
                }
                if pattern.is_empty() {
                    bail!("empty rule pattern: {}", ctx());
                }
                Step::On(Rule {
                    pattern,
                    reply: bytes_of(reply).with_context(ctx)?,
                    after_ms,
                    once,
                })
            }
            "repeat" => {
                let count = match rest.first().map(String::as_str) {
                    Some("forever") => None,
                    _ => Some(parse_ms(rest.first()).with_context(ctx)?),
                };
                stack.push((count, Vec::new()));
                continue;
            }
            "end" => {
                if stack.len() < 2 {
                    bail!("end without repeat: {}", ctx());
                }
                let (count, body) = stack.pop().expect("checked");
                Step::Repeat { count, body }
            }
            other => bail!("unknown step {other:?}: {}", ctx()),
        };
        stack.last_mut().expect("checked").1.push(step);
    }
    finish(&mut scenarios, &mut stack)?;
    let mut seen = std::collections::HashSet::new();
    for s in &scenarios {
        if !seen.insert(s.name.as_str()) {
            bail!("duplicate scenario {}", s.name);
        }
    }
    Ok(scenarios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_and_blocks() {
        let s = parse(
            "scenario x\n# about x\n# more\npolicy accept after 300\nsend IAC WILL SGA \"a\\r\\n\\x1b\" 0x05 7\n\
             repeat 2\n wait 5\nend\non once IAC DO TM => after 10 IAC WILL TM\nexpect \"y\" within 50\n",
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].description, "about x more");
        assert_eq!(
            s[0].steps,
            vec![
                Step::Policy(Policy {
                    kind: PolicyKind::Accept,
                    after_ms: 300
                }),
                Step::Send(vec![255, 251, 3, b'a', b'\r', b'\n', 0x1b, 5, 7]),
                Step::Repeat {
                    count: Some(2),
                    body: vec![Step::Wait(5)]
                },
                Step::On(Rule {
                    pattern: vec![255, 253, 6],
                    reply: vec![255, 251, 6],
                    after_ms: 10,
                    once: true
                }),
                Step::Expect {
                    pattern: b"y".to_vec(),
                    within_ms: 50
                },
            ]
        );
    }

    #[test]
    fn rejects_bad_scripts() {
        assert!(parse("scenario x\nsend BOGUS\n").is_err());
        assert!(parse("scenario x\nrepeat 2\nsend 1\n").is_err());
        assert!(parse("send 1\n").is_err());
        assert!(parse("scenario x\nscenario x\n").is_err());
    }

    #[test]
    fn builtin_scenarios_parse() {
        let all = scenarios();
        for name in ["silent", "mush", "weird", "close", "naive"] {
            assert!(all.iter().any(|s| s.name == name), "missing {name}");
        }
    }
}
