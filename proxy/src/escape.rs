//! Text from the network or from files made safe to print on a terminal or in a log line:
//! control characters and invalid UTF-8 become visible escapes. What the text means is left
//! to the caller; this only decides how it looks.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;

/// Whether `c` must not reach a terminal raw: C0 controls (ESC among them), DEL, C1
/// controls (U+009B is a one-character CSI on some terminals), and the bidirectional and
/// line-separator formatting characters that reorder or split what a reader sees.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'
                ..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with every control character (C0 such as ESC as `\x1b`, tab and line ends as `\t`,
/// `\n`, `\r`, DEL as `\x7f`, C1 as `\u{9b}`) and bidirectional formatting character escaped;
/// borrowed unchanged when there is none. A backslash is left as it is (paths stay
/// readable), so an escape is recognisable but not unambiguous.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for an OS string (a file name): bytes that are not UTF-8 become `\xNN`.
pub fn printable_os(s: &OsStr) -> Cow<'_, str> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let bytes = s.as_bytes();
        if let Ok(text) = std::str::from_utf8(bytes) {
            return printable(text);
        }
        let mut out = String::with_capacity(bytes.len() + 8);
        for chunk in bytes.utf8_chunks() {
            out.push_str(&printable(chunk.valid()));
            for b in chunk.invalid() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        Cow::Owned(out)
    }
    #[cfg(not(unix))]
    {
        match s.to_str() {
            Some(text) => printable(text),
            None => Cow::Owned(printable(&s.to_string_lossy()).into_owned()),
        }
    }
}

/// [`printable_os`] for a path.
pub fn printable_path(p: &Path) -> Cow<'_, str> {
    printable_os(p.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(printable("a.test:4000 é ☃"), Cow::Borrowed(_)));
        assert_eq!(printable("x\u{1b}[2Jy"), "x\\x1b[2Jy");
        assert_eq!(printable("\u{9b}31m\u{7f}\0"), "\\u{9b}31m\\x7f\\x00");
        assert_eq!(printable("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(printable("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(printable("C:\\dir"), "C:\\dir");
    }

    #[cfg(unix)]
    #[test]
    fn invalid_utf8_in_names_is_escaped() {
        use std::os::unix::ffi::OsStrExt as _;
        let name = OsStr::from_bytes(b"a\xff\x1b]0;t\x07.json");
        assert_eq!(printable_os(name), "a\\xff\\x1b]0;t\\x07.json");
        assert_eq!(
            printable_path(Path::new("/d/\u{1b}[31mred")),
            "/d/\\x1b[31mred"
        );
    }
}
