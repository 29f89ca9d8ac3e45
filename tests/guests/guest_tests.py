#!/usr/bin/env python3
"""Runs the wasm32-wasi guest programs under `tern run` and checks what they
print, their exit codes and the files they leave, against expectations
written here (never against tern's earlier output).

    guest_tests.py --tern build/tern --programs build/tests/guests [--docs docs] CASE...
    guest_tests.py --list
"""

import os
import re
import select
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import (IDLE_LIMIT, Cases, communicate, connect, expect, expect_equal,  # noqa: E402
                     free_port, kill_if_running, payload, read_line)

case = Cases("guests")


def guest_env(env, args):
    """Guest cases look at stdout as bytes and read docs/cli.md."""
    env.run = env.run_bytes
    env.docs = os.path.abspath(args.docs)
    return env


# --- exit codes and traps ---------------------------------------------------

@case
def exit_code(env):
    for code in (0, 3, 42, 255):
        rc, out, err = env.run(["run", env.wasm("exit_code"), str(code)])
        expect_equal(rc, code, f"exit code returning {code} from main")
        expect_equal(out, b"", "stdout")
    rc, _, _ = env.run(["run", env.wasm("exit_code"), "7", "proc_exit"])
    expect_equal(rc, 7, "exit code through proc_exit(7)")


@case
def trap(env):
    rc, out, err = env.run(["run", env.wasm("trap")])
    expect_equal(rc, 134, "exit code of a trap")
    expect_equal(out, b"about to trap\n", "stdout before the trap")
    lines = err.splitlines()
    expect(lines and lines[0] == "tern: trap: unreachable", f"first stderr line: {err!r}")
    expect("wasm backtrace:" in err, f"no backtrace in {err!r}")
    # Innermost first, with names from the name section.
    order = [err.find(name) for name in ("deliberately_trap", "call_the_trap", "main")]
    expect(all(i >= 0 for i in order) and order == sorted(order),
           f"backtrace frames missing or out of order: {err!r}")
    rc, out, err = env.run(["run", env.wasm("trap"), "abort"])
    expect_equal(rc, 134, "exit code of abort()")
    expect(err.startswith("tern: trap: "), f"abort stderr: {err!r}")


# --- arguments and environment -----------------------------------------------

@case
def args_env(env):
    rc, out, err = env.run(["run", "--env", "A=1", "--env", "B=two words", "--env", "A=3",
                            env.wasm("args_env"), "x", "y z", "--flag", "-e"])
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    expect_equal(out.decode(), "argc=5\n"
                 "argv[0] ends with .wasm: yes\n"
                 "argv[1]=x\n"
                 "argv[2]=y z\n"
                 "argv[3]=--flag\n"
                 "argv[4]=-e\n"
                 "env A=3\n"
                 "env B=two words\n", "stdout")


@case
def env_inherit(env):
    host_env = {"PATH": os.environ.get("PATH", "/usr/bin"), "TERN_GUEST_VAR": "inherited",
                "TERN_COPIED": "copied"}
    rc, out, _ = env.run(["run", "--env-inherit", "--env", "TERN_GUEST_VAR=overridden",
                          env.wasm("args_env")], env=host_env)
    expect_equal(rc, 0, "exit code")
    lines = out.decode().splitlines()
    expect("env TERN_GUEST_VAR=overridden" in lines, f"--env overrides inherited: {lines}")
    expect("env TERN_COPIED=copied" in lines, f"inherited variable missing: {lines}")
    rc, out, _ = env.run(["run", "--env", "TERN_COPIED", env.wasm("args_env")], env=host_env)
    expect_equal(out.decode().splitlines()[2:], ["env TERN_COPIED=copied"],
                 "--env K copies only K")


# --- stdin / stdout ----------------------------------------------------------

@case
def echo(env):
    data = payload(300_000)
    rc, out, err = env.run(["run", env.wasm("echo")], stdin=data)
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    expect(out == data, f"stdout differs from stdin ({len(out)} vs {len(data)} bytes)")
    expect_equal(err, "echoed 300000 bytes\n", "stderr")


