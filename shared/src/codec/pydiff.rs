//! Differential tests of the decoders against the CPython on the machine (`python3`, or
//! `$IACSCOPE_PYTHON`; the reference is 3.11, with telnetlib3 for its big5bbs): every 1- and
//! 2-byte input, the longer sequences each decoder has (euc_jp's 3-byte JIS X 0212, every
//! gb18030 4-byte run boundary and a dense sample between, euc_kr's 8-byte make-up sequences,
//! UTF-16 surrogate combinations) with their truncations, and seeded random inputs, each
//! decoded with "strict", "replace" and "surrogateescape"; for the stateful codecs (ISO-2022,
//! hz, utf-7, the escape codecs, punycode, idna) also every 3-byte input after their shift
//! byte and seeded random mixes of their sequences (see `stateful_inputs`). Which exception
//! Python raises counts too (UnicodeDecodeError or another). One Python process per codec
//! reads all inputs from stdin and writes all answers to stdout. Skipped, with a message,
//! when there is no Python.

use super::{py_decode, Errors, Outcome, PyStr, Raised};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Decodes every input it is given with the three handlers. Input: u32 count, then per input
/// u32 length + bytes. Output per input and handler: u32 0xFFFFFFFF when Python raises
/// UnicodeDecodeError, 0xFFFFFFFE when it raises anything else, else u32 length + the code
/// points as u32 (little-endian throughout).
const PY_SCRIPT: &str = r#"
import struct, sys
from array import array
try:
    import telnetlib3.encodings  # big5bbs
except ImportError:
    pass
name = sys.argv[1]
data = sys.stdin.buffer.read()
(n,) = struct.unpack_from("<I", data, 0)
pos = 4
out = bytearray()
for _ in range(n):
    (ln,) = struct.unpack_from("<I", data, pos)
    pos += 4
    b = data[pos:pos + ln]
    pos += ln
    for errors in ("strict", "replace", "surrogateescape"):
        try:
            s = b.decode(name, errors)
        except UnicodeDecodeError:
            out += b"\xff\xff\xff\xff"
            continue
        except Exception:
            out += b"\xfe\xff\xff\xff"
            continue
        out += struct.pack("<I", len(s))
        out += array("I", map(ord, s)).tobytes()
sys.stdout.buffer.write(out)
"#;

const HANDLERS: [(Errors, &str); 3] = [
    (Errors::Strict, "strict"),
    (Errors::Replace, "replace"),
    (Errors::SurrogateEscape, "surrogateescape"),
];

/// Every codec under test, by a name Python and `find` both know.
pub(super) const CODECS: &[&str] = &[
    "big5",
    "gbk",
    "gb2312",
    "gb18030",
    "big5hkscs",
    "cp950",
    "euc_jp",
    "shift_jis",
    "cp932",
    "euc_kr",
    "cp949",
    "johab",
    "euc_jis_2004",
    "euc_jisx0213",
    "shift_jis_2004",
    "shift_jisx0213",
    "big5bbs",
    "undefined",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
];

/// The stateful codecs, with inputs of their own (`stateful_inputs`) besides the short ones.
pub(super) const STATEFUL: &[&str] = &[
    "iso2022_jp",
    "iso2022_jp_1",
    "iso2022_jp_2",
    "iso2022_jp_2004",
    "iso2022_jp_3",
    "iso2022_jp_ext",
    "iso2022_kr",
    "hz",
    "utf-7",
    "unicode_escape",
    "raw_unicode_escape",
    "punycode",
    "idna",
];

/// telnetlib3's codecs: compared only when the Python has telnetlib3.
const TELNETLIB3: &[&str] = &["big5bbs", "atarist", "atascii", "petscii"];

fn python() -> Option<String> {
    let exe = std::env::var("IACSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&exe).arg("--version").output().ok()?;
    out.status.success().then_some(exe)
}

/// Whether `exe` has telnetlib3 (for its codecs).
fn has_telnetlib3(exe: &str) -> bool {
    Command::new(exe)
        .args(["-c", "import telnetlib3.encodings"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// One decode's result: the code points, or what was raised.
type Answer = Result<Vec<u32>, Raised>;

/// Python's answers for `inputs`, per input the three handlers' results.
fn ask_python(exe: &str, codec: &str, inputs: &[Vec<u8>]) -> Vec<[Answer; 3]> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&u32::try_from(inputs.len()).unwrap().to_le_bytes());
    for input in inputs {
        payload.extend_from_slice(&u32::try_from(input.len()).unwrap().to_le_bytes());
        payload.extend_from_slice(input);
    }
    let mut child = Command::new(exe)
        .args(["-c", PY_SCRIPT, codec])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let mut raw = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut raw).unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success(), "python failed on {codec}");
    let mut words = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()));
    let mut answers = Vec::with_capacity(inputs.len());
    for _ in inputs {
        let mut one = [const { Err(Raised::Other) }; 3];
        for slot in &mut one {
            *slot = match words.next().expect("short python output") {
                u32::MAX => Err(Raised::UnicodeDecode),
                0xFFFF_FFFE => Err(Raised::Other),
                len => Ok(words.by_ref().take(len as usize).collect()),
            };
        }
        answers.push(one);
    }
    assert!(words.next().is_none(), "long python output for {codec}");
    answers
}

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[3]
    }
}

