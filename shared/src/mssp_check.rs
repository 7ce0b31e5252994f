//! What is wrong with a server's MSSP: each variable checked against the MSSP specification's
//! list (mudhalla.net/tintin/protocols/mssp), for the report beside the MSSP table, the
//! summary's warning count, the JSON API and `iacscope scan`. Never part of the record.
//!
//! Pure: the caller passes the scanned host and port and the current Unix time (the engine
//! has no clock).

use crate::pyjson::{Dict, Value};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Crawlers read this wrong or not at all: the server's owner should fix it.
    Warning,
    /// Worth knowing, not an error (an unknown variable, a hostname that differs).
    Note,
}

impl Level {
    /// `"warning"` or `"note"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// One thing the check found, about one variable or about MSSP as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The variable as the server sent it; `None` for MSSP as a whole.
    pub var: Option<String>,
    /// How much it matters.
    pub level: Level,
    /// One sentence, for the server's owner.
    pub text: String,
}

/// What the check needs to know beside the MSSP data.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The server said `WILL MSSP` (its remote state is true).
    pub offered: bool,
    /// The host name or address that was scanned.
    pub host: &'a str,
    /// The port that was scanned.
    pub port: u16,
    /// Now, in Unix seconds.
    pub now_unix: i64,
}

/// Variables the specification requires.
pub const REQUIRED: &[&str] = &["NAME", "PLAYERS", "UPTIME"];

/// Variables whose value is a whole number (`-1` meaning "not given", as the specification
/// allows for every numeric variable).
const NUMERIC: &[&str] = &[
    "PLAYERS",
    "UPTIME",
    "CRAWL DELAY",
    "PORT",
    "CREATED",
    "MINIMUM AGE",
    "AREAS",
    "HELPFILES",
    "MOBILES",
    "OBJECTS",
    "ROOMS",
    "CLASSES",
    "LEVELS",
    "RACES",
    "SKILLS",
    "SSL",
    "TLS",
];

/// Variables whose value is `1` or `0` (`-1` also accepted as "not given").
const BOOLEAN: &[&str] = &[
    "ANSI",
    "GMCP",
    "MCCP",
    "MCP",
    "MSDP",
    "MSP",
    "MXP",
    "PUEBLO",
    "UTF-8",
    "VT100",
    "XTERM 256 COLORS",
    "XTERM TRUE COLORS",
    "PAY TO PLAY",
    "PAY FOR PERKS",
    "HIRING BUILDERS",
    "HIRING CODERS",
    "ADULT MATERIAL",
    "MULTICLASSING",
    "NEWBIE FRIENDLY",
    "PLAYER CITIES",
    "PLAYER CLANS",
    "PLAYER CRAFTING",
    "PLAYER GUILDS",
];

/// Text variables of the specification (besides the numeric and boolean ones).
const TEXT: &[&str] = &[
    "NAME",
    "CODEBASE",
    "CONTACT",
    "DISCORD",
    "HOSTNAME",
    "ICON",
    "IP",
    "IPV6",
    "LANGUAGE",
    "LOCATION",
    "REFERRAL",
    "WEBSITE",
    "FAMILY",
    "GENRE",
    "GAMEPLAY",
    "GAMESYSTEM",
    "INTERMUD",
    "STATUS",
    "SUBGENRE",
    "EQUIPMENT SYSTEM",
    "MULTIPLAYING",
    "PLAYERKILLING",
    "QUEST SYSTEM",
    "ROLEPLAYING",
    "TRAINING SYSTEM",
    "WORLD ORIGINALITY",
];

/// Variables that carry one value (the specification's counts, flags, NAME and STATUS); the
/// others may be sent several times (PORT, GENRE, GAMEPLAY, CODEBASE, …).
fn single_valued(key: &str) -> bool {
    (NUMERIC.contains(&key) && !matches!(key, "PORT" | "SSL" | "TLS"))
        || BOOLEAN.contains(&key)
        || matches!(key, "NAME" | "STATUS")
}

/// Variables with a closed list of values in the specification.
const CHOICES: &[(&str, &[&str])] = &[
    ("STATUS", &["Alpha", "Closed Beta", "Open Beta", "Live"]),
    ("EQUIPMENT SYSTEM", &["None", "Level", "Skill", "Both"]),
    ("MULTIPLAYING", &["None", "Restricted", "Full"]),
    ("PLAYERKILLING", &["None", "Restricted", "Full"]),
    (
        "QUEST SYSTEM",
        &["None", "Immortal Run", "Automated", "Integrated"],
    ),
    (
        "ROLEPLAYING",
        &["None", "Accepted", "Encouraged", "Enforced"],
    ),
    ("TRAINING SYSTEM", &["None", "Level", "Skill", "Both"]),
    (
        "WORLD ORIGINALITY",
        &[
            "All Stock",
            "Mostly Stock",
            "Mostly Original",
            "All Original",
        ],
    ),
];

