//! The local stack's state folder: who holds it, the development identity provider's secret, the
//! CloudFront key pair, the emulator's snapshot, and where a running stack listens.
//!
//! ```text
//! STATE/lock            held (flock) by the running `vaultstream dev`
//! STATE/identity.json   issuer, audience, HS256 secret of the dev sign-in (0600)
//! STATE/cloudfront.pem  the CloudFront signing key (0600) and its id in identity.json
//! STATE/emulator.state  moto's snapshot (0600): buckets, tables, KMS keys, queues
//! STATE/stack.json      the running stack's URLs and provisioned names (removed on stop)
//! STATE/jobs.json       Batch jobs the runner has already run
//! STATE/scratch/        the transcoder's working space
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::provision::Outputs;

pub const DEFAULT_STATE_DIR: &str = ".vaultstream";

/// The dev identity provider's settings: HS256 tokens only this state folder can mint.
#[derive(Serialize, Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub audience: String,
    pub hs256_secret: String,
    pub cloudfront_key_pair_id: String,
    /// Resource names of this stack (`{prefix}-content`, …).
    pub prefix: String,
}

impl Drop for Identity {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.hs256_secret);
    }
}

/// Where a running stack is: what `dev` writes on start and other commands read.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StackInfo {
    pub pid: u32,
    pub api_url: String,
    pub cdn_url: String,
    pub emulator_url: String,
    pub viewer_url: String,
    /// The FTPS drop zone (`ftps://127.0.0.1:PORT`).
    #[serde(default)]
    pub ftp_url: String,
    pub outputs: Outputs,
}

pub struct StateDir {
    pub root: PathBuf,
}

/// Held while a stack runs; released when dropped (or when the process dies).
pub struct StateLock {
    _file: File,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    getrandom::getrandom(&mut buf).map_err(|e| anyhow::anyhow!("reading the system's random source: {e}"))?;
    Ok(hex::encode(&*buf))
}

/// Writes `bytes` to `path` readable by this user only, replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = std::path::absolute(root.into()).context("resolving the state folder")?;
        Ok(StateDir { root })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates the folder (0700) and takes its lock; a second stack on the same folder refuses.
    pub fn lock(&self) -> Result<StateLock> {
        fs::create_dir_all(&self.root).with_context(|| format!("creating the state folder {}", self.root.display()))?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to this user", self.root.display()))?;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(self.path("lock"))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = self.stack_info().map(|i| format!(" (pid {})", i.pid)).unwrap_or_default();
            bail!(
                "another `vaultstream dev`{holder} is already using {}: stop it (Ctrl-C) or pass a different --state-dir",
                self.root.display()
            );
        }
        Ok(StateLock { _file: file })
    }

    /// The identity settings, created on first use.
    pub fn identity(&self) -> Result<Identity> {
        let path = self.path("identity.json");
        if path.exists() {
            let text = Zeroizing::new(fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged; remove the state folder to start over", path.display()));
        }
        let identity = Identity {
            issuer: "https://sign-in.vaultstream.localhost/".into(),
            audience: "vaultstream-api".into(),
            hs256_secret: random_hex(32)?,
            cloudfront_key_pair_id: format!("K{}", random_hex(7)?.to_uppercase()),
            prefix: "vaultstream-dev".into(),
        };
        write_private(&path, &Zeroizing::new(serde_json::to_vec_pretty(&identity)?))?;
        Ok(identity)
    }

    /// The identity of an existing state folder (for `token mint`), never creating one.
    pub fn existing_identity(&self) -> Result<Identity> {
        if !self.path("identity.json").exists() {
            bail!(
                "{} is not a local stack's state folder: start one with `vaultstream dev --state-dir {}`",
                self.root.display(),
                self.root.display()
            );
        }
        self.identity()
    }

    /// The CloudFront signing key (RSA-2048 PEM), created on first use.
    pub fn cloudfront_key(&self) -> Result<PathBuf> {
        let path = self.path("cloudfront.pem");
        if !path.exists() {
            let rsa = openssl::rsa::Rsa::generate(2048).context("generating the CloudFront key pair")?;
            write_private(&path, &Zeroizing::new(rsa.private_key_to_pem()?))?;
        }
        Ok(path)
    }

    pub fn write_stack_info(&self, info: &StackInfo) -> Result<()> {
        write_private(&self.path("stack.json"), &serde_json::to_vec_pretty(info)?)
    }

    pub fn stack_info(&self) -> Result<StackInfo> {
        let path = self.path("stack.json");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("no local stack is running on {} (start one with `vaultstream dev`)", self.root.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    pub fn clear_stack_info(&self) {
        let _ = fs::remove_file(self.path("stack.json"));
    }
}
