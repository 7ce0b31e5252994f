//! The relay: the websocket-to-telnet bridge and what guards it. `session` runs one `/ws`
//! session (resolve once, check, connect, relay both directions under its timers) and
//! exports `connect` for server-side scans; `policy` is the SSRF guard (pure functions);
//! `limits` admits sessions (global, per client, per target, fair give-way); `tls` holds the
//! rustls client configurations; `sniff` tells other protocols by their first bytes;
//! `store` keeps session transcripts in memory, bounded by what they cost.
//!
//! The relay carries and records bytes and never interprets telnet. It knows nothing of the
//! directory (`crate::directory`: stored scans, widgets, crawls): the directory uses the
//! relay, never the other way round. The shared server context (`crate::serve::AppState`,
//! its `Config` and `metrics`) is read by both.

pub mod limits;
pub mod policy;
pub mod session;
pub mod sniff;
pub mod store;
pub mod tls;
