//! Transcripts: a session's engine inputs and outputs with their times, in a stable text format.
//!
//! A transcript is what permalinks store and what golden tests are written in. Replaying its
//! inputs (`recv`, `eof`, `tick`) through a fresh engine reproduces the same record and the
//! same timeline exactly; `send` lines are the engine's output, kept for display and checking.
//! This module only stores and formats; driving the engine lives in [`crate::replay`].
//!
//! Format (one entry a line, `#` starts a comment):
//! ```text
//! iacscope-transcript 1
//! meta host 127.0.0.1
//! meta port 6023
//! 0 send %FF%FB%56
//! 1200 recv Ready.%0D%0A
//! 4000000 tick
//! 7100000 eof
//! ```
//! Times are microseconds since the connect. Bytes 0x21..=0x7E other than `%` stand for
//! themselves; every other byte is `%XX` (upper-case hex).

use crate::time::Timestamp;
use core::fmt;

/// The first line of every transcript.
pub const MAGIC: &str = "iacscope-transcript 1";

/// Largest number of payload bytes a transcript holds in all. Beyond it entries are dropped
/// and [`Transcript::truncated`] is set, so a hostile server cannot grow a stored session
/// without bound.
pub const MAX_TRANSCRIPT_BYTES: usize = 4 * 1024 * 1024;

/// Largest number of entries a transcript holds.
pub const MAX_TRANSCRIPT_ENTRIES: usize = 200_000;

/// Largest memory a transcript may take, as [`Transcript::cost`] counts it (payload, the
/// entry table and each payload's heap block). Payload alone is not what an entry costs:
/// a flood of one-byte messages would otherwise hold ~70 bytes of memory per byte counted.
pub const MAX_TRANSCRIPT_COST: usize = 8 * 1024 * 1024;

/// What the allocator really hands out for a request of `n` bytes: glibc's malloc rounds a
/// chunk up to 16 bytes including an 8-byte header, with a 32-byte minimum (other
/// allocators are within a few bytes of this). Zero bytes allocate nothing.
pub const fn heap_block(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8).div_ceil(16) * 16;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// The memory a payload-carrying entry adds beyond its payload bytes when it is a fresh
/// entry: its slot in the entry table (`size_of::<Entry>()`, before the table's own growth)
/// and its payload's heap block overhead for a one-byte payload (the worst case). Limits
/// that are checked before an entry exists reserve this much per entry.
pub const ENTRY_COST: usize = core::mem::size_of::<Entry>() + heap_block(1) - 1;

/// One timed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Bytes received from the server.
    Recv(Timestamp, Vec<u8>),
    /// Bytes the client sent.
    Send(Timestamp, Vec<u8>),
    /// The server closed the connection (or the connection was lost).
    Eof(Timestamp),
    /// A timer fired: the driver called `handle_timeout` at this time.
    Tick(Timestamp),
}

impl Entry {
    /// The entry's time.
    pub fn time(&self) -> Timestamp {
        match self {
            Entry::Recv(t, _) | Entry::Send(t, _) | Entry::Eof(t) | Entry::Tick(t) => *t,
        }
    }

    fn payload_len(&self) -> usize {
        match self {
            Entry::Recv(_, b) | Entry::Send(_, b) => b.len(),
            Entry::Eof(_) | Entry::Tick(_) => 0,
        }
    }

    /// The payload's heap block, at its allocated capacity.
    fn payload_heap(&self) -> usize {
        match self {
            Entry::Recv(_, b) | Entry::Send(_, b) => heap_block(b.capacity()),
            Entry::Eof(_) | Entry::Tick(_) => 0,
        }
    }
}

