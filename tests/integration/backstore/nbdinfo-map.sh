#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): NBD_OPT_LIST, NBD_OPT_INFO and
# base:allocation through nbdinfo: trimmed ranges show up as holes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdinfo qemu-io

bs_start_runner
bs_create a.img size 16M
bs_create sub/b.img size 1M readonly
A=$(bs_uri a.img)

nbdinfo --list "$NBD/" >"$T/list"
grep -q "export=\"$BACKEND/$(bs_key a.img)\"" "$T/list" &&
  grep -q "export=\"$BACKEND/$(bs_key sub/b.img)\"" "$T/list" || { cat "$T/list"; fail "nbdinfo --list"; }
pass "NBD_OPT_LIST lists every backstore"
if command -v qemu-nbd >/dev/null; then
  qemu-nbd --list -b 127.0.0.1 -p "$IO_PORT" >"$T/qlist" 2>&1 || { cat "$T/qlist"; fail "qemu-nbd --list"; }
  grep -q "$(bs_key sub/b.img)" "$T/qlist" || { cat "$T/qlist"; fail "qemu-nbd --list lacks an export"; }
  pass "qemu-nbd --list sees the exports"
fi

nbdinfo --json "$(bs_uri sub/b.img)" | grep -q '"is_read_only": true' || fail "read-only flag"
nbdinfo --json "$A" >"$T/info.json"
for k in '"can_flush": true' '"can_fua": true' '"can_trim": true' '"can_zero": true' \
  '"can_multi_conn": true' '"block_size_minimum": 512' '"export-size": 16777216'; do
  grep -q "$k" "$T/info.json" || { cat "$T/info.json"; fail "nbdinfo lacks $k"; }
done
pass "NBD_OPT_INFO advertises size, block sizes and the handler's capabilities"

qemu-io -f raw -c 'write -P 1 0 16M' -c 'discard 4M 4M' "$A" >/dev/null
nbdinfo --map "$A" >"$T/map"
cat "$T/map"
grep -Eq '^ +0 +4194304 +0 +data' "$T/map" || fail "first 4M should be data"
grep -Eq '^ +4194304 +4194304 +3 +hole,zero' "$T/map" || fail "trimmed 4M should be a hole"
grep -Eq '^ +8388608 +8388608 +0 +data' "$T/map" || fail "last 8M should be data"
pass "base:allocation shows the trimmed range as a hole"

if nbdinfo "$NBD/$BACKEND/$(bs_key missing.img)" >"$T/out" 2>&1; then fail "unknown export was served"; fi
grep -q 'opt_go' "$T/out" || { cat "$T/out"; fail "unknown export should fail in NBD_OPT_GO"; }
pass "an unregistered export is refused with a clear message"
