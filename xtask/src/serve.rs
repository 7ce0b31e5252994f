//! `cargo xtask serve`: builds the web app into `dist/` and the `iacscope` binary (both release),
//! then runs `iacscope serve --static-dir dist --listen 127.0.0.1:PORT`. Serving itself is
//! `iacscope serve`'s job; its other flags pass through after `--`.

use crate::util::{self, run};
use crate::web;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The port used when `--port` is not given (`iacscope serve`'s own default).
pub const DEFAULT_PORT: u16 = 8080;

/// Runs the server. `args`: `[--port N] [--allow-private] [-- <extra iacscope serve args>]`.
pub fn run_serve(args: &[String]) -> Result<()> {
    let mut port = DEFAULT_PORT;
    let mut allow_private = false;
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                let v = it.next().context("--port needs a number")?;
                port = v.parse().with_context(|| format!("bad port `{v}`"))?;
            }
            s if s.starts_with("--port=") => {
                port = s["--port=".len()..]
                    .parse()
                    .with_context(|| format!("bad port in `{s}`"))?;
            }
            "--allow-private" => allow_private = true,
            "--" => {
                extra.extend(it.by_ref().cloned());
            }
            "-h" | "--help" => {
                eprintln!(
                    "cargo xtask serve [--port N] [--allow-private] [-- <iacscope serve args>]\n\n\
                     Builds dist/ (trunk, release) and iacscope (release), then runs\n\
                     `iacscope serve --static-dir dist --listen 127.0.0.1:N`. Default port\n\
                     {DEFAULT_PORT}. `cargo xtask serve -- --help` lists iacscope serve's flags."
                );
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (pass iacscope's own flags after `--`)"),
        }
    }

    util::heading("tools");
    web::ensure_web_tools()?;
    util::heading("web app (trunk build --release)");
    web::trunk_build()?;
    util::heading("iacscope (cargo build --release)");
    run(util::cargo().args(["build", "--release", "-p", "iacscope", "--bin", "iacscope"]))?;

    let bin = util::target_dir().join("release/iacscope");
    let mut cmd = Command::new(&bin);
    cmd.current_dir(util::root())
        .arg("serve")
        .arg("--static-dir")
        .arg(web::dist_dir())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    if allow_private {
        cmd.arg("--allow-private");
    }
    cmd.args(&extra);

    util::heading("serve");
    eprintln!("iacscope web inspector: http://127.0.0.1:{port}/");
    eprintln!("$ {}", util::show(&cmd));
    exec(cmd)
}

/// Replaces xtask with the server so Ctrl-C and SIGTERM reach it directly.
fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(err).context("could not start iacscope")
}
