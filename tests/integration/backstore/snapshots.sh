#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): nbd-cli snapshot (issue 29). Before, a
# backstore had no snapshots at all (asked for in gluster-block #42 and
# gluster/nbd-runner #23). Now: write A, snapshot s1, write B; the
# read-only export KEY@s1 reads A (qemu-img compare) and refuses writes;
# list shows s1; a snapshot taken while a client keeps many writes in
# flight holds every write whole or not at all, and the client sees no
# error; a copy does not hold writes while it runs, and holds those
# written meanwhile; a rollback stopped partway by a crash is not served
# until a rollback completes; rollback is refused while a client has the backstore open and
# works once none has (the backstore reads A again); delete is refused
# while s1 is served, and so is deleting a backstore that has snapshots;
# wrong names and unknown snapshots get their messages. On file without
# reflinks, and on gluster, a snapshot is a copy, refused unless 'copy'
# is said; rbd's are RBD snapshots (rbd snap ls agrees).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdsh qemu-io qemu-img python3 fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"

bs_start_runner
bs_create sn/a.img size 8M
KEY=$(bs_key sn/a.img)
URI=$(bs_uri sn/a.img)
HOSTPORT=${NBD#nbd://}
# nbd_opts EXPORT: qemu's image options for an export of this runner.
nbd_opts() { echo "driver=nbd,host=${HOSTPORT%:*},port=${HOSTPORT#*:},export=$1"; }
EXPORT="$BACKEND/$KEY"
COPY=()

qemu-io -f raw -c "write -P 0xa1 0 4M" -c "write -P 0xa2 6M 1M" "$URI" >/dev/null ||
  fail "writing pattern A failed"
# A: what the backstore holds now, byte for byte.
python3 -c '
import sys
d = bytearray(8 << 20)
d[0:4 << 20] = b"\xa1" * (4 << 20)
d[6 << 20:7 << 20] = b"\xa2" * (1 << 20)
open(sys.argv[1], "wb").write(d)' "$T/a.raw"

# file on a file system without reflinks ($T is on ext4 or tmpfs here) and
# gluster (no per-file snapshots) make a copy, only when told to.
case "$BACKEND" in
  file | gluster)
    expect_fail 1 "say 'copy'" cli "$BACKEND" snapshot create "$KEY" s1
    if [ "$BACKEND" = file ]; then left="$T/files/$KEY@s1"; else left="$GLUSTER_BRICKS/${KEY%%/*}/${KEY#*/}@s1"; fi
    [ ! -e "$left" ] || fail "a refused snapshot left $left behind"
    COPY=(copy)
    pass "$BACKEND: $(cat "$T/err")"
    ;;
esac
cli "$BACKEND" snapshot create "$KEY" s1 "${COPY[@]}" >"$T/out" || fail "snapshot create failed"
grep -q "snapshot $EXPORT@s1 taken" "$T/out" || { cat "$T/out"; fail "create said no more"; }
qemu-io -f raw -c "write -P 0xb2 0 8M" "$URI" >/dev/null || fail "writing pattern B failed"

qemu-img compare -q --image-opts "$(nbd_opts "$EXPORT@s1")" "driver=file,filename=$T/a.raw" ||
  fail "$EXPORT@s1 does not read what the backstore held when it was taken"
[ "$(nbdinfo --size "$URI@s1")" = 8388608 ] || fail "nbdinfo: $URI@s1 is not 8 MiB"
nbdsh -u "$URI@s1" -c '
assert h.is_read_only(), "the snapshot export is writable"
h.set_strict_mode(0)
try:
    h.pwrite(b"x" * 512, 0)
    raise SystemExit("a write to the snapshot was accepted")
except nbd.Error as e:
    assert "not permitted" in e.string or "read-only" in e.string, e.string' || fail "the snapshot export took a write"
qemu-io -f raw -c "read -P 0xb2 0 8M" "$URI" >/dev/null || fail "the backstore lost pattern B"
pass "$BACKEND: $EXPORT@s1 reads A (qemu-img compare) and refuses writes; the backstore reads B"

