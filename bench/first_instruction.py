#!/usr/bin/env python3
"""Time to first instruction of `tern run` for modules of every size
(issue 18: at most 5 ms whatever the module size; docs/performance.md,
"Time to first instruction").

For each module and mode, REPS runs of `TERN_TRACE_TIME=1 tern run --mode M
MODULE` (its output discarded), reading two of tern's trace lines:
  - cpu:  the process's CPU time at "guest starts", counted from exec, so it
          includes loading tern and its libraries (what a user pays);
  - wall: the wall time from tern's main() to "guest starts";
  - exec: the wall time from just before the spawn to "guest starts" (the
          "main" line's monotonic clock against this script's), which adds
          fork/exec and dynamic loading to `wall`.
Medians, and the minimum of cpu (the machine is shared and noisy: the
minimum is the work itself, the median what a run saw).

The modules: a tiny WAT command (hello), bench/many_functions.py modules of
2,000 and 20,000 functions, and any .wasm given with --wasm (the 1.3 MB
wordfreq.wasm test guest: build/tests/guests/wordfreq.wasm, which exits at
once with a usage line when given no files).

    bench/first_instruction.py --tern build/tern [--modes interp,auto]
        [--reps 11] [--wasm build/tests/guests/wordfreq.wasm]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

HELLO = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""

LINE = re.compile(rb"tern: time \+([0-9.]+) ms \(process cpu ([0-9.]+) ms\) "
                  rb"(?:\(monotonic ([0-9.]+) s\) )?(main|guest starts)")


def one_run(tern, mode, module, cache):
    cmd = [tern, "run", "--mode", mode, "--cache-dir", cache, module]
    env = dict(os.environ, TERN_TRACE_TIME="1")
    spawned = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                       timeout=600)
    marks = {m.group(4): m for m in LINE.finditer(p.stderr)}
    if b"guest starts" not in marks:
        sys.exit(f"first_instruction.py: no 'guest starts' line from {' '.join(cmd)}:\n"
                 f"{p.stderr.decode()[-500:]}")
    start = marks[b"guest starts"]
    wall = float(start.group(1))
    exec_wall = None
    if b"main" in marks and marks[b"main"].group(3):
        exec_wall = (float(marks[b"main"].group(3)) - spawned) * 1000 + wall
    return float(start.group(2)), wall, exec_wall


def modules(tmp, extra):
    out = []
    hello = os.path.join(tmp, "hello.wasm")
    with open(os.path.join(tmp, "hello.wat"), "w") as f:
        f.write(HELLO)
    subprocess.run(["wat2wasm", os.path.join(tmp, "hello.wat"), "-o", hello], check=True)
    out.append(("hello", hello))
    for n in (2000, 20000):
        path = os.path.join(tmp, f"funcs{n}.wasm")
        subprocess.run([sys.executable, os.path.join(HERE, "many_functions.py"), str(n), path],
                       check=True)
        out.append((f"{n} functions", path))
    for path in extra:
        out.append((os.path.basename(path), path))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True)
    ap.add_argument("--modes", default="interp,auto")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--wasm", action="append", default=[])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"tern-first-{os.getpid()}-") as tmp:
        cache = os.path.join(tmp, "cache")
        print(f"# load average {os.getloadavg()[0]:.2f} at start; {args.reps} runs each; "
              "cpu = process CPU from exec, wall = from main(), exec = wall from the spawn")
        print(f"{'module':<18} {'KB':>7} {'mode':<7} {'cpu min':>8} {'cpu med':>8} "
              f"{'wall med':>9} {'exec med':>9}")
        for name, path in modules(tmp, args.wasm):
            size = os.path.getsize(path) / 1024
            for mode in args.modes.split(","):
                runs = [one_run(args.tern, mode, path, cache) for _ in range(args.reps)]
                cpu = [r[0] for r in runs]
                wall = [r[1] for r in runs]
                ex = [r[2] for r in runs if r[2] is not None]
                ex_text = f"{statistics.median(ex):8.2f}" if ex else "       -"
                print(f"{name:<18} {size:7.0f} {mode:<7} {min(cpu):8.2f} "
                      f"{statistics.median(cpu):8.2f} {statistics.median(wall):9.2f} "
                      f"{ex_text} ms", flush=True)
        print(f"# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
