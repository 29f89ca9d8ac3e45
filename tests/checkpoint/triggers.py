#!/usr/bin/env python3
"""Checkpoint triggers and blocked host calls, end to end through the `tern`
binary: a signal, SIGTERM with --checkpoint-on-exit, --checkpoint-every,
the control socket (tern checkpoint), the guest's tern.checkpoint(), and
programs blocked in poll_oneoff, fd_read on a pipe and sock_accept. Each
snapshot is restored in a new process, which must continue exactly where
the program was; bad snapshots must be refused with one clear error.

Checkpoints requested asynchronously land wherever the program is, so the
tests check structure, not timing: a restored run prints a contiguous tail
of the uninterrupted run's output, ending the same way.

    triggers.py --tern build/tern --programs DIR[:DIR...] CASE...
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (IDLE_LIMIT, Cases, connect, expect, expect_equal, finish, free_port,  # noqa: E402
                     Background, expect_chain, in_parallel, kill_if_running, read_until,
                     wait_blocked, wait_for)

case = Cases("trigger")
# Engine pairs a blocked host call is checkpointed and restored across.
ENGINE_PAIRS = ("interp:aot", "interp:jit", "aot:interp", "jit:interp", "aot:jit")


def frames(env, snapshot):
    rc, out, err = env.run(["inspect", "--json", snapshot])
    expect_equal(rc, 0, f"tern inspect exit status ({err})")
    return json.loads(out)["threads"][0]["frames"]


def expect_tail(tail, full, what):
    """`tail` is a non-empty contiguous ending of `full`, cut at a line."""
    expect(tail and full.endswith(tail) and (len(tail) == len(full) or
                                             full[len(full) - len(tail) - 1] == "\n"),
           f"{what} is not a tail of the uninterrupted output:\n{tail!r}\nvs\n{full!r}")


def innermost_kind(env, snapshot):
    return frames(env, snapshot)[0]["kind"]


# --- triggers ------------------------------------------------------------------

@case
def signal_(env):
    """SIGUSR1 checkpoints and the program continues; the program is blocked
    in poll_oneoff (a sleep) nearly all the time, so that is where it lands."""
    rc, ref, _ = env.run(["run", env.wasm("sleeper"), "16", "60"])
    expect_equal(rc, 0, "reference exit status")
    snap = env.path("signal.snap")
    proc = env.start(["run", "--checkpoint-to", snap, env.wasm("sleeper"), "16", "60"])
    head = read_until(proc, "tick 4 ")
    wait_blocked(proc)
    proc.send_signal(signal.SIGUSR1)
    rc, rest, err = finish(proc)
    expect_equal(rc, 0, f"exit status after a continuing checkpoint ({err})")
    expect_equal(head + rest, ref, "output of the checkpointed run")
    expect(os.path.exists(snap), "no snapshot written")
    expect_equal(innermost_kind(env, snap), "host-call", "innermost frame kind (poll_oneoff)")
    rc, restored, err = env.run(["restore", snap])
    expect_equal(rc, 0, f"restore exit status ({err})")
    expect_tail(restored, ref, "restored output")
    expect("tick 4 " not in restored.split("\n")[0] or restored == ref[ref.index("tick 4"):],
           "restored output starts before the checkpoint")


@case
def sigterm(env):
    """--checkpoint-on-exit: SIGTERM checkpoints, then tern exits 0; the
    restore prints the rest."""
    rc, ref, _ = env.run(["run", env.wasm("spinner"), "12"])
    expect_equal(rc, 0, "reference exit status")
    snap = env.path("term.snap")
    proc = env.start(["run", "--checkpoint-to", snap, "--checkpoint-on-exit",
                      env.wasm("spinner"), "12"])
    head = read_until(proc, "round 1 ")
    proc.send_signal(signal.SIGTERM)
    rc, rest, err = finish(proc)
    expect_equal(rc, 0, f"exit status after SIGTERM ({err})")
    expect(len(head + rest) < len(ref), "the program ran to its end despite SIGTERM")
    rc, restored, err = env.run(["restore", snap])
    expect_equal(rc, 0, f"restore exit status ({err})")
    expect_equal(head + rest + restored, ref, "output before SIGTERM + restored output")


@case
def every(env):
    """--checkpoint-every: periodic snapshots of a running program. The
    period is a twentieth of the uninterrupted run measured just before
    (100 rounds: about 0.7 s in the interpreter on an idle machine), so the
    run spans many periods however loaded the machine is: a fixed 10 ms
    period took one checkpoint after another on a busy machine, each one
    waiting for the previous write, and the run took half an hour."""
    start = time.monotonic()
    rc, ref, _ = env.run(["run", env.wasm("spinner"), "100"])
    period_ms = max(10, int((time.monotonic() - start) * 1000 / 20))
    snap = env.path("every.snap")
    rc, out, err = env.run(["run", "--checkpoint-to", snap, "--checkpoint-every", f"{period_ms}ms",
                            env.wasm("spinner"), "100"])
    expect_equal((rc, out), (0, ref), f"a run checkpointed periodically ({err})")
    expect(os.path.exists(snap), "no periodic snapshot written")
    rc, restored, err = env.run(["restore", snap])
    expect_equal(rc, 0, f"restore exit status ({err})")
    # On a busy machine the checkpointed run spans more periods than the
    # measured one, and the last may come after the last line (seen: the
    # restore printed nothing): then nothing is the tail it must print.
    if restored or not ref.endswith("\n"):
        expect_tail(restored, ref, "restored output")


@case
def control(env):
    """tern checkpoint --control: writes to -o PATH, reports it; status."""
    rc, ref, _ = env.run(["run", env.wasm("sleeper"), "30", "50"])
    sock, snap = env.path("ctl.sock"), env.path("ctl.snap")
    proc = env.start(["run", "--control", sock, env.wasm("sleeper"), "30", "50"])
    try:
        read_until(proc, "tick 0 ")
        rc, out, err = env.run(["checkpoint", "--control", sock, "-o", snap])
        expect_equal((rc, out), (0, f"checkpoint written to {snap}\n"), f"client ({err})")
        rc, out, err = env.run(["checkpoint", "--control", sock, "--status"])
        expect_equal(rc, 0, f"status exit ({err})")
        expect(out.startswith("running engine=auto checkpoints=1 pending=0 last=" + snap),
               f"status: {out!r}")
    finally:
        rc, _, err = finish(proc)
    expect_equal(rc, 0, f"program exit status ({err})")
    expect(not os.path.exists(sock), "the control socket was left behind")
    rc, restored, err = env.run(["restore", snap])
    expect_equal(rc, 0, f"restore exit status ({err})")
    expect_tail(restored, ref, "restored output")
    # Nobody listening: one clear error.
    rc, out, err = env.run(["checkpoint", "--control", sock, "-o", snap])
    expect(rc == 1 and err.startswith("tern: error: cannot reach the control socket"), err)


@case
def control_bad_reply(env):
    """A socket that is not tern's control socket: the client reports the
    reply it did not expect (exit 1) instead of printing it as a success."""
    sock = env.path("fake.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock)
    server.listen(4)

    def answer(count):
        for _ in range(count):
            conn, _ = server.accept()
            with conn:
                conn.recv(256)
                conn.sendall(b"hello from something else\n")

    for args in ([], ["--status"]):
        t = threading.Thread(target=answer, args=(1,), daemon=True)
        t.start()
        rc, out, err = env.run(["checkpoint", "--control", sock, "-o", env.path("x.snap"), *args])
        t.join(timeout=IDLE_LIMIT)
        lines = err.splitlines()
        expect(rc == 1 and len(lines) == 1 and lines[0].startswith("tern: error: ") and
               "unexpected reply" in lines[0], f"checkpoint {args}: {rc} {err!r}")
        expect_equal(out, "", f"checkpoint {args}: stdout")
    server.close()


@case
def control_stop(env):
    """--stop ends the run once the snapshot is safe; the restore continues.
    The program sleeps most of its 2 s, so it is still running when the
    request comes however busy the machine (10 rounds of spinner were
    seen to end first)."""
    rc, ref, _ = env.run(["run", env.wasm("sleeper"), "40", "50"])
    sock, snap = env.path("stop.sock"), env.path("stop.snap")
    proc = env.start(["run", "--control", sock, env.wasm("sleeper"), "40", "50"])
    head = read_until(proc, "tick 1 ")
    rc, out, err = env.run(["checkpoint", "--control", sock, "-o", snap, "--stop"])
    expect_equal(rc, 0, f"client ({err})")
    rc, rest, err = finish(proc)
    expect_equal(rc, 0, f"stopped program exit status ({err})")
    rc, restored, err = env.run(["restore", snap])
    expect_equal(head + rest + restored, ref, "output before the stop + restored output")


@case
def guest(env):
    """tern.checkpoint(): 0 after the checkpoint, 1 in the restored program,
    -1 without a destination."""
    snap = env.path("guest.snap")
    rc, out, err = env.run(["run", "--checkpoint-to", snap, env.wasm("asks")])
    expect_equal(rc, 0, f"exit status ({err})")
    before, after = out.splitlines()
    expect(before.startswith("before "), out)
    expect(after.startswith("checkpoint returned 0, after "), out)
    rc, restored, err = env.run(["restore", snap])
    expect_equal((rc, restored), (0, after.replace("returned 0", "returned 1") + "\n"),
                 f"restored output ({err})")
    rc, out, _ = env.run(["run", env.wasm("asks")])
    expect("checkpoint returned -1, after " in out, f"without --checkpoint-to: {out!r}")


# --- blocked host calls ------------------------------------------------------------
# These run with --mode and restore with --restore-mode (default: the same),
# so a call blocked under one engine is issued again under another.

@case.also_in(*ENGINE_PAIRS)
def blocked_sleep(env):
    """A program asleep in poll_oneoff stops at that call; after the restore
    the sleep is issued again with its original deadline and the program
    goes on."""
    snap = env.path("sleep.snap")
    rc, ref, _ = env.run(["run", *env.engine_args(env.mode), env.wasm("sleeper"), "3", "400"])
    sock = env.path("sleep.sock")
    proc = env.start(["run", *env.engine_args(env.mode), "--control", sock, env.wasm("sleeper"), "3", "400"])
    head = read_until(proc, "tick 1 ")
    wait_blocked(proc)
    rc, _, err = env.run(["checkpoint", "--control", sock, "-o", snap, "--stop"])
    expect_equal(rc, 0, f"client ({err})")
    rc, rest, err = finish(proc)
    expect_equal(innermost_kind(env, snap), "host-call", "innermost frame of a sleeping program")
    rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), snap])
    expect_equal((rc, head + rest + restored), (0, ref), f"output across the restore ({err})")


@case.also_in(*ENGINE_PAIRS)
def blocked_read(env):
    """A program blocked reading a pipe stops without consuming input; the
    restored program reads its new stdin and numbers on."""
    lines = [f"line {i} {'x' * i}\n" for i in range(1, 6)]
    rc, ref, _ = env.run(["run", *env.engine_args(env.mode), env.wasm("reader")], stdin="".join(lines).encode())
    sock, snap = env.path("read.sock"), env.path("read.snap")
    proc = env.start(["run", *env.engine_args(env.mode), "--control", sock, env.wasm("reader")], stdin=subprocess.PIPE)
    proc.stdin.write("".join(lines[:3]).encode())
    proc.stdin.flush()
    head = read_until(proc, "3: ")
    wait_blocked(proc)
    rc, _, err = env.run(["checkpoint", "--control", sock, "-o", snap, "--stop"])
    expect_equal(rc, 0, f"client ({err})")
    proc.stdin.close()
    proc.stdin = None  # communicate() must not touch it again
    rc, rest, err = finish(proc)
    expect_equal((rc, rest), (0, ""), f"the stopped reader ({err})")
    expect_equal(innermost_kind(env, snap), "host-call", "innermost frame of a blocked read")
    rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), snap], stdin="".join(lines[3:]).encode())
    expect_equal((rc, head + restored), (0, ref), f"output across the restore ({err})")


def echo(port, data):
    with connect(port) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := c.recv(65536):
            got += chunk
        return got


@case.also_in(*ENGINE_PAIRS)
def blocked_accept(env):
    """A server blocked in sock_accept stops there; the restored server has
    its listening socket bound again at the same port and serves."""
    port = free_port()
    sock, snap = env.path("accept.sock"), env.path("accept.snap")
    proc = env.start(["run", *env.engine_args(env.mode), "--listen", f"127.0.0.1:{port}", "--control", sock,
                      env.wasm("tcp_echo"), "2"])
    try:
        head = read_until(proc, "listening on fd")
        expect_equal(echo(port, b"first"), b"first", "echo before the checkpoint")
        head += read_until(proc, "connection 1")
        wait_blocked(proc)
        rc, _, err = env.run(["checkpoint", "--control", sock, "-o", snap, "--stop"])
        expect_equal(rc, 0, f"client ({err})")
        rc, rest, err = finish(proc)
    finally:
        kill_if_running(proc)
    expect_equal(innermost_kind(env, snap), "host-call", "innermost frame of sock_accept")
    proc = env.start(["restore", *env.engine_args(env.restore_mode), "--listen",
                      f"127.0.0.1:{port}", snap])
    try:
        expect_equal(echo(port, b"second"), b"second", "echo after the restore")
        rc, restored, err = finish(proc)
    finally:
        kill_if_running(proc)
    expect_equal(rc, 0, f"restored server exit status ({err})")
    expect_equal(head + rest + restored, "listening on fd 3\nconnection 1: echoed 5 bytes\n"
                 "connection 2: echoed 6 bytes\n", "server output across the restore")


@case.also_in(*ENGINE_PAIRS)
def blocked_wait(env):
    """A program blocked in memory.atomic.wait32 (its shared memory, a 4 s
    timeout) stops at the wait: the innermost frame is an atomic wait and
    the snapshot's wait queue holds thread 0 with the time it had left.
    Continued in place (SIGUSR1), the wait goes on where it was; restored,
    it waits out the rest and the program prints the same ticks, every
    wait timing out (no wakeup invented). The program spends its time
    waiting, so the reference run and the two checkpointed runs (each
    restored as soon as its snapshot is written) go on at the same time."""
    wasm = env.wasm("atomic_sleeper")

    def restore(taken):
        return env.run(["restore", *env.engine_args(env.restore_mode), taken])

    def continued():
        cont = env.path("wait-continue.snap")
        proc = env.start(["run", *env.engine_args(env.mode), "--checkpoint-to", cont, wasm])
        head = read_until(proc, "waiting")
        wait_blocked(proc)
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(cont) or proc.poll() is not None, "the snapshot")
        restored = Background(lambda: restore(cont))
        rc, rest, err = finish(proc)
        return cont, (rc, head + rest, err), restored.get()

    def stopped():
        sock, snap = env.path("wait.sock"), env.path("wait.snap")
        proc = env.start(["run", *env.engine_args(env.mode), "--control", sock, wasm])
        head = read_until(proc, "waiting")
        wait_blocked(proc)
        rc, _, err = env.run(["checkpoint", "--control", sock, "-o", snap, "--stop"])
        expect_equal(rc, 0, f"client ({err})")
        rc, rest, err = finish(proc)
        return snap, (rc, head + rest, err), restore(snap)

    (rc, ref, err), (cont, continued_run, cont_restored), (snap, stopped_run, snap_restored) = \
        in_parallel(lambda: env.run(["run", *env.engine_args(env.mode), wasm]), continued, stopped)
    expect_equal((rc, ref.splitlines()[-1]), (0, "tick 5: 2"), f"reference run ({err})")
    rc, out, err = continued_run
    expect_equal((rc, out), (0, ref), f"output of a run checkpointed in its wait ({err})")
    rc, out, err = stopped_run
    expect_equal((rc, out), (0, "waiting\n"), f"the stopped program ({err})")
    for taken, (rc, restored, err) in ((cont, cont_restored), (snap, snap_restored)):
        expect_equal((rc, "waiting\n" + restored), (0, ref), f"output across the restore ({err})")
        rc, out, err = env.run(["inspect", "--json", taken])
        expect_equal(rc, 0, f"tern inspect ({err})")
        described = json.loads(out)
        expect_equal(described["threads"][0]["frames"][0]["kind"], "atomic-wait",
                     "innermost frame of a program blocked in a wait")
        queues = described["wait_queues"]
        expect_equal((len(queues), queues[0]["memory"], len(queues[0]["queues"]),
                      queues[0]["queues"][0]["address"], queues[0]["notified"]),
                     (1, 0, 1, 0, []), f"the wait queues recorded: {queues}")
        waiters = queues[0]["queues"][0]["waiters"]
        expect(len(waiters) == 1 and waiters[0]["thread"] == 0 and
               0 <= waiters[0]["remaining_ns"] <= 4_000_000_000, f"the waiter recorded: {waiters}")


@case.also_in(*ENGINE_PAIRS)
def blocked_wait_incremental(env):
    """Incremental checkpoints every 300 ms of a program that spends its
    time in memory.atomic.wait32 (issue 19 item 5): the links taken while
    it waits carry the wait queue, and every link restores (in the restore
    engine) to the rest of the uninterrupted output, each wait timing out
    as it would have. The reference run is made during the checkpointed
    one, and the links are restored at the same time (each restore waits
    out the rest of a sleep)."""
    wasm = env.wasm("atomic_sleeper")
    snap = env.path("chain.snap")
    (rc, ref, err), (rc2, out, err2) = in_parallel(
        lambda: env.run(["run", *env.engine_args(env.mode), wasm]),
        lambda: env.run(["run", *env.engine_args(env.mode), "--checkpoint-to", snap,
                         "--incremental", "--checkpoint-every", "300ms", wasm]))
    expect_equal(rc, 0, f"reference run ({err})")
    expect_equal((rc2, out), (0, ref), f"output of the checkpointed run ({err2})")
    links = sorted((p for p in os.listdir(os.path.dirname(snap))
                    if p.startswith("chain.snap.")), key=lambda p: int(p.rsplit(".", 1)[1]))
    expect(len(links) >= 2, f"links written: {links}")

    def restored(link):
        path = os.path.join(os.path.dirname(snap), link)
        waiting = innermost_kind(env, path) == "atomic-wait"
        rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), path])
        expect_equal(rc, 0, f"restore of {link} ({err})")
        expect_tail(restored, ref, f"output restored from {link}")
        return waiting

    waiting = in_parallel(*(lambda link=link: restored(link) for link in links))
    expect(any(waiting), f"no link of {links} was taken in a wait")


# --- incremental chains by every trigger ---------------------------------------------
# (--checkpoint-every-points: incremental.py; --checkpoint-every:
# blocked_wait_incremental above.) Links are restored in each engine in turn.
CHAIN_MODES = ("interp", "aot", "jit")


def memory_sha256(stats):
    with open(stats) as f:
        return json.load(f)["memory_sha256"]


def reader_chain(env, trigger, extra=()):
    """The reader guest blocked in fd_read on its stdin pipe after each of
    its first LINKS lines; `trigger(proc, k)` asks for checkpoint k there
    (and waits until it is written), so each link's place is known
    exactly. Every link, restored and fed the lines after it, must print
    the rest of the uninterrupted output and end with its final memory.
    Every run is fed alike (a line at a time, each waited for, then the
    rest at once), so the stdio buffer in memory holds the same bytes."""
    links = 4
    lines = [f"line {i} {'z' * (i * 7)}\n" for i in range(1, links + 3)]

    def feed(proc, first, trigger=None):
        """Feeds lines[first:]; returns (output so far after each line up
        to LINKS, exit status, the whole output, stderr)."""
        printed, after = "", []
        try:
            for i in range(first, links):
                proc.stdin.write(lines[i].encode())
                proc.stdin.flush()
                printed += read_until(proc, f"{i + 1}: ")
                if trigger:
                    wait_blocked(proc)
                    trigger(proc, i + 1)
                after.append(printed)
            proc.stdin.write("".join(lines[links:]).encode())
            proc.stdin.close()
            proc.stdin = None  # communicate() must not touch it again
        finally:
            rc, rest, err = finish(proc)
        return after, rc, printed + rest, err

    ref_stats = env.path("ref-stats.json")
    _, rc, ref, err = feed(env.start(["run", "--stats-out", ref_stats, env.wasm("reader")],
                                     stdin=subprocess.PIPE), 0)
    expect_equal(rc, 0, f"reference run ({err})")
    head = os.path.join(env.fresh_dir("chain"), "s")
    heads, rc, out, err = feed(env.start(["run", "--checkpoint-to", head, "--incremental", *extra,
                                          env.wasm("reader")], stdin=subprocess.PIPE), 0, trigger)
    expect_equal((rc, out), (0, ref), f"the checkpointed run ({err})")
    expect_chain(env, head, links)
    for k in range(1, links + 1):
        mode = CHAIN_MODES[k % len(CHAIN_MODES)]
        stats = env.path(f"stats-{k}.json")
        proc = env.start(["restore", *env.engine_args(mode), "--stats-out", stats, f"{head}.{k}"],
                         stdin=subprocess.PIPE)
        _, rc, restored, err = feed(proc, k)
        expect_equal((rc, heads[k - 1] + restored), (0, ref),
                     f"link s.{k} restored in {mode}: output before it + restored output ({err})")
        expect_equal(memory_sha256(stats), memory_sha256(ref_stats),
                     f"link s.{k} restored in {mode}: the final memory")


@case.needs_compiler
def incremental_signal(env):
    """--incremental with SIGUSR1: each signal adds a link to the chain."""
    def trigger(proc, k):
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(env.path(f"chain/s.{k}")), f"link s.{k}")
    reader_chain(env, trigger)


@case.needs_compiler
def incremental_control(env):
    """--incremental with `tern checkpoint --control` (no -o: to
    --checkpoint-to): each request adds a link."""
    sock = env.path("ctl.sock")

    def trigger(proc, k):
        rc, out, err = env.run(["checkpoint", "--control", sock])
        # The reply names PATH, which names the newest link.
        expect_equal((rc, out), (0, f"checkpoint written to {env.path('chain/s')}\n"),
                     f"tern checkpoint {k} ({err})")
        expect(os.path.exists(env.path(f"chain/s.{k}")), f"request {k} wrote no link s.{k}")
    reader_chain(env, trigger, ["--control", sock])


@case.needs_compiler
def incremental_guest(env):
    """--incremental with the guest's own tern.checkpoint(): asks_often
    changes pages of its buffer and checkpoints, ROUNDS times; each link
    restored (checkpointing again elsewhere) prints the rest of the run,
    its first call returning 1."""
    rounds = 5
    head = os.path.join(env.fresh_dir("chain"), "s")
    rc, ref, err = env.run(["run", "--checkpoint-to", head, "--incremental",
                            env.wasm("asks_often"), str(rounds)])
    expect_equal(rc, 0, f"the checkpointed run ({err})")
    out_lines = ref.splitlines(keepends=True)
    expect(len(out_lines) == rounds + 1 and
           all(f"checkpoint {i} returned 0" in out_lines[i] for i in range(rounds)),
           f"the checkpointed run's output: {ref!r}")
    expect_chain(env, head, rounds)
    for k in range(1, rounds + 1):
        mode = CHAIN_MODES[k % len(CHAIN_MODES)]
        # Line k-1 says what checkpoint k-1 returned: 1 in the restored program.
        want = ([out_lines[k - 1].replace("returned 0", "returned 1")] + out_lines[k:])
        rc, restored, err = env.run(["restore", *env.engine_args(mode), "--checkpoint-to",
                                     env.path(f"again-{k}"), f"{head}.{k}"])
        expect_equal((rc, restored), (0, "".join(want)),
                     f"link s.{k} restored in {mode} ({err})")


# --- bad snapshots -------------------------------------------------------------------

@case
def bad_snapshots(env):
    snap = env.path("good.snap")
    rc, _, err = env.run(["run", "--checkpoint-to", snap, "--checkpoint-at", "500",
                          "--stop-after-checkpoint", env.wasm("spinner"), "1"])
    expect_equal(rc, 0, f"checkpoint ({err})")
    data = open(snap, "rb").read()

    def refused(name, content, needle, extra=()):
        path = env.path(name)
        with open(path, "wb") as f:
            f.write(content)
        rc, out, err = env.run(["restore", *extra, path])
        lines = err.strip().splitlines()
        expect(rc == 1 and len(lines) == 1 and lines[0].startswith("tern: error: ") and
               needle in lines[0], f"{name}: exit {rc}, stderr {err!r} (wanted {needle!r})")

    refused("truncated.snap", data[: len(data) // 2], "truncated.snap")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x10
    refused("flipped.snap", bytes(flipped), "flipped.snap")
    version = bytearray(data)
    version[8] = 99  # the format version follows the 8-byte magic
    refused("version.snap", bytes(version), "version")
    refused("empty.snap", b"", "empty.snap")
    refused("missing.snap-not-written", b"", "missing.snap-not-written")
    os.unlink(env.path("missing.snap-not-written"))
    rc, _, err = env.run(["restore", env.path("missing.snap-not-written")])
    expect(rc == 1 and "missing.snap-not-written" in err, f"missing snapshot: {err!r}")
    # Another module: the hashes are named.
    rc, _, err = env.run(["restore", "--module", env.wasm("sleeper"), snap])
    expect(rc == 1 and "sha256" in err and len(err.strip().splitlines()) == 1,
           f"wrong module: {err!r}")


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0]))
