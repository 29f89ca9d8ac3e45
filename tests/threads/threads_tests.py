#!/usr/bin/env python3
"""wasi-threads under `tern run`: the threaded C guests (POSIX threads from
guest/) print their known answers in every engine, many runs in a row; a
thread that exits or traps ends the whole program; the thread limit; modules
that import thread-spawn without the rest of the ABI are refused with one
error.

    threads_tests.py --tern build/tern --programs build/tests/threads CASE...
    threads_tests.py --list
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (Cases, Failure, chain_links, expect, expect_chain,  # noqa: E402
                     expect_equal, expect_one_error, finish, free_port, in_parallel,
                     kill_if_running, start, stopped, tern_command, wait_for)

case = Cases("threads")

MODES = ("interp", "aot", "jit", "auto")
# Each guest's output, worked out by hand (not taken from tern):
#  sum_mutex: 0 + 1 + ... + 99999 = 99999 * 100000 / 2;
#  queue_cond: 2 producers x (1 + ... + 5000) = 2 * 12502500;
#  stencil_barrier: the parallel checksum equals the serial one (the guest
#    computes both; the value itself is checked to be that one);
#  thread_pool: the workers did all 200 tasks; the step total is the sum of
#    the Collatz steps of 1000000 + 7i, i < 200 (collatz_total below).
RUNS = 20  # runs of each guest in each engine


def collatz_total():
    total = 0
    for i in range(200):
        n, steps = 1000000 + 7 * i, 0
        while n != 1:
            n = 3 * n + 1 if n % 2 else n // 2
            steps += 1
        total += steps
    return total


def stencil_checksum():
    cells, steps, prime = 4096, 200, 1000003
    g = [(i * 7919) % (1 << 32) % prime for i in range(cells)]
    for _ in range(steps):
        g = [(g[i - 1] + 2 * g[i] + 3 * g[(i + 1) % cells] + 1) % prime for i in range(cells)]
    s = 0
    for v in g:
        s = (s * 31 + v) % (1 << 64)
    return s


def expected_output(guest):
    if guest == "sum_mutex":
        return "sum 4999950000 of 100000 additions\n"
    if guest == "queue_cond":
        return "consumed 10000 items, sum 25005000\n"
    if guest == "stencil_barrier":
        c = stencil_checksum()
        return f"stencil {c}, serial {c}\n"
    if guest == "thread_pool":
        return f"pool: 200 tasks, 200 by the workers, {collatz_total()} steps\n"
    raise ValueError(guest)


GUESTS = ("sum_mutex", "queue_cond", "stencil_barrier", "thread_pool")


def make_stress_case(guest, mode):
    def stress(env):
        if mode != "interp" and not env.compiler:
            return
        want = expected_output(guest)
        for run in range(RUNS):
            rc, out, err = env.run(["run"] + engine_args(env, mode) + [env.wasm(guest)])
            expect_equal((rc, out), (0, want), f"{guest} in {mode}, run {run + 1} (stderr {err!r})")
    return stress


for guest in GUESTS:
    for mode in MODES:
        case.add(f"{guest}.{mode}", make_stress_case(guest, mode))


# --- checkpoint of running threads (issue 19 items 4, 5) ----------------------

CHECKPOINT_MODES = ("interp", "aot", "jit")


def usr1_caught(pid):
    """Whether tern (pid) has its SIGUSR1 handler installed: a signal before
    that (fork to exec, startup) would kill it instead of checkpointing."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGUSR1 - 1)))
    except OSError:
        pass
    return False


