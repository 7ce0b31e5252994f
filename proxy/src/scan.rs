//! `iacscope scan`: drives the engine over a real TCP (or TLS) connection.

use std::process::ExitCode;

/// Arguments of `iacscope scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Host name or address.
    pub host: String,
    /// Port.
    #[arg(default_value_t = 23)]
    pub port: u16,
}

/// Runs a scan.
pub fn main(_args: ScanArgs) -> ExitCode {
    eprintln!("iacscope scan: not built yet");
    ExitCode::from(2)
}
