//! Prompt detection: which reply telnetlib3-fingerprint types at a server's banner
//! (`_detect_yn_prompt`, spec §2.8), the inline checks made on every chunk during a read
//! (spec §2.7), and the ATASCII end-of-line re-encoding (`_reencode_prompt`).
//!
//! Every pattern mirrors one regex of telnetlib3 5.0.1 `server_fingerprinting.py`; the Python
//! source is quoted above each. Deciding when to send, and the session flags
//! (`_esc_inline`, `_menu_inline`, explicit encoding), are the scan state machine's job.

mod pattern;

use pattern::{any_but_newline, digit, non_alnum, non_space, space, Node, MANY};

use crate::ansi::strip_escapes;

/// The reply chosen for a banner (Python `_PromptResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromptReply {
    /// Bytes to send; `None` when no prompt was recognised (the caller sends `\r\n`).
    pub response: Option<Vec<u8>>,
    /// Session encoding the reply selects, e.g. `utf-8` after picking a UTF-8 menu item.
    /// `"codepage"` is not a codec: telnetlib3 stores it anyway (spec §2.8, row 10).
    pub encoding: Option<&'static str>,
}

impl PromptReply {
    fn send(response: &[u8]) -> Self {
        PromptReply {
            response: Some(response.to_vec()),
            encoding: None,
        }
    }
}

fn open_bracket(b: u8) -> bool {
    matches!(b, b'[' | b'<' | b'(')
}

fn close_bracket(b: u8) -> bool {
    matches!(b, b']' | b'>' | b')')
}

fn is_dot(b: u8) -> bool {
    b == b'.'
}

fn colon_or_dot(b: u8) -> bool {
    matches!(b, b':' | b'.')
}

fn paren_or_square_open(b: u8) -> bool {
    matches!(b, b'[' | b'(')
}

fn paren_or_square_close(b: u8) -> bool {
    matches!(b, b']' | b')')
}

fn open_paren(b: u8) -> bool {
    b == b'('
}

fn close_paren(b: u8) -> bool {
    b == b')'
}

fn colon_or_space(b: u8) -> bool {
    b == b':' || space(b)
}

fn hyphen(b: u8) -> bool {
    b == b'-'
}

fn slash(b: u8) -> bool {
    b == b'/'
}

const SPACES: Node = Node::Rep(space, 1, MANY);
const OPT_SPACES: Node = Node::Rep(space, 0, MANY);
const OPT_SLASH: Node = Node::Seq(&[OPT_SPACES, Node::Rep(slash, 1, 1), OPT_SPACES]);

/// `press\s+[\[<(]?\.?esc\.?[\]>)]?`, the common head of the two ESC patterns.
const PRESS_ESC: [Node; 7] = [
    Node::Lit(b"press"),
    SPACES,
    Node::Rep(open_bracket, 0, 1),
    Node::Rep(is_dot, 0, 1),
    Node::Lit(b"esc"),
    Node::Rep(is_dot, 0, 1),
    Node::Rep(close_bracket, 0, 1),
];

/// `_ESC_TWICE_RE = rb"(?i)press\s+[\[<(]?\.?esc\.?[\]>)]?\s+twice"`
const ESC_TWICE: Node = Node::Seq(&[
    PRESS_ESC[0],
    PRESS_ESC[1],
    PRESS_ESC[2],
    PRESS_ESC[3],
    PRESS_ESC[4],
    PRESS_ESC[5],
    PRESS_ESC[6],
    SPACES,
    Node::Lit(b"twice"),
]);

/// `_ESC_ONCE_RE = rb"(?i)press\s+[\[<(]?\.?esc\.?[\]>)]?(?!\s+twice)"`
///
/// The lookahead backtracks into the optional `.`/bracket, so `press esc. twice` matches
/// (`press esc` is followed by `. twice`); that text also matches `_ESC_TWICE_RE`, which is
/// always tried first.
const ESC_ONCE: Node = Node::Seq(&[
    PRESS_ESC[0],
    PRESS_ESC[1],
    PRESS_ESC[2],
    PRESS_ESC[3],
    PRESS_ESC[4],
    PRESS_ESC[5],
    PRESS_ESC[6],
    Node::NotFollowedBy(&Node::Seq(&[SPACES, Node::Lit(b"twice")])),
]);

