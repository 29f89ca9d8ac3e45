#!/usr/bin/env python3
"""Attacks on tern (docs/security.md, issue 14): a hostile guest, forged
snapshots (written by forge_snapshot with valid checksums) and names planted
in directories tern writes to. Each case is an attack that worked before the
fix and must now fail harmlessly: the files outside the sandbox (a sentinel
tree watched with inotify, a victim file) are never opened or changed, and
the restore refuses with one clear error.

    attacks.py --tern build/tern --forge build/tests/security/forge_snapshot \\
        --programs DIR[:DIR...] CASE...
"""

import ctypes
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (Cases, communicate, expect, expect_equal, expect_one_error,  # noqa: E402
                     finish, free_port, kill_if_running, read_text, read_until, run_process,
                     start, wait_for)

case = Cases("security")


def security_env(env, args):
    env.forge_tool = os.path.abspath(args.forge)
    return env


# --- what must stay untouched -----------------------------------------------------


class Untouched:
    """An inotify watch on every directory of a tree: any open, read, write,
    attribute change, creation, deletion or move inside it is recorded.
    events() returns them (the watch starts empty)."""

    IN_ALL = 0x00000FFF  # access, modify, attrib, close, open, moves, create, delete

    def __init__(self, root):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        expect(self.fd >= 0, f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self.names = {}
        dirs = [dirpath for dirpath, _, _ in os.walk(root)]
        for d in dirs:
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(d), self.IN_ALL)
            expect(wd >= 0, f"inotify_add_watch {d}: {os.strerror(ctypes.get_errno())}")
            self.names[wd] = d
        self.events()  # whatever the walk itself caused

    def events(self):
        out = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            pos = 0
            while pos < len(data):
                wd, mask, _, length = struct.unpack_from("iIII", data, pos)
                name = data[pos + 16:pos + 16 + length].rstrip(b"\0").decode()
                out.append((os.path.join(self.names.get(wd, "?"), name), hex(mask)))
                pos += 16 + length

    def close(self):
        os.close(self.fd)


def sentinel_tree(env):
    """A directory the user never grants, with files a forged snapshot may
    name; returns (its path, its watch)."""
    root = env.fresh_dir("sentinel")
    os.makedirs(os.path.join(root, "sub"))
    for rel, text in (("secret", "sentinel secret\n"), ("out", "sentinel out\n"),
                      ("sub/deeper", "deeper\n")):
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    return root, Untouched(root)


def expect_untouched(watch, what):
    events = watch.events()
    expect(not events, f"{what}: the sentinel tree was touched: {events[:6]}")


def victim_file(env, name="victim"):
    path = env.path(name)
    with open(path, "w") as f:
        f.write("precious\n")
    return path


def expect_victim_intact(path, what):
    expect(not os.path.islink(path), f"{what}: the victim was replaced by a link")
    with open(path, "rb") as f:
        content = f.read()
    expect(content == b"precious\n", f"{what}: the victim file was written: {content[:40]!r}")


# --- running tern -------------------------------------------------------------------


def run_planted(env, args, plant, stdin=b""):
    """`tern ARGS` with plant(pid) called in the new process just before it
    becomes tern (so pid is tern's): an attacker who knows or guesses the
    pid plants names in advance."""
    def preexec():
        plant(os.getpid())
    p = run_process(env.tern + args, stdin, preexec_fn=preexec)
    return p.rc, p.out.decode(errors="replace"), p.err.decode(errors="replace")


def plant_link(target, at):
    def plant(pid):
        os.symlink(target, at.format(pid=pid))
    return plant


def forge(env, snap, *edits):
    out = snap + ".forged"
    p = run_process([env.forge_tool, snap, out] + [str(e) for e in edits])
    expect(p.rc == 0, f"forge_snapshot {edits}: {p.err.decode()}")
    return out


