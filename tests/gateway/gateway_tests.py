#!/usr/bin/env python3
"""End-to-end tests of `tern gateway` (docs/gateway.md) on four hosts made
of network namespaces (hosts.py): clients, the gateway, and hosts a and b
where the program runs and between which it moves. Each case creates its
own namespaces and removes them, whatever happens.

The program is guests/gw_server.c (poll(), any number of pipelined
connections); the clients are load_client (native, in the clients'
namespace), which checks that every reply comes exactly once, in order and
byte for byte, and that the byte counts of both ends agree.
"""

import collections
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testlib  # noqa: E402
from hosts import ADDRESS, GATEWAY_ADDRESS, Hosts  # noqa: E402
from testlib import Failure, expect, expect_equal  # noqa: E402

cases = testlib.Cases("gateway")
SERVER_PORT = 7000
SERVE_PORT = 7100  # tern serve on the target host, plus the move's number
# gw_server's option for the cases that stop it in the middle of a big reply.
SMALL_SNDBUF = ["--sndbuf", "16384"]
RESULT = re.compile(r"^migrated to (\S+): (\d+) rounds, [\d.]+ MiB sent, downtime [\d.]+ ms$")


class World:
    """The gateway on its host, and the program wherever it runs now."""

    def __init__(self, env, hosts, hold="60s", buffer=None, extra=(), by="file"):
        self.env = env
        self.by = by  # how the program moves: "file" (checkpoint + restore) or "migrate"
        self.hosts = hosts
        self.key = env.path("gateway.key")
        rc, _, err = env.run(["keygen", self.key])
        expect(rc == 0, f"tern keygen: {err}")
        self.gateway_args = ["--key", self.key, "--hold", hold, "--verbose", *extra]
        if buffer:
            self.gateway_args += ["--buffer", buffer]
        self.gateway_log = open(env.path("gateway.log"), "wb")
        self.client_port, self.control_port = self._start_gateway(0, 0)
        self.program = None
        self.host = None
        self.moves = 0
        self.listens = True  # the program has its --listen socket (a restore grants it again)

    def _start_gateway(self, client_port, control_port):
        """Starts `tern gateway` on its host: the ports it listens on."""
        args = ["gateway", "--listen", f"0.0.0.0:{client_port}", "--control",
                f"0.0.0.0:{control_port}", *self.gateway_args]
        self.gateway = self.hosts.start("gateway", self.env.tern + args, stderr=self.gateway_log)
        line = self.gateway.stdout.readline().decode()
        m = re.search(r"clients on \S+:(\d+), control on \S+:(\d+)", line)
        expect(m, f"tern gateway's first line: {line!r} ({self.log()})")
        return int(m.group(1)), int(m.group(2))

    def restart_gateway(self):
        """Stops the gateway (SIGTERM) and starts a new instance at the same
        addresses."""
        self.gateway.terminate()
        rc = testlib.wait_process(self.gateway)
        expect(rc == 0, f"the gateway's exit status on SIGTERM: {rc} ({self.log()})")
        self.gateway_log.write(b"--- restarted\n")
        self.gateway_log.flush()
        ports = self._start_gateway(self.client_port, self.control_port)
        expect_equal(ports, (self.client_port, self.control_port), "the new gateway's ports")

    def log(self, whole=False):
        """The gateway's log: its end, or all of it."""
        self.gateway_log.flush()
        with open(self.env.path("gateway.log"), errors="replace") as f:
            text = f.read()
        return text if whole else text[-4000:]

    def control_address(self, host):
        return f"{GATEWAY_ADDRESS[host]}:{self.control_port}"

    def control_socket(self, n):
        return self.env.path(f"control{n}.sock")

    def _started(self, host, proc, control):
        self.program, self.host, self.control = proc, host, control
        # Running once its control socket answers (after the registration).
        testlib.wait_for(lambda: self._status(control) or proc.poll() is not None,
                         "the program's control socket")
        if proc.poll() is not None:
            raise Failure(f"tern on {host} ended: {self.program_log()}")

    def _status(self, control):
        if not os.path.exists(control):
            return False
        rc, out, _ = self.env.run(["checkpoint", "--control", control, "--status"])
        return rc == 0 and "running" in out

    def program_log(self):
        path = self.env.path(f"program{self.moves}.log")
        with open(path, errors="replace") as f:
            return f.read()[-4000:]

    def _log_file(self):
        return open(self.env.path(f"program{self.moves}.log"), "wb")

    def start(self, host="a", program="gw_server", args=(), gateway=True, program_args=()):
        control = self.control_socket(self.moves)
        cmd = ["run", "--listen", f"0.0.0.0:{SERVER_PORT}", "--control", control]
        if gateway:
            cmd += ["--gateway", self.control_address(host), "--key", self.key]
        proc = self.hosts.start(host, self.env.tern + cmd + list(args) +
                                [self.env.wasm(program), *program_args], stderr=self._log_file())
        self._started(host, proc, control)

    def checkpoint(self, stop=True):
        """A checkpoint of the program through its control socket: the
        snapshot's path."""
        snap = self.env.path(f"snap{self.moves}")
        args = ["checkpoint", "--control", self.control, "-o", snap]
        rc, out, err = self.env.run(args + (["--stop"] if stop else []))
        expect(rc == 0, f"tern checkpoint: {out}{err} (program: {self.program_log()})")
        if stop:
            rc = testlib.wait_process(self.program)
            expect(rc == 0, f"the stopped program's exit status {rc}: {self.program_log()}")
        return snap

    def restore(self, snap, host, args=()):
        self.moves += 1
        control = self.control_socket(self.moves)
        cmd = ["restore", snap, "--key", self.key, "--control", control, *args]
        if self.listens:
            cmd += ["--listen", f"0.0.0.0:{SERVER_PORT}"]
        proc = self.hosts.start(host, self.env.tern + cmd, stderr=self._log_file())
        self._started(host, proc, control)

    def move(self, to):
        """The program stops where it is and continues on host `to`: by a
        checkpoint file and a restore, or by `tern migrate` to `tern serve`."""
        if self.by == "migrate":
            self.migrate(to)
            return
        snap = self.checkpoint()
        self.restore(snap, to)
        os.unlink(snap)

    def migrate(self, to, args=()):
        """`tern migrate` to `tern serve --once ARGS` on host `to` (the same
        key as the gateway's), which re-registers the program once it runs
        there."""
        self.moves += 1
        control = self.control_socket(self.moves)
        target = f"{ADDRESS[to]}:{SERVE_PORT + self.moves}"
        cmd = ["serve", "--once", "--verbose", "--listen", target, "--key", self.key,
               "--control", control, *args]
        if self.listens:
            cmd += ["--allow-bind", "0.0.0.0/0"]
        proc = self.hosts.start(to, self.env.tern + cmd, stderr=self._log_file())
        testlib.wait_for(lambda: "listening on" in self.program_log() or proc.poll() is not None,
                         "tern serve")
        rc, out, err = self.env.run(["migrate", "--control", self.control, "--to", target,
                                     "--key", self.key])
        expect(rc == 0 and RESULT.match(out.strip()),
               f"tern migrate: {rc} {out!r} {err!r} (target: {self.program_log()})")
        rc = testlib.wait_process(self.program)
        expect(rc == 0, f"the source's exit status after the move: {rc}")
        self._started(to, proc, control)

    def clients(self, *args):
        """The load client: left out of the progress watch (testlib.IDLE_LIMIT),
        as it wakes on a timer while it waits for replies and so would hide a
        program or gateway that hangs."""
        proc = self.hosts.start("clients", [self.env.load_client, GATEWAY_ADDRESS["clients"],
                                            str(self.client_port), *map(str, args)])
        testlib.PROGRESS.ignore(proc)
        return proc

    def connect(self, rcvbuf=None):
        """A raw client socket (in the test's own namespace it could not reach
        the gateway: it runs in the clients' one through a helper); `rcvbuf`:
        its SO_RCVBUF."""
        return ClientSocket(self, rcvbuf)

    def expect_mid_reply(self, c, total):
        """That the program, right now, has sent fewer than `total` bytes on
        client c's connection (a checkpoint it continues from says so)."""
        m = re.search(rf"client {re.escape(c.address)} is connection (\d+)", self.log(True))
        expect(m, f"no connection for client {c.address}: {self.log()}")
        snap = self.checkpoint(stop=False)
        rc, out, err = self.env.run(["inspect", "--json", snap])
        expect(rc == 0, f"inspect: {err}")
        os.unlink(snap)
        gway = [s for s in json.loads(out)["sections"] if s.get("tag") == "GWAY"]
        sent = [r["sent"] for r in gway[0]["content"]["connections"] if r["id"] == int(m.group(1))]
        expect(sent and sent[0] < total,
               f"the program sent {sent} bytes on the connection, not fewer than {total}: it "
               "is not in the middle of the reply")


