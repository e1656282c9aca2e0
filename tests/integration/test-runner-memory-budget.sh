#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The runner's memory stays within max-buffer-memory whatever the clients
# do (issue 27, reproduction 1). Before, in-flight data was bounded per
# connection (64 MiB) but not in total: 24 connections that each sent six
# 32 MiB READs and never read the replies grew the runner to 1.6 GB, and
# in a 1 GiB memory cgroup the kernel OOM-killed it. Now, in a 640 MiB
# memory cgroup the test makes, with --max-buffer-memory 128M, the same
# load leaves the runner alive and small, the clients that read nothing
# are dropped at --send-timeout, and others are served afterwards.
source "$(dirname "$0")/functions.sh"
requires python3 nbdinfo

plain_build_only "AddressSanitizer's shadow memory and quarantine make RSS meaningless"
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  ROOT_CG=/sys/fs/cgroup LIMIT_FILE=memory.max
elif [ -d /sys/fs/cgroup/memory ]; then
  ROOT_CG=/sys/fs/cgroup/memory LIMIT_FILE=memory.limit_in_bytes
else
  skip "no memory cgroup controller here"
fi
CG="$ROOT_CG/nbdr-test-$$"
mkdir "$CG" 2>/dev/null || skip "cannot make a cgroup under $ROOT_CG (not writable)"
cleanup "rmdir '$CG' 2>/dev/null"

start_runner --max-buffer-memory 128M --send-timeout 5
cli file create big.img size 64M >/dev/null
echo $((640 << 20)) >"$CG/$LIMIT_FILE" || skip "cannot set $LIMIT_FILE"
echo "$RUNNER_PID" >"$CG/cgroup.procs" || skip "cannot move a process into $CG"
cleanup "echo $RUNNER_PID >'$ROOT_CG/cgroup.procs' 2>/dev/null"

python3 - "$IO_PORT" "$RUNNER_PID" <<'PY' >"$T/greedy.out" || { cat "$T/greedy.out"; fail "the greedy clients' run"; }
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *
port, pid = int(sys.argv[1]), int(sys.argv[2])
def rss_mib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
clients = []
for i in range(24):
    c = Client(port)
    c.negotiate("file/big.img")
    for j in range(6):
        c.request(CMD_READ, 0, 32 << 20, cookie=j)  # and never read the replies
    clients.append(c)
peak = 0
for _ in range(30):  # 6 s: past the send timeout
    peak = max(peak, rss_mib())
    time.sleep(0.2)
os.kill(pid, 0)
print("peak RSS %d MiB with 24 x 6 x 32 MiB reads unread" % peak)
for c in clients:
    c.close()
sys.exit(0 if peak < 400 else "RSS reached %d MiB, past 128M of buffers and the fixed overhead" % peak)
PY
cat "$T/greedy.out"
kill -0 "$RUNNER_PID" || fail "the runner died (OOM?)"
grep -q "did not take a reply within 5 s (send-timeout); dropping the connection" "$T/log/nbd-runner.log" ||
  fail "the clients that read nothing were not dropped at the send timeout"
pass "24 greedy clients: the runner lives within its budget; those that read nothing are dropped"

nbdinfo --size "$NBD/file/big.img" | grep -qx $((64 << 20)) || fail "nbdinfo afterwards"
python3 - "$IO_PORT" <<'PY' || fail "a 32 MiB read afterwards"
import os, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *
c = Client(int(sys.argv[1]))
c.negotiate("file/big.img")
c.request(CMD_READ, 0, 32 << 20, cookie=9)
assert c.read_reply(32 << 20)[:2] == (9, 0)
PY
pass "afterwards clients are served, 32 MiB reads included"
