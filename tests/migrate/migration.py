#!/usr/bin/env python3
"""Live migration end to end: `tern serve` and `tern migrate`.

Each case moves a running program (or tries to) and checks that it ends
exactly as an uninterrupted run does: on the target when the migration
succeeds, on the source when it fails, never on both and never on none.
Cases that need two hosts make them from network namespaces (netns.py).

    migration.py --tern build/tern --programs DIR[:DIR...] [CASE...]
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (PROGRESS, Background, Cases, Failure, Hung, expect,  # noqa: E402
                     expect_equal, free_port, join, kill_if_running, run_process, start,
                     tern_command, stopped, wait_for, wait_process)
import netns  # noqa: E402

cases = Cases("migrate")
RESULT = re.compile(r"^migrated to (\S+): (\d+) rounds, ([\d.]+) MiB sent, downtime ([\d.]+) ms$")


class Lines:
    """Collects a pipe's lines in a thread, so a test can wait for one."""

    def __init__(self, pipe):
        self.lines = []
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.cv:
                self.lines.append(raw.decode(errors="replace"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # end
            self.cv.notify_all()

    def wait(self, pattern):
        """The first line matching `pattern` (a regular expression), waited
        for as long as the test's processes progress (testlib.IDLE_LIMIT)."""
        with self.cv:
            while True:
                for line in self.lines:
                    if line is not None and re.search(pattern, line):
                        return line
                if None in self.lines:
                    raise Failure(f"output ended without {pattern!r}: {self.text()!r}")
                self.cv.wait(0.25)
                try:
                    PROGRESS.check()
                except Hung as e:
                    raise Failure(f"waiting for {pattern!r}: {e}: {self.text()!r}")

    def text(self):
        return "".join(l for l in self.lines if l is not None)

    def finish(self):
        join(self.thread, "the end of a process's output")
        return self.text()


class Proc:
    """A started tern process whose stdout and stderr are collected."""

    def __init__(self, popen):
        self.p = popen
        self.out = Lines(popen.stdout)
        self.err = Lines(popen.stderr)

    def wait(self):
        try:
            wait_process(self.p)
        except Hung as e:
            raise Failure(f"process {self.p.args[:4]} did not end ({e}): "
                          f"{self.err.text()[-600:]!r}")
        return self.p.returncode, self.out.finish(), self.err.finish()


def serve_log_lines(err):
    """serve's own lines (`tern serve --verbose`) left out of the program's stderr."""
    return "".join(l for l in err.splitlines(keepends=True) if not l.startswith("tern: serve: "))


class World:
    """One case: keys, the reference run, sources, targets, migrations;
    optionally on two network-namespace hosts."""

    def __init__(self, env, hosts=None):
        self.env = env
        self.hosts = hosts
        self.keys = {}
        self.procs = []  # started on loopback (TwoHosts ends its own)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Ends what a failed case left running (a serve waiting for ever,
        a source held at --pause-at)."""
        for p in self.procs:
            kill_if_running(p)
        return False

    def keep(self, popen):
        self.procs.append(popen)
        return popen

    def key(self, name="site"):
        if name not in self.keys:
            path = self.env.path(f"{name}.key")
            rc, out, err = self.env.run(["keygen", path])
            expect(rc == 0, f"tern keygen: {err}")
            key_id = re.search(r"key (\w+) written", out).group(1)
            self.keys[name] = (path, key_id)
        return self.keys[name][0]

    def key_id(self, name="site"):
        self.key(name)
        return self.keys[name][1]

    def start(self, host, args, env=None, stdin=subprocess.DEVNULL):
        cmd = self.env.tern + args
        if self.hosts:
            p = self.hosts.start(host, cmd, env=env, stdin=stdin)
        else:
            p = self.keep(subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, env=env))
        return Proc(p)

    def target_address(self, port):
        return f"{self.hosts.b_addr}:{port}" if self.hosts else f"127.0.0.1:{port}"

    def serve(self, port, extra=(), host=None, key=None, fault=None, mode=None,
              stdin=subprocess.DEVNULL):
        """`tern serve --once --verbose` on host B (or loopback); returns it
        once it listens."""
        listen = f"{self.hosts.b_addr if self.hosts else '127.0.0.1'}:{port}"
        env = dict(os.environ)
        if fault:
            env["TERN_MIGRATE_FAULT"] = fault
        args = ["serve", "--listen", listen, "--key", key or self.key(), "--once", "--verbose"]
        args += self.env.engine_args(mode or self.env.restore_mode) + list(extra)
        s = self.start(host or (self.hosts.b if self.hosts else None), args, env=env, stdin=stdin)
        s.err.wait("listening on")
        return s

    def source(self, control, program_args, extra=(), host=None, stdin=subprocess.DEVNULL):
        args = (["run"] + self.env.engine_args(self.env.mode) + ["--control", control] +
                list(extra) + program_args)
        src = self.start(host or (self.hosts.a if self.hosts else None), args, stdin=stdin)
        wait_for(lambda: os.path.exists(control) or src.p.poll() is not None,
                 "the control socket")
        return src

    def migrate(self, control, to, extra=(), key=None):
        return self.env.run(["migrate", "--control", control, "--to", to,
                             "--key", key or self.key()] + list(extra))

    def reference(self, program_args, extra=(), stdin=b""):
        """The uninterrupted run, made while the case goes on (Reference)."""
        return Reference(lambda: self.env.run(["run"] + self.env.engine_args(self.env.mode) +
                                              list(extra) + program_args, stdin=stdin))


class Reference(Background):
    """An uninterrupted run made in a thread of its own: the programs here
    are paced by the clock (dirtier's steps, atomic_sleeper's waits), so a
    reference run made before the case doubled its length for nothing.
    ref[0], ref[1], ref[2] (exit status, stdout, stderr) and ref.get() wait
    for it."""

    def __getitem__(self, index):
        return self.get()[index]

    def __repr__(self):
        return repr(self.get())


def expect_migrated(rc, out, err, to):
    expect(rc == 0, f"tern migrate failed ({rc}): {err}")
    m = RESULT.match(out.strip())
    expect(m is not None, f"tern migrate printed {out!r}")
    expect_equal(m.group(1), to, "the address in the result line")
    return m


def expect_refused(rc, out, err, pattern, what):
    """tern migrate failed with one error line matching `pattern`."""
    lines = err.strip().splitlines()
    expect(rc == 1 and len(lines) == 1 and lines[0].startswith("tern: error: "),
           f"{what}: expected one error line, got {rc} {err!r} {out!r}")
    expect(re.search(pattern, lines[0]), f"{what}: {pattern!r} not in {lines[0]!r}")


def dirtier(env, mib=4, rate=1, steps=60):
    return [env.wasm("dirtier"), str(mib), str(rate), str(steps)]


def finish_moved(src, target, ref):
    """A program moved while blocked reading stdin (dirtier ... wait): its
    line goes to serve's stdin, where it reads now; the source ends, and
    source and target together print what the reference run did. Returns
    serve's stderr."""
    src.p.stdin.close()
    target.p.stdin.write(b"go\n")
    target.p.stdin.close()
    src_rc, src_out, _ = src.wait()
    t_rc, t_out, t_err = target.wait()
    expect_equal((src_rc, t_rc, src_out + t_out), (0, ref[0], ref[1]),
                 f"the program's end and output ({t_err[-400:]})")
    return t_err


# --- cases ---------------------------------------------------------------------------


@cases
def loopback(env):
    """The program stopped at stable point 2000 moves to serve on the same
    host and finishes there: the two outputs together are the reference's."""
    with World(env) as w:
        program = dirtier(env)
        ref = w.reference(program)
        expect(ref[0] == 0, f"reference run: {ref}")
        port = free_port()
        target = w.serve(port)
        control = env.path("control.sock")
        src = w.source(control, program, ["--pause-at", "2000"])
        rc, out, err = w.migrate(control, f"127.0.0.1:{port}")
        expect_migrated(rc, out, err, f"127.0.0.1:{port}")
        src_rc, src_out, src_err = src.wait()
        expect(src_rc == 0, f"the source ended with {src_rc}: {src_err}")
        t_rc, t_out, t_err = target.wait()
        expect_equal(t_rc, ref[0], "serve's exit status (the program's)")
        expect_equal(src_out + t_out, ref[1], "stdout of source and target")
        expect_equal(src_err + serve_log_lines(t_err), ref[2], "stderr")


@cases
def loopback_waiting(env):
    """A program blocked in memory.atomic.wait32 moves (issue 19 item 5; it
    waits 4 s of its 4.5 s): the final stop interrupts the wait, the target takes the waiter back
    into its queue with the time it had left, and the program finishes
    there with the reference's output (every wait timing out as it would
    have: no wakeup lost or invented)."""
    with World(env) as w:
        program = [env.wasm("atomic_sleeper")]
        ref = w.reference(program)
        expect(ref[0] == 0, f"reference run: {ref}")
        port = free_port()
        target = w.serve(port)
        control = env.path("control.sock")
        src = w.source(control, program)
        src.out.wait("waiting")
        rc, out, err = w.migrate(control, f"127.0.0.1:{port}")
        expect_migrated(rc, out, err, f"127.0.0.1:{port}")
        src_rc, src_out, src_err = src.wait()
        expect(src_rc == 0, f"the source ended with {src_rc}: {src_err}")
        t_rc, t_out, t_err = target.wait()
        expect_equal(t_rc, 0, f"serve's exit status (the program's): {t_err}")
        expect_equal(src_out + t_out, ref[1], "stdout of source and target")


@cases
def refusals(env):
    """Peers without the key, garbage, a directory serve does not grant:
    each refused with one clear error while the source runs on, and serve
    still takes the next real migration."""
    with World(env) as w:
        # 10 s of steps: still running after every refusal (each lets it go on).
        program = dirtier(env, rate=0, steps=1000)
        ref = w.reference(program)
        port = free_port()
        to = f"127.0.0.1:{port}"
        target = w.serve(port)
        control = env.path("control.sock")
        src = w.source(control, program, ["--pause-at", "3000"])

        # Another key: both ends say so.
        rc, out, err = w.migrate(control, to, key=w.key("other"))
        expect_refused(rc, out, err, r"does not hold this key", "another key")
        target.err.wait(r"holds another key \(key id " + w.key_id("other"))

        # No key: a TLS client without a pre-shared key.
        if shutil.which("openssl"):
            run_process(["openssl", "s_client", "-connect", to, "-tls1_3"])
            target.err.wait("offered no pre-shared key")
            # The key, then garbage instead of a migration stream.
            key_hex = open(w.key()).read().strip()
            run_process(["openssl", "s_client", "-connect", to, "-tls1_3", "-quiet", "-psk",
                         key_hex, "-psk_identity", "tern-psk-1:" + w.key_id()],
                        stdin=b"\x89TERNMIG" + os.urandom(3000))
            target.err.wait(r"migration stream|does not send a tern migration stream")

        # Not TLS at all.
        import socket
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(os.urandom(5000))
        target.err.wait(
            r"127\.0\.0\.1:\d+ offered no pre-shared key.*\n.*|offered no pre-shared key")

        # A directory serve does not grant.
        data = env.fresh_dir("data")
        control2 = env.path("control2.sock")
        src2 = w.source(control2, [env.wasm("files")], ["--dir", f"{data}::/data",
                                                                "--pause-at", "50"])
        rc, out, err = w.migrate(control2, to)
        expect_refused(rc, out, err, r"uses the directory /data, which this server does not grant",
                       "an ungranted directory")
        rc2, out2, err2 = src2.wait()
        expect(rc2 == 0, f"the refused program did not finish at its source: {rc2} {out2} {err2}")

        # An unknown mode.
        rc, out, err = w.migrate(control, to, ["--mode", "fast"])
        expect_refused(rc, out, err, r"no execution mode 'fast'", "an unknown mode")

        # serve took none of them: a real migration still works.
        rc, out, err = w.migrate(control, to)
        if rc != 0:
            kill_if_running(src.p)
            raise Failure(f"the last migration failed: {err} (source: {src.wait()})")
        expect_migrated(rc, out, err, to)
        src_rc, src_out, src_err = src.wait()
        t_rc, t_out, t_err = target.wait()
        expect_equal(src_out + t_out, ref[1], "stdout of source and target")
        expect_equal(t_rc, ref[0], "the program's exit status")


def needs_hosts(fn):
    """A case on two network-namespace hosts (root only)."""
    def case(env):
        if not netns.available():
            raise Failure("needs root and iproute2 to create network namespaces")
        with netns.TwoHosts() as hosts:
            fn(env, World(env, hosts))
    case.__name__ = fn.__name__
    case.__doc__ = fn.__doc__
    return case


def receiving_process(target):
    """The pid of serve's process for the connection (serve --verbose)."""
    line = target.err.wait(r"connected \(process \d+\)")
    return int(re.search(r"process (\d+)", line).group(1))


def expect_source_finishes(src, ref, what):
    """A failed migration left the program on the source, which ends it as
    an uninterrupted run does."""
    rc, out, err = src.wait()
    expect_equal((rc, out, err), ref.get(), f"{what}: the source's run")


def expect_nothing_runs(hosts, host):
    left = netns.ip("netns", "pids", host, check=False).stdout.split()
    expect(not left, f"processes left on the target: {left}")


def fault_case(w, phase, kill, extra=(), timeout="3s", program=None):
    """The target stops itself at `phase`; then it is killed (kill=True) or
    left stopped until the source's timeout. The source must finish the
    program as if nothing had happened; nothing may run on the target."""
    env, hosts = w.env, w.hosts
    program = program or dirtier(env, steps=100)
    ref = w.reference(program)
    target = w.serve(7000, fault=phase)
    control = env.path("control.sock")
    src = w.source(control, program, ["--pause-at", "3000"])
    to = w.target_address(7000)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=w.migrate(control, to, ["--timeout", timeout] + list(extra))))
    t.start()
    child = receiving_process(target)
    wait_for(lambda: stopped(child) or target.p.poll() is not None, f"the target to stop at {phase}")
    expect(target.p.poll() is None, f"serve ended before {phase}: {target.err.text()}")
    if kill:
        target.p.kill()  # serve; its receiving process dies with it
        target.wait()
        wait_for(lambda: not os.path.exists(f"/proc/{child}"), "the receiving process to die")
    join(t, "tern migrate")
    rc, out, err = result["r"]
    expect(rc == 1 and err.startswith("tern: error: ") and len(err.strip().splitlines()) == 1,
           f"tern migrate after the target {'died' if kill else 'stopped'} at {phase}: {rc} {err!r}")
    expect_source_finishes(src, ref, f"target {'killed' if kill else 'stopped'} at {phase}")
    if not kill:
        # Woken after the source gave up, it must not run the program.
        os.kill(child, signal.SIGCONT)
        wait_for(lambda: not os.path.exists(f"/proc/{child}") or
                 open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",
                 "the woken receiving process to give up")
        expect("the program runs here" not in target.err.text(),
               f"the woken target ran the program: {target.err.text()}")
        expect(target.p.poll() is None, "serve --once ended without running a program")
        target.p.kill()
        target.wait()
    expect_nothing_runs(hosts, hosts.b)
    return err


