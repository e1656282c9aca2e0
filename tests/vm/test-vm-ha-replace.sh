#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability, replace while mapped (issue 28), in a qemu guest with
# the kernel nbd driver: a backstore on runners A and B is mapped through
# A; runner B is replaced by C (`nbd-cli file replace`) while the device
# is in use. The guest's nbd-clid learns the new set from A (its INFO
# reply), so when A is then killed during a write, the device moves to C
# (B, no longer in the set, is never tried): the write completes and
# every byte reads back.
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"
source "$(dirname "$0")/../integration/ha_members.sh"
requires python3
plain_build_only "a guest suite; test-runner-ha-replace runs replace here"

start_members A B C
"$CLI" file create f.img size 64M ha 2 host "$A,$B" >/dev/null
GA=10.0.2.2:$PORT_A GC=10.0.2.2:$PORT_C
cat >"$T/guest.sh" <<GUEST
nbd-clid --foreground --interval 1 --timeout 2 >/tmp/clid.log 2>&1 &
dev=\$(nbd-cli file map f.img timeout 4 dead-timeout 120 host $GA 2>/tmp/err) || r "FAIL map: \$(cat /tmp/err)"
for n in 0 1; do dd if=/dev/urandom of=/tmp/p\$n bs=1M count=8 2>/dev/null; done
ok write-0 dd if=/tmp/p0 of=\$dev bs=1M oflag=direct conv=fsync
# The host replaces B by C on this line.
r "replace"
ok_within set-followed 60 grep -q "the runner set of file/f.img is now .*$GC" /tmp/clid.log
ok set-recorded grep -q '"$GC"' /var/lib/nbd-cli/mappings.json
# The host kills A on this line.
r "kill-a"
ok write-1-during-kill dd if=/tmp/p1 of=\$dev bs=64k seek=128 oflag=direct conv=fsync
ok moved-to-c grep -q "moved file/f.img from $GA to $GC" /tmp/clid.log
for n in 0 1; do
  ok read-\$n sh -c "dd if=\$dev bs=1M skip=\$((8 * n)) count=8 iflag=direct 2>/dev/null | cmp - /tmp/p\$n"
done
kill %1
ok unmap nbd-cli file unmap \$dev
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT replace' 240
"$CLI" file replace f.img "$B" "$C" host "$A" >"$T/replace.out" 2>&1 ||
  { cat "$T/replace.out"; fail "replace of B by C while mapped through A failed"; }
wait_guest_line 'RESULT kill-a' 240
kill_now PID_A
finish_guest
pass "guest: B replaced by C while mapped through A; nbd-clid followed the new set; A killed during a write: the device moved to C, no I/O error, every byte read back"
[ -z "$(saved_set B f.img)" ] || fail "B still records f.img after the replace"
grep -q '"status": "created"' "$T/C/state/saveconfig.json" || fail "C's record is not back to created after the unmap"
pass "B forgot the backstore; C served it and cleared its record at unmap"
