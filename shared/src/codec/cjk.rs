//! CPython 3.11's multi-byte CJK decoders (`Modules/cjkcodecs/_codecs_{cn,hk,jp,kr,tw}.c`) for
//! big5, gbk, gb2312, gb18030, big5hkscs, cp950, euc_jp, shift_jis, cp932, euc_kr, cp949, johab
//! and the JIS X 0213 codecs (euc_jis_2004, euc_jisx0213, shift_jis_2004, shift_jisx0213),
//! and of telnetlib3's big5bbs (its own Python decoder, which never raises), driven by tables
//! generated from CPython (`shared/gen/gen_codecs.py`, files `codec/data/*.bin`); the tables
//! of the stateful ISO-2022 codecs and hz too (their decoders are `codec/iso2022.rs`).
//!
//! Natively the tables are compiled in (`include_bytes!`). In the browser they are not (they
//! would cost about 340 KB gzipped, for a 250 KB bundle): the web app fetches the file of a codec
//! it needs and hands it to [`install_table`]; until then that codec is decoded as latin-1 and
//! `codec::is_exact` says false.

use super::tables::CHARMAPS;
use super::unidata;
use super::{py_error, DecodeRaised, Errors, Kind, PyStr};
use std::fmt;
use std::sync::OnceLock;

/// The multi-byte codecs whose tables live in `codec/data/<name>.bin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Cjk {
    Big5,
    /// telnetlib3's big5bbs: Big5 pairs, any other byte alone (cp437 above 0xA0).
    Big5Bbs,
    Big5Hkscs,
    Cp932,
    Cp949,
    Cp950,
    EucJis2004,
    EucJisx0213,
    EucJp,
    EucKr,
    Gb18030,
    Gb2312,
    Gbk,
    /// The tables of iso2022_jp_2, iso2022_jp_2004 and iso2022_jp_3 (`codec/iso2022.rs`
    /// decodes them; the other ISO-2022 codecs and hz use euc_jp's, euc_kr's and gb2312's).
    Iso2022Jp2,
    Iso2022Jp2004,
    Iso2022Jp3,
    Johab,
    ShiftJis,
    ShiftJis2004,
    ShiftJisx0213,
}

/// Every [`Cjk`] codec, in the order of [`SLOTS`].
const ALL: [Cjk; 20] = [
    Cjk::Big5,
    Cjk::Big5Bbs,
    Cjk::Big5Hkscs,
    Cjk::Cp932,
    Cjk::Cp949,
    Cjk::Cp950,
    Cjk::EucJis2004,
    Cjk::EucJisx0213,
    Cjk::EucJp,
    Cjk::EucKr,
    Cjk::Gb18030,
    Cjk::Gb2312,
    Cjk::Gbk,
    Cjk::Iso2022Jp2,
    Cjk::Iso2022Jp2004,
    Cjk::Iso2022Jp3,
    Cjk::Johab,
    Cjk::ShiftJis,
    Cjk::ShiftJis2004,
    Cjk::ShiftJisx0213,
];

/// The parsed table of each codec, once loaded (natively) or installed (wasm).
static SLOTS: [OnceLock<Table>; ALL.len()] = [const { OnceLock::new() }; ALL.len()];

/// The parsed table of each charmap codec (`tables::CHARMAPS`), likewise.
static CHARMAP_SLOTS: [OnceLock<Table>; CHARMAPS.len()] =
    [const { OnceLock::new() }; CHARMAPS.len()];

/// The table in `slot`: natively parsed on first use (`None` only if the compiled-in file
/// does not parse, which the tests rule out); in wasm there once installed. Also loads the
/// Unicode data of `codec/unidata.rs`.
pub(super) fn load<T>(
    slot: &'static OnceLock<T>,
    parse: impl FnOnce() -> Result<T, TableError>,
) -> Option<&'static T> {
    if let Some(t) = slot.get() {
        return Some(t);
    }
    if cfg!(target_arch = "wasm32") {
        return None;
    }
    let table = parse().ok()?;
    Some(slot.get_or_init(|| table))
}

/// The table of charmap `i` (`tables::CHARMAPS`), as [`Cjk::table`] for the CJK codecs.
pub(super) fn charmap_table(i: u8) -> Option<&'static Table> {
    let i = usize::from(i);
    let (slot, name) = (CHARMAP_SLOTS.get(i)?, CHARMAPS.get(i)?);
    #[cfg(not(target_arch = "wasm32"))]
    let bytes = || super::tables::charmap_bytes(i);
    #[cfg(target_arch = "wasm32")]
    let bytes = || -> &'static [u8] { &[] };
    load(slot, || Table::parse(name, bytes()))
}

