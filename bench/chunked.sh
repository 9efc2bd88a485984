#!/usr/bin/env bash
# Split-and-stitch against one job on this machine, and what it projects for a feature film.
#
# 1. Measured: the same 1080p30 testsrc2 + sine clip (default ladder, release, --preset
#    veryfast), transcoded whole and in CHUNK-second chunks by WORKERS local worker processes,
#    alternating, median of ROUNDS. Reports the speed-up (whole wall / chunked wall), the
#    overhead (chunked CPU / whole CPU) and the stitch's share of the chunked CPU.
# 2. Modelled from those figures: a 2-hour 1080p title in 60 s chunks on AWS Batch at 16 and 64
#    workers of 4 vCPUs (the contract's video-cpu job), each chunk costing the CPU measured per
#    content-second, at the parallel efficiency measured here, plus JOB_START seconds a wave for
#    Batch to place the children; the stitch as measured per content-second. Cost: every job's
#    vCPUs for its whole wall time (Batch bills what it holds, not what it uses) at PRICE per
#    vCPU-second (Spot c7i), against MediaConvert Basic's $0.015 per HD minute list price.
#
#    Quality: each rung's sampled PSNR (manifest.json), and for the lowest rung the PSNR of every
#    frame against the source scaled to it (FFmpeg's psnr filter), whole and chunked.
#
# Usage: bench/chunked.sh [SECONDS] [CHUNK] [WORKERS] [ROUNDS]   (defaults: 180 60 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-180}
CHUNK=${2:-60}
WORKERS=${3:-2}
ROUNDS=${4:-3}
PRICE=${PRICE:-0.0000118}
JOB_START=${JOB_START:-20}
OUT=bench/out/chunked
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null 2>&1 || sudo apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p vaultstream-transcoder
BIN=target/release/vaultstream-transcode

SRC="$OUT/source.mp4"
ffmpeg -v error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  -c:v libx264 -preset ultrafast -crf 16 -g 60 -pix_fmt yuv420p -c:a aac -b:a 256k -shortest "$SRC"

run() {
  local label=$1 round=$2
  shift 2
  # /usr/bin/time counts the workers' CPU too: they are children of the process it starts.
  /usr/bin/time -f '%e %U %S' -o "$OUT/$label-$round.time" "$BIN" local "$SRC" --out "$OUT/$label-$round" \
    --preset veryfast "$@" >/dev/null 2>"$OUT/$label-$round.log"
}
for round in $(seq 1 "$ROUNDS"); do
  run whole "$round"
  run chunked "$round" --chunk-seconds "$CHUNK" --workers "$WORKERS"
done

# Every frame of the lowest rung against the source, as the rung's viewers see it.
for label in whole chunked; do
  ffmpeg -v info -nostats -allowed_extensions ALL -i "$OUT/$label-1/360p/index.m3u8" -i "$SRC" \
    -lavfi "[1:v]scale=640:360:flags=bicubic[ref];[0:v][ref]psnr" -f null - 2>&1 | grep -o 'average:[0-9.]*' | cut -d: -f2 > "$OUT/$label.psnr"
done

python3 - "$OUT" "$ROUNDS" "$CLIP_SECONDS" "$CHUNK" "$WORKERS" "$PRICE" "$JOB_START" <<'PY'
import json, math, os, statistics, sys
out, rounds, clip, chunk, workers, price, job_start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
cores = os.cpu_count()
res = {}
for label in ("whole", "chunked"):
    rows = []
    for r in range(1, rounds + 1):
        wall, user, sys_ = map(float, open(f"{out}/{label}-{r}.time").read().split())
        m = json.load(open(f"{out}/{label}-{r}/manifest.json"))
        rows.append({"wall": wall, "cpu": user + sys_, "chunked": m["figures"].get("chunked"), "psnr": [x["quality"]["psnr_db"] for x in m["renditions"]]})
    res[label] = {k: statistics.median(x[k] for x in rows) for k in ("wall", "cpu")} | {"runs": rows}
