#!/usr/bin/env bash
# What deinterlacing costs, as a share of the transcode: a generated 1080i25 clip (top field
# first, 10 s) through the default ladder with `vaultstream-transcode local`, and the step on its
# own through FFmpeg's CLI on the same file — decode + the transcoder's `bwdif` against decode
# alone — all in one run, alternating. CPU seconds (user + sys), which a busy machine disturbs
# less than wall time; wall times are printed too.
# Goal (issue 12): the step <= 10 % of the transcode.
#
# The dev profile the demo and tests use (the transcoder at opt-level 3; bwdif, scaling and x264
# are the system FFmpeg's own optimised code either way).
# Usage: bench/deinterlace.sh [SECONDS] [ROUNDS]     (defaults: 10 s clip, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-10}
ROUNDS=${2:-3}
OUT=bench/out/deinterlace
rm -rf "$OUT" && mkdir -p "$OUT"
source bench/lib/cpu-time.sh
SRC="$OUT/interlaced.mp4"
ffmpeg -v error -f lavfi -i "testsrc2=s=1920x1080:r=50:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  -vf "tinterlace=interleave_top,setfield=tff" -c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p \
  -flags +ilme+ildct -x264-params tff=1 -c:a aac -shortest "$SRC"
FILTER=$(grep -o 'bwdif=mode=send_frame:parity=tff:deint=all' batch-transcoder/src/normalize.rs)

for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT/run" "$OUT/run.key"
  cpu transcode "$BIN" local "$SRC" --out "$OUT/run" --key-file "$OUT/run.key" --preset veryfast
  cpu decode ffmpeg -v error -i "$SRC" -an -f null -
  cpu deinterlace ffmpeg -v error -i "$SRC" -an -vf "$FILTER" -f null -
done
python3 - "$OUT/times" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, user, system, wall = line.split()
    runs.setdefault(label, []).append((float(user) + float(system), float(wall)))
med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in runs.items()}
step = med["deinterlace"][0] - med["decode"][0]
print(f"transcode (default ladder): {med['transcode'][0]:.2f} CPU s ({med['transcode'][1]:.2f} s wall)")
print(f"decode alone {med['decode'][0]:.2f} CPU s; decode + bwdif {med['deinterlace'][0]:.2f} CPU s; the step {step:.2f} CPU s")
print(f"deinterlacing = {100 * step / med['transcode'][0]:.1f} % of the transcode's CPU (goal <= 10 %)")
PY
