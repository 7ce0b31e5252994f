//! Prompt detection tests. Every expected value was produced by telnetlib3 5.0.1's own
//! functions (`_detect_yn_prompt`, the `_ESC_*`, `_MENU_UTF8_RE`, `_CODEPAGE_RE` regexes and
//! `_reencode_prompt`) and is committed as a literal.

use super::*;

type Row = (&'static [u8], Option<&'static [u8]>, Option<&'static str>);

/// `(banner, _detect_yn_prompt(banner).response, .encoding)`.
const DETECT: &[Row] = &[
    (
        b"Welcome to Mystic BBS\r\nPress [.ESC.] twice within 10 seconds to continue",
        Some(b"\x1b\x1b"),
        None,
    ),
    (
        b"\x1b[1;33mPress \x1b[37m<ESC>\x1b[33m twice\x1b[0m to enter",
        Some(b"\x1b\x1b"),
        None,
    ),
    (
        b"Herbie's BBS\r\nPress ESC to continue...",
        Some(b"\x1b"),
        None,
    ),
    (b"press (esc) now", Some(b"\x1b"), None),
    (b"Press ESC. twice", Some(b"\x1b\x1b"), None),
    (b"PRESS .ESC.twice", Some(b"\x1b"), None),
    (b"More: (Y)es, (N)o, (C)ontinuous?", Some(b"C\r\n"), None),
    (b"more (y) or (c)ont", Some(b"C\r\n"), None),
    (b"More? Y/N/C (c)ontinuous", Some(b"y\r\n"), None),
    (b"Do you want ANSI color? (Y/n)", Some(b"y\r\n"), None),
    (b"Use ANSI? yes/no: ", Some(b"yes\r\n"), None),
    (b"Continue (Yes|No)?", Some(b"yes\r\n"), None),
    (b"Enable graphics [yN]", Some(b"y\r\n"), None),
    (b"Enable graphics (Yn)", Some(b"y\r\n"), None),
    (b"keys y/nothing", None, None),
    (b"xyes/no", None, None),
    (b"Answer Y/N", Some(b"y\r\n"), None),
    (b"Would you like color?", Some(b"y\r\n"), None),
    (b"Would you like COLOR ?", Some(b"y\r\n"), None),
    (
        b"Do you support the ANSI color standard (Yn)?",
        Some(b"y\r\n"),
        None,
    ),
    (
        b"Do you support the ansi   color\r\nstandard",
        Some(b"y\r\n"),
        None,
    ),
    (
        b"Select charset:\r\n 1) ASCII\r\n 2) Latin-1\r\n 3) UTF-8\r\n",
        Some(b"3\r\n"),
        Some("utf-8"),
    ),
    (b"[5] UTF-8", Some(b"5\r\n"), Some("utf-8")),
    (b"(12)   English/UTF8", Some(b"12\r\n"), Some("utf-8")),
    (b"2... utf-8", Some(b"2\r\n"), Some("utf-8")),
    (b"Choose: 1. ANSI  2. ASCII", Some(b"1\r\n"), None),
    (b"(1) English/ANSI", Some(b"1\r\n"), None),
    (b"007) utf8", Some(b"007\r\n"), Some("utf-8")),
    (b"Please select gb/big5", Some(b"big5\r\n"), Some("big5")),
    (
        b"\xa4\xa4\xa4\xe5 GB / Big 5 ?",
        Some(b"big5\r\n"),
        Some("big5"),
    ),
    (b"gbx/big5", None, None),
    (
        b"Select your terminal codepage",
        Some(b"\r\n"),
        Some("codepage"),
    ),
    (b"choose character set", Some(b"\r\n"), Some("codepage")),
    (b"Pick encoding now", Some(b"\r\n"), Some("codepage")),
    (b"Please press the BACKSPACE key", Some(b"\x08"), None),
    (b"Press DEL/Backspace:", Some(b"\x14"), None),
    (b"hit your backspace key", Some(b"\x14"), None),
    (b"Press DELETE", Some(b"\x14"), None),
    (b"HIT RETURN", Some(b"\r\n"), None),
    (b"Press <Enter> to continue", Some(b"\r\n"), None),
    (b"press [return]:", Some(b"\r\n"), None),
    (b"Welcome to the MUD!\r\nWhat is your name? ", None, None),
    (b"By what name do you wish to be known?", None, None),
    (b"login: ", None, None),
    (b"", None, None),
    (
        b"\x1b[2J\x1b[H\x1b[0;1;36mHit Return\x1b[0m",
        Some(b"\r\n"),
        None,
    ),
    (b"\x1b]0;title\x07Press Enter", Some(b"\r\n"), None),
    (b"press\tesc", Some(b"\x1b"), None),
    (b"Press ESC twice\r\n1) UTF-8", Some(b"\x1b\x1b"), None),
    (b"Hit return. Color? yes/no", Some(b"yes\r\n"), None),
    (b"\xff\xfe press enter \x80", Some(b"\r\n"), None),
    (b"password:", None, None),
    (b"Press the return key", None, None),
    (b"pressESC", None, None),
    (b"Y/N", Some(b"y\r\n"), None),
    (b"(y/n)", Some(b"y\r\n"), None),
    (b"1 ... English/UTF-8", Some(b"1\r\n"), Some("utf-8")),
    (b"[3]UTF8", Some(b"3\r\n"), Some("utf-8")),
    (b"Enter 1)ANSI 2)UTF-8", Some(b"2\r\n"), Some("utf-8")),
    (b"More [Y/n/c]ont", Some(b"y\r\n"), None),
];

#[test]
fn detect_prompt_matches_python() {
    for &(banner, response, encoding) in DETECT {
        let reply = detect_prompt(banner);
        assert_eq!(
            reply,
            PromptReply {
                response: response.map(<[u8]>::to_vec),
                encoding,
            },
            "banner {:?}",
            String::from_utf8_lossy(banner)
        );
    }
}

/// `(stripped, _ESC_TWICE_RE, _ESC_ONCE_RE, _MENU_UTF8_RE group(1), _CODEPAGE_RE)`.
type InlineRow = (&'static [u8], bool, bool, Option<&'static [u8]>, bool);

const INLINE: &[InlineRow] = &[
    (b"Press [.ESC.] twice", true, true, None, false),
    (b"press esc twice", true, false, None, false),
    (b"press <esc>", false, true, None, false),
    (b"Press ESC. twice", true, true, None, false),
    (b"press  [esc]  Twice", true, true, None, false),
    (b"press escape", false, true, None, false),
    (b"express esc", false, true, None, false),
    (b"Press ESC twic", false, true, None, false),
    (b"press\n(.esc.)\ntwice", true, true, None, false),
    (b"no prompt", false, false, None, false),
    (b"1) UTF-8", false, false, Some(b"1"), false),
    (b"[10] UTF8", false, false, Some(b"10"), false),
    (b"x) utf-8", false, false, None, false),
    (b"3.... UTF-8", false, false, None, false),
    (b"4 .. Latin/UTF-8", false, false, Some(b"4"), false),
    (b"5) UTF 8", false, false, None, false),
    (b"(6) Unicode / utf-8", false, false, Some(b"6"), false),
    (b"Select Terminal Codepage", false, false, None, true),
    (b"choose your charset", false, false, None, true),
    (b"select char set", false, false, None, true),
    (b"selectcharset", false, false, None, false),
    (b"pick your terminal encoding", false, false, None, true),
];

#[test]
fn inline_checks_match_python() {
    for &(text, twice, once, menu, codepage) in INLINE {
        let shown = String::from_utf8_lossy(text);
        assert_eq!(esc_twice(text), twice, "esc_twice {shown:?}");
        assert_eq!(esc_once(text), once, "esc_once {shown:?}");
        assert_eq!(menu_utf8(text).as_deref(), menu, "menu_utf8 {shown:?}");
        assert_eq!(codepage_prompt(text), codepage, "codepage {shown:?}");
    }
}

#[test]
fn reencode_prompt_matches_python() {
    // `_reencode_prompt(response, encoding)`, each run in a fresh Python process.
    let cases: &[(&[u8], &str, &[u8])] = &[
        (b"yes\r\n", "atascii", b"yes\x9b"),
        (b"yes\r\n", "ATASCII", b"yes\x9b"),
        // Fresh process: the aliases are not registered yet (see `reencode_prompt`).
        (b"yes\r\n", "atari-8bit", b"yes\r\n"),
        (b"yes\r\n", "Atari_8bit", b"yes\r\n"),
        (b"3\r\n", "atari8bit", b"3\r\n"),
        (b"\r", "atascii", b"\x9b"),
        (b"a\rb\n", "atascii", b"a\x9bb\x9b"),
        (b"\x1b\x1b", "atascii", b"\x1b\x1b"),
        (b"\x08", "atascii", b"\x08"),
        (b"\x14", "atascii", b"\x14"),
        (b"\x80\r\n", "atascii", b"\x80\r\n"),
        (b"{}\r\n", "atascii", b"{}\r\n"),
        (b"yes\r\n", "utf-8", b"yes\r\n"),
        (b"\r\n", "petscii", b"\r\n"),
        (b"\r\n", "atari", b"\r\n"),
    ];
    for &(response, encoding, expected) in cases {
        assert_eq!(
            reencode_prompt(response, encoding),
            expected,
            "{response:?} {encoding}"
        );
    }
}

use proptest::prelude::*;

proptest! {
    #[test]
    fn detect_prompt_never_panics(bytes in proptest::collection::vec(
        prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            proptest::sample::select(vec![
                &b"press "[..], b"esc", b" twice", b"more", b"(y)", b"(c)ont", b"yes/no", b"[yn]",
                b"color?", b"1) ", b"utf-8", b"ansi", b"gb/big5", b"select charset", b"\x1b[1m",
                b"return", b"del", b"/", b"\r\n",
            ]).prop_map(<[u8]>::to_vec),
        ],
        0..100,
    )) {
        let banner = bytes.concat();
        let reply = detect_prompt(&banner);
        prop_assert!(reply.encoding.is_none() || reply.response.is_some());
        let stripped = strip_escapes(&banner);
        let _ = (esc_twice(&stripped), esc_once(&stripped), menu_utf8(&stripped));
        let _ = codepage_prompt(&stripped);
        for encoding in ["atascii", "utf-8"] {
            let _ = reencode_prompt(reply.response.as_deref().unwrap_or(b"\r\n"), encoding);
        }
    }
}

#[test]
fn long_hostile_banner_finishes() {
    // Python's `re` is quadratic on these too; this only checks nothing explodes further.
    let banner = [&b"more y ".repeat(300)[..], b"\r\n(c)ont"].concat();
    assert_eq!(detect_prompt(&banner).response, None);
    let banner = [&b"1.".repeat(500)[..], b"ansi"].concat();
    assert_eq!(
        detect_prompt(&banner).response.as_deref(),
        Some(&b"1\r\n"[..])
    );
}
