#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# TLS on the NBD port (issue 25): until now anyone who reached port 24111
# could read and overwrite every backstore, and NBD_OPT_STARTTLS was
# refused. With tls = require, real clients (qemu-img, qemu-io, nbdinfo,
# nbdcopy, nbdsh) read and write over TLS with a PSK and, separately,
# with X.509 certificates; every client that should not get in is refused
# with a log line saying why, and the others keep working; the protocol
# corner cases (STARTTLS twice, plain bytes after the ACK, a silent TLS
# handshake, plain-text state carried into TLS) end as the NBD protocol
# says. Credential files that others could read are refused at start.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool qemu-img qemu-io nbdinfo nbdcopy nbdsh python3

CASES="$NBDR_SRC/tests/integration/nbd_tls_cases.py"
make_psk "$T/keys.psk" alice bob
make_psk "$T/wrong.psk" alice  # alice, with another key
make_psk "$T/stranger.psk" mallory
mkdir -p "$T/psk-alice"
cp "$T/keys.psk" "$T/psk-alice/keys.psk"  # qemu's layout: DIR/keys.psk
make_pki "$T/pki"

# log_has PATTERN WHAT: the runner's log shows PATTERN (grep -E) by now.
log_has() {
  local i
  for i in $(seq 1 50); do grep -Eq -- "$1" "$T/runner.out" && return 0; sleep 0.1; done
  tail -20 "$T/runner.out"
  fail "runner log lacks '$1' ($2)"
}
# refused URI WHAT: nbdinfo cannot use the export through URI.
refused() {
  if nbdinfo "$1" >"$T/refused.out" 2>&1; then cat "$T/refused.out"; fail "$2 was let in"; fi
}

# --- PSK, TLS required --------------------------------------------------
start_runner --tls require --tls-psk "$T/keys.psk"
cli file create a.img size 64M >/dev/null
PSK_URI="nbds://alice@localhost:$IO_PORT/file/a.img?tls-psk-file=$T/keys.psk"
QEMU_PSK=(--object "tls-creds-psk,id=tls0,endpoint=client,dir=$T/psk-alice,username=alice")
IMG_PSK="driver=nbd,host=127.0.0.1,port=$IO_PORT,export=file/a.img,tls-creds=tls0"

qemu-io "${QEMU_PSK[@]}" --image-opts "$IMG_PSK" -c 'write -P 0x5a 0 4M' -c 'write -P 0xa5 60M 4M' \
  -c 'read -P 0x5a 0 4M' -c 'read -P 0xa5 60M 4M' >"$T/qio" 2>&1 &&
  ! grep -q 'verification failed' "$T/qio" || { cat "$T/qio"; fail "qemu-io over TLS-PSK"; }
nbdinfo --json "$PSK_URI" >"$T/info.json" || fail "nbdinfo over TLS-PSK"
grep -q '"export-size": 67108864' "$T/info.json" || { cat "$T/info.json"; fail "nbdinfo size"; }
log_has "TLS .*TLS1\.[23].*client psk:alice" "the PSK identity logged"
nbdcopy "$PSK_URI" "$T/copy.img" || fail "nbdcopy from nbds:// (PSK)"
qemu-img info "${QEMU_PSK[@]}" --image-opts "$IMG_PSK" >"$T/qimg" || fail "qemu-img info over TLS-PSK"
grep -q "virtual size: 64 MiB" "$T/qimg" || { cat "$T/qimg"; fail "qemu-img info size"; }
qemu-img convert -O raw "${QEMU_PSK[@]}" --image-opts "$IMG_PSK" "$T/convert.img" ||
  fail "qemu-img convert over TLS-PSK"
cmp "$T/copy.img" "$T/convert.img" || fail "nbdcopy and qemu-img convert read different data"
python3 - "$T/copy.img" <<'PY' || fail "data read over TLS differs from what qemu-io wrote"
import sys
d = open(sys.argv[1], "rb").read()
assert d[:4 << 20] == b"\x5a" * (4 << 20) and d[60 << 20:] == b"\xa5" * (4 << 20)
assert d[4 << 20:60 << 20].count(0) == 56 << 20
PY
nbdsh -c 'h.set_uri_allow_local_file(True)' -c "h.connect_uri('$PSK_URI')" -c 'assert h.get_size() == 64 << 20' \
  -c 'h.pwrite(b"nbdsh-tl" * 1024, 8 << 20)' -c 'h.flush()' \
  -c 'assert h.pread(8192, 8 << 20) == b"nbdsh-tl" * 1024' || fail "nbdsh over TLS-PSK"
