#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): a client that stops reading its replies
# holds up nobody else. Client A asks for 48 MiB of reads and reads none
# of the replies, so they back up in its socket; meanwhile client B, on
# another backstore of the same handler, must get its 4K requests
# answered at once. (A backend completes requests on threads shared by
# every connection, librbd's, gfapi's or io_uring's; none may wait for
# A's socket.) Then A reads everything and every reply arrives whole and
# in one piece, with the data written before.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires qemu-io python3

bs_start_runner
bs_create slow/a.img size 64M
bs_create slow/b.img size 16M
qemu-io -f raw -c 'write -P 0x5c 0 48M' "$(bs_uri slow/a.img)" >/dev/null

cat >"$T/slow.py" <<'PY'
import os, struct, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *  # noqa: F401,F403
port, a_name, b_name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
MIB = 1 << 20

a = Client(port, timeout=60)
a.negotiate(a_name, structured=True)
for i in range(48):
    a.request(CMD_READ, i * MIB, MIB, cookie=100 + i)
time.sleep(1.5)  # the replies fill A's socket; its sender has to stop

b = Client(port, timeout=30)
b.negotiate(b_name)
t0 = time.time()
for i in range(50):
    b.request(CMD_WRITE, i * 4096, 4096, cookie=i, payload=bytes([i]) * 4096)
    assert b.read_reply() == (i, 0, b""), i
    b.request(CMD_READ, i * 4096, 4096, cookie=1000 + i)
    assert b.read_reply(4096) == (1000 + i, 0, bytes([i]) * 4096), i
took = time.time() - t0
# A stalled backend thread would hold B for the 60 s send timeout.
assert took < 15, "client B waited %.1f s behind client A" % took
print("ok - 100 requests of client B answered in %.2f s while client A read nothing" % took)

seen = set()
for _ in range(48):
    cookie, err, data = a.read_reply(MIB)
    assert err == 0 and data == b"\x5c" * MIB, (cookie, err, len(data))
    seen.add(cookie)
assert seen == set(range(100, 148)), sorted(seen)
print("ok - client A then got all 48 replies, whole and with the right data")
b.close()
a.close()
PY
NBDR_SRC="$NBDR_SRC" python3 "$T/slow.py" "$IO_PORT" "$BACKEND/$(bs_key slow/a.img)" \
  "$BACKEND/$(bs_key slow/b.img)" || fail "slow client test failed"
pass "a client that does not read its replies holds up no other client"
