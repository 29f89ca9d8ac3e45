#!/usr/bin/env bash
# The whole test suite (`make test`): every stage below must pass. Each stage
# prints its name and duration so CI time can be watched (budget: 45 min on
# 2 cores).
#
#   scripts/test.sh BUILD_DIR          all stages
#   TERN_STAGES="unit spec" scripts/test.sh build    only some of them
#
# Stages:
#   unit      ctest in BUILD_DIR: GoogleTest suites, the wast runner's own
#             checks, guest programs under `tern run`
#   spec      the WebAssembly spec suite, interpreter (0 failed)
#   asan      ASan+UBSan build: unit tests and the spec suite
#   s390x     static cross build for big-endian s390x, spec suite under qemu
#   aarch64   static cross build for aarch64, spec suite under qemu
#   checkpoint  differential checkpoint suite: every program stopped at
#             K >= 50 stable points, restored in a fresh process, compared
#             with an uninterrupted run; chained restores
#   checkpoint-cross  the same with snapshots taken on x86-64 and restored
#             by the s390x and aarch64 builds under qemu, and back (small K)
#   fuzz      the fuzz targets (modules, snapshots) for a bounded time
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
stages=${TERN_STAGES:-"unit spec asan s390x aarch64 checkpoint checkpoint-cross fuzz"}
jobs=$(nproc)
fuzz_seconds=${TERN_FUZZ_SECONDS:-60}

stage() {
  local name=$1
  shift
  case " $stages " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== test stage: $name"
  local start=$SECONDS
  "$@"
  echo "=== test stage: $name passed in $((SECONDS - start)) s"
}

unit() {
  ctest --test-dir "$build" --output-on-failure -j "$jobs"
}

spec() {
  scripts/spec-test.sh "$build/tern"
}

asan() {
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DTERN_SANITIZE=ON \
    -DTERN_GUESTS=OFF >/dev/null
  cmake --build build-asan -j "$jobs" --target tern tern_unit_tests
  ASAN_OPTIONS=detect_leaks=1 build-asan/tests/tern_unit_tests --gtest_brief=1
  scripts/spec-test.sh build-asan/tern
}

cross() {
  local arch=$1
  cmake -S . -B "build-$arch" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$arch.cmake" \
    -DTERN_TESTS=OFF -DTERN_GUESTS=OFF >/dev/null
  cmake --build "build-$arch" -j "$jobs" --target tern
  TERN_RUNNER="qemu-$arch" scripts/spec-test.sh "build-$arch/tern"
}

programs="$build/tests/guests:$build/tests/checkpoint"

checkpoint() {
  python3 tests/checkpoint/differential.py --tern "$build/tern" --programs "$programs" -k 50
}

checkpoint_cross() {
  local arch
  for arch in s390x aarch64; do
    python3 tests/checkpoint/differential.py --tern "$build/tern" \
      --restore-tern "qemu-$arch build-$arch/tern" --programs "$programs" -k 6
  done
}

fuzz() {
  scripts/fuzz.sh "$fuzz_seconds" decode
  scripts/fuzz.sh "$((fuzz_seconds / 2))" snapshot
}

stage unit unit
stage spec spec
stage asan asan
stage s390x cross s390x
stage aarch64 cross aarch64
stage checkpoint checkpoint
stage checkpoint-cross checkpoint_cross
stage fuzz fuzz
echo "=== all test stages passed"
