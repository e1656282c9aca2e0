#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Connections that are waiting hold no thread (issue 27): a client that
# goes quiet in transmission with nothing in flight, or between handshake
# options, is parked on the NBD server's event loop, and its threads end.
# 100 idle connections (half of them quiet after the first 10 bytes of a
# request) and 60 handshakes in progress (half of them quiet inside an
# option) cost the runner a handful of threads instead of one to three
# each (on 3465c58: 360 more),
# and every one of them is served at once when its client speaks again:
# handshakes finish, writes land, and each reads what another parked
# client wrote. The same over TLS (X.509), where the TLS session crosses
# from one thread to the next, and a client quiet inside the TLS
# handshake parks too. The handshake deadline still holds for a parked
# handshake.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires python3 certtool

parked() { python3 "$NBDR_SRC/tests/integration/parked.py" "$IO_PORT" "$RUNNER_PID" "$@"; }

# Threads beyond those with no connection at all: the loop threads and a
# margin for a connection still on its way to parking.
MARGIN=12

check_run() {  # what OUT
  local what=$1 out=$2 before parked_now
  before=$(sed -n 's/^threads-before //p' <<<"$out")
  parked_now=$(sed -n 's/^threads-parked //p' <<<"$out")
  [ -n "$before" ] && [ -n "$parked_now" ] || fail "$what: no thread counts: $out"
  echo "$what: $before threads before, $parked_now with the connections parked"
  [ "$parked_now" -le $((before + MARGIN)) ] ||
    fail "$what: $parked_now threads with the connections parked (before: $before)"
}

start_runner --max-connections 400 --max-connections-per-peer 400 --handshake-timeout 20
cli file create a.img size 1M >/dev/null
out=$(parked 100 60 3) || fail "plain: a parked connection was not served: $out"
check_run plain "$out"
grep -q "^served 160$" <<<"$out" || fail "plain: not every connection was served: $out"
pass "100 idle connections and 60 quiet handshakes hold no thread each, and all are served"

# A parked handshake is still closed at its deadline.
stop_runner
start_runner --handshake-timeout 2
python3 - "$IO_PORT" <<'PY' || fail "a quiet handshake outlived its deadline"
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
import nbd_wire as w
c = w.Client(int(sys.argv[1]), timeout=30)
c.recv(18)
start = time.monotonic()
assert c.closed_by_server(within=15), "still open after 15 s"
print("closed after %.1f s" % (time.monotonic() - start))
PY
pass "a parked handshake is closed at the handshake deadline"

# A client that stops half way through a write's payload holds a thread
# and the payload's memory: it has send-timeout to finish, idle-timeout
# or not (here 0, never).
stop_runner
start_runner --send-timeout 3
python3 - "$IO_PORT" <<'PY' || fail "a half-sent payload held its connection"
import os, struct, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
import nbd_wire as w
c = w.Client(int(sys.argv[1]), timeout=30)
c.negotiate("file/a.img")
c.send(struct.pack(">IHHQQI", w.REQUEST_MAGIC, 0, w.CMD_WRITE, 1, 0, 65536) + b"x" * 1000)
start = time.monotonic()
assert c.closed_by_server(within=20), "still open after 20 s"
print("closed after %.1f s" % (time.monotonic() - start))
PY
grep -q "write payload: not received within send-timeout (3 s)" "$T/runner.out" ||
  fail "the half-sent payload's closing is not logged"
pass "a write whose payload stops half way is dropped at send-timeout"

stop_runner
make_pki "$T/pki"
start_runner --tls require --tls-certificates "$T/pki/server" --max-connections 400 \
  --max-connections-per-peer 400 --handshake-timeout 20
out=$(parked 40 20 3 "$T/pki/client1") || fail "TLS: a parked connection was not served: $out"
check_run TLS "$out"
grep -q "^served 60$" <<<"$out" || fail "TLS: not every connection was served: $out"
pass "over TLS, parked connections and handshakes resume with their TLS sessions"

# The control port: connections between calls park too.
rpc_parked() { python3 "$NBDR_SRC/tests/integration/rpc_parked.py" "$RPC_PORT" "$RUNNER_PID" "$@"; }
stop_runner
start_runner
out=$(rpc_parked 16 2) || fail "control port: a parked connection was not served: $out"
check_run "control port" "$out"
grep -q "^served 48$" <<<"$out" || fail "control port: not every connection was served: $out"
stop_runner
start_runner --tls on --tls-certificates "$T/pki/server"
out=$(rpc_parked 10 2 "$T/pki/client1") || fail "control TLS: a parked connection was not served: $out"
check_run "control port over TLS" "$out"
grep -q "^served 10$" <<<"$out" || fail "control TLS: not every connection was served: $out"
pass "48 control connections between calls (10 over TLS, 5 of them inside the TLS handshake) hold no thread each, and all are answered"

# A control connection parked inside its TLS handshake is still closed at
# the TLS handshake's deadline (10 s).
python3 - "$RPC_PORT" <<'PY' || fail "a quiet control TLS handshake outlived its deadline"
import os, socket, struct, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
import onc_rpc as r
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
r._send_record(s, struct.pack(">IIIIIIIIII", 9, 0, 2, r.PROGRAM, r.VERSION, 0, 7, 0, 0, 0))
assert r._recv_record(s)[20:28] == b"STARTTLS"
start = time.monotonic()
s.settimeout(30)
assert s.recv(100) == b"", "the runner sent something instead of closing"
took = time.monotonic() - start
assert 8 < took < 20, "closed after %.1f s" % took
print("closed after %.1f s" % took)
PY
grep -q "TLS handshake not finished in time; closing" "$T/runner.out" ||
  fail "the control TLS handshake's timeout is not logged"
pass "a control connection quiet inside its TLS handshake is closed at its deadline"
