#!/usr/bin/env python3
"""Incremental snapshots (issue 15 item 2), end to end.

chain: per program and source engine, one run takes a chain of periodic
  checkpoints (--incremental --checkpoint-every-points P, deterministic) and
  runs to its end. Then every link is restored in a fresh process (an
  interpreter chain's in each engine, interp, aot and jit; a compiled
  chain's in each in turn), with the program's directories as they were at
  that link (from a run stopped there with --checkpoint-at; their mtimes
  differ, hence --allow-changed-files) and finishes: stdout, stderr, exit
  status, files and final memory must equal the uninterrupted run's. The chain must be the expected files
  (PATH.1 self-contained, PATH.2... incremental, PATH the newest), and
  `tern inspect` must list it.
damaged: a link in the middle of the chain corrupted, missing, replaced by
  another snapshot, and made a symbolic link: restoring a later link is one
  clear error naming the middle link; links before it still restore.
flatten: `tern snapshot flatten` of the chain's head, moved away from the
  chain, is self-contained (format version 1) and restores in each engine
  to the uninterrupted run's end.
mechanisms: the chain case for one program with dirty pages tracked by
  each mechanism (TERN_DIRTY_TRACKING), in compiled code and the
  interpreter.

    incremental.py --tern build/tern --programs DIR[:DIR...] [--only NAME,...] [--links 10]
        [--cache-dir DIR] [case ...]

A case is chain (every program of --only, default CHAIN_PROGRAMS),
chain.PROGRAM, damaged, flatten or mechanisms (each on the first program of
--only, default its own in ONE_PROGRAM_CASES). ctest runs what --list
prints, each as its own test (cmake/Testing.cmake).
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import differential  # noqa: E402
from differential import Harness, Program, Side  # noqa: E402
from testlib import Hung, find_wasm, run_process  # noqa: E402

MODES = ("interp", "aot", "jit")
# TERN_DIRTY_TRACKING values, and how --verbose-checkpoints names them.
MECHANISMS = {"userfaultfd": b"userfaultfd write-protect", "mprotect": b"mprotect and a fault",
              "hash": b"page hashing"}
FORCED = b"(forced)"
# Programs with files written as they run, memory.grow, stdin, C++, and a
# 4 MiB working set of which little changes between two checkpoints.
CHAIN_PROGRAMS = ("files", "bintrees", "echo", "wordfreq", "pages")
# Where most pages stay as they were: the pages the program rewrites over
# its whole run (pages.c: each of its 64 once). An incremental link of a
# chain of N must carry at most 64 / N of them, plus 3 (the stack, the
# page a round straddles, the heap's bookkeeping).
SPARSE_PROGRAMS = {"pages": 64}
# The cases run on one program, and the program each runs on by default.
ONE_PROGRAM_CASES = {"damaged": "files", "flatten": "pages", "mechanisms": "pages"}


def programs(search_path):
    """The differential suite's programs, and pages.wasm (guests/pages.c)."""
    found = differential.programs(search_path)
    pages = find_wasm(search_path.split(":"), "pages")
    found.append(Program("pages", pages or "pages.wasm"))
    return found


