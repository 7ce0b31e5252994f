//! Exports functions that drive the engine's public API from wasm, so the linker keeps the
//! engine's code and xtask can check what the module imports. Not a product: if the engine gets
//! an entry point that `fuzzing::fuzz_scan` does not reach, call it here too, or the check
//! cannot see that code.

use iacscope_shared::transcript::{self, Transcript};
use iacscope_shared::{Micros, Timestamp};

/// `len` pseudo-random bytes from `seed` (xorshift): inputs come from the caller, so nothing
/// the probe calls can be constant-folded away.
fn bytes_from(seed: u64, len: u32) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len as usize);
    for _ in 0..len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.push(state as u8);
    }
    bytes
}

/// Drives a whole scan (the `Scanner`, the protocol, codecs, ANSI and prompt detection, the
/// fingerprint record) through the engine's fuzz body, which takes arbitrary bytes.
#[no_mangle]
pub extern "C" fn probe_scan(seed: u64, len: u32) {
    iacscope_shared::fuzzing::fuzz_scan(&bytes_from(seed, len));
}

/// Parses pseudo-random transcript text, renders it back, and returns a digest.
#[no_mangle]
pub extern "C" fn probe_transcript(seed: u64, len: u32) -> u64 {
    let bytes = bytes_from(seed, len);
    let mut text = String::from(transcript::MAGIC);
    text.push('\n');
    transcript::escape_into(&bytes, &mut text);
    let mut digest = text.len() as u64;
    match Transcript::parse(&String::from_utf8_lossy(&bytes)) {
        Ok(t) => digest ^= t.to_text().len() as u64 ^ t.payload_bytes() as u64,
        Err(e) => digest ^= e.line as u64 ^ e.message.len() as u64,
    }
    if let Ok(raw) = transcript::unescape(&text) {
        digest = digest.wrapping_mul(31) ^ raw.len() as u64;
    }
    digest
}

/// Exercises the time types, including float formatting and parsing of seconds.
#[no_mangle]
pub extern "C" fn probe_time(micros: u64, secs: f64) -> u64 {
    let t = Timestamp(micros) + Micros::from_secs_f64(secs);
    let shown = format!("{t} {}", t.as_secs_f64());
    t.since(Timestamp::ZERO).0 ^ shown.len() as u64
}
