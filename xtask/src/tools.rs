//! Makes sure the tools the build and the tests need are present: install what is missing, skip
//! what is there. Nothing here downloads a prebuilt binary: tools come from rustup, `cargo
//! install` (crates.io), apt (Debian) or pip (PyPI).

use crate::util::{self, output, run, which};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Trunk's version; newer releases need a newer rustc than our MSRV.
pub const TRUNK_VERSION: &str = "0.21.14";
/// Python packages the differential tests use (telnetlib3-fingerprint is the reference).
pub const PY_PACKAGES: &[(&str, &str)] = &[("telnetlib3", "5.0.1"), ("websockify", "0.13.0")];
/// The browser tests' driver, as Debian installs it.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// What a task needs.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub web: bool,
    pub browser: bool,
    pub python: bool,
}

/// Ensures every tool in `needs`, printing one line per tool.
pub fn ensure(needs: Needs) -> Result<()> {
    if needs.web {
        ensure_wasm_target()?;
        ensure_trunk()?;
        ensure_wasm_bindgen()?;
    }
    if needs.browser {
        ensure_chromium()?;
    }
    if needs.python {
        ensure_python_venv()?;
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    const TARGET: &str = "wasm32-unknown-unknown";
    let sysroot = output("rustc", &["--print", "sysroot"]).context("rustc not found")?;
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    if lib.is_dir() {
        eprintln!("have  rust target {TARGET}");
        return Ok(());
    }
    eprintln!("need  rust target {TARGET}");
    run(Command::new("rustup").args(["target", "add", TARGET]))
}

fn ensure_trunk() -> Result<()> {
    let want = format!("trunk {TRUNK_VERSION}");
    match output("trunk", &["--version"]) {
        Some(v) if v == want => {
            eprintln!("have  {v}");
            return Ok(());
        }
        Some(v) => eprintln!("need  {want} (found {v})"),
        None => eprintln!("need  {want}"),
    }
    run(util::cargo().args(["install", "trunk", "--version", TRUNK_VERSION, "--locked"]))
}

/// The `wasm-bindgen` version pinned in Cargo.lock; the CLI must match it exactly.
pub fn wasm_bindgen_lock_version() -> Result<String> {
    let lock =
        std::fs::read_to_string(util::root().join("Cargo.lock")).context("reading Cargo.lock")?;
    lock_version(&lock, "wasm-bindgen").context("wasm-bindgen is not in Cargo.lock")
}

/// Finds `version = "..."` of the `[[package]]` named `name` in a Cargo.lock.
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let next = lines.next()?.trim();
            let v = next.strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

fn ensure_wasm_bindgen() -> Result<()> {
    let version = wasm_bindgen_lock_version()?;
    let want = format!("wasm-bindgen {version}");
    let have = output("wasm-bindgen", &["--version"]);
    let runner = which("wasm-bindgen-test-runner").is_some();
    match have {
        Some(v) if v == want && runner => {
            eprintln!("have  {v} (+ wasm-bindgen-test-runner)");
            return Ok(());
        }
        Some(v) => eprintln!("need  {want} (found {v})"),
        None => eprintln!("need  {want}"),
    }
    // Not `--locked`: the CLI's own lock file pins dependencies that no longer build.
    run(util::cargo().args(["install", "wasm-bindgen-cli", "--version", &version]))
}

fn ensure_chromium() -> Result<()> {
    let chromium = which("chromium");
    let driver = Path::new(CHROMEDRIVER).exists();
    if let (Some(c), true) = (&chromium, driver) {
        let v = output(c, &["--version"]).unwrap_or_default();
        eprintln!("have  {v} + {CHROMEDRIVER}");
        return Ok(());
    }
    eprintln!("need  chromium + chromium-driver (apt)");
    apt_install(&["chromium", "chromium-driver"])
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let is_root = output("id", &["-u"]).as_deref() == Some("0");
    let sudo = |args: &[&str]| -> Command {
        let mut cmd = if is_root {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg(args[0]);
            c
        };
        cmd.args(&args[1..]);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut sudo(&["apt-get", "update", "-q"]))?;
    let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    run(&mut sudo(&args))
}

/// `<root>/target/py`: the Python virtual environment with telnetlib3 and websockify. Fixed
/// (not under `$CARGO_TARGET_DIR`) so every target directory shares one venv.
pub fn python_venv() -> PathBuf {
    util::root().join("target/py")
}

/// The peer `telnetlib3-fingerprint`: in `$IACSCOPE_PYTHON_BIN` when set, else in the
/// project's venv, installed here when missing so a bench works on a fresh checkout.
pub fn oracle_bin() -> Result<PathBuf> {
    let dir = match std::env::var_os("IACSCOPE_PYTHON_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            ensure(Needs {
                web: false,
                browser: false,
                python: true,
            })?;
            python_venv().join("bin")
        }
    };
    let oracle = dir.join("telnetlib3-fingerprint");
    if !oracle.is_file() {
        anyhow::bail!(
            "{} not found (IACSCOPE_PYTHON_BIN names a directory without it)",
            oracle.display()
        );
    }
    Ok(oracle)
}

fn ensure_python_venv() -> Result<()> {
    let venv = python_venv();
    let python = venv.join("bin/python");
    let installed = |pkg: &str| -> Option<String> {
        output(
            &python,
            &[
                "-c",
                &format!("import importlib.metadata as m; print(m.version({pkg:?}))"),
            ],
        )
    };
    let missing: Vec<String> = PY_PACKAGES
        .iter()
        .filter(|(pkg, ver)| installed(pkg).as_deref() != Some(ver))
        .map(|(pkg, ver)| format!("{pkg}=={ver}"))
        .collect();
    let fingerprint = venv.join("bin/telnetlib3-fingerprint");
    if missing.is_empty() && fingerprint.exists() {
        let list: Vec<String> = PY_PACKAGES
            .iter()
            .map(|(p, v)| format!("{p}=={v}"))
            .collect();
        eprintln!("have  python venv {} ({})", venv.display(), list.join(", "));
        return Ok(());
    }
    eprintln!(
        "need  python venv {} ({})",
        venv.display(),
        missing.join(", ")
    );
    if !python.exists() {
        let python3 = which("python3").context("python3 not found")?;
        let venv_arg = venv.to_string_lossy().into_owned();
        if run(Command::new(&python3).args(["-m", "venv", &venv_arg])).is_err() {
            // Debian ships venv's ensurepip separately.
            let _ = std::fs::remove_dir_all(&venv);
            apt_install(&["python3-venv"])?;
            run(Command::new(&python3).args(["-m", "venv", &venv_arg]))?;
        }
    }
    let all: Vec<String> = PY_PACKAGES
        .iter()
        .map(|(p, v)| format!("{p}=={v}"))
        .collect();
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"])
        .args(&all);
    run(&mut pip)?;
    if !fingerprint.exists() {
        bail!("{} missing after pip install", fingerprint.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_from_a_lock_file() {
        let lock = "[[package]]\nname = \"wasm-bindgen-shared\"\nversion = \"0.1.0\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            lock_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(lock_version(lock, "yew"), None);
    }

    #[test]
    fn the_workspace_lock_pins_wasm_bindgen() {
        assert!(wasm_bindgen_lock_version().unwrap().starts_with("0.2."));
    }
}