def running(control):
    """Whether the program behind control socket `control` runs (its status
    says `running`: its module loaded, compiled or decoded, and started)."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(control)
            s.sendall(b"status\n")
            return s.makefile("rb").readline().startswith(b"running")
    except OSError:
        return False


def signalled_run(tern, args, control, delay):
    """`tern ARGS --control CONTROL` (`tern` a command list) that gets
    SIGUSR1 `delay` seconds after its program started running (the signal
    handlers are installed before), or no signal if `delay` is None.
    Returns (status, stdout, stderr, seconds from its start to its end)."""
    if os.path.exists(control):  # left by the run before
        os.remove(control)
    proc = start(tern + args[:1] + ["--control", control] + args[1:], stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not running(control) and proc.poll() is None:
        time.sleep(0.001)  # startup is short; a hang is caught by finish()
    began = time.monotonic()
    if delay is not None:
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
    rc, out, err = finish(proc)
    return rc, out, err, time.monotonic() - began


def checkpoint_once(env, guest, mode, restore_mode, delay, snap, tern, restore_tern):
    """One moment: `tern run --checkpoint-to` gets SIGUSR1 after `delay`
    seconds and continues; then the snapshot (if the signal came before the
    end) is restored by `restore_tern` in `restore_mode`. Returns (outputs
    to compare, threads in the snapshot or 0 without one)."""
    if os.path.exists(snap):
        os.remove(snap)
    rc, out, err, _ = signalled_run(tern, ["run"] + engine_args(env, mode) +
                                    ["--checkpoint-to", snap, env.wasm(guest)],
                                    snap + ".sock", delay)
    results = [(f"run in {mode}, signal after {delay * 1000:.1f} ms", rc, out, err)]
    if not os.path.exists(snap):
        return results, 0
    rc, described, err = env.run(["inspect", "--json", snap])
    expect_equal(rc, 0, f"inspect of the snapshot ({err})")
    threads = len(json.loads(described)["threads"])
    rc, out, err = env.run(["restore"] + engine_args(env, restore_mode) + [snap], tern=restore_tern)
    results.append((f"restore in {restore_mode} of a snapshot with {threads} threads taken in "
                    f"{mode} after {delay * 1000:.1f} ms", rc, out, err))
    return results, threads


def checkpoint_stress(env, guest, pairs, tern, restore_tern, what):
    """`env.moments` snapshots of the guest, each at a random moment (a
    signal at a random time of its run), taken by `tern` and restored by
    `restore_tern` in the engines of `pairs` ((checkpoint mode, restore
    mode), in turn): the checkpointed run and the restore both end with the
    known answer. Prints `GUEST (WHAT): N restores, M divergences`."""
    want = (0, expected_output(guest))
    rng = random.Random(env.seed * 8 + GUESTS.index(guest))
    rc, out, err, span = signalled_run(tern, ["run", env.wasm(guest)], env.path("ref.sock"), None)
    expect_equal((rc, out), want, f"reference run ({what}: {err!r})")
    # Moments are drawn inside the reference run's length from the moment
    # it could take a signal, shortened each time the signal came too late.
    restores = with_threads = attempts = 0
    divergences = []
    snap = env.path("moment.snap")
    while restores < env.moments and attempts < 4 * env.moments + 20:
        attempts += 1
        mode, restore_mode = pairs[restores % len(pairs)]
        delay = rng.uniform(0, span)
        results, threads = checkpoint_once(env, guest, mode, restore_mode, delay, snap, tern,
                                           restore_tern)
        if len(results) == 1:
            span = max(0.002, span * 0.7)
        for k, (moment, rc, out, err) in enumerate(results):
            # A restore prints what the run had not printed yet at the
            # checkpoint: a tail of the output, cut at a line (nothing, for
            # a snapshot taken on the way out after the answer).
            restored_tail = k > 0 and want[1].endswith(out) and (
                out == want[1] or out == "" or want[1][-len(out) - 1] == "\n")
            if rc != 0 or (out != want[1] and not restored_tail):
                divergences.append(f"{moment}: status {rc}, output {out!r}, stderr {err[-300:]!r}")
        if len(results) > 1:
            restores += 1
            with_threads += threads > 1
    print(f"{guest} ({what}): {restores} restores, {len(divergences)} divergences "
          f"({with_threads} with spawned threads running, {attempts} runs, seed {env.seed})",
          flush=True)
    expect(not divergences, "\n".join(divergences[:5]))
    expect(restores == env.moments, f"only {restores} of {env.moments} signals came before "
           f"the end in {attempts} runs")


def make_checkpoint_stress_case(guest):
    def stress(env):
        """`--moments` snapshots of the guest at random moments, taken in
        each engine and restored in each (every pair in turn)."""
        modes = CHECKPOINT_MODES if env.compiler else ("interp",)
        pairs = [(modes[r % len(modes)], modes[(r + r // len(modes)) % len(modes)])
                 for r in range(len(modes) ** 2)]
        checkpoint_stress(env, guest, pairs, env.tern, env.tern, "every engine pair")
    return stress


for guest in GUESTS:
    case.add(f"checkpoint_stress.{guest}", make_checkpoint_stress_case(guest))


@case.on_request
def cross_checkpoint_stress(env):
    """checkpoint_stress across CPUs: each guest checkpointed at
    `--moments` random moments by this machine's tern (interp, aot, jit in
    turn) and restored by --cross-tern (a tern built for s390x or aarch64,
    under qemu; its interpreter: a cross build has no compiler), then
    checkpointed there and restored here (interp, aot, jit in turn)."""
    if not env.cross_tern:
        raise Failure("cross_checkpoint_stress needs --cross-tern")
    modes = CHECKPOINT_MODES if env.compiler else ("interp",)
    for guest in GUESTS:
        checkpoint_stress(env, guest, [(m, "interp") for m in modes], env.tern, env.cross_tern,
                          "to the other CPU")
        checkpoint_stress(env, guest, [("interp", m) for m in modes], env.cross_tern, env.tern,
                          "back from it")


# --- incremental checkpoints of running threads (issue 19 item 5) -------------

# threaded_dirtier's arguments for the chains: 4 MiB, of which its two
# threads rewrite one random 64 KiB page each every 10 ms, so that a link
# every CHAIN_PERIOD (plus the time to write the one before) carries some of
# the pages only; for CHAIN_STEPS[0] steps, or (when a busy machine wrote
# fewer than CHAIN_LINKS links meanwhile) each of the next in turn.
CHAIN_STEPS = (150, 600, 2400)
CHAIN_PERIOD = "150ms"
CHAIN_LINKS = 3
LINK = re.compile(r"^tern: (\S+) is incremental: (\d+) of (\d+) pages written since (\S+)$", re.M)


def is_tail(out, want):
    """Whether `out` is what a restore prints of `want`: an ending of it
    cut at a line (nothing, for a snapshot taken after the last line)."""
    return want.endswith(out) and (out in ("", want) or want[-len(out) - 1] == "\n")


def dirtier_chain(env, mode, head, steps):
    """threaded_dirtier for `steps` steps, run in `mode` with --incremental
    periodic checkpoints to `head`: (its output, which the run's must be,
    the links written, what --verbose-checkpoints said)."""
    program = [env.wasm("threaded_dirtier"), "4", str(steps), "1"]
    rc, want, err = env.run(["run", "--mode", "interp"] + program)
    expect(rc == 0 and want.startswith("ready\nchecksum "),
           f"the uninterrupted run: {rc} {want!r} ({err!r})")
    shutil.rmtree(os.path.dirname(head), ignore_errors=True)
    os.makedirs(os.path.dirname(head))
    rc, out, err = env.run(["run"] + engine_args(env, mode) +
                           ["--checkpoint-to", head, "--incremental", "--checkpoint-every",
                            CHAIN_PERIOD, "--verbose-checkpoints"] + program)
    expect_equal((rc, out), (0, want), f"the checkpointed run in {mode} ({err[-1500:]!r})")
    return want, chain_links(os.path.dirname(head), "s"), err


@case
def incremental_chains(env):
    """Incremental snapshots of a threaded program (issue 19 item 5):
    threaded_dirtier run in compiled code (jit; the interpreter in a build
    without the compiler) with --incremental periodic checkpoints
    (--checkpoint-every) while its threads rewrite pages: the run ends as
    an uninterrupted one; its chain is s.1 self-contained and s.2...
    incremental, each carrying fewer pages than the memory has; at least
    two links hold the frames of all three threads; and every link,
    restored in every engine (interp, aot, jit), ends with the rest of the
    uninterrupted output."""
    modes = CHECKPOINT_MODES if env.compiler else ("interp",)
    mode = modes[-1]
    for restore_mode in modes[1:]:  # compiles before the restores share the cache
        rc, out, err = env.run(["run"] + engine_args(env, restore_mode) +
                               [env.wasm("threaded_dirtier"), "4", "1", "1"])
        expect_equal(rc, 0, f"a run in {restore_mode} ({err!r})")
    head = os.path.join(env.path("chain"), "s")
    for steps in CHAIN_STEPS:
        want, links, said = dirtier_chain(env, mode, head, steps)
        if len(links) >= CHAIN_LINKS:
            break
        print(f"  {steps} steps: {len(links)} links, again with more steps", flush=True)
    expect(len(links) >= CHAIN_LINKS, f"links written: {links} ({said[-1500:]!r})")
    expect_chain(env, head, len(links))
    expect(f"tern: {head}.1 is self-contained (the chain starts)" in said,
           f"what --verbose-checkpoints said of s.1: {said[-1500:]!r}")
    carried = {os.path.basename(m.group(1)): (int(m.group(2)), int(m.group(3)))
               for m in LINK.finditer(said)}
    expect(sorted(carried) == sorted(links[1:]) and
           all(n < total for n, total in carried.values()),
           f"the incremental links and the pages each carried: {carried}")
    with_threads = 0
    for link in links:
        rc, described, err = env.run(["inspect", "--json", os.path.join(env.path("chain"), link)])
        expect_equal(rc, 0, f"inspect {link} ({err})")
        threads = json.loads(described)["threads"]
        with_threads += len(threads) == 3 and all(t["frames"] for t in threads)

    def restore(link, restore_mode):
        rc, out, err = env.run(["restore"] + engine_args(env, restore_mode) +
                               [os.path.join(env.path("chain"), link)])
        return link, restore_mode, rc, out, err

    # Each restore sleeps out the rest of the steps: all at once.
    results = in_parallel(*(lambda link=link, m=m: restore(link, m)
                            for link in links for m in modes))
    for link, restore_mode, rc, out, err in results:
        # Only the newest link can come after the checksum line: every other
        # restore must print it, the proof its memory came back whole.
        expect(rc == 0 and is_tail(out, want) and (out != "" or link == links[-1]),
               f"{link} of the {mode} chain restored in {restore_mode}: status {rc}, output "
               f"{out!r} ({err[-1000:]!r})")
    expect(with_threads >= 2, f"only {with_threads} of the links {links} hold the frames of "
           "the three threads")
    print(f"{mode} chain: {len(links)} links, pages carried {[carried.get(n) for n in links]}, "
          f"{with_threads} with 3 threads, each restored in {'/'.join(modes)}", flush=True)


def held_still(pid):
    """Whether process `pid` is held: every thread asleep and no CPU used
    for a while (tern run --pause-at waiting for its control request)."""
    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    try:
        before = cpu()
        time.sleep(0.2)
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "S":
                    return False
        return cpu() == before
    except OSError:
        return False


def migrate_program(env, key, program, mode, target_mode, what, pause_at=None,
                    ready=None, migrate_args=()):
    """`program` (tern run in `mode`) moves to a `tern serve` in
    `target_mode` (pre-copy rounds, the final stop of every thread) and
    finishes there; the source prints nothing more. The move starts once it
    is held at --pause-at `pause_at`, or once it printed the line `ready`.
    Returns (everything the program printed, its status there, the number
    of rounds tern migrate reported)."""
    port = free_port()
    serve = env.start(["serve", "--listen", f"127.0.0.1:{port}", "--key", key, "--once",
                       "--verbose"] + engine_args(env, target_mode))
    control = env.path(f"control-{time.monotonic_ns()}.sock")
    src = None
    try:
        expect("listening on" in read_err_until(serve, "listening on"), f"serve ({what})")
        hold = ["--pause-at", str(pause_at)] if pause_at is not None else []
        src = env.start(["run"] + engine_args(env, mode) + ["--control", control] + hold + program)
        printed = read_until(src.stdout, ready) if ready else ""
        wait_for(lambda: os.path.exists(control) or src.poll() is not None, "the control socket")
        if pause_at is not None:
            # Held at its pause point before it moves: then nothing runs
            # during pre-copy, and the final state carries (almost) no
            # pages; what the rounds brought must still be there.
            wait_for(lambda: held_still(src.pid) or src.poll() is not None, "the pause point")
        rc, out, err = env.run(["migrate", "--control", control, "--to", f"127.0.0.1:{port}",
                                "--key", key] + list(migrate_args))
        moved = re.match(rf"migrated to 127\.0\.0\.1:{port}: (\d+) rounds", out)
        if not (rc == 0 and moved):
            kill_if_running(src)
            kill_if_running(serve)
            raise Failure(f"tern migrate ({what}): {rc} {out!r} {err!r}; source: "
                          f"{src.stderr.read().decode()[-1500:]!r}; serve: "
                          f"{serve.stderr.read().decode()[-1500:]!r}")
        src_rc, src_out, src_err = finish(src)
        expect_equal(src_rc, 0, f"the source's status ({what}: {src_err})")
        t_rc, t_out, t_err = finish(serve)
        expect_equal(t_rc, 0, f"serve's status ({what}: {t_err[-500:]!r})")
        return printed + src_out + t_out, int(moved.group(1))
    finally:
        if src:
            kill_if_running(src)
        kill_if_running(serve)


def migrate_thread_pool(env, key, mode, target_mode, what):
    """thread_pool held at --pause-at while its three workers run or wait
    on their condition variable moves and finishes with the known answer."""
    out, _ = migrate_program(env, key, [env.wasm("thread_pool")], mode, target_mode, what,
                             pause_at=100)
    expect_equal(out, expected_output("thread_pool"), f"the output ({what})")


@case
def migrate_loopback(env):
    """tern migrate of a threaded program on loopback (issue 19 item 5), in
    the interpreter at both ends (no compile: cheap enough for every run),
    twice."""
    key = keygen(env, "site.key")
    migrate_thread_pool(env, key, "interp", "interp", "interp to interp")
    migrate_thread_pool(env, key, "interp", "interp", "interp to interp, again")


@case
def migrate_while_dirtying(env):
    """tern migrate of a threaded program that keeps writing its shared
    memory (threaded_dirtier: two threads rewrite 4 pages each every 10 ms)
    goes through at least two pre-copy rounds before the final state
    (--max-downtime 0): each round's pages must add to the earlier rounds'
    in the target's imported env.memory (clearing it at each round lost
    them: 6d64808). The program ends there with the checksum of an
    uninterrupted run."""
    program = [env.wasm("threaded_dirtier"), "4", "300"]
    rc, want, err = env.run(["run", "--mode", "interp"] + program)
    expect_equal(rc, 0, f"the uninterrupted run ({err!r})")
    key = keygen(env, "site.key")
    out, rounds = migrate_program(env, key, program, "interp", "interp", "while dirtying",
                                  ready="ready", migrate_args=["--max-downtime", "0",
                                                               "--max-rounds", "4"])
    print(f"  moved in {rounds} rounds", flush=True)
    expect(rounds >= 3, f"{rounds} rounds: fewer than two pre-copy rounds and the final one")
    expect_equal(out, want, f"the output after {rounds} rounds")


@case.on_request
def migrate_engines(env):
    """migrate_loopback in another engine each time: interp to aot, aot to
    jit, jit to interp (compiles the guest in two engines: not in every
    run)."""
    modes = CHECKPOINT_MODES if env.compiler else ("interp",)
    key = keygen(env, "site.key")
    for i, mode in enumerate(modes):
        target_mode = modes[(i + 1) % len(modes)]
        migrate_thread_pool(env, key, mode, target_mode, f"{mode} to {target_mode}")


# --- a failed migration leaves the threaded program running (issue 19 item 5) ---

# Where `tern serve` (TERN_MIGRATE_FAULT=PHASE, src/migrate/serve.cpp) stops
# itself: before accepting, after a pre-copy round, in the final state (the
# program stopped, every thread parked), rebuilt before saying ready, after
# the commit before confirming.
FAULT_PHASES = ("hello", "precopy", "final", "ready", "commit")


def failed_migration(env, key, to, pause_at, while_migrating=None, timeout="10s"):
    """thread_pool (interp) paused at `pause_at` with its workers running or
    waiting, a `tern migrate` to `to` that must fail (after
    while_migrating(), run meanwhile, has broken it): one error line, and
    the source finishes the program exactly as an uninterrupted run.
    Returns migrate's error line."""
    control = env.path(f"control-{time.monotonic_ns()}.sock")
    src = env.start(["run", "--mode", "interp", "--control", control, "--pause-at",
                     str(pause_at), env.wasm("thread_pool")])
    try:
        wait_for(lambda: os.path.exists(control) or src.poll() is not None, "the control socket")
        result = {}
        t = threading.Thread(target=lambda: result.update(r=env.run(
            ["migrate", "--control", control, "--to", to, "--key", key, "--timeout", timeout])))
        t.start()
        if while_migrating:
            while_migrating()
        wait_for(lambda: not t.is_alive(), "tern migrate to give up")
        rc, out, err = result["r"]
        expect(rc == 1 and err.startswith("tern: error: ") and len(err.strip().splitlines()) == 1,
               f"tern migrate: expected one error, got {rc} {out!r} {err!r}")
        src_rc, src_out, src_err = finish(src)
        expect_equal((src_rc, src_out, src_err), (0, expected_output("thread_pool"), ""),
                     f"the source after the failed migration ({err.strip()})")
        return err.strip()
    finally:
        kill_if_running(src)


