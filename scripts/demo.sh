#!/usr/bin/env bash
# `make demo`: tern's main job end to end. An example program (counting
# primes block by block, writing a results file) runs once to the end; then
# it is checkpointed in the middle, its snapshot inspected, and it is
# restored in a new process as native code compiled by LLVM (the snapshot
# was taken in the interpreter) — with its output directory moved, as if on
# another machine — and again on big-endian s390x under qemu, from an
# artifact compiled for s390x. The outputs and files must match the
# uninterrupted run.
#
#   scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tern=$build/tern
program=$build/tests/checkpoint/primes.wasm
blocks=12
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
same() { # same FILE1 FILE2 WHAT
  if cmp -s "$1" "$2"; then echo "   $3: identical"; else
    echo "   $3: DIFFERENT"; diff "$1" "$2" | head -20; exit 1
  fi
}
stat_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

[ -x "$tern" ] && [ -f "$program" ] || { echo "demo: build first (make demo does)"; exit 1; }

step "1. Run examples/primes.c (wasm32-wasi) to the end: the reference"
mkdir "$work/ref"
"$tern" run --dir "$work/ref::/out" --stats-out "$work/ref.json" "$program" $blocks |
  tee "$work/ref.out"
total=$(stat_field "$work/ref.json" stable_points)
middle=$((total / 2))
echo "   ($total stable points executed: loop headers and function entries)"

step "2. Run it again and checkpoint at stable point $middle, then stop"
mkdir "$work/host-a"
"$tern" run --dir "$work/host-a::/out" --checkpoint-to "$work/primes.snap" \
  --checkpoint-at $middle --stop-after-checkpoint "$program" $blocks | tee "$work/part1.out"
echo "   snapshot: $(du -h "$work/primes.snap" | cut -f1) in $work/primes.snap"

step "3. What the snapshot holds (tern inspect)"
"$tern" inspect "$work/primes.snap" | sed -n '1,16p'
echo "   ..."
"$tern" inspect "$work/primes.snap" | sed -n '/^section WASI/,$p'

# A copy of the program's files as they were at the checkpoint, for the
# second restore (cp -a keeps sizes and mtimes, which restore checks).
cp -a "$work/host-a" "$work/at-checkpoint"

step "4. Move the output directory (another host); restore in a new process, as compiled code"
mv "$work/host-a" "$work/host-b"
"$tern" compile "$program" -o "$work/primes.x86_64.aot"
echo "   compiled: $(du -h "$work/primes.x86_64.aot" | cut -f1) artifact (tern compile, LLVM 19)"
"$tern" restore --mode aot --artifact "$work/primes.x86_64.aot" --dir "$work/host-b::/out" \
  "$work/primes.snap" | tee "$work/part2.out"
cat "$work/part1.out" "$work/part2.out" >"$work/joined.out"
same "$work/ref.out" "$work/joined.out" "stdout, checkpointed + restored vs uninterrupted"
same "$work/ref/primes.txt" "$work/host-b/primes.txt" "results file"

step "5. Restore the same snapshot on big-endian s390x (tern cross-built, under qemu), as compiled code"
echo "   building tern for s390x (static, cmake/toolchains/s390x.cmake)..."
[ -f build-s390x/CMakeCache.txt ] ||
  cmake -S . -B build-s390x -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/s390x.cmake -DTERN_TESTS=OFF -DTERN_GUESTS=OFF >/dev/null
cmake --build build-s390x --target tern >"$work/s390x-build.log" 2>&1 ||
  { cat "$work/s390x-build.log"; exit 1; }
"$tern" compile --target s390x "$program" -o "$work/primes.s390x.aot"
echo "   compiled for s390x on this x86-64 host: $work/primes.s390x.aot"
qemu-s390x build-s390x/tern restore --mode aot --artifact "$work/primes.s390x.aot" \
  --dir "$work/at-checkpoint::/out" "$work/primes.snap" |
  tee "$work/part2-s390x.out"
cat "$work/part1.out" "$work/part2-s390x.out" >"$work/joined-s390x.out"
same "$work/ref.out" "$work/joined-s390x.out" "stdout, x86-64 checkpoint + s390x restore"
same "$work/ref/primes.txt" "$work/at-checkpoint/primes.txt" "results file"

step "Done: the program moved mid-run, across processes, engines and CPUs, and finished as if never stopped"
