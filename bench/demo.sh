#!/usr/bin/env bash
# The README's main job, timed as a newcomer meets it, beside its reference in one run:
#   1. Fresh: a new clone with an empty build folder runs `scripts/demo.sh --exit` (install what
#      is missing, build, start the stack, upload, transcode, prove playback), split into
#      install, build and the demo's own phases (emulator start, provisioning, upload, transcode,
#      first playback). Goal: playable in <= 600 s.
#   2. Warm: the same command again in that clone (nothing to install or build, state kept).
#      Goal: <= 60 s.
#   3. Reference: `vaultstream-transcode local` on the same clip, the bare transcode the stack
#      wraps; the warm demo's total as a ratio of it is the cost of the whole product around it.
#   Peak memory of the stack (vaultstream + moto + the transcoder, summed RSS) during the warm run.
# Usage: bench/demo.sh [--warm-only]   (fresh takes a cold build: many minutes on 2 cores)
# Apt packages already present on this machine are not counted (nothing to install).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

if [ "${1:-}" != "--warm-only" ]; then
  git clone -q "$root" "$work/clone"
  dir=$work/clone
  export CARGO_TARGET_DIR=$work/target
else
  dir=$root
fi
cd "$dir"

# Peak summed RSS (MB) of every process whose command line names the state folder or the binary.
sample_memory() {
  local peak=0
  while kill -0 "$1" 2>/dev/null; do
    local total
    total=$(ps -eo rss=,args= | awk '/vaultstream|moto-serve/ && !/awk/ {s += $1} END {print int(s / 1024)}')
    [ "$total" -gt "$peak" ] && peak=$total
    sleep 0.2
  done
  echo "$peak"
}

run_demo() { # label
  local log=$out/demo-$1.jsonl start end
  start=$(now)
  bash scripts/demo.sh --port 0 --exit --state-dir "$work/state" > "$log" 2> "$out/demo-$1.stderr" &
  local pid=$!
  sample_memory "$pid" > "$out/demo-$1.peak-mb" &
  local sampler=$!
  wait "$pid"
  wait "$sampler"
  end=$(now)
  echo "$(elapsed "$start" "$end")"
}

if [ "${1:-}" != "--warm-only" ]; then
  t0=$(now); bash scripts/install-deps.sh demo > /dev/null; t1=$(now)
  cargo build --workspace --bins --locked 2> "$out/demo-build.log"; t2=$(now)
  fresh_total=$(run_demo fresh)
  install=$(elapsed "$t0" "$t1"); build=$(elapsed "$t1" "$t2")
  echo "fresh: install ${install} s, build ${build} s, demo ${fresh_total} s"
  grep '"event":"done"' "$out/demo-fresh.jsonl"
fi

warm_total=$(run_demo warm)
echo "warm: demo.sh ${warm_total} s (goal 60), peak memory $(cat "$out/demo-warm.peak-mb") MB"
grep '"event":"done"' "$out/demo-warm.jsonl"

clip=$(ls "$work"/state/demo/clip-*.mp4 | head -1)
target=${CARGO_TARGET_DIR:-$dir/target}
s=$(now)
"$target/debug/vaultstream-transcode" local "$clip" --out "$work/bare" --key-file "$work/bare.key" > /dev/null 2>&1
bare=$(elapsed "$s" "$(now)")
echo "reference: vaultstream-transcode local, same clip: ${bare} s"
echo "warm demo / bare transcode: $(echo "scale=3; $warm_total / $bare" | bc)"
if [ -n "${fresh_total:-}" ]; then
  echo "fresh (install + build + demo) / goal 600 s: $(echo "scale=3; ($install + $build + $fresh_total) / 600" | bc)"
fi
