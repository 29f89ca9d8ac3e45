"""Two hosts for migration tests: network namespaces joined by a veth pair.

    with TwoHosts() as hosts:
        src = hosts.start(hosts.a, ["tern", "run", ...])   # a process on host A
        hosts.b_addr                                       # B's address, "10.93.0.2"
        hosts.link_down()                                   # cut the link
        hosts.limit_rate("40mbit")                          # a slow link

Names carry this process's pid and a random part, so tests run by several
people at once never collide; each instance removes its namespaces (and
whatever still runs in them) on exit, and namespaces left by a test that
was killed are removed by the next one (their pid is gone). Needs root
(ip netns); traffic stays inside the two namespaces.
"""

import os
import random
import re
import signal
import subprocess

PREFIX = "tern-mig-"
A_ADDR, B_ADDR = "10.93.0.1", "10.93.0.2"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def available():
    """Whether this process can create namespaces (root, iproute2)."""
    if os.geteuid() != 0:
        return False
    try:
        return ip("netns", "list", check=False).returncode == 0
    except FileNotFoundError:
        return False


def remove_stale():
    """Namespaces of earlier test processes that no longer exist."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(PREFIX + r"(\d+)-\w+-[ab]", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            kill_all_in(name)
            ip("netns", "del", name, check=False)


def kill_all_in(ns):
    for pid in ip("netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class TwoHosts:
    def __init__(self):
        tag = f"{os.getpid()}-{random.randrange(16**6):06x}"
        self.a = f"{PREFIX}{tag}-a"
        self.b = f"{PREFIX}{tag}-b"
        self.a_addr, self.b_addr = A_ADDR, B_ADDR
        self.procs = []

    def __enter__(self):
        remove_stale()
        try:
            ip("netns", "add", self.a)
            ip("netns", "add", self.b)
            # Created inside the namespaces: no name in the host's namespace.
            ip("link", "add", "veth0", "netns", self.a, "type", "veth", "peer", "name", "veth0",
               "netns", self.b)
            for ns, addr in ((self.a, A_ADDR), (self.b, B_ADDR)):
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "veth0")
                ip("-n", ns, "link", "set", "veth0", "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            self.__exit__(None, None, None)
            raise RuntimeError(f"cannot create the test hosts: {e.stderr.strip()}") from e
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in (self.a, self.b):
            kill_all_in(ns)
            ip("netns", "del", ns, check=False)
        return False

    def command(self, ns, cmd):
        return ["ip", "netns", "exec", ns] + list(cmd)

    def start(self, ns, cmd, **popen):
        """A process on host `ns`; killed at exit if still running."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.command(ns, cmd), **popen)
        self.procs.append(p)
        return p

    def link_down(self):
        ip("-n", self.a, "link", "set", "veth0", "down")

    def link_up(self):
        ip("-n", self.a, "link", "set", "veth0", "up")

    def limit_rate(self, rate):
        """Host A sends at most `rate` (tc syntax: 40mbit) towards B."""
        ip("netns", "exec", self.a, "tc", "qdisc", "replace", "dev", "veth0", "root", "tbf", "rate",
           rate, "burst", "64kb", "latency", "400ms")
