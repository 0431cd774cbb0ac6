"""Server memory per parked lane call.

Starts a private statehub-server, holds a lock from one lane connection and
parks --waiters acquire calls on it from another (one connection, distinct
request ids: a parked call is a request id whose reply comes later), then
reads the server's VmRSS before and after. Prints bytes per parked call;
the issue's bound is 2 KB (a parked gRPC call costs about 17 KB, see
bench/memory.cc). Cancels every call at the end and checks the server
answered each.

    .venv/bin/python bench/lane_memory.py [--waiters 10000]
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import tempfile
import time

from statehub._proto import lane_pb2, objects_pb2, sync_pb2, value_pb2

HEADER = struct.Struct("<IIHBB")
HELLO, REQUEST, RESPONSE, ERROR, CANCEL = 1, 3, 4, 5, 6
OPEN, ACQUIRE, STATE = 1, 80, 82


def frame(kind: int, request_id: int = 0, method: int = 0, body: bytes = b"") -> bytes:
    return HEADER.pack(len(body), request_id, method, kind, 0) + body


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    def exactly(n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return bytes(data)

    length, request_id, _, kind, _ = HEADER.unpack(exactly(HEADER.size))
    return kind, request_id, exactly(length)


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    hello = lane_pb2.LaneHello(protocol_version=1, label="lane_memory")
    sock.sendall(b"SHLN" + frame(HELLO, body=hello.SerializeToString()))
    read_frame(sock)  # WELCOME
    return sock


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument(
        "--server", default=os.environ.get("STATEHUB_SERVER", "build/server/statehub-server")
    )
    args = parser.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "s.sock")
    server = subprocess.Popen(
        [args.server, f"--listen=unix://{path}", "--metrics_listen=",
         f"--max_waiters_per_session={args.waiters + 10}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        while "ready" not in server.stdout.readline():
            pass
        holder, waiter = connect(path), connect(path)
        open_lock = objects_pb2.OpenRequest(name="l", type=value_pb2.LOCK)
        holder.sendall(frame(REQUEST, 1, OPEN, open_lock.SerializeToString()))
        read_frame(holder)
        acquire = sync_pb2.LockAcquireRequest(name="l", blocking=True).SerializeToString()
        holder.sendall(frame(REQUEST, 2, ACQUIRE, acquire))
        assert read_frame(holder)[0] == RESPONSE
        time.sleep(0.2)
        before = rss_kib(server.pid)
        batch = b"".join(frame(REQUEST, i, ACQUIRE, acquire) for i in range(1, args.waiters + 1))
        state = sync_pb2.LockStateRequest(name="l").SerializeToString()
        waiter.sendall(batch + frame(REQUEST, args.waiters + 1, STATE, state))
        # A connection's frames are served in order: once the State call
        # behind them answers, every acquire has parked.
        kind, _, body = read_frame(waiter)
        parked = len(sync_pb2.LockStateResponse.FromString(body).waiters)
        assert kind == RESPONSE and parked == args.waiters, (kind, parked)
        after = rss_kib(server.pid)
        per_call = (after - before) * 1024 / args.waiters
        print(f"server VmRSS {before} KiB -> {after} KiB with {args.waiters} parked "
              f"lane calls: {per_call:.0f} bytes per parked call (bound: 2048)")
        waiter.sendall(b"".join(frame(CANCEL, i) for i in range(1, args.waiters + 1)))
        answered = 0
        while answered < args.waiters:
            kind, _, _ = read_frame(waiter)
            answered += kind in (RESPONSE, ERROR)
        print(f"all {answered} parked calls answered after CANCEL")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