/// The table file a codec decodes with, for the codecs that need one: the file's stem and
/// whether the table is loaded (natively: always) or installed. unicode_escape needs the
/// Unicode names and idna the nameprep tables (`codec/unidata.rs`).
pub(super) fn table_of(kind: Kind) -> Option<(&'static str, bool)> {
    match kind {
        Kind::MultiByte(codec) => Some((codec.name(), codec.table().is_some())),
        Kind::Iso2022(codec) => {
            let file = codec.table_file();
            Some((file.name(), file.table().is_some()))
        }
        Kind::Charmap(i) => Some((*CHARMAPS.get(usize::from(i))?, charmap_table(i).is_some())),
        Kind::UnicodeEscape => Some((unidata::NAMES, unidata::names().is_some())),
        Kind::Idna => Some((unidata::NAMEPREP, unidata::nameprep().is_some())),
        _ => None,
    }
}

impl Cjk {
    /// Python's canonical codec name, which is also the table file's stem (`gbk.bin`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cjk::Big5 => "big5",
            Cjk::Big5Bbs => "big5bbs",
            Cjk::Big5Hkscs => "big5hkscs",
            Cjk::Cp932 => "cp932",
            Cjk::Cp949 => "cp949",
            Cjk::Cp950 => "cp950",
            Cjk::EucJis2004 => "euc_jis_2004",
            Cjk::EucJisx0213 => "euc_jisx0213",
            Cjk::EucJp => "euc_jp",
            Cjk::EucKr => "euc_kr",
            Cjk::Gb18030 => "gb18030",
            Cjk::Gb2312 => "gb2312",
            Cjk::Gbk => "gbk",
            Cjk::Iso2022Jp2 => "iso2022_jp_2",
            Cjk::Iso2022Jp2004 => "iso2022_jp_2004",
            Cjk::Iso2022Jp3 => "iso2022_jp_3",
            Cjk::Johab => "johab",
            Cjk::ShiftJis => "shift_jis",
            Cjk::ShiftJis2004 => "shift_jis_2004",
            Cjk::ShiftJisx0213 => "shift_jisx0213",
        }
    }

    fn slot(self) -> &'static OnceLock<Table> {
        let i = ALL.iter().position(|&c| c == self).unwrap_or(0);
        // ALL and SLOTS have the same length, so `i` is always in range.
        &SLOTS[i]
    }

    /// The generated table file, compiled into native builds only.
    #[cfg(not(target_arch = "wasm32"))]
    fn bytes(self) -> &'static [u8] {
        match self {
            Cjk::Big5 => include_bytes!("data/big5.bin"),
            Cjk::Big5Bbs => include_bytes!("data/big5bbs.bin"),
            Cjk::Big5Hkscs => include_bytes!("data/big5hkscs.bin"),
            Cjk::Cp932 => include_bytes!("data/cp932.bin"),
            Cjk::Cp949 => include_bytes!("data/cp949.bin"),
            Cjk::Cp950 => include_bytes!("data/cp950.bin"),
            Cjk::EucJis2004 => include_bytes!("data/euc_jis_2004.bin"),
            Cjk::EucJisx0213 => include_bytes!("data/euc_jisx0213.bin"),
            Cjk::EucJp => include_bytes!("data/euc_jp.bin"),
            Cjk::EucKr => include_bytes!("data/euc_kr.bin"),
            Cjk::Gb18030 => include_bytes!("data/gb18030.bin"),
            Cjk::Gb2312 => include_bytes!("data/gb2312.bin"),
            Cjk::Gbk => include_bytes!("data/gbk.bin"),
            Cjk::Iso2022Jp2 => include_bytes!("data/iso2022_jp_2.bin"),
            Cjk::Iso2022Jp2004 => include_bytes!("data/iso2022_jp_2004.bin"),
            Cjk::Iso2022Jp3 => include_bytes!("data/iso2022_jp_3.bin"),
            Cjk::Johab => include_bytes!("data/johab.bin"),
            Cjk::ShiftJis => include_bytes!("data/shift_jis.bin"),
            Cjk::ShiftJis2004 => include_bytes!("data/shift_jis_2004.bin"),
            Cjk::ShiftJisx0213 => include_bytes!("data/shift_jisx0213.bin"),
        }
    }

    /// The table, parsed on first use natively, once the web app has installed it with
    /// [`install_table`] in wasm.
    pub(super) fn table(self) -> Option<&'static Table> {
        #[cfg(not(target_arch = "wasm32"))]
        let bytes = || self.bytes();
        #[cfg(target_arch = "wasm32")]
        let bytes = || -> &'static [u8] { &[] };
        load(self.slot(), || Table::parse(self.name(), bytes()))
    }

    fn from_name(name: &str) -> Option<Cjk> {
        ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Why [`install_table`] refused a table file. (No strings inside: this code is in the
/// browser bundle, where every formatting call costs.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableError {
    /// The name is not one of the table files (`gbk`, `euc_jp`, `unicode_names`, …).
    UnknownCodec,
    /// The file is a table of another codec.
    WrongCodec,
    /// The file is not a table (wrong magic, truncated, bad checksum, out-of-range value).
    Malformed(&'static str),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableError::UnknownCodec => "no codec has a table by that name",
            TableError::WrongCodec => "the file is the table of another codec",
            TableError::Malformed(why) => why,
        })
    }
}

