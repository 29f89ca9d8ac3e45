#!/usr/bin/env python3
"""Live migration benchmark: `bench/migrate/bench.py BUILD_DIR`.

Moves a program that has touched M MiB of memory (pseudo-random bytes, so
nothing compresses) and keeps rewriting R MB/s of it (whole 64 KiB pages at
random places; tests/migrate/guests/dirtier.c) from one host to another
over a veth link (two network namespaces, tests/migrate/netns.py), with
iterative pre-copy (tern migrate's defaults) and with stop-and-copy
(--max-rounds 0), and prints for each: rounds, MiB sent, the total time of
`tern migrate`, and the downtime it reports (source stops -> program runs
on the target). Needs root (network namespaces).

    BENCH_SIZES=16,256,1024 BENCH_RATES=0,10,100 BENCH_MODE=aot BENCH_REPEAT=1

The program runs in BENCH_MODE on both hosts (compiled code comes from a
cache in the build directory, filled by the first run).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "migrate"))
import netns  # noqa: E402

RESULT = re.compile(r"^migrated to \S+: (\d+) rounds, ([\d.]+) MiB sent, downtime ([\d.]+) ms$")


def env_list(name, default):
    return [int(x) for x in os.environ.get(name, default).split(",") if x]


def wait_line(pipe, text, timeout=600):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = pipe.readline().decode(errors="replace")
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    raise RuntimeError(f"no {text!r} in {''.join(lines)[-600:]!r}")


def migrate_once(tern, hosts, wasm, key, cache, mode, mib, rate, precopy, tmp, port):
    engine = ["--mode", mode] + (["--cache-dir", cache] if mode != "interp" else [])
    serve = hosts.start(hosts.b, tern + ["serve", "--listen", f"{hosts.b_addr}:{port}", "--key",
                                         key, "--once", "--verbose"] + engine)
    wait_line(serve.stderr, "listening on")
    control = os.path.join(tmp, f"control-{port}.sock")
    # Long enough never to end by itself (killed with serve afterwards).
    src = hosts.start(hosts.a, tern + ["run"] + engine + ["--control", control, wasm, str(mib),
                                                          str(rate), "1000000"])
    wait_line(src.stdout, "ready")
    args = ["migrate", "--control", control, "--to", f"{hosts.b_addr}:{port}", "--key", key,
            "--timeout", "60s"]
    if not precopy:
        args += ["--max-rounds", "0"]
    start = time.monotonic()
    m = subprocess.run(tern + args, capture_output=True, timeout=900)
    total = time.monotonic() - start
    out = m.stdout.decode().strip()
    match = RESULT.match(out)
    for p in (serve, src):
        p.kill()
        p.wait()
    if m.returncode != 0 or not match:
        raise RuntimeError(f"tern migrate: {m.returncode} {out!r} {m.stderr.decode()!r}")
    return int(match.group(1)), float(match.group(2)), total, float(match.group(3))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/migrate/bench.py BUILD_DIR")
    build = os.path.abspath(sys.argv[1])
    tern = [os.path.join(build, "tern")]
    wasm = os.path.join(build, "tests", "migrate", "dirtier.wasm")
    if not os.path.exists(wasm):
        sys.exit(f"{wasm} is missing: build the tests first")
    if not netns.available():
        sys.exit("bench/migrate needs root (network namespaces)")
    sizes = env_list("BENCH_SIZES", "16,256,1024")
    rates = env_list("BENCH_RATES", "0,10,100")
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    mode = os.environ.get("BENCH_MODE", "aot")
    cache = os.path.join(build, "bench", "migrate-cache")
    os.makedirs(cache, exist_ok=True)
    print(f"tern migrate over a veth link, program in {mode} mode on both hosts, "
          f"best downtime of {repeat}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'MiB':>5} {'MB/s':>5}  {'method':<13} {'rounds':>6} {'MiB sent':>9} "
          f"{'total s':>8} {'downtime ms':>12}", flush=True)
    port = 7000
    with tempfile.TemporaryDirectory(prefix="tern-bench-migrate-") as tmp, \
            netns.TwoHosts() as hosts:
        key = os.path.join(tmp, "bench.key")
        subprocess.run(tern + ["keygen", key], check=True, capture_output=True)
        for mib in sizes:
            for rate in rates:
                for precopy in (True, False):
                    runs = []
                    for _ in range(repeat):
                        port += 1
                        runs.append(migrate_once(tern, hosts, wasm, key, cache, mode, mib, rate,
                                                 precopy, tmp, port))
                    rounds, sent, total, downtime = min(runs, key=lambda r: r[3])
                    method = "pre-copy" if precopy else "stop-and-copy"
                    print(f"{mib:>5} {rate:>5}  {method:<13} {rounds:>6} {sent:>9.1f} "
                          f"{total:>8.2f} {downtime:>12.1f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
