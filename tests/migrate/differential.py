#!/usr/bin/env python3
"""Differential migration testing: the checkpoint suite's programs moved
mid-run from one host to another by `tern migrate`.

Host A runs each program with `--pause-at N` (it waits at its N-th stable
point); `tern serve --once` on host B receives it and finishes it. Standard
output and error of both together, the exit status, the files the program
leaves and its final memory must equal an uninterrupted run's, for every
SOURCE:TARGET engine pair (--pairs), and with a target tern built for
another CPU (--restore-tern "qemu-s390x build-s390x/tern", compiled code
from --restore-target artifacts). The two hosts are network namespaces
joined by a veth pair (netns.py), one pair per worker process. The
programs' directories are shared storage (the same host paths on both
sides), as with NFS between real hosts.

    differential.py --tern build/tern --programs DIR --pairs all -k 2
"""

import argparse
import concurrent.futures
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checkpoint"))
import differential as checkpoint  # noqa: E402  (tests/checkpoint/differential.py)
import netns  # noqa: E402
# No wall-clock limit: a migration is waited for as long as its processes
# use CPU (a --mode jit migration compiles the module in both processes; on
# a busy machine one such compile took 3 minutes), and fails as hung once
# none has for testlib.IDLE_LIMIT seconds.
from testlib import (Failure, Hung, communicate, join, run_process, wait_for,  # noqa: E402
                     wait_process)

RESULT = re.compile(r"^migrated to \S+: \d+ rounds, [\d.]+ MiB sent, downtime [\d.]+ ms$")
PORT = 7000


def without_serve_lines(err):
    return b"".join(l for l in err.splitlines(keepends=True) if not l.startswith(b"tern: serve: "))


class MigrationHarness(checkpoint.Harness):
    """The checkpoint harness with `single` as a migration between hosts."""

    def __init__(self, args, hosts):
        super().__init__(args)
        self.hosts = hosts
        self.key = os.path.join(self.tmp, "site.key")
        subprocess.run(self.compile_tern + ["keygen", self.key], check=True, capture_output=True)
        self.migrations = 0

    def program_cmd(self, side, program, root, dir_args, stats):
        cmd = side.tern + ["run"] + self.engine_args(side, program) + dir_args
        for kv in program.env:
            cmd += ["--env", kv]
        if program.stdin is not None:
            cmd += ["--stdin", os.path.join(root, "stdin.bin")]
        return cmd + ["--stats-out", stats]

    def single(self, program, ref, n, kinds_wanted=None):
        root, dir_args = self.workspace(program, f"n{n}")
        control = os.path.join(root, "control.sock")
        target_stats = os.path.join(root, "stats.json")
        # The program's stdin file continues where it was (shared storage).
        streams = ["--stdio-from-snapshot"] if program.stdin is not None else []
        serve = self.hosts.start(self.hosts.b, self.dest.tern + [
            "serve", "--listen", f"{self.hosts.b_addr}:{PORT}", "--key", self.key, "--once",
            "--verbose", "--stats-out", target_stats] + self.engine_args(self.dest, program) +
            streams + dir_args)
        err_lines = []
        ready = threading.Event()

        def read_err():
            for line in iter(serve.stderr.readline, b""):
                err_lines.append(line)
                if b"listening on" in line:
                    ready.set()
            ready.set()
        reader = threading.Thread(target=read_err, daemon=True)
        reader.start()
        try:
            wait_for(ready.is_set, "tern serve to listen")
        except Failure as e:
            return self.hung(program, n, [serve], e)
        src_cmd = self.program_cmd(self.source, program, root, dir_args,
                                   os.path.join(root, "source-stats.json"))
        src = self.hosts.start(self.hosts.a, src_cmd + ["--control", control, "--pause-at", str(n),
                                                        program.wasm] + program.args)
        try:
            wait_for(lambda: os.path.exists(control) or src.poll() is not None,
                     "the source's control socket")
            m = run_process(self.compile_tern + [
                "migrate", "--control", control, "--to", f"{self.hosts.b_addr}:{PORT}", "--key",
                self.key])
            src_out, src_err = communicate(src)
            if m.rc != 0 or not RESULT.match(m.out.decode().strip()):
                # serve got no program: it would wait for one for ever.
                serve.kill()
                join(reader, "the end of serve's output")
                self.divergences += 1
                print(f"  DIVERGED {program.name} at {n} [{self.source} -> {self.dest}]: tern "
                      f"migrate {m.rc}: {m.out.decode()!r} {m.err.decode()!r} (source: {src.returncode} "
                      f"{src_err[-400:]!r}; serve: {b''.join(err_lines)[-400:]!r})", flush=True)
                return []
            t_out = serve.stdout.read()
            wait_process(serve)
            join(reader, "the end of serve's output")
        except (Failure, Hung) as e:
            return self.hung(program, n, [src, serve], e)
        self.migrations += 1
        self.restores += 1
        final = checkpoint.Run(serve.returncode, t_out, b"", load_stats(target_stats))
        self.compare(program, ref, f"migrated at {n}", src_out + t_out,
                     src_err + without_serve_lines(b"".join(err_lines)), final, root)
        return []

    def hung(self, program, n, procs, error):
        """A migration whose processes stopped progressing: killed, counted
        as a divergence."""
        for p in procs:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        self.divergences += 1
        print(f"  DIVERGED {program.name} at {n} [{self.source} -> {self.dest}]: hung ({error})",
              flush=True)
        return []


