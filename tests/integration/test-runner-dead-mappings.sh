#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that backstores which were mapped when the runner stopped come back
# as dead (their connections are gone), are listed as such, persist that
# way, and refuse a plain delete while a client may still hold them.
source "$(dirname "$0")/functions.sh"

seed_saveconfig m.img /dev/nbd3 c.img
start_runner
cli --json file info m.img | grep -q '"status": "dead"' || fail "mapped backstore not dead after restart"
cli --json file info c.img | grep -q '"status": "created"' || fail "created backstore changed"
cli file list dead | grep -q 'm.img' || fail "list dead"
grep -q '"status": "dead"' "$T/state/saveconfig.json" || fail "dead state not persisted"
grep -q 'was mapped on /dev/nbd3 when the runner stopped' "$T/log/nbd-runner.log" || fail "no log line"
pass "a backstore mapped at shutdown is dead after restart, listed and persisted as such"
expect_fail 1 "is dead on /dev/nbd3; unmap it first" cli file delete m.img
pass "delete of a dead backstore is refused: its client may still hold the device"
# A map from another client (NBDR_MAP, as nbd-cli map sends it) is refused
# too, and the record stays dead on its device.
rpc_call 5 file m.img other-host >"$T/map.out" 2>&1 || true
cat "$T/map.out"
grep -q "^status 16 backstore file/m.img is dead on /dev/nbd3: its client may still hold it" "$T/map.out" ||
  fail "a map of a dead backstore was not refused"
cli --json file info m.img | grep -q '"device": "/dev/nbd3"' || fail "the dead record lost its device"
pass "a map of a dead backstore by another client is refused; the record keeps its device"

# A map that was never confirmed when the runner stopped comes back dead
# with no device; unmap by key says so and clears it only with 'force'.
rpc_call 5 file c.img other-host | grep -q "^status 0 " || fail "map of c.img"
stop_runner
start_runner
cli --json file info c.img | grep -q '"status": "dead"' || fail "an unconfirmed map is not dead after a restart"
expect_fail 1 "file/c.img is dead with no device recorded \(mapped by other-host\); .*add 'force'" \
  cli file unmap c.img
cli file unmap c.img force | grep -q "forced: cleared the dead mapping of file/c.img (no device recorded" ||
  fail "unmap force of a dead record without a device"
cli --json file info c.img | grep -q '"status": "created"' || fail "the record was not cleared"
pass "a dead record without a device is cleared by unmap KEY force (not without force)"
