#!/usr/bin/env bash
# Checks that `tern wast` reports what the scripts in this folder expect:
# the passing script passes with the right counts, and in the failing one
# exactly the assertions marked ";; FAIL:" are reported as failed (a runner
# that always says "passed" fails this test). Also bad input: unreadable,
# unconvertible and hand-broken scripts give errors or failures, never a crash.
#
#   tests/spec/check-runner.sh TERN_BINARY
set -uo pipefail

tern=${1:?usage: $0 TERN_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-check-runner-XXXXXX")
trap 'rm -rf "$work"' EXIT
problems=0

problem() {
  echo "check-runner: FAILED: $*" >&2
  problems=$((problems + 1))
}

# Runs tern wast ARGS...; sets $out (stdout), $err (stderr), $status.
run_wast() {
  "$tern" wast "$@" >"$work/out" 2>"$work/err"
  status=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

expect_status() {
  [ "$status" -eq "$1" ] || problem "$2: exit status $status, expected $1 (stderr: $err)"
}

expect_line() {
  grep -qxF -- "$1" <<<"$out" || problem "$2: no line '$1' in output:"$'\n'"$out"
}

expect_last_line() {
  [ "$(tail -n 1 <<<"$out")" = "$1" ] ||
    problem "$2: last line '$(tail -n 1 <<<"$out")', expected '$1'"
}

expect_stderr() {
  grep -qF -- "$1" <<<"$err" || problem "$2: stderr lacks '$1': $err"
}

# Line numbers of "FILE:LINE: " failure lines for FILE in $out.
reported_lines() {
  grep -oE "^$(printf '%s' "$1" | sed 's/[.[\*^$/]/\\&/g'):[0-9]+: " <<<"$out" |
    sed -E 's/.*:([0-9]+): $/\1/' | tr '\n' ' '
}

pass=$here/runner-pass.wast
fail=$here/runner-fail.wast

# Everything in runner-pass.wast passes; two commands are skipped.
run_wast "$pass"
expect_status 0 "runner-pass"
expect_line "$pass: 40 passed, 0 failed, 1 skipped" "runner-pass"
expect_last_line "40 passed, 0 failed, 1 skipped" "runner-pass"
[ -z "$(reported_lines "$pass")" ] || problem "runner-pass: failures reported:"$'\n'"$out"

# Exactly the ";; FAIL:" lines of runner-fail.wast fail.
run_wast "$fail"
expect_status 1 "runner-fail"
expect_last_line "4 passed, 8 failed" "runner-fail"
want=$(grep -n ';; FAIL:' "$fail" | cut -d: -f1 | tr '\n' ' ')
got=$(reported_lines "$fail")
[ "$got" = "$want" ] || problem "runner-fail: failed lines '$got', expected '$want'"
expect_line "$fail:10: assert_return (invoke \"add\" i32:1 i32:2): expected i32:4, got i32:3" \
  "runner-fail"
expect_line "$fail:11: assert_trap (invoke \"div\" i32:1 i32:1): expected trap \"integer divide by zero\", got i32:1" \
  "runner-fail"

# Totals add up over files.
run_wast "$pass" "$fail"
expect_status 1 "two files"
expect_last_line "44 passed, 8 failed, 1 skipped" "two files"

# --json runs an already converted script, its modules next to it.
wast2json "$pass" -o "$work/converted.json" || problem "wast2json cannot convert $pass"
run_wast --json "$work/converted.json"
expect_status 0 "--json"
expect_line "$pass: 40 passed, 0 failed, 1 skipped" "--json"
expect_last_line "40 passed, 0 failed, 1 skipped" "--json"

# Commands that make no sense fail one by one; the run goes on.
run_wast --json "$here/runner-errors.json"
expect_status 1 "runner-errors"
expect_last_line "0 passed, 7 failed, 2 skipped" "runner-errors"

# A malformed binary is no answer to assert_invalid, assert_unlinkable or
# module; only assert_malformed passes.
printf '\0asm\1\0\0\0\1' >"$work/truncated.wasm"
cat >"$work/truncated.json" <<'JSON'
{"source_filename": "truncated.wast", "commands": [
 {"type": "assert_invalid", "line": 1, "filename": "truncated.wasm", "text": "type mismatch", "module_type": "binary"},
 {"type": "assert_malformed", "line": 2, "filename": "truncated.wasm", "text": "unexpected end", "module_type": "binary"},
 {"type": "assert_unlinkable", "line": 3, "filename": "truncated.wasm", "text": "unknown import", "module_type": "binary"},
 {"type": "module", "line": 4, "filename": "truncated.wasm"}]}
JSON
run_wast --json "$work/truncated.json"
expect_status 1 "truncated"
expect_last_line "1 passed, 3 failed" "truncated"
got=$(reported_lines truncated.wast)
[ "$got" = "1 3 4 " ] || problem "truncated: failed lines '$got', expected '1 3 4 '"

# Scripts that cannot be read or converted: an error, a non-zero exit.
run_wast "$work/missing.wast"
expect_status 1 "missing file"
expect_stderr "cannot read $work/missing.wast" "missing file"
expect_last_line "0 passed, 0 failed" "missing file"

printf '(module (func (export "f"))\n(assert_return (invoke "f")' >"$work/broken.wast"
run_wast "$work/broken.wast"
expect_status 1 "unconvertible file"
expect_stderr "wast2json failed" "unconvertible file"
# One error line, not wast2json's source excerpt and caret under it.
[ "$(wc -l <"$work/err")" -eq 1 ] || problem "unconvertible file: not one line on stderr: $err"

printf 'not json' >"$work/garbage.json"
run_wast --json "$work/garbage.json"
expect_status 1 "garbage json"
expect_stderr "not a wast2json command list" "garbage json"

PATH=/nonexistent "$tern" wast "$pass" >"$work/out" 2>"$work/err"
status=$? out=$(cat "$work/out") err=$(cat "$work/err")
expect_status 1 "no wast2json"
expect_stderr "wast2json not found" "no wast2json"

if [ "$problems" -ne 0 ]; then
  echo "check-runner: $problems problem(s)" >&2
  exit 1
fi
echo "check-runner: all checks passed"
