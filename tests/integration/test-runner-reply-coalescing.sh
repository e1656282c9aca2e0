#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Reply coalescing: while a client keeps small reads and writes coming, a
# reader lets their replies wait for the next request's and sends them
# together (runner/nbd_connection.cc, ReaderLoop). A reply must never wait
# for a request that does not come. Checked with a raw client
# (nbd_wire.py) that sends bursts of requests in one write and then only
# reads: every reply arrives with the right data for bursts of 1 to 1200
# requests (past the 1024 in-flight request limit, with the client slow
# to read), around a large read and a flush, and before the runner closes
# after NBD_CMD_DISC; then fio writes and verifies at queue depths 1 and 32.
source "$(dirname "$0")/functions.sh"
requires python3 fio

start_runner
cli file create coalesce.img size 128M >/dev/null

PYTHONPATH="$NBDR_SRC/tests/integration" python3 - "$IO_PORT" >"$T/raw.out" 2>&1 <<'PY' \
  || { cat "$T/raw.out"; fail "raw client bursts"; }
import struct, sys, threading, time
from nbd_wire import *

c = Client(int(sys.argv[1]), timeout=20)
c.negotiate("file/coalesce.img", structured=True)
cookie = 0

def block(i, size):
    return struct.pack(">I", i) * (size // 4)

def burst(reqs, read_delay=0.0):
    """Sends reqs ((cmd, offset, length, payload)) in one write from a
    thread, reads every reply; returns {cookie: (err, data)} in send order."""
    global cookie
    wire, cookies = [], []
    for cmd, off, ln, payload in reqs:
        cookie += 1
        cookies.append(cookie)
        wire.append(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, cmd, cookie, off, ln) + payload)
    sender = threading.Thread(target=c.send, args=(b"".join(wire),))
    sender.start()
    time.sleep(read_delay)
    got = {}
    for _ in reqs:
        k, err, data = c.read_reply()
        assert k in cookies and k not in got, "unexpected cookie %d" % k
        got[k] = (err, data)
    sender.join()
    return [got[k] for k in cookies]

base = 0
for n in (1, 2, 3, 7, 8, 9, 31, 64, 300):
    base += 512
    writes = [(CMD_WRITE, (base + i) * 4096, 4096, block(base + i, 4096)) for i in range(n)]
    assert all(err == 0 for err, _ in burst(writes)), "write burst of %d failed" % n
    reads = [(CMD_READ, (base + i) * 4096, 4096, b"") for i in range(n)]
    for i, (err, data) in enumerate(burst(reads)):
        assert err == 0 and data == block(base + i, 4096), "burst of %d: read %d differs" % (n, i)
    print("burst of %d: written and read back" % n)

# More requests than the runner keeps in flight, 64 KiB each (78 MiB, more
# than the in-flight byte limit too), while the client does not read for 1 s.
n = 1200
reads = [(CMD_READ, (i % 1024) * 65536, 65536, b"") for i in range(n)]
for i, (err, data) in enumerate(burst(reads, read_delay=1.0)):
    assert err == 0 and len(data) == 65536, "slow reader: read %d failed" % i
print("burst of %d 64 KiB reads with a slow reader answered" % n)

mixed = [(CMD_READ, 512 * 4096, 4096, b"")] * 3
mixed += [(CMD_READ, 0, 1 << 20, b""), (CMD_FLUSH, 0, 0, b"")]
mixed += [(CMD_WRITE, (8000 + i) * 4096, 4096, block(8000 + i, 4096)) for i in range(4)]
mixed += [(CMD_READ, 512 * 4096, 4096, b"")]
replies = burst(mixed)
assert all(err == 0 for err, _ in replies), [err for err, _ in replies]
assert replies[0][1] == replies[-1][1] == block(512, 4096)
print("small requests around a 1 MiB read and a flush answered")

# Ten reads and NBD_CMD_DISC in one write: all ten answered, then closed.
wire = b"".join(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, 500 + i, i * 4096, 4096)
                for i in range(10))
c.send(wire + struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, 999, 0, 0))
got = sorted(c.read_reply()[0] for _ in range(10))
assert got == list(range(500, 510)), got
assert c.closed_by_server(), "still open after NBD_CMD_DISC"
print("requests sent with NBD_CMD_DISC answered before the close")
PY
cat "$T/raw.out"
pass "every held reply is sent: bursts, a slow reader, mixed requests, NBD_CMD_DISC"

for qd in 1 32; do
  fio --name=coalesce --ioengine=nbd --uri="$NBD/file/coalesce.img" --rw=randwrite --bs=4k \
    --iodepth="$qd" --size=16M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_state_save=0 --output="$T/fio-$qd.out" >/dev/null 2>&1 \
    || { cat "$T/fio-$qd.out"; fail "fio at QD$qd"; }
  grep -q "err= 0" "$T/fio-$qd.out" || { cat "$T/fio-$qd.out"; fail "fio at QD$qd: an error"; }
  pass "fio wrote and verified 16 MiB of 4K random writes at QD$qd"
done
