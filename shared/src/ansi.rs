//! ANSI handling: escape stripping, the virtual cursor and the automatic replies to terminal
//! probes (DSR, DA, status, ENQ), SyncTERM font detection (all mirroring telnetlib3 5.0.1
//! `server_fingerprinting.py`, spec §2.7), and the styled banner for display (`render`,
//! iacscope's own). Writing the replies and switching the session encoding is the scan state
//! machine's job.

mod screen;
mod wcwidth;

pub use screen::{
    render, render_with, Color, Run, Screen, Style, COLUMN_RANGE, DEFAULT_COLUMNS, MAX_ERASE_CELLS,
    MAX_RENDER_BYTES, MAX_SCREEN_ROWS,
};

const ESC: u8 = 0x1B;
const BEL: u8 = 0x07;

/// `_DSR_RE = rb"\x1b\[6n"`: Device Status Report, cursor position request.
const DSR: &[u8] = b"\x1b[6n";
/// `_DA_RE = rb"\x1b\[0?c"`: Device Attributes request, both spellings.
const DA: [&[u8]; 2] = [b"\x1b[c", b"\x1b[0c"];
/// `_DSR_STATUS_RE = rb"\x1b\[5n"`: device status request.
const DSR_STATUS: &[u8] = b"\x1b[5n";
/// `_DA_RESPONSE`: a VT100 with the Advanced Video Option.
const DA_RESPONSE: &[u8] = b"\x1b[?1;2c";
/// `_DSR_STATUS_OK`: "terminal OK".
const DSR_STATUS_OK: &[u8] = b"\x1b[0n";
/// `_ENQ`: answered with a single CR, once per chunk.
const ENQ: u8 = 0x05;

/// Python `_ANSI_STRIP_RE.sub(b"", bytes)`: removes escape sequences as wcwidth 0.9.4's
/// `ZERO_WIDTH_PATTERN` matches them, alternatives tried in its order: CSI; OSC, APC, DCS
/// and PM strings ended by BEL or ESC `\`; `ESC (`/`ESC )` plus any one byte; nF
/// (`ESC` 0x20–0x2F… 0x30–0x7E); then the two-byte Fe, Fp and Fs escapes. An unterminated
/// string or a malformed CSI falls through to the two-byte Fe match (`ESC ]`, `ESC [`), so
/// its body stays. A lone ESC, or ESC before a byte outside 0x20–0x7E, stays too.
///
/// Spec §2.7 lists SOS strings: the pattern has no SOS alternative, so `ESC X` is removed as
/// a two-byte Fe escape and its string stays (the tool wins).
pub fn strip_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Copy the runs between ESC bytes whole; only an ESC can start something to strip.
    while let Some(p) = memchr::memchr(ESC, &bytes[i..]) {
        out.extend_from_slice(&bytes[i..i + p]);
        i += p;
        match escape_len(&bytes[i..]) {
            Some(len) => i += len,
            None => {
                out.push(ESC);
                i += 1;
            }
        }
    }
    out.extend_from_slice(&bytes[i..]);
    out
}

/// Length of the escape sequence at the start of `s` (which starts with ESC), if any.
fn escape_len(s: &[u8]) -> Option<usize> {
    let second = *s.get(1)?;
    match second {
        b'[' => csi_len(s).or(Some(2)),
        b']' | b'_' | b'P' | b'^' => string_len(s).or(Some(2)),
        b'(' | b')' if s.len() >= 3 => Some(3),
        0x20..=0x2F => {
            let intermediates = s[1..]
                .iter()
                .take_while(|b| (0x20..=0x2F).contains(*b))
                .count();
            match s.get(1 + intermediates) {
                Some(0x30..=0x7E) => Some(2 + intermediates),
                _ => None,
            }
        }
        0x30..=0x7E => Some(2),
        _ => None,
    }
}

/// `\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]`
fn csi_len(s: &[u8]) -> Option<usize> {
    let params = s[2..]
        .iter()
        .take_while(|b| (0x30..=0x3F).contains(*b))
        .count();
    let at = 2 + params;
    let intermediates = s[at..]
        .iter()
        .take_while(|b| (0x20..=0x2F).contains(*b))
        .count();
    let at = at + intermediates;
    match s.get(at) {
        Some(0x40..=0x7E) => Some(at + 1),
        _ => None,
    }
}

