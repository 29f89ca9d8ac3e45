#!/usr/bin/env python3
"""Checkpoint requests at any moment never lose a program: signals, the
control socket and --checkpoint-every fired at random moments across
tern's start-up (options, decoding), a snapshot's load, the run and the
exit, in each engine; requests held back until the program starts; a
periodic checkpoint shorter than a checkpoint's pause; --checkpoint-at at
or below a restored snapshot's own count.

What must hold, whenever the trigger lands: tern exits 0 (never dies from
its own trigger signal, never hangs); the program's output is the
uninterrupted run's, or it stopped and its snapshot restores to the rest;
a snapshot written while the program went on restores to a tail of it;
every control request is answered (or cannot reach the socket, before it
exists or after the program ended). No timing assertions: the trigger
moments are random, and a hang fails by a generous time limit.

    requests.py --tern build/tern --programs DIR[:DIR...] [--mode M] [--trials N] CASE...
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (PROGRESS, Cases, Failure, expect, expect_equal, finish,  # noqa: E402
                     kill_if_running, read_until, start, wait_for)

case = Cases("requests")

# bulky.wasm's arguments: MiB of memory, rounds, ms of sleep per round.
RUN_ARGS = ["4", "12", "15"]
BIG_ARGS = ["48", "12", "15"]  # its snapshot takes a while to load


def expect_tail(tail, full, what):
    """`tail` is a contiguous ending of `full` cut at a line (maybe empty)."""
    expect(full.endswith(tail) and (not tail or len(tail) == len(full) or
                                    full[len(full) - len(tail) - 1] == "\n"),
           f"{what} is not a tail of the uninterrupted output:\n{tail!r}\nvs\n{full!r}")


def running_own_code(pid, sig):
    """Whether process `pid` (tern) runs its own code: it blocks or catches
    `sig` (/proc/PID/status), or its heap exists, which libstdc++'s
    initializer creates after tern has blocked its signals first thing (in
    .preinit_array). Before that, in the dynamic loader, no program can do
    anything about a signal; from then on tern must not die of one, also
    while it decodes the module or loads a snapshot."""
    try:
        with open(f"/proc/{pid}/status") as f:
            masks = dict(line.split(":", 1) for line in f if line.startswith(("SigBlk", "SigCgt")))
        bit = 1 << (sig - 1)
        if any(int(v.strip(), 16) & bit for v in masks.values()):
            return True
        with open(f"/proc/{pid}/maps") as f:
            return any(line.rstrip().endswith("[heap]") for line in f)
    except (OSError, ValueError):
        return True  # gone: nothing left to wait for


def wait_started(proc, sig):
    """Polls tightly (the signal must land early) while tern progresses."""
    while not running_own_code(proc.pid, sig) and proc.poll() is None:
        PROGRESS.check()
        time.sleep(0.0002)


def client(env, sock, *args):
    """`tern checkpoint --control SOCK ARGS`: (exit status, stdout, stderr)."""
    return env.run(["checkpoint", "--control", sock, *args])


def answered(rc, out, err, what):
    """A control client got its answer; returns whether it was a success."""
    if rc == 0:
        expect(out.startswith(("checkpoint written to ", "running ", "starting ")),
               f"{what}: {out!r}")
        return True
    lines = err.splitlines()
    expect(rc == 1 and len(lines) == 1, f"{what}: exit {rc}, stderr {err!r}")
    expect(any(m in lines[0] for m in ("the program has ended", "the program has stopped",
                                       "cannot reach the control socket")),
           f"{what}: {lines[0]!r}")
    return False


# --- triggers at random moments --------------------------------------------------

TRIGGERS = {
    # name: (tern options, stops the program)
    "usr1": (lambda snap, sock: ["--checkpoint-to", snap], False),
    "term": (lambda snap, sock: ["--checkpoint-to", snap, "--checkpoint-on-exit"], True),
    "control": (lambda snap, sock: ["--control", sock], False),
    "control_stop": (lambda snap, sock: ["--control", sock], True),
    "status": (lambda snap, sock: ["--control", sock], False),
    "every": (lambda snap, sock: ["--checkpoint-to", snap, "--checkpoint-every", "1ms"], False),
}


SIGNALS = {"usr1": signal.SIGUSR1, "term": signal.SIGTERM}


def fire(env, proc, trigger, snap, sock):
    """Fires `trigger` at `proc` now; returns the control client's outcome."""
    if trigger in SIGNALS:
        proc.send_signal(SIGNALS[trigger])
    elif trigger == "control":
        return client(env, sock, "-o", snap)
    elif trigger == "control_stop":
        return client(env, sock, "-o", snap, "--stop")
    elif trigger == "status":
        return client(env, sock, "--status")
    return None