def keygen(env, name):
    path = env.path(name)
    rc, out, err = env.run(["keygen", path])
    expect_equal(rc, 0, f"tern keygen ({err})")
    return path


@case
def migrate_faults(env):
    """A threaded program (thread_pool, three workers) whose migration fails
    goes on at the source and ends as an uninterrupted run, whatever
    failed: the target killed at each phase (before accepting, during
    pre-copy, in the final round with every thread stopped, before saying
    ready, after the commit before confirming), a target holding another
    key, a peer that closes the connection at once, nobody listening (the
    migration fails before the program reaches --pause-at: the pause must
    not then hold it for ever)."""
    key = keygen(env, "site.key")
    for phase in FAULT_PHASES:
        port = free_port()
        environ = dict(os.environ, TERN_MIGRATE_FAULT=phase)
        serve = start(env.tern + ["serve", "--listen", f"127.0.0.1:{port}", "--key", key,
                                  "--once", "--verbose", "--mode", "interp"],
                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      env=environ)
        try:
            read_err_until(serve, "listening on")

            def kill_at_phase():
                line = read_err_until(serve, "connected (process")
                child = int(re.search(r"process (\d+)", line).group(1))
                wait_for(lambda: stopped(child) or serve.poll() is not None,
                           f"the target to stop at {phase}")
                serve.kill()  # its receiving process dies with it
                serve.wait()
            failed_migration(env, key, f"127.0.0.1:{port}", 100, kill_at_phase)
        except Failure as e:
            raise Failure(f"target killed at {phase}: {e}")
        finally:
            kill_if_running(serve)

    other = keygen(env, "other.key")
    port = free_port()
    serve = env.start(["serve", "--listen", f"127.0.0.1:{port}", "--key", other, "--once",
                       "--verbose", "--mode", "interp"])
    try:
        read_err_until(serve, "listening on")
        err = failed_migration(env, key, f"127.0.0.1:{port}", 100)
        expect("key" in err, f"wrong key: {err!r}")
    finally:
        kill_if_running(serve)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def close_at_once():
            conn, _ = listener.accept()
            conn.close()
        failed_migration(env, key, "127.0.0.1:%d" % listener.getsockname()[1], 100,
                         close_at_once)

    # Nobody listens: refused at once, while the program is still on its
    # way to its pause point (late in its run).
    failed_migration(env, key, f"127.0.0.1:{free_port()}", 1000)


