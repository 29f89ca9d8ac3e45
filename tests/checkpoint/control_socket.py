#!/usr/bin/env python3
"""The control socket (`tern run --control SOCKET`) attacked: its file mode
under umask 0, a client of another user, a client that connects and says
nothing, requests racing a `checkpoint --stop` and the program's end, lines
longer than the server reads, unknown flags and commands. Each case fails
on a tern whose control socket follows the umask, serves one client at a
time, truncates long lines or takes unknown flags for file names.

No timing assertions: a hang fails because every process and every client
has a (generous) time limit.

    control_socket.py --tern build/tern --programs DIR[:DIR...] CASE...
"""

import os
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (IDLE_LIMIT, Cases, Failure, expect, expect_equal, finish,  # noqa: E402
                     kill_if_running, read_until, run_process, start, wait_for)

case = Cases("control")

# The replies a client may get once the program is over (the supervisor's
# words), besides not reaching the socket at all.
ENDED = ("error the program has ended", "error the program has stopped after its checkpoint to ")


def wait_socket(proc, path):
    def ready():
        if proc.poll() is not None:
            raise Failure(f"tern exited ({proc.returncode}) before creating {path}")
        return os.path.exists(path)
    wait_for(ready, f"the control socket {path}")


def raw_request(path, data, shut_write=False):
    """Sends `data` as is and returns everything the server answers until it
    closes (bytes), or None if the socket cannot be reached. A server
    silent for IDLE_LIMIT seconds is a failure (testlib.py, "Time limits")."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(IDLE_LIMIT)
    try:
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        try:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed already; read what it said
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        return reply
    except socket.timeout:
        raise Failure(f"no reply to {data[:80]!r} within {IDLE_LIMIT} s")
    finally:
        s.close()


def client(env, sock, *args):
    """`tern checkpoint --control SOCK ARGS`: (exit status, stdout, stderr)."""
    return env.run(["checkpoint", "--control", sock, *args])


def expect_answered(rc, out, err, what):
    """A client got an answer: success, or one clear error line (the program
    is over, or the socket is already gone)."""
    if rc == 0:
        expect(out.startswith(("checkpoint written to ", "running ", "starting ")),
               f"{what}: {out!r}")
        return
    lines = err.splitlines()
    expect(rc == 1 and len(lines) == 1 and lines[0].startswith("tern: error: "),
           f"{what}: exit {rc}, stderr {err!r}")
    message = "error " + lines[0][len("tern: error: "):]
    expect(message.startswith(ENDED) or "cannot reach the control socket" in message,
           f"{what}: unexpected error {lines[0]!r}")


# --- the socket file --------------------------------------------------------------

@case
def umask0(env):
    """Under umask 0 the socket is still 0600: no other local user may ask
    tern to write a snapshot over a file tern's user owns."""
    sock = env.path("umask.sock")
    proc = start(env.tern + ["run", "--control", sock, env.wasm("sleeper"), "20", "50"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: os.umask(0))
    try:
        wait_socket(proc, sock)
        mode = os.lstat(sock).st_mode
        expect(stat.S_ISSOCK(mode), f"{sock} is not a socket")
        expect_equal(oct(stat.S_IMODE(mode)), oct(0o600), "control socket mode under umask 0")
        rc, out, err = client(env, sock, "--status")
        expect_equal(rc, 0, f"status from tern's own user ({err})")
        rc, _, err = finish(proc)
        expect_equal(rc, 0, f"program exit status ({err})")
    finally:
        kill_if_running(proc)
    expect(not os.path.exists(sock), "the control socket was left behind")


@case
def other_user(env):
    """A client of another user is refused even when the socket file lets
    it connect (SO_PEERCRED): here the test widens the mode itself. Needs
    root to become another user; elsewhere the case only checks that
    tern's own user is served."""
    os.chmod(env.tmp, 0o755)  # the other user must reach the socket
    sock = env.path("peer.sock")
    # The program runs until its stdin is closed (by finish() below), not
    # for a fixed time: on a busy machine the other user's child may
    # connect late, and must still find the socket.
    proc = env.start(["run", "--control", sock, env.wasm("echo")], stdin=subprocess.PIPE)
    try:
        wait_socket(proc, sock)
        if os.geteuid() == 0:
            os.chmod(sock, 0o666)
            reply = as_other_user(sock, b"status\n")
            expect(reply.startswith("error permission denied: uid 65534"),
                   f"another user's request: {reply!r}")
        else:
            print("other_user: not root; only tern's own user is checked")
        rc, out, err = client(env, sock, "--status")
        expect(rc == 0 and out.startswith("running "), f"own user's status: {rc} {out!r} {err!r}")
        rc, _, err = finish(proc)
        expect_equal(rc, 0, f"program exit status ({err})")
    finally:
        kill_if_running(proc)


def as_other_user(sock, request):
    """Sends `request` from a child process running as uid/gid 65534
    (nobody); returns the reply (or the child's error) as text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec, so nothing else needs to be readable by nobody
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(IDLE_LIMIT)
            s.connect(sock)
            try:
                s.sendall(request)
            except OSError:
                pass  # refused and closed before the request: read why
            reply = s.recv(4096)
        except Exception as e:
            reply = f"child: {e}".encode()
        os.write(w, reply)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        reply = f.read()
    os.waitpid(pid, 0)
    return reply.decode(errors="replace")


# --- clients that do not behave ---------------------------------------------------

@case
def silent_client(env):
    """A client that connects and sends nothing delays no one: other
    requests are answered meanwhile, and when the program ends tern exits
    (telling the silent client so) instead of waiting for its line."""
    sock = env.path("silent.sock")
    snap = env.path("silent.snap")
    proc = env.start(["run", "--control", sock, env.wasm("sleeper"), "30", "50"])
    silent = socket.socket(socket.AF_UNIX)
    silent.settimeout(IDLE_LIMIT)
    try:
        read_until(proc, "tick 0 ")
        silent.connect(sock)
        rc, out, err = client(env, sock, "--status")
        expect(rc == 0 and out.startswith("running "), f"status beside a silent client: {err!r}")
        rc, out, err = client(env, sock, "-o", snap)
        expect_equal((rc, out), (0, f"checkpoint written to {snap}\n"),
                     f"checkpoint beside a silent client ({err})")
        rc, _, err = finish(proc)
        expect_equal(rc, 0, f"exit status with a silent client still connected ({err})")
        reply = silent.recv(4096)
        expect_equal(reply, b"error the program has ended\n", "what the silent client is told")
    finally:
        silent.close()
        kill_if_running(proc)


@case
def long_lines(env):
    """A line longer than the server's buffer is refused, not cut and
    executed; so are unknown flags (not file names), unknown commands,
    arguments a command does not take, control bytes and a last line
    without its newline. Nothing is written for any of them."""
    work = env.fresh_dir("cwd")  # tern's directory: where a flag taken as a path would land
    sock = env.path("long.sock")
    proc = start(env.tern + ["run", "--control", sock, "--checkpoint-to",
                             env.path("default.snap"), env.wasm("sleeper"), "40", "50"],
                 cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc, "tick 0 ")
        target = env.path("cut.snap")
        # What a server reading 4096 bytes would execute: `checkpoint TARGET`.
        line = f"checkpoint {target}".ljust(20000) + "--stop\n"
        reply = raw_request(sock, line.encode()).decode()
        expect(reply.startswith("error the request line is longer than"), f"long line: {reply!r}")
        expect(not os.path.exists(target), "a cut long line was executed")
        refused = {
            b"checkpoint --sotp\n": "error checkpoint: unknown flag '--sotp'",
            b"checkpoint --stop --force " + target.encode() + b"\n":
                "error checkpoint: unknown flag '--force'",
            b"checkpoint -o " + target.encode() + b"\n": "error checkpoint: unknown flag '-o'",
            b"status --verbose\n": "error status: unknown flag '--verbose'",
            b"status now\n": "error status takes no argument",
            b"frobnicate\n": "error unknown command 'frobnicate'",
            b"\n": "error empty request",
            b"checkpoint \x1b[2J" + target.encode() + b"\n": "error the request holds a control",
        }
        for request, expected in refused.items():
            reply = raw_request(sock, request).decode()
            expect(reply.startswith(expected), f"{request!r}: {reply!r} (wanted {expected!r})")
        reply = raw_request(sock, b"checkpoint " + target.encode(), shut_write=True).decode()
        expect(reply.startswith("error the request line has no newline"), f"no newline: {reply!r}")
        expect_equal(sorted(os.listdir(work)), [], "files written in tern's directory")
        expect(not os.path.exists(target) and not os.path.exists(env.path("default.snap")),
               "a refused request wrote a snapshot")
        # What the protocol does allow: a path with spaces, after `--` one
        # that starts with a dash, and the client's -o relative to its own
        # directory.
        spaced = env.path("with  two spaces.snap")
        reply = raw_request(sock, f"checkpoint {spaced}\n".encode()).decode()
        expect_equal(reply, f"ok {spaced}\n", "a path with spaces")
        reply = raw_request(sock, b"checkpoint -- -dash.snap\n").decode()
        expect_equal(reply, "ok -dash.snap\n", "a path after --")
        expect(os.path.exists(os.path.join(work, "-dash.snap")), "-dash.snap not in tern's directory")
        client_dir = env.fresh_dir("client")
        p = run_process(env.tern + ["checkpoint", "--control", sock, "-o", "rel.snap"],
                        cwd=client_dir)
        expect_equal((p.rc, p.out.decode()),
                     (0, f"checkpoint written to {os.path.join(client_dir, 'rel.snap')}\n"),
                     f"relative -o ({p.err.decode()})")
        rc, _, err = finish(proc)
        expect_equal(rc, 0, f"program exit status ({err})")
    finally:
        kill_if_running(proc)


# --- races with the end of the program --------------------------------------------

class Spammer(threading.Thread):
    """Sends `checkpoint PATH` and `status` requests in a loop until the
    socket is gone; records every reply, and fails on a hang (no reply
    within the time limit) or a connection closed without one."""

    def __init__(self, sock, snap):
        super().__init__(daemon=True)
        self.sock, self.snap, self.replies, self.error = sock, snap, [], None

    def run(self):
        try:
            n = 0
            while True:
                request = b"status\n" if n % 2 else f"checkpoint {self.snap}\n".encode()
                reply = raw_request(self.sock, request)
                if reply is None:
                    return  # the socket is gone: tern has ended
                self.replies.append(reply.decode())
                n += 1
        except Exception as e:  # reported by the test
            self.error = e

    def check(self):
        self.join(IDLE_LIMIT)
        expect(not self.is_alive(), "a client is still waiting for its reply")
        if self.error:
            raise self.error
        for reply in self.replies:
            expect(reply.startswith(("ok ", "running ", "starting ") + ENDED),
                   f"unexpected reply {reply!r}")


@case
def stop_race(env):
    """Requests from several clients while `checkpoint --stop` ends the run:
    tern exits, the stop's snapshot continues the program, and every
    request gets a reply (seen to deadlock tern in 3 of 45 tries)."""
    rc, ref, _ = env.run(["run", env.wasm("spinner"), "40"])
    expect_equal(rc, 0, "reference run")
    for trial in range(12):
        sock, snap = env.path(f"race{trial}.sock"), env.path(f"race{trial}.snap")
        proc = env.start(["run", "--control", sock, env.wasm("spinner"), "40"])
        try:
            head = read_until(proc, "round 0 ")
            spammers = [Spammer(sock, env.path(f"race{trial}-{i}.snap")) for i in range(4)]
            for s in spammers:
                s.start()
            rc, out, err = client(env, sock, "-o", snap, "--stop")
            expect_equal((rc, out), (0, f"checkpoint written to {snap}\n"), f"--stop ({err})")
            rc, rest, err = finish(proc)
            expect_equal(rc, 0, f"trial {trial}: exit status after --stop ({err})")
            for s in spammers:
                s.check()
        finally:
            kill_if_running(proc)
        rc, restored, err = env.run(["restore", snap])
        expect_equal((rc, head + rest + restored), (0, ref),
                     f"trial {trial}: output before the stop + restored output ({err})")
        for name in os.listdir(env.tmp):
            if name.startswith(f"race{trial}"):
                os.unlink(env.path(name))


@case
def end_race(env):
    """Requests in a loop while a short program ends: every one is answered
    (`error the program has ended` once it has) and tern always exits
    (1 run in 10-80 used to hang tern and the client)."""
    rc, ref, _ = env.run(["run", env.wasm("sleeper"), "2", "1"])
    for trial in range(40):
        sock = env.path(f"end{trial}.sock")
        proc = env.start(["run", "--control", sock, env.wasm("sleeper"), "2", "1"])
        try:
            wait_socket_or_end(proc, sock)
            spammers = [Spammer(sock, env.path(f"end{trial}-{i}.snap")) for i in range(2)]
            for s in spammers:
                s.start()
            rc, out, err = finish(proc)
            expect_equal((rc, out), (0, ref), f"trial {trial}: the program's run ({err})")
            for s in spammers:
                s.check()
        finally:
            kill_if_running(proc)
        for name in os.listdir(env.tmp):
            if name.startswith(f"end{trial}"):
                os.unlink(env.path(name))


def wait_socket_or_end(proc, path):
    wait_for(lambda: os.path.exists(path) or proc.poll() is not None, f"{path} or the end")


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0]))