/// 1990-01-01: an UPTIME before this is not a boot time (often seconds of uptime instead).
const OLDEST_UPTIME: i64 = 631_152_000;
/// A server clock may run this far ahead before its UPTIME counts as "in the future".
const CLOCK_SLACK_SECS: i64 = 600;
/// At most this many findings are reported (a hostile MSSP may hold thousands of variables).
pub const MAX_FINDINGS: usize = 64;
/// Values are quoted in findings up to this many characters.
const MAX_QUOTE: usize = 40;

/// Checks a server's MSSP. `mssp` is the decoded data (`None` when none arrived).
pub fn check(mssp: Option<&Dict>, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(mssp) = mssp else {
        if ctx.offered {
            out.push(whole(
                Level::Warning,
                "The server offered MSSP (WILL MSSP) but sent no MSSP data after DO MSSP.",
            ));
        }
        return out;
    };
    if mssp.iter().next().is_none() {
        out.push(whole(
            Level::Warning,
            "The server sent an empty MSSP sub-negotiation: no variables at all.",
        ));
        return out;
    }
    for &req in REQUIRED {
        if find(mssp, req).is_none() {
            out.push(whole(
                Level::Warning,
                &format!("{req} is required by the MSSP specification and is missing."),
            ));
        }
    }
    let mut ports: Vec<i64> = Vec::new();
    for (name, value) in mssp.iter() {
        let sent = name.to_string_lossy();
        let key = sent.trim().to_ascii_uppercase();
        let values = strings(value);
        let mut say = |level: Level, text: String| {
            out.push(Finding {
                var: Some(sent.clone()),
                level,
                text,
            })
        };
        let known = NUMERIC.contains(&key.as_str())
            || BOOLEAN.contains(&key.as_str())
            || TEXT.contains(&key.as_str());
        if !known {
            say(
                Level::Note,
                "Not in the MSSP specification's list of variables (kept as sent).".into(),
            );
            continue;
        }
        if key != sent {
            say(
                Level::Warning,
                format!("Variable names are upper case without extra spaces: send {key:?}."),
            );
        }
        if values.len() > 1 && single_valued(&key) {
            say(
                Level::Warning,
                format!(
                    "Sent {} values; crawlers expect one and may keep either.",
                    values.len()
                ),
            );
        }
        for v in &values {
            if NUMERIC.contains(&key.as_str()) {
                match v.trim().parse::<i64>() {
                    Ok(n) => numeric_range(&key, n, ctx, &mut say, &mut ports),
                    Err(_) => {
                        let what = if decimal(v.trim()).is_some() {
                            "a decimal number"
                        } else if v.trim().is_empty() {
                            "empty"
                        } else {
                            "not a number"
                        };
                        say(
                            Level::Warning,
                            format!(
                                "{} is {what}; the specification wants a whole number \
                                 (-1 when unknown).",
                                quote(v)
                            ),
                        );
                        if key == "UPTIME" {
                            if let Some(f) = decimal(v.trim()) {
                                if f.is_finite() {
                                    numeric_range(&key, f as i64, ctx, &mut say, &mut ports);
                                }
                            }
                        }
                    }
                }
            } else if BOOLEAN.contains(&key.as_str()) {
                if !matches!(v.trim(), "0" | "1" | "-1") {
                    say(Level::Warning, format!("{} should be 1 or 0.", quote(v)));
                }
            } else if let Some((_, choices)) = CHOICES.iter().find(|(k, _)| *k == key) {
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(v.trim())) {
                    say(
                        Level::Note,
                        format!(
                            "{} is not one of the specification's values ({}).",
                            quote(v),
                            choices.join(", ")
                        ),
                    );
                }
            } else if key == "NAME" && v.trim().is_empty() {
                say(Level::Warning, "NAME is empty.".into());
            } else if key == "HOSTNAME" && !same_host(v, ctx.host) && values.len() == 1 {
                say(
                    Level::Note,
                    format!("Names {} but {:?} was scanned.", quote(v), ctx.host),
                );
            }
        }
    }
    if !ports.is_empty() && !ports.contains(&i64::from(ctx.port)) {
        out.push(Finding {
            var: find(mssp, "PORT").map(|(n, _)| n),
            level: Level::Note,
            text: format!(
                "PORT lists {} but port {} was scanned.",
                ports
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                ctx.port
            ),
        });
    }
    out.sort_by_key(|f| f.level);
    if out.len() > MAX_FINDINGS {
        let more = out.len() - MAX_FINDINGS;
        out.truncate(MAX_FINDINGS);
        out.push(whole(Level::Note, &format!("… and {more} more findings.")));
    }
    out
}