def checkpointed(env, name, args, stdin=b"", extra=()):
    """Runs the attacker guest (MODE ARGS) under `tern run EXTRA
    --checkpoint-to SNAP`; it checkpoints itself. Returns (SNAP, stdout)."""
    snap = env.path(name + ".snap")
    rc, out, err = env.run(["run", *extra, "--checkpoint-to", snap, env.wasm("attacker"), *args],
                           stdin=stdin)
    expect(rc == 0 and "checkpoint 0" in out and os.path.exists(snap),
           f"the checkpointed run: exit {rc}, stdout {out!r}, stderr {err!r}")
    return snap, out


def data_dir(env, name="data"):
    d = env.fresh_dir(name)
    with open(os.path.join(d, "in.txt"), "w") as f:
        f.write("the program's own input\n")
    return d


# --- 1. temporary names -------------------------------------------------------------


@case
def temp_checkpoint_in_preopen(env):
    """The guest plants a link at the checkpoint's temporary name inside its
    own directory (made pointing inside, moved to where it points out) and
    asks for a checkpoint written there: tern never writes through it."""
    root = env.fresh_dir("ck")
    data = os.path.join(root, "data")
    os.mkdir(data)
    victim = victim_file(env, "ck/victim")
    snap = os.path.join(data, "snap")
    # A checkpoint that stops is written by tern itself (one that continues
    # by a child, whose pid the guest could only guess).
    proc = env.start(["run", "--dir", f"{data}::/data", "--checkpoint-to", snap,
                      "--stop-after-checkpoint", env.wasm("attacker"), "plant-checkpoint", "/data",
                      "snap"], stdin=subprocess.PIPE)
    try:
        out, err = communicate(proc, f"{proc.pid}\n".encode())
        out, err = out.decode(), err.decode()
    finally:
        kill_if_running(proc)
    expect_victim_intact(victim, "checkpoint inside the preopen")
    expect_equal(out, f"planted snap.tmp.{proc.pid}\n", f"stdout (stderr {err!r})")
    expect(os.path.isfile(snap) and not os.path.islink(snap), "the snapshot is a file of its own")
    rc, _, err = env.run(["inspect", snap])
    expect_equal(rc, 0, f"the snapshot written is whole ({err})")


@case
def temp_bundled_restore(env):
    """A link planted at the temporary name of a bundled file's write-back
    is not followed."""
    data = data_dir(env)
    snap, _ = checkpointed(env, "bundled", ["write", "/data/out.txt"],
                           extra=["--dir", f"{data}::/data", "--bundle-files"])
    target = env.fresh_dir("target")
    victim = victim_file(env)
    rc, out, err = run_planted(env, ["restore", "--dir", f"{target}::/data", snap],
                               plant_link("../victim", os.path.join(target, "out.txt.tmp.{pid}")))
    expect_victim_intact(victim, "bundled write-back")
    expect_equal((rc, out), (0, "checkpoint 1\n"), f"the restore ({err})")
    expect_equal(read_text(os.path.join(target, "out.txt")), "written before\nwritten after\n",
                 "the bundled file, written back and continued")


def cache_attack(env, mode):
    cache = env.fresh_dir("cache")
    wasm = env.wasm("exit_code")
    rc, _, err = env.run(["run", "--mode", mode, "--cache-dir", cache, wasm, "0"])
    expect_equal(rc, 0, f"first {mode} run ({err})")
    entries = os.listdir(cache)
    expect_equal(len(entries), 1, f"cache entries {entries}")
    os.unlink(os.path.join(cache, entries[0]))
    victim = victim_file(env)
    rc, _, err = run_planted(env, ["run", "--mode", mode, "--cache-dir", cache, wasm, "0"],
                             plant_link(victim, os.path.join(cache, entries[0] + ".tmp.{pid}")))
    expect_victim_intact(victim, f"{mode} cache entry")
    expect_equal(rc, 0, f"second {mode} run ({err})")
    expect(os.path.isfile(os.path.join(cache, entries[0])), "the cache entry written again")


@case.needs_compiler
def temp_cache_aot(env):
    """A local user who can write the compiled-code cache plants a link at
    an entry's temporary name."""
    cache_attack(env, "aot")


@case.needs_compiler
def temp_cache_jit(env):
    cache_attack(env, "jit")


