//! Benchmark inputs and the driver loop they run through, shared by the native criterion
//! benchmark (`shared/benches/engine.rs`) and the in-browser one (`cargo xtask bench-web`,
//! the web app's `bench` feature), so both measure the same bytes the same way. Not part of
//! the engine's behaviour.

use crate::{ScanConfig, Scanner, Timestamp};
use flate2::{Compress, Compression, FlushCompress};

/// Size of each input.
pub const SIZE: usize = 1 << 20;

/// Read size the drivers use.
pub const READ: usize = 64 * 1024;

/// Plain 7-bit text lines.
pub fn plain() -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog; welcome to the MUD.\r\n";
    line.iter().copied().cycle().take(SIZE).collect()
}

/// ANSI art: SGR 16/256/24-bit colours around block characters.
pub fn ansi_art() -> Vec<u8> {
    let mut v = Vec::with_capacity(SIZE);
    let mut i = 0u32;
    while v.len() < SIZE {
        v.extend_from_slice(
            format!(
                "\x1b[1;{}m\u{2588}\x1b[38;5;{}m\u{2593}\x1b[48;2;{};{};{}m\u{2591}",
                30 + i % 8,
                i % 256,
                i % 256,
                (i * 7) % 256,
                (i * 13) % 256
            )
            .as_bytes(),
        );
        if i % 20 == 19 {
            v.extend_from_slice(b"\x1b[0m\r\n");
        }
        i += 1;
    }
    v.truncate(SIZE);
    v
}

/// Commands, doubled IACs and GMCP sub-negotiations, back to back.
pub fn iac_dense() -> Vec<u8> {
    let mut v = Vec::with_capacity(SIZE);
    while v.len() < SIZE {
        v.extend_from_slice(&[255, 241, b'a', 255, 255, b'b', 255, 249]);
        v.extend_from_slice(&[255, 250, 201]);
        v.extend_from_slice(b"Char.Vitals {\"hp\": 100}");
        v.extend_from_slice(&[255, 240]);
    }
    v.truncate(SIZE - SIZE % 33);
    v
}

/// [`plain`] after `IAC SB MCCP2 IAC SE`, compressed; with the decompressed length.
pub fn mccp2() -> (Vec<u8>, usize) {
    let text = plain();
    let mut z = Compress::new(Compression::default(), true);
    let mut out = Vec::with_capacity(SIZE);
    // A Vec with room for the whole input never runs out of space: the result is `Ok`.
    let _ = z.compress_vec(&text, &mut out, FlushCompress::Sync);
    let mut v = vec![255, 250, 86, 255, 240];
    v.extend_from_slice(&out);
    (v, text.len())
}

/// The inputs by name, each with the byte count its throughput is counted in (for MCCP2,
/// the decompressed bytes).
pub fn inputs() -> Vec<(&'static str, Vec<u8>, usize)> {
    let (z, plain_len) = mccp2();
    let iac = iac_dense();
    let iac_len = iac.len();
    vec![
        ("plain", plain(), SIZE),
        ("ansi-art", ansi_art(), SIZE),
        ("iac-dense", iac, iac_len),
        ("mccp2 (decompressed bytes)", z, plain_len),
    ]
}

/// A scanner in its banner phase (negotiation over), ready to take bytes.
pub fn scanner() -> Scanner {
    let mut s = Scanner::new(ScanConfig::default(), Timestamp(0));
    s.handle_timeout(Timestamp(4_000_000));
    while s.poll_event().is_some() {}
    while s.poll_transmit().is_some() {}
    s
}

/// Feeds `input` in [`READ`]-byte reads the way a live driver does: input, then (with
/// `read`, the banner-read path) the due timer, so the banner read consumes each chunk:
/// ANSI probes, the virtual cursor, escape stripping, font and prompt checks all run.
/// Without `read` it is the protocol path: parsing, negotiation, MCCP2 and buffering.
pub fn feed(input: &[u8], read: bool) {
    let mut s = scanner();
    for (i, chunk) in input.chunks(READ).enumerate() {
        let now = Timestamp(4_000_000 + i as u64);
        s.handle_input(now, chunk);
        if read && s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
    }
}
