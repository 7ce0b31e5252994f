//! Engine throughput: bytes per second through `Scanner::handle_input` (IAC parsing, MCCP2,
//! in-band buffering and timeline events) for plain text, ANSI-dense art, IAC-dense streams
//! and MCCP2-compressed text, plus the ANSI renderer on a 64 KiB banner.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iacscope_shared::bench_inputs::{ansi_art, feed, inputs};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let inputs = inputs();
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