/// gb18030's 4-byte sequence of linear index `i` (first byte from 0x81).
fn gb4(i: u32) -> Vec<u8> {
    let b = |v: u32| u8::try_from(v).unwrap();
    vec![
        b(0x81 + i / 12600),
        b(0x30 + i / 1260 % 10),
        b(0x81 + i / 10 % 126),
        b(0x30 + i % 10),
    ]
}

/// `seq`, each of its proper prefixes, and each of those followed by ASCII and by a byte
/// >= 0x80 (how CPython groups a truncated sequence into error ranges).
fn with_truncations(out: &mut Vec<Vec<u8>>, seq: &[u8]) {
    for cut in 1..=seq.len() {
        let head = seq.get(..cut).unwrap_or_default();
        out.push(head.to_vec());
        if cut < seq.len() {
            out.push([head, b"A"].concat());
            out.push([head, b"\xb0"].concat());
        }
    }
}

/// The inputs every codec gets, plus the codec's own longer sequences.
fn inputs_for(codec: &str) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
    inputs.extend((0..=255u8).map(|a| vec![a]));
    inputs.extend((0..=255u8).flat_map(|a| (0..=255u8).map(move |b| vec![a, b])));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ codec.len() as u64);
    match codec {
        "euc_jp" | "euc_jis_2004" | "euc_jisx0213" => {
            inputs.extend((0..=255u8).flat_map(|b| (0..=255u8).map(move |c| vec![0x8F, b, c])));
            for seq in [&b"\x8f\xb0\xa1"[..], b"\x8e\xa1", b"\xa4\xa2"] {
                with_truncations(&mut inputs, seq);
            }
        }
        "gb18030" => {
            // Every run boundary of the BMP table (found by asking the table), a dense sample,
            // the ends of the supplementary planes, and the first bytes in between.
            let table = super::Cjk::Gb18030.table().unwrap();
            let mut indices: Vec<u32> = (0..39_430).step_by(3).collect();
            for &(start, _) in &table.ranges {
                indices.extend([start.saturating_sub(1), start, start + 1]);
            }
            indices.extend([table.range_end - 1, table.range_end, table.range_end + 1]);
            for i in indices {
                with_truncations(&mut inputs, &gb4(i));
            }
            for first in 0x80..=0xFFu8 {
                for seq in [[first, 0x30, 0x81, 0x30], [first, 0x39, 0xFE, 0x39]] {
                    inputs.push(seq.to_vec());
                }
            }
            for seq in [
                &b"\x90\x30\x81\x30"[..],
                b"\xe3\x32\x9a\x35",
                b"\xe3\x32\x9a\x36",
                b"\xe3\x33\x81\x30",
                b"\xfe\x39\xfe\x39",
                b"\x84\x31\xa4\x39",
                b"\x84\x31\xa5\x30",
                b"\x81\x30\x80\x30",
                b"\x81\x30\xff\x30",
                b"\x81\x30\x81\x2f",
                b"\x81\x30\x81\x3a",
                b"\x81\x30\x81\x30\x81\x30",
            ] {
                with_truncations(&mut inputs, seq);
            }
            for _ in 0..3000 {
                let i = u32::try_from(rng.below(126 * 12600)).unwrap();
                inputs.push(gb4(i));
            }
        }
        "euc_kr" => {
            // A4 D4 A4 cho A4 jung A4 jong, each position over every byte with the others valid.
            let base = *b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xd4";
            for pos in 1..8 {
                for v in 0..=255u8 {
                    let mut seq = base;
                    if let Some(b) = seq.get_mut(pos) {
                        *b = v;
                    }
                    inputs.push(seq.to_vec());
                }
            }
            for cho in 0xA1..=0xBEu8 {
                for jung in 0xBF..=0xD3u8 {
                    inputs.push(vec![0xA4, 0xD4, 0xA4, cho, 0xA4, jung, 0xA4, 0xD4]);
                }
            }
            with_truncations(&mut inputs, &base);
            with_truncations(&mut inputs, b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xbe\xa4\xd4");
        }
        _ => {}
    }
    if codec.starts_with("utf-16") {
        let units: [u16; 14] = [
            0x0041, 0x00E9, 0x4E2D, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xDC80, 0xD8DC, 0xFEFF, 0xFFFE,
            0x8080, 0x0080, 0x8000,
        ];
        let tails: [&[u8]; 4] = [b"", b"\x41", b"\xd8", b"\x80"];
        for le in [true, false] {
            let enc = |u: u16| if le { u.to_le_bytes() } else { u.to_be_bytes() };
            for &a in &units {
                for &b in &units {
                    for &c in &units {
                        for tail in tails {
                            let mut seq = [enc(a), enc(b), enc(c)].concat();
                            seq.extend_from_slice(tail);
                            inputs.push(seq);
                        }
                    }
                }
            }
        }
    }
    if codec.starts_with("utf-32") {
        let units: [u32; 12] = [
            0x41,
            0xFEFF,
            0xFFFE_0000,
            0xD800,
            0xDFFF,
            0xDC80,
            0x10_FFFF,
            0x11_0000,
            0x8080_8080,
            0x80,
            0x1F600,
            0xE9,
        ];
        for le in [true, false] {
            let enc = |u: u32| if le { u.to_le_bytes() } else { u.to_be_bytes() };
            for &a in &units {
                for &b in &units {
                    for tail in [&b""[..], b"\x80", b"\x41\x80", b"\x80\x80\x80"] {
                        let mut seq = [enc(a), enc(b)].concat();
                        seq.extend_from_slice(tail);
                        inputs.push(seq);
                    }
                }
            }
        }
    }
    // Random inputs leaning on bytes that start or continue sequences.
    for _ in 0..4000 {
        let len = rng.below(24) as usize;
        let seq = (0..len)
            .map(|_| match rng.below(10) {
                0..=3 => rng.byte() | 0x80,
                4 | 5 => 0x30 + rng.byte() % 10,
                6 => [0x00, 0xA4, 0xD4, 0x8F, 0xD8, 0xDC, 0xFE, 0xFF][rng.below(8) as usize],
                _ => rng.byte(),
            })
            .collect();
        inputs.push(seq);
    }
    inputs
}

