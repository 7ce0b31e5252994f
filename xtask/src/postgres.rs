//! A throwaway PostgreSQL server for the store tests: installed from Debian when missing,
//! a cluster under `<target>/pg` listening only on 127.0.0.1 (a free port, trust auth for
//! loopback, its unix socket inside the cluster directory), stopped when the [`Cluster`]
//! guard drops, also when a step fails. PostgreSQL refuses to run as root, so as root the
//! cluster belongs to the `postgres` user and its tools run through `runuser`.

use crate::util::{self, output, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where Debian installs the server binaries (`<this>/<major>/bin`).
const PG_LIB: &str = "/usr/lib/postgresql";
/// The Debian package that brings the server.
const PG_PACKAGE: &str = "postgresql";
/// The database the tests get (each test makes its own schema in it).
pub const TEST_DB: &str = "iacscope_test";
/// The superuser initdb creates.
const SUPERUSER: &str = "postgres";
/// The unprivileged account that runs the server when we are root.
const RUN_AS: &str = "postgres";
/// Time the server gets to accept connections after `pg_ctl start`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries at starting the server, each on a newly chosen port.
const START_ATTEMPTS: u32 = 3;
/// Pause between readiness polls.
const POLL: Duration = Duration::from_millis(200);

/// A running test cluster; stops it when dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    as_root: bool,
    port: u16,
    /// `postgres://postgres@127.0.0.1:<port>/iacscope_test`.
    pub url: String,
}

fn is_root() -> bool {
    output("id", &["-u"]).as_deref() == Some("0")
}

