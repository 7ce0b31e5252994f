//! Which encoding a banner is in, for the page's "Decode as": the East Asian codec family
//! (drawn with wide ambiguous characters) and a guess from the bytes. Display only: the scan
//! and its record use the session encoding telnetlib3 would use, never this guess.

use crate::codec;

/// Bytes a guess looks at.
pub const MAX_GUESS_BYTES: usize = 64 * 1024;

/// Canonical Python names of the East Asian multi-byte codecs.
const EAST_ASIAN: &[&str] = &[
    "big5",
    "big5hkscs",
    "cp950",
    "gbk",
    "gb2312",
    "gb18030",
    "cp936",
    "hz",
    "euc_jp",
    "euc_jis_2004",
    "euc_jisx0213",
    "shift_jis",
    "shift_jis_2004",
    "shift_jisx0213",
    "cp932",
    "euc_kr",
    "cp949",
    "johab",
    "iso2022_jp",
    "iso2022_kr",
];

/// Whether `encoding` (any Python spelling) is an East Asian multi-byte codec.
pub fn is_east_asian(encoding: &str) -> bool {
    codec::lookup(encoding).is_some_and(|c| EAST_ASIAN.contains(&c))
}

/// Encodings a guess may name, tried in this order; the East Asian ones only where iacscope
/// decodes them exactly (see [`codec::is_exact`]).
const CANDIDATES: &[&str] = &["gbk", "big5", "shift_jis", "euc_kr", "euc_jp"];

/// A guess at the encoding of `bytes` (server text with escape sequences): `ascii`, `utf-8`,
/// one of the East Asian codecs, `cp437` (box drawing in the 0xB0–0xDF range) or `latin-1`.
pub fn guess(bytes: &[u8]) -> &'static str {
    let b = bytes.get(..MAX_GUESS_BYTES).unwrap_or(bytes);
    if b.is_ascii() {
        return "ascii";
    }
    // A cut at the end may split a UTF-8 sequence: allow up to 3 trailing bytes.
    match std::str::from_utf8(b) {
        Ok(_) => return "utf-8",
        Err(e) if e.error_len().is_none() && b.len() - e.valid_up_to() < 4 => return "utf-8",
        Err(_) => {}
    }
    let high: Vec<u8> = b.iter().copied().filter(|&c| c >= 0x80).collect();
    let mut best: Option<(&'static str, usize)> = None;
    for &enc in CANDIDATES {
        if !codec::is_exact(enc) {
            continue;
        }
        let text = codec::decode_lossy(enc, b);
        if text.contains('\u{fffd}') {
            continue;
        }
        let native = text.chars().filter(|&c| is_cjk_char(enc, c)).count();
        // Most high bytes must become characters of that script.
        if native * 2 * 2 >= high.len() && best.is_none_or(|(_, n)| native > n) {
            best = Some((enc, native));
        }
    }
    if let Some((enc, _)) = best {
        return enc;
    }
    let boxes = high.iter().filter(|&&c| (0xb0..=0xdf).contains(&c)).count();
    if boxes * 2 >= high.len() {
        "cp437"
    } else {
        "latin-1"
    }
}

/// Characters of the script the codec is for.
fn is_cjk_char(enc: &str, c: char) -> bool {
    let u = c as u32;
    let han = (0x4e00..=0x9fff).contains(&u) || (0x3400..=0x4dbf).contains(&u);
    match enc {
        "euc_kr" => (0xac00..=0xd7a3).contains(&u) || han,
        "shift_jis" | "euc_jp" => (0x3040..=0x30ff).contains(&u) || han,
        _ => han || (0x3000..=0x303f).contains(&u) || (0xff00..=0xffef).contains(&u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_utf8_and_box_art() {
        assert_eq!(guess(b"login: "), "ascii");
        assert_eq!(guess("Willkommen, Spieler! \u{2588}".as_bytes()), "utf-8");
        // A UTF-8 sequence cut by the end of the read.
        assert_eq!(guess(b"caf\xc3\xa9 \xe2\x96"), "utf-8");
        assert_eq!(
            guess(b"\xc9\xcd\xcd\xcd\xbb\r\n\xba Modem \xba\r\n\xc8\xcd\xcd\xbc"),
            "cp437"
        );
        assert_eq!(guess(b"Caf\xe9 cr\xe8me"), "latin-1");
    }

    #[test]
    fn east_asian_family() {
        assert!(is_east_asian("Big5"));
        assert!(is_east_asian("GB2312"));
        assert!(is_east_asian("euc-kr"));
        assert!(!is_east_asian("utf-8"));
        assert!(!is_east_asian("cp437"));
        assert!(!is_east_asian("no-such-codec"));
    }

    #[test]
    fn big5_when_exact() {
        // "歡迎" (welcome) in Big5.
        let b = b"\xc5\x77\xaa\xef\xa5\xfa\xc1\x7b\r\n";
        if codec::is_exact("big5") {
            assert_eq!(guess(b), "big5");
        }
    }

    #[test]
    fn hostile_input_is_bounded() {
        let junk: Vec<u8> = (0..1_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
        let g = guess(&junk);
        assert!(!g.is_empty());
    }
}
