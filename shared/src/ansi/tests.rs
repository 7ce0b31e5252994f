//! Tests for escape stripping, the virtual cursor, probe replies and SyncTERM fonts. Every
//! expected value was produced by telnetlib3 5.0.1's own code (`_ANSI_STRIP_RE`,
//! `_VirtualCursor`, `_respond_to_ansi_probes`, `detect_syncterm_font`) and is committed as
//! a literal.

use super::*;

#[test]
fn strip_escapes_matches_python() {
    // `(chunk, _ANSI_STRIP_RE.sub(b"", chunk))`
    let cases: &[(&[u8], &[u8])] = &[
        (b"plain", b"plain"),
        (b"\x1b[1;31mred\x1b[0m", b"red"),
        (b"\x1b[?25l\x1b[2J", b""),
        (b"a\x1b]0;title\x07b", b"ab"),
        (b"a\x1b]0;title\x1b\\b", b"ab"),
        (b"a\x1b]0;unterminated", b"a0;unterminated"),
        (b"a\x1b]0;x\x1bZb", b"a0;xb"),
        (b"\x1bPqdata\x1b\\c", b"c"),
        (b"\x1b_apc\x07d", b"d"),
        (b"\x1b^pm\x07e", b"e"),
        (b"\x1bXsos\x1b\\f", b"sosf"),
        (b"\x1b(Bg", b"g"),
        (b"\x1b)0h", b"h"),
        (b"\x1b(", b"\x1b("),
        (b"\x1b(\n", b""),
        (b"\x1b #8i", b"i"),
        (b"\x1b $", b"\x1b $"),
        (b"\x1b7j\x1b8", b"j"),
        (b"\x1bck", b"k"),
        (b"\x1b\x1b[0m", b"\x1b"),
        (b"\x1b", b"\x1b"),
        (b"\x1b\x80l", b"\x1b\x80l"),
        (b"\x1b[12", b"12"),
        (b"\x1b[1;2\x80m", b"1;2\x80m"),
        (b"\x1b[ q", b""),
        (b"\x1b[0;40 D", b""),
        (b"\x1b[6n", b""),
        (b"\x1b[>c", b""),
        (b"\x1b[1;\x1b[2m", b"1;"),
        (b"\xff\xfe\x1b[m\xfd", b"\xff\xfe\xfd"),
        (b"\x1b\x1f", b"\x1b\x1f"),
        (b"\x1b~x", b"x"),
        (b"\x1b[\x7f", b"\x7f"),
    ];
    for &(chunk, expected) in cases {
        assert_eq!(strip_escapes(chunk), expected, "{chunk:?}");
    }
}

/// `(chunk, encoding, starting col, bytes written, col, dsr_requests, dsr_replies)`.
type ProbeCase = (
    &'static [u8],
    &'static str,
    u32,
    Option<&'static [u8]>,
    u32,
    u32,
    u32,
);

#[test]
fn respond_to_probes_matches_python() {
    // Python: the `has_ansi_probe` test of `_read_banner_until_quiet`, then
    // `_respond_to_ansi_probes(chunk, writer, cursor)` or `cursor.advance(chunk)`.
    let cases: &[ProbeCase] = &[
        (
            b"Detecting terminal...\x1b[6nX\x1b[6n",
            "utf-8",
            1,
            Some(b"\x1b[1;22R\x1b[1;23R"),
            23,
            2,
            2,
        ),
        (b"hello", "utf-8", 1, None, 6, 0, 0),
        (
            b"\x1b[c\x1b[0c\x1b[5n\x05\x05\x1b[6n",
            "utf-8",
            1,
            Some(b"\x1b[?1;2c\x1b[?1;2c\x1b[0n\r\x1b[1;1R"),
            1,
            1,
            1,
        ),
        (
            b"\x1b[2J\x1b[H\x1b[6n",
            "ascii",
            5,
            Some(b"\x1b[1;5R"),
            5,
            1,
            1,
        ),
        (
            b"ab\x08\x08\x08c\x1b[6n\r\x1b[6n",
            "utf-8",
            1,
            Some(b"\x1b[1;2R\x1b[1;1R"),
            1,
            2,
            2,
        ),
        (
            b"\xe4\xb8\xad\xe6\x96\x87\x1b[6n",
            "utf-8",
            1,
            Some(b"\x1b[1;5R"),
            5,
            1,
            1,
        ),
        (
            b"\xe4\xb8\x1b[6n\xad",
            "utf-8",
            1,
            Some(b"\x1b[1;2R"),
            3,
            1,
            1,
        ),
        (
            b"\xc9\xcd\xbb\x1b[6n",
            "cp437",
            1,
            Some(b"\x1b[1;4R"),
            4,
            1,
            1,
        ),
        (
            b"\xc9\xcd\xbb\x1b[6n",
            "utf-8",
            1,
            Some(b"\x1b[1;3R"),
            3,
            1,
            1,
        ),
        (
            b"\xc9\xcd\xbb\x1b[6n",
            "ascii",
            1,
            Some(b"\x1b[1;4R"),
            4,
            1,
            1,
        ),
        (
            b"\xc9\xcd\xbb\x1b[6n",
            "codepage",
            1,
            Some(b"\x1b[1;4R"),
            4,
            1,
            1,
        ),
        (
            b"tab\there\nline\x1b[6n",
            "utf-8",
            3,
            Some(b"\x1b[1;14R"),
            14,
            1,
            1,
        ),
        (b"\x05", "utf-8", 7, Some(b"\r"), 7, 0, 0),
        (b"\x1b[6\x1b[6nn", "utf-8", 1, Some(b"\x1b[1;2R"), 3, 1, 1),
        (b"e\xcc\x81\x1b[6n", "utf-8", 1, Some(b"\x1b[1;2R"), 2, 1, 1),
    ];
    for &(chunk, encoding, col, written, end_col, requests, replies) in cases {
        let mut cursor = VirtualCursor::new(encoding);
        cursor.col = col;
        let out = respond_to_probes(chunk, &mut cursor);
        assert_eq!(out.as_deref(), written, "{chunk:?} {encoding}");
        assert_eq!(
            (cursor.col, cursor.dsr_requests, cursor.dsr_replies),
            (end_col, requests, replies),
            "{chunk:?} {encoding}"
        );
    }
}