/// The escape sequences and shift bytes of a stateful codec, whether it takes them or not.
fn tokens(codec: &str) -> Vec<Vec<u8>> {
    let list: &[&[u8]] = match codec {
        "hz" => &[
            b"~{", b"~}", b"~~", b"~\n", b"~", b"~x", b"~\x80", b"\n", b"{", b"}",
        ],
        "utf-7" => &[
            b"+",
            b"-",
            b"+-",
            b"+AGE-",
            b"+AGE",
            b"+2D3cAA-",
            b"+2D0",
            b"+2D3c",
            b"+3AA",
            b"+AB",
            b"+A",
            b"+AAA",
            b"+AAB",
            b"+ZeVnLIqe",
            b"A",
            b"/",
            b"9",
            b"\xe9",
            b"!",
            b"\\",
            b"~",
            b" ",
        ],
        "unicode_escape" | "raw_unicode_escape" => &[
            b"\\",
            b"\\x",
            b"\\x4",
            b"\\x41",
            b"\\xe9",
            b"\\u",
            b"\\u00e9",
            b"\\ud800",
            b"\\U0001F600",
            b"\\U00110000",
            b"\\UFFFFFFFF",
            b"\\N",
            b"\\N{",
            b"\\N{}",
            b"\\N{x}",
            b"\\N{qq",
            b"\\7",
            b"\\77",
            b"\\777",
            b"\\400",
            b"\\n",
            b"\\\n",
            b"\\q",
            b"\\\\",
            b"0",
            b"7",
            b"8",
            b"f",
            b"g",
            b"F",
            b"{",
            b"}",
            b"u",
            b"U",
            b"\xe9",
            b"\n",
        ],
        "punycode" | "idna" => &[
            b"xn--",
            b"XN--",
            b"-",
            b".",
            b"a",
            b"Z",
            b"9",
            b"bcher-kva",
            b"ihqwcrb4cv8a8dqg056pqjye",
            b"999999999999",
            b"zzzzzz",
            b"\xe9",
            b"!",
            b"xn--bcher-kva",
            b"xn--abc-",
            b"xn--2da",
            b"xn--ls8h",
            b"xn--zca",
            b"xn--BCHER-KVA",
            b"xn--4gbrim",
        ],
        _ => &[],
    };
    if !list.is_empty() {
        return list.iter().map(|t| t.to_vec()).collect();
    }
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    for inter in [
        &b"("[..],
        b")",
        b".",
        b"$",
        b"&",
        b"$(",
        b"$)",
        b"$.",
        b"$$",
    ] {
        for fin in (b'@'..=b'Z').chain([b'0', b'a']) {
            tokens.push([&b"\x1b"[..], inter, &[fin]].concat());
        }
    }
    for t in [
        &b"\x1b&@\x1b$B"[..],
        b"\x1b&@X$B",
        b"\x1b&@\x1b$A",
        b"\x1b&@",
        b"\x1b(\x1b(B",
        b"\x1b$(((((((((((((((B",
        b"\x1b$((((((((((((((B",
        b"\x1bN",
        b"\x1bNA",
        b"\x1bN\xe1",
        b"\x1bN\x20",
        b"\x1b",
        b"\x1b[0m",
        b"\x1b[1;31m",
        b"\x1b]0;t\x07",
        b"\x0e",
        b"\x0f",
        b"\n",
        b"\r\n",
        b"@",
        b"Z",
    ] {
        tokens.push(t.to_vec());
    }
    tokens
}

