//! The Unicode data two decoders need, generated from CPython 3.11 by `shared/gen/gen_codecs.py
//! --unicode`: unicode_escape's `\N{name}` lookup (Unicode 14.0's names and name aliases,
//! `codec/data/unicode_names.bin`) and idna's nameprep (RFC 3491 over Unicode 3.2,
//! `codec/data/nameprep.bin`), with the code that reads them as CPython does.
//!
//! Like the CJK tables (`codec/cjk.rs`), both are compiled into native builds and parsed on
//! first use; in wasm the web app fetches them and hands them to `codec::install_table` (stems
//! [`NAMES`] and [`NAMEPREP`]), and until then unicode_escape and idna decode as latin-1.
//!
//! Each file is one raw deflate stream of an 8-byte magic, the content (unsigned LEB128
//! varints) and the FNV-1a 64 of both; see `Names::parse` and `Nameprep::parse`.

use super::cjk::{fnv1a, install_into, load, Reader, TableError};
use flate2::{Decompress, FlushDecompress, Status};
use std::sync::OnceLock;

/// The stem of the Unicode names file (`unicode_names.bin`).
pub(super) const NAMES: &str = "unicode_names";
/// The stem of the nameprep file (`nameprep.bin`).
pub(super) const NAMEPREP: &str = "nameprep";

const NAMES_MAGIC: &[u8; 8] = b"IACSUNM\x01";
const NAMEPREP_MAGIC: &[u8; 8] = b"IACSNPR\x01";

/// The most a file may inflate to (the names inflate to about 0.5 MB).
const MAX_INFLATED: usize = 4 << 20;

static NAMES_SLOT: OnceLock<Names> = OnceLock::new();
static NAMEPREP_SLOT: OnceLock<Nameprep> = OnceLock::new();

/// The compiled-in files (natively; the web app fetches them).
#[cfg(not(target_arch = "wasm32"))]
const FILES: [&[u8]; 2] = [
    include_bytes!("data/unicode_names.bin"),
    include_bytes!("data/nameprep.bin"),
];
#[cfg(target_arch = "wasm32")]
const FILES: [&[u8]; 2] = [&[], &[]];

/// The Unicode names: natively parsed on first use, in wasm once installed.
pub(super) fn names() -> Option<&'static Names> {
    load(&NAMES_SLOT, || Names::parse(FILES[0]))
}

/// The nameprep tables, as [`names`].
pub(super) fn nameprep() -> Option<&'static Nameprep> {
    load(&NAMEPREP_SLOT, || Nameprep::parse(FILES[1]))
}

/// `codec::install_table` for these two files: `None` when `stem` is neither.
pub(super) fn install(stem: &str, bytes: &[u8]) -> Option<Result<(), TableError>> {
    Some(match stem {
        NAMES => install_into(&NAMES_SLOT, || Names::parse(bytes)),
        NAMEPREP => install_into(&NAMEPREP_SLOT, || Nameprep::parse(bytes)),
        _ => return None,
    })
}

/// Inflate a file, check its checksum and magic; a reader after the magic.
fn open<'a>(
    bytes: &[u8],
    magic: &[u8; 8],
    body: &'a mut Vec<u8>,
) -> Result<Reader<'a>, TableError> {
    let mut z = Decompress::new(false);
    loop {
        if body.len() == body.capacity() {
            if body.len() >= MAX_INFLATED {
                return Err(TableError::Malformed("too large"));
            }
            body.reserve(64 << 10);
        }
        let (read, written) = (z.total_in(), z.total_out());
        let rest = bytes.get(read as usize..).unwrap_or_default();
        match z.decompress_vec(rest, body, FlushDecompress::None) {
            Ok(Status::StreamEnd) => break,
            Ok(_) if z.total_in() == read && z.total_out() == written => {
                return Err(TableError::Malformed("truncated"))
            }
            Ok(_) => {}
            Err(_) => return Err(TableError::Malformed("not deflate")),
        }
    }
    let (content, sum) = body
        .split_last_chunk::<8>()
        .ok_or(TableError::Malformed("truncated"))?;
    if fnv1a(content) != u64::from_le_bytes(*sum) {
        return Err(TableError::Malformed("checksum mismatch"));
    }
    match content.get(..8) {
        Some(m) if m == magic => {}
        Some(m) if m.starts_with(b"IACS") => return Err(TableError::WrongCodec),
        _ => return Err(TableError::Malformed("not an iacscope codec table")),
    }
    Ok(Reader {
        bytes: content,
        pos: 8,
        bad: false,
    })
}