def trial(env, command, ref, trigger, delay, tag):
    """One run of `tern COMMAND` with `trigger` fired `delay` seconds after
    it started; checks everything the docstring promises."""
    snap, sock = env.path(f"{tag}.snap"), env.path(f"{tag}.sock")
    options, stops = TRIGGERS[trigger]
    started = time.monotonic()
    proc = env.start(command[:1] + options(snap, sock) + command[1:])
    try:
        # A signal's delay counts from tern's first own instruction.
        if trigger in SIGNALS:
            wait_started(proc, SIGNALS[trigger])
        time.sleep(delay)
        reply = fire(env, proc, trigger, snap, sock)
        rc, out, err = finish(proc)
    finally:
        kill_if_running(proc)
    what = f"{tag} ({trigger} after {delay * 1000:.1f} ms)"
    expect_equal(rc, 0, f"{what}: tern's exit status (stderr {err!r})")
    if reply is not None:
        ok = answered(*reply, what + ": control client")
        if ok and trigger.startswith("control"):
            expect(os.path.exists(snap), f"{what}: 'written' but no snapshot")
    if stops and os.path.exists(snap):
        rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), snap])
        expect_equal((rc, out + restored), (0, ref),
                     f"{what}: output before the stop + restored output ({err})")
    else:
        expect_equal(out, ref, f"{what}: the program's output")
        if os.path.exists(snap):
            rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), snap])
            expect_equal(rc, 0, f"{what}: restore of the snapshot ({err})")
            expect_tail(restored, ref, f"{what}: restored output")
    print(f"{what}: {'snapshot' if os.path.exists(snap) else 'no snapshot'}, "
          f"{time.monotonic() - started:.2f} s", flush=True)
    for path in (snap, sock):
        if os.path.exists(path):
            os.unlink(path)


@case.also_in("aot", "jit")
def random_triggers(env):
    """Many trials per engine: `tern run` and `tern restore` of a 48 MiB
    snapshot, each with one trigger fired at a random moment, half of them
    within the first 40 ms (tern's start-up, decoding, the snapshot's
    load), the others anywhere up to the run's end and a little beyond."""
    seed = int(os.environ.get("TERN_TEST_SEED", time.time_ns() % 1_000_000))
    rnd = random.Random(seed)
    print(f"random_triggers: seed {seed} (TERN_TEST_SEED reproduces it)", flush=True)
    engine = env.engine_args(env.mode)
    bulky = env.wasm("bulky")
    rc, run_ref, err = env.run(["run", *engine, bulky, *RUN_ARGS])  # compiles into the cache
    expect_equal(rc, 0, f"reference run ({err})")
    started = time.monotonic()
    rc, again, err = env.run(["run", *engine, bulky, *RUN_ARGS])
    run_seconds = time.monotonic() - started
    expect_equal((rc, again), (0, run_ref), f"second reference run ({err})")
    # The snapshot restored by half the trials: taken right after the fill.
    big, sock = env.path("big.snap"), env.path("big.sock")
    proc = env.start(["run", *engine, "--control", sock, bulky, *BIG_ARGS])
    try:
        head = read_until(proc, "filled")
        rc, _, err = client(env, sock, "-o", big, "--stop")
        expect_equal(rc, 0, f"the big snapshot ({err})")
        rc, rest, err = finish(proc)
    finally:
        kill_if_running(proc)
    started = time.monotonic()
    rc, restore_ref, err = env.run(["restore", *env.engine_args(env.restore_mode), big])
    restore_seconds = time.monotonic() - started
    expect_equal(rc, 0, f"reference restore ({err})")
    phases = [
        ("run", ["run", *engine, bulky, *RUN_ARGS], run_ref, run_seconds),
        ("restore", ["restore", *env.engine_args(env.restore_mode), big], restore_ref,
         restore_seconds),
    ]
    names = list(TRIGGERS)
    for i in range(env.trials):
        phase, command, ref, seconds = phases[i % 2]
        trigger = names[rnd.randrange(len(names))]
        early = rnd.random() < 0.5
        delay = rnd.uniform(0, 0.04) if early else rnd.uniform(0, seconds * 1.2)
        trial(env, command, ref, trigger, delay, f"{phase}{i}")


# --- before the program runs ------------------------------------------------------

