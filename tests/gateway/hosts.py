"""Hosts for the gateway tests: network namespaces linked by veth pairs.

    clients 10.77.1.2 ---- 10.77.1.1 ┐
                                     gateway
    a       10.77.2.2 ---- 10.77.2.1 ┤
    b       10.77.3.2 ---- 10.77.3.1 ┘

The gateway namespace is the hub; each host has one link to it and a route
to the others through it (IP forwarding on), so a program on a or b can
reach a service on clients (outgoing connections) while clients reach the
program only through `tern gateway`. Addresses exist only inside these
namespaces, so parallel runs can use the same ones; names carry the pid so
they never collide. The namespaces and everything running in them are
removed when the test ends, however it ends (context manager, atexit,
SIGTERM).
"""

import atexit
import os
import random
import signal
import subprocess
import time

import testlib  # tests/ is on the path of the scripts that import this

ADDRESS = {"clients": "10.77.1.2", "a": "10.77.2.2", "b": "10.77.3.2"}
GATEWAY_ADDRESS = {"clients": "10.77.1.1", "a": "10.77.2.1", "b": "10.77.3.1"}
SUBNET = {"clients": 1, "a": 2, "b": 3}

_live = []


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _cleanup_all():
    for hosts in list(_live):
        hosts.remove()


atexit.register(_cleanup_all)


def _on_sigterm(signum, frame):
    _cleanup_all()
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_sigterm)


class Hosts:
    def __init__(self):
        tag = f"tg{os.getpid()}{random.randrange(36**3):03x}"
        self.ns = {name: f"{tag}-{name}" for name in ("gateway", "clients", "a", "b")}
        self.created = []
        self.procs = []
        _live.append(self)
        try:
            self._create()
        except BaseException:
            self.remove()
            raise

    def _create(self):
        for ns in self.ns.values():
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        gw = self.ns["gateway"]
        _ip("netns", "exec", gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for host, n in SUBNET.items():
            ns = self.ns[host]
            _ip("-n", gw, "link", "add", f"to-{host}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _ip("-n", gw, "addr", "add", f"10.77.{n}.1/24", "dev", f"to-{host}")
            _ip("-n", gw, "link", "set", f"to-{host}", "up")
            _ip("-n", ns, "addr", "add", f"10.77.{n}.2/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.77.{n}.1")

    def remove(self):
        """Kills whatever runs in the namespaces, then deletes them."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for ns in self.created:
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.created):
            for _ in range(50):
                if _ip("netns", "del", ns, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        self.created = []
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def command(self, host, argv):
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def start(self, host, argv, **kwargs):
        """Popen of argv on `host`; stdout and stderr are pipes unless given."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.command(host, argv), **kwargs)
        self.procs.append(p)
        return p

    def run(self, host, argv):
        """Runs argv on `host` to its end (testlib.run_process: waited for
        while it progresses): a testlib.Completed."""
        return testlib.run_process(self.command(host, argv))
