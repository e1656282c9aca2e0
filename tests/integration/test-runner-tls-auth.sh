#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# auth (issue 25, gluster-block's `auth enable`): `nbd-cli TYPE create KEY
# size S auth` and `modify KEY auth enable` mint a TLS-PSK identity and key
# for that one backstore, put the identity on its access list and print
# psktool's line once; only that key then opens it, and it opens nothing
# else. The backstore holds the key's identity from the moment it exists. The key is kept only
# in the state directory (mode 0600): never in saveconfig.json, info, the
# log. auth disable and delete forget the keys; minted keys survive a
# restart; a key file others may read refuses the start; without TLS,
# auth is refused and the create undone.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool nbdinfo python3

make_pki "$T/pki"
# X.509 only: minted keys work without a tls-psk file.
TLS=(--tls require --tls-certificates "$T/pki/server")
start_runner "${TLS[@]}"
psk_uri() { echo "nbds://${1%%:*}@localhost:$IO_PORT/file/$2?tls-psk-file=$3"; }
x509_uri() { echo "nbds://localhost:$IO_PORT/file/$1?tls-certificates=$T/pki/client1"; }
# key_file LINE FILE: a client's psktool file holding LINE.
key_file() { printf '%s\n' "$1" >"$2" && chmod 600 "$2"; }

cli file create a.img size 16M auth >"$T/create.out" || { cat "$T/create.out"; fail "create auth"; }
LINE=$(grep -E '^nbdr-[0-9a-f]{32}:[0-9a-f]{64}$' "$T/create.out") ||
  { cat "$T/create.out"; fail "create auth printed no psktool line"; }
ID=${LINE%%:*} KEY=${LINE#*:}
grep -q "^file/a.img: access: psk:$ID$" "$T/create.out" || { cat "$T/create.out"; fail "access line"; }
key_file "$LINE" "$T/a.psk"
nbdinfo "$(psk_uri "$LINE" a.img "$T/a.psk")" >/dev/null || fail "the minted key does not open a.img"
if nbdinfo "$(x509_uri a.img)" >/dev/null 2>&1; then fail "another client opened a.img"; fi
# A minted key opens its own backstore only, even one open to every client.
cli file create open.img size 16M >/dev/null
nbdinfo "$(x509_uri open.img)" >/dev/null || fail "an X.509 client cannot open open.img"
if nbdinfo "$(psk_uri "$LINE" open.img "$T/a.psk")" >/dev/null 2>&1; then
  fail "a.img's minted key opened another backstore"
fi
nbdinfo --list "$(psk_uri "$LINE" a.img "$T/a.psk")" >"$T/list.out" 2>&1 || true
grep -q "file/open.img" "$T/list.out" && { cat "$T/list.out"; fail "NBD_OPT_LIST shows a minted key other backstores"; }
pass "create auth: the key printed once opens its backstore and no other"

cli file info a.img >"$T/info.out"
cli --json file info a.img >"$T/info.json"
grep -q "^access: *psk:$ID$" "$T/info.out" || { cat "$T/info.out"; fail "info access"; }
for f in "$T/info.out" "$T/info.json" "$T/state/saveconfig.json" "$T/runner.out" "$T/log/nbd-runner.log"; do
  ! grep -q "$KEY" "$f" || fail "the key is in $f"
done
[ "$(stat -c %a "$T/state/minted-keys.json")" = 600 ] || fail "minted-keys.json is not mode 0600"
grep -q "$KEY" "$T/state/minted-keys.json" || fail "the key is not in minted-keys.json"
pass "the key is kept only in minted-keys.json (0600): not in info, saveconfig.json or the log"

cli --json file create b.img size 16M auth >"$T/b.json"
B1=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["access"]==["psk:"+d["psk"]["identity"]]; print(d["psk"]["psktool_line"])' "$T/b.json") ||
  { cat "$T/b.json"; fail "create auth --json"; }
B2=$(cli file modify b.img auth enable | grep -E '^nbdr-')
key_file "$B1" "$T/b1.psk"; key_file "$B2" "$T/b2.psk"
nbdinfo "$(psk_uri "$B1" b.img "$T/b1.psk")" >/dev/null || fail "b.img's first key"
nbdinfo "$(psk_uri "$B2" b.img "$T/b2.psk")" >/dev/null || fail "b.img's second key"
if nbdinfo "$(psk_uri "$LINE" b.img "$T/a.psk")" >/dev/null 2>&1; then fail "a.img's key opened b.img"; fi
cli file delete b.img >/dev/null
! grep -q "${B1%%:*}\|${B2%%:*}" "$T/state/minted-keys.json" || fail "delete left b.img's keys"
pass "each backstore has its own keys; delete forgets them"

# Keys survive a restart; auth disable forgets them.
stop_runner
start_runner "${TLS[@]}"
nbdinfo "$(psk_uri "$LINE" a.img "$T/a.psk")" >/dev/null || fail "the minted key after a restart"
out=$(cli file modify a.img auth disable)
[ "$out" = "file/a.img: access: any client" ] || fail "auth disable printed '$out'"
if nbdinfo "$(psk_uri "$LINE" a.img "$T/a.psk")" >/dev/null 2>&1; then fail "a forgotten key still works"; fi
nbdinfo "$(x509_uri a.img)" >/dev/null || fail "a.img after auth disable"
! grep -q "$ID" "$T/state/minted-keys.json" || fail "auth disable kept the key"
pass "minted keys survive a restart; auth disable forgets them and opens the backstore again"
stop_runner

chmod 644 "$T/state/minted-keys.json"
runner_refuses 1 "minted-keys.json holds secret keys but group or others may use it; run chmod 600" "${TLS[@]}"
chmod 600 "$T/state/minted-keys.json"
cp "$T/state/minted-keys.json" "$T/minted.before"
printf '{"nbdr-x": {"export": "file/a.img", "key": "zz"}}\n' >"$T/state/minted-keys.json"
runner_refuses 1 "minted-keys.json: entry 'nbdr-x' is not" "${TLS[@]}"
cp "$T/minted.before" "$T/state/minted-keys.json"
pass "a minted key file others may read, or a damaged one, refuses the start"

# Without TLS, auth is refused and the create undone.
start_runner
expect_fail 1 "auth needs TLS on this runner" cli file create c.img size 16M auth
expect_fail 1 "does not exist" cli file info c.img
pass "without TLS, create auth is refused and leaves nothing behind"
