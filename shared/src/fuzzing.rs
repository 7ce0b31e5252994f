//! Fuzz bodies, kept in the library so that the corpus also runs under plain `cargo test`
//! (the `fuzz/` crate outside the workspace is a thin cargo-fuzz shell around these).

use crate::config::{ScanConfig, ScanType};
use crate::scan::Scanner;
use crate::time::Timestamp;

/// Most operations one input drives, so a case stays fast.
const MAX_OPS: usize = 4096;

/// Drives a scanner with an arbitrary script: each operation is one control byte followed by
/// its payload. `0..=199`: receive the next `(b % 64) + 1` bytes after advancing the clock by
/// `b` milliseconds; `200..=239`: a timer tick after `(b - 200) * 100` ms; `240..=249`: run
/// every due timer; `250..`: end of stream. The first byte picks quick or full, TLS and an
/// explicit encoding. Checks the engine's invariants: no panic, time never runs backwards in
/// its deadlines, the record is built once the scan is done.
pub fn fuzz_scan(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = ScanConfig {
        scan_type: if flags & 1 == 0 {
            ScanType::Quick
        } else {
            ScanType::Full
        },
        tls: flags & 2 != 0,
        encoding: if flags & 4 != 0 {
            "cp437".into()
        } else {
            "ascii".into()
        },
        ..ScanConfig::default()
    };
    let mut now = Timestamp::ZERO;
    let mut s = Scanner::new(cfg, now);
    let mut ops = 0;
    while let Some((&op, tail)) = rest.split_first() {
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        rest = tail;
        match op {
            0..=199 => {
                now = Timestamp(now.0 + u64::from(op) * 1000);
                let n = ((op % 64) as usize + 1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                s.handle_input(now, chunk);
            }
            200..=239 => {
                now = Timestamp(now.0 + u64::from(op - 200) * 100_000);
                s.handle_timeout(now);
            }
            240..=249 => {
                if let Some(t) = s.poll_timeout() {
                    assert!(t >= Timestamp::ZERO);
                    if t > now {
                        now = t;
                    }
                    s.handle_timeout(now);
                }
            }
            _ => s.handle_eof(now),
        }
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
    }
    // Let the scan finish: every phase has a deadline, so a bounded number of ticks ends it.
    for _ in 0..64 {
        if s.is_done() {
            break;
        }
        match s.poll_timeout() {
            Some(t) => {
                if t > now {
                    now = t;
                }
                s.handle_timeout(now);
            }
            None => break,
        }
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
    }
    assert!(s.is_done(), "the scan must end once its timers have run");
    let _ = crate::pyjson::to_pretty(&s.outcome().record(&crate::record::SessionInfo {
        host: "h".into(),
        ip: "127.0.0.1".into(),
        port: 23,
        connected: "1970-01-01T00:00:00+00:00".into(),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_tiny_inputs() {
        fuzz_scan(&[]);
        fuzz_scan(&[0]);
        fuzz_scan(&[0, 255]);
        fuzz_scan(&[1, 3, 0xff, 0xfa, 0x18, 250]);
    }
}