/// The end of a parse: every byte read, nothing out of range.
fn done<T>(r: &Reader<'_>, table: T) -> Result<T, TableError> {
    if r.bad || r.pos != r.bytes.len() {
        return Err(TableError::Malformed("bad table"));
    }
    Ok(table)
}

/// A code point `base` + the next varint (`MAX_CP` at most).
fn cp_after(r: &mut Reader<'_>, base: u32) -> u32 {
    let delta = r.varint();
    r.cp(i64::from(base) + i64::from(delta))
}

/// Inclusive ranges `(first, last)`, increasing: a count, then per range the gap from the
/// previous range's last and the range's length - 1.
fn ranges(r: &mut Reader<'_>) -> Vec<(u32, u32)> {
    let mut prev = 0u32;
    (0..r.count(0x11_0000))
        .map(|_| {
            let first = cp_after(r, prev);
            let last = cp_after(r, first);
            prev = last;
            (first, last)
        })
        .collect()
}

fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    let i = ranges.partition_point(|&(_, last)| last < cp);
    ranges.get(i).is_some_and(|&(first, _)| first <= cp)
}

/// Unicode 14.0's character names and name aliases (`unicodedata` of CPython 3.11) and what
/// `_getcode` (Modules/unicodedata.c) computes instead of looking up.
pub(super) struct Names {
    /// The jamo names of Hangul syllables: leading, vowel, trailing (`hangul_syllables`).
    jamo: [Vec<Vec<u8>>; 3],
    /// `is_unified_ideograph`'s ranges.
    cjk: Vec<(u32, u32)>,
    /// Every other name and alias, upper case, sorted: `(start, end)` in `text`, code point.
    names: Vec<(u32, u32, u32)>,
    text: Vec<u8>,
    /// The longest name: a longer one is unknown without a look-up.
    longest: usize,
}

/// Unicode names are at most 88 bytes; a file's may be 255.
const MAX_NAME: u32 = 255;

impl Names {
    /// The content: three jamo lists (a count, then each a length and the bytes); the CJK
    /// ranges (a count, then first and last); the names (a count, then per name, sorted: how
    /// many leading bytes it shares with the previous one, the length and bytes of the rest,
    /// the code point).
    fn parse(bytes: &[u8]) -> Result<Names, TableError> {
        let mut body = Vec::new();
        let mut r = open(bytes, NAMES_MAGIC, &mut body)?;
        let mut jamo: [Vec<Vec<u8>>; 3] = Default::default();
        for column in &mut jamo {
            for _ in 0..r.count(32) {
                let n = r.count(8) as usize;
                column.push(r.take(n).to_vec());
            }
        }
        let cjk = (0..r.count(64))
            .map(|_| (r.varint(), r.varint()))
            .collect::<Vec<_>>();
        let count = r.count(0x11_0000) as usize;
        let mut names = Vec::with_capacity(count);
        let mut text = Vec::new();
        let mut prev = 0..0;
        let mut longest = 0;
        for _ in 0..count {
            let shared = r.count(MAX_NAME) as usize;
            let rest = r.count(MAX_NAME) as usize;
            let start = text.len();
            r.bad |= shared > prev.len();
            let head = prev.start..prev.start + shared.min(prev.len());
            text.extend_from_within(head);
            text.extend_from_slice(r.take(rest));
            let name = start..text.len();
            // Strictly increasing, so a binary search finds every name.
            r.bad |= text.get(name.clone()) <= text.get(prev.clone()) && !prev.is_empty();
            longest = longest.max(name.len());
            names.push((start as u32, text.len() as u32, cp_after(&mut r, 0)));
            prev = name;
        }
        let jamo_ok = jamo.iter().all(|c| !c.is_empty());
        let names = Names {
            jamo,
            cjk,
            names,
            text,
            longest,
        };
        r.bad |= !jamo_ok;
        done(&r, names)
    }

