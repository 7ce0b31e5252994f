//! Golden transcripts: every `tests/golden/*.transcript` is replayed through the engine and
//! its timeline and record are compared with `*.expected`. `UPDATE_GOLDEN=1 cargo test`
//! rewrites the expectations; reviewing a behaviour change is reading their diff.
//!
//! The transcripts were captured from live scans of the local fake servers (`tests/` crate)
//! and telnetlib3-server; hand-written ones cover parser edge cases.

use iacscope_shared::event::push_coalesced;
use iacscope_shared::pyjson;
use iacscope_shared::record::SessionInfo;
use iacscope_shared::replay;
use iacscope_shared::transcript::{Entry, Transcript};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn inputs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "transcript"))
        .collect();
    v.sort();
    v
}

fn load(p: &Path) -> Transcript {
    let text = std::fs::read_to_string(p).expect("readable transcript");
    Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn session(t: &Transcript) -> SessionInfo {
    SessionInfo {
        host: t.meta("host").unwrap_or("127.0.0.1").to_owned(),
        ip: t.meta("ip").unwrap_or("127.0.0.1").to_owned(),
        port: t.meta("port").and_then(|p| p.parse().ok()).unwrap_or(23),
        connected: "1970-01-01T00:00:00+00:00".to_owned(),
    }
}

/// The engine's whole observable output for a transcript, as text.
fn render(t: &Transcript) -> String {
    let cfg = replay::config_from_meta(t).expect("config in meta");
    let mut out = String::from("# timeline\n");
    let mut events = Vec::new();
    let s = replay::replay_with(t, cfg, |e| push_coalesced(&mut events, e.clone()));
    for e in &events {
        out.push_str(&e.to_line());
        out.push('\n');
    }
    out.push_str(&format!("# done: {}\n# record\n", s.is_done()));
    out.push_str(&pyjson::to_pretty(&s.outcome().record(&session(t))));
    out.push('\n');
    out
}

#[test]
fn golden_transcripts() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let files = inputs();
    assert!(
        files.len() >= 10,
        "expected the golden corpus, found {}",
        files.len()
    );
    for input in files {
        let expected_path = input.with_extension("expected");
        let actual = render(&load(&input));
        if update {
            std::fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            let diff_line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |n| n + 1);
            failures.push(format!(
                "{}: differs from {} at line {diff_line} (run with UPDATE_GOLDEN=1 to accept)",
                input.display(),
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The record a replay builds equals the one the live scan saved (timing aside, it is the
/// same computation; the live JSON is checked in by `*.live.json` where present).
#[test]
fn replay_reproduces_the_sent_bytes() {
    for input in inputs() {
        let t = load(&input);
        let cfg = replay::config_from_meta(&t).expect("config");
        let s = replay::replay_with(&t, cfg, |_| {});
        let sent_live: Vec<u8> = t
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Send(_, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let sent_replay: Vec<u8> = s
            .transcript()
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Send(_, b) => Some(b.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if sent_live.is_empty() {
            continue; // hand-written inputs carry no send lines
        }
        assert_eq!(
            sent_live,
            sent_replay,
            "{}: the replay sent different bytes",
            input.display()
        );
    }
}

mod split {
    use super::*;
    use proptest::prelude::*;

    /// Splits every `recv` entry at the given fractions into several entries at the same time.
    fn split(t: &Transcript, cuts: &[f64]) -> Transcript {
        let mut out = Transcript::new();
        out.meta = t.meta.clone();
        let mut k = 0;
        for e in &t.entries {
            match e {
                Entry::Recv(at, b) if b.len() > 1 => {
                    let c = cuts[k % cuts.len()];
                    k += 1;
                    let n = ((b.len() as f64) * c) as usize;
                    let n = n.clamp(1, b.len() - 1);
                    // Bypass the merging in `push` so the pieces stay separate.
                    out.entries.push(Entry::Recv(*at, b[..n].to_vec()));
                    out.entries.push(Entry::Recv(*at, b[n..].to_vec()));
                }
                other => out.entries.push(other.clone()),
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Feeding the same bytes in any chunking gives the same events and record.
        #[test]
        fn any_split_gives_the_same_output(cuts in proptest::collection::vec(0.0f64..1.0, 1..8)) {
            for input in inputs() {
                let t = load(&input);
                let whole = render(&t);
                let pieces = render(&split(&t, &cuts));
                prop_assert_eq!(&whole, &pieces, "{}", input.display());
            }
        }
    }
}
