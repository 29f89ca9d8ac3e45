#!/usr/bin/env python3
"""Compile time per MB of wasm (issue 18, item 2; docs/performance.md,
"Compile time").

    bench/compile_time.py [--tern BUILD/tern] [--runs N] [--no-nosp] MODULE.wasm...

Runs `tern compile MODULE -o TMP` with stable points and with
`--no-stable-points` for each module and prints, per module, the CPU time
(user + system of the compile process and its threads, from wait4) and the
wall time: the minimum over N runs (the machine is shared; CPU time is the
steadier figure), seconds per MB of wasm and the ratio with / without
stable points. The last row sums every module. TERN_COMPILE_THREADS limits
the compiler's threads (1: today's serial compile, for CPU comparisons).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time


def measure(tern, module, extra, runs):
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            start = time.monotonic()
            proc = subprocess.Popen([tern, "compile", *extra, module, "-o", f"{tmp}/out.aot"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
            err = proc.stderr.read().decode()
            proc.stderr.close()
            if status != 0:
                sys.exit(f"tern compile {' '.join(extra)} {module} failed: {err}")
            sample = (usage.ru_utime + usage.ru_stime, wall)
            best = sample if best is None else (min(best[0], sample[0]), min(best[1], sample[1]))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", default="build/tern")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-nosp", action="store_true", help="skip --no-stable-points")
    ap.add_argument("modules", nargs="+")
    args = ap.parse_args()
    head = f"{'module':24} {'KB':>7} {'cpu s':>7} {'wall s':>7} {'cpu s/MB':>9} {'wall s/MB':>9}"
    if not args.no_nosp:
        head += f" {'nosp cpu':>9} {'nosp wall':>9} {'sp/nosp':>8}"
    print(head)
    total = [0.0, 0.0, 0.0, 0.0, 0.0]
    for module in args.modules:
        mb = os.path.getsize(module) / 1e6
        cpu, wall = measure(args.tern, module, [], args.runs)
        row = f"{os.path.basename(module):24} {mb * 1000:7.0f} {cpu:7.2f} {wall:7.2f} {cpu / mb:9.1f} {wall / mb:9.1f}"
        total[0:3] = [total[0] + mb, total[1] + cpu, total[2] + wall]
        if not args.no_nosp:
            ncpu, nwall = measure(args.tern, module, ["--no-stable-points"], args.runs)
            total[3:5] = [total[3] + ncpu, total[4] + nwall]
            row += f" {ncpu:9.2f} {nwall:9.2f} {cpu / ncpu:8.2f}"
        print(row, flush=True)
    mb = total[0]
    row = f"{'total':24} {mb * 1000:7.0f} {total[1]:7.2f} {total[2]:7.2f} {total[1] / mb:9.1f} {total[2] / mb:9.1f}"
    if not args.no_nosp:
        row += f" {total[3]:9.2f} {total[4]:9.2f} {total[1] / total[3]:8.2f}"
    print(row)


if __name__ == "__main__":
    main()
