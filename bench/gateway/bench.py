#!/usr/bin/env python3
"""What `tern gateway` costs its clients (docs/performance.md, "Gateway"):

1. Latency added by the gateway: one client connection, one request at a
   time (64-byte body, 64-byte reply), N requests, to the same server
   program (tests/gateway/guests/gw_server.c) reached directly and through
   the gateway, alternating A/B rounds. The direct path crosses the
   gateway's host too (the hosts are network namespaces linked through
   it, which forwards), so the difference is the proxy, not the wire.
2. The longest stall clients see while the program moves: 64 connections
   pipelining requests while the program moves between hosts a and b by
   checkpoint file and restore, and by `tern migrate` to `tern serve`; per
   move, the clients' longest wait for a reply, the program's time away
   (the gateway's log: FREEZE to READY) and, for tern migrate, the
   downtime it reports (the program's stop at the source to its
   confirmation at the target), the longest stall of the whole run, and
   the move's stall (the longest wait that overlaps FREEZE..READY): its
   length, when it began, in ms after the FREEZE (negative: before it),
   and when it ended, in ms after the READY.

    bench/gateway/bench.py BUILD_DIR [--requests N] [--rounds R] [--moves M] [--mode MODE]

Needs root (network namespaces), like the tests it borrows its hosts from.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "gateway"))
import testlib  # noqa: E402
from hosts import ADDRESS, GATEWAY_ADDRESS, Hosts  # noqa: E402

PUBLISHED_PORT, DIRECT_PORT = 7000, 7001


class Bench:
    def __init__(self, build, hosts, tmp, mode):
        self.tern = os.path.join(build, "tern")
        self.server = os.path.join(build, "tests", "gateway", "gw_server.wasm")
        self.client = os.path.join(build, "tests", "gateway", "gw_load_client")
        self.hosts, self.tmp, self.mode = hosts, tmp, mode
        self.key = os.path.join(tmp, "bench.key")
        subprocess.run([self.tern, "keygen", self.key], check=True, capture_output=True)
        self.log_path = os.path.join(tmp, "gateway.log")
        self.gateway = hosts.start("gateway", [self.tern, "gateway", "--listen", "0.0.0.0:0",
                                               "--control", "0.0.0.0:0", "--key", self.key,
                                               "--verbose"], stderr=open(self.log_path, "wb"))
        line = self.gateway.stdout.readline().decode()
        m = re.search(r"clients on \S+:(\d+), control on \S+:(\d+)", line)
        self.client_port, self.control_port = int(m.group(1)), int(m.group(2))
        self.moves = 0

    def engine(self):
        if self.mode == "interp":
            return ["--mode", "interp"]
        return ["--mode", self.mode, "--cache-dir", os.path.join(self.tmp, "cache")]

    def control(self):
        return os.path.join(self.tmp, f"control{self.moves}.sock")

    def program_log(self):
        """A file for the stderr of the program's tern of this move."""
        return open(os.path.join(self.tmp, f"program{self.moves}.log"), "wb")

    def wait_running(self, control):
        """Until the program runs: its control socket answers `running`, not
        `starting` (in jit mode with a cold cache the program is compiled
        first, which took 20-50 s here; clients started then waited for the
        compiler, and the first move's stall counted that wait)."""
        def running():
            if not os.path.exists(control):
                return False
            r = subprocess.run([self.tern, "checkpoint", "--control", control, "--status"],
                               capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.startswith("running")
        try:
            testlib.wait_for(running, "the program to run")
        except testlib.Failure as e:
            with open(os.path.join(self.tmp, f"program{self.moves}.log"), errors="replace") as f:
                sys.exit(f"bench: {e}: {f.read()[-2000:]}")

    def start(self, host, port, published):
        args = [self.tern, "run", *self.engine(), "--listen", f"0.0.0.0:{port}"]
        if published:
            args += ["--gateway", f"{GATEWAY_ADDRESS[host]}:{self.control_port}", "--key",
                     self.key, "--control", self.control()]
        proc = self.hosts.start(host, args + [self.server], stderr=self.program_log())
        if published:
            self.wait_running(self.control())
        return proc

    def clients(self, address, port, *args):
        p = self.hosts.start("clients", [self.client, address, str(port), *map(str, args)])
        out, err = testlib.communicate(p)
        result = json.loads(out.decode().strip().splitlines()[-1])
        if p.returncode != 0:
            sys.exit(f"bench: clients failed: {result} {err.decode()[-2000:]}")
        return result

    def servers(self):
        self.published = self.start("a", PUBLISHED_PORT, True)
        self.direct = self.start("a", DIRECT_PORT, False)
        time.sleep(1)  # the direct server is listening
        # Warm both paths (compiled code, caches).
        self.clients(ADDRESS["a"], DIRECT_PORT, "--connections", 1, "--requests", 2000)
        self.clients(GATEWAY_ADDRESS["clients"], self.client_port, "--connections", 1,
                     "--requests", 2000)

    def latency(self, requests, rounds, connections, pipeline):
        """A/B rounds of `requests` requests in all over `connections`
        connections with `pipeline` requests in flight on each."""
        args = ["--connections", connections, "--pipeline", pipeline, "--requests",
                requests // connections, "--reply-size", 64, "--body-size", 64]
        runs = {"direct": [], "gateway": []}
        self.cpu = {"gateway": 0.0, "server direct": 0.0, "server published": 0.0}
        for _ in range(rounds):
            before = cpu_seconds(self.direct.pid)
            runs["direct"].append(self.clients(ADDRESS["a"], DIRECT_PORT, *args))
            self.cpu["server direct"] += cpu_seconds(self.direct.pid) - before
            before = (cpu_seconds(self.gateway.pid), cpu_seconds(self.published.pid))
            runs["gateway"].append(self.clients(GATEWAY_ADDRESS["clients"], self.client_port,
                                                *args))
            self.cpu["gateway"] += cpu_seconds(self.gateway.pid) - before[0]
            self.cpu["server published"] += cpu_seconds(self.published.pid) - before[1]
        per = requests // connections * connections * rounds
        print("CPU time per request: " + ", ".join(
            f"{k} {v / per * 1e6:.1f}us" for k, v in self.cpu.items()))
        return runs

    def log_times(self, what):
        with open(self.log_path, errors="replace") as f:
            return [float(m.group(1)) for m in re.finditer(r"\[(\d+\.\d+)\] " + what, f.read())]

    def log_origin(self):
        """Where the gateway log's time 0 is on CLOCK_MONOTONIC (the load
        client's clock)."""
        with open(self.log_path, errors="replace") as f:
            return float(re.search(r"started \(monotonic clock ([\d.]+) s\)", f.read()).group(1))

    def stall_window(self, clients, frozen, ready):
        """The move's stall: the clients' longest wait for a reply that
        overlaps the program's time away (FREEZE to READY in the gateway's
        log; the clients list their waits of 10 ms or more), when it began,
        in ms from the FREEZE, and when it ended, in ms from the READY."""
        origin = self.log_origin()
        with open(self.stalls_path) as f:
            listed = [tuple(map(float, line.split())) for line in f]
        waits = [(a - origin, b - origin) for a, b in listed
                 if a - origin <= ready and b - origin >= frozen]
        if not waits:
            return {"move_stall_ms": 0.0, "begin_ms": 0.0, "end_ms": 0.0}
        begin, end = max(waits, key=lambda w: w[1] - w[0])
        return {"move_stall_ms": (end - begin) * 1e3, "begin_ms": (begin - frozen) * 1e3,
                "end_ms": (end - ready) * 1e3}

    def log_counts(self, pattern):
        """The number each of the gateway's log lines matching `pattern`
        (one group) says."""
        with open(self.log_path, errors="replace") as f:
            return [int(m.group(1)) for m in re.finditer(pattern, f.read())]

    def start_move_clients(self, stop):
        """64 pipelining clients, returned once the program has taken every
        one of them: a move is measured only from a program that serves
        all its clients."""
        taken = len(self.log_times("connection \\d+: taken by"))
        self.stalls_path = os.path.join(self.tmp, "stalls")
        clients = self.hosts.start("clients", [
            self.client, GATEWAY_ADDRESS["clients"], str(self.client_port), "--connections",
            "64", "--pipeline", "4", "--until-file", stop, "--stalls", self.stalls_path])
        testlib.wait_for(lambda: len(self.log_times("connection \\d+: taken by")) >= taken + 64
                         or clients.poll() is not None, "the program to take its 64 clients")
        if clients.poll() is not None:
            sys.exit(f"bench: the clients ended early: {clients.communicate()}")
        time.sleep(1)  # under load
        return clients

    def moved_connections(self, freezes):
        """How many connections the program carried in the move whose
        checkpoint is the gateway's `freezes`-th; every client of the move."""
        n = self.log_counts(r"program \S+ checkpoints \((\d+) connection")[freezes]
        if n != 64:
            sys.exit(f"bench: the move carried {n} connections, not the clients' 64")

    def stop_direct(self):
        """Ends the direct server of the latency runs; the published one
        goes on into the moves (the gateway fronts one publishing program
        at a time)."""
        self.direct.kill()
        self.direct.wait()

    def moves_stall(self, moves):
        program = getattr(self, "published", None) or self.start("a", PUBLISHED_PORT, True)
        host = "a"
        results = []
        for _ in range(moves):
            stop = os.path.join(self.tmp, f"stop{self.moves}")
            clients = self.start_move_clients(stop)
            snap = os.path.join(self.tmp, "move.snap")
            freezes = len(self.log_times("program \\S+ checkpoints"))
            subprocess.run([self.tern, "checkpoint", "--control", self.control(), "--stop", "-o",
                            snap], check=True, capture_output=True)
            program.wait()
            host = "b" if host == "a" else "a"
            self.moves += 1
            program = self.hosts.start(host, [self.tern, "restore", snap, *self.engine(), "--key",
                                              self.key, "--control", self.control(), "--listen",
                                              f"0.0.0.0:{PUBLISHED_PORT}"],
                                       stderr=self.program_log())
            self.wait_running(self.control())
            time.sleep(1)
            open(stop, "w").close()
            out, err = testlib.communicate(clients)
            r = json.loads(out.decode().strip().splitlines()[-1])
            if clients.returncode != 0:
                sys.exit(f"bench: clients failed during a move: {r} {err.decode()[-2000:]}")
            self.moved_connections(freezes)
            frozen = self.log_times("program \\S+ checkpoints")[freezes]
            ready = [t for t in self.log_times("program \\S+ is ready") if t > frozen][0]
            results.append({"stall_ms": r["longest_stall_ms"], "away_ms": (ready - frozen) * 1e3,
                            "replies": r["replies"], **self.stall_window(r, frozen, ready)})
        self.program, self.host = program, host
        return results


    def moves_stall_migrate(self, moves):
        """As moves_stall (continuing its program), each move by `tern
        migrate` to `tern serve --once` on the other host (the same key as
        the gateway's)."""
        program, host = self.program, self.host
        results = []
        for _ in range(moves):
            stop = os.path.join(self.tmp, f"stop{self.moves}")
            clients = self.start_move_clients(stop)
            freezes = len(self.log_times("program \\S+ checkpoints"))
            source_control = self.control()
            host = "b" if host == "a" else "a"
            self.moves += 1
            to = f"{ADDRESS[host]}:{7100 + self.moves}"
            serve_log = os.path.join(self.tmp, f"serve{self.moves}.log")
            target = self.hosts.start(host, [
                self.tern, "serve", "--once", "--verbose", "--listen", to, *self.engine(),
                "--key", self.key, "--control", self.control(), "--allow-bind", "0.0.0.0/0"],
                stderr=open(serve_log, "wb"))
            testlib.wait_for(lambda: "listening on" in open(serve_log, errors="replace").read()
                             or target.poll() is not None, "tern serve to listen")
            r = subprocess.run([self.tern, "migrate", "--control", source_control, "--to", to,
                                "--key", self.key], capture_output=True, text=True)
            m = re.match(r"migrated to \S+: (\d+) rounds, ([\d.]+) MiB sent, downtime ([\d.]+) ms",
                         r.stdout.strip())
            if r.returncode != 0 or not m:
                sys.exit(f"bench: tern migrate failed: {r.stdout} {r.stderr}")
            program.wait()
            program = target
            self.wait_running(self.control())
            time.sleep(1)
            open(stop, "w").close()
            out, err = testlib.communicate(clients)
            c = json.loads(out.decode().strip().splitlines()[-1])
            if clients.returncode != 0:
                sys.exit(f"bench: clients failed during a move: {c} {err.decode()[-2000:]}")
            self.moved_connections(freezes)
            frozen = self.log_times("program \\S+ checkpoints")[freezes]
            ready = [t for t in self.log_times("program \\S+ is ready") if t > frozen][0]
            results.append({"stall_ms": c["longest_stall_ms"], "away_ms": (ready - frozen) * 1e3,
                            "downtime_ms": float(m.group(3)), "rounds": int(m.group(1)),
                            "replies": c["replies"], **self.stall_window(c, frozen, ready)})
        return results


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile_table(runs):
    def pick(key):
        return {k: [r[key] for r in v] for k, v in runs.items()}
    p50, p99 = pick("p50_us"), pick("p99_us")
    print(f"{'round':>5} {'direct p50':>11} {'gateway p50':>12} {'added':>7}   "
          f"{'direct p99':>11} {'gateway p99':>12} {'added':>7}")
    for i in range(len(p50["direct"])):
        d50, g50, d99, g99 = p50["direct"][i], p50["gateway"][i], p99["direct"][i], p99["gateway"][i]
        print(f"{i + 1:>5} {d50:>9.1f}us {g50:>10.1f}us {100 * (g50 / d50 - 1):>6.1f}%   "
              f"{d99:>9.1f}us {g99:>10.1f}us {100 * (g99 / d99 - 1):>6.1f}%")
    m = {k: statistics.median(v) for k, v in p50.items()}
    m99 = {k: statistics.median(v) for k, v in p99.items()}
    print(f"median {m['direct']:>8.1f}us {m['gateway']:>10.1f}us "
          f"{100 * (m['gateway'] / m['direct'] - 1):>6.1f}%   {m99['direct']:>9.1f}us "
          f"{m99['gateway']:>10.1f}us {100 * (m99['gateway'] / m99['direct'] - 1):>6.1f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--mode", default="jit")
    ap.add_argument("--skip-latency", action="store_true", help="only the moves")
    ap.add_argument("--skip-moves", action="store_true", help="only the latency")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    with tempfile.TemporaryDirectory(prefix="tern-gateway-bench-") as tmp, Hosts() as hosts:
        bench = Bench(build, hosts, tmp, args.mode)
        if not args.skip_latency:
            latency(bench, args)
        if not args.skip_moves:
            moves(bench, args)


def latency(bench, args):
    bench.servers()
    print(f"latency: {args.requests} requests per run, one connection, one request at a "
          f"time, server in {args.mode} mode")
    percentile_table(bench.latency(args.requests, args.rounds, 1, 1))
    print(f"\nlatency under load: {args.requests} requests per run over 64 connections with "
          f"4 requests in flight each, server in {args.mode} mode")
    percentile_table(bench.latency(args.requests, args.rounds, 64, 4))
    bench.stop_direct()


def moves(bench, args):
    print(f"\nmoves: 64 connections, 4 requests in flight each, checkpoint file + restore "
          f"a <-> b, {args.mode} mode")
    print(f"{'move':>4} {'away':>9} {'longest stall':>14} {'move stall':>11} "
          f"{'move stall - away':>18} {'replies':>8} {'from FREEZE':>12} {'to READY':>9}")
    for i, r in enumerate(bench.moves_stall(args.moves)):
        print(f"{i + 1:>4} {r['away_ms']:>7.1f}ms {r['stall_ms']:>12.1f}ms "
              f"{r['move_stall_ms']:>9.1f}ms {r['move_stall_ms'] - r['away_ms']:>16.1f}ms "
              f"{r['replies']:>8} {r['begin_ms']:>10.1f}ms {r['end_ms']:>7.1f}ms")
    print(f"\nmoves: 64 connections, 4 requests in flight each, tern migrate a <-> b, "
          f"{args.mode} mode")
    print(f"{'move':>4} {'rounds':>6} {'downtime':>9} {'away':>9} {'longest stall':>14} "
          f"{'move stall':>11} {'move stall - downtime':>22} {'replies':>8} {'from FREEZE':>12} "
          f"{'to READY':>9}")
    for i, r in enumerate(bench.moves_stall_migrate(args.moves)):
        print(f"{i + 1:>4} {r['rounds']:>6} {r['downtime_ms']:>7.1f}ms {r['away_ms']:>7.1f}ms "
              f"{r['stall_ms']:>12.1f}ms {r['move_stall_ms']:>9.1f}ms "
              f"{r['move_stall_ms'] - r['downtime_ms']:>20.1f}ms {r['replies']:>8} "
              f"{r['begin_ms']:>10.1f}ms {r['end_ms']:>7.1f}ms")


if __name__ == "__main__":
    main()
