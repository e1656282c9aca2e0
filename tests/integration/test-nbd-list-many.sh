#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# A runner serving many backstores answers listing clients (issue 27,
# reproduction 5): nbdinfo --list sends LIST and then INFO for every
# export, and the handshake used to allow 64 options, so it failed from
# 32 exports on. Options are now bounded by the handshake's bytes and its
# deadline, which each export a client lists moves by a second (this
# Debian's libnbd 1.14 leaves one option per export corked for 200 ms:
# nbdinfo --list takes about 0.2 s per export, against any server).
# nbdinfo lists 60 exports (about 12 s, past the 10 s handshake
# timeout); qemu-nbd --list and a plain LIST + INFO client list 1,000
# (qemu's client writes an option in pieces under Nagle: the runner
# acknowledges at once during the handshake, or each piece waited 40 ms).
source "$(dirname "$0")/functions.sh"
requires nbdinfo qemu-nbd python3

# registry N: saveconfig.json with N file backstores of 1 MiB.
registry() {
  mkdir -p "$T/state" "$T/files/disks"
  python3 - "$T" "$1" <<'PY'
import json, os, sys
t, n = sys.argv[1], int(sys.argv[2])
records = []
for i in range(n):
    key = "disks/d%04d.img" % i
    with open(os.path.join(t, "files", key), "wb") as f:
        f.truncate(1 << 20)
    records.append({"type": "file", "key": key, "size": 1 << 20, "block_size": 512,
                    "status": "created", "create_time": "2026-12-06T00:00:00Z"})
with open(os.path.join(t, "state", "saveconfig.json"), "w") as f:
    json.dump({"version": 1, "backstores": records}, f)
os.chmod(os.path.join(t, "state", "saveconfig.json"), 0o600)
PY
}
# check_names FILE N: FILE (one export name per line) holds exactly the N.
check_names() {
  python3 - "$1" "$2" <<'PY'
import sys
got = sorted(l.strip() for l in open(sys.argv[1]) if l.strip())
want = sorted("file/disks/d%04d.img" % i for i in range(int(sys.argv[2])))
sys.exit(0 if got == want else "listed %d, e.g. %r; wanted %d" % (len(got), got[:2], len(want)))
PY
}

registry 60
start_runner
nbdinfo --list --json "$NBD" >"$T/list.json" || fail "nbdinfo --list of 60 exports"
python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
assert all(e["export-size"] == 1 << 20 for e in d["exports"]), "a size is missing"
print("\n".join(e["export-name"] for e in d["exports"]))' "$T/list.json" >"$T/names" ||
  fail "nbdinfo --list did not give every size"
check_names "$T/names" 60 || fail "nbdinfo --list did not show the 60 exports"
pass "nbdinfo --list shows 60 exports with their sizes (LIST + 60 INFO, over 10 s)"
stop_runner

registry 1000
start_runner
grep -q "loaded 1000 backstore(s)" "$T/log/nbd-runner.log" || fail "the 1000 backstores were not loaded"
start=$(date +%s)
qemu-nbd --list --port "$IO_PORT" --bind 127.0.0.1 >"$T/qemu.out" 2>&1 ||
  { tail "$T/qemu.out"; fail "qemu-nbd --list of 1000 exports"; }
sed -n "s/^ *export: '\\(.*\\)'\$/\\1/p" "$T/qemu.out" >"$T/names"
check_names "$T/names" 1000 || fail "qemu-nbd --list did not show the 1000 exports"
echo "qemu-nbd --list of 1000 exports: $(($(date +%s) - start)) s"
pass "qemu-nbd --list shows all 1000 exports"

python3 - "$IO_PORT" >"$T/names" <<'PY' || fail "LIST and 1000 INFO in one handshake"
import os, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *
c = Client(int(sys.argv[1]))
c.greeting()
c.option(OPT_LIST)
names = [d[4:].decode() for t, d in c.replies_until_final() if t == REP_SERVER]
for name in names:
    c.option(OPT_INFO, Client.go_data(name))
    reps = c.replies_until_final()
    assert reps[-1][0] == REP_ACK, (name, reps[-1])
print("\n".join(names))
PY
check_names "$T/names" 1000 || fail "LIST did not give the 1000 exports"
pass "one handshake of LIST and 1000 INFO options is served"