/// `\x1b<intro>[^\x07\x1b]*(?:\x07|\x1b\\)`
fn string_len(s: &[u8]) -> Option<usize> {
    let body = s[2..].iter().take_while(|&&b| b != BEL && b != ESC).count();
    let at = 2 + body;
    match (s.get(at), s.get(at + 1)) {
        (Some(&BEL), _) => Some(at + 1),
        (Some(&ESC), Some(b'\\')) => Some(at + 2),
        _ => None,
    }
}

/// Python `_VirtualCursor`: the column a terminal's cursor would be at, for cursor position
/// reports. The row is always reported as 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualCursor {
    /// 1-based column; starts at 1 and is never reset between read phases.
    pub col: u32,
    /// Python codec name used to decode text before measuring it.
    pub encoding: String,
    /// DSR requests seen.
    pub dsr_requests: u32,
    /// Cursor position reports produced.
    pub dsr_replies: u32,
}

impl VirtualCursor {
    /// A cursor at column 1 (Python `_VirtualCursor(encoding=…)`).
    pub fn new(encoding: &str) -> Self {
        VirtualCursor {
            col: 1,
            encoding: encoding.to_owned(),
            dsr_requests: 0,
            dsr_replies: 0,
        }
    }

    /// Python `_VirtualCursor.cpr()`: `ESC [ 1 ; <col> R`, counted as a reply.
    pub fn cpr(&mut self) -> Vec<u8> {
        self.dsr_replies = self.dsr_replies.saturating_add(1);
        format!("\x1b[1;{}R", self.col).into_bytes()
    }

    /// Python `_VirtualCursor.advance(data)`: strip escapes, decode with the session encoding
    /// (invalid bytes become U+FFFD, an unknown codec means latin-1), then BS moves left (not
    /// past column 1), CR returns to column 1, and characters from U+0020 up advance by their
    /// width when it is positive. LF and other controls do nothing.
    pub fn advance(&mut self, bytes: &[u8]) {
        let stripped = strip_escapes(bytes);
        if stripped.is_ascii() && ascii_compatible(&self.encoding) {
            // Fast path: in an ASCII-compatible codec every byte below 0x80 decodes to
            // itself, and each printable ASCII character is one column wide.
            for &b in &stripped {
                match b {
                    0x08 => self.col = self.col.saturating_sub(1).max(1),
                    b'\r' => self.col = 1,
                    0x20..=0x7e => self.col = self.col.saturating_add(1),
                    0x7f => self.col = self.col.saturating_add(wcwidth::width('\x7f')),
                    _ => {}
                }
            }
            return;
        }
        let text = crate::codec::decode_lossy(&self.encoding, &stripped);
        for ch in text.chars() {
            match ch {
                '\x08' => self.col = self.col.saturating_sub(1).max(1),
                '\r' => self.col = 1,
                ' '.. => self.col = self.col.saturating_add(wcwidth::width(ch)),
                _ => {}
            }
        }
    }
}

/// Whether the codec decodes every byte below 0x80 to the same character (an unknown name
/// means latin-1, which does). EBCDIC, PETSCII, ATASCII, UTF-16/32 and the like do not.
fn ascii_compatible(encoding: &str) -> bool {
    match crate::codec::lookup(encoding) {
        None => true,
        Some(c) => {
            matches!(
                c,
                "ascii"
                    | "utf-8"
                    | "latin-1"
                    | "cp437"
                    | "cp850"
                    | "cp852"
                    | "cp866"
                    | "cp1250"
                    | "cp1251"
                    | "cp1252"
                    | "koi8-r"
                    | "koi8-u"
            ) || c.starts_with("iso8859-")
        }
    }
}

/// Count of non-overlapping occurrences of any of `needles` (all start with ESC and hold no
/// other ESC, so they cannot overlap).
fn count_any(hay: &[u8], needles: &[&[u8]]) -> usize {
    memchr::memchr_iter(ESC, hay)
        .filter(|&i| needles.iter().any(|n| hay[i..].starts_with(n)))
        .count()
}

