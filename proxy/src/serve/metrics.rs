//! Counters for `/metrics`, written in the Prometheus text format by hand (a dozen lines do
//! not need a metrics crate).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the connect-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The proxy's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions_active: AtomicU64,
    sessions_total: AtomicU64,
    live_scans_active: AtomicU64,
    live_scans_total: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// A websocket session started (whether or not it connects).
    pub fn session_started(&self) {
        self.sessions_total.fetch_add(1, Relaxed);
        self.sessions_active.fetch_add(1, Relaxed);
    }

    /// A websocket session ended.
    pub fn session_ended(&self) {
        self.sessions_active.fetch_sub(1, Relaxed);
    }

    /// A server-side scan (live embed, badge) took an admission slot: it counts as a
    /// session (as a `/ws` session holding a slot does) and in the live-scan figures.
    pub fn live_scan_started(&self) {
        self.session_started();
        self.live_scans_total.fetch_add(1, Relaxed);
        self.live_scans_active.fetch_add(1, Relaxed);
    }

    /// A server-side scan ended (its admission slot is given back).
    pub fn live_scan_ended(&self) {
        self.live_scans_active.fetch_sub(1, Relaxed);
        self.session_ended();
    }

    /// A session or handshake was refused; `reason` is an error code or a limit label.
    pub fn refused(&self, reason: &'static str) {
        let mut m = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }

    /// Bytes relayed from the browser to the server.
    pub fn add_up(&self, n: u64) {
        self.bytes_up.fetch_add(n, Relaxed);
    }

    /// Bytes relayed from the server to the browser.
    pub fn add_down(&self, n: u64) {
        self.bytes_down.fetch_add(n, Relaxed);
    }

    /// Time from the request to a connected (and TLS-established) upstream.
    pub fn connected(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bucket, le) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= le {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(
            latency.as_micros().min(u128::from(u64::MAX)) as u64,
            Relaxed,
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(2048);
        let g = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        g(
            &mut o,
            "iacscope_sessions_active",
            "gauge",
            "Sessions holding an admission slot now: websocket sessions and server-side scans (live embed, badge).",
        );
        let _ = writeln!(
            o,
            "iacscope_sessions_active {}",
            self.sessions_active.load(Relaxed)
        );
        g(
            &mut o,
            "iacscope_sessions_total",
            "counter",
            "Sessions started: websocket sessions and server-side scans.",
        );
        let _ = writeln!(
            o,
            "iacscope_sessions_total {}",
            self.sessions_total.load(Relaxed)
        );
        g(
            &mut o,
            "iacscope_live_scans_active",
            "gauge",
            "Server-side scans (live embed, badge) running now; also counted in iacscope_sessions_active.",
        );
        let _ = writeln!(
            o,
            "iacscope_live_scans_active {}",
            self.live_scans_active.load(Relaxed)
        );
        g(
            &mut o,
            "iacscope_live_scans_total",
            "counter",
            "Server-side scans started; also counted in iacscope_sessions_total.",
        );
        let _ = writeln!(
            o,
            "iacscope_live_scans_total {}",
            self.live_scans_total.load(Relaxed)
        );
        g(
            &mut o,
            "iacscope_refusals_total",
            "counter",
            "Sessions and handshakes refused, by reason.",
        );
        for (reason, n) in self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(o, "iacscope_refusals_total{{reason=\"{reason}\"}} {n}");
        }
        g(
            &mut o,
            "iacscope_bytes_relayed_total",
            "counter",
            "Bytes relayed, by direction.",
        );
        let _ = writeln!(
            o,
            "iacscope_bytes_relayed_total{{direction=\"up\"}} {}\niacscope_bytes_relayed_total{{direction=\"down\"}} {}",
            self.bytes_up.load(Relaxed),
            self.bytes_down.load(Relaxed)
        );
        g(
            &mut o,
            "iacscope_connect_latency_seconds",
            "histogram",
            "Time from the websocket request to a connected target (DNS, TCP, TLS).",
        );
        for (bucket, le) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                o,
                "iacscope_connect_latency_seconds_bucket{{le=\"{le}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            o,
            "iacscope_connect_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "iacscope_connect_latency_seconds_sum {}",
            self.latency_sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "iacscope_connect_latency_seconds_count {count}");
        o
    }
}