impl std::error::Error for TableError {}

/// Install the table file `bytes` (the generated `codec/data/<name>.bin`) of the codec `name`
/// (its canonical Python name, as [`table_name`] returns it; `unicode_names` for
/// unicode_escape and `nameprep` for idna, `codec/unidata.rs`), so that codec decodes exactly
/// from now on. Installing a table that is already there is a no-op. Native builds have every
/// table compiled in and need no call; the browser calls this after fetching the file.
pub fn install_table(name: &str, bytes: &[u8]) -> Result<(), TableError> {
    if let Some(done) = unidata::install(name, bytes) {
        return done;
    }
    let slot = match Cjk::from_name(name) {
        Some(codec) => codec.slot(),
        None => CHARMAPS
            .iter()
            .position(|&n| n == name)
            .and_then(|i| CHARMAP_SLOTS.get(i))
            .ok_or(TableError::UnknownCodec)?,
    };
    install_into(slot, || Table::parse(name, bytes))
}

/// Parses a fetched file into `slot` unless one is there already (also for the Unicode data
/// of `codec/unidata.rs`).
pub(super) fn install_into<T>(
    slot: &OnceLock<T>,
    parse: impl FnOnce() -> Result<T, TableError>,
) -> Result<(), TableError> {
    if slot.get().is_some() {
        return Ok(());
    }
    // A concurrent install of the same file wins the race with an equal table.
    let _ = slot.set(parse()?);
    Ok(())
}

/// The table file stem (`"gbk"`, served as `gbk.bin`) that `encoding` (any Python name or
/// alias) needs and that is not installed yet; `None` when decoding `encoding` needs no table
/// or has it (always `None` natively).
pub fn missing_table(encoding: &str) -> Option<&'static str> {
    match table_of(super::find(encoding)?.1)? {
        (name, false) => Some(name),
        (_, true) => None,
    }
}

/// The table file stem a codec needs (`"gbk"` for `GB-2312`'s alias `chinese` it is `gb2312`),
/// whether or not it is installed; `None` for codecs that need none.
pub fn table_name(encoding: &str) -> Option<&'static str> {
    table_of(super::find(encoding)?.1).map(|(name, _)| name)
}

/// Magic at the start of a table file, then a version byte: 1 (bytes below 0x80 are ASCII),
/// 2 (a single for every byte: the charmap codecs whose low half is not ASCII, and
/// shift_jis_2004 and shift_jisx0213, whose 0x5C and 0x7E are JIS X 0201 Roman's ¥ and ‾).
const MAGIC: &[u8; 7] = b"IACSCJK";

/// What a byte >= 0x80 is when it starts a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Single {
    /// One error of one byte ("illegal multibyte sequence").
    Illegal,
    /// Needs a trail byte.
    Lead,
    /// Decodes alone (half-width katakana of shift_jis, cp932's 0x80, …).
    Char(u32),
}

/// Row slots per plane: one per lead byte.
const ROWS: usize = 256;

/// The most planes a table file has (iso2022_jp_2's four double-byte sets).
const MAX_PLANES: u32 = 4;

/// A parsed table file.
#[derive(Debug)]
pub(super) struct Table {
    /// Every byte (in a version 1 file, bytes below 0x80 are themselves).
    singles: [Single; 256],
    /// Per plane and lead byte (`plane * 256 + lead`): first trail byte, number of cells,
    /// offset into `cells`. Plane 0: lead + trail pairs; plane 1 (the euc_jp codecs): the two
    /// bytes after 0x8F; in the ISO-2022 tables one plane per double-byte set.
    rows: Vec<(u8, u16, u32)>,
    /// Code points of every row, 0 where the pair decodes to nothing.
    cells: Vec<u32>,
    /// Pairs of a plane that have no cell but decode to two characters (big5hkscs' four, the
    /// JIS X 0213 kana and accents with a combining mark), or (`None`) are one error over both
    /// bytes (the JIS X 0213:2004 additions in the 2000 codecs), as `(plane, lead, trail)`.
    multi: Vec<(u8, u8, u8, Option<[u32; 2]>)>,
    /// gb18030: `(first linear index, first code point)` of each run of 4-byte sequences
    /// mapping to consecutive BMP code points; a run ends where the next begins.
    pub(super) ranges: Vec<(u32, u32)>,
    /// gb18030: the linear index where the last run ends (39420).
    pub(super) range_end: u32,
}

