//! Differential scans for the multi-byte, UTF-16/32, ISO-2022, hz and utf-7 codecs (and
//! telnetlib3's big5bbs): for each codec, a local fake
//! server offers it by CHARSET, then sends MSSP values and a banner in it (valid text, then
//! invalid bytes), and telnetlib3-fingerprint 5.0.1 and `iacscope scan` must save the same
//! record (as in `differential.rs`: fingerprint, fingerprint-data, session_data without
//! timing, sessions[0] without connected).
//!
//! The servers are built here rather than in `tests/scenarios.txt`: their bytes come from
//! Python (`text.encode(codec)` by the reference venv's interpreter). Tools as in
//! `differential.rs`: `$IACSCOPE_PYTHON_BIN` (else `<workspace>/target/py/bin`) and
//! `$IACSCOPE_BIN` (else built). `IACSCOPE_CODEC_CASES=gbk,utf-16` runs only those.

use iacscope_tests::harness::{
    compare_records, fingerprint_of, iacscope_bin, python_bin_dir, scan_record, FakeServer,
};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// At most this many cases at once (each runs its two scans one after the other).
const PARALLEL: usize = 4;
const SCAN_TIMEOUT: Duration = Duration::from_secs(90);
const ONLY_ENV: &str = "IACSCOPE_CODEC_CASES";

/// (CHARSET offer, text sent as MSSP NAME and in the banner, invalid bytes after it in the
/// banner and as MSSP CODEBASE). Every invalid sequence here starts its error ranges with a
/// byte >= 0x80, so `_format_banner`'s surrogateescape does not raise (telnetlib3 would save
/// no record). The UTF-16/32 banners carry their own prompt and no CR LF (CR NUL is telnet's
/// bare CR) and stay a whole number of code units.
const CASES: &[(&str, &str, &[u8])] = &[
    ("GBK", "欢迎 中文服务器 ", b"\x81\x20\xa1\x20"),
    ("GB2312", "欢迎 中文 ", b"\xa1\x40\xf8\xa1"),
    (
        "GB18030",
        "欢迎 𝄞 € 中文 ",
        b"\x81\x30\x20\x20\x84\x31\xa5\x30",
    ),
    ("Big5-HKSCS", "歡迎 香港 Ê̄ ", b"\x88\x20\xa3\xe1"),
    ("cp950", "歡迎 中文 ", b"\xf9\xfe\x80\x40\xa1\x20"),
    (
        "EUC-JP",
        "ようこそ 日本語 ｶﾀｶﾅ 丂 ",
        b"\x8f\xa1\x20\x8e\x20",
    ),
    ("Shift_JIS", "ようこそ 日本語 ｶﾀｶﾅ ", b"\x82\x20\xa0\xf0"),
    ("cp932", "ようこそ ① ", b"\x81\x20\xfd"),
    (
        "EUC-KR",
        "환영합니다 한국어 ",
        b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xd4\xa4\xd4\x20",
    ),
    ("cp949", "환영합니다 똠방각하 ", b"\xc9\x20\x80"),
    ("UTF-16", "Welcome 中文 😀 login: ", b""),
    ("UTF-16LE", "Welcome 中文 login: ", b"\x80\xdc\x41\x00"),
    ("UTF-16BE", "Welcome 中文 login: ", b"\xdc\x80\x00\x41"),
    ("UTF-32", "Welcome 中文 login: ", b""),
    ("UTF-32LE", "Welcome 中文 login: ", b"\x80\x80\x80\x80"),
    ("UTF-32BE", "Welcome 😀 login: ", b"\xff\xff\xff\xff"),
    (
        "EUC-JIS-2004",
        "ようこそ か\u{309a} 𠮟 ",
        b"\x80\x20\x8f\xfe\xfa",
    ),
    (
        "Shift_JISX0213",
        "ようこそ か\u{309a} ¥ ",
        b"\x87\x9f\xa0\x20",
    ),
    ("Johab", "환영합니다 ", b"\xd8\x20\x84\x41"),
    // Stateful: the text leaves G0 in ASCII; after the invalid byte, JIS X 0201 Roman (¥, ‾)
    // and an ESC that starts no designation (written as it is, up to an upper-case letter).
    (
        "ISO-2022-JP",
        "ようこそ 日本語 ",
        b"\x80\x1b(J\\~\x1b(B \x1b[1mBold\x1b[0m",
    ),
    ("ISO-2022-JP-2", "Καλώς 한국어 日本語 ", b"\x80\x1b.A\x1bNi"),
    ("ISO-2022-KR", "환영합니다 한국어 ", b"\x80\x0e\x47\x51\x0f"),
    ("HZ-GB-2312", "欢迎 中文 ~ ", b"\x80~{VPND~}"),
    ("UTF-7", "Welcome 中文 😀 1+1 ", b"\x80+2D0-"),
    ("big5bbs", "歡迎 中文 ", b"\xf9\xf9\x1b[0m\xa1"),
];

