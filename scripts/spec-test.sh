#!/usr/bin/env bash
# Runs the WebAssembly spec test suite with `tern wast`.
#
#   scripts/spec-test.sh TERN_BINARY [extra `tern wast` args, e.g. --mode interp]
#
# TERN_SPEC_DIR   the suite (default: ../shared/spec-testsuite next to the
#                 repository, else /work/shared/spec-testsuite, where this
#                 project's machines keep it; a clone elsewhere finds it too)
# TERN_RUNNER     prefix for running tern, e.g. "qemu-s390x -L /usr/s390x-linux-gnu"
# TERN_CONVERTER  a tern that runs here, to convert the threads proposal's
#                 scripts (default: TERN_BINARY itself)
#
# The core scripts are converted here, natively, with wabt's wast2json; the
# threads proposal's (proposals/threads/, some with thread and wait commands
# wabt cannot convert) with `tern wast --convert-to`. tern then only reads
# the converted JSON and .wasm files (`tern wast --json`), so a cross-built
# tern runs under qemu without a converter of its own. Each file runs in its
# own tern process, so a crash costs one file, not the run.
# Prints each file's line, then the totals "N passed, M failed[, K skipped]";
# exits non-zero when anything failed, crashed or did not convert.
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 TERN_BINARY [tern wast args...]" >&2
  exit 2
fi
tern=$1
shift
converter=${TERN_CONVERTER:-$tern}
repo=$(cd "$(dirname "$0")/.." && pwd)
spec_dir=${TERN_SPEC_DIR:-}
if [ -z "$spec_dir" ]; then
  for candidate in "$repo/../shared/spec-testsuite" /work/shared/spec-testsuite; do
    if [ -d "$candidate" ]; then
      spec_dir=$candidate
      break
    fi
  done
fi
read -r -a runner <<<"${TERN_RUNNER:-}"

if [ ! -d "$spec_dir" ]; then
  echo "spec-test: no spec suite at ${spec_dir:-../shared/spec-testsuite or /work/shared/spec-testsuite} (set TERN_SPEC_DIR)" >&2
  exit 2
fi
spec_dir=$(cd "$spec_dir" && pwd)
command -v wast2json >/dev/null || {
  echo "spec-test: wast2json not found (Debian package wabt, scripts/install-deps.sh)" >&2
  exit 2
}

# Files wabt 1.0.32 cannot convert (the suite's README lists them).
not_converting=" comments if table_fill table_get table_grow table_set table_size "

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-spec-XXXXXX")
trap 'rm -rf "$work"' EXIT

passed=0 failed=0 skipped=0 broken=()

# Runs converted script $2 (JSON) as file $1 and adds its counts.
run_converted() {
  local name=$1 json=$2 output status totals
  output=$("${runner[@]}" "$tern" wast "${wast_args[@]}" --json "$json" 2>&1)
  status=$?
  # Everything but tern's own totals line (the last one).
  printf '%s\n' "$output" | sed '$d'
  totals=$(printf '%s\n' "$output" | tail -n 1)
  if [[ $totals =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
    # A non-zero exit without failed commands: tern could not read the file.
    if [ "$status" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
      broken+=("$name.wast (tern exit status $status)")
    fi
  else
    printf '%s\n' "$totals"
    broken+=("$name.wast (tern exit status $status)")
  fi
}
wast_args=("$@")

for wast in "$spec_dir"/*.wast; do
  name=$(basename "$wast" .wast)
  case $name in simd_*) continue ;; esac
  case $not_converting in *" $name "*) continue ;; esac
  mkdir -p "$work/$name"
  if ! wast2json "$wast" -o "$work/$name/$name.json" >"$work/$name/convert.log" 2>&1; then
    echo "$name.wast: wast2json failed: $(head -c 500 "$work/$name/convert.log")"
    broken+=("$name.wast (wast2json failed)")
    continue
  fi
  run_converted "$name" "$work/$name/$name.json"
  rm -rf "${work:?}/$name"
done

# The threads proposal. imports.wast lines 310-318 assert that two tables
# are invalid, which WebAssembly 2.0 allows (the suite's README): those
# commands are left out.
threads_dir=$spec_dir/proposals/threads
for wast in "$threads_dir"/*.wast; do
  [ -e "$wast" ] || continue
  name=threads/$(basename "$wast" .wast)
  mkdir -p "$work/$name"
  if ! json=$("$converter" wast --convert-to "$work/$name" "$wast" 2>"$work/$name/convert.log"); then
    echo "$name.wast: conversion failed: $(head -c 500 "$work/$name/convert.log")"
    broken+=("$name.wast (conversion failed)")
    continue
  fi
  if [ "$name" = threads/imports ]; then
    python3 - "$json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    script = json.load(f)
script["commands"] = [c for c in script["commands"] if not 310 <= c.get("line", 0) <= 318]
with open(path, "w") as f:
    json.dump(script, f)
PY
  fi
  run_converted "$name" "$json"
  rm -rf "${work:?}/$name"
done

for b in "${broken[@]}"; do echo "not run to the end: $b"; done
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line+=", $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ] && [ "${#broken[@]}" -eq 0 ]
