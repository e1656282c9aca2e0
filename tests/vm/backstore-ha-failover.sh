#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability on a networked backend (issue 28; registered for
# gluster and rbd, tests/vm/CMakeLists.txt; the file backend has
# test-vm-ha-failover.sh and test-vm-ha-fence.sh): three runners on the
# shared cluster, a backstore created on all three and mapped in a qemu
# guest through A. Runner A is killed (kill -9) during a write: the
# device moves to B, the write completes. Then B is frozen (SIGSTOP)
# before a write of pattern 2, which waits unread in B's socket; the
# device moves to C, where pattern 2 and then pattern 3 go over the same
# region; B, thawed, must not write pattern 2 over pattern 3. Every
# region reads back; the failover times are printed ("failover, ...").
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/../integration/backstore.sh"
source "$(dirname "$0")/vm-functions.sh"
HA_MEMBER_OPTS=("${BS_RUNNER_OPTS[@]}")
source "$(dirname "$0")/../integration/ha_members.sh"
requires python3
plain_build_only "a guest suite of 1-2 minutes per backend; test-vm-ha-fence runs failover here"

start_members A B C
TYPE=$BACKEND
KEY=$(bs_key ha/f.img)
"$CLI" "$TYPE" create "$KEY" size 64M ha 3 host "$A,$B,$C" >/dev/null
# Whatever happens, the object goes (every runner answers again by then,
# or force).
cleanup "\"$CLI\" $TYPE delete $KEY force host $C >/dev/null 2>&1"
GA=10.0.2.2:$PORT_A GB=10.0.2.2:$PORT_B GC=10.0.2.2:$PORT_C
cat >"$T/guest.sh" <<GUEST
nbd-clid --foreground --interval 1 --timeout 2 >/tmp/clid.log 2>&1 &
dev=\$(nbd-cli $TYPE map $KEY timeout 4 dead-timeout 120 host $GA 2>/tmp/err) || r "FAIL map: \$(cat /tmp/err)"
for n in 0 1 2 3; do dd if=/dev/urandom of=/tmp/p\$n bs=1M count=8 2>/dev/null; done
ok write-0 dd if=/tmp/p0 of=\$dev bs=1M oflag=direct conv=fsync
# timed N WHAT ARGS...: dd ARGS, its time printed as the failover time of WHAT
timed() {
  t0=\$(cut -d' ' -f1 /proc/uptime)
  ok write-\$1-during-\$2 dd if=/tmp/p\$1 of=\$dev bs=64k seek=\$((128 * \$3)) oflag=direct conv=fsync
  t1=\$(cut -d' ' -f1 /proc/uptime)
  r "write-time \$2 \$(echo "\$t0 \$t1" | awk '{printf "%.1f", \$2 - \$1}') s"
}
r "kill-a"
timed 1 kill 1
ok moved-to-b grep -q "moved $TYPE/$KEY from $GA to $GB" /tmp/clid.log
# The host freezes B on this line; 3 s leave it time to.
r "freeze-b"
sleep 3
timed 2 sigstop 2
ok moved-to-c grep -q "moved $TYPE/$KEY from $GB to $GC" /tmp/clid.log
ok write-3-over-2 dd if=/tmp/p3 of=\$dev bs=1M seek=16 oflag=direct conv=fsync
# The host thaws B and restarts A on this line.
r "thaw-b"
ok_within left-cleared 60 sh -c "! grep -q '\"left\"' /var/lib/nbd-cli/mappings.json"
for region in 0:0 1:8 3:16; do
  n=\${region%:*}
  ok read-\$n sh -c "dd if=\$dev bs=1M skip=\${region#*:} count=8 iflag=direct 2>/dev/null | cmp - /tmp/p\$n"
done
kill %1
ok unmap nbd-cli $TYPE unmap \$dev
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT kill-a' 240
kill_now PID_A
wait_guest_line 'RESULT freeze-b' 240
kill -STOP "$PID_B"
wait_guest_line 'RESULT thaw-b' 240
kill -CONT "$PID_B"
start_member A "" "$PORT_A" "${NBD_A##*:}"
finish_guest
pass "guest ($TYPE): A killed during a write, B frozen with writes unread; the device moved to B, then C; no I/O error; B's held writes never landed; every region read back"
grep -a '^RESULT write-time' "$T/results" | sed "s/^RESULT /failover ($TYPE), /"
if [ "$TYPE" = rbd ]; then
  # Each runner that took the device over broke the previous holder's
  # exclusive lock at once (NBDR_TAKE_OVER), rather than wait for its
  # watch to expire; the cluster blocklists that holder.
  for m in B C; do
    grep -q "take over: broke the exclusive lock of the client at" "$T/$m/log/nbd-runner.log" ||
      fail "runner $m did not break the image's lock when it took the device over"
  done
  grep -h "take over: broke" "$T/B/log/nbd-runner.log" "$T/C/log/nbd-runner.log"
  pass "rbd: B, then C, broke the previous holder's exclusive lock on taking over"
fi
"$CLI" "$TYPE" delete "$KEY" host "$A" >/dev/null || fail "delete through the set failed once every runner was back"
pass "deleted from every runner of the set"
