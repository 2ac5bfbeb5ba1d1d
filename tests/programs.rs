//! Programs the tests run beside the hub: Node.js projects under `tests/` (their
//! `node_modules` installed from the lock file when it changed), and scripts that print one
//! JSON object. Used by `interop.rs` (also for its Python scripts) and `browser.rs`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// `npm ci` (or a Python venv) on a cold cache is slow.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// `node --version` and the like.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs a blocking command with a deadline; `Err` carries everything worth printing.
/// Output goes to temporary files, so a chatty command never blocks on a full pipe.
pub fn run_blocking(cmd: &mut std::process::Command, timeout: Duration) -> Result<String, String> {
    use std::io::{Read, Seek};
    let what = format!("{cmd:?}");
    let fail = |e: std::io::Error| format!("{what}: {e}");
    let (mut out, mut err) = (
        tempfile::tempfile().map_err(fail)?,
        tempfile::tempfile().map_err(fail)?,
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(fail)?)
        .stderr(err.try_clone().map_err(fail)?)
        .spawn()
        .map_err(fail)?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(fail)? {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        let _ = f.rewind().and_then(|()| f.read_to_string(&mut s));
        s
    };
    let (stdout, stderr) = (read(&mut out), read(&mut err));
    match status {
        Some(status) if status.success() => Ok(stdout),
        Some(status) => Err(format!("{what} failed ({status}):\n{stdout}\n{stderr}")),
        None => Err(format!(
            "{what} timed out after {timeout:?}:\n{stdout}\n{stderr}"
        )),
    }
}

/// Runs `<program> <script> <args>` in `dir` to completion (killed after `timeout`) and
/// parses the one JSON object it prints.
pub async fn script_json(
    program: &Path,
    dir: &Path,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> Value {
    let what = format!("{} {script} {args:?}", program.display());
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(script)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} timed out after {timeout:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{what}: no JSON on stdout ({e}):\nstdout: {stdout}\nstderr: {stderr}")
    })
}

/// A Node.js project under `tests/` (a `package.json` with exact versions and its
/// `package-lock.json`), made ready at most once per test process.
pub struct NodeProject {
    /// Relative to the package root, e.g. `tests/interop`.
    dir: &'static str,
    /// Who needs it, for the message when Node.js is missing, e.g. "the interop tests
    /// (docs/interop.md)".
    needed_by: &'static str,
    ready: OnceLock<Result<PathBuf, String>>,
}

impl NodeProject {
    pub const fn new(dir: &'static str, needed_by: &'static str) -> Self {
        Self {
            dir,
            needed_by,
            ready: OnceLock::new(),
        }
    }

    /// Node.js >= 20.19 is there and `node_modules` matches the lock file: runs `npm ci`
    /// if `node_modules` is missing or older than the lock file. Returns the project's
    /// directory. Call it first thing in a test (it may block its thread for the install).
    pub fn ready(&self) -> &Path {
        match self.ready.get_or_init(|| self.prepare()) {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        }
    }

    fn prepare(&self) -> Result<PathBuf, String> {
        let install = format!(
            "Node.js >= 20.19 with npm is required for {} ({}): install it (from \
             https://nodejs.org, NodeSource or your package manager if its version is recent \
             enough) and make sure `node` and `npm` are on PATH",
            self.needed_by, self.dir
        );
        let version = run_blocking(
            std::process::Command::new("node").arg("--version"),
            PROBE_TIMEOUT,
        )
        .map_err(|e| format!("{install}. ({e})"))?;
        let numbers: Vec<u32> = version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if numbers.len() < 2 || (numbers[0], numbers[1]) < (20, 19) {
            return Err(format!("{install}; found node {}", version.trim()));
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(self.dir);
        let lock = dir.join("package-lock.json");
        let installed = dir.join("node_modules/.package-lock.json");
        let fresh = match (modified(&installed), modified(&lock)) {
            (Some(installed), Some(lock)) => installed >= lock,
            _ => false,
        };
        if !fresh {
            run_blocking(
                std::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
                    .current_dir(&dir),
                INSTALL_TIMEOUT,
            )
            .map_err(|e| format!("npm ci in {} failed. {install}. ({e})", dir.display()))?;
        }
        Ok(dir)
    }

    /// Runs `node <script> <args>` in the project (see [`script_json`]).
    pub async fn json(&self, script: &str, args: &[&str], timeout: Duration) -> Value {
        let dir = self.ready();
        script_json(Path::new("node"), dir, script, args, timeout).await
    }
}
