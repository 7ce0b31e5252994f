//! `cargo xtask test`: every check the project has, in order of cost, stopping at the first
//! failure, with a heading per step and a summary at the end. CI runs exactly this.

use crate::e2e;
use crate::postgres;
use crate::tools::{self, Needs};
use crate::util::{self, run, Steps};
use crate::web;
use anyhow::{bail, Result};

/// The steps, by the name `--only` / `--skip` use, with what each does.
pub const STEPS: &[(&str, &str)] = &[
    ("tools", "install missing tools (wasm32 target, trunk, wasm-bindgen-cli, chromium, python venv)"),
    ("fmt", "cargo fmt --all -- --check"),
    ("clippy", "cargo clippy --workspace --all-targets --features iacscope-tests/e2e -- -D warnings"),
    ("clippy-wasm", "cargo clippy -p iacscope-frontend --target wasm32-unknown-unknown --all-targets -- -D warnings (and again with --features bench)"),
    ("test", "cargo test --workspace (native; IACSCOPE_PYTHON_BIN set; PostgreSQL started on loopback for the store tests)"),
    ("wasm-engine", "build the engine for wasm32 (xtask/wasm-probe) and reject `env` imports"),
    ("web-build", "trunk build --release --offline into dist/, print bundle size"),
    ("browser", "frontend wasm-bindgen tests in headless Chromium"),
    ("e2e", "end-to-end browser test: dist/ in Chromium through iacscope serve (needs web-build)"),
];

/// Runs the test suite. `args`: `--only a,b` / `--skip a,b` with step names from [`STEPS`].
pub fn run_all(args: &[String]) -> Result<()> {
    let mut only: Option<Vec<String>> = None;
    let mut skip: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let list = |v: Option<&String>| -> Result<Vec<String>> {
            let v = v.ok_or_else(|| anyhow::anyhow!("{arg} needs a comma-separated step list"))?;
            let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
            for n in &names {
                if !STEPS.iter().any(|(s, _)| s == n) {
                    bail!("unknown step `{n}`; steps are: {}", step_names());
                }
            }
            Ok(names)
        };
        match arg.as_str() {
            "--only" => only = Some(list(it.next())?),
            "--skip" => skip.extend(list(it.next())?),
            "-h" | "--help" => {
                eprintln!("cargo xtask test [--only STEP,..] [--skip STEP,..]\n\nsteps:");
                for (name, what) in STEPS {
                    eprintln!("  {name:<12} {what}");
                }
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    let selected = |name: &str| {
        only.as_ref().is_none_or(|o| o.iter().any(|n| n == name)) && !skip.iter().any(|n| n == name)
    };

    let mut steps = Steps::default();
    let mut step = |name: &str, f: &dyn Fn() -> Result<Option<String>>| -> Result<()> {
        if selected(name) {
            steps.step(name, f)
        } else {
            steps.not_selected(name);
            Ok(())
        }
    };

    step("tools", &|| {
        tools::ensure(Needs {
            web: true,
            browser: true,
            python: true,
        })?;
        Ok(None)
    })?;
    step("fmt", &|| {
        run(util::cargo().args(["fmt", "--all", "--", "--check"]))?;
        Ok(None)
    })?;
    step("clippy", &|| {
        // The e2e feature adds the browser end-to-end test target, so it is linted too.
        run(util::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "iacscope-tests/e2e",
            "--",
            "-D",
            "warnings",
        ]))?;
        Ok(None)
    })?;
    step("clippy-wasm", &|| {
        // Also with the bench feature (the hooks `cargo xtask bench-web` drives).
        for extra in [&["--all-targets"][..], &["--features", "bench"][..]] {
            run(util::cargo()
                .args(["clippy", "-p", "iacscope-frontend"])
                .args(["--target", "wasm32-unknown-unknown"])
                .args(extra)
                .args(["--", "-D", "warnings"]))?;
        }
        Ok(None)
    })?;
    step("test", &|| {
        let py_bin = tools::python_venv().join("bin");
        // The store tests also run against PostgreSQL; the guard stops it on every exit.
        let pg = postgres::Cluster::start()?;
        run(util::cargo()
            .args(["test", "--workspace"])
            .env("IACSCOPE_PYTHON_BIN", py_bin)
            .env("IACSCOPE_TEST_DATABASE_URL", &pg.url)
            .env("IACSCOPE_REQUIRE_POSTGRES", "1"))?;
        Ok(None)
    })?;
    step("wasm-engine", &|| {
        web::check_engine_wasm()?;
        Ok(None)
    })?;
    step("web-build", &|| {
        web::trunk_build()?;
        Ok(None)
    })?;
    step("browser", &|| {
        web::browser_tests()?;
        Ok(None)
    })?;
    step("e2e", &|| {
        e2e::run_e2e()?;
        Ok(None)
    })?;

    steps.summary();
    eprintln!("all selected steps passed");
    Ok(())
}

fn step_names() -> String {
    STEPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}