/// Inputs for the stateful codecs (`STATEFUL`), besides the short ones: every 3-byte input
/// starting with the escape byte (ESC, or `~` for hz); after every designation of G0 the
/// codec takes (as iacscope sees it: each is also compared alone; for iso2022_kr, of G1 then
/// SO), each byte 0x20..=0x7F alone and before a sample of second bytes (which pairs a set
/// has is checked exhaustively by gen_codecs.py, against the table it is looked up in);
/// each token's truncations; and seeded random mixes of tokens, text and bytes.
fn stateful_inputs(codec: &str) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let lead = match codec {
        "hz" => b'~',
        "utf-7" => b'+',
        "unicode_escape" | "raw_unicode_escape" => b'\\',
        "punycode" => b'-',
        "idna" => b'.',
        _ => 0x1B,
    };
    inputs.extend((0..=255u8).flat_map(|a| (0..=255u8).map(move |b| vec![lead, a, b])));
    let tokens = tokens(codec);
    let kr = codec == "iso2022_kr";
    let mut designations: Vec<Vec<u8>> = tokens
        .iter()
        .filter(|t| {
            t.first() == Some(&0x1B)
                && t.len() > 2
                && !matches!(t.get(1), Some(b'N' | b'.'))
                && (kr || !t.contains(&b')'))
                && ours(codec, t, Errors::Strict) == Ok(Vec::new())
        })
        .map(|t| {
            if codec == "iso2022_kr" {
                [t, &b"\x0e"[..]].concat()
            } else {
                t.clone()
            }
        })
        .collect();
    if codec == "hz" {
        designations.push(b"~{".to_vec());
    }
    for d in &designations {
        for c1 in 0x20..=0x7Fu8 {
            let seconds = [
                0x00, 0x0A, 0x0E, 0x1B, 0x20, 0x21, 0x22, 0x30, 0x3F, 0x40, 0x54, 0x5F, 0x60, 0x7E,
                0x7F, 0x80, 0xA1, 0xFF,
            ];
            inputs.extend(seconds.map(|c2| [&d[..], &[c1, c2]].concat()));
            inputs.push([&d[..], &[c1]].concat());
        }
    }
    for t in &tokens {
        with_truncations(&mut inputs, t);
    }
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ codec.len() as u64);
    for _ in 0..6000 {
        let mut seq = Vec::new();
        for _ in 0..1 + rng.below(16) {
            match rng.below(8) {
                0..=2 => seq.extend(&tokens[rng.below(tokens.len() as u64) as usize]),
                3 | 4 => seq.extend([0x21 + rng.byte() % 0x5E, 0x21 + rng.byte() % 0x5E]),
                5 => seq.push(0x20 + rng.byte() % 0x60),
                6 => seq.push(rng.byte() | 0x80),
                _ => seq.push(rng.byte()),
            }
        }
        inputs.push(seq);
    }
    if codec == "utf-7" {
        utf7_runs(&mut inputs, &mut rng);
    }
    inputs
}