/// Reads a table file front to back. A read past the end, or a value out of range, marks
/// the reader `bad` (and yields 0) instead of returning an error at each step: checked once
/// at the end, which keeps this code (in the browser bundle) small.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) bad: bool,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes (empty, and `bad`, past the end).
    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let got = self.bytes.get(self.pos..self.pos.saturating_add(n));
        self.pos = self.pos.saturating_add(n);
        self.bad |= got.is_none();
        got.unwrap_or_default()
    }

    pub(super) fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied();
        self.pos += 1;
        self.bad |= b.is_none();
        b.unwrap_or(0)
    }

    /// An unsigned LEB128 value that fits in a `u32`.
    pub(super) fn varint(&mut self) -> u32 {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.byte();
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        self.bad |= value > u64::from(u32::MAX);
        value as u32
    }

    /// A count of at most `max` items (more is a bad file, counted as 0).
    pub(super) fn count(&mut self, max: u32) -> u32 {
        let n = self.varint();
        self.bad |= n > max;
        if self.bad {
            0
        } else {
            n
        }
    }

    /// A code point (`MAX_CP` at most).
    pub(super) fn cp(&mut self, value: i64) -> u32 {
        let cp = u32::try_from(value).unwrap_or(u32::MAX);
        self.bad |= cp > MAX_CP;
        cp
    }
}

/// FNV-1a 64, the checksum closing a table file (as `fnv1a_bytes` in gen_codecs.py).
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// The largest Unicode code point.
const MAX_CP: u32 = 0x10_FFFF;

impl Table {
    /// Parse a table file (`cjk_blob` in gen_codecs.py writes it). Layout, varints unsigned
    /// LEB128:
    /// - `IACSCJK` and the version (1 or 2); varint length + the canonical codec name;
    /// - 128 varints for bytes 0x80..=0xFF (version 2: 256 for every byte): 0 illegal,
    ///   1 lead, n >= 2 the character n - 2;
    /// - varint plane count (at most `MAX_PLANES`); per plane a varint row count, per row `lead lo hi`
    ///   bytes then `hi - lo + 1` varints: 0 for no character, else zigzag(code point -
    ///   previous code point of the plane) + 1;
    /// - varint count of special pairs; each `plane lead trail`, then varint 2 and 2 varint
    ///   code points (two characters), or varint 0 (one error over both bytes);
    /// - varint count of gb18030 runs, each two varints (first index, first code point),
    ///   increasing; then a varint for where the last run ends;
    /// - the FNV-1a 64 of everything before, 8 bytes little-endian.
    fn parse(name: &str, bytes: &[u8]) -> Result<Table, TableError> {
        let (body, sum) = bytes
            .split_last_chunk::<8>()
            .ok_or(TableError::Malformed("truncated"))?;
        if fnv1a(body) != u64::from_le_bytes(*sum) {
            return Err(TableError::Malformed("checksum mismatch"));
        }
        let low = match body.strip_prefix(MAGIC).and_then(|b| b.first()) {
            Some(1) => 128,
            Some(2) => 0,
            _ => return Err(TableError::Malformed("not an iacscope codec table")),
        };
        let mut r = Reader {
            bytes: body,
            pos: MAGIC.len() + 1,
            bad: false,
        };
        let name_len = r.count(64) as usize;
        let start = r.pos;
        r.pos += name_len;
        if body.get(start..r.pos) != Some(name.as_bytes()) {
            return Err(TableError::WrongCodec);
        }
        let mut singles = [Single::Illegal; 256];
        for (b, single) in singles.iter_mut().enumerate().take(low) {
            *single = Single::Char(b as u32);
        }
        for single in singles.iter_mut().skip(low) {
            *single = match r.varint() {
                0 => Single::Illegal,
                1 => Single::Lead,
                n => Single::Char(r.cp(i64::from(n) - 2)),
            };
        }
        let planes = r.count(MAX_PLANES) as usize;
        let mut rows = vec![(0u8, 0u16, 0u32); planes * ROWS];
        let mut cells = Vec::new();
        for plane in 0..planes {
            let mut prev = 0i64;
            for _ in 0..r.count(ROWS as u32) {
                let (lead, lo, hi) = (r.byte(), r.byte(), r.byte());
                let n = u16::from(hi.wrapping_sub(lo)) + 1;
                r.bad |= hi < lo;
                if let Some(row) = rows.get_mut(plane * ROWS + usize::from(lead)) {
                    *row = (lo, n, cells.len() as u32);
                }
                for _ in 0..n {
                    let v = i64::from(r.varint());
                    if v == 0 {
                        cells.push(0);
                    } else {
                        prev += ((v - 1) >> 1) ^ -((v - 1) & 1);
                        cells.push(r.cp(prev));
                    }
                }
            }
        }
        let mut multi = Vec::new();
        for _ in 0..r.count(1024) {
            let (plane, lead, trail) = (r.byte(), r.byte(), r.byte());
            let pair = match r.varint() {
                0 => None,
                2 => {
                    let pair = [r.varint(), r.varint()];
                    Some(pair.map(|cp| r.cp(i64::from(cp))))
                }
                _ => {
                    r.bad = true;
                    None
                }
            };
            multi.push((plane, lead, trail, pair));
        }
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for _ in 0..r.count(4096) {
            let start = r.varint();
            let first = r.varint();
            r.bad |= ranges.last().is_some_and(|&(s, _)| s >= start);
            ranges.push((start, first));
        }
        let range_end = r.varint();
        r.bad |= ranges.last().is_some_and(|&(s, _)| s >= range_end);
        if r.bad || r.pos != body.len() {
            return Err(TableError::Malformed("corrupt or truncated codec table"));
        }
        Ok(Table {
            singles,
            rows,
            cells,
            multi,
            ranges,
            range_end,
        })
    }

