#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that the runner's gfapi mount sends requests down in the submitting
# thread: the test volumes load client-side io-threads (gluster's default
# client-io-threads = on), yet while fio writes through the runner its
# process has no glfs_iotwr thread, and the data reads back.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"
CTL="$NBDR_SRC/tests/backends/gluster-ctl"

bash "$CTL" gluster volume get "$GLUSTER_VOL" performance.client-io-threads 2>/dev/null |
  grep -q 'client-io-threads *on' || skip "volume $GLUSTER_VOL does not load client io-threads"

bs_start_runner
bs_create iot.img size 64M
fio --name=iot --ioengine=nbd --uri="$(bs_uri iot.img)" --rw=randwrite --bs=4k --iodepth=32 \
  --size=64M --time_based --runtime=4 --verify=crc32c --verify_backlog=256 --verify_state_save=0 \
  --output="$T/fio.out" >/dev/null 2>&1 &
FIO=$!
cleanup "kill $FIO 2>/dev/null"
sleep 2
kill -0 "$FIO" 2>/dev/null || { cat "$T/fio.out"; fail "fio ended before the check"; }
threads=$(cat /proc/"$RUNNER_PID"/task/*/comm)
iotwr=$(grep -c '^glfs_iotwr' <<<"$threads" || true)
grep -q '^glfs_epoll' <<<"$threads" || fail "no gfapi threads in the runner: is the volume mounted?"
wait "$FIO" || { cat "$T/fio.out"; fail "fio verify through the runner failed"; }
[ "$iotwr" -eq 0 ] || fail "$iotwr client io-threads (glfs_iotwr) serve the runner's mount"
pass "fio verify with 32 requests in flight: no client io-thread in the runner, data verified"