@cases
@needs_hosts
def killed_after_hello(env, w):
    """The target dies before it accepts: the source keeps its program."""
    fault_case(w, "hello", kill=True)


@cases
@needs_hosts
def killed_during_precopy(env, w):
    """The target dies after a pre-copy round, the program still running."""
    fault_case(w, "precopy", kill=True)


@cases
@needs_hosts
def killed_in_final_round(env, w):
    """The target dies while the final state arrives (the program stopped)."""
    fault_case(w, "final", kill=True)


@cases
@needs_hosts
def killed_before_confirming(env, w):
    """The target dies with the program rebuilt, before it says ready."""
    fault_case(w, "ready", kill=True)


@cases
@needs_hosts
def killed_after_commit(env, w):
    """The target dies after the commit, before it confirms the program runs:
    the source, without a confirmation, continues it."""
    fault_case(w, "commit", kill=True)


@cases
@needs_hosts
def stopped_until_timeout(env, w):
    """The target is stopped (SIGSTOP) before it says ready and stays so past
    the source's timeout: the source gives up and continues; woken, the
    target drops the program."""
    err = fault_case(w, "ready", kill=False, timeout="2s")
    expect("did not answer for 2000 ms" in err, f"not a timeout: {err!r}")


@cases
@needs_hosts
def one_at_a_time(env, w):
    """A second tern migrate while the first is under way is refused; the
    first goes on undisturbed (here: to its timeout, the target stopped)
    and the source finishes the program."""
    program = dirtier(env, steps=100)
    ref = w.reference(program)
    target = w.serve(7000, fault="ready")
    control = env.path("control.sock")
    src = w.source(control, program, ["--pause-at", "3000"])
    to = w.target_address(7000)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=w.migrate(control, to, ["--timeout", "3s"])))
    t.start()
    child = receiving_process(target)
    wait_for(lambda: stopped(child) or target.p.poll() is not None, "the target to stop")
    rc, out, err = w.migrate(control, to, ["--timeout", "3s"])
    expect_refused(rc, out, err, r"already being migrated", "a second migration")
    join(t, "tern migrate")
    rc, out, err = result["r"]
    expect(rc == 1 and "did not answer" in err, f"the first migration: {rc} {err!r}")
    expect_source_finishes(src, ref, "after two migrations at once")
    target.p.kill()
    target.wait()
    expect_nothing_runs(w.hosts, w.hosts.b)


