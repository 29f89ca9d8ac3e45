#!/usr/bin/env python3
"""The checkpoint pause of a threaded program: spinners.c with 1, 2, 8 and
32 threads besides main (every one in a loop, half of them also taking a
mutex), checkpointed every K stable points of the main thread
(--checkpoint-every-points, to /tmp) in each engine. Prints per engine and
thread count the median and maximum pause `tern run --verbose-checkpoints`
reports (from the main thread's stop, the spawned threads' stop included,
until the program continues: the background write's fork is in it) and
the part of it spent waiting for the spawned threads to park. Every run's
output must equal the run without checkpoints.

Usage: bench/threads/pause.py BUILD_DIR

Environment: BENCH_THREADS=1,2,8,32  BENCH_MODES=interp,aot,jit
BENCH_EVERY=N (stable points between checkpoints, default 10000)
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import THREADS_FLAGS, GUEST, HERE  # noqa: E402

PAUSE = re.compile(r"^tern: paused ([\d.]+) ms(?: \(([\d.]+) ms stopping (\d+) spawned threads\))?$")


def build(out):
    out.mkdir(parents=True, exist_ok=True)
    wasm = out / "spinners.wasm"
    subprocess.run(["clang", "--target=wasm32-wasi", "-O2", *THREADS_FLAGS,
                    str(HERE / "spinners.c"), str(GUEST / "src" / "pthread.c"),
                    str(GUEST / "src" / "wasi_thread_start.s"), "-o", str(wasm)], check=True)
    return wasm


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build_dir = Path(sys.argv[1]).resolve()
    out = build_dir / "bench" / "threads"
    wasm = build(out)
    tern = str(build_dir / "tern")
    cache = str(out / "cache")
    counts = [int(n) for n in os.environ.get("BENCH_THREADS", "1,2,8,32").split(",")]
    modes = os.environ.get("BENCH_MODES", "interp,aot,jit").split(",")
    every = os.environ.get("BENCH_EVERY", "10000")
    failed = False
    print(f"{'engine':<7} {'threads':>7} {'stops':>6} {'pause median ms':>16} {'max ms':>8} "
          f"{'of it stopping threads, median ms':>34}")
    with tempfile.TemporaryDirectory(prefix="tern-pause-") as tmp:
        snap = os.path.join(tmp, "pause.snap")
        for mode in modes:
            engine = ["--mode", mode] + ([] if mode == "interp" else ["--cache-dir", cache])
            for n in counts:
                ref = subprocess.run([tern, "run", *engine, str(wasm), str(n)],
                                     capture_output=True, text=True, check=True).stdout
                p = subprocess.run([tern, "run", *engine, "--checkpoint-to", snap,
                                    "--checkpoint-every-points", every, "--verbose-checkpoints",
                                    str(wasm), str(n)], capture_output=True, text=True)
                pauses, stops = [], []
                for line in p.stderr.splitlines():
                    m = PAUSE.match(line)
                    if m:
                        pauses.append(float(m.group(1)))
                        stops.append(float(m.group(2) or 0))
                bad = p.returncode != 0 or p.stdout != ref or not pauses
                failed |= bad
                if not pauses:
                    print(f"{mode:<7} {n:>7} no checkpoint taken: {p.stderr.strip()[-300:]}")
                    continue
                print(f"{mode:<7} {n:>7} {len(pauses):>6} {statistics.median(pauses):>16.3f} "
                      f"{max(pauses):>8.3f} {statistics.median(stops):>34.3f}" +
                      ("  MISMATCH" if bad else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
