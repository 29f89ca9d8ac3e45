#!/usr/bin/env python3
"""WASI state across `tern run --checkpoint-to` and `tern restore`, end to
end through the `tern` binary: files reopened by guest path at their
offsets, a changed or missing file refused with one error naming it (or
accepted with --allow-changed-files), files carried with --bundle-files to
an empty directory mapped with --dir, a held connection that comes back
reset by the peer while the listening socket accepts again.

    wasi_state.py --tern build/tern --programs DIR[:DIR...] CASE...
"""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (Cases, communicate, connect, expect, expect_equal,  # noqa: E402
                     expect_one_error, free_port, read_line, read_text, wait_for)

case = Cases("wasi-state")


def data_dir(env, name):
    d = env.path(name)
    os.mkdir(d)
    with open(os.path.join(d, "in.txt"), "w") as f:
        f.write("abcdefgh")
    return d


# --- files ---------------------------------------------------------------------

def checkpointed_files_run(env, data, snap, *extra):
    rc, out, err = env.run(["run", "--dir", f"{data}::/data", "--checkpoint-to", snap, *extra,
                            env.wasm("files")])
    expect_equal((rc, out), (0, "done 0\n"), f"the run ({err})")
    expect_equal(read_text(os.path.join(data, "out.txt")), "before:abcd\nafter(0):efgh\n",
                 "the run's output file")


@case
def changed_file(env):
    """The run went on writing after its checkpoint, so the file is not as
    the snapshot left it: restore refuses, naming it, unless told not to."""
    data, snap = data_dir(env, "data"), env.path("files.snap")
    checkpointed_files_run(env, data, snap)
    rc, out, err = env.run(["restore", "--dir-from-snapshot", snap])
    expect_one_error(rc, err, [r"fd \d+ \(/data/out\.txt\)", "changed since the checkpoint",
                               re.escape(os.path.join(data, "out.txt"))], "changed file")
    expect_equal(out, "", "no output from a refused restore")

    rc, out, err = env.run(["restore", "--dir", f"{data}::/data", "--allow-changed-files", snap])
    expect_equal((rc, out), (0, "done 1\n"), f"restore with --allow-changed-files ({err})")
    # Reopened at its offset, without truncation; in.txt read on from where
    # the program's buffer was.
    expect_equal(read_text(os.path.join(data, "out.txt")), "before:abcd\nafter(1):efgh\n",
                 "the restored program's output file")


@case
def bundled_files(env):
    """--bundle-files carries out.txt; restored into an empty directory
    mapped with --dir (plus in.txt, copied with its mtime), the program finds
    its output as it was at the checkpoint and continues it."""
    data, snap = data_dir(env, "data"), env.path("bundled.snap")
    checkpointed_files_run(env, data, snap, "--bundle-files")
    elsewhere = env.path("elsewhere")
    os.mkdir(elsewhere)
    shutil.copy2(os.path.join(data, "in.txt"), elsewhere)
    rc, out, err = env.run(["restore", "--dir", f"{elsewhere}::/data", snap])
    expect_equal((rc, out), (0, "done 1\n"), f"restore elsewhere ({err})")
    expect_equal(read_text(os.path.join(elsewhere, "out.txt")), "before:abcd\nafter(1):efgh\n",
                 "the output file written back and continued")
    expect_equal(sorted(os.listdir(elsewhere)), ["in.txt", "out.txt"], "no temporary files left")
    # The original directory is untouched by that restore.
    expect_equal(read_text(os.path.join(data, "out.txt")), "before:abcd\nafter(0):efgh\n",
                 "the original output file")


@case
def missing_file(env):
    """A file the program has open that is not on the restoring host."""
    data, snap = data_dir(env, "data"), env.path("missing.snap")
    checkpointed_files_run(env, data, snap, "--bundle-files")
    empty = env.path("empty")
    os.mkdir(empty)
    rc, _, err = env.run(["restore", "--dir", f"{empty}::/data", snap])
    expect_one_error(rc, err, [r"fd \d+ \(/data/in\.txt\)", "missing",
                               re.escape(os.path.join(empty, "in.txt"))], "missing file")


# --- sockets -------------------------------------------------------------------

def talk(proc, port, first):
    """The second half of the server's life: `first` has been read from its
    output; a new connection sends a word the server prints."""
    with connect(port) as c:
        c.sendall(b"again")
    out, err = communicate(proc)
    return proc.returncode, first + out.decode(), err.decode()


@case
def connections_reset(env):
    """A connection held across the checkpoint is reset by the peer after
    the restore; the listening socket is bound again and accepts."""
    port, snap = free_port(), env.path("server.snap")
    run = env.start(["run", "--listen", f"127.0.0.1:{port}", "--checkpoint-to", snap,
                     env.wasm("resets")])
    with connect(port) as client:
        expect_equal(client.recv(2), b"hi", "greeting")
        client.sendall(b"x")
        first = read_line(run)
        expect_equal(first, "restored=0 recv=1 ok\n", "the run's held connection")
        rc, out, err = talk(run, port, first)
    expect_equal((rc, out), (0, first + "next connection: again\n"), f"the run ({err})")

    restored = env.start(["restore", "--listen", f"127.0.0.1:{port}", snap])
    first = read_line(restored)
    expect_equal(first, "restored=1 recv=-1 Connection reset by peer\n",
                 "the restored program's held connection")
    rc, out, err = talk(restored, port, first)
    expect_equal((rc, out), (0, first + "next connection: again\n"), f"the restore ({err})")


@case
def port_taken(env):
    """Restoring while the port is taken is one error naming the address."""
    port, snap = free_port(), env.path("server.snap")
    run = env.start(["run", "--listen", f"127.0.0.1:{port}", "--checkpoint-to", snap,
                     env.wasm("resets")])
    with connect(port) as client:
        client.recv(2)
        client.sendall(b"x")
        first = read_line(run)
        expect_equal(first, "restored=0 recv=1 ok\n", "the run's held connection")
        # The run still listens (it waits for its next connection). Its
        # snapshot is written in the background: wait for it to appear.
        wait_for(lambda: os.path.exists(snap), "the snapshot to be written")
        rc, _, err = env.run(["restore", "--listen", f"127.0.0.1:{port}", snap])
        expect_one_error(rc, err, [rf"127\.0\.0\.1:{port}", "in use"], "port taken")
        talk(run, port, first)


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0]))