/// Base-64 runs of random UTF-16 code units (surrogates paired or not), with zero or non-zero
/// padding bits, cut short or not, ended by `-`, another ASCII byte, a byte >= 0x80 or the
/// end of the input.
fn utf7_runs(inputs: &mut Vec<Vec<u8>>, rng: &mut Rng) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for _ in 0..4000 {
        let mut seq = vec![b'+'];
        let units: Vec<u16> = (0..rng.below(5))
            .map(|_| match rng.below(5) {
                0 => 0xD800 + (rng.next() % 0x400) as u16,
                1 => 0xDC00 + (rng.next() % 0x400) as u16,
                2 => u16::from(rng.byte() & 0x7F),
                _ => rng.next() as u16,
            })
            .collect();
        let mut bits: u64 = 0;
        let mut nbits = 0;
        for u in units {
            bits = bits << 16 | u64::from(u);
            nbits += 16;
            while nbits >= 6 {
                nbits -= 6;
                seq.push(B64[((bits >> nbits) & 63) as usize]);
            }
        }
        if nbits > 0 {
            let pad = u64::from(rng.below(4) == 0);
            seq.push(B64[((bits << (6 - nbits) | pad) & 63) as usize]);
        }
        if rng.below(6) == 0 {
            seq.pop();
        }
        match rng.below(5) {
            0 => seq.push(b'-'),
            1 => seq.push(b"a .!\\"[rng.below(5) as usize]),
            2 => seq.push(rng.byte() | 0x80),
            3 => seq.extend(b"-+AGE-"),
            _ => {}
        }
        inputs.push(seq);
    }
}

/// `\N{…}` escapes for unicode_escape: every name and alias upper-case, lower-case and
/// mixed (four to an input); every Hangul syllable name and near misses of them; the CJK
/// ideograph ranges' edges in 4 and 5 digits, upper- and lower-case hex; names with a byte
/// changed, added, removed or made non-ASCII; named sequences; unterminated, empty, nested and
/// huge braces.
fn name_inputs() -> Vec<Vec<u8>> {
    let names = super::unidata::names().expect("names table");
    let (all, jamo, cjk) = names.all();
    let esc = |name: &[u8]| [&b"\\N{"[..], name, b"}"].concat();
    let mut rng = Rng(0x5EED_0F4A_3E5C_A9E1);
    let mut inputs = Vec::new();
    let mixed = |name: &[u8], rng: &mut Rng| -> Vec<u8> {
        name.iter()
            .map(|&b| {
                if rng.below(2) == 0 {
                    b.to_ascii_lowercase()
                } else {
                    b
                }
            })
            .collect()
    };
    for case in 0..3 {
        for chunk in all.chunks(4) {
            let mut input = Vec::new();
            for (name, _) in chunk {
                let name = match case {
                    0 => name.clone(),
                    1 => name.to_ascii_lowercase(),
                    _ => mixed(name, &mut rng),
                };
                input.extend(esc(&name));
            }
            inputs.push(input);
        }
    }
    // Hangul: every syllable (eight to an input), then random jamo mixes with bogus parts.
    let prefix = b"HANGUL SYLLABLE ";
    let mut syllables = Vec::new();
    for l in &jamo[0] {
        for v in &jamo[1] {
            for t in &jamo[2] {
                syllables.push(esc(&[&prefix[..], l, v, t].concat()));
            }
        }
    }
    inputs.extend(syllables.chunks(8).map(|c| c.concat()));
    let bogus: [&[u8]; 6] = [b"", b"X", b"g", b"A", b"GG", b" "];
    for _ in 0..3000 {
        let mut name = prefix.to_vec();
        for column in jamo {
            if rng.below(4) == 0 {
                name.extend(bogus[rng.below(6) as usize]);
            } else {
                name.extend(&column[rng.below(column.len() as u64) as usize]);
            }
        }
        if rng.below(8) == 0 {
            name = mixed(&name, &mut rng);
        }
        inputs.push(esc(&name));
    }
    // CJK unified ideographs: the range edges and a sample inside.
    let mut points: Vec<u32> = Vec::new();
    for &(first, last) in cjk {
        points.extend([first - 1, first, first + 1, last - 1, last, last + 1]);
        points.extend((0..40).map(|_| first + rng.below(u64::from(last - first + 1)) as u32));
    }
    points.extend([0, 0xFFFF, 0xF900, 0x2F800, 0xFFFFF]);
    for cp in points {
        for form in [
            format!("{cp:04X}"),
            format!("{cp:05X}"),
            format!("{cp:06X}"),
            format!("{cp:04x}"),
            format!("{cp:03X}"),
        ] {
            inputs.push(esc(format!("CJK UNIFIED IDEOGRAPH-{form}").as_bytes()));
        }
        inputs.push(esc(format!("cjk unified ideograph-{cp:04X}").as_bytes()));
        inputs.push(esc(format!("CJK UNIFIED IDEOGRAPH {cp:04X}").as_bytes()));
    }
    // Near misses of random names.
    for _ in 0..4000 {
        let (name, _) = &all[rng.below(all.len() as u64) as usize];
        let mut name = name.clone();
        let at = rng.below(name.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 => name.insert(at, b"A -\0"[rng.below(4) as usize]),
            1 if at < name.len() => {
                name.remove(at);
            }
            2 if at < name.len() => name[at] = 0x80 | rng.byte(),
            3 => name.insert(at, b' '),
            4 if at < name.len() => name[at] = b"ZQ-_"[rng.below(4) as usize],
            _ => name.push(rng.byte()),
        }
        inputs.push(esc(&name));
    }
    for seq in [
        &b"LATIN CAPITAL LETTER A WITH MACRON AND GRAVE"[..],
        b"KATAKANA LETTER AINU P",
        b"TAMIL CONSONANT K",
        b"TAMIL SYLLABLE KSSA",
        b"GEORGIAN LETTER U-BRJGU",
    ] {
        inputs.push(esc(seq));
        inputs.push(esc(&seq.to_ascii_lowercase()));
    }
    for raw in [
        &b"\\N{"[..],
        b"\\N{BEL",
        b"\\N{}",
        b"\\N{}}",
        b"\\N{{BEL}}",
        b"\\N{BEL}}",
        b"\\N{\\N{BEL}}",
        b"\\N{BEL\0}",
        b"\\N{\0}",
        b"\\N{B\xc9L}",
        b"\\N{\xff}",
        b"\\N{\xe9\xe9\xe9\xe9\xe9}x",
        b"\\N{ BEL}",
        b"\\N{BEL }",
        b"\\N{BEL}\\",
        b"a\\N",
        b"\\N BEL",
        b"\\N{LF}\\N{CR}\\N{ZWJ}\\N{ZWNJ}\\N{SHY}",
    ] {
        inputs.push(raw.to_vec());
        inputs.push([raw, &b"\xff"[..]].concat());
    }
    for len in [85, 86, 87, 88, 89, 255, 256, 257, 1000, 100_000] {
        let mut name = vec![b'A'; len];
        inputs.push(esc(&name));
        name.truncate(len.min(300));
        inputs.push([&b"\\N{"[..], &name].concat());
    }
    inputs
}

