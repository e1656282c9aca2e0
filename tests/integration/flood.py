# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""Floods a runner with connections while one established client keeps
working, for the exhaustion tests (descriptors, threads).

Usage: flood.py IO_PORT RPC_PORT EXPORT COUNT
Negotiates EXPORT on one connection first; then opens COUNT connections
to the NBD port and COUNT to the control port and holds them for a
second; while they are held, the first client reads and writes its
export. Prints how many flood connections were served (greeted) and how
many refused (closed at once), and exits non-zero when the established
client was disturbed."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbd_wire import *  # noqa: E402,F401,F403

io_port, rpc_port, export, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

first = Client(io_port)
first.negotiate(export)


def served(s):
    """True when the runner greets the connection within 2 s, False when
    it closes it."""
    s.settimeout(2)
    try:
        return len(s.recv(18, socket.MSG_WAITALL)) == 18
    except (ConnectionResetError, socket.timeout):
        return False


held, greeted, refused = [], 0, 0
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", io_port), timeout=5)
    held.append(s)
    if served(s):
        s.sendall(b"\0\0\0\3")  # client flags: its handshake stays open
        greeted += 1
    else:
        refused += 1
for _ in range(count):
    try:
        held.append(socket.create_connection(("127.0.0.1", rpc_port), timeout=5))
    except OSError:
        pass
time.sleep(1)

# The established client is served while the flood is held.
pattern = bytes(range(256)) * 16
first.request(CMD_WRITE, offset=4096, length=len(pattern), cookie=7, payload=pattern)
cookie, err, _ = first.read_reply()
assert (cookie, err) == (7, 0), "write during the flood: %r" % ((cookie, err),)
first.request(CMD_READ, offset=4096, length=len(pattern), cookie=8)
cookie, err, data = first.read_reply(len(pattern))
assert (cookie, err, data) == (8, 0, pattern), "read during the flood failed"
for s in held:
    s.close()
print("flood: %d served, %d refused; the established client kept working" % (greeted, refused))
sys.exit(0 if refused > 0 else "nothing was refused: the limit was never reached")
