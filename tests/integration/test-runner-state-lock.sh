#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a second runner on the same state directory refuses to start
# with a clear message, and leaves the first one serving.
source "$(dirname "$0")/functions.sh"

start_runner
cli file create a.img size 1M >/dev/null
rc=0
"$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
  --state-dir "$T/state" --log-dir "$T/log2" --file-dir "$T/files" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/second" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "second runner started"
grep -q "another nbd-runner (pid $RUNNER_PID) is already using state directory" "$T/second" \
  || { cat "$T/second"; fail "unclear message"; }
pass "second runner refused: $(grep -o 'another nbd-runner.*' "$T/second")"
cli file info a.img >/dev/null || fail "first runner disturbed"
pass "first runner still serving"