    /// The code point named `name` (the bytes between `\N{` and `}`), as CPython 3.11's
    /// `_getcode` with `with_named_seq` 0 finds it: "HANGUL SYLLABLE " and
    /// "CJK UNIFIED IDEOGRAPH-" names are computed (the prefixes compared case-sensitively,
    /// `strncmp`); any other name is compared upper-cased (`Py_TOUPPER`, ASCII only) with the
    /// names and aliases; named sequences are not names here.
    pub(super) fn lookup(&self, name: &[u8]) -> Option<u32> {
        if let Some(mut rest) = name.strip_prefix(b"HANGUL SYLLABLE ") {
            // `find_syllable`, per column: the longest jamo name the rest starts with (the
            // first of that length), case-sensitive; all three must match and use it all.
            let mut index = [0u32; 3];
            for (column, slot) in self.jamo.iter().zip(&mut index) {
                let mut best: Option<(usize, usize)> = None;
                for (i, jamo) in column.iter().enumerate() {
                    if best.is_some_and(|(len, _)| jamo.len() <= len) {
                        continue;
                    }
                    if rest.starts_with(jamo) {
                        best = Some((jamo.len(), i));
                    }
                }
                let (len, i) = best?;
                rest = rest.get(len..)?;
                *slot = i as u32;
            }
            let [l, v, t] = index;
            let (vcount, tcount) = (self.jamo[1].len() as u32, self.jamo[2].len() as u32);
            return rest
                .is_empty()
                .then_some(0xAC00 + (l * vcount + v) * tcount + t);
        }
        if let Some(hex) = name.strip_prefix(b"CJK UNIFIED IDEOGRAPH-") {
            // Four or five digits, upper-case only; within `is_unified_ideograph`.
            if !(4..=5).contains(&hex.len()) {
                return None;
            }
            let mut v = 0u32;
            for &b in hex {
                let d = match b {
                    b'0'..=b'9' => b - b'0',
                    b'A'..=b'F' => b - b'A' + 10,
                    _ => return None,
                };
                v = v << 4 | u32::from(d);
            }
            return self
                .cjk
                .iter()
                .any(|&(first, last)| (first..=last).contains(&v))
                .then_some(v);
        }
        if name.len() > self.longest {
            return None;
        }
        let upper = name.to_ascii_uppercase();
        let text = |&(start, end, _): &(u32, u32, u32)| {
            self.text
                .get(start as usize..end as usize)
                .unwrap_or_default()
        };
        let i = self
            .names
            .binary_search_by(|entry| text(entry).cmp(&upper[..]))
            .ok()?;
        self.names.get(i).map(|&(_, _, cp)| cp)
    }
}

/// A map from code points to code point sequences: `(code point, start, end)` in `seqs`.
#[derive(Default)]
struct SeqMap {
    keys: Vec<(u32, u32, u32)>,
    seqs: Vec<u32>,
}

impl SeqMap {
    /// A count, then per entry (increasing) the gap from the previous code point, the
    /// sequence's length and its code points.
    fn parse(r: &mut Reader<'_>) -> SeqMap {
        let mut map = SeqMap::default();
        let mut prev = 0u32;
        for _ in 0..r.count(0x11_0000) {
            let cp = cp_after(r, prev);
            r.bad |= cp < prev || (cp == prev && !map.keys.is_empty());
            let start = map.seqs.len() as u32;
            for _ in 0..r.count(32) {
                let c = cp_after(r, 0);
                map.seqs.push(c);
            }
            map.keys.push((cp, start, map.seqs.len() as u32));
            prev = cp;
        }
        map
    }

    fn get(&self, cp: u32) -> Option<&[u32]> {
        let i = self.keys.binary_search_by_key(&cp, |&(c, _, _)| c).ok()?;
        let &(_, start, end) = self.keys.get(i)?;
        self.seqs.get(start as usize..end as usize)
    }
}

/// The tables of `encodings/idna.py`'s `nameprep` and of `unicodedata.ucd_3_2_0`'s NFKC.
pub(super) struct Nameprep {
    /// stringprep B.1: mapped to nothing.
    b1: Vec<(u32, u32)>,
    /// `stringprep.map_table_b2`, where it is not the character itself.
    b2: SeqMap,
    /// Each character's full NFKD under `ucd_3_2_0` (not Hangul syllables).
    nfkd: SeqMap,
    /// Canonical combining classes (Unicode 14.0, which `nfd_nfkd` and `nfc_nfkc` read even
    /// for `ucd_3_2_0`), not 0.
    ccc: Vec<(u32, u8)>,
    /// Canonical compositions `(first, second, composite)`, sorted (14.0's, likewise).
    comp: Vec<(u32, u32, u32)>,
    /// stringprep C.1.2, C.2.2 and C.3 to C.9: refused.
    prohibited: Vec<(u32, u32)>,
    /// D.1 (bidirectional R or AL in 3.2) and D.2 (L).
    randal: Vec<(u32, u32)>,
    lcat: Vec<(u32, u32)>,
}