class Incremental(Harness):
    def __init__(self, args):
        super().__init__(argparse.Namespace(
            tern=args.tern, restore_tern=None, compile_tern=None, target=None,
            restore_target=None, k=0, cache_dir=args.cache_dir, verbose=args.verbose, kinds=0,
            no_chain=True, mode="interp", restore_mode=None))
        self.links = args.links
        self.failures = 0
        self.env = dict(os.environ)

    def fail(self, what):
        self.failures += 1
        print(f"  FAILED {what}", flush=True)

    def invoke(self, cmd, stats_path, *args, **kwargs):
        # Harness.invoke with this case's environment (the tracking mechanism).
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            return super().invoke(cmd, stats_path, *args, **kwargs)
        finally:
            os.environ.clear()
            os.environ.update(old)

    def tern_plain(self, args):
        try:
            p = run_process(self.tern + args, env=self.env)
        except Hung as e:
            return f"hung: {e}", b"", str(e)
        return p.rc, p.out, p.err.decode()

    # --- the chain -----------------------------------------------------------

    def take_chain(self, program, ref, mode):
        """Runs the program to its end taking `links` periodic incremental
        checkpoints. Returns (chain directory, head path, period) or None."""
        total = ref.stats["stable_points"]
        period = max(1, total // self.links)
        self.source = Side(self.tern, mode, None)
        root, dir_args = self.workspace(program, f"chain-{mode}")
        chain_dir = os.path.join(root, "chain")
        os.makedirs(chain_dir)
        head = os.path.join(chain_dir, "s")
        run = self.run_cmd(program, root, dir_args,
                           ["--checkpoint-to", head, "--incremental",
                            "--checkpoint-every-points", str(period)])
        # The run itself must end as the reference did: the program does
        # not see its checkpoints.
        self.dest = self.source
        self.compare(program, ref, f"chain run ({mode})", run.out, run.err, run, root)
        expected = total // period  # N, 2N, ... up to the last stable point
        names = sorted((n for n in os.listdir(chain_dir) if n.startswith("s.")),
                       key=lambda n: int(n[2:]))
        want = [f"s.{i}" for i in range(1, expected + 1)]
        if names != want:
            self.fail(f"{program.name} [{mode}]: chain files {names}, expected {want[:3]}...")
            return None
        if os.stat(head).st_ino != os.stat(os.path.join(chain_dir, want[-1])).st_ino:
            self.fail(f"{program.name} [{mode}]: {head} is not the newest link")
        return chain_dir, head, period, len(want)

    def check_verbose(self, program, ref, mode, title):
        """--verbose-checkpoints names the tracking mechanism (`title`)
        before the program runs, and says what each link is. (Its lines
        share stderr with the program's, so this run is not compared.)"""
        period = max(1, ref.stats["stable_points"] // 3)
        self.source = Side(self.tern, mode, None)
        root, dir_args = self.workspace(program, f"verbose-{mode}")
        head = os.path.join(root, "v")
        run = self.run_cmd(program, root, dir_args,
                           ["--checkpoint-to", head, "--incremental", "--verbose-checkpoints",
                            "--checkpoint-every-points", str(period)])
        first = run.err.split(b"\n", 1)[0]
        wanted = [b"v.1 is self-contained (the chain starts)", b"v.2 is incremental: "]
        forced = FORCED in first if "TERN_DIRTY_TRACKING" in self.env else True
        if not (first.startswith(b"tern: incremental checkpoints to " + head.encode() + b".N; "
                                 b"pages written are tracked by ") and title in first and forced and
                all(w in run.err for w in wanted)):
            self.fail(f"{program.name} [{mode}]: --verbose-checkpoints does not say how pages "
                      f"are tracked ({title.decode()}) or what each link is: {run.err[:600]!r}")

    def check_inspect(self, program, mode, chain_dir, links):
        last = os.path.join(chain_dir, f"s.{links}")
        rc, out, err = self.tern_plain(["inspect", "--json", last])
        if rc != 0:
            self.fail(f"{program.name} [{mode}]: tern inspect of the head: {err}")
            return
        d = json.loads(out)
        chain = d.get("chain", [])
        ok = (d["format_version"] == (2 if links > 1 else 1) and len(chain) == links and
              [os.path.basename(c["path"]) for c in chain] ==
              [f"s.{i}" for i in range(links, 0, -1)] and
              not chain[-1]["incremental"] and all(c["incremental"] for c in chain[:-1]))
        if not ok:
            self.fail(f"{program.name} [{mode}]: tern inspect's chain is wrong: "
                      f"{[(c['path'], c['incremental']) for c in chain]}")
        carried = [sum(m.get("carried_pages", m.get("nonzero_pages", 0)) for m in c["memories"])
                   for c in chain]
        return carried

    def memory_pages(self, snapshot):
        rc, out, _ = self.tern_plain(["inspect", "--json", snapshot])
        return sum(m["pages"] for m in json.loads(out)["memories"]) if rc == 0 else 0

    def warm(self, program, ref):
        """Every engine's uninterrupted run must end like the reference;
        this also fills the compiled-code cache (compiling has no CPU
        budget) and measures each engine's budget for the later runs."""
        for mode in ("aot", "jit"):
            self.uninterrupted(program, ref, Side(self.tern, mode, None))

    def restore_link(self, program, ref, link_path, n, restore_modes, label):
        """The program's directories as at stable point n (a run stopped
        there), then the link restored in each of `restore_modes` (each on
        its own copy of them) and finished."""
        taken = self.checkpoint_run(program, n)
        if taken is None:
            return
        first, stopped_root, snap, _ = taken
        os.unlink(snap)
        for mode in restore_modes:
            root = f"{stopped_root}-{mode}"
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(stopped_root, root, symlinks=True)
            self.dest = Side(self.tern, mode, None)
            # The files are as a second run left them, with other mtimes.
            final = self.restore_cmd(program, root, link_path,
                                     ["--allow-changed-files"] + self.moved_dirs(program, root))
            self.restores += 1
            self.unmove_dirs(program, root)
            self.compare(program, ref, f"{label} restored in {mode}", first.out + final.out,
                         first.err + final.err, final, root)
            shutil.rmtree(root)

    def moved_dirs(self, program, root):
        moved = []
        for i, (guest, _) in enumerate(sorted(program.dirs.items())):
            old, new = os.path.join(root, f"d{i}"), os.path.join(root, f"m{i}")
            os.rename(old, new)
            moved += ["--dir", f"{new}::{guest}"]
        return moved

    def unmove_dirs(self, program, root):
        for i in range(len(program.dirs)):
            os.rename(os.path.join(root, f"m{i}"), os.path.join(root, f"d{i}"))

    def chain_case(self, program, ref, mode, restore_modes=MODES, rotate=False):
        """A chain taken in `mode`; each link restored in every one of
        `restore_modes`, or with `rotate` in one of them in turn."""
        taken = self.take_chain(program, ref, mode)
        if taken is None:
            return None
        chain_dir, head, period, links = taken
        carried = self.check_inspect(program, mode, chain_dir, links)
        rewritten = SPARSE_PROGRAMS.get(program.name)
        if carried and rewritten and links > 1:
            bound = rewritten / links + 3
            total_pages = self.memory_pages(os.path.join(chain_dir, f"s.{links}"))
            if max(carried[:-1]) > bound:
                self.fail(f"{program.name} [{mode}]: incremental links carry {carried[:-1]} of "
                          f"{total_pages} pages, more than {bound:.1f}")
        for k in range(1, links + 1):
            modes = (restore_modes[k % len(restore_modes)],) if rotate else restore_modes
            self.restore_link(program, ref, os.path.join(chain_dir, f"s.{k}"), k * period,
                              modes, f"link s.{k} of {links} ({mode} chain)")
        how = "in turn" if rotate else "each"
        print(f"{program.name} [{mode} chain, every link restored in {how} of "
              f"{'/'.join(restore_modes)}]: {links} links every {period} stable points, "
              f"pages carried newest first {carried}", flush=True)
        return chain_dir, head, period, links

    # --- damaged links ----------------------------------------------------------

    def damaged(self, program, ref):
        taken = self.take_chain(program, ref, "interp")
        if taken is None:
            return
        chain_dir, head, period, links = taken
        middle = links // 2
        mid_path = os.path.join(chain_dir, f"s.{middle}")
        saved = mid_path + ".saved"
        shutil.copy2(mid_path, saved)

        def expect_error(what, *patterns):
            later = os.path.join(chain_dir, f"s.{links}")
            # The program's directories are where the chain's run left them.
            rc, out, err = self.tern_plain(["restore", "--dir-from-snapshot", later])
            lines = err.strip().splitlines()
            if rc != 1 or len(lines) != 1 or not lines[0].startswith("tern: error: "):
                self.fail(f"{program.name}: {what}: exit {rc}, stderr {err!r}")
                return
            for p in (f"s.{middle}",) + patterns:
                if p not in lines[0]:
                    self.fail(f"{program.name}: {what}: {p!r} not in {lines[0]!r}")
                    return
            print(f"  {what}: {lines[0]}", flush=True)

        # A flipped byte in the middle of the file (a memory chunk).
        with open(mid_path, "r+b") as f:
            f.seek(os.path.getsize(mid_path) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x40]))
        expect_error("corrupt middle link", "corrupt")
        # Cut short.
        shutil.copy2(saved, mid_path)
        with open(mid_path, "r+b") as f:
            f.truncate(os.path.getsize(mid_path) - 100)
        expect_error("truncated middle link", "changed")
        # Gone.
        os.unlink(mid_path)
        expect_error("missing middle link", "missing")
        # Another snapshot in its place (its neighbour, a valid snapshot).
        shutil.copy2(os.path.join(chain_dir, f"s.{middle - 1}"), mid_path)
        expect_error("replaced middle link", "changed")
        # A symbolic link to the right file is not followed.
        os.unlink(mid_path)
        os.symlink(saved, mid_path)
        expect_error("middle link behind a symbolic link", "symbolic link")
        os.unlink(mid_path)
        shutil.copy2(saved, mid_path)
        # Repaired, with the links before the damage still fine.
        self.restore_link(program, ref, os.path.join(chain_dir, f"s.{links}"), links * period,
                          ("interp",), "head after repair")
        print(f"{program.name} [damaged]: middle link s.{middle} of {links}", flush=True)

    # --- flatten ------------------------------------------------------------------

    def flatten(self, program, ref):
        taken = self.take_chain(program, ref, "interp")
        if taken is None:
            return
        chain_dir, head, period, links = taken
        alone = os.path.join(self.tmp, f"{program.name}-alone")
        os.makedirs(alone, exist_ok=True)
        flat = os.path.join(alone, "flat")
        rc, out, err = self.tern_plain(["snapshot", "flatten", head, "-o", flat])
        if rc != 0:
            self.fail(f"{program.name}: flatten: {err}")
            return
        shutil.rmtree(chain_dir)  # the flattened snapshot needs no parent
        rc, out, err = self.tern_plain(["inspect", "--json", flat])
        if rc != 0 or json.loads(out)["format_version"] != 1 or "chain" in json.loads(out):
            self.fail(f"{program.name}: the flattened snapshot is not self-contained: {err}")
        self.restore_link(program, ref, flat, links * period, MODES, "flattened")
        print(f"{program.name} [flatten]: {links} links into one, restored in "
              f"{'/'.join(MODES)}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tern")
    ap.add_argument("--programs")
    ap.add_argument("--cache-dir")
    ap.add_argument("--links", type=int, default=10)
    ap.add_argument("--only", help="comma-separated program names (default: a chosen few)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--list", action="store_true", help="print the names of the cases ctest runs")
    ap.add_argument("--without-compiler", action="store_true",
                    help="with --list: leave out the cases that need the compiler (all do)")
    ap.add_argument("cases", nargs="*", default=["chain", *ONE_PROGRAM_CASES])
    args = ap.parse_args()
    if args.list:
        if not args.without_compiler:
            print("\n".join([f"chain.{name}" for name in CHAIN_PROGRAMS] + list(ONE_PROGRAM_CASES)))
        return 0
    if not args.tern or not args.programs:
        ap.error("--tern and --programs are required")
    only = args.only.split(",") if args.only else None
    runs = []  # (case, the names of its programs)
    for case in args.cases:
        kind, _, program = case.partition(".")
        if kind == "chain":
            runs.append((kind, [program] if program else only or list(CHAIN_PROGRAMS)))
        elif kind in ONE_PROGRAM_CASES and not program:
            runs.append((kind, [(only or [ONE_PROGRAM_CASES[kind]])[0]]))
        else:
            sys.exit(f"incremental: unknown case {case}")
    names = list(dict.fromkeys(name for _, case_names in runs for name in case_names))
    selected = {p.name: p for p in programs(args.programs) if p.name in names}
    for name in names:
        if name not in selected or not os.path.exists(selected[name].wasm):
            sys.exit(f"incremental: program {name} is missing (build the guests first)")
    h = Incremental(args)
    try:
        refs = {name: h.reference(selected[name]) for name in names}
        for name in names:
            h.warm(selected[name], refs[name])
        for case, case_names in runs:
            if case == "chain":
                # Every link of an interpreter chain in every engine; the
                # compiled engines' chains in each engine in turn.
                for name in case_names:
                    h.check_verbose(selected[name], refs[name], "interp", b"")
                    for mode in MODES:
                        h.chain_case(selected[name], refs[name], mode, rotate=mode != "interp")
            elif case == "damaged":
                h.damaged(selected[case_names[0]], refs[case_names[0]])
            elif case == "flatten":
                h.flatten(selected[case_names[0]], refs[case_names[0]])
            elif case == "mechanisms":
                p = selected[case_names[0]]
                links, h.links = h.links, max(3, h.links // 4)
                for mechanism, title in MECHANISMS.items():
                    h.env = dict(os.environ, TERN_DIRTY_TRACKING=mechanism)
                    for mode in ("interp", "aot"):
                        h.check_verbose(p, refs[p.name], mode, title)
                        if h.chain_case(p, refs[p.name], mode, restore_modes=(mode,)):
                            print(f"  (pages tracked by {mechanism})", flush=True)
                h.env = dict(os.environ)
                h.links = links
    finally:
        shutil.rmtree(h.tmp, ignore_errors=True)
    print(f"{h.restores} restores, {h.divergences} divergences, {h.failures} failures")
    return 1 if h.divergences or h.failures else 0


if __name__ == "__main__":
    sys.exit(main())
