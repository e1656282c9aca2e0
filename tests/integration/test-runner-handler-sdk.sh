#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the handler author kit: after `cmake --install`, the example handler
# (examples/handler-skeleton, an in-memory backstore) builds out of tree
# against the installed SDK only (pkg-config nbd-runner-handler), installs
# itself into the runner's handler directory, and the installed runner
# serves a backstore of that type to nbd-cli and real NBD clients.
source "$(dirname "$0")/functions.sh"
requires cmake pkg-config qemu-io nbdinfo nbdsh cc

cmake --install "$NBDR_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "install"; }
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
pkg-config --exists nbd-runner-handler || fail "pkg-config does not know nbd-runner-handler"
[ "$(pkg-config --variable=abi_version nbd-runner-handler)" = 1 ] || fail "abi_version"
cmake -S "$NBDR_SRC/examples/handler-skeleton" -B "$T/skeleton" >"$T/skel.log" 2>&1 &&
  cmake --build "$T/skeleton" >>"$T/skel.log" 2>&1 &&
  cmake --install "$T/skeleton" >>"$T/skel.log" 2>&1 || { cat "$T/skel.log"; fail "skeleton build"; }
[ -f "$T/prefix/lib/nbd-runner/libmem_handler.so" ] || fail "libmem_handler.so not in the handler directory"
pass "the skeleton handler builds out of tree against the installed SDK and installs itself"

RUNNER="$T/prefix/sbin/nbd-runner" HANDLER_DIR="$T/prefix/lib/nbd-runner" start_runner
grep -q "loaded handler 'mem' 1.0" "$T/runner.out" || { cat "$T/runner.out"; fail "mem handler not loaded"; }
CLI="$T/prefix/sbin/nbd-cli"
cli mem create scratch size 16M >/dev/null
qemu-io -f raw -c 'write -P 0x42 0 1M' -c 'write -z 512k 64k' -c 'read -P 0x42 0 512k' \
  -c 'read -P 0 512k 64k' -c 'discard 1M 1M' -c 'read -P 0 1M 1M' -c 'flush' \
  "$NBD/mem/scratch" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "qemu-io on the mem backstore"; }
grep -q 'verification failed' "$T/qio" && { cat "$T/qio"; fail "wrong data"; }
nbdinfo --json "$NBD/mem/scratch" >"$T/info.json"
grep -q '"can_trim": true' "$T/info.json" && grep -q '"can_fua": false' "$T/info.json" ||
  { cat "$T/info.json"; fail "capabilities not advertised from the handler"; }
cli mem delete scratch >/dev/null
pass "nbd-cli and NBD clients use a backstore of the out-of-tree type"

# nbd-cli has no list of types: its help for one it was not built with
# names no other handler's key grammar, and the runner's --help lists the
# out-of-tree handler's options from its config help.
"$CLI" mem help >"$T/mem.help"
grep -q "^Usage: nbd-cli mem create KEY" "$T/mem.help" &&
  grep -q "^KEY: the object's name as the mem handler knows it" "$T/mem.help" ||
  { cat "$T/mem.help"; fail "nbd-cli mem help"; }
"$T/prefix/sbin/nbd-runner" --help >"$T/runner.help"
grep -q "^  \[mem\]" "$T/runner.help" || { cat "$T/runner.help"; fail "--help does not list the mem handler"; }
pass "nbd-cli mem help and nbd-runner --help know the out-of-tree type"

# A handler that needs aligned I/O (mem-min-block: the example fails any
# request that breaks it) still serves a client that sends any offset and
# length: the runner realigns by read-modify-write, serialised against
# every other write to the export, on any connection.
stop_runner
RUNNER="$T/prefix/sbin/nbd-runner" HANDLER_DIR="$T/prefix/lib/nbd-runner" start_runner \
  --mem-min-block 4096