pass "TLS-PSK: qemu-io, nbdinfo, nbdcopy, qemu-img info/convert and nbdsh read and write"

refused "nbd://localhost:$IO_PORT/file/a.img" "a plain client"
log_has "NBD_OPT_GO refused: TLS is required first" "a plain client refused"
[ "$(python3 "$CASES" "$IO_PORT" plain-info)" = ERR_TLS_REQD ] || fail "plain INFO not ERR_TLS_REQD"
[ "$(python3 "$CASES" "$IO_PORT" plain-export-name)" = closed ] ||
  fail "a plain NBD_OPT_EXPORT_NAME did not close the connection"
log_has "NBD_OPT_EXPORT_NAME without TLS, which this runner requires; closing" "EXPORT_NAME refused"
refused "nbds://alice@localhost:$IO_PORT/file/a.img?tls-psk-file=$T/wrong.psk" "a wrong PSK key"
refused "nbds://mallory@localhost:$IO_PORT/file/a.img?tls-psk-file=$T/stranger.psk" \
  "an unknown PSK identity"
[ "$(grep -c 'TLS handshake failed' "$T/runner.out")" -ge 2 ] ||
  { tail -20 "$T/runner.out"; fail "failed TLS handshakes not logged"; }
nbdinfo "$PSK_URI" >/dev/null || fail "a good client refused after the bad ones"
pass "TLS-PSK required: plain clients, EXPORT_NAME, a wrong key and an unknown identity are refused"
stop_runner

# --- X.509, TLS required, clients' certificates verified -----------------
chmod 644 "$T/pki/server/server-key.pem"
runner_refuses 1 "server-key.pem holds a secret key but is readable by group or others \(mode 0644\); run chmod 600" \
  --tls require --tls-certificates "$T/pki/server"
chmod 600 "$T/pki/server/server-key.pem"
chmod 664 "$T/pki/server/ca-cert.pem"
runner_refuses 1 "ca-cert.pem is writable by group or others \(mode 0664\)" \
  --tls require --tls-certificates "$T/pki/server"
chmod 644 "$T/pki/server/ca-cert.pem"
chmod 640 "$T/keys.psk"
runner_refuses 1 "keys.psk holds a secret key but is readable by group or others" \
  --tls on --tls-psk "$T/keys.psk"
chmod 600 "$T/keys.psk"
# Another user's key file (they could change it), read through a symlink:
# the file opened is what is checked.
chown nobody "$T/pki/server/server-key.pem"
ln -s "$T/pki/server" "$T/server-link"
runner_refuses 1 "server-key.pem belongs to uid $(id -u nobody), neither root nor this user" \
  --tls require --tls-certificates "$T/server-link"
chown root "$T/pki/server/server-key.pem"
runner_refuses 2 "--tls-psk given, but TLS is off" --tls-psk "$T/keys.psk"
runner_refuses 2 "--tls require: needs --tls-certificates DIR or --tls-psk FILE" --tls require
runner_refuses 2 "--tls-verify-peer: needs --tls-certificates" --tls on --tls-psk "$T/keys.psk" \
  --tls-verify-peer
runner_refuses 2 "--tls: 'yes' is not off, on or require" --tls yes
runner_refuses 2 "--tls-verify-peer: 'maybe' is not yes or no" --tls-verify-peer=maybe
printf 'carol:abcd\n' >"$T/short.psk" && chmod 600 "$T/short.psk"
runner_refuses 1 "short.psk:1: the key of 'carol' has 2 bytes; at least 16" --tls on --tls-psk "$T/short.psk"
printf 'carol\n' >"$T/bad.psk" && chmod 600 "$T/bad.psk"
runner_refuses 1 "bad.psk:1: not IDENTITY:HEXKEY" --tls on --tls-psk "$T/bad.psk"
pass "credential files others can read or change, and inconsistent TLS options, are refused"

