#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): nbd-cli resize (issue 29). Before, the
# control interface only reserved the procedure, and a backing file grown
# by hand was seen by new NBD clients while info kept the old size. Now:
# a backstore written and held open by an NBD client grows to twice its
# size; that same connection writes and reads past the old end at once, a
# new qemu-io writes there too, info, nbdinfo and the backend agree on the
# size, and the record survives a restart. A shrink is refused without
# 'shrink' and while a client has the backstore open, each with its
# message, and works once no client has it. An object grown behind the
# runner's back (truncate, rbd resize) is noticed at the next open, and
# while open at the next info: info follows, an open connection may write
# up to the new end, and a "grow" below such an object's real size is
# refused rather than cutting it.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdsh nbdinfo qemu-io python3

bs_start_runner
bs_create rs/a.img size 8M
KEY=$(bs_key rs/a.img)
URI=$(bs_uri rs/a.img)

# backend_size: the size of the backing object, as the backend tells it.
backend_size() {
  case "$BACKEND" in
    file) stat -c %s "$T/files/$KEY" ;;
    gluster) stat -c %s "$GLUSTER_BRICKS/${KEY%%/*}/${KEY#*/}" ;;
    rbd) rbd -c "$CEPH_CONF" info --format json "$KEY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])' ;;
  esac
}
info_size() { cli --json "$BACKEND" info "$KEY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])'; }

# An NBD client holds the backstore open through the resize: it writes
# before, asks for the resize (through nbd-cli), then writes and reads
# past the old end on the same connection; one that connects meanwhile is
# told the new size. Block status past the old end works on it too.
CLI_WORDS=("$CLI" "$BACKEND" resize "$KEY" size 16M host "$RPC")
python3 - "$URI" "$T" "${CLI_WORDS[@]}" <<'PY' || fail "the open connection did not get the new size"
import nbd, subprocess, sys
uri, t, cli = sys.argv[1], sys.argv[2], sys.argv[3:]
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri(uri)
assert h.get_size() == 8 << 20, h.get_size()
h.pwrite(b"\xa1" * 65536, 0)
# Past the old end before the resize: refused by the runner.
h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_BOUNDS)
try:
    h.pwrite(b"\xb2" * 65536, 12 << 20)
    sys.exit("a write past the end was accepted before the resize")
except nbd.Error as e:
    print("before the resize, past the end:", e.string)
out = subprocess.run(cli, capture_output=True, text=True)
print(out.stdout, out.stderr)
assert out.returncode == 0, out.returncode
# A client that connects now shares the open export: it is told the new size.
h2 = nbd.NBD()
h2.connect_uri(uri)
assert h2.get_size() == 16 << 20, h2.get_size()
h2.shutdown()
h.pwrite(b"\xb2" * 65536, 12 << 20)
assert h.pread(65536, 12 << 20) == b"\xb2" * 65536
assert h.pread(65536, (16 << 20) - 65536) == bytes(65536)  # the new tail reads as zeroes
assert h.pread(65536, 0) == b"\xa1" * 65536
h.flush()
# Block status past the old end, on this connection: answered.
seen = []
h.block_status(65536, 12 << 20, lambda ctx, off, entries, err: seen.append(entries) or 0)
assert seen and seen[0][0] > 0, seen
# Shrinking while this client has it open: refused with the reason.
out = subprocess.run(cli[:5] + ["4M", "shrink"] + cli[6:], capture_output=True, text=True)
assert out.returncode == 1, (out.returncode, out.stderr)
assert "not shrinking" in out.stderr and "NBD connection" in out.stderr, out.stderr
print(out.stderr)
h.shutdown()
PY
pass "$BACKEND: a connection open through the resize writes and reads past the old end; a shrink is refused while it is open"

[ "$(nbdinfo --size "$URI")" = 16777216 ] || fail "nbdinfo sees $(nbdinfo --size "$URI"), not 16 MiB"
[ "$(info_size)" = 16777216 ] || fail "info says $(info_size), not 16 MiB"
[ "$(backend_size)" = 16777216 ] || fail "the backend holds $(backend_size) bytes, not 16 MiB"
qemu-io -f raw "$URI" -c 'write -P 0x5a 15M 1M' -c 'read -P 0x5a 15M 1M' -c 'read -P 0xb2 12M 64k' \
  >"$T/qio" || { cat "$T/qio"; fail "qemu-io past the old end"; }
grep -q "Pattern verification failed" "$T/qio" && { cat "$T/qio"; fail "qemu-io read other data"; }
pass "$BACKEND: info, nbdinfo and the backend agree on 16 MiB; qemu-io writes and reads past the old end"

expect_fail 1 "would shrink it and lose what is stored past the new end: say 'shrink'" \
  cli "$BACKEND" resize "$KEY" size 4M
expect_fail 2 "must be a multiple of 512 bytes" cli "$BACKEND" resize "$KEY" size 1000
bs_create rs/b.img size 4M block-size 4096
expect_fail 1 "must be a positive multiple of its block size \\(4096\\)" \
  cli "$BACKEND" resize "$(bs_key rs/b.img)" size 4194816
