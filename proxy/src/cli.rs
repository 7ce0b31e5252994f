//! Command-line parsing and dispatch for the `iacscope` binary (`scan`, `serve`, `import`,
//! `export`, `crawl`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A telnet negotiation inspector: scan a server, or serve the web inspector.
#[derive(Debug, Parser)]
#[command(name = "iacscope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a telnet server and print its fingerprint (telnetlib3-fingerprint compatible).
    Scan(Box<crate::scan::ScanArgs>),
    /// Serve the web inspector and the websocket-to-telnet proxy.
    Serve(crate::serve::ServeArgs),
    /// Load a telnetlib3-fingerprint data directory (`server/<fingerprint>/<session>.json`).
    Import(crate::transfer::ImportArgs),
    /// Write every stored scan as a telnetlib3-fingerprint data directory.
    Export(crate::transfer::ExportArgs),
    /// Scan every server of seed lists into the store, many at once, resumably.
    Crawl(Box<crate::directory::crawl::CrawlArgs>),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => crate::scan::main(*args),
        Command::Serve(args) => crate::serve::main(args),
        Command::Import(args) => crate::transfer::import_main(args),
        Command::Export(args) => crate::transfer::export_main(args),
        Command::Crawl(args) => crate::directory::crawl::main(*args),
    }
}
