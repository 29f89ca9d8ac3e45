#!/usr/bin/env bash
# Fuzzes the decoder (or TARGET: decode, snapshot, restore): builds
# fuzz/TARGET_fuzzer (clang-19, libFuzzer, ASan and UBSan) in the sanitized
# build, build-asan/ (scripts/sanitized-build.sh), and runs it for SECONDS
# (default 60) on a scratch copy of fuzz/corpus/TARGET (restore starts from
# the snapshot corpus), so the repository is not modified. Exits non-zero on
# any crash, leak, sanitizer report or timeout; the input that caused it is
# kept in build-asan/artifacts/.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET]
set -euo pipefail
seconds="${1:-60}"
target="${2:-decode}"
usage="usage: $0 [SECONDS] [decode|snapshot|restore]"
case "$seconds" in '' | *[!0-9]*) echo "$usage" >&2; exit 2 ;; esac
case "$target" in decode | snapshot | restore) ;; *) echo "$usage" >&2; exit 2 ;; esac
corpus=$target
[ "$target" = restore ] && corpus=snapshot
cd "$(dirname "$0")/.."

build=build-asan
scripts/sanitized-build.sh "${target}_fuzzer"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$build/artifacts"
cp fuzz/corpus/"$corpus"/* "$scratch/corpus/"

fuzzer="$build/fuzz/${target}_fuzzer"
# -timeout catches hangs. libFuzzer's limit is wall-clock, so it comes from
# work measured here and now rather than a constant a busy machine can
# pass: one input may take ten times what the whole seed corpus took (at
# least 10 s).
start=$(date +%s%N)
"$fuzzer" "$scratch/corpus" -runs=0 -rss_limit_mb=2048 >/dev/null 2>&1 || true # the run below reports it
corpus_ms=$((($(date +%s%N) - start) / 1000000))
timeout=$((corpus_ms / 100 > 10 ? corpus_ms / 100 : 10))
echo "fuzz: the seed corpus ran in $corpus_ms ms: -timeout=$timeout"

# One process: the machine's cores are shared.
"$fuzzer" "$scratch/corpus" \
  -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1
