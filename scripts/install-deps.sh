#!/usr/bin/env bash
# Installs what building and testing VaultStream needs on Debian, when it is missing.
# Idempotent: a machine that has everything is left alone.
#
# Usage: install-deps.sh [demo]   (`demo`: only what the demo needs, not the browser test kit)
set -euo pipefail
cd "$(dirname "$0")/.."

# FFmpeg and its libraries (transcoder), clang (bindgen), cmake (aws-lc), OpenSSL and its headers
# (CloudFront PEM signing; tests decrypt segments with the CLI), python3 with pip and venv (moto),
# chromium and node (browser playback tests with hls.js), tmux (the demo's terminal test).
packages=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
          libswscale-dev libswresample-dev pkg-config clang libclang-dev cmake openssl libssl-dev
          )
purpose=${1:-test}
if [ "$purpose" != demo ]; then packages+=(chromium tmux); fi
if ! command -v python3 >/dev/null; then packages+=(python3 python3-pip python3-venv); fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "installing: ${missing[*]}" >&2
  apt_install() {
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
  # A transient dpkg lock or interrupted install is retried once after repairing dpkg.
  if ! apt_install; then
    echo "apt-get failed; repairing dpkg and retrying once" >&2
    sleep 5
    $sudo dpkg --configure -a || true
    apt_install
  fi
fi

# hls.js for the local stack's pages, and hls.js and playwright-core for the browser tests,
# exactly as each package-lock.json pins them.
web_packages=(cli/web)
if [ "$purpose" != demo ]; then web_packages+=(tests/browser); fi
for dir in "${web_packages[@]}"; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
done

# moto in server mode: the AWS emulator the integration tests talk to on 127.0.0.1, and
# gcp-storage-emulator, the Cloud Storage one (bucket monitors). A Python that already has the
# pinned versions is used as it is; otherwise they go into a project venv.
moto_version=$(sed -n 's/^moto\[server\]==//p' cli/emulator/requirements.txt)
gcs_version=$(sed -n 's/^gcp-storage-emulator==//p' cli/emulator/requirements.txt)
cpix_version=$(sed -n 's/^cpix==//p' cli/emulator/requirements.txt)
has_moto() {
  "$1" -c "import moto, flask, flask_cors, cpix, sys, importlib.metadata as m; \
sys.exit(moto.__version__ != '$moto_version' or m.version('gcp-storage-emulator') != '$gcs_version' or m.version('cpix') != '$cpix_version')" 2>/dev/null
}
if ! has_moto python3 && ! has_moto .venv-moto/bin/python; then
  echo "installing moto[server]==$moto_version, gcp-storage-emulator==$gcs_version and cpix==$cpix_version into .venv-moto" >&2
  python3 -m venv .venv-moto
  .venv-moto/bin/pip install --quiet --disable-pip-version-check -r cli/emulator/requirements.txt
fi