def read_until(pipe, text):
    """Reads a process's pipe (stdout, stderr) line by line until a line
    contains `text`; returns the lines read."""
    lines = []
    while True:
        line = pipe.readline().decode(errors="replace")
        if not line:
            raise Failure(f"the process ended before printing {text!r}: {''.join(lines)!r}")
        lines.append(line)
        if text in line:
            return "".join(lines)


def read_err_until(proc, text):
    return read_until(proc.stderr, text)


# --- a thread blocked in a WASI call does not block the others' calls ---------

BLOCKED_READER_OUT = "main printed while the reader waits\nreader got 'hello'\ndone\n"


def feed_after_printed(env, args, guest, printed, data, snap=None):
    """Runs `guest` (`args` before it); stdin gets `data` only once a line
    with `printed` is out, after a checkpoint (SIGUSR1) to `snap` if
    given. Returns (status, stdout, stderr)."""
    proc = env.start(args + [env.wasm(guest)], stdin=subprocess.PIPE)
    try:
        first = read_until(proc.stdout, printed)
        if snap:
            while not usr1_caught(proc.pid):
                time.sleep(0.001)
            proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: os.path.exists(snap) or proc.poll() is not None, "the snapshot")
        proc.stdin.write(data)
        proc.stdin.close()
        proc.stdin = None  # closed: finish() has nothing to send
        rc, out, err = finish(proc)
        return rc, first + out, err
    finally:
        kill_if_running(proc)


