//! CPython 3.11's `punycode` and `idna` decoders (`Lib/encodings/punycode.py`, `idna.py`):
//! RFC 3492 decoding with Python's own error handling, and IDNA 2003's ToUnicode of each label.
//!
//! punycode raises UnicodeError under "surrogateescape" (it takes "strict", "replace" and
//! "ignore"); under "replace" a bad digit or a cut number ends decoding with what was decoded
//! so far, and a code point above U+10FFFF becomes `?`. Python's integers have no bound, and
//! neither do the numbers here (`Big`): a long run of digits makes a huge number, which CPython
//! then reduces exactly (and slowly, as here).
//!
//! idna raises UnicodeError under any handler but "strict". ToUnicode checks an `xn--` label
//! by encoding its decoded text again with ToASCII, through nameprep (RFC 3491: stringprep's
//! B.1 and B.2 mappings, NFKC and prohibited characters under Unicode 3.2, the bidi rules;
//! `codec/unidata.rs`), and refuses a label that does not come back the same.

use super::unidata::Nameprep;
use super::{Errors, PyStr, Raised};

/// A non-negative integer of any size, little-endian 32-bit limbs, no high zero limbs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// The value, if it fits in a `u64`.
    fn small(&self) -> Option<u64> {
        match self.0[..] {
            [] => Some(0),
            [a] => Some(u64::from(a)),
            [a, b] => Some(u64::from(a) | u64::from(b) << 32),
            _ => None,
        }
    }

    /// `self += other * m`.
    fn add_mul(&mut self, other: &Big, m: u32) {
        if self.0.len() < other.0.len() + 1 {
            self.0.resize(other.0.len() + 1, 0);
        }
        let mut carry = 0u64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let add = other.0.get(i).map_or(0, |&o| u64::from(o) * u64::from(m));
            let sum = u64::from(*limb) + add + carry;
            *limb = sum as u32;
            carry = sum >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    /// `self *= m`.
    fn mul(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let prod = u64::from(*limb) * u64::from(m) + carry;
            *limb = prod as u32;
            carry = prod >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    /// `(self // d, self % d)` for `d > 0`.
    fn div_rem(&self, d: u32) -> (Big, u32) {
        let d = u64::from(d.max(1));
        let mut q = vec![0u32; self.0.len()];
        let mut rem = 0u64;
        for (i, &limb) in self.0.iter().enumerate().rev() {
            let cur = rem << 32 | u64::from(limb);
            q[i] = (cur / d) as u32;
            rem = cur % d;
        }
        let mut q = Big(q);
        q.trim();
        (q, rem as u32)
    }
}

/// Punycode's `T(j, bias)`: the threshold of digit `j`, 1..=26.
fn threshold(j: u64, bias: u64) -> u32 {
    (36 * (j as i128 + 1) - bias as i128).clamp(1, 26) as u32
}

/// Punycode's `adapt` (RFC 3492 §6.1), for any size of `delta`.
fn adapt(delta: &Big, first: bool, numchars: usize) -> u64 {
    let (mut d, _) = delta.div_rem(if first { 700 } else { 2 });
    let (extra, _) = d.div_rem(u32::try_from(numchars).unwrap_or(u32::MAX));
    let mut sum = d.clone();
    sum.add_mul(&extra, 1);
    d = sum;
    let mut divisions = 0u64;
    loop {
        match d.small() {
            Some(v) if v <= 455 => return divisions + 36 * v / (v + 38),
            _ => {
                d = d.div_rem(35).0;
                divisions += 36;
            }
        }
    }
}

/// `decode_generalized_number`: the number at `ext[pos..]` and where it ends; `None` for the
/// number where "replace" gives up (a byte that is not a digit, or the end).
fn generalized_number(
    ext: &[u8],
    mut pos: usize,
    bias: u64,
    strict: bool,
) -> Result<(usize, Option<Big>), Raised> {
    let mut result = Big::default();
    let mut w = Big::from_u64(1);
    let mut j = 0u64;
    loop {
        let digit = match ext.get(pos) {
            Some(&c @ b'A'..=b'Z') => u32::from(c - b'A'),
            Some(&c @ b'0'..=b'9') => u32::from(c) - 22,
            // "incomplete punicode string" / "Invalid extended code point".
            _ if strict => return Err(Raised::Other),
            None => return Ok((pos + 1, None)),
            Some(_) => return Ok((pos + 1, None)),
        };
        pos += 1;
        let t = threshold(j, bias);
        result.add_mul(&w, digit);
        if digit < t {
            return Ok((pos, Some(result)));
        }
        w.mul(36 - t);
        j += 1;
    }
}

/// `punycode_decode` with "strict" (`strict`) or "replace".
fn punycode(text: &[u8], strict: bool) -> Result<Vec<u32>, Raised> {
    let (mut base, ext) = match text.iter().rposition(|&b| b == b'-') {
        None => (Vec::new(), text),
        Some(dash) => {
            let (head, tail) = text.split_at(dash);
            // `str(text[:pos], "ascii", errors)`: one U+FFFD per byte >= 0x80.
            if strict && !head.is_ascii() {
                return Err(Raised::UnicodeDecode);
            }
            let base = head
                .iter()
                .map(|&b| if b < 0x80 { u32::from(b) } else { 0xFFFD })
                .collect();
            (base, tail.get(1..).unwrap_or_default())
        }
    };
    // `str(…, "ascii").upper()`, strict whatever the handler.
    if !ext.is_ascii() {
        return Err(Raised::UnicodeDecode);
    }
    let ext = ext.to_ascii_uppercase();
    // `insertion_sort`.
    let mut ch = 0x80u32;
    let mut pos = Big::default();
    let mut first = true;
    let mut bias = 72u64;
    let mut extpos = 0;
    while extpos < ext.len() {
        let (next, delta) = generalized_number(&ext, extpos, bias, strict)?;
        let Some(delta) = delta else {
            // "We can't continue because synchronization is lost."
            return Ok(base);
        };
        // pos += delta + 1 (pos starts at -1).
        let mut total = delta.clone();
        total.add_mul(&pos, 1);
        if !first {
            total.add_mul(&Big::from_u64(1), 1);
        }
        let (q, r) = total.div_rem(u32::try_from(base.len() + 1).unwrap_or(u32::MAX));
        match q
            .small()
            .and_then(|q| u32::try_from(q).ok())
            .and_then(|q| ch.checked_add(q))
        {
            Some(c) if c <= 0x10_FFFF => ch = c,
            // "Invalid character U+…".
            _ if strict => return Err(Raised::Other),
            _ => ch = u32::from(b'?'),
        }
        let at = (r as usize).min(base.len());
        base.insert(at, ch);
        pos = Big::from_u64(at as u64);
        bias = adapt(&delta, extpos == 0, base.len());
        first = false;
        extpos = next;
    }
    Ok(base)
}

/// `bytes.decode("punycode", errors)`.
pub(super) fn decode_punycode(bytes: &[u8], errors: Errors) -> Result<PyStr, Raised> {
    match errors {
        Errors::Strict => punycode(bytes, true).map(PyStr),
        Errors::Replace => punycode(bytes, false).map(PyStr),
        // "Unsupported error handling surrogateescape".
        Errors::SurrogateEscape => Err(Raised::Other),
    }
}

/// `punycode_encode` (`segregate`, `insertion_unsort`, `generate_integers`).
pub(super) fn punycode_encode(text: &[u32]) -> Vec<u8> {
    let mut out: Vec<u8> = text
        .iter()
        .filter(|&&c| c < 0x80)
        .map(|&c| c as u8)
        .collect();
    let base_len = out.len();
    if base_len > 0 {
        out.push(b'-');
    }
    let mut deltas: Vec<u64> = Vec::new();
    let (mut old_char, mut old_index) = (0x80u64, -1i64);
    // The distinct code points >= 0x80 in increasing order (no sort: it would cost the
    // browser bundle 4 KB of sorting code).
    let next_above = |floor: u32| text.iter().copied().filter(|&c| c >= floor).min();
    let mut next = next_above(0x80);
    while let Some(c) = next {
        next = c.checked_add(1).and_then(next_above);
        let below = text.iter().filter(|&&x| x < c).count() as u64;
        let mut delta = (below + 1) * (u64::from(c) - old_char);
        let mut index = -1i64;
        for &x in text {
            if x < c {
                index += 1;
            } else if x == c {
                index += 1;
                deltas.push((delta as i64 + index - old_index - 1) as u64);
                old_index = index;
                delta = 0;
            }
        }
        old_char = u64::from(c);
    }
    let digit = |d: u64| b"abcdefghijklmnopqrstuvwxyz0123456789"[(d % 36) as usize];
    let mut bias = 72u64;
    for (points, &delta) in deltas.iter().enumerate() {
        let mut n = delta;
        let mut j = 0;
        loop {
            let t = u64::from(threshold(j, bias));
            if n < t {
                out.push(digit(n));
                break;
            }
            out.push(digit(t + (n - t) % (36 - t)));
            n = (n - t) / (36 - t);
            j += 1;
        }
        bias = adapt(&Big::from_u64(delta), points == 0, base_len + points + 1);
    }
    out
}

/// idna.py `ToASCII` of a decoded label.
fn to_ascii(label: &[u32], tables: &Nameprep) -> Result<Vec<u8>, Raised> {
    let ok = |l: Vec<u8>| {
        if (1..64).contains(&l.len()) {
            Ok(l)
        } else {
            // "label empty or too long".
            Err(Raised::Other)
        }
    };
    if label.iter().all(|&c| c < 0x80) {
        return ok(label.iter().map(|&c| c as u8).collect());
    }
    // `nameprep` raises UnicodeError ("Invalid character", "Violation of BIDI requirement").
    let prepped = tables.nameprep(label).map_err(|()| Raised::Other)?;
    if prepped.iter().all(|&c| c < 0x80) {
        return ok(prepped.iter().map(|&c| c as u8).collect());
    }
    if prepped.starts_with(&[0x78, 0x6E, 0x2D, 0x2D]) {
        // "Label starts with ACE prefix".
        return Err(Raised::Other);
    }
    ok([&b"xn--"[..], &punycode_encode(&prepped)].concat())
}

/// idna.py `ToUnicode` of one label (bytes, so never nameprepped).
fn to_unicode(label: &[u8], tables: &Nameprep) -> Result<Vec<u32>, Raised> {
    let Some(rest) = label.strip_prefix(b"xn--") else {
        if !label.is_ascii() {
            return Err(Raised::UnicodeDecode);
        }
        return Ok(label.iter().map(|&b| u32::from(b)).collect());
    };
    let result = punycode(rest, true)?;
    // ToASCII's answer is shorter than 64 bytes or UnicodeError, and so is every error of
    // nameprep: a label of 64 bytes or more cannot round-trip (Step 7), whatever nameprep
    // does. Skipping it bounds nameprep's work (its canonical ordering is quadratic, in
    // CPython's `nfd_nfkd` as here) to labels of at most 59 code points.
    if label.len() >= 64 {
        return Err(Raised::Other);
    }
    let again = to_ascii(&result, tables)?;
    if label.to_ascii_lowercase() != again {
        // "IDNA does not round-trip".
        return Err(Raised::Other);
    }
    Ok(result)
}

/// `bytes.decode("idna", errors)`.
pub(super) fn decode_idna(
    bytes: &[u8],
    errors: Errors,
    tables: &Nameprep,
) -> Result<PyStr, Raised> {
    if errors != Errors::Strict {
        // "Unsupported error handling …".
        return Err(Raised::Other);
    }
    if bytes.is_ascii() && !bytes.windows(4).any(|w| w == b"xn--") {
        return Ok(PyStr::from_latin1(bytes));
    }
    let mut labels: Vec<&[u8]> = bytes.split(|&b| b == b'.').collect();
    let trailing_dot = labels.last().is_some_and(|l| l.is_empty());
    if trailing_dot {
        labels.pop();
    }
    let mut out = PyStr::new();
    for (i, label) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push(u32::from(b'.'));
        }
        out.0.extend(to_unicode(label, tables)?);
    }
    if trailing_dot {
        out.push(u32::from(b'.'));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Vec<u32> {
        text.chars().map(u32::from).collect()
    }

    /// CPython 3.11's answers.
    #[test]
    fn punycode_and_idna_match_python() {
        assert_eq!(punycode(b"bcher-kva", true), Ok(s("bücher")));
        assert_eq!(
            punycode(b"ihqwcrb4cv8a8dqg056pqjye", true),
            Ok(s("他们为什么不说中文"))
        );
        assert_eq!(punycode_encode(&s("bücher")), b"bcher-kva");
        assert_eq!(
            punycode_encode(&s("他们为什么不说中文")),
            b"ihqwcrb4cv8a8dqg056pqjye"
        );
        // A bad digit: strict raises UnicodeError, replace stops with what it has.
        assert_eq!(punycode(b"abc-d!", true), Err(Raised::Other));
        assert_eq!(punycode(b"abc-d!", false), Ok(s("abc")));
        assert_eq!(punycode(b"abc-kva!", false), Ok(s("aĺbc")));
        let idna =
            |b: &[u8], errors| decode_idna(b, errors, super::super::unidata::nameprep().unwrap());
        assert_eq!(
            idna(b"www.xn--bcher-kva.example.", Errors::Strict),
            Ok(PyStr::from("www.bücher.example."))
        );
        assert_eq!(idna(b"plain", Errors::Replace), Err(Raised::Other));
        // An ACE label that decodes to ASCII does not round-trip.
        assert_eq!(idna(b"xn--abc-", Errors::Strict), Err(Raised::Other));
        // Numbers past 64 bits are exact: their size decides the next bias (Python's answer).
        let huge = [&[b'9'; 60][..], b"a9a9a9a"].concat();
        assert_eq!(punycode(&huge, false), Ok(s("f]Q?")));
        assert_eq!(punycode(&huge, true), Err(Raised::Other));
    }

    /// nameprep, as CPython 3.11 answers: `xn--a` is U+0080, a prohibited control; `xn--zca`
    /// is ß, which nameprep maps to "ss" (no round trip); `xn--Mnchen-3ya` is "München", which
    /// nameprep lowercases to the label's own "münchen"; `xn--d-ifa` is "dÛ", which nameprep
    /// lowercases, so it encodes back to another label (`xn--d-cha`).
    #[test]
    fn idna_runs_nameprep() {
        let tables = super::super::unidata::nameprep().unwrap();
        let idna = |b: &[u8]| decode_idna(b, Errors::Strict, tables);
        assert_eq!(idna(b"xn--a"), Err(Raised::Other));
        assert_eq!(idna(b"xn--zca"), Err(Raised::Other));
        assert_eq!(idna(b"xn--Mnchen-3ya"), Ok(PyStr::from("München")));
        assert_eq!(idna(b"xn--4gbrim"), Ok(PyStr::from("موقع")));
        assert_eq!(idna(b"xn--ls8h"), Ok(PyStr::from("💩")));
        assert_eq!(idna(b"xn--d-ifa"), Err(Raised::Other));
    }
}
