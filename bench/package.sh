#!/usr/bin/env bash
# Packages every Lambda function as the deploy does and reports each zip's size against the
# 6 MB goal (6 MiB, Lambda's comfortable cold-start range for provided.al2023).
# Needs cargo-lambda (pip install cargo-lambda, which brings Zig) and the aarch64 Rust target.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add aarch64-unknown-linux-gnu >/dev/null
cargo lambda build --profile lambda --arm64 --output-format zip -p vaultstream-functions
goal=$((6 * 1024 * 1024))
printf '%-14s %12s %8s\n' function bytes "vs goal"
for zip in target/lambda/*/bootstrap.zip; do
    name=$(basename "$(dirname "$zip")")
    size=$(stat -c %s "$zip")
    awk -v n="$name" -v s="$size" -v g="$goal" 'BEGIN {printf "%-14s %12d %7.2fx%s\n", n, s, s / g, (s > g ? "  OVER" : "")}'
done
