//! `fake-telnetd --scenario NAME [--port N]`: serves one scripted scenario on 127.0.0.1 until
//! killed. `fake-telnetd --many N [--base 127.1.0.1] [--per-addr K] [--mix a,b,…]` serves N
//! listeners at once (K ports per loopback address, from `--base` on through 127.0.0.0/8),
//! scenario i being `mix[i % len]`, and prints `HOST PORT # SCENARIO` per listener, then
//! `ready N`: the crawl benchmark's census of fake servers, in one process.
//!
//! Besides the scenarios of `tests/scenarios.txt`, the mix may name `mute`: accepts, reads
//! and never sends a byte (a server that never answers).

use anyhow::{bail, Context, Result};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Most listeners `--many` opens (each holds a descriptor; connections need more).
const MAX_MANY: usize = 50_000;
/// The default `--many` mix: servers that answer at once, late (`slow-300`, `slow-800`,
/// `banner-pieces`), with a prompt to answer, never (`mute`), or close early.
const DEFAULT_MIX: &str =
    "mush,silent,naive,slow-300,bbs-cp437,weird,banner-pieces,slow-800,utf8-menu,mute,close,legacy";
/// `mute`: never sends anything and ignores what it gets.
const MUTE: &str = "scenario mute\n# Never sends a byte.\npolicy ignore\nwait 100000\n";

fn scenario_named(name: &str) -> Result<iacscope_tests::Scenario> {
    if name == "mute" {
        return iacscope_tests::script::parse(MUTE)?
            .pop()
            .context("mute scenario");
    }
    iacscope_tests::scenario(name).with_context(|| format!("no scenario {name:?} (see --list)"))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut name = None;
    let mut port: u16 = 0;
    let mut many: Option<usize> = None;
    let mut base = Ipv4Addr::new(127, 1, 0, 1);
    let mut per_addr: usize = 2;
    let mut mix = DEFAULT_MIX.to_owned();
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
            "--many" => {
                many = Some(
                    args.next()
                        .context("--many needs a number")?
                        .parse()
                        .context("bad --many")?,
                )
            }
            "--base" => {
                base = args
                    .next()
                    .context("--base needs an address")?
                    .parse()
                    .context("bad --base")?
            }
            "--per-addr" => {
                per_addr = args
                    .next()
                    .context("--per-addr needs a number")?
                    .parse()
                    .context("bad --per-addr")?
            }
            "--mix" => mix = args.next().context("--mix needs a list")?,
            "--list" => {
                for s in iacscope_tests::scenarios() {
                    println!("{:24} {}", s.name, s.description);
                }
                return Ok(());
            }
            "-h" | "--help" => {
                println!(
                    "usage: fake-telnetd --scenario NAME [--port N] | --list\n       \
                     fake-telnetd --many N [--base 127.1.0.1] [--per-addr K] [--mix a,b,…]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(n) = many {
        return rt.block_on(serve_many(n, base, per_addr, &mix));
    }
    let name = name.context("--scenario NAME or --many N is required (see --help)")?;
    let scenario = scenario_named(&name)?;
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

/// `--many`: `n` listeners, `per_addr` per address from `base` on, all in this runtime.
async fn serve_many(n: usize, base: Ipv4Addr, per_addr: usize, mix: &str) -> Result<()> {
    if n == 0 || n > MAX_MANY {
        bail!("--many must be 1 to {MAX_MANY}");
    }
    if per_addr == 0 {
        bail!("--per-addr must be at least 1");
    }
    if !base.is_loopback() {
        bail!("--base must be a loopback address (127.0.0.0/8)");
    }
    let mix: Vec<Arc<iacscope_tests::Scenario>> = mix
        .split(',')
        .map(|s| scenario_named(s.trim()).map(Arc::new))
        .collect::<Result<_>>()?;
    if mix.is_empty() {
        bail!("--mix names no scenario");
    }
    let addrs = n.div_ceil(per_addr) as u32;
    if u32::from(base).saturating_add(addrs) > u32::from(Ipv4Addr::new(127, 255, 255, 254)) {
        bail!("{n} servers at {per_addr} per address do not fit in 127.0.0.0/8 from {base}");
    }
    // Every listener and every connection holds a descriptor: take what the hard limit allows.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..n {
        let ip = Ipv4Addr::from(u32::from(base) + (i / per_addr) as u32);
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .with_context(|| format!("binding {ip}:0 (server {i})"))?;
        let port = listener.local_addr()?.port();
        let scenario = Arc::clone(&mix[i % mix.len()]);
        writeln!(out, "{ip} {port} # {}", scenario.name)?;
        tokio::spawn(async move {
            if let Err(e) = iacscope_tests::server::serve(listener, scenario).await {
                eprintln!("fake-telnetd: {ip}:{port}: {e}");
            }
        });
    }
    writeln!(out, "ready {n}")?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}
