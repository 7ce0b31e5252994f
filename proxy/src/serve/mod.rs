//! `iacscope serve`: the websocket-to-telnet proxy (being built; see issue 3).

use std::process::ExitCode;

/// Arguments of `iacscope serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs the server.
pub fn main(_args: ServeArgs) -> ExitCode {
    eprintln!("iacscope serve: not built yet");
    ExitCode::from(2)
}
