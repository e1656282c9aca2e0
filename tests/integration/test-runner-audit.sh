#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The control plane's audit trail (issue 26): every call that changes
# something (create, import, delete, access changes, map, mapped, unmap)
# leaves one "[audit]" log line with the procedure, type, key, details,
# the caller's address and identity, and the outcome, whether it was done
# or refused; calls that only read (list, info, version) leave none. What
# a peer sends is escaped: before, a key with a newline forged a log line
# and a device name with terminal escapes was stored and printed raw. Now
# the raw RPC calls that tried both leave one escaped line each, no ESC
# byte reaches the log, and a device that is not /dev/nbdN is refused.
source "$(dirname "$0")/functions.sh"
requires python3

LOG="$T/log/nbd-runner.log"
# audit_has PATTERN WHAT: an [audit] line of the log matches PATTERN (grep -E).
audit_has() {
  grep -E -- "INFO  \[audit\] $1" "$LOG" >/dev/null || { grep audit "$LOG"; fail "no audit line for $2"; }
}

start_runner
cli file create a.img size 1M >/dev/null
cli file import a.img >/dev/null 2>&1 || true
cli file list >/dev/null
cli file info a.img >/dev/null
cli version >/dev/null
audit_has 'create type "file" key "a.img" size 1048576 by \(no identity\) from 127\.0\.0\.1:[0-9]+: ok$' "a create"
audit_has 'import type "file" key "a.img" size 0 by \(no identity\) from 127\.0\.0\.1:[0-9]+: failed \(EEXIST\): ".*"$' "a refused import"
cli file modify a.img allow psk:alice >/dev/null
audit_has 'access type "file" key "a.img" op allow identity "psk:alice" by .*: ok$' "an access change"
rpc_map_as host-a file a.img /dev/nbd3
audit_has 'map type "file" key "a.img" client "host-a" by .*: ok$' "a map"
audit_has 'mapped type "file" key "a.img" device "/dev/nbd3" client "host-a" by .*: ok$' "a mapped"
cli file unmap a.img force >/dev/null
audit_has 'unmap type "file" key "a.img" by .*: ok$' "an unmap"
cli file delete a.img >/dev/null
audit_has 'delete type "file" key "a.img" by .*: ok$' "a delete"
expect_fail 1 "" cli file delete gone.img
audit_has 'delete type "file" key "gone.img" by .*: failed \(ENOENT\)' "a refused delete"
n=$(grep -c '\[audit\]' "$LOG")
[ "$n" = 8 ] || { grep audit "$LOG"; fail "$n audit lines, not 8 (list, info, version and show leave none)"; }
pass "create, import, access, map, mapped, unmap and delete each leave one audit line, done or refused; reads leave none"

# Hostile values, sent as raw RPC calls (nbd-cli refuses them before).
FORGED=$'x.img\n2026-01-01T00:00:00.000Z INFO  [audit] delete type "file" key "prod.img" by admin: ok'
rpc_call 2 file "$FORGED" >/dev/null
grep -q '^2026-01-01T00:00:00.000Z' "$LOG" && fail "a key with a newline forged a log line"
audit_has 'delete type "file" key "x\.img\\n2026-01-01T00:00:00\.000Z INFO  \[audit\] delete' "the forging key, escaped"
cli file create b.img size 1M >/dev/null
out=$(rpc_call 5 file b.img host-b)
token=$(echo "$out" | sed -n 's/^token //p')
rpc_call 6 file b.img $'/dev/nbd0\e[2J\e]0;pwned\a' host-b "u64:$token" >"$T/mapped.out"
grep -q 'status 22 .*is not /dev/nbdN' "$T/mapped.out" || { cat "$T/mapped.out"; fail "an escape-laden device accepted"; }
audit_has 'mapped type "file" key "b\.img" device "/dev/nbd0\\x1b\[2J\\x1b\]0;pwned\\x07" client "host-b" by .*: failed \(EINVAL\)' \
  "the hostile device, escaped"
cli --json file info b.img | grep -q '"device": ""' || fail "the hostile device was stored"
grep -q $'\e' "$LOG" && fail "an ESC byte reached the log"
grep -q $'\e' "$T/runner.out" && fail "an ESC byte reached stderr"
pass "a key with a newline forges no line, a device with terminal escapes is refused; both logged escaped"