@case.also_in("jit")
def before_start(env):
    """Requests that arrive before the program runs: tern is held in its
    start-up by a --stdin FIFO nobody writes yet (opening it blocks). The
    status says `starting`; a signal is kept, not fatal; a checkpoint
    request waits and is honoured at the program's first stable point, so
    both snapshots restore to the whole run. The same for a restore, which
    opens its --stdin while the snapshot loads."""
    engine = env.engine_args(env.mode)
    restore_engine = env.engine_args(env.restore_mode)
    rc, ref, _ = env.run(["run", *engine, env.wasm("sleeper"), "4", "20"])
    fifo = env.path("stdin.fifo")
    os.mkfifo(fifo)

    def status(sock):
        rc, out, err = client(env, sock, "--status")
        expect(rc == 0 and out.startswith("starting engine="), f"status: {out!r} {err!r}")
        return out

    def held(prefix, suffix, snap, early):
        """Runs `tern PREFIX --stdin FIFO ... SUFFIX` held before its start."""
        sock = env.path("held.sock")
        proc = env.start([*prefix, "--stdin", fifo, "--control", sock, "--checkpoint-to", snap,
                          *suffix])
        try:
            wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, "the control socket")
            expect(" pending=0" in status(sock), "pending requests before any")
            wait_started(proc, signal.SIGUSR1)
            proc.send_signal(signal.SIGUSR1)
            waiting = start(env.tern + ["checkpoint", "--control", sock, "-o", early],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # Both requests are kept, and only then does the program start.
            wait_for(lambda: " pending=2" in status(sock), "two pending requests")
            with open(fifo, "w"):
                pass
            rc, out, err = finish(waiting)
            expect_equal((rc, out), (0, f"checkpoint written to {early}\n"),
                         f"the early request ({err})")
            rc, out, err = finish(proc)
            expect_equal((rc, out), (0, ref), f"the held program ({err})")
        finally:
            kill_if_running(proc)
        for path in (early, snap):
            rc, restored, err = env.run(["restore", *restore_engine, "--stdin", "/dev/null", path])
            expect_equal((rc, restored), (0, ref), f"restore of {os.path.basename(path)} ({err})")

    held(["run", *engine], [env.wasm("sleeper"), "4", "20"], env.path("usr1.snap"),
         env.path("early.snap"))
    held(["restore", *restore_engine], [env.path("usr1.snap")], env.path("usr1-again.snap"),
         env.path("early-again.snap"))


# --- periodic checkpoints --------------------------------------------------------

@case.also_in("aot")
def every_1ms(env):
    """--checkpoint-every 1ms on a program whose checkpoints (32 MiB of
    memory) take far longer: the program still finishes with its output,
    the number of checkpoints written is reported, and the last one
    restores to a tail of the run. The same for a restore."""
    engine = env.engine_args(env.mode)
    args = [env.wasm("bulky"), "32", "10", "5"]
    rc, ref, err = env.run(["run", *engine, *args])
    expect_equal(rc, 0, f"reference run ({err})")
    snap, stats = env.path("every.snap"), env.path("stats.json")
    rc, out, err = env.run(["run", *engine, "--checkpoint-to", snap, "--checkpoint-every", "1ms",
                            "--stats-out", stats, "--verbose-checkpoints", *args])
    expect_equal((rc, out), (0, ref), f"a run checkpointed every 1 ms ({err[-2000:]})")
    with open(stats) as f:
        written = json.load(f)["checkpoints"]
    expect(written >= 1, f"no checkpoint written: {written}")
    expect(f"tern: {written} checkpoint{'s' if written != 1 else ''} written, 0 failed" in err,
           f"the count on stderr: {err[-500:]!r}")
    rc, restored, err = env.run(["restore", *env.engine_args(env.restore_mode), snap])
    expect_equal(rc, 0, f"restore ({err})")
    expect_tail(restored, ref, "restored output")
    again = env.path("again.snap")
    rc, out, err = env.run(["restore", *env.engine_args(env.restore_mode), "--checkpoint-to",
                            again, "--checkpoint-every", "1ms", "--stats-out", stats, snap])
    expect_equal((rc, out), (0, restored), f"a restore checkpointed every 1 ms ({err[-2000:]})")
    with open(stats) as f:
        expect(json.load(f)["checkpoints"] >= 1, "no checkpoint written by the restore")


# --- --checkpoint-at on a restore -----------------------------------------------------

@case
def checkpoint_at_restore(env):
    """`tern restore --checkpoint-at N` with N at or below the snapshot's
    own count can never fire: an error, not a silent run to the end."""
    spinner = env.wasm("spinner")
    rc, ref, _ = env.run(["run", spinner, "2"])
    snap = env.path("at.snap")
    rc, head, err = env.run(["run", "--checkpoint-to", snap, "--checkpoint-at", "500",
                             "--stop-after-checkpoint", spinner, "2"])
    expect_equal(rc, 0, f"checkpoint at 500 ({err})")
    for n in ("500", "499", "1"):
        rc, out, err = env.run(["restore", "--checkpoint-to", env.path("x.snap"),
                                "--checkpoint-at", n, "--stop-after-checkpoint", snap])
        lines = err.splitlines()
        expect(rc == 1 and out == "" and len(lines) == 1 and f"--checkpoint-at {n}" in lines[0]
               and "500" in lines[0], f"--checkpoint-at {n}: exit {rc}, {err!r}")
        expect(not os.path.exists(env.path("x.snap")), f"--checkpoint-at {n} wrote a snapshot")
    later = env.path("later.snap")
    rc, middle, err = env.run(["restore", "--checkpoint-to", later, "--checkpoint-at", "501",
                               "--stop-after-checkpoint", snap])
    expect_equal(rc, 0, f"--checkpoint-at 501 ({err})")
    rc, tail, err = env.run(["restore", later])
    expect_equal((rc, head + middle + tail), (0, ref), f"chained restores ({err})")


def add_arguments(ap):
    ap.add_argument("--trials", type=int, default=30, help="random_triggers: trials per run")


def make_env(env, args):
    env.trials = args.trials
    return env


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0], add_arguments, make_env))
