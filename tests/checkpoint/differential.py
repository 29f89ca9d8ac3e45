#!/usr/bin/env python3
"""Differential checkpoint testing (issue 4 item 6).

For every program: run it to the end once (the reference), then for K stop
points spread over the whole run (the first stable point, the last, evenly
spaced and random ones) run it again with `--checkpoint-at N
--stop-after-checkpoint`, restore the snapshot in a fresh process and let it
finish. Standard output, standard error, exit status, the files it leaves and
the final memory's sha256 must equal the reference's. Chained runs
checkpoint again after a restore (three hops). Restores may use another
engine (--restore-mode) or another tern binary, e.g. one cross-built for
s390x run under qemu (--restore-tern "qemu-s390x build-s390x/tern").

    differential.py --tern build/tern --programs DIR [--only NAME,...] [-k 50]

Prints one line per program and the total "N restores, M divergences";
exits non-zero when anything diverged.
"""

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 300


def payload(size, seed):
    rnd = random.Random(seed)
    return bytes(rnd.randrange(256) for _ in range(size))


class Program:
    """A wasm program, its arguments and the directories it works in.

    dirs maps a guest path to {file name: bytes} (its initial contents);
    stdin, when set, is given through --stdin from a file."""

    def __init__(self, name, wasm, args=(), dirs=None, stdin=None, env=()):
        self.name = name
        self.wasm = wasm
        self.args = list(args)
        self.dirs = dirs or {}
        self.stdin = stdin
        self.env = list(env)


def programs(search_path):
    """The suite: the WASI guest programs and compute kernels (small inputs),
    found in the directories of `search_path` (colon-separated)."""
    def g(name):
        for d in search_path.split(":"):
            path = os.path.join(d, name + ".wasm")
            if os.path.exists(path):
                return path
        return os.path.join(search_path.split(":")[0], name + ".wasm")
    text = b"The quick fox; the lazy dog.\nA fox, THE end -- a fox!\n" * 40
    return [
        Program("exit_code", g("exit_code"), ["3"]),
        Program("trap", g("trap")),
        Program("args_env", g("args_env"), ["x", "y z", "--flag"], env=["A=1", "B=two words"]),
        Program("echo", g("echo"), stdin=payload(40_000, 7)),
        Program("files", g("files"), dirs={"/data": {}}),
        Program("clocks", g("clocks"), ["/data/known.txt"],
                dirs={"/data": {"known.txt": b"0123456789abcdefghij"}}),
        Program("wordfreq", g("wordfreq"), ["/w/in.txt", "/w/top.txt"], dirs={"/w": {"in.txt": text}}),
        Program("primes", g("primes"), ["2"], dirs={"/out": {}}),
        Program("calls", g("calls")),       # deep recursion, indirect calls
        Program("vm", g("vm")),             # a bytecode interpreter: br_table, calls
        Program("nbody", g("nbody")),       # floating point
        Program("bintrees", g("bintrees")), # malloc/free, memory.grow
        Program("sort", g("sort")),
        Program("sha256", g("sha256")),
        Program("matmul", g("matmul")),
        Program("stencil", g("stencil")),
        Program("strings", g("strings")),
        Program("lz", g("lz")),
    ]