class ClientSocket:
    """A client connection from the clients' namespace, driven from here:
    a small relay process there (socat-like, in Python) joins its stdin and
    stdout to the connection."""

    RELAY = r"""
import os, select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if len(sys.argv) > 3:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(sys.argv[3]))
s.connect((sys.argv[1], int(sys.argv[2])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print(s.getsockname()[0] + ":" + str(s.getsockname()[1]), flush=True)
open_in = True
while True:
    r, _, _ = select.select([s] + ([0] if open_in else []), [], [])
    if s in r:
        data = s.recv(65536)
        if not data:
            break
        while data:
            data = data[os.write(1, data):]
    if open_in and 0 in r:
        data = os.read(0, 65536)
        if data:
            s.sendall(data)
        else:
            s.shutdown(socket.SHUT_WR)
            open_in = False
"""

    def __init__(self, world, rcvbuf=None):
        self.proc = world.hosts.start(
            "clients", [sys.executable, "-c", self.RELAY, GATEWAY_ADDRESS["clients"],
                        str(world.client_port), *([str(rcvbuf)] if rcvbuf else [])],
            stdin=subprocess.PIPE)
        self.address = self.proc.stdout.readline().decode().strip()
        expect(self.address, "the client relay did not connect")
        self.buffer = b""
        self.closed = False

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def shutdown(self):
        self.proc.stdin.close()

    def _fill(self, what):
        """Reads what the relay has; waits while the test's processes
        progress (testlib.IDLE_LIMIT), else fails saying `what` did not come."""
        while not self.closed:
            r, _, _ = select_one(self.proc.stdout, 0.25)
            if r:
                data = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not data:
                    self.closed = True
                    return
                self.buffer += data
                return
            try:
                testlib.PROGRESS.check()
            except testlib.Hung as e:
                raise Failure(f"{what}: {e} (got {self.buffer[:200]!r})")

    def read_exact(self, n):
        while len(self.buffer) < n:
            if self.closed:
                raise Failure(f"the connection gave {len(self.buffer)} of {n} bytes (closed)")
            self._fill(f"the connection gave {len(self.buffer)} of {n} bytes")
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read_line(self):
        while b"\n" not in self.buffer:
            if self.closed:
                raise Failure(f"no line on the connection ({self.buffer[:200]!r}, closed)")
            self._fill("no line on the connection")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def read_to_end(self):
        while not self.closed:
            self._fill("the connection did not end")
        out, self.buffer = self.buffer, b""
        return out

    def close(self):
        testlib.kill_if_running(self.proc)


