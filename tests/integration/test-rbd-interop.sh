#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the rbd handler against the shared real Ceph cluster with Ceph's own
# tools: the rbd CLI sees images nbd-cli made (size, default features,
# bytes), nbd-cli serves images `rbd` made (import), namespaces work, and
# every failure is a sentence: missing pool, missing namespace, image
# exists, prealloc, wrong import size, cluster unreachable; an image
# shrunk by rbd under the runner fails I/O past its end with EIO.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires qemu-io nbdcopy rbd sha256sum
RBD() { rbd -c "$CEPH_CONF" "$@"; }

# Cluster unreachable: a configuration whose monitor nobody serves.
sed 's/^mon host = .*/mon host = 127.0.0.1:1/' "$CEPH_CONF" >"$T/dead.conf"
start_runner --ceph-conf "$T/dead.conf" --ceph-op-timeout 3
SECONDS=0
expect_fail 1 "Ceph cluster unreachable" cli rbd create "$CEPH_POOL/$TEST_ID-x" size 1M
[ $SECONDS -le 20 ] || fail "unreachable cluster took $SECONDS s to report (op timeout 3 s)"
kill -0 "$RUNNER_PID" || fail "runner died"
stop_runner
pass "Ceph cluster unreachable: a sentence after ${SECONDS} s, runner unharmed"

# A client that must authenticate but has no keyring: said so, not
# "unreachable".
sed 's/^auth client required = none/auth client required = cephx/' "$CEPH_CONF" >"$T/cephx.conf"
start_runner --ceph-conf "$T/cephx.conf" --ceph-keyring "$T/no-such-keyring" --ceph-op-timeout 3
expect_fail 1 "no keyring with a key for Ceph client 'admin' \(ceph-keyring $T/no-such-keyring\)" \
  cli rbd create "$CEPH_POOL/$TEST_ID-x" size 1M
stop_runner
pass "a missing keyring is named as such"

bs_start_runner
A="$CEPH_POOL/$TEST_ID-a"
cli rbd create "$A" size 32M >/dev/null
RBD ls "$CEPH_POOL" | grep -qx "$TEST_ID-a" || fail "rbd ls does not show $A"
RBD info "$A" >"$T/info"
grep -q 'size 32 MiB' "$T/info" || { cat "$T/info"; fail "rbd info size"; }
grep -q 'features: layering, exclusive-lock, object-map, fast-diff, deep-flatten' "$T/info" ||
  { cat "$T/info"; fail "default features"; }
qemu-io -f raw -c 'write -P 0x5c 0 4M' -c 'write -P 0xc5 20M 1M' "$NBD/rbd/$A" >/dev/null
truncate -s 32M "$T/ref"
qemu-io -f raw -c 'write -P 0x5c 0 4M' -c 'write -P 0xc5 20M 1M' "$T/ref" >/dev/null
RBD export "$A" "$T/exported" >/dev/null 2>&1
cmp "$T/ref" "$T/exported" || fail "rbd export differs from what the NBD client wrote"
pass "rbd sees the image nbd-cli made: size, default features and the bytes written"

B="$CEPH_POOL/$TEST_ID-b"
head -c 24M /dev/urandom >"$T/src"
RBD import "$T/src" "$B" >/dev/null 2>&1
expect_fail 1 "already exists" cli rbd create "$B" size 24M
expect_fail 1 "holds 24 MiB, not 8 MiB" cli rbd import "$B" size 8M
cli rbd import "$B" >/dev/null
cli --json rbd info "$B" | grep -q '"size": 25165824' || fail "imported size"
nbdcopy "$NBD/rbd/$B" "$T/back"
[ "$(sha256sum <"$T/src")" = "$(sha256sum <"$T/back")" ] || fail "served image differs from rbd import"
pass "nbd-cli serves an image made by rbd, untouched by a refused create"
expect_fail 1 "rbd image $CEPH_POOL/$TEST_ID-none does not exist" cli rbd import "$CEPH_POOL/$TEST_ID-none"

