#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test mapping modes and refusals in a qemu guest: a read-only map refuses
# writes and keeps the data, nbd-client 3.24 reads the same data, four
# connections carry a parallel load that verifies, a missing key and an
# already mapped key fail clearly, unmap of a mounted device is refused
# (the file system goes on) and with 'force' disconnects cleanly instead
# of hanging, a mapped device idle past the runner's --idle-timeout keeps
# its connection (issue 27: a kernel mapping is never closed as idle; its
# connection parks on the runner's event loop), and a null field in this host's records is no crash. Unmap by key touches this host's
# device only when it holds that backstore: a record from another host (or
# a stale one) naming a device that holds something else here is refused,
# and so is one whose device is not connected here, until 'force' clears
# it (disconnecting nothing here).
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"
requires qemu-io
[ -x /usr/sbin/nbd-client ] || skip "needs nbd-client"

# Two records as another host would leave them: stale.img dead on
# /dev/nbd5 (it was mapped when the runner stopped), live.img mapped on
# /dev/nbd6 (confirmed below over RPC, as that host's nbd-cli does).
seed_saveconfig stale.img /dev/nbd5 live.img
start_runner --idle-timeout 2
rpc_map_as other-host file live.img /dev/nbd6
cli file create ro.img size 16M >/dev/null
cli file create multi.img size 64M >/dev/null
cli file create busy.img size 64M >/dev/null
qemu-io -f raw -c 'write -P 0x5c 0 16M' "$NBD/file/ro.img" >/dev/null
H="host 10.0.2.2:$RPC_PORT"
RO_SUM=$(head -c 16M /dev/zero | tr '\0' '\134' | sha256sum | cut -d' ' -f1)
cat >"$T/guest.sh" <<GUEST
# read-only
dev=\$(nbd-cli file map ro.img readonly $H 2>/tmp/err) && r "ok map-readonly" || r "FAIL map-readonly: \$(cat /tmp/err)"
ok ro-flag [ "\$(cat /sys/block/\${dev#/dev/}/ro)" = 1 ]
if dd if=/dev/zero of=\$dev bs=4k count=1 oflag=direct 2>/dev/null; then r "FAIL ro-write: write succeeded"; else r "ok ro-write-refused"; fi
dd if=\$dev of=/tmp/ro bs=1M count=16 iflag=direct 2>/dev/null
ok ro-data [ "\$(sha256sum </tmp/ro | cut -d' ' -f1)" = "$RO_SUM" ]
ok unmap-ro nbd-cli file unmap \$dev $H

# nbd-client 3.24 (the reference client) against the runner, read-only data
ok nbd-client-connect nbd-client -N file/ro.img 10.0.2.2 $IO_PORT /dev/nbd7
dd if=/dev/nbd7 of=/tmp/ro2 bs=1M count=16 iflag=direct 2>/dev/null
ok nbd-client-data [ "\$(sha256sum </tmp/ro2 | cut -d' ' -f1)" = "$RO_SUM" ]
ok nbd-client-disconnect nbd-client -d /dev/nbd7

# four connections, parallel writers, then verify
dev=\$(nbd-cli file map multi.img connections 4 $H 2>/tmp/err) && r "ok map-4-connections" || r "FAIL map-4-connections: \$(cat /tmp/err)"
dd if=/dev/urandom of=/tmp/pat bs=1M count=16 2>/dev/null
for i in 0 1 2 3; do dd if=/tmp/pat of=\$dev bs=1M seek=\$((i * 16)) count=16 oflag=direct 2>/dev/null & done
wait
ok flush sync
want=\$(sha256sum </tmp/pat | cut -d' ' -f1)
bad=0
for i in 0 1 2 3; do
  got=\$(dd if=\$dev bs=1M skip=\$((i * 16)) count=16 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ "\$got" = "\$want" ] || bad=1
done
ok parallel-verify [ \$bad = 0 ]
ok unmap-multi nbd-cli file unmap \$dev $H

# refusals
if nbd-cli file map nope.img $H 2>/tmp/err; then r "FAIL missing-key: mapped"; else grep -q 'backstore file/nope.img does not exist' /tmp/err && r "ok missing-key-refused" || r "FAIL missing-key: \$(cat /tmp/err)"; fi
nbd-cli --json file map busy.img $H >/tmp/map.json 2>/tmp/err && r "ok map-busy-json" || r "FAIL map-busy: \$(cat /tmp/err)"
dev=\$(sed -n 's/.*"device": *"\\([^"]*\\)".*/\\1/p' /tmp/map.json)
ok map-json sh -c "grep -q '\"key\": *\"busy.img\"' /tmp/map.json && grep -q '\"size\": *67108864' /tmp/map.json && grep -q '\"runner\": *\"10.0.2.2:$RPC_PORT\"' /tmp/map.json && [ -b \$dev ]"
if nbd-cli file map busy.img $H 2>/tmp/err; then r "FAIL double-map: mapped twice"; else grep -q "already mapped on \$dev" /tmp/err && r "ok double-map-refused" || r "FAIL double-map: \$(cat /tmp/err)"; fi
if nbd-cli file map multi.img \$dev $H 2>/tmp/err; then r "FAIL busy-device: mapped onto a busy device"; else grep -q "\$dev is busy" /tmp/err && r "ok busy-device-refused" || r "FAIL busy-device: \$(cat /tmp/err)"; fi
ok busy-device-rolled-back sh -c "nbd-cli file list created $H | grep -q multi.img"
# The same runner under another name (its IPv4 address as IPv6): the device
# holds this backstore, so the record is neither stale nor cleared.
if nbd-cli file unmap busy.img host [::ffff:10.0.2.2]:$RPC_PORT 2>/tmp/err; then r "FAIL other-name: unmapped"; else grep -q "\$dev on this host holds file/busy.img of the runner at 10.0.2.2:$RPC_PORT, named otherwise here; unmap it by device" /tmp/err && r "ok other-name-refused" || r "FAIL other-name: \$(cat /tmp/err)"; fi
ok other-name-still-mapped sh -c "nbd-cli --json file info busy.img $H | grep -q '\"status\": *\"mapped\"'"

