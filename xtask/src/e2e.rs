//! The `e2e` step of `cargo xtask test`: runs `tests/tests/e2e_browser.rs` (the built `dist/` in
//! headless Chromium through a real `iacscope serve`, against a local fake server). The test
//! is behind the `iacscope-tests/e2e` feature so plain `cargo test --workspace` leaves it out;
//! this step builds it and hands it the paths it needs.

use crate::tools::CHROMEDRIVER;
use crate::util::{self, run, which};
use crate::web;
use anyhow::{bail, Context, Result};

/// Runs the end-to-end browser test; needs `dist/` from the `web-build` step.
pub fn run_e2e() -> Result<()> {
    let dist = web::dist_dir();
    if !dist.join("index.html").is_file() {
        bail!(
            "{} has no built app: run `cargo xtask test --only web-build` first",
            dist.display()
        );
    }
    let chromium =
        which("chromium").context("chromium not found (the `tools` step installs it)")?;
    let out = util::target_dir().join("e2e");
    run(util::cargo()
        .args([
            "test",
            "-p",
            "iacscope-tests",
            "--features",
            "e2e",
            "--test",
            "e2e_browser",
            "--",
            "--nocapture",
        ])
        .env("IACSCOPE_E2E_DIST", &dist)
        .env("IACSCOPE_E2E_CHROMIUM", chromium)
        .env("IACSCOPE_E2E_CHROMEDRIVER", CHROMEDRIVER)
        .env("IACSCOPE_E2E_OUT", &out))?;
    eprintln!("screenshot: {}", out.join("mush.png").display());
    Ok(())
}
