#!/usr/bin/env bash
# The one sanitized build, build-asan/: clang-19 with AddressSanitizer and
# UndefinedBehaviorSanitizer, coverage-instrumented for libFuzzer, at -O1.
# The asan stage of scripts/test.sh runs tern and its unit tests from it;
# scripts/fuzz.sh runs its fuzz targets. One build serves both, so `make
# test` compiles the sources with sanitizers once, not twice.
#
#   scripts/sanitized-build.sh [--plugin-from BUILD_DIR] TARGET...
#
# The AOT/JIT compiler plugin is not built here (LLVM's headers would be
# compiled a second time): with --plugin-from, tern loads the plugin of
# that other build of the same sources, so compiled code runs under the
# sanitizers too; only the plugin's own code generation is not instrumented.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=()
if [ "${1:-}" = --plugin-from ]; then
  plugin=(-DTERN_COMPILER_PLUGIN_FROM="$(cd "$2" && pwd)/libtern-compiler.so")
  shift 2
fi
[ $# -gt 0 ] || { echo "usage: $0 [--plugin-from BUILD_DIR] TARGET..." >&2; exit 2; }
build=build-asan
CC=clang-19 CXX=clang++-19 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTERN_SANITIZE=ON -DTERN_FUZZ=ON -DTERN_GUESTS=OFF -DTERN_LLVM=OFF "${plugin[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "$@"
