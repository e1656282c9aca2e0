#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Who may do what on the control port (issue 26). Before, two
# unauthenticated calls (IMPORT of a file the runner never made, then
# DELETE) removed it, and an UNMAP without a device cleared another
# host's record. With TLS on, the identities in control-admins (and root
# on the admin socket) administer; every other identity, and a plain
# caller, is a client: it lists and reads only the backstores it may open
# (their access lists), may map those, and may not create, import,
# delete, change access or force an unmap, each refusal naming the
# identity seen and what it lacks.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool python3

make_psk "$T/keys.psk" admin bob
grep '^admin:' "$T/keys.psk" >"$T/admin.psk" && chmod 600 "$T/admin.psk"
grep '^bob:' "$T/keys.psk" >"$T/bob.psk" && chmod 600 "$T/bob.psk"
ADMIN=(--tls-psk "$T/admin.psk")
BOB=(--tls-psk "$T/bob.psk")
start_runner --tls on --tls-psk "$T/keys.psk" --control-admins psk:admin
H=(host "$RPC")
"$CLI" "${ADMIN[@]}" file create open.img size 1M "${H[@]}" >/dev/null || fail "an admin's create"
"$CLI" "${ADMIN[@]}" file create alice-only.img size 1M "${H[@]}" >/dev/null
"$CLI" "${ADMIN[@]}" file modify alice-only.img allow psk:alice "${H[@]}" >/dev/null
"$CLI" "${ADMIN[@]}" file list "${H[@]}" | grep -q alice-only.img || fail "an admin sees every backstore"
pass "an identity in control-admins creates, changes access and lists everything"

expect_fail 1 "create refused: identity psk:bob is a client of this runner; only its control-admins \(and root on its admin socket\) may create" \
  "$CLI" "${BOB[@]}" file create b.img size 1M "${H[@]}"
expect_fail 1 "delete refused: identity psk:bob is a client" "$CLI" "${BOB[@]}" file delete open.img "${H[@]}"
expect_fail 1 "access refused: identity psk:bob is a client" \
  "$CLI" "${BOB[@]}" file modify open.img allow psk:bob "${H[@]}"
"$CLI" "${BOB[@]}" file list "${H[@]}" >"$T/bob.list" || fail "a client's list"
grep -q '^open.img' "$T/bob.list" || fail "a client does not see an open backstore"
grep -q 'alice-only' "$T/bob.list" && fail "a client sees a backstore it may not open"
"$CLI" "${BOB[@]}" file info open.img "${H[@]}" >/dev/null || fail "a client's info"
expect_fail 1 "info refused: identity psk:bob may not open file/alice-only.img \(not on its access list\)" \
  "$CLI" "${BOB[@]}" file info alice-only.img "${H[@]}"
grep -Eq '\[audit\] delete type "file" key "open.img" by "psk:bob" .*failed \(EACCES\)' \
  "$T/log/nbd-runner.log" || fail "the refused delete is not audited with its identity"
pass "another identity is a client: no create, delete or access change; sees and reads only what it may open"

# The reproductions, as plain unauthenticated calls (a client with TLS on).
mkdir -p "$T/files/vm" && echo "precious" >"$T/files/vm/prod-db.qcow2"
out=$(rpc_call 10 file vm/prod-db.qcow2 u64:0 u64:0 u64:0 u64:0 2>&1 || true)
case $out in "status 13 "*) ;; *) fail "a plain import was not refused: $out" ;; esac
out=$(rpc_call 2 file vm/prod-db.qcow2)
case $out in "status 13 "*) ;; *) fail "a plain delete was not refused: $out" ;; esac
[ "$(cat "$T/files/vm/prod-db.qcow2")" = precious ] || fail "the foreign file was touched"
rpc_map_as host-a file open.img /dev/nbd3
out=$(rpc_call 7 file open.img "" "" u64:0)
case $out in "status 13 "*"unmap without a device (force)"*) ;; *) fail "a plain forced unmap: $out" ;; esac
"$CLI" "${ADMIN[@]}" --json file info open.img "${H[@]}" | grep -q '"status": "mapped"' ||
  fail "the refused unmap changed the record"
pass "plain callers cannot import and delete a foreign file, nor clear another host's mapping"

runner_refuses 2 "--control-admins given, but TLS is off" --control-admins psk:admin
runner_refuses 2 "--control-admins: .*psk:IDENTITY or x509:DN" --tls on --tls-psk "$T/keys.psk" \
  --control-admins admin
pass "control-admins without TLS, or with a malformed identity, is refused at start"