/// The newest `/usr/lib/postgresql/<major>/bin` that has `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_LIB)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// `apt-get install` (through sudo when not root); on failure, `apt-get update` and again.
fn apt_install(package: &str) -> Result<()> {
    let root = is_root();
    let cmd = |args: &[&str]| -> Command {
        let mut c = if root {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg(args[0]);
            c
        };
        c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    let install = [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        package,
    ];
    if run(&mut cmd(&install)).is_ok() {
        return Ok(());
    }
    run(&mut cmd(&["apt-get", "update", "-q"]))?;
    run(&mut cmd(&install))
}

/// The server binaries, installed from Debian first when missing.
fn installed() -> Result<PathBuf> {
    if let Some(bin) = find_bin() {
        eprintln!("have  PostgreSQL ({})", bin.display());
        return Ok(bin);
    }
    eprintln!("need  PostgreSQL (apt {PG_PACKAGE})");
    apt_install(PG_PACKAGE)?;
    find_bin().with_context(|| format!("no {PG_LIB}/*/bin/initdb after install"))
}

/// Whether `user` can enter every directory down to `dir` (`runuser -u user -- test -x`).
fn reachable_by(user: &str, dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A free TCP port on 127.0.0.1 (free now; the server binds it a moment later).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Cluster {
    /// Installs PostgreSQL if needed, (re)uses or creates the cluster under `<target>/pg`,
    /// starts it and creates an empty [`TEST_DB`].
    pub fn start() -> Result<Cluster> {
        Cluster::start_in(&util::target_dir().join("pg"))
    }

    /// [`Cluster::start`] with the cluster in `dir`. As root the server runs as `postgres`,
    /// which must reach the cluster directory: under a private home (`/root/…`) it cannot,
    /// so the cluster then lives under the temporary directory, named after `dir`.
    pub fn start_in(dir: &Path) -> Result<Cluster> {
        let bin = installed()?;
        let parent = dir.parent().unwrap_or(dir);
        if is_root() && !reachable_by(RUN_AS, parent) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(dir, &mut h);
            let tmp = std::env::temp_dir().join(format!(
                "iacscope-pg-{:016x}",
                std::hash::Hasher::finish(&h)
            ));
            eprintln!(
                "note  {} is not reachable by the `{RUN_AS}` account: cluster in {}",
                parent.display(),
                tmp.display()
            );
            return Cluster::start_with(bin, &tmp);
        }
        Cluster::start_with(bin, dir)
    }

    fn start_with(bin: PathBuf, dir: &Path) -> Result<Cluster> {
        let data = dir.join("data");
        let socket_dir = dir.join("run");
        let as_root = is_root();
        let mut cluster = Cluster {
            bin,
            data,
            as_root,
            port: 0,
            url: String::new(),
        };
        // A server left running by an interrupted run: stop it (its port may be stale).
        if cluster.data.join("postmaster.pid").exists() {
            let _ = cluster.pg_ctl(&["stop", "-m", "immediate", "-w"]).output();
        }
        let version = cluster.bin.parent().and_then(Path::file_name);
        let existing = std::fs::read_to_string(cluster.data.join("PG_VERSION")).ok();
        let reusable = matches!((&existing, version), (Some(v), Some(want)) if v.trim() == want.to_string_lossy());
        std::fs::create_dir_all(&socket_dir)
            .with_context(|| format!("creating {}", socket_dir.display()))?;
        if !reusable {
            // Only test data lives here: an unusable cluster is wiped and made anew.
            let _ = std::fs::remove_dir_all(&cluster.data);
        }
        if as_root {
            run(Command::new("chown")
                .args(["-R", &format!("{RUN_AS}:{RUN_AS}")])
                .arg(dir))?;
        }
        if !reusable {
            let data = cluster.data.to_string_lossy().into_owned();
            run(&mut cluster.tool(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ))?;
        }
        let log = dir.join("server.log").to_string_lossy().into_owned();
        // The free port may be taken before the server binds it: then another one.
        let mut attempt = 1;
        let port = loop {
            let port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {}",
                socket_dir.display()
            );
            let started =
                run(&mut cluster.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &opts]));
            match started {
                Ok(()) => break port,
                Err(e) if attempt >= START_ATTEMPTS => {
                    return Err(e).with_context(|| format!("starting PostgreSQL (log: {log})"))
                }
                Err(e) => eprintln!("PostgreSQL did not start on port {port} ({e:#}); retrying"),
            }
            attempt += 1;
        };
        let port_s = port.to_string();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = Command::new(cluster.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port_s, "-U", SUPERUSER])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL on 127.0.0.1:{port} not ready within {START_TIMEOUT:?} (log: {log})");
            }
            std::thread::sleep(POLL);
        }
        let client = |tool: &str, extra: &[&str]| {
            let mut c = Command::new(cluster.bin.join(tool));
            c.args(["-h", "127.0.0.1", "-p", &port_s, "-U", SUPERUSER])
                .args(extra);
            c
        };
        run(&mut client("dropdb", &["--if-exists", TEST_DB]))?;
        run(&mut client("createdb", &[TEST_DB]))?;
        cluster.port = port;
        cluster.url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{TEST_DB}");
        eprintln!("PostgreSQL for the store tests: {}", cluster.url);
        Ok(cluster)
    }

    /// A server tool, run as the `postgres` account when we are root.
    fn tool(&self, name: &str, args: &[&str]) -> Command {
        let path = self.bin.join(name);
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", RUN_AS, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.args(args);
        c
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let data = self.data.to_string_lossy().into_owned();
        let mut all = vec!["-D", &data];
        all.extend_from_slice(args);
        self.tool("pg_ctl", &all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        match self.pg_ctl(&["stop", "-m", "fast", "-w"]).output() {
            Ok(o) if o.status.success() => eprintln!("PostgreSQL stopped"),
            Ok(o) => eprintln!(
                "warning: stopping PostgreSQL failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("warning: cannot run pg_ctl stop: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_newest_server_install() {
        // Whatever is installed, a found directory holds initdb and pg_ctl.
        if let Some(bin) = find_bin() {
            assert!(bin.join("initdb").is_file() && bin.join("pg_ctl").is_file());
            assert!(bin.starts_with(PG_LIB));
        }
        let port = free_port().expect("port");
        assert_ne!(port, 0);
    }

    #[test]
    fn cluster_starts_serves_and_stops() {
        // Installing a server is `cargo xtask test`'s job (which sets the variable below
        // after doing it), not a plain `cargo test`'s.
        let required = std::env::var("IACSCOPE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        if find_bin().is_none() && !required {
            eprintln!("skipped: no PostgreSQL under {PG_LIB} (cargo xtask test installs it)");
            return;
        }
        // Its own directory: `cargo xtask test` runs this while its own cluster is up.
        let dir = util::target_dir().join("pg-selftest");
        let cluster = Cluster::start_in(&dir).expect("start");
        let ready = |c: &Cluster| {
            Command::new(c.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &c.port.to_string(), "-d", TEST_DB])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(ready(&cluster), "{} accepts connections", cluster.url);
        assert!(cluster
            .url
            .ends_with(&format!(":{}/{TEST_DB}", cluster.port)));
        let (bin, port) = (cluster.bin.clone(), cluster.port);
        drop(cluster);
        let stopped = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .output()
            .expect("pg_isready");
        assert!(!stopped.status.success(), "stopped when the guard dropped");
        // A second start reuses the cluster directory.
        let again = Cluster::start_in(&dir).expect("restart");
        assert!(ready(&again));
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