    /// The special pair `lead trail` of `plane` (see `multi`), if it is one.
    pub(super) fn pair(&self, plane: u8, lead: u8, trail: u8) -> Option<&Option<[u32; 2]>> {
        self.multi
            .iter()
            .find(|&&(p, l, t, _)| (p, l, t) == (plane, lead, trail))
            .map(|(_, _, _, pair)| pair)
    }

    /// What byte `b` is alone: a character or not (an illegal byte or a lead byte).
    pub(super) fn single(&self, b: u8) -> Option<u32> {
        match self.singles[usize::from(b)] {
            Single::Char(cp) => Some(cp),
            Single::Illegal | Single::Lead => None,
        }
    }

    /// The character of `trail` in `lead`'s row of `plane`, if any.
    pub(super) fn cell(&self, plane: usize, lead: u8, trail: u8) -> Option<u32> {
        let &(lo, n, offset) = self.rows.get(plane * ROWS + usize::from(lead))?;
        let column = trail.checked_sub(lo)?;
        if u16::from(column) >= n {
            return None;
        }
        let cp = *self.cells.get(offset as usize + usize::from(column))?;
        (cp != 0).then_some(cp)
    }

    /// The BMP code point of gb18030's 4-byte linear index `lseq` (< `range_end`).
    fn gb18030_bmp(&self, lseq: u32) -> Option<u32> {
        if lseq >= self.range_end {
            return None;
        }
        let i = self.ranges.partition_point(|&(start, _)| start <= lseq);
        let &(start, first) = self.ranges.get(i.checked_sub(1)?)?;
        let cp = first.checked_add(lseq - start)?;
        (cp <= MAX_CP).then_some(cp)
    }
}

/// One decoding step from the start of the remaining input.
enum Step<'a> {
    /// A character from this many bytes.
    Char(u32, usize),
    /// Two characters from a pair (big5hkscs, the JIS X 0213 codecs).
    Chars(&'a [u32]),
    /// An error covering this many bytes, for the error handler.
    Error(usize),
}

/// euc_kr's make-up sequences (KS X 1001:1998 Annex 3): `A4 D4 A4 <cho> A4 <jung> A4 <jong>`.
const EUCKR_JAMO_LEAD: u8 = 0xA4;
const EUCKR_JAMO_FILLER: u8 = 0xD4;
/// `_codecs_kr.c` `cgk2u_choseong`, indexed by byte - 0xA1 (0xA1..=0xBE); `NO_JAMO` = none.
const NO_JAMO: u8 = 127;
const CHOSEONG: [u8; 30] = [
    0, 1, NO_JAMO, 2, NO_JAMO, NO_JAMO, 3, 4, 5, NO_JAMO, NO_JAMO, NO_JAMO, NO_JAMO, NO_JAMO,
    NO_JAMO, NO_JAMO, 6, 7, 8, NO_JAMO, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
];
/// `_codecs_kr.c` `cgk2u_jongseong`, indexed by byte - 0xA1 (0xA1..=0xBE).
const JONGSEONG: [u8; 30] = [
    1, 2, 3, 4, 5, 6, 7, NO_JAMO, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, NO_JAMO, 18, 19, 20, 21,
    22, NO_JAMO, 23, 24, 25, 26, 27,
];

/// `_codecs_kr.c` DECODER(euc_kr) after it saw `A4 D4`: eight bytes are required (fewer is
/// "incomplete", an error over the rest of the input); bytes 2, 4, 6 must be A4 and the three
/// jamo must exist, else an error of one byte.
fn euckr_jamo(rest: &[u8]) -> Step<'static> {
    let Some(&[_, _, a2, cho, a4, jung, a6, jong]) = rest.first_chunk::<8>() else {
        return Step::Error(rest.len());
    };
    if [a2, a4, a6] != [EUCKR_JAMO_LEAD; 3] {
        return Step::Error(1);
    }
    let cho = cho
        .checked_sub(0xA1)
        .and_then(|i| CHOSEONG.get(usize::from(i)))
        .copied()
        .unwrap_or(NO_JAMO);
    let jung = if (0xBF..=0xD3).contains(&jung) {
        jung - 0xBF
    } else {
        NO_JAMO
    };
    let jong = if jong == EUCKR_JAMO_FILLER {
        0
    } else {
        jong.checked_sub(0xA1)
            .and_then(|i| JONGSEONG.get(usize::from(i)))
            .copied()
            .unwrap_or(NO_JAMO)
    };
    if cho == NO_JAMO || jung == NO_JAMO || jong == NO_JAMO {
        return Step::Error(1);
    }
    let cp = 0xAC00 + u32::from(cho) * 588 + u32::from(jung) * 28 + u32::from(jong);
    Step::Char(cp, 8)
}

