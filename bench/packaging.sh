#!/usr/bin/env bash
# What CMAF + cbcs costs beside the AES-128 .ts ladder: the same source and ladder transcoded
# with "packaging": ["hls-ts"] and with the default ["hls-ts", "cmaf"], alternating, median of
# the rounds. Reports the CPU-seconds ratio (both / ts only; goal <= 1.05: the CMAF tracks come
# from the same packets, so the extra work is muxing and encrypting) and the storage ratios.
#
# Usage: bench/packaging.sh [SECONDS] [ROUNDS]     (defaults: 20 s 1080p30 clip, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-20}
ROUNDS=${2:-3}
OUT=bench/out/packaging
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null 2>&1 || sudo apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p vaultstream-transcoder
BIN=target/release/vaultstream-transcode

SRC="$OUT/source.mp4"
ffmpeg -v error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  -c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 256k -shortest "$SRC"
# The default ladder, with only the HLS ladder.
python3 - "$OUT/ts-only.json" <<'PY'
import json, sys
rungs = [("1080p", 1920, 1080, 5000, 192), ("720p", 1280, 720, 2800, 128), ("480p", 854, 480, 1400, 96), ("360p", 640, 360, 800, 64)]
json.dump({"name": "ts-only", "packaging": ["hls-ts"],
           "rungs": [{"name": n, "width": w, "height": h, "video_kbps": v, "audio_kbps": a} for n, w, h, v, a in rungs]}, open(sys.argv[1], "w"))
PY

run() {
  local label=$1 round=$2 profile=$3
  /usr/bin/time -f '%e %U %S' -o "$OUT/$label-$round.time" "$BIN" local "$SRC" --out "$OUT/$label-$round" --profile "$profile" \
    --preset veryfast >/dev/null 2>"$OUT/$label-$round.log"
}
for round in $(seq 1 "$ROUNDS"); do
  run ts "$round" "$OUT/ts-only.json"
  run both "$round" default
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def size(path, pick):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), path)
            if pick(rel):
                total += os.path.getsize(os.path.join(root, f))
    return total
cmaf = lambda rel: "/cmaf/" in rel or rel.endswith(("video.m3u8", "audio.m3u8")) or rel in ("cmaf.m3u8", "manifest.mpd")
res = {}
for label in ("ts", "both"):
    rows = []
    for r in range(1, rounds + 1):
        wall, user, sys_ = map(float, open(f"{out}/{label}-{r}.time").read().split())
        rows.append({"wall": wall, "cpu": user + sys_})
    res[label] = {k: statistics.median(x[k] for x in rows) for k in ("wall", "cpu")} | {"runs": rows}
both_dir = f"{out}/both-1"
ts_bytes = size(f"{out}/ts-1", lambda rel: True)
both_bytes = size(both_dir, lambda rel: True)
cmaf_bytes = size(both_dir, cmaf)
res["bytes"] = {"ts_only": ts_bytes, "both": both_bytes, "cmaf": cmaf_bytes}
print(f"| median of {rounds} | ts only | ts + cmaf (cbcs) | ratio |")
print("|---|---|---|---|")
print(f"| CPU seconds | {res['ts']['cpu']:.2f} | {res['both']['cpu']:.2f} | {res['both']['cpu'] / res['ts']['cpu']:.3f} |")
print(f"| wall seconds | {res['ts']['wall']:.2f} | {res['both']['wall']:.2f} | {res['both']['wall'] / res['ts']['wall']:.3f} |")
print(f"| bytes published | {ts_bytes} | {both_bytes} | {both_bytes / ts_bytes:.3f} |")
print(f"CMAF tracks alone: {cmaf_bytes} bytes, {cmaf_bytes / ts_bytes:.3f} of the ts ladder (trick play, posters and thumbnails included there)")
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
PY
