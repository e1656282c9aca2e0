#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): base:allocation answers for data that was
# just written, with no flush in between and reads completing on another
# connection meanwhile, never say "hole, reads as zero". A client that
# skips holes (nbdcopy, qemu-img convert) would otherwise lose that data.
# On gluster this caught seeks that did not see writes write-behind still
# held, and seeks answered with another request's offset.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires python3
python3 -c 'import nbd' 2>/dev/null || skip "needs python3-libnbd"

bs_start_runner
bs_create sparse.img size 256M
URI=$(bs_uri sparse.img)

python3 - "$URI" >"$T/out" 2>&1 <<'PY' || { cat "$T/out"; fail "block status after writes"; }
import random, sys, threading, nbd

uri = sys.argv[1]
def connect():
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    return h

h, reads = connect(), connect()
size = h.get_size()
stop = threading.Event()
def reader():
    while not stop.is_set():
        reads.pread(65536, random.randrange(0, size // 65536) * 65536)
t = threading.Thread(target=reader)
t.start()
random.seed(7)
wrong = []
try:
    for i in range(400):
        off = random.randrange(0, size // 4096) * 4096
        h.pwrite(b"\x01" * 4096, off)
        seen = []
        def extents(context, offset, entries, err):
            if context == nbd.CONTEXT_BASE_ALLOCATION:
                seen.extend(zip(entries[0::2], entries[1::2]))
            return 0
        h.block_status(4096, off, extents)
        if not seen or seen[0][1] & nbd.STATE_ZERO:
            wrong.append((off, seen[:2]))
finally:
    stop.set()
    t.join()
print("400 writes, %d block status answers called written data zero" % len(wrong))
for off, seen in wrong[:5]:
    print("  at %d: %s" % (off, seen))
sys.exit(1 if wrong else 0)
PY
cat "$T/out"
pass "400 fresh writes: block status never called them holes, with reads completing meanwhile"
