//! Engine throughput: bytes per second through `Scanner::handle_input` (IAC parsing, MCCP2,
//! in-band buffering and timeline events) for plain text, ANSI-dense art, IAC-dense streams
//! and MCCP2-compressed text, plus the ANSI renderer on a 64 KiB banner.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flate2::{Compress, Compression, FlushCompress};
use iacscope_shared::{ScanConfig, Scanner, Timestamp};

const SIZE: usize = 1 << 20;

fn plain() -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog; welcome to the MUD.\r\n";
    line.iter().copied().cycle().take(SIZE).collect()
}

fn ansi_art() -> Vec<u8> {
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

fn iac_dense() -> Vec<u8> {
    let mut v = Vec::with_capacity(SIZE);
    let mut i = 0u8;
    while v.len() < SIZE {
        v.extend_from_slice(&[255, 241, b'a', 255, 255, b'b', 255, 249]);
        v.extend_from_slice(&[255, 250, 201]);
        v.extend_from_slice(b"Char.Vitals {\"hp\": 100}");
        v.extend_from_slice(&[255, 240]);
        i = i.wrapping_add(1);
    }
    v.truncate(SIZE - SIZE % 33);
    v
}

fn mccp2() -> (Vec<u8>, usize) {
    let text = plain();
    let mut z = Compress::new(Compression::default(), true);
    let mut out = Vec::with_capacity(SIZE);
    z.compress_vec(&text, &mut out, FlushCompress::Sync)
        .unwrap();
    let mut v = vec![255, 250, 86, 255, 240];
    v.extend_from_slice(&out);
    (v, text.len())
}

/// A scanner in its banner phase (negotiation over), ready to take bytes.
fn scanner() -> Scanner {
    let mut s = Scanner::new(ScanConfig::default(), Timestamp(0));
    s.handle_timeout(Timestamp(4_000_000));
    while s.poll_event().is_some() {}
    while s.poll_transmit().is_some() {}
    s
}

/// Feeds `input` in 64 KiB reads the way a live driver does: input, then the due timer
/// (so the banner read consumes each chunk: ANSI probes, the virtual cursor, escape
/// stripping, font and prompt checks all run).
fn feed(input: &[u8], read: bool) {
    let mut s = scanner();
    for (i, chunk) in input.chunks(64 * 1024).enumerate() {
        let now = Timestamp(4_000_000 + i as u64);
        s.handle_input(now, chunk);
        if read && s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let (z, plain_len) = mccp2();
    let iac = iac_dense();
    let iac_len = iac.len();
    let inputs = [
        ("plain", plain(), SIZE),
        ("ansi-art", ansi_art(), SIZE),
        ("iac-dense", iac, iac_len),
        ("mccp2 (decompressed bytes)", z, plain_len),
    ];
    // "protocol": parsing, negotiation, MCCP2 and buffering only (the probe phases, where
    // nothing reads the banner); "banner read": also the shell's per-chunk work during a
    // banner read (ANSI probe replies, the virtual cursor, escape stripping, font and
    // prompt checks).
    for (path, read) in [("protocol", false), ("banner read", true)] {
        for (name, input, len) in &inputs {
            g.throughput(Throughput::Bytes(*len as u64));
            g.bench_with_input(BenchmarkId::new(path, name), input, |b, i| {
                b.iter(|| feed(i, read))
            });
        }
    }
    let art = ansi_art();
    let banner = &art[..64 * 1024];
    g.throughput(Throughput::Bytes(banner.len() as u64));
    g.bench_function("render 64 KiB ANSI banner", |b| {
        b.iter(|| iacscope_shared::ansi::render(banner, "utf-8"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
