#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# One peer cannot take every slot (issue 27, reproduction 3). Before, 256
# idle connections from one address took every NBD slot indefinitely and
# a legitimate nbdinfo got "server disconnected"; on the control port, 64
# connections that each sent one byte now and then locked out every
# nbd-cli (a connection counted as in a call from its first byte and
# could not be evicted). Now one address holds at most
# max-connections-per-peer NBD connections (64) and 16 control
# connections, and a control connection still sending its call after 2 s
# gives its slot to a new caller when all are taken.
source "$(dirname "$0")/functions.sh"
requires python3 nbdinfo

start_runner
cli file create a.img size 1M >/dev/null

# hog OUT SOURCE PORT COUNT MODE: in the background, COUNT connections
# from SOURCE (a loopback address), held until $T/stop exists: "nbd" ones
# negotiate file/a.img and sit idle in transmission, "rpc" ones send the
# first byte of a call. Writes how many the runner kept to OUT.
hog() {
  python3 - "$@" <<'PY' &
import os, socket, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *
out, source, port, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
kept = []
give_up = time.time() + 90  # a stalled runner fails the test, not its timeout
for _ in range(count):
    if time.time() > give_up:
        sys.exit("hog %s: runner too slow, %d of %d connections tried" % (source, len(kept), count))
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    try:
        if mode == "nbd":
            c = Client.__new__(Client)
            c.sock, c.structured, c.size, c.flags = s, False, None, None
            c.negotiate("file/a.img")
        else:
            s.sendall(b"\x80")  # the first byte of a record mark, and no more
        kept.append(s)
    except (Closed, OSError, RuntimeError, AssertionError):
        s.close()
time.sleep(0.5)
alive = 0
for s in kept:  # the runner may have closed some meanwhile (evicted)
    s.setblocking(False)
    try:
        alive += s.recv(1) != b""
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
with open(out + ".tmp", "w") as f:
    f.write("%d\n" % alive)
os.rename(out + ".tmp", out)
stop = os.path.join(os.path.dirname(out), "stop")
while not os.path.exists(stop) and os.path.isdir(os.path.dirname(out)):
    time.sleep(0.1)
PY
  HOGS+=($!)
  # Killed, not only told: one that missed the stop file before $T went
  # away held ctest's output pipe until the test timed out (CI, twice).
  cleanup "kill $! 2>/dev/null"
}
HOGS=()
# threads_waiting: the runner's threads and where each sleeps, should a
# step stall (it once hung here until ctest's timeout, on a CI machine).
threads_waiting() {
  local t
  for t in /proc/"$RUNNER_PID"/task/*; do
    printf '%s:%s ' "$(cat "$t/comm")" "$(cat "$t/wchan" 2>/dev/null)"
  done
}
# kept OUT: what hog wrote to OUT (waits up to 2 minutes).
kept() {
  local i
  for i in $(seq 1 1200); do [ -s "$1" ] && break; sleep 0.1; done
  cat "$1" 2>/dev/null || fail "$1: the hog did not report"
}

hog "$T/nbd.kept" 127.0.0.2 "$IO_PORT" 256 nbd
kept=$(kept "$T/nbd.kept")
[ "$kept" -eq 64 ] || fail "one address kept $kept NBD connections, not 64"
timeout 60 nbdinfo --size "$NBD/file/a.img" | grep -qx 1048576 ||
  fail "nbdinfo from another address (threads: $(threads_waiting))"
grep -q "refusing 127.0.0.2:[0-9]*: already 64 connections from 127.0.0.2 (max-connections-per-peer)" \
  "$T/log/nbd-runner.log" || fail "the refusal is not logged"
touch "$T/stop" && wait "${HOGS[@]}" && rm -f "$T/stop"
pass "one address holds 64 NBD connections, not all 256 slots; another address's nbdinfo is served"

# Four addresses, 16 slow callers each: every one of the 64 control slots.
for i in 2 3 4 5; do hog "$T/rpc$i.kept" "127.0.0.$i" "$RPC_PORT" 20 rpc; done
for i in 2 3 4 5; do
  kept=$(kept "$T/rpc$i.kept")
  [ "$kept" -eq 16 ] || fail "127.0.0.$i kept $kept control connections, not 16"
done
sleep 2.5  # past kSlowCall
timeout 60 "$CLI" file list host "$RPC" | grep -q '^a.img' ||
  fail "nbd-cli locked out by slow callers (threads: $(threads_waiting))"
grep -q "control connections all taken: closing 127.0.0.[2-5]:[0-9]*'s, still sending its call" \
  "$T/log/nbd-runner.log" || fail "no slow caller was evicted"
NBD_RUNNER_CONTROL_SOCKET="$T/control.sock" timeout 60 "$CLI" file list | grep -q '^a.img' ||
  fail "the admin socket locked out by a flood of the port"
pass "16 control connections per address; a slow caller gives its slot to nbd-cli; the admin socket has its own"