def select_one(f, timeout):
    import select
    return select.select([f], [], [], timeout)


def body(seq, n):
    return bytes((seq * 31 + i * 7 + 1) & 0xFF for i in range(n))


def reply_bytes(seq, n):
    return bytes((seq * 13 + i * 5 + 3) & 0xFF for i in range(n))


def request(seq, reply_size, body_len):
    return f"REQ {seq} {reply_size} {body_len}\n".encode() + body(seq, body_len)


def expect_reply(conn, seq, size):
    line = conn.read_line()
    expect_equal(line, f"REP {seq} {size}", "reply line")
    data = conn.read_exact(size)
    expect(data == reply_bytes(seq, size), f"reply {seq}: its bytes differ")


def finish_clients(world, proc, what):
    out, err = testlib.communicate(proc)
    text = out.decode().strip().splitlines()
    expect(text, f"{what}: load_client printed nothing: {err.decode()}")
    result = json.loads(text[-1])
    if proc.returncode != 0:
        raise Failure(f"{what}: {result} {err.decode()[-3000:]}\n--- gateway:\n{world.log()}"
                      f"\n--- program:\n{world.program_log()}")
    return result


def with_world(fn):
    """Runs a case with fresh hosts and a gateway."""
    def case(env):
        with Hosts() as hosts:
            fn(env, hosts)
    case.__name__ = fn.__name__
    return case


def variants(*kinds):
    """Registers a case once per kind, as NAME_KIND; fn(env, hosts, kind)
    with fresh hosts."""
    def wrap(fn):
        for kind in kinds:
            def case(env, kind=kind):
                with Hosts() as hosts:
                    fn(env, hosts, kind)
            case.__name__ = f"{fn.__name__}_{kind}"
            cases(case)
        return fn
    return wrap


# NAME_file (moves by checkpoint file and restore) and NAME_migrate (moves
# by `tern migrate`); fn(env, hosts, by).
both_ways = variants("file", "migrate")


# --- cases ---------------------------------------------------------------------


@cases
@with_world
def relay(env, hosts):
    """Clients reach the program through the gateway: replies and byte
    counts agree, and the program sees each client's own address."""
    w = World(env, hosts)
    w.start("a")
    result = finish_clients(w, w.clients("--connections", 8, "--pipeline", 4, "--requests", 200),
                            "clients")
    expect_equal(result["replies"], 8 * 200, "replies")
    c = w.connect()
    c.send(b"PEER 1\n")
    expect_equal(c.read_line(), f"PEER 1 {c.address}", "the peer address the program sees")
    c.close()


def stop_load(w, clients, stop, name):
    """Ends the 64 clients of the move cases (more than one reply each per
    move, every one checked by load_client) and prints their result."""
    open(stop, "w").close()
    result = finish_clients(w, clients, "clients")
    expect(result["replies"] > 64 * 20, f"too few replies: {result}")
    print(f"{name}: {result}", flush=True)


@both_ways
def move(env, hosts, by):
    """64 persistent connections pipelining requests while the program moves
    a -> b -> a ten times (by checkpoint file and restore, or by tern
    migrate): every reply exactly once and in order, no connection breaks,
    byte counts agree. Under that load, the first CUT_ROUND_TRIPS round
    trips cut two more connections at every move: one in the middle of a
    request (half of its 200000-byte body sent before the move, the rest
    after), one in the middle of a 1 MiB reply (100000 bytes read before
    the move, the rest after, the program blocked in the middle of writing
    it: see big_reply); each reply is whole, and their byte counts agree at
    both ends. (Cutting all twenty moves took twice this case's time; it
    found a092dce's bug in about one run in four: a page the program had
    not written arrived with bytes of another, which the unit test
    SnapshotFormat.PagesEncodedWhileOthersChangeKeepTheirBytes covers.)"""
    w = World(env, hosts, buffer="64K", by=by)
    w.start("a", program_args=SMALL_SNDBUF)
    moves_under_load(w, 10, f"move_{by}")


@both_ways
def move_threaded(env, hosts, by):
    """move with a threaded server (guests/gw_threads.c, issue 19 item 5):
    its main thread blocked in accept() hands each connection to one of
    THREADED_WORKERS worker threads, each blocked in poll() on its own
    connections between requests. First a checkpoint it continues from
    must hold every thread, the main one and others stopped at their host
    calls; then the program moves a -> b -> a CUT_ROUND_TRIPS times under
    the load of move (64 connections, and the two cut at every move):
    every reply exactly once and in order, no connection breaks, byte
    counts agree."""
    w = World(env, hosts, buffer="64K", by=by)
    w.start("a", program="gw_threads",
            program_args=SMALL_SNDBUF + ["--workers", str(THREADED_WORKERS)])
    # The workers wait in poll nearly all the time: one at least is there.
    expect_threads_at_host_calls(w, THREADED_WORKERS + 1, ["poll_oneoff"])
    moves_under_load(w, CUT_ROUND_TRIPS, f"move_threaded_{by}")


