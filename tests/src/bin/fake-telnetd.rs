//! `fake-telnetd --scenario NAME [--port N]`: serves one scripted scenario on 127.0.0.1 until killed.

use anyhow::{bail, Context, Result};
use std::io::Write as _;
use std::sync::Arc;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut name = None;
    let mut port: u16 = 0;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scenario" => name = Some(args.next().context("--scenario needs a value")?),
            "--port" => {
                port = args
                    .next()
                    .context("--port needs a value")?
                    .parse()
                    .context("bad --port")?
            }
            "--list" => {
                for s in iacscope_tests::scenarios() {
                    println!("{:24} {}", s.name, s.description);
                }
                return Ok(());
            }
            "-h" | "--help" => {
                println!("usage: fake-telnetd --scenario NAME [--port N] | --list");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let name = name.context("--scenario NAME is required (see --list)")?;
    let scenario = iacscope_tests::scenario(&name)
        .with_context(|| format!("no scenario {name:?} (see --list)"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
        iacscope_tests::server::serve(listener, Arc::new(scenario)).await?;
        Ok(())
    })
}
