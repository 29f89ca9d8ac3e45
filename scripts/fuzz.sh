#!/usr/bin/env bash
# Fuzzes the decoder (or TARGET: decode, snapshot, restore): builds
# fuzz/TARGET_fuzzer with clang-19, libFuzzer, ASan and UBSan in build-fuzz/
# and runs it for SECONDS (default 60) on a scratch copy of
# fuzz/corpus/TARGET (restore starts from the snapshot corpus), so the
# repository is not modified. Exits non-zero on
# any crash, leak, sanitizer report or timeout; the input that caused it is
# kept in build-fuzz/artifacts/.
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

build=build-fuzz
CC=clang-19 CXX=clang++-19 cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DTERN_FUZZ=ON -DTERN_SANITIZE=ON -DTERN_TESTS=OFF -DTERN_GUESTS=OFF >/dev/null
cmake --build "$build" --target "${target}_fuzzer"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$build/artifacts"
cp fuzz/corpus/"$corpus"/* "$scratch/corpus/"

# One process: the machine's cores are shared. -timeout catches hangs.
"$build/fuzz/${target}_fuzzer" "$scratch/corpus" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1