THREADED_WORKERS = 4


@both_ways
def blocked_threads(env, hosts, by):
    """A threaded server with a thread per connection and blocking reads
    and writes (gw_threads --thread-per-connection) moves a -> b -> a
    twice while each of its threads is blocked in a host call: the main
    thread in accept, one connection's thread in fd_read between requests,
    one in fd_read in the middle of a request's body and one in fd_write
    in the middle of a 1 MiB reply (CutConnections; a checkpoint before the
    first move finds all four at their host calls). Each call continues
    after the move: every reply whole, the byte counts agree."""
    w = World(env, hosts, buffer="64K", by=by)
    w.start("a", program="gw_threads", program_args=SMALL_SNDBUF + ["--thread-per-connection"])
    idle = w.connect()
    idle.send(request(1, 10, 10))
    expect_reply(idle, 1, 10)
    cut = CutConnections(w)
    for n, to in enumerate(("b", "a", "b", "a")):
        cut.move(to, before=(lambda: expect_threads_at_host_calls(
            w, 4, ["fd_read", "fd_read", "fd_write"])) if n == 0 else None)
        idle.send(request(n + 2, 20, 5))
        expect_reply(idle, n + 2, 20)
    cut.check_counts()
    idle.close()


def expect_threads_at_host_calls(w, count, others):
    """A checkpoint of the threaded server (it continues) holds `count`
    threads: the main one stopped at its host call in accept, and the
    others at least at the host calls `others` names (their functions)."""
    snap = w.checkpoint(stop=False)
    rc, out, err = w.env.run(["inspect", "--json", snap])
    expect(rc == 0, f"inspect: {err}")
    os.unlink(snap)
    threads = json.loads(out)["threads"]
    at = {t["id"]: f"{t['frames'][0]['kind']} in {t['frames'][0]['name']}" for t in threads}
    print(f"threads at the checkpoint (innermost frames): {at}", flush=True)
    missing = collections.Counter(f"host-call in __wasi_{name}" for name in others)
    missing.subtract(where for thread, where in at.items() if thread != 0)
    expect(len(threads) == count and at.get(0) == "host-call in __wasi_sock_accept" and
           max(missing.values()) <= 0, f"the threads' innermost frames: {at}")


def moves_under_load(w, trips, name):
    """The moves of `move`: a -> b -> a `trips` times under 64 pipelining
    connections, the first CUT_ROUND_TRIPS cutting two more at every move."""
    stop = w.env.path("stop-clients")
    clients = w.clients("--connections", 64, "--pipeline", 4, "--until-file", stop)
    cut = CutConnections(w)
    time.sleep(0.5)
    for trip in range(trips):
        for to in ("b", "a"):
            if trip < CUT_ROUND_TRIPS:
                cut.move(to)
            else:
                w.move(to)
                time.sleep(0.2)
    cut.check_counts()
    stop_load(w, clients, stop, name)


CUT_ROUND_TRIPS = 3


class CutConnections:
    """The two connections that move cuts: `part` with a request half sent,
    `big` with a 1 MiB reply partly read, at each move."""

    SIZE = 1 << 20

    def __init__(self, world):
        self.w = world
        self.part, self.big = world.connect(), world.connect(rcvbuf=16384)
        self.seq = 0
        self.sent = {"part": 0, "big": 0}
        self.replied = {"part": 0, "big": 0}

    def move(self, to, before=None):
        """Cuts both connections, moves the program to host `to` (after
        before(), if given, with both cut) and completes them."""
        self.seq += 1
        seq, size = self.seq, self.SIZE
        whole = request(seq, 5000, 200000)
        self.part.send(whole[:100000])
        self.big.send(request(seq, size, 10))
        expect_equal(self.big.read_line(), f"REP {seq} {size}", "the big reply's line")
        first = self.big.read_exact(100000)
        time.sleep(0.2)
        self.w.expect_mid_reply(self.big, self.replied["big"] + len(f"REP {seq} {size}\n") + size)
        if before:
            before()
        self.w.move(to)
        self.part.send(whole[100000:])
        expect_reply(self.part, seq, 5000)
        rest = self.big.read_exact(size - 100000)
        expect(first + rest == reply_bytes(seq, size), f"1 MiB reply {seq} differs")
        self.sent["part"] += len(whole)
        self.sent["big"] += len(request(seq, size, 10))
        self.replied["part"] += len(f"REP {seq} 5000\n") + 5000
        self.replied["big"] += len(f"REP {seq} {size}\n") + size

    def check_counts(self):
        for name, c in (("part", self.part), ("big", self.big)):
            c.send(b"STAT 0\n")
            expect_equal(c.read_line(), f"STAT 0 {self.sent[name] + 7} {self.replied[name]}",
                         f"the program's byte counts of the {name} connection")
            c.close()


