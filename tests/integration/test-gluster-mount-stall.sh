#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a volume whose first mount stalls (its brick frozen with
# SIGSTOP: glfs_init waits for it up to gluster-timeout) holds up only the
# callers for that volume: a create on an already mounted volume is
# answered meanwhile, a second caller for the stalled volume shares the
# first one's outcome (one mount, one error), and once the brick answers
# again the volume mounts.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
CTL="$NBDR_SRC/tests/backends/gluster-ctl"
TIMEOUT=8

STALL_KEYS="a b x" gluster_stall_setup "$TIMEOUT"
cli gluster create "$OTHER/a.img" size 1M >/dev/null || fail "create on $GLUSTER_VOL2"
kill -STOP "$BRICK"

"$CLI" gluster create "$STALLED/x.img" size 1M host "$RPC" >"$T/x1.out" 2>&1 &
first=$!
sleep 1
"$CLI" gluster create "$STALLED/y.img" size 1M host "$RPC" >"$T/x2.out" 2>&1 &
second=$!
sleep 1
cli gluster create "$OTHER/b.img" size 1M >/dev/null || fail "create on $GLUSTER_VOL2 during the stalled mount"
kill -0 "$first" 2>/dev/null || { cat "$T/x1.out"; fail "the create on $GLUSTER_VOL2 was answered only once the stalled mount had ended: it waited for another volume's mount"; }
pass "a create on mounted volume $GLUSTER_VOL2 is answered while $GLUSTER_FAULT_VOL's mount stalls"

rc1=0; wait "$first" || rc1=$?
rc2=0; wait "$second" || rc2=$?
cat "$T/x1.out" "$T/x2.out"
[ $rc1 -eq 1 ] && [ $rc2 -eq 1 ] || fail "the creates on the stalled volume exited $rc1 and $rc2, wanted 1 and 1"
for f in x1 x2; do
  grep -q "cannot mount gluster volume '$GLUSTER_FAULT_VOL': .*bricks did not answer within $TIMEOUT s" "$T/$f.out" ||
    fail "$f: no clear mount error"
done
mounts=$(grep -c "\[gluster $GLUSTER_FAULT_VOL\] mounting gluster volume" "$T/log/nbd-runner.log" || true)
[ "$mounts" -eq 1 ] || fail "$mounts mounts of the stalled volume, wanted 1: the second caller did not share the first one's"
pass "both callers of the stalled volume get the one mount's error after gluster-timeout"

kill -CONT "$BRICK"
for _ in $(seq 30); do bash "$CTL" brick-online "$GLUSTER_FAULT_VOL" && break; sleep 0.5; done
cli gluster create "$STALLED/x.img" size 1M >/dev/null || fail "the volume does not mount once its brick answers"
pass "once the brick answers again, the volume mounts and the create succeeds"
