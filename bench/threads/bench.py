#!/usr/bin/env python3
"""wasi-threads against native pthreads: the 2-thread kernel (two_threads.c,
one source) built natively with glibc's pthreads and for wasm32 with tern's
guest library (guest/), run natively and under tern in each engine. Prints
per column the minimum wall time and CPU time (user + sys) of BENCH_REPS
runs and the wall-time ratio to native; every run's output must equal the
native one.

Usage: bench/threads/bench.py BUILD_DIR [--small]

Environment: BENCH_REPS=N (default 5), BENCH_COLUMNS=REGEX (only those
columns; native always runs).
"""

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GUEST = ROOT / "guest"
THREADS_FLAGS = [
    "-nostartfiles", "-matomics", "-mbulk-memory", "-ftls-model=local-exec",
    f"-I{GUEST / 'include'}", "-include", str(GUEST / "include" / "tern_errno.h"),
    "-Wl,--import-memory,--shared-memory,--max-memory=67108864,--no-check-features",
    f"-Wl,@{GUEST / 'threads-wraps.rsp'}",
]


def build(out, small):
    out.mkdir(parents=True, exist_ok=True)
    src = HERE / "two_threads.c"
    extra = ["-DTERN_BENCH_SMALL"] if small else []
    native, wasm = out / "two_threads", out / "two_threads.wasm"
    subprocess.run(["gcc", "-O2", "-pthread", *extra, str(src), "-o", str(native)], check=True)
    subprocess.run(["clang", "--target=wasm32-wasi", "-O2", *THREADS_FLAGS, *extra, str(src),
                    str(GUEST / "src" / "pthread.c"), str(GUEST / "src" / "wasi_thread_start.s"),
                    str(GUEST / "src" / "errno.s"),
                    "-o", str(wasm)], check=True)
    return native, wasm


def timed(cmd):
    """(wall seconds, CPU seconds of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    build_dir = Path(args[0]).resolve()
    out = build_dir / "bench" / "threads"
    native, wasm = build(out, "--small" in sys.argv)
    tern = str(build_dir / "tern")
    cache = str(out / "cache")
    aot = str(out / "two_threads.aot")
    subprocess.run([tern, "compile", str(wasm), "-o", aot], check=True)
    columns = [
        ("native", [str(native)]),
        ("tern-interp", [tern, "run", "--mode", "interp", str(wasm)]),
        ("tern-aot", [tern, "run", "--mode", "aot", "--artifact", aot, str(wasm)]),
        ("tern-jit", [tern, "run", "--mode", "jit", "--cache-dir", cache, str(wasm)]),
    ]
    only = os.environ.get("BENCH_COLUMNS")
    columns = [c for c in columns if c[0] == "native" or not only or re.search(only, c[0])]
    reps = int(os.environ.get("BENCH_REPS", "5"))
    # The JIT's cache filled outside the timed runs (warm, as the kernels' jit column).
    subprocess.run([tern, "run", "--mode", "jit", "--cache-dir", cache, str(wasm)],
                   check=True, capture_output=True)
    expected, native_wall, failed = None, None, False
    print(f"{'column':<12} {'wall s':>8} {'cpu s':>8} {'wall/native':>12}")
    for name, cmd in columns:
        runs = [timed(cmd) for _ in range(reps)]
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        outputs = {r[2] for r in runs}
        if expected is None:
            expected = runs[0][2]
        mismatch = outputs != {expected}
        failed |= mismatch
        if name == "native":
            native_wall = wall
        ratio = f"{wall / native_wall:.2f}x"
        print(f"{name:<12} {wall:8.3f} {cpu:8.3f} {ratio:>12}" + ("  MISMATCH" if mismatch else ""),
              flush=True)
    print(f"output: {expected.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
