//! Browser tests of the codecs as the web app sees them: in wasm no table is compiled in, so
//! a table codec is latin-1 (and not exact) until its table is installed (unicode_escape's
//! Unicode names and idna's nameprep tables too); every decoder is.

use crate::codecs;
use iacscope_shared::codec::{self, PyStr};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn a_table_codec_is_latin1_until_its_table_is_installed() {
    assert_eq!(codec::missing_table("GBK"), Some("gbk"));
    assert_eq!(
        codecs::missing(["cp936", "gbk", "utf-8", "utf-16"]),
        ["gbk"]
    );
    assert!(!codec::is_exact("gbk"));
    assert_eq!(codec::decode_lossy("gbk", b"\xd6\xd0"), "\u{d6}\u{d0}");
    // utf-16/32 need no table.
    assert!(codec::is_exact("utf-16") && codec::missing_table("utf-16").is_none());
    assert_eq!(codec::decode_lossy("utf-16", b"\xff\xfeA\x00"), "A");
    let gbk: &[u8] = include_bytes!("../../shared/src/codec/data/gbk.bin");
    assert!(codec::install_table("gbk", b"not a table").is_err());
    assert!(codec::install_table("euc_kr", gbk).is_err());
    assert!(codec::install_table("gbk", gbk.get(..gbk.len() - 1).unwrap()).is_err());
    assert_eq!(codec::missing_table("euc_kr"), Some("euc_kr"));
    codec::install_table("gbk", gbk).unwrap();
    assert!(codec::is_exact("cp936"));
    assert_eq!(codec::missing_table("gbk"), None);
    assert_eq!(codec::decode_lossy("gbk", b"\xd6\xd0\xff"), "中\u{fffd}");
    // gb2312 has its own table, still missing.
    assert_eq!(codec::missing_table("gb2312"), Some("gb2312"));
}

#[wasm_bindgen_test]
async fn a_table_that_cannot_be_fetched_is_a_sentence() {
    // The test runner serves no `/codecs/`: the fetch fails and the codec stays latin-1.
    let err = codecs::fetch_table("shift_jis").await.unwrap_err();
    assert!(err.contains("shift_jis"), "{err}");
    assert_eq!(codec::missing_table("sjis"), Some("shift_jis"));
    // The claim was released, so a later attempt can fetch again.
    assert!(codecs::claim("shift_jis"));
}

#[wasm_bindgen_test]
fn code_codecs_decode_exactly_in_the_browser() {
    // utf-7, raw_unicode_escape and punycode are code only: exact with no table.
    assert!(codec::is_exact("utf-7") && codec::missing_table("utf-7").is_none());
    assert_eq!(codec::decode_lossy("utf-7", b"Hi +AKM-1"), "Hi \u{a3}1");
    assert_eq!(
        codec::decode_lossy("raw_unicode_escape", b"\\u00e9\\x41"),
        "\u{e9}\\x41"
    );
    assert!(codec::is_exact("punycode"));
    // unicode_escape needs the Unicode names (for `\N{…}`): latin-1 and not exact until they
    // are installed.
    let escaped = b"\\N{bel}\\N{HANGUL SYLLABLE GAG}\\u4e2d\\x41";
    assert_eq!(
        codec::missing_table("unicode-escape"),
        Some("unicode_names")
    );
    assert!(!codec::is_exact("unicode_escape"));
    assert_eq!(
        codec::decode_lossy("unicode_escape", escaped),
        String::from_utf8_lossy(escaped)
    );
    let names: &[u8] = include_bytes!("../../shared/src/codec/data/unicode_names.bin");
    let nameprep: &[u8] = include_bytes!("../../shared/src/codec/data/nameprep.bin");
    assert!(codec::install_table("unicode_names", nameprep).is_err());
    assert!(codec::install_table("unicode_names", names.get(..1000).unwrap()).is_err());
    codec::install_table("unicode_names", names).unwrap();
    assert!(codec::is_exact("unicode_escape") && codec::missing_table("unicode_escape").is_none());
    assert_eq!(
        codec::decode_lossy("unicode_escape", escaped),
        "\x07\u{ac01}\u{4e2d}A"
    );
    assert_eq!(
        codec::decode_lossy("unicode_escape", b"\\N{NO SUCH NAME}!"),
        "\u{fffd}!"
    );
    // idna needs nameprep's tables: "xn--zca" (ß, which nameprep maps to "ss") is latin-1
    // until they are installed, then refused as Python refuses it.
    assert_eq!(codec::missing_table("idna"), Some("nameprep"));
    assert!(!codec::is_exact("idna"));
    assert_eq!(
        codec::try_decode_mssp_field("idna", b"xn--zca"),
        Ok(PyStr::from("xn--zca"))
    );
    codec::install_table("nameprep", nameprep).unwrap();
    assert!(codec::is_exact("idna") && codec::missing_table("idna").is_none());
    assert!(codec::try_decode_mssp_field("idna", b"xn--zca").is_err());
    assert_eq!(
        codec::try_decode_mssp_field("idna", b"xn--Mnchen-3ya"),
        Ok(PyStr::from("M\u{fc}nchen"))
    );
    // The ISO-2022 codecs and hz are code over a table: latin-1 and not exact until the
    // table they look their double-byte sets up in is installed.
    assert_eq!(codec::missing_table("hz"), Some("gb2312"));
    assert_eq!(codec::missing_table("iso2022_jp"), Some("euc_jp"));
    assert_eq!(codec::missing_table("ISO-2022-KR"), Some("euc_kr"));
    assert_eq!(codec::missing_table("iso2022_jp_2"), Some("iso2022_jp_2"));
    assert!(!codec::is_exact("iso2022_jp_2"));
    let jis = b"\x1b$B\x43\x46\x1b(BA";
    assert_eq!(
        codec::decode_lossy("iso2022_jp_2", jis),
        "\u{1b}$BCF\u{1b}(BA"
    );
    let table: &[u8] = include_bytes!("../../shared/src/codec/data/iso2022_jp_2.bin");
    codec::install_table("iso2022_jp_2", table).unwrap();
    assert!(codec::is_exact("iso2022_jp_2") && codec::is_exact("ISO-2022-JP-2"));
    assert_eq!(codec::decode_lossy("iso2022_jp_2", jis), "\u{5f3e}A");
    // The other table codecs are fetched like the rest.
    assert_eq!(codec::missing_table("cp1361"), Some("johab"));
    assert_eq!(codec::missing_table("big5bbs"), Some("big5bbs"));
}
