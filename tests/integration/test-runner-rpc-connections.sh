#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that clients holding control connections cannot lock operators out:
# with all 64 slots taken by connections that send nothing (16 from each of
# four addresses, the most one address may hold), nbd-cli is still
# answered (the longest idle one is closed to make room), and a client that
# sends a call one byte at a time is dropped when the call has not arrived
# whole within 10 s.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner
cli file create a.img size 1M >/dev/null

python3 - "$RPC_PORT" "$CLI" "$RPC" <<'PY' >"$T/out" 2>&1 || { cat "$T/out"; fail "control connections"; }
import select, socket, subprocess, sys, time
port, cli, rpc = int(sys.argv[1]), sys.argv[2], sys.argv[3]

# 16 from each of four addresses: one address may hold 16.
idle = []
for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
    for _ in range(16):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        idle.append(s)
time.sleep(0.5)
t = time.monotonic()
r = subprocess.run([cli, "file", "list", "host", rpc], capture_output=True, text=True, timeout=60)
print("list with 64 idle connections open: exit %d after %.1f s" % (r.returncode, time.monotonic() - t))
if r.returncode != 0 or "a.img" not in r.stdout:
    print(r.stdout, r.stderr)
    sys.exit(1)
ready, _, _ = select.select(idle, [], [], 1)
closed = sum(1 for s in ready if s.recv(1) == b"")
print("idle connections closed to make room:", closed)
if closed < 1:
    sys.exit(1)
for s in idle:
    s.close()

# A call record of 200 bytes, sent a byte per second after its marker.
s = socket.create_connection(("127.0.0.1", port))
s.sendall((0x80000000 | 200).to_bytes(4, "big"))
t = time.monotonic()
dropped = None
while time.monotonic() - t < 30:
    try:
        s.sendall(b"\0")
    except OSError:
        dropped = time.monotonic() - t
        break
    s.settimeout(1)
    try:
        if s.recv(1) == b"":
            dropped = time.monotonic() - t
            break
    except socket.timeout:
        pass
    except OSError:  # closed with our bytes unread: the kernel sends a reset
        dropped = time.monotonic() - t
        break
print("a call sent a byte per second: dropped after", dropped)
if dropped is None or dropped > 14:
    sys.exit(1)
PY
cat "$T/out"
grep -q "control connections all taken: closing 127.0.0.[2-5]:[0-9]*'s, idle for" "$T/log/nbd-runner.log" || fail "no log line for the closed idle connection"
grep -q "call not received within 10 s; closing" "$T/log/nbd-runner.log" || fail "no log line for the dribbled call"
pass "64 idle control connections do not lock nbd-cli out; a dribbled call is dropped after 10 s"
cli file info a.img >/dev/null || fail "the control port stopped answering"
