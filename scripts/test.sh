#!/usr/bin/env bash
# The whole test suite (`make test`): every stage below must pass. Each stage
# prints its name and duration so CI time can be watched (budget: 45 min on
# 2 cores).
#
#   scripts/test.sh BUILD_DIR          all stages
#   TERN_STAGES="unit spec" scripts/test.sh build    only some of them
#
# Stages:
#   format    every tracked C++ source formatted as clang-format 14 and
#             .clang-format lay it out (a dry run that changes nothing;
#             `make format` fixes what it lists)
#   unit      ctest in BUILD_DIR: GoogleTest suites, the wast runner's own
#             checks, guest programs under `tern run`
#   spec      the WebAssembly spec suite and the threads proposal's scripts,
#             interpreter (0 failed)
#   spec-aot  the same spec files with the AOT compiler (--mode aot)
#   spec-jit  the same with the JIT (--mode jit)
#   asan      ASan+UBSan build: unit tests and the spec suite
#   s390x     static cross build for big-endian s390x, spec suite under qemu
#   aarch64   static cross build for aarch64, spec suite under qemu
#   checkpoint  differential checkpoint suite: every program stopped at
#             K >= 50 stable points, restored in a fresh process, compared
#             with an uninterrupted run; chained restores
#   checkpoint-modes  the same across engines: snapshots taken in interp, aot
#             or jit mode restored in each of them (the 8 pairs besides
#             interp -> interp, smaller K, every kind of stable point
#             restored from), chained restores alternating engines, and
#             every engine's uninterrupted run equal to the interpreter's;
#             and --mode auto moved from the interpreter into compiled code
#             at K points (--tier-up-at), checkpoints just before, at and
#             after each move restored in interp, aot, jit and auto
#   checkpoint-lazy  lazy restore (the default: memory loaded on first
#             touch, userfaultfd) with the background prefetch off, so that
#             pages are still missing when the program checkpoints again,
#             grows its memory or exits: snapshots of each engine restored
#             in each engine, chained restores; every restore must have
#             loaded lazily. Then the eager path (--eager) the same way.
#   checkpoint-cross  the same with snapshots taken on x86-64 and restored
#             by the s390x and aarch64 builds under qemu, and back (small K);
#             also in aot mode with artifacts from `tern compile --target`
#             (x86 interp/aot -> qemu aot, qemu aot -> x86 aot/interp), and
#             a cross build's aot mode without a compiler (one clear error);
#             the threaded guests checkpointed at random moments (signals)
#             on x86-64 and restored under qemu, and back (2 moments a guest
#             each way)
#   migrate   differential migration suite: every program moved mid-run
#             between two hosts (network namespaces) by tern migrate, for
#             every source x target engine pair (tests/migrate)
#   migrate-cross  a program moved to a tern built for s390x under qemu
#             and back (needs the s390x stage's build)
#   fuzz      the fuzz targets (modules, snapshots, restores of hostile
#             snapshots with their sandbox watched) for a bounded time
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
all_stages="format unit spec spec-aot spec-jit asan s390x aarch64 checkpoint checkpoint-modes
  checkpoint-lazy checkpoint-cross migrate migrate-cross fuzz"
# One space between names (the list spans lines), each a known stage: a
# stage that is not matched would be skipped without a word.
stages=$(echo ${TERN_STAGES:-$all_stages})
for name in $stages; do
  case " $(echo $all_stages) " in *" $name "*) ;; *)
    echo "test.sh: unknown stage '$name' (stages: $(echo $all_stages))" >&2
    exit 2
    ;;
  esac
done
jobs=$(nproc)
# Compiled code made while testing (the default --mode auto caches the JIT's
# code of every run longer than 100 ms) stays in this build, not in the
# user's ~/.cache/tern: each checkout tests from its own cold cache.
export TERN_CACHE_DIR=${TERN_CACHE_DIR:-$(cd "$build" && pwd)/tern-cache}
# Fuzzing time of the decode target (the snapshot and restore targets get
# half): the seed corpus runs whole first, so this is exploration on top
# of a regression check; longer runs are for scripts/fuzz.sh by hand.
fuzz_seconds=${TERN_FUZZ_SECONDS:-30}

