#!/usr/bin/env python3
"""The address-arithmetic passes (aot/llvm/access_nowrap.h) rewrite what
they should and nothing else, seen in the optimized IR of
address_arithmetic.wast's module (TERN_AOT_DUMP_IR):

- sum: its address i + inv becomes an induction variable of its own,
  stepped by `add nuw ..., 4` (AddressInductions, in 64 bits);
- adjacent: x + 4 after an access at x is `add nuw` (AccessNoWrap);
- pairs_reversed: x + 4 before any access at x stays a plain add;
- axpy2 (c[j] += 3 * b[j], unrolled by two): the loop is vectorized, which
  needs c[j] and c[j+1] to be seen as adjacent and one object (AddressInductions),
  also where c[j+1] is an access at offset=4 of c[j]'s address (axpy2_offset);
- rows: the poll before its inner loop, right after the outer header's, is
  dropped (ElidePolls), while grown_sum's, after a call, stays;
- no "tern.save" bundle is left after optimization, and grown_sum's
  unwinds write their saved frames (stable_points.cpp, expand_saved_values);

and that inlining judges a function with stable points by its fast path
(aot/llvm/inline_cost.h), in inlining.wast's module:

- twice: the wrapper it calls twice is inlined (its slow paths made it too
  costly before), while checked keeps its call to report, which only a
  trap follows (as without stable points).

    passes.py --tern build/tern
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Defined functions in each module's order: wasm_fN is function N.
FUNCTIONS = ("sum", "pairs", "adjacent", "pairs_reversed", "shift", "get", "grow", "axpy2",
             "axpy2_offset", "fill", "checksum", "rows", "grown_sum")
INLINING_FUNCTIONS = ("count", "wrap", "twice", "report", "checked")
NUW_ADD_4 = re.compile(r"add nuw (nsw )?i(32|64) %\S+, 4\b")
VECTOR_STORE = re.compile(r"store <\d+ x i32>")
# SaveFrame's call through its thunk (Helper::SaveFrame is 5), on x86-64.
SAVE_FRAME = re.compile(r"(%[\w.]+) = (?:tail |notail )?call [^@\n]*@tern_slow_5\(")


def optimized_ir(tern, workdir, wast, functions):
    """The optimized IR of each function of wast's first module, by name."""
    stem = os.path.splitext(wast)[0]
    subprocess.run(["wast2json", os.path.join(HERE, wast),
                    "-o", os.path.join(workdir, f"{stem}.json")], check=True)
    prefix = os.path.join(workdir, stem)
    env = dict(os.environ, TERN_AOT_DUMP_IR=prefix)
    subprocess.run([tern, "compile", os.path.join(workdir, f"{stem}.0.wasm"),
                    "-o", os.path.join(workdir, f"{stem}.aot")], check=True, env=env)
    with open(prefix + ".opt.ll") as f:
        ir = f.read()
    bodies = dict(re.findall(r"define [^@]*@(wasm_f\d+)\(.*?\n(.*?)\n}", ir, re.S))
    return {name: bodies[f"wasm_f{i}"] for i, name in enumerate(functions)}


def calls(body, functions, callee):
    return f"@wasm_f{functions.index(callee)}(" in body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tern-passes-") as workdir:
        ir = optimized_ir(args.tern, workdir, "address_arithmetic.wast", FUNCTIONS)
        inlining = optimized_ir(args.tern, workdir, "inlining.wast", INLINING_FUNCTIONS)
    failures = []
    for name, want in (("sum", True), ("adjacent", True), ("pairs_reversed", False)):
        if bool(NUW_ADD_4.search(ir[name])) != want:
            failures.append(f"{name}: expected {'an' if want else 'no'} `add nuw ..., 4`")
    # Polls test the flag byte (`load volatile i8`; the entry's is an i64).
    # Each function polls before its inner loop on the way in and again on
    # the path a restore takes; rows also at its outer header, and ElidePolls
    # drops the first of those (three polls before it did, grown_sum two).
    for name, want in (("rows", 2), ("grown_sum", 2)):
        polls = ir[name].count("load volatile i8")
        if polls != want:
            failures.append(f"{name}: expected {want} polls, found {polls}")
    # An unwind's values ride on its SaveFrame call as a "tern.save" bundle
    # through the optimizer and are stored after it (stable_points.cpp,
    # expand_saved_values): no bundle is left, and grown_sum's frames (a
    # call and loops with live locals) are written.
    for name, body in ir.items():
        if '"tern.save"' in body:
            failures.append(f"{name}: a tern.save bundle is left in the optimized IR")
    frames = SAVE_FRAME.findall(ir["grown_sum"])
    written = [f for f in frames if len(re.findall(re.escape(f) + r"(?![\w.])", ir["grown_sum"])) > 1]
    if not written:
        failures.append(f"grown_sum: expected SaveFrame calls whose frame is written ({len(frames)} calls)")
    for name in ("axpy2", "axpy2_offset"):
        if not VECTOR_STORE.search(ir[name]):
            failures.append(f"{name}: expected a vector loop (store <N x i32>)")
    if calls(inlining["twice"], INLINING_FUNCTIONS, "wrap"):
        failures.append("twice: expected its calls to wrap inlined")
    if not calls(inlining["twice"], INLINING_FUNCTIONS, "count"):
        failures.append("twice: expected the inlined wrapper's call to count")
    if not calls(inlining["checked"], INLINING_FUNCTIONS, "report"):
        failures.append("checked: expected its call to report kept (only a trap follows it)")
    for failure in failures:
        print(f"passes: {failure}")
    print("passes: ok" if not failures else f"passes: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
