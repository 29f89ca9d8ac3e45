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
import json
import os
import random
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Time limits. Tests share the machine's cores with builds and other test
# runs, so a wall-clock limit on work fails when the machine is busy. The
# limits here are of two kinds, neither a constant on how long work takes:
#
# - Hangs: a test waits for its tern processes as long as they use CPU. A
#   runnable process gets some CPU every second however loaded the machine
#   is; only a process that waits for something that will not come uses
#   none. When no process a test started (nor their children) has used any
#   CPU for IDLE_LIMIT seconds, the test has hung.
# - Runaways: a process may be given a CPU budget, in CPU seconds (which do
#   not grow with load), computed from work measured in the same run, e.g.
#   ten times what the same program took uninterrupted
#   (tests/checkpoint/differential.py). Compiling gets no budget: a slow
#   compile is never a failure.
IDLE_LIMIT = 60


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


class Hung(Exception):
    """A process, or the test, stopped making progress or ran over its CPU
    budget."""


def _cpu_by_pid():
    """{pid: (parent pid, CPU seconds used, reaped children included)} of
    every process on the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name may hold spaces and parentheses: split
                # after its closing parenthesis.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick)
    return out


def _tree_cpu(table, pid):
    """CPU seconds used by `pid` and its live descendants."""
    total, todo = 0.0, [pid]
    children = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    while todo:
        p = todo.pop()
        if p in table:
            total += table[p][1]
        todo += children.get(p, [])
    return total


class Progress:
    """Whether the processes this test started (every child of this Python
    process, however it was started: testlib's start, a network namespace's
    Popen, a thread's subprocess) and their children still use CPU: see
    IDLE_LIMIT. One per Python process (cases run one after the other;
    differential.py's workers are processes)."""

    def __init__(self):
        self.last_cpu = {}
        self.last_progress = time.monotonic()
        self.last_sample = 0.0
        self.ignored = set()
        # Cases wait in several threads at once (a migration in one, the
        # target's output in another): one sample at a time.
        self.lock = threading.Lock()

    def started(self, proc):
        self.last_progress = time.monotonic()

    def ignore(self, proc):
        """Leaves proc (and its children) out: a process that uses CPU while
        it waits for the others, such as a load client polling on a timer,
        would hide their hang."""
        self.ignored.add(proc.pid)

    def check(self, proc=None, cpu_limit=None):
        """Raises Hung when nothing progressed for IDLE_LIMIT seconds, or
        when `proc` used more than `cpu_limit` CPU seconds. Samples at most
        twice a second."""
        with self.lock:
            self._check(proc, cpu_limit)

    def _check(self, proc, cpu_limit):
        now = time.monotonic()
        if now - self.last_sample < 0.5:
            return
        self.last_sample = now
        # Processes are not polled here (that would reap them under their
        # owner's feet): one that was reaped is gone from /proc.
        table = _cpu_by_pid()
        me = os.getpid()
        cpu = {pid: _tree_cpu(table, pid) for pid, (ppid, _) in table.items()
               if ppid == me and pid not in self.ignored}
        if any(c > self.last_cpu.get(pid, -1.0) for pid, c in cpu.items()):
            self.last_progress = now  # a child used CPU, or a new one started
        self.last_cpu = cpu
        if proc is not None and cpu_limit is not None and cpu.get(proc.pid, 0.0) > cpu_limit:
            raise Hung(f"used more than {cpu_limit:.1f} s of CPU")
        if now - self.last_progress > IDLE_LIMIT:
            raise Hung(f"no progress: no CPU used for {IDLE_LIMIT} s")


PROGRESS = Progress()


def start(cmd, **popen_args):
    """subprocess.Popen, watched for progress (IDLE_LIMIT)."""
    proc = subprocess.Popen(cmd, **popen_args)
    PROGRESS.started(proc)
    return proc


def communicate(proc, stdin=None, cpu_limit=None):
    """proc.communicate() while the test progresses: (stdout, stderr) as
    bytes, or raises Hung (after killing the process)."""
    while True:
        try:
            return proc.communicate(stdin, timeout=0.25)
        except subprocess.TimeoutExpired:
            stdin = None  # sent by the first call
            try:
                PROGRESS.check(proc, cpu_limit)
            except Hung:
                kill_if_running(proc)
                raise


def wait_process(proc):
    """proc.wait() while the test progresses: the exit status, or raises
    Hung (after killing the process)."""
    while True:
        try:
            return proc.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            try:
                PROGRESS.check()
            except Hung:
                kill_if_running(proc)
                raise


class Completed:
    """A finished process: exit status, output (bytes), CPU seconds used
    (with its children)."""

    def __init__(self, rc, out, err, cpu):
        self.rc, self.out, self.err, self.cpu = rc, out, err, cpu


# An unprivileged user (nobody) for tests that check what tern does without
# root: `as_nobody() + cmd` runs cmd as that user; None when this process
# cannot switch users (not root, or no setpriv).
def as_nobody():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def run_process(cmd, stdin=b"", env=None, cpu_limit=None, cwd=None, preexec_fn=None):
    """Runs cmd to the end while it progresses (see IDLE_LIMIT), within
    `cpu_limit` CPU seconds if given: a Completed, or raises Hung. The CPU
    time is exact: the process is reaped here, with its resource usage."""
    proc = start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 env=env, cwd=cwd, preexec_fn=preexec_fn)
    out, err = [], []

    def pump(stream, into):
        into.append(stream.read())

    readers = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
    for t in readers:
        t.start()

    def feed():
        try:
            proc.stdin.write(stdin)
        except OSError:  # it exited without reading everything
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        try:
            PROGRESS.check(proc, cpu_limit)
        except Hung:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers + [writer]:
        t.join()
    return Completed(proc.returncode, out[0], err[0], usage.ru_utime + usage.ru_stime)


def wait_for(predicate, what):
    """Polls until predicate() is true, for as long as the test's processes
    progress (no timing assertion: see IDLE_LIMIT)."""
    while not predicate():
        try:
            PROGRESS.check()
        except Hung as e:
            raise Failure(f"waiting for {what}: {e}")
        time.sleep(0.02)


def join(thread, what):
    """thread.join() while the test's processes progress."""
    wait_for(lambda: not thread.is_alive(), what)


class Background:
    """fn() run in a thread of its own while the test goes on (for work that
    mostly waits: a program paced by the clock, a restore waiting out a
    sleep). get() waits for it (see join) and returns its result or raises
    its exception."""

    def __init__(self, fn):
        self.result, self.error = None, None

        def run():
            try:
                self.result = fn()
            except BaseException as e:  # raised again by get()
                self.error = e
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def get(self):
        join(self.thread, "work done in the background")
        if self.error is not None:
            raise self.error
        return self.result


def in_parallel(*fns):
    """The results of fn() for each of fns, run at the same time (Background)."""
    return [b.get() for b in [Background(fn) for fn in fns]]


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


def stopped(pid):
    """Whether process PID is stopped (state T: SIGSTOP, as `tern serve`
    stops itself at a fault point for the tests)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def read_line(proc):
    """One line of the process's stdout ("" at its end), read from the pipe
    a byte at a time: a buffered readline() may take more than the line
    from the pipe, and communicate() (finish) reads the pipe itself, so
    that output was lost (seen in control_socket.stop_race: the line after
    the one waited for went missing)."""
    fd = proc.stdout.fileno()
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode(errors="replace")


def read_until(proc, text):
    """Reads the process's stdout line by line until a line contains `text`."""
    lines = []
    while True:
        line = read_line(proc)
        if not line:
            raise Failure(f"the program ended before printing {text!r}: {''.join(lines)!r}")
        lines.append(line)
        if text in line:
            return "".join(lines)


def finish(proc):
    """Waits for a started process: (exit status, stdout text, stderr text)."""
    out, err = communicate(proc)
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


class WatchedSocket:
    """A connected socket whose recv() waits for as long as the test's
    processes progress (IDLE_LIMIT), not for a fixed time: the peer may be a
    tern still compiling its module on a busy machine. Everything else is
    the socket's."""

    def __init__(self, sock):
        self._sock = sock

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._sock.close()

    def recv(self, size, *flags):
        while not select.select([self._sock], [], [], 0.25)[0]:
            try:
                PROGRESS.check()
            except Hung as e:
                raise Failure(f"nothing received on the connection: {e}")
        return self._sock.recv(size, *flags)


def connect(port, host="127.0.0.1"):
    """A connection to host:port (a WatchedSocket), retried until something
    listens there, while the test's processes progress."""
    while True:
        try:
            return WatchedSocket(socket.create_connection((host, port)))
        except OSError:
            try:
                PROGRESS.check()
            except Hung as e:
                raise Failure(f"nothing listens on {host} port {port}: {e}")
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

    def run_bytes(self, args, stdin=b"", env=None, tern=None, cpu_limit=None):
        """Runs `tern ARGS` (or another tern command): (exit status,
        stdout bytes, stderr text)."""
        p = run_process((tern or self.tern) + args, stdin, env, cpu_limit)
        return p.rc, p.out, p.err.decode(errors="replace")

    def run(self, args, stdin=b"", env=None, tern=None, cpu_limit=None):
        """Runs `tern ARGS`: (exit status, stdout text, stderr text)."""
        rc, out, err = self.run_bytes(args, stdin, env, tern, cpu_limit)
        return rc, out.decode(errors="replace"), err

    def start(self, args, stdin=subprocess.DEVNULL):
        return start(self.tern + args, stdin=stdin, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)


# --- incremental chains (--incremental) --------------------------------------


def chain_links(directory, name):
    """The links NAME.1, NAME.2, ... of a chain in `directory`, in order."""
    return sorted((n for n in os.listdir(directory) if re.fullmatch(re.escape(name) + r"\.\d+", n)),
                  key=lambda n: int(n.rsplit(".", 1)[1]))


def expect_chain(env, head, count):
    """HEAD.1 ... HEAD.count and nothing more; HEAD names the newest; `tern
    inspect` of the newest lists the chain: HEAD.1 self-contained, every
    later link incremental (a trigger that ignored --incremental writes
    self-contained snapshots to HEAD)."""
    directory, name = os.path.split(head)
    links = chain_links(directory, name)
    expect_equal(links, [f"{name}.{i}" for i in range(1, count + 1)], "the chain's files")
    newest = f"{head}.{count}"
    expect(os.stat(head).st_ino == os.stat(newest).st_ino, f"{head} is not the newest link")
    rc, out, err = env.run(["inspect", "--json", newest])
    expect_equal(rc, 0, f"tern inspect ({err})")
    chain = json.loads(out).get("chain", [])
    expect_equal([(os.path.basename(c["path"]), c["incremental"]) for c in chain],
                 [(f"{name}.{i}", i > 1) for i in range(count, 0, -1)],
                 "the chain tern inspect follows (newest first, incremental)")


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

    def add(self, name, fn):
        """A case made at run time (one per guest and engine, say), run
        and listed like a decorated one."""
        self.cases[name] = fn
        self.listed.append(name)

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
            except (Failure, Hung) as e:
                failed += 1
                print(f"{name}: FAILED: {e}", flush=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return 1 if failed else 0
