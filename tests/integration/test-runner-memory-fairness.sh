#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Greedy connections cannot starve a modest one through the shared memory
# budget (issue 27; found by bench/hostile-load scale: fio's 4K reads
# beside 256 connections with 32 MiB reads they never read ran at 22 % of
# their speed alone). Eight connections fill --max-buffer-memory 128M with
# replies they do not read; a client reading 4K blocks of another export
# must still get each answer within a second, long before --send-timeout
# drops the greedy ones.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner --max-buffer-memory 128M --send-timeout 30
cli file create big.img size 64M >/dev/null
cli file create small.img size 1M >/dev/null
python3 - "$IO_PORT" <<'PY' >"$T/fair.out" 2>&1 || { cat "$T/fair.out"; fail "the modest client was starved"; }
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import *
port = int(sys.argv[1])
greedy = []
for i in range(8):
    c = Client(port)
    c.negotiate("file/big.img")
    for j in range(2):
        c.request(CMD_READ, 0, 32 << 20, cookie=j)  # never read
    greedy.append(c)
time.sleep(2)  # their reads fill the budget
m = Client(port, timeout=5)
m.negotiate("file/small.img")
slowest = 0.0
for i in range(100):
    t = time.time()
    m.request(CMD_READ, (i % 256) * 4096, 4096, cookie=100 + i)
    cookie, err, _ = m.read_reply(4096)
    assert (cookie, err) == (100 + i, 0), (cookie, err)
    slowest = max(slowest, time.time() - t)
print("100 4K reads beside 8 x 2 x 32 MiB unread replies; slowest answer %.3f s" % slowest)
assert slowest < 1.0, "a 4K read waited %.1f s" % slowest
for c in greedy:
    c.close()
PY
cat "$T/fair.out"
pass "a modest client is served at once while greedy ones hold the memory budget"