@case
def closed_stdout(env):
    """A write to a stdout pipe nobody reads any more fails with EPIPE in
    the program, which reports it and exits 1: tern does not die of
    SIGPIPE (it did in `tern run`, exit status 141), with --invoke or not."""
    for extra in ([], ["--invoke", "_start"]):
        proc = env.start(["run", *extra, env.wasm("echo")], stdin=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first write
        _, err = communicate(proc, payload(300_000))
        expect_equal((proc.returncode, err.decode()), (1, "write: Broken pipe\n"),
                     f"tern run {' '.join(extra)} into a closed pipe")


@case
def echo_redirected(env):
    d = env.fresh_dir("echo")
    data = payload(70_000)
    with open(os.path.join(d, "in.bin"), "wb") as f:
        f.write(data)
    rc, out, err = env.run(["run", "--stdin", os.path.join(d, "in.bin"),
                            "--stdout", os.path.join(d, "out.bin"),
                            "--stderr", os.path.join(d, "err.txt"), env.wasm("echo")])
    expect_equal(rc, 0, "exit code")
    expect_equal(out, b"", "tern's own stdout")
    expect_equal(err, "", "tern's own stderr")
    with open(os.path.join(d, "out.bin"), "rb") as f:
        expect(f.read() == data, "--stdout file differs from --stdin file")
    with open(os.path.join(d, "err.txt")) as f:
        expect_equal(f.read(), "echoed 70000 bytes\n", "--stderr file")


# --- files and directories ---------------------------------------------------

FILES_CHECKS = [
    "mkdir sub", "open a.txt", "write 10 bytes", "seek set 2", "read 234", "seek end -2",
    "read 89", "tell 10", "pwrite AB at 4", "pread all", "position unchanged by pread/pwrite",
    "ftruncate 6", "fstat size 6", "fsync", "fdatasync", "close", "read closed fd is EBADF",
    "open append", "append xy", "stat size 8", "rename a.txt b.txt", "a.txt is gone",
    "open missing is ENOENT", "exclusive create of existing is EEXIST", "symlink", "readlink",
    "stat through link", "lstat sees link", "hard link", "nlink 2", "utimensat", "mtime set",
    "mkdir list",
]


@case
def files(env):
    d = env.fresh_dir("files")
    rc, out, err = env.run(["run", "--dir", f"{d}::/data", env.wasm("files")])
    expected = "".join(f"{c}: ok\n" for c in FILES_CHECKS)
    expected += "list: a b c\nunlink b: ok\nlist: a c\n"
    expected += ("rmdir non-empty is ENOTEMPTY: ok\nmkdir existing is EEXIST: ok\n"
                 "unlink dir is refused: ok\nmkdir many: ok\n"
                 "many: 300 entries, 2 dot entries\nrmdir many: ok\nfailures: 0\n")
    expect_equal(out.decode(), expected, "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")

    def read(rel):
        with open(os.path.join(d, rel), "rb") as f:
            return f.read()
    # Times first: reading the file below may update its atime.
    b = os.stat(os.path.join(d, "sub/b.txt"))
    expect_equal(sorted(os.listdir(d)), ["list", "out.txt", "sub"], "files left in /data")
    expect_equal(sorted(os.listdir(os.path.join(d, "sub"))), ["b.txt", "hard", "link"],
                 "files left in /data/sub")
    expect_equal(read("sub/b.txt"), b"0123ABxy", "sub/b.txt")
    expect_equal(os.stat(os.path.join(d, "sub/hard")).st_ino, b.st_ino, "hard link inode")
    expect_equal(b.st_mtime_ns, 1234567890 * 10**9 + 500, "mtime set by utimensat")
    expect_equal(b.st_atime_ns, 1000000000 * 10**9, "atime set by utimensat")
    expect_equal(os.readlink(os.path.join(d, "sub/link")), "b.txt", "symlink target")
    expect_equal(sorted(os.listdir(os.path.join(d, "list"))), ["a", "c"], "files in list")
    expect_equal(read("list/a") + read("list/c"), b"a\nc\n", "contents of list/a, list/c")
    expect_equal(read("out.txt"), b"done with 0 failures\n", "out.txt")


@case
def clocks(env):
    d = env.fresh_dir("clocks")
    with open(os.path.join(d, "known.txt"), "wb") as f:
        f.write(b"0123456789abcdefghij")  # 20 bytes
    checks = [
        "monotonic resolution > 0", "realtime after 2020", "monotonic does not go back",
        "process cputime", "thread cputime", "unknown clock is EINVAL", "clock_gettime",
        "nanosleep 30ms", "slept at least 30ms", "usleep 20ms", "slept at least 20ms",
        "sched_yield", "poll three clocks", "only the 10ms clock fired", "after at least 10ms",
        "poll absolute deadline", "deadline reached", "no subscriptions is EINVAL",
        "open known file", "poll file, stdout, clock, bad fd",
        "file readable with its size in nbytes", "stdout writable", "closed fd reports EBADF",
        "the minute-long clock did not fire",
    ]
    expected = "".join(f"{c}: ok\n" for c in checks) + "file size: 20\nfailures: 0\n"
    rc, out, err = env.run(["run", "--dir", f"{d}::/data", env.wasm("clocks"), "/data/known.txt"])
    expect_equal(out.decode(), expected, "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")


@case
def wordfreq(env):
    d = env.fresh_dir("wordfreq")
    with open(os.path.join(d, "in.txt"), "w") as f:
        f.write("The quick fox; the lazy dog.\nA fox, THE end -- a fox!\n")
    rc, out, err = env.run(["run", "--dir", f"{d}::/w", env.wasm("wordfreq"),
                            "/w/in.txt", "/w/top.txt"])
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    expect_equal(out.decode(), "7 distinct words\nfox 3\nthe 3\na 2\n", "stdout")
    with open(os.path.join(d, "top.txt")) as f:
        expect_equal(f.read(), "fox 3\nthe 3\na 2\n", "top.txt")


# --- sockets -----------------------------------------------------------------

def echo_exchange(port, data, host="127.0.0.1"):
    """Sends `data` while reading the echo (so neither side's buffers fill)."""
    s = connect(port, host)
    errors = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)
    sender = threading.Thread(target=send)
    sender.start()
    received = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        received += chunk
    sender.join()
    s.close()
    expect(not errors, f"client send failed: {errors}")
    return bytes(received)


