#!/usr/bin/env python3
"""Golden tests of the interpreter's internal code: `tern disasm` of each
tests/disasm/NAME.wat must equal NAME.expected, so that a change in what
the translator emits (superinstruction fusion, where operands live, stable
points) fails here and shows as a diff to review, not as a silent slowdown.

    tests/disasm/golden.py --tern build/tern            check every case
    tests/disasm/golden.py --tern build/tern --update   rewrite the .expected files

A case is a .wat file in this directory, found by globbing: add one, run
with --update, read the .expected it wrote and commit both. After an
intended change to the translator, run with --update and commit the
expected files with it; the diff is the review.
"""

import argparse
import difflib
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def disassemble(tern, wat, tmp):
    wasm = pathlib.Path(tmp) / (wat.stem + ".wasm")
    subprocess.run(["wat2wasm", str(wat), "-o", str(wasm)], check=True)
    result = subprocess.run([tern, "disasm", str(wasm)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"tern disasm {wat.name} exited {result.returncode}: {result.stderr}")
    return result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tern", required=True, help="the tern binary")
    parser.add_argument("--update", action="store_true", help="rewrite the .expected files")
    args = parser.parse_args()

    cases = sorted(HERE.glob("*.wat"))
    if not cases:
        print(f"golden: no .wat cases in {HERE}", file=sys.stderr)
        return 1
    failed = []
    with tempfile.TemporaryDirectory(prefix="tern-disasm-golden-") as tmp:
        for wat in cases:
            expected_path = wat.with_suffix(".expected")
            actual = disassemble(args.tern, wat, tmp)
            if args.update:
                if not expected_path.exists() or expected_path.read_text() != actual:
                    expected_path.write_text(actual)
                    print(f"{wat.name}: updated {expected_path.name}")
                continue
            if not expected_path.exists():
                print(f"{wat.name}: no {expected_path.name} (run with --update)")
                failed.append(wat.name)
                continue
            expected = expected_path.read_text()
            if actual == expected:
                print(f"{wat.name}: ok")
                continue
            failed.append(wat.name)
            print(f"{wat.name}: differs from {expected_path.name}:")
            sys.stdout.writelines(difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                fromfile=expected_path.name, tofile="tern disasm"))
    if args.update:
        return 0
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print("an intended change? rerun with --update and commit the .expected files",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