/// The `has_ansi_probe` branch of `_read_banner_until_quiet` with `_respond_to_ansi_probes`.
///
/// When the chunk holds a DSR (`ESC[6n`), DA (`ESC[c`, `ESC[0c`), status request (`ESC[5n`)
/// or ENQ (0x05), returns the bytes to send, in Python's write order: one `ESC[?1;2c` per DA,
/// one `ESC[0n` per status request, one CR if there is any ENQ, then for each DSR the cursor
/// moves over the text before it and answers with a position report; finally the cursor
/// moves over the rest of the chunk. Without a probe, moves the cursor over the whole chunk
/// and returns `None`.
pub fn respond_to_probes(chunk: &[u8], cursor: &mut VirtualCursor) -> Option<Vec<u8>> {
    let enq = memchr::memchr(ENQ, chunk).is_some();
    if !enq && memchr::memchr(ESC, chunk).is_none() {
        // Every probe but ENQ starts with ESC.
        cursor.advance(chunk);
        return None;
    }
    let da = count_any(chunk, &DA);
    let status = count_any(chunk, &[DSR_STATUS]);
    let has_dsr = memchr::memchr_iter(ESC, chunk).any(|i| chunk[i..].starts_with(DSR));
    if da == 0 && status == 0 && !enq && !has_dsr {
        cursor.advance(chunk);
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..da {
        out.extend_from_slice(DA_RESPONSE);
    }
    for _ in 0..status {
        out.extend_from_slice(DSR_STATUS_OK);
    }
    if enq {
        out.push(b'\r');
    }
    let mut pos = 0;
    let mut i = 0;
    while i + DSR.len() <= chunk.len() {
        if chunk[i..].starts_with(DSR) {
            cursor.dsr_requests = cursor.dsr_requests.saturating_add(1);
            cursor.advance(&chunk[pos..i]);
            out.extend_from_slice(&cursor.cpr());
            i += DSR.len();
            pos = i;
        } else {
            i += 1;
        }
    }
    cursor.advance(&chunk[pos..]);
    Some(out)
}

/// Python `SYNCTERM_FONT_ENCODINGS`: SyncTERM font id to Python codec name.
const SYNCTERM_FONTS: [(u8, &str); 39] = [
    (0, "cp437"),
    (1, "cp1251"),
    (2, "koi8-r"),
    (3, "iso-8859-2"),
    (4, "iso-8859-4"),
    (5, "cp866"),
    (6, "iso-8859-9"),
    (8, "iso-8859-8"),
    (9, "koi8-u"),
    (10, "iso-8859-15"),
    (11, "iso-8859-4"),
    (12, "koi8-r"),
    (13, "iso-8859-4"),
    (14, "iso-8859-5"),
    (16, "iso-8859-15"),
    (17, "cp850"),
    (18, "cp850"),
    (20, "cp1251"),
    (21, "iso-8859-7"),
    (22, "koi8-r"),
    (23, "iso-8859-4"),
    (24, "iso-8859-1"),
    (25, "cp866"),
    (26, "cp437"),
    (27, "cp866"),
    (29, "cp866"),
    (30, "iso-8859-1"),
    (31, "cp1131"),
    (32, "petscii"),
    (33, "petscii"),
    (34, "petscii"),
    (35, "petscii"),
    (36, "atascii"),
    (37, "cp437"),
    (38, "cp437"),
    (39, "cp437"),
    (40, "cp437"),
    (41, "cp437"),
    (42, "cp437"),
];

/// Digits after leading zeros above which a font id cannot be in the table.
const MAX_FONT_ID_DIGITS: usize = 3;

/// Python `detect_syncterm_font(data)`: the codec for the first SyncTERM font selection
/// `CSI p1 ; p2 SP D` in `chunk` (`_SYNCTERM_FONT_RE = rb"\x1b\[(\d+);(\d+) D"`). Only the
/// first such sequence counts: an unknown id there gives `None` even if a later one is known.
///
/// Python's `int()` refuses more than 4300 digits and the read then dies with `ValueError`;
/// here such an id is simply unknown.
pub fn detect_syncterm_font(chunk: &[u8]) -> Option<&'static str> {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    // Candidates start at an ESC: jump between them (memchr) instead of testing every byte.
    let id = memchr::memchr_iter(ESC, chunk).find_map(|i| {
        let rest = chunk[i..].strip_prefix(b"\x1b[")?;
        let p1 = digits(rest);
        let rest = rest.get(p1..)?.strip_prefix(b";").filter(|_| p1 > 0)?;
        let p2 = digits(rest);
        rest.get(p2..)?.strip_prefix(b" D").filter(|_| p2 > 0)?;
        Some(&rest[..p2])
    })?;
    let significant = &id[id.iter().take_while(|&&b| b == b'0').count()..];
    if significant.len() > MAX_FONT_ID_DIGITS {
        return None;
    }
    let value = significant
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    SYNCTERM_FONTS
        .iter()
        .find(|(font, _)| u16::from(*font) == value)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests;
