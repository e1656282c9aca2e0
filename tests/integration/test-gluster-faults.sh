#!/usr/bin/env bash
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

cat >"$T/run.fio" <<FIO
[fault]
ioengine=nbd
uri=$NBD/gluster/$FAULT_KEY
rw=randwrite
bs=64k
iodepth=8
size=64M
time_based=1
runtime=60
verify=crc32c
verify_backlog=64
verify_state_save=0
FIO
fio --output="$T/fio.out" "$T/run.fio" &
FIO_PID=$!
sleep 3
kill -0 $FIO_PID 2>/dev/null || { cat "$T/fio.out"; fail "fio stopped before the fault"; }
KILLED=$(date +%s)
bash "$CTL" kill-brick "$GLUSTER_FAULT_VOL" || fail "could not kill the brick of $GLUSTER_FAULT_VOL"
rc=0
wait $FIO_PID || rc=$?
ELAPSED=$(($(date +%s) - KILLED))
[ $rc -ne 0 ] || { cat "$T/fio.out"; fail "fio finished cleanly although its brick died"; }
grep -Eq 'err= *5|Input/output error' "$T/fio.out" || { cat "$T/fio.out"; fail "fio did not see EIO"; }
# gluster-timeout bounds a silent brick; a killed one fails at once. Allow
# the timeout twice over for the client's ping cycle.
[ "$ELAPSED" -le $((2 * TIMEOUT + 5)) ] || fail "EIO took ${ELAPSED} s (gluster-timeout $TIMEOUT s)"
pass "brick killed during fio verify: the client got EIO after ${ELAPSED} s"

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
cleanup "kill -CONT $BRICK 2>/dev/null"
# One connection across the freeze: write, freeze the brick, write+flush.
timeout 120 nbdsh -u "$NBD/gluster/$FAULT_KEY" -c "
import os, signal, time
h.pwrite(b'a' * 65536, 2 << 20)
h.flush()
os.kill($BRICK, signal.SIGSTOP)
t = time.monotonic()
try:
    h.pwrite(b'b' * 65536, 2 << 20)
    h.flush()
    print('no error after', time.monotonic() - t)
except nbd.Error as e:
    print('error', e.string, 'after %d s' % round(time.monotonic() - t))
" >"$T/freeze" 2>&1 || true
kill -CONT "$BRICK"
cat "$T/freeze"
grep -q 'error .*Input/output error.* after' "$T/freeze" || fail "no EIO from a frozen brick"
ELAPSED=$(sed -n 's/.*after \([0-9]*\) s/\1/p' "$T/freeze")
[ "$ELAPSED" -le $((2 * TIMEOUT + 5)) ] || fail "EIO from a frozen brick took ${ELAPSED} s (gluster-timeout $TIMEOUT s)"
pass "a frozen brick fails I/O with EIO after ${ELAPSED} s (gluster-timeout $TIMEOUT s)"
kill -0 "$RUNNER_PID" || fail "runner died"
