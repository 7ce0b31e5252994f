//! Canned inputs shared by the native unit tests (`state.rs`) and the browser tests
//! (`browser.rs`): one scan request, the proxy's `connected` for it, events, and the report
//! of a scan driven through the real engine.

use crate::driver::Driver;
use crate::request::{ScanMode, ScanRequest, TlsMode};
use crate::state::{Connection, Report};
use iacscope_shared::record::SessionInfo;
use iacscope_shared::{Event, EventKind, Timestamp};

/// A quick plain-telnet scan of `mud.example.org:4000`.
pub fn req() -> ScanRequest {
    ScanRequest {
        host: "mud.example.org".into(),
        port: 4000,
        tls: TlsMode::Off,
        mode: ScanMode::Quick,
    }
}

/// The proxy's `connected` for [`req`] (session `s1`, 192.0.2.7).
pub fn conn() -> Connection {
    Connection {
        session: "s1".into(),
        host: "mud.example.org".into(),
        ip: "192.0.2.7".into(),
        port: 4000,
        tls: None,
    }
}

/// An event `ms` milliseconds after connect.
pub fn ev(ms: u64, kind: EventKind) -> Event {
    Event {
        at: Timestamp(ms * 1000),
        kind,
    }
}

/// The report of a [`req`] scan whose server sends `input` 5 ms after connect and then
/// nothing: the engine runs every timer to the end.
pub fn report_after(input: &[u8]) -> Report {
    let (mut d, _) = Driver::new(req().config());
    let mut step = d.input(Timestamp(5_000), input);
    while let Some(t) = step.next {
        step = d.timeout(t);
    }
    let session = SessionInfo {
        host: "mud.example.org".into(),
        ip: "192.0.2.7".into(),
        port: 4000,
        connected: "2026-01-01T00:00:00+00:00".into(),
    };
    Report::new(d.scanner().outcome(), &session)
}
