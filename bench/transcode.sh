#!/usr/bin/env bash
# The same ladder through FFmpeg's CLI in one process (split + 4x scale + var_stream_map, HLS
# muxer with AES-128) and through vaultstream-transcode, side by side in one run, on a generated
# generated 30 fps clip. Same preset, GOP, bitrates, VBV and audio. Reports wall-time ratio,
# CPU time, peak memory, PSNR of every rung against the source, and where our CPU went, stage
# by stage (manifest.json's figures.cpu_by_stage, median of the rounds).
# Goal: wall ratio (ours / ffmpeg) <= 0.9 at PSNR no worse than -0.1 dB per rung.
#
# Usage: bench/transcode.sh [SECONDS] [ROUNDS] [SOURCE]
#   defaults: 20 s clip, 3 rounds, alternating; SOURCE is 1080p (H.264, the default), 720p
#   (H.264; the ladder then has no 1080p rung, as ours drops rungs above the source) or 4k-hevc
#   (2160p HEVC, which the ladder scales down from).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIP_SECONDS=${1:-20}
ROUNDS=${2:-3}
SOURCE=${3:-1080p}
PRESET=veryfast
OUT=bench/out/transcode-$SOURCE
rm -rf "$OUT" && mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null 2>&1 || sudo apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p vaultstream-transcoder

SRC="$OUT/source.mp4"
case "$SOURCE" in
  1080p) size=1920x1080; codec=(-c:v libx264 -preset ultrafast -crf 16) ;;
  720p) size=1280x720; codec=(-c:v libx264 -preset ultrafast -crf 16) ;;
  4k-hevc) size=3840x2160; codec=(-c:v libx265 -preset ultrafast -crf 18 -tag:v hvc1 -x265-params log-level=error) ;;
  *) echo "SOURCE is 1080p, 720p or 4k-hevc, not $SOURCE" >&2; exit 2 ;;
esac
ffmpeg -v error -f lavfi -i "testsrc2=s=$size:r=30:d=$CLIP_SECONDS" -f lavfi -i "sine=f=440:r=48000:d=$CLIP_SECONDS" \
  "${codec[@]}" -pix_fmt yuv420p -c:a aac -b:a 256k -shortest "$SRC"

KEY_HEX=000102030405060708090a0b0c0d0e0f
printf '%s' "$KEY_HEX" | xxd -r -p > "$OUT/ffmpeg.key" 2>/dev/null || python3 -c "import sys;sys.stdout.buffer.write(bytes.fromhex('$KEY_HEX'))" > "$OUT/ffmpeg.key"

