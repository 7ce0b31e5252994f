#!/usr/bin/env python3
"""Generate shared/src/codec/tables.rs from CPython's codec registry and telnetlib3's codecs.

Run with the reference venv so telnetlib3's retro codecs are importable:

    /work/main/target/py/bin/python shared/gen/gen_codecs.py

It rewrites shared/src/codec/tables.rs and the table files shared/src/codec/data/*.bin. Every
fact in them comes from asking Python: the accepted lookup keys and their canonical
`CodecInfo.name`, for every charmap (single-byte) codec its decoding table
(`data/<codec>.bin`, one small file each), atascii's encoding of ASCII (prompt replies), and for
big5, gbk, gb2312, gb18030, big5hkscs, cp950, euc_jp, shift_jis, cp932, euc_kr
and cp949 every byte, byte pair and longer sequence their decoders have (see `cjk_table`).

    python3 shared/gen/gen_codecs.py --cjk

rewrites only the CJK table files and needs nothing beyond CPython 3.11's stdlib, and

    python3 shared/gen/gen_codecs.py --unicode

rewrites only data/unicode_names.bin and data/nameprep.bin (unicode_escape's `\\N{name}`,
idna's nameprep; see `write_unicode`), from the stdlib (and Perl's Unicode::UCD for the list
of name aliases, each checked with Python). Output is
byte-identical from run to run (no timestamps, sorted iteration).
"""

import codecs
import gzip
import json
import os
import pkgutil
import sys

import encodings
import encodings.aliases



def import_telnetlib3():
    """The fingerprint CLI imports these before any lookup happens; import them so the registry
    (search functions and their order) is the one telnetlib3-fingerprint runs with. Only the
    lookup tables and vectors need them (the CJK tables come from the stdlib alone)."""
    try:
        import telnetlib3.client  # noqa: F401
        import telnetlib3.server_fingerprinting  # noqa: F401
        import telnetlib3.encodings as t3enc
    except ImportError:
        sys.exit("gen_codecs.py: telnetlib3 is needed for tables.rs and vectors.rs: run it with "
                 "the reference venv (target/py/bin/python), or pass --cjk to write only the "
                 "CJK tables")
    return t3enc

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "codec", "tables.rs")

# Decoders implemented natively in codec.rs (exact), keyed by canonical name.
NATIVE = {
    "utf-8": "Utf8",
    "utf-8-sig": "Utf8Sig",
    "ascii": "Ascii",
    "iso8859-1": "Latin1",
    "charmap": "Latin1",
    "utf-16": "Utf16(Order::Bom)",
    "utf-16-le": "Utf16(Order::Le)",
    "utf-16-be": "Utf16(Order::Be)",
    "utf-32": "Utf32(Order::Bom)",
    "utf-32-le": "Utf32(Order::Le)",
    "utf-32-be": "Utf32(Order::Be)",
    "utf-7": "Utf7",
    "unicode-escape": "UnicodeEscape",
    "raw-unicode-escape": "RawUnicodeEscape",
    "punycode": "Punycode",
    "idna": "Idna",
    "undefined": "Undefined",
}


def try_lookup(key):
    try:
        return codecs.lookup(key)
    except LookupError:
        return None


def candidate_keys():
    """Every name that could be a direct hit: stdlib alias keys, stdlib codec modules and
    telnetlib3 codec modules (telnetlib3's own aliases only work after the module was loaded,
    see codec.rs)."""
    t3enc = import_telnetlib3()
    alias_keys = set(encodings.aliases.aliases)
    modules = {m.name for m in pkgutil.iter_modules(encodings.__path__)}
    t3_modules = {m.name for m in pkgutil.iter_modules(t3enc.__path__)}
    return alias_keys, modules | t3_modules


