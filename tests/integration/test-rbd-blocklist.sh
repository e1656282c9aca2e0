#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test what a runner does when the Ceph cluster blocklists its client (as
# it does to the old owner when another client breaks an image's exclusive
# lock): I/O on the image open at that moment fails with EIO, the runner
# stays up, and every new client (on that image or any other) is served
# through a new cluster connection, without restarting the runner.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=rbd
source "$(dirname "$0")/backstore.sh"
requires qemu-io nbdsh rbd ceph
export CEPH_CONF  # for the rbd and ceph tools

bs_start_runner --ceph-op-timeout 5
bs_create bl/a size 16M
bs_create bl/b size 16M
qemu-io -f raw -c 'write -P 0x3c 0 1M' "$(bs_uri bl/a)" >/dev/null || fail "write to a"

# A client holds b open (and its exclusive lock) while the runner's
# cluster connection is blocklisted.
nbdsh -u "$(bs_uri bl/b)" -c "
import os, time
h.pwrite(b'x' * 4096, 0)
open('$T/ready', 'w').write('1')
while not os.path.exists('$T/go'):
    time.sleep(0.1)
try:
    h.pread(4096, 0)
    print('read ok')
except nbd.Error as e:
    print('read failed:', e)
" >"$T/holder.out" 2>&1 &
HOLDER=$!
cleanup "kill $HOLDER 2>/dev/null"
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.1; done
[ -f "$T/ready" ] || { cat "$T/holder.out"; fail "the holder never wrote"; }

ADDR=$(rbd status "$(bs_key bl/b)" | sed -n 's/.*watcher=\([^ ]*\).*/\1/p' | head -1)
[ -n "$ADDR" ] || { rbd status "$(bs_key bl/b)"; fail "no watcher on the image"; }
ceph osd blocklist add "$ADDR" >/dev/null 2>&1 || fail "ceph osd blocklist add $ADDR"
cleanup "ceph osd blocklist rm '$ADDR' >/dev/null 2>&1"
touch "$T/go"
wait $HOLDER
grep -q "read failed" "$T/holder.out" || { cat "$T/holder.out"; fail "I/O after the blocklist did not fail"; }
grep -q "blocklisted this runner's connection" "$T/log/nbd-runner.log" || fail "no log line about the blocklist"
pass "after the cluster blocklisted the runner, I/O on the open image fails with an error"

kill -0 "$RUNNER_PID" || fail "the runner died"
qemu-io -f raw -c 'read -P 0x3c 0 1M' "$(bs_uri bl/a)" >"$T/qio" 2>&1 && ! grep -q failed "$T/qio" \
  || { cat "$T/qio"; fail "a new client of another image was not served"; }
qemu-io -f raw -c 'read -P 0x78 0 4K' -c 'write -P 0x5a 4K 4K' -c 'flush' "$(bs_uri bl/b)" >"$T/qio" 2>&1 \
  && ! grep -q failed "$T/qio" || { cat "$T/qio"; fail "the blocklisted image was not served again"; }
cli rbd create "$(bs_key bl/c)" size 1M >/dev/null || fail "create after the blocklist"
cli rbd delete "$(bs_key bl/c)" >/dev/null || fail "delete after the blocklist"
grep -q "connected again" "$T/log/nbd-runner.log" || fail "no log line about the new connection"
pass "new clients, creates and deletes are served through a new cluster connection"