@case
def tcp_echo(env):
    port = free_port()
    proc = env.start(["run", "--listen", f"127.0.0.1:{port}",
                             env.wasm("tcp_echo"), "3"])
    try:
        sizes = [5, 2_000_000, 0]
        for size in sizes:
            data = payload(size) if size < 100_000 else os.urandom(size)
            got = echo_exchange(port, data)
            expect(got == data, f"echo of {size} bytes came back as {len(got)} bytes")
        out, err = communicate(proc)
    finally:
        kill_if_running(proc)
    expect_equal(proc.returncode, 0, f"exit code (stderr {err!r})")
    expect_equal(out.decode(), "listening on fd 3\n"
                 "connection 1: echoed 5 bytes\n"
                 "connection 2: echoed 2000000 bytes\n"
                 "connection 3: echoed 0 bytes\n", "stdout")


# --- the socket extension ----------------------------------------------------

def upper_server(family=socket.AF_INET, host="127.0.0.1"):
    """A peer for tcp_client: accepts one connection, reads until the client
    shuts down its side, answers with the same bytes upper-cased. Returns
    (port, thread, result) where result gets "data" (what it read)."""
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(1)
    srv.settimeout(IDLE_LIMIT)
    result = {}

    def run():
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(IDLE_LIMIT)
                data = bytearray()
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                result["data"] = bytes(data)
                conn.sendall(bytes(data).upper())
        except OSError as e:
            result["error"] = e
        finally:
            srv.close()
    t = threading.Thread(target=run)
    t.start()
    return srv.getsockname()[1], t, result


def run_tcp_client(env, allow, host, port, size, server):
    _, thread, result = server
    try:
        rc, out, err = env.run(["run"] + allow + [env.wasm("tcp_client"), host, str(port),
                                                  str(size)])
    finally:
        thread.join()
    expect("error" not in result, f"the peer failed: {result.get('error')}")
    expect_equal(result.get("data", b"")[:16], b"hello from wasm\n", "what the peer received first")
    expect_equal(len(result.get("data", b"")), 16 + size, "bytes the peer received")
    return rc, out.decode(), err