# unmap by key: only this host's device that holds that backstore
d5=\$(nbd-cli file map multi.img /dev/nbd5 $H 2>/tmp/err) && r "ok map-onto-nbd5" || r "FAIL map-onto-nbd5: \$(cat /tmp/err)"
if nbd-cli file unmap stale.img $H 2>/tmp/err; then r "FAIL foreign-record: disconnected"; else grep -q "/dev/nbd5 on this host holds nbd-runner://.*/file/multi.img" /tmp/err && r "ok foreign-record-refused" || r "FAIL foreign-record: \$(cat /tmp/err)"; fi
ok foreign-device-still-serves dd if=/dev/nbd5 of=/dev/null bs=4k count=1 iflag=direct
ok unmap-nbd5 nbd-cli file unmap /dev/nbd5 $H
if nbd-cli file unmap live.img $H 2>/tmp/err; then r "FAIL live-elsewhere: cleared"; else grep -q "is mapped on /dev/nbd6 of other-host; unmap it on the host that holds it" /tmp/err && r "ok live-elsewhere-refused" || r "FAIL live-elsewhere: \$(cat /tmp/err)"; fi
nbd-cli file unmap live.img force $H >/tmp/out 2>&1 && grep -q "forced: cleared the mapped mapping of file/live.img (/dev/nbd6 is not connected here; nothing disconnected)" /tmp/out && r "ok live-elsewhere-forced" || r "FAIL live-elsewhere-forced: \$(cat /tmp/out)"
if nbd-cli file unmap stale.img $H 2>/tmp/err; then r "FAIL stale-needs-force: cleared"; else grep -q "is dead on /dev/nbd5 of another host.*add 'force'" /tmp/err && r "ok stale-needs-force" || r "FAIL stale-needs-force: \$(cat /tmp/err)"; fi
nbd-cli file unmap stale.img force $H >/tmp/out 2>/tmp/err && grep -q "forced: cleared the dead mapping of file/stale.img (/dev/nbd5 is not connected here" /tmp/out && r "ok stale-record-cleared" || r "FAIL stale-record: \$(cat /tmp/out /tmp/err)"

# unmap while mounted: refused, the file system goes on; with force, a
# clean disconnect, no hang
# No lazy inode-table init and no atime updates: the idle check below needs
# a file system that leaves the device alone when nothing is written.
ok mkfs mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \$dev
ok mount mount -t ext4 -o noatime \$dev /mnt
if nbd-cli file unmap \$dev $H 2>/tmp/err; then r "FAIL unmap-mounted: disconnected"; else grep -q "not disconnecting \$dev: \$dev is mounted on /mnt; stop that use first, or add 'force'" /tmp/err && r "ok unmap-mounted-refused" || r "FAIL unmap-mounted: \$(cat /tmp/err)"; fi
ok still-connected sh -c "nbd-cli file list mapped $H | grep -q 'busy.img.*connected'"
ok write-after-refusal sh -c "echo kept >/mnt/after && sync && grep -q kept /mnt/after"
sleep 5  # more than twice the runner's --idle-timeout, no I/O
ok read-after-idle dd if=\$dev of=/dev/null bs=4k count=1 skip=3000 iflag=direct
ok write-after-idle sh -c "echo idle >/mnt/idle && sync && grep -q idle /mnt/idle"
# a hand-edited null in this host's records reads as unset, not a crash
sed -i 's/"host_id": *"[^"]*"/"host_id": null/' /var/lib/nbd-cli/mappings.json
ok null-field-list sh -c "grep -q '\"host_id\": *null' /var/lib/nbd-cli/mappings.json && nbd-cli file list $H >/dev/null"
ok unmap-mounted-force nbd-cli file unmap \$dev force $H
umount -l /mnt 2>/dev/null
r "ok no-hang"
ok state-forgotten sh -c "! grep -q busy.img /var/lib/nbd-cli/mappings.json"
GUEST
run_guest "$T/guest.sh"
pass "guest: read-only map, 4 connections with verified parallel writes, clear refusals, unmap by key only of what this host holds, unmap while mounted refused, then forced"
n=$(grep -c 'file/multi.img\] serving' "$T/log/nbd-runner.log")
[ "$n" -ge 4 ] || fail "the 4-connection map opened $n NBD connections"
pass "the 4-connection map really used 4 NBD connections"
grep -q "file/busy.img\] a kernel mapping's connection: never closed as idle" "$T/log/nbd-runner.log" ||
  fail "the mapped device's connection was not recognised as a kernel mapping's"
grep -q "file/busy.img\] idle for 2 s; closing" "$T/log/nbd-runner.log" &&
  fail "the mapped device's connection was closed as idle"
pass "a mapped device idle past --idle-timeout keeps its connection"
cli --json file info stale.img | grep -q '"status": "created"' || fail "the stale record was not cleared"
cli --json file info live.img | grep -q '"status": "created"' || fail "unmap force did not clear live.img"
pass "runner: the stale record cleared, the other host's mapping kept until 'force'"
cli --json file list mapped | grep -q '"key"' && fail "something still mapped on the runner"
pass "runner: nothing left mapped"