/// `_MORE_PROMPT_RE = rb"(?i)more[:\s]*\(?[yY]\)?.*\(?[cC]\)?\s*(?:ontinuous|ont)"`
const MORE: Node = Node::Seq(&[
    Node::Lit(b"more"),
    Node::Rep(colon_or_space, 0, MANY),
    Node::Rep(open_paren, 0, 1),
    Node::Lit(b"y"),
    Node::Rep(close_paren, 0, 1),
    Node::Rep(any_but_newline, 0, MANY),
    Node::Rep(open_paren, 0, 1),
    Node::Lit(b"c"),
    Node::Rep(close_paren, 0, 1),
    OPT_SPACES,
    Node::Alt(&[Node::Lit(b"ontinuous"), Node::Lit(b"ont")]),
]);

/// `_YN_RE`:
/// `rb"(?i)(?:^|[^a-zA-Z0-9])(yes/no|y/n|\(yes\|no\))(?:[^a-zA-Z0-9]|$)"`
/// `rb"|[(\[][Yy][Nn][)\]]"` `rb"|[(\[][yY][nN][)\]]"` (the last two are the same).
const YN: Node = Node::Alt(&[
    Node::Seq(&[
        Node::Alt(&[Node::Start, Node::Rep(non_alnum, 1, 1)]),
        Node::Group(&Node::Alt(&[
            Node::Lit(b"yes/no"),
            Node::Lit(b"y/n"),
            Node::Lit(b"(yes|no)"),
        ])),
        Node::Alt(&[Node::Rep(non_alnum, 1, 1), Node::End]),
    ]),
    Node::Seq(&[
        Node::Rep(paren_or_square_open, 1, 1),
        Node::Lit(b"yn"),
        Node::Rep(paren_or_square_close, 1, 1),
    ]),
]);

/// `_COLOR_RE = rb"(?i)color\s*\?"`
const COLOR: Node = Node::Seq(&[Node::Lit(b"color"), OPT_SPACES, Node::Lit(b"?")]);

/// `_ANSI_COLOR_STANDARD_RE = rb"(?i)ANSI\s+color\s+standard"`
const ANSI_COLOR_STANDARD: Node = Node::Seq(&[
    Node::Lit(b"ansi"),
    SPACES,
    Node::Lit(b"color"),
    SPACES,
    Node::Lit(b"standard"),
]);

/// `[\[(]?(\d+)\s*(?:[\])]|\.{1,3})\s*(?:\S+\s*/\s*)?`, the head of the two menu patterns.
const MENU_HEAD: [Node; 6] = [
    Node::Rep(paren_or_square_open, 0, 1),
    Node::Group(&Node::Rep(digit, 1, MANY)),
    OPT_SPACES,
    Node::Alt(&[
        Node::Rep(paren_or_square_close, 1, 1),
        Node::Rep(is_dot, 1, 3),
    ]),
    OPT_SPACES,
    Node::Opt(&Node::Seq(&[Node::Rep(non_space, 1, MANY), OPT_SLASH])),
];

/// `_MENU_UTF8_RE = rb"[\[(]?(\d+)\s*(?:[\])]|\.{1,3})\s*(?:\S+\s*/\s*)?UTF-?8"`, IGNORECASE
const MENU_UTF8: Node = Node::Seq(&[
    MENU_HEAD[0],
    MENU_HEAD[1],
    MENU_HEAD[2],
    MENU_HEAD[3],
    MENU_HEAD[4],
    MENU_HEAD[5],
    Node::Lit(b"utf"),
    Node::Rep(hyphen, 0, 1),
    Node::Lit(b"8"),
]);

/// `_MENU_ANSI_RE = rb"[\[(]?(\d+)\s*(?:[\])]|\.{1,3})\s*(?:\S+\s*/\s*)?ANSI"`, IGNORECASE
const MENU_ANSI: Node = Node::Seq(&[
    MENU_HEAD[0],
    MENU_HEAD[1],
    MENU_HEAD[2],
    MENU_HEAD[3],
    MENU_HEAD[4],
    MENU_HEAD[5],
    Node::Lit(b"ansi"),
]);

/// `_GB_BIG5_RE = rb"(?i)(?:^|[^a-zA-Z0-9])gb\s*/\s*big\s*5(?:[^a-zA-Z0-9]|$)"`
const GB_BIG5: Node = Node::Seq(&[
    Node::Alt(&[Node::Start, Node::Rep(non_alnum, 1, 1)]),
    Node::Lit(b"gb"),
    OPT_SLASH,
    Node::Lit(b"big"),
    OPT_SPACES,
    Node::Lit(b"5"),
    Node::Alt(&[Node::Rep(non_alnum, 1, 1), Node::End]),
]);