@both_ways
def gateway_option(env, hosts, by):
    """`--gateway` given to `tern restore` (file) or to `tern serve`
    (migrate) wins over the gateway the snapshot or the stream names: on
    host b the recorded address (the gateway as host a reaches it) is made
    unreachable, so the program can re-register and its connection go on
    only at the explicit address. Without the option the restore fails,
    naming the recorded address."""
    w = World(env, hosts, by=by)
    w.start("a")
    c = w.connect()
    c.send(request(1, 10, 10))
    expect_reply(c, 1, 10)
    r = hosts.run("b", ["ip", "route", "add", "prohibit", GATEWAY_ADDRESS["a"]])
    expect(r.rc == 0, f"ip route add prohibit: {r.err!r}")
    explicit = ["--gateway", w.control_address("b")]
    if by == "file":
        snap = w.checkpoint()
        r = hosts.run("b", env.tern + ["restore", snap, "--key", w.key, "--listen",
                                       f"0.0.0.0:{SERVER_PORT}"])
        expect(r.rc == 1 and f"gateway {w.control_address('a')}".encode() in r.err,
               f"a restore that must reach the snapshot's gateway: {r.rc} {r.err!r}")
        w.restore(snap, "b", args=explicit)
    else:
        w.migrate("b", args=explicit)
    c.send(request(2, 20, 20))
    expect_reply(c, 2, 20)
    expect(f"registered from {ADDRESS['b']}" in w.log() and
           "1 connection(s) to re-join" in w.log(), f"the gateway's log: {w.log()}")
    expect("without the gateway" not in w.program_log(), f"b's log: {w.program_log()}")
    c.close()


@cases
@with_world
def checkpoint_every(env, hosts):
    """Checkpoints that let the program continue (every 200 ms) while 16
    connections pipeline requests: each one brings the connections to
    agreement with the gateway and lets them go on; nothing breaks."""
    w = World(env, hosts)
    w.start("a", args=["--checkpoint-to", env.path("periodic.snap"), "--checkpoint-every",
                       "200ms"])
    result = finish_clients(w, w.clients("--connections", 16, "--pipeline", 4, "--duration", 3),
                            "clients")
    rc, out, _ = env.run(["checkpoint", "--control", w.control, "--status"])
    n = int(re.search(r"checkpoints=(\d+)", out).group(1))
    expect(n >= 3, f"only {n} checkpoints were written: {out}")
    print(f"checkpoint_every: {n} checkpoints, {result}", flush=True)


@cases
@with_world
def crash_restore(env, hosts):
    """A program killed after a checkpoint it continued from, restored from
    that snapshot: a connection idle since the snapshot re-joins; one that
    moved bytes after it cannot continue exactly, and ends (the client sees
    the end of stream, never wrong bytes)."""
    w = World(env, hosts)
    w.start("a")
    idle, busy = w.connect(), w.connect()
    for c in (idle, busy):
        c.send(request(1, 10, 10))
        expect_reply(c, 1, 10)
    snap = w.checkpoint(stop=False)
    busy.send(request(2, 10, 10))
    expect_reply(busy, 2, 10)
    w.program.kill()
    w.program.wait()
    w.restore(snap, "b")
    idle.send(request(2, 30, 30))
    expect_reply(idle, 2, 30)
    expect_equal(busy.read_to_end(), b"", "what the busy connection got")
    expect("not the gateway's" in w.log(), f"the gateway's log: {w.log()}")
    expect("comes back reset" in w.program_log(), f"the restore's warnings: {w.program_log()}")


@both_ways
def partial_request(env, hosts, by):
    """The program stops while a request is half received: the first half
    was read by the program (or waits in the kernel and is drained into the
    snapshot), the second half comes after the move; the reply is whole."""
    w = World(env, hosts, by=by)
    w.start("a")
    c = w.connect()
    c.send(request(1, 100, 0))
    expect_reply(c, 1, 100)
    whole = request(2, 5000, 200000)
    c.send(whole[:100000])
    time.sleep(0.3)
    w.move("b")
    c.send(whole[100000:])
    expect_reply(c, 2, 5000)
    c.send(b"STAT 3\n")
    expect_equal(c.read_line(), f"STAT 3 {len(request(1, 100, 0)) + len(whole) + 7} "
                 f"{len('REP 1 100') + 1 + 100 + len('REP 2 5000') + 1 + 5000}", "counts")
    c.close()


@cases
@with_world
def unread_bytes(env, hosts):
    """Bytes the kernel received that the program had not read are drained
    into the snapshot and read by the restored program."""
    w = World(env, hosts)
    w.start("a", program="gw_sleeper")
    c = w.connect()
    c.send(b"hello\n")
    expect_equal(c.read_line(), "sleeping", "the sleeper's greeting")
    data = body(5, 300000)
    c.send(data)
    time.sleep(0.5)  # in the kernel of host a by now; the program sleeps
    snap = w.checkpoint()
    rc, out, err = env.run(["inspect", "--json", snap])
    expect(rc == 0, f"inspect: {err}")
    gway = [s for s in json.loads(out)["sections"] if s.get("tag") == "GWAY"]
    expect(gway, f"no GWAY section: {out[:2000]}")
    conns = gway[0]["content"]["connections"]
    expect(len(conns) == 1 and conns[0]["unread"] > 0,
           f"the snapshot holds no unread bytes: {conns}")
    w.restore(snap, "b")
    wake = w.connect()  # the sleeper reads the first connection once a second one comes
    c.shutdown()
    echoed = c.read_to_end()
    expect(echoed == data, f"echoed {len(echoed)} bytes, not the {len(data)} sent")
    wake.close()


