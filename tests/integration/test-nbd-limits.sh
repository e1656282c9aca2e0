#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the connection cap (--max-connections) and TCP keepalive on NBD
# connections.
source "$(dirname "$0")/functions.sh"
requires python3 ss

start_runner --max-connections 2
cli file create a.img size 1M >/dev/null
cat >"$T/limits.py" <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client
port, hold = int(sys.argv[1]), sys.argv[2]
a, b = Client(port), Client(port)
a.greeting(); b.greeting()
c = Client(port)
assert c.closed_by_server(within=3), "third connection was served"
print("ok - a connection above --max-connections is closed at once")
a.close(); b.close()
time.sleep(0.5)
d = Client(port)
d.negotiate("file/a.img")
print("ok - once connections end, new ones are served again")
open(hold, "w").write("1")
time.sleep(3)
d.close()
PY
NBDR_SRC="$NBDR_SRC" python3 "$T/limits.py" "$IO_PORT" "$T/hold" &
PY_PID=$!
for _ in $(seq 100); do [ -f "$T/hold" ] && break; sleep 0.1; done
[ -f "$T/hold" ] || fail "the python client never got served"
# The timer shows once nothing is in flight: the last reply of the
# handshake may still wait for the client's (delayed) ACK for a moment.
for _ in $(seq 20); do
  ss -tnoH state established "( sport = :$IO_PORT )" >"$T/ss"
  grep -q keepalive "$T/ss" && break
  sleep 0.1
done
grep -q keepalive "$T/ss" || { cat "$T/ss"; fail "no keepalive timer on the runner's side"; }
pass "NBD connections have TCP keepalive"
wait $PY_PID || fail "python client failed"