cli rbd delete "$B" >/dev/null
RBD ls "$CEPH_POOL" | grep -qx "$TEST_ID-b" && fail "delete left the image in the pool"
cli rbd delete "$A" >/dev/null
pass "delete removes the image from the pool"

# An image shrunk under the runner (rbd resize --allow-shrink while it is
# served): reads and writes past or across its new end fail with EIO (librbd
# clips a write across it and calls it done), and a read across it never
# returns a buffer whose tail is another request's bytes.
S="$CEPH_POOL/$TEST_ID-s"
cli rbd create "$S" size 16M >/dev/null
timeout 60 nbdsh -u "$NBD/rbd/$S" -c "
import errno, subprocess, time
h.pwrite(b'\x11' * (1 << 20), 12 << 20)  # a buffer of 0x11 goes back to the pool
h.flush()
resize = ['rbd', '-c', '$CEPH_CONF', 'resize', '--allow-shrink', '--size', '8M', '$S']
assert subprocess.run(resize, capture_output=True).returncode == 0, 'rbd resize failed'
time.sleep(2)  # the runner's librbd hears of the new size through its watch
tries = (('read-across', lambda: h.pread(1 << 20, (8 << 20) - 4096)),
         ('read-beyond', lambda: h.pread(4096, 12 << 20)),
         ('write-beyond', lambda: h.pwrite(b'\x22' * 4096, 12 << 20)),
         ('write-across', lambda: h.pwrite(b'\x33' * 8192, (8 << 20) - 4096)))
for what, io in tries:
    try:
        io()
        print(what, 'succeeded')
    except nbd.Error as e:
        print(what, 'EIO' if e.errnum == errno.EIO else 'failed otherwise: %s' % e)
" >"$T/shrunk" 2>&1 || true
[ "$(grep -c ' EIO$' "$T/shrunk")" = 4 ] || { cat "$T/shrunk"; fail "I/O past a shrunk image's end"; }
grep -q "beyond the image's end (it shrank since the runner opened it)" "$T/log/nbd-runner.log" ||
  fail "no log line for I/O past the shrunk end"
cli rbd delete "$S" >/dev/null
pass "I/O past the end of an image shrunk under the runner fails with EIO, logged"

RBD namespace create "$CEPH_POOL/$TEST_ID-ns"
cli ceph create "$CEPH_POOL/$TEST_ID-ns/img" size 8M >/dev/null
RBD ls "$CEPH_POOL/$TEST_ID-ns" | grep -qx img || fail "image not in its namespace"
qemu-io -f raw -c 'write -P 7 0 1M' -c 'read -P 7 0 1M' "$NBD/rbd/$CEPH_POOL/$TEST_ID-ns/img" |
  grep -q 'read 1048576' || fail "I/O in a namespace"
cli rbd delete "$CEPH_POOL/$TEST_ID-ns/img" >/dev/null
RBD namespace remove "$CEPH_POOL/$TEST_ID-ns"
pass "POOL/NAMESPACE/IMAGE keys (and the ceph alias) work"

expect_fail 1 "Ceph pool 'nosuchpool' does not exist" cli rbd create nosuchpool/img size 1M
expect_fail 1 "rbd namespace 'nons' does not exist in pool '$CEPH_POOL'" cli rbd create "$CEPH_POOL/nons/img" size 1M
expect_fail 1 "thin-provisioned; prealloc is not supported" cli rbd create "$CEPH_POOL/$TEST_ID-p" prealloc size 1M
expect_fail 1 "must be POOL/IMAGE" cli rbd create "$CEPH_POOL/a/b/c" size 1M
cli --json rbd list | grep -q "$TEST_ID" && fail "a failed create was registered"
pass "missing pool, missing namespace, prealloc and a bad key are refused with sentences"
