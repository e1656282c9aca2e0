#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): a write the runner has answered survives
# the runner's death. Ten times (rbd: three): a 1 MiB write through nbdsh, and the
# moment its reply arrives (no flush) the runner is killed (kill -9); then
# a new runner reads every megabyte back. A kernel mapping that reconnects,
# or fails over to another runner, sends its next flush to another
# process, which cannot flush what the dead one still held: the runner
# answers a write only once it has left its process (rbd: no librbd
# cache, which acknowledged writes the OSDs had not got, and lost them).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdsh python3
# (Durability of the backends' settings, not memory safety: 30 s a round on rbd.)
[ "$BACKEND" = file ] || plain_build_only "up to a minute on gluster and rbd"

bs_start_runner
bs_create ack/a.img size 16M
# rbd: each new runner's first write waits for the dead one's exclusive
# lock to lapse (its watch, 30 s): three rounds there.
N=10
[ "$BACKEND" = rbd ] && N=3
for i in $(seq 0 $((N - 1))); do
  python3 - "$(bs_uri ack/a.img)" "$RUNNER_PID" "$i" "$T/p$i" <<'PY' || fail "write $i failed"
import nbd, os, signal, sys
uri, pid, i, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = os.urandom(1 << 20)
h = nbd.NBD()
h.connect_uri(uri)
h.flush()  # as file systems do: librbd's cache, for one, writes back only after a first flush
h.pwrite(data, i << 20)  # answered
os.kill(pid, signal.SIGKILL)
with open(out, "wb") as f:
    f.write(data)
PY
  wait "$RUNNER_PID" 2>/dev/null || true
  bs_start_runner
done
python3 - "$(bs_uri ack/a.img)" "$T" "$N" <<'PY' || fail "a write answered before the kill was lost"
import nbd, sys
uri, t = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.connect_uri(uri)
lost = [i for i in range(int(sys.argv[3])) if h.pread(1 << 20, i << 20) != open(f"{t}/p{i}", "rb").read()]
if lost:
    print("lost (MiB):", lost)
    sys.exit(1)
PY
pass "$BACKEND: $N writes, each answered and then the runner killed at once: every one read back"
