#!/usr/bin/env python3
"""Differential checkpoint testing (issue 4 item 6, issue 5).

For every program: run it to the end once (the reference), then for K stop
points spread over the whole run (the first stable point, the last, evenly
spaced and random ones) run it again with `--checkpoint-at N
--stop-after-checkpoint`, restore the snapshot in a fresh process and let it
finish. Standard output, standard error, exit status, the files it leaves and
the final memory's sha256 must equal the reference's. Chained runs
checkpoint again after a restore (three hops). Restores may use another
engine (--restore-mode) or another tern binary, e.g. one cross-built for
s390x run under qemu (--restore-tern "qemu-s390x build-s390x/tern").

--pairs runs several SOURCE:RESTORE engine pairs against one reference (the
first pair's source engine); every other source engine's uninterrupted run
must equal it too. aot and jit code is compiled into a cache in the
temporary directory (or --cache-dir); a cross-built tern, which has no
compiler, gets artifacts from `tern compile --target` (--target for the
runs, --restore-target for the restores, compiled by --compile-tern).
--kinds inspects each snapshot and tries more stop points until a restore
started from a function entry, a loop header and a call site.

--tier-up checks `--mode auto` (issue 18): for K points N the program
starts in the interpreter and moves into compiled code at the N-th stable
point (`--tier-up-at N`), and must end like the interpreter's run; a
checkpoint one point after the switch is restored in every engine (auto
restores move again a few points later), and checkpoints just before and
at the switch in one engine each (taking turns).

Every side (tern command and engine) runs each program uninterrupted
first: that run must equal the reference, it compiles the program into the
cache once, and its CPU time sets the budget of that side's later runs, so
a hang or a runaway is a divergence while a busy machine is not.

    differential.py --tern build/tern --programs DIR [--only NAME,...] [-k 50]
    differential.py --tern build/tern --programs DIR --pairs all -k 4 --kinds 6
    differential.py --tern build/tern --restore-tern "qemu-s390x build-s390x/tern" \\
        --pairs interp:aot --restore-target s390x --programs DIR -k 2
    differential.py --tern build/tern --programs DIR --tier-up -k 6

Prints one line per program (and pair) and the total "N restores, M
divergences"; exits non-zero when anything diverged.
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shlex
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import Hung, find_wasm, payload, run_process, tern_command, tree_digest  # noqa: E402

# Each run or restore may use BUDGET_FACTOR times the CPU time its side's
# uninterrupted run of the program used, plus BUDGET_FLOOR CPU seconds for
# writing and reading the snapshot and starting the process (testlib.py,
# "Time limits"): CPU seconds, which a busy machine does not stretch. The
# uninterrupted runs come first and also fill the compiled-code cache, so no
# later run compiles; they, and compiling, have no budget.
BUDGET_FACTOR = 10
BUDGET_FLOOR = 10.0
MODES = ("interp", "aot", "jit")
TIER_MODES = MODES + ("auto",)  # restores of --tier-up
KINDS = ("function-entry", "loop-header", "call-site")


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
    dirs = search_path.split(":")

    def g(name):
        return find_wasm(dirs, name) or os.path.join(dirs[0], name + ".wasm")
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


# Compiled code reports a trap with its innermost frame only (aot/engine.cpp
# records no callers), where the interpreter prints the whole backtrace.
BACKTRACE_TAIL = re.compile(rb"(wasm backtrace:\n +0: [^\n]*\n)(?: +\d+: [^\n]*\n)+")


def innermost_backtrace(err):
    return BACKTRACE_TAIL.sub(rb"\1", err)


class Run:
    def __init__(self, rc, out, err, stats, cpu=0.0):
        self.rc, self.out, self.err, self.stats, self.cpu = rc, out, err, stats, cpu


class Side:
    """Where a run or restore happens: a tern command, its engine, and the
    architecture its compiled code is for when artifacts are compiled
    beforehand (a cross-built tern under qemu has no compiler)."""

    def __init__(self, tern, mode, target):
        self.tern, self.mode, self.target = tern, mode, target

    def __str__(self):
        where = f" ({self.target} artifact)" if self.target else ""
        return self.mode + where

    def key(self):
        return (tuple(self.tern), self.mode, self.target)


class Harness:
    def __init__(self, args):
        self.tern = tern_command(args.tern)
        self.restore_tern = tern_command(args.restore_tern) if args.restore_tern else self.tern
        self.compile_tern = tern_command(args.compile_tern) if args.compile_tern else self.tern
        self.target, self.restore_target = args.target, args.restore_target
        self.k = args.k
        self.tmp = tempfile.mkdtemp(prefix="tern-differential-")
        # Compiled code (never ~/.cache); a --cache-dir shared by several
        # invocations compiles each program once per engine and target.
        self.cache = os.path.abspath(args.cache_dir or os.path.join(self.tmp, "aot-cache"))
        self.artifacts = {}
        self.restores = 0
        self.divergences = 0
        self.verbose = args.verbose
        self.kinds_required = args.kinds
        self.chain = not args.no_chain
        self.restore_args = list(getattr(args, "restore_arg", None) or [])
        self.expect_loading = getattr(args, "expect_loading", None)
        self.pair_index = 0
        self.many_pairs = False
        self.budgets = {}  # Side.key() -> CPU seconds a run there may use
        self.uncovered = 0  # programs and pairs with a kind never restored from (--kinds)
        self.set_pair(args.mode, args.restore_mode or args.mode)

    def set_pair(self, mode, restore_mode):
        self.source = Side(self.tern, mode, self.target)
        self.dest = Side(self.restore_tern, restore_mode, self.restore_target)

    def engine_args(self, side, program):
        """--mode and where compiled code comes from: an artifact compiled
        for side.target, else a cache in the temporary directory."""
        if side.mode == "interp":
            return ["--mode", "interp"]
        if side.target:
            if side.mode != "aot":
                raise SystemExit(f"differential: --mode {side.mode} cannot use a --target artifact")
            return ["--mode", "aot", "--artifact", self.artifact(program, side.target)]
        return ["--mode", side.mode, "--cache-dir", self.cache]

    def artifact(self, program, target):
        """`tern compile --target TARGET --exact-points` (the runs count
        stable points), once per program and target."""
        key = (program.name, target)
        if key not in self.artifacts:
            with open(program.wasm, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:16]
            path = os.path.join(self.cache, f"{program.name}-{digest}.{target}.exact.tern-aot")
            self.artifacts[key] = path
            if os.path.exists(path):
                return path
            os.makedirs(self.cache, exist_ok=True)
            cmd = self.compile_tern + ["compile", "--target", target, "--exact-points",
                                       program.wasm, "-o", path]
            p = run_process(cmd)
            if p.rc != 0:
                raise RuntimeError(f"{program.name}: tern compile --target {target} failed: "
                                   f"{p.err.decode()[-400:]}")
        return self.artifacts[key]

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

    def invoke(self, cmd, stats_path, side):
        """Runs cmd within side's budget (none before it is measured)."""
        if self.verbose:
            print("  $", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
        try:
            p = run_process(cmd, cpu_limit=self.budgets.get(side.key()))
        except Hung as e:
            return Run(f"hung: {e}", b"", b"", None)
        stats = None
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                stats = json.load(f)
            os.unlink(stats_path)
        return Run(p.rc, p.out, p.err, stats, p.cpu)

    def measured(self, side, run):
        """Sets side's budget from its uninterrupted run."""
        self.budgets.setdefault(side.key(), BUDGET_FACTOR * run.cpu + BUDGET_FLOOR)

    def run_cmd(self, program, root, dir_args, extra, side=None):
        side = side or self.source
        cmd = side.tern + ["run"] + self.engine_args(side, program) + dir_args
        for kv in program.env:
            cmd += ["--env", kv]
        if program.stdin is not None:
            cmd += ["--stdin", os.path.join(root, "stdin.bin")]
        stats = os.path.join(root, "stats.json")
        return self.invoke(cmd + ["--stats-out", stats] + extra + [program.wasm] + program.args,
                           stats, side)

    def restore_cmd(self, program, root, snapshot, extra, side=None):
        side = side or self.dest
        stats = os.path.join(root, "stats.json")
        # The program's stdin file is continued where it was (the run
        # redirected it; a restore opens only what it is granted).
        streams = ["--stdio-from-snapshot"] if program.stdin is not None else []
        cmd = (side.tern + ["restore"] + self.engine_args(side, program) +
               ["--stats-out", stats] + streams + self.restore_args + extra + [snapshot])
        run = self.invoke(cmd, stats, side)
        # The restore loaded memory the way this suite checks (a silent
        # fallback to the eager path would test nothing lazy).
        loading = run.stats and run.stats.get("memory_loading")
        if self.expect_loading and run.stats and not (loading or "").startswith(self.expect_loading):
            self.divergences += 1
            print(f"  DIVERGED {program.name} [{self.source} -> {side}]: memory loaded "
                  f"{loading!r}, expected {self.expect_loading!r}...", flush=True)
        return run

    def frame_kinds(self, snapshot):
        """The kinds of stable point the snapshot's frames stopped at (tern
        inspect), innermost first: --checkpoint-at stops the innermost
        frame at a function entry or a loop header; outer frames wait at
        call sites."""
        p = run_process(self.compile_tern + ["inspect", "--json", snapshot])
        if p.rc != 0:
            return ["uninspectable"]
        return [f["kind"] for f in json.loads(p.out)["threads"][0]["frames"]] or ["no frames"]

    def reference(self, program):
        """The uninterrupted run, twice: a program whose final memory holds
        host facts (inode numbers, times) differs between two plain runs,
        and then only its outputs and files are compared. The second run
        (its code cached by the first) measures the source side's budget."""
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
        self.measured(self.source, runs[1])
        return ref

    def uninterrupted(self, program, ref, side):
        """A plain run on another side (engine, tern command) must end
        exactly like the reference (same outputs, files, final memory and
        stable-point count); it sets the side's budget."""
        if side.key() in self.budgets:
            return
        root, dir_args = self.workspace(program, f"plain-{len(self.budgets)}")
        r = self.run_cmd(program, root, dir_args, [], side=side)
        self.measured(side, r)
        pair = (self.source, self.dest)
        self.source = self.dest = side
        self.compare(program, ref, f"uninterrupted {side}", r.out, r.err, r, root)
        self.source, self.dest = pair

    def files(self, program, root):
        """The program's directories as {d<i>/relative path: digest}."""
        out = {}
        for i in range(len(program.dirs)):
            for rel, digest in tree_digest(os.path.join(root, f"d{i}")).items():
                out[f"d{i}/{rel}"] = digest
        return out

    def stop_points(self, total):
        """K points: the first, the last, evenly spaced and random ones (the
        random ones differ from one mode pair to the next)."""
        rnd = random.Random(total * 1000 + self.pair_index)
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
        ref_err = ref.err
        if {self.source.mode, self.dest.mode} != {"interp"}:
            err, ref_err = innermost_backtrace(err), innermost_backtrace(ref.err)
        if err != ref_err:
            problems.append(f"stderr differs: {err[-300:]!r} vs {ref_err[-300:]!r}")
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
            print(f"  DIVERGED {program.name} {label} [{self.source} -> {self.dest}]: " +
                  "; ".join(problems), flush=True)
        return not problems

    def checkpoint_run(self, program, n, kinds_wanted=None, run_extra=()):
        """Stops a run at stable point n. Returns (first run, root, snapshot,
        kind), or None after reporting a divergence; with kinds_wanted,
        also None (quietly) when the point is of another kind."""
        root, dir_args = self.workspace(program, f"n{n}")
        snap = os.path.join(root, "snap")
        first = self.run_cmd(program, root, dir_args,
                             ["--checkpoint-to", snap, "--checkpoint-at", str(n),
                              "--stop-after-checkpoint"] + list(run_extra))
        if first.rc != 0 or not os.path.exists(snap):
            self.divergences += 1
            print(f"  DIVERGED {program.name} at {n} [{self.source}]: the checkpoint run ended "
                  f"with {first.rc} and no snapshot: {first.err[-300:]!r}", flush=True)
            return None
        if first.stats is None or first.stats["stable_points"] != n:
            self.divergences += 1
            got = first.stats and first.stats["stable_points"]
            print(f"  DIVERGED {program.name} at {n} [{self.source}]: the checkpoint was taken "
                  f"after {got} stable points", flush=True)
            return None
        kinds = self.frame_kinds(snap) if self.kinds_required else None
        if kinds_wanted is not None and not set(kinds) & kinds_wanted:
            os.unlink(snap)
            return None
        return first, root, snap, kinds

    def single(self, program, ref, n, kinds_wanted=None, run_extra=(), restore_extra=(),
               label=None):
        """Stop at n, restore (with the directories moved), finish. Returns
        the kinds of stable point the frames stopped at (if inspected)."""
        taken = self.checkpoint_run(program, n, kinds_wanted, run_extra)
        if taken is None:
            return []
        first, root, snap, kinds = taken
        # The program moves: its directories get new host paths.
        moved = []
        for i, (guest, _) in enumerate(sorted(program.dirs.items())):
            old, new = os.path.join(root, f"d{i}"), os.path.join(root, f"m{i}")
            os.rename(old, new)
            moved += ["--dir", f"{new}::{guest}"]
            os.makedirs(old)  # an empty decoy where the old path was
        final = self.restore_cmd(program, root, snap, moved + list(restore_extra))
        self.restores += 1
        for i in range(len(program.dirs)):  # compare in the reference's layout
            shutil.rmtree(os.path.join(root, f"d{i}"))
            os.rename(os.path.join(root, f"m{i}"), os.path.join(root, f"d{i}"))
        os.unlink(snap)
        label = label or (f"at {n} ({kinds[0]})" if kinds else f"at {n}")
        self.compare(program, ref, label, first.out + final.out, first.err + final.err, final, root)
        return kinds or []

    def chained(self, program, ref, stops):
        """Stop at stops[0], restore and stop at stops[1], ... then finish."""
        root, dir_args = self.workspace(program, "chain")
        snap = os.path.join(root, "snap")
        run = self.run_cmd(program, root, dir_args,
                           ["--checkpoint-to", snap, "--checkpoint-at", str(stops[0]),
                            "--stop-after-checkpoint"])
        out, err = run.out, run.err
        # Alternate sides on the way (source, restore, source, ...): with a
        # cross-built restore tern this goes there and back, and with two
        # engines it changes engine at every hop.
        for hop, n in enumerate(stops[1:] + [None]):
            side = self.dest if hop % 2 == 0 else self.source
            extra = ["--checkpoint-to", snap, "--checkpoint-at", str(n),
                     "--stop-after-checkpoint"] if n else []
            run = self.restore_cmd(program, root, snap, dir_args + extra, side=side)
            self.restores += 1
            out += run.out
            err += run.err
        os.unlink(snap)
        self.compare(program, ref, f"chained {stops}", out, err, run, root)

    def cover_kinds(self, program, ref, total, seen, tried):
        """More stop points until every kind of stable point has been
        restored from (bounded: a program may not reach every kind): early
        ones first, at 2^i and 2^i + 1 (start-up code is loopy, and in
        recursive programs like calls and bintrees loop headers are rare
        later), then random ones."""
        rnd = random.Random(total * 7 + self.pair_index)
        early = [p for i in range(1, 40) for p in (2 ** i, 2 ** i + 1) if p <= total]
        spread = rnd.sample(range(1, total + 1), min(total, 20))
        candidates = [p for p in dict.fromkeys(early[:8] + spread) if p not in tried]
        for n in candidates[: self.kinds_required]:
            missing = set(KINDS) - seen
            if not missing:
                break
            seen.update(self.single(program, ref, n, kinds_wanted=missing))

    def tier_up(self, program, ref):
        """--mode auto switched at K points, and checkpoints around each
        switch restored in every engine."""
        total = ref.stats["stable_points"]
        before = (self.restores, self.divergences)
        auto = Side(self.tern, "auto", None)
        switches = 0
        for i, n in enumerate(self.stop_points(total)):
            self.source = self.dest = auto
            root, dir_args = self.workspace(program, f"tier{n}")
            # The first move waits for the compile, which has no budget (a
            # busy machine makes it slow) and sets the budget of the later
            # runs, which find the cache.
            r = self.run_cmd(program, root, dir_args, ["--tier-up-at", str(n)])
            self.measured(auto, r)
            self.compare(program, ref, f"tier-up at {n}", r.out, r.err, r, root)
            switches += 1
            turn = TIER_MODES[i % len(TIER_MODES)]
            for c, modes, when in ((n + 1, TIER_MODES, "after"), (n, (turn,), "at"),
                                   (n - 1, (turn,), "before")):
                if not 1 <= c <= total:
                    continue
                for mode in modes:
                    self.dest = Side(self.restore_tern, mode, None)
                    # An auto restore moves on its own a few points later.
                    again = ["--tier-up-at", str(c + 3)] if mode == "auto" and c + 3 <= total else []
                    self.single(program, ref, c, run_extra=["--tier-up-at", str(n)],
                                restore_extra=again,
                                label=f"checkpoint at {c} ({when} the switch at {n})")
        restores = self.restores - before[0]
        diverged = self.divergences - before[1]
        memory = "" if ref.memory_reproducible else " (final memory holds host facts: not compared)"
        print(f"{program.name} [tier-up]: {total} stable points, {switches} switches, "
              f"{restores} restores, {diverged} divergences{memory}", flush=True)

    def check(self, program, ref):
        total = ref.stats["stable_points"]
        before = (self.restores, self.divergences)
        points = self.stop_points(total)
        seen = set()
        for n in points:
            seen.update(self.single(program, ref, n))
        if self.kinds_required:
            self.cover_kinds(program, ref, total, seen, set(points))
        if total >= 4 and self.chain:
            self.chained(program, ref, [total // 4, total // 2, total - 1])
        restores = self.restores - before[0]
        diverged = self.divergences - before[1]
        memory = "" if ref.memory_reproducible else " (final memory holds host facts: not compared)"
        kinds = ""
        if self.kinds_required:
            kinds = ", kinds " + "/".join(k for k in KINDS if k in seen)
            missing = [k for k in KINDS if k not in seen]
            if missing:
                kinds += " (NOT REACHED: " + "/".join(missing) + ")"
                self.uncovered += 1
        pair = f" [{self.source} -> {self.dest}]" if self.pair_index or self.many_pairs else ""
        print(f"{program.name}{pair}: {total} stable points, {restores} restores, "
              f"{diverged} divergences{kinds}{memory}", flush=True)


def parse_pairs(text):
    pairs = []
    for item in text.split(","):
        if item == "all":
            pairs += [(a, b) for a in MODES for b in MODES]
            continue
        src, _, dst = item.partition(":")
        if src not in MODES or dst not in MODES:
            raise SystemExit(f"differential: --pairs {item}: expected SOURCE:RESTORE modes "
                             f"from {', '.join(MODES)}, or all")
        pairs.append((src, dst))
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern", required=True, help="tern command for runs (may include a prefix)")
    ap.add_argument("--restore-tern", help="tern command for restores (default: --tern)")
    ap.add_argument("--mode", default="interp", choices=MODES, help="engine of the checkpointed runs")
    ap.add_argument("--restore-mode", choices=MODES, help="engine of the restores (default: --mode)")
    ap.add_argument("--pairs", help="comma-separated SOURCE:RESTORE engine pairs, or all (the 9 "
                    "pairs); the reference is the uninterrupted run in the first pair's source "
                    "engine, and every other source engine's uninterrupted run must match it")
    ap.add_argument("--target", help="compile the runs' code beforehand with `tern compile "
                    "--target TARGET` (for a cross-built --tern, which has no compiler)")
    ap.add_argument("--restore-target", help="the same for the restores' code")
    ap.add_argument("--compile-tern", help="tern command that compiles artifacts and inspects "
                    "snapshots (default: --tern)")
    ap.add_argument("--cache-dir", help="compiled code and artifacts, kept for other invocations "
                    "(default: in the temporary directory)")
    ap.add_argument("--kinds", type=int, default=0, metavar="TRIES",
                    help="report the kinds of stable point the restored frames stood at, and try "
                    "up to TRIES more stop points per program until every kind was restored from "
                    "(else fail)")
    ap.add_argument("--tier-up", action="store_true",
                    help="check --mode auto instead: switches from the interpreter at K points "
                    "(--tier-up-at) and checkpoints around them restored in every engine")
    ap.add_argument("--restore-arg", action="append", default=[], metavar="ARG",
                    help="an option given to every restore (repeatable), e.g. --eager")
    ap.add_argument("--expect-loading", metavar="PREFIX",
                    help="every restore's memory_loading (--stats-out) must start with PREFIX, "
                    "e.g. 'on first touch' (lazy) or 'before the program continued' (eager)")
    ap.add_argument("--no-chain", action="store_true",
                    help="no chained restores (which checkpoint in the restore engine too)")
    ap.add_argument("--programs", required=True,
                    help="directories with the programs' .wasm files (colon-separated)")
    ap.add_argument("--only", help="comma-separated program names")
    ap.add_argument("-k", type=int, default=50, help="stop points per program")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=1,
                    help="programs checked at the same time (each in its own process)")
    args = ap.parse_args()
    pairs = parse_pairs(args.pairs) if args.pairs else [(args.mode, args.restore_mode or args.mode)]
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
    _work.update(args=args, pairs=pairs, programs=selected)
    indices = range(len(selected))
    restores = divergences = uncovered = 0
    # Each program's lines are printed together, in program order.
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for out, err, counts in pool.map(check_program, indices):
            sys.stdout.write(out)
            sys.stdout.flush()
            sys.stderr.write(err)
            restores, divergences, uncovered = (
                a + b for a, b in zip((restores, divergences, uncovered), counts))
    print(f"{restores} restores, {divergences} divergences")
    if uncovered:
        print(f"{uncovered} program runs did not restore from every kind of stable point")
    return 1 if divergences or uncovered else 0


# What the worker processes share (set before they fork).
_work = {}


def check_program(index):
    """Every pair for one program, with its own Harness and temporary
    directory: (stdout text, stderr text, (restores, divergences, uncovered))."""
    args, pairs, p = _work["args"], _work["pairs"], _work["programs"][index]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        h = Harness(args)
        h.many_pairs = len(pairs) > 1
        try:
            h.set_pair(*pairs[0])
            ref = h.reference(p)
            if args.tier_up:
                h.tier_up(p, ref)
                return out.getvalue(), err.getvalue(), (h.restores, h.divergences, h.uncovered)
            # Every other side runs it uninterrupted before any checkpoint.
            for pair in pairs:
                h.set_pair(*pair)
                h.uninterrupted(p, ref, h.source)
                h.uninterrupted(p, ref, h.dest)
            for index, pair in enumerate(pairs):
                h.pair_index = index
                h.set_pair(*pair)
                h.check(p, ref)
        except (SystemExit, RuntimeError) as e:  # setup failed: reported, counted as a divergence
            print(f"  FAILED {p.name}: {e}")
            h.divergences += 1
        finally:
            shutil.rmtree(h.tmp, ignore_errors=True)
    return out.getvalue(), err.getvalue(), (h.restores, h.divergences, h.uncovered)


if __name__ == "__main__":
    sys.exit(main())