cli mem create sectors size 8M >/dev/null
/usr/bin/nbdsh -c - <<PY >"$T/rmw.out" 2>&1 || { cat "$T/rmw.out"; fail "realigned I/O"; }
import random
size = 8 << 20
rng = random.Random(4096)
local = bytearray(size)
def client():
    h = nbd.NBD()
    h.set_request_block_size(False)
    h.connect_uri("$NBD/mem/sectors")
    return h
h = client()
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1
cases = [(1, 1), (4095, 2), (5000, 10000), (size - 3, 3), (0, 4097)]
cases += [(rng.randrange(size - 20000), rng.randrange(1, 20000)) for _ in range(300)]
for off, n in cases:
    data = rng.randbytes(n)
    h.pwrite(data, off)
    local[off:off + n] = data
for off, n in cases:
    assert h.pread(n, off) == bytes(local[off:off + n]), (off, n)
for off, n in [(3, 5), (4000, 10000), (size - 100, 100)]:
    h.zero(n, off)
    local[off:off + n] = bytes(n)
    lo, hi = off - 3, min(off + n + 3, size)
    assert h.pread(hi - lo, lo) == bytes(local[lo:hi])
assert h.pread(size, 0) == bytes(local)
print("ok - %d unaligned writes, reads and zeroes on a 4K-aligned handler match a local copy" % len(cases))

PY
sed 's/^/  /' "$T/rmw.out"
[ "$(grep -c '^ok' "$T/rmw.out")" = 1 ] || fail "not every realigned I/O check ran"

# Two clients at once write interleaved 100-byte pieces of the same 4K
# blocks, each keeping 64 writes in flight: a read-modify-write that let
# another write in between would lose a piece. Each round writes other
# bytes, so a piece lost in one round is not hidden by the next.
cat >"$T/pieces.py" <<'PY'
import os, time
part, rnd, pieces, go = int(os.environ["PART"]), int(os.environ["ROUND"]), 8192, os.environ["GO"]
h = nbd.NBD()
h.set_request_block_size(False)
h.connect_uri(os.environ["URI"])
while not os.path.exists(go):
    time.sleep(0.001)
bufs = []
for i in range(part, pieces, 2):
    while h.aio_in_flight() >= 64:
        h.poll(-1)
    b = nbd.Buffer.from_bytearray(bytearray([(i + rnd * 7) % 251 + 1]) * 100)
    bufs.append((h.aio_pwrite(b, (1 << 20) + i * 100), b))
while h.aio_in_flight() > 0:
    h.poll(-1)
for cookie, _ in bufs:
    assert h.aio_command_completed(cookie)  # raises if the write failed
PY
cat >"$T/count.py" <<'PY'
import os
rnd = int(os.environ["ROUND"])
got = h.pread(8192 * 100, 1 << 20)
print(sum(1 for i in range(8192) if got[i * 100:(i + 1) * 100] != bytes([(i + rnd * 7) % 251 + 1]) * 100))
PY
for round in 1 2 3 4 5 6; do
  rm -f "$T/go"
  pids=()
  for part in 0 1; do
    PART=$part ROUND=$round GO="$T/go" URI="$NBD/mem/sectors" \
      /usr/bin/nbdsh -c "exec(open('$T/pieces.py').read())" >"$T/pieces$part.out" 2>&1 &
    pids+=($!)
  done
  sleep 0.5
  touch "$T/go"
  for p in "${pids[@]}"; do
    wait "$p" || { cat "$T/pieces0.out" "$T/pieces1.out"; fail "the concurrent unaligned writers"; }
  done
  lost=$(ROUND=$round /usr/bin/nbdsh -u "$NBD/mem/sectors" -c "exec(open('$T/count.py').read())") ||
    fail "reading the pieces back"
  [ "$lost" = 0 ] || fail "round $round: $lost of 8192 pieces written at once by two clients were lost"
done
pass "two clients writing interleaved pieces of the same 4K blocks at once lose none"
pass "a handler needing 4K alignment serves byte-granular clients through the runner"
