#!/usr/bin/env python3
"""Compiled code that does not fit is refused, end to end through the
`tern` binary: an artifact (`tern compile` output, --artifact) from another
module, from another tern version, for another architecture, truncated,
bit-flipped, or not an artifact at all is refused by `tern run` and
`tern restore` with one `tern: error:` line naming the file and saying why,
exit status 1, and none of the program's output (its code never ran). A
damaged entry in the compiled-code cache is compiled again; a tern without
a compiler (cross-built) says so in one line instead. The compile process
of --mode auto never outlives tern.

    artifacts.py --tern build/tern --programs DIR[:DIR...] CASE...
    artifacts.py --tern "qemu-s390x build-s390x/tern" --compile-tern build/tern \\
        --target s390x --programs DIR no_compiler
"""

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (Cases, expect, expect_equal, expect_one_error,  # noqa: E402
                     as_nobody, finish, kill_if_running, run_process, tern_command,
                     wait_for)

case = Cases("artifacts")

# The artifact header (src/aot/artifact.cpp, docs): an 8-byte signature,
# format and header size (u32 each), then the tern version in 32 bytes,
# ABI and architecture (u32 each); the code starts at byte 160.
VERSION_AT, VERSION_LEN = 16, 32
ARCH_AT = VERSION_AT + VERSION_LEN + 4
CODE_AT = 160

# A small WASI program (compiled in a blink, unlike a libc guest): it
# prints a line three times, so any output means its code ran.
HELLO = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "%s\\n")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const %d))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 3))))))
"""
PROGRAM_ARGS = []
EXPECTED_OUT = "hello\n" * 3


def program(env, name):
    """hello.wasm (prints hello) or other.wasm (another module), made here."""
    path = env.path(name + ".wasm")
    if not os.path.exists(path):
        word = "hello" if name == "hello" else "other module"
        with open(env.path(name + ".wat"), "w") as f:
            f.write(HELLO % (word, len(word) + 1))
        subprocess.run(["wat2wasm", env.path(name + ".wat"), "-o", path], check=True)
    return path


def compiler(env):
    return getattr(env, "compile_tern", env.tern)


def compile_for(env, name, target=None, out=None):
    """`tern compile` of NAME.wasm; returns the artifact's path."""
    out = out or env.path(f"{name}.{target or 'host'}.tern-aot")
    cmd = ["compile", program(env, name), "-o", out] + (["--target", target] if target else [])
    rc, _, err = env.run(cmd, tern=compiler(env))
    expect_equal(rc, 0, f"tern compile {' '.join(cmd)} ({err})")
    return out


def write(env, name, data):
    path = env.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def expect_refused(env, artifact, patterns, what, mode="aot"):
    """`tern run --artifact` refuses before running any code."""
    rc, out, err = env.run(["run", "--mode", mode, "--artifact", artifact,
                            program(env, "hello"), *PROGRAM_ARGS])
    expect_one_error(rc, err, [re.escape(artifact)] + patterns, what)
    expect_equal(out, "", f"{what}: the program's output (its code must not run)")


def good_artifact(env):
    path = compile_for(env, "hello")
    rc, out, err = env.run(["run", "--mode", "aot", "--artifact", path, program(env, "hello"),
                            *PROGRAM_ARGS])
    expect_equal((rc, out), (0, EXPECTED_OUT), f"the intact artifact runs ({err})")
    return path


@case
def other_module(env):
    expect_refused(env, compile_for(env, "other"), ["another module", "sha-256"],
                   "an artifact of another module")


@case
def other_version(env):
    data = bytearray(read_bytes(good_artifact(env)))
    version = b"0.0.0-elsewhere".ljust(VERSION_LEN, b"\0")
    data[VERSION_AT:VERSION_AT + VERSION_LEN] = version
    expect_refused(env, write(env, "version.tern-aot", bytes(data)),
                   ["compiled by tern 0.0.0-elsewhere", "compile the module again"],
                   "an artifact of another tern version")


@case
def other_target(env):
    for target in ("s390x", "aarch64"):
        path = compile_for(env, "hello", target)
        expect_refused(env, path, [f"compiled for {target}", "cannot run here"],
                       f"an artifact for {target}")


@case
def bad_compile_options(env):
    """`tern compile` with a value LLVM cannot use: one error line, no
    artifact (an unknown --cpu made LLVM print a warning per subtarget and
    abort)."""
    out = env.path("never.tern-aot")
    for args, mentions in ((["--cpu", "bogus"], ["bogus", "CPU"]),
                           (["--target", "s390x", "--cpu", "skylake"], ["skylake", "s390x"]),
                           (["--target", "bogus"], ["--target"]),
                           (["--opt-level", "9"], ["--opt-level"])):
        rc, _, err = env.run(["compile", program(env, "hello"), "-o", out, *args],
                             tern=compiler(env))
        expect_one_error(rc, err, [re.escape(m) for m in mentions], f"tern compile {args}")
        expect(not os.path.exists(out), f"tern compile {args} wrote an artifact")