@both_ways
def big_reply(env, hosts, by):
    """The program stops in the middle of sending a 1 MiB reply: the client
    reads slowly, and the buffers on the way are small (the gateway's
    --buffer, the program's SO_SNDBUF, the client's SO_RCVBUF), so the
    program's writes block with about half of it sent (a checkpoint says
    so); the rest comes from the restored program, byte for byte."""
    w = World(env, hosts, buffer="64K", by=by)
    w.start("a", program_args=SMALL_SNDBUF)
    c = w.connect(rcvbuf=16384)
    size = 1 << 20
    c.send(request(1, size, 10))
    expect_equal(c.read_line(), f"REP 1 {size}", "reply line")
    first = c.read_exact(100000)
    time.sleep(0.3)  # the program is blocked sending the rest
    w.expect_mid_reply(c, len(f"REP 1 {size}\n") + size)
    w.move("b")
    rest = c.read_exact(size - 100000)
    expect(first + rest == reply_bytes(1, size), "the 1 MiB reply differs")
    c.send(request(2, 10, 10))
    expect_reply(c, 2, 10)
    c.close()


@cases
@with_world
def held_while_away(env, hosts):
    """While the program is away the gateway holds connections, reads up to
    its buffer then stops (the client's sends block: back-pressure, nothing
    dropped), and accepts new clients, which the restored program serves."""
    w = World(env, hosts, buffer="64K")
    w.start("a")
    c = w.connect()
    c.send(request(1, 10, 0))
    expect_reply(c, 1, 10)
    snap = w.checkpoint()
    # Far more than the gateway buffers: the relay's sends block, and so may
    # this write once the kernel's buffers are full too (from a thread, so
    # that the restore comes meanwhile).
    big = b"".join(request(seq, 10, 4000) for seq in range(2, 402))
    sender = threading.Thread(target=c.send, args=(big,), daemon=True)
    sender.start()
    late = w.connect()  # accepted while the program is away
    late.send(request(1, 20, 5))
    time.sleep(1)
    w.restore(snap, "b")
    for seq in range(2, 402):
        expect_reply(c, seq, 10)
    sender.join()
    expect_reply(late, 1, 20)
    c.close()
    late.close()


