#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): a restarted runner keeps its registry and
# data, SIGTERM lets in-flight I/O finish and exits 0, and SIGHUP reopens
# the log.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires qemu-io nbdcopy

bs_start_runner
bs_create keep/a.img size 8M
bs_create keep/b.img size 4M readonly
qemu-io -f raw -c 'write -P 0x7e 0 8M' "$(bs_uri keep/a.img)" >/dev/null
stop_runner
pass "SIGTERM: runner stopped cleanly with status 0"

bs_start_runner
cli --json "$BACKEND" list >"$T/list.json"
grep -q "\"key\": \"$(bs_key keep/a.img)\"" "$T/list.json" &&
  grep -q "\"key\": \"$(bs_key keep/b.img)\"" "$T/list.json" ||
  { cat "$T/list.json"; fail "registry lost across restart"; }
cli --json "$BACKEND" info "$(bs_key keep/b.img)" | grep -q '"readonly": true' || fail "read-only flag lost"
qemu-io -f raw -c 'read -P 0x7e 0 8M' "$(bs_uri keep/a.img)" | grep -q 'read 8388608' ||
  fail "data lost across restart"
pass "restart keeps every backstore, its flags and its data"

# SIGTERM while a copy is running: the copy's writes that were answered
# are stored, and the runner exits 0.
dd if=/dev/urandom of="$T/src" bs=1M count=8 status=none
nbdcopy "$T/src" "$(bs_uri keep/a.img)" &
COPY=$!
sleep 0.05
stop_runner
wait $COPY || true
pass "SIGTERM during I/O: runner drained and exited 0"

# SIGHUP reopens the log file (log rotation).
bs_start_runner
mv "$T/log/nbd-runner.log" "$T/log/nbd-runner.log.1"
kill -HUP "$RUNNER_PID"
for _ in $(seq 50); do [ -s "$T/log/nbd-runner.log" ] && break; sleep 0.1; done
grep -q 'log file reopened' "$T/log/nbd-runner.log" || fail "SIGHUP did not reopen the log"
pass "SIGHUP reopens the log file"
