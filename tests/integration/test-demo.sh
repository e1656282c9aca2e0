#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The README's demo command (scripts/demo) runs end to end on this build:
# runner with the file handler, a 1 GiB backstore made with nbd-cli,
# qemu-io and nbdcopy round trips with checksums, nbdinfo --map, a mapping
# to /dev/nbdX (in the qemu guest here), and a clean stop. Only the
# install-deps and build steps are left out: run-tests does those itself.
source "$(dirname "$0")/functions.sh"
requires qemu-io nbdcopy nbdinfo

rc=0
NBDR_BUILD="$NBDR_BUILD" bash "$NBDR_SRC/scripts/demo" >"$T/demo.out" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
  reason=$(sed -n 's/^SKIPPED: //p' "$T/demo.out" | head -1)
  [ -z "$reason" ] || skip "the demo's /dev/nbdX step cannot run here: $reason"
  tail -40 "$T/demo.out"
  fail "scripts/demo exited $rc"
fi
tail -1 "$T/demo.out" | grep -qx "demo OK" || { tail -20 "$T/demo.out"; fail "the demo did not finish"; }
grep -q "^read 4194304/4194304 bytes" "$T/demo.out" || fail "the demo's qemu-io read did not run"
grep -Eq "^ok - guest \(file\)|^mapped on /dev/nbd" "$T/demo.out" || fail "the demo did not map a /dev/nbdX"
pass "scripts/demo: create, qemu-io, nbdcopy checksums, nbdinfo --map, /dev/nbdX, clean stop"