expect_fail 1 "does not exist" cli "$BACKEND" resize "$(bs_key rs/none.img)" size 4M
expect_fail 2 "resize needs 'size SIZE'" cli "$BACKEND" resize "$KEY"
[ "$(info_size)" = 16777216 ] || fail "a refused resize changed the size to $(info_size)"
pass "$BACKEND: resize refuses a shrink without 'shrink', a size off the block size, a missing backstore"

stop_runner
bs_start_runner
URI=$(bs_uri rs/a.img)  # new ports
[ "$(info_size)" = 16777216 ] || fail "after a restart info says $(info_size)"
cli "$BACKEND" resize "$KEY" size 4M shrink | grep -q "16 MiB -> 4 MiB" || fail "the shrink's message"
[ "$(nbdinfo --size "$URI")" = 4194304 ] || fail "nbdinfo sees $(nbdinfo --size "$URI") after the shrink"
[ "$(backend_size)" = 4194304 ] || fail "the backend holds $(backend_size) bytes after the shrink"
qemu-io -f raw "$URI" -c 'read -P 0xa1 0 64k' >"$T/qio" && ! grep -q "verification failed" "$T/qio" ||
  { cat "$T/qio"; fail "the data before the new end changed"; }
pass "$BACKEND: the size survives a restart; a shrink with no client works and keeps what is before the new end"

# Every open of the export closed (qemu-io's may linger a moment).
for _ in $(seq 100); do
  [ "$(grep -c "\[$BACKEND/$KEY\] export opened" "$T/log/nbd-runner.log")" = \
    "$(grep -c "\[$BACKEND/$KEY\] export closed" "$T/log/nbd-runner.log")" ] && break
  sleep 0.1
done
case "$BACKEND" in
  file) truncate -s 24M "$T/files/$KEY" ;;
  gluster) truncate -s 24M "$GLUSTER_BRICKS/${KEY%%/*}/${KEY#*/}" && sleep 2 ;;  # md-cache: 1 s
  rbd) rbd -c "$CEPH_CONF" resize --size 24M "$KEY" >/dev/null 2>&1 ;;
esac
[ "$(nbdinfo --size "$URI")" = 25165824 ] || fail "nbdinfo sees $(nbdinfo --size "$URI") after a resize behind the runner's back"
[ "$(info_size)" = 25165824 ] || fail "info says $(info_size) after a resize behind the runner's back"
grep -q "resized behind the runner's back; the record follows" "$T/log/nbd-runner.log" ||
  fail "the runner did not log the size it found"
pass "$BACKEND: an object resized behind the runner's back: the next open finds it, info follows (logged)"

case "$BACKEND" in
  file) truncate -s 32M "$T/files/$KEY" ;;
  gluster) truncate -s 32M "$GLUSTER_BRICKS/${KEY%%/*}/${KEY#*/}" && sleep 2 ;;
  rbd) rbd -c "$CEPH_CONF" resize --size 32M "$KEY" >/dev/null 2>&1 ;;
esac
expect_fail 1 "more than the 29360128 asked \\(it grew behind the runner's back\\): that would shrink it" \
  cli "$BACKEND" resize "$KEY" size 28M
[ "$(backend_size)" = 33554432 ] || fail "a refused resize changed the object to $(backend_size) bytes"
pass "$BACKEND: a grow to less than an object grown behind the runner's back is refused, not a silent shrink"

# Grown behind the runner's back while a client holds it open: the next
# info (what nbd-clid asks every few seconds, to grow mapped devices)
# finds the new size through the open export; a client that connects now
# is told it, and the one that held it open all along may write up to the
# new end at once. (Before, all of this waited for the export's next open.)
case "$BACKEND" in
  file) GROW="truncate -s 40M '$T/files/$KEY'" ;;
  gluster) GROW="truncate -s 40M '$GLUSTER_BRICKS/${KEY%%/*}/${KEY#*/}' && sleep 2" ;;
  rbd) GROW="rbd -c '$CEPH_CONF' resize --size 40M '$KEY' >/dev/null 2>&1" ;;
esac
python3 - "$URI" "$GROW" "$CLI" "$BACKEND" "$KEY" host "$RPC" <<'PY' || fail "a resize behind the runner's back was not seen while the export was open"
import json, nbd, subprocess, sys
uri, grow, cli, backend, key, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
NEW = 40 << 20
h = nbd.NBD()
h.set_strict_mode(0)  # the client itself would refuse to pass the size it was told
h.connect_uri(uri)
old = h.get_size()
assert old < NEW, old
subprocess.run(grow, shell=True, check=True)
info = json.loads(subprocess.run([cli, "--json", backend, "info", key] + extra, check=True,
                                 capture_output=True, text=True).stdout)
assert info["size"] == NEW, "info says %d while the export is open" % info["size"]
n = nbd.NBD()
n.connect_uri(uri)
assert n.get_size() == NEW, "a client joining the open export is told %d" % n.get_size()
n.shutdown()
h.pwrite(b"Z" * 65536, NEW - 65536)
assert h.pread(65536, NEW - 65536) == b"Z" * 65536
h.shutdown()
print("grown to %d behind the runner's back while open (was %d): info, a new client, the old one follow" % (NEW, old))
PY
pass "$BACKEND: an object grown behind the runner's back while open: info follows, a new client is told, the open connection writes past the old end"