/// Checks the MSSP of a record (`fingerprint-data` and `session_data` as telnetlib3 saves
/// them): "offered" is `MSSP` among the offered options.
pub fn check_record(
    fingerprint_data: &Value,
    session_data: &Value,
    host: &str,
    port: u16,
    now_unix: i64,
) -> Vec<Finding> {
    let offered = fingerprint_data
        .as_dict()
        .and_then(|d| d.get("offered-options"))
        .and_then(Value::as_list)
        .is_some_and(|l| {
            l.iter()
                .any(|o| o.as_pystr().is_some_and(|s| s.to_string_lossy() == "MSSP"))
        });
    let mssp = session_data
        .as_dict()
        .and_then(|d| d.get("mssp"))
        .and_then(Value::as_dict);
    let ctx = Context {
        offered,
        host,
        port,
        now_unix,
    };
    check(mssp, &ctx)
}

/// At most this many MSSP TLS ports are tried (a server may list many).
pub const MAX_TLS_CLAIMS: usize = 2;

/// Ports a record's MSSP names as speaking TLS (`SSL`, `TLS`; whole numbers 1–65535), each
/// once, at most [`MAX_TLS_CLAIMS`]: the ports the report tries with one handshake.
pub fn tls_ports(session_data: &Value) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = Vec::new();
    let Some(m) = session_data
        .as_dict()
        .and_then(|d| d.get("mssp"))
        .and_then(Value::as_dict)
    else {
        return out;
    };
    for var in ["SSL", "TLS"] {
        let values: Vec<&Value> = match m.get(var) {
            Some(Value::List(l)) => l.iter().collect(),
            Some(v) => vec![v],
            None => continue,
        };
        for v in values {
            let port = v
                .as_pystr()
                .and_then(|p| p.to_string_lossy().trim().parse::<u16>().ok())
                .filter(|p| *p != 0);
            if let Some(p) = port {
                if out.len() < MAX_TLS_CLAIMS && !out.iter().any(|(_, q)| *q == p) {
                    out.push((var.to_owned(), p));
                }
            }
        }
    }
    out
}

/// Range checks of a whole-number variable.
/// `s.parse::<f64>()` without Rust's float parser (its tables would weigh on the browser
/// bundle): the same grammar (`[+-]` then `inf`, `infinity`, `nan` in any case, or digits with
/// an optional `.` and `e`/`E` exponent), the same value where the digits fit 2^53 and the
/// exponent is within ±22 (every whole or short decimal), a close one elsewhere.
fn decimal(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let special = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    let magnitude = match special {
        Some(v) => v,
        None => {
            let (mantissa, exp) = body.split_once(['e', 'E']).unwrap_or((body, "0"));
            let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
            if int.len() + frac.len() == 0
                || !all_digits(int)
                || !all_digits(frac)
                || exp_digits.is_empty()
                || !all_digits(exp_digits)
            {
                return None;
            }
            let mut m = 0u64;
            let mut scale = 0i64;
            for (i, b) in int.bytes().chain(frac.bytes()).enumerate() {
                if i >= int.len() {
                    scale -= 1;
                }
                if m < 1 << 60 {
                    m = m * 10 + u64::from(b - b'0');
                } else {
                    scale += 1;
                }
            }
            let e: i64 = exp_digits
                .bytes()
                .fold(0i64, |e, b| (e * 10 + i64::from(b - b'0')).min(1_000_000));
            let e = if exp.starts_with('-') { -e } else { e } + scale;
            let mut pow = 1.0f64;
            for _ in 0..e.unsigned_abs().min(400) {
                pow *= 10.0;
            }
            if e < 0 {
                m as f64 / pow
            } else {
                m as f64 * pow
            }
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn numeric_range(
    key: &str,
    n: i64,
    ctx: &Context<'_>,
    say: &mut impl FnMut(Level, String),
    ports: &mut Vec<i64>,
) {
    match key {
        "UPTIME" if n == -1 => {}
        "UPTIME" if n > ctx.now_unix + CLOCK_SLACK_SECS => say(
            Level::Warning,
            format!(
                "{n} is in the future ({}): UPTIME is the Unix time the server started.",
                crate::record::short_date(n.clamp(0, 253_402_300_799))
            ),
        ),
        "UPTIME" if n < OLDEST_UPTIME => say(
            Level::Warning,
            format!(
                "{n} is before 1990: UPTIME is the Unix time the server started, not how \
                 long it has been up."
            ),
        ),
        "PLAYERS" if n < -1 => say(Level::Warning, format!("{n} players is not a count.")),
        "CRAWL DELAY" if n < -1 => say(
            Level::Warning,
            format!("{n}: CRAWL DELAY is hours between crawls, or -1 for the crawler's default."),
        ),
        "PORT" | "SSL" | "TLS" => {
            // SSL and TLS may be -1 ("none"); PORT must name the port.
            let unset = n == -1 && key != "PORT";
            if !(1..=65_535).contains(&n) && !unset {
                say(Level::Warning, format!("{n} is not a port number."));
            } else if key == "PORT" {
                ports.push(n);
            }
        }
        _ if n < -1 => say(Level::Warning, format!("{n} is negative.")),
        _ => {}
    }
}

fn whole(level: Level, text: &str) -> Finding {
    Finding {
        var: None,
        level,
        text: text.to_owned(),
    }
}

/// The variable named `key` (compared case-insensitively), with its name as sent.
fn find<'a>(mssp: &'a Dict, key: &str) -> Option<(String, &'a Value)> {
    mssp.iter()
        .map(|(k, v)| (k.to_string_lossy(), v))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
}

/// A value's strings (a variable sent several times is a list).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().flat_map(strings).collect(),
        Value::Str(s) => vec![s.to_string_lossy()],
        other => vec![crate::pyjson::to_canonical(other)],
    }
}

