#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a corrupt or unreadable saveconfig.json, or one record with a
# field the runner could not have stored, stops the runner from starting,
# names the file, the record and the cause, and is left untouched.
source "$(dirname "$0")/functions.sh"

mkdir -p "$T/state" "$T/log"
check_refused() {  # content pattern
  printf '%s' "$1" >"$T/state/saveconfig.json"
  cp "$T/state/saveconfig.json" "$T/before"
  local rc=0
  "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
    --state-dir "$T/state" --log-dir "$T/log" --file-dir "$T/files" \
    --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/out" 2>&1 || rc=$?
  [ $rc -ne 0 ] || fail "runner started with saveconfig.json: $1"
  grep -q "saveconfig.json" "$T/out" || { cat "$T/out"; fail "error does not name the file"; }
  grep -Eq "$2" "$T/out" || { cat "$T/out"; fail "error does not say '$2'"; }
  cmp -s "$T/before" "$T/state/saveconfig.json" || fail "saveconfig.json was modified"
}
check_refused '{"version": 1, "backstores": [' 'not valid JSON'
pass "truncated JSON: refused, file untouched"
check_refused '{"version": 1, "backstores": [{"type": "file", "key": "../../etc/passwd", "size": 512}]}' "'\.\.' is not allowed"
pass "a key escaping the base directory: refused"
check_refused '{"version": 7, "backstores": []}' 'unsupported version 7'
pass "an unknown format version: refused"
check_refused '{"version": 1, "backstores": [{"type": "file", "key": "a", "size": -5}]}' "size"
pass "a negative size: refused"
# Issue 27: one over-long field in a hand-edited file made LIST and INFO
# fail for every backstore (the reply could not be encoded).
long_device="/dev/nbd$(printf '1%.0s' $(seq 300))"
check_refused '{"version": 1, "backstores": [{"type": "file", "key": "good", "size": 512},
  {"type": "file", "key": "vm/a.img", "size": 512, "status": "mapped", "device": "'"$long_device"'"}]}' \
  "backstore #2 \(file/vm/a.img\): 'device' is not /dev/nbdN"
check_refused '{"version": 1, "backstores": [{"type": "file", "key": "a", "size": 512, "readonly": "yes"}]}' \
  "'readonly' has the wrong JSON type"
pass "a field beyond the protocol's limits, or of the wrong type: refused with the key named"
rm -f "$T/state/saveconfig.json"
mkdir "$T/state/saveconfig.json"
rc=0
"$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
  --state-dir "$T/state" --log-dir "$T/log" --file-dir "$T/files" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "runner started with an unreadable saveconfig.json"
grep -q 'saveconfig.json: Is a directory' "$T/out" || { cat "$T/out"; fail "unclear message"; }
pass "an unreadable saveconfig.json: refused with the cause"