def feed_after_main_printed(env, args, snap=None):
    """blocked_reader, its stdin fed after main's line."""
    return feed_after_printed(env, args, "blocked_reader", "main printed", b"hello", snap)


@case
def blocked_reader(env):
    """One thread blocks in fd_read on stdin (a pipe) that the test feeds
    only after the main thread has printed: the main thread's fd_write goes
    on while the reader waits (the context's lock is not held across the
    blocking call), in every engine."""
    for mode in env.modes():
        rc, out, err = feed_after_main_printed(env, ["run"] + engine_args(env, mode))
        expect_equal((rc, out), (0, BLOCKED_READER_OUT), f"blocked_reader in {mode} ({err!r})")


@case
def blocked_reader_checkpoint(env):
    """The reader blocked in fd_read on stdin while main prints; a checkpoint
    (SIGUSR1) then, and stdin fed after it: the run ends with the known
    output, and the snapshot, restored in another engine with the same
    stdin, ends identically (the reader issues its read again)."""
    modes = CHECKPOINT_MODES if env.compiler else ("interp",)
    for i, mode in enumerate(modes):
        restore_mode = modes[(i + 1) % len(modes)]
        snap = env.path(f"blocked-{mode}.snap")
        rc, out, err = feed_after_main_printed(
            env, ["run"] + engine_args(env, mode) + ["--checkpoint-to", snap], snap)
        expect_equal((rc, out), (0, BLOCKED_READER_OUT), f"the run in {mode} ({err!r})")
        rc, out, err = env.run(["restore"] + engine_args(env, restore_mode) + [snap],
                               stdin=b"hello")
        expect_equal((rc, out), (0, "reader got 'hello'\ndone\n"),
                     f"the restore in {restore_mode} of a snapshot taken in {mode} ({err!r})")