@case
def sock_tcp_client(env):
    server = upper_server()
    port = server[0]
    rc, out, err = run_tcp_client(env, ["--allow-connect", f"127.0.0.1:{port}"], "127.0.0.1",
                                  port, 200_000, server)
    expect_equal(out, f"connected to 127.0.0.1:{port}\n"
                 "received 200016 bytes: upper-cased echo\n", "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    # By name (resolved by the host, as allowed), and allowed by a prefix.
    server = upper_server()
    port = server[0]
    rc, out, err = run_tcp_client(env, ["--allow-resolve", "localhost",
                                        "--allow-connect", "127.0.0.0/8"], "localhost", port,
                                  1000, server)
    expect_equal(out, f"connected to 127.0.0.1:{port}\n"
                 "received 1016 bytes: upper-cased echo\n", "stdout (localhost)")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")


@case
def sock_tcp_client_ipv6(env):
    server = upper_server(socket.AF_INET6, "::1")
    port = server[0]
    rc, out, err = run_tcp_client(env, ["--allow-connect", f"[::1]:{port}"], "::1", port,
                                  50_000, server)
    expect_equal(out, f"connected to [::1]:{port}\n"
                 "received 50016 bytes: upper-cased echo\n", "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")


@case
def sock_tcp_client_refused(env):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    with srv:
        for allow in ([], ["--allow-connect", f"127.0.0.1:{port + 1}"],
                      ["--allow-connect", "10.0.0.0/8"], ["--allow-connect", f"[::1]:{port}"]):
            rc, out, err = env.run(["run"] + allow + [env.wasm("tcp_client"), "127.0.0.1",
                                                      str(port)])
            expect_equal(out.decode(), "connect: Permission denied\n", f"stdout with {allow}")
            expect_equal(rc, 1, f"exit code with {allow} (stderr {err!r})")
        # Nothing reached the listening socket.
        readable, _, _ = select.select([srv], [], [], 0)
        expect_equal(readable, [], "connections the refused client made")
        rc, out, _ = env.run(["run", "--allow-connect", f"127.0.0.1:{port}",
                              env.wasm("tcp_client"), "example.invalid", str(port)])
        expect_equal(out.decode(), "getaddrinfo: System error\n",
                     "stdout resolving a name without --allow-resolve")


def run_tcp_server(env, addr, host, allow):
    proc = env.start(["run"] + allow + [env.wasm("tcp_server"), addr, "0", "3"])
    try:
        first = read_line(proc)
        prefix = f"listening on {host}:"
        expect(first.startswith(prefix), f"first line: {first!r}")
        port = int(first[len(prefix):])
        for size in (5, 1_000_000, 0):
            data = os.urandom(size)
            got = echo_exchange(port, data, addr)
            expect(got == data, f"echo of {size} bytes came back as {len(got)} bytes")
        out, err = communicate(proc)
    finally:
        kill_if_running(proc)
    expect_equal(proc.returncode, 0, f"exit code (stderr {err!r})")
    expect_equal(out.decode(), f"connection 1 from {addr}: echoed 5 bytes\n"
                 f"connection 2 from {addr}: echoed 1000000 bytes\n"
                 f"connection 3 from {addr}: echoed 0 bytes\n", "stdout after the first line")


@case
def sock_tcp_server(env):
    run_tcp_server(env, "127.0.0.1", "127.0.0.1", ["--allow-bind", "127.0.0.1"])
    rc, out, err = env.run(["run", "--allow-bind", "127.0.0.1:8", env.wasm("tcp_server"),
                            "127.0.0.1", "0", "1"])
    expect_equal(out.decode(), "listen on 127.0.0.1:0: Permission denied\n",
                 "stdout binding a port not allowed")
    expect_equal(rc, 1, "exit code binding a port not allowed")


@case
def sock_tcp_server_ipv6(env):
    run_tcp_server(env, "::1", "[::1]", ["--allow-bind", "[::1]"])


@case
def sock_udp_server(env):
    # The answers go to the client's address: that is a send, so it needs
    # --allow-connect too.
    proc = env.start(["run", "--allow-bind", "127.0.0.1",
                             "--allow-connect", "127.0.0.1", env.wasm("udp_echo"), "server",
                             "127.0.0.1", "3"])
    try:
        first = read_line(proc)
        expect(first.startswith("bound to 127.0.0.1:"), f"first line: {first!r}")
        port = int(first.split(":")[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(IDLE_LIMIT)
            s.bind(("127.0.0.1", 0))
            for data in (b"hello", bytes(range(256)) * 4, b""):
                s.sendto(data, ("127.0.0.1", port))
                reply, source = s.recvfrom(4096)
                expect_equal(reply, data[::-1], "the answer")
                expect_equal(source, ("127.0.0.1", port), "the answer's source")
        out, err = communicate(proc)
    finally:
        kill_if_running(proc)
    expect_equal(proc.returncode, 0, f"exit code (stderr {err!r})")
    expect_equal(out.decode(), "datagram 1: 5 bytes, answered\n"
                 "datagram 2: 1024 bytes, answered\n"
                 "datagram 3: 0 bytes, answered\n", "stdout after the first line")


@case
def sock_udp_client(env):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(IDLE_LIMIT)
    port = srv.getsockname()[1]
    seen = []

    def serve():
        try:
            for _ in range(4):
                data, source = srv.recvfrom(4096)
                seen.append(data)
                srv.sendto(data.replace(b"ping", b"pong"), source)
        except OSError as e:
            seen.append(e)
    t = threading.Thread(target=serve)
    t.start()
    try:
        rc, out, err = env.run(["run", "--allow-connect", f"127.0.0.1:{port}",
                                env.wasm("udp_echo"), "client", "127.0.0.1", str(port)])
    finally:
        t.join()
        srv.close()
    expect_equal(seen, [b"ping 1", b"ping 2", b"ping 3", b"ping 4"], "datagrams the peer got")
    expect_equal(out.decode(), "answer 1: ok from the server\n"
                 "answer 2: ok from the server\n"
                 "answer 3: ok from the server\n"
                 "connected answer: pong 4\n", "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")


SOCK_API_CHECKS = [
    "socket tcp, udp, tcp6", "SO_TYPE stream", "SO_TYPE dgram", "SO_REUSEADDR on",
    "SO_REUSEADDR off", "SO_REUSEPORT on", "SO_KEEPALIVE on", "TCP_NODELAY on", "TCP_KEEPIDLE 77",
    "TCP_KEEPINTVL 13", "IP_TTL 42", "SO_BROADCAST on", "IP_MULTICAST_TTL 3",
    "IP_MULTICAST_LOOP off", "IPV6_V6ONLY on", "SO_RCVBUF 65536 (the kernel may give more)",
    "SO_SNDBUF 65536", "SO_LINGER on 5s", "SO_RCVTIMEO 1.5s", "SO_SNDTIMEO 3s",
    "unknown option is ENOPROTOOPT", "bind 127.0.0.1:0 (allowed)", "getsockname: 127.0.0.1, a port",
    "getpeername of an unconnected socket is ENOTCONN",
    "connect to a closed allowed port is ECONNREFUSED", "bind [::1]:0 and getsockname",
    "bind 127.0.0.2 is EACCES", "listen unbound (binds 0.0.0.0) is EACCES",
    "connect to a port not allowed is EACCES", "sendto an address not allowed is EACCES",
    "getaddrinfo 127.0.0.1:8080", "getaddrinfo [::1]:443",
    "getaddrinfo localhost (allowed) has 127.0.0.1",
    "getaddrinfo of a name not allowed: EAI_SYSTEM, EACCES", "AI_NUMERICHOST with a name is EAI_NONAME",
    "sock_open with a bad fd pointer is EFAULT", "sock_open of an unknown family is EAFNOSUPPORT",
    "sock_open", "sock_bind with a bad address pointer is EFAULT",
    "sock_addr_local with a bad pointer is EFAULT",
    "sock_get_reuse_addr with a bad pointer is EFAULT",
    "sock_addr_resolve with a bad result pointer is EFAULT",
    "sock_addr_resolve with a bad host pointer is EFAULT",
    "sock_bind of an unknown address kind is EPROTONOSUPPORT",
    "sock_bind on stdin (not a socket) is ENOTSOCK",
    "sock_bind without the bind right is ENOTCAPABLE", "sock_close", "sock_close again is EBADF",
]


@case
def sock_api(env):
    closed_port = free_port()
    rc, out, err = env.run(["run", "--allow-bind", "127.0.0.1", "--allow-bind", "[::1]",
                            "--allow-connect", f"127.0.0.1:{closed_port}",
                            "--allow-resolve", "localhost", env.wasm("sock_api"),
                            str(closed_port)])
    expected = "".join(f"{c}: ok\n" for c in SOCK_API_CHECKS) + "failures: 0\n"
    expect_equal(out.decode(), expected, "stdout")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")


@case
def sock_bad_options(env):
    for option, value in (("--allow-connect", "nonsense"), ("--allow-connect", "127.0.0.1/33"),
                          ("--allow-connect", "127.0.0.1:99999"), ("--allow-bind", "[::1"),
                          ("--allow-bind", "localhost:80"), ("--allow-resolve", "")):
        rc, out, err = env.run(["run", option, value, env.wasm("exit_code")])
        expect(rc != 0, f"{option} {value!r}: exit code 0")
        lines = err.splitlines()
        expect(len(lines) == 1 and lines[0].startswith("tern: error: ") and option in lines[0],
               f"{option} {value!r}: expected one 'tern: error:' line naming the option, "
               f"got {err!r}")
        expect_equal(out, b"", f"{option} {value!r}: stdout")


# --- sandbox escapes ---------------------------------------------------------

ESCAPES_REFUSED = [
    "open ../outside/secret", "open absolute outside path", "open /etc/passwd",
    "open sub/../../outside/secret", "open .. ", "open through absolute dir symlink",
    "open through relative dir symlink", "open absolute file symlink",
    "open relative file symlink", "open symlink chain out", "open dir symlink out as directory",
]
ESCAPES_CREATE = ["create ../outside/created", "create through dir symlink",
                  "create through dangling symlink out"]
ESCAPES_PATH = [
    "mkdir ../outside/newdir", "mkdir through dir symlink", "rename into outside",
    "rename through dir symlink", "rename outside file in", "link into outside",
    "link outside file in", "link through file symlink", "symlink to absolute path",
    "symlink to ../outside", "symlink climbing out from sub", "unlink ../outside/secret",
    "unlink through dir symlink", "rmdir ../outside/dir", "stat ../outside/secret",
    "stat through dir symlink", "stat following file symlink", "utimes following file symlink",
    "utimes ../outside/secret", "readlink ../outside/alink",
]


def make_sandbox(env):
    """root/sandbox is preopened; root/outside must stay untouched."""
    root = env.fresh_dir("escape")
    sandbox = os.path.join(root, "sandbox")
    outside = os.path.join(root, "outside")
    for d in ("sandbox/sub", "sandbox/swap_real", "outside/dir"):
        os.makedirs(os.path.join(root, d))
    files = {"sandbox/inside.txt": "inside", "outside/secret": "outside-secret",
             "sandbox/swap_real/secret": "inside-swap"}
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    links = {"link_abs": outside, "link_rel": "../outside",
             "link_file": os.path.join(outside, "secret"), "link_file_rel": "../outside/secret",
             "link_chain": "link_rel/secret", "loop1": "loop2", "loop2": "loop1",
             "link_in": "sub/../inside.txt", "link_dangling": "../outside/dangling",
             "swap_evil_abs": outside, "swap_evil_rel": "../outside"}
    for name, target in links.items():
        os.symlink(target, os.path.join(sandbox, name))
    os.symlink("secret", os.path.join(outside, "alink"))
    return root, sandbox, outside


def snapshot_tree(path):
    """Everything observable about a tree: names, types, contents, times."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = None
            if os.path.islink(p):
                content = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    content = f.read()
            state[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                               st.st_nlink, content)
    return state


def run_escapes(env, resolver):
    root, sandbox, outside = make_sandbox(env)
    before = snapshot_tree(outside)
    rc, out, err = env.run(["run", "--path-resolver", resolver, "--dir", f"{sandbox}::/sandbox",
                            env.wasm("escape"), outside])
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    text = out.decode()
    expect("outside-secret" not in text, f"an outside file was read:\n{text}")
    expected = "".join(f"{name}: ENOTCAPABLE\n" for name in ESCAPES_REFUSED)
    expected += "open symlink loop: ELOOP\n"
    expected += "".join(f"{name}: ENOTCAPABLE\n" for name in ESCAPES_CREATE + ESCAPES_PATH)
    expected += ("open inside.txt: success inside\n"
                 "open sub/../inside.txt: success inside\n"
                 "open link_in: success inside\n"
                 "lstat link_file (the link itself): success\n"
                 "readlink link_abs: success\n"
                 "symlink staying inside: success\n")
    expect_equal(text, expected, "stdout")
    expect_equal(snapshot_tree(outside), before, "the tree outside the preopen")
    expect_equal(sorted(os.listdir(sandbox)),
                 sorted(["inside.txt", "sub", "swap_real", "link_abs", "link_rel", "link_file",
                         "link_file_rel", "link_chain", "loop1", "loop2", "link_in",
                         "link_dangling", "swap_evil_abs", "swap_evil_rel"]),
                 "entries in the sandbox (nothing moved or linked in)")
    expect_equal(os.listdir(os.path.join(sandbox, "sub")), ["ok_link"], "entries in sandbox/sub")


@case
def escape_openat2(env):
    run_escapes(env, "openat2")


@case
def escape_walk(env):
    run_escapes(env, "walk")


def run_escape_race(env, resolver):
    """Swaps sandbox/swap between a real directory and symlinks pointing out
    while the guest keeps opening swap/secret."""
    root, sandbox, outside = make_sandbox(env)
    before = snapshot_tree(outside)
    stop = threading.Event()
    swaps = [0]

    def swapper():
        p = lambda name: os.path.join(sandbox, name)
        while not stop.is_set():
            for aside in ("swap_real", "swap_evil_abs", "swap_real", "swap_evil_rel"):
                os.rename(p(aside), p("swap"))
                os.rename(p("swap"), p(aside))
                swaps[0] += 1
    t = threading.Thread(target=swapper)
    t.start()
    try:
        rc, out, err = env.run(["run", "--path-resolver", resolver, "--dir",
                                f"{sandbox}::/sandbox", env.wasm("escape"), "race", "3000"])
    finally:
        stop.set()
        t.join()
    text = out.decode()
    expect("ESCAPED" not in text and "outside-secret" not in text,
           f"an outside file was read during the race:\n{text}")
    expect(text.endswith("0 escaped\n"), f"stdout: {text!r}")
    expect_equal(rc, 0, f"exit code (stderr {err!r})")
    expect(swaps[0] > 0, "the swapper never ran")
    expect_equal(snapshot_tree(outside), before, "the tree outside the preopen")


@case
def escape_race_openat2(env):
    run_escape_race(env, "openat2")


@case
def escape_race_walk(env):
    run_escape_race(env, "walk")


# --- the command line itself -------------------------------------------------

@case
def bad_input(env):
    d = env.fresh_dir("bad")
    malformed = os.path.join(d, "bad.wasm")
    with open(malformed, "wb") as f:
        f.write(b"\0asm\x01\0\0\0\x01\xff")
    not_wasm = os.path.join(d, "text.wasm")
    with open(not_wasm, "w") as f:
        f.write("hello")
    def wat(name, text):
        path = os.path.join(d, name)
        with open(path + ".wat", "w") as f:
            f.write(text)
        subprocess.run(["wat2wasm", path + ".wat", "-o", path], check=True)
        return path
    unknown_import = wat("unknown.wasm", '(module (import "wasi_snapshot_preview1" "fd_nope" '
                         '(func)) (func (export "_start")))')
    wrong_type = wat("wrong.wasm", '(module (import "wasi_snapshot_preview1" "fd_write" '
                     '(func (param i32) (result i32))) (func (export "_start")))')
    attempts = {
        "unknown WASI import": (["run", unknown_import], "fd_nope"),
        "WASI import of the wrong type": (["run", wrong_type], "fd_write"),
        "missing module": (["run", os.path.join(d, "missing.wasm")], "missing.wasm"),
        "malformed module": (["run", malformed], "malformed module"),
        "not a module": (["run", not_wasm], "text.wasm"),
        "missing --dir": (["run", "--dir", os.path.join(d, "nope"), env.wasm("exit_code")],
                          "--dir"),
        "--dir is a file": (["run", "--dir", not_wasm, env.wasm("exit_code")], "--dir"),
        "bad --listen": (["run", "--listen", "nonsense", env.wasm("exit_code")], "--listen"),
        # getaddrinfo alone keeps the low 16 bits: 99999 would listen on 34463.
        "--listen port 99999": (["run", "--listen", "127.0.0.1:99999", env.wasm("exit_code")],
                                "--listen"),
        "missing --stdin": (["run", "--stdin", os.path.join(d, "none"), env.wasm("exit_code")],
                            "--stdin"),
        "--stdin is a directory": (["run", "--stdin", d, env.wasm("exit_code")], "--stdin"),
        "no such --invoke": (["run", "--invoke", "nope", env.wasm("exit_code")], "nope"),
        "snapshot is a directory": (["inspect", d], f"cannot read {d}: is a directory"),
        "--cache-dir cannot be created": (["run", "--mode", "aot", "--cache-dir",
                                           "/proc/tern-nope", env.wasm("exit_code")],
                                          "cannot create directory /proc/tern-nope:"),
    }
    for what, (args, mention) in attempts.items():
        rc, out, err = env.run(args)
        expect(rc != 0, f"{what}: exit code 0")
        lines = err.splitlines()
        expect(len(lines) == 1 and lines[0].startswith("tern: error: ") and mention in lines[0],
               f"{what}: expected one 'tern: error:' line mentioning {mention!r}, got {err!r}")
        expect(len(lines) != 1 or lines[0].count(args[-1]) <= 1,
               f"{what}: {args[-1]!r} named more than once in {err!r}")
        expect_equal(out, b"", f"{what}: stdout")
    # A checkpoint that cannot be written is reported under the name asked
    # for (not the temporary file's), and the program runs on.
    rc, out, err = env.run(["run", "--checkpoint-at", "1", "--checkpoint-to",
                            "/proc/tern-nope.snap", env.wasm("exit_code")])
    expect_equal(rc, 0, "failed checkpoint: the program's exit code")
    expect("cannot create /proc/tern-nope.snap:" in err and ".tmp." not in err,
           f"failed checkpoint: expected the snapshot's own name in {err!r}")


@case
def unsupported_proposals(env):
    """A module using a proposal tern does not implement yet is refused
    naming the proposal ("not supported yet"), not called malformed, by
    every command that reads modules."""
    d = env.fresh_dir("proposals")
    modules = {
        "SIMD": (None, '(module (func (export "_start") '
                 '(drop (v128.const i32x4 0 0 0 0))))', "instruction prefix 0xfd"),
        "SIMD local": (None, '(module (func (export "_start") (local v128)))',
                       "value type v128"),
        "exception handling": ("--enable-exceptions", '(module (tag $e) '
                               '(func (export "_start") (throw $e)))', "tag section"),
        "tail calls": ("--enable-tail-call", '(module (func $f) (func (export "_start") '
                       '(return_call $f)))', "return_call"),
    }
    proposals = {"SIMD local": "SIMD"}
    for what, (flag, text, construct) in modules.items():
        path = os.path.join(d, what.replace(" ", "_") + ".wasm")
        with open(path + ".wat", "w") as f:
            f.write(text)
        subprocess.run(["wat2wasm", *([flag] if flag else []), path + ".wat", "-o", path],
                       check=True)
        proposal = proposals.get(what, what)
        for command in (["run"], ["validate"], ["compile", "-o", path + ".aot"]):
            rc, out, err = env.run([*command, path])
            lines = err.splitlines()
            expect(rc == 1 and len(lines) == 1, f"{what}, {command[0]}: exit {rc}, {err!r}")
            expect(f"the {proposal} proposal is not supported yet ({construct}" in lines[0]
                   and "malformed" not in lines[0] and path in lines[0],
                   f"{what}, {command[0]}: {lines[0]!r}")
    # Threads were on this list until the proposal landed (issue 19): a
    # shared memory with atomics is now run, validated and compiled.
    path = os.path.join(d, "threads.wasm")
    with open(path + ".wat", "w") as f:
        f.write('(module (memory 1 1 shared) (func (export "_start") '
                '(drop (i32.atomic.load (i32.const 0)))))')
    subprocess.run(["wat2wasm", "--enable-threads", path + ".wat", "-o", path], check=True)
    for command in (["run"], ["validate"], ["compile", "-o", path + ".aot"]):
        rc, out, err = env.run([*command, path])
        expect(rc == 0 and err == "", f"threads, {command[0]}: exit {rc}, {err!r}")


def expect_refused(env, what, args, mention):
    """`tern ARGS` refused: one `tern: error:` line mentioning `mention`,
    exit status 1, nothing on stdout."""
    rc, out, err = env.run(args)
    lines = err.splitlines()
    expect(rc == 1 and len(lines) == 1 and lines[0].startswith("tern: error: ") and
           mention in lines[0],
           f"{what}: expected exit status 1 and one 'tern: error:' line mentioning {mention!r}, "
           f"got {rc} and {err!r}")
    expect_equal(out, b"", f"{what}: stdout")


@case
def bad_usage(env):
    """Usage errors (unknown options and commands, missing or unconvertible
    values) are bad input like any other: one line, exit status 1."""
    wasm = env.wasm("exit_code")
    attempts = {
        "unknown option": (["run", "--bogus", wasm], "--bogus"),
        "no module": (["run"], "MODULE"),
        "bad --mode": (["run", "--mode", "bogus", wasm], "--mode"),
        "no value": (["run", "--dir"], "--dir"),
        "--checkpoint-at abc": (["run", "--checkpoint-at", "abc", wasm], "--checkpoint-at"),
        # CLI11 alone takes -5 as 2^64-5 and clamps an overflow: no checkpoint.
        **{f"--checkpoint-at {n}": (["run", "--checkpoint-to", "x.snap", "--checkpoint-at", n,
                                     wasm], "--checkpoint-at")
           for n in ("-5", "0", "99999999999999999999999")},
        # "inf" was a negative period (a checkpoint after every other), NaN undefined.
        **{f"--checkpoint-every {d}": (["run", "--checkpoint-to", "x.snap", "--checkpoint-every",
                                        d, wasm], "--checkpoint-every")
           for d in ("xyz", "0", "inf", "nan", "1e30h")},
        # A checkpoint handler on SIGSEGV would replace compiled code's trap handler.
        "--checkpoint-on-signal 11": (["run", "--checkpoint-to", "x.snap",
                                       "--checkpoint-on-signal", "11", wasm],
                                      "--checkpoint-on-signal"),
        "--checkpoint-on-signal BOGUS": (["run", "--checkpoint-on-signal", "BOGUS", wasm],
                                         "--checkpoint-on-signal"),
        "restore --mode": (["restore", "--mode", "bogus", "x.snap"], "--mode"),
        "inspect, no snapshot": (["inspect"], "SNAPSHOT"),
        "checkpoint, no --control": (["checkpoint"], "--control"),
        "compile --opt-level 9": (["compile", "--opt-level", "9", wasm, "-o", "x"],
                                  "--opt-level"),
        "validate, two modules": (["validate", wasm, wasm], wasm),
        "no command": ([], "command"),
        "unknown option, no command": (["--bogus"], "unknown option '--bogus'"),
        "unknown command": (["bogus", wasm], "bogus"),
        "--gateway without --key": (["run", "--gateway", "127.0.0.1:1", wasm], "--key"),
        "--key without --gateway": (["run", "--key", "k", wasm], "--gateway"),
        "--gateway with --invoke": (["run", "--gateway", "127.0.0.1:1", "--key", "k",
                                     "--invoke", "f", wasm], "--invoke"),
        "restore --no-gateway --key": (["restore", "--no-gateway", "--key", "k", "x.snap"],
                                       "--no-gateway"),
        "gateway, no --key": (["gateway", "--listen", "127.0.0.1:0", "--control",
                               "127.0.0.1:0"], "--key"),
        "gateway --hold bogus": (["gateway", "--listen", "127.0.0.1:0", "--control",
                                  "127.0.0.1:0", "--key", wasm, "--hold", "bogus"], "--hold"),
    }
    for what, (args, mention) in attempts.items():
        expect_refused(env, what, args, mention)


@case
def help(env):
    rc, out, _ = env.run(["run", "--help"])
    expect_equal(rc, 0, "exit code of --help")
    with open(os.path.join(env.docs, "cli.md")) as f:
        doc = f.read()
    expect(out.decode().strip() in doc,
           "docs/cli.md does not contain the output of `tern run --help`:\n" + out.decode())
    # Every command docs/cli.md shows the help of: the same options in both
    # (the text may differ where it depends on the host, as --target's default).
    option = re.compile(r"^\s+(?:-\w,)?(--[\w-]+)", re.M)
    for command in ("run", "restore", "compile", "wast", "checkpoint", "inspect", "keygen",
                    "serve", "migrate", "gateway", "snapshot flatten"):
        rc, out, _ = env.run(command.split() + ["--help"])
        expect_equal(rc, 0, f"exit code of {command} --help")
        block = re.search(r"```\n[^\n]*\nUsage: tern " + command + r" (.*?)```", doc, re.S)
        expect(block, f"docs/cli.md shows no `tern {command} --help`")
        in_help = set(option.findall(out.decode()))
        in_doc = set(option.findall(block.group(1)))
        expect_equal(sorted(in_doc), sorted(in_help),
                     f"options of `tern {command} --help` in docs/cli.md")


if __name__ == "__main__":
    sys.exit(case.main(__doc__.split("\n\n")[0], make_env=guest_env,
                       add_arguments=lambda ap: ap.add_argument("--docs", default="docs")))
