#!/usr/bin/env bash
# ThreadSanitizer over the threaded guests, by hand (not a make test stage:
# the instrumented build costs ~10 CPU minutes): builds tern with
# -fsanitize=thread in TSAN_BUILD (interpreter only; the compiler plugin is
# BUILD's, uninstrumented), then runs every threaded guest under it, the
# threads tests that checkpoint at random moments and restore, checkpoint a
# thread blocked in a WASI call and migrate threaded programs. Prints each
# distinct report (its two accesses' top frames) and exits 1 if there is
# any. Needs BUILD's guests (build/tests/threads).
#
#   scripts/tsan-threads.sh [BUILD [TSAN_BUILD]]      (default build, build-tsan)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
tsan_build=${2:-$repo/build-tsan}
cd "$repo"
# GCC 12 warns that TSan does not model atomic_thread_fence (-Wtsan, an
# error under -Werror): atomic.fence is sequentially consistent anyway.
flags="-fsanitize=thread -Wno-tsan"
cmake -S . -B "$tsan_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTERN_GUESTS=OFF -DTERN_TESTS=OFF \
  -DTERN_LLVM=OFF -DTERN_COMPILER_PLUGIN_FROM="$build/libtern-compiler.so" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$tsan_build" -j "$(nproc)" --target tern

tern=$tsan_build/tern
guests=$build/tests/threads
out=$(mktemp -d "${TMPDIR:-/tmp}/tern-tsan-XXXXXX")
trap 'rm -rf "$out"' EXIT
# Reports go to files ($out/NAME.PID), the programs' output stays clean;
# exitcode=0 so that the tests judge the programs' own exit status.
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 die_after_fork=0 log_path=$out/tsan \
suppressions=$repo/tests/threads/tsan.supp"
for guest in sum_mutex queue_cond stencil_barrier thread_pool; do
  "$tern" run --mode interp "$guests/$guest.wasm"
done
(sleep 1 && echo hello) | "$tern" run --mode interp "$guests/stdio_threads.wasm" | tail -1
"$tern" run --mode interp "$guests/thread_ends_program.wasm" exit 7 || true
"$tern" run --mode interp "$guests/thread_ends_program.wasm" trap 2>/dev/null || true
"$tern" run --mode interp --max-threads 5 "$guests/thread_limit.wasm"
# A case may fail only because TSan slows tern 5-15 times (threaded_dirtier
# may end before its migration does): the reports are what this counts.
python3 tests/threads/threads_tests.py --tern "$tern" --programs "$guests" --compiler 0 \
  --moments 6 checkpoint_stress.sum_mutex checkpoint_stress.queue_cond \
  checkpoint_stress.stencil_barrier checkpoint_stress.thread_pool blocked_reader_checkpoint \
  migrate_loopback migrate_while_dirtying || echo "(a threads case failed under TSan: see above)"

reports=$(cat "$out"/tsan.* 2>/dev/null | grep -c "WARNING: ThreadSanitizer" || true)
echo "ThreadSanitizer: $reports reports"
if [ "$reports" -gt 0 ]; then
  cat "$out"/tsan.* | awk '/WARNING: ThreadSanitizer/ { print }
    /^  (Read|Write|Previous|Atomic)/ { print; n = 2 } /^    #/ && n > 0 { print; n-- }' | head -200
  exit 1
fi