#[test]
fn cursor_cpr_counts_replies() {
    let mut cursor = VirtualCursor::new("utf-8");
    cursor.advance(b"\x1b[1mabc\x08");
    assert_eq!(cursor.cpr(), b"\x1b[1;3R");
    assert_eq!(cursor.dsr_replies, 1);
    assert_eq!(cursor.dsr_requests, 0);
}

#[test]
fn detect_syncterm_font_matches_python() {
    // `(chunk, detect_syncterm_font(chunk))`
    let cases: &[(&[u8], Option<&str>)] = &[
        (b"\x1b[0;40 D", Some("cp437")),
        (b"\x1b[0;36 D", Some("atascii")),
        (b"\x1b[1;0 D", Some("cp437")),
        (b"\x1b[0;7 D", None),
        (b"\x1b[0;7 D\x1b[0;0 D", None),
        (b"\x1b[;0 D", None),
        (b"\x1b[0;0D", None),
        (b"\x1b[0;0  D", None),
        (b"x\x1b[0;0000000000000032 D", Some("petscii")),
        (b"\x1b[0;256 D", None),
        (b"\x1b[0;43 D", None),
        (b"\x1b[\x1b[0;2 D", Some("koi8-r")),
        (b"\x1b[0;1 d", None),
        (b"\x1b[00;31 D", Some("cp1131")),
        (b"\x1b[0;99999999999999999999 D", None),
        (b"plain", None),
    ];
    for &(chunk, expected) in cases {
        assert_eq!(detect_syncterm_font(chunk), expected, "{chunk:?}");
    }
}

#[test]
fn syncterm_table_matches_spec() {
    // Spec §2.7: ids 7, 15, 19, 28 and everything above 42 are unknown.
    for id in 0u16..300 {
        let chunk = format!("\x1b[0;{id} D");
        let known = detect_syncterm_font(chunk.as_bytes()).is_some();
        assert_eq!(known, id <= 42 && ![7, 15, 19, 28].contains(&id), "{id}");
    }
}

/// Bytes that are mostly escape-sequence material, so random inputs reach the parsers' corners.
fn terminal_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let fragment = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        proptest::sample::select(vec![
            &b"\x1b"[..],
            b"\x1b[",
            b"\x1b]",
            b"\x1bP",
            b"\x1b(",
            b";",
            b":",
            b"38;5;",
            b"48;2;",
            b"999",
            b"65535",
            b"m",
            b"H",
            b"J",
            b"K",
            b"A",
            b"C",
            b" D",
            b"6n",
            b"c",
            b"\x05",
            b"\x07",
            b"\x1b\\",
            b"\r\n",
            b"\x08",
            b"\t",
            "中".as_bytes(),
            b"\xcc\x81",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    proptest::collection::vec(fragment, 0..200).prop_map(|parts| parts.concat())
}

proptest::proptest! {
    #[test]
    fn never_panics(bytes in terminal_bytes(), encoding in proptest::sample::select(
        vec!["utf-8", "cp437", "ascii", "atascii", "petscii", "codepage", ""],
    )) {
        let screen = render(&bytes, encoding);
        proptest::prop_assert!(screen.rows.len() <= MAX_SCREEN_ROWS);
        let stripped = strip_escapes(&bytes);
        proptest::prop_assert!(stripped.len() <= bytes.len());
        let mut cursor = VirtualCursor::new(encoding);
        let mut whole = cursor.clone();
        if respond_to_probes(&bytes, &mut cursor).is_none() {
            // Without a probe the cursor moved exactly as `advance` moves it.
            whole.advance(&bytes);
            proptest::prop_assert_eq!(cursor, whole);
        }
        let _ = detect_syncterm_font(&bytes);
        let _ = crate::prompt::detect_prompt(&bytes);
    }
}