def tree_digest(root):
    """{relative path: sha256 of contents (or 'dir'/'link -> target')} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            rel = os.path.relpath(p, root)
            out[rel] = "link -> " + os.readlink(p) if os.path.islink(p) else "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link -> " + os.readlink(p)
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


class Run:
    def __init__(self, rc, out, err, stats):
        self.rc, self.out, self.err, self.stats = rc, out, err, stats


class Harness:
    def __init__(self, args):
        self.tern = shlex.split(args.tern)
        self.restore_tern = shlex.split(args.restore_tern) if args.restore_tern else self.tern
        self.mode = args.mode
        self.restore_mode = args.restore_mode or args.mode
        self.k = args.k
        self.tmp = tempfile.mkdtemp(prefix="tern-differential-")
        self.restores = 0
        self.divergences = 0
        self.verbose = args.verbose

    def workspace(self, program, tag):
        """A fresh copy of the program's directories; returns (root, --dir args)."""
        root = os.path.join(self.tmp, f"{program.name}-{tag}")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        dir_args = []
        for i, (guest, files) in enumerate(sorted(program.dirs.items())):
            host = os.path.join(root, f"d{i}")
            os.makedirs(host)
            for name, data in files.items():
                with open(os.path.join(host, name), "wb") as f:
                    f.write(data)
            dir_args += ["--dir", f"{host}::{guest}"]
        if program.stdin is not None:
            with open(os.path.join(root, "stdin.bin"), "wb") as f:
                f.write(program.stdin)
        return root, dir_args

    def invoke(self, cmd, stats_path):
        if self.verbose:
            print("  $", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
        p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
        stats = None
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                stats = json.load(f)
            os.unlink(stats_path)
        return Run(p.returncode, p.stdout, p.stderr, stats)

    def run_cmd(self, program, root, dir_args, extra):
        cmd = self.tern + ["run", "--mode", self.mode] + dir_args
        for kv in program.env:
            cmd += ["--env", kv]
        if program.stdin is not None:
            cmd += ["--stdin", os.path.join(root, "stdin.bin")]
        stats = os.path.join(root, "stats.json")
        return self.invoke(cmd + ["--stats-out", stats] + extra + [program.wasm] + program.args,
                           stats)

    def restore_cmd(self, root, snapshot, extra, tern=None, mode=None):
        stats = os.path.join(root, "stats.json")
        cmd = (tern or self.restore_tern) + ["restore", "--mode", mode or self.restore_mode,
                                             "--stats-out", stats] + extra + [snapshot]
        return self.invoke(cmd, stats)

    def reference(self, program):
        """The uninterrupted run, twice: a program whose final memory holds
        host facts (inode numbers, times) differs between two plain runs,
        and then only its outputs and files are compared."""
        runs = []
        for tag in ("reference", "reference2"):
            root, dir_args = self.workspace(program, tag)
            r = self.run_cmd(program, root, dir_args, [])
            if r.stats is None:
                raise RuntimeError(f"{program.name}: the reference run wrote no stats "
                                   f"(exit {r.rc}, stderr {r.err[-400:]!r})")
            r.files = self.files(program, root)
            runs.append(r)
        ref = runs[0]
        ref.memory_reproducible = runs[0].stats["memory_sha256"] == runs[1].stats["memory_sha256"]
        return ref

    def files(self, program, root):
        """The program's directories as {d<i>/relative path: digest}."""
        out = {}
        for i in range(len(program.dirs)):
            for rel, digest in tree_digest(os.path.join(root, f"d{i}")).items():
                out[f"d{i}/{rel}"] = digest
        return out

    def stop_points(self, total):
        rnd = random.Random(total)
        points = {1, total}
        for i in range(self.k // 2):
            points.add(1 + (total - 1) * i // max(1, self.k // 2 - 1))
        while len(points) < min(self.k, total):
            points.add(rnd.randint(1, total))
        return sorted(p for p in points if 1 <= p <= total)

    def compare(self, program, ref, label, out, err, final, root):
        problems = []
        if out != ref.out:
            problems.append(f"stdout differs ({len(out)} vs {len(ref.out)} bytes)")
        if err != ref.err:
            problems.append(f"stderr differs: {err[-300:]!r} vs {ref.err[-300:]!r}")
        if final.rc != ref.rc:
            problems.append(f"exit status {final.rc}, expected {ref.rc}")
        if final.stats is None:
            problems.append("no stats from the last restore")
        else:
            if ref.memory_reproducible and final.stats["memory_sha256"] != ref.stats["memory_sha256"]:
                problems.append("final memory differs")
            if final.stats["stable_points"] != ref.stats["stable_points"]:
                problems.append(f"{final.stats['stable_points']} stable points, expected "
                                f"{ref.stats['stable_points']}")
        files = self.files(program, root)
        if files != ref.files:
            problems.append(f"files differ: {sorted(set(files.items()) ^ set(ref.files.items()))[:4]}")
        if problems:
            self.divergences += 1
            print(f"  DIVERGED {program.name} {label}: " + "; ".join(problems))
        return not problems

    def single(self, program, ref, n):
        """Stop at n, restore (with the directories moved), finish."""
        root, dir_args = self.workspace(program, f"n{n}")
        snap = os.path.join(root, "snap")
        first = self.run_cmd(program, root, dir_args,
                             ["--checkpoint-to", snap, "--checkpoint-at", str(n),
                              "--stop-after-checkpoint"])
        if first.rc != 0 or not os.path.exists(snap):
            self.divergences += 1
            print(f"  DIVERGED {program.name} at {n}: the checkpoint run ended with {first.rc} "
                  f"and no snapshot: {first.err[-300:]!r}")
            return
        # The program moves: its directories get new host paths.
        moved = []
        for i, (guest, _) in enumerate(sorted(program.dirs.items())):
            old, new = os.path.join(root, f"d{i}"), os.path.join(root, f"m{i}")
            os.rename(old, new)
            moved += ["--dir", f"{new}::{guest}"]
            os.makedirs(old)  # an empty decoy where the old path was
        final = self.restore_cmd(root, snap, moved)
        self.restores += 1
        for i in range(len(program.dirs)):  # compare in the reference's layout
            shutil.rmtree(os.path.join(root, f"d{i}"))
            os.rename(os.path.join(root, f"m{i}"), os.path.join(root, f"d{i}"))
        os.unlink(snap)
        self.compare(program, ref, f"at {n}", first.out + final.out, first.err + final.err, final, root)

    def chained(self, program, ref, stops):
        """Stop at stops[0], restore and stop at stops[1], ... then finish."""
        root, dir_args = self.workspace(program, "chain")
        snap = os.path.join(root, "snap")
        run = self.run_cmd(program, root, dir_args,
                           ["--checkpoint-to", snap, "--checkpoint-at", str(stops[0]),
                            "--stop-after-checkpoint"])
        out, err = run.out, run.err
        # Alternate binaries on the way (source, restore, source, ...): with a
        # cross-built restore tern this goes there and back.
        for hop, n in enumerate(stops[1:] + [None]):
            tern = self.restore_tern if hop % 2 == 0 else self.tern
            mode = self.restore_mode if hop % 2 == 0 else self.mode
            extra = ["--checkpoint-to", snap, "--checkpoint-at", str(n),
                     "--stop-after-checkpoint"] if n else []
            run = self.restore_cmd(root, snap, extra, tern=tern, mode=mode)
            self.restores += 1
            out += run.out
            err += run.err
        os.unlink(snap)
        self.compare(program, ref, f"chained {stops}", out, err, run, root)

    def check(self, program):
        ref = self.reference(program)
        total = ref.stats["stable_points"]
        before = (self.restores, self.divergences)
        points = self.stop_points(total)
        for n in points:
            self.single(program, ref, n)
        if total >= 4:
            self.chained(program, ref, [total // 4, total // 2, total - 1])
        restores = self.restores - before[0]
        diverged = self.divergences - before[1]
        memory = "" if ref.memory_reproducible else " (final memory holds host facts: not compared)"
        print(f"{program.name}: {total} stable points, {restores} restores, "
              f"{diverged} divergences{memory}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True, help="tern command for runs (may include a prefix)")
    ap.add_argument("--restore-tern", help="tern command for restores (default: --tern)")
    ap.add_argument("--mode", default="interp", help="engine of the checkpointed runs")
    ap.add_argument("--restore-mode", help="engine of the restores (default: --mode)")
    ap.add_argument("--programs", required=True,
                    help="directories with the programs' .wasm files (colon-separated)")
    ap.add_argument("--only", help="comma-separated program names")
    ap.add_argument("-k", type=int, default=50, help="stop points per program")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    h = Harness(args)
    try:
        selected = programs(args.programs)
        if args.only:
            names = args.only.split(",")
            selected = [p for p in selected if p.name in names]
            missing = set(names) - {p.name for p in selected}
            if missing:
                sys.exit(f"differential: unknown programs {sorted(missing)}")
        for p in selected:
            if not os.path.exists(p.wasm):
                sys.exit(f"differential: {p.wasm} is missing (build the guests first)")
            h.check(p)
    finally:
        shutil.rmtree(h.tmp, ignore_errors=True)
    print(f"{h.restores} restores, {h.divergences} divergences")
    return 1 if h.divergences else 0


if __name__ == "__main__":
    sys.exit(main())
