#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Per-backstore access by TLS identity (issue 25, gluster-block's "auth
# enable" done with TLS identities): any client that passed TLS could open
# every backstore, so one tenant's client could write another's disk.
# `nbd-cli TYPE modify KEY allow|deny|open` edits who may open a backstore
# (psk:ID, x509:DN); anyone else gets NBD_REP_ERR_POLICY on INFO/GO (a
# log line says who and what) and NBD_OPT_LIST shows each client only what
# it may open. The list persists in saveconfig.json; a deny that would
# open the backstore to everyone is refused; a corrupt list refuses start.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool nbdinfo nbdsh python3

make_psk "$T/keys.psk" alice bob
mkdir -p "$T/psk"  # each client's own key
for who in alice bob; do grep "^$who:" "$T/keys.psk" >"$T/psk/$who.psk"; done
make_pki "$T/pki"
TLS=(--tls require --tls-psk "$T/keys.psk" --tls-certificates "$T/pki/server" --tls-verify-peer)
start_runner "${TLS[@]}"
for k in a.img b.img c.img; do cli file create "$k" size 16M >/dev/null; done

uri() {  # WHO KEY: WHO is alice, bob (PSK) or client1 (X.509)
  case $1 in
    client1) echo "nbds://localhost:$IO_PORT/file/$2?tls-certificates=$T/pki/client1" ;;
    *) echo "nbds://$1@localhost:$IO_PORT/file/$2?tls-psk-file=$T/psk/$1.psk" ;;
  esac
}
opens() { nbdinfo "$(uri "$1" "$2")" >/dev/null 2>"$T/opens.err" || { cat "$T/opens.err"; fail "$1 cannot open $2"; }; }
refused() {
  if nbdinfo "$(uri "$1" "$2")" >/dev/null 2>"$T/refused.err"; then fail "$1 opened $2"; fi
}
listed() {  # WHO: the exports NBD_OPT_LIST shows WHO, sorted, space-separated
  nbdinfo --list --json "$(uri "$1" c.img)" |
    python3 -c 'import json,sys; print(" ".join(sorted(e["export-name"] for e in json.load(sys.stdin)["exports"])))'
}

# Who client1's certificate says it is, as the runner names it.
opens client1 c.img
DN=$(sed -n 's/.*client x509:\(.*\)$/\1/p' "$T/runner.out" | head -1)
[ -n "$DN" ] || { cat "$T/runner.out"; fail "no X.509 identity in the log"; }

out=$(cli file modify a.img allow psk:alice)
[ "$out" = "file/a.img: access: psk:alice" ] || fail "modify allow printed '$out'"
cli file modify b.img allow "psk:bob,x509:$DN" >/dev/null
cli --json file info b.img >"$T/b.json"
python3 - "$T/b.json" "x509:$DN" <<'PY' || { cat "$T/b.json"; fail "info --json access"; }
import json, sys
assert json.load(open(sys.argv[1]))["access"] == ["psk:bob", sys.argv[2]]
PY
cli file info c.img | grep -q "^access: *any client$" || fail "info of an open backstore"

opens alice a.img; refused bob a.img; refused client1 a.img
grep -q "refused: TLS identity psk:bob may not open file/a.img" "$T/runner.out" ||
  { tail "$T/runner.out"; fail "the refusal is not logged with the identity"; }
CASES="$NBDR_SRC/tests/integration/nbd_tls_cases.py"
[ "$(python3 "$CASES" "$IO_PORT" tls-info "$T/pki/client1" file/a.img)" = ERR_POLICY ] ||
  fail "INFO of a backstore not open to this client is not NBD_REP_ERR_POLICY"
[ "$(python3 "$CASES" "$IO_PORT" tls-info "$T/pki/client1" file/c.img)" = ACK ] ||
  fail "INFO of an open backstore"
opens bob b.img; opens client1 b.img; refused alice b.img
opens alice c.img; opens bob c.img
[ "$(listed alice)" = "file/a.img file/c.img" ] || fail "alice's list: $(listed alice)"
[ "$(listed bob)" = "file/b.img file/c.img" ] || fail "bob's list: $(listed bob)"
[ "$(listed client1)" = "file/b.img file/c.img" ] || fail "client1's list: $(listed client1)"
pass "access lists: only listed identities open a backstore, NBD_OPT_LIST hides the rest"

expect_fail 1 "denying every identity on its list would open file/a.img to every client" \
  cli file modify a.img deny psk:alice
refused bob a.img
cli file modify b.img deny psk:bob >/dev/null
refused bob b.img; opens client1 b.img
expect_fail 2 "a TLS identity is psk:IDENTITY or x509:DN" cli file modify a.img allow alice
expect_fail 1 "does not exist" cli file modify nosuch.img allow psk:alice
pass "deny removes an identity, never opens a backstore to all; bad identities are refused"

# The lists persist across a restart.
stop_runner
grep -q '"tls_allow"' "$T/state/saveconfig.json" || fail "saveconfig.json lacks tls_allow"
start_runner "${TLS[@]}"
opens alice a.img; refused bob a.img; refused alice b.img; opens client1 b.img
out=$(cli file modify a.img open)
[ "$out" = "file/a.img: access: any client" ] || fail "modify open printed '$out'"
opens bob a.img
pass "access lists survive a restart; modify open opens a backstore to every client"
stop_runner

# Without TLS nobody has an identity: a listed backstore opens to no one.
start_runner
refused_plain=$(nbdinfo "nbd://localhost:$IO_PORT/file/b.img" 2>&1 || true)
grep -q "open only to clients with a TLS identity on its access list" "$T/runner.out" ||
  { echo "$refused_plain"; fail "a plain client opened a backstore with an access list"; }
nbdinfo "nbd://localhost:$IO_PORT/file/c.img" >/dev/null || fail "an open backstore without TLS"
stop_runner

# A corrupt list refuses the start and leaves the file as it was.
sed -i 's/"x509:/"x509-/' "$T/state/saveconfig.json"
grep -q '"x509-' "$T/state/saveconfig.json" || fail "no access list to corrupt"
cp "$T/state/saveconfig.json" "$T/saveconfig.before"
runner_refuses 1 "tls_allow': a TLS identity is psk:IDENTITY or x509:DN" "${TLS[@]}"
cmp "$T/state/saveconfig.json" "$T/saveconfig.before" || fail "a refused start changed saveconfig.json"
pass "without TLS a listed backstore opens to no one; a corrupt list refuses the start"
