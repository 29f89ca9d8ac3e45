#!/usr/bin/env bash
# The WASI benchmarks: 1 GiB of 64-byte fwrites, and 100,000 open/close
# pairs, each run natively, under `tern run` and under node's node:wasi, in
# one table (best wall time of REPS runs; every run's output is checked).
#
#   bench/wasi/run.sh [BUILD_DIR]        REPS=3 MIB=1024 OPENS=100000
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
tern="$(cd "$build" && pwd)/tern"
reps="${REPS:-3}"
mib="${MIB:-1024}"
opens="${OPENS:-100000}"
[ -x "$tern" ] || { echo "bench/wasi: no tern at $tern (build first)" >&2; exit 1; }

work="$(mktemp -d /tmp/tern-bench-wasi.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/data"
for prog in fwrite open_close; do
  cc -O2 -o "$work/$prog" "$here/$prog.c"
  clang --target=wasm32-wasi -O2 -o "$work/$prog.wasm" "$here/$prog.c"
done

# best_time EXPECTED_OUTPUT CMD...: the best wall time in seconds of $reps
# runs; fails if a run's stdout is not EXPECTED_OUTPUT.
best_time() {
  local expected="$1" best="" start end out t
  shift
  for _ in $(seq "$reps"); do
    rm -f "$work/data/out.bin" # no dirty pages of the last run left to write back
    sync
    start=$(date +%s%N)
    out="$("$@")"
    end=$(date +%s%N)
    if [ "$out" != "$expected" ]; then
      echo "bench/wasi: unexpected output from $*: $out" >&2
      exit 1
    fi
    t=$(( end - start ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  awk -v ns="$best" 'BEGIN { printf "%.3f", ns / 1e9 }'
}

# row NAME EXPECTED WASM_ARGS... -- NATIVE_ARGS...
row() {
  local name="$1" prog="$2" expected="$3" guest_arg="$4" native_arg="$5"
  shift 5
  local native tern_t node_t
  native=$(best_time "$expected" "$work/$prog" "$native_arg" "$@")
  tern_t=$(best_time "$expected" "$tern" run --dir "$work/data::/bench" "$work/$prog.wasm" \
    "$guest_arg" "$@")
  node_t=$(best_time "$expected" node --no-warnings "$here/node_wasi.mjs" "$work/$prog.wasm" \
    "$work/data" /bench "$guest_arg" "$@")
  awk -v n="$name" -v a="$native" -v t="$tern_t" -v d="$node_t" 'BEGIN {
    printf "%-28s %9.3f s %9.3f s %9.3f s %11.2fx %10.2fx\n", n, a, t, d, t / a, t / d }'
}

records=$(( mib * 1024 * 1024 / 64 ))
printf "%-28s %11s %11s %11s %12s %11s\n" benchmark native tern node tern/native tern/node
row "fwrite ${mib} MiB, 64 B each" fwrite "wrote $mib MiB in $records records" \
  /bench/out.bin "$work/data/out.bin" "$mib"
row "open+close x ${opens}" open_close "$opens open/close pairs" /bench "$work/data" "$opens"
echo "(best of $reps runs each; tern $("$tern" --version | cut -d' ' -f2), node $(node --version))"