# name width height video_kbps audio_kbps (DESIGN/issue: the seed's ladder)
LADDER=("1080p 1920 1080 5000 192" "720p 1280 720 2800 128" "480p 854 480 1400 96" "360p 640 360 800 64")
# Rungs taller than the source are dropped, as the default profile does.
source_height=${size#*x}
kept=()
for entry in "${LADDER[@]}"; do read -r _ _ h _ _ <<< "$entry"; [ "$h" -le "$source_height" ] && kept+=("$entry"); done
LADDER=("${kept[@]}")
RUNGS=${#LADDER[@]}

run_ffmpeg() {
  local dir=$1
  mkdir -p "$dir"
  printf '%s\n%s\n' "../../ffmpeg.key" "$(cd "$OUT" && pwd)/ffmpeg.key" > "$dir/keyinfo"
  local split="[0:v]split=$RUNGS" maps=() opts=() streams=""
  for ((i = 0; i < RUNGS; i++)); do split+="[s$i]"; done
  local graph="$split"
  for ((i = 0; i < RUNGS; i++)); do
    read -r name w h vk ak <<< "${LADDER[$i]}"
    graph+=";[s$i]scale=$w:$h:flags=bicubic[o$i]"
    maps+=(-map "[o$i]")
    opts+=(-b:v:$i "${vk}k" -maxrate:v:$i "$((vk * 107 / 100))k" -bufsize:v:$i "$((vk * 107 / 100 * 3 / 2))k" -b:a:$i "${ak}k")
    streams+="v:$i,a:$i,name:$name "
  done
  for ((i = 0; i < RUNGS; i++)); do maps+=(-map 0:a); done
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" ffmpeg -v error -y -i "$SRC" -filter_complex "$graph" "${maps[@]}" \
    -c:v libx264 -preset $PRESET -profile:v high -g 60 -keyint_min 60 -sc_threshold 0 -force_key_frames 'expr:gte(t,n_forced*2)' \
    -c:a aac -ar 48000 -ac 2 "${opts[@]}" \
    -f hls -hls_time 6 -hls_playlist_type vod -hls_key_info_file "$dir/keyinfo" -hls_flags independent_segments \
    -master_pl_name master.m3u8 -var_stream_map "${streams% }" -hls_segment_filename "$dir/%v/seg_%05d.ts" "$dir/%v/index.m3u8"
}

run_ours() {
  local dir=$1
  rm -f "$dir.key"
  /usr/bin/time -f '%e %U %S %M' -o "$dir.time" target/release/vaultstream-transcode local "$SRC" --out "$dir" \
    --preset $PRESET --key-hex $KEY_HEX --key-file "$dir.key" >/dev/null 2>"$dir.log"
  mv "$dir.time" "$dir/time"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS: ffmpeg CLI" >&2; run_ffmpeg "$OUT/ffmpeg-$round"
  echo "round $round/$ROUNDS: vaultstream" >&2; run_ours "$OUT/ours-$round"
done

psnr() { # playlist width height -> average PSNR (Y,U,V weighted) against the source scaled the same way
  ffmpeg -v error -allowed_extensions ALL -i "$1" -i "$SRC" -lavfi \
    "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,scale=$2:$3:flags=bicubic[r];[d][r]psnr=stats_file=-" -f null - 2>/dev/null \
    | awk '{for(i=1;i<=NF;i++) if($i ~ /^psnr_avg:/){split($i,a,":"); if(a[2]!="inf"){s+=a[2]; n++}}} END{printf "%.3f", s/n}'
}

python3 - "$OUT" "$ROUNDS" <<'PY' > "$OUT/times.json"
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
res = {}
for who in ("ffmpeg", "ours"):
    rows = []
    for r in range(1, rounds + 1):
        e, u, s, m = open(f"{out}/{who}-{r}/time").read().split()
        rows.append({"wall": float(e), "cpu": float(u) + float(s), "rss_mb": int(m) / 1024})
    res[who] = {k: statistics.median(x[k] for x in rows) for k in rows[0]} | {"runs": rows}
print(json.dumps(res))
PY

echo "| rung | ffmpeg PSNR (dB) | vaultstream PSNR (dB) | delta |"
echo "|---|---|---|---|"
psnr_json="{"
for entry in "${LADDER[@]}"; do
  read -r name w h _ _ <<< "$entry"
  a=$(psnr "$OUT/ffmpeg-1/$name/index.m3u8" "$w" "$h")
  b=$(psnr "$OUT/ours-1/$name/index.m3u8" "$w" "$h")
  d=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%+.3f", b-a}')
  echo "| $name | $a | $b | $d |"
  psnr_json+="\"$name\":{\"ffmpeg\":$a,\"vaultstream\":$b,\"delta\":${d#+}},"
done
echo "${psnr_json%,}}" > "$OUT/psnr.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
t = json.load(open(f"{out}/times.json"))
f, o = t["ffmpeg"], t["ours"]
print()
print("| median of runs | ffmpeg CLI | vaultstream | ratio |")
print("|---|---|---|---|")
for k, label in (("wall", "wall (s)"), ("cpu", "CPU (s)"), ("rss_mb", "peak RSS (MB)")):
    print(f"| {label} | {f[k]:.2f} | {o[k]:.2f} | {o[k] / f[k]:.3f} |")

# Where our CPU went: figures.cpu_by_stage of every round, median per stage.
import glob, statistics
rounds = [json.load(open(m))["figures"] for m in sorted(glob.glob(f"{out}/ours-*/manifest.json"))]
stages = {k: statistics.median(r["cpu_by_stage"].get(k, 0.0) for r in rounds) for k in rounds[0]["cpu_by_stage"]}
total = statistics.median(r["cpu_seconds"] for r in rounds)
print()
print(f"| stage (vaultstream, median of {len(rounds)}) | CPU (s) | share |")
print("|---|---|---|")
for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
    print(f"| {k} | {v:.2f} | {100 * v / total:.1f} % |")
print(f"| total | {total:.2f} | |")
json.dump({"times": t, "psnr": json.load(open(f"{out}/psnr.json")), "stages": stages}, open(f"{out}/results.json", "w"), indent=1)
PY