@cases
@needs_hosts
def once_two_sources(env, w):
    """serve --once runs one program: while the first received one waits
    for its commit (stopped there), a second source is not served, gives up
    at its timeout and finishes its program itself; the first, woken,
    moves and finishes on the target."""
    program = dirtier(env, steps=100)
    ref = w.reference(program)
    target = w.serve(7000, fault="ready")
    to = w.target_address(7000)
    controls = [env.path("control1.sock"), env.path("control2.sock")]
    srcs = [w.source(c, program, ["--pause-at", "3000"]) for c in controls]
    first = {}
    t = threading.Thread(target=lambda: first.update(
        r=w.migrate(controls[0], to, ["--timeout", "60s"])))
    t.start()
    child = receiving_process(target)
    wait_for(lambda: stopped(child) or target.p.poll() is not None, "the first to be rebuilt")
    rc, out, err = w.migrate(controls[1], to, ["--timeout", "2s"])
    expect(rc == 1 and "did not answer" in err, f"the second migration: {rc} {err!r}")
    expect_source_finishes(srcs[1], ref, "the second source")
    os.kill(child, signal.SIGCONT)
    join(t, "tern migrate")
    expect_migrated(*first["r"], to)
    src_rc, src_out, _ = srcs[0].wait()
    expect(src_rc == 0, f"the first source ended with {src_rc}")
    t_rc, t_out, t_err = target.wait()
    expect_equal((t_rc, src_out + t_out), (ref[0], ref[1]), "the first program's end and output")


