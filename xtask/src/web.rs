//! The web side of xtask: builds the app with Trunk (offline, release), reports the bundle size,
//! builds the engine for wasm32 to check its imports, and runs the frontend's browser tests in
//! headless Chromium.

use crate::tools::{self, CHROMEDRIVER};
use crate::util::{self, run, which};
use crate::wasm_check;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `cargo xtask serve` and `cargo xtask test` put the built web app.
pub fn dist_dir() -> PathBuf {
    util::root().join("dist")
}

/// Downloads every crate in Cargo.lock: Trunk runs cargo with `--offline`.
pub fn fetch() -> Result<()> {
    run(util::cargo().args(["fetch"]))
}

/// `trunk build --release --offline` as the shipped app is built (the `web` profile named in
/// `index.html`); `extra` arguments go after `build`.
pub fn trunk_command(extra: &[&str]) -> Result<Command> {
    let trunk = which("trunk").context("trunk not found (run `cargo xtask test` to install)")?;
    let mut cmd = Command::new(trunk);
    cmd.current_dir(util::root())
        .env("TRUNK_SKIP_VERSION_CHECK", "true")
        .args(["build", "--release", "--offline"])
        .args(extra);
    Ok(cmd)
}

/// `trunk build --release --offline` into `dist/`, precompresses it ([`precompress`]), then
/// prints the bundle sizes.
pub fn trunk_build() -> Result<()> {
    fetch()?;
    let dist = dist_dir();
    let mut cmd = trunk_command(&[])?;
    cmd.arg("--dist").arg(&dist);
    run(&mut cmd)?;
    precompress(&dist)?;
    print_bundle_size(&dist)
}

/// Extensions of the files worth sending gzipped (the app, its style, the codec tables).
const COMPRESSIBLE: [&str; 5] = ["wasm", "js", "css", "html", "bin"];

/// Writes `name.gz` beside every compressible file below `dir`, compressed with zopfli (gzip
/// that any browser inflates, about 5% smaller than zlib's best). `iacscope serve` sends the
/// `.gz` as it is to a browser that accepts gzip (`precompressed_gzip`) instead of
/// compressing on the fly at the default level: what the bundle budget counts is what is sent.
/// Trunk rebuilds `dist/` from scratch, so no `.gz` outlives its file.
///
/// zopfli is slow (about 2 s per MB): results are kept in `target/precompressed/`, by a hash
/// of the input, and a kept one is used only if it inflates back to the very same bytes. Kept
/// results this build did not use are deleted, so the cache holds one build's worth.
pub fn precompress(dir: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if path.is_dir() {
                dirs.push(path);
            } else if COMPRESSIBLE.contains(&ext) {
                files.push(path);
            }
        }
    }
    let cache = util::target_dir().join("precompressed");
    std::fs::create_dir_all(&cache)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let totals = std::sync::Mutex::new((0usize, 0usize, 0usize));
    let used = std::sync::Mutex::new(std::collections::HashSet::new());
    // Two workers: this machine's cores.
    std::thread::scope(|scope| -> Result<()> {
        let worker = || -> Result<()> {
            while let Some(path) =
                files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            {
                let bytes = std::fs::read(path)?;
                let (gz, kept, fresh) = gzip_cached(&cache, &bytes)?;
                used.lock().unwrap_or_else(|e| e.into_inner()).insert(kept);
                let mut name = path.clone().into_os_string();
                name.push(".gz");
                std::fs::write(&name, &gz)?;
                let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
                *t = (t.0 + bytes.len(), t.1 + gz.len(), t.2 + usize::from(fresh));
            }
            Ok(())
        };
        let other = scope.spawn(worker);
        worker()?;
        other
            .join()
            .map_err(|_| anyhow::anyhow!("a precompress worker panicked"))?
    })?;
    let (raw, packed, fresh) = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    let used = used.into_inner().unwrap_or_else(|e| e.into_inner());
    for entry in std::fs::read_dir(&cache)? {
        let path = entry?.path();
        if !used.contains(&path) {
            std::fs::remove_file(&path)?;
        }
    }
    eprintln!(
        "precompressed {} files in {} ({fresh} compressed now, the rest kept from {}): \
         {raw} -> {packed} bytes ({:.1} s)",
        files.len(),
        dir.display(),
        cache.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `bytes` gzipped with zopfli, from `cache` when a kept result inflates back to `bytes`; its
/// path in `cache`, and whether it was compressed now.
fn gzip_cached(cache: &Path, bytes: &[u8]) -> Result<(Vec<u8>, PathBuf, bool)> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    let kept = cache.join(format!("{:016x}-{}.gz", h.finish(), bytes.len()));
    if let Ok(gz) = std::fs::read(&kept) {
        let mut back = Vec::with_capacity(bytes.len());
        let inflated =
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back);
        if inflated.is_ok() && back == bytes {
            return Ok((gz, kept, false));
        }
    }
    let mut gz = Vec::new();
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        bytes,
        &mut gz,
    )?;
    std::fs::write(&kept, &gz)?;
    Ok((gz, kept, true))
}

/// The bundle as a browser downloads it: the `.wasm` and `.js` files of `dist/` (raw bytes,
/// gzip at level 9, and the precompressed `.gz` beside each, which `iacscope serve` sends).
#[derive(Debug, Default, Clone, Copy)]
pub struct Bundle {
    pub raw: usize,
    pub gzip9: usize,
    pub shipped: usize,
}

