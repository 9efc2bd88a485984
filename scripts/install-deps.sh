#!/usr/bin/env bash
# Installs what building and testing VaultStream needs on Debian, when it is missing.
# Idempotent: a machine that has everything is left alone.
set -euo pipefail

packages=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
          libswscale-dev libswresample-dev pkg-config clang libclang-dev openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

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
