#!/usr/bin/env bash
# What HDR → SDR tone mapping costs, as a share of the transcode: a generated 1080p25 PQ clip
# (10-bit HEVC, BT.2020, white at 1000 nits, 10 s) through the default ladder with
# `vaultstream-transcode local`, against the same clip with its colour tags rewritten to SDR
# BT.709 (same samples: everything but the tone map is the same work, the one 10- to 8-bit
# conversion included), all in one run, alternating. The step's cost is read two ways: the
# transcoder's own count of the decode thread's CPU time in the tone map (manifest.json's
# figures.tone_map_cpu_seconds), and the difference between the two transcodes. For reference,
# libavfilter's float chain the grid is built from (zscale + tonemap, per pixel) is timed through
# FFmpeg's CLI on the same clip against decode alone. CPU seconds (user + sys), which a busy
# machine disturbs less than wall time; wall times are printed too.
# Goal (issue 12): the step <= 10 % of the transcode.
#
# The dev profile the demo and tests use (the transcoder at opt-level 3).
# Usage: bench/tonemap.sh [SECONDS] [ROUNDS]     (defaults: 10 s clip, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-10}
ROUNDS=${2:-3}
OUT=bench/out/tonemap
rm -rf "$OUT" && mkdir -p "$OUT"
source bench/lib/cpu-time.sh
HDR="$OUT/pq.mp4"
SDR="$OUT/same-samples-tagged-sdr.mp4"
ffmpeg -v error -f lavfi -i "testsrc2=s=1920x1080:r=25:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  -vf "format=gbrp,zscale=tin=709:pin=709:rin=pc:t=smpte2084:p=2020:m=2020_ncl:r=tv:npl=1000" \
  -pix_fmt yuv420p10le -c:v libx265 -preset ultrafast -x265-params log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc \
  -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc -c:a aac -shortest "$HDR"
ffmpeg -v error -i "$HDR" -c copy -bsf:v hevc_metadata=colour_primaries=1:transfer_characteristics=1:matrix_coefficients=1 \
  -color_primaries bt709 -color_trc bt709 -colorspace bt709 "$SDR"
CHAIN="zscale=tin=smpte2084:min=2020_ncl:pin=2020:rin=tv:p=2020:t=linear:npl=100,format=gbrpf32le,zscale=p=709,tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=tv,format=yuv420p"

for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT"/run-* "$OUT"/*.key
  cpu hdr "$BIN" local "$HDR" --out "$OUT/run-hdr" --key-file "$OUT/hdr.key" --preset veryfast
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["figures"]["tone_map_cpu_seconds"])' "$OUT/run-hdr/manifest.json" >> "$OUT/in-process"
  cpu sdr "$BIN" local "$SDR" --out "$OUT/run-sdr" --key-file "$OUT/sdr.key" --preset veryfast
  cpu decode ffmpeg -v error -i "$HDR" -an -f null -
  cpu float_chain ffmpeg -v error -i "$HDR" -an -vf "$CHAIN" -f null -
done
grep -q '"dynamic_range": "PQ"' "$OUT/run-hdr/manifest.json" || { echo "the HDR run was not read as PQ" >&2; exit 1; }
grep -q '"dynamic_range": "SDR"' "$OUT/run-sdr/manifest.json" || { echo "the re-tagged run was not read as SDR" >&2; exit 1; }
python3 - "$OUT/times" "$OUT/in-process" <<'PY'
import statistics, sys
in_process = statistics.median(float(l) for l in open(sys.argv[2]))
runs = {}
for line in open(sys.argv[1]):
    label, user, system, wall = line.split()
    runs.setdefault(label, []).append((float(user) + float(system), float(wall)))
med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in runs.items()}
step = med["hdr"][0] - med["sdr"][0]
chain = med["float_chain"][0] - med["decode"][0]
print(f"transcode, PQ source (tone-mapped):     {med['hdr'][0]:.2f} CPU s ({med['hdr'][1]:.2f} s wall)")
print(f"transcode, same samples tagged SDR:     {med['sdr'][0]:.2f} CPU s ({med['sdr'][1]:.2f} s wall)")
print(f"tone mapping, counted in process: {in_process:.2f} CPU s = {100 * in_process / med['hdr'][0]:.1f} % of the transcode's CPU (goal <= 10 %)")
print(f"tone mapping, by difference:      {step:.2f} CPU s = {100 * step / med['hdr'][0]:.1f} %; wall {100 * (med['hdr'][1] - med['sdr'][1]) / med['hdr'][1]:.1f} %")
print(f"reference: libavfilter's float chain per pixel {chain:.2f} CPU s = {100 * chain / med['hdr'][0]:.1f} % of the transcode, "
      f"{chain / in_process:.1f}x the grid's")
PY
