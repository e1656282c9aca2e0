#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# --busy-poll-us: a reader polls before sleeping only while its client keeps
# it busy. Checked with real clients: data written and read back through a
# connection that is polled for (default 30 µs) and through one that never
# is (0); a connection left idle costs the runner no CPU (a reader that
# kept polling would burn a core); an out-of-range value is refused.
source "$(dirname "$0")/functions.sh"
requires qemu-io nbdsh

# User plus system CPU of the runner so far, in clock ticks.
runner_ticks() { awk '{print $14 + $15}' "/proc/$RUNNER_PID/stat"; }

for poll in 30 0; do
  start_runner --busy-poll-us "$poll"
  cli file create "p$poll.img" size 16M >/dev/null
  qemu-io -f raw -c 'aio_write -P 0x5a 0 1M' -c 'aio_write -P 0xa5 1M 1M' -c aio_flush \
    -c 'aio_read -P 0x5a 0 1M' -c 'aio_read -P 0xa5 1M 1M' -c aio_flush \
    "$NBD/file/p$poll.img" >"$T/qemu-io.out" 2>&1 || { cat "$T/qemu-io.out"; fail "qemu-io, busy-poll-us $poll"; }
  grep -q "Pattern verification failed" "$T/qemu-io.out" && fail "data differs, busy-poll-us $poll"
  pass "data written and read back with --busy-poll-us $poll"

  # A client that sends 2000 requests back to back, then goes quiet for
  # 3 s on an open connection.
  nbdsh -u "$NBD/file/p$poll.img" -c - >"$T/idle.out" 2>&1 <<PY &
import os, time
for i in range(2000):
    h.pread(4096, (i % 256) * 4096)
open("$T/busy-done", "w").close()
time.sleep(3)
PY
  client=$!
  for _ in $(seq 300); do [ -e "$T/busy-done" ] && break; sleep 0.1; done
  [ -e "$T/busy-done" ] || { cat "$T/idle.out"; fail "nbdsh did not finish its reads"; }
  sleep 0.2
  t0=$(runner_ticks)
  sleep 2
  t1=$(runner_ticks)
  wait $client || { cat "$T/idle.out"; fail "nbdsh failed"; }
  rm -f "$T/busy-done"
  ticks=$((t1 - t0))
  hz=$(getconf CLK_TCK)
  # Polling all along would cost about 2 s (2 * hz ticks); allow a tenth.
  [ "$ticks" -le $((hz / 5)) ] || fail "an idle connection cost $ticks ticks (of $hz per s) in 2 s, busy-poll-us $poll"
  pass "an idle connection costs no CPU ($ticks ticks in 2 s), busy-poll-us $poll"
  stop_runner
done

rc=0
"$RUNNER" --busy-poll-us 5000 >"$T/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "busy-poll-us: '5000' is not a number from 0 to 1000" "$T/out" \
  || { cat "$T/out"; fail "an out-of-range --busy-poll-us"; }
pass "an out-of-range --busy-poll-us is refused"