/// `_CODEPAGE_RE = rb"(?i)(?:select|choose|pick)\s+(?:your\s+)?(?:terminal\s+)?"`
/// `rb"(?:code\s*page|char(?:acter)?\s*set|charset|encoding)"`
const CODEPAGE: Node = Node::Seq(&[
    Node::Alt(&[
        Node::Lit(b"select"),
        Node::Lit(b"choose"),
        Node::Lit(b"pick"),
    ]),
    SPACES,
    Node::Opt(&Node::Seq(&[Node::Lit(b"your"), SPACES])),
    Node::Opt(&Node::Seq(&[Node::Lit(b"terminal"), SPACES])),
    Node::Alt(&[
        Node::Seq(&[Node::Lit(b"code"), OPT_SPACES, Node::Lit(b"page")]),
        Node::Seq(&[
            Node::Lit(b"char"),
            Node::Opt(&Node::Lit(b"acter")),
            OPT_SPACES,
            Node::Lit(b"set"),
        ]),
        Node::Lit(b"charset"),
        Node::Lit(b"encoding"),
    ]),
]);

/// `_BACKSPACE_KEY_RE = rb"(?i)press\s+the\s+backspace\s+key"`
const BACKSPACE_KEY: Node = Node::Seq(&[
    Node::Lit(b"press"),
    SPACES,
    Node::Lit(b"the"),
    SPACES,
    Node::Lit(b"backspace"),
    SPACES,
    Node::Lit(b"key"),
]);

/// `del(?:ete)?`
const DEL: Node = Node::Seq(&[Node::Lit(b"del"), Node::Opt(&Node::Lit(b"ete"))]);

/// `_DEL_BACKSPACE_RE = rb"(?i)(?:press|hit)\s+(?:your\s+)?"`
/// `rb"(?:del(?:ete)?(?:\s*/\s*backspace)?|backspace(?:\s*/\s*del(?:ete)?)?)"`
/// `rb"(?:\s+key)?\s*[:\.]?"`
const DEL_BACKSPACE: Node = Node::Seq(&[
    Node::Alt(&[Node::Lit(b"press"), Node::Lit(b"hit")]),
    SPACES,
    Node::Opt(&Node::Seq(&[Node::Lit(b"your"), SPACES])),
    Node::Alt(&[
        Node::Seq(&[
            DEL,
            Node::Opt(&Node::Seq(&[OPT_SLASH, Node::Lit(b"backspace")])),
        ]),
        Node::Seq(&[
            Node::Lit(b"backspace"),
            Node::Opt(&Node::Seq(&[OPT_SLASH, DEL])),
        ]),
    ]),
    Node::Opt(&Node::Seq(&[SPACES, Node::Lit(b"key")])),
    OPT_SPACES,
    Node::Rep(colon_or_dot, 0, 1),
]);

/// `_RETURN_PROMPT_RE = rb"(?i)(?:hit|press)\s+[\[<(]?(?:return|enter)[\]>)]?\s*[:\.]?"`
const RETURN: Node = Node::Seq(&[
    Node::Alt(&[Node::Lit(b"hit"), Node::Lit(b"press")]),
    SPACES,
    Node::Rep(open_bracket, 0, 1),
    Node::Alt(&[Node::Lit(b"return"), Node::Lit(b"enter")]),
    Node::Rep(close_bracket, 0, 1),
    OPT_SPACES,
    Node::Rep(colon_or_dot, 0, 1),
]);

/// The digits a menu pattern captured (`match.group(1)`).
fn menu_number(pat: &Node, word: &[u8], stripped: &[u8]) -> Option<Vec<u8>> {
    if !pattern::contains(stripped, word) {
        return None;
    }
    let found = pattern::search(pat, stripped)?;
    let (start, end) = found.group?;
    stripped.get(start..end).map(<[u8]>::to_vec)
}

/// `menu_match.group(1) + b"\r\n"`.
fn with_crlf(mut number: Vec<u8>) -> Vec<u8> {
    number.extend_from_slice(b"\r\n");
    number
}

