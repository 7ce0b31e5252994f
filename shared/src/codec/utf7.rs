//! CPython 3.11's UTF-7 decoder (`PyUnicode_DecodeUTF7Stateful`, RFC 2152, as
//! `bytes.decode("utf-7")` runs it): `+` starts a base-64 run of UTF-16 code units, ended by any
//! other byte (a `-` is absorbed); `+-` is `+`; every other ASCII byte is itself.
//!
//! CPython's quirks, which are the behaviour to match: a surrogate that does not pair is
//! written alone (the string holds a lone surrogate); a high surrogate pending when a run ends
//! is written only when the byte that ends it is ASCII, and dropped otherwise; an error at the
//! end of a run (leftover bits that make a partial character, or padding bits that are not
//! zero) covers the run from its `+` through the byte that ended it, and what the run decoded
//! before stays written; so does an unterminated run with a partial character or a pending
//! surrogate at the end of the input. Those ranges start with `+`, so "surrogateescape" raises
//! on them; only a byte >= 0x80 outside a run is an error it can take.

use super::{py_error, DecodeRaised, Errors, PyStr};

/// The value of a base-64 digit (`+` and `/` included), if `b` is one.
fn base64(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// `DECODE_DIRECT`: ASCII but `+` decodes as itself outside a run.
fn direct(b: u8) -> bool {
    b.is_ascii() && b != b'+'
}

fn is_high_surrogate(u: u32) -> bool {
    (0xD800..=0xDBFF).contains(&u)
}

fn is_low_surrogate(u: u32) -> bool {
    (0xDC00..=0xDFFF).contains(&u)
}

/// `bytes.decode("utf-7", errors)`.
pub(super) fn decode(bytes: &[u8], errors: Errors) -> Result<PyStr, DecodeRaised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut pos = 0;
    let mut in_shift = false;
    // Where the current run's `+`, or the current error, starts (`startinpos`).
    let mut start = 0;
    let mut bits = 0u32;
    let mut buffer = 0u64;
    let mut surrogate = 0u32;
    loop {
        while let Some(&ch) = bytes.get(pos) {
            // An error over `start..pos`: the handler says where decoding goes on.
            let mut error = false;
            if in_shift {
                if let Some(digit) = base64(ch) {
                    buffer = (buffer << 6) | u64::from(digit);
                    bits += 6;
                    pos += 1;
                    if bits >= 16 {
                        let unit = ((buffer >> (bits - 16)) & 0xFFFF) as u32;
                        bits -= 16;
                        buffer &= (1 << bits) - 1;
                        if surrogate != 0 {
                            if is_low_surrogate(unit) {
                                let joined =
                                    0x1_0000 + ((surrogate - 0xD800) << 10) + (unit - 0xDC00);
                                out.push(joined);
                                surrogate = 0;
                                continue;
                            }
                            out.push(surrogate);
                            surrogate = 0;
                        }
                        if is_high_surrogate(unit) {
                            surrogate = unit;
                        } else {
                            out.push(unit);
                        }
                    }
                } else {
                    // The run ends here.
                    in_shift = false;
                    if bits >= 6 || (bits > 0 && buffer != 0) {
                        // "partial character in shift sequence" / "non-zero padding bits in
                        // shift sequence": the range takes the ending byte too.
                        pos += 1;
                        error = true;
                    } else {
                        if surrogate != 0 && direct(ch) {
                            out.push(surrogate);
                        }
                        surrogate = 0;
                        if ch == b'-' {
                            pos += 1;
                        }
                    }
                }
            } else if ch == b'+' {
                start = pos;
                pos += 1;
                match bytes.get(pos) {
                    Some(b'-') => {
                        pos += 1;
                        out.push(u32::from(b'+'));
                    }
                    Some(&next) if base64(next).is_none() => {
                        // "ill-formed sequence": `+` and the byte after it.
                        pos += 1;
                        error = true;
                    }
                    _ => {
                        in_shift = true;
                        surrogate = 0;
                        bits = 0;
                        buffer = 0;
                    }
                }
            } else if direct(ch) {
                pos += 1;
                out.push(u32::from(ch));
            } else {
                // "unexpected special character": a byte >= 0x80.
                start = pos;
                pos += 1;
                error = true;
            }
            if error {
                pos = start + on_error(&mut out, bytes, start, pos, errors)?;
            }
        }
        // The end of the input inside a run: "unterminated shift sequence" if it holds a
        // partial character or a surrogate waiting for its pair; decoding goes on where the
        // handler says (for the handlers here, never before the end).
        if !in_shift {
            return Ok(out);
        }
        in_shift = false;
        if surrogate == 0 && bits < 6 && (bits == 0 || buffer == 0) {
            return Ok(out);
        }
        pos = start + on_error(&mut out, bytes, start, bytes.len(), errors)?;
        if pos >= bytes.len() {
            return Ok(out);
        }
    }
}

/// The error handler over `bytes[start..end]`: how far past `start` decoding goes on.
fn on_error(
    out: &mut PyStr,
    bytes: &[u8],
    start: usize,
    end: usize,
    errors: Errors,
) -> Result<usize, DecodeRaised> {
    let rest = bytes.get(start..).unwrap_or_default();
    py_error(out, rest, end.saturating_sub(start), errors)
}

#[cfg(test)]
mod tests {
    use super::super::decode3;

    fn s(text: &str) -> Option<Vec<u32>> {
        Some(text.chars().map(u32::from).collect())
    }

    /// Answers of CPython 3.11 (strict, replace, surrogateescape).
    #[test]
    fn runs_surrogates_and_errors_match_python() {
        type Case = (&'static [u8], [Option<Vec<u32>>; 3]);
        let cases: &[Case] = &[
            (
                b"Hi Mom -+Jjo--!",
                [s("Hi Mom -☺-!"), s("Hi Mom -☺-!"), s("Hi Mom -☺-!")],
            ),
            (b"+ZeVnLIqe-", [s("日本語"), s("日本語"), s("日本語")]),
            (b"1 +- 1", [s("1 + 1"), s("1 + 1"), s("1 + 1")]),
            // A surrogate pair, then a lone high surrogate written when the run ends.
            (b"+2D3cAA-", [s("🐀"), s("🐀"), s("🐀")]),
            (
                b"+2D0-",
                [Some(vec![0xD83D]), Some(vec![0xD83D]), Some(vec![0xD83D])],
            ),
            // Dropped when a byte >= 0x80 ends the run (that byte is then an error alone).
            (b"+2D0\xe9", [None, s("\u{fffd}"), Some(vec![0xDCE9])]),
            // A partial character: the error covers `+AB-`, "surrogateescape" cannot take it.
            (b"a+AB-b", [None, s("a\u{fffd}b"), None]),
            (
                b"a\xe9b",
                [None, s("a\u{fffd}b"), Some(vec![0x61, 0xDCE9, 0x62])],
            ),
            (b"+!", [None, s("\u{fffd}"), None]),
            (b"+", [s(""), s(""), s("")]),
        ];
        for (bytes, expected) in cases {
            assert_eq!(&decode3("utf-7", bytes), expected, "{bytes:02x?}");
        }
    }
}
