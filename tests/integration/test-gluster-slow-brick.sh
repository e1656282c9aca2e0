#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test a brick that stays alive and answers gfapi's pings but leaves reads
# and writes unanswered, as when its disk hangs. Here GlusterFS's own
# delay-gen translator holds every read and write 60 s inside the brick.
# With gluster-request-timeout set, such a request must fail with EIO after
# that long (gfapi's frame-timeout, which its client checks every 10 s),
# not after the volume's default of 30 minutes. Once the brick answers
# again, I/O succeeds without restarting the runner, and the data written
# before is intact.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires nbdsh nbdinfo qemu-io
compgen -G "/usr/lib*/glusterfs/*/xlator/debug/delay-gen.so" >/dev/null ||
  compgen -G "/usr/lib*/*/glusterfs/*/xlator/debug/delay-gen.so" >/dev/null ||
  skip "GlusterFS's delay-gen translator is not installed"
CTL="$NBDR_SRC/tests/backends/gluster-ctl"
TIMEOUT=3
HOLD_US=60000000
DELAY_OPTIONS=(debug.delay-gen delay-gen.delay-percentage delay-gen.delay-duration
  delay-gen.enable)
G() { timeout 60 bash "$CTL" gluster "$@" >/dev/null; }
# G with retries: glusterd refuses a change while another transaction runs.
G_retry() {
  local i
  for i in 1 2 3 4 5; do G "$@" && return 0; sleep 1; done
  echo "gluster $* failed 5 times" >&2
  return 1
}
# The brick reads its translator graph when it starts: restart it, then
# wait until the runner's client is connected to it again (a block-status
# request, which the delay does not hold, is answered).
restart_brick() {
  bash "$CTL" kill-brick "$GLUSTER_FAULT_VOL" && bash "$CTL" restart-volume "$GLUSTER_FAULT_VOL" ||
    return 1
  local i
  for i in $(seq 60); do
    nbdinfo --map "$URI" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
# Later tests use the volume: the delay must be gone, or say so loudly.
undo_delay() {
  local o
  for o in "${DELAY_OPTIONS[@]}"; do G_retry volume reset "$GLUSTER_FAULT_VOL" "$o"; done
  if ! timeout 60 bash "$CTL" gluster volume get "$GLUSTER_FAULT_VOL" debug.delay-gen |
    grep -Eq '^debug.delay-gen +off'; then
    echo "FAILED: the delay-gen translator may still be set on $GLUSTER_FAULT_VOL" >&2
    return 1
  fi
  restart_brick
}

bs_start_runner --gluster-request-timeout "$TIMEOUT"
KEY="$GLUSTER_FAULT_VOL/$TEST_ID/slow.img"
URI="$NBD/gluster/$KEY"
cli gluster create "$KEY" size 16M >/dev/null || fail "create on $GLUSTER_FAULT_VOL"
cleanup "cli gluster delete '$KEY' >/dev/null 2>&1"
qemu-io -f raw -c 'write -P 0x6b 0 1M' -c flush "$URI" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "the first write"; }

# This cleanup must run even when the test fails halfway.
cleanup "[ -n \"\${DELAY_UNDONE:-}\" ] || undo_delay"
G_retry volume set "$GLUSTER_FAULT_VOL" debug.delay-gen posix &&
  G_retry volume set "$GLUSTER_FAULT_VOL" delay-gen.delay-percentage 100 &&
  G_retry volume set "$GLUSTER_FAULT_VOL" delay-gen.delay-duration "$HOLD_US" &&
  G_retry volume set "$GLUSTER_FAULT_VOL" delay-gen.enable read,write ||
  fail "could not set the delay-gen translator on $GLUSTER_FAULT_VOL"
restart_brick || fail "the runner did not reconnect to the restarted brick"

timeout 60 nbdsh -u "$URI" -c "
import time
for what, op in (('read', lambda: h.pread(65536, 0)),
                 ('write and flush', lambda: (h.pwrite(b'c' * 65536, 1 << 20), h.flush()))):
    t = time.monotonic()
    try:
        op()
        print(what, 'answered after %.1f s' % (time.monotonic() - t))
    except nbd.Error as e:
        print(what, 'error', e.string, 'after %d s' % (time.monotonic() - t))
" >"$T/held" 2>&1 || true
cat "$T/held"
kill -0 "$RUNNER_PID" || fail "the runner died"
for what in read 'write and flush'; do
  line=$(grep "^$what error .*Input/output error" "$T/held") ||
    fail "a $what the brick held did not fail with EIO"
  took=$(sed -n 's/.* after \([0-9]*\) s$/\1/p' <<<"$line")
  # Given up once older than TIMEOUT, at the client's next 10 s check
  # (with room for a slow machine; the hold lasts 60 s).
  [ "$took" -ge $((TIMEOUT - 1)) ] && [ "$took" -le $((TIMEOUT + 25)) ] ||
    fail "the $what failed after $took s, not within gluster-request-timeout $TIMEOUT s + 10 s"
  pass "a $what held in a live brick fails with EIO after $took s" \
    "(gluster-request-timeout $TIMEOUT s)"
done

undo_delay || fail "the runner did not reconnect once the brick answers again"
DELAY_UNDONE=1
qemu-io -f raw -c 'read -P 0x6b 0 64k' -c 'write -P 0x2e 2M 1M' -c flush -c 'read -P 0x2e 2M 1M' \
  "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "no I/O once the brick answers again"; }
grep -q 'verification failed' "$T/qio" && { cat "$T/qio"; fail "wrong data after the stall"; }
pass "once the brick answers again, the runner serves I/O and the data written before is intact"