@cases
@needs_hosts
def link_down(env, w):
    """The link goes down while the program's memory streams over a slow
    link: the source gives up at its timeout and continues; the target
    drops what it got."""
    hosts = w.hosts
    hosts.limit_rate("8mbit")
    program = dirtier(env, mib=16, rate=1, steps=50) + ["wait"]
    ref = w.reference(program, stdin=b"go\n")
    target = w.serve(7000)
    control = env.path("control.sock")
    src = w.source(control, program, stdin=subprocess.PIPE)
    src.out.wait("ready")  # filled: 16 MiB of random pages to send; waits for stdin
    result = {}
    t = threading.Thread(target=lambda: result.update(
        r=w.migrate(control, w.target_address(7000), ["--timeout", "2s", "--no-compress"])))
    t.start()
    target.err.wait("accepted; receiving memory")
    time.sleep(0.5)  # mid-stream: 16 MiB take about 16 s at 8 Mbit/s
    hosts.link_down()
    join(t, "tern migrate")
    hosts.link_up()
    rc, out, err = result["r"]
    expect(rc == 1 and "did not answer" in err, f"tern migrate with the link down: {rc} {err!r}")
    src.p.stdin.write(b"go\n")
    src.p.stdin.close()
    expect_source_finishes(src, ref, "link down")
    # The target gives up on its own: at the source's timeout, or when the
    # source's close arrives once the link is back, whichever comes first.
    gave_up = ("failed", "did not answer", "the connection ended", "closed the channel",
               "reset by peer", "Broken pipe")
    wait_for(lambda: any(why in target.err.text() for why in gave_up), "the target to give up")
    expect("the program runs here" not in target.err.text(), "the target ran the program")
    target.p.kill()
    target.wait()


def stable_points(ref, stats):
    """The stable points of a reference run made with --stats-out `stats`."""
    import json
    rc, _, err = ref.get()
    expect(rc == 0, f"reference run: {err}")
    with open(stats) as f:
        return json.load(f)["stable_points"]