/// A session's transcript: metadata (host, port, ip, configuration) and timed entries.
///
/// Entries are added with [`Transcript::push`], which keeps the payload count and the
/// memory count ([`Transcript::cost`]) up to date and enforces the limits.
#[derive(Debug, Default, Eq)]
pub struct Transcript {
    /// `meta KEY VALUE` lines, in order. Keys are single words; values run to the line end.
    pub meta: Vec<(String, String)>,
    /// The entries in time order.
    pub entries: Vec<Entry>,
    /// Set when an entry was dropped because a limit was reached.
    pub truncated: bool,
    bytes: usize,
    /// Heap bytes of `entries` and their payloads, as [`heap_block`] counts them.
    cost: usize,
}

impl PartialEq for Transcript {
    /// Same metadata, entries and truncation; how much spare capacity each holds is not
    /// part of a transcript's value.
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
            && self.entries == other.entries
            && self.truncated == other.truncated
    }
}

impl Clone for Transcript {
    /// A compact copy: every vector exactly its length, and the cost counted anew.
    fn clone(&self) -> Self {
        let mut t = Transcript {
            meta: self.meta.clone(),
            entries: self.entries.clone(),
            truncated: self.truncated,
            bytes: self.bytes,
            cost: 0,
        };
        t.cost = t.count_cost();
        t
    }
}