@variants("killed", "timeout")
def standby_dropped(env, hosts, how):
    """A migration's target joins the connections as a standby before the
    source commits (docs/gateway.md §5). If it fails then (stopped while it
    waits for the commit, then killed: the source's channel breaks, or
    the source times out first and thaws while the standby's session is
    still open), the source continues with its connections: bytes sent
    meanwhile and after reach it exactly once and in order, and a later
    migration takes the program over as usual."""
    w = World(env, hosts, by="migrate")
    w.start("a")
    c = w.connect()
    c.send(request(1, 10, 10))
    expect_reply(c, 1, 10)
    w.moves += 1
    target = f"{ADDRESS['b']}:{SERVE_PORT + w.moves}"
    serve = hosts.start("b", env.tern + ["serve", "--once", "--verbose", "--listen", target,
                                         "--key", w.key, "--allow-bind", "0.0.0.0/0"],
                        stderr=w._log_file(), env=dict(os.environ, TERN_MIGRATE_FAULT="ready"))
    testlib.wait_for(lambda: "listening on" in w.program_log() or serve.poll() is not None,
                     "tern serve")
    # Long enough for the target to rebuild the program and register on a
    # busy machine first (the wait it then ends is for the target's ready,
    # which TERN_MIGRATE_FAULT=ready holds back).
    timeout = ["--timeout", "6s"] if how == "timeout" else []
    migrate = subprocess.Popen(env.tern + ["migrate", "--control", w.control, "--to", target,
                                           "--key", w.key, *timeout], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    testlib.wait_for(lambda: "as a standby: 1 connection(s) to re-join" in w.log() and
                     "joined by standby" in w.log(), "the target's standby registration")
    c.send(request(2, 30, 20))  # held by the gateway: the program is frozen
    time.sleep(0.2)
    if how == "timeout":  # the source gives up and thaws; the standby is still there
        out, err = testlib.communicate(migrate)
        expect(migrate.returncode != 0, f"tern migrate to a silent target: {out!r} {err!r}")
        expect_reply(c, 2, 30)
        expect("standby at" in w.log() and "dropped" in w.log(),
               f"the THAW did not drop the standby: {w.log()}")
    serve.kill()  # the target (the receiving process dies with serve)
    testlib.wait_process(serve)
    if how == "killed":
        out, err = testlib.communicate(migrate)
        expect(migrate.returncode != 0, f"tern migrate to a killed target: {out!r} {err!r}")
        expect_reply(c, 2, 30)
    c.send(request(3, 40, 5))
    expect_reply(c, 3, 40)
    expect("standby at" in w.log() and "dropped" in w.log(), f"the gateway's log: {w.log()}")
    expect(w.program.poll() is None, f"the source ended: {w.program_log()}")
    w.migrate("b")  # moves for real now
    c.send(request(4, 50, 5))
    expect_reply(c, 4, 50)
    c.close()



@both_ways
def outgoing(env, hosts, by):
    """A program's own connection to a service, made through the gateway,
    survives a move in the middle of the conversation."""
    w = World(env, hosts, by=by)
    service = Service(hosts)
    control = w.control_socket(0)
    log = w._log_file()
    proc = hosts.start("a", env.tern + [
        "run", "--gateway", w.control_address("a"), "--key", w.key, "--control", control,
        "--allow-connect", f"{ADDRESS['clients']}:{service.port}", env.wasm("gw_client"),
        ADDRESS["clients"], str(service.port), "400"], stderr=log)
    w._started("a", proc, control)
    w.listens = False
    testlib.wait_for(lambda: service.requests >= 50, "the program's first requests")
    w.move("b")
    testlib.wait_for(lambda: service.requests >= 200, "requests after the move")
    w.move("a")
    rc = testlib.wait_process(w.program)
    out = w.program.stdout.read().decode()
    expect(rc == 0, f"gw_client exit status {rc}: {out} {w.program_log()}")
    expect("done 400 replies, counts agree" in out, f"gw_client: {out}")
    expect_equal(service.connections, 1, "connections the service saw")
    service.close()


@cases
@with_world
def hold_expires(env, hosts):
    """A program that does not come back within --hold: the gateway closes
    its held connections cleanly (end of stream after every byte the
    program sent), and the clients that came meanwhile too."""
    w = World(env, hosts, hold="1s")
    w.start("a")
    c = w.connect()
    c.send(request(1, 10, 0))
    expect_reply(c, 1, 10)
    w.checkpoint()
    late = w.connect()
    expect_equal(c.read_to_end(), b"", "what a held client got")
    expect_equal(late.read_to_end(), b"", "what a waiting client got")
    expect("did not come back" in w.log(), "the gateway's log")


@cases
@with_world
def refusals(env, hosts):
    """Bad keys and strangers get nowhere: a backend with another key cannot
    register; a connection to the program's listener that does not come
    from the gateway never reaches the program; a restore of a published
    program without --key says what it needs; --no-gateway restores it
    without (its connections reset)."""
    w = World(env, hosts)
    other = env.path("other.key")
    env.run(["keygen", other])
    r = hosts.run("a", env.tern + ["run", "--listen", f"0.0.0.0:{SERVER_PORT + 1}", "--gateway",
                                   w.control_address("a"), "--key", other, env.wasm("gw_server")])
    expect(r.rc == 1 and b"cannot register with gateway" in r.err,
           f"a backend with another key: {r.rc} {r.err!r}")
    w.start("a")
    # A stranger on host b connects straight to the program's listener.
    stranger = hosts.start("b", [sys.executable, "-c", (
        "import socket,sys\n"
        f"s=socket.create_connection(('{ADDRESS['a']}',{SERVER_PORT}))\n"
        "s.sendall(b'PEER 1\\n'+b'x'*200)\n"
        "try:\n"
        "    print(repr(s.recv(100)),flush=True)\n"
        "except ConnectionResetError:\n"
        "    print('reset',flush=True)\n")])
    out, err = testlib.communicate(stranger)
    expect(out.decode().strip() in ("b''", "reset"),
           f"what a stranger got from the program: {out!r} {err!r}")
    c = w.connect()
    c.send(request(1, 10, 0))
    expect_reply(c, 1, 10)
    snap = w.checkpoint()
    r = hosts.run("b", env.tern + ["restore", snap, "--listen", f"0.0.0.0:{SERVER_PORT}"])
    expect(r.rc == 1 and b"--key" in r.err and r.err.count(b"\n") == 1,
           f"a restore without --key: {r.rc} {r.err!r}")
    # Without the gateway the restored program takes its clients itself.
    hosts.start("b", env.tern + ["restore", snap, "--no-gateway", "--listen",
                                 f"0.0.0.0:{SERVER_PORT}"])
    direct = hosts.start("clients", [sys.executable, "-c", (
        "import socket,time\n"
        "while True:\n"
        "    try:\n"
        f"        s=socket.create_connection(('{ADDRESS['b']}',{SERVER_PORT})); break\n"
        "    except OSError: time.sleep(0.05)\n"
        "s.sendall(b'PEER 7\\n')\n"
        "print(s.makefile().readline().split()[0:2],flush=True)\n")])
    out, err = testlib.communicate(direct)
    expect_equal(out.decode().strip(), "['PEER', '7']", f"a direct client of the restored program ({err!r})")


@cases
@with_world
def gateway_restart(env, hosts):
    """A gateway restart (gateway.md §6) loses its connections: the client
    sees its connection end. The running program is not registered with the
    new instance: a client of the new one waits until the program is
    checkpointed and restored, and is served then, as are new ones. A
    snapshot that recorded a connection of the old instance brings it back
    reset (the new instance has other connection ids: its connection 1 is
    another client, which the restore must not take over)."""
    w = World(env, hosts)
    w.start("a")
    c = w.connect()
    c.send(request(1, 10, 10))
    expect_reply(c, 1, 10)
    before = w.checkpoint(stop=False)  # records c, a connection of the old instance
    os.rename(before, env.path("before-restart.snap"))
    before = env.path("before-restart.snap")
    w.restart_gateway()
    expect_equal(c.read_to_end(), b"", "what the client got after the gateway ended")
    waiting = w.connect()  # connection 1 of the new instance
    waiting.send(request(1, 30, 5))
    snap = w.checkpoint()
    after_restart = w.log().split("--- restarted")[-1]
    expect("registered" not in after_restart,
           f"the running program registered with the new gateway: {after_restart}")
    w.restore(snap, "b")
    expect_reply(waiting, 1, 30)
    later = w.connect()
    later.send(request(1, 40, 5))
    expect_reply(later, 1, 40)
    # The snapshot from before the restart, restored instead (the program
    # on b stopped first): its connection 1 is the old instance's and comes
    # back reset; the new instance's connection 1, which that snapshot does
    # not have, is not taken over but ends cleanly, as any connection a
    # snapshot does not record (§6: a restore from an earlier snapshot).
    w.checkpoint()
    w.restore(before, "a")
    expect("connection 1 comes back reset" in w.program_log(),
           f"the restore of the older snapshot: {w.program_log()}")
    expect(re.search(rf"registered from {ADDRESS['a']}:\d+: 0 connection\(s\) to re-join\n"
                     r"(.*\n)*.*is ready at " + ADDRESS["a"], w.log().split("--- restarted")[-1]),
           f"the older snapshot's registration: {w.log()}")
    expect_equal(waiting.read_to_end(), b"", "what the new instance's connection 1 got")
    fresh = w.connect()
    fresh.send(request(1, 60, 5))
    expect_reply(fresh, 1, 60)
    for conn in (later, fresh):
        conn.close()


@cases
def out_of_descriptors(env):
    """A gateway out of file descriptors stops accepting for a moment instead
    of spinning on its listener, and accepts again once connections close.
    With no program registered the gateway holds every client until --hold
    runs out (a client's end of stream is a half-close it keeps for the
    program), so the connections close then: 15 s, time enough to watch
    the gateway out of descriptors (the default, 60 s, was most of the
    case's length)."""
    with Hosts() as hosts:
        key = env.path("gateway.key")
        env.run(["keygen", key])
        log = open(env.path("gateway.log"), "wb")
        gateway = hosts.start("gateway", ["prlimit", "--nofile=40", "--"] + env.tern + [
            "gateway", "--listen", "0.0.0.0:0", "--control", "0.0.0.0:0", "--key", key,
            "--hold", "15s", "--verbose"], stderr=log)
        port = int(re.search(r"clients on \S+:(\d+)", gateway.stdout.readline().decode()).group(1))
        holder = hosts.start("clients", [sys.executable, "-c", (
            "import socket,sys,time\n"
            f"s=[socket.create_connection(('{GATEWAY_ADDRESS['clients']}',{port})) for _ in range(60)]\n"
            "print('connected',flush=True)\n"
            "sys.stdin.readline()\n"
            "for c in s[:45]: c.close()\n"
            "print('closed',flush=True)\n"
            "sys.stdin.readline()\n")], stdin=subprocess.PIPE)
        expect_equal(holder.stdout.readline().decode().strip(), "connected", "the clients")
        time.sleep(0.5)
        with open(f"/proc/{gateway.pid}/stat") as f:
            before = sum(map(int, f.read().rsplit(")", 1)[1].split()[11:13]))
        time.sleep(2)
        with open(f"/proc/{gateway.pid}/stat") as f:
            busy = sum(map(int, f.read().rsplit(")", 1)[1].split()[11:13])) - before
        expect(busy < os.sysconf("SC_CLK_TCK"), f"the gateway used {busy} ticks in 2 s")
        log.flush()
        expect("out of descriptors" in open(env.path("gateway.log")).read(), "the gateway's log")
        holder.stdin.write(b"\n")
        holder.stdin.flush()
        holder.stdout.readline()
        testlib.wait_for(lambda: open(env.path("gateway.log")).read().count("is connection") >= 60,
                         "the gateway to accept the clients that waited")
        holder.stdin.write(b"\n")
        holder.stdin.flush()
        holder.wait()


@cases.needs_compiler
def bench_moves(env):
    """bench/gateway/bench.py's moves, one of each kind, in jit mode with a
    cold cache: the bench measures a move only once the program runs and
    has taken its 64 clients, and fails unless each move's checkpoint
    carried all 64 (the gateway's log). It once started the clients while
    the program was still being compiled (its control socket said
    `starting`): the first move's checkpoint then waited for the compiler
    and carried no connection, and its "stall" was the compile (~50 s)."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(env.load_client)))
    here = os.path.dirname(os.path.abspath(__file__))
    bench = os.path.join(here, "..", "..", "bench", "gateway", "bench.py")
    proc = testlib.start([sys.executable, bench, build, "--skip-latency", "--moves", "1",
                          "--mode", "jit"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = testlib.communicate(proc)
    out, err = out.decode(), err.decode(errors="replace")
    expect(proc.returncode == 0, f"bench.py: {proc.returncode}: {out}{err[-3000:]}")
    rows = re.findall(r"^\s+1\s.*ms\s+\d+\s+-?[\d.]+ms\s+-?[\d.]+ms$", out, re.M)
    expect(len(rows) == 2, f"bench.py printed no row for each kind of move: {out}")
    print(out, flush=True)


class Service:
    """The service a program connects out to (on the clients' host): it
    answers the test protocol; counts requests and connections."""

    def __init__(self, hosts):
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = hosts.start("clients", [sys.executable, os.path.join(here, "service.py")])
        line = self.proc.stdout.readline().decode()
        self.port = int(line.split()[-1])
        self.requests = 0
        self.connections = 0
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        for raw in self.proc.stdout:
            line = raw.decode()
            if line.startswith("request"):
                self.requests += 1
            elif line.startswith("connection"):
                self.connections += 1

    def close(self):
        testlib.kill_if_running(self.proc)


def make_env(env, args):
    if not args.load_client:
        raise Failure("--load-client is required to run a case")
    env.load_client = os.path.abspath(args.load_client)
    return env


if __name__ == "__main__":
    sys.exit(cases.main(__doc__, add_arguments=lambda ap: ap.add_argument(
        "--load-client", help="the load_client binary (required to run a case)"),
        make_env=make_env))