@case.needs_compiler
def temp_compile_output(env):
    victim = victim_file(env)
    out = env.path("prog.aot")
    rc, _, err = run_planted(env, ["compile", env.wasm("exit_code"), "-o", out],
                             plant_link(victim, out + ".tmp.{pid}"))
    expect_victim_intact(victim, "tern compile -o")
    expect_equal(rc, 0, f"tern compile ({err})")


@case
def temp_stats_output(env):
    victim = victim_file(env)
    stats = env.path("stats.json")
    rc, _, err = run_planted(env, ["run", "--stats-out", stats, env.wasm("exit_code"), "0"],
                             plant_link(victim, stats + ".tmp.{pid}"))
    expect_victim_intact(victim, "--stats-out")
    expect_equal(rc, 0, f"tern run --stats-out ({err})")
    expect_equal(json.loads(read_text(stats))["exit_status"], 0, "the stats written")


@case
def temp_without_o_tmpfile(env):
    """Where a file cannot be created unnamed (tern links an O_TMPFILE file
    through /proc/self/fd; here /proc is not mounted, as on a file system
    without O_TMPFILE), the snapshot is written under a name of its own
    (O_EXCL, O_NOFOLLOW, a random part) and renamed: whole, mode 0600,
    nothing left behind. The directory's inotify events show the fallback
    ran: data written to the temporary name, not to an unnamed file."""
    d = env.fresh_dir("no-tmpfile")
    snap = os.path.join(d, "snap")
    watch = Untouched(d)
    run = [*env.tern, "run", "--checkpoint-at", "3", "--checkpoint-to", snap,
           "--stop-after-checkpoint", env.wasm("exit_code"), "0"]
    p = run_process(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     'umount -l /proc && exec "$@"', "sh", *run])
    events = watch.events()
    watch.close()
    expect_equal(p.rc, 0, f"the checkpoint without /proc ({p.err!r})")
    written = {os.path.basename(path) for path, mask in events if int(mask, 16) & 0x2}
    expect(written and all(n.startswith(".snap.tern-tmp.") for n in written),
           f"data written under the temporary name only: {sorted(written)}")
    expect_equal(os.listdir(d), ["snap"], "files left in the checkpoint directory")
    expect_equal(oct(stat.S_IMODE(os.stat(snap).st_mode)), oct(0o600), "the snapshot's mode")
    rc, _, err = env.run(["inspect", snap])
    expect_equal(rc, 0, f"the snapshot written is whole ({err})")


