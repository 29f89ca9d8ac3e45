"""The service of the outgoing-connection test: answers the gateway test
protocol (guests/gw_protocol.h) on a free port of its host, one thread per
connection. Prints "port N" first, then "connection FROM" and "request SEQ"
lines as they come, for the test to follow."""

import socket
import sys
import threading


def reply_bytes(seq, n):
    return bytes((seq * 13 + i * 5 + 3) & 0xFF for i in range(n))


def body(seq, n):
    return bytes((seq * 31 + i * 7 + 1) & 0xFF for i in range(n))


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def serve_one(conn, peer):
    say(f"connection {peer[0]}:{peer[1]}")
    f = conn.makefile("rb")
    received = sent = 0
    while True:
        line = f.readline()
        if not line:
            return
        received += len(line)
        words = line.split()
        if words[0] == b"REQ":
            seq, size, n = map(int, words[1:4])
            data = f.read(n)
            received += len(data)
            if data != body(seq, n):
                say(f"bad body {seq}")
                return
            out = f"REP {seq} {size}\n".encode() + reply_bytes(seq, size)
            say(f"request {seq}")
        elif words[0] == b"STAT":
            out = f"STAT {int(words[1])} {received} {sent}\n".encode()
        else:
            say(f"bad line {line!r}")
            return
        conn.sendall(out)
        sent += len(out)


def main():
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    say(f"port {listener.getsockname()[1]}")
    while True:
        conn, peer = listener.accept()
        threading.Thread(target=serve_one, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
