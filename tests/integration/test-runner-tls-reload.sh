#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# SIGHUP reloads the TLS credentials without dropping established
# connections (issue 25): a key removed from the PSK file and a
# certificate added to the CRL are refused from then on, a key added is
# accepted, while a client already in TLS keeps reading; a reload that
# would break TLS (a key file others can read) is not applied and says so.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool nbdinfo nbdsh python3

make_psk "$T/keys.psk" alice
make_pki "$T/pki"
PSK_DIR="$T/psk" && mkdir -p "$PSK_DIR"
cp "$T/keys.psk" "$PSK_DIR/alice.psk"
start_runner --tls require --tls-psk "$T/keys.psk" --tls-certificates "$T/pki/server" \
  --tls-verify-peer
cli file create a.img size 16M >/dev/null
psk_uri() { echo "nbds://$1@localhost:$IO_PORT/file/a.img?tls-psk-file=$2"; }
x509_uri() { echo "nbds://localhost:$IO_PORT/file/a.img?tls-certificates=$T/pki/$1"; }
log_count() { grep -c -- "$1" "$T/runner.out" || true; }
# hup PATTERN: SIGHUP the runner and wait for PATTERN in its log.
hup() {
  local before i
  before=$(log_count "$1")
  kill -HUP "$RUNNER_PID"
  for i in $(seq 1 100); do [ "$(log_count "$1")" -gt "$before" ] && return 0; sleep 0.1; done
  tail -20 "$T/runner.out"
  fail "no '$1' after SIGHUP"
}

nbdinfo "$(psk_uri alice "$PSK_DIR/alice.psk")" >/dev/null || fail "alice before the reload"
nbdinfo "$(x509_uri client1)" >/dev/null || fail "client1 before the reload"

# A client in TLS that stays connected across the reloads.
cat >"$T/held.py" <<PY
import nbd, os, time
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri("$(psk_uri alice "$PSK_DIR/alice.psk")")
h.pwrite(b"held" * 1024, 0)
open("$T/held.connected", "w").close()
while not os.path.exists("$T/held.go"):
    time.sleep(0.1)
assert h.pread(4096, 0) == b"held" * 1024
h.shutdown()
print("held connection still served")
PY
python3 "$T/held.py" >"$T/held.out" 2>&1 &
HELD=$!
for i in $(seq 1 100); do [ -e "$T/held.connected" ] && break; sleep 0.1; done
[ -e "$T/held.connected" ] || { cat "$T/held.out"; fail "the held client did not connect"; }

# alice's key goes, bob's comes; client1 is revoked.
make_psk "$T/new.psk" bob
cp "$T/new.psk" "$PSK_DIR/bob.psk"
mv "$T/new.psk" "$T/keys.psk"
revoke "$T/pki" client1
hup "SIGHUP: TLS credentials reloaded"
if nbdinfo "$(psk_uri alice "$PSK_DIR/alice.psk")" >/dev/null 2>&1; then
  fail "alice's removed key still accepted after SIGHUP"
fi
nbdinfo "$(psk_uri bob "$PSK_DIR/bob.psk")" >/dev/null || fail "bob's new key refused after SIGHUP"
if nbdinfo "$(x509_uri client1)" >/dev/null 2>&1; then fail "client1 accepted after its revocation"; fi
grep -Eq "TLS handshake failed.*revoked" "$T/runner.out" || fail "the revocation is not logged"
pass "SIGHUP: a removed key and a revoked certificate are refused, a new key accepted"

# A reload that would break TLS is refused as a whole; the running
# credentials stay.
chmod 644 "$T/keys.psk"
hup "configuration not reloaded, the running one stays: .*keys.psk holds a secret key"
chmod 600 "$T/keys.psk"
nbdinfo "$(psk_uri bob "$PSK_DIR/bob.psk")" >/dev/null || fail "bob refused after a failed reload"
pass "SIGHUP with a key file others can read: not applied, the running credentials stay"

touch "$T/held.go"
wait "$HELD" || { cat "$T/held.out"; fail "the connection made before the reloads broke"; }
pass "a connection in TLS before the reloads is still served after them"
