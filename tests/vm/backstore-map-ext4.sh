#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend), kernel mapping in a qemu guest: nbd-cli
# map -> mkfs.ext4 -> mount -> write files -> sync -> umount -> unmap -> map
# again -> fsck clean and every checksum intact; the runner's registry
# follows (mapped, created), the client's mapping record appears and goes,
# and list shows the kernel's view. Online resize (issue 29): with the
# file system mounted and written, the host resizes the backstore to
# 384M; the guest's nbd-clid grows the device within a poll and
# resize2fs grows the mounted file system; without TLS the guest's own
# nbd-cli resize to 512M grows its device at once. Snapshots (issue 29):
# while it is mapped and mounted a rollback is refused, and a snapshot is
# a crash-consistent ext4 (e2fsck clean after replaying the journal).
# With NBDR_MAP_TLS=1 the runner requires TLS and every map is made with
# a PSK, through kernel TLS.
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/../integration/backstore.sh"
source "$(dirname "$0")/vm-functions.sh"

# The sanitizer build maps the file backend without TLS (test-vm-tls runs
# kernel TLS there).
[ "${NBDR_BACKEND:-file}" = file ] && [ -z "${NBDR_MAP_TLS:-}" ] ||
  plain_build_only "the guest ext4 cycle on another backend or over TLS"
TLS_CLI=
if [ "${NBDR_MAP_TLS:-}" = 1 ]; then
  source "$(dirname "$0")/../integration/tls-credentials.sh"
  requires psktool
  mkdir -p "$T/guest-files"
  make_psk "$T/guest-files/keys.psk" client1
  VM_FILES="$T/guest-files/keys.psk"
  TLS_CLI="--tls-psk /files/keys.psk"
  bs_start_runner --tls require --tls-psk "$T/guest-files/keys.psk"
else
  bs_start_runner
fi
bs_create vm/ext4.img size 256M
KEY=$(bs_key vm/ext4.img)
B=$BACKEND
H="host 10.0.2.2:$RPC_PORT"
cat >"$T/guest.sh" <<GUEST
dev=\$(nbd-cli $TLS_CLI $B map $KEY $H 2>/tmp/err) && r "ok map \$dev" || r "FAIL map: \$(cat /tmp/err)"
ok tls-as-asked sh -c "[ -z '$TLS_CLI' ] || grep -Eq 'TlsCurrRxSw[[:space:]]+1\\\$' /proc/net/tls_stat"
ok size [ "\$(cat /sys/block/\${dev#/dev/}/size)" = 524288 ]
ok backend grep -q 'nbd-runner://10.0.2.2:$RPC_PORT/$B/$KEY' /sys/block/\${dev#/dev/}/backend
ok list-mapped sh -c "nbd-cli $TLS_CLI $B list mapped $H | grep -q '$KEY.*mapped.*\$dev.*connected'"
ok info-kernel sh -c "nbd-cli $TLS_CLI $B info $KEY $H | grep -q '^kernel: *connected\$'"
ok state-recorded sh -c "grep -q '$KEY' /var/lib/nbd-cli/mappings.json && grep -q '\$dev' /var/lib/nbd-cli/mappings.json"
ok mkfs mkfs.ext4 -q -F \$dev
ok mount mount -t ext4 \$dev /mnt
for i in 1 2 3 4 5; do dd if=/dev/urandom of=/mnt/f\$i bs=64k count=\$((i * 8)) 2>/dev/null; done
mkdir -p /mnt/dir && dd if=/dev/urandom of=/mnt/dir/big bs=1M count=24 2>/dev/null
(cd /mnt && sha256sum f1 f2 f3 f4 f5 dir/big) >/tmp/sums
nbd-clid --foreground --interval 1 --timeout 2 >/tmp/clid.log 2>&1 &
# The host resizes the backstore on this line.
r "resize-now"
ok_within clid-grows-device 30 sh -c "[ \\\$(cat /sys/block/\${dev#/dev/}/size) = 786432 ]"
kill %1
grep -v '^\\s*\$' /tmp/clid.log | while read -r l; do r "clid: \$l"; done
ok resize2fs-online resize2fs \$dev
ok fs-grew sh -c "[ \$(df -k /mnt | awk 'NR==2 {print \$2}') -gt 300000 ]"
if [ -z '$TLS_CLI' ]; then
  ok cli-grows-device sh -c "nbd-cli $B resize $KEY size 512M $H >/tmp/out 2>&1; cat /tmp/out; grep -q '\$dev grown' /tmp/out"
  ok size-512M [ "\$(cat /sys/block/\${dev#/dev/}/size)" = 1048576 ]
fi
ok sync sync
ok umount umount /mnt
ok unmap nbd-cli $B unmap \$dev $H
ok list-created sh -c "nbd-cli $TLS_CLI $B list created $H | grep -q '$KEY'"
ok state-forgotten sh -c "! grep -q '$KEY' /var/lib/nbd-cli/mappings.json"
dev2=\$(nbd-cli $TLS_CLI $B map $KEY $H 2>/tmp/err) && r "ok remap \$dev2" || r "FAIL remap: \$(cat /tmp/err)"
ok fsck e2fsck -f -n \$dev2
ok mount-again mount -t ext4 \$dev2 /mnt
ok checksums sh -c "cd /mnt && sha256sum -c /tmp/sums"
ok umount-again umount /mnt
ok unmap-by-key nbd-cli $B unmap $KEY $H
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT resize-now' 240
# Snapshots of the mapped, mounted disk: a rollback is refused while it
# is mapped; a snapshot taken now is a crash-consistent ext4, which
# e2fsck makes clean by replaying its journal.
expect_fail 1 "not rolling .* it is mapped on" cli "$B" snapshot rollback "$KEY" nope
SNAP_COPY=()
[ "$B" = rbd ] || SNAP_COPY=(copy)
cli "$B" snapshot create "$KEY" mounted "${SNAP_COPY[@]}" >"$T/out" ||
  fail "a snapshot of the mapped, mounted disk failed"
SNAP_CHECK="not read back here: the runner requires TLS"
if [ -z "$TLS_CLI" ]; then
  SNAP_CHECK="a clean ext4 after journal replay"
  qemu-img convert -f raw -O raw "$NBD/$B/$KEY@mounted" "$T/mounted.img" ||
    fail "reading the snapshot of the mounted disk failed"
  rc=0
  e2fsck -fy "$T/mounted.img" >"$T/fsck.out" 2>&1 || rc=$?
  [ $rc -le 1 ] && e2fsck -fn "$T/mounted.img" >>"$T/fsck.out" 2>&1 ||
    { cat "$T/fsck.out"; fail "the snapshot of the mounted disk is not a clean ext4 after journal replay"; }
fi
cli "$B" snapshot delete "$KEY" mounted >/dev/null || fail "deleting the snapshot failed"
pass "guest ($BACKEND${TLS_CLI:+, TLS}): rollback refused while mapped; a snapshot of the mounted disk ($(cat "$T/out")): $SNAP_CHECK"
cli "$B" resize "$KEY" size 384M >/dev/null
finish_guest
pass "guest ($BACKEND${TLS_CLI:+, TLS}): map, mkfs, mount, write, resize online (nbd-clid, resize2fs), unmap, remap, fsck and checksums"
cli --json "$B" info "$KEY" | grep -q '"status": "created"' || fail "runner state after unmap"
cli --json "$B" info "$KEY" | grep -q '"map_time": "20' || fail "map time not recorded"
pass "runner registry back to created, map time recorded"
