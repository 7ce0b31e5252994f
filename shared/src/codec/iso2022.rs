//! CPython 3.11's stateful decoders of `Modules/cjkcodecs/_codecs_iso2022.c` (iso2022_jp,
//! iso2022_jp_1, iso2022_jp_2, iso2022_jp_2004, iso2022_jp_3, iso2022_jp_ext, iso2022_kr) and
//! hz (`_codecs_cn.c`): escape sequences choose the character set of what follows. The
//! double-byte sets are looked up in the table files of `codec/cjk.rs` (which set lives in
//! which file and plane is checked against Python by `shared/gen/gen_codecs.py`); the rest is
//! the state machine, whose every branch `codec/pydiff.rs` compares with CPython.
//!
//! As in CPython's `MultibyteCodec.decode`, the state (designations, shift, "ESC throughout")
//! lives for the whole call and survives errors; an error covers the bytes the decoder
//! reports (a pair that is not in its set: both bytes, however they look; an escape sequence
//! it does not take: the whole sequence), or the rest of the input where the input ends
//! inside a sequence ("incomplete multibyte sequence"). Since most of those bytes are below
//! 0x80, "surrogateescape" raises where "replace" writes one U+FFFD.

use super::cjk::{Cjk, Table};
use super::{py_error, Errors, PyStr, Raised};

/// A codec decoded by this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Iso2022 {
    Jp,
    Jp1,
    Jp2,
    Jp2004,
    Jp3,
    JpExt,
    Kr,
    Hz,
}

const ESC: u8 = 0x1B;
const SO: u8 = 0x0E;
const SI: u8 = 0x0F;
const LF: u8 = b'\n';

/// `CHARSET_DBCS`: the flag that tells a double-byte set's mark (`ESC $ B` designates
/// `b'B' | DBCS`) from a single-byte one (`ESC ( B`, ASCII).
const DBCS: u8 = 0x80;

/// The mark of ASCII, every designation's initial value.
const ASCII: u8 = b'B';

/// `MAX_ESCSEQLEN`: an escape sequence whose final byte does not come before this many bytes
/// is an error of one byte (the ESC).
const MAX_ESCSEQLEN: usize = 16;

/// What a designated set decodes the bytes 0x20..=0x7F as (CPython's `dsg->decoder`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Set {
    Ascii,
    /// JIS X 0201 Roman: ASCII with ¥ at 0x5C and ‾ at 0x7E.
    Roman,
    /// JIS X 0201 Katakana: 0x21..=0x5F are U+FF61..=U+FF9F.
    Kana,
    /// ISO 8859-1 and ISO 8859-7 (iso2022_jp_2): meant for G2; designated to G0 or G1 they
    /// have no decoder and every byte is an error of one byte.
    NoDecoder,
    /// A double-byte set: this plane of the codec's table file.
    Double(usize),
}

impl Iso2022 {
    /// The table file the codec looks its double-byte sets up in.
    pub(super) fn table_file(self) -> Cjk {
        match self {
            Iso2022::Jp | Iso2022::Jp1 | Iso2022::JpExt => Cjk::EucJp,
            Iso2022::Jp2 => Cjk::Iso2022Jp2,
            Iso2022::Jp2004 => Cjk::Iso2022Jp2004,
            Iso2022::Jp3 => Cjk::Iso2022Jp3,
            Iso2022::Kr => Cjk::EucKr,
            Iso2022::Hz => Cjk::Gb2312,
        }
    }

    /// `NO_SHIFT`: SI and SO are plain control characters (every iso2022_jp*).
    fn no_shift(self) -> bool {
        self != Iso2022::Kr
    }

    /// `USE_G2`: `ESC . F` designates G2 and `ESC N` shifts one character into it.
    fn uses_g2(self) -> bool {
        self == Iso2022::Jp2
    }

    /// `USE_JISX0208_EXT`: `ESC & @ ESC $ B` designates JIS X 0208 (JIS X 0208-1990).
    fn jisx0208_ext(self) -> bool {
        self != Iso2022::Kr
    }