fn quote(v: &str) -> String {
    let cut: String = v.chars().take(MAX_QUOTE).collect();
    if cut.len() < v.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn same_host(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The number of warnings (notes are not counted).
pub fn warnings(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_numbers_as_rust_parses_them() {
        for text in [
            "1.5",
            "-1.5",
            "+2.",
            ".5",
            "5.",
            ".",
            "",
            "-",
            "+",
            "1e5",
            "1E+5",
            "2.5e-3",
            "1e",
            "1e+",
            "e5",
            "inf",
            "-Infinity",
            "NaN",
            "+nan",
            "infin",
            "1.2.3",
            "1,5",
            " 1",
            "0x10",
            "1_000",
            "123456789012345678901234567890",
            "1e400",
            "1e-400",
            "00012.500",
            "1700000000.0",
            "1700000000.5",
            "-0.0",
            "٣",
            "1.5 ",
        ] {
            let ours = decimal(text);
            let rust = text.parse::<f64>().ok();
            assert_eq!(ours.is_some(), rust.is_some(), "{text:?}");
            if let (Some(a), Some(b)) = (ours, rust) {
                if b.is_nan() {
                    assert!(a.is_nan(), "{text:?}");
                } else if b.abs() < 1e300 && b.abs() > 1e-300 {
                    assert!((a - b).abs() <= b.abs() * 1e-15, "{text:?}: {a} {b}");
                } else {
                    assert_eq!(a.is_finite(), b.is_finite(), "{text:?}");
                }
            }
        }
        // Whole and short decimals come out exactly.
        assert_eq!(decimal("1700000000.5"), Some(1_700_000_000.5));
        assert_eq!(decimal("0.1"), Some(0.1));
        assert_eq!(decimal("-86400"), Some(-86400.0));
    }
    use crate::codec::PyStr;

    const NOW: i64 = 1_764_900_000; // 2025-12-05

    fn ctx() -> Context<'static> {
        Context {
            offered: true,
            host: "mud.example",
            port: 4000,
            now_unix: NOW,
        }
    }

    fn dict(pairs: &[(&str, &[&str])]) -> Dict {
        let mut d = Dict::new();
        for (k, vs) in pairs {
            let v = if vs.len() == 1 {
                Value::Str(PyStr::from(vs[0]))
            } else {
                Value::List(vs.iter().map(|s| Value::Str(PyStr::from(*s))).collect())
            };
            d.insert(*k, v);
        }
        d
    }

    fn texts(f: &[Finding]) -> Vec<String> {
        f.iter()
            .map(|f| {
                format!(
                    "{} {}: {}",
                    f.level.as_str(),
                    f.var.as_deref().unwrap_or("-"),
                    f.text
                )
            })
            .collect()
    }

    #[test]
    fn a_good_mssp_has_nothing_to_say() {
        let d = dict(&[
            ("NAME", &["FakeMUSH"]),
            ("PLAYERS", &["3"]),
            ("UPTIME", &["1700000000"]),
            ("PORT", &["4000", "4001"]),
            ("ANSI", &["1"]),
            ("CRAWL DELAY", &["-1"]),
            ("STATUS", &["Live"]),
        ]);
        assert_eq!(texts(&check(Some(&d), &ctx())), Vec::<String>::new());
    }

    #[test]
    fn offered_without_data_is_called_out() {
        let f = check(None, &ctx());
        assert_eq!(warnings(&f), 1);
        assert!(f[0].text.contains("sent no MSSP data"));
        let quiet = Context {
            offered: false,
            ..ctx()
        };
        assert!(check(None, &quiet).is_empty());
    }

    #[test]
    fn evennia_float_uptime_and_other_mistakes() {
        let d = dict(&[
            ("NAME", &[""]),
            ("PLAYERS", &["three"]),
            ("UPTIME", &["1700000000.25"]),
            ("ANSI", &["yes"]),
            ("PORT", &["23"]),
            ("players online", &["3"]),
            ("Codebase", &["Evennia"]),
        ]);
        let t = texts(&check(Some(&d), &ctx()));
        let want = [
            "warning NAME: NAME is empty.",
            "warning PLAYERS: \"three\" is not a number",
            "warning UPTIME: \"1700000000.25\" is a decimal number",
            "warning ANSI: \"yes\" should be 1 or 0.",
            "warning Codebase: Variable names are upper case",
            "note players online: Not in the MSSP specification's list",
            "note PORT: PORT lists 23 but port 4000 was scanned.",
        ];
        for w in want {
            assert!(t.iter().any(|l| l.starts_with(w)), "{w:?} not in {t:#?}");
        }
        assert_eq!(t.len(), want.len(), "{t:#?}");
    }

    #[test]
    fn uptime_in_the_future_or_as_a_duration() {
        let future = dict(&[
            ("NAME", &["X"]),
            ("PLAYERS", &["0"]),
            ("UPTIME", &["4102444800"]),
        ]);
        let t = texts(&check(Some(&future), &ctx()));
        assert_eq!(t.len(), 1, "{t:#?}");
        assert!(
            t[0].contains("in the future (2100-01-01 00:00 UTC)"),
            "{t:#?}"
        );
        let duration = dict(&[
            ("NAME", &["X"]),
            ("PLAYERS", &["0"]),
            ("UPTIME", &["86400"]),
        ]);
        let t = texts(&check(Some(&duration), &ctx()));
        assert!(t[0].contains("before 1990"), "{t:#?}");
    }

    #[test]
    fn missing_required_and_repeated_single_values() {
        let d = dict(&[("PLAYERS", &["1", "2"]), ("CRAWL DELAY", &["-5"])]);
        let t = texts(&check(Some(&d), &ctx()));
        assert!(t.iter().any(|l| l.contains("NAME is required")));
        assert!(t.iter().any(|l| l.contains("UPTIME is required")));
        assert!(t.iter().any(|l| l.contains("Sent 2 values")));
        assert!(t.iter().any(|l| l.contains("CRAWL DELAY is hours")));
    }

    #[test]
    fn tls_ports_are_read_from_ssl_and_tls() {
        let sd = crate::pyjson::parse(
            r#"{"mssp": {"NAME": "X", "SSL": ["4001", "4001", "x"], "TLS": "0", "PORT": "4000"}}"#,
        )
        .expect("json");
        assert_eq!(tls_ports(&sd), vec![("SSL".to_owned(), 4001)]);
        let many = crate::pyjson::parse(r#"{"mssp": {"SSL": ["1", "2", "3"]}}"#).expect("json");
        assert_eq!(tls_ports(&many).len(), 2, "at most two handshakes");
        assert!(tls_ports(&Value::Null).is_empty());
    }

    #[test]
    fn a_hostile_mssp_is_bounded() {
        let mut d = Dict::new();
        for i in 0..2_000 {
            d.insert(
                format!("VAR{i}").as_str(),
                Value::Str(PyStr::from("x".repeat(1_000).as_str())),
            );
        }
        let f = check(Some(&d), &ctx());
        assert_eq!(f.len(), MAX_FINDINGS + 1);
        assert!(f.iter().all(|f| f.text.len() < 200));
    }
}
