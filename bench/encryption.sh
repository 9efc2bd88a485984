#!/usr/bin/env bash
# Segment encryption throughput: VaultStream's AES-128-CBC (crates aes + cbc) against
# `openssl speed -evp aes-128-cbc`, same buffer sizes, one run side by side.
# Prints a table and writes bench/out/encryption.json. Goal: ratio >= 0.9.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_SIZE=${SECONDS_PER_SIZE:-3}
SIZES=(16384 1048576)
mkdir -p bench/out
cargo build --release -q -p vaultstream --example encrypt_throughput

ours=$(target/release/examples/encrypt_throughput "$SECONDS_PER_SIZE" "${SIZES[@]}")
declare -A theirs
for size in "${SIZES[@]}"; do
  # The last line of `openssl speed -mr` is "+F:<n>:aes-128-cbc:<bytes/s for each size>".
  line=$(openssl speed -mr -seconds "$SECONDS_PER_SIZE" -bytes "$size" -evp aes-128-cbc 2>/dev/null | grep '^+F:' | tail -1)
  theirs[$size]=$(echo "$line" | awk -F: '{printf "%.2f", $NF/1000}')
done

echo "| buffer | vaultstream (kB/s) | openssl (kB/s) | ratio |"
echo "|---|---|---|---|"
json="["
while read -r size kbps; do
  ratio=$(awk -v a="$kbps" -v b="${theirs[$size]}" 'BEGIN{printf "%.3f", a/b}')
  echo "| $size | $kbps | ${theirs[$size]} | $ratio |"
  json+="{\"bytes\":$size,\"vaultstream_kBps\":$kbps,\"openssl_kBps\":${theirs[$size]},\"ratio\":$ratio},"
done <<< "$ours"
echo "${json%,}]" > bench/out/encryption.json
