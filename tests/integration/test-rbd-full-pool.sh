#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test rbd backstores served with ceph-full-try on a pool that fills up
# (the OSD's full ratio is set below what it holds, so Ceph marks the OSD
# and the pool full). A write that needs space fails at once with ENOSPC,
# which a client such as qemu can act on (werror=enospc pauses the guest),
# not with EIO after ceph-op-timeout. Reads, overwrites in place, and trims and deletes (which
# free space) still succeed; creating an image is refused with a sentence.
# Once the pool has room again, writes succeed without restarting the
# runner, and no data was lost.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires nbdsh qemu-io
CTL="$NBDR_SRC/tests/backends/ceph-ctl"
TIMEOUT=20
# C ARGS...: the ceph CLI, tried up to 5 times (a slow monitor).
C() {
  local i
  for i in 1 2 3 4 5; do timeout 30 bash "$CTL" ceph "$@" >/dev/null 2>&1 && return 0; done
  return 1
}
pool_full() {
  timeout 30 bash "$CTL" ceph osd pool ls detail | grep "^pool .* '$CEPH_POOL' " |
    grep -Eq 'flags ([^ ]*,)?full(,| )'
}
# set_full_ratios FULL BACKFILLFULL NEARFULL WANT: sets the OSDs' ratios
# (each one even when another fails), then waits until the pool's full
# flag is WANT (yes or no).
set_full_ratios() {
  local rc=0 i
  C osd set-full-ratio "$1" || rc=1
  C osd set-backfillfull-ratio "$2" || rc=1
  C osd set-nearfull-ratio "$3" || rc=1
  [ $rc -eq 0 ] || return 1
  for i in $(seq 60); do
    if pool_full; then [ "$4" = yes ] && return 0; else [ "$4" = no ] && return 0; fi
    sleep 0.5
  done
  return 1
}

# The cluster's own ratios, to put back.
read -r FULL BACKFILLFULL NEARFULL < <(timeout 30 bash "$CTL" ceph osd dump -f json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["full_ratio"], d["backfillfull_ratio"], d["nearfull_ratio"])') ||
  fail "cannot read the cluster's full ratios"
pool_full && fail "pool '$CEPH_POOL' is full before the test"
runner_refuses 1 "handler 'rbd': ceph-full-try: 'yes' is not on or off" \
  "${BS_RUNNER_OPTS[@]}" --ceph-full-try yes
pass "a ceph-full-try other than on or off stops the start, named"
bs_start_runner --ceph-op-timeout "$TIMEOUT" --ceph-full-try on
bs_create full size 16M
bs_create spare size 16M
URI=$(bs_uri full)
qemu-io -f raw -c 'write -P 0x6b 0 4M' -c flush "$URI" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "the first write"; }

# Every later test needs a pool with room, even when this one fails.
cleanup "set_full_ratios $FULL $BACKFILLFULL $NEARFULL no ||
  echo 'FAILED: pool $CEPH_POOL may still be full: ratios not restored' >&2"
set_full_ratios 0.001 0.0008 0.0005 yes || fail "the pool was not marked full"
pass "the OSD and pool '$CEPH_POOL' are marked full"

timeout 60 nbdsh -u "$URI" -c "
import time
def attempt(what, op):
    t = time.monotonic()
    try:
        r = op()
        print(what, 'ok', 'after %d s' % (time.monotonic() - t))
        return r
    except nbd.Error as e:
        print(what, 'error', e.string, 'after %d s' % (time.monotonic() - t))
r = attempt('read', lambda: h.pread(65536, 0))
print('read data', 'intact' if r == b'\x6b' * 65536 else 'WRONG')
attempt('write', lambda: h.pwrite(b'c' * 65536, 8 << 20))
attempt('overwrite', lambda: h.pwrite(b'd' * 65536, 65536))
attempt('trim', lambda: h.trim(1 << 20, 2 << 20))
" >"$T/full" 2>&1 || true
cat "$T/full"
kill -0 "$RUNNER_PID" || fail "the runner died"
grep -q '^read ok' "$T/full" && grep -q '^read data intact' "$T/full" ||
  fail "a read from the full pool failed"
pass "reads from the full pool succeed"
# At once: well before ceph-op-timeout, even on a loaded machine.
grep -q '^write error .*No space left on device.* after [0-8] s$' "$T/full" ||
  fail "a write to the full pool did not fail at once with ENOSPC"
pass "a write to the full pool fails at once with ENOSPC, not EIO after ceph-op-timeout"
grep -q "test-rbd-full-pool.*No space left on device" "$T/log/nbd-runner.log" ||
  fail "the runner's log does not say a write met a full pool"
pass "the runner's log names the ENOSPC"
grep -q '^overwrite ok' "$T/full" && grep -q '^trim ok' "$T/full" ||
  fail "an overwrite in place or a trim on the full pool failed"
pass "overwrites in place and trims (which free space) still succeed on the full pool"
expect_fail 1 "no space left, the Ceph pool '$CEPH_POOL' is full" \
  cli rbd create "$(bs_key more)" size 16M
pass "creating an image on the full pool is refused: $(cat "$T/err")"
cli rbd delete "$(bs_key spare)" >/dev/null || fail "deleting an image on the full pool failed"
pass "deleting an image (which frees space) on the full pool succeeds"

set_full_ratios "$FULL" "$BACKFILLFULL" "$NEARFULL" no || fail "the pool stayed full"
qemu-io -f raw -c 'write -P 0x2e 8M 1M' -c flush -c 'read -P 0x2e 8M 1M' -c 'read -P 0x6b 0 64k' \
  -c 'read -P 0x64 64k 64k' -c 'read -P 0x6b 128k 1M' -c 'read -P 0 2M 1M' \
  "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "no writes once the pool has room again"; }
grep -q 'verification failed' "$T/qio" &&
  { cat "$T/qio"; fail "wrong data after the pool was full"; }
pass "once the pool has room again, writes succeed without restarting the runner; no data lost"
