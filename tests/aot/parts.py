#!/usr/bin/env python3
"""A module compiled in parts (src/aot/llvm/partition.h) runs as the one
compiled whole: bench/many_functions.py's chain of 300 functions (calls
direct and through the table across every cut) compiled in 1 and in 5
parts, run from the artifact (--mode aot) and in memory (--mode jit
--no-cache, the parts merged into one object), exits as in the
interpreter; a checkpoint taken deep in the chain in code compiled in
parts restores in the interpreter and in code compiled whole, and one
taken in the interpreter restores in code compiled in parts.

    parts.py --tern build/tern
"""
import argparse
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
    print("parts: ok")


if __name__ == "__main__":
    main()
