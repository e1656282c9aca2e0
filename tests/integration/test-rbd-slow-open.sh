#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that the time a backend takes to open an export does not count
# against the client's handshake deadline: with --handshake-timeout 2 and
# the OSD frozen (SIGSTOP) for 5 s while a client asks for the export's
# details (NBD_OPT_INFO), the open waits for the OSD, and the client's
# NBD_OPT_GO and read are then served, not dropped as a slow client.
# A client that is itself silent is still dropped after 2 s.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires qemu-io python3
bs_start_runner --handshake-timeout 2 --ceph-op-timeout 30
bs_create slow size 16M
URI=$(bs_uri slow)
qemu-io -f raw -c 'write -P 0x3d 0 64k' "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "first write"; }

OSD=$(ceph_pid osd)
cleanup "kill -CONT $OSD 2>/dev/null"
# NBD_OPT_INFO while the OSD is frozen for 5 s (the open waits for it),
# then NBD_OPT_GO and a read: a handshake of more than 2 s in all.
python3 - "$IO_PORT" "rbd/$(bs_key slow)" "$OSD" <<'PY' ||
import os, signal, sys, threading, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client, OPT_INFO, OPT_GO, REP_ACK, CMD_READ
port, name, osd = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = Client(port, timeout=60)
c.greeting()
os.kill(osd, signal.SIGSTOP)
threading.Timer(5, os.kill, (osd, signal.SIGCONT)).start()
t = time.monotonic()
c.option(OPT_INFO, Client.go_data(name))
info = c.replies_until_final()
took = time.monotonic() - t
print("INFO answered after %.1f s: %r" % (took, info[-1][0]))
assert info[-1][0] == REP_ACK and took >= 4, "INFO was not answered after the freeze"
c.option(OPT_GO, Client.go_data(name))
go = c.replies_until_final()
assert go[-1][0] == REP_ACK, go[-1]
c.request(CMD_READ, offset=0, length=65536, cookie=7)
cookie, err, data = c.read_reply(65536)
assert (cookie, err, data) == (7, 0, b"\x3d" * 65536), (cookie, err, data[:8])
print("GO and a read answered after %.1f s in all" % (time.monotonic() - t))
PY
  fail "a client whose export took 5 s to open was not served"
pass "an export that took 5 s to open (OSD frozen) is served despite handshake-timeout 2"

# The client's own silence still counts.
python3 - "$IO_PORT" <<'PY' || fail "a silent client was not dropped after the handshake timeout"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t = time.monotonic()
greeting = s.recv(18)
while s.recv(4096):
    pass
took = time.monotonic() - t
print("silent client dropped after %.1f s" % took)
sys.exit(0 if 1.5 <= took <= 6 else 1)
PY
pass "a client silent during the handshake is still dropped after 2 s"