/// `text.encode(codec)` by Python; UTF-16/32 with "utf-16"/"utf-32" get their BOM.
fn py_encode(python: &Path, codec: &str, text: &str) -> Vec<u8> {
    let out = Command::new(python.join("python"))
        .args([
            "-c",
            "import sys, telnetlib3.encodings; \
             sys.stdout.write(sys.argv[1].encode(sys.argv[2]).hex())",
            text,
            codec,
        ])
        .output()
        .expect("run python");
    assert!(out.status.success(), "python cannot encode {codec}");
    let hex = String::from_utf8(out.stdout).unwrap();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Script tokens for raw bytes: every byte as `0xHH`, IAC doubled.
fn tokens(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b == 0xFF {
                "0xff 0xff".to_string()
            } else {
                format!("0x{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn scenario_text(offer: &str, text: &[u8], invalid: &[u8]) -> String {
    let banner = [text, invalid].concat();
    let tail = if offer.starts_with("UTF") {
        String::new()
    } else {
        "send \"\\r\\nlogin: \"\n".into()
    };
    format!(
        "scenario charset\n\
         policy refuse\n\
         on once IAC DO CHARSET => after 500 IAC SB CHARSET REQUEST \" {offer}\" IAC SE\n\
         send IAC WILL CHARSET IAC WILL SGA IAC WILL MSSP\n\
         wait 600\n\
         send IAC SB MSSP MSSP_VAR \"NAME\" MSSP_VAL {} MSSP_VAR \"CODEBASE\" MSSP_VAL {} IAC SE\n\
         send {}\n\
         {tail}",
        tokens(text),
        tokens(if invalid.is_empty() { b"\x80" } else { invalid }),
        tokens(&banner),
    )
}

fn scan(tool: &Path, port: u16, json: &Path, log: &Path) -> Result<serde_json::Value, String> {
    scan_record(tool, port, &[], json, log, SCAN_TIMEOUT).1
}

#[test]
fn scans_in_each_codec_match_telnetlib3_fingerprint() {
    let python = python_bin_dir().unwrap_or_else(|e| panic!("{e:#}"));
    let iacscope = iacscope_bin().unwrap_or_else(|e| panic!("{e:#}"));
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codec_scans");
    let only: Option<Vec<String>> = std::env::var(ONLY_ENV)
        .ok()
        .map(|v| v.split(',').map(|l| l.trim().to_owned()).collect());
    let queue: Mutex<VecDeque<_>> = Mutex::new(
        CASES
            .iter()
            .filter(|(offer, _, _)| only.as_ref().is_none_or(|o| o.iter().any(|x| x == offer)))
            .collect(),
    );
    assert!(
        !queue.lock().unwrap().is_empty(),
        "{ONLY_ENV} names no case"
    );
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let Some(&(offer, text, invalid)) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let dir = work.join(offer);
                let _ = std::fs::create_dir_all(&dir);
                let encoded = py_encode(&python, offer, text);
                let script = scenario_text(offer, &encoded, invalid);
                let _ = std::fs::write(dir.join("scenario.txt"), &script);
                let scenario = iacscope_tests::script::parse(&script)
                    .expect("scenario parses")
                    .remove(0);
                let server = FakeServer::start(scenario).expect("fake server");
                let oracle = scan(
                    &python.join("telnetlib3-fingerprint"),
                    server.port(),
                    &dir.join("oracle.json"),
                    &dir.join("oracle.stderr"),
                );
                let ours = scan(
                    &iacscope,
                    server.port(),
                    &dir.join("iacscope.json"),
                    &dir.join("iacscope.stderr"),
                );
                let outcome = match (&oracle, &ours) {
                    (Ok(a), Ok(b)) => {
                        let enc = |r: &serde_json::Value| {
                            r.pointer("/server-probe/session_data/encoding").cloned()
                        };
                        let mut diffs = compare_records(a, b);
                        // The offer must have been taken, or the case tests nothing.
                        if enc(a) != Some(offer.into()) {
                            diffs.push(format!("telnetlib3 session encoding {:?}", enc(a)));
                        }
                        (fingerprint_of(a).unwrap_or("?").to_owned(), diffs)
                    }
                    _ => (
                        "-".into(),
                        vec![
                            format!("telnetlib3: {oracle:?}"),
                            format!("iacscope: {ours:?}"),
                        ],
                    ),
                };
                results.lock().unwrap().push((offer, outcome));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort();
    let mut report = String::new();
    for (offer, (fp, diffs)) in &results {
        let _ = writeln!(
            report,
            "{offer:<12} {fp:<17} {}",
            if diffs.is_empty() { "match" } else { "DIFF" }
        );
        for d in diffs {
            let _ = writeln!(report, "    {d}");
        }
    }
    eprintln!("{report}");
    assert!(
        results.iter().all(|(_, (_, d))| d.is_empty()),
        "records differ:\n{report}"
    );
}