/// `_codecs_cn.c` DECODER(gb18030) after a lead byte and a second byte 0x30..=0x39: four bytes
/// are required (fewer: "incomplete", an error over the rest); then bytes 1 and 3 must be
/// 0x81..=0xFE and byte 4 0x30..=0x39. First bytes 0x81..=0x84 map the linear index below
/// 39420 through the BMP runs of the table; 0x90..=0xE3 map 0x10000 + index up to U+10FFFF
/// algorithmically; anything else is an error of one byte.
fn gb18030_four<'a>(table: &'a Table, rest: &[u8]) -> Step<'a> {
    let Some(&[c1, c2, c3, c4]) = rest.first_chunk::<4>() else {
        return Step::Error(rest.len());
    };
    if !(0x81..=0xFE).contains(&c1) || !(0x81..=0xFE).contains(&c3) || !(0x30..=0x39).contains(&c4)
    {
        return Step::Error(1);
    }
    let (c1, c2, c3, c4) = (
        u32::from(c1 - 0x81),
        u32::from(c2 - 0x30),
        u32::from(c3 - 0x81),
        u32::from(c4 - 0x30),
    );
    let index = (c1 * 10 + c2) * 1260 + c3 * 10 + c4;
    let cp = if c1 < 4 {
        table.gb18030_bmp(index)
    } else if c1 >= 15 {
        let cp = 0x1_0000 + index - 15 * 12600;
        (cp <= MAX_CP).then_some(cp)
    } else {
        None
    };
    cp.map_or(Step::Error(1), |cp| Step::Char(cp, 4))
}

/// One step of `codec` (`None`: a charmap codec) at the start of `rest` (not empty).
fn step<'a>(codec: Option<Cjk>, table: &'a Table, rest: &[u8]) -> Step<'a> {
    let Some(&lead) = rest.first() else {
        return Step::Error(0);
    };
    if codec == Some(Cjk::Big5Bbs) {
        // telnetlib3's big5bbs decoder (its own Python, with no errors): a lead byte and the
        // next one make a character when Big5 defines the pair (the only pairs its table has);
        // else the byte is one character alone and decoding goes on at the next.
        if let Some(cp) = rest.get(1).and_then(|&trail| table.cell(0, lead, trail)) {
            return Step::Char(cp, 2);
        }
    }
    let single = table.singles[usize::from(lead)];
    match single {
        Single::Illegal => return Step::Error(1),
        Single::Char(cp) => return Step::Char(cp, 1),
        Single::Lead => {}
    }
    // REQUIRE_INBUF(2): a lead byte at the end is "incomplete multibyte sequence".
    let Some(&trail) = rest.get(1) else {
        return Step::Error(rest.len());
    };
    match codec {
        Some(Cjk::Gb18030) if (0x30..=0x39).contains(&trail) => return gb18030_four(table, rest),
        Some(Cjk::EucJp | Cjk::EucJis2004 | Cjk::EucJisx0213) if lead == 0x8F => {
            // JIS X 0212 (euc_jp), JIS X 0213 plane 2 then JIS X 0212 (the others) after 0x8F;
            // REQUIRE_INBUF(3) first.
            let Some(&third) = rest.get(2) else {
                return Step::Error(rest.len());
            };
            return table
                .cell(1, trail, third)
                .map_or(Step::Error(1), |cp| Step::Char(cp, 3));
        }
        Some(Cjk::EucKr) if lead == EUCKR_JAMO_LEAD && trail == EUCKR_JAMO_FILLER => {
            return euckr_jamo(rest)
        }
        _ => {}
    }
    if let Some(cp) = table.cell(0, lead, trail) {
        return Step::Char(cp, 2);
    }
    match table.pair(0, lead, trail) {
        Some(Some(cps)) => Step::Chars(cps),
        Some(None) => Step::Error(2),
        // "illegal multibyte sequence": the error covers the lead byte only.
        None => Step::Error(1),
    }
}

