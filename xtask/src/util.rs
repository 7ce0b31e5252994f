//! Small helpers for xtask: project paths, printed commands, section headings and the step summary.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The target directory xtask uses: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// The cargo that runs xtask (`$CARGO`), so child builds use the same toolchain.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// `$CARGO_HOME/bin` (default `~/.cargo/bin`), where `cargo install` puts tools.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home).join("bin"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo").join("bin"))
}

/// `PATH` with `$CARGO_HOME/bin` in front, so freshly `cargo install`ed tools are found by us
/// and by the tools we start (Trunk looks for `wasm-bindgen` on `PATH`).
pub fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(bin) = cargo_bin_dir() {
        dirs.push(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| std::env::var_os("PATH").unwrap_or_default())
}

/// Finds an executable by name on `PATH` (with `$CARGO_HOME/bin` first).
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&path_with_cargo_bin())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Prints a command the way a shell would show it, then runs it; fails on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    cmd.env("PATH", path_with_cargo_bin());
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs a command quietly and returns its trimmed stdout, or `None` if it could not run or failed.
pub fn output(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .env("PATH", path_with_cargo_bin())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A command line for display: environment overrides, program and arguments.
pub fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter(|(k, _)| *k != "PATH")
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push(
        Path::new(cmd.get_program())
            .file_name()
            .unwrap_or(cmd.get_program())
            .to_string_lossy()
            .into_owned(),
    );
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Prints a section heading.
pub fn heading(title: &str) {
    eprintln!();
    eprintln!(
        "==== {title} {}",
        "=".repeat(70usize.saturating_sub(title.len()))
    );
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Skipped,
    Failed,
}

/// Runs named steps in order, stops at the first failure, and prints a summary table.
#[derive(Debug, Default)]
pub struct Steps {
    done: Vec<(String, Outcome, Duration, String)>,
}

impl Steps {
    /// Runs one step under a heading. `f` returns `Ok(None)` when it ran, `Ok(Some(why))` when
    /// it chose to skip.
    pub fn step(&mut self, name: &str, f: impl FnOnce() -> Result<Option<String>>) -> Result<()> {
        heading(name);
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        match result {
            Ok(None) => {
                self.done
                    .push((name.to_string(), Outcome::Passed, took, String::new()));
                Ok(())
            }
            Ok(Some(why)) => {
                eprintln!("skipped: {why}");
                self.done
                    .push((name.to_string(), Outcome::Skipped, took, why));
                Ok(())
            }
            Err(err) => {
                self.done
                    .push((name.to_string(), Outcome::Failed, took, format!("{err:#}")));
                self.summary();
                Err(err.context(format!("step `{name}` failed")))
            }
        }
    }

    /// Records a step that was left out on request (`--skip` / `--only`).
    pub fn not_selected(&mut self, name: &str) {
        self.done.push((
            name.to_string(),
            Outcome::Skipped,
            Duration::ZERO,
            "not selected".to_string(),
        ));
    }

    /// Prints the summary table.
    pub fn summary(&self) {
        heading("summary");
        let mut total = Duration::ZERO;
        for (name, outcome, took, note) in &self.done {
            total += *took;
            let mark = match outcome {
                Outcome::Passed => "ok  ",
                Outcome::Skipped => "skip",
                Outcome::Failed => "FAIL",
            };
            let note = note.lines().next().unwrap_or("");
            eprintln!("{mark} {name:<34} {:>8}  {note}", fmt_duration(*took));
        }
        eprintln!("     {:<34} {:>8}", "total", fmt_duration(total));
    }
}

/// `1m05s` / `4.2s`.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{secs:.1}s")
    }
}

/// Builds `iacscope` and `fake-telnetd` in release mode into [`target_dir`] (what the scan
/// and crawl benchmarks run); returns the target directory and the two binaries.
pub fn build_scan_bins() -> Result<(PathBuf, PathBuf, PathBuf)> {
    let target = target_dir();
    eprintln!("building iacscope and fake-telnetd (release)…");
    let status = cargo()
        .args([
            "build",
            "--release",
            "-p",
            "iacscope",
            "--bin",
            "iacscope",
            "-p",
            "iacscope-tests",
            "--bin",
            "fake-telnetd",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let exe = |name: &str| {
        target
            .join("release")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    };
    let (iacscope, fake) = (exe("iacscope"), exe("fake-telnetd"));
    Ok((target, iacscope, fake))
}

/// A child process killed and reaped on drop (defined beside the browser driver, which the
/// e2e test includes by path).
pub use crate::webdriver::Process;