/// Measures [`Bundle`] file by file, calling `each` with each file's name and figures.
pub fn bundle(dist: &Path, mut each: impl FnMut(&str, Bundle)) -> Result<Bundle> {
    let mut entries: Vec<_> = std::fs::read_dir(dist)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("wasm" | "js")))
        .collect();
    entries.sort();
    if entries.is_empty() {
        bail!("no .wasm or .js in {}", dist.display());
    }
    let mut total = Bundle::default();
    for path in entries {
        let bytes = std::fs::read(&path)?;
        let mut gz = path.clone().into_os_string();
        gz.push(".gz");
        let shipped = match std::fs::metadata(&gz) {
            Ok(m) => m.len() as usize,
            Err(_) => bail!("{} has no precompressed .gz beside it", path.display()),
        };
        let one = Bundle {
            raw: bytes.len(),
            gzip9: gzip_len(&bytes)?,
            shipped,
        };
        each(&path.file_name().unwrap_or_default().to_string_lossy(), one);
        total.raw += one.raw;
        total.gzip9 += one.gzip9;
        total.shipped += one.shipped;
    }
    Ok(total)
}

/// Prints the [`Bundle`] figures of the `.wasm` and `.js` files Trunk produced.
fn print_bundle_size(dist: &Path) -> Result<()> {
    let line = |name: &str, b: Bundle| {
        eprintln!(
            "bundle  {name:<40} {:>9} bytes  {:>9} gzip (level 9)  {:>9} sent (zopfli)",
            b.raw, b.gzip9, b.shipped
        );
    };
    let total = bundle(dist, line)?;
    line("total (wasm + js)", total);
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?.len())
}

/// Text std puts in the binary when something calls a clock that wasm32-unknown-unknown lacks
/// (`Instant::now()` / `SystemTime::now()` panic there).
const CLOCK_PANIC: &[u8] = b"time not implemented on this platform";

/// Builds `xtask/wasm-probe` (a cdylib that exercises the engine's public API) for
/// wasm32-unknown-unknown in release and fails if the module imports anything from `env`
/// (a C dependency or a symbol the target lacks) or can reach std's clock panic.
pub fn check_engine_wasm() -> Result<()> {
    let probe = util::root().join("xtask/wasm-probe");
    // The probe is its own tiny workspace (so it needs no entry in the root manifest); it
    // borrows the root's lock file so it builds exactly the dependency versions we ship.
    std::fs::copy(util::root().join("Cargo.lock"), probe.join("Cargo.lock"))
        .context("copying Cargo.lock into xtask/wasm-probe")?;
    let target_dir = util::target_dir();
    run(util::cargo()
        .current_dir(&probe)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir))?;
    let wasm = target_dir.join("wasm32-unknown-unknown/release/iacscope_wasm_probe.wasm");
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let imports = wasm_check::imports(&bytes)?;
    eprintln!(
        "{}: {} bytes, {} imports",
        wasm.display(),
        bytes.len(),
        imports.len()
    );
    for i in &imports {
        eprintln!("  import {}.{} ({})", i.module, i.name, i.kind);
    }
    let env: Vec<String> = imports
        .iter()
        .filter(|i| i.module == "env")
        .map(|i| i.name.clone())
        .collect();
    if !env.is_empty() {
        bail!(
            "the engine imports from `env` on wasm32 (it would not load in a browser): {}",
            env.join(", ")
        );
    }
    if bytes.windows(CLOCK_PANIC.len()).any(|w| w == CLOCK_PANIC) {
        bail!(
            "the engine reaches a std clock on wasm32 (`Instant::now()` or `SystemTime::now()` \
             panics in the browser); pass time in as a `Timestamp` instead"
        );
    }
    eprintln!("ok: no `env` imports, no reachable std clock");
    Ok(())
}

/// Runs the frontend's `wasm-bindgen-test` tests in headless Chromium.
pub fn browser_tests() -> Result<()> {
    let runner = which("wasm-bindgen-test-runner").context("wasm-bindgen-test-runner not found")?;
    let dir = util::target_dir().join("xtask");
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile)?;
    let webdriver_json = dir.join("webdriver.json");
    std::fs::write(&webdriver_json, webdriver_capabilities(&profile))?;
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "-p",
        "iacscope-frontend",
        "--target",
        "wasm32-unknown-unknown",
    ])
    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner)
    .env("CHROMEDRIVER", CHROMEDRIVER)
    .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
    .env("WASM_BINDGEN_TEST_TIMEOUT", "120")
    .env("WASM_BINDGEN_TEST_DRIVER_TIMEOUT", "60");
    run(&mut cmd)
}

/// Chromium flags for a machine with no display, no sandbox support and no network; a fresh
/// profile per run so no state leaks between runs.
fn webdriver_capabilities(profile: &Path) -> String {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".to_string(),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--no-first-run".to_string(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let quoted: Vec<String> = args.drain(..).map(|a| json_string(&a)).collect();
    let binary = which("chromium")
        .map(|p| format!("\"binary\": {}, ", json_string(&p.to_string_lossy())))
        .unwrap_or_default();
    format!(
        "{{\"goog:chromeOptions\": {{{binary}\"args\": [{}]}}}}\n",
        quoted.join(", ")
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Ensures the tools the web app build needs (used by `serve`).
pub fn ensure_web_tools() -> Result<()> {
    tools::ensure(tools::Needs {
        web: true,
        browser: false,
        python: false,
    })
}