def stdio_threads_lines(thread):
    """stdio_threads' lines of printer `thread`, in its order."""
    ways = ("printf, one call with its arguments", "fputs of a line formatted before",
            "fwrite of the same")
    return [f"thread {thread} line {i}: {ways[i % 3]}" for i in range(500)]


@case
def stdio_from_threads(env):
    """Four threads print 500 lines each to stdout (printf, fputs, fwrite)
    while a fifth waits in fgets on stdin, in every engine: every line
    comes out whole and each thread's in its order (the guest library locks
    each FILE: without it a run lost or mixed 1 to 25 lines), and the
    reader blocked on stdin does not hold the printers up (stdin is fed
    only after their last line)."""
    for mode in env.modes():
        rc, out, err = feed_after_printed(env, ["run"] + engine_args(env, mode), "stdio_threads",
                                          "printers done", b"hello\n")
        lines = out.splitlines()
        expect_equal((rc, lines[-2:]), (0, ["printers done", "reader got hello"]),
                     f"{mode}: the end of the output ({err!r})")
        for t in range(4):
            expect_equal([line for line in lines if line.startswith(f"thread {t} ")],
                         stdio_threads_lines(t), f"{mode}: thread {t}'s lines")
        expect_equal(len(lines), 4 * 500 + 2, f"{mode}: lines (a mixed one?)")


@case
def thread_exits(env):
    """exit(N) in a thread while main blocks in pthread_join (and another
    thread waits on a condition variable for ever): the program ends with N
    in every engine."""
    for mode in env.modes():
        rc, out, err = env.run(["run"] + engine_args(env, mode) +
                               [env.wasm("thread_ends_program"), "exit", "7"])
        expect_equal((rc, out), (7, "threads started\n"), f"exit(7) in a thread, {mode} ({err!r})")