/// Why a transcript text could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transcript line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) a metadata value.
    pub fn set_meta(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        debug_assert!(!key.contains(char::is_whitespace));
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.meta.push((key.to_owned(), value)),
        }
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Appends an entry, merging it into the previous one when both carry bytes in the same
    /// direction at the same time. Returns `false` (and sets `truncated`) when a limit
    /// dropped it: [`MAX_TRANSCRIPT_ENTRIES`], [`MAX_TRANSCRIPT_BYTES`] of payload, or
    /// [`MAX_TRANSCRIPT_COST`] of memory.
    pub fn push(&mut self, entry: Entry) -> bool {
        self.push_within(entry, MAX_TRANSCRIPT_COST)
    }

    /// [`Transcript::push`] with a tighter memory bound: the entry is dropped (and
    /// `truncated` set) when [`Transcript::cost`] would pass `max_cost` with it (a fresh
    /// entry is reckoned at its payload plus [`ENTRY_COST`] before it is stored). The proxy
    /// bounds each session's recording this way.
    pub fn push_within(&mut self, entry: Entry, max_cost: usize) -> bool {
        let len = entry.payload_len();
        if self.entries.len() >= MAX_TRANSCRIPT_ENTRIES
            || self.bytes + len > MAX_TRANSCRIPT_BYTES
            || self.cost + self.growth(&entry) > max_cost.min(MAX_TRANSCRIPT_COST)
        {
            self.truncated = true;
            return false;
        }
        self.bytes += len;
        let table = self.entries.capacity();
        match (self.entries.last_mut(), entry) {
            (Some(Entry::Recv(t0, a)), Entry::Recv(t1, b))
            | (Some(Entry::Send(t0, a)), Entry::Send(t1, b))
                if *t0 == t1 =>
            {
                let before = heap_block(a.capacity());
                a.extend_from_slice(&b);
                self.cost = self.cost.saturating_sub(before) + heap_block(a.capacity());
            }
            (_, entry) => {
                self.cost += entry.payload_heap();
                self.entries.push(entry);
            }
        }
        let entry_size = core::mem::size_of::<Entry>();
        // `saturating_sub`: entries pushed straight into the public vector are not counted,
        // and must not make the count wrap.
        self.cost = self.cost.saturating_sub(heap_block(table * entry_size))
            + heap_block(self.entries.capacity() * entry_size);
        true
    }

    /// What pushing `entry` would add to [`Transcript::cost`]: a merged entry's payload
    /// block growing (vectors double), or a fresh entry's payload block and the entry
    /// table's doubling when it is full. A forecast of `Vec`'s growth, checked before the
    /// push; the count after it is exact.
    fn growth(&self, entry: &Entry) -> usize {
        let grown = |cap: usize, need: usize, min: usize| {
            if need <= cap {
                0
            } else {
                (2 * cap).max(need).max(min)
            }
        };
        let merging = match (self.entries.last(), entry) {
            (Some(Entry::Recv(t0, a)), Entry::Recv(t1, b))
            | (Some(Entry::Send(t0, a)), Entry::Send(t1, b))
                if t0 == t1 =>
            {
                Some((a, b.len()))
            }
            _ => None,
        };
        if let Some((a, more)) = merging {
            let new = grown(a.capacity(), a.len() + more, 8);
            return if new == 0 {
                0
            } else {
                heap_block(new) - heap_block(a.capacity())
            };
        }
        let size = core::mem::size_of::<Entry>();
        let cap = self.entries.capacity();
        let table = match grown(cap, self.entries.len() + 1, 4) {
            0 => 0,
            new => heap_block(new * size) - heap_block(cap * size),
        };
        table + entry.payload_heap().max(heap_block(entry.payload_len()))
    }

    /// Total payload bytes held.
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }

    /// Heap bytes the entries take: the entry table and every payload's heap block, at
    /// their allocated capacity, rounded as [`heap_block`] does. This, not
    /// [`Transcript::payload_bytes`], is what memory limits on transcripts count.
    pub fn cost(&self) -> usize {
        self.cost
    }

    fn count_cost(&self) -> usize {
        heap_block(self.entries.capacity() * core::mem::size_of::<Entry>())
            + self.entries.iter().map(Entry::payload_heap).sum::<usize>()
    }

    /// Writes the stable text form.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.bytes * 2);
        out.push_str(MAGIC);
        out.push('\n');
        for (k, v) in &self.meta {
            out.push_str("meta ");
            out.push_str(k);
            out.push(' ');
            // Values are single-line by construction; escape stray line breaks anyway.
            out.push_str(&v.replace(['\n', '\r'], " "));
            out.push('\n');
        }
        if self.truncated {
            out.push_str("truncated\n");
        }
        for e in &self.entries {
            let (t, word, bytes) = match e {
                Entry::Recv(t, b) => (t, "recv", Some(b)),
                Entry::Send(t, b) => (t, "send", Some(b)),
                Entry::Eof(t) => (t, "eof", None),
                Entry::Tick(t) => (t, "tick", None),
            };
            out.push_str(&t.0.to_string());
            out.push(' ');
            out.push_str(word);
            if let Some(b) = bytes {
                out.push(' ');
                escape_into(b, &mut out);
            }
            out.push('\n');
        }
        out
    }

    /// Reads the text form. Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Transcript, ParseError> {
        let mut t = Transcript::new();
        let mut saw_magic = false;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: &str| ParseError {
                line: line_no,
                message: message.to_owned(),
            };
            let line = raw.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !saw_magic {
                if line != MAGIC {
                    return Err(err("expected `iacscope-transcript 1`"));
                }
                saw_magic = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("meta ") {
                let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                t.meta.push((k.to_owned(), v.to_owned()));
                continue;
            }
            if line == "truncated" {
                t.truncated = true;
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            let time = parts
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| err("expected a time in microseconds"))?;
            let time = Timestamp(time);
            if let Some(last) = t.entries.last() {
                if last.time() > time {
                    return Err(err("time goes backwards"));
                }
            }
            let word = parts.next().unwrap_or("");
            let arg = parts.next();
            let entry = match (word, arg) {
                ("recv", Some(a)) => Entry::Recv(time, unescape(a).map_err(|m| err(&m))?),
                ("send", Some(a)) => Entry::Send(time, unescape(a).map_err(|m| err(&m))?),
                ("recv", None) => Entry::Recv(time, Vec::new()),
                ("send", None) => Entry::Send(time, Vec::new()),
                ("eof", None) => Entry::Eof(time),
                ("tick", None) => Entry::Tick(time),
                _ => return Err(err("expected recv, send, eof or tick")),
            };
            if !t.push(entry) {
                return Err(err("transcript exceeds its size limit"));
            }
        }
        if !saw_magic {
            return Err(ParseError {
                line: 1,
                message: "empty transcript".into(),
            });
        }
        Ok(t)
    }
}

