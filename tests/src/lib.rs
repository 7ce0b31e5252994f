//! Local fake telnet servers (scripted scenarios) and the harness used by the differential tests and `cargo xtask bench-scan`.
//!
//! The scenarios are data: `tests/scenarios.txt`, parsed by [`script`] and run by [`server`].
//! [`harness`] holds the blocking helpers (a server on a background thread, child-process
//! guards, locating `telnetlib3-fingerprint` and `iacscope`, comparing saved records).

pub mod harness;
pub mod script;
pub mod server;

pub use script::{scenario, scenarios, Scenario};
