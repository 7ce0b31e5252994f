//! CPython 3.11's UTF-16 and UTF-32 decoders (`PyUnicode_DecodeUTF16Stateful`,
//! `PyUnicode_DecodeUTF32Stateful` with `final=True`, as `bytes.decode` runs them), with the
//! error ranges CPython hands to the error handler. No tables: these are exact everywhere.

use super::{py_error, DecodeRaised, Errors, PyStr};

/// Byte order of a UTF-16/32 codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// `utf-16` / `utf-32`: a leading BOM picks the order and is dropped; without one the
    /// order is the machine's, little-endian on every platform telnetlib3-fingerprint's
    /// reference records were made on (x86-64, arm64).
    Bom,
    /// `utf-16-le` / `utf-32-le`: a leading BOM is kept as U+FEFF.
    Le,
    /// `utf-16-be` / `utf-32-be`: likewise.
    Be,
}

/// After the BOM check: the byte order to use and the input after any BOM.
fn resolve<'a>(order: Order, bytes: &'a [u8], bom_le: &[u8], bom_be: &[u8]) -> (bool, &'a [u8]) {
    match order {
        Order::Le => (true, bytes),
        Order::Be => (false, bytes),
        Order::Bom => {
            if let Some(rest) = bytes.strip_prefix(bom_le) {
                (true, rest)
            } else if let Some(rest) = bytes.strip_prefix(bom_be) {
                (false, rest)
            } else {
                (true, bytes)
            }
        }
    }
}

fn is_surrogate(u: u32) -> bool {
    (0xD800..=0xDFFF).contains(&u)
}

