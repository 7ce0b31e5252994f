//! The driver loop around the engine, without any I/O: after every input or timer, drain
//! `poll_transmit` and `poll_event`, and call `handle_timeout` whenever `poll_timeout() <= now`
//! (ARCHITECTURE.md, "How a scan runs"). The hook (`hook.rs`) supplies the socket and the
//! clock; keeping the loop here lets native tests drive a whole scan in microseconds.

use iacscope_shared::{Event, ScanConfig, Scanner, Timestamp};

/// What one step produced.
#[derive(Debug, Default)]
pub struct Step {
    /// Bytes to send to the server, in order (one binary frame each).
    pub transmit: Vec<Vec<u8>>,
    /// Timeline events, in order.
    pub events: Vec<Event>,
    /// When to call [`Driver::timeout`] next (`None` once done).
    pub next: Option<Timestamp>,
}

/// A scanner and the last time it was given, so time never runs backwards.
pub struct Driver {
    scanner: Scanner,
    now: Timestamp,
}

impl Driver {
    /// Starts the scan at the connect instant (t = 0).
    pub fn new(cfg: ScanConfig) -> (Driver, Step) {
        let mut d = Driver {
            scanner: Scanner::new(cfg, Timestamp(0)),
            now: Timestamp(0),
        };
        let step = d.settle(Timestamp(0));
        (d, step)
    }

    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// Bytes arrived from the server.
    pub fn input(&mut self, now: Timestamp, bytes: &[u8]) -> Step {
        let now = self.clamp(now);
        self.scanner.handle_input(now, bytes);
        self.settle(now)
    }

    /// The server (or the proxy) closed the connection.
    pub fn eof(&mut self, now: Timestamp) -> Step {
        let now = self.clamp(now);
        self.scanner.handle_eof(now);
        self.settle(now)
    }

    /// A timer fired.
    pub fn timeout(&mut self, now: Timestamp) -> Step {
        let now = self.clamp(now);
        self.settle(now)
    }

    pub fn is_done(&self) -> bool {
        self.scanner.is_done()
    }

    fn clamp(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    fn settle(&mut self, now: Timestamp) -> Step {
        let mut step = Step::default();
        loop {
            self.drain(&mut step);
            match self.scanner.poll_timeout() {
                Some(t) if t <= now => self.scanner.handle_timeout(now),
                next => {
                    step.next = next;
                    break;
                }
            }
        }
        step
    }

    fn drain(&mut self, step: &mut Step) {
        while let Some(b) = self.scanner.poll_transmit() {
            step.transmit.push(b);
        }
        while let Some(e) = self.scanner.poll_event() {
            step.events.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iacscope_shared::{EventKind, Phase};

    /// A server that says one line and closes: the driver ends the scan on timers alone.
    #[test]
    fn a_silent_server_scan_runs_to_the_end() {
        let (mut d, first) = Driver::new(ScanConfig::default());
        assert!(
            !first.transmit.is_empty(),
            "the WILL/DO burst goes out at once"
        );
        assert!(first.next.is_some());
        let mut events = first.events;
        let mut step = d.input(Timestamp(10_000), b"Welcome\r\n");
        events.append(&mut step.events);
        let mut steps = 0;
        while let Some(t) = step.next {
            step = d.timeout(t);
            events.append(&mut step.events);
            steps += 1;
            assert!(steps < 1000, "the scan must end");
        }
        assert!(d.is_done());
        assert!(events.iter().any(|e| e.kind
            == EventKind::PhaseStart {
                phase: Phase::Banner
            }));
        assert!(!d.scanner().outcome().fingerprint.is_empty());
    }

    #[test]
    fn time_never_runs_backwards() {
        let (mut d, _) = Driver::new(ScanConfig::default());
        d.input(Timestamp(5_000), b"x");
        let s = d.input(Timestamp(1_000), b"y");
        assert!(s.events.iter().all(|e| e.at >= Timestamp(5_000)));
    }
}
