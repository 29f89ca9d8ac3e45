#!/usr/bin/env python3
"""Restore to first instruction, eager (`tern restore --eager`) vs lazy (the
default: memory loaded on first touch), for
snapshots of 16 MiB, 256 MiB and 1 GiB of touched, incompressible memory
(docs/performance.md, "Lazy restore").

For each size: `tern run` of touched.wasm writes the snapshot once; then,
alternately, `tern restore --eager SNAP` and `tern restore SNAP`, REPS times each.
Measured per restore: the wall time from tern's main() to the guest's
first instruction (TERN_TRACE_TIME's "guest continues" line), and the
whole restore until the program has read one byte of every page (loading
it) and exited (wall, from the spawn). Medians, and the ratio eager / lazy.
Each lazy restore must say that it loaded lazily (--verbose-checkpoints).

    bench/restore/lazy.py --tern build/tern [--mode interp|aot|jit] [--reps 5]
        [--sizes 16,256,1024] [--wasm touched.wasm]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def build_guest(out):
    subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-o", out,
                    os.path.join(HERE, "touched.c")], check=True)


def restore(tern, mode, snap, lazy):
    cmd = ([tern, "restore", "--mode", mode, "--verbose-checkpoints"] +
           ([] if lazy else ["--eager"]) + [snap])
    env = dict(os.environ, TERN_TRACE_TIME="1")
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
    total = (time.perf_counter() - start) * 1000
    if p.returncode != 0:
        sys.exit(f"lazy.py: {' '.join(cmd)} failed: {p.stderr.decode()[-500:]}")
    m = re.search(rb"tern: time \+([0-9.]+) ms .* guest continues", p.stderr)
    if not m:
        sys.exit("lazy.py: no 'guest continues' line (TERN_TRACE_TIME)")
    if lazy != (b"memory loaded on first touch" in p.stderr):
        sys.exit(f"lazy.py: {' '.join(cmd)} did not load as asked: {p.stderr.decode()[-500:]}")
    return float(m.group(1)), total, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--mode", default="interp")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="16,256,1024")
    ap.add_argument("--wasm")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tern-lazy-bench-")
    try:
        wasm = args.wasm or os.path.join(tmp, "touched.wasm")
        if not args.wasm:
            build_guest(wasm)
        print(f"# tern restore --mode {args.mode}, medians of {args.reps}; first = main() to the "
              f"guest's first instruction, total = the whole restore (every page read once)")
        print(f"{'MiB':>6} {'snapshot':>9} {'eager first':>12} {'lazy first':>11} {'ratio':>7} "
              f"{'eager total':>12} {'lazy total':>11}")
        for mib in (int(s) for s in args.sizes.split(",")):
            snap = os.path.join(tmp, f"s{mib}")
            subprocess.run([args.tern, "run", "--mode", args.mode, "--checkpoint-to", snap, wasm,
                            str(mib)], check=True, capture_output=True, timeout=900)
            times = {False: [], True: []}
            outs = set()
            for _ in range(args.reps):
                for lazy in (False, True):
                    first, total, out = restore(args.tern, args.mode, snap, lazy)
                    times[lazy].append((first, total))
                    outs.add(out)
            if len(outs) != 1:
                sys.exit(f"lazy.py: eager and lazy restores printed different things: {outs}")
            med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
                   for k, v in times.items()}
            size = os.path.getsize(snap) / (1 << 20)
            print(f"{mib:>6} {size:>7.1f}Mi {med[False][0]:>10.1f}ms {med[True][0]:>9.1f}ms "
                  f"{med[False][0] / med[True][0]:>6.1f}x {med[False][1]:>10.1f}ms "
                  f"{med[True][1]:>9.1f}ms", flush=True)
            os.unlink(snap)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
