#!/usr/bin/env bash
# Test rbd backstores on a pool that fills up (the OSD's full ratio is set
# below what it holds, so Ceph marks the OSD and the pool full). A write
# that needs space fails at once with ENOSPC, which a client such as qemu
# can act on (werror=enospc pauses the guest), not with EIO after
# ceph-op-timeout. Reads, overwrites in place, and trims and deletes (which
# free space) still succeed; creating an image is refused with a sentence.
# Once the pool has room again, writes succeed without restarting the
# runner, and no data was lost.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires nbdsh qemu-io
CTL="$NBDR_SRC/tests/backends/ceph-ctl"
TIMEOUT=20
C() { timeout 30 bash "$CTL" ceph "$@" >/dev/null 2>&1; }
pool_full() {
  timeout 30 bash "$CTL" ceph osd pool ls detail | grep "^pool .* '$CEPH_POOL' " |
    grep -q 'flags [^ ]*full'
}
# set_full_ratios FULL BACKFILLFULL NEARFULL, then wait until the pool's
# full flag is WANT (yes or no).
set_full_ratios() {
  C osd set-full-ratio "$1" && C osd set-backfillfull-ratio "$2" && C osd set-nearfull-ratio "$3" ||
    return 1
  local i
  for i in $(seq 60); do
    if pool_full; then [ "$4" = yes ] && return 0; else [ "$4" = no ] && return 0; fi
    sleep 0.5
  done
  return 1
}

bs_start_runner --ceph-op-timeout "$TIMEOUT"
bs_create full size 16M
bs_create spare size 16M
URI=$(bs_uri full)
qemu-io -f raw -c 'write -P 0x6b 0 4M' -c flush "$URI" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "the first write"; }

# Every later test needs a pool with room, even when this one fails.
cleanup "set_full_ratios 0.95 0.9 0.85 no"
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
grep -q '^write error .*No space left on device.* after [0-2] s$' "$T/full" ||
  fail "a write to the full pool did not fail at once with ENOSPC"
pass "a write to the full pool fails at once with ENOSPC, not EIO after ceph-op-timeout"
grep -q '^overwrite ok' "$T/full" && grep -q '^trim ok' "$T/full" ||
  fail "an overwrite in place or a trim on the full pool failed"
pass "overwrites in place and trims (which free space) still succeed on the full pool"
expect_fail 1 "no space left, the Ceph pool '$CEPH_POOL' is full" \
  cli rbd create "$(bs_key more)" size 16M
pass "creating an image on the full pool is refused: $(cat "$T/err")"
cli rbd delete "$(bs_key spare)" >/dev/null || fail "deleting an image on the full pool failed"
pass "deleting an image (which frees space) on the full pool succeeds"

set_full_ratios 0.95 0.9 0.85 no || fail "the pool stayed full"
qemu-io -f raw -c 'write -P 0x2e 8M 1M' -c flush -c 'read -P 0x2e 8M 1M' -c 'read -P 0x6b 0 64k' \
  -c 'read -P 0x64 64k 64k' -c 'read -P 0x6b 128k 1M' -c 'read -P 0 2M 1M' \
  "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "no writes once the pool has room again"; }
grep -q 'verification failed' "$T/qio" &&
  { cat "$T/qio"; fail "wrong data after the pool was full"; }
pass "once the pool has room again, writes succeed without restarting the runner; no data lost"
