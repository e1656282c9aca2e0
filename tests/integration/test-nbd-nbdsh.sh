#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the server through libnbd (nbdsh) with strict mode off, so libnbd
# sends requests it would normally refuse: out of range, misaligned,
# unknown flags, writes to a read-only export. Also checks that FLUSH on
# one connection covers writes answered on another (multi-conn).
source "$(dirname "$0")/functions.sh"
requires nbdsh

start_runner
cli file create rw.img size 8M >/dev/null
cli file create ro.img size 1M readonly >/dev/null

/usr/bin/nbdsh -c - <<PY || fail "nbdsh checks"
import errno
def expect(err, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == err, (fn.__name__, e.errnum, e.string)
        return
    raise AssertionError("%s succeeded" % fn.__name__)

h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri("$NBD/file/rw.img")
assert h.get_size() == 8 << 20
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero() and h.can_multi_conn()
h.pwrite(b"\x42" * 4096, 0, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 0) == b"\x42" * 4096
expect(errno.EINVAL, h.pread, 4096, (8 << 20) - 512)
expect(errno.ENOSPC, h.pwrite, b"x" * 4096, 8 << 20)
expect(errno.EINVAL, h.pread, 512, 1)
expect(errno.EINVAL, h.pread, 512, 0, 1 << 9)
h.zero(1 << 20, 4096, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(4096, 4096) == bytes(4096)
print("ok - libnbd strict mode off: range, alignment and flag errors come back as errno")

# Multi-conn: a write answered on connection a is covered by a flush on b.
a, b = nbd.NBD(), nbd.NBD()
a.connect_uri("$NBD/file/rw.img"); b.connect_uri("$NBD/file/rw.img")
a.pwrite(b"\x99" * 65536, 2 << 20)
b.flush()
assert b.pread(65536, 2 << 20) == b"\x99" * 65536
print("ok - multi-conn: data written on one connection is read and flushed on another")

r = nbd.NBD()
r.set_strict_mode(0)
r.connect_uri("$NBD/file/ro.img")
assert r.is_read_only()
expect(errno.EPERM, r.pwrite, b"x" * 512, 0)
expect(errno.EPERM, r.trim, 512, 0)
print("ok - read-only export: EPERM for writes and trims")
PY
