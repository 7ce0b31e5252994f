//! iacscope's negotiation engine: a sans-IO telnet client that plays telnetlib3-fingerprint's
//! side of a server scan, byte for byte.
//!
//! This crate contains no networking code and does not get any timestamps from the operating
//! system: bytes and times go in through `handle_*` methods, bytes to send, timeline events
//! and the next deadline come out through `poll_*` methods. It builds for
//! `wasm32-unknown-unknown` (the web app) and natively (the proxy and `iacscope scan`).

#![forbid(unsafe_code)]

pub mod time;
pub mod transcript;

pub use time::{Micros, Timestamp};

pub mod ansi;
#[doc(hidden)]
pub mod bench_inputs;
pub mod charset;
pub mod codec;
pub mod config;
pub mod describe;
pub mod directory;
pub mod event;
pub mod fuzzing;
pub mod mssp_check;
pub mod mud;
pub mod mudsb;
pub mod prompt;
pub mod protocol;
pub mod pyjson;
pub mod telopt;

/// The telnetlib3 version whose behaviour (and GMCP/ZMP identity) iacscope reproduces.
pub const TELNETLIB3_VERSION: &str = "5.0.1";
pub mod record;
pub mod relay;
pub mod replay;
pub mod scan;
pub mod slc;

pub use config::{ScanConfig, ScanType};
pub use event::{Dir, Event, EventKind, Phase};
pub use record::{ScanOutcome, SessionInfo};
pub use scan::Scanner;