def rust_str(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0x20 <= cp < 0x7F:
            out.append(ch)
        else:
            out.append("\\u{%x}" % cp)
    return '"' + "".join(out) + '"'


def charmap_table(info):
    """Return the 256-char decoding table of a charmap codec, or None for other codecs."""
    owner = getattr(info.decode, "__self__", None)
    mod = sys.modules.get(type(owner).__module__) if owner is not None else None
    table = None
    for attr in ("decoding_table", "DECODING_TABLE"):
        if mod is not None and isinstance(getattr(mod, attr, None), str):
            table = getattr(mod, attr)
    if table is None:
        return None
    # Ask the codec itself byte by byte (the module table is only a hint).
    chars = []
    for b in range(256):
        try:
            s = bytes([b]).decode(info.name)
        except UnicodeDecodeError:
            s = "\ufffe"
        assert len(s) == 1, (info.name, b, s)
        chars.append(s)
    whole = bytes(range(256)).decode(info.name, errors="replace")
    assert whole == "".join(chars).replace("\ufffe", "\ufffd"), info.name
    return "".join(chars)


# ------------------------------------------------------------------------------------------
# Multi-byte CJK tables: `shared/src/codec/data/<codec>.bin`, one per codec, read by
# shared/src/codec/cjk.rs (natively through include_bytes!, in the browser fetched and handed to
# `codec::install_table`). They come from the stdlib alone, so `python3 gen_codecs.py --cjk`
# writes just these without telnetlib3.

CJK_DIR = os.path.join(os.path.dirname(OUT), "data")

# Canonical name -> the multi-byte prefixes its CPython decoder treats specially (see cjk.rs):
# "gb18030-4" a lead byte then 0x30..=0x39 starts a 4-byte sequence; "eucjp-8f" 0x8F leads a
# 3-byte JIS X 0212 sequence; "euckr-jamo" A4 D4 starts an 8-byte KS X 1001:1998 Annex 3 make-up
# sequence. Every other sequence is one byte or a lead + trail pair.
CJK_CODECS = {
    "big5": (),
    "big5hkscs": (),
    "cp932": (),
    "cp949": (),
    "cp950": (),
    "euc_jis_2004": ("eucjp-8f",),
    "euc_jisx0213": ("eucjp-8f",),
    "euc_jp": ("eucjp-8f",),
    "euc_kr": ("euckr-jamo",),
    "gb18030": ("gb18030-4",),
    "gb2312": (),
    "gbk": (),
    "johab": (),
    "shift_jis": (),
    "shift_jis_2004": (),
    "shift_jisx0213": (),
}

# The `cjk::Cjk` variant of each table codec.
CJK_VARIANTS = {
    "big5": "Big5", "big5bbs": "Big5Bbs", "big5hkscs": "Big5Hkscs", "cp932": "Cp932", "cp949": "Cp949", "cp950": "Cp950",
    "euc_jis_2004": "EucJis2004", "euc_jisx0213": "EucJisx0213", "euc_jp": "EucJp",
    "euc_kr": "EucKr", "gb18030": "Gb18030", "gb2312": "Gb2312", "gbk": "Gbk", "johab": "Johab",
    "shift_jis": "ShiftJis", "shift_jis_2004": "ShiftJis2004", "shift_jisx0213": "ShiftJisx0213",
}

CJK_MAGIC = b"IACSCJK\x01"

# How many gb18030 4-byte sequences of lead bytes 0x81..=0x84 map into the BMP (CPython's
# gb18030_to_unibmp_ranges ends at 39420): `((b1-0x81)*10 + b2-0x30)*1260 + (b3-0x81)*10 + b4-0x30`.
GB18030_BMP_SEQS = 39420


def varint(n):
    assert n >= 0
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def zigzag(d):
    return (d << 1) if d >= 0 else ((-d) << 1) - 1


def fnv1a_bytes(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def py_decode_strict(data, name):
    """('ok', text) or ('err', start, end, reason)."""
    try:
        return ("ok", data.decode(name))
    except UnicodeDecodeError as e:
        return ("err", e.start, e.end, e.reason)


def cjk_plane(name, prefix, leads, special):
    """Rows for `prefix + lead + trail` over every lead in `leads` and every trail byte:
    {lead: {trail: code point}}, plus {(lead, trail): text} for pairs giving two characters
    (or "" for a pair that is one error of two bytes).
    `special(lead, trail)` says the decoder takes the pair as the start of a longer sequence."""
    rows, multi = {}, {}
    for lead in leads:
        for trail in range(0x100):
            r = py_decode_strict(prefix + bytes([lead, trail]), name)
            if r[0] == "ok":
                text = r[1]
                assert 1 <= len(text) <= 2, (name, prefix, lead, trail, text)
                if len(text) == 1:
                    assert ord(text) != 0, (name, lead, trail)
                    rows.setdefault(lead, {})[trail] = ord(text)
                else:
                    multi[(lead, trail)] = text
            elif (r[1], r[2]) == (0, 1):
                pass  # illegal: the error covers the lead byte only
            elif not prefix and (r[1], r[2], r[3]) == (0, 2, "illegal multibyte sequence"):
                # One error over both bytes: the JIS X 0213:2004 additions in euc_jisx0213
                # and shift_jisx0213 (CPython's EMULATE_JISX0213_2000_DECODE_PLANE1).
                multi[(lead, trail)] = ""
            else:
                assert (r[1], r[2], r[3]) == (0, len(prefix) + 2, "incomplete multibyte sequence"), \
                    (name, prefix, lead, trail, r)
                assert special(lead, trail), (name, prefix, lead, trail, r)
    return rows, multi


def cjk_table(name, specials):
    """Ask CPython's `name` codec about every byte and byte pair (and the longer sequences its
    decoder has) and check the decoder model of cjk.rs:

    - a byte alone is a character, an illegal byte (one error of one byte), or a lead; bytes
      < 0x80 are characters (ASCII, but for shift_jis_2004/shift_jisx0213, whose low half is
      JIS X 0201 Roman: 0x5C is U+00A5, 0x7E U+203E), and then the table has all 256 singles;
    - a lead with a trail decodes to one or two characters, or is one error covering the lead
      only (decoding resumes at the trail), unless the pair starts one of `specials`;
    - a lead at the end of the input is an "incomplete multibyte sequence" (the rest).
    """
    low_is_ascii = all(py_decode_strict(bytes([b]), name) == ("ok", chr(b)) for b in range(0x80))
    first = 0x80 if low_is_ascii else 0
    singles = []
    for b in range(first, 0x100):
        r = py_decode_strict(bytes([b]), name)
        if r[0] == "ok":
            assert len(r[1]) == 1, (name, b, r)
            singles.append(("char", ord(r[1])))
        elif r[3] == "incomplete multibyte sequence":
            assert b >= 0x80, (name, b, r)
            singles.append(("lead",))
        else:
            assert (r[1], r[2]) == (0, 1), (name, b, r)
            singles.append(("illegal",))
    # A byte that is illegal alone must be illegal before any trail too, and a character
    # before anything is itself.
    for b in range(first, 0x100):
        kind = singles[b - first]
        if kind[0] == "lead":
            continue
        head = chr(kind[1]) if kind[0] == "char" else None
        for t in range(0x100):
            tail = bytes([t]).decode(name, "surrogateescape")
            got = bytes([b, t]).decode(name, "surrogateescape")
            want = (head if head is not None else chr(0xDC00 + b)) + tail
            assert got == want, (name, b, t, got, want)

    def special(lead, trail):
        return (("gb18030-4" in specials and 0x30 <= trail <= 0x39)
                or ("eucjp-8f" in specials and lead == 0x8F)
                or ("euckr-jamo" in specials and (lead, trail) == (0xA4, 0xD4)))

    leads = [first + i for i, k in enumerate(singles) if k[0] == "lead"]
    planes = [cjk_plane(name, b"", leads, special)]
    if "eucjp-8f" in specials:
        # 8F b c: JIS X 0212; `cjk_plane` with the prefix keeps the row of every second byte.
        rows, multi = cjk_plane(name, b"\x8f", range(0x100), lambda lead, trail: False)
        assert not multi
        planes.append((rows, {}))
    ranges = []
    if "gb18030-4" in specials:
        for lseq in range(GB18030_BMP_SEQS):
            b1, rest = divmod(lseq, 12600)
            b2, rest = divmod(rest, 1260)
            b3, b4 = divmod(rest, 10)
            seq = bytes([0x81 + b1, 0x30 + b2, 0x81 + b3, 0x30 + b4])
            r = py_decode_strict(seq, name)
            assert r[0] == "ok" and len(r[1]) == 1, (seq, r)
            cp = ord(r[1])
            if ranges and ranges[-1][1] + (lseq - ranges[-1][0]) == cp:
                continue
            ranges.append((lseq, cp))
    return singles, planes, ranges


def cjk_blob(name, singles, planes, ranges):
    """The table file; its layout is documented at `Table::parse` in cjk.rs. 128 singles
    (bytes 0x80..=0xFF, below is ASCII) make a version 1 file, 256 (every byte) version 2."""
    assert len(singles) in (128, 256), name
    out = bytearray(CJK_MAGIC if len(singles) == 128 else CJK_MAGIC[:-1] + b"\x02")
    out += varint(len(name)) + name.encode("ascii")
    for kind in singles:
        out += varint({"illegal": 0, "lead": 1}[kind[0]] if kind[0] != "char" else kind[1] + 2)
    out += varint(len(planes))
    multis = []
    for plane, (rows, multi) in enumerate(planes):
        out += varint(len(rows))
        prev = 0
        for lead in sorted(rows):
            cells = rows[lead]
            lo, hi = min(cells), max(cells)
            out += bytes([lead, lo, hi])
            for trail in range(lo, hi + 1):
                cp = cells.get(trail)
                if cp is None:
                    out += varint(0)
                else:
                    out += varint(zigzag(cp - prev) + 1)
                    prev = cp
        multis += [(plane, pair, text) for pair, text in sorted(multi.items())]
    out += varint(len(multis))
    for plane, (lead, trail), text in multis:
        out += bytes([plane, lead, trail]) + varint(len(text))
        for ch in text:
            out += varint(ord(ch))
    out += varint(len(ranges))
    for lseq, cp in ranges:
        out += varint(lseq) + varint(cp)
    out += varint(GB18030_BMP_SEQS if ranges else 0)
    out += fnv1a_bytes(out).to_bytes(8, "little")
    return bytes(out)


# ------------------------------------------------------------------------------------------
# The stateful ISO-2022 codecs and hz (shared/src/codec/iso2022.rs). Their double-byte sets are
# looked up in a table file as `plane, (first | 0x80), (second | 0x80)`: iso2022_jp, _1 and _ext
# in euc_jp.bin (plane 0 JIS X 0208, plane 1 JIS X 0212), iso2022_kr in euc_kr.bin (but for
# KS X 1001 0x2454, which euc_kr only decodes inside its 8-byte make-up sequences), hz in
# gb2312.bin; iso2022_jp_2, _2004 and _3 have files of their own (`ISO2022_TABLES`).
# `check_iso2022` asks Python about every byte pair after every designation of every codec and
# checks the table it is looked up in.

# The `iso2022::Iso2022` variant of each codec.
ISO2022_VARIANTS = {
    "iso2022_jp": "Jp", "iso2022_jp_1": "Jp1", "iso2022_jp_2": "Jp2", "iso2022_jp_2004": "Jp2004",
    "iso2022_jp_3": "Jp3", "iso2022_jp_ext": "JpExt", "iso2022_kr": "Kr", "hz": "Hz",
}

# Codec -> (escape sequence selecting a double-byte set into G0 (G1 + SO for iso2022_kr,
# "~{" for hz), the table file, its plane, exceptions {(first, second): text}) for every
# double-byte set the codec designates.
ISO2022_SETS = {
    "iso2022_jp": [(b"\x1b$B", "euc_jp", 0, {}), (b"\x1b$@", "euc_jp", 0, {})],
    "iso2022_jp_1": [(b"\x1b$B", "euc_jp", 0, {}), (b"\x1b$@", "euc_jp", 0, {}),
                     (b"\x1b$(D", "euc_jp", 1, {})],
    "iso2022_jp_ext": [(b"\x1b$B", "euc_jp", 0, {}), (b"\x1b$@", "euc_jp", 0, {}),
                       (b"\x1b$(D", "euc_jp", 1, {})],
    "iso2022_jp_2": [(b"\x1b$B", "iso2022_jp_2", 0, {}), (b"\x1b$@", "iso2022_jp_2", 0, {}),
                     (b"\x1b$(D", "iso2022_jp_2", 1, {}), (b"\x1b$(C", "iso2022_jp_2", 2, {}),
                     (b"\x1b$A", "iso2022_jp_2", 3, {})],
    "iso2022_jp_2004": [(b"\x1b$B", "iso2022_jp_2004", 0, {}), (b"\x1b$(Q", "iso2022_jp_2004", 1, {}),
                        (b"\x1b$(P", "iso2022_jp_2004", 2, {})],
    "iso2022_jp_3": [(b"\x1b$B", "iso2022_jp_3", 0, {}), (b"\x1b$(O", "iso2022_jp_3", 1, {}),
                     (b"\x1b$(P", "iso2022_jp_3", 2, {})],
    "iso2022_kr": [(b"\x1b$)C\x0e", "euc_kr", 0, {(0x24, 0x54): "\u3164"}),
                   (b"\x1b$(C", "euc_kr", 0, {(0x24, 0x54): "\u3164"})],
}

# The files of their own: (codec, the designations of its planes in order, whether the
# singles hold ISO 8859-7 for single shifts (ESC N) with G2 = ESC . F).
ISO2022_TABLES = {
    "iso2022_jp_2": (["\x1b$B", "\x1b$(D", "\x1b$(C", "\x1b$A"], True),
    "iso2022_jp_2004": (["\x1b$B", "\x1b$(Q", "\x1b$(P"], False),
    "iso2022_jp_3": (["\x1b$B", "\x1b$(O", "\x1b$(P"], False),
}


def iso2022_pairs(codec, esc):
    """{(first, second): text or None (an error over both)} after `esc` for first 0x20..=0x7F
    (what reaches a double-byte set: iso2022.rs) and every second byte."""
    out = {}
    for c1 in range(0x20, 0x80):
        for c2 in range(0x100):
            r = py_decode_strict(esc + bytes([c1, c2]), codec)
            if r[0] == "ok":
                assert 0x21 <= c1 <= 0x7E and 0x21 <= c2 <= 0x7E and 1 <= len(r[1]) <= 2, \
                    (codec, esc, c1, c2, r)
                out[(c1, c2)] = r[1]
            else:
                assert (r[1], r[2], r[3]) == (len(esc), len(esc) + 2, "illegal multibyte sequence"), \
                    (codec, esc, c1, c2, r)
                out[(c1, c2)] = None
    return out


def iso2022_table(codec, escs, greek):
    singles = [("illegal",)] * 128
    if greek:
        singles = []
        for x in range(0x80):
            r = py_decode_strict(b"\x1b.F\x1bN" + bytes([x]), codec)
            if r[0] == "ok":
                assert len(r[1]) == 1, (x, r)
                singles.append(("char", ord(r[1])))
            else:
                assert (r[1], r[2]) == (3, 6), (x, r)
                singles.append(("illegal",))
    planes = []
    for esc in escs:
        rows, multi = {}, {}
        for (c1, c2), text in iso2022_pairs(codec, esc.encode("latin-1")).items():
            if text is None:
                continue
            if len(text) == 1:
                rows.setdefault(c1 | 0x80, {})[c2 | 0x80] = ord(text)
            else:
                multi[(c1 | 0x80, c2 | 0x80)] = text
        planes.append((rows, multi))
    return singles, planes, []


def check_iso2022(tables):
    """Every double-byte set of every ISO-2022 codec and hz is what iso2022.rs looks up in its
    table file: `plane, first | 0x80, second | 0x80` for a second byte < 0x80, else nothing."""
    def lookup(table, plane, c1, c2):
        if c2 >= 0x80:
            return None
        singles, planes, _ = table
        rows, multi = planes[plane]
        cp = rows.get(c1 | 0x80, {}).get(c2 | 0x80)
        if cp is not None:
            return chr(cp)
        return multi.get((c1 | 0x80, c2 | 0x80)) or None
    for codec, sets in ISO2022_SETS.items():
        for esc, file, plane, exceptions in sets:
            for (c1, c2), text in iso2022_pairs(codec, esc).items():
                want = exceptions.get((c1, c2), lookup(tables[file], plane, c1, c2))
                assert text == want, (codec, esc, c1, c2, text, want)
    # hz: in GB mode ("~{") a byte < 0x80 other than "~" and the next one are a GB 2312 pair
    # or an error of one byte.
    for c1 in range(0x80):
        if c1 == 0x7E:
            continue
        for c2 in range(0x100):
            r = py_decode_strict(b"~{" + bytes([c1, c2]), "hz")
            want = lookup(tables["gb2312"], 0, c1, c2)
            if r[0] == "ok":
                assert r[1] == want, (c1, c2, r, want)
            else:
                assert want is None and (r[1], r[2]) == (2, 3), (c1, c2, r)


def write_cjk():
    os.makedirs(CJK_DIR, exist_ok=True)
    total_raw = total_gz = 0
    tables = {}
    jobs = [(name, lambda name=name, sp=specials: cjk_table(name, sp))
            for name, specials in CJK_CODECS.items()]
    jobs += [(name, lambda name=name, t=t: iso2022_table(name, *t))
             for name, t in ISO2022_TABLES.items()]
    for name, make in sorted(jobs):
        assert codecs.lookup(name).name == name, name
        tables[name] = make()
        blob = cjk_blob(name, *tables[name])
        path = os.path.join(CJK_DIR, name + ".bin")
        with open(path, "wb") as f:
            f.write(blob)
        gz = len(gzip.compress(blob, mtime=0))
        total_raw += len(blob)
        total_gz += gz
        print("wrote", os.path.relpath(path), len(blob), "bytes,", gz, "gzipped")
    print("CJK tables:", total_raw, "bytes,", total_gz, "gzipped")
    check_iso2022(tables)


def big5bbs_table():
    """telnetlib3's big5bbs (its own Python decoder, which never raises): bytes < 0x80 are
    ASCII; a byte >= 0x80 alone is one character (cp437 for 0xA1..=0xFE, latin-1 else); a pair
    is one character where it is a Big5 character, else its first byte alone and decoding goes
    on at the second. The table: those singles and the pairs (plane 0), as cjk.rs reads them."""
    name = "big5bbs"
    for b in range(0x80):
        assert bytes([b]).decode(name) == chr(b), b
    singles = []
    for b in range(0x80, 0x100):
        text = bytes([b]).decode(name)
        assert len(text) == 1, (b, text)
        singles.append(("char", ord(text)))
    rows = {}
    for lead in range(0x100):
        head = bytes([lead]).decode(name)
        for trail in range(0x100):
            text = bytes([lead, trail]).decode(name)
            for errors in ("replace", "surrogateescape"):
                assert bytes([lead, trail]).decode(name, errors) == text
            if text != head + bytes([trail]).decode(name):
                assert len(text) == 1 and 0xA1 <= lead <= 0xFE, (lead, trail, text)
                rows.setdefault(lead, {})[trail] = ord(text)
    return singles, [(rows, {})], []


def write_big5bbs():
    blob = cjk_blob("big5bbs", *big5bbs_table())
    path = os.path.join(CJK_DIR, "big5bbs.bin")
    with open(path, "wb") as f:
        f.write(blob)
    print("wrote", os.path.relpath(path), len(blob), "bytes,", len(gzip.compress(blob, mtime=0)),
          "gzipped")


def write_charmap(name, table):
    """A charmap codec's table file: the CJK layout with no pairs, one single per byte (128 for
    bytes 0x80..=0xFF when the low half is ASCII, else 256); U+FFFE (undefined) is illegal."""
    first = 128 if table[:128] == "".join(map(chr, range(128))) else 0
    singles = [("illegal",) if ch == "\ufffe" else ("char", ord(ch)) for ch in table[first:]]
    blob = cjk_blob(name, singles, [], [])
    with open(os.path.join(CJK_DIR, name + ".bin"), "wb") as f:
        f.write(blob)
    return len(blob), len(gzip.compress(blob, mtime=0))


def atascii_encode():
    """`chr(c).encode("atascii")` for every ASCII character (0: Python raises)."""
    out = []
    for c in range(0x80):
        try:
            b = chr(c).encode("atascii")
        except UnicodeEncodeError:
            out.append(0)
            continue
        assert len(b) == 1 and b[0] != 0, (c, b)
        out.append(b[0])
    return out


def main():
    import_telnetlib3()
    write_cjk()
    write_big5bbs()
    alias_keys, modules = candidate_keys()
    names = {}  # key -> (canonical, is_alias)
    for key in sorted(alias_keys | modules):
        info = try_lookup(key)
        if info is None:
            continue
        names[key] = (info.name, key in alias_keys)
    canon = sorted({c for c, _ in names.values()})
    kinds = {}
    charmaps = []
    charmap_bytes = [0, 0]
    for name in canon:
        info = codecs.lookup(name)
        if not info._is_text_encoding:
            kinds[name] = "NonText"
        elif name in NATIVE:
            kinds[name] = NATIVE[name]
        elif name in ISO2022_VARIANTS:
            kinds[name] = "Iso2022(Iso2022::%s)" % ISO2022_VARIANTS[name]
        elif name in CJK_VARIANTS:
            kinds[name] = "MultiByte(Cjk::%s)" % CJK_VARIANTS[name]
        else:
            table = charmap_table(info)
            if table is None:
                kinds[name] = "Unsupported"
            else:
                kinds[name] = "Charmap(%d)" % len(charmaps)
                charmaps.append(name)
                raw, gz = write_charmap(name, table)
                charmap_bytes[0] += raw
                charmap_bytes[1] += gz
    lines = [
        "//! Codec facts generated from CPython %s and telnetlib3 %s: lookup keys, canonical"
        % (sys.version.split()[0], getattr(__import__("telnetlib3"), "__version__", "?")),
        "//! names, charmap tables. GENERATED by shared/gen/gen_codecs.py; do not edit. Regenerate:",
        "//! `/work/main/target/py/bin/python shared/gen/gen_codecs.py && cargo fmt -p iacscope-shared`.",
        "",
        "use super::Kind::{self, *};",
        "use super::{Cjk, Iso2022, Order};",
        "",
        "/// Canonical codec names (Python's `CodecInfo.name`) and how iacscope decodes them.",
        "pub(super) const CODECS: &[(&str, Kind)] = &[",
    ]
    for name in canon:
        lines.append("    (%s, %s)," % (rust_str(name), kinds[name]))
    lines.append("];")
    lines.append("")
    lines.append("/// Normalised lookup keys, sorted: (key, index into `CODECS`, is a stdlib alias key).")
    lines.append("pub(super) const NAMES: &[(&str, u8, bool)] = &[")
    for key in sorted(names):
        c, is_alias = names[key]
        lines.append("    (%s, %d, %s)," % (rust_str(key), canon.index(c), str(is_alias).lower()))
    lines.append("];")
    lines.append("")
    lines.append("/// The charmap codecs (`Kind::Charmap` indexes this), each with its table file")
    lines.append("/// `codec/data/<name>.bin`.")
    lines.append("pub(super) const CHARMAPS: [&str; %d] = [" % len(charmaps))
    for name in charmaps:
        lines.append("    %s," % rust_str(name))
    lines.append("];")
    lines.append("")
    lines.append("/// The table file of charmap `i`, compiled into native builds only.")
    lines.append("#[cfg(not(target_arch = \"wasm32\"))]")
    lines.append("pub(super) fn charmap_bytes(i: usize) -> &'static [u8] {")
    lines.append("    match i {")
    for i, name in enumerate(charmaps):
        lines.append("        %d => include_bytes!(\"data/%s.bin\")," % (i, name))
    lines.append("        _ => &[],")
    lines.append("    }")
    lines.append("}")
    lines.append("")
    lines.append("/// `chr(c).encode(\"atascii\")` for each ASCII character `c` (0: Python raises).")
    lines.append("pub(super) const ATASCII_ENCODE: [u8; 128] = [")
    enc = atascii_encode()
    for i in range(0, 128, 16):
        lines.append("    " + " ".join("0x%02X," % b for b in enc[i:i + 16]))
    lines.append("];")
    lines.append("")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("wrote", OUT, len(names), "keys", len(canon), "codecs,", len(charmaps),
          "charmap tables:", charmap_bytes[0], "bytes,", charmap_bytes[1], "gzipped")


# ------------------------------------------------------------------------------------------
# Unicode data: `gen_codecs.py --unicode` rewrites data/unicode_names.bin (unicode_escape's
# `\N{name}`) and data/nameprep.bin (idna's nameprep), from CPython 3.11's `unicodedata`
# (Unicode 14.0) and `stringprep` (Unicode 3.2 through `unicodedata.ucd_3_2_0`). Each file is
# one raw deflate stream (level 9) of: an 8-byte magic, the content (varints), and FNV-1a 64
# of both (as the CJK tables' checksum); `codec/unidata.rs` reads them.

UNICODE_NAMES_MAGIC = b"IACSUNM\x01"
NAMEPREP_MAGIC = b"IACSNPR\x01"


def deflated(magic, content):
    import zlib
    body = magic + bytes(content)
    body += fnv1a_bytes(body).to_bytes(8, "little")
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return comp.compress(body) + comp.flush()


def vstr(data):
    return varint(len(data)) + data


def name_aliases():
    """Unicode 14.0's name aliases (every type: correction, control, alternate, figment,
    abbreviation). Python does not list them (`unicodedata.lookup` only resolves them), so the
    candidates come from Perl's copy of the same Unicode version (`Unicode::UCD`), and every
    one is checked with Python: `unicodedata.lookup(alias)` must be the character. Named
    sequences are left out: `\\N{}` does not take them (`_check_alias_and_seq` with
    `with_named_seq=0`)."""
    import subprocess
    import unicodedata
    script = (r'use Unicode::UCD qw(prop_invmap);'
              r'print Unicode::UCD::UnicodeVersion(), "\n";'
              r'my ($l, $m, $f, $d) = prop_invmap("Name_Alias");'
              r'for my $i (0 .. $#$l - 1) { next if $m->[$i] eq $d;'
              r' my @a = ref $m->[$i] ? @{$m->[$i]} : ($m->[$i]);'
              r' for my $cp ($l->[$i] .. $l->[$i + 1] - 1) {'
              r'  for (@a) { print "$cp;$_\n" } } }')
    out = subprocess.run(["perl", "-e", script], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    assert out[0] == unicodedata.unidata_version, (out[0], unicodedata.unidata_version)
    aliases = []
    for line in out[1:]:
        cp, rest = line.split(";", 1)
        alias = rest.rsplit(":", 1)[0].strip()
        assert unicodedata.lookup(alias) == chr(int(cp)), line
        aliases.append((alias, int(cp)))
    assert len(aliases) > 450, len(aliases)
    return aliases


def unicode_names_blob():
    import unicodedata
    # CPython's `_getcode`: "HANGUL SYLLABLE " + L + V + T jamo names (each the longest that
    # matches), and "CJK UNIFIED IDEOGRAPH-" + 4 or 5 upper-case hex digits within
    # `is_unified_ideograph`; both prefixes are compared case-sensitively. The jamo names and
    # the ranges are read off Python's names.
    sbase, vcount, tcount = 0xAC00, 21, 28
    prefix = "HANGUL SYLLABLE "
    def syl(l, v, t):
        name = unicodedata.name(chr(sbase + (l * vcount + v) * tcount + t))
        assert name.startswith(prefix)
        return name[len(prefix):]
    ieung = 11
    assert syl(ieung, 0, 0) == "A"
    lead = [syl(l, 0, 0)[:-1] for l in range(19)]
    vowel = [syl(ieung, v, 0) for v in range(vcount)]
    trail = [syl(ieung, 0, t)[1:] for t in range(tcount)]
    cjk = []
    names = {}
    for cp in range(0x110000):
        name = unicodedata.name(chr(cp), "")
        if name.startswith("CJK UNIFIED IDEOGRAPH-"):
            assert name == "CJK UNIFIED IDEOGRAPH-%04X" % cp
            if cjk and cjk[-1][1] == cp - 1:
                cjk[-1][1] = cp
            else:
                cjk.append([cp, cp])
        elif name.startswith(prefix):
            l, rest = divmod(cp - sbase, vcount * tcount)
            assert name == prefix + lead[l] + vowel[rest // tcount] + trail[rest % tcount]
        elif name:
            assert name not in names, name
            names[name] = cp
    for alias, cp in name_aliases():
        assert alias not in names, alias
        names[alias] = cp
    for name, cp in names.items():
        assert name == name.upper() and name.isascii(), name
        assert (b"\\N{" + name.lower().encode() + b"}").decode("unicode_escape") == chr(cp)
    out = bytearray()
    for column in (lead, vowel, trail):
        out += varint(len(column))
        for jamo in column:
            out += vstr(jamo.encode())
    out += varint(len(cjk))
    for start, end in cjk:
        out += varint(start) + varint(end)
    out += varint(len(names))
    prev = b""
    for name in sorted(names):
        key = name.encode()
        shared = 0
        while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
            shared += 1
        out += varint(shared) + vstr(key[shared:]) + varint(names[name])
        prev = key
    print("unicode names:", len(names), "names,", len(cjk), "CJK ranges")
    return deflated(UNICODE_NAMES_MAGIC, out)


def ranges_of(pred):
    out = []
    for cp in range(0x110000):
        if pred(cp):
            if out and out[-1][1] == cp - 1:
                out[-1][1] = cp
            else:
                out.append([cp, cp])
    return out


def put_ranges(out, ranges):
    out += varint(len(ranges))
    prev = 0
    for start, end in ranges:
        out += varint(start - prev) + varint(end - start)
        prev = end


def put_map(out, mapping):
    """cp -> code point sequence, sorted, cp delta-coded."""
    out += varint(len(mapping))
    prev = 0
    for cp in sorted(mapping):
        seq = mapping[cp]
        out += varint(cp - prev) + varint(len(seq))
        for ch in seq:
            out += varint(ord(ch))
        prev = cp


def nameprep_blob():
    """idna.py's `nameprep` (RFC 3491): the tables it reads, per code point, from Python.
    B.1 (mapped to nothing); B.2 (`map_table_b2`: Python's own `str.lower()` plus B.3's
    exceptions, then NFKC 3.2); the full NFKD under `ucd_3_2_0` of every character (but the
    Hangul syllables, which `nfd_nfkd` decomposes by arithmetic); the canonical combining
    classes and the compositions that `nfd_nfkd` and `nfc_nfkc` use, which are the current
    (14.0) ones even for `ucd_3_2_0` (`_getrecord_ex`, `nfc_first`/`nfc_last` are not
    versioned); the prohibited characters (C.1.2, C.2.2, C.3 to C.9) and D.1 and D.2."""
    import stringprep
    import unicodedata
    u32 = unicodedata.ucd_3_2_0
    chars = [chr(cp) for cp in range(0x110000)]
    b1 = ranges_of(lambda cp: stringprep.in_table_b1(chars[cp]))
    b2 = {}
    nfkd = {}
    for cp, ch in enumerate(chars):
        if not stringprep.in_table_b1(ch):
            mapped = stringprep.map_table_b2(ch)
            if mapped != ch:
                b2[cp] = mapped
        if 0xAC00 <= cp < 0xAC00 + 11172:
            continue
        d = u32.normalize("NFKD", ch)
        if d != ch:
            nfkd[cp] = d
    ccc = {cp: unicodedata.combining(ch) for cp, ch in enumerate(chars)
           if unicodedata.combining(ch)}
    comp = []
    for cp, ch in enumerate(chars):
        d = unicodedata.decomposition(ch)
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", ch) == ch:
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    prohibited = ranges_of(lambda cp: any(
        f(chars[cp]) for f in (stringprep.in_table_c12, stringprep.in_table_c22,
                               stringprep.in_table_c3, stringprep.in_table_c4,
                               stringprep.in_table_c5, stringprep.in_table_c6,
                               stringprep.in_table_c7, stringprep.in_table_c8,
                               stringprep.in_table_c9)))
    randal = ranges_of(lambda cp: stringprep.in_table_d1(chars[cp]))
    lcat = ranges_of(lambda cp: stringprep.in_table_d2(chars[cp]))
    # The Hangul arithmetic `nfd_nfkd` does, checked.
    for s in range(11172):
        l, v, t = 0x1100 + s // 588, 0x1161 + s % 588 // 28, 0x11A7 + s % 28
        want = chr(l) + chr(v) + (chr(t) if t != 0x11A7 else "")
        assert u32.normalize("NFKD", chr(0xAC00 + s)) == want
    out = bytearray()
    put_ranges(out, b1)
    put_map(out, b2)
    put_map(out, nfkd)
    out += varint(len(ccc))
    prev = 0
    for cp in sorted(ccc):
        out += varint(cp - prev) + varint(ccc[cp])
        prev = cp
    out += varint(len(comp))
    for first, second, composite in comp:
        out += varint(first) + varint(second) + varint(composite)
    for ranges in (prohibited, randal, lcat):
        put_ranges(out, ranges)
    print("nameprep:", len(b1), "B.1 ranges,", len(b2), "B.2 maps,", len(nfkd),
          "decompositions,", len(ccc), "classes,", len(comp), "compositions,", len(prohibited),
          "prohibited ranges,", len(randal), "RandAL,", len(lcat), "L")
    return deflated(NAMEPREP_MAGIC, out)


def write_unicode():
    for stem, make in (("unicode_names", unicode_names_blob), ("nameprep", nameprep_blob)):
        blob = make()
        path = os.path.join(CJK_DIR, stem + ".bin")
        with open(path, "wb") as f:
            f.write(blob)
        print("wrote", os.path.relpath(path), len(blob), "bytes")


if __name__ == "__main__" and "--cjk" in sys.argv:
    write_cjk()
elif __name__ == "__main__" and "--unicode" in sys.argv:
    write_unicode()
elif __name__ == "__main__" and "--vectors" not in sys.argv:
    main()


# ------------------------------------------------------------------------------------------
# Test vectors: `gen_codecs.py --vectors` rewrites shared/src/codec/vectors.rs with what Python
# answers, so the Rust tests need no Python.

VECTORS_OUT = os.path.join(os.path.dirname(OUT), "vectors.rs")

LOOKUP_NAMES = [
    "UTF8", "utf-8", "UTF_8", " utf 8 ", "utf.8", "utf--8", "-utf-8-", "u8", "utf", "cp65001",
    "ISO-8859-1", "iso_8859_1:1987", "latin1", "Latin-1", "L1", "8859", "iso8859", "ISO-646.IRV:1991",
    "iso_646.irv_1991", "ansi_x3.4.1968", "ANSI_X3.4-1968", "US-ASCII", "ascii", "646", "cp437",
    "IBM437", "437", "CP-437", "cp-1252", "windows-1252", "WINDOWS 1251", "koi8-r", "KOI8_U",
    "petscii", "PETSCII", "c64", "cbm", "commodore", "c128", "atascii", "atari8bit", "atari_8bit",
    "atari", "atarist", "ATARIST", "big5bbs", "big5", "BIG-5", "big5-hkscs", "gbk", "GB2312",
    "shift_jis", "sjis", "euc-jp", "euc-kr", "iso-2022-jp", "hex", "HEX_CODEC", "base64",
    "base-64", "rot13", "rot-13", "zlib", "zip", "bz2", "uu", "quopri", "idna", "punycode",
    "utf-16", "UTF-16LE", "utf_32_be", "utf-7", "UTF7", "undefined", "charmap", "mbcs", "dbcs",
    "oem", "", "   ", "-", "codepage", "x-bogus-1", "x-penn-def", "aliases", "mac-roman",
    "macintosh", "MacRoman", "mac_latin2", "tis-620", "TIS620", "thai", "cp874", "hp-roman8",
    "roman8", "csHPRoman8", "kz1048", "ptcp154", "palmos", "cp1125", "ruscii", "cp1131", "koi8-t",
    "iso-8859-02", "iso-8859-2", "iso8859-2", "iso88592", "iso-88592", "latin_1_1", "utf8_ucs4",
    "utf_8_sig", "UTF-8-SIG", "unicode-escape", "raw_unicode_escape", "unicode_internal",
    "utf_8.", ".utf8", "utf8.", "petscii.", "ebcdic-cp-us", "037", "cp037", "cp1140", "x.y",
    "encodings", "aliases", "__init__", "cp1006", "euc_jis_2004", "jisx0213", "hz-gb-2312",
    "é", "utf-8é", "ütf8", "UTF\t8", "utf\n8",
    "johab", "cp1361", "ms1361", "eucjis2004", "euc_jis2004", "EUC-JISX0213", "s_jis_2004",
    "ShiftJIS2004", "sjis_2004", "shiftjisx0213", "s_jisx0213", "iso2022jp", "csISO2022JP",
    "iso2022_jp_1", "iso-2022-jp-2", "csiso2022jp2", "iso2022jp-2004", "iso-2022-jp-3",
    "iso2022jp-ext", "csISO2022KR", "iso-2022-kr", "hzgb", "HZ-GB-2312", "hz_gb", "u7", "utf7",
    "unicode-1-1-utf-7", "unicode_escape", "unicodeescape", "raw_unicode_escape",
    "rawunicodeescape", "big5-bbs", "big5_pcman", "idna", "IDNA", "punycode", "undefined",
]

CHARSET_NAMES = [
    "UTF-8", " UTF-8 ", "utf 8", "ISO-8859-02", "iso-8859-001", "iso-8859-00", "iso-08859-1",
    "cp-1250", "CP-1252", "x-penn-def", "x-bogus-1", "", "  ", "ISO 8859 15", "ISO-8859-15",
    "windows-1251", "KOI8-R", "koi8r", "iso-8859", "ISO_8859-1:1987", "US-ASCII", "ANSI_X3.4-1968",
    "hex", "big5", "BIG-5", "petscii", "c64", "iso-ir-100", "ibm-437", "ibm-0437", "cp-00437",
    "a-b-c", "utf-0-8", "latin-01", "cp-1-2-5-2", "iso-8859-1-x", "-0", "-00", "-001-002",
    "iso\t8859\t1", "mac roman", "x-mac-roman", "Shift_JIS", "EUC-KR", "utf-16", "UTF-32BE",
]

BYTE_SAMPLES = [
    b"", b"Hello, world!\r\n", bytes(range(256)), b"\xe2\x82A", b"\xed\xa0\x80x",
    b"\xf0\x9f\x98\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xef\xbb\xbfBOM",
    b"\xf0\x9f\x98", b"\x80abc\xff", b"caf\xc3\xa9 \xe2\x94\x80 \xc3", b"\xb1\xb2\xdb\r\n\x1b[1m",
    b"\x05\x11\x12\x13\x14\x1c\x1d\x1e\x1f\x81\x90\x9f\r\rA\r\nB\n\x9b", b"\x00\x7f\x70\x72",
]

DECODE_ENCODINGS = [
    "utf-8", "UTF8", "utf-8-sig", "ascii", "US-ASCII", "latin-1", "iso-8859-1", "ISO_8859-1",
    "cp437", "IBM437", "cp1252", "cp424", "cp864", "koi8-r", "petscii", "PETSCII", "c64", "cbm",
    "Commodore", "atascii", "atarist", "cp037", "hex", "base64", "rot13", "zlib", "", "codepage",
    "x-bogus", "mac-roman", "iso8859-3", "cp874", "iso-8859-02", "charmap", "tis-620", "palmos",
    "hp-roman8", "kz1048", "cp1131", "koi8-u", "iso-8859-15", "cp850", "cp866", "cp1251", "utf.8",
    "big5", "BIG-5",
]

# Decoded with the big5 names only (after BYTE_SAMPLES), to pin CPython's big5 error handling.
BIG5_SAMPLES = [
    b"\r\n\xa4\xa4\xa4\xe5\r\n> ",  # the "\r\n中文\r\n> " banner of the telnetlib3 diff test
    b"\xa4\x40\xa4\x7f\xff\x41",  # valid, illegal trail (DEL kept), lone 0xFF lead
    b"\xa4", b"abc\xa4", b"\xa4\xa4\xa4", b"\xa4\xa4\xa4\xe5\xa4",  # truncated tails
    b"\xa4\x00\xa4\x0a\xa4\x3f\xa4\x7e\xa4\x80\xa4\xa0\xa4\xa1\xa4\xfe\xa4\xff",  # trails
    b"\x80\x40\xa0\xa1\xa0\x40\xfa\x40\xfe\xfe\xff\xff\xc8\x40\xc8\xa1",  # leads without rows
    b"\xa1\x40\xa3\xbf\xa3\xc0\xc6\xfe\xc7\xfc\xc7\xfd\xf9\xd5\xf9\xd6\xf9\xfe",  # row ends
    b"\xa1\x7f\xa1\xa0\xa1\xa1\xa2\x40\xa2\xfe",  # around the trail gap 0x7F..0xA0
    b"Big5 \xa4\xa4\xa4\xe5 mixed \xa4\x40ASCII\r\n\x1b[1m\xa4\xa4\x1b[0m\xb3\x6f\xaa\xba",
    b"\xa4\x5c\xa5\x5c\xa6\x5c\\",  # trail 0x5C is a backslash in ASCII
]

BIG5_NAMES = ["big5", "csBig5", "big5-tw", "x-mac-trad-chinese"]

# The table-driven and UTF-16/32 decoders (codec/cjk.rs, codec/utf16_32.rs), each with
# BYTE_SAMPLES and these, so their entry points are pinned without Python at test time (the
# exhaustive comparison is codec/pydiff.rs, which needs python3).
CJK_SAMPLES = [
    "欢迎 中文 𝄞 € ようこそ 日本語 ｶﾀｶﾅ 환영합니다 똠방각하 歡迎 香港 Ê̄",
    b"\x81\x30\x81\x30\x81\x30\x81", b"\x8f\xb0\xa1\x8f\xa1", b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xd4\xa4\xd4",
    b"\x88\x62\x88\x64\x87\x40", b"\xff\xfeA\x00\x00\xd8", b"\xfe\xff\x00A\xdc\x80", b"\xff\xfe\x00\x00A\x00\x00\x00",
    b"\x80\x80\x80\x80\x41\x00",
]

CJK_NAMES = [
    "gbk", "GB2312", "gb18030", "big5-hkscs", "cp950", "EUC-JP", "Shift_JIS", "cp932", "EUC-KR",
    "cp949", "utf-16", "UTF-16LE", "utf_16_be", "utf-32", "UTF-32LE", "utf-32-be",
]

# The decoders without a table of their own, or with a new one, through the engine's entry
# points (after BYTE_SAMPLES); the exhaustive comparison is codec/pydiff.rs.
NEW_NAMES = [
    "johab", "euc_jis_2004", "euc_jisx0213", "shift_jis_2004", "shift_jisx0213", "big5bbs",
    "iso2022_jp", "ISO-2022-JP-1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3",
    "iso2022_jp_ext", "ISO-2022-KR", "hz", "utf-7", "unicode_escape", "raw_unicode_escape",
    "punycode", "idna", "undefined",
]

NEW_SAMPLES = [
    "ようこそ か\u309a 日本語 ｶﾀｶﾅ 환영합니다 欢迎 Καλώς 😀 1+1 ~",
    b"\x1b$BF|K\\8l\x1b(B \x1b(J\\~\x1b(I1\x1b(B\x1b[1m\x80\x1b$B\x22\x2f\x1b$",
    b"\x1b$)C\x0eGQ\x0fA\x0eGQ\nGQ\x1b.F\x1bNa\x1b.J\x1bNa",
    b"~{VPND~}~~~\n~{\x80~", b"+ZeVnLIqe-+2D3cAA-+2D0-+AB-\xe9+",
    br"\u00e9\x41\777\N{qq}\N\q\U00110000\x4g\\u0041\u12",
    b"xn--bcher-kva.example.", b"bcher-kva", b"abc-kva!", b"xn--abc-", b"9" * 60 + b"a9a9a9a",
    b"\xa4\xa4\xf9\xf9\x1b[m\xa1", b"\x87\x9f\x8f\xfe\xfa\xd0e\xa4\xf7",
]

REENCODE = [
    (b"yes\r\n", "atascii"), (b"y\r\n", "ATASCII"), (b"\r\n", "atascii"), (b"C\r\n", "atascii"),
    (b"\x1b\x1b", "atascii"), (b"\x08", "atascii"), (b"\x14", "atascii"), (b"2\r\n", "atascii"),
    (b"\r", "atascii"), (b"a\rb", "atascii"), (b"yes\r\n", "atari8bit"), (b"yes\r\n", "atari-8bit"),
    (b"yes\r\n", "utf-8"), (b"big5\r\n", "petscii"), (b"~{}|`\r\n", "atascii"), (b"\xff\r\n", "atascii"),
]


def rs_bytes(b):
    return 'b"' + "".join("\\x%02x" % c for c in b) + '"'


def rs_opt(s):
    return "None" if s is None else "Some(%s)" % rust_str(s)


def py_lookup(name):
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def banner(enc, data):
    from telnetlib3.server_fingerprinting import _format_banner
    try:
        return json.dumps(_format_banner(data, encoding=enc))
    except Exception:  # noqa: BLE001 -- Python raises out of _format_banner
        return None


def lossy(enc, data):
    try:
        text = data.decode(enc, errors="replace")
    except Exception:  # noqa: BLE001 -- as _VirtualCursor.advance
        text = data.decode("latin-1")
    return json.dumps(text)


def mssp_field(enc, data):
    from telnetlib3.mud import _decode_best_effort
    try:
        return json.dumps(_decode_best_effort(data, enc or "utf-8"))
    except Exception:  # noqa: BLE001 -- UnicodeError, RuntimeError: not caught there
        return None


def big5_blobs():
    """Byte strings that hold every (byte, byte) pair, with and without a "\\n" after each."""
    pairs = [bytes([a, b]) for a in range(0x100) for b in range(0x100)]
    return b"\n".join(pairs) + b"\n", b"".join(pairs)


def fnv1a(text):
    """FNV-1a 64 over the code points of `text`, each as 4 little-endian bytes."""
    h = 0xCBF29CE484222325
    for ch in text:
        for byte in ord(ch).to_bytes(4, "little"):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def vectors():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)  # unicode_escape's "\\q" and the like
    import_telnetlib3()
    from telnetlib3.client import TelnetClient
    from telnetlib3.server_fingerprinting import _reencode_prompt
    # Vectors are taken in a fresh registry state: no lookup of a telnetlib3 codec module
    # happened yet, so its aliases are unknown (see codec::lookup).
    lines = [
        "//! Expected answers of CPython %s + telnetlib3 for the codec tests. GENERATED by"
        % sys.version.split()[0],
        "//! `shared/gen/gen_codecs.py --vectors`; do not edit.",
        "",
        "/// (name, `codecs.lookup(name).name`).",
        "pub(super) const LOOKUP: &[(&str, Option<&str>)] = &[",
    ]
    # Two phases: first every name that is not a telnetlib3 codec module name (fresh registry,
    # as in a new telnetlib3-fingerprint process), then those that load a telnetlib3 module.
    t3 = {"petscii", "atascii", "atarist", "big5bbs"}

    def loads_t3(name):
        return name.strip().lower().replace("-", "_") in t3

    lookups, normalized, decoded, reencoded = [], [], [], []
    for phase in (False, True):
        lookups += [(n, py_lookup(n)) for n in LOOKUP_NAMES if loads_t3(n) == phase]
        for n in CHARSET_NAMES:
            if loads_t3(n) == phase:
                cand = TelnetClient._normalize_charset_name(n)
                normalized.append((n, cand, py_lookup(cand)))
        for enc in DECODE_ENCODINGS:
            if loads_t3(enc) == phase:
                for data in BYTE_SAMPLES:
                    decoded.append((enc, data, banner(enc, data), lossy(enc, data), mssp_field(enc, data)))
        for enc in BIG5_NAMES:
            if loads_t3(enc) == phase:
                for data in BIG5_SAMPLES:
                    decoded.append((enc, data, banner(enc, data), lossy(enc, data), mssp_field(enc, data)))
        for enc in CJK_NAMES:
            if loads_t3(enc) == phase:
                for data in BYTE_SAMPLES + CJK_SAMPLES:
                    if isinstance(data, str):
                        data = data.encode(enc, errors="ignore") + b"\r\n> "
                    decoded.append((enc, data, banner(enc, data), lossy(enc, data), mssp_field(enc, data)))
        for enc in NEW_NAMES:
            if loads_t3(enc) == phase:
                for data in BYTE_SAMPLES + NEW_SAMPLES:
                    if isinstance(data, str):
                        try:
                            data = data.encode(enc, errors="ignore") + b"\r\n> "
                        except UnicodeError:  # idna, undefined: "strict" only, or never
                            data = data.encode("utf-8")
                    decoded.append((enc, data, banner(enc, data), lossy(enc, data), mssp_field(enc, data)))
        for data, enc in REENCODE:
            if loads_t3(enc) == phase:
                reencoded.append((data, enc, _reencode_prompt(data, enc)))
    for n, c in lookups:
        lines.append("    (%s, %s)," % (rust_str(n), rs_opt(c)))
    lines.append("];")
    lines.append("")
    lines.append("/// (offered name, `_normalize_charset_name`, lookup of it).")
    lines.append("pub(super) const CHARSET_NORMALIZE: &[(&str, &str, Option<&str>)] = &[")
    for n, cand, c in normalized:
        lines.append("    (%s, %s, %s)," % (rust_str(n), rust_str(cand), rs_opt(c)))
    lines.append("];")
    lines.append("")
    lines.append("/// (encoding, bytes, json of `_format_banner` or None when it raises, json of the")
    lines.append("/// cursor's replace-decode, json of the MSSP field decode or None when it raises).")
    lines.append("pub(super) type DecodeRow = (&'static str, &'static [u8], Option<&'static str>, &'static str, Option<&'static str>);")
    lines.append("")
    lines.append("/// One row per (encoding, sample).")
    lines.append("pub(super) const DECODE: &[DecodeRow] = &[")
    for enc, data, ban, los, mssp in decoded:
        lines.append("    (%s, %s, %s, %s, %s)," % (
            rust_str(enc), rs_bytes(data), rs_opt(ban), rust_str(los), rs_opt(mssp)))
    lines.append("];")
    lines.append("")
    lines.append("/// For each blob of `big5_blobs` (every byte pair, with and without a newline after each):")
    lines.append("/// (code points, FNV-1a of them) of its surrogateescape decode, same for replace.")
    lines.append("pub(super) const BIG5_ALL_PAIRS: [[(usize, u64); 2]; 2] = [")
    for blob in big5_blobs():
        cells = []
        for errors in ("surrogateescape", "replace"):
            text = blob.decode("big5", errors)
            cells.append("(%d, 0x%016X)" % (len(text), fnv1a(text)))
        lines.append("    [%s]," % ", ".join(cells))
    lines.append("];")
    lines.append("")
    lines.append("/// (prompt reply, encoding, `_reencode_prompt`).")
    lines.append("pub(super) const REENCODE: &[(&[u8], &str, &[u8])] = &[")
    for data, enc, out in reencoded:
        lines.append("    (%s, %s, %s)," % (rs_bytes(data), rust_str(enc), rs_bytes(out)))
    lines.append("];")
    lines.append("")
    with open(VECTORS_OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("wrote", VECTORS_OUT)


if __name__ == "__main__" and "--vectors" in sys.argv:
    vectors()
