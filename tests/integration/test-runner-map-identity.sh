#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# A mapping belongs to the TLS identity that made it (issue 26): with
# tls = require, identity B cannot unmap identity A's mapping, confirm
# A's map with A's token, or revive A's dead mapping, even when B names
# A's host and device (the host name a caller sends is information, not
# proof); A can; an admin may force. The owner is persisted and shown.
# Calls go over TLS with client certificates (tests/integration/onc_rpc.py
# with NBDR_RPC_TLS), as two client hosts' nbd-cli would make them.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool python3

make_pki "$T/pki"
make_psk "$T/admin.psk" admin
start_runner --tls require --tls-certificates "$T/pki/server" --tls-verify-peer \
  --tls-psk "$T/admin.psk" --control-admins psk:admin
A="x509:CN=client1,O=nbd-runner tests"
B="x509:CN=client2,O=nbd-runner tests"
cli file create a.img size 1M >/dev/null

# as WHO rpc_call ARGS...: the call over TLS with WHO's certificate.
as() {
  local who=$1
  shift
  NBDR_RPC_TLS="$T/pki/$who" "$@"
}
# expect_rpc WHO STATUS PATTERN ARGS...: WHO's call must answer STATUS
# with a message matching PATTERN (grep -E).
expect_rpc() {
  local who=$1 want=$2 pattern=$3
  shift 3
  as "$who" rpc_call "$@" >"$T/rpc.out" 2>&1
  grep -Eq "^status $want .*$pattern" "$T/rpc.out" ||
    { cat "$T/rpc.out"; fail "$who: rpc_call $* answered otherwise than $want /$pattern/"; }
}
mapped_state() { cli --json file info a.img | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["device"], d["client"], d["owner"])'; }

as client1 rpc_map_as host-a file a.img /dev/nbd3
[ "$(mapped_state)" = "mapped /dev/nbd3 host-a $A" ] || fail "after A's map: $(mapped_state)"
cli file info a.img | grep -q "^owner: *$A$" || fail "info does not show the owner"
grep -q "\"owner\": \"$A\"" "$T/state/saveconfig.json" || fail "the owner is not persisted"
pass "a map records the identity that made it; info shows it, saveconfig.json keeps it"

expect_rpc client2 13 "mapped by identity $A; identity $B may not unmap it" \
  7 file a.img /dev/nbd3 host-a u64:0
expect_rpc client2 13 "may not unmap" 7 file a.img "" "" u64:1
expect_rpc client2 13 "unmap without a device \(force\)" 7 file a.img "" "" u64:0
[ "$(mapped_state)" = "mapped /dev/nbd3 host-a $A" ] || fail "B's unmap changed it: $(mapped_state)"
grep -Eq "\[audit\] unmap type \"file\" key \"a.img\" device \"/dev/nbd3\" .*by \"$B\" .*failed \(EACCES\)" \
  "$T/log/nbd-runner.log" || fail "B's refused unmap is not audited"
pass "B cannot unmap A's mapping, even naming A's host and device"

# After a restart the mapping is dead: only A revives it.
stop_runner
start_runner --tls require --tls-certificates "$T/pki/server" --tls-verify-peer \
  --tls-psk "$T/admin.psk" --control-admins psk:admin
expect_rpc client2 13 "may not confirm it" 6 file a.img /dev/nbd3 host-a u64:0
expect_rpc client1 0 "mapped on /dev/nbd3" 6 file a.img /dev/nbd3 host-a u64:0
pass "B cannot revive A's dead mapping; A can"

expect_rpc client1 0 "unmapped" 7 file a.img /dev/nbd3 host-a u64:0
out=$(as client1 rpc_call 5 file a.img host-a)
token=$(sed -n 's/^token //p' <<<"$out")
expect_rpc client2 13 "may not confirm it" 6 file a.img /dev/nbd4 host-a "u64:$token"
expect_rpc client1 0 "mapped on /dev/nbd4" 6 file a.img /dev/nbd4 host-a "u64:$token"
pass "B cannot confirm A's map with A's token; A unmaps and maps again"

"$CLI" --tls-psk "$T/admin.psk" file unmap a.img force host "$RPC" >"$T/force.out" 2>&1 || { cat "$T/force.out"; fail "an admin's force"; }
[ "$(mapped_state)" = "created   " ] || fail "after the admin's force: $(mapped_state)"
as client2 rpc_map_as host-b file a.img /dev/nbd5
[ "$(mapped_state)" = "mapped /dev/nbd5 host-b $B" ] || fail "B's own map: $(mapped_state)"
pass "an admin forces any identity's mapping away; B then maps it as its own"
