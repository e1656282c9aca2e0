#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that gluster failures reach nbd-cli as sentences and never take the
# runner down: a volume that does not exist, glusterd unreachable, a file
# that already exists on the volume, keys without a path, impossible
# preallocation, a malformed gluster-hosts; and two volumes in use at once.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires qemu-io
CTL="$NBDR_SRC/tests/backends/gluster-ctl"

# A malformed gluster-hosts stops the start, with the reason.
runner_refuses 1 "refusing to start: handler 'gluster': gluster-hosts: empty host in 'h1,,h2'" \
  --gluster-hosts 'h1,,h2'
# gfapi's ping timeout takes at most 1013 s: more would fail every mount
# as "glusterd unreachable".
runner_refuses 1 "handler 'gluster': gluster-timeout: '1014' is not a number of seconds from 1 to 1013" \
  --gluster-timeout 1014
runner_refuses 1 "gluster-request-timeout: '0' is not a number of seconds from 1 to 86400" \
  --gluster-request-timeout 0
pass "a malformed gluster-hosts, or a gluster-timeout or gluster-request-timeout gfapi cannot" \
  "take, stops the start, named"

# glusterd unreachable: a runner whose volfile server is a closed port.
start_runner --gluster-hosts 127.0.0.1:1
expect_fail 1 "glusterd unreachable at 127.0.0.1:1 \(" cli gluster create "$GLUSTER_VOL/x.img" size 1M
grep -q "did not answer within" "$T/err" && fail "a refused connection was blamed on a timeout"
cli --json gluster list | grep -q "$GLUSTER_VOL/x.img" && fail "a failed create was registered"
kill -0 "$RUNNER_PID" || fail "runner died"
pass "glusterd unreachable at create time: clear error, nothing registered"
stop_runner

# Several volfile servers: the first one down, the next one answers.
start_runner --gluster-hosts "127.0.0.1:1,$GLUSTER_HOSTS"
K="$GLUSTER_VOL/$TEST_ID-failover.img"
cli gluster create "$K" size 1M >/dev/null || fail "create with the first volfile server down"
cli gluster delete "$K" >/dev/null
stop_runner
pass "with gluster-hosts 127.0.0.1:1,$GLUSTER_HOSTS the volume is mounted through the second server"

bs_start_runner
expect_fail 1 "gluster volume 'nosuchvol' does not exist" cli gluster create nosuchvol/a.img size 1M
expect_fail 1 "must be VOLUME/PATH" cli gluster create "$GLUSTER_VOL" size 1M
expect_fail 1 "not enough space on volume '$GLUSTER_VOL' to preallocate" \
  cli gluster create "$(bs_key huge.img)" prealloc size 64T
pass "missing volume, key without a path and impossible preallocation are refused"

# A file made on the volume by another gfapi client (qemu-img) is never
# overwritten by create.
if qemu-img --help | grep -q 'gluster'; then
  EXISTING="$GLUSTER_VOL/$TEST_ID-existing.img"
  qemu-img create -f raw "gluster://localhost/$EXISTING" 64k >"$T/qimg" 2>&1 ||
    { cat "$T/qimg"; fail "qemu-img could not create $EXISTING"; }
  qemu-io -f raw -c 'write -P 0x77 0 64k' "gluster://localhost/$EXISTING" >"$T/qimg" 2>&1 ||
    { cat "$T/qimg"; fail "qemu-io could not write $EXISTING"; }
  expect_fail 1 "already exists on volume '$GLUSTER_VOL'" cli gluster create "$EXISTING" size 1M
  cmp <(head -c 65536 "$GLUSTER_BRICKS/$EXISTING") <(head -c 65536 /dev/zero | tr '\0' '\167') ||
    fail "create touched an existing file"
  pass "create refuses a file that already exists on the volume and leaves it untouched"
fi

# Two volumes at once, each with its own data.
bs_create one.img size 8M
K2="$GLUSTER_VOL2/$TEST_ID/two.img"
cli gluster create "$K2" size 8M >/dev/null
cleanup "cli gluster delete '$K2' >/dev/null 2>&1"
qemu-io -f raw -c 'write -P 0x01 0 8M' "$(bs_uri one.img)" >/dev/null &
W1=$!
qemu-io -f raw -c 'write -P 0x02 0 8M' "$NBD/gluster/$K2" >/dev/null &
W2=$!
wait $W1 && wait $W2 || fail "parallel writes to two volumes"
qemu-io -f raw -c 'read -P 0x01 0 8M' "$(bs_uri one.img)" | grep -q 'read 8388608' || fail "volume 1 data"
qemu-io -f raw -c 'read -P 0x02 0 8M' "$NBD/gluster/$K2" | grep -q 'read 8388608' || fail "volume 2 data"
pass "two volumes used at the same time keep their own data"
# Counted since the last runner start: the log holds every run of this test.
MOUNTS=$(awk '/ starting \(state/ {n = 0} /mounted gluster volume/ {n++} END {print n}' "$T/log/nbd-runner.log")
[ "$MOUNTS" -eq 2 ] ||
  fail "expected exactly one mount per volume"
pass "one glfs_t per volume, shared by every backstore on it"
