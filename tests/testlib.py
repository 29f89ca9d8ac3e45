"""What the Python end-to-end tests share: running the `tern` binary,
per-case temporary directories, expectations, waiting for a program to
block, sockets. Used by tests/guests/guest_tests.py and the scripts in
tests/checkpoint (triggers, wasi_state, differential, artifacts).

A test script registers its cases with a `Cases` registry and ends with
`sys.exit(cases.main(...))`; each case gets an `Env` with a fresh temporary
directory, removed afterwards.
"""

import argparse
import hashlib
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = 120  # seconds for one tern process; only so a hang fails instead of blocking


class Failure(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise Failure(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise Failure(f"{what}:\n--- expected ---\n{expected!r}\n--- actual ---\n{actual!r}")


def expect_one_error(rc, err, patterns, what):
    """tern refused: exit status 1 and exactly one `tern: error:` line on
    stderr matching every regular expression in `patterns`."""
    expect(rc == 1, f"{what}: exit status {rc}, stderr {err!r}")
    lines = err.strip().splitlines()
    expect(len(lines) == 1 and lines[0].startswith("tern: error: "),
           f"{what}: not one error line: {err!r}")
    for p in patterns:
        expect(re.search(p, lines[0]), f"{what}: {p!r} not in {lines[0]!r}")


def payload(size, seed=1234):
    """`size` reproducible pseudo-random bytes."""
    rnd = random.Random(seed)
    return bytes(rnd.randrange(256) for _ in range(size))


def read_text(path):
    with open(path) as f:
        return f.read()


def tree_digest(root):
    """{relative path: sha256 of contents (or 'dir'/'link -> target')} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link -> " + os.readlink(p)
            elif name in dirnames:
                out[rel] = "dir"
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def find_wasm(search_path, name):
    """NAME.wasm in the first directory of `search_path` (a list) holding it, else None."""
    for d in search_path:
        p = os.path.join(d, name + ".wasm")
        if os.path.exists(p):
            return p
    return None


# --- processes -------------------------------------------------------------------


def wait_for(predicate, what, timeout=TIMEOUT):
    """Polls until predicate() is true (no timing assertion: a generous limit
    only so that a broken tern fails the test instead of hanging it)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_blocked(proc):
    """Waits until tern's main thread (the program's) sleeps in poll: the
    program is then inside a blocking host call, so a checkpoint requested
    now must land there, however loaded the machine is."""
    def blocked():
        try:
            with open(f"/proc/{proc.pid}/wchan") as f:
                return "poll" in f.read()
        except OSError:
            return False
    wait_for(blocked, "the program to block in a host call")


def read_until(proc, text):
    """Reads the process's stdout line by line until a line contains `text`."""
    lines = []
    while True:
        line = proc.stdout.readline().decode()
        if not line:
            raise Failure(f"the program ended before printing {text!r}: {''.join(lines)!r}")
        lines.append(line)
        if text in line:
            return "".join(lines)


def finish(proc):
    """Waits for a started process: (exit status, stdout text, stderr text)."""
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out.decode(), err.decode()


def kill_if_running(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --- sockets ---------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port, host="127.0.0.1", timeout=TIMEOUT):
    """A connection to host:port, retried until something listens there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((host, port), timeout=timeout)
        except OSError:
            if time.monotonic() > deadline:
                raise Failure(f"nothing listens on {host} port {port}")
            time.sleep(0.02)


# --- the tern binary ---------------------------------------------------------------


class Env:
    """One case's world: the tern command (a list, possibly with a runner
    prefix such as qemu), where the .wasm programs are, a temporary
    directory, and the engines the case runs and restores with."""

    def __init__(self, tern, programs, tmp, mode="interp", restore_mode=None, cache_dir=None):
        self.tern = list(tern)
        self.programs = list(programs)
        self.tmp = tmp
        self.mode = mode
        self.restore_mode = restore_mode or mode
        self.cache_dir = cache_dir or self.path("aot-cache")

    def wasm(self, name):
        p = find_wasm(self.programs, name)
        if p is None:
            raise Failure(f"{name}.wasm not found in {self.programs}")
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def fresh_dir(self, name):
        path = self.path(name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def engine_args(self, mode):
        """`--mode MODE` plus, for compiled modes, the --cache-dir given to
        the script or else a cache in the case's temporary directory (never
        the user's ~/.cache)."""
        if mode == "interp":
            return ["--mode", "interp"]
        return ["--mode", mode, "--cache-dir", self.cache_dir]

    def run_bytes(self, args, stdin=b"", env=None, timeout=TIMEOUT, tern=None):
        """Runs `tern ARGS` (or another tern command): (exit status,
        stdout bytes, stderr text)."""
        p = subprocess.run((tern or self.tern) + args, input=stdin, capture_output=True, timeout=timeout,
                           env=env)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def run(self, args, stdin=b"", env=None, timeout=TIMEOUT, tern=None):
        """Runs `tern ARGS`: (exit status, stdout text, stderr text)."""
        rc, out, err = self.run_bytes(args, stdin, env, timeout, tern)
        return rc, out.decode(errors="replace"), err

    def start(self, args, stdin=subprocess.DEVNULL):
        return subprocess.Popen(self.tern + args, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


def tern_command(text):
    """--tern's value as a command list: an absolute binary path, possibly
    after a runner (e.g. "qemu-s390x build-s390x/tern")."""
    words = shlex.split(text)
    if words and os.path.exists(words[-1]):
        words[-1] = os.path.abspath(words[-1])
    return words


class Cases:
    """A registry of test cases: decorate functions taking an Env. ctest
    finds them (`--list`, cmake/Testing.cmake): a new case needs no CMake
    edit.

        @case                 a case ctest runs (in the interpreter)
        @case.also_in("aot", "interp:jit")
                              ... and runs again as its own ctest in each
                              engine named, MODE or MODE:RESTORE_MODE
                              (--mode, --restore-mode), listed by
                              --list-engine-runs
        @case.on_request      run only when named (it needs what ctest does
                              not have, e.g. a cross-built tern), not listed
        @case.needs_compiler  a case ctest runs only in builds with the
                              compiler (left out by --list --without-compiler)
    """

    def __init__(self, name):
        self.name = name
        self.cases = {}
        self.listed = []
        self.compiler_only = set()
        self.engine_runs = []  # (case, mode, restore mode)

    def _register(self, fn):
        name = fn.__name__.rstrip("_")
        self.cases[name] = fn
        return name

    def __call__(self, fn):
        self.listed.append(self._register(fn))
        return fn

    def also_in(self, *engines):
        def register(fn):
            self(fn)
            for e in engines:
                mode, _, restore = e.partition(":")
                self.engine_runs.append((fn.__name__.rstrip("_"), mode, restore or mode))
            return fn
        return register

    def needs_compiler(self, fn):
        self(fn)
        self.compiler_only.add(fn.__name__.rstrip("_"))
        return fn

    def on_request(self, fn):
        self._register(fn)
        return fn

    def main(self, description, add_arguments=None, make_env=None):
        """Parses --tern, --programs (colon-separated), --mode,
        --restore-mode and the case names; runs each case in its own
        temporary directory; prints `CASE: ok` or `CASE: FAILED: why`.
        Returns the exit status."""
        ap = argparse.ArgumentParser(description=description)
        ap.add_argument("--tern", help="tern command (may include a runner)")
        ap.add_argument("--programs",
                        help="directories with the .wasm programs (colon-separated)")
        ap.add_argument("--mode", default="interp", help="engine of the runs")
        ap.add_argument("--restore-mode", help="engine of the restores (default: --mode)")
        ap.add_argument("--cache-dir", help="compiled-code cache for aot and jit runs "
                        "(default: one in each case's temporary directory)")
        ap.add_argument("--list", action="store_true",
                        help="print the names of the cases ctest runs")
        ap.add_argument("--without-compiler", action="store_true",
                        help="with --list: leave out the cases that need the compiler")
        ap.add_argument("--list-engine-runs", action="store_true",
                        help="print `CASE MODE RESTORE_MODE` for each run of a case in "
                        "another engine that ctest makes")
        if add_arguments:
            add_arguments(ap)
        ap.add_argument("cases", nargs="*")
        args = ap.parse_args()
        if args.list:
            print("\n".join(n for n in self.listed
                            if not (args.without_compiler and n in self.compiler_only)))
            return 0
        if args.list_engine_runs:
            print("\n".join(" ".join(run) for run in self.engine_runs))
            return 0
        if not args.tern or not args.programs:
            ap.error("--tern and --programs are required")
        names = args.cases or list(self.listed)
        unknown = [n for n in names if n not in self.cases]
        if unknown:
            sys.exit(f"unknown cases {unknown}; cases: {', '.join(self.cases)}")
        programs = [os.path.abspath(d) for d in args.programs.split(":")]
        failed = 0
        for name in names:
            tmp = tempfile.mkdtemp(prefix=f"tern-{self.name}-{name}-")
            try:
                env = Env(tern_command(args.tern), programs, tmp, args.mode, args.restore_mode,
                          args.cache_dir and os.path.abspath(args.cache_dir))
                if make_env:
                    env = make_env(env, args)
                self.cases[name](env)
                print(f"{name}: ok", flush=True)
            except (Failure, subprocess.TimeoutExpired) as e:
                failed += 1
                print(f"{name}: FAILED: {e}", flush=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return 1 if failed else 0
