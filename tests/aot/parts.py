#!/usr/bin/env python3
"""A module compiled in parts (src/aot/llvm/partition.h) runs as the one
compiled whole: bench/many_functions.py's chain of 300 functions (calls
direct and through the table across every cut) compiled in 1 and in 5
parts, run from the artifact (--mode aot) and in memory (--mode jit
--no-cache, the parts merged into one object), exits as in the
interpreter; a checkpoint taken deep in the chain in code compiled in
parts restores in the interpreter and in code compiled whole, and one
taken in the interpreter restores in code compiled in parts. A compile
cut short keeps the parts it finished in the cache, and the next compile
takes them (a damaged one is compiled again) and makes the same code.

    parts.py --tern build/tern
"""
import argparse
import glob
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
sys.path.insert(0, os.path.join(HERE, ".."))
import many_functions  # noqa: E402
from testlib import Hung, run_process  # noqa: E402


def run(cmd, env=None, expect_rc=None):
    """Runs cmd for as long as it uses CPU (testlib's IDLE_LIMIT: a hang
    fails, a slow compile on a busy machine does not)."""
    try:
        proc = run_process(cmd, env=env)
    except Hung as e:
        sys.exit(f"FAIL: {' '.join(cmd)}: {e}")
    if expect_rc is not None and proc.rc != expect_rc:
        sys.exit(f"FAIL: {' '.join(cmd)}: exit {proc.rc}, expected {expect_rc}\n"
                 f"{proc.err.decode(errors='replace')}")
    return proc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", required=True)
    tern = ap.parse_args().tern
    with tempfile.TemporaryDirectory(prefix="tern-parts-") as tmp:
        wasm = os.path.join(tmp, "chain.wasm")
        with open(os.path.join(tmp, "chain.wat"), "w") as f:
            f.write(many_functions.module(300))
        run(["wat2wasm", os.path.join(tmp, "chain.wat"), "-o", wasm], expect_rc=0)
        expected = run([tern, "run", wasm]).rc
        if expected == 0:
            sys.exit("FAIL: the chain exits 0 in the interpreter (its result is its status)")
        env = dict(os.environ)
        artifacts = {}
        for parts in (1, 5):
            env["TERN_COMPILE_PARTS"] = str(parts)
            artifacts[parts] = os.path.join(tmp, f"chain.{parts}.aot")
            run([tern, "compile", wasm, "-o", artifacts[parts]], env, 0)
            run([tern, "run", "--mode", "aot", "--artifact", artifacts[parts], wasm], env, expected)
            run([tern, "run", "--mode", "jit", "--no-cache", wasm], env, expected)
        if open(artifacts[1], "rb").read() == open(artifacts[5], "rb").read():
            sys.exit("FAIL: the artifacts of 1 and 5 parts are the same: nothing was split")
        # Checkpoints deep in the chain (every function entry is a stable
        # point), across the code of several parts.
        env["TERN_COMPILE_PARTS"] = "5"
        snap = os.path.join(tmp, "chain.snap")
        cache = os.path.join(tmp, "cache")
        for at in (7, 450):
            run([tern, "run", "--mode", "jit", "--cache-dir", cache, "--checkpoint-at", str(at),
                 "--checkpoint-to", snap, "--stop-after-checkpoint", wasm], env, 0)
            run([tern, "restore", snap, "--mode", "interp"], env, expected)
            run([tern, "restore", snap, "--mode", "aot", "--artifact", artifacts[1]], env,
                expected)
            run([tern, "run", "--checkpoint-at", str(at), "--checkpoint-to", snap,
                 "--stop-after-checkpoint", wasm], env, 0)
            run([tern, "restore", snap, "--mode", "aot", "--artifact", artifacts[5]], env,
                expected)
        cut_short(tern, wasm, tmp, expected)
    print("parts: ok")


def cut_short(tern, wasm, tmp, expected):
    """A compile stopped after 2 of 5 parts (as auto's compile process is
    killed when the program ends first) leaves those 2 in the cache; the
    next compile takes them and writes the entry a compile in one go
    writes, byte for byte, and removes them. A kept part that does not
    match its checksum is compiled again."""
    env = dict(os.environ, TERN_COMPILE_PARTS="5")
    stopped = dict(env, TERN_COMPILE_STOP_AFTER_PARTS="2")
    traced = dict(env, TERN_TRACE_TIME="1")
    whole = os.path.join(tmp, "whole")
    run([tern, "run", "--mode", "jit", "--cache-dir", whole, wasm], env, expected)
    [entry] = glob.glob(os.path.join(whole, "*.tern-jit"))
    reference = open(entry, "rb").read()
    for damaged in (False, True):
        cache = os.path.join(tmp, f"cut-{damaged}")
        run([tern, "run", "--mode", "jit", "--cache-dir", cache, wasm], stopped, 1)
        kept = sorted(glob.glob(os.path.join(cache, "*.parts", "*.o")))
        if len(kept) != 2 or glob.glob(os.path.join(cache, "*.tern-jit")):
            sys.exit(f"FAIL: a compile stopped after 2 parts left {os.listdir(cache)} / {kept}")
        if damaged:
            with open(kept[0], "r+b") as f:
                f.seek(-100, os.SEEK_END)
                byte = f.read(1)
                f.seek(-100, os.SEEK_END)
                f.write(bytes([byte[0] ^ 0x40]))
        err = run([tern, "run", "--mode", "jit", "--cache-dir", cache, wasm], traced,
                  expected).err.decode(errors="replace")
        taken = 1 if damaged else 2
        if f"{taken} kept from an earlier compile" not in err:
            sys.exit(f"FAIL: the compile after the cut took not {taken} kept parts:\n{err}")
        if glob.glob(os.path.join(cache, "*.parts")):
            sys.exit("FAIL: the kept parts outlived the cache entry")
        [entry] = glob.glob(os.path.join(cache, "*.tern-jit"))
        if open(entry, "rb").read() != reference:
            sys.exit(f"FAIL: the entry compiled from kept parts (damaged: {damaged}) differs "
                     "from the one compiled in one go")


if __name__ == "__main__":
    main()
