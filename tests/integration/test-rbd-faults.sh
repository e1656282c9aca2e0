#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test rbd fault handling against the shared real Ceph cluster: the OSD
# stops during a fio verify run; the client gets EIO within the configured
# ceph-op-timeout, the runner stays up, and after the OSD restarts new I/O
# succeeds without restarting the runner. A frozen OSD (SIGSTOP) also gives
# EIO after the timeout instead of a hang.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires fio qemu-io
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"
CTL="$NBDR_SRC/tests/backends/ceph-ctl"
TIMEOUT=5

bs_start_runner --ceph-op-timeout "$TIMEOUT"
bs_create fault size 64M
URI=$(bs_uri fault)
# The OSD must run again for every later test, even when this one fails.
cleanup "bash '$CTL' start-osd >/dev/null 2>&1 || true"

expect_eio_during_fio "$URI" "$TIMEOUT" OSD bash "$CTL" stop-osd
pass "OSD stopped during fio verify: the client got EIO after ${FAULT_ELAPSED} s (ceph-op-timeout $TIMEOUT s)"

kill -0 "$RUNNER_PID" || fail "the runner died with the OSD"
cli rbd list >/dev/null || fail "the runner stopped answering RPC"
pass "the runner stays up and answers while the OSD is down"

# fio had requests in flight when the OSD stopped: the log has a few lines
# of them and, once fio's connection closed the export, one line that
# sums up the rest, not a line per failed request.
LOG="$T/log/nbd-runner.log"
for _ in $(seq 50); do grep -q "not logged one by one" "$LOG" && break; sleep 0.1; done
grep -q "more requests failed (the last: .*), not logged one by one" "$LOG" ||
  { grep "request type" "$LOG" | head; fail "failed requests not summed up"; }
n=$(grep -c "request type" "$LOG" || true)
[ "$n" -le 10 ] || fail "$n lines for failed requests: more than 5 per 10 s"
pass "the outage's failed requests: $n lines and one summary, not a line each"

bash "$CTL" start-osd
RESTARTED=$(date +%s)
ok=0
for _ in $(seq 60); do
  if qemu-io -f raw -c 'write -P 0xa5 0 1M' -c 'flush' -c 'read -P 0xa5 0 1M' "$URI" >"$T/qio" 2>&1 &&
    ! grep -q 'failed' "$T/qio"; then
    ok=1
    break
  fi
  sleep 1
done
[ $ok -eq 1 ] || { cat "$T/qio"; fail "no I/O after the OSD restarted"; }
pass "after the OSD restarts, new I/O succeeds $(($(date +%s) - RESTARTED)) s later without restarting the runner"

# A frozen OSD (SIGSTOP): one connection across the freeze gets EIO after
# ceph-op-timeout, not a hang.
OSD=$(ceph_pid osd)
expect_eio_when_frozen "$URI" "$OSD" "$TIMEOUT" OSD
pass "a frozen OSD fails I/O with EIO after ${FROZEN_ELAPSED} s (ceph-op-timeout $TIMEOUT s)"
kill -0 "$RUNNER_PID" || fail "runner died"

# SIGTERM while the OSD is down and a client holds the image open with
# written data: the runner still stops cleanly, in bounded time.
nbdsh -u "$URI" -c "
import time
h.pwrite(b'c' * 65536, 4 << 20)
time.sleep(60)
" >/dev/null 2>&1 &
HOLDER=$!
cleanup "kill $HOLDER 2>/dev/null"
sleep 1
bash "$CTL" stop-osd
SECONDS=0
stop_runner
pass "SIGTERM with the OSD down and an open image: the runner stopped cleanly in ${SECONDS} s"
kill $HOLDER 2>/dev/null || true
bash "$CTL" start-osd