/// `bytes.decode(codec, errors)` with the codec's table (`None`: a charmap codec).
pub(super) fn decode(
    codec: Option<Cjk>,
    table: &Table,
    bytes: &[u8],
    errors: Errors,
) -> Result<PyStr, DecodeRaised> {
    let mut out = PyStr(Vec::with_capacity(bytes.len()));
    let mut rest = bytes;
    while !rest.is_empty() {
        let used = match step(codec, table, rest) {
            Step::Char(cp, n) => {
                out.push(cp);
                n
            }
            Step::Chars(cps) => {
                out.0.extend_from_slice(cps);
                2
            }
            Step::Error(esize) => py_error(&mut out, rest, esize, errors)?,
        };
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses() {
        for codec in ALL {
            assert!(codec.table().is_some(), "{}", codec.name());
        }
        for (i, name) in CHARMAPS.iter().enumerate() {
            let table = charmap_table(i as u8);
            assert!(table.is_some(), "{name}");
            // A charmap table has no pairs: every byte is a character or illegal alone.
            let singles = table.map(|t| t.singles).unwrap_or([Single::Lead; 256]);
            assert!(!singles.contains(&Single::Lead), "{name}");
        }
    }

    fn s(text: &str) -> Option<Vec<u32>> {
        Some(text.chars().map(u32::from).collect())
    }

    /// Real text with invalid bytes inside; expected values are CPython 3.11's answers
    /// (strict, replace, surrogateescape).
    #[test]
    fn mixed_text_with_invalid_bytes() {
        use super::super::decode3;
        // (encoding, bytes, answers for strict, replace, surrogateescape)
        type Case = (&'static str, &'static [u8], [Option<Vec<u32>>; 3]);
        let cases: &[Case] = &[
            (
                "gbk",
                b"\xd6\xd0\xce\xc4 GBK \xb2\xe2\xca\xd4\r\n\x81 bad\xff",
                [
                    None,
                    s("中文 GBK 测试\r\n\u{fffd} bad\u{fffd}"),
                    Some(
                        "中文 GBK 测试\r\n"
                            .chars()
                            .map(u32::from)
                            .chain([0xDC81])
                            .chain(" bad".chars().map(u32::from))
                            .chain([0xDCFF])
                            .collect(),
                    ),
                ],
            ),
            (
                // A 4-byte sequence cut after 3 bytes: one replacement character, but
                // surrogateescape stops at the '0' and decodes on from there.
                "gb18030",
                b"\x94\x32\xbe\x34 \xa8\xa6 \xa2\xe3\x81\x30\x81",
                [
                    None,
                    s("𝄞 é €\u{fffd}"),
                    Some(
                        "𝄞 é €"
                            .chars()
                            .map(u32::from)
                            .chain([0xDC81, 0x30, 0xDC81])
                            .collect(),
                    ),
                ],
            ),
            (
                "shift_jis",
                b"\x93\xfa\x96{\x8c\xea\xb6\xc0\xb6\xc5\x82",
                [
                    None,
                    s("日本語ｶﾀｶﾅ\u{fffd}"),
                    Some(
                        "日本語ｶﾀｶﾅ"
                            .chars()
                            .map(u32::from)
                            .chain([0xDC82])
                            .collect(),
                    ),
                ],
            ),
            (
                // A4 D4 at the end starts an 8-byte make-up sequence: "incomplete".
                "euc_kr",
                b"\xc7\xd1\xb1\xb9\xbe\xee \xc5\xd8\xbd\xba\xc6\xae\xa4\xd4",
                [
                    None,
                    s("한국어 텍스트\u{fffd}"),
                    Some(
                        "한국어 텍스트"
                            .chars()
                            .map(u32::from)
                            .chain([0xDCA4, 0xDCD4])
                            .collect(),
                    ),
                ],
            ),
            (
                // Two pairs that decode to two characters each.
                "big5hkscs",
                b"\x88b\x88d \xad\xbb\xb4\xe4\xfe",
                [
                    None,
                    s("Ê̄Ê̌ 香港\u{fffd}"),
                    Some("Ê̄Ê̌ 香港".chars().map(u32::from).chain([0xDCFE]).collect()),
                ],
            ),
            (
                // JIS X 0212 after 0x8F, then 0x8F with one byte: "incomplete" over both.
                "euc_jp",
                b"\xc6\xfc\xcb\xdc\xb8\xec\x8f\xb0\xa1\x8f\xa1",
                [
                    None,
                    s("日本語丂\u{fffd}"),
                    Some(
                        "日本語丂"
                            .chars()
                            .map(u32::from)
                            .chain([0xDC8F, 0xDCA1])
                            .collect(),
                    ),
                ],
            ),
            (
                "cp949",
                b"\x8cc\xb9\xe6\xb0\xa2\xc7\xcf\xc9",
                [
                    None,
                    s("똠방각하\u{fffd}"),
                    Some("똠방각하".chars().map(u32::from).chain([0xDCC9]).collect()),
                ],
            ),
            (
                "cp932",
                b"\x80\xa0\xfd\x87@",
                [
                    s("\u{80}\u{f8f0}\u{f8f1}①"),
                    s("\u{80}\u{f8f0}\u{f8f1}①"),
                    s("\u{80}\u{f8f0}\u{f8f1}①"),
                ],
            ),
            (
                "cp950",
                b"\xc1c\xc5\xe9\xf9\xfe",
                [s("繁體▓"), s("繁體▓"), s("繁體▓")],
            ),
        ];
        for (enc, bytes, expected) in cases {
            assert_eq!(&decode3(enc, bytes), expected, "{enc} {bytes:02x?}");
        }
        // The engine's entry points: the banner keeps escapes, the cursor replaces, an MSSP
        // field that strict decoding refuses is latin-1 as a whole.
        let bytes = b"\xd6\xd0\xce\xc4\xff";
        assert_eq!(
            crate::codec::format_banner("GBK", bytes).map(|t| t.0),
            Ok(vec![0x4E2D, 0x6587, 0xDCFF])
        );
        assert_eq!(crate::codec::decode_lossy("cp936", bytes), "中文\u{fffd}");
        assert_eq!(
            crate::codec::decode_mssp_field("gbk", bytes),
            PyStr::from_latin1(bytes)
        );
        assert_eq!(
            crate::codec::decode_mssp_field("gbk", b"\xd6\xd0\xce\xc4"),
            PyStr::from("中文")
        );
        // gb18030's "81 30" at the end is one error that starts with a byte >= 0x80 and
        // holds an ASCII digit: surrogateescape escapes 0x81 and decodes '0' as itself.
        assert_eq!(
            crate::codec::format_banner("gb18030", b"\x81\x30").map(|t| t.0),
            Ok(vec![0xDC81, 0x30])
        );
    }

    /// Random bytes of every length through every codec and entry point: no panic, and the
    /// three error handlers agree where strict decoding succeeds.
    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x0123_4567_89AB_CDEFu64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // The codecs the differential tests cover.
        let names: Vec<&str> = crate::codec::pydiff::CODECS
            .iter()
            .chain(crate::codec::pydiff::STATEFUL)
            .copied()
            .collect();
        // Where Python itself breaks the rules below: undefined always raises, idna takes
        // "strict" only, punycode not "surrogateescape".
        let lawless = ["undefined", "idna", "punycode"];
        for round in 0..4000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[2]).collect();
            let enc = names[round % names.len()];
            let [strict, replace, escape] = super::super::decode3(enc, &bytes);
            if lawless.contains(&enc) {
                continue;
            }
            if let Some(text) = strict {
                assert_eq!(Some(&text), replace.as_ref(), "{enc} {bytes:02x?}");
                assert_eq!(Some(&text), escape.as_ref(), "{enc} {bytes:02x?}");
            }
            assert!(
                replace.is_some(),
                "replace never raises: {enc} {bytes:02x?}"
            );
            let _ = crate::codec::decode_lossy(enc, &bytes);
            let _ = crate::codec::decode_mssp_field(enc, &bytes);
            let _ = crate::codec::decode_surrogateescape(enc, &bytes);
        }
    }

    /// Tables damaged behind a valid checksum (what a hostile server could hand the web app)
    /// never make parsing or decoding panic.
    #[test]
    fn damaged_tables_with_valid_checksums_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let input: Vec<u8> = (0..512).map(|i| (i * 37 % 251) as u8 | 0x80).collect();
        for codec in ALL {
            let good = codec.bytes();
            for _ in 0..40 {
                let mut bad = good.get(..good.len() - 8).unwrap_or_default().to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bad.len() as u64) as usize;
                    match next() % 3 {
                        0 => bad[at] = next() as u8,
                        1 => bad.truncate(at.max(9)),
                        _ => bad.insert(at, next() as u8),
                    }
                }
                let sum = fnv1a(&bad).to_le_bytes();
                bad.extend_from_slice(&sum);
                if let Ok(table) = Table::parse(codec.name(), &bad) {
                    for errors in [Errors::Strict, Errors::Replace, Errors::SurrogateEscape] {
                        let _ = decode(Some(codec), &table, &input, errors);
                    }
                }
            }
        }
    }

    #[test]
    fn damaged_tables_are_refused() {
        let good = Cjk::Gbk.bytes();
        assert_eq!(install_table("gbk", good), Ok(()));
        assert_eq!(install_table("gbk2", good), Err(TableError::UnknownCodec));
        assert_eq!(
            Table::parse("gb2312", good).err(),
            Some(TableError::WrongCodec)
        );
        for cut in [0, 1, 8, 100, good.len() - 9, good.len() - 1] {
            assert!(Table::parse("gbk", good.get(..cut).unwrap_or_default()).is_err());
        }
        let mut flipped = good.to_vec();
        if let Some(b) = flipped.get_mut(500) {
            *b ^= 1;
        }
        assert_eq!(
            Table::parse("gbk", &flipped).err(),
            Some(TableError::Malformed("checksum mismatch"))
        );
    }
}