/// `xn--` labels for idna, each the punycode of a string built to reach a part of nameprep:
/// every code point where a table changes (alone and between ASCII letters), marks in random
/// order after a base, Hangul jamo runs, RandAL/L/digit mixes, characters unassigned in 3.2
/// (random ones from every plane), labels with upper-case ASCII (they round-trip) and random
/// `xn--` labels (which mostly do not), too-long labels, several labels in a name.
fn idna_inputs() -> Vec<Vec<u8>> {
    let tables = super::unidata::nameprep().expect("nameprep table");
    let [marks, randal, lcat] = tables.classes();
    let label = |text: &[u32]| [&b"xn--"[..], &super::punycode::punycode_encode(text)].concat();
    let mut rng = Rng(0x1D7A_0000_BEEF_0001);
    let mut inputs = Vec::new();
    let pick = |list: &[u32], rng: &mut Rng| list[rng.below(list.len() as u64) as usize];
    for cp in tables.samples() {
        inputs.push(label(&[cp]));
        inputs.push(label(&[0x61, cp, 0x42]));
    }
    let bases: Vec<u32> = (0x41..0x5B)
        .chain([
            0xC7, 0xE9, 0x1E63, 0x3B1, 0x430, 0x5D0, 0x627, 0x915, 0x1100, 0xAC00, 0x3099,
        ])
        .collect();
    for _ in 0..4000 {
        let mut text = vec![pick(&bases, &mut rng)];
        for _ in 0..1 + rng.below(4) {
            text.push(pick(&marks, &mut rng));
        }
        if rng.below(3) == 0 {
            text.push(pick(&bases, &mut rng));
            text.push(pick(&marks, &mut rng));
        }
        inputs.push(label(&text));
    }
    // Hangul: L V T runs with out-of-range neighbours, precomposed syllables with a T.
    let jamo: Vec<u32> = [
        0x10FF, 0x1100, 0x1112, 0x1113, 0x1160, 0x1161, 0x1175, 0x1176,
    ]
    .into_iter()
    .chain([
        0x11A7, 0x11A8, 0x11C2, 0x11C3, 0xAC00, 0xAC01, 0xD7A3, 0xD7A4, 0x3131,
    ])
    .collect();
    for _ in 0..2000 {
        let text: Vec<u32> = (0..1 + rng.below(5))
            .map(|_| pick(&jamo, &mut rng))
            .collect();
        inputs.push(label(&text));
    }
    // Bidi: RandAL, L, European digits, others, in every arrangement.
    let others = [
        0x30u32, 0x39, 0x2D, 0x660, 0x6F0, 0x300, 0x5BF, 0x20AC, 0xB7,
    ];
    for _ in 0..3000 {
        let text: Vec<u32> = (0..1 + rng.below(5))
            .map(|_| match rng.below(4) {
                0 | 1 => pick(&randal, &mut rng),
                2 => pick(&lcat, &mut rng),
                _ => others[rng.below(others.len() as u64) as usize],
            })
            .collect();
        inputs.push(label(&text));
    }
    // Random code points of every plane (many unassigned in 3.2, some assigned later).
    for _ in 0..3000 {
        let plane = [0u32, 0, 0, 1, 1, 2, 3, 14, 15, 16][rng.below(10) as usize];
        let cp = plane << 16 | (rng.next() & 0xFFFF) as u32;
        inputs.push(label(&[cp]));
        if rng.below(2) == 0 {
            inputs.push(label(&[0x78, cp, 0xE9]));
        }
    }
    // Upper-case ASCII in a label (nameprep lowercases it), either in the text or the digits.
    for word in [
        "München",
        "BÜCHER",
        "Ĳssel",
        "ΑΒΓ",
        "ǅ",
        "ＡＢＣ",
        "Straße",
        "İstanbul",
    ] {
        let text: Vec<u32> = word.chars().map(u32::from).collect();
        let encoded = label(&text);
        inputs.push(encoded.to_ascii_uppercase());
        inputs.push(encoded.clone());
        inputs.push([&encoded[..], b".", &encoded, b"."].concat());
    }
    // Random labels: punycode that decodes to anything (or fails), then ToASCII.
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
    for _ in 0..4000 {
        let len = 1 + rng.below(10) as usize;
        let body: Vec<u8> = (0..len).map(|_| DIGITS[rng.below(37) as usize]).collect();
        inputs.push([&b"xn--"[..], &body].concat());
    }
    // Too long once nameprepped or encoded; several labels.
    for n in [20u32, 30, 55, 60, 61, 62, 63] {
        inputs.push(label(
            &(0..n)
                .map(|i| 0x61 + i % 26)
                .chain([0xE9])
                .collect::<Vec<_>>(),
        ));
        inputs.push(label(&(0..n).map(|_| 0xDF).collect::<Vec<_>>()));
        inputs.push(label(&(0..n).map(|_| 0xFB03).collect::<Vec<_>>()));
    }
    // Long runs of marks (much reordering), around the 64-byte limit.
    let mut by_class = marks.clone();
    by_class.sort_by_key(|&c| std::cmp::Reverse(c % 7));
    for n in [5usize, 10, 20, 30, 40, 60, 200, 2000] {
        let text: Vec<u32> = [0x61]
            .into_iter()
            .chain(by_class.iter().copied().take(n))
            .collect();
        inputs.push(label(&text));
        inputs.push(label(&[0x300, 0x316, 0x301, 0x317].repeat(n)));
    }
    inputs.push(b"www.xn--bcher-kva.xn--zca.example".to_vec());
    inputs.push(b"xn--bcher-kva.xn--4gbrim.".to_vec());
    inputs
}

