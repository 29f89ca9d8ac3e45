#!/usr/bin/env python3
"""Lazy restore (the default for snapshot files: memory loaded on first
touch, docs/cli.md) where it must not load lazily or cannot go on; the
differential suite's checkpoint-lazy stage checks that lazy restores in
every engine end as the uninterrupted runs do.

corrupt_chunk: a memory chunk whose checksum fails, found while the
  program runs (its pages are touched or prefetched after it continued),
  is one `tern: error:` line naming the snapshot and the section and exit
  status 1, never a crash nor a zero page; --eager refuses before the
  program runs.
unprivileged: a user who may not handle kernel-mode faults
  (vm.unprivileged_userfaultfd = 0, not root) gets the eager path, named by
  --verbose-checkpoints, and the same end as the uninterrupted run.

    lazy.py --tern build/tern --programs DIR[:DIR...] [CASE...]
"""

import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (Cases, as_nobody, expect, expect_equal, expect_one_error,  # noqa: E402
                     run_process)

case = Cases("lazy")
PROGRAM, STOP = "pages", 30000  # 4 MiB of memory written: several chunks


def sections(path):
    """(tag, offset of the header, payload length) of every section."""
    with open(path, "rb") as f:
        data = f.read()
    out, offset = [], 16
    while offset < len(data):
        tag, _, length = data[offset:offset + 4], *struct.unpack("<II", data[offset + 4:offset + 12])
        out.append((tag, offset, length))
        offset += 16 + length + 8
    return out


def reference_and_snapshot(env, snap):
    rc, out, err = env.run(["run", env.wasm(PROGRAM)])
    expect_equal(rc, 0, f"the uninterrupted run ({err})")
    rc, first, err = env.run(["run", "--checkpoint-to", snap, "--checkpoint-at", str(STOP),
                              "--stop-after-checkpoint", env.wasm(PROGRAM)])
    expect(rc == 0 and os.path.exists(snap), f"the checkpoint run: {rc} {err}")
    return out, first


@case
def corrupt_chunk(env):
    snap = env.path("snap")
    reference_and_snapshot(env, snap)
    chunks = [(off, n) for tag, off, n in sections(snap) if tag == b"MEMP"]
    expect(len(chunks) >= 2, f"{len(chunks)} memory chunks: too few to test")
    offset, length = chunks[-1]
    with open(snap, "r+b") as f:  # a byte in the middle of the last chunk's pages
        f.seek(offset + 16 + length // 2)
        byte = f.read(1)
        f.seek(offset + 16 + length // 2)
        f.write(bytes([byte[0] ^ 0x40]))
    patterns = [snap, rf"section MEMP at byte {offset}", "fails its checksum"]
    rc, _, err = env.run(["restore", "--verbose-checkpoints", snap])
    # The prefetch thread may reach the chunk before the verbose line is
    # printed; the error's "loading memory on demand" says lazily as well.
    expect("memory loaded on first touch" in err or "loading memory on demand" in err,
           f"the restore did not load lazily: {err!r}")
    err = "".join(line + "\n" for line in err.splitlines() if line.startswith("tern: error"))
    expect_one_error(rc, err, patterns + ["loading memory on demand"], "lazy restore")
    rc, out, err = env.run(["restore", "--eager", snap])
    expect_one_error(rc, err, patterns, "eager restore")
    expect_equal(out, "", "output of a refused eager restore")


@case
def unprivileged(env):
    setting = "/proc/sys/vm/unprivileged_userfaultfd"
    nobody = as_nobody()
    if not nobody or not os.path.exists(setting):
        print("unprivileged: skipped (needs root, setpriv and vm.unprivileged_userfaultfd)")
        return
    with open(setting) as f:
        if f.read().strip() != "0":
            print("unprivileged: skipped (vm.unprivileged_userfaultfd is not 0 here)")
            return
    # A directory the unprivileged user can read: the program and snapshot.
    shared = tempfile.mkdtemp(prefix="tern-lazy-unprivileged-")
    try:
        os.chmod(shared, 0o755)
        snap = os.path.join(shared, "snap")
        out, first = reference_and_snapshot(env, snap)
        os.chmod(snap, 0o644)
        p = run_process(nobody + env.tern + ["restore", "--verbose-checkpoints", snap], cwd=shared)
        err = p.err.decode(errors="replace")
        expect_equal((p.rc, first + p.out.decode()), (0, out),
                     f"the unprivileged restore ({err})")
        expect("memory loaded before the program continued (userfaultfd: not permitted" in err,
               f"the eager path and why: {err!r}")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0]))