def load_stats(path):
    import json
    if not os.path.exists(path):
        return None
    with open(path) as f:
        stats = json.load(f)
    os.unlink(path)
    return stats


_work = {}


def check_program(index):
    args, pairs, p = _work["args"], _work["pairs"], _work["programs"][index]
    out, err = io.StringIO(), io.StringIO()
    counts = (0, 0)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with netns.TwoHosts() as hosts:
                h = MigrationHarness(args, hosts)
                h.many_pairs = len(pairs) > 1
                try:
                    h.set_pair(*pairs[0])
                    ref = h.reference(p)
                    for i, pair in enumerate(pairs):
                        h.pair_index = i
                        h.set_pair(*pair)
                        total = ref.stats["stable_points"]
                        before = (h.restores, h.divergences)
                        for n in h.stop_points(total):
                            h.single(p, ref, n)
                        print(f"{p.name} [{h.source} -> {h.dest}]: {total} stable points, "
                              f"{h.restores - before[0]} migrations, "
                              f"{h.divergences - before[1]} divergences", flush=True)
                except (SystemExit, RuntimeError) as e:
                    print(f"  FAILED {p.name}: {e}")
                    h.divergences += 1
                finally:
                    shutil.rmtree(h.tmp, ignore_errors=True)
                counts = (h.restores, h.divergences)
        except RuntimeError as e:
            print(f"  FAILED {p.name}: {e}")
            counts = (0, 1)
    return out.getvalue(), err.getvalue(), counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True, help="tern command on the source host")
    ap.add_argument("--restore-tern", help="tern command of `tern serve` (default: --tern)")
    ap.add_argument("--compile-tern", help="tern that compiles artifacts, makes keys and runs "
                    "`tern migrate` (default: --tern)")
    ap.add_argument("--pairs", default="interp:interp",
                    help="SOURCE:TARGET engine pairs, comma-separated, or all")
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--restore-target", help="compile the target's code with `tern compile "
                    "--target` (a cross-built serve has no compiler)")
    ap.add_argument("--cache-dir", help="compiled code kept between runs")
    ap.add_argument("--programs", required=True)
    ap.add_argument("--only", help="comma-separated program names")
    ap.add_argument("-k", type=int, default=2, help="stop points per program and pair")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    # What the checkpoint harness expects besides.
    args.mode, args.restore_mode, args.kinds, args.no_chain = "interp", None, 0, True
    if not netns.available():
        sys.exit("migrate differential: needs root and iproute2 (network namespaces)")
    pairs = checkpoint.parse_pairs(args.pairs)
    selected = checkpoint.programs(args.programs)
    if args.only:
        names = args.only.split(",")
        selected = [p for p in selected if p.name in names]
    _work.update(args=args, pairs=pairs, programs=selected)
    migrations = divergences = 0
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for out, err, (m, d) in pool.map(check_program, range(len(selected))):
            sys.stdout.write(out)
            sys.stderr.write(err)
            migrations += m
            divergences += d
    print(f"{migrations} migrations, {divergences} divergences")
    return 1 if divergences or not migrations else 0


if __name__ == "__main__":
    sys.exit(main())
