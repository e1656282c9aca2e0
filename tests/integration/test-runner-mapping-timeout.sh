#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a map whose client never confirms it (it crashed between
# NBDR_MAP and NBDR_MAPPED) falls back to created after --mapping-timeout,
# but not while NBD connections serve it (a client that connected its
# device and died before confirming leaves a live device), and that the
# backstore can be used again.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner --mapping-timeout 2
cli file create half.img size 1M >/dev/null
python3 - "$RPC_PORT" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from onc_rpc import call, xdr_string
reply = call(int(sys.argv[1]), 5, xdr_string("file") + xdr_string("half.img") + xdr_string("host-a"))
assert struct.unpack(">i", reply[:4])[0] == 0, "map refused"
PY
cli --json file info half.img | grep -q '"status": "mapping"' || fail "not in mapping state"
grep -q '"status": "mapping"' "$T/state/saveconfig.json" || fail "mapping state not persisted"
pass "a started map is recorded as 'mapping'"
expect_fail 1 "is being mapped by a client" cli file delete half.img
# An NBD connection, as the dead client's kernel device keeps, open past
# the timeout: the map stays; then it closes.
python3 - "$IO_PORT" "$RPC_PORT" "$T" <<'PY' || fail "a mapping with a live NBD connection expired"
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client
from onc_rpc import call, status_reply, xdr_string
c = Client(int(sys.argv[1])); c.negotiate("file/half.img")
time.sleep(3.5)
status, message = status_reply(call(int(sys.argv[2]), 5, xdr_string("file") + xdr_string("half.img")
                                    + xdr_string("host-b")))
print("a second map while the connection is open:", status, message)
c.close()
sys.exit(0 if status == 16 and "being mapped by host-a" in message else 1)
PY
pass "a mapping whose NBD connection is still open does not expire; no other client may map it"
sleep 3
cli --json file info half.img | grep -q '"status": "created"' || fail "mapping did not time out"
grep -q "mapping not confirmed within 2 s; back to created" "$T/log/nbd-runner.log" || fail "no log line"
grep -q '"status": "created"' "$T/state/saveconfig.json" || fail "expiry not persisted"
pass "an unconfirmed map falls back to created after --mapping-timeout"
cli file delete half.img >/dev/null || fail "backstore unusable after the timeout"
pass "the backstore is usable again"
