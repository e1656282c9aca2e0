#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability, fencing (issue 28), in a qemu guest with the kernel
# nbd driver: runner A, which serves a mapped device, is frozen (SIGSTOP)
# before the guest writes pattern 1 into a region: those writes wait,
# unread, in A's socket. The kernel gives them up at its request timeout
# and shuts the connection down; nbd-clid moves the device to B, where
# pattern 1 goes through, and then pattern 2 over the same region. When A
# is thawed it must not carry out the pattern-1 writes it still holds:
# pattern 2 stays, on the device and in the backing file. (The map names
# B as its host and A with prefer: it goes through A.)
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"
source "$(dirname "$0")/../integration/ha_members.sh"
requires python3

start_members A B
"$CLI" file create f.img size 64M ha 2 host "$A,$B" >/dev/null
cat >"$T/guest.sh" <<GUEST
nbd-clid --foreground --interval 1 --timeout 2 >/tmp/clid.log 2>&1 &
# host names B, prefer A: the map goes through A.
dev=\$(nbd-cli file map f.img timeout 4 dead-timeout 120 host 10.0.2.2:$PORT_B prefer 10.0.2.2:$PORT_A 2>/tmp/err) || r "FAIL map: \$(cat /tmp/err)"
for n in 1 2; do dd if=/dev/urandom of=/tmp/p\$n bs=1M count=1 2>/dev/null; done
r "p2-sum \$(sha256sum </tmp/p2 | cut -d' ' -f1)"
ok write-before dd if=/dev/zero of=\$dev bs=1M count=1 seek=32 oflag=direct conv=fsync
# The host freezes A on this line; 3 s leave it time to.
r "freeze-a"
sleep 3
ok write-1-through-failover dd if=/tmp/p1 of=\$dev bs=1M count=1 seek=32 oflag=direct conv=fsync
ok moved-to-b grep -q "moved file/f.img from 10.0.2.2:$PORT_A to 10.0.2.2:$PORT_B" /tmp/clid.log
ok write-2 dd if=/tmp/p2 of=\$dev bs=1M count=1 seek=32 oflag=direct conv=fsync
# The host thaws A on this line and looks at the backing file once A
# has had 5 s to do what it held.
r "thaw-a"
sleep 8
ok pattern-2-stays sh -c "dd if=\$dev bs=1M count=1 skip=32 iflag=direct 2>/dev/null | cmp - /tmp/p2"
kill %1
ok unmap nbd-cli file unmap \$dev
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT freeze-a' 240
kill -STOP "$PID_A"
wait_guest_line 'RESULT thaw-a' 240
kill -CONT "$PID_A"
sleep 5
region_sum=$(dd if="$T/files/f.img" bs=1M count=1 skip=32 2>/dev/null | sha256sum | cut -d' ' -f1)
finish_guest
want=$(sed -n 's/^RESULT p2-sum \([0-9a-f]*\).*/\1/p' "$T/results")
[ -n "$want" ] || fail "the guest did not report pattern 2's checksum"
[ "$region_sum" = "$want" ] ||
  fail "runner A, thawed, wrote the pattern-1 writes it held over pattern 2 (the backing file's region differs from pattern 2)"
grep -q "fenced: the kernel mapping's client has shut this connection down" "$T/A/log/nbd-runner.log" ||
  fail "runner A did not log that it dropped the writes it held"
pass "guest: A frozen with writes in its socket, the device moved to B, the region rewritten; A thawed dropped what it held (logged), pattern 2 stayed"
