#!/usr/bin/env bash
# What measuring each rung's quality costs, and what it measures: a generated 1080p30 clip
# (10 s) through the default ladder with `vaultstream-transcode local`, several rounds. The cost
# is the transcoder's own count of the CPU time its quality probes took (decoding every rung
# again, PSNR and SSIM on one frame a second: manifest.json's figures.quality_cpu_seconds),
# as a share of the whole transcode's CPU (user + sys). The table puts each rung's sampled
# PSNR and SSIM beside FFmpeg's CLI over every frame of the same rung, against the source scaled
# to it (the reference).
# Goal (issue 12): the step <= 10 % of the transcode.
#
# The dev profile the demo and tests use (the transcoder at opt-level 3).
# Usage: bench/quality.sh [SECONDS] [ROUNDS]     (defaults: 10 s clip, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-10}
ROUNDS=${2:-3}
OUT=bench/out/quality
rm -rf "$OUT" && mkdir -p "$OUT"
source bench/lib/cpu-time.sh
SRC="$OUT/clip.mp4"
ffmpeg -v error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  -c:v libx264 -preset ultrafast -crf 12 -pix_fmt yuv420p -c:a aac -shortest "$SRC"

for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT/run" "$OUT/run.key"
  cpu transcode "$BIN" local "$SRC" --out "$OUT/run" --key-file "$OUT/run.key" --preset veryfast
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["figures"]["quality_cpu_seconds"])' "$OUT/run/manifest.json" >> "$OUT/in-process"
done

# The reference figures, over every frame of each rung of the last round.
python3 - "$OUT/run/manifest.json" > "$OUT/rungs" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["renditions"]:
    print(r["name"], r["width"], r["height"], r["quality"]["psnr_db"], r["quality"]["ssim"], r["quality"]["frames_sampled"])
PY
while read -r name width height _; do
  ffmpeg -nostdin -nostats -allowed_extensions ALL -i "$OUT/run/$name/index.m3u8" -i "$SRC" \
    -lavfi "[1:v]scale=$width:$height:flags=bicubic,split=2[r1][r2];[0:v][r1]psnr[p];[p][r2]ssim" -f null - 2>&1 \
    | awk -v n="$name" '/PSNR/ {for (i = 1; i <= NF; i++) if ($i ~ /^average:/) {split($i, a, ":"); p = a[2]}}
                        /SSIM/ {for (i = 1; i <= NF; i++) if ($i ~ /^All:/) {split($i, a, ":"); s = a[2]}}
                        END {print n, p, s}' >> "$OUT/reference"
done < "$OUT/rungs"

python3 - "$OUT/times" "$OUT/in-process" "$OUT/rungs" "$OUT/reference" <<'PY'
import statistics, sys
cpu = statistics.median(float(l.split()[1]) + float(l.split()[2]) for l in open(sys.argv[1]))
wall = statistics.median(float(l.split()[3]) for l in open(sys.argv[1]))
probe = statistics.median(float(l) for l in open(sys.argv[2]))
reference = {l.split()[0]: l.split()[1:] for l in open(sys.argv[4])}
print(f"transcode (default ladder): {cpu:.2f} CPU s ({wall:.2f} s wall)")
print(f"quality probes: {probe:.2f} CPU s = {100 * probe / cpu:.1f} % of the transcode's CPU (goal <= 10 %)")
print("| rung | PSNR, sampled (dB) | PSNR, every frame, FFmpeg CLI (dB) | SSIM, sampled | SSIM, every frame, CLI | frames sampled |")
print("|---|---|---|---|---|---|")
for line in open(sys.argv[3]):
    name, _, _, psnr, ssim, frames = line.split()
    cli_psnr, cli_ssim = reference.get(name, ["?", "?"])
    print(f"| {name} | {float(psnr):.2f} | {float(cli_psnr):.2f} | {float(ssim):.4f} | {float(cli_ssim):.4f} | {frames} |")
PY
