#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a runner stops cleanly while the whole Ceph cluster is frozen
# (monitor and OSD stopped with SIGSTOP), against the shared real Ceph
# cluster: SIGTERM with a client connected and the cluster not answering
# ends in exit 0, the image's close bounded by ceph-op-timeout and the
# cluster disconnect by ceph-op-timeout + 5 s; nothing hangs. The cluster
# then thaws and a new runner serves the image, whose data is intact, and
# deletes it once the stopped runner's watch has expired (refusing it
# with the reason until then).
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires qemu-io nbdsh rbd
OSD=$(ceph_pid osd)
MON=$(ceph_pid mon)
cleanup "kill -CONT $MON $OSD 2>/dev/null"
OP_TIMEOUT=3

bs_start_runner --ceph-op-timeout "$OP_TIMEOUT"
KEY=$(bs_key frozen)
cli rbd create "$KEY" size 16M >/dev/null
cleanup "rbd -c '$CEPH_CONF' rm '$KEY' >/dev/null 2>&1"
URI=$(bs_uri frozen)
qemu-io -f raw -c 'write -P 0x6b 0 1M' -c flush "$URI" >"$T/qio" 2>&1 && ! grep -q failed "$T/qio" ||
  { cat "$T/qio"; fail "first write"; }

# A client stays connected (its image open in the runner) while the
# cluster freezes and the runner is told to stop.
timeout 120 nbdsh -u "$URI" -c "
import time
h.pread(4096, 0)
print('connected', flush=True)
time.sleep(100)
" >"$T/client" 2>&1 &
CLIENT=$!
cleanup "kill $CLIENT 2>/dev/null"
for _ in $(seq 100); do grep -q connected "$T/client" && break; sleep 0.1; done
grep -q connected "$T/client" || { cat "$T/client"; fail "the client did not connect"; }

kill -STOP "$MON" "$OSD"
start=$(date +%s)
kill -TERM "$RUNNER_PID"
limit=$((OP_TIMEOUT + 5 + 15))
for _ in $(seq $((limit * 10))); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$RUNNER_PID" 2>/dev/null; then
  gdb -p "$RUNNER_PID" -batch -ex "thread apply all bt 8" 2>/dev/null | grep -E "^#|^Thread" | head -60
  fail "nbd-runner did not stop within $limit s of SIGTERM with the cluster frozen"
fi
rc=0
wait "$RUNNER_PID" || rc=$?
secs=$(($(date +%s) - start))
RUNNER_PID=
kill -CONT "$MON" "$OSD"
[ $rc -eq 0 ] || fail "nbd-runner exited with status $rc"
grep -q "stopped cleanly" "$T/log/nbd-runner.log" || fail "no log line for the clean stop"
pass "with the cluster frozen, SIGTERM stops the runner in ${secs} s with status 0"

kill $CLIENT 2>/dev/null
wait $CLIENT 2>/dev/null || true
bs_start_runner --ceph-op-timeout 30
qemu-io -f raw -c 'read -P 0x6b 0 1M' "$(bs_uri frozen)" >"$T/qio2" 2>&1 && ! grep -q failed "$T/qio2" ||
  { cat "$T/qio2"; fail "the image's data after the thaw"; }
pass "after the thaw a new runner serves the image's data"

# The stopped runner's watch on the image outlives it until the cluster
# times it out (osd_client_watch_timeout, 30 s): meanwhile a delete is
# refused, saying why, and the backstore stays registered.
deleted=
refused=0
for _ in $(seq 60); do
  if cli rbd delete "$KEY" >"$T/del.out" 2>&1; then deleted=1; break; fi
  refused=$((refused + 1))
  grep -q "still open elsewhere (watchers)" "$T/del.out" ||
    { cat "$T/del.out"; fail "a refused delete does not say why"; }
  cli rbd info "$KEY" >/dev/null || fail "a refused delete dropped the backstore"
  sleep 1
done
[ -n "$deleted" ] || { cat "$T/del.out"; fail "delete after the thaw"; }
rbd -c "$CEPH_CONF" info "$KEY" >/dev/null 2>&1 && fail "the image outlived its delete"
pass "the delete succeeds after the thaw (refused $refused time(s) while the old watch lingered)"