# CPU seconds (user + system) used so far by this shell's finished
# children and their descendants (cutime + cstime of /proc/PID/stat, after
# the command name, which may hold spaces). Wall time on a shared machine
# says how busy it was; CPU time says what the work costs.
children_cpu() {
  local fields
  read -r -a fields <<<"$(sed 's/.*) //' /proc/$$/stat)"
  echo $((fields[13] + fields[14]))
}
ticks=$(getconf CLK_TCK)

# Runs a command and prints `--- WHAT: N s wall, M s CPU` (for the builds
# inside stages: what a clean clone without ccache pays shows here).
measured() {
  local what=$1 start=$SECONDS cpu
  shift
  cpu=$(children_cpu)
  "$@"
  echo "--- $what: $((SECONDS - start)) s wall, $((($(children_cpu) - cpu) / ticks)) s CPU"
}

stage() {
  local name=$1 cpu
  shift
  case " $stages " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== test stage: $name"
  local start=$SECONDS cached
  cpu=$(children_cpu)
  cached=$(cache_entries)
  "$@"
  echo "=== test stage: $name passed in $((SECONDS - start)) s"
  echo "=== test stage: $name used $((($(children_cpu) - cpu) / ticks)) s CPU"
  # Each program is compiled once per engine and target for the whole run:
  # a stage that adds entries compiled something no earlier stage had.
  if [ "$(cache_entries)" != "$cached" ]; then
    echo "--- compiled-code cache: $(cache_entries) entries, $(($(cache_entries) - cached)) new"
  fi
}

cache_entries() {
  find "$aot_cache" -type f | wc -l
}

format() {
  scripts/format.sh --check
}

# Twice as many tests as cores: many cases spend most of their time
# waiting (programs asleep in a host call or an atomic wait, a gateway's
# hold, a migration over a rate-limited link), and no test has a wall-clock
# limit a busier machine could hit (tests/testlib.py waits on CPU progress).
unit() {
  ctest --test-dir "$build" --output-on-failure -j "$((jobs * 2))"
}

spec() {
  scripts/spec-test.sh "$build/tern" "$@"
}

# tern and its unit tests with ASan and UBSan, every engine, from the one
# sanitized build (scripts/sanitized-build.sh, which the fuzz stage's
# targets come from too): the compiler plugin is the main build's, so
# compiled code runs under the sanitizers (loader, helpers, traps, frames,
# snapshots of aot/jit) while LLVM's headers are not compiled a second time.
asan() {
  measured build-asan scripts/sanitized-build.sh --plugin-from "$build" tern tern_unit_tests \
    decode_fuzzer snapshot_fuzzer restore_fuzzer
  ASAN_OPTIONS=detect_leaks=1 build-asan/tests/tern_unit_tests --gtest_brief=1
  scripts/spec-test.sh build-asan/tern
}

cross() {
  local arch=$1
  cmake -S . -B "build-$arch" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$arch.cmake" \
    -DTERN_TESTS=OFF -DTERN_GUESTS=OFF -DTERN_QUICK_BUILD=ON >/dev/null
  measured "build-$arch" cmake --build "build-$arch" -j "$jobs" --target tern
  TERN_RUNNER="qemu-$arch" TERN_CONVERTER="$build/tern" scripts/spec-test.sh "build-$arch/tern"
}

programs="$build/tests/guests:$build/tests/checkpoint"
# Compiled code of the differential stages (never ~/.cache): each program
# is compiled once per engine and target for the whole run.
aot_cache=$(mktemp -d "${TMPDIR:-/tmp}/tern-test-aot-XXXXXX")
# Under qemu-user the page map has been seen to call pages of linear memory
# untouched that hold data (src/util/pagemap.h): snapshots taken there read
# every page. Native runs are unaffected (they pass TERN_PAGEMAP through
# unchanged, and it is unset).
qemu_env="env TERN_PAGEMAP=0"
trap 'rm -rf "$aot_cache"' EXIT

checkpoint() {
  python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" --programs "$programs" -k 50
}

# Every engine pair but interp -> interp (the stage above): K=3 per pair
# plus up to 10 tries per program for a kind of stable point not yet hit.
checkpoint_modes() {
  python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" --programs "$programs" \
    --pairs interp:aot,interp:jit,aot:interp,aot:aot,aot:jit,jit:interp,jit:aot,jit:jit \
    -k 3 --kinds 10 --cache-dir "$aot_cache"
  python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" --programs "$programs" \
    --tier-up -k 4 --cache-dir "$aot_cache"
}