@case
def truncated(env):
    data = read_bytes(good_artifact(env))
    expect_refused(env, write(env, "half.tern-aot", data[: len(data) // 2]), ["truncated"],
                   "half an artifact")
    expect_refused(env, write(env, "header.tern-aot", data[: CODE_AT // 2]),
                   ["truncated", "header"], "half a header")


@case
def bit_flipped(env):
    data = read_bytes(good_artifact(env))
    # In the code (the checksum catches it), in the architecture code.
    for where, needle in ((CODE_AT + (len(data) - CODE_AT) // 2, "checksum"),
                          (len(data) - 1, "checksum"), (ARCH_AT + 1, "architecture")):
        flipped = bytearray(data)
        flipped[where] ^= 0x01
        expect_refused(env, write(env, f"flip{where}.tern-aot", bytes(flipped)), [needle],
                       f"an artifact with byte {where} flipped")


@case
def not_an_artifact(env):
    expect_refused(env, program(env, "hello"), ["signature"], "a .wasm file as artifact")
    expect_refused(env, write(env, "empty.tern-aot", b""), ["signature"], "an empty file")
    expect_refused(env, write(env, "text.tern-aot", b"TERN-AOT but not really\n" * 4),
                   ["truncated|format"], "a file with the signature only")
    missing = env.path("missing.tern-aot")
    rc, out, err = env.run(["run", "--mode", "aot", "--artifact", missing, program(env, "hello")])
    expect_one_error(rc, err, [re.escape(missing)], "a missing artifact")


@case
def restore_refuses(env):
    """tern restore --mode aot checks the artifact like tern run does."""
    snap = env.path("spin.snap")
    rc, out, err = env.run(["run", "--checkpoint-to", snap, "--checkpoint-at", "4",
                            "--stop-after-checkpoint", program(env, "hello")])
    expect(rc == 0 and os.path.exists(snap), f"checkpoint: exit {rc} ({err})")
    for artifact, patterns in ((compile_for(env, "other"), ["another module"]),
                               (compile_for(env, "hello", "s390x"), ["compiled for s390x"])):
        rc, out, err = env.run(["restore", "--mode", "aot", "--artifact", artifact, snap])
        expect_one_error(rc, err, [re.escape(artifact)] + patterns, f"restore with {artifact}")
        expect_equal(out, "", "output of a refused restore")


@case
def inexact_when_counting(env):
    """Counting stable points (--checkpoint-at, --stats-out) needs an
    artifact compiled with --exact-points: other code would stop elsewhere
    than every other engine, so it is refused."""
    plain = compile_for(env, "hello")
    exact = env.path("hello.exact.tern-aot")
    rc, _, err = env.run(["compile", "--exact-points", program(env, "hello"), "-o", exact],
                         tern=compiler(env))
    expect_equal(rc, 0, f"tern compile --exact-points ({err})")
    snap = env.path("hello.snap")
    for counting in (["--checkpoint-to", snap, "--checkpoint-at", "3", "--stop-after-checkpoint"],
                     ["--stats-out", env.path("stats.json")]):
        rc, out, err = env.run(["run", "--mode", "aot", "--artifact", plain, *counting,
                                program(env, "hello")])
        expect_one_error(rc, err, [re.escape(plain), "--exact-points"], f"{counting[0]}, inexact")
        expect_equal(out, "", "output of a refused run")
        rc, out, err = env.run(["run", "--mode", "aot", "--artifact", exact, *counting,
                                program(env, "hello")])
        expect_equal((rc, err), (0, ""), f"{counting[0]} with an --exact-points artifact")


def cache_entries(cache, suffix):
    return glob.glob(os.path.join(cache, "*." + suffix))


@case
def damaged_cache_entry(env):
    """A damaged or truncated cache entry is compiled again and replaced,
    in aot and in jit mode; the program runs as if nothing happened."""
    cache = env.path("cache")
    for mode, suffix in (("aot", "tern-aot"), ("jit", "tern-jit")):
        args = ["run", "--mode", mode, "--cache-dir", cache, program(env, "hello"), *PROGRAM_ARGS]
        rc, out, err = env.run(args)
        expect_equal((rc, out), (0, EXPECTED_OUT), f"{mode}: first run ({err})")
        entries = cache_entries(cache, suffix)
        expect_equal(len(entries), 1, f"{mode}: cache entries after the first run")
        good = read_bytes(entries[0])
        for damage, data in (("flipped", good[:-1] + bytes([good[-1] ^ 0x40])),
                             ("truncated", good[: len(good) // 3]), ("empty", b"")):
            with open(entries[0], "wb") as f:
                f.write(data)
            rc, out, err = env.run(args)
            expect_equal((rc, out, err), (0, EXPECTED_OUT, ""), f"{mode}: a {damage} cache entry")
            expect_equal(len(read_bytes(entries[0])), len(good),
                         f"{mode}: the {damage} entry's replacement")


# Reads stdin to its end, then exits 0: the test decides when the program
# ends. Its filler functions make compiling it take a while.
READER = """(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 256))
    (loop $more
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $more (i32.load (i32.const 8)))))
%s)
"""


def children_of(pid):
    """The pids of processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


@case.needs_compiler
def auto_compile_child_ends_with_tern(env):
    """--mode auto with a cache: the compile process tern starts while the
    program runs (in the interpreter) never outlives tern. The program
    blocks reading stdin until the test has seen the compile child, then
    ends: the child must be gone when tern has exited."""
    filler = "\n".join(f"  (func (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))"
                        for i in range(3000))
    with open(env.path("reader.wat"), "w") as f:
        f.write(READER % filler)
    wasm = env.path("reader.wasm")
    subprocess.run(["wat2wasm", env.path("reader.wat"), "-o", wasm], check=True)
    proc = env.start(["run", "--mode", "auto", "--cache-dir", env.path("cache"), wasm],
                     stdin=subprocess.PIPE)
    try:
        wait_for(lambda: children_of(proc.pid), "tern to start compiling")
        child = children_of(proc.pid)[0]
        proc.stdin.close()
        proc.stdin = None  # so that finish() does not write to it
        rc, out, err = finish(proc)
    finally:
        kill_if_running(proc)
    expect_equal((rc, out, err), (0, "", ""), "the program's end")
    expect(not os.path.exists(f"/proc/{child}"),
           f"the compile process {child} outlived tern")


@case.needs_compiler
def auto_with_a_cache_it_cannot_read(env):
    """The default mode (auto) as a user who may not look into the cache
    directory (uid 65534, the cache under a root-only directory): the
    program runs as without a cache. The cache lookup ran on a thread of
    its own and its permission error ended tern with an uncaught
    exception (abort, status -6)."""
    nobody = as_nobody()
    if not nobody:
        print("auto_with_a_cache_it_cannot_read: skipped (needs root and setpriv)")
        return
    shared = tempfile.mkdtemp(prefix="tern-auto-cache-")
    try:
        os.chmod(shared, 0o755)
        wasm = os.path.join(shared, "hello.wasm")
        shutil.copy(program(env, "hello"), wasm)
        os.chmod(wasm, 0o644)
        private = os.path.join(shared, "private")
        os.makedirs(os.path.join(private, "cache"))
        os.chmod(private, 0o700)
        p = run_process(nobody + env.tern + ["run", wasm, *PROGRAM_ARGS], cwd=shared,
                        env=dict(os.environ, TERN_CACHE_DIR=os.path.join(private, "cache")))
        expect_equal((p.rc, p.out.decode(), p.err.decode(errors="replace")),
                     (0, EXPECTED_OUT, ""), "auto with a cache it cannot read")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@case.on_request
def no_compiler(env):
    """A tern without a compiler (--tern a cross build) in aot mode: one
    clear error when no compiled code is there, or when it is damaged;
    with a good artifact (compiled by --compile-tern) the program runs."""
    cache = env.path("cache")
    args = ["run", "--mode", "aot", "--cache-dir", cache, program(env, "hello"), *PROGRAM_ARGS]
    rc, out, err = env.run(args)
    expect_one_error(rc, err, ["no compiled code", "no compiler", "tern compile --target"],
                     "aot mode without compiled code")
    expect_equal(out, "", "output without compiled code")
    rc, out, err = env.run(["run", "--mode", "jit", program(env, "hello")])
    expect_one_error(rc, err, ["compil"], "jit mode without a compiler")
    # The artifact for this tern's architecture, from the compiling tern.
    target = env.target
    artifact = compile_for(env, "hello", target)
    rc, out, err = env.run(["run", "--mode", "aot", "--artifact", artifact, program(env, "hello"),
                            *PROGRAM_ARGS])
    expect_equal((rc, out), (0, EXPECTED_OUT), f"a {target} artifact ({err})")
    # Put in the cache by `tern compile --cache-dir`: found there.
    rc, _, err = env.run(["compile", "--target", target, "--cache-dir", cache,
                          program(env, "hello")], tern=compiler(env))
    expect_equal(rc, 0, f"tern compile --cache-dir ({err})")
    rc, out, err = env.run(args)
    expect_equal((rc, out), (0, EXPECTED_OUT), f"aot mode with the cached artifact ({err})")
    # A damaged cache entry cannot be compiled again here: refused clearly.
    (entry,) = cache_entries(cache, "tern-aot")
    data = read_bytes(entry)
    write(env, entry, data[:-1] + bytes([data[-1] ^ 0x40]))
    rc, out, err = env.run(args)
    expect_one_error(rc, err, [re.escape(entry), "checksum"], "a damaged cache entry")
    expect_equal(out, "", "output with a damaged cache entry")


def with_compiler(env, args):
    env.compile_tern = tern_command(args.compile_tern) if args.compile_tern else env.tern
    env.target = args.target
    return env


def add_arguments(ap):
    ap.add_argument("--compile-tern", help="tern that compiles (default: --tern)")
    ap.add_argument("--target", default=platform.machine(),
                    help="the architecture --tern runs on (default: this host's)")


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0], make_env=with_compiler,
                       add_arguments=add_arguments))