w, c = res["whole"], res["chunked"]
chunk_rows = [r["chunked"] for r in c["runs"]]
stitch_cpu = statistics.median(f["stitch_cpu_seconds"] for f in chunk_rows)
chunk_cpu = statistics.median(sum(f["chunk_cpu_seconds"]) for f in chunk_rows)
overhead = statistics.median(f["stitch_overhead"] for f in chunk_rows)
print(f"measured on {cores} cores: a {clip:.0f} s 1080p30 clip, default ladder, veryfast; median of {rounds}")
print(f"| | one job | {chunk_rows[0]['chunks']} chunks, {workers} workers | ratio |")
print("|---|---|---|---|")
print(f"| wall seconds | {w['wall']:.2f} | {c['wall']:.2f} | speed-up {w['wall'] / c['wall']:.3f} |")
print(f"| CPU seconds | {w['cpu']:.2f} | {c['cpu']:.2f} | overhead {c['cpu'] / w['cpu']:.3f} |")
print(f"| stitch share of CPU | | {overhead:.4f} | goal <= 0.05 |")
psnr = [(a - b) for a, b in zip(w["runs"][0]["psnr"], c["runs"][0]["psnr"])]
print(f"sampled PSNR, whole - chunked, per rung (dB): {', '.join(f'{d:+.2f}' for d in psnr)}")
full = {label: float(open(f"{out}/{label}.psnr").read().strip() or "nan") for label in ("whole", "chunked")}
print(f"360p, every frame against the source: whole {full['whole']:.3f} dB, chunked {full['chunked']:.3f} dB ({full['whole'] - full['chunked']:+.3f}; goal within 0.2)")
stitch_audio = statistics.median(json.load(open(f"{out}/chunked-{r}/manifest.json"))["figures"]["cpu_by_stage"].get("encode_audio", 0) for r in range(1, rounds + 1))
print(f"of the stitch's CPU, {stitch_audio / stitch_cpu:.2f} is the title's AAC encodes, which one job does too; the rest (mux, CMAF, encryption, reading the chunks) is {(stitch_cpu - stitch_audio) / c['cpu']:.4f} of all CPU")
res["psnr_360p_every_frame"] = full

# The model.
film = 7200.0
film_chunk = 60.0
chunks = math.ceil(film / film_chunk)
vcpus = 4
efficiency = min(1.0, w["cpu"] / (w["wall"] * cores))  # how well one job used its cores here
cpu_per_content_second = chunk_cpu / clip             # a chunk's encode, per second of content
chunk_wall = cpu_per_content_second * film_chunk / (vcpus * efficiency)
stitch_wall = stitch_cpu / clip * film / min(vcpus, 4) / efficiency
planner_wall = job_start + 5.0
print()
print(f"model: a 2-hour 1080p title, {chunks} chunks of {film_chunk:.0f} s, workers of {vcpus} vCPUs at the {efficiency:.2f} parallel efficiency measured,")
print(f"{cpu_per_content_second:.3f} CPU-s per content-second a chunk, the stitch {stitch_cpu / clip:.4f} CPU-s per content-second, {job_start:.0f} s for Batch to start each wave")
print("| workers | wall minutes | vCPU-seconds billed | cost | per content-minute | MediaConvert Basic / ours |")
print("|---|---|---|---|---|---|")
model = {}
for n in (16, 64):
    waves = math.ceil(chunks / n)
    wall = planner_wall + waves * (job_start + chunk_wall) + job_start + stitch_wall
    billed = vcpus * (planner_wall + chunks * chunk_wall + stitch_wall)
    cost = billed * price
    per_minute = cost / (film / 60)
    model[n] = {"wall_minutes": wall / 60, "cost_usd": cost, "per_content_minute_usd": per_minute}
    print(f"| {n} | {wall / 60:.1f} | {billed:.0f} | ${cost:.3f} | ${per_minute:.5f} | {0.015 / per_minute:.0f}x |")
print(f"goals: <= 10 min at 16 workers ({model[16]['wall_minutes']:.1f}); cost <= 1/20 of MediaConvert ({0.015 / model[16]['per_content_minute_usd']:.0f}x cheaper)")
res["model"] = model
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
PY
