#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test what the runner does while the Ceph cluster holds a request or an
# open up (the OSD frozen with SIGSTOP for a few seconds, well inside
# ceph-op-timeout), against the shared real Ceph cluster:
# - a read that the cluster holds for longer than --idle-timeout does not
#   count as an idle connection: the reply arrives with the right data and
#   the connection stays up;
# - while a client's handshake is opening an image, a delete of that
#   backstore is refused (it would remove the image the client is about to
#   write to) and the image and its record stay, and clients of other
#   backstores are served meanwhile;
# - while a delete waits on the cluster, a map of that backstore is refused
#   as busy (not "does not exist"), and the delete then completes.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires qemu-io nbdsh rbd
OSD=$(ceph_pid osd)
cleanup "kill -CONT $OSD 2>/dev/null"
IDLE=2
HOLD=6

bs_start_runner --ceph-op-timeout 30 --idle-timeout "$IDLE" --log-level debug
bs_create held size 16M
URI=$(bs_uri held)
qemu-io -f raw -c 'write -P 0x3c 0 1M' -c flush "$URI" >"$T/qio" 2>&1 && ! grep -q failed "$T/qio" ||
  { cat "$T/qio"; fail "first write"; }

# 1. A read held by the cluster for HOLD s on a connection whose idle
# timeout is IDLE s. The image is opened fresh by this client, so nothing
# of the 1 MiB is cached in the runner and the read has to reach the OSD.
timeout 60 nbdsh -u "$URI" -c "
import os, signal, threading, time
h.pread(512, 8 << 20)  # the connection is up and served
os.kill($OSD, signal.SIGSTOP)
threading.Timer($HOLD, os.kill, ($OSD, signal.SIGCONT)).start()
t = time.monotonic()
try:
    data = h.pread(1 << 20, 0)
    print('read after %.1f s, right data: %s' % (time.monotonic() - t, data == b'\x3c' * (1 << 20)))
    h.pwrite(b'\x5a' * 4096, 1 << 20)
    h.flush()
    print('connection still serves')
except nbd.Error as e:
    print('error after %.1f s: %s' % (time.monotonic() - t, e))
" >"$T/held" 2>&1 || true
kill -CONT "$OSD"
cat "$T/held"
grep -q 'right data: True' "$T/held" || fail "a read held by the cluster did not come back whole"
grep -q 'connection still serves' "$T/held" || fail "the connection did not survive a held read"
secs=$(sed -n 's/read after \([0-9]*\).*/\1/p' "$T/held")
[ "$secs" -ge $((HOLD - 1)) ] || fail "the read came back after ${secs} s: the OSD was not holding it"
grep -q "idle for $IDLE s; closing" "$T/log/nbd-runner.log" &&
  fail "the runner called a connection with a request in flight idle"
pass "a read held ${secs} s by the cluster (idle timeout ${IDLE} s) is answered and the connection stays"

# The idle timeout itself still works: a connection with nothing in
# flight is closed.
timeout 30 nbdsh -u "$URI" -c "
import time
time.sleep($IDLE + 2)
try:
    h.pread(512, 0)
    print('still open')
except nbd.Error as e:
    print('closed:', e)
" >"$T/idle" 2>&1 || true
grep -q 'closed' "$T/idle" || { cat "$T/idle"; fail "an idle connection was not closed"; }
grep -q "idle for $IDLE s; closing" "$T/log/nbd-runner.log" || fail "no log line for the idle close"
pass "a connection with nothing in flight is still closed after ${IDLE} s"

# 2. A delete while a handshake is opening the image. No client holds the
# image now, so the next handshake opens it, and the frozen OSD keeps that
# open waiting.
for _ in $(seq 50); do rbd -c "$CEPH_CONF" status "$(bs_key held)" | grep -q watcher= || break; sleep 0.1; done
cli file create aside.img size 1M >/dev/null
kill -STOP "$OSD"
marks=$(grep -c 'NBD_OPT_STRUCTURED_REPLY' "$T/log/nbd-runner.log" || true)
timeout 60 nbdsh -u "$URI" -c "
print('served, right data:', h.pread(4096, 0) == b'\x3c' * 4096)
" >"$T/opener" 2>&1 &
OPENER=$!
cleanup "kill $OPENER 2>/dev/null"
for _ in $(seq 100); do
  [ "$(grep -c 'NBD_OPT_STRUCTURED_REPLY' "$T/log/nbd-runner.log" || true)" -gt "$marks" ] && break
  sleep 0.1
done
sleep 1  # the client's next option, NBD_OPT_GO, is now waiting on the open
rc=0
timeout 20 "$CLI" rbd delete "$(bs_key held)" host "$RPC" >"$T/del.out" 2>"$T/del.err" || rc=$?
# Meanwhile a client of another backstore (a file one) is served at once.
frc=0
timeout 10 qemu-io -f raw -c 'write -P 0x21 0 64k' -c 'read -P 0x21 0 64k' "$NBD/file/aside.img" \
  >"$T/aside" 2>&1 || frc=$?
kill -CONT "$OSD"
[ $frc -eq 0 ] && ! grep -q failed "$T/aside" ||
  { cat "$T/aside"; fail "a file client waited for the rbd open held by the cluster (rc $frc)"; }
cat "$T/del.err"
[ $rc -ne 124 ] || fail "the delete waited on the frozen cluster instead of refusing"
[ $rc -ne 0 ] || fail "a backstore being opened by a client was deleted"
grep -q 'being opened by an NBD client' "$T/del.err" || fail "the refusal does not say why"
wait $OPENER || true
cat "$T/opener"
grep -q 'served, right data: True' "$T/opener" || fail "the client that was opening the image was not served"
rbd -c "$CEPH_CONF" info "$(bs_key held)" >/dev/null 2>&1 || fail "the image is gone"
cli rbd info "$(bs_key held)" >/dev/null || fail "the backstore's record is gone"
pass "a delete during a client's open is refused (exit $rc), a file client is served meanwhile, and the client is served its data"

# 3. A map (NBDR_MAP, as nbd-cli map sends it) while a delete waits on the
# cluster: refused as busy, not "does not exist"; the delete then finishes.
bs_create gone size 16M
kill -STOP "$OSD"
"$CLI" rbd delete "$(bs_key gone)" host "$RPC" >"$T/del2.out" 2>&1 &
DELETER=$!
for _ in $(seq 100); do grep -q "\[rpc\] delete from" "$T/log/nbd-runner.log" && break; sleep 0.1; done
sleep 1
rpc_call 5 rbd "$(bs_key gone)" other-host >"$T/map.out" 2>&1 || true
kill -CONT "$OSD"
cat "$T/map.out"
grep -q "^status 16 .*is being created or deleted" "$T/map.out" || fail "a map during a delete was not refused as busy"
wait $DELETER || { cat "$T/del2.out"; fail "the delete held by the cluster failed"; }
expect_fail 1 "does not exist" cli rbd info "$(bs_key gone)"
pass "a map while a delete waits on the cluster is refused as busy; the delete then completes"