fn show(text: &Answer) -> String {
    match text {
        Err(Raised::UnicodeDecode) => "raises UnicodeDecodeError".into(),
        Err(Raised::Other) => "raises another exception".into(),
        Ok(cps) => format!("{:04x?}", cps),
    }
}

/// iacscope's answer.
fn ours(codec: &str, input: &[u8], errors: Errors) -> Answer {
    match py_decode(codec, input, errors) {
        Outcome::Text(PyStr(cps)) => Ok(cps),
        Outcome::Raised(raised) => Err(raised),
        Outcome::Lookup => panic!("{codec} not found"),
    }
}

/// Decode `inputs` with `codec` and every handler and compare with Python; returns the number
/// of inputs checked.
fn check_codec(exe: &str, codec: &str) -> usize {
    let mut inputs = inputs_for(codec);
    if STATEFUL.contains(&codec) {
        inputs.extend(stateful_inputs(codec));
    }
    let extra = match codec {
        "unicode_escape" => name_inputs(),
        "idna" => idna_inputs(),
        _ => Vec::new(),
    };
    if !extra.is_empty() {
        let decoded = compare(exe, codec, &extra);
        eprintln!(
            "{codec}: {} Unicode-data inputs, {decoded} decoded by Python (strict)",
            extra.len()
        );
    }
    compare(exe, codec, &inputs);
    inputs.len() + extra.len()
}