const SBASE: u32 = 0xAC00;
const LBASE: u32 = 0x1100;
const VBASE: u32 = 0x1161;
const TBASE: u32 = 0x11A7;
const LCOUNT: u32 = 19;
const VCOUNT: u32 = 21;
const TCOUNT: u32 = 28;
const SCOUNT: u32 = LCOUNT * VCOUNT * TCOUNT;

impl Nameprep {
    /// The content: B.1's ranges; B.2's map; the decompositions; the combining classes (a
    /// count, then gap and class); the compositions (a count, then three code points each);
    /// the prohibited, D.1 and D.2 ranges.
    fn parse(bytes: &[u8]) -> Result<Nameprep, TableError> {
        let mut body = Vec::new();
        let mut r = open(bytes, NAMEPREP_MAGIC, &mut body)?;
        let b1 = ranges(&mut r);
        let b2 = SeqMap::parse(&mut r);
        let nfkd = SeqMap::parse(&mut r);
        let mut prev = 0u32;
        let ccc = (0..r.count(0x11_0000))
            .map(|_| {
                prev = cp_after(&mut r, prev);
                let class = r.varint();
                r.bad |= class > 255;
                (prev, class as u8)
            })
            .collect::<Vec<_>>();
        let comp = (0..r.count(0x11_0000))
            .map(|_| {
                let [a, b, c] = [(); 3].map(|()| cp_after(&mut r, 0));
                (a, b, c)
            })
            .collect::<Vec<_>>();
        r.bad |= !ccc.windows(2).all(|w| w[0].0 < w[1].0)
            || !comp.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1));
        let prohibited = ranges(&mut r);
        let randal = ranges(&mut r);
        let lcat = ranges(&mut r);
        let table = Nameprep {
            b1,
            b2,
            nfkd,
            ccc,
            comp,
            prohibited,
            randal,
            lcat,
        };
        done(&r, table)
    }

    fn ccc(&self, cp: u32) -> u8 {
        self.ccc
            .binary_search_by_key(&cp, |&(c, _)| c)
            .ok()
            .and_then(|i| self.ccc.get(i))
            .map_or(0, |&(_, class)| class)
    }

    /// `unicodedata.ucd_3_2_0.normalize("NFKC", text)`: `nfd_nfkd` then `nfc_nfkc`
    /// (Modules/unicodedata.c; the quick check is off for 3.2.0).
    fn nfkc(&self, text: &[u32]) -> Vec<u32> {
        // `nfd_nfkd`: each character's decomposition, Hangul syllables by arithmetic.
        let mut d = Vec::with_capacity(text.len());
        for &c in text {
            if (SBASE..SBASE + SCOUNT).contains(&c) {
                let s = c - SBASE;
                d.push(LBASE + s / (VCOUNT * TCOUNT));
                d.push(VBASE + s % (VCOUNT * TCOUNT) / TCOUNT);
                if !s.is_multiple_of(TCOUNT) {
                    d.push(TBASE + s % TCOUNT);
                }
            } else if let Some(seq) = self.nfkd.get(c) {
                d.extend_from_slice(seq);
            } else {
                d.push(c);
            }
        }
        // Its canonical ordering: each mark moves back past the marks of a higher class.
        if let Some(&first) = d.first() {
            let mut prev = self.ccc(first);
            for i in 1..d.len() {
                let cur = self.ccc(d[i]);
                if prev == 0 || cur == 0 || prev <= cur {
                    prev = cur;
                    continue;
                }
                let mut o = i - 1;
                loop {
                    d.swap(o, o + 1);
                    if o == 0 {
                        break;
                    }
                    o -= 1;
                    let p = self.ccc(d[o]);
                    if p == 0 || p <= cur {
                        break;
                    }
                }
                prev = self.ccc(d[i]);
            }
        }
        // `nfc_nfkc`: Hangul L V (T) by arithmetic; else each character that starts a
        // composition takes the unblocked marks after it that compose with it (a composed
        // mark is skipped later).
        let len = d.len();
        let mut out = Vec::with_capacity(len);
        let mut skipped = vec![false; len];
        let mut i = 0;
        while let Some(&code) = d.get(i) {
            if skipped.get(i) == Some(&true) {
                i += 1;
                continue;
            }
            let next = d.get(i + 1).copied().unwrap_or(0);
            if (LBASE..LBASE + LCOUNT).contains(&code) && (VBASE..VBASE + VCOUNT).contains(&next) {
                let mut s = SBASE + ((code - LBASE) * VCOUNT + (next - VBASE)) * TCOUNT;
                i += 2;
                if let Some(&t) = d.get(i).filter(|&&t| TBASE < t && t < TBASE + TCOUNT) {
                    s += t - TBASE;
                    i += 1;
                }
                out.push(s);
                continue;
            }
            let mut base = code;
            let mut comb = 0u8;
            let mut i1 = i + 1;
            while let Some(&code1) = d.get(i1) {
                let comb1 = self.ccc(code1);
                if comb != 0 {
                    if comb1 == 0 {
                        break;
                    }
                    if comb >= comb1 {
                        // Blocked.
                        i1 += 1;
                        continue;
                    }
                }
                let found = self
                    .comp
                    .binary_search_by_key(&(base, code1), |&(a, b, _)| (a, b))
                    .ok()
                    .and_then(|k| self.comp.get(k));
                match found {
                    Some(&(_, _, composite)) => {
                        base = composite;
                        if let Some(s) = skipped.get_mut(i1) {
                            *s = true;
                        }
                        i1 += 1;
                    }
                    None if comb1 == 0 => break,
                    None => {
                        comb = comb1;
                        i1 += 1;
                    }
                }
            }
            out.push(base);
            i += 1;
        }
        out
    }

    /// `encodings/idna.py` `nameprep(label)` (RFC 3491 with AllowUnassigned): B.1 removed,
    /// B.2 mapped, NFKC 3.2, then `Err` (Python's UnicodeError) for a prohibited character or
    /// a bidi violation (RandALCat with LCat, or RandALCat not first and last).
    pub(super) fn nameprep(&self, label: &[u32]) -> Result<Vec<u32>, ()> {
        let mut mapped = Vec::with_capacity(label.len());
        for &c in label {
            if in_ranges(&self.b1, c) {
                continue;
            }
            match self.b2.get(c) {
                Some(seq) => mapped.extend_from_slice(seq),
                None => mapped.push(c),
            }
        }
        let label = self.nfkc(&mapped);
        if label.iter().any(|&c| in_ranges(&self.prohibited, c)) {
            return Err(());
        }
        let randal = |c: &u32| in_ranges(&self.randal, *c);
        if label.iter().any(randal)
            && (label.iter().any(|&c| in_ranges(&self.lcat, c))
                || !label.first().is_some_and(randal)
                || !label.last().is_some_and(randal))
        {
            return Err(());
        }
        Ok(label)
    }
}

