#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test automatic reconnect: with nbd-clid running in the guest, the runner
# is killed with SIGKILL in the middle of direct writes and started again
# on the same ports; the writes resume, none fails, and the data read back
# is exactly what was written.
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"

start_runner
cli file create re.img size 64M >/dev/null
H="host 10.0.2.2:$RPC_PORT"
cat >"$T/guest.sh" <<GUEST
nbd-clid --foreground --interval 1 >/tmp/clid.log 2>&1 &
dev=\$(nbd-cli file map re.img dead-timeout 120 timeout 10 $H 2>/tmp/err) && r "ok map \$dev" || r "FAIL map: \$(cat /tmp/err)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=48 2>/dev/null
r "writing"
bad=0
for i in \$(seq 0 47); do
  dd if=/tmp/pat of=\$dev bs=1M skip=\$i seek=\$i count=1 oflag=direct conv=fsync 2>/tmp/dd.err || { bad=1; cat /tmp/dd.err; }
  [ \$i = 4 ] && r "past-4"
done
ok no-write-error [ \$bad = 0 ]
ok flush sync
ok same-data sh -c "[ \\"\\\$(dd if=\$dev bs=1M count=48 iflag=direct 2>/dev/null | sha256sum)\\" = \\"\\\$(sha256sum </tmp/pat)\\" ]"
ok clid-reconnected grep -q 'reconnected' /tmp/clid.log
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
ok unmap nbd-cli file unmap \$dev $H
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT past-4' 240
kill_now
pass "runner killed with SIGKILL during writes"
sleep 2
start_runner --rpc-port "$RPC_PORT" --io-port "$IO_PORT"
pass "runner restarted on the same ports"
finish_guest
pass "guest: writes resumed after the restart, none failed, data intact, nbd-clid reconnected"
cli --json file info re.img | grep -q '"status": "created"' || fail "runner state after unmap"
