#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Out of threads (issue 27, reproduction 2): each connection costs a
# thread, and when one could not be made (a pids cgroup, systemd's
# TasksMax) std::thread threw and the whole daemon terminated (reproduced
# with pids.max=120 after 36 connections). In a pids cgroup the test
# makes, a flood of connections is refused once threads run out while an
# established client keeps working, and the runner lives on.
source "$(dirname "$0")/functions.sh"
requires python3 nbdinfo

# A writable pids controller: cgroup v2, or v1's pids hierarchy.
if grep -qw pids /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  ROOT_CG=/sys/fs/cgroup
elif [ -d /sys/fs/cgroup/pids ]; then
  ROOT_CG=/sys/fs/cgroup/pids
else
  skip "no pids cgroup controller here"
fi
CG="$ROOT_CG/nbdr-test-$$"
mkdir "$CG" 2>/dev/null || skip "cannot make a cgroup under $ROOT_CG (not writable)"
cleanup "rmdir '$CG' 2>/dev/null"

start_runner
cli file create a.img size 1M >/dev/null
echo "$RUNNER_PID" >"$CG/cgroup.procs" || skip "cannot move a process into $CG"
cleanup "echo $RUNNER_PID >'$ROOT_CG/cgroup.procs' 2>/dev/null"
echo $(($(cat "$CG/pids.current") + 12)) >"$CG/pids.max"
python3 "$NBDR_SRC/tests/integration/flood.py" "$IO_PORT" "$RPC_PORT" file/a.img 60 ||
  fail "the flood disturbed the established client, or nothing was refused"
kill -0 "$RUNNER_PID" || fail "the runner died when threads ran out"
grep -Eq 'refusing .*cannot start its thread' "$T/log/nbd-runner.log" ||
  fail "no log line for the connections refused for want of a thread"
pass "out of threads: new connections refused and logged, the established one served, the runner lives"

sleep 1
nbdinfo --size "$NBD/file/a.img" | grep -qx 1048576 || fail "nbdinfo after the flood"
cli file list | grep -q '^a.img' || fail "nbd-cli after the flood"
pass "after the flood, NBD and control clients are served again"