/// `bytes.decode("utf-16…", errors)`. CPython's error ranges, each then given to the handler
/// (which for "surrogateescape" escapes its leading bytes >= 0x80, up to 4, and resumes after
/// them, so decoding may continue at an odd offset):
/// - one byte left at the end: "truncated data", that byte;
/// - a low surrogate first: "illegal encoding", its 2 bytes;
/// - a high surrogate with fewer than 2 bytes after it: "unexpected end of data", from it to
///   the end (2 or 3 bytes);
/// - a high surrogate followed by a non-low-surrogate unit: "illegal UTF-16 surrogate", the
///   high surrogate's 2 bytes (the next unit is decoded afresh).
pub(super) fn decode_utf16(
    order: Order,
    bytes: &[u8],
    errors: Errors,
) -> Result<PyStr, DecodeRaised> {
    let (le, mut rest) = resolve(order, bytes, b"\xff\xfe", b"\xfe\xff");
    let unit = |pair: [u8; 2]| -> u32 {
        u32::from(if le {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        })
    };
    let mut out = PyStr(Vec::with_capacity(rest.len() / 2));
    while !rest.is_empty() {
        let used = match rest.first_chunk::<2>().map(|&p| unit(p)) {
            None => py_error(&mut out, rest, rest.len(), errors)?,
            Some(u) if !is_surrogate(u) => {
                out.push(u);
                2
            }
            Some(u) if u >= 0xDC00 => py_error(&mut out, rest, 2, errors)?,
            Some(high) => match rest.get(2..).and_then(|r| r.first_chunk::<2>()) {
                None => py_error(&mut out, rest, rest.len(), errors)?,
                Some(&p) if (0xDC00..=0xDFFF).contains(&unit(p)) => {
                    out.push(0x1_0000 + ((high - 0xD800) << 10) + (unit(p) - 0xDC00));
                    4
                }
                Some(_) => py_error(&mut out, rest, 2, errors)?,
            },
        };
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// `bytes.decode("utf-32…", errors)`. CPython's error ranges: fewer than 4 bytes left at the
/// end, "truncated data", all of them; a surrogate code point or one above U+10FFFF, its 4
/// bytes. A BOM is looked for only when the input has at least 4 bytes.
pub(super) fn decode_utf32(
    order: Order,
    bytes: &[u8],
    errors: Errors,
) -> Result<PyStr, DecodeRaised> {
    let (le, mut rest) = resolve(order, bytes, b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff");
    let mut out = PyStr(Vec::with_capacity(rest.len() / 4));
    while !rest.is_empty() {
        let used = match rest.first_chunk::<4>() {
            None => py_error(&mut out, rest, rest.len(), errors)?,
            Some(&quad) => {
                let cp = if le {
                    u32::from_le_bytes(quad)
                } else {
                    u32::from_be_bytes(quad)
                };
                if is_surrogate(cp) || cp > 0x10_FFFF {
                    py_error(&mut out, rest, 4, errors)?
                } else {
                    out.push(cp);
                    4
                }
            }
        };
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Expected values are CPython 3.11's answers (strict, replace, surrogateescape).

    use super::super::decode3;

    fn s(text: &str) -> Option<Vec<u32>> {
        Some(text.chars().map(u32::from).collect())
    }

    fn cps(cps: &[u32]) -> Option<Vec<u32>> {
        Some(cps.to_vec())
    }

    fn same(text: &str) -> [Option<Vec<u32>>; 3] {
        [s(text), s(text), s(text)]
    }

    #[test]
    fn utf16_bom_decides_order_and_is_dropped_only_by_utf16() {
        assert_eq!(decode3("utf-16", b"\xff\xfeA\x00"), same("A"));
        assert_eq!(decode3("utf-16", b"\xfe\xff\x00A"), same("A"));
        // No BOM: little-endian.
        assert_eq!(decode3("utf-16", b"A\x00"), same("A"));
        assert_eq!(decode3("UTF16", b"\xff\xfe"), same(""));
        // Only the first BOM goes.
        assert_eq!(
            decode3("utf-16", b"\xff\xfe\xff\xfeA\x00"),
            same("\u{feff}A")
        );
        assert_eq!(decode3("utf-16-le", b"\xff\xfeA\x00"), same("\u{feff}A"));
        assert_eq!(decode3("utf-16-be", b"\xfe\xff\x00A"), same("\u{feff}A"));
        assert_eq!(decode3("utf-16-be", b"\x00A"), same("A"));
    }

    #[test]
    fn utf16_odd_trailing_byte() {
        // "truncated data" over the last byte: surrogateescape cannot take an ASCII byte.
        assert_eq!(decode3("utf-16", b"A\x00B"), [None, s("A\u{fffd}"), None]);
        assert_eq!(
            decode3("utf-16", b"A\x00\xb0"),
            [None, s("A\u{fffd}"), cps(&[0x41, 0xDCB0])]
        );
        assert_eq!(
            decode3("utf-16", b"\xff"),
            [None, s("\u{fffd}"), cps(&[0xDCFF])]
        );
    }

    #[test]
    fn utf16_surrogates() {
        assert_eq!(decode3("utf-16-le", b"\x3d\xd8\x00\xde"), same("😀"));
        // A lone high surrogate: its two bytes are one error, then 'A' is decoded afresh.
        assert_eq!(
            decode3("utf-16-le", b"\x00\xd8A\x00"),
            [None, s("\u{fffd}A"), None]
        );
        // A lone low surrogate whose bytes are both >= 0x80 is escaped byte by byte.
        assert_eq!(
            decode3("utf-16-le", b"\x80\xdcA\x00"),
            [None, s("\u{fffd}A"), cps(&[0xDC80, 0xDCDC, 0x41])]
        );
        // A high surrogate at the end, with or without an odd byte: one error to the end.
        assert_eq!(
            decode3("utf-16-le", b"\x3d\xd8"),
            [None, s("\u{fffd}"), None]
        );
        assert_eq!(
            decode3("utf-16-le", b"\xbd\xd8\xb0"),
            [None, s("\u{fffd}"), cps(&[0xDCBD, 0xDCD8, 0xDCB0])]
        );
    }

    #[test]
    fn utf32_boms_lengths_and_invalid_code_points() {
        assert_eq!(
            decode3("utf-32", b"\xff\xfe\x00\x00A\x00\x00\x00"),
            same("A")
        );
        assert_eq!(
            decode3("utf-32", b"\x00\x00\xfe\xff\x00\x00\x00A"),
            same("A")
        );
        assert_eq!(
            decode3("utf-32", b"A\x00\x00\x00\x80"),
            [None, s("A\u{fffd}"), cps(&[0x41, 0xDC80])]
        );
        assert_eq!(
            decode3("utf-32-le", b"\x00\xd8\x00\x00"),
            [None, s("\u{fffd}"), None]
        );
        assert_eq!(
            decode3("utf-32-le", b"\x80\x80\x80\x80A\x00\x00\x00"),
            [
                None,
                s("\u{fffd}A"),
                cps(&[0xDC80, 0xDC80, 0xDC80, 0xDC80, 0x41])
            ]
        );
        // Three bytes: no BOM check (it needs 4); surrogateescape escapes FF FE, then the
        // 0x00 left over is "truncated data" it cannot escape.
        assert_eq!(
            decode3("utf-32", b"\xff\xfe\x00"),
            [None, s("\u{fffd}"), None]
        );
    }
}