/// Python `_detect_yn_prompt(banner)`: the reply for the first matching row of the spec §2.8
/// table, matched on the escape-stripped banner.
pub fn detect_prompt(banner: &[u8]) -> PromptReply {
    let stripped = strip_escapes(banner);
    let s = stripped.as_slice();
    if esc_twice(s) {
        return PromptReply::send(b"\x1b\x1b");
    }
    if esc_once(s) {
        return PromptReply::send(b"\x1b");
    }
    // "ont" and the menu words are required literals: skipping the search without them is
    // only a speed-up (these patterns backtrack over whole lines).
    if pattern::contains(s, b"ont") && pattern::is_match(&MORE, s) {
        return PromptReply::send(b"C\r\n");
    }
    if let Some(found) = pattern::search(&YN, s) {
        // `token = match.group(1)`; the `(Yn)` forms leave the group unset.
        let token = found.group.and_then(|(a, b)| s.get(a..b));
        let long = token.is_some_and(|t| {
            t.eq_ignore_ascii_case(b"yes/no") || t.eq_ignore_ascii_case(b"(yes|no)")
        });
        return PromptReply::send(if long { b"yes\r\n" } else { b"y\r\n" });
    }
    if pattern::is_match(&COLOR, s) || pattern::is_match(&ANSI_COLOR_STANDARD, s) {
        return PromptReply::send(b"y\r\n");
    }
    if let Some(number) = menu_utf8(s) {
        return PromptReply {
            response: Some(with_crlf(number)),
            encoding: Some("utf-8"),
        };
    }
    if let Some(number) = menu_number(&MENU_ANSI, b"ansi", s) {
        return PromptReply {
            response: Some(with_crlf(number)),
            encoding: None,
        };
    }
    if pattern::is_match(&GB_BIG5, s) {
        return PromptReply {
            response: Some(b"big5\r\n".to_vec()),
            encoding: Some("big5"),
        };
    }
    if codepage_prompt(s) {
        return PromptReply {
            response: Some(b"\r\n".to_vec()),
            encoding: Some("codepage"),
        };
    }
    if pattern::is_match(&BACKSPACE_KEY, s) {
        return PromptReply::send(b"\x08");
    }
    if pattern::is_match(&DEL_BACKSPACE, s) {
        return PromptReply::send(b"\x14");
    }
    if pattern::is_match(&RETURN, s) {
        return PromptReply::send(b"\r\n");
    }
    PromptReply::default()
}

/// `_ESC_TWICE_RE.search(stripped)`: a "press ESC twice" botcheck (reply ESC ESC).
pub fn esc_twice(stripped: &[u8]) -> bool {
    pattern::is_match(&ESC_TWICE, stripped)
}

/// `_ESC_ONCE_RE.search(stripped)`: a "press ESC" prompt not followed by "twice" (reply ESC).
pub fn esc_once(stripped: &[u8]) -> bool {
    pattern::is_match(&ESC_ONCE, stripped)
}

/// `_MENU_UTF8_RE.search(stripped)`: a numbered UTF-8 menu item; returns the number captured
/// (`group(1)`, as the server wrote it, leading zeros included). The reply is that plus CR LF.
pub fn menu_utf8(stripped: &[u8]) -> Option<Vec<u8>> {
    menu_number(&MENU_UTF8, b"utf", stripped)
}

/// `_CODEPAGE_RE.search(stripped)`: a codepage / character-set selection prompt.
pub fn codepage_prompt(stripped: &[u8]) -> bool {
    pattern::is_match(&CODEPAGE, stripped)
}

/// Python `_reencode_prompt(response, encoding)`: for the ATASCII codec, CR LF and lone CR
/// become the ATASCII end-of-line byte 0x9B. Anything else is returned unchanged, and so is
/// a response the ATASCII codec cannot encode (controls such as ESC, BS, 0x14, and
/// `` ` { } ~ DEL``).
///
/// Python gates on the names `atascii`, `atari8bit` and `atari_8bit`, but the two aliases
/// are only registered once the `atascii` codec module has been imported, which a
/// fingerprint run does not do before it would need them: in a fresh process
/// `"y\r\n".encode("atari8bit")` raises `LookupError` and the response goes out unchanged.
/// The tool wins: only `atascii` (any case) re-encodes.
pub fn reencode_prompt(response: &[u8], encoding: &str) -> Vec<u8> {
    if !encoding.eq_ignore_ascii_case("atascii") {
        return response.to_vec();
    }
    let mut out = Vec::with_capacity(response.len());
    let mut i = 0;
    while let Some(&b) = response.get(i) {
        i += 1;
        match b {
            // `_normalize_eol`: "\r\n" -> "\n", then "\r" -> "\n"; "\n" encodes to 0x9B.
            b'\r' => {
                if response.get(i) == Some(&b'\n') {
                    i += 1;
                }
                out.push(0x9B);
            }
            b'\n' => out.push(0x9B),
            // Printable ASCII that ATASCII shares (0x60 and 0x7B, 0x7D..0x7F are glyphs).
            0x20..=0x5F | 0x61..=0x7A | 0x7C => out.push(b),
            // Not encodable (UnicodeEncodeError) or not ASCII (UnicodeDecodeError).
            _ => return response.to_vec(),
        }
    }
    out
}

#[cfg(test)]
mod tests;