start_runner --tls require --tls-certificates "$T/pki/server" --tls-verify-peer --handshake-timeout 3
X509_URI="nbds://localhost:$IO_PORT/file/a.img?tls-certificates=$T/pki/client1"
QEMU_X509=(--object "tls-creds-x509,id=tls0,endpoint=client,dir=$T/pki/client1")
IMG_X509="driver=nbd,host=localhost,port=$IO_PORT,export=file/a.img,tls-creds=tls0"
qemu-io "${QEMU_X509[@]}" --image-opts "$IMG_X509" -c 'read -P 0x5a 0 4M' -c 'write -P 0x3c 32M 1M' \
  -c 'read -P 0x3c 32M 1M' >"$T/qio" 2>&1 && ! grep -q 'verification failed' "$T/qio" ||
  { cat "$T/qio"; fail "qemu-io over TLS-X.509"; }
log_has "client x509:.*CN=client1" "the certificate's DN logged"
nbdinfo "$X509_URI" >/dev/null || fail "nbdinfo over TLS-X.509"
nbdcopy "$X509_URI" "$T/copy2.img" || fail "nbdcopy over TLS-X.509"
qemu-img convert -O raw "${QEMU_X509[@]}" --image-opts "$IMG_X509" "$T/convert2.img" ||
  fail "qemu-img convert over TLS-X.509"
cmp "$T/copy2.img" "$T/convert2.img" || fail "X.509 clients read different data"
nbdsh -c 'h.set_uri_allow_local_file(True)' -c "h.connect_uri('$X509_URI')" -c 'assert h.pread(8192, 8 << 20) == b"nbdsh-tl" * 1024' ||
  fail "nbdsh over TLS-X.509 (the PSK run's write)"
[ "$(python3 "$CASES" "$IO_PORT" tls-go "$T/pki/client1" file/a.img)" = served ] ||
  fail "a raw client read nothing over TLS"
pass "TLS-X.509 with verified clients: qemu-io, nbdinfo, nbdcopy, qemu-img convert, nbdsh"

for who in stranger expired revoked anonymous; do
  refused "nbds://localhost:$IO_PORT/file/a.img?tls-certificates=$T/pki/$who" "the $who client"
done
log_has "TLS handshake failed.*" "bad certificates logged"
[ "$(grep -c 'TLS handshake failed' "$T/runner.out")" -ge 4 ] ||
  { tail -20 "$T/runner.out"; fail "not every refused certificate was logged"; }
grep -Eq "TLS handshake failed.*(expired|revoked)" "$T/runner.out" ||
  { grep "TLS handshake failed" "$T/runner.out"; fail "the log does not say why"; }
nbdinfo "$X509_URI" >/dev/null || fail "a good client refused after the bad ones"
pass "certificates from another CA, expired, revoked or absent are refused and logged"

[ "$(python3 "$CASES" "$IO_PORT" starttls-twice "$T/pki/client1")" = ERR_INVALID ] ||
  fail "STARTTLS inside TLS not ERR_INVALID"
[ "$(python3 "$CASES" "$IO_PORT" garbage-after-ack)" = closed ] ||
  fail "plain bytes after the STARTTLS ACK did not close the connection"
out=$(python3 "$CASES" "$IO_PORT" silent-after-ack)
case "$out" in "closed after "[2-6]" s") ;; *) fail "silent TLS handshake: $out (handshake-timeout 3)";; esac
log_has "TLS handshake not finished in time" "the TLS handshake's deadline"
pass "STARTTLS twice, plain bytes after the ACK and a silent handshake end cleanly ($out)"
stop_runner

# --- TLS offered: plain clients still served; nothing carries into TLS --
start_runner --tls on --tls-certificates "$T/pki/server" --tls-psk "$T/keys.psk"
nbdinfo "nbd://localhost:$IO_PORT/file/a.img" >/dev/null || fail "a plain client with tls = on"
nbdinfo "nbds://alice@localhost:$IO_PORT/file/a.img?tls-psk-file=$T/keys.psk" >/dev/null ||
  fail "a PSK client with tls = on and both credentials"
nbdinfo "nbds://localhost:$IO_PORT/file/a.img?tls-certificates=$T/pki/client1" >/dev/null ||
  fail "an X.509 client with tls = on and both credentials"
[ "$(python3 "$CASES" "$IO_PORT" state-reset "$T/pki/client1")" = ERR_INVALID ] ||
  fail "structured replies agreed before STARTTLS carried into TLS"
pass "tls = on serves plain, PSK and X.509 clients; plain-text agreements end at STARTTLS"
stop_runner