def hops(w, program, hosts_and_terns, what):
    """Moves `program` along `hosts_and_terns` [(host, tern command, engine
    args), ...]: it starts on the first and is moved to each next one,
    pausing at evenly spaced stable points on the way. The outputs of all
    the processes together must equal an uninterrupted run's."""
    env = w.env
    stats = env.path("ref-stats.json")
    ref = w.reference(program, ["--stats-out", stats])
    total = stable_points(ref, stats)
    n = len(hosts_and_terns)
    pauses = [max(1, total * (i + 1) // (n + 1)) for i in range(n - 1)]
    controls = [env.path(f"control{i}.sock") for i in range(n)]
    host0, tern0, engine0 = hosts_and_terns[0]
    procs = [Proc(w.hosts.start(host0, tern0 + ["run"] + engine0 + [
        "--control", controls[0], "--pause-at", str(pauses[0])] + program))]
    wait_for(lambda: os.path.exists(controls[0]), "the first control socket")
    results = []
    for i in range(1, n):
        host, tern, engine = hosts_and_terns[i]
        addr = w.hosts.a_addr if host == w.hosts.a else w.hosts.b_addr
        port = 7000 + i
        extra = ["--control", controls[i]]
        if i < n - 1:
            extra += ["--pause-at", str(pauses[i])]
        target = Proc(w.hosts.start(host, tern + [
            "serve", "--listen", f"{addr}:{port}", "--key", w.key(), "--once", "--verbose"] +
            engine + extra))
        target.err.wait("listening on")
        rc, out, err = w.migrate(controls[i - 1], f"{addr}:{port}")
        expect_migrated(rc, out, err, f"{addr}:{port}")
        results.append(RESULT.match(out.strip()))
        procs.append(target)
    outs, errs = [], []
    for i, p in enumerate(procs):
        rc, out, err = p.wait()
        outs.append(out)
        errs.append(serve_log_lines(err))
        if i < n - 1:
            expect(rc == 0, f"{what}: hop {i} ended with {rc}: {err[-400:]}")
    expect_equal(rc, ref[0], f"{what}: the exit status at the end")
    expect_equal("".join(outs), ref[1], f"{what}: stdout of all hops")
    expect_equal("".join(errs), ref[2], f"{what}: stderr of all hops")
    return results


@cases
@needs_hosts
def back_and_forth(env, w):
    """One program moved between two hosts 10 times, alternating engines."""
    hosts = w.hosts
    modes = ["interp", "aot", "jit"]
    chain = []
    for i in range(11):
        mode = modes[i % len(modes)]
        chain.append((hosts.a if i % 2 == 0 else hosts.b, env.tern, env.engine_args(mode)))
    hops(w, dirtier(env, mib=2, rate=2, steps=30), chain, "back and forth")


@cases.on_request
@needs_hosts
def to_s390x(env, w):
    """A program moved from x86-64 to a tern built for big-endian s390x
    (under qemu) and back, in the interpreter."""
    cross = env.cross_tern
    if not cross:
        raise Failure("needs --cross-tern (e.g. \"qemu-s390x build-s390x/tern\")")
    hosts = w.hosts
    chain = [(hosts.a, env.tern, ["--mode", "interp"]),
             (hosts.b, ["env", "TERN_PAGEMAP=0"] + cross, ["--mode", "interp"]),
             (hosts.a, env.tern, ["--mode", "interp"])]
    hops(w, dirtier(env, mib=1, rate=1, steps=20), chain, "to s390x and back")


@cases
def keygen(env):
    """Keys: mode 0600, never overwritten; a key others can read is refused."""
    path = env.path("k.key")
    rc, out, err = env.run(["keygen", path])
    expect(rc == 0 and re.match(r"key [0-9a-f]{16} written to ", out), f"keygen: {rc} {out} {err}")
    expect_equal(os.stat(path).st_mode & 0o777, 0o600, "the key file's mode")
    rc, out, err = env.run(["keygen", path])
    expect_refused(rc, out, err, r"exists; a key is never overwritten", "a second keygen")
    os.chmod(path, 0o644)
    rc, out, err = env.run(["migrate", "--control", env.path("none.sock"), "--to",
                            "127.0.0.1:1", "--key", path])
    expect_refused(rc, out, err, r"accessible by others \(mode 0644\)", "a readable key")


@cases
@needs_hosts
def faster_than_link(env, w):
    """A program that rewrites its memory faster than the link carries it
    (4 MB/s over 8 Mbit/s) still moves: the rounds stop shrinking or run
    out, it stops and the rest goes; its result is an uninterrupted run's."""
    w.hosts.limit_rate("8mbit")
    # 4 MB/s over 1 MB/s: each round of 4 MiB takes 4 s, in which the whole
    # memory is dirty again. 25 s of steps, more than the migration takes.
    program = dirtier(env, mib=4, rate=4, steps=2500)
    ref = w.reference(program)
    target = w.serve(7000)
    control = env.path("control.sock")
    src = w.source(control, program)
    src.out.wait("ready")
    rc, out, err = w.migrate(control, w.target_address(7000), ["--max-rounds", "3", "--timeout",
                                                               "30s"])
    m = expect_migrated(rc, out, err, w.target_address(7000))
    rounds, downtime = int(m.group(2)), float(m.group(4))
    expect(rounds > 1, f"no pre-copy round ran: {out}")
    expect(downtime > 0, f"no downtime reported: {out}")
    src_rc, src_out, src_err = src.wait()
    t_rc, t_out, t_err = target.wait()
    expect_equal((t_rc, src_out + t_out), (ref[0], ref[1]), "the program's end and output")
    print(f"  ({out.strip()})")


@cases
def from_restore(env):
    """A program started by `tern restore --control` moves too (issue 15
    item 4): stopped at stable point 1500 into a snapshot, restored with a
    control socket, migrated to serve: the three parts of its output are
    the uninterrupted run's."""
    with World(env) as w:
        program = dirtier(env)
        ref = w.reference(program)
        snap = env.path("first.snap")
        rc, first_out, first_err = env.run(["run", "--mode", "interp", "--checkpoint-to", snap,
                                            "--checkpoint-at", "1500", "--stop-after-checkpoint"] +
                                           program)
        expect(rc == 0 and os.path.exists(snap), f"the first part: {rc} {first_err}")
        port = free_port()
        target = w.serve(port)
        control = env.path("control.sock")
        src = w.start(None, ["restore", "--mode", "interp", "--control", control, "--pause-at",
                             "3000", snap])
        wait_for(lambda: os.path.exists(control) or src.p.poll() is not None, "the control socket")
        rc, out, err = w.migrate(control, f"127.0.0.1:{port}")
        expect_migrated(rc, out, err, f"127.0.0.1:{port}")
        src_rc, src_out, src_err = src.wait()
        expect(src_rc == 0, f"the restored source ended with {src_rc}: {src_err}")
        t_rc, t_out, t_err = target.wait()
        expect_equal(t_rc, ref[0], f"serve's exit status (the program's): {t_err[-400:]}")
        expect_equal(first_out + src_out + t_out, ref[1],
                     "stdout of the run, the restore, the target")


@cases
def engine_it_cannot_run(env):
    """A target that cannot compile (its compiler plugin missing: as a
    build without LLVM) refuses `tern migrate --mode aot` and `--mode jit`
    with one clear error before any memory moves; the source runs on, and
    the same serve then takes the program in its own --mode interp, where
    it finishes as an uninterrupted run does."""
    with World(env) as w:
        # Blocked reading stdin until it has moved: it cannot end meanwhile.
        program = dirtier(env, mib=4, rate=1, steps=50) + ["wait"]
        ref = w.reference(program, stdin=b"go\n")
        port = free_port()
        to = f"127.0.0.1:{port}"
        listen = ["serve", "--listen", to, "--key", w.key(), "--once", "--verbose", "--mode",
                  "interp", "--cache-dir", env.fresh_dir("empty-cache")]
        target = w.start(None, listen,
                         env=dict(os.environ, TERN_COMPILER_PLUGIN=env.path("none.so")),
                         stdin=subprocess.PIPE)
        target.err.wait("listening on")
        control = env.path("control.sock")
        src = w.source(control, program, stdin=subprocess.PIPE)
        src.out.wait("ready")
        for i, mode in enumerate(("aot", "jit")):
            rc, out, err = w.migrate(control, to, ["--mode", mode])
            expect_refused(rc, out, err, r"refused the program: .*(no compiler|compiler plugin)",
                           f"--mode {mode}")
            wait_for(lambda: target.err.text().count("serve: refused the program from") == i + 1,
                     f"serve to log its refusal of --mode {mode}")
        expect("the program runs here" not in target.err.text(), "the target ran a refused program")
        rc, out, err = w.migrate(control, to)
        expect_migrated(rc, out, err, to)
        t_err = finish_moved(src, target, ref)
        expect_equal(len(re.findall(r"the program runs here \(interp mode", t_err)), 1,
                     "the program ran on the target, in the interpreter")


@cases
def failed_before_pause(env):
    """A migration that fails while the program is still on its way to its
    --pause-at point (here: blocked reading stdin before it) is a control
    request handled: the program does not stop at that point to wait for
    one more, but runs on to the end as an uninterrupted run does (it was
    held there for ever, a287a13)."""
    with World(env) as w:
        program = dirtier(env, mib=4, rate=1, steps=50) + ["wait"]
        stats = env.path("reference-stats.json")
        ref = w.reference(program, ["--stats-out", stats], stdin=b"go\n")
        expect(ref[0] == 0, f"reference run: {ref}")
        with open(stats) as f:
            total = json.load(f)["stable_points"]
        control = env.path("control.sock")
        # Near the end: the program reaches it well after reading stdin.
        src = w.source(control, program, ["--pause-at", str(total - 1000)],
                       stdin=subprocess.PIPE)
        src.out.wait("ready")
        rc, out, err = w.migrate(control, f"127.0.0.1:{free_port()}")  # nobody listens
        expect_refused(rc, out, err, r"", "a migration to a port nobody listens on")
        src.p.stdin.write(b"go\n")
        src.p.stdin.close()
        rc, out, err = src.wait()
        expect_equal((rc, out, err), ref.get(), "the source's run")


@cases.needs_compiler
def while_starting(env):
    """A migration asked for as soon as the source's control socket exists,
    while its tern still compiles the module (--mode aot, an empty cache):
    it waits for the program to run, connects only then (a287a13: it used
    to connect first and keep serve waiting for the offer, past serve's
    10 s, while a big module compiled) and moves it; the program, blocked
    on stdin until it has moved, finishes on the target as uninterrupted."""
    with World(env) as w:
        program = dirtier(env, mib=2, rate=1, steps=20) + ["wait"]
        ref = w.reference(program, stdin=b"go\n")
        port = free_port()
        to = f"127.0.0.1:{port}"
        target = w.serve(port, stdin=subprocess.PIPE)
        control = env.path("control.sock")
        src = w.start(None, ["run", "--mode", "aot", "--cache-dir", env.fresh_dir("cold-cache"),
                             "--control", control] + program, stdin=subprocess.PIPE)
        wait_for(lambda: os.path.exists(control) or src.p.poll() is not None, "the control socket")
        rc, out, err = w.migrate(control, to)
        expect_migrated(rc, out, err, to)
        finish_moved(src, target, ref)


def status_engine(env, control):
    """The engine a running program's tern reports (`tern checkpoint --status`)."""
    rc, out, err = env.run(["checkpoint", "--control", control, "--status"])
    expect(rc == 0, f"tern checkpoint --status: {err}")
    m = re.search(r"engine=(\S+)", out)
    expect(m is not None, f"no engine in the status {out!r}")
    return m.group(1)


@cases.needs_compiler
def mode_override(env):
    """`tern migrate --mode aot` overrides serve's --mode interp: the target
    compiles the module (into serve's --cache-dir) and runs the program in
    compiled code, as its status and a checkpoint it writes say; the output
    is the uninterrupted run's."""
    with World(env) as w:
        program = dirtier(env)
        ref = w.reference(program)
        port = free_port()
        cache = env.fresh_dir("target-cache")
        target_control = env.path("target.sock")
        # Held at a stable point after the move until a checkpoint request.
        target = w.serve(port, ["--cache-dir", cache, "--control", target_control,
                                "--pause-at", "3500"], mode="interp")
        control = env.path("control.sock")
        src = w.source(control, program, ["--pause-at", "3000"])
        expect_equal(status_engine(env, control), "interp", "the source's engine")
        rc, out, err = w.migrate(control, f"127.0.0.1:{port}", ["--mode", "aot"])
        expect_migrated(rc, out, err, f"127.0.0.1:{port}")
        target.err.wait(r"the program runs here \(aot mode")
        expect_equal(status_engine(env, target_control), "aot", "the target's engine")
        expect(os.listdir(cache), "serve compiled nothing into its --cache-dir")
        snap = env.path("on-target.snap")
        rc, out, err = env.run(["checkpoint", "--control", target_control, "-o", snap])
        expect(rc == 0, f"checkpoint on the target: {err}")
        rc, out, err = env.run(["inspect", "--json", snap])
        import json
        expect_equal(json.loads(out)["host"]["engine"], "aot",
                     "the engine the target's snapshot names")
        src_rc, src_out, _ = src.wait()
        t_rc, t_out, t_err = target.wait()
        expect_equal((t_rc, src_out + t_out), (ref[0], ref[1]),
                     f"the program's end and output {t_err}")


@cases
def max_downtime(env):
    """--max-downtime is the pre-copy's stopping rule (docs/cli.md): the
    program stops once what is left could go within it. A program
    rewriting memory without pause (100 MB/s) is moved twice: with 1000 s
    it stops after the first round (2 rounds: that one and the final);
    with 0 ms what is left is never small enough, so rounds go on until
    --max-rounds 4 or they stop shrinking (3 to 5 rounds). Both finish
    with the uninterrupted run's output."""
    with World(env) as w:
        program = dirtier(env, mib=4, rate=100, steps=1000)
        ref = w.reference(program)
        rounds = {}
        for limit in ("1000000", "0"):
            port = free_port()
            target = w.serve(port)
            control = env.path(f"control-{limit}.sock")
            src = w.source(control, program)
            src.out.wait("ready")
            rc, out, err = w.migrate(control, f"127.0.0.1:{port}",
                                     ["--max-downtime", limit, "--max-rounds", "4"])
            m = expect_migrated(rc, out, err, f"127.0.0.1:{port}")
            rounds[limit] = int(m.group(2))
            src_rc, src_out, _ = src.wait()
            t_rc, t_out, t_err = target.wait()
            expect_equal((t_rc, src_out + t_out), (ref[0], ref[1]),
                         f"--max-downtime {limit}: the program's end and output")
            print(f"  --max-downtime {limit}: {out.strip()}")
        # A negative value (once taken as 2^64 - 5 ms) is one clear error.
        rc, out, err = w.migrate(env.path("none.sock"), "127.0.0.1:1", ["--max-downtime", "-5"])
        expect_refused(rc, out, err, r"--max-downtime: Value -5 not in range", "--max-downtime -5")
        expect_equal(rounds["1000000"], 2, "rounds with --max-downtime 1000000")
        expect(3 <= rounds["0"] <= 5, f"rounds with --max-downtime 0: {rounds['0']}")


@cases
@needs_hosts
def serve_many(env, w):
    """`tern serve` without --once receives two programs migrated one after
    the other and runs each in its own process: both finish there with
    their own output (serve's stdout, one after the other) and status 0,
    serve staying up; SIGTERM then ends serve and leaves nothing running
    on its host, its port free again."""
    hosts = w.hosts
    programs = [dirtier(env, mib=4, rate=1, steps=60), dirtier(env, mib=2, rate=2, steps=40)]
    refs = [w.reference(p) for p in programs]
    to = w.target_address(7000)
    target = w.start(hosts.b, ["serve", "--listen", to, "--key", w.key(), "--verbose", "--mode",
                               "interp"])
    target.err.wait("listening on")
    served = ""
    pids = []
    for i, program in enumerate(programs):
        control = env.path(f"control{i}.sock")
        src = w.source(control, program, ["--pause-at", "2000"])
        rc, out, err = w.migrate(control, to)
        expect_migrated(rc, out, err, to)
        pids.append(receiving_process_after(target, pids))
        src_rc, src_out, src_err = src.wait()
        expect(src_rc == 0, f"source {i} ended with {src_rc}: {src_err}")
        steps = program[-1]
        target.out.wait(rf"^done {steps} steps")  # the program's last line
        wait_for(lambda: target.err.text().count("the program ended with status 0") == i + 1,
                 f"program {i} to end on the target")
        expect_equal(src_out + target.out.text()[len(served):], refs[i][1],
                     f"program {i}: stdout of source and target")
        served = target.out.text()
    expect(pids[0] != pids[1], f"both programs ran in process {pids[0]}")
    expect(target.p.poll() is None, f"serve ended: {target.err.text()}")
    expect_equal(target.err.text().count("the program runs here"), 2, "programs run by serve")
    target.p.terminate()
    rc, _, err = target.wait()
    expect_nothing_runs(hosts, hosts.b)
    # The port is free: a new serve listens there.
    again = w.start(hosts.b, ["serve", "--listen", to, "--key", w.key(), "--verbose"])
    again.err.wait("listening on")
    again.p.kill()
    again.wait()


def receiving_process_after(target, seen):
    """The pid of serve's process for the newest connection (serve --verbose)."""
    def newest():
        found = re.findall(r"connected \(process (\d+)\)", target.err.text())
        return [int(p) for p in found if int(p) not in seen]
    wait_for(lambda: newest(), "serve's process for the connection")
    return newest()[0]


# System calls that create, change or remove a file by name, and the open
# flags that write: none may touch a file during a migration (strace -e
# trace=%file names every file system call; reads are fine).
WRITING_CALLS = re.compile(r"^(creat|mkdir|mkdirat|mknod|mknodat|rename|renameat|renameat2|link|"
                           r"linkat|symlink|symlinkat|unlink|unlinkat|truncate|rmdir)$")
WRITING_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE|O_APPEND")
STRACE_LINE = re.compile(r'^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)')


def files_written(log, allowed):
    """The file system calls in an `strace -f -e trace=%file` log that
    write, other than on device and proc files and the `allowed` paths."""
    found = []
    with open(log) as f:
        for line in f:
            m = STRACE_LINE.match(line)
            if not m or m.group(3).startswith("-"):
                continue  # not a call, or a failed one (nothing written)
            call, call_args = m.group(1), m.group(2)
            paths = re.findall(r'"([^"]*)"', call_args)
            if any(p.startswith(("/dev/", "/proc/", "/sys/")) or p in allowed for p in paths):
                continue
            if WRITING_CALLS.match(call) or (call.startswith("open") and
                                              WRITING_FLAGS.search(call_args)):
                found.append(line.strip())
    return found


@cases
def no_temp_files(env):
    """No temporary snapshot file on either side (issue 15 item 3): source
    and serve each run with an empty working directory and an empty TMPDIR
    of their own, under strace: after the migration both directories are
    still empty and neither process (nor serve's receiving process) made,
    wrote, renamed or removed any file but the source's control socket."""
    if not shutil.which("strace"):
        raise Failure("needs strace (scripts/install-deps.sh installs it)")
    with World(env) as w:
        program = dirtier(env)
        ref = w.reference(program)
        key = w.key()
        dirs = {name: env.fresh_dir(name) for name in ("src-cwd", "src-tmp", "tgt-cwd", "tgt-tmp")}

        def traced(side, args):
            log = env.path(f"{side}.strace")
            cmd = ["strace", "-f", "-qq", "-o", log, "-e", "trace=%file"] + env.tern + args
            p = w.keep(start(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=dirs[f"{side}-cwd"],
                             env=dict(os.environ, TMPDIR=dirs[f"{side}-tmp"])))
            return Proc(p), log

        port = free_port()
        target, target_log = traced("tgt", ["serve", "--listen", f"127.0.0.1:{port}", "--key", key,
                                            "--once", "--verbose", "--mode", "interp"])
        target.err.wait("listening on")
        control = env.path("control.sock")
        src, src_log = traced("src", ["run", "--mode", "interp", "--control", control, "--pause-at",
                                      "2000"] + program)
        wait_for(lambda: os.path.exists(control) or src.p.poll() is not None, "the control socket")
        rc, out, err = w.migrate(control, f"127.0.0.1:{port}")
        expect_migrated(rc, out, err, f"127.0.0.1:{port}")
        src_rc, src_out, src_err = src.wait()
        t_rc, t_out, t_err = target.wait()
        expect_equal((src_rc, t_rc, src_out + t_out), (0, ref[0], ref[1]),
                     f"the statuses and the program's output ({src_err[-300:]} {t_err[-300:]})")
        for name, d in dirs.items():
            expect_equal(os.listdir(d), [], f"files left in {name}")
        for side, log in (("source", src_log), ("target", target_log)):
            expect(os.path.getsize(log) > 0, f"strace logged nothing for the {side}")
            written = files_written(log, {control})
            expect(not written, f"the {side} wrote files: {written[:10]}")


def notes_dir(env, name):
    d = env.fresh_dir(name)
    with open(os.path.join(d, "in.txt"), "w") as f:
        f.write("abcdefgh")
    return d


@cases
@needs_hosts
def bundled_files(env, w):
    """A program with files open moves with --bundle-files to a host whose
    --dir is another directory (holding only the file it reads): its output
    file travels in the stream and goes on there; the source's is left as
    it was at the move."""
    hosts = w.hosts
    data, elsewhere = notes_dir(env, "data"), env.fresh_dir("elsewhere")
    shutil.copy2(os.path.join(data, "in.txt"), elsewhere)
    target = w.serve(7000, ["--dir", f"{elsewhere}::/data"], stdin=subprocess.PIPE)
    control = env.path("control.sock")
    src = Proc(hosts.start(hosts.a, env.tern + ["run", "--dir", f"{data}::/data", "--control",
                                                 control, env.wasm("notes")],
                           stdin=subprocess.PIPE))
    src.out.wait("ready")  # now blocked reading stdin
    rc, out, err = w.migrate(control, w.target_address(7000), ["--bundle-files"])
    expect_migrated(rc, out, err, w.target_address(7000))
    expect_equal(src.wait()[:2], (0, "ready\n"), "the source")
    # The program reads serve's stdin now (serve --once runs it in the foreground).
    target.p.stdin.write(b"go\n")
    target.p.stdin.close()
    t_rc, t_out, t_err = target.wait()
    expect_equal((t_rc, t_out), (0, "done\n"), f"the target ({t_err})")
    expect_equal(read(os.path.join(elsewhere, "out.txt")), "before:abcd\nafter:efgh go\n",
                 "the output file, carried and continued on the target")
    expect_equal(read(os.path.join(data, "out.txt")), "before:abcd\n", "the source's file")
    expect_equal(sorted(os.listdir(elsewhere)), ["in.txt", "out.txt"], "no temporary files")


@cases
@needs_hosts
def missing_file(env, w):
    """Without --bundle-files, a target whose directory lacks the program's
    output file refuses it after the final state; the program goes on at
    the source with its file."""
    hosts = w.hosts
    data, elsewhere = notes_dir(env, "data"), env.fresh_dir("elsewhere")
    shutil.copy2(os.path.join(data, "in.txt"), elsewhere)
    target = w.serve(7000, ["--dir", f"{elsewhere}::/data"])
    control = env.path("control.sock")
    src = Proc(hosts.start(hosts.a, env.tern + ["run", "--dir", f"{data}::/data", "--control",
                                                 control, env.wasm("notes")],
                           stdin=subprocess.PIPE))
    src.out.wait("ready")
    rc, out, err = w.migrate(control, w.target_address(7000))
    expect_refused(rc, out, err, r"failed to receive the program: .*/data/out\.txt", "missing file")
    src.p.stdin.write(b"go\n")
    src.p.stdin.close()
    expect_equal(src.wait()[:2], (0, "ready\ndone\n"), "the source, which kept the program")
    expect_equal(read(os.path.join(data, "out.txt")), "before:abcd\nafter:efgh go\n",
                 "the source's file")
    expect("the program runs here" not in target.err.text(), "the target ran it")
    target.p.kill()
    target.wait()


@cases
@needs_hosts
def listening_socket(env, w):
    """A server listening on 0.0.0.0 moves while it waits for a connection:
    the target binds the port again and its next client is served there;
    the connection it held comes back reset, as after a restore."""
    hosts = w.hosts
    target = w.serve(7000, ["--allow-bind", "0.0.0.0/0"])
    control = env.path("control.sock")
    src = Proc(hosts.start(hosts.a, env.tern + ["run", "--listen", "0.0.0.0:8000", "--control",
                                                 control, env.wasm("resets")]))
    # A held connection, then the program waits for the next one.
    client = run_process(hosts.command(hosts.a, [
        sys.executable, "-c", CLIENT, hosts.a_addr, "8000", "x"]))
    expect_equal(client.out, b"hi", f"the greeting ({client.err})")
    src.out.wait("recv=1 ok")
    rc, out, err = w.migrate(control, w.target_address(7000))
    expect_migrated(rc, out, err, w.target_address(7000))
    run_process(hosts.command(hosts.a, [
        sys.executable, "-c", CLIENT, hosts.b_addr, "8000", "again"]))
    t_rc, t_out, t_err = target.wait()
    expect_equal((t_rc, t_out), (0, "next connection: again\n"), f"the target ({t_err})")
    expect_equal(src.wait()[:2], (0, "restored=-1 recv=1 ok\n"), "the source")


# A client: connects (retrying), sends argv[3], prints what it receives first.
CLIENT = """
import socket, sys, time
for _ in range(500):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
        break
    except OSError:
        time.sleep(0.02)
if sys.argv[3] == "x":
    sys.stdout.write(c.recv(2).decode())
c.sendall(sys.argv[3].encode())
c.shutdown(socket.SHUT_WR)
time.sleep(0.2)
"""


def read(path):
    with open(path) as f:
        return f.read()


if __name__ == "__main__":
    def cross_argument(ap):
        ap.add_argument("--cross-tern", help="a tern for another CPU as a command, e.g. "
                        "\"qemu-s390x build-s390x/tern\" (case to_s390x)")

    def with_cross(env, args):
        env.cross_tern = tern_command(args.cross_tern) if args.cross_tern else None
        return env

    sys.exit(cases.main(__doc__.split("\n\n")[0], add_arguments=cross_argument,
                        make_env=with_cross))