@case
def thread_traps(env):
    """A trap in a thread ends the program as a trap (status 134, the trap's
    message) in every engine."""
    for mode in env.modes():
        rc, out, err = env.run(["run"] + engine_args(env, mode) +
                               [env.wasm("thread_ends_program"), "trap"])
        expect_equal((rc, out), (134, "threads started\n"), f"trap in a thread, {mode}")
        expect(err.startswith("tern: trap: unreachable"), f"{mode}: stderr {err!r}")


@case
def main_returns(env):
    """main returns while two threads wait: the program ends with main's
    status; the waiting threads do not keep it alive."""
    for mode in env.modes():
        rc, out, err = env.run(["run"] + engine_args(env, mode) +
                               [env.wasm("thread_ends_program"), "main-returns"])
        expect_equal((rc, out), (5, "threads started\n"), f"main returns 5, {mode} ({err!r})")


@case
def thread_limit(env):
    """--max-threads N: the (N+1)-th running thread is refused with EAGAIN,
    not a crash; after joins there is room again. The default limit (128)
    is reached the same way."""
    for mode in env.modes():
        rc, out, err = env.run(["run", "--max-threads", "5"] + engine_args(env, mode) +
                               [env.wasm("thread_limit")])
        expect_equal((rc, out), (0, "started 5 threads, then EAGAIN\n"
                                    "joined them; another one: started\n"),
                     f"--max-threads 5, {mode} ({err!r})")
    rc, out, err = env.run(["run", env.wasm("thread_limit")])
    expect_equal((rc, out), (0, "started 128 threads, then EAGAIN\n"
                                "joined them; another one: started\n"), f"default limit ({err!r})")
    rc, out, err = env.run(["run", "--max-threads", "0", env.wasm("thread_limit")])
    expect_equal((rc, out), (0, "started 0 threads, then EAGAIN\n"
                                "joined them; another one: Resource temporarily unavailable\n"),
                 f"--max-threads 0 ({err!r})")
    rc, out, err = env.run(["run", "--max-threads", "-1", env.wasm("thread_limit")])
    expect(rc != 0 and "--max-threads" in err, f"--max-threads -1: {rc} {err!r}")


# Modules that import wasi.thread-spawn without the rest of the ABI.
BAD_MODULES = {
    "unshared_memory": ("""(module
  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
  (import "env" "memory" (memory 1 1))
  (func (export "_start"))
  (func (export "wasi_thread_start") (param i32 i32)))""", "env.memory is not shared"),
    "own_memory": ("""(module
  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
  (memory 1 1 shared)
  (func (export "_start"))
  (func (export "wasi_thread_start") (param i32 i32)))""", "does not import its memory as env.memory"),
    "no_start_export": ("""(module
  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "_start")))""", "does not export wasi_thread_start"),
    "start_wrong_type": ("""(module
  (import "wasi" "thread-spawn" (func (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "_start"))
  (func (export "wasi_thread_start") (param i32)))""", "wasi_thread_start is not a function (param i32 i32)"),
    "spawn_wrong_type": ("""(module
  (import "wasi" "thread-spawn" (func (param i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func (export "_start"))
  (func (export "wasi_thread_start") (param i32 i32)))""", "not as a function (param i32) (result i32)"),
}


@case
def bad_imports(env):
    """Each broken module: one clear error naming what is wrong, exit 1."""
    wat2wasm = shutil.which("wat2wasm")
    if not wat2wasm:
        raise Failure("wat2wasm (wabt) is needed")
    for name, (text, why) in BAD_MODULES.items():
        wat, wasm = env.path(name + ".wat"), env.path(name + ".wasm")
        with open(wat, "w") as f:
            f.write(text)
        subprocess.run([wat2wasm, "--enable-threads", wat, "-o", wasm], check=True)
        for mode in env.modes():
            rc, out, err = env.run(["run"] + engine_args(env, mode) + [wasm])
            expect_one_error(rc, err, [r"thread-spawn", why.replace("(", r"\(").replace(")", r"\)")],
                             f"{name} in {mode}")


@case
def spawn_from_wat(env):
    """The raw ABI, without the guest library: thread-spawn returns TIDs
    1, 2, ...; each thread runs wasi_thread_start(tid, arg) in its own
    instance (its own globals) on the shared memory."""
    wat2wasm = shutil.which("wat2wasm")
    if not wat2wasm:
        raise Failure("wat2wasm (wabt) is needed")
    wat, wasm = env.path("spawn.wat"), env.path("spawn.wasm")
    with open(wat, "w") as f:
        f.write(SPAWN_WAT)
    subprocess.run([wat2wasm, "--enable-threads", wat, "-o", wasm], check=True)
    for mode in env.modes():
        rc, out, err = env.run(["run"] + engine_args(env, mode) + [wasm])
        expect_equal((rc, out, err), (0, "", ""), f"spawn.wat in {mode}")


