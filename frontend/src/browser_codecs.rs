//! Browser tests of the codec table registry as the web app sees it: in wasm no table is
//! compiled in, so a table codec is latin-1 (and not exact) until its table is installed.

use crate::codecs;
use iacscope_shared::codec;
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
fn code_only_codecs_are_latin1_in_the_browser() {
    // Their decoders are not in the bundle (`codec::compiled_in`): latin-1, not exact, and no
    // table would help.
    for enc in [
        "iso2022_jp",
        "ISO-2022-KR",
        "hz",
        "utf-7",
        "unicode_escape",
        "punycode",
    ] {
        assert!(!codec::is_exact(enc), "{enc}");
        assert_eq!(codec::missing_table(enc), None, "{enc}");
    }
    assert_eq!(codec::decode_lossy("hz", b"~{VP~}"), "~{VP~}");
    // The new table codecs are fetched like the others.
    assert_eq!(codec::missing_table("cp1361"), Some("johab"));
    assert_eq!(codec::missing_table("big5bbs"), Some("big5bbs"));
}
