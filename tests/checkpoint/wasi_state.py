#!/usr/bin/env python3
"""WASI state across `tern run --checkpoint-to` and `tern restore`, end to
end through the `tern` binary: files reopened by guest path at their
offsets, a changed or missing file refused with one error naming it (or
accepted with --allow-changed-files), files carried with --bundle-files to
an empty directory mapped with --dir, a held connection that comes back
reset by the peer while the listening socket accepts again.

    wasi_state.py --tern build/tern --programs DIR[:DIR...] CASE...
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 120
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Failure(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Failure(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}:\n--- expected ---\n{expected!r}\n--- actual ---\n{actual!r}")


def read(path):
    with open(path) as f:
        return f.read()


class Env:
    def __init__(self, tern, programs, tmp):
        self.tern = tern
        self.programs = programs.split(":")
        self.tmp = tmp

    def wasm(self, name):
        for d in self.programs:
            p = os.path.join(d, name + ".wasm")
            if os.path.exists(p):
                return p
        raise Failure(f"{name}.wasm not found in {self.programs}")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, args):
        p = subprocess.run([self.tern] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def start(self, args):
        return subprocess.Popen([self.tern] + args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def data_dir(self, name):
        d = self.path(name)
        os.mkdir(d)
        with open(os.path.join(d, "in.txt"), "w") as f:
            f.write("abcdefgh")
        return d


def expect_one_error(rc, err, patterns, what):
    expect(rc == 1, f"{what}: exit status {rc}, stderr {err!r}")
    lines = err.strip().splitlines()
    expect(len(lines) == 1 and lines[0].startswith("tern: error: "),
           f"{what}: not one error line: {err!r}")
    for p in patterns:
        expect(re.search(p, lines[0]), f"{what}: {p!r} not in {lines[0]!r}")


# --- files ---------------------------------------------------------------------

def checkpointed_files_run(env, data, snap, *extra):
    rc, out, err = env.run(["run", "--dir", f"{data}::/data", "--checkpoint-to", snap, *extra,
                            env.wasm("files")])
    expect_equal((rc, out), (0, "done 0\n"), f"the run ({err})")
    expect_equal(read(os.path.join(data, "out.txt")), "before:abcd\nafter(0):efgh\n",
                 "the run's output file")


@case
def changed_file(env):
    """The run went on writing after its checkpoint, so the file is not as
    the snapshot left it: restore refuses, naming it, unless told not to."""
    data, snap = env.data_dir("data"), env.path("files.snap")
    checkpointed_files_run(env, data, snap)
    rc, out, err = env.run(["restore", snap])
    expect_one_error(rc, err, [r"fd \d+ \(/data/out\.txt\)", "changed since the checkpoint",
                               re.escape(os.path.join(data, "out.txt"))], "changed file")
    expect_equal(out, "", "no output from a refused restore")

    rc, out, err = env.run(["restore", "--allow-changed-files", snap])
    expect_equal((rc, out), (0, "done 1\n"), f"restore with --allow-changed-files ({err})")
    # Reopened at its offset, without truncation; in.txt read on from where
    # the program's buffer was.
    expect_equal(read(os.path.join(data, "out.txt")), "before:abcd\nafter(1):efgh\n",
                 "the restored program's output file")


@case
def bundled_files(env):
    """--bundle-files carries out.txt; restored into an empty directory
    mapped with --dir (plus in.txt, copied with its mtime), the program finds
    its output as it was at the checkpoint and continues it."""
    data, snap = env.data_dir("data"), env.path("bundled.snap")
    checkpointed_files_run(env, data, snap, "--bundle-files")
    elsewhere = env.path("elsewhere")
    os.mkdir(elsewhere)
    shutil.copy2(os.path.join(data, "in.txt"), elsewhere)
    rc, out, err = env.run(["restore", "--dir", f"{elsewhere}::/data", snap])
    expect_equal((rc, out), (0, "done 1\n"), f"restore elsewhere ({err})")
    expect_equal(read(os.path.join(elsewhere, "out.txt")), "before:abcd\nafter(1):efgh\n",
                 "the output file written back and continued")
    expect_equal(sorted(os.listdir(elsewhere)), ["in.txt", "out.txt"], "no temporary files left")
    # The original directory is untouched by that restore.
    expect_equal(read(os.path.join(data, "out.txt")), "before:abcd\nafter(0):efgh\n",
                 "the original output file")


@case
def missing_file(env):
    """A file the program has open that is not on the restoring host."""
    data, snap = env.data_dir("data"), env.path("missing.snap")
    checkpointed_files_run(env, data, snap, "--bundle-files")
    empty = env.path("empty")
    os.mkdir(empty)
    rc, _, err = env.run(["restore", "--dir", f"{empty}::/data", snap])
    expect_one_error(rc, err, [r"fd \d+ \(/data/in\.txt\)", "missing",
                               re.escape(os.path.join(empty, "in.txt"))], "missing file")


# --- sockets -------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port):
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        except OSError:
            if time.monotonic() > deadline:
                raise Failure(f"nothing listens on port {port}")
            time.sleep(0.02)


def talk(proc, port, first):
    """The second half of the server's life: `first` has been read from its
    output; a new connection sends a word the server prints."""
    with connect(port) as c:
        c.sendall(b"again")
    out, err = proc.communicate(timeout=TIMEOUT)
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
        first = run.stdout.readline().decode()
        expect_equal(first, "restored=0 recv=1 ok\n", "the run's held connection")
        rc, out, err = talk(run, port, first)
    expect_equal((rc, out), (0, first + "next connection: again\n"), f"the run ({err})")

    restored = env.start(["restore", snap])
    first = restored.stdout.readline().decode()
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
        first = run.stdout.readline().decode()
        expect_equal(first, "restored=0 recv=1 ok\n", "the run's held connection")
        # The run still listens (it waits for its next connection). Its
        # snapshot is written in the background: wait for it to appear.
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(snap):
            expect(time.monotonic() < deadline, "the snapshot was never written")
            time.sleep(0.02)
        rc, _, err = env.run(["restore", snap])
        expect_one_error(rc, err, [rf"127\.0\.0\.1:{port}", "in use"], "port taken")
        talk(run, port, first)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", required=True)
    ap.add_argument("--programs", required=True)
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    names = args.cases or list(CASES)
    failed = 0
    for name in names:
        fn = CASES.get(name)
        if not fn:
            sys.exit(f"unknown case {name}; cases: {', '.join(CASES)}")
        tmp = tempfile.mkdtemp(prefix=f"tern-wasi-state-{name}-")
        try:
            fn(Env(os.path.abspath(args.tern), args.programs, tmp))
            print(f"{name}: ok")
        except Failure as e:
            failed += 1
            print(f"{name}: FAILED: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