    /// The set a designation mark stands for, `None` where the codec does not take it (the
    /// escape sequence is then an error). Each codec's `CONFIG_DESIGNATIONS`.
    fn set(self, mark: u8) -> Option<Set> {
        use Iso2022::*;
        let double = mark & DBCS != 0;
        Some(match (self, mark & !DBCS, double) {
            (_, ASCII, false) => Set::Ascii,
            // JIS X 0208 (`$B`), and JIS C 6226-1978 (`$@`) decoded the same way.
            (Jp | Jp1 | Jp2 | JpExt, b'B' | b'@', true) | (Jp2004 | Jp3, b'B', true) => {
                Set::Double(0)
            }
            (Jp | Jp1 | Jp2 | JpExt, b'J', false) => Set::Roman,
            (Jp1 | Jp2 | JpExt, b'D', true) => Set::Double(1), // JIS X 0212
            (Jp2, b'C', true) => Set::Double(2),               // KS X 1001
            (Jp2, b'A', true) => Set::Double(3),               // GB 2312
            (Jp2, b'A' | b'F', false) => Set::NoDecoder,
            (JpExt, b'I', false) => Set::Kana,
            (Jp2004, b'Q', true) => Set::Double(1), // JIS X 0213:2004 plane 1
            (Jp3, b'O', true) => Set::Double(1),    // JIS X 0213:2000 plane 1
            (Jp2004 | Jp3, b'P', true) => Set::Double(2), // JIS X 0213 plane 2
            (Kr, b'C', true) => Set::Double(0),     // KS X 1001
            _ => return None,
        })
    }
}

/// The decoder's state: the marks designated to G0, G1, G2 and the flags.
struct State {
    g: [u8; 3],
    /// SO seen (iso2022_kr): bytes decode with G1 until SI or LF.
    shifted: bool,
    /// `F_ESCTHROUGHOUT`: after an ESC that starts no sequence the codec knows, every byte is
    /// written as its latin-1 character until one of `A`..=`Z`, `@` (written too).
    esc_through: bool,
}

/// Why a step did not decode.
enum Fail {
    /// An error over this many bytes (the rest of the input: "incomplete").
    Error(usize),
    /// `MBERR_INTERNAL`: a single shift (`ESC N`) with JIS X 0201 Roman in G2. Python raises
    /// RuntimeError ("internal codec error"), whatever the error handler.
    Internal,
}

/// `IS_ESCEND`: the final byte of an escape sequence.
fn is_escend(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'@'
}

