#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a volume whose brick stalls (SIGSTOP) holds up none of the
# others: while block-status requests wait on the frozen brick, a FUA
# write (whose fdatasync, like block status, runs on a worker thread) and a
# read on another volume are answered; the stalled requests are answered
# too once the brick answers or gluster-timeout passes.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires qemu-io python3
STALL_KEYS=d gluster_stall_setup 8
cli gluster create "$STALLED/d.img" size 16M >/dev/null || fail "create on $GLUSTER_FAULT_VOL"
cli gluster create "$OTHER/d.img" size 16M >/dev/null || fail "create on $GLUSTER_VOL2"

python3 - "$IO_PORT" "$BRICK" "gluster/$STALLED/d.img" "$NBD/gluster/$OTHER/d.img" <<'PY' || fail "a stalled volume held up another"
import os, select, signal, subprocess, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client, CMD_BLOCK_STATUS
port, brick, stalled, other = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = Client(port, timeout=60)
c.negotiate(stalled, structured=True, meta=True)
os.kill(brick, signal.SIGSTOP)
try:
    # More than a worker pool's threads: the first waits on the brick, the
    # others on it (one lookup at a time per export).
    for cookie in range(1, 7):
        c.request(CMD_BLOCK_STATUS, offset=0, length=1 << 20, cookie=cookie)
    time.sleep(1)
    t = time.monotonic()
    q = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -f -P 0x3c 0 64k",
                        "-c", "read -P 0x3c 0 64k", other],
                       capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t
    pending = not select.select([c.sock], [], [], 0)[0]
    print("FUA write and read on the other volume: exit %d after %.2f s; block status "
          "on the frozen volume %s" % (q.returncode, took,
                                       "still pending" if pending else "already answered"))
    if q.returncode != 0 or "verification failed" in q.stdout + q.stderr:
        print(q.stdout, q.stderr)
        sys.exit(1)
    if not pending:
        sys.exit(1)  # the FUA write was answered only after the stall ended
finally:
    os.kill(brick, signal.SIGCONT)
answered = [c.read_reply() for _ in range(6)]
print("stalled block status answered after the brick came back:",
      sorted((cookie, err) for cookie, err, _ in answered))
c.close()
PY
pass "a FUA write and a read on $GLUSTER_VOL2 are answered while block status waits on a frozen brick of $GLUSTER_FAULT_VOL"
kill -0 "$RUNNER_PID" || fail "the runner died"
qemu-io -f raw -c 'write -P 0x4d 0 1M' -c 'read -P 0x4d 0 1M' "$NBD/gluster/$STALLED/d.img" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "the volume does not serve I/O once its brick answers again"; }
pass "the frozen volume serves I/O again once its brick answers"