cli --json "$BACKEND" snapshot list "$KEY" >"$T/list.json" || fail "snapshot list failed"
python3 - "$T/list.json" "$EXPORT@s1" <<'PY' || fail "snapshot list is wrong: $(cat "$T/list.json")"
import json, sys
l = json.load(open(sys.argv[1]))["snapshots"]
assert [s["name"] for s in l] == ["s1"], l
assert l[0]["size"] == 8 << 20 and l[0]["export"] == sys.argv[2], l
PY
cli "$BACKEND" snapshot list "$KEY" | grep -q "^s1 .*8 MiB" || fail "the text list lacks s1"
if [ "$BACKEND" = rbd ]; then
  rbd -c "$CEPH_CONF" snap ls --format json "$KEY" | python3 -c '
import json, sys
assert [s["name"] for s in json.load(sys.stdin)] == ["s1"]' || fail "rbd snap ls does not show s1"
  pass "rbd: rbd snap ls shows s1 too"
fi
pass "$BACKEND: snapshot list shows s1, 8 MiB, and its export"

# Under load: one client keeps 8 writes of 4 MiB in flight on a 32 MiB
# backstore, each stamped with its sequence number in every 8 bytes; each
# of four snapshots taken meanwhile must hold every write whole or not at
# all, and no write may fail. (Without the quiescing about one snapshot in
# three holds a torn write.)
bs_create sn/load.img size 32M
LOAD_KEY=$(bs_key sn/load.img)
python3 - "$(bs_uri sn/load.img)" "$CLI" "$BACKEND" "$LOAD_KEY" "${COPY[@]}" host "$RPC" <<'PY' || fail "a snapshot under load is not consistent"
import nbd, struct, subprocess, sys, threading, time
uri, cli, backend, key, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
h = nbd.NBD()
h.connect_uri(uri)
BLOCK, SLOTS = 4 << 20, 8
seq, done = [0], threading.Event()
def writer():
    inflight = []
    while not done.is_set() or inflight:
        while not done.is_set() and len(inflight) < 8:
            seq[0] += 1
            buf = nbd.Buffer.from_bytearray(bytearray(struct.pack("<Q", seq[0]) * (BLOCK // 8)))
            inflight.append((h.aio_pwrite(buf, (seq[0] % SLOTS) * BLOCK), buf))
        h.poll(1)
        inflight = [(c, b) for c, b in inflight if not h.aio_command_completed(c)]
t = threading.Thread(target=writer)
outs = []
try:
    t.start()
    for i in range(4):
        time.sleep(0.3)
        outs.append(subprocess.run([cli, backend, "snapshot", "create", key, "busy%d" % i] + extra,
                                   capture_output=True, text=True))
    time.sleep(0.3)
finally:
    done.set()
    t.join()
for out in outs:
    print(out.stdout.strip(), out.stderr.strip())
    assert out.returncode == 0, out.stderr
assert seq[0] > 20, seq[0]
for i in range(4):
    s = nbd.NBD()
    s.connect_uri(uri + "@busy%d" % i)
    torn = [slot for slot in range(SLOTS)
            if len(set(struct.unpack("<%dQ" % (BLOCK // 8), s.pread(BLOCK, slot * BLOCK)))) != 1]
    assert not torn, "busy%d: %d of %d blocks hold parts of two writes" % (i, len(torn), SLOTS)
    s.shutdown()
    subprocess.run([cli, backend, "snapshot", "delete", key, "busy%d" % i] + extra[-2:], check=True)
print("%d writes, four snapshots consistent" % seq[0])
PY
grep -q "snapshot busy0 taken .*writes were held" "$T/log/nbd-runner.log" ||
  fail "the runner did not log how long writes were held"
pass "$BACKEND: four snapshots under 8 writes in flight hold each whole; the client saw no error ($(grep -o 'writes were held [0-9.]* ms' "$T/log/nbd-runner.log" | tr '\n' ' '))"

# Under fio: a verify job (random 4 KiB writes, each block stamped with
# its offset and md5, 16 in flight, then every block read back and
# checked) runs while two snapshots are taken. fio sees no error, and
# each snapshot is consistent: every 4 KiB block is untouched (zeroes) or
# one whole fio block (its header names its own offset, its md5 matches).
bs_create sn/fio.img size 16M
FIO_KEY=$(bs_key sn/fio.img)
cat >"$T/snap.fio" <<FIO
[snap]
ioengine=nbd
uri=$(bs_uri sn/fio.img)
rw=randwrite
bs=4k
iodepth=16
size=16M
rate_iops=1000
verify=md5
verify_fatal=1
verify_state_save=0
do_verify=1
FIO
fio --output="$T/snap-fio.out" "$T/snap.fio" &
fio_pid=$!
sleep 1
cli "$BACKEND" snapshot create "$FIO_KEY" f1 "${COPY[@]}" >/dev/null || fail "snapshot f1 under fio failed"
sleep 1
cli "$BACKEND" snapshot create "$FIO_KEY" f2 "${COPY[@]}" >/dev/null || fail "snapshot f2 under fio failed"
wait "$fio_pid" || { cat "$T/snap-fio.out"; fail "fio failed while snapshots were taken"; }
grep -q 'err= 0' "$T/snap-fio.out" || { cat "$T/snap-fio.out"; fail "fio reported errors"; }
python3 - "$(bs_uri sn/fio.img)" <<'PY' || fail "a snapshot taken under fio is not consistent"
import hashlib, nbd, struct, sys
counts = []
for name in ("f1", "f2"):
    h = nbd.NBD()
    h.connect_uri(sys.argv[1] + "@" + name)
    written = 0
    for off in range(0, 16 << 20, 1 << 20):
        chunk = h.pread(1 << 20, off)
        for i in range(0, 1 << 20, 4096):
            b = chunk[i:i + 4096]
            if b == bytes(4096):
                continue
            magic, _, length, _, where = struct.unpack_from("<HHIQQ", b, 0)
            assert magic == 0xacca and length == 4096 and where == off + i, \
                "%s: the block at %d is no whole fio block" % (name, off + i)
            assert hashlib.md5(b[56:]).digest() == b[40:56], "%s: the block at %d is torn" % (name, off + i)
            written += 1
    h.shutdown()
    counts.append(written)
assert 0 < counts[0] < 4096 and counts[0] <= counts[1], counts
print("snapshots f1, f2 hold %d and %d whole fio blocks, no torn one" % tuple(counts))
PY
cli "$BACKEND" snapshot delete "$FIO_KEY" f1 >/dev/null && cli "$BACKEND" snapshot delete "$FIO_KEY" f2 >/dev/null ||
  fail "deleting the snapshots taken under fio failed"
pass "$BACKEND: two snapshots under a running fio verify job: fio saw no error, each snapshot holds whole fio blocks only"

# A copy does not hold writes while it runs (held that long, a kernel
# client's writes would time out), and the snapshot is still one instant.
# While a copy-made snapshot of 256 MiB runs (its progress logged), a
# client writes Y at the start (copied already) and then X at the end
# (not yet copied): both writes complete while the copy still runs, and
# the snapshot holds both (what was written meanwhile is copied again,
# the last time with writes held). Before, both writes waited for the
# whole copy. A client that opens the snapshot meanwhile waits until it
# is complete.
if [ ${#COPY[@]} -gt 0 ]; then
  bs_create sn/big.img size 256M
  BIG_URI=$(bs_uri sn/big.img)
  qemu-io -f raw -c "write -P 0x11 0 256M" "$BIG_URI" >/dev/null || fail "filling sn/big.img failed"
  python3 - "$BIG_URI" "$T/log/nbd-runner.log" "$CLI" "$BACKEND" "$(bs_key sn/big.img)" host "$RPC" <<'PY' || fail "a copy-made snapshot held writes, or missed one written during the copy"
import nbd, subprocess, sys, threading, time
uri, log, cli, backend, key, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
END = (256 << 20) - 65536
h = nbd.NBD()
h.connect_uri(uri)
start = open(log).read().count("copying: ")
snap = subprocess.Popen([cli, backend, "snapshot", "create", key, "instant", "copy"] + extra)
while open(log).read().count("copying: ") == start:
    assert snap.poll() is None, "the snapshot ended before it logged its progress"
    time.sleep(0.005)
# A client that opens the snapshot now waits until it is complete: never
# a partial copy (whose unwritten end would read as zeroes).
early = {}
def open_early():
    e = nbd.NBD()
    e.connect_uri(uri + "@instant")
    early["tail"] = e.pread(65536, END)
    e.shutdown()
opener = threading.Thread(target=open_early)
opener.start()
time.sleep(0.05)
h.pwrite(b"Y" * 65536, 0)
h.pwrite(b"X" * 65536, END)
assert snap.poll() is None, "the writes waited until the copy was done"
assert snap.wait() == 0
opener.join()
assert early.get("tail") == b"X" * 65536, "a client opened the snapshot before it was complete"
s = nbd.NBD()
s.connect_uri(uri + "@instant")
y, x = s.pread(65536, 0), s.pread(65536, END)
assert y == b"Y" * 65536, "Y, written during the copy where it was copied already, is missing"
assert x == b"X" * 65536, "X, written during the copy, is missing"
assert s.pread(65536, 65536) == b"\x11" * 65536, "the data around the writes changed"
s.shutdown()
subprocess.run([cli, backend, "snapshot", "delete", key, "instant"] + extra, check=True)
PY
  grep -q "snapshot instant copied while writes went on" "$T/log/nbd-runner.log" ||
    fail "the runner did not log the copy's rounds"
  pass "$BACKEND: writes during a copy-made snapshot complete while it runs, and it holds them ($(grep -o 'copied again: .* with writes held' "$T/log/nbd-runner.log" | tail -1))"

  # A rollback that stops partway (here the runner is killed during its
  # copy) leaves the backstore holding parts of both: after a restart it
  # is not served, with a message saying how to complete it, and a
  # rollback again brings the snapshot's data back whole. (Before, the
  # mixed disk was served as if nothing had happened.)
  BIG_KEY=$(bs_key sn/big.img)
  cli "$BACKEND" snapshot create "$BIG_KEY" base copy >/dev/null || fail "snapshot base failed"
  qemu-io -f raw -c "write -P 0x33 0 8M" "$BIG_URI" >/dev/null || fail "writing over sn/big.img failed"
  start=$(grep -c "copying: " "$T/log/nbd-runner.log")
  "$CLI" "$BACKEND" snapshot rollback "$BIG_KEY" base force host "$RPC" >"$T/rollback.out" 2>&1 &
  rollback_pid=$!
  for _ in $(seq 3000); do
    [ "$(grep -c "copying: " "$T/log/nbd-runner.log")" -gt "$start" ] && break
    sleep 0.01
  done
  [ "$(grep -c "copying: " "$T/log/nbd-runner.log")" -gt "$start" ] || fail "the rollback logged no progress"
  kill_now
  if wait "$rollback_pid"; then fail "the rollback completed although its runner was killed"; fi
  bs_start_runner
  URI=$(bs_uri sn/a.img)
  BIG_URI=$(bs_uri sn/big.img)
  HOSTPORT=${NBD#nbd://}
  if nbdinfo --size "$BIG_URI" >"$T/nbdinfo.out" 2>&1; then fail "a backstore whose rollback stopped partway is served"; fi
  grep -q "rollback to snapshot base did not complete" "$T/log/nbd-runner.log" ||
    fail "the runner did not say why it refused to serve sn/big.img"
  cli "$BACKEND" snapshot rollback "$BIG_KEY" base >/dev/null || fail "the second rollback failed"
  qemu-io -f raw -c "read -P 0x59 0 64k" -c "read -P 0x11 64k 8M" "$BIG_URI" >"$T/qio" &&
    ! grep -q "verification failed" "$T/qio" || { cat "$T/qio"; fail "after the second rollback sn/big.img does not read the snapshot"; }
  cli "$BACKEND" snapshot delete "$BIG_KEY" base >/dev/null || fail "deleting snapshot base failed"
  pass "$BACKEND: a rollback stopped partway by a crash is not served after the restart; a rollback again completes it"
fi

# Rollback: refused while a client has the backstore open.
qemu-img convert -f raw -O raw "$URI" "$T/before.raw" || fail "reading the backstore failed"
nbdsh -u "$URI" -c "
import subprocess
out = subprocess.run(['$CLI', '$BACKEND', 'snapshot', 'rollback', '$KEY', 's1', 'host', '$RPC'],
                     capture_output=True, text=True)
assert out.returncode == 1, out
assert 'not rolling' in out.stderr and 'NBD clients have it open' in out.stderr, out.stderr
print(out.stderr.strip())" || fail "a rollback under an open client was not refused as it should be"
qemu-img compare -q --image-opts "$(nbd_opts "$EXPORT")" "driver=file,filename=$T/before.raw" ||
  fail "the refused rollback changed the data"
cli "$BACKEND" snapshot rollback "$KEY" s1 >/dev/null || fail "rollback failed"
qemu-img compare -q --image-opts "$(nbd_opts "$EXPORT")" "driver=file,filename=$T/a.raw" ||
  fail "after the rollback the backstore does not read A"
pass "$BACKEND: rollback is refused while a client has the backstore open, then brings A back"

# Delete: refused while the snapshot is served, and for a backstore that
# has snapshots.
nbdsh -u "$URI@s1" -c "
import subprocess
out = subprocess.run(['$CLI', '$BACKEND', 'snapshot', 'delete', '$KEY', 's1', 'host', '$RPC'],
                     capture_output=True, text=True)
assert out.returncode == 1 and 'not deleting snapshot s1' in out.stderr, out
print(out.stderr.strip())
# Nor the backstore (nor forgotten): its snapshot is in use.
for verb in ('delete', 'forget'):
    out = subprocess.run(['$CLI', '$BACKEND', verb, '$KEY', 'host', '$RPC'], capture_output=True, text=True)
    assert out.returncode == 1 and '@s1 is in use' in out.stderr, out
    print(out.stderr.strip())" || fail "deleting a served snapshot, or its backstore, was not refused"
expect_fail 1 "snapshot" cli "$BACKEND" delete "$KEY"
cli "$BACKEND" snapshot delete "$KEY" s1 >/dev/null || fail "snapshot delete failed"
cli "$BACKEND" snapshot list "$KEY" | grep -q "no snapshots" || fail "deleted snapshots are still listed"
if nbdinfo --size "$URI@s1" >/dev/null 2>&1; then fail "a deleted snapshot is still served"; fi
pass "$BACKEND: a served snapshot and a backstore with snapshots are not deleted; deleted ones are gone"

# A registered backstore KEY@NAME is no snapshot of KEY: not listed, and
# neither deleted nor rolled back to as one. (rbd image names take no '@'.)
if [ "$BACKEND" != rbd ]; then
  bs_create "sn/a.img@reg" size 1M
  expect_fail 1 "is registered" cli "$BACKEND" snapshot delete "$KEY" reg
  expect_fail 1 "is registered" cli "$BACKEND" snapshot rollback "$KEY" reg
  expect_fail 1 "is registered" cli "$BACKEND" snapshot create "$KEY" reg "${COPY[@]}"
  if cli "$BACKEND" snapshot list "$KEY" | grep -q "^reg "; then fail "a registered backstore is listed as a snapshot"; fi
  cli "$BACKEND" delete "$(bs_key "sn/a.img@reg")" >/dev/null || fail "deleting backstore sn/a.img@reg failed"
  pass "$BACKEND: a registered backstore KEY@NAME is not taken for a snapshot"
fi

# Wrong names, unknown snapshots, taken names.
expect_fail 2 "snapshot name" cli "$BACKEND" snapshot create "$KEY" "bad/name"
expect_fail 2 "snapshot name" cli "$BACKEND" snapshot create "$KEY" ".hidden"
expect_fail 1 "no snapshot named nope" cli "$BACKEND" snapshot rollback "$KEY" nope
expect_fail 1 "no snapshot named nope" cli "$BACKEND" snapshot delete "$KEY" nope
expect_fail 1 "does not exist" cli "$BACKEND" snapshot create "$(bs_key sn/missing.img)" s2 "${COPY[@]}"
cli "$BACKEND" snapshot create "$KEY" s2 "${COPY[@]}" >/dev/null || fail "snapshot s2 failed"
expect_fail 1 "already has a snapshot named s2" cli "$BACKEND" snapshot create "$KEY" s2 "${COPY[@]}"
cli "$BACKEND" snapshot delete "$KEY" s2 >/dev/null || fail "snapshot delete s2 failed"
pass "$BACKEND: bad names, unknown snapshots and taken names are refused with their messages"
