//! Profiling aid: feeds 64 MiB of plain text through the scanner (run under callgrind).
use iacscope_shared::{ScanConfig, Scanner, Timestamp};
fn main() {
    let line = b"The quick brown fox jumps over the lazy dog; welcome to the MUD.\r\n";
    let input: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let mut s = Scanner::new(ScanConfig::default(), Timestamp(0));
    s.handle_timeout(Timestamp(4_000_000));
    for (i, chunk) in input.chunks(64 * 1024).enumerate() {
        let now = Timestamp(4_000_000 + i as u64);
        s.handle_input(now, chunk);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
    }
}
