//! moto in server mode on 127.0.0.1, started and stopped by the local stack. Installed into the
//! project's virtual environment (`.venv-moto`) when no Python on this machine has the pinned
//! version. The server script persists moto's backends to the state folder and exits with its
//! parent, so nothing outlives the stack.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SERVE_PY: &str = include_str!("../../emulator/serve.py");
const REQUIREMENTS: &str = include_str!("../../emulator/requirements.txt");

/// The repository this binary was built from: where `.venv-moto` lives.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn pinned_version() -> &'static str {
    REQUIREMENTS.lines().find_map(|l| l.trim().strip_prefix("moto[server]==")).unwrap_or("5.2.1")
}

async fn has_moto(python: &Path) -> bool {
    let check = format!("import moto, flask, flask_cors, sys; sys.exit(moto.__version__ != '{}')", pinned_version());
    Command::new(python).args(["-c", &check]).stdout(Stdio::null()).stderr(Stdio::null()).status().await.is_ok_and(|s| s.success())
}

/// A Python with the pinned moto: `VAULTSTREAM_PYTHON`, the project venv, `python3`, or a fresh
/// install into the project venv.
pub async fn python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VAULTSTREAM_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if has_moto(&p).await {
            return Ok(p);
        }
        bail!("VAULTSTREAM_PYTHON={} has no moto[server]=={}; install it or unset the variable", p.display(), pinned_version());
    }
    let venv = project_root().join(".venv-moto");
    let venv_python = venv.join("bin/python");
    if has_moto(&venv_python).await {
        return Ok(venv_python);
    }
    if has_moto(Path::new("python3")).await {
        return Ok(PathBuf::from("python3"));
    }
    eprintln!("installing moto[server]=={} into {} (once)", pinned_version(), venv.display());
    let created = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().await;
    if !created.is_ok_and(|s| s.success()) {
        bail!(
            "could not create {} with `python3 -m venv`: install python3 and python3-venv (scripts/install-deps.sh does)",
            venv.display()
        );
    }
    let requirements = venv.join("requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS)?;
    let installed = Command::new(&venv_python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .status()
        .await;
    if !installed.is_ok_and(|s| s.success()) || !has_moto(&venv_python).await {
        bail!("could not install moto[server]=={} into {}: is the package index reachable?", pinned_version(), venv.display());
    }
    Ok(venv_python)
}

pub struct Emulator {
    child: Child,
    pub endpoint: String,
    state_file: PathBuf,
}

impl Emulator {
    /// Starts moto on `port` with its snapshot at `state_file` (loaded when present).
    pub async fn start(python: &Path, port: u16, state_file: &Path, scratch: &Path, log: &Path) -> Result<Emulator> {
        let script = scratch.join("moto-serve.py");
        std::fs::write(&script, SERVE_PY).with_context(|| format!("writing {}", script.display()))?;
        let log_path = log.to_path_buf();
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(port.to_string())
            .arg(state_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        terminate_with_parent(&mut command);
        let mut child = command.spawn().with_context(|| format!("starting moto with {}", python.display()))?;
        let stdout = child.stdout.take().context("moto's output")?;
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(120), BufReader::new(stdout).read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) || line.trim() != "ready" {
            let _ = child.kill().await;
            bail!("moto did not start on 127.0.0.1:{port}: see {}", log_path.display());
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        configure_batch(&endpoint).await?;
        Ok(Emulator { child, endpoint, state_file: state_file.to_path_buf() })
    }

    /// Writes the snapshot now (after each published title, so a crash loses little).
    pub async fn snapshot(&self) -> Result<()> {
        let response = reqwest::Client::new().post(format!("{}/_vaultstream/snapshot", self.endpoint)).send().await?;
        if !response.status().is_success() {
            bail!("the emulator could not write {}: HTTP {}", self.state_file.display(), response.status());
        }
        Ok(())
    }

    /// Stops moto; it writes its snapshot on the way out.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// moto's Batch runs jobs in Docker unless told not to; without it submitted jobs are marked
/// SUCCEEDED at once and the local job runner runs each job's command itself.
async fn configure_batch(endpoint: &str) -> Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/config"))
        .header("content-type", "application/json")
        .body(r#"{"batch":{"use_docker":false}}"#)
        .send()
        .await
        .context("configuring moto's Batch")?;
    if !response.status().is_success() {
        bail!("moto refused its Batch configuration: HTTP {}", response.status());
    }
    Ok(())
}

/// Children get SIGTERM when the stack's process dies, however it dies (Linux).
pub fn terminate_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