/// What [`Names::all`] returns.
#[cfg(test)]
type AllNames<'a> = (Vec<(Vec<u8>, u32)>, &'a [Vec<Vec<u8>>; 3], &'a [(u32, u32)]);

#[cfg(test)]
impl Names {
    /// Every looked-up name with its code point, the jamo names and the CJK ranges (pydiff).
    pub(super) fn all(&self) -> AllNames<'_> {
        let names = self
            .names
            .iter()
            .map(|&(start, end, cp)| (self.text[start as usize..end as usize].to_vec(), cp))
            .collect();
        (names, &self.jamo, &self.cjk)
    }
}

#[cfg(test)]
impl Nameprep {
    /// Code points where the tables change (pydiff): every key, composition part and range
    /// edge (with its neighbours).
    pub(super) fn samples(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for map in [&self.b2, &self.nfkd] {
            out.extend(map.keys.iter().map(|&(cp, _, _)| cp));
        }
        out.extend(self.ccc.iter().map(|&(cp, _)| cp));
        out.extend(self.comp.iter().flat_map(|&(a, b, c)| [a, b, c]));
        for ranges in [&self.b1, &self.prohibited, &self.randal, &self.lcat] {
            for &(first, last) in ranges {
                out.extend([first.saturating_sub(1), first, last, last + 1]);
            }
        }
        out.retain(|&c| c <= 0x10_FFFF);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The marks (non-zero class), the RandAL and the L characters (pydiff).
    pub(super) fn classes(&self) -> [Vec<u32>; 3] {
        let expand = |r: &[(u32, u32)]| r.iter().flat_map(|&(a, b)| a..=b).collect::<Vec<_>>();
        [
            self.ccc.iter().map(|&(cp, _)| cp).collect(),
            expand(&self.randal),
            expand(&self.lcat),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Vec<u32> {
        text.chars().map(u32::from).collect()
    }

    /// Hand-checked with CPython 3.11 (`unicodedata.lookup`, `"\N{…}"`).
    #[test]
    fn names_resolve_like_cpython() {
        let n = names().unwrap();
        assert_eq!(n.lookup(b"BEL"), Some(0x07));
        assert_eq!(n.lookup(b"bell"), Some(0x1F514));
        assert_eq!(n.lookup(b"Latin Small Letter A"), Some(0x61));
        assert_eq!(n.lookup(b"BYTE ORDER MARK"), Some(0xFEFF));
        assert_eq!(n.lookup(b"HANGUL SYLLABLE GAGG"), Some(0xAC02));
        assert_eq!(n.lookup(b"HANGUL SYLLABLE A"), Some(0xC544));
        assert_eq!(n.lookup(b"HANGUL SYLLABLE HIH"), Some(0xD7A3));
        assert_eq!(n.lookup(b"hangul syllable GA"), None);
        assert_eq!(n.lookup(b"HANGUL SYLLABLE "), None);
        assert_eq!(n.lookup(b"CJK UNIFIED IDEOGRAPH-04E00"), Some(0x4E00));
        assert_eq!(n.lookup(b"CJK UNIFIED IDEOGRAPH-4e00"), None);
        assert_eq!(n.lookup(b"cjk unified ideograph-4E00"), None);
        assert_eq!(n.lookup(b"CJK UNIFIED IDEOGRAPH-9FFF"), Some(0x9FFF));
        assert_eq!(n.lookup(b"CJK UNIFIED IDEOGRAPH-3134B"), None);
        // Python 3.11 has no names for Tangut ideographs.
        assert_eq!(n.lookup(b"TANGUT IDEOGRAPH-17000"), None);
        // A named sequence.
        assert_eq!(
            n.lookup(b"LATIN CAPITAL LETTER A WITH MACRON AND GRAVE"),
            None
        );
        assert_eq!(n.lookup(b"BEL\0"), None);
        assert_eq!(n.lookup(&[b'A'; 300]), None);
    }

    /// Hand-checked with CPython 3.11 (`encodings.idna.nameprep`).
    #[test]
    fn nameprep_matches_cpython() {
        let t = nameprep().unwrap();
        assert_eq!(t.nameprep(&s("ß")), Ok(s("ss")));
        assert_eq!(t.nameprep(&s("Ａｂｃ")), Ok(s("abc")));
        assert_eq!(t.nameprep(&s("a\u{ad}b")), Ok(s("ab")));
        assert_eq!(t.nameprep(&s("\u{1100}\u{1161}\u{11a8}")), Ok(s("각")));
        // U+0487 is unassigned in 3.2 but ordered by its 14.0 class.
        assert_eq!(t.nameprep(&s("a\u{487}\u{323}")), Ok(s("\u{1ea1}\u{487}")));
        assert_eq!(t.nameprep(&s("\u{80}")), Err(()));
        assert_eq!(t.nameprep(&s("\u{5d0}a\u{5d0}")), Err(()));
        assert_eq!(t.nameprep(&s("\u{5d0}1")), Err(()));
        assert_eq!(t.nameprep(&s("\u{5d0}1\u{5d0}")), Ok(s("\u{5d0}1\u{5d0}")));
    }

    #[test]
    fn damaged_files_are_refused() {
        let names_file: &[u8] = include_bytes!("data/unicode_names.bin");
        let prep_file: &[u8] = include_bytes!("data/nameprep.bin");
        assert!(Names::parse(names_file).is_ok());
        assert_eq!(Names::parse(prep_file).err(), Some(TableError::WrongCodec));
        assert!(Nameprep::parse(names_file).is_err());
        assert!(Nameprep::parse(b"").is_err());
        assert!(Names::parse(&names_file[..names_file.len() / 2]).is_err());
        let mut bad = prep_file.to_vec();
        for i in (0..bad.len()).step_by(97) {
            bad[i] ^= 0x55;
            assert!(Nameprep::parse(&bad).is_err());
            bad[i] ^= 0x55;
        }
        assert_eq!(install("gbk", b""), None);
    }
}
