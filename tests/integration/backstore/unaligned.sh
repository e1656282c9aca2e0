#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): a client that negotiates no block sizes
# (libnbd with request_block_size off) is told a minimum of 1 and may read,
# write, zero and trim at any byte offset and length, as the NBD spec asks;
# every result is checked byte for byte against a local copy, and so are
# the bytes the backend stores. Also 48 MiB reads and writes (large
# payloads within the 64 MiB maximum), and a client that did ask for block
# sizes still gets EINVAL for an unaligned request.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdsh cmp

bs_start_runner
bs_create odd.img size 64M
URI=$(bs_uri odd.img)

/usr/bin/nbdsh -c - <<PY >"$T/nbdsh.out" 2>&1 || { cat "$T/nbdsh.out"; fail "nbdsh checks"; }
import errno, random
size = 64 << 20
rng = random.Random(27)
local = bytearray(size)

h = nbd.NBD()
h.set_request_block_size(False)
h.connect_uri("$URI")
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1, h.get_block_size(nbd.SIZE_MINIMUM)
print("ok - a client that asked for no block sizes is told a minimum of 1")

def write(off, data):
    h.pwrite(bytes(data), off)
    local[off:off + len(data)] = data

def check(off, n):
    got = h.pread(n, off)
    assert got == bytes(local[off:off + n]), "read at %d+%d differs" % (off, n)

# Odd offsets and lengths, inside one block, across block and 4K
# boundaries, at the very start and the very end of the export.
cases = [(1, 1), (511, 2), (4095, 3), (7, 9000), (size - 1, 1), (size - 4097, 4097), (0, 3)]
cases += [(rng.randrange(size - 70000), rng.randrange(1, 70000)) for _ in range(200)]
for off, n in cases:
    write(off, rng.randbytes(n))
for off, n in cases:
    check(off, n)
for _ in range(200):
    off = rng.randrange(size - 10000)
    check(off, rng.randrange(1, 10000))
print("ok - %d unaligned writes and %d unaligned reads match a local copy" % (len(cases), len(cases) + 200))

# Unaligned zeroing and trimming touch exactly their bytes.
if h.can_zero():
    for off, n in [(3, 5), (4093, 10), (1000001, 77777)]:
        h.zero(n, off)
        local[off:off + n] = bytes(n)
        check(off - 3, n + 6)
    print("ok - unaligned write zeroes clear exactly their bytes")
if h.can_trim():
    # A trim may leave data or zeroes; what lies outside it must not change.
    off, n = 2000003, 100001
    h.trim(n, off)
    check(off - 4096, 4096)
    check(off + n, 4096)
    local[off:off + n] = h.pread(n, off)
    print("ok - an unaligned trim leaves the bytes around it alone")

# Large payloads: 48 MiB in one request each way.
big = rng.randbytes(48 << 20)
write(8 << 20, big)
assert h.pread(48 << 20, 8 << 20) == big
print("ok - a 48 MiB write and a 48 MiB read round-trip")
h.flush()
h.shutdown()

# A client that asked for block sizes promised to keep them.
g = nbd.NBD()
g.set_strict_mode(0)
g.connect_uri("$URI")
assert g.get_block_size(nbd.SIZE_MINIMUM) == 512, g.get_block_size(nbd.SIZE_MINIMUM)
try:
    g.pread(512, 1)
    raise AssertionError("an unaligned read was served to a client that asked for block sizes")
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
print("ok - a client that asked for block sizes is held to the minimum of 512")
g.shutdown()
open("$T/local.img", "wb").write(local)
PY
sed 's/^/  /' "$T/nbdsh.out"
grep -c '^ok' "$T/nbdsh.out" | grep -qx '[56]' || fail "not every check ran"
bs_backing_copy odd.img "$T/backing.img"
truncate -s 64M "$T/backing.img"
cmp "$T/local.img" "$T/backing.img" || fail "the $BACKEND backend stores other bytes"
pass "the $BACKEND backend stores exactly the bytes of the local copy"
