#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a mapped backstore whose last NBD connection drops without
# NBD_CMD_DISC becomes dead (persisted), that a clean disconnect or a drop
# while another connection still serves it leaves it mapped, and that a
# reconnect's NBDR_MAPPED makes it mapped again.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner
cli file create d.img size 1M >/dev/null
T="$T" python3 - "$RPC_PORT" "$IO_PORT" <<'PY'
import os, struct, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from onc_rpc import call, map_token, xdr_string, xdr_u64
from nbd_wire import Client, CMD_DISC
rpc, io = int(sys.argv[1]), int(sys.argv[2])
key = xdr_string("file") + xdr_string("d.img")
def status_of(reply):
    return struct.unpack(">i", reply[:4])[0]
reply = call(rpc, 5, key + xdr_string("host-a"))                          # NBDR_MAP
assert status_of(reply) == 0
mapped = key + xdr_string("/dev/nbd9") + xdr_string("host-a") + xdr_u64(map_token(reply))
assert status_of(call(rpc, 6, mapped)) == 0                               # NBDR_MAPPED
c = Client(io); c.negotiate("file/d.img"); c.request(CMD_DISC); c.close()
time.sleep(0.5)
open(os.environ["T"] + "/step1", "w").write("clean")
keep = Client(io); keep.negotiate("file/d.img")                           # stays up
c = Client(io); c.negotiate("file/d.img"); c.close()                      # dropped, no DISC
time.sleep(0.5)
open(os.environ["T"] + "/step-one-of-two", "w").write(open(os.environ["T"] + "/state/saveconfig.json").read())
keep.close()                                                              # the last one drops
time.sleep(0.5)
open(os.environ["T"] + "/step2", "w").write("dropped")
PY
grep -q 'status": "mapped"' "$T/step-one-of-two" || fail "dead while another connection still served it"
pass "one of two connections dropping leaves it mapped"
grep -q 'status": "dead"' "$T/state/saveconfig.json" || fail "dropped connection did not make it dead"
cli --json file info d.img | grep -q '"status": "dead"' || fail "info does not show dead"
grep -q "NBD connection of /dev/nbd9 of host-a dropped without a disconnect" "$T/log/nbd-runner.log" ||
  fail "log"
[ "$(grep -c 'dropped without a disconnect' "$T/log/nbd-runner.log")" -eq 1 ] \
  || fail "the clean NBD_CMD_DISC connection was counted as dropped too"
pass "clean disconnect keeps it mapped; a dropped connection makes it dead (persisted, logged)"
python3 - "$RPC_PORT" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from onc_rpc import call, xdr_string, xdr_u64
r = call(int(sys.argv[1]), 6, xdr_string("file") + xdr_string("d.img") + xdr_string("/dev/nbd9")
         + xdr_string("host-a") + xdr_u64(0))
assert struct.unpack(">i", r[:4])[0] == 0
PY
cli --json file info d.img | grep -q '"status": "mapped"' || fail "reconnect did not restore mapped"
pass "a reconnect's NBDR_MAPPED brings it back to mapped"
