#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test gluster fault handling against the shared real glusterd: the brick
# of one volume is killed during a fio verify run; its clients get EIO at
# once, the runner stays up and keeps serving a second volume, and after
# the volume restarts new I/O succeeds without restarting the runner. A
# frozen brick (SIGSTOP) fails I/O after the configured gluster-timeout.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires fio qemu-io
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"
CTL="$NBDR_SRC/tests/backends/gluster-ctl"
TIMEOUT=5

bs_start_runner --gluster-timeout "$TIMEOUT" --gluster-log-level info
FAULT_KEY="$GLUSTER_FAULT_VOL/$TEST_ID/fault.img"
OTHER_KEY="$GLUSTER_VOL2/$TEST_ID/other.img"
cli gluster create "$FAULT_KEY" size 64M >/dev/null
cli gluster create "$OTHER_KEY" size 16M >/dev/null
cleanup "cli gluster delete '$OTHER_KEY' >/dev/null 2>&1; cli gluster delete '$FAULT_KEY' >/dev/null 2>&1"
# The restart below must happen even when the test fails halfway.
cleanup "bash '$CTL' restart-volume '$GLUSTER_FAULT_VOL' >/dev/null 2>&1"

# A killed brick fails requests at once; gluster-timeout bounds a silent one.
expect_eio_during_fio "$NBD/gluster/$FAULT_KEY" "$TIMEOUT" brick \
  bash "$CTL" kill-brick "$GLUSTER_FAULT_VOL"
pass "brick killed during fio verify: the client got EIO after ${FAULT_ELAPSED} s"

kill -0 "$RUNNER_PID" || fail "the runner died with the brick"
qemu-io -f raw -c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M' "$NBD/gluster/$OTHER_KEY" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "the other volume is not served"; }
grep -q 'verification failed' "$T/qio" && { cat "$T/qio"; fail "the other volume returned wrong data"; }
pass "the runner stays up and serves volume $GLUSTER_VOL2 while $GLUSTER_FAULT_VOL is down"

bash "$CTL" restart-volume "$GLUSTER_FAULT_VOL" || fail "the volume did not restart"
# The client reconnects to the restarted brick on its own (every 3 s).
RESTARTED=$(date +%s)
ok=0
for _ in $(seq 30); do
  if qemu-io -f raw -c 'write -P 0xa5 0 1M' -c 'flush' -c 'read -P 0xa5 0 1M' \
    "$NBD/gluster/$FAULT_KEY" >"$T/qio" 2>&1 && ! grep -q 'failed' "$T/qio"; then
    ok=1
    break
  fi
  sleep 1
done
[ $ok -eq 1 ] || { cat "$T/qio"; tail -40 "$T/log/gluster-$GLUSTER_FAULT_VOL.log"; fail "no I/O after the volume restarted"; }
pass "after the volume restarts, new I/O succeeds $(($(date +%s) - RESTARTED)) s later without restarting the runner"

# A brick that stops answering without closing its connection (SIGSTOP):
# a flush fails with EIO after gluster-timeout, not never.
BRICK=$(bash "$CTL" brick-pid "$GLUSTER_FAULT_VOL")
expect_eio_when_frozen "$NBD/gluster/$FAULT_KEY" "$BRICK" "$TIMEOUT" brick
pass "a frozen brick fails I/O with EIO after ${FROZEN_ELAPSED} s (gluster-timeout $TIMEOUT s)"
kill -0 "$RUNNER_PID" || fail "runner died"
