//! A DRM vendor's SPEKE v2 key provider on 127.0.0.1 (batch-transcoder/tests/speke_key_provider.py,
//! on the `cpix` library), for the transcoder's tests and the access tests alike (the
//! transcoder's include this file by path).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct KeyProvider {
    child: Child,
    pub state: PathBuf,
    pub url: String,
}

impl KeyProvider {
    /// A provider answering well.
    pub fn start(dir: &Path) -> KeyProvider {
        KeyProvider::start_in_mode(dir, "good")
    }

    /// A provider answering in `mode` (the script's usage lists them: `unavailable`, `refuse`, ...).
    pub fn start_in_mode(dir: &Path, mode: &str) -> KeyProvider {
        let state = dir.join(format!("key-provider-{mode}"));
        std::fs::create_dir_all(&state).unwrap();
        let python = std::env::var("VAULTSTREAM_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../batch-transcoder/tests/speke_key_provider.py");
        let mut child = Command::new(&python).arg(script).arg(&state).arg(mode).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !state.join("port").exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the key provider ({python}; scripts/install-deps.sh puts cpix in .venv-moto) exited {status}: {err}");
            }
            assert!(Instant::now() < deadline, "the key provider never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = std::fs::read_to_string(state.join("port")).unwrap();
        KeyProvider { child, url: format!("http://127.0.0.1:{port}/speke/v2/copyProtection"), state }
    }

    /// KID → key (hex) of every key it gave.
    pub fn keys(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join("keys.json")).unwrap()).unwrap()
    }

    /// The key (hex) it gave `kid`.
    pub fn key(&self, kid: &str) -> String {
        let keys = self.keys();
        keys[kid].as_str().unwrap_or_else(|| panic!("the key provider gave {kid} no key: {keys}")).to_string()
    }

    /// The headers of its `n`th request (from 1).
    pub fn request_headers(&self, n: usize) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join(format!("requests/{n}.headers.json"))).unwrap()).unwrap()
    }
}

impl Drop for KeyProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
