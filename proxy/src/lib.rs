//! The native side of iacscope: the `iacscope scan` command line (a thin tokio driver around
//! the `iacscope-shared` engine), `iacscope serve`, the websocket-to-telnet proxy, and
//! `iacscope import`/`export` of telnetlib3 data directories.
//!
//! Telnet is interpreted only by the engine; the proxy relays and records bytes.

pub mod cli;
pub mod directory;
pub mod escape;
pub mod nofollow;
pub mod relay;
pub mod scan;
pub mod serve;
pub mod transfer;