/// `bytes.decode(codec, errors)`.
pub(super) fn decode(
    codec: Iso2022,
    table: &Table,
    bytes: &[u8],
    errors: Errors,
) -> Result<PyStr, Raised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut state = State {
        g: [ASCII; 3],
        shifted: false,
        esc_through: false,
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let step = if codec == Iso2022::Hz {
            hz_step(table, &mut state, rest, &mut out)
        } else {
            step(codec, table, &mut state, rest, &mut out)
        };
        let used = match step {
            Ok(n) => n,
            Err(Fail::Error(esize)) => py_error(&mut out, rest, esize, errors)?,
            Err(Fail::Internal) => return Err(Raised::Other),
        };
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// One step of the ISO-2022 decoder at the start of `rest` (not empty): how many bytes it
/// took, having written what they decode to.
fn step(
    codec: Iso2022,
    table: &Table,
    state: &mut State,
    rest: &[u8],
    out: &mut PyStr,
) -> Result<usize, Fail> {
    let incomplete = Fail::Error(rest.len());
    let Some(&c) = rest.first() else {
        return Err(incomplete);
    };
    if state.esc_through {
        out.push(u32::from(c));
        if is_escend(c) {
            state.esc_through = false;
        }
        return Ok(1);
    }
    match c {
        ESC => {
            let Some(&c2) = rest.get(1) else {
                return Err(incomplete);
            };
            if matches!(c2, b'(' | b')' | b'$' | b'.' | b'&') {
                designate(codec, state, rest)
            } else if codec.uses_g2() && c2 == b'N' {
                single_shift(table, state, rest, out)
            } else {
                out.push(u32::from(ESC));
                state.esc_through = true;
                Ok(1)
            }
        }
        SI | SO if !codec.no_shift() => {
            state.shifted = c == SO;
            Ok(1)
        }
        LF => {
            state.shifted = false;
            out.push(u32::from(LF));
            Ok(1)
        }
        0x80.. => Err(Fail::Error(1)),
        // C0 controls (SI and SO too, where they do not shift) are themselves.
        ..0x20 => {
            out.push(u32::from(c));
            Ok(1)
        }
        _ => {
            let mark = state.g[usize::from(state.shifted)];
            // A designated mark always has a set; ASCII's is Ascii.
            match codec.set(mark).unwrap_or(Set::Ascii) {
                Set::Ascii => out.push(u32::from(c)),
                Set::Roman => out.push(match c {
                    0x5C => 0xA5,
                    0x7E => 0x203E,
                    _ => u32::from(c),
                }),
                Set::Kana if (0x21..=0x5F).contains(&c) => out.push(0xFF40 + u32::from(c)),
                Set::Kana | Set::NoDecoder => return Err(Fail::Error(1)),
                Set::Double(plane) => {
                    let Some(&c2) = rest.get(1) else {
                        return Err(incomplete);
                    };
                    return double(codec, table, plane, c, c2, out);
                }
            }
            Ok(1)
        }
    }
}

/// A pair of a double-byte set: its character(s), or an error over both bytes.
fn double(
    codec: Iso2022,
    table: &Table,
    plane: usize,
    c1: u8,
    c2: u8,
    out: &mut PyStr,
) -> Result<usize, Fail> {
    if c2 >= 0x80 {
        return Err(Fail::Error(2));
    }
    if codec == Iso2022::Kr && (c1, c2) == (0x24, 0x54) {
        // KS X 1001's HANGUL FILLER: euc_kr.bin lacks it (euc_kr decodes A4 D4 only as the
        // start of an 8-byte make-up sequence).
        out.push(0x3164);
        return Ok(2);
    }
    let (lead, trail) = (c1 | 0x80, c2 | 0x80);
    if let Some(cp) = table.cell(plane, lead, trail) {
        out.push(cp);
        return Ok(2);
    }
    match u8::try_from(plane)
        .ok()
        .and_then(|p| table.pair(p, lead, trail))
    {
        Some(Some(cps)) => {
            out.0.extend_from_slice(cps);
            Ok(2)
        }
        _ => Err(Fail::Error(2)),
    }
}

/// `iso2022processesc`: an escape sequence starting with `ESC (`, `)`, `$`, `.` or `&`.
fn designate(codec: Iso2022, state: &mut State, rest: &[u8]) -> Result<usize, Fail> {
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    // Find the final byte; with the JIS X 0208 extension, `& @` and the byte after it are
    // skipped (so `ESC & @ ESC $ B` is one sequence of 6 bytes).
    let mut esclen = 0;
    let mut i = 1;
    while i < MAX_ESCSEQLEN {
        let Some(&b) = rest.get(i) else {
            return Err(Fail::Error(rest.len()));
        };
        if is_escend(b) {
            esclen = i + 1;
            break;
        }
        if codec.jisx0208_ext() && b == b'&' && rest.get(i + 1) == Some(&b'@') {
            i += 2;
        }
        i += 1;
    }
    let (mark, g) = match esclen {
        0 => return Err(Fail::Error(1)),
        3 if byte(1) == b'$' => (byte(2) | DBCS, 0),
        3 => {
            let g = match byte(1) {
                b'(' => 0,
                b')' => 1,
                b'.' if codec.uses_g2() => 2,
                _ => return Err(Fail::Error(3)),
            };
            (byte(2), g)
        }
        4 => {
            let g = match (byte(1), byte(2)) {
                (b'$', b'(') => 0,
                (b'$', b')') => 1,
                _ => return Err(Fail::Error(4)),
            };
            (byte(3) | DBCS, g)
        }
        6 if codec.jisx0208_ext() && (byte(3), byte(4), byte(5)) == (ESC, b'$', b'B') => {
            (b'B' | DBCS, 0)
        }
        n => return Err(Fail::Error(n)),
    };
    if mark != ASCII && codec.set(mark).is_none() {
        return Err(Fail::Error(esclen));
    }
    if let Some(slot) = state.g.get_mut(g) {
        *slot = mark;
    }
    Ok(esclen)
}

/// `iso2022processg2`: `ESC N x`, one character from G2 (iso2022_jp_2).
fn single_shift(table: &Table, state: &State, rest: &[u8], out: &mut PyStr) -> Result<usize, Fail> {
    let Some(&x) = rest.get(2) else {
        return Err(Fail::Error(rest.len()));
    };
    let cp = match state.g[2] {
        ASCII if x < 0x80 => u32::from(x),
        // ISO 8859-1: the byte with its high bit set.
        b'A' if x < 0x80 => u32::from(x) + 0x80,
        // ISO 8859-7 (the table's singles), or, for a byte >= 0x80, the byte without it.
        b'F' if x >= 0x80 => u32::from(x ^ 0x80),
        b'F' => match table.single(x | 0x80) {
            Some(cp) => cp,
            None => return Err(Fail::Error(3)),
        },
        ASCII | b'A' => return Err(Fail::Error(3)),
        _ => return Err(Fail::Internal),
    };
    out.push(cp);
    Ok(3)
}

/// One step of `_codecs_cn.c` DECODER(hz): `~~` is `~`, `~{` switches to GB 2312 (pairs of
/// bytes < 0x80), `~}` back to ASCII, `~` newline is a line continuation (nothing); any other
/// `~` pair, a byte >= 0x80, and a GB pair not in GB 2312 are errors of one byte.
fn hz_step(table: &Table, state: &mut State, rest: &[u8], out: &mut PyStr) -> Result<usize, Fail> {
    let Some(&c) = rest.first() else {
        return Err(Fail::Error(0));
    };
    let gb = &mut state.shifted;
    if c == b'~' {
        let Some(&c2) = rest.get(1) else {
            return Err(Fail::Error(rest.len()));
        };
        match (c2, *gb) {
            (b'~', false) => out.push(u32::from(b'~')),
            (b'{', false) => *gb = true,
            (b'\n', false) => {}
            (b'}', true) => *gb = false,
            _ => return Err(Fail::Error(1)),
        }
        return Ok(2);
    }
    if c >= 0x80 {
        return Err(Fail::Error(1));
    }
    if !*gb {
        out.push(u32::from(c));
        return Ok(1);
    }
    let Some(&c2) = rest.get(1) else {
        return Err(Fail::Error(rest.len()));
    };
    match table.cell(0, c | 0x80, c2 | 0x80).filter(|_| c2 < 0x80) {
        Some(cp) => {
            out.push(cp);
            Ok(2)
        }
        None => Err(Fail::Error(1)),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::super::decode3;

    fn s(text: &str) -> Option<Vec<u32>> {
        Some(text.chars().map(u32::from).collect())
    }

    /// Answers of CPython 3.11 (strict, replace, surrogateescape).
    #[test]
    fn escape_sequences_and_errors_match_python() {
        type Case = (&'static str, &'static [u8], [Option<Vec<u32>>; 3]);
        let cases: &[Case] = &[
            (
                "iso2022_jp",
                b"\x1b$BF|K\\8l\x1b(B ok",
                [s("日本語 ok"), s("日本語 ok"), s("日本語 ok")],
            ),
            // A pair JIS X 0208 lacks: one error over both bytes, which start below 0x80, so
            // surrogateescape raises.
            (
                "iso2022_jp",
                b"\x1b$B\x22\x2f\x1b(B",
                [None, s("\u{fffd}"), None],
            ),
            // An ESC that starts no known sequence is written, and so is every byte up to an
            // upper-case letter or `@`: an ANSI colour code survives, but then `red\xff` is
            // latin-1 too, while after `R` 0xFF is an error again.
            (
                "iso2022_jp",
                b"\x1b[1;31mred\x1b[0m\xff",
                [
                    s("\x1b[1;31mred\x1b[0m\u{ff}"),
                    s("\x1b[1;31mred\x1b[0m\u{ff}"),
                    s("\x1b[1;31mred\x1b[0m\u{ff}"),
                ],
            ),
            (
                "iso2022_jp",
                b"\x1b[1;31mRed\xff",
                [
                    None,
                    s("\x1b[1;31mRed\u{fffd}"),
                    Some(
                        "\x1b[1;31mRed"
                            .chars()
                            .map(u32::from)
                            .chain([0xDCFF])
                            .collect(),
                    ),
                ],
            ),
            (
                "iso2022_kr",
                b"\x1b$)C\x0e\x47\x51\x0f A \x0e\x47\x51\n\x47\x51",
                [s("한 A 한\nGQ"), s("한 A 한\nGQ"), s("한 A 한\nGQ")],
            ),
            (
                "hz",
                b"~{<:Ky2;S{#,NpGn~}~~ ~\nx~{",
                [
                    s("己所不欲，勿穷~ x"),
                    s("己所不欲，勿穷~ x"),
                    s("己所不欲，勿穷~ x"),
                ],
            ),
            ("hz", b"a~", [None, s("a\u{fffd}"), None]),
            (
                "iso2022_jp_2",
                b"\x1b.F\x1bNa\x1b.A\x1bNi\x1b$(CGQ",
                [s("αé한"), s("αé한"), s("αé한")],
            ),
        ];
        for (enc, bytes, expected) in cases {
            assert_eq!(&decode3(enc, bytes), expected, "{enc} {bytes:02x?}");
        }
    }
}