# _start spawns 3 threads (arg 10*i), sums the TIDs it got at address 0,
# waits until 3 threads have finished (counter at 12), then checks:
# mem[4] == sum(1000*tid + arg) == 6060 and mem[8] == 3 (each thread
# saw its own global `g` start at 0). A wrong value is `unreachable`.
SPAWN_WAT = """(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (global $g (mut i32) (i32.const 0))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (i32.atomic.rmw.add (i32.const 4)
      (i32.add (i32.mul (local.get $tid) (i32.const 1000)) (local.get $arg))))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (drop (i32.atomic.rmw.add (i32.const 8) (global.get $g)))
    (drop (i32.atomic.rmw.add (i32.const 12) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 12) (i32.const 1))))
  (func (export "_start") (local $i i32) (local $n i32)
    (block $done (loop $more
      (br_if $done (i32.eq (local.get $i) (i32.const 3)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (drop (i32.atomic.rmw.add (i32.const 0) (call $spawn (i32.mul (local.get $i) (i32.const 10)))))
      (br $more)))
    (block $all (loop $wait
      (local.set $n (i32.atomic.load (i32.const 12)))
      (br_if $all (i32.eq (local.get $n) (i32.const 3)))
      (drop (memory.atomic.wait32 (i32.const 12) (local.get $n) (i64.const -1)))
      (br $wait)))
    (if (i32.ne (i32.atomic.load (i32.const 0)) (i32.const 6)) (then unreachable))
    (if (i32.ne (i32.atomic.load (i32.const 4)) (i32.const 6060)) (then unreachable))
    (if (i32.ne (i32.atomic.load (i32.const 8)) (i32.const 3)) (then unreachable))))
"""


@case.on_request
def cross(env):
    """Under a tern built for another CPU (--tern "qemu-s390x
    build-s390x/tern", the cross stages of scripts/test.sh): each threaded
    guest prints its known answer in the interpreter, and from an artifact
    compiled for --target by --compile-tern (a cross build has no
    compiler), its atomics and waits on the other CPU's memory order and
    byte order; a thread's exit(N) ends the program there too."""
    for guest in GUESTS:
        want = expected_output(guest)
        rc, out, err = env.run(["run", "--mode", "interp", env.wasm(guest)])
        expect_equal((rc, out), (0, want), f"{guest} in interp (stderr {err!r})")
        if not env.compile_tern:
            continue
        artifact = env.path(f"{guest}.{env.target}.tern-aot")
        rc, _, err = env.run(["compile", "--target", env.target, env.wasm(guest), "-o", artifact],
                             tern=env.compile_tern)
        expect_equal(rc, 0, f"tern compile --target {env.target} {guest} ({err})")
        rc, out, err = env.run(["run", "--mode", "aot", "--artifact", artifact, env.wasm(guest)])
        expect_equal((rc, out), (0, want), f"{guest} in aot (stderr {err!r})")
    rc, out, err = env.run(["run", "--mode", "interp", env.wasm("thread_ends_program"), "exit",
                            "7"])
    expect_equal((rc, out), (7, "threads started\n"), f"exit(7) in a thread ({err!r})")


def engine_args(env, mode):
    """--mode auto without a cache: its compile child then dies with tern
    (with a cache it would outlive each run to fill it), and every run
    starts in the interpreter, spawning threads there."""
    if mode == "auto":
        return ["--mode", "auto", "--no-cache"]
    return env.engine_args(mode)


# Moments each checkpoint_stress case takes (--moments): make test's count
# keeps the stage to a few CPU minutes; the 200 per guest is
# `threads_tests.py --moments 200 checkpoint_stress.GUEST`.
DEFAULT_MOMENTS = 12


def make_env(env, args):
    env.moments = args.moments
    env.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    env.compiler = args.compiler in ("1", "ON", "TRUE", "true")
    env.compile_tern = tern_command(args.compile_tern) if args.compile_tern else None
    env.target = args.target
    env.cross_tern = tern_command(args.cross_tern) if args.cross_tern else None
    env.modes = lambda: MODES if env.compiler else ("interp",)
    return env


def add_arguments(ap):
    ap.add_argument("--compiler", default="1")
    ap.add_argument("--compile-tern", help="case cross: a tern that compiles artifacts for "
                    "--target (without it, cross runs the interpreter only)")
    ap.add_argument("--cross-tern", help="case cross_checkpoint_stress: a tern for another CPU "
                    "(e.g. \"qemu-s390x build-s390x/tern\")")
    ap.add_argument("--target", help="case cross: the CPU --tern runs on (s390x, aarch64)")
    ap.add_argument("--moments", type=int, default=int(os.environ.get("TERN_STRESS_MOMENTS",
                                                                      DEFAULT_MOMENTS)),
                    help="checkpoint_stress: snapshots (restores) per guest")
    ap.add_argument("--seed", type=int, default=None,
                    help="checkpoint_stress: random seed of the moments (default: random, "
                    "printed)")


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0], make_env=make_env,
                       add_arguments=add_arguments))