/// Compare iacscope's answers for `inputs` with Python's; returns how many of them Python
/// decodes with "strict".
fn compare(exe: &str, codec: &str, inputs: &[Vec<u8>]) -> usize {
    let answers = ask_python(exe, codec, inputs);
    let mut failures = Vec::new();
    for (input, expected) in inputs.iter().zip(&answers) {
        for ((errors, errors_name), want) in HANDLERS.iter().zip(expected) {
            let got = ours(codec, input, *errors);
            if &got != want && failures.len() < 12 {
                failures.push(format!(
                    "{codec} {errors_name} {input:02x?}: python {}, iacscope {}",
                    show(want),
                    show(&got)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    answers.iter().filter(|[strict, ..]| strict.is_ok()).count()
}

#[test]
fn decoders_match_cpython_on_every_short_input() {
    let Some(exe) = python() else {
        eprintln!(
            "SKIPPED decoders_match_cpython_on_every_short_input: no python3 \
             (set IACSCOPE_PYTHON to a CPython 3.11)"
        );
        return;
    };
    let t3 = has_telnetlib3(&exe);
    if !t3 {
        eprintln!("decoders_match_cpython_on_every_short_input: no telnetlib3, big5bbs skipped");
    }
    let codecs: Vec<&str> = CODECS
        .iter()
        .copied()
        .filter(|c| t3 || !TELNETLIB3.contains(c))
        .collect();
    // Two codecs at a time: one Python process each, the Rust side compares while the next
    // Python runs.
    let checked: usize = std::thread::scope(|s| {
        codecs
            .chunks(2)
            .flat_map(|pair| {
                let handles: Vec<_> = pair
                    .iter()
                    .map(|&codec| s.spawn(|| check_codec(&exe, codec)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .sum()
    });
    eprintln!("decoders_match_cpython_on_every_short_input: {checked} inputs, 3 handlers each");
    assert!(checked > codecs.len() * 65_536);
}

/// The stateful codecs (`STATEFUL`): the short inputs and `stateful_inputs`.
#[test]
fn stateful_decoders_match_cpython() {
    let Some(exe) = python() else {
        eprintln!("SKIPPED stateful_decoders_match_cpython: no python3 (set IACSCOPE_PYTHON)");
        return;
    };
    let checked: usize = std::thread::scope(|s| {
        STATEFUL
            .chunks(2)
            .flat_map(|pair| {
                let handles: Vec<_> = pair
                    .iter()
                    .map(|&codec| s.spawn(|| check_codec(&exe, codec)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .sum()
    });
    eprintln!("stateful_decoders_match_cpython: {checked} inputs, 3 handlers each");
    assert!(checked > STATEFUL.len() * 2 * 65_536);
}

/// The charmap codecs (their tables are `codec/data/<name>.bin` now, like the CJK ones): every
/// 1-byte input and seeded random inputs of every charmap codec (telnetlib3's own, atarist,
/// atascii and petscii, when the Python has telnetlib3; `vectors.rs` pins them too).
#[test]
fn charmaps_match_cpython() {
    let Some(exe) = python() else {
        eprintln!("SKIPPED charmaps_match_cpython: no python3 (set IACSCOPE_PYTHON)");
        return;
    };
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), (0..=255u8).collect()];
    inputs.extend((0..=255u8).map(|a| vec![a]));
    for _ in 0..300 {
        let len = rng.below(12) as usize;
        inputs.push((0..len).map(|_| rng.byte()).collect());
    }
    let t3 = has_telnetlib3(&exe);
    let mut checked = 0;
    for &codec in &super::tables::CHARMAPS {
        if !t3 && TELNETLIB3.contains(&codec) {
            continue;
        }
        compare(&exe, codec, &inputs);
        checked += 1;
    }
    assert_eq!(
        checked,
        super::tables::CHARMAPS.len() - if t3 { 0 } else { 3 }
    );
}
