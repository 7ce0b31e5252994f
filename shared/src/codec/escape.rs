//! CPython 3.11's `unicode_escape` and `raw_unicode_escape` decoders
//! (`_PyUnicode_DecodeUnicodeEscapeInternal`, `_PyUnicode_DecodeRawUnicodeEscapeStateful`):
//! Python string-literal escapes over latin-1 text.
//!
//! An error covers the escape from its backslash up to the byte that broke it (not included:
//! decoding goes on there) or the end of the input, so it starts with `\` and
//! "surrogateescape" raises on it; "replace" writes one U+FFFD.
//!
//! `\N{name}` looks the name up as CPython 3.11's `unicodedata` does (Unicode 14.0 names and
//! aliases in any case, Hangul syllables and CJK unified ideographs computed:
//! `codec/unidata.rs`).

use super::unidata::Names;
use super::{py_error, DecodeRaised, Errors, PyStr};

/// The value of a hexadecimal digit.
fn hex(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

/// The error handler over `bytes[start..end]`; returns where decoding goes on.
fn error(
    out: &mut PyStr,
    bytes: &[u8],
    start: usize,
    end: usize,
    errors: Errors,
) -> Result<usize, DecodeRaised> {
    let rest = bytes.get(start..).unwrap_or_default();
    Ok(start + py_error(out, rest, end.saturating_sub(start), errors)?)
}

/// `count` hexadecimal digits from `pos`: the value and where they end, or where the first
/// byte that is not a digit (or the end of the input) is.
fn hex_digits(bytes: &[u8], mut pos: usize, count: usize) -> Result<(u32, usize), usize> {
    let mut value = 0u32;
    for _ in 0..count {
        let digit = bytes.get(pos).and_then(|&b| hex(b)).ok_or(pos)?;
        value = (value << 4) | digit;
        pos += 1;
    }
    Ok((value, pos))
}

/// `bytes.decode("unicode_escape", errors)`.
pub(super) fn decode_unicode_escape(
    bytes: &[u8],
    errors: Errors,
    names: &Names,
) -> Result<PyStr, DecodeRaised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut pos = 0;
    while let Some(&c) = bytes.get(pos) {
        pos += 1;
        if c != b'\\' {
            out.push(u32::from(c));
            continue;
        }
        let start = pos - 1;
        // "\\ at end of string".
        let Some(&c) = bytes.get(pos) else {
            pos = error(&mut out, bytes, start, pos, errors)?;
            continue;
        };
        pos += 1;
        let simple = match c {
            b'\n' => Some(None),
            b'\\' | b'\'' | b'"' => Some(Some(c)),
            b'b' => Some(Some(0x08)),
            b'f' => Some(Some(0x0C)),
            b't' => Some(Some(b'\t')),
            b'n' => Some(Some(b'\n')),
            b'r' => Some(Some(b'\r')),
            b'v' => Some(Some(0x0B)),
            b'a' => Some(Some(0x07)),
            _ => None,
        };
        if let Some(ch) = simple {
            out.0.extend(ch.map(u32::from));
            continue;
        }
        let count = match c {
            b'0'..=b'7' => {
                // Up to three octal digits; values above 0o377 are kept (a DeprecationWarning
                // in 3.12, nothing in 3.11).
                let mut ch = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(pos) {
                        Some(&d @ b'0'..=b'7') => {
                            ch = (ch << 3) + u32::from(d - b'0');
                            pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push(ch);
                continue;
            }
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            b'N' => {
                // `_PyUnicode_DecodeUnicodeEscapeInternal`'s `\N` case: "malformed \\N
                // character escape" up to where it broke (no `{`: up to it; no `}`: the rest
                // of the input; `\N{}`: up to the `}`, which is then decoded by itself);
                // "unknown Unicode character name" over the whole escape, `}` included. The
                // name is the bytes up to the first `}`, whatever they are (`getcode`).
                let end = match bytes.get(pos) {
                    Some(b'{') => match bytes
                        .get(pos + 1..)
                        .and_then(|r| r.iter().position(|&b| b == b'}'))
                    {
                        Some(0) => pos + 1,
                        Some(n) => {
                            let name = bytes.get(pos + 1..pos + 1 + n).unwrap_or_default();
                            if let Some(ch) = names.lookup(name) {
                                out.push(ch);
                                pos += n + 2;
                                continue;
                            }
                            pos + 1 + n + 1
                        }
                        None => bytes.len(),
                    },
                    _ => pos,
                };
                pos = error(&mut out, bytes, start, end, errors)?;
                continue;
            }
            _ => {
                // An unknown escape stays as it is (a DeprecationWarning, not an error).
                out.push(u32::from(b'\\'));
                out.push(u32::from(c));
                continue;
            }
        };
        pos = hex_escape(&mut out, bytes, start, pos, count, errors)?;
    }
    Ok(out)
}

/// The `count` hex digits at `pos` of the escape that began at `start`: the character, or
/// the error handler's answer for a truncated escape ("truncated \\xXX escape") or one
/// above U+10FFFF ("illegal Unicode character", "\\Uxxxxxxxx out of range"). Where to go on.
fn hex_escape(
    out: &mut PyStr,
    bytes: &[u8],
    start: usize,
    pos: usize,
    count: usize,
    errors: Errors,
) -> Result<usize, DecodeRaised> {
    match hex_digits(bytes, pos, count) {
        Ok((ch, end)) if ch > 0x10_FFFF => error(out, bytes, start, end, errors),
        Ok((ch, end)) => {
            out.push(ch);
            Ok(end)
        }
        Err(end) => error(out, bytes, start, end, errors),
    }
}

/// `bytes.decode("raw_unicode_escape", errors)`: only `\u` and `\U` escapes, and a backslash
/// before any other byte (another backslash too) keeps both as they are.
pub(super) fn decode_raw_unicode_escape(
    bytes: &[u8],
    errors: Errors,
) -> Result<PyStr, DecodeRaised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut pos = 0;
    while let Some(&c) = bytes.get(pos) {
        pos += 1;
        let Some(&c2) = bytes.get(pos).filter(|_| c == b'\\') else {
            out.push(u32::from(c));
            continue;
        };
        pos += 1;
        let count = match c2 {
            b'u' => 4,
            b'U' => 8,
            _ => {
                out.push(u32::from(c));
                out.push(u32::from(c2));
                continue;
            }
        };
        let start = pos - 2;
        pos = hex_escape(&mut out, bytes, start, pos, count, errors)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::decode3;

    fn s(text: &str) -> Option<Vec<u32>> {
        Some(text.chars().map(u32::from).collect())
    }

    /// Answers of CPython 3.11 (strict, replace, surrogateescape).
    #[test]
    fn escapes_match_python() {
        type Case = (&'static str, &'static [u8], [Option<Vec<u32>>; 3]);
        let all = |t: &str| [s(t), s(t), s(t)];
        let cases: &[Case] = &[
            (
                "unicode_escape",
                br"\u0041\x42\103\777\q\\\xe9",
                all("ABCǿ\\q\\é"),
            ),
            ("unicode_escape", b"\\x4g", [None, s("\u{fffd}g"), None]),
            (
                "unicode_escape",
                b"\\U00110000z",
                [None, s("\u{fffd}z"), None],
            ),
            ("unicode_escape", b"\\N{}", [None, s("\u{fffd}}"), None]),
            ("unicode_escape", b"a\\", [None, s("a\u{fffd}"), None]),
            (
                "raw_unicode_escape",
                br"\\u0041\u0042\x43\",
                all("\\\\u0041B\\x43\\"),
            ),
            (
                "raw_unicode_escape",
                b"a\\u12",
                [None, s("a\u{fffd}"), None],
            ),
        ];
        for (enc, bytes, expected) in cases {
            assert_eq!(&decode3(enc, bytes), expected, "{enc} {bytes:02x?}");
        }
    }

    /// `\N{name}`, as CPython 3.11 answers (strict, replace, surrogateescape).
    #[test]
    fn named_escapes_match_python() {
        let all = |t: &str| [s(t), s(t), s(t)];
        let err = |t: &str| [None, s(t), None];
        type Case = (&'static [u8], [Option<Vec<u32>>; 3]);
        let cases: &[Case] = &[
            (br"\N{BEL}!", all("\x07!")),
            (br"\N{bel}\N{Latin Small Letter Sharp S}", all("\x07ß")),
            (br"\N{LINE FEED}\N{lf}\N{NBSP}", all("\n\n\u{a0}")),
            (br"\N{HANGUL SYLLABLE GAG}", all("\u{ac01}")),
            (br"\N{CJK UNIFIED IDEOGRAPH-20000}", all("\u{20000}")),
            (br"\N{CJK UNIFIED IDEOGRAPH-4dc0}x", err("\u{fffd}x")),
            (br"\N{hangul syllable ga}x", err("\u{fffd}x")),
            (
                br"\N{LATIN CAPITAL LETTER A WITH MACRON AND GRAVE}",
                err("\u{fffd}"),
            ),
            (br"\N{BEL", err("\u{fffd}")),
            (br"\N{}}", err("\u{fffd}}}")),
            (br"\NBEL", err("\u{fffd}BEL")),
            (b"\\N{B\xc9L}a", err("\u{fffd}a")),
        ];
        for (bytes, expected) in cases {
            assert_eq!(&decode3("unicode_escape", bytes), expected, "{bytes:02x?}");
        }
    }
}