# Lazy restores in every engine, from snapshots of every engine, with the
# memory still partly unloaded at every later checkpoint (no prefetch);
# then eager restores (the fallback path). Each must end as the
# uninterrupted run (stdout, exit status, files, final memory). Three
# pairs make each engine the source once and the restorer once (the
# snapshot does not depend on the source engine, and loading on first
# touch is the kernel's fault path in every engine); the chained restores
# alternate the pair's two engines. Every other engine pair restores
# lazily (with the prefetch on, the default) in checkpoint-modes.
checkpoint_lazy() {
  TERN_LAZY_PREFETCH=0 python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" \
    --programs "$programs" --expect-loading "on first touch" \
    --pairs interp:jit,jit:aot,aot:interp -k 4 \
    --cache-dir "$aot_cache"
  python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" --programs "$programs" \
    --restore-arg=--eager --expect-loading "before the program continued" \
    --pairs interp:interp,aot:jit -k 4 --cache-dir "$aot_cache"
}

# Compiled code under qemu is slow to start: the aot parts use a few
# programs (every kind of code: libc start-up and exit, files, deep calls,
# floating point, strings).
cross_aot_programs=exit_code,files,calls,nbody,strings

checkpoint_cross() {
  local arch qemu
  for arch in s390x aarch64; do
    qemu="$qemu_env qemu-$arch build-$arch/tern"
    python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" \
      --restore-tern "$qemu" --programs "$programs" -k 6
    # There in aot mode, with artifacts compiled for the restoring machine
    # (chained restores checkpoint there again).
    python3 tests/checkpoint/differential.py -j "$jobs" --tern "$build/tern" --restore-tern "$qemu" \
      --pairs interp:aot,aot:aot --restore-target "$arch" \
      --programs "$programs" --only "$cross_aot_programs" -k 2 --cache-dir "$aot_cache"
    # And back: snapshots taken under qemu in aot mode.
    python3 tests/checkpoint/differential.py -j "$jobs" --tern "$qemu" \
      --compile-tern "$build/tern" --restore-tern "$build/tern" --target "$arch" \
      --pairs aot:aot,aot:interp --programs "$programs" --only "$cross_aot_programs" -k 2 \
      --cache-dir "$aot_cache"
    python3 tests/aot/artifacts.py --tern "$qemu" --compile-tern "$build/tern" \
      --target "$arch" --programs "$programs" no_compiler
    # The threaded guests: SIGUSR1 at random moments of their run here
    # (interp, aot, jit) restored there, and there restored here.
    python3 tests/threads/threads_tests.py --tern "$build/tern" --cross-tern "$qemu" \
      --programs "$build/tests/threads" --moments 2 --cache-dir "$aot_cache" cross_checkpoint_stress
  done
}

# Every engine pair, two stop points each (spread differently per pair).
migrate() {
  python3 tests/migrate/differential.py -j "$jobs" --tern "$build/tern" --programs "$programs" \
    --pairs all -k 2 --cache-dir "$aot_cache"
}

migrate_cross() {
  python3 tests/migrate/migration.py --tern "$build/tern" \
    --programs "$build/tests/migrate:$programs" --cross-tern "qemu-s390x build-s390x/tern" to_s390x
}

fuzz() {
  scripts/fuzz.sh "$fuzz_seconds" decode
  scripts/fuzz.sh "$((fuzz_seconds / 2))" snapshot
  scripts/fuzz.sh "$((fuzz_seconds / 2))" restore
}

stage format format
stage unit unit
stage spec spec
# spec-aot compiles every module in three parts (aot/llvm/partition.h),
# which only large modules are otherwise: calls, tables and globals across
# parts; spec-jit compiles them whole.
stage spec-aot env TERN_COMPILE_PARTS=3 scripts/spec-test.sh "$build/tern" --mode aot
stage spec-jit spec --mode jit
stage asan asan
stage s390x cross s390x
stage aarch64 cross aarch64
stage checkpoint checkpoint
stage checkpoint-modes checkpoint_modes
stage checkpoint-lazy checkpoint_lazy
stage checkpoint-cross checkpoint_cross
stage migrate migrate
stage migrate-cross migrate_cross
stage fuzz fuzz
echo "=== all test stages passed"
