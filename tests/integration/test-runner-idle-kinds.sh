#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The idle timeout follows what a connection is, not only how long it has
# been quiet (issue 27): a kernel mapping keeps its connections open
# between requests on purpose, so with --idle-timeout set, a connection
# from the address its map was called from is never closed as idle, while
# an idle connection from anywhere else is, and so is the same address's
# once the mapping is gone. The address is the one the runner saw on the
# control call, never a name the client sends.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner --idle-timeout 2
cli file create a.img size 1M >/dev/null
cat >"$T/idle.py" <<'PY'
import os, sys, threading, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client, CMD_READ
port = int(sys.argv[1])
results = {}

def idle_then_read(source):
    c = Client(port, source=source)
    c.negotiate("file/a.img")
    time.sleep(4.5)  # two idle timeouts and more
    try:
        c.request(CMD_READ, 0, 512, cookie=9)
        cookie, err, _ = c.read_reply(512)
        results[source] = "served" if (cookie, err) == (9, 0) else "error %d" % err
    except (OSError, AssertionError, Exception) as e:
        results[source] = "closed"
    c.close()

threads = [threading.Thread(target=idle_then_read, args=(s,)) for s in sys.argv[2:]]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s=%s" % (s, results[s]) for s in sys.argv[2:]))
PY
idle() { NBDR_SRC="$NBDR_SRC" python3 "$T/idle.py" "$IO_PORT" "$@"; }

got=$(idle 127.0.0.1)
[ "$got" = "127.0.0.1=closed" ] || fail "before any map, an idle connection stayed: $got"
pass "before a map, an idle connection is closed after --idle-timeout"

rpc_map_as host-a file a.img /dev/nbd3  # called from 127.0.0.1
got=$(idle 127.0.0.1 127.0.0.2)
[ "$got" = "127.0.0.1=served 127.0.0.2=closed" ] || fail "while mapped: $got"
grep -q "a kernel mapping's connection: never closed as idle" "$T/runner.out" ||
  fail "the exemption is not logged"
pass "while mapped, the mapping address's idle connection is served; another address's is closed"

rpc_call 7 file a.img "" host-a u64:0 | grep -q "^status 0 " || fail "unmap"
got=$(idle 127.0.0.1)
[ "$got" = "127.0.0.1=closed" ] || fail "after the unmap, an idle connection stayed: $got"
pass "after the unmap, the same address's idle connection is closed again"
