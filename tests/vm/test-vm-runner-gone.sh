#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test, in a qemu guest, what nbd-cli and nbd-clid do when the runner goes
# away and another client takes a backstore over meanwhile:
# - unmap /dev/nbdX with the runner down still releases the device (exit 3,
#   saying the runner was not told), and once the runner is back, unmap KEY
#   from this host (where nothing holds it any more) clears its own dead
#   record without 'force';
# - a backstore that another host took over while this host's device was
#   dead, on a device of the same name (/dev/nbd9), is not reattached by
#   nbd-clid (two writers on one disk); nbd-clid forgets it, and unmap of
#   the device leaves the other client's record.
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"
requires python3
plain_build_only "a guest suite; test-vm-reconnect runs the lost-runner paths here"

start_runner
cli file create a.img size 16M >/dev/null
cli file create b.img size 16M >/dev/null
H="host 10.0.2.2:$RPC_PORT"
cat >"$T/guest.sh" <<GUEST
deva=\$(nbd-cli file map a.img $H 2>/tmp/err) || r "FAIL map-a: \$(cat /tmp/err)"
devb=\$(nbd-cli file map b.img /dev/nbd9 dead-timeout 120 $H 2>/tmp/err) || r "FAIL map-b: \$(cat /tmp/err)"
r "mapped \$deva \$devb"
i=0
while nbd-cli file list $H >/dev/null 2>&1 && [ \$i -lt 150 ]; do sleep 0.2; i=\$((i + 1)); done
rc=0
nbd-cli file unmap \$deva $H >/tmp/out 2>/tmp/err || rc=\$?
[ \$rc = 3 ] && grep -q "\$deva disconnected, but its runner could not be told.*unmap a.img host" /tmp/err && r "ok offline-unmap" || r "FAIL offline-unmap: exit \$rc \$(cat /tmp/err)"
ok offline-unmap-released sh -c "[ ! -e /sys/block/\${deva#/dev/}/pid ]"
r "offline-done"
i=0
until nbd-cli --json file info b.img $H 2>/dev/null | grep -q '"client": *"other-host"'; do
  sleep 0.5; i=\$((i + 1)); [ \$i -gt 240 ] && break
done
nbd-cli file unmap a.img $H >/tmp/out 2>&1 && grep -q "cleared this host's stale dead mapping of file/a.img (\$deva is not connected here" /tmp/out && r "ok dead-record-cleared" || r "FAIL dead-record-cleared: \$(cat /tmp/out)"
nbd-clid --foreground --interval 1 >/tmp/clid.log 2>&1 &
clid=\$!
sleep 6
kill \$clid
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
ok clid-left-b grep -q "\$devb: no longer reconnecting file/b.img" /tmp/clid.log
nbd-cli file unmap \$devb $H >/tmp/out 2>&1 && grep -q "disconnected /dev/nbd9; backstore file/b.img is dead on /dev/nbd9 of other-host, not on /dev/nbd9 of .*; left as it is" /tmp/out && r "ok unmap-b-leaves-record" || r "FAIL unmap-b-leaves-record: \$(cat /tmp/out)"
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT mapped' 240
kill_now
wait_guest_line 'RESULT offline-done' 120
start_runner --rpc-port "$RPC_PORT" --io-port "$IO_PORT"
cli --json file info b.img | grep -q '"status": "dead"' || fail "b.img is not dead after the restart"
# Another host takes b.img over: clears the dead record, maps it on its
# /dev/nbd9, and then loses its own connection (dead on /dev/nbd9).
rpc_call 7 file b.img "" "" u64:0 | grep -q "^status 0 " || fail "unmap of b.img by the other host"
rpc_map_as other-host file b.img /dev/nbd9
python3 - "$IO_PORT" <<'PY'
import os, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client
c = Client(int(sys.argv[1])); c.negotiate("file/b.img"); c.close()  # dropped, no NBD_CMD_DISC
PY
pass "runner killed and restarted; another host took b.img over"
finish_guest
pass "guest: offline unmap released the device, the dead record was cleared, nbd-clid left b.img alone"
cli --json file info b.img >"$T/b.json"
grep -q '"status": "dead"' "$T/b.json" && grep -q '"device": "/dev/nbd9"' "$T/b.json" ||
  { cat "$T/b.json"; fail "the other host's record of b.img changed"; }
cli --json file info a.img | grep -q '"status": "created"' || fail "a.img's record was not cleared"
pass "runner: the other host's record of b.img untouched, a.img created again"
