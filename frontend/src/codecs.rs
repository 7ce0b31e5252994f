//! Codec tables on demand. The engine's decoding tables (`shared/src/codec/data/*.bin`: one
//! per charmap codec, cp437, koi8-r, petscii, … of about 300 bytes each, and the CJK ones, big5,
//! gbk, gb18030, euc_jp, shift_jis, euc_kr, johab, euc_jis_2004, big5bbs, … of 10 to 45 KB)
//! are not compiled into the web app, to keep the bundle within its budget; Trunk copies them
//! to `dist/codecs/` (`index.html`) and the page fetches one when a scan, a permalink or
//! "Decode as" needs it, then hands it to `codec::install_table`. Until then the engine
//! decodes that codec as latin-1 (`codec::is_exact` says so). The codecs whose decoders are
//! code rather than tables (ISO-2022, hz, utf-7, …) are not in the web app's engine at all:
//! they need no table here (`codec::missing_table` is `None`) and stay latin-1.

use iacscope_shared::codec;
use std::cell::RefCell;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Where the app's static files put a table: `/codecs/<name>.bin`.
pub fn table_url(name: &str) -> String {
    format!("/codecs/{name}.bin")
}

/// The tables `encodings` (Python codec names or aliases) need and that are not installed,
/// each once, in order.
pub fn missing<'a>(encodings: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for enc in encodings {
        if let Some(name) = codec::missing_table(enc) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

thread_local! {
    /// Tables being fetched, so a scan that keeps running does not ask twice (a few at a
    /// time; a `Vec` costs the bundle less than a `HashSet`).
    static IN_FLIGHT: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Claims table `name` for fetching: false when a fetch of it is already under way. Call it
/// before spawning [`fetch_table`], so two steps of a scan in a row do not both fetch.
pub fn claim(name: &'static str) -> bool {
    IN_FLIGHT.with(|f| {
        let mut f = f.borrow_mut();
        let new = !f.contains(&name);
        if new {
            f.push(name);
        }
        new
    })
}

/// Fetches and installs table `name` (a name from [`missing`]), then releases the
/// [`claim`]. `Err` is a sentence for the page; the codec then stays latin-1 and a later call
/// tries again.
pub async fn fetch_table(name: &'static str) -> Result<(), String> {
    let result = fetch_bytes(&table_url(name))
        .await
        .and_then(|bytes| codec::install_table(name, &bytes).map_err(|e| e.to_string()));
    IN_FLIGHT.with(|f| f.borrow_mut().retain(|&n| n != name));
    result.map_err(|e| format!("The {name} decoding table could not be loaded ({e}); text in {name} is shown as latin-1."))
}

/// Tells the browser console why a table is missing (the page keeps working, in latin-1).
pub fn warn(sentence: &str) {
    web_sys::console::warn_1(&sentence.into());
}

/// Installs every table `encodings` need; the sentences of those that failed.
pub async fn ensure<'a>(encodings: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut failed = Vec::new();
    for name in missing(encodings) {
        claim(name);
        if let Err(sentence) = fetch_table(name).await {
            failed.push(sentence);
        }
    }
    failed
}

/// `GET url` as bytes, on a 2xx answer.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let js_err = |e: wasm_bindgen::JsValue| {
        js_sys::Error::from(e)
            .message()
            .as_string()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "the request failed".into())
    };
    let resp: web_sys::Response = JsFuture::from(gloo::utils::window().fetch_with_str(url))
        .await
        .map_err(js_err)?
        .unchecked_into();
    if !resp.ok() {
        return Err(format!("the server answered {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(js_err)?)
        .await
        .map_err(js_err)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_by_codec() {
        assert_eq!(table_url("gbk"), "/codecs/gbk.bin");
        // Natively every table is compiled in: nothing is missing.
        assert!(missing(["GBK", "shift_jis", "utf-8", "bogus", "IBM437", "big5"]).is_empty());
        assert_eq!(codec::table_name("cp936"), Some("gbk"));
        assert_eq!(codec::table_name("IBM437"), Some("cp437"));
        assert_eq!(codec::table_name("Latin-1"), None);
        // The new table codecs are named like the others; natively nothing is missing.
        assert_eq!(codec::table_name("cp1361"), Some("johab"));
        assert_eq!(codec::table_name("ShiftJIS2004"), Some("shift_jis_2004"));
        assert_eq!(codec::table_name("big5bbs"), Some("big5bbs"));
        assert!(missing([
            "johab",
            "euc_jisx0213",
            "big5bbs",
            "iso2022_jp",
            "hz",
            "utf-7"
        ])
        .is_empty());
    }
}