@case
def killed_writer_leaves_nothing(env):
    """tern killed (kill -9) while it writes a snapshot leaves the previous
    snapshot and nothing else."""
    d = env.fresh_dir("killed")
    snap = os.path.join(d, "snap")
    proc = start(env.tern + ["run", "--checkpoint-to", snap, "--checkpoint-every", "50ms",
                             env.wasm("attacker"), "fill", "32"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        read_until(proc, "filled")

        def writing():
            """A snapshot write under way: a temporary name in the
            directory, or an unnamed file there open in tern or its
            writer."""
            if any(n != "snap" for n in os.listdir(d)):
                return True
            for pid in process_tree(proc.pid):
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(d + "/#"):
                            return True
                    except OSError:
                        pass
            return False
        wait_for(lambda: os.path.exists(snap) and writing(), "a snapshot write under way")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    expect_equal(os.listdir(d), ["snap"], "files left in the checkpoint directory")
    rc, _, err = env.run(["inspect", snap])
    expect_equal(rc, 0, f"the previous snapshot is whole ({err})")


def process_tree(pid):
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += process_tree(int(child))
    except OSError:
        pass
    return out


# --- 2. a snapshot chooses no host paths ----------------------------------------------


def reading_snapshot(env):
    """A genuine snapshot of a program reading /data/in.txt (fd 3 the
    preopen, fd 4 the file)."""
    data = data_dir(env)
    snap, _ = checkpointed(env, "reader", ["read", "/data/in.txt"],
                           extra=["--dir", f"{data}::/data"])
    return data, snap


@case
def forged_preopen(env):
    """A forged preopen of a directory the user never gave, and a file
    beneath it, next to a preopen the restore does grant."""
    data, snap = reading_snapshot(env)
    sentinel, watch = sentinel_tree(env)
    forged = forge(env, snap, "add-preopen", "/evil", sentinel, "add-file", 9, 1, "secret")
    rc, out, err = env.run(["restore", "--dir", f"{data}::/data", forged])
    expect_untouched(watch, "forged preopen")
    expect_one_error(rc, err, [r"fd 9 \(/evil/secret\)", "preopen /evil", re.escape(sentinel),
                               "--dir-from-snapshot"], "forged preopen")
    expect_equal(out, "", "stdout of the refused restore")
    # A preopen of / is refused the same way (nothing is opened to say so).
    forged = forge(env, snap, "add-preopen", "/", "/", "add-file", 9, 1, "etc/hostname")
    rc, _, err = env.run(["restore", "--dir", f"{data}::/data", forged])
    expect_one_error(rc, err, [r"fd 9 \(/etc/hostname\)", "grants no directory"], "preopen of /")


@case
def forged_stdin(env):
    """A stream record that redirects stdin to a file the user never named,
    at fd 0 or at any other fd."""
    snap, _ = checkpointed(env, "stdin", ["stdin"])
    sentinel, watch = sentinel_tree(env)
    secret = os.path.join(sentinel, "secret")
    for fd in (0, 7):
        forged = forge(env, snap, "redirect", fd, 0, secret)
        rc, out, err = env.run(["restore", forged])
        expect_untouched(watch, f"stdin record at fd {fd}")
        expect("sentinel secret" not in out, f"the secret was read: {out!r}")
        expect_one_error(rc, err, [rf"fd {fd} \(stdin redirected to {re.escape(secret)}\)",
                                   "--stdin FILE", "--stdio-from-snapshot"],
                         f"stdin record at fd {fd}")


@case
def forged_stdout(env):
    """A stream record that sends stdout into a file the user never named."""
    snap, _ = checkpointed(env, "stdout", ["stdin"])
    sentinel, watch = sentinel_tree(env)
    target = os.path.join(sentinel, "out")
    forged = forge(env, snap, "redirect", 1, 1, target)
    rc, _, err = env.run(["restore", forged], stdin=b"overwrite it\n")
    expect_untouched(watch, "stdout record")
    expect_equal(read_text(target), "sentinel out\n", "the file stdout was sent to")
    expect_one_error(rc, err, [r"fd 1 \(stdout redirected to", "--stdout FILE"], "stdout record")


@case
def genuine_redirect_needs_consent(env):
    """Even a genuine snapshot's paths are the user's to grant: its
    directory with --dir or --dir-from-snapshot, its redirected stdin with
    --stdin or --stdio-from-snapshot."""
    data = data_dir(env)
    stdin = env.path("stdin.txt")
    with open(stdin, "w") as f:
        f.write("line one\nline two\n")
    snap, _ = checkpointed(env, "genuine", ["read", "/data/in.txt"],
                           extra=["--dir", f"{data}::/data", "--stdin", stdin])
    rc, _, err = env.run(["restore", "--dir", f"{data}::/data", snap])
    expect_one_error(rc, err, [r"fd 0 \(stdin redirected to", "--stdio-from-snapshot"],
                     "a redirected stdin without consent")
    rc, _, err = env.run(["restore", "--stdio-from-snapshot", snap])
    expect_one_error(rc, err, ["preopen /data", re.escape(data), "--dir-from-snapshot"],
                     "a preopen without a grant")
    rc, out, err = env.run(["restore", "--dir-from-snapshot", "--stdio-from-snapshot", snap])
    expect_equal((rc, out), (0, "checkpoint 1\nthe program's own input\n"),
                 f"with consent ({err})")


@case
def genuine_listener_needs_grant(env):
    """A listening socket comes back only where the restore's own --listen
    or --allow-bind says."""
    port = free_port()
    snap, _ = checkpointed(env, "listener", ["stdin"], extra=["--listen", f"127.0.0.1:{port}"])
    rc, _, err = env.run(["restore", snap])
    expect_one_error(rc, err, [rf"fd 3 \(tcp-listener 127\.0\.0\.1:{port}\)",
                               rf"--listen 127\.0\.0\.1:{port}", "--allow-bind"],
                     "a listener without a grant")
    rc, out, err = env.run(["restore", "--listen", f"127.0.0.1:{port}", snap])
    expect_equal((rc, out), (0, "checkpoint 1\n"), f"with --listen ({err})")
    rc, out, err = env.run(["restore", "--allow-bind", "127.0.0.1", snap])
    expect_equal((rc, out), (0, "checkpoint 1\n"), f"with --allow-bind ({err})")


@case
def forged_udp_socket(env):
    """Socket records the user never allowed: a UDP socket on every
    interface talking to a peer, a listener on 0.0.0.0, a TCP socket bound
    but not listening."""
    snap, _ = checkpointed(env, "udp", ["stdin"])
    port, peer = free_port(), free_port()
    forged = forge(env, snap, "add-socket", 12, "udp-socket", f"0.0.0.0:{port}",
                   f"127.0.0.1:{peer}")
    rc, _, err = env.run(["restore", forged])
    expect_one_error(rc, err, [rf"fd 12 \(udp-socket 0\.0\.0\.0:{port}\)", "--allow-bind"],
                     "a forged UDP socket")
    rc, _, err = env.run(["restore", "--allow-bind", "0.0.0.0", forged])
    expect_one_error(rc, err, [r"fd 12", rf"--allow-connect 127\.0\.0\.1:{peer}"],
                     "a forged UDP peer")
    forged = forge(env, snap, "add-socket", 12, "tcp-listener", f"0.0.0.0:{port}")
    rc, _, err = env.run(["restore", "--allow-bind", "127.0.0.1", forged])
    expect_one_error(rc, err, [rf"fd 12 \(tcp-listener 0\.0\.0\.0:{port}\)"],
                     "a forged listener on every interface")
    forged = forge(env, snap, "add-socket", 12, "tcp-socket", f"127.0.0.1:{port}")
    rc, _, err = env.run(["restore", forged])
    expect_one_error(rc, err, [rf"fd 12 \(tcp-socket 127\.0\.0\.1:{port}\)",
                               rf"--allow-bind 127\.0\.0\.1:{port}"], "a forged bound TCP socket")


# --- 4. bundled files ---------------------------------------------------------------


@case
def bundled_setuid_mode(env):
    """A bundled file's mode comes back without setuid, setgid or sticky
    bits, owned by whoever restores."""
    data = data_dir(env)
    snap, _ = checkpointed(env, "mode", ["write", "/data/out.txt"],
                           extra=["--dir", f"{data}::/data", "--bundle-files"])
    forged = forge(env, snap, "bundle-mode", "7755")
    target = env.fresh_dir("target")
    rc, out, err = env.run(["restore", "--dir", f"{target}::/data", forged])
    expect_equal((rc, out), (0, "checkpoint 1\n"), f"the restore ({err})")
    st = os.stat(os.path.join(target, "out.txt"))
    expect_equal(oct(stat.S_IMODE(st.st_mode)), oct(0o755), "the written-back file's mode")
    expect_equal(st.st_uid, os.geteuid(), "its owner")


# --- 6. guest-triggered hangs and undefined behaviour ----------------------------------


@case
def udp_shutdown_spin(env):
    """recv on a UDP socket shut down for reading returns 0 (as on Linux)
    instead of spinning for ever."""
    rc, out, err = env.run(["run", "--allow-bind", "127.0.0.1", env.wasm("attacker"),
                            "udp-shutdown"])
    expect_equal(rc, 0, f"exit status ({err})")
    expect(out.endswith("recv returned 0\n"), f"stdout: {out!r}")


@case
def udp_timeout_overflow(env):
    """A receive timeout near INT64_MAX µs waits (it used to overflow and
    fail at once); negative ones are EDOM."""
    proc = env.start(["run", "--allow-bind", "127.0.0.1", "--allow-connect", "127.0.0.1",
                      env.wasm("attacker"), "udp-timeout"])
    try:
        head = read_until(proc, "waiting")
        port = int(re.search(r"bound to port (\d+)", head).group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", port))
        rc, rest, err = finish(proc)
    finally:
        kill_if_running(proc)
    expect_equal(head + rest, f"bound to port {port}\ntimeout INT64_MIN: EDOM\ntimeout -1: EDOM\n"
                 "waiting\nreceived x\n", f"stdout (stderr {err!r})")


@case
def file_became_fifo(env):
    """A file the program had open is a FIFO when it is restored: the
    restore says so instead of waiting for a writer for ever."""
    data, snap = reading_snapshot(env)
    os.unlink(os.path.join(data, "in.txt"))
    os.mkfifo(os.path.join(data, "in.txt"))
    rc, _, err = env.run(["restore", "--dir", f"{data}::/data", "--allow-changed-files", snap])
    expect_one_error(rc, err, [r"fd 4 \(/data/in\.txt\)", "is now a fifo"], "a FIFO")


# --- 7. hygiene -----------------------------------------------------------------------


@case
def inspect_non_utf8(env):
    """Arguments and environment are any bytes; tern inspect --json keeps
    them (as arrays of byte values) instead of failing."""
    snap = env.path("bytes.snap")
    p = run_process(env.tern + ["run", "--env", b"K=\xff\xfe", "--checkpoint-at", "1",
                                "--checkpoint-to", snap, "--stop-after-checkpoint",
                                env.wasm("args_env"), b"\xc3\x28", "plain"])
    expect(p.rc == 0, f"the checkpoint: {p.err!r}")
    rc, out, err = env.run(["inspect", "--json", snap])
    expect_equal(rc, 0, f"tern inspect --json ({err})")
    wasi = [s["content"] for s in json.loads(out)["sections"] if s["tag"] == "WASI"][0]
    expect_equal(wasi["args"][1:], [[0xc3, 0x28], "plain"], "arguments: bytes, and a string")
    expect_equal(wasi["env"], [list(b"K=\xff\xfe")], "the environment's bytes")
    rc, out, err = env.run(["inspect", snap])
    expect_equal(rc, 0, f"tern inspect ({err})")
    expect(" $'\\xc3(' plain\n" in out and "env: $'K=\\xff\\xfe'\n" in out,
           f"the text shows the bytes as a shell reads them: {out[-700:]}")


@case
def huge_table(env):
    """A valid module with a table of 2^32 - 1 elements: a clear error."""
    wat = env.path("table.wat")
    with open(wat, "w") as f:
        f.write('(module (table 0xffffffff funcref) (func (export "_start")))')
    wasm = env.path("table.wasm")
    subprocess.run(["wat2wasm", wat, "-o", wasm], check=True)
    rc, _, err = env.run(["run", wasm])
    expect_one_error(rc, err, ["table of 4294967295 elements", "limit"], "a huge table")


@case
def two_wasi_sections(env):
    data, snap = reading_snapshot(env)
    forged = forge(env, snap, "duplicate-wasi")
    for args in (["restore", "--dir", f"{data}::/data", forged], ["inspect", forged]):
        rc, _, err = env.run(args)
        expect_one_error(rc, err, ["section WASI", "repeated"], f"tern {args[0]}")


@case
def snapshot_mode(env):
    """Snapshots hold the program's memory and environment: mode 0600,
    even under umask 0."""
    snap = env.path("private.snap")
    p = run_process(env.tern + ["run", "--checkpoint-at", "1", "--checkpoint-to", snap,
                                "--stop-after-checkpoint", env.wasm("exit_code"), "0"],
                    preexec_fn=lambda: os.umask(0))
    expect(p.rc == 0, f"the checkpoint: {p.err!r}")
    expect_equal(oct(stat.S_IMODE(os.stat(snap).st_mode)), oct(0o600), "the snapshot's mode")


if __name__ == "__main__":
    def add_arguments(ap):
        ap.add_argument("--forge", help="the forge_snapshot tool")
    sys.exit(case.main(__doc__.split("\n\n")[0], make_env=security_env,
                       add_arguments=add_arguments))
