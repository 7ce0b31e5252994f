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
fn big5_is_a_fetched_table_too() {
    // "中文" in big5: latin-1 until the table is installed, under any of big5's names.
    let bytes = b"\xa4\xa4\xa4\xe5";
    assert_eq!(codec::missing_table("csBig5"), Some("big5"));
    assert!(!codec::is_exact("big5"));
    assert_eq!(
        codec::decode_lossy("big5", bytes),
        "\u{a4}\u{a4}\u{a4}\u{e5}"
    );
    let big5: &[u8] = include_bytes!("../../shared/src/codec/data/big5.bin");
    assert!(codec::install_table("big5hkscs", big5).is_err());
    codec::install_table("big5", big5).unwrap();
    assert!(codec::is_exact("big5-tw") && codec::missing_table("big5").is_none());
    assert_eq!(codec::decode_lossy("x-mac-trad-chinese", bytes), "中文");
    // big5hkscs and cp950 keep their own tables.
    assert_eq!(codec::missing_table("cp950"), Some("cp950"));
}
