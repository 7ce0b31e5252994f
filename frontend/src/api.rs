//! The proxy's permalink HTTP API, from the browser: fetching text, posting a save, and
//! reading fields out of JSON answers with the browser's own parser (the engine's
//! Python-exact parser is kept for records). Every failure is a [`Failure`] the pages turn
//! into a sentence; nothing here renders.

use iacscope_shared::mudsb;
use iacscope_shared::pyjson::{Dict, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Deepest nesting [`to_pyjson`] follows (records nest four or five levels).
pub const MAX_JSON_DEPTH: usize = 32;

/// Why a request gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status, or 0 when the request did not complete.
    pub status: u16,
    /// The proxy's error `code` (`not_found`, `rate_limited`…), when it sent one.
    pub code: String,
    /// The proxy's error `message`, or what went wrong on the way.
    pub message: String,
}

impl Failure {
    fn network(e: &JsValue) -> Failure {
        Failure {
            status: 0,
            code: String::new(),
            message: js_sys::Error::from(e.clone())
                .message()
                .as_string()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the request failed".into()),
        }
    }

    /// Whether the proxy said the thing does not exist.
    pub fn not_found(&self) -> bool {
        self.status == 404
    }

    /// A sentence for the page: what was asked, and why it failed.
    pub fn sentence(&self, what: &str) -> String {
        match self.status {
            0 => format!(
                "Could not reach the iacscope proxy for {what}: {}.",
                self.message
            ),
            s if self.message.is_empty() => format!("The proxy answered {s} for {what}."),
            s => format!("The proxy answered {s} for {what}: {}.", self.message),
        }
    }
}

/// `fetch(url, {method, body})` with the browser's own fetch (no HTTP client library: the
/// bundle stays small); the body as text on a 2xx answer.
async fn fetch(url: &str, post: Option<&str>) -> Result<String, Failure> {
    let init = web_sys::RequestInit::new();
    if let Some(body) = post {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(body));
        let headers = web_sys::Headers::new().map_err(|e| Failure::network(&e))?;
        let _ = headers.set("content-type", "application/json");
        init.set_headers(&headers);
    }
    let promise = gloo::utils::window().fetch_with_str_and_init(url, &init);
    let resp: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| Failure::network(&e))?
        .unchecked_into();
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(|e| Failure::network(&e))?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(Failure::network(&e)),
    };
    if resp.ok() {
        return Ok(text);
    }
    let v = parse(&text).unwrap_or(JsValue::NULL);
    Err(Failure {
        status: resp.status(),
        code: text_field(&v, "error"),
        message: text_field(&v, "message"),
    })
}

fn not_json() -> Failure {
    Failure {
        status: 0,
        code: String::new(),
        message: "the answer is not JSON".into(),
    }
}

/// `GET url`, the body as text on a 2xx answer.
pub async fn get_text(url: &str) -> Result<String, Failure> {
    fetch(url, None).await
}

/// `GET url`, the body parsed as JSON on a 2xx answer.
pub async fn get_json(url: &str) -> Result<JsValue, Failure> {
    parse(&fetch(url, None).await?).ok_or_else(not_json)
}

/// `POST url` with a JSON body; the answer parsed as JSON on a 2xx answer.
pub async fn post_json(url: &str, body: &str) -> Result<JsValue, Failure> {
    parse(&fetch(url, Some(body)).await?).ok_or_else(not_json)
}

/// In the browser the engine leaves a GMCP body unparsed (`mudsb::decode`): check it here
/// with `JSON.parse` and keep it as sent, laid out by [`mudsb::reindent_json`] (a parsed
/// value would show JavaScript's key order and rounded integers, not the server's). Other
/// messages, and native builds, pass through.
pub fn parse_gmcp(d: mudsb::Decoded) -> mudsb::Decoded {
    match d {
        mudsb::Decoded::Gmcp {
            package,
            json: None,
            raw: Some(raw),
            problem: None,
        } if cfg!(target_arch = "wasm32") => {
            let (raw, problem) = match parse(&raw) {
                Some(_) => (mudsb::reindent_json(&raw), None),
                None => (raw, Some("not JSON".to_owned())),
            };
            mudsb::Decoded::Gmcp {
                package,
                json: None,
                raw: Some(raw),
                problem,
            }
        }
        other => other,
    }
}

/// A parsed JSON value as the engine's [`Value`] (for a stored record's tables). Whole
/// numbers become ints; nesting deeper than [`MAX_JSON_DEPTH`] becomes `null`.
pub fn to_pyjson(v: &JsValue) -> Value {
    to_py(v, 0)
}

fn to_py(v: &JsValue, depth: usize) -> Value {
    if depth > MAX_JSON_DEPTH || v.is_null() || v.is_undefined() {
        return Value::Null;
    }
    if let Some(b) = v.as_bool() {
        return Value::Bool(b);
    }
    if let Some(n) = v.as_f64() {
        return if n.fract() == 0.0 && n.abs() < 9.0e15 {
            Value::Int(n as i64)
        } else {
            Value::Float(n)
        };
    }
    if let Some(s) = v.as_string() {
        return Value::str(&s);
    }
    if js_sys::Array::is_array(v) {
        return Value::List(
            js_sys::Array::from(v)
                .iter()
                .map(|x| to_py(&x, depth + 1))
                .collect(),
        );
    }
    let mut d = Dict::new();
    if let Some(obj) = v.dyn_ref::<js_sys::Object>() {
        for key in js_sys::Object::keys(obj).iter() {
            if let Some(k) = key.as_string() {
                let x = js_sys::Reflect::get(v, &key).unwrap_or(JsValue::NULL);
                d.insert(k, to_py(&x, depth + 1));
            }
        }
    }
    Value::Dict(d)
}

/// JSON text parsed by the browser.
pub fn parse(text: &str) -> Option<JsValue> {
    js_sys::JSON::parse(text).ok()
}

/// `v[k]` (undefined when absent).
pub fn field(v: &JsValue, k: &str) -> JsValue {
    if !v.is_object() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// `v[k]` as a string, or empty.
pub fn text_field(v: &JsValue, k: &str) -> String {
    field(v, k).as_string().unwrap_or_default()
}

/// `v[k]` as a whole number in range, or `None`.
pub fn int_field(v: &JsValue, k: &str) -> Option<i64> {
    field(v, k)
        .as_f64()
        .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
        .map(|n| n as i64)
}

/// `v[k]` as a port (1-65535), or `None`.
pub fn port_field(v: &JsValue, k: &str) -> Option<u16> {
    int_field(v, k)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
}

/// The items of the array `v[k]` (none when it is not an array).
pub fn list_field(v: &JsValue, k: &str) -> Vec<JsValue> {
    let a = field(v, k);
    if js_sys::Array::is_array(&a) {
        js_sys::Array::from(&a).iter().collect()
    } else {
        Vec::new()
    }
}

/// An MSSP value as text: a string, a whole number, or the first of a list; `None`
/// otherwise.
pub fn mssp_text(v: &JsValue) -> Option<String> {
    if let Some(s) = v.as_string() {
        return Some(s);
    }
    if let Some(n) = v.as_f64().filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15) {
        return Some((n as i64).to_string());
    }
    if js_sys::Array::is_array(v) {
        return mssp_text(&js_sys::Array::from(v).get(0));
    }
    None
}

/// `window.location.origin`, for absolute links.
pub fn origin() -> String {
    gloo::utils::window()
        .location()
        .origin()
        .unwrap_or_default()
}
