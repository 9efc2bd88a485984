# Shared by the benches that time one step of a transcode in CPU seconds (sourced, not run).
# Needs OUT (the bench's output folder). Builds the transcoder (dev profile, as the demo and tests
# use it) and sets BIN; `cpu LABEL COMMAND...` runs a command and appends "LABEL user sys wall" to
# $OUT/times.
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null 2>&1 || sudo apt-get install -y -qq time >/dev/null; }
cargo build -q -p vaultstream-transcoder
BIN=target/debug/vaultstream-transcode

cpu() {
  local label=$1; shift
  /usr/bin/time -f "$label %U %S %e" -a -o "$OUT/times" "$@" >/dev/null 2>&1
}
