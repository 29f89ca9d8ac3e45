#!/usr/bin/env bash
# Benchmarks tern against native code and node: `bench/run.sh BUILD_DIR`
# (what `make bench` runs). Builds the kernels into BUILD_DIR/bench and
# prints one table; see bench.py for the columns and the BENCH_* variables.
set -euo pipefail
if [ "$#" -ne 1 ]; then
  echo "usage: bench/run.sh BUILD_DIR" >&2
  exit 2
fi
exec python3 "$(dirname -- "${BASH_SOURCE[0]}")/bench.py" "$1"