/// Escapes bytes the transcript way: 0x21..=0x7E but `%` as is, everything else `%XX`.
pub fn escape_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Reverses [`escape_into`]. Spaces are allowed (and skipped) so hand-written scripts can
/// group bytes: `%FF%FB %18`.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape at column {}", i + 1))?;
                out.push(hex);
                i += 3;
            }
            b' ' | b'\t' => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut t = Transcript::new();
        t.set_meta("host", "example.org");
        t.push(Entry::Send(Timestamp(0), vec![0xff, 0xfb, 0x56]));
        t.push(Entry::Recv(Timestamp(1200), b"Ready.\r\n% done".to_vec()));
        t.push(Entry::Tick(Timestamp(4_000_000)));
        t.push(Entry::Eof(Timestamp(7_100_000)));
        let text = t.to_text();
        assert!(
            text.contains("1200 recv Ready.%0D%0A%25%20done\n"),
            "{text}"
        );
        assert_eq!(Transcript::parse(&text).unwrap(), t);
    }

    #[test]
    fn merges_same_time_same_direction() {
        let mut t = Transcript::new();
        t.push(Entry::Recv(Timestamp(5), b"ab".to_vec()));
        t.push(Entry::Recv(Timestamp(5), b"cd".to_vec()));
        t.push(Entry::Recv(Timestamp(6), b"e".to_vec()));
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0], Entry::Recv(Timestamp(5), b"abcd".to_vec()));
    }

    #[test]
    fn limits_are_recorded_not_fatal() {
        let mut t = Transcript::new();
        assert!(t.push(Entry::Recv(Timestamp(0), vec![0; MAX_TRANSCRIPT_BYTES])));
        assert!(!t.push(Entry::Recv(Timestamp(1), vec![1])));
        assert!(t.truncated);
        assert!(t.to_text().contains("\ntruncated\n"));
    }

    /// A flood of one-byte entries is bounded by what it costs, not by its payload: 200,000
    /// one-byte sends are 200 KB of payload but several MiB of memory. The bound holds for
    /// any bound, also where the entry table's doubling would pass it.
    #[test]
    fn tiny_entries_count_their_real_cost() {
        for limit in [1024 * 1024, 1_258_291, 700_001] {
            let mut t = Transcript::new();
            for i in 0..100_000u64 {
                t.push_within(Entry::Send(Timestamp(i), vec![b'x']), limit);
            }
            assert!(t.truncated);
            assert!(t.cost() <= limit, "{} > {limit}", t.cost());
        }
        let limit = 1024 * 1024;
        let mut t = Transcript::new();
        let mut kept = 0;
        for i in 0..200_000u64 {
            if t.push_within(Entry::Send(Timestamp(i), vec![b'x']), limit) {
                kept += 1;
            }
        }
        assert!(t.truncated);
        assert!(t.cost() <= limit, "{} > {limit}", t.cost());
        assert!(kept < 20_000, "{kept} one-byte entries fit in 1 MiB");
        // The count matches a fresh count, and a compact copy costs no more.
        assert_eq!(t.cost(), t.count_cost());
        assert!(t.clone().cost() <= t.cost());
        // Each kept entry costs at least its table slot and a minimum heap block.
        assert!(t.cost() >= kept * (core::mem::size_of::<Entry>() + 32));
        // Merged entries (same direction, same time) grow one block, not many.
        let mut m = Transcript::new();
        for _ in 0..1000 {
            m.push(Entry::Recv(Timestamp(7), vec![b'y']));
        }
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.cost(), m.count_cost());
        assert!(m.cost() < 2 * 1024 + 64, "{}", m.cost());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = Transcript::parse("iacscope-transcript 1\n5 recv %G0\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Transcript::parse("iacscope-transcript 1\n5 tick\n4 tick\n").unwrap_err();
        assert_eq!(e.message, "time goes backwards");
        assert!(Transcript::parse("hello").is_err());
    }
}
