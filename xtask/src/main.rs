//! Project tasks (matklad's xtask pattern): `cargo xtask test`, `serve` and the benchmarks. Only
//! cargo is needed to start; every other tool is installed on demand by `tools`.

mod bench_crawl;
mod bench_proxy;
mod bench_scan;
mod bench_web;
mod e2e;
mod postgres;
mod serve;
mod test;
mod tools;
mod util;
mod wasm_check;
mod web;
// Shared with `tests/tests/e2e_browser.rs` (included there with `#[path]`); each user needs
// part of it.
#[allow(dead_code)]
mod webdriver;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task> [args]

tasks:
  test          every check: fmt, clippy, native tests, wasm engine check, web build,
                browser tests (`cargo xtask test --help` lists the steps)
  serve         build the web app and iacscope (release) and run `iacscope serve`
                [--port N] [--allow-private] [-- <iacscope serve args>]
  bench-scan    scan benchmark
  bench-proxy   proxy benchmark
  bench-crawl   census benchmark: `iacscope crawl` vs modem.xyz's 20 telnetlib3-fingerprint
                workers on thousands of fake loopback servers [--servers N] [--sample N]
  bench-web     web app benchmark: bundle size, time to interactive, banner and timeline
                rendering in headless Chromium, against budgets [--runs N]
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => {
            eprint!("{HELP}");
            return ExitCode::from(2);
        }
    };
    let result = match task {
        "test" => test::run_all(rest),
        "serve" => serve::run_serve(rest),
        "bench-scan" => bench_scan::run(rest),
        "bench-proxy" => bench_proxy::run(rest),
        "bench-crawl" => bench_crawl::run(rest),
        "bench-web" => bench_web::run(rest),
        "-h" | "--help" | "help" => {
            eprint!("{HELP}");
            return ExitCode::SUCCESS;
        }
        other => Err(anyhow::anyhow!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err:#}");
            ExitCode::FAILURE
        }
    }
}
