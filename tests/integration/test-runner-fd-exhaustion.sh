#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Out of file descriptors (issue 27): with RLIMIT_NOFILE at 64, a flood of
# NBD and control connections is refused once descriptors run out (taken
# off the queue and closed with a spare descriptor, not left waiting,
# and logged at most once a second), while an established client keeps
# reading and writing; once the flood ends, new clients are served.
source "$(dirname "$0")/functions.sh"
requires prlimit python3 nbdinfo

start_runner
cli file create a.img size 1M >/dev/null
prlimit --pid "$RUNNER_PID" --nofile=64:64 || fail "prlimit"
python3 "$NBDR_SRC/tests/integration/flood.py" "$IO_PORT" "$RPC_PORT" file/a.img 120 ||
  fail "the flood disturbed the established client, or nothing was refused"
kill -0 "$RUNNER_PID" || fail "the runner died"
grep -q '\[nbd\] refusing .*out of file descriptors' "$T/log/nbd-runner.log" ||
  fail "no log line for the refused connections"
lines=$(grep -c 'refusing .*out of file descriptors' "$T/log/nbd-runner.log")
[ "$lines" -le 10 ] || fail "$lines log lines for one flood: not throttled"
pass "out of descriptors: new connections refused (logged $lines times), the established one served"

sleep 1
nbdinfo --size "$NBD/file/a.img" | grep -qx 1048576 || fail "nbdinfo after the flood"
cli file list | grep -q '^a.img' || fail "nbd-cli after the flood"
pass "after the flood, NBD and control clients are served again"
